/*
 * VPRI core: device-level DMA access tracking
 *
 * One "touched" bit per 4 KiB page of a device DMA address space, set
 * by the device on every DMA it performs and read-and-cleared by the
 * host, which uses it to age pages (a page the device keeps touching
 * should not be evicted, as eviction would cost an I/O page fault).
 * It is kept apart from the PA-BITMAP so that marking a page never
 * races with a change of its access rights.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_ACCESS_TRACKER_H
#define HW_VPRI_ACCESS_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct AccessTracker AccessTracker;

/* Called once per touched page found by vpri_access_tracker_collect_cb(). */
typedef void AccessTrackerFn(uint64_t pfn, void *opaque);

/* Returns NULL if @npages is 0 or too large, or out of memory. */
AccessTracker *vpri_access_tracker_new(uint64_t npages);
void vpri_access_tracker_free(AccessTracker *at);
uint64_t vpri_access_tracker_npages(const AccessTracker *at);

/*
 * Device side: mark every page overlapped by [@addr, @addr + @len).
 * Returns 0, or -ERANGE (marking nothing) if any of it is out of range.
 * A zero @len marks nothing.  Lock-free.
 */
int vpri_access_tracker_mark(AccessTracker *at, uint64_t addr, uint64_t len);

bool vpri_access_tracker_test(AccessTracker *at, uint64_t pfn);

/*
 * Host side: read and clear the bits of pages [@pfn, @pfn + @npages).
 * A page marked concurrently is either reported now or left set for the
 * next collection; it is never lost.  Return the number of touched
 * pages, or -ERANGE.
 *
 * vpri_access_tracker_collect: bit i of @bitmap (64-bit words, at least
 *     (@npages + 63) / 64 of them; all overwritten) is set if page
 *     @pfn + i was touched.  @bitmap may be NULL to just clear.
 * vpri_access_tracker_collect_cb: calls @fn for each touched page in
 *     increasing order.  @fn must not call back into the tracker's
 *     collect functions for the same range.
 */
int64_t vpri_access_tracker_collect(AccessTracker *at, uint64_t pfn,
                               uint64_t npages, uint64_t *bitmap);
int64_t vpri_access_tracker_collect_cb(AccessTracker *at, uint64_t pfn,
                                  uint64_t npages, AccessTrackerFn *fn,
                                  void *opaque);

#endif
