/*
 * Mutator scenario for nvme-export.
 *
 * The source ends with the controller enabled, two I/O queue pairs (one
 * with a 2-entry CQ whose overflow leaves completions parked in the
 * controller), a feature set, and two Asynchronous Event Requests
 * outstanding: the stream carries registers, every SQ/CQ, features,
 * SMART, the error log, the AER/AEN state and the parked completions.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "nvme-export-driver.h"
#include "mig-mutator.h"

#define NVME_VID            0x1b36
#define NVME_DID            0x0115
#define NVME_CSTS_CFS       0x2

typedef struct NvmeDrv {
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *d;
    uint64_t buf;
} NvmeDrv;

static char *nvmex_mut_args(MutRun *r)
{
    return g_strdup_printf("-machine pc -m 32 -nodefaults "
                           "-drive if=none,id=d0,file=%s,format=raw,"
                           "file.locking=off "
                           "-device nvme-export,id=nx0,drive=d0", r->img[0]);
}

static void nvmex_mut_read(NvmeDrv *v, uint16_t qid, uint64_t slba)
{
    NxCmd c;

    nx_cmd(&c, 0x02, 1);
    nx_cmd_prp(&c, v->buf, 0);
    nx_cmd_dw(&c, 10, slba);
    nx_queue(v->d, qid, &c);
}

static void nvmex_mut_source(MutRun *r)
{
    NvmeDrv *v = g_new0(NvmeDrv, 1);
    g_autofree char *args = r->sc->args(r);
    NxCmd c;

    r->priv = v;
    r->qts = qtest_init(args);
    pc_alloc_init(&v->alloc, r->qts, 0);
    v->bus = qpci_new_pc(r->qts, &v->alloc);
    v->d = nx_find(r->qts, &v->alloc, v->bus, NVME_VID, NVME_DID);
    g_assert(v->d);
    g_assert(nx_enable(v->d, 32));
    g_assert_cmpint(nx_set_features(v->d, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmpint(nx_create_ioq(v->d, 1, 16), ==, 0);
    v->buf = nx_alloc(v->d, 4096, 4096);
    qtest_memset(r->qts, v->buf, 0x5a, 4096);
    nx_cmd(&c, 0x01, 1);
    nx_cmd_prp(&c, v->buf, 0);
    g_assert_cmpint(nx_exec(v->d, 1, &c, NULL), ==, 0);
    g_assert_cmpint(nx_set_features(v->d, 0x01, 0x03020107, NULL), ==, 0);
    /* Two AERs outstanding */
    for (int i = 0; i < 2; i++) {
        nx_cmd(&c, 0x0c, 0);
        nx_queue(v->d, 0, &c);
    }
    nx_ring(v->d, 0);
    /* Pair 2: a 2-entry CQ, four reads: completions wait in the device */
    g_assert_cmpint(nx_create_ioq_sizes(v->d, 2, 8, 2), ==, 0);
    for (int i = 0; i < 4; i++) {
        nvmex_mut_read(v, 2, i);
    }
    nx_ring(v->d, 2);
    g_usleep(200 * 1000);
}

static void nvmex_mut_attach(MutRun *r, QTestState *dst)
{
    NvmeDrv *v = r->priv;

    /* BAR0 stays where the source put it: config space migrated */
    v->bus->qts = dst;
    v->d->qts = dst;
}

/* CSTS, an Identify on the admin queue, a read on each I/O queue */
static MutTouch nvmex_mut_touch(MutRun *r)
{
    NvmeDrv *v = r->priv;
    bool answered = false;
    NxCqe e;
    NxCmd c;

    if (nx_rd32(v->d, NX_CSTS) & NVME_CSTS_CFS) {
        return TOUCH_ERROR_STATE;
    }
    nx_cmd(&c, 0x06, 0);
    nx_cmd_prp(&c, v->buf, 0);
    nx_cmd_dw(&c, 10, 1);
    nx_queue(v->d, 0, &c);
    nx_ring(v->d, 0);
    nvmex_mut_read(v, 1, 0);
    nx_ring(v->d, 1);
    nvmex_mut_read(v, 2, 0);
    nx_ring(v->d, 2);
    for (uint16_t q = 0; q < 3; q++) {
        answered |= nx_reap(v->d, q, &e, r->touch_us / 3);
    }
    if (nx_rd32(v->d, NX_CSTS) & NVME_CSTS_CFS) {
        return TOUCH_ERROR_STATE;
    }
    return answered ? TOUCH_ANSWERED : TOUCH_SILENT;
}

static const char *const nvmex_mut_sections[] = { "/nvme-export", NULL };

const MutScenario mut_nvme_export = {
    .name = "nvme-export",
    .qom_type = "nvme-export",
    .sections = nvmex_mut_sections,
    .args = nvmex_mut_args,
    .source = nvmex_mut_source,
    .attach = nvmex_mut_attach,
    .touch = nvmex_mut_touch,
};

/*
 * The TP4159/TP4193 subsections: a management controller m0 with a User
 * Data Migration Queue logging controller A's changes and an exported
 * subsystem A is associated with; A has an I/O queue pair.  The stream
 * carries m0's and A's nvme-export sections with the nvme-export/mgmt and
 * nvme-export/lm subsections.
 */
#define NVME_MGMT_DEVFN     QPCI_DEVFN(4, 0)
#define NVME_CHILD_DEVFN    QPCI_DEVFN(5, 0)

typedef struct NvmeMgmtDrv {
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *m, *a;
    uint64_t buf, cdq;
} NvmeMgmtDrv;

static char *nvmex_mgmt_mut_args(MutRun *r)
{
    return g_strdup_printf("-machine pc -m 32 -nodefaults "
                           "-drive if=none,id=d0,file=%s,format=raw,"
                           "file.locking=off "
                           "-device nvme-export-mgmt,id=m0,cntlid=1,addr=4 "
                           "-device nvme-export,id=a,mgmt=m0,cntlid=2,"
                           "drive=d0,addr=5", r->img[0]);
}

static void nvmex_mgmt_mut_source(MutRun *r)
{
    NvmeMgmtDrv *v = g_new0(NvmeMgmtDrv, 1);
    g_autofree char *args = r->sc->args(r);
    uint64_t mem;
    uint8_t assoc[8] = { 1, 0, 0, 0, 2, 0, 1, 0 };
    NxCqe e;
    NxCmd c;

    r->priv = v;
    r->qts = qtest_init(args);
    pc_alloc_init(&v->alloc, r->qts, 0);
    v->bus = qpci_new_pc(r->qts, &v->alloc);
    v->m = nx_find_at(r->qts, &v->alloc, v->bus, NVME_MGMT_DEVFN);
    v->a = nx_find_at(r->qts, &v->alloc, v->bus, NVME_CHILD_DEVFN);
    g_assert(v->m && v->a);
    g_assert(nx_enable(v->m, 16));
    g_assert(nx_enable(v->a, 16));
    g_assert_cmpint(nx_set_features(v->a, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmpint(nx_create_ioq(v->a, 1, 16), ==, 0);
    v->buf = nx_alloc(v->a, 4096, 4096);

    /* A 16-entry queue for A, logging, one change logged */
    v->cdq = nx_alloc(v->m, 4096, 4096);
    qtest_memset(r->qts, v->cdq, 0, 4096);
    nx_cmd(&c, 0x45, 0);
    nx_cmd_prp(&c, v->cdq, 0);
    nx_cmd_dw(&c, 11, 2u << 16 | 1);
    nx_cmd_dw(&c, 12, 16 * 8);
    g_assert_cmpint(nx_exec(v->m, 0, &c, &e), ==, 0);
    nx_cmd(&c, 0x3d, 0);
    nx_cmd_dw(&c, 10, 1u << 16);
    nx_cmd_dw(&c, 11, e.dw0 & 0xffff);
    g_assert_cmpint(nx_exec(v->m, 0, &c, NULL), ==, 0);
    nx_cmd(&c, 0x01, 1);
    nx_cmd_prp(&c, v->buf, 0);
    g_assert_cmpint(nx_exec(v->a, 1, &c, NULL), ==, 0);

    /* An exported subsystem with A */
    mem = nx_alloc(v->m, 4096, 4096);
    nx_cmd(&c, 0x2a, 0);
    nx_cmd_prp(&c, mem, 0);
    nx_cmd_dw(&c, 11, 1);
    nx_cmd_dw(&c, 15, 63);
    g_assert_cmpint(nx_exec(v->m, 0, &c, NULL), ==, 0);
    qtest_memwrite(r->qts, mem, assoc, sizeof(assoc));
    nx_cmd(&c, 0x2d, 0);
    nx_cmd_prp(&c, mem, 0);
    nx_cmd_dw(&c, 10, 5);
    nx_cmd_dw(&c, 14, 1u << 16);
    nx_cmd_dw(&c, 15, 1);
    g_assert_cmpint(nx_exec(v->m, 0, &c, NULL), ==, 0);
}

static void nvmex_mgmt_mut_attach(MutRun *r, QTestState *dst)
{
    NvmeMgmtDrv *v = r->priv;

    v->bus->qts = dst;
    v->m->qts = dst;
    v->a->qts = dst;
}

/* m0: Identify and Get Features 21h; A: a write (logged) */
static MutTouch nvmex_mgmt_mut_touch(MutRun *r)
{
    NvmeMgmtDrv *v = r->priv;
    bool answered = false;
    NxCqe e;
    NxCmd c;

    if ((nx_rd32(v->m, NX_CSTS) | nx_rd32(v->a, NX_CSTS)) &
        NVME_CSTS_CFS) {
        return TOUCH_ERROR_STATE;
    }
    nx_cmd(&c, 0x06, 0);
    nx_cmd_prp(&c, v->buf, 0);
    nx_cmd_dw(&c, 10, 1);
    nx_queue(v->m, 0, &c);
    nx_cmd(&c, 0x0a, 0);
    nx_cmd_prp(&c, v->buf, 0);
    nx_cmd_dw(&c, 10, 0x21);
    nx_cmd_dw(&c, 11, 1);
    nx_queue(v->m, 0, &c);
    nx_ring(v->m, 0);
    nx_cmd(&c, 0x01, 1);
    nx_cmd_prp(&c, v->buf, 0);
    nx_cmd_dw(&c, 10, 7);
    nx_queue(v->a, 1, &c);
    nx_ring(v->a, 1);
    answered |= nx_reap(v->m, 0, &e, r->touch_us / 2);
    answered |= nx_reap(v->a, 1, &e, r->touch_us / 2);
    if ((nx_rd32(v->m, NX_CSTS) | nx_rd32(v->a, NX_CSTS)) &
        NVME_CSTS_CFS) {
        return TOUCH_ERROR_STATE;
    }
    return answered ? TOUCH_ANSWERED : TOUCH_SILENT;
}

const MutScenario mut_nvme_export_mgmt = {
    .name = "nvme-export-mgmt",
    .qom_type = "nvme-export-mgmt",
    .sections = nvmex_mut_sections,
    .args = nvmex_mgmt_mut_args,
    .source = nvmex_mgmt_mut_source,
    .attach = nvmex_mgmt_mut_attach,
    .touch = nvmex_mgmt_mut_touch,
};
