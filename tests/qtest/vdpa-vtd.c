/*
 * qtest helpers for VT-d scalable mode (see vdpa-vtd.h)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/libqos-malloc.h"
#include "qemu/bswap.h"
#include "vdpa-vtd.h"

#define GCMD_TE     (1u << 31)
#define GCMD_SRTP   (1u << 30)
#define GCMD_QIE    (1u << 26)
#define RTADDR_SMT  (1ULL << 10)
#define IQA_DW      (1ULL << 11)
#define IQ_ENTRIES  128
#define DESC_SIZE   32

/* PASID entry, val[0] */
#define PE_P        1ULL
#define PE_AW_4LVL  (2ULL << 2)     /* 48-bit, 4-level */
#define PE_PGTT_SL  (2ULL << 6)
#define PE_PGTT_PT  (4ULL << 6)
#define SL_RW       3ULL            /* read, write */

uint32_t vtd_readl(Vtd *v, uint32_t reg)
{
    return qtest_readl(v->qts, VTD_BASE + reg);
}

uint64_t vtd_readq(Vtd *v, uint32_t reg)
{
    return qtest_readq(v->qts, VTD_BASE + reg);
}

uint64_t vtd_page(Vtd *v)
{
    uint64_t p = guest_alloc(v->alloc, 8192);

    p = ROUND_UP(p, 4096);
    qtest_memset(v->qts, p, 0, 4096);
    return p;
}

Vtd *vtd_new(QTestState *qts, QGuestAllocator *alloc)
{
    Vtd *v = g_new0(Vtd, 1);

    v->qts = qts;
    v->alloc = alloc;
    v->root = vtd_page(v);
    v->ctx_lo = vtd_page(v);
    v->pasid_dir = vtd_page(v);
    v->pasid_table = vtd_page(v);
    v->iq = vtd_page(v);
    /* Bus 0: lower context table present */
    qtest_writeq(qts, v->root, v->ctx_lo | 1);
    /* PASIDs 0-63 */
    qtest_writeq(qts, v->pasid_dir, v->pasid_table | 1);
    /* PASID 0, the RID_PASID: pass-through */
    qtest_writeq(qts, v->pasid_table, PE_PGTT_PT | PE_AW_4LVL | PE_P);
    qtest_writeq(qts, v->pasid_table + 8, 1);      /* domain 1 */
    return v;
}

void vtd_free(Vtd *v)
{
    g_free(v);
}

void vtd_add_device(Vtd *v, uint8_t devfn)
{
    uint64_t ce = v->ctx_lo + (uint64_t)(devfn & 0x7f) * 32;

    g_assert_cmpuint(devfn, <, 128);
    qtest_writeq(v->qts, ce, v->pasid_dir | 1);     /* P, PDTS 0 */
    qtest_writeq(v->qts, ce + 8, 0);                /* RID_PASID 0 */
}

uint64_t vtd_add_pasid(Vtd *v, uint32_t pasid, uint16_t did)
{
    uint64_t slpt = vtd_page(v);
    uint64_t pe = v->pasid_table + (uint64_t)pasid * 64;

    g_assert_cmpuint(pasid, <, 64);
    qtest_writeq(v->qts, pe + 8, did);
    qtest_writeq(v->qts, pe, slpt | PE_PGTT_SL | PE_AW_4LVL | PE_P);
    return slpt;
}

/* The entry for @iova at @level (4 = top), allocating tables above it */
static uint64_t slpte_addr(Vtd *v, uint64_t table, uint64_t iova, bool alloc)
{
    for (int level = 4; level > 1; level--) {
        uint64_t e = table + ((iova >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
        uint64_t val = qtest_readq(v->qts, e);

        if (!(val & SL_RW)) {
            if (!alloc) {
                return 0;
            }
            val = vtd_page(v) | SL_RW;
            qtest_writeq(v->qts, e, val);
        }
        table = val & ~0xfffULL;
    }
    return table + ((iova >> 12) & 0x1ff) * 8;
}

void vtd_map(Vtd *v, uint64_t slpt, uint64_t iova, uint64_t gpa)
{
    qtest_writeq(v->qts, slpte_addr(v, slpt, iova, true),
                 (gpa & ~0xfffULL) | SL_RW);
}

void vtd_unmap(Vtd *v, uint64_t slpt, uint64_t iova)
{
    uint64_t e = slpte_addr(v, slpt, iova, false);

    g_assert(e);
    qtest_writeq(v->qts, e, 0);
}

static void gcmd(Vtd *v, uint32_t bit)
{
    v->gcmd |= bit;
    qtest_writel(v->qts, VTD_BASE + VTD_REG_GCMD, v->gcmd);
    g_assert_cmphex(vtd_readl(v, VTD_REG_GSTS) & bit, ==, bit);
}

void vtd_enable(Vtd *v)
{
    qtest_writeq(v->qts, VTD_BASE + VTD_REG_RTADDR, v->root | RTADDR_SMT);
    /* SRTP is one-shot: latch the pointer without keeping the bit */
    qtest_writel(v->qts, VTD_BASE + VTD_REG_GCMD, GCMD_SRTP);
    g_assert_cmphex(vtd_readl(v, VTD_REG_GSTS) & GCMD_SRTP, ==, GCMD_SRTP);
    qtest_writeq(v->qts, VTD_BASE + VTD_REG_IQA, v->iq | IQA_DW);
    gcmd(v, GCMD_QIE);
    gcmd(v, GCMD_TE);
}

/* Post descriptor @lo/@hi then a wait descriptor; check the status write */
static void submit(Vtd *v, uint64_t lo, uint64_t hi)
{
    uint64_t status = v->iq + 4096 - 16;    /* last slot holds the status */
    uint8_t desc[2 * DESC_SIZE] = { 0 };

    g_assert_cmpuint(v->iq_tail + 2, <, IQ_ENTRIES - 1);
    stq_le_p(desc, lo);
    stq_le_p(desc + 8, hi);
    /* Wait: type 5, status write (bit 5), data 0x5a in bits 63:32 */
    stq_le_p(desc + DESC_SIZE, 0x5 | (1ULL << 5) | (0x5aULL << 32));
    stq_le_p(desc + DESC_SIZE + 8, status);
    qtest_writel(v->qts, status, 0);
    qtest_memwrite(v->qts, v->iq + (uint64_t)v->iq_tail * DESC_SIZE, desc,
                   sizeof(desc));
    v->iq_tail += 2;
    qtest_writeq(v->qts, VTD_BASE + VTD_REG_IQT,
                 (uint64_t)v->iq_tail * DESC_SIZE);
    g_assert_cmphex(qtest_readl(v->qts, status), ==, 0x5a);
}

void vtd_inv_context_global(Vtd *v)
{
    submit(v, 0x1 | (1ULL << 4), 0);        /* context cache, global */
    submit(v, 0x2 | (1ULL << 4), 0);        /* IOTLB, global */
}

void vtd_inv_pasid_cache(Vtd *v, uint16_t did, uint32_t pasid)
{
    /* PASID cache: type 7, granularity 01 (PASID-selective) */
    submit(v, 0x7 | (1ULL << 4) | ((uint64_t)did << 16) |
           ((uint64_t)pasid << 32), 0);
}

void vtd_inv_piotlb_pasid(Vtd *v, uint16_t did, uint32_t pasid)
{
    /* PASID-based IOTLB: type 6, granularity 10 (all in PASID) */
    submit(v, 0x6 | (2ULL << 4) | ((uint64_t)did << 16) |
           ((uint64_t)pasid << 32), 0);
}

void vtd_inv_iotlb_page(Vtd *v, uint16_t did, uint64_t iova)
{
    /* IOTLB: type 2, granularity 11 (page-selective in domain), AM 0 */
    submit(v, 0x2 | (3ULL << 4) | ((uint64_t)did << 16), iova & ~0xfffULL);
}

#define FRCD 0x220                  /* the one fault recording register */

bool vtd_fault(Vtd *v, VtdFault *f)
{
    uint64_t lo = vtd_readq(v, FRCD), hi = vtd_readq(v, FRCD + 8);

    if (!(hi & (1ULL << 63))) {
        return false;
    }
    f->addr = lo & ~0xfffULL;
    f->sid = hi & 0xffff;
    f->reason = (hi >> 32) & 0xff;
    f->pasid_present = hi & (1ULL << 31);
    f->pasid = (hi >> 40) & 0xffff;
    return true;
}

void vtd_clear_fault(Vtd *v)
{
    qtest_writeq(v->qts, VTD_BASE + FRCD + 8, 1ULL << 63);
    g_assert_cmphex(vtd_readl(v, VTD_REG_FSTS) & VTD_FSTS_PPF, ==, 0);
}
