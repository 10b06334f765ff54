/*
 * vpri-blk: a virtio-blk compatible PCI device that takes I/O page faults
 *
 * The unmodified Linux virtio_blk driver sees a modern virtio block device.
 * Every access to rings and buffers goes through the PA-BITMAP check; a
 * request whose DMA faults is held at the stage it reached, its queue is
 * blocked, and it continues from that stage once the host has paged the
 * memory in.  Other queues keep going.
 *
 * Data goes straight between the backend and guest memory, like a real
 * device's DMA: the data pages are checked against the PA-BITMAP and held
 * against eviction for the whole backend I/O.  Ranges that are not plain
 * RAM in one piece go through a bounce buffer instead, copied with the
 * short-DMA path.
 *
 * Reads and writes that one notification brings in are submitted together
 * at its end, and those that continue one another on the disk go to the
 * backend as one request, as virtio-blk-pci does: a driver that splits a
 * sequential stream into many requests pays the backend's per-request
 * cost once per run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/block/block.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "system/block-backend.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vpri/vpri-virtio-pci.h"

#define TYPE_VPRI_BLK "vpri-blk"
OBJECT_DECLARE_SIMPLE_TYPE(VpriBlk, VPRI_BLK)

#define VPRI_BLK_SECTOR_SIZE 512
#define VPRI_BLK_SEG_MAX     126
#define VPRI_BLK_HDR_SIZE    16
/*
 * Largest data transfer of one request.  Linux never sends more than a few
 * MiB; the bound keeps a guest from making QEMU allocate huge bounce
 * buffers with chains that repeat the same memory.
 */
#define VPRI_BLK_MAX_DATA    (32 * MiB)
#define VPRI_BLK_SPARE_REQS  64

/* Where a request is: a fault holds it there, a retry resumes there. */
typedef enum VpriBlkStage {
    STAGE_HEADER,       /* read the request header */
    STAGE_GATHER,       /* copy write data from the guest */
    STAGE_BACKEND,      /* backend I/O in flight */
    STAGE_SCATTER,      /* copy read data to the guest */
    STAGE_STATUS,       /* write the status byte */
    STAGE_PUSH,         /* put it in the used ring */
} VpriBlkStage;

/* A piece of the request's data mapped for the backend. */
typedef struct VpriBlkMap {
    uint64_t addr;
    void *host;
    uint32_t len;
} VpriBlkMap;

typedef struct VpriBlkReq {
    struct VpriBlk *s;
    uint16_t queue;
    VpriBlkStage stage;
    uint32_t type;
    uint64_t sector;
    uint8_t status;
    uint32_t data_len;
    uint32_t written;
    bool faulted;               /* held because its own DMA faulted */
    bool mapped;                /* data mapped in maps[], not bounced */
    void *bounce;
    unsigned nmaps;
    BlockAcctCookie acct;
    QTAILQ_ENTRY(VpriBlkReq) next;
    /*
     * From here on, fields survive the reuse of a spare request: the map
     * array and the iovec would otherwise be allocated for every request.
     */
    VpriBlkMap *maps;
    unsigned maps_cap;
    QEMUIOVector qiov;
    VirtqElem elem;             /* last: it is large */
} VpriBlkReq;

typedef QTAILQ_HEAD(, VpriBlkReq) VpriBlkReqList;

struct VpriBlk {
    VpriVirtioPCI parent_obj;

    BlockConf conf;
    char *serial;
    uint16_t num_queues;
    uint16_t queue_size;

    /* Per queue: requests waiting for their queue to run again, in order. */
    VpriBlkReqList *held;
    /* Spare requests: each carries a 16 KiB element, worth reusing. */
    VpriBlkReq *spare[VPRI_BLK_SPARE_REQS];
    unsigned nspare;
    uint64_t inflight;
    /* Reads and writes to submit when the notification is processed. */
    GPtrArray *batch;
    bool batching;
};

/* Adjacent reads or writes that go to the backend as one. */
typedef struct VpriBlkMerged {
    QEMUIOVector qiov;
    GPtrArray *reqs;
} VpriBlkMerged;

static uint64_t vpri_blk_capacity(VpriBlk *s)
{
    int64_t len = blk_getlength(s->conf.blk);

    return len < 0 ? 0 : len / VPRI_BLK_SECTOR_SIZE;
}

static inline VpriVirtioPCI *vpri_blk_vp(VpriBlk *s)
{
    return &s->parent_obj;      /* no checked cast on the data path */
}

static inline VpriBlk *vpri_blk_of(VpriVirtioPCI *vp)
{
    return container_of(vp, VpriBlk, parent_obj);
}

static void vpri_blk_unmap_data(VpriBlkReq *req, bool transferred)
{
    VpriVirtioPCI *vp = vpri_blk_vp(req->s);
    bool write = req->type == VIRTIO_BLK_T_IN;

    for (unsigned i = 0; i < req->nmaps; i++) {
        VpriBlkMap *m = &req->maps[i];

        vpri_virtio_pci_unmap(vp, m->addr, m->host, m->len, write,
                              transferred ? m->len : 0);
    }
    req->nmaps = 0;
    req->mapped = false;
}

/*
 * Map the request's data: for a write, the device-readable bytes after the
 * header; for a read, the device-writable bytes before the status byte.
 */
static int vpri_blk_map_data(VpriBlkReq *req, uint64_t *fault_addr)
{
    VpriVirtioPCI *vp = vpri_blk_vp(req->s);
    bool write = req->type == VIRTIO_BLK_T_IN;
    uint32_t skip = write ? 0 : VPRI_BLK_HDR_SIZE;
    uint32_t left = req->data_len;

    if (req->maps_cap < req->elem.nseg) {
        req->maps_cap = req->elem.nseg;
        req->maps = g_renew(VpriBlkMap, req->maps, req->maps_cap);
    }
    qemu_iovec_reset(&req->qiov);
    req->mapped = true;
    for (unsigned i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *seg = &req->elem.seg[i];
        uint32_t off, take;
        void *host;
        int ret;

        if (seg->write != write) {
            continue;
        }
        if (skip >= seg->len) {
            skip -= seg->len;
            continue;
        }
        off = skip;
        skip = 0;
        take = MIN(seg->len - off, left);
        ret = vpri_virtio_pci_map(vp, seg->addr + off, take, write, &host,
                                  fault_addr);
        if (ret) {
            vpri_blk_unmap_data(req, false);
            qemu_iovec_reset(&req->qiov);
            return ret;
        }
        req->maps[req->nmaps++] = (VpriBlkMap) {
            .addr = seg->addr + off, .host = host, .len = take,
        };
        qemu_iovec_add(&req->qiov, host, take);
        left -= take;
    }
    assert(left == 0);
    return 0;
}

/*
 * Only the per-request fields are cleared: the pop fills the element, and
 * the map array and iovec of a spare request are reused.
 */
static VpriBlkReq *vpri_blk_req_new(VpriBlk *s, uint16_t queue)
{
    VpriBlkReq *req;

    if (s->nspare) {
        req = s->spare[--s->nspare];
    } else {
        req = g_malloc(sizeof(*req));
        req->maps = NULL;
        req->maps_cap = 0;
        qemu_iovec_init(&req->qiov, 1);
    }
    memset(req, 0, offsetof(VpriBlkReq, maps));
    req->s = s;
    req->queue = queue;
    return req;
}

static void vpri_blk_req_destroy(VpriBlkReq *req)
{
    qemu_iovec_destroy(&req->qiov);
    g_free(req->maps);
    g_free(req);
}

static void vpri_blk_req_put(VpriBlk *s, VpriBlkReq *req)
{
    if (s->nspare < VPRI_BLK_SPARE_REQS) {
        qemu_iovec_reset(&req->qiov);
        s->spare[s->nspare++] = req;
    } else {
        vpri_blk_req_destroy(req);
    }
}

static void vpri_blk_req_free(VpriBlkReq *req)
{
    if (req->mapped) {
        vpri_blk_unmap_data(req, false);
    }
    if (req->bounce) {
        qemu_vfree(req->bounce);
    }
    vpri_blk_req_put(req->s, req);
}

static void vpri_blk_run_req(VpriBlkReq *req);

/*
 * The request's DMA hit a non-present page: keep it at this stage and stop
 * the queue until the host resolves the fault.
 */
static void vpri_blk_hold(VpriBlkReq *req, uint64_t fault_addr, bool write)
{
    VpriBlk *s = req->s;

    /* It was the oldest runnable request of its queue: it stays first. */
    req->faulted = true;
    QTAILQ_INSERT_HEAD(&s->held[req->queue], req, next);
    vpri_virtio_pci_queue_fault(vpri_blk_vp(s), req->queue, fault_addr,
                                write);
}

/* Returns false if the request stopped (held, or the device is broken). */
static bool vpri_blk_dma_result(VpriBlkReq *req, int ret, uint64_t fault_addr,
                                bool write, const char *what)
{
    VpriVirtioPCI *vp = vpri_blk_vp(req->s);

    if (ret == 0) {
        return true;
    }
    if (ret == VIRTQ_FAULT) {
        vpri_blk_hold(req, fault_addr, write);
        return false;
    }
    vpri_virtio_pci_guest_error(vp, "queue %u: DMA error on %s", req->queue,
                                what);
    vpri_blk_req_free(req);
    return false;
}

static void vpri_blk_backend_done(void *opaque, int ret)
{
    VpriBlkReq *req = opaque;
    VpriBlk *s = req->s;
    VpriVirtioPCI *vp = vpri_blk_vp(s);

    s->inflight--;
    if (ret < 0) {
        req->status = VIRTIO_BLK_S_IOERR;
        block_acct_failed(blk_get_stats(s->conf.blk), &req->acct);
    } else {
        block_acct_done(blk_get_stats(s->conf.blk), &req->acct);
    }
    if (req->mapped) {
        vpri_blk_unmap_data(req, ret >= 0);
        req->written = req->type == VIRTIO_BLK_T_IN && ret >= 0 ?
                       req->data_len : 0;
        req->stage = STAGE_STATUS;
    } else {
        req->stage = req->type == VIRTIO_BLK_T_IN && ret >= 0 ?
                     STAGE_SCATTER : STAGE_STATUS;
    }
    if (vpri_virtio_pci_broken(vp)) {
        vpri_blk_req_free(req);
        return;
    }
    /* While the queue is blocked, nothing of it touches guest memory. */
    if (vp->queues[req->queue].blocked ||
        !QTAILQ_EMPTY(&s->held[req->queue])) {
        QTAILQ_INSERT_TAIL(&s->held[req->queue], req, next);
        return;
    }
    vpri_blk_run_req(req);
}

/* Is a read or write inside the disk, whole sectors, not too large? */
static bool vpri_blk_rw_valid(VpriBlk *s, VpriBlkReq *req)
{
    uint64_t capacity = vpri_blk_capacity(s);
    uint64_t nsec = req->data_len / VPRI_BLK_SECTOR_SIZE;

    if (req->data_len % VPRI_BLK_SECTOR_SIZE ||
        req->data_len > VPRI_BLK_MAX_DATA ||
        req->sector > capacity || nsec > capacity - req->sector) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vpri-blk: request of %u bytes at sector %" PRIu64
                      " beyond capacity %" PRIu64 ", misaligned or too "
                      "large\n", req->data_len, req->sector, capacity);
        return false;
    }
    return true;
}

static void vpri_blk_submit_rw(VpriBlk *s, uint32_t type, uint64_t sector,
                               QEMUIOVector *qiov, BlockCompletionFunc *cb,
                               void *opaque)
{
    if (type == VIRTIO_BLK_T_IN) {
        blk_aio_preadv(s->conf.blk, sector * VPRI_BLK_SECTOR_SIZE, qiov, 0,
                       cb, opaque);
    } else {
        blk_aio_pwritev(s->conf.blk, sector * VPRI_BLK_SECTOR_SIZE, qiov, 0,
                        cb, opaque);
    }
}

static void vpri_blk_merged_done(void *opaque, int ret)
{
    VpriBlkMerged *m = opaque;

    for (guint i = 0; i < m->reqs->len; i++) {
        vpri_blk_backend_done(g_ptr_array_index(m->reqs, i), ret);
    }
    qemu_iovec_destroy(&m->qiov);
    g_ptr_array_free(m->reqs, true);
    g_free(m);
}

static int vpri_blk_req_cmp(gconstpointer a, gconstpointer b)
{
    const VpriBlkReq *x = *(VpriBlkReq * const *)a;
    const VpriBlkReq *y = *(VpriBlkReq * const *)b;

    if (x->type != y->type) {
        return x->type < y->type ? -1 : 1;
    }
    return x->sector < y->sector ? -1 : x->sector > y->sector;
}

/* Submit s->batch, as one backend request per run of adjacent requests. */
static void vpri_blk_flush_batch(VpriBlk *s)
{
    GPtrArray *batch = s->batch;
    uint64_t max_bytes = MIN_NON_ZERO(blk_get_max_transfer(s->conf.blk),
                                      VPRI_BLK_MAX_DATA);
    int max_iov = blk_get_max_iov(s->conf.blk);
    guint i = 0;

    if (batch->len > 1) {
        g_ptr_array_sort(batch, vpri_blk_req_cmp);
    }
    while (i < batch->len) {
        VpriBlkReq *first = g_ptr_array_index(batch, i);
        uint64_t bytes = first->data_len;
        int niov = first->qiov.niov;
        guint j = i + 1;

        for (; j < batch->len; j++) {
            VpriBlkReq *prev = g_ptr_array_index(batch, j - 1);
            VpriBlkReq *next = g_ptr_array_index(batch, j);

            if (next->type != first->type ||
                next->sector * VPRI_BLK_SECTOR_SIZE !=
                    prev->sector * VPRI_BLK_SECTOR_SIZE + prev->data_len ||
                bytes + next->data_len > max_bytes ||
                niov + next->qiov.niov > max_iov) {
                break;
            }
            bytes += next->data_len;
            niov += next->qiov.niov;
        }
        if (j == i + 1) {
            vpri_blk_submit_rw(s, first->type, first->sector, &first->qiov,
                               vpri_blk_backend_done, first);
        } else {
            VpriBlkMerged *m = g_new(VpriBlkMerged, 1);

            m->reqs = g_ptr_array_sized_new(j - i);
            qemu_iovec_init(&m->qiov, niov);
            for (guint k = i; k < j; k++) {
                VpriBlkReq *req = g_ptr_array_index(batch, k);

                g_ptr_array_add(m->reqs, req);
                qemu_iovec_concat(&m->qiov, &req->qiov, 0, req->qiov.size);
            }
            /* Shown as rd_merged / wr_merged by query-blockstats */
            block_acct_merge_done(blk_get_stats(s->conf.blk),
                                  first->type == VIRTIO_BLK_T_IN ?
                                  BLOCK_ACCT_READ : BLOCK_ACCT_WRITE,
                                  j - i - 1);
            vpri_blk_submit_rw(s, first->type, first->sector, &m->qiov,
                               vpri_blk_merged_done, m);
        }
        i = j;
    }
    g_ptr_array_set_size(batch, 0);
}

static void vpri_blk_submit(VpriBlkReq *req)
{
    VpriBlk *s = req->s;
    BlockBackend *blk = s->conf.blk;

    switch (req->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        if (!req->mapped) {
            qemu_iovec_reset(&req->qiov);
            qemu_iovec_add(&req->qiov, req->bounce, req->data_len);
        }
        req->stage = STAGE_BACKEND;
        s->inflight++;
        block_acct_start(blk_get_stats(blk), &req->acct, req->data_len,
                         req->type == VIRTIO_BLK_T_IN ? BLOCK_ACCT_READ :
                                                        BLOCK_ACCT_WRITE);
        if (s->batching) {
            g_ptr_array_add(s->batch, req);
        } else {
            vpri_blk_submit_rw(s, req->type, req->sector, &req->qiov,
                               vpri_blk_backend_done, req);
        }
        return;
    case VIRTIO_BLK_T_FLUSH:
        req->stage = STAGE_BACKEND;
        s->inflight++;
        block_acct_start(blk_get_stats(blk), &req->acct, 0, BLOCK_ACCT_FLUSH);
        blk_aio_flush(blk, vpri_blk_backend_done, req);
        return;
    case VIRTIO_BLK_T_GET_ID: {
        uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
        uint64_t fault;
        uint32_t len = MIN(req->elem.in_len - 1, VIRTIO_BLK_ID_BYTES);
        int ret;

        if (s->serial) {
            memcpy(id, s->serial, MIN(strlen(s->serial), sizeof(id)));
        }
        VpriVirtioPCI *vp = vpri_blk_vp(s);

        ret = iolab_virtq_elem_write(&req->elem, &vp->dma_ops,
                               &vp->queues[req->queue].dma, 0, id, len,
                               &fault);
        if (!vpri_blk_dma_result(req, ret, fault, true, "GET_ID data")) {
            return;
        }
        req->written = len;
        req->stage = STAGE_STATUS;
        vpri_blk_run_req(req);
        return;
    }
    default:
        req->status = VIRTIO_BLK_S_UNSUPP;
        req->stage = STAGE_STATUS;
        vpri_blk_run_req(req);
        return;
    }
}

/* Drive a request from its current stage as far as it can go. */
static void vpri_blk_run_req(VpriBlkReq *req)
{
    VpriBlk *s = req->s;
    VpriVirtioPCI *vp = vpri_blk_vp(s);
    VpriQueue *q = &vp->queues[req->queue];
    uint64_t fault;
    int ret;

    switch (req->stage) {
    case STAGE_HEADER: {
        uint8_t hdr[VPRI_BLK_HDR_SIZE];

        ret = iolab_virtq_elem_read(&req->elem, &vp->dma_ops, &q->dma, 0, hdr,
                              sizeof(hdr), &fault);
        if (!vpri_blk_dma_result(req, ret, fault, false, "request header")) {
            return;
        }
        req->type = ldl_le_p(hdr);
        req->sector = ldq_le_p(hdr + 8);
        req->status = VIRTIO_BLK_S_OK;
        if (req->type == VIRTIO_BLK_T_OUT) {
            req->data_len = req->elem.out_len - VPRI_BLK_HDR_SIZE;
        } else if (req->type == VIRTIO_BLK_T_IN) {
            req->data_len = req->elem.in_len - 1;
        }
        if ((req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) &&
            !vpri_blk_rw_valid(s, req)) {
            req->status = VIRTIO_BLK_S_IOERR;
            req->stage = STAGE_STATUS;
            vpri_blk_run_req(req);
            return;
        }
        req->stage = STAGE_GATHER;
    }
        /* fall through */
    case STAGE_GATHER:
        if ((req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT) &&
            req->data_len && !req->bounce) {
            ret = vpri_blk_map_data(req, &fault);
            if (ret == 0) {
                vpri_blk_submit(req);
                return;
            }
            if (ret != VPRI_MAP_COPY &&
                !vpri_blk_dma_result(req, ret, fault,
                                     req->type == VIRTIO_BLK_T_IN,
                                     "request data")) {
                return;
            }
            req->bounce = qemu_try_blockalign(blk_bs(s->conf.blk),
                                              req->data_len);
            if (!req->bounce) {
                req->status = VIRTIO_BLK_S_IOERR;
                req->stage = STAGE_STATUS;
                vpri_blk_run_req(req);
                return;
            }
        }
        if (req->type == VIRTIO_BLK_T_OUT && req->data_len) {
            ret = iolab_virtq_elem_read(&req->elem, &vp->dma_ops, &q->dma,
                                  VPRI_BLK_HDR_SIZE, req->bounce,
                                  req->data_len, &fault);
            if (!vpri_blk_dma_result(req, ret, fault, false, "write data")) {
                return;
            }
        }
        vpri_blk_submit(req);
        return;
    case STAGE_BACKEND:
        g_assert_not_reached();
    case STAGE_SCATTER:
        ret = iolab_virtq_elem_write(&req->elem, &vp->dma_ops, &q->dma, 0, req->bounce,
                               req->data_len, &fault);
        if (!vpri_blk_dma_result(req, ret, fault, true, "read data")) {
            return;
        }
        req->written = req->data_len;
        req->stage = STAGE_STATUS;
        /* fall through */
    case STAGE_STATUS:
        ret = iolab_virtq_elem_write(&req->elem, &vp->dma_ops, &q->dma,
                               req->elem.in_len - 1, &req->status, 1, &fault);
        if (!vpri_blk_dma_result(req, ret, fault, true, "status")) {
            return;
        }
        req->stage = STAGE_PUSH;
        /* fall through */
    case STAGE_PUSH:
        ret = iolab_virtq_push(&q->vq, &vp->dma_ops, &q->dma, req->elem.head,
                         req->written + 1, &fault);
        if (!vpri_blk_dma_result(req, ret, fault, true, "used ring")) {
            return;
        }
        vpri_virtio_pci_notify_queue(vp, req->queue);
        vpri_blk_req_free(req);
        return;
    }
}

/* A failed fault completes the request that raised it with an I/O error. */
static void vpri_blk_fail_held(VpriBlkReq *req)
{
    req->status = VIRTIO_BLK_S_IOERR;
    if (req->stage < STAGE_STATUS) {
        req->written = 0;
        req->stage = STAGE_STATUS;
    }
}

static void vpri_blk_process_queue(VpriVirtioPCI *vp, uint16_t index)
{
    VpriBlk *s = vpri_blk_of(vp);
    VpriQueue *q = &vp->queues[index];

    if (q->fault_failed && (QTAILQ_EMPTY(&s->held[index]) ||
                            !QTAILQ_FIRST(&s->held[index])->faulted)) {
        /*
         * The fault was on the ring itself: it cannot be paged in, so
         * nothing can be completed.  Held requests are dropped by reset.
         */
        q->fault_failed = false;
        vpri_virtio_pci_guest_error(vp, "queue %u: ring page at 0x%" PRIx64
                                    " cannot be paged in", index,
                                    q->fault_addr);
        return;
    }
    /* Held requests first, in order: each may block the queue again. */
    while (!q->blocked && !vpri_virtio_pci_broken(vp)) {
        VpriBlkReq *req = QTAILQ_FIRST(&s->held[index]);

        if (!req) {
            break;
        }
        QTAILQ_REMOVE(&s->held[index], req, next);
        if (req->faulted && q->fault_failed) {
            q->fault_failed = false;
            vpri_blk_fail_held(req);
        }
        req->faulted = false;
        vpri_blk_run_req(req);
    }

    while (!q->blocked && !vpri_virtio_pci_broken(vp)) {
        VpriBlkReq *req = vpri_blk_req_new(s, index);
        uint64_t fault;
        bool fault_write;
        const char *err = NULL;
        VirtqStatus st;
        uint16_t avail;
        int ret;

        st = iolab_virtq_pop(&q->vq, &vp->dma_ops, &q->dma, &req->elem, &fault,
                       &fault_write, &err);
        if (st == VIRTQ_EMPTY) {
            vpri_blk_req_put(s, req);
            /*
             * Ask for the next kick, then look once more: the driver may
             * have added a request before it saw the new setting.
             */
            ret = iolab_virtq_set_notification(&q->vq, &vp->dma_ops, &q->dma, true,
                                         &fault);
            if (ret == VIRTQ_FAULT) {
                vpri_virtio_pci_queue_fault(vp, index, fault, true);
                break;
            }
            ret = iolab_virtq_avail_count(&q->vq, &vp->dma_ops, &q->dma, &avail,
                                    &fault);
            if (ret == VIRTQ_FAULT) {
                vpri_virtio_pci_queue_fault(vp, index, fault, false);
                break;
            }
            if (ret == 0 && avail) {
                continue;
            }
            if (ret == VIRTQ_ERROR) {
                vpri_virtio_pci_guest_error(vp, "queue %u: %s", index,
                                            iolab_virtq_error_reason(&q->vq));
            }
            break;
        }
        if (st == VIRTQ_FAULT) {
            /* Nothing was consumed: the pop is simply redone later. */
            vpri_blk_req_put(s, req);
            vpri_virtio_pci_queue_fault(vp, index, fault, fault_write);
            break;
        }
        if (st == VIRTQ_ERROR) {
            vpri_blk_req_put(s, req);
            vpri_virtio_pci_guest_error(vp, "queue %u: %s", index,
                                        err ? err : "bad descriptor chain");
            break;
        }
        if (req->elem.out_len < VPRI_BLK_HDR_SIZE || req->elem.in_len < 1) {
            vpri_blk_req_put(s, req);
            vpri_virtio_pci_guest_error(vp, "queue %u: request without "
                                        "header or status byte", index);
            break;
        }
        req->stage = STAGE_HEADER;
        vpri_blk_run_req(req);
    }
}

static void vpri_blk_queue_notify(VpriVirtioPCI *vp, uint16_t index)
{
    VpriBlk *s = vpri_blk_of(vp);

    s->batching = true;
    vpri_blk_process_queue(vp, index);
    s->batching = false;
    vpri_blk_flush_batch(s);
}

static uint64_t vpri_blk_get_features(VpriVirtioPCI *vp)
{
    VpriBlk *s = VPRI_BLK(vp);
    uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) |
                 (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ULL << VIRTIO_BLK_F_FLUSH) |
                 (1ULL << VIRTIO_RING_F_EVENT_IDX) |
                 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
                 (1ULL << VIRTIO_F_ACCESS_PLATFORM);

    if (s->num_queues > 1) {
        f |= 1ULL << VIRTIO_BLK_F_MQ;
    }
    if (!blk_is_writable(s->conf.blk)) {
        f |= 1ULL << VIRTIO_BLK_F_RO;
    }
    return f;
}

static void vpri_blk_get_config(VpriVirtioPCI *vp, uint8_t *config)
{
    VpriBlk *s = VPRI_BLK(vp);
    struct virtio_blk_config *c = (struct virtio_blk_config *)config;

    stq_le_p(&c->capacity, vpri_blk_capacity(s));
    stl_le_p(&c->seg_max, VPRI_BLK_SEG_MAX);
    stl_le_p(&c->blk_size, s->conf.logical_block_size);
    stw_le_p(&c->num_queues, s->num_queues);
    c->wce = 1;
}

static void vpri_blk_reset(VpriVirtioPCI *vp)
{
    VpriBlk *s = VPRI_BLK(vp);

    /* Requests in the backend finish on their own: wait for them. */
    blk_drain(s->conf.blk);
    for (uint16_t i = 0; i < s->num_queues; i++) {
        VpriBlkReq *req, *tmp;

        QTAILQ_FOREACH_SAFE(req, &s->held[i], next, tmp) {
            QTAILQ_REMOVE(&s->held[i], req, next);
            vpri_blk_req_free(req);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Migration                                                          */

/*
 * What is in flight when the VM stops for the switch-over: the backend
 * has been drained, so every request popped and not yet pushed is on its
 * queue's held list, at whatever stage a fault or a blocked queue left it.
 * Each goes to the destination as its descriptor chain, and starts there
 * again from its header once the VM runs, as virtio-blk restarts its
 * in-flight requests: reads and writes are idempotent until the driver
 * sees them complete.
 */
static int vpri_blk_pre_save(void *opaque)
{
    VpriBlk *s = opaque;

    if (s->inflight) {
        error_report("vpri-blk: %" PRIu64 " requests still in the backend "
                     "at migration", s->inflight);
        return -EBUSY;
    }
    for (uint16_t i = 0; i < s->num_queues; i++) {
        VpriBlkReq *req;

        QTAILQ_FOREACH(req, &s->held[i], next) {
            vpri_virtio_pci_save_elem(vpri_blk_vp(s), i, &req->elem);
        }
    }
    return 0;
}

static int vpri_blk_post_load(void *opaque, int version_id)
{
    VpriBlk *s = opaque;
    VpriVirtioPCI *vp = vpri_blk_vp(s);
    uint16_t queue;

    for (uint32_t off = 0; off < vp->inflight_len;) {
        if (!vpri_virtio_pci_load_elem(vp, &off, &queue, NULL)) {
            error_report("vpri-blk: malformed in-flight requests in the "
                         "migration stream");
            return -EINVAL;
        }
    }
    return 0;
}

/* The VM runs: requests migrated from the source start again, in order. */
static void vpri_blk_restart(VpriVirtioPCI *vp)
{
    VpriBlk *s = vpri_blk_of(vp);
    uint16_t queue;

    for (uint32_t off = 0; off < vp->inflight_len;) {
        VpriBlkReq *req = vpri_blk_req_new(s, 0);

        if (!vpri_virtio_pci_load_elem(vp, &off, &queue, &req->elem)) {
            vpri_blk_req_put(s, req);   /* checked on load: cannot happen */
            return;
        }
        req->queue = queue;
        req->stage = STAGE_HEADER;
        QTAILQ_INSERT_TAIL(&s->held[queue], req, next);
    }
}

static const VMStateDescription vmstate_vpri_blk = {
    .name = "vpri-blk",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = vpri_blk_pre_save,
    .post_load = vpri_blk_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(parent_obj, VpriBlk, 1, vmstate_vpri_virtio_pci,
                       VpriVirtioPCI),
        VMSTATE_UINT16_EQUAL(num_queues, VpriBlk, NULL),
        VMSTATE_END_OF_LIST()
    },
};

static void vpri_blk_realize(PCIDevice *pci, Error **errp)
{
    VpriBlk *s = VPRI_BLK(pci);
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(pci);

    if (!s->conf.blk) {
        error_setg(errp, "vpri-blk: drive property not set");
        return;
    }
    if (!blk_is_inserted(s->conf.blk)) {
        error_setg(errp, "vpri-blk: device needs media, but drive is empty");
        return;
    }
    if (!blkconf_apply_backend_options(&s->conf,
                                       !blk_supports_write_perm(s->conf.blk),
                                       true, errp)) {
        return;
    }
    if (!blkconf_blocksizes(&s->conf, errp)) {
        return;
    }
    if (s->conf.logical_block_size != VPRI_BLK_SECTOR_SIZE) {
        error_setg(errp, "vpri-blk: logical_block_size must be 512");
        return;
    }
    if (s->serial && strlen(s->serial) > VIRTIO_BLK_ID_BYTES) {
        error_setg(errp, "vpri-blk: serial is longer than %d characters",
                   VIRTIO_BLK_ID_BYTES);
        return;
    }
    if (!vpri_virtio_pci_realize(vp, s->num_queues, s->queue_size, errp)) {
        return;
    }
    s->batch = g_ptr_array_new();
    s->held = g_new0(VpriBlkReqList, s->num_queues);
    for (uint16_t i = 0; i < s->num_queues; i++) {
        QTAILQ_INIT(&s->held[i]);
    }
}

static void vpri_blk_exit(PCIDevice *pci)
{
    VpriBlk *s = VPRI_BLK(pci);

    vpri_blk_reset(VPRI_VIRTIO_PCI(s));
    vpri_virtio_pci_unrealize(VPRI_VIRTIO_PCI(s));
    while (s->nspare) {
        vpri_blk_req_destroy(s->spare[--s->nspare]);
    }
    g_free(s->held);
    g_ptr_array_free(s->batch, true);
}

static const Property vpri_blk_properties[] = {
    DEFINE_BLOCK_PROPERTIES(VpriBlk, conf),
    DEFINE_PROP_STRING("serial", VpriBlk, serial),
    DEFINE_PROP_UINT16("num-queues", VpriBlk, num_queues, 1),
    DEFINE_PROP_UINT16("queue-size", VpriBlk, queue_size, 256),
};

static void vpri_blk_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);
    VpriVirtioPCIClass *vc = VPRI_VIRTIO_PCI_CLASS(klass);

    pc->realize = vpri_blk_realize;
    pc->exit = vpri_blk_exit;
    vc->virtio_device_id = 2;
    vc->pci_class = PCI_CLASS_STORAGE_SCSI;
    vc->config_size = sizeof(struct virtio_blk_config);
    vc->get_features = vpri_blk_get_features;
    vc->get_config = vpri_blk_get_config;
    vc->queue_notify = vpri_blk_queue_notify;
    vc->reset = vpri_blk_reset;
    vc->restart = vpri_blk_restart;
    dc->vmsd = &vmstate_vpri_blk;
    dc->desc = "VPRI virtio-blk compatible disk (I/O page faults)";
    set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
    device_class_set_props(dc, vpri_blk_properties);
}

static const TypeInfo vpri_blk_info = {
    .name = TYPE_VPRI_BLK,
    .parent = TYPE_VPRI_VIRTIO_PCI,
    .instance_size = sizeof(VpriBlk),
    .class_init = vpri_blk_class_init,
};

static void vpri_blk_register_types(void)
{
    type_register_static(&vpri_blk_info);
}

type_init(vpri_blk_register_types)
