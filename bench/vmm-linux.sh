#!/usr/bin/env bash
# bench/vmm-linux.sh [-n N] [--json FILE] [--no-build] [--vessel BIN] [--profile]
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
# Beside the wall clock, each run reports what it is made of:
# - the number of guest instructions the host's KVM emulated for the VMM
#   until the banner: `perf stat` of the kvm:kvm_emulate_insn tracepoint
#   around the VMM process and its threads (separate runs, so that perf's
#   start is not in the timings). It does not depend on the machine's load;
# - from /proc/PID/task/*/schedstat at the banner: the vCPU thread's time on
#   a CPU, its time waiting on a run queue (the machine's load), and the rest
#   (the VMM's start before the vCPU runs, the vCPU's sleeps). The CPU time
#   per emulated instruction varies with load too (±10% here), less than
#   the wall clock does.
# perf comes from apt's linux-perf when missing; without perf or the
# tracepoint the script says so and prints the rest.
#
# --profile: also traces one boot per VMM with ftrace (kvm/kvm_emulate_insn,
# the RIP of every emulated instruction until the banner, 700 MB of trace
# buffer per CPU; about 90 s) and prints the guest kernel functions those
# instructions are in, named by the vmlinux's kallsyms (`kallsyms-finder`,
# pip package vmlinux-to-elf).
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
profile=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    --profile) profile=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vmm-linux.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -e /dev/kvm ] || { echo "vmm-linux.sh: /dev/kvm is missing" >&2; exit 1; }
apt_install() {
  apt-get update -q >/dev/null
  # The first install on a fresh machine sometimes fails once (ENVIRONMENT.md).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
command -v perf >/dev/null || apt_install linux-perf || true
# The instruction counts need perf and KVM's kvm:kvm_emulate_insn tracepoint.
perf_args=(--no-perf-reason "perf is not installed and apt could not install linux-perf")
if command -v perf >/dev/null; then
  if err=$(perf stat -e kvm:kvm_emulate_insn -x, -o /dev/null -- true 2>&1); then
    perf_args=(--perf "$(command -v perf)")
  else
    perf_args=(--no-perf-reason "perf cannot count kvm:kvm_emulate_insn here: $(echo "$err" | grep -v '^ *$' | head -2 | tr '\n' ' ')")
  fi
fi
if [ "$profile" = 1 ]; then
  [ -e /sys/kernel/tracing/events/kvm/kvm_emulate_insn ] ||
    { echo "vmm-linux.sh: --profile needs tracefs and the kvm/kvm_emulate_insn event" >&2; exit 1; }
  command -v kallsyms-finder >/dev/null ||
    { echo "vmm-linux.sh: --profile needs kallsyms-finder (pip install vmlinux-to-elf)" >&2; exit 1; }
fi
[ "$build" = 1 ] && cargo build --release -p vessel-cli --quiet
qemu=$(command -v qemu-system-x86_64)
kernel=$(bash scripts/guest-kernel.sh)
cmdline="console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off"

vessel_cmd=$(printf '["%s","vm","run","--kernel","%s","--cmdline","%s","--cpus","1","--memory","128","--console","stdio"]' \
  "$vessel" "$kernel" "$cmdline")
qemu_cmd=$(printf '["/usr/bin/timeout","300","%s","-M","microvm","-enable-kvm","-cpu","host,-arch-capabilities","-smp","1","-m","128","-nodefaults","-no-user-config","-display","none","-name","linux,debug-threads=on","-serial","stdio","-no-reboot","-kernel","%s","-append","%s"]' \
  "$qemu" "$kernel" "$cmdline")

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "== guest kernel: $(cat "$(dirname "$kernel")/version" 2>/dev/null || echo "$kernel"); $("$qemu" --version | head -1)"
profile_args=()
[ "$profile" = 0 ] || profile_args=(--profile "$kernel")
echo "== $n iterations per VMM, interleaved; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "${perf_args[0]}" = --perf ] || echo "== NO INSTRUCTION COUNTS: ${perf_args[1]}"
python3 bench/vmm_linux.py --iterations "$n" --vessel "$vessel_cmd" --qemu "$qemu_cmd" \
  "${perf_args[@]}" ${json:+--json "$json"} "${profile_args[@]}"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
