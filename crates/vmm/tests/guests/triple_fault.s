# A PVH guest that triple-faults on purpose: it says so on COM1, loads an
# empty IDT and raises #UD; with no IDT entry the #UD escalates to #GP, #DF
# and a shutdown.
    .code32
    .text
    .globl _start
_start:
    movl $msg, %esi
    movw $0x3f8, %dx
1:  movb (%esi), %al
    testb %al, %al
    jz fault
    outb %al, %dx
    incl %esi
    jmp 1b
fault:
    lidt empty_idt
    ud2

    .p2align 3
empty_idt:
    .word 0                         # limit
    .long 0                         # base
msg:    .asciz "about to triple fault\n"

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .p2align 2
    .long _start
