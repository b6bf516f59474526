/* Disk I/O in a loop, for the snapshot tests: on its first virtio-blk
 * device, iteration i writes sector 1 + i % SLOTS with pattern(i) ("count
 * <i>" then (i + k) & 0xff), reads it back, and prints "<i> ok" when the
 * write and the read succeeded, the bytes match and the device
 * interrupted for both; otherwise "<i> bad <what>". A snapshot taken at any
 * point and restored in another VMM must go on with the next number, and
 * the host must find each slot's last pattern in the image. */
#include "virtio_guest.h"

#define SLOTS 32
#define HDR 0x600000UL
#define DATA 0x601000UL
#define BACK 0x602000UL
#define STATUS 0x603000UL

static void pattern(u64 i, u8 *p) {
    for (int k = 0; k < 512; k++) p[k] = (u8)(i + (u64)k);
    static const char label[] = "count ";
    for (int k = 0; k < 6; k++) p[k] = (u8)label[k];
    char digits[21];
    int n = 0;
    do { digits[n++] = (char)('0' + i % 10); i /= 10; } while (i);
    for (int k = 0; k < n; k++) p[6 + k] = (u8)digits[n - 1 - k];
    p[6 + n] = 0;
}

/* One request; its status byte, or -1 without an answer, -2 without an
 * interrupt. */
static long request(struct vdev *d, u32 type, u64 sector, u64 data, int data_write) {
    u32 *h = (u32 *)HDR;
    h[0] = type;
    h[1] = 0;
    *(u64 *)(HDR + 8) = sector;
    *(volatile u8 *)STATUS = 0xee;
    struct buf b[3] = {{HDR, 16, 0}, {data, 512, data_write}, {STATUS, 1, 1}};
    u32 irqs = irq_count;
    vq_submit(d, 0, b, 3);
    if (vq_wait(d, 0) < 0) return -1;
    if (!wait_irq(irqs)) return -2;
    vdev_ack(d);
    return *(volatile u8 *)STATUS;
}

void main(u64 zero_page) {
    struct vdev devs[8];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 8);
    struct vdev *d = find_id(devs, n, 2);
    if (!d || vdev_init(d, 0, 1, 0x200000UL)) {
        puts("no disk\n");
        return;
    }
    puts("disk loop ready\n");
    for (u64 i = 0;; i++) {
        u64 sector = 1 + i % SLOTS;
        pattern(i, (u8 *)DATA);
        long w = request(d, 1, sector, DATA, 0);
        memset((void *)BACK, 0, 512);
        long r = request(d, 0, sector, BACK, 1);
        int same = 1;
        for (int k = 0; k < 512 && same; k++) same = ((u8 *)DATA)[k] == ((u8 *)BACK)[k];
        putdec(i);
        if (w == 0 && r == 0 && same) {
            puts(" ok\n");
        } else {
            puts(" bad write ");
            putdec((u64)w);
            puts(" read ");
            putdec((u64)r);
            puts(same ? " same\n" : " differs\n");
        }
    }
}
