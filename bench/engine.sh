#!/usr/bin/env bash
# bench/engine.sh [-n N] [--no-build]
#
# Benchmarks the `vessel` engine (release build) against podman, side by
# side in one run (hyperfine), on the same busybox image:
#   run    `vessel run --rm --network none IMG /bin/true`  vs  the same with podman
#          (bench/network.sh compares the default bridges)
#   load   `vessel load -i ARCHIVE`         vs  `podman load -i ARCHIVE` (same archive;
#          the image is removed before each timed load)
# Prints hyperfine's table and the ratios vessel/podman (below 1: vessel is faster).
#
# podman runs with its own private --root/--runroot and the containers.conf
# that shared/ENVIRONMENT.md gives for this machine (cgroupfs, file events,
# default ulimits within the hard limits; runc, since crun refuses the hybrid
# cgroup layout). Why: issue 3's target is a
# `run` at least 5x faster than podman's and a faster `load`; BENCHMARKS.md
# records what this script prints.
#
# Needs root. Installs podman with apt if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

n=30
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "engine.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "engine.sh: containers need root" >&2; exit 1; }
bash scripts/install-deps.sh
[ "$build" = 1 ] && cargo build --release -p vessel-cli --quiet

work=$(mktemp -d /tmp/vessel-bench-engine.XXXXXX)
vessel="$PWD/target/release/vessel --root $work/vessel --runroot $work/vessel-run"
. bench/lib/podman.sh
podman_prepare "$work"
cleanup() {
  $podman rm -af >/dev/null 2>&1 || true
  $podman system reset -f >/dev/null 2>&1 || true
  for id in $($vessel ps -aq --no-trunc 2>/dev/null); do $vessel rm -f "$id" >/dev/null 2>&1 || true; done
  unmount_under "$work"
  rm -rf "$work"
}
trap cleanup EXIT

VESSEL="$PWD/target/release/vessel" VESSEL_ROOT=$work/vessel bash scripts/make-busybox-image.sh localhost/busybox:latest >/dev/null
$vessel save -o "$work/busybox.tar" localhost/busybox:latest
$podman load -q -i "$work/busybox.tar" >/dev/null
echo "== image: localhost/busybox ($(du -h "$work/busybox.tar" | cut -f1) archive), $n runs each"

hyperfine -N --warmup 3 --runs "$n" --export-json "$work/run.json" \
  -n vessel "$vessel run --rm --network none localhost/busybox /bin/true" \
  -n podman "$podman run --rm --network none localhost/busybox /bin/true"

hyperfine -N --warmup 2 --runs "$n" --export-json "$work/load.json" \
  --prepare "$vessel rmi -f localhost/busybox:latest" \
  -n vessel "$vessel load -q -i $work/busybox.tar" \
  --prepare "$podman rmi -f localhost/busybox:latest" \
  -n podman "$podman load -q -i $work/busybox.tar" 2>&1 | grep -v "^Loaded image" || true

python3 - "$work/run.json" "$work/load.json" <<'PY'
import json, sys
for path, what in zip(sys.argv[1:], ["run --rm /bin/true", "load -i archive"]):
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    v, p = r["vessel"]["median"], r["podman"]["median"]
    print(f"{what:20s} vessel {v*1000:8.1f} ms   podman {p*1000:8.1f} ms   vessel/podman {v/p:.3f}  ({p/v:.1f}x faster)")
PY
