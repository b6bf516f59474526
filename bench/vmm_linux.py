#!/usr/bin/env python3
"""Measurement driver for bench/vmm-linux.sh (run that script, not this file).

Boots the same Linux kernel (Debian's cloud vmlinux, by its PVH entry) under
vessel's VMM and QEMU's microvm, interleaved in random order, and times from
just before posix_spawn until each milestone the kernel prints on its early
serial console appears on the VMM's stdout:

- first byte: the first serial output;
- banner: "Linux version";
- memory map: the last "BIOS-e820" line (the map the VMM gave the kernel).

Under a nested, emulated KVM (ENVIRONMENT.md) the kernel stops after these,
so each run is killed once the last milestone is seen; with hardware
virtualization the same milestones come in milliseconds.
"""

import argparse
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmm import Failed, read_until, spawn, stderr_of, summary  # noqa: E402

MILESTONES = (("first serial byte", None), ("banner", b"Linux version"),
              ("e820 map", b"BIOS-e820"))


def e820_done(data):
    """The map is printed when a line follows the last BIOS-e820 line."""
    i = data.rfind(b"BIOS-e820")
    return i >= 0 and data.find(b"\n", i) >= 0 and data.find(b"\n", data.find(b"\n", i) + 1) >= 0


def run_once(argv, timeout):
    pid, rfd, errfd, t0 = spawn(argv)
    deadline = time.monotonic() + timeout
    seen = {}
    try:
        data = b""
        while "e820 map" not in seen:
            chunk, at = read_until(rfd, lambda d: len(d) > 0, deadline)
            if not chunk:
                raise Failed(f"exited before the memory map; output {data[-300:]!r}")
            data += chunk
            seen.setdefault("first serial byte", at - t0)
            if "banner" not in seen and b"Linux version" in data:
                seen["banner"] = at - t0
            if "banner" in seen and e820_done(data):
                seen["e820 map"] = at - t0
    except Failed as e:
        raise Failed(f"{argv[0]}: {e}; stderr: {stderr_of(errfd)}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
    return seen


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--vessel", required=True)
    p.add_argument("--qemu", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--json")
    a = p.parse_args()
    cmds = {"vessel": json.loads(a.vessel), "qemu": json.loads(a.qemu)}
    times = {v: {m: [] for m, _ in MILESTONES} for v in cmds}
    for _ in range(a.iterations):
        order = list(cmds)
        random.shuffle(order)
        for v in order:
            for m, ns in run_once(cmds[v], a.timeout).items():
                times[v][m].append(ns)
    results = {}
    print(f"{'':28} {'vessel':>10} {'qemu':>10} {'vessel/qemu':>11}")
    for m, _ in MILESTONES:
        s = {v: summary(times[v][m]) for v in cmds}
        results[m] = s
        ratio = s["vessel"]["median"] / s["qemu"]["median"]
        print(f"{m + ' ms (median)':28} {s['vessel']['median']:10.1f} "
              f"{s['qemu']['median']:10.1f} {ratio:10.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"iterations": a.iterations, "results": results}, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"vmm_linux.py: {e}", file=sys.stderr)
        sys.exit(1)
