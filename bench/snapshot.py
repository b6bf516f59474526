#!/usr/bin/env python3
"""Measurement driver for bench/snapshot.sh (run that script, not this file).

Restore latency of vessel and QEMU on the same counting guest, interleaved
(every iteration runs each case once, in a fresh random order):

- load: the VMM process already runs and waits (vessel: `--api-sock` and
  nothing else; QEMU: `-incoming defer` with a QMP socket); the clock starts
  just before the restore request is written (vessel: `PUT /snapshot/load`
  with resume_vm; QEMU: `migrate-incoming exec:cat FILE`) and stops at the
  first byte of guest output on the VMM's stdout (a pipe);
- spawn: from just before posix_spawn of `vessel vm run --restore …` /
  `qemu … -incoming exec:cat FILE` to the first byte of guest output.

The snapshots are made once, before the timed runs, by each VMM from its
own boot of the guest: vessel pauses and `PUT /snapshot/create`s; QEMU
migrates the running guest to a file (`migrate exec:cat > FILE`; a stopped
source would leave the restored VM paused, QEMU carries the run state).
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import statistics
import time


CHILDREN = set()


def spawn(argv):
    """Starts argv (stdout a pipe); it is killed at exit if still running."""
    rfd, wfd = os.pipe()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, wfd, 1),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    CHILDREN.add(pid)
    os.close(wfd)
    return pid, rfd, t0


def first_byte(rfd, timeout=20.0):
    ready, _, _ = select.select([rfd], [], [], timeout)
    if not ready or not os.read(rfd, 65536):
        raise RuntimeError("no guest output")
    return time.perf_counter_ns()


def kill(pid, rfd):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    CHILDREN.discard(pid)
    os.close(rfd)


def wait_path(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        time.sleep(0.001)


def http(sock_path, method, path, body):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(5000):
        try:
            s.connect(sock_path)  # the path exists from bind(), before listen()
            break
        except ConnectionRefusedError:
            time.sleep(0.0005)
    s.sendall(
        f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    )
    return s


def qmp(sock_path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(5000):
        try:
            s.connect(sock_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.001)
    f = s.makefile("rw")
    f.readline()  # greeting

    def cmd(name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        f.write(json.dumps(msg) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r

    return s, f, cmd


def vessel_load(a, work):
    sock = f"{work}/load.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    pid, rfd, _ = spawn([a.vessel, "vm", "run", "--api-sock", sock, "--console", "stdio"])
    wait_path(sock)
    http(sock, "GET", "/", "").close()  # listening: the API is up, as QMP is below
    body = json.dumps({"snapshot_path": f"{work}/vessel.state",
                       "mem_backend": {"backend_type": "File", "backend_path": f"{work}/vessel.mem"},
                       "resume_vm": True})
    t0 = time.perf_counter_ns()
    s = http(sock, "PUT", "/snapshot/load", body)
    t1 = first_byte(rfd)
    s.close()
    kill(pid, rfd)
    return t1 - t0


def qemu_load(a, work):
    sock = f"{work}/qmp-load.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    pid, rfd, _ = spawn(a.qemu + ["-qmp", f"unix:{sock},server=on,wait=off", "-incoming", "defer"])
    s, f, cmd = qmp(sock)
    cmd("qmp_capabilities")
    t0 = time.perf_counter_ns()
    f.write(json.dumps({"execute": "migrate-incoming",
                        "arguments": {"uri": f"exec:cat {work}/qemu.mig"}}) + "\n")
    f.flush()
    t1 = first_byte(rfd)
    s.close()
    kill(pid, rfd)
    return t1 - t0


def vessel_spawn(a, work):
    pid, rfd, t0 = spawn([a.vessel, "vm", "run", "--console", "stdio", "--restore",
                          f"{work}/vessel.state", "--restore-mem", f"{work}/vessel.mem"])
    t1 = first_byte(rfd)
    kill(pid, rfd)
    return t1 - t0


def qemu_spawn(a, work):
    pid, rfd, t0 = spawn(a.qemu + ["-incoming", f"exec:cat {work}/qemu.mig"])
    t1 = first_byte(rfd)
    kill(pid, rfd)
    return t1 - t0


def make_snapshots(a, work):
    sock = f"{work}/make.sock"
    pid, rfd, _ = spawn([a.vessel, "vm", "run", "--kernel", a.guest, "--memory", "32",
                         "--api-sock", sock, "--console", "stdio"])
    wait_path(sock)
    first_byte(rfd)
    for method, path, body in [
        ("PATCH", "/vm", '{"state": "Paused"}'),
        ("PUT", "/snapshot/create", json.dumps({"snapshot_path": f"{work}/vessel.state",
                                                "mem_file_path": f"{work}/vessel.mem"})),
    ]:
        s = http(sock, method, path, body)
        reply = s.recv(4096).decode()
        s.close()
        if " 204 " not in reply:
            raise RuntimeError(f"{method} {path}: {reply}")
    kill(pid, rfd)

    qsock = f"{work}/qmp-make.sock"
    pid, rfd, _ = spawn(a.qemu + ["-kernel", a.guest, "-qmp", f"unix:{qsock},server=on,wait=off"])
    first_byte(rfd)
    s, f, cmd = qmp(qsock)
    cmd("qmp_capabilities")
    cmd("migrate", uri=f"exec:cat > {work}/qemu.mig")
    for _ in range(2000):
        status = cmd("query-migrate")["return"].get("status")
        if status in ("completed", "failed"):
            break
        time.sleep(0.005)
    if status != "completed":
        raise RuntimeError(f"QEMU migration {status}")
    s.close()
    kill(pid, rfd)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--vessel", required=True)
    p.add_argument("--qemu", required=True, help="JSON argv without -kernel/-incoming")
    p.add_argument("--guest", required=True)
    p.add_argument("--work", required=True)
    a = p.parse_args()
    a.qemu = json.loads(a.qemu)
    make_snapshots(a, a.work)
    st = os.stat(f"{a.work}/vessel.mem")
    print(f"== snapshots: vessel state {os.path.getsize(a.work + '/vessel.state')} B, "
          f"memory {st.st_size >> 20} MiB ({st.st_blocks * 512 >> 10} KiB on disk); "
          f"QEMU migration stream {os.path.getsize(a.work + '/qemu.mig')} B")
    cases = {"vessel load": vessel_load, "qemu load": qemu_load,
             "vessel spawn": vessel_spawn, "qemu spawn": qemu_spawn}
    times = {k: [] for k in cases}
    for i in range(a.warmup + a.iterations):
        order = list(cases)
        random.shuffle(order)
        for k in order:
            ns = cases[k](a, a.work)
            if i >= a.warmup:
                times[k].append(ns / 1e6)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'case':<34}{'vessel ms':>12}{'QEMU ms':>12}{'vessel/QEMU':>14}")
    for kind, label in [("load", "restore call -> first guest byte"),
                        ("spawn", "process start -> first guest byte")]:
        v, q = med[f"vessel {kind}"], med[f"qemu {kind}"]
        print(f"{label:<34}{v:>12.2f}{q:>12.2f}{v / q:>14.3f}")
    for k, v in times.items():
        print(f"  {k}: min {min(v):.2f} median {statistics.median(v):.2f} max {max(v):.2f} ms")


if __name__ == "__main__":
    try:
        main()
    finally:
        for child in CHILDREN:
            os.kill(child, signal.SIGKILL)
