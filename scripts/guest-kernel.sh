#!/usr/bin/env bash
# Provides the guest kernel the VMM's real-Linux test boots: Debian's cloud
# kernel (the newest linux-image-6.1.0-*-cloud-amd64 apt knows), with the ELF
# vmlinux extracted from its bzImage. Cached outside the checkout, so it is
# fetched once per machine:
#   $VESSEL_KERNEL_DIR (default /var/cache/vessel/kernel)/vmlinux   ELF, PVH entry
#   .../bzImage, .../version
# Prints the vmlinux path. Safe to run again: does nothing when the cache is there.
set -euo pipefail

dir=${VESSEL_KERNEL_DIR:-/var/cache/vessel/kernel}
if [ -s "$dir/vmlinux" ] && [ -s "$dir/bzImage" ] && [ -s "$dir/version" ]; then
  echo "$dir/vmlinux"
  exit 0
fi

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  # The first install on a fresh machine sometimes fails once (see ENVIRONMENT.md).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
if ! need lz4 || ! need dpkg-deb; then
  apt-get update -q >/dev/null
  apt_install lz4
fi

pkg=$(apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | sort -V | tail -1 || true)
if [ -z "$pkg" ]; then
  apt-get update -q >/dev/null
  pkg=$(apt-cache pkgnames linux-image-6.1.0- | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | sort -V | tail -1 || true)
fi
if [ -z "$pkg" ]; then
  echo "guest-kernel.sh: apt knows no linux-image-6.1.0-*-cloud-amd64 package" >&2
  exit 1
fi

work=$(mktemp -d /tmp/vessel-kernel.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Readable by apt's _apt user, which does the download.
chmod 755 "$work"
if ! out=$(cd "$work" && apt-get download -q "$pkg" 2>&1); then
  echo "$out" >&2
  exit 1
fi
dpkg -x "$work"/"$pkg"_*.deb "$work/root"
bz=$(ls "$work"/root/boot/vmlinuz-* | head -1)

# The setup header (Documentation/arch/x86/boot.rst): setup_sects at 0x1f1,
# payload_offset (u32) at 0x248 and payload_length (u32) at 0x24c, the
# payload counted from the start of the protected-mode code, (setup_sects+1)*512.
python3 - "$bz" "$work/payload" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
if d[0x202:0x206] != b"HdrS":
    sys.exit("guest-kernel.sh: not a bzImage: no HdrS magic")
sects = d[0x1f1] or 4
off, length = struct.unpack_from("<II", d, 0x248)
start = (sects + 1) * 512 + off
open(sys.argv[2], "wb").write(d[start:start + length])
EOF
magic=$(head -c 4 "$work/payload" | od -An -tx1 | tr -d ' ')
if [ "$magic" != "02214c18" ]; then
  echo "guest-kernel.sh: $bz: payload is not LZ4 (magic $magic)" >&2
  exit 1
fi
# The kernel's LZ4 payload ends with the 4-byte uncompressed size, which lz4
# reports as trailing garbage after writing everything; the ELF check below
# is what decides.
lz4 -dc "$work/payload" >"$work/vmlinux" 2>/dev/null || true
if [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" != "7f454c46" ]; then
  echo "guest-kernel.sh: decompressing $bz did not give an ELF vmlinux" >&2
  exit 1
fi

mkdir -p "$dir"
cp "$bz" "$dir/bzImage.tmp" && mv "$dir/bzImage.tmp" "$dir/bzImage"
cp "$work/vmlinux" "$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux"
echo "$pkg $(basename "$bz")" >"$dir/version.tmp" && mv "$dir/version.tmp" "$dir/version"
echo "$dir/vmlinux"
