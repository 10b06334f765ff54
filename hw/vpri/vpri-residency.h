/*
 * vpri-host, bottom layer: guest-RAM residency, eviction, pins and holds
 *
 * Layers of vpri-host (docs/vpri-host.rst; each calls only the layers
 * below it, and learns of events below it through hooks it registers):
 *
 *   top     vpri-host.c, vpri-qmp.c   devices, fault rings, handlers, QMP
 *   middle  vpri-iommu.c              IOVA translation (ATC, reverse map)
 *           vpri-pin.c                pinning policy, DMA trace recording
 *   bottom  vpri-residency.c          this file's layer
 *
 * This layer knows guest RAM by RAM page (RAM offset >> PAB_PAGE_SHIFT),
 * and nothing of devices: eviction reaches device PA-BITMAP entries only
 * through the VpriResidencyHooks the layers above register.
 *
 * Locks (taken in this order, never the other way round):
 *   reclaim lock   one reclaim at a time; held across a whole reclaim,
 *                  hooks included (evict_lower, evict_flush).
 *   residency lock page states, pin and hold counts, statistics; its
 *                  condition variable wakes waiters of EVICTING and
 *                  PAGING_IN pages.  Held while the page_resident hook
 *                  runs: that hook may take the locks of the layers above
 *                  (host device lock), which must therefore never be held
 *                  while calling into this layer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_RESIDENCY_H
#define HW_VPRI_RESIDENCY_H

#include "hw/vpri/core/latency-histogram.h"
#include "hw/vpri/core/pa-bitmap.h"

typedef struct VpriResidency VpriResidency;

/*
 * What the layers above learn from this one.  Registered before guest RAM
 * is set up (vpri_residency_add_hooks()), never removed; any member may be
 * NULL.  The RAM pages of an eviction batch are given with their
 * guest-physical addresses (@gpas), since device PA-BITMAPs without a
 * vIOMMU are indexed by those.
 */
typedef struct VpriResidencyHooks {
    /*
     * Eviction, step 2 (vpri-residency.c): before any content is copied,
     * lower every entry that lets a device reach pages[0..@n).  Read-write
     * entries must be lowered and fenced before returning; read-only ones
     * may stay until evict_flush (lazy invalidation, docs/vpri-core.rst).
     * Returns a context handed to evict_flush.  Reclaim lock held.
     */
    void *(*evict_lower)(void *opaque, const uint64_t *pages,
                         const uint64_t *gpas, unsigned n);
    /*
     * Eviction, before the discard: every entry lowered for the batch is
     * fenced.  Adds the fences made and the entries lowered lazily to
     * *@fences and *@deferred, and frees @ctx.  Reclaim lock held.
     */
    void (*evict_flush)(void *opaque, void *ctx, uint64_t *fences,
                        uint64_t *deferred);
    /*
     * RAM page @page, at guest-physical @gpa, is resident again (paged in,
     * or its eviction backed off): entries may be raised.  Runs in any
     * thread with the residency lock held: it must not call this layer.
     */
    void (*page_resident)(void *opaque, uint64_t page, uint64_t gpa);
    /* Guest RAM is set up (main loop, once the machine exists). */
    void (*ready)(void *opaque);
} VpriResidencyHooks;

/*
 * For evict_lower hooks: the lazy eviction batches (pa-bitmap.h) of the
 * PA-BITMAPs one eviction lowers entries in, one per @slot (a device id
 * below VPRI_EVICT_MAX_SLOTS), made on the first lowering in the slot.
 * If a batch cannot be allocated, its entries are lowered and fenced at
 * once instead: slower, never wrong.
 */
#define VPRI_EVICT_MAX_SLOTS 64

typedef struct VpriEvictBatches VpriEvictBatches;

VpriEvictBatches *vpri_evict_batches_new(void);
void vpri_evict_batches_lower(VpriEvictBatches *eb, unsigned slot,
                              PaBitmap *pab, uint64_t pfn);
/* Every read-write entry lowered so far is fenced. */
void vpri_evict_batches_sync(VpriEvictBatches *eb);
/* Every entry lowered is fenced; adds the counts, frees @eb (or NULL). */
void vpri_evict_batches_finish(VpriEvictBatches *eb, uint64_t *fences,
                               uint64_t *deferred);

typedef struct VpriResidencyStats {
    uint64_t guest_pages;
    uint64_t evicted_pages;
    uint64_t pinned_pages;
    uint64_t holds;             /* page holds in flight */
    uint64_t cpu_faults;        /* userfaultfd faults served */
    uint64_t evictions;
    uint64_t pageins;
    uint64_t migration_supplied; /* evicted pages sent from the swap store */
} VpriResidencyStats;

/*
 * @owner names the host in messages.  Guest RAM is set up when the
 * machine is done, or at vpri_residency_start() if it is done already;
 * @swap_file (NULL: an unlinked temporary file) is opened then.  Hooks are
 * added between the two calls.
 */
VpriResidency *vpri_residency_new(const char *owner, const char *swap_file);
void vpri_residency_start(VpriResidency *r);
void vpri_residency_free(VpriResidency *r);
void vpri_residency_add_hooks(VpriResidency *r,
                              const VpriResidencyHooks *hooks, void *opaque);

/* Guest RAM is set up and eviction possible (false for NULL). */
bool vpri_residency_ready(VpriResidency *r);

/*
 * In a child of x-iolab-fork (include/migration/iolab/fork-server.h),
 * before anything runs: the userfaultfd belongs to the template's
 * memory, and the child's copy of guest RAM is registered with none, so
 * the child gets a userfaultfd of its own.  Eviction stays off if that
 * fails.
 */
void vpri_residency_fork_child(VpriResidency *r);
/* Why eviction is off, or NULL. */
const char *vpri_residency_error(VpriResidency *r);
uint64_t vpri_residency_guest_pages(VpriResidency *r);
void vpri_residency_get_stats(VpriResidency *r, VpriResidencyStats *st);
const LatencyHistogram *vpri_residency_cpu_fault_latency(VpriResidency *r);

/* The userfaultfd to poll for CPU faults (-1 until ready); and serving it. */
int vpri_residency_uffd(VpriResidency *r);
void vpri_residency_serve_uffd(VpriResidency *r);

/* Address conversions; false if the address is not managed guest RAM. */
bool vpri_residency_gpa_to_page(VpriResidency *r, uint64_t gpa,
                                uint64_t *page);
bool vpri_residency_page_to_gpa(VpriResidency *r, uint64_t page,
                                uint64_t *gpa);
bool vpri_residency_hva_to_page(VpriResidency *r, const void *hva,
                                uint64_t *page);

/*
 * Make RAM page @page (or the page at guest-physical @gpa) resident; true
 * at once if RAM is not managed or @gpa is not RAM.  Never takes the BQL:
 * the thread that faulted may hold it.
 */
bool vpri_residency_page_in(VpriResidency *r, uint64_t page);
bool vpri_residency_page_in_gpa(VpriResidency *r, uint64_t gpa);
bool vpri_residency_page_resident(VpriResidency *r, uint64_t page);

/*
 * Lend guest RAM to QEMU's postcopy on a destination (docs/vpri-host.rst,
 * "Migration"): every evicted page is paged in, eviction stops and guest
 * RAM leaves this layer's userfaultfd, so that QEMU's can register it.
 * Take it back once QEMU's is gone: -EBUSY while QEMU still holds it.
 * Both true / 0 at once without managed RAM.
 */
bool vpri_residency_release_ram(VpriResidency *r, Error **errp);
int vpri_residency_take_ram(VpriResidency *r);

/* Evict up to @npages unpinned, unheld pages.  Returns how many went. */
uint64_t vpri_residency_reclaim(VpriResidency *r, uint64_t npages,
                                Error **errp);

/*
 * Pin or unpin RAM page @page (pinning pages it in first); pins nest.
 * false: not RAM, cannot be paged in, or its pin count is at its maximum.
 */
bool vpri_residency_pin_page(VpriResidency *r, uint64_t page, bool pin);
/* The same for the guest-physical range [@gpa, @gpa + @len). */
int vpri_residency_pin_range(VpriResidency *r, uint64_t gpa, uint64_t len,
                             bool pin, Error **errp);

/*
 * Hold the RAM pages behind [@hva, @hva + @len) for a DMA that outlives
 * one call.  All or nothing.  Memory other than managed RAM needs no hold.
 * VPRI_HOLD_NOT_RESIDENT: a page is not resident, *@fault_offset is the
 * offset from @hva of its first byte in range.  VPRI_HOLD_TOO_MANY: a page
 * is held as often as its counter can count; nothing is held.
 */
typedef enum VpriHoldResult {
    VPRI_HOLD_OK,
    VPRI_HOLD_NOT_RESIDENT,
    VPRI_HOLD_TOO_MANY,
} VpriHoldResult;

VpriHoldResult vpri_residency_hold(VpriResidency *r, void *hva, uint64_t len,
                                   uint64_t *fault_offset);
void vpri_residency_release(VpriResidency *r, void *hva, uint64_t len);

#endif
