/*
 * Allocation walk: the allocated ranges of a device, in order, resumably.
 *
 * Storage migration's first phase sends only what is allocated (TP4165's
 * view of a namespace): the walk asks the caller's block-status function
 * about the device from a cursor onward, skips holes, and hands out
 * allocated ranges in chunks of at most the size the sender asks for.  It
 * keeps its cursor between calls, so a migration iteration can send one
 * chunk and return, and the next iteration goes on from there.
 *
 * Writes the guest makes while the walk runs are the change log's
 * business (change-log.h): a block written behind the cursor is sent from
 * the log; one ahead of it is sent by the walk, perhaps from the log too
 * (harmless: the later copy is the newer).
 *
 * QEMU-free (libc only).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MIGRATION_IOLAB_CORE_ALLOC_WALK_H
#define MIGRATION_IOLAB_CORE_ALLOC_WALK_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Block status of the device at @block: sets *@allocated and *@count, the
 * number of blocks from @block on (1..@max) that share that status.
 * Returns 0, or a negative errno the walk passes back.
 */
typedef int IolabBlockStatusFn(void *opaque, uint64_t block, uint64_t max,
                               bool *allocated, uint64_t *count);

typedef struct IolabAllocWalk {
    uint64_t nblocks;
    uint64_t cursor;            /* the first block not yet looked at */
    uint64_t alloc_end;         /* allocated run known up to here */
    uint64_t allocated_blocks;  /* handed out so far */
    uint64_t hole_blocks;       /* skipped so far */
    uint64_t status_calls;
    IolabBlockStatusFn *status;
    void *opaque;
} IolabAllocWalk;

void iolab_alloc_walk_init(IolabAllocWalk *w, uint64_t nblocks,
                           IolabBlockStatusFn *status, void *opaque);

/*
 * The next allocated range, at most @max_blocks (> 0) long: returns 1 and
 * sets *@start and *@count; 0 when the walk reached the end; or the
 * negative errno of the status function (the cursor does not move, so
 * the call can be retried).  A status function that answers a count of 0
 * or past the end is clamped to 1 and to the end, so the walk always
 * advances and never leaves the device.
 */
int iolab_alloc_walk_next(IolabAllocWalk *w, uint64_t max_blocks,
                          uint64_t *start, uint64_t *count);

static inline bool iolab_alloc_walk_done(const IolabAllocWalk *w)
{
    return w->cursor >= w->nblocks;
}

/* Blocks not yet looked at (an upper bound of what is left to send). */
static inline uint64_t iolab_alloc_walk_remaining(const IolabAllocWalk *w)
{
    return w->nblocks - w->cursor;
}

#endif
