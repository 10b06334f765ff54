/*
 * QTest: a vpri device behind intel-iommu
 *
 * Behind a vIOMMU a vpri device's DMA addresses are IOVAs, so its
 * PA-BITMAP is indexed by IOVA and filled by faults, like an address
 * translation cache (docs/vpri-host.rst).  The test programs VT-d in
 * legacy mode itself (root table, one context entry, a 3-level
 * second-level page table of 2 MiB pages) so that
 *
 *     IOVA [0, RAM)          -> GPA [0, RAM)   (for the MSI-X page)
 *     IOVA [1 GiB, 1 GiB+RAM) -> GPA [0, RAM)  (everything the driver uses)
 *
 * and the virtio driver hands the device GPA + 1 GiB.  It checks that
 * I/O through the IOMMU is correct, that the device's faults are taken on
 * IOVA pages, that evicting a guest page drops its IOVA entries, and that
 * after the guest unmaps and invalidates an IOVA range the device can no
 * longer reach it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "vpri-blk-harness.h"

#define RAM_MB              256
#define PAGE                4096
#define HUGE                (2 * MiB)
#define IOVA_OFFSET         (1 * GiB)
#define CASE_TIMEOUT_US     (60 * G_USEC_PER_SEC)
#define WAIT_US             (15 * G_USEC_PER_SEC)

#define FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << VV_F_VERSION_1) | \
     (1ULL << VV_F_ACCESS_PLATFORM))

/* VT-d registers and bits (Intel VT-d specification, chapter 11) */
#define VTD_BASE            0xfed90000ULL
#define VTD_ECAP            0x10
#define VTD_GCMD            0x18
#define VTD_GSTS            0x1c
#define VTD_RTADDR          0x20
#define VTD_CCMD            0x28
#define VTD_GCMD_TE         (1u << 31)
#define VTD_GCMD_SRTP       (1u << 30)
#define VTD_CCMD_ICC        (1ULL << 63)
#define VTD_CCMD_GLOBAL     (1ULL << 61)
#define VTD_IOTLB_IVT       (1ULL << 63)
#define VTD_IOTLB_GLOBAL    (1ULL << 60)
#define VTD_IOTLB_PSI       (3ULL << 60)
#define VTD_DOMAIN          1
/* Second-level entries: read, write, and "page size" for a 2 MiB leaf */
#define SL_R                (1ULL << 0)
#define SL_W                (1ULL << 1)
#define SL_PS               (1ULL << 7)

typedef struct Vtd {
    uint64_t root, context, l3, l2_ident, l2_alias;
    uint32_t iotlb_reg;     /* offset of the IOTLB invalidate register */
} Vtd;

static uint64_t alloc_page(Ctx *c)
{
    uint64_t p = guest_alloc(&c->alloc, PAGE);

    g_assert(p && !(p % PAGE));
    qtest_memset(c->qts, p, 0, PAGE);
    return p;
}

static void vtd_wait_clear64(Ctx *c, uint32_t reg, uint64_t bit)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    while (qtest_readq(c->qts, VTD_BASE + reg) & bit) {
        g_assert(g_get_monotonic_time() < deadline);
    }
}

static void vtd_gcmd(Ctx *c, uint32_t cmd, uint32_t status)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    qtest_writel(c->qts, VTD_BASE + VTD_GCMD, cmd);
    while ((qtest_readl(c->qts, VTD_BASE + VTD_GSTS) & status) != status) {
        g_assert(g_get_monotonic_time() < deadline);
    }
}

static void vtd_flush_iotlb(Ctx *c, Vtd *v, uint64_t cmd, uint64_t iva)
{
    qtest_writeq(c->qts, VTD_BASE + v->iotlb_reg - 8, iva);
    qtest_writeq(c->qts, VTD_BASE + v->iotlb_reg, VTD_IOTLB_IVT | cmd |
                 ((uint64_t)VTD_DOMAIN << 32));
    vtd_wait_clear64(c, v->iotlb_reg, VTD_IOTLB_IVT);
}

/* Point the 2 MiB pages of an L2 table at GPA [0, RAM). */
static void vtd_map_ram(Ctx *c, uint64_t l2)
{
    uint64_t pte[RAM_MB / 2];

    for (unsigned i = 0; i < G_N_ELEMENTS(pte); i++) {
        stq_le_p(&pte[i], (uint64_t)i * HUGE | SL_PS | SL_R | SL_W);
    }
    qtest_memwrite(c->qts, l2, pte, sizeof(pte));
}

/* Build the tables and turn DMA remapping on for the device at @devfn. */
static void vtd_enable(Ctx *c, Vtd *v, int devfn)
{
    uint64_t ecap = qtest_readq(c->qts, VTD_BASE + VTD_ECAP);

    v->iotlb_reg = ((ecap >> 8) & 0x3ff) * 16 + 8;
    v->root = alloc_page(c);
    v->context = alloc_page(c);
    v->l3 = alloc_page(c);
    v->l2_ident = alloc_page(c);
    v->l2_alias = alloc_page(c);

    /* Root entry of bus 0 -> context table; context entry -> L3 table */
    qtest_writeq(c->qts, v->root, v->context | 1);
    qtest_writeq(c->qts, v->context + 16 * devfn, v->l3 | 1);
    qtest_writeq(c->qts, v->context + 16 * devfn + 8,
                 1 /* AW: 39 bits, 3 levels */ | (VTD_DOMAIN << 8));
    /* L3 entries cover 1 GiB each: [0, 1G) and [1G, 2G) */
    qtest_writeq(c->qts, v->l3, v->l2_ident | SL_R | SL_W);
    qtest_writeq(c->qts, v->l3 + 8, v->l2_alias | SL_R | SL_W);
    vtd_map_ram(c, v->l2_ident);
    vtd_map_ram(c, v->l2_alias);

    qtest_writeq(c->qts, VTD_BASE + VTD_RTADDR, v->root);
    vtd_gcmd(c, VTD_GCMD_SRTP, VTD_GCMD_SRTP);
    qtest_writeq(c->qts, VTD_BASE + VTD_CCMD, VTD_CCMD_ICC | VTD_CCMD_GLOBAL);
    vtd_wait_clear64(c, VTD_CCMD, VTD_CCMD_ICC);
    vtd_flush_iotlb(c, v, VTD_IOTLB_GLOBAL, 0);
    vtd_gcmd(c, VTD_GCMD_TE, VTD_GCMD_TE);
}

/* Unmap the 2 MiB IOVA page at @iova and invalidate just that page. */
static void vtd_unmap_huge(Ctx *c, Vtd *v, uint64_t iova)
{
    g_assert(iova >= IOVA_OFFSET && !(iova % HUGE));
    qtest_writeq(c->qts, v->l2_alias + 8 * ((iova - IOVA_OFFSET) / HUGE), 0);
    vtd_flush_iotlb(c, v, VTD_IOTLB_PSI, iova | 9 /* 2^9 pages */);
}

static Ctx *start(void)
{
    Ctx *c = ctx_new("vpri-iommu");
    g_autofree char *args =
        g_strdup_printf("-M q35 -m %d -nodefaults -d guest_errors -D %s "
                        "-device intel-iommu,aw-bits=39,intremap=off "
                        "-object vpri-host,id=vh0 "
                        "-blockdev driver=file,node-name=d0,filename=%s "
                        "-device vpri-blk,drive=d0,host=vh0,id=vblk0",
                        RAM_MB, c->log, c->img);

    ctx_connect(c, args);
    return c;
}

/* The device's entry in query-vpri (the caller unrefs the response). */
static QDict *query_dev(Ctx *c, QDict **rsp)
{
    QDict *ret;
    QList *devs;

    *rsp = qtest_qmp(c->qts, "{'execute': 'query-vpri'}");
    ret = qdict_get_qdict(*rsp, "return");
    g_assert(ret);
    devs = qdict_get_qlist(ret, "devices");
    g_assert(devs && !qlist_empty(devs));
    return qobject_to(QDict, qlist_peek(devs));
}

typedef struct DevCounts {
    bool has_iova;
    uint64_t translations, unmapped, refused;
    uint64_t raised, failed, not_present, read_write;
} DevCounts;

static DevCounts counts(Ctx *c)
{
    QDict *rsp;
    QDict *d = query_dev(c, &rsp);
    QDict *faults = qdict_get_qdict(d, "faults");
    QDict *pae = qdict_get_qdict(d, "pae");
    DevCounts k = {
        .raised = qdict_get_int(faults, "raised"),
        .failed = qdict_get_int(faults, "failed"),
        .not_present = qdict_get_int(pae, "not-present"),
        .read_write = qdict_get_int(pae, "read-write"),
    };

    if (qdict_haskey(d, "iova")) {
        QDict *iova = qdict_get_qdict(d, "iova");

        k.has_iova = true;
        k.translations = qdict_get_int(iova, "translations");
        k.unmapped = qdict_get_int(iova, "unmapped");
        k.refused = qdict_get_int(iova, "refused");
    }
    qobject_unref(rsp);
    g_test_message("raised %" PRIu64 " failed %" PRIu64 " np %" PRIu64
                   " rw %" PRIu64 " iova: translations %" PRIu64
                   " unmapped %" PRIu64 " refused %" PRIu64, k.raised,
                   k.failed, k.not_present, k.read_write, k.translations,
                   k.unmapped, k.refused);
    return k;
}

static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed * 29 + i * 13 + (i >> 8));
    }
}

/* One request with its data at GPA @data; returns the status byte. */
static uint8_t blk_rw(Ctx *c, uint32_t type, uint64_t sector, uint64_t data,
                      uint32_t len)
{
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint64_t status = guest_alloc(&c->alloc, 1);
    uint8_t raw[16];
    uint32_t id, used_len;
    uint8_t st;
    VVBuf bufs[3] = {
        { hdr, 16, false },
        { data, len, type == BLK_T_IN },
        { status, 1, true },
    };

    stl_le_p(raw, type);
    stl_le_p(raw + 4, 0);
    stq_le_p(raw + 8, sector);
    qtest_memwrite(c->qts, hdr, raw, sizeof(raw));
    qtest_writeb(c->qts, status, 0xff);
    vv_queue_publish(q, vv_queue_add_chain(q, bufs, 3, false));
    vv_queue_kick(q);
    g_assert(vv_queue_wait_used(q, &id, &used_len, WAIT_US));
    st = qtest_readb(c->qts, status);
    guest_free(&c->alloc, hdr);
    guest_free(&c->alloc, status);
    return st;
}

static void write_read_check(Ctx *c, uint64_t sector, uint64_t data,
                             uint32_t len, uint32_t seed)
{
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);

    pattern(want, len, seed);
    qtest_memwrite(c->qts, data, want, len);
    g_assert_cmpint(blk_rw(c, BLK_T_OUT, sector, data, len), ==, BLK_S_OK);
    qtest_memset(c->qts, data, 0x5a, len);
    g_assert_cmpint(blk_rw(c, BLK_T_IN, sector, data, len), ==, BLK_S_OK);
    qtest_memread(c->qts, data, got, len);
    g_assert(memcmp(got, want, len) == 0);
}

/* Remapping on, the driver's addresses shifted into the alias. */
static Ctx *start_translated(Vtd *v)
{
    Ctx *c = start();

    vtd_enable(c, v, c->d->devfn);
    c->d->dma_offset = IOVA_OFFSET;
    ctx_msix(c, 2);
    ctx_init_features(c, 1, FEATURES);
    return c;
}

static void test_untranslated_until_faulted(void)
{
    Vtd v;
    Ctx *c = start();
    DevCounts k0 = counts(c), k1;
    uint64_t data;

    /* Behind an IOMMU the bitmap starts empty: nothing is translated. */
    g_assert(k0.has_iova);
    g_assert_cmpuint(k0.read_write, ==, 0);
    g_assert_cmpuint(k0.translations, ==, 0);

    vtd_enable(c, &v, c->d->devfn);
    c->d->dma_offset = IOVA_OFFSET;
    ctx_msix(c, 2);
    ctx_init_features(c, 1, FEATURES);
    data = guest_alloc(&c->alloc, 8 * PAGE);
    write_read_check(c, 16, data, 8 * PAGE, 1);

    /*
     * Every page the device touched (rings, header, data, status) faulted
     * once, and its entry is present at its IOVA, not at its GPA.
     */
    k1 = counts(c);
    g_assert_cmpuint(k1.failed, ==, 0);
    g_assert_cmpuint(k1.raised, >=, 8 + 3);
    g_assert_cmpuint(k1.translations, >=, 8 + 3);
    g_assert_cmpuint(k1.read_write, ==, k1.translations);
    ctx_stop(c);
}

static void test_eviction_drops_translations(void)
{
    Vtd v;
    Ctx *c = start_translated(&v);
    uint64_t data = guest_alloc(&c->alloc, 16 * PAGE);
    DevCounts before, evicted, after;
    QDict *rsp;

    write_read_check(c, 0, data, 16 * PAGE, 2);
    before = counts(c);
    g_assert_cmpuint(before.translations, >=, 16);

    /* Evict all of guest RAM: every IOVA alias must go with its page. */
    rsp = qtest_qmp(c->qts, "{'execute': 'vpri-reclaim', 'arguments': "
                    "{'host': 'vh0', 'percent': 100}}");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    evicted = counts(c);
    g_assert_cmpuint(evicted.translations, <, before.translations);
    g_assert_cmpuint(evicted.read_write, ==, evicted.translations);

    /* The same I/O again: faults on the IOVA pages, correct data. */
    write_read_check(c, 0, data, 16 * PAGE, 3);
    after = counts(c);
    g_assert_cmpuint(after.failed, ==, 0);
    g_assert_cmpuint(after.raised, >=, before.raised + 16);
    g_assert_cmpuint(after.translations, >=, 16);
    ctx_stop(c);
}

static void test_unmap_invalidate(void)
{
    Vtd v;
    Ctx *c = start_translated(&v);
    /* A buffer with a 2 MiB page of its own, apart from rings and headers */
    uint64_t big = guest_alloc(&c->alloc, 2 * HUGE);
    uint64_t data = ROUND_UP(big, HUGE);
    DevCounts before, unmapped, after;

    g_assert(big);
    write_read_check(c, 8, data, 4 * PAGE, 4);
    before = counts(c);
    g_assert_cmpuint(before.unmapped, ==, 0);

    vtd_unmap_huge(c, &v, data + IOVA_OFFSET);
    unmapped = counts(c);
    g_assert_cmpuint(unmapped.unmapped, >=, 4);
    g_assert_cmpuint(unmapped.translations, ==,
                     before.translations - unmapped.unmapped);

    /* The device can no longer reach the buffer: an I/O error, no data. */
    qtest_memset(c->qts, data, 0x77, 4 * PAGE);
    g_assert_cmpint(blk_rw(c, BLK_T_IN, 8, data, 4 * PAGE), ==,
                    BLK_S_IOERR);
    after = counts(c);
    g_assert_cmpuint(after.refused, >=, 1);
    g_assert_cmpuint(after.failed, >=, 1);
    for (uint32_t off = 0; off < 4 * PAGE; off += PAGE) {
        g_assert_cmpint(qtest_readb(c->qts, data + off), ==, 0x77);
    }
    assert_logged(c, "is not mapped by the IOMMU");

    /* Other buffers still work. */
    write_read_check(c, 64, guest_alloc(&c->alloc, 2 * PAGE), 2 * PAGE, 5);
    assert_running(c);
    ctx_stop(c);
}

int main(int argc, char **argv)
{
    if (!vblk_tests_init(&argc, &argv, CASE_TIMEOUT_US)) {
        return g_test_run();
    }
    add_test("/iolab/vpri-iommu/untranslated-until-faulted",
             test_untranslated_until_faulted);
    add_test("/iolab/vpri-iommu/eviction-drops-translations",
             test_eviction_drops_translations);
    add_test("/iolab/vpri-iommu/unmap-invalidate", test_unmap_invalidate);
    return g_test_run();
}
