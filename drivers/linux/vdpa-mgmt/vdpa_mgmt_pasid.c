// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa_mgmt: the PASID the instances' DMA carries.
 *
 * Instances are vdpa devices whose dma_dev is the function, so virtio_vdpa
 * maps their rings and buffers with the DMA API in the function's DMA
 * domain.  When the platform can tag the function's DMA with a PASID
 * (a scalable-mode IOMMU that enabled the function's PASID capability,
 * and a device that DISCOVER says can bind), the driver allocates one
 * PASID and attaches the same DMA domain to it, as idxd does for its
 * kernel work queues: addresses mean the same under the PASID as without
 * one, and every instance is bound to it with BIND_PASID.  An instance's
 * DMA then goes through the IOMMU's PASID table, which is the device
 * model's PASID path, with no change for the virtio drivers.  Without a
 * PASID the instances use the function's DMA space.  See README.md.
 */
#include <linux/iommu.h>
#include <linux/pci-ats.h>

#include "vdpa_mgmt.h"

void vdpa_mgmt_pasid_init(struct vdpa_mgmt_fn *fn)
{
	struct pci_dev *pdev = fn->pdev;
	struct device *dev = &pdev->dev;
	struct iommu_domain *domain;
	ioasid_t pasid;
	int ret;

	fn->pasid = IOMMU_PASID_INVALID;
	if (!fn->pasid_bits)
		return;		/* the device has no PASID-capable vIOMMU */
#ifdef CONFIG_PCI_PASID
	if (!pdev->pasid_enabled) {
		dev_info(dev, "PASID capability not enabled by the IOMMU driver: instances without PASID\n");
		return;
	}
#else
	return;
#endif
	domain = iommu_get_domain_for_dev(dev);
	if (!domain || !(domain->type & __IOMMU_DOMAIN_DMA_API)) {
		dev_info(dev, "no DMA-API IOMMU domain: instances without PASID\n");
		return;
	}
	pasid = iommu_alloc_global_pasid(dev);
	if (pasid == IOMMU_PASID_INVALID) {
		dev_info(dev, "no PASID left: instances without PASID\n");
		return;
	}
	if (pasid >= BIT(fn->pasid_bits)) {
		dev_info(dev, "PASID %u beyond the device's %u bits: instances without PASID\n",
			 pasid, fn->pasid_bits);
		iommu_free_global_pasid(pasid);
		return;
	}
	ret = iommu_attach_device_pasid(domain, dev, pasid, NULL);
	if (ret) {
		dev_info(dev, "attaching the DMA domain to PASID %u failed (%d): instances without PASID\n",
			 pasid, ret);
		iommu_free_global_pasid(pasid);
		return;
	}
	fn->pasid = pasid;
	fn->pasid_domain = domain;
	dev_info(dev, "instances DMA with PASID %u (the function's DMA domain)\n",
		 pasid);
}

void vdpa_mgmt_pasid_fini(struct vdpa_mgmt_fn *fn)
{
	if (fn->pasid == IOMMU_PASID_INVALID)
		return;
	iommu_detach_device_pasid(fn->pasid_domain, &fn->pdev->dev, fn->pasid);
	iommu_free_global_pasid(fn->pasid);
	fn->pasid = IOMMU_PASID_INVALID;
}
