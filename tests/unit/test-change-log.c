/*
 * Unit tests of the change log (migration/core/change-log.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "migration/iolab/core/change-log.h"

/* Takes everything out, one range per call, into @got (a block map). */
static unsigned drain(IolabChangeLog *log, uint8_t *got, uint64_t nblocks)
{
    uint64_t start, count, prev_start = UINT64_MAX;
    unsigned ranges = 0;

    memset(got, 0, nblocks);
    while (iolab_change_log_take(log, UINT64_MAX, &start, &count)) {
        assert_true(count > 0);
        assert_true(start + count <= nblocks);
        /* Highest first, and never the same block twice. */
        assert_true(start + count <= prev_start);
        for (uint64_t b = start; b < start + count; b++) {
            assert_int_equal(got[b], 0);
            got[b] = 1;
        }
        prev_start = start;
        ranges++;
    }
    assert_int_equal(iolab_change_log_pending(log), 0);
    return ranges;
}

static void test_new_rejects_bad_arguments(void **state)
{
    (void)state;
    assert_null(iolab_change_log_new(0, 16));
    assert_null(iolab_change_log_new(100, 0));
    assert_null(iolab_change_log_new(100, IOLAB_CHANGE_LOG_MAX_RANGES + 1));
}

static void test_coalesces_adjacent_and_overlapping(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(1000, 16);
    IolabChangeLogStats st;
    uint64_t start, count;

    (void)state;
    iolab_change_log_mark(log, 10, 10);     /* [10, 20) */
    iolab_change_log_mark(log, 20, 5);      /* adjacent: [10, 25) */
    iolab_change_log_mark(log, 5, 7);       /* overlaps: [5, 25) */
    iolab_change_log_mark(log, 12, 3);      /* inside */
    iolab_change_log_mark(log, 100, 1);     /* apart */
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.ranges, 2);
    assert_int_equal(st.pending_blocks, 21);
    assert_int_equal(st.marked_blocks, 10 + 5 + 7 + 3 + 1);

    /* One mark that spans the gap joins both. */
    iolab_change_log_mark(log, 25, 75);
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.ranges, 1);
    assert_true(iolab_change_log_take(log, UINT64_MAX, &start, &count));
    assert_int_equal(start, 5);
    assert_int_equal(count, 96);
    assert_false(iolab_change_log_take(log, UINT64_MAX, &start, &count));
    iolab_change_log_free(log);
}

static void test_merges_many_ranges_at_once(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(1000, 64);
    IolabChangeLogStats st;

    (void)state;
    for (uint64_t b = 0; b < 400; b += 10) {
        iolab_change_log_mark(log, b, 2);
    }
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.ranges, 40);
    assert_int_equal(st.pending_blocks, 80);
    /* [55, 255) swallows the 20 ranges 60..250; 50-51 stays apart. */
    iolab_change_log_mark(log, 55, 200);
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.ranges, 40 - 20 + 1);
    assert_int_equal(iolab_change_log_pending(log), 2 * 6 + 200 + 2 * 14);
    iolab_change_log_free(log);
}

static void test_take_splits_and_remark_after_take(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(1000, 16);
    uint64_t start, count;

    (void)state;
    iolab_change_log_mark(log, 0, 10);
    iolab_change_log_mark(log, 100, 10);
    assert_true(iolab_change_log_take(log, 4, &start, &count));
    assert_int_equal(start, 106);
    assert_int_equal(count, 4);
    assert_int_equal(iolab_change_log_pending(log), 16);

    /* The guest writes again what was just taken: it is pending again. */
    iolab_change_log_mark(log, 107, 1);
    assert_int_equal(iolab_change_log_pending(log), 17);
    assert_true(iolab_change_log_take(log, 100, &start, &count));
    assert_int_equal(start, 107);
    assert_int_equal(count, 1);
    assert_true(iolab_change_log_take(log, 100, &start, &count));
    assert_int_equal(start, 100);
    assert_int_equal(count, 6);
    assert_true(iolab_change_log_take(log, 0, &start, &count) == false);
    assert_true(iolab_change_log_take(log, 100, &start, &count));
    assert_int_equal(start, 0);
    assert_int_equal(count, 10);
    assert_false(iolab_change_log_take(log, 100, &start, &count));
    iolab_change_log_free(log);
}

static void test_clamps_to_the_device(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(100, 4);
    uint64_t start, count;

    (void)state;
    iolab_change_log_mark(log, 0, 0);
    iolab_change_log_mark(log, 100, 5);
    iolab_change_log_mark(log, UINT64_MAX, UINT64_MAX);
    assert_int_equal(iolab_change_log_pending(log), 0);
    iolab_change_log_mark(log, 95, UINT64_MAX);
    assert_int_equal(iolab_change_log_pending(log), 5);
    assert_true(iolab_change_log_take(log, UINT64_MAX, &start, &count));
    assert_int_equal(start, 95);
    assert_int_equal(count, 5);
    iolab_change_log_free(log);
}

static void test_overflow_falls_back_to_whole_device(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(1000, 3);
    IolabChangeLogStats st;
    uint64_t start, count;

    (void)state;
    iolab_change_log_mark(log, 0, 1);
    iolab_change_log_mark(log, 10, 1);
    iolab_change_log_mark(log, 20, 1);
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.overflows, 0);
    assert_false(st.whole_device);

    iolab_change_log_mark(log, 30, 1);      /* a fourth disjoint range */
    iolab_change_log_get_stats(log, &st);
    assert_int_equal(st.overflows, 1);
    assert_true(st.whole_device);
    assert_int_equal(st.ranges, 1);
    assert_int_equal(st.pending_blocks, 1000);

    /* Marks inside the whole range change nothing. */
    iolab_change_log_mark(log, 500, 10);
    assert_int_equal(iolab_change_log_pending(log), 1000);

    /* Logging goes on after the fallback. */
    assert_true(iolab_change_log_take(log, 600, &start, &count));
    assert_int_equal(start, 400);
    assert_int_equal(count, 600);
    iolab_change_log_mark(log, 900, 2);
    iolab_change_log_get_stats(log, &st);
    assert_false(st.whole_device);
    assert_int_equal(st.pending_blocks, 402);
    assert_int_equal(st.ranges, 2);
    iolab_change_log_free(log);
}

static void test_clear_forgets_everything(void **state)
{
    IolabChangeLog *log = iolab_change_log_new(1000, 8);
    uint64_t start, count;

    (void)state;
    iolab_change_log_mark(log, 3, 7);
    iolab_change_log_mark(log, 300, 7);
    iolab_change_log_clear(log);
    assert_int_equal(iolab_change_log_pending(log), 0);
    assert_false(iolab_change_log_take(log, 10, &start, &count));
    iolab_change_log_mark(log, 5, 1);
    assert_int_equal(iolab_change_log_pending(log), 1);
    iolab_change_log_free(log);
}

/* xorshift64*, so the random test is the same on every run. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/*
 * Random marks and takes against a block map: after every step the log's
 * pending count equals the map's, and draining it yields exactly the map.
 * With a small bound the fallback fires; the model then marks everything.
 */
static void model_check(uint64_t nblocks, uint32_t max_ranges, uint64_t seed)
{
    IolabChangeLog *log = iolab_change_log_new(nblocks, max_ranges);
    uint8_t *model = calloc(nblocks, 1), *got = calloc(nblocks, 1);
    uint64_t s = seed, model_pending = 0, overflows = 0;
    IolabChangeLogStats st;

    for (int step = 0; step < 20000; step++) {
        uint64_t r = rnd(&s);

        if (r % 3) {
            uint64_t start = rnd(&s) % (nblocks + 8);
            uint64_t count = rnd(&s) % 12;

            iolab_change_log_mark(log, start, count);
            iolab_change_log_get_stats(log, &st);
            if (st.overflows != overflows) {
                overflows = st.overflows;
                memset(model, 1, nblocks);
                model_pending = nblocks;
            } else {
                for (uint64_t b = start; b < start + count && b < nblocks;
                     b++) {
                    model_pending += !model[b];
                    model[b] = 1;
                }
            }
        } else {
            uint64_t start, count;

            if (iolab_change_log_take(log, 1 + rnd(&s) % 16,
                                      &start, &count)) {
                for (uint64_t b = start; b < start + count; b++) {
                    assert_int_equal(model[b], 1);
                    model[b] = 0;
                }
                model_pending -= count;
            } else {
                assert_int_equal(model_pending, 0);
            }
        }
        assert_int_equal(iolab_change_log_pending(log), model_pending);
        iolab_change_log_get_stats(log, &st);
        assert_true(st.ranges <= max_ranges);
    }
    drain(log, got, nblocks);
    assert_memory_equal(got, model, nblocks);
    free(model);
    free(got);
    iolab_change_log_free(log);
}

static void test_random_against_model(void **state)
{
    (void)state;
    model_check(4096, 100000, 1);
    model_check(4096, 64, 2);
    model_check(97, 5, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_arguments),
        cmocka_unit_test(test_coalesces_adjacent_and_overlapping),
        cmocka_unit_test(test_merges_many_ranges_at_once),
        cmocka_unit_test(test_take_splits_and_remark_after_take),
        cmocka_unit_test(test_clamps_to_the_device),
        cmocka_unit_test(test_overflow_falls_back_to_whole_device),
        cmocka_unit_test(test_clear_forgets_everything),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
