/* Drives the virtio-balloon device it finds on the command line; the host
 * test (tests/virtio_balloon.rs) reads its lines and talks to the VMM's API
 * meanwhile. The guest writes a pattern into the pages it will give up,
 * sends a hostile page list (PFNs outside memory, an odd length), then
 * inflates by `num_pages` pages from 16 MiB, reports `actual`, and checks
 * the pages read back as zero (the VMM discarded them) while a neighbour
 * kept its pattern. With statistics offered, it posts a statistics buffer
 * and posts it again each time the device gives it back (the VMM's
 * polling). On a configuration interrupt with a smaller target it
 * deflates and checks the pages are usable again; on one with a larger
 * target it ends. */
#include "virtio_guest.h"

#define F_STATS_VQ (1UL << 1)
#define F_DEFLATE_ON_OOM (1UL << 2)
#define CFG_NUM_PAGES 0x100
#define CFG_ACTUAL 0x104
#define PFNS 0x600000UL
#define HOSTILE 0x601000UL
#define STATS 0x602000UL
#define PAGES 0x1000000UL
#define MAX_PAGES 256
#define PATTERN 0x5a5a1234abcd0001UL

static void put_stat(u8 *p, u16 tag, u64 val) {
    p[0] = (u8)tag;
    p[1] = (u8)(tag >> 8);
    for (int i = 0; i < 8; i++) p[2 + i] = (u8)(val >> (8 * i));
}

/* One buffer of statistics on queue 2; the first round ends on a
 * truncated entry the device must skip. */
static void post_stats(struct vdev *d, u32 round) {
    u8 *p = (u8 *)STATS;
    put_stat(p, 0, 11);             /* swap in */
    put_stat(p + 10, 3, round);     /* minor faults: counts the polls */
    put_stat(p + 20, 4, 20UL << 20); /* free memory */
    put_stat(p + 30, 5, 32UL << 20); /* total memory */
    put_stat(p + 40, 0x7777, 5);    /* a tag the device does not know */
    p[50] = 6; p[51] = 0; p[52] = 1; /* available memory, cut short */
    struct buf b = {STATS, round == 1 ? 53 : 50, 0};
    vq_submit(d, 2, &b, 1);
}

/* Sends `n` PFNs from PFNS on queue qi and waits for them to come back. */
static long send_pages(struct vdev *d, int qi, u32 n) {
    struct buf b = {PFNS, n * 4, 0};
    vq_submit(d, qi, &b, 1);
    return vq_wait(d, qi);
}

static u64 *word(u32 page, u32 off) { return (u64 *)(PAGES + (u64)page * 4096 + off); }

static void test_balloon(struct vdev *d, u64 qmem) {
    /* The stats queue exists only when the device offers it. */
    wr32(d->base + 0x14, 0);
    int stats = (rd32(d->base + 0x10) & F_STATS_VQ) != 0;
    if (vdev_init(d, F_STATS_VQ | F_DEFLATE_ON_OOM, stats ? 3 : 2, qmem)) {
        puts("balloon: init failed\n");
        return;
    }
    puts("balloon: features");
    puts(d->features & F_STATS_VQ ? " stats" : "");
    puts(d->features & F_DEFLATE_ON_OOM ? " deflate_on_oom\n" : "\n");
    u32 target = rd32(d->base + CFG_NUM_PAGES);
    puts("balloon: target ");
    putdec(target);
    putc('\n');
    if (target > MAX_PAGES) target = MAX_PAGES;
    for (u32 i = 0; i <= target; i++) {
        *word(i, 0) = PATTERN + i;
        *word(i, 4088) = PATTERN;
    }
    u32 round = 1;
    if (stats) post_stats(d, round);

    /* Hostile: the local APIC's page, the last PFN, 4 GiB (no RAM in a
     * 32 MiB guest), and two bytes of a PFN that is not there. */
    u32 *h = (u32 *)HOSTILE;
    h[0] = 0xfee00; h[1] = 0xffffffff; h[2] = 0x100000; h[3] = (u32)(PAGES >> 12);
    struct buf hb = {HOSTILE, 14, 0};
    vq_submit(d, 0, &hb, 1);
    puts("balloon: hostile list used len ");
    putdec((u64)vq_wait(d, 0));
    putc('\n');

    u32 *pfns = (u32 *)PFNS;
    for (u32 i = 0; i < target; i++) pfns[i] = (u32)(PAGES >> 12) + i;
    long len = send_pages(d, 0, target);
    wr32(d->base + CFG_ACTUAL, target);
    u32 zero = 0;
    for (u32 i = 0; i < target; i++) zero += *word(i, 0) == 0 && *word(i, 4088) == 0;
    puts("balloon: inflated ");
    putdec(target);
    puts(" pages (used len ");
    putdec((u64)len);
    puts("), ");
    putdec(zero);
    puts(" read zero, neighbour ");
    puts(*word(target, 0) == PATTERN + target ? "kept\n" : "lost\n");

    u32 actual = target;
    for (;;) {
        u32 s = vdev_ack(d);
        if (!s) {
            /* Interrupts off until hlt: one that came since the status
             * read wakes it at once. */
            __asm__ volatile("sti; hlt; cli");
            continue;
        }
        if (stats && vq_wait_spins(d, 2, 1) >= 0) post_stats(d, ++round);
        if (!(s & 2)) continue;
        u32 t = rd32(d->base + CFG_NUM_PAGES);
        if (t > actual) {
            puts("balloon: asked for ");
            putdec(t);
            puts(" pages after ");
            putdec(round);
            puts(" stats rounds, bye\n");
            return;
        }
        if (t == actual) continue;
        /* Give back the last actual - t pages. */
        for (u32 i = t; i < actual; i++) pfns[i - t] = (u32)(PAGES >> 12) + i;
        len = send_pages(d, 1, actual - t);
        wr32(d->base + CFG_ACTUAL, t);
        u32 usable = 0;
        for (u32 i = t; i < actual; i++) {
            *word(i, 8) = PATTERN ^ i;
            usable += *word(i, 8) == (PATTERN ^ i);
        }
        puts("balloon: deflated to ");
        putdec(t);
        puts(" pages (used len ");
        putdec((u64)len);
        puts("), ");
        putdec(usable);
        puts(" usable again\n");
        actual = t;
    }
}

void main(u64 zero_page) {
    struct vdev devs[4];
    interrupts_init();
    int n = find_devices(zero_page_cmdline(zero_page), devs, 4);
    struct vdev *b = find_id(devs, n, 5);
    if (!b) {
        puts("balloon: no device\n");
        return;
    }
    test_balloon(b, 0x200000UL);
    puts("done\n");
}
