/*
 * vdpa-mgmt: the management PCI function: its registers, its admin
 * queue (submission and completion rings in guest memory), realize,
 * reset and exit
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

/*
 * Admin commands run per main-loop iteration; each is bounded on its own
 * (LIST returns at most VDPA_LIST_MAX_IDS ids), so this bounds the time
 * one iteration spends on the admin queue.
 */
#define VDPA_AQ_BUDGET 64

static void vdpa_admin_fatal(VdpaMgmt *s, uint32_t code)
{
    qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue unusable (%u)\n",
                  code);
    s->status = VDPA_STATUS_FATAL;
    s->fatal = code;
}

/*
 * Run the submitted commands, at most VDPA_AQ_BUDGET of them per call:
 * the rest wait for the next main-loop iteration (the bottom half
 * reschedules itself), so a full ring of LIST or DESTROY commands does
 * not keep the main loop.  Nothing runs while the VM is stopped
 * (vdpa_vm_state_change() schedules the bottom half again).
 */
static void vdpa_admin_bh(void *opaque)
{
    VdpaMgmt *s = opaque;
    bool completed = false;
    unsigned budget = VDPA_AQ_BUDGET;

    if (!runstate_is_running()) {
        return;
    }
    while (s->status == VDPA_STATUS_READY && s->sq_head != s->sq_tail &&
           (s->cq_tail + 1) % s->aq_size != s->cq_head) {
        uint8_t sqe[VDPA_SQE_SIZE], cqe[VDPA_CQE_SIZE];
        uint64_t result;
        VdpaStatus st;
        VdpaCmd cmd;

        if (!budget--) {
            qemu_bh_schedule(s->admin_bh);
            break;
        }

        if (!vdpa_fn_dma(s, s->sq_base + (uint64_t)s->sq_head * VDPA_SQE_SIZE,
                         sqe, sizeof(sqe), false)) {
            vdpa_admin_fatal(s, VDPA_FATAL_DMA);
            break;
        }
        s->sq_head = (s->sq_head + 1) % s->aq_size;
        vdpa_cmd_decode(sqe, &cmd);
        st = vdpa_execute(s, &cmd, &result);
        s->admin_cmds++;
        if (!vdpa_ok(st)) {
            s->admin_errors++;
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: %s (0x%x) on %" PRIu64
                          ": status %u qualifier 0x%x\n",
                          vdpa_op_name(cmd.opcode), cmd.opcode, cmd.member,
                          st.status, st.qual);
        }
        trace_vdpa_mgmt_admin(vdpa_op_name(cmd.opcode), cmd.member,
                              st.status, st.qual, result);
        vdpa_cqe_encode(cqe, cmd.cid, st, s->cq_phase, result);
        if (!vdpa_fn_dma(s, s->cq_base + (uint64_t)s->cq_tail * VDPA_CQE_SIZE,
                         cqe, sizeof(cqe), true)) {
            vdpa_admin_fatal(s, VDPA_FATAL_DMA);
            break;
        }
        s->cq_tail = (s->cq_tail + 1) % s->aq_size;
        if (s->cq_tail == 0) {
            s->cq_phase = !s->cq_phase;
        }
        completed = true;
    }
    if (completed && s->aq_vector < 1 && msix_enabled(PCI_DEVICE(s))) {
        msix_notify(PCI_DEVICE(s), s->aq_vector);
    }
}

/*
 * The VM runs again: what waited for it (kicks, admin commands, frames
 * the netdev queued) goes on.
 */
static void vdpa_vm_state_change(void *opaque, bool running, RunState state)
{
    VdpaMgmt *s = opaque;

    if (!running) {
        return;
    }
    vdpa_mig_drop_unfinished(s);
    if (s->kicks->len) {
        qemu_bh_schedule(s->kick_bh);
    }
    if (s->status == VDPA_STATUS_READY) {
        qemu_bh_schedule(s->admin_bh);
    }
    if (s->nic) {
        qemu_flush_queued_packets(qemu_get_queue(s->nic));
    }
}

static void vdpa_admin_enable(VdpaMgmt *s, bool on)
{
    s->sq_head = s->sq_tail = s->cq_head = s->cq_tail = 0;
    s->cq_phase = true;
    s->fatal = VDPA_FATAL_NONE;
    s->status = 0;
    if (!on) {
        return;
    }
    if (s->aq_size < VDPA_AQ_MIN_SIZE || s->aq_size > VDPA_AQ_MAX_SIZE ||
        (s->aq_size & (s->aq_size - 1)) || s->sq_base % VDPA_SQE_SIZE ||
        s->cq_base % VDPA_CQE_SIZE) {
        vdpa_admin_fatal(s, VDPA_FATAL_BAD_RING);
        return;
    }
    s->status = VDPA_STATUS_READY;
}

static uint64_t vdpa_reg_read(void *opaque, hwaddr addr, unsigned size)
{
    VdpaMgmt *s = opaque;

    switch (addr) {
    case VDPA_REG_MAGIC:
        return VDPA_MGMT_MAGIC;
    case VDPA_REG_VERSION:
        return VDPA_MGMT_VERSION;
    case VDPA_REG_MAX_INST:
        return s->max_instances;
    case VDPA_REG_NUM_INST:
        return s->table.count;
    case VDPA_REG_CTRL:
        return s->ctrl;
    case VDPA_REG_STATUS:
        return s->status;
    case VDPA_REG_AQ_SIZE:
        return s->aq_size;
    case VDPA_REG_AQ_VECTOR:
        return s->aq_vector;
    case VDPA_REG_AQ_SQ_LO:
        return (uint32_t)s->sq_base;
    case VDPA_REG_AQ_SQ_HI:
        return s->sq_base >> 32;
    case VDPA_REG_AQ_CQ_LO:
        return (uint32_t)s->cq_base;
    case VDPA_REG_AQ_CQ_HI:
        return s->cq_base >> 32;
    case VDPA_REG_AQ_SQ_TAIL:
        return s->sq_tail;
    case VDPA_REG_AQ_SQ_HEAD:
        return s->sq_head;
    case VDPA_REG_AQ_CQ_HEAD:
        return s->cq_head;
    case VDPA_REG_AQ_CQ_TAIL:
        return s->cq_tail;
    case VDPA_REG_FATAL_CODE:
        return s->fatal;
    }
    return 0;
}

static void vdpa_reg_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    VdpaMgmt *s = opaque;
    bool enabled = s->ctrl & VDPA_CTRL_ENABLE;

    /* Ring geometry is fixed while the admin queue is enabled */
    if (enabled && addr >= VDPA_REG_AQ_SIZE && addr <= VDPA_REG_AQ_CQ_HI) {
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue register "
                      "0x%" HWADDR_PRIx " written while enabled\n", addr);
        return;
    }
    switch (addr) {
    case VDPA_REG_CTRL:
        s->ctrl = val & VDPA_CTRL_ENABLE;
        vdpa_admin_enable(s, s->ctrl);
        break;
    case VDPA_REG_AQ_SIZE:
        s->aq_size = val;
        break;
    case VDPA_REG_AQ_VECTOR:
        s->aq_vector = val & 0xffff;
        break;
    case VDPA_REG_AQ_SQ_LO:
        s->sq_base = deposit64(s->sq_base, 0, 32, val);
        break;
    case VDPA_REG_AQ_SQ_HI:
        s->sq_base = deposit64(s->sq_base, 32, 32, val);
        break;
    case VDPA_REG_AQ_CQ_LO:
        s->cq_base = deposit64(s->cq_base, 0, 32, val);
        break;
    case VDPA_REG_AQ_CQ_HI:
        s->cq_base = deposit64(s->cq_base, 32, 32, val);
        break;
    case VDPA_REG_AQ_SQ_TAIL:
    case VDPA_REG_AQ_CQ_HEAD:
        if (s->status != VDPA_STATUS_READY || val >= s->aq_size) {
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue index "
                          "%" PRIu64 " out of range or queue not ready\n",
                          val);
            return;
        }
        if (addr == VDPA_REG_AQ_SQ_TAIL) {
            s->sq_tail = val;
        } else {
            s->cq_head = val;
        }
        qemu_bh_schedule(s->admin_bh);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: write to read-only "
                      "register 0x%" HWADDR_PRIx "\n", addr);
        break;
    }
}

static const MemoryRegionOps vdpa_reg_ops = {
    .read = vdpa_reg_read,
    .write = vdpa_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

static void vdpa_mgmt_reset(DeviceState *dev)
{
    VdpaMgmt *s = VDPA_MGMT(dev);

    /* A function reset reclaims every instance */
    vdpa_destroy_all(s);
    vdpa_iotlb_flush(&s->iotlb);
    g_array_set_size(s->kicks, 0);
    s->ctrl = 0;
    s->aq_size = 0;
    s->aq_vector = VDPA_AQ_NO_VECTOR;
    s->sq_base = s->cq_base = 0;
    vdpa_admin_enable(s, false);
}

static void vdpa_mgmt_realize(PCIDevice *pdev, Error **errp)
{
    VdpaMgmt *s = VDPA_MGMT(pdev);
    VdpaLimits *lim = &s->limits;

    s->inst_types[VDPA_TYPE_NET] = &vdpa_net_ops;
    s->inst_types[VDPA_TYPE_BLK] = &vdpa_blk_ops;
    if (s->max_instances == 0 || s->max_instances > VDPA_TABLE_MAX) {
        error_setg(errp, "vdpa-mgmt: max-instances must be 1..%u",
                   VDPA_TABLE_MAX);
        return;
    }
    if (s->iotlb_entries > VDPA_IOTLB_MAX_ENTRIES ||
        (s->iotlb_entries && s->iotlb_entries < VDPA_IOTLB_WAYS)) {
        error_setg(errp, "vdpa-mgmt: iotlb-entries must be 0 or %u..%u",
                   VDPA_IOTLB_WAYS, VDPA_IOTLB_MAX_ENTRIES);
        return;
    }
    if (s->bounce_cap < VDPA_BOUNCE_CAP_MIN) {
        error_setg(errp, "vdpa-mgmt: bounce-cap must be at least %u bytes",
                   VDPA_BOUNCE_CAP_MIN);
        return;
    }
    if (s->host && !vdpa_host_check(s, errp)) {
        return;
    }
    if (!vdpa_open_backends(s, errp)) {
        vdpa_free_backends(s);
        return;
    }
    if (vdpa_table_init(&s->table, s->max_instances) < 0) {
        error_setg(errp, "vdpa-mgmt: cannot allocate the instance table");
        vdpa_free_backends(s);
        return;
    }

    *lim = (VdpaLimits) {
        .max_instances = s->max_instances,
        .max_queues = VDPA_MGMT_MAX_QUEUES,
        .max_queue_size = VDPA_MGMT_MAX_QSIZE,
        .dma_bits = VDPA_DMA_BITS,
        .pasid_bits = MIN(pci_device_iommu_pasid_bits(pdev), 20),
    };
    lim->num_backends[VDPA_TYPE_BLK] = s->nblk;
    lim->config_size[VDPA_TYPE_BLK] = sizeof(struct virtio_blk_config);
    lim->features[VDPA_TYPE_BLK] =
        (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
        (1ULL << VIRTIO_RING_F_EVENT_IDX) |
        (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
        (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
        (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_MQ) |
        (1ULL << VIRTIO_BLK_F_RO);

    s->macs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                    NULL);
    if (s->nic_conf.peers.ncs[0]) {
        s->nic = qemu_new_nic(&vdpa_net_info, &s->nic_conf,
                              object_get_typename(OBJECT(s)), DEVICE(s)->id,
                              &DEVICE(s)->mem_reentrancy_guard, s);
        lim->num_backends[VDPA_TYPE_NET] = 1;
        lim->config_size[VDPA_TYPE_NET] = VDPA_NET_CFG_SIZE;
        lim->features[VDPA_TYPE_NET] =
            (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
            (1ULL << VIRTIO_RING_F_EVENT_IDX) |
            (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
            (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
            (1ULL << VIRTIO_NET_F_MQ);
    }

    /* The translation cache needs the vIOMMU's invalidations */
    if (!lim->pasid_bits || !s->iotlb_entries ||
        !pci_device_iommu_set_pasid_invalidate(pdev, vdpa_pasid_invalidate,
                                               s)) {
        vdpa_iotlb_init(&s->iotlb, 0, VDPA_IOTLB_WAYS);
    } else if (vdpa_iotlb_init(&s->iotlb, s->iotlb_entries,
                               VDPA_IOTLB_WAYS) < 0) {
        pci_device_iommu_set_pasid_invalidate(pdev, NULL, NULL);
        error_setg(errp, "vdpa-mgmt: cannot allocate the translation cache");
        goto fail;
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    memory_region_init(&s->bar, OBJECT(s), "vdpa-mgmt-bar",
                       VDPA_MGMT_BAR_SIZE);
    memory_region_init_io(&s->regs, OBJECT(s), &vdpa_reg_ops, s,
                          "vdpa-mgmt-regs", VDPA_MGMT_DOORBELL_OFF);
    memory_region_init_io(&s->doorbell, OBJECT(s), &vdpa_doorbell_ops, s,
                          "vdpa-mgmt-doorbell", VDPA_MGMT_DOORBELL_SIZE);
    memory_region_add_subregion(&s->bar, 0, &s->regs);
    memory_region_add_subregion(&s->bar, VDPA_MGMT_DOORBELL_OFF,
                                &s->doorbell);
    pci_register_bar(pdev, VDPA_MGMT_REG_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar);
    if (pci_is_express(pdev) && pcie_endpoint_cap_init(pdev, 0x80) < 0) {
        error_setg(errp, "vdpa-mgmt: cannot add the PCIe capability");
        goto fail;
    }
    /*
     * PCIe PASID capability: instances issue PASID-tagged DMA, 20-bit
     * PASIDs, no execute or privileged requests.  The guest sets PASID
     * Enable before binding any (BIND_PASID checks it).
     */
    if (pci_is_express(pdev) &&
        pci_config_size(pdev) == PCIE_CONFIG_SPACE_SIZE) {
        s->pasid_cap = VDPA_MGMT_PASID_CAP_OFF;
        pcie_add_capability(pdev, PCI_EXT_CAP_ID_PASID, 1, s->pasid_cap,
                            PCI_EXT_CAP_PASID_SIZEOF);
        pci_set_word(pdev->config + s->pasid_cap + PCI_PASID_CAP,
                     VDPA_MGMT_PASID_BITS << 8);
        pci_set_word(pdev->wmask + s->pasid_cap + PCI_PASID_CTRL,
                     PCI_PASID_CTRL_ENABLE);
    }
    if (msix_init_exclusive_bar(pdev, 1, VDPA_MGMT_MSIX_BAR, errp)) {
        goto fail;
    }
    msix_vector_use(pdev, 0);

    s->kicks = g_array_new(false, false, sizeof(uint32_t));
    s->kick_bh = qemu_bh_new_guarded(vdpa_kick_bh, s,
                                     &DEVICE(s)->mem_reentrancy_guard);
    s->vm_state = qemu_add_vm_change_state_handler(vdpa_vm_state_change, s);
    s->admin_bh = qemu_bh_new_guarded(vdpa_admin_bh, s,
                                      &DEVICE(s)->mem_reentrancy_guard);
    s->aq_vector = VDPA_AQ_NO_VECTOR;
    iolab_blk_pool_init(&s->bounce_pool, s->bounce_cap);
    if (s->host) {
        s->slot_owner = g_new0(uint32_t, VDPA_FAULT_SLOTS);
        s->free_slots = g_new(uint16_t, VDPA_FAULT_SLOTS);
        for (uint16_t i = 0; i < VDPA_FAULT_SLOTS; i++) {
            s->free_slots[i] = VDPA_FAULT_SLOTS - 1 - i;
        }
        s->nfree_slots = VDPA_FAULT_SLOTS;
        s->slot_waiters = g_queue_new();
        vdpa_host_attach(s, vdpa_fault_done);
    }
    vdpa_mig_register(s);
    return;

fail:
    vdpa_iotlb_destroy(&s->iotlb);
    vdpa_table_destroy(&s->table);
    vdpa_free_backends(s);
}

static void vdpa_mgmt_exit(PCIDevice *pdev)
{
    VdpaMgmt *s = VDPA_MGMT(pdev);

    vdpa_destroy_all(s);
    iolab_blk_pool_cleanup(&s->bounce_pool);
    if (vdpa_iotlb_capacity(&s->iotlb)) {
        pci_device_iommu_set_pasid_invalidate(pdev, NULL, NULL);
    }
    vdpa_iotlb_destroy(&s->iotlb);
    if (s->host) {
        vdpa_host_detach(s);
        g_free(s->slot_owner);
        g_free(s->free_slots);
        g_queue_free_full(s->slot_waiters, g_free);
    }
    vdpa_mig_unregister(s);
    qemu_del_vm_change_state_handler(s->vm_state);
    qemu_bh_delete(s->kick_bh);
    qemu_bh_delete(s->admin_bh);
    g_array_free(s->kicks, true);
    while (s->spare) {
        VdpaNetReq *r = s->spare;

        s->spare = r->next_spare;
        g_free(r);
    }
    s->nspare = 0;
    msix_uninit_exclusive_bar(pdev);
    if (s->nic) {
        qemu_del_nic(s->nic);
    }
    g_hash_table_destroy(s->macs);
    vdpa_table_destroy(&s->table);
    vdpa_free_backends(s);
}

static void vdpa_mgmt_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);

    pc->realize = vdpa_mgmt_realize;
    pc->exit = vdpa_mgmt_exit;
    pc->vendor_id = VDPA_MGMT_PCI_VENDOR_ID;
    pc->device_id = VDPA_MGMT_PCI_DEVICE_ID;
    pc->revision = VDPA_MGMT_PCI_REVISION;
    pc->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "vDPA management function (managed virtio instances)";
    device_class_set_legacy_reset(dc, vdpa_mgmt_reset);
    dc->vmsd = &vmstate_vdpa_mgmt;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    vdpa_host_class_init(dc);
}

static void vdpa_mgmt_instance_init(Object *obj)
{
    VdpaMgmt *s = VDPA_MGMT(obj);

    object_property_add_uint64_ptr(obj, "x-bounce-peak",
                                   &s->bounce_pool.budget.peak,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-bounce-stalls",
                                   &s->bounce_pool.budget.stalls,
                                   OBJ_PROP_FLAG_READ);
}

/* PCIe, and vpri-host's client interface when the emulator has VPRI */
static InterfaceInfo vdpa_mgmt_interfaces[3] = {
    { INTERFACE_PCIE_DEVICE },
};

static TypeInfo vdpa_mgmt_info = {
    .name = TYPE_VDPA_MGMT,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VdpaMgmt),
    .instance_init = vdpa_mgmt_instance_init,
    .class_init = vdpa_mgmt_class_init,
    .interfaces = vdpa_mgmt_interfaces,
};

static void vdpa_mgmt_register_types(void)
{
    vdpa_mgmt_interfaces[1].type = vdpa_host_interface();
    type_register_static(&vdpa_mgmt_info);
}

type_init(vdpa_mgmt_register_types)
