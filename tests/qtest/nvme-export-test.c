/*
 * qtest for nvme-export: registers, queues, Identify against the
 * template, PRP and SGL I/O, deallocation and TP4165 Get LBA Status,
 * asynchronous events, TP4176 rate limits in virtual time, bad input,
 * and byte-identical Identify data over two different backings.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "nvme-export-driver.h"
#include "iolab-migrate-wait.h"

#define IMG_SIZE    (64 * 1024 * 1024)
#define NSZE        (IMG_SIZE / 4096)   /* default template: 4 KiB */
#define DEF_VID     0x1b36
#define DEF_DID     0x0115

typedef struct T {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *d;
    char *img, *log;
    int img_fd;
} T;

static char *tmp_file(const char *tag, int *fd_out)
{
    g_autofree char *tmpl = g_strdup_printf("nvmex-%s-XXXXXX", tag);
    g_autoptr(GError) err = NULL;
    char *path;
    int fd = g_file_open_tmp(tmpl, &path, &err);

    g_assert_no_error(err);
    if (fd_out) {
        *fd_out = fd;
    } else {
        close(fd);
    }
    return path;
}

/* Start QEMU with one raw image as drive d0 and @devs for devices */
static T *t_start_args(uint16_t vid, uint16_t did, const char *devs)
{
    T *t = g_new0(T, 1);
    g_autofree char *args = NULL;

    t->img = tmp_file("img", &t->img_fd);
    g_assert_cmpint(ftruncate(t->img_fd, IMG_SIZE), ==, 0);
    t->log = tmp_file("log", NULL);
    args = g_strdup_printf("-machine pc -m 256 -nodefaults "
                           "-d guest_errors -D %s "
                           "-drive if=none,id=d0,file=%s,format=raw,discard=unmap %s",
                           t->log, t->img, devs);
    t->qts = qtest_init(args);
    pc_alloc_init(&t->alloc, t->qts, 0);
    t->bus = qpci_new_pc(t->qts, &t->alloc);
    t->d = nx_find(t->qts, &t->alloc, t->bus, vid, did);
    g_assert(t->d);
    return t;
}

static T *t_start(const char *extra)
{
    g_autofree char *devs = g_strdup_printf("-device nvme-export,id=nx0,"
                                            "drive=d0%s", extra);

    return t_start_args(DEF_VID, DEF_DID, devs);
}

static void t_stop(T *t)
{
    nx_free(t->d);
    qpci_free_pc(t->bus);
    alloc_destroy(&t->alloc);
    qtest_quit(t->qts);
    close(t->img_fd);
    unlink(t->img);
    unlink(t->log);
    g_free(t->img);
    g_free(t->log);
    g_free(t);
}

static bool logged(T *t, const char *needle)
{
    g_autofree char *text = NULL;

    /* Flushes the log: QEMU writes it with stdio buffering */
    qtest_qmp_assert_success(t->qts, "{ 'execute': 'query-status' }");
    g_assert(g_file_get_contents(t->log, &text, NULL, NULL));
    return strstr(text, needle) != NULL;
}

static void assert_alive(T *t)
{
    QDict *rsp = qtest_qmp(t->qts, "{ 'execute': 'query-status' }");

    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

/* Start, enable, create I/O queue 1 of @qsize entries */
static T *t_ready(const char *extra, uint16_t qsize)
{
    T *t = t_start(extra);

    g_assert(nx_enable(t->d, 32));
    g_assert_cmpint(nx_set_features(t->d, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmpint(nx_create_ioq(t->d, 1, qsize), ==, 0);
    return t;
}

static int rw(NxDev *d, uint8_t opc, uint32_t nsid, uint64_t slba,
              uint16_t nlb, uint64_t prp1, uint64_t prp2)
{
    NxCmd c;

    nx_cmd(&c, opc, nsid);
    nx_cmd_prp(&c, prp1, prp2);
    nx_cmd_dw(&c, 10, slba);
    nx_cmd_dw(&c, 11, slba >> 32);
    nx_cmd_dw(&c, 12, nlb - 1);
    return nx_exec(d, 1, &c, NULL);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = seed >> 16;
    }
}

/* ------------------------------------------------------------------ */

static void test_registers(void)
{
    T *t = t_start(",mqes=256");
    uint64_t cap = nx_rd64(t->d, NX_CAP);

    g_assert_cmphex(cap & 0xffff, ==, 255);             /* MQES */
    g_assert_true(cap & (1ull << 16));                  /* CQR */
    g_assert_cmpint((cap >> 24) & 0xff, >, 0);          /* TO */
    g_assert_cmpint((cap >> 32) & 0xf, ==, 0);          /* DSTRD */
    g_assert_true(cap & (1ull << 37));                  /* CSS: NVM */
    g_assert_cmphex(nx_rd32(t->d, NX_VS), ==, 0x00020000);
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS), ==, 0);

    g_assert_true(nx_enable(t->d, 16));
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 3, ==, 1);
    /* Admin queue registers are read-only while enabled */
    nx_wr32(t->d, NX_AQA, 0x00070007);
    g_assert_cmphex(nx_rd32(t->d, NX_AQA), ==, 0x000f000f);
    nx_disable(t->d);
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 1, ==, 0);

    /* Re-enable works and commands flow again */
    g_assert_true(nx_enable(t->d, 8));
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, NULL), ==, 0);

    /* Shutdown notification completes */
    nx_wr32(t->d, NX_CC, nx_rd32(t->d, NX_CC) | 1 << 14);
    g_assert_cmphex((nx_rd32(t->d, NX_CSTS) >> 2) & 3, ==, 2);
    nx_disable(t->d);

    /* Misaligned admin queue: controller fatal status, logged */
    nx_wr32(t->d, NX_AQA, 0x00070007);
    nx_wr32(t->d, NX_ASQ, 0x10008);
    nx_wr32(t->d, NX_ACQ, 0x20000);
    nx_wr32(t->d, NX_CC, 1 | 6 << 16 | 4 << 20);
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 3, ==, 2);
    g_assert_true(logged(t, "admin queue base or size invalid"));
    nx_disable(t->d);
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 3, ==, 0);
    g_assert_true(nx_enable(t->d, 8));
    t_stop(t);
}

static void test_identify_template(void)
{
    T *t = t_start_args(0x144d, 0xa80a,
        "-drive if=none,id=d1,file=null-co://,driver=null-co,"
        "size=33554432 "
        "-device nvme-export,id=nx0,drive=d0,template-id=tpl-a,"
        "vid=0x144d,did=0xa80a,ssvid=0x1234,sn=SN-TEST-1,'mn=Model T',"
        "fr=FW12,oui=0x38b19e,mdts=5,mqes=256,max-ioqs=4,"
        "subnqn=nqn.2026-01.org.iolab:test "
        "-device nvme-export-ns,bus=nx0,drive=d1,nsid=3,"
        "lba-formats=512,,4096,flbas=1,size=16777216,"
        "uuid=00112233-4455-6677-8899-aabbccddeeff");
    uint8_t id[4096];
    uint32_t dw0;
    QDict *rsp, *ctrl;
    QList *list;

    g_assert_true(nx_enable(t->d, 32));
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, id), ==, 0);
    g_assert_cmphex(lduw_le_p(id), ==, 0x144d);
    g_assert_cmphex(lduw_le_p(id + 2), ==, 0x1234);
    g_assert_cmpmem(id + 4, 20, "SN-TEST-1           ", 20);
    g_assert_cmpmem(id + 24, 8, "Model T ", 8);
    g_assert_cmpint(id[63], ==, ' ');
    g_assert_cmpmem(id + 64, 8, "FW12    ", 8);
    g_assert_cmphex(id[73], ==, 0x9e);
    g_assert_cmphex(id[74], ==, 0xb1);
    g_assert_cmphex(id[75], ==, 0x38);
    g_assert_cmpint(id[77], ==, 5);
    g_assert_cmpint(ldl_le_p(id + 516), ==, 16);        /* NN */
    g_assert_cmpstr((char *)id + 768, ==, "nqn.2026-01.org.iolab:test");
    g_assert_cmphex(nx_rd64(t->d, NX_CAP) & 0xffff, ==, 255);

    /* Queues: ask for 8 pairs, the template offers 4 */
    g_assert_cmpint(nx_set_features(t->d, 0x07, 0x00070007, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 0x00030003);

    /* Namespace 1: the whole raw image in 4 KiB blocks */
    g_assert_cmpint(nx_identify(t->d, 0, 1, 0, id), ==, 0);
    g_assert_cmpint(ldq_le_p(id), ==, NSZE);
    g_assert_cmpint(id[26] & 0xf, ==, 0);
    /* Namespace 3: 16 MiB of 4 KiB blocks */
    g_assert_cmpint(nx_identify(t->d, 0, 3, 0, id), ==, 0);
    g_assert_cmpint(ldq_le_p(id), ==, 4096);
    g_assert_cmpint(id[25], ==, 1);
    g_assert_cmpint(id[26] & 0xf, ==, 1);
    g_assert_cmpint(ldl_le_p(id + 132) >> 16, ==, 12);
    /* Namespace 2 is inactive: zeroes; 17 is beyond NN */
    g_assert_cmpint(nx_identify(t->d, 0, 2, 0, id), ==, 0);
    g_assert_true(buffer_is_zero(id, 4096));
    g_assert_cmphex(nx_identify(t->d, 0, 17, 0, id), ==, 0x0b);
    /* Active namespace list */
    g_assert_cmpint(nx_identify(t->d, 2, 0, 0, id), ==, 0);
    g_assert_cmpint(ldl_le_p(id), ==, 1);
    g_assert_cmpint(ldl_le_p(id + 4), ==, 3);
    g_assert_cmpint(ldl_le_p(id + 8), ==, 0);
    /* Descriptors of 3: the UUID, then the command set */
    g_assert_cmpint(nx_identify(t->d, 3, 3, 0, id), ==, 0);
    g_assert_cmpint(id[0], ==, 3);
    g_assert_cmpint(id[1], ==, 16);
    g_assert_cmphex(id[4], ==, 0x00);
    g_assert_cmphex(id[19], ==, 0xff);
    g_assert_cmpint(id[20], ==, 4);
    /* I/O command set structures */
    g_assert_cmpint(nx_identify(t->d, 6, 0, 0, id), ==, 0);
    g_assert_cmpint(lduw_le_p(id + 18) & 1, ==, 1);     /* RALBAS */
    g_assert_cmpint(nx_identify(t->d, 5, 3, 0, id), ==, 0);
    g_assert_cmpint(ldl_le_p(id + 292), ==, 256);      /* TLBAAG */
    g_assert_cmphex(nx_identify(t->d, 5, 3, 1, id), ==, 0x02);
    g_assert_cmpint(nx_identify(t->d, 8, 1, 0, id), ==, 0);

    /* Logs: firmware slot shows FR, effects list Identify */
    g_assert_cmpint(nx_get_log(t->d, 0x03, 0xffffffff, id, 512), ==, 0);
    g_assert_cmpint(id[0], ==, 1);
    g_assert_cmpmem(id + 8, 8, "FW12    ", 8);
    g_assert_cmpint(nx_get_log(t->d, 0x05, 0, id, 4096), ==, 0);
    g_assert_cmpint(ldl_le_p(id + 4 * 0x06) & 1, ==, 1);
    g_assert_cmpint(ldl_le_p(id + 1024 + 4 * 0x02) & 1, ==, 1);
    g_assert_cmpint(nx_get_log(t->d, 0x02, 0xffffffff, id, 512), ==, 0);
    g_assert_cmpint(lduw_le_p(id + 1), ==, 303);

    /* QMP sees the template and both namespaces */
    rsp = qtest_qmp(t->qts, "{ 'execute': 'query-nvme-export' }");
    list = qdict_get_qlist(rsp, "return");
    g_assert_cmpint(qlist_size(list), ==, 1);
    ctrl = qobject_to(QDict, qlist_peek(list));
    g_assert_cmpstr(qdict_get_str(ctrl, "id"), ==, "nx0");
    g_assert_cmpstr(qdict_get_str(ctrl, "template-id"), ==, "tpl-a");
    g_assert_cmpstr(qdict_get_str(ctrl, "serial"), ==, "SN-TEST-1");
    g_assert_true(qdict_get_bool(ctrl, "enabled"));
    g_assert_cmpint(qlist_size(qdict_get_qlist(ctrl, "namespaces")), ==, 2);
    qobject_unref(rsp);
    {
        g_autofree char *hmp = qtest_hmp(t->qts, "info nvme-export");

        g_assert_nonnull(strstr(hmp, "nx0: template tpl-a, 'Model T'"));
        g_assert_nonnull(strstr(hmp, "nsid 3 on d1: 4096 x 4096 bytes"));
    }
    t_stop(t);
}

static int get_feature_sel(NxDev *d, uint8_t fid, uint8_t sel, uint32_t dw11,
                           uint32_t *dw0)
{
    NxCmd c;
    NxCqe e;
    int st;

    nx_cmd(&c, 0x0a, 0);
    nx_cmd_dw(&c, 10, fid | sel << 8);
    nx_cmd_dw(&c, 11, dw11);
    st = nx_exec(d, 0, &c, &e);
    *dw0 = e.dw0;
    return st;
}

static void test_features(void)
{
    T *t = t_start(",vwc=on");
    static const struct { uint8_t fid; uint32_t val; } rw[] = {
        { 0x01, 0x03020107 }, { 0x02, 0 }, { 0x05, 0x10 }, { 0x06, 0 },
        { 0x08, 0x0a04 }, { 0x0a, 1 }, { 0x0b, 0x102 },
    };
    uint32_t dw0;
    NxCmd c;

    g_assert_true(nx_enable(t->d, 16));
    for (size_t i = 0; i < G_N_ELEMENTS(rw); i++) {
        g_assert_cmpint(nx_set_features(t->d, rw[i].fid, rw[i].val, NULL),
                        ==, 0);
        g_assert_cmpint(nx_get_features(t->d, rw[i].fid, 0, &dw0), ==, 0);
        g_assert_cmphex(dw0, ==, rw[i].val);
        /*
         * Supported capabilities (Base 2.0, Get Features SEL 011b: bit 0
         * saveable, bit 1 namespace specific, bit 2 changeable):
         * changeable only
         */
        g_assert_cmpint(get_feature_sel(t->d, rw[i].fid, 3, 0, &dw0), ==, 0);
        g_assert_cmphex(dw0, ==, 4);
    }
    /* The same for Number of Queues and, with rate-limit=on, 28h */
    g_assert_cmpint(get_feature_sel(t->d, 0x07, 3, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 4);
    g_assert_cmpint(get_feature_sel(t->d, 0x28, 3, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 4);
    /* Default values: the write cache is on in the template */
    g_assert_cmpint(get_feature_sel(t->d, 0x06, 1, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 1);
    /* Temperature thresholds: over = WCTEMP by default, under settable */
    g_assert_cmpint(nx_get_features(t->d, 0x04, 0, &dw0), ==, 0);
    g_assert_cmpint(dw0, ==, 343);
    g_assert_cmpint(nx_set_features(t->d, 0x04, 1 << 20 | 273, NULL), ==, 0);
    g_assert_cmpint(nx_get_features(t->d, 0x04, 1 << 20, &dw0), ==, 0);
    g_assert_cmpint(dw0, ==, 273);
    g_assert_cmphex(nx_set_features(t->d, 0x04, 9 << 16 | 300, NULL), ==,
                    0x02);
    /* Interrupt vector configuration */
    g_assert_cmpint(nx_set_features(t->d, 0x09, 1 << 16 | 2, NULL), ==, 0);
    g_assert_cmpint(nx_get_features(t->d, 0x09, 2, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 1 << 16 | 2);
    g_assert_cmphex(nx_get_features(t->d, 0x09, 500, &dw0), ==, 0x02);
    /* Power states other than 0 and DULBE are not offered */
    g_assert_cmphex(nx_set_features(t->d, 0x02, 1, NULL), ==, 0x02);
    g_assert_cmphex(nx_set_features(t->d, 0x05, 1 << 16, NULL), ==, 0x02);
    /* Nothing is saveable */
    nx_cmd(&c, 0x09, 0);
    nx_cmd_dw(&c, 10, 0x01 | 1u << 31);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x10d);
    /* Number of queues: before creation, and what was allocated */
    g_assert_cmpint(nx_set_features(t->d, 0x07, 0x00010002, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 0x00010002);
    g_assert_cmpint(nx_get_features(t->d, 0x07, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 0x00010002);
    g_assert_cmphex(nx_set_features(t->d, 0x07, 0xffff, NULL), ==, 0x02);
    /* Only 2 CQs were allocated: CQ 3 does not exist */
    g_assert_cmphex(nx_create_ioq(t->d, 3, 8), ==, 0x101);
    t_stop(t);

    /* Without a write cache in the template, feature 06h is refused */
    t = t_start(",vwc=off");
    g_assert_true(nx_enable(t->d, 16));
    g_assert_cmphex(nx_set_features(t->d, 0x06, 1, NULL), ==, 0x02);
    t_stop(t);
}

static void test_rw_prp(void)
{
    T *t = t_ready("", 32);
    const size_t len = 5 * 4096;
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *back = g_malloc(len + 512);
    g_autofree uint8_t *file = g_malloc(len);
    uint64_t buf = nx_alloc(t->d, len + 4096, 4096);
    uint64_t list = nx_alloc(t->d, 4096, 4096);
    uint64_t rbuf = nx_alloc(t->d, 8 * 4096, 4096);
    uint8_t prps[64];

    fill(data, len, 1);
    nx_memwrite(t->d, buf, data, len);
    /* PRP1 page, then a list of the 4 following pages */
    for (int i = 0; i < 4; i++) {
        stq_le_p(prps + 8 * i, buf + 4096 * (i + 1));
    }
    nx_memwrite(t->d, list, prps, 32);
    g_assert_cmpint(rw(t->d, 0x01, 1, 100, 5, buf, list), ==, 0);
    g_assert_cmpint(pread(t->img_fd, file, len, 100 * 4096), ==, len);
    g_assert_cmpmem(file, len, data, len);

    /* Read back with PRP1 at an offset: 6 pages, out of order */
    for (int i = 0; i < 5; i++) {
        stq_le_p(prps + 8 * i, rbuf + 4096 * (6 - i));
    }
    nx_memwrite(t->d, list, prps, 40);
    g_assert_cmpint(rw(t->d, 0x02, 1, 100, 5, rbuf + 512, list), ==, 0);
    nx_memread(t->d, rbuf + 512, back, 4096 - 512);
    for (int i = 0; i < 5; i++) {
        nx_memread(t->d, rbuf + 4096 * (6 - i),
                   back + 4096 - 512 + 4096 * i,
                   i == 4 ? 512 : 4096);
    }
    g_assert_cmpmem(back, len, data, len);

    /* Two pages through PRP2 as a plain pointer */
    g_assert_cmpint(rw(t->d, 0x02, 1, 101, 2, rbuf, rbuf + 3 * 4096), ==, 0);
    nx_memread(t->d, rbuf + 3 * 4096, back, 4096);
    g_assert_cmpmem(back, 4096, data + 2 * 4096, 4096);

    /* Flush and Write Zeroes */
    {
        NxCmd c;

        nx_cmd(&c, 0x00, 1);
        g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);
        nx_cmd(&c, 0x08, 1);
        nx_cmd_dw(&c, 10, 100);
        nx_cmd_dw(&c, 12, 7);
        g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);
        g_assert_cmpint(pread(t->img_fd, file, 4096, 100 * 4096), ==, 4096);
        g_assert_true(buffer_is_zero(file, 4096));
    }
    t_stop(t);
}

static void put_sgl(uint8_t *d, uint64_t addr, uint32_t len, uint8_t type)
{
    memset(d, 0, 16);
    stq_le_p(d, addr);
    stl_le_p(d + 8, len);
    d[15] = type << 4;
}

static void test_rw_sgl(void)
{
    T *t = t_ready("", 32);
    uint8_t data[4096], back[4096], segs[64];
    uint64_t a = nx_alloc(t->d, 4096, 4096), b = nx_alloc(t->d, 4096, 4096);
    uint64_t seg = nx_alloc(t->d, 4096, 4096);
    uint64_t last = nx_alloc(t->d, 4096, 4096);
    NxCmd c;

    fill(data, sizeof(data), 2);
    /* Segment: two data blocks and a link to a last segment */
    nx_memwrite(t->d, a + 7, data, 1000);
    nx_memwrite(t->d, b + 100, data + 1000, 2000);
    nx_memwrite(t->d, a + 2048, data + 3000, 1096);
    put_sgl(segs, a + 7, 1000, 0);
    put_sgl(segs + 16, b + 100, 2000, 0);
    put_sgl(segs + 32, last, 16, 3);
    nx_memwrite(t->d, seg, segs, 48);
    put_sgl(segs, a + 2048, 1096, 0);
    nx_memwrite(t->d, last, segs, 16);

    nx_cmd(&c, 0x01, 1);
    nx_cmd_sgl(&c, seg, 48, 2);
    nx_cmd_dw(&c, 10, 2000);
    nx_cmd_dw(&c, 12, 0);
    g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);

    /* Read back through one data block descriptor */
    nx_cmd(&c, 0x02, 1);
    nx_cmd_sgl(&c, b + 8, 4096 - 8, 0);
    nx_cmd_dw(&c, 10, 2000);
    nx_cmd_dw(&c, 12, 0);
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x0f);  /* short SGL */
    nx_cmd_sgl(&c, b, 4096, 0);
    g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);
    nx_memread(t->d, b, back, 4096);
    g_assert_cmpmem(back, 4096, data, 4096);
    t_stop(t);
}

static int lba_status(NxDev *d, uint32_t nsid, uint64_t slba,
                      uint8_t *out, uint32_t len)
{
    uint64_t buf = nx_alloc(d, 4096, 4096);
    NxCmd c;
    int st;

    nx_cmd(&c, 0x86, nsid);
    nx_cmd_prp(&c, buf, 0);
    nx_cmd_dw(&c, 10, slba);
    nx_cmd_dw(&c, 11, slba >> 32);
    nx_cmd_dw(&c, 12, len / 4 - 1);
    nx_cmd_dw(&c, 13, 0x02u << 24);
    st = nx_exec(d, 0, &c, NULL);
    nx_memread(d, buf, out, len);
    return st;
}

static void test_dealloc_lba_status(void)
{
    T *t = t_ready("", 32);
    uint64_t buf = nx_alloc(t->d, 4096, 4096);
    uint64_t rng = nx_alloc(t->d, 4096, 4096);
    uint8_t st[8 + 16 * 8], data[4096], r[32];
    NxCmd c;

    fill(data, sizeof(data), 3);
    nx_memwrite(t->d, buf, data, 4096);

    g_assert_cmpint(lba_status(t->d, 1, 0, st, sizeof(st)), ==, 0);
    g_assert_cmpint(ldl_le_p(st), ==, 0);
    g_assert_cmpint(st[4], ==, 2);                      /* complete */

    /* Writes inside granules [1024, 1280) and [4864, 5120) */
    g_assert_cmpint(rw(t->d, 0x01, 1, 1250, 1, buf, 0), ==, 0);
    g_assert_cmpint(rw(t->d, 0x01, 1, 5000, 1, buf, 0), ==, 0);
    g_assert_cmpint(lba_status(t->d, 1, 0, st, sizeof(st)), ==, 0);
    g_assert_cmpint(ldl_le_p(st), ==, 2);
    g_assert_cmpint(ldq_le_p(st + 8), ==, 1024);
    g_assert_cmpint(ldl_le_p(st + 16), ==, 256);
    g_assert_cmpint(ldq_le_p(st + 24), ==, 4864);
    g_assert_cmpint(ldl_le_p(st + 32), ==, 256);
    /* Starting past the first: only the second */
    g_assert_cmpint(lba_status(t->d, 1, 2500, st, sizeof(st)), ==, 0);
    g_assert_cmpint(ldl_le_p(st), ==, 1);
    g_assert_cmpint(ldq_le_p(st + 8), ==, 4864);
    /* Room for one descriptor only: incomplete */
    g_assert_cmpint(lba_status(t->d, 1, 0, st, 24), ==, 0);
    g_assert_cmpint(ldl_le_p(st), ==, 1);
    g_assert_cmpint(st[4], ==, 1);

    /* Deallocate the first granule: it reads zero and is not tracked */
    memset(r, 0, sizeof(r));
    stl_le_p(r + 4, 256);
    stq_le_p(r + 8, 1024);
    nx_memwrite(t->d, rng, r, 16);
    nx_cmd(&c, 0x09, 1);
    nx_cmd_prp(&c, rng, 0);
    nx_cmd_dw(&c, 10, 0);
    nx_cmd_dw(&c, 11, 4);                               /* AD */
    g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);
    g_assert_cmpint(rw(t->d, 0x02, 1, 1250, 1, buf, 0), ==, 0);
    nx_memread(t->d, buf, data, 4096);
    g_assert_true(buffer_is_zero(data, 4096));
    g_assert_cmpint(lba_status(t->d, 1, 0, st, sizeof(st)), ==, 0);
    g_assert_cmpint(ldl_le_p(st), ==, 1);
    g_assert_cmpint(ldq_le_p(st + 8), ==, 4864);

    /* A range past the end is refused before anything is done */
    stq_le_p(r + 8, NSZE - 1);
    nx_memwrite(t->d, rng, r, 16);
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x80);
    /* Other actions and out-of-range starts */
    g_assert_cmphex(lba_status(t->d, 1, NSZE, st, sizeof(st)), ==, 0x80);
    g_assert_cmphex(lba_status(t->d, 9, 0, st, sizeof(st)), ==, 0x0b);
    t_stop(t);
}

static uint16_t submit_aer(NxDev *d)
{
    NxCmd c;
    uint16_t cid;

    nx_cmd(&c, 0x0c, 0);
    cid = nx_queue(d, 0, &c);
    nx_ring(d, 0);
    return cid;
}

static void test_aer(void)
{
    T *t = t_ready("", 16);
    uint8_t log[512];
    NxCqe e;
    NxCmd c;
    uint16_t cid;

    /* Four may be outstanding; the fifth is refused */
    for (int i = 0; i < 4; i++) {
        submit_aer(t->d);
    }
    nx_cmd(&c, 0x0c, 0);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x105);

    /* A doorbell of no queue: error event, invalid doorbell register */
    nx_doorbell(t->d, 9, false, 1);
    g_assert_true(nx_reap(t->d, 0, &e, NX_TIMEOUT_US));
    g_assert_cmpint(e.status, ==, 0);
    g_assert_cmphex(e.dw0, ==, 0x010000);
    g_assert_true(logged(t, "of no queue"));

    /* Masked until the error log is read: this one is not reported */
    nx_doorbell(t->d, 1, false, 500);
    nx_cmd(&c, 0x06, 0);        /* a command to prove nothing else came */
    nx_cmd_prp(&c, nx_alloc(t->d, 4096, 4096), 0);
    nx_cmd_dw(&c, 10, 1);
    g_assert_cmpint(nx_exec(t->d, 0, &c, NULL), ==, 0);
    g_assert_cmpint(nx_get_log(t->d, 0x01, 0, log, 256), ==, 0);
    /* Reading the log re-armed it: now the bad value is reported */
    nx_doorbell(t->d, 1, false, 500);
    g_assert_true(nx_reap(t->d, 0, &e, NX_TIMEOUT_US));
    g_assert_cmphex(e.dw0, ==, 0x010100);

    /* Temperature above the threshold, with its event enabled */
    g_assert_cmpint(nx_set_features(t->d, 0x0b, 0x2, NULL), ==, 0);
    cid = t->d->next_cid;
    nx_cmd(&c, 0x09, 0);
    nx_cmd_dw(&c, 10, 0x04);
    nx_cmd_dw(&c, 11, 250);
    nx_queue(t->d, 0, &c);
    nx_ring(t->d, 0);
    for (int i = 0; i < 2; i++) {
        g_assert_true(nx_reap(t->d, 0, &e, NX_TIMEOUT_US));
        if (e.cid == cid) {
            g_assert_cmpint(e.status, ==, 0);
        } else {
            g_assert_cmphex(e.dw0, ==, 0x020101);
        }
    }
    g_assert_cmpint(nx_get_log(t->d, 0x02, 0xffffffff, log, 512), ==, 0);
    g_assert_cmpint(log[0] & 2, ==, 2);
    t_stop(t);
}

static void test_bad_input(void)
{
    T *t = t_ready("", 16);
    uint64_t buf = nx_alloc(t->d, 3 * 4096, 4096);
    uint8_t page[4096];
    NxCmd c;

    /* Invalid opcodes, CNS, log page, feature */
    nx_cmd(&c, 0x7f, 0);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x01);
    nx_cmd(&c, 0x7e, 1);
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x01);
    g_assert_cmphex(nx_identify(t->d, 0x55, 0, 0, NULL), ==, 0x02);
    g_assert_cmphex(nx_get_log(t->d, 0x70, 0, page, 512), ==, 0x109);
    g_assert_cmphex(nx_set_features(t->d, 0x77, 0, NULL), ==, 0x02);
    g_assert_true(logged(t, "admin: opcode 0x7f not supported"));

    /* Bad queue ids and sizes */
    nx_cmd(&c, 0x05, 0);
    nx_cmd_prp(&c, buf, 0);
    nx_cmd_dw(&c, 10, 0 | 15 << 16);
    nx_cmd_dw(&c, 11, 1);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x101);      /* qid 0 */
    nx_cmd_dw(&c, 10, 2 | 0 << 16);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x102);      /* size 1 */
    nx_cmd_dw(&c, 10, 2 | 15 << 16);
    nx_cmd_dw(&c, 11, 3 | 99 << 16);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x108);      /* vector */
    nx_cmd_dw(&c, 10, 1 | 15 << 16);
    nx_cmd_dw(&c, 11, 1);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x101);      /* exists */
    nx_cmd(&c, 0x01, 0);
    nx_cmd_prp(&c, buf, 0);
    nx_cmd_dw(&c, 10, 2 | 15 << 16);
    nx_cmd_dw(&c, 11, 1 | 3 << 16);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x100);      /* no cq */
    nx_cmd(&c, 0x04, 0);
    nx_cmd_dw(&c, 10, 1);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x10c);      /* in use */
    nx_cmd(&c, 0x00, 0);
    nx_cmd_dw(&c, 10, 12);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x101);
    g_assert_cmphex(nx_set_features(t->d, 0x07, 0, NULL), ==, 0x0c);

    /* PRP errors */
    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 1, buf + 2, 0), ==, 0x13);
    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 1, buf + 512, buf + 4096 + 8),
                    ==, 0x13);
    stq_le_p(page, buf + 4096 + 512);   /* list entry with an offset */
    nx_memwrite(t->d, buf + 8192, page, 8);
    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 3, buf + 512, buf + 8192), ==,
                    0x13);
    /* Data outside guest memory; a PRP list outside guest memory */
    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 1, 0x10000000000ull, 0), ==, 0x04);
    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 3, buf, 0x10000000000ull), ==,
                    0x04);
    g_assert_true(logged(t, "is not guest memory"));

    /* SGL errors; SGLs are refused on admin commands */
    nx_cmd(&c, 0x02, 1);
    nx_cmd_sgl(&c, buf, 512, 1);        /* bit bucket */
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x11);
    nx_cmd_sgl(&c, buf, 40, 2);         /* segment of 2.5 descriptors */
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x0e);
    nx_cmd_sgl(&c, 0x10000000000ull, 32, 3);
    g_assert_cmphex(nx_exec(t->d, 1, &c, NULL), ==, 0x04);
    nx_cmd(&c, 0x06, 0);
    nx_cmd_sgl(&c, buf, 4096, 0);
    nx_cmd_dw(&c, 10, 1);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x02);

    /* LBAs out of range, inactive namespace, over MDTS */
    g_assert_cmphex(rw(t->d, 0x02, 1, NSZE - 1, 2, buf, buf + 4096), ==,
                    0x80);
    g_assert_cmphex(rw(t->d, 0x01, 1, ~0ull - 1, 4, buf, 0), ==, 0x80);
    g_assert_cmphex(rw(t->d, 0x02, 5, 0, 1, buf, 0), ==, 0x0b);
    g_assert_true(logged(t, "LBA range"));
    {
        NxCmd big;

        nx_cmd(&big, 0x02, 1);
        nx_cmd_prp(&big, buf, 0);
        nx_cmd_dw(&big, 12, 1023);          /* 4 MiB > MDTS */
        g_assert_cmphex(nx_exec(t->d, 1, &big, NULL), ==, 0x02);
    }

    /* Doorbell abuse: ignored, logged; the queues keep working */
    nx_doorbell(t->d, 1, true, 9);          /* head past posted entries */
    nx_doorbell(t->d, 1, false, 16);        /* tail == size */
    nx_doorbell(t->d, 40, true, 0);
    g_assert_true(logged(t, "head 9 invalid"));
    g_assert_true(logged(t, "tail 16 beyond size"));
    g_assert_cmpint(rw(t->d, 0x02, 1, 0, 1, buf, 0), ==, 0);

    /* The error log holds the last failures, newest first */
    g_assert_cmpint(nx_get_log(t->d, 0x01, 0, page, 256), ==, 0);
    g_assert_cmpint(ldq_le_p(page), >, ldq_le_p(page + 64));

    /* An SQ in unassigned memory: fetching fails, controller fatal */
    nx_cmd(&c, 0x01, 0);
    nx_cmd_prp(&c, 0x10000000000ull, 0);
    nx_cmd_dw(&c, 10, 2 | 15 << 16);
    nx_cmd_dw(&c, 11, 1 | 1 << 16);
    g_assert_cmphex(nx_set_features(t->d, 0x07, 0, NULL), ==, 0x0c);
    g_assert_cmpint(nx_exec(t->d, 0, &c, NULL), ==, 0);
    nx_doorbell(t->d, 2, false, 1);
    for (int i = 0; i < 1000 && !(nx_rd32(t->d, NX_CSTS) & 2); i++) {
        g_usleep(1000);
    }
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 2, ==, 2);
    g_assert_true(logged(t, "submission queue read failed"));
    assert_alive(t);
    /* A reset recovers */
    nx_disable(t->d);
    g_assert_true(nx_enable(t->d, 8));
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, NULL), ==, 0);
    t_stop(t);
}

/* More commands in flight than the CQ holds: completions wait for room */
static void test_cq_full(void)
{
    T *t = t_start("");
    uint64_t buf = nx_alloc(t->d, 4096, 4096);
    NxCmd c;
    NxCqe e;

    g_assert_true(nx_enable(t->d, 16));
    /* SQ 1 of 16 entries on a CQ of 4 (3 usable) */
    g_assert_cmpint(nx_create_ioq_sizes(t->d, 1, 16, 4), ==, 0);
    for (int round = 0; round < 6; round++) {
        uint32_t seen = 0, want = 0;

        for (int i = 0; i < 12; i++) {
            nx_cmd(&c, 0x02, 1);
            nx_cmd_prp(&c, buf, 0);
            nx_cmd_dw(&c, 10, i);
            want |= 1u << (nx_queue(t->d, 1, &c) % 32);
        }
        nx_ring(t->d, 1);
        if (round == 0) {
            /* All twelve finish at the backend before any is reaped */
            g_usleep(200 * 1000);
        }
        for (int i = 0; i < 12; i++) {
            g_assert_true(nx_reap(t->d, 1, &e, NX_TIMEOUT_US));
            g_assert_cmpint(e.status, ==, 0);
            seen |= 1u << (e.cid % 32);
        }
        g_assert_cmphex(seen, ==, want);
    }
    t_stop(t);
}

static void set_rate_limit(T *t, bool on, uint32_t tiops)
{
    uint64_t buf = nx_alloc(t->d, 4096, 4096);
    uint8_t data[1024] = { 0 };
    NxCmd c;

    stw_le_p(data, on ? 0x8000 : 0);
    stl_le_p(data + 24, tiops);
    nx_memwrite(t->d, buf, data, sizeof(data));
    nx_cmd(&c, 0x09, 0);
    nx_cmd_prp(&c, buf, 0);
    nx_cmd_dw(&c, 10, 0x28);
    nx_cmd_dw(&c, 11, 1);               /* TID: controller 1, TGT 0 */
    g_assert_cmpint(nx_exec(t->d, 0, &c, NULL), ==, 0);
}

/* Queue @n one-block reads on I/O queue 1 */
static void queue_reads(T *t, int n, uint64_t buf)
{
    for (int i = 0; i < n; i++) {
        NxCmd c;

        nx_cmd(&c, 0x02, 1);
        nx_cmd_prp(&c, buf, 0);
        nx_cmd_dw(&c, 10, i);
        nx_queue(t->d, 1, &c);
    }
    nx_ring(t->d, 1);
}

static int reap_all(T *t, gint64 quiet_us)
{
    NxCqe e;
    int n = 0;

    while (nx_reap(t->d, 1, &e, quiet_us)) {
        g_assert_cmpint(e.status, ==, 0);
        n++;
    }
    return n;
}

static void test_rate_limit(void)
{
    T *t = t_ready("", 64);
    uint64_t buf = nx_alloc(t->d, 4096, 4096);
    uint64_t gbuf = nx_alloc(t->d, 4096, 4096);
    int done = 0, at_200ms = -1;
    int64_t ms;
    uint8_t got[1024];
    NxCmd c;
    QDict *rsp, *rl;

    /* 100 IOPS: 40 reads need ~390 ms of virtual time */
    set_rate_limit(t, true, 100);
    queue_reads(t, 40, buf);
    for (ms = 0; done < 40 && ms < 2000; ms += 10) {
        /* Real time for the backend; a late one counts a step later */
        done += reap_all(t, 50000);
        if (ms == 200) {
            at_200ms = done;
        }
        qtest_clock_step(t->qts, 10 * 1000 * 1000);
    }
    g_assert_cmpint(done, ==, 40);
    g_assert_cmpint(at_200ms, >=, 17);
    g_assert_cmpint(at_200ms, <=, 23);
    g_assert_cmpint(ms, >=, 380);
    g_assert_cmpint(ms, <=, 450);

    /* Get Features returns what was set */
    nx_cmd(&c, 0x0a, 0);
    nx_cmd_prp(&c, gbuf, 0);
    nx_cmd_dw(&c, 10, 0x28);
    nx_cmd_dw(&c, 11, 1);
    g_assert_cmpint(nx_exec(t->d, 0, &c, NULL), ==, 0);
    nx_memread(t->d, gbuf, got, sizeof(got));
    g_assert_cmphex(lduw_le_p(got), ==, 0x8000);
    g_assert_cmpint(ldl_le_p(got + 24), ==, 100);

    rsp = qtest_qmp(t->qts, "{ 'execute': 'query-nvme-export' }");
    rl = qdict_get_qdict(qobject_to(QDict,
                         qlist_peek(qdict_get_qlist(rsp, "return"))),
                         "rate-limit");
    g_assert_true(qdict_get_bool(rl, "enabled"));
    g_assert_cmpint(qdict_get_int(rl, "iops"), ==, 100);
    g_assert_cmpint(qdict_get_int(rl, "throttled"), >, 0);
    qobject_unref(rsp);

    /* Without limits, the virtual clock need not move at all */
    set_rate_limit(t, false, 0);
    queue_reads(t, 40, buf);
    done = 0;
    for (int i = 0; i < 100 && done < 40; i++) {
        done += reap_all(t, 20000);
    }
    g_assert_cmpint(done, ==, 40);

    /* Bad target, and soft limits (not offered) */
    nx_cmd(&c, 0x09, 0);
    nx_cmd_prp(&c, gbuf, 0);
    nx_cmd_dw(&c, 10, 0x28);
    nx_cmd_dw(&c, 11, 1 | 1 << 16);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x02);
    got[0] = 0x01;
    got[1] = 0x80;
    nx_memwrite(t->d, gbuf, got, sizeof(got));
    nx_cmd_dw(&c, 11, 1);
    g_assert_cmphex(nx_exec(t->d, 0, &c, NULL), ==, 0x02);
    t_stop(t);
}

/*
 * Random commands on the admin and an I/O queue: whatever they ask for,
 * QEMU must not crash, and a controller reset must bring the device back.
 */
static void test_random_commands(void)
{
    T *t = t_ready("", 32);
    uint64_t buf = nx_alloc(t->d, 8 * 4096, 4096);
    static const uint8_t admin_ops[] = {
        0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c, 0x86,
        0x10, 0x11, 0x80, 0xff,
    };
    static const uint8_t io_ops[] = { 0x00, 0x01, 0x02, 0x08, 0x09, 0x05,
                                      0x04, 0x7f };
    GRand *rnd = g_rand_new_with_seed(g_getenv("NVMEX_SEED") ?
                                      atoi(g_getenv("NVMEX_SEED")) : 1234);
    NxCqe e;

    for (int i = 0; i < 600; i++) {
        bool admin = g_rand_boolean(rnd);
        uint16_t q = admin ? 0 : 1;
        NxCmd c;
        uint64_t ptr;

        if (!t->d->sq[q].live) {
            continue;
        }
        nx_cmd(&c, admin ? admin_ops[g_rand_int_range(rnd, 0,
                                       G_N_ELEMENTS(admin_ops))]
                         : io_ops[g_rand_int_range(rnd, 0,
                                    G_N_ELEMENTS(io_ops))],
               g_rand_int_range(rnd, 0, 4) == 0 ? g_rand_int(rnd)
                                                 : g_rand_int_range(rnd, 0, 3));
        /* Mostly sane pointers, sometimes anything */
        ptr = g_rand_int_range(rnd, 0, 4) ? buf + g_rand_int_range(rnd, 0,
                                                    4 * 4096)
                                          : (uint64_t)g_rand_int(rnd) << 12;
        nx_cmd_prp(&c, ptr, g_rand_boolean(rnd) ? buf + 4096 * 5 : ptr);
        if (!admin && g_rand_int_range(rnd, 0, 4) == 0) {
            nx_cmd_sgl(&c, ptr, g_rand_int_range(rnd, 0, 65536),
                       g_rand_int_range(rnd, 0, 16));
        }
        for (int dw = 10; dw < 16; dw++) {
            uint32_t v = g_rand_int(rnd);

            /* Small values reach deeper than random ones */
            nx_cmd_dw(&c, dw, g_rand_boolean(rnd) ? v & 0xff : v);
        }
        if (c.b[0] == 0x00 || c.b[0] == 0x04) {
            /* Deleting queue 0/1 would end the test early: spare them */
            if (admin && (ldl_le_p(c.b + 40) & 0xffff) <= 1) {
                continue;
            }
        }
        nx_queue(t->d, q, &c);
        nx_ring(t->d, q);
        /* Reap what comes; AERs and slow commands may not */
        while (nx_reap(t->d, q, &e, 2000)) {
        }
        if (nx_rd32(t->d, NX_CSTS) & 2) {
            nx_disable(t->d);
            g_assert_true(nx_enable(t->d, 32));
            g_assert_cmpint(nx_set_features(t->d, 0x07, 0x00030003, NULL),
                            ==, 0);
            g_assert_cmpint(nx_create_ioq(t->d, 1, 32), ==, 0);
        }
    }
    g_rand_free(rnd);
    assert_alive(t);
    nx_disable(t->d);
    g_assert_true(nx_enable(t->d, 8));
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, NULL), ==, 0);
    t_stop(t);
}

/* ------------------------------------------------------------------ */
/* Guest DMA aimed at the controller's own registers                   */

/* Wait up to 5 s for CSTS.CFS */
static bool wait_fatal(T *t)
{
    for (int i = 0; i < 5000; i++) {
        if (nx_rd32(t->d, NX_CSTS) & 2) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

/*
 * An I/O CQ on the controller's own BAR0: the second CQE lands on CC
 * (0x14) and, posted from the block layer's completion callback, would
 * reset the controller from inside it; the reset's drain then waits for
 * that very callback and QEMU hangs (this test times out).  Completions
 * are posted from a re-entrancy-guarded bottom half: the DMA is refused,
 * the controller reports CFS, and a reset recovers it.
 */
static void test_cq_on_bar0(void)
{
    T *t = t_start("");
    NxDev *d = t->d;
    uint64_t buf = nx_alloc(d, 4096, 4096);
    NxCmd c;

    g_assert_true(nx_enable(d, 32));
    g_assert_cmpint(nx_set_features(d, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmphex(d->bar0.addr & 0xfff, ==, 0);
    nx_cmd(&c, 0x05, 0);
    nx_cmd_prp(&c, d->bar0.addr, 0);
    nx_cmd_dw(&c, 10, 1 | 15u << 16);
    nx_cmd_dw(&c, 11, 1);                   /* contiguous, no interrupt */
    g_assert_cmpint(nx_exec(d, 0, &c, NULL), ==, 0);
    d->sq[1] = (NxQueue) { .base = nx_alloc(d, 16 * 64, 4096), .size = 16,
                           .live = true };
    nx_cmd(&c, 0x01, 0);
    nx_cmd_prp(&c, d->sq[1].base, 0);
    nx_cmd_dw(&c, 10, 1 | 15u << 16);
    nx_cmd_dw(&c, 11, 1 | 1u << 16);
    g_assert_cmpint(nx_exec(d, 0, &c, NULL), ==, 0);

    for (int i = 0; i < 2; i++) {
        nx_cmd(&c, 0x02, 1);
        nx_cmd_prp(&c, buf, 0);
        nx_queue(d, 1, &c);
    }
    nx_ring(d, 1);
    g_assert_true(wait_fatal(t));
    assert_alive(t);
    g_assert_true(logged(t, "completion queue write failed"));
    g_assert_cmphex(nx_rd32(d, NX_CC) & 1, ==, 1);
    d->sq[1].live = false;
    nx_disable(d);
    g_assert_true(nx_enable(d, 8));
    g_assert_cmpint(nx_identify(d, 1, 0, 0, NULL), ==, 0);
    t_stop(t);
}

/*
 * Read data aimed at BAR0: the DMA helpers would bounce it and write the
 * registers (zeroes onto CC) from the block layer's callback, with the
 * same hang.  Data must be guest RAM: Data Transfer Error instead.
 */
static void test_data_on_bar0(void)
{
    T *t = t_ready("", 16);
    uint64_t buf = nx_alloc(t->d, 4096, 4096);

    g_assert_cmphex(rw(t->d, 0x02, 1, 0, 1, t->d->bar0.addr, 0), ==, 0x04);
    g_assert_cmphex(rw(t->d, 0x01, 1, 0, 1, t->d->bar0.addr, 0), ==, 0x04);
    g_assert_true(logged(t, "is not guest memory"));
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 3, ==, 1);
    g_assert_cmpint(rw(t->d, 0x02, 1, 0, 1, buf, 0), ==, 0);
    t_stop(t);
}

/* ------------------------------------------------------------------ */
/* Migration                                                           */

static QTestState *start_dst(T *t, const char *devextra, const char *uri)
{
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 256 -nodefaults -d guest_errors -D %s "
        "-drive if=none,id=d0,file=%s,format=raw,discard=unmap "
        "-device nvme-export,id=nx0,drive=d0%s -incoming %s",
        t->log, t->img, devextra, uri);

    return qtest_init(args);
}

/*
 * Migrate @src to @uri; the status it ends in, or has after 30 s: no
 * less than the 2000 polls 10 ms apart (and their QMP round trips) that
 * this wait was before.
 */
static const char *migrate(QTestState *src, const char *uri)
{
    static char status[32];
    g_autofree char *st = NULL;

    qtest_qmp_assert_success(src, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
    st = iolab_migrate_wait(src, NULL, 30 * G_USEC_PER_SEC, NULL);
    g_strlcpy(status, st, sizeof(status));
    return status;
}

/* Point the driver at the destination's copy of the same function */
static void switch_to(T *t, QTestState *dst)
{
    nx_switch_to(t->d, dst, &t->alloc);
    t->bus = t->d->bus;
    t->qts = t->d->qts;
}

static void test_migrate(void)
{
    T *t = t_ready("", 16);
    g_autofree char *sock = g_strdup_printf("%s.mig", t->log);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    uint64_t buf = nx_alloc(t->d, 4096, 4096);
    uint8_t data[4096], back[4096];
    QTestState *dst;
    uint16_t aer_cid;
    uint32_t dw0;
    NxCqe e;

    fill(data, sizeof(data), 5);
    nx_memwrite(t->d, buf, data, sizeof(data));
    g_assert_cmpint(rw(t->d, 0x01, 1, 5, 1, buf, 0), ==, 0);
    g_assert_cmpint(nx_set_features(t->d, 0x01, 0x03020107, NULL), ==, 0);
    aer_cid = submit_aer(t->d);
    /*
     * Queue pair 2 with a 2-entry CQ (one usable): of four reads, three
     * complete into the controller's waiting list and migrate from there.
     */
    g_assert_cmpint(nx_create_ioq_sizes(t->d, 2, 8, 2), ==, 0);
    for (int i = 0; i < 4; i++) {
        NxCmd c;

        nx_cmd(&c, 0x02, 1);
        nx_cmd_prp(&c, buf, 0);
        nx_queue(t->d, 2, &c);
    }
    nx_ring(t->d, 2);
    g_usleep(200 * 1000);

    /*
     * A destination with another serial number must refuse the state:
     * it exits with an error (the source only learns that it sent all),
     * and the source can go on.
     */
    dst = start_dst(t, ",sn=OTHER", uri);
    qtest_set_expected_status(dst, 1);
    {
        /* 'failed' when the source sees the socket close first */
        const char *st = migrate(t->qts, uri);

        g_assert_true(!strcmp(st, "completed") || !strcmp(st, "failed"));
    }
    qtest_wait_qemu(dst);
    qtest_quit(dst);
    qtest_qmp_assert_success(t->qts, "{ 'execute': 'cont' }");
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, NULL), ==, 0);

    /* The same device: queues, features and the AER carry over */
    dst = start_dst(t, "", uri);
    g_assert_cmpstr(migrate(t->qts, uri), ==, "completed");
    switch_to(t, dst);
    unlink(sock);
    g_assert_cmphex(nx_rd32(t->d, NX_CSTS) & 3, ==, 1);
    g_assert_cmpint(nx_get_features(t->d, 0x01, 0, &dw0), ==, 0);
    g_assert_cmphex(dw0, ==, 0x03020107);
    qtest_memset(t->qts, buf, 0, 4096);
    g_assert_cmpint(rw(t->d, 0x02, 1, 5, 1, buf, 0), ==, 0);
    nx_memread(t->d, buf, back, sizeof(back));
    g_assert_cmpmem(back, sizeof(back), data, sizeof(data));
    /* Many more commands: the queues wrap with the migrated phase tags */
    for (int i = 0; i < 40; i++) {
        g_assert_cmpint(rw(t->d, 0x02, 1, i, 1, buf, 0), ==, 0);
    }
    for (int i = 0; i < 4; i++) {
        g_assert_true(nx_reap(t->d, 2, &e, NX_TIMEOUT_US));
        g_assert_cmpint(e.status, ==, 0);
        g_assert_cmpint(e.sqid, ==, 2);
    }
    nx_doorbell(t->d, 9, false, 1);
    g_assert_true(nx_reap(t->d, 0, &e, NX_TIMEOUT_US));
    g_assert_cmpint(e.cid, ==, aer_cid);
    g_assert_cmphex(e.dw0, ==, 0x010000);
    t_stop(t);
}

/*
 * A crafted stream must be refused, naming the field, before the guest
 * can run commands on top of it (heap overflows or a division by zero
 * otherwise).  The test saves a real stream to a file, patches one field
 * at a time and loads each copy into a fresh destination.
 *
 * The offsets follow vmstate_nvmex_state field by field (big-endian on the
 * wire, no padding); the state is found by its ASQ and ACQ values and
 * every patched field is first checked to hold the value the source had,
 * so a change of layout fails here instead of patching the wrong bytes.
 */
#define ST_NQ           65      /* NVMEX_NQUEUES: 64 I/O queues + admin */
#define ST_SQ(i)        (40 + (i) * 28)
#define ST_CQ(i)        (ST_SQ(ST_NQ) + (i) * 27)
#define ST_FEAT         ST_CQ(ST_NQ)
#define ST_SMART        (ST_FEAT + 34 + 4 * ST_NQ)
#define ST_ERRLOG       (ST_SMART + 73)
#define ST_AER_CID      (ST_ERRLOG + 4 * 28 + 8)
#define ST_AER_COUNT    (ST_AER_CID + 8)
#define ST_AEN_COUNT    (ST_AER_COUNT + 1 + 32)
#define ST_CHANGED      (ST_AEN_COUNT + 2)
#define ST_RATE_LIMIT   (ST_CHANGED + 2 + 256)
#define ST_NPARKED      (ST_RATE_LIMIT + 27 + 8)

typedef struct StreamPatchField {
    size_t off;                 /* from the state's first byte */
    int width;                  /* 0: no such field (an unused slot) */
    uint64_t was, now;
} StreamPatchField;

typedef struct StreamPatch {
    const char *field;          /* what the refusal must name */
    /* One field, or two that are each in range but not together */
    StreamPatchField set[2];
} StreamPatch;

static const StreamPatch stream_patches[] = {
    { "sq[1].cqid", { { ST_SQ(1) + 20, 2, 1, 70 } } },
    { "sq[1].cqid", { { ST_SQ(1) + 20, 2, 1, 3 } } },
    { "sq[1].size", { { ST_SQ(1) + 8, 4, 16, 0 } } },
    { "cq[1].size", { { ST_CQ(1) + 8, 4, 16, 0 } } },
    { "cq[1].vector", { { ST_CQ(1) + 20, 2, 1, 66 } } },
    { "cq[1].nsq", { { ST_CQ(1) + 25, 2, 1, 0 } } },
    { "feat.nsqa", { { ST_FEAT + 30, 2, 4, 65 } } },
    { "feat.ncqa", { { ST_FEAT + 32, 2, 4, 1000 } } },
    { "aer_count", { { ST_AER_COUNT, 1, 1, 200 } } },
    { "aen_count", { { ST_AEN_COUNT, 1, 0, 9 } } },
    { "changed_ns_count", { { ST_CHANGED, 2, 0, 1000 } } },
    { "rate_limit", { { ST_RATE_LIMIT + 2, 1, 0, 6 } } },
    { "nparked", { { ST_NPARKED, 4, 0, 0x7fffffff } } },
    { "nparked", { { ST_NPARKED, 4, 0, 0xffffffff } } },
    /*
     * The admin SQ live on a CQ 0 that is not: CQ 0's size escaped its
     * check, and the first admin completion divided by it (SIGFPE).
     */
    { "sq[0].cqid", { { ST_CQ(0) + 24, 1, 1, 0 },
                      { ST_CQ(0) + 8, 4, 32, 0 } } },
};

static uint64_t be_get(const uint8_t *p, int width)
{
    uint64_t v = 0;

    for (int i = 0; i < width; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void be_put(uint8_t *p, int width, uint64_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = v;
        v >>= 8;
    }
}

/*
 * A stream that loaded must leave a device the guest can use: submit the
 * zeroed admin SQ slot past the source's last command (Delete I/O SQ 0,
 * refused) and wait for its completion.  True if it completed; a QEMU
 * that dies on it fails the test here, libqtest naming the signal.
 */
static bool poke_admin(T *t, QTestState *dst)
{
    const NxQueue *sq = &t->d->sq[0], *cq = &t->d->cq[0];
    /* BAR0 and the queues stay where the source put them */
    uint64_t dw3 = cq->base + cq->head * 16 + 12;
    gint64 end = g_get_monotonic_time() + NX_TIMEOUT_US;

    g_assert_false(t->d->bar0.is_io);
    qtest_writel(dst, t->d->bar0.addr + NX_DB, (sq->tail + 1) % sq->size);
    while (g_get_monotonic_time() < end) {
        if ((qtest_readl(dst, dw3) >> 16 & 1) == cq->phase) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

/*
 * Load @file into a fresh destination; its migration status.  If it
 * loaded, @answered tells whether the device then answered the guest.
 */
static char *load_stream(T *t, const char *file, const char *errlog,
                         bool *answered)
{
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 256 -nodefaults "
        "-drive if=none,id=d0,file=%s,format=raw,discard=unmap "
        "-device nvme-export,id=nx0,drive=d0 -incoming defer 2>%s",
        t->img, errlog);
    QTestState *dst = qtest_init(args);
    char *status;

    /* 15 s: no less than the 2000 polls 5 ms apart this wait was before */
    status = iolab_migrate_load_file(dst, file, 15 * G_USEC_PER_SEC, NULL);
    *answered = !strcmp(status, "completed") && poke_admin(t, dst);
    qtest_quit(dst);
    if (strcmp(status, "completed") && strcmp(status, "failed")) {
        g_free(status);
        return g_strdup("timeout");
    }
    return status;
}

static void test_migrate_bad_stream(void)
{
    T *t = t_ready("", 16);
    g_autofree char *file = g_strdup_printf("%s.stream", t->log);
    g_autofree char *bad = g_strdup_printf("%s.bad", t->log);
    g_autofree char *errlog = g_strdup_printf("%s.err", t->log);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree uint8_t *stream = NULL;
    uint64_t cap = nx_rd64(t->d, NX_CAP);
    uint8_t key[16];
    gsize len;
    size_t base = 0;
    int found = 0;

    submit_aer(t->d);                               /* aer_count 1 */
    /* Fetched in order: once Identify completes, the AER is held */
    g_assert_cmpint(nx_identify(t->d, 1, 0, 0, NULL), ==, 0);
    qtest_qmp_assert_success(t->qts, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
    /* What it ended in shows in the stream file, checked below */
    g_free(iolab_migrate_wait(t->qts, NULL, 15 * G_USEC_PER_SEC, NULL));
    g_assert_true(g_file_get_contents(file, (char **)&stream, &len, NULL));

    be_put(key, 8, t->d->sq[0].base);               /* ASQ, then ACQ */
    be_put(key + 8, 8, t->d->cq[0].base);
    for (size_t i = 24; i + 16 <= len; i++) {
        if (!memcmp(stream + i, key, 16)) {
            base = i - 24;
            found++;
        }
    }
    g_assert_cmpint(found, ==, 1);
    g_assert_cmphex(be_get(stream + base, 8), ==, cap);
    g_assert_cmpuint(base + ST_NPARKED + 4, <=, len);

    /* The untouched stream loads: the refusals below are the patches' */
    g_assert_true(g_file_set_contents(bad, (char *)stream, len, NULL));
    {
        bool answered;
        g_autofree char *status = load_stream(t, bad, errlog, &answered);

        g_assert_cmpstr(status, ==, "completed");
        g_assert_true(answered);
    }

    for (int i = 0; i < ARRAY_SIZE(stream_patches); i++) {
        const StreamPatch *p = &stream_patches[i];
        g_autofree uint8_t *copy = g_memdup2(stream, len);
        g_autofree char *status = NULL;
        g_autofree char *err = NULL;
        bool answered;

        g_test_message("patch for %s", p->field);
        for (int j = 0; j < ARRAY_SIZE(p->set) && p->set[j].width; j++) {
            const StreamPatchField *f = &p->set[j];

            g_assert_cmphex(be_get(copy + base + f->off, f->width), ==,
                            f->was);
            be_put(copy + base + f->off, f->width, f->now);
        }
        g_assert_true(g_file_set_contents(bad, (char *)copy, len, NULL));
        status = load_stream(t, bad, errlog, &answered);
        g_assert_cmpstr(status, ==, "failed");
        g_assert_true(g_file_get_contents(errlog, &err, NULL, NULL));
        g_assert_nonnull(strstr(err, p->field));
    }

    /*
     * The PCI config the stream carries, found by its first 64 bytes as
     * the guest reads them: an Interrupt Pin other than INTA is refused,
     * where it loaded before and the next INTx aborted QEMU in
     * pci_set_irq() (the mutator's nvme-export-mgmt #79337, seed 1).
     */
    {
        g_autofree uint8_t *copy = g_memdup2(stream, len);
        g_autofree char *status = NULL;
        g_autofree char *err = NULL;
        size_t at = iolab_stream_find_pci_config(t->d->pdev, stream, len);
        bool answered;

        g_assert_cmphex(copy[at + PCI_INTERRUPT_PIN], ==, 1);
        copy[at + PCI_INTERRUPT_PIN] = 0x41;
        g_assert_true(g_file_set_contents(bad, (char *)copy, len, NULL));
        status = load_stream(t, bad, errlog, &answered);
        g_assert_cmpstr(status, ==, "failed");
        g_assert_true(g_file_get_contents(errlog, &err, NULL, NULL));
        g_assert_nonnull(strstr(err, "PCI_INTERRUPT_PIN"));
    }
    unlink(file);
    unlink(bad);
    unlink(errlog);
    t_stop(t);
}

/* ------------------------------------------------------------------ */
/* Same template, two backings                                         */

static const char template_json[] =
    "{ \"id\": \"golden-1\", \"vid\": 4660, \"did\": 22136,\n"
    "  \"ssvid\": 4660, \"sn\": \"GOLD0001\", \"mn\": \"Golden Model\",\n"
    "  \"fr\": \"G1\", \"subnqn\": \"nqn.2026-01.org.iolab:golden\",\n"
    "  \"oui\": 1193046, \"mdts\": 6, \"max-ioqs\": 8, \"mqes\": 512,\n"
    "  \"sgl\": true, \"vwc\": false,\n"
    "  \"namespaces\": [ { \"nsid\": 1, \"size\": 33554432,\n"
    "      \"lba-formats\": [512, 4096], \"flbas\": 1,\n"
    "      \"nguid\": \"0123456789abcdef0123456789abcdef\",\n"
    "      \"eui64\": \"0011223344556677\" } ] }\n";

static void collect_identity(const char *drive, const char *tmpl,
                             GByteArray *out)
{
    g_autofree char *log = tmp_file("log", NULL);
    g_autofree char *args = g_strdup_printf(
        "-machine pc -nodefaults -D %s -blockdev %s "
        "-device nvme-export,drive=b0,template=%s", log, drive, tmpl);
    static const struct { uint8_t cns; uint32_t nsid; } ids[] = {
        { 1, 0 }, { 0, 1 }, { 2, 0 }, { 3, 1 }, { 5, 1 }, { 6, 0 },
        { 8, 1 }, { 0, 0xffffffff },
    };
    QTestState *qts = qtest_init(args);
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *d;
    uint8_t buf[4096];

    pc_alloc_init(&alloc, qts, 0);
    bus = qpci_new_pc(qts, &alloc);
    d = nx_find(qts, &alloc, bus, 4660, 22136);
    g_assert(d);
    g_assert_true(nx_enable(d, 16));
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        g_assert_cmpint(nx_identify(d, ids[i].cns, ids[i].nsid, 0, buf), ==,
                        0);
        g_byte_array_append(out, buf, sizeof(buf));
    }
    g_assert_cmpint(nx_get_log(d, 0x03, 0, buf, 512), ==, 0);
    g_byte_array_append(out, buf, 512);
    g_assert_cmpint(nx_get_log(d, 0x05, 0, buf, 4096), ==, 0);
    g_byte_array_append(out, buf, 4096);
    {
        uint64_t cap = nx_rd64(d, NX_CAP);

        g_byte_array_append(out, (uint8_t *)&cap, sizeof(cap));
    }
    nx_free(d);
    qpci_free_pc(bus);
    alloc_destroy(&alloc);
    qtest_quit(qts);
    unlink(log);
}

static void run_qemu_img(const char *const *argv)
{
    g_autoptr(GError) err = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                               NULL, NULL, &status, &err));
    g_assert_no_error(err);
    g_assert_cmpint(status, ==, 0);
}

static void test_two_backings(void)
{
    const char *qemu_img = g_getenv("QTEST_QEMU_IMG");
    g_autofree char *raw = NULL, *qcow = NULL, *tmpl = NULL;
    g_autofree char *draw = NULL, *dqcow = NULL;
    g_autoptr(GByteArray) a = g_byte_array_new();
    g_autoptr(GByteArray) b = g_byte_array_new();
    int fd;

    if (!qemu_img) {
        g_test_skip("QTEST_QEMU_IMG not set");
        return;
    }
    raw = tmp_file("raw", &fd);
    g_assert_cmpint(ftruncate(fd, IMG_SIZE), ==, 0);
    close(fd);
    qcow = tmp_file("qcow2", NULL);
    {
        const char *argv[] = { qemu_img, "create", "-q", "-f", "qcow2",
                               qcow, "128M", NULL };

        run_qemu_img(argv);
    }
    tmpl = tmp_file("tmpl", NULL);
    g_assert_true(g_file_set_contents(tmpl, template_json, -1, NULL));

    draw = g_strdup_printf("driver=raw,node-name=b0,file.driver=file,"
                           "file.filename=%s", raw);
    dqcow = g_strdup_printf("driver=qcow2,node-name=b0,file.driver=file,"
                            "file.filename=%s", qcow);
    collect_identity(draw, tmpl, a);
    collect_identity(dqcow, tmpl, b);
    g_assert_cmpint(a->len, ==, b->len);
    g_assert_cmpmem(a->data, a->len, b->data, b->len);
    /* And it is the template's: MN and NSZE (32 MiB of 4 KiB blocks) */
    g_assert_cmpmem(a->data + 24, 12, "Golden Model", 12);
    g_assert_cmpint(ldq_le_p(a->data + 4096), ==, 8192);
    unlink(raw);
    unlink(qcow);
    unlink(tmpl);
}

/* QEMU must refuse these templates, naming the field */
static void expect_refused(const char *devargs, const char *tmpl_text,
                           const char *needle)
{
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    g_autofree char *img = NULL, *tmpl = NULL, *drive = NULL, *dev = NULL;
    g_autofree char *err_out = NULL;
    g_autoptr(GError) err = NULL;
    int fd, status;

    img = tmp_file("img", &fd);
    g_assert_cmpint(ftruncate(fd, IMG_SIZE), ==, 0);
    close(fd);
    tmpl = tmp_file("tmpl", NULL);
    g_assert_true(g_file_set_contents(tmpl, tmpl_text ? tmpl_text : "{}",
                                      -1, NULL));
    drive = g_strdup_printf("if=none,id=d0,file=%s,format=raw", img);
    dev = g_strdup_printf("nvme-export,drive=d0,template=%s%s", tmpl,
                          devargs);
    {
        const char *argv[] = { qemu, "-machine", "pc", "-accel", "qtest",
                               "-nodefaults", "-display", "none",
                               "-drive", drive, "-device", dev, NULL };

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                                   G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                   NULL, &err_out, &status, &err));
    }
    g_assert_no_error(err);
    g_assert_cmpint(status, !=, 0);
    if (!strstr(err_out, needle)) {
        g_printerr("stderr: %s\n", err_out);
    }
    g_assert_nonnull(strstr(err_out, needle));
    unlink(img);
    unlink(tmpl);
}

static void test_bad_templates(void)
{
    expect_refused("", "{ \"namespaces\": [ { \"nsid\": 1, "
                   "\"size\": 1073741824 } ] }", "size:");
    expect_refused("", "{ \"colour\": \"blue\" }", "colour");
    expect_refused("", "{ \"oncs\": 1 }", "oncs");
    expect_refused("", "{ \"namespaces\": [ { \"nsid\": 1, "
                   "\"lba-formats\": [520] } ] }", "lba-formats");
    expect_refused("", "{ \"namespaces\": [ { \"nsid\": 1, "
                   "\"size\": 1000 } ] }", "size:");
    expect_refused(",sn=", NULL, "sn:");
    expect_refused(",mdts=0", NULL, "mdts");
    expect_refused("", "{ \"sn\": ", "template");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/nvme-export/registers", test_registers);
    qtest_add_func("/nvme-export/identify-template", test_identify_template);
    qtest_add_func("/nvme-export/features", test_features);
    qtest_add_func("/nvme-export/rw-prp", test_rw_prp);
    qtest_add_func("/nvme-export/rw-sgl", test_rw_sgl);
    qtest_add_func("/nvme-export/dealloc-lba-status",
                   test_dealloc_lba_status);
    qtest_add_func("/nvme-export/aer", test_aer);
    qtest_add_func("/nvme-export/bad-input", test_bad_input);
    qtest_add_func("/nvme-export/cq-full", test_cq_full);
    qtest_add_func("/nvme-export/rate-limit", test_rate_limit);
    qtest_add_func("/nvme-export/random-commands", test_random_commands);
    qtest_add_func("/nvme-export/migrate", test_migrate);
    qtest_add_func("/nvme-export/migrate-bad-stream",
                   test_migrate_bad_stream);
    qtest_add_func("/nvme-export/cq-on-bar0", test_cq_on_bar0);
    qtest_add_func("/nvme-export/data-on-bar0", test_data_on_bar0);
    qtest_add_func("/nvme-export/two-backings", test_two_backings);
    qtest_add_func("/nvme-export/bad-templates", test_bad_templates);
    return g_test_run();
}
