/*
 * vpri-host: the DMA pinning policy (pin-policy, pin-budget) and DMA trace
 * recording (vpri-trace-start / vpri-trace-stop)
 *
 * The policy itself is the QEMU-free core hw/vpri/core/pin-policy.c
 * (docs/vpri-adp.rst).  This file feeds it: every epoch (a virtual-clock
 * timer in the main loop) it collects each device's access tracker, maps
 * the touched guest-physical pages to RAM pages, ends the policy's epoch
 * and applies the pin changes through the host's pin counts; the fault
 * handlers report each device fault.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "hw/qdev-core.h"
#include "hw/vpri/vpri-host-internal.h"
#include "hw/vpri/core/dma-trace.h"

/* How often the access trackers are collected and the pins recomputed. */
#define VPRI_PIN_EPOCH_NS (50 * SCALE_MS)
#define VPRI_PIN_DEFAULT_BUDGET 5.2

/* Which half of the policy a device gets: block devices vs the rest. */
static PinDevKind vpri_pin_dev_kind(VpriHostDevice *d)
{
    const char *type = object_get_typename(OBJECT(d->dev));

    return strstr(type, "blk") || strstr(type, "nvme") || strstr(type, "scsi")
           ? PIN_DEV_BLOCK : PIN_DEV_NIC;
}

/* ------------------------------------------------------------------ */
/* Properties                                                         */

static char *vpri_pin_get_policy(Object *obj, Error **errp)
{
    return g_strdup(vpri_pin_policy_kind_name(VPRI_HOST(obj)->pin_kind));
}

static void vpri_pin_set_policy(Object *obj, const char *value, Error **errp)
{
    VpriHost *h = VPRI_HOST(obj);

    if (h->pin_policy) {
        error_setg(errp, "pin-policy cannot change once guest RAM is set up");
        return;
    }
    if (vpri_pin_policy_kind_parse(value, &h->pin_kind)) {
        error_setg(errp, "pin-policy must be none, lru or adp, not '%s'",
                   value);
    }
}

/*
 * A string, not a number: -object's command-line form goes through the
 * options visitor, which has no floating-point type.
 */
static char *vpri_pin_get_budget(Object *obj, Error **errp)
{
    return g_strdup_printf("%g", VPRI_HOST(obj)->pin_budget_pct);
}

static void vpri_pin_set_budget(Object *obj, const char *value, Error **errp)
{
    VpriHost *h = VPRI_HOST(obj);
    double pct;

    if (qemu_strtod_finite(value, NULL, &pct) || !(pct >= 0 && pct <= 50)) {
        error_setg(errp, "pin-budget must be a percentage of guest RAM, "
                   "0..50, not '%s'", value);
        return;
    }
    qemu_mutex_lock(&h->pin_lock);
    h->pin_budget_pct = pct;
    if (h->pin_policy) {
        vpri_pin_policy_set_budget(h->pin_policy,
                              (uint64_t)(h->ram_pages * pct / 100));
    }
    qemu_mutex_unlock(&h->pin_lock);
}

void vpri_pin_init(VpriHost *h)
{
    Object *obj = OBJECT(h);

    qemu_mutex_init(&h->pin_lock);
    qemu_mutex_init(&h->trace_lock);
    h->pin_kind = PIN_POLICY_NONE;
    h->pin_budget_pct = VPRI_PIN_DEFAULT_BUDGET;
    object_property_add_str(obj, "pin-policy", vpri_pin_get_policy,
                            vpri_pin_set_policy);
    object_property_set_description(obj, "pin-policy",
        "DMA pinning policy: none, lru or adp (docs/vpri-adp.rst)");
    object_property_add_str(obj, "pin-budget", vpri_pin_get_budget,
                            vpri_pin_set_budget);
    object_property_set_description(obj, "pin-budget",
        "most guest RAM the pinning policy pins, in percent (default 5.2)");
}

bool vpri_pin_check(VpriHost *h, Error **errp)
{
    return true;
}

/* ------------------------------------------------------------------ */
/* The policy                                                         */

typedef struct VpriPinEpoch {
    VpriHost *h;
    unsigned pin_dev;
    GArray *changes;            /* int64_t: page + 1, negative to unpin */
} VpriPinEpoch;

static void vpri_pin_observe(uint64_t pfn, void *opaque)
{
    VpriPinEpoch *e = opaque;
    uint64_t page;

    if (vpri_host_gpa_to_ram_page(e->h, pfn << PAB_PAGE_SHIFT, &page)) {
        vpri_pin_policy_observe(e->h->pin_policy, e->pin_dev, page);
    }
}

static void vpri_pin_armed(uint64_t pfn, void *opaque)
{
    VpriPinEpoch *e = opaque;
    uint64_t page;

    if (vpri_host_gpa_to_ram_page(e->h, pfn << PAB_PAGE_SHIFT, &page)) {
        vpri_pin_policy_armed(e->h->pin_policy, e->pin_dev, page);
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
    VpriHost *h = opaque;
    VpriPinEpoch e = { .h = h,
                       .changes = g_array_new(false, false,
                                              sizeof(int64_t)) };

    qemu_mutex_lock(&h->pin_lock);
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];

        if (d->dev && d->pin_dev >= 0) {
            e.pin_dev = (unsigned)d->pin_dev;
            vpri_access_tracker_collect_cb(d->tracker, 0,
                                      vpri_access_tracker_npages(d->tracker),
                                      vpri_pin_observe, &e);
            vpri_access_tracker_collect_cb(d->armed, 0,
                                      vpri_access_tracker_npages(d->armed),
                                      vpri_pin_armed, &e);
        }
    }
    vpri_pin_policy_epoch(h->pin_policy, vpri_pin_change, &e);
    h->pin_epochs++;
    qemu_mutex_unlock(&h->pin_lock);

    /*
     * Applied outside the policy's lock: a pin may page in from the swap
     * store.  Unpins come first, so the budget is never exceeded.
     */
    for (guint i = 0; i < e.changes->len; i++) {
        int64_t c = g_array_index(e.changes, int64_t, i);
        uint64_t page = (uint64_t)(c > 0 ? c : -c) - 1;

        if (c > 0 && !h->pin_by_policy[page]) {
            h->pin_by_policy[page] = vpri_host_pin_ram_page(h, page, true);
        } else if (c < 0 && h->pin_by_policy[page]) {
            vpri_host_pin_ram_page(h, page, false);
            h->pin_by_policy[page] = 0;
        }
    }
    g_array_free(e.changes, true);
    timer_mod(h->pin_timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + VPRI_PIN_EPOCH_NS);
}

static void vpri_pin_add_device(VpriHost *h, VpriHostDevice *d)
{
    int r = vpri_pin_policy_add_device(h->pin_policy, vpri_pin_dev_kind(d));

    if (r < 0) {
        warn_report("vpri-host '%s': the pin policy takes at most %d "
                    "devices; %s is not pinned for",
                    object_get_canonical_path_component(OBJECT(h)),
                    PIN_POLICY_MAX_DEVICES,
                    object_get_typename(OBJECT(d->dev)));
    }
    d->pin_dev = r;
}

/* Guest RAM is ready: start the policy (also for none: it is the record). */
void vpri_pin_start(VpriHost *h)
{
    qemu_mutex_lock(&h->pin_lock);
    h->pin_policy = vpri_pin_policy_new(h->pin_kind, h->ram_pages,
                                   (uint64_t)(h->ram_pages *
                                              h->pin_budget_pct / 100));
    if (!h->pin_policy) {
        qemu_mutex_unlock(&h->pin_lock);
        error_report("vpri-host: cannot allocate the pin policy");
        return;
    }
    h->pin_by_policy = g_new0(uint8_t, h->ram_pages);
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (h->devs[id].dev) {
            vpri_pin_add_device(h, &h->devs[id]);
        }
    }
    qemu_mutex_unlock(&h->pin_lock);
    if (h->pin_kind != PIN_POLICY_NONE) {
        h->pin_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, vpri_pin_epoch, h);
        timer_mod(h->pin_timer,
                  qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + VPRI_PIN_EPOCH_NS);
    }
}

void vpri_pin_attach(VpriHost *h, VpriHostDevice *d)
{
    qemu_mutex_lock(&h->pin_lock);
    if (h->pin_policy) {
        vpri_pin_add_device(h, d);
    }
    qemu_mutex_unlock(&h->pin_lock);
}

void vpri_pin_detach(VpriHost *h, VpriHostDevice *d)
{
    qemu_mutex_lock(&h->pin_lock);
    if (h->pin_policy && d->pin_dev >= 0) {
        vpri_pin_policy_remove_device(h->pin_policy, (unsigned)d->pin_dev);
    }
    d->pin_dev = -1;
    qemu_mutex_unlock(&h->pin_lock);
}

void vpri_pin_fault(VpriHost *h, VpriHostDevice *d, uint64_t gpa)
{
    uint64_t page;

    if (d->pin_dev < 0 || !vpri_host_gpa_to_ram_page(h, gpa, &page)) {
        return;
    }
    qemu_mutex_lock(&h->pin_lock);
    if (h->pin_policy) {
        vpri_pin_policy_fault(h->pin_policy, (unsigned)d->pin_dev, page);
    }
    qemu_mutex_unlock(&h->pin_lock);
}

void vpri_pin_cleanup(VpriHost *h)
{
    if (h->trace_file) {
        vpri_pin_trace_stop(h, NULL, NULL);
    }
    if (h->pin_timer) {
        timer_free(h->pin_timer);
        h->pin_timer = NULL;
    }
    vpri_pin_policy_free(h->pin_policy);
    h->pin_policy = NULL;
    g_free(h->pin_by_policy);
    h->pin_by_policy = NULL;
    qemu_mutex_destroy(&h->pin_lock);
    qemu_mutex_destroy(&h->trace_lock);
}

/* ------------------------------------------------------------------ */
/* Trace recording                                                    */

/* One record per RAM page the DMA touches; the device's queues wait. */
void vpri_pin_record(VpriHost *h, VpriHostDevice *d, uint64_t addr,
                     uint64_t len, bool write, bool armed)
{
    uint64_t id = (uint64_t)(d - h->devs);
    uint64_t end = addr + (len ? len : 1);
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    qemu_mutex_lock(&h->trace_lock);
    /* Devices attached after the start are not in the trace's header. */
    if (!h->trace_file || !(h->trace_devs & (1ULL << id))) {
        qemu_mutex_unlock(&h->trace_lock);
        return;
    }
    /* Threads race to here: keep the file's times non-decreasing. */
    if ((uint64_t)now < h->trace_last_ns) {
        now = h->trace_last_ns;
    }
    h->trace_last_ns = now;
    for (uint64_t a = addr & PAB_PAGE_MASK; a < end; a += PAB_PAGE_SIZE) {
        DmaTraceRecord r = {
            .time_ns = now, .dev = (uint8_t)id,
            .kind = vpri_pin_dev_kind(d) == PIN_DEV_BLOCK ? DMA_TRACE_BLOCK
                                                          : DMA_TRACE_NIC,
            .write = write, .armed = armed,
        };

        if (vpri_host_gpa_to_ram_page(h, a, &r.page) &&
            vpri_dma_trace_write_record(h->trace_file, &r) == 0) {
            h->trace_records++;
        }
    }
    qemu_mutex_unlock(&h->trace_lock);
}

bool vpri_pin_trace_start(VpriHost *h, const char *file, Error **errp)
{
    g_autofree DmaTraceHeader *hdr = g_new0(DmaTraceHeader, 1);
    uint64_t devs = 0;
    FILE *f;

    if (!qatomic_read(&h->mem_ready)) {
        error_setg(errp, "vpri-host '%s' has no guest RAM to trace",
                   object_get_canonical_path_component(OBJECT(h)));
        return false;
    }
    qemu_mutex_lock(&h->trace_lock);
    if (h->trace_file) {
        error_setg(errp, "vpri-host '%s' is already tracing to %s",
                   object_get_canonical_path_component(OBJECT(h)),
                   h->trace_path);
        qemu_mutex_unlock(&h->trace_lock);
        return false;
    }
    hdr->guest_pages = h->ram_pages;
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];
        DmaTraceDevice *td;

        if (!d->dev) {
            continue;
        }
        td = &hdr->devs[hdr->ndevs++];
        td->id = id;
        devs |= 1ULL << id;
        td->kind = vpri_pin_dev_kind(d) == PIN_DEV_BLOCK ? DMA_TRACE_BLOCK
                                                          : DMA_TRACE_NIC;
        g_strlcpy(td->name, d->dev->id ? d->dev->id : "", sizeof(td->name));
        g_strdelimit(td->name, " \t\n", '_');
    }
    f = fopen(file, "w");
    if (!f) {
        error_setg_errno(errp, errno, "cannot create trace file '%s'", file);
        qemu_mutex_unlock(&h->trace_lock);
        return false;
    }
    fprintf(f, "# recorded by vpri-host '%s'; pages are RAM pages (RAM "
            "offset >> 12); DMA records only\n",
            object_get_canonical_path_component(OBJECT(h)));
    if (vpri_dma_trace_write_header(f, hdr) != 0) {
        error_setg(errp, "cannot write trace file '%s'", file);
        fclose(f);
        qemu_mutex_unlock(&h->trace_lock);
        return false;
    }
    h->trace_path = g_strdup(file);
    h->trace_devs = devs;
    h->trace_records = 0;
    h->trace_last_ns = 0;
    qatomic_set(&h->trace_file, f);
    qemu_mutex_unlock(&h->trace_lock);
    return true;
}

bool vpri_pin_trace_stop(VpriHost *h, uint64_t *records, Error **errp)
{
    bool ok;

    qemu_mutex_lock(&h->trace_lock);
    if (!h->trace_file) {
        error_setg(errp, "vpri-host '%s' is not tracing",
                   object_get_canonical_path_component(OBJECT(h)));
        qemu_mutex_unlock(&h->trace_lock);
        return false;
    }
    ok = fclose(h->trace_file) == 0;
    qatomic_set(&h->trace_file, NULL);
    if (!ok) {
        error_setg_errno(errp, errno, "error writing trace file '%s'",
                         h->trace_path);
    }
    if (records) {
        *records = h->trace_records;
    }
    g_free(h->trace_path);
    h->trace_path = NULL;
    qemu_mutex_unlock(&h->trace_lock);
    return ok;
}
