#!/usr/bin/env bash
# bench/pull.sh [-n N] [--no-build] [--layers N] [--layer-mib N]
#
# Benchmarks `vessel pull` against `podman pull` side by side in one run
# (hyperfine), from a real registry (docker-registry, distribution 2.8) on
# 127.0.0.1, each into an empty store (the store is deleted before every
# timed pull). The image is made here: busybox plus N layers of M MiB each
# (three quarters random bytes, a quarter text, so gzip has some work),
# over 200 MiB in the registry by default. Two comparisons:
#   pull       `vessel pull IMG`                       vs `podman pull IMG`
#   pull+run   `vessel pull IMG && vessel run --rm --network none IMG true`
#                                                      vs the same with podman
# podman unpacks layers while it pulls; vessel stores the compressed blobs and
# unpacks a layer when a container first needs it, so `pull+run` is the fair
# end-to-end figure and `pull` shows what each tool makes the user wait for.
# Prints hyperfine's tables and the ratios vessel/podman (below 1: vessel is
# faster). Issue 5's target: at least 2x faster than podman.
#
# Needs root. Installs podman with apt if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

n=5
build=1
layers=4
layer_mib=64
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    --no-build) build=0; shift ;;
    --layers) layers=${2:?}; shift 2 ;;
    --layer-mib) layer_mib=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "pull.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "pull.sh: needs root (podman and vessel stores)" >&2; exit 1; }
bash scripts/install-deps.sh
[ "$build" = 1 ] && cargo build --release -p vessel-cli --quiet

work=$(mktemp -d /tmp/vessel-bench-pull.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
vessel_bin="$PWD/target/release/vessel"
vessel="$vessel_bin --root $work/vessel --runroot $work/vessel-run"
. bench/lib/podman.sh
podman_prepare "$work"
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  $podman system reset -f >/dev/null 2>&1 || true
  unmount_under "$work"
  rm -rf "$work"
}
trap cleanup EXIT

# The registry: loopback only, storage in $work.
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# The image: busybox, then $layers layers of $layer_mib MiB each.
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:big" >/dev/null
mkdir -p "$work/l0/bin"
cp /bin/busybox "$work/l0/bin/busybox"
for a in sh true; do ln -s busybox "$work/l0/bin/$a"; done
umoci insert --image "$work/oci:big" "$work/l0" / >/dev/null
rand=$((layer_mib * 3 / 4))
for i in $(seq "$layers"); do
  mkdir -p "$work/l$i/data$i"
  head -c "${rand}M" /dev/urandom >"$work/l$i/data$i/random.bin"
  # Text: compressible, but not trivially (numbers and words).
  { seq 1 20000000 || true; } | head -c "$((layer_mib - rand))M" >"$work/l$i/data$i/text.txt"
  umoci insert --image "$work/oci:big" "$work/l$i" / >/dev/null
  rm -rf "$work/l$i"
done
umoci config --image "$work/oci:big" --config.cmd /bin/true >/dev/null
image="127.0.0.1:$port/bench/big:latest"
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:big" "docker://$image"
rm -rf "$work/oci"
total=$(du -sm "$work/registry" | cut -f1)
echo "== image: $image, $((layers + 1)) layers, ${total} MiB in the registry, $n runs each"

# A run leaves the run root's netns directory mounted on itself (as ip netns
# does): unmount what is under the store before deleting it.
reset_vessel="sh -c 'grep \" $work/vessel\" /proc/self/mountinfo | cut -d\" \" -f5 | sort -r | xargs -r -n1 umount -l; rm -rf $work/vessel $work/vessel-run'"
reset_podman="sh -c '$podman system reset -f >/dev/null 2>&1; rm -rf $work/podman $work/podman-run'"

hyperfine --warmup 1 --runs "$n" --export-json "$work/pull.json" \
  --prepare "$reset_vessel" -n vessel "$vessel pull -q $image" \
  --prepare "$reset_podman" -n podman "$podman pull -q --tls-verify=false $image"

hyperfine --warmup 1 --runs "$n" --export-json "$work/pullrun.json" \
  --prepare "$reset_vessel" -n vessel "$vessel pull -q $image && $vessel run --rm --network none $image /bin/true" \
  --prepare "$reset_podman" -n podman "$podman pull -q --tls-verify=false $image && $podman run --rm --network none $image /bin/true"

python3 - "$work/pull.json" "$work/pullrun.json" <<'PY'
import json, sys
for path, what in zip(sys.argv[1:], ["pull (empty store)", "pull + run true"]):
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    v, p = r["vessel"]["median"], r["podman"]["median"]
    print(f"{what:20s} vessel {v*1000:8.1f} ms   podman {p*1000:8.1f} ms   vessel/podman {v/p:.3f}  ({p/v:.1f}x faster)")
PY
