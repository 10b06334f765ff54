/*
 * VPRI core: swap store for evicted guest pages
 *
 * Holds the contents of 4 KiB guest pages that the host evicted, so
 * that an I/O page fault (or a CPU fault) on them can be resolved by
 * reading them back.  Pages live in slots of a backing file; a page
 * keeps its slot while stored, and freed slots are reused before the
 * file grows.  All functions are thread-safe; errors are negative errno
 * values and never abort.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_SWAP_STORE_H
#define HW_VPRI_SWAP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#define SWAP_STORE_PAGE_SIZE 4096

/* Slot numbers are 32-bit, so is the number of guest pages. */
#define SWAP_STORE_MAX_PFNS (UINT32_MAX - 1)

typedef struct SwapStore SwapStore;

typedef struct SwapStoreStats {
    uint64_t npfns;
    uint64_t stored;        /* pfns that have a slot */
    uint64_t slots;         /* slots the file has grown to */
    uint64_t puts;
    uint64_t gets;
    uint64_t drops;
    uint64_t io_errors;
} SwapStoreStats;

/*
 * Open a store for guest page frames [0, @npfns).  Exactly one of
 * @path (a file, created or truncated) and @tmpdir (a directory where an
 * anonymous file is created and unlinked at once, so it vanishes with
 * the process) must be non-NULL.  Returns 0 and sets *@out, or a
 * negative errno (-EINVAL for bad arguments).
 */
int vpri_swap_store_open(const char *path, const char *tmpdir, uint64_t npfns,
                    SwapStore **out);
void vpri_swap_store_close(SwapStore *ss);

/*
 * Store SWAP_STORE_PAGE_SIZE bytes of @data as page @pfn, replacing any
 * previous copy.  On an I/O error the pfn is left with no copy (a
 * half-written one would be worse), so the caller must keep its page.
 */
int vpri_swap_store_put(SwapStore *ss, uint64_t pfn, const void *data);

/* Read page @pfn into @buf.  -ENOENT if the pfn has no copy. */
int vpri_swap_store_get(SwapStore *ss, uint64_t pfn, void *buf);

/* Forget page @pfn and free its slot.  -ENOENT if it has no copy. */
int vpri_swap_store_drop(SwapStore *ss, uint64_t pfn);

bool vpri_swap_store_contains(SwapStore *ss, uint64_t pfn);

/* The slot holding @pfn (for tests and dumps), or -ENOENT / -EINVAL. */
int64_t vpri_swap_store_slot(SwapStore *ss, uint64_t pfn);

void vpri_swap_store_get_stats(SwapStore *ss, SwapStoreStats *stats);

#endif
