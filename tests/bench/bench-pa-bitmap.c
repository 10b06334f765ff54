/*
 * Micro-benchmark of the VPRI PA-BITMAP core: lookup and host-update cost
 *
 * Links the same hw/vpri/core/pa-bitmap.c the emulator uses.  Two methods:
 *
 * - Individual ops: each op is bracketed by clock_gettime(CLOCK_MONOTONIC)
 *   and the median cost of an empty bracket (measured first, the "timer
 *   overhead") is subtracted from every sample, clamping at 0.  This gives
 *   a distribution (median, p99, p99.9) comparable to the talk's hardware
 *   figures, with a resolution of a few ns on a TSC clocksource.
 * - Batches: BATCH ops in a loop between two clock reads, divided by
 *   BATCH; repeated, and the median of the batch means is reported.  No
 *   timer overhead to subtract; it is a cross-check of the median.
 *
 * Addresses are pseudo-random pages of a bitmap covering 4.5 GiB (the
 * DMA space vpri-host gives a 512 MiB guest: 4 GiB + RAM), drawn from a
 * precomputed table so the generator is not timed.
 *
 *   bench-pa-bitmap [--samples N] [--json FILE]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/vpri/core/pa-bitmap.h"

/* 4 GiB + 512 MiB of DMA space */
#define NPAGES          ((uint64_t)(4608) << (20 - PAB_PAGE_SHIFT))
#define NIDX            (1u << 16)
#define BATCH           1024
#define DEFAULT_SAMPLES 200000

/* The SOSP'24 talk's on-device figures, for the table */
#define TALK_LOOKUP_P50     69
#define TALK_LOOKUP_P99     92
#define TALK_UPDATE_P50     1742
#define TALK_UPDATE_P99     2341

static uint64_t page_idx[NIDX];
static volatile uint64_t sink;
static uint64_t timer_overhead;

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);

    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
}

static void fill_indices(uint64_t npages, uint64_t align)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;

    for (unsigned int i = 0; i < NIDX; i++) {
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        page_idx[i] = (x % (npages / align)) * align;
    }
}

typedef struct Row {
    const char *key;
    const char *what;
    uint64_t samples;
    uint64_t p50, p99, p999, max;
    double batch_mean;      /* < 0: not measured */
    int talk;               /* 0 none, 1 lookup, 2 host update */
} Row;

#define MAX_ROWS 32
static Row rows[MAX_ROWS];
static int nrows;

static Row *row_new(const char *key, const char *what, int talk)
{
    Row *r = &rows[nrows++];

    memset(r, 0, sizeof(*r));
    r->key = key;
    r->what = what;
    r->talk = talk;
    r->batch_mean = -1;
    return r;
}

static void row_summarize(Row *r, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    r->samples = n;
    r->p50 = pct(v, n, 50);
    r->p99 = pct(v, n, 99);
    r->p999 = pct(v, n, 99.9);
    r->max = v[n - 1];
}

static uint64_t sub_overhead(uint64_t d)
{
    return d > timer_overhead ? d - timer_overhead : 0;
}

static void measure_timer(size_t n, uint64_t *v)
{
    Row *r = row_new("timer", "clock_gettime pair (subtracted below)", 0);

    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        uint64_t t1 = now_ns();

        v[i] = t1 - t0;
    }
    row_summarize(r, v, n);
    timer_overhead = r->p50;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                            */

static PaBitmap *new_bitmap(PabState state)
{
    PaBitmap *pab = vpri_pab_new(NPAGES);

    if (!pab || vpri_pab_set_range(pab, 0, NPAGES, state) < 0) {
        fprintf(stderr, "bench-pa-bitmap: cannot create the bitmap\n");
        exit(1);
    }
    return pab;
}

static void bench_lookup(PaBitmap *pab, const char *key, const char *what,
                         uint64_t len, PabAccess access, PabResult want,
                         size_t n, uint64_t *v)
{
    Row *r = row_new(key, what, 1);
    uint64_t fp = 0, acc = 0, batches = n / BATCH;
    uint64_t *bm;

    fill_indices(NPAGES - (len >> PAB_PAGE_SHIFT), 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t addr = page_idx[i % NIDX] << PAB_PAGE_SHIFT;
        uint64_t t0 = now_ns();
        PabResult res = vpri_pab_lookup(pab, addr, len, access, &fp);
        uint64_t t1 = now_ns();

        if (res != want) {
            fprintf(stderr, "bench-pa-bitmap: %s: unexpected result %d\n",
                    key, res);
            exit(1);
        }
        acc += res + fp;
        v[i] = sub_overhead(t1 - t0);
    }
    row_summarize(r, v, n);

    bm = v;
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t t0 = now_ns();

        for (unsigned int k = 0; k < BATCH; k++) {
            uint64_t addr = page_idx[(b * BATCH + k) % NIDX] << PAB_PAGE_SHIFT;

            acc += vpri_pab_lookup(pab, addr, len, access, &fp);
        }
        bm[b] = now_ns() - t0;
    }
    qsort(bm, batches, sizeof(*bm), cmp_u64);
    r->batch_mean = (double)pct(bm, batches, 50) / BATCH;
    sink += acc;
}

static void bench_dma_pair(PaBitmap *pab, size_t n, uint64_t *v)
{
    Row *r = row_new("dma_begin_end_4k",
                     "vpri_pab_dma_begin+vpri_pab_dma_end, 4 KiB read (fence-safe "
                     "lookup)", 1);
    uint64_t fp = 0, acc = 0, batches = n / BATCH;
    PabResult res;

    fill_indices(NPAGES - 1, 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t addr = page_idx[i % NIDX] << PAB_PAGE_SHIFT;
        uint64_t t0 = now_ns();
        PabDmaToken tok = vpri_pab_dma_begin(pab, addr, 4096, PAB_ACCESS_READ,
                                        &res, &fp);

        vpri_pab_dma_end(pab, tok);
        v[i] = sub_overhead(now_ns() - t0);
        acc += res;
    }
    row_summarize(r, v, n);
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t t0 = now_ns();

        for (unsigned int k = 0; k < BATCH; k++) {
            uint64_t addr = page_idx[(b * BATCH + k) % NIDX] << PAB_PAGE_SHIFT;
            PabDmaToken tok = vpri_pab_dma_begin(pab, addr, 4096, PAB_ACCESS_READ,
                                            &res, &fp);

            vpri_pab_dma_end(pab, tok);
            acc += res;
        }
        v[b] = now_ns() - t0;
    }
    qsort(v, batches, sizeof(*v), cmp_u64);
    r->batch_mean = (double)pct(v, batches, 50) / BATCH;
    sink += acc;
}

/* ------------------------------------------------------------------ */
/* Host updates                                                       */

static void check_update(int64_t r, const char *what)
{
    if (r != 1) {
        fprintf(stderr, "bench-pa-bitmap: %s changed %" PRId64
                " entries, expected 1\n", what, r);
        exit(1);
    }
}

/*
 * Single-entry raise (NP -> RW) and lower (RW -> NP) of the same random
 * page, alternately, each timed on its own.  Batch figures time a whole
 * batch of raises then a whole batch of lowers over distinct pages.
 */
static void bench_raise_lower(size_t n, uint64_t *v, uint64_t *w)
{
    PaBitmap *pab = new_bitmap(PAB_NOT_PRESENT);
    Row *rr = row_new("raise_1", "vpri_pab_raise_range, 1 entry NP->RW", 2);
    Row *rl = row_new("lower_1", "vpri_pab_lower_range, 1 entry RW->NP "
                      "(no fence)", 2);
    uint64_t batches = n / BATCH, *bl = w;

    fill_indices(NPAGES, 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t pfn = page_idx[i % NIDX];
        uint64_t t0 = now_ns();
        int64_t a = vpri_pab_raise_range(pab, pfn, 1, PAB_READ_WRITE);
        uint64_t t1 = now_ns();
        int64_t b = vpri_pab_lower_range(pab, pfn, 1, PAB_NOT_PRESENT);
        uint64_t t2 = now_ns();

        check_update(a, "raise");
        check_update(b, "lower");
        v[i] = sub_overhead(t1 - t0);
        w[i] = sub_overhead(t2 - t1);
    }
    row_summarize(rr, v, n);
    row_summarize(rl, w, n);

    /* Distinct pages within a batch: stride through the space */
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t base = page_idx[b % NIDX] % (NPAGES - BATCH * 37);
        uint64_t t0 = now_ns();

        for (unsigned int k = 0; k < BATCH; k++) {
            vpri_pab_raise_range(pab, base + k * 37, 1, PAB_READ_WRITE);
        }
        uint64_t t1 = now_ns();
        for (unsigned int k = 0; k < BATCH; k++) {
            vpri_pab_lower_range(pab, base + k * 37, 1, PAB_NOT_PRESENT);
        }
        uint64_t t2 = now_ns();
        v[b] = t1 - t0;
        bl[b] = t2 - t1;
    }
    qsort(v, batches, sizeof(*v), cmp_u64);
    qsort(bl, batches, sizeof(*bl), cmp_u64);
    rr->batch_mean = (double)pct(v, batches, 50) / BATCH;
    rl->batch_mean = (double)pct(bl, batches, 50) / BATCH;
    vpri_pab_free(pab);
}

/*
 * The host update the talk means: lower the entry and make sure no DMA
 * still uses the old one (vpri_pab_fence()), then the host may reclaim the
 * page.  The raise that re-arms the page is not timed.
 */
static void bench_lower_fence(PaBitmap *pab, Row *r, size_t n, uint64_t *v,
                              bool batch)
{
    uint64_t batches = n / BATCH;

    fill_indices(NPAGES, 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t pfn = page_idx[i % NIDX];
        int64_t a = vpri_pab_raise_range(pab, pfn, 1, PAB_READ_WRITE);
        uint64_t t0 = now_ns();
        int64_t b = vpri_pab_lower_range(pab, pfn, 1, PAB_NOT_PRESENT);

        vpri_pab_fence(pab);
        v[i] = sub_overhead(now_ns() - t0);
        /* a is 0 when the page was still read-write from the start */
        (void)a;
        check_update(b, "lower");
    }
    row_summarize(r, v, n);
    if (!batch) {
        return;
    }
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t pfn = page_idx[b % NIDX];
        uint64_t t0;

        t0 = now_ns();
        for (unsigned int k = 0; k < BATCH; k++) {
            vpri_pab_raise_range(pab, pfn, 1, PAB_READ_WRITE);
            vpri_pab_lower_range(pab, pfn, 1, PAB_NOT_PRESENT);
            vpri_pab_fence(pab);
        }
        v[b] = now_ns() - t0;
    }
    qsort(v, batches, sizeof(*v), cmp_u64);
    /* Includes the raise; the raise-only batch mean says how much */
    r->batch_mean = (double)pct(v, batches, 50) / BATCH;
}

static void bench_fence_only(PaBitmap *pab, size_t n, uint64_t *v)
{
    Row *r = row_new("fence", "vpri_pab_fence alone, no DMA in flight", 2);

    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();

        vpri_pab_fence(pab);
        v[i] = sub_overhead(now_ns() - t0);
    }
    row_summarize(r, v, n);
}

typedef struct DmaThread {
    PaBitmap *pab;
    atomic_int stop;
    atomic_ulong dmas;
} DmaThread;

/* A device queue doing back-to-back 4 KiB DMAs */
static void *dma_thread(void *opaque)
{
    DmaThread *t = opaque;
    uint64_t x = 88172645463325252ull, fp, n = 0;
    PabResult res;

    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        PabDmaToken tok = vpri_pab_dma_begin(t->pab, (x % (NPAGES - 1)) << 12,
                                        4096, PAB_ACCESS_READ, &res, &fp);
        vpri_pab_dma_end(t->pab, tok);
        n++;
    }
    atomic_store(&t->dmas, n);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Eviction batches: lazy invalidation                                */

#define EVICT_PAGES 1000
#define EVICT_REPS 11

typedef struct EvictRow {
    const char *key;
    const char *what;
    bool lazy;
    int ro_every;       /* page i is read-only if i % ro_every == 0; 0: none */
    PabBatchStats st;   /* of one run of EVICT_PAGES */
    uint64_t ns_per_page;       /* median over the repetitions */
} EvictRow;

static EvictRow evict_rows[] = {
    { "one_by_one", "lower + fence per page (read-only pages)", false, 1, { 0 }, 0 },
    { "lazy_ro", "batch of 256, all read-only", true, 1, { 0 }, 0 },
    { "lazy_mixed", "batch of 256, every other page read-only", true, 2, { 0 }, 0 },
    { "lazy_rw", "batch of 256, all read-write (never deferred)", true, 0, { 0 }, 0 },
};
#define N_EVICT_ROWS (sizeof(evict_rows) / sizeof(evict_rows[0]))

/*
 * Evict EVICT_PAGES contiguous pages the way vpri-host does (lower, sync,
 * copy, flush, discard) with a DMA thread busy on the same bitmap; the
 * copy and discard are not modelled, only the bitmap's part.
 */
static void bench_evict_batches(void)
{
    PaBitmap *pab = new_bitmap(PAB_READ_WRITE);
    DmaThread dt = { .pab = pab };
    pthread_t th;
    uint64_t t[EVICT_REPS];

    if (pthread_create(&th, NULL, dma_thread, &dt) != 0) {
        fprintf(stderr, "bench-pa-bitmap: pthread_create failed\n");
        exit(1);
    }
    for (size_t k = 0; k < N_EVICT_ROWS; k++) {
        EvictRow *er = &evict_rows[k];

        for (int rep = 0; rep < EVICT_REPS; rep++) {
            PabBatch *b = vpri_pab_batch_new(pab, 256, er->lazy);
            uint64_t t0;

            for (uint64_t i = 0; i < EVICT_PAGES; i++) {
                bool ro = er->ro_every && i % er->ro_every == 0;

                vpri_pab_set_range(pab, 4096 + i, 1,
                              ro ? PAB_READ_ONLY : PAB_READ_WRITE);
            }
            t0 = now_ns();
            for (uint64_t i = 0; i < EVICT_PAGES; i++) {
                vpri_pab_batch_lower(b, 4096 + i);
                if ((i + 1) % 256 == 0) {
                    vpri_pab_batch_sync(b);
                    vpri_pab_batch_flush(b);
                }
            }
            vpri_pab_batch_sync(b);
            vpri_pab_batch_flush(b);
            t[rep] = now_ns() - t0;
            vpri_pab_batch_get_stats(b, &er->st);
            vpri_pab_batch_free(b);
        }
        qsort(t, EVICT_REPS, sizeof(*t), cmp_u64);
        er->ns_per_page = t[EVICT_REPS / 2] / EVICT_PAGES;
    }
    atomic_store(&dt.stop, 1);
    pthread_join(th, NULL);
    vpri_pab_free(pab);

    printf("\nEviction batches, per %d evicted pages, a DMA thread busy "
           "(lazy invalidation):\n", EVICT_PAGES);
    printf("%-12s %8s %13s %9s %9s  %s\n", "mode", "fences", "host-updates",
           "deferred", "ns/page", "what");
    for (size_t k = 0; k < N_EVICT_ROWS; k++) {
        const EvictRow *er = &evict_rows[k];

        printf("%-12s %8" PRIu64 " %13" PRIu64 " %9" PRIu64 " %9" PRIu64
               "  %s\n", er->key, er->st.fences, er->st.host_updates,
               er->st.deferred, er->ns_per_page, er->what);
    }
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static const char *talk_str(const Row *r, char *buf, size_t len)
{
    if (r->talk == 1) {
        snprintf(buf, len, "%d / %d", TALK_LOOKUP_P50, TALK_LOOKUP_P99);
    } else if (r->talk == 2) {
        snprintf(buf, len, "%d / %d", TALK_UPDATE_P50, TALK_UPDATE_P99);
    } else {
        snprintf(buf, len, "-");
    }
    return buf;
}

static void print_table(void)
{
    char talk[32], bm[32];

    printf("PA-BITMAP micro-benchmark (%" PRIu64 " pages = %" PRIu64
           " MiB DMA space; ns per op)\n", NPAGES,
           (NPAGES << PAB_PAGE_SHIFT) >> 20);
    printf("timer overhead subtracted from individual samples: %" PRIu64
           " ns\n\n", timer_overhead);
    printf("%-22s %8s %7s %7s %7s %9s %10s %13s  %s\n", "op", "samples",
           "p50", "p99", "p99.9", "max", "batch-mean", "talk p50/p99",
           "what");
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];

        if (r->batch_mean >= 0) {
            snprintf(bm, sizeof(bm), "%.1f", r->batch_mean);
        } else {
            snprintf(bm, sizeof(bm), "-");
        }
        printf("%-22s %8" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
               " %9" PRIu64 " %10s %13s  %s\n", r->key, r->samples, r->p50,
               r->p99, r->p999, r->max, bm,
               talk_str(r, talk, sizeof(talk)), r->what);
    }
}

static int write_json(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "{\n  \"unit\": \"ns\",\n  \"npages\": %" PRIu64 ",\n"
            "  \"timer_overhead_ns\": %" PRIu64 ",\n"
            "  \"talk\": {\"lookup_p50\": %d, \"lookup_p99\": %d, "
            "\"update_p50\": %d, \"update_p99\": %d},\n  \"ops\": {\n",
            NPAGES, timer_overhead, TALK_LOOKUP_P50, TALK_LOOKUP_P99,
            TALK_UPDATE_P50, TALK_UPDATE_P99);
    for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];

        fprintf(f, "    \"%s\": {\"what\": \"%s\", \"samples\": %" PRIu64
                ", \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
                ", \"p999\": %" PRIu64 ", \"max\": %" PRIu64, r->key,
                r->what, r->samples, r->p50, r->p99, r->p999, r->max);
        if (r->batch_mean >= 0) {
            fprintf(f, ", \"batch_mean\": %.2f", r->batch_mean);
        }
        fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
    }
    fprintf(f, "  },\n  \"evict_per_%d_pages\": {\n", EVICT_PAGES);
    for (size_t k = 0; k < N_EVICT_ROWS; k++) {
        const EvictRow *er = &evict_rows[k];

        fprintf(f, "    \"%s\": {\"what\": \"%s\", \"fences\": %" PRIu64
                ", \"host_updates\": %" PRIu64 ", \"deferred\": %" PRIu64
                ", \"ns_per_page\": %" PRIu64 "}%s\n", er->key, er->what,
                er->st.fences, er->st.host_updates, er->st.deferred,
                er->ns_per_page, k + 1 < N_EVICT_ROWS ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    return fclose(f);
}

int main(int argc, char **argv)
{
    size_t n = DEFAULT_SAMPLES;
    const char *json = NULL;
    uint64_t *v, *w;
    PaBitmap *pab;
    DmaThread dt;
    pthread_t th;
    Row *r;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
            n = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--samples N] [--json FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 4 * BATCH) {
        n = 4 * BATCH;
    }
    v = calloc(n, sizeof(*v));
    w = calloc(n, sizeof(*w));
    if (!v || !w) {
        fprintf(stderr, "bench-pa-bitmap: out of memory\n");
        return 1;
    }

    measure_timer(n, v);

    /* Lookups on a fully read-write bitmap: every lookup passes */
    pab = new_bitmap(PAB_READ_WRITE);
    bench_lookup(pab, "lookup_4k_read", "vpri_pab_lookup, 1 page, read", 4096,
                 PAB_ACCESS_READ, PAB_OK, n, v);
    bench_lookup(pab, "lookup_4k_write", "vpri_pab_lookup, 1 page, write", 4096,
                 PAB_ACCESS_WRITE, PAB_OK, n, v);
    bench_lookup(pab, "lookup_64k", "vpri_pab_lookup, 16 pages (64 KiB), read",
                 64 * 1024, PAB_ACCESS_READ, PAB_OK, n, v);
    bench_lookup(pab, "lookup_1m", "vpri_pab_lookup, 256 pages (1 MiB), read",
                 1024 * 1024, PAB_ACCESS_READ, PAB_OK, n, v);
    bench_dma_pair(pab, n, v);
    vpri_pab_free(pab);

    /* A lookup that faults (counts the fault, reports the page) */
    pab = new_bitmap(PAB_NOT_PRESENT);
    bench_lookup(pab, "lookup_4k_fault", "vpri_pab_lookup, 1 page, not present "
                 "(fault)", 4096, PAB_ACCESS_READ, PAB_FAULT, n, v);
    vpri_pab_free(pab);

    bench_raise_lower(n, v, w);

    pab = new_bitmap(PAB_NOT_PRESENT);
    bench_fence_only(pab, n, v);
    r = row_new("lower_fence_1", "vpri_pab_lower_range 1 entry + vpri_pab_fence, "
                "no DMA in flight", 2);
    bench_lower_fence(pab, r, n, v, true);
    vpri_pab_free(pab);

    /*
     * The same with a device thread doing back-to-back 4 KiB DMAs on the
     * other core: the fence has to wait for the DMA in flight to end.
     * Fewer samples: each fence may yield the CPU.
     */
    pab = new_bitmap(PAB_READ_WRITE);
    memset(&dt, 0, sizeof(dt));
    dt.pab = pab;
    if (pthread_create(&th, NULL, dma_thread, &dt) != 0) {
        fprintf(stderr, "bench-pa-bitmap: pthread_create failed\n");
        return 1;
    }
    r = row_new("lower_fence_1_busy", "vpri_pab_lower_range 1 entry + vpri_pab_fence, "
                "a DMA thread busy", 2);
    bench_lower_fence(pab, r, n / 10, v, false);
    atomic_store(&dt.stop, 1);
    pthread_join(th, NULL);
    vpri_pab_free(pab);

    print_table();
    bench_evict_batches();
    printf("\nbatch-mean: median over batches of %d back-to-back ops of "
           "(batch time / %d); for lower_fence_1 each op also re-raises the "
           "entry.\n", BATCH, BATCH);
    printf("DMA thread did %lu DMAs during lower_fence_1_busy\n",
           (unsigned long)atomic_load(&dt.dmas));
    free(v);
    free(w);
    if (json && write_json(json) != 0) {
        return 1;
    }
    return 0;
}
