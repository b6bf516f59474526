# PVH entry of the device benchmark guest (bench/guests/devices.c), so that
# vessel and QEMU's microvm boot the same ELF the same way: 32-bit
# protected mode, paging off, %ebx at the hvm_start_info. Maps the first
# 4 GiB with 2 MiB pages (RAM, virtio-mmio registers, I/O APIC, local
# APIC), enters long mode through its own GDT (64-bit code at selector 8,
# as virtio_guest.h's IDT gates expect) and calls main(cmdline). When main
# returns: the i8042 reset (vessel), then a triple fault (QEMU's microvm
# has no i8042 by default); both VMMs end.
    .code32
    .text
    .globl _start
_start:
    movl %ebx, %esi
    movl $0x401003, 0x400000        # PML4[0] -> PDPT at 0x401000
    movl $0x402003, %eax            # PDPT[0..3] -> PDs at 0x402000..0x405000
    movl $0x401000, %edi
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $0x1000, %eax
    addl $8, %edi
    decl %ecx
    jnz 1b
    movl $0x83, %eax                # 2 MiB | RW | P
    movl $0x402000, %edi
    movl $2048, %ecx
2:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    decl %ecx
    jnz 2b
    movl %cr4, %eax
    orl $0x620, %eax                # PAE, OSFXSR, OSXMMEXCPT
    movl %eax, %cr4
    movl $0x400000, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx          # EFER.LME
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax           # PG | PE
    movl %eax, %cr0
    lgdt gdtr
    ljmp $8, $long_mode

    .code64
long_mode:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movq $0x80000, %rsp
    movq 24(%rsi), %rdi             # hvm_start_info.cmdline_paddr
    call main
    movb $0xfe, %al
    outb %al, $0x64
    lidt noidt
    ud2

    .p2align 3
gdt:    .quad 0
        .quad 0x00af9b000000ffff    # 64-bit code
        .quad 0x00cf93000000ffff    # data
gdtr:   .word gdtr - gdt - 1
        .long gdt
noidt:  .word 0
        .quad 0

# The guest has no interrupt handlers of its own use: it polls.
    .globl irq_entry
    .globl spurious_entry
irq_entry:
spurious_entry:
    iretq

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 4
    .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .p2align 2
    .long _start
