/*
 * iolab-virtio: the block-request state machine shared by vpri-blk and
 * vdpa-mgmt's block instances
 *
 * One object per block device (or instance) runs virtio-blk requests
 * from popped descriptor chains to the used ring: header (parsed through
 * upstream's struct virtio_blk_outhdr), checks (core/blk-req.c), data
 * mapped straight into guest memory or bounced, the BlockBackend, the
 * status byte, the used ring.  Every DMA goes through the device's own
 * callbacks, so a device with a PA-BITMAP (VPRI) or a PASID translation
 * (vdpa-mgmt) fits: a DMA that faults holds the request at the stage it
 * reached and stops its queue; when the device has the page paged in it
 * runs the queue again and the request continues from that stage.
 *
 * Resource bounds (docs/virtq-engine.rst, "Resource bounds"):
 * - requests in flight per queue <= the queue's size (more is a device
 *   error, as upstream's "virtqueue size exceeded");
 * - bounce memory per object <= its bounce cap, and per pool of objects
 *   (a vdpa-mgmt function) <= the pool's cap: at a cap the queue waits
 *   (the guest is stalled, never failed) until buffers come back;
 * - chains popped per queue run <= IOLAB_BLK_POPS_PER_RUN: the rest run
 *   in a later main-loop iteration (the device's kick_again hook);
 * - completions are posted under the device's MemReentrancyGuard (from
 *   the backend callback with the guard engaged, or from a bottom half
 *   guarded by it), so a status byte aimed at the device's own registers
 *   cannot re-enter it from a backend callback.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_IOLAB_VIRTIO_IOLAB_BLK_H
#define HW_IOLAB_VIRTIO_IOLAB_BLK_H

#include "qemu/queue.h"
#include "block/accounting.h"
#include "hw/qdev-core.h"
#include "hw/iolab-virtio/core/virtq.h"
#include "hw/iolab-virtio/core/blk-req.h"

/* Chains one queue pops before it yields to the main loop */
#define IOLAB_BLK_POPS_PER_RUN 64
/* Spare requests kept per object (each carries a 16 KiB element) */
#define IOLAB_BLK_SPARE_REQS 64
/* Bytes of the GET_ID answer (VIRTIO_BLK_ID_BYTES) */
#define IOLAB_BLK_ID_BYTES 20

/* The map hook: the range cannot be mapped in one piece, bounce it */
#define IOLAB_BLK_MAP_COPY 3

typedef struct IolabBlkReq IolabBlkReq;
typedef QTAILQ_HEAD(, IolabBlkReq) IolabBlkReqList;

/*
 * What the device provides.  @dev is the opaque given to
 * iolab_blk_init().  Hooks marked optional may be NULL.
 */
typedef struct IolabBlkOps {
    /* Queue @queue's engine state, and the opaque of its DMA callbacks */
    Virtq *(*virtq)(void *dev, uint16_t queue);
    void *(*dma_opaque)(void *dev, uint16_t queue);
    /*
     * Optional: map @len bytes at @addr for the whole backend I/O.
     * 0 (*@host set), VIRTQ_FAULT (*@fault_addr), VIRTQ_ERROR or
     * IOLAB_BLK_MAP_COPY (bounce it instead).  Without it every request
     * is bounced.
     */
    int (*map)(void *dev, uint64_t addr, uint32_t len, bool to_guest,
               void **host, uint64_t *fault_addr);
    void (*unmap)(void *dev, uint64_t addr, void *host, uint32_t len,
                  bool to_guest, uint32_t access_len);
    /* A DMA of @queue faulted: stop the queue, have the page paged in */
    void (*fault)(void *dev, uint16_t queue, uint64_t addr, bool write);
    /* Is @queue stopped on a fault that is not answered yet? */
    bool (*blocked)(void *dev, uint16_t queue);
    /*
     * Optional: was @queue's last fault answered "cannot be paged in"?
     * Clears it.  The request it held then completes with IOERR.
     */
    bool (*take_fault_failed)(void *dev, uint16_t queue);
    /* The device is in its error state (NEEDS_RESET): nothing runs */
    bool (*broken)(void *dev);
    /* The guest broke the rules: log, enter the error state */
    void (*guest_error)(void *dev, uint16_t queue, const char *msg);
    /*
     * Used entries were pushed on @queue: interrupt if the ring asks.
     * Once per queue run and per batch of completions, after the pushes.
     */
    void (*notify)(void *dev, uint16_t queue);
    /* Run @queue again from a later main-loop iteration */
    void (*kick_again)(void *dev, uint16_t queue);
    /* The GET_ID answer */
    void (*get_id)(void *dev, uint8_t id[IOLAB_BLK_ID_BYTES]);
    /*
     * Optional: request @type of @queue was pushed with @status, having
     * moved @bytes of data (device statistics).
     */
    void (*completed)(void *dev, uint16_t queue, uint32_t type,
                      uint8_t status, uint32_t bytes);
} IolabBlkOps;

typedef struct IolabBlkQueue {
    /* Requests waiting for their queue to run again, in order */
    IolabBlkReqList held;
    /* Popped and not yet pushed (or dropped by a reset) */
    uint32_t inflight;
    /*
     * Requests waiting for bounce memory, in order.  While any waits, the
     * queue pops no new chain (the guest is stalled, not failed).
     */
    IolabBlkReqList bounce_wait;
    /* Used entries pushed since the last interrupt check */
    bool notify_pending;
} IolabBlkQueue;

/*
 * Bounce memory several objects draw on besides their own cap: a
 * vdpa-mgmt function's blk instances, tens of thousands of them, each
 * with a small cap of its own that together would still be unbounded.
 * A request takes from its object's budget and from the pool, or from
 * neither; refused by the pool, it waits as at its own cap, and its
 * object is woken when any member gives memory back.
 */
typedef struct IolabBlkPool {
    IolabBlkBudget budget;
    /* Objects with a request waiting for the pool, each once */
    GPtrArray *waiting;
} IolabBlkPool;

void iolab_blk_pool_init(IolabBlkPool *p, uint64_t cap);
void iolab_blk_pool_cleanup(IolabBlkPool *p);

typedef struct IolabBlk {
    const IolabBlkOps *ops;
    void *dev;
    const char *name;           /* of the device, in log messages */
    const VirtqDmaOps *dma;     /* the engine's DMA callbacks */
    BlockBackend *blk;
    uint32_t max_data;
    uint32_t seg_max;
    uint16_t num_queues;
    IolabBlkQueue *q;
    IolabBlkBudget bounce;
    IolabBlkPool *pool;         /* optional: shared with other objects */
    bool pool_waiting;          /* in pool->waiting */
    /* Requests in the backend */
    uint64_t inflight;
    /* Spare requests, at most spare_max */
    IolabBlkReq *spare[IOLAB_BLK_SPARE_REQS];
    unsigned nspare;
    unsigned spare_max;
    /* Reads and writes to submit at the end of a queue run */
    GPtrArray *batch;
    bool batching;
    /*
     * Backend completions not posted yet: they wait for complete_bh when
     * the backend callback could not post them (iolab_blk_complete())
     */
    IolabBlkReqList completed;
    QEMUBH *complete_bh;
    MemReentrancyGuard *guard;  /* the device's, complete_bh's */
    /* Our drain or reset waits for the backend: completions wait too */
    bool draining;
    /* Some queue has notify_pending set */
    bool notify_pending;
} IolabBlk;

typedef struct IolabBlkConfig {
    uint32_t max_data;          /* bytes of one read or write */
    uint32_t seg_max;           /* advertised VIRTIO_BLK_F_SEG_MAX; 0 none */
    uint64_t bounce_cap;        /* bytes of bounce memory at once */
    IolabBlkPool *pool;         /* optional: a cap shared with others */
    /*
     * Spare requests kept (16 KiB each), 0 for IOLAB_BLK_SPARE_REQS: a
     * device with thousands of objects keeps fewer.
     */
    unsigned spare_max;
} IolabBlkConfig;

/*
 * @guard is the device's DeviceState.mem_reentrancy_guard: completions
 * run under it.
 */
void iolab_blk_init(IolabBlk *b, const IolabBlkOps *ops, void *dev,
                    const char *name, BlockBackend *blk, uint16_t num_queues,
                    const VirtqDmaOps *dma, const IolabBlkConfig *cfg,
                    MemReentrancyGuard *guard);
void iolab_blk_cleanup(IolabBlk *b);

/* Capacity in 512-byte sectors */
uint64_t iolab_blk_capacity(IolabBlk *b);

/*
 * Run @queue: held requests first, then new chains, up to
 * IOLAB_BLK_POPS_PER_RUN of them; reads and writes are submitted
 * together at the end, adjacent ones merged.
 */
void iolab_blk_run_queue(IolabBlk *b, uint16_t queue);

/* Device reset: wait for the backend, drop everything in flight */
void iolab_blk_reset(IolabBlk *b);

/*
 * Wait for the backend and post its completions now, as complete_bh
 * would (under the device's guard): afterwards every request popped and
 * not pushed is held (a fault, a blocked queue, bounce memory).  For a
 * device that stops its queues and promises that what finished is in
 * the used ring (vdpa-mgmt's SUSPEND).
 */
void iolab_blk_drain(IolabBlk *b);

/* Requests of @queue held (on a fault, or waiting for bounce memory) */
uint32_t iolab_blk_queue_held(IolabBlk *b, uint16_t queue);

/* Requests in the backend (a migration cannot save those) */
static inline uint64_t iolab_blk_backend_inflight(IolabBlk *b)
{
    return b->inflight;
}

/*
 * Migration: every popped, unpushed chain, queue by queue in order, for
 * the device to save.  Completions not yet posted count as held.
 */
void iolab_blk_foreach_inflight(IolabBlk *b,
                                void (*fn)(void *opaque, uint16_t queue,
                                           const VirtqElem *e),
                                void *opaque);
/*
 * On the destination: chain @e of @queue was in flight on the source.
 * It starts again from its header when the queue next runs.
 */
void iolab_blk_restore(IolabBlk *b, uint16_t queue, const VirtqElem *e);

#endif
