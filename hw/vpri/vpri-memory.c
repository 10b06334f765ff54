/*
 * vpri-host: guest RAM residency, eviction and page-in
 *
 * Eviction is real: the page's content goes to the swap store and the
 * memory is discarded from the QEMU process (MADV_DONTNEED), so the
 * process's RSS drops.  Guest RAM is registered with userfaultfd, so
 * whoever touches an evicted page next (a vCPU under TCG or KVM, QEMU's
 * own device code, the kernel on QEMU's behalf) blocks in a fault that a
 * handler thread serves from the swap store: the unmodified guest keeps
 * running.  vpri devices never get that far: their PA-BITMAP says the page
 * is not present, so they raise a sideband fault instead of touching it.
 *
 * Evicting one page, in this order (docs/vpri-host.rst):
 *   1. mark it EVICTING: page-ins of it wait;
 *   2. lower its PA-BITMAP entry in every device to not-present, then fence
 *      each device: no DMA that began under the old entry is in flight
 *      (read-only entries: lowered and fenced lazily, before step 4's
 *      discard, see vpri_mem_evict_batch());
 *   3. write-protect it with userfaultfd: a CPU write now blocks, so the
 *      copy taken next cannot go stale;
 *   4. copy it to the swap store, then discard it;
 *   5. mark it EVICTED and wake the waiters, which page it back in.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/madvise.h"
#include "qemu/memalign.h"
#include "qemu/main-loop.h"
#include "qemu/userfaultfd.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "exec/cpu-common.h"
#include "exec/address-spaces.h"
#include "hw/boards.h"
#include "system/system.h"
#include "hw/vpri/vpri-host-internal.h"
#include "trace.h"

#include <linux/userfaultfd.h>
#include <sys/eventfd.h>

#define VPRI_PAGE_SIZE (1ULL << PAB_PAGE_SHIFT)

/* Pages evicted per fence round. */
#define VPRI_EVICT_BATCH 256

/* ------------------------------------------------------------------ */
/* Guest-physical <-> RAM page                                        */

static bool vpri_mem_gpa_to_page(VpriHost *h, uint64_t gpa, uint64_t *page)
{
    for (unsigned i = 0; i < h->nsegs; i++) {
        VpriRamSegment *s = &h->segs[i];

        if (gpa >= s->gpa && gpa - s->gpa < s->len) {
            *page = (s->ram_offset + (gpa - s->gpa)) >> PAB_PAGE_SHIFT;
            return true;
        }
    }
    return false;
}

static bool vpri_mem_page_to_gpa(VpriHost *h, uint64_t page, uint64_t *gpa)
{
    uint64_t off = page << PAB_PAGE_SHIFT;

    for (unsigned i = 0; i < h->nsegs; i++) {
        VpriRamSegment *s = &h->segs[i];

        if (off >= s->ram_offset && off - s->ram_offset < s->len) {
            *gpa = s->gpa + (off - s->ram_offset);
            return true;
        }
    }
    return false;
}

static void *vpri_mem_hva(VpriHost *h, uint64_t page)
{
    return h->ram_host + (page << PAB_PAGE_SHIFT);
}

/*
 * Raise the PA-BITMAP entry of @page in every attached device indexed by
 * guest-physical address.  Lowering goes through eviction batches
 * (vpri_mem_batch_lower); translated devices fault the page back in
 * through their ATC.
 */
static void vpri_mem_raise_entries(VpriHost *h, uint64_t page)
{
    uint64_t gpa;

    if (!vpri_mem_page_to_gpa(h, page, &gpa)) {
        return;
    }
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];

        if (!d->dev || d->xlat ||
            (gpa >> PAB_PAGE_SHIFT) >= vpri_pab_npages(d->pab)) {
            continue;
        }
        vpri_pab_raise_range(d->pab, gpa >> PAB_PAGE_SHIFT, 1, PAB_READ_WRITE);
    }
}

void vpri_host_sync_device_bitmap(VpriHost *h, VpriHostDevice *d)
{
    /* Everything outside RAM stays readable and writable (MMIO, holes). */
    vpri_pab_set_range(d->pab, 0, vpri_pab_npages(d->pab), PAB_READ_WRITE);
    if (!h->mem_ready) {
        return;
    }
    for (uint64_t p = 0; p < h->ram_pages; p++) {
        uint64_t gpa;

        if (qatomic_read(&h->page_state[p]) != VPRI_PAGE_RESIDENT &&
            vpri_mem_page_to_gpa(h, p, &gpa) &&
            (gpa >> PAB_PAGE_SHIFT) < vpri_pab_npages(d->pab)) {
            vpri_pab_set_range(d->pab, gpa >> PAB_PAGE_SHIFT, 1, PAB_NOT_PRESENT);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Page-in                                                            */

/*
 * Make RAM page @page resident.  Runs in handler threads (and in tests in
 * the main loop); never takes the BQL, since the thread that faulted may
 * hold it.
 */
static bool vpri_mem_page_in_page(VpriHost *h, uint64_t page)
{
    uint8_t *buf;
    void *hva = vpri_mem_hva(h, page);
    int64_t t0;
    int r;

    qemu_mutex_lock(&h->mem_lock);
    for (;;) {
        uint8_t st = h->page_state[page];

        if (st == VPRI_PAGE_RESIDENT) {
            qemu_mutex_unlock(&h->mem_lock);
            return true;
        }
        if (st == VPRI_PAGE_EVICTED) {
            break;
        }
        /* EVICTING or PAGING_IN: someone else will settle it. */
        qemu_cond_wait(&h->mem_cond, &h->mem_lock);
    }
    qatomic_set(&h->page_state[page], VPRI_PAGE_PAGING_IN);
    qemu_mutex_unlock(&h->mem_lock);

    t0 = get_clock_realtime();
    buf = qemu_memalign(VPRI_PAGE_SIZE, VPRI_PAGE_SIZE);
    r = vpri_swap_store_get(h->swap, page, buf);
    if (r == 0) {
        /*
         * Install the page but wake nobody yet: the bookkeeping below must
         * be done before a woken thread can look at it.
         */
        r = uffd_copy_page(h->uffd, hva, buf, VPRI_PAGE_SIZE, true);
        if (r == -EEXIST) {
            r = 0;      /* only we install pages; be safe anyway */
        }
    }

    qemu_mutex_lock(&h->mem_lock);
    if (r == 0) {
        vpri_swap_store_drop(h->swap, page);
        qatomic_set(&h->page_state[page], VPRI_PAGE_RESIDENT);
        h->evicted_pages--;
        h->pageins++;
        vpri_mem_raise_entries(h, page);
    } else {
        qatomic_set(&h->page_state[page], VPRI_PAGE_EVICTED);
        error_report("vpri-host: cannot page in RAM page 0x%" PRIx64 ": %s",
                     page, strerror(-r));
    }
    qemu_cond_broadcast(&h->mem_cond);
    qemu_mutex_unlock(&h->mem_lock);
    if (r == 0) {
        uffd_wakeup(h->uffd, hva, VPRI_PAGE_SIZE);
    }
    qemu_vfree(buf);
    vpri_latency_histogram_record(h->pagein_latency, get_clock_realtime() - t0);
    trace_vpri_page_in(page, r);
    return r == 0;
}

bool vpri_host_page_in_ram(VpriHost *h, uint64_t page)
{
    return !h->mem_ready || vpri_mem_page_in_page(h, page);
}

bool vpri_host_page_resident(VpriHost *h, uint64_t page)
{
    return !h->mem_ready ||
           qatomic_read(&h->page_state[page]) == VPRI_PAGE_RESIDENT;
}

bool vpri_host_page_in(VpriHost *h, uint64_t gpa)
{
    uint64_t page;

    if (!h->mem_ready) {
        return true;
    }
    if (!vpri_mem_gpa_to_page(h, gpa, &page)) {
        /* Not RAM: nothing to page in, the entry is simply raised. */
        return true;
    }
    return vpri_mem_page_in_page(h, page);
}

/* A thread touched @addr in guest RAM through the MMU: serve it. */
static void vpri_mem_cpu_fault(VpriHost *h, uint64_t addr, bool wp)
{
    uint64_t page = (addr - (uint64_t)(uintptr_t)h->ram_host) >>
                    PAB_PAGE_SHIFT;
    void *hva = vpri_mem_hva(h, page);
    int64_t t0 = get_clock_realtime();

    if (page >= h->ram_pages) {
        error_report("vpri-host: fault at 0x%" PRIx64 " outside guest RAM",
                     addr);
        return;
    }
    qatomic_inc(&h->cpu_faults);
    qemu_mutex_lock(&h->mem_lock);
    while (h->page_state[page] == VPRI_PAGE_EVICTING) {
        qemu_cond_wait(&h->mem_cond, &h->mem_lock);
    }
    if (h->page_state[page] == VPRI_PAGE_RESIDENT) {
        qemu_mutex_unlock(&h->mem_lock);
        if (wp) {
            /* The eviction backed off: lift the protection. */
            uffd_change_protection(h->uffd, hva, VPRI_PAGE_SIZE, false, false);
        } else if (uffd_zero_page(h->uffd, hva, VPRI_PAGE_SIZE, false)) {
            /* Never touched, and populated by someone else meanwhile. */
            uffd_wakeup(h->uffd, hva, VPRI_PAGE_SIZE);
        }
    } else {
        qemu_mutex_unlock(&h->mem_lock);
        vpri_mem_page_in_page(h, page);
    }
    vpri_latency_histogram_record(h->cpu_fault_latency,
                             get_clock_realtime() - t0);
    trace_vpri_cpu_fault(page, wp);
}

/* Handler threads call this when the userfaultfd is readable. */
void vpri_host_serve_uffd(VpriHost *h)
{
    struct uffd_msg msg[16];
    int n;

    if (h->uffd < 0) {
        return;
    }
    n = uffd_read_events(h->uffd, msg, ARRAY_SIZE(msg));
    for (int i = 0; i < n; i++) {
        if (msg[i].event != UFFD_EVENT_PAGEFAULT) {
            continue;
        }
        vpri_mem_cpu_fault(h, msg[i].arg.pagefault.address,
                           msg[i].arg.pagefault.flags &
                           UFFD_PAGEFAULT_FLAG_WP);
    }
}

/* ------------------------------------------------------------------ */
/* Eviction                                                           */

/*
 * Lower the entries of @page in every device through the devices' eviction
 * batches: read-write entries at once, read-only ones lazily (pa-bitmap.h).
 */
static void vpri_mem_batch_lower(VpriHost *h, PabBatch **pb, uint64_t page)
{
    uint64_t gpa;

    /* Devices behind a vIOMMU: their IOVA aliases of the page. */
    vpri_iommu_lower_page(h, page, pb);
    if (!vpri_mem_page_to_gpa(h, page, &gpa)) {
        return;
    }
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (pb[id] && !h->devs[id].xlat &&
            (gpa >> PAB_PAGE_SHIFT) < vpri_pab_npages(h->devs[id].pab)) {
            vpri_pab_batch_lower(pb[id], gpa >> PAB_PAGE_SHIFT);
        }
    }
}

/* Evict the pages in @batch (all marked EVICTING by the caller). */
static uint64_t vpri_mem_evict_batch(VpriHost *h, const uint64_t *batch,
                                     unsigned n)
{
    PabBatch *pb[VPRI_HOST_MAX_DEVICES] = { NULL };
    bool ok[VPRI_EVICT_BATCH];
    uint64_t evicted = 0;

    /*
     * 2. Lower the entries.  Read-write ones are lowered now and fenced
     * once for the batch before any content is copied; read-only ones (a
     * DMA still using one can only read, and the content stays until the
     * discard) are lowered and fenced at the flush, after the copies and
     * before the discards.  Lazy invalidation: docs/vpri-core.rst.
     */
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (h->devs[id].dev) {
            pb[id] = vpri_pab_batch_new(h->devs[id].pab, VPRI_EVICT_BATCH, true);
            if (!pb[id]) {
                error_report("vpri-host: out of memory for an eviction "
                             "batch");
                abort();
            }
        }
    }
    for (unsigned i = 0; i < n; i++) {
        vpri_mem_batch_lower(h, pb, batch[i]);
    }
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (pb[id]) {
            vpri_pab_batch_sync(pb[id]);
        }
    }

    for (unsigned i = 0; i < n; i++) {
        void *hva = vpri_mem_hva(h, batch[i]);

        /* 3. From here a CPU write waits for us. */
        ok[i] = uffd_change_protection(h->uffd, hva, VPRI_PAGE_SIZE, true,
                                       true) == 0;
        /* 4. The content is now stable: save it... */
        ok[i] = ok[i] && vpri_swap_store_put(h->swap, batch[i], hva) == 0;
    }
    /* ... and once no DMA can see the pages any more, drop them. */
    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        if (pb[id]) {
            PabBatchStats st;

            vpri_pab_batch_flush(pb[id]);
            vpri_pab_batch_get_stats(pb[id], &st);
            h->evict_fences += st.fences;
            h->evict_deferred += st.deferred;
            vpri_pab_batch_free(pb[id]);
        }
    }

    for (unsigned i = 0; i < n; i++) {
        uint64_t page = batch[i];
        void *hva = vpri_mem_hva(h, page);

        ok[i] = ok[i] &&
                qemu_madvise(hva, VPRI_PAGE_SIZE, QEMU_MADV_DONTNEED) == 0;
        qemu_mutex_lock(&h->mem_lock);
        if (ok[i]) {
            qatomic_set(&h->page_state[page], VPRI_PAGE_EVICTED);
            h->evicted_pages++;
            h->evictions++;
            evicted++;
        } else {
            /* Back off: the page stays, and so does its content. */
            uffd_change_protection(h->uffd, hva, VPRI_PAGE_SIZE, false,
                                   false);
            vpri_swap_store_drop(h->swap, page);
            qatomic_set(&h->page_state[page], VPRI_PAGE_RESIDENT);
            vpri_mem_raise_entries(h, page);
        }
        /* 5. Writers blocked on the protection now page it back in. */
        qemu_cond_broadcast(&h->mem_cond);
        qemu_mutex_unlock(&h->mem_lock);
        trace_vpri_evict(page, ok[i]);
    }
    return evicted;
}

uint64_t vpri_host_reclaim(VpriHost *h, uint64_t npages, Error **errp)
{
    uint64_t batch[VPRI_EVICT_BATCH];
    uint64_t evicted = 0;
    uint64_t scanned = 0;

    if (!h->mem_ready) {
        error_setg(errp, "vpri-host '%s' has no guest RAM to reclaim%s%s",
                   object_get_canonical_path_component(OBJECT(h)),
                   h->mem_error ? ": " : "",
                   h->mem_error ? h->mem_error : "");
        return 0;
    }
    qemu_mutex_lock(&h->reclaim_lock);
    while (evicted < npages && scanned < h->ram_pages) {
        unsigned n = 0;

        /* 1. Pick resident, unpinned RAM pages round-robin. */
        qemu_mutex_lock(&h->mem_lock);
        while (n < VPRI_EVICT_BATCH && evicted + n < npages &&
               scanned < h->ram_pages) {
            uint64_t p = h->clock_hand;
            uint64_t gpa;

            h->clock_hand = (h->clock_hand + 1) % h->ram_pages;
            scanned++;
            if (h->page_state[p] != VPRI_PAGE_RESIDENT || h->pin_count[p] ||
                h->hold_count[p] ||
                !vpri_mem_page_to_gpa(h, p, &gpa)) {
                continue;
            }
            qatomic_set(&h->page_state[p], VPRI_PAGE_EVICTING);
            batch[n++] = p;
        }
        qemu_mutex_unlock(&h->mem_lock);
        if (n) {
            evicted += vpri_mem_evict_batch(h, batch, n);
        }
    }
    qemu_mutex_unlock(&h->reclaim_lock);
    return evicted;
}

/* ------------------------------------------------------------------ */
/* Pinning                                                            */

bool vpri_host_gpa_to_ram_page(VpriHost *h, uint64_t gpa, uint64_t *page)
{
    return qatomic_read(&h->mem_ready) && vpri_mem_gpa_to_page(h, gpa, page);
}

bool vpri_host_pin_ram_page(VpriHost *h, uint64_t page, bool pin)
{
    if (page >= h->ram_pages || (pin && !vpri_mem_page_in_page(h, page))) {
        return false;
    }
    qemu_mutex_lock(&h->mem_lock);
    if (pin) {
        if (h->pin_count[page]++ == 0) {
            h->pinned_pages++;
        }
    } else if (h->pin_count[page] && --h->pin_count[page] == 0) {
        h->pinned_pages--;
    }
    qemu_mutex_unlock(&h->mem_lock);
    return true;
}

static int vpri_mem_pin_range(VpriHost *h, uint64_t gpa, uint64_t len,
                              bool pin, Error **errp)
{
    uint64_t first, last;

    if (!h->mem_ready) {
        error_setg(errp, "vpri-host '%s' has no guest RAM",
                   object_get_canonical_path_component(OBJECT(h)));
        return -ENODEV;
    }
    if (!len || !vpri_mem_gpa_to_page(h, gpa, &first) ||
        !vpri_mem_gpa_to_page(h, gpa + len - 1, &last) || last < first) {
        error_setg(errp, "range 0x%" PRIx64 "+0x%" PRIx64
                   " is not guest RAM", gpa, len);
        return -EINVAL;
    }
    for (uint64_t p = first; p <= last; p++) {
        if (pin) {
            /* A pinned page must be resident: bring it in first. */
            if (!vpri_mem_page_in_page(h, p)) {
                error_setg(errp, "cannot page in 0x%" PRIx64, p);
                return -EIO;
            }
        }
        qemu_mutex_lock(&h->mem_lock);
        if (pin) {
            if (h->pin_count[p]++ == 0) {
                h->pinned_pages++;
            }
        } else if (h->pin_count[p] && --h->pin_count[p] == 0) {
            h->pinned_pages--;
        }
        qemu_mutex_unlock(&h->mem_lock);
    }
    return 0;
}

bool vpri_host_hva_to_page(VpriHost *h, const void *hva, uint64_t *page)
{
    const uint8_t *p = hva;

    if (!qatomic_read(&h->mem_ready) || p < h->ram_host ||
        (uint64_t)(p - h->ram_host) >= h->ram_pages << PAB_PAGE_SHIFT) {
        return false;
    }
    *page = (p - h->ram_host) >> PAB_PAGE_SHIFT;
    return true;
}

/* The RAM pages of [@hva, @hva + @len), clipped to managed RAM. */
static bool vpri_mem_hva_to_pages(VpriHost *h, void *hva, uint64_t len,
                                  uint64_t *first, uint64_t *npages)
{
    uint64_t last;

    if (!len || !vpri_host_hva_to_page(h, hva, first)) {
        return false;
    }
    if (!vpri_host_hva_to_page(h, (uint8_t *)hva + len - 1, &last)) {
        last = h->ram_pages - 1;
    }
    *npages = last - *first + 1;
    return true;
}

/*
 * Hold the RAM pages behind [@hva, @hva + @len) for a DMA that outlives
 * one call (a device handing guest memory straight to the block layer).
 * All or nothing: if a page is not resident, nothing is held and
 * *@fault_offset is the offset from @hva of its first byte in range.
 * Memory other than managed guest RAM needs no hold.
 */
bool vpri_host_hold_hva(VpriHost *h, void *hva, uint64_t len,
                        uint64_t *fault_offset)
{
    uint64_t first, n;

    if (!vpri_mem_hva_to_pages(h, hva, len, &first, &n)) {
        return true;        /* not managed RAM: nothing to hold */
    }
    qemu_mutex_lock(&h->mem_lock);
    for (uint64_t p = first; p < first + n; p++) {
        if (h->page_state[p] != VPRI_PAGE_RESIDENT) {
            qemu_mutex_unlock(&h->mem_lock);
            *fault_offset = p == first ? 0 :
                            ((p - first) << PAB_PAGE_SHIFT) -
                            ((uintptr_t)hva & ~PAB_PAGE_MASK);
            return false;
        }
    }
    for (uint64_t p = first; p < first + n; p++) {
        h->hold_count[p]++;
    }
    qemu_mutex_unlock(&h->mem_lock);
    return true;
}

void vpri_host_release_hva(VpriHost *h, void *hva, uint64_t len)
{
    uint64_t first, n;

    if (!vpri_mem_hva_to_pages(h, hva, len, &first, &n)) {
        return;
    }
    qemu_mutex_lock(&h->mem_lock);
    for (uint64_t p = first; p < first + n; p++) {
        assert(h->hold_count[p]);
        h->hold_count[p]--;
    }
    qemu_mutex_unlock(&h->mem_lock);
}

int vpri_host_pin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp)
{
    return vpri_mem_pin_range(h, gpa, len, true, errp);
}

int vpri_host_unpin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp)
{
    return vpri_mem_pin_range(h, gpa, len, false, errp);
}

/* ------------------------------------------------------------------ */
/* Set-up, once the machine's RAM exists                              */

static bool vpri_mem_add_segment(Int128 start, Int128 len,
                                 const MemoryRegion *mr,
                                 hwaddr offset_in_region, void *opaque)
{
    GArray *segs = opaque;
    VpriRamSegment seg = {
        .gpa = int128_get64(start),
        .ram_offset = offset_in_region,
        .len = int128_get64(len),
    };

    if (mr == current_machine->ram) {
        g_array_append_val(segs, seg);
    }
    return false;
}

static gint vpri_mem_segment_cmp(gconstpointer a, gconstpointer b)
{
    const VpriRamSegment *x = a, *y = b;

    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static bool vpri_mem_setup(VpriHost *h, Error **errp)
{
    MemoryRegion *ram = current_machine ? current_machine->ram : NULL;
    uint64_t features = 0;
    GArray *segs;
    int r;

    if (!ram || !memory_region_is_ram(ram)) {
        error_setg(errp, "the machine has no guest RAM");
        return false;
    }
    if (memory_region_get_fd(ram) >= 0 ||
        qemu_ram_is_shared(ram->ram_block)) {
        error_setg(errp, "guest RAM is file-backed or shared; only "
                   "anonymous private RAM can be evicted");
        return false;
    }
    if (uffd_query_features(&features) ||
        !(features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
        error_setg(errp, "userfaultfd with write-protection is unavailable");
        return false;
    }
    h->ram_host = memory_region_get_ram_ptr(ram);
    h->ram_pages = memory_region_size(ram) >> PAB_PAGE_SHIFT;

    /*
     * The low megabyte splits into many small pieces (PAM, SMRAM): sort
     * the big pieces first, where nearly every lookup lands.
     */
    segs = g_array_new(false, false, sizeof(VpriRamSegment));
    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(address_space_to_flatview(
                                    &address_space_memory),
                                vpri_mem_add_segment, segs);
    }
    g_array_sort(segs, vpri_mem_segment_cmp);
    h->nsegs = segs->len;
    h->segs = (VpriRamSegment *)g_array_free(segs, false);

    /*
     * The default is an unlinked file in the temporary directory, not in
     * XDG_RUNTIME_DIR: that is usually tmpfs, where evicted pages would
     * still take memory.
     */
    r = vpri_swap_store_open(h->swap_file, h->swap_file ? NULL : g_get_tmp_dir(),
                        h->ram_pages, &h->swap);
    if (r < 0) {
        error_setg_errno(errp, -r, "cannot open swap store %s",
                         h->swap_file ? h->swap_file : "(unlinked temp file)");
        return false;
    }

    /*
     * Populate all of RAM first: a guest with a pass-through device has all
     * of its memory resident until the host reclaims some, and it spares
     * the handlers a zero-page fault on every first touch.
     */
    qemu_madvise(h->ram_host, h->ram_pages << PAB_PAGE_SHIFT,
                 QEMU_MADV_POPULATE_WRITE);

    h->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP, true);
    if (h->uffd < 0) {
        error_setg(errp, "cannot create a userfaultfd");
        return false;
    }
    if (uffd_register_memory(h->uffd, h->ram_host,
                             h->ram_pages << PAB_PAGE_SHIFT,
                             UFFDIO_REGISTER_MODE_MISSING |
                             UFFDIO_REGISTER_MODE_WP, NULL)) {
        error_setg(errp, "cannot register guest RAM with userfaultfd");
        uffd_close_fd(h->uffd);
        h->uffd = -1;
        return false;
    }
    h->page_state = g_new0(uint8_t, h->ram_pages);
    h->pin_count = g_new0(uint16_t, h->ram_pages);
    h->hold_count = g_new0(uint16_t, h->ram_pages);
    return true;
}

static void vpri_mem_machine_done(Notifier *n, void *data)
{
    VpriHost *h = container_of(n, VpriHost, machine_done);
    Error *err = NULL;

    if (!vpri_mem_setup(h, &err)) {
        h->mem_error = g_strdup(error_get_pretty(err));
        warn_report("vpri-host '%s': eviction disabled: %s",
                    object_get_canonical_path_component(OBJECT(h)),
                    h->mem_error);
        error_free(err);
        return;
    }
    qatomic_set(&h->mem_ready, true);
    /* Wake the handlers so they start watching the userfaultfd. */
    vpri_host_kick_handlers(h);
    vpri_pin_start(h);
}

void vpri_host_memory_init(VpriHost *h)
{
    h->uffd = -1;
    qemu_mutex_init(&h->mem_lock);
    qemu_mutex_init(&h->reclaim_lock);
    qemu_cond_init(&h->mem_cond);
    h->cpu_fault_latency = vpri_latency_histogram_new();
    h->pagein_latency = vpri_latency_histogram_new();
    h->machine_done.notify = vpri_mem_machine_done;
    qemu_add_machine_init_done_notifier(&h->machine_done);
}

void vpri_host_memory_cleanup(VpriHost *h)
{
    if (h->machine_done.notify) {
        qemu_remove_machine_init_done_notifier(&h->machine_done);
    }
    if (h->uffd >= 0) {
        uffd_unregister_memory(h->uffd, h->ram_host,
                               h->ram_pages << PAB_PAGE_SHIFT);
        uffd_close_fd(h->uffd);
    }
    if (h->swap) {
        vpri_swap_store_close(h->swap);
    }
    vpri_latency_histogram_free(h->cpu_fault_latency);
    vpri_latency_histogram_free(h->pagein_latency);
    g_free(h->page_state);
    g_free(h->pin_count);
    g_free(h->hold_count);
    g_free(h->segs);
    g_free(h->mem_error);
}
