/*
 * vdpa-mgmt core: the instance table
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdlib.h>
#include "hw/vdpa-mgmt/core/vdpa-table.h"

#define BITS 64u

static void vdpa_table_mark(VdpaTable *t, uint32_t id, bool live)
{
    uint32_t w = id / BITS;

    if (live) {
        t->live[w] |= 1ull << (id % BITS);
        t->summary[w / BITS] |= 1ull << (w % BITS);
    } else {
        t->live[w] &= ~(1ull << (id % BITS));
        if (!t->live[w]) {
            t->summary[w / BITS] &= ~(1ull << (w % BITS));
        }
    }
}

int vdpa_table_init(VdpaTable *t, uint32_t max)
{
    t->slot = NULL;
    t->free_ids = NULL;
    t->live = t->summary = NULL;
    t->max = 0;
    t->count = t->free_head = t->free_count = 0;
    t->words_scanned = 0;
    if (max == 0 || max > VDPA_TABLE_MAX) {
        return -1;
    }
    t->slot = calloc((size_t)max + 1, sizeof(*t->slot));
    t->free_ids = malloc((size_t)max * sizeof(*t->free_ids));
    t->nwords = max / BITS + 1;
    t->live = calloc(t->nwords, sizeof(*t->live));
    t->summary = calloc(t->nwords / BITS + 1, sizeof(*t->summary));
    if (!t->slot || !t->free_ids || !t->live || !t->summary) {
        vdpa_table_destroy(t);
        return -1;
    }
    t->max = max;
    for (uint32_t i = 0; i < max; i++) {
        t->free_ids[i] = i + 1;
    }
    t->free_count = max;
    return 0;
}

void vdpa_table_destroy(VdpaTable *t)
{
    free(t->slot);
    free(t->free_ids);
    free(t->live);
    free(t->summary);
    t->slot = NULL;
    t->free_ids = NULL;
    t->live = t->summary = NULL;
    t->max = t->count = t->free_head = t->free_count = t->nwords = 0;
}

uint32_t vdpa_table_alloc(VdpaTable *t, void *p)
{
    uint32_t id;

    if (!p || !t->free_count) {
        return 0;
    }
    id = t->free_ids[t->free_head];
    t->free_head = (t->free_head + 1) % t->max;
    t->free_count--;
    t->slot[id] = p;
    vdpa_table_mark(t, id, true);
    t->count++;
    return id;
}

void *vdpa_table_get(const VdpaTable *t, uint64_t id)
{
    if (id == 0 || id > t->max) {
        return NULL;
    }
    return t->slot[id];
}

void *vdpa_table_remove(VdpaTable *t, uint64_t id)
{
    void *p = vdpa_table_get(t, id);

    if (!p) {
        return NULL;
    }
    t->slot[id] = NULL;
    vdpa_table_mark(t, (uint32_t)id, false);
    t->count--;
    t->free_ids[(t->free_head + t->free_count) % t->max] = (uint32_t)id;
    t->free_count++;
    return p;
}

/*
 * The word of @from, then the summary from the next word on: at most
 * one live word and max / 4096 + 1 summary words are read, wherever the
 * next live id is.
 */
uint32_t vdpa_table_next(VdpaTable *t, uint64_t from)
{
    uint64_t w, bits;

    if (from == 0) {
        from = 1;
    }
    if (from > t->max) {
        return 0;
    }
    w = from / BITS;
    bits = t->live[w] & (~0ull << (from % BITS));
    t->words_scanned++;
    if (bits) {
        return (uint32_t)(w * BITS + __builtin_ctzll(bits));
    }
    for (uint64_t sw = (w + 1) / BITS; sw * BITS < t->nwords; sw++) {
        uint64_t sbits = t->summary[sw];

        t->words_scanned++;
        if (sw == (w + 1) / BITS) {
            sbits &= ~0ull << ((w + 1) % BITS);
        }
        if (sbits) {
            w = sw * BITS + __builtin_ctzll(sbits);
            t->words_scanned++;
            return (uint32_t)(w * BITS + __builtin_ctzll(t->live[w]));
        }
    }
    return 0;
}

int vdpa_table_insert_at(VdpaTable *t, uint32_t id, void *p)
{
    if (!p || id == 0 || id > t->max || t->slot[id]) {
        return -1;
    }
    t->slot[id] = p;
    vdpa_table_mark(t, id, true);
    t->count++;
    return 0;
}

void vdpa_table_rebuild_free(VdpaTable *t)
{
    t->free_head = 0;
    t->free_count = 0;
    for (uint32_t id = 1; id <= t->max; id++) {
        if (!t->slot[id]) {
            t->free_ids[t->free_count++] = id;
        }
    }
}
