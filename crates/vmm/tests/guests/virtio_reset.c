/* Makes the VMM mark a device DEVICE_NEEDS_RESET from the vCPU thread:
 * it starts the entropy device (DRIVER_OK) with queue 0's descriptor
 * table past guest memory, which the transport refuses on the MMIO exit
 * of that write. The guest checks the status it reads back and the
 * configuration interrupt that tells it, resets the device, starts it
 * properly and reads entropy through it. The host test
 * (tests/virtio_reset.rs) runs it with and without irqfd. */
#include "virtio_guest.h"

#define QMEM 0x200000UL
#define ENTROPY 0x300000UL

static void bad_start(struct vdev *d) {
    u64 b = d->base;
    wr32(b + 0x70, 0);
    wr32(b + 0x70, 1);
    wr32(b + 0x70, 1 | 2);
    wr32(b + 0x24, 1);
    wr32(b + 0x20, 1); /* VIRTIO_F_VERSION_1 (bit 32) */
    wr32(b + 0x24, 0);
    wr32(b + 0x20, 0);
    wr32(b + 0x70, 1 | 2 | 8);
    wr32(b + 0x30, 0);
    wr32(b + 0x38, QN);
    wr32(b + 0x80, 0);
    wr32(b + 0x84, 0x7fff); /* descriptors at 0x7fff00000000 */
    wr32(b + 0x90, (u32)(QMEM + 0x400));
    wr32(b + 0x94, 0);
    wr32(b + 0xa0, (u32)(QMEM + 0x800));
    wr32(b + 0xa4, 0);
    wr32(b + 0x44, 1);
    ioapic_route(d->irq, 0x40);
    u32 before = irq_count;
    wr32(b + 0x70, 1 | 2 | 8 | 4);
    u32 status = rd32(b + 0x70);
    int irq = wait_irq(before);
    puts("reset: status ");
    puthex(status);
    puts(irq ? " interrupt" : " no interrupt");
    puts(" isr ");
    putdec(vdev_ack(d));
    putc('\n');
}

void main(u64 zero_page) {
    struct vdev devs[2];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 2);
    struct vdev *d = find_id(devs, n, 4);
    if (!d) {
        puts("reset: no entropy device\n");
        return;
    }
    bad_start(d);
    /* vdev_init writes status 0 first: the reset. */
    if (vdev_init(d, 0, 1, QMEM)) {
        puts("reset: init failed\n");
        return;
    }
    puts("reset: status after reset ");
    puthex(rd32(d->base + 0x70));
    putc('\n');
    struct buf b = {ENTROPY, 32, 1};
    vq_submit(d, 0, &b, 1);
    puts("reset: entropy used len ");
    putdec((u64)vq_wait(d, 0));
    putc('\n');
}
