/*
 * vdpa-mgmt monitor interface: query-vdpa-mgmt and 'info vdpa-mgmt'
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vdpa-mgmt.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"

static VdpaMgmtInstanceInfo *vdpa_instance_info(VdpaInst *inst)
{
    VdpaMgmtInstanceInfo *i = g_new0(VdpaMgmtInstanceInfo, 1);
    VdpaMgmtCounters *c = g_new0(VdpaMgmtCounters, 1);

    i->id = inst->id;
    i->type = inst->type == VDPA_TYPE_NET ? VDPA_MGMT_INSTANCE_TYPE_NET :
                                            VDPA_MGMT_INSTANCE_TYPE_BLK;
    i->has_pasid = inst->pasid != VDPA_NO_PASID;
    i->pasid = inst->pasid;
    i->queues = inst->nqueues;
    for (uint16_t q = 0; q < inst->nqueues; q++) {
        i->enabled_queues += inst->q[q].vq.enabled;
    }
    i->state = g_strdup(vdpa_inst_state(inst));
    i->status = inst->status;
    i->backend = inst->backend;
    c->kicks = inst->stats.kicks;
    c->requests = inst->stats.requests;
    c->bytes_read = inst->stats.bytes_read;
    c->bytes_written = inst->stats.bytes_written;
    c->interrupts = inst->stats.interrupts;
    c->suppressed = inst->stats.suppressed;
    c->errors = inst->stats.errors;
    c->dma_faults = inst->stats.dma_faults;
    i->counters = c;
    for (uint16_t q = 0; q < inst->nqueues; q++) {
        i->fault_blocked_queues +=
            inst->q[q].fault_slot != VDPA_NO_FAULT_SLOT;
        i->held_requests += vdpa_queue_held(inst, q);
    }
    return i;
}

static VdpaMgmtInfo *vdpa_mgmt_info(VdpaMgmt *s, bool brief)
{
    VdpaMgmtInfo *info = g_new0(VdpaMgmtInfo, 1);
    VdpaMgmtInstanceInfoList **tail = &info->instances;

    info->id = DEVICE(s)->id ? g_strdup(DEVICE(s)->id) :
                               object_get_canonical_path(OBJECT(s));
    info->max_instances = s->max_instances;
    info->num_instances = s->table.count;
    info->created = s->created;
    info->destroyed = s->destroyed;
    info->admin_commands = s->admin_cmds;
    info->admin_errors = s->admin_errors;
    info->bad_doorbells = s->bad_doorbells;
    info->admin_queue_ready = s->status == VDPA_STATUS_READY;
    info->rx_dropped = s->rx_dropped;
    info->rx_dropped_on_fault = s->rx_fault_dropped;
    info->iotlb_entries = vdpa_iotlb_capacity(&s->iotlb);
    info->iotlb_hits = s->iotlb.stats.hits;
    info->iotlb_misses = s->iotlb.stats.misses;
    info->iotlb_invalidations = s->iotlb.stats.invalidations;
    info->iotlb_dropped = s->iotlb.stats.dropped;
    info->pasid_translations = s->pasid_translations;
    info->blk_mapped_requests = s->blk_mapped;
    info->fault_slot_waiters = s->slot_waiters ?
                               g_queue_get_length(s->slot_waiters) : 0;
    info->migration_precopy_instances = s->mig_precopy_sent;
    info->migration_downtime_instances = s->mig_downtime_sent;
    if (brief) {
        return info;
    }
    info->has_instances = true;
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        QAPI_LIST_APPEND(tail, vdpa_instance_info(vdpa_table_get(&s->table,
                                                                 id)));
    }
    return info;
}

typedef struct VdpaQuery {
    VdpaMgmtInfoList **tail;
    bool brief;
} VdpaQuery;

static int vdpa_mgmt_collect(Object *obj, void *opaque)
{
    VdpaQuery *q = opaque;
    VdpaMgmt *s = (VdpaMgmt *)object_dynamic_cast(obj, TYPE_VDPA_MGMT);

    if (s && DEVICE(s)->realized) {
        QAPI_LIST_APPEND(q->tail, vdpa_mgmt_info(s, q->brief));
    }
    return 0;
}

VdpaMgmtInfoList *qmp_query_vdpa_mgmt(bool has_brief, bool brief,
                                      Error **errp)
{
    VdpaMgmtInfoList *list = NULL;
    VdpaQuery q = { .tail = &list, .brief = has_brief && brief };

    object_child_foreach_recursive(object_get_root(), vdpa_mgmt_collect, &q);
    return list;
}

void hmp_info_vdpa_mgmt(Monitor *mon, const QDict *qdict)
{
    bool brief = qdict_get_try_bool(qdict, "brief", false);
    g_autoptr(VdpaMgmtInfoList) list = qmp_query_vdpa_mgmt(true, brief,
                                                           NULL);

    if (!list) {
        monitor_printf(mon, "no vdpa-mgmt devices\n");
        return;
    }
    for (VdpaMgmtInfoList *l = list; l; l = l->next) {
        VdpaMgmtInfo *d = l->value;

        monitor_printf(mon, "%s: %u/%u instances, created %" PRIu64
                       " destroyed %" PRIu64 ", admin queue %s, %" PRIu64
                       " commands (%" PRIu64 " failed), %" PRIu64
                       " bad doorbells\n", d->id, d->num_instances,
                       d->max_instances, d->created, d->destroyed,
                       d->admin_queue_ready ? "ready" : "off",
                       d->admin_commands, d->admin_errors, d->bad_doorbells);
        monitor_printf(mon, "  net rx dropped %" PRIu64 " (%" PRIu64
                       " on VPRI faults), blk mapped %" PRIu64
                       ", translation cache %u entries: %" PRIu64 " hits %"
                       PRIu64 " misses %" PRIu64 " invalidations\n",
                       d->rx_dropped, d->rx_dropped_on_fault,
                       d->blk_mapped_requests, d->iotlb_entries,
                       d->iotlb_hits, d->iotlb_misses,
                       d->iotlb_invalidations);
        for (VdpaMgmtInstanceInfoList *i = d->instances; i; i = i->next) {
            VdpaMgmtInstanceInfo *n = i->value;

            monitor_printf(mon, "  %u: %s %s queues %u/%u", n->id,
                           VdpaMgmtInstanceType_str(n->type), n->state,
                           n->enabled_queues, n->queues);
            if (n->has_pasid) {
                monitor_printf(mon, " pasid %u", n->pasid);
            }
            monitor_printf(mon, " backend %u kicks %" PRIu64 " requests %"
                           PRIu64 " irqs %" PRIu64 " errors %" PRIu64 "\n",
                           n->backend, n->counters->kicks,
                           n->counters->requests, n->counters->interrupts,
                           n->counters->errors);
        }
    }
}
