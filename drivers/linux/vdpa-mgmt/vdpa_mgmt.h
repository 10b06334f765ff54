/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vdpa_mgmt: Linux vDPA parent driver for iolab's vdpa-mgmt PCI function
 * (docs/vdpa-mgmt.rst).  What the three files of the driver share:
 * vdpa_mgmt_main.c (PCI function, interrupt, management devices),
 * vdpa_mgmt_aq.c (admin queue), vdpa_mgmt_inst.c (instances as vDPA
 * devices).
 */
#ifndef VDPA_MGMT_DRV_H
#define VDPA_MGMT_DRV_H

#include <linux/pci.h>
#include <linux/vdpa.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/completion.h>
#include <linux/msi.h>
#include <linux/iommu.h>

#include "vdpa-proto.h"

#define VDPA_MGMT_DRV_NAME "vdpa_mgmt"

/* Admin queue geometry: commands are issued one at a time (see aq.c). */
#define VDPA_MGMT_AQ_ENTRIES   16
#define VDPA_MGMT_AQ_BUF_SIZE  PAGE_SIZE
/* How long a command may take before the function is declared dead. */
#define VDPA_MGMT_AQ_TIMEOUT_MS 10000

/* Config space sizes the device defines per type (docs/vdpa-mgmt.rst). */
#define VDPA_MGMT_NET_CONFIG_SIZE 12
#define VDPA_MGMT_BLK_CONFIG_SIZE 96
#define VDPA_MGMT_CONFIG_MAX      256
/* The net config's MTU field: the device always reports this. */
#define VDPA_MGMT_NET_MTU         1500

struct vdpa_mgmt_fn;

/* One management device per instance type (vdpa dev add has no "type"). */
struct vdpa_mgmt_mdev {
	struct vdpa_mgmt_dev mdev;
	struct virtio_device_id id_table[2];
	struct vdpa_mgmt_fn *fn;
	u8 type;                     /* VDPA_TYPE_NET or VDPA_TYPE_BLK */
	bool registered;
	/*
	 * blk only: a child device of the function, so that the two
	 * management devices have different names (net is the function).
	 */
	struct device *child;
};

struct vdpa_mgmt_vq {
	u64 desc, driver, device;
	u32 num;
	bool ready;
	struct vdpa_callback cb;     /* under fn->cb_lock */
};

struct vdpa_mgmt_inst {
	struct vdpa_device vdpa;
	struct vdpa_mgmt_fn *fn;
	struct vdpa_mgmt_mdev *mm;
	u32 id;                      /* device instance id, 0 = not created */
	u8 type;
	u16 nqueues;
	u64 dev_features;
	u64 drv_features;
	u8 status;                   /* what the device accepted */
	u32 generation;
	u32 config_size;
	u8 config[VDPA_MGMT_CONFIG_MAX];
	struct vdpa_mgmt_vq *vqs;
	struct vdpa_callback config_cb;
	struct list_head node;       /* fn->instances, under fn->cb_lock */
};

struct vdpa_mgmt_fn {
	struct pci_dev *pdev;
	void __iomem *regs;
	int irq;
	struct msi_msg msg;          /* vector 0's message, copied to queues */

	/* admin queue: one command at a time, under aq_lock */
	struct mutex aq_lock;
	void *sq, *cq, *buf;
	dma_addr_t sq_dma, cq_dma, buf_dma;
	u16 sq_tail, cq_head;
	u16 cid;
	u8 phase;                    /* the phase bit a new completion carries */
	struct completion aq_done;
	bool dead;                   /* a timeout or FATAL: every command fails */

	/* DISCOVER */
	u32 max_inst;
	u16 max_queues, max_qsize;
	u32 types;
	u64 net_features, blk_features;
	u32 num_blk, num_net;
	u8 pasid_bits;

	/*
	 * The PASID every instance is bound to, with the function's DMA
	 * domain attached to it (vdpa_mgmt_pasid.c); IOMMU_PASID_INVALID
	 * when the platform has none to give.
	 */
	u32 pasid;
	struct iommu_domain *pasid_domain;

	/* instances whose queue callbacks the interrupt calls */
	spinlock_t cb_lock;
	struct list_head instances;

	struct vdpa_mgmt_mdev net, blk;

	/*
	 * Time spent in dev_add / dev_del (successful ones), as the kernel
	 * saw it: debugfs vdpa_mgmt/<bdf>/timing (vdpa_mgmt_debugfs.c).
	 */
	atomic64_t add_ns, add_count, del_ns, del_count;
	struct dentry *debugfs;
};

/* vdpa_mgmt_aq.c */
int vdpa_mgmt_aq_init(struct vdpa_mgmt_fn *fn);
void vdpa_mgmt_aq_fini(struct vdpa_mgmt_fn *fn);
void vdpa_mgmt_aq_irq(struct vdpa_mgmt_fn *fn);
/*
 * Runs one admin command and waits for it.  @args (32 bytes or NULL),
 * @in copied to the buffer before, @out from it after (lengths up to
 * VDPA_MGMT_AQ_BUF_SIZE).  Returns 0 or a negative errno: the device's
 * status (its values are errno numbers), -ETIMEDOUT or -ENODEV.
 * @result gets the completion's result, @qual its qualifier.
 */
int vdpa_mgmt_aq_cmd(struct vdpa_mgmt_fn *fn, u16 opcode, u32 member,
		     const void *args, const void *in, void *out, u32 len,
		     u64 *result, u16 *qual);

/* vdpa_mgmt_pasid.c */
void vdpa_mgmt_pasid_init(struct vdpa_mgmt_fn *fn);
void vdpa_mgmt_pasid_fini(struct vdpa_mgmt_fn *fn);

/* vdpa_mgmt_debugfs.c */
void vdpa_mgmt_debugfs_create_root(void);
void vdpa_mgmt_debugfs_remove_root(void);
void vdpa_mgmt_debugfs_init(struct vdpa_mgmt_fn *fn);
void vdpa_mgmt_debugfs_fini(struct vdpa_mgmt_fn *fn);

/* vdpa_mgmt_inst.c */
extern const struct vdpa_mgmtdev_ops vdpa_mgmt_mdev_ops;
void vdpa_mgmt_inst_irq(struct vdpa_mgmt_fn *fn);

#endif
