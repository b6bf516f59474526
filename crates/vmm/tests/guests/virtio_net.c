/* Drives the virtio-net device it finds on the command line and prints
 * what it sees; the host test is the other end of the tap. The guest is
 * 10.0.2.15 with the MAC from the config space; the host is 10.0.2.1.
 * It sends hostile TX chains (too short for the header, a buffer outside
 * memory: both must come back unsent), asks for the host's MAC by ARP,
 * sends "hello from the guest" by UDP to 10.0.2.1:7777 from port 7000,
 * answers ARP requests for its address, and echoes the first UDP payload
 * that reaches port 7000 back to its sender; then it ends. Waits are
 * `hlt` until the device's interrupt: no busy loop under the emulator. */
#include "virtio_guest.h"

#define RXQ 0
#define TXQ 1
#define NRX 4
#define RXBUF 0x600000UL /* NRX buffers of 2 KiB */
#define TXBUF 0x610000UL
#define HDR_LEN 12
#define GUEST_PORT 7000
#define HOST_PORT 7777

static const u8 guest_ip[4] = {10, 0, 2, 15};
static const u8 host_ip[4] = {10, 0, 2, 1};
static u8 mac[6], host_mac[6];
static struct vdev *net;

static int same(const u8 *a, const u8 *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}
static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }

static void putmac(const u8 *m) {
    for (int i = 0; i < 6; i++) {
        const char *hex = "0123456789abcdef";
        if (i) putc(':');
        putc(hex[m[i] >> 4]);
        putc(hex[m[i] & 15]);
    }
}

/* Sends the frame at TXBUF + HDR_LEN (the header before it zeroed) as a
 * two-buffer chain: header, then frame. Returns the used length. */
static long send_frame(struct vdev *d, u32 len) {
    memset((void *)TXBUF, 0, HDR_LEN);
    struct buf b[2] = {{TXBUF, HDR_LEN, 0}, {TXBUF + HDR_LEN, len, 0}};
    vq_submit(d, TXQ, b, 2);
    return vq_wait(d, TXQ);
}

/* An Ethernet header to `dst` of `type` at the frame start; returns the
 * payload. */
static u8 *eth_start(const u8 *dst, u16 type) {
    u8 *f = (u8 *)(TXBUF + HDR_LEN);
    memcpy(f, dst, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, type);
    return f + 14;
}

static long send_arp(u16 op, const u8 *dst_mac, const u8 *dst_ip) {
    static const u8 bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    u8 *a = eth_start(op == 1 ? bcast : dst_mac, 0x0806);
    put16(a, 1);          /* Ethernet */
    put16(a + 2, 0x0800); /* IPv4 */
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, mac, 6);
    memcpy(a + 14, guest_ip, 4);
    memset(a + 18, 0, 6);
    if (op == 2) memcpy(a + 18, dst_mac, 6);
    memcpy(a + 24, dst_ip, 4);
    return send_frame(net, 14 + 28);
}

static long send_udp(const u8 *dst_ip, u16 dst_port, const u8 *data, u32 n) {
    u8 *ip = eth_start(host_mac, 0x0800);
    u16 total = (u16)(20 + 8 + n);
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, total);
    ip[8] = 64; /* TTL */
    ip[9] = 17; /* UDP */
    memcpy(ip + 12, guest_ip, 4);
    memcpy(ip + 16, dst_ip, 4);
    u32 sum = 0;
    for (int i = 0; i < 20; i += 2) sum += be16(ip + i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, (u16)~sum);
    u8 *udp = ip + 20;
    put16(udp, GUEST_PORT);
    put16(udp + 2, dst_port);
    put16(udp + 4, (u16)(8 + n));
    put16(udp + 6, 0); /* no checksum (IPv4 allows it) */
    memcpy(udp + 8, data, n);
    return send_frame(net, 14 + total);
}

/* RX buffer i, 2 KiB, at descriptor i (all NRX are in flight). */
static void give_rx(struct vdev *d, u32 i) {
    struct buf b = {RXBUF + i * 0x800, 0x800, 1};
    vq_submit_at(d, RXQ, (int)i, &b, 1);
}

/* Waits for a received frame; returns its length (header included), its
 * buffer in *head, or -1 when interrupts stopped coming. */
static long rx_wait(struct vdev *d, u16 *head) {
    for (u32 i = 0; i < 100000; i++) {
        long n = vq_wait_head(d, RXQ, 1, head);
        if (n >= 0) return n;
        __asm__ volatile("sti; hlt; cli");
        vdev_ack(d);
    }
    return -1;
}

static int got_arp_reply, echoed;

/* One received frame (after the virtio-net header). */
static void handle(const u8 *f, u32 len) {
    if (len < 42) return;
    u16 type = be16(f + 12);
    const u8 *p = f + 14;
    if (type == 0x0806) {
        u16 op = be16(p + 6);
        if (op == 2 && same(p + 14, host_ip, 4) && !got_arp_reply) {
            memcpy(host_mac, p + 8, 6);
            got_arp_reply = 1;
            puts("net: arp reply from 10.0.2.1 is-at ");
            putmac(host_mac);
            putc('\n');
            static const char hello[] = "hello from the guest";
            puts("net: udp sent, used len ");
            putdec((u64)send_udp(host_ip, HOST_PORT, (const u8 *)hello, sizeof(hello) - 1));
            putc('\n');
        } else if (op == 1 && same(p + 24, guest_ip, 4)) {
            u8 who_mac[6], who_ip[4];
            memcpy(who_mac, p + 8, 6);
            memcpy(who_ip, p + 14, 4);
            send_arp(2, who_mac, who_ip);
            puts("net: answered an arp request\n");
        }
    } else if (type == 0x0800 && p[9] == 17 && same(p + 16, guest_ip, 4) && got_arp_reply) {
        u32 ihl = (u32)(p[0] & 15) * 4;
        const u8 *udp = p + ihl;
        if (14 + ihl + 8 > len || be16(udp + 2) != GUEST_PORT) return;
        u32 n = be16(udp + 4) - 8u;
        if (n > 200 || 14 + ihl + 8 + n > len) return;
        u8 data[200], src_ip[4];
        memcpy(data, udp + 8, n);
        memcpy(src_ip, p + 12, 4);
        puts("net: udp from host: ");
        for (u32 i = 0; i < n; i++) putc((char)data[i]);
        putc('\n');
        send_udp(src_ip, be16(udp), data, n);
        puts("net: echo sent\n");
        echoed = 1;
    }
}

static void test_net(struct vdev *d, u64 qmem) {
    net = d;
    if (vdev_init(d, (1UL << 5) | (1UL << 16), 2, qmem)) {
        puts("net: init failed\n");
        return;
    }
    for (int i = 0; i < 6; i++) mac[i] = *(volatile u8 *)(d->base + 0x100 + (u64)i);
    u16 status = *(volatile u16 *)(d->base + 0x106);
    puts("net: mac ");
    putmac(mac);
    puts(" link ");
    puts(status & 1 ? "up" : "down");
    puts((d->features >> 5) & 1 ? " (VIRTIO_NET_F_MAC)\n" : "\n");
    for (u32 i = 0; i < NRX; i++) give_rx(d, i);

    /* Hostile: shorter than the virtio-net header; a buffer outside memory. */
    struct buf shorty = {TXBUF, 8, 0};
    vq_submit(d, TXQ, &shorty, 1);
    puts("net: short chain used len ");
    putdec((u64)vq_wait(d, TXQ));
    putc('\n');
    struct buf outside[2] = {{TXBUF, HDR_LEN, 0}, {0x7fff00000000UL, 60, 0}};
    vq_submit(d, TXQ, outside, 2);
    puts("net: outside chain used len ");
    putdec((u64)vq_wait(d, TXQ));
    putc('\n');

    puts("net: arp request sent, used len ");
    putdec((u64)send_arp(1, 0, host_ip));
    putc('\n');
    u32 irqs = irq_count;
    while (!echoed) {
        u16 head;
        long n = rx_wait(d, &head);
        if (n < 0 || head >= NRX) {
            puts("net: receive failed\n");
            return;
        }
        if (n > HDR_LEN) handle((const u8 *)(RXBUF + head * 0x800 + HDR_LEN), (u32)n - HDR_LEN);
        give_rx(d, head);
    }
    /* Delivered during a hlt, or pending since: both count. */
    puts(wait_irq(irqs) ? "net: interrupts ok\n" : "net: no interrupt\n");
}

void main(u64 zero_page) {
    struct vdev devs[8];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 8);
    puts("virtio devices: ");
    putdec((u64)n);
    putc('\n');
    for (int i = 0; i < n; i++)
        if (devs[i].id == 1) test_net(&devs[i], 0x200000UL + (u64)i * 0x10000);
    puts("done\n");
}
