/*
 * vpri-nic: migration.  The transport's state (vmstate_vpri_virtio_pci),
 * the queue pairs in use, and each queue's current element as one of the
 * transport's in-flight chains; every loaded slot checked in post_load.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "migration/vmstate.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "vpri-nic-internal.h"

/* The slot a queue's current element lives in, or NULL. */
static VpriNicSlot *vpri_nic_slot(VpriNic *s, uint16_t index)
{
    if (index == vpri_nic_ctrl_index(s)) {
        return &s->ctrl;
    }
    if (index >= 2 * s->max_pairs) {
        return NULL;
    }
    return index & 1 ? &s->tx[index / 2].slot : &s->rx[index / 2];
}

/*
 * Each queue's current element goes as its chain, in the transport's
 * format.  On the destination it is the slot's element again, and the
 * queue picks it up from the start: a receive buffer is still empty (a
 * packet is written and pushed in one go), a transmit chain has not been
 * pushed, so not sent either, and control commands are idempotent.
 * Packets queued in the net layer, and a transmission waiting for the
 * peer, are lost like packets on a wire.
 */
static int vpri_nic_pre_save(void *opaque)
{
    VpriNic *s = opaque;
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriNicSlot *slot = vpri_nic_slot(s, i);

        if (slot && slot->busy) {
            vpri_virtio_pci_save_elem(vp, i, slot->elem);
        }
    }
    return 0;
}

/* Check the migrated slots: one element per queue that has a slot. */
static bool vpri_nic_migrated_slots_ok(VpriNic *s)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    g_autofree bool *seen = g_new0(bool, vp->num_queues);
    uint16_t index;

    for (uint32_t off = 0; off < vp->inflight_len;) {
        if (!vpri_virtio_pci_load_elem(vp, &off, &index, NULL) ||
            !vpri_nic_slot(s, index) || seen[index]) {
            return false;
        }
        seen[index] = true;
    }
    return true;
}

static int vpri_nic_post_load(void *opaque, int version_id)
{
    VpriNic *s = opaque;

    if (s->curr_pairs < 1 || s->curr_pairs > s->max_pairs ||
        !vpri_nic_migrated_slots_ok(s)) {
        error_report("vpri-nic: malformed state in the migration stream "
                     "(%u queue pairs of %u, or bad slots)", s->curr_pairs,
                     s->max_pairs);
        return -EINVAL;
    }
    /* The link is the destination's own */
    s->status = qemu_get_queue(s->nic)->link_down ? 0 : VIRTIO_NET_S_LINK_UP;
    return 0;
}

/* The VM runs (again): migrated slots back, packets held meanwhile in. */
void vpri_nic_restart(VpriVirtioPCI *vp)
{
    VpriNic *s = VPRI_NIC(vp);
    VirtqElem *elem = g_new(VirtqElem, 1);
    uint16_t index;

    /*
     * Here only, as vpri-blk: after the rings (vpri_vpci_vm_state_change),
     * and not from post_load, which checks a stream it may still refuse.
     */
    vpri_virtio_pci_prefetch_inflight(vp);
    for (uint32_t off = 0; off < vp->inflight_len;) {
        VpriNicSlot *slot;

        if (!vpri_virtio_pci_load_elem(vp, &off, &index, elem)) {
            break;                      /* checked on load: cannot happen */
        }
        slot = vpri_nic_slot(s, index);
        *slot->elem = *elem;
        slot->busy = true;
    }
    g_free(elem);
    for (uint16_t i = 0; i < s->nic_queues; i++) {
        qemu_flush_queued_packets(qemu_get_subqueue(s->nic, i));
    }
}

const VMStateDescription vmstate_vpri_nic = {
    .name = "vpri-nic",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = vpri_nic_pre_save,
    .post_load = vpri_nic_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(parent_obj, VpriNic, 1, vmstate_vpri_virtio_pci,
                       VpriVirtioPCI),
        VMSTATE_UINT16_EQUAL(max_pairs, VpriNic, NULL),
        VMSTATE_UINT16(curr_pairs, VpriNic),
        VMSTATE_END_OF_LIST()
    },
};
