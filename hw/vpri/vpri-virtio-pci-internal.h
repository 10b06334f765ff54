/*
 * VPRI virtio-pci transport: what its two files share (not an interface;
 * devices use include/hw/vpri/vpri-virtio-pci.h).  vpri-virtio-pci.c is
 * the transport, vpri-virtio-pci-migration.c its migration state; the
 * latter calls the former, never the other way round.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_VIRTIO_PCI_INTERNAL_H
#define HW_VPRI_VIRTIO_PCI_INTERNAL_H

#include "hw/vpri/vpri-virtio-pci.h"
#include "standard-headers/linux/virtio_pci.h"

#define VIRTIO_NO_VECTOR VIRTIO_MSI_NO_VECTOR

/* The data path runs per DMA: it takes the parent without a checked cast. */
static inline PCIDevice *vpri_vpci_pci(VpriVirtioPCI *vp)
{
    return &vp->parent_obj;
}

/* Unpublish @q's ring mappings (freed after an RCU grace period) */
void vpri_vpci_drop_ring_caches(VpriQueue *q);
/* Free the in-flight chains saved for, or loaded from, a migration */
void vpri_vpci_drop_inflight(VpriVirtioPCI *vp);

#endif
