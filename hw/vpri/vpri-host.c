/*
 * vpri-host: the host side of VPRI
 *
 *   -object vpri-host,id=ID[,swap-file=PATH][,handlers=N]
 *
 * Per attached device: a PA-BITMAP (2 bits per 4 KiB page of the device's
 * DMA space), a DMA access tracker and a sideband fault ring.  Handler
 * threads take fault records off the rings, make the page resident and
 * raise its PA-BITMAP entry, then complete the record; the device's queue
 * resumes in the main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/bitops.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include <poll.h>
#include "qemu/units.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "hw/vpri/vpri-host.h"
#include "hw/vpri/vpri-host-internal.h"
#include "trace.h"

VpriHost *vpri_host_find(const char *id, Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(),
                                                id);

    if (!obj) {
        error_setg(errp, "vpri-host '%s' not found", id);
        return NULL;
    }
    if (!object_dynamic_cast(obj, TYPE_VPRI_HOST)) {
        error_setg(errp, "object '%s' is not a vpri-host", id);
        return NULL;
    }
    return VPRI_HOST(obj);
}

static VpriHostDevice *vpri_host_dev(VpriHost *h, uint32_t dev_id)
{
    assert(dev_id < VPRI_HOST_MAX_DEVICES && h->devs[dev_id].dev);
    return &h->devs[dev_id];
}

/* The device's DMA space: guest-physical, RAM plus the 32-bit PCI hole. */
static uint64_t vpri_host_dma_pages(void)
{
    uint64_t ram = current_machine ? current_machine->ram_size : 0;

    return (4 * GiB + ram) >> PAB_PAGE_SHIFT;
}

/* ------------------------------------------------------------------ */
/* Completions back to the devices, in the main loop                  */

static void vpri_host_done_bh(void *opaque)
{
    VpriHostDevice *d = opaque;
    uint64_t resolved[VPRI_HOST_QUEUE_WORDS];
    uint64_t failed[VPRI_HOST_QUEUE_WORDS];

    qemu_mutex_lock(&d->host->lock);
    memcpy(resolved, d->wake_resolved, sizeof(resolved));
    memcpy(failed, d->wake_failed, sizeof(failed));
    memset(d->wake_resolved, 0, sizeof(d->wake_resolved));
    memset(d->wake_failed, 0, sizeof(d->wake_failed));
    qemu_mutex_unlock(&d->host->lock);

    for (uint32_t q = 0; q < d->nqueues; q++) {
        bool ok = test_bit(q, (unsigned long *)resolved);
        bool bad = test_bit(q, (unsigned long *)failed);

        if (ok || bad) {
            d->done(d->done_opaque, q, !bad);
        }
    }
}

/*
 * Called with h->lock held.  Queues that stalled on a full ring raised no
 * record: they retry, whatever became of the record that freed the slot.
 */
static void vpri_host_wake(VpriHostDevice *d, const uint64_t *waiters,
                           bool resolved)
{
    uint64_t *dst = resolved ? d->wake_resolved : d->wake_failed;

    for (size_t i = 0; i < VPRI_HOST_QUEUE_WORDS; i++) {
        uint64_t stalled = waiters[i] & d->full_stalled[i];

        d->full_stalled[i] &= ~stalled;
        d->wake_resolved[i] |= stalled;
        dst[i] |= waiters[i] & ~stalled;
    }
    qemu_bh_schedule(d->done_bh);
}

/* ------------------------------------------------------------------ */
/* Device side                                                        */

uint32_t vpri_host_attach(VpriHost *h, DeviceState *dev, uint16_t nqueues,
                          VpriFaultDoneFn *done, void *opaque)
{
    VpriHostDevice *d = NULL;
    uint32_t id;

    qemu_mutex_lock(&h->lock);
    for (id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (!h->devs[id].dev) {
            d = &h->devs[id];
            break;
        }
    }
    assert(d);      /* realize checked vpri_host_can_attach() */
    memset(d, 0, sizeof(*d));
    d->host = h;
    d->dev = dev;
    d->nqueues = nqueues;
    d->done = done;
    d->done_opaque = opaque;
    d->pab = vpri_pab_new(vpri_host_dma_pages());
    d->tracker = vpri_access_tracker_new(vpri_host_dma_pages());
    d->armed = vpri_access_tracker_new(vpri_host_dma_pages());
    d->ring = vpri_fault_ring_new(id, h->ring_size, nqueues);
    d->done_bh = qemu_bh_new(vpri_host_done_bh, d);
    /* Everything is resident until the host evicts something. */
    vpri_host_sync_device_bitmap(h, d);
    d->pin_dev = -1;
    qemu_mutex_unlock(&h->lock);
    vpri_pin_attach(h, d);
    return id;
}

void vpri_host_detach(VpriHost *h, uint32_t dev_id)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);

    vpri_pin_detach(h, d);
    qemu_mutex_lock(&h->lock);
    d->dev = NULL;
    /* A handler may be paging in for a record it popped: let it finish. */
    while (d->serving) {
        qemu_mutex_unlock(&h->lock);
        g_usleep(100);
        qemu_mutex_lock(&h->lock);
    }
    qemu_mutex_unlock(&h->lock);
    /* Handlers look devices up under the lock, so none uses it now. */
    vpri_iommu_detach(h, d);
    qemu_bh_delete(d->done_bh);
    vpri_fault_ring_free(d->ring);
    vpri_access_tracker_free(d->tracker);
    vpri_access_tracker_free(d->armed);
    vpri_pab_free(d->pab);
    memset(d, 0, sizeof(*d));
}

unsigned vpri_host_free_slots(VpriHost *h)
{
    unsigned n = 0;

    qemu_mutex_lock(&h->lock);
    for (uint32_t id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        n += !h->devs[id].dev;
    }
    qemu_mutex_unlock(&h->lock);
    return n;
}

bool vpri_host_can_attach(VpriHost *h, Error **errp)
{
    for (uint32_t id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (!h->devs[id].dev) {
            return true;
        }
    }
    error_setg(errp, "vpri-host '%s' already serves %d devices",
               object_get_canonical_path_component(OBJECT(h)),
               VPRI_HOST_MAX_DEVICES);
    return false;
}

PabResult vpri_host_dma_begin(VpriHost *h, uint32_t dev_id, uint64_t addr,
                              uint64_t len, bool write, PabDmaToken *token,
                              uint64_t *fault_page)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);
    PabResult r;

    *token = vpri_pab_dma_begin(d->pab, addr, len,
                           write ? PAB_ACCESS_WRITE : PAB_ACCESS_READ,
                           &r, fault_page);
    if (r == PAB_OK) {
        vpri_access_tracker_mark(d->tracker, addr, len);
        if (qatomic_read(&h->trace_file)) {
            vpri_pin_record(h, d, addr, len, write, false);
        }
    } else if (r == PAB_OUT_OF_RANGE && d->xlat) {
        /* An IOVA beyond the bitmap: untracked (see vpri-iommu.c). */
        r = PAB_OK;
    }
    return r;
}

void vpri_host_dma_arm(VpriHost *h, uint32_t dev_id, uint64_t addr,
                       uint64_t len)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);

    if (d->xlat || vpri_access_tracker_mark(d->armed, addr, len) < 0) {
        return;     /* IOVAs are not what the policy ranks; see above */
    }
    if (qatomic_read(&h->trace_file)) {
        vpri_pin_record(h, d, addr, len, false, true);
    }
}

PabResult vpri_host_dma_hold(VpriHost *h, uint32_t dev_id, uint64_t addr,
                             uint64_t len, bool write, void *hva,
                             uint64_t *fault_page)
{
    PabDmaToken token;
    uint64_t offset;
    PabResult r;

    /*
     * Inside the fence's in-flight window, so an eviction that lowered the
     * entry after our lookup waits for us, and then finds the pages held.
     */
    r = vpri_host_dma_begin(h, dev_id, addr, len, write, &token, fault_page);
    if (r == PAB_OK && !vpri_host_hold_hva(h, hva, len, &offset)) {
        *fault_page = (addr + offset) & PAB_PAGE_MASK;
        r = PAB_FAULT;
    }
    vpri_host_dma_end(h, dev_id, token);
    return r;
}

void vpri_host_dma_release(VpriHost *h, void *hva, uint64_t len)
{
    vpri_host_release_hva(h, hva, len);
}

void vpri_host_dma_end(VpriHost *h, uint32_t dev_id, PabDmaToken token)
{
    vpri_pab_dma_end(vpri_host_dev(h, dev_id)->pab, token);
}

void vpri_host_account_stall(VpriHost *h, uint32_t dev_id, uint64_t ns)
{
    qatomic_add(&vpri_host_dev(h, dev_id)->stall_ns, ns);
}

void vpri_host_raise_fault(VpriHost *h, uint32_t dev_id, uint16_t queue,
                           uint64_t page, bool write, int cpu)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);
    uint64_t seq;
    int r;

    /*
     * Under the lock, so that a completion reporting this queue as
     * stalled already sees it in full_stalled.
     */
    if (d->xlat) {
        /* Translate now, in the main loop: see vpri-iommu.c. */
        vpri_iommu_translate_fault(h, d, page, write);
    }
    qemu_mutex_lock(&h->lock);
    r = vpri_fault_ring_raise(d->ring, queue,
                         write ? FAULT_ACCESS_WRITE : FAULT_ACCESS_READ,
                         page, get_clock_realtime(), &seq);
    if (r == FAULT_RING_FULL) {
        d->full_stalled[queue / 64] |= 1ULL << (queue % 64);
    }
    qemu_mutex_unlock(&h->lock);
    trace_vpri_fault_raise(dev_id, queue, page, write, r);
    /*
     * FAULT_RING_FULL: the ring remembers the stalled queue and names it
     * among the waiters of the next completion, which resumes the queue;
     * its DMA then faults again and is raised into the freed slot.
     */
    if (r == FAULT_RING_NEW) {
        /* vCPU affinity: the handler tied to the vCPU of the interrupt. */
        uint32_t handler = cpu >= 0 ? cpu % h->nhandlers : 0;

        event_notifier_set(&h->handler_wake[handler]);
    }
}

/* ------------------------------------------------------------------ */
/* Handlers                                                           */

/*
 * Serve one record: bring the page in and raise its entry.  Returns the
 * completion status.
 */
static FaultStatus vpri_host_serve(VpriHost *h, VpriHostDevice *d,
                                   const FaultRecord *rec)
{
    if (qatomic_read(&h->fail_faults)) {
        return FAULT_STATUS_FAILED;
    }
    if (d->xlat) {
        return vpri_iommu_serve(h, d, rec);
    }
    vpri_pin_fault(h, d, rec->page_addr);
    if (!vpri_host_page_in(h, rec->page_addr)) {
        return FAULT_STATUS_FAILED;
    }
    vpri_pab_raise_range(d->pab, rec->page_addr >> PAB_PAGE_SHIFT, 1,
                    PAB_READ_WRITE);
    return FAULT_STATUS_RESOLVED;
}

static bool vpri_host_serve_one(VpriHost *h)
{
    if (qatomic_read(&h->hold_faults)) {
        return false;
    }
    for (uint32_t id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];
        uint64_t waiters[VPRI_HOST_QUEUE_WORDS] = { 0 };
        FaultCompletion c = { 0 };
        FaultRecord rec;

        qemu_mutex_lock(&h->lock);
        if (!d->dev || vpri_fault_ring_pop(d->ring, &rec) != 0) {
            qemu_mutex_unlock(&h->lock);
            continue;
        }
        d->serving++;
        qemu_mutex_unlock(&h->lock);

        c.seq = rec.seq;
        c.status = vpri_host_serve(h, d, &rec);

        qemu_mutex_lock(&h->lock);
        d->serving--;
        vpri_fault_ring_complete(d->ring, &c, get_clock_realtime(), NULL,
                            waiters);
        qatomic_inc(&h->device_faults);
        trace_vpri_fault_resolve(id, rec.queue, rec.page_addr, c.status);
        vpri_host_wake(d, waiters, c.status == FAULT_STATUS_RESOLVED);
        qemu_mutex_unlock(&h->lock);
        return true;
    }
    return false;
}

void vpri_host_kick_handlers(VpriHost *h)
{
    for (uint32_t i = 0; i < h->nhandlers; i++) {
        event_notifier_set(&h->handler_wake[i]);
    }
}

/*
 * A handler sleeps until its own notifier is set (a device fault routed to
 * it) or guest RAM faults arrive on the shared userfaultfd.  Whichever
 * handler wakes drains every ring, so a fault is never left waiting for
 * one busy handler.
 */
static void *vpri_host_handler_thread(void *opaque)
{
    VpriHandlerArg *arg = opaque;
    VpriHost *h = arg->host;
    EventNotifier *wake = &h->handler_wake[arg->index];

    while (!qatomic_read(&h->stopping)) {
        struct pollfd fds[2] = {
            { .fd = event_notifier_get_fd(wake), .events = POLLIN },
            { .fd = qatomic_read(&h->mem_ready) ? h->uffd : -1,
              .events = POLLIN },
        };

        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            error_report("vpri-host: poll: %s", strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) {
            event_notifier_test_and_clear(wake);
        }
        if (fds[1].revents & POLLIN) {
            vpri_host_serve_uffd(h);
        }
        while (vpri_host_serve_one(h)) {
            /* drain the rings */
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* QOM                                                                */

static void vpri_host_complete(UserCreatable *uc, Error **errp)
{
    VpriHost *h = VPRI_HOST(uc);

    if (h->nhandlers < 1 || h->nhandlers > VPRI_HOST_MAX_HANDLERS) {
        error_setg(errp, "vpri-host: handlers must be 1..%d, not %u",
                   VPRI_HOST_MAX_HANDLERS, h->nhandlers);
        return;
    }
    if (h->ring_size < 1 || h->ring_size > FAULT_RING_MAX_CAPACITY) {
        error_setg(errp, "vpri-host: ring-size must be 1..%d, not %u",
                   FAULT_RING_MAX_CAPACITY, h->ring_size);
        return;
    }
    if (!vpri_pin_check(h, errp)) {
        return;
    }
    vpri_host_memory_init(h);
    h->threads = g_new0(QemuThread, h->nhandlers);
    h->handler_wake = g_new0(EventNotifier, h->nhandlers);
    h->handler_args = g_new0(VpriHandlerArg, h->nhandlers);
    for (uint32_t i = 0; i < h->nhandlers; i++) {
        g_autofree char *name = g_strdup_printf("vpri-handler%u", i);

        event_notifier_init(&h->handler_wake[i], false);
        h->handler_args[i] = (VpriHandlerArg) { .host = h, .index = i };
        qemu_thread_create(&h->threads[i], name, vpri_host_handler_thread,
                           &h->handler_args[i], QEMU_THREAD_JOINABLE);
    }
}

static void vpri_host_init(Object *obj)
{
    VpriHost *h = VPRI_HOST(obj);

    qemu_mutex_init(&h->lock);
    qemu_mutex_init(&h->xlat_lock);
    h->xlat_rmap = g_hash_table_new_full(g_direct_hash, g_direct_equal,
                                         NULL, (GDestroyNotify)g_slist_free);
    h->nhandlers = 2;
    h->ring_size = 64;
    object_property_add_uint32_ptr(obj, "handlers", &h->nhandlers,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "ring-size", &h->ring_size,
                                   OBJ_PROP_FLAG_READWRITE);
    vpri_pin_init(h);
}

static bool vpri_host_get_fail_faults(Object *obj, Error **errp)
{
    return qatomic_read(&VPRI_HOST(obj)->fail_faults);
}

/* For tests: answer every fault FAILED, as if the memory were gone. */
static void vpri_host_set_fail_faults(Object *obj, bool value, Error **errp)
{
    qatomic_set(&VPRI_HOST(obj)->fail_faults, value);
}

static bool vpri_host_get_hold_faults(Object *obj, Error **errp)
{
    return qatomic_read(&VPRI_HOST(obj)->hold_faults);
}

/*
 * For tests: leave device faults pending in their rings until this is
 * cleared, so that a test can look at a device while one of its queues
 * waits (CPU faults are still served).
 */
static void vpri_host_set_hold_faults(Object *obj, bool value, Error **errp)
{
    VpriHost *h = VPRI_HOST(obj);

    qatomic_set(&h->hold_faults, value);
    if (!value && h->threads) {
        vpri_host_kick_handlers(h);
    }
}

static void vpri_host_finalize(Object *obj)
{
    VpriHost *h = VPRI_HOST(obj);

    if (h->threads) {
        qatomic_set(&h->stopping, true);
        vpri_host_kick_handlers(h);
        for (uint32_t i = 0; i < h->nhandlers; i++) {
            qemu_thread_join(&h->threads[i]);
            event_notifier_cleanup(&h->handler_wake[i]);
        }
        g_free(h->threads);
        g_free(h->handler_wake);
        g_free(h->handler_args);
        vpri_pin_cleanup(h);
        vpri_host_memory_cleanup(h);
    } else {
        vpri_pin_cleanup(h);
    }
    qemu_mutex_destroy(&h->lock);
    qemu_mutex_destroy(&h->xlat_lock);
    g_hash_table_destroy(h->xlat_rmap);
    g_free(h->swap_file);
}

static char *vpri_host_get_swap_file(Object *obj, Error **errp)
{
    return g_strdup(VPRI_HOST(obj)->swap_file);
}

static void vpri_host_set_swap_file(Object *obj, const char *value,
                                    Error **errp)
{
    VpriHost *h = VPRI_HOST(obj);

    g_free(h->swap_file);
    h->swap_file = g_strdup(value);
}

/*
 * Once guest RAM is registered some of it may live only in the swap store:
 * the host must outlive the machine.
 */
static bool vpri_host_can_be_deleted(UserCreatable *uc)
{
    return !qatomic_read(&VPRI_HOST(uc)->mem_ready);
}

static void vpri_host_class_init(ObjectClass *oc, void *data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(oc);

    ucc->complete = vpri_host_complete;
    ucc->can_be_deleted = vpri_host_can_be_deleted;
    object_class_property_add_str(oc, "swap-file", vpri_host_get_swap_file,
                                  vpri_host_set_swap_file);
    object_class_property_set_description(oc, "swap-file",
        "file that holds evicted guest pages (default: an unlinked file "
        "in the run directory)");
    object_class_property_add_bool(oc, "x-fail-faults",
                                   vpri_host_get_fail_faults,
                                   vpri_host_set_fail_faults);
    object_class_property_add_bool(oc, "x-hold-faults",
                                   vpri_host_get_hold_faults,
                                   vpri_host_set_hold_faults);
}

static const TypeInfo vpri_host_info = {
    .name = TYPE_VPRI_HOST,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(VpriHost),
    .instance_init = vpri_host_init,
    .instance_finalize = vpri_host_finalize,
    .class_init = vpri_host_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void vpri_host_register_types(void)
{
    type_register_static(&vpri_host_info);
}

type_init(vpri_host_register_types)
