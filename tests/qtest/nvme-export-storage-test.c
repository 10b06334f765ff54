/*
 * qtest for nvme-export's storage migration (storage-migration=on,
 * docs/storage-migration.rst): two QEMUs with separate images, the
 * namespace data in the migration stream.
 *
 * - migrate: the driver writes all through a bandwidth-limited
 *   migration; the destination image ends equal to the source's, byte for
 *   byte, every block written reads back on the destination, and what
 *   was sent is no more than what was allocated plus what changed;
 * - refusals before any data moves: a smaller destination image, another
 *   LBA format, a read-only image;
 * - cancel mid-copy, and a destination killed mid-copy: the source runs
 *   on, its write limit released, its I/O intact;
 * - a stream whose range header is corrupted is refused and nothing
 *   crashes;
 * - convergence: writes faster than max-bandwidth complete with
 *   auto-converge (the device throttles them), and not without it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "nvme-export-driver.h"
#include "iolab-migrate-wait.h"

#define IMG_SIZE    (32 * 1024 * 1024)
#define BS          4096                /* the default template's LBA size */
#define NBLOCKS     (IMG_SIZE / BS)
#define DEF_VID     0x1b36
#define DEF_DID     0x0115

typedef struct T {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    NxDev *d;
    uint64_t buf;               /* one 4 KiB guest buffer for I/O */
    char *src_img, *dst_img, *log, *sock;
    uint32_t *seed;             /* per block: the seed last written, 0 none */
} T;

static const char *mig_status(QTestState *qts);
static const char *wait_migration(QTestState *qts, int seconds);

static char *tmp_path(const char *tag)
{
    g_autofree char *tmpl = g_strdup_printf("nvmex-sto-%s-XXXXXX", tag);
    g_autoptr(GError) err = NULL;
    char *path;
    int fd = g_file_open_tmp(tmpl, &path, &err);

    g_assert_no_error(err);
    close(fd);
    return path;
}

static void make_image(const char *path, off_t size)
{
    int fd = open(path, O_RDWR | O_TRUNC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    close(fd);
}

/* The controller with its built-in namespace 1 on drive d0 */
#define DEFAULT_DEVICES \
    "-device nvme-export,id=nx0,drive=d0,storage-migration=on"

static char *qemu_args(T *t, const char *img, const char *drive_extra,
                       const char *devices, const char *incoming)
{
    return g_strdup_printf("-machine pc -m 128 -nodefaults "
                           "-d guest_errors -D %s "
                           "-drive if=none,id=d0,file=%s,format=raw,"
                           "file.locking=off%s %s %s%s",
                           t->log, img, drive_extra, devices,
                           incoming ? "-incoming " : "",
                           incoming ? incoming : "");
}

/* The source QEMU, with @devices, the driver ready on I/O queue 1 */
static T *t_start_devices(const char *devices)
{
    T *t = g_new0(T, 1);
    g_autofree char *args = NULL;

    t->src_img = tmp_path("src");
    t->dst_img = tmp_path("dst");
    t->log = tmp_path("log");
    t->sock = g_strdup_printf("%s.sock", t->log);
    t->seed = g_new0(uint32_t, NBLOCKS);
    make_image(t->src_img, IMG_SIZE);
    make_image(t->dst_img, IMG_SIZE);
    args = qemu_args(t, t->src_img, "", devices, NULL);
    t->qts = qtest_init(args);
    pc_alloc_init(&t->alloc, t->qts, 0);
    t->bus = qpci_new_pc(t->qts, &t->alloc);
    t->d = nx_find(t->qts, &t->alloc, t->bus, DEF_VID, DEF_DID);
    g_assert(t->d);
    g_assert(nx_enable(t->d, 32));
    g_assert_cmpint(nx_set_features(t->d, 0x07, 0x00030003, NULL), ==, 0);
    g_assert_cmpint(nx_create_ioq(t->d, 1, 64), ==, 0);
    t->buf = nx_alloc(t->d, BS, BS);
    return t;
}

static T *t_start(void)
{
    return t_start_devices(DEFAULT_DEVICES);
}

static void t_stop(T *t)
{
    nx_free(t->d);
    qpci_free_pc(t->bus);
    alloc_destroy(&t->alloc);
    qtest_quit(t->qts);
    unlink(t->src_img);
    unlink(t->dst_img);
    unlink(t->log);
    unlink(t->sock);
    g_free(t->src_img);
    g_free(t->dst_img);
    g_free(t->log);
    g_free(t->sock);
    g_free(t->seed);
    g_free(t);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = seed >> 16;
    }
}

/* A one-block read or write of namespace 1 through the test's buffer */
static void io_cmd(T *t, NxCmd *c, uint8_t opc, uint64_t lba)
{
    nx_cmd(c, opc, 1);
    nx_cmd_prp(c, t->buf, 0);
    nx_cmd_dw(c, 10, lba);
    nx_cmd_dw(c, 11, lba >> 32);
    nx_cmd_dw(c, 12, 0);
}

static int io(T *t, uint8_t opc, uint64_t lba)
{
    NxCmd c;

    io_cmd(t, &c, opc, lba);
    return nx_exec(t->d, 1, &c, NULL);
}

/* Write block @lba with data made from @seed, and remember it. */
static void write_block(T *t, uint64_t lba, uint32_t seed)
{
    uint8_t data[BS];

    fill(data, sizeof(data), seed);
    nx_memwrite(t->d, t->buf, data, sizeof(data));
    g_assert_cmpint(io(t, 0x01, lba), ==, 0);
    t->seed[lba] = seed;
}

/*
 * A write submitted while a migration runs.  The migration pauses before
 * the switch-over (pause-before-switchover), with the source stopped: a
 * write whose doorbell it rang just before is in the device state that
 * will be saved, and completes on the destination (or completed on the
 * source while it drained, and its completion migrates).  Returns true
 * when it completed here; false when the migration reached the pause
 * first (call finish_pending_write() on the destination).
 * @step: a rate limit may hold the write back in virtual time, which
 * under qtest moves only when the test steps it.
 */
static bool write_block_live(T *t, uint64_t lba, uint32_t seed, bool step)
{
    uint8_t data[BS];
    NxCqe e;
    NxCmd c;

    fill(data, sizeof(data), seed);
    nx_memwrite(t->d, t->buf, data, sizeof(data));
    io_cmd(t, &c, 0x01, lba);
    nx_queue(t->d, 1, &c);
    nx_ring(t->d, 1);
    t->seed[lba] = seed;
    for (int i = 0; ; i++) {
        if (nx_reap(t->d, 1, &e, 200)) {
            g_assert_cmpint(NX_SC(e.status), ==, 0);
            return true;
        }
        if (step) {
            qtest_clock_step(t->qts, 1000 * 1000);  /* 1 ms */
        }
        if (i % 16 == 15 && !strcmp(mig_status(t->qts), "pre-switchover")) {
            return false;
        }
        g_assert_cmpint(i, <, 200000);
    }
}

static void finish_pending_write(T *t)
{
    NxCqe e;

    g_assert_true(nx_reap(t->d, 1, &e, NX_TIMEOUT_US));
    g_assert_cmpint(NX_SC(e.status), ==, 0);
}

/* Every block written reads back as written; the others as zeros. */
static void verify_blocks(T *t)
{
    uint8_t want[BS], got[BS];

    for (uint64_t lba = 0; lba < NBLOCKS; lba++) {
        if (t->seed[lba]) {
            fill(want, sizeof(want), t->seed[lba]);
        } else if (lba % 7) {
            continue;               /* a sample of the holes suffices */
        } else {
            memset(want, 0, sizeof(want));
        }
        qtest_memset(t->qts, t->buf, 0xa5, BS);
        g_assert_cmpint(io(t, 0x02, lba), ==, 0);
        nx_memread(t->d, t->buf, got, sizeof(got));
        g_assert_cmpmem(got, sizeof(got), want, sizeof(want));
    }
}

/*
 * The two images are equal, block for block, but for @skip (a write the
 * destination alone may have carried out: see write_block_live()).
 */
static void assert_images_equal(const char *a, const char *b, int64_t skip)
{
    g_autofree char *da = NULL, *db = NULL;
    gsize la, lb;

    g_assert(g_file_get_contents(a, &da, &la, NULL));
    g_assert(g_file_get_contents(b, &db, &lb, NULL));
    g_assert_cmpuint(la, ==, lb);
    for (gsize off = 0; off < la; off += BS) {
        if ((int64_t)(off / BS) != skip && memcmp(da + off, db + off, BS)) {
            g_error("block %" G_GSIZE_FORMAT " differs", off / BS);
        }
    }
}

static const char *mig_status(QTestState *qts)
{
    static char status[32];
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_strlcpy(status, qdict_haskey(ret, "status")
                      ? qdict_get_str(ret, "status") : "none",
              sizeof(status));
    qobject_unref(rsp);
    return status;
}

/* The source stopped, before the switch-over: no more writes now. */
static bool mig_paused(const char *st)
{
    return !strcmp(st, "pre-switchover") || !strcmp(st, "completed") ||
           !strcmp(st, "failed") || !strcmp(st, "cancelled");
}

static void pause_before_switchover(QTestState *qts)
{
    qtest_qmp_assert_success(qts,
        "{ 'execute': 'migrate-set-capabilities', 'arguments': {"
        "  'capabilities': [ { 'capability': 'pause-before-switchover',"
        "                      'state': true } ] } }");
}

/* Wait for the pause, let the migration finish, and return its end. */
static const char *continue_migration(QTestState *qts, int seconds)
{
    static const char *const paused[] = { "pre-switchover", NULL };
    g_autofree char *st = iolab_migrate_wait(qts, paused,
                                             seconds * G_USEC_PER_SEC, NULL);

    if (!strcmp(st, "pre-switchover")) {
        qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-continue',"
                                 "  'arguments': { 'state': "
                                 "'pre-switchover' } }");
    }
    return wait_migration(qts, seconds);
}

/* The end the migration reaches within @seconds (or its status then) */
static const char *wait_migration(QTestState *qts, int seconds)
{
    static char status[32];
    g_autofree char *st = iolab_migrate_wait(qts, NULL,
                                             seconds * G_USEC_PER_SEC, NULL);

    g_strlcpy(status, st, sizeof(status));
    return status;
}

/* The storage-migration member of namespace 1 in query-nvme-export. */
static QDict *storage_info(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-nvme-export' }");
    QList *ctrls = qdict_get_qlist(rsp, "return");
    QDict *ctrl = qobject_to(QDict, qlist_peek(ctrls));
    QList *nss = qdict_get_qlist(ctrl, "namespaces");
    QDict *ns = qobject_to(QDict, qlist_peek(nss));
    QDict *sm = qdict_get_qdict(ns, "storage-migration");

    g_assert(sm);
    qobject_ref(sm);
    qobject_unref(rsp);
    return sm;
}

static void set_bandwidth(QTestState *qts, uint64_t bps)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             "  'arguments': { 'max-bandwidth': %" PRIu64
                             " } }", bps);
}

static void start_migration(QTestState *qts, const char *uri)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate',"
                             "  'arguments': { 'uri': %s } }", uri);
}

/* Point the driver at the destination's copy of the same function */
static void switch_to(T *t, QTestState *dst)
{
    nx_switch_to(t->d, dst, &t->alloc);
    t->bus = t->d->bus;
    t->qts = t->d->qts;
}

/* About 10% of the namespace allocated, in runs of 16 blocks. */
static void allocate_tenth(T *t, uint32_t seed)
{
    for (uint64_t lba = 0; lba < NBLOCKS; lba += 160) {
        for (int i = 0; i < 16; i++) {
            write_block(t, lba + i, seed++);
        }
    }
}

/* Wait until the storage migration has sent its first range */
static void wait_copying(T *t)
{
    for (int i = 0; ; i++) {
        QDict *sm = storage_info(t->qts);
        bool sending = qdict_get_int(sm, "sent-bytes") +
                       qdict_get_int(sm, "zero-bytes") > 0;

        qobject_unref(sm);
        if (sending) {
            return;
        }
        g_assert_cmpint(i, <, 3000);
        g_usleep(10 * 1000);
    }
}

/* A migration that ended early left the source as it was: no limit */
static void assert_source_released(T *t)
{
    QDict *sm = storage_info(t->qts);

    g_assert_cmpstr(qdict_get_str(sm, "state"), ==, "cancelled");
    g_assert_cmpuint(qdict_get_int(sm, "throttle-bandwidth"), ==, 0);
    g_assert_cmpuint(qdict_get_int(sm, "pending-bytes"), ==, 0);
    qobject_unref(sm);
}

static void test_migrate(void)
{
    T *t = t_start();
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES, uri);
    QTestState *dst;
    QDict *sm;
    uint64_t allocated, sent, zero, changed, written = 0;
    uint32_t seed = 1000;
    int64_t pending = -1;           /* the block of a write left pending */
    const char *st;

    allocate_tenth(t, 1);
    dst = qtest_init(args);
    /* 4 MiB/s: the 3.3 MiB allocated take most of a second to send. */
    set_bandwidth(t->qts, 4 * 1024 * 1024);
    pause_before_switchover(t->qts);
    start_migration(t->qts, uri);

    /* Write all through the copy: behind the walk, ahead of it, and over
     * blocks already sent, until the migration ends. */
    for (int i = 0; i < 4000; i++) {
        uint64_t lba = (i * 2654435761u) % NBLOCKS;

        if (mig_paused(mig_status(t->qts))) {
            break;
        }
        written++;
        if (!write_block_live(t, lba, seed++, false)) {
            pending = lba;
            break;
        }
        /* At most ~200 writes/s: well under the migration's bandwidth */
        g_usleep(5 * 1000);
    }
    st = continue_migration(t->qts, 60);
    g_assert_cmpstr(st, ==, "completed");
    g_assert_cmpuint(written, >, 8);

    sm = storage_info(t->qts);
    g_assert_cmpstr(qdict_get_str(sm, "state"), ==, "completed");
    allocated = qdict_get_int(sm, "allocated-bytes");
    sent = qdict_get_int(sm, "sent-bytes");
    zero = qdict_get_int(sm, "zero-bytes");
    changed = qdict_get_int(sm, "changed-bytes");
    g_assert_cmpuint(allocated, >=, (NBLOCKS / 160) * 16 * BS);
    g_assert_cmpuint(allocated, <=, IMG_SIZE / 5);
    /* Holes are never sent: what moved is allocated plus changed. */
    g_assert_cmpuint(sent + zero, <=, allocated + changed);
    g_assert_cmpuint(sent + zero, <, IMG_SIZE / 2);
    g_assert_cmpuint(qdict_get_int(sm, "pending-bytes"), ==, 0);
    g_assert_cmpuint(qdict_get_int(sm, "throttle-bandwidth"), ==, 0);
    qobject_unref(sm);

    switch_to(t, dst);
    if (pending >= 0) {
        finish_pending_write(t);
    }
    sm = storage_info(t->qts);
    g_assert_cmpstr(qdict_get_str(sm, "state"), ==, "completed");
    g_assert_cmpuint(qdict_get_int(sm, "sent-bytes"), ==, sent);
    /* What it wrote was made durable before it said it had loaded */
    g_assert_cmpuint(qdict_get_int(sm, "flushes"), >=, 1);
    qobject_unref(sm);

    /* The guest's view on the destination, then the images themselves. */
    verify_blocks(t);
    assert_images_equal(t->src_img, t->dst_img, pending);
    t_stop(t);
}

/*
 * A deallocate of ranges far apart, while a migration copies: each range
 * is logged as changed on its own, not the span between them (which
 * would send the blocks in between again for nothing).
 */
static void test_deallocate_ranges(void)
{
    T *t = t_start();
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES, uri);
    uint64_t ranges = nx_alloc(t->d, BS, BS);
    uint8_t r[32] = { 0 };
    QTestState *dst;
    QDict *sm;
    uint64_t before, after;
    NxCmd c;

    allocate_tenth(t, 1);
    dst = qtest_init(args);
    qtest_set_expected_status(dst, 1);
    set_bandwidth(t->qts, 256 * 1024);      /* slow: seconds to copy */
    start_migration(t->qts, uri);
    for (int i = 0; ; i++) {
        bool bulk;

        sm = storage_info(t->qts);
        bulk = !strcmp(qdict_get_str(sm, "state"), "bulk");
        before = qdict_get_int(sm, "changed-bytes");
        qobject_unref(sm);
        if (bulk) {
            break;
        }
        g_assert_cmpint(i, <, 3000);
        g_usleep(10 * 1000);
    }

    /* Range 0: block 7 (written), 1 block; range 1: blocks 8000-8001 */
    stl_le_p(r + 4, 1);
    stq_le_p(r + 8, 7);
    stl_le_p(r + 16 + 4, 2);
    stq_le_p(r + 16 + 8, 8000);
    qtest_memwrite(t->qts, ranges, r, sizeof(r));
    nx_cmd(&c, 0x09, 1);                    /* Dataset Management */
    nx_cmd_prp(&c, ranges, 0);
    nx_cmd_dw(&c, 10, 1);                   /* 2 ranges */
    nx_cmd_dw(&c, 11, 1 << 2);              /* AD: deallocate */
    g_assert_cmpint(nx_exec(t->d, 1, &c, NULL), ==, 0);
    t->seed[7] = t->seed[8000] = t->seed[8001] = 0;    /* zeros now */

    sm = storage_info(t->qts);
    after = qdict_get_int(sm, "changed-bytes");
    qobject_unref(sm);
    g_assert_cmpuint(after - before, ==, 3 * BS);

    qtest_qmp_assert_success(t->qts, "{ 'execute': 'migrate_cancel' }");
    g_assert_cmpstr(wait_migration(t->qts, 30), ==, "cancelled");
    qtest_wait_qemu(dst);
    qtest_quit(dst);
    verify_blocks(t);
    t_stop(t);
}

/*
 * The full-copy ablation (x-storage-full-copy=on) sends every block as
 * data, holes included: what the benchmarks compare the allocated-first
 * copy against.
 */
static void test_full_copy(void)
{
    const char *devices = DEFAULT_DEVICES ",x-storage-full-copy=on";
    T *t;
    g_autofree char *uri = NULL;
    g_autofree char *args = NULL;
    QTestState *dst;
    QDict *sm;

    t = t_start_devices(devices);
    write_block(t, 7, 70);                  /* one block allocated */
    uri = g_strdup_printf("unix:%s", t->sock);
    args = qemu_args(t, t->dst_img, "", devices, uri);
    dst = qtest_init(args);
    start_migration(t->qts, uri);
    g_assert_cmpstr(wait_migration(t->qts, 60), ==, "completed");
    sm = storage_info(t->qts);
    g_assert_cmpuint(qdict_get_int(sm, "allocated-bytes"), <=, 64 * BS);
    g_assert_cmpuint(qdict_get_int(sm, "sent-bytes"), ==, IMG_SIZE);
    g_assert_cmpuint(qdict_get_int(sm, "zero-bytes"), ==, 0);
    qobject_unref(sm);
    switch_to(t, dst);
    /*
     * The destination flushes every 64 MiB it writes, at the end of a
     * pass with 4 MiB or more not flushed, and at the end: for a 32 MiB
     * image the guest does not write to, after the one pass over it and
     * at the end.
     */
    sm = storage_info(t->qts);
    g_assert_cmpuint(qdict_get_int(sm, "sent-bytes"), ==, IMG_SIZE);
    g_assert_cmpuint(qdict_get_int(sm, "flushes"), ==, 2);
    qobject_unref(sm);
    verify_blocks(t);
    assert_images_equal(t->src_img, t->dst_img, -1);
    t_stop(t);
}

/* A destination QEMU that must refuse the stream: it exits with 1. */
static void refused_by(T *t, const char *drive_extra, const char *devices)
{
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, drive_extra, devices,
                                      uri);
    QTestState *dst = qtest_init(args);
    QDict *sm;
    const char *st;

    qtest_set_expected_status(dst, 1);
    start_migration(t->qts, uri);
    st = wait_migration(t->qts, 30);
    /* "completed" when the source finished sending before the refusal */
    g_assert_true(!strcmp(st, "failed") || !strcmp(st, "completed"));
    qtest_wait_qemu(dst);
    qtest_quit(dst);

    /* Nothing was written into the destination image. */
    {
        g_autofree char *data = NULL;
        gsize len;

        g_assert(g_file_get_contents(t->dst_img, &data, &len, NULL));
        for (gsize i = 0; i < len; i++) {
            g_assert_cmpint(data[i], ==, 0);
        }
    }

    /* The source runs on, and its I/O works. */
    if (!strcmp(st, "completed")) {
        qtest_qmp_assert_success(t->qts, "{ 'execute': 'cont' }");
    }
    write_block(t, 5, 77);
    verify_blocks(t);
    sm = storage_info(t->qts);
    g_assert_cmpuint(qdict_get_int(sm, "throttle-bandwidth"), ==, 0);
    qobject_unref(sm);
}

static void test_refuse_small_image(void)
{
    T *t = t_start();

    allocate_tenth(t, 1);
    make_image(t->dst_img, IMG_SIZE / 2);
    refused_by(t, "", DEFAULT_DEVICES);
    t_stop(t);
}

static void test_refuse_other_lba_format(void)
{
    T *t = t_start();

    allocate_tenth(t, 1);
    /* The destination's namespace 1 is formatted with 512-byte blocks */
    refused_by(t, "", "-device nvme-export,id=nx0,storage-migration=on "
                  "-device nvme-export-ns,bus=nx0,drive=d0,nsid=1,"
                  "lba-formats=512");
    t_stop(t);
}

static void test_refuse_read_only(void)
{
    T *t = t_start();

    allocate_tenth(t, 1);
    /* The device takes a read-only image; storage migration does not. */
    refused_by(t, ",read-only=on", DEFAULT_DEVICES);
    t_stop(t);
}

static void test_cancel(void)
{
    T *t = t_start();
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES, uri);
    QTestState *dst;
    const char *st = "none";

    allocate_tenth(t, 1);
    dst = qtest_init(args);
    qtest_set_expected_status(dst, 1);
    set_bandwidth(t->qts, 256 * 1024);      /* slow: seconds to copy */
    start_migration(t->qts, uri);
    wait_copying(t);
    write_block(t, 3, 33);                  /* while it copies */
    qtest_qmp_assert_success(t->qts, "{ 'execute': 'migrate_cancel' }");
    st = wait_migration(t->qts, 30);
    g_assert_cmpstr(st, ==, "cancelled");
    qtest_wait_qemu(dst);
    qtest_quit(dst);

    assert_source_released(t);
    write_block(t, 4, 44);
    verify_blocks(t);
    t_stop(t);
}

/*
 * The destination dies mid-copy (SIGKILL, as an OOM kill or a crash
 * would): the source's migration fails, the guest goes on writing there,
 * the write limit is released and every block reads back as written.
 */
static void test_destination_dies(void)
{
    T *t = t_start();
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES,
                                      "defer");
    QTestState *dst;
    QDict *sm;

    allocate_tenth(t, 1);
    dst = qtest_init(args);
    /*
     * Killed while it loads, the destination's load may fail before it
     * quits (its image is closed under a write): without exit-on-error
     * that is a failed migration, not an exit status that depends on
     * which came first.
     */
    iolab_migrate_incoming(dst, uri);
    set_bandwidth(t->qts, 256 * 1024);      /* slow: seconds to copy */
    start_migration(t->qts, uri);
    wait_copying(t);
    write_block(t, 3, 33);                  /* while it copies */
    sm = storage_info(t->qts);
    g_assert_cmpstr(qdict_get_str(sm, "state"), ==, "bulk");
    qobject_unref(sm);

    qtest_kill_qemu(dst);
    g_assert_cmpstr(wait_migration(t->qts, 30), ==, "failed");
    qtest_quit(dst);

    assert_source_released(t);
    /* The guest never stopped: it writes on, and all it wrote is there. */
    write_block(t, 4, 44);
    write_block(t, 1000, 45);
    verify_blocks(t);
    t_stop(t);
}

/*
 * Save to a file, break the first range's header (its block number),
 * and load: the destination refuses the stream and exits with 1, no
 * signal, and writes nothing out of bounds.
 */
static void test_corrupt_range_header(void)
{
    T *t = t_start();
    g_autofree char *file = g_strdup_printf("%s.stream", t->log);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES,
                                      "defer");
    g_autofree char *data = NULL;
    uint8_t needle[16];
    QTestState *dst;
    gsize len;
    char *hit;

    write_block(t, 100, 9);                 /* the only allocated block */
    start_migration(t->qts, uri);
    g_assert_cmpstr(wait_migration(t->qts, 30), ==, "completed");

    g_assert(g_file_get_contents(file, &data, &len, NULL));
    stq_be_p(needle, 1);                    /* DATA */
    stq_be_p(needle + 8, 100);              /* block 100 */
    hit = memmem(data, len, needle, sizeof(needle));
    g_assert(hit);
    stq_be_p(hit + 8, 0xfffffff000000000ull);
    g_assert(g_file_set_contents(file, data, len, NULL));

    dst = qtest_init(args);
    qtest_set_expected_status(dst, 1);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "  'arguments': { 'uri': %s } }", uri);
    qtest_wait_qemu(dst);
    qtest_quit(dst);
    unlink(file);
    t_stop(t);
}

/*
 * Writes faster than max-bandwidth: the change log never drains, so the
 * migration cannot converge; with auto-converge the device limits the
 * writes and it completes.
 */
static bool converges(bool auto_converge, int window_s)
{
    T *t = t_start();
    g_autofree char *uri = g_strdup_printf("unix:%s", t->sock);
    g_autofree char *args = qemu_args(t, t->dst_img, "", DEFAULT_DEVICES, uri);
    QTestState *dst;
    gint64 end;
    const char *st = "none";
    uint32_t seed = 1;
    bool done = false, pending = false;
    QDict *sm;
    bool throttled = false;

    /*
     * 1 MiB allocated: at 256 KiB/s the bulk pass lasts about 4 s, while
     * the writes below fill the log.  They go to the first 4 MiB only, so
     * the log stays bounded; with a 10 ms downtime limit the migration
     * can complete only when the log is empty, which random writes at any
     * rate near the send rate never let happen without a limit.
     */
    for (uint64_t lba = 0; lba < 256; lba++) {
        write_block(t, lba, 100000 + lba);
    }
    dst = qtest_init(args);
    qtest_qmp_assert_success(t->qts,
        "{ 'execute': 'migrate-set-capabilities', 'arguments': {"
        "  'capabilities': [ { 'capability': 'auto-converge',"
        "                      'state': %i } ] } }", auto_converge);
    set_bandwidth(t->qts, 256 * 1024);
    qtest_qmp_assert_success(t->qts, "{ 'execute': 'migrate-set-parameters',"
                             "  'arguments': { 'downtime-limit': 10 } }");
    pause_before_switchover(t->qts);
    start_migration(t->qts, uri);
    end = g_get_monotonic_time() + window_s * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
        /* Fresh blocks, spread out: each one a new range in the log. */
        for (int i = 0; i < 16 && !pending; i++) {
            pending = !write_block_live(t, (seed * 2654435761u) % 1024,
                                        seed, true);
            seed++;
        }
        st = mig_status(t->qts);
        if (mig_paused(st)) {
            done = !strcmp(continue_migration(t->qts, 30), "completed");
            break;
        }
        sm = storage_info(t->qts);
        throttled |= qdict_get_int(sm, "throttle-bandwidth") > 0;
        qobject_unref(sm);
    }
    if (!done) {
        qtest_set_expected_status(dst, 1);
        qtest_qmp_assert_success(t->qts, "{ 'execute': 'migrate_cancel' }");
        wait_migration(t->qts, 30);
        qtest_wait_qemu(dst);
        qtest_quit(dst);
        t_stop(t);
        g_assert_false(throttled);          /* no limit without the cap */
        return false;
    }
    g_assert_true(throttled);
    switch_to(t, dst);
    if (pending) {
        finish_pending_write(t);
    }
    verify_blocks(t);
    t_stop(t);
    return true;
}

static void test_converge(void)
{
    g_test_message("without auto-converge: must not complete in 12 s");
    g_assert_false(converges(false, 12));
    g_test_message("with auto-converge: must complete within 60 s");
    g_assert_true(converges(true, 60));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/nvme-export/storage/migrate", test_migrate);
    qtest_add_func("/nvme-export/storage/deallocate-ranges",
                   test_deallocate_ranges);
    qtest_add_func("/nvme-export/storage/full-copy", test_full_copy);
    qtest_add_func("/nvme-export/storage/refuse-small-image",
                   test_refuse_small_image);
    qtest_add_func("/nvme-export/storage/refuse-other-lba-format",
                   test_refuse_other_lba_format);
    qtest_add_func("/nvme-export/storage/refuse-read-only",
                   test_refuse_read_only);
    qtest_add_func("/nvme-export/storage/cancel", test_cancel);
    qtest_add_func("/nvme-export/storage/destination-dies",
                   test_destination_dies);
    qtest_add_func("/nvme-export/storage/corrupt-range-header",
                   test_corrupt_range_header);
    qtest_add_func("/nvme-export/storage/converge", test_converge);
    return g_test_run();
}
