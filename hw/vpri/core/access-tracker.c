/*
 * VPRI core: device-level DMA access tracking
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hw/vpri/core/access-tracker.h"

#define AT_PAGE_SHIFT 12
#define AT_MAX_PAGES ((uint64_t)1 << (64 - AT_PAGE_SHIFT))

struct AccessTracker {
    uint64_t npages;
    uint64_t nwords;
    _Atomic uint64_t *words;
};

AccessTracker *vpri_access_tracker_new(uint64_t npages)
{
    AccessTracker *at;
    uint64_t i;

    if (npages == 0 || npages > AT_MAX_PAGES) {
        return NULL;
    }
    at = calloc(1, sizeof(*at));
    if (!at) {
        return NULL;
    }
    at->npages = npages;
    at->nwords = (npages + 63) / 64;
    if (at->nwords > SIZE_MAX / sizeof(*at->words)) {
        free(at);
        return NULL;
    }
    at->words = malloc(at->nwords * sizeof(*at->words));
    if (!at->words) {
        free(at);
        return NULL;
    }
    for (i = 0; i < at->nwords; i++) {
        atomic_init(&at->words[i], 0);
    }
    return at;
}

void vpri_access_tracker_free(AccessTracker *at)
{
    if (at) {
        free(at->words);
        free(at);
    }
}

uint64_t vpri_access_tracker_npages(const AccessTracker *at)
{
    return at->npages;
}

/* Bits @lo..@hi (inclusive) of a word */
static uint64_t vpri_access_tracker_mask(unsigned int lo, unsigned int hi)
{
    return (~0ULL << lo) & (~0ULL >> (63 - hi));
}

int vpri_access_tracker_mark(AccessTracker *at, uint64_t addr, uint64_t len)
{
    uint64_t first, last, wi, m;
    unsigned int lo, hi;

    if (len == 0) {
        return 0;
    }
    if (addr + (len - 1) < addr) {
        return -ERANGE;
    }
    first = addr >> AT_PAGE_SHIFT;
    last = (addr + (len - 1)) >> AT_PAGE_SHIFT;
    if (last >= at->npages) {
        return -ERANGE;
    }
    for (wi = first / 64; wi <= last / 64; wi++) {
        lo = wi == first / 64 ? first % 64 : 0;
        hi = wi == last / 64 ? last % 64 : 63;
        m = vpri_access_tracker_mask(lo, hi);
        /*
         * Hot pages are marked over and over; a plain load keeps the
         * cache line shared instead of dirtying it on every DMA.
         */
        if ((atomic_load_explicit(&at->words[wi], memory_order_relaxed) & m)
            != m) {
            atomic_fetch_or(&at->words[wi], m);
        }
    }
    return 0;
}

bool vpri_access_tracker_test(AccessTracker *at, uint64_t pfn)
{
    if (pfn >= at->npages) {
        return false;
    }
    return atomic_load(&at->words[pfn / 64]) & (1ULL << (pfn % 64));
}

/*
 * The fetch_and both reads and clears, so a concurrent fetch_or lands
 * either before it (and is returned) or after it (and stays set).
 */
static int64_t vpri_access_tracker_collect_range(AccessTracker *at,
                                                 uint64_t pfn, uint64_t npages,
                                                 uint64_t *bitmap,
                                                 AccessTrackerFn *fn,
                                                 void *opaque)
{
    uint64_t last, wi, m, old, p, off;
    unsigned int lo, hi, b;
    int64_t n = 0;

    if (pfn >= at->npages || npages > at->npages - pfn) {
        return -ERANGE;
    }
    if (bitmap) {
        memset(bitmap, 0, ((npages + 63) / 64) * sizeof(*bitmap));
    }
    if (npages == 0) {
        return 0;
    }
    last = pfn + npages - 1;
    for (wi = pfn / 64; wi <= last / 64; wi++) {
        lo = wi == pfn / 64 ? pfn % 64 : 0;
        hi = wi == last / 64 ? last % 64 : 63;
        m = vpri_access_tracker_mask(lo, hi);
        if (!(atomic_load_explicit(&at->words[wi], memory_order_relaxed) &
              m)) {
            continue;
        }
        old = atomic_fetch_and(&at->words[wi], ~m) & m;
        while (old) {
            b = (unsigned int)__builtin_ctzll(old);
            old &= old - 1;
            p = wi * 64 + b;
            n++;
            if (bitmap) {
                off = p - pfn;
                bitmap[off / 64] |= 1ULL << (off % 64);
            }
            if (fn) {
                fn(p, opaque);
            }
        }
    }
    return n;
}

int64_t vpri_access_tracker_collect(AccessTracker *at, uint64_t pfn,
                               uint64_t npages, uint64_t *bitmap)
{
    return vpri_access_tracker_collect_range(at, pfn, npages, bitmap,
                                             NULL, NULL);
}

int64_t vpri_access_tracker_collect_cb(AccessTracker *at, uint64_t pfn,
                                  uint64_t npages, AccessTrackerFn *fn,
                                  void *opaque)
{
    return vpri_access_tracker_collect_range(at, pfn, npages, NULL, fn, opaque);
}
