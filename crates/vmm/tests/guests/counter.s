# A PVH guest that counts on COM1 forever, for the snapshot tests: it
# prints "counter guest ready", then 0, 1, 2, … one decimal number per
# line, waiting DELAY TSC cycles between lines (default 20M, about 10 ms;
# `as --defsym DELAY=0` makes it print as fast as it can, for the restore
# benchmark). The count lives in guest memory, the digits on the stack and
# the loop state in registers, so a restore that loses any of them shows
# as a gap, a repeat or garbage in the sequence.
    .code32
    .text
    .globl _start
.ifndef DELAY
    .set DELAY, 20000000
.endif
_start:
    movl $0x8ff0, %esp              # PVH gives no stack; low RAM is free
    movl $ready, %esi
    call puts
next:
    movl count, %eax
    call putdec
    movb $'\n', %al
    call putc
    incl count
    rdtsc
    movl %eax, %edi                 # start of the wait (low 32 bits)
1:  rdtsc
    subl %edi, %eax
    cmpl $DELAY, %eax
    jb 1b
    jmp next

# Prints %eax in decimal.
putdec:
    movl $10, %ecx
    xorl %ebx, %ebx
2:  xorl %edx, %edx
    divl %ecx
    pushl %edx                      # least significant digit first
    incl %ebx
    testl %eax, %eax
    jnz 2b
3:  popl %eax
    addb $'0', %al
    call putc
    decl %ebx
    jnz 3b
    ret

# Prints %al on COM1.
putc:
    movw $0x3f8, %dx
    outb %al, %dx
    ret
# Prints the NUL-terminated string at %esi.
puts:
    movb (%esi), %al
    testb %al, %al
    jz 4f
    call putc
    incl %esi
    jmp puts
4:  ret

ready:  .asciz "counter guest ready\n"
    .data
    .p2align 2
count:  .long 0

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         # namesz
    .long 4                         # descsz
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
