/*
 * vpri-host, bottom layer: guest-RAM residency, eviction and page-in
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
 *   2. lower its PA-BITMAP entry in every device, then fence each device:
 *      no DMA that began under the old entry is in flight (read-only
 *      entries: lowered and fenced lazily, before step 4's discard).  This
 *      layer knows no device: the evict_lower and evict_flush hooks of the
 *      layers above do it (vpri-residency.h);
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
#include "qemu/notify.h"
#include "qemu/thread.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "exec/cpu-common.h"
#include "exec/address-spaces.h"
#include "exec/target_page.h"
#include "migration/misc.h"
#include "hw/boards.h"
#include "system/system.h"
#include "hw/vpri/core/pa-bitmap.h"
#include "hw/vpri/core/swap-store.h"
#include "vpri-residency.h"
#include "trace.h"

#include <linux/userfaultfd.h>

#define VPRI_PAGE_SIZE (1ULL << PAB_PAGE_SHIFT)

/* Pages evicted per fence round. */
#define VPRI_EVICT_BATCH 256

/* Layers that register hooks: translation, pinning, the host's devices. */
#define VPRI_RESIDENCY_MAX_HOOKS 4

/*
 * Pins and holds per page.  A guest decides how many segments of its
 * requests land on one page, so the counters are wide and refuse, rather
 * than wrap, at their maximum.
 */
#define VPRI_RES_COUNT_MAX UINT32_MAX

/* Residency of one guest RAM page. */
enum {
    VPRI_PAGE_RESIDENT = 0,
    VPRI_PAGE_EVICTING,         /* being written out; page-ins wait */
    VPRI_PAGE_EVICTED,          /* only in the swap store */
    VPRI_PAGE_PAGING_IN,        /* being read back; others wait */
};

/* Where a piece of guest RAM appears in the guest-physical space. */
typedef struct VpriRamSegment {
    uint64_t gpa;
    uint64_t ram_offset;
    uint64_t len;
} VpriRamSegment;

struct VpriResidency {
    char *owner;                /* for messages: the host's id */
    char *swap_file;
    const VpriResidencyHooks *hooks[VPRI_RESIDENCY_MAX_HOOKS];
    void *hook_opaque[VPRI_RESIDENCY_MAX_HOOKS];
    unsigned nhooks;

    Notifier machine_done;
    bool ready;                 /* guest RAM set up; then the fields below */
    bool released;              /* RAM unregistered, with QEMU's postcopy */
    char *error;                /* why eviction is off, if it is */
    uint8_t *ram_host;
    RAMBlock *ram_block;
    uint64_t ram_pages;
    VpriRamSegment *segs;       /* largest first: lookups hit early */
    unsigned nsegs;
    int uffd;
    SwapStore *swap;

    QemuMutex reclaim_lock;     /* one reclaim at a time */
    QemuMutex lock;             /* page_state transitions, counts, stats */
    QemuCond cond;              /* a page left EVICTING or PAGING_IN */
    uint8_t *page_state;
    uint32_t *pin_count;        /* explicit pins */
    uint32_t *hold_count;       /* in-flight long DMAs */
    uint64_t clock_hand;
    uint64_t evicted_pages;
    uint64_t pinned_pages;
    uint64_t holds;             /* sum of hold_count[] */
    uint64_t evictions;
    uint64_t evict_fences;      /* PA-BITMAP fences the evictions made */
    uint64_t evict_deferred;    /* read-only entries lowered lazily */
    uint64_t pageins;
    uint64_t cpu_faults;
    uint64_t migration_supplied; /* evicted pages a migration sent */
    RamPageProvider page_provider;  /* the migration's RAM save path */
    bool page_provider_added;
    LatencyHistogram *cpu_fault_latency;
    LatencyHistogram *pagein_latency;
};

/* ------------------------------------------------------------------ */
/* Hooks                                                              */

void vpri_residency_add_hooks(VpriResidency *r,
                              const VpriResidencyHooks *hooks, void *opaque)
{
    /*
     * Hooks are fixed before RAM is set up: nothing reads them unlocked
     * while they change.
     */
    assert(!r->ready && r->nhooks < VPRI_RESIDENCY_MAX_HOOKS);
    r->hooks[r->nhooks] = hooks;
    r->hook_opaque[r->nhooks] = opaque;
    r->nhooks++;
}

/* Called with r->lock held. */
static void vpri_res_notify_resident(VpriResidency *r, uint64_t page,
                                     uint64_t gpa)
{
    for (unsigned i = 0; i < r->nhooks; i++) {
        if (r->hooks[i]->page_resident) {
            r->hooks[i]->page_resident(r->hook_opaque[i], page, gpa);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Guest-physical <-> RAM page                                        */

bool vpri_residency_gpa_to_page(VpriResidency *r, uint64_t gpa,
                                uint64_t *page)
{
    if (!qatomic_read(&r->ready)) {
        return false;
    }
    for (unsigned i = 0; i < r->nsegs; i++) {
        VpriRamSegment *s = &r->segs[i];

        if (gpa >= s->gpa && gpa - s->gpa < s->len) {
            *page = (s->ram_offset + (gpa - s->gpa)) >> PAB_PAGE_SHIFT;
            return true;
        }
    }
    return false;
}

bool vpri_residency_page_to_gpa(VpriResidency *r, uint64_t page,
                                uint64_t *gpa)
{
    uint64_t off = page << PAB_PAGE_SHIFT;

    if (!qatomic_read(&r->ready)) {
        return false;
    }
    for (unsigned i = 0; i < r->nsegs; i++) {
        VpriRamSegment *s = &r->segs[i];

        if (off >= s->ram_offset && off - s->ram_offset < s->len) {
            *gpa = s->gpa + (off - s->ram_offset);
            return true;
        }
    }
    return false;
}

bool vpri_residency_hva_to_page(VpriResidency *r, const void *hva,
                                uint64_t *page)
{
    const uint8_t *p = hva;

    if (!qatomic_read(&r->ready) || p < r->ram_host ||
        (uint64_t)(p - r->ram_host) >= r->ram_pages << PAB_PAGE_SHIFT) {
        return false;
    }
    *page = (p - r->ram_host) >> PAB_PAGE_SHIFT;
    return true;
}

/*
 * All of guest RAM registered with r->uffd, for missing pages and write
 * protection: at set-up, after a release, and in a forked child.  False
 * with errno set when the kernel refuses.
 */
static bool vpri_res_register_ram(VpriResidency *r)
{
    return !uffd_register_memory(r->uffd, r->ram_host,
                                 r->ram_pages << PAB_PAGE_SHIFT,
                                 UFFDIO_REGISTER_MODE_MISSING |
                                 UFFDIO_REGISTER_MODE_WP, NULL);
}

static void *vpri_res_hva(VpriResidency *r, uint64_t page)
{
    return r->ram_host + (page << PAB_PAGE_SHIFT);
}

/* ------------------------------------------------------------------ */
/* Page-in                                                            */

/*
 * Make RAM page @page resident.  Runs in handler threads (and in tests in
 * the main loop); never takes the BQL, since the thread that faulted may
 * hold it.
 */
static bool vpri_res_page_in(VpriResidency *r, uint64_t page)
{
    uint8_t *buf;
    void *hva = vpri_res_hva(r, page);
    uint64_t gpa;
    int64_t t0;
    int ret;

    qemu_mutex_lock(&r->lock);
    for (;;) {
        uint8_t st = r->page_state[page];

        if (st == VPRI_PAGE_RESIDENT) {
            qemu_mutex_unlock(&r->lock);
            return true;
        }
        if (st == VPRI_PAGE_EVICTED) {
            break;
        }
        /* EVICTING or PAGING_IN: someone else will settle it. */
        qemu_cond_wait(&r->cond, &r->lock);
    }
    qatomic_set(&r->page_state[page], VPRI_PAGE_PAGING_IN);
    qemu_mutex_unlock(&r->lock);

    t0 = get_clock_realtime();
    buf = qemu_memalign(VPRI_PAGE_SIZE, VPRI_PAGE_SIZE);
    ret = vpri_swap_store_get(r->swap, page, buf);
    if (ret == 0) {
        /*
         * Install the page but wake nobody yet: the bookkeeping below must
         * be done before a woken thread can look at it.
         */
        ret = uffd_copy_page(r->uffd, hva, buf, VPRI_PAGE_SIZE, true);
        if (ret == -EEXIST) {
            ret = 0;    /* only we install pages; be safe anyway */
        }
    }

    qemu_mutex_lock(&r->lock);
    if (ret == 0) {
        vpri_swap_store_drop(r->swap, page);
        qatomic_set(&r->page_state[page], VPRI_PAGE_RESIDENT);
        r->evicted_pages--;
        r->pageins++;
        if (vpri_residency_page_to_gpa(r, page, &gpa)) {
            vpri_res_notify_resident(r, page, gpa);
        }
    } else {
        qatomic_set(&r->page_state[page], VPRI_PAGE_EVICTED);
        error_report("vpri-host '%s': cannot page in RAM page 0x%" PRIx64
                     ": %s", r->owner, page, strerror(-ret));
    }
    qemu_cond_broadcast(&r->cond);
    qemu_mutex_unlock(&r->lock);
    if (ret == 0) {
        uffd_wakeup(r->uffd, hva, VPRI_PAGE_SIZE);
        /*
         * A TCG store logs its page dirty before it writes; one that
         * waited for this page-in lands only now, perhaps after a copy of
         * the page (from the swap store) was sent and that log entry
         * consumed.  Log the page again, after the wake-up, so that a
         * migration sends it once more (docs/vpri-host.rst, "Sending an
         * evicted page").
         */
        ram_page_provider_mark_dirty(r->ram_block, page << PAB_PAGE_SHIFT);
    }
    qemu_vfree(buf);
    vpri_latency_histogram_record(r->pagein_latency,
                                  get_clock_realtime() - t0);
    trace_vpri_page_in(page, ret);
    return ret == 0;
}

bool vpri_residency_page_in(VpriResidency *r, uint64_t page)
{
    if (!qatomic_read(&r->ready)) {
        return true;
    }
    return page < r->ram_pages && vpri_res_page_in(r, page);
}

bool vpri_residency_page_resident(VpriResidency *r, uint64_t page)
{
    return !qatomic_read(&r->ready) || page >= r->ram_pages ||
           qatomic_read(&r->page_state[page]) == VPRI_PAGE_RESIDENT;
}

bool vpri_residency_page_in_gpa(VpriResidency *r, uint64_t gpa)
{
    uint64_t page;

    if (!vpri_residency_gpa_to_page(r, gpa, &page)) {
        /* Not RAM (or RAM not managed): nothing to page in. */
        return true;
    }
    return vpri_res_page_in(r, page);
}

/* A thread touched @addr in guest RAM through the MMU: serve it. */
static void vpri_res_cpu_fault(VpriResidency *r, uint64_t addr, bool wp)
{
    uint64_t page = (addr - (uint64_t)(uintptr_t)r->ram_host) >>
                    PAB_PAGE_SHIFT;
    void *hva = vpri_res_hva(r, page);
    int64_t t0 = get_clock_realtime();

    if (page >= r->ram_pages) {
        error_report("vpri-host '%s': fault at 0x%" PRIx64
                     " outside guest RAM", r->owner, addr);
        return;
    }
    qatomic_inc(&r->cpu_faults);
    qemu_mutex_lock(&r->lock);
    while (r->page_state[page] == VPRI_PAGE_EVICTING) {
        qemu_cond_wait(&r->cond, &r->lock);
    }
    if (r->page_state[page] == VPRI_PAGE_RESIDENT) {
        qemu_mutex_unlock(&r->lock);
        if (wp) {
            /* The eviction backed off: lift the protection. */
            uffd_change_protection(r->uffd, hva, VPRI_PAGE_SIZE, false,
                                   false);
        } else if (uffd_zero_page(r->uffd, hva, VPRI_PAGE_SIZE, false)) {
            /* Never touched, and populated by someone else meanwhile. */
            uffd_wakeup(r->uffd, hva, VPRI_PAGE_SIZE);
        }
    } else {
        qemu_mutex_unlock(&r->lock);
        vpri_res_page_in(r, page);
    }
    vpri_latency_histogram_record(r->cpu_fault_latency,
                                  get_clock_realtime() - t0);
    trace_vpri_cpu_fault(page, wp);
}

int vpri_residency_uffd(VpriResidency *r)
{
    return qatomic_read(&r->ready) ? r->uffd : -1;
}

/* Handler threads call this when the userfaultfd is readable. */
void vpri_residency_serve_uffd(VpriResidency *r)
{
    struct uffd_msg msg[16];
    int n;

    if (vpri_residency_uffd(r) < 0) {
        return;
    }
    n = uffd_read_events(r->uffd, msg, ARRAY_SIZE(msg));
    for (int i = 0; i < n; i++) {
        if (msg[i].event != UFFD_EVENT_PAGEFAULT) {
            continue;
        }
        vpri_res_cpu_fault(r, msg[i].arg.pagefault.address,
                           msg[i].arg.pagefault.flags &
                           UFFD_PAGEFAULT_FLAG_WP);
    }
}

/* ------------------------------------------------------------------ */
/* Eviction                                                           */

struct VpriEvictBatches {
    PaBitmap *pab[VPRI_EVICT_MAX_SLOTS];
    PabBatch *batch[VPRI_EVICT_MAX_SLOTS];
    uint64_t fences;            /* made without a batch */
};

VpriEvictBatches *vpri_evict_batches_new(void)
{
    return g_new0(VpriEvictBatches, 1);
}

void vpri_evict_batches_lower(VpriEvictBatches *eb, unsigned slot,
                              PaBitmap *pab, uint64_t pfn)
{
    assert(slot < VPRI_EVICT_MAX_SLOTS);
    if (!eb->pab[slot]) {
        eb->pab[slot] = pab;
        eb->batch[slot] = vpri_pab_batch_new(pab, VPRI_EVICT_BATCH, true);
    }
    if (eb->batch[slot]) {
        vpri_pab_batch_lower(eb->batch[slot], pfn);
    } else {
        /* No memory for a batch: the one-by-one way, lowered and fenced. */
        vpri_pab_lower_range(pab, pfn, 1, PAB_NOT_PRESENT);
        vpri_pab_fence(pab);
        eb->fences++;
    }
}

void vpri_evict_batches_sync(VpriEvictBatches *eb)
{
    for (unsigned i = 0; i < VPRI_EVICT_MAX_SLOTS; i++) {
        if (eb->batch[i]) {
            vpri_pab_batch_sync(eb->batch[i]);
        }
    }
}

void vpri_evict_batches_finish(VpriEvictBatches *eb, uint64_t *fences,
                               uint64_t *deferred)
{
    if (!eb) {
        return;
    }
    for (unsigned i = 0; i < VPRI_EVICT_MAX_SLOTS; i++) {
        if (eb->batch[i]) {
            PabBatchStats st;

            vpri_pab_batch_flush(eb->batch[i]);
            vpri_pab_batch_get_stats(eb->batch[i], &st);
            *fences += st.fences;
            *deferred += st.deferred;
            vpri_pab_batch_free(eb->batch[i]);
        }
    }
    *fences += eb->fences;
    g_free(eb);
}

/*
 * The end of the run of consecutive RAM pages that starts at @batch[@i]
 * and whose @ok flags are all @ok[@i] (@ok NULL: any), at most @n.  The
 * clock hand picks pages in order, so a batch is mostly a few long runs,
 * and one protection change or discard per run spares a system call (and
 * its TLB shoot-down) per page: an eviction holds the BQL throughout, and
 * a migration beside it waits for the BQL at every dirty-bitmap sync.
 */
static unsigned vpri_res_run_end(const uint64_t *batch, const bool *ok,
                                 unsigned i, unsigned n)
{
    unsigned j = i + 1;

    while (j < n && batch[j] == batch[j - 1] + 1 && (!ok || ok[j] == ok[i])) {
        j++;
    }
    return j;
}

/* Evict the pages in @batch (all marked EVICTING by the caller). */
static uint64_t vpri_res_evict_batch(VpriResidency *r, const uint64_t *batch,
                                     const uint64_t *gpas, unsigned n)
{
    void *ctx[VPRI_RESIDENCY_MAX_HOOKS] = { NULL };
    bool ok[VPRI_EVICT_BATCH];
    uint64_t evicted = 0;

    /*
     * 2. Lower the entries, through the layers above.  Read-write ones are
     * lowered and fenced now, before any content is copied; read-only ones
     * (a DMA still using one can only read, and the content stays until the
     * discard) may be lowered and fenced at the flush, after the copies and
     * before the discards.  Lazy invalidation: docs/vpri-core.rst.
     */
    for (unsigned i = 0; i < r->nhooks; i++) {
        if (r->hooks[i]->evict_lower) {
            ctx[i] = r->hooks[i]->evict_lower(r->hook_opaque[i], batch, gpas,
                                              n);
        }
    }

    for (unsigned i = 0, end; i < n; i = end) {
        bool protected;

        /* 3. From here a CPU write waits for us (one run at a time). */
        end = vpri_res_run_end(batch, NULL, i, n);
        protected = uffd_change_protection(r->uffd, vpri_res_hva(r, batch[i]),
                                           (end - i) * VPRI_PAGE_SIZE, true,
                                           true) == 0;
        /* 4. The content is now stable: save it... */
        for (unsigned k = i; k < end; k++) {
            ok[k] = protected &&
                    vpri_swap_store_put(r->swap, batch[k],
                                        vpri_res_hva(r, batch[k])) == 0;
        }
    }
    /* ... and once no DMA can see the pages any more, drop them. */
    for (unsigned i = 0; i < r->nhooks; i++) {
        if (r->hooks[i]->evict_flush) {
            r->hooks[i]->evict_flush(r->hook_opaque[i], ctx[i],
                                     &r->evict_fences, &r->evict_deferred);
        }
    }

    for (unsigned i = 0, end; i < n; i = end) {
        end = vpri_res_run_end(batch, ok, i, n);
        if (ok[i] && qemu_madvise(vpri_res_hva(r, batch[i]),
                                  (end - i) * VPRI_PAGE_SIZE,
                                  QEMU_MADV_DONTNEED)) {
            memset(&ok[i], 0, (end - i) * sizeof(ok[0]));
        }
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t page = batch[i];
        void *hva = vpri_res_hva(r, page);

        qemu_mutex_lock(&r->lock);
        if (ok[i]) {
            qatomic_set(&r->page_state[page], VPRI_PAGE_EVICTED);
            r->evicted_pages++;
            r->evictions++;
            evicted++;
        } else {
            /* Back off: the page stays, and so does its content. */
            uffd_change_protection(r->uffd, hva, VPRI_PAGE_SIZE, false,
                                   false);
            vpri_swap_store_drop(r->swap, page);
            qatomic_set(&r->page_state[page], VPRI_PAGE_RESIDENT);
            vpri_res_notify_resident(r, page, gpas[i]);
        }
        /* 5. Writers blocked on the protection now page it back in. */
        qemu_cond_broadcast(&r->cond);
        qemu_mutex_unlock(&r->lock);
        trace_vpri_evict(page, ok[i]);
    }
    return evicted;
}

uint64_t vpri_residency_reclaim(VpriResidency *r, uint64_t npages,
                                Error **errp)
{
    uint64_t batch[VPRI_EVICT_BATCH];
    uint64_t gpas[VPRI_EVICT_BATCH];
    uint64_t evicted = 0;
    uint64_t scanned = 0;

    if (!qatomic_read(&r->ready)) {
        error_setg(errp, "vpri-host '%s' has no guest RAM to reclaim%s%s",
                   r->owner, r->error ? ": " : "",
                   r->error ? r->error : "");
        return 0;
    }
    qemu_mutex_lock(&r->reclaim_lock);
    if (r->released) {
        qemu_mutex_unlock(&r->reclaim_lock);
        error_setg(errp, "vpri-host '%s': guest RAM is with a postcopy "
                   "migration; eviction resumes when it ends", r->owner);
        return 0;
    }
    while (evicted < npages && scanned < r->ram_pages) {
        unsigned n = 0;

        /* 1. Pick resident, unpinned, unheld RAM pages round-robin. */
        qemu_mutex_lock(&r->lock);
        while (n < VPRI_EVICT_BATCH && evicted + n < npages &&
               scanned < r->ram_pages) {
            uint64_t p = r->clock_hand;

            r->clock_hand = (r->clock_hand + 1) % r->ram_pages;
            scanned++;
            if (r->page_state[p] != VPRI_PAGE_RESIDENT || r->pin_count[p] ||
                r->hold_count[p] ||
                !vpri_residency_page_to_gpa(r, p, &gpas[n])) {
                continue;
            }
            qatomic_set(&r->page_state[p], VPRI_PAGE_EVICTING);
            batch[n++] = p;
        }
        qemu_mutex_unlock(&r->lock);
        if (n) {
            evicted += vpri_res_evict_batch(r, batch, gpas, n);
        }
    }
    qemu_mutex_unlock(&r->reclaim_lock);
    return evicted;
}

/* ------------------------------------------------------------------ */
/* Migration: evicted pages are sent from the swap store              */

/*
 * The migration thread is about to send the page at byte @offset of
 * @block (patches/0013): an evicted page's bytes come from the swap store,
 * so that sending it does not page it back in, and the source's RSS stays
 * where eviction put it.  Why each race is harmless: docs/vpri-host.rst,
 * "Sending an evicted page".  In short: the swap slot is read under the
 * residency lock, and a page-in frees it only under that lock, so the
 * slot holds this page's content while it is read; a write after the
 * read lands in host memory only once the page is back, and the dirty
 * log sends the page again (vpri_res_page_in() logs it after its wake-up).
 */
static bool vpri_res_supply_page(RAMBlock *block, uint64_t offset,
                                 void *buf, void *opaque)
{
    VpriResidency *r = opaque;
    uint64_t page = offset >> PAB_PAGE_SHIFT;
    bool supplied = false;
    int ret = 0;

    /* Resident pages are read in place, as without vpri-host. */
    if (block != r->ram_block || page >= r->ram_pages ||
        qatomic_read(&r->page_state[page]) == VPRI_PAGE_RESIDENT) {
        return false;
    }
    qemu_mutex_lock(&r->lock);
    /*
     * Its copy is still being written: wait for it.  Evictions run under
     * the BQL, so none is under way when this thread holds the BQL
     * (completion), and an eviction never waits for this thread.
     */
    while (r->page_state[page] == VPRI_PAGE_EVICTING) {
        qemu_cond_wait(&r->cond, &r->lock);
    }
    /*
     * EVICTED, or PAGING_IN (the slot holds the same content as the page
     * being installed, and is dropped only under this lock).
     */
    if (r->page_state[page] != VPRI_PAGE_RESIDENT) {
        ret = vpri_swap_store_get(r->swap, page, buf);
        supplied = ret == 0;
        if (supplied) {
            r->migration_supplied++;
        }
    }
    qemu_mutex_unlock(&r->lock);
    if (ret < 0) {
        /* The save path reads the page instead, which pages it in. */
        error_report_once("vpri-host '%s': cannot read RAM page 0x%" PRIx64
                          " from the swap store for migration: %s",
                          r->owner, page, strerror(-ret));
    }
    trace_vpri_migration_supply(page, supplied, ret);
    return supplied;
}

/* ------------------------------------------------------------------ */
/* Guest RAM lent to QEMU's postcopy                                  */

bool vpri_residency_release_ram(VpriResidency *r, Error **errp)
{
    bool ok = true;

    if (!qatomic_read(&r->ready)) {
        return true;
    }
    /* No eviction runs while we hold it, and none starts after. */
    qemu_mutex_lock(&r->reclaim_lock);
    if (r->released) {
        goto out;
    }
    for (uint64_t p = 0; p < r->ram_pages; p++) {
        if (qatomic_read(&r->page_state[p]) != VPRI_PAGE_RESIDENT &&
            !vpri_res_page_in(r, p)) {
            error_setg(errp, "vpri-host '%s': cannot page in RAM page "
                       "0x%" PRIx64 " for postcopy", r->owner, p);
            ok = false;
            goto out;
        }
    }
    if (uffd_unregister_memory(r->uffd, r->ram_host,
                               r->ram_pages << PAB_PAGE_SHIFT)) {
        error_setg_errno(errp, errno, "vpri-host '%s': cannot unregister "
                         "guest RAM from its userfaultfd", r->owner);
        ok = false;
        goto out;
    }
    r->released = true;
out:
    qemu_mutex_unlock(&r->reclaim_lock);
    return ok;
}

int vpri_residency_take_ram(VpriResidency *r)
{
    int ret = 0;

    if (!qatomic_read(&r->ready)) {
        return 0;
    }
    qemu_mutex_lock(&r->reclaim_lock);
    if (r->released) {
        if (!vpri_res_register_ram(r)) {
            ret = -errno;
        } else {
            r->released = false;
        }
    }
    qemu_mutex_unlock(&r->reclaim_lock);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Pins                                                               */

/* Called with r->lock held. */
static bool vpri_res_count_pin(VpriResidency *r, uint64_t page, bool pin)
{
    if (pin) {
        if (r->pin_count[page] == VPRI_RES_COUNT_MAX) {
            return false;
        }
        if (r->pin_count[page]++ == 0) {
            r->pinned_pages++;
        }
    } else if (r->pin_count[page] && --r->pin_count[page] == 0) {
        r->pinned_pages--;
    }
    return true;
}

bool vpri_residency_pin_page(VpriResidency *r, uint64_t page, bool pin)
{
    bool ok;

    if (!qatomic_read(&r->ready) || page >= r->ram_pages ||
        (pin && !vpri_res_page_in(r, page))) {
        return false;
    }
    qemu_mutex_lock(&r->lock);
    ok = vpri_res_count_pin(r, page, pin);
    qemu_mutex_unlock(&r->lock);
    return ok;
}

/* Pin or unpin RAM page @page for vpri_residency_pin_range(). */
static int vpri_res_pin_one(VpriResidency *r, uint64_t page, bool pin,
                            Error **errp)
{
    bool ok;

    /* A pinned page must be resident: bring it in first. */
    if (pin && !vpri_res_page_in(r, page)) {
        error_setg(errp, "cannot page in 0x%" PRIx64, page);
        return -EIO;
    }
    qemu_mutex_lock(&r->lock);
    ok = vpri_res_count_pin(r, page, pin);
    qemu_mutex_unlock(&r->lock);
    if (!ok) {
        error_setg(errp, "RAM page 0x%" PRIx64 " is pinned %u times "
                   "already", page, VPRI_RES_COUNT_MAX);
        return -EBUSY;
    }
    return 0;
}

/*
 * The RAM pages of [@gpa, @gpa + @len) are those from the page of its
 * first byte to the page of its last: both must be guest RAM, and a hole
 * between them (the PCI hole) holds no RAM pages.
 */
int vpri_residency_pin_range(VpriResidency *r, uint64_t gpa, uint64_t len,
                             bool pin, Error **errp)
{
    uint64_t first, last, p;
    int ret = 0;

    if (!qatomic_read(&r->ready)) {
        error_setg(errp, "vpri-host '%s' has no guest RAM", r->owner);
        return -ENODEV;
    }
    if (!len) {
        error_setg(errp, "'size' must not be 0");
        return -EINVAL;
    }
    if (len - 1 > UINT64_MAX - gpa) {
        error_setg(errp, "'size' 0x%" PRIx64 " from 'addr' 0x%" PRIx64
                   " runs past the end of the address space", len, gpa);
        return -EINVAL;
    }
    if (!vpri_residency_gpa_to_page(r, gpa, &first) ||
        !vpri_residency_gpa_to_page(r, gpa + (len - 1), &last) ||
        last < first) {
        error_setg(errp, "range 0x%" PRIx64 "+0x%" PRIx64
                   " is not guest RAM", gpa, len);
        return -EINVAL;
    }
    for (p = first; p <= last; p++) {
        ret = vpri_res_pin_one(r, p, pin, errp);
        if (ret < 0) {
            break;
        }
    }
    if (ret < 0) {
        /*
         * Only pinning fails part way (unpinning a page cannot fail): a
         * failed command has no effect, so drop the pins this call took.
         */
        for (uint64_t q = first; q < p; q++) {
            vpri_res_pin_one(r, q, false, NULL);
        }
    }
    trace_vpri_pin_range(gpa, len, pin, p - first, ret);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Holds                                                              */

/* The RAM pages of [@hva, @hva + @len), clipped to managed RAM. */
static bool vpri_res_hva_to_pages(VpriResidency *r, void *hva, uint64_t len,
                                  uint64_t *first, uint64_t *npages)
{
    uint64_t last;

    if (!len || !vpri_residency_hva_to_page(r, hva, first)) {
        return false;
    }
    if (!vpri_residency_hva_to_page(r, (uint8_t *)hva + len - 1, &last)) {
        last = r->ram_pages - 1;
    }
    *npages = last - *first + 1;
    return true;
}

VpriHoldResult vpri_residency_hold(VpriResidency *r, void *hva, uint64_t len,
                                   uint64_t *fault_offset)
{
    uint64_t first, n;

    if (!vpri_res_hva_to_pages(r, hva, len, &first, &n)) {
        return VPRI_HOLD_OK;    /* not managed RAM: nothing to hold */
    }
    qemu_mutex_lock(&r->lock);
    for (uint64_t p = first; p < first + n; p++) {
        if (r->page_state[p] != VPRI_PAGE_RESIDENT) {
            qemu_mutex_unlock(&r->lock);
            *fault_offset = p == first ? 0 :
                            ((p - first) << PAB_PAGE_SHIFT) -
                            ((uintptr_t)hva & ~PAB_PAGE_MASK);
            return VPRI_HOLD_NOT_RESIDENT;
        }
        if (r->hold_count[p] == VPRI_RES_COUNT_MAX) {
            qemu_mutex_unlock(&r->lock);
            return VPRI_HOLD_TOO_MANY;
        }
    }
    for (uint64_t p = first; p < first + n; p++) {
        r->hold_count[p]++;
    }
    r->holds += n;
    qemu_mutex_unlock(&r->lock);
    return VPRI_HOLD_OK;
}

void vpri_residency_release(VpriResidency *r, void *hva, uint64_t len)
{
    uint64_t first, n;
    bool unbalanced = false;

    if (!vpri_res_hva_to_pages(r, hva, len, &first, &n)) {
        return;
    }
    qemu_mutex_lock(&r->lock);
    for (uint64_t p = first; p < first + n; p++) {
        if (r->hold_count[p]) {
            r->hold_count[p]--;
            r->holds--;
        } else {
            unbalanced = true;
        }
    }
    qemu_mutex_unlock(&r->lock);
    if (unbalanced) {
        /* A device released what it never held: its bug, not the guest's. */
        error_report_once("vpri-host '%s': release of a RAM page that is "
                          "not held", r->owner);
    }
}

/* ------------------------------------------------------------------ */
/* State and statistics                                               */

bool vpri_residency_ready(VpriResidency *r)
{
    return r && qatomic_read(&r->ready);
}

const char *vpri_residency_error(VpriResidency *r)
{
    return r->error;
}

uint64_t vpri_residency_guest_pages(VpriResidency *r)
{
    return qatomic_read(&r->ready) ? r->ram_pages : 0;
}

void vpri_residency_get_stats(VpriResidency *r, VpriResidencyStats *st)
{
    memset(st, 0, sizeof(*st));
    st->cpu_faults = qatomic_read(&r->cpu_faults);
    if (!qatomic_read(&r->ready)) {
        return;
    }
    qemu_mutex_lock(&r->lock);
    st->guest_pages = r->ram_pages;
    st->evicted_pages = r->evicted_pages;
    st->pinned_pages = r->pinned_pages;
    st->holds = r->holds;
    st->evictions = r->evictions;
    st->pageins = r->pageins;
    st->migration_supplied = r->migration_supplied;
    qemu_mutex_unlock(&r->lock);
}

const LatencyHistogram *vpri_residency_cpu_fault_latency(VpriResidency *r)
{
    return r->cpu_fault_latency;
}

/* ------------------------------------------------------------------ */
/* Set-up, once the machine's RAM exists                              */

static bool vpri_res_add_segment(Int128 start, Int128 len,
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

static gint vpri_res_segment_cmp(gconstpointer a, gconstpointer b)
{
    const VpriRamSegment *x = a, *y = b;

    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static bool vpri_res_setup(VpriResidency *r, Error **errp)
{
    MemoryRegion *ram = current_machine ? current_machine->ram : NULL;
    uint64_t features = 0;
    GArray *segs;
    int ret;

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
    r->ram_host = memory_region_get_ram_ptr(ram);
    r->ram_block = ram->ram_block;
    r->ram_pages = memory_region_size(ram) >> PAB_PAGE_SHIFT;

    /*
     * The low megabyte splits into many small pieces (PAM, SMRAM): sort
     * the big pieces first, where nearly every lookup lands.
     */
    segs = g_array_new(false, false, sizeof(VpriRamSegment));
    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(address_space_to_flatview(
                                    &address_space_memory),
                                vpri_res_add_segment, segs);
    }
    g_array_sort(segs, vpri_res_segment_cmp);
    r->nsegs = segs->len;
    r->segs = (VpriRamSegment *)g_array_free(segs, false);

    /*
     * The default is an unlinked file in the temporary directory, not in
     * XDG_RUNTIME_DIR: that is usually tmpfs, where evicted pages would
     * still take memory.
     */
    ret = vpri_swap_store_open(r->swap_file,
                               r->swap_file ? NULL : g_get_tmp_dir(),
                               r->ram_pages, &r->swap);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot open swap store %s",
                         r->swap_file ? r->swap_file
                                      : "(unlinked temp file)");
        return false;
    }

    /*
     * Populate all of RAM first: a guest with a pass-through device has all
     * of its memory resident until the host reclaims some, and it spares
     * the handlers a zero-page fault on every first touch.
     */
    qemu_madvise(r->ram_host, r->ram_pages << PAB_PAGE_SHIFT,
                 QEMU_MADV_POPULATE_WRITE);

    r->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP, true);
    if (r->uffd < 0) {
        error_setg(errp, "cannot create a userfaultfd");
        return false;
    }
    if (!vpri_res_register_ram(r)) {
        error_setg(errp, "cannot register guest RAM with userfaultfd");
        uffd_close_fd(r->uffd);
        r->uffd = -1;
        return false;
    }
    r->page_state = g_new0(uint8_t, r->ram_pages);
    r->pin_count = g_new0(uint32_t, r->ram_pages);
    r->hold_count = g_new0(uint32_t, r->ram_pages);
    return true;
}

static void vpri_res_machine_done(Notifier *n, void *data)
{
    VpriResidency *r = container_of(n, VpriResidency, machine_done);
    Error *err = NULL;

    if (!vpri_res_setup(r, &err)) {
        r->error = g_strdup(error_get_pretty(err));
        warn_report("vpri-host '%s': eviction disabled: %s", r->owner,
                    r->error);
        error_free(err);
        return;
    }
    qatomic_set(&r->ready, true);
    /*
     * From now on a migration sends evicted pages from the swap store.
     * Registered for as long as RAM is managed, not only while pages are
     * evicted: the provider answers for a resident page with one atomic
     * read, and a provider added and removed on the fly would race with
     * evictions starting.  The save path asks for target pages, which
     * must be the swap store's pages.
     */
    if (qemu_target_page_size() == VPRI_PAGE_SIZE) {
        r->page_provider.supply = vpri_res_supply_page;
        r->page_provider.opaque = r;
        ram_page_provider_add(&r->page_provider);
        r->page_provider_added = true;
    }
    for (unsigned i = 0; i < r->nhooks; i++) {
        if (r->hooks[i]->ready) {
            r->hooks[i]->ready(r->hook_opaque[i]);
        }
    }
}

VpriResidency *vpri_residency_new(const char *owner, const char *swap_file)
{
    VpriResidency *r = g_new0(VpriResidency, 1);

    r->owner = g_strdup(owner);
    r->swap_file = g_strdup(swap_file);
    r->uffd = -1;
    qemu_mutex_init(&r->lock);
    qemu_mutex_init(&r->reclaim_lock);
    qemu_cond_init(&r->cond);
    r->cpu_fault_latency = vpri_latency_histogram_new();
    r->pagein_latency = vpri_latency_histogram_new();
    return r;
}

void vpri_residency_start(VpriResidency *r)
{
    /*
     * At once if the machine is done already (object-add at run time):
     * hence after every hook is registered.
     */
    r->machine_done.notify = vpri_res_machine_done;
    qemu_add_machine_init_done_notifier(&r->machine_done);
}

void vpri_residency_fork_child(VpriResidency *r)
{
    if (!qatomic_read(&r->ready) || r->released) {
        return;
    }
    /* Only the child's descriptor: the template keeps its own */
    uffd_close_fd(r->uffd);
    r->uffd = uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP, true);
    if (r->uffd >= 0 &&
        vpri_res_register_ram(r)) {
        return;
    }
    warn_report("vpri-host '%s': eviction disabled in the forked child: "
                "cannot register guest RAM with a new userfaultfd", r->owner);
    if (r->uffd >= 0) {
        uffd_close_fd(r->uffd);
    }
    r->uffd = -1;
    qatomic_set(&r->ready, false);
}

void vpri_residency_free(VpriResidency *r)
{
    if (!r) {
        return;
    }
    if (r->machine_done.notify) {
        qemu_remove_machine_init_done_notifier(&r->machine_done);
    }
    if (r->page_provider_added) {
        /* Waits for a call in the migration thread to return. */
        ram_page_provider_remove(&r->page_provider);
    }
    if (r->uffd >= 0 && !r->released) {
        uffd_unregister_memory(r->uffd, r->ram_host,
                               r->ram_pages << PAB_PAGE_SHIFT);
        uffd_close_fd(r->uffd);
    }
    if (r->swap) {
        vpri_swap_store_close(r->swap);
    }
    vpri_latency_histogram_free(r->cpu_fault_latency);
    vpri_latency_histogram_free(r->pagein_latency);
    qemu_mutex_destroy(&r->lock);
    qemu_mutex_destroy(&r->reclaim_lock);
    qemu_cond_destroy(&r->cond);
    g_free(r->page_state);
    g_free(r->pin_count);
    g_free(r->hold_count);
    g_free(r->segs);
    g_free(r->error);
    g_free(r->swap_file);
    g_free(r->owner);
    g_free(r);
}
