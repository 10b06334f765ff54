/*
 * vdpa-mgmt: block instances (VIRTIO_BLK_T_* requests on the
 * function's block backends)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "block/block.h"
#include "block/block-global-state.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "hw/vpri/vpri-host.h"
#include "trace.h"

VdpaBlkBackend *vdpa_inst_blk(VdpaInst *inst)
{
    return &inst->s->blk[inst->backend];
}

/* Give back the guest memory a request's qiov maps; @done: it was moved */
void vdpa_blk_unmap(VdpaBlkReq *req, bool done)
{
    bool to_guest = req->type == VIRTIO_BLK_T_IN;

    for (int i = 0; i < req->qiov.niov; i++) {
        size_t len = req->qiov.iov[i].iov_len;

        address_space_unmap(req->inst->as, req->qiov.iov[i].iov_base, len,
                            to_guest, done && to_guest ? len : 0);
    }
    qemu_iovec_destroy(&req->qiov);
    req->mapped = false;
}

/*
 * Map the data of a read or write straight into the qiov: the writable
 * bytes 0..len of an IN, the readable bytes after the header of an OUT.
 * Only for instances in the function's own DMA space without VPRI (a
 * PA-BITMAP check or a PASID translation would have to stay valid for the
 * whole I/O).  False, with nothing mapped, if some part is not directly
 * accessible RAM: the caller then uses a bounce buffer.
 */
static bool vdpa_blk_map(VdpaBlkReq *req)
{
    VdpaInst *inst = req->inst;
    bool to_guest = req->type == VIRTIO_BLK_T_IN;
    uint64_t skip = to_guest ? 0 : VDPA_BLK_HDR, left = req->len;

    if (inst->s->host || inst->pasid != VDPA_NO_PASID) {
        return false;
    }
    qemu_iovec_init(&req->qiov, 4);
    req->mapped = true;
    for (uint16_t i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *sg = &req->elem.seg[i];
        uint64_t addr, n;

        if (sg->write != to_guest) {
            continue;
        }
        if (skip >= sg->len) {
            skip -= sg->len;
            continue;
        }
        addr = sg->addr + skip;
        n = MIN(sg->len - skip, left);
        skip = 0;
        while (n) {
            hwaddr plen = n;
            void *p = address_space_map(inst->as, addr, &plen, to_guest,
                                        vdpa_attrs(inst->s));

            if (!p) {
                vdpa_blk_unmap(req, false);
                return false;
            }
            qemu_iovec_add(&req->qiov, p, plen);
            addr += plen;
            n -= plen;
            left -= plen;
        }
    }
    inst->s->blk_mapped++;
    return true;
}

/* A DMA step of @req returned @ret: true to go on */
/* @fault is read only after @ret was computed: pass it by address */
static bool vdpa_blk_dma_ok(VdpaBlkReq *req, int ret, const uint64_t *fault,
                            bool write, const char *what)
{
    if (ret == 0) {
        return true;
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_req_hold(req, *fault, write);
        return false;
    }
    vdpa_inst_error(req->inst, "queue %u: %s: %s", req->queue, what,
                    iolab_virtq_error_reason(&req->inst->q[req->queue].vq) ?:
                    "DMA refused");
    vdpa_req_put(req->inst->s, req);
    return false;
}

/* Status byte, used ring, interrupt; consumes @req */
static void vdpa_blk_complete(VdpaBlkReq *req, uint32_t written)
{
    VdpaInst *inst = req->inst;
    VdpaQueue *q = &inst->q[req->queue];
    uint64_t fault;

    if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                               inst, req->elem.in_len - 1,
                                               &req->status, 1, &fault),
                         &fault, true, "status") ||
        !vdpa_blk_dma_ok(req, iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst,
                                         req->elem.head, written + 1, &fault),
                         &fault, true, "used ring")) {
        return;
    }
    inst->stats.requests++;
    vdpa_queue_interrupt(inst, req->queue);
    vdpa_req_put(inst->s, req);
}

static void vdpa_blk_io_done(void *opaque, int ret)
{
    VdpaBlkReq *req = opaque;
    VdpaInst *inst = req->inst;
    uint32_t written = 0;
    uint64_t fault;

    inst->inflight--;
    if (req->mapped) {
        /* The data is in guest memory (IN) or on the disk (OUT) already */
        vdpa_blk_unmap(req, ret >= 0);
    }
    if (inst->status & VDPA_ST_NEEDS_RESET) {
        vdpa_req_put(inst->s, req);
        return;
    }
    /* While its queue waits for a fault, nothing of it touches memory */
    if (vdpa_queue_blocked(inst, req->queue)) {
        vdpa_req_hold(req, 0, false);
        return;
    }
    if (ret < 0) {
        req->status = VIRTIO_BLK_S_IOERR;
    } else if (req->type == VIRTIO_BLK_T_IN) {
        if (req->bounce &&
            !vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                                   inst, 0, req->bounce,
                                                   req->len, &fault),
                             &fault, true, "read data")) {
            return;
        }
        written = req->len;
        inst->stats.bytes_read += req->len;
    } else if (req->type == VIRTIO_BLK_T_OUT) {
        inst->stats.bytes_written += req->len;
    }
    vdpa_blk_complete(req, written);
}

static bool vdpa_blk_rw_ok(VdpaInst *inst, VdpaBlkReq *req)
{
    uint64_t cap = vdpa_inst_blk(inst)->sectors;
    uint64_t nsec = req->len / VDPA_BLK_SECTOR;

    return !(req->len % VDPA_BLK_SECTOR) && req->len <= VDPA_BLK_MAX_DATA &&
           req->sector <= cap && nsec <= cap - req->sector;
}

/* Start (or restart) one popped request; it completes now or later */
static void vdpa_blk_start(VdpaBlkReq *req)
{
    VdpaInst *inst = req->inst;
    VdpaBlkBackend *be = vdpa_inst_blk(inst);
    uint8_t hdr[VDPA_BLK_HDR];
    uint64_t fault;

    if (req->elem.out_len < VDPA_BLK_HDR || req->elem.in_len < 1) {
        vdpa_inst_error(inst, "queue %u: request without header or status",
                        req->queue);
        vdpa_req_put(inst->s, req);
        return;
    }
    if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops,
                                              inst, 0, hdr, sizeof(hdr),
                                              &fault),
                         &fault, false, "header")) {
        return;
    }
    req->type = ldl_le_p(hdr);
    req->sector = ldq_le_p(hdr + 8);
    req->status = VIRTIO_BLK_S_OK;

    switch (req->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        req->len = req->type == VIRTIO_BLK_T_IN ? req->elem.in_len - 1 :
                   req->elem.out_len - VDPA_BLK_HDR;
        if (!vdpa_blk_rw_ok(inst, req) ||
            (req->type == VIRTIO_BLK_T_OUT && be->read_only)) {
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: instance %u: bad "
                          "request of %u bytes at sector %" PRIu64 "\n",
                          inst->id, req->len, req->sector);
            req->status = VIRTIO_BLK_S_IOERR;
            break;
        }
        if (vdpa_blk_map(req)) {
            goto submit;
        }
        req->bounce = qemu_try_blockalign(blk_bs(be->blk), MAX(req->len, 1));
        if (!req->bounce) {
            req->status = VIRTIO_BLK_S_IOERR;
            break;
        }
        qemu_iovec_init(&req->qiov, 1);
        qemu_iovec_add(&req->qiov, req->bounce, req->len);
        if (req->type == VIRTIO_BLK_T_OUT &&
            !vdpa_blk_dma_ok(req, iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops,
                                                  inst, VDPA_BLK_HDR,
                                                  req->bounce, req->len,
                                                  &fault),
                             &fault, false, "write data")) {
            return;
        }
    submit:
        inst->inflight++;
        if (req->type == VIRTIO_BLK_T_IN) {
            blk_aio_preadv(be->blk, req->sector * VDPA_BLK_SECTOR, &req->qiov,
                           0, vdpa_blk_io_done, req);
        } else {
            blk_aio_pwritev(be->blk, req->sector * VDPA_BLK_SECTOR,
                            &req->qiov, 0, vdpa_blk_io_done, req);
        }
        return;
    case VIRTIO_BLK_T_FLUSH:
        inst->inflight++;
        blk_aio_flush(be->blk, vdpa_blk_io_done, req);
        return;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = { 0 };
        uint32_t len = MIN(req->elem.in_len - 1, VIRTIO_BLK_ID_BYTES);

        snprintf(id, sizeof(id), "vdpa%u", inst->id);
        if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                                   inst, 0, id, len, &fault),
                             &fault, true, "id")) {
            return;
        }
        vdpa_blk_complete(req, len);
        return;
    }
    default:
        req->status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    vdpa_blk_complete(req, 0);
}

static void vdpa_run_queue(VdpaInst *inst, uint16_t qi)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];

    /* Requests a fault stopped go first, in order */
    while (q->held && vdpa_inst_runnable(inst) && !vdpa_queue_blocked(inst, qi)) {
        VdpaBlkReq *req = q->held;

        q->held = req->next_held;
        vdpa_blk_start(req);
    }
    while (vdpa_inst_runnable(inst) && q->vq.enabled &&
           !vdpa_queue_blocked(inst, qi)) {
        VdpaBlkReq *req = vdpa_req_get(s, inst, qi);
        VdpaPop pop = vdpa_queue_pop(inst, qi, req);

        if (pop == VDPA_POP_OK) {
            vdpa_blk_start(req);
        } else if (pop == VDPA_POP_STOP) {
            return;
        }
    }
}

uint64_t vdpa_blk_features(VdpaMgmt *s, uint32_t backend,
                           uint16_t nqueues)
{
    uint64_t f = s->limits.features[VDPA_TYPE_BLK];

    if (nqueues < 2) {
        f &= ~(1ULL << VIRTIO_BLK_F_MQ);
    }
    if (!s->blk[backend].read_only) {
        f &= ~(1ULL << VIRTIO_BLK_F_RO);
    }
    return f;
}

static void vdpa_blk_config(VdpaInst *inst, uint8_t *cfg)
{
    struct virtio_blk_config *c = (struct virtio_blk_config *)cfg;

    memset(cfg, 0, sizeof(*c));
    stq_le_p(&c->capacity, vdpa_inst_blk(inst)->sectors);
    stl_le_p(&c->seg_max, VDPA_BLK_SEG_MAX);
    stl_le_p(&c->blk_size, VDPA_BLK_SECTOR);
    stw_le_p(&c->num_queues, inst->nqueues);
    c->wce = inst->wce;
}

const VdpaInstOps vdpa_blk_ops = {
    .run_queue = vdpa_run_queue,
    .get_config = vdpa_blk_config,
};

void vdpa_free_backends(VdpaMgmt *s)
{
    for (uint32_t i = 0; i < s->nblk; i++) {
        if (s->blk[i].blk) {
            blk_detach_dev(s->blk[i].blk, DEVICE(s));
            blk_unref(s->blk[i].blk);
        }
        g_free(s->blk[i].name);
    }
    g_free(s->blk);
    s->blk = NULL;
    s->nblk = 0;
}

/* blk-nodes=a:b:c; each a -blockdev node name or a -drive id */
bool vdpa_open_backends(VdpaMgmt *s, Error **errp)
{
    g_auto(GStrv) names = NULL;

    if (!s->blk_nodes || !*s->blk_nodes) {
        return true;
    }
    names = g_strsplit(s->blk_nodes, ":", 0);
    s->nblk = g_strv_length(names);
    s->blk = g_new0(VdpaBlkBackend, s->nblk);
    for (uint32_t i = 0; i < s->nblk; i++) {
        VdpaBlkBackend *be = &s->blk[i];
        BlockDriverState *bs = bdrv_lookup_bs(names[i], names[i], NULL);
        int64_t len;

        be->name = g_strdup(names[i]);
        if (!bs) {
            error_setg(errp, "vdpa-mgmt: blk-nodes: no block node or drive "
                       "named '%s'", names[i]);
            return false;
        }
        be->read_only = bdrv_is_read_only(bs);
        be->blk = blk_new(qemu_get_aio_context(),
                          BLK_PERM_CONSISTENT_READ |
                          (be->read_only ? 0 : BLK_PERM_WRITE),
                          BLK_PERM_ALL);
        /*
         * Owned by this device: lets the node go inactive for migration
         * and come up inactive on an incoming one.
         */
        blk_attach_dev(be->blk, DEVICE(s));
        if (blk_insert_bs(be->blk, bs, errp) < 0) {
            error_prepend(errp, "vdpa-mgmt: blk-nodes: '%s': ", names[i]);
            return false;
        }
        len = blk_getlength(be->blk);
        if (len < 0) {
            error_setg_errno(errp, -len, "vdpa-mgmt: blk-nodes: '%s'",
                             names[i]);
            return false;
        }
        be->sectors = len / VDPA_BLK_SECTOR;
    }
    return true;
}
