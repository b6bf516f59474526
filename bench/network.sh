#!/usr/bin/env bash
# bench/network.sh [-n N] [-r REQUESTS] [--no-build]
#
# Networking benchmarks, vessel (release build) side by side with podman:
#   run      `vessel run --rm IMG /bin/true` on vessel's default bridge
#            vs `podman run --rm IMG /bin/true` on podman's default bridge
#            (and both with --network none, for what the network costs);
#   publish  requests/s of a busybox httpd in a vessel container, reached
#            through a published port (127.0.0.1:PORT, nft DNAT) vs reached
#            directly at the container's address on the bridge; `ab` from
#            apache2-utils, keep-alive off, 16 concurrent clients.
# Prints hyperfine's table, ab's figures and the ratios.
#
# podman runs with its own private --root/--runroot and the containers.conf
# of bench/lib/podman.sh (this machine's settings). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

n=30
requests=20000
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    -r) requests=${2:?-r needs a number}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "network.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "network.sh: containers need root" >&2; exit 1; }
bash scripts/install-deps.sh
[ "$build" = 1 ] && cargo build --release -p vessel-cli --quiet

work=$(mktemp -d /tmp/vessel-bench-network.XXXXXX)
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
echo "== run --rm /bin/true, $n runs each"
hyperfine -N --warmup 3 --runs "$n" --export-json "$work/run.json" \
  -n vessel-bridge "$vessel run --rm localhost/busybox /bin/true" \
  -n podman-bridge "$podman run --rm localhost/busybox /bin/true" \
  -n vessel-none "$vessel run --rm --network none localhost/busybox /bin/true" \
  -n podman-none "$podman run --rm --network none localhost/busybox /bin/true"

echo "== published port vs direct, $requests requests, 16 concurrent"
$vessel run -d --name web -p 127.0.0.1::80 localhost/busybox sh -c \
  'mkdir -p /www && head -c 1024 /dev/zero > /www/1k && exec httpd -f -p 80 -h /www' >/dev/null
port=$($vessel port web 80 | cut -d: -f2)
ip=$($vessel inspect -f '{{.NetworkSettings.IPAddress}}' web)
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
ab_rps() { ab -q -n "$requests" -c 16 "$1" 2>/dev/null | awk '/Requests per second/ {print $4}'; }
ab_rps "http://$ip/1k" >/dev/null # warm-up
direct=$(ab_rps "http://$ip/1k")
published=$(ab_rps "http://127.0.0.1:$port/1k")
direct2=$(ab_rps "http://$ip/1k")
published2=$(ab_rps "http://127.0.0.1:$port/1k")

python3 - "$work/run.json" "$direct" "$published" "$direct2" "$published2" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
for mode in ["bridge", "none"]:
    v, p = r[f"vessel-{mode}"], r[f"podman-{mode}"]
    print(f"run --rm ({mode:6s})  vessel {v*1000:7.1f} ms   podman {p*1000:7.1f} ms   vessel/podman {v/p:.3f}  ({p/v:.1f}x faster)")
print(f"bridge cost          vessel +{(r['vessel-bridge']-r['vessel-none'])*1000:.1f} ms   podman +{(r['podman-bridge']-r['podman-none'])*1000:.1f} ms")
d = (float(sys.argv[2]) + float(sys.argv[4])) / 2
p = (float(sys.argv[3]) + float(sys.argv[5])) / 2
print(f"httpd 1 KiB          direct {d:9.0f} req/s   published 127.0.0.1 {p:9.0f} req/s   published/direct {p/d:.3f}")
PY
