/*
 * vdpa-mgmt: migration of the function and its instances
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

/*
 * The instances travel as one buffer: first the list (what the
 * destination must create: id, type, queues, backend), then each
 * instance's state in the same order.  Little-endian, fixed layouts.
 */
#define MIG_MAGIC       0x4749444d      /* "MDIG" */
#define MIG_LIST_REC    12
#define MIG_STATE_REC   (4 + 4 + 8 + 8 + 8 + 8 * 8)
/* virtq record, MSI message, le16 count of held heads (then the heads) */
#define MIG_QUEUE_REC   (VIRTQ_SAVED_SIZE + 16 + 2)
/* In a held head: a net TX frame already sent, only its push is left */
#define MIG_HELD_SENT   0x8000

/* Where the held heads of one queue go, as pre_save writes them */
typedef struct VdpaMigHeads {
    uint8_t *count;             /* the queue record's le16 count */
    uint8_t *next;              /* where the next head goes */
} VdpaMigHeads;

/* A blk request in flight on queue @queue (from the shared state machine) */
static void vdpa_mig_blk_head(void *opaque, uint16_t queue,
                              const VirtqElem *e)
{
    VdpaMigHeads *h = opaque;

    vdpa_st16(h[queue].next, e->head);
    vdpa_st16(h[queue].count, vdpa_ld16(h[queue].count) + 1);
    h[queue].next += 2;
}

static void vdpa_mig_blk_count(void *opaque, uint16_t queue,
                               const VirtqElem *e)
{
    *(uint64_t *)opaque += 2;
}

/* Per queue: how many blk requests are in flight */
static void vdpa_mig_blk_count_q(void *opaque, uint16_t queue,
                                 const VirtqElem *e)
{
    ((uint32_t *)opaque)[queue]++;
}

static int vdpa_pre_save(void *opaque)
{
    VdpaMgmt *s = opaque;
    uint64_t len = 8;
    uint8_t *p;

    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        vdpa_inst_quiesce(inst);
        len += MIG_LIST_REC + MIG_STATE_REC +
               (uint64_t)inst->nqueues * MIG_QUEUE_REC;
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            for (VdpaBlkReq *r = inst->q[q].held; r; r = r->next_held) {
                len += 2;
            }
        }
        if (inst->blk_req) {
            iolab_blk_foreach_inflight(inst->blk_req, vdpa_mig_blk_count,
                                       &len);
        }
    }
    g_free(s->mig_buf);
    s->mig_len = len;
    s->mig_buf = p = g_malloc0(len);
    vdpa_st32(p, MIG_MAGIC);
    vdpa_st32(p + 4, s->table.count);
    p += 8;
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        vdpa_st32(p, id);
        p[4] = inst->type;
        vdpa_st16(p + 6, inst->nqueues);
        vdpa_st32(p + 8, inst->backend);
        p += MIG_LIST_REC;
    }
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        p[0] = inst->status;
        p[1] = inst->suspended;
        p[2] = inst->wce;
        vdpa_st32(p + 4, inst->pasid);
        vdpa_st64(p + 8, inst->dev_features);
        vdpa_st64(p + 16, inst->drv_features);
        memcpy(p + 24, inst->mac, 6);
        vdpa_stats_save(&inst->stats, p + 32);
        p += MIG_STATE_REC;
        if (inst->blk_req) {
            /* Each queue's record, then its heads: two passes over them */
            g_autofree VdpaMigHeads *h = g_new0(VdpaMigHeads, inst->nqueues);
            g_autofree uint32_t *n = g_new0(uint32_t, inst->nqueues);
            uint8_t *at = p;

            iolab_blk_foreach_inflight(inst->blk_req, vdpa_mig_blk_count_q,
                                       n);
            for (uint16_t q = 0; q < inst->nqueues; q++) {
                iolab_virtq_save(&inst->q[q].vq, at);
                vdpa_st64(at + VIRTQ_SAVED_SIZE, inst->q[q].msi.addr);
                vdpa_st32(at + VIRTQ_SAVED_SIZE + 8, inst->q[q].msi.data);
                vdpa_st32(at + VIRTQ_SAVED_SIZE + 12, inst->q[q].msi.flags);
                h[q].count = at + MIG_QUEUE_REC - 2;
                h[q].next = at + MIG_QUEUE_REC;
                at += MIG_QUEUE_REC + 2 * n[q];
            }
            iolab_blk_foreach_inflight(inst->blk_req, vdpa_mig_blk_head, h);
            p = at;
            continue;
        }
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            iolab_virtq_save(&inst->q[q].vq, p);
            vdpa_st64(p + VIRTQ_SAVED_SIZE, inst->q[q].msi.addr);
            vdpa_st32(p + VIRTQ_SAVED_SIZE + 8, inst->q[q].msi.data);
            vdpa_st32(p + VIRTQ_SAVED_SIZE + 12, inst->q[q].msi.flags);
            p += MIG_QUEUE_REC - 2;
            /* Popped, stopped by a fault, not done: the heads to rebuild */
            for (VdpaBlkReq *r = inst->q[q].held; r; r = r->next_held) {
                vdpa_st16(p + 2, r->elem.head |
                                 (r->tx_sent ? MIG_HELD_SENT : 0));
                vdpa_st16(p, vdpa_ld16(p) + 1);
                p += 2;
            }
            p += 2;
        }
    }
    return 0;
}

static int vdpa_post_save(void *opaque)
{
    VdpaMgmt *s = opaque;

    g_free(s->mig_buf);
    s->mig_buf = NULL;
    s->mig_len = 0;
    return 0;
}

/* Recreate the instances of the list, then give them their state */
static int vdpa_post_load(void *opaque, int version_id)
{
    VdpaMgmt *s = opaque;
    const uint8_t *p = s->mig_buf, *end = p + s->mig_len;
    g_autofree VdpaInst **insts = NULL;
    uint32_t count;
    int ret = -EINVAL;

    vdpa_destroy_all(s);
    if (s->mig_len < 8 || vdpa_ld32(p) != MIG_MAGIC) {
        error_report("vdpa-mgmt: bad instance stream");
        goto out;
    }
    count = vdpa_ld32(p + 4);
    p += 8;
    if (count > s->table.max || (uint64_t)count * MIG_LIST_REC > end - p) {
        error_report("vdpa-mgmt: %u instances do not fit (max-instances "
                     "%u)", count, s->table.max);
        goto out;
    }
    insts = g_new0(VdpaInst *, count);
    for (uint32_t i = 0; i < count; i++, p += MIG_LIST_REC) {
        uint32_t id = vdpa_ld32(p);
        uint16_t nq = vdpa_ld16(p + 6);
        uint32_t backend = vdpa_ld32(p + 8);
        VdpaInst *inst;

        if ((p[4] != VDPA_TYPE_BLK && p[4] != VDPA_TYPE_NET) || !nq ||
            nq > VDPA_MGMT_MAX_QUEUES ||
            backend >= s->limits.num_backends[p[4]]) {
            error_report("vdpa-mgmt: instance %u: type %u, %u queues or "
                         "backend %u not available here", id, p[4], nq,
                         backend);
            goto out;
        }
        inst = g_malloc0(sizeof(*inst) + nq * sizeof(VdpaQueue));
        inst->s = s;
        inst->id = id;
        inst->type = p[4];
        inst->nqueues = nq;
        inst->backend = backend;
        inst->as = pci_get_address_space(PCI_DEVICE(s));
        if (vdpa_table_insert_at(&s->table, id, inst) < 0) {
            error_report("vdpa-mgmt: instance id %u invalid or repeated", id);
            g_free(inst);
            goto out;
        }
        insts[i] = inst;
    }
    vdpa_table_rebuild_free(&s->table);
    for (uint32_t i = 0; i < count; i++) {
        VdpaInst *inst = insts[i];

        if (MIG_STATE_REC + (uint64_t)inst->nqueues * MIG_QUEUE_REC >
            end - p) {
            error_report("vdpa-mgmt: instance stream truncated");
            goto out;
        }
        inst->status = p[0];
        inst->suspended = p[1];
        inst->wce = p[2];
        inst->pasid = vdpa_ld32(p + 4);
        inst->dev_features = vdpa_ld64(p + 8);
        inst->drv_features = vdpa_ld64(p + 16);
        memcpy(inst->mac, p + 24, 6);
        if (inst->type == VDPA_TYPE_NET) {
            g_hash_table_insert(s->macs, g_memdup2(&(uint64_t) {
                                    vdpa_mac_key(inst->mac) }, 8), inst);
        }
        vdpa_stats_load(&inst->stats, p + 32);
        p += MIG_STATE_REC;
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            VdpaQueue *vq = &inst->q[q];
            VdpaBlkReq **tail = &vq->held;
            uint16_t nheld;

            vq->fault_slot = VDPA_NO_FAULT_SLOT;
            if (MIG_QUEUE_REC > end - p ||
                iolab_virtq_load(&vq->vq, p) < 0) {
                error_report("vdpa-mgmt: instance %u queue %u: bad queue "
                             "record", inst->id, q);
                goto out;
            }
            vq->msi.addr = vdpa_ld64(p + VIRTQ_SAVED_SIZE);
            vq->msi.data = vdpa_ld32(p + VIRTQ_SAVED_SIZE + 8);
            vq->msi.flags = vdpa_ld32(p + VIRTQ_SAVED_SIZE + 12);
            nheld = vdpa_ld16(p + MIG_QUEUE_REC - 2);
            p += MIG_QUEUE_REC;
            if (2ULL * nheld > end - p) {
                error_report("vdpa-mgmt: instance stream truncated");
                goto out;
            }
            /* Rebuild the held requests from their heads, in order */
            for (uint16_t k = 0; k < nheld && inst->type == VDPA_TYPE_BLK;
                 k++, p += 2) {
                g_autofree VirtqElem *e = g_new(VirtqElem, 1);
                const char *err = NULL;
                uint64_t fault;

                if (iolab_virtq_read_chain(&vq->vq, &vdpa_dma_ops, inst,
                                           vdpa_ld16(p), e, &fault,
                                           &err) != VIRTQ_OK) {
                    error_report("vdpa-mgmt: instance %u queue %u: held "
                                 "request %u cannot be rebuilt: %s",
                                 inst->id, q, vdpa_ld16(p), err ?: "fault");
                    goto out;
                }
                iolab_blk_restore(vdpa_blk_state(inst), q, e);
            }
            for (uint16_t k = 0; k < nheld && inst->type != VDPA_TYPE_BLK;
                 k++, p += 2) {
                VdpaBlkReq *req = vdpa_req_get(s, inst, q);
                uint16_t head = vdpa_ld16(p) & ~MIG_HELD_SENT;
                const char *err = NULL;
                uint64_t fault;

                req->tx_sent = vdpa_ld16(p) & MIG_HELD_SENT;
                if (iolab_virtq_read_chain(&vq->vq, &vdpa_dma_ops, inst,
                                     head, &req->elem, &fault,
                                     &err) != VIRTQ_OK) {
                    vdpa_req_put(s, req);
                    error_report("vdpa-mgmt: instance %u queue %u: held "
                                 "request %u cannot be rebuilt: %s",
                                 inst->id, q, vdpa_ld16(p), err ?: "fault");
                    goto out;
                }
                *tail = req;
                tail = &req->next_held;
            }
        }
        if (inst->pasid != VDPA_NO_PASID &&
            (!s->limits.pasid_bits ||
             inst->pasid >= (1u << s->limits.pasid_bits))) {
            error_report("vdpa-mgmt: instance %u: PASID %u cannot be "
                         "translated here", inst->id, inst->pasid);
            goto out;
        }
        /* Buffers published before the switch-over: look again */
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            if (inst->q[q].vq.enabled) {
                vdpa_queue_kick(s, inst, q);
            }
        }
    }
    if (s->status == VDPA_STATUS_READY) {
        qemu_bh_schedule(s->admin_bh);
    }
    ret = 0;
out:
    if (ret) {
        vdpa_destroy_all(s);
    }
    vdpa_post_save(s);
    return ret;
}

const VMStateDescription vmstate_vdpa_mgmt = {
    .name = TYPE_VDPA_MGMT,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = vdpa_pre_save,
    .post_save = vdpa_post_save,
    .post_load = vdpa_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VdpaMgmt),
        VMSTATE_MSIX(parent_obj, VdpaMgmt),
        VMSTATE_UINT32(ctrl, VdpaMgmt),
        VMSTATE_UINT32(status, VdpaMgmt),
        VMSTATE_UINT32(fatal, VdpaMgmt),
        VMSTATE_UINT32(aq_size, VdpaMgmt),
        VMSTATE_UINT32(aq_vector, VdpaMgmt),
        VMSTATE_UINT64(sq_base, VdpaMgmt),
        VMSTATE_UINT64(cq_base, VdpaMgmt),
        VMSTATE_UINT32(sq_tail, VdpaMgmt),
        VMSTATE_UINT32(sq_head, VdpaMgmt),
        VMSTATE_UINT32(cq_head, VdpaMgmt),
        VMSTATE_UINT32(cq_tail, VdpaMgmt),
        VMSTATE_BOOL(cq_phase, VdpaMgmt),
        VMSTATE_UINT64(admin_cmds, VdpaMgmt),
        VMSTATE_UINT64(admin_errors, VdpaMgmt),
        VMSTATE_UINT64(bad_doorbells, VdpaMgmt),
        VMSTATE_UINT64(created, VdpaMgmt),
        VMSTATE_UINT64(destroyed, VdpaMgmt),
        VMSTATE_UINT32(mig_len, VdpaMgmt),
        VMSTATE_VBUFFER_ALLOC_UINT32(mig_buf, VdpaMgmt, 0, NULL, mig_len),
        VMSTATE_END_OF_LIST()
    },
};
