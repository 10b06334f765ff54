/*
 * VPRI core: PA-BITMAP, the on-device page attribute bitmap
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "hw/vpri/core/pa-bitmap.h"

/*
 * THE FENCE RULE
 *
 * Raising a right (NP->RO, NP->RW, RO->RW) is safe at any time: a DMA
 * that saw the old entry just faulted, and its retry will see the new
 * one.  Lowering is not: a DMA may have looked up the entry just before
 * it was lowered and still be moving data.  So after lowering entries
 * (RW->RO, RW->NP, RO->NP), the host must call vpri_pab_fence() before it
 * writes, discards, swaps out or reuses the page; vpri_pab_fence() waits
 * until no DMA that began under the old attribute is still in flight.
 *
 * It works with two epochs.  The device wraps every DMA in
 * vpri_pab_dma_begin()/vpri_pab_dma_end():
 *
 *   begin:  e = epoch; inflight[e & 1]++;
 *           if (epoch != e) { inflight[e & 1]--; retry; }
 *           look up the bitmap
 *   end:    inflight[e & 1]--
 *
 * and the host, once per fence and under fence_lock:
 *
 *   e = epoch;
 *   wait for inflight[(e + 1) & 1] == 0;
 *   epoch = e + 1;
 *   wait for inflight[e & 1] == 0;
 *
 * fence_lock keeps fences from interleaving: a fence that read e and
 * stalled while two others ran would otherwise store e + 1 after e + 2
 * and move the epoch backwards.  Entry updates need no lock; lookups
 * and dma_begin/end never take one.
 *
 * Every access is seq_cst, so all of them sit in one total order S that
 * agrees with program order in each thread and with happens-before.
 * The lowering stores happen before the call to vpri_pab_fence(), so they
 * come before "epoch = e + 1" in S.  Take any DMA whose re-check
 * succeeded with value d:
 *
 * - If its re-check read the epoch from before the flip (d == e), the
 *   re-check precedes the flip in S, and its increment precedes the
 *   re-check.  So the increment precedes every load of inflight[e & 1]
 *   made by the fence after the flip.  The counter's modification
 *   order follows S and every decrement comes after its own increment,
 *   so a prefix of that order summing to 0 holds the decrement of each
 *   increment in it: the counter can only read 0 once this DMA's
 *   decrement has happened, and the fence cannot return while the DMA
 *   is in flight.
 *
 * - Otherwise the re-check read the flip or a later store, so it
 *   follows the flip in S, and so do the lookup's loads of the bitmap.
 *   Those loads read the last store before them in S, which is the
 *   lowering or something newer: the DMA sees the lowered entry.
 *
 * The epoch is a full 64-bit counter and the re-check compares all of
 * it, so a DMA that stalled across two fences (same parity) still
 * notices.  The decrement in vpri_pab_dma_end() is a release and the fence's
 * load of 0 an acquire, so the DMA's data accesses happen before
 * vpri_pab_fence() returns.
 *
 * The first wait, for the other counter to drain before the flip, is
 * not needed by the argument above: a DMA that passed its re-check
 * under epoch e - 1 was drained by the previous fence, so that counter
 * can only hold momentary increments from DMAs about to fail their
 * re-check.  It is cheap insurance that a counter is never handed to a
 * new epoch while it is still in use.
 *
 * A DMA must not hold its token while it waits for a fault to be
 * serviced: the host's fence would wait for the DMA, and the DMA for
 * the host.
 *
 * Entry updates themselves are compare-and-exchange on whole 64-bit
 * words, so a lookup sees each entry either before or after a change,
 * never half of it, and concurrent updates of other entries in the
 * same word are not lost.
 */

#define PAB_ENTRIES_PER_WORD 32
#define PAB_LO_BITS 0x5555555555555555ULL

typedef enum PabOp {
    PAB_OP_SET,
    PAB_OP_RAISE,
    PAB_OP_LOWER,
} PabOp;

struct PaBitmap {
    uint64_t npages;
    uint64_t nwords;
    _Atomic uint64_t *words;

    _Atomic uint64_t epoch;
    _Atomic uint64_t inflight[2];
    pthread_mutex_t fence_lock;

    /*
     * Kept up to date with signed deltas after each word update rather
     * than recomputed by a scan, so stats are O(1).  While updates run
     * in parallel a count may be briefly off; at rest they are exact.
     */
    _Atomic int64_t entries[PAB_NR_STATES];

    _Atomic uint64_t reserved_hits;
    _Atomic uint64_t faults;
    _Atomic uint64_t out_of_range;
    _Atomic uint64_t host_updates;
    _Atomic uint64_t word_writes;
    _Atomic uint64_t entries_raised;
    _Atomic uint64_t entries_lowered;
    _Atomic uint64_t fences;
};

/* Reserved grants nothing, exactly like not present. */
static unsigned int vpri_pab_rank(unsigned int state)
{
    static const unsigned int rank[PAB_NR_STATES] = {
        [PAB_NOT_PRESENT] = 0,
        [PAB_READ_ONLY] = 1,
        [PAB_RESERVED] = 0,
        [PAB_READ_WRITE] = 2,
    };

    return rank[state & 3];
}

/* Mask of the low bit of entries @first..@last (inclusive) of a word */
static uint64_t vpri_pab_lo_mask(unsigned int first, unsigned int last)
{
    return (PAB_LO_BITS << (2 * first)) &
           (PAB_LO_BITS >> (2 * (PAB_ENTRIES_PER_WORD - 1 - last)));
}

PaBitmap *vpri_pab_new(uint64_t npages)
{
    PaBitmap *pab;
    uint64_t i;

    if (npages == 0 || npages > PAB_MAX_PAGES) {
        return NULL;
    }
    pab = calloc(1, sizeof(*pab));
    if (!pab) {
        return NULL;
    }
    pab->npages = npages;
    pab->nwords = (npages + PAB_ENTRIES_PER_WORD - 1) / PAB_ENTRIES_PER_WORD;
    if (pab->nwords > SIZE_MAX / sizeof(*pab->words)) {
        free(pab);
        return NULL;
    }
    pab->words = malloc(pab->nwords * sizeof(*pab->words));
    if (!pab->words || pthread_mutex_init(&pab->fence_lock, NULL) != 0) {
        free(pab->words);
        free(pab);
        return NULL;
    }
    for (i = 0; i < pab->nwords; i++) {
        atomic_init(&pab->words[i], 0);
    }
    atomic_init(&pab->epoch, 0);
    atomic_init(&pab->inflight[0], 0);
    atomic_init(&pab->inflight[1], 0);
    for (i = 0; i < PAB_NR_STATES; i++) {
        atomic_init(&pab->entries[i], 0);
    }
    atomic_store(&pab->entries[PAB_NOT_PRESENT], (int64_t)npages);
    return pab;
}

void vpri_pab_free(PaBitmap *pab)
{
    if (!pab) {
        return;
    }
    pthread_mutex_destroy(&pab->fence_lock);
    free(pab->words);
    free(pab);
}

uint64_t vpri_pab_npages(const PaBitmap *pab)
{
    return pab->npages;
}

PabState vpri_pab_get(PaBitmap *pab, uint64_t pfn)
{
    uint64_t w;

    if (pfn >= pab->npages) {
        return PAB_NOT_PRESENT;
    }
    w = atomic_load(&pab->words[pfn / PAB_ENTRIES_PER_WORD]);
    return (PabState)((w >> (2 * (pfn % PAB_ENTRIES_PER_WORD))) & 3);
}

PabResult vpri_pab_lookup(PaBitmap *pab, uint64_t addr, uint64_t len,
                     PabAccess access, uint64_t *fault_page)
{
    uint64_t first_pfn, last_pfn, last, wi, w, ok, bad, pfn;
    unsigned int lo, hi, i;

    first_pfn = addr >> PAB_PAGE_SHIFT;
    if (first_pfn >= pab->npages) {
        atomic_fetch_add(&pab->out_of_range, 1);
        return PAB_OUT_OF_RANGE;
    }
    if (len == 0) {
        return PAB_OK;
    }
    last = addr + (len - 1);
    last_pfn = last >> PAB_PAGE_SHIFT;
    if (last < addr || last_pfn >= pab->npages) {
        atomic_fetch_add(&pab->out_of_range, 1);
        return PAB_OUT_OF_RANGE;
    }

    for (wi = first_pfn / PAB_ENTRIES_PER_WORD;
         wi <= last_pfn / PAB_ENTRIES_PER_WORD; wi++) {
        lo = wi == first_pfn / PAB_ENTRIES_PER_WORD ?
             first_pfn % PAB_ENTRIES_PER_WORD : 0;
        hi = wi == last_pfn / PAB_ENTRIES_PER_WORD ?
             last_pfn % PAB_ENTRIES_PER_WORD : PAB_ENTRIES_PER_WORD - 1;
        w = atomic_load(&pab->words[wi]);
        /* Bit 2i of ok says whether entry i grants the access. */
        ok = access == PAB_ACCESS_WRITE ? (w & (w >> 1)) : w;
        bad = ~ok & vpri_pab_lo_mask(lo, hi);
        if (bad) {
            i = (unsigned int)__builtin_ctzll(bad) / 2;
            pfn = wi * PAB_ENTRIES_PER_WORD + i;
            if (((w >> (2 * i)) & 3) == PAB_RESERVED) {
                atomic_fetch_add(&pab->reserved_hits, 1);
            }
            atomic_fetch_add(&pab->faults, 1);
            if (fault_page) {
                *fault_page = pfn << PAB_PAGE_SHIFT;
            }
            return PAB_FAULT;
        }
    }
    return PAB_OK;
}

static unsigned int vpri_pab_next(PabOp op, unsigned int cur, PabState target)
{
    switch (op) {
    case PAB_OP_SET:
        return target;
    case PAB_OP_RAISE:
        return vpri_pab_rank(cur) < vpri_pab_rank(target) ? (unsigned int)target : cur;
    case PAB_OP_LOWER:
        if (cur == PAB_RESERVED) {
            return PAB_NOT_PRESENT;
        }
        return vpri_pab_rank(cur) > vpri_pab_rank(target) ? (unsigned int)target : cur;
    }
    return cur;
}

static uint64_t vpri_pab_apply(uint64_t old, unsigned int first, unsigned int last,
                          PabOp op, PabState target)
{
    uint64_t w = old;
    unsigned int i, cur;

    for (i = first; i <= last; i++) {
        cur = (old >> (2 * i)) & 3;
        w &= ~(3ULL << (2 * i));
        w |= (uint64_t)vpri_pab_next(op, cur, target) << (2 * i);
    }
    return w;
}

/* Bit 2i set for each entry i of @w that is in @state */
static uint64_t vpri_pab_state_bits(uint64_t w, unsigned int state)
{
    uint64_t lo = w & PAB_LO_BITS;
    uint64_t hi = (w >> 1) & PAB_LO_BITS;

    switch (state) {
    case PAB_NOT_PRESENT:
        return ~(lo | hi) & PAB_LO_BITS;
    case PAB_READ_ONLY:
        return lo & ~hi;
    case PAB_RESERVED:
        return hi & ~lo;
    default:
        return lo & hi;
    }
}

static void vpri_pab_account(PaBitmap *pab, uint64_t old, uint64_t new)
{
    unsigned int s, i, r0, r1;
    uint64_t raised = 0, lowered = 0, diff;

    for (s = 0; s < PAB_NR_STATES; s++) {
        int64_t d = (int64_t)__builtin_popcountll(vpri_pab_state_bits(new, s)) -
                    (int64_t)__builtin_popcountll(vpri_pab_state_bits(old, s));
        if (d) {
            atomic_fetch_add(&pab->entries[s], d);
        }
    }
    diff = (old ^ new) | ((old ^ new) >> 1);
    for (i = 0; i < PAB_ENTRIES_PER_WORD; i++) {
        if (!(diff & (1ULL << (2 * i)))) {
            continue;
        }
        r0 = vpri_pab_rank((old >> (2 * i)) & 3);
        r1 = vpri_pab_rank((new >> (2 * i)) & 3);
        if (r1 > r0) {
            raised++;
        } else if (r1 < r0) {
            lowered++;
        }
    }
    if (raised) {
        atomic_fetch_add(&pab->entries_raised, raised);
    }
    if (lowered) {
        atomic_fetch_add(&pab->entries_lowered, lowered);
    }
    atomic_fetch_add(&pab->word_writes, 1);
}

static int64_t vpri_pab_update(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                          PabOp op, PabState target)
{
    uint64_t last_pfn, wi, old, new, diff;
    unsigned int lo, hi;
    int64_t changed = 0;

    if ((unsigned int)target >= PAB_NR_STATES) {
        return -EINVAL;
    }
    if (pfn >= pab->npages || npages > pab->npages - pfn) {
        return -ERANGE;
    }
    atomic_fetch_add(&pab->host_updates, 1);
    if (npages == 0) {
        return 0;
    }
    last_pfn = pfn + npages - 1;

    for (wi = pfn / PAB_ENTRIES_PER_WORD;
         wi <= last_pfn / PAB_ENTRIES_PER_WORD; wi++) {
        lo = wi == pfn / PAB_ENTRIES_PER_WORD ?
             pfn % PAB_ENTRIES_PER_WORD : 0;
        hi = wi == last_pfn / PAB_ENTRIES_PER_WORD ?
             last_pfn % PAB_ENTRIES_PER_WORD : PAB_ENTRIES_PER_WORD - 1;
        old = atomic_load(&pab->words[wi]);
        do {
            new = vpri_pab_apply(old, lo, hi, op, target);
        } while (new != old &&
                 !atomic_compare_exchange_weak(&pab->words[wi], &old, new));
        if (new != old) {
            vpri_pab_account(pab, old, new);
            diff = (old ^ new) | ((old ^ new) >> 1);
            changed += __builtin_popcountll(diff & PAB_LO_BITS);
        }
    }
    return changed;
}

int64_t vpri_pab_set_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                      PabState state)
{
    return vpri_pab_update(pab, pfn, npages, PAB_OP_SET, state);
}

int64_t vpri_pab_raise_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                        PabState state)
{
    if (state != PAB_READ_ONLY && state != PAB_READ_WRITE) {
        return -EINVAL;
    }
    return vpri_pab_update(pab, pfn, npages, PAB_OP_RAISE, state);
}

int64_t vpri_pab_lower_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                        PabState state)
{
    if (state == PAB_RESERVED) {
        return -EINVAL;
    }
    return vpri_pab_update(pab, pfn, npages, PAB_OP_LOWER, state);
}

PabDmaToken vpri_pab_dma_begin(PaBitmap *pab, uint64_t addr, uint64_t len,
                          PabAccess access, PabResult *result,
                          uint64_t *fault_page)
{
    PabDmaToken token;
    uint64_t e;

    for (;;) {
        e = atomic_load(&pab->epoch);
        atomic_fetch_add(&pab->inflight[e & 1], 1);
        if (atomic_load(&pab->epoch) == e) {
            break;
        }
        atomic_fetch_sub(&pab->inflight[e & 1], 1);
    }
    token.slot = (unsigned int)(e & 1);
    *result = vpri_pab_lookup(pab, addr, len, access, fault_page);
    return token;
}

void vpri_pab_dma_end(PaBitmap *pab, PabDmaToken token)
{
    atomic_fetch_sub(&pab->inflight[token.slot & 1], 1);
}

/*
 * DMAs are short, so yield first; back off to sleeping in case the
 * DMA thread is descheduled, without burning the host's CPU.
 */
static void vpri_pab_wait_idle(_Atomic uint64_t *counter)
{
    unsigned int spins = 0;
    long delay_ns = 1000;
    struct timespec ts;

    while (atomic_load(counter) != 0) {
        if (spins < 256) {
            spins++;
            sched_yield();
            continue;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = delay_ns;
        nanosleep(&ts, NULL);
        if (delay_ns < 1000000) {
            delay_ns *= 2;
        }
    }
}

void vpri_pab_fence(PaBitmap *pab)
{
    uint64_t e;

    pthread_mutex_lock(&pab->fence_lock);
    e = atomic_load(&pab->epoch);
    vpri_pab_wait_idle(&pab->inflight[(e + 1) & 1]);
    atomic_store(&pab->epoch, e + 1);
    vpri_pab_wait_idle(&pab->inflight[e & 1]);
    atomic_fetch_add(&pab->fences, 1);
    pthread_mutex_unlock(&pab->fence_lock);
}

void vpri_pab_get_stats(PaBitmap *pab, PabStats *stats)
{
    unsigned int s;
    int64_t n;

    stats->npages = pab->npages;
    for (s = 0; s < PAB_NR_STATES; s++) {
        n = atomic_load(&pab->entries[s]);
        stats->entries[s] = n > 0 ? (uint64_t)n : 0;
    }
    stats->reserved_hits = atomic_load(&pab->reserved_hits);
    stats->faults = atomic_load(&pab->faults);
    stats->out_of_range = atomic_load(&pab->out_of_range);
    stats->host_updates = atomic_load(&pab->host_updates);
    stats->word_writes = atomic_load(&pab->word_writes);
    stats->entries_raised = atomic_load(&pab->entries_raised);
    stats->entries_lowered = atomic_load(&pab->entries_lowered);
    stats->fences = atomic_load(&pab->fences);
    stats->dma_inflight = atomic_load(&pab->inflight[0]) +
                          atomic_load(&pab->inflight[1]);
}

void vpri_pab_count_entries(PaBitmap *pab, uint64_t entries[PAB_NR_STATES])
{
    uint64_t wi, w, valid, left;
    unsigned int s;

    for (s = 0; s < PAB_NR_STATES; s++) {
        entries[s] = 0;
    }
    for (wi = 0; wi < pab->nwords; wi++) {
        w = atomic_load(&pab->words[wi]);
        valid = PAB_LO_BITS;
        left = pab->npages - wi * PAB_ENTRIES_PER_WORD;
        if (left < PAB_ENTRIES_PER_WORD) {
            valid = vpri_pab_lo_mask(0, (unsigned int)left - 1);
        }
        for (s = 0; s < PAB_NR_STATES; s++) {
            entries[s] += __builtin_popcountll(vpri_pab_state_bits(w, s) & valid);
        }
    }
}


/* ------------------------------------------------------------------ */
/* Eviction batches: lazy invalidation of read-only entries           */

struct PabBatch {
    PaBitmap *pab;
    bool lazy;
    bool need_sync;             /* read-write entries lowered, not fenced */
    unsigned n, capacity;
    uint64_t *pending;          /* deferred pages, in arrival order */
    PabBatchStats st;
};

PabBatch *vpri_pab_batch_new(PaBitmap *pab, unsigned capacity, bool lazy)
{
    PabBatch *b = calloc(1, sizeof(*b));

    if (!b || !capacity) {
        free(b);
        return NULL;
    }
    b->pending = calloc(capacity, sizeof(*b->pending));
    if (!b->pending) {
        free(b);
        return NULL;
    }
    b->pab = pab;
    b->lazy = lazy;
    b->capacity = capacity;
    return b;
}

void vpri_pab_batch_free(PabBatch *b)
{
    if (b) {
        vpri_pab_batch_flush(b);
        free(b->pending);
        free(b);
    }
}

static void vpri_pab_batch_fence(PabBatch *b)
{
    vpri_pab_fence(b->pab);
    b->st.fences++;
}

int vpri_pab_batch_lower(PabBatch *b, uint64_t pfn)
{
    PabState st;

    if (pfn >= b->pab->npages) {
        return -ERANGE;
    }
    b->st.pages++;
    st = vpri_pab_get(b->pab, pfn);
    if (!b->lazy || st == PAB_READ_WRITE || st == PAB_RESERVED) {
        /* Writable: lowered now, fenced before anyone reads the content */
        vpri_pab_lower_range(b->pab, pfn, 1, PAB_NOT_PRESENT);
        b->st.host_updates++;
        b->st.immediate++;
        if (b->lazy) {
            b->need_sync = true;
        } else {
            vpri_pab_batch_fence(b);
        }
        return 0;
    }
    if (b->n == b->capacity) {
        vpri_pab_batch_flush(b);
    }
    b->pending[b->n++] = pfn;
    b->st.deferred++;
    return 1;
}

void vpri_pab_batch_sync(PabBatch *b)
{
    if (b->need_sync) {
        vpri_pab_batch_fence(b);
        b->need_sync = false;
    }
}

static int vpri_pab_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

void vpri_pab_batch_flush(PabBatch *b)
{
    unsigned i = 0;

    if (!b->n) {
        /* Read-write entries still need their fence before a discard. */
        vpri_pab_batch_sync(b);
        return;
    }
    qsort(b->pending, b->n, sizeof(*b->pending), vpri_pab_cmp_u64);
    while (i < b->n) {
        unsigned j = i + 1;

        while (j < b->n && b->pending[j] <= b->pending[j - 1] + 1) {
            j++;
        }
        vpri_pab_lower_range(b->pab, b->pending[i],
                        b->pending[j - 1] - b->pending[i] + 1,
                        PAB_NOT_PRESENT);
        b->st.host_updates++;
        i = j;
    }
    /* One fence covers the deferred lowerings and any read-write ones. */
    vpri_pab_batch_fence(b);
    b->need_sync = false;
    b->n = 0;
    b->st.flushes++;
}

bool vpri_pab_batch_pending(const PabBatch *b, uint64_t pfn)
{
    for (unsigned i = 0; i < b->n; i++) {
        if (b->pending[i] == pfn) {
            return true;
        }
    }
    return false;
}

int64_t vpri_pab_batch_raise(PabBatch *b, uint64_t pfn, uint64_t npages,
                        PabState state)
{
    for (unsigned i = 0; i < b->n; i++) {
        if (b->pending[i] >= pfn && b->pending[i] - pfn < npages) {
            vpri_pab_batch_flush(b);
            break;
        }
    }
    return vpri_pab_raise_range(b->pab, pfn, npages, state);
}

void vpri_pab_batch_get_stats(const PabBatch *b, PabBatchStats *st)
{
    *st = b->st;
}
