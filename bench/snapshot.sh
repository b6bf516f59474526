#!/usr/bin/env bash
# bench/snapshot.sh [-n N] [-w WARMUP] [--no-build] [--vessel BIN]
#
# Restore latency, vessel vs QEMU (`-M microvm -enable-kvm`), side by side
# in one run, on the same counting guest (crates/vmm/tests/guests/counter.s
# assembled with DELAY=0, so it prints as fast as it can and the first byte
# after a restore comes as soon as the vCPU runs). Each VMM snapshots its own
# boot of the guest once (vessel: PUT /snapshot/create of the paused VM;
# QEMU: `migrate exec:cat > FILE`), then N interleaved iterations (default
# 20, after WARMUP untimed ones, default 2) time:
#   - restore call -> first guest byte, in an already running VMM
#     (vessel: PUT /snapshot/load with resume_vm; QEMU: -incoming defer,
#     then QMP migrate-incoming exec:cat FILE);
#   - process start -> first guest byte (vessel vm run --restore …;
#     qemu … -incoming exec:cat FILE);
# and prints medians and vessel/QEMU ratios. Both: 1 vCPU, 32 MiB.
#
# Needs root and /dev/kvm. Installs qemu-system-x86 and binutils with apt
# when missing. QEMU here needs `-cpu host,-arch-capabilities` (see
# bench/vmm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

n=20
warmup=2
build=1
vessel=$PWD/target/release/vessel
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    -w) warmup=${2:?-w needs a number}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "snapshot.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if [ ! -e /dev/kvm ]; then
  echo "snapshot.sh: /dev/kvm is missing" >&2
  exit 1
fi
apt_install() {
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
command -v as >/dev/null || apt_install binutils
if [ "$build" = 1 ]; then
  cargo build --release -p vessel-cli --quiet
fi
qemu=$(command -v qemu-system-x86_64)

work=$(mktemp -d /tmp/vessel-bench-snapshot.XXXXXX)
trap 'rm -rf "$work"' EXIT
as --64 --defsym DELAY=0 -o "$work/counter.o" crates/vmm/tests/guests/counter.s
ld -m elf_x86_64 -nostdlib -static --build-id=none --no-warn-rwx-segments \
  -T crates/vmm/tests/guests/link.ld -o "$work/counter" "$work/counter.o"

qemu_argv=$(printf '["%s","-M","microvm","-enable-kvm","-cpu","host,-arch-capabilities","-smp","1","-m","32","-nodefaults","-no-user-config","-display","none","-serial","stdio","-no-reboot"]' "$qemu")

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== vessel $(stat -c %s "$vessel") bytes; $("$qemu" --version | head -1)"
echo "== $n iterations (+$warmup warm-up) per case, interleaved"
python3 bench/snapshot.py --iterations "$n" --warmup "$warmup" --vessel "$vessel" \
  --qemu "$qemu_argv" --guest "$work/counter" --work "$work"
