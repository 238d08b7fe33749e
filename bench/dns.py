#!/usr/bin/env python3
"""Name resolution throughput and latency: berth-dns vs aardvark-dns (/usr/lib/podman, Debian's
aardvark-dns) vs dnsmasq serving the same names (--addn-hosts), in the same run, measured with
dnsperf. For container names and for NXDOMAIN (unknown names under dns.podman):
  - queries per second at saturation (dnsperf, no rate limit);
  - latency p50/p99 at a fixed 2,000 queries/s (dnsperf -Q 2000 -v, per-query latencies).
Every server runs in a scratch namespace this script makes, with its own listening address on
lo, and a dnsmasq upstream (10.99.3.1) that answers NXDOMAIN for anything forwarded to it, so no
query leaves the namespace. Run as root: sudo bench/dns.py [SECONDS]"""

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib as b

seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
AARDVARK = "/usr/lib/podman/aardvark-dns"
DNSMASQ = "/usr/sbin/dnsmasq"
CONTAINERS = 50
SERVERS = {"berth-dns": "10.99.0.1", "aardvark-dns": "10.99.1.1", "dnsmasq": "10.99.2.1"}
UPSTREAM = "10.99.3.1"

bin_dir = b.release_bin_dir()
berth = os.path.join(bin_dir, "berth-dns")
work = tempfile.mkdtemp(prefix="berth-bench-dns-")
processes = []


def network_file(gateway):
    lines = [gateway]
    for i in range(1, CONTAINERS + 1):
        lines.append(f"ctr{i:04d} 10.99.{100 + i // 250}.{i % 250 + 1}  c{i},alias{i}")
    return "\n".join(lines) + "\n"


def config_dir(name, gateway):
    path = os.path.join(work, name)
    os.makedirs(path)
    with open(os.path.join(path, "bench"), "w") as f:
        f.write(network_file(gateway))
    return path


def run_dnsperf(server, queries, extra):
    out = subprocess.run(["dnsperf", "-s", server, "-d", queries, "-l", str(seconds), *extra],
                         capture_output=True, text=True)
    return out.stdout + out.stderr


def saturation(server, queries):
    text = run_dnsperf(server, queries, ["-c", "8", "-q", "400"])
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", text).group(1))
    lost = re.search(r"Queries lost:\s+(\d+)", text).group(1)
    return qps, int(lost)


def latency(server, queries):
    text = run_dnsperf(server, queries, ["-Q", "2000", "-c", "1", "-v"])
    samples = sorted(float(m.group(1)) for m in re.finditer(r"^> \S+ \S+ \S+ ([\d.]+)$", text, re.M))
    if not samples:
        return float("nan"), float("nan")
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000
    return p(0.50), p(0.99)


def wait_answers(server, name):
    for _ in range(200):
        out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", f"@{server}", name], capture_output=True, text=True)
        if out.stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{server} does not answer {name}")


with b.Namespaces("berth-bench-dns") as ns:
    ns.enter_host()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in list(SERVERS.values()) + [UPSTREAM]:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    try:
        resolv = os.path.join(work, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {UPSTREAM}\n")
        # The upstream: NXDOMAIN for everything.
        processes.append(subprocess.Popen([DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                                           "--no-hosts", "--local=/#/", f"--listen-address={UPSTREAM}", "--bind-interfaces",
                                           "--pid-file=", "--user=root", "--group=root"]))
        # berth-dns.
        berth_dir = config_dir("berth", SERVERS["berth-dns"])
        subprocess.run([berth, "-c", berth_dir, "-p", "53", "--resolv-conf", resolv, "run"], check=True)
        # aardvark-dns reads /etc/resolv.conf: give it ours in a mount namespace of its own.
        aardvark_dir = config_dir("aardvark", SERVERS["aardvark-dns"])
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f"mount --bind {resolv} /etc/resolv.conf && exec {AARDVARK} --config {aardvark_dir} -p 53 run"],
                       check=True)
        # dnsmasq with the same names as a hosts file.
        hosts = os.path.join(work, "hosts")
        with open(hosts, "w") as f:
            for i in range(1, CONTAINERS + 1):
                f.write(f"10.99.{100 + i // 250}.{i % 250 + 1} c{i} c{i}.dns.podman alias{i} alias{i}.dns.podman\n")
        processes.append(subprocess.Popen([DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                                           "--no-hosts", f"--addn-hosts={hosts}", f"--server={UPSTREAM}",
                                           f"--listen-address={SERVERS['dnsmasq']}", "--bind-interfaces", "--pid-file=",
                                           "--user=root", "--group=root", "--cache-size=10000"]))
        for server in SERVERS.values():
            wait_answers(server, "c1")

        names = os.path.join(work, "names")
        with open(names, "w") as f:
            for i in range(1, CONTAINERS + 1):
                f.write(f"c{i} A\nalias{i}.dns.podman A\n")
        nx = os.path.join(work, "nxdomain")
        with open(nx, "w") as f:
            for i in range(1, 2 * CONTAINERS + 1):
                f.write(f"nosuch{i}.dns.podman A\n")

        results = {}
        for label, queries in (("names", names), ("nxdomain", nx)):
            for server, address in SERVERS.items():
                results[(server, label, "qps")] = saturation(address, queries)
                results[(server, label, "lat")] = latency(address, queries)
    finally:
        for pid_dir in (os.path.join(work, "berth"), os.path.join(work, "aardvark")):
            try:
                with open(os.path.join(pid_dir, "aardvark.pid")) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        for p in processes:
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", work])

print(f"\nberth-dns vs aardvark-dns vs dnsmasq, dnsperf {seconds} s per figure, {CONTAINERS} containers "
      f"(saturation: -c 8 -q 400; latency: -Q 2000)")
print(f"  {'':10} {'':14} {'qps':>10} {'lost':>6} {'p50 ms':>8} {'p99 ms':>8}")
for label in ("names", "nxdomain"):
    for server in SERVERS:
        qps, lost = results[(server, label, "qps")]
        p50, p99 = results[(server, label, "lat")]
        print(f"  {label:10} {server:14} {qps:10.0f} {lost:6d} {p50:8.3f} {p99:8.3f}")
    ours = results[("berth-dns", label, "qps")][0]
    print(f"  {label:10} {'ratios':14} berth/aardvark {ours / results[('aardvark-dns', label, 'qps')][0]:.2f}x, "
          f"berth/dnsmasq {ours / results[('dnsmasq', label, 'qps')][0]:.2f}x")
