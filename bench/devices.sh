#!/usr/bin/env bash
# bench/devices.sh [-n N] [-w WARMUP] [--disk-mib M] [--req-kib K]
#                  [--vsock-mib V] [--json FILE] [--no-build] [--vessel BIN]
#
# Device throughput, vessel vs QEMU's microvm (`-M microvm,acpi=off
# -enable-kvm`, virtio-mmio in modern mode), on the same purpose-built PVH
# guest (bench/guests/devices.c + pvh_entry.s, built here; it finds its
# devices on the `virtio_mmio.device=` entries both VMMs append to its
# command line):
#   - block: the guest reads its whole virtio-blk disk (M MiB, default 256,
#     a read-only raw image in the page cache) in order, one request of K
#     KiB (default 1024) at a time; N interleaved iterations per VMM
#     (default 10, after WARMUP untimed ones, default 1);
#   - vsock, host -> guest: the host sends V MiB (default 256) over the
#     device's Unix socket (`CONNECT 1234`) into the guest's 64 KiB RX
#     buffers. vessel only: QEMU's vsock is vhost-vsock, which needs the
#     host kernel's /dev/vhost-vsock (absent here), or vhost-user-vsock,
#     which needs a separate backend daemon; neither is an in-VMM device
#     like vessel's and Firecracker's.
# Prints MiB/s (median, min, max) and vessel/QEMU ratios.
#
# Needs root and /dev/kvm. Installs qemu-system-x86, binutils and gcc with
# apt when missing. QEMU here needs `-cpu host,-arch-capabilities` and
# runs under a timeout (see bench/vmm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

n=10
warmup=1
disk_mib=256
req_kib=1024
vsock_mib=256
json=
build=1
vessel=$PWD/target/release/vessel
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    -w) warmup=${2:?-w needs a number}; shift 2 ;;
    --disk-mib) disk_mib=${2:?--disk-mib needs a number}; shift 2 ;;
    --req-kib) req_kib=${2:?--req-kib needs a number}; shift 2 ;;
    --vsock-mib) vsock_mib=${2:?--vsock-mib needs a number}; shift 2 ;;
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "devices.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
# The guest reads into one buffer at 16 MiB of its 64 MiB.
if [ "$req_kib" -lt 4 ] || [ "$req_kib" -gt 4096 ]; then
  echo "devices.sh: --req-kib must be 4..4096" >&2
  exit 2
fi

if [ ! -e /dev/kvm ]; then
  echo "devices.sh: /dev/kvm is missing" >&2
  exit 1
fi
apt_install() {
  apt-get update -q >/dev/null
  # The first install on a fresh machine sometimes fails once (ENVIRONMENT.md).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
command -v as >/dev/null || apt_install binutils
command -v gcc >/dev/null || apt_install gcc
if [ "$build" = 1 ]; then
  cargo build --release -p vessel-cli --quiet
fi
qemu=$(command -v qemu-system-x86_64)

work=$(mktemp -d /tmp/vessel-bench-devices.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The guest: the same compiler flags as the test guests (build_c_guest).
as --64 -o "$work/entry.o" bench/guests/pvh_entry.s
gcc -c -ffreestanding -nostdlib -fno-pic -mno-red-zone -mgeneral-regs-only -O1 \
  -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
  -fno-builtin -Wall -Werror -I crates/vmm/tests/guests \
  -o "$work/devices.o" bench/guests/devices.c
ld -m elf_x86_64 -nostdlib -static --build-id=none --no-warn-rwx-segments -z noexecstack \
  -T crates/vmm/tests/guests/link.ld -o "$work/guest" "$work/entry.o" "$work/devices.o"

# The disk: zeroes, with marks the guest checks in the first and last sectors.
python3 - "$work/disk.img" "$disk_mib" <<'EOF'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(b"\0" * (mib << 20))
    f.seek(0)
    f.write(b"vessel bench disk start")
    f.seek((mib << 20) - 512)
    f.write(b"vessel bench disk end")
EOF

mem=64
cat >"$work/blk.json" <<EOF
{"boot-source": {"kernel_image_path": "$work/guest", "boot_args": "blk_req_kib=$req_kib"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $mem},
 "drives": [{"drive_id": "bench", "path_on_host": "$work/disk.img",
             "is_root_device": false, "is_read_only": true}]}
EOF
cat >"$work/vsock.json" <<EOF
{"boot-source": {"kernel_image_path": "$work/guest", "boot_args": ""},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": $mem},
 "vsock": {"guest_cid": 3, "uds_path": "$work/v.sock"}}
EOF
vessel_cmd() {
  printf '["%s","vm","run","--config-file","%s","--console","stdio"]' "$vessel" "$work/$1.json"
}
qemu_blk=$(printf '["/usr/bin/timeout","120","%s","-M","microvm,acpi=off","-enable-kvm","-cpu","host,-arch-capabilities","-smp","1","-m","%s","-nodefaults","-no-user-config","-display","none","-serial","stdio","-no-reboot","-global","virtio-mmio.force-legacy=false","-kernel","%s","-append","blk_req_kib=%s","-drive","id=d0,file=%s,format=raw,if=none,readonly=on","-device","virtio-blk-device,drive=d0"]' \
  "$qemu" "$mem" "$work/guest" "$req_kib" "$work/disk.img")

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== vessel $(stat -c %s "$vessel") bytes; $("$qemu" --version | head -1)"
echo "== guest $(stat -c %s "$work/guest") bytes; disk $disk_mib MiB in requests of $req_kib KiB; vsock $vsock_mib MiB"
echo "== $n iterations (+$warmup warm-up) per VMM; block interleaved; vsock vessel only (no vhost-vsock here)"
python3 bench/devices.py --iterations "$n" --warmup "$warmup" \
  --vessel-blk "$(vessel_cmd blk)" --qemu-blk "$qemu_blk" \
  --vessel-vsock "$(vessel_cmd vsock)" --uds "$work/v.sock" --vsock-mib "$vsock_mib" \
  ${json:+--json "$json"}
