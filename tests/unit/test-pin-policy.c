/*
 * Unit tests for the DMA pinning policies (none, lru, adp)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/vpri/core/pin-policy.h"

typedef struct Changes {
    unsigned pins, unpins;
    bool pin_before_unpin;      /* a pin came before a later unpin */
    uint64_t held, max_held;
} Changes;

static void on_change(uint64_t page, bool pinned, void *opaque)
{
    Changes *c = opaque;

    (void)page;
    if (pinned) {
        c->pins++;
        c->held++;
        if (c->held > c->max_held) {
            c->max_held = c->held;
        }
    } else {
        if (c->pins) {
            c->pin_before_unpin = true;
        }
        c->unpins++;
        c->held--;
    }
}

static void touch_range(PinPolicy *p, unsigned dev, uint64_t first,
                        uint64_t n)
{
    for (uint64_t i = first; i < first + n; i++) {
        vpri_pin_policy_observe(p, dev, i);
    }
}

static void test_names(void **state)
{
    PinPolicyKind k;
    PinDevKind d;

    (void)state;
    assert_int_equal(vpri_pin_policy_kind_parse("adp", &k), 0);
    assert_int_equal(k, PIN_POLICY_ADP);
    assert_int_equal(vpri_pin_policy_kind_parse("none", &k), 0);
    assert_int_equal(k, PIN_POLICY_NONE);
    assert_int_equal(vpri_pin_policy_kind_parse("LRU", &k), -EINVAL);
    assert_int_equal(vpri_pin_policy_kind_parse(NULL, &k), -EINVAL);
    assert_int_equal(vpri_pin_dev_kind_parse("block", &d), 0);
    assert_int_equal(d, PIN_DEV_BLOCK);
    assert_int_equal(vpri_pin_dev_kind_parse("disk", &d), -EINVAL);
    assert_string_equal(vpri_pin_policy_kind_name(PIN_POLICY_LRU), "lru");
    assert_null(vpri_pin_policy_kind_name((PinPolicyKind)7));
    assert_string_equal(vpri_pin_dev_kind_name(PIN_DEV_NIC), "nic");
}

static void test_limits(void **state)
{
    PinPolicy *p;
    PinPolicyDevStats st;

    (void)state;
    assert_null(vpri_pin_policy_new(PIN_POLICY_LRU, 0, 10));
    assert_null(vpri_pin_policy_new((PinPolicyKind)3, 10, 10));
    p = vpri_pin_policy_new(PIN_POLICY_ADP, 100, 10);
    assert_non_null(p);
    assert_int_equal(vpri_pin_policy_add_device(p, (PinDevKind)5), -EINVAL);
    for (int i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        assert_int_equal(vpri_pin_policy_add_device(p, PIN_DEV_NIC), i);
    }
    assert_int_equal(vpri_pin_policy_add_device(p, PIN_DEV_NIC), -ENOSPC);
    assert_int_equal(vpri_pin_policy_dev_stats(p, PIN_POLICY_MAX_DEVICES, &st),
                     -EINVAL);
    /* Out-of-range pages and devices are ignored. */
    vpri_pin_policy_observe(p, 0, 100);
    vpri_pin_policy_observe(p, 99, 1);
    vpri_pin_policy_fault(p, 0, 1000);
    vpri_pin_policy_epoch(p, NULL, NULL);
    assert_int_equal(vpri_pin_policy_pinned(p), 0);
    assert_false(vpri_pin_policy_is_pinned(p, 100));
    vpri_pin_policy_free(p);
}

static void test_none_pins_nothing(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_NONE, 100, 50);
    Changes c = { 0 };
    int d = vpri_pin_policy_add_device(p, PIN_DEV_NIC);

    (void)state;
    assert_true(d >= 0);
    for (int e = 0; e < 10; e++) {
        touch_range(p, (unsigned)d, 0, 20);
        vpri_pin_policy_epoch(p, on_change, &c);
    }
    assert_int_equal(c.pins, 0);
    assert_int_equal(vpri_pin_policy_pinned(p), 0);
    vpri_pin_policy_free(p);
}

static void test_lru_recent_up_to_budget(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_LRU, 1000, 8);
    Changes c = { 0 };
    int d = vpri_pin_policy_add_device(p, PIN_DEV_BLOCK);

    (void)state;
    touch_range(p, (unsigned)d, 0, 10);
    vpri_pin_policy_epoch(p, on_change, &c);
    assert_int_equal(vpri_pin_policy_pinned(p), 8);
    touch_range(p, (unsigned)d, 100, 5);
    vpri_pin_policy_epoch(p, on_change, &c);
    /* The five newest are pinned, and three of the older ones. */
    assert_int_equal(vpri_pin_policy_pinned(p), 8);
    for (uint64_t i = 100; i < 105; i++) {
        assert_true(vpri_pin_policy_is_pinned(p, i));
    }
    /* Five more, newer still: the first ten are all out now. */
    touch_range(p, (unsigned)d, 200, 5);
    c.pin_before_unpin = false;
    c.pins = c.unpins = 0;
    vpri_pin_policy_epoch(p, on_change, &c);
    for (uint64_t i = 0; i < 10; i++) {
        assert_false(vpri_pin_policy_is_pinned(p, i));
    }
    for (uint64_t i = 200; i < 205; i++) {
        assert_true(vpri_pin_policy_is_pinned(p, i));
    }
    /* Out: the three older ones and two of 100..104; in: 200..204. */
    assert_int_equal(c.unpins, 5);
    assert_int_equal(c.pins, 5);
    /* Unpins are reported first, so the caller never holds more. */
    assert_false(c.pin_before_unpin);
    assert_int_equal(c.max_held, 8);
    vpri_pin_policy_free(p);
}

/*
 * A NIC ring touched now and then, and a block device that streams over
 * many pages: lru's one budget goes to the stream; adp keeps the NIC's part.
 */
static uint64_t nic_pins_after_stream(PinPolicyKind kind)
{
    PinPolicy *p = vpri_pin_policy_new(kind, 10000, 64);
    int nic = vpri_pin_policy_add_device(p, PIN_DEV_NIC);
    int blk = vpri_pin_policy_add_device(p, PIN_DEV_BLOCK);
    uint64_t pinned = 0;

    for (int e = 0; e < 40; e++) {
        if (e % 10 < 3) {
            touch_range(p, (unsigned)nic, 0, 16);
        }
        touch_range(p, (unsigned)blk, 1000 + (uint64_t)e * 50, 50);
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    for (uint64_t i = 0; i < 16; i++) {
        pinned += vpri_pin_policy_is_pinned(p, i);
    }
    vpri_pin_policy_free(p);
    return pinned;
}

static void test_adp_keeps_nic_under_block_churn(void **state)
{
    (void)state;
    assert_int_equal(nic_pins_after_stream(PIN_POLICY_LRU), 0);
    assert_int_equal(nic_pins_after_stream(PIN_POLICY_ADP), 16);
}

/*
 * Block pages reused at a long distance: A every 10 epochs (last at 20),
 * B every 10 (last at 15).  With one pin, adp pins the page due next; lru
 * pins the one touched last, which is due last.
 */
static void test_adp_block_pins_next_due(void **state)
{
    PinPolicy *adp = vpri_pin_policy_new(PIN_POLICY_ADP, 100, 1);
    PinPolicy *lru = vpri_pin_policy_new(PIN_POLICY_LRU, 100, 1);
    PinPolicy *both[2] = { adp, lru };
    enum { A = 7, B = 42 };

    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(vpri_pin_policy_add_device(both[i], PIN_DEV_BLOCK), 0);
    }
    for (int e = 0; e <= 26; e++) {
        for (int i = 0; i < 2; i++) {
            if (e % 10 == 0) {
                vpri_pin_policy_observe(both[i], 0, A);
            }
            if (e % 10 == 5) {
                vpri_pin_policy_observe(both[i], 0, B);
            }
            vpri_pin_policy_epoch(both[i], NULL, NULL);
        }
        if (e == 22) {
            /* B is due at 25, A at 30. */
            assert_true(vpri_pin_policy_is_pinned(adp, B));
            assert_false(vpri_pin_policy_is_pinned(adp, A));
            assert_true(vpri_pin_policy_is_pinned(lru, A));
        }
    }
    /* B came at 25 (next at 35): A, due at 30, is next. */
    assert_true(vpri_pin_policy_is_pinned(adp, A));
    assert_false(vpri_pin_policy_is_pinned(adp, B));
    assert_true(vpri_pin_policy_is_pinned(lru, B));
    vpri_pin_policy_free(adp);
    vpri_pin_policy_free(lru);
}

/*
 * A page seen once has no reuse distance: a block part ranks it behind
 * every page with a predicted next use, by recency, so it only takes share
 * the predictions leave unused (a small working set the device cycles
 * through, like O_DIRECT buffers, is then held as lru would hold it).
 */
static void test_adp_block_one_shot_pages_fill_spare_share(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 10);
    int d = vpri_pin_policy_add_device(p, PIN_DEV_BLOCK);
    uint64_t pinned_reused = 0, pinned_once = 0;

    (void)state;
    for (int e = 0; e < 24; e++) {
        /* pages 0-9 reused every 4 epochs; 10 new pages every epoch */
        if (e % 4 == 0) {
            touch_range(p, (unsigned)d, 0, 10);
        }
        touch_range(p, (unsigned)d, 100 + (uint64_t)e * 10, 10);
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    for (uint64_t pg = 0; pg < 10; pg++) {
        pinned_reused += vpri_pin_policy_is_pinned(p, pg);
    }
    for (uint64_t pg = 100; pg < 340; pg++) {
        pinned_once += vpri_pin_policy_is_pinned(p, pg);
    }
    /* The predicted pages take the whole share. */
    assert_int_equal(pinned_reused, 10);
    assert_int_equal(pinned_once, 0);
    vpri_pin_policy_free(p);

    /* Nothing predictable: the most recent pages fill the share. */
    p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 10);
    d = vpri_pin_policy_add_device(p, PIN_DEV_BLOCK);
    for (int e = 0; e < 10; e++) {
        touch_range(p, (unsigned)d, (uint64_t)e * 10, 10);
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 10);
    for (uint64_t pg = 90; pg < 100; pg++) {
        assert_true(vpri_pin_policy_is_pinned(p, pg));
    }
    vpri_pin_policy_free(p);
}

/*
 * A device cycling over more pages than its share: a page seen once is
 * expected back after the part's usual first reuse gap, so from the
 * second trip on the pins run ahead of the device (lru, holding the pages
 * used last, never has the next one: the loop that defeats it).
 */
static void test_adp_block_seen_once_predicted_from_first_gap(void **state)
{
    enum { POOL = 40, PER_EPOCH = 4, SHARE = 20 };
    PinPolicy *both[2] = {
        vpri_pin_policy_new(PIN_POLICY_ADP, 1000, SHARE),
        vpri_pin_policy_new(PIN_POLICY_LRU, 1000, SHARE),
    };
    unsigned missed[2][4] = { { 0 } };  /* touches of unpinned pages, per trip */

    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(vpri_pin_policy_add_device(both[i], PIN_DEV_BLOCK), 0);
    }
    for (int e = 0; e < 4 * POOL / PER_EPOCH; e++) {
        int trip = e / (POOL / PER_EPOCH);

        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < PER_EPOCH; k++) {
                uint64_t page = (uint64_t)(e * PER_EPOCH + k) % POOL;

                missed[i][trip] += !vpri_pin_policy_is_pinned(both[i], page);
                vpri_pin_policy_observe(both[i], 0, page);
            }
            vpri_pin_policy_epoch(both[i], NULL, NULL);
        }
    }
    /* Trip 1 is all first touches; in trip 2 only the pages due before
     * the first page came back are missed. */
    assert_int_equal(missed[0][0], POOL);
    assert_true(missed[0][1] <= 2 * PER_EPOCH);
    assert_int_equal(missed[0][2], 0);
    assert_int_equal(missed[0][3], 0);
    for (int t = 0; t < 4; t++) {
        assert_int_equal(missed[1][t], POOL);
    }
    for (int i = 0; i < 2; i++) {
        vpri_pin_policy_free(both[i]);
    }
}

/*
 * Pages armed (posted to a NIC, not yet written) are a touch to adp's NIC
 * part; lru and adp's block parts ignore them.
 */
static void test_armed_pages(void **state)
{
    PinPolicy *adp = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 64);
    PinPolicy *lru = vpri_pin_policy_new(PIN_POLICY_LRU, 1000, 64);
    int nic = vpri_pin_policy_add_device(adp, PIN_DEV_NIC);
    int blk = vpri_pin_policy_add_device(adp, PIN_DEV_BLOCK);

    (void)state;
    assert_int_equal(vpri_pin_policy_add_device(lru, PIN_DEV_NIC), 0);
    for (int e = 0; e < 40; e++) {
        for (uint64_t pg = 0; pg < 8; pg++) {
            vpri_pin_policy_armed(adp, (unsigned)nic, 100 + pg);
            vpri_pin_policy_armed(adp, (unsigned)blk, 200 + pg);
            vpri_pin_policy_armed(lru, 0, 100 + pg);
        }
        vpri_pin_policy_epoch(adp, NULL, NULL);
        vpri_pin_policy_epoch(lru, NULL, NULL);
    }
    for (uint64_t pg = 0; pg < 8; pg++) {
        assert_true(vpri_pin_policy_is_pinned(adp, 100 + pg));
        assert_false(vpri_pin_policy_is_pinned(adp, 200 + pg));
        assert_false(vpri_pin_policy_is_pinned(lru, 100 + pg));
    }
    vpri_pin_policy_free(adp);
    vpri_pin_policy_free(lru);
}

static void test_adp_quiet_device_decays(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 64);
    Changes c = { 0 };
    PinPolicyDevStats st;
    int d = vpri_pin_policy_add_device(p, PIN_DEV_NIC);
    int e;

    (void)state;
    for (e = 0; e < 5; e++) {
        touch_range(p, (unsigned)d, 0, 20);
        vpri_pin_policy_epoch(p, on_change, &c);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 20);
    /* A short pause keeps the pins. */
    for (e = 0; e < 20; e++) {
        vpri_pin_policy_epoch(p, on_change, &c);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 20);
    /* A long one releases them. */
    for (e = 0; e < 200; e++) {
        vpri_pin_policy_epoch(p, on_change, &c);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 0);
    assert_int_equal(c.unpins, 20);
    assert_int_equal(vpri_pin_policy_dev_stats(p, (unsigned)d, &st), 0);
    assert_int_equal(st.quiet_epochs, 220);
    assert_true(st.share < 64);
    /* Back to work: faults on the ranked pages win the budget back. */
    for (e = 0; e < 50; e++) {
        touch_range(p, (unsigned)d, 0, 20);
        for (uint64_t i = 0; i < 20; i++) {
            if (!vpri_pin_policy_is_pinned(p, i)) {
                vpri_pin_policy_fault(p, (unsigned)d, i);
            }
        }
        vpri_pin_policy_epoch(p, on_change, &c);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 20);
    vpri_pin_policy_free(p);
}

/*
 * A device quiet from the start (a guest still booting) loses its share
 * to the pool; when it starts, the unheld budget comes back to it even
 * before it faults.
 */
static void test_adp_late_start_gets_budget(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 64);
    PinPolicyDevStats st;
    int d = vpri_pin_policy_add_device(p, PIN_DEV_NIC);

    (void)state;
    for (int e = 0; e < 200; e++) {
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    assert_int_equal(vpri_pin_policy_dev_stats(p, (unsigned)d, &st), 0);
    assert_int_equal(st.share, 0);
    for (int e = 0; e < 20; e++) {
        touch_range(p, (unsigned)d, 100, 40);
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    assert_int_equal(vpri_pin_policy_pinned(p), 40);
    assert_int_equal(vpri_pin_policy_dev_stats(p, (unsigned)d, &st), 0);
    assert_int_equal(st.faults, 0);
    vpri_pin_policy_free(p);
}

/*
 * Budget goes where it saves faults: device 0 cycles over 60 pages and
 * faults on those it lacks pins for; device 1 uses 4 pages, all pinned.
 */
static void test_adp_budget_follows_benefit(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 64);
    PinPolicyDevStats s0, s1;
    int d0 = vpri_pin_policy_add_device(p, PIN_DEV_NIC);
    int d1 = vpri_pin_policy_add_device(p, PIN_DEV_NIC);

    (void)state;
    for (int e = 0; e < 200; e++) {
        for (uint64_t i = 0; i < 20; i++) {
            uint64_t page = ((uint64_t)e * 20 + i) % 60;

            vpri_pin_policy_observe(p, (unsigned)d0, page);
            if (!vpri_pin_policy_is_pinned(p, page)) {
                vpri_pin_policy_fault(p, (unsigned)d0, page);
            }
        }
        touch_range(p, (unsigned)d1, 500, 4);
        vpri_pin_policy_epoch(p, NULL, NULL);
    }
    assert_int_equal(vpri_pin_policy_dev_stats(p, (unsigned)d0, &s0), 0);
    assert_int_equal(vpri_pin_policy_dev_stats(p, (unsigned)d1, &s1), 0);
    assert_true(s0.share >= 60);
    assert_true(s0.ghost_hits > 0);
    assert_true(s1.share >= 4 && s1.share < 32);
    assert_int_equal(s1.pinned, 4);
    assert_int_equal(s0.share + s1.share, 64);
    assert_int_equal(s0.pinned, 60);
    assert_true(vpri_pin_policy_pinned(p) <= 64);
    vpri_pin_policy_free(p);
}

static void test_remove_device_drops_pins(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 1000, 64);
    Changes c = { 0 };
    int d = vpri_pin_policy_add_device(p, PIN_DEV_NIC);

    (void)state;
    touch_range(p, (unsigned)d, 0, 10);
    vpri_pin_policy_epoch(p, on_change, &c);
    assert_int_equal(vpri_pin_policy_pinned(p), 10);
    vpri_pin_policy_remove_device(p, (unsigned)d);
    /* The slot stays taken until the pins are gone. */
    assert_int_equal(vpri_pin_policy_add_device(p, PIN_DEV_BLOCK), 1);
    vpri_pin_policy_epoch(p, on_change, &c);
    assert_int_equal(vpri_pin_policy_pinned(p), 0);
    assert_int_equal(c.unpins, 10);
    assert_int_equal(vpri_pin_policy_add_device(p, PIN_DEV_NIC), 0);
    vpri_pin_policy_free(p);
}

/* Two parts pinning one page count it once. */
static void test_shared_page_counted_once(void **state)
{
    PinPolicy *p = vpri_pin_policy_new(PIN_POLICY_ADP, 100, 20);
    Changes c = { 0 };
    int a = vpri_pin_policy_add_device(p, PIN_DEV_NIC);
    int b = vpri_pin_policy_add_device(p, PIN_DEV_NIC);

    (void)state;
    touch_range(p, (unsigned)a, 0, 5);
    touch_range(p, (unsigned)b, 3, 5);
    vpri_pin_policy_epoch(p, on_change, &c);
    assert_int_equal(vpri_pin_policy_pinned(p), 8);
    assert_int_equal(c.pins, 8);
    vpri_pin_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_none_pins_nothing),
        cmocka_unit_test(test_lru_recent_up_to_budget),
        cmocka_unit_test(test_adp_keeps_nic_under_block_churn),
        cmocka_unit_test(test_adp_block_pins_next_due),
        cmocka_unit_test(test_adp_block_one_shot_pages_fill_spare_share),
        cmocka_unit_test(test_adp_block_seen_once_predicted_from_first_gap),
        cmocka_unit_test(test_armed_pages),
        cmocka_unit_test(test_adp_quiet_device_decays),
        cmocka_unit_test(test_adp_late_start_gets_budget),
        cmocka_unit_test(test_adp_budget_follows_benefit),
        cmocka_unit_test(test_remove_device_drops_pins),
        cmocka_unit_test(test_shared_page_counted_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
