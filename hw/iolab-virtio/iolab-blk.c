/*
 * iolab-virtio: the block-request state machine shared by vpri-blk and
 * vdpa-mgmt's block instances (include/hw/iolab-virtio/iolab-blk.h)
 *
 * A request is held at the stage it reached when one of its DMAs faults,
 * and continues from that stage once its queue runs again:
 *
 *   HEADER -> GATHER -> BACKEND -> (SCATTER) -> STATUS -> PUSH
 *
 * Data goes straight between the backend and guest memory when the
 * device's map hook can map it (held against eviction for the whole I/O);
 * otherwise it is copied through a bounce buffer from the device's
 * budget.  Reads and writes that one queue run brings in are submitted
 * together at its end, and those that continue one another on the disk go
 * to the backend as one request, as virtio-blk-pci does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "system/block-backend.h"
#include "system/runstate.h"
#include "standard-headers/linux/virtio_blk.h"
#include "hw/iolab-virtio/iolab-blk.h"
#include "trace.h"

/* The wire layouts the core's constants stand for */
QEMU_BUILD_BUG_ON(sizeof(struct virtio_blk_outhdr) != IOLAB_BLK_HDR_SIZE);
QEMU_BUILD_BUG_ON(VIRTIO_BLK_ID_BYTES != IOLAB_BLK_ID_BYTES);

/* Where a request is: a fault holds it there, a retry resumes there. */
typedef enum IolabBlkStage {
    IOLAB_BLK_STAGE_HEADER,     /* read the request header */
    IOLAB_BLK_STAGE_GATHER,     /* map the data, or copy write data in */
    IOLAB_BLK_STAGE_BACKEND,    /* backend I/O in flight */
    IOLAB_BLK_STAGE_SCATTER,    /* copy read data to the guest */
    IOLAB_BLK_STAGE_STATUS,     /* write the status byte */
    IOLAB_BLK_STAGE_PUSH,       /* put it in the used ring */
} IolabBlkStage;

/* A piece of the request's data mapped for the backend. */
typedef struct IolabBlkMap {
    uint64_t addr;
    void *host;
    uint32_t len;
} IolabBlkMap;

struct IolabBlkReq {
    IolabBlk *b;
    uint16_t queue;
    IolabBlkStage stage;
    uint32_t type;
    uint64_t sector;
    uint8_t status;
    uint32_t data_len;
    uint32_t written;
    bool faulted;               /* held because its own DMA faulted */
    bool mapped;                /* data mapped in maps[], not bounced */
    void *bounce;               /* data_len bytes from b->bounce */
    unsigned nmaps;
    BlockAcctCookie acct;
    QTAILQ_ENTRY(IolabBlkReq) next;
    /*
     * From here on, fields survive the reuse of a spare request: the map
     * array and the iovec would otherwise be allocated for every request.
     */
    IolabBlkMap *maps;
    unsigned maps_cap;
    QEMUIOVector qiov;
    VirtqElem elem;             /* last: it is large */
};

/* Adjacent reads or writes that go to the backend as one. */
typedef struct IolabBlkMerged {
    QEMUIOVector qiov;
    GPtrArray *reqs;
} IolabBlkMerged;

static void iolab_blk_run_req(IolabBlkReq *req);

uint64_t iolab_blk_capacity(IolabBlk *b)
{
    int64_t len = blk_getlength(b->blk);

    return len < 0 ? 0 : len / IOLAB_BLK_SECTOR_SIZE;
}

static bool iolab_blk_is_rw(uint32_t type)
{
    return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT;
}

static void G_GNUC_PRINTF(3, 4)
iolab_blk_guest_error(IolabBlk *b, uint16_t queue, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    b->ops->guest_error(b->dev, queue, msg);
}

static inline const VirtqDmaOps *iolab_blk_dma(IolabBlk *b)
{
    return b->dma;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/*
 * Only the per-request fields are cleared: the pop fills the element, and
 * the map array and iovec of a spare request are reused.
 */
static IolabBlkReq *iolab_blk_req_new(IolabBlk *b, uint16_t queue)
{
    IolabBlkReq *req;

    if (b->nspare) {
        req = b->spare[--b->nspare];
    } else {
        req = g_malloc(sizeof(*req));
        req->maps = NULL;
        req->maps_cap = 0;
        qemu_iovec_init(&req->qiov, 1);
    }
    memset(req, 0, offsetof(IolabBlkReq, maps));
    req->b = b;
    req->queue = queue;
    return req;
}

static void iolab_blk_req_destroy(IolabBlkReq *req)
{
    qemu_iovec_destroy(&req->qiov);
    g_free(req->maps);
    g_free(req);
}

/* Back to the spares: for a request that was never popped */
static void iolab_blk_req_put(IolabBlk *b, IolabBlkReq *req)
{
    if (b->nspare < b->spare_max) {
        qemu_iovec_reset(&req->qiov);
        b->spare[b->nspare++] = req;
    } else {
        iolab_blk_req_destroy(req);
    }
}

static void iolab_blk_unmap_data(IolabBlkReq *req, bool transferred)
{
    IolabBlk *b = req->b;
    bool to_guest = req->type == VIRTIO_BLK_T_IN;

    for (unsigned i = 0; i < req->nmaps; i++) {
        IolabBlkMap *m = &req->maps[i];

        b->ops->unmap(b->dev, m->addr, m->host, m->len, to_guest,
                      transferred ? m->len : 0);
    }
    req->nmaps = 0;
    req->mapped = false;
}

/* Bounce memory came back: queues that waited for it run again. */
static void iolab_blk_bounce_returned(IolabBlk *b)
{
    for (uint16_t i = 0; i < b->num_queues; i++) {
        if (!QTAILQ_EMPTY(&b->q[i].bounce_wait)) {
            b->ops->kick_again(b->dev, i);
        }
    }
}

void iolab_blk_pool_init(IolabBlkPool *p, uint64_t cap)
{
    iolab_blk_budget_init(&p->budget, cap);
    p->waiting = g_ptr_array_new();
}

void iolab_blk_pool_cleanup(IolabBlkPool *p)
{
    /* Its members are gone first: none is left waiting */
    g_ptr_array_free(p->waiting, true);
    p->waiting = NULL;
}

/* Bounce memory went back to the pool: every member that waited runs. */
static void iolab_blk_pool_returned(IolabBlkPool *p)
{
    g_autoptr(GPtrArray) woken = NULL;

    if (!p->waiting->len) {
        return;
    }
    /* A member woken here may wait again: it goes on a new list */
    woken = p->waiting;
    p->waiting = g_ptr_array_new();
    for (guint i = 0; i < woken->len; i++) {
        IolabBlk *m = g_ptr_array_index(woken, i);

        m->pool_waiting = false;
        iolab_blk_bounce_returned(m);
    }
}

/*
 * Bounce memory comes back: to the object and its pool, and whatever
 * waited for either runs again.
 */
static void iolab_blk_bounce_give(IolabBlk *b, uint64_t len)
{
    iolab_blk_budget_give(&b->bounce, len);
    iolab_blk_bounce_returned(b);
    if (b->pool) {
        iolab_blk_budget_give(&b->pool->budget, len);
        iolab_blk_pool_returned(b->pool);
    }
}

/* A popped request is done with (pushed, or dropped) */
static void iolab_blk_req_free(IolabBlkReq *req)
{
    IolabBlk *b = req->b;

    if (req->mapped) {
        iolab_blk_unmap_data(req, false);
    }
    if (req->bounce) {
        qemu_vfree(req->bounce);
        iolab_blk_bounce_give(b, req->data_len);
    }
    b->q[req->queue].inflight--;
    iolab_blk_req_put(b, req);
}

/*
 * The request's DMA hit a non-present page: keep it at this stage and stop
 * the queue until the device has the page paged in.
 */
static void iolab_blk_hold(IolabBlkReq *req, uint64_t fault_addr, bool write)
{
    IolabBlk *b = req->b;

    trace_iolab_blk_hold(b->name, req->queue, req->elem.head, req->stage,
                         fault_addr, write);
    /* It was the oldest runnable request of its queue: it stays first. */
    req->faulted = true;
    QTAILQ_INSERT_HEAD(&b->q[req->queue].held, req, next);
    b->ops->fault(b->dev, req->queue, fault_addr, write);
}

/* Returns false if the request stopped (held, or the device is broken). */
static bool iolab_blk_dma_result(IolabBlkReq *req, int ret,
                                 uint64_t fault_addr, bool write,
                                 const char *what)
{
    if (ret == 0) {
        return true;
    }
    if (ret == VIRTQ_FAULT) {
        iolab_blk_hold(req, fault_addr, write);
        return false;
    }
    iolab_blk_guest_error(req->b, req->queue, "queue %u: DMA error on %s",
                          req->queue, what);
    iolab_blk_req_free(req);
    return false;
}

/*
 * Map the request's data: for a write, the device-readable bytes after the
 * header; for a read, the device-writable bytes before the status byte.
 */
static int iolab_blk_map_data(IolabBlkReq *req, uint64_t *fault_addr)
{
    IolabBlk *b = req->b;
    bool to_guest = req->type == VIRTIO_BLK_T_IN;
    uint32_t skip = to_guest ? 0 : IOLAB_BLK_HDR_SIZE;
    uint32_t left = req->data_len;

    if (!b->ops->map) {
        return IOLAB_BLK_MAP_COPY;
    }
    if (req->maps_cap < req->elem.nseg) {
        req->maps_cap = req->elem.nseg;
        req->maps = g_renew(IolabBlkMap, req->maps, req->maps_cap);
    }
    qemu_iovec_reset(&req->qiov);
    req->mapped = true;
    for (unsigned i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *seg = &req->elem.seg[i];
        uint32_t off, take;
        void *host;
        int ret;

        if (seg->write != to_guest) {
            continue;
        }
        if (skip >= seg->len) {
            skip -= seg->len;
            continue;
        }
        off = skip;
        skip = 0;
        take = MIN(seg->len - off, left);
        ret = b->ops->map(b->dev, seg->addr + off, take, to_guest, &host,
                          fault_addr);
        if (ret) {
            iolab_blk_unmap_data(req, false);
            qemu_iovec_reset(&req->qiov);
            return ret;
        }
        req->maps[req->nmaps++] = (IolabBlkMap) {
            .addr = seg->addr + off, .host = host, .len = take,
        };
        qemu_iovec_add(&req->qiov, host, take);
        left -= take;
    }
    assert(left == 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Backend                                                            */

/*
 * A backend request finished: record its result and queue it for
 * posting.  Nothing touches guest memory here: iolab_blk_complete() does,
 * once per backend callback.
 */
static void iolab_blk_req_done(IolabBlkReq *req, int ret)
{
    IolabBlk *b = req->b;

    b->inflight--;
    trace_iolab_blk_backend_done(b->name, req->queue, req->elem.head, ret);
    if (ret < 0) {
        req->status = VIRTIO_BLK_S_IOERR;
        block_acct_failed(blk_get_stats(b->blk), &req->acct);
    } else {
        block_acct_done(blk_get_stats(b->blk), &req->acct);
    }
    if (req->mapped) {
        iolab_blk_unmap_data(req, ret >= 0);
        req->written = req->type == VIRTIO_BLK_T_IN && ret >= 0 ?
                       req->data_len : 0;
        req->stage = IOLAB_BLK_STAGE_STATUS;
    } else {
        req->stage = req->type == VIRTIO_BLK_T_IN && ret >= 0 ?
                     IOLAB_BLK_STAGE_SCATTER : IOLAB_BLK_STAGE_STATUS;
    }
    QTAILQ_INSERT_TAIL(&b->completed, req, next);
}

/*
 * Used entries were pushed on some queues since the last call: one
 * interrupt check per queue and batch, as upstream's virtio-blk does, not
 * one per request.  The ring's suppression state (EVENT_IDX: the last
 * used index signalled) covers every entry pushed since.
 */
static void iolab_blk_flush_notify(IolabBlk *b)
{
    if (!b->notify_pending) {
        return;
    }
    b->notify_pending = false;
    for (uint16_t i = 0; i < b->num_queues; i++) {
        if (b->q[i].notify_pending) {
            b->q[i].notify_pending = false;
            b->ops->notify(b->dev, i);
        }
    }
}

/* Post the completions: scatter, status byte, used ring, interrupt. */
static void iolab_blk_post_completions(IolabBlk *b)
{
    IolabBlkReq *req;

    while ((req = QTAILQ_FIRST(&b->completed))) {
        IolabBlkQueue *q = &b->q[req->queue];

        QTAILQ_REMOVE(&b->completed, req, next);
        if (b->ops->broken(b->dev)) {
            iolab_blk_req_free(req);
            continue;
        }
        /* While the queue is blocked, nothing of it touches guest memory. */
        if (b->ops->blocked(b->dev, req->queue) || !QTAILQ_EMPTY(&q->held)) {
            QTAILQ_INSERT_TAIL(&q->held, req, next);
            continue;
        }
        iolab_blk_run_req(req);
    }
    iolab_blk_flush_notify(b);
}

static void iolab_blk_complete_bh(void *opaque)
{
    iolab_blk_post_completions(opaque);
}

/*
 * Post what the backend just completed, under the device's re-entrancy
 * guard (issue 13): a status byte or data aimed at the device's own
 * registers is then refused as a DMA error instead of resetting the
 * device from inside its completion.
 *
 * From the main loop, with the guard free (no MMIO/PIO dispatch of this
 * device, no complete_bh, no drain of ours below us), the completions are
 * posted now, with the guard engaged for the duration: what complete_bh
 * would do, without its main-loop iteration, which a driver with one
 * request in flight pays once per request (docs/benchmarks.md, vdpa-mgmt
 * one instance).  Otherwise they wait for complete_bh:
 * - the guard is engaged: we are inside the device's own dispatch (or
 *   complete_bh, or iolab_blk_drain()), which must not see its state
 *   change under it; the bottom half runs once it has returned;
 * - a drain or reset of ours is waiting for the backend: reset drops the
 *   completions, drain posts them itself;
 * - the VM is stopped (the backend is drained when it stops): nothing is
 *   posted from the drain in the middle of the stop.
 * A blocked queue or a broken device needs no exception: both paths post
 * through iolab_blk_post_completions(), which holds or drops per request.
 *
 * complete_bh is pending exactly while the completed list is not empty.
 * It is scheduled once per batch, not once per request: each
 * qemu_bh_schedule() wakes the main loop with an eventfd write, even for a
 * bottom half already pending.  Interrupts are checked once per call
 * (iolab_blk_flush_notify()), for all the requests it posts.
 */
static void iolab_blk_complete(IolabBlk *b, bool was_empty)
{
    if (b->guard->engaged_in_io || b->draining || !runstate_is_running()) {
        if (was_empty) {
            qemu_bh_schedule(b->complete_bh);
        }
        return;
    }
    if (!was_empty) {
        qemu_bh_cancel(b->complete_bh);
    }
    b->guard->engaged_in_io = true;
    iolab_blk_post_completions(b);
    b->guard->engaged_in_io = false;
}

/* The backend's callback for one request */
static void iolab_blk_backend_done(void *opaque, int ret)
{
    IolabBlkReq *req = opaque;
    IolabBlk *b = req->b;
    bool was_empty = QTAILQ_EMPTY(&b->completed);

    iolab_blk_req_done(req, ret);
    iolab_blk_complete(b, was_empty);
}

static void iolab_blk_submit_rw(IolabBlk *b, uint32_t type, uint64_t sector,
                                QEMUIOVector *qiov, BlockCompletionFunc *cb,
                                void *opaque)
{
    trace_iolab_blk_submit(b->name, type, sector, qiov->size);
    if (type == VIRTIO_BLK_T_IN) {
        blk_aio_preadv(b->blk, sector * IOLAB_BLK_SECTOR_SIZE, qiov, 0,
                       cb, opaque);
    } else {
        blk_aio_pwritev(b->blk, sector * IOLAB_BLK_SECTOR_SIZE, qiov, 0,
                        cb, opaque);
    }
}

static void iolab_blk_merged_done(void *opaque, int ret)
{
    IolabBlkMerged *m = opaque;
    IolabBlk *b = ((IolabBlkReq *)g_ptr_array_index(m->reqs, 0))->b;
    bool was_empty = QTAILQ_EMPTY(&b->completed);

    /* One batch: posted together, one interrupt check */
    for (guint i = 0; i < m->reqs->len; i++) {
        iolab_blk_req_done(g_ptr_array_index(m->reqs, i), ret);
    }
    qemu_iovec_destroy(&m->qiov);
    g_ptr_array_free(m->reqs, true);
    g_free(m);
    iolab_blk_complete(b, was_empty);
}

static int iolab_blk_req_cmp(gconstpointer a, gconstpointer b)
{
    const IolabBlkReq *x = *(IolabBlkReq * const *)a;
    const IolabBlkReq *y = *(IolabBlkReq * const *)b;

    if (x->type != y->type) {
        return x->type < y->type ? -1 : 1;
    }
    return x->sector < y->sector ? -1 : x->sector > y->sector;
}

/* Submit b->batch, as one backend request per run of adjacent requests. */
static void iolab_blk_flush_batch(IolabBlk *b)
{
    GPtrArray *batch = b->batch;
    uint64_t max_bytes = MIN_NON_ZERO(blk_get_max_transfer(b->blk),
                                      b->max_data);
    int max_iov = blk_get_max_iov(b->blk);
    guint i = 0;

    if (batch->len > 1) {
        g_ptr_array_sort(batch, iolab_blk_req_cmp);
    }
    while (i < batch->len) {
        IolabBlkReq *first = g_ptr_array_index(batch, i);
        uint64_t bytes = first->data_len;
        int niov = first->qiov.niov;
        guint j = i + 1;

        for (; j < batch->len; j++) {
            IolabBlkReq *prev = g_ptr_array_index(batch, j - 1);
            IolabBlkReq *next = g_ptr_array_index(batch, j);

            if (next->type != first->type ||
                next->sector * IOLAB_BLK_SECTOR_SIZE !=
                    prev->sector * IOLAB_BLK_SECTOR_SIZE + prev->data_len ||
                bytes + next->data_len > max_bytes ||
                niov + next->qiov.niov > max_iov) {
                break;
            }
            bytes += next->data_len;
            niov += next->qiov.niov;
        }
        if (j == i + 1) {
            iolab_blk_submit_rw(b, first->type, first->sector, &first->qiov,
                                iolab_blk_backend_done, first);
        } else {
            IolabBlkMerged *m = g_new(IolabBlkMerged, 1);

            m->reqs = g_ptr_array_sized_new(j - i);
            qemu_iovec_init(&m->qiov, niov);
            for (guint k = i; k < j; k++) {
                IolabBlkReq *req = g_ptr_array_index(batch, k);

                g_ptr_array_add(m->reqs, req);
                qemu_iovec_concat(&m->qiov, &req->qiov, 0, req->qiov.size);
            }
            /* Shown as rd_merged / wr_merged by query-blockstats */
            block_acct_merge_done(blk_get_stats(b->blk),
                                  first->type == VIRTIO_BLK_T_IN ?
                                  BLOCK_ACCT_READ : BLOCK_ACCT_WRITE,
                                  j - i - 1);
            iolab_blk_submit_rw(b, first->type, first->sector, &m->qiov,
                                iolab_blk_merged_done, m);
        }
        i = j;
    }
    g_ptr_array_set_size(batch, 0);
}

static void iolab_blk_submit(IolabBlkReq *req)
{
    IolabBlk *b = req->b;

    switch (req->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        if (!req->mapped) {
            qemu_iovec_reset(&req->qiov);
            qemu_iovec_add(&req->qiov, req->bounce, req->data_len);
        }
        req->stage = IOLAB_BLK_STAGE_BACKEND;
        b->inflight++;
        block_acct_start(blk_get_stats(b->blk), &req->acct, req->data_len,
                         req->type == VIRTIO_BLK_T_IN ? BLOCK_ACCT_READ :
                                                        BLOCK_ACCT_WRITE);
        if (b->batching) {
            g_ptr_array_add(b->batch, req);
        } else {
            iolab_blk_submit_rw(b, req->type, req->sector, &req->qiov,
                                iolab_blk_backend_done, req);
        }
        return;
    case VIRTIO_BLK_T_FLUSH:
        req->stage = IOLAB_BLK_STAGE_BACKEND;
        b->inflight++;
        block_acct_start(blk_get_stats(b->blk), &req->acct, 0,
                         BLOCK_ACCT_FLUSH);
        blk_aio_flush(b->blk, iolab_blk_backend_done, req);
        return;
    case VIRTIO_BLK_T_GET_ID: {
        uint8_t id[IOLAB_BLK_ID_BYTES] = { 0 };
        uint32_t len = MIN(req->elem.in_len - 1, IOLAB_BLK_ID_BYTES);
        uint64_t fault;
        int ret;

        b->ops->get_id(b->dev, id);
        ret = iolab_virtq_elem_write(&req->elem, iolab_blk_dma(b),
                                     b->ops->dma_opaque(b->dev, req->queue),
                                     0, id, len, &fault);
        if (!iolab_blk_dma_result(req, ret, fault, true, "GET_ID data")) {
            return;
        }
        req->written = len;
        req->stage = IOLAB_BLK_STAGE_STATUS;
        iolab_blk_run_req(req);
        return;
    }
    default:
        req->status = VIRTIO_BLK_S_UNSUPP;
        req->stage = IOLAB_BLK_STAGE_STATUS;
        iolab_blk_run_req(req);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* The state machine                                                  */

/* Read and check the header; false if the request stopped. */
static bool iolab_blk_parse_header(IolabBlkReq *req)
{
    IolabBlk *b = req->b;
    struct virtio_blk_outhdr hdr;
    IolabBlkLimits lim;
    const char *why;
    uint64_t fault;
    uint32_t nseg;
    int ret;

    ret = iolab_virtq_elem_read(&req->elem, iolab_blk_dma(b),
                                b->ops->dma_opaque(b->dev, req->queue), 0,
                                &hdr, sizeof(hdr), &fault);
    if (!iolab_blk_dma_result(req, ret, fault, false, "request header")) {
        return false;
    }
    req->type = le32_to_cpu(hdr.type);
    req->sector = le64_to_cpu(hdr.sector);
    req->status = VIRTIO_BLK_S_OK;
    trace_iolab_blk_request(b->name, req->queue, req->elem.head, req->type,
                            req->sector);
    if (!iolab_blk_is_rw(req->type)) {
        return true;
    }
    req->data_len = iolab_blk_data_len(&req->elem,
                                       req->type == VIRTIO_BLK_T_IN, &nseg);
    lim = (IolabBlkLimits) {
        .capacity = iolab_blk_capacity(b),
        .max_data = b->max_data,
        .seg_max = b->seg_max,
        .read_only = !blk_is_writable(b->blk),
    };
    why = iolab_blk_check_rw(&lim, req->type == VIRTIO_BLK_T_IN, req->sector,
                             req->data_len, nseg);
    if (why) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: queue %u: request of %u bytes in %u segments at "
                      "sector %" PRIu64 " (capacity %" PRIu64 "): %s\n",
                      b->name, req->queue, req->data_len, nseg, req->sector,
                      lim.capacity, why);
        req->status = VIRTIO_BLK_S_IOERR;
        req->data_len = 0;
        req->stage = IOLAB_BLK_STAGE_STATUS;
    }
    return true;
}

/*
 * A bounce buffer for the request's data, from the budget.  False if the
 * request stopped: at the cap it waits, first on its queue, until bounce
 * memory comes back.
 */
static bool iolab_blk_take_bounce(IolabBlkReq *req)
{
    IolabBlk *b = req->b;

    if (!iolab_blk_budget_take(&b->bounce, req->data_len)) {
        trace_iolab_blk_bounce_stall(b->name, req->queue, req->data_len,
                                     b->bounce.used, b->bounce.cap);
        QTAILQ_INSERT_TAIL(&b->q[req->queue].bounce_wait, req, next);
        return false;
    }
    if (b->pool && !iolab_blk_budget_take(&b->pool->budget, req->data_len)) {
        iolab_blk_budget_give(&b->bounce, req->data_len);
        trace_iolab_blk_bounce_stall(b->name, req->queue, req->data_len,
                                     b->pool->budget.used,
                                     b->pool->budget.cap);
        QTAILQ_INSERT_TAIL(&b->q[req->queue].bounce_wait, req, next);
        if (!b->pool_waiting) {
            b->pool_waiting = true;
            g_ptr_array_add(b->pool->waiting, b);
        }
        return false;
    }
    req->bounce = qemu_try_blockalign(blk_bs(b->blk), req->data_len);
    if (!req->bounce) {
        iolab_blk_bounce_give(b, req->data_len);
        req->status = VIRTIO_BLK_S_IOERR;
        req->data_len = 0;
        req->stage = IOLAB_BLK_STAGE_STATUS;
    }
    return true;
}

/* Drive a request from its current stage as far as it can go. */
static void iolab_blk_run_req(IolabBlkReq *req)
{
    IolabBlk *b = req->b;
    const VirtqDmaOps *dma = iolab_blk_dma(b);
    void *opaque = b->ops->dma_opaque(b->dev, req->queue);
    Virtq *vq = b->ops->virtq(b->dev, req->queue);
    uint64_t fault;
    int ret;

    switch (req->stage) {
    case IOLAB_BLK_STAGE_HEADER:
        if (!iolab_blk_parse_header(req)) {
            return;
        }
        if (req->stage == IOLAB_BLK_STAGE_STATUS) {
            iolab_blk_run_req(req);
            return;
        }
        req->stage = IOLAB_BLK_STAGE_GATHER;
        /* fall through */
    case IOLAB_BLK_STAGE_GATHER:
        if (iolab_blk_is_rw(req->type) && req->data_len && !req->bounce) {
            ret = iolab_blk_map_data(req, &fault);
            if (ret == 0) {
                iolab_blk_submit(req);
                return;
            }
            if (ret != IOLAB_BLK_MAP_COPY &&
                !iolab_blk_dma_result(req, ret, fault,
                                      req->type == VIRTIO_BLK_T_IN,
                                      "request data")) {
                return;
            }
            if (!iolab_blk_take_bounce(req)) {
                return;
            }
            if (req->stage == IOLAB_BLK_STAGE_STATUS) {
                iolab_blk_run_req(req);
                return;
            }
        }
        if (req->type == VIRTIO_BLK_T_OUT && req->data_len) {
            ret = iolab_virtq_elem_read(&req->elem, dma, opaque,
                                        IOLAB_BLK_HDR_SIZE, req->bounce,
                                        req->data_len, &fault);
            if (!iolab_blk_dma_result(req, ret, fault, false, "write data")) {
                return;
            }
        }
        iolab_blk_submit(req);
        return;
    case IOLAB_BLK_STAGE_BACKEND:
        g_assert_not_reached();
    case IOLAB_BLK_STAGE_SCATTER:
        ret = iolab_virtq_elem_write(&req->elem, dma, opaque, 0, req->bounce,
                                     req->data_len, &fault);
        if (!iolab_blk_dma_result(req, ret, fault, true, "read data")) {
            return;
        }
        req->written = req->data_len;
        req->stage = IOLAB_BLK_STAGE_STATUS;
        /* fall through */
    case IOLAB_BLK_STAGE_STATUS:
        ret = iolab_virtq_elem_write(&req->elem, dma, opaque,
                                     req->elem.in_len - 1, &req->status, 1,
                                     &fault);
        if (!iolab_blk_dma_result(req, ret, fault, true, "status")) {
            return;
        }
        req->stage = IOLAB_BLK_STAGE_PUSH;
        /* fall through */
    case IOLAB_BLK_STAGE_PUSH:
        ret = iolab_virtq_push(vq, dma, opaque, req->elem.head,
                               req->written + 1, &fault);
        if (!iolab_blk_dma_result(req, ret, fault, true, "used ring")) {
            return;
        }
        trace_iolab_blk_complete(b->name, req->queue, req->elem.head,
                                 req->status, req->written);
        if (b->ops->completed) {
            b->ops->completed(b->dev, req->queue, req->type, req->status,
                              req->status == VIRTIO_BLK_S_OK &&
                              iolab_blk_is_rw(req->type) ?
                              req->data_len : 0);
        }
        /* The interrupt, once per batch: iolab_blk_flush_notify() */
        b->q[req->queue].notify_pending = true;
        b->notify_pending = true;
        iolab_blk_req_free(req);
        return;
    }
}

/* A failed fault completes the request that raised it with an I/O error. */
static void iolab_blk_fail_held(IolabBlkReq *req)
{
    req->status = VIRTIO_BLK_S_IOERR;
    if (req->stage < IOLAB_BLK_STAGE_STATUS) {
        req->written = 0;
        req->stage = IOLAB_BLK_STAGE_STATUS;
    }
}

/*
 * The ring is empty: ask for the next kick, then look once more, since
 * the driver may have added a chain before it saw the new setting.
 * True if there is more to pop.
 */
static bool iolab_blk_rearm(IolabBlk *b, uint16_t index)
{
    Virtq *vq = b->ops->virtq(b->dev, index);
    void *opaque = b->ops->dma_opaque(b->dev, index);
    uint64_t fault;
    uint16_t avail;
    int ret;

    ret = iolab_virtq_set_notification(vq, iolab_blk_dma(b), opaque, true,
                                       &fault);
    if (ret == VIRTQ_FAULT) {
        b->ops->fault(b->dev, index, fault, true);
        return false;
    }
    ret = iolab_virtq_avail_count(vq, iolab_blk_dma(b), opaque, &avail,
                                  &fault);
    if (ret == VIRTQ_FAULT) {
        b->ops->fault(b->dev, index, fault, false);
        return false;
    }
    if (ret == VIRTQ_ERROR) {
        iolab_blk_guest_error(b, index, "queue %u: %s", index,
                              iolab_virtq_error_reason(vq));
        return false;
    }
    return avail != 0;
}

static bool iolab_blk_queue_runnable(IolabBlk *b, uint16_t index)
{
    return !b->ops->blocked(b->dev, index) && !b->ops->broken(b->dev);
}

static unsigned iolab_blk_list_len(IolabBlkReqList *list)
{
    IolabBlkReq *req;
    unsigned n = 0;

    QTAILQ_FOREACH(req, list, next) {
        n++;
    }
    return n;
}

static void iolab_blk_process_queue(IolabBlk *b, uint16_t index)
{
    IolabBlkQueue *q = &b->q[index];
    Virtq *vq = b->ops->virtq(b->dev, index);
    void *opaque = b->ops->dma_opaque(b->dev, index);
    bool fault_failed = b->ops->take_fault_failed &&
                        b->ops->take_fault_failed(b->dev, index);
    unsigned pops = 0;

    if (fault_failed && (QTAILQ_EMPTY(&q->held) ||
                         !QTAILQ_FIRST(&q->held)->faulted)) {
        /*
         * The fault was on the ring itself: it cannot be paged in, so
         * nothing can be completed.  Held requests are dropped by reset.
         */
        iolab_blk_guest_error(b, index, "queue %u: ring page cannot be "
                              "paged in", index);
        return;
    }
    /* Held requests first, in order: each may block the queue again. */
    while (iolab_blk_queue_runnable(b, index)) {
        IolabBlkReq *req = QTAILQ_FIRST(&q->held);

        if (!req) {
            break;
        }
        QTAILQ_REMOVE(&q->held, req, next);
        if (req->faulted && fault_failed) {
            fault_failed = false;
            iolab_blk_fail_held(req);
        }
        req->faulted = false;
        iolab_blk_run_req(req);
    }
    /*
     * Then those that waited for bounce memory, each once: one that still
     * finds the budget spent goes back to the end of the line.
     */
    for (unsigned n = iolab_blk_list_len(&q->bounce_wait);
         n && iolab_blk_queue_runnable(b, index); n--) {
        IolabBlkReq *req = QTAILQ_FIRST(&q->bounce_wait);

        QTAILQ_REMOVE(&q->bounce_wait, req, next);
        iolab_blk_run_req(req);
    }

    /* New chains only once no request of the queue waits for memory. */
    while (iolab_blk_queue_runnable(b, index) &&
           QTAILQ_EMPTY(&q->bounce_wait)) {
        IolabBlkReq *req;
        uint64_t fault;
        bool fault_write;
        const char *err = NULL;
        VirtqStatus st;

        if (pops == IOLAB_BLK_POPS_PER_RUN) {
            /* Let the main loop (and the other queues) have a turn. */
            trace_iolab_blk_yield(b->name, index, pops);
            b->ops->kick_again(b->dev, index);
            break;
        }
        req = iolab_blk_req_new(b, index);
        st = iolab_virtq_pop(vq, iolab_blk_dma(b), opaque, &req->elem,
                             &fault, &fault_write, &err);
        if (st == VIRTQ_EMPTY) {
            iolab_blk_req_put(b, req);
            if (iolab_blk_rearm(b, index)) {
                continue;
            }
            break;
        }
        if (st == VIRTQ_FAULT) {
            /* Nothing was consumed: the pop is simply redone later. */
            iolab_blk_req_put(b, req);
            b->ops->fault(b->dev, index, fault, fault_write);
            break;
        }
        if (st == VIRTQ_ERROR) {
            iolab_blk_req_put(b, req);
            iolab_blk_guest_error(b, index, "queue %u: %s", index,
                                  err ? err : "bad descriptor chain");
            break;
        }
        pops++;
        if (q->inflight >= vq->size) {
            /* The driver reused heads the device still holds. */
            iolab_blk_req_put(b, req);
            iolab_blk_guest_error(b, index, "queue %u: virtqueue size "
                                  "exceeded (%u requests in flight)", index,
                                  q->inflight);
            break;
        }
        if (!iolab_blk_chain_ok(&req->elem)) {
            iolab_blk_req_put(b, req);
            iolab_blk_guest_error(b, index, "queue %u: request without "
                                  "header or status byte", index);
            break;
        }
        q->inflight++;
        req->stage = IOLAB_BLK_STAGE_HEADER;
        iolab_blk_run_req(req);
    }
}

void iolab_blk_run_queue(IolabBlk *b, uint16_t queue)
{
    b->batching = true;
    iolab_blk_process_queue(b, queue);
    b->batching = false;
    iolab_blk_flush_batch(b);
    iolab_blk_flush_notify(b);
}

/* ------------------------------------------------------------------ */
/* Reset, migration, life cycle                                       */

static void iolab_blk_drop_list(IolabBlk *b, IolabBlkReqList *list)
{
    IolabBlkReq *req, *tmp;

    QTAILQ_FOREACH_SAFE(req, list, next, tmp) {
        QTAILQ_REMOVE(list, req, next);
        iolab_blk_req_free(req);
    }
}

/*
 * Wait for the requests in the backend.  Their completions are queued, not
 * posted (iolab_blk_complete()): the caller decides what becomes of them.
 */
static void iolab_blk_wait_backend(IolabBlk *b)
{
    if (b->inflight) {
        b->draining = true;
        blk_drain(b->blk);
        b->draining = false;
    }
}

void iolab_blk_drain(IolabBlk *b)
{
    bool engaged;

    iolab_blk_wait_backend(b);
    if (QTAILQ_EMPTY(&b->completed)) {
        return;
    }
    /* Now rather than from complete_bh, but under the same guard */
    qemu_bh_cancel(b->complete_bh);
    engaged = b->guard->engaged_in_io;
    b->guard->engaged_in_io = true;
    iolab_blk_post_completions(b);
    b->guard->engaged_in_io = engaged;
}

void iolab_blk_reset(IolabBlk *b)
{
    /*
     * Requests in the backend finish on their own: wait for them.  A
     * device with many objects on one backend resets idle ones often.
     */
    iolab_blk_wait_backend(b);
    iolab_blk_drop_list(b, &b->completed);
    for (uint16_t i = 0; i < b->num_queues; i++) {
        iolab_blk_drop_list(b, &b->q[i].held);
        iolab_blk_drop_list(b, &b->q[i].bounce_wait);
        /* Every popped request was on one of those lists */
        b->q[i].inflight = 0;
    }
}

void iolab_blk_foreach_inflight(IolabBlk *b,
                                void (*fn)(void *opaque, uint16_t queue,
                                           const VirtqElem *e),
                                void *opaque)
{
    IolabBlkReq *req;

    /*
     * Completions not posted yet are requests like the held ones: they
     * start again from their header on the destination.  They stay where
     * they are here: a device that saves while the VM runs (vdpa-mgmt's
     * iterations) or a migration that fails goes on posting them.  Per
     * queue, in the order the queue would run them: held, completed,
     * waiting for bounce memory.
     */
    for (uint16_t i = 0; i < b->num_queues; i++) {
        QTAILQ_FOREACH(req, &b->q[i].held, next) {
            fn(opaque, i, &req->elem);
        }
        QTAILQ_FOREACH(req, &b->completed, next) {
            if (req->queue == i) {
                fn(opaque, i, &req->elem);
            }
        }
        QTAILQ_FOREACH(req, &b->q[i].bounce_wait, next) {
            fn(opaque, i, &req->elem);
        }
    }
}

uint32_t iolab_blk_queue_held(IolabBlk *b, uint16_t queue)
{
    return iolab_blk_list_len(&b->q[queue].held) +
           iolab_blk_list_len(&b->q[queue].bounce_wait);
}

void iolab_blk_restore(IolabBlk *b, uint16_t queue, const VirtqElem *e)
{
    IolabBlkReq *req = iolab_blk_req_new(b, queue);

    req->elem.head = e->head;
    req->elem.nseg = e->nseg;
    req->elem.in_len = e->in_len;
    req->elem.out_len = e->out_len;
    memcpy(req->elem.seg, e->seg, e->nseg * sizeof(e->seg[0]));
    req->stage = IOLAB_BLK_STAGE_HEADER;
    b->q[queue].inflight++;
    QTAILQ_INSERT_TAIL(&b->q[queue].held, req, next);
}

void iolab_blk_init(IolabBlk *b, const IolabBlkOps *ops, void *dev,
                    const char *name, BlockBackend *blk, uint16_t num_queues,
                    const VirtqDmaOps *dma, const IolabBlkConfig *cfg,
                    MemReentrancyGuard *guard)
{
    *b = (IolabBlk) {
        .ops = ops, .dev = dev, .name = name, .blk = blk, .dma = dma,
        .max_data = cfg->max_data, .seg_max = cfg->seg_max,
        .num_queues = num_queues, .guard = guard,
        .spare_max = MIN(cfg->spare_max ?: IOLAB_BLK_SPARE_REQS,
                         IOLAB_BLK_SPARE_REQS),
    };
    iolab_blk_budget_init(&b->bounce, cfg->bounce_cap);
    b->pool = cfg->pool;
    b->pool_waiting = false;
    b->q = g_new0(IolabBlkQueue, num_queues);
    for (uint16_t i = 0; i < num_queues; i++) {
        QTAILQ_INIT(&b->q[i].held);
        QTAILQ_INIT(&b->q[i].bounce_wait);
    }
    QTAILQ_INIT(&b->completed);
    b->batch = g_ptr_array_new();
    b->complete_bh = qemu_bh_new_guarded(iolab_blk_complete_bh, b, guard);
}

void iolab_blk_cleanup(IolabBlk *b)
{
    iolab_blk_reset(b);
    if (b->pool_waiting) {
        g_ptr_array_remove_fast(b->pool->waiting, b);
        b->pool_waiting = false;
    }
    qemu_bh_delete(b->complete_bh);
    while (b->nspare) {
        iolab_blk_req_destroy(b->spare[--b->nspare]);
    }
    g_free(b->q);
    g_ptr_array_free(b->batch, true);
}
