/*
 * Change log: the block ranges written since logging started.
 *
 * Storage migration sends a disk in two phases: first what is allocated,
 * then what the guest changed meanwhile.  This log holds the second set.
 * Every write marks its range; the sender takes ranges out to send them.
 * A range the guest writes again after it was taken is marked again, so
 * nothing written is ever missed, whatever the interleaving.
 *
 * Contract:
 *  - Ranges are in blocks (the unit is the caller's: LBAs, clusters).
 *    Adjacent and overlapping ranges are coalesced, so the log holds the
 *    fewest disjoint ranges that cover every marked block.
 *  - Memory is bounded: at most max_ranges ranges, allocated when the log
 *    is created; marking never allocates.
 *  - Overflow: when one more disjoint range would exceed max_ranges, the
 *    log can no longer say which blocks changed, so it falls back to
 *    "every block is changed" (one range over the whole device).  The
 *    fallback is counted (overflows) and reported (whole_device), never
 *    silent; the sender then resends everything, which is correct but
 *    slow.  A log that overflows keeps logging: blocks taken after the
 *    fallback and written again are marked again as usual.
 *  - iolab_change_log_take() hands out the highest range first (removal
 *    is O(1) that way); order does not matter for correctness.
 *  - Not thread-safe: the caller serialises marks and takes (QEMU's
 *    device code does both under the BQL or the AioContext).
 *
 * QEMU-free (libc only), shared by nvme-export's storage migration and its
 * TP4159 user-data migration queue, and usable by any block device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MIGRATION_IOLAB_CORE_CHANGE_LOG_H
#define MIGRATION_IOLAB_CORE_CHANGE_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* The bound a log may be given: 2^24 ranges, 256 MiB of ranges. */
#define IOLAB_CHANGE_LOG_MAX_RANGES (1u << 24)

typedef struct IolabChangeLog IolabChangeLog;

typedef struct IolabChangeLogStats {
    uint64_t nblocks;         /* size of the device, in blocks */
    uint32_t max_ranges;      /* the memory bound */
    uint32_t ranges;          /* disjoint ranges held now */
    uint64_t pending_blocks;  /* blocks those ranges cover */
    uint64_t marked_blocks;   /* blocks marked since creation (with repeats) */
    uint64_t taken_blocks;    /* blocks handed to the sender */
    uint64_t overflows;       /* times the bound forced the fallback */
    bool whole_device;        /* the fallback range is (still) held whole */
} IolabChangeLogStats;

/*
 * A log for a device of @nblocks blocks, holding at most @max_ranges
 * disjoint ranges (1..IOLAB_CHANGE_LOG_MAX_RANGES).  Returns NULL on a bad
 * argument or when the memory cannot be had.
 */
IolabChangeLog *iolab_change_log_new(uint64_t nblocks, uint32_t max_ranges);
void iolab_change_log_free(IolabChangeLog *log);

/*
 * Blocks [@start, @start + @count) were written.  Blocks past the end of
 * the device are ignored (the device refused that write anyway); @count 0
 * marks nothing.
 */
void iolab_change_log_mark(IolabChangeLog *log, uint64_t start,
                           uint64_t count);

/*
 * Take at most @max_blocks (> 0) changed blocks out of the log: sets
 * *@start and *@count to one contiguous range and returns true, or
 * returns false when nothing is pending.
 */
bool iolab_change_log_take(IolabChangeLog *log, uint64_t max_blocks,
                           uint64_t *start, uint64_t *count);

/* Blocks pending (marked and not yet taken). */
uint64_t iolab_change_log_pending(const IolabChangeLog *log);

/* Forget every pending range (logging restarts from nothing). */
void iolab_change_log_clear(IolabChangeLog *log);

void iolab_change_log_get_stats(const IolabChangeLog *log,
                                IolabChangeLogStats *stats);

#endif
