"""Helpers shared by berth's benchmarks: run CNI plugins exactly as a runtime does (environment,
stdin, inside a network namespace), time them, and print side-by-side ratios.

The benchmark process moves itself into a scratch "host" namespace it creates (setns on its
only thread), so plugins never touch the machine's own network configuration."""

import ctypes
import os
import statistics
import subprocess
import tempfile
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_DIR = "/usr/lib/cni"


def release_bin_dir():
    """Builds the release binaries (static Swift runtime) and returns their directory."""
    flags = ["-c", "release", "--static-swift-stdlib"]
    subprocess.run(["swift", "build", *flags], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(["swift", "build", *flags, "--show-bin-path"], cwd=REPO, check=True,
                         capture_output=True, text=True)
    bin_dir = out.stdout.strip()
    # The plugins are one executable linked under each plugin's name, as `make install` does.
    names = subprocess.run([os.path.join(bin_dir, "berth-cni"), "--list"], check=True, capture_output=True, text=True)
    for name in names.stdout.split():
        link = os.path.join(bin_dir, name)
        if os.path.lexists(link) and not os.path.islink(link):
            os.unlink(link)  # a stale per-plugin build
        if not os.path.lexists(link):
            os.symlink("berth-cni", link)
    return bin_dir


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


class Namespaces:
    """Pinned scratch namespaces (ip netns) removed on exit; `enter_host` moves this process
    into a scratch host namespace so every plugin it runs works there."""

    def __init__(self, prefix):
        self.prefix = f"{prefix}-{os.getpid()}"
        self.names = []
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def add(self, suffix):
        name = f"{self.prefix}-{suffix}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        return f"/run/netns/{name}"

    def enter_host(self):
        _setns(self.add("host"))

    def close(self):
        if _libc.setns(self.home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back home")
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "delete", name], check=False)
        self.names = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_plugin(exe, command, config, netns="", container_id="bench", ifname="eth0", cni_path=None,
               args=None, check=True):
    """Runs one plugin invocation; returns (seconds, stdout)."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": cni_path or os.path.dirname(exe),
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if args:
        env["CNI_ARGS"] = args
    start = time.perf_counter()
    proc = subprocess.run([exe], input=config.encode(), env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{exe} {command} failed ({proc.returncode}): {proc.stdout.decode()} {proc.stderr.decode()}")
    return elapsed, proc.stdout


def median_ms(samples):
    return statistics.median(samples) * 1000


def baseline_ms(runs=200):
    """What starting a process costs from this driver (/bin/true), to read figures net of it."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["/bin/true"])
        samples.append(time.perf_counter() - start)
    return median_ms(samples)


def table(title, rows):
    """rows: (label, berth_ms, reference_ms)."""
    print(f"\n{title}")
    print(f"  {'':34} {'berth':>10} {'reference':>10} {'ratio':>8}")
    for label, ours, theirs in rows:
        ratio = ours / theirs if theirs else float("nan")
        print(f"  {label:34} {ours:9.2f}ms {theirs:9.2f}ms {ratio:7.2f}x")


def installed_size(paths):
    return sum(os.path.getsize(p) for p in paths)


def stripped_size(path):
    with tempfile.NamedTemporaryFile() as tmp:
        subprocess.run(["strip", "-o", tmp.name, path], check=True)
        return os.path.getsize(tmp.name)
