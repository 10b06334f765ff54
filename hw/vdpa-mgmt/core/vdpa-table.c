/*
 * vdpa-mgmt core: the instance table
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdlib.h>
#include "hw/vdpa-mgmt/core/vdpa-table.h"

int vdpa_table_init(VdpaTable *t, uint32_t max)
{
    t->slot = NULL;
    t->free_ids = NULL;
    t->max = 0;
    t->count = t->free_head = t->free_count = 0;
    if (max == 0 || max > VDPA_TABLE_MAX) {
        return -1;
    }
    t->slot = calloc((size_t)max + 1, sizeof(*t->slot));
    t->free_ids = malloc((size_t)max * sizeof(*t->free_ids));
    if (!t->slot || !t->free_ids) {
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
    t->slot = NULL;
    t->free_ids = NULL;
    t->max = t->count = t->free_head = t->free_count = 0;
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
    t->count--;
    t->free_ids[(t->free_head + t->free_count) % t->max] = (uint32_t)id;
    t->free_count++;
    return p;
}

uint32_t vdpa_table_next(const VdpaTable *t, uint64_t from)
{
    for (uint64_t id = from ? from : 1; id <= t->max; id++) {
        if (t->slot[id]) {
            return (uint32_t)id;
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
