/*
 * Tests of lazy invalidation in the PA-BITMAP (eviction batches): the
 * counters, and, with DMA threads racing the host, that no DMA ever reads
 * a discarded page or writes a page being evicted.
 *
 * cmocka is not thread-safe: threads count, the main thread asserts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
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
#define POISON 0xdeaddeaddeaddeadULL

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Evict @n pages from @first (all in @state) through a batch. */
static void evict_pages(PaBitmap *pab, bool lazy, PabState state,
                        uint64_t first, unsigned n, unsigned cap,
                        PabBatchStats *st)
{
    PabBatch *b = vpri_pab_batch_new(pab, cap, lazy);

    assert_non_null(b);
    assert_int_equal(vpri_pab_set_range(pab, 0, vpri_pab_npages(pab), state) >= 0,
                     true);
    for (unsigned i = 0; i < n; i++) {
        int r = vpri_pab_batch_lower(b, first + i);

        assert_int_equal(r, lazy && state == PAB_READ_ONLY);
        if ((i + 1) % cap == 0) {
            vpri_pab_batch_sync(b);
            vpri_pab_batch_flush(b);
        }
    }
    vpri_pab_batch_sync(b);
    vpri_pab_batch_flush(b);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(vpri_pab_get(pab, first + i), PAB_NOT_PRESENT);
    }
    vpri_pab_batch_get_stats(b, st);
    vpri_pab_batch_free(b);
}

/* Fences and host updates per 1000 evicted pages. */
static void test_batch_counters(void **state)
{
    PaBitmap *pab = vpri_pab_new(4096);
    PabBatchStats one, ro, rw;

    (void)state;
    evict_pages(pab, false, PAB_READ_ONLY, 0, 1000, 256, &one);
    assert_int_equal(one.fences, 1000);
    assert_int_equal(one.host_updates, 1000);
    assert_int_equal(one.deferred, 0);

    /* Read-only: one fence and one coalesced update per 256 pages. */
    evict_pages(pab, true, PAB_READ_ONLY, 0, 1000, 256, &ro);
    assert_int_equal(ro.pages, 1000);
    assert_int_equal(ro.deferred, 1000);
    assert_int_equal(ro.fences, 4);
    assert_int_equal(ro.host_updates, 4);

    /* Read-write entries are never deferred: lowered one by one, but the
     * fence before the copy is shared by the batch. */
    evict_pages(pab, true, PAB_READ_WRITE, 0, 1000, 256, &rw);
    assert_int_equal(rw.deferred, 0);
    assert_int_equal(rw.immediate, 1000);
    assert_int_equal(rw.host_updates, 1000);
    assert_int_equal(rw.fences, 4);
    vpri_pab_free(pab);
}

/* Scattered pages coalesce only where they are neighbours. */
static void test_batch_coalesces_neighbours(void **state)
{
    PaBitmap *pab = vpri_pab_new(1000);
    PabBatch *b = vpri_pab_batch_new(pab, 64, true);
    PabBatchStats st;
    static const uint64_t pages[] = { 9, 3, 4, 5, 100, 8, 101, 500 };

    (void)state;
    vpri_pab_set_range(pab, 0, 1000, PAB_READ_ONLY);
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        assert_int_equal(vpri_pab_batch_lower(b, pages[i]), 1);
        /* Not lowered yet: a DMA may still read it. */
        assert_int_equal(vpri_pab_get(pab, pages[i]), PAB_READ_ONLY);
        assert_true(vpri_pab_batch_pending(b, pages[i]));
    }
    assert_int_equal(vpri_pab_batch_lower(b, 1000), -ERANGE);
    vpri_pab_batch_flush(b);
    vpri_pab_batch_get_stats(b, &st);
    /* 3-5, 8-9, 100-101, 500 */
    assert_int_equal(st.host_updates, 4);
    assert_int_equal(st.fences, 1);
    assert_int_equal(vpri_pab_get(pab, 4), PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_get(pab, 6), PAB_READ_ONLY);
    assert_false(vpri_pab_batch_pending(b, 4));
    vpri_pab_batch_free(b);
    vpri_pab_free(pab);
}

/* Raising a pending page flushes the batch first. */
static void test_batch_raise_flushes(void **state)
{
    PaBitmap *pab = vpri_pab_new(100);
    PabBatch *b = vpri_pab_batch_new(pab, 8, true);
    PabBatchStats st;

    (void)state;
    vpri_pab_set_range(pab, 0, 100, PAB_READ_ONLY);
    vpri_pab_batch_lower(b, 10);
    vpri_pab_batch_lower(b, 20);
    /* A range without a pending page: no flush. */
    assert_int_equal(vpri_pab_batch_raise(b, 11, 5, PAB_READ_WRITE), 5);
    vpri_pab_batch_get_stats(b, &st);
    assert_int_equal(st.flushes, 0);
    assert_int_equal(vpri_pab_batch_raise(b, 20, 1, PAB_READ_WRITE), 1);
    vpri_pab_batch_get_stats(b, &st);
    assert_int_equal(st.flushes, 1);
    assert_false(vpri_pab_batch_pending(b, 10));
    assert_int_equal(vpri_pab_get(pab, 10), PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_get(pab, 20), PAB_READ_WRITE);
    /* Capacity: the ninth deferred page flushes the first eight. */
    for (uint64_t p = 30; p < 39; p++) {
        vpri_pab_batch_lower(b, p);
    }
    vpri_pab_batch_get_stats(b, &st);
    assert_int_equal(st.flushes, 2);
    assert_true(vpri_pab_batch_pending(b, 38));
    assert_false(vpri_pab_batch_pending(b, 30));
    vpri_pab_batch_free(b);
    vpri_pab_free(pab);
}

/*
 * A DMA reading a read-only page is in flight while the host evicts it
 * lazily: the host copies at once (no fence needed, the DMA cannot write),
 * but the discard waits for the DMA.
 */
typedef struct HoldCtx {
    PaBitmap *pab;
    _Atomic uint64_t *content;
    atomic_int flushed;
} HoldCtx;

static void *lazy_host(void *opaque)
{
    HoldCtx *c = opaque;
    PabBatch *b = vpri_pab_batch_new(c->pab, 8, true);

    vpri_pab_batch_lower(b, 5);
    vpri_pab_batch_sync(b);              /* nothing to fence: returns at once */
    vpri_pab_batch_flush(b);             /* waits for the DMA */
    atomic_store(c->content + 5, POISON);
    atomic_store(&c->flushed, 1);
    vpri_pab_batch_free(b);
    return NULL;
}

static void test_discard_waits_for_reader(void **state)
{
    _Atomic uint64_t content[8] = { 0 };
    HoldCtx c = { .pab = vpri_pab_new(8), .content = content };
    PabDmaToken tok;
    PabResult res;
    pthread_t th;

    (void)state;
    vpri_pab_set_range(c.pab, 0, 8, PAB_READ_ONLY);
    atomic_store(&content[5], 42);
    tok = vpri_pab_dma_begin(c.pab, PG(5), 64, PAB_ACCESS_READ, &res, NULL);
    assert_int_equal(res, PAB_OK);
    pthread_create(&th, NULL, lazy_host, &c);
    sleep_ms(50);
    /* Lowered or not, the data the DMA reads is still the page's. */
    assert_int_equal(atomic_load(&content[5]), 42);
    assert_int_equal(atomic_load(&c.flushed), 0);
    vpri_pab_dma_end(c.pab, tok);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&c.flushed), 1);
    assert_int_equal(vpri_pab_get(c.pab, 5), PAB_NOT_PRESENT);
    vpri_pab_free(c.pab);
}

/*
 * Stress: DMA threads read and write random pages (each DMA checks and
 * moves one word standing for the page's content) while the host evicts
 * random batches lazily, copies them, discards them (POISON) and pages
 * them back in.  Half of the pages are read-only, half read-write.
 *
 * - a DMA that reads POISON read a discarded page;
 * - a DMA write onto POISON wrote a discarded page;
 * - a discard that finds the content changed since the copy lost a write
 *   made to a page being evicted.
 */
#define ST_PAGES 128
#define ST_THREADS 2
#define ST_ROUNDS 1500
#define ST_BATCH 16

typedef struct StressCtx {
    PaBitmap *pab;
    _Atomic uint64_t content[ST_PAGES];
    atomic_int stop;
    atomic_long dmas, faults, bad_reads, bad_writes;
    unsigned seed[ST_THREADS];
} StressCtx;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *stress_dma(void *opaque)
{
    StressCtx *c = ((void **)opaque)[0];
    unsigned *seed = ((void **)opaque)[1];

    while (!atomic_load(&c->stop)) {
        unsigned p = next_rand(seed) % ST_PAGES;
        bool write = next_rand(seed) & 1;
        PabResult res;
        PabDmaToken tok = vpri_pab_dma_begin(c->pab, PG(p), 8,
                                        write ? PAB_ACCESS_WRITE :
                                        PAB_ACCESS_READ, &res, NULL);

        if (res == PAB_OK) {
            if (write) {
                uint64_t old = atomic_exchange(&c->content[p],
                                               next_rand(seed) + 1);

                if (old == POISON) {
                    atomic_fetch_add(&c->bad_writes, 1);
                }
            } else if (atomic_load(&c->content[p]) == POISON) {
                atomic_fetch_add(&c->bad_reads, 1);
            }
            atomic_fetch_add(&c->dmas, 1);
        } else {
            atomic_fetch_add(&c->faults, 1);
        }
        vpri_pab_dma_end(c->pab, tok);
    }
    return NULL;
}

/*
 * Until a DMA thread has completed a DMA after @seen of them.  Most pages
 * are present at any time, so one soon does.
 */
static void wait_for_more_dmas(StressCtx *c, long seen)
{
    while (atomic_load(&c->dmas) <= seen) {
        sched_yield();
    }
}

static PabState page_state(unsigned p)
{
    return p % 2 ? PAB_READ_ONLY : PAB_READ_WRITE;
}

static void test_lazy_stress(void **state)
{
    static StressCtx c;
    PabBatch *b;
    PabBatchStats st;
    pthread_t th[ST_THREADS];
    void *args[ST_THREADS][2];
    uint64_t saved[ST_PAGES];
    long lost = 0;
    unsigned hs = 7;

    (void)state;
    c.pab = vpri_pab_new(ST_PAGES);
    b = vpri_pab_batch_new(c.pab, ST_BATCH, true);
    for (unsigned p = 0; p < ST_PAGES; p++) {
        vpri_pab_set_range(c.pab, p, 1, page_state(p));
        atomic_store(&c.content[p], p + 1);
    }
    for (int i = 0; i < ST_THREADS; i++) {
        c.seed[i] = 1234u + (unsigned)i;
        args[i][0] = &c;
        args[i][1] = &c.seed[i];
        pthread_create(&th[i], NULL, stress_dma, args[i]);
    }
    /*
     * DMAs are running before the first round, and between the copy and
     * the flush of every 50th round at least one more has run (every
     * third round yields for them): left to the scheduler, a loaded
     * machine can run the whole test before a DMA thread gets a CPU.
     * Waiting in every round would cost a scheduler slice per round.
     */
    wait_for_more_dmas(&c, 0);
    for (int round = 0; round < ST_ROUNDS; round++) {
        unsigned batch[ST_BATCH], n = 0;
        bool chosen[ST_PAGES] = { false };

        while (n < ST_BATCH) {
            unsigned p = next_rand(&hs) % ST_PAGES;

            if (!chosen[p]) {
                chosen[p] = true;
                batch[n++] = p;
            }
        }
        for (unsigned i = 0; i < n; i++) {
            vpri_pab_batch_lower(b, batch[i]);
        }
        vpri_pab_batch_sync(b);
        for (unsigned i = 0; i < n; i++) {
            saved[batch[i]] = atomic_load(&c.content[batch[i]]);
        }
        if (round % 50 == 0) {
            wait_for_more_dmas(&c, atomic_load(&c.dmas));
        } else if (round % 3 == 0) {
            sched_yield();
        }
        vpri_pab_batch_flush(b);
        for (unsigned i = 0; i < n; i++) {
            if (atomic_exchange(&c.content[batch[i]], POISON) !=
                saved[batch[i]]) {
                lost++;
            }
        }
        /* Page them back in, then raise. */
        for (unsigned i = 0; i < n; i++) {
            atomic_store(&c.content[batch[i]], saved[batch[i]]);
            vpri_pab_batch_raise(b, batch[i], 1, page_state(batch[i]));
        }
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < ST_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    vpri_pab_batch_get_stats(b, &st);
    print_message("lazy stress: %ld DMAs, %ld faults, %lu deferred, "
                  "%lu immediate, %lu fences\n", atomic_load(&c.dmas),
                  atomic_load(&c.faults), (unsigned long)st.deferred,
                  (unsigned long)st.immediate, (unsigned long)st.fences);
    assert_int_equal(atomic_load(&c.bad_reads), 0);
    assert_int_equal(atomic_load(&c.bad_writes), 0);
    assert_int_equal(lost, 0);
    assert_true(atomic_load(&c.dmas) > 0);
    assert_true(st.deferred > 0 && st.immediate > 0);
    /* Per round: one fence before the copy if it held read-write pages,
     * one at the flush if it held read-only ones; never one per page. */
    assert_true(st.fences >= ST_ROUNDS && st.fences <= 2 * ST_ROUNDS);
    vpri_pab_batch_free(b);
    vpri_pab_free(c.pab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_counters),
        cmocka_unit_test(test_batch_coalesces_neighbours),
        cmocka_unit_test(test_batch_raise_flushes),
        cmocka_unit_test(test_discard_waits_for_reader),
        cmocka_unit_test(test_lazy_stress),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
