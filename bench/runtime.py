#!/usr/bin/env python3
"""Measurement driver for bench/runtime.sh (run that script, not this file).

Times vessel-runtime, runc and crun on one busybox bundle, interleaved: each
iteration runs every (scenario, runtime) pair once, in a fresh random order,
so that the runtimes share whatever noise the machine has at that moment.

Every timed command is started with posix_spawn and reaped with wait4; its
wall time is perf_counter_ns around spawn..reap, with no extra process in the
measured path. Peak RSS comes from a second, untimed run of the same job
under `/usr/bin/time -f %M` (ru_maxrss of the runtime's whole process tree:
the runtime, its helper processes, and the container process, whose
high-water mark includes the runtime code it ran before exec).

crun refuses this machine's hybrid cgroup layout, so its `run` and `create`
go through `unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun …'`
(start, state and delete work without it). That wrapper is also timed on its
own (`wrapper`: the same line with /bin/true) in the same rounds, and crun is
reported twice: raw, and "net" = raw minus the wrapper, paired per iteration.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

UNIFIED = "/sys/fs/cgroup/unified"
RSS_FD = 9
RUNTIMES = ("vessel", "runc", "crun")


class Failed(Exception):
    pass


def spawn(argv, capture=False, rss=False):
    """Run argv to completion. Returns (ns, maxrss_kib, stdout bytes).

    ns is measured only when rss is false and maxrss only when rss is true:
    a child spawned from this process inherits Python's high-water RSS
    (~15 MiB) through exec, so peak RSS is read from /usr/bin/time (whose
    own ~2 MiB is then the floor) in separate, untimed runs.
    """
    rssfile = None
    if rss:
        rssfile = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
        argv = ["/usr/bin/time", "-f", "%M", "-o", f"/proc/self/fd/{RSS_FD}", *argv]
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)]
    errfd = os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    rfd = wfd = None
    if capture:
        rfd, wfd = os.pipe()
        actions.append((os.POSIX_SPAWN_DUP2, wfd, 1))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0))
    actions.append((os.POSIX_SPAWN_DUP2, errfd, 2))
    if rss:
        actions.append((os.POSIX_SPAWN_DUP2, rssfile, RSS_FD))
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    ns = time.perf_counter_ns() - t0
    out = b""
    if capture:
        os.close(wfd)
        with os.fdopen(rfd, "rb") as f:
            out = f.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        os.lseek(errfd, 0, 0)
        err = os.read(errfd, 4096).decode(errors="replace")
        os.close(errfd)
        raise Failed(f"{' '.join(argv)} exited with {code}: {err.strip()}")
    os.close(errfd)
    maxrss = 0
    if rss:
        os.lseek(rssfile, 0, 0)
        maxrss = int(os.read(rssfile, 100).split()[-1])
        os.close(rssfile)
    return ns, maxrss, out


class Runtime:
    def __init__(self, name, binary, root, wrap):
        self.name, self.binary, self.root, self.wrap = name, binary, root, wrap

    def cmd(self, *args, wrapped=False):
        argv = [self.binary, "--root", self.root, *args]
        if wrapped and self.wrap:
            line = f"umount {UNIFIED} && exec " + " ".join(argv)
            return ["/usr/bin/unshare", "-m", "/bin/sh", "-c", line]
        return argv


def scenario_run(rt, bundle, cid, rss):
    ns, kib, _ = spawn(rt.cmd("run", "--bundle", bundle, cid, wrapped=True), rss=rss)
    return {"total": ns, "rss": kib}


def scenario_cycle(rt, bundle, cid, rss):
    """create, start, poll `state` until stopped, delete."""
    t_create, rss_c, _ = spawn(rt.cmd("create", "--bundle", bundle, cid, wrapped=True), rss=rss)
    t_start, rss_s, _ = spawn(rt.cmd("start", cid), rss=rss)
    t_wait, polls, rss_w = 0, 0, 0
    while True:
        ns, kib, out = spawn(rt.cmd("state", cid), capture=True, rss=rss)
        t_wait, polls, rss_w = t_wait + ns, polls + 1, max(rss_w, kib)
        if json.loads(out)["status"] == "stopped":
            break
        if polls > 10000:
            raise Failed(f"{rt.name}: {cid} never stopped")
    t_delete, rss_d, _ = spawn(rt.cmd("delete", cid), rss=rss)
    return {
        "total": t_create + t_start + t_wait + t_delete,
        "create": t_create,
        "start": t_start,
        "wait": t_wait,
        "delete": t_delete,
        "polls": polls,
        "rss": max(rss_c, rss_s, rss_w, rss_d),
        "rss_create": rss_c,
    }


def wrapper_only(_rt, _bundle, _cid, rss):
    line = f"umount {UNIFIED} && exec /bin/true"
    ns, kib, _ = spawn(["/usr/bin/unshare", "-m", "/bin/sh", "-c", line], rss=rss)
    return {"total": ns, "rss": kib}


def pct(xs, q):
    """q-quantile by linear interpolation between closest ranks."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(ns):
    return ns / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--vessel", required=True)
    ap.add_argument("--runc", required=True)
    ap.add_argument("--crun", required=True)
    ap.add_argument("--json", help="write raw samples here")
    a = ap.parse_args()

    rts = {
        "vessel": Runtime("vessel", a.vessel, f"{a.workdir}/state-vessel", False),
        "runc": Runtime("runc", a.runc, f"{a.workdir}/state-runc", False),
        "crun": Runtime("crun", a.crun, f"{a.workdir}/state-crun", True),
    }
    scenarios = {"run": scenario_run, "cycle": scenario_cycle}
    samples = {(s, r): [] for s in scenarios for r in (*RUNTIMES, "wrapper")}

    total = a.warmup + a.iterations
    rss = {(s, r): [] for s in scenarios for r in (*RUNTIMES, "wrapper")}
    for i in range(total):
        jobs = [(s, r) for s in scenarios for r in (*RUNTIMES, "wrapper")]
        random.shuffle(jobs)
        for s, r in jobs:
            fn = wrapper_only if r == "wrapper" else scenarios[s]
            res = fn(rts.get(r), a.bundle, f"bench-{r}-{s}-{i}", False)
            if i >= a.warmup:
                samples[(s, r)].append(res)
                # The same job once more, untimed, under /usr/bin/time.
                kib = fn(rts.get(r), a.bundle, f"bench-{r}-{s}-{i}-rss", True)["rss"]
                rss[(s, r)].append(kib)
        if (i + 1) % 10 == 0 or i + 1 == total:
            print(f"  {i + 1}/{total} rounds", file=sys.stderr)
    floor = spawn(["/bin/true"], rss=True)[1]

    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{s}/{r}": v for (s, r), v in samples.items()}, f)

    report(samples, rss, floor, scenarios)


def report(samples, peak, floor, scenarios):
    titles = {
        "run": "run of /bin/true",
        "cycle": "create + start + (state until stopped) + delete of /bin/true",
    }
    print(f"\npeak RSS: median over iterations of ru_maxrss of the process tree; "
          f"floor (/usr/bin/time -f %M /bin/true) = {floor} KiB")
    for s in scenarios:
        tot = {r: [x["total"] for x in samples[(s, r)]] for r in (*RUNTIMES, "wrapper")}
        # crun net of the wrapper, paired with the wrapper sample of the same round.
        tot["crun-net"] = [c - w for c, w in zip(tot["crun"], tot["wrapper"])]
        rss = {r: int(statistics.median(peak[(s, r)])) for r in (*RUNTIMES, "wrapper")}
        print(f"\n== {titles[s]}  (n={len(tot['vessel'])})")
        print(f"{'runtime':<22}{'median ms':>10}{'p90 ms':>10}{'min ms':>10}{'peak RSS KiB':>14}")
        labels = {
            "vessel": "vessel-runtime",
            "runc": "runc",
            "crun": "crun (raw, wrapped)",
            "crun-net": "crun (net of wrapper)",
            "wrapper": "wrapper alone",
        }
        for r in ("vessel", "runc", "crun", "crun-net", "wrapper"):
            xs = tot[r]
            r_rss = f"{rss[r]:>14}" if r in rss else f"{'':>14}"
            print(
                f"{labels[r]:<22}{ms(statistics.median(xs)):>10.2f}"
                f"{ms(pct(xs, 0.9)):>10.2f}{ms(min(xs)):>10.2f}{r_rss}"
            )
        med = {r: statistics.median(v) for r, v in tot.items()}
        p90 = {r: pct(v, 0.9) for r, v in tot.items()}
        for other in ("runc", "crun", "crun-net"):
            print(
                f"ratio vessel/{labels[other]:<22} median {med['vessel'] / med[other]:.2f}"
                f"   p90 {p90['vessel'] / p90[other]:.2f}"
            )
        print(f"peak RSS vessel/runc {rss['vessel'] / rss['runc']:.2f}   "
              f"vessel/crun {rss['vessel'] / rss['crun']:.2f}")
        if s == "cycle":
            print("median per step, ms:   create   start    wait(state polls)  delete")
            for r in RUNTIMES:
                xs = samples[(s, r)]
                step = {k: ms(statistics.median(x[k] for x in xs)) for k in ("create", "start", "wait", "delete")}
                polls = statistics.median(x["polls"] for x in xs)
                print(
                    f"  {r:<20}{step['create']:>8.2f}{step['start']:>8.2f}"
                    f"{step['wait']:>10.2f} ({polls:g}){step['delete']:>9.2f}"
                )


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        sys.exit(f"runtime.py: {e}")
