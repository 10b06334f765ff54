/*
 * vdpa-mgmt core: device-side translation cache for PASID-tagged DMA
 *
 * QEMU-free; see include/hw/vdpa-mgmt/core/vdpa-iotlb.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdlib.h>
#include <string.h>

#include "hw/vdpa-mgmt/core/vdpa-iotlb.h"

int vdpa_iotlb_init(VdpaIotlb *t, uint32_t entries, uint32_t ways)
{
    uint32_t nsets = 1;

    memset(t, 0, sizeof(*t));
    if (!ways || entries > VDPA_IOTLB_MAX_ENTRIES ||
        (entries && entries < ways)) {
        return -1;
    }
    if (!entries) {
        return 0;
    }
    while ((uint64_t)nsets * 2 * ways <= entries) {
        nsets *= 2;
    }
    t->e = calloc((size_t)nsets * ways, sizeof(*t->e));
    if (!t->e) {
        return -1;
    }
    t->nsets = nsets;
    t->ways = ways;
    return 0;
}

void vdpa_iotlb_destroy(VdpaIotlb *t)
{
    free(t->e);
    memset(t, 0, sizeof(*t));
}

uint32_t vdpa_iotlb_capacity(const VdpaIotlb *t)
{
    return t->nsets * t->ways;
}

static VdpaIotlbEntry *vdpa_iotlb_set(VdpaIotlb *t, uint32_t pasid,
                                      uint64_t pfn)
{
    uint64_t h = (pfn ^ ((uint64_t)pasid << 29)) * 0x9e3779b97f4a7c15ULL;

    return &t->e[(size_t)((h >> 32) & (t->nsets - 1)) * t->ways];
}

static VdpaIotlbEntry *vdpa_iotlb_find(VdpaIotlb *t, uint32_t pasid,
                                       uint64_t pfn)
{
    VdpaIotlbEntry *set;

    if (!t->nsets) {
        return NULL;
    }
    set = vdpa_iotlb_set(t, pasid, pfn);
    for (uint32_t w = 0; w < t->ways; w++) {
        if (set[w].perm && set[w].iova_pfn == pfn && set[w].pasid == pasid) {
            return &set[w];
        }
    }
    return NULL;
}

bool vdpa_iotlb_lookup(VdpaIotlb *t, uint32_t pasid, uint64_t iova,
                       bool write, uint64_t *pa)
{
    VdpaIotlbEntry *e = vdpa_iotlb_find(t, pasid,
                                        iova >> VDPA_IOTLB_PAGE_BITS);

    if (!e || !(e->perm & (write ? VDPA_IOTLB_W : VDPA_IOTLB_R))) {
        t->stats.misses++;
        return false;
    }
    t->stats.hits++;
    *pa = (e->pa_pfn << VDPA_IOTLB_PAGE_BITS) | (iova & VDPA_IOTLB_PAGE_MASK);
    return true;
}

void vdpa_iotlb_insert(VdpaIotlb *t, uint32_t pasid, uint64_t iova,
                       uint64_t pa, uint8_t perm)
{
    uint64_t pfn = iova >> VDPA_IOTLB_PAGE_BITS;
    VdpaIotlbEntry *e, *set;

    perm &= VDPA_IOTLB_R | VDPA_IOTLB_W;
    if (!t->nsets || !perm) {
        return;
    }
    e = vdpa_iotlb_find(t, pasid, pfn);
    if (!e) {
        set = vdpa_iotlb_set(t, pasid, pfn);
        for (uint32_t w = 0; w < t->ways && !e; w++) {
            if (!set[w].perm) {
                e = &set[w];
            }
        }
        if (!e) {
            e = &set[t->victim++ % t->ways];
            t->stats.evictions++;
        } else {
            t->count++;
        }
    }
    *e = (VdpaIotlbEntry) {
        .iova_pfn = pfn, .pa_pfn = pa >> VDPA_IOTLB_PAGE_BITS,
        .pasid = pasid, .perm = perm,
    };
    t->stats.inserts++;
}

static bool vdpa_iotlb_match(const VdpaIotlbEntry *e, uint32_t pasid,
                             uint64_t first_pfn, uint64_t last_pfn)
{
    return e->perm && (pasid == VDPA_IOTLB_ANY_PASID || e->pasid == pasid) &&
           e->iova_pfn >= first_pfn && e->iova_pfn <= last_pfn;
}

uint32_t vdpa_iotlb_invalidate(VdpaIotlb *t, uint32_t pasid, uint64_t first,
                               uint64_t last)
{
    uint64_t fp = first >> VDPA_IOTLB_PAGE_BITS;
    uint64_t lp = last >> VDPA_IOTLB_PAGE_BITS;
    uint32_t n = 0;

    t->stats.invalidations++;
    if (!t->nsets || first > last || !t->count) {
        return 0;
    }
    if (pasid != VDPA_IOTLB_ANY_PASID && lp - fp < VDPA_IOTLB_PAGEWISE) {
        /* A few pages of one PASID: look each up */
        for (uint64_t pfn = fp; pfn <= lp; pfn++) {
            VdpaIotlbEntry *e = vdpa_iotlb_find(t, pasid, pfn);

            if (e) {
                e->perm = 0;
                n++;
            }
        }
    } else {
        uint32_t total = t->nsets * t->ways;

        for (uint32_t i = 0; i < total; i++) {
            if (vdpa_iotlb_match(&t->e[i], pasid, fp, lp)) {
                t->e[i].perm = 0;
                n++;
            }
        }
    }
    t->count -= n;
    t->stats.dropped += n;
    return n;
}

uint32_t vdpa_iotlb_invalidate_pasid(VdpaIotlb *t, uint32_t pasid)
{
    return vdpa_iotlb_invalidate(t, pasid, 0, UINT64_MAX);
}

void vdpa_iotlb_flush(VdpaIotlb *t)
{
    vdpa_iotlb_invalidate(t, VDPA_IOTLB_ANY_PASID, 0, UINT64_MAX);
}
