/*
 * qtest helpers for VT-d scalable mode: root and context tables, PASID
 * directory and tables, second-level page tables and the invalidation
 * queue, written from the VT-d specification (rev 4, chapters 9 and 6).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_VDPA_VTD_H
#define IOLAB_VDPA_VTD_H

#include "libqtest.h"
#include "libqos/libqos-malloc.h"

#define VTD_BASE        0xfed90000ULL
#define VTD_REG_CAP     0x08
#define VTD_REG_ECAP    0x10
#define VTD_REG_GCMD    0x18
#define VTD_REG_GSTS    0x1c
#define VTD_REG_RTADDR  0x20
#define VTD_REG_FSTS    0x34
#define VTD_REG_IQT     0x88
#define VTD_REG_IQA     0x90

#define VTD_FSTS_PPF    (1u << 1)   /* primary pending fault */

typedef struct Vtd {
    QTestState *qts;
    QGuestAllocator *alloc;
    uint64_t root;              /* root table */
    uint64_t ctx_lo;            /* context table for devfn 0-127 of bus 0 */
    uint64_t pasid_dir;
    uint64_t pasid_table;       /* PASIDs 0-63 */
    uint64_t iq;                /* invalidation queue, 128 x 256-bit */
    uint32_t iq_tail;
    uint32_t gcmd;
} Vtd;

/* Build empty tables; nothing is written to the IOMMU yet */
Vtd *vtd_new(QTestState *qts, QGuestAllocator *alloc);
void vtd_free(Vtd *v);

/* A zeroed, 4 KiB aligned page of guest memory */
uint64_t vtd_page(Vtd *v);

/*
 * Device @devfn on bus 0 uses the PASID directory, RID_PASID 0.  PASID 0
 * is pass-through (the function's untagged DMA: admin queue, MSIs).
 */
void vtd_add_device(Vtd *v, uint8_t devfn);

/* PASID @pasid (< 64) translates with a new second-level table, domain @did */
uint64_t vtd_add_pasid(Vtd *v, uint32_t pasid, uint16_t did);

/* Map / unmap one 4 KiB page in a second-level table */
void vtd_map(Vtd *v, uint64_t slpt, uint64_t iova, uint64_t gpa);
void vtd_unmap(Vtd *v, uint64_t slpt, uint64_t iova);

/* Root table pointer (scalable), invalidation queue, translation on */
void vtd_enable(Vtd *v);

/* Queued invalidations; each waits for a status write */
void vtd_inv_context_global(Vtd *v);
void vtd_inv_pasid_cache(Vtd *v, uint16_t did, uint32_t pasid);
void vtd_inv_piotlb_pasid(Vtd *v, uint16_t did, uint32_t pasid);
/*
 * Page-selective IOTLB invalidation in a domain: what second-stage
 * mappings need (a page-selective PASID-based invalidation leaves them
 * cached, as the VT-d specification says and intel-iommu does)
 */
void vtd_inv_iotlb_page(Vtd *v, uint16_t did, uint64_t iova);

/* The fault record (QEMU has one), as the IOMMU reported it */
typedef struct VtdFault {
    uint64_t addr;
    uint16_t sid;
    uint8_t reason;
    bool pasid_present;
    uint32_t pasid;
} VtdFault;

/* False if no fault is recorded */
bool vtd_fault(Vtd *v, VtdFault *f);
/* Free the record (write 1 to F); PPF clears */
void vtd_clear_fault(Vtd *v);

uint32_t vtd_readl(Vtd *v, uint32_t reg);
uint64_t vtd_readq(Vtd *v, uint32_t reg);

#endif
