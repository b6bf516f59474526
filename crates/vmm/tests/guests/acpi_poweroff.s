# A PVH guest that powers off the way Linux does under ACPI: from the RSDP
# (hvm_start_info.rsdp_paddr; %ebx points at hvm_start_info) to the XSDT,
# the FADT listed there, and the FADT's sleep control register, where it
# writes SLP_TYP | SLP_EN. SLP_TYP is 5 (S5, soft off) unless the including
# guest sets another. Then it polls the sleep status register as Linux
# does; if the VM is still running after that it says so and pulses the
# i8042 reset line. About 80 instructions, plus the polling loop.
    .ifndef SLP_TYP
    .set SLP_TYP, 5
    .endif
    .code32
    .text
    .globl _start
_start:
    movl $stack_top, %esp
    cmpl $0x336ec578, (%ebx)        # hvm_start_info.magic
    jne bad
    movl 0x20(%ebx), %esi           # rsdp_paddr (below 1 MiB: low half)
    testl %esi, %esi
    jz bad
    cmpl $0x20445352, (%esi)        # "RSD "
    jne bad
    cmpl $0x20525450, 4(%esi)       # "PTR "
    jne bad
    movl 24(%esi), %esi             # XsdtAddress
    cmpl $0x54445358, (%esi)        # "XSDT"
    jne bad
    movl 4(%esi), %edi              # Length
    addl %esi, %edi                 # end of the XSDT
    addl $36, %esi                  # first entry, after the header
1:  cmpl %edi, %esi
    jae bad
    movl (%esi), %ecx               # a table's address
    cmpl $0x50434146, (%ecx)        # "FACP"
    je fadt
    addl $8, %esi
    jmp 1b
fadt:
    cmpb $1, 244(%ecx)              # SLEEP_CONTROL_REG in system I/O space
    jne bad
    movw 248(%ecx), %bx             # its port
    cmpb $1, 256(%ecx)              # SLEEP_STATUS_REG, in I/O space too
    jne bad
    movw 260(%ecx), %di             # its port
    movl $found, %esi
    call print
    movw %bx, %dx
    movb $((SLP_TYP << 2) | 0x20), %al  # SLP_TYPx | SLP_EN
    outb %al, %dx
    # As Linux does after the write: wait for WAK_STS in the status
    # register (a power-off stops the vCPUs meanwhile), here for at most
    # 100000 reads.
    movl $100000, %ecx
    movw %di, %dx
5:  inb %dx, %al
    testb $0x80, %al
    jnz 6f
    loop 5b
6:  movl $alive, %esi               # still here: no power-off
    call print
    jmp reset
bad:
    movl $badmsg, %esi
    call print
reset:
    movb $0xfe, %al
    outb %al, $0x64                 # i8042: pulse the reset line
2:  cli
    hlt
    jmp 2b

# Prints the NUL-terminated string at %esi on COM1.
print:
    movw $0x3f8, %dx
3:  movb (%esi), %al
    testb %al, %al
    jz 4f
    outb %al, %dx
    incl %esi
    jmp 3b
4:  ret

found:  .asciz "sleep control register found\n"
alive:  .asciz "still running after the sleep write\n"
badmsg: .asciz "no ACPI tables\n"

    .p2align 4
stack:  .fill 256, 1, 0
stack_top:

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         # namesz
    .long 4                         # descsz
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
