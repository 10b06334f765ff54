/*
 * VPRI core: PA-BITMAP, the on-device page attribute bitmap
 *
 * One 2-bit page attribute entry (PAE) per 4 KiB page of a device's DMA
 * address space.  The device consults it on every DMA instead of asking
 * an IOMMU (no ATS); a DMA the bitmap does not permit is an I/O page
 * fault, which the device reports over the fault ring (no PRI).
 *
 * The SOSP'24 VPRI talk says only "2 bits per PAE, 4 KB per PAE"; the
 * meaning of the bits below is our own design:
 *
 *   00  not present   every DMA faults
 *   01  read-only     DMA reads pass, DMA writes fault
 *   11  read-write    every DMA passes
 *   10  reserved      never written by a correct host; treated as not
 *                     present and counted as an error when a DMA hits it
 *
 * Bit 0 is therefore "readable" and bit 1 "writable too"; 10 would be a
 * write-only page, which nothing needs.
 *
 * Lookups are lock-free.  Updates are lock-free too and never tear an
 * entry.  Before the host reuses a page whose rights it lowered, it must
 * call vpri_pab_fence(): see the fence rule in pa-bitmap.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_PA_BITMAP_H
#define HW_VPRI_PA_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#define PAB_PAGE_SHIFT 12
#define PAB_PAGE_SIZE ((uint64_t)1 << PAB_PAGE_SHIFT)
#define PAB_PAGE_MASK (~(PAB_PAGE_SIZE - 1))

/* Largest size accepted by vpri_pab_new(): keeps every byte address in 64 bits */
#define PAB_MAX_PAGES ((uint64_t)1 << (64 - PAB_PAGE_SHIFT))

typedef enum PabState {
    PAB_NOT_PRESENT = 0,
    PAB_READ_ONLY = 1,
    PAB_RESERVED = 2,
    PAB_READ_WRITE = 3,
} PabState;

#define PAB_NR_STATES 4

typedef enum PabAccess {
    PAB_ACCESS_READ = 0,
    PAB_ACCESS_WRITE = 1,
} PabAccess;

typedef enum PabResult {
    PAB_OK = 0,
    /* Some page lacks the right; the host can fix this. */
    PAB_FAULT = 1,
    /* Outside the address space; no host action can fix this. */
    PAB_OUT_OF_RANGE = 2,
} PabResult;

typedef struct PaBitmap PaBitmap;

/* Returned by vpri_pab_dma_begin(); hand it back to vpri_pab_dma_end(). */
typedef struct PabDmaToken {
    unsigned int slot;
} PabDmaToken;

typedef struct PabStats {
    uint64_t npages;
    /* Entries in each state, indexed by PabState; sum is npages. */
    uint64_t entries[PAB_NR_STATES];
    /* Lookups whose first faulting entry held the reserved pattern. */
    uint64_t reserved_hits;
    uint64_t faults;
    uint64_t out_of_range;
    /* Calls to vpri_pab_set/raise/lower, whether or not they changed much. */
    uint64_t host_updates;
    /* Words actually rewritten: the cost of the updates on a real device */
    uint64_t word_writes;
    uint64_t entries_raised;
    uint64_t entries_lowered;
    uint64_t fences;
    /* DMAs now between vpri_pab_dma_begin() and vpri_pab_dma_end(). */
    uint64_t dma_inflight;
} PabStats;

/* Returns NULL if @npages is 0 or above PAB_MAX_PAGES, or out of memory. */
PaBitmap *vpri_pab_new(uint64_t npages);
void vpri_pab_free(PaBitmap *pab);
uint64_t vpri_pab_npages(const PaBitmap *pab);

/* The raw entry of page @pfn; PAB_NOT_PRESENT if @pfn is out of range. */
PabState vpri_pab_get(PaBitmap *pab, uint64_t pfn);

/*
 * Is an @access of @len bytes at DMA address @addr permitted?  On
 * PAB_FAULT, *@fault_page (if not NULL) receives the page-aligned
 * address of the lowest page that lacks the right.  A zero @len checks
 * nothing but @addr must still lie inside the address space.  Each
 * entry is read atomically, but a multi-page lookup is not a snapshot
 * of the whole range; use vpri_pab_dma_begin() when the fence rule matters.
 */
PabResult vpri_pab_lookup(PaBitmap *pab, uint64_t addr, uint64_t len,
                     PabAccess access, uint64_t *fault_page);

/*
 * Host updates of @npages entries from page @pfn.  Each entry changes
 * atomically with respect to lookups.  They return the number of
 * entries changed, -ERANGE if the range leaves the address space, or
 * -EINVAL for a @state the operation does not accept.
 *
 * vpri_pab_set_range: every entry becomes @state.  Any state, reserved
 *     included, is accepted, as a raw register write would be.
 * vpri_pab_raise_range: grant at least @state (READ_ONLY or READ_WRITE);
 *     never removes a right.  Reserved entries become @state.
 * vpri_pab_lower_range: keep at most @state (NOT_PRESENT, READ_ONLY or
 *     READ_WRITE); never grants a right.  Reserved entries become
 *     NOT_PRESENT, so lowering always leaves valid entries.
 *
 * After any call that may have removed a right, call vpri_pab_fence() before
 * reclaiming or changing the pages.
 */
int64_t vpri_pab_set_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                      PabState state);
int64_t vpri_pab_raise_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                        PabState state);
int64_t vpri_pab_lower_range(PaBitmap *pab, uint64_t pfn, uint64_t npages,
                        PabState state);

/*
 * Device side of the fence rule.  Enters the current epoch, then does
 * vpri_pab_lookup() into *@result and *@fault_page.  The caller must call
 * vpri_pab_dma_end() with the token whatever the result, and must do so as
 * soon as the data transfer is done.  It must not hold the token while
 * waiting for a fault to be serviced: that would deadlock the host's
 * vpri_pab_fence().
 */
PabDmaToken vpri_pab_dma_begin(PaBitmap *pab, uint64_t addr, uint64_t len,
                          PabAccess access, PabResult *result,
                          uint64_t *fault_page);
void vpri_pab_dma_end(PaBitmap *pab, PabDmaToken token);

/*
 * Host side of the fence rule: returns once every DMA that began before
 * the call has ended.  Afterwards, every DMA sees the bitmap as it was
 * when vpri_pab_fence() was called, or newer.  Fences are serialized.
 */
void vpri_pab_fence(PaBitmap *pab);

void vpri_pab_get_stats(PaBitmap *pab, PabStats *stats);

/*
 * Eviction batches: lazy invalidation (the LUF idea, docs/vpri-core.rst,
 * "Lazy invalidation").
 *
 * The host evicts pages in three steps per batch:
 *
 *   vpri_pab_batch_lower(b, pfn)  for each page;
 *   vpri_pab_batch_sync(b)        now the pages' contents are stable: copy them;
 *   vpri_pab_batch_flush(b)       now no DMA can see them: discard them.
 *
 * A read-write entry is lowered to not-present at once, and sync fences
 * before the caller copies the page (a DMA in flight may still write it):
 * writable entries are never deferred.  A read-only (or not-present) entry
 * is left as it is until flush, which lowers all of them, coalescing
 * neighbours into one update, and fences once: a DMA that still sees it
 * can only read, and the content it reads stays valid until the discard,
 * which comes after that fence.
 *
 * Without @lazy, every vpri_pab_batch_lower() lowers and fences its page at
 * once (the one-by-one baseline the counters are compared with).
 *
 * The host must not raise or write a page between lower and flush, except
 * through vpri_pab_batch_raise(), which flushes first if the range holds a page
 * of the batch.  A batch belongs to one host thread.
 */
typedef struct PabBatch PabBatch;

typedef struct PabBatchStats {
    uint64_t pages;             /* vpri_pab_batch_lower() calls */
    uint64_t deferred;          /* read-only entries whose lowering waited */
    uint64_t immediate;         /* read-write entries lowered at once */
    uint64_t host_updates;      /* bitmap update calls the batch made */
    uint64_t fences;
    uint64_t flushes;
} PabBatchStats;

/* At most @capacity deferred pages; lower flushes when full.  NULL: ENOMEM */
PabBatch *vpri_pab_batch_new(PaBitmap *pab, unsigned capacity, bool lazy);
/* Flushes what is pending, then frees. */
void vpri_pab_batch_free(PabBatch *b);
/* 0, -ERANGE.  Returns 1 if the page's lowering was deferred. */
int vpri_pab_batch_lower(PabBatch *b, uint64_t pfn);
void vpri_pab_batch_sync(PabBatch *b);
void vpri_pab_batch_flush(PabBatch *b);
/* Is @pfn lowered lazily and not flushed yet? */
bool vpri_pab_batch_pending(const PabBatch *b, uint64_t pfn);
/* vpri_pab_raise_range(), after a flush if the range holds a pending page. */
int64_t vpri_pab_batch_raise(PabBatch *b, uint64_t pfn, uint64_t npages,
                        PabState state);
void vpri_pab_batch_get_stats(const PabBatch *b, PabBatchStats *st);

/*
 * Recount entries[] by scanning the bitmap.  Meant for tests and
 * debugging: with no update running it must equal the counts kept by
 * vpri_pab_get_stats().
 */
void vpri_pab_count_entries(PaBitmap *pab, uint64_t entries[PAB_NR_STATES]);

#endif
