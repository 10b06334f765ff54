/*
 * Synthetic DMA page-access traces (docs/vpri-adp.rst, "Trace generators")
 *
 * Three independent streams, merged by time:
 *
 * - the guest CPU on its anonymous memory (a hot set and a cold rest);
 * - a NIC: rx buffers posted on a ring and filled in order, each read by
 *   the CPU right after the device wrote it and reposted, now and then
 *   with a fresh page of the driver's pool; tx buffers written by the CPU
 *   and read by the device; descriptor ring pages on every packet; traffic
 *   in bursts separated by quiet gaps;
 * - a block device under the guest page cache: file reads with a skewed
 *   popularity over more blocks than the cache holds; a hit is a CPU read,
 *   a miss recycles the cache's least recently used page (written back
 *   first if dirty) with a device write; some reads dirty the page; dirty
 *   pages are written back (device reads) periodically.
 *
 * Nothing here knows about pinning.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dma-gen.h"

#define NIC_DEV 0
#define BLK_DEV 1

void dma_gen_default(DmaGenParams *p)
{
    memset(p, 0, sizeof(*p));
    p->seed = 1;
    p->guest_pages = 65536;                 /* 256 MiB */
    p->duration_ns = 60ULL * 1000000000;
    p->nic = p->block = true;

    p->anon_frac = 0.55;
    p->cpu_hot_frac = 0.2;
    p->cpu_hot_prob = 0.9;
    p->cpu_interval_ns = 50000;

    p->nic_rx_ring = 512;
    p->nic_tx_ring = 256;
    p->nic_pool = 2048;
    p->nic_refill_new = 0.01;
    p->nic_pkt_interval_ns = 100000;
    p->nic_on_ns = 300000000;
    p->nic_off_ns = 1500000000;
    p->nic_tx_prob = 0.3;
    p->nic_arm = 1;

    p->cache_frac = 0.37;
    p->file_mult = 4.0;
    p->zipf_s = 0.8;
    p->blk_interval_ns = 250000;
    p->blk_write_prob = 0.2;
    p->blk_flush_ns = 5000000000ULL;
}

typedef struct ParamDesc {
    const char *name;
    size_t off;
    char type;                  /* u: uint64_t, d: double, U: unsigned */
} ParamDesc;

#define P(f, t) { #f, offsetof(DmaGenParams, f), t }
static const ParamDesc params[] = {
    P(seed, 'u'), P(guest_pages, 'u'), P(duration_ns, 'u'),
    P(anon_frac, 'd'), P(cpu_hot_frac, 'd'), P(cpu_hot_prob, 'd'),
    P(cpu_interval_ns, 'u'),
    P(nic_rx_ring, 'U'), P(nic_tx_ring, 'U'), P(nic_pool, 'U'),
    P(nic_refill_new, 'd'), P(nic_pkt_interval_ns, 'u'), P(nic_on_ns, 'u'),
    P(nic_off_ns, 'u'), P(nic_tx_prob, 'd'), P(nic_idle_pkt_interval_ns, 'u'),
    P(nic_arm, 'U'),
    P(cache_frac, 'd'), P(file_mult, 'd'), P(zipf_s, 'd'),
    P(blk_interval_ns, 'u'), P(blk_write_prob, 'd'), P(blk_flush_ns, 'u'),
};
#undef P

int dma_gen_set(DmaGenParams *p, const char *name, const char *value)
{
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        char *field = (char *)p + params[i].off, *end;

        if (strcmp(name, params[i].name)) {
            continue;
        }
        errno = 0;
        if (params[i].type == 'd') {
            double v = strtod(value, &end);

            if (*end || end == value || errno || v < 0) {
                return -EINVAL;
            }
            memcpy(field, &v, sizeof(v));
        } else {
            unsigned long long v = strtoull(value, &end, 0);

            if (*end || end == value || errno || value[0] == '-') {
                return -EINVAL;
            }
            if (params[i].type == 'U') {
                unsigned u = (unsigned)v;

                if (u != v) {
                    return -EINVAL;
                }
                memcpy(field, &u, sizeof(u));
            } else {
                uint64_t u = v;

                memcpy(field, &u, sizeof(u));
            }
        }
        return 0;
    }
    return -EINVAL;
}

void dma_gen_print(const DmaGenParams *p, FILE *f)
{
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        const char *field = (const char *)p + params[i].off;

        if (params[i].type == 'd') {
            double v;

            memcpy(&v, field, sizeof(v));
            fprintf(f, "# %s %g\n", params[i].name, v);
        } else if (params[i].type == 'U') {
            unsigned v;

            memcpy(&v, field, sizeof(v));
            fprintf(f, "# %s %u\n", params[i].name, v);
        } else {
            uint64_t v;

            memcpy(&v, field, sizeof(v));
            fprintf(f, "# %s %llu\n", params[i].name, (unsigned long long)v);
        }
    }
    fprintf(f, "# devices%s%s\n", p->nic ? " nic" : "",
            p->block ? " block" : "");
}

/* splitmix64 */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rnd01(uint64_t *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return n ? rnd(s) % n : 0;
}

static uint64_t rnd_exp(uint64_t *s, uint64_t mean)
{
    return (uint64_t)(-log(1.0 - rnd01(s)) * (double)mean) + 1;
}

/* A stream whose times never go backwards. */
typedef struct Stream {
    DmaTrace t;
    uint64_t last;
    int err;
} Stream;

static void emit_rec(Stream *st, uint64_t time, uint8_t dev, uint8_t kind,
                     uint64_t page, bool write, bool armed)
{
    DmaTraceRecord r = {
        .time_ns = time < st->last ? st->last : time,
        .page = page, .dev = dev, .kind = kind, .write = write && !armed,
        .armed = armed,
    };

    st->last = r.time_ns;
    if (!st->err) {
        st->err = vpri_dma_trace_append(&st->t, &r);
    }
}

static void emit(Stream *st, uint64_t time, uint8_t dev, uint8_t kind,
                 uint64_t page, bool write)
{
    emit_rec(st, time, dev, kind, page, write, false);
}

static void gen_cpu(const DmaGenParams *p, const uint64_t *anon,
                    uint64_t nanon, uint64_t seed, Stream *st)
{
    uint64_t s = seed;
    uint64_t hot = (uint64_t)((double)nanon * p->cpu_hot_frac);

    for (uint64_t t = rnd_exp(&s, p->cpu_interval_ns); t < p->duration_ns;
         t += rnd_exp(&s, p->cpu_interval_ns)) {
        uint64_t i = rnd01(&s) < p->cpu_hot_prob && hot ?
                     rnd_below(&s, hot) : rnd_below(&s, nanon);

        emit(st, t, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU, anon[i],
             rnd01(&s) < 0.3);
    }
}

static void gen_nic(const DmaGenParams *p, const uint64_t *pool,
                    uint64_t seed, Stream *st)
{
    unsigned nrx = p->nic_rx_ring, ntx = p->nic_tx_ring;
    /* rx and tx descriptor rings: 16 bytes per descriptor */
    unsigned rxd_pages = (nrx * 16 + 4095) / 4096;
    unsigned txd_pages = (ntx * 16 + 4095) / 4096;
    uint64_t npool = p->nic_pool - rxd_pages - txd_pages;
    const uint64_t *bufs = pool + rxd_pages + txd_pages;
    uint64_t *rx = calloc(nrx, sizeof(*rx));
    uint64_t s = seed;
    unsigned ri = 0, ti = 0;
    uint64_t t = 0;

    if (!rx) {
        st->err = -ENOMEM;
        return;
    }
    /* rx buffers from the bottom of the pool, tx from the next pages */
    for (unsigned i = 0; i < nrx; i++) {
        rx[i] = bufs[i % npool];
        if (p->nic_arm) {
            emit_rec(st, 0, NIC_DEV, DMA_TRACE_NIC, rx[i], true, true);
        }
    }
    while (t < p->duration_ns) {
        uint64_t end = t + rnd_exp(&s, p->nic_on_ns);
        bool burst = true;

        for (;;) {
            if (t >= end) {
                if (!burst) {
                    break;
                }
                /* the gap: silent, or background traffic */
                burst = false;
                end = t + rnd_exp(&s, p->nic_off_ns);
                if (!p->nic_idle_pkt_interval_ns) {
                    t = end;
                    break;
                }
                t += rnd_exp(&s, p->nic_idle_pkt_interval_ns);
                continue;
            }
            if (t >= p->duration_ns) {
                break;
            }
            emit(st, t, NIC_DEV, DMA_TRACE_NIC, pool[(ri * 16) / 4096],
                 false);
            emit(st, t + 200, NIC_DEV, DMA_TRACE_NIC, rx[ri], true);
            emit(st, t + 400, NIC_DEV, DMA_TRACE_NIC,
                 pool[(ri * 16) / 4096], true);
            /* the driver copies the packet out, then reposts the buffer */
            emit(st, t + 5000, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU, rx[ri],
                 false);
            if (rnd01(&s) < p->nic_refill_new) {
                rx[ri] = bufs[rnd_below(&s, npool)];
            }
            if (p->nic_arm) {
                emit_rec(st, t + 5000, NIC_DEV, DMA_TRACE_NIC, rx[ri], true,
                         true);
            }
            ri = (ri + 1) % nrx;
            if (rnd01(&s) < p->nic_tx_prob) {
                uint64_t page = bufs[nrx + ti < npool ? nrx + ti : ti];

                emit(st, t + 6000, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU, page,
                     true);
                emit(st, t + 7000, NIC_DEV, DMA_TRACE_NIC,
                     pool[rxd_pages + (ti * 16) / 4096], false);
                emit(st, t + 7200, NIC_DEV, DMA_TRACE_NIC, page, false);
                ti = (ti + 1) % ntx;
            }
            t += rnd_exp(&s, burst ? p->nic_pkt_interval_ns :
                             p->nic_idle_pkt_interval_ns);
        }
    }
    free(rx);
}

typedef struct Cache {
    uint64_t n;
    int64_t *block_slot;        /* file block -> slot, -1 */
    int64_t *slot_block;        /* slot -> file block, -1 */
    uint64_t *prev, *next;      /* LRU list of slots; n is the head */
    uint8_t *dirty;
} Cache;

static void lru_unlink(Cache *c, uint64_t i)
{
    c->next[c->prev[i]] = c->next[i];
    c->prev[c->next[i]] = c->prev[i];
}

static void lru_push_front(Cache *c, uint64_t i)
{
    uint64_t head = c->n;

    c->next[i] = c->next[head];
    c->prev[i] = head;
    c->prev[c->next[head]] = i;
    c->next[head] = i;
}

static void gen_block(const DmaGenParams *p, const uint64_t *cache_pages,
                      uint64_t ncache, uint64_t seed, Stream *st)
{
    uint64_t nblocks = (uint64_t)((double)ncache * p->file_mult);
    double *cdf = malloc(nblocks * sizeof(*cdf));
    Cache c = { .n = ncache };
    uint64_t s = seed, next_flush = p->blk_flush_ns;
    uint64_t used = 0;
    double sum = 0;

    c.block_slot = malloc(nblocks * sizeof(int64_t));
    c.slot_block = malloc(ncache * sizeof(int64_t));
    c.prev = malloc((ncache + 1) * sizeof(uint64_t));
    c.next = malloc((ncache + 1) * sizeof(uint64_t));
    c.dirty = calloc(ncache, 1);
    if (!cdf || !c.block_slot || !c.slot_block || !c.prev || !c.next ||
        !c.dirty || !ncache || !nblocks) {
        st->err = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < nblocks; i++) {
        sum += 1.0 / pow((double)(i + 1), p->zipf_s);
        cdf[i] = sum;
        c.block_slot[i] = -1;
    }
    c.prev[ncache] = c.next[ncache] = ncache;

    for (uint64_t t = rnd_exp(&s, p->blk_interval_ns); t < p->duration_ns;
         t += rnd_exp(&s, p->blk_interval_ns)) {
        double u = rnd01(&s) * sum;
        uint64_t lo = 0, hi = nblocks - 1, slot;
        bool write = rnd01(&s) < p->blk_write_prob;

        if (t >= next_flush) {
            for (uint64_t i = 0; i < used; i++) {
                if (c.dirty[i]) {
                    emit(st, next_flush, BLK_DEV, DMA_TRACE_BLOCK,
                         cache_pages[i], false);
                    c.dirty[i] = 0;
                }
            }
            next_flush += p->blk_flush_ns;
        }
        while (lo < hi) {
            uint64_t mid = (lo + hi) / 2;

            if (cdf[mid] < u) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (c.block_slot[lo] >= 0) {
            slot = (uint64_t)c.block_slot[lo];
            lru_unlink(&c, slot);
        } else {
            if (used < ncache) {
                slot = used++;
            } else {
                slot = c.prev[ncache];          /* the LRU tail */
                lru_unlink(&c, slot);
                if (c.dirty[slot]) {
                    emit(st, t, BLK_DEV, DMA_TRACE_BLOCK, cache_pages[slot],
                         false);
                    c.dirty[slot] = 0;
                }
                c.block_slot[c.slot_block[slot]] = -1;
            }
            c.block_slot[lo] = (int64_t)slot;
            c.slot_block[slot] = (int64_t)lo;
            emit(st, t, BLK_DEV, DMA_TRACE_BLOCK, cache_pages[slot], true);
        }
        lru_push_front(&c, slot);
        emit(st, t + 2000, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU,
             cache_pages[slot], write);
        if (write) {
            c.dirty[slot] = 1;
        }
    }
out:
    free(cdf);
    free(c.block_slot);
    free(c.slot_block);
    free(c.prev);
    free(c.next);
    free(c.dirty);
}

static int merge(Stream *in, unsigned n, DmaTrace *out)
{
    size_t pos[3] = { 0 };

    for (;;) {
        int best = -1;

        for (unsigned i = 0; i < n; i++) {
            if (pos[i] < in[i].t.n &&
                (best < 0 || in[i].t.recs[pos[i]].time_ns <
                             in[best].t.recs[pos[best]].time_ns)) {
                best = (int)i;
            }
        }
        if (best < 0) {
            return 0;
        }
        if (vpri_dma_trace_append(out, &in[best].t.recs[pos[best]++])) {
            return -ENOMEM;
        }
    }
}

int dma_gen_mixed(const DmaGenParams *p, DmaTrace *t)
{
    uint64_t g = p->guest_pages;
    uint64_t nanon = (uint64_t)((double)g * p->anon_frac);
    uint64_t ncache = p->block ? (uint64_t)((double)g * p->cache_frac) : 0;
    uint64_t nnic = p->nic ? p->nic_pool : 0;
    uint64_t *perm;
    uint64_t s = p->seed;
    Stream st[3];
    int r;

    memset(t, 0, sizeof(*t));
    memset(st, 0, sizeof(st));
    if (!g || !nanon || nanon + ncache + nnic > g ||
        (p->nic && (p->nic_pool < p->nic_rx_ring + p->nic_tx_ring + 64 ||
                    !p->nic_rx_ring || !p->nic_tx_ring))) {
        return -EINVAL;
    }
    perm = malloc(g * sizeof(*perm));
    if (!perm) {
        return -ENOMEM;
    }
    /* Regions at random guest pages: no address order to exploit. */
    for (uint64_t i = 0; i < g; i++) {
        perm[i] = i;
    }
    for (uint64_t i = g - 1; i > 0; i--) {
        uint64_t j = rnd_below(&s, i + 1), x = perm[i];

        perm[i] = perm[j];
        perm[j] = x;
    }
    t->hdr.guest_pages = g;
    if (p->nic) {
        DmaTraceDevice *d = &t->hdr.devs[t->hdr.ndevs++];

        d->id = NIC_DEV;
        d->kind = DMA_TRACE_NIC;
        strcpy(d->name, "gen-nic");
    }
    if (p->block) {
        DmaTraceDevice *d = &t->hdr.devs[t->hdr.ndevs++];

        d->id = BLK_DEV;
        d->kind = DMA_TRACE_BLOCK;
        strcpy(d->name, "gen-block");
    }
    gen_cpu(p, perm, nanon, rnd(&s), &st[0]);
    if (p->nic) {
        gen_nic(p, perm + nanon, rnd(&s), &st[1]);
    }
    if (p->block) {
        gen_block(p, perm + nanon + nnic, ncache, rnd(&s), &st[2]);
    }
    r = st[0].err ? st[0].err : st[1].err ? st[1].err : st[2].err;
    if (!r) {
        r = merge(st, 3, t);
    }
    for (unsigned i = 0; i < 3; i++) {
        vpri_dma_trace_clear(&st[i].t);
    }
    free(perm);
    if (r) {
        vpri_dma_trace_clear(t);
    }
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int vpri_dma_trace_stats(const DmaTrace *t, DmaTraceKind kind, DmaTraceStats *st)
{
    uint64_t g = t->hdr.guest_pages;
    uint32_t *count = calloc(g, sizeof(*count));
    uint64_t *last = calloc(g, sizeof(*last));
    uint64_t *last_t = calloc(g, sizeof(*last_t));
    uint64_t *dist = malloc((t->n + 1) * sizeof(*dist));
    uint64_t *dt = malloc((t->n + 1) * sizeof(*dt));
    uint64_t nd = 0, gt2 = 0;
    int r = 0;

    memset(st, 0, sizeof(*st));
    if (!count || !last || !last_t || !dist || !dt) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < t->n; i++) {
        const DmaTraceRecord *rec = &t->recs[i];

        if (rec->kind != kind || rec->armed) {
            continue;       /* an armed page is not an access */
        }
        st->accesses++;
        if (count[rec->page]) {
            dist[nd] = st->accesses - last[rec->page] - 1;
            dt[nd++] = rec->time_ns - last_t[rec->page];
        } else {
            st->footprint++;
        }
        if (count[rec->page] < UINT32_MAX) {
            count[rec->page]++;
        }
        last[rec->page] = st->accesses;
        last_t[rec->page] = rec->time_ns;
    }
    for (uint64_t p = 0; p < g; p++) {
        gt2 += count[p] > 2;
    }
    st->visited_gt2 = st->footprint ? (double)gt2 / (double)st->footprint : 0;
    if (nd) {
        qsort(dist, nd, sizeof(*dist), cmp_u64);
        qsort(dt, nd, sizeof(*dt), cmp_u64);
        st->reuse_median = dist[nd / 2];
        st->reuse_time_median_ns = dt[nd / 2];
    }
out:
    free(count);
    free(last);
    free(last_t);
    free(dist);
    free(dt);
    return r;
}
