/*
 * Unit tests for the vdpa-mgmt device-side translation cache
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hw/vdpa-mgmt/core/vdpa-iotlb.h"

#define PG VDPA_IOTLB_PAGE_SIZE
#define RW (VDPA_IOTLB_R | VDPA_IOTLB_W)

static void test_geometry(void **state)
{
    VdpaIotlb t;

    assert_int_equal(vdpa_iotlb_init(&t, 4096, 4), 0);
    assert_int_equal(vdpa_iotlb_capacity(&t), 4096);
    vdpa_iotlb_destroy(&t);
    /* Rounded down to a power-of-2 number of sets */
    assert_int_equal(vdpa_iotlb_init(&t, 1000, 4), 0);
    assert_int_equal(vdpa_iotlb_capacity(&t), 512);
    vdpa_iotlb_destroy(&t);
    assert_int_equal(vdpa_iotlb_init(&t, 16, 0), -1);
    assert_int_equal(vdpa_iotlb_init(&t, 2, 4), -1);
    assert_int_equal(vdpa_iotlb_init(&t, VDPA_IOTLB_MAX_ENTRIES + 1, 4), -1);
    (void)state;
}

static void test_disabled(void **state)
{
    VdpaIotlb t;
    uint64_t pa;

    assert_int_equal(vdpa_iotlb_init(&t, 0, 4), 0);
    assert_int_equal(vdpa_iotlb_capacity(&t), 0);
    vdpa_iotlb_insert(&t, 1, 0x1000, 0x5000, RW);
    assert_false(vdpa_iotlb_lookup(&t, 1, 0x1000, false, &pa));
    assert_int_equal(vdpa_iotlb_invalidate_pasid(&t, 1), 0);
    vdpa_iotlb_destroy(&t);
    (void)state;
}

static void test_lookup_insert(void **state)
{
    VdpaIotlb t;
    uint64_t pa = 0;

    assert_int_equal(vdpa_iotlb_init(&t, 64, 4), 0);
    assert_false(vdpa_iotlb_lookup(&t, 5, 0x10123, false, &pa));
    vdpa_iotlb_insert(&t, 5, 0x10000, 0xabc000, RW);
    assert_true(vdpa_iotlb_lookup(&t, 5, 0x10123, false, &pa));
    assert_int_equal(pa, 0xabc123);
    assert_true(vdpa_iotlb_lookup(&t, 5, 0x10fff, true, &pa));
    assert_int_equal(pa, 0xabcfff);
    /* Another page, another PASID: misses */
    assert_false(vdpa_iotlb_lookup(&t, 5, 0x11000, false, &pa));
    assert_false(vdpa_iotlb_lookup(&t, 6, 0x10123, false, &pa));
    /* Read-only entry: a write misses (the IOMMU decides) */
    vdpa_iotlb_insert(&t, 6, 0x20000, 0x7000, VDPA_IOTLB_R);
    assert_true(vdpa_iotlb_lookup(&t, 6, 0x20010, false, &pa));
    assert_false(vdpa_iotlb_lookup(&t, 6, 0x20010, true, &pa));
    /* Refused translations are not cached */
    vdpa_iotlb_insert(&t, 7, 0x30000, 0x8000, 0);
    assert_false(vdpa_iotlb_lookup(&t, 7, 0x30000, false, &pa));
    /* Re-inserting a page replaces it, the count does not grow */
    assert_int_equal(t.count, 2);
    vdpa_iotlb_insert(&t, 5, 0x10000, 0xdef000, VDPA_IOTLB_R);
    assert_int_equal(t.count, 2);
    assert_true(vdpa_iotlb_lookup(&t, 5, 0x10004, false, &pa));
    assert_int_equal(pa, 0xdef004);
    assert_int_equal(t.stats.hits, 4);
    assert_int_equal(t.stats.misses, 5);
    vdpa_iotlb_destroy(&t);
    (void)state;
}

static void test_bounded(void **state)
{
    VdpaIotlb t;
    uint64_t pa;
    uint32_t present = 0;

    assert_int_equal(vdpa_iotlb_init(&t, 64, 4), 0);
    for (uint64_t i = 0; i < 1000; i++) {
        vdpa_iotlb_insert(&t, 1, i * PG, (i + 100) * PG, RW);
    }
    assert_true(t.count <= 64);
    assert_int_equal(t.stats.evictions, 1000 - t.count);
    /* What is still there translates right */
    for (uint64_t i = 0; i < 1000; i++) {
        if (vdpa_iotlb_lookup(&t, 1, i * PG + 8, false, &pa)) {
            assert_int_equal(pa, (i + 100) * PG + 8);
            present++;
        }
    }
    assert_int_equal(present, t.count);
    /* The most recent insert is always there */
    assert_true(vdpa_iotlb_lookup(&t, 1, 999 * PG, false, &pa));
    vdpa_iotlb_destroy(&t);
    (void)state;
}

static void test_invalidate_range(void **state)
{
    VdpaIotlb t;
    uint64_t pa;

    assert_int_equal(vdpa_iotlb_init(&t, 1024, 4), 0);
    for (uint64_t i = 0; i < 32; i++) {
        vdpa_iotlb_insert(&t, 1, i * PG, i * PG, RW);
        vdpa_iotlb_insert(&t, 2, i * PG, i * PG, RW);
    }
    assert_int_equal(t.count, 64);
    /* A few pages of PASID 1, unaligned bounds: whole pages 3..5 */
    assert_int_equal(vdpa_iotlb_invalidate(&t, 1, 3 * PG + 5, 5 * PG + 1), 3);
    for (uint64_t i = 0; i < 32; i++) {
        assert_int_equal(vdpa_iotlb_lookup(&t, 1, i * PG, false, &pa),
                         i < 3 || i > 5);
        assert_true(vdpa_iotlb_lookup(&t, 2, i * PG, false, &pa));
    }
    /* A large range of PASID 2 (scanned, not page by page) */
    assert_int_equal(vdpa_iotlb_invalidate(&t, 2, 8 * PG, 1ULL << 40), 24);
    assert_true(vdpa_iotlb_lookup(&t, 2, 7 * PG, false, &pa));
    assert_false(vdpa_iotlb_lookup(&t, 2, 8 * PG, false, &pa));
    /* Any PASID, one page */
    assert_int_equal(vdpa_iotlb_invalidate(&t, VDPA_IOTLB_ANY_PASID, 0, 0),
                     2);
    assert_false(vdpa_iotlb_lookup(&t, 1, 0, false, &pa));
    assert_false(vdpa_iotlb_lookup(&t, 2, 0, false, &pa));
    /* Nothing there: nothing dropped */
    assert_int_equal(vdpa_iotlb_invalidate(&t, 3, 0, UINT64_MAX), 0);
    assert_int_equal(t.count, 64 - 3 - 24 - 2);
    assert_int_equal(t.stats.dropped, 3 + 24 + 2);
    assert_int_equal(t.stats.invalidations, 4);
    vdpa_iotlb_destroy(&t);
    (void)state;
}

static void test_invalidate_pasid(void **state)
{
    VdpaIotlb t;
    uint64_t pa;

    assert_int_equal(vdpa_iotlb_init(&t, 1024, 4), 0);
    for (uint64_t i = 0; i < 50; i++) {
        vdpa_iotlb_insert(&t, i % 5, i * PG, i * PG, RW);
    }
    assert_int_equal(vdpa_iotlb_invalidate_pasid(&t, 3), 10);
    for (uint64_t i = 0; i < 50; i++) {
        assert_int_equal(vdpa_iotlb_lookup(&t, i % 5, i * PG, false, &pa),
                         i % 5 != 3);
    }
    vdpa_iotlb_flush(&t);
    assert_int_equal(t.count, 0);
    for (uint64_t i = 0; i < 50; i++) {
        assert_false(vdpa_iotlb_lookup(&t, i % 5, i * PG, false, &pa));
    }
    vdpa_iotlb_destroy(&t);
    (void)state;
}

/* Random inserts and invalidations against a flat reference */
static void test_random_reference(void **state)
{
    enum { PASIDS = 4, PAGES = 256 };
    static uint64_t ref[PASIDS][PAGES];     /* pa + 1, 0 = not cached */
    VdpaIotlb t;
    uint64_t pa;

    srand(7);
    assert_int_equal(vdpa_iotlb_init(&t, 256, 4), 0);
    for (int round = 0; round < 20000; round++) {
        uint32_t p = rand() % PASIDS;
        uint64_t pg = rand() % PAGES;

        switch (rand() % 8) {
        case 0: {
            uint64_t n = rand() % 40;

            vdpa_iotlb_invalidate(&t, p, pg * PG, (pg + n) * PG + PG - 1);
            for (uint64_t i = pg; i <= pg + n && i < PAGES; i++) {
                ref[p][i] = 0;
            }
            break;
        }
        case 1:
            if (rand() % 50 == 0) {
                vdpa_iotlb_invalidate_pasid(&t, p);
                for (uint64_t i = 0; i < PAGES; i++) {
                    ref[p][i] = 0;
                }
            }
            break;
        default: {
            uint64_t target = (uint64_t)(rand() % 100000) * PG;

            vdpa_iotlb_insert(&t, p, pg * PG, target, RW);
            ref[p][pg] = target + 1;
            break;
        }
        }
        /* A hit must agree with the reference; a miss is always allowed */
        pg = rand() % PAGES;
        if (vdpa_iotlb_lookup(&t, p, pg * PG + 3, false, &pa)) {
            assert_true(ref[p][pg] != 0);
            assert_int_equal(pa, ref[p][pg] - 1 + 3);
        }
    }
    vdpa_iotlb_destroy(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_lookup_insert),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_invalidate_range),
        cmocka_unit_test(test_invalidate_pasid),
        cmocka_unit_test(test_random_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
