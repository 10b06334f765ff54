// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa_mgmt: the admin queue (docs/vdpa-mgmt.rst, "Admin queue").
 *
 * Commands run one at a time under aq_lock: every caller (vdpa dev add,
 * a virtio driver's status change) sleeps until its completion anyway,
 * and a single command in flight keeps the DMA buffer and the completion
 * bookkeeping trivial.  A command that does not complete within
 * VDPA_MGMT_AQ_TIMEOUT_MS, or a function that reports FATAL or reads as
 * all-ones (surprise removal), marks the function dead: that command and
 * every later one fail with an errno, nothing waits forever.
 */
#include <linux/io.h>
#include <linux/dma-mapping.h>
#include <linux/delay.h>
#include <linux/unaligned.h>

#include "vdpa_mgmt.h"

static u32 vdpa_mgmt_rd(struct vdpa_mgmt_fn *fn, u32 off)
{
	return ioread32(fn->regs + off);
}

static void vdpa_mgmt_wr(struct vdpa_mgmt_fn *fn, u32 off, u32 val)
{
	iowrite32(val, fn->regs + off);
}

int vdpa_mgmt_aq_init(struct vdpa_mgmt_fn *fn)
{
	struct device *dev = &fn->pdev->dev;
	u32 status;
	int i;

	fn->sq = dmam_alloc_coherent(dev, VDPA_MGMT_AQ_ENTRIES * VDPA_SQE_SIZE,
				     &fn->sq_dma, GFP_KERNEL);
	fn->cq = dmam_alloc_coherent(dev, VDPA_MGMT_AQ_ENTRIES * VDPA_CQE_SIZE,
				     &fn->cq_dma, GFP_KERNEL);
	fn->buf = dmam_alloc_coherent(dev, VDPA_MGMT_AQ_BUF_SIZE, &fn->buf_dma,
				      GFP_KERNEL);
	if (!fn->sq || !fn->cq || !fn->buf)
		return -ENOMEM;
	memset(fn->cq, 0, VDPA_MGMT_AQ_ENTRIES * VDPA_CQE_SIZE);

	/* A previous driver may have left the queue enabled. */
	vdpa_mgmt_wr(fn, VDPA_REG_CTRL, 0);
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_SIZE, VDPA_MGMT_AQ_ENTRIES);
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_VECTOR, 0);
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_SQ_LO, lower_32_bits(fn->sq_dma));
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_SQ_HI, upper_32_bits(fn->sq_dma));
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_CQ_LO, lower_32_bits(fn->cq_dma));
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_CQ_HI, upper_32_bits(fn->cq_dma));
	fn->sq_tail = 0;
	fn->cq_head = 0;
	fn->phase = VDPA_CQE_PHASE;
	vdpa_mgmt_wr(fn, VDPA_REG_CTRL, VDPA_CTRL_ENABLE);

	/* The device checks the geometry when ENABLE is set. */
	for (i = 0; i < 100; i++) {
		status = vdpa_mgmt_rd(fn, VDPA_REG_STATUS);
		if (status == ~0u) {
			dev_err(dev, "function does not answer (status reads all-ones)\n");
			return -ENODEV;
		}
		if (status & VDPA_STATUS_FATAL) {
			dev_err(dev, "admin queue refused: fatal code %u\n",
				vdpa_mgmt_rd(fn, VDPA_REG_FATAL_CODE));
			return -EIO;
		}
		if (status & VDPA_STATUS_READY)
			return 0;
		msleep(1);
	}
	dev_err(dev, "admin queue did not become ready\n");
	return -ETIMEDOUT;
}

void vdpa_mgmt_aq_fini(struct vdpa_mgmt_fn *fn)
{
	if (fn->regs)
		vdpa_mgmt_wr(fn, VDPA_REG_CTRL, 0);
}

/* Interrupt context: a completion may have arrived. */
void vdpa_mgmt_aq_irq(struct vdpa_mgmt_fn *fn)
{
	const u8 *cqe = fn->cq + fn->cq_head * VDPA_CQE_SIZE;

	if ((READ_ONCE(cqe[VDPA_CQE_FLAGS]) & VDPA_CQE_PHASE) == fn->phase)
		complete(&fn->aq_done);
}

/* The completion at cq_head if the device has written it, else NULL. */
static const u8 *vdpa_mgmt_aq_peek(struct vdpa_mgmt_fn *fn)
{
	const u8 *cqe = fn->cq + fn->cq_head * VDPA_CQE_SIZE;

	if ((READ_ONCE(cqe[VDPA_CQE_FLAGS]) & VDPA_CQE_PHASE) != fn->phase)
		return NULL;
	dma_rmb();
	return cqe;
}

static int vdpa_mgmt_aq_wait(struct vdpa_mgmt_fn *fn, const u8 **cqe)
{
	unsigned long deadline = jiffies +
				 msecs_to_jiffies(VDPA_MGMT_AQ_TIMEOUT_MS);
	u32 status;

	for (;;) {
		*cqe = vdpa_mgmt_aq_peek(fn);
		if (*cqe)
			return 0;
		status = vdpa_mgmt_rd(fn, VDPA_REG_STATUS);
		if (status == ~0u) {
			dev_err(&fn->pdev->dev, "function gone (reads all-ones)\n");
			return -ENODEV;
		}
		if (status & VDPA_STATUS_FATAL) {
			dev_err(&fn->pdev->dev, "admin queue fatal, code %u\n",
				vdpa_mgmt_rd(fn, VDPA_REG_FATAL_CODE));
			return -EIO;
		}
		if (!(status & VDPA_STATUS_READY)) {
			/* ENABLE was cleared behind the driver's back (or a reset). */
			dev_err(&fn->pdev->dev, "admin queue no longer ready\n");
			return -EIO;
		}
		if (time_after(jiffies, deadline)) {
			dev_err(&fn->pdev->dev, "admin command timed out after %u ms\n",
				VDPA_MGMT_AQ_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		/*
		 * The interrupt wakes us; the short timeout also covers an
		 * interrupt lost or never configured.
		 */
		wait_for_completion_timeout(&fn->aq_done, msecs_to_jiffies(20));
	}
}

/*
 * The admin queue failed: no instance can be reset or destroyed any more,
 * yet the device may still run their queues on rings the virtio drivers
 * are about to free.  Clearing Bus Master Enable stops every DMA and MSI
 * write of the function (and its instances), in any context; a function
 * reset would need the device lock, which probe and remove hold.
 */
static void vdpa_mgmt_aq_dead(struct vdpa_mgmt_fn *fn)
{
	if (fn->dead)
		return;
	fn->dead = true;
	pci_clear_master(fn->pdev);
	dev_err(&fn->pdev->dev, "admin queue failed: function's DMA stopped, every later command fails with ENODEV\n");
}

int vdpa_mgmt_aq_cmd(struct vdpa_mgmt_fn *fn, u16 opcode, u32 member,
		     const void *args, const void *in, void *out, u32 len,
		     u64 *result, u16 *qual)
{
	u8 *sqe;
	const u8 *cqe;
	u16 cid, status, qualifier;
	int ret;

	if (len > VDPA_MGMT_AQ_BUF_SIZE)
		return -EINVAL;

	mutex_lock(&fn->aq_lock);
	if (fn->dead) {
		ret = -ENODEV;
		goto out;
	}
	cid = ++fn->cid;
	sqe = fn->sq + fn->sq_tail * VDPA_SQE_SIZE;
	memset(sqe, 0, VDPA_SQE_SIZE);
	put_unaligned_le16(opcode, sqe + VDPA_SQE_OPCODE);
	put_unaligned_le16(VDPA_GROUP_TYPE_MANAGED, sqe + VDPA_SQE_GROUP_TYPE);
	put_unaligned_le16(cid, sqe + VDPA_SQE_CID);
	put_unaligned_le64(member, sqe + VDPA_SQE_MEMBER);
	if (len) {
		put_unaligned_le64(fn->buf_dma, sqe + VDPA_SQE_BUF_ADDR);
		put_unaligned_le32(len, sqe + VDPA_SQE_BUF_LEN);
		if (in)
			memcpy(fn->buf, in, len);
		else
			memset(fn->buf, 0, len);
	}
	if (args)
		memcpy(sqe + VDPA_SQE_ARGS, args, VDPA_SQE_ARGS_SIZE);

	reinit_completion(&fn->aq_done);
	fn->sq_tail = (fn->sq_tail + 1) % VDPA_MGMT_AQ_ENTRIES;
	/* iowrite32 orders the entry's stores before the doorbell. */
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_SQ_TAIL, fn->sq_tail);

	ret = vdpa_mgmt_aq_wait(fn, &cqe);
	if (ret) {
		vdpa_mgmt_aq_dead(fn);
		goto out;
	}
	status = get_unaligned_le16(cqe + VDPA_CQE_STATUS);
	qualifier = get_unaligned_le16(cqe + VDPA_CQE_QUALIFIER);
	if (get_unaligned_le16(cqe + VDPA_CQE_CID) != cid) {
		dev_err(&fn->pdev->dev, "completion for cid %u, expected %u\n",
			get_unaligned_le16(cqe + VDPA_CQE_CID), cid);
		vdpa_mgmt_aq_dead(fn);
		ret = -EIO;
		goto out;
	}
	if (result)
		*result = get_unaligned_le64(cqe + VDPA_CQE_RESULT);
	if (qual)
		*qual = qualifier;
	fn->cq_head = (fn->cq_head + 1) % VDPA_MGMT_AQ_ENTRIES;
	if (fn->cq_head == 0)
		fn->phase ^= VDPA_CQE_PHASE;
	vdpa_mgmt_wr(fn, VDPA_REG_AQ_CQ_HEAD, fn->cq_head);

	if (status) {
		/* The device's status values are errno numbers. */
		ret = status < MAX_ERRNO ? -(int)status : -EIO;
		dev_dbg(&fn->pdev->dev, "opcode 0x%x member %u: status %u qualifier 0x%x\n",
			opcode, member, status, qualifier);
	} else if (out && len) {
		memcpy(out, fn->buf, len);
	}
out:
	mutex_unlock(&fn->aq_lock);
	return ret;
}
