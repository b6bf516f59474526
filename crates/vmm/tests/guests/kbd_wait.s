# A PVH guest that runs until a key arrives: it prints "kbd guest ready",
# then polls the i8042 status port forever, printing a '.' every 256 polls
# (so that a paused VM is visible as output that stops growing). Every byte
# read from the data port is printed as "key XX"; after 0x71 (the last byte
# of Ctrl+Alt+Del's scan codes, 14 11 e0 71) it resets through the i8042.
    .code32
    .text
    .globl _start
_start:
    movl $0x8ff0, %esp              # PVH gives no stack; low RAM is free
    movl $ready, %esi
    call puts
poll:
    movl $256, %ecx
1:  inb $0x64, %al
    testb $1, %al                   # output buffer full?
    jnz key
    decl %ecx
    jnz 1b
    movb $'.', %al
    call putc
    jmp poll
key:
    inb $0x60, %al
    movb %al, %bl
    movl $keymsg, %esi
    call puts
    movb %bl, %al
    shrb $4, %al
    call hex
    movb %bl, %al
    call hex
    movb $'\n', %al
    call putc
    cmpb $0x71, %bl
    jne poll
    movb $0xfe, %al
    outb %al, $0x64                 # i8042: pulse the reset line
2:  cli
    hlt
    jmp 2b

# Prints the low nibble of %al as a hex digit.
hex:
    andb $0xf, %al
    addb $'0', %al
    cmpb $'9', %al
    jbe putc
    addb $('a' - '0' - 10), %al
# Prints %al on COM1.
putc:
    movw $0x3f8, %dx
    outb %al, %dx
    ret
# Prints the NUL-terminated string at %esi.
puts:
    movb (%esi), %al
    testb %al, %al
    jz 3f
    call putc
    incl %esi
    jmp puts
3:  ret

ready:  .asciz "kbd guest ready\n"
keymsg: .asciz "key "

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         # namesz
    .long 4                         # descsz
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
