/*
 * VPRI core: sideband fault ring
 *
 * The channel a device uses, instead of PCIe PRI, to report I/O page
 * faults found through its PA-BITMAP, and through which the host
 * answers them.  One ring serves one device DMA address space.
 *
 * A fault is "pending" from the moment it is raised until the host
 * completes it.  The ring holds at most @capacity pending faults, like
 * PRI's outstanding page request allocation; a pending fault is first
 * "queued" (waiting to be popped, in FIFO order) and then "in service"
 * (popped, waiting for its completion).
 *
 * - Faults on a page that is already pending are coalesced onto the
 *   pending record.  A write fault coalesced onto a queued read record
 *   upgrades it to a write.  A write fault coalesced onto a read record
 *   already in service cannot change what the host is doing; its queue
 *   is woken with the others when the read completes, retries its DMA,
 *   and raises a new write fault if the page is still read-only.
 * - When @capacity faults are pending, raising a fault on another page
 *   returns FAULT_RING_FULL: the caller stalls the queue and retries the
 *   DMA when woken.  The ring remembers the stalled queue and wakes it
 *   at the next completion, so no fault is lost.
 * - The host completes each popped record once; the completion reports
 *   which queues to wake: those waiting on the record, plus those that
 *   stalled on a full ring.
 *
 * Thread-safe: device and host threads may use a ring concurrently.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_FAULT_RING_H
#define HW_VPRI_FAULT_RING_H

#include <stddef.h>
#include <stdint.h>

#include "hw/vpri/core/latency-histogram.h"

#define FAULT_RING_PAGE_SHIFT 12
#define FAULT_RING_MAX_CAPACITY 65536
#define FAULT_RING_MAX_QUEUES 65536

typedef enum FaultAccess {
    FAULT_ACCESS_READ = 0,
    FAULT_ACCESS_WRITE = 1,
} FaultAccess;

typedef enum FaultStatus {
    /* Page made accessible: retry the DMA. */
    FAULT_STATUS_RESOLVED = 0,
    /* Page cannot be made accessible: the device must fail the I/O. */
    FAULT_STATUS_FAILED = 1,
} FaultStatus;

/* Device -> host; 32 bytes, no implicit padding. */
typedef struct FaultRecord {
    uint64_t seq;           /* per ring, from 1, strictly increasing */
    uint64_t page_addr;     /* page-aligned DMA address */
    uint64_t timestamp_ns;  /* when first raised, caller's clock */
    uint32_t device_id;
    uint16_t queue;         /* queue that raised it first */
    uint8_t access;         /* FaultAccess; WRITE once upgraded */
    uint8_t reserved;
} FaultRecord;

/* Host -> device; 16 bytes. */
typedef struct FaultCompletion {
    uint64_t seq;
    uint32_t status;        /* FaultStatus */
    uint32_t reserved;
} FaultCompletion;

/* Return values of vpri_fault_ring_raise() */
typedef enum FaultRaiseResult {
    FAULT_RING_NEW = 0,
    FAULT_RING_COALESCED = 1,
    FAULT_RING_FULL = 2,
} FaultRaiseResult;

typedef struct FaultRingStats {
    uint64_t raised;        /* new records */
    uint64_t coalesced;     /* raises merged into a pending record */
    uint64_t upgraded;      /* ... of which turned a queued read to write */
    uint64_t late_writes;   /* ... of which were writes onto an in-service
                               read, which will be retried */
    uint64_t resolved;
    uint64_t failed;
    uint64_t pending;       /* raised - resolved - failed */
    uint64_t queued;        /* pending and not yet popped */
    uint64_t full_stalls;   /* raises refused with FAULT_RING_FULL */
} FaultRingStats;

typedef struct FaultRing FaultRing;

/*
 * @capacity in [1, FAULT_RING_MAX_CAPACITY], @nqueues in
 * [1, FAULT_RING_MAX_QUEUES].  Returns NULL if out of range or out of
 * memory.
 */
FaultRing *vpri_fault_ring_new(uint32_t device_id, uint32_t capacity,
                          uint32_t nqueues);
void vpri_fault_ring_free(FaultRing *ring);

uint32_t vpri_fault_ring_capacity(const FaultRing *ring);
uint32_t vpri_fault_ring_nqueues(const FaultRing *ring);

/* Number of uint64_t words of a waiter mask: one bit per queue. */
size_t vpri_fault_ring_waiter_words(const FaultRing *ring);

/*
 * Device side: queue @queue faulted on an @access at DMA address
 * @addr.  On FAULT_RING_NEW or FAULT_RING_COALESCED, *@seq (if not
 * NULL) is the sequence number of the pending record the queue now
 * waits on.  On FAULT_RING_FULL nothing is recorded but the queue's
 * stall.  Returns -EINVAL for a bad @queue or @access.
 */
int vpri_fault_ring_raise(FaultRing *ring, uint16_t queue, FaultAccess access,
                     uint64_t addr, uint64_t now_ns, uint64_t *seq);

/* Host side: take the oldest queued record.  0, or -EAGAIN if none. */
int vpri_fault_ring_pop(FaultRing *ring, FaultRecord *rec);

/* As vpri_fault_ring_pop(), but wait up to @timeout_ns; -ETIMEDOUT if none. */
int vpri_fault_ring_pop_wait(FaultRing *ring, FaultRecord *rec,
                        uint64_t timeout_ns);

/*
 * Host side: answer a popped record.  On success, 0 is returned, the
 * record leaves the ring, *@rec (if not NULL) receives it as it was at
 * the end, and @waiters (if not NULL; vpri_fault_ring_waiter_words() words,
 * all overwritten) has a bit set for each queue to wake.  Queues that
 * stalled on a full ring stay remembered until a completion with a
 * non-NULL @waiters reports them.  The latency
 * @now_ns - timestamp_ns is added to the ring's histogram.
 *
 * -ENOENT: no pending record has that seq (never raised, or already
 *          completed).
 * -EBUSY:  the record has not been popped yet.
 * -EINVAL: bad status.
 */
int vpri_fault_ring_complete(FaultRing *ring, const FaultCompletion *c,
                        uint64_t now_ns, FaultRecord *rec,
                        uint64_t *waiters);

void vpri_fault_ring_get_stats(FaultRing *ring, FaultRingStats *stats);

/* Fault round-trip latencies, from raise to completion. */
LatencyHistogram *vpri_fault_ring_latency(FaultRing *ring);

#endif
