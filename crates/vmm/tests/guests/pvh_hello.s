# A PVH guest: entered in 32-bit protected mode, paging off, %ebx pointing
# at hvm_start_info. It checks the start info, pokes an unclaimed port and
# unbacked MMIO (the VMM must shrug), prints on COM1, then pulses the i8042
# reset line. About 60 instructions: CPL0 code is emulated on some hosts.
    .code32
    .text
    .globl _start
_start:
    cmpl $0x336ec578, (%ebx)        # hvm_start_info.magic
    jne bad
    cmpl $0, 0x30(%ebx)             # memmap_entries
    je bad
    inb $0x99, %al                  # a port nobody claims
    movl 0xd0000000, %eax           # MMIO hole: nobody there either
    movl %eax, 0xd0000004
    movl $msg, %esi
    jmp print
bad:
    movl $badmsg, %esi
print:
    movw $0x3f8, %dx
1:  movb (%esi), %al
    testb %al, %al
    jz reset
    outb %al, %dx
    incl %esi
    jmp 1b
reset:
    movb $0xfe, %al
    outb %al, $0x64                 # i8042: pulse the reset line
2:  cli
    hlt
    jmp 2b

msg:    .asciz "vessel guest ok\n"
badmsg: .asciz "bad hvm_start_info\n"

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         # namesz
    .long 4                         # descsz
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
