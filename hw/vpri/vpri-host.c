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
 * The top layer of vpri-host (vpri-host-internal.h): it calls the
 * residency, translation and pinning layers, and registers hooks with the
 * residency layer to keep guest-physical PA-BITMAP entries in step with
 * guest RAM.
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
#include "qapi/visitor.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "exec/address-spaces.h"
#include "qemu/log.h"
#include "migration/iolab/fork-server.h"
#include "hw/vpri/vpri-host.h"
#include "vpri-host-internal.h"
#include "trace.h"

QEMU_BUILD_BUG_ON(VPRI_HOST_MAX_DEVICES > VPRI_EVICT_MAX_SLOTS);
QEMU_BUILD_BUG_ON(VPRI_HOST_MAX_QUEUES > FAULT_RING_MAX_QUEUES);

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
    if (!VPRI_HOST(obj)->created) {
        error_setg(errp, "vpri-host '%s' is not created yet", id);
        return NULL;
    }
    return VPRI_HOST(obj);
}

int vpri_host_pin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp)
{
    return vpri_residency_pin_range(h->res, gpa, len, true, errp);
}

int vpri_host_unpin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp)
{
    return vpri_residency_pin_range(h->res, gpa, len, false, errp);
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

/*
 * Set a newly attached device's PA-BITMAP from the residency of RAM:
 * everything outside RAM stays readable and writable (MMIO, holes).
 * Under the BQL, like every eviction: no page changes state meanwhile but
 * by page-in, which raises the entry itself once the device is visible.
 */
static void vpri_host_sync_device_bitmap(VpriHost *h, VpriHostDevice *d)
{
    uint64_t pages = vpri_residency_guest_pages(h->res);

    vpri_pab_set_range(d->pab, 0, vpri_pab_npages(d->pab), PAB_READ_WRITE);
    for (uint64_t p = 0; p < pages; p++) {
        uint64_t gpa;

        if (!vpri_residency_page_resident(h->res, p) &&
            vpri_residency_page_to_gpa(h->res, p, &gpa) &&
            (gpa >> PAB_PAGE_SHIFT) < vpri_pab_npages(d->pab)) {
            vpri_pab_set_range(d->pab, gpa >> PAB_PAGE_SHIFT, 1,
                               PAB_NOT_PRESENT);
        }
    }
}

static PinDevKind vpri_host_pin_kind(VpriDmaKind kind)
{
    return kind == VPRI_DMA_BLOCK ? PIN_DEV_BLOCK : PIN_DEV_NIC;
}

int vpri_host_attach(VpriHost *h, DeviceState *dev, VpriDmaKind kind,
                     uint16_t nqueues, VpriFaultDoneFn *done, void *opaque,
                     Error **errp)
{
    const char *hid = object_get_canonical_path_component(OBJECT(h));
    uint64_t npages = vpri_host_dma_pages();
    VpriHostDevice *d = NULL;
    PaBitmap *pab;
    FaultRing *ring;
    VpriPinDevice *pin;
    uint32_t id;

    if (nqueues < 1 || nqueues > VPRI_HOST_MAX_QUEUES) {
        error_setg(errp, "vpri-host '%s' serves devices of 1..%d queues, "
                   "not %u", hid, VPRI_HOST_MAX_QUEUES, nqueues);
        return -1;
    }
    qemu_mutex_lock(&h->lock);
    for (id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (!h->devs[id].taken) {
            d = &h->devs[id];
            d->taken = true;
            break;
        }
    }
    qemu_mutex_unlock(&h->lock);
    if (!d) {
        error_setg(errp, "vpri-host '%s' already serves %d devices", hid,
                   VPRI_HOST_MAX_DEVICES);
        return -1;
    }

    pab = vpri_pab_new(npages);
    ring = vpri_fault_ring_new(id, h->ring_size, nqueues);
    pin = pab ? vpri_pin_attach(h->pin, id, vpri_host_pin_kind(kind),
                                dev->id, npages) : NULL;
    if (!pab || !ring || !pin) {
        error_setg(errp, "vpri-host '%s': no memory for the %s of a device",
                   hid, !pab ? "PA-BITMAP" : !ring ? "fault ring"
                                           : "access trackers");
        if (pin) {
            vpri_pin_detach(pin);
        }
        vpri_fault_ring_free(ring);
        vpri_pab_free(pab);
        qemu_mutex_lock(&h->lock);
        d->taken = false;
        qemu_mutex_unlock(&h->lock);
        return -1;
    }
    d->pab = pab;
    /* Everything is resident until the host evicts something. */
    vpri_host_sync_device_bitmap(h, d);

    /* Now handlers and hooks, which look at d->dev, see the device. */
    qemu_mutex_lock(&h->lock);
    d->dev = dev;
    d->host = h;
    d->nqueues = nqueues;
    d->kind = kind;
    d->done = done;
    d->done_opaque = opaque;
    d->ring = ring;
    d->pin = pin;
    d->done_bh = qemu_bh_new(vpri_host_done_bh, d);
    qemu_mutex_unlock(&h->lock);
    trace_vpri_host_attach(id, nqueues, kind);
    return id;
}

void vpri_host_detach(VpriHost *h, uint32_t dev_id)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);

    qemu_mutex_lock(&h->lock);
    d->dev = NULL;
    /*
     * A handler may be paging in for a record it popped, an eviction
     * lowering the device's entries: let them finish.
     */
    while (d->busy) {
        qemu_mutex_unlock(&h->lock);
        g_usleep(100);
        qemu_mutex_lock(&h->lock);
    }
    qemu_mutex_unlock(&h->lock);
    /* Handlers look devices up under the lock, so none uses it now. */
    if (d->xlat) {
        vpri_xlat_detach(d->xlat);
    }
    vpri_pin_detach(d->pin);
    qemu_bh_delete(d->done_bh);
    vpri_fault_ring_free(d->ring);
    vpri_pab_free(d->pab);
    memset(d, 0, sizeof(*d));
    trace_vpri_host_detach(dev_id);
}

unsigned vpri_host_free_slots(VpriHost *h)
{
    unsigned n = 0;

    qemu_mutex_lock(&h->lock);
    for (uint32_t id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        n += !h->devs[id].taken;
    }
    qemu_mutex_unlock(&h->lock);
    return n;
}

bool vpri_host_can_attach(VpriHost *h, Error **errp)
{
    if (vpri_host_free_slots(h)) {
        return true;
    }
    error_setg(errp, "vpri-host '%s' already serves %d devices",
               object_get_canonical_path_component(OBJECT(h)),
               VPRI_HOST_MAX_DEVICES);
    return false;
}

/*
 * For the IOMMU layer: the device's DMA addresses are IOVAs from now on,
 * and its PA-BITMAP and access tracker are indexed by IOVA page, starting
 * all not present.
 */
void vpri_host_set_dma_space(VpriHost *h, uint32_t dev_id, AddressSpace *as)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);
    uint64_t npages = MAX(vpri_pab_npages(d->pab),
                          VPRI_IOVA_BITMAP_BYTES >> PAB_PAGE_SHIFT);
    PaBitmap *pab, *old;
    VpriXlatDevice *x;

    if (as == &address_space_memory || d->xlat) {
        return;         /* guest-physical DMA: the bitmap is set already */
    }
    pab = vpri_pab_new(npages);
    if (!pab) {
        /*
         * Keep the guest-physical bitmap: the device's IOVAs then index it
         * as if they were guest-physical, so its faults still page in
         * through userfaultfd, only without the ATC's precision.
         */
        error_report("vpri-host: no memory for the IOVA PA-BITMAP of "
                     "device %u; its faults are served as guest-physical",
                     dev_id);
        return;
    }
    vpri_pab_set_range(pab, 0, npages, PAB_NOT_PRESENT);
    vpri_pin_retrack(d->pin, npages);
    x = vpri_xlat_attach(h->xlat, dev_id, pab, as);
    /* Together: the hooks leave translated devices' bitmaps alone. */
    qemu_mutex_lock(&h->lock);
    old = d->pab;
    d->pab = pab;
    d->xlat = x;
    qemu_mutex_unlock(&h->lock);
    vpri_pab_free(old);
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
        vpri_pin_note_dma(d->pin, addr, len, write);
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

    if (d->xlat) {
        return;     /* IOVAs are not what the policy ranks; see above */
    }
    vpri_pin_note_armed(d->pin, addr, len);
    /* A posted buffer is what a postcopy destination should fetch first */
    vpri_postcopy_prefetch(h->postcopy, dev_id, addr, len);
}

void vpri_host_prefetch(VpriHost *h, uint32_t dev_id, uint64_t addr,
                        uint64_t len)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);

    if (d->xlat) {
        return;     /* postcopy is refused behind a vIOMMU anyway */
    }
    vpri_postcopy_prefetch(h->postcopy, dev_id, addr, len);
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
    if (r == PAB_OK) {
        switch (vpri_residency_hold(h->res, hva, len, &offset)) {
        case VPRI_HOLD_OK:
            break;
        case VPRI_HOLD_NOT_RESIDENT:
            *fault_page = (addr + offset) & PAB_PAGE_MASK;
            r = PAB_FAULT;
            break;
        case VPRI_HOLD_TOO_MANY:
            qemu_log_mask(LOG_GUEST_ERROR, "vpri-host: device %u: a page of "
                          "the DMA at 0x%" PRIx64 " is held by too many "
                          "DMAs at once\n", dev_id, addr);
            r = PAB_OUT_OF_RANGE;
            break;
        }
    }
    vpri_host_dma_end(h, dev_id, token);
    return r;
}

void vpri_host_dma_release(VpriHost *h, void *hva, uint64_t len)
{
    vpri_residency_release(h->res, hva, len);
}

void vpri_host_dma_end(VpriHost *h, uint32_t dev_id, PabDmaToken token)
{
    vpri_pab_dma_end(vpri_host_dev(h, dev_id)->pab, token);
}

void vpri_host_account_stall(VpriHost *h, uint32_t dev_id, uint64_t ns)
{
    qatomic_add(&vpri_host_dev(h, dev_id)->stall_ns, ns);
}

static void vpri_host_set_gpa_entries_locked(VpriHost *h, uint64_t pfn,
                                             bool present)
{
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];

        if (d->dev && !d->xlat && pfn < vpri_pab_npages(d->pab)) {
            if (present) {
                vpri_pab_raise_range(d->pab, pfn, 1, PAB_READ_WRITE);
            } else {
                vpri_pab_lower_range(d->pab, pfn, 1, PAB_NOT_PRESENT);
            }
        }
    }
}

/*
 * Whether the access that faulted on @page would now pass: its PA-BITMAP
 * entry grants it and the page is resident.  Called under h->lock.  A
 * handler raises the entry before it completes the record, under that
 * lock, so a raise that comes after the completion sees the entry raised
 * and a raise that comes before it finds the record and joins it.
 * Not behind a vIOMMU: there the fault has already queued its translation
 * (vpri_xlat_translate_fault), which only a record's service consumes.
 */
static bool vpri_host_fault_answered(VpriHost *h, VpriHostDevice *d,
                                     uint64_t page, bool write)
{
    uint64_t pfn = page >> PAB_PAGE_SHIFT, rpage;
    PabState st;

    if (pfn >= vpri_pab_npages(d->pab)) {
        return false;
    }
    st = vpri_pab_get(d->pab, pfn);
    if (st == PAB_NOT_PRESENT && vpri_postcopy_placed(h->postcopy, page)) {
        /*
         * A postcopy destination: QEMU placed the page, and the vCPUs
         * see it, but our waker has not raised its entries yet.  Raise
         * them now, as the waker will: the device sees what the driver
         * that just wrote the page sees, and the queue does not wait
         * for a page that is here.
         */
        vpri_host_set_gpa_entries_locked(h, pfn, true);
        trace_vpri_fault_placed(page);
        return true;
    }
    if (st != PAB_READ_WRITE && (write || st != PAB_READ_ONLY)) {
        return false;
    }
    return !vpri_residency_gpa_to_page(h->res, page, &rpage) ||
           vpri_residency_page_resident(h->res, rpage);
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
        vpri_xlat_translate_fault(d->xlat, page, write);
    }
    qemu_mutex_lock(&h->lock);
    if (!d->xlat && vpri_host_fault_answered(h, d, page, write)) {
        /*
         * The queue saw the page absent, but a handler paged it in and
         * retired its record before this raise took the lock.  A new
         * record would be a duplicate that the handler answers at once:
         * resume the queue instead.
         */
        uint64_t waiters[VPRI_HOST_QUEUE_WORDS] = { 0 };

        waiters[queue / 64] = 1ULL << (queue % 64);
        vpri_host_wake(d, waiters, true);
        qemu_mutex_unlock(&h->lock);
        trace_vpri_fault_answered(dev_id, queue, page, write);
        return;
    }
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
        return vpri_xlat_serve(d->xlat, rec->page_addr);
    }
    vpri_pin_note_fault(d->pin, rec->page_addr);
    if (!vpri_residency_page_in_gpa(h->res, rec->page_addr)) {
        return FAULT_STATUS_FAILED;
    }
    vpri_pab_raise_range(d->pab, rec->page_addr >> PAB_PAGE_SHIFT, 1,
                    PAB_READ_WRITE);
    return FAULT_STATUS_RESOLVED;
}

/* For postcopy (VpriPostcopyHooks): see vpri-postcopy.h */
static void vpri_host_complete_later(VpriHost *h, uint32_t dev_id,
                                     uint16_t queue, uint64_t seq,
                                     uint64_t page, FaultStatus status)
{
    VpriHostDevice *d = vpri_host_dev(h, dev_id);
    uint64_t waiters[VPRI_HOST_QUEUE_WORDS] = { 0 };
    FaultCompletion c = { .seq = seq, .status = status };

    qemu_mutex_lock(&h->lock);
    if (d->dev) {
        vpri_fault_ring_complete(d->ring, &c, get_clock_realtime(), NULL,
                                 waiters);
        qatomic_inc(&h->device_faults);
        trace_vpri_fault_resolve(dev_id, queue, page, status);
        vpri_host_wake(d, waiters, status == FAULT_STATUS_RESOLVED);
    }
    qemu_mutex_unlock(&h->lock);
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
        d->busy++;
        qemu_mutex_unlock(&h->lock);

        c.seq = rec.seq;
        switch (vpri_postcopy_serve(h->postcopy, id, &rec)) {
        case VPRI_PC_WAIT:
            /* In service until the page arrives: vpri-postcopy.c */
            qemu_mutex_lock(&h->lock);
            d->busy--;
            qemu_mutex_unlock(&h->lock);
            return true;
        case VPRI_PC_FAIL:
            c.status = FAULT_STATUS_FAILED;
            break;
        default:
            c.status = vpri_host_serve(h, d, &rec);
        }

        qemu_mutex_lock(&h->lock);
        d->busy--;
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

static void vpri_host_kick_handlers(VpriHost *h)
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
            { .fd = vpri_residency_uffd(h->res), .events = POLLIN },
        };

        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            error_report("vpri-host: poll: %s", strerror(errno));
            break;
        }
        if (fds[0].revents & POLLIN) {
            event_notifier_test_and_clear(wake);
        }
        if (fds[1].revents & POLLIN) {
            vpri_residency_serve_uffd(h->res);
        }
        while (vpri_host_serve_one(h)) {
            /* drain the rings */
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Hooks into the residency layer: guest-physical entries             */

/* What one eviction batch holds of the host's devices. */
typedef struct VpriHostEvictCtx {
    VpriEvictBatches *eb;
    uint64_t devs;              /* slots kept busy until the flush */
} VpriHostEvictCtx;

QEMU_BUILD_BUG_ON(VPRI_HOST_MAX_DEVICES > 64);  /* VpriHostEvictCtx.devs */

/* Lower the pages' entries in every device indexed by guest-physical page. */
static void *vpri_host_evict_lower(void *opaque, const uint64_t *pages,
                                   const uint64_t *gpas, unsigned n)
{
    VpriHost *h = opaque;
    VpriHostEvictCtx *c = g_new0(VpriHostEvictCtx, 1);

    c->eb = vpri_evict_batches_new();
    qemu_mutex_lock(&h->lock);
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];

        if (!d->dev || d->xlat) {
            continue;   /* translated devices: the IOMMU layer's hook */
        }
        d->busy++;
        c->devs |= 1ULL << id;
        for (unsigned i = 0; i < n; i++) {
            uint64_t pfn = gpas[i] >> PAB_PAGE_SHIFT;

            if (pfn < vpri_pab_npages(d->pab)) {
                vpri_evict_batches_lower(c->eb, id, d->pab, pfn);
            }
        }
    }
    qemu_mutex_unlock(&h->lock);
    /* Outside the lock: a fence waits for DMAs in flight. */
    vpri_evict_batches_sync(c->eb);
    return c;
}

static void vpri_host_evict_flush(void *opaque, void *ctx, uint64_t *fences,
                                  uint64_t *deferred)
{
    VpriHost *h = opaque;
    VpriHostEvictCtx *c = ctx;

    vpri_evict_batches_finish(c->eb, fences, deferred);
    qemu_mutex_lock(&h->lock);
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (c->devs & (1ULL << id)) {
            h->devs[id].busy--;
        }
    }
    qemu_mutex_unlock(&h->lock);
    g_free(c);
}

/*
 * Raise the page's entry in every device indexed by guest-physical page;
 * translated devices fault it back in through their ATC.
 */
static void vpri_host_set_gpa_entries(VpriHost *h, uint64_t gpa, bool present)
{
    qemu_mutex_lock(&h->lock);
    vpri_host_set_gpa_entries_locked(h, gpa >> PAB_PAGE_SHIFT, present);
    qemu_mutex_unlock(&h->lock);
}

static void vpri_host_fence_devices(VpriHost *h)
{
    PaBitmap *pabs[VPRI_HOST_MAX_DEVICES];
    unsigned n = 0;

    /* Under the BQL, so no device detaches meanwhile. */
    qemu_mutex_lock(&h->lock);
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (h->devs[id].dev && !h->devs[id].xlat) {
            pabs[n++] = h->devs[id].pab;
        }
    }
    qemu_mutex_unlock(&h->lock);
    /* Outside the lock: a fence waits for DMAs in flight. */
    for (unsigned i = 0; i < n; i++) {
        vpri_pab_fence(pabs[i]);
    }
}

static size_t vpri_host_pinned_pages(VpriHost *h, uint64_t *pages,
                                     size_t max)
{
    return vpri_pin_pinned_pages(h->pin, pages, max);
}

/* What postcopy asks of the host: vpri-postcopy.c calls it only so */
static const VpriPostcopyHooks vpri_host_postcopy_hooks = {
    .complete_later = vpri_host_complete_later,
    .set_gpa_entries = vpri_host_set_gpa_entries,
    .fence_devices = vpri_host_fence_devices,
    .pinned_pages = vpri_host_pinned_pages,
};

static void vpri_host_page_resident(void *opaque, uint64_t page, uint64_t gpa)
{
    vpri_host_set_gpa_entries(opaque, gpa, true);
}

/* Guest RAM is set up: wake the handlers to watch the userfaultfd. */
static void vpri_host_ram_ready(void *opaque)
{
    vpri_host_kick_handlers(opaque);
}

static const VpriResidencyHooks vpri_host_residency_hooks = {
    .evict_lower = vpri_host_evict_lower,
    .evict_flush = vpri_host_evict_flush,
    .page_resident = vpri_host_page_resident,
    .ready = vpri_host_ram_ready,
};

/* ------------------------------------------------------------------ */
/* QOM                                                                */

static const char *vpri_host_id(VpriHost *h)
{
    const char *id = object_get_canonical_path_component(OBJECT(h));

    return id ? id : "(unnamed)";
}

static void vpri_host_start_handlers(VpriHost *h)
{
    for (uint32_t i = 0; i < h->nhandlers; i++) {
        g_autofree char *name = g_strdup_printf("vpri-handler%u", i);

        event_notifier_init(&h->handler_wake[i], false);
        qemu_thread_create(&h->threads[i], name, vpri_host_handler_thread,
                           &h->handler_args[i], QEMU_THREAD_JOINABLE);
    }
}

/*
 * In a child of x-iolab-fork: the handler threads stayed in the template.
 * The child starts its own, with notifiers of its own (the template's
 * would wake the template's handlers), after the residency layer has a
 * userfaultfd of the child's memory for them to watch.  The template's
 * handlers were idle in poll(), holding no lock, when it forked.
 */
static void vpri_host_fork_child(Notifier *n, void *data)
{
    VpriHost *h = container_of(n, VpriHost, fork_child);

    vpri_residency_fork_child(h->res);
    for (uint32_t i = 0; i < h->nhandlers; i++) {
        event_notifier_cleanup(&h->handler_wake[i]);
    }
    vpri_host_start_handlers(h);
}

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
    /* First: a refusal leaves nothing half-built. */
    h->postcopy = vpri_postcopy_new(h, &vpri_host_postcopy_hooks, errp);
    if (!h->postcopy) {
        return;
    }
    /* Bottom up; hooks are registered in the order they are to run. */
    h->res = vpri_residency_new(vpri_host_id(h), h->swap_file);
    h->xlat = vpri_xlat_new(h->res);
    vpri_pin_bind(h->pin, h->res, vpri_host_id(h));
    vpri_residency_add_hooks(h->res, &vpri_host_residency_hooks, h);

    h->threads = g_new0(QemuThread, h->nhandlers);
    h->handler_wake = g_new0(EventNotifier, h->nhandlers);
    h->handler_args = g_new0(VpriHandlerArg, h->nhandlers);
    for (uint32_t i = 0; i < h->nhandlers; i++) {
        h->handler_args[i] = (VpriHandlerArg) { .host = h, .index = i };
    }
    vpri_host_start_handlers(h);
    h->fork_child.notify = vpri_host_fork_child;
    iolab_fork_add_child_notifier(&h->fork_child);
    h->created = true;
    /* Last: with object-add at run time, guest RAM is set up right here. */
    vpri_residency_start(h->res);
}

/*
 * handlers, ring-size and swap-file size what complete() builds: they
 * cannot change afterwards (handler threads and rings exist, devices
 * index the handlers by them).
 */
static bool vpri_host_check_settable(VpriHost *h, const char *name,
                                     Error **errp)
{
    if (h->created) {
        error_setg(errp, "vpri-host '%s': '%s' cannot change once the host "
                   "is created", vpri_host_id(h), name);
        return false;
    }
    return true;
}

static void vpri_host_get_u32(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    uint32_t *field = opaque;

    visit_type_uint32(v, name, field, errp);
}

static void vpri_host_set_u32(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    uint32_t *field = opaque;
    uint32_t value;

    if (!vpri_host_check_settable(VPRI_HOST(obj), name, errp) ||
        !visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    *field = value;
}

static bool vpri_host_get_postcopy_prefetch(Object *obj, Error **errp)
{
    return qatomic_read(&VPRI_HOST(obj)->postcopy_prefetch);
}

/* Settable at any time: it is read at each prefetch */
static void vpri_host_set_postcopy_prefetch(Object *obj, bool value,
                                            Error **errp)
{
    qatomic_set(&VPRI_HOST(obj)->postcopy_prefetch, value);
}

static void vpri_host_init(Object *obj)
{
    VpriHost *h = VPRI_HOST(obj);

    qemu_mutex_init(&h->lock);
    h->nhandlers = 2;
    h->postcopy_prefetch = true;
    h->ring_size = 64;
    h->pin = vpri_pin_new();
    /* For tests, settable at any time: see vpri_postcopy_placed() */
    object_property_add_uint32_ptr(obj, "x-postcopy-waker-delay-ms",
                                   &h->postcopy_waker_delay_ms,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add(obj, "handlers", "uint32", vpri_host_get_u32,
                        vpri_host_set_u32, NULL, &h->nhandlers);
    object_property_set_description(obj, "handlers",
        "fault handler threads, 1..16 (default 2); fixed at creation");
    object_property_add(obj, "ring-size", "uint32", vpri_host_get_u32,
                        vpri_host_set_u32, NULL, &h->ring_size);
    object_property_set_description(obj, "ring-size",
        "records in each device's fault ring (default 64); fixed at "
        "creation");
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

static char *vpri_host_get_pin_policy(Object *obj, Error **errp)
{
    return g_strdup(vpri_pin_get_policy(VPRI_HOST(obj)->pin));
}

static void vpri_host_set_pin_policy(Object *obj, const char *value,
                                     Error **errp)
{
    vpri_pin_set_policy(VPRI_HOST(obj)->pin, value, errp);
}

static char *vpri_host_get_pin_budget(Object *obj, Error **errp)
{
    return vpri_pin_get_budget(VPRI_HOST(obj)->pin);
}

static void vpri_host_set_pin_budget(Object *obj, const char *value,
                                     Error **errp)
{
    vpri_pin_set_budget(VPRI_HOST(obj)->pin, value, errp);
}

static void vpri_host_finalize(Object *obj)
{
    VpriHost *h = VPRI_HOST(obj);

    if (h->fork_child.notify) {
        iolab_fork_remove_child_notifier(&h->fork_child);
    }
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
    }
    /* Top down. */
    vpri_postcopy_free(h->postcopy);
    vpri_pin_free(h->pin);
    vpri_xlat_free(h->xlat);
    vpri_residency_free(h->res);
    qemu_mutex_destroy(&h->lock);
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

    if (!vpri_host_check_settable(h, "swap-file", errp)) {
        return;
    }
    g_free(h->swap_file);
    h->swap_file = g_strdup(value);
}

/*
 * Devices hold the host through their link property and use it until
 * they go; and once guest RAM is registered some of it may live only in
 * the swap store: then the host must outlive the machine.
 */
static bool vpri_host_can_be_deleted(UserCreatable *uc)
{
    VpriHost *h = VPRI_HOST(uc);

    return vpri_host_free_slots(h) == VPRI_HOST_MAX_DEVICES &&
           !(h->res && vpri_residency_ready(h->res));
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
        "in the temporary directory, $TMPDIR or /tmp); fixed at creation");
    object_class_property_add_str(oc, "pin-policy", vpri_host_get_pin_policy,
                                  vpri_host_set_pin_policy);
    object_class_property_set_description(oc, "pin-policy",
        "DMA pinning policy: none, lru or adp (docs/vpri-adp.rst)");
    object_class_property_add_str(oc, "pin-budget", vpri_host_get_pin_budget,
                                  vpri_host_set_pin_budget);
    object_class_property_set_description(oc, "pin-budget",
        "most guest RAM the pinning policy pins, in percent (default 5.2)");
    object_class_property_add_bool(oc, "postcopy-prefetch",
                                   vpri_host_get_postcopy_prefetch,
                                   vpri_host_set_postcopy_prefetch);
    object_class_property_set_description(oc, "postcopy-prefetch",
        "on a postcopy destination, ask for the pages the devices will "
        "need (rings, carried requests, posted receive buffers) before "
        "they fault on them (default on; docs/vpri-host.rst)");
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

static const TypeInfo vpri_host_client_info = {
    .name = TYPE_VPRI_HOST_CLIENT,
    .parent = TYPE_INTERFACE,
    .class_size = sizeof(VpriHostClientClass),
};

static void vpri_host_register_types(void)
{
    type_register_static(&vpri_host_info);
    type_register_static(&vpri_host_client_info);
}

type_init(vpri_host_register_types)
