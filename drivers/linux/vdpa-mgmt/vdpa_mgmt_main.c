// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa_mgmt: the PCI function.  Probe maps BAR 0, takes the function's
 * one MSI-X vector, starts the admin queue, asks DISCOVER for the limits
 * and registers one vDPA management device per instance type the
 * function offers: "pci/<bdf>" for net, "vdpa-mgmt-blk.<bdf>" for blk
 * (the vdpa tool has no type argument, so a management device is one
 * type).  See README.md.
 */
#include <linux/module.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/unaligned.h>
#include <uapi/linux/vdpa.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_net.h>

#include "vdpa_mgmt.h"

static irqreturn_t vdpa_mgmt_irq(int irq, void *opaque)
{
	struct vdpa_mgmt_fn *fn = opaque;

	vdpa_mgmt_aq_irq(fn);
	vdpa_mgmt_inst_irq(fn);
	return IRQ_HANDLED;
}

static int vdpa_mgmt_discover(struct vdpa_mgmt_fn *fn)
{
	u8 d[VDPA_DISCOVER_SIZE];
	int ret;

	ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_DISCOVER, 0, NULL, NULL, d, sizeof(d),
			       NULL, NULL);
	if (ret)
		return ret;
	fn->max_inst = get_unaligned_le32(d + VDPA_DISC_MAX_INST);
	fn->max_queues = get_unaligned_le16(d + VDPA_DISC_MAX_QUEUES);
	fn->max_qsize = get_unaligned_le16(d + VDPA_DISC_MAX_QSIZE);
	fn->types = get_unaligned_le32(d + VDPA_DISC_TYPES);
	fn->net_features = get_unaligned_le64(d + VDPA_DISC_NET_FEAT);
	fn->blk_features = get_unaligned_le64(d + VDPA_DISC_BLK_FEAT);
	fn->num_blk = get_unaligned_le32(d + VDPA_DISC_NUM_BLK);
	fn->num_net = get_unaligned_le32(d + VDPA_DISC_NUM_NET);
	fn->pasid_bits = d[VDPA_DISC_PASID_BITS];
	return 0;
}

static void vdpa_mgmt_child_release(struct device *dev)
{
	kfree(dev);
}

static int vdpa_mgmt_register_type(struct vdpa_mgmt_fn *fn,
				   struct vdpa_mgmt_mdev *mm, u8 type)
{
	struct pci_dev *pdev = fn->pdev;
	int ret;

	mm->fn = fn;
	mm->type = type;
	mm->mdev.ops = &vdpa_mgmt_mdev_ops;
	mm->mdev.id_table = mm->id_table;
	mm->id_table[0].vendor = VIRTIO_DEV_ANY_ID;
	if (type == VDPA_TYPE_NET) {
		mm->id_table[0].device = VIRTIO_ID_NET;
		mm->mdev.device = &pdev->dev;
		mm->mdev.config_attr_mask = BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MACADDR) |
					    BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MTU) |
					    BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MAX_VQP) |
					    BIT_ULL(VDPA_ATTR_DEV_FEATURES);
		/*
		 * Never MQ: the device receives on queue 0 only, and
		 * virtio_net refuses MQ without a control queue, which the
		 * device does not have.
		 */
		mm->mdev.supported_features = fn->net_features &
					      ~BIT_ULL(VIRTIO_NET_F_MQ);
	} else {
		mm->id_table[0].device = VIRTIO_ID_BLOCK;
		mm->child = kzalloc(sizeof(*mm->child), GFP_KERNEL);
		if (!mm->child)
			return -ENOMEM;
		device_initialize(mm->child);
		mm->child->parent = &pdev->dev;
		mm->child->release = vdpa_mgmt_child_release;
		ret = dev_set_name(mm->child, "vdpa-mgmt-blk.%s", pci_name(pdev));
		if (!ret)
			ret = device_add(mm->child);
		if (ret) {
			put_device(mm->child);
			mm->child = NULL;
			return ret;
		}
		mm->mdev.device = mm->child;
		mm->mdev.config_attr_mask = BIT_ULL(VDPA_ATTR_DEV_FEATURES);
		mm->mdev.supported_features = fn->blk_features;
	}
	mm->mdev.max_supported_vqs = fn->max_queues;
	ret = vdpa_mgmtdev_register(&mm->mdev);
	if (ret) {
		if (mm->child) {
			device_unregister(mm->child);
			mm->child = NULL;
		}
		return ret;
	}
	mm->registered = true;
	return 0;
}

static void vdpa_mgmt_unregister_type(struct vdpa_mgmt_mdev *mm)
{
	/* Deletes every instance of the type (dev_del for each). */
	if (mm->registered)
		vdpa_mgmtdev_unregister(&mm->mdev);
	mm->registered = false;
	if (mm->child)
		device_unregister(mm->child);
	mm->child = NULL;
}

static int vdpa_mgmt_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct vdpa_mgmt_fn *fn;
	u32 magic, version;
	int ret;

	fn = devm_kzalloc(dev, sizeof(*fn), GFP_KERNEL);
	if (!fn)
		return -ENOMEM;
	fn->pdev = pdev;
	mutex_init(&fn->aq_lock);
	init_completion(&fn->aq_done);
	spin_lock_init(&fn->cb_lock);
	INIT_LIST_HEAD(&fn->instances);
	pci_set_drvdata(pdev, fn);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(VDPA_MGMT_REG_BAR), VDPA_MGMT_DRV_NAME);
	if (ret)
		return ret;
	fn->regs = pcim_iomap_table(pdev)[VDPA_MGMT_REG_BAR];
	magic = ioread32(fn->regs + VDPA_REG_MAGIC);
	version = ioread32(fn->regs + VDPA_REG_VERSION);
	if (magic != VDPA_MGMT_MAGIC || version != VDPA_MGMT_VERSION) {
		dev_err(dev, "not a vdpa-mgmt function of version %u (magic 0x%x, version %u)\n",
			VDPA_MGMT_VERSION, magic, version);
		return -ENODEV;
	}
	/* The device's DMA space is 48 bits (DISCOVER dma_bits). */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(48));
	if (ret)
		return ret;
	pci_set_master(pdev);

	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (ret < 0) {
		dev_err(dev, "no MSI-X vector: %d\n", ret);
		return ret;
	}
	fn->irq = pci_irq_vector(pdev, 0);
	/*
	 * Every instance queue's stored MSI message is a copy of this
	 * vector's message (README.md, "Interrupts"): the vector must not be
	 * moved behind the copies' back.
	 */
	ret = request_irq(fn->irq, vdpa_mgmt_irq, IRQF_NOBALANCING,
			  VDPA_MGMT_DRV_NAME, fn);
	if (ret)
		goto err_vectors;
	get_cached_msi_msg(fn->irq, &fn->msg);

	ret = vdpa_mgmt_aq_init(fn);
	if (ret)
		goto err_irq;
	ret = vdpa_mgmt_discover(fn);
	if (ret) {
		dev_err(dev, "DISCOVER failed: %d\n", ret);
		goto err_aq;
	}
	dev_info(dev, "vdpa-mgmt: %u instances, %u queues of up to %u entries, types 0x%x, PASID bits %u\n",
		 fn->max_inst, fn->max_queues, fn->max_qsize, fn->types,
		 fn->pasid_bits);

	vdpa_mgmt_pasid_init(fn);
	vdpa_mgmt_debugfs_init(fn);

	if (fn->types & BIT(VDPA_TYPE_NET)) {
		ret = vdpa_mgmt_register_type(fn, &fn->net, VDPA_TYPE_NET);
		if (ret)
			goto err_pasid;
	}
	if (fn->types & BIT(VDPA_TYPE_BLK)) {
		ret = vdpa_mgmt_register_type(fn, &fn->blk, VDPA_TYPE_BLK);
		if (ret)
			goto err_net;
	}
	return 0;

err_net:
	vdpa_mgmt_unregister_type(&fn->net);
err_pasid:
	vdpa_mgmt_debugfs_fini(fn);
	vdpa_mgmt_pasid_fini(fn);
err_aq:
	vdpa_mgmt_aq_fini(fn);
err_irq:
	free_irq(fn->irq, fn);
err_vectors:
	pci_free_irq_vectors(pdev);
	return ret;
}

static void vdpa_mgmt_remove(struct pci_dev *pdev)
{
	struct vdpa_mgmt_fn *fn = pci_get_drvdata(pdev);

	vdpa_mgmt_unregister_type(&fn->blk);
	vdpa_mgmt_unregister_type(&fn->net);
	vdpa_mgmt_debugfs_fini(fn);
	/* Every instance is destroyed: nothing DMAs with the PASID any more. */
	vdpa_mgmt_pasid_fini(fn);
	vdpa_mgmt_aq_fini(fn);
	free_irq(fn->irq, fn);
	pci_free_irq_vectors(pdev);
}

static const struct pci_device_id vdpa_mgmt_ids[] = {
	{ PCI_DEVICE(VDPA_MGMT_PCI_VENDOR_ID, VDPA_MGMT_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vdpa_mgmt_ids);

static struct pci_driver vdpa_mgmt_driver = {
	.name = VDPA_MGMT_DRV_NAME,
	.id_table = vdpa_mgmt_ids,
	.probe = vdpa_mgmt_probe,
	.remove = vdpa_mgmt_remove,
};

static int __init vdpa_mgmt_init(void)
{
	int ret;

	vdpa_mgmt_debugfs_create_root();
	ret = pci_register_driver(&vdpa_mgmt_driver);
	if (ret)
		vdpa_mgmt_debugfs_remove_root();
	return ret;
}

static void __exit vdpa_mgmt_exit(void)
{
	pci_unregister_driver(&vdpa_mgmt_driver);
	vdpa_mgmt_debugfs_remove_root();
}

module_init(vdpa_mgmt_init);
module_exit(vdpa_mgmt_exit);

MODULE_DESCRIPTION("vDPA parent driver for iolab's vdpa-mgmt function");
MODULE_LICENSE("GPL");
