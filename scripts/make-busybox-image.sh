#!/usr/bin/env bash
# Make the image `localhost/busybox:latest` in vessel's store from the host's
# busybox-static: a root filesystem tarball (busybox, its applet links,
# /etc/passwd and /etc/group) imported with `vessel import`.
#
#   scripts/make-busybox-image.sh [NAME[:TAG]]     (VESSEL=path/to/vessel, VESSEL_ROOT=...)
set -euo pipefail
name=${1:-localhost/busybox:latest}
here=$(cd "$(dirname "$0")/.." && pwd)
vessel=${VESSEL:-$here/target/release/vessel}
[ -x /bin/busybox ] || { echo "make-busybox-image: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d /tmp/vessel-busybox.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/var/www"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$work/rootfs.tar" .
"$vessel" import --change 'CMD ["sh"]' "$work/rootfs.tar" "$name" >/dev/null
echo "$name"
