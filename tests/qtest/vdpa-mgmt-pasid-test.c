/*
 * qtests for vdpa-mgmt PASID binding through intel-iommu in scalable
 * mode: what an instance reaches is exactly what the guest mapped for
 * its PASID, faults are recorded, and unmap + invalidation revokes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vdpa-mgmt-aq.h"
#include "vdpa-vtd.h"

#define IMG_SIZE (1 * 1024 * 1024)
#define DEVFN 0x20                      /* addr=04.0 */
#define PASID_A 5
#define PASID_B 6
#define DID_A 2
#define DID_B 3
#define IOVA_A 0x100000000ULL
#define IOVA_B 0x200000000ULL
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define FEATURES_OK_STATUS (VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER | \
                            VDPA_ST_FEATURES_OK)

typedef struct P {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VMAdmin *a;
    char *img;
} P;

static P *p_start_with(const char *iommu, const char *props)
{
    P *p = g_new0(P, 1);
    g_autoptr(GError) err = NULL;
    int fd = g_file_open_tmp("vdpa-pasid-XXXXXX.img", &p->img, &err);

    g_assert_no_error(err);
    g_assert_cmpint(ftruncate(fd, IMG_SIZE), ==, 0);
    close(fd);
    p->qts = qtest_initf("-M q35 -m 512M -nodefaults %s "
                         "-blockdev driver=file,node-name=d0,filename=%s,"
                         "locking=off "
                         "-device vdpa-mgmt,id=vm0,addr=04.0,blk-nodes=d0%s",
                         iommu, p->img, props);
    pc_alloc_init(&p->alloc, p->qts, 0);
    p->bus = qpci_new_pc(p->qts, &p->alloc);
    p->a = vm_open(p->qts, &p->alloc, p->bus, 16);
    g_assert_cmpint(p->a->pdev->devfn, ==, DEVFN);
    /* As the guest's PCI core does before using PASIDs */
    vm_enable_pasid(p->a);
    return p;
}

static P *p_start(const char *iommu)
{
    return p_start_with(iommu, "");
}

static void p_stop(P *p)
{
    vm_close(p->a);
    qpci_free_pc(p->bus);
    alloc_destroy(&p->alloc);
    qtest_quit(p->qts);
    unlink(p->img);
    g_free(p->img);
    g_free(p);
}

static VMCqe bind_pasid(VMAdmin *a, uint32_t inst, uint32_t pasid)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_BIND_PASID, inst);

    c.u.pasid.pasid = pasid;
    return vm_exec(a, &c);
}

static uint8_t inst_status(VMAdmin *a, uint32_t inst)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_QUERY, inst);

    c.buf_addr = a->buf;
    c.buf_len = VDPA_QUERY_SIZE;
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    return qtest_readb(a->qts, a->buf + VDPA_QR_STATUS);
}

static uint64_t inst_dma_faults(VMAdmin *a, uint32_t inst)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_STATS, inst);

    c.buf_addr = a->buf;
    c.buf_len = VDPA_STATS_SIZE;
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    return qtest_readq(a->qts, a->buf + VDPA_SR_DMA_FAULTS);
}

/* Wait until the instance reports NEEDS_RESET */
static bool wait_needs_reset(VMAdmin *a, uint32_t inst)
{
    for (int i = 0; i < 2000; i++) {
        if (inst_status(a, inst) & VDPA_ST_NEEDS_RESET) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

static void assert_page_at(QTestState *qts, uint64_t addr, uint8_t val,
                           int line)
{
    uint8_t buf[4096];

    qtest_memread(qts, addr, buf, sizeof(buf));
    for (int i = 0; i < 4096; i++) {
        if (buf[i] != val) {
            g_test_message("line %d: byte %d of page 0x%" PRIx64, line, i,
                           addr);
        }
        g_assert_cmphex(buf[i], ==, val);
    }
}

#define assert_page(qts, addr, val) assert_page_at(qts, addr, val, __LINE__)

/* Bring an instance up with its ring at @ring (an IOVA of its PASID) */
static void start_queue(VMAdmin *a, uint32_t inst, VMRing *r, uint64_t ring)
{
    VdpaCmd c;

    vm_ring_init(r, ring);
    vm_set_status(a, inst, FEATURES_OK_STATUS, VM_F_VERSION_1);
    c = vm_ring_setup_cmd(a, r, inst, 0);
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    vm_set_status(a, inst, FEATURES_OK_STATUS | VDPA_ST_DRIVER_OK,
                  VM_F_VERSION_1);
}

/*
 * Translation for PASID_A of the function: @ring at its guest-physical
 * address, IOVA_A to @data.  Returns the second-stage table.
 */
static uint64_t map_pasid_a(Vtd *v, uint64_t ring, uint64_t data)
{
    uint64_t sl;

    vtd_add_device(v, DEVFN);
    sl = vtd_add_pasid(v, PASID_A, DID_A);
    vtd_map(v, sl, ring, ring);
    vtd_map(v, sl, IOVA_A, data);
    vtd_enable(v);
    vtd_inv_context_global(v);
    return sl;
}

/* A blk instance bound to PASID_A, its queue 0 at @ring */
static uint32_t bound_blk(VMAdmin *a, VMRing *r, uint64_t ring)
{
    uint32_t id = vm_create_blk(a, 1, 0);

    g_assert_cmpuint(bind_pasid(a, id, PASID_A).status, ==, VDPA_S_OK);
    start_queue(a, id, r, ring);
    return id;
}

#define IOMMU "-device intel-iommu,intremap=off,x-scalable-mode=on," \
              "x-pasid-mode=on,aw-bits=48"

static void test_caps(void)
{
    P *p = p_start(IOMMU);
    VdpaCmd c = vm_cmd_new(p->a, VDPA_OP_DISCOVER, 0);
    uint64_t ecap = qtest_readq(p->qts, VTD_BASE + VTD_REG_ECAP);

    /* PASID supported, 20 bits (PSS = bits - 1), so Linux allows > 2 */
    g_assert_true(ecap & (1ULL << 40));
    g_assert_cmpuint((ecap >> 35) & 0x1f, ==, 19);
    c.buf_addr = p->a->buf;
    c.buf_len = VDPA_DISCOVER_SIZE;
    g_assert_cmpuint(vm_exec(p->a, &c).status, ==, VDPA_S_OK);
    g_assert_cmpuint(qtest_readb(p->qts, p->a->buf + VDPA_DISC_PASID_BITS),
                     ==, 20);
    p_stop(p);
}

/*
 * The function's PCIe PASID extended capability, as a guest's PCI core
 * finds it: first in extended config space, 20-bit PASIDs, no execute
 * or privileged mode; only PASID Enable is writable, and a bind needs it.
 */
static void test_pasid_capability(void)
{
    P *p = p_start(IOMMU);
    uint32_t hdr = vm_ext_config_readl(p->a, 0x100);
    uint32_t reg = vm_ext_config_readl(p->a, 0x104);
    uint32_t id = vm_create_blk(p->a, 1, 0);
    VMCqe r;

    g_assert_cmphex(hdr & 0xffff, ==, 0x1b);            /* PASID */
    g_assert_cmpuint((hdr >> 16) & 0xf, ==, 1);          /* version */
    g_assert_cmphex(hdr >> 20, ==, 0);                   /* last one */
    g_assert_cmpuint((reg >> 8) & 0x1f, ==, 20);         /* max width */
    g_assert_cmphex(reg & 0x6, ==, 0);                   /* no exec/priv */
    g_assert_cmphex(reg >> 16, ==, 1);                   /* enabled (p_start) */

    /* Disabled: binding is refused, its DMA would carry a PASID */
    vm_ext_config_writew(p->a, 0x106, 0x7);
    g_assert_cmphex(vm_ext_config_readl(p->a, 0x104) >> 16, ==, 1);
    vm_ext_config_writew(p->a, 0x106, 0);
    g_assert_cmphex(vm_ext_config_readl(p->a, 0x104) >> 16, ==, 0);
    r = bind_pasid(p->a, id, PASID_A);
    g_assert_cmpuint(r.status, ==, VDPA_S_EINVAL);
    g_assert_cmphex(r.qual, ==, VDPA_Q_PASID_DISABLED);
    vm_enable_pasid(p->a);
    g_assert_cmpuint(bind_pasid(p->a, id, PASID_A).status, ==, VDPA_S_OK);
    p_stop(p);
}

/* Without x-pasid-mode the vIOMMU translates no PASID: bind refused */
static void test_no_pasid_mode(void)
{
    P *p = p_start("-device intel-iommu,intremap=off,x-scalable-mode=on");
    uint32_t id = vm_create_blk(p->a, 1, 0);
    VMCqe r = bind_pasid(p->a, id, 1);

    g_assert_cmpuint(r.status, ==, VDPA_S_ENXIO);
    g_assert_cmphex(r.qual, ==, VDPA_Q_PASID_UNSUPP);
    p_stop(p);
}

static void test_isolation_and_invalidation(void)
{
    P *p = p_start(IOMMU);
    VMAdmin *a = p->a;
    Vtd *v = vtd_new(p->qts, &p->alloc);
    uint64_t ring_a = vtd_page(v), ring_b = vtd_page(v);
    uint64_t data_a = vtd_page(v), data_b = vtd_page(v);
    uint64_t sl_a, sl_b;
    uint32_t ia, ib, ic;
    VMRing ra, rb, bad;
    VtdFault f;
    VdpaCmd c;
    VMCqe r;
    QDict *reply, *inst;

    vtd_add_device(v, DEVFN);
    sl_a = vtd_add_pasid(v, PASID_A, DID_A);
    sl_b = vtd_add_pasid(v, PASID_B, DID_B);
    /* Each PASID sees its own ring page (at its GPA) and its data page */
    vtd_map(v, sl_a, ring_a, ring_a);
    vtd_map(v, sl_a, IOVA_A, data_a);
    vtd_map(v, sl_b, ring_b, ring_b);
    vtd_map(v, sl_b, IOVA_B, data_b);
    vtd_enable(v);
    vtd_inv_context_global(v);

    /* The function's own DMA (admin queue) is pass-through: still works */
    ia = vm_create_blk(a, 1, 0);
    ib = vm_create_blk(a, 1, 0);
    g_assert_cmpuint(bind_pasid(a, ia, PASID_A).status, ==, VDPA_S_OK);
    g_assert_cmpuint(bind_pasid(a, ib, PASID_B).status, ==, VDPA_S_OK);
    r = bind_pasid(a, ia, 1u << 20);
    g_assert_cmpuint(r.status, ==, VDPA_S_EINVAL);
    g_assert_cmphex(r.qual, ==, VDPA_Q_INVALID_FIELD);

    /* A's ring where only PASID B has a mapping: out of its range */
    vm_set_status(a, ia, FEATURES_OK_STATUS, VM_F_VERSION_1);
    vm_ring_init(&bad, ring_b);
    c = vm_ring_setup_cmd(a, &bad, ia, 0);
    r = vm_exec(a, &c);
    g_assert_cmpuint(r.status, ==, VDPA_S_EINVAL);
    g_assert_cmphex(r.qual, ==, VDPA_Q_RING_RANGE);
    vm_set_status(a, ia, 0, 0);

    start_queue(a, ia, &ra, ring_a);
    start_queue(a, ib, &rb, ring_b);
    /* Rebinding under running queues is refused */
    r = bind_pasid(a, ia, PASID_B);
    g_assert_cmpuint(r.status, ==, VDPA_S_EBUSY);
    g_assert_cmphex(r.qual, ==, VDPA_Q_BAD_STATE);

    /* B writes its page to the disk, A reads it back through its own IOVA */
    qtest_memset(p->qts, data_b, 0xbb, 4096);
    g_assert_cmpint(vm_blk_io(a, &rb, ib, 0, BLK_T_OUT, 0, IOVA_B, 4096), ==,
                    0);
    g_assert_cmpint(vm_blk_io(a, &ra, ia, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    assert_page(p->qts, data_a, 0xbb);

    /* A aims at B's IOVA: the DMA faults, nothing lands in B's page */
    qtest_memset(p->qts, data_b, 0xcc, 4096);
    vtd_clear_fault(v);
    vm_blk_post(a, &ra, ia, 0, BLK_T_IN, 0, IOVA_B, 4096);
    g_assert_true(wait_needs_reset(a, ia));
    assert_page(p->qts, data_b, 0xcc);
    g_assert_cmpuint(inst_dma_faults(a, ia), >=, 1);
    /* Recorded by the IOMMU: A's requester id and PASID, B's IOVA */
    g_assert_cmphex(qtest_readl(p->qts, VTD_BASE + VTD_REG_FSTS) &
                    VTD_FSTS_PPF, ==, VTD_FSTS_PPF);
    g_assert_true(vtd_fault(v, &f));
    g_assert_cmphex(f.addr, ==, IOVA_B);
    g_assert_cmphex(f.sid, ==, DEVFN);
    g_assert_true(f.pasid_present);
    g_assert_cmpuint(f.pasid, ==, PASID_A);
    vtd_clear_fault(v);
    /* And A's write from B's IOVA reads nothing of B into the disk */
    vm_set_status(a, ia, 0, 0);
    start_queue(a, ia, &ra, ring_a);
    vm_blk_post(a, &ra, ia, 0, BLK_T_OUT, 8, IOVA_B, 4096);
    g_assert_true(wait_needs_reset(a, ia));
    g_assert_cmpint(vm_blk_io(a, &rb, ib, 0, BLK_T_IN, 8, IOVA_B, 4096), ==,
                    0);
    assert_page(p->qts, data_b, 0x00);
    /* B is unaffected by A's faults */
    g_assert_cmphex(inst_status(a, ib) & VDPA_ST_NEEDS_RESET, ==, 0);

    /* Invalidation: B's page unmapped and flushed is no longer reachable */
    vtd_clear_fault(v);
    qtest_memset(p->qts, data_b, 0xdd, 4096);
    vtd_unmap(v, sl_b, IOVA_B);
    vtd_inv_piotlb_pasid(v, DID_B, PASID_B);
    vm_blk_post(a, &rb, ib, 0, BLK_T_IN, 0, IOVA_B, 4096);
    g_assert_true(wait_needs_reset(a, ib));
    assert_page(p->qts, data_b, 0xdd);
    g_assert_true(vtd_fault(v, &f));
    g_assert_cmphex(f.addr, ==, IOVA_B);
    g_assert_cmpuint(f.pasid, ==, PASID_B);

    /*
     * A buffer in the interrupt range is never DMA-translated: refused,
     * not an abort (intel-iommu asserts if asked to translate it).
     */
    vm_set_status(a, ia, 0, 0);
    start_queue(a, ia, &ra, ring_a);
    vm_blk_post(a, &ra, ia, 0, BLK_T_IN, 0, 0xfee00000ULL, 4096);
    g_assert_true(wait_needs_reset(a, ia));

    /* QMP shows the binding; unbinding what is not bound is refused */
    reply = qtest_qmp(p->qts, "{'execute': 'query-vdpa-mgmt'}");
    inst = qobject_to(QDict, qlist_peek(qdict_get_qlist(
        qobject_to(QDict, qlist_peek(qdict_get_qlist(reply, "return"))),
        "instances")));
    g_assert_cmpint(qdict_get_int(inst, "pasid"), ==, PASID_A);
    qobject_unref(reply);
    ic = vm_create_blk(a, 1, 0);
    r = bind_pasid(a, ic, VDPA_NO_PASID);
    g_assert_cmpuint(r.status, ==, VDPA_S_EINVAL);
    g_assert_cmphex(r.qual, ==, VDPA_Q_PASID_UNBOUND);
    g_assert_cmpuint(bind_pasid(a, ic, 9).status, ==, VDPA_S_OK);
    g_assert_cmpuint(bind_pasid(a, ic, VDPA_NO_PASID).status, ==, VDPA_S_OK);

    vtd_free(v);
    p_stop(p);
}

/* The function's counters in query-vdpa-mgmt */
static int64_t fn_counter(QTestState *qts, const char *name)
{
    QDict *reply = qtest_qmp(qts, "{'execute': 'query-vdpa-mgmt', "
                             "'arguments': {'brief': true}}");
    QDict *info = qobject_to(QDict, qlist_peek(qdict_get_qlist(reply,
                                                               "return")));
    int64_t v = qdict_get_int(info, name);

    qobject_unref(reply);
    return v;
}

/*
 * The device-side translation cache: a second I/O on the same pages asks
 * the vIOMMU for nothing; a page-selective PASID invalidation drops the
 * one page, a PASID-wide one all of the PASID's pages, and each is
 * translated again, to what the guest mapped now.
 */
static void test_iotlb(void)
{
    P *p = p_start(IOMMU);
    VMAdmin *a = p->a;
    Vtd *v = vtd_new(p->qts, &p->alloc);
    uint64_t ring = vtd_page(v), data = vtd_page(v), data2 = vtd_page(v);
    uint64_t sl;
    int64_t tr, hits, drops, invs, per_io;
    uint32_t id;
    VMRing r;

    sl = map_pasid_a(v, ring, data);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-entries"), ==, 4096);
    id = bound_blk(a, &r, ring);

    /* First I/O: misses, filled from the vIOMMU (ring page, data page) */
    qtest_memset(p->qts, data, 0x42, 4096);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_OUT, 0, IOVA_A, 4096), ==,
                    0);
    tr = fn_counter(p->qts, "pasid-translations");
    g_assert_cmpint(tr, >=, 2);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-misses"), >=, tr);
    /* Same pages again: all hits, the vIOMMU is not asked */
    hits = fn_counter(p->qts, "iotlb-hits");
    qtest_memset(p->qts, data, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    assert_page(p->qts, data, 0x42);
    g_assert_cmpint(fn_counter(p->qts, "pasid-translations"), ==, tr);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-hits"), >, hits);

    /*
     * The guest remaps IOVA_A to another page and invalidates that page
     * (page-selective IOTLB invalidation: the tables are second-stage):
     * only its entry goes, and the next read lands in the new page.
     */
    invs = fn_counter(p->qts, "iotlb-invalidations");
    drops = fn_counter(p->qts, "iotlb-dropped");
    vtd_unmap(v, sl, IOVA_A);
    vtd_map(v, sl, IOVA_A, data2);
    vtd_inv_iotlb_page(v, DID_A, IOVA_A);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-invalidations"), ==, invs + 1);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-dropped"), ==, drops + 1);
    qtest_memset(p->qts, data, 0, 4096);
    qtest_memset(p->qts, data2, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    assert_page(p->qts, data2, 0x42);
    assert_page(p->qts, data, 0);
    g_assert_cmpint(fn_counter(p->qts, "pasid-translations"), ==, tr + 1);

    /* PASID-wide: both of the PASID's pages go, both are translated */
    vtd_inv_piotlb_pasid(v, DID_A, PASID_A);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-dropped"), ==, drops + 3);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    g_assert_cmpint(fn_counter(p->qts, "pasid-translations"), ==, tr + 3);
    vtd_free(v);
    p_stop(p);

    /* iotlb-entries=0: no cache, every page access is translated */
    p = p_start_with(IOMMU, ",iotlb-entries=0");
    a = p->a;
    v = vtd_new(p->qts, &p->alloc);
    ring = vtd_page(v);
    data = vtd_page(v);
    sl = map_pasid_a(v, ring, data);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-entries"), ==, 0);
    id = bound_blk(a, &r, ring);
    tr = fn_counter(p->qts, "pasid-translations");
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    per_io = fn_counter(p->qts, "pasid-translations") - tr;
    g_assert_cmpint(per_io, >, 2);          /* more than one per page */
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    g_assert_cmpint(fn_counter(p->qts, "pasid-translations"), ==,
                    tr + 2 * per_io);
    g_assert_cmpint(fn_counter(p->qts, "iotlb-hits"), ==, 0);
    vtd_free(v);
    p_stop(p);
}

/* A PASID-bound instance keeps translating through it after migration */
static void test_migration(void)
{
    P *p = p_start(IOMMU);
    VMAdmin *a = p->a;
    Vtd *v = vtd_new(p->qts, &p->alloc);
    uint64_t ring = vtd_page(v), data = vtd_page(v), other = vtd_page(v);
    g_autofree char *uri = g_strdup_printf("unix:%s/vdpa-pmig-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *args = NULL;
    uint32_t id;
    VMRing r;
    QTestState *dst;
    QDict *rsp;
    int devfn;

    map_pasid_a(v, ring, data);
    id = bound_blk(a, &r, ring);
    qtest_memset(p->qts, data, 0x77, 4096);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_OUT, 0, IOVA_A, 4096), ==,
                    0);

    args = g_strdup_printf("-M q35 -m 512M -nodefaults %s "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,addr=04.0,blk-nodes=d0 "
                           "-incoming %s", IOMMU, p->img, uri);
    dst = qtest_init(args);
    rsp = qtest_qmp(p->qts, "{'execute': 'migrate', 'arguments': "
                    "{'uri': %s}}", uri);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    qtest_qmp_eventwait(dst, "RESUME");

    qtest_quit(p->qts);
    p->qts = dst;
    qpci_free_pc(p->bus);
    p->bus = qpci_new_pc(dst, &p->alloc);
    a->qts = dst;
    a->bus = p->bus;
    devfn = a->pdev->devfn;
    g_free(a->pdev);
    a->pdev = qpci_device_find(p->bus, devfn);
    v->qts = dst;

    /* Same PASID, same IOVA, same data; the unmapped page still faults */
    qtest_memset(dst, data, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096), ==,
                    0);
    assert_page(dst, data, 0x77);
    qtest_memset(dst, other, 0x11, 4096);
    vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, other, 4096);
    g_assert_true(wait_needs_reset(a, id));
    assert_page(dst, other, 0x11);
    vtd_free(v);
    p_stop(p);
}

/* query-vpri's fault counters of the function's slot with (or without) IOVA */
static void vpri_slot_faults(QTestState *qts, bool iova, uint64_t *raised,
                             uint64_t *resolved, uint64_t *failed)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-vpri'}");
    QList *devs = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "devices");
    QListEntry *e;
    int found = 0;

    QLIST_FOREACH_ENTRY(devs, e) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(e));
        QDict *f = qdict_get_qdict(dev, "faults");

        g_assert_cmpstr(qdict_get_str(dev, "id"), ==, "vm0");
        if (qdict_haskey(dev, "iova") != iova) {
            continue;
        }
        *raised = qdict_get_int(f, "raised");
        *resolved = qdict_get_int(f, "resolved");
        *failed = qdict_get_int(f, "failed");
        found++;
    }
    /* Behind intel-iommu: one IOVA-indexed slot, one guest-physical */
    g_assert_cmpint(qlist_size(devs), ==, 2);
    g_assert_cmpint(found, ==, 1);
    qobject_unref(rsp);
}

static void vpri_evict_all(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'vpri-reclaim', "
                           "'arguments': {'host': 'vh0', 'percent': 100}}");

    g_assert_cmpint(qdict_get_int(qdict_get_qdict(rsp, "return"),
                                  "evicted"), >, 0);
    qobject_unref(rsp);
}

static void set_suspended(VMAdmin *a, uint32_t inst, bool suspend)
{
    VdpaCmd c = vm_cmd_new(a, suspend ? VDPA_OP_SUSPEND : VDPA_OP_RESUME,
                           inst);

    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
}

/* Post one request while suspended, evict all RAM, resume, wait for it */
static int evicted_io(P *p, VMRing *r, uint32_t inst, uint32_t type,
                      uint64_t sector, uint64_t addr)
{
    set_suspended(p->a, inst, true);
    vm_blk_post(p->a, r, inst, 0, type, sector, addr, 4096);
    vpri_evict_all(p->qts);
    set_suspended(p->a, inst, false);
    return vm_blk_wait(p->a, r);
}

/*
 * VPRI page faults of a PASID-bound instance: its DMA is translated
 * first, then checked by guest-physical page in the function's second,
 * guest-physical vpri-host slot; faults carry the guest-physical page.
 * Evicted ring and data pages fault and are paged in, the data is right;
 * an IOVA the PASID does not map is still refused by intel-iommu (and
 * recorded there), not turned into a VPRI fault.  A non-PASID instance
 * uses the function's own slot, indexed by IOVA behind the vIOMMU.
 */
static void test_vpri_faults(void)
{
    P *p = p_start_with("-object vpri-host,id=vh0 " IOMMU, ",host=vh0");
    VMAdmin *a = p->a;
    Vtd *v = vtd_new(p->qts, &p->alloc);
    uint64_t ring = vtd_page(v), data = vtd_page(v), other = vtd_page(v);
    uint64_t ring2 = vtd_page(v);
    uint64_t raised, resolved, failed, raised2, resolved2, failed2;
    uint32_t id, id2;
    VMRing r, r2;
    VtdFault f;

    map_pasid_a(v, ring, data);
    id = bound_blk(a, &r, ring);

    /* A write whose data page, ring and descriptors were all evicted */
    qtest_memset(p->qts, data, 0x5a, 4096);
    g_assert_cmpint(evicted_io(p, &r, id, BLK_T_OUT, 8, IOVA_A), ==, 0);
    vpri_slot_faults(p->qts, false, &raised, &resolved, &failed);
    g_test_message("PASID write: %" PRIu64 " faults", raised);
    g_assert_cmpuint(raised, >, 0);
    /* And a read into the evicted data page */
    qtest_memset(p->qts, data, 0, 4096);
    g_assert_cmpint(evicted_io(p, &r, id, BLK_T_IN, 8, IOVA_A), ==, 0);
    assert_page(p->qts, data, 0x5a);
    vpri_slot_faults(p->qts, false, &raised2, &resolved, &failed);
    g_test_message("PASID read: %" PRIu64 " faults", raised2 - raised);
    g_assert_cmpuint(raised2, >, raised);
    g_assert_cmpuint(resolved, ==, raised2);
    g_assert_cmpuint(failed, ==, 0);
    /* None went to the IOVA-indexed slot */
    vpri_slot_faults(p->qts, true, &raised, &resolved, &failed);
    g_assert_cmpuint(raised, ==, 0);
    g_assert_cmphex(inst_status(a, id) & VDPA_ST_NEEDS_RESET, ==, 0);

    /* Isolation: an IOVA PASID A does not map is intel-iommu's fault */
    vpri_slot_faults(p->qts, false, &raised, &resolved, &failed);
    qtest_memset(p->qts, other, 0x11, 4096);
    vtd_clear_fault(v);
    vm_blk_post(a, &r, id, 0, BLK_T_IN, 8, IOVA_B, 4096);
    g_assert_true(wait_needs_reset(a, id));
    assert_page(p->qts, other, 0x11);
    g_assert_cmpuint(inst_dma_faults(a, id), >=, 1);
    g_assert_true(vtd_fault(v, &f));
    g_assert_cmphex(f.addr, ==, IOVA_B);
    g_assert_true(f.pasid_present);
    g_assert_cmpuint(f.pasid, ==, PASID_A);
    vpri_slot_faults(p->qts, false, &raised2, &resolved2, &failed2);
    g_assert_cmpuint(raised2, ==, raised);
    g_assert_cmpuint(failed2, ==, 0);

    /* A non-PASID instance (pass-through RID_PASID): the IOVA slot */
    id2 = vm_create_blk(a, 1, 0);
    start_queue(a, id2, &r2, ring2);
    qtest_memset(p->qts, other, 0, 4096);
    g_assert_cmpint(evicted_io(p, &r2, id2, BLK_T_IN, 8, other), ==, 0);
    assert_page(p->qts, other, 0x5a);
    vpri_slot_faults(p->qts, true, &raised, &resolved, &failed);
    g_test_message("non-PASID read: %" PRIu64 " faults", raised);
    g_assert_cmpuint(raised, >, 0);
    g_assert_cmpuint(resolved, ==, raised);
    g_assert_cmpuint(failed, ==, 0);
    vtd_free(v);
    p_stop(p);
}

/* A PASID-bound instance's fault the host fails: needs-reset, as without */
static void test_vpri_fault_failed(void)
{
    P *p = p_start_with("-object vpri-host,id=vh0,x-fail-faults=on " IOMMU,
                        ",host=vh0");
    VMAdmin *a = p->a;
    Vtd *v = vtd_new(p->qts, &p->alloc);
    uint64_t ring = vtd_page(v), data = vtd_page(v);
    uint64_t raised, resolved, failed;
    uint32_t id;
    VMRing r;

    map_pasid_a(v, ring, data);
    id = bound_blk(a, &r, ring);
    set_suspended(a, id, true);
    vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, IOVA_A, 4096);
    vpri_evict_all(p->qts);
    set_suspended(a, id, false);
    g_assert_true(wait_needs_reset(a, id));
    vpri_slot_faults(p->qts, false, &raised, &resolved, &failed);
    g_assert_cmpuint(failed, >=, 1);
    g_assert_cmpuint(resolved, ==, 0);
    vtd_free(v);
    p_stop(p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vdpa-mgmt/pasid/caps", test_caps);
    qtest_add_func("/vdpa-mgmt/pasid/pcie-capability", test_pasid_capability);
    qtest_add_func("/vdpa-mgmt/pasid/no-pasid-mode", test_no_pasid_mode);
    qtest_add_func("/vdpa-mgmt/pasid/isolation-invalidation",
                   test_isolation_and_invalidation);
    qtest_add_func("/vdpa-mgmt/pasid/iotlb", test_iotlb);
    qtest_add_func("/vdpa-mgmt/pasid/migration", test_migration);
    qtest_add_func("/vdpa-mgmt/pasid/vpri-faults", test_vpri_faults);
    qtest_add_func("/vdpa-mgmt/pasid/vpri-fault-failed",
                   test_vpri_fault_failed);
    return g_test_run();
}
