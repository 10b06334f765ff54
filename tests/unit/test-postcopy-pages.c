/*
 * Unit tests for the postcopy page states and waiters of VPRI
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/vpri/core/postcopy-pages.h"

#define NPAGES 64
#define NWAITERS 8

static PcpWaiter waiter(uint32_t dev, uint16_t queue, uint64_t cookie,
                        uint64_t since)
{
    return (PcpWaiter) { .dev = dev, .queue = queue, .cookie = cookie,
                         .since_ns = since };
}

static void test_bounds(void **state)
{
    PostcopyPages *p;
    PcpWaiter w = waiter(0, 0, 0, 0);
    PcpWaiter out[1];

    (void)state;
    assert_null(vpri_pcp_new(0, 1));
    assert_null(vpri_pcp_new(1, 0));
    assert_null(vpri_pcp_new(1, VPRI_PCP_MAX_WAITERS + 1));
    p = vpri_pcp_new(1, VPRI_PCP_MAX_WAITERS);
    assert_non_null(p);
    assert_int_equal(vpri_pcp_fault(p, 1, &w), VPRI_PCP_OUT_OF_RANGE);
    assert_int_equal(vpri_pcp_fault(p, UINT64_MAX, &w), VPRI_PCP_OUT_OF_RANGE);
    assert_int_equal(vpri_pcp_arrived(p, 1, 0, out), 0);
    vpri_pcp_free(p);
    vpri_pcp_free(NULL);
}

/*
 * Two queues of two devices fault on one page: one request; both wait
 * and come back, oldest first, with their latencies, when it arrives.
 * A queue faulting on another page is not woken by it.
 */
static void test_one_request_per_page(void **state)
{
    PostcopyPages *p = vpri_pcp_new(NPAGES, NWAITERS);
    PcpWaiter a = waiter(0, 1, 100, 1000);
    PcpWaiter b = waiter(3, 0, 200, 3000);
    PcpWaiter c = waiter(0, 2, 300, 4000);
    PcpWaiter out[NWAITERS];
    PcpStats st;
    LatencySummary ls;

    (void)state;
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_MISSING);
    assert_int_equal(vpri_pcp_fault(p, 5, &a), VPRI_PCP_REQUEST);
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_REQUESTED);
    assert_int_equal(vpri_pcp_fault(p, 5, &b), VPRI_PCP_WAIT);
    assert_int_equal(vpri_pcp_fault(p, 9, &c), VPRI_PCP_REQUEST);

    /* Another page's arrival wakes nobody waiting on 5 */
    assert_int_equal(vpri_pcp_arrived(p, 7, 5000, out), 0);
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_REQUESTED);

    assert_int_equal(vpri_pcp_arrived(p, 5, 11000, out), 2);
    assert_int_equal(out[0].dev, 0);
    assert_int_equal(out[0].queue, 1);
    assert_int_equal(out[0].cookie, 100);
    assert_int_equal(out[1].dev, 3);
    assert_int_equal(out[1].cookie, 200);
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_RECEIVED);
    /* A second arrival (a vCPU's request raced ours) is nothing */
    assert_int_equal(vpri_pcp_arrived(p, 5, 12000, out), 0);
    /* Received: a fault resolves at once, and waits for nothing */
    assert_int_equal(vpri_pcp_fault(p, 5, &a), VPRI_PCP_PRESENT);

    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.pages, NPAGES);
    assert_int_equal(st.requested, 2);
    assert_int_equal(st.device_faults, 3);
    assert_int_equal(st.resolved, 2);
    assert_int_equal(st.received, 2);
    assert_int_equal(st.waiting, 1);
    assert_int_equal(st.failed, 0);

    /* Latencies 10000 and 8000 ns */
    vpri_latency_histogram_summary(vpri_pcp_latency(p), &ls);
    assert_int_equal(ls.count, 2);
    assert_int_equal(ls.min, 8000);
    assert_int_equal(ls.max, 10000);

    assert_int_equal(vpri_pcp_arrived(p, 9, 4500, out), 1);
    assert_int_equal(out[0].cookie, 300);
    vpri_pcp_free(p);
}

/* Waiters are bounded; freed ones are reused. */
static void test_full(void **state)
{
    PostcopyPages *p = vpri_pcp_new(NPAGES, 2);
    PcpWaiter w = waiter(1, 1, 1, 0);
    PcpWaiter out[2];
    PcpStats st;

    (void)state;
    assert_int_equal(vpri_pcp_fault(p, 1, &w), VPRI_PCP_REQUEST);
    assert_int_equal(vpri_pcp_fault(p, 2, &w), VPRI_PCP_REQUEST);
    assert_int_equal(vpri_pcp_fault(p, 3, &w), VPRI_PCP_FULL);
    /* The page refused is not marked requested: nobody asked for it */
    assert_int_equal(vpri_pcp_page_state(p, 3), VPRI_PCP_MISSING);
    assert_int_equal(vpri_pcp_arrived(p, 1, 0, out), 1);
    assert_int_equal(vpri_pcp_fault(p, 3, &w), VPRI_PCP_REQUEST);
    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.waiting, 2);
    vpri_pcp_free(p);
}

/*
 * The connection breaks: waiters wait, new faults wait without a request;
 * on recovery every requested page is asked for again.
 */
static void test_pause_resume(void **state)
{
    PostcopyPages *p = vpri_pcp_new(NPAGES, NWAITERS);
    PcpWaiter w = waiter(0, 0, 7, 0);
    PcpWaiter out[NWAITERS];
    uint64_t pages[2];
    uint64_t cursor = 0;
    PcpStats st;

    (void)state;
    assert_int_equal(vpri_pcp_fault(p, 10, &w), VPRI_PCP_REQUEST);
    vpri_pcp_pause(p);
    assert_int_equal(vpri_pcp_run_state(p), VPRI_PCP_PAUSED);
    assert_int_equal(vpri_pcp_fault(p, 20, &w), VPRI_PCP_WAIT);
    assert_int_equal(vpri_pcp_fault(p, 30, &w), VPRI_PCP_WAIT);
    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.requested, 1);
    assert_int_equal(st.waiting, 3);

    /* In pieces of 2: 10 and 20, then 30, then done */
    assert_int_equal(vpri_pcp_resume(p, &cursor, pages, 2), 2);
    assert_int_equal(pages[0], 10);
    assert_int_equal(pages[1], 20);
    assert_int_equal(vpri_pcp_run_state(p), VPRI_PCP_RUNNING);
    assert_int_equal(vpri_pcp_resume(p, &cursor, pages, 2), 1);
    assert_int_equal(pages[0], 30);
    assert_int_equal(vpri_pcp_resume(p, &cursor, pages, 2), 0);
    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.rerequested, 3);

    assert_int_equal(vpri_pcp_arrived(p, 20, 0, out), 1);
    assert_int_equal(vpri_pcp_fault(p, 40, &w), VPRI_PCP_REQUEST);
    vpri_pcp_free(p);
}

/*
 * A prefetched page is asked for once, before any fault: a fault on it
 * waits without a second request and resolves on arrival.  Pages received
 * or asked for already are skipped; the limit counts the whole run; while
 * paused nothing is prefetched.
 */
static void test_prefetch(void **state)
{
    PostcopyPages *p = vpri_pcp_new(NPAGES, NWAITERS);
    PcpWaiter w = waiter(1, 2, 3, 0);
    PcpWaiter out[NWAITERS];
    PcpStats st;

    (void)state;
    assert_int_equal(vpri_pcp_prefetch(p, 5, 3), VPRI_PCP_PREFETCH_REQUEST);
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_PREFETCHED);
    assert_int_equal(vpri_pcp_prefetch(p, 5, 3), VPRI_PCP_PREFETCH_SKIP);
    assert_int_equal(vpri_pcp_prefetch(p, NPAGES, 3),
                     VPRI_PCP_PREFETCH_SKIP);
    /* A device faults on it before it arrives: no second request */
    assert_int_equal(vpri_pcp_fault(p, 5, &w), VPRI_PCP_WAIT);
    assert_int_equal(vpri_pcp_page_state(p, 5), VPRI_PCP_REQUESTED);
    assert_int_equal(vpri_pcp_arrived(p, 5, 10, out), 1);
    assert_int_equal(out[0].cookie, 3);
    assert_int_equal(vpri_pcp_prefetch(p, 5, 3), VPRI_PCP_PREFETCH_SKIP);

    /* Arrived before any device needed it: no fault at all */
    assert_int_equal(vpri_pcp_prefetch(p, 6, 3), VPRI_PCP_PREFETCH_REQUEST);
    assert_int_equal(vpri_pcp_arrived(p, 6, 10, out), 0);
    assert_int_equal(vpri_pcp_fault(p, 6, &w), VPRI_PCP_PRESENT);

    /* Paused: not asked for, and it does not count */
    vpri_pcp_pause(p);
    assert_int_equal(vpri_pcp_prefetch(p, 9, 3), VPRI_PCP_PREFETCH_SKIP);
    assert_int_equal(vpri_pcp_page_state(p, 9), VPRI_PCP_MISSING);
    {
        uint64_t cursor = 0, pages[NPAGES];

        assert_int_equal(vpri_pcp_resume(p, &cursor, pages, NPAGES), 0);
    }
    /* A recovery asks again for a prefetched page still missing */
    assert_int_equal(vpri_pcp_prefetch(p, 7, 3), VPRI_PCP_PREFETCH_REQUEST);
    vpri_pcp_pause(p);
    {
        uint64_t cursor = 0, pages[NPAGES];

        assert_int_equal(vpri_pcp_resume(p, &cursor, pages, NPAGES), 1);
        assert_int_equal(pages[0], 7);
    }
    /* Three prefetched: the limit stops the fourth, whatever its page */
    assert_int_equal(vpri_pcp_prefetch(p, 8, 3), VPRI_PCP_PREFETCH_LIMIT);
    assert_int_equal(vpri_pcp_page_state(p, 8), VPRI_PCP_MISSING);

    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.prefetched, 3);
    assert_int_equal(st.prefetch_hits, 1);     /* page 6 */
    assert_int_equal(st.prefetch_late, 1);     /* page 5 */
    assert_int_equal(st.requested, 0);
    assert_int_equal(st.device_faults, 1);
    assert_int_equal(st.resolved, 1);
    vpri_pcp_free(p);
}

/*
 * Failing for good hands every waiter back once; later faults on pages
 * not received fail, on received ones still resolve.
 */
static void test_fail(void **state)
{
    PostcopyPages *p = vpri_pcp_new(NPAGES, NWAITERS);
    PcpWaiter out[NWAITERS];
    PcpWaiter w;
    uint64_t cursor = 0;
    uint64_t pages[4];
    PcpStats st;
    unsigned seen = 0;

    (void)state;
    assert_int_equal(vpri_pcp_arrived(p, 0, 0, out), 0);
    for (unsigned i = 0; i < 5; i++) {
        w = waiter(i, i, i, 0);
        assert_int_not_equal(vpri_pcp_fault(p, 1 + i % 3, &w),
                             VPRI_PCP_FAILED);
    }
    vpri_pcp_pause(p);
    assert_int_equal(vpri_pcp_fail(p, out), 5);
    /* Each waiter exactly once */
    for (unsigned i = 0; i < 5; i++) {
        seen |= 1u << out[i].cookie;
    }
    assert_int_equal(seen, 0x1f);
    assert_int_equal(vpri_pcp_run_state(p), VPRI_PCP_DEAD);
    assert_int_equal(vpri_pcp_fail(p, out), 0);
    assert_int_equal(vpri_pcp_fault(p, 2, &w), VPRI_PCP_FAILED);
    assert_int_equal(vpri_pcp_fault(p, 50, &w), VPRI_PCP_FAILED);
    assert_int_equal(vpri_pcp_fault(p, 0, &w), VPRI_PCP_PRESENT);
    /* No recovery from death */
    assert_int_equal(vpri_pcp_resume(p, &cursor, pages, 4), 0);
    assert_int_equal(vpri_pcp_run_state(p), VPRI_PCP_DEAD);
    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.failed, 7);
    assert_int_equal(st.waiting, 0);
    vpri_pcp_free(p);
}

/*
 * Device threads fault while the loader places pages: every waiter comes
 * back exactly once, by arrival or at the end.
 */
#define RACE_PAGES 512
#define RACE_THREADS 3

typedef struct RaceArg {
    PostcopyPages *p;
    uint32_t dev;
    uint64_t waits;
} RaceArg;

static void *race_faulter(void *opaque)
{
    RaceArg *a = opaque;

    for (uint64_t page = 0; page < RACE_PAGES; page++) {
        PcpWaiter w = waiter(a->dev, 0, page, 0);
        PcpFaultResult r;

        do {
            r = vpri_pcp_fault(a->p, page, &w);
        } while (r == VPRI_PCP_FULL);
        if (r == VPRI_PCP_REQUEST || r == VPRI_PCP_WAIT) {
            a->waits++;
        } else {
            assert_int_equal(r, VPRI_PCP_PRESENT);
        }
    }
    return NULL;
}

static void test_race(void **state)
{
    PostcopyPages *p = vpri_pcp_new(RACE_PAGES, 16);
    PcpWaiter *out = calloc(16, sizeof(*out));
    pthread_t th[RACE_THREADS];
    RaceArg args[RACE_THREADS];
    uint64_t waits = 0, woken = 0;
    PcpStats st;

    (void)state;
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        args[i] = (RaceArg) { .p = p, .dev = i };
        pthread_create(&th[i], NULL, race_faulter, &args[i]);
    }
    for (uint64_t page = 0; page < RACE_PAGES; page++) {
        size_t n = vpri_pcp_arrived(p, page, 1, out);

        for (size_t i = 0; i < n; i++) {
            assert_int_equal(out[i].cookie, page);
        }
        woken += n;
    }
    for (unsigned i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        waits += args[i].waits;
    }
    vpri_pcp_get_stats(p, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(woken, waits);
    assert_int_equal(st.resolved, waits);
    assert_int_equal(st.received, RACE_PAGES);
    free(out);
    vpri_pcp_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_one_request_per_page),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_prefetch),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_race),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
