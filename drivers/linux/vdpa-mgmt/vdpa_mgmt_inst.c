// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa_mgmt: instances as vDPA devices.  `vdpa dev add` (dev_add) creates
 * an instance with the admin queue's CREATE and registers a vdpa_device
 * for it; `vdpa dev del` (dev_del) unregisters it, and its release (free)
 * DESTROYs the instance.  vdpa_config_ops map onto the admin commands:
 * the ring addresses, sizes and ready flags are kept here and handed to
 * the device with QUEUE_SETUP and SET_QUEUE_MSI when the driver sets
 * DRIVER_OK (the device takes queues only between FEATURES_OK and
 * DRIVER_OK); kicks go to the shared doorbell page; the config space is
 * read once at creation (the device's is read-only apart from blk's
 * writeback, which set_config writes through).
 */
#include <linux/etherdevice.h>
#include <linux/unaligned.h>
#include <uapi/linux/vdpa.h>
#include <uapi/linux/virtio_config.h>
#include <uapi/linux/virtio_net.h>

#include "vdpa_mgmt.h"

static struct vdpa_mgmt_inst *vdpa_to_inst(struct vdpa_device *vdpa)
{
	return container_of(vdpa, struct vdpa_mgmt_inst, vdpa);
}

/* Interrupt context: the function's vector fired; see README.md. */
void vdpa_mgmt_inst_irq(struct vdpa_mgmt_fn *fn)
{
	struct vdpa_mgmt_inst *inst;
	u16 q;

	spin_lock(&fn->cb_lock);
	list_for_each_entry(inst, &fn->instances, node) {
		if (!(inst->status & VDPA_ST_DRIVER_OK))
			continue;
		for (q = 0; q < inst->nqueues; q++) {
			struct vdpa_callback *cb = &inst->vqs[q].cb;

			if (inst->vqs[q].ready && cb->callback)
				cb->callback(cb->private);
		}
	}
	spin_unlock(&fn->cb_lock);
}

static int vdpa_mgmt_set_vq_address(struct vdpa_device *vdpa, u16 idx,
				    u64 desc_area, u64 driver_area,
				    u64 device_area)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	if (idx >= inst->nqueues)
		return -EINVAL;
	inst->vqs[idx].desc = desc_area;
	inst->vqs[idx].driver = driver_area;
	inst->vqs[idx].device = device_area;
	return 0;
}

static void vdpa_mgmt_set_vq_num(struct vdpa_device *vdpa, u16 idx, u32 num)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	if (idx < inst->nqueues)
		inst->vqs[idx].num = num;
}

static void vdpa_mgmt_kick_vq(struct vdpa_device *vdpa, u16 idx)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	iowrite32(VDPA_DB_VALUE(inst->id, idx),
		  inst->fn->regs + VDPA_MGMT_DOORBELL_OFF);
}

static void vdpa_mgmt_set_vq_cb(struct vdpa_device *vdpa, u16 idx,
				struct vdpa_callback *cb)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	unsigned long flags;

	if (idx >= inst->nqueues)
		return;
	spin_lock_irqsave(&inst->fn->cb_lock, flags);
	inst->vqs[idx].cb = *cb;
	spin_unlock_irqrestore(&inst->fn->cb_lock, flags);
}

static void vdpa_mgmt_set_vq_ready(struct vdpa_device *vdpa, u16 idx,
				   bool ready)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	if (idx < inst->nqueues)
		inst->vqs[idx].ready = ready;
}

static bool vdpa_mgmt_get_vq_ready(struct vdpa_device *vdpa, u16 idx)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	return idx < inst->nqueues && inst->vqs[idx].ready;
}

static int vdpa_mgmt_set_vq_state(struct vdpa_device *vdpa, u16 idx,
				  const struct vdpa_vq_state *state)
{
	/*
	 * QUEUE_SETUP starts a queue at index 0 and has no way to start it
	 * elsewhere: a fresh queue (the virtio_vdpa case) is all we can take.
	 */
	return state->split.avail_index ? -EOPNOTSUPP : 0;
}

static int vdpa_mgmt_get_vq_state(struct vdpa_device *vdpa, u16 idx,
				  struct vdpa_vq_state *state)
{
	/* The device does not report its ring indices (no such command). */
	return -EOPNOTSUPP;
}

static u32 vdpa_mgmt_get_vq_align(struct vdpa_device *vdpa)
{
	return PAGE_SIZE;
}

static u64 vdpa_mgmt_get_device_features(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->dev_features;
}

static int vdpa_mgmt_set_driver_features(struct vdpa_device *vdpa, u64 features)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);

	if (features & ~inst->dev_features)
		return -EINVAL;
	inst->drv_features = features;
	return 0;
}

static u64 vdpa_mgmt_get_driver_features(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->drv_features;
}

static void vdpa_mgmt_set_config_cb(struct vdpa_device *vdpa,
				    struct vdpa_callback *cb)
{
	/* The device never changes its config space by itself. */
	vdpa_to_inst(vdpa)->config_cb = *cb;
}

static u16 vdpa_mgmt_get_vq_num_max(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->fn->max_qsize;
}

static u32 vdpa_mgmt_get_device_id(struct vdpa_device *vdpa)
{
	/* The instance types are virtio device ids. */
	return vdpa_to_inst(vdpa)->type;
}

static u32 vdpa_mgmt_get_vendor_id(struct vdpa_device *vdpa)
{
	return VDPA_MGMT_PCI_VENDOR_ID;
}

static u8 vdpa_mgmt_get_status(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->status;
}

static int vdpa_mgmt_send_status(struct vdpa_mgmt_inst *inst, u8 status)
{
	u8 args[VDPA_SQE_ARGS_SIZE] = { 0 };
	u16 qual = 0;
	int ret;

	args[VDPA_SS_STATUS] = status;
	put_unaligned_le64(inst->drv_features, args + VDPA_SS_FEATURES);
	ret = vdpa_mgmt_aq_cmd(inst->fn, VDPA_OP_SET_STATUS, inst->id, args,
			       NULL, NULL, 0, NULL, &qual);
	if (ret)
		dev_info(&inst->vdpa.dev, "SET_STATUS 0x%x refused: %d (qualifier 0x%x)\n",
			 status, ret, qual);
	return ret;
}

/* Hands the queues the driver made ready to the device (before DRIVER_OK). */
static int vdpa_mgmt_setup_queues(struct vdpa_mgmt_inst *inst)
{
	struct vdpa_mgmt_fn *fn = inst->fn;
	u8 args[VDPA_SQE_ARGS_SIZE];
	u64 msi_addr = ((u64)fn->msg.address_hi << 32) | fn->msg.address_lo;
	u16 q, qual = 0;
	int ret;

	for (q = 0; q < inst->nqueues; q++) {
		struct vdpa_mgmt_vq *vq = &inst->vqs[q];

		if (!vq->ready)
			continue;
		memset(args, 0, sizeof(args));
		put_unaligned_le16(q, args + VDPA_QS_INDEX);
		put_unaligned_le16(vq->num, args + VDPA_QS_SIZE);
		put_unaligned_le16(1, args + VDPA_QS_ENABLE);
		put_unaligned_le64(vq->desc, args + VDPA_QS_DESC);
		put_unaligned_le64(vq->driver, args + VDPA_QS_DRIVER);
		put_unaligned_le64(vq->device, args + VDPA_QS_DEVICE);
		ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_QUEUE_SETUP, inst->id, args,
				       NULL, NULL, 0, NULL, &qual);
		if (ret)
			goto refused;

		/* The queue's own stored message: a copy of vector 0's. */
		memset(args, 0, sizeof(args));
		put_unaligned_le16(q, args + VDPA_MSI_QUEUE);
		put_unaligned_le32(fn->msg.data, args + VDPA_MSI_DATA);
		put_unaligned_le64(msi_addr, args + VDPA_MSI_ADDR);
		ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_SET_QUEUE_MSI, inst->id, args,
				       NULL, NULL, 0, NULL, &qual);
		if (ret)
			goto refused;
	}
	return 0;

refused:
	dev_info(&inst->vdpa.dev, "queue %u setup refused: %d (qualifier 0x%x)\n",
		 q, ret, qual);
	return ret;
}

static void vdpa_mgmt_forget_queues(struct vdpa_mgmt_inst *inst)
{
	unsigned long flags;
	u16 q;

	spin_lock_irqsave(&inst->fn->cb_lock, flags);
	for (q = 0; q < inst->nqueues; q++)
		memset(&inst->vqs[q], 0, sizeof(inst->vqs[q]));
	spin_unlock_irqrestore(&inst->fn->cb_lock, flags);
}

static int vdpa_mgmt_reset(struct vdpa_device *vdpa)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	int ret;

	/* Status 0 resets the instance: queues, messages, features. */
	ret = vdpa_mgmt_send_status(inst, 0);
	inst->status = 0;
	inst->drv_features = 0;
	vdpa_mgmt_forget_queues(inst);
	return ret;
}

static void vdpa_mgmt_set_status(struct vdpa_device *vdpa, u8 status)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	u8 added = status & ~inst->status;

	if (status == 0) {
		vdpa_mgmt_reset(vdpa);
		return;
	}
	if (inst->status & ~status) {
		/* Only a reset clears bits (virtio's rule, and the device's). */
		dev_info(&vdpa->dev, "status 0x%x clears bits of 0x%x: ignored\n",
			 status, inst->status);
		return;
	}
	if (!added)
		return;
	if (added & VDPA_ST_FAILED) {
		inst->status = status;
		return;
	}
	if ((added & VDPA_ST_DRIVER_OK) && vdpa_mgmt_setup_queues(inst)) {
		inst->status |= VDPA_ST_FAILED;
		return;
	}
	if (vdpa_mgmt_send_status(inst, status)) {
		/*
		 * Refused features leave FEATURES_OK clear, which the virtio
		 * core reads back as "device refused"; anything else fails.
		 */
		if (!(added & VDPA_ST_FEATURES_OK))
			inst->status |= VDPA_ST_FAILED;
		return;
	}
	inst->status = status;
}

static size_t vdpa_mgmt_get_config_size(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->config_size;
}

static void vdpa_mgmt_get_config(struct vdpa_device *vdpa, unsigned int offset,
				 void *buf, unsigned int len)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	unsigned int have;

	/*
	 * The vdpa core reads whole structs (struct virtio_net_config is
	 * larger than the device's 12 bytes): what lies past the device's
	 * config space reads as 0.
	 */
	memset(buf, 0, len);
	if (offset >= inst->config_size)
		return;
	have = min(len, inst->config_size - offset);
	memcpy(buf, inst->config + offset, have);
}

static void vdpa_mgmt_set_config(struct vdpa_device *vdpa, unsigned int offset,
				 const void *buf, unsigned int len)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	u8 args[VDPA_SQE_ARGS_SIZE] = { 0 };
	int ret;

	if (offset > inst->config_size || len > inst->config_size - offset)
		return;
	put_unaligned_le32(offset, args + VDPA_CFG_OFFSET);
	put_unaligned_le32(len, args + VDPA_CFG_LENGTH);
	ret = vdpa_mgmt_aq_cmd(inst->fn, VDPA_OP_CONFIG_WRITE, inst->id, args,
			       buf, NULL, len, NULL, NULL);
	if (ret) {
		dev_info(&vdpa->dev, "config write at %u refused: %d\n", offset, ret);
		return;
	}
	/* Read back what the device kept (it ignores read-only fields). */
	vdpa_mgmt_aq_cmd(inst->fn, VDPA_OP_CONFIG_READ, inst->id, args, NULL,
			 inst->config + offset, len, NULL, NULL);
	inst->generation++;
}

static u32 vdpa_mgmt_get_generation(struct vdpa_device *vdpa)
{
	return vdpa_to_inst(vdpa)->generation;
}

static struct vdpa_iova_range vdpa_mgmt_get_iova_range(struct vdpa_device *vdpa)
{
	return (struct vdpa_iova_range) {
		.first = 0,
		.last = DMA_BIT_MASK(48),
	};
}

static void vdpa_mgmt_free(struct vdpa_device *vdpa)
{
	struct vdpa_mgmt_inst *inst = vdpa_to_inst(vdpa);
	struct vdpa_mgmt_fn *fn = inst->fn;
	unsigned long flags;
	int ret;

	spin_lock_irqsave(&fn->cb_lock, flags);
	if (!list_empty(&inst->node))
		list_del_init(&inst->node);
	spin_unlock_irqrestore(&fn->cb_lock, flags);
	if (inst->id) {
		ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_DESTROY, inst->id, NULL, NULL,
				       NULL, 0, NULL, NULL);
		if (ret)
			dev_info(&fn->pdev->dev, "DESTROY of instance %u failed: %d\n",
				 inst->id, ret);
	}
	kfree(inst->vqs);
}

static const struct vdpa_config_ops vdpa_mgmt_config_ops = {
	.set_vq_address = vdpa_mgmt_set_vq_address,
	.set_vq_num = vdpa_mgmt_set_vq_num,
	.kick_vq = vdpa_mgmt_kick_vq,
	.set_vq_cb = vdpa_mgmt_set_vq_cb,
	.set_vq_ready = vdpa_mgmt_set_vq_ready,
	.get_vq_ready = vdpa_mgmt_get_vq_ready,
	.set_vq_state = vdpa_mgmt_set_vq_state,
	.get_vq_state = vdpa_mgmt_get_vq_state,
	.get_vq_align = vdpa_mgmt_get_vq_align,
	.get_device_features = vdpa_mgmt_get_device_features,
	.set_driver_features = vdpa_mgmt_set_driver_features,
	.get_driver_features = vdpa_mgmt_get_driver_features,
	.set_config_cb = vdpa_mgmt_set_config_cb,
	.get_vq_num_max = vdpa_mgmt_get_vq_num_max,
	.get_device_id = vdpa_mgmt_get_device_id,
	.get_vendor_id = vdpa_mgmt_get_vendor_id,
	.get_status = vdpa_mgmt_get_status,
	.set_status = vdpa_mgmt_set_status,
	.reset = vdpa_mgmt_reset,
	.get_config_size = vdpa_mgmt_get_config_size,
	.get_config = vdpa_mgmt_get_config,
	.set_config = vdpa_mgmt_set_config,
	.get_generation = vdpa_mgmt_get_generation,
	.get_iova_range = vdpa_mgmt_get_iova_range,
	.free = vdpa_mgmt_free,
};

/* Our own instances only: the vdpa core catches names of other parents. */
static bool vdpa_mgmt_name_taken(struct vdpa_mgmt_fn *fn, const char *name)
{
	struct vdpa_mgmt_inst *inst;
	unsigned long flags;
	bool taken = false;

	spin_lock_irqsave(&fn->cb_lock, flags);
	list_for_each_entry(inst, &fn->instances, node) {
		if (!strcmp(dev_name(&inst->vdpa.dev), name)) {
			taken = true;
			break;
		}
	}
	spin_unlock_irqrestore(&fn->cb_lock, flags);
	return taken;
}

/*
 * Checks the `vdpa dev add` attributes against what the function can do
 * and fills in the CREATE arguments.  The reasons go to the kernel log:
 * 6.12's dev_add has no extack, so the tool prints only the errno.
 */
static int vdpa_mgmt_create_args(struct vdpa_mgmt_mdev *mm, const char *name,
				 const struct vdpa_dev_set_config *config,
				 u8 *args, u16 *nqueues)
{
	struct vdpa_mgmt_fn *fn = mm->fn;
	struct device *dev = &fn->pdev->dev;
	/* DISCOVER's features, without what the driver cannot use. */
	u64 offered = mm->mdev.supported_features;
	u64 features = offered;
	u8 mac[ETH_ALEN];

	/* (The device narrows blk's to what the backend and queues allow.) */
	if (config->mask & BIT_ULL(VDPA_ATTR_DEV_FEATURES)) {
		if (config->device_features & ~offered) {
			dev_info(dev, "%s: device_features 0x%llx not offered (0x%llx)\n",
				 name, config->device_features, offered);
			return -EINVAL;
		}
		features = config->device_features;
	}

	memset(args, 0, VDPA_SQE_ARGS_SIZE);
	args[VDPA_CREATE_TYPE] = mm->type;
	put_unaligned_le64(features, args + VDPA_CREATE_FEATURES);
	if (mm->type == VDPA_TYPE_BLK) {
		*nqueues = 1;
		put_unaligned_le16(*nqueues, args + VDPA_CREATE_NQUEUES);
		return 0;
	}

	if (config->mask & BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MAX_VQP) &&
	    config->net.max_vq_pairs != 1) {
		dev_info(dev, "%s: max_vqp %u: this function receives on one queue pair only\n",
			 name, config->net.max_vq_pairs);
		return -EINVAL;
	}
	if (config->mask & BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MTU) &&
	    config->net.mtu != VDPA_MGMT_NET_MTU) {
		dev_info(dev, "%s: mtu %u: the function's MTU is fixed at %u\n",
			 name, config->net.mtu, VDPA_MGMT_NET_MTU);
		return -EINVAL;
	}
	if (config->mask & BIT_ULL(VDPA_ATTR_DEV_NET_CFG_MACADDR)) {
		if (!is_valid_ether_addr(config->net.mac)) {
			dev_info(dev, "%s: mac %pM is not a unicast, non-zero address\n",
				 name, config->net.mac);
			return -EINVAL;
		}
		ether_addr_copy(mac, config->net.mac);
	} else {
		eth_random_addr(mac);
	}
	*nqueues = 2;
	put_unaligned_le16(*nqueues, args + VDPA_CREATE_NQUEUES);
	memcpy(args + VDPA_CREATE_MAC, mac, ETH_ALEN);
	return 0;
}

static int vdpa_mgmt_dev_add(struct vdpa_mgmt_dev *mdev, const char *name,
			     const struct vdpa_dev_set_config *config)
{
	struct vdpa_mgmt_mdev *mm = container_of(mdev, struct vdpa_mgmt_mdev, mdev);
	struct vdpa_mgmt_fn *fn = mm->fn;
	struct device *dev = &fn->pdev->dev;
	struct vdpa_mgmt_inst *inst;
	u8 args[VDPA_SQE_ARGS_SIZE];
	u8 query[VDPA_QUERY_SIZE];
	unsigned long flags;
	u16 nqueues, qual = 0;
	u64 id, start = ktime_get_ns();
	int ret;

	if (vdpa_mgmt_name_taken(fn, name)) {
		dev_info(dev, "%s: a vdpa device of that name exists\n", name);
		return -EEXIST;
	}
	ret = vdpa_mgmt_create_args(mm, name, config, args, &nqueues);
	if (ret)
		return ret;

	inst = vdpa_alloc_device(struct vdpa_mgmt_inst, vdpa, &fn->pdev->dev,
				 &vdpa_mgmt_config_ops, 1, 1, name, false);
	if (IS_ERR(inst))
		return PTR_ERR(inst);
	/* From here on put_device() frees, through vdpa_mgmt_free(). */
	inst->fn = fn;
	inst->mm = mm;
	inst->type = mm->type;
	inst->nqueues = nqueues;
	INIT_LIST_HEAD(&inst->node);
	inst->vdpa.dma_dev = &fn->pdev->dev;
	inst->vdpa.mdev = mdev;
	inst->vqs = kcalloc(nqueues, sizeof(*inst->vqs), GFP_KERNEL);
	if (!inst->vqs) {
		ret = -ENOMEM;
		goto err;
	}

	ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_CREATE, 0, args, NULL, NULL, 0, &id, &qual);
	if (ret) {
		if (ret == -ENOSPC)
			dev_info(dev, "%s: all %u instances of the function are in use\n",
				 name, fn->max_inst);
		else
			dev_info(dev, "%s: CREATE refused: %d (qualifier 0x%x%s)\n",
				 name, ret, qual,
				 qual == VDPA_Q_INVALID_FIELD && mm->type == VDPA_TYPE_NET ?
				 ", e.g. the MAC belongs to another instance" : "");
		goto err;
	}
	inst->id = id;

	if (fn->pasid != IOMMU_PASID_INVALID) {
		memset(args, 0, sizeof(args));
		put_unaligned_le32(fn->pasid, args + VDPA_BP_PASID);
		ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_BIND_PASID, inst->id, args,
				       NULL, NULL, 0, NULL, &qual);
		if (ret) {
			dev_info(dev, "%s: BIND_PASID %u refused: %d (qualifier 0x%x)\n",
				 name, fn->pasid, ret, qual);
			goto err;
		}
	}

	ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_QUERY, inst->id, NULL, NULL, query,
			       sizeof(query), NULL, NULL);
	if (ret)
		goto err;
	inst->dev_features = get_unaligned_le64(query + VDPA_QR_DEV_FEAT);

	inst->config_size = mm->type == VDPA_TYPE_NET ?
			    VDPA_MGMT_NET_CONFIG_SIZE :
			    min_t(u32, VDPA_MGMT_BLK_CONFIG_SIZE,
				  sizeof(struct virtio_blk_config));
	memset(args, 0, sizeof(args));
	put_unaligned_le32(0, args + VDPA_CFG_OFFSET);
	put_unaligned_le32(inst->config_size, args + VDPA_CFG_LENGTH);
	ret = vdpa_mgmt_aq_cmd(fn, VDPA_OP_CONFIG_READ, inst->id, args, NULL,
			       inst->config, inst->config_size, NULL, NULL);
	if (ret)
		goto err;

	spin_lock_irqsave(&fn->cb_lock, flags);
	list_add_tail(&inst->node, &fn->instances);
	spin_unlock_irqrestore(&fn->cb_lock, flags);

	ret = _vdpa_register_device(&inst->vdpa, nqueues);
	if (ret)
		goto err;
	atomic64_add(ktime_get_ns() - start, &fn->add_ns);
	atomic64_inc(&fn->add_count);
	return 0;

err:
	put_device(&inst->vdpa.dev);
	return ret;
}

static void vdpa_mgmt_dev_del(struct vdpa_mgmt_dev *mdev, struct vdpa_device *dev)
{
	struct vdpa_mgmt_fn *fn = vdpa_to_inst(dev)->fn;
	u64 start = ktime_get_ns();

	/* The last reference's release DESTROYs (vdpa_mgmt_free). */
	_vdpa_unregister_device(dev);
	atomic64_add(ktime_get_ns() - start, &fn->del_ns);
	atomic64_inc(&fn->del_count);
}

const struct vdpa_mgmtdev_ops vdpa_mgmt_mdev_ops = {
	.dev_add = vdpa_mgmt_dev_add,
	.dev_del = vdpa_mgmt_dev_del,
};
