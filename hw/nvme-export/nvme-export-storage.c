/*
 * nvme-export: storage migration (storage-migration=on)
 *
 * Each namespace registers its backing with the generic storage
 * migration of migration/storage.c (docs/storage-migration.rst), so its
 * data travels in the migration stream: allocated LBAs first, then the
 * LBAs written since.  The device's part is small: report every write,
 * write-zeroes and deallocation when it completes, and apply the write
 * limit storage migration asks for when the guest writes faster than the
 * migration sends (with auto-converge), beside the guest's own TP4176
 * limits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "nvme-export-internal.h"
#include "trace.h"

static void nvmex_storage_throttle(void *opaque, uint64_t bps, uint64_t iops)
{
    NvmexNs *ns = opaque;
    NvmeExport *c = ns->ctrl;
    NvmexRateLimit rl = {
        .enabled = bps || iops,
        .bwsf = 0,                          /* MiB/s units */
        .wbwv = DIV_ROUND_UP(bps, MiB),
        .wiops = MIN(iops, UINT32_MAX),
    };

    if (!c) {
        return;
    }
    nvmex_limiter_configure(&c->mig_limiter, &rl,
                            qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
    trace_nvmex_storage_throttle(ns->nsid, rl.wbwv * MiB, rl.wiops);
    /* Commands held back by the old limit may go now. */
    nvmex_kick(c);
}

static const IolabStorageMigOps nvmex_storage_ops = {
    .throttle = nvmex_storage_throttle,
};

void nvmex_storage_attach(NvmeExport *c, NvmexNs *ns)
{
    g_autofree char *path = NULL;
    g_autofree char *idstr = NULL;

    if (!c->storage_migration || ns->storage) {
        return;
    }
    path = qdev_get_dev_path(DEVICE(c));
    idstr = g_strdup_printf("%s/nvme-export/ns%u/storage",
                            path ? path : DEVICE(c)->id, ns->nsid);
    ns->storage = iolab_storage_mig_register(idstr, ns->conf.blk,
                                             ns->geo.lba_size, ns->geo.nsze,
                                             &nvmex_storage_ops, ns);
    if (ns->storage) {
        iolab_storage_mig_set_full_copy(ns->storage, c->storage_full_copy);
    }
}

void nvmex_storage_detach(NvmexNs *ns)
{
    iolab_storage_mig_unregister(ns->storage);
    ns->storage = NULL;
}

void nvmex_storage_mark(NvmexReq *r)
{
    IolabStorageMig *m = r->ns ? r->ns->storage : NULL;

    if (!m) {
        return;
    }
    if (r->mark_nlb) {
        iolab_storage_mig_written(m, r->mark_slba, r->mark_nlb);
    }
    /* Ranges were checked against the namespace when fetched */
    for (uint32_t i = 0; i < r->mark_nr; i++) {
        uint32_t nlb = le32_to_cpu(r->mark_ranges[i].nlb);

        if (nlb) {
            iolab_storage_mig_written(m, le64_to_cpu(r->mark_ranges[i].slba),
                                      nlb);
        }
    }
}
