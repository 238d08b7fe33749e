#!/usr/bin/env python3
"""bridge + host-local, berth vs the reference plugins (/usr/lib/cni, Debian's
containernetworking-plugins), same run, same configurations, each in a scratch host namespace:

  - ADD and DEL latency (median), with and without ipMasq, interleaved;
  - the latency of ADD number 1, 50, 100 and 200 on one bridge, and of the DELs in the same positions;
  - wall time of 32 ADDs started at once.

Run as root: sudo bench/bridge.py [RUNS]   (installs iptables, which the reference needs for ipMasq)"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib as b

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
if not shutil.which("iptables"):
    subprocess.run(["apt-get", "install", "-y", "-q", "iptables"], check=True, stdout=subprocess.DEVNULL)
bin_dir = b.release_bin_dir()
SIDES = {"berth": bin_dir, "reference": b.REFERENCE_DIR}
data = tempfile.mkdtemp(prefix="berth-bench-")


def config(side, name, bridge, subnet, masq):
    return ('{"cniVersion": "1.0.0", "name": "%s", "type": "bridge", "bridge": "%s", "isGateway": true, '
            '"ipMasq": %s, "ipam": {"type": "host-local", "subnet": "%s", "dataDir": "%s/%s"}}'
            % (name, bridge, "true" if masq else "false", subnet, data, side))


def plugin(side):
    return os.path.join(SIDES[side], "bridge")


def add(side, conf, netns, cid):
    return b.run_plugin(plugin(side), "ADD", conf, netns=netns, container_id=cid, cni_path=SIDES[side])[0]


def delete(side, conf, netns, cid):
    return b.run_plugin(plugin(side), "DEL", conf, netns=netns, container_id=cid, cni_path=SIDES[side])[0]


results = {}
try:
    with b.Namespaces("berth-bench-br") as ns:
        ns.enter_host()
        containers = [ns.add(f"c{i}") for i in range(200)]

        # 1. ADD/DEL latency, interleaved berth/reference, with and without masquerade.
        for masq in (False, True):
            confs = {s: config(s, f"lat{int(masq)}", f"br{s[0]}{int(masq)}", f"10.{60 + masq}.{0 if s == 'berth' else 1}.0/24", masq) for s in SIDES}
            samples = {(s, op): [] for s in SIDES for op in ("add", "del")}
            for i in range(runs):
                for s in SIDES:
                    samples[(s, "add")].append(add(s, confs[s], containers[0], f"lat{i}"))
                    samples[(s, "del")].append(delete(s, confs[s], containers[0], f"lat{i}"))
            for op in ("add", "del"):
                results[f"{op.upper()} {'with' if masq else 'without'} ipMasq"] = (
                    b.median_ms(samples[("berth", op)]), b.median_ms(samples[("reference", op)]))

        # 2. ADD #1..#200 on one bridge (with masquerade), then DEL in the same order.
        positions = (1, 50, 100, 200)
        for s in SIDES:
            conf = config(s, f"scale-{s}", f"bs{s[0]}", "10.70.0.0/23" if s == "berth" else "10.72.0.0/23", True)
            adds, dels = [], []
            for i, c in enumerate(containers):
                adds.append(add(s, conf, c, f"s{i}"))
            for i, c in enumerate(containers):
                dels.append(delete(s, conf, c, f"s{i}"))
            for p in positions:
                # median of the 5 around the position, to tame one-off noise
                window = slice(max(0, p - 3), min(len(adds), p + 2))
                results.setdefault(f"ADD #{p}", [None, None])[0 if s == "berth" else 1] = statistics.median(adds[window]) * 1000
                results.setdefault(f"DEL #{p}", [None, None])[0 if s == "berth" else 1] = statistics.median(dels[window]) * 1000

        # 3. 32 ADDs at once on a new network, wall time.
        for s in SIDES:
            conf = config(s, f"par-{s}", f"bp{s[0]}", "10.80.0.0/24" if s == "berth" else "10.81.0.0/24", True)
            env = lambda i: {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"p{i}", "CNI_NETNS": containers[i], "CNI_IFNAME": "eth0",
                             "CNI_PATH": SIDES[s], "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            start = time.perf_counter()
            procs = [subprocess.Popen([plugin(s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(i)) for i in range(32)]
            for p in procs:
                p.communicate(conf.encode())
            wall = time.perf_counter() - start
            failed = sum(p.returncode != 0 for p in procs)
            results.setdefault("32 parallel ADDs (wall)", [None, None])[0 if s == "berth" else 1] = wall * 1000
            if failed:
                print(f"  {s}: {failed} of 32 parallel ADDs failed")
            for i in range(32):
                delete(s, conf, containers[i], f"p{i}")
finally:
    shutil.rmtree(data, ignore_errors=True)

b.table(f"bridge + host-local ({runs} runs for latencies; one run of 200 for positions)",
        [(label, ours, theirs) for label, (ours, theirs) in results.items()])
ours = results
print(f"\n  berth ADD #200 / ADD #1: {ours['ADD #200'][0] / ours['ADD #1'][0]:.2f}x   "
      f"reference: {ours['ADD #200'][1] / ours['ADD #1'][1]:.2f}x")
print(f"  berth DEL #200 / DEL #1: {ours['DEL #200'][0] / ours['DEL #1'][0]:.2f}x   "
      f"reference: {ours['DEL #200'][1] / ours['DEL #1'][1]:.2f}x")
