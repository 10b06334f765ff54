/*
 * vdpa-mgmt core: device-side translation cache for PASID-tagged DMA
 *
 * What an ATS-capable device keeps in its ATC: translations of
 * (PASID, IOVA page) to a physical page, with the access rights the
 * IOMMU granted.  It is filled from the vIOMMU's translations and
 * emptied by its invalidation notifications (docs/vdpa-mgmt.rst).
 * Bounded: a set-associative table allocated once, 4 KiB pages; a full
 * set replaces one of its ways in turn.  Refused translations are never
 * cached, so every refused access reaches the IOMMU and is recorded.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_IOTLB_H
#define HW_VDPA_MGMT_VDPA_IOTLB_H

#include <stdbool.h>
#include <stdint.h>

#define VDPA_IOTLB_PAGE_BITS  12
#define VDPA_IOTLB_PAGE_SIZE  (1ULL << VDPA_IOTLB_PAGE_BITS)
#define VDPA_IOTLB_PAGE_MASK  (VDPA_IOTLB_PAGE_SIZE - 1)
/* Access rights of an entry */
#define VDPA_IOTLB_R          1u
#define VDPA_IOTLB_W          2u
/* invalidate(): every PASID */
#define VDPA_IOTLB_ANY_PASID  UINT32_MAX
/* Largest table: 1 << 20 entries (24 MiB) */
#define VDPA_IOTLB_MAX_ENTRIES (1u << 20)
/* Ranges of at most this many pages are invalidated page by page */
#define VDPA_IOTLB_PAGEWISE   16

typedef struct VdpaIotlbEntry {
    uint64_t iova_pfn;
    uint64_t pa_pfn;
    uint32_t pasid;
    uint8_t perm;               /* 0: free */
} VdpaIotlbEntry;

typedef struct VdpaIotlbStats {
    uint64_t hits;
    uint64_t misses;
    uint64_t inserts;
    uint64_t evictions;         /* valid entries replaced by an insert */
    uint64_t invalidations;     /* invalidate calls */
    uint64_t dropped;           /* entries removed by invalidations */
} VdpaIotlbStats;

typedef struct VdpaIotlb {
    VdpaIotlbEntry *e;          /* nsets * ways, set-major */
    uint32_t nsets;             /* power of 2 */
    uint32_t ways;
    uint32_t count;             /* valid entries */
    uint32_t victim;            /* next way to replace in a full set */
    VdpaIotlbStats stats;
} VdpaIotlb;

/*
 * @entries rounded down to a multiple of @ways with a power-of-2 number
 * of sets.  0 entries: a disabled cache (lookups miss, inserts do
 * nothing).  Returns -1 for @ways 0, @entries above the maximum or below
 * @ways (but not 0), or no memory.
 */
int vdpa_iotlb_init(VdpaIotlb *t, uint32_t entries, uint32_t ways);
void vdpa_iotlb_destroy(VdpaIotlb *t);
uint32_t vdpa_iotlb_capacity(const VdpaIotlb *t);

/*
 * A hit when (@pasid, page of @iova) is cached with the rights @write
 * needs: *@pa is the physical address of @iova.
 */
bool vdpa_iotlb_lookup(VdpaIotlb *t, uint32_t pasid, uint64_t iova,
                       bool write, uint64_t *pa);

/*
 * Cache that the page of @iova translates to the page of @pa with
 * @perm (VDPA_IOTLB_R/W; 0 caches nothing).  Replaces an entry of the
 * same page.
 */
void vdpa_iotlb_insert(VdpaIotlb *t, uint32_t pasid, uint64_t iova,
                       uint64_t pa, uint8_t perm);

/*
 * Drop every entry of @pasid (VDPA_IOTLB_ANY_PASID: of any PASID) whose
 * page overlaps IOVAs @first..@last (inclusive).  Returns the number
 * dropped.
 */
uint32_t vdpa_iotlb_invalidate(VdpaIotlb *t, uint32_t pasid, uint64_t first,
                               uint64_t last);
uint32_t vdpa_iotlb_invalidate_pasid(VdpaIotlb *t, uint32_t pasid);
void vdpa_iotlb_flush(VdpaIotlb *t);

#endif
