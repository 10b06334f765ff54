/*
 * VPRI core: sideband fault ring
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/vpri/core/fault-ring.h"

typedef enum FaultSlotState {
    FAULT_SLOT_FREE,
    FAULT_SLOT_QUEUED,
    FAULT_SLOT_IN_SERVICE,
} FaultSlotState;

typedef struct FaultSlot {
    FaultRecord rec;
    FaultSlotState state;
} FaultSlot;

/*
 * A pending record lives in a slot from raise to completion; the FIFO
 * only orders the slots not yet popped.  Lookups by page and by seq
 * scan the slots: capacity is meant to be small (tens to hundreds, like
 * a device's outstanding page request budget), and a scan keeps the
 * structure obviously correct.
 */
struct FaultRing {
    uint32_t device_id;
    uint32_t capacity;
    uint32_t nqueues;
    size_t wwords;

    pthread_mutex_t lock;
    pthread_cond_t queued_cond;

    FaultSlot *slots;
    uint64_t *waiters;          /* wwords per slot */
    uint64_t *full_waiters;     /* queues stalled on a full ring */
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t *fifo;
    uint32_t fifo_head;
    uint32_t fifo_count;
    uint64_t next_seq;

    FaultRingStats stats;       /* pending and queued are derived */
    LatencyHistogram *latency;
};

/* Free the ring's memory; its lock and condition are the caller's. */
static void vpri_fault_ring_release(FaultRing *ring)
{
    vpri_latency_histogram_free(ring->latency);
    free(ring->fifo);
    free(ring->free_slots);
    free(ring->full_waiters);
    free(ring->waiters);
    free(ring->slots);
    free(ring);
}

FaultRing *vpri_fault_ring_new(uint32_t device_id, uint32_t capacity,
                          uint32_t nqueues)
{
    FaultRing *ring;
    pthread_condattr_t attr;
    uint32_t i;

    if (capacity == 0 || capacity > FAULT_RING_MAX_CAPACITY ||
        nqueues == 0 || nqueues > FAULT_RING_MAX_QUEUES) {
        return NULL;
    }
    ring = calloc(1, sizeof(*ring));
    if (!ring) {
        return NULL;
    }
    ring->device_id = device_id;
    ring->capacity = capacity;
    ring->nqueues = nqueues;
    ring->wwords = (nqueues + 63) / 64;
    ring->next_seq = 1;
    ring->slots = calloc(capacity, sizeof(*ring->slots));
    ring->waiters = calloc((size_t)capacity * ring->wwords,
                           sizeof(*ring->waiters));
    ring->full_waiters = calloc(ring->wwords, sizeof(*ring->full_waiters));
    ring->free_slots = calloc(capacity, sizeof(*ring->free_slots));
    ring->fifo = calloc(capacity, sizeof(*ring->fifo));
    ring->latency = vpri_latency_histogram_new();
    if (!ring->slots || !ring->waiters || !ring->full_waiters ||
        !ring->free_slots || !ring->fifo || !ring->latency) {
        goto fail;
    }
    if (pthread_mutex_init(&ring->lock, NULL) != 0) {
        goto fail;
    }
    /* Timed waits must not jump when the wall clock is set. */
    if (pthread_condattr_init(&attr) != 0) {
        goto fail_mutex;
    }
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&ring->queued_cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        goto fail_mutex;
    }
    pthread_condattr_destroy(&attr);

    /* Hand out low slots first: it makes dumps easier to read. */
    for (i = 0; i < capacity; i++) {
        ring->free_slots[i] = capacity - 1 - i;
    }
    ring->nfree = capacity;
    return ring;

fail_mutex:
    pthread_mutex_destroy(&ring->lock);
fail:
    vpri_fault_ring_release(ring);
    return NULL;
}

void vpri_fault_ring_free(FaultRing *ring)
{
    if (!ring) {
        return;
    }
    pthread_cond_destroy(&ring->queued_cond);
    pthread_mutex_destroy(&ring->lock);
    vpri_fault_ring_release(ring);
}

uint32_t vpri_fault_ring_capacity(const FaultRing *ring)
{
    return ring->capacity;
}

uint32_t vpri_fault_ring_nqueues(const FaultRing *ring)
{
    return ring->nqueues;
}

size_t vpri_fault_ring_waiter_words(const FaultRing *ring)
{
    return ring->wwords;
}

LatencyHistogram *vpri_fault_ring_latency(FaultRing *ring)
{
    return ring->latency;
}

static uint64_t *vpri_fault_ring_slot_waiters(FaultRing *ring, uint32_t idx)
{
    return ring->waiters + (size_t)idx * ring->wwords;
}

static void vpri_fault_ring_set_bit(uint64_t *mask, uint16_t queue)
{
    mask[queue / 64] |= 1ULL << (queue % 64);
}

/* The busy slot whose record has @page (by_seq false) or @seq (true). */
static FaultSlot *vpri_fault_ring_find(FaultRing *ring, bool by_seq,
                                       uint64_t key, uint32_t *idx)
{
    uint32_t i;

    for (i = 0; i < ring->capacity; i++) {
        const FaultSlot *s = &ring->slots[i];

        if (s->state != FAULT_SLOT_FREE &&
            (by_seq ? s->rec.seq : s->rec.page_addr) == key) {
            *idx = i;
            return &ring->slots[i];
        }
    }
    return NULL;
}

int vpri_fault_ring_raise(FaultRing *ring, uint16_t queue, FaultAccess access,
                     uint64_t addr, uint64_t now_ns, uint64_t *seq)
{
    uint64_t page = addr & ~(((uint64_t)1 << FAULT_RING_PAGE_SHIFT) - 1);
    FaultSlot *slot;
    uint32_t idx;

    if (queue >= ring->nqueues ||
        (access != FAULT_ACCESS_READ && access != FAULT_ACCESS_WRITE)) {
        return -EINVAL;
    }

    pthread_mutex_lock(&ring->lock);
    slot = vpri_fault_ring_find(ring, false, page, &idx);
    if (slot) {
        vpri_fault_ring_set_bit(vpri_fault_ring_slot_waiters(ring, idx), queue);
        if (access == FAULT_ACCESS_WRITE &&
            slot->rec.access == FAULT_ACCESS_READ) {
            if (slot->state == FAULT_SLOT_QUEUED) {
                slot->rec.access = FAULT_ACCESS_WRITE;
                ring->stats.upgraded++;
            } else {
                ring->stats.late_writes++;
            }
        }
        ring->stats.coalesced++;
        if (seq) {
            *seq = slot->rec.seq;
        }
        pthread_mutex_unlock(&ring->lock);
        return FAULT_RING_COALESCED;
    }

    if (ring->nfree == 0) {
        vpri_fault_ring_set_bit(ring->full_waiters, queue);
        ring->stats.full_stalls++;
        pthread_mutex_unlock(&ring->lock);
        return FAULT_RING_FULL;
    }

    idx = ring->free_slots[--ring->nfree];
    slot = &ring->slots[idx];
    memset(&slot->rec, 0, sizeof(slot->rec));
    slot->rec.seq = ring->next_seq++;
    slot->rec.page_addr = page;
    slot->rec.timestamp_ns = now_ns;
    slot->rec.device_id = ring->device_id;
    slot->rec.queue = queue;
    slot->rec.access = (uint8_t)access;
    slot->state = FAULT_SLOT_QUEUED;
    memset(vpri_fault_ring_slot_waiters(ring, idx), 0,
           ring->wwords * sizeof(*ring->waiters));
    vpri_fault_ring_set_bit(vpri_fault_ring_slot_waiters(ring, idx), queue);
    ring->fifo[(ring->fifo_head + ring->fifo_count) % ring->capacity] = idx;
    ring->fifo_count++;
    ring->stats.raised++;
    if (seq) {
        *seq = slot->rec.seq;
    }
    pthread_cond_signal(&ring->queued_cond);
    pthread_mutex_unlock(&ring->lock);
    return FAULT_RING_NEW;
}

/* Called with the lock held and fifo_count > 0 */
static void vpri_fault_ring_pop_locked(FaultRing *ring, FaultRecord *rec)
{
    uint32_t idx = ring->fifo[ring->fifo_head];

    ring->fifo_head = (ring->fifo_head + 1) % ring->capacity;
    ring->fifo_count--;
    ring->slots[idx].state = FAULT_SLOT_IN_SERVICE;
    *rec = ring->slots[idx].rec;
}

int vpri_fault_ring_pop(FaultRing *ring, FaultRecord *rec)
{
    int ret = -EAGAIN;

    pthread_mutex_lock(&ring->lock);
    if (ring->fifo_count) {
        vpri_fault_ring_pop_locked(ring, rec);
        ret = 0;
    }
    pthread_mutex_unlock(&ring->lock);
    return ret;
}

int vpri_fault_ring_pop_wait(FaultRing *ring, FaultRecord *rec,
                        uint64_t timeout_ns)
{
    struct timespec deadline;
    int ret = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ns / 1000000000u);
    deadline.tv_nsec += (long)(timeout_ns % 1000000000u);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&ring->lock);
    while (!ring->fifo_count && ret == 0) {
        ret = pthread_cond_timedwait(&ring->queued_cond, &ring->lock,
                                     &deadline);
    }
    if (ring->fifo_count) {
        vpri_fault_ring_pop_locked(ring, rec);
        ret = 0;
    } else {
        ret = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&ring->lock);
    return ret;
}

int vpri_fault_ring_complete(FaultRing *ring, const FaultCompletion *c,
                        uint64_t now_ns, FaultRecord *rec,
                        uint64_t *waiters)
{
    FaultSlot *slot;
    FaultRecord done;
    uint64_t *w;
    uint32_t idx;
    size_t i;

    if (c->status != FAULT_STATUS_RESOLVED &&
        c->status != FAULT_STATUS_FAILED) {
        return -EINVAL;
    }

    pthread_mutex_lock(&ring->lock);
    slot = vpri_fault_ring_find(ring, true, c->seq, &idx);
    if (!slot) {
        pthread_mutex_unlock(&ring->lock);
        return -ENOENT;
    }
    if (slot->state != FAULT_SLOT_IN_SERVICE) {
        pthread_mutex_unlock(&ring->lock);
        return -EBUSY;
    }
    done = slot->rec;
    /*
     * Freeing the slot makes room, so the queues that found the ring
     * full are woken too; they retry and either find the page mapped or
     * take the free slot (or stall again, and are woken again later).
     */
    w = vpri_fault_ring_slot_waiters(ring, idx);
    if (waiters) {
        for (i = 0; i < ring->wwords; i++) {
            waiters[i] = w[i] | ring->full_waiters[i];
            ring->full_waiters[i] = 0;
        }
    }
    slot->state = FAULT_SLOT_FREE;
    ring->free_slots[ring->nfree++] = idx;
    if (c->status == FAULT_STATUS_RESOLVED) {
        ring->stats.resolved++;
    } else {
        ring->stats.failed++;
    }
    pthread_mutex_unlock(&ring->lock);

    if (now_ns >= done.timestamp_ns) {
        vpri_latency_histogram_record(ring->latency, now_ns - done.timestamp_ns);
    }
    if (rec) {
        *rec = done;
    }
    return 0;
}

void vpri_fault_ring_get_stats(FaultRing *ring, FaultRingStats *stats)
{
    pthread_mutex_lock(&ring->lock);
    *stats = ring->stats;
    stats->pending = ring->capacity - ring->nfree;
    stats->queued = ring->fifo_count;
    pthread_mutex_unlock(&ring->lock);
}
