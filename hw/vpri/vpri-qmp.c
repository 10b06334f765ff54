/*
 * VPRI monitor interface: query-vpri, vpri-reclaim and 'info vpri'
 *
 * Top layer, beside vpri-host.c: it reads the host's devices and asks the
 * layers below for their figures.  A device adds its own members to its
 * entry through the vpri-host-client interface, not by name.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vpri.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/qdev-core.h"
#include "vpri-host-internal.h"
#include "trace.h"

static VpriLatency *vpri_latency(const LatencyHistogram *hist)
{
    VpriLatency *l = g_new0(VpriLatency, 1);
    LatencySummary s;

    vpri_latency_histogram_summary(hist, &s);
    l->p50 = s.p50;
    l->p99 = s.p99;
    l->p999 = s.p999;
    l->max = s.max;
    return l;
}

static VpriDeviceInfo *vpri_device_info(VpriHost *h, VpriHostDevice *d)
{
    VpriDeviceInfo *info = g_new0(VpriDeviceInfo, 1);
    VpriHostClientClass *client;
    uint64_t entries[PAB_NR_STATES];
    FaultRingStats fs;

    info->id = d->dev->id ? g_strdup(d->dev->id) :
                            object_get_canonical_path(OBJECT(d->dev));
    info->type = g_strdup(object_get_typename(OBJECT(d->dev)));
    info->host = g_strdup(object_get_canonical_path_component(OBJECT(h)));

    vpri_pab_count_entries(d->pab, entries);
    info->pae = g_new0(VpriPaeCounts, 1);
    info->pae->not_present = entries[PAB_NOT_PRESENT];
    info->pae->read_only = entries[PAB_READ_ONLY];
    info->pae->read_write = entries[PAB_READ_WRITE];
    info->pae->reserved = entries[PAB_RESERVED];

    vpri_fault_ring_get_stats(d->ring, &fs);
    info->faults = g_new0(VpriFaultCounts, 1);
    info->faults->raised = fs.raised;
    info->faults->coalesced = fs.coalesced;
    info->faults->resolved = fs.resolved;
    info->faults->failed = fs.failed;
    info->faults->pending = fs.pending;
    info->faults->ring_full_stalls = fs.full_stalls;
    info->fault_latency_ns = vpri_latency(vpri_fault_ring_latency(d->ring));
    info->stall_ns = qatomic_read(&d->stall_ns);
    if (d->xlat) {
        info->iova = g_new0(VpriIovaInfo, 1);
        vpri_xlat_stats(d->xlat, &info->iova->translations,
                        &info->iova->unmapped, &info->iova->refused);
    }
    info->pins = vpri_pin_query_device(d->pin);
    client = (VpriHostClientClass *)
        object_class_dynamic_cast(object_get_class(OBJECT(d->dev)),
                                  TYPE_VPRI_HOST_CLIENT);
    if (client && client->query_stats) {
        client->query_stats(d->dev, info);
    }
    return info;
}

static VpriPostcopyInfo *vpri_postcopy_info(VpriHost *h)
{
    VpriPostcopyInfo *pi;
    const LatencyHistogram *lat;
    uint64_t received;
    const char *state;
    PcpStats st;

    if (!vpri_postcopy_stats(h->postcopy, &st, &received, &state, &lat)) {
        return NULL;
    }
    pi = g_new0(VpriPostcopyInfo, 1);
    pi->state = g_strdup(state);
    pi->device_requests = st.requested + st.rerequested;
    pi->device_faults = st.device_faults;
    pi->prefetched = st.prefetched;
    pi->prefetch_hits = st.prefetch_hits;
    pi->prefetch_late = st.prefetch_late;
    pi->received = received;
    pi->waiting = st.waiting;
    pi->failed = st.failed;
    pi->fault_latency_ns = vpri_latency(lat);
    return pi;
}

typedef struct VpriQueryState {
    VpriHostInfoList **hosts;
    VpriDeviceInfoList **devices;
} VpriQueryState;

static int vpri_query_one(Object *obj, void *opaque)
{
    VpriQueryState *qs = opaque;
    VpriHost *h;
    VpriHostInfo *hi;

    if (!object_dynamic_cast(obj, TYPE_VPRI_HOST)) {
        return 0;
    }
    h = VPRI_HOST(obj);
    hi = g_new0(VpriHostInfo, 1);
    hi->id = g_strdup(object_get_canonical_path_component(obj));
    if (vpri_residency_ready(h->res)) {
        VpriResidencyStats st;

        vpri_residency_get_stats(h->res, &st);
        hi->guest_pages = st.guest_pages;
        hi->evicted_pages = st.evicted_pages;
        hi->resident_pages = st.guest_pages - st.evicted_pages;
        hi->pinned_pages = st.pinned_pages;
        hi->dma_holds = st.holds;
        hi->cpu_faults = st.cpu_faults;
        hi->migration_supplied_pages = st.migration_supplied;
        hi->cpu_fault_latency_ns =
            vpri_latency(vpri_residency_cpu_fault_latency(h->res));
    } else {
        hi->cpu_fault_latency_ns = g_new0(VpriLatency, 1);
    }
    hi->device_faults = qatomic_read(&h->device_faults);
    hi->pinning = vpri_pin_query(h->pin);
    hi->postcopy = vpri_postcopy_info(h);
    QAPI_LIST_APPEND(qs->hosts, hi);

    /* Devices come and go under the BQL, which QMP holds. */
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (h->devs[id].dev) {
            QAPI_LIST_APPEND(qs->devices, vpri_device_info(h, &h->devs[id]));
        }
    }
    return 0;
}

VpriInfo *qmp_query_vpri(Error **errp)
{
    VpriInfo *info = g_new0(VpriInfo, 1);
    VpriQueryState qs = { .hosts = &info->hosts,
                          .devices = &info->devices };

    object_child_foreach(object_get_objects_root(), vpri_query_one, &qs);
    return info;
}

VpriReclaimResult *qmp_vpri_reclaim(const char *host, bool has_percent,
                                    int64_t percent, bool has_pages,
                                    int64_t pages, Error **errp)
{
    VpriHost *h = vpri_host_find(host, errp);
    VpriReclaimResult *r;
    uint64_t n;

    if (!h) {
        return NULL;
    }
    if (has_percent == has_pages) {
        error_setg(errp, "give exactly one of 'percent' and 'pages'");
        return NULL;
    }
    if (has_percent && (percent < 0 || percent > 100)) {
        error_setg(errp, "'percent' must be 0..100, not %" PRId64, percent);
        return NULL;
    }
    if (has_pages && pages < 0) {
        error_setg(errp, "'pages' must not be negative (%" PRId64 ")",
                   pages);
        return NULL;
    }
    if (!vpri_residency_ready(h->res)) {
        vpri_residency_reclaim(h->res, 0, errp);
        return NULL;
    }
    n = has_pages ? pages :
        vpri_residency_guest_pages(h->res) * percent / 100;
    r = g_new0(VpriReclaimResult, 1);
    r->evicted = vpri_residency_reclaim(h->res, n, errp);
    trace_vpri_reclaim(host, n, r->evicted);
    return r;
}

static void vpri_hmp_info_pins(Monitor *mon, VpriInfo *info);

void hmp_info_vpri(Monitor *mon, const QDict *qdict)
{
    g_autoptr(VpriInfo) info = qmp_query_vpri(NULL);

    for (VpriHostInfoList *l = info->hosts; l; l = l->next) {
        VpriHostInfo *h = l->value;

        monitor_printf(mon, "host %s: %" PRIu64 " guest pages, %" PRIu64
                       " resident, %" PRIu64 " evicted, %" PRIu64
                       " pinned; faults: %" PRIu64 " cpu (p50 %" PRIu64
                       " ns), %" PRIu64 " device\n",
                       h->id, h->guest_pages, h->resident_pages,
                       h->evicted_pages, h->pinned_pages, h->cpu_faults,
                       h->cpu_fault_latency_ns->p50, h->device_faults);
        if (h->migration_supplied_pages) {
            monitor_printf(mon, "  migration: %" PRIu64 " evicted pages "
                           "sent from the swap store\n",
                           h->migration_supplied_pages);
        }
        if (h->postcopy) {
            VpriPostcopyInfo *p = h->postcopy;

            monitor_printf(mon, "  postcopy %s: %" PRIu64 " device requests, "
                           "%" PRIu64 " device faults, %" PRIu64
                           " prefetched (%" PRIu64 " hits, %" PRIu64
                           " late), %" PRIu64
                           " received, %" PRIu64 " waiting, %" PRIu64
                           " failed; fault to page p50 %" PRIu64 " p99 %"
                           PRIu64 " ns\n", p->state, p->device_requests,
                           p->device_faults, p->prefetched,
                           p->prefetch_hits, p->prefetch_late, p->received,
                           p->waiting,
                           p->failed, p->fault_latency_ns->p50,
                           p->fault_latency_ns->p99);
        }
    }
    for (VpriDeviceInfoList *l = info->devices; l; l = l->next) {
        VpriDeviceInfo *d = l->value;

        monitor_printf(mon, "device %s (%s) on %s\n", d->id, d->type,
                       d->host);
        monitor_printf(mon, "  pae: %" PRIu64 " not-present, %" PRIu64
                       " read-only, %" PRIu64 " read-write, %" PRIu64
                       " reserved\n", d->pae->not_present,
                       d->pae->read_only, d->pae->read_write,
                       d->pae->reserved);
        monitor_printf(mon, "  faults: %" PRIu64 " raised, %" PRIu64
                       " coalesced, %" PRIu64 " resolved, %" PRIu64
                       " failed, %" PRIu64 " pending, %" PRIu64
                       " ring-full stalls\n", d->faults->raised,
                       d->faults->coalesced, d->faults->resolved,
                       d->faults->failed, d->faults->pending,
                       d->faults->ring_full_stalls);
        monitor_printf(mon, "  latency: p50 %" PRIu64 " p99 %" PRIu64
                       " p999 %" PRIu64 " max %" PRIu64 " ns; stalled %"
                       PRIu64 " ns\n", d->fault_latency_ns->p50,
                       d->fault_latency_ns->p99, d->fault_latency_ns->p999,
                       d->fault_latency_ns->max, d->stall_ns);
        if (d->iova) {
            monitor_printf(mon, "  iova: %" PRIu64 " translations, %" PRIu64
                           " unmapped, %" PRIu64 " refused\n",
                           d->iova->translations, d->iova->unmapped,
                           d->iova->refused);
        }
        if (d->has_rx_dropped_on_fault) {
            monitor_printf(mon, "  nic: rx %" PRIu64 " tx %" PRIu64
                           " packets; rx dropped-on-fault %" PRIu64
                           " held %" PRIu64 " dropped-other %" PRIu64
                           "; tx stalls %" PRIu64 "\n", d->rx_packets,
                           d->tx_packets, d->rx_dropped_on_fault,
                           d->rx_held, d->rx_dropped_other, d->tx_stalls);
            monitor_printf(mon, "  queue faults:");
            for (uint64List *q = d->queue_faults; q; q = q->next) {
                monitor_printf(mon, " %" PRIu64, q->value);
            }
            monitor_printf(mon, "\n");
        }
    }
    vpri_hmp_info_pins(mon, info);
}

void qmp_vpri_pin(const char *host, uint64_t addr, uint64_t size,
                  Error **errp)
{
    VpriHost *h = vpri_host_find(host, errp);

    if (h) {
        vpri_host_pin(h, addr, size, errp);
    }
}

void qmp_vpri_unpin(const char *host, uint64_t addr, uint64_t size,
                    Error **errp)
{
    VpriHost *h = vpri_host_find(host, errp);

    if (h) {
        vpri_host_unpin(h, addr, size, errp);
    }
}

/* ------------------------------------------------------------------ */
/* Pinning policy and DMA traces                                      */

static void vpri_hmp_info_pins(Monitor *mon, VpriInfo *info)
{
    for (VpriHostInfoList *l = info->hosts; l; l = l->next) {
        VpriPinInfo *p = l->value->pinning;

        if (p) {
            monitor_printf(mon, "host %s pinning: %s, budget %g%% (%" PRIu64
                           " pages), %" PRIu64 " pinned, %" PRIu64
                           " epochs\n", l->value->id, p->policy,
                           p->budget_percent, p->budget_pages,
                           p->pinned_pages, p->epochs);
        }
    }
    for (VpriDeviceInfoList *l = info->devices; l; l = l->next) {
        VpriDevicePins *p = l->value->pins;

        if (p) {
            monitor_printf(mon, "device %s pins (%s): %" PRIu64 " pinned, "
                           "share %" PRIu64 ", %" PRIu64 " touches, %"
                           PRIu64 " faults\n", l->value->id, p->kind,
                           p->pinned_pages, p->share_pages, p->observed,
                           p->faults);
        }
    }
}

void qmp_vpri_trace_start(const char *host, const char *file, Error **errp)
{
    VpriHost *h = vpri_host_find(host, errp);

    if (h) {
        vpri_pin_trace_start(h->pin, file, errp);
    }
}

VpriTraceResult *qmp_vpri_trace_stop(const char *host, Error **errp)
{
    VpriHost *h = vpri_host_find(host, errp);
    VpriTraceResult *r;
    uint64_t n;

    if (!h || !vpri_pin_trace_stop(h->pin, &n, errp)) {
        return NULL;
    }
    r = g_new0(VpriTraceResult, 1);
    r->records = n;
    return r;
}
