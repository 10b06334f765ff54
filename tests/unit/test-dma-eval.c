/*
 * Unit tests for the DMA trace format, the reclaim model of the
 * evaluator and the trace generators
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/vpri/core/dma-trace.h"
#include "dma-gen.h"
#include "dma-sim.h"

#define MS 1000000ULL

static void add(DmaTrace *t, uint64_t time, unsigned dev, DmaTraceKind kind,
                uint64_t page, bool write)
{
    DmaTraceRecord r = {
        .time_ns = time, .page = page, .dev = (uint8_t)dev,
        .kind = (uint8_t)kind, .write = write,
    };

    assert_int_equal(vpri_dma_trace_append(t, &r), 0);
}

static void two_devices(DmaTraceHeader *h, uint64_t pages)
{
    memset(h, 0, sizeof(*h));
    h->guest_pages = pages;
    h->ndevs = 2;
    h->devs[0].id = 3;
    h->devs[0].kind = DMA_TRACE_NIC;
    strcpy(h->devs[0].name, "eth0");
    h->devs[1].id = 9;
    h->devs[1].kind = DMA_TRACE_BLOCK;
}

/* Records compare by field: their padding bytes are undefined. */
static bool recs_equal(const DmaTraceRecord *a, const DmaTraceRecord *b,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].time_ns != b[i].time_ns || a[i].page != b[i].page ||
            a[i].dev != b[i].dev || a[i].kind != b[i].kind ||
            a[i].write != b[i].write || a[i].armed != b[i].armed) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Trace format                                                       */

static void test_trace_round_trip(void **state)
{
    DmaTrace t = { 0 }, u;
    FILE *f = tmpfile();
    unsigned line = 0;

    (void)state;
    two_devices(&t.hdr, 1000);
    add(&t, 5, 3, DMA_TRACE_NIC, 17, true);
    add(&t, 5, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU, 999, false);
    add(&t, 1ULL << 40, 9, DMA_TRACE_BLOCK, 0, false);
    add(&t, 1ULL << 40, 3, DMA_TRACE_NIC, 18, false);
    t.recs[3].armed = 1;
    assert_int_equal(vpri_dma_trace_write(f, &t), 0);
    rewind(f);
    assert_int_equal(vpri_dma_trace_read(f, &u, &line), 0);
    fclose(f);
    assert_int_equal(u.hdr.guest_pages, 1000);
    assert_int_equal(u.hdr.ndevs, 2);
    assert_int_equal(u.hdr.devs[0].id, 3);
    assert_string_equal(u.hdr.devs[0].name, "eth0");
    assert_int_equal(u.hdr.devs[1].kind, DMA_TRACE_BLOCK);
    assert_string_equal(u.hdr.devs[1].name, "");
    assert_int_equal(u.n, 4);
    assert_true(recs_equal(u.recs, t.recs, 4));
    vpri_dma_trace_clear(&t);
    vpri_dma_trace_clear(&u);
}

static int read_text(const char *text, unsigned *line)
{
    FILE *f = tmpfile();
    DmaTrace t;
    int r;

    fputs(text, f);
    rewind(f);
    r = vpri_dma_trace_read(f, &t, line);
    fclose(f);
    if (r == 0) {
        vpri_dma_trace_clear(&t);
    }
    return r;
}

static void test_trace_rejects(void **state)
{
    static const char head[] =
        "iolab-dma-trace 1\n# a comment\nguest-pages 100\n"
        "device 0 nic\ndevice 1 block vda\nrecords\n";
    static const struct {
        const char *body;
        unsigned line;
    } bad[] = {
        { "10 0 n 5 x\n", 7 },                  /* not r/w */
        { "10 0 b 5 r\n", 7 },                  /* kind is not the device's */
        { "10 2 n 5 r\n", 7 },                  /* no such device */
        { "10 0 n 100 r\n", 7 },                /* page out of range */
        { "10 0 c 5 r\n", 7 },                  /* CPU needs device 255 */
        { "10 255 c 5 a\n", 7 },                /* only devices are armed */
        { "10 0 n 5 r\n9 1 b 5 w\n", 8 },       /* time goes back */
        { "10 0 n 5 r extra\n", 7 },
    };
    unsigned line;
    char buf[512];

    (void)state;
    snprintf(buf, sizeof(buf), "%s10 0 n 5 r\n10 255 c 99 w\n10 1 b 7 a\n",
             head);
    assert_int_equal(read_text(buf, &line), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", head, bad[i].body);
        line = 0;
        assert_int_equal(read_text(buf, &line), -EINVAL);
        assert_int_equal(line, bad[i].line);
    }
    assert_int_equal(read_text("iolab-dma-trace 2\n", &line), -EINVAL);
    assert_int_equal(line, 1);
    assert_int_equal(read_text("iolab-dma-trace 1\nguest-pages 5\n", &line),
                     -EINVAL);
    assert_int_equal(line, 3);
    assert_int_equal(read_text("iolab-dma-trace 1\nrecords\n", &line),
                     -EINVAL);
    assert_int_equal(read_text("iolab-dma-trace 1\nguest-pages 5\n"
                               "device 0 nic\ndevice 0 block\n", &line),
                     -EINVAL);
    assert_int_equal(line, 4);
    assert_int_equal(read_text("iolab-dma-trace 1\nguest-pages 5\n"
                               "device 255 nic\n", &line), -EINVAL);
}

static void test_trace_header_checked_on_write(void **state)
{
    DmaTraceHeader h;
    FILE *f = tmpfile();

    (void)state;
    two_devices(&h, 10);
    h.devs[1].id = 3;       /* duplicate id */
    assert_int_equal(vpri_dma_trace_write_header(f, &h), -EINVAL);
    two_devices(&h, 10);
    strcpy(h.devs[0].name, "two words");
    assert_int_equal(vpri_dma_trace_write_header(f, &h), -EINVAL);
    two_devices(&h, 0);
    assert_int_equal(vpri_dma_trace_write_header(f, &h), -EINVAL);
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* Reclaim model                                                      */

static DmaSimConfig cfg(unsigned oc, PinPolicyKind pol, uint64_t budget)
{
    DmaSimConfig c = {
        .overcommit_pct = oc, .policy = pol, .budget_pages = budget,
        .epoch_ns = MS, .count_from_ns = 0,
    };

    return c;
}

static void test_sim_starts_at_capacity(void **state)
{
    DmaTraceHeader h;
    DmaSimConfig c = cfg(30, PIN_POLICY_NONE, 0);
    DmaSim *s;
    uint64_t resident = 0;

    (void)state;
    two_devices(&h, 1000);
    s = dma_sim_new(&c, &h);
    assert_non_null(s);
    for (uint64_t p = 0; p < 1000; p++) {
        resident += dma_sim_resident(s, p);
    }
    assert_int_equal(resident, 700);
    dma_sim_free(s);
    c.overcommit_pct = 100;
    assert_null(dma_sim_new(&c, &h));
    c = cfg(10, PIN_POLICY_NONE, 0);
    c.epoch_ns = 0;
    assert_null(dma_sim_new(&c, &h));
}

/*
 * Ten pages, five resident.  The host sees CPU accesses (second chance)
 * but not DMA: under memory pressure the page a device keeps using goes
 * before the page the CPU keeps using.
 */
static void test_sim_dma_is_invisible_to_reclaim(void **state)
{
    DmaTraceHeader h;
    DmaSimConfig c = cfg(50, PIN_POLICY_NONE, 0);
    DmaSim *s;
    DmaSimResult res;
    uint64_t t = 0;

    (void)state;
    two_devices(&h, 10);
    s = dma_sim_new(&c, &h);
    /* The clock evicted pages 0-4 at the start. */
    assert_true(dma_sim_resident(s, 5) && !dma_sim_resident(s, 0));
    for (int round = 0; round < 4; round++) {
        DmaTraceRecord cpu = { t++, 6, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU, 0, 0 };
        DmaTraceRecord nic = { t++, 7, 3, DMA_TRACE_NIC, 1, 0 };

        assert_int_equal(dma_sim_step(s, &cpu), 0);
        assert_int_equal(dma_sim_step(s, &nic), 0);
        /* pressure: the CPU walks over pages 0-4 */
        for (uint64_t p = 0; p < 5; p++) {
            DmaTraceRecord r = { t++, p, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU,
                                 0, 0 };

            assert_int_equal(dma_sim_step(s, &r), 0);
        }
    }
    dma_sim_result(s, &res);
    assert_true(res.faults[DMA_TRACE_NIC] >= 2);
    assert_true(res.faults[DMA_TRACE_NIC] > res.faults[DMA_TRACE_CPU] / 8);
    assert_int_equal(res.accesses[DMA_TRACE_NIC], 4);
    /* Times must not go backwards; unknown devices are refused. */
    {
        DmaTraceRecord back = { 0, 1, 3, DMA_TRACE_NIC, 0, 0 };
        DmaTraceRecord who = { t, 1, 4, DMA_TRACE_NIC, 0, 0 };

        assert_int_equal(dma_sim_step(s, &back), -EINVAL);
        assert_int_equal(dma_sim_step(s, &who), -EINVAL);
    }
    dma_sim_free(s);
}

/*
 * Cold start and steady state from one replay: the faults of the warm-up
 * (here the device's first touches of pages the start-up reclaim evicted)
 * count in the cold-start figures only.
 */
static void test_sim_warmup_accounting(void **state)
{
    DmaTrace t = { 0 };
    DmaSimConfig c = cfg(50, PIN_POLICY_NONE, 0);
    DmaSimResult r;

    (void)state;
    two_devices(&t.hdr, 10);
    /* Pages 0-4 start evicted. */
    add(&t, 0, 3, DMA_TRACE_NIC, 0, true);             /* warm-up fault */
    add(&t, 1 * MS, 9, DMA_TRACE_BLOCK, 2, true);      /* warm-up fault */
    add(&t, 5 * MS, 3, DMA_TRACE_NIC, 0, true);        /* resident now */
    add(&t, 6 * MS, 3, DMA_TRACE_NIC, 1, true);        /* counted fault */
    c.count_from_ns = 5 * MS;
    assert_int_equal(dma_sim_run(&c, &t, &r), 0);
    assert_int_equal(r.accesses[DMA_TRACE_NIC], 2);
    assert_int_equal(r.faults[DMA_TRACE_NIC], 1);
    assert_int_equal(r.first_faults[DMA_TRACE_NIC], 1);
    assert_int_equal(r.faults[DMA_TRACE_BLOCK], 0);
    assert_int_equal(r.cold_accesses[DMA_TRACE_NIC], 3);
    assert_int_equal(r.cold_faults[DMA_TRACE_NIC], 2);
    assert_int_equal(r.cold_first_faults[DMA_TRACE_NIC], 2);
    assert_int_equal(r.cold_faults[DMA_TRACE_BLOCK], 1);
    assert_int_equal(r.cold_first_faults[DMA_TRACE_BLOCK], 1);
    /* No warm-up: both views agree. */
    c.count_from_ns = 0;
    assert_int_equal(dma_sim_run(&c, &t, &r), 0);
    assert_int_equal(r.faults[DMA_TRACE_NIC], r.cold_faults[DMA_TRACE_NIC]);
    assert_int_equal(r.accesses[DMA_TRACE_NIC],
                     r.cold_accesses[DMA_TRACE_NIC]);
    vpri_dma_trace_clear(&t);
}

/* A NIC ring under CPU pressure: lru/adp pins save its faults. */
static void ring_trace(DmaTrace *t)
{
    uint64_t time = 0;

    memset(t, 0, sizeof(*t));
    two_devices(&t->hdr, 400);
    for (int round = 0; round < 60; round++) {
        for (uint64_t p = 0; p < 16; p++) {
            add(t, time, 3, DMA_TRACE_NIC, 300 + p, true);
            time += 10000;
        }
        /* the CPU streams over the rest of memory */
        for (uint64_t p = 0; p < 100; p++) {
            add(t, time, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU,
                (round * 100 + p) % 290, false);
            time += 10000;
        }
    }
}

static void test_sim_pins_save_ring_faults(void **state)
{
    DmaTrace t;
    DmaSimResult none, lru, adp;
    DmaSimConfig c;

    (void)state;
    ring_trace(&t);
    c = cfg(30, PIN_POLICY_NONE, 16);
    c.count_from_ns = t.recs[t.n / 5].time_ns;
    assert_int_equal(dma_sim_run(&c, &t, &none), 0);
    c.policy = PIN_POLICY_LRU;
    assert_int_equal(dma_sim_run(&c, &t, &lru), 0);
    c.policy = PIN_POLICY_ADP;
    assert_int_equal(dma_sim_run(&c, &t, &adp), 0);
    /* Without pins the ring faults every other round; with them, never. */
    assert_true(none.faults[DMA_TRACE_NIC] > 16 * 20);
    assert_int_equal(lru.faults[DMA_TRACE_NIC], 0);
    assert_int_equal(adp.faults[DMA_TRACE_NIC], 0);
    assert_int_equal(none.pinned_max, 0);
    assert_int_equal(lru.pinned_max, 16);
    assert_true(adp.pinned_max <= 16);
    assert_true(adp.pinned_avg_kind[DMA_TRACE_NIC] > 15);
    vpri_dma_trace_clear(&t);
}

/*
 * Armed records (buffers posted to the NIC before it writes them) are not
 * accesses; adp's NIC part pins them, so the device's first touch of each
 * finds it resident after the CPU has streamed over the rest of memory.
 * lru pins only what was DMA'd and takes every first touch as a fault.
 */
static void test_sim_armed_pages_pinned_by_adp(void **state)
{
    DmaTrace t = { 0 };
    DmaSimResult none, lru, adp;
    DmaSimConfig c;
    uint64_t time = 0;

    (void)state;
    two_devices(&t.hdr, 400);
    for (uint64_t p = 0; p < 16; p++) {
        add(&t, time, 3, DMA_TRACE_NIC, 300 + p, true);
        t.recs[t.n - 1].armed = 1;
    }
    for (int round = 0; round < 20; round++) {
        for (uint64_t p = 0; p < 100; p++) {
            time += 10000;
            add(&t, time, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU,
                (round * 100 + p) % 290, false);
        }
    }
    for (uint64_t p = 0; p < 16; p++) {
        time += 10000;
        add(&t, time, 3, DMA_TRACE_NIC, 300 + p, true);
    }
    c = cfg(30, PIN_POLICY_NONE, 32);
    assert_int_equal(dma_sim_run(&c, &t, &none), 0);
    c.policy = PIN_POLICY_LRU;
    assert_int_equal(dma_sim_run(&c, &t, &lru), 0);
    c.policy = PIN_POLICY_ADP;
    assert_int_equal(dma_sim_run(&c, &t, &adp), 0);
    assert_int_equal(none.accesses[DMA_TRACE_NIC], 16);
    assert_int_equal(adp.accesses[DMA_TRACE_NIC], 16);
    assert_int_equal(none.faults[DMA_TRACE_NIC], 16);
    assert_int_equal(none.first_faults[DMA_TRACE_NIC], 16);
    assert_int_equal(lru.faults[DMA_TRACE_NIC], 16);
    assert_int_equal(adp.faults[DMA_TRACE_NIC], 0);
    vpri_dma_trace_clear(&t);
}

/* Pinning an evicted page brings it in, and the clock never takes it. */
static void test_sim_pin_pages_in(void **state)
{
    DmaTrace t = { 0 };
    DmaSimResult r;
    DmaSimConfig c = cfg(50, PIN_POLICY_LRU, 2);

    (void)state;
    two_devices(&t.hdr, 10);
    /* Page 0 starts evicted; the device touches it in epoch 0. */
    add(&t, 0, 3, DMA_TRACE_NIC, 0, false);
    /* Then the CPU cycles over five other pages for many epochs. */
    for (uint64_t i = 0; i < 200; i++) {
        add(&t, (i + 1) * MS / 4, DMA_TRACE_CPU_DEV, DMA_TRACE_CPU,
            5 + i % 5, false);
    }
    add(&t, 60 * MS, 3, DMA_TRACE_NIC, 0, false);
    assert_int_equal(dma_sim_run(&c, &t, &r), 0);
    assert_int_equal(r.faults[DMA_TRACE_NIC], 1);       /* the first only */
    assert_int_equal(r.first_faults[DMA_TRACE_NIC], 1);
    assert_true(r.faults[DMA_TRACE_CPU] > 0);
    c.policy = PIN_POLICY_NONE;
    assert_int_equal(dma_sim_run(&c, &t, &r), 0);
    assert_int_equal(r.faults[DMA_TRACE_NIC], 2);
    assert_int_equal(r.first_faults[DMA_TRACE_NIC], 1);
    vpri_dma_trace_clear(&t);
}

/*
 * Periodic reclaim (vpri-reclaim every 10 ms) with no capacity pressure:
 * a device reusing 4 pages faults after each reclaim unless they are
 * pinned.
 */
static void test_sim_periodic_reclaim(void **state)
{
    DmaTrace t = { 0 };
    DmaSimResult none, lru, adp;
    DmaSimConfig c = cfg(0, PIN_POLICY_NONE, 8);

    (void)state;
    two_devices(&t.hdr, 100);
    for (uint64_t ms = 0; ms < 200; ms++) {
        for (uint64_t p = 0; p < 4; p++) {
            add(&t, ms * MS + p, 9, DMA_TRACE_BLOCK, 50 + p, true);
        }
    }
    c.reclaim_every_ns = 10 * MS;
    c.reclaim_pct = 100;
    c.count_from_ns = 20 * MS;
    assert_int_equal(dma_sim_run(&c, &t, &none), 0);
    c.policy = PIN_POLICY_LRU;
    assert_int_equal(dma_sim_run(&c, &t, &lru), 0);
    c.policy = PIN_POLICY_ADP;
    assert_int_equal(dma_sim_run(&c, &t, &adp), 0);
    /* 18 reclaims after the warm-up, each costing the 4 pages */
    assert_true(none.faults[DMA_TRACE_BLOCK] >= 4 * 17);
    assert_int_equal(none.first_faults[DMA_TRACE_BLOCK], 0);
    assert_int_equal(lru.faults[DMA_TRACE_BLOCK], 0);
    assert_int_equal(adp.faults[DMA_TRACE_BLOCK], 0);
    assert_true(none.evictions >= lru.evictions + 4 * 17);
    vpri_dma_trace_clear(&t);
}

/* ------------------------------------------------------------------ */
/* Generators                                                         */

static void test_gen_characterization(void **state)
{
    DmaGenParams p;
    DmaTrace t, u;
    DmaTraceStats nic, blk;

    (void)state;
    dma_gen_default(&p);
    p.duration_ns = 40000 * MS;
    assert_int_equal(dma_gen_mixed(&p, &t), 0);
    assert_int_equal(t.hdr.ndevs, 2);
    for (size_t i = 1; i < t.n; i++) {
        assert_true(t.recs[i].time_ns >= t.recs[i - 1].time_ns);
        assert_true(t.recs[i].page < p.guest_pages);
    }
    assert_int_equal(vpri_dma_trace_stats(&t, DMA_TRACE_NIC, &nic), 0);
    assert_int_equal(vpri_dma_trace_stats(&t, DMA_TRACE_BLOCK, &blk), 0);
    /* NIC: an (almost) bounded buffer with very strong temporal locality */
    assert_true(nic.footprint <= p.nic_pool);
    assert_true(nic.reuse_median < 100);
    /* Block: larger footprint, >70% of pages visited more than twice, at
     * a long distance. */
    assert_true(blk.footprint > 4 * nic.footprint);
    assert_true(blk.visited_gt2 > 0.7);
    assert_true(blk.reuse_median > 100 * nic.reuse_median);

    /* Deterministic for a seed, different for another. */
    assert_int_equal(dma_gen_mixed(&p, &u), 0);
    assert_int_equal(u.n, t.n);
    assert_true(recs_equal(u.recs, t.recs, t.n));
    vpri_dma_trace_clear(&u);
    p.seed = 2;
    assert_int_equal(dma_gen_mixed(&p, &u), 0);
    assert_true(u.n != t.n || !recs_equal(u.recs, t.recs, t.n));
    vpri_dma_trace_clear(&u);

    p.nic = false;
    assert_int_equal(dma_gen_mixed(&p, &u), 0);
    assert_int_equal(u.hdr.ndevs, 1);
    assert_int_equal(u.hdr.devs[0].kind, DMA_TRACE_BLOCK);
    vpri_dma_trace_clear(&u);
    p.anon_frac = 0.9;
    assert_int_equal(dma_gen_mixed(&p, &u), -EINVAL);
    vpri_dma_trace_clear(&t);
}

/* Background traffic between bursts: silent gaps by default. */
static void test_gen_nic_idle_traffic(void **state)
{
    DmaGenParams p;
    DmaTrace t;
    DmaTraceStats silent, idle;
    uint64_t last = 0, gap_silent = 0, gap_idle = 0;

    (void)state;
    dma_gen_default(&p);
    p.block = false;
    p.duration_ns = 20000 * MS;
    p.nic_off_ns = 4000 * MS;
    assert_int_equal(dma_gen_mixed(&p, &t), 0);
    assert_int_equal(vpri_dma_trace_stats(&t, DMA_TRACE_NIC, &silent), 0);
    for (size_t i = 0; i < t.n; i++) {
        if (t.recs[i].kind == DMA_TRACE_NIC) {
            if (last && t.recs[i].time_ns - last > gap_silent) {
                gap_silent = t.recs[i].time_ns - last;
            }
            last = t.recs[i].time_ns;
        }
    }
    vpri_dma_trace_clear(&t);
    p.nic_idle_pkt_interval_ns = 50 * MS;
    assert_int_equal(dma_gen_mixed(&p, &t), 0);
    assert_int_equal(vpri_dma_trace_stats(&t, DMA_TRACE_NIC, &idle), 0);
    last = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.recs[i].kind == DMA_TRACE_NIC) {
            if (last && t.recs[i].time_ns - last > gap_idle) {
                gap_idle = t.recs[i].time_ns - last;
            }
            last = t.recs[i].time_ns;
        }
    }
    /* Silent gaps last seconds; background packets come every ~50 ms. */
    assert_true(gap_silent > 1000 * MS);
    assert_true(gap_idle < 1000 * MS);
    assert_true(idle.accesses > silent.accesses);
    assert_true(idle.footprint <= p.nic_pool);
    vpri_dma_trace_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_round_trip),
        cmocka_unit_test(test_trace_rejects),
        cmocka_unit_test(test_trace_header_checked_on_write),
        cmocka_unit_test(test_sim_starts_at_capacity),
        cmocka_unit_test(test_sim_dma_is_invisible_to_reclaim),
        cmocka_unit_test(test_sim_warmup_accounting),
        cmocka_unit_test(test_sim_pins_save_ring_faults),
        cmocka_unit_test(test_sim_armed_pages_pinned_by_adp),
        cmocka_unit_test(test_sim_pin_pages_in),
        cmocka_unit_test(test_sim_periodic_reclaim),
        cmocka_unit_test(test_gen_characterization),
        cmocka_unit_test(test_gen_nic_idle_traffic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
