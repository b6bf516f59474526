#!/usr/bin/env python3
"""Measurement driver for bench/vmm.sh (run that script, not this file).

Times vessel's VMM and QEMU's microvm on the same small PVH guests,
interleaved: every iteration runs each VMM once, in a fresh random order, so
that both share whatever noise the machine has at that moment.

- first byte: from just before posix_spawn until the first byte of the
  guest's serial output arrives on the VMM's stdout (a pipe);
- exit: from spawn until the VMM process is reaped (the `exit` guest prints a
  line and resets; QEMU runs with -no-reboot so a reset ends it too);
- VM released: from spawn until the VMM and every process it left behind
  have ended: vessel hands KVM's destruction of the VM to a helper task that
  finishes after the VMM exits (docs/vmm.md, "Asynchronous teardown"); this
  script is a child subreaper, so the helper is reparented here and reaped;
- memory: with the `idle` guest (prints a line, then halts with interrupts
  off), once its line is out and the VMM has settled, /proc/PID/smaps gives
  the VMM's resident memory; the guest RAM mapping (the anonymous mapping of
  exactly the guest's size) is the guest pages touched, and overhead = total
  RSS - guest RAM RSS.
"""

import argparse
import ctypes
import json
import os
import random
import select
import signal
import statistics
import sys
import time


class Failed(Exception):
    pass


def become_subreaper():
    """Orphans of the VMMs (vessel's teardown helper) are reparented here."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise Failed(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


def reap_orphans():
    """Waits for every child left (reparented here when the VMM exited):
    the perf_counter_ns when the last one ended."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return time.perf_counter_ns()


def spawn(argv):
    """Starts argv with stdin /dev/null, stdout a pipe, stderr a temp file."""
    rfd, wfd = os.pipe()
    errfd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, wfd, 1),
        (os.POSIX_SPAWN_DUP2, errfd, 2),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    os.close(wfd)
    return pid, rfd, errfd, t0


def stderr_of(errfd):
    os.lseek(errfd, 0, os.SEEK_SET)
    data = os.read(errfd, 4096).decode(errors="replace").strip()
    os.close(errfd)
    return data


def read_until(rfd, pred, deadline):
    """Reads rfd until pred(data) holds; returns (data, ns of first byte)."""
    data = b""
    first = None
    while not pred(data):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failed(f"timed out; output so far {data[-200:]!r}")
        ready, _, _ = select.select([rfd], [], [], left)
        if not ready:
            continue
        chunk = os.read(rfd, 65536)
        if first is None and chunk:
            first = time.perf_counter_ns()
        if not chunk:
            break
        data += chunk
    return data, first


def run_exit(argv, marker, timeout):
    """One launch-to-exit run: (ns to first byte, ns to exit, ns to the VM
    released)."""
    pid, rfd, errfd, t0 = spawn(argv)
    deadline = time.monotonic() + timeout
    try:
        data, first = read_until(rfd, lambda d: marker in d, deadline)
        # Drain to EOF (the VMM closes stdout when it exits).
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed("no exit")
            ready, _, _ = select.select([rfd], [], [], left)
            if ready and not os.read(rfd, 65536):
                break
        _, status = os.waitpid(pid, 0)
        t_exit = time.perf_counter_ns()
        t_released = reap_orphans()
    except Failed:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reap_orphans()
        raise Failed(f"{argv[0]}: {stderr_of(errfd)}")
    finally:
        os.close(rfd)
    err = stderr_of(errfd)
    if marker not in data or os.waitstatus_to_exitcode(status) != 0:
        raise Failed(f"{argv[0]} exited {os.waitstatus_to_exitcode(status)}: {err} / {data!r}")
    return first - t0, t_exit - t0, t_released - t0


def smaps(pid, guest_bytes):
    """(total RSS KiB, guest RAM RSS KiB) of pid.

    The guest RAM is the anonymous mapping of the guest's size; the kernel
    sometimes merges it with an adjacent anonymous mapping of the same
    flags (a thread's arena), so a mapping up to 1 MiB larger counts too
    (the overhead is then understated by at most that mapping's RSS)."""
    total = guest = 0
    size = rss = 0
    anon = False

    def is_guest(kib):
        return guest_bytes <= kib * 1024 <= guest_bytes + (1 << 20)

    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                # A mapping header: close the previous one.
                if anon and is_guest(size):
                    guest = max(guest, rss)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                size, rss = (hi - lo) // 1024, 0
                anon = len(parts) == 5 or parts[5].startswith("[anon")
            elif parts[0] == "Rss:":
                rss = int(parts[1])
                total += rss
    if anon and is_guest(size):
        guest = max(guest, rss)
    return total, guest


def vmm_pid(pid):
    """The VMM itself: QEMU runs under `timeout`, whose child it is."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = f.read().split()
    return int(children[0]) if children else pid


def run_memory(argv, marker, guest_mib, settle, timeout):
    pid, rfd, errfd, _ = spawn(argv)
    vmm = pid
    try:
        read_until(rfd, lambda d: marker in d, time.monotonic() + timeout)
        time.sleep(settle)
        vmm = vmm_pid(pid)
        total, guest = smaps(vmm, guest_mib << 20)
    finally:
        # The VMM itself too: killing QEMU's `timeout` alone would leave
        # QEMU running (reparented here, so reap_orphans would wait on it).
        if vmm != pid:
            os.kill(vmm, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reap_orphans()
        os.close(rfd)
        os.close(errfd)
    if guest == 0:
        raise Failed(f"{argv[0]}: no {guest_mib} MiB guest RAM mapping in smaps")
    return total, guest


def summary(ns):
    ms = sorted(x / 1e6 for x in ns)
    return {
        "median": statistics.median(ms),
        "p90": ms[min(len(ms) - 1, int(len(ms) * 0.9))],
        "min": ms[0],
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--vessel-exit", required=True)
    p.add_argument("--qemu-exit", required=True)
    p.add_argument("--vessel-idle", required=True)
    p.add_argument("--qemu-idle", required=True)
    p.add_argument("--memory-mib", type=int, default=32)
    p.add_argument("--json")
    # The column name of the --qemu-* commands: bench/vmm.sh --against puts
    # another vessel build there.
    p.add_argument("--peer-name", default="qemu")
    a = p.parse_args()
    cmds = {
        "exit": {"vessel": json.loads(a.vessel_exit), "qemu": json.loads(a.qemu_exit)},
        "idle": {"vessel": json.loads(a.vessel_idle), "qemu": json.loads(a.qemu_idle)},
    }
    vmms = ("vessel", "qemu")
    marker = b"bench guest ok\n"
    first = {v: [] for v in vmms}
    exits = {v: [] for v in vmms}
    released = {v: [] for v in vmms}
    become_subreaper()
    mem = {v: [] for v in vmms}
    for i in range(a.warmup + a.iterations):
        order = list(vmms)
        random.shuffle(order)
        for v in order:
            f, e, r = run_exit(cmds["exit"][v], marker, 20)
            if i >= a.warmup:
                first[v].append(f)
                exits[v].append(e)
                released[v].append(r)
    for _ in range(5):
        for v in vmms:
            mem[v].append(run_memory(cmds["idle"][v], marker, a.memory_mib, 0.2, 20))

    results = {}
    peer = a.peer_name
    print(f"{'':34} {'vessel':>8} {peer:>10} {'vessel/' + peer:>11}")
    for name, data in (("first serial byte ms", first), ("exit ms", exits),
                       ("VM released ms", released)):
        s = {v: summary(data[v]) for v in vmms}
        results[name] = s
        for stat in ("median", "p90", "min"):
            label = f"{name} {stat}" if stat != "median" else name + " (median)"
            ratio = s["vessel"][stat] / s["qemu"][stat]
            print(f"{label:34} {s['vessel'][stat]:8.2f} {s['qemu'][stat]:10.2f} {ratio:10.2f}")
    mm = {}
    for v in vmms:
        totals = [t for t, _ in mem[v]]
        guests = [g for _, g in mem[v]]
        over = [t - g for t, g in mem[v]]
        mm[v] = {
            "rss_kib": statistics.median(totals),
            "guest_kib": statistics.median(guests),
            "overhead_kib": statistics.median(over),
        }
    results["memory"] = mm
    for key, label in (("rss_kib", "RSS MiB"), ("guest_kib", "guest pages touched MiB"),
                       ("overhead_kib", "VMM overhead MiB")):
        ratio = mm["vessel"][key] / mm["qemu"][key] if mm["qemu"][key] else float("nan")
        print(f"{label:34} {mm['vessel'][key] / 1024:8.2f} {mm['qemu'][key] / 1024:10.2f} {ratio:10.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"iterations": a.iterations, "results": results}, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"vmm.py: {e}", file=sys.stderr)
        sys.exit(1)
