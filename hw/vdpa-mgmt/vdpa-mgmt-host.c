/*
 * vdpa-mgmt: the function's vpri-host (link property "host"), when the
 * emulator has VPRI.  The one file of vdpa-mgmt that calls vpri-host:
 * slots attached at realize, PA-BITMAP checks around instance DMA, and
 * page faults raised for stalled queues.  Without VPRI,
 * vdpa-mgmt-host-none.c stands in and the function has no "host".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "hw/vpri/vpri-host.h"

/*
 * vpri-host device slots the function takes: its own, and behind a
 * vIOMMU that translates PASIDs one more for PASID DMA (guest-physical).
 */
static unsigned vdpa_host_slots_needed(PCIDevice *pdev)
{
    return pci_device_iommu_address_space(pdev) != &address_space_memory &&
           pci_device_iommu_pasid_bits(pdev) ? 2 : 1;
}

static const Property vdpa_mgmt_properties[] = {
    VDPA_MGMT_PROPERTIES,
    DEFINE_PROP_LINK("host", VdpaMgmt, host, TYPE_VPRI_HOST, VpriHost *),
};

/*
 * vpri-host asks before it takes postcopy (VpriHostClientClass): a blk
 * instance's DMA to a page not received yet faults like any other, its
 * queue waits in its fault slot and runs again when the page has come
 * (docs/vdpa-mgmt.rst, "Postcopy").  Net instances are not tested under
 * postcopy yet, and the guest may create one at any time while the
 * function has a net backend, so such a function is refused as a whole.
 * Behind a vIOMMU the host refuses the function by itself (its slot is
 * indexed by IOVA).
 */
static const char *vdpa_host_postcopy_blocker(DeviceState *dev)
{
    VdpaMgmt *s = VDPA_MGMT(dev);

    if (s->nic) {
        return "its net instances do not take postcopy faults yet (the "
               "function has a netdev)";
    }
    return NULL;
}

void vdpa_host_class_init(DeviceClass *dc)
{
    VpriHostClientClass *hc = VPRI_HOST_CLIENT_CLASS(dc);

    device_class_set_props(dc, vdpa_mgmt_properties);
    hc->postcopy_blocker = vdpa_host_postcopy_blocker;
}

const char *vdpa_host_interface(void)
{
    return TYPE_VPRI_HOST_CLIENT;
}

bool vdpa_host_check(VdpaMgmt *s, Error **errp)
{
    if (!vpri_host_can_attach(s->host, errp)) {
        return false;
    }
    if (vdpa_host_slots_needed(PCI_DEVICE(s)) >
        vpri_host_free_slots(s->host)) {
        error_setg(errp, "vdpa-mgmt: vpri-host '%s' has no two free "
                   "device slots (one for PASID DMA)",
                   object_get_canonical_path_component(OBJECT(s->host)));
        return false;
    }
    return true;
}

void vdpa_host_attach(VdpaMgmt *s,
                      void (*fault_done)(void *opaque, uint16_t slot,
                                         bool resolved))
{
    PCIDevice *pdev = PCI_DEVICE(s);

    /*
     * The slots were counted by vdpa_host_check() and VDPA_FAULT_SLOTS
     * is the host's queue limit: only running out of memory is left,
     * which aborts as any allocation does.  The pinning policy ranks the
     * function as it always did, with network devices.
     */
    s->fault_dev = vpri_host_attach(s->host, DEVICE(s), VPRI_DMA_NET,
                                    VDPA_FAULT_SLOTS, fault_done, s,
                                    &error_abort);
    s->gpa_fault_dev = s->fault_dev;
    /*
     * Behind a vIOMMU the function's slot is indexed by IOVA; PASID
     * DMA is checked after translation, by guest-physical page, in a
     * second slot.  Both answer into the same fault slots.
     */
    vpri_host_set_dma_space(s->host, s->fault_dev,
                            pci_device_iommu_address_space(pdev));
    if (vdpa_host_slots_needed(pdev) == 2) {
        s->gpa_fault_dev = vpri_host_attach(s->host, DEVICE(s),
                                            VPRI_DMA_NET,
                                            VDPA_FAULT_SLOTS,
                                            fault_done, s,
                                            &error_abort);
    }
}

void vdpa_host_detach(VdpaMgmt *s)
{
    if (s->gpa_fault_dev != s->fault_dev) {
        vpri_host_detach(s->host, s->gpa_fault_dev);
    }
    vpri_host_detach(s->host, s->fault_dev);
}

int vdpa_host_dma(VdpaMgmt *s, uint32_t dev, AddressSpace *as,
                  uint64_t addr, void *buf, uint64_t len, bool write,
                  uint64_t *fault_addr)
{
    PabDmaToken token;
    PabResult r = vpri_host_dma_begin(s->host, dev, addr, len, write,
                                      &token, fault_addr);
    MemTxResult res = MEMTX_OK;

    if (r == PAB_OK && buf) {
        res = address_space_rw(as, addr, vdpa_attrs(s), buf, len, write);
    }
    vpri_host_dma_end(s->host, dev, token);
    if (r == PAB_FAULT) {
        return VIRTQ_FAULT;
    }
    return r == PAB_OK && res == MEMTX_OK ? 0 : VIRTQ_ERROR;
}

void vdpa_host_raise_fault(VdpaMgmt *s, uint32_t dev, uint16_t slot,
                           uint64_t addr, bool write)
{
    vpri_host_raise_fault(s->host, dev, slot, addr, write, -1);
}
