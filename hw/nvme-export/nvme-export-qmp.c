/*
 * nvme-export monitor interface: query-nvme-export and 'info nvme-export'
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-nvme-export.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "nvme-export-internal.h"
#include "hw/nvme-export/core/nvmex-spec.h"

static NvmeExportNamespaceInfo *nvmex_qmp_ns_info(NvmexNs *ns)
{
    NvmeExportNamespaceInfo *i = g_new0(NvmeExportNamespaceInfo, 1);

    i->nsid = ns->nsid;
    i->drive = g_strdup(blk_name(ns->conf.blk));
    i->lba_size = ns->geo.lba_size;
    i->blocks = ns->geo.nsze;
    i->allocated_blocks = nvmex_ns_allocated_blocks(ns);
    i->reads = ns->reads;
    i->writes = ns->writes;
    i->bytes_read = ns->bytes_read;
    i->bytes_written = ns->bytes_written;
    i->deallocated_blocks = ns->deallocated;
    if (ns->storage) {
        NvmeExportStorageMigration *m = g_new0(NvmeExportStorageMigration, 1);
        IolabStorageMigInfo mi;

        iolab_storage_mig_get_info(ns->storage, &mi);
        /* The QAPI enum lists the states in IolabStorageMigState's order */
#define NVMEX_SAME_STATE(a) \
        QEMU_BUILD_BUG_ON((int)NVME_EXPORT_STORAGE_MIGRATION_STATE_##a != \
                          (int)IOLAB_STORAGE_MIG_##a)
        NVMEX_SAME_STATE(IDLE);
        NVMEX_SAME_STATE(BULK);
        NVMEX_SAME_STATE(DRAINING);
        NVMEX_SAME_STATE(COMPLETED);
        NVMEX_SAME_STATE(CANCELLED);
        NVMEX_SAME_STATE(RECEIVING);
        NVMEX_SAME_STATE(FAILED);
#undef NVMEX_SAME_STATE
        m->state = (NvmeExportStorageMigrationState)mi.state;
        m->passes = mi.passes;
        m->allocated_bytes = mi.allocated_bytes;
        m->sent_bytes = mi.sent_bytes;
        m->zero_bytes = mi.zero_bytes;
        m->changed_bytes = mi.changed_bytes;
        m->pending_bytes = mi.pending_bytes;
        m->log_overflows = mi.log_overflows;
        m->throttle_bandwidth = mi.throttle_bps;
        m->throttle_iops = mi.throttle_iops;
        m->flushes = mi.flushes;
        i->storage_migration = m;
    }
    return i;
}

static void nvmex_qmp_ctrl_info(NvmeExport *c, void *opaque)
{
    NvmeExportInfoList ***tail = opaque;
    NvmeExportInfo *i = g_new0(NvmeExportInfo, 1);
    NvmeExportNamespaceInfoList **nt = &i->namespaces;
    const NvmexRateLimit *rl = &c->st.rate_limit;
    uint64_t unit = nvmex_rl_bw_unit(rl->bwsf);

    i->id = DEVICE(c)->id ? g_strdup(DEVICE(c)->id)
                          : object_get_canonical_path(OBJECT(c));
    i->template_id = g_strdup(c->tmpl.id);
    i->serial = g_strdup(c->tmpl.sn);
    i->model = g_strdup(c->tmpl.mn);
    i->firmware = g_strdup(c->tmpl.fr);
    i->subnqn = g_strdup(c->tmpl.subnqn);
    i->enabled = !!(c->st.csts & NVMEX_CSTS_RDY);
    i->fatal = !!(c->st.csts & NVMEX_CSTS_CFS);
    for (int q = 1; q < NVMEX_NQUEUES; q++) {
        i->io_queues += c->st.sq[q].valid;
    }
    i->commands = c->commands;
    i->errors = c->errors;
    i->rate_limit = g_new0(NvmeExportRateLimit, 1);
    i->rate_limit->enabled = rl->enabled;
    i->rate_limit->iops = rl->tiops;
    i->rate_limit->write_iops = rl->wiops;
    i->rate_limit->bandwidth = rl->tbwv * unit;
    i->rate_limit->write_bandwidth = rl->wbwv * unit;
    i->rate_limit->throttled = c->throttled;
    i->rate_limit->throttled_ns = c->throttled_ns;
    for (int n = 1; n <= NVMEX_MAX_NSID; n++) {
        if (c->ns[n]) {
            QAPI_LIST_APPEND(nt, nvmex_qmp_ns_info(c->ns[n]));
        }
    }
    QAPI_LIST_APPEND(*tail, i);
}

NvmeExportInfoList *qmp_query_nvme_export(Error **errp)
{
    NvmeExportInfoList *head = NULL, **tail = &head;

    nvmex_foreach(nvmex_qmp_ctrl_info, &tail);
    return head;
}

void hmp_info_nvme_export(Monitor *mon, const QDict *qdict)
{
    g_autoptr(NvmeExportInfoList) list = qmp_query_nvme_export(NULL);

    for (NvmeExportInfoList *l = list; l; l = l->next) {
        NvmeExportInfo *i = l->value;
        NvmeExportRateLimit *rl = i->rate_limit;

        monitor_printf(mon, "%s: template %s, '%s' sn '%s' fr '%s'\n",
                       i->id, i->template_id, i->model, i->serial,
                       i->firmware);
        monitor_printf(mon, "  subnqn %s; %s%s, %u I/O queues, %" PRIu64
                       " commands, %" PRIu64 " errors\n", i->subnqn,
                       i->enabled ? "enabled" : "disabled",
                       i->fatal ? " (fatal)" : "", i->io_queues,
                       i->commands, i->errors);
        monitor_printf(mon, "  rate limit: %s, %u IOPS (%u write), %" PRIu64
                       " B/s (%" PRIu64 " write); %" PRIu64 " waits\n",
                       rl->enabled ? "on" : "off", rl->iops, rl->write_iops,
                       rl->bandwidth, rl->write_bandwidth, rl->throttled);
        for (NvmeExportNamespaceInfoList *n = i->namespaces; n; n = n->next) {
            NvmeExportNamespaceInfo *ns = n->value;

            monitor_printf(mon, "  nsid %u on %s: %" PRIu64 " x %u bytes, %"
                           PRIu64 " allocated; %" PRIu64 " reads, %" PRIu64
                           " writes\n", ns->nsid, ns->drive, ns->blocks,
                           ns->lba_size, ns->allocated_blocks, ns->reads,
                           ns->writes);
            if (ns->storage_migration) {
                NvmeExportStorageMigration *m = ns->storage_migration;

                monitor_printf(mon, "    storage migration: %s, %" PRIu64
                               " passes; %" PRIu64 " allocated, %" PRIu64
                               " sent (+%" PRIu64 " as zeros), %" PRIu64
                               " changed, %" PRIu64 " pending bytes; %"
                               PRIu64 " log overflows; write limit %" PRIu64
                               " B/s %" PRIu64 " IOPS; %" PRIu64
                               " flushes\n",
                               NvmeExportStorageMigrationState_str(m->state),
                               m->passes, m->allocated_bytes, m->sent_bytes,
                               m->zero_bytes, m->changed_bytes,
                               m->pending_bytes, m->log_overflows,
                               m->throttle_bandwidth, m->throttle_iops,
                               m->flushes);
            }
        }
    }
}
