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
 * The requests themselves run in the block-request state machine shared
 * with vdpa-mgmt (hw/iolab-virtio/iolab-blk.c); this file gives it the
 * transport's DMA, fault and interrupt paths, and is the device's
 * identity and configuration; its migration is vpri-blk-migration.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/block/block.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "system/block-backend.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/iolab-virtio/iolab-blk.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "vpri-blk-internal.h"
#include "trace.h"

/* ------------------------------------------------------------------ */
/* The shared request state machine's view of the transport           */

static Virtq *vpri_blk_virtq(void *dev, uint16_t queue)
{
    return &vpri_blk_vp(dev)->queues[queue].vq;
}

static void *vpri_blk_dma_opaque(void *dev, uint16_t queue)
{
    return &vpri_blk_vp(dev)->queues[queue].dma;
}

static int vpri_blk_map(void *dev, uint64_t addr, uint32_t len,
                        bool to_guest, void **host, uint64_t *fault_addr)
{
    int ret = vpri_virtio_pci_map(vpri_blk_vp(dev), addr, len, to_guest,
                                  host, fault_addr);

    return ret == VPRI_MAP_COPY ? IOLAB_BLK_MAP_COPY : ret;
}

static void vpri_blk_unmap(void *dev, uint64_t addr, void *host,
                           uint32_t len, bool to_guest, uint32_t access_len)
{
    vpri_virtio_pci_unmap(vpri_blk_vp(dev), addr, host, len, to_guest,
                          access_len);
}

static void vpri_blk_fault(void *dev, uint16_t queue, uint64_t addr,
                           bool write)
{
    trace_vpri_blk_fault(queue, addr, write);
    vpri_virtio_pci_queue_fault(vpri_blk_vp(dev), queue, addr, write);
}

static bool vpri_blk_blocked(void *dev, uint16_t queue)
{
    return vpri_blk_vp(dev)->queues[queue].blocked;
}

static bool vpri_blk_take_fault_failed(void *dev, uint16_t queue)
{
    VpriQueue *q = &vpri_blk_vp(dev)->queues[queue];
    bool failed = q->fault_failed;

    q->fault_failed = false;
    return failed;
}

static bool vpri_blk_broken(void *dev)
{
    return vpri_virtio_pci_broken(vpri_blk_vp(dev));
}

static void vpri_blk_guest_error(void *dev, uint16_t queue, const char *msg)
{
    vpri_virtio_pci_guest_error(vpri_blk_vp(dev), "%s", msg);
}

static void vpri_blk_notify(void *dev, uint16_t queue)
{
    vpri_virtio_pci_notify_queue(vpri_blk_vp(dev), queue);
}

static void vpri_blk_kick_again(void *dev, uint16_t queue)
{
    vpri_virtio_pci_kick_later(vpri_blk_vp(dev), queue);
}

static void vpri_blk_get_id(void *dev, uint8_t id[IOLAB_BLK_ID_BYTES])
{
    VpriBlk *s = dev;

    if (s->serial) {
        memcpy(id, s->serial, MIN(strlen(s->serial), IOLAB_BLK_ID_BYTES));
    }
}

static const IolabBlkOps vpri_blk_req_ops = {
    .virtq = vpri_blk_virtq,
    .dma_opaque = vpri_blk_dma_opaque,
    .map = vpri_blk_map,
    .unmap = vpri_blk_unmap,
    .fault = vpri_blk_fault,
    .blocked = vpri_blk_blocked,
    .take_fault_failed = vpri_blk_take_fault_failed,
    .broken = vpri_blk_broken,
    .guest_error = vpri_blk_guest_error,
    .notify = vpri_blk_notify,
    .kick_again = vpri_blk_kick_again,
    .get_id = vpri_blk_get_id,
};

/* ------------------------------------------------------------------ */
/* Device                                                             */

static void vpri_blk_queue_notify(VpriVirtioPCI *vp, uint16_t index)
{
    trace_vpri_blk_queue_run(index);
    iolab_blk_run_queue(&vpri_blk_of(vp)->req, index);
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

    stq_le_p(&c->capacity, iolab_blk_capacity(&s->req));
    stl_le_p(&c->seg_max, VPRI_BLK_SEG_MAX);
    stl_le_p(&c->blk_size, s->conf.logical_block_size);
    stw_le_p(&c->num_queues, s->num_queues);
    c->wce = 1;
}

static void vpri_blk_reset(VpriVirtioPCI *vp)
{
    trace_vpri_blk_reset();
    iolab_blk_reset(&vpri_blk_of(vp)->req);
}

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
    if (s->conf.logical_block_size != IOLAB_BLK_SECTOR_SIZE) {
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
    iolab_blk_init(&s->req, &vpri_blk_req_ops, s, TYPE_VPRI_BLK,
                   s->conf.blk, s->num_queues, &vp->dma_ops,
                   &(IolabBlkConfig) {
                       .max_data = VPRI_BLK_MAX_DATA,
                       .seg_max = VPRI_BLK_SEG_MAX,
                       .bounce_cap = s->bounce_cap,
                   }, &DEVICE(s)->mem_reentrancy_guard);
}

static void vpri_blk_exit(PCIDevice *pci)
{
    VpriBlk *s = VPRI_BLK(pci);

    iolab_blk_cleanup(&s->req);
    vpri_virtio_pci_unrealize(VPRI_VIRTIO_PCI(s));
}

static const Property vpri_blk_properties[] = {
    DEFINE_BLOCK_PROPERTIES(VpriBlk, conf),
    DEFINE_PROP_STRING("serial", VpriBlk, serial),
    DEFINE_PROP_UINT16("num-queues", VpriBlk, num_queues, 1),
    DEFINE_PROP_UINT16("queue-size", VpriBlk, queue_size, 256),
    DEFINE_PROP_SIZE("bounce-cap", VpriBlk, bounce_cap, 64 * MiB),
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

/* Read-only statistics of the bounce budget, for tests and debugging */
static void vpri_blk_instance_init(Object *obj)
{
    VpriBlk *s = VPRI_BLK(obj);

    object_property_add_uint64_ptr(obj, "x-bounce-peak",
                                   &s->req.bounce.peak, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-bounce-stalls",
                                   &s->req.bounce.stalls, OBJ_PROP_FLAG_READ);
}

static const TypeInfo vpri_blk_info = {
    .name = TYPE_VPRI_BLK,
    .parent = TYPE_VPRI_VIRTIO_PCI,
    .instance_size = sizeof(VpriBlk),
    .instance_init = vpri_blk_instance_init,
    .class_init = vpri_blk_class_init,
};

static void vpri_blk_register_types(void)
{
    type_register_static(&vpri_blk_info);
}

type_init(vpri_blk_register_types)
