# A guest for the 64-bit Linux boot protocol: no PVH note, so the VMM enters
# it in long mode with its own page tables and GDT, %rsi pointing at the
# zero page. It checks the zero page and the command line pointer, prints on
# COM1 and pulses the i8042 reset line.
    .code64
    .text
    .globl _start
_start:
    cmpl $0x53726448, 0x202(%rsi)   # boot_params.hdr.header == "HdrS"
    jne bad
    cmpb $0, 0x1e8(%rsi)            # e820_entries
    je bad
    movl 0x228(%rsi), %eax          # hdr.cmd_line_ptr
    cmpb $'c', (%rax)               # the test's command line starts "console="
    jne bad
    movq $msg, %rsi
    jmp print
bad:
    movq $badmsg, %rsi
print:
    movw $0x3f8, %dx
1:  movb (%rsi), %al
    testb %al, %al
    jz reset
    outb %al, %dx
    incq %rsi
    jmp 1b
reset:
    movb $0xfe, %al
    outb %al, $0x64
2:  cli
    hlt
    jmp 2b

msg:    .asciz "vessel guest 64 ok\n"
badmsg: .asciz "bad zero page\n"
