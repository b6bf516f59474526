#!/usr/bin/env bash
# bench/vmm-linux.sh [-n N] [--json FILE] [--no-build] [--vessel BIN]
#
# Boots the same Linux kernel under vessel's VMM (`vessel vm run`, release
# build) and QEMU's microvm (`-M microvm -enable-kvm`), side by side in one
# run, N interleaved iterations each (default 5): Debian's cloud vmlinux by
# its PVH entry (scripts/guest-kernel.sh provides and caches it), 1 vCPU,
# 128 MiB, the same command line. Prints the median time from process start
# to the kernel's first serial byte, its banner ("Linux version") and the
# end of the memory map it prints from the VMM's e820 table, with ratios.
# bench/vmm.sh does the same for a tiny purpose-built guest (and exit time
# and memory overhead).
#
# On this machine KVM is nested and emulated (ENVIRONMENT.md): the kernel
# runs through KVM's instruction emulator and stops soon after these
# milestones, so they take seconds here, and each run is killed after the
# memory map. QEMU pauses instead of exiting on an emulation failure: every
# QEMU run has a timeout.
#
# Needs root and /dev/kvm. Installs qemu-system-x86 with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

n=5
json=
build=1
vessel=$PWD/target/release/vessel
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vmm-linux.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -e /dev/kvm ] || { echo "vmm-linux.sh: /dev/kvm is missing" >&2; exit 1; }
if ! command -v qemu-system-x86_64 >/dev/null; then
  apt-get update -q >/dev/null
  # The first install on a fresh machine sometimes fails once (ENVIRONMENT.md).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-x86 >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-x86 >/dev/null
fi
[ "$build" = 1 ] && cargo build --release -p vessel-cli --quiet
qemu=$(command -v qemu-system-x86_64)
kernel=$(bash scripts/guest-kernel.sh)
cmdline="console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off"

vessel_cmd=$(printf '["%s","vm","run","--kernel","%s","--cmdline","%s","--cpus","1","--memory","128","--console","stdio"]' \
  "$vessel" "$kernel" "$cmdline")
qemu_cmd=$(printf '["/usr/bin/timeout","300","%s","-M","microvm","-enable-kvm","-cpu","host,-arch-capabilities","-smp","1","-m","128","-nodefaults","-no-user-config","-display","none","-serial","stdio","-no-reboot","-kernel","%s","-append","%s"]' \
  "$qemu" "$kernel" "$cmdline")

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== guest kernel: $(cat "$(dirname "$kernel")/version" 2>/dev/null || echo "$kernel"); $("$qemu" --version | head -1)"
echo "== $n iterations per VMM, interleaved"
python3 bench/vmm_linux.py --iterations "$n" --vessel "$vessel_cmd" --qemu "$qemu_cmd" \
  ${json:+--json "$json"}
