/*
 * Concurrency tests for the VPRI PA-BITMAP: atomic entry updates and
 * the fence rule
 *
 * cmocka is not thread-safe, so worker threads only count what they
 * see; the main thread asserts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "hw/vpri/core/pa-bitmap.h"

#define PG(n) ((uint64_t)(n) << PAB_PAGE_SHIFT)

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void spin_until(atomic_int *flag)
{
    while (!atomic_load(flag)) {
        sched_yield();
    }
}

/*
 * Torn-state test.  Pages 0..255: two "owner" threads share every word,
 * one owning entries 0..15 and the other 16..31, and each keeps a shadow
 * copy of its own entries; any lost update (a read-modify-write that was
 * not atomic) shows up as a mismatch at the end.  Pages 256..511: a
 * third thread sets ranges crossing word boundaries.  Readers look up
 * everything meanwhile; no host writes the reserved pattern, so a
 * reader that sees it has seen a half-written entry.
 */

#define TORN_PAGES 512
#define TORN_ITERS 100000
#define TORN_READERS 2

typedef struct TornCtx {
    PaBitmap *pab;
    atomic_int stop;
    atomic_long torn_seen;
    atomic_long bad_results;
    atomic_long lookups;
} TornCtx;

typedef struct OwnerArg {
    TornCtx *ctx;
    unsigned int first_entry;       /* 0 or 16 */
    unsigned int seed;
    PabState shadow[256];
    long mismatches;
} OwnerArg;

static const PabState valid_states[] = {
    PAB_NOT_PRESENT, PAB_READ_ONLY, PAB_READ_WRITE,
};

static unsigned int rank_of(PabState s)
{
    return s == PAB_READ_WRITE ? 2 : s == PAB_READ_ONLY ? 1 : 0;
}

static void *owner_thread(void *opaque)
{
    OwnerArg *arg = opaque;
    PaBitmap *pab = arg->ctx->pab;
    unsigned int i, word, lo, len, op, k;
    PabState st, cur;
    uint64_t pfn;

    for (i = 0; i < TORN_ITERS; i++) {
        word = (unsigned int)rand_r(&arg->seed) % 8;
        lo = (unsigned int)rand_r(&arg->seed) % 16;
        len = 1 + (unsigned int)rand_r(&arg->seed) % (16 - lo);
        pfn = word * 32 + arg->first_entry + lo;
        op = (unsigned int)rand_r(&arg->seed) % 3;
        st = valid_states[rand_r(&arg->seed) % 3];
        if (op == 1 && st == PAB_NOT_PRESENT) {
            st = PAB_READ_ONLY;
        }
        switch (op) {
        case 0:
            vpri_pab_set_range(pab, pfn, len, st);
            break;
        case 1:
            vpri_pab_raise_range(pab, pfn, len, st);
            break;
        default:
            vpri_pab_lower_range(pab, pfn, len, st);
            break;
        }
        for (k = 0; k < len; k++) {
            cur = arg->shadow[pfn + k];
            if (op == 0 || (op == 1 && rank_of(cur) < rank_of(st)) ||
                (op == 2 && rank_of(cur) > rank_of(st))) {
                arg->shadow[pfn + k] = st;
            }
        }
    }
    for (k = 0; k < 8 * 32; k++) {
        if ((k % 32) / 16 == arg->first_entry / 16 &&
            vpri_pab_get(pab, k) != arg->shadow[k]) {
            arg->mismatches++;
        }
    }
    return NULL;
}

static void *ranger_thread(void *opaque)
{
    TornCtx *ctx = opaque;
    unsigned int seed = 99, i;
    uint64_t first, len;

    for (i = 0; i < TORN_ITERS; i++) {
        first = 256 + (uint64_t)(rand_r(&seed) % 256);
        len = 1 + (uint64_t)(rand_r(&seed) % (int)(TORN_PAGES - first));
        /* NP <-> RW flips both bits: the easiest entry to tear */
        vpri_pab_set_range(ctx->pab, first, len,
                      (i & 1) ? PAB_READ_WRITE : PAB_NOT_PRESENT);
    }
    return NULL;
}

static void *reader_thread(void *opaque)
{
    TornCtx *ctx = opaque;
    unsigned int seed = (unsigned int)(uintptr_t)&seed;
    uint64_t p, n, fault;
    PabResult r;
    long count = 0;

    while (!atomic_load_explicit(&ctx->stop, memory_order_relaxed)) {
        p = (uint64_t)(rand_r(&seed) % TORN_PAGES);
        if (vpri_pab_get(ctx->pab, p) == PAB_RESERVED) {
            atomic_fetch_add(&ctx->torn_seen, 1);
        }
        n = 1 + (uint64_t)(rand_r(&seed) % (int)(TORN_PAGES - p));
        fault = UINT64_MAX;
        r = vpri_pab_lookup(ctx->pab, PG(p), PG(n),
                       (rand_r(&seed) & 1) ? PAB_ACCESS_WRITE :
                       PAB_ACCESS_READ, &fault);
        if (r == PAB_OUT_OF_RANGE ||
            (r == PAB_FAULT &&
             (fault < PG(p) || fault >= PG(p + n) || fault % 4096))) {
            atomic_fetch_add(&ctx->bad_results, 1);
        }
        count++;
    }
    atomic_fetch_add(&ctx->lookups, count);
    return NULL;
}

static void test_no_torn_entries(void **state)
{
    TornCtx ctx = { .pab = vpri_pab_new(TORN_PAGES) };
    OwnerArg owners[2] = {
        { .ctx = &ctx, .first_entry = 0, .seed = 1 },
        { .ctx = &ctx, .first_entry = 16, .seed = 2 },
    };
    pthread_t readers[TORN_READERS], own[2], ranger;
    uint64_t scanned[PAB_NR_STATES];
    PabStats st;
    int i;

    (void)state;
    assert_non_null(ctx.pab);
    for (i = 0; i < TORN_READERS; i++) {
        assert_int_equal(pthread_create(&readers[i], NULL, reader_thread,
                                        &ctx), 0);
    }
    for (i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&own[i], NULL, owner_thread,
                                        &owners[i]), 0);
    }
    assert_int_equal(pthread_create(&ranger, NULL, ranger_thread, &ctx), 0);
    for (i = 0; i < 2; i++) {
        pthread_join(own[i], NULL);
    }
    pthread_join(ranger, NULL);
    atomic_store(&ctx.stop, 1);
    for (i = 0; i < TORN_READERS; i++) {
        pthread_join(readers[i], NULL);
    }

    assert_int_equal(owners[0].mismatches, 0);
    assert_int_equal(owners[1].mismatches, 0);
    assert_int_equal(atomic_load(&ctx.torn_seen), 0);
    assert_int_equal(atomic_load(&ctx.bad_results), 0);
    assert_true(atomic_load(&ctx.lookups) > 0);

    /* Counts kept by deltas agree with a scan once updates are over */
    vpri_pab_get_stats(ctx.pab, &st);
    vpri_pab_count_entries(ctx.pab, scanned);
    for (i = 0; i < PAB_NR_STATES; i++) {
        assert_int_equal(st.entries[i], scanned[i]);
    }
    assert_int_equal(scanned[PAB_RESERVED], 0);
    assert_int_equal(st.reserved_hits, 0);
    assert_int_equal(st.host_updates, 3 * TORN_ITERS);
    vpri_pab_free(ctx.pab);
}

/*
 * The fence rule, step by step: a DMA that began under RW holds the
 * page; the host lowers it and fences; the fence must not return before
 * the DMA ends, and afterwards new DMAs see the lowered entry.
 */

typedef struct FenceCtx {
    PaBitmap *pab;
    atomic_int dma_began;
    atomic_int dma_result;
    atomic_int release_dma;
    atomic_int dma_ended;
    atomic_int fence_done;
    atomic_int ended_when_fence_returned;
} FenceCtx;

static void *holding_dma_thread(void *opaque)
{
    FenceCtx *ctx = opaque;
    PabResult r;
    PabDmaToken t;

    t = vpri_pab_dma_begin(ctx->pab, PG(3), 512, PAB_ACCESS_WRITE, &r, NULL);
    atomic_store(&ctx->dma_result, r);
    atomic_store(&ctx->dma_began, 1);
    spin_until(&ctx->release_dma);
    atomic_store(&ctx->dma_ended, 1);
    vpri_pab_dma_end(ctx->pab, t);
    return NULL;
}

static void *fencing_host_thread(void *opaque)
{
    FenceCtx *ctx = opaque;

    vpri_pab_lower_range(ctx->pab, 3, 1, PAB_READ_ONLY);
    vpri_pab_fence(ctx->pab);
    atomic_store(&ctx->ended_when_fence_returned,
                 atomic_load(&ctx->dma_ended));
    atomic_store(&ctx->fence_done, 1);
    return NULL;
}

static void test_fence_waits_for_dma(void **state)
{
    FenceCtx ctx = { .pab = vpri_pab_new(16) };
    pthread_t dma, host;
    PabResult r;
    PabDmaToken t;
    uint64_t fault = 0;
    PabStats st;

    (void)state;
    vpri_pab_set_range(ctx.pab, 0, 16, PAB_READ_WRITE);
    assert_int_equal(pthread_create(&dma, NULL, holding_dma_thread, &ctx), 0);
    spin_until(&ctx.dma_began);
    assert_int_equal(atomic_load(&ctx.dma_result), PAB_OK);

    assert_int_equal(pthread_create(&host, NULL, fencing_host_thread, &ctx),
                     0);
    sleep_ms(200);
    /* Lowered, but the fence is stuck behind the old DMA */
    assert_int_equal(vpri_pab_get(ctx.pab, 3), PAB_READ_ONLY);
    assert_int_equal(atomic_load(&ctx.fence_done), 0);
    vpri_pab_get_stats(ctx.pab, &st);
    assert_int_equal(st.fences, 0);
    assert_int_equal(st.dma_inflight, 1);

    /* A DMA begun meanwhile sees RO and must not hold up the fence */
    t = vpri_pab_dma_begin(ctx.pab, PG(3), 8, PAB_ACCESS_WRITE, &r, &fault);
    assert_int_equal(r, PAB_FAULT);
    assert_int_equal(fault, PG(3));
    vpri_pab_dma_end(ctx.pab, t);
    sleep_ms(50);
    assert_int_equal(atomic_load(&ctx.fence_done), 0);

    atomic_store(&ctx.release_dma, 1);
    pthread_join(host, NULL);
    pthread_join(dma, NULL);
    assert_int_equal(atomic_load(&ctx.fence_done), 1);
    assert_int_equal(atomic_load(&ctx.ended_when_fence_returned), 1);

    t = vpri_pab_dma_begin(ctx.pab, PG(3), 8, PAB_ACCESS_WRITE, &r, &fault);
    assert_int_equal(r, PAB_FAULT);
    vpri_pab_dma_end(ctx.pab, t);
    t = vpri_pab_dma_begin(ctx.pab, PG(3), 8, PAB_ACCESS_READ, &r, &fault);
    assert_int_equal(r, PAB_OK);
    vpri_pab_dma_end(ctx.pab, t);
    vpri_pab_get_stats(ctx.pab, &st);
    assert_int_equal(st.fences, 1);
    assert_int_equal(st.dma_inflight, 0);
    vpri_pab_free(ctx.pab);
}

/*
 * The fence rule under load: DMA threads keep writing a page while the
 * host repeatedly grants it, revokes it, fences and "reclaims" it.  A
 * DMA write that is permitted while the page is reclaimed, or a DMA
 * still in flight when the fence returns, is a violation.
 */

#define STRESS_DMA_THREADS 2
#define STRESS_ROUNDS 2000
#define STRESS_PAGE 7

typedef struct StressCtx {
    PaBitmap *pab;
    atomic_int stop;
    atomic_int reclaimed;
    atomic_int writers;
    atomic_long violations;
    atomic_long writes_ok;
    atomic_long writes_faulted;
} StressCtx;

static void *stress_dma_thread(void *opaque)
{
    StressCtx *ctx = opaque;
    PabDmaToken t;
    PabResult r;
    int i;

    while (!atomic_load(&ctx->stop)) {
        t = vpri_pab_dma_begin(ctx->pab, PG(STRESS_PAGE) + 64, 64,
                          PAB_ACCESS_WRITE, &r, NULL);
        if (r == PAB_OK) {
            atomic_fetch_add(&ctx->writers, 1);
            /* "Transfer" for a while, checking the page is still ours */
            for (i = 0; i < 4; i++) {
                if (atomic_load(&ctx->reclaimed)) {
                    atomic_fetch_add(&ctx->violations, 1);
                }
            }
            atomic_fetch_sub(&ctx->writers, 1);
            atomic_fetch_add(&ctx->writes_ok, 1);
        } else {
            atomic_fetch_add(&ctx->writes_faulted, 1);
        }
        vpri_pab_dma_end(ctx->pab, t);
    }
    return NULL;
}

static void busy_wait(int n)
{
    static atomic_int sink;
    int i;

    for (i = 0; i < n; i++) {
        atomic_fetch_add_explicit(&sink, 1, memory_order_relaxed);
    }
}

static void test_fence_stress(void **state)
{
    StressCtx ctx = { .pab = vpri_pab_new(64) };
    pthread_t dma[STRESS_DMA_THREADS];
    PabResult r;
    PabDmaToken t;
    PabStats st;
    int i;

    (void)state;
    for (i = 0; i < STRESS_DMA_THREADS; i++) {
        assert_int_equal(pthread_create(&dma[i], NULL, stress_dma_thread,
                                        &ctx), 0);
    }
    for (i = 0; i < STRESS_ROUNDS; i++) {
        vpri_pab_raise_range(ctx.pab, STRESS_PAGE, 1, PAB_READ_WRITE);
        /* Let some DMAs in; sched_yield() would cost a timeslice */
        busy_wait(2000);
        vpri_pab_lower_range(ctx.pab, STRESS_PAGE, 1,
                        (i & 1) ? PAB_READ_ONLY : PAB_NOT_PRESENT);
        vpri_pab_fence(ctx.pab);
        atomic_store(&ctx.reclaimed, 1);
        if (atomic_load(&ctx.writers) != 0) {
            atomic_fetch_add(&ctx.violations, 1);
        }
        /* A DMA begun now must see the lowered entry */
        t = vpri_pab_dma_begin(ctx.pab, PG(STRESS_PAGE), 1, PAB_ACCESS_WRITE, &r,
                          NULL);
        if (r != PAB_FAULT) {
            atomic_fetch_add(&ctx.violations, 1);
        }
        vpri_pab_dma_end(ctx.pab, t);
        busy_wait(500);
        atomic_store(&ctx.reclaimed, 0);
    }
    atomic_store(&ctx.stop, 1);
    for (i = 0; i < STRESS_DMA_THREADS; i++) {
        pthread_join(dma[i], NULL);
    }
    assert_int_equal(atomic_load(&ctx.violations), 0);
    /* Both paths were really exercised */
    assert_true(atomic_load(&ctx.writes_ok) > 0);
    assert_true(atomic_load(&ctx.writes_faulted) > 0);
    vpri_pab_get_stats(ctx.pab, &st);
    assert_int_equal(st.fences, STRESS_ROUNDS);
    assert_int_equal(st.host_updates, 2 * STRESS_ROUNDS);
    assert_int_equal(st.dma_inflight, 0);
    vpri_pab_free(ctx.pab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_torn_entries),
        cmocka_unit_test(test_fence_waits_for_dma),
        cmocka_unit_test(test_fence_stress),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
