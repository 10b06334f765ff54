/*
 * qtest for nvme-export-mgmt, the TP4159 migration-management controller:
 * Identify (OACS.HMLMS, the TP4159 fields, CNS 20h), Controller Data
 * Queues with their phase tags, wrap and head pointer, logging of
 * user-data changes (first, stopped, suspended and queue-full entries),
 * suspend / resume / get / set controller state, every refusal, a whole
 * migration from controller A to controller B inside one QEMU, and the
 * state of one QEMU's controller applied in another QEMU.
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
#include "nvme-export-driver.h"
#include "iolab-migrate-wait.h"

#define IMG_SIZE    (16 * 1024 * 1024)
#define BLK         4096            /* the default template's LBA size */

/* Functions and CNTLIDs of the machine every test starts */
#define SLOT_MGMT   4
#define SLOT_A      5
#define SLOT_B      6
#define SLOT_OTHER  7               /* an nvme-export nobody manages */
#define CNTLID_MGMT 1
#define CNTLID_A    2
#define CNTLID_B    3
#define CNTLID_OTHER 4

/* Opcodes, selects and statuses (SCT << 8 | SC) */
#define OPC_TRACK_SEND  0x3d
#define OPC_MIG_SEND    0x41
#define OPC_MIG_RECV    0x42
#define OPC_CDQ         0x45
#define FID_CDQ         0x21
#define ST_INVALID_OPCODE   0x001
#define ST_INVALID_FIELD    0x002
#define ST_DATA_XFER        0x004
#define ST_CMD_SEQ          0x00c
#define ST_PRP_OFFSET       0x013
#define ST_INVALID_CTRL_ID  0x11f
#define ST_INVALID_CDQ      0x137
#define ST_NO_RESOURCES     0x138
#define ST_SUSPENDED        0x139
#define ST_NOT_SUSPENDED    0x13a
#define ST_CDQ_FULL         0x13b

/* Entry Sequence Attribute and LBA change information of a CDQ entry */
#define ESA_NONE        0
#define ESA_FIRST       1
#define ESA_STOPPED     2
#define ESA_SUSPENDED   3
#define ESA_FULL        7
#define LBACIR_CHANGE   0
#define LBACIR_ALL      1
#define LBACIR_NONE     2

typedef struct T {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *m, *a, *b, *other;
    char *img_a, *img_b, *log;
    int fd_a, fd_b;
} T;

typedef struct Cdq {
    uint16_t id;
    uint64_t base;
    uint32_t n;                     /* entries */
    uint32_t head;
    uint8_t phase;                  /* the phase of entries not yet read */
} Cdq;

typedef struct Entry {
    uint32_t nsid, nlb;
    uint64_t slba;
    uint8_t phase, esa, lbacir;
} Entry;

static char *tmp_file(const char *tag, int *fd_out)
{
    g_autofree char *tmpl = g_strdup_printf("nvmex-mgmt-%s-XXXXXX", tag);
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

/*
 * The command-line options of the four controllers, each in its slot: m0,
 * A and B on the images @img_a and @img_b, and o, which nobody manages.
 * m0 is the management controller, or, if @img_m is set, a plain
 * nvme-export on that image.  A and B are managed by m0 if @a_managed,
 * @b_managed; B's CNTLID is @cntlid_b.
 */
static char *controllers(const char *img_a, const char *img_b,
                         const char *img_m, bool a_managed, bool b_managed,
                         int cntlid_b)
{
    g_autofree char *m0 = img_m
        ? g_strdup_printf("-drive if=none,id=dm,file=%s,format=raw "
                          "-device nvme-export,id=m0,cntlid=%d,drive=dm,"
                          "addr=%d", img_m, CNTLID_MGMT, SLOT_MGMT)
        : g_strdup_printf("-device nvme-export-mgmt,id=m0,cntlid=%d,addr=%d",
                          CNTLID_MGMT, SLOT_MGMT);

    return g_strdup_printf(
        "-drive if=none,id=da,file=%s,format=raw "
        "-drive if=none,id=db,file=%s,format=raw "
        "%s "
        "-device nvme-export,id=a,%scntlid=%d,drive=da,addr=%d "
        "-device nvme-export,id=b,%scntlid=%d,drive=db,addr=%d "
        "-device nvme-export,id=o,cntlid=%d,addr=%d",
        img_a, img_b, m0, a_managed ? "mgmt=m0," : "", CNTLID_A, SLOT_A,
        b_managed ? "mgmt=m0," : "", cntlid_b, SLOT_B,
        CNTLID_OTHER, SLOT_OTHER);
}

/*
 * Start QEMU: m0, A and B (managed by m0) and one unmanaged controller;
 * @extra goes at the end of the command line (-incoming ...)
 */
static T *t_start_full(const char *img_a, const char *img_b,
                       int cntlid_b, const char *extra)
{
    T *t = g_new0(T, 1);
    g_autofree char *devices = NULL;
    g_autofree char *args = NULL;

    if (img_a) {
        t->img_a = g_strdup(img_a);
        t->fd_a = open(img_a, O_RDWR);
    } else {
        t->img_a = tmp_file("a", &t->fd_a);
        g_assert_cmpint(ftruncate(t->fd_a, IMG_SIZE), ==, 0);
    }
    if (img_b) {
        t->img_b = g_strdup(img_b);
        t->fd_b = open(img_b, O_RDWR);
    } else {
        t->img_b = tmp_file("b", &t->fd_b);
        g_assert_cmpint(ftruncate(t->fd_b, IMG_SIZE), ==, 0);
    }
    g_assert_cmpint(t->fd_a, >=, 0);
    g_assert_cmpint(t->fd_b, >=, 0);
    t->log = tmp_file("log", NULL);
    devices = controllers(t->img_a, t->img_b, NULL, true, true, cntlid_b);
    args = g_strdup_printf(
        "-machine pc -m 256 -nodefaults -d guest_errors -D %s %s %s",
        t->log, devices, extra ? extra : "");
    t->qts = qtest_init(args);
    if (extra) {
        return t;               /* a migration destination: not yet */
    }
    pc_alloc_init(&t->alloc, t->qts, 0);
    t->bus = qpci_new_pc(t->qts, &t->alloc);
    t->m = nx_find_at(t->qts, &t->alloc, t->bus, QPCI_DEVFN(SLOT_MGMT, 0));
    t->a = nx_find_at(t->qts, &t->alloc, t->bus, QPCI_DEVFN(SLOT_A, 0));
    t->b = nx_find_at(t->qts, &t->alloc, t->bus, QPCI_DEVFN(SLOT_B, 0));
    t->other = nx_find_at(t->qts, &t->alloc, t->bus,
                          QPCI_DEVFN(SLOT_OTHER, 0));
    g_assert(t->m && t->a && t->b && t->other);
    g_assert_true(nx_enable(t->m, 32));
    return t;
}

static T *t_start_images(const char *img_a, const char *img_b)
{
    return t_start_full(img_a, img_b, CNTLID_B, NULL);
}

static T *t_start(void)
{
    return t_start_images(NULL, NULL);
}

static void t_stop(T *t)
{
    nx_free(t->m);
    nx_free(t->a);
    nx_free(t->b);
    nx_free(t->other);
    qpci_free_pc(t->bus);
    alloc_destroy(&t->alloc);
    qtest_quit(t->qts);
    close(t->fd_a);
    close(t->fd_b);
    unlink(t->img_a);
    unlink(t->img_b);
    unlink(t->log);
    g_free(t->img_a);
    g_free(t->img_b);
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

/* A managed controller enabled with I/O queue pair 1 of @qsize entries */
static void child_ready(NxDev *d, uint16_t qsize)
{
    g_assert_true(nx_enable(d, 16));
    g_assert_cmpint(nx_set_features(d, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmpint(nx_create_ioq(d, 1, qsize), ==, 0);
}

static void rw_cmd(NxCmd *c, uint8_t opc, uint64_t slba, uint16_t nlb,
                   uint64_t buf)
{
    nx_cmd(c, opc, 1);
    nx_cmd_prp(c, buf, nlb > 1 ? buf + BLK : 0);
    nx_cmd_dw(c, 10, slba);
    nx_cmd_dw(c, 11, slba >> 32);
    nx_cmd_dw(c, 12, nlb - 1);
}

/* One- or two-block write or read on I/O queue 1 */
static int rw(NxDev *d, uint8_t opc, uint64_t slba, uint16_t nlb,
              uint64_t buf)
{
    NxCmd c;

    g_assert(nlb <= 2);
    rw_cmd(&c, opc, slba, nlb, buf);
    return nx_exec(d, 1, &c, NULL);
}

/* A management command: the status; the CQE in @e when given */
static int mcmd(T *t, uint8_t opc, uint32_t dw10, uint32_t dw11,
                uint32_t dw12, uint32_t dw13, uint32_t dw15, uint64_t prp1,
                NxCqe *e)
{
    NxCmd c;

    nx_cmd(&c, opc, 0);
    nx_cmd_prp(&c, prp1, 0);
    nx_cmd_dw(&c, 10, dw10);
    nx_cmd_dw(&c, 11, dw11);
    nx_cmd_dw(&c, 12, dw12);
    nx_cmd_dw(&c, 13, dw13);
    nx_cmd_dw(&c, 15, dw15);
    return nx_exec(t->m, 0, &c, e);
}

/* Create a User Data Migration Queue of @n entries for @cntlid */
static int cdq_create(T *t, Cdq *q, uint16_t cntlid, uint32_t n)
{
    NxCqe e;
    int st;

    memset(q, 0, sizeof(*q));
    q->n = n;
    q->base = nx_alloc(t->m, n * 32, 4096);
    qtest_memset(t->qts, q->base, 0, n * 32);
    q->phase = 1;
    st = mcmd(t, OPC_CDQ, 0, (uint32_t)cntlid << 16 | 1, n * 8, 0, 0,
              q->base, &e);
    q->id = e.dw0 & 0xffff;
    return st;
}

static int track(T *t, Cdq *q, bool start)
{
    return mcmd(t, OPC_TRACK_SEND, (start ? 1u : 0u) << 16, q->id, 0, 0, 0,
                0, NULL);
}

/* The next entry if the controller wrote one (phase tag), else false */
static bool cdq_next(T *t, Cdq *q, Entry *e)
{
    uint8_t raw[32];

    qtest_memread(t->qts, q->base + q->head * 32ull, raw, 32);
    if ((raw[31] & 1) != q->phase) {
        return false;
    }
    e->nsid = ldl_le_p(raw);
    e->nlb = ldl_le_p(raw + 4);
    e->slba = ldq_le_p(raw + 8);
    e->phase = raw[31] & 1;
    e->esa = (raw[31] >> 1) & 7;
    e->lbacir = raw[31] >> 6;
    if (++q->head == q->n) {
        q->head = 0;
        q->phase ^= 1;
    }
    return true;
}

static void expect_entry(T *t, Cdq *q, uint64_t slba, uint32_t nblocks,
                         uint8_t esa, uint8_t lbacir)
{
    Entry e;

    g_assert_true(cdq_next(t, q, &e));
    g_assert_cmpint(e.esa, ==, esa);
    g_assert_cmpint(e.lbacir, ==, lbacir);
    if (lbacir == LBACIR_CHANGE) {
        g_assert_cmpint(e.nsid, ==, 1);
        g_assert_cmpuint(e.slba, ==, slba);
        g_assert_cmpuint(e.nlb, ==, nblocks - 1);
    }
}

static void expect_no_entry(T *t, Cdq *q)
{
    Entry e;

    g_assert_false(cdq_next(t, q, &e));
}

static int cdq_set_head(T *t, Cdq *q)
{
    NxCmd c;

    nx_cmd(&c, 0x09, 0);
    nx_cmd_dw(&c, 10, FID_CDQ);
    nx_cmd_dw(&c, 11, q->id);
    nx_cmd_dw(&c, 12, q->head);
    return nx_exec(t->m, 0, &c, NULL);
}

static int suspend(T *t, uint16_t cntlid, bool dudmq)
{
    return mcmd(t, OPC_MIG_SEND, 0, (dudmq ? 1u << 31 : 0) | 1u << 16 |
                cntlid, 0, 0, 0, 0, NULL);
}

static int resume(T *t, uint16_t cntlid)
{
    return mcmd(t, OPC_MIG_SEND, 1, cntlid, 0, 0, 0, 0, NULL);
}

/* Get Controller State (format 1, our UUID when @vendor) into @buf */
static int get_state(T *t, uint16_t cntlid, bool vendor, uint8_t *buf,
                     uint32_t len, NxCqe *e)
{
    uint64_t mem = nx_alloc(t->m, len, 4096);
    int st;

    g_assert(len <= 4096);
    st = mcmd(t, OPC_MIG_RECV, 1u << 16, (vendor ? 1u : 0u) << 16 | cntlid,
              0, 0, len / 4 - 1, mem, e);
    qtest_memread(t->qts, mem, buf, len);
    return st;
}

/* Set Controller State, the whole @len bytes of @buf in one command */
static int set_state(T *t, uint16_t cntlid, bool vendor, const uint8_t *buf,
                     uint32_t len, NxCqe *e)
{
    uint64_t mem = nx_alloc(t->m, 4096, 4096);

    g_assert(len <= 4096);
    qtest_memwrite(t->qts, mem, buf, len);
    return mcmd(t, OPC_MIG_SEND, 3u << 16 | 2,
                (vendor ? 1u : 0u) << 24 | 1u << 16 | cntlid, 0, 0, len / 4,
                mem, e);
}

/* The state's whole size from its header */
static uint32_t state_len(const uint8_t *buf)
{
    return 48 + (ldq_le_p(buf + 16) + ldq_le_p(buf + 32)) * 4;
}

/* ------------------------------------------------------------------ */

static void test_identify(void)
{
    T *t = t_start();
    g_autofree uint8_t *id = g_malloc(4096);
    g_autofree uint8_t *log = g_malloc(4096);
    static const uint8_t uuid[16] = {
        0xb7, 0xf4, 0xea, 0x55, 0xec, 0xfc, 0x4d, 0x45,
        0xb7, 0x3f, 0xe2, 0x5e, 0xaa, 0x8b, 0xcc, 0x54,
    };

    g_assert_cmpint(nx_identify(t->m, 0x01, 0, 0, id), ==, 0);
    g_assert_cmpint(lduw_le_p(id + 78), ==, CNTLID_MGMT);
    g_assert_true(lduw_le_p(id + 256) & (1u << 11));    /* OACS.HMLMS */
    g_assert_cmpint(lduw_le_p(id + 570), ==, 0);        /* CMMRTD */
    g_assert_cmpint(id[576], ==, 0x02);                 /* TRATTR.TUDCS */
    g_assert_cmpint(lduw_le_p(id + 578), ==, 4);        /* MCUDMQ */
    g_assert_cmpint(lduw_le_p(id + 580), ==, 4);        /* MNSUDMQ */
    g_assert_cmpint(lduw_le_p(id + 582), ==, 1);        /* MCMR */
    g_assert_cmpint(lduw_le_p(id + 584), ==, 1);        /* NMCMR */
    g_assert_cmpint(lduw_le_p(id + 586), ==, 1);        /* MCDQPC */

    /* CNS 20h: one NVMe-defined version (0) and this project's UUID */
    g_assert_cmpint(nx_identify(t->m, 0x20, 0, 0, id), ==, 0);
    g_assert_cmpint(id[0], ==, 1);
    g_assert_cmpint(id[1], ==, 1);
    g_assert_cmpint(lduw_le_p(id + 2), ==, 0);
    g_assert_cmpmem(id + 4, 16, uuid, 16);

    /* The effects log lists the four commands on m0 only */
    g_assert_cmpint(nx_get_log(t->m, 0x05, 0, log, 4096), ==, 0);
    g_assert_cmphex(ldl_le_p(log + 4 * OPC_TRACK_SEND) & 1, ==, 1);
    g_assert_cmphex(ldl_le_p(log + 4 * OPC_MIG_SEND) & 1, ==, 1);
    g_assert_cmphex(ldl_le_p(log + 4 * OPC_MIG_RECV) & 1, ==, 1);
    g_assert_cmphex(ldl_le_p(log + 4 * OPC_CDQ) & 1, ==, 1);

    /* Feature 21h's supported capabilities (SEL 011b): changeable only */
    {
        NxCmd c;
        NxCqe e;

        nx_cmd(&c, 0x0a, 0);
        nx_cmd_dw(&c, 10, FID_CDQ | 3 << 8);
        g_assert_cmpint(nx_exec(t->m, 0, &c, &e), ==, 0);
        g_assert_cmphex(e.dw0, ==, 4);
    }

    /* A managed controller is a plain one */
    g_assert_true(nx_enable(t->a, 16));
    g_assert_cmpint(nx_identify(t->a, 0x01, 0, 0, id), ==, 0);
    g_assert_cmpint(lduw_le_p(id + 78), ==, CNTLID_A);
    g_assert_false(lduw_le_p(id + 256) & (1u << 11));
    g_assert_cmpint(id[576], ==, 0);
    g_assert_cmpint(nx_identify(t->a, 0x20, 0, 0, id), ==, ST_INVALID_FIELD);
    g_assert_cmpint(nx_get_log(t->a, 0x05, 0, log, 4096), ==, 0);
    g_assert_cmphex(ldl_le_p(log + 4 * OPC_MIG_SEND), ==, 0);
    {
        NxCmd c;

        nx_cmd(&c, OPC_MIG_SEND, 0);
        nx_cmd_dw(&c, 11, CNTLID_B);
        g_assert_cmpint(nx_exec(t->a, 0, &c, NULL), ==, ST_INVALID_OPCODE);
    }
    t_stop(t);
}

/*
 * A Controller Level Reset (NVMe Base 2.1, Host Managed Live Migration):
 * on m0 it deletes every User Data Migration Queue, so nothing more is
 * written into their memory; on a suspended A it removes the suspended
 * state, so A's driver, resetting A, gets its commands fetched again
 */
static void test_controller_reset(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    g_autofree uint8_t *id = g_malloc(4096);
    Cdq q;

    child_ready(t->a, 16);
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 16), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 3, 1, buf), ==, 0);
    expect_entry(t, &q, 3, 1, ESA_FIRST, LBACIR_CHANGE);

    /* m0 reset: A's writes are no longer logged into q's memory */
    nx_disable(t->m);
    g_assert_true(nx_enable(t->m, 16));
    g_assert_cmpint(rw(t->a, 0x01, 4, 1, buf), ==, 0);
    expect_no_entry(t, &q);
    g_assert_cmpint(track(t, &q, false), ==, ST_INVALID_CDQ);
    g_assert_cmpint(mcmd(t, OPC_CDQ, 1, q.id, 0, 0, 0, 0, NULL), ==,
                    ST_INVALID_CDQ);

    /* A suspended, then reset by its own driver: no longer suspended */
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    nx_disable(t->a);
    g_assert_cmpint(resume(t, CNTLID_B), ==, ST_NOT_SUSPENDED);
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    g_assert_cmpint(resume(t, CNTLID_A), ==, ST_NOT_SUSPENDED);
    g_assert_true(nx_enable(t->a, 16));
    g_assert_cmpint(nx_identify(t->a, 0x01, 0, 0, id), ==, 0);
    g_assert_cmpint(lduw_le_p(id + 78), ==, CNTLID_A);
    /* B, not reset, stays suspended */
    g_assert_cmpint(resume(t, CNTLID_B), ==, 0);
    t_stop(t);
}

/* Entries in order, with phase tags, across two wraps of the ring */
static void test_cdq_wrap_phase(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, 2 * BLK, 4096);
    uint8_t data[8];
    Cdq q;
    int lba = 0;

    child_ready(t->a, 16);
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 8), ==, 0);
    g_assert_cmpint(q.id, ==, 1);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    expect_no_entry(t, &q);

    /* 3 passes over an 8-entry ring, consuming as it goes */
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 4; i++, lba += 3) {
            g_assert_cmpint(rw(t->a, 0x01, lba, 1 + (i & 1), buf), ==, 0);
        }
        for (int i = 0, l = lba - 12; i < 4; i++, l += 3) {
            expect_entry(t, &q, l, 1 + (i & 1),
                         round == 0 && i == 0 ? ESA_FIRST : ESA_NONE,
                         LBACIR_CHANGE);
        }
        expect_no_entry(t, &q);
        g_assert_cmpint(cdq_set_head(t, &q), ==, 0);
    }
    /* 24 entries into 8 slots: the host's phase flipped three times */
    g_assert_cmpint(q.phase, ==, 0);
    g_assert_cmpint(q.head, ==, 0);

    /* Reads are not changes */
    g_assert_cmpint(rw(t->a, 0x02, 0, 1, buf), ==, 0);
    expect_no_entry(t, &q);

    /* Feature 21h reads back the head */
    {
        uint64_t mem = nx_alloc(t->m, 4096, 4096);
        NxCmd c;

        nx_cmd(&c, 0x0a, 0);
        nx_cmd_prp(&c, mem, 0);
        nx_cmd_dw(&c, 10, FID_CDQ);
        nx_cmd_dw(&c, 11, q.id);
        g_assert_cmpint(nx_exec(t->m, 0, &c, NULL), ==, 0);
        qtest_memread(t->qts, mem, data, 8);
        g_assert_cmpint(ldl_le_p(data), ==, q.head);
    }

    /* Stopping writes the last entry; later writes are not logged */
    g_assert_cmpint(track(t, &q, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_STOPPED, LBACIR_NONE);
    g_assert_cmpint(rw(t->a, 0x01, 5, 1, buf), ==, 0);
    expect_no_entry(t, &q);

    /* Logging starts again on the same queue: a new "first" */
    g_assert_cmpint(cdq_set_head(t, &q), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 77, 1, buf), ==, 0);
    expect_entry(t, &q, 77, 1, ESA_FIRST, LBACIR_CHANGE);
    t_stop(t);
}

/* A full queue ends logging with "last - queue full" and an event */
static void test_cdq_full(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    NxCqe aer;
    uint16_t aer_cid;
    NxCmd c;
    Cdq q;

    child_ready(t->a, 16);
    /* An asynchronous event request waits on m0 */
    nx_cmd(&c, 0x0c, 0);
    aer_cid = nx_queue(t->m, 0, &c);
    nx_ring(t->m, 0);

    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 4), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    /* 4 slots: one stays empty, one is kept for the last entry */
    g_assert_cmpint(rw(t->a, 0x01, 10, 1, buf), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 20, 1, buf), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 30, 1, buf), ==, 0);
    expect_entry(t, &q, 10, 1, ESA_FIRST, LBACIR_CHANGE);
    expect_entry(t, &q, 20, 1, ESA_NONE, LBACIR_CHANGE);
    expect_entry(t, &q, 0, 0, ESA_FULL, LBACIR_ALL);
    expect_no_entry(t, &q);

    g_assert_true(nx_reap(t->m, 0, &aer, NX_TIMEOUT_US));
    g_assert_cmpint(aer.cid, ==, aer_cid);
    g_assert_cmphex(aer.dw0 & 0xffff, ==, 0x0104);      /* one-shot, full */

    /* Logging stopped: later writes are not logged, and stop refuses */
    g_assert_cmpint(rw(t->a, 0x01, 40, 1, buf), ==, 0);
    expect_no_entry(t, &q);
    g_assert_cmpint(track(t, &q, false), ==, ST_INVALID_FIELD);

    /* Starting on a queue with no room is Controller Data Queue Full */
    g_assert_cmpint(track(t, &q, true), ==, ST_CDQ_FULL);
    g_assert_cmpint(cdq_set_head(t, &q), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    t_stop(t);
}

/* Suspend: nothing new is fetched, resume picks it up */
static void test_suspend_resume(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    uint64_t rbuf = nx_alloc(t->a, BLK, 4096);
    g_autofree uint8_t *st = g_malloc(4096);
    g_autofree uint8_t *blk = g_malloc(BLK);
    g_autofree uint8_t *back = g_malloc(BLK);
    NxCqe e;
    NxCmd c;
    uint16_t cid;
    Cdq q;

    child_ready(t->a, 16);
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 16), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    memset(blk, 0x5a, BLK);
    qtest_memwrite(t->qts, buf, blk, BLK);
    g_assert_cmpint(rw(t->a, 0x01, 3, 1, buf), ==, 0);

    /* Suspend notification changes nothing */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0, CNTLID_A, 0, 0, 0, 0, NULL),
                    ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 4, 1, buf), ==, 0);

    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &q, 3, 1, ESA_FIRST, LBACIR_CHANGE);
    expect_entry(t, &q, 4, 1, ESA_NONE, LBACIR_CHANGE);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    expect_no_entry(t, &q);

    /* A read submitted now is not fetched: the state shows it pending */
    rw_cmd(&c, 0x02, 3, 1, rbuf);
    cid = nx_queue(t->a, 1, &c);
    nx_ring(t->a, 1);
    g_assert_cmpint(get_state(t, CNTLID_A, false, st, 4096, &e), ==, 0);
    g_assert_cmpint(e.dw0 & 1, ==, 1);                  /* CSUP */
    g_assert_cmpint(st[2] & 1, ==, 1);                  /* CSATTR */
    g_assert_cmpint(lduw_le_p(st + 48 + 2), ==, 1);     /* NIOSQ */
    g_assert_cmpint(lduw_le_p(st + 56 + 18), ==,        /* SQ 1 tail */
                    t->a->sq[1].tail);
    g_assert_cmpint(lduw_le_p(st + 56 + 16), ==,        /* SQ 1 head */
                    (t->a->sq[1].tail + 15) % 16);
    /* Logging survives the suspend (test_logging_across_suspend) */
    g_assert_cmpint(track(t, &q, true), ==, ST_INVALID_FIELD);

    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_true(nx_reap(t->a, 1, &e, NX_TIMEOUT_US));
    g_assert_cmpint(e.cid, ==, cid);
    g_assert_cmpint(NX_SC(e.status), ==, 0);
    qtest_memread(t->qts, rbuf, back, BLK);
    g_assert_cmpmem(back, BLK, blk, BLK);
    /* Running again: get state says so */
    g_assert_cmpint(get_state(t, CNTLID_A, false, st, 4096, &e), ==, 0);
    g_assert_cmpint(e.dw0 & 1, ==, 0);
    g_assert_cmpint(st[2] & 1, ==, 0);

    /* Suspend with DUDMQ deletes the queue */
    g_assert_cmpint(suspend(t, CNTLID_A, true), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, ST_INVALID_CDQ);
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    t_stop(t);
}

/*
 * NVM Command Set, LBA Migration Queue (section 5.6, Figure 177):
 * logging survives a suspend.  The suspend's entry is "last - suspended"
 * (ESA 011b); after an abandoned migration (Resume on the source) the
 * next change is logged as "first since the controller resumed" (001b);
 * Track Send stop ends logging with 010b, suspended or not.  A
 * Controller Level Reset that ends A's suspension resumes logging alike.
 */
static void test_logging_across_suspend(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    Cdq q, small;

    child_ready(t->a, 16);
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 16), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 3, 1, buf), ==, 0);
    expect_entry(t, &q, 3, 1, ESA_FIRST, LBACIR_CHANGE);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    expect_no_entry(t, &q);
    /* Still logging while suspended: a second start is refused */
    g_assert_cmpint(track(t, &q, true), ==, ST_INVALID_FIELD);

    /* Resumed: logging goes on, its next entry marked first */
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 7, 1, buf), ==, 0);
    expect_entry(t, &q, 7, 1, ESA_FIRST, LBACIR_CHANGE);
    g_assert_cmpint(rw(t->a, 0x01, 8, 1, buf), ==, 0);
    expect_entry(t, &q, 8, 1, ESA_NONE, LBACIR_CHANGE);
    g_assert_cmpint(track(t, &q, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_STOPPED, LBACIR_NONE);
    g_assert_cmpint(rw(t->a, 0x01, 9, 1, buf), ==, 0);
    expect_no_entry(t, &q);
    g_assert_cmpint(cdq_set_head(t, &q), ==, 0);

    /* Stopped while suspended: 010b after 011b, nothing after resume */
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 10, 1, buf), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    g_assert_cmpint(track(t, &q, false), ==, 0);
    expect_entry(t, &q, 10, 1, ESA_FIRST, LBACIR_CHANGE);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    expect_entry(t, &q, 0, 0, ESA_STOPPED, LBACIR_NONE);
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 11, 1, buf), ==, 0);
    expect_no_entry(t, &q);
    g_assert_cmpint(track(t, &q, false), ==, ST_INVALID_FIELD);
    g_assert_cmpint(cdq_set_head(t, &q), ==, 0);

    /* A's own reset ends its suspension: the next entry is first */
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    nx_disable(t->a);
    child_ready(t->a, 16);
    g_assert_cmpint(rw(t->a, 0x01, 12, 1, buf), ==, 0);
    expect_entry(t, &q, 12, 1, ESA_FIRST, LBACIR_CHANGE);
    g_assert_cmpint(track(t, &q, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_STOPPED, LBACIR_NONE);
    expect_no_entry(t, &q);

    /*
     * The suspend's entry takes a slot as a change does: on a 4-entry
     * queue with two changes in it, no slot would stay for what ends
     * logging later, so logging ends as on a full queue
     */
    g_assert_cmpint(mcmd(t, OPC_CDQ, 1, q.id, 0, 0, 0, 0, NULL), ==, 0);
    g_assert_cmpint(cdq_create(t, &small, CNTLID_A, 4), ==, 0);
    g_assert_cmpint(track(t, &small, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 20, 1, buf), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 21, 1, buf), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &small, 20, 1, ESA_FIRST, LBACIR_CHANGE);
    expect_entry(t, &small, 21, 1, ESA_NONE, LBACIR_CHANGE);
    expect_entry(t, &small, 0, 0, ESA_FULL, LBACIR_ALL);
    expect_no_entry(t, &small);
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 22, 1, buf), ==, 0);
    expect_no_entry(t, &small);
    g_assert_cmpint(track(t, &small, false), ==, ST_INVALID_FIELD);
    t_stop(t);
}

/* Every refusal: its status, a guest-error line, and m0 still works */
static void test_errors(void)
{
    T *t = t_start();
    g_autofree uint8_t *st = g_malloc(4096);
    g_autofree uint8_t *bad = g_malloc(4096);
    uint64_t page = nx_alloc(t->m, 4096, 4096);
    uint32_t len;
    NxCqe e;
    Cdq q[5];

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));

    /* Unknown CNTLID, an unmanaged controller, m0 itself */
    for (int i = 0; i < 3; i++) {
        uint16_t id = (uint16_t[]){ 99, CNTLID_OTHER, CNTLID_MGMT }[i];

        g_assert_cmpint(suspend(t, id, false), ==, ST_INVALID_CTRL_ID);
        g_assert_cmpint(resume(t, id), ==, ST_INVALID_CTRL_ID);
        g_assert_cmpint(get_state(t, id, false, st, 64, NULL), ==,
                        ST_INVALID_CTRL_ID);
        g_assert_cmpint(cdq_create(t, &q[0], id, 8), ==, ST_INVALID_CTRL_ID);
    }
    g_assert_true(logged(t, "cntlid 99 is not a controller this management "
                         "controller manages"));

    /* Run-state errors */
    g_assert_cmpint(resume(t, CNTLID_A), ==, ST_NOT_SUSPENDED);
    g_assert_cmpint(get_state(t, CNTLID_A, false, st, 4096, NULL), ==, 0);
    len = state_len(st);
    g_assert_cmpint(set_state(t, CNTLID_B, false, st, len, NULL), ==,
                    ST_NOT_SUSPENDED);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, ST_SUSPENDED);
    g_assert_true(logged(t, "controller 2 is already suspended"));
    g_assert_cmpint(get_state(t, CNTLID_A, true, st, 4096, NULL), ==, 0);
    len = state_len(st);

    /* State buffers: too small, malformed, unknown versions */
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    g_assert_cmpint(set_state(t, CNTLID_B, true, st, 16, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(set_state(t, CNTLID_B, true, st, len - 4, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(e.dw0, ==, 16);                     /* NVMECSS */
    memcpy(bad, st, len);
    stw_le_p(bad, 7);
    g_assert_cmpint(set_state(t, CNTLID_B, true, bad, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(e.dw0, ==, 0);
    g_assert_true(logged(t, "state header version unknown"));
    memcpy(bad, st, len);
    stw_le_p(bad + 48, 1);
    g_assert_cmpint(set_state(t, CNTLID_B, true, bad, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(e.dw0, ==, 48);
    memcpy(bad, st, len);
    stw_le_p(bad + 56 + 12, 9);                         /* SQ 1 on CQ 9 */
    g_assert_cmpint(set_state(t, CNTLID_B, true, bad, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(e.dw0, ==, 56 + 12);
    memcpy(bad, st, len);
    stw_le_p(bad + 56 + 48 + 16, 2);                    /* vendor version */
    g_assert_cmpint(set_state(t, CNTLID_B, true, bad, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(e.dw0, ==, 56 + 48 + 16);
    /* A queue larger than the controller offers (MQES 1024 by default) */
    memcpy(bad, st, len);
    stw_le_p(bad + 56 + 8, 4095);
    stw_le_p(bad + 56 + 16, 0);
    stw_le_p(bad + 56 + 18, 0);
    g_assert_cmpint(set_state(t, CNTLID_B, true, bad, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_true(logged(t, "an I/O SQ larger than MQES"));
    /* Vendor data without its UUID index; format indexes not offered */
    g_assert_cmpint(set_state(t, CNTLID_B, false, st, len, &e), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 2u << 16, CNTLID_A, 0, 0, 15,
                         page, NULL), ==, ST_INVALID_FIELD);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 0, 2u << 16 | CNTLID_A, 0, 0, 15,
                         page, NULL), ==, ST_INVALID_FIELD);
    /* An offset past the state */
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 0, CNTLID_A, 4096, 0, 15,
                         page, NULL), ==, ST_INVALID_FIELD);
    /* Reserved selects */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 3, CNTLID_A, 0, 0, 0, 0, NULL),
                    ==, ST_INVALID_FIELD);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1, CNTLID_A, 0, 0, 0, 0, NULL),
                    ==, ST_INVALID_FIELD);
    /*
     * A destination not enabled.  Disabling B is a Controller Level
     * Reset, which ends its suspension (controller-reset): suspend it
     * again, disabled
     */
    nx_disable(t->b);
    g_assert_cmpint(resume(t, CNTLID_B), ==, ST_NOT_SUSPENDED);
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    g_assert_cmpint(set_state(t, CNTLID_B, true, st, len, &e), ==,
                    ST_CMD_SEQ);
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_cmpint(resume(t, CNTLID_B), ==, 0);

    /* Queues: bad PRPs, bad sizes, unknown ids, too many */
    {
        NxCqe ce;

        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16 | 1, 64, 0, 0,
                             page + 8, &ce), ==, ST_PRP_OFFSET);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16 | 1, 64, 0, 0,
                             0, &ce), ==, ST_PRP_OFFSET);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16 | 1, 64, 0, 0,
                             0x100000000000ull, &ce), ==, ST_DATA_XFER);
        g_assert_true(logged(t, "is not memory the controller can write"));
        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16, 64, 0, 0,
                             page, &ce), ==, ST_INVALID_FIELD);   /* PC 0 */
        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16 | 1, 63, 0, 0,
                             page, &ce), ==, ST_INVALID_FIELD);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A << 16 | 1, 8, 0, 0,
                             page, &ce), ==, ST_INVALID_FIELD);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 1u << 16, CNTLID_A << 16 | 1, 64,
                             0, 0, page, &ce), ==, ST_INVALID_FIELD);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 1, 9, 0, 0, 0, 0, &ce), ==,
                        ST_INVALID_CDQ);
        g_assert_cmpint(mcmd(t, OPC_CDQ, 2, 0, 0, 0, 0, 0, &ce), ==,
                        ST_INVALID_FIELD);
    }
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(cdq_create(t, &q[i], CNTLID_A, 8), ==, 0);
        g_assert_cmpint(q[i].id, ==, i + 1);
    }
    g_assert_cmpint(cdq_create(t, &q[4], CNTLID_A, 8), ==, ST_NO_RESOURCES);
    q[4].id = 7;
    g_assert_cmpint(track(t, &q[4], true), ==, ST_INVALID_CDQ);
    g_assert_cmpint(mcmd(t, OPC_TRACK_SEND, 1, q[0].id, 0, 0, 0, 0, NULL),
                    ==, ST_INVALID_FIELD);              /* memory tracking */
    g_assert_cmpint(mcmd(t, OPC_TRACK_SEND, 2u << 16, q[0].id, 0, 0, 0, 0,
                         NULL), ==, ST_INVALID_FIELD);  /* LACT 2 */
    g_assert_cmpint(track(t, &q[0], true), ==, 0);
    g_assert_cmpint(track(t, &q[0], true), ==, ST_INVALID_FIELD);
    g_assert_cmpint(track(t, &q[1], true), ==, ST_INVALID_FIELD);
    g_assert_cmpint(track(t, &q[1], false), ==, ST_INVALID_FIELD);
    /* Head pointers past the tail, triggers beyond the queue */
    q[0].head = 3;
    g_assert_cmpint(cdq_set_head(t, &q[0]), ==, ST_INVALID_FIELD);
    q[0].head = 8;
    g_assert_cmpint(cdq_set_head(t, &q[0]), ==, ST_INVALID_FIELD);
    g_assert_cmpint(nx_set_features(t->m, FID_CDQ, 1u << 31 | q[0].id,
                                    NULL), ==, 0);
    {
        NxCmd c;

        nx_cmd(&c, 0x09, 0);
        nx_cmd_dw(&c, 10, FID_CDQ);
        nx_cmd_dw(&c, 11, 1u << 31 | q[0].id);
        nx_cmd_dw(&c, 13, 8);
        g_assert_cmpint(nx_exec(t->m, 0, &c, NULL), ==, ST_INVALID_FIELD);
    }
    g_assert_cmpint(nx_set_features(t->m, FID_CDQ, 9, NULL), ==,
                    ST_INVALID_CDQ);
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(mcmd(t, OPC_CDQ, 1, q[i].id, 0, 0, 0, 0, NULL), ==,
                        0);
    }
    /* The controllers still work */
    g_assert_cmpint(nx_identify(t->m, 0x01, 0, 0, NULL), ==, 0);
    g_assert_cmpint(rw(t->a, 0x02, 0, 1, nx_alloc(t->a, BLK, 4096)), ==, 0);
    t_stop(t);
}

/*
 * The whole migration from A to B inside one QEMU, as libvfn's
 * examples/migrate.c runs it: track changes and copy them, suspend A with
 * a read still in its SQ, move A's state to B, resume B: the read
 * completes there with the copied data, and I/O goes on through B.
 */
static void test_migrate_a_to_b(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->a, 2 * BLK, 4096);
    uint64_t rbuf = nx_alloc(t->a, 2 * BLK, 4096);
    g_autofree uint8_t *data = g_malloc(2 * BLK);
    g_autofree uint8_t *back = g_malloc(2 * BLK);
    g_autofree uint8_t *st = g_malloc(4096);
    g_autofree uint8_t *st_b = g_malloc(4096);
    g_autofree uint8_t *copy = NULL;
    NxCqe e;
    NxCmd c;
    uint16_t cid;
    Entry ent;
    Cdq q;

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));
    for (int i = 0; i < 2 * BLK; i++) {
        data[i] = i * 7 + 3;
    }
    qtest_memwrite(t->qts, buf, data, 2 * BLK);

    /* 1. track and write on A */
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 16), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 100, 2, buf), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 200, 1, buf + BLK), ==, 0);
    /* A few completions A posts but the host has not consumed yet */
    for (int i = 0; i < 3; i++) {
        rw_cmd(&c, 0x02, 100, 1, rbuf);
        nx_queue(t->a, 1, &c);
    }
    nx_ring(t->a, 1);

    /* 2. suspend A (the queue ends), then copy what changed to B's image */
    g_assert_cmpint(suspend(t, CNTLID_A, true), ==, 0);
    while (cdq_next(t, &q, &ent) && ent.esa != ESA_SUSPENDED) {
        g_assert_cmpint(ent.lbacir, ==, LBACIR_CHANGE);
        copy = g_realloc(copy, (ent.nlb + 1) * BLK);
        g_assert_cmpint(pread(t->fd_a, copy, (ent.nlb + 1) * BLK,
                              ent.slba * BLK), ==, (ent.nlb + 1) * BLK);
        g_assert_cmpint(pwrite(t->fd_b, copy, (ent.nlb + 1) * BLK,
                               ent.slba * BLK), ==, (ent.nlb + 1) * BLK);
    }
    g_assert_cmpint(ent.esa, ==, ESA_SUSPENDED);

    /* A read submitted after the suspend stays in A's SQ */
    memset(back, 0, 2 * BLK);
    qtest_memwrite(t->qts, rbuf, back, 2 * BLK);
    rw_cmd(&c, 0x02, 100, 2, rbuf);
    cid = nx_queue(t->a, 1, &c);
    nx_ring(t->a, 1);

    /* 3. get A's state, set it on B, resume B */
    g_assert_cmpint(get_state(t, CNTLID_A, true, st, 4096, &e), ==, 0);
    g_assert_cmpint(e.dw0 & 1, ==, 1);
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    g_assert_cmpint(set_state(t, CNTLID_B, true, st, state_len(st), &e),
                    ==, 0);
    /* B now holds A's queues exactly */
    g_assert_cmpint(get_state(t, CNTLID_B, true, st_b, 4096, NULL), ==, 0);
    g_assert_cmpmem(st_b, state_len(st), st, state_len(st));
    g_assert_cmpint(resume(t, CNTLID_B), ==, 0);

    /* 4. the host moves its driver to B: the queued read completes there */
    t->b->sq[1] = t->a->sq[1];
    t->b->cq[1] = t->a->cq[1];
    t->b->next_cid = t->a->next_cid;
    for (int i = 0; i < 4; i++) {
        g_assert_true(nx_reap(t->b, 1, &e, NX_TIMEOUT_US));
        g_assert_cmpint(NX_SC(e.status), ==, 0);
    }
    g_assert_cmpint(e.cid, ==, cid);
    qtest_memread(t->qts, rbuf, back, 2 * BLK);
    g_assert_cmpmem(back, 2 * BLK, data, 2 * BLK);

    /* ... and I/O continues on B, on B's own image */
    g_assert_cmpint(rw(t->b, 0x01, 300, 1, buf), ==, 0);
    g_assert_cmpint(pread(t->fd_b, back, BLK, 300 * BLK), ==, BLK);
    g_assert_cmpmem(back, BLK, data, BLK);
    g_assert_cmpint(rw(t->b, 0x02, 200, 1, rbuf), ==, 0);
    qtest_memread(t->qts, rbuf, back, BLK);
    g_assert_cmpmem(back, BLK, data + BLK, BLK);
    t_stop(t);
}

/*
 * Every command exactly as nvme-cli 2.13's `lm` plugin sends it through
 * Debian trixie's libnvme 1.13 (plugins/lm/lm-nvme.c, src/nvme/ioctl.c
 * nvme_lm_*; the shipped libnvme.so.1.13.0 was disassembled to confirm
 * the two oddities): Create CDQ puts the CNTLID in CDW11[15:0] with PC
 * ORed over its bit 0 and carries the size as a u8 (CDW12 = size & 0xff);
 * set-cdq without --tpt sends CDW13 = 0xffffffff with ETPT 0; migration-send
 * never sets CSVI; migration-recv puts CSVI in MOS and NUMD 0's based.
 * B is CNTLID 4 here, so the old encoding of A (2 | 1 = 3) names A alone.
 */
static void test_nvme_cli_fields(void)
{
    T *t = t_start_full(NULL, NULL, 4, NULL);
    uint64_t buf = nx_alloc(t->a, 2 * BLK, 4096);
    uint64_t fbuf = nx_alloc(t->m, 4096, 4096);
    uint32_t size_arg = 0x200f8;    /* what the test passes as --size */
    g_autofree uint8_t *st = g_malloc(4096);
    g_autofree uint8_t *st_b = g_malloc(4096);
    uint32_t len;
    NxCqe e;
    NxCmd c;
    Cdq q;

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));

    /* nvme lm create-cdq -c 2 -s 0x200f8 --consent: 248 dwords, 31 entries */
    memset(&q, 0, sizeof(q));
    q.n = (size_arg & 0xff) / 8;
    q.base = nx_alloc(t->m, 4096, 4096);
    q.phase = 1;
    qtest_memset(t->qts, q.base, 0, 4096);
    g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A | 1, size_arg & 0xff, 0, 0,
                         q.base, &e), ==, 0);
    q.id = e.dw0 & 0xffff;
    g_assert_cmpint(q.id, ==, 1);

    /* nvme lm track-send -C 1 -s 0 --start */
    g_assert_cmpint(mcmd(t, OPC_TRACK_SEND, 0 | 1u << 16, q.id, 0, 0, 0, 0,
                         NULL), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 10, 1, buf), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 20, 2, buf), ==, 0);
    expect_entry(t, &q, 10, 1, ESA_FIRST, LBACIR_CHANGE);
    expect_entry(t, &q, 20, 2, ESA_NONE, LBACIR_CHANGE);
    expect_no_entry(t, &q);

    /* nvme lm set-cdq -C 1 -H 2 (no --tpt), then get-cdq -C 1 */
    nx_cmd(&c, 0x09, 0);
    nx_cmd_dw(&c, 10, FID_CDQ);
    nx_cmd_dw(&c, 11, q.id);
    nx_cmd_dw(&c, 12, 2);
    nx_cmd_dw(&c, 13, 0xffffffff);
    g_assert_cmpint(nx_exec(t->m, 0, &c, NULL), ==, 0);
    nx_cmd(&c, 0x0a, 0);
    nx_cmd_prp(&c, fbuf, 0);
    nx_cmd_dw(&c, 10, FID_CDQ);
    nx_cmd_dw(&c, 11, q.id);
    g_assert_cmpint(nx_exec(t->m, 0, &c, &e), ==, 0);
    g_assert_cmpint(qtest_readl(t->qts, fbuf), ==, 2);
    g_assert_cmpint(qtest_readl(t->qts, fbuf + 4), ==, 0);

    /* nvme lm migration-send -s 0 -c 2 -t 1: the queue ends "suspended" */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0, 1u << 16 | CNTLID_A, 0, 0, 0, 0,
                         NULL), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);

    /*
     * nvme lm migration-recv -s 0 -c 2 -n 11, without -V: CSVI 0 asks
     * for no NVMe-defined state (Base 2.1, Figure 345), so NVMECSS is 0
     * and VSS 0 (no CSUUIDI either)
     */
    qtest_memset(t->qts, fbuf, 0xee, 4096);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 0, CNTLID_A, 0, 0, 11, fbuf, &e),
                    ==, 0);
    g_assert_cmpint(e.dw0 & 1, ==, 1);
    qtest_memread(t->qts, fbuf, st, 48);
    g_assert_cmpint(st[2], ==, 1);                      /* CSATTR */
    g_assert_cmpint(state_len(st), ==, 48);
    /* nvme lm migration-recv -s 0 -c 2 -V 1 -n 11: the 48-byte header */
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1u << 16, CNTLID_A, 0, 0, 11, fbuf,
                         &e), ==, 0);
    g_assert_cmpint(e.dw0 & 1, ==, 1);
    qtest_memread(t->qts, fbuf, st, 48);
    len = state_len(st);
    g_assert_cmpint(len, >, 48);
    g_assert_cmpint(len, <, 4096 - 8);
    /*
     * nvme lm migration-recv -s 0 -c 2 -V 1 -n LEN/4 -f FILE: the
     * controller sends LEN + 4 bytes (NUMD 0's based), the tool writes
     * LEN of them
     */
    qtest_memset(t->qts, fbuf, 0xee, 4096);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1u << 16, CNTLID_A, 0, 0, len / 4,
                         fbuf, &e), ==, 0);
    qtest_memread(t->qts, fbuf, st, len + 8);
    g_assert_cmpint(ldl_le_p(st + len), ==, 0);         /* zero-filled */
    g_assert_cmphex((uint32_t)ldl_le_p(st + len + 4), ==, 0xeeeeeeee);

    /*
     * B: migration-send -s 0 -c 4 -t 1; -s 2 -c 4 -S 3 -n LEN/4 -f FILE
     * (MOS SEQIND 3, no CSVI); then recv on B gives A's state back
     */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0, 1u << 16 | 4, 0, 0, 0, 0,
                         NULL), ==, 0);
    qtest_memwrite(t->qts, fbuf, st, len);
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 2 | 3u << 16, 4, 0, 0, len / 4,
                         fbuf, &e), ==, 0);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1u << 16, 4, 0, 0, len / 4, fbuf,
                         &e), ==, 0);
    qtest_memread(t->qts, fbuf, st_b, len);
    g_assert_cmpmem(st_b, len, st, len);
    /* nvme lm migration-send -s 1 -c 4; nvme lm delete-cdq -C 1 */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 1, 4, 0, 0, 0, 0, NULL), ==, 0);
    g_assert_cmpint(mcmd(t, OPC_CDQ, 1, q.id, 0, 0, 0, 0, NULL), ==, 0);
    t_stop(t);

    /*
     * With B at CNTLID 3 the old encoding of A (3) names A or B: refused,
     * not guessed
     */
    t = t_start();
    g_assert_cmpint(mcmd(t, OPC_CDQ, 0, CNTLID_A | 1, 248, 0, 0,
                         nx_alloc(t->m, 4096, 4096), NULL), ==,
                    ST_INVALID_CTRL_ID);
    g_assert_true(logged(t, "both are managed here"));
    t_stop(t);
}

/*
 * QEMU to QEMU: the state m0 reads in one process is set on a controller
 * in another process, whose guest memory holds the same queues (as a
 * migration of the RAM would have made it); a read queued before the
 * suspend completes there, and I/O continues.
 */
static void test_qemu_to_qemu(void)
{
    T *src = t_start();
    T *dst;
    uint64_t buf = nx_alloc(src->a, BLK, 4096);
    uint64_t rbuf = nx_alloc(src->a, BLK, 4096);
    g_autofree uint8_t *data = g_malloc(BLK);
    g_autofree uint8_t *back = g_malloc(BLK);
    g_autofree uint8_t *st = g_malloc(4096);
    g_autofree uint8_t *mem = g_malloc(16 * 64);
    g_autofree char *dst_img = NULL;
    NxCqe e;
    NxCmd c;
    uint16_t cid;
    int fd;

    child_ready(src->a, 16);
    memset(data, 0xc3, BLK);
    qtest_memwrite(src->qts, buf, data, BLK);
    g_assert_cmpint(rw(src->a, 0x01, 42, 1, buf), ==, 0);

    g_assert_cmpint(suspend(src, CNTLID_A, false), ==, 0);
    rw_cmd(&c, 0x02, 42, 1, rbuf);
    cid = nx_queue(src->a, 1, &c);
    nx_ring(src->a, 1);
    g_assert_cmpint(get_state(src, CNTLID_A, true, st, 4096, &e), ==, 0);

    /* The destination: shared storage (a copy of A's image), same layout */
    dst_img = tmp_file("dst", &fd);
    {
        g_autofree uint8_t *whole = g_malloc(IMG_SIZE);

        g_assert_cmpint(pread(src->fd_a, whole, IMG_SIZE, 0), ==, IMG_SIZE);
        g_assert_cmpint(pwrite(fd, whole, IMG_SIZE, 0), ==, IMG_SIZE);
    }
    close(fd);
    dst = t_start_images(dst_img, NULL);
    /* The same allocations in the same order give the same addresses */
    g_assert_cmpuint(nx_alloc(dst->a, BLK, 4096), ==, buf);
    g_assert_cmpuint(nx_alloc(dst->a, BLK, 4096), ==, rbuf);
    child_ready(dst->a, 16);
    g_assert_cmpuint(dst->a->sq[1].base, ==, src->a->sq[1].base);
    /* "Migrate the RAM" of the queues */
    qtest_memread(src->qts, src->a->sq[1].base, mem, 16 * 64);
    qtest_memwrite(dst->qts, dst->a->sq[1].base, mem, 16 * 64);
    qtest_memread(src->qts, src->a->cq[1].base, mem, 16 * 16);
    qtest_memwrite(dst->qts, dst->a->cq[1].base, mem, 16 * 16);

    g_assert_cmpint(suspend(dst, CNTLID_A, false), ==, 0);
    g_assert_cmpint(set_state(dst, CNTLID_A, true, st, state_len(st), &e),
                    ==, 0);
    g_assert_cmpint(resume(dst, CNTLID_A), ==, 0);

    dst->a->sq[1] = src->a->sq[1];
    dst->a->cq[1] = src->a->cq[1];
    dst->a->next_cid = src->a->next_cid;
    t_stop(src);

    g_assert_true(nx_reap(dst->a, 1, &e, NX_TIMEOUT_US));
    g_assert_cmpint(e.cid, ==, cid);
    g_assert_cmpint(NX_SC(e.status), ==, 0);
    qtest_memread(dst->qts, rbuf, back, BLK);
    g_assert_cmpmem(back, BLK, data, BLK);
    memset(data, 0x3c, BLK);
    qtest_memwrite(dst->qts, buf, data, BLK);
    g_assert_cmpint(rw(dst->a, 0x01, 43, 1, buf), ==, 0);
    g_assert_cmpint(rw(dst->a, 0x02, 43, 1, rbuf), ==, 0);
    qtest_memread(dst->qts, rbuf, back, BLK);
    g_assert_cmpmem(back, BLK, data, BLK);
    t_stop(dst);
}

/* Refused configurations, each with a message naming what is wrong */
static void test_bad_config(void)
{
    static const char *const cases[][2] = {
        { "-device nvme-export,mgmt=m9", "m9" },
        { "-device nvme-export-mgmt,id=m0,cntlid=1 "
          "-device nvme-export,mgmt=m0,cntlid=1",
          "cntlid 1 is the management controller's own" },
        { "-device nvme-export-mgmt,id=m0,cntlid=1 "
          "-device nvme-export,mgmt=m0,cntlid=2 "
          "-device nvme-export,mgmt=m0,cntlid=2",
          "cntlid 2 is already used by another controller of mgmt=m0" },
        { "-device nvme-export-mgmt,id=m0 "
          "-device nvme-export-mgmt,id=m1,mgmt=m0,cntlid=2",
          "a management controller cannot itself be managed" },
    };
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *cmd = g_strdup_printf(
            "%s -machine pc -accel qtest -nodefaults -display none %s",
            qemu, cases[i][0]);
        g_autofree char *err_out = NULL;
        g_auto(GStrv) argv = NULL;
        g_autoptr(GError) err = NULL;
        int status;

        g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &err));
        g_assert_true(g_spawn_sync(NULL, argv, NULL,
                                   G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                   NULL, &err_out, &status, &err));
        g_assert_no_error(err);
        g_assert_cmpint(status, !=, 0);
        if (!strstr(err_out, cases[i][1])) {
            g_printerr("stderr: %s\n", err_out);
        }
        g_assert_nonnull(strstr(err_out, cases[i][1]));
    }
}

/* A TP4193 command with CDW14 and a data buffer of @pages pages */
static int ecmd(T *t, uint8_t opc, uint32_t dw10, uint32_t dw11,
                uint32_t dw14, uint32_t len, uint64_t buf, NxCqe *e)
{
    uint64_t list = nx_alloc(t->m, 4096, 4096);
    uint32_t pages = DIV_ROUND_UP(len, 4096);
    NxCmd c;

    nx_cmd(&c, opc, 0);
    if (pages > 2) {
        for (uint32_t i = 1; i < pages; i++) {
            uint64_t a = buf + 4096ull * i;

            qtest_memwrite(t->qts, list + 8 * (i - 1), &a, 8);
        }
        nx_cmd_prp(&c, buf, list);
    } else {
        nx_cmd_prp(&c, buf, pages == 2 ? buf + 4096 : 0);
    }
    nx_cmd_dw(&c, 10, dw10);
    nx_cmd_dw(&c, 11, dw11);
    nx_cmd_dw(&c, 14, dw14);
    nx_cmd_dw(&c, 15, len / 4 - 1);
    return nx_exec(t->m, 0, &c, e);
}

#define OPC_ESUB_RECV   0x2a
#define OPC_ESUB_SEND   0x2d
#define OPC_EXP_NS      0x31
#define OPC_EXP_PORT    0x35
#define ST_INVALID_SUBSYS   0x136
#define ST_INVALID_ASSOC    0x143
#define ST_INVALID_CONFIG   0x144
#define ECS_LEN (288 + 8208 + 8200 + 4)

static int esub_assoc_ctrl(T *t, uint16_t esubid, uint16_t cntlid,
                           uint16_t ecntlid)
{
    uint64_t mem = nx_alloc(t->m, 4096, 4096);
    uint8_t d[8] = { 1, 0, 0, 0 };

    stw_le_p(d + 4, cntlid);
    stw_le_p(d + 6, ecntlid);
    qtest_memwrite(t->qts, mem, d, 8);
    return ecmd(t, OPC_ESUB_SEND, 5, 0, (uint32_t)esubid << 16, 8, mem,
                NULL);
}

static int esub_ns(T *t, uint8_t sel, uint16_t esubid, uint32_t ensid,
                   uint32_t unsid, uint16_t uctrlid)
{
    uint64_t mem = nx_alloc(t->m, 4096, 4096);
    uint8_t d[1024] = { 0 };
    NxCmd c;

    stl_le_p(d + 32, ensid);
    stl_le_p(d + 292, unsid);
    stw_le_p(d + 296, uctrlid);
    qtest_memwrite(t->qts, mem, d, sizeof(d));
    nx_cmd(&c, OPC_EXP_NS, 0);
    nx_cmd_prp(&c, mem, 0);
    nx_cmd_dw(&c, 10, sel);
    nx_cmd_dw(&c, 14, (uint32_t)esubid << 16);
    return nx_exec(t->m, 0, &c, NULL);
}

/*
 * TP4193: exported subsystems built on A and on B, A's configuration state
 * accepted by B's (their identities match), refused bit-exactly when not.
 */
static void test_exported_subsystems(void)
{
    T *t = t_start();
    g_autofree uint8_t *id = g_malloc(4096);
    g_autofree uint8_t *ecs = g_malloc(ECS_LEN + 4096);
    g_autofree uint8_t *bad = g_malloc(ECS_LEN + 4096);
    uint64_t mem = nx_alloc(t->m, 6 * 4096, 4096);
    uint8_t nqn[256], list[4096];
    NxCqe e;
    static const uint8_t tmpl_uuid[16] = {
        0xd9, 0x28, 0x44, 0xaa, 0x07, 0x93, 0x49, 0xbc,
        0xb5, 0xc8, 0x84, 0xf6, 0xd3, 0xd2, 0xfc, 0xae,
    };

    /* Identify: ENSA, the template list, the underlying controllers */
    g_assert_cmpint(nx_identify(t->m, 0x01, 0, 0, id), ==, 0);
    g_assert_cmpint(id[404], ==, 0x03);
    g_assert_cmpint(nx_identify(t->m, 0x22, 0, 0, id), ==, 0);
    g_assert_cmpmem(id, 16, tmpl_uuid, 16);
    g_assert_true(buffer_is_zero(id + 16, 16));
    g_assert_cmpint(nx_identify(t->m, 0x21, 0, 0, id), ==, 0);
    g_assert_cmpint(lduw_le_p(id), ==, 2);
    g_assert_cmpint(lduw_le_p(id + 2), ==, CNTLID_A);
    g_assert_cmpint(lduw_le_p(id + 4), ==, CNTLID_B);
    g_assert_true(nx_enable(t->a, 16));
    g_assert_cmpint(nx_identify(t->a, 0x21, 0, 0, id), ==, ST_INVALID_FIELD);
    g_assert_cmpint(nx_identify(t->a, 0x01, 0, 0, id), ==, 0);
    g_assert_cmpint(id[404], ==, 0);

    /* Create: the controller names the subsystem */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 1u << 31, 0, 256, mem, NULL),
                    ==, ST_INVALID_FIELD);          /* TR, no template */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 2, 0, 256, mem, NULL), ==,
                    ST_INVALID_FIELD);              /* no template 2 */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 1u << 31 | 1, 0, 256, mem, &e),
                    ==, 0);
    g_assert_cmpint(e.dw0, ==, 1);
    qtest_memread(t->qts, mem, nqn, 256);
    g_assert_cmpstr((char *)nqn, ==,
                    "nqn.2026-12.org.iolab:nvme-export:esub1");
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 1, 0, 256, mem, &e), ==, 0);
    g_assert_cmpint(e.dw0, ==, 2);

    /* Associations */
    g_assert_cmpint(esub_assoc_ctrl(t, 1, CNTLID_A, 1), ==, 0);
    g_assert_cmpint(esub_assoc_ctrl(t, 2, CNTLID_A, 1), ==, ST_INVALID_ASSOC);
    g_assert_cmpint(esub_assoc_ctrl(t, 2, 99, 1), ==, ST_INVALID_CTRL_ID);
    g_assert_cmpint(esub_assoc_ctrl(t, 2, CNTLID_OTHER, 1), ==,
                    ST_INVALID_CTRL_ID);
    g_assert_cmpint(esub_assoc_ctrl(t, 9, CNTLID_B, 1), ==,
                    ST_INVALID_SUBSYS);
    g_assert_cmpint(esub_assoc_ctrl(t, 2, CNTLID_B, 0), ==, ST_INVALID_FIELD);
    g_assert_cmpint(esub_assoc_ctrl(t, 2, CNTLID_B, 1), ==, 0);
    g_assert_cmpint(esub_ns(t, 1, 1, 1, 2, CNTLID_A), ==, ST_INVALID_ASSOC);
    g_assert_cmpint(esub_ns(t, 1, 1, 1, 1, CNTLID_B), ==, ST_INVALID_ASSOC);
    g_assert_cmpint(esub_ns(t, 1, 1, 1, 1, CNTLID_A), ==, 0);
    g_assert_cmpint(esub_ns(t, 1, 1, 1, 1, CNTLID_A), ==, ST_INVALID_FIELD);
    g_assert_cmpint(esub_ns(t, 3, 1, 1, 1, CNTLID_A), ==, ST_INVALID_FIELD);
    g_assert_cmpint(esub_ns(t, 1, 2, 1, 1, CNTLID_B), ==, 0);
    g_assert_cmpint(mcmd(t, OPC_EXP_PORT, 1, 1, 0, 0, 0, 0, NULL), ==,
                    ST_INVALID_SUBSYS);
    for (uint16_t s = 1; s <= 2; s++) {
        NxCmd c;

        nx_cmd(&c, OPC_EXP_PORT, 0);
        nx_cmd_dw(&c, 10, 1);
        nx_cmd_dw(&c, 11, 1);
        nx_cmd_dw(&c, 14, (uint32_t)s << 16);
        g_assert_cmpint(nx_exec(t->m, 0, &c, NULL), ==, 0);
        g_assert_cmpint(nx_exec(t->m, 0, &c, NULL), ==, ST_INVALID_FIELD);
    }

    /* Lists */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 1, 0, 0, 4096, mem, NULL), ==, 0);
    qtest_memread(t->qts, mem, list, sizeof(list));
    g_assert_cmpint(ldl_le_p(list), ==, 2);
    g_assert_cmpint(lduw_le_p(list + 8), ==, 1);
    g_assert_cmpint(lduw_le_p(list + 8 + 4), ==, 1);        /* NCTRL */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 2, 0, 1u << 16, 4096, mem, NULL),
                    ==, 0);
    qtest_memread(t->qts, mem, list, sizeof(list));
    g_assert_cmpint(ldl_le_p(list), ==, 1);
    g_assert_cmpint(ldl_le_p(list + 8), ==, 1);
    g_assert_cmpint(lduw_le_p(list + 16), ==, CNTLID_A);
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 3, 0, 1u << 16, 4096, mem, NULL),
                    ==, ST_INVALID_FIELD);          /* message-based */
    g_assert_cmpint(ecmd(t, OPC_ESUB_SEND, 2, 0, 1u << 16, 4096, mem, NULL),
                    ==, ST_INVALID_FIELD);

    /* Get A's subsystem state: its size, then all of it */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 5, 0, 1u << 16, 512, mem, &e),
                    ==, 0);
    g_assert_cmpint(e.dw0, ==, ECS_LEN);
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 5, 0, 1u << 16, 5 * 4096, mem,
                         NULL), ==, 0);
    qtest_memread(t->qts, mem, ecs, ECS_LEN);
    g_assert_cmpmem(ecs, 16, tmpl_uuid, 16);
    g_assert_cmpint(ldl_le_p(ecs + 20), ==, ECS_LEN);
    g_assert_cmpstr((char *)ecs + 32, ==,
                    "nqn.2026-12.org.iolab:nvme-export:esub1");

    /* B's subsystem refuses a state one bit off, naming the bit */
    memcpy(bad, ecs, ECS_LEN);
    bad[288 + 8208 + 8 + 26] ^= 0x02;       /* a namespace's FLBAS */
    qtest_memwrite(t->qts, mem, bad, ECS_LEN);
    g_assert_cmpint(ecmd(t, OPC_ESUB_SEND, 6, 0, 2u << 16, ECS_LEN, mem,
                         &e), ==, ST_INVALID_CONFIG);
    g_assert_cmpint(e.dw0 & 0x7ffffff, ==, (288 + 8208 + 8 + 26) / 4);
    g_assert_cmpint(e.dw0 >> 27, ==, ((288 + 8208 + 8 + 26) % 4) * 8 + 1);
    /* ... takes A's as it is, and with it A's NQN */
    qtest_memwrite(t->qts, mem, ecs, ECS_LEN);
    g_assert_cmpint(ecmd(t, OPC_ESUB_SEND, 6, 0, 2u << 16, ECS_LEN, mem,
                         &e), ==, 0);
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 1, 0, 0, 4096, mem, NULL), ==, 0);
    qtest_memread(t->qts, mem, list, sizeof(list));
    g_assert_cmpstr((char *)list + 8 + 264 + 8, ==,
                    "nqn.2026-12.org.iolab:nvme-export:esub1");

    /* An empty subsystem is shorter: it differs at LEN (dword 5) */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 1, 0, 256, mem, &e), ==, 0);
    g_assert_cmpint(e.dw0, ==, 3);
    qtest_memwrite(t->qts, mem, ecs, ECS_LEN);
    g_assert_cmpint(ecmd(t, OPC_ESUB_SEND, 6, 0, 3u << 16, ECS_LEN, mem,
                         &e), ==, ST_INVALID_CONFIG);
    g_assert_cmpint(e.dw0 & 0x7ffffff, ==, 5);

    /* Delete; then it is gone */
    g_assert_cmpint(ecmd(t, OPC_ESUB_SEND, 1, 0, 3u << 16, 4, mem, NULL), ==,
                    0);
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 5, 0, 3u << 16, 512, mem, NULL),
                    ==, ST_INVALID_SUBSYS);
    g_assert_cmpint(esub_ns(t, 2, 1, 1, 0, 0), ==, 0);
    g_assert_cmpint(esub_ns(t, 2, 1, 1, 0, 0), ==, ST_INVALID_FIELD);
    g_assert_true(logged(t, "exported subsystem 2: configuration state "
                         "differs at dword"));
    t_stop(t);
}

/* Get and Set Controller State in parts: offsets and SEQIND */
static void test_state_in_parts(void)
{
    T *t = t_start();
    g_autofree uint8_t *whole = g_malloc(4096);
    g_autofree uint8_t *parts = g_malloc0(4096);
    g_autofree uint8_t *again = g_malloc(4096);
    uint64_t mem = nx_alloc(t->m, 4096, 4096);
    uint32_t len, first, second;

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    g_assert_cmpint(get_state(t, CNTLID_A, true, whole, 4096, NULL), ==, 0);
    len = state_len(whole);
    /* Two reads: the header alone, then the rest from offset 48 */
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1u << 16, 1u << 16 | CNTLID_A, 0,
                         0, 48 / 4 - 1, mem, NULL), ==, 0);
    qtest_memread(t->qts, mem, parts, 48);
    g_assert_cmpint(mcmd(t, OPC_MIG_RECV, 1u << 16, 1u << 16 | CNTLID_A, 48,
                         0, (len - 48) / 4 - 1, mem, NULL), ==, 0);
    qtest_memread(t->qts, mem, parts + 48, len - 48);
    g_assert_cmpmem(parts, len, whole, len);

    /* Set on B in three parts: first, middle, last */
    first = 40;
    second = 32;
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    qtest_memwrite(t->qts, mem, whole, len);
    /* A middle part with nothing before it is refused */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, 0, 0, first / 4,
                         mem, NULL), ==, ST_INVALID_FIELD);
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 1u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, 0, 0, first / 4,
                         mem, NULL), ==, 0);
    /* A part at the wrong offset starts nothing and drops what was sent */
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, first + 4, 0,
                         second / 4, mem + first, NULL), ==,
                    ST_INVALID_FIELD);
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 1u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, 0, 0, first / 4,
                         mem, NULL), ==, 0);
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 0u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, first, 0,
                         second / 4, mem + first, NULL), ==, 0);
    g_assert_cmpint(mcmd(t, OPC_MIG_SEND, 2u << 16 | 2,
                         1u << 24 | 1u << 16 | CNTLID_B, first + second, 0,
                         (len - first - second) / 4, mem + first + second,
                         NULL), ==, 0);
    g_assert_cmpint(get_state(t, CNTLID_B, true, again, 4096, NULL), ==, 0);
    g_assert_cmpmem(again, len, whole, len);
    t_stop(t);
}

/* 800 random management commands: statuses, never a crash or a hang */
static void test_random_mgmt(void)
{
    T *t = t_start();
    uint64_t buf = nx_alloc(t->m, 8 * 4096, 4096);
    uint64_t wbuf = nx_alloc(t->a, 4096, 4096);
    static const uint8_t ops[] = {
        OPC_TRACK_SEND, OPC_MIG_SEND, OPC_MIG_RECV, OPC_CDQ, 0x2a, 0x2d,
        0x31, 0x35, 0x09, 0x0a, 0x06, 0x3e, 0x43,
    };
    GRand *rnd = g_rand_new_with_seed(g_getenv("NVMEX_SEED") ?
                                      atoi(g_getenv("NVMEX_SEED")) : 4159);
    uint8_t page_list[4096];
    NxCqe e;

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));
    /* PRP2 may point at a list of this buffer's pages */
    for (int i = 0; i < 512; i++) {
        stq_le_p(page_list + 8 * i, buf + 4096 * (1 + i % 6));
    }
    qtest_memwrite(t->qts, buf + 7 * 4096, page_list, sizeof(page_list));

    for (int i = 0; i < 800; i++) {
        NxCmd c;
        uint8_t opc = ops[g_rand_int_range(rnd, 0, G_N_ELEMENTS(ops))];
        uint64_t ptr = g_rand_int_range(rnd, 0, 8) ?
                       buf + 4096 * g_rand_int_range(rnd, 0, 4) :
                       (uint64_t)g_rand_int(rnd) << 12;

        nx_cmd(&c, opc, 0);
        nx_cmd_prp(&c, ptr, g_rand_boolean(rnd) ? buf + 7 * 4096 : ptr);
        for (int dw = 10; dw < 16; dw++) {
            uint32_t v = g_rand_int(rnd);

            switch (g_rand_int_range(rnd, 0, 3)) {
            case 0:
                v &= 0x3;       /* selects, ids 0..3 */
                break;
            case 1:
                v = (v & 0xff0000) | g_rand_int_range(rnd, 0, 6);
                break;
            }
            nx_cmd_dw(&c, dw, v);
        }
        if (opc == 0x09 || opc == 0x0a) {
            nx_cmd_dw(&c, 10, g_rand_int_range(rnd, 0, 4) ? 0x21 : 0x07);
        }
        if (opc == 0x06) {
            nx_cmd_dw(&c, 10, 0x20 + g_rand_int_range(rnd, 0, 3));
        }
        /* Mostly well-formed fields, so the commands reach their work */
        if (g_rand_int_range(rnd, 0, 4)) {
            uint16_t cntlid = g_rand_int_range(rnd, 1, 5);
            uint32_t sel = g_rand_int_range(rnd, 0, 3);

            switch (opc) {
            case OPC_CDQ:
                nx_cmd_dw(&c, 10, sel & 1);
                nx_cmd_dw(&c, 11, sel & 1 ? g_rand_int_range(rnd, 0, 6)
                                          : (uint32_t)cntlid << 16 | 1);
                nx_cmd_dw(&c, 12, 8 * g_rand_int_range(rnd, 3, 20));
                nx_cmd_prp(&c, buf + 4096 * g_rand_int_range(rnd, 0, 4), 0);
                break;
            case OPC_TRACK_SEND:
                nx_cmd_dw(&c, 10, g_rand_int_range(rnd, 0, 2) << 16);
                nx_cmd_dw(&c, 11, g_rand_int_range(rnd, 0, 6));
                break;
            case OPC_MIG_SEND:
                nx_cmd_dw(&c, 10, sel | 3u << 16);
                nx_cmd_dw(&c, 11, cntlid | (sel == 0 ? 1u << 16 |
                                            g_rand_int_range(rnd, 0, 2) << 31
                                            : 1u << 16 | 1u << 24));
                nx_cmd_dw(&c, 12, 0);
                nx_cmd_dw(&c, 13, 0);
                nx_cmd_dw(&c, 15, g_rand_int_range(rnd, 14, 200));
                nx_cmd_prp(&c, buf, 0);
                break;
            case OPC_MIG_RECV:
                nx_cmd_dw(&c, 10, 1u << 16);
                nx_cmd_dw(&c, 11, cntlid | g_rand_int_range(rnd, 0, 2) << 16);
                nx_cmd_dw(&c, 12, 0);
                nx_cmd_dw(&c, 13, 0);
                nx_cmd_dw(&c, 15, 1023);
                nx_cmd_prp(&c, buf, 0);
                break;
            case 0x2a: case 0x2d: case 0x31: case 0x35:
                nx_cmd_dw(&c, 10, g_rand_int_range(rnd, 0, 7));
                nx_cmd_dw(&c, 11, g_rand_int_range(rnd, 0, 3));
                nx_cmd_dw(&c, 14, g_rand_int_range(rnd, 0, 4) << 16);
                nx_cmd_dw(&c, 15, 1023);
                break;
            }
        }
        nx_queue(t->m, 0, &c);
        nx_ring(t->m, 0);
        while (nx_reap(t->m, 0, &e, 2000)) {
        }
        g_assert_false(nx_rd32(t->m, NX_CSTS) & 2);
        /* Writes on A feed whatever logging is on */
        if (i % 16 == 0 && t->a->sq[1].live) {
            rw_cmd(&c, 0x01, g_rand_int_range(rnd, 0, 4096), 1, wbuf);
            nx_queue(t->a, 1, &c);
            nx_ring(t->a, 1);
        }
    }
    g_rand_free(rnd);
    /* Everything answers still */
    resume(t, CNTLID_A);
    resume(t, CNTLID_B);
    g_assert_cmpint(nx_identify(t->m, 0x01, 0, 0, NULL), ==, 0);
    g_assert_cmpint(nx_identify(t->a, 0x01, 0, 0, NULL), ==, 0);
    g_assert_cmpint(nx_identify(t->b, 0x01, 0, 0, NULL), ==, 0);
    t_stop(t);
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

/* Point one driver at the same function in @dst, on @bus */
static void switch_dev(NxDev *d, QTestState *dst, QPCIBus *bus)
{
    QPCIDevice *pdev = qpci_device_find(bus, d->pdev->devfn);

    g_assert(pdev);
    /* The BAR was assigned on the source and migrated with config space */
    d->bar0.addr = qpci_config_readl(pdev, PCI_BASE_ADDRESS_0) & ~0xfull;
    d->bar0.addr |= (uint64_t)qpci_config_readl(pdev,
                                               PCI_BASE_ADDRESS_1) << 32;
    g_free(d->pdev);
    d->pdev = pdev;
    d->bus = bus;
    d->qts = dst;
}

/*
 * QEMU migrates the TP4159/TP4193 state: a queue being logged into goes on
 * with the next slot and phase, a suspended controller stays suspended, an
 * exported subsystem keeps its associations.
 */
static void test_qemu_migration(void)
{
    T *t = t_start();
    T *dst;
    g_autofree char *sock = g_strdup_printf("%s.mig", t->log);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *incoming = g_strdup_printf("-incoming %s", uri);
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    uint64_t mem = nx_alloc(t->m, 4096, 4096);
    uint8_t list[4096];
    QPCIBus *bus;
    Cdq q;

    child_ready(t->a, 16);
    g_assert_true(nx_enable(t->b, 16));
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 4), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 5, 1, buf), ==, 0);
    expect_entry(t, &q, 5, 1, ESA_FIRST, LBACIR_CHANGE);
    /* A migrates suspended and logging, B suspended */
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    g_assert_cmpint(cdq_set_head(t, &q), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, 0);
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 0, 1, 0, 256, mem, NULL), ==, 0);
    g_assert_cmpint(esub_assoc_ctrl(t, 1, CNTLID_A, 7), ==, 0);

    dst = t_start_full(t->img_a, t->img_b, CNTLID_B, incoming);
    g_assert_cmpstr(migrate(t->qts, uri), ==, "completed");
    unlink(sock);
    bus = qpci_new_pc(dst->qts, &t->alloc);
    switch_dev(t->m, dst->qts, bus);
    switch_dev(t->a, dst->qts, bus);
    switch_dev(t->b, dst->qts, bus);
    switch_dev(t->other, dst->qts, bus);
    qpci_free_pc(t->bus);
    qtest_quit(t->qts);
    t->bus = bus;
    t->qts = dst->qts;
    /* dst started no driver state: only its process and files count */
    unlink(dst->log);

    /*
     * Resumed, A logs on in the next slots, wrapping with the phase, its
     * first change since the resume marked first
     */
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(rw(t->a, 0x01, 6 + i, 1, buf), ==, 0);
        expect_entry(t, &q, 6 + i, 1, i ? ESA_NONE : ESA_FIRST,
                     LBACIR_CHANGE);
        g_assert_cmpint(cdq_set_head(t, &q), ==, 0);
    }
    g_assert_cmpint(q.phase, ==, 0);
    /* B is still suspended; A suspends again, then logging stops */
    g_assert_cmpint(suspend(t, CNTLID_B, false), ==, ST_SUSPENDED);
    g_assert_cmpint(resume(t, CNTLID_B), ==, 0);
    g_assert_cmpint(suspend(t, CNTLID_A, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_SUSPENDED, LBACIR_NONE);
    g_assert_cmpint(resume(t, CNTLID_A), ==, 0);
    g_assert_cmpint(track(t, &q, false), ==, 0);
    expect_entry(t, &q, 0, 0, ESA_STOPPED, LBACIR_NONE);
    /* The subsystem and its association */
    g_assert_cmpint(ecmd(t, OPC_ESUB_RECV, 1, 0, 0, 4096, mem, NULL), ==, 0);
    qtest_memread(t->qts, mem, list, sizeof(list));
    g_assert_cmpint(ldl_le_p(list), ==, 1);
    g_assert_cmpint(lduw_le_p(list + 8 + 4), ==, 1);
    g_assert_cmpint(esub_assoc_ctrl(t, 1, CNTLID_A, 8), ==, ST_INVALID_ASSOC);
    g_free(dst->img_a);
    g_free(dst->img_b);
    g_free(dst->log);
    close(dst->fd_a);
    close(dst->fd_b);
    g_free(dst);
    t_stop(t);
}

/*
 * Load the stream in @file into a destination QEMU started with the
 * devices @devices; its migration status, stderr in @errlog.  A
 * destination that dies in the load fails the test here.
 */
static char *load_into(const char *file, const char *devices,
                       const char *errlog)
{
    g_autofree char *args = g_strdup_printf(
        "-machine pc -m 256 -nodefaults %s -incoming defer 2>%s",
        devices, errlog);
    QTestState *dst = qtest_init(args);
    char *status;

    status = iolab_migrate_load_file(dst, file, 15 * G_USEC_PER_SEC, NULL);
    /* The load is over: QEMU must still answer */
    qtest_qmp_assert_success(dst, "{ 'execute': 'query-status' }");
    qtest_quit(dst);
    return status;
}

/*
 * Load the stream in @file into a destination with the devices
 * @devices: it must load, or, if @refusal is set, be refused with
 * @refusal in its stderr (in @errlog).
 */
static void assert_load_into(const char *file, const char *devices,
                             const char *errlog, const char *refusal)
{
    g_autofree char *st = load_into(file, devices, errlog);
    g_autofree char *err = NULL;

    g_assert_cmpstr(st, ==, refusal ? "failed" : "completed");
    if (refusal) {
        g_assert_true(g_file_get_contents(errlog, &err, NULL, NULL));
        g_assert_nonnull(strstr(err, refusal));
    }
}

/*
 * Every controller shares one VMState, so the stream, not the
 * destination, says which subsections come: the TP4159 ones sent to
 * controllers that cannot take them must be refused, by name.  A's
 * nvme-export/lm (logging into CDQ 1) to an A with no mgmt= once logged
 * through a NULL management controller (segmentation fault); m0's
 * nvme-export/mgmt to a plain nvme-export once loaded its queues past
 * the end of the smaller object (a heap overflow; the QOM cast in its
 * post_load aborted).
 */
static void test_subsection_to_wrong_controller(void)
{
    T *t = t_start();
    g_autofree char *file = g_strdup_printf("%s.stream", t->log);
    g_autofree char *errlog = g_strdup_printf("%s.err", t->log);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *img_m = tmp_file("m", NULL);
    uint64_t buf = nx_alloc(t->a, BLK, 4096);
    g_autofree char *same = NULL;
    g_autofree char *unmanaged = NULL;
    g_autofree char *plain_m0 = NULL;
    Cdq q;

    child_ready(t->a, 16);
    g_assert_cmpint(cdq_create(t, &q, CNTLID_A, 4), ==, 0);
    g_assert_cmpint(track(t, &q, true), ==, 0);
    g_assert_cmpint(rw(t->a, 0x01, 5, 1, buf), ==, 0);
    g_assert_cmpstr(migrate(t->qts, uri), ==, "completed");

    same = controllers(t->img_a, t->img_b, NULL, true, true, CNTLID_B);
    /*
     * A without mgmt=; m0 manages a CNTLID A in another slot, so that
     * m0's queue for CNTLID A loads and A's own section is reached.
     */
    unmanaged = controllers(t->img_a, t->img_b, NULL, false, true, CNTLID_A);
    plain_m0 = controllers(t->img_a, t->img_b, img_m, false, false, CNTLID_B);
    g_assert_cmpint(truncate(img_m, IMG_SIZE), ==, 0);

    /* The same devices take the stream: the refusals are the devices' */
    assert_load_into(file, same, errlog, NULL);
    assert_load_into(file, unmanaged, errlog,
                     "nvme-export/lm sent to a controller with no mgmt=");
    assert_load_into(file, plain_m0, errlog,
                     "nvme-export/mgmt sent to a controller "
                     "that is not a management controller");
    unlink(file);
    unlink(errlog);
    unlink(img_m);
    t_stop(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/iolab/nvme-export-mgmt/identify", test_identify);
    qtest_add_func("/iolab/nvme-export-mgmt/cdq-wrap-phase",
                   test_cdq_wrap_phase);
    qtest_add_func("/iolab/nvme-export-mgmt/cdq-full", test_cdq_full);
    qtest_add_func("/iolab/nvme-export-mgmt/suspend-resume",
                   test_suspend_resume);
    qtest_add_func("/iolab/nvme-export-mgmt/logging-across-suspend",
                   test_logging_across_suspend);
    qtest_add_func("/iolab/nvme-export-mgmt/errors", test_errors);
    qtest_add_func("/iolab/nvme-export-mgmt/controller-reset",
                   test_controller_reset);
    qtest_add_func("/iolab/nvme-export-mgmt/migrate-a-to-b",
                   test_migrate_a_to_b);
    qtest_add_func("/iolab/nvme-export-mgmt/nvme-cli-fields",
                   test_nvme_cli_fields);
    qtest_add_func("/iolab/nvme-export-mgmt/qemu-to-qemu",
                   test_qemu_to_qemu);
    qtest_add_func("/iolab/nvme-export-mgmt/exported-subsystems",
                   test_exported_subsystems);
    qtest_add_func("/iolab/nvme-export-mgmt/state-in-parts",
                   test_state_in_parts);
    qtest_add_func("/iolab/nvme-export-mgmt/random", test_random_mgmt);
    qtest_add_func("/iolab/nvme-export-mgmt/qemu-migration",
                   test_qemu_migration);
    qtest_add_func("/iolab/nvme-export-mgmt/subsection-to-wrong-controller",
                   test_subsection_to_wrong_controller);
    qtest_add_func("/iolab/nvme-export-mgmt/bad-config", test_bad_config);
    return g_test_run();
}
