/*
 * vpri-blk: what its two files share (not an interface).  vpri-blk.c is
 * the device, vpri-blk-migration.c its migration state; the device file
 * only names the migration's VMState and restart hook, and the
 * migration file calls nothing of the device file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_BLK_INTERNAL_H
#define HW_VPRI_BLK_INTERNAL_H

#include "qemu/units.h"
#include "hw/block/block.h"
#include "hw/iolab-virtio/iolab-blk.h"
#include "hw/vpri/vpri-virtio-pci.h"

#define TYPE_VPRI_BLK "vpri-blk"
OBJECT_DECLARE_SIMPLE_TYPE(VpriBlk, VPRI_BLK)

#define VPRI_BLK_SEG_MAX     126
/*
 * Largest data transfer of one request.  Linux never sends more than a few
 * MiB; the bound keeps a guest from making QEMU allocate huge bounce
 * buffers with chains that repeat the same memory.
 */
#define VPRI_BLK_MAX_DATA    (32 * MiB)

struct VpriBlk {
    VpriVirtioPCI parent_obj;

    BlockConf conf;
    char *serial;
    uint16_t num_queues;
    uint16_t queue_size;
    /* Bounce memory of the device at once (docs/virtq-engine.rst) */
    uint64_t bounce_cap;

    IolabBlk req;
};

static inline VpriVirtioPCI *vpri_blk_vp(VpriBlk *s)
{
    return &s->parent_obj;      /* no checked cast on the data path */
}

static inline VpriBlk *vpri_blk_of(VpriVirtioPCI *vp)
{
    return container_of(vp, VpriBlk, parent_obj);
}

/* vpri-blk-migration.c */
extern const VMStateDescription vmstate_vpri_blk;
void vpri_blk_restart(VpriVirtioPCI *vp);

#endif
