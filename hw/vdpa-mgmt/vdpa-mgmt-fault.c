/*
 * vdpa-mgmt: VPRI page faults of instance queues: fault slots, held
 * requests, and resuming a queue when its fault is resolved
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
#include "trace.h"

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
    uint32_t n = vdpa_blk_held(inst, qi);

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
