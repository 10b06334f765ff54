/*
 * vdpa-mgmt: DMA of the function and of its instances, in the
 * function's space or through a PASID (translation cache, vIOMMU)
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

/* Function-level DMA (admin rings and buffers, MSI writes) */
bool vdpa_fn_dma(VdpaMgmt *s, uint64_t addr, void *buf, uint32_t len,
                 bool write)
{
    return address_space_rw(pci_get_address_space(PCI_DEVICE(s)), addr,
                            vdpa_attrs(s), buf, len, write) == MEMTX_OK;
}

/* The guest enabled the function's PCIe PASID capability (if it has one) */
bool vdpa_pasid_enabled(VdpaMgmt *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return !s->pasid_cap ||
           (pci_get_word(pdev->config + s->pasid_cap + PCI_PASID_CTRL) &
            PCI_PASID_CTRL_ENABLE);
}

/*
 * An instance bound to a PASID: translate page by page with that PASID,
 * from the function's translation cache or else through the vIOMMU
 * (patches/0009), then access guest memory.  A translation the vIOMMU
 * grants is cached; one it refuses is not, so every refused access
 * reaches the vIOMMU and is recorded there.  The vIOMMU's invalidation
 * notifications (vdpa_pasid_invalidate) empty the cache.
 *
 * With a vpri-host, each translated guest-physical page of RAM is then
 * checked against the PA-BITMAP of gpa_fault_dev and the copy made in
 * its fence, as a device with ATS checks page attributes after
 * translation: a page that is not present returns VIRTQ_FAULT with its
 * guest-physical address in *@fault_addr.  @buf NULL: only translate.
 * Returns 0, VIRTQ_ERROR (refused) or VIRTQ_FAULT.  Without @check the
 * PA-BITMAP is not looked at (vdpa_load_dma_ops).
 */
static int vdpa_pasid_copy(VdpaInst *inst, uint64_t addr, void *buf,
                           uint64_t len, bool write, bool check,
                           uint64_t *fault_addr)
{
    VdpaMgmt *s = inst->s;
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t *p = buf;

    if (!vdpa_pasid_enabled(s)) {
        return VIRTQ_ERROR;
    }
    while (len) {
        uint64_t chunk = MIN(len, VDPA_IOTLB_PAGE_SIZE -
                                  (addr & VDPA_IOTLB_PAGE_MASK));
        AddressSpace *as = &address_space_memory;
        uint64_t pa;

        if (!vdpa_iotlb_lookup(&s->iotlb, inst->pasid, addr, write, &pa)) {
            IOMMUTLBEntry e;

            s->pasid_translations++;
            if (!pci_device_iommu_translate_pasid(pdev, inst->pasid, addr,
                                                  write, &e) ||
                !(e.perm & (write ? IOMMU_WO : IOMMU_RO))) {
                return VIRTQ_ERROR;
            }
            pa = (e.translated_addr & ~e.addr_mask) | (addr & e.addr_mask);
            as = e.target_as;
            if (as == &address_space_memory) {
                vdpa_iotlb_insert(&s->iotlb, inst->pasid, addr, pa,
                                  (e.perm & IOMMU_RO ? VDPA_IOTLB_R : 0) |
                                  (e.perm & IOMMU_WO ? VDPA_IOTLB_W : 0));
            }
        }
        if (p && check && s->host && as == &address_space_memory) {
            int ret = vdpa_host_dma(s, s->gpa_fault_dev, as, pa, p, chunk,
                                    write, fault_addr);

            if (ret) {
                return ret;
            }
        } else if (p && address_space_rw(as, pa, vdpa_attrs(s), p, chunk,
                                         write)) {
            return VIRTQ_ERROR;
        }
        addr += chunk;
        len -= chunk;
        if (p) {
            p += chunk;
        }
    }
    return 0;
}

int vdpa_pasid_rw(VdpaInst *inst, uint64_t addr, void *buf,
                  uint64_t len, bool write, uint64_t *fault_addr)
{
    return vdpa_pasid_copy(inst, addr, buf, len, write, true, fault_addr);
}

/* intel-iommu: the guest invalidated translations (patches/0009) */
void vdpa_pasid_invalidate(void *opaque, uint32_t pasid, hwaddr first,
                           hwaddr last)
{
    VdpaMgmt *s = opaque;

    vdpa_iotlb_invalidate(&s->iotlb, pasid == PCI_NO_PASID ?
                          VDPA_IOTLB_ANY_PASID : pasid, first, last);
}

/*
 * Engine callbacks: an instance's DMA goes to its own DMA context.  With
 * a vpri-host, DMA in the function's space (guest-physical addresses)
 * is checked against the PA-BITMAP first, and stays in the host's fence
 * until the copy is done; a page that is not present is a fault.
 */
static int vdpa_inst_dma(VdpaInst *inst, uint64_t addr, void *buf,
                         uint32_t len, bool write, bool check,
                         uint64_t *fault_addr)
{
    VdpaMgmt *s = inst->s;
    bool ok;

    if (inst->pasid != VDPA_NO_PASID) {
        int ret = vdpa_pasid_copy(inst, addr, buf, len, write, check,
                                  fault_addr);

        if (ret == VIRTQ_ERROR) {
            inst->stats.dma_faults++;
        }
        return ret;
    } else if (s->host && check) {
        int ret = vdpa_host_dma(s, s->fault_dev, inst->as, addr, buf, len,
                                write, fault_addr);

        if (ret == VIRTQ_FAULT) {
            return VIRTQ_FAULT;
        }
        ok = ret == 0;
    } else {
        ok = address_space_rw(inst->as, addr, vdpa_attrs(inst->s), buf, len,
                              write) == MEMTX_OK;
    }
    if (!ok) {
        inst->stats.dma_faults++;
        return VIRTQ_ERROR;
    }
    return 0;
}

static int vdpa_inst_dma_read(void *opaque, uint64_t addr, void *buf,
                              uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, buf, len, false, true, fault_addr);
}

static int vdpa_inst_dma_write(void *opaque, uint64_t addr, const void *buf,
                               uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, (void *)buf, len, true, true,
                         fault_addr);
}

const VirtqDmaOps vdpa_dma_ops = {
    .read = vdpa_inst_dma_read,
    .write = vdpa_inst_dma_write,
};

/*
 * Loading a migration (vdpa_post_load rebuilds held requests from their
 * heads): the same DMA without the PA-BITMAP check.  On a postcopy
 * destination vpri-host has marked the pages not received yet not
 * present before devices load, and a device fault cannot be waited for
 * inside post_load; a plain access to such a page waits in QEMU's
 * userfaultfd instead, whose listen thread brings the page meanwhile.
 * (Elsewhere the pages are resident, or paged in through vpri-host's
 * userfaultfd as any CPU access is.)
 */
static int vdpa_load_dma_read(void *opaque, uint64_t addr, void *buf,
                              uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, buf, len, false, false, fault_addr);
}

static int vdpa_load_dma_write(void *opaque, uint64_t addr, const void *buf,
                               uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, (void *)buf, len, true, false,
                         fault_addr);
}

const VirtqDmaOps vdpa_load_dma_ops = {
    .read = vdpa_load_dma_read,
    .write = vdpa_load_dma_write,
};
