/*
 * VPRI core: log-linear latency histogram
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdatomic.h>
#include <stdlib.h>

#include "hw/vpri/core/latency-histogram.h"

/*
 * Values below LH_SUB are kept exactly.  Above that, a value whose top
 * set bit is p lands in octave (p - LH_SUB_BITS), which has LH_SUB
 * buckets of width 2^(p - LH_SUB_BITS).  The width relative to the
 * bucket's lower bound is at most 1/LH_SUB, and we report the bucket
 * middle, so the error is at most 1/(2 * LH_SUB) = 1.6%.
 */
#define LH_SUB_BITS 5
#define LH_SUB (1u << LH_SUB_BITS)
#define LH_OCTAVES (64 - LH_SUB_BITS)
#define LH_BUCKETS ((LH_OCTAVES + 1) * LH_SUB)
#define LH_BILLION 1000000000ULL

struct LatencyHistogram {
    _Atomic uint64_t count;
    _Atomic uint64_t sum;
    _Atomic uint64_t min;
    _Atomic uint64_t max;
    _Atomic uint64_t buckets[LH_BUCKETS];
};

static unsigned int vpri_lh_index(uint64_t v)
{
    unsigned int p, shift;

    if (v < LH_SUB) {
        return (unsigned int)v;
    }
    p = 63 - (unsigned int)__builtin_clzll(v);
    shift = p - LH_SUB_BITS;
    return (shift + 1) * LH_SUB + (unsigned int)((v >> shift) - LH_SUB);
}

/* The middle of the bucket, which halves the worst-case error. */
static uint64_t vpri_lh_value(unsigned int idx)
{
    unsigned int shift;
    uint64_t low;

    if (idx < LH_SUB) {
        return idx;
    }
    shift = idx / LH_SUB - 1;
    low = (uint64_t)(LH_SUB + idx % LH_SUB) << shift;
    return low + (((uint64_t)1 << shift) >> 1);
}

void vpri_latency_histogram_reset(LatencyHistogram *h)
{
    unsigned int i;

    atomic_store(&h->count, 0);
    atomic_store(&h->sum, 0);
    atomic_store(&h->min, UINT64_MAX);
    atomic_store(&h->max, 0);
    for (i = 0; i < LH_BUCKETS; i++) {
        atomic_store_explicit(&h->buckets[i], 0, memory_order_relaxed);
    }
}

LatencyHistogram *vpri_latency_histogram_new(void)
{
    LatencyHistogram *h = malloc(sizeof(*h));

    if (h) {
        vpri_latency_histogram_reset(h);
    }
    return h;
}

void vpri_latency_histogram_free(LatencyHistogram *h)
{
    free(h);
}

static void vpri_lh_update_min(LatencyHistogram *h, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(&h->min, memory_order_relaxed);

    while (v < cur &&
           !atomic_compare_exchange_weak_explicit(&h->min, &cur, v,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
        /* cur was reloaded by the failed exchange */
    }
}

static void vpri_lh_update_max(LatencyHistogram *h, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(&h->max, memory_order_relaxed);

    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(&h->max, &cur, v,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
        /* cur was reloaded by the failed exchange */
    }
}

/*
 * Statistics need no ordering with other memory, so everything here is
 * relaxed; each counter is still updated atomically, so no sample is
 * lost when several threads record at once.
 */
void vpri_latency_histogram_record(LatencyHistogram *h, uint64_t ns)
{
    atomic_fetch_add_explicit(&h->buckets[vpri_lh_index(ns)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, ns, memory_order_relaxed);
    vpri_lh_update_min(h, ns);
    vpri_lh_update_max(h, ns);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

static uint64_t vpri_lh_load(const _Atomic uint64_t *p)
{
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

uint64_t vpri_latency_histogram_percentile(const LatencyHistogram *h, double pct)
{
    uint64_t total = 0, rank, seen = 0, v, lo, hi, ppb;
    unsigned int i;

    /*
     * Sum the buckets rather than trusting h->count, which a concurrent
     * recorder may not have bumped yet; the walk below must terminate
     * inside the buckets it has counted.
     */
    for (i = 0; i < LH_BUCKETS; i++) {
        total += vpri_lh_load(&h->buckets[i]);
    }
    if (total == 0) {
        return 0;
    }
    if (!(pct > 0.0)) {
        pct = 0.0;
    } else if (pct > 100.0) {
        pct = 100.0;
    }
    /*
     * Nearest rank, ceil(total * pct / 100), in integers: in doubles,
     * 99.9% of 10000 comes out a hair above 9990 and ceil() picks the
     * wrong sample.  pct is first rounded to parts per billion.
     */
    ppb = (uint64_t)(pct * 1e7 + 0.5);
    rank = total / LH_BILLION * ppb +
           ((total % LH_BILLION) * ppb + LH_BILLION - 1) / LH_BILLION;
    if (rank == 0) {
        rank = 1;
    }
    if (rank >= total) {
        /* Asking for the top sample: max is known exactly */
        return vpri_lh_load(&h->max);
    }

    v = 0;
    for (i = 0; i < LH_BUCKETS; i++) {
        seen += vpri_lh_load(&h->buckets[i]);
        if (seen >= rank) {
            v = vpri_lh_value(i);
            break;
        }
    }
    lo = vpri_lh_load(&h->min);
    hi = vpri_lh_load(&h->max);
    if (v < lo) {
        v = lo;
    }
    if (v > hi) {
        v = hi;
    }
    return v;
}

void vpri_latency_histogram_summary(const LatencyHistogram *h, LatencySummary *s)
{
    s->count = vpri_lh_load(&h->count);
    s->min = s->count ? vpri_lh_load(&h->min) : 0;
    s->max = vpri_lh_load(&h->max);
    s->mean = s->count ? vpri_lh_load(&h->sum) / s->count : 0;
    s->p50 = vpri_latency_histogram_percentile(h, 50.0);
    s->p99 = vpri_latency_histogram_percentile(h, 99.0);
    s->p999 = vpri_latency_histogram_percentile(h, 99.9);
}

void vpri_latency_histogram_merge(LatencyHistogram *dst,
                             const LatencyHistogram *src)
{
    uint64_t n;
    unsigned int i;

    n = vpri_lh_load(&src->count);
    if (n == 0) {
        return;
    }
    for (i = 0; i < LH_BUCKETS; i++) {
        atomic_fetch_add_explicit(&dst->buckets[i],
                                  vpri_lh_load(&src->buckets[i]),
                                  memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&dst->sum, vpri_lh_load(&src->sum),
                              memory_order_relaxed);
    vpri_lh_update_min(dst, vpri_lh_load(&src->min));
    vpri_lh_update_max(dst, vpri_lh_load(&src->max));
    atomic_fetch_add_explicit(&dst->count, n, memory_order_relaxed);
}
