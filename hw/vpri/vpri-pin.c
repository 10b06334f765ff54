/*
 * vpri-host, middle layer: the DMA pinning policy (pin-policy, pin-budget)
 * and DMA trace recording (vpri-trace-start / vpri-trace-stop)
 *
 * The policy itself is the QEMU-free core hw/vpri/core/pin-policy.c
 * (docs/vpri-adp.rst).  This file feeds it: every epoch (a virtual-clock
 * timer in the main loop) it collects each device's access trackers, maps
 * the touched guest-physical pages to RAM pages, ends the policy's epoch
 * and applies the pin changes through the residency layer's pin counts;
 * the host reports each device fault its handlers serve.
 *
 * Layering (vpri-pin.h): calls only the residency layer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "hw/vpri/core/access-tracker.h"
#include "hw/vpri/core/dma-trace.h"
#include "vpri-pin.h"
#include "trace.h"

/* How often the access trackers are collected and the pins recomputed. */
#define VPRI_PIN_EPOCH_NS (50 * SCALE_MS)
#define VPRI_PIN_DEFAULT_BUDGET 5.2

struct VpriPinDevice {
    VpriPin *p;
    uint32_t dev_id;
    PinDevKind kind;
    char name[sizeof(((DmaTraceDevice *)0)->name)];
    AccessTracker *tracker;     /* pages the device touched */
    AccessTracker *armed;       /* pages given for a DMA still to come */
    int pin_dev;                /* its index in the policy, or -1 */
};

struct VpriPin {
    char *owner;
    VpriResidency *res;

    /* Settings */
    PinPolicyKind kind;
    double budget_pct;

    QemuMutex lock;             /* everything below but the trace */
    VpriPinDevice *devs[VPRI_EVICT_MAX_SLOTS];
    PinPolicy *policy;          /* NULL until guest RAM is ready */
    QEMUTimer *timer;
    uint64_t ram_pages;
    uint8_t *pin_by_policy;     /* RAM pages the policy holds a pin on */
    uint64_t epochs;

    QemuMutex trace_lock;
    FILE *trace_file;
    char *trace_path;
    uint64_t trace_records;
    uint64_t trace_last_ns;
    uint64_t trace_devs;        /* device slots in the trace's header */
};

QEMU_BUILD_BUG_ON(VPRI_EVICT_MAX_SLOTS > 64);   /* trace_devs is a mask */

/* ------------------------------------------------------------------ */
/* Settings                                                           */

const char *vpri_pin_get_policy(VpriPin *p)
{
    return vpri_pin_policy_kind_name(p->kind);
}

bool vpri_pin_set_policy(VpriPin *p, const char *name, Error **errp)
{
    PinPolicyKind kind;

    if (qatomic_read(&p->policy)) {
        error_setg(errp, "pin-policy cannot change once guest RAM is set up");
        return false;
    }
    if (vpri_pin_policy_kind_parse(name, &kind)) {
        error_setg(errp, "pin-policy must be none, lru or adp, not '%s'",
                   name);
        return false;
    }
    p->kind = kind;
    return true;
}

/*
 * A string, not a number: -object's command-line form goes through the
 * options visitor, which has no floating-point type.
 */
char *vpri_pin_get_budget(VpriPin *p)
{
    return g_strdup_printf("%g", p->budget_pct);
}

bool vpri_pin_set_budget(VpriPin *p, const char *value, Error **errp)
{
    double pct;

    if (qemu_strtod_finite(value, NULL, &pct) || !(pct >= 0 && pct <= 50)) {
        error_setg(errp, "pin-budget must be a percentage of guest RAM, "
                   "0..50, not '%s'", value);
        return false;
    }
    qemu_mutex_lock(&p->lock);
    p->budget_pct = pct;
    if (p->policy) {
        vpri_pin_policy_set_budget(p->policy,
                                   (uint64_t)(p->ram_pages * pct / 100));
    }
    qemu_mutex_unlock(&p->lock);
    return true;
}

/* ------------------------------------------------------------------ */
/* The policy                                                         */

typedef struct VpriPinEpoch {
    VpriPin *p;
    unsigned pin_dev;
    GArray *changes;            /* int64_t: page + 1, negative to unpin */
} VpriPinEpoch;

static void vpri_pin_observe(uint64_t pfn, void *opaque)
{
    VpriPinEpoch *e = opaque;
    uint64_t page;

    if (vpri_residency_gpa_to_page(e->p->res, pfn << PAB_PAGE_SHIFT,
                                   &page)) {
        vpri_pin_policy_observe(e->p->policy, e->pin_dev, page);
    }
}

static void vpri_pin_armed(uint64_t pfn, void *opaque)
{
    VpriPinEpoch *e = opaque;
    uint64_t page;

    if (vpri_residency_gpa_to_page(e->p->res, pfn << PAB_PAGE_SHIFT,
                                   &page)) {
        vpri_pin_policy_armed(e->p->policy, e->pin_dev, page);
    }
}

static void vpri_pin_change(uint64_t page, bool pinned, void *opaque)
{
    VpriPinEpoch *e = opaque;
    int64_t c = pinned ? (int64_t)page + 1 : -(int64_t)page - 1;

    g_array_append_val(e->changes, c);
}

static void vpri_pin_epoch(void *opaque)
{
    VpriPin *p = opaque;
    VpriPinEpoch e = { .p = p,
                       .changes = g_array_new(false, false,
                                              sizeof(int64_t)) };

    qemu_mutex_lock(&p->lock);
    for (unsigned id = 0; id < VPRI_EVICT_MAX_SLOTS; id++) {
        VpriPinDevice *pd = p->devs[id];

        if (pd && pd->pin_dev >= 0) {
            e.pin_dev = (unsigned)pd->pin_dev;
            vpri_access_tracker_collect_cb(
                pd->tracker, 0, vpri_access_tracker_npages(pd->tracker),
                vpri_pin_observe, &e);
            vpri_access_tracker_collect_cb(
                pd->armed, 0, vpri_access_tracker_npages(pd->armed),
                vpri_pin_armed, &e);
        }
    }
    vpri_pin_policy_epoch(p->policy, vpri_pin_change, &e);
    p->epochs++;
    qemu_mutex_unlock(&p->lock);

    /*
     * Applied outside the policy's lock: a pin may page in from the swap
     * store.  Unpins come first, so the budget is never exceeded.
     */
    for (guint i = 0; i < e.changes->len; i++) {
        int64_t c = g_array_index(e.changes, int64_t, i);
        uint64_t page = (uint64_t)(c > 0 ? c : -c) - 1;

        if (c > 0 && !p->pin_by_policy[page]) {
            p->pin_by_policy[page] = vpri_residency_pin_page(p->res, page,
                                                             true);
        } else if (c < 0 && p->pin_by_policy[page]) {
            vpri_residency_pin_page(p->res, page, false);
            p->pin_by_policy[page] = 0;
        }
    }
    trace_vpri_pin_epoch(p->epochs, e.changes->len);
    g_array_free(e.changes, true);
    timer_mod(p->timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + VPRI_PIN_EPOCH_NS);
}

/* Called with p->lock held. */
static void vpri_pin_add_to_policy(VpriPin *p, VpriPinDevice *pd)
{
    int r = vpri_pin_policy_add_device(p->policy, pd->kind);

    if (r < 0) {
        warn_report("vpri-host '%s': the pin policy takes at most %d "
                    "devices; device %u is not pinned for", p->owner,
                    PIN_POLICY_MAX_DEVICES, pd->dev_id);
    }
    pd->pin_dev = r;
}

/* Guest RAM is ready: start the policy (also for none: it is the record). */
static void vpri_pin_ready(void *opaque)
{
    VpriPin *p = opaque;
    uint64_t pages = vpri_residency_guest_pages(p->res);
    PinPolicy *policy;

    policy = vpri_pin_policy_new(p->kind, pages,
                                 (uint64_t)(pages * p->budget_pct / 100));
    if (!policy) {
        error_report("vpri-host '%s': cannot allocate the pin policy",
                     p->owner);
        return;
    }
    qemu_mutex_lock(&p->lock);
    p->ram_pages = pages;
    p->pin_by_policy = g_new0(uint8_t, pages);
    qatomic_set(&p->policy, policy);
    for (unsigned id = 0; id < VPRI_EVICT_MAX_SLOTS; id++) {
        if (p->devs[id]) {
            vpri_pin_add_to_policy(p, p->devs[id]);
        }
    }
    qemu_mutex_unlock(&p->lock);
    if (p->kind != PIN_POLICY_NONE) {
        p->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, vpri_pin_epoch, p);
        timer_mod(p->timer,
                  qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + VPRI_PIN_EPOCH_NS);
    }
}

static const VpriResidencyHooks vpri_pin_residency_hooks = {
    .ready = vpri_pin_ready,
};

void vpri_pin_bind(VpriPin *p, VpriResidency *res, const char *owner)
{
    p->res = res;
    g_free(p->owner);
    p->owner = g_strdup(owner);
    vpri_residency_add_hooks(res, &vpri_pin_residency_hooks, p);
}

/* ------------------------------------------------------------------ */
/* Devices                                                            */

VpriPinDevice *vpri_pin_attach(VpriPin *p, uint32_t dev_id, PinDevKind kind,
                               const char *name, uint64_t npages)
{
    VpriPinDevice *pd;
    AccessTracker *tracker = vpri_access_tracker_new(npages);
    AccessTracker *armed = vpri_access_tracker_new(npages);

    if (!tracker || !armed) {
        vpri_access_tracker_free(tracker);
        vpri_access_tracker_free(armed);
        return NULL;
    }
    pd = g_new0(VpriPinDevice, 1);
    pd->p = p;
    pd->dev_id = dev_id;
    pd->kind = kind;
    pd->tracker = tracker;
    pd->armed = armed;
    pd->pin_dev = -1;
    g_strlcpy(pd->name, name ? name : "", sizeof(pd->name));
    g_strdelimit(pd->name, " \t\n", '_');

    qemu_mutex_lock(&p->lock);
    assert(dev_id < VPRI_EVICT_MAX_SLOTS && !p->devs[dev_id]);
    p->devs[dev_id] = pd;
    if (p->policy) {
        vpri_pin_add_to_policy(p, pd);
    }
    qemu_mutex_unlock(&p->lock);
    return pd;
}

void vpri_pin_detach(VpriPinDevice *pd)
{
    VpriPin *p = pd->p;

    qemu_mutex_lock(&p->lock);
    if (p->policy && pd->pin_dev >= 0) {
        vpri_pin_policy_remove_device(p->policy, (unsigned)pd->pin_dev);
    }
    p->devs[pd->dev_id] = NULL;
    qemu_mutex_unlock(&p->lock);
    /* Devices leave in the main loop, where traces record: none races. */
    qemu_mutex_lock(&p->trace_lock);
    p->trace_devs &= ~(1ULL << pd->dev_id);
    qemu_mutex_unlock(&p->trace_lock);
    vpri_access_tracker_free(pd->tracker);
    vpri_access_tracker_free(pd->armed);
    g_free(pd);
}

void vpri_pin_retrack(VpriPinDevice *pd, uint64_t npages)
{
    AccessTracker *tracker = vpri_access_tracker_new(npages);

    if (!tracker) {
        return;     /* keep the old one: accesses beyond it go unranked */
    }
    qemu_mutex_lock(&pd->p->lock);
    vpri_access_tracker_free(pd->tracker);
    pd->tracker = tracker;
    qemu_mutex_unlock(&pd->p->lock);
}

void vpri_pin_note_fault(VpriPinDevice *pd, uint64_t gpa)
{
    VpriPin *p = pd->p;
    uint64_t page;

    if (pd->pin_dev < 0 || !vpri_residency_gpa_to_page(p->res, gpa, &page)) {
        return;
    }
    qemu_mutex_lock(&p->lock);
    if (p->policy && pd->pin_dev >= 0) {
        vpri_pin_policy_fault(p->policy, (unsigned)pd->pin_dev, page);
    }
    qemu_mutex_unlock(&p->lock);
}

size_t vpri_pin_pinned_pages(VpriPin *p, uint64_t *pages, size_t max)
{
    size_t n = 0;

    qemu_mutex_lock(&p->lock);
    for (uint64_t page = 0; p->policy && page < p->ram_pages && n < max;
         page++) {
        if (vpri_pin_policy_is_pinned(p->policy, page)) {
            pages[n++] = page;
        }
    }
    qemu_mutex_unlock(&p->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Trace recording                                                    */

static DmaTraceKind vpri_pin_trace_kind(PinDevKind kind)
{
    return kind == PIN_DEV_BLOCK ? DMA_TRACE_BLOCK : DMA_TRACE_NIC;
}

/* One record per RAM page the DMA touches; the device's queues wait. */
static void vpri_pin_record(VpriPinDevice *pd, uint64_t addr, uint64_t len,
                            bool write, bool armed)
{
    VpriPin *p = pd->p;
    uint64_t end = addr + (len ? len : 1);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    qemu_mutex_lock(&p->trace_lock);
    /* Devices attached after the start are not in the trace's header. */
    if (!p->trace_file || !(p->trace_devs & (1ULL << pd->dev_id))) {
        qemu_mutex_unlock(&p->trace_lock);
        return;
    }
    /* Threads race to here: keep the file's times non-decreasing. */
    if ((uint64_t)now < p->trace_last_ns) {
        now = p->trace_last_ns;
    }
    p->trace_last_ns = now;
    for (uint64_t a = addr & PAB_PAGE_MASK; a < end; a += PAB_PAGE_SIZE) {
        DmaTraceRecord r = {
            .time_ns = now, .dev = (uint8_t)pd->dev_id,
            .kind = vpri_pin_trace_kind(pd->kind),
            .write = write, .armed = armed,
        };

        if (vpri_residency_gpa_to_page(p->res, a, &r.page) &&
            vpri_dma_trace_write_record(p->trace_file, &r) == 0) {
            p->trace_records++;
        }
    }
    qemu_mutex_unlock(&p->trace_lock);
}

void vpri_pin_note_dma(VpriPinDevice *pd, uint64_t addr, uint64_t len,
                       bool write)
{
    vpri_access_tracker_mark(pd->tracker, addr, len);
    if (qatomic_read(&pd->p->trace_file)) {
        vpri_pin_record(pd, addr, len, write, false);
    }
}

void vpri_pin_note_armed(VpriPinDevice *pd, uint64_t addr, uint64_t len)
{
    if (vpri_access_tracker_mark(pd->armed, addr, len) < 0) {
        return;     /* out of range: not what the policy ranks */
    }
    if (qatomic_read(&pd->p->trace_file)) {
        vpri_pin_record(pd, addr, len, false, true);
    }
}

bool vpri_pin_trace_start(VpriPin *p, const char *file, Error **errp)
{
    g_autofree DmaTraceHeader *hdr = g_new0(DmaTraceHeader, 1);
    uint64_t devs = 0;
    FILE *f;

    if (!p->res || !vpri_residency_ready(p->res)) {
        error_setg(errp, "vpri-host '%s' has no guest RAM to trace",
                   p->owner);
        return false;
    }
    qemu_mutex_lock(&p->trace_lock);
    if (p->trace_file) {
        error_setg(errp, "vpri-host '%s' is already tracing to %s",
                   p->owner, p->trace_path);
        qemu_mutex_unlock(&p->trace_lock);
        return false;
    }
    hdr->guest_pages = vpri_residency_guest_pages(p->res);
    qemu_mutex_lock(&p->lock);
    for (unsigned id = 0; id < VPRI_EVICT_MAX_SLOTS; id++) {
        VpriPinDevice *pd = p->devs[id];
        DmaTraceDevice *td;

        if (!pd) {
            continue;
        }
        td = &hdr->devs[hdr->ndevs++];
        td->id = id;
        devs |= 1ULL << id;
        td->kind = vpri_pin_trace_kind(pd->kind);
        g_strlcpy(td->name, pd->name, sizeof(td->name));
    }
    qemu_mutex_unlock(&p->lock);
    f = fopen(file, "w");
    if (!f) {
        error_setg_errno(errp, errno, "cannot create trace file '%s'", file);
        qemu_mutex_unlock(&p->trace_lock);
        return false;
    }
    fprintf(f, "# recorded by vpri-host '%s'; pages are RAM pages (RAM "
            "offset >> 12); DMA records only\n", p->owner);
    if (vpri_dma_trace_write_header(f, hdr) != 0) {
        error_setg(errp, "cannot write trace file '%s'", file);
        fclose(f);
        qemu_mutex_unlock(&p->trace_lock);
        return false;
    }
    p->trace_path = g_strdup(file);
    p->trace_devs = devs;
    p->trace_records = 0;
    p->trace_last_ns = 0;
    qatomic_set(&p->trace_file, f);
    qemu_mutex_unlock(&p->trace_lock);
    return true;
}

bool vpri_pin_trace_stop(VpriPin *p, uint64_t *records, Error **errp)
{
    bool ok;

    qemu_mutex_lock(&p->trace_lock);
    if (!p->trace_file) {
        error_setg(errp, "vpri-host '%s' is not tracing", p->owner);
        qemu_mutex_unlock(&p->trace_lock);
        return false;
    }
    ok = fclose(p->trace_file) == 0;
    qatomic_set(&p->trace_file, NULL);
    if (!ok) {
        error_setg_errno(errp, errno, "error writing trace file '%s'",
                         p->trace_path);
    }
    if (records) {
        *records = p->trace_records;
    }
    g_free(p->trace_path);
    p->trace_path = NULL;
    qemu_mutex_unlock(&p->trace_lock);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Queries                                                            */

VpriPinInfo *vpri_pin_query(VpriPin *p)
{
    VpriPinInfo *pi = NULL;

    qemu_mutex_lock(&p->lock);
    if (p->policy) {
        pi = g_new0(VpriPinInfo, 1);
        pi->policy = g_strdup(vpri_pin_policy_kind_name(p->kind));
        pi->budget_percent = p->budget_pct;
        pi->budget_pages = vpri_pin_policy_budget(p->policy);
        pi->pinned_pages = vpri_pin_policy_pinned(p->policy);
        pi->epochs = p->epochs;
    }
    qemu_mutex_unlock(&p->lock);
    return pi;
}

VpriDevicePins *vpri_pin_query_device(VpriPinDevice *pd)
{
    VpriPin *p = pd->p;
    VpriDevicePins *dp = NULL;
    PinPolicyDevStats st;

    qemu_mutex_lock(&p->lock);
    if (p->policy && pd->pin_dev >= 0 &&
        vpri_pin_policy_dev_stats(p->policy, (unsigned)pd->pin_dev,
                                  &st) == 0) {
        dp = g_new0(VpriDevicePins, 1);
        dp->kind = g_strdup(vpri_pin_dev_kind_name(st.kind));
        dp->pinned_pages = st.pinned;
        dp->share_pages = st.share;
        dp->observed = st.observed;
        dp->faults = st.faults;
    }
    qemu_mutex_unlock(&p->lock);
    return dp;
}

/* ------------------------------------------------------------------ */
/* Life                                                               */

VpriPin *vpri_pin_new(void)
{
    VpriPin *p = g_new0(VpriPin, 1);

    p->owner = g_strdup("(not created)");
    p->kind = PIN_POLICY_NONE;
    p->budget_pct = VPRI_PIN_DEFAULT_BUDGET;
    qemu_mutex_init(&p->lock);
    qemu_mutex_init(&p->trace_lock);
    return p;
}

void vpri_pin_free(VpriPin *p)
{
    if (!p) {
        return;
    }
    if (p->trace_file) {
        vpri_pin_trace_stop(p, NULL, NULL);
    }
    if (p->timer) {
        timer_free(p->timer);
    }
    vpri_pin_policy_free(p->policy);
    g_free(p->pin_by_policy);
    qemu_mutex_destroy(&p->lock);
    qemu_mutex_destroy(&p->trace_lock);
    g_free(p->owner);
    g_free(p);
}
