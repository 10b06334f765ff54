/*
 * iolab core: the pure checks of a virtio-blk request
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stddef.h>

#include "hw/iolab-virtio/core/blk-req.h"

bool iolab_blk_chain_ok(const VirtqElem *e)
{
    return e->out_len >= IOLAB_BLK_HDR_SIZE && e->in_len >= 1;
}

uint32_t iolab_blk_data_len(const VirtqElem *e, bool to_guest,
                            uint32_t *nseg)
{
    uint32_t skip = to_guest ? 0 : IOLAB_BLK_HDR_SIZE;
    uint32_t len = to_guest ? e->in_len - 1 : e->out_len - IOLAB_BLK_HDR_SIZE;
    uint32_t left = len, n = 0;

    for (uint32_t i = 0; i < e->nseg && left; i++) {
        const VirtqSeg *s = &e->seg[i];
        uint32_t take;

        if (s->write != to_guest) {
            continue;
        }
        if (skip >= s->len) {
            skip -= s->len;
            continue;
        }
        take = s->len - skip;
        skip = 0;
        left -= take < left ? take : left;
        n++;
    }
    if (nseg) {
        *nseg = n;
    }
    return len;
}

const char *iolab_blk_check_rw(const IolabBlkLimits *lim, bool to_guest,
                               uint64_t sector, uint32_t data_len,
                               uint32_t nseg)
{
    uint64_t nsec = data_len / IOLAB_BLK_SECTOR_SIZE;

    if (!to_guest && lim->read_only) {
        return "write to a read-only disk";
    }
    if (data_len % IOLAB_BLK_SECTOR_SIZE) {
        return "length not a multiple of 512";
    }
    if (data_len > lim->max_data) {
        return "larger than the device's request limit";
    }
    if (lim->seg_max && nseg > lim->seg_max) {
        return "more data segments than seg_max";
    }
    if (sector > lim->capacity || nsec > lim->capacity - sector) {
        return "beyond capacity";
    }
    return NULL;
}

void iolab_blk_budget_init(IolabBlkBudget *b, uint64_t cap)
{
    *b = (IolabBlkBudget) { .cap = cap };
}

bool iolab_blk_budget_take(IolabBlkBudget *b, uint64_t len)
{
    if (b->used && (len > b->cap || b->used > b->cap - len)) {
        b->stalls++;
        return false;
    }
    b->used += len;
    if (b->used > b->peak) {
        b->peak = b->used;
    }
    return true;
}

void iolab_blk_budget_give(IolabBlkBudget *b, uint64_t len)
{
    b->used -= len <= b->used ? len : b->used;
}
