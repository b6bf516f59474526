#!/usr/bin/env bash
# make-busybox-bundle.sh DIR [ARGS...]: an OCI bundle in DIR whose rootfs is
# static busybox with its applets, and whose config.json runs ARGS.
set -euo pipefail
dir=${1:?usage: make-busybox-bundle.sh DIR [ARGS...]}
shift
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/tmp" "$dir/rootfs/etc" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev"
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
args='["sh"]'
if [ $# -gt 0 ]; then
  args=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
fi
rm -f "$dir/config.json"
"${VESSEL_RUNTIME:-$(dirname "$0")/../target/release/vessel-runtime}" spec --bundle "$dir"
python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["root"]["readonly"] = False
json.dump(c, open(path, "w"), indent=2)
PY
