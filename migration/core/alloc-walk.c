/*
 * Allocation walk: the allocated ranges of a device, in order, resumably.
 * See include/migration/iolab/core/alloc-walk.h for the contract.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>

#include "migration/iolab/core/alloc-walk.h"

void iolab_alloc_walk_init(IolabAllocWalk *w, uint64_t nblocks,
                           IolabBlockStatusFn *status, void *opaque)
{
    *w = (IolabAllocWalk) {
        .nblocks = nblocks,
        .status = status,
        .opaque = opaque,
    };
}

int iolab_alloc_walk_next(IolabAllocWalk *w, uint64_t max_blocks,
                          uint64_t *start, uint64_t *count)
{
    if (max_blocks == 0) {
        return -EINVAL;
    }
    while (w->cursor < w->nblocks) {
        uint64_t left = w->nblocks - w->cursor, n;
        bool allocated;
        int ret;

        if (w->alloc_end > w->cursor) {
            /* The rest of an allocated run seen by an earlier call. */
            n = w->alloc_end - w->cursor;
            allocated = true;
        } else {
            ret = w->status(w->opaque, w->cursor, left, &allocated, &n);
            w->status_calls++;
            if (ret < 0) {
                return ret;
            }
            if (n == 0) {
                n = 1;
            } else if (n > left) {
                n = left;
            }
        }
        if (!allocated) {
            w->hole_blocks += n;
            w->cursor += n;
            continue;
        }
        w->alloc_end = w->cursor + n;
        if (n > max_blocks) {
            n = max_blocks;
        }
        *start = w->cursor;
        *count = n;
        w->cursor += n;
        w->allocated_blocks += n;
        return 1;
    }
    return 0;
}
