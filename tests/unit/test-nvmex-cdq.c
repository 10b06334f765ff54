/*
 * Unit tests of the Controller Data Queue ring
 * (hw/nvme-export/core/nvmex-cdq.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "hw/nvme-export/core/nvmex-cdq.h"

static void test_init_sizes(void **state)
{
    NvmexCdq q;

    (void)state;
    assert_false(nvmex_cdq_init(&q, 0));
    assert_false(nvmex_cdq_init(&q, 8 * 3));       /* 3 entries */
    assert_false(nvmex_cdq_init(&q, 8 * 4 + 1));   /* not whole entries */
    assert_true(nvmex_cdq_init(&q, 8 * 4));
    assert_int_equal(q.nentries, 4);
    assert_int_equal(q.phase, 1);
    assert_int_equal(nvmex_cdq_used(&q), 0);
    /* 4 slots: one stays empty, one is kept for the last entry */
    assert_int_equal(nvmex_cdq_room(&q), 2);
}

/* The tail wraps and the phase tag inverts; the host frees by head */
static void test_wrap_and_phase(void **state)
{
    NvmexCdq q;
    NvmexCdqEntry e;
    bool fired;
    uint32_t slot;

    (void)state;
    assert_true(nvmex_cdq_init(&q, 8 * 4));
    q.first_pending = true;
    for (int i = 0; i < 3; i++) {
        memset(&e, 0, sizeof(e));
        slot = nvmex_cdq_push(&q, &e, &fired);
        assert_int_equal(slot, i);
        assert_int_equal(e.phase, 1);
        assert_int_equal(e.esa, i == 0 ? NVMEX_LM_ESA_FIRST
                                       : NVMEX_LM_ESA_NONE);
        assert_false(fired);
    }
    assert_false(nvmex_cdq_has_free_slot(&q));
    assert_int_equal(nvmex_cdq_room(&q), 0);
    /* The head may not pass the tail */
    assert_false(nvmex_cdq_set_head(&q, 4));
    assert_true(nvmex_cdq_set_head(&q, 2));
    assert_false(nvmex_cdq_set_head(&q, 1));       /* backwards = past tail */
    assert_true(nvmex_cdq_set_head(&q, 3));
    assert_int_equal(nvmex_cdq_used(&q), 0);

    memset(&e, 0, sizeof(e));
    assert_int_equal(nvmex_cdq_push(&q, &e, &fired), 3);
    assert_int_equal(e.phase, 1);
    assert_int_equal(q.tail, 0);
    assert_int_equal(q.phase, 0);                  /* second pass */
    memset(&e, 0, sizeof(e));
    assert_int_equal(nvmex_cdq_push(&q, &e, &fired), 0);
    assert_int_equal(e.phase, 0);
}

/* A last entry keeps its ESA even when it is also the first */
static void test_first_and_last(void **state)
{
    NvmexCdq q;
    NvmexCdqEntry e = { .esa = NVMEX_LM_ESA_LAST_LOGGING_STOPPED };
    bool fired;

    (void)state;
    assert_true(nvmex_cdq_init(&q, 8 * 8));
    q.first_pending = true;
    nvmex_cdq_push(&q, &e, &fired);
    assert_int_equal(e.esa, NVMEX_LM_ESA_LAST_LOGGING_STOPPED);
    assert_false(q.first_pending);
}

static void test_tail_pointer_trigger(void **state)
{
    NvmexCdq q;
    NvmexCdqEntry e;
    bool fired;

    (void)state;
    assert_true(nvmex_cdq_init(&q, 8 * 8));
    q.tpt_enabled = true;
    q.tpt = 2;
    memset(&e, 0, sizeof(e));
    nvmex_cdq_push(&q, &e, &fired);
    assert_false(fired);
    nvmex_cdq_push(&q, &e, &fired);
    assert_true(fired);
    assert_false(q.tpt_enabled);                   /* one shot */
}

static void test_entry_codec(void **state)
{
    NvmexCdqEntry e = {
        .nsid = 7, .nlb = 0x12345, .slba = 0x1122334455667788ull,
        .phase = 1, .esa = NVMEX_LM_ESA_LAST_QUEUE_FULL,
        .lbacir = NVMEX_LBACIR_ALL_CHANGED,
    }, d;
    uint8_t b[NVMEX_CDQ_ENTRY_SIZE];

    (void)state;
    nvmex_cdq_entry_encode(&e, b);
    assert_int_equal(b[0], 7);
    assert_int_equal(b[4], 0x45);
    assert_int_equal(b[8], 0x88);
    assert_int_equal(b[15], 0x11);
    assert_int_equal(b[31], 1 | 7 << 1 | 1 << 6);
    nvmex_cdq_entry_decode(b, &d);
    assert_int_equal(d.nsid, e.nsid);
    assert_int_equal(d.nlb, e.nlb);
    assert_int_equal(d.slba, e.slba);
    assert_int_equal(d.phase, e.phase);
    assert_int_equal(d.esa, e.esa);
    assert_int_equal(d.lbacir, e.lbacir);
}

/*
 * Create CDQ's CDW11: the spec's CQS, and the encoding of libnvme before
 * 1.15 (CNTLID in bits 15:0 under PC), read only where CQS is 0.
 */
static void test_create_cntlids(void **state)
{
    uint16_t id[2];
    bool pc;

    (void)state;
    /* the spec: CNTLID 2 in CQS, PC */
    assert_int_equal(nvmex_cdq_create_cntlids(2u << 16 | 1, id, &pc), 1);
    assert_int_equal(id[0], 2);
    assert_true(pc);
    /* the spec with PC 0: refused by the caller for PC, not read as old */
    assert_int_equal(nvmex_cdq_create_cntlids(5u << 16, id, &pc), 1);
    assert_int_equal(id[0], 5);
    assert_false(pc);
    /* CNTLID 0 and PC: the spec's reading (the old one would be 0 or 1) */
    assert_int_equal(nvmex_cdq_create_cntlids(1, id, &pc), 1);
    assert_int_equal(id[0], 0);
    assert_true(pc);
    /* libnvme 1.13 naming CNTLID 2 sends 3; naming 3 sends 3 too */
    assert_int_equal(nvmex_cdq_create_cntlids(2 | 1, id, &pc), 2);
    assert_int_equal(id[0], 3);
    assert_int_equal(id[1], 2);
    assert_true(pc);
    /* ... and naming 4 sends 5 */
    assert_int_equal(nvmex_cdq_create_cntlids(4 | 1, id, &pc), 2);
    assert_int_equal(id[0], 5);
    assert_int_equal(id[1], 4);
    /* bits 15:1 set without PC: not the old encoding (it always sets PC) */
    assert_int_equal(nvmex_cdq_create_cntlids(4, id, &pc), 1);
    assert_int_equal(id[0], 0);
    assert_false(pc);
}

static void test_valid(void **state)
{
    NvmexCdq q;

    (void)state;
    assert_true(nvmex_cdq_init(&q, 8 * 8));
    assert_true(nvmex_cdq_valid(&q));
    q.tail = 8;
    assert_false(nvmex_cdq_valid(&q));
    q.tail = 0;
    q.phase = 2;
    assert_false(nvmex_cdq_valid(&q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_sizes),
        cmocka_unit_test(test_wrap_and_phase),
        cmocka_unit_test(test_first_and_last),
        cmocka_unit_test(test_tail_pointer_trigger),
        cmocka_unit_test(test_entry_codec),
        cmocka_unit_test(test_create_cntlids),
        cmocka_unit_test(test_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
