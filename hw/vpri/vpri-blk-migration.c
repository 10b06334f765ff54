/*
 * vpri-blk: migration.  The transport's state (vmstate_vpri_virtio_pci)
 * and the requests in flight as the transport's in-flight chains,
 * checked in post_load and restarted when the VM runs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "migration/vmstate.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "vpri-blk-internal.h"

/*
 * What is in flight when the VM stops for the switch-over: the backend
 * has been drained, so every request popped and not yet pushed is on its
 * queue's held list, at whatever stage a fault or a blocked queue left it.
 * Each goes to the destination as its descriptor chain, and starts there
 * again from its header once the VM runs, as virtio-blk restarts its
 * in-flight requests: reads and writes are idempotent until the driver
 * sees them complete.
 */
static void vpri_blk_save_one(void *opaque, uint16_t queue,
                              const VirtqElem *e)
{
    vpri_virtio_pci_save_elem(opaque, queue, e);
}

static int vpri_blk_pre_save(void *opaque)
{
    VpriBlk *s = opaque;

    if (iolab_blk_backend_inflight(&s->req)) {
        error_report("vpri-blk: %" PRIu64 " requests still in the backend "
                     "at migration", iolab_blk_backend_inflight(&s->req));
        return -EBUSY;
    }
    iolab_blk_foreach_inflight(&s->req, vpri_blk_save_one, vpri_blk_vp(s));
    return 0;
}

/*
 * The transport checked each chain's layout; a request must also have
 * the header and status byte that the source's pop required
 * (iolab_blk_chain_ok()), since vpri_blk_restart() hands the chains to
 * the request state machine past that check.
 */
static int vpri_blk_post_load(void *opaque, int version_id)
{
    VpriBlk *s = opaque;
    VpriVirtioPCI *vp = vpri_blk_vp(s);
    g_autofree VirtqElem *e = g_new(VirtqElem, 1);
    uint16_t queue;

    for (uint32_t off = 0, n = 0; off < vp->inflight_len; n++) {
        if (!vpri_virtio_pci_load_elem(vp, &off, &queue, e)) {
            error_report("vpri-blk: malformed in-flight requests in the "
                         "migration stream");
            return -EINVAL;
        }
        if (!iolab_blk_chain_ok(e)) {
            error_report("vpri-blk: migrated inflight chain %u: out_len %u "
                         "/ in_len %u leave no request header or status "
                         "byte", n, e->out_len, e->in_len);
            return -EINVAL;
        }
    }
    return 0;
}

/* The VM runs: requests migrated from the source start again, in order. */
void vpri_blk_restart(VpriVirtioPCI *vp)
{
    VpriBlk *s = vpri_blk_of(vp);
    g_autofree VirtqElem *e = g_new(VirtqElem, 1);
    uint16_t queue;

    vpri_virtio_pci_prefetch_inflight(vp);
    for (uint32_t off = 0; off < vp->inflight_len;) {
        if (!vpri_virtio_pci_load_elem(vp, &off, &queue, e)) {
            return;     /* checked on load: cannot happen */
        }
        iolab_blk_restore(&s->req, queue, e);
    }
}

const VMStateDescription vmstate_vpri_blk = {
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
