/*
 * Change log: the block ranges written since logging started.
 * See include/migration/iolab/core/change-log.h for the contract.
 *
 * The ranges live in one array, sorted by start, disjoint and never
 * touching (a gap of at least one block between neighbours).  A mark
 * binary-searches the first range it touches and merges every range it
 * reaches into one; a take shortens the last range.  The array is
 * allocated once, at its bound, so marking a write never allocates.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "migration/iolab/core/change-log.h"

typedef struct ChangeRange {
    uint64_t start;
    uint64_t end;               /* exclusive */
} ChangeRange;

struct IolabChangeLog {
    uint64_t nblocks;
    uint32_t max_ranges;
    uint32_t n;
    uint64_t pending;
    uint64_t marked;
    uint64_t taken;
    uint64_t overflows;
    bool whole_device;
    ChangeRange *ranges;
};

IolabChangeLog *iolab_change_log_new(uint64_t nblocks, uint32_t max_ranges)
{
    IolabChangeLog *log;

    if (nblocks == 0 || max_ranges == 0 ||
        max_ranges > IOLAB_CHANGE_LOG_MAX_RANGES) {
        return NULL;
    }
    log = calloc(1, sizeof(*log));
    if (!log) {
        return NULL;
    }
    log->ranges = calloc(max_ranges, sizeof(ChangeRange));
    if (!log->ranges) {
        free(log);
        return NULL;
    }
    log->nblocks = nblocks;
    log->max_ranges = max_ranges;
    return log;
}

void iolab_change_log_free(IolabChangeLog *log)
{
    if (log) {
        free(log->ranges);
        free(log);
    }
}

/* The first range whose end reaches @block (touching counts), or n. */
static uint32_t iolab_change_log_first_reaching(const IolabChangeLog *log,
                                                uint64_t block)
{
    uint32_t lo = 0, hi = log->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (log->ranges[mid].end < block) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/*
 * The bound is reached: the log cannot hold which blocks changed, so it
 * says all of them did.
 */
static void iolab_change_log_overflow(IolabChangeLog *log)
{
    log->ranges[0].start = 0;
    log->ranges[0].end = log->nblocks;
    log->n = 1;
    log->pending = log->nblocks;
    log->overflows++;
    log->whole_device = true;
}

void iolab_change_log_mark(IolabChangeLog *log, uint64_t start,
                           uint64_t count)
{
    uint64_t end;
    uint32_t lo, hi;

    if (count == 0 || start >= log->nblocks) {
        return;
    }
    end = count > log->nblocks - start ? log->nblocks : start + count;
    log->marked += end - start;

    lo = iolab_change_log_first_reaching(log, start);
    hi = lo;
    while (hi < log->n && log->ranges[hi].start <= end) {
        hi++;
    }

    if (lo == hi) {
        /* Touches nothing: a new range goes in at lo. */
        if (log->n == log->max_ranges) {
            iolab_change_log_overflow(log);
            return;
        }
        memmove(&log->ranges[lo + 1], &log->ranges[lo],
                (log->n - lo) * sizeof(ChangeRange));
        log->ranges[lo].start = start;
        log->ranges[lo].end = end;
        log->n++;
        log->pending += end - start;
        return;
    }

    /* Ranges lo..hi-1 all touch [start, end): they become one. */
    for (uint32_t i = lo; i < hi; i++) {
        log->pending -= log->ranges[i].end - log->ranges[i].start;
    }
    if (log->ranges[lo].start < start) {
        start = log->ranges[lo].start;
    }
    if (log->ranges[hi - 1].end > end) {
        end = log->ranges[hi - 1].end;
    }
    log->ranges[lo].start = start;
    log->ranges[lo].end = end;
    log->pending += end - start;
    memmove(&log->ranges[lo + 1], &log->ranges[hi],
            (log->n - hi) * sizeof(ChangeRange));
    log->n -= hi - lo - 1;
}

bool iolab_change_log_take(IolabChangeLog *log, uint64_t max_blocks,
                           uint64_t *start, uint64_t *count)
{
    ChangeRange *last;
    uint64_t len;

    if (log->n == 0 || max_blocks == 0) {
        return false;
    }
    last = &log->ranges[log->n - 1];
    len = last->end - last->start;
    if (len > max_blocks) {
        len = max_blocks;
    }
    last->end -= len;
    *start = last->end;
    *count = len;
    if (last->end == last->start) {
        log->n--;
    }
    log->pending -= len;
    log->taken += len;
    log->whole_device = false;
    return true;
}

uint64_t iolab_change_log_pending(const IolabChangeLog *log)
{
    return log->pending;
}

void iolab_change_log_clear(IolabChangeLog *log)
{
    log->n = 0;
    log->pending = 0;
    log->whole_device = false;
}

void iolab_change_log_get_stats(const IolabChangeLog *log,
                                IolabChangeLogStats *stats)
{
    stats->nblocks = log->nblocks;
    stats->max_ranges = log->max_ranges;
    stats->ranges = log->n;
    stats->pending_blocks = log->pending;
    stats->marked_blocks = log->marked;
    stats->taken_blocks = log->taken;
    stats->overflows = log->overflows;
    stats->whole_device = log->whole_device;
}
