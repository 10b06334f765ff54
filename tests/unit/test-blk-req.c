/*
 * Unit tests for the pure checks of a virtio-blk request
 * (hw/iolab-virtio/core/blk-req.c): chain shape, where the data lies,
 * the read/write limits, and the bounce-memory budget.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/iolab-virtio/core/blk-req.h"

static VirtqElem *elem;

static int setup(void **state)
{
    (void)state;
    elem = calloc(1, sizeof(*elem));
    return elem ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(elem);
    return 0;
}

static void add_seg(uint64_t addr, uint32_t len, bool write)
{
    elem->seg[elem->nseg++] = (VirtqSeg) {
        .addr = addr, .len = len, .write = write,
    };
    if (write) {
        elem->in_len += len;
    } else {
        elem->out_len += len;
    }
}

static void reset_elem(void)
{
    memset(elem, 0, sizeof(*elem));
}

static void test_chain_shape(void **state)
{
    (void)state;
    reset_elem();
    add_seg(0x1000, 16, false);
    assert_false(iolab_blk_chain_ok(elem));     /* no status byte */
    add_seg(0x2000, 1, true);
    assert_true(iolab_blk_chain_ok(elem));

    reset_elem();
    add_seg(0x1000, 15, false);                 /* header one byte short */
    add_seg(0x2000, 1, true);
    assert_false(iolab_blk_chain_ok(elem));

    /* A header split over two segments is still a header */
    reset_elem();
    add_seg(0x1000, 8, false);
    add_seg(0x3000, 8, false);
    add_seg(0x2000, 1, true);
    assert_true(iolab_blk_chain_ok(elem));
}

static void test_data_of_write(void **state)
{
    uint32_t nseg = 99;

    (void)state;

    /* header, 3 data segments, status */
    reset_elem();
    add_seg(0x1000, 16, false);
    add_seg(0x10000, 4096, false);
    add_seg(0x20000, 512, false);
    add_seg(0x30000, 1024, false);
    add_seg(0x2000, 1, true);
    assert_int_equal(iolab_blk_data_len(elem, false, &nseg), 5632);
    assert_int_equal(nseg, 3);

    /* header and data in one segment: one data segment */
    reset_elem();
    add_seg(0x1000, 16 + 4096, false);
    add_seg(0x2000, 1, true);
    assert_int_equal(iolab_blk_data_len(elem, false, &nseg), 4096);
    assert_int_equal(nseg, 1);

    /* nothing after the header */
    reset_elem();
    add_seg(0x1000, 16, false);
    add_seg(0x2000, 1, true);
    assert_int_equal(iolab_blk_data_len(elem, false, &nseg), 0);
    assert_int_equal(nseg, 0);
}

static void test_data_of_read(void **state)
{
    uint32_t nseg = 99;

    (void)state;

    reset_elem();
    add_seg(0x1000, 16, false);
    add_seg(0x10000, 4096, true);
    add_seg(0x20000, 4096, true);
    add_seg(0x2000, 1, true);
    assert_int_equal(iolab_blk_data_len(elem, true, &nseg), 8192);
    assert_int_equal(nseg, 2);

    /* data and status byte in one segment */
    reset_elem();
    add_seg(0x1000, 16, false);
    add_seg(0x10000, 513, true);
    assert_int_equal(iolab_blk_data_len(elem, true, &nseg), 512);
    assert_int_equal(nseg, 1);
}

static const IolabBlkLimits lim = {
    .capacity = 1000, .max_data = 64 * 1024, .seg_max = 4,
};

static void test_check_rw(void **state)
{
    IolabBlkLimits ro = lim;

    (void)state;

    assert_null(iolab_blk_check_rw(&lim, true, 0, 4096, 1));
    assert_null(iolab_blk_check_rw(&lim, false, 992, 4096, 4));
    /* the last sector, and one past it */
    assert_null(iolab_blk_check_rw(&lim, true, 999, 512, 1));
    assert_non_null(iolab_blk_check_rw(&lim, true, 1000, 512, 1));
    assert_null(iolab_blk_check_rw(&lim, true, 1000, 0, 0));
    assert_non_null(iolab_blk_check_rw(&lim, true, 1001, 0, 0));
    /* a sector number whose byte offset would wrap */
    assert_non_null(iolab_blk_check_rw(&lim, true, UINT64_MAX, 512, 1));
    assert_non_null(iolab_blk_check_rw(&lim, true, 0, 511, 1));
    assert_non_null(iolab_blk_check_rw(&lim, true, 0, 64 * 1024 + 512, 1));
    assert_null(iolab_blk_check_rw(&lim, true, 0, 64 * 1024, 4));
    assert_string_equal(iolab_blk_check_rw(&lim, true, 0, 5 * 512, 5),
                        "more data segments than seg_max");
    ro.read_only = true;
    assert_null(iolab_blk_check_rw(&ro, true, 0, 512, 1));
    assert_non_null(iolab_blk_check_rw(&ro, false, 0, 512, 1));
    ro.read_only = false;
    ro.seg_max = 0;                 /* no limit */
    assert_null(iolab_blk_check_rw(&ro, true, 0, 100 * 512, 100));
}

static void test_budget(void **state)
{
    IolabBlkBudget b;

    (void)state;

    iolab_blk_budget_init(&b, 1000);
    assert_true(iolab_blk_budget_take(&b, 600));
    assert_true(iolab_blk_budget_take(&b, 400));
    assert_int_equal(b.used, 1000);
    assert_false(iolab_blk_budget_take(&b, 1));     /* at the cap */
    assert_int_equal(b.used, 1000);
    assert_int_equal(b.stalls, 1);
    iolab_blk_budget_give(&b, 600);
    assert_true(iolab_blk_budget_take(&b, 600));
    iolab_blk_budget_give(&b, 600);
    iolab_blk_budget_give(&b, 400);
    assert_int_equal(b.used, 0);
    assert_int_equal(b.peak, 1000);

    /* Larger than the cap: only alone, so it cannot wedge a queue */
    assert_true(iolab_blk_budget_take(&b, 5000));
    assert_false(iolab_blk_budget_take(&b, 1));
    iolab_blk_budget_give(&b, 5000);
    assert_true(iolab_blk_budget_take(&b, 1));
    assert_false(iolab_blk_budget_take(&b, 5000));
    /* No sum can wrap */
    assert_false(iolab_blk_budget_take(&b, UINT64_MAX));
    iolab_blk_budget_give(&b, 1);
    /* Giving back more than was taken does not underflow */
    iolab_blk_budget_give(&b, 10);
    assert_int_equal(b.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_of_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_of_read, setup, teardown),
        cmocka_unit_test(test_check_rw),
        cmocka_unit_test(test_budget),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
