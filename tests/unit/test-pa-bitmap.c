/*
 * Unit tests for the VPRI PA-BITMAP: encoding, state machine, ranges
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw/vpri/core/pa-bitmap.h"

#define PG(n) ((uint64_t)(n) << PAB_PAGE_SHIFT)

static const PabState all_states[] = {
    PAB_NOT_PRESENT, PAB_READ_ONLY, PAB_RESERVED, PAB_READ_WRITE,
};

/* What each state lets through, straight from the encoding table */
static int allows(PabState s, PabAccess a)
{
    switch (s) {
    case PAB_READ_WRITE:
        return 1;
    case PAB_READ_ONLY:
        return a == PAB_ACCESS_READ;
    default:
        return 0;
    }
}

static void check_counts(PaBitmap *pab)
{
    uint64_t scanned[PAB_NR_STATES];
    PabStats st;
    int s;

    vpri_pab_get_stats(pab, &st);
    vpri_pab_count_entries(pab, scanned);
    for (s = 0; s < PAB_NR_STATES; s++) {
        assert_int_equal(st.entries[s], scanned[s]);
    }
    assert_int_equal(scanned[0] + scanned[1] + scanned[2] + scanned[3],
                     vpri_pab_npages(pab));
}

static void test_encoding(void **state)
{
    (void)state;
    /* The wire encoding is part of the device's interface */
    assert_int_equal(PAB_NOT_PRESENT, 0);
    assert_int_equal(PAB_READ_ONLY, 1);
    assert_int_equal(PAB_RESERVED, 2);
    assert_int_equal(PAB_READ_WRITE, 3);
}

static void test_new_limits(void **state)
{
    PaBitmap *pab;
    PabStats st;

    (void)state;
    assert_null(vpri_pab_new(0));
    assert_null(vpri_pab_new(PAB_MAX_PAGES + 1));
    pab = vpri_pab_new(100);
    assert_non_null(pab);
    assert_int_equal(vpri_pab_npages(pab), 100);
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.entries[PAB_NOT_PRESENT], 100);
    assert_int_equal(st.entries[PAB_READ_WRITE], 0);
    assert_int_equal(vpri_pab_get(pab, 99), PAB_NOT_PRESENT);
    check_counts(pab);
    vpri_pab_free(pab);
}

/* Every state reached from every state by set, with every access */
static void test_set_all_transitions(void **state)
{
    PaBitmap *pab = vpri_pab_new(64);
    uint64_t fault;
    PabStats st;
    size_t i, j;
    int a;

    (void)state;
    for (i = 0; i < 4; i++) {
        for (j = 0; j < 4; j++) {
            assert_true(vpri_pab_set_range(pab, 5, 1, all_states[i]) >= 0);
            assert_int_equal(vpri_pab_set_range(pab, 5, 1, all_states[j]),
                             i == j ? 0 : 1);
            assert_int_equal(vpri_pab_get(pab, 5), all_states[j]);
            for (a = PAB_ACCESS_READ; a <= PAB_ACCESS_WRITE; a++) {
                fault = 0;
                assert_int_equal(vpri_pab_lookup(pab, PG(5) + 100, 8,
                                            (PabAccess)a, &fault),
                                 allows(all_states[j], (PabAccess)a) ?
                                 PAB_OK : PAB_FAULT);
                if (!allows(all_states[j], (PabAccess)a)) {
                    assert_int_equal(fault, PG(5));
                }
            }
            /* Neighbours untouched */
            assert_int_equal(vpri_pab_get(pab, 4), PAB_NOT_PRESENT);
            assert_int_equal(vpri_pab_get(pab, 6), PAB_NOT_PRESENT);
            check_counts(pab);
        }
    }
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.host_updates, 32);
    vpri_pab_free(pab);
}

/* Entries 0-3 hold NP, RO, reserved and RW, in that order. */
static void set_one_of_each(PaBitmap *pab)
{
    vpri_pab_set_range(pab, 0, 1, PAB_NOT_PRESENT);
    vpri_pab_set_range(pab, 1, 1, PAB_READ_ONLY);
    vpri_pab_set_range(pab, 2, 1, PAB_RESERVED);
    vpri_pab_set_range(pab, 3, 1, PAB_READ_WRITE);
}

static void test_raise(void **state)
{
    PaBitmap *pab = vpri_pab_new(8);
    PabStats st;

    (void)state;
    set_one_of_each(pab);

    /* Raise to RO: NP and reserved gain read, RO and RW keep theirs */
    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, PAB_READ_ONLY), 2);
    assert_int_equal(vpri_pab_get(pab, 0), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 1), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 2), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 3), PAB_READ_WRITE);

    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, PAB_READ_WRITE), 3);
    assert_int_equal(vpri_pab_get(pab, 0), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_get(pab, 1), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_get(pab, 2), PAB_READ_WRITE);

    /* Raising never lowers */
    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, PAB_READ_ONLY), 0);
    assert_int_equal(vpri_pab_get(pab, 3), PAB_READ_WRITE);

    /* Raising to nothing or to the reserved pattern is refused */
    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, PAB_NOT_PRESENT), -EINVAL);
    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, PAB_RESERVED), -EINVAL);
    assert_int_equal(vpri_pab_raise_range(pab, 0, 4, (PabState)7), -EINVAL);

    vpri_pab_get_stats(pab, &st);
    /* Setup NP->RO and NP->RW (NP->reserved grants nothing), then 2, 3 */
    assert_int_equal(st.entries_raised, 2 + 2 + 3);
    assert_int_equal(st.entries_lowered, 0);
    check_counts(pab);
    vpri_pab_free(pab);
}

static void test_lower(void **state)
{
    PaBitmap *pab = vpri_pab_new(8);
    PabStats st;

    (void)state;
    set_one_of_each(pab);

    /* Lower to RO: RW loses write; reserved is cleaned to NP */
    assert_int_equal(vpri_pab_lower_range(pab, 0, 4, PAB_READ_ONLY), 2);
    assert_int_equal(vpri_pab_get(pab, 0), PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_get(pab, 1), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 2), PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_get(pab, 3), PAB_READ_ONLY);

    /* Lowering never raises */
    assert_int_equal(vpri_pab_lower_range(pab, 0, 4, PAB_READ_WRITE), 0);
    assert_int_equal(vpri_pab_get(pab, 0), PAB_NOT_PRESENT);

    assert_int_equal(vpri_pab_lower_range(pab, 0, 4, PAB_NOT_PRESENT), 2);
    assert_int_equal(vpri_pab_get(pab, 1), PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_get(pab, 3), PAB_NOT_PRESENT);

    /* RW straight to NP */
    vpri_pab_set_range(pab, 5, 1, PAB_READ_WRITE);
    assert_int_equal(vpri_pab_lower_range(pab, 5, 1, PAB_NOT_PRESENT), 1);
    assert_int_equal(vpri_pab_get(pab, 5), PAB_NOT_PRESENT);

    assert_int_equal(vpri_pab_lower_range(pab, 0, 4, PAB_RESERVED), -EINVAL);

    vpri_pab_get_stats(pab, &st);
    /* RW->RO, then RO->NP twice, then RW->NP; reserved->NP is neither */
    assert_int_equal(st.entries_lowered, 1 + 2 + 1);
    check_counts(pab);
    vpri_pab_free(pab);
}

static void test_reserved_is_error(void **state)
{
    PaBitmap *pab = vpri_pab_new(64);
    uint64_t fault = 0;
    PabStats st;

    (void)state;
    vpri_pab_set_range(pab, 0, 64, PAB_READ_WRITE);
    vpri_pab_set_range(pab, 10, 1, PAB_RESERVED);

    assert_int_equal(vpri_pab_lookup(pab, PG(10), 1, PAB_ACCESS_READ, &fault),
                     PAB_FAULT);
    assert_int_equal(fault, PG(10));
    assert_int_equal(vpri_pab_lookup(pab, PG(10), 1, PAB_ACCESS_WRITE, &fault),
                     PAB_FAULT);
    /* Found as the first faulting page of a range */
    assert_int_equal(vpri_pab_lookup(pab, PG(8), PG(4), PAB_ACCESS_READ, &fault),
                     PAB_FAULT);
    assert_int_equal(fault, PG(10));

    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.reserved_hits, 3);
    assert_int_equal(st.faults, 3);
    assert_int_equal(st.entries[PAB_RESERVED], 1);

    /* A plain NP fault is not an error */
    vpri_pab_set_range(pab, 20, 1, PAB_NOT_PRESENT);
    assert_int_equal(vpri_pab_lookup(pab, PG(20), 1, PAB_ACCESS_READ, NULL),
                     PAB_FAULT);
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.reserved_hits, 3);
    assert_int_equal(st.faults, 4);
    check_counts(pab);
    vpri_pab_free(pab);
}

/* 100 pages span words 0..3; ranges cross the 32-entry boundaries */
static void test_ranges_cross_words(void **state)
{
    PaBitmap *pab = vpri_pab_new(100);
    uint64_t fault = 0, p;
    PabStats st;

    (void)state;
    assert_int_equal(vpri_pab_set_range(pab, 30, 40, PAB_READ_WRITE), 40);
    for (p = 0; p < 100; p++) {
        assert_int_equal(vpri_pab_get(pab, p), p >= 30 && p < 70 ?
                         PAB_READ_WRITE : PAB_NOT_PRESENT);
    }
    vpri_pab_get_stats(pab, &st);
    /* Words 0, 1 and 2 were rewritten */
    assert_int_equal(st.word_writes, 3);

    assert_int_equal(vpri_pab_lower_range(pab, 31, 2, PAB_READ_ONLY), 2);
    assert_int_equal(vpri_pab_get(pab, 30), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_get(pab, 31), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 32), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 33), PAB_READ_WRITE);

    /* The whole space, last partial word included; 31, 32 already RO */
    assert_int_equal(vpri_pab_set_range(pab, 0, 100, PAB_READ_ONLY), 98);
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.entries[PAB_READ_ONLY], 100);
    assert_int_equal(vpri_pab_lookup(pab, 0, PG(100), PAB_ACCESS_READ, &fault),
                     PAB_OK);
    assert_int_equal(vpri_pab_raise_range(pab, 95, 5, PAB_READ_WRITE), 5);
    assert_int_equal(vpri_pab_get(pab, 94), PAB_READ_ONLY);
    assert_int_equal(vpri_pab_get(pab, 99), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_set_range(pab, 0, 0, PAB_READ_WRITE), 0);
    check_counts(pab);
    vpri_pab_free(pab);
}

static void test_multi_page_lookup(void **state)
{
    PaBitmap *pab = vpri_pab_new(128);
    uint64_t fault;

    (void)state;
    vpri_pab_set_range(pab, 0, 128, PAB_READ_WRITE);
    vpri_pab_set_range(pab, 40, 1, PAB_READ_ONLY);
    vpri_pab_set_range(pab, 70, 1, PAB_NOT_PRESENT);

    /* 20..39 crosses word 0/1 and is all RW */
    assert_int_equal(vpri_pab_lookup(pab, PG(20), PG(20), PAB_ACCESS_WRITE,
                                &fault), PAB_OK);
    /* Ending one byte into page 40 already touches it */
    fault = 0;
    assert_int_equal(vpri_pab_lookup(pab, PG(20), PG(20) + 1, PAB_ACCESS_WRITE,
                                &fault), PAB_FAULT);
    assert_int_equal(fault, PG(40));
    assert_int_equal(vpri_pab_lookup(pab, PG(20), PG(20) + 1, PAB_ACCESS_READ,
                                &fault), PAB_OK);
    /* The lowest faulting page is reported, not the first seen */
    fault = 0;
    assert_int_equal(vpri_pab_lookup(pab, PG(30) + 5, PG(60), PAB_ACCESS_WRITE,
                                &fault), PAB_FAULT);
    assert_int_equal(fault, PG(40));
    fault = 0;
    assert_int_equal(vpri_pab_lookup(pab, PG(41), PG(60), PAB_ACCESS_READ,
                                &fault), PAB_FAULT);
    assert_int_equal(fault, PG(70));
    /* Unaligned access straddling two pages */
    fault = 0;
    assert_int_equal(vpri_pab_lookup(pab, PG(70) - 2, 4, PAB_ACCESS_READ,
                                &fault), PAB_FAULT);
    assert_int_equal(fault, PG(70));
    assert_int_equal(vpri_pab_lookup(pab, PG(70) - 2, 2, PAB_ACCESS_READ, NULL),
                     PAB_OK);
    /* Zero-length access checks nothing */
    assert_int_equal(vpri_pab_lookup(pab, PG(70), 0, PAB_ACCESS_WRITE, NULL),
                     PAB_OK);
    vpri_pab_free(pab);
}

static void test_out_of_range(void **state)
{
    PaBitmap *pab = vpri_pab_new(100);
    PabStats st;

    (void)state;
    vpri_pab_set_range(pab, 0, 100, PAB_READ_WRITE);
    assert_int_equal(vpri_pab_lookup(pab, PG(99), PAB_PAGE_SIZE, PAB_ACCESS_READ,
                                NULL), PAB_OK);
    assert_int_equal(vpri_pab_lookup(pab, PG(99), PAB_PAGE_SIZE + 1,
                                PAB_ACCESS_READ, NULL), PAB_OUT_OF_RANGE);
    assert_int_equal(vpri_pab_lookup(pab, PG(100), 1, PAB_ACCESS_READ, NULL),
                     PAB_OUT_OF_RANGE);
    assert_int_equal(vpri_pab_lookup(pab, PG(100), 0, PAB_ACCESS_READ, NULL),
                     PAB_OUT_OF_RANGE);
    /* Wrapping around the top of the address space */
    assert_int_equal(vpri_pab_lookup(pab, PG(1), UINT64_MAX, PAB_ACCESS_READ,
                                NULL), PAB_OUT_OF_RANGE);
    assert_int_equal(vpri_pab_lookup(pab, UINT64_MAX, 2, PAB_ACCESS_READ, NULL),
                     PAB_OUT_OF_RANGE);
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.out_of_range, 5);
    assert_int_equal(st.faults, 0);

    assert_int_equal(vpri_pab_set_range(pab, 100, 1, PAB_READ_WRITE), -ERANGE);
    assert_int_equal(vpri_pab_set_range(pab, 99, 2, PAB_READ_WRITE), -ERANGE);
    assert_int_equal(vpri_pab_set_range(pab, 1, UINT64_MAX, PAB_READ_WRITE),
                     -ERANGE);
    assert_int_equal(vpri_pab_raise_range(pab, 100, 1, PAB_READ_WRITE), -ERANGE);
    assert_int_equal(vpri_pab_lower_range(pab, 50, 51, PAB_NOT_PRESENT), -ERANGE);
    /* Refused updates change nothing */
    assert_int_equal(vpri_pab_get(pab, 99), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_get(pab, 50), PAB_READ_WRITE);
    assert_int_equal(vpri_pab_get(pab, 100), PAB_NOT_PRESENT);
    vpri_pab_free(pab);
}

static void test_dma_and_fence_single_thread(void **state)
{
    PaBitmap *pab = vpri_pab_new(32);
    PabResult r = PAB_OUT_OF_RANGE;
    uint64_t fault = 0;
    PabDmaToken t;
    PabStats st;

    (void)state;
    vpri_pab_set_range(pab, 0, 32, PAB_READ_WRITE);
    t = vpri_pab_dma_begin(pab, PG(3), 64, PAB_ACCESS_WRITE, &r, &fault);
    assert_int_equal(r, PAB_OK);
    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.dma_inflight, 1);
    vpri_pab_dma_end(pab, t);

    /* A fence with nothing in flight returns at once */
    vpri_pab_lower_range(pab, 3, 1, PAB_READ_ONLY);
    vpri_pab_fence(pab);
    vpri_pab_fence(pab);
    t = vpri_pab_dma_begin(pab, PG(3), 64, PAB_ACCESS_WRITE, &r, &fault);
    assert_int_equal(r, PAB_FAULT);
    assert_int_equal(fault, PG(3));
    vpri_pab_dma_end(pab, t);

    vpri_pab_get_stats(pab, &st);
    assert_int_equal(st.dma_inflight, 0);
    assert_int_equal(st.fences, 2);
    vpri_pab_free(pab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_new_limits),
        cmocka_unit_test(test_set_all_transitions),
        cmocka_unit_test(test_raise),
        cmocka_unit_test(test_lower),
        cmocka_unit_test(test_reserved_is_error),
        cmocka_unit_test(test_ranges_cross_words),
        cmocka_unit_test(test_multi_page_lookup),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_dma_and_fence_single_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
