/*
 * qtests for vdpa-mgmt: the admin queue, blk instances on the shared
 * virtqueue engine, per-queue MSI messages, scale and bad input
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qjson.h"
#include "qapi/error.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vdpa-mgmt-aq.h"
#include "iolab-migrate-wait.h"

#define IMG_SIZE (1 * 1024 * 1024)
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

#define FEATURES_OK_STATUS (VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER | \
                            VDPA_ST_FEATURES_OK)
#define RUNNING_STATUS (FEATURES_OK_STATUS | VDPA_ST_DRIVER_OK)

typedef struct T {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VMAdmin *a;
    char *img[2];
} T;

static T *t_start_with(const char *prefix, const char *extra,
                       uint32_t aq_size)
{
    T *t = g_new0(T, 1);
    g_autofree char *args = NULL;

    for (int i = 0; i < 2; i++) {
        g_autoptr(GError) err = NULL;
        int fd = g_file_open_tmp("vdpa-mgmt-XXXXXX.img", &t->img[i], &err);

        g_assert_no_error(err);
        g_assert_cmpint(ftruncate(fd, IMG_SIZE), ==, 0);
        close(fd);
    }
    args = g_strdup_printf("-M q35 -m 512M -nodefaults %s "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1%s",
                           prefix, t->img[0], t->img[1], extra);
    t->qts = qtest_init(args);
    pc_alloc_init(&t->alloc, t->qts, 0);
    t->bus = qpci_new_pc(t->qts, &t->alloc);
    t->a = vm_open(t->qts, &t->alloc, t->bus, aq_size);
    return t;
}

static T *t_start(const char *extra, uint32_t aq_size)
{
    return t_start_with("", extra, aq_size);
}

static void t_stop(T *t)
{
    vm_close(t->a);
    qpci_free_pc(t->bus);
    alloc_destroy(&t->alloc);
    qtest_quit(t->qts);
    for (int i = 0; i < 2; i++) {
        if (t->img[i]) {        /* none when the test used null-co */
            unlink(t->img[i]);
            g_free(t->img[i]);
        }
    }
    g_free(t);
}

static void expect_at(VMCqe c, uint16_t status, uint16_t qual, int line)
{
    if (c.status != status || c.qual != qual) {
        g_test_message("line %d: status %u qualifier 0x%x", line, c.status,
                       c.qual);
    }
    g_assert_cmpuint(c.status, ==, status);
    g_assert_cmphex(c.qual, ==, qual);
}

#define expect(c, status, qual) expect_at(c, status, qual, __LINE__)

/* A command on instance @id with no arguments, expected to succeed */
static void vm_cmd_exec_ok(VMAdmin *a, uint16_t op, uint32_t id)
{
    VdpaCmd c = vm_cmd_new(a, op, id);

    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
}

/* The function's entry of query-vdpa-mgmt (caller unrefs the reply) */
static QDict *query(QTestState *qts, bool brief, QDict **reply)
{
    QList *list;

    *reply = qtest_qmp(qts, "{'execute': 'query-vdpa-mgmt', "
                       "'arguments': {'brief': %i}}", brief);
    g_assert(qdict_haskey(*reply, "return"));
    list = qdict_get_qlist(*reply, "return");
    g_assert_cmpuint(qlist_size(list), ==, 1);
    return qobject_to(QDict, qlist_peek(list));
}

/* Create a blk instance and bring it to DRIVER_OK with queue rings */
static uint32_t bring_up(VMAdmin *a, VMRing *rings, uint16_t nq,
                         uint32_t backend)
{
    uint32_t id = vm_create_blk(a, nq, backend);

    vm_set_status(a, id, FEATURES_OK_STATUS, VM_F_VERSION_1);
    for (uint16_t q = 0; q < nq; q++) {
        VdpaCmd c;

        vm_ring_init(&rings[q], guest_alloc(a->alloc, VM_RING_BYTES));
        c = vm_ring_setup_cmd(a, &rings[q], id, q);
        expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    }
    vm_set_status(a, id, RUNNING_STATUS, VM_F_VERSION_1);
    return id;
}

static void test_discover(void)
{
    T *t = t_start(",max-instances=100", 16);
    VdpaCmd c = vm_cmd_new(t->a, VDPA_OP_DISCOVER, 0);
    uint8_t d[VDPA_DISCOVER_SIZE];
    QDict *reply, *info;

    g_assert_cmpuint(vm_reg_read(t->a, VDPA_REG_MAX_INST), ==, 100);
    c.buf_addr = t->a->buf;
    c.buf_len = VDPA_DISCOVER_SIZE;
    expect(vm_exec(t->a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memread(t->qts, t->a->buf, d, sizeof(d));
    g_assert_cmpuint(ldl_le_p(d + VDPA_DISC_MAX_INST), ==, 100);
    g_assert_cmpuint(ldl_le_p(d + VDPA_DISC_NUM_INST), ==, 0);
    g_assert_cmpuint(lduw_le_p(d + VDPA_DISC_MAX_QUEUES), ==, 16);
    g_assert_cmpuint(ldl_le_p(d + VDPA_DISC_TYPES), ==, 1u << VDPA_TYPE_BLK);
    g_assert_cmpuint(ldl_le_p(d + VDPA_DISC_NUM_BLK), ==, 2);
    g_assert_cmpuint(d[VDPA_DISC_PASID_BITS], ==, 0);
    g_assert_true(ldq_le_p(d + VDPA_DISC_BLK_FEAT) & VM_F_VERSION_1);

    info = query(t->qts, true, &reply);
    g_assert_cmpstr(qdict_get_str(info, "id"), ==, "vm0");
    g_assert_cmpint(qdict_get_int(info, "max-instances"), ==, 100);
    g_assert_true(qdict_get_bool(info, "admin-queue-ready"));
    g_assert_false(qdict_haskey(info, "instances"));
    qobject_unref(reply);
    t_stop(t);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 7);
    }
}

static void test_blk_lifecycle(void)
{
    T *t = t_start("", 16);
    VMAdmin *a = t->a;
    VMRing r, r1;
    uint64_t data = guest_alloc(&t->alloc, 4096);
    uint64_t msi = guest_alloc(&t->alloc, 16);
    uint8_t out[4096], in[4096], buf[VDPA_QUERY_SIZE];
    uint32_t id, id1;
    VdpaCmd c;
    QDict *reply, *info, *inst;
    g_autofree char *hmp = NULL;

    id = bring_up(a, &r, 1, 0);
    vm_set_msi(a, id, 0, msi, 0xc0de0001, false);
    qtest_writel(t->qts, msi, 0);

    /* Write a pattern, read it back into another buffer */
    fill(out, sizeof(out), 3);
    qtest_memwrite(t->qts, data, out, sizeof(out));
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_OUT, 8, data, 4096), ==,
                    BLK_S_OK);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0xc0de0001);
    qtest_memset(t->qts, data, 0, 4096);
    qtest_writel(t->qts, msi, 0);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, 8, data, 4096), ==,
                    BLK_S_OK);
    qtest_memread(t->qts, data, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0xc0de0001);
    /* Beyond the disk: I/O error, not a crash */
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, BLK_T_IN, IMG_SIZE / 512, data,
                              512), ==, BLK_S_IOERR);
    g_assert_cmpint(vm_blk_io(a, &r, id, 0, 77, 0, data, 0), ==,
                    BLK_S_UNSUPP);

    /* Another instance on the other backend sees the other disk */
    id1 = bring_up(a, &r1, 1, 1);
    g_assert_cmpuint(id1, !=, id);
    g_assert_cmpint(vm_blk_io(a, &r1, id1, 0, BLK_T_IN, 8, data, 4096), ==,
                    BLK_S_OK);
    qtest_memread(t->qts, data, in, sizeof(in));
    for (int i = 0; i < 4096; i++) {
        g_assert_cmpuint(in[i], ==, 0);
    }

    /* Config: capacity in sectors */
    c = vm_cmd_new(a, VDPA_OP_CONFIG_READ, id);
    c.buf_addr = a->buf;
    c.buf_len = 8;
    c.u.cfg.offset = 0;
    c.u.cfg.length = 8;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmpuint(qtest_readq(t->qts, a->buf), ==, IMG_SIZE / 512);

    /* Query and stats */
    c = vm_cmd_new(a, VDPA_OP_QUERY, id);
    c.buf_addr = a->buf;
    c.buf_len = VDPA_QUERY_SIZE;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memread(t->qts, a->buf, buf, sizeof(buf));
    g_assert_cmpuint(ldl_le_p(buf + VDPA_QR_ID), ==, id);
    g_assert_cmpuint(buf[VDPA_QR_TYPE], ==, VDPA_TYPE_BLK);
    g_assert_cmpuint(buf[VDPA_QR_STATUS], ==, RUNNING_STATUS);
    g_assert_cmphex((uint32_t)ldl_le_p(buf + VDPA_QR_PASID), ==, VDPA_NO_PASID);
    g_assert_cmpuint(ldl_le_p(buf + VDPA_QR_QENABLED), ==, 1);
    c = vm_cmd_new(a, VDPA_OP_STATS, id);
    c.buf_addr = a->buf;
    c.buf_len = VDPA_STATS_SIZE;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memread(t->qts, a->buf, buf, VDPA_STATS_SIZE);
    g_assert_cmpuint(ldq_le_p(buf + VDPA_SR_REQUESTS), ==, 4);
    g_assert_cmpuint(ldq_le_p(buf + VDPA_SR_KICKS), ==, 4);
    g_assert_cmpuint(ldq_le_p(buf + VDPA_SR_BYTES_WR), ==, 4096);
    g_assert_cmpuint(ldq_le_p(buf + VDPA_SR_BYTES_RD), ==, 4096);
    g_assert_cmpuint(ldq_le_p(buf + VDPA_SR_INTERRUPTS), ==, 4);

    /* List: both ids, in order */
    c = vm_cmd_new(a, VDPA_OP_LIST, 0);
    c.buf_addr = a->buf;
    c.buf_len = 64;
    {
        VMCqe lr = vm_exec(a, &c);

        expect(lr, VDPA_S_OK, VDPA_Q_OK);
        g_assert_cmpuint(lr.result & 0xffffffff, ==, 2);
        g_assert_cmpuint(lr.result >> 32, ==, 0);
        g_assert_cmpuint(qtest_readl(t->qts, a->buf), ==, MIN(id, id1));
        g_assert_cmpuint(qtest_readl(t->qts, a->buf + 4), ==, MAX(id, id1));
    }

    info = query(t->qts, false, &reply);
    g_assert_cmpint(qdict_get_int(info, "num-instances"), ==, 2);
    /* No VPRI, no PASID: the data went straight to and from guest memory */
    g_assert_cmpint(qdict_get_int(info, "blk-mapped-requests"), >=, 3);
    inst = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "instances")));
    g_assert_cmpint(qdict_get_int(inst, "id"), ==, id);
    g_assert_cmpstr(qdict_get_str(inst, "type"), ==, "blk");
    g_assert_cmpstr(qdict_get_str(inst, "state"), ==, "running");
    g_assert_false(qdict_haskey(inst, "pasid"));
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(inst, "counters"),
                                  "requests"), ==, 4);
    qobject_unref(reply);
    hmp = qtest_hmp(t->qts, "info vdpa-mgmt");
    g_assert_nonnull(strstr(hmp, "vm0: 2/65536 instances"));
    g_assert_nonnull(strstr(hmp, "blk running queues 1/1"));
    g_assert_nonnull(strstr(hmp, "translation cache 0 entries"));
    g_free(hmp);
    /* -b, query-vdpa-mgmt's brief: the function without its instances */
    hmp = qtest_hmp(t->qts, "info vdpa-mgmt -b");
    g_assert_nonnull(strstr(hmp, "vm0: 2/65536 instances"));
    g_assert_nonnull(strstr(hmp, "translation cache 0 entries"));
    g_assert_null(strstr(hmp, "blk running"));
    g_free(hmp);
    hmp = qtest_hmp(t->qts, "info vdpa-mgmt -x");
    g_assert_nonnull(strstr(hmp, "unsupported option -x"));
    g_assert_null(strstr(hmp, "vm0:"));

    vm_destroy(a, id);
    vm_destroy(a, id1);
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, 0);
    t_stop(t);
}

/* Each queue of each instance interrupts with its own stored message */
static void test_msi_per_queue(void)
{
    T *t = t_start("", 16);
    VMAdmin *a = t->a;
    VMRing r[2][2];
    uint32_t id[2];
    uint64_t msi = guest_alloc(&t->alloc, 64);
    uint64_t data = guest_alloc(&t->alloc, 512);
    VdpaCmd c;

    qtest_memset(t->qts, msi, 0, 64);
    for (int i = 0; i < 2; i++) {
        id[i] = bring_up(a, r[i], 2, 0);
        for (int q = 0; q < 2; q++) {
            vm_set_msi(a, id[i], q, msi + 16 * i + 4 * q,
                       0x1000 * (i + 1) + q, false);
        }
    }
    for (int i = 0; i < 2; i++) {
        for (int q = 0; q < 2; q++) {
            g_assert_cmpint(vm_blk_io(a, &r[i][q], id[i], q, BLK_T_IN, q,
                                      data, 512), ==, BLK_S_OK);
            /* This message arrived, the ones not used yet did not */
            for (int j = 0; j < 2; j++) {
                for (int p = 0; p < 2; p++) {
                    uint32_t v = qtest_readl(t->qts, msi + 16 * j + 4 * p);
                    bool done = j < i || (j == i && p <= q);

                    g_assert_cmphex(v, ==, done ? 0x1000 * (j + 1) + p : 0);
                }
            }
        }
    }

    /* Masked: the interrupt is held, and delivered on unmask */
    qtest_writel(t->qts, msi, 0);
    vm_set_msi(a, id[0], 0, msi, 0xabcd, true);
    g_assert_cmpint(vm_blk_io(a, &r[0][0], id[0], 0, BLK_T_IN, 0, data, 512),
                    ==, BLK_S_OK);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0);
    vm_set_msi(a, id[0], 0, msi + 32, 0xabce, false);
    g_assert_cmphex(qtest_readl(t->qts, msi + 32), ==, 0xabce);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0);

    /* A queue the instance does not have */
    c = vm_cmd_new(a, VDPA_OP_SET_QUEUE_MSI, id[0]);
    c.u.msi.queue = 2;
    c.u.msi.addr = msi;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    t_stop(t);
}

static void test_suspend_resume(void)
{
    T *t = t_start("", 16);
    VMAdmin *a = t->a;
    VMRing r;
    uint64_t data = guest_alloc(&t->alloc, 512);
    uint32_t id = bring_up(a, &r, 1, 0);
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_SUSPEND, id);

    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, data, 512);
    /* Let the main loop run a while: nothing may complete */
    for (int i = 0; i < 50; i++) {
        vm_reg_read(a, VDPA_REG_STATUS);
        g_usleep(1000);
    }
    g_assert_cmpuint(qtest_readw(t->qts, r.used + 2), ==, 0);
    c = vm_cmd_new(a, VDPA_OP_RESUME, id);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmpint(vm_blk_wait(a, &r), ==, BLK_S_OK);
    t_stop(t);
}

static void test_bad_input(void)
{
    T *t = t_start(",max-instances=4", 16);
    VMAdmin *a = t->a;
    VMRing r, bad;
    uint32_t ids[4];
    VdpaCmd c;
    QDict *reply, *info;

    /* Unknown commands, wrong group type, reserved fields */
    c = vm_cmd_new(a, 0x0fff, 0);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
    c = vm_cmd_new(a, 0x7fff, 1);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
    c = vm_cmd_new(a, VDPA_OP_DESTROY, 1);
    c.group_type = 1;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_GROUP);
    c = vm_cmd_new(a, VDPA_OP_DESTROY, 1);
    c.rsvd1 = 5;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_COMMAND);

    /* Bad instance ids */
    c = vm_cmd_new(a, VDPA_OP_DESTROY, 0);
    expect(vm_exec(a, &c), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
    c = vm_cmd_new(a, VDPA_OP_SUSPEND, 5);
    expect(vm_exec(a, &c), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
    c = vm_cmd_new(a, VDPA_OP_SUSPEND, 3);
    expect(vm_exec(a, &c), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);

    /* More instances than the limit */
    for (int i = 0; i < 4; i++) {
        ids[i] = vm_create_blk(a, 1, 0);
    }
    c = vm_cmd_new(a, VDPA_OP_CREATE, 0);
    c.u.create.type = VDPA_TYPE_BLK;
    c.u.create.nqueues = 1;
    expect(vm_exec(a, &c), VDPA_S_ENOSPC, VDPA_Q_NORESOURCE);
    /* Bad create fields: type, backend, queues, features */
    c.u.create.backend = 2;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BAD_BACKEND);
    c.u.create.backend = 0;
    c.u.create.type = VDPA_TYPE_NET;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.type = VDPA_TYPE_BLK;
    c.u.create.nqueues = 17;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);

    /* Double destroy */
    vm_destroy(a, ids[3]);
    c = vm_cmd_new(a, VDPA_OP_DESTROY, ids[3]);
    expect(vm_exec(a, &c), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);

    /* PASID without a vIOMMU */
    c = vm_cmd_new(a, VDPA_OP_BIND_PASID, ids[0]);
    c.u.pasid.pasid = 5;
    expect(vm_exec(a, &c), VDPA_S_ENXIO, VDPA_Q_PASID_UNSUPP);

    /* Order: queues need FEATURES_OK, DRIVER_OK needs FEATURES_OK */
    vm_ring_init(&r, guest_alloc(&t->alloc, VM_RING_BYTES));
    c = vm_ring_setup_cmd(a, &r, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_EBUSY, VDPA_Q_BAD_STATE);
    c = vm_cmd_new(a, VDPA_OP_SET_STATUS, ids[0]);
    c.u.status.status = VDPA_ST_DRIVER_OK;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    /* Features not offered, or without VERSION_1 */
    c.u.status.status = FEATURES_OK_STATUS;
    c.u.status.features = 1ULL << 60;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.status.features = 0;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    vm_set_status(a, ids[0], FEATURES_OK_STATUS, VM_F_VERSION_1);

    /* Ring pointers out of range: unbacked, past the DMA space, unaligned */
    bad = r;
    bad.desc = 0x7f0000000000ULL;
    c = vm_ring_setup_cmd(a, &bad, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    bad = r;
    bad.used = 1ULL << 50;
    c = vm_ring_setup_cmd(a, &bad, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    bad = r;
    bad.desc += 8;
    c = vm_ring_setup_cmd(a, &bad, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c = vm_ring_setup_cmd(a, &r, ids[0], 1);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    c = vm_ring_setup_cmd(a, &r, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    vm_set_status(a, ids[0], RUNNING_STATUS, VM_F_VERSION_1);
    /* Clearing bits other than through reset */
    c = vm_cmd_new(a, VDPA_OP_SET_STATUS, ids[0]);
    c.u.status.status = VDPA_ST_ACKNOWLEDGE;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    /* Queue setup while running */
    c = vm_ring_setup_cmd(a, &r, ids[0], 0);
    expect(vm_exec(a, &c), VDPA_S_EBUSY, VDPA_Q_BAD_STATE);

    /* Result buffers: missing, too small */
    c = vm_cmd_new(a, VDPA_OP_STATS, ids[0]);
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    c.buf_addr = a->buf;
    c.buf_len = 8;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    /* Config past the blk config space */
    c = vm_cmd_new(a, VDPA_OP_CONFIG_READ, ids[0]);
    c.buf_addr = a->buf;
    c.buf_len = 64;
    c.u.cfg.offset = 88;
    c.u.cfg.length = 16;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);

    /* Doorbells naming nothing are counted and dropped */
    vm_doorbell(a, ids[3], 0);
    vm_doorbell(a, ids[0], 9);
    vm_doorbell(a, 0xfffff, 0);

    /* A malformed ring breaks only its instance */
    qtest_writew(t->qts, r.avail + 2, 100);     /* idx far ahead of size 4 */
    vm_doorbell(a, ids[0], 0);
    {
        VdpaCmd q = vm_cmd_new(a, VDPA_OP_QUERY, ids[0]);

        q.buf_addr = a->buf;
        q.buf_len = VDPA_QUERY_SIZE;
        expect(vm_exec(a, &q), VDPA_S_OK, VDPA_Q_OK);
        g_assert_true(qtest_readb(t->qts, a->buf + VDPA_QR_STATUS) &
                      VDPA_ST_NEEDS_RESET);
    }
    /* Reset recovers it */
    vm_set_status(a, ids[0], 0, 0);

    info = query(t->qts, true, &reply);
    g_assert_cmpint(qdict_get_int(info, "bad-doorbells"), ==, 3);
    g_assert_cmpint(qdict_get_int(info, "num-instances"), ==, 3);
    g_assert_cmpint(qdict_get_int(info, "admin-errors"), >=, 25);
    qobject_unref(reply);

    /* A bad admin ring geometry: FATAL, and re-enabling recovers */
    vm_reg_write(a, VDPA_REG_CTRL, 0);
    vm_reg_write(a, VDPA_REG_AQ_SIZE, 3);
    vm_reg_write(a, VDPA_REG_CTRL, VDPA_CTRL_ENABLE);
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_STATUS), ==, VDPA_STATUS_FATAL);
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_FATAL_CODE), ==,
                     VDPA_FATAL_BAD_RING);
    t_stop(t);
}

/*
 * device_add of a vdpa-mgmt with one property (@prop, JSON @value) is
 * refused with an error that says @what
 */
static void expect_refused(QTestState *qts, const char *prop,
                           const char *value, const char *what)
{
    g_autofree char *json = g_strdup_printf(
        "{'driver': 'vdpa-mgmt', '%s': %s}", prop, value);
    QDict *resp = qtest_qmp(qts, "{'execute': 'device_add', "
                            "'arguments': %p}",
                            qobject_from_json(json, &error_abort));

    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(resp, "error"),
                                          "desc"), what));
    qobject_unref(resp);
}

static void test_bad_properties(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults");

    expect_refused(qts, "blk-nodes", "'nope'", "'nope'");
    expect_refused(qts, "max-instances", "0", "max-instances");
    expect_refused(qts, "iotlb-entries", "2", "iotlb-entries");
    expect_refused(qts, "bounce-cap", "100", "bounce-cap");
    qtest_quit(qts);
}

/* 10,000 instances at once, one I/O each, then all destroyed */
static void test_scale(void)
{
    enum { N = 10000, AQ = 256, BATCH = AQ - 1 };
    T *t = t_start("", AQ);
    VMAdmin *a = t->a;
    g_autofree VMRing *r = g_new(VMRing, N);
    g_autofree uint32_t *ids = g_new(uint32_t, N);
    g_autofree VdpaCmd *cmds = g_new(VdpaCmd, BATCH);
    g_autofree VMCqe *res = g_new(VMCqe, BATCH);
    uint64_t rings = guest_alloc(&t->alloc, (uint64_t)N * VM_RING_BYTES);
    uint64_t data = guest_alloc(&t->alloc, 512);
    QDict *reply, *info;

    /* One batched pass per step: create, features, queue, driver ok */
    for (int step = 0; step < 4; step++) {
        for (int base = 0; base < N; base += BATCH) {
            int n = MIN(BATCH, N - base);

            for (int i = 0; i < n; i++) {
                int k = base + i;

                switch (step) {
                case 0:
                    cmds[i] = vm_cmd_new(a, VDPA_OP_CREATE, 0);
                    cmds[i].u.create.type = VDPA_TYPE_BLK;
                    cmds[i].u.create.nqueues = 1;
                    cmds[i].u.create.backend = k % 2;
                    break;
                case 1:
                case 3:
                    cmds[i] = vm_cmd_new(a, VDPA_OP_SET_STATUS, ids[k]);
                    cmds[i].u.status.status = step == 1 ? FEATURES_OK_STATUS :
                                                          RUNNING_STATUS;
                    cmds[i].u.status.features = VM_F_VERSION_1;
                    break;
                case 2:
                    vm_ring_init(&r[k], rings + (uint64_t)k * VM_RING_BYTES);
                    cmds[i] = vm_ring_setup_cmd(a, &r[k], ids[k], 0);
                    break;
                }
            }
            vm_submit(a, cmds, n, res);
            for (int i = 0; i < n; i++) {
                expect(res[i], VDPA_S_OK, VDPA_Q_OK);
                if (step == 0) {
                    ids[base + i] = res[i].result;
                }
            }
        }
    }
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, N);

    /* Rings were never written: zero them once, in page-sized chunks */
    for (uint64_t off = 0; off < (uint64_t)N * VM_RING_BYTES; off += 4096) {
        qtest_memset(t->qts, rings + off, 0, 4096);
    }
    for (int base = 0; base < N; base += 256) {
        int n = MIN(256, N - base);

        for (int i = 0; i < n; i++) {
            vm_blk_post(a, &r[base + i], ids[base + i], 0, BLK_T_IN, i, data,
                        512);
        }
        for (int i = 0; i < n; i++) {
            g_assert_cmpint(vm_blk_wait(a, &r[base + i]), ==, BLK_S_OK);
        }
    }

    info = query(t->qts, true, &reply);
    g_assert_cmpint(qdict_get_int(info, "num-instances"), ==, N);
    qobject_unref(reply);

    /*
     * One LIST returns at most 4096 ids, however large its buffer, and
     * says where to go on: the work of one admin command stays bounded.
     */
    {
        VdpaCmd c = vm_cmd_new(a, VDPA_OP_LIST, 0);
        VMCqe lr;

        c.buf_addr = a->buf;
        c.buf_len = VM_BUF_SIZE;
        lr = vm_exec(a, &c);
        expect(lr, VDPA_S_OK, VDPA_Q_OK);
        g_assert_cmpuint(lr.result & 0xffffffff, ==, 4096);
        g_assert_cmpuint(lr.result >> 32, ==, ids[4096]);
        g_assert_cmpuint(qtest_readl(t->qts, a->buf), ==, ids[0]);
        g_assert_cmpuint(qtest_readl(t->qts, a->buf + 4 * 4095), ==,
                         ids[4095]);
    }

    for (int base = 0; base < N; base += BATCH) {
        int n = MIN(BATCH, N - base);

        for (int i = 0; i < n; i++) {
            cmds[i] = vm_cmd_new(a, VDPA_OP_DESTROY, ids[base + i]);
        }
        vm_submit(a, cmds, n, res);
        for (int i = 0; i < n; i++) {
            expect(res[i], VDPA_S_OK, VDPA_Q_OK);
        }
    }
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, 0);
    info = query(t->qts, true, &reply);
    g_assert_cmpint(qdict_get_int(info, "created"), ==, N);
    g_assert_cmpint(qdict_get_int(info, "destroyed"), ==, N);
    qobject_unref(reply);
    t_stop(t);
}

/*
 * Migrate @t's QEMU to a new process started with @dst_args (plus
 * -incoming) and continue the test on it with the same driver state.
 */
static void migrate_to(T *t, const char *dst_args)
{
    VMAdmin *a = t->a;
    g_autofree char *uri = g_strdup_printf("unix:%s/vdpa-mig-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *args = g_strdup_printf("%s -incoming %s", dst_args,
                                            uri);
    QTestState *dst = qtest_init(args);
    QDict *rsp;
    int devfn;

    rsp = qtest_qmp(t->qts, "{'execute': 'migrate', 'arguments': "
                    "{'uri': %s}}", uri);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    iolab_migrate_wait_for(t->qts, "completed", 60 * G_USEC_PER_SEC);
    qtest_qmp_eventwait(dst, "RESUME");

    qtest_quit(t->qts);
    t->qts = dst;
    qpci_free_pc(t->bus);
    t->bus = qpci_new_pc(dst, &t->alloc);
    a->qts = dst;
    a->bus = t->bus;
    devfn = a->pdev->devfn;
    g_free(a->pdev);
    a->pdev = qpci_device_find(t->bus, devfn);
    g_assert(a->pdev);
}

/*
 * Migration between two QEMU processes: instances (list first, then
 * state), their queues with a request published but not yet run, MSI
 * messages and the admin queue all carry over.
 */
static void test_migration(void)
{
    T *t = t_start(",max-instances=64", 16);
    VMAdmin *a = t->a;
    VMRing r1, r2;
    uint64_t data1 = guest_alloc(&t->alloc, 4096);
    uint64_t data2 = guest_alloc(&t->alloc, 4096);
    uint64_t msi = guest_alloc(&t->alloc, 16);
    g_autofree char *args = NULL;
    uint8_t out[4096], in[4096];
    uint32_t i1, i2, i3;
    QTestState *dst;
    VdpaCmd c;
    QDict *reply, *info;

    i1 = bring_up(a, &r1, 1, 0);
    i2 = bring_up(a, &r2, 1, 0);
    i3 = vm_create_blk(a, 2, 1);
    vm_set_status(a, i3, FEATURES_OK_STATUS, VM_F_VERSION_1);
    vm_set_msi(a, i1, 0, msi, 0x5151, false);
    fill(out, sizeof(out), 9);
    qtest_memwrite(t->qts, data1, out, sizeof(out));
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_OUT, 0, data1, 4096), ==,
                    BLK_S_OK);
    /* In flight across the switch-over: published, instance suspended */
    c = vm_cmd_new(a, VDPA_OP_SUSPEND, i2);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memset(t->qts, data2, 0xee, 4096);
    vm_blk_post(a, &r2, i2, 0, BLK_T_IN, 0, data2, 4096);

    /* The destination opens the same images */
    args = g_strdup_printf("-M q35 -m 512M -nodefaults "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "max-instances=64", t->img[0], t->img[1]);
    migrate_to(t, args);
    dst = t->qts;

    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, 3);
    info = query(dst, false, &reply);
    g_assert_cmpint(qdict_get_int(info, "num-instances"), ==, 3);
    qobject_unref(reply);
    /* The request held by the suspension runs after RESUME */
    g_assert_cmpuint(qtest_readw(dst, r2.used + 2), ==, 0);
    c = vm_cmd_new(a, VDPA_OP_RESUME, i2);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmpint(vm_blk_wait(a, &r2), ==, BLK_S_OK);
    qtest_memread(dst, data2, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    /* Instance 1 keeps its queue position and its MSI message */
    qtest_writel(dst, msi, 0);
    qtest_memset(dst, data1, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_IN, 0, data1, 4096), ==,
                    BLK_S_OK);
    qtest_memread(dst, data1, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    g_assert_cmphex(qtest_readl(dst, msi), ==, 0x5151);
    /* Instance 3 is where it was: configuring, 2 queues, backend 1 */
    c = vm_cmd_new(a, VDPA_OP_QUERY, i3);
    c.buf_addr = a->buf;
    c.buf_len = VDPA_QUERY_SIZE;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmpuint(qtest_readb(dst, a->buf + VDPA_QR_STATUS), ==,
                     FEATURES_OK_STATUS);
    g_assert_cmpuint(qtest_readw(dst, a->buf + VDPA_QR_NQUEUES), ==, 2);
    g_assert_cmpuint(qtest_readl(dst, a->buf + VDPA_QR_BACKEND), ==, 1);
    /* New instances do not collide with migrated ids */
    g_assert_cmpuint(vm_create_blk(a, 1, 0), >, MAX(i1, MAX(i2, i3)));
    t_stop(t);
}

/* Frames on the socket netdev: a 4-byte big-endian length, then the frame */
static void sock_send(int fd, const uint8_t *frame, uint32_t len)
{
    uint32_t be = cpu_to_be32(len);

    g_assert_cmpint(write(fd, &be, 4), ==, 4);
    g_assert_cmpint(write(fd, frame, len), ==, len);
}

static uint32_t sock_recv(int fd, uint8_t *frame, uint32_t max)
{
    uint32_t be, len;

    g_assert_cmpint(read(fd, &be, 4), ==, 4);
    len = be32_to_cpu(be);
    g_assert_cmpuint(len, <=, max);
    for (uint32_t got = 0; got < len;) {
        ssize_t n = read(fd, frame + got, len - got);

        g_assert_cmpint(n, >, 0);
        got += n;
    }
    return len;
}

static void make_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src,
                       uint32_t len, uint8_t seed)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x88;
    f[13] = 0xb5;                           /* local experimental ethertype */
    for (uint32_t i = 14; i < len; i++) {
        f[i] = (uint8_t)(seed + i);
    }
}

/* Net instances on one shared netdev, told apart by MAC */
static void test_net(void)
{
    static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 0, 0, 0xa };
    static const uint8_t mac_b[6] = { 0x52, 0x54, 0, 0, 0, 0xb };
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t peer[6] = { 0x52, 0x54, 0, 0, 0, 0x1 };
    int sv[2];
    g_autofree char *prefix = NULL;
    T *t;
    VMAdmin *a;
    VMRing ra[2], rb[2];
    uint32_t ia, ib;
    uint64_t buf_a, buf_b, tx, msi;
    uint8_t frame[256], got[2048];
    VdpaCmd c;
    VMCqe r;
    QDict *reply, *info, *inst;

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    prefix = g_strdup_printf("-netdev socket,id=n0,fd=%d", sv[1]);
    t = t_start_with(prefix, ",netdev=n0", 16);
    close(sv[1]);
    a = t->a;
    buf_a = guest_alloc(&t->alloc, 2048);
    buf_b = guest_alloc(&t->alloc, 2048);
    tx = guest_alloc(&t->alloc, 2048);
    msi = guest_alloc(&t->alloc, 16);
    qtest_memset(t->qts, msi, 0, 16);

    ia = vm_bring_up(a, ra, VDPA_TYPE_NET, 2, 0, mac_a);
    ib = vm_bring_up(a, rb, VDPA_TYPE_NET, 2, 0, mac_b);
    vm_set_msi(a, ib, 0, msi, 0xbbbb, false);

    /* A MAC already taken, a multicast MAC, an odd queue count */
    c = vm_cmd_new(a, VDPA_OP_CREATE, 0);
    c.u.create.type = VDPA_TYPE_NET;
    c.u.create.nqueues = 2;
    memcpy(c.u.create.mac, mac_a, 6);
    r = vm_exec(a, &c);
    expect(r, VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.mac[0] = 1;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.mac[0] = 0x52;
    c.u.create.mac[5] = 0xc;
    c.u.create.nqueues = 3;
    expect(vm_exec(a, &c), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);

    /* Config: the MAC, link up, one queue pair */
    c = vm_cmd_new(a, VDPA_OP_CONFIG_READ, ib);
    c.buf_addr = a->buf;
    c.buf_len = 12;
    c.u.cfg.length = 12;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memread(t->qts, a->buf, got, 12);
    g_assert_cmpmem(got, 6, mac_b, 6);
    g_assert_cmpuint(lduw_le_p(got + 6), ==, 1);
    g_assert_cmpuint(lduw_le_p(got + 8), ==, 1);

    /* Receive: a frame for B lands in B's buffer only, with B's MSI */
    vm_ring_post(a, &ra[0], ia, 0, buf_a, 2048, true);
    vm_ring_post(a, &rb[0], ib, 0, buf_b, 2048, true);
    make_frame(frame, mac_b, peer, 100, 1);
    sock_send(sv[0], frame, 100);
    g_assert_cmpint(vm_ring_wait(a, &rb[0], 5 * G_USEC_PER_SEC), ==, 12 + 100);
    qtest_memread(t->qts, buf_b, got, 112);
    g_assert_cmpuint(got[10], ==, 1);           /* num_buffers */
    g_assert_cmpmem(got + 12, 100, frame, 100);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0xbbbb);
    g_assert_cmpuint(qtest_readw(t->qts, ra[0].used + 2), ==, 0);

    /* Broadcast reaches A (and B, which has no buffer: dropped) */
    make_frame(frame, bcast, peer, 80, 2);
    sock_send(sv[0], frame, 80);
    g_assert_cmpint(vm_ring_wait(a, &ra[0], 5 * G_USEC_PER_SEC), ==, 12 + 80);
    qtest_memread(t->qts, buf_a + 12, got, 80);
    g_assert_cmpmem(got, 80, frame, 80);

    /* Transmit: A's frame comes out of the netdev unchanged */
    qtest_memset(t->qts, tx, 0, 12);
    make_frame(frame, peer, mac_a, 120, 3);
    qtest_memwrite(t->qts, tx + 12, frame, 120);
    vm_ring_post(a, &ra[1], ia, 1, tx, 12 + 120, false);
    g_assert_cmpint(vm_ring_wait(a, &ra[1], 5 * G_USEC_PER_SEC), ==, 0);
    g_assert_cmpuint(sock_recv(sv[0], got, sizeof(got)), ==, 120);
    g_assert_cmpmem(got, 120, frame, 120);

    info = query(t->qts, false, &reply);
    inst = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "instances")));
    g_assert_cmpstr(qdict_get_str(inst, "type"), ==, "net");
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(inst, "counters"),
                                  "bytes-written"), ==, 120);
    qobject_unref(reply);

    /* Destroyed: its MAC is free again */
    vm_destroy(a, ib);
    c = vm_cmd_new(a, VDPA_OP_CREATE, 0);
    c.u.create.type = VDPA_TYPE_NET;
    c.u.create.nqueues = 2;
    memcpy(c.u.create.mac, mac_b, 6);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    close(sv[0]);
    t_stop(t);
}

/* Admin completions signal the MSI-X vector; none without a vector */
static void test_admin_msix(void)
{
    T *t = t_start("", 16);
    VMAdmin *a = t->a;
    QPCIDevice *dev = a->pdev;
    uint64_t msi = guest_alloc(&t->alloc, 16);
    g_autofree uint8_t *zero = g_malloc0(16 * VDPA_CQE_SIZE);
    VdpaCmd c;

    qtest_writel(t->qts, msi, 0);
    qpci_msix_enable(dev);
    qpci_io_writel(dev, dev->msix_table_bar, dev->msix_table_off + 0,
                   (uint32_t)msi);
    qpci_io_writel(dev, dev->msix_table_bar, dev->msix_table_off + 4,
                   msi >> 32);
    qpci_io_writel(dev, dev->msix_table_bar, dev->msix_table_off + 8,
                   0xa0a0);
    qpci_io_writel(dev, dev->msix_table_bar, dev->msix_table_off + 12, 0);

    /* No vector yet: a completion writes nothing */
    c = vm_cmd_new(a, VDPA_OP_LIST, 0);
    c.buf_addr = a->buf;
    c.buf_len = 64;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0);

    /* The vector is fixed while enabled: disable, set, enable again */
    vm_reg_write(a, VDPA_REG_AQ_VECTOR, 0);
    g_assert_cmphex(vm_reg_read(a, VDPA_REG_AQ_VECTOR), ==,
                    VDPA_AQ_NO_VECTOR);
    vm_reg_write(a, VDPA_REG_CTRL, 0);
    vm_reg_write(a, VDPA_REG_AQ_VECTOR, 0);
    qtest_memwrite(t->qts, a->cq, zero, 16 * VDPA_CQE_SIZE);
    vm_reg_write(a, VDPA_REG_CTRL, VDPA_CTRL_ENABLE);
    a->sq_tail = a->cq_head = 0;
    a->phase = true;
    c = vm_cmd_new(a, VDPA_OP_LIST, 0);
    c.buf_addr = a->buf;
    c.buf_len = 64;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0xa0a0);
    t_stop(t);
}

/*
 * VPRI: with a vpri-host, blk instance DMA takes I/O page faults.  The
 * requests are published while the instances are suspended, then all of
 * guest RAM is evicted; on RESUME every ring and buffer access faults,
 * only the faulting queue waits, and the requests complete with the
 * right data once the host has paged the memory in.  80 instances stall
 * at once, more than the function's 64 fault slots: the others wait for
 * a slot.
 */
static void test_vpri_faults(void)
{
    T *t = t_start_with("-object vpri-host,id=vh0", ",host=vh0", 16);
    VMAdmin *a = t->a;
    enum { N = 80 };                        /* more than the 64 fault slots */
    VMRing r[N];
    uint32_t id[N];
    uint64_t data[N], msi = guest_alloc(&t->alloc, 16);
    g_autofree uint8_t *out = g_malloc(N * 4096);
    uint8_t in[4096];
    VdpaCmd c;
    QDict *rsp, *dev;
    QList *devs;
    uint64_t raised;

    for (int i = 0; i < N; i++) {
        data[i] = guest_alloc(&t->alloc, 4096);
        id[i] = bring_up(a, &r[i], 1, i % 2);
        fill(out + 4096 * i, 4096, 17 * (i + 1));
        qtest_memwrite(t->qts, data[i], out + 4096 * i, 4096);
        g_assert_cmpint(vm_blk_io(a, &r[i], id[i], 0, BLK_T_OUT, 8 + 8 * i,
                                  data[i], 4096), ==, BLK_S_OK);
        qtest_memset(t->qts, data[i], 0, 4096);
        c = vm_cmd_new(a, VDPA_OP_SUSPEND, id[i]);
        expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
        vm_blk_post(a, &r[i], id[i], 0, BLK_T_IN, 8 + 8 * i, data[i],
                    4096);
    }
    vm_set_msi(a, id[0], 0, msi, 0x77, false);
    qtest_writel(t->qts, msi, 0);

    rsp = qtest_qmp(t->qts, "{ 'execute': 'vpri-reclaim', "
                    "'arguments': { 'host': 'vh0', 'percent': 100 } }");
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(rsp, "return"), "evicted"),
                    >, 0);
    qobject_unref(rsp);

    for (int i = 0; i < N; i++) {
        c = vm_cmd_new(a, VDPA_OP_RESUME, id[i]);
        expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    }
    for (int i = 0; i < N; i++) {
        g_assert_cmpint(vm_blk_wait(a, &r[i]), ==, BLK_S_OK);
        qtest_memread(t->qts, data[i], in, sizeof(in));
        g_assert_cmpmem(in, sizeof(in), out + 4096 * i, 4096);
    }
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0x77);

    rsp = qtest_qmp(t->qts, "{ 'execute': 'query-vpri' }");
    devs = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "devices");
    g_assert_cmpuint(qlist_size(devs), ==, 1);
    dev = qobject_to(QDict, qlist_peek(devs));
    g_assert_cmpstr(qdict_get_str(dev, "id"), ==, "vm0");
    raised = qdict_get_int(qdict_get_qdict(dev, "faults"), "raised");
    g_test_message("device faults raised: %" PRIu64, raised);
    g_assert_cmpuint(raised, >=, N);
    qobject_unref(rsp);
    t_stop(t);
}

/* A read-only integer QOM property */
static uint64_t qom_get_uint(QTestState *qts, const char *path,
                             const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'qom-get', 'arguments': "
                           "{'path': %s, 'property': %s}}", path, prop);
    uint64_t v;

    g_assert(qdict_haskey(rsp, "return"));
    v = qdict_get_int(rsp, "return");
    qobject_unref(rsp);
    return v;
}

/*
 * Bounce memory is capped per function, not only per instance: two
 * instances on a backend that takes a second per request, each writing
 * 8 KiB through a bounce buffer (a vpri-host bounces every request),
 * with bounce-cap=4096.  A request above the cap runs alone, so the
 * second instance's write waits until the first one's buffer comes back
 * (stalled, not failed), and both complete.  The backend's second makes
 * the overlap certain: the second write is kicked long before the first
 * completes, which the stall counter confirms before either is waited
 * for.
 */
static void test_bounce_cap(void)
{
    T *t = t_start_with("-object vpri-host,id=vh0 "
                        "-blockdev driver=null-co,node-name=slow,"
                        "size=16777216,latency-ns=1000000000",
                        ":slow,host=vh0,bounce-cap=4096", 16);
    VMAdmin *a = t->a;
    VMRing r[2];
    uint32_t id[2];
    uint64_t data = guest_alloc(&t->alloc, 8192);

    for (int i = 0; i < 2; i++) {
        id[i] = bring_up(a, &r[i], 1, 2);
    }
    qtest_memset(t->qts, data, 0x5a, 8192);
    for (int i = 0; i < 2; i++) {
        vm_blk_post(a, &r[i], id[i], 0, BLK_T_OUT, 16 * i, data, 8192);
    }
    g_assert_cmpuint(qom_get_uint(t->qts, "/machine/peripheral/vm0",
                                  "x-bounce-stalls"), >=, 1);
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(vm_blk_wait(a, &r[i]), ==, BLK_S_OK);
    }
    /* One 8 KiB buffer at a time, never both */
    g_assert_cmpuint(qom_get_uint(t->qts, "/machine/peripheral/vm0",
                                  "x-bounce-peak"), ==, 8192);
    t_stop(t);
}

/* query-vpri's fault counters of the function (device "vm0") */
static void vpri_faults(QTestState *qts, uint64_t *raised, uint64_t *resolved,
                        uint64_t *pending)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-vpri' }");
    QList *devs = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "devices");
    QDict *dev, *f;

    g_assert_cmpuint(qlist_size(devs), ==, 1);
    dev = qobject_to(QDict, qlist_peek(devs));
    g_assert_cmpstr(qdict_get_str(dev, "id"), ==, "vm0");
    f = qdict_get_qdict(dev, "faults");
    *raised = qdict_get_int(f, "raised");
    *resolved = qdict_get_int(f, "resolved");
    *pending = qdict_get_int(f, "pending");
    qobject_unref(rsp);
}

static void vpri_cmd(QTestState *qts, const char *cmd, uint64_t addr,
                     uint64_t size)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': %s, 'arguments': { "
                           "'host': 'vh0', 'addr': %" PRIu64 ", "
                           "'size': %" PRIu64 " } }", cmd, addr, size);

    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

static void vpri_evict_all(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', "
                           "'arguments': { 'host': 'vh0', 'percent': 100 } }");

    g_assert_cmpint(qdict_get_int(qdict_get_qdict(rsp, "return"),
                                  "evicted"), >, 0);
    qobject_unref(rsp);
}

/*
 * Wait until @drops frames were dropped on a fault and the instance's
 * queues wait for no fault: the device raises the next fault of a chain
 * (ring entry, descriptor, buffer) in the same main-loop step in which
 * the previous one is answered, so no fault is pending from then on.
 */
static void wait_rx_fault_settled(QTestState *qts, uint64_t drops,
                                  uint32_t held)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    for (;;) {
        QDict *reply, *info = query(qts, false, &reply);
        QDict *inst = qobject_to(QDict, qlist_peek(qdict_get_qlist(info,
                                                            "instances")));
        uint64_t d = qdict_get_int(info, "rx-dropped-on-fault");
        uint64_t blocked = qdict_get_int(inst, "fault-blocked-queues");
        uint64_t h = qdict_get_int(inst, "held-requests");

        qobject_unref(reply);
        g_assert_cmpuint(d, <=, drops);
        if (d == drops && !blocked && h == held) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * VPRI page faults on a net instance.  Receive drops a frame that meets
 * a fault (the shared netdev is not held up), raises the fault, keeps a
 * buffer it had already taken, and gets the next buffer's pages back
 * before the next frame; transmit stalls the queue until the fault is
 * resolved and sends the frame once.
 */
static void test_net_vpri_faults(void)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 0xa };
    static const uint8_t peer[6] = { 0x52, 0x54, 0, 0, 0, 0x1 };
    int sv[2];
    g_autofree char *prefix = NULL;
    T *t;
    VMAdmin *a;
    VMRing r[2];
    uint32_t id;
    uint64_t buf, buf2, tx, msi, raised, resolved, pending;
    uint8_t frame[256], got[2048];

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    prefix = g_strdup_printf("-object vpri-host,id=vh0 "
                             "-netdev socket,id=n0,fd=%d", sv[1]);
    t = t_start_with(prefix, ",netdev=n0,host=vh0", 16);
    close(sv[1]);
    a = t->a;
    /* Whole pages each, so that pinning a ring pins no buffer */
    buf = guest_alloc(&t->alloc, 4096);
    buf2 = guest_alloc(&t->alloc, 4096);
    tx = guest_alloc(&t->alloc, 4096);
    msi = guest_alloc(&t->alloc, 16);
    id = vm_bring_up(a, r, VDPA_TYPE_NET, 2, 0, mac);
    vm_set_msi(a, id, 0, msi, 0xfa01, false);
    qtest_writel(t->qts, msi, 0);

    /*
     * 1. Rings pinned, buffers evicted: the receive buffer is taken from
     * the ring, the data write faults.  The frame is dropped, the buffer
     * held; the next frame lands in it.
     */
    vpri_cmd(t->qts, "vpri-pin", r[0].mem, 4096);
    vpri_cmd(t->qts, "vpri-pin", r[1].mem, 4096);
    make_frame(frame, peer, mac, 150, 7);
    qtest_memset(t->qts, tx, 0, 12);
    qtest_memwrite(t->qts, tx + 12, frame, 150);
    vm_ring_post(a, &r[0], id, 0, buf, 2048, true);
    /*
     * The kick readies the buffer; an admin command (RESUME of a running
     * instance does nothing) makes sure that ran before the eviction.
     */
    vm_cmd_exec_ok(a, VDPA_OP_RESUME, id);
    vpri_evict_all(t->qts);

    make_frame(frame, mac, peer, 100, 1);
    sock_send(sv[0], frame, 100);
    wait_rx_fault_settled(t->qts, 1, 1);
    g_assert_cmpuint(qtest_readw(t->qts, r[0].used + 2), ==, 0);
    make_frame(frame, mac, peer, 110, 2);
    sock_send(sv[0], frame, 110);
    g_assert_cmpint(vm_ring_wait(a, &r[0], 10 * G_USEC_PER_SEC), ==,
                    12 + 110);
    qtest_memread(t->qts, buf, got, 12 + 110);
    g_assert_cmpuint(got[10], ==, 1);
    g_assert_cmpmem(got + 12, 110, frame, 110);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0xfa01);

    /* Transmit from an evicted page: stalls, then goes out once */
    vm_ring_post(a, &r[1], id, 1, tx, 12 + 150, false);
    g_assert_cmpint(vm_ring_wait(a, &r[1], 10 * G_USEC_PER_SEC), ==, 0);
    g_assert_cmpuint(sock_recv(sv[0], got, sizeof(got)), ==, 150);
    make_frame(frame, peer, mac, 150, 7);
    g_assert_cmpmem(got, 150, frame, 150);
    vpri_faults(t->qts, &raised, &resolved, &pending);
    g_test_message("rings pinned: %" PRIu64 " faults raised", raised);
    g_assert_cmpuint(raised, >=, 2);            /* rx buffer, tx buffer */
    g_assert_cmpuint(resolved, ==, raised);
    g_assert_cmpuint(pending, ==, 0);

    /*
     * 2. Everything evicted, rings too: the frame faults on the ring and
     * is dropped; the device then faults the ring and the next buffer
     * back in, one fault after the other, and the next frame gets
     * through.
     */
    vpri_cmd(t->qts, "vpri-unpin", r[0].mem, 4096);
    vpri_cmd(t->qts, "vpri-unpin", r[1].mem, 4096);
    vm_ring_post(a, &r[0], id, 0, buf2, 2048, true);
    vm_cmd_exec_ok(a, VDPA_OP_RESUME, id);
    vpri_evict_all(t->qts);
    make_frame(frame, mac, peer, 120, 3);
    sock_send(sv[0], frame, 120);
    wait_rx_fault_settled(t->qts, 2, 0);
    make_frame(frame, mac, peer, 130, 4);
    sock_send(sv[0], frame, 130);
    g_assert_cmpint(vm_ring_wait(a, &r[0], 10 * G_USEC_PER_SEC), ==,
                    12 + 130);
    qtest_memread(t->qts, buf2 + 12, got, 130);
    g_assert_cmpmem(got, 130, frame, 130);

    vpri_faults(t->qts, &raised, &resolved, &pending);
    g_test_message("in all: %" PRIu64 " faults raised", raised);
    g_assert_cmpuint(raised, >=, 4);
    g_assert_cmpuint(resolved, ==, raised);
    g_assert_cmpuint(pending, ==, 0);
    close(sv[0]);
    t_stop(t);
}

/* fault-blocked-queues and held-requests of instance @id */
static void inst_fault_state(QTestState *qts, uint32_t id, int64_t *blocked,
                             int64_t *held)
{
    QDict *reply, *info = query(qts, false, &reply);
    QListEntry *e;

    *blocked = *held = -1;
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "instances"), e) {
        QDict *inst = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(inst, "id") == id) {
            *blocked = qdict_get_int(inst, "fault-blocked-queues");
            *held = qdict_get_int(inst, "held-requests");
        }
    }
    qobject_unref(reply);
}

static void hold_faults(QTestState *qts, bool on)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments': { "
                           "'path': '/objects/vh0', "
                           "'property': 'x-hold-faults', 'value': %i } }", on);

    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

/*
 * Migration with blk queues stopped on VPRI page faults the host has not
 * answered (vpri-host's x-hold-faults keeps them pending) at the
 * switch-over.  Instance 1's ring is pinned: its request was taken from
 * the ring, read from the disk, and stopped writing the evicted data
 * page, so it travels as a held head.  Instance 2's ring is evicted: its
 * pop faulted and consumed nothing.  On the destination both requests
 * complete with the right data.
 */
static void test_migration_fault_pending(void)
{
    T *t = t_start_with("-object vpri-host,id=vh0", ",host=vh0", 16);
    VMAdmin *a = t->a;
    VMRing r1, r2;
    uint64_t d1 = guest_alloc(&t->alloc, 4096);
    uint64_t d2 = guest_alloc(&t->alloc, 4096);
    uint8_t out1[4096], out2[4096], in[4096];
    g_autofree char *args = NULL;
    uint64_t raised, resolved, pending;
    int64_t blocked, held;
    uint32_t i1, i2;
    gint64 deadline;

    i1 = bring_up(a, &r1, 1, 0);
    i2 = bring_up(a, &r2, 1, 1);
    fill(out1, sizeof(out1), 0x31);
    fill(out2, sizeof(out2), 0x32);
    qtest_memwrite(t->qts, d1, out1, 4096);
    qtest_memwrite(t->qts, d2, out2, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_OUT, 16, d1, 4096), ==,
                    BLK_S_OK);
    g_assert_cmpint(vm_blk_io(a, &r2, i2, 0, BLK_T_OUT, 24, d2, 4096), ==,
                    BLK_S_OK);
    qtest_memset(t->qts, d1, 0, 4096);
    qtest_memset(t->qts, d2, 0, 4096);

    /* Published while suspended, then everything but ring 1 evicted */
    vm_cmd_exec_ok(a, VDPA_OP_SUSPEND, i1);
    vm_cmd_exec_ok(a, VDPA_OP_SUSPEND, i2);
    vm_blk_post(a, &r1, i1, 0, BLK_T_IN, 16, d1, 4096);
    vm_blk_post(a, &r2, i2, 0, BLK_T_IN, 24, d2, 4096);
    vpri_cmd(t->qts, "vpri-pin", r1.mem, 4096);
    vpri_evict_all(t->qts);
    hold_faults(t->qts, true);
    vm_cmd_exec_ok(a, VDPA_OP_RESUME, i1);
    vm_cmd_exec_ok(a, VDPA_OP_RESUME, i2);

    /* Wait until both queues wait on their fault, 1 with its request */
    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        int64_t b2, h2;

        inst_fault_state(t->qts, i1, &blocked, &held);
        inst_fault_state(t->qts, i2, &b2, &h2);
        if (blocked == 1 && held == 1 && b2 == 1 && h2 == 0) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    vpri_faults(t->qts, &raised, &resolved, &pending);
    g_assert_cmpuint(pending, ==, 2);
    g_assert_cmpuint(resolved, ==, raised - 2);
    /* Ring 1 is pinned: reading it changes nothing; nothing completed */
    g_assert_cmpuint(qtest_readw(t->qts, r1.used + 2), ==, r1.last_used);

    args = g_strdup_printf("-M q35 -m 512M -nodefaults "
                           "-object vpri-host,id=vh0 "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "host=vh0", t->img[0], t->img[1]);
    migrate_to(t, args);

    /* The held request restarts from its header, the other is popped */
    g_assert_cmpint(vm_blk_wait(a, &r1), ==, BLK_S_OK);
    g_assert_cmpint(vm_blk_wait(a, &r2), ==, BLK_S_OK);
    qtest_memread(t->qts, d1, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out1, sizeof(out1));
    qtest_memread(t->qts, d2, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out2, sizeof(out2));
    inst_fault_state(t->qts, i1, &blocked, &held);
    g_assert_cmpint(blocked, ==, 0);
    g_assert_cmpint(held, ==, 0);
    /* And the queues go on */
    qtest_memset(t->qts, d2, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_IN, 16, d2, 4096), ==,
                    BLK_S_OK);
    qtest_memread(t->qts, d2, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out1, sizeof(out1));
    t_stop(t);
}

/*
 * Migration of a live net instance: its MAC, queue positions, MSI
 * message and a receive buffer posted before the switch-over carry
 * over; a transmit chain published while it was suspended goes out of
 * the destination's netdev after RESUME.
 */
static void test_migration_net(void)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 0x2a };
    static const uint8_t peer[6] = { 0x52, 0x54, 0, 0, 0, 0x1 };
    int sv[2], dv[2];
    g_autofree char *prefix = NULL;
    g_autofree char *args = NULL;
    T *t;
    VMAdmin *a;
    VMRing r[2];
    uint32_t id;
    uint64_t rx1, rx2, tx, msi;
    uint8_t frame[256], got[2048];
    uint32_t len;
    VdpaCmd c;
    QDict *reply, *info, *inst;

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    prefix = g_strdup_printf("-netdev socket,id=n0,fd=%d", sv[1]);
    t = t_start_with(prefix, ",netdev=n0", 16);
    close(sv[1]);
    /* The destination's netdev: a pair the source never saw */
    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, dv), ==, 0);
    a = t->a;
    rx1 = guest_alloc(&t->alloc, 2048);
    rx2 = guest_alloc(&t->alloc, 2048);
    tx = guest_alloc(&t->alloc, 2048);
    msi = guest_alloc(&t->alloc, 16);
    id = vm_bring_up(a, r, VDPA_TYPE_NET, 2, 0, mac);
    vm_set_msi(a, id, 0, msi, 0x4e47, false);

    /* One frame received before the migration */
    vm_ring_post(a, &r[0], id, 0, rx1, 2048, true);
    make_frame(frame, mac, peer, 90, 5);
    sock_send(sv[0], frame, 90);
    g_assert_cmpint(vm_ring_wait(a, &r[0], 10 * G_USEC_PER_SEC), ==, 12 + 90);
    /* A receive buffer posted, a transmit published while suspended */
    vm_ring_post(a, &r[0], id, 0, rx2, 2048, true);
    vm_cmd_exec_ok(a, VDPA_OP_SUSPEND, id);
    qtest_memset(t->qts, tx, 0, 12);
    make_frame(frame, peer, mac, 140, 6);
    qtest_memwrite(t->qts, tx + 12, frame, 140);
    vm_ring_post(a, &r[1], id, 1, tx, 12 + 140, false);

    args = g_strdup_printf("-M q35 -m 512M -nodefaults "
                           "-netdev socket,id=n0,fd=%d "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "netdev=n0", dv[1], t->img[0], t->img[1]);
    migrate_to(t, args);
    close(dv[1]);
    close(sv[0]);

    info = query(t->qts, false, &reply);
    inst = qobject_to(QDict, qlist_peek(qdict_get_qlist(info, "instances")));
    g_assert_cmpint(qdict_get_int(inst, "id"), ==, id);
    g_assert_cmpstr(qdict_get_str(inst, "type"), ==, "net");
    g_assert_cmpstr(qdict_get_str(inst, "state"), ==, "suspended");
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(inst, "counters"),
                                  "requests"), ==, 1);
    qobject_unref(reply);
    c = vm_cmd_new(a, VDPA_OP_CONFIG_READ, id);
    c.buf_addr = a->buf;
    c.buf_len = 12;
    c.u.cfg.length = 12;
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    qtest_memread(t->qts, a->buf, got, 6);
    g_assert_cmpmem(got, 6, mac, 6);

    /* RESUME: the published frame leaves through the destination */
    vm_cmd_exec_ok(a, VDPA_OP_RESUME, id);
    g_assert_cmpint(vm_ring_wait(a, &r[1], 10 * G_USEC_PER_SEC), ==, 0);
    /* QEMU announces the NIC after migration (RARP): skip those frames */
    do {
        len = sock_recv(dv[0], got, sizeof(got));
    } while (len >= 14 && got[12] == 0x80 && got[13] == 0x35);
    g_assert_cmpuint(len, ==, 140);
    g_assert_cmpmem(got, 140, frame, 140);
    /* A frame for the MAC lands in the buffer posted before migrating */
    qtest_writel(t->qts, msi, 0);
    make_frame(frame, mac, peer, 100, 8);
    sock_send(dv[0], frame, 100);
    g_assert_cmpint(vm_ring_wait(a, &r[0], 10 * G_USEC_PER_SEC), ==, 12 + 100);
    qtest_memread(t->qts, rx2 + 12, got, 100);
    g_assert_cmpmem(got, 100, frame, 100);
    g_assert_cmphex(qtest_readl(t->qts, msi), ==, 0x4e47);
    close(dv[0]);
    t_stop(t);
}

/*
 * A blk request in the backend when the VM stops.  Its completion is
 * posted by the shared block-request layer's bottom half, which must not
 * write the used ring or the status byte while the VM is stopped: in a
 * migration's downtime that write would land after RAM's last pass.  It
 * is held, and completes once the VM continues.  The backend (null-co,
 * latency-ns) keeps the read in flight for 300 ms; with EVENT_IDX the
 * device writes avail_event when it has popped the chain and found the
 * ring empty, in the same queue run that submits the read, so once the
 * test sees it the read is in the backend.
 */
static void test_stopped_vm_inflight(void)
{
    T *t = t_start_with("-blockdev driver=null-co,node-name=slow,"
                        "size=16777216,read-zeroes=on,latency-ns=300000000",
                        ":slow", 16);
    VMAdmin *a = t->a;
    VMRing r;
    uint64_t data = guest_alloc(&t->alloc, 4096);
    uint64_t features = VM_F_VERSION_1 | (1ULL << 29);   /* EVENT_IDX */
    uint64_t avail_event;
    uint32_t id;
    gint64 deadline;
    QDict *rsp;
    VdpaCmd c;

    id = vm_create_blk(a, 1, 2);
    vm_set_status(a, id, FEATURES_OK_STATUS, features);
    vm_ring_init(&r, guest_alloc(a->alloc, VM_RING_BYTES));
    c = vm_ring_setup_cmd(a, &r, id, 0);
    expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
    vm_set_status(a, id, RUNNING_STATUS, features);
    avail_event = r.used + 4 + 8 * r.size;
    qtest_writew(t->qts, avail_event, 0);

    vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, data, 4096);
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (qtest_readw(t->qts, avail_event) != 1) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    /* Returns once the backend is drained: the read has completed */
    rsp = qtest_qmp(t->qts, "{'execute': 'stop'}");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    /* Two round trips: a completion bottom half pending has run */
    for (int i = 0; i < 2; i++) {
        QDict *reply;

        query(t->qts, true, &reply);
        qobject_unref(reply);
    }
    g_assert_cmpuint(qtest_readw(t->qts, r.used + 2), ==, r.last_used);
    g_assert_cmphex(qtest_readb(t->qts, r.status), ==, 0xff);

    rsp = qtest_qmp(t->qts, "{'execute': 'cont'}");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    g_assert_cmpint(vm_blk_wait(a, &r), ==, BLK_S_OK);
    t_stop(t);
}

/*
 * The function stops with the VM: a request published and kicked while
 * the VM is stopped is not run (GET_ID completes inside the kick, so
 * without the check its used entry would be written before the QMP
 * round trips below return), and it runs once the VM continues.
 */
static void test_stopped_vm(void)
{
    T *t = t_start("", 16);
    VMAdmin *a = t->a;
    VMRing r;
    uint64_t data = guest_alloc(&t->alloc, 64);
    uint32_t id;
    QDict *rsp;

    id = bring_up(a, &r, 1, 0);
    rsp = qtest_qmp(t->qts, "{'execute': 'stop'}");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    qtest_memset(t->qts, data, 0, 64);
    vm_blk_post(a, &r, id, 0, BLK_T_GET_ID, 0, data, 20);
    for (int i = 0; i < 3; i++) {
        QDict *reply;

        query(t->qts, true, &reply);
        qobject_unref(reply);
    }
    g_assert_cmpuint(qtest_readw(t->qts, r.used + 2), ==, r.last_used);
    g_assert_cmphex(qtest_readb(t->qts, r.status), ==, 0xff);

    rsp = qtest_qmp(t->qts, "{'execute': 'cont'}");
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    g_assert_cmpint(vm_blk_wait(a, &r), ==, BLK_S_OK);
    t_stop(t);
}

/*
 * Bad migration streams.  The source saves to a file with one blk
 * instance whose queue 0 has a request published (the instance is
 * suspended, so nothing is popped); each case changes that stream and
 * loads it into a fresh destination, which must refuse it with a
 * message naming the field, and stay alive.  The unchanged stream
 * loads, so the refusals are the changes' doing.
 */

/*
 * Where the fields sit (docs/vdpa-mgmt.rst, "Migration"): the admin
 * queue registers after the VMState's "VDPA" magic (be32 each), and the
 * instance record in the first chunk of the instances section ("MDIG",
 * le32 length, the record).
 */
enum {
    MS_SQ_TAIL = 40,
    MS_SQ_HEAD = 44,
    MS_AQ_SIZE = 16,
    /* In the chunk: one instance, one queue */
    MC_LEN = 4,
    MB_PASID = 8 + 12 + 4,      /* le32 in the instance's state record */
    MB_QUEUE = 8 + 12 + 96,     /* the queue record */
    MB_LAST_AVAIL = MB_QUEUE + 32,
    MB_USED_IDX = MB_QUEUE + 34,
    MB_NHELD = MB_QUEUE + 56,
    MB_END = MB_QUEUE + 58,
};

typedef struct BadStream {
    GByteArray *s;
    size_t regs;                /* the VMState's magic ("VDPA") */
    size_t chunk;               /* the instance chunk ("MDIG") */
} BadStream;

static uint32_t bs_be32(BadStream *b, long off)
{
    return ldl_be_p(b->s->data + b->regs + off);
}

static void bs_set_be32(BadStream *b, long off, uint32_t v)
{
    stl_be_p(b->s->data + b->regs + off, v);
}

/* A copy of @saved for one case to change */
static BadStream bs_copy(const BadStream *saved)
{
    BadStream b = *saved;

    b.s = g_byte_array_new();
    g_byte_array_append(b.s, saved->s->data, saved->s->len);
    return b;
}

/* Insert @n held heads (all 0, the request's chain) after the queue */
static void bs_add_heads(BadStream *b, uint16_t n)
{
    uint8_t *c = b->s->data + b->chunk;
    g_autofree uint8_t *heads = g_malloc0(2 * n);
    uint16_t used = lduw_le_p(c + MB_USED_IDX);
    size_t at = b->chunk + MB_END, tail = b->s->len - at;

    stw_le_p(c + MB_NHELD, n);
    /* One chain popped and not returned */
    stw_le_p(c + MB_LAST_AVAIL, used + 1);
    stl_le_p(c + MC_LEN, ldl_le_p(c + MC_LEN) + 2 * n);
    g_byte_array_set_size(b->s, b->s->len + 2 * n);
    memmove(b->s->data + at + 2 * n, b->s->data + at, tail);
    memcpy(b->s->data + at, heads, 2 * n);
    b->regs += 2 * n;
}

/*
 * Load @b into a new destination, with the source's images and
 * vdpa-mgmt; its stderr goes to @log if not NULL.  The load must end:
 * *@status is how (g_free it).  Returns the destination, for the caller
 * to question and quit.
 */
static QTestState *bs_load_dest(T *t, BadStream *b, const char *log,
                                char **status)
{
    g_autofree char *file = g_strdup_printf("%s/vdpa-bad-%d.mig",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *to_log = log ? g_strdup_printf(" 2>%s", log)
                                  : g_strdup("");
    g_autofree char *args = NULL;
    g_autoptr(GError) gerr = NULL;
    QTestState *dst;

    g_assert(g_file_set_contents(file, (const char *)b->s->data, b->s->len,
                                 &gerr));
    args = g_strdup_printf("-M q35 -m 512M -nodefaults "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "max-instances=64 -incoming defer%s",
                           t->img[0], t->img[1], to_log);
    dst = qtest_init(args);
    *status = iolab_migrate_load_file_end(dst, file, 60 * G_USEC_PER_SEC);
    unlink(file);
    return dst;
}

/*
 * Load @b into a new destination; returns true if it loaded.  On a
 * refusal the destination's stderr must name @field.
 */
static bool bs_load(T *t, BadStream *b, const char *field)
{
    g_autofree char *log = g_strdup_printf("%s/vdpa-bad-%d.log",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *err = NULL;
    g_autofree char *st = NULL;
    QTestState *dst = bs_load_dest(t, b, log, &st);
    QDict *rsp;
    bool loaded;

    g_assert_cmpstr(st, !=, "cancelled");   /* a load ends in the other two */
    loaded = !strcmp(st, "completed");
    /* Alive, and answering: after a refusal nothing ran on bad state */
    query(dst, true, &rsp);
    qobject_unref(rsp);
    qtest_quit(dst);
    g_assert(g_file_get_contents(log, &err, NULL, NULL));
    if (!loaded) {
        g_test_message("refused: %s", err);
        g_assert(field && strstr(err, field));
    }
    unlink(log);
    return loaded;
}

/*
 * Cut the device's VMState section out of @b: from its header (type
 * QEMU_VM_SECTION_FULL, section id, idstr "<pci path>/vdpa-mgmt",
 * instance 0, version 2) to its footer, 93 bytes of fields after the
 * "VDPA" magic.  QEMU loads a stream that lacks a device's section.
 */
static void bs_drop_vmstate(BadStream *b)
{
    static const uint8_t sec[] = "/vdpa-mgmt\0\0\0\0\0\0\0\2";
    uint8_t *d = b->s->data;
    uint8_t *v = memmem(d, b->s->len, sec, sizeof(sec) - 1);
    size_t idend, start = 0, end = b->regs + 4 + 93;

    g_assert(v);
    idend = v - d + strlen("/vdpa-mgmt");
    for (size_t p = idend - 1; p > idend - 64; p--) {
        if (d[p] == idend - p - 1 && d[p - 5] == 0x04) {
            start = p - 5;
            break;
        }
    }
    g_assert(start);
    g_assert_cmphex(d[end], ==, 0x7e);                 /* the footer */
    g_assert_cmphex(ldl_be_p(d + end + 1), ==, ldl_be_p(d + start + 1));
    end += 5;
    memmove(d + start, d + end, b->s->len - end);
    g_byte_array_set_size(b->s, b->s->len - (end - start));
}

/* The ids of the instances query-vdpa-mgmt lists, in a string */
static char *inst_ids(QTestState *qts)
{
    QDict *reply, *info = query(qts, false, &reply);
    GString *ids = g_string_new("");
    QList *list = qdict_get_qlist(info, "instances");
    QListEntry *e;

    if (list) {
        QLIST_FOREACH_ENTRY(list, e) {
            QDict *inst = qobject_to(QDict, qlist_entry_obj(e));

            g_string_append_printf(ids, " %" PRId64,
                                   qdict_get_int(inst, "id"));
        }
    }
    qobject_unref(reply);
    return g_string_free(ids, false);
}

/*
 * Load @b (the instances section, no VMState, its instance as id 5): the
 * function is as reset, so as the VM starts the migrated instance is
 * dropped, and the guest's CREATEs get ids 1, 2, 3, 4, 6 (5 went back to
 * the end of the free ids).  Before, the instance stayed, unchecked by
 * post_load, and the table's free ids, rebuilt only in post_load, were
 * stale: CREATE took id 5 twice, the second time over a live instance.
 */
static void bs_load_create(T *t, BadStream *b)
{
    g_autofree char *st = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    QGuestAllocator alloc;
    QDict *rsp;
    QPCIBus *bus;
    QTestState *dst = bs_load_dest(t, b, NULL, &st);
    VMAdmin *a;

    g_assert_cmpstr(st, ==, "completed");
    rsp = qtest_qmp(dst, "{'execute': 'cont'}");
    qobject_unref(rsp);
    before = inst_ids(dst);
    g_assert_cmpstr(before, ==, "");
    /* The admin rings past the source's allocations (its instance's) */
    pc_alloc_init(&alloc, dst, 0);
    guest_alloc(&alloc, 8 * 1024 * 1024);
    bus = qpci_new_pc(dst, &alloc);
    a = vm_open(dst, &alloc, bus, 16);
    for (int i = 0; i < 5; i++) {
        vm_create_blk(a, 1, 0);
    }
    after = inst_ids(dst);
    g_assert_cmpstr(after, ==, " 1 2 3 4 6");
    vm_close(a);
    qpci_free_pc(bus);
    alloc_destroy(&alloc);
    qtest_quit(dst);
}

static void test_migration_bad_stream(void)
{
    T *t = t_start(",max-instances=64", 16);
    VMAdmin *a = t->a;
    g_autofree char *file = g_strdup_printf("%s/vdpa-src-%d.mig",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    gchar *stream;
    gsize stream_len;
    uint64_t data = guest_alloc(&t->alloc, 512);
    VMRing r;
    uint32_t id;
    QDict *rsp;
    BadStream saved, b;
    size_t regs = 0, chunk = 0;

    id = bring_up(a, &r, 1, 0);
    vm_cmd_exec_ok(a, VDPA_OP_SUSPEND, id);
    vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, data, 512);
    rsp = qtest_qmp(t->qts, "{'execute': 'migrate', 'arguments': "
                    "{'uri': %s}}", uri);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    iolab_migrate_wait_for(t->qts, "completed", 60 * G_USEC_PER_SEC);
    g_assert(g_file_get_contents(file, &stream, &stream_len, NULL));
    unlink(file);
    /*
     * The instances section's setup chunk comes before RAM pages: the
     * first "MDIG"; the VMState follows RAM: the last "VDPA".
     */
    for (gsize i = 0; i + 4 <= stream_len; i++) {
        if (!chunk && !memcmp(stream + i, "MDIG", 4)) {
            chunk = i;
        }
        if (!memcmp(stream + i, "VDPA", 4)) {
            regs = i;
        }
    }
    g_assert(chunk && regs > chunk);

    saved.s = g_byte_array_new_take((guint8 *)stream, stream_len);
    saved.regs = regs;
    saved.chunk = chunk;

    /* The layout is the one assumed above, and the stream loads as is */
    b = bs_copy(&saved);
    g_assert_cmpuint(ldl_le_p(b.s->data + chunk + MC_LEN), ==, MB_END - 8);
    g_assert_cmpuint(bs_be32(&b, MS_AQ_SIZE), ==, 16);
    g_assert(bs_load(t, &b, NULL));
    g_byte_array_unref(b.s);

    /* No admin queue ring, yet a command pending (divides by zero) */
    b = bs_copy(&saved);
    bs_set_be32(&b, MS_AQ_SIZE, 0);
    bs_set_be32(&b, MS_SQ_TAIL, bs_be32(&b, MS_SQ_HEAD) + 1);
    g_assert(!bs_load(t, &b, "field aq_size"));
    g_byte_array_unref(b.s);

    /* A ring index beyond the ring */
    b = bs_copy(&saved);
    bs_set_be32(&b, MS_SQ_HEAD, 4096);
    g_assert(!bs_load(t, &b, "field sq_head"));
    g_byte_array_unref(b.s);

    /* More held requests than chains in flight (one) */
    b = bs_copy(&saved);
    bs_add_heads(&b, 2);
    g_assert(!bs_load(t, &b, "field nheld"));
    g_byte_array_unref(b.s);

    /* A PASID this function cannot translate, checked before its chains */
    b = bs_copy(&saved);
    bs_add_heads(&b, 1);
    stl_le_p(b.s->data + b.chunk + MB_PASID, 5);
    g_assert(!bs_load(t, &b, "field pasid"));
    g_byte_array_unref(b.s);

    /* A chunk longer than any the source cuts */
    b = bs_copy(&saved);
    stl_le_p(b.s->data + b.chunk + MC_LEN, 0x7fffffff);
    g_assert(!bs_load(t, &b, "field chunk length"));
    g_byte_array_unref(b.s);

    /* A version 1 stream (one buffer in the downtime) is refused */
    b = bs_copy(&saved);
    {
        static const uint8_t sec[] = "/vdpa-mgmt\0\0\0\0\0\0\0\2";
        uint8_t *v = memmem(b.s->data, b.s->len, sec, sizeof(sec) - 1);

        g_assert(v);
        v[sizeof(sec) - 2] = 1;
    }
    g_assert(!bs_load(t, &b, "too old"));
    g_byte_array_unref(b.s);

    /* Without the device's VMState, the instance as id 5 (see below) */
    b = bs_copy(&saved);
    stl_le_p(b.s->data + b.chunk + 8, 5);
    bs_drop_vmstate(&b);
    bs_load_create(t, &b);
    g_byte_array_unref(b.s);
    g_byte_array_unref(saved.s);
    t_stop(t);
}

/* The state query-vdpa-mgmt shows for instance @id (caller frees) */
static char *inst_state(QTestState *qts, uint32_t id)
{
    QDict *reply, *info = query(qts, false, &reply);
    char *state = NULL;
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "instances"), e) {
        QDict *inst = qobject_to(QDict, qlist_entry_obj(e));

        if (qdict_get_int(inst, "id") == id) {
            state = g_strdup(qdict_get_str(inst, "state"));
        }
    }
    qobject_unref(reply);
    return state;
}

/*
 * A driver that publishes more chains than the queue size while the
 * device still has all of them (reads held 2 s by a slow backend) puts
 * the instance in needs-reset ("virtqueue size exceeded"), rather than
 * making the device take a request element per chain without bound.
 */
static void test_queue_size_exceeded(void)
{
    T *t = g_new0(T, 1);
    VMAdmin *a;
    VMRing r;
    uint64_t data;
    gint64 deadline;
    uint32_t id;

    t->qts = qtest_init("-M q35 -m 512M -nodefaults "
                        "-blockdev null-co,node-name=slow,size=1048576,"
                        "latency-ns=2000000000 "
                        "-device vdpa-mgmt,id=vm0,blk-nodes=slow");
    pc_alloc_init(&t->alloc, t->qts, 0);
    t->bus = qpci_new_pc(t->qts, &t->alloc);
    t->a = a = vm_open(t->qts, &t->alloc, t->bus, 16);
    data = guest_alloc(&t->alloc, 512);
    id = bring_up(a, &r, 1, 0);
    /* One chain more than the ring holds, all the same descriptors */
    for (int i = 0; i <= VM_RING_SIZE; i++) {
        vm_blk_post(a, &r, id, 0, BLK_T_IN, 0, data, 512);
    }
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    for (;;) {
        g_autofree char *state = inst_state(t->qts, id);

        if (!strcmp(state, "needs-reset")) {
            break;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
    t_stop(t);
}

/* Queues waiting for a fault, over all instances, and slot waiters */
static void fault_totals(QTestState *qts, int64_t *blocked, int64_t *waiters)
{
    QDict *reply, *info = query(qts, false, &reply);
    QListEntry *e;

    *blocked = 0;
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "instances"), e) {
        QDict *inst = qobject_to(QDict, qlist_entry_obj(e));

        *blocked += qdict_get_int(inst, "fault-blocked-queues");
    }
    *waiters = qdict_get_int(info, "fault-slot-waiters");
    qobject_unref(reply);
}

static void wait_fault_totals(QTestState *qts, int64_t blocked,
                              int64_t waiters)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    int64_t b, w;

    for (;;) {
        fault_totals(qts, &b, &w);
        if (b == blocked && w == waiters) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * With all 64 fault slots taken (faults held unanswered), one more
 * stalled queue waits for a slot.  Resetting its instance and bringing
 * it up again, over and over, stalls it again each time: it must stay
 * one waiter, not one more per round.
 */
static void test_slot_waiters_bounded(void)
{
    enum { N = 65, ROUNDS = 5 };
    T *t = t_start_with("-object vpri-host,id=vh0", ",host=vh0", 16);
    VMAdmin *a = t->a;
    VMRing r[N];
    uint32_t id[N];
    uint64_t data = guest_alloc(&t->alloc, 4096);
    VdpaCmd c;

    for (int i = 0; i < N; i++) {
        id[i] = bring_up(a, &r[i], 1, 0);
        vm_cmd_exec_ok(a, VDPA_OP_SUSPEND, id[i]);
        vm_blk_post(a, &r[i], id[i], 0, BLK_T_IN, 0, data, 4096);
    }
    vpri_evict_all(t->qts);
    hold_faults(t->qts, true);
    for (int i = 0; i < N; i++) {
        vm_cmd_exec_ok(a, VDPA_OP_RESUME, id[i]);
    }
    wait_fault_totals(t->qts, N, 1);

    for (int round = 0; round < ROUNDS; round++) {
        vm_set_status(a, id[N - 1], 0, 0);
        wait_fault_totals(t->qts, N - 1, 0);
        vm_set_status(a, id[N - 1], FEATURES_OK_STATUS, VM_F_VERSION_1);
        c = vm_ring_setup_cmd(a, &r[N - 1], id[N - 1], 0);
        expect(vm_exec(a, &c), VDPA_S_OK, VDPA_Q_OK);
        vm_set_status(a, id[N - 1], RUNNING_STATUS, VM_F_VERSION_1);
        wait_fault_totals(t->qts, N, 1);
    }
    hold_faults(t->qts, false);
    t_stop(t);
}

static void set_max_bandwidth(QTestState *qts, uint64_t bytes_per_s)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'migrate-set-parameters', "
                           "'arguments': {'max-bandwidth': %" PRIu64 "}}",
                           bytes_per_s);

    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

/*
 * The instances go before the switch-over; what changes after they were
 * sent goes again, and only that goes in the downtime.  The source
 * sends three instances while the VM runs (the migration is held active
 * by a tiny bandwidth); then one is destroyed, one created, one does
 * I/O; the destination has exactly the source's instances, with the
 * I/O's data and queue position.
 */
static void test_migration_delta(void)
{
    T *t = t_start(",max-instances=64", 16);
    VMAdmin *a = t->a;
    g_autofree char *uri = g_strdup_printf("unix:%s/vdpa-delta-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *args = NULL;
    uint64_t d0 = guest_alloc(&t->alloc, 4096);
    uint64_t d1 = guest_alloc(&t->alloc, 4096);
    uint8_t out0[4096], out1[4096], in[4096];
    QTestState *src, *dst;
    uint32_t i1, i2, i3, i4;
    QDict *reply, *info;
    VMRing r1, r2;
    int devfn;

    i1 = bring_up(a, &r1, 1, 0);
    i2 = bring_up(a, &r2, 1, 1);
    i3 = vm_create_blk(a, 2, 1);
    fill(out0, sizeof(out0), 0x51);
    fill(out1, sizeof(out1), 0x52);
    qtest_memwrite(t->qts, d0, out0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_OUT, 0, d0, 4096), ==,
                    BLK_S_OK);

    args = g_strdup_printf("-M q35 -m 512M -nodefaults "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "max-instances=64 -incoming %s",
                           t->img[0], t->img[1], uri);
    dst = qtest_init(args);
    src = t->qts;
    /* 4 KiB/s: the RAM pass outlasts what follows by far */
    set_max_bandwidth(src, 4096);
    reply = qtest_qmp(src, "{'execute': 'migrate', 'arguments': "
                      "{'uri': %s}}", uri);
    g_assert(qdict_haskey(reply, "return"));
    qobject_unref(reply);
    /* Active: past save_setup, which sent every instance */
    iolab_migrate_wait_for(src, "active", 60 * G_USEC_PER_SEC);
    info = query(src, true, &reply);
    g_assert_cmpint(qdict_get_int(info, "migration-precopy-instances"), ==,
                    3);
    qobject_unref(reply);

    /* Changes after the instances were sent */
    vm_destroy(a, i2);
    i4 = vm_create_blk(a, 1, 0);
    vm_set_status(a, i4, FEATURES_OK_STATUS, VM_F_VERSION_1);
    qtest_memwrite(src, d1, out1, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_OUT, 8, d1, 4096), ==,
                    BLK_S_OK);

    set_max_bandwidth(src, 1ULL << 30);
    iolab_migrate_wait_for(src, "completed", 60 * G_USEC_PER_SEC);
    info = query(src, true, &reply);
    /* i1, i2 (gone) and i4 at most, whether in an iteration or not */
    g_assert_cmpint(qdict_get_int(info, "migration-downtime-instances"), <=,
                    3);
    qobject_unref(reply);
    qtest_qmp_eventwait(dst, "RESUME");

    qtest_quit(src);
    t->qts = dst;
    qpci_free_pc(t->bus);
    t->bus = qpci_new_pc(dst, &t->alloc);
    a->qts = dst;
    a->bus = t->bus;
    devfn = a->pdev->devfn;
    g_free(a->pdev);
    a->pdev = qpci_device_find(t->bus, devfn);
    g_assert(a->pdev);

    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, 3);
    g_assert_null(inst_state(dst, i2));
    g_free(inst_state(dst, i3));
    {
        g_autofree char *s4 = inst_state(dst, i4);

        g_assert_cmpstr(s4, ==, "configuring");
    }
    /* i1 goes on from where the source left it, with both writes */
    qtest_memset(dst, d0, 0, 4096);
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_IN, 0, d0, 4096), ==,
                    BLK_S_OK);
    qtest_memread(dst, d0, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out0, sizeof(out0));
    g_assert_cmpint(vm_blk_io(a, &r1, i1, 0, BLK_T_IN, 8, d0, 4096), ==,
                    BLK_S_OK);
    qtest_memread(dst, d0, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out1, sizeof(out1));
    t_stop(t);
}

/*
 * An emulator without VPRI: the function has no "host" property, so a
 * vdpa-mgmt with host= is refused naming it, and one without runs.  VPRI's
 * monitor commands are still there and say why they cannot act, over HMP
 * too (hw/vpri/vpri-hmp.c on vpri-stubs.c).
 */
static void test_no_vpri(void)
{
    QTestState *qts = qtest_init("-M pc -nodefaults");
    g_autofree char *hmp = NULL;

    expect_refused(qts, "host", "'vh0'", "'vdpa-mgmt.host' not found");
    qtest_qmp_assert_success(qts, "{'execute': 'device_add', 'arguments': "
                             "{'driver': 'vdpa-mgmt', 'id': 'm0'}}");
    hmp = qtest_hmp(qts, "vpri-reclaim vh0 10");
    g_assert_cmpstr(hmp, ==, "Error: no vpri-host 'vh0': this emulator is "
                    "built without VPRI\r\n");
    g_free(hmp);
    hmp = qtest_hmp(qts, "info vpri");
    g_assert_cmpstr(hmp, ==, "VPRI is not built into this emulator\r\n");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vdpa-mgmt/discover", test_discover);
    qtest_add_func("/vdpa-mgmt/blk-lifecycle", test_blk_lifecycle);
    qtest_add_func("/vdpa-mgmt/msi-per-queue", test_msi_per_queue);
    qtest_add_func("/vdpa-mgmt/suspend-resume", test_suspend_resume);
    qtest_add_func("/vdpa-mgmt/bad-input", test_bad_input);
    qtest_add_func("/vdpa-mgmt/bad-properties", test_bad_properties);
    qtest_add_func("/vdpa-mgmt/scale-10k", test_scale);
    qtest_add_func("/vdpa-mgmt/migration", test_migration);
    qtest_add_func("/vdpa-mgmt/net", test_net);
    qtest_add_func("/vdpa-mgmt/admin-msix", test_admin_msix);
    /*
     * The cases behind a vpri-host need VPRI in the emulator; vdpa-mgmt
     * builds without it (make check-novpri runs this test there).
     */
    if (qtest_has_device("vpri-blk")) {
        qtest_add_func("/vdpa-mgmt/vpri-faults", test_vpri_faults);
        qtest_add_func("/vdpa-mgmt/net-vpri-faults", test_net_vpri_faults);
        qtest_add_func("/vdpa-mgmt/migration-fault-pending",
                       test_migration_fault_pending);
        qtest_add_func("/vdpa-mgmt/slot-waiters-bounded",
                       test_slot_waiters_bounded);
        /* a vpri-host makes every blk request bounce */
        qtest_add_func("/vdpa-mgmt/bounds/bounce-cap", test_bounce_cap);
    } else {
        qtest_add_func("/vdpa-mgmt/no-vpri", test_no_vpri);
    }
    qtest_add_func("/vdpa-mgmt/migration-net", test_migration_net);
    qtest_add_func("/vdpa-mgmt/migration-delta", test_migration_delta);
    qtest_add_func("/vdpa-mgmt/stopped-vm", test_stopped_vm);
    qtest_add_func("/vdpa-mgmt/stopped-vm-inflight",
                   test_stopped_vm_inflight);
    qtest_add_func("/vdpa-mgmt/queue-size-exceeded",
                   test_queue_size_exceeded);
    qtest_add_func("/vdpa-mgmt/migration-bad-stream",
                   test_migration_bad_stream);
    return g_test_run();
}
