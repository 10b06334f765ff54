/*
 * Unit tests for the vdpa-mgmt instance table
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hw/vdpa-mgmt/core/vdpa-table.h"

static void test_limits(void **state)
{
    VdpaTable t;

    assert_int_equal(vdpa_table_init(&t, 0), -1);
    assert_int_equal(vdpa_table_init(&t, VDPA_TABLE_MAX + 1), -1);
    assert_int_equal(vdpa_table_init(&t, 1), 0);
    assert_int_equal(vdpa_table_alloc(&t, &t), 1);
    assert_int_equal(vdpa_table_alloc(&t, &t), 0);
    assert_int_equal(vdpa_table_alloc(&t, NULL), 0);
    assert_ptr_equal(vdpa_table_get(&t, 1), &t);
    assert_null(vdpa_table_get(&t, 0));
    assert_null(vdpa_table_get(&t, 2));
    assert_null(vdpa_table_get(&t, UINT64_MAX));
    assert_ptr_equal(vdpa_table_remove(&t, 1), &t);
    /* Double remove: nothing there */
    assert_null(vdpa_table_remove(&t, 1));
    assert_null(vdpa_table_remove(&t, 0));
    assert_null(vdpa_table_remove(&t, 7));
    assert_int_equal(t.count, 0);
    vdpa_table_destroy(&t);
    (void)state;
}

/* Fill 65,536 ids, one more fails, and the ids are exactly 1..65536 */
static void test_full_table(void **state)
{
    enum { N = 65536 };
    VdpaTable t;
    static uint8_t seen[N + 1];
    static int objs[N + 1];

    memset(seen, 0, sizeof(seen));
    assert_int_equal(vdpa_table_init(&t, N), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t id = vdpa_table_alloc(&t, &objs[i]);

        assert_true(id >= 1 && id <= N);
        assert_false(seen[id]);
        seen[id] = 1;
        assert_ptr_equal(vdpa_table_get(&t, id), &objs[i]);
    }
    assert_int_equal(t.count, N);
    assert_int_equal(vdpa_table_alloc(&t, &objs[0]), 0);
    for (uint32_t id = 1; id <= N; id++) {
        assert_non_null(vdpa_table_remove(&t, id));
    }
    assert_int_equal(t.count, 0);
    assert_int_equal(vdpa_table_next(&t, 0), 0);
    vdpa_table_destroy(&t);
    (void)state;
}

/* A freed id comes back only after all the other free ids */
static void test_fifo_reuse(void **state)
{
    VdpaTable t;
    int a;

    assert_int_equal(vdpa_table_init(&t, 4), 0);
    assert_int_equal(vdpa_table_alloc(&t, &a), 1);
    assert_int_equal(vdpa_table_alloc(&t, &a), 2);
    assert_non_null(vdpa_table_remove(&t, 1));
    assert_int_equal(vdpa_table_alloc(&t, &a), 3);
    assert_int_equal(vdpa_table_alloc(&t, &a), 4);
    assert_int_equal(vdpa_table_alloc(&t, &a), 1);
    assert_int_equal(vdpa_table_alloc(&t, &a), 0);
    vdpa_table_destroy(&t);
    (void)state;
}

static void test_next_and_restore(void **state)
{
    VdpaTable t, r;
    int a;

    assert_int_equal(vdpa_table_init(&t, 100), 0);
    for (int i = 0; i < 100; i++) {
        vdpa_table_alloc(&t, &a);
    }
    for (uint32_t id = 1; id <= 100; id++) {
        if (id % 7) {
            vdpa_table_remove(&t, id);
        }
    }
    assert_int_equal(vdpa_table_next(&t, 0), 7);
    assert_int_equal(vdpa_table_next(&t, 8), 14);
    assert_int_equal(vdpa_table_next(&t, 99), 0);
    assert_int_equal(vdpa_table_next(&t, 1000), 0);

    /* Rebuild the same set elsewhere, as the migration target does */
    assert_int_equal(vdpa_table_init(&r, 100), 0);
    for (uint32_t id = vdpa_table_next(&t, 0); id;
         id = vdpa_table_next(&t, id + 1)) {
        assert_int_equal(vdpa_table_insert_at(&r, id, &a), 0);
    }
    assert_int_equal(vdpa_table_insert_at(&r, 7, &a), -1);
    assert_int_equal(vdpa_table_insert_at(&r, 0, &a), -1);
    assert_int_equal(vdpa_table_insert_at(&r, 101, &a), -1);
    vdpa_table_rebuild_free(&r);
    assert_int_equal(r.count, 14);
    /* Every free id is handed out once, and never a live one */
    for (int i = 0; i < 86; i++) {
        uint32_t id = vdpa_table_alloc(&r, &a);

        assert_true(id != 0 && id % 7 != 0);
    }
    assert_int_equal(vdpa_table_alloc(&r, &a), 0);
    vdpa_table_destroy(&r);
    vdpa_table_destroy(&t);
    (void)state;
}

/* Random churn against a reference bitmap */
static void test_churn(void **state)
{
    enum { N = 1000 };
    VdpaTable t;
    static int obj[N + 1];
    uint8_t live[N + 1] = { 0 };
    unsigned nlive = 0;

    srand(1);
    assert_int_equal(vdpa_table_init(&t, N), 0);
    for (int step = 0; step < 200000; step++) {
        if (rand() % 2) {
            uint32_t id = vdpa_table_alloc(&t, &obj[0]);

            if (nlive == N) {
                assert_int_equal(id, 0);
            } else {
                assert_true(id && !live[id]);
                live[id] = 1;
                nlive++;
            }
        } else {
            uint32_t id = (uint32_t)(rand() % (N + 2));
            void *p = vdpa_table_remove(&t, id);

            assert_int_equal(p != NULL, id >= 1 && id <= N && live[id]);
            if (p) {
                live[id] = 0;
                nlive--;
            }
        }
        assert_int_equal(t.count, nlive);
    }
    vdpa_table_destroy(&t);
    (void)state;
}

/*
 * vdpa_table_next() is indexed: in the largest table, finding the next
 * live id reads at most one word of live bits and one summary word per
 * 4,096 ids, wherever that id is (LIST and migration use it per id).
 */
static void test_next_is_bounded(void **state)
{
    const uint64_t bound = 3 + VDPA_TABLE_MAX / 4096;
    VdpaTable t;
    int a;

    assert_int_equal(vdpa_table_init(&t, VDPA_TABLE_MAX), 0);
    assert_int_equal(vdpa_table_insert_at(&t, 1, &a), 0);
    assert_int_equal(vdpa_table_insert_at(&t, VDPA_TABLE_MAX, &a), 0);
    vdpa_table_rebuild_free(&t);

    t.words_scanned = 0;
    assert_int_equal(vdpa_table_next(&t, 2), VDPA_TABLE_MAX);
    assert_true(t.words_scanned <= bound);
    t.words_scanned = 0;
    assert_int_equal(vdpa_table_next(&t, 1), 1);
    assert_true(t.words_scanned <= bound);
    assert_non_null(vdpa_table_remove(&t, VDPA_TABLE_MAX));
    t.words_scanned = 0;
    assert_int_equal(vdpa_table_next(&t, 2), 0);
    assert_true(t.words_scanned <= bound);

    /* Every live id is found, in order, across word boundaries */
    for (uint32_t id = 60; id < 70; id++) {
        vdpa_table_insert_at(&t, id, &a);
    }
    vdpa_table_insert_at(&t, 4096 * 64 + 5, &a);
    assert_int_equal(vdpa_table_next(&t, 2), 60);
    assert_int_equal(vdpa_table_next(&t, 64), 64);
    assert_int_equal(vdpa_table_next(&t, 70), 4096 * 64 + 5);
    assert_int_equal(vdpa_table_next(&t, 4096 * 64 + 6), 0);
    vdpa_table_destroy(&t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_fifo_reuse),
        cmocka_unit_test(test_next_and_restore),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_next_is_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
