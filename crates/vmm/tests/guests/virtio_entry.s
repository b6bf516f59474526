# Entry of the C test guests (virtio_*.c): booted by the 64-bit Linux
# protocol (no PVH note), so the VMM hands over long mode with the first
# GiB identity-mapped and %rsi at the zero page. This maps 3..4 GiB too
# (virtio-mmio registers, I/O APIC, local APIC) with 2 MiB pages in a page
# directory at 0xc000, sets a stack and calls main(zero_page); when main
# returns, the i8042 reset line ends the VM. 512 loop iterations: CPL0
# code is emulated on some hosts.
    .code64
    .text
    .globl _start
_start:
    movq $0x80000, %rsp
    movq %rsi, %r12
    movq $0xc000, %rdi
    movq $0xc0000083, %rax          # 3 GiB | PS | RW | P
    movl $512, %ecx
1:  movq %rax, (%rdi)
    addq $0x200000, %rax
    addq $8, %rdi
    decl %ecx
    jnz 1b
    movq $0xc003, %rax
    movq %rax, 0xa018               # PDPT[3] -> the new directory
    movq %cr3, %rax
    movq %rax, %cr3
    movq %r12, %rdi
    call main
    movb $0xfe, %al
    outb %al, $0x64                 # i8042: pulse the reset line
2:  cli
    hlt
    jmp 2b

# Interrupt handler for vector 0x40 (every virtio line is routed there):
# counts, and signals end of interrupt to the local APIC.
    .globl irq_entry
irq_entry:
    pushq %rax
    incl irq_count(%rip)
    movl $0, %eax
    movl %eax, 0xfee000b0
    popq %rax
    iretq

# Any other vector: ignored.
    .globl spurious_entry
spurious_entry:
    iretq
