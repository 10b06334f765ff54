/*
 * VPRI core: page states of a postcopy destination, and the device queues
 * waiting for pages
 *
 * On a postcopy destination the guest runs before all of its RAM has
 * arrived.  A page is in one of GiantVM's IVY states, from the device's
 * point of view (docs/vpri-host.rst, "Migration"):
 *
 *   MISSING    IVY invalid: not received, nobody asked for it yet; its
 *              PA-BITMAP entries are not present
 *   REQUESTED  IVY invalid, with a request to the owner (the source) in
 *              flight; device queues wait on it
 *   PREFETCHED IVY invalid, asked for before any device faulted on it
 *              (prefetch, below); a fault on it makes it REQUESTED
 *   RECEIVED   IVY owned (modified): the destination owns the only valid
 *              copy; entries may go read-write.  Final: a page never
 *              leaves it while postcopy runs.
 *
 * A device fault on a page that is not RECEIVED adds a waiter (device,
 * queue, a cookie for the caller) to the page; the first one asks the
 * caller to send the request (VPRI_PCP_REQUEST), later ones only wait
 * (VPRI_PCP_WAIT): one request per page however many queues fault on it.
 * Arrival hands the page's waiters back to be resumed, each with its
 * fault-to-arrival latency recorded.  Only the queues that faulted wait;
 * nothing here blocks.
 *
 * Prefetch: a page the devices are known to need soon (their rings,
 * the chains they carried over, the receive buffers posted to them) may
 * be asked for before any device faults on it: it goes from MISSING to
 * PREFETCHED with no waiter, so a device that faults on it before it
 * arrives waits without a second request (it becomes REQUESTED, and
 * counts as late); one that arrives still PREFETCHED counts as a hit.  At most as
 * many pages as the caller's limit, counted over the whole run.
 *
 * Failure: while postcopy is paused (the connection broke) waiters keep
 * waiting, since the pages arrive after a recovery; faults go on being
 * accepted and requests are held (VPRI_PCP_WAIT) until resumed, when the
 * caller asks for every REQUESTED page again.  Failing postcopy for good
 * hands every waiter back to be failed, and later faults on pages not
 * received fail at once (VPRI_PCP_FAILED): nothing waits forever, and no
 * queue reads a page that never came.
 *
 * Memory is bounded: one byte and one waiter index per page, and a pool
 * of @max_waiters waiters fixed at creation (VPRI_PCP_FULL when empty:
 * the caller stalls the queue and retries, as on a full fault ring).
 * Thread-safe; its lock is innermost, taken by no callback.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_POSTCOPY_PAGES_H
#define HW_VPRI_POSTCOPY_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "hw/vpri/core/latency-histogram.h"

#define VPRI_PCP_MAX_WAITERS (1u << 20)

typedef struct PostcopyPages PostcopyPages;

typedef enum PcpPageState {
    VPRI_PCP_MISSING = 0,
    VPRI_PCP_REQUESTED,
    VPRI_PCP_RECEIVED,
    VPRI_PCP_PREFETCHED,
} PcpPageState;

typedef enum PcpRunState {
    VPRI_PCP_RUNNING = 0,       /* pages arrive */
    VPRI_PCP_PAUSED,            /* the connection broke; may recover */
    VPRI_PCP_DEAD,              /* postcopy failed for good */
} PcpRunState;

/* What a device fault must do next. */
typedef enum PcpFaultResult {
    VPRI_PCP_PRESENT,           /* received: resolve the fault now */
    VPRI_PCP_REQUEST,           /* waits; the caller sends the request */
    VPRI_PCP_WAIT,              /* waits; requested already (or paused) */
    VPRI_PCP_FULL,              /* no waiter free: stall and retry */
    VPRI_PCP_FAILED,            /* never arrives: fail the I/O */
    VPRI_PCP_OUT_OF_RANGE,      /* not a page of guest RAM */
} PcpFaultResult;

/* What a prefetch of one page must do next. */
typedef enum PcpPrefetchResult {
    VPRI_PCP_PREFETCH_REQUEST,  /* the caller sends the request */
    VPRI_PCP_PREFETCH_SKIP,     /* received or asked for, or not running */
    VPRI_PCP_PREFETCH_LIMIT,    /* the run's limit is reached: stop */
} PcpPrefetchResult;

typedef struct PcpWaiter {
    uint32_t dev;
    uint16_t queue;
    uint64_t cookie;            /* the caller's, e.g. a fault record */
    uint64_t since_ns;          /* when it faulted */
} PcpWaiter;

typedef struct PcpStats {
    uint64_t pages;
    uint64_t received;          /* pages received (arrivals and marks) */
    uint64_t requested;         /* requests the callers were told to send */
    uint64_t rerequested;       /* ... again, after a recovery */
    uint64_t device_faults;     /* faults that waited */
    uint64_t resolved;          /* waiters handed back on arrival */
    uint64_t failed;            /* waiters and faults failed */
    uint64_t waiting;           /* waiters now */
    uint64_t full;              /* faults refused with VPRI_PCP_FULL */
    uint64_t prefetched;        /* pages asked for before any fault */
    uint64_t prefetch_hits;     /* ... that arrived before any fault */
    uint64_t prefetch_late;     /* ... a device faulted on before arrival */
} PcpStats;

/*
 * @npages pages of guest RAM, all MISSING; at most @max_waiters
 * (1..VPRI_PCP_MAX_WAITERS) waiters at once.  NULL if out of memory or a
 * bound is wrong.
 */
PostcopyPages *vpri_pcp_new(uint64_t npages, uint32_t max_waiters);
void vpri_pcp_free(PostcopyPages *p);
uint32_t vpri_pcp_max_waiters(const PostcopyPages *p);

PcpPageState vpri_pcp_page_state(PostcopyPages *p, uint64_t page);
PcpRunState vpri_pcp_run_state(PostcopyPages *p);

/*
 * A device fault of queue @w->queue of device @w->dev on @page, at
 * @w->since_ns.  VPRI_PCP_REQUEST and VPRI_PCP_WAIT keep a copy of @w
 * until the page arrives or postcopy fails.
 */
PcpFaultResult vpri_pcp_fault(PostcopyPages *p, uint64_t page,
                              const PcpWaiter *w);

/*
 * Devices will need @page soon: VPRI_PCP_PREFETCH_REQUEST if it was
 * MISSING while running (now PREFETCHED, counted in prefetched) and fewer
 * than @limit pages were prefetched so far; VPRI_PCP_PREFETCH_LIMIT once
 * @limit were (nothing changes); else VPRI_PCP_PREFETCH_SKIP.  While
 * paused nothing is prefetched: its request could not go.
 */
PcpPrefetchResult vpri_pcp_prefetch(PostcopyPages *p, uint64_t page,
                                    uint64_t limit);

/*
 * @page arrived at @now_ns (placed in guest RAM): it is RECEIVED.  Its
 * waiters, oldest first, go to @out (room for vpri_pcp_max_waiters());
 * returns how many.  Arrival of a page received already returns 0.
 */
size_t vpri_pcp_arrived(PostcopyPages *p, uint64_t page, uint64_t now_ns,
                        PcpWaiter *out);

/*
 * The connection broke: waiters keep waiting, requests are held.  Then
 * either vpri_pcp_resume(), which puts up to @max REQUESTED (or
 * PREFETCHED) pages from
 * *@cursor (0 at first) in @out to be asked for again and returns how
 * many (call until it returns 0), or vpri_pcp_fail(), which hands every
 * waiter back in @out (room for vpri_pcp_max_waiters()) to be failed,
 * returns how many, and fails every later fault on a page not received.
 */
void vpri_pcp_pause(PostcopyPages *p);
size_t vpri_pcp_resume(PostcopyPages *p, uint64_t *cursor, uint64_t *out,
                       size_t max);
size_t vpri_pcp_fail(PostcopyPages *p, PcpWaiter *out);

void vpri_pcp_get_stats(PostcopyPages *p, PcpStats *st);
/* Fault-to-arrival latency of the waiters handed back on arrival. */
const LatencyHistogram *vpri_pcp_latency(const PostcopyPages *p);

#endif
