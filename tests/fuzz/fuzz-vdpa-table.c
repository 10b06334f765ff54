/*
 * libFuzzer harness: the vdpa-mgmt instance table
 * (hw/vdpa-mgmt/core/vdpa-table.c)
 *
 * The input is a table size and a script of operations (allocate, remove,
 * look up, LIST iteration, and the migration path insert_at +
 * rebuild_free), run against the table and against a plain model of what
 * the header promises:
 *
 * - an id is handed out only when free, within 1..max, and allocation
 *   fails only when all max ids are live;
 * - freed ids are reused in FIFO order (after rebuild_free: ascending);
 * - get/remove/next answer exactly what the model holds, for any 64-bit
 *   id including 0 and ids beyond max;
 * - insert_at refuses id 0, ids beyond max and live ids.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/vdpa-mgmt/core/vdpa-table.h"

#define FUZZ_MAX_IDS 300      /* small tables, so the FIFO wraps often */

typedef struct FuzzTableModel {
    uint32_t max;
    void *slot[FUZZ_MAX_IDS + 1];
    uint32_t fifo[FUZZ_MAX_IDS];    /* free ids, oldest first */
    uint32_t nfree;
    uint32_t count;
} FuzzTableModel;

static FuzzTableModel fm;

/* Distinct non-NULL cookies standing for instance objects */
static void *fuzz_cookie(uint32_t n)
{
    return (void *)(uintptr_t)(0x1000 + 16 * (uintptr_t)n);
}

static void fuzz_model_rebuild(void)
{
    fm.nfree = 0;
    for (uint32_t id = 1; id <= fm.max; id++) {
        if (!fm.slot[id]) {
            fm.fifo[fm.nfree++] = id;
        }
    }
}

static uint32_t fuzz_model_next(uint64_t from)
{
    for (uint64_t id = from ? from : 1; id <= fm.max; id++) {
        if (fm.slot[id]) {
            return (uint32_t)id;
        }
    }
    return 0;
}

/* Ids to probe: in range, 0, max, max + 1, huge */
static uint64_t fuzz_pick_id(const uint8_t *p)
{
    switch (p[0] & 7) {
    case 0:
        return 0;
    case 1:
        return fm.max;
    case 2:
        return (uint64_t)fm.max + 1;
    case 3:
        return fuzz_ld64(p + 1);
    case 4:
        return ((uint64_t)1 << 32) + fuzz_ld16(p + 1);   /* truncates to small */
    default:
        return fuzz_ld16(p + 1) % (fm.max + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input: le16 table size (1..FUZZ_MAX_IDS), then 10-byte operations */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VdpaTable t;
    uint32_t serial = 0;

    if (size < 2) {
        return 0;
    }
    /* Bad sizes are refused and leave a table that frees cleanly */
    FUZZ_ASSERT(vdpa_table_init(&t, 0) == -1);
    vdpa_table_destroy(&t);
    FUZZ_ASSERT(vdpa_table_init(&t, VDPA_TABLE_MAX + 1) == -1);
    vdpa_table_destroy(&t);

    memset(&fm, 0, sizeof(fm));
    fm.max = fuzz_ld16(data) % FUZZ_MAX_IDS + 1;
    FUZZ_ASSERT(vdpa_table_init(&t, fm.max) == 0);
    fuzz_model_rebuild();

    for (size_t off = 2; off + 10 <= size; off += 10) {
        const uint8_t *op = data + off;
        uint64_t id = fuzz_pick_id(op + 1);
        void *p, *q;
        uint32_t got;

        switch (op[0] % 6) {
        case 0:
        case 1:
            p = fuzz_cookie(++serial);
            got = vdpa_table_alloc(&t, p);
            if (fm.nfree == 0) {
                FUZZ_ASSERT(got == 0);
                break;
            }
            /* The oldest free id */
            FUZZ_ASSERT(got == fm.fifo[0]);
            FUZZ_ASSERT(got >= 1 && got <= fm.max && !fm.slot[got]);
            memmove(fm.fifo, fm.fifo + 1, --fm.nfree * sizeof(fm.fifo[0]));
            fm.slot[got] = p;
            fm.count++;
            FUZZ_ASSERT(vdpa_table_alloc(&t, NULL) == 0);
            break;
        case 2:
            q = vdpa_table_remove(&t, id);
            if (id >= 1 && id <= fm.max && fm.slot[id]) {
                FUZZ_ASSERT(q == fm.slot[id]);
                fm.slot[id] = NULL;
                fm.fifo[fm.nfree++] = (uint32_t)id;
                fm.count--;
            } else {
                FUZZ_ASSERT(q == NULL);
            }
            break;
        case 3:
            q = vdpa_table_get(&t, id);
            FUZZ_ASSERT(q == (id >= 1 && id <= fm.max ? fm.slot[id] : NULL));
            break;
        case 4:
            FUZZ_ASSERT(vdpa_table_next(&t, id) == fuzz_model_next(id));
            break;
        case 5: {
            /* Migration: place an object at a given id, then rebuild */
            uint32_t iid = (uint32_t)id;

            p = fuzz_cookie(++serial);
            if (vdpa_table_insert_at(&t, iid, p) == 0) {
                FUZZ_ASSERT(iid >= 1 && iid <= fm.max && !fm.slot[iid]);
                fm.slot[iid] = p;
                fm.count++;
            } else {
                FUZZ_ASSERT(iid == 0 || iid > fm.max || fm.slot[iid]);
            }
            FUZZ_ASSERT(vdpa_table_insert_at(&t, 1, NULL) == -1);
            vdpa_table_rebuild_free(&t);
            fuzz_model_rebuild();
            break;
        }
        }
        FUZZ_ASSERT(t.count == fm.count);
        FUZZ_ASSERT(t.count + fm.nfree == fm.max);
    }
    vdpa_table_destroy(&t);
    FUZZ_ASSERT(t.slot == NULL && t.free_ids == NULL && t.max == 0);
    return 0;
}
