#!/usr/bin/env python3
"""berth-proxy against docker-proxy (Debian's docker.io), socat, the kernel's DNAT path and a
direct connection, in the same run and the same namespaces: TCP throughput (iperf3, 1 and 4
streams), HTTP request rate and p99 latency with keep-alive and with a new connection per request
(wrk against nginx in the "container"), and memory (RSS and PSS) of 1,000 idle connections and
of 100 mappings.  Run as root: sudo bench/proxy.py [--seconds N] [--rounds N]

"berth -t2" is berth-proxy with --threads 2 (two event loops sharing the ports).

Topology: a scratch "host" namespace (this process moves into it) and a "container" namespace
joined by a veth pair, 10.201.0.1/24 and 10.201.0.2/24. Each proxy listens on 127.0.0.1 of the
host namespace; the DNAT path is an nft rule in the host namespace's own table for its address
10.201.0.1; "direct" connects to 10.201.0.2. Each round runs every path in turn; medians are
printed, with ratios to berth-proxy."""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib as b

NEEDED = {"iperf3": "iperf3", "wrk": "wrk", "socat": "socat", "nginx": "nginx-light", "docker-proxy": "docker.io"}
DOCKER_PROXY = "/usr/sbin/docker-proxy"
HOST, CONTAINER = "10.201.0.1", "10.201.0.2"
HTTP, IPERF = 80, 5201


def install():
    missing = [pkg for tool, pkg in NEEDED.items() if not any(
        os.path.exists(os.path.join(d, tool)) for d in ("/usr/bin", "/usr/sbin"))]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def sh(*cmd, ns=None, **kw):
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, **kw).stdout


class Processes:
    """Everything the bench starts, killed (by pid) at the end."""

    def __init__(self, logs):
        self.procs = []
        self.logs = logs

    def start(self, cmd, ns=None, readiness=False):
        prefix = ["ip", "netns", "exec", ns] if ns else []
        if not readiness:
            p = subprocess.Popen([*prefix, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            return p
        # docker-proxy's protocol: the write end of a pipe as fd 3, "0\n" once listening.
        r, w = os.pipe()
        log = open(os.path.join(self.logs, f"{os.path.basename(cmd[0])}-{len(self.procs)}.log"), "w")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, pass_fds=(3,),
                             preexec_fn=lambda: os.dup2(w, 3))
        log.close()
        os.close(w)
        self.procs.append(p)
        with os.fdopen(r, "rb") as f:
            status = f.read()
        if status != b"0\n":
            raise RuntimeError(f"{cmd[0]} did not start: {status!r}")
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.remove(p)

    def close(self):
        for p in list(self.procs):
            self.stop(p)


def wait_port(addr, port, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {addr}:{port}")


def nginx_config(directory):
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi; uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
    server {{ listen {HTTP} reuseport; location / {{ default_type text/plain; return 200 "hello from the container\\n"; }} }}
}}
""")
    return conf


def iperf(addr, port, streams, seconds, tries=2):
    for attempt in range(tries):
        out = subprocess.run(["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-P", str(streams), "-J"],
                             capture_output=True, text=True, timeout=seconds + 30)
        data = json.loads(out.stdout)
        if "error" not in data:
            return data["end"]["sum_received"]["bits_per_second"] / 1e9
        # Said, not hidden: a failed run is retried once and reported.
        print(f"  note: iperf3 to {addr}:{port} failed ({data['error']}); "
              f"{'retrying' if attempt + 1 < tries else 'giving up'}", file=sys.stderr)
        time.sleep(1)
    raise RuntimeError(data["error"])


def wrk(addr, port, seconds, close):
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run([*cmd, f"http://{addr}:{port}/"], capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = sum(int(x) for x in errors.groups()) if errors else 0
    bad += int(non2xx.group(1)) if non2xx else 0
    return rate, float(p99.group(1)) * scale, bad


def cpu_seconds(pid, children_too=True):
    """CPU time of a process, its reaped children and its live ones (socat forks one per
    connection)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile (a socat child)
        return 0
    total = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    if children_too:
        total += sum(cpu_seconds(child, children_too=False) for child in children(pid))
    return total


def memory(pids):
    """(RSS, PSS) in MB summed over the processes (PSS shares common pages fairly)."""
    rss = pss = 0
    for pid in pids:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in children(k)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--http-only", action="store_true", help="skip iperf3 and the memory figures")
    args = parser.parse_args()
    install()
    berth = os.path.join(b.release_bin_dir(), "berth-proxy")
    tmp = tempfile.mkdtemp(prefix="berth-bench-proxy-")
    procs = Processes(tmp)
    with b.Namespaces("berth-bench-proxy") as ns:
        ns.enter_host()
        container = os.path.basename(ns.add("c"))
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", container)
        sh("ip", "addr", "add", f"{HOST}/24", "dev", "veth0")
        sh("ip", "link", "set", "veth0", "up")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{CONTAINER}/24", "dev", "eth0"],
                    ["ip", "link", "set", "eth0", "up"]):
            sh(*cmd, ns=container)
        try:
            run(args, berth, tmp, procs, container)
        except Exception:
            for name in sorted(os.listdir(tmp)):
                if name.endswith(".log"):
                    with open(os.path.join(tmp, name)) as f:
                        text = f.read().strip()
                    if text:
                        print(f"--- {name}\n{text[-2000:]}", file=sys.stderr)
            raise
        finally:
            procs.close()
            subprocess.run(["rm", "-rf", tmp])


def run(args, berth, tmp, procs, container):
    procs.start(["nginx", "-c", nginx_config(tmp)], ns=container)
    procs.start(["iperf3", "-s", "-p", str(IPERF)], ns=container)
    wait_port(CONTAINER, HTTP)
    # Not by connecting: iperf3 takes any connection for a test and then rejects the next client.
    deadline = time.time() + 5
    while f":{IPERF} " not in sh("ss", "-Hltn", ns=container) and time.time() < deadline:
        time.sleep(0.05)

    # The paths: name -> (address, http port, iperf port).
    paths = {"direct": (CONTAINER, HTTP, IPERF), "kernel DNAT": (HOST, 40080, 45201)}
    nft = f"""table ip berth_bench_dnat {{
        chain output {{ type nat hook output priority -100;
            ip daddr {HOST} tcp dport 40080 dnat to {CONTAINER}:{HTTP}
            ip daddr {HOST} tcp dport 45201 dnat to {CONTAINER}:{IPERF}
        }}
    }}
"""
    subprocess.run(["nft", "-f", "-"], input=nft, text=True, check=True)
    procs.start([berth, "--log-level", "debug", "--mapping", f"tcp:127.0.0.1:10080:{CONTAINER}:{HTTP}",
                 "--mapping", f"tcp:127.0.0.1:15201:{CONTAINER}:{IPERF}"], readiness=True)
    paths["berth-proxy"] = ("127.0.0.1", 10080, 15201)
    procs.start([berth, "--threads", "2", "--mapping", f"tcp:127.0.0.1:11080:{CONTAINER}:{HTTP}",
                 "--mapping", f"tcp:127.0.0.1:16201:{CONTAINER}:{IPERF}"], readiness=True)
    paths["berth -t2"] = ("127.0.0.1", 11080, 16201)
    for port, target in ((20080, HTTP), (25201, IPERF)):
        procs.start([DOCKER_PROXY, "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", str(port),
                     "-container-ip", CONTAINER, "-container-port", str(target)], readiness=True)
    paths["docker-proxy"] = ("127.0.0.1", 20080, 25201)
    for port, target in ((30080, HTTP), (35201, IPERF)):
        procs.start(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=4096",
                     f"TCP:{CONTAINER}:{target}"])
        wait_port("127.0.0.1", port)
    paths["socat"] = ("127.0.0.1", 30080, 35201)

    order = ["berth-proxy", "berth -t2", "docker-proxy", "socat", "kernel DNAT", "direct"]
    metrics = ["iperf3 1 stream (Gbit/s)", "iperf3 4 streams (Gbit/s)", "keep-alive (req/s)", "keep-alive p99 (ms)",
               "keep-alive proxy CPU (us/req)", "new connection (req/s)", "new connection p99 (ms)",
               "new conn. proxy CPU (us/req)"]
    http_proxy = {name: next(p.pid for p in procs.procs if any(str(paths[name][1]) in a for a in p.args))
                  for name in ("berth-proxy", "berth -t2", "docker-proxy", "socat")}

    def proxy_cpu(path, before, requests):
        if path not in http_proxy:
            return float("nan")
        return (cpu_seconds(http_proxy[path]) - before) / requests * 1e6
    results = {(m, p): [] for m in metrics for p in order}
    errors = {p: 0 for p in order}
    for _ in range(args.rounds):
        for path in order:  # interleaved so load changes hit every path alike
            addr, http, ip = paths[path]
            if not args.http_only:
                results[(metrics[0], path)].append(iperf(addr, ip, 1, args.seconds))
                results[(metrics[1], path)].append(iperf(addr, ip, 4, args.seconds))
            else:
                results[(metrics[0], path)].append(float("nan"))
                results[(metrics[1], path)].append(float("nan"))
            for close, first in ((False, 2), (True, 5)):
                before = cpu_seconds(http_proxy[path]) if path in http_proxy else 0
                rate, p99, bad = wrk(addr, http, args.seconds, close=close)
                results[(metrics[first], path)].append(rate)
                results[(metrics[first + 1], path)].append(p99)
                results[(metrics[first + 2], path)].append(proxy_cpu(path, before, rate * args.seconds))
                errors[path] += bad
            time.sleep(1)  # let TIME_WAIT and the server settle

    print(f"\nberth-proxy vs the alternatives, {args.rounds} round(s) of {args.seconds} s each, medians "
          f"(wrk -t2 -c32 against nginx; 2 shared cores run client, proxy and server)")
    print(f"  {'':28}" + "".join(f"{p:>14}" for p in order))
    for m in metrics:
        print(f"  {m:28}" + "".join(f"{statistics.median(results[(m, p)]):14.2f}" for p in order))
    print(f"  {'wrk errors (all runs)':28}" + "".join(f"{errors[p]:14d}" for p in order))
    med = {k: statistics.median(v) for k, v in results.items()}
    print("\nratios")
    print(f"  berth-proxy / direct, 1 stream throughput:    {med[(metrics[0], 'berth-proxy')] / med[(metrics[0], 'direct')]:.2f}x (target >= 0.85)")
    print(f"  berth-proxy / docker-proxy, keep-alive rate:  {med[(metrics[2], 'berth-proxy')] / med[(metrics[2], 'docker-proxy')]:.2f}x (target >= 1.5)")
    print(f"  berth-proxy / docker-proxy, new-conn rate:    {med[(metrics[5], 'berth-proxy')] / med[(metrics[5], 'docker-proxy')]:.2f}x (target >= 2, p99 < 5 ms)")
    print(f"  berth-proxy / socat, new-conn rate:           {med[(metrics[5], 'berth-proxy')] / med[(metrics[5], 'socat')]:.2f}x")
    print(f"  docker-proxy / berth-proxy, CPU per request:  keep-alive {med[(metrics[4], 'docker-proxy')] / med[(metrics[4], 'berth-proxy')]:.2f}x, "
          f"new connection {med[(metrics[7], 'docker-proxy')] / med[(metrics[7], 'berth-proxy')]:.2f}x")
    print(f"  berth -t2 / docker-proxy: keep-alive {med[(metrics[2], 'berth -t2')] / med[(metrics[2], 'docker-proxy')]:.2f}x, "
          f"new connection {med[(metrics[5], 'berth -t2')] / med[(metrics[5], 'docker-proxy')]:.2f}x, "
          f"4-stream throughput {med[(metrics[1], 'berth -t2')] / med[(metrics[1], 'docker-proxy')]:.2f}x")
    print(f"  berth-proxy / kernel DNAT, keep-alive rate:   {med[(metrics[2], 'berth-proxy')] / med[(metrics[2], 'kernel DNAT')]:.2f}x")

    if args.http_only:
        return
    # Memory with 1,000 idle connections through each proxy.
    print("\nmemory, 1,000 idle connections through one mapping (MB, RSS / PSS; socat: all its processes)")
    for name, port in (("berth-proxy", 10080), ("docker-proxy", 20080), ("socat", 30080)):
        proc = next(p for p in procs.procs if os.path.basename(p.args[0]) == name and
                    any(str(port) in a for a in p.args))
        before = memory([proc.pid] + children(proc.pid))
        conns = []
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            conns.append(s)
        time.sleep(2)
        after = memory([proc.pid] + children(proc.pid))
        print(f"  {name:14} idle {before[0]:7.1f} / {before[1]:7.1f}   with 1,000 connections {after[0]:7.1f} / "
              f"{after[1]:7.1f}")
        for s in conns:
            s.close()
        time.sleep(1)

    # 100 mappings: one berth-proxy process vs 100 docker-proxy processes.
    print("\nmemory, 100 idle mappings (MB, RSS / PSS summed over processes)")
    flags = []
    for i in range(100):
        flags += ["--mapping", f"tcp:127.0.0.1:{21000 + i}:{CONTAINER}:{HTTP}"]
    one = procs.start([berth, *flags], readiness=True)
    time.sleep(0.5)
    ours = memory([one.pid])
    many = [procs.start([DOCKER_PROXY, "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", str(22000 + i),
                         "-container-ip", CONTAINER, "-container-port", str(HTTP)], readiness=True) for i in range(100)]
    time.sleep(0.5)
    theirs = memory([p.pid for p in many])
    print(f"  berth-proxy, 1 process:       {ours[0]:7.1f} / {ours[1]:7.1f}")
    print(f"  docker-proxy, 100 processes:  {theirs[0]:7.1f} / {theirs[1]:7.1f}   "
          f"(PSS ratio {theirs[1] / ours[1]:.0f}x)")
    subprocess.run(["nft", "delete", "table", "ip", "berth_bench_dnat"], check=False)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench/proxy.py creates namespaces: run it as root")
    main()
