/* The device benchmark's guest (bench/devices.sh), booted by PVH
 * (pvh_entry.s) so that vessel and QEMU's microvm run the same ELF. It
 * finds its devices on the command line (virtio_mmio.device=..., which
 * both VMMs append) and prints a line when a transfer starts and ends;
 * the host times the lines. The guest never touches the bytes it moves
 * (its CPL0 code is emulated on some hosts): the device writes them into
 * its memory.
 *   virtio-blk: reads the whole disk in order, one request of
 *     blk_req_kib=N KiB (default 1024) at a time, and checks the marks the
 *     host put in the first and last sectors;
 *   virtio-vsock: accepts one host connection on port 1234 and takes
 *     every byte into 64 KiB RX buffers, four in flight, giving credit
 *     back every 256 KiB, until the host shuts down. */
#include "virtio_guest.h"

#define QMEM 0x200000UL
#define REQ 0x300000UL
#define STATUS 0x300100UL
#define TXB 0x301000UL
#define DATA 0x1000000UL /* 16 MiB: read target and RX buffers */
#define HDR 44
#define RX_N 4
#define RX_LEN (64 * 1024)
#define RX_STRIDE 0x11000UL
#define GUEST_BUF (1U << 20)

static u64 cmd_num(const char *cmdline, const char *key, u64 dflt) {
    for (const char *p = cmdline; *p; p++) {
        int k = 0;
        while (key[k] && p[k] == key[k]) k++;
        if (key[k]) continue;
        u64 v = 0;
        for (p += k; *p >= '0' && *p <= '9'; p++) v = v * 10 + (u64)(*p - '0');
        return v;
    }
    return dflt;
}

static int starts_with(const u8 *p, const char *s) {
    while (*s)
        if (*p++ != (u8)*s++) return 0;
    return 1;
}

static void bench_blk(struct vdev *d, u64 req) {
    if (vdev_init(d, 0, 1, QMEM)) {
        puts("blk: init failed\n");
        return;
    }
    u64 total = (rd32(d->base + 0x100) | (u64)rd32(d->base + 0x104) << 32) * 512;
    u64 errors = 0, len = 0;
    int first_ok = 0;
    puts("blk: start\n");
    for (u64 off = 0; off < total; off += len) {
        len = total - off < req ? total - off : req;
        volatile u32 *h = (volatile u32 *)REQ;
        h[0] = 0; /* VIRTIO_BLK_T_IN */
        h[1] = 0;
        *(volatile u64 *)(REQ + 8) = off / 512;
        *(volatile u8 *)STATUS = 0xee;
        struct buf b[3] = {{REQ, 16, 0}, {DATA, (u32)len, 1}, {STATUS, 1, 1}};
        vq_submit(d, 0, b, 3);
        if (vq_wait(d, 0) < 0 || *(volatile u8 *)STATUS != 0) errors++;
        if (off == 0) first_ok = starts_with((u8 *)DATA, "vessel bench disk start");
    }
    int last_ok = starts_with((u8 *)(DATA + len - 512), "vessel bench disk end");
    puts("blk: end ");
    putdec(total >> 20);
    puts(" MiB, errors ");
    putdec(errors);
    puts(first_ok && last_ok ? ", marks ok\n" : ", marks wrong\n");
}

static void vsock_tx(struct vdev *d, u64 cid, u32 dst_port, u16 op, u32 fwd_cnt) {
    struct vsock_hdr *h = (struct vsock_hdr *)TXB;
    memset(h, 0, HDR);
    h->src_cid = cid;
    h->dst_cid = 2;
    h->src_port = 1234;
    h->dst_port = dst_port;
    h->type = 1;
    h->op = op;
    h->buf_alloc = GUEST_BUF;
    h->fwd_cnt = fwd_cnt;
    struct buf b = {TXB, HDR, 0};
    vq_submit(d, 1, &b, 1);
    vq_wait(d, 1);
}

static void rx_offer(struct vdev *d, u32 i) {
    struct buf b = {DATA + i * RX_STRIDE, HDR + RX_LEN, 1};
    vq_submit_at(d, 0, (int)i, &b, 1);
}

static void bench_vsock(struct vdev *d) {
    if (vdev_init(d, 0, 3, QMEM)) {
        puts("vsock: init failed\n");
        return;
    }
    u64 cid = rd32(d->base + 0x100) | (u64)rd32(d->base + 0x104) << 32;
    for (u32 i = 0; i < RX_N; i++) rx_offer(d, i);
    u32 peer = 0, taken = 0, told = 0, waits = 0;
    puts("vsock: listening\n");
    for (;;) {
        u16 head;
        if (vq_wait_head(d, 0, 2000000, &head) < 0) {
            if (++waits < 30) continue;
            puts("vsock: nothing came\n");
            return;
        }
        const struct vsock_hdr *h = (const struct vsock_hdr *)(DATA + head * RX_STRIDE);
        u16 op = h->op;
        u32 len = h->len, src = h->src_port, flags = h->flags;
        rx_offer(d, head);
        if (op == 1 && !peer) {
            peer = src;
            vsock_tx(d, cid, peer, 2, 0);
            puts("vsock: start\n");
        } else if (op == 5 && src == peer) {
            taken += len;
            if (taken - told >= GUEST_BUF / 4) {
                told = taken;
                vsock_tx(d, cid, peer, 6, taken);
            }
        } else if (op == 4 && src == peer) {
            vsock_tx(d, cid, peer, 3, taken);
            puts("vsock: end ");
            putdec(taken);
            puts(" bytes, flags ");
            putdec(flags);
            putc('\n');
            return;
        }
    }
}

void main(const char *cmdline) {
    struct vdev devs[4];
    int n = find_devices(cmdline, devs, 4);
    u64 req = cmd_num(cmdline, "blk_req_kib=", 1024) << 10;
    struct vdev *blk = find_id(devs, n, 2), *vsock = find_id(devs, n, 19);
    puts("bench guest: ");
    putdec((u64)n);
    puts(" devices\n");
    if (blk) bench_blk(blk, req);
    if (vsock) bench_vsock(vsock);
    puts("bench guest: done\n");
}
