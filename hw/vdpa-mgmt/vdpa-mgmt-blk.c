/*
 * vdpa-mgmt: block instances (VIRTIO_BLK_T_* requests on the
 * function's block backends)
 *
 * The requests run in the block-request state machine shared with
 * vpri-blk (hw/iolab-virtio/iolab-blk.c), one IolabBlk per instance,
 * created when the instance first runs a queue or gets requests from a
 * migration.  This file gives it the instance's DMA (PASID translation,
 * VPRI checks: vdpa_dma_ops), fault slots, interrupts and counters.
 *
 * Iterative migration (vdpa-mgmt-migration.c) resends an instance when
 * it is marked changed: the hooks through which the state machine
 * changes what the record holds (held requests, the used ring, the
 * counters, the error state) mark it; pops happen only in a queue run,
 * which vdpa_inst_run() marks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "system/runstate.h"
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
#include "hw/iolab-virtio/iolab-blk.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "trace.h"

VdpaBlkBackend *vdpa_inst_blk(VdpaInst *inst)
{
    return &inst->s->blk[inst->backend];
}

/* ---- The shared state machine's view of an instance ---- */

static Virtq *vdpa_blk_virtq(void *dev, uint16_t queue)
{
    return &((VdpaInst *)dev)->q[queue].vq;
}

static void *vdpa_blk_dma_opaque(void *dev, uint16_t queue)
{
    return dev;                 /* vdpa_dma_ops take the instance */
}

/*
 * Data goes straight between the backend and guest memory only for
 * instances in the function's own DMA space without VPRI: a PA-BITMAP
 * check or a PASID translation would have to stay valid for the whole
 * I/O.  Anything else is bounced.
 */
static int vdpa_blk_map(void *dev, uint64_t addr, uint32_t len,
                        bool to_guest, void **host, uint64_t *fault_addr)
{
    VdpaInst *inst = dev;
    hwaddr plen = len;
    void *p;

    if (inst->s->host || inst->pasid != VDPA_NO_PASID) {
        return IOLAB_BLK_MAP_COPY;
    }
    p = address_space_map(inst->as, addr, &plen, to_guest,
                          vdpa_attrs(inst->s));
    if (!p) {
        return IOLAB_BLK_MAP_COPY;
    }
    if (plen < len) {
        address_space_unmap(inst->as, p, plen, to_guest, 0);
        return IOLAB_BLK_MAP_COPY;
    }
    inst->s->blk_mapped++;
    *host = p;
    return 0;
}

static void vdpa_blk_unmap(void *dev, uint64_t addr, void *host,
                           uint32_t len, bool to_guest, uint32_t access_len)
{
    address_space_unmap(((VdpaInst *)dev)->as, host, len, to_guest,
                        access_len);
}

/*
 * The state machine holds the request (the queue's record changes: its
 * held heads), and the queue waits for a fault slot.
 */
static void vdpa_blk_fault(void *dev, uint16_t queue, uint64_t addr,
                           bool write)
{
    VdpaInst *inst = dev;

    vdpa_mig_mark(inst->s, inst->id);
    vdpa_queue_fault(inst, queue, addr, write);
}

/*
 * Nothing of a suspended or stalled queue touches guest memory: its
 * completions wait, held, for the queue to run again.
 *
 * Nor while the VM is stopped: the backend is drained when the VM stops,
 * and its completions, posted by a bottom half, could otherwise land in
 * guest RAM in a migration's downtime, after RAM's last pass (the used
 * ring and status bytes lost on the destination while the saved queue
 * says pushed).  Held, they travel as heads and start again there.  The
 * queue's run waits as a kick, which the VM's next start runs
 * (vdpa_vm_state_change()), as vdpa_inst_run() does for a stopped VM.
 */
static bool vdpa_blk_blocked(void *dev, uint16_t queue)
{
    VdpaInst *inst = dev;

    if (!runstate_is_running()) {
        vdpa_queue_kick(inst->s, inst, queue);
        return true;
    }
    return !(inst->status & VDPA_ST_DRIVER_OK) || inst->suspended ||
           vdpa_queue_blocked(inst, queue);
}

static bool vdpa_blk_broken(void *dev)
{
    return ((VdpaInst *)dev)->status & VDPA_ST_NEEDS_RESET;
}

static void vdpa_blk_guest_error(void *dev, uint16_t queue, const char *msg)
{
    vdpa_inst_error(dev, "%s", msg);
}

/* Used entries were pushed: the queue's record changed (and marked) */
static void vdpa_blk_notify(void *dev, uint16_t queue)
{
    vdpa_queue_interrupt(dev, queue);
}

static void vdpa_blk_kick_again(void *dev, uint16_t queue)
{
    VdpaInst *inst = dev;

    vdpa_queue_kick(inst->s, inst, queue);
}

static void vdpa_blk_get_id(void *dev, uint8_t id[IOLAB_BLK_ID_BYTES])
{
    /* NUL-padded, not necessarily NUL-terminated (virtio 1.2, 5.2.6) */
    g_autofree char *str = g_strdup_printf("vdpa%u", ((VdpaInst *)dev)->id);

    memcpy(id, str, MIN(strlen(str), IOLAB_BLK_ID_BYTES));
}

/* The instance's counters are part of its migration record */
static void vdpa_blk_completed(void *dev, uint16_t queue, uint32_t type,
                               uint8_t status, uint32_t bytes)
{
    VdpaInst *inst = dev;

    vdpa_mig_mark(inst->s, inst->id);
    inst->stats.requests++;
    if (type == VIRTIO_BLK_T_IN) {
        inst->stats.bytes_read += bytes;
    } else if (type == VIRTIO_BLK_T_OUT) {
        inst->stats.bytes_written += bytes;
    }
}

static const IolabBlkOps vdpa_blk_req_ops = {
    .virtq = vdpa_blk_virtq,
    .dma_opaque = vdpa_blk_dma_opaque,
    .map = vdpa_blk_map,
    .unmap = vdpa_blk_unmap,
    .fault = vdpa_blk_fault,
    .blocked = vdpa_blk_blocked,
    .broken = vdpa_blk_broken,
    .guest_error = vdpa_blk_guest_error,
    .notify = vdpa_blk_notify,
    .kick_again = vdpa_blk_kick_again,
    .get_id = vdpa_blk_get_id,
    .completed = vdpa_blk_completed,
};

IolabBlk *vdpa_blk_state(VdpaInst *inst)
{
    if (!inst->blk_req) {
        VdpaMgmt *s = inst->s;

        inst->blk_req = g_new(IolabBlk, 1);
        iolab_blk_init(inst->blk_req, &vdpa_blk_req_ops, inst, TYPE_VDPA_MGMT,
                       vdpa_inst_blk(inst)->blk, inst->nqueues,
                       &vdpa_dma_ops, &(IolabBlkConfig) {
                           .max_data = VDPA_BLK_MAX_DATA,
                           .seg_max = VDPA_BLK_SEG_MAX,
                           .bounce_cap = VDPA_BLK_BOUNCE_CAP,
                           .pool = &s->bounce_pool,
                           .spare_max = VDPA_BLK_SPARE_REQS,
                       }, &DEVICE(s)->mem_reentrancy_guard);
    }
    return inst->blk_req;
}

static void vdpa_blk_quiesce(VdpaInst *inst)
{
    if (inst->blk_req) {
        iolab_blk_drain(inst->blk_req);
    }
}

static void vdpa_blk_drop(VdpaInst *inst)
{
    if (inst->blk_req) {
        iolab_blk_reset(inst->blk_req);
    }
}

static void vdpa_blk_free(VdpaInst *inst)
{
    if (inst->blk_req) {
        iolab_blk_cleanup(inst->blk_req);
        g_free(inst->blk_req);
        inst->blk_req = NULL;
    }
}

static uint32_t vdpa_blk_held(VdpaInst *inst, uint16_t qi)
{
    return inst->blk_req ? iolab_blk_queue_held(inst->blk_req, qi) : 0;
}

static void vdpa_run_queue(VdpaInst *inst, uint16_t qi)
{
    if (!vdpa_inst_runnable(inst) || !inst->q[qi].vq.enabled) {
        return;
    }
    iolab_blk_run_queue(vdpa_blk_state(inst), qi);
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
    .quiesce = vdpa_blk_quiesce,
    .drop = vdpa_blk_drop,
    .free = vdpa_blk_free,
    .held = vdpa_blk_held,
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
