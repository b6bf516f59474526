#!/usr/bin/env python3
"""Measurement driver for bench/vmm-linux.sh (run that script, not this file).

Boots the same Linux kernel (Debian's cloud vmlinux, by its PVH entry) under
vessel's VMM and QEMU's microvm, interleaved in random order. Every iteration
boots each VMM twice, in a fresh random order:

A timed run times from just before posix_spawn until each milestone the
kernel prints on its early serial console appears on the VMM's stdout:

- first byte: the first serial output;
- banner: "Linux version";
- memory map: the last "BIOS-e820" line (the map the VMM gave the kernel);

and, when the banner appears, reads the time the VMM's threads have spent on
a CPU from /proc/PID/task/*/schedstat: the vCPU thread's (vessel-vcpu0, QEMU's
"CPU 0/KVM", named with -name debug-threads=on) and all live threads' of the
VMM's processes, and how long the vCPU thread waited on a run queue (ready
but not running: the machine's load).

A counted run (with --perf) boots the same command under
`perf stat -e kvm:kvm_emulate_insn --control ...`, which counts the guest
instructions the host's KVM emulated on behalf of the VMM's threads, from
exec to the banner (the driver sends perf "disable" when the banner appears,
then kills the VMM). Unlike the wall-clock milestones this figure does not
depend on the machine's load. perf's own start (about 50 ms) is why the
counted runs are separate from the timed ones.

Under a nested, emulated KVM (ENVIRONMENT.md) the kernel stops after these
milestones, so each run is killed once the last one is seen; with hardware
virtualization the same milestones come in milliseconds and KVM emulates
almost nothing (the count is then near zero).

With --profile, one more boot per VMM records the RIP of every emulated
instruction with ftrace (event kvm/kvm_emulate_insn) up to the banner and
prints the guest kernel functions that account for most of them, named from
the vmlinux's own symbol table (kallsyms-finder, pip package vmlinux-to-elf).
"""

import argparse
import bisect
import collections
import json
import os
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmm import Failed, read_until, spawn, stderr_of, summary  # noqa: E402

MILESTONES = ("first serial byte", "banner", "e820 map")
BANNER = b"Linux version"
EVENT = "kvm:kvm_emulate_insn"
# vessel names its vCPU threads vessel-vcpuN; QEMU "CPU N/KVM".
VCPU_THREAD = re.compile(r"^(vessel-vcpu\d+|CPU \d+/KVM)$")
TRACING = "/sys/kernel/tracing"


def e820_done(data):
    """The map is printed when a line follows the last BIOS-e820 line."""
    i = data.rfind(b"BIOS-e820")
    return i >= 0 and data.find(b"\n", i) >= 0 and data.find(b"\n", data.find(b"\n", i) + 1) >= 0


def process_tree(pid):
    """pid and its descendants, parents before children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def threads(pid):
    """(pid, tid, comm, ns on CPU, ns waiting on a run queue) of every live
    thread in pid's tree."""
    out = []
    for p in process_tree(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    ns, wait = (int(x) for x in f.read().split()[:2])
            except (FileNotFoundError, ProcessLookupError):
                continue
            out.append((p, int(t), comm, ns, wait))
    return out


def cpu_times(pid, skip=()):
    """(vCPU threads' ns on CPU, all threads' ns on CPU, vCPU threads' ns
    waiting on a run queue) of the VMM under pid."""
    ts = [t for t in threads(pid) if t[0] not in skip]
    vcpu = [t for t in ts if VCPU_THREAD.match(t[2])]
    if not vcpu:
        raise Failed(f"no vCPU thread among {[t[2] for t in ts]}")
    return sum(t[3] for t in vcpu), sum(t[3] for t in ts), sum(t[4] for t in vcpu)


def kill_tree(pid, keep_root=False):
    """SIGKILLs pid's descendants, deepest first, then pid unless keep_root."""
    tree = process_tree(pid)
    for p in reversed(tree[1:] if keep_root else tree):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def timed_run(argv, timeout):
    """Milestones in ns from spawn, and (vCPU, all threads) ns on CPU at the banner."""
    pid, rfd, errfd, t0 = spawn(argv)
    deadline = time.monotonic() + timeout
    seen = {}
    cpu = None
    try:
        data = b""
        while "e820 map" not in seen:
            chunk, at = read_until(rfd, lambda d: len(d) > 0, deadline)
            if not chunk:
                raise Failed(f"exited before the memory map; output {data[-300:]!r}")
            data += chunk
            seen.setdefault("first serial byte", at - t0)
            if "banner" not in seen and BANNER in data:
                seen["banner"] = at - t0
                cpu = cpu_times(pid)
            if "banner" in seen and e820_done(data):
                seen["e820 map"] = at - t0
    except Failed as e:
        raise Failed(f"{argv[0]}: {e}; stderr: {stderr_of(errfd)}")
    finally:
        kill_tree(pid)
        os.waitpid(pid, 0)
        os.close(rfd)
    os.close(errfd)
    return seen, cpu


def parse_perf_stat(path):
    """The count of EVENT in a `perf stat -x,` output file."""
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) >= 3 and fields[2] == EVENT:
                if not fields[0].isdigit():
                    raise Failed(f"perf stat: {EVENT} {fields[0]}")
                return int(fields[0])
    raise Failed(f"perf stat wrote no {EVENT} count: {open(path).read()!r}")


def counted_run(argv, perf, timeout):
    """Guest instructions KVM emulated for the VMM from exec to the banner,
    and the vCPU thread's ns on CPU at the banner (perf counting included)."""
    ctl_r, ctl_w = os.pipe()
    ack_r, ack_w = os.pipe()
    os.set_inheritable(ctl_r, True)
    os.set_inheritable(ack_w, True)
    out = tempfile.NamedTemporaryFile(prefix="vmm-linux-perf.", suffix=".csv")
    pargv = [perf, "stat", "-e", EVENT, "-x", ",", "-o", out.name,
             "--control", f"fd:{ctl_r},{ack_w}", "--"] + argv
    pid, rfd, errfd, _ = spawn(pargv)
    os.close(ctl_r)
    os.close(ack_w)
    deadline = time.monotonic() + timeout
    try:
        try:
            data, _ = read_until(rfd, lambda d: BANNER in d, deadline)
            if BANNER not in data:
                raise Failed(f"exited before the banner; output {data[-300:]!r}")
            os.write(ctl_w, b"disable\n")
            ready, _, _ = select.select([ack_r], [], [], 10)
            if not ready or not os.read(ack_r, 64).startswith(b"ack"):
                raise Failed("perf stat did not acknowledge 'disable'")
            vcpu, _, _ = cpu_times(pid, skip=(pid,))
        finally:
            # The VMM (and QEMU's timeout) but not perf, which then writes
            # its counts and exits.
            kill_tree(pid, keep_root=True)
            _, status = os.waitpid(pid, 0)
            for fd in (rfd, ctl_w, ack_r):
                os.close(fd)
        count = parse_perf_stat(out.name)
    except Failed as e:
        raise Failed(f"perf stat {argv[0]}: {e}; stderr: {stderr_of(errfd)}")
    os.close(errfd)
    out.close()
    return count, vcpu


# --- --profile: where the emulated instructions are, by guest function ---

def write(path, value):
    with open(f"{TRACING}/{path}", "w") as f:
        f.write(value)


def read(path):
    with open(f"{TRACING}/{path}") as f:
        return f.read().strip()


def kernel_symbols(vmlinux):
    """Sorted (address, name) of the kernel's text symbols, from its kallsyms."""
    out = subprocess.run(["kallsyms-finder", vmlinux], capture_output=True, text=True)
    syms = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW" and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            syms.append((int(parts[0], 16), parts[2]))
    if not syms:
        raise Failed(f"kallsyms-finder {vmlinux} gave no symbols: {out.stderr[-300:]}")
    syms.sort()
    return syms


def profile_run(argv, timeout, buffer_kb):
    """RIPs of the instructions KVM emulated for the VMM's vCPU thread up to
    the banner (an ftrace of kvm/kvm_emulate_insn), and how many events
    other threads had in that time."""
    saved = {p: read(p) for p in ("buffer_size_kb", "tracing_on", "events/kvm/kvm_emulate_insn/enable")}
    try:
        write("tracing_on", "0")
        write("buffer_size_kb", str(buffer_kb))
        write("trace", "")
        write("events/kvm/kvm_emulate_insn/enable", "1")
        write("tracing_on", "1")
        pid, rfd, errfd, _ = spawn(argv)
        deadline = time.monotonic() + timeout
        try:
            data, _ = read_until(rfd, lambda d: BANNER in d, deadline)
            write("tracing_on", "0")
            if BANNER not in data:
                raise Failed(f"{argv[0]} exited before the banner: {stderr_of(errfd)}")
            vcpu_tids = {t[1] for t in threads(pid) if VCPU_THREAD.match(t[2])}
        finally:
            write("tracing_on", "0")
            kill_tree(pid)
            os.waitpid(pid, 0)
            os.close(rfd)
        rips, others = [], 0
        line_re = re.compile(r"-(\d+)\s+\[\d+\].*kvm_emulate_insn: [0-9a-f]+:([0-9a-f]+):")
        with open(f"{TRACING}/trace") as f:
            for line in f:
                m = line_re.search(line)
                if not m:
                    continue
                if int(m.group(1)) in vcpu_tids:
                    rips.append(int(m.group(2), 16))
                else:
                    others += 1
        lost = 0
        for cpu in os.listdir(f"{TRACING}/per_cpu"):
            with open(f"{TRACING}/per_cpu/{cpu}/stats") as f:
                lost += sum(int(s.split(":")[1]) for s in f if s.startswith(("overrun", "dropped")))
        return rips, others, lost
    finally:
        write("events/kvm/kvm_emulate_insn/enable", saved["events/kvm/kvm_emulate_insn/enable"])
        write("trace", "")
        write("buffer_size_kb", saved["buffer_size_kb"])
        write("tracing_on", saved["tracing_on"])


def by_function(rips, syms):
    addrs = [a for a, _ in syms]
    c = collections.Counter()
    for r in rips:
        if r < 0xffffffff00000000:
            # Before the kernel switches to its virtual addresses (the 32-bit
            # PVH entry and the early 64-bit code run at physical ones).
            c["(physical addresses: startup code)"] += 1
            continue
        i = bisect.bisect_right(addrs, r) - 1
        c[syms[i][1] if i >= 0 else "?"] += 1
    return c


def profile(cmds, vmlinux, timeout, top, buffer_kb):
    syms = kernel_symbols(vmlinux)
    hists = {}
    for v, argv in cmds.items():
        rips, others, lost = profile_run(argv, timeout, buffer_kb)
        note = f"; {others} events of other threads left out" if others else ""
        note += f"; {lost} events LOST (raise --profile-buffer-kb)" if lost else ""
        print(f"== {v}: {len(rips)} emulated instructions traced on the vCPU thread{note}")
        hists[v] = (by_function(rips, syms), len(rips))
    names = [n for n, _ in (hists["vessel"][0] + hists["qemu"][0]).most_common(top)]
    print(f"{'guest function':40} {'vessel':>10} {'%':>5} {'qemu':>10} {'%':>5}")
    for n in names:
        row = "".join(f" {hists[v][0][n]:10d} {100 * hists[v][0][n] / max(hists[v][1], 1):5.1f}"
                      for v in ("vessel", "qemu"))
        print(f"{n[:40]:40}{row}")
    hv, hq = hists["vessel"][0], hists["qemu"][0]
    diff = sorted(set(hv) | set(hq), key=lambda n: -abs(hv[n] - hq[n]))[:10]
    print(f"largest differences (vessel - qemu, of {hists['vessel'][1] - hists['qemu'][1]:+d} in all):")
    for n in diff:
        print(f"  {n[:40]:40} {hv[n] - hq[n]:+10d}")
    for v in ("vessel", "qemu"):
        shown = sum(hists[v][0][n] for n in names)
        print(f"{v}: the {len(names)} functions above are "
              f"{100 * shown / max(hists[v][1], 1):.1f}% of its emulated instructions")


def counts_summary(xs):
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--vessel", required=True)
    p.add_argument("--qemu", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--perf", help="perf binary; without it no instruction counts")
    p.add_argument("--no-perf-reason", default="")
    p.add_argument("--profile", help="vmlinux: also trace one boot per VMM")
    p.add_argument("--profile-top", type=int, default=25)
    p.add_argument("--profile-buffer-kb", type=int, default=700000)
    p.add_argument("--json")
    a = p.parse_args()
    cmds = {"vessel": json.loads(a.vessel), "qemu": json.loads(a.qemu)}
    times = {v: {m: [] for m in MILESTONES} for v in cmds}
    cpu = {v: {"vcpu": [], "all": [], "wait": [], "rest": []} for v in cmds}
    counts = {v: [] for v in cmds}
    counted_vcpu = {v: [] for v in cmds}
    runs_log = []
    for _ in range(a.iterations):
        runs = [(v, k) for v in cmds for k in (("timed", "counted") if a.perf else ("timed",))]
        random.shuffle(runs)
        for v, kind in runs:
            if kind == "timed":
                seen, (vcpu, total, wait) = timed_run(cmds[v], a.timeout)
                for m, ns in seen.items():
                    times[v][m].append(ns)
                cpu[v]["vcpu"].append(vcpu)
                cpu[v]["all"].append(total)
                cpu[v]["wait"].append(wait)
                cpu[v]["rest"].append(seen["banner"] - vcpu - wait)
                runs_log.append({"vmm": v, "kind": kind, **{m + " ns": ns for m, ns in seen.items()},
                                 "vcpu cpu ns": vcpu, "all threads cpu ns": total,
                                 "vcpu runqueue wait ns": wait})
            else:
                n, vcpu = counted_run(cmds[v], a.perf, a.timeout)
                counts[v].append(n)
                counted_vcpu[v].append(vcpu)
                runs_log.append({"vmm": v, "kind": kind, "emulated insns": n,
                                 "vcpu cpu ns": vcpu})

    results = {}
    print(f"{'':36} {'vessel':>12} {'qemu':>12} {'vessel/qemu':>11}")

    def row(label, s, fmt):
        ratio = s["vessel"]["median"] / s["qemu"]["median"]
        print(f"{label:36} {fmt(s['vessel']['median']):>12} {fmt(s['qemu']['median']):>12} "
              f"{ratio:11.3f}")

    ms = "{:.1f}".format
    for m in MILESTONES:
        results[m] = {v: summary(times[v][m]) for v in cmds}
        row(f"{m} ms (median)", results[m], ms)
    results["vcpu cpu to banner"] = {v: summary(cpu[v]["vcpu"]) for v in cmds}
    row("vCPU thread CPU ms to banner", results["vcpu cpu to banner"], ms)
    results["vmm cpu to banner"] = {v: summary(cpu[v]["all"]) for v in cmds}
    row("all VMM threads CPU ms to banner", results["vmm cpu to banner"], ms)
    results["vcpu runqueue wait to banner"] = {v: summary(cpu[v]["wait"]) for v in cmds}
    row("vCPU thread run-queue wait ms", results["vcpu runqueue wait to banner"], ms)
    # The rest of the time to the banner: the VMM's start before its vCPU
    # thread exists, and the vCPU thread's sleeps.
    results["banner - vcpu cpu - wait"] = {v: summary(cpu[v]["rest"]) for v in cmds}
    row("banner - vCPU CPU - wait ms", results["banner - vcpu cpu - wait"], ms)
    if a.perf:
        results["emulated insns to banner"] = {v: counts_summary(counts[v]) for v in cmds}
        row("emulated instructions to banner", results["emulated insns to banner"],
            "{:,.0f}".format)
        results["emulation rate"] = {
            v: counts_summary([n / (ns / 1e9) for n, ns in zip(counts[v], counted_vcpu[v])])
            for v in cmds}
        row("  per vCPU CPU second (counted runs)", results["emulation rate"], "{:,.0f}".format)
        for v in cmds:
            print(f"{v} emulated instructions, each counted run: "
                  + ", ".join(f"{n:,}" for n in counts[v]))
    else:
        print(f"emulated instructions: not measured ({a.no_perf_reason or 'no perf'}); "
              "the wall-clock and CPU figures above are complete")
    if a.profile:
        profile(cmds, a.profile, a.timeout, a.profile_top, a.profile_buffer_kb)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"iterations": a.iterations, "results": results, "runs": runs_log}, f,
                      indent=2)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"vmm_linux.py: {e}", file=sys.stderr)
        sys.exit(1)
