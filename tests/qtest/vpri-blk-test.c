/*
 * qtest for vpri-blk: the modern virtio-blk PCI device of VPRI.
 *
 * Drives the device through our own virtio-pci helper (vpri-virtio.c):
 * identity and configuration, I/O of several sizes and layouts, the
 * request types, multiqueue, with and without a vpri-host, and a set of
 * malformed rings, each of which must leave QEMU running and, where the
 * virtio specification calls it a device error, set DEVICE_NEEDS_RESET.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "hw/pci/pci_regs.h"
#include "vpri-blk-harness.h"
#include "iolab-migrate-wait.h"

#define SERIAL              "iolab-vpri-0001"

#define DRIVER_FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << BLK_F_MQ) | (1ULL << BLK_F_RO) | \
     (1ULL << VV_F_INDIRECT_DESC) | (1ULL << VV_F_EVENT_IDX) | \
     (1ULL << VV_F_VERSION_1) | (1ULL << VV_F_ACCESS_PLATFORM))

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

/*
 * Start QEMU with one vpri-blk on an 8 MiB raw image.  @devopts are
 * appended to the -device option, @extra to the command line.
 */
static Ctx *ctx_start_full(const char *devopts, const char *extra, bool ro,
                           const char *blockdev_fmt)
{
    Ctx *c = ctx_new("vpri-blk");
    g_autofree char *args = NULL;

    if (blockdev_fmt) {
        g_autofree char *bd = g_strdup_printf(blockdev_fmt, c->img);

        args = g_strdup_printf("-M q35 -nodefaults -d guest_errors -D %s "
                               "%s -blockdev %s "
                               "-device vpri-blk,drive=d0,serial=" SERIAL "%s",
                               c->log, extra ? extra : "", bd,
                               devopts ? devopts : "");
    } else {
        args = g_strdup_printf("-M q35 -nodefaults -d guest_errors -D %s %s "
                               "-blockdev driver=file,node-name=d0,"
                               "filename=%s%s "
                               "-device vpri-blk,drive=d0,serial=" SERIAL "%s",
                               c->log, extra ? extra : "", c->img,
                               ro ? ",read-only=on" : "",
                               devopts ? devopts : "");
    }
    ctx_connect(c, args);
    return c;
}

static Ctx *ctx_start(const char *devopts, const char *extra, bool ro)
{
    return ctx_start_full(devopts, extra, ro, NULL);
}

static void ctx_init(Ctx *c, uint16_t nq)
{
    ctx_init_features(c, nq, DRIVER_FEATURES);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

typedef struct Req {
    uint32_t type;
    uint64_t sector;
    uint8_t *buf;           /* OUT: data to write; IN/GET_ID: filled in */
    uint32_t len;           /* data bytes (0: none) */
    int nsegs;              /* data descriptors */
    bool indirect;
    bool no_kick;           /* publish only: the caller kicks */
    /* results */
    uint8_t status;
    uint32_t used_len;
} Req;

typedef struct ReqMem {
    uint64_t hdr, status;
    uint64_t seg[128];
    uint32_t seg_len;
    int nsegs;
    uint16_t head;
} ReqMem;

static bool type_reads_data(uint32_t type)
{
    return type != BLK_T_OUT;   /* the device writes the data buffers */
}

/* Build a request in guest memory, publish and kick it. */
static void req_submit(Ctx *c, VVQueue *q, Req *r, ReqMem *m)
{
    VVBuf bufs[130];
    uint8_t hdr[16];
    int n = 0;

    memset(m, 0, sizeof(*m));
    m->hdr = guest_alloc(&c->alloc, sizeof(hdr));
    stl_le_p(hdr, r->type);
    stl_le_p(hdr + 4, 0);
    stq_le_p(hdr + 8, r->sector);
    qtest_memwrite(c->qts, m->hdr, hdr, sizeof(hdr));
    bufs[n++] = (VVBuf){ m->hdr, sizeof(hdr), false };

    if (r->len) {
        g_assert_cmpint(r->nsegs, >, 0);
        g_assert_cmpint(r->nsegs, <=, 128);
        g_assert_cmpint(r->len % r->nsegs, ==, 0);
        m->nsegs = r->nsegs;
        m->seg_len = r->len / r->nsegs;
        for (int i = 0; i < m->nsegs; i++) {
            m->seg[i] = guest_alloc(&c->alloc, m->seg_len);
            if (type_reads_data(r->type)) {
                qtest_memset(c->qts, m->seg[i], 0xaa, m->seg_len);
            } else {
                qtest_memwrite(c->qts, m->seg[i],
                               r->buf + i * m->seg_len, m->seg_len);
            }
            bufs[n++] = (VVBuf){ m->seg[i], m->seg_len,
                                 type_reads_data(r->type) };
        }
    }
    m->status = guest_alloc(&c->alloc, 1);
    qtest_writeb(c->qts, m->status, 0xff);
    bufs[n++] = (VVBuf){ m->status, 1, true };

    m->head = vv_queue_add_chain(q, bufs, n, r->indirect);
    vv_queue_publish(q, m->head);
    if (!r->no_kick) {
        vv_queue_kick(q);
    }
}

/* Collect the result of a submitted request and free its buffers. */
static void req_complete(Ctx *c, VVQueue *q, Req *r, ReqMem *m,
                         uint32_t id, uint32_t len)
{
    g_assert_cmpuint(id, ==, m->head);
    r->used_len = len;
    r->status = qtest_readb(c->qts, m->status);
    for (int i = 0; i < m->nsegs; i++) {
        if (type_reads_data(r->type)) {
            qtest_memread(c->qts, m->seg[i], r->buf + i * m->seg_len,
                          m->seg_len);
        }
        guest_free(&c->alloc, m->seg[i]);
    }
    guest_free(&c->alloc, m->hdr);
    guest_free(&c->alloc, m->status);
    if (c->msi_base && q->msix_vector != VV_NO_VECTOR) {
        /* Every completion interrupts: used_event follows last_used */
        g_assert(ctx_wait_msi(c, q->msix_vector, VV_TIMEOUT_US));
    }
}

/* Submit @r on @q and wait for it; asserts that it completes. */
static void req_run(Ctx *c, VVQueue *q, Req *r)
{
    ReqMem m;
    uint32_t id, len;

    req_submit(c, q, r, &m);
    g_assert(vv_queue_wait_used(q, &id, &len, VV_TIMEOUT_US));
    req_complete(c, q, r, &m, id, len);
}

static uint8_t do_io(Ctx *c, VVQueue *q, uint32_t type, uint64_t sector,
                     uint8_t *buf, uint32_t len, int nsegs, bool indirect,
                     uint32_t *used_len)
{
    Req r = {
        .type = type, .sector = sector, .buf = buf, .len = len,
        .nsegs = nsegs, .indirect = indirect,
    };

    req_run(c, q, &r);
    if (used_len) {
        *used_len = r.used_len;
    }
    return r.status;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
    }
}

/* Write @len bytes at @sector, read them back and compare. */
static void write_read_check(Ctx *c, VVQueue *q, uint64_t sector,
                             uint32_t len, int nsegs, bool indirect,
                             uint32_t seed)
{
    g_autofree uint8_t *out = g_malloc(len);
    g_autofree uint8_t *in = g_malloc0(len);
    uint32_t used_len = 0;

    fill_pattern(out, len, seed);
    g_assert_cmpint(do_io(c, q, BLK_T_OUT, sector, out, len, nsegs, indirect,
                          &used_len), ==, BLK_S_OK);
    /* Only the status byte was written by the device */
    g_assert_cmpuint(used_len, ==, 1);

    g_assert_cmpint(do_io(c, q, BLK_T_IN, sector, in, len, nsegs, indirect,
                          &used_len), ==, BLK_S_OK);
    g_assert_cmpuint(used_len, ==, len + 1);
    g_assert(memcmp(in, out, len) == 0);
}

/* The image file holds @len bytes of pattern @seed at @sector. */
static void check_image(Ctx *c, uint64_t sector, uint32_t len, uint32_t seed)
{
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc0(len);

    fill_pattern(want, len, seed);
    g_assert_cmpint(pread(c->img_fd, got, len, sector * SECTOR), ==, len);
    g_assert(memcmp(want, got, len) == 0);
}

static void flush_ok(Ctx *c, VVQueue *q)
{
    uint32_t used_len = 0;

    g_assert_cmpint(do_io(c, q, BLK_T_FLUSH, 0, NULL, 0, 0, false,
                          &used_len), ==, BLK_S_OK);
    g_assert_cmpuint(used_len, ==, 1);
}

/* The usual mix of sizes and layouts on one queue. */
static void io_suite(Ctx *c, VVQueue *q, uint64_t base, uint32_t seed)
{
    /* 512 B, one segment */
    write_read_check(c, q, base + 0, 512, 1, false, seed + 1);
    /* 4 KiB, one segment, and as 8 x 512 B in an indirect table */
    write_read_check(c, q, base + 8, 4096, 1, false, seed + 2);
    write_read_check(c, q, base + 16, 4096, 8, true, seed + 3);
    /* 64 KiB: 16 direct segments, and 16 segments in an indirect table */
    write_read_check(c, q, base + 128, 64 * KiB, 16, false, seed + 4);
    write_read_check(c, q, base + 256, 64 * KiB, 16, true, seed + 5);
    flush_ok(c, q);
    check_image(c, base + 0, 512, seed + 1);
    check_image(c, base + 16, 4096, seed + 3);
    check_image(c, base + 128, 64 * KiB, seed + 4);
    check_image(c, base + 256, 64 * KiB, seed + 5);
}

/* ------------------------------------------------------------------ */
/* Identity                                                           */

static void test_identity(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    QPCIDevice *p = c->d->pdev;
    uint64_t features, want;
    uint8_t msix;

    g_assert_cmphex(qpci_config_readw(p, PCI_VENDOR_ID), ==, VIRTIO_VENDOR);
    g_assert_cmphex(qpci_config_readw(p, PCI_DEVICE_ID), ==,
                    VIRTIO_BLK_MODERN);
    g_assert_cmphex(qpci_config_readb(p, PCI_REVISION_ID), ==, 1);
    g_assert_cmphex(qpci_config_readw(p, PCI_SUBSYSTEM_VENDOR_ID), ==,
                    VIRTIO_VENDOR);
    g_assert(qpci_config_readw(p, PCI_STATUS) & PCI_STATUS_CAP_LIST);

    /* The four virtio structures, where the device documents them */
    g_assert(c->d->common.present);
    g_assert(c->d->isr.present);
    g_assert(c->d->device.present);
    g_assert(c->d->notify.present);
    g_assert_cmpint(c->d->common.bar, ==, 4);
    g_assert_cmphex(c->d->common.offset, ==, 0x0);
    g_assert_cmpint(c->d->common.length, >=, 0x38);
    g_assert_cmpint(c->d->isr.bar, ==, 4);
    g_assert_cmphex(c->d->isr.offset, ==, 0x1000);
    g_assert_cmpint(c->d->isr.length, >=, 1);
    g_assert_cmpint(c->d->device.bar, ==, 4);
    g_assert_cmphex(c->d->device.offset, ==, 0x2000);
    g_assert_cmpint(c->d->device.length, >=, CFG_NUM_QUEUES + 2);
    g_assert_cmpint(c->d->notify.bar, ==, 4);
    g_assert_cmphex(c->d->notify.offset, ==, 0x3000);
    g_assert_cmpint(c->d->notify_mult, ==, 4);

    /* MSI-X: num_queues + 1 vectors, table in BAR 1 */
    msix = qpci_find_capability(p, PCI_CAP_ID_MSIX, 0);
    g_assert_cmpint(msix, !=, 0);
    g_assert_cmpint((qpci_config_readw(p, msix + PCI_MSIX_FLAGS) &
                     PCI_MSIX_FLAGS_QSIZE) + 1, ==, 2);
    g_assert_cmpint(qpci_config_readl(p, msix + PCI_MSIX_TABLE) &
                    PCI_MSIX_TABLE_BIR, ==, 1);

    /* Device configuration */
    g_assert_cmpuint(vv_config_readq(c->d, CFG_CAPACITY), ==,
                     IMG_SIZE / SECTOR);
    g_assert_cmpuint(vv_config_readl(c->d, CFG_BLK_SIZE), ==, 512);
    g_assert_cmpuint(vv_config_readl(c->d, CFG_SEG_MAX), >, 16);
    g_assert_cmpuint(vv_config_readw(c->d, CFG_NUM_QUEUES), ==, 1);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_NUMQ), ==, 1);

    /* Features: exactly the documented set for a writable 1-queue disk */
    features = vv_get_device_features(c->d);
    want = (1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) |
           (1ULL << BLK_F_FLUSH) | (1ULL << VV_F_EVENT_IDX) |
           (1ULL << VV_F_INDIRECT_DESC) | (1ULL << VV_F_VERSION_1) |
           (1ULL << VV_F_ACCESS_PLATFORM);
    g_assert_cmphex(features, ==, want);

    /* Queue 0 offers 256 entries by default; a missing queue reads 0 */
    vv_common_writew(c->d, VV_COMMON_Q_SELECT, 0);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_SIZE), ==, 256);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_ENABLE), ==, 0);
    vv_common_writew(c->d, VV_COMMON_Q_SELECT, 1);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_SIZE), ==, 0);

    g_assert_cmphex(vv_get_status(c->d), ==, 0);
    assert_running(c);
    ctx_stop(c);
}

static void test_identity_ro(void)
{
    Ctx *c = ctx_start(",num-queues=2,queue-size=64", NULL, true);
    uint64_t features = vv_get_device_features(c->d);

    g_assert(features & (1ULL << BLK_F_RO));
    g_assert(features & (1ULL << BLK_F_MQ));
    g_assert_cmpuint(vv_config_readw(c->d, CFG_NUM_QUEUES), ==, 2);
    vv_common_writew(c->d, VV_COMMON_Q_SELECT, 1);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_SIZE), ==, 64);
    ctx_stop(c);
}

/* FEATURES_OK is refused for unoffered bits or without VERSION_1 */
static void test_features(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    uint64_t offered = vv_get_device_features(c->d);

    vv_reset(c->d);
    vv_set_status(c->d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(!vv_negotiate(c->d, offered | (1ULL << BLK_F_MQ)));
    vv_reset(c->d);
    vv_set_status(c->d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(!vv_negotiate(c->d, offered & ~(1ULL << VV_F_VERSION_1)));
    vv_reset(c->d);
    vv_set_status(c->d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(vv_negotiate(c->d, 1ULL << VV_F_VERSION_1));
    /* The driver features read back */
    vv_common_writel(c->d, VV_COMMON_GFSELECT, 1);
    g_assert_cmphex(vv_common_readl(c->d, VV_COMMON_GF), ==, 1);
    /* Once FEATURES_OK is set, feature writes are ignored */
    vv_write_driver_features(c->d, offered);
    vv_common_writel(c->d, VV_COMMON_GFSELECT, 0);
    g_assert_cmphex(vv_common_readl(c->d, VV_COMMON_GF), ==, 0);
    assert_running(c);
    ctx_stop(c);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                */

static void test_rw(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);

    ctx_msix(c, 2);
    ctx_init(c, 1);
    io_suite(c, queue(c, 0), 0, 10);
    assert_running(c);
    ctx_stop(c);
}

/* Without MSI-X: INTx and the ISR's queue bit, which a read clears */
static void test_rw_intx(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);

    ctx_init(c, 1);
    g_assert_cmphex(vv_read_isr(c->d), ==, 0);
    write_read_check(c, queue(c, 0), 100, 4096, 2, false, 77);
    g_assert_cmphex(vv_read_isr(c->d) & VV_ISR_QUEUE, ==, VV_ISR_QUEUE);
    g_assert_cmphex(vv_read_isr(c->d), ==, 0);
    ctx_stop(c);
}

static void test_get_id(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    uint8_t id[BLK_ID_BYTES];
    uint8_t want[BLK_ID_BYTES] = { 0 };
    uint32_t used_len = 0;

    ctx_msix(c, 2);
    ctx_init(c, 1);
    memcpy(want, SERIAL, strlen(SERIAL));
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_GET_ID, 0, id, sizeof(id),
                          1, false, &used_len), ==, BLK_S_OK);
    g_assert(memcmp(id, want, sizeof(id)) == 0);
    g_assert_cmpuint(used_len, ==, BLK_ID_BYTES + 1);
    ctx_stop(c);
}

static void test_unsupported(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    uint8_t buf[512];
    uint32_t used_len = 0;

    ctx_msix(c, 2);
    ctx_init(c, 1);
    /* Type 0x1234 is no request type at all */
    g_assert_cmpint(do_io(c, queue(c, 0), 0x1234, 0, buf, sizeof(buf), 1,
                          false, &used_len), ==, BLK_S_UNSUPP);
    g_assert_cmpuint(used_len, >=, 1);
    /* Neither is DISCARD (11), which is not offered */
    g_assert_cmpint(do_io(c, queue(c, 0), 11, 0, NULL, 0, 0, false,
                          &used_len), ==, BLK_S_UNSUPP);
    /* The device goes on */
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    write_read_check(c, queue(c, 0), 0, 512, 1, false, 5);
    assert_running(c);
    ctx_stop(c);
}

static void test_beyond_capacity(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    uint64_t cap = IMG_SIZE / SECTOR;
    uint8_t buf[4096] = { 0 };
    uint32_t used_len = 0;

    ctx_msix(c, 2);
    ctx_init(c, 1);
    /* Entirely beyond the end */
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_IN, cap, buf, 512, 1,
                          false, &used_len), ==, BLK_S_IOERR);
    /* Straddling the end */
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_IN, cap - 2, buf,
                          sizeof(buf), 1, false, NULL), ==, BLK_S_IOERR);
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_OUT, cap - 1, buf,
                          sizeof(buf), 2, false, NULL), ==, BLK_S_IOERR);
    /* Far beyond: sector * 512 would overflow 64 bits */
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_IN, UINT64_MAX / 8, buf,
                          512, 1, false, NULL), ==, BLK_S_IOERR);
    /* The last sector is fine */
    write_read_check(c, queue(c, 0), cap - 1, 512, 1, false, 9);
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    assert_running(c);
    ctx_stop(c);
}

/*
 * Can the user create an object of @type?  -object and object-add go
 * through the same QAPI ObjectOptions, so ask a scratch QEMU through QMP:
 * a failed -object would abort the whole test program in qtest_init().
 */
static bool object_creatable(const char *type, char **why)
{
    QTestState *qts = qtest_init("-M none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': "
                           "{ 'qom-type': %s, 'id': 'probe0' } }", type);
    bool ok = qdict_haskey(rsp, "return");

    if (!ok) {
        QDict *err = qdict_get_qdict(rsp, "error");

        *why = g_strdup(err ? qdict_get_try_str(err, "desc") : "?");
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    return ok;
}

static void test_rw_host(void)
{
    g_autofree char *why = NULL;
    Ctx *c;

    if (!object_creatable("vpri-host", &why)) {
        g_test_message("-object vpri-host cannot be created: %s", why);
        g_test_fail();
        return;
    }
    c = ctx_start(",host=vh0", "-object vpri-host,id=vh0", false);

    ctx_msix(c, 2);
    ctx_init(c, 1);
    io_suite(c, queue(c, 0), 1000, 20);
    assert_running(c);
    ctx_stop(c);
}

static void test_multiqueue(void)
{
    Ctx *c = ctx_start(",num-queues=4", NULL, false);
    QPCIDevice *p = c->d->pdev;
    uint8_t msix = qpci_find_capability(p, PCI_CAP_ID_MSIX, 0);

    g_assert(vv_get_device_features(c->d) & (1ULL << BLK_F_MQ));
    g_assert_cmpuint(vv_config_readw(c->d, CFG_NUM_QUEUES), ==, 4);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_NUMQ), ==, 4);
    g_assert_cmpint((qpci_config_readw(p, msix + PCI_MSIX_FLAGS) &
                     PCI_MSIX_FLAGS_QSIZE) + 1, ==, 5);

    ctx_msix(c, 5);
    ctx_init(c, 4);
    for (uint16_t i = 0; i < 4; i++) {
        g_assert_cmpuint(queue(c, i)->notify_off, ==, 0x3000 + 4 * i);
        write_read_check(c, queue(c, i), 2000 + 200 * i, 4096, 1, false,
                         30 + i);
        write_read_check(c, queue(c, i), 2100 + 200 * i, 16 * KiB, 4, true,
                         40 + i);
    }
    /* Requests outstanding on all queues at once, completed in any order */
    {
        Req r[4];
        ReqMem m[4];
        uint8_t bufs[4][4096];

        for (uint16_t i = 0; i < 4; i++) {
            fill_pattern(bufs[i], sizeof(bufs[i]), 50 + i);
            r[i] = (Req){ .type = BLK_T_OUT, .sector = 3000 + 8 * i,
                          .buf = bufs[i], .len = 4096, .nsegs = 1 };
            req_submit(c, queue(c, i), &r[i], &m[i]);
        }
        for (uint16_t i = 0; i < 4; i++) {
            uint32_t id, len;

            g_assert(vv_queue_wait_used(queue(c, i), &id, &len,
                                        VV_TIMEOUT_US));
            req_complete(c, queue(c, i), &r[i], &m[i], id, len);
            g_assert_cmpint(r[i].status, ==, BLK_S_OK);
        }
        flush_ok(c, queue(c, 3));
        for (uint16_t i = 0; i < 4; i++) {
            check_image(c, 3000 + 8 * i, 4096, 50 + i);
        }
    }
    assert_running(c);
    ctx_stop(c);
}

/* rd_merged or wr_merged of the device's drive, from query-blockstats */
static int64_t merged(Ctx *c, const char *key)
{
    QDict *rsp = qtest_qmp(c->qts, "{'execute': 'query-blockstats', "
                           "'arguments': {'query-nodes': false}}");
    QList *list = qdict_get_qlist(rsp, "return");
    int64_t n = -1;

    for (const QListEntry *e = qlist_first(list); e; e = qlist_next(e)) {
        QDict *entry = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_haskey(entry, "qdev")) {
            n = qdict_get_int(qdict_get_qdict(entry, "stats"), key);
        }
    }
    qobject_unref(rsp);
    g_assert_cmpint(n, >=, 0);
    return n;
}

/*
 * Requests of @type at @sectors, all published before one kick; returns
 * when all completed OK.  @bufs: @n buffers of @len bytes.
 */
static void batch_io(Ctx *c, uint32_t type, const uint64_t *sectors,
                     uint8_t (*bufs)[4096], int n)
{
    VVQueue *q = queue(c, 0);
    Req r[8];
    ReqMem m[8];

    g_assert_cmpint(n, <=, 8);
    for (int i = 0; i < n; i++) {
        r[i] = (Req){ .type = type, .sector = sectors[i], .buf = bufs[i],
                      .len = 4096, .nsegs = 1, .no_kick = true };
        req_submit(c, q, &r[i], &m[i]);
    }
    vv_queue_kick(q);
    for (int i = 0; i < n; i++) {
        uint32_t id, len;
        int k;

        g_assert(vv_queue_wait_used(q, &id, &len, VV_TIMEOUT_US));
        for (k = 0; k < n && m[k].head != id; k++) {
            /* find the request that completed */
        }
        g_assert_cmpint(k, <, n);
        req_complete(c, q, &r[k], &m[k], id, len);
        g_assert_cmpint(r[k].status, ==, BLK_S_OK);
    }
}

/*
 * Requests that one kick brings in and that continue one another on the
 * disk reach the backend as one (counted as merged, like virtio-blk-pci);
 * others do not; every byte lands where its own request said.
 */
static void test_merge(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    /* Submitted out of order: 8, 24, 16, 32 sectors (4 KiB each) */
    const uint64_t adjacent[4] = { 8, 24, 16, 32 };
    const uint64_t apart[3] = { 200, 400, 600 };
    uint8_t out[4][4096], in[4][4096];

    ctx_init(c, 1);
    for (int i = 0; i < 4; i++) {
        fill_pattern(out[i], sizeof(out[i]), 90 + i);
    }
    batch_io(c, BLK_T_OUT, adjacent, out, 4);
    g_assert_cmpint(merged(c, "wr_merged"), ==, 3);
    flush_ok(c, queue(c, 0));
    for (int i = 0; i < 4; i++) {
        check_image(c, adjacent[i], 4096, 90 + i);
    }

    memset(in, 0, sizeof(in));
    batch_io(c, BLK_T_IN, adjacent, in, 4);
    g_assert_cmpint(merged(c, "rd_merged"), ==, 3);
    for (int i = 0; i < 4; i++) {
        g_assert(memcmp(in[i], out[i], 4096) == 0);
    }

    batch_io(c, BLK_T_OUT, apart, out, 3);
    g_assert_cmpint(merged(c, "wr_merged"), ==, 3);
    assert_running(c);
    ctx_stop(c);
}

/*
 * The backend fails every write with EIO (blkdebug): the request
 * completes with IOERR, the device stays usable.
 */
static void test_backend_error(void)
{
    Ctx *c = ctx_start_full(NULL, NULL, false,
                            "driver=blkdebug,node-name=d0,"
                            "image.driver=file,image.filename=%s,"
                            "inject-error.0.event=none,"
                            "inject-error.0.iotype=write,"
                            "inject-error.0.errno=5,"
                            "inject-error.0.immediately=on");
    uint8_t buf[4096];
    uint32_t used_len = 0;

    ctx_msix(c, 2);
    ctx_init(c, 1);
    fill_pattern(buf, sizeof(buf), 3);
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_OUT, 8, buf, sizeof(buf), 1,
                          false, &used_len), ==, BLK_S_IOERR);
    g_assert_cmpuint(used_len, ==, 1);
    assert_running(c);
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    /* Reads still work: the image is all zeroes */
    memset(buf, 0x55, sizeof(buf));
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_IN, 8, buf, sizeof(buf), 1,
                          false, &used_len), ==, BLK_S_OK);
    g_assert_cmpuint(used_len, ==, sizeof(buf) + 1);
    for (size_t i = 0; i < sizeof(buf); i++) {
        g_assert_cmpint(buf[i], ==, 0);
    }
    ctx_stop(c);
}

/* ------------------------------------------------------------------ */
/* Bad input                                                          */

static Ctx *bad_start(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);

    ctx_msix(c, 2);
    ctx_init(c, 1);
    /* One good request first: the queue works */
    write_read_check(c, queue(c, 0), 0, 512, 1, false, 1);
    return c;
}

/*
 * After a device error: NEEDS_RESET is set, the driver was told through
 * the configuration vector, QEMU runs, and after a reset and a new
 * initialisation the device works again.
 */
static void expect_device_error_and_recover(Ctx *c, const char *reason)
{
    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    if (reason) {
        assert_logged(c, reason);
    }
    g_assert(ctx_wait_msi(c, 0, VV_TIMEOUT_US));
    assert_running(c);
    /* NEEDS_RESET stays until reset: I/O is not processed meanwhile */
    g_assert(vv_get_status(c->d) & VV_S_NEEDS_RESET);

    vv_reset(c->d);
    g_assert_cmphex(vv_get_status(c->d), ==, 0);
    ctx_msix_program(c, c->nq + 1);
    ctx_init(c, c->nq);
    write_read_check(c, queue(c, 0), 64, 4096, 2, true, 99);
    check_image(c, 0, 512, 1);
    assert_running(c);
}

/* next points back: 0 -> 1 -> 0 -> ... */
static void test_bad_loop(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);

    qtest_memset(c->qts, hdr, 0, 16);
    vv_queue_write_desc(q, 10, hdr, 16, VV_DESC_F_NEXT, 11);
    vv_queue_write_desc(q, 11, hdr, 16, VV_DESC_F_NEXT, 10);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, 10);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c, "descriptor chain longer than "
                                    "queue size (loop)");
    ctx_stop(c);
}

/* A loop inside an indirect table */
static void test_bad_indirect_loop(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint64_t table = guest_alloc(&c->alloc, 64);
    uint8_t d[32] = { 0 };

    qtest_memset(c->qts, hdr, 0, 16);
    stq_le_p(d, hdr);
    stl_le_p(d + 8, 16);
    stw_le_p(d + 12, VV_DESC_F_NEXT);
    stw_le_p(d + 14, 1);
    stq_le_p(d + 16, hdr);
    stl_le_p(d + 24, 16);
    stw_le_p(d + 28, VV_DESC_F_NEXT);
    stw_le_p(d + 30, 0);
    qtest_memwrite(c->qts, table, d, sizeof(d));
    vv_queue_write_desc(q, 20, table, 32, VV_DESC_F_INDIRECT, 0);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, 20);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c,
                                    "indirect chain longer than table (loop)");
    ctx_stop(c);
}

/* The avail ring names descriptor 300 of a 256-entry queue */
static void test_bad_head_index(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);

    vv_queue_write_avail_ring(q, q->avail_idx % q->size, q->size + 44);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c,
                                    "avail ring head index out of range");
    ctx_stop(c);
}

/* A descriptor's next is beyond the table */
static void test_bad_next_index(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);

    qtest_memset(c->qts, hdr, 0, 16);
    vv_queue_write_desc(q, 30, hdr, 16, VV_DESC_F_NEXT, 0xffff);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, 30);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c,
                                    "descriptor next index out of range");
    ctx_stop(c);
}

/* Only a device-readable header: no status byte to answer in */
static void test_bad_no_status(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint8_t h[16] = { 0 };

    stl_le_p(h, BLK_T_IN);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));
    vv_queue_write_desc(q, 40, hdr, 16, 0, 0);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, 40);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c, "status byte");
    ctx_stop(c);
}

/*
 * A data buffer outside guest RAM.  The device may fail the request with
 * IOERR or declare a device error (NEEDS_RESET); it must not crash, and
 * must not report success.
 */
static void bad_addr_one(Ctx *c, uint32_t type)
{
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint64_t status = guest_alloc(&c->alloc, 1);
    uint8_t h[16] = { 0 };
    VVBuf bufs[3];
    uint16_t head;
    gint64 deadline = g_get_monotonic_time() + VV_TIMEOUT_US;

    stl_le_p(h, type);
    stq_le_p(h + 8, 8);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));
    qtest_writeb(c->qts, status, 0xff);
    bufs[0] = (VVBuf){ hdr, 16, false };
    bufs[1] = (VVBuf){ 0xfffffffff000ULL, 4096, type == BLK_T_IN };
    bufs[2] = (VVBuf){ status, 1, true };
    head = vv_queue_add_chain(q, bufs, 3, false);
    vv_queue_publish(q, head);
    vv_queue_kick(q);

    for (;;) {
        if (vv_get_status(c->d) & VV_S_NEEDS_RESET) {
            g_test_message("type %u: device set NEEDS_RESET", type);
            assert_running(c);
            expect_device_error_and_recover(c, "DMA");
            return;
        }
        if (vv_queue_used_idx(q) != q->last_used) {
            uint32_t id, len;

            g_assert(vv_queue_wait_used(q, &id, &len, VV_TIMEOUT_US));
            g_assert_cmpuint(id, ==, head);
            g_assert_cmpint(qtest_readb(c->qts, status), ==, BLK_S_IOERR);
            g_test_message("type %u: device answered IOERR", type);
            assert_running(c);
            write_read_check(c, q, 64, 4096, 1, false, 98);
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        vv_poll_step(c->d);
    }
}

static void test_bad_addr_write(void)
{
    Ctx *c = bad_start();

    bad_addr_one(c, BLK_T_OUT);
    ctx_stop(c);
}

static void test_bad_addr_read(void)
{
    Ctx *c = bad_start();

    bad_addr_one(c, BLK_T_IN);
    ctx_stop(c);
}

/* An indirect descriptor table outside guest RAM */
static void test_bad_addr_table(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);

    vv_queue_write_desc(q, 50, 0xfffffffff000ULL, 64, VV_DESC_F_INDIRECT, 0);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, 50);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    expect_device_error_and_recover(c, "DMA");
    ctx_stop(c);
}

/* avail->idx runs more than queue size ahead of what the device used */
static void test_bad_avail_idx(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);

    vv_queue_write_avail_idx(q, q->avail_idx + q->size + 1);
    vv_queue_kick(q);
    expect_device_error_and_recover(c,
                                    "avail idx more than queue size ahead");
    ctx_stop(c);
}

/*
 * 4.1.4.5.1: "The device MUST set the Device Configuration Interrupt bit
 * in ISR status before sending a device configuration change notification
 * to the driver" -- with or without MSI-X (only the queue bit depends on
 * MSI-X being disabled).
 */
static void test_bad_config_isr(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);

    g_assert_cmphex(vv_read_isr(c->d), ==, 0);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, q->size);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    g_assert(ctx_wait_msi(c, 0, VV_TIMEOUT_US));
    g_assert_cmphex(vv_read_isr(c->d) & VV_ISR_CONFIG, ==, VV_ISR_CONFIG);
    ctx_stop(c);
}

/* The same without MSI-X: INTx and the ISR's configuration bit */
static void test_bad_config_isr_intx(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    VVQueue *q;

    ctx_init(c, 1);
    q = queue(c, 0);
    write_read_check(c, q, 0, 512, 1, false, 1);
    g_assert_cmphex(vv_read_isr(c->d), ==, VV_ISR_QUEUE);
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, q->size);
    vv_queue_write_avail_idx(q, ++q->avail_idx);
    vv_queue_kick(q);
    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    g_assert_cmphex(vv_read_isr(c->d) & VV_ISR_CONFIG, ==, VV_ISR_CONFIG);
    g_assert_cmphex(vv_read_isr(c->d), ==, 0);
    assert_running(c);
    ctx_stop(c);
}

/* A doorbell for a queue that does not exist is ignored */
static void test_bad_notify_index(void)
{
    Ctx *c = bad_start();

    vv_notify_raw(c->d, 1);
    vv_notify_raw(c->d, 63);
    vv_notify_raw(c->d, 0x3ff);     /* last slot of the notify region */
    for (int i = 0; i < 100; i++) {
        vv_poll_step(c->d);
    }
    assert_running(c);
    assert_logged(c, "notify for queue 1,");
    assert_logged(c, "notify for queue 1023,");
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    write_read_check(c, queue(c, 0), 80, 4096, 1, false, 97);
    ctx_stop(c);
}

/* queue_size not a power of two, or above the maximum, at queue_enable */
static void bad_queue_size_one(Ctx *c, uint16_t size)
{
    VVDev *d = c->d;
    VVQueue *q;

    vv_reset(d);
    vv_set_status(d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(vv_negotiate(d, DRIVER_FEATURES & vv_get_device_features(d)));
    g_assert_cmpint(vv_set_config_vector(d, 0), ==, 0);
    q = vv_queue_setup(d, 0, size, 1);
    g_assert(!q->enabled);
    g_assert_cmpuint(vv_common_readw(d, VV_COMMON_Q_ENABLE), ==, 0);
    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    assert_logged(c, "queue size");
    assert_running(c);

    /* A reset and a correct initialisation bring it back */
    vv_reset(d);
    g_assert_cmphex(vv_get_status(d), ==, 0);
    ctx_init(c, 1);
    write_read_check(c, queue(c, 0), 88 + size % 8, 512, 1, false, size);
}

static void test_bad_queue_size(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);

    ctx_msix(c, 2);
    c->nq = 1;
    bad_queue_size_one(c, 3);
    bad_queue_size_one(c, 100);
    bad_queue_size_one(c, 512);     /* above the offered 256 */
    assert_running(c);
    ctx_stop(c);
}

/* A reset in the middle of operation, then initialisation and I/O again */
static void test_reset(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    g_autofree uint8_t *buf = g_malloc(4096);

    ctx_msix(c, 2);
    ctx_init(c, 1);
    write_read_check(c, queue(c, 0), 500, 4096, 1, false, 61);

    vv_reset(c->d);
    g_assert_cmphex(vv_get_status(c->d), ==, 0);
    /* Reset forgets the driver features, vectors and queues */
    vv_common_writel(c->d, VV_COMMON_GFSELECT, 0);
    g_assert_cmphex(vv_common_readl(c->d, VV_COMMON_GF), ==, 0);
    vv_common_writel(c->d, VV_COMMON_GFSELECT, 1);
    g_assert_cmphex(vv_common_readl(c->d, VV_COMMON_GF), ==, 0);
    g_assert_cmphex(vv_common_readw(c->d, VV_COMMON_MSIX), ==, VV_NO_VECTOR);
    vv_common_writew(c->d, VV_COMMON_Q_SELECT, 0);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_ENABLE), ==, 0);
    g_assert_cmphex(vv_common_readw(c->d, VV_COMMON_Q_MSIX), ==,
                    VV_NO_VECTOR);
    g_assert_cmpuint(vv_common_readw(c->d, VV_COMMON_Q_SIZE), ==, 256);
    g_assert_cmphex(vv_common_readl(c->d, VV_COMMON_Q_DESCLO), ==, 0);

    ctx_init(c, 1);
    /* The data written before the reset is on the disk */
    fill_pattern(buf, 4096, 0);
    g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_IN, 500, buf, 4096, 1,
                          false, NULL), ==, BLK_S_OK);
    {
        g_autofree uint8_t *want = g_malloc(4096);

        fill_pattern(want, 4096, 61);
        g_assert(memcmp(buf, want, 4096) == 0);
    }
    io_suite(c, queue(c, 0), 4000, 70);

    /* Once more, with a smaller queue this time */
    vv_reset(c->d);
    vv_set_status(c->d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(vv_negotiate(c->d, DRIVER_FEATURES &
                          vv_get_device_features(c->d)));
    g_assert_cmpint(vv_set_config_vector(c->d, 0), ==, 0);
    g_assert(vv_queue_setup(c->d, 0, 16, 1)->enabled);
    vv_set_status(c->d, vv_get_status(c->d) | VV_S_DRIVER_OK);
    for (int i = 0; i < 40; i++) {      /* wraps the 16-entry rings */
        write_read_check(c, queue(c, 0), 6000 + i, 512, 1, i & 1, 200 + i);
    }
    assert_running(c);
    ctx_stop(c);
}

/* ------------------------------------------------------------------ */
/* Saving and loading streams                                         */

/* Offsets in vmstate_vpri_queue's record, and around it */
#define QREC_VQ_SIZE        24
#define QREC_LAST_AVAIL     26
#define QREC_USED_IDX       30
#define QREC_DESC           43
#define QREC_SIZE           39
#define QREC_LEN            68
#define STREAM_KICK_PENDING (-(8 + 2))  /* then num_queues, then queue 0 */

/*
 * A stream for a case to change and load: saved from a running vpri-blk
 * (one queue, some I/O done), stopped.  The source stays up while the
 * case runs: its destinations open the source's image.
 */
typedef struct SavedStream {
    Ctx *c;                 /* the source */
    char *path;             /* the file a destination loads */
    GByteArray *s;          /* the stream, as the case has changed it */
    size_t q0;              /* queue 0's record in vmstate_vpri_queue */
    const char *dev_opts;   /* the destination's extra -device options */
} SavedStream;

/* Where @off of queue 0's record is in the stream */
static uint8_t *queue0_at(SavedStream *ss, long off)
{
    return ss->s->data + ss->q0 + off;
}

/*
 * Save @ss->c to @ss->path and keep the stream in @ss.  Queue 0's record
 * in vmstate_vpri_queue is found by its three ring addresses (big-endian,
 * as VMState writes them).
 */
static void save_stream(SavedStream *ss)
{
    g_autofree char *uri = g_strdup_printf("file:%s", ss->path);
    g_autofree gchar *data = NULL;
    VVQueue *q = queue(ss->c, 0);
    uint8_t key[24];
    gsize len;

    qtest_qmp_assert_success(ss->c->qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(ss->c->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    iolab_migrate_wait_for(ss->c->qts, "completed", 60 * G_USEC_PER_SEC);
    g_assert(g_file_get_contents(ss->path, &data, &len, NULL));
    ss->s = g_byte_array_new();
    g_byte_array_append(ss->s, (guint8 *)data, len);
    stq_be_p(key, q->desc);
    stq_be_p(key + 8, q->avail);
    stq_be_p(key + 16, q->used);
    /*
     * The three addresses appear twice in the record: as vq.desc/avail/
     * used at its start and as desc/driver/device 43 bytes on.
     */
    ss->q0 = 0;
    for (size_t i = 0; i + sizeof(key) <= ss->s->len; i++) {
        if (!memcmp(ss->s->data + i, key, sizeof(key))) {
            ss->q0 = i;
            break;
        }
    }
    g_assert_cmpuint(ss->q0, !=, 0);
    g_assert(!memcmp(queue0_at(ss, QREC_DESC), key, sizeof(key)));
}

/*
 * Save source @c, whose destinations take the extra -device options
 * @dev_opts (NULL: none), to a file next to its image.
 */
static void saved_stream_save(SavedStream *ss, Ctx *c, const char *dev_opts)
{
    ss->c = c;
    ss->dev_opts = dev_opts;
    ss->path = g_strdup_printf("%s.mig", c->img);
    save_stream(ss);
}

/* Drop the stream and its file; the source stays up */
static void saved_stream_release(SavedStream *ss)
{
    unlink(ss->path);
    g_free(ss->path);
    g_byte_array_unref(ss->s);
}

/* Start a source and save it: see SavedStream */
static void saved_stream_init(SavedStream *ss)
{
    saved_stream_save(ss, bad_start(), NULL);
}

static void saved_stream_destroy(SavedStream *ss)
{
    saved_stream_release(ss);
    ctx_stop(ss->c);
}

/*
 * Load the stream into a fresh destination: it must be refused, and
 * QEMU's message must name @field.  (@field NULL: it must load.)
 */
static void load_stream(SavedStream *ss, const char *field)
{
    g_autofree char *err = g_strdup_printf("%s.stderr", ss->path);
    /* (the image itself is unlinked: the destination opens our fd) */
    g_autofree char *args = NULL;
    g_autofree gchar *text = NULL;
    g_autofree char *st = NULL;
    QTestState *dst;

    g_assert(g_file_set_contents(ss->path, (gchar *)ss->s->data, ss->s->len,
                                 NULL));
    args = g_strdup_printf("-M q35 -nodefaults "
                           "-blockdev driver=file,node-name=d0,"
                           "filename=/proc/%d/fd/%d,locking=off "
                           "-device vpri-blk,drive=d0,serial=" SERIAL "%s "
                           "-incoming defer 2>%s", getpid(), ss->c->img_fd,
                           ss->dev_opts ? ss->dev_opts : "", err);
    dst = qtest_init(args);
    st = iolab_migrate_load_file_end(dst, ss->path, 60 * G_USEC_PER_SEC);
    g_assert_cmpstr(st, ==, field ? "failed" : "completed");
    qtest_quit(dst);
    g_assert(g_file_get_contents(err, &text, NULL, NULL));
    g_test_message("destination said: %s", text);
    if (field) {
        g_assert_nonnull(strstr(text, field));
    }
    unlink(err);
}

/* ------------------------------------------------------------------ */
/* Bounds (issue 13): each of these failed before its fix             */

/*
 * A zeroed page of guest memory for rings the test lays out itself.
 */
static uint64_t ctx_rings_page(Ctx *c)
{
    uint64_t rings = guest_alloc(&c->alloc, 4096);

    qtest_memset(c->qts, rings, 0, 4096);
    return rings;
}

/*
 * Bring the device up with one 16-entry queue whose rings are where the
 * test says (which a well-behaved driver would never choose), MSI-X
 * vector 1, and DRIVER_OK.
 */
static void ctx_one_queue_at(Ctx *c, uint64_t desc, uint64_t avail,
                             uint64_t used)
{
    VVDev *d = c->d;

    ctx_msix(c, 2);
    c->nq = 1;
    vv_reset(d);
    vv_set_status(d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    g_assert(vv_negotiate(d, DRIVER_FEATURES & vv_get_device_features(d)));
    g_assert_cmpint(vv_set_config_vector(d, 0), ==, 0);
    vv_common_writew(d, VV_COMMON_Q_SELECT, 0);
    vv_common_writew(d, VV_COMMON_Q_SIZE, 16);
    vv_common_writew(d, VV_COMMON_Q_MSIX, 1);
    vv_common_writel(d, VV_COMMON_Q_DESCLO, desc);
    vv_common_writel(d, VV_COMMON_Q_DESCHI, desc >> 32);
    vv_common_writel(d, VV_COMMON_Q_AVAILLO, avail);
    vv_common_writel(d, VV_COMMON_Q_AVAILHI, avail >> 32);
    vv_common_writel(d, VV_COMMON_Q_USEDLO, used);
    vv_common_writel(d, VV_COMMON_Q_USEDHI, used >> 32);
    vv_common_writew(d, VV_COMMON_Q_ENABLE, 1);
    g_assert_cmpuint(vv_common_readw(d, VV_COMMON_Q_ENABLE), ==, 1);
    vv_set_status(d, vv_get_status(d) | VV_S_DRIVER_OK);
}

/*
 * The descriptor table at bus address 0, and an indirect descriptor whose
 * table ends exactly at 2^64: the ring-cache bounds check must not wrap
 * (it once took the access for one inside the table at 0 and aborted in
 * address_space_read_cached).  A DMA error: NEEDS_RESET.
 */
static void test_bad_ring_cache_wrap(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    VVDev *d = c->d;
    uint64_t rings = ctx_rings_page(c);
    uint8_t desc[16];

    ctx_one_queue_at(c, 0, rings, rings + 2048);

    /* desc[0], at guest address 0: a one-entry table at 2^64 - 16 */
    stq_le_p(desc, 0xfffffffffffffff0ULL);
    stl_le_p(desc + 8, 16);
    stw_le_p(desc + 12, VV_DESC_F_INDIRECT);
    stw_le_p(desc + 14, 0);
    qtest_memwrite(c->qts, 0, desc, sizeof(desc));
    qtest_writew(c->qts, rings + 4, 0);         /* avail->ring[0] = 0 */
    qtest_writew(c->qts, rings + 2, 1);         /* avail->idx = 1 */
    vv_notify_raw(d, 0);

    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    assert_logged(c, "DMA access refused");
    assert_running(c);
    ctx_stop(c);
}

/*
 * Rings that overlap: the used ring inside the descriptor table.  The
 * device's writes to the used ring (here the notification flags it sets
 * when the queue runs empty) must not go through the descriptor table's
 * read-only cache (generic-fuzz found QEMU aborting in
 * address_space_cache_invalidate); they go to guest memory as any DMA.
 */
static void test_bad_ring_overlap(void)
{
    Ctx *c = ctx_start(NULL, NULL, false);
    VVDev *d = c->d;
    uint64_t rings = ctx_rings_page(c);

    /*
     * 16 descriptors: 256 bytes from rings; the used ring (136 bytes
     * with its event field) at +16, inside them
     */
    ctx_one_queue_at(c, rings, rings + 1024, rings + 16);

    /* Nothing published: the queue runs empty and re-arms at once */
    vv_notify_raw(d, 0);
    vv_notify_raw(d, 0);
    assert_running(c);
    g_assert_cmpuint(vv_common_readw(d, VV_COMMON_Q_ENABLE), ==, 1);
    ctx_stop(c);
}

/* SEG_MAX is 126: a request with 127 data segments is an I/O error */
static void test_bad_seg_max(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    g_autofree uint8_t *buf = g_malloc(127 * SECTOR);
    g_autofree uint8_t *disk = g_malloc(127 * SECTOR);
    uint32_t used_len = 0;

    g_assert_cmpuint(vv_config_readl(c->d, CFG_SEG_MAX), ==, 126);
    fill_pattern(buf, 127 * SECTOR, 7);
    g_assert_cmpint(do_io(c, q, BLK_T_OUT, 1000, buf, 127 * SECTOR, 127,
                          false, &used_len), ==, BLK_S_IOERR);
    g_assert_cmpuint(used_len, ==, 1);
    assert_logged(c, "more data segments than seg_max");
    /* Nothing of it reached the disk */
    g_assert_cmpint(pread(c->img_fd, disk, 127 * SECTOR, 1000 * SECTOR), ==,
                    127 * SECTOR);
    for (size_t i = 0; i < 127 * SECTOR; i++) {
        g_assert_cmpint(disk[i], ==, 0);
    }
    g_assert_cmpint(do_io(c, q, BLK_T_IN, 1000, buf, 127 * SECTOR, 127,
                          false, NULL), ==, BLK_S_IOERR);
    /* 126 segments are within the limit, direct and indirect */
    write_read_check(c, q, 2000, 126 * SECTOR, 126, false, 8);
    write_read_check(c, q, 3000, 126 * SECTOR, 126, true, 9);
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    ctx_stop(c);
}

/*
 * Reads that the backend holds (a throttle group on the virtual clock,
 * which only this test advances) stay in flight; the driver publishes the
 * same head again and again.  More requests in flight than the queue has
 * entries is a device error, as upstream's "virtqueue size exceeded".
 */
#define THROTTLED_BLOCKDEV \
    "driver=file,node-name=f0,filename=%s " \
    "-object throttle-group,id=tg0,x-iops-total=1 " \
    "-blockdev driver=throttle,node-name=d0,throttle-group=tg0,file=f0"

static void publish_head(VVQueue *q, uint16_t head, int times)
{
    for (int i = 0; i < times; i++) {
        vv_queue_write_avail_ring(q, (q->avail_idx + i) % q->size, head);
    }
    q->avail_idx += times;
    vv_queue_write_avail_idx(q, q->avail_idx);
    vv_queue_kick(q);
}

static void test_bad_inflight_exceeded(void)
{
    Ctx *c = ctx_start_full(",queue-size=16", NULL, false,
                            THROTTLED_BLOCKDEV);
    VVQueue *q;
    uint64_t hdr, data, status;
    uint8_t h[16] = { 0 };
    VVBuf bufs[3];
    uint16_t head;

    ctx_msix(c, 2);
    ctx_init(c, 1);
    q = queue(c, 0);
    g_assert_cmpuint(q->size, ==, 16);
    hdr = guest_alloc(&c->alloc, 16);
    data = guest_alloc(&c->alloc, SECTOR);
    status = guest_alloc(&c->alloc, 1);
    stl_le_p(h, BLK_T_IN);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));
    bufs[0] = (VVBuf){ hdr, 16, false };
    bufs[1] = (VVBuf){ data, SECTOR, true };
    bufs[2] = (VVBuf){ status, 1, true };
    head = vv_queue_add_chain(q, bufs, 3, false);

    /* A full ring of the same head: all of it goes to the backend */
    publish_head(q, head, 16);
    assert_running(c);
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    /* And another: the requests of the first are still in flight */
    publish_head(q, head, 16);
    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    assert_logged(c, "virtqueue size exceeded");
    assert_running(c);
    /*
     * The broken device still migrates.  The pop that found the queue
     * over its size used to go through first, leaving 17 chains in
     * flight on a 16-entry queue, and the destination refused the
     * stream: a guest could make itself unmigratable.  The engine now
     * breaks the queue before that pop.
     */
    {
        SavedStream ss;

        saved_stream_save(&ss, c, ",queue-size=16");
        load_stream(&ss, NULL);
        saved_stream_release(&ss);
        qtest_qmp_assert_success(c->qts, "{ 'execute': 'cont' }");
    }
    /*
     * A reset drains the backend and the queue works again (a request
     * that needs no backend: the throttle's bucket is deep in debt).
     */
    vv_reset(c->d);
    g_assert_cmphex(vv_get_status(c->d), ==, 0);
    ctx_msix_program(c, 2);
    ctx_init(c, 1);
    {
        uint8_t id[BLK_ID_BYTES];

        g_assert_cmpint(do_io(c, queue(c, 0), BLK_T_GET_ID, 0, id,
                              sizeof(id), 1, false, NULL), ==, BLK_S_OK);
        g_assert(!memcmp(id, SERIAL, strlen(SERIAL)));
    }
    ctx_stop(c);
}

/*
 * The status byte of a read aimed at the device's own device_status
 * register: the completion writes 0 there, which is a reset.  From the
 * backend's completion callback that reset drained the backend from
 * inside its own callback and never returned.  Completions now run in a
 * bottom half under the device's re-entrancy guard: the DMA onto our own
 * registers is refused, and it is a device error.
 */
static void test_bad_status_on_bar(void)
{
    Ctx *c = bad_start();
    VVQueue *q = queue(c, 0);
    uint64_t dev_status = c->d->common.token.addr + c->d->common.offset +
                          VV_COMMON_STATUS;
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint64_t data = guest_alloc(&c->alloc, 4096);
    uint8_t h[16] = { 0 };
    VVBuf bufs[3];
    uint16_t head;

    stl_le_p(h, BLK_T_IN);
    stq_le_p(h + 8, 8);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));
    bufs[0] = (VVBuf){ hdr, 16, false };
    bufs[1] = (VVBuf){ data, 4096, true };
    bufs[2] = (VVBuf){ dev_status, 1, true };
    head = vv_queue_add_chain(q, bufs, 3, false);
    vv_queue_publish(q, head);
    vv_queue_kick(q);

    g_assert(wait_needs_reset(c, VV_TIMEOUT_US));
    assert_logged(c, "DMA error on status");
    assert_running(c);
    vv_reset(c->d);
    g_assert_cmphex(vv_get_status(c->d), ==, 0);
    ctx_msix_program(c, 2);
    ctx_init(c, 1);
    write_read_check(c, queue(c, 0), 64, 4096, 1, false, 42);
    ctx_stop(c);
}

static uint64_t qom_get_uint(Ctx *c, const char *path, const char *prop)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': %s } }", path, prop);
    uint64_t val;

    g_assert(qdict_haskey(rsp, "return"));
    val = qdict_get_int(rsp, "return");
    qobject_unref(rsp);
    return val;
}

/*
 * Guest RAM in two memory backends: a buffer across their boundary does
 * not map in one piece and is bounced.  With bounce-cap=8K, four 8 KiB
 * writes from such a buffer cannot all hold bounce memory at once: the
 * queue waits for the first to finish (stalled, not failed), and all four
 * complete.
 */
#define TWO_NODES \
    "-m 128M -object memory-backend-ram,id=m0,size=64M " \
    "-object memory-backend-ram,id=m1,size=64M " \
    "-numa node,memdev=m0 -numa node,memdev=m1"
#define NODE_BOUNDARY (64 * MiB)

static void test_bounce_cap(void)
{
    Ctx *c = ctx_start(",id=vblk0,bounce-cap=8192", TWO_NODES, false);
    VVQueue *q;
    uint8_t buf[8192];
    uint64_t hdr[4], status[4];
    uint16_t head[4];

    ctx_msix(c, 2);
    ctx_init(c, 1);
    q = queue(c, 0);
    fill_pattern(buf, sizeof(buf), 77);
    qtest_memwrite(c->qts, NODE_BOUNDARY - 4096, buf, sizeof(buf));
    for (int i = 0; i < 4; i++) {
        uint8_t h[16] = { 0 };
        VVBuf bufs[3];

        hdr[i] = guest_alloc(&c->alloc, 16);
        status[i] = guest_alloc(&c->alloc, 1);
        stl_le_p(h, BLK_T_OUT);
        stq_le_p(h + 8, 4096 + 16 * i);
        qtest_memwrite(c->qts, hdr[i], h, sizeof(h));
        qtest_writeb(c->qts, status[i], 0xff);
        bufs[0] = (VVBuf){ hdr[i], 16, false };
        bufs[1] = (VVBuf){ NODE_BOUNDARY - 4096, sizeof(buf), false };
        bufs[2] = (VVBuf){ status[i], 1, true };
        head[i] = vv_queue_add_chain(q, bufs, 3, false);
        vv_queue_publish(q, head[i]);
    }
    vv_queue_kick(q);
    for (int i = 0; i < 4; i++) {
        uint32_t id, len;

        g_assert(vv_queue_wait_used(q, &id, &len, VV_TIMEOUT_US));
        g_assert_cmpuint(len, ==, 1);
    }
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(qtest_readb(c->qts, status[i]), ==, BLK_S_OK);
        check_image(c, 4096 + 16 * i, sizeof(buf), 77);
    }
    g_assert_cmpuint(qom_get_uint(c, "/machine/peripheral/vblk0",
                                  "x-bounce-peak"), ==, 8192);
    g_assert_cmpuint(qom_get_uint(c, "/machine/peripheral/vblk0",
                                  "x-bounce-stalls"), >=, 1);
    g_assert_cmphex(vv_get_status(c->d) & VV_S_NEEDS_RESET, ==, 0);
    assert_running(c);
    ctx_stop(c);
}

/*
 * One kick with 100 requests (GET_ID: they complete without the
 * backend): the queue yields to the main loop after 64 chains and the
 * rest runs in a later iteration.  All 100 complete.
 */
static void test_work_per_run(void)
{
    Ctx *c = ctx_start(NULL, "-trace iolab_blk_yield", false);
    VVQueue *q;
    ReqMem m[100];
    uint8_t id[100][BLK_ID_BYTES];
    Req r[100];

    ctx_msix(c, 2);
    ctx_init(c, 1);
    q = queue(c, 0);
    for (int i = 0; i < 100; i++) {
        r[i] = (Req) {
            .type = BLK_T_GET_ID, .buf = id[i], .len = BLK_ID_BYTES,
            .nsegs = 1, .indirect = true, .no_kick = true,
        };
        req_submit(c, q, &r[i], &m[i]);
    }
    vv_queue_kick(q);
    for (int i = 0; i < 100; i++) {
        uint32_t used_id, len;
        int k;

        g_assert(vv_queue_wait_used(q, &used_id, &len, VV_TIMEOUT_US));
        for (k = 0; k < 100 && m[k].head != used_id; k++) {
            ;
        }
        g_assert_cmpint(k, <, 100);
        r[k].used_len = len;
        r[k].status = qtest_readb(c->qts, m[k].status);
        g_assert_cmpint(r[k].status, ==, BLK_S_OK);
        g_assert_cmpuint(len, ==, BLK_ID_BYTES + 1);
    }
    assert_logged(c, "iolab_blk_yield");
    assert_logged(c, "yields to the main loop after 64 chains");
    assert_running(c);
    ctx_stop(c);
}

/* ------------------------------------------------------------------ */
/* Migration streams the transport refuses                            */

/* The stream as saved loads: the checks below refuse only what is bad */
static void test_migration_good(void)
{
    SavedStream ss;

    saved_stream_init(&ss);
    load_stream(&ss, NULL);
    saved_stream_destroy(&ss);
}

/* A kick pending on queue 5 of a one-queue device */
static void test_migration_bad_kick_pending(void)
{
    SavedStream ss;

    saved_stream_init(&ss);
    stq_be_p(queue0_at(&ss, STREAM_KICK_PENDING), 1ULL << 5);
    load_stream(&ss, "kick_pending");
    saved_stream_destroy(&ss);
}

/* An enabled queue of size 0 */
static void test_migration_bad_queue_size(void)
{
    SavedStream ss;

    saved_stream_init(&ss);
    stw_be_p(queue0_at(&ss, QREC_VQ_SIZE), 0);
    stw_be_p(queue0_at(&ss, QREC_SIZE), 0);
    load_stream(&ss, "queues[0].size");
    saved_stream_destroy(&ss);
}

/*
 * Put one chain in flight on queue 0 of @ss (saved with nothing in
 * flight): a GET_ID-shaped chain, header then status byte, as the
 * source's inflight buffer carries it, and queue 0 one chain popped and
 * not pushed (if @popped).  Returns where the chain is in the stream
 * (until the stream changes size).
 */
static uint8_t *add_chain(SavedStream *ss, bool popped)
{
    size_t at = ss->q0 + QREC_LEN;
    uint8_t chain[16 + 2 * 16] = { 0 };
    GByteArray *s = ss->s;

    /* inflight_len */
    g_assert_cmpuint(ldl_be_p(queue0_at(ss, QREC_LEN)), ==, 0);
    g_assert_cmpuint(lduw_be_p(queue0_at(ss, QREC_LAST_AVAIL)), ==,
                     lduw_be_p(queue0_at(ss, QREC_USED_IDX)));
    stw_le_p(chain, 0);                 /* queue */
    stw_le_p(chain + 2, 3);             /* head */
    stw_le_p(chain + 4, 2);             /* nseg */
    stl_le_p(chain + 8, 1);             /* in_len */
    stl_le_p(chain + 12, 16);           /* out_len */
    stq_le_p(chain + 16, 0x100000);     /* header, device-readable */
    stl_le_p(chain + 24, 16);
    stq_le_p(chain + 32, 0x101000);     /* status byte, device-writable */
    stl_le_p(chain + 40, 1);
    chain[44] = 1;
    ss->s = g_byte_array_new();
    g_byte_array_append(ss->s, s->data, at);
    g_byte_array_append(ss->s, (guint8 *)&(uint32_t) {
                            cpu_to_be32(sizeof(chain)) }, 4);
    g_byte_array_append(ss->s, chain, sizeof(chain));
    g_byte_array_append(ss->s, s->data + at + 4, s->len - (at + 4));
    g_byte_array_unref(s);
    if (popped) {
        stw_be_p(queue0_at(ss, QREC_LAST_AVAIL),
                 lduw_be_p(queue0_at(ss, QREC_USED_IDX)) + 1);
    }
    return ss->s->data + at + 4;
}

/*
 * One in-flight chain whose in_len does not add up to its segments (and,
 * as the control, the same chain with the right total loads).
 */
static void test_migration_bad_chain_total(void)
{
    SavedStream ss;
    uint8_t *chain;

    saved_stream_init(&ss);
    chain = add_chain(&ss, true);
    load_stream(&ss, NULL);
    stl_le_p(chain + 8, 4097);              /* in_len */
    load_stream(&ss, "in_len/out_len do not match");
    saved_stream_destroy(&ss);
}

/*
 * A chain in flight on a queue that has popped none (last_avail_idx ==
 * used_idx): restarted, it would be pushed beyond what the driver made
 * available.
 */
static void test_migration_bad_chain_not_popped(void)
{
    SavedStream ss;

    saved_stream_init(&ss);
    add_chain(&ss, false);
    load_stream(&ss, "queues[0].vq.last_avail_idx");
    saved_stream_destroy(&ss);
}

/*
 * A chain in flight whose device-readable part (8 bytes) cannot hold a
 * request header: the source's pop never lets such a chain through.
 */
static void test_migration_bad_chain_no_header(void)
{
    SavedStream ss;
    uint8_t *chain;

    saved_stream_init(&ss);
    chain = add_chain(&ss, true);
    stl_le_p(chain + 12, 8);                /* out_len */
    stl_le_p(chain + 24, 8);                /* the header segment's len */
    load_stream(&ss, "no request header or status byte");
    saved_stream_destroy(&ss);
}

/* inflight_len far beyond what the device can have in flight */
static void test_migration_bad_inflight_len(void)
{
    SavedStream ss;

    saved_stream_init(&ss);
    stl_be_p(queue0_at(&ss, QREC_LEN), 0x10000000);
    load_stream(&ss, "inflight_len");
    saved_stream_destroy(&ss);
}

/*
 * The transport's PCI config, found in the stream by its first 64 bytes
 * as the guest reads them, with an Interrupt Pin other than INTA.  It
 * loaded before, and the next INTx aborted QEMU in pci_set_irq() (as
 * nvme-export's did: the mutator's nvme-export-mgmt #79337).
 */
static void test_migration_bad_intx_pin(void)
{
    SavedStream ss;
    size_t at;

    saved_stream_init(&ss);
    at = iolab_stream_find_pci_config(ss.c->d->pdev, ss.s->data, ss.s->len);
    g_assert_cmphex(ss.s->data[at + PCI_INTERRUPT_PIN], ==, 1);
    ss.s->data[at + PCI_INTERRUPT_PIN] = 0x41;
    load_stream(&ss, "PCI_INTERRUPT_PIN");
    saved_stream_destroy(&ss);
}

/* Each case runs in a child process with this bound */
#define CASE_TIMEOUT_US     (60 * G_USEC_PER_SEC)

int main(int argc, char **argv)
{
    if (!vblk_tests_init(&argc, &argv, CASE_TIMEOUT_US)) {
        return g_test_run();
    }

    add_test("/iolab/vpri-blk/identity", test_identity);
    add_test("/iolab/vpri-blk/identity-ro-mq", test_identity_ro);
    add_test("/iolab/vpri-blk/features", test_features);
    add_test("/iolab/vpri-blk/rw", test_rw);
    add_test("/iolab/vpri-blk/rw-intx", test_rw_intx);
    add_test("/iolab/vpri-blk/get-id", test_get_id);
    add_test("/iolab/vpri-blk/unsupported", test_unsupported);
    add_test("/iolab/vpri-blk/beyond-capacity", test_beyond_capacity);
    add_test("/iolab/vpri-blk/rw-host", test_rw_host);
    add_test("/iolab/vpri-blk/multiqueue", test_multiqueue);
    add_test("/iolab/vpri-blk/merge", test_merge);
    add_test("/iolab/vpri-blk/bad/loop", test_bad_loop);
    add_test("/iolab/vpri-blk/bad/indirect-loop",
                   test_bad_indirect_loop);
    add_test("/iolab/vpri-blk/bad/head-index", test_bad_head_index);
    add_test("/iolab/vpri-blk/bad/next-index", test_bad_next_index);
    add_test("/iolab/vpri-blk/bad/no-status", test_bad_no_status);
    add_test("/iolab/vpri-blk/bad/addr-write", test_bad_addr_write);
    add_test("/iolab/vpri-blk/bad/addr-read", test_bad_addr_read);
    add_test("/iolab/vpri-blk/bad/addr-table", test_bad_addr_table);
    add_test("/iolab/vpri-blk/bad/avail-idx", test_bad_avail_idx);
    add_test("/iolab/vpri-blk/bad/notify-index",
                   test_bad_notify_index);
    add_test("/iolab/vpri-blk/bad/queue-size", test_bad_queue_size);
    add_test("/iolab/vpri-blk/bad/config-isr-intx",
                   test_bad_config_isr_intx);
    add_test("/iolab/vpri-blk/bad/config-isr-msix",
                   test_bad_config_isr);
    add_test("/iolab/vpri-blk/reset", test_reset);
    add_test("/iolab/vpri-blk/bad/ring-cache-wrap", test_bad_ring_cache_wrap);
    add_test("/iolab/vpri-blk/bad/ring-overlap", test_bad_ring_overlap);
    add_test("/iolab/vpri-blk/bad/seg-max", test_bad_seg_max);
    add_test("/iolab/vpri-blk/bad/inflight-exceeded",
             test_bad_inflight_exceeded);
    add_test("/iolab/vpri-blk/bad/status-on-bar", test_bad_status_on_bar);
    add_test("/iolab/vpri-blk/bounds/bounce-cap", test_bounce_cap);
    add_test("/iolab/vpri-blk/bounds/work-per-run", test_work_per_run);
    add_test("/iolab/vpri-blk/migration/good", test_migration_good);
    add_test("/iolab/vpri-blk/migration/bad-kick-pending",
             test_migration_bad_kick_pending);
    add_test("/iolab/vpri-blk/migration/bad-queue-size",
             test_migration_bad_queue_size);
    add_test("/iolab/vpri-blk/migration/bad-chain-total",
             test_migration_bad_chain_total);
    add_test("/iolab/vpri-blk/migration/bad-chain-not-popped",
             test_migration_bad_chain_not_popped);
    add_test("/iolab/vpri-blk/migration/bad-chain-no-header",
             test_migration_bad_chain_no_header);
    add_test("/iolab/vpri-blk/migration/bad-inflight-len",
             test_migration_bad_inflight_len);
    add_test("/iolab/vpri-blk/migration/bad-intx-pin",
             test_migration_bad_intx_pin);
    /* Last (suites run in creation order): a crash here stops no other */
    add_test("/iolab/vpri-blk/backend/write-error", test_backend_error);

    return g_test_run();
}
