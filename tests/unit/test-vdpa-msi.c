/*
 * Unit tests for the vdpa-mgmt per-queue MSI message store
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw/vdpa-mgmt/core/vdpa-msi.h"

static void test_unset_drops(void **state)
{
    VdpaMsiMsg m;

    vdpa_msi_clear(&m);
    assert_false(vdpa_msi_fire(&m));
    assert_false(vdpa_msi_pending(&m));
    assert_false(vdpa_msi_unmask(&m));
    (void)state;
}

static void test_set_and_fire(void **state)
{
    VdpaMsiMsg m;
    bool now;

    vdpa_msi_clear(&m);
    assert_true(vdpa_msi_set(&m, 0xfee00000, 0x4021, false, 39, &now));
    assert_false(now);
    assert_true(vdpa_msi_fire(&m));
    assert_int_equal(m.addr, 0xfee00000);
    assert_int_equal(m.data, 0x4021);
    (void)state;
}

static void test_bad_address(void **state)
{
    VdpaMsiMsg m;
    bool now;

    vdpa_msi_clear(&m);
    assert_true(vdpa_msi_set(&m, 0x1000, 1, false, 39, &now));
    assert_false(vdpa_msi_set(&m, 0, 2, false, 39, &now));
    assert_false(vdpa_msi_set(&m, 0x1002, 2, false, 39, &now));
    assert_false(vdpa_msi_set(&m, 1ULL << 39, 2, false, 39, &now));
    assert_true(vdpa_msi_set(&m, 1ULL << 60, 3, false, 64, &now));
    /* Rejected stores changed nothing */
    vdpa_msi_clear(&m);
    assert_true(vdpa_msi_set(&m, 0x1000, 1, false, 39, &now));
    assert_false(vdpa_msi_set(&m, 0x1001, 2, true, 39, &now));
    assert_int_equal(m.addr, 0x1000);
    assert_int_equal(m.data, 1);
    assert_true(vdpa_msi_fire(&m));
    (void)state;
}

static void test_mask_pending(void **state)
{
    VdpaMsiMsg m;
    bool now;

    vdpa_msi_clear(&m);
    assert_true(vdpa_msi_set(&m, 0x2000, 5, true, 39, &now));
    assert_false(vdpa_msi_fire(&m));
    assert_true(vdpa_msi_pending(&m));
    assert_false(vdpa_msi_fire(&m));
    /* One pending interrupt however many fired while masked */
    assert_true(vdpa_msi_unmask(&m));
    assert_false(vdpa_msi_pending(&m));
    assert_false(vdpa_msi_unmask(&m));
    assert_true(vdpa_msi_fire(&m));
    (void)state;
}

/* Re-programming a masked, pending message */
static void test_reprogram_pending(void **state)
{
    VdpaMsiMsg m;
    bool now;

    vdpa_msi_clear(&m);
    assert_true(vdpa_msi_set(&m, 0x2000, 5, true, 39, &now));
    assert_false(vdpa_msi_fire(&m));
    /* Still masked: stays pending, at the new address */
    assert_true(vdpa_msi_set(&m, 0x3000, 6, true, 39, &now));
    assert_false(now);
    assert_true(vdpa_msi_pending(&m));
    /* Unmasked by the store: delivered now, to the new message */
    assert_true(vdpa_msi_set(&m, 0x4000, 7, false, 39, &now));
    assert_true(now);
    assert_false(vdpa_msi_pending(&m));
    assert_int_equal(m.addr, 0x4000);
    assert_int_equal(m.data, 7);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_drops),
        cmocka_unit_test(test_set_and_fire),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_mask_pending),
        cmocka_unit_test(test_reprogram_pending),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
