#!/usr/bin/env bash
# The README's first command: set this machine up, build vessel, and run its
# main job — an image run as a container by the `vessel` engine (and the same
# busybox root filesystem through vessel-runtime, the way containerd runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/guest-kernel.sh >/dev/null  # guest kernel for `vessel vm run`, cached in /var/cache/vessel
echo "== building vessel (release)"
cargo build --release --workspace --quiet

work=$(mktemp -d /tmp/vessel-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
bash scripts/make-busybox-bundle.sh "$work/bundle" sh -c 'echo "hello from a vessel container: $(hostname), pid $$, $(id)"; cat /proc/self/cgroup | head -3'
echo "== vessel-runtime run demo (busybox bundle)"
./target/release/vessel-runtime --root "$work/state" run --bundle "$work/bundle" "vessel-demo-$$"
echo "== done: the container ran and was deleted"

echo "== vessel: an image made from busybox-static, run as a container"
export VESSEL_ROOT=${VESSEL_ROOT:-/var/lib/vessel}
VESSEL=./target/release/vessel bash scripts/make-busybox-image.sh localhost/busybox:latest
./target/release/vessel images
./target/release/vessel run --rm localhost/busybox echo hello
echo "== done: try ./target/release/vessel run --rm -it localhost/busybox sh"
