/*
 * Unit tests for the VPRI DMA access tracker
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/vpri/core/access-tracker.h"

#define PG(n) ((uint64_t)(n) << 12)

static void test_limits(void **state)
{
    AccessTracker *at;

    (void)state;
    assert_null(vpri_access_tracker_new(0));
    assert_null(vpri_access_tracker_new((uint64_t)1 << 53));
    at = vpri_access_tracker_new(200);
    assert_non_null(at);
    assert_int_equal(vpri_access_tracker_npages(at), 200);
    assert_int_equal(vpri_access_tracker_mark(at, PG(200), 1), -ERANGE);
    assert_int_equal(vpri_access_tracker_mark(at, PG(199), PG(1) + 1), -ERANGE);
    assert_int_equal(vpri_access_tracker_mark(at, UINT64_MAX, 2), -ERANGE);
    /* A refused mark marks nothing, not even the in-range part */
    assert_false(vpri_access_tracker_test(at, 199));
    assert_int_equal(vpri_access_tracker_collect(at, 150, 51, NULL), -ERANGE);
    assert_int_equal(vpri_access_tracker_collect(at, 200, 0, NULL), -ERANGE);
    assert_false(vpri_access_tracker_test(at, 500));
    vpri_access_tracker_free(at);
}

static void test_mark_pages(void **state)
{
    AccessTracker *at = vpri_access_tracker_new(200);
    uint64_t p;

    (void)state;
    /* Two bytes straddling pages 9/10; 4 KiB exactly at page 20 */
    assert_int_equal(vpri_access_tracker_mark(at, PG(10) - 1, 2), 0);
    assert_int_equal(vpri_access_tracker_mark(at, PG(20), PG(1)), 0);
    /* 60..130 crosses two word boundaries */
    assert_int_equal(vpri_access_tracker_mark(at, PG(60) + 7, PG(70)), 0);
    assert_int_equal(vpri_access_tracker_mark(at, PG(199), 0), 0);
    for (p = 0; p < 200; p++) {
        assert_int_equal(vpri_access_tracker_test(at, p),
                         p == 9 || p == 10 || p == 20 ||
                         (p >= 60 && p <= 130));
    }
    vpri_access_tracker_free(at);
}

static void test_collect_bitmap(void **state)
{
    AccessTracker *at = vpri_access_tracker_new(300);
    uint64_t bm[5];

    (void)state;
    vpri_access_tracker_mark(at, PG(5), 1);
    vpri_access_tracker_mark(at, PG(70), 1);
    vpri_access_tracker_mark(at, PG(130), PG(3));
    vpri_access_tracker_mark(at, PG(299), 1);

    /* Unaligned window: bit i is page 65 + i; outside pages untouched */
    memset(bm, 0xff, sizeof(bm));
    assert_int_equal(vpri_access_tracker_collect(at, 65, 70, bm), 4);
    assert_int_equal(bm[0], 1ULL << (70 - 65));
    assert_int_equal(bm[1], 7ULL << (130 - 65 - 64));
    /* Cleared: a second collection finds nothing there */
    assert_int_equal(vpri_access_tracker_collect(at, 65, 70, bm), 0);
    assert_int_equal(bm[0], 0);
    assert_int_equal(bm[1], 0);
    assert_true(vpri_access_tracker_test(at, 5));
    assert_true(vpri_access_tracker_test(at, 299));

    assert_int_equal(vpri_access_tracker_collect(at, 0, 300, bm), 2);
    assert_int_equal(bm[0], 1ULL << 5);
    assert_int_equal(bm[1] | bm[2] | bm[3], 0);
    assert_int_equal(bm[299 / 64], 1ULL << (299 % 64));
    assert_false(vpri_access_tracker_test(at, 5));
    /* NULL bitmap just clears */
    vpri_access_tracker_mark(at, PG(1), 1);
    assert_int_equal(vpri_access_tracker_collect(at, 0, 300, NULL), 1);
    assert_false(vpri_access_tracker_test(at, 1));
    vpri_access_tracker_free(at);
}

typedef struct Seen {
    uint64_t pfns[16];
    int n;
} Seen;

static void record_pfn(uint64_t pfn, void *opaque)
{
    Seen *s = opaque;

    if (s->n < 16) {
        s->pfns[s->n] = pfn;
    }
    s->n++;
}

static void test_collect_cb(void **state)
{
    AccessTracker *at = vpri_access_tracker_new(256);
    Seen seen = { .n = 0 };

    (void)state;
    vpri_access_tracker_mark(at, PG(200), 1);
    vpri_access_tracker_mark(at, PG(3), 1);
    vpri_access_tracker_mark(at, PG(63), 2 * 4096);
    vpri_access_tracker_mark(at, PG(100), 1);
    /* Window 3..199 leaves page 200 alone */
    assert_int_equal(vpri_access_tracker_collect_cb(at, 3, 197, record_pfn,
                                               &seen), 4);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.pfns[0], 3);
    assert_int_equal(seen.pfns[1], 63);
    assert_int_equal(seen.pfns[2], 64);
    assert_int_equal(seen.pfns[3], 100);
    assert_true(vpri_access_tracker_test(at, 200));
    assert_false(vpri_access_tracker_test(at, 63));
    vpri_access_tracker_free(at);
}

/*
 * Each page is marked exactly once, by one of two marker threads, while
 * the host collects in a loop.  Every page must then be reported
 * exactly once over all collections: a read-and-clear that was not one
 * atomic step would lose marks that land between its read and its
 * clear, and a clear that missed would report a page twice.
 */
#define MT_PAGES (1 << 20)
#define MT_MARKERS 2

typedef struct MtCtx {
    AccessTracker *at;
    atomic_int markers_left;
    uint8_t reported[MT_PAGES];
} MtCtx;

typedef struct MarkerArg {
    MtCtx *ctx;
    int id;
} MarkerArg;

static void *marker_thread(void *opaque)
{
    MarkerArg *arg = opaque;
    uint64_t i, p;

    /* Interleave the two markers within every word, in scrambled order */
    for (i = 0; i < MT_PAGES / MT_MARKERS; i++) {
        p = (i * 40503u) % (MT_PAGES / MT_MARKERS);
        vpri_access_tracker_mark(arg->ctx->at, PG(p * MT_MARKERS + arg->id), 1);
    }
    atomic_fetch_sub(&arg->ctx->markers_left, 1);
    return NULL;
}

static void count_pfn(uint64_t pfn, void *opaque)
{
    MtCtx *ctx = opaque;

    if (ctx->reported[pfn] < 255) {
        ctx->reported[pfn]++;
    }
}

static void test_concurrent_no_loss(void **state)
{
    static MtCtx ctx;
    MarkerArg args[MT_MARKERS];
    pthread_t t[MT_MARKERS];
    int64_t n, total = 0, collects = 0;
    bool last = false;
    int i;

    (void)state;
    memset(&ctx, 0, sizeof(ctx));
    ctx.at = vpri_access_tracker_new(MT_PAGES);
    atomic_store(&ctx.markers_left, MT_MARKERS);
    for (i = 0; i < MT_MARKERS; i++) {
        args[i].ctx = &ctx;
        args[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, marker_thread,
                                        &args[i]), 0);
    }
    while (!last) {
        /* One more pass after the markers are done picks up the rest */
        last = atomic_load(&ctx.markers_left) == 0;
        n = vpri_access_tracker_collect_cb(ctx.at, 0, MT_PAGES, count_pfn, &ctx);
        assert_true(n >= 0);
        total += n;
        collects++;
    }
    for (i = 0; i < MT_MARKERS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(total, MT_PAGES);
    for (i = 0; i < MT_PAGES; i++) {
        if (ctx.reported[i] != 1) {
            fail_msg("page %d reported %d times", i, ctx.reported[i]);
        }
    }
    assert_int_equal(vpri_access_tracker_collect(ctx.at, 0, MT_PAGES, NULL), 0);
    assert_true(collects >= 1);
    vpri_access_tracker_free(ctx.at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_mark_pages),
        cmocka_unit_test(test_collect_bitmap),
        cmocka_unit_test(test_collect_cb),
        cmocka_unit_test(test_concurrent_no_loss),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
