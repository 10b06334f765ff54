/*
 * vdpa-mgmt: managed instances and their queues: life cycle, the
 * request pool, popping chains, kicks through the shared doorbell,
 * interrupts, VPRI page faults of stalled queues (fault slots, held
 * requests, resuming), and the dispatch to the instance types
 * (VdpaInstOps, never by name: the types call down into this file)
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
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "trace.h"

static const char *const vdpa_state_names[] = {
    [0] = "created", [1] = "configuring", [2] = "running",
    [3] = "suspended", [4] = "needs-reset",
};

const char *vdpa_inst_state(const VdpaInst *inst)
{
    if (inst->status & VDPA_ST_NEEDS_RESET) {
        return vdpa_state_names[4];
    }
    if (inst->suspended) {
        return vdpa_state_names[3];
    }
    if (inst->status & VDPA_ST_DRIVER_OK) {
        return vdpa_state_names[2];
    }
    return vdpa_state_names[inst->status ? 1 : 0];
}

void vdpa_send_msi(VdpaInst *inst, const VdpaMsiMsg *m)
{
    VdpaMgmt *s = inst->s;

    /*
     * The stored message, written with the function's requester id, as
     * msi_send_message() does for a vector of the function's own table.
     */
    address_space_stl_le(pci_get_address_space(PCI_DEVICE(s)), m->addr,
                         m->data, vdpa_attrs(s), NULL);
    inst->stats.interrupts++;
    vdpa_mig_mark(s, inst->id);
    trace_vdpa_mgmt_msi(inst->id, m->addr, m->data);
}

void vdpa_queue_interrupt(VdpaInst *inst, uint16_t qi)
{
    VdpaQueue *q = &inst->q[qi];

    vdpa_mig_mark(inst->s, inst->id);
    if (!iolab_virtq_should_notify(&q->vq, &vdpa_dma_ops, inst)) {
        return;
    }
    if (vdpa_msi_fire(&q->msi)) {
        vdpa_send_msi(inst, &q->msi);
    } else {
        inst->stats.suppressed++;
    }
}

void G_GNUC_PRINTF(2, 3)
vdpa_inst_error(VdpaInst *inst, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: instance %u: %s\n",
                  inst->id, msg);
    inst->stats.errors++;
    inst->status |= VDPA_ST_NEEDS_RESET;
    vdpa_mig_mark(inst->s, inst->id);
}

bool vdpa_inst_runnable(VdpaInst *inst)
{
    return (inst->status & VDPA_ST_DRIVER_OK) &&
           !(inst->status & VDPA_ST_NEEDS_RESET) && !inst->suspended;
}

VdpaNetReq *vdpa_net_req_get(VdpaMgmt *s, VdpaInst *inst, uint16_t qi)
{
    VdpaNetReq *req = s->spare;

    if (req) {
        s->spare = req->next_spare;
        s->nspare--;
    } else {
        req = g_malloc(sizeof(*req));
    }
    memset(req, 0, offsetof(VdpaNetReq, elem));
    req->inst = inst;
    req->queue = qi;
    return req;
}

void vdpa_net_req_put(VdpaMgmt *s, VdpaNetReq *req)
{
    /* Every request ends here or held: its queue moved on */
    vdpa_mig_mark(s, req->inst->id);
    if (s->nspare < VDPA_NET_SPARE_REQS) {
        req->next_spare = s->spare;
        s->spare = req;
        s->nspare++;
    } else {
        g_free(req);
    }
}

/*
 * Pop the next chain of queue @qi into @req.  When nothing was popped the
 * request goes back to the pool.  On an empty ring notifications are
 * turned back on and the ring is looked at once more, since the driver
 * may have added a chain before it saw the change.  A fault consumed
 * nothing: it is raised and the pop is simply redone when it is answered.
 */
VdpaPop vdpa_net_queue_pop(VdpaInst *inst, uint16_t qi, VdpaNetReq *req)
{
    VdpaQueue *q = &inst->q[qi];
    const char *err = NULL;
    uint64_t fault;
    uint16_t avail;
    VirtqStatus st;
    bool fw;
    int ret;

    st = iolab_virtq_pop(&q->vq, &vdpa_dma_ops, inst, &req->elem, &fault, &fw,
                   &err);
    /*
     * A chain popped beyond size in flight (held ones included) is a
     * guest error the engine reports itself as VIRTQ_ERROR, "virtqueue
     * size exceeded", so one queue cannot take unbounded memory.
     */
    if (st == VIRTQ_OK) {
        return VDPA_POP_OK;
    }
    vdpa_net_req_put(inst->s, req);
    if (st == VIRTQ_FAULT) {
        vdpa_queue_fault(inst, qi, fault, false);
        return VDPA_POP_STOP;
    }
    if (st == VIRTQ_ERROR) {
        vdpa_inst_error(inst, "queue %u: %s", qi, err ?: "bad chain");
        return VDPA_POP_STOP;
    }
    ret = iolab_virtq_set_notification(&q->vq, &vdpa_dma_ops, inst, true, &fault);
    if (ret == 0) {
        ret = iolab_virtq_avail_count(&q->vq, &vdpa_dma_ops, inst, &avail, &fault);
        if (ret == 0 && avail) {
            return VDPA_POP_AGAIN;
        }
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_queue_fault(inst, qi, fault, false);
    } else if (iolab_virtq_error_reason(&q->vq)) {
        vdpa_inst_error(inst, "queue %u: %s", qi, iolab_virtq_error_reason(&q->vq));
    }
    return VDPA_POP_STOP;
}

/* Run queue @qi of @inst: kicked, resumed, or its fault was resolved */
void vdpa_inst_run(VdpaInst *inst, uint16_t qi)
{
    /*
     * No queue runs while the VM is stopped: it would touch guest memory
     * and, around a migration's switch-over, block images that are no
     * longer ours.  The run waits as a kick (vdpa_vm_state_change).
     */
    if (!runstate_is_running()) {
        vdpa_queue_kick(inst->s, inst, qi);
        return;
    }
    vdpa_mig_mark(inst->s, inst->id);
    vdpa_inst_ops(inst)->run_queue(inst, qi);
}

void vdpa_kick_bh(void *opaque)
{
    VdpaMgmt *s = opaque;
    g_autoptr(GArray) kicks = NULL;

    /* Stopped: the kicks stay queued until the VM runs again */
    if (!runstate_is_running()) {
        return;
    }
    kicks = s->kicks;
    s->kicks = g_array_new(false, false, sizeof(uint32_t));
    for (guint i = 0; i < kicks->len; i++) {
        uint32_t v = g_array_index(kicks, uint32_t, i);
        VdpaInst *inst = vdpa_table_get(&s->table, v & VDPA_DB_INST_MASK);
        uint16_t qi = v >> VDPA_DB_QUEUE_SHIFT;

        /* Destroyed since, or a new instance under a reused id: harmless */
        if (inst && qi < inst->nqueues) {
            inst->q[qi].kick_pending = 0;
            vdpa_inst_run(inst, qi);
        }
    }
}

void vdpa_queue_kick(VdpaMgmt *s, VdpaInst *inst, uint16_t qi)
{
    uint32_t v = VDPA_DB_VALUE(inst->id, qi);

    if (inst->q[qi].kick_pending) {
        return;
    }
    inst->q[qi].kick_pending = 1;
    g_array_append_val(s->kicks, v);
    qemu_bh_schedule(s->kick_bh);
}

static uint64_t vdpa_doorbell_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void vdpa_doorbell_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    VdpaMgmt *s = opaque;
    uint32_t id = val & VDPA_DB_INST_MASK;
    uint32_t qi = (uint32_t)val >> VDPA_DB_QUEUE_SHIFT;
    VdpaInst *inst = vdpa_table_get(&s->table, id);

    trace_vdpa_mgmt_doorbell(id, qi);
    if (!inst || qi >= inst->nqueues) {
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: doorbell 0x%08" PRIx64
                      " names no instance queue\n", val);
        s->bad_doorbells++;
        return;
    }
    inst->stats.kicks++;
    vdpa_mig_mark(s, id);
    vdpa_queue_kick(s, inst, qi);
}

const MemoryRegionOps vdpa_doorbell_ops = {
    .read = vdpa_doorbell_read,
    .write = vdpa_doorbell_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* Drop what a queue holds (reset, destroy) */
static void vdpa_queue_drop_held(VdpaInst *inst, uint16_t qi)
{
    VdpaQueue *q = &inst->q[qi];

    while (q->held) {
        VdpaNetReq *req = q->held;

        q->held = req->next_held;
        vdpa_net_req_put(inst->s, req);
    }
    /*
     * A pending slot is released when the host answers; a wait for a
     * slot is withdrawn now, so that a queue is never in the waiters
     * twice (they stay at most one per queue).
     */
    if (q->fault_slot == VDPA_WAIT_SLOT) {
        vdpa_queue_cancel_wait(inst, qi);
    }
    q->fault_slot = VDPA_NO_FAULT_SLOT;
}

/*
 * Requests in the backend finish on their own: wait for them, and post
 * their completions, so that a suspended instance's used rings are final.
 */
void vdpa_inst_quiesce(VdpaInst *inst)
{
    if (vdpa_inst_ops(inst)->quiesce) {
        vdpa_inst_ops(inst)->quiesce(inst);
    }
}

void vdpa_inst_reset(VdpaInst *inst)
{
    vdpa_inst_quiesce(inst);
    inst->status = 0;
    inst->suspended = false;
    inst->drv_features = 0;
    inst->wce = 1;
    if (vdpa_inst_ops(inst)->drop) {
        vdpa_inst_ops(inst)->drop(inst);
    }
    for (uint16_t i = 0; i < inst->nqueues; i++) {
        vdpa_queue_drop_held(inst, i);
        iolab_virtq_init(&inst->q[i].vq);
        vdpa_msi_clear(&inst->q[i].msi);
    }
}

void vdpa_inst_free(VdpaMgmt *s, VdpaInst *inst)
{
    if (vdpa_inst_ops(inst)->free) {
        vdpa_inst_ops(inst)->free(inst);
    }
    for (uint16_t i = 0; i < inst->nqueues; i++) {
        vdpa_queue_drop_held(inst, i);
    }
    if (inst->type == VDPA_TYPE_NET) {
        g_hash_table_remove(s->macs, &(uint64_t) { vdpa_mac_key(inst->mac) });
    }
    vdpa_table_remove(&s->table, inst->id);
    vdpa_mig_mark(s, inst->id);
    s->destroyed++;
    trace_vdpa_mgmt_destroy(inst->id);
    g_free(inst->mig_heads);
    g_free(inst);
}

/* The counters in STATS order (docs/vdpa-mgmt.rst), also the migration's */
static const size_t vdpa_stat_offsets[VDPA_STATS_SIZE / 8] = {
    offsetof(VdpaInstStats, kicks),
    offsetof(VdpaInstStats, requests),
    offsetof(VdpaInstStats, bytes_read),
    offsetof(VdpaInstStats, bytes_written),
    offsetof(VdpaInstStats, interrupts),
    offsetof(VdpaInstStats, errors),
    offsetof(VdpaInstStats, dma_faults),
    offsetof(VdpaInstStats, suppressed),
};

void vdpa_stats_save(const VdpaInstStats *st, uint8_t *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(vdpa_stat_offsets); i++) {
        vdpa_st64(out + 8 * i,
                  *(const uint64_t *)((const char *)st +
                                      vdpa_stat_offsets[i]));
    }
}

void vdpa_stats_load(VdpaInstStats *st, const uint8_t *in)
{
    for (size_t i = 0; i < ARRAY_SIZE(vdpa_stat_offsets); i++) {
        *(uint64_t *)((char *)st + vdpa_stat_offsets[i]) =
            vdpa_ld64(in + 8 * i);
    }
}

void vdpa_destroy_all(VdpaMgmt *s)
{
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, id + 1)) {
        vdpa_inst_free(s, vdpa_table_get(&s->table, id));
    }
}

/* A MAC address as the key of s->macs */
uint64_t vdpa_mac_key(const uint8_t *mac)
{
    uint64_t k = 0;

    for (int i = 0; i < 6; i++) {
        k = k << 8 | mac[i];
    }
    return k;
}

/* ------------------------------------------------------------------ */
/* VPRI page faults of instance queues: fault slots, held requests, and */
/* resuming a queue when its fault is resolved                          */

/*
 * Stop queue @qi of @inst until the host has paged in @addr.  One fault
 * slot per stalled queue; the host calls back with the slot.
 */
void vdpa_queue_fault(VdpaInst *inst, uint16_t qi, uint64_t addr,
                      bool write)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];
    uint16_t slot;

    if (q->fault_slot != VDPA_NO_FAULT_SLOT) {
        return;
    }
    if (!s->nfree_slots) {
        VdpaSlotWaiter *w = g_new(VdpaSlotWaiter, 1);

        *w = (VdpaSlotWaiter) {
            .owner = VDPA_DB_VALUE(inst->id, qi) + 1,
            .addr = addr, .write = write,
        };
        g_queue_push_tail(s->slot_waiters, w);
        q->fault_slot = VDPA_WAIT_SLOT;
        return;
    }
    slot = s->free_slots[--s->nfree_slots];
    s->slot_owner[slot] = VDPA_DB_VALUE(inst->id, qi) + 1;
    q->fault_slot = slot;
    trace_vdpa_mgmt_fault(inst->id, qi, addr, write);
    vdpa_host_raise_fault(s, inst->pasid == VDPA_NO_PASID ?
                          s->fault_dev : s->gpa_fault_dev,
                          slot, addr, write);
}

uint32_t vdpa_queue_held(VdpaInst *inst, uint16_t qi)
{
    const VdpaInstOps *ops = vdpa_inst_ops(inst);
    uint32_t n = ops->held ? ops->held(inst, qi) : 0;

    for (const VdpaNetReq *r = inst->q[qi].held; r; r = r->next_held) {
        n++;
    }
    return n;
}

bool vdpa_queue_blocked(VdpaInst *inst, uint16_t qi)
{
    return inst->q[qi].fault_slot != VDPA_NO_FAULT_SLOT;
}

/*
 * A fault stopped net request @req after it was popped: keep it, in
 * order, and restart it once the page is in.  A TX request keeps one bit
 * (tx_sent); an RX buffer is simply reused.  (Blk requests are held by
 * the shared state machine, at the stage they reached: vdpa-mgmt-blk.c.)
 */
void vdpa_net_req_hold(VdpaNetReq *req, uint64_t addr, bool write)
{
    VdpaInst *inst = req->inst;
    VdpaQueue *q = &inst->q[req->queue];
    VdpaNetReq **tail = &q->held;

    vdpa_mig_mark(inst->s, inst->id);
    while (*tail) {
        tail = &(*tail)->next_held;
    }
    req->next_held = NULL;
    *tail = req;
    vdpa_queue_fault(inst, req->queue, addr, write);
}

static VdpaInst *vdpa_owner_inst(VdpaMgmt *s, uint32_t owner, uint16_t *qi)
{
    VdpaInst *inst = vdpa_table_get(&s->table,
                                    (owner - 1) & VDPA_DB_INST_MASK);

    *qi = (owner - 1) >> VDPA_DB_QUEUE_SHIFT;
    return inst && *qi < inst->nqueues ? inst : NULL;
}

static gint vdpa_waiter_is(gconstpointer waiter, gconstpointer owner)
{
    return ((const VdpaSlotWaiter *)waiter)->owner != *(const uint32_t *)owner;
}

/* Queue @qi of @inst waits for a slot no more (reset, destroy) */
void vdpa_queue_cancel_wait(VdpaInst *inst, uint16_t qi)
{
    VdpaMgmt *s = inst->s;
    uint32_t owner = VDPA_DB_VALUE(inst->id, qi) + 1;
    GList *link = g_queue_find_custom(s->slot_waiters, &owner,
                                      vdpa_waiter_is);

    if (link) {
        g_free(link->data);
        g_queue_delete_link(s->slot_waiters, link);
    }
}

/* A slot is free: give it to the oldest queue still waiting for one */
static void vdpa_slot_freed(VdpaMgmt *s)
{
    VdpaSlotWaiter *w;

    while (s->nfree_slots && (w = g_queue_pop_head(s->slot_waiters))) {
        uint16_t qi;
        VdpaInst *inst = vdpa_owner_inst(s, w->owner, &qi);

        if (inst && inst->q[qi].fault_slot == VDPA_WAIT_SLOT) {
            inst->q[qi].fault_slot = VDPA_NO_FAULT_SLOT;
            vdpa_queue_fault(inst, qi, w->addr, w->write);
        }
        g_free(w);
    }
}

/* The host resolved (or failed) the fault of slot @slot */
void vdpa_fault_done(void *opaque, uint16_t slot, bool resolved)
{
    VdpaMgmt *s = opaque;
    uint32_t owner = slot < VDPA_FAULT_SLOTS ? s->slot_owner[slot] : 0;
    VdpaInst *inst;
    uint16_t qi;

    if (!owner) {
        return;
    }
    s->slot_owner[slot] = 0;
    s->free_slots[s->nfree_slots++] = slot;
    inst = vdpa_owner_inst(s, owner, &qi);
    vdpa_slot_freed(s);
    /* Destroyed or reset meanwhile: the slot was all that was left */
    if (!inst || inst->q[qi].fault_slot != slot) {
        return;
    }
    inst->q[qi].fault_slot = VDPA_NO_FAULT_SLOT;
    if (!resolved) {
        vdpa_inst_error(inst, "queue %u: page fault could not be resolved",
                        qi);
        return;
    }
    vdpa_inst_run(inst, qi);
}
