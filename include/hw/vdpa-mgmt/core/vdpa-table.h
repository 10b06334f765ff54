/*
 * vdpa-mgmt core: the instance table
 *
 * Maps instance ids 1..max to the device's instance objects with O(1)
 * allocate, free and lookup.  Freed ids go to the back of a FIFO, so an
 * id is reused as late as possible: a stale id held by a confused driver
 * then hits "no such instance" rather than somebody else's instance.
 * Live ids are also kept in a bitmap with a summary bitmap above it (one
 * bit per non-empty word), so that the next live id is found in bounded
 * time however sparse the table is.
 * Fixed cost: about 12 bytes per possible id; no per-instance allocation.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_TABLE_H
#define HW_VDPA_MGMT_VDPA_TABLE_H

#include <stdbool.h>
#include <stdint.h>

/* Ids must fit in the doorbell's 20-bit instance field */
#define VDPA_TABLE_MAX 0xfffffu

typedef struct VdpaTable {
    uint32_t max;
    uint32_t count;
    void **slot;                /* [max + 1]; slot[0] unused */
    uint32_t *free_ids;         /* FIFO ring of free ids, max entries */
    uint32_t free_head;
    uint32_t free_count;
    uint64_t *live;             /* bit id: slot[id] is in use */
    uint64_t *summary;          /* bit w: live[w] is not zero */
    uint32_t nwords;            /* of live */
    /* Words vdpa_table_next() read, all calls: its cost, for the tests */
    uint64_t words_scanned;
} VdpaTable;

/* 0, or -1 if @max is 0 or above VDPA_TABLE_MAX, or out of memory */
int vdpa_table_init(VdpaTable *t, uint32_t max);
void vdpa_table_destroy(VdpaTable *t);

/* Store @p (not NULL) under a free id and return it; 0 when full */
uint32_t vdpa_table_alloc(VdpaTable *t, void *p);

/* The object under @id, or NULL (id 0, out of range, or free) */
void *vdpa_table_get(const VdpaTable *t, uint64_t id);

/* Remove and return the object under @id; NULL if there was none */
void *vdpa_table_remove(VdpaTable *t, uint64_t id);

/*
 * Smallest live id >= @from, or 0.  Reads at most 3 + max / 4096 words,
 * wherever that id is.
 */
uint32_t vdpa_table_next(VdpaTable *t, uint64_t from);

/*
 * Migration: put @p under a given @id (which must be free) without
 * keeping the free FIFO consistent, then vdpa_table_rebuild_free()
 * once after the last one.  Returns 0 or -1.
 */
int vdpa_table_insert_at(VdpaTable *t, uint32_t id, void *p);
void vdpa_table_rebuild_free(VdpaTable *t);

#endif
