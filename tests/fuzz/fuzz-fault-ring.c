/*
 * libFuzzer harness: the VPRI fault ring (hw/vpri/core/fault-ring.c)
 *
 * The input sets the ring's capacity and queue count, then scripts raises
 * (any queue, access and address, including invalid ones), pops and
 * completions (of popped, queued, completed and unknown sequence numbers,
 * with valid and invalid statuses).  A plain model of the behaviour the
 * header documents runs alongside, and the ring must agree with it on
 * every return value, every record and every wake-up mask:
 *
 * - faults on a pending page coalesce (a write upgrades a queued read);
 *   with capacity pending, a new page is refused as FULL and the queue
 *   remembered; records are popped in FIFO order and carry the first
 *   raiser, the page, the first timestamp and the access;
 * - a completion wakes exactly the queues that waited on the record plus
 *   those that stalled on a full ring, so no stalled queue is forgotten;
 * - the statistics count what happened.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/vpri/core/fault-ring.h"

#define FUZZ_MAX_CAP 8
#define FUZZ_MAX_QUEUES 200
#define FUZZ_WORDS ((FUZZ_MAX_QUEUES + 63) / 64)

typedef struct FuzzRec {
    bool busy, popped;
    FaultRecord rec;
    uint64_t waiters[FUZZ_WORDS];
} FuzzRec;

typedef struct FuzzRingModel {
    uint32_t cap, nqueues, device_id;
    FuzzRec r[FUZZ_MAX_CAP];
    uint32_t fifo[FUZZ_MAX_CAP];        /* indices into r[], oldest first */
    uint32_t nfifo;
    uint64_t full[FUZZ_WORDS];
    uint64_t next_seq;
    FaultRingStats st;
} FuzzRingModel;

static FuzzRingModel m;

static FuzzRec *fuzz_find(bool by_seq, uint64_t key)
{
    for (uint32_t i = 0; i < m.cap; i++) {
        if (m.r[i].busy &&
            (by_seq ? m.r[i].rec.seq : m.r[i].rec.page_addr) == key) {
            return &m.r[i];
        }
    }
    return NULL;
}

static uint32_t fuzz_pending(void)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < m.cap; i++) {
        n += m.r[i].busy;
    }
    return n;
}

static void fuzz_raise(FaultRing *ring, const uint8_t *p, uint64_t now)
{
    uint16_t queue = fuzz_ld16(p) % (m.nqueues + 2);   /* some invalid */
    FaultAccess access = p[2] % 5 == 4 ? 7 : (FaultAccess)(p[2] & 1);
    /* Few distinct pages, so that faults coalesce */
    uint64_t addr = (p[3] & 0x80) ? fuzz_ld64(p + 3)
                                  : ((uint64_t)(p[3] & 15) << 12) | p[4];
    uint64_t page = addr & ~0xfffull, seq = 0;
    FuzzRec *r;
    int ret;

    ret = vpri_fault_ring_raise(ring, queue, access, addr, now, &seq);
    if (queue >= m.nqueues || (access != FAULT_ACCESS_READ &&
                               access != FAULT_ACCESS_WRITE)) {
        FUZZ_ASSERT(ret == -EINVAL);
        return;
    }
    r = fuzz_find(false, page);
    if (r) {
        FUZZ_ASSERT(ret == FAULT_RING_COALESCED);
        FUZZ_ASSERT(seq == r->rec.seq);
        r->waiters[queue / 64] |= 1ull << (queue % 64);
        if (access == FAULT_ACCESS_WRITE &&
            r->rec.access == FAULT_ACCESS_READ) {
            if (!r->popped) {
                r->rec.access = FAULT_ACCESS_WRITE;
                m.st.upgraded++;
            } else {
                m.st.late_writes++;
            }
        }
        m.st.coalesced++;
        return;
    }
    if (fuzz_pending() == m.cap) {
        FUZZ_ASSERT(ret == FAULT_RING_FULL);
        m.full[queue / 64] |= 1ull << (queue % 64);
        m.st.full_stalls++;
        return;
    }
    FUZZ_ASSERT(ret == FAULT_RING_NEW);
    for (uint32_t i = 0; i < m.cap; i++) {
        if (!m.r[i].busy) {
            r = &m.r[i];
            memset(r, 0, sizeof(*r));
            r->busy = true;
            r->rec.device_id = m.device_id;
            r->rec.seq = m.next_seq++;
            r->rec.page_addr = page;
            r->rec.timestamp_ns = now;
            r->rec.queue = queue;
            r->rec.access = access;
            r->waiters[queue / 64] |= 1ull << (queue % 64);
            m.fifo[m.nfifo++] = i;
            break;
        }
    }
    FUZZ_ASSERT(r != NULL);
    FUZZ_ASSERT(seq == r->rec.seq);
    m.st.raised++;
}

static void fuzz_pop(FaultRing *ring)
{
    FaultRecord rec;
    FuzzRec *r;
    int ret = vpri_fault_ring_pop(ring, &rec);

    if (!m.nfifo) {
        FUZZ_ASSERT(ret == -EAGAIN);
        return;
    }
    FUZZ_ASSERT(ret == 0);
    r = &m.r[m.fifo[0]];
    memmove(m.fifo, m.fifo + 1, --m.nfifo * sizeof(m.fifo[0]));
    r->popped = true;
    FUZZ_ASSERT(rec.seq == r->rec.seq);
    FUZZ_ASSERT(rec.page_addr == r->rec.page_addr);
    FUZZ_ASSERT(rec.timestamp_ns == r->rec.timestamp_ns);
    FUZZ_ASSERT(rec.device_id == r->rec.device_id);
    FUZZ_ASSERT(rec.queue == r->rec.queue);
    FUZZ_ASSERT(rec.access == r->rec.access);
    FUZZ_ASSERT(rec.reserved == 0);
}

static void fuzz_complete(FaultRing *ring, const uint8_t *p, uint64_t now)
{
    FaultCompletion c = { 0 };
    FaultRecord rec;
    uint64_t waiters[FUZZ_WORDS + 1];
    size_t words = vpri_fault_ring_waiter_words(ring);
    bool want_waiters = !(p[1] & 1);
    FuzzRec *r;
    int ret;

    /* A seq that may be pending, completed, or never raised */
    c.seq = (p[0] & 0x80) ? fuzz_ld16(p + 2) : m.next_seq - 1 - (p[0] & 7);
    c.status = p[1] % 7 == 6 ? 2 : (p[1] >> 1) & 1;
    waiters[words] = 0xdeadbeef;         /* only @words words are written */
    ret = vpri_fault_ring_complete(ring, &c, now, &rec,
                                   want_waiters ? waiters : NULL);
    FUZZ_ASSERT(waiters[words] == 0xdeadbeef);
    if (c.status > FAULT_STATUS_FAILED) {
        FUZZ_ASSERT(ret == -EINVAL);
        return;
    }
    r = fuzz_find(true, c.seq);
    if (!r) {
        FUZZ_ASSERT(ret == -ENOENT);
        return;
    }
    if (!r->popped) {
        FUZZ_ASSERT(ret == -EBUSY);
        return;
    }
    FUZZ_ASSERT(ret == 0);
    FUZZ_ASSERT(rec.seq == r->rec.seq && rec.access == r->rec.access &&
                rec.page_addr == r->rec.page_addr);
    if (want_waiters) {
        for (size_t i = 0; i < words; i++) {
            FUZZ_ASSERT(waiters[i] == (r->waiters[i] | m.full[i]));
            m.full[i] = 0;
        }
    }
    r->busy = false;
    if (c.status == FAULT_STATUS_RESOLVED) {
        m.st.resolved++;
    } else {
        m.st.failed++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: capacity (byte 0), le16 queue count (1..2), device id (3..6),
 * then 6-byte operations: op, 5 argument bytes (+ the next op's bytes).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FaultRing *ring;
    FaultRingStats st;
    uint64_t now = 1000;

    if (size < 7) {
        return 0;
    }
    /* Out-of-range sizes are refused */
    FUZZ_ASSERT(vpri_fault_ring_new(0, 0, 1) == NULL);
    FUZZ_ASSERT(vpri_fault_ring_new(0, 1, 0) == NULL);
    FUZZ_ASSERT(vpri_fault_ring_new(0, FAULT_RING_MAX_CAPACITY + 1, 1) == NULL);
    FUZZ_ASSERT(vpri_fault_ring_new(0, 1, FAULT_RING_MAX_QUEUES + 1) == NULL);

    memset(&m, 0, sizeof(m));
    m.cap = data[0] % FUZZ_MAX_CAP + 1;
    m.nqueues = fuzz_ld16(data + 1) % FUZZ_MAX_QUEUES + 1;
    m.next_seq = 1;
    m.device_id = fuzz_ld32(data + 3);
    ring = vpri_fault_ring_new(fuzz_ld32(data + 3), m.cap, m.nqueues);
    FUZZ_ASSERT(ring != NULL);
    FUZZ_ASSERT(vpri_fault_ring_capacity(ring) == m.cap);
    FUZZ_ASSERT(vpri_fault_ring_nqueues(ring) == m.nqueues);
    FUZZ_ASSERT(vpri_fault_ring_waiter_words(ring) == (m.nqueues + 63) / 64);

    for (size_t off = 7; off + 6 <= size; off += 6) {
        const uint8_t *op = data + off;
        uint8_t arg[13] = { 0 };

        memcpy(arg, op + 1, size - off - 1 < sizeof(arg) ? size - off - 1
                                                         : sizeof(arg));
        now += op[0] >> 4;
        switch (op[0] % 4) {
        case 0:
        case 1:
            fuzz_raise(ring, arg, now);
            break;
        case 2:
            fuzz_pop(ring);
            break;
        case 3:
            fuzz_complete(ring, arg, now);
            break;
        }
        vpri_fault_ring_get_stats(ring, &st);
        FUZZ_ASSERT(st.raised == m.st.raised);
        FUZZ_ASSERT(st.coalesced == m.st.coalesced);
        FUZZ_ASSERT(st.upgraded == m.st.upgraded);
        FUZZ_ASSERT(st.late_writes == m.st.late_writes);
        FUZZ_ASSERT(st.resolved == m.st.resolved);
        FUZZ_ASSERT(st.failed == m.st.failed);
        FUZZ_ASSERT(st.full_stalls == m.st.full_stalls);
        FUZZ_ASSERT(st.pending == fuzz_pending());
        FUZZ_ASSERT(st.pending == st.raised - st.resolved - st.failed);
        FUZZ_ASSERT(st.queued == m.nfifo);
    }
    vpri_fault_ring_free(ring);
    return 0;
}
