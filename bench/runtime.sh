#!/usr/bin/env bash
# bench/runtime.sh [-n N] [-w WARMUP] [--json FILE] [--no-build] [--vessel BIN]
#
# Benchmarks vessel-runtime (release build) against runc and crun, side by
# side in one run, on the same busybox bundle, in two scenarios:
#   run    `RUNTIME run` of /bin/true
#   cycle  `create`, `start`, `state` polled until "stopped", `delete`
# N timed iterations each (default 50), after WARMUP untimed ones (default 3),
# interleaved in a random order every round so the runtimes share the noise.
# Prints median, p90 and min wall time, the ratios vessel/runc and
# vessel/crun, and the peak RSS of each runtime's process tree (ru_maxrss).
#
# Why: the project's performance target (issue 2) is "faster than crun,
# lighter than runc"; BENCHMARKS.md records what this script prints.
#
# crun refuses this machine's hybrid cgroup layout and runs only inside
# `unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun …'` (see
# shared/ENVIRONMENT.md). That wrapper costs a few milliseconds, so it is
# also timed alone and crun is reported both raw and net of it. Only crun's
# `run` and `create` need it; `start`, `state` and `delete` run bare.
#
# --vessel BIN measures another build of vessel-runtime (e.g. one made with
# different [profile.release] settings) instead of target/release's.
#
# Needs root. Installs packages only through scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

n=50
warmup=3
json=
build=1
vessel=$PWD/target/release/vessel-runtime
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    -w) warmup=${2:?-w needs a number}; shift 2 ;;
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "runtime.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "runtime.sh: containers need root" >&2
  exit 1
fi
bash scripts/install-deps.sh
if [ "$build" = 1 ]; then
  cargo build --release -p vessel-cli --quiet
fi
runc=$(command -v runc || echo /usr/sbin/runc)
crun=$(command -v crun || echo /usr/bin/crun)

work=$(mktemp -d /tmp/vessel-bench.XXXXXX)
cleanup() {
  # Leave nothing behind, even after a failure half-way through a cycle.
  for id in $("$vessel" --root "$work/state-vessel" list -q 2>/dev/null); do
    "$vessel" --root "$work/state-vessel" delete --force "$id" >/dev/null 2>&1 || true
  done
  for id in $("$runc" --root "$work/state-runc" list -q 2>/dev/null); do
    "$runc" --root "$work/state-runc" delete --force "$id" >/dev/null 2>&1 || true
  done
  for id in $("$crun" --root "$work/state-crun" list -q 2>/dev/null); do
    "$crun" --root "$work/state-crun" delete --force "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
VESSEL_RUNTIME=$vessel bash scripts/make-busybox-bundle.sh "$work/bundle" /bin/true >/dev/null

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== vessel-runtime $(stat -c %s "$vessel") bytes; $("$runc" --version | head -1); $("$crun" --version | head -1)"
echo "== $n iterations (+$warmup warm-up) per scenario and runtime, interleaved"
python3 bench/runtime.py --iterations "$n" --warmup "$warmup" --bundle "$work/bundle" \
  --workdir "$work" --vessel "$vessel" --runc "$runc" --crun "$crun" ${json:+--json "$json"}
