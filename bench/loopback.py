#!/usr/bin/env python3
"""VERSION and loopback ADD+DEL latency: berth's loopback vs the reference loopback
(/usr/lib/cni, Debian's containernetworking-plugins), in the same run, interleaved, medians and
ratios; plus the installed size of berth's plugins.  Run as root: sudo bench/loopback.py [RUNS]"""

import os
import sys

import benchlib as b

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 300
bin_dir = b.release_bin_dir()
ours, theirs = os.path.join(bin_dir, "loopback"), os.path.join(b.REFERENCE_DIR, "loopback")
config = '{"cniVersion": "1.0.0", "name": "lo-bench", "type": "loopback"}'

with b.Namespaces("berth-bench-lo") as ns:
    ns.enter_host()
    container = ns.add("c")
    samples = {key: [] for key in ("v-ours", "v-ref", "add-ours", "add-ref", "del-ours", "del-ref", "pair-ours", "pair-ref")}
    for _ in range(runs):  # interleaved so load changes hit both alike
        for tag, exe in (("ours", ours), ("ref", theirs)):
            t, _ = b.run_plugin(exe, "VERSION", "")
            samples[f"v-{tag}"].append(t)
            add, _ = b.run_plugin(exe, "ADD", config, netns=container, ifname="lo")
            delete, _ = b.run_plugin(exe, "DEL", config, netns=container, ifname="lo")
            samples[f"add-{tag}"].append(add)
            samples[f"del-{tag}"].append(delete)
            samples[f"pair-{tag}"].append(add + delete)
    base = b.baseline_ms()

m = {k: b.median_ms(v) for k, v in samples.items()}
b.table(f"loopback, {runs} runs each, medians (driver's own spawn cost, /bin/true: {base:.2f} ms)", [
    ("VERSION", m["v-ours"], m["v-ref"]),
    ("ADD", m["add-ours"], m["add-ref"]),
    ("DEL", m["del-ours"], m["del-ref"]),
    ("ADD+DEL", m["pair-ours"], m["pair-ref"]),
    ("VERSION net of spawn cost", m["v-ours"] - base, m["v-ref"] - base),
    ("ADD+DEL net of spawn cost", m["pair-ours"] - 2 * base, m["pair-ref"] - 2 * base),
])

# The plugins are one executable installed under each plugin's name (hard links).
names = os.popen(f"{bin_dir}/berth-cni --list").read().split()
size = b.stripped_size(os.path.join(bin_dir, "berth-cni"))
ref_sizes = {n: os.path.getsize(os.path.join(b.REFERENCE_DIR, n)) for n in names if os.path.exists(os.path.join(b.REFERENCE_DIR, n))}
print(f"\ninstalled size (stripped): berth {len(names)} plugins in one executable, {size / 1e6:.1f} MB; "
      f"the reference's {len(ref_sizes)} of the same names {sum(ref_sizes.values()) / 1e6:.1f} MB "
      f"({size / sum(ref_sizes.values()):.2f}x)")
