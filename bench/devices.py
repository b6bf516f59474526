#!/usr/bin/env python3
"""Measurement driver for bench/devices.sh (run that script, not this file).

Times device throughput with the guest bench/guests/devices.c, which prints
a line when a transfer starts and when it ends; the host timestamps the
lines as they arrive on the VMM's stdout (its serial console, a pipe).

- block: the guest reads its whole virtio-blk disk in order; time from its
  `blk: start` line to its `blk: end` line. vessel and QEMU's microvm run
  interleaved, in a fresh random order each iteration.
- vsock (vessel only): the guest accepts one connection on port 1234; the
  host connects to the device's Unix socket, writes `CONNECT 1234\\n`, reads
  `OK ...`, then sends the bytes and shuts its side down; time from the
  first byte sent to the guest's `vsock: end N bytes` line, whose N must be
  every byte.
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import statistics
import sys
import time


class Failed(Exception):
    pass


class Vmm:
    """A VMM process whose stdout lines are timestamped as they come."""

    def __init__(self, argv):
        self.argv = argv
        rfd, wfd = os.pipe()
        self.errfd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, wfd, 1),
            (os.POSIX_SPAWN_DUP2, self.errfd, 2),
        ]
        self.pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
        os.close(wfd)
        self.rfd = rfd
        self.buf = b""
        self.lines = []  # (ns, line)

    def wait_line(self, prefix, deadline):
        """Reads until a line starting with prefix arrived: (ns, line)."""
        while True:
            for t, line in self.lines:
                if line.startswith(prefix):
                    return t, line
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{self.argv[0]}: no {prefix!r} line; got {self.output()!r}")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.rfd, 65536)
            now = time.perf_counter_ns()
            if not chunk:
                raise Failed(f"{self.argv[0]} ended: {self.stderr()} / {self.output()!r}")
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.lines.append((now, line.decode(errors="replace")))

    def output(self):
        return "\n".join(line for _, line in self.lines)[-400:]

    def stderr(self):
        os.lseek(self.errfd, 0, os.SEEK_SET)
        return os.read(self.errfd, 4096).decode(errors="replace").strip()

    def finish(self, deadline):
        """Waits for the guest's last line and the process's exit."""
        self.wait_line("bench guest: done", deadline)
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.close()
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.005)
        self.kill()
        raise Failed(f"{self.argv[0]} did not exit")

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.close()

    def close(self):
        for fd in (self.rfd, self.errfd):
            try:
                os.close(fd)
            except OSError:
                pass


def run_block(argv, timeout):
    """One run: seconds from `blk: start` to `blk: end`, and MiB read."""
    vmm = Vmm(argv)
    deadline = time.monotonic() + timeout
    try:
        t0, _ = vmm.wait_line("blk: start", deadline)
        t1, end = vmm.wait_line("blk: end", deadline)
        vmm.finish(deadline)
    except Failed:
        vmm.kill()
        raise
    # "blk: end 256 MiB, errors 0, marks ok"
    words = end.split()
    if not end.endswith("errors 0, marks ok"):
        raise Failed(f"{argv[0]}: {end}")
    return (t1 - t0) / 1e9, int(words[2])


def run_vsock(argv, uds, mib, timeout):
    """One run: seconds from the first byte sent to the guest's last line."""
    vmm = Vmm(argv)
    deadline = time.monotonic() + timeout
    total = mib << 20
    chunk = bytes(range(256)) * 1024  # 256 KiB
    try:
        vmm.wait_line("vsock: listening", deadline)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(uds)
        s.sendall(b"CONNECT 1234\n")
        ok = b""
        while not ok.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                raise Failed("vsock: no OK line")
            ok += b
        if not ok.startswith(b"OK "):
            raise Failed(f"vsock: {ok!r}")
        t0 = time.perf_counter_ns()
        sent = 0
        while sent < total:
            n = min(len(chunk), total - sent)
            s.sendall(chunk[:n])
            sent += n
        s.shutdown(socket.SHUT_WR)
        t1, end = vmm.wait_line("vsock: end", deadline)
        s.close()
        vmm.finish(deadline)
    except (Failed, OSError) as e:
        vmm.kill()
        raise Failed(f"{argv[0]}: {e}")
    # "vsock: end 268435456 bytes, flags 3"
    got = int(end.split()[2])
    if got != total:
        raise Failed(f"vsock: the guest got {got} of {total} bytes")
    try:
        os.unlink(uds)
    except FileNotFoundError:
        pass
    return (t1 - t0) / 1e9


def summary(values):
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--vessel-blk", required=True)
    p.add_argument("--qemu-blk", required=True)
    p.add_argument("--vessel-vsock", required=True)
    p.add_argument("--uds", required=True)
    p.add_argument("--vsock-mib", type=int, default=256)
    p.add_argument("--json")
    a = p.parse_args()
    blk = {"vessel": json.loads(a.vessel_blk), "qemu": json.loads(a.qemu_blk)}
    secs = {v: [] for v in blk}
    mib = None
    for i in range(a.warmup + a.iterations):
        order = list(blk)
        random.shuffle(order)
        for v in order:
            s, mib = run_block(blk[v], 120)
            if i >= a.warmup:
                secs[v].append(s)
    vsock = []
    for i in range(a.warmup + a.iterations):
        s = run_vsock(json.loads(a.vessel_vsock), a.uds, a.vsock_mib, 300)
        if i >= a.warmup:
            vsock.append(s)

    results = {}
    print(f"{'':40} {'vessel':>9} {'qemu':>9} {'vessel/qemu':>11}")
    rate = {v: summary([mib / s for s in secs[v]]) for v in blk}
    results["block_read_mib_s"] = rate
    for stat in ("median", "min", "max"):
        label = f"block read {mib} MiB, MiB/s ({stat})"
        ratio = rate["vessel"][stat] / rate["qemu"][stat]
        print(f"{label:40} {rate['vessel'][stat]:9.0f} {rate['qemu'][stat]:9.0f} {ratio:11.2f}")
    vr = summary([a.vsock_mib / s for s in vsock])
    results["vsock_host_to_guest_mib_s"] = {"vessel": vr}
    for stat in ("median", "min", "max"):
        label = f"vsock host->guest {a.vsock_mib} MiB, MiB/s ({stat})"
        print(f"{label:40} {vr[stat]:9.0f} {'n/a':>9} {'n/a':>11}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"iterations": a.iterations, "results": results}, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"devices.py: {e}", file=sys.stderr)
        sys.exit(1)
