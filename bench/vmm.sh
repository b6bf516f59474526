#!/usr/bin/env bash
# bench/vmm.sh [-n N] [-w WARMUP] [--json FILE] [--no-build] [--vessel BIN] [--against BIN]
#
# Benchmarks vessel's VMM (`vessel vm run`, release build) against QEMU's
# microvm machine (`qemu-system-x86_64 -M microvm -enable-kvm`), side by
# side in one run, on the same purpose-built PVH guest, assembled here:
#   exit  prints "vessel bench guest ok" on COM1 and resets (i8042 0xFE,
#         then a triple fault for a machine without an i8042)
#   idle  prints the same line, then halts with interrupts off
# and measures, with N interleaved iterations (default 30) after WARMUP
# untimed ones (default 3):
#   - time from process start to the guest's first serial byte,
#   - time from process start to the VMM's exit,
#   - the VMM's own memory: RSS minus the guest RAM pages touched, read
#     from /proc/PID/smaps while the idle guest sits halted;
# and prints vessel/QEMU ratios. Both get 1 vCPU and 32 MiB.
#
# --vessel BIN measures another build of the `vessel` binary instead of
# target/release's (e.g. one built from a clean worktree). `vessel vm run`
# execs the `vessel-vmm` binary next to it, so copy both.
# --against BIN runs that other `vessel` build in QEMU's place: an A/B of
# two vessel builds, side by side in the same rounds.
#
# QEMU here needs `-cpu host,-arch-capabilities` (plain `-cpu host` aborts on
# MSR 0x10a under this machine's nested KVM) and pauses instead of exiting
# when KVM's emulator fails, so every QEMU run has a timeout.
#
# Needs root and /dev/kvm. Installs qemu-system-x86 and binutils with apt
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

n=30
warmup=3
json=
build=1
vessel=$PWD/target/release/vessel
against=
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?-n needs a number}; shift 2 ;;
    -w) warmup=${2:?-w needs a number}; shift 2 ;;
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --no-build) build=0; shift ;;
    --vessel) vessel=$(realpath "${2:?--vessel needs a binary}"); build=0; shift 2 ;;
    --against) against=$(realpath "${2:?--against needs a binary}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "vmm.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

if [ ! -e /dev/kvm ]; then
  echo "vmm.sh: /dev/kvm is missing" >&2
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
if [ "$build" = 1 ]; then
  cargo build --release -p vessel-cli --quiet
fi
qemu=$(command -v qemu-system-x86_64)

work=$(mktemp -d /tmp/vessel-bench-vmm.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat >"$work/guest.s" <<'EOF'
# PVH entry: 32-bit protected mode, paging off.
    .code32
    .text
    .globl _start
_start:
    movl $msg, %esi
    movw $0x3f8, %dx
1:  movb (%esi), %al
    testb %al, %al
    jz done
    outb %al, %dx
    incl %esi
    jmp 1b
done:
.ifdef IDLE
2:  cli
    hlt
    jmp 2b
.else
    movb $0xfe, %al
    outb %al, $0x64                 # i8042 reset (vessel)
    lidt noidt                      # no i8042 (QEMU microvm): triple fault
    ud2
.endif
    .p2align 3
noidt: .word 0
       .long 0
msg:    .asciz "vessel bench guest ok\n"

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 4
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
EOF
for kind in exit idle; do
  defsym=()
  [ "$kind" = idle ] && defsym=(--defsym IDLE=1)
  as --64 "${defsym[@]}" -o "$work/$kind.o" "$work/guest.s"
  ld -m elf_x86_64 -nostdlib -static --build-id=none --no-warn-rwx-segments \
    -T crates/vmm/tests/guests/link.ld -o "$work/$kind" "$work/$kind.o"
done

vessel_cmd() {
  printf '["%s","vm","run","--kernel","%s","--cpus","1","--memory","32","--console","stdio"]' \
    "${2:-$vessel}" "$work/$1"
}
qemu_cmd() {
  if [ -n "$against" ]; then
    vessel_cmd "$1" "$against"
    return
  fi
  printf '["/usr/bin/timeout","20","%s","-M","microvm","-enable-kvm","-cpu","host,-arch-capabilities","-smp","1","-m","32","-nodefaults","-no-user-config","-display","none","-serial","stdio","-no-reboot","-kernel","%s"]' \
    "$qemu" "$work/$1"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
size_of() {
  local vmm
  vmm=$(dirname "$1")/vessel-vmm
  echo "$(stat -c %s "$1") bytes$([ -e "$vmm" ] && echo ", vessel-vmm $(stat -c %s "$vmm") bytes")"
}
echo "== vessel $(size_of "$vessel")"
if [ -n "$against" ]; then
  echo "== against: $against, $(size_of "$against")"
else
  echo "== $("$qemu" --version | head -1)"
fi
echo "== guest: $(stat -c %s "$work/exit") bytes (exit), $(stat -c %s "$work/idle") bytes (idle)"
echo "== $n iterations (+$warmup warm-up) per VMM, interleaved; memory: median of 5 idle runs"
python3 bench/vmm.py --iterations "$n" --warmup "$warmup" \
  --vessel-exit "$(vessel_cmd exit)" --qemu-exit "$(qemu_cmd exit)" \
  --vessel-idle "$(vessel_cmd idle)" --qemu-idle "$(qemu_cmd idle)" \
  ${against:+--peer-name against} ${json:+--json "$json"}
