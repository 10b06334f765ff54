// SPDX-License-Identifier: GPL-2.0-only
/*
 * vdpa_mgmt: debugfs vdpa_mgmt/<bdf>/timing, the time the kernel spent
 * creating and deleting instances (dev_add and dev_del, each including
 * its admin commands and the virtio driver's probe or remove):
 *
 *   dev_add count N total_ns T per_instance_ns T/N
 *   dev_del count N total_ns T per_instance_ns T/N
 *
 * tests/guest/workloads/vdpa-scale.sh reads it to tell the kernel's share
 * from the time of the vdpa tool's process.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "vdpa_mgmt.h"

static struct dentry *vdpa_mgmt_debugfs_root;

static void vdpa_mgmt_timing_line(struct seq_file *m, const char *what,
				  atomic64_t *ns, atomic64_t *count)
{
	u64 t = atomic64_read(ns), n = atomic64_read(count);

	seq_printf(m, "%s count %llu total_ns %llu per_instance_ns %llu\n",
		   what, n, t, n ? div64_u64(t, n) : 0);
}

static int vdpa_mgmt_timing_show(struct seq_file *m, void *unused)
{
	struct vdpa_mgmt_fn *fn = m->private;

	vdpa_mgmt_timing_line(m, "dev_add", &fn->add_ns, &fn->add_count);
	vdpa_mgmt_timing_line(m, "dev_del", &fn->del_ns, &fn->del_count);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vdpa_mgmt_timing);

void vdpa_mgmt_debugfs_create_root(void)
{
	vdpa_mgmt_debugfs_root = debugfs_create_dir(VDPA_MGMT_DRV_NAME, NULL);
}

void vdpa_mgmt_debugfs_remove_root(void)
{
	debugfs_remove_recursive(vdpa_mgmt_debugfs_root);
	vdpa_mgmt_debugfs_root = NULL;
}

/* debugfs is best effort: its failures are not the driver's. */
void vdpa_mgmt_debugfs_init(struct vdpa_mgmt_fn *fn)
{
	fn->debugfs = debugfs_create_dir(pci_name(fn->pdev), vdpa_mgmt_debugfs_root);
	debugfs_create_file("timing", 0444, fn->debugfs, fn, &vdpa_mgmt_timing_fops);
}

void vdpa_mgmt_debugfs_fini(struct vdpa_mgmt_fn *fn)
{
	debugfs_remove_recursive(fn->debugfs);
	fn->debugfs = NULL;
}
