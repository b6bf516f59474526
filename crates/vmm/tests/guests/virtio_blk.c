/* Drives the virtio-blk devices (and the entropy device) it finds on the
 * command line, printing what it sees; the host test checks the lines and
 * the disk image afterwards. Per disk: capacity, GET_ID, a read of sector 1
 * (the host wrote (i*7+1)&0xff), a write of sector 2 ((i*13+5)&0xff, or
 * IOERR on a read-only disk), flush, discard of sector 3, a read past the
 * end (IOERR), hostile chains (a loop, a buffer outside memory: returned
 * with nothing written, and the device still answers), and whether the
 * device interrupted. */
#include "virtio_guest.h"

#define HDR 0x600000UL
#define DATA 0x601000UL
#define STATUS 0x602000UL
#define SEG 0x603000UL

static long blk_req(struct vdev *d, u32 type, u64 sector, u64 data, u32 len, int data_write) {
    u32 *h = (u32 *)HDR;
    h[0] = type;
    h[1] = 0;
    *(u64 *)(HDR + 8) = sector;
    *(volatile u8 *)STATUS = 0xee;
    struct buf b[3] = {{HDR, 16, 0}, {data, len, data_write}, {STATUS, 1, 1}};
    if (len) {
        vq_submit(d, 0, b, 3);
    } else {
        b[1] = b[2];
        vq_submit(d, 0, b, 2);
    }
    if (vq_wait(d, 0) < 0) return -1;
    return *(volatile u8 *)STATUS;
}

static void test_blk(struct vdev *d, u64 qmem) {
    if (vdev_init(d, (1UL << 5) | (1UL << 9) | (1UL << 13) | (1UL << 14), 1, qmem)) {
        puts("blk: init failed\n");
        return;
    }
    int ro = (d->features >> 5) & 1, flush = (d->features >> 9) & 1;
    u64 cap = *(volatile u32 *)(d->base + 0x100) | (u64)*(volatile u32 *)(d->base + 0x104) << 32;
    puts("blk: capacity ");
    putdec(cap);
    puts(ro ? " read-only" : " read-write");
    puts(flush ? " flush\n" : "\n");

    u32 irqs = irq_count;
    memset((void *)DATA, 0, 512);
    long s = blk_req(d, 8, 0, DATA, 20, 1);
    puts("blk: id ");
    puts((const char *)DATA);
    puts(" status ");
    putdec((u64)s);
    putc('\n');
    puts(wait_irq(irqs) && (vdev_ack(d) & 1) ? "blk: interrupt ok\n" : "blk: no interrupt\n");

    s = blk_req(d, 0, 1, DATA, 512, 1);
    int ok = s == 0;
    for (int i = 0; i < 512 && ok; i++) ok = ((u8 *)DATA)[i] == (u8)(i * 7 + 1);
    puts(ok ? "blk: sector 1 matches\n" : "blk: sector 1 differs\n");

    for (int i = 0; i < 512; i++) ((u8 *)DATA)[i] = (u8)(i * 13 + 5);
    memcpy((void *)DATA, "guest wrote this", 16);
    puts("blk: write status ");
    putdec((u64)blk_req(d, 1, 2, DATA, 512, 0));
    putc('\n');
    if (flush) {
        puts("blk: flush status ");
        putdec((u64)blk_req(d, 4, 0, 0, 0, 0));
        putc('\n');
    }
    if (!ro) {
        u32 *seg = (u32 *)SEG; /* sector 3, 1 sector, no flags */
        seg[0] = 3; seg[1] = 0; seg[2] = 1; seg[3] = 0;
        puts("blk: discard status ");
        putdec((u64)blk_req(d, 11, 0, SEG, 16, 0));
        putc('\n');
    }
    puts("blk: read past end status ");
    putdec((u64)blk_req(d, 0, cap, DATA, 512, 1));
    putc('\n');

    /* Hostile: descriptor 0 chains to itself forever. */
    struct vq *q = &d->q[0];
    q->desc[0].addr = HDR; q->desc[0].len = 16; q->desc[0].flags = VIRTQ_DESC_F_NEXT; q->desc[0].next = 0;
    vq_publish(d, 0, 0);
    puts("blk: loop chain used len ");
    putdec((u64)vq_wait(d, 0));
    putc('\n');
    /* Hostile: a status buffer far outside guest memory. */
    q->desc[0].addr = HDR; q->desc[0].len = 16; q->desc[0].flags = VIRTQ_DESC_F_NEXT; q->desc[0].next = 1;
    q->desc[1].addr = 0x7fff00000000UL; q->desc[1].len = 1; q->desc[1].flags = VIRTQ_DESC_F_WRITE; q->desc[1].next = 0;
    vq_publish(d, 0, 0);
    puts("blk: outside chain used len ");
    putdec((u64)vq_wait(d, 0));
    putc('\n');
    s = blk_req(d, 0, 1, DATA, 512, 1);
    puts(s == 0 && ((u8 *)DATA)[1] == 8 ? "blk: still answers\n" : "blk: broken\n");
}

static void test_rng(struct vdev *d, u64 qmem) {
    if (vdev_init(d, 0, 1, qmem)) {
        puts("rng: init failed\n");
        return;
    }
    u8 *a = (u8 *)DATA, *b = (u8 *)(DATA + 64);
    memset(a, 0, 128);
    struct buf one = {DATA, 32, 1}, two = {DATA + 64, 32, 1};
    vq_submit(d, 0, &one, 1);
    long n1 = vq_wait(d, 0);
    vq_submit(d, 0, &two, 1);
    long n2 = vq_wait(d, 0);
    int same = 1, zero = 1;
    for (int i = 0; i < 32; i++) {
        if (a[i] != b[i]) same = 0;
        if (a[i]) zero = 0;
    }
    puts("rng: got ");
    putdec((u64)n1);
    puts(" and ");
    putdec((u64)n2);
    puts(same || zero ? " bytes, not random\n" : " bytes, different\n");
}

void main(u64 zero_page) {
    struct vdev devs[8];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 8);
    puts("virtio devices: ");
    putdec((u64)n);
    putc('\n');
    for (int i = 0; i < n; i++) {
        u64 qmem = 0x200000UL + (u64)i * 0x10000;
        if (devs[i].id == 2) test_blk(&devs[i], qmem);
        if (devs[i].id == 4) test_rng(&devs[i], qmem);
    }
    puts("done\n");
}
