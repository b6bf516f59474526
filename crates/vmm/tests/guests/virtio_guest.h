/* A minimal virtio-mmio driver for the test guests (freestanding C, long
 * mode, one vCPU): finds devices on the kernel command line the way Linux
 * does (virtio_mmio.device=SIZE@ADDR:IRQ), negotiates virtio 1.x, sets up
 * split queues of QN entries, submits chains and polls the used ring; an
 * IDT, the I/O APIC and the local APIC deliver the devices' interrupts to
 * vector 0x40, counted in irq_count. Everything is polled with bounds:
 * CPL0 code runs at about a million instructions a second on some hosts. */

#pragma GCC diagnostic ignored "-Wunused-function"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define QN 8
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

volatile u32 irq_count;
void irq_entry(void);
void spurious_entry(void);

void *memset(void *d, int c, u64 n) {
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}
void *memcpy(void *d, const void *s, u64 n) {
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline u32 rd32(u64 a) { return *(volatile u32 *)a; }
static inline void wr32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }

static void putc(char c) { outb(0x3f8, (u8)c); }
static void puts(const char *s) { while (*s) putc(*s++); }
static void putdec(u64 v) {
    char b[21];
    int i = 20;
    b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts(b + i);
}
static void puthex(u64 v) {
    puts("0x");
    for (int s = 60; s >= 0; s -= 4) {
        int d = (int)((v >> s) & 15);
        if (d || s == 0 || v >> s) putc((char)(d < 10 ? '0' + d : 'a' + d - 10));
    }
}

/* --- interrupts: IDT with vector 0x40, I/O APIC pins, local APIC --- */
struct idt_entry { u16 off0, sel, attr, off1; u32 off2, zero; } __attribute__((packed));
static struct idt_entry idt[256];

static void set_gate(int v, void (*h)(void)) {
    u64 a = (u64)h;
    idt[v].off0 = (u16)a;
    idt[v].sel = 0x8; /* the VMM's boot GDT: 64-bit code */
    idt[v].attr = 0x8e00;
    idt[v].off1 = (u16)(a >> 16);
    idt[v].off2 = (u32)(a >> 32);
    idt[v].zero = 0;
}

static void ioapic_route(u32 pin, u32 vector) {
    wr32(0xfec00000, 0x10 + 2 * pin);
    wr32(0xfec00010, vector); /* fixed, physical, edge, active high, unmasked */
    wr32(0xfec00000, 0x11 + 2 * pin);
    wr32(0xfec00010, 0); /* APIC 0 */
}

static void interrupts_init(void) {
    set_gate(0x40, irq_entry);
    set_gate(0xff, spurious_entry);
    struct { u16 limit; u64 base; } __attribute__((packed)) idtr = { sizeof(idt) - 1, (u64)idt };
    __asm__ volatile("lidt %0" ::"m"(idtr));
    outb(0x21, 0xff); /* mask both PICs */
    outb(0xa1, 0xff);
    wr32(0xfee000f0, 0x1ff); /* local APIC on, spurious vector 0xff */
}

/* Waits (interrupts on) until an interrupt was counted; 0 if none came. */
static int wait_irq(u32 before) {
    for (u32 i = 0; i < 2000000; i++) {
        __asm__ volatile("sti; nop; cli");
        if (irq_count != before) return 1;
    }
    return 0;
}

/* --- virtio-mmio --- */
struct desc { u64 addr; u32 len; u16 flags, next; };
struct vq {
    u16 size, next_avail, last_used;
    volatile struct desc *desc;
    volatile u16 *avail; /* flags, idx, ring[] */
    volatile u8 *used;   /* flags, idx, {id u32, len u32}[] */
};
struct vdev { u64 base; u32 irq, id; u64 features; struct vq q[3]; };

static int parse_hex(const char **s, u64 *v) {
    const char *p = *s;
    u64 x = 0;
    int n = 0;
    if (p[0] == '0' && p[1] == 'x') p += 2;
    for (;; p++, n++) {
        char c = *p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) break;
        x = x * 16 + (u64)d;
    }
    *s = p;
    *v = x;
    return n > 0;
}

/* Fills devs from virtio_mmio.device=4K@0xADDR:IRQ entries; returns how many. */
static int find_devices(const char *cmdline, struct vdev *devs, int max) {
    static const char key[] = "virtio_mmio.device=";
    int n = 0;
    for (const char *p = cmdline; *p && n < max; p++) {
        int k = 0;
        while (key[k] && p[k] == key[k]) k++;
        if (key[k]) continue;
        p += k;
        while (*p && *p != '@') p++;
        if (!*p) break;
        p++;
        u64 base, irq = 0;
        if (!parse_hex(&p, &base) || *p != ':') continue;
        p++;
        while (*p >= '0' && *p <= '9') irq = irq * 10 + (u64)(*p++ - '0');
        devs[n].base = base;
        devs[n].irq = (u32)irq;
        devs[n].id = rd32(base + 8);
        n++;
    }
    return n;
}

static const char *zero_page_cmdline(u64 zero_page) {
    return (const char *)(u64)*(volatile u32 *)(zero_page + 0x228);
}

/* Handshake up to FEATURES_OK accepting `wanted` of what the device
 * offers (plus VERSION_1); sets nq queues at `mem`; DRIVER_OK. Returns 0
 * on success. */
static int vdev_init(struct vdev *d, u64 wanted, int nq, u64 mem) {
    u64 b = d->base;
    if (rd32(b) != 0x74726976 || rd32(b + 4) != 2) return -1;
    wr32(b + 0x70, 0);
    wr32(b + 0x70, 1);
    wr32(b + 0x70, 1 | 2);
    wr32(b + 0x14, 0);
    u64 f = rd32(b + 0x10);
    wr32(b + 0x14, 1);
    f |= (u64)rd32(b + 0x10) << 32;
    d->features = f & (wanted | (1UL << 32));
    wr32(b + 0x24, 0);
    wr32(b + 0x20, (u32)d->features);
    wr32(b + 0x24, 1);
    wr32(b + 0x20, (u32)(d->features >> 32));
    wr32(b + 0x70, 1 | 2 | 8);
    if (!(rd32(b + 0x70) & 8)) return -2;
    for (int i = 0; i < nq; i++) {
        u64 q = mem + (u64)i * 0x1000;
        memset((void *)q, 0, 0x1000);
        wr32(b + 0x30, (u32)i);
        if (rd32(b + 0x34) < QN) return -3;
        wr32(b + 0x38, QN);
        wr32(b + 0x80, (u32)q);
        wr32(b + 0x84, 0);
        wr32(b + 0x90, (u32)(q + 0x400));
        wr32(b + 0x94, 0);
        wr32(b + 0xa0, (u32)(q + 0x800));
        wr32(b + 0xa4, 0);
        wr32(b + 0x44, 1);
        d->q[i].size = QN;
        d->q[i].next_avail = 0;
        d->q[i].last_used = 0;
        d->q[i].desc = (volatile struct desc *)q;
        d->q[i].avail = (volatile u16 *)(q + 0x400);
        d->q[i].used = (volatile u8 *)(q + 0x800);
    }
    wr32(b + 0x70, 1 | 2 | 8 | 4);
    ioapic_route(d->irq, 0x40);
    return 0;
}

/* A buffer of a chain. */
struct buf { u64 addr; u32 len; int write; };

/* Makes a chain of n buffers at descriptors first..first+n-1 of queue qi,
 * publishes it and notifies the device (several chains in flight need
 * separate descriptors). */
static void vq_submit_at(struct vdev *d, int qi, int first, const struct buf *bufs, int n) {
    struct vq *q = &d->q[qi];
    for (int i = 0; i < n; i++) {
        int k = first + i;
        q->desc[k].addr = bufs[i].addr;
        q->desc[k].len = bufs[i].len;
        q->desc[k].flags = (u16)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) | (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0));
        q->desc[k].next = (u16)(k + 1);
    }
    q->avail[2 + q->next_avail % q->size] = (u16)first;
    barrier();
    q->next_avail++;
    q->avail[1] = q->next_avail;
    barrier();
    wr32(d->base + 0x50, (u32)qi);
}

/* A chain at descriptors 0..n-1 (one chain in flight per queue). */
static void vq_submit(struct vdev *d, int qi, const struct buf *bufs, int n) {
    vq_submit_at(d, qi, 0, bufs, n);
}

/* Publishes descriptor head `head` as is (for hand-made hostile chains). */
static void vq_publish(struct vdev *d, int qi, u16 head) {
    struct vq *q = &d->q[qi];
    q->avail[2 + q->next_avail % q->size] = head;
    barrier();
    q->next_avail++;
    q->avail[1] = q->next_avail;
    barrier();
    wr32(d->base + 0x50, (u32)qi);
}

/* Polls the used ring of queue qi; returns the used length, and in *head
 * the head descriptor of the used chain (for queues with several chains in
 * flight), or -1 after `spins` polls without an answer. */
static long vq_wait_head(struct vdev *d, int qi, u32 spins, u16 *head) {
    struct vq *q = &d->q[qi];
    for (u32 i = 0; i < spins; i++) {
        barrier();
        if (*(volatile u16 *)(q->used + 2) != q->last_used) {
            volatile u32 *e = (volatile u32 *)(q->used + 4 + 8 * (q->last_used % q->size));
            q->last_used++;
            *head = (u16)e[0];
            return e[1];
        }
    }
    return -1;
}

/* The same, without the head. */
static long vq_wait_spins(struct vdev *d, int qi, u32 spins) {
    u16 head;
    return vq_wait_head(d, qi, spins, &head);
}

static long vq_wait(struct vdev *d, int qi) { return vq_wait_spins(d, qi, 2000000); }

/* virtio-vsock's packet header (virtio 1.2, 5.10.6), 44 bytes. */
struct vsock_hdr {
    u64 src_cid, dst_cid;
    u32 src_port, dst_port, len;
    u16 type, op;
    u32 flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

/* Acknowledges the device's interrupt status; returns it. */
static u32 vdev_ack(struct vdev *d) {
    u32 s = rd32(d->base + 0x60);
    wr32(d->base + 0x64, s);
    return s;
}

static struct vdev *find_id(struct vdev *devs, int n, u32 id) {
    for (int i = 0; i < n; i++)
        if (devs[i].id == id) return &devs[i];
    return 0;
}
