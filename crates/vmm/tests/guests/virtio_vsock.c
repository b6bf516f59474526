/* Drives the virtio-vsock device it finds on the command line through its
 * RX and TX queues, one packet at a time, printing what it sees; the host
 * test plays the other end of each connection on the device's Unix
 * sockets and checks these lines and the bytes it got. In order:
 *   1. hostile chains and buffers (outside memory, a loop, a spoofed CID,
 *      a length past the chain, an RX buffer too small for a header);
 *   2. a connection to host port 5000 (the test listens on uds_path_5000):
 *      ping, the host's answer, 256 KiB sent at once, then a full SHUTDOWN
 *      answered by a RST once the host has all the bytes;
 *   3. a connection to host port 5001, where nobody listens: a RST;
 *   4. "listening" on port 1234: a host REQUEST to another port gets a
 *      RST; on 1234 every byte is echoed uppercased, within a credit of
 *      GUEST_BUF bytes that the echoes give back, until the host shuts
 *      down; the guest then resets the connection. */
#include "virtio_guest.h"

#define RXBUF 0x600000UL
#define TXBUF 0x610000UL
#define BULKBUF 0x700000UL
#define BULK 0x40000U /* 256 KiB: the credit vessel gives */
#define CHUNK 0x10000U
#define HDR 44
#define RX_ROOM 256
#define GUEST_CID_EXPECTED 3
#define GUEST_BUF 64 /* the guest's receive buffer: small, to make credit matter */

enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

static struct vdev *vs;
static u64 cid;
/* The current connection: bytes taken from it (its fwd_cnt) and sent. */
static u32 taken, sent;

/* Offers the RX buffer, alternately as one descriptor and as a header
 * and a payload buffer (drivers do both). */
static int header_only_once; /* the next offer is a bare header buffer */
static void rx_post(void) {
    static int split;
    struct buf one = {RXBUF, header_only_once ? HDR : HDR + RX_ROOM, 1};
    if (header_only_once) {
        header_only_once = 0;
        vq_submit(vs, 0, &one, 1);
        return;
    }
    struct buf two[2] = {{RXBUF, HDR, 1}, {RXBUF + HDR, RX_ROOM, 1}};
    if (split)
        vq_submit(vs, 0, two, 2);
    else
        vq_submit(vs, 0, &one, 1);
    split = !split;
}

/* The next packet into *h and data (RX_ROOM bytes); the RX buffer is
 * offered again. Returns the used length, or -1 if none came. */
static long rx(struct vsock_hdr *h, u8 *data, u32 spins) {
    long n = vq_wait_spins(vs, 0, spins);
    if (n < 0) {
        memset(h, 0, sizeof(*h));
        return -1;
    }
    memcpy(h, (void *)RXBUF, HDR);
    if (data) memcpy(data, (void *)(RXBUF + HDR), RX_ROOM);
    rx_post();
    return n;
}

static void fill(struct vsock_hdr *h, u32 src_port, u32 dst_port, u16 op, u32 flags, u32 len) {
    h->src_cid = cid;
    h->dst_cid = 2;
    h->src_port = src_port;
    h->dst_port = dst_port;
    h->len = len;
    h->type = 1;
    h->op = op;
    h->flags = flags;
    h->buf_alloc = GUEST_BUF;
    h->fwd_cnt = taken;
}

/* Sends one packet, its header and payload in separate descriptors when
 * there is a payload. */
static void tx(u32 src_port, u32 dst_port, u16 op, u32 flags, const u8 *data, u32 len) {
    fill((struct vsock_hdr *)TXBUF, src_port, dst_port, op, flags, len);
    memcpy((void *)(TXBUF + HDR), data, len);
    struct buf b[2] = {{TXBUF, HDR, 0}, {TXBUF + HDR, len, 0}};
    vq_submit(vs, 1, b, len ? 2 : 1);
    vq_wait(vs, 1);
    if (op == RW) sent += len;
}

static void put_packet(const char *what, const struct vsock_hdr *h) {
    puts(what);
    puts(" op ");
    putdec(h->op);
    puts(" ports ");
    putdec(h->src_port);
    puts("->");
    putdec(h->dst_port);
    putc('\n');
}

/* 1. Nonsense in the queues: the device gives the chains back and goes on. */
static void hostile(void) {
    struct vsock_hdr h;
    struct vq *q = &vs->q[1];
    /* A payload buffer far outside guest memory. */
    fill((struct vsock_hdr *)TXBUF, 70, 80, REQUEST, 0, 0);
    q->desc[0].addr = TXBUF; q->desc[0].len = HDR; q->desc[0].flags = VIRTQ_DESC_F_NEXT; q->desc[0].next = 1;
    q->desc[1].addr = 0x7fff00000000UL; q->desc[1].len = 64; q->desc[1].flags = 0; q->desc[1].next = 0;
    vq_publish(vs, 1, 0);
    puts("vsock: outside chain used len ");
    putdec((u64)vq_wait(vs, 1));
    putc('\n');
    /* A descriptor chaining to itself. */
    q->desc[0].flags = VIRTQ_DESC_F_NEXT; q->desc[0].next = 0;
    vq_publish(vs, 1, 0);
    puts("vsock: loop chain used len ");
    putdec((u64)vq_wait(vs, 1));
    putc('\n');
    /* A header shorter than 44 bytes: dropped without an answer. */
    struct buf shortb = {TXBUF, 20, 0};
    vq_submit(vs, 1, &shortb, 1);
    vq_wait(vs, 1);

    /* A spoofed source CID: refused with a RST, but first the device
     * meets an RX buffer outside memory and one too small for a header,
     * and gives both back empty. */
    struct buf bad_rx = {0x7fff00000000UL, HDR + RX_ROOM, 1};
    vq_submit(vs, 0, &bad_rx, 1);
    fill((struct vsock_hdr *)TXBUF, 71, 81, REQUEST, 0, 0);
    ((struct vsock_hdr *)TXBUF)->src_cid = 7;
    struct buf req = {TXBUF, HDR, 0};
    vq_submit(vs, 1, &req, 1);
    vq_wait(vs, 1);
    puts("vsock: outside rx buffer used len ");
    putdec((u64)vq_wait(vs, 0));
    putc('\n');
    struct buf tiny_rx = {RXBUF, 10, 1};
    vq_submit(vs, 0, &tiny_rx, 1);
    puts("vsock: tiny rx buffer used len ");
    putdec((u64)vq_wait(vs, 0));
    putc('\n');
    rx_post();
    rx(&h, 0, 2000000);
    put_packet("vsock: spoofed cid answered", &h);

    /* A payload length past what the chain holds: a RST too. */
    fill((struct vsock_hdr *)TXBUF, 72, 82, RW, 0, 0xffffffffU);
    vq_submit(vs, 1, &req, 1);
    vq_wait(vs, 1);
    rx(&h, 0, 2000000);
    put_packet("vsock: huge length answered", &h);
}

/* 2. and 3. The guest connects to the host. */
static void connect_to_host(void) {
    struct vsock_hdr h;
    u8 data[RX_ROOM];
    taken = sent = 0;
    tx(40000, 5000, REQUEST, 0, 0, 0);
    header_only_once = 1;
    rx(&h, data, 2000000);
    put_packet("vsock: connect 5000 answered", &h);
    if (h.op != RESPONSE) return;
    static const char ping[] = "ping from guest\n";
    tx(40000, 5000, RW, 0, (const u8 *)ping, sizeof(ping) - 1);
    /* The host's answer does not fit a bare header buffer: the device
     * gives it back empty (it is no end of the stream). */
    puts("vsock: header-only rx buffer used len ");
    putdec((u64)rx(&h, data, 2000000));
    putc('\n');
    char reply[64];
    u32 got = 0;
    while (got == 0 || reply[got - 1] != '\n') {
        if (rx(&h, data, 2000000) < 0 || h.op != RW || h.dst_port != 40000) {
            put_packet("vsock: unexpected", &h);
            return;
        }
        for (u32 i = 0; i < h.len && got < sizeof(reply) - 1; i++) reply[got++] = (char)data[i];
        taken += h.len;
    }
    reply[got] = 0;
    puts("vsock: host says ");
    puts(reply);

    /* BULK bytes, the host's whole credit, in 64 KiB packets of zeroes
     * marked A, B, C, D at their starts, then a full SHUTDOWN at once:
     * the host reads only afterwards, so the device still holds what its
     * socket did not take, and must deliver it before the RST. */
    u8 *bulk = (u8 *)BULKBUF;
    for (u32 i = 0; i < BULK / CHUNK; i++) bulk[i * CHUNK] = (u8)('A' + i);
    bulk[BULK - 1] = '\n';
    for (u32 i = 0; i < BULK / CHUNK; i++) {
        fill((struct vsock_hdr *)TXBUF, 40000, 5000, RW, 0, CHUNK);
        struct buf b[2] = {{TXBUF, HDR, 0}, {BULKBUF + i * CHUNK, CHUNK, 0}};
        vq_submit(vs, 1, b, 2);
        vq_wait(vs, 1);
        sent += CHUNK;
    }
    tx(40000, 5000, SHUTDOWN, 3, 0, 0);
    puts("vsock: sent ");
    putdec(sent);
    puts(" bytes and shut down\n");
    do rx(&h, data, 2000000); while (h.op == CREDIT_UPDATE);
    put_packet("vsock: shutdown answered", &h);
    puts("vsock: host forwarded ");
    putdec(h.fwd_cnt);
    putc('\n');

    tx(40001, 5001, REQUEST, 0, 0, 0);
    rx(&h, data, 2000000);
    put_packet("vsock: connect 5001 answered", &h);
}

/* 4. The host connects to the guest. */
static void serve_host(void) {
    struct vsock_hdr h;
    u8 data[RX_ROOM];
    u32 host_port = 0;
    puts("vsock: listening on 1234\n");
    for (;;) {
        /* The host test takes its time: a longer wait. */
        if (rx(&h, data, 20000000) < 0) {
            puts("vsock: nothing came\n");
            return;
        }
        if (h.op == REQUEST && h.dst_port != 1234) {
            put_packet("vsock: refusing", &h);
            tx(h.dst_port, h.src_port, RST, 0, 0, 0);
        } else if (h.op == REQUEST) {
            put_packet("vsock: accepting", &h);
            host_port = h.src_port;
            taken = sent = 0;
            tx(1234, host_port, RESPONSE, 0, 0, 0);
        } else if (h.op == RW && h.src_port == host_port) {
            if (h.len > GUEST_BUF) puts("vsock: host overran the credit\n");
            taken += h.len;
            for (u32 i = 0; i < h.len; i++)
                if (data[i] >= 'a' && data[i] <= 'z') data[i] = (u8)(data[i] - 32);
            tx(1234, host_port, RW, 0, data, h.len);
        } else if (h.op == SHUTDOWN && h.src_port == host_port) {
            puts("vsock: host shut down, flags ");
            putdec(h.flags);
            puts(", echoed ");
            putdec(taken);
            puts(", host counted ");
            putdec(h.fwd_cnt);
            putc('\n');
            tx(1234, host_port, RST, 0, 0, 0);
            return;
        } else if (h.op != CREDIT_UPDATE) {
            put_packet("vsock: unexpected", &h);
        }
    }
}

void main(u64 zero_page) {
    struct vdev devs[4];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 4);
    vs = find_id(devs, n, 19);
    if (!vs || vdev_init(vs, 0, 3, 0x200000UL)) {
        puts("vsock: no device\n");
        return;
    }
    cid = rd32(vs->base + 0x100) | (u64)rd32(vs->base + 0x104) << 32;
    puts("vsock: cid ");
    putdec(cid);
    putc('\n');
    hostile();
    connect_to_host();
    serve_host();
    puts("done\n");
}
