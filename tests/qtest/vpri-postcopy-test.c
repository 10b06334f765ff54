/*
 * vpri-host and postcopy migration (issue 17).
 *
 * A device DMA on the destination to a page that has not arrived yet
 * faults on the sideband ring; the page is asked for on the return path,
 * only that queue waits, and it completes when the page is placed.
 * Postcopy stays refused, up front and naming the host, where vpri-host
 * does not handle it yet: before, the destination failed to register
 * guest RAM (EBUSY) after the source had stopped the guest, and the VM
 * was lost.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "vpri-blk-harness.h"
#include "vdpa-mgmt-aq.h"
#include "iolab-migrate-wait.h"

#define GUEST_MIB 64

/* What each refusal must name: the host, and the device it cannot serve */
#define REFUSAL "vpri-host 'vh0' does not support postcopy with device 'vblk0'"

typedef struct Files {
    char *img;
} Files;

static void files_init(Files *f)
{
    int fd;
    GError *err = NULL;

    fd = g_file_open_tmp("vpri-postcopy-XXXXXX.img", &f->img, &err);
    g_assert_no_error(err);
    g_assert_cmpint(ftruncate(fd, 1 * MiB), ==, 0);
    close(fd);
}

static void files_free(Files *f)
{
    unlink(f->img);
    g_free(f->img);
}

/*
 * A vpri-host and a device it does not take postcopy for yet: one behind
 * a vIOMMU (its PA-BITMAP is indexed by IOVA)
 */
#define HOST_AND_DEVICE "-device intel-iommu,aw-bits=39,intremap=off " \
                        "-object vpri-host,id=vh0 " \
                        "-device vpri-blk,drive=d0,host=vh0,id=vblk0 "

/* A guest with guest RAM and a block node, and @extra. */
static QTestState *start(const Files *f, const char *extra)
{
    return qtest_initf("-M q35 -m %d -nodefaults "
                       "-blockdev driver=file,node-name=d0,filename=%s,"
                       "locking=off %s",
                       GUEST_MIB, f->img, extra);
}

static void assert_error(QTestState *qts, const char *needle,
                         const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void assert_error(QTestState *qts, const char *needle,
                         const char *fmt, ...)
{
    va_list ap;
    QDict *rsp, *err;

    va_start(ap, fmt);
    rsp = qtest_vqmp(qts, fmt, ap);
    va_end(ap);
    err = qdict_get_qdict(rsp, "error");
    g_assert_nonnull(err);
    g_test_message("error: %s", qdict_get_str(err, "desc"));
    g_assert_nonnull(strstr(qdict_get_str(err, "desc"), needle));
    qobject_unref(rsp);
}

static void assert_status(QTestState *qts, const char *want)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, want);
    qobject_unref(rsp);
}

static bool postcopy_cap(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts,
                           "{ 'execute': 'query-migrate-capabilities' }");
    QList *caps = qdict_get_qlist(rsp, "return");
    bool on = false;
    const QListEntry *e;

    QLIST_FOREACH_ENTRY(caps, e) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(c, "capability"), "postcopy-ram")) {
            on = qdict_get_bool(c, "state");
        }
    }
    qobject_unref(rsp);
    return on;
}

#define SET_PREEMPT_CAP \
    "{ 'execute': 'migrate-set-capabilities', 'arguments': " \
    "{ 'capabilities': [ { 'capability': 'postcopy-preempt', " \
    "'state': true } ] } }"

#define SET_POSTCOPY_CAP \
    "{ 'execute': 'migrate-set-capabilities', 'arguments': " \
    "{ 'capabilities': [ { 'capability': 'postcopy-ram', 'state': true } ] } }"

/* Source: the capability is refused, and so is starting postcopy. */
static void test_source_capability(void)
{
    Files f;
    QTestState *qts;

    files_init(&f);
    qts = start(&f, HOST_AND_DEVICE);
    assert_error(qts, REFUSAL, SET_POSTCOPY_CAP);
    g_assert_false(postcopy_cap(qts));
    assert_error(qts, "postcopy", "{ 'execute': 'migrate-start-postcopy' }");
    assert_status(qts, "running");
    qtest_quit(qts);
    files_free(&f);
}

/* Destination: the capability is refused, the destination still waits. */
static void test_destination_capability(void)
{
    Files f;
    QTestState *qts;

    files_init(&f);
    qts = start(&f, HOST_AND_DEVICE "-incoming defer");
    assert_error(qts, REFUSAL, SET_POSTCOPY_CAP);
    g_assert_false(postcopy_cap(qts));
    assert_status(qts, "inmigrate");
    qtest_quit(qts);
    files_free(&f);
}

/*
 * The capability set on the command line (-global) is checked before
 * devices exist, so it passes; the destination's host refuses the
 * source's postcopy advice, which comes while precopy starts: the
 * migration fails and the source's guest keeps running.
 */
static void test_destination_advice(void)
{
    Files f;
    QTestState *src, *dst;
    g_autofree char *sock = g_strdup_printf("%s/vpri-pc-advice-%d.sock",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *st = NULL;

    files_init(&f);
    dst = start(&f, HOST_AND_DEVICE "-incoming defer "
                "-global migration.x-postcopy-ram=on");
    iolab_migrate_incoming(dst, uri);
    src = start(&f, HOST_AND_DEVICE "-global migration.x-postcopy-ram=on");
    g_assert_true(postcopy_cap(src));
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    st = iolab_migrate_wait_end(src, 60 * G_USEC_PER_SEC);
    g_assert_cmpstr(st, ==, "failed");
    assert_status(src, "running");
    g_free(st);
    st = iolab_migrate_wait_end(dst, 60 * G_USEC_PER_SEC);
    g_assert_cmpstr(st, ==, "failed");
    qtest_quit(src);
    qtest_quit(dst);
    unlink(sock);
    files_free(&f);
}

/*
 * A vpri-host cannot be created while the capability is on (it would meet
 * a migration half-way); without devices it takes postcopy.
 */
static void test_object_add(void)
{
    Files f;
    QTestState *qts;

    files_init(&f);
    qts = start(&f, "");
    qtest_qmp_assert_success(qts, SET_POSTCOPY_CAP);
    assert_error(qts, "vpri-host 'vh0' cannot be created while the "
                 "postcopy-ram capability is on",
                 "{ 'execute': 'object-add', 'arguments': "
                 "{ 'qom-type': 'vpri-host', 'id': 'vh0' } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-capabilities', "
                             "'arguments': { 'capabilities': [ { "
                             "'capability': 'postcopy-ram', "
                             "'state': false } ] } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': "
                             "{ 'qom-type': 'vpri-host', 'id': 'vh0' } }");
    qtest_qmp_assert_success(qts, SET_POSTCOPY_CAP);
    assert_status(qts, "running");
    qtest_quit(qts);
    files_free(&f);
}

/* ------------------------------------------------------------------ */
/* Device faults on pages not received yet                           */

#define PAGE 4096
#define WAIT_US (30 * G_USEC_PER_SEC)

/* Without EVENT_IDX every used entry interrupts. */
#define FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << BLK_F_MQ) | \
     (1ULL << VV_F_VERSION_1) | (1ULL << VV_F_ACCESS_PLATFORM))

/*
 * QEMU sends RAM in address order, and the test holds both bandwidths at
 * 10 bytes/s.  QEMU counts the bytes it sent when it flushes its 32 KiB
 * stream buffer, so that limit lets through a buffer per 100 ms slot:
 * thousands of zero pages, or a few pages of data.  The 48 MiB below
 * FAR_GPA are data on the source (FAR_FENCE): the background stream takes
 * more than 30 s to come through them (16 MiB took 12 s on an idle
 * machine), so FAR_GPA does not arrive within RESUMED_US unless somebody
 * asks for it.  (Without the fence the stream brought FAR_GPA within
 * about a second of a postcopy recovery, which starts the stream again
 * from the first page, whether it was asked for or not.)
 */
#define FAR_GPA (56 * MiB)
#define FAR_FENCE (48 * MiB)
/* A page asked for after a recovery comes within this */
#define RESUMED_US (10 * G_USEC_PER_SEC)
#define SLOW_BPS 10

static uint64_t get_u64(QDict *d, const char *key)
{
    QNum *n = qobject_to(QNum, qdict_get(d, key));

    g_assert(n);
    return qnum_get_uint(n);
}

/* A member of query-vpri: the host's or the device's. */
static QDict *vpri_info(QTestState *qts, const char *list)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-vpri' }");
    QList *l = qdict_get_qlist(qdict_get_qdict(rsp, "return"), list);
    QDict *d = qobject_to(QDict, qlist_peek(l));

    qobject_ref(d);
    qobject_unref(rsp);
    return d;
}

static uint64_t device_faults(QTestState *qts, const char *key)
{
    QDict *d = vpri_info(qts, "devices");
    uint64_t v = get_u64(qdict_get_qdict(d, "faults"), key);

    qobject_unref(d);
    return v;
}

/* query-vpri's postcopy section of host vh0, @key of it. */
static uint64_t postcopy_u64(QTestState *qts, const char *key)
{
    QDict *h = vpri_info(qts, "hosts");
    uint64_t v = get_u64(qdict_get_qdict(h, "postcopy"), key);

    qobject_unref(h);
    return v;
}

static void assert_postcopy_state(QTestState *qts, const char *want)
{
    QDict *h = vpri_info(qts, "hosts");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(h, "postcopy"), "state"),
                    ==, want);
    qobject_unref(h);
}

static void wait_postcopy_state(QTestState *qts, const char *want)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    for (;;) {
        QDict *h = vpri_info(qts, "hosts");
        bool done = !strcmp(qdict_get_str(qdict_get_qdict(h, "postcopy"),
                                          "state"), want);

        qobject_unref(h);
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = seed + i * 7 + i / PAGE;
    }
}

typedef struct BlkWrite {
    VVQueue *q;
    uint64_t hdr, status;
    uint16_t head;
} BlkWrite;

/*
 * A one-page write of sector @sector from guest page @buf, its header and
 * status written and its chain added, not published yet.
 */
static void blk_write_prepare(Ctx *c, BlkWrite *w, VVQueue *q,
                              uint64_t sector, uint64_t buf)
{
    uint8_t hdr[16];
    VVBuf bufs[3];

    w->q = q;
    w->hdr = guest_alloc(&c->alloc, sizeof(hdr));
    stl_le_p(hdr, BLK_T_OUT);
    stl_le_p(hdr + 4, 0);
    stq_le_p(hdr + 8, sector);
    qtest_memwrite(c->qts, w->hdr, hdr, sizeof(hdr));
    w->status = guest_alloc(&c->alloc, 1);
    qtest_writeb(c->qts, w->status, 0xff);
    bufs[0] = (VVBuf){ w->hdr, sizeof(hdr), false };
    bufs[1] = (VVBuf){ buf, PAGE, false };
    bufs[2] = (VVBuf){ w->status, 1, true };
    w->head = vv_queue_add_chain(q, bufs, 3, false);
}

/* A one-page write of sector @sector from guest page @buf, published. */
static void blk_write(Ctx *c, BlkWrite *w, VVQueue *q, uint64_t sector,
                      uint64_t buf)
{
    blk_write_prepare(c, w, q, sector, buf);
    vv_queue_publish(q, w->head);
}

static void blk_write_done_within(Ctx *c, BlkWrite *w, gint64 us)
{
    uint32_t id, len;

    g_assert_true(vv_queue_wait_used(w->q, &id, &len, us));
    g_assert_cmpuint(id, ==, w->head);
    g_assert_cmpuint(qtest_readb(c->qts, w->status), ==, BLK_S_OK);
}

static void blk_write_done(Ctx *c, BlkWrite *w)
{
    blk_write_done_within(c, w, WAIT_US);
}

static void check_image(Ctx *c, uint64_t sector, const uint8_t *want)
{
    uint8_t got[PAGE];

    g_assert_cmpint(pread(c->img_fd, got, PAGE, sector * SECTOR), ==, PAGE);
    g_assert_cmpmem(got, PAGE, want, PAGE);
}

static void set_hold_faults(QTestState *qts, bool on)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': '/objects/vh0', "
                             "'property': 'x-hold-faults', 'value': %i } }",
                             on);
}

static uint64_t reclaim(QTestState *qts, uint64_t pages)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', 'arguments': "
                           "{ 'host': 'vh0', 'pages': %" PRIu64 " } }",
                           pages);
    uint64_t n = get_u64(qdict_get_qdict(rsp, "return"), "evicted");

    qobject_unref(rsp);
    return n;
}

/*
 * Once a migration that advised postcopy is over, the host has guest RAM
 * back (soon: it retries while QEMU's userfaultfd lets go): eviction
 * works again.
 */
static void assert_reclaim_resumes(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', "
                               "'arguments': { 'host': 'vh0', "
                               "'pages': 256 } }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        bool ok = ret && get_u64(ret, "evicted") == 256;

        if (!ret) {
            QDict *err = qdict_get_qdict(rsp, "error");

            g_assert_nonnull(strstr(qdict_get_str(err, "desc"),
                                    "with a postcopy migration"));
        }
        qobject_unref(rsp);
        if (ok) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

/*
 * Migrate with the rest of guest RAM trickling (SLOW_BPS) and switch to
 * postcopy at once: the destination runs, and a page the driver does not
 * touch there stays missing until a device asks for it.
 */
static void postcopy_start_slow(QTestState *src, QTestState *dst,
                                const char *uri)
{
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters', "
                             "'arguments': { 'max-bandwidth': %d, "
                             "'max-postcopy-bandwidth': %d } }",
                             SLOW_BPS, SLOW_BPS);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-start-postcopy' }");
    qtest_qmp_eventwait(dst, "RESUME");
    iolab_migrate_wait_for(src, "postcopy-active", WAIT_US);
}

/*
 * Lift the source's postcopy bandwidth limit, let the rest of guest RAM
 * come, and end the source once it says the migration completed.
 */
static void postcopy_run_out(QTestState *src)
{
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters', "
                             "'arguments': { 'max-postcopy-bandwidth': 0 } }");
    iolab_migrate_wait_for(src, "completed", WAIT_US);
    qtest_quit(src);
}

/* Bring [@addr, @addr + @len) over now, by a read as a vCPU's would */
static void pull_pages(QTestState *dst, uint64_t addr, uint64_t len)
{
    for (uint64_t a = addr & ~(uint64_t)(PAGE - 1); a < addr + len;
         a += PAGE) {
        qtest_readb(dst, a);
    }
}

/*
 * postcopy_start_slow(), and point the driver at the destination.  The
 * rings and the MSI-X page come over now, pulled by the driver's reads:
 * while faults are held, only the data pages the test chooses are
 * missing for the device.
 */
static void postcopy_switch_slow(Ctx *c, QTestState *src, QTestState *dst,
                                 const char *uri)
{
    postcopy_start_slow(src, dst, uri);
    c->qts = dst;
    c->bus->qts = dst;
    c->d->qts = dst;
    for (int qi = 0; qi < 2; qi++) {
        VVQueue *q = queue(c, qi);

        pull_pages(dst, q->ring_mem, q->used + PAGE - q->ring_mem);
    }
    qtest_readl(dst, c->msi_base);
}

/* Queue 0 writes FAR_GPA, not received yet: wait until its fault is held */
static void hold_queue0_fault(Ctx *c, QTestState *dst, BlkWrite *w0)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    set_hold_faults(dst, true);
    blk_write(c, w0, queue(c, 0), 0, FAR_GPA);
    vv_queue_kick(queue(c, 0));
    while (device_faults(dst, "pending") == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * Two QEMUs with vpri-blk (two queues) on one image and postcopy-ram on
 * both: the source with its driver set up and FAR_GPA filled with @far
 * (the page the destination will lack), the destination started with
 * "-incoming @incoming" (a URI, or "defer").  Returns the destination;
 * c->qts stays the source.
 */
static QTestState *blk_pc_start_skip(Ctx *c, const uint8_t far[PAGE],
                                     const char *incoming,
                                     uint64_t ring_skip);
static QTestState *blk_pc_start_opts(Ctx *c, const uint8_t far[PAGE],
                                     const char *incoming,
                                     uint64_t ring_skip,
                                     const char *host_opts);

static QTestState *blk_pc_start(Ctx *c, const uint8_t far[PAGE],
                                const char *incoming)
{
    return blk_pc_start_skip(c, far, incoming, 0);
}

/*
 * blk_pc_start(), with @ring_skip bytes of guest RAM left unallocated
 * before the rings: rings that high do not come with the background
 * stream while a test runs (see FAR_GPA).
 */
static QTestState *blk_pc_start_skip(Ctx *c, const uint8_t far[PAGE],
                                     const char *incoming,
                                     uint64_t ring_skip)
{
    return blk_pc_start_opts(c, far, incoming, ring_skip, "");
}

/* blk_pc_start_skip(), with @host_opts after both hosts' "id=vh0" */
static QTestState *blk_pc_start_opts(Ctx *c, const uint8_t far[PAGE],
                                     const char *incoming,
                                     uint64_t ring_skip,
                                     const char *host_opts)
{
    g_autofree char *args = g_strdup_printf(
        "-M q35 -m %d -nodefaults -object vpri-host,id=vh0%s "
        "-blockdev driver=file,node-name=d0,filename=%s,locking=off "
        "-device vpri-blk,drive=d0,host=vh0,id=vblk0,num-queues=2",
        GUEST_MIB, host_opts, c->img);
    /* The image as the source has it open: ctx_connect() unlinks it */
    g_autofree char *dargs = g_strdup_printf(
        "-M q35 -m %d -nodefaults -object vpri-host,id=vh0%s "
        "-blockdev driver=file,node-name=d0,filename=/proc/%d/fd/%d,"
        "locking=off "
        "-device vpri-blk,drive=d0,host=vh0,id=vblk0,num-queues=2 "
        "-incoming %s", GUEST_MIB, host_opts, getpid(), c->img_fd,
        incoming);
    QTestState *dst;

    ctx_connect(c, args);
    ctx_msix(c, 3);
    /*
     * The fence first: rings @ring_skip up lie inside it, and their setup
     * must come after it (it zeroes them)
     */
    qtest_memset(c->qts, FAR_GPA - FAR_FENCE, 0xa5, FAR_FENCE);
    if (ring_skip) {
        g_assert(guest_alloc(&c->alloc, ring_skip));
    }
    ctx_init_features(c, 2, FEATURES);
    qtest_memwrite(c->qts, FAR_GPA, far, PAGE);
    dst = qtest_init(dargs);
    qtest_qmp_assert_success(c->qts, SET_POSTCOPY_CAP);
    qtest_qmp_assert_success(dst, SET_POSTCOPY_CAP);
    return dst;
}

/*
 * vpri-blk on the destination of a postcopy migration: queue 0 writes a
 * page the source wrote and the destination has not received; its DMA
 * faults, and while the fault waits queue 1 writes a page that is here and
 * completes.  Then the page is asked for, arrives, and queue 0 completes
 * with the source's data.  Once postcopy ends, vpri-host has guest RAM
 * back: eviction works again.  With @preempt, requested pages come on
 * QEMU's preempt channel, placed by another thread.
 */
static void check_blk_device_fault(bool preempt)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-%d.sock",
                                           g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], near[PAGE];
    QTestState *src, *dst;
    BlkWrite w0, w1;
    uint64_t near_buf, requests;

    fill(far, PAGE, 0x31);
    dst = blk_pc_start(c, far, "defer");
    src = c->qts;
    if (preempt) {
        /* Requested pages come on a channel of their own */
        qtest_qmp_assert_success(src, SET_PREEMPT_CAP);
        qtest_qmp_assert_success(dst, SET_PREEMPT_CAP);
    }
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    postcopy_switch_slow(c, src, dst, uri);
    /* Queue 0's fault stays on the ring until we let the handlers go */
    hold_queue0_fault(c, dst, &w0);

    /* Queue 1 runs meanwhile: the driver writes its page here and now */
    fill(near, PAGE, 0x52);
    near_buf = guest_alloc(&c->alloc, PAGE);
    qtest_memwrite(dst, near_buf, near, PAGE);
    blk_write(c, &w1, queue(c, 1), 64, near_buf);
    vv_queue_kick(queue(c, 1));
    blk_write_done(c, &w1);
    check_image(c, 64, near);
    g_assert_cmpuint(vv_queue_used_idx(queue(c, 0)), ==,
                     queue(c, 0)->last_used);

    /*
     * The page is asked for by the device's fault (the driver never
     * touched it here), arrives, and the write goes out intact.
     */
    requests = postcopy_u64(dst, "device-requests");
    set_hold_faults(dst, false);
    blk_write_done(c, &w0);
    check_image(c, 0, far);
    g_assert_cmpuint(device_faults(dst, "raised"), >=, 1);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 0);
    assert_postcopy_state(dst, "running");
    g_assert_cmpuint(postcopy_u64(dst, "device-requests"), >, requests);
    g_assert_cmpuint(postcopy_u64(dst, "waiting"), ==, 0);
    g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);
    {
        QDict *h = vpri_info(dst, "hosts");
        QDict *lat = qdict_get_qdict(qdict_get_qdict(h, "postcopy"),
                                     "fault-latency-ns");

        g_assert_cmpuint(get_u64(lat, "p50"), >, 0);
        g_test_message("device fault to page: p50 %" PRIu64 " p99 %"
                       PRIu64 " ns", get_u64(lat, "p50"),
                       get_u64(lat, "p99"));
        qobject_unref(h);
    }

    /* Let the rest come; then the host has guest RAM back */
    postcopy_run_out(src);
    assert_postcopy_state(dst, "done");
    g_assert_cmpuint(postcopy_u64(dst, "received"), >, 0);
    assert_reclaim_resumes(dst);
    ctx_stop(c);
}

/* Long enough that the test's next steps surely fall inside it */
#define WAKER_DELAY_MS 3000

static void set_waker_delay(QTestState *qts, uint32_t ms)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': '/objects/vh0', "
                             "'property': 'x-postcopy-waker-delay-ms', "
                             "'value': %u } }", ms);
}

/*
 * A page the driver writes on the destination is placed by QEMU, and
 * vCPUs see it at once; vpri-host's waker raises its PA-BITMAP entries
 * just after.  A device that looks in between takes the page as placed
 * (vpri_postcopy_placed) and raises no record for it.  The window is held
 * open: the destination's waker sleeps WAKER_DELAY_MS, and device faults
 * are held, so a record raised for a page already here would never be
 * served and the write would never complete.  (CI on 2026-12-06 lost
 * this race in device-fault-preempt: a write hung on its own header.)
 */
static void test_blk_placed_before_waker(void)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-pl-%d.sock",
                                           g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], near[PAGE];
    QTestState *src, *dst;
    BlkWrite w;
    uint64_t buf, raised;
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    fill(far, PAGE, 0x3c);
    dst = blk_pc_start(c, far, "defer");
    src = c->qts;
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    postcopy_switch_slow(c, src, dst, uri);
    while (device_faults(dst, "pending")) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    set_hold_faults(dst, true);
    set_waker_delay(dst, WAKER_DELAY_MS);
    raised = device_faults(dst, "raised");

    /*
     * A page past FAR_GPA, which the background stream has not brought:
     * the driver's write here has it placed, and its entries then wait
     * WAKER_DELAY_MS; the device reads it within that window.
     */
    fill(near, PAGE, 0x5e);
    buf = FAR_GPA + 4 * PAGE;
    qtest_memwrite(dst, buf, near, PAGE);
    blk_write(c, &w, queue(c, 1), 96, buf);
    vv_queue_kick(queue(c, 1));
    blk_write_done(c, &w);
    check_image(c, 96, near);
    g_assert_cmpuint(device_faults(dst, "raised"), ==, raised);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);

    set_waker_delay(dst, 0);
    set_hold_faults(dst, false);
    postcopy_run_out(src);
    assert_postcopy_state(dst, "done");
    ctx_stop(c);
}

/*
 * The connection breaks during postcopy (migrate-pause on the source: the
 * destination sees what it sees when the source dies, and the source
 * sends nothing more; a source stopped by SIGTERM may flush RAM on its
 * way out) while queue 0 waits for a page only the source has: the
 * destination goes postcopy-paused, the wait is reported (query-vpri's
 * waiting fault, the device's pending one), nothing failed, and queue 1
 * and the guest go on.
 */
static void test_blk_connection_breaks(void)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-%d.sock",
                                           g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], near[PAGE];
    QTestState *src, *dst;
    BlkWrite w0, w1;
    uint64_t near_buf;
    gint64 deadline;

    fill(far, PAGE, 0x13);
    dst = blk_pc_start(c, far, uri);
    src = c->qts;
    postcopy_switch_slow(c, src, dst, uri);
    /* Queue 0 waits for its page: it is asked for, never sent */
    hold_queue0_fault(c, dst, &w0);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-pause' }");
    iolab_migrate_wait_for(dst, "postcopy-paused", WAIT_US);
    set_hold_faults(dst, false);
    deadline = g_get_monotonic_time() + WAIT_US;
    while (postcopy_u64(dst, "waiting") == 0) {
        if (g_get_monotonic_time() >= deadline) {
            /* Say what happened instead (seen once in about 30 runs) */
            fprintf(stderr, "postcopy: requests %" PRIu64 " faults %"
                    PRIu64 " failed %" PRIu64 "; device: raised %" PRIu64
                    " resolved %" PRIu64 " failed %" PRIu64 " pending %"
                    PRIu64 "; queue 0 used %u\n",
                    postcopy_u64(dst, "device-requests"),
                    postcopy_u64(dst, "device-faults"),
                    postcopy_u64(dst, "failed"),
                    device_faults(dst, "raised"),
                    device_faults(dst, "resolved"),
                    device_faults(dst, "failed"),
                    device_faults(dst, "pending"),
                    vv_queue_used_idx(queue(c, 0)));
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }

    /* Reported, not failed; the rest goes on */
    fill(near, PAGE, 0x24);
    near_buf = guest_alloc(&c->alloc, PAGE);
    qtest_memwrite(dst, near_buf, near, PAGE);
    blk_write(c, &w1, queue(c, 1), 64, near_buf);
    vv_queue_kick(queue(c, 1));
    blk_write_done(c, &w1);
    check_image(c, 64, near);
    assert_status(dst, "running");
    g_assert_cmpuint(postcopy_u64(dst, "waiting"), ==, 1);
    g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 1);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    g_assert_cmpuint(vv_queue_used_idx(queue(c, 0)), ==,
                     queue(c, 0)->last_used);
    qtest_quit(dst);
    qtest_quit(src);
    close(c->img_fd);
    close(c->log_fd);
    g_free(c->img);
    g_free(c->log);
    g_free(c);
}

/* How a recovery test breaks and recovers the connection */
typedef enum RecoverCase {
    RECOVER_PLAIN,
    RECOVER_PREEMPT,            /* requested pages on the preempt channel */
    RECOVER_BREAKS_AGAIN,       /* a second break during the recovery */
} RecoverCase;

#define QEMU_VM_COMMAND_BYTE 0x08

/*
 * A recovery that breaks while both sides are in postcopy-recover, as
 * upstream's migration-test does it (double-failures): each side gets an
 * end of its own socket pair, so neither hears the other.  The
 * destination's pair carries the first byte of a real recovery (a
 * QEMU_VM_COMMAND), which takes it to postcopy-recover, where it waits
 * for the rest.  Then queue 0's held fault is released: the device
 * faults while the destination recovers, and its page is not asked for
 * (QEMU's fault thread stays stopped until the source says it resumes).
 * Both sides are paused again (migrate-pause), the second break.
 */
static void recover_breaks_again(QTestState *src, QTestState *dst,
                                 uint64_t requests)
{
    int to_src[2], to_dst[2];
    char cmd = QEMU_VM_COMMAND_BYTE;
    gint64 deadline;

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, to_src), ==, 0);
    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, to_dst), ==, 0);
    qtest_qmp_fds_assert_success(src, &to_src[0], 1,
                                 "{ 'execute': 'getfd', 'arguments': "
                                 "{ 'fdname': 'fd-broken' } }");
    qtest_qmp_fds_assert_success(dst, &to_dst[0], 1,
                                 "{ 'execute': 'getfd', 'arguments': "
                                 "{ 'fdname': 'fd-broken' } }");
    g_assert_cmpint(send(to_dst[1], &cmd, 1, 0), ==, 1);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-recover', "
                             "'arguments': { 'uri': 'fd:fd-broken' } }");
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': 'fd:fd-broken', 'resume': true } }");
    iolab_migrate_wait_for(src, "postcopy-recover", WAIT_US);
    iolab_migrate_wait_for(dst, "postcopy-recover", WAIT_US);

    /* The device faults while the destination recovers: it waits */
    set_hold_faults(dst, false);
    deadline = g_get_monotonic_time() + WAIT_US;
    while (postcopy_u64(dst, "waiting") == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
    assert_postcopy_state(dst, "paused");
    g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, requests);
    g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);

    /* The second break, on both sides */
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-pause' }");
    iolab_migrate_wait_for(src, "postcopy-paused", WAIT_US);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-pause' }");
    iolab_migrate_wait_for(dst, "postcopy-paused", WAIT_US);
    wait_postcopy_state(dst, "paused");
    g_assert_cmpuint(postcopy_u64(dst, "waiting"), ==, 1);
    g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, requests);
    g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    close(to_src[0]);
    close(to_src[1]);
    close(to_dst[0]);
    close(to_dst[1]);
}

/*
 * Postcopy recovery (patches/0012): the connection breaks while queue 0's
 * fault is held on the ring, so that the device faults only once the
 * destination is paused: the host keeps the request (state "paused", the
 * fault waiting, nothing failed) and queue 1 goes on.  migrate-recover on
 * the destination with a new URI, migrate with resume on the source: the
 * host asks again for the page queue 0 waits on, it comes, and queue 0's
 * write carries the source's data.  Then the rest comes, nothing lost.
 * RECOVER_PREEMPT: the same with postcopy-preempt on both sides (the
 * preempt channel is made again at the recovery, and the page asked for
 * again comes on it).  RECOVER_BREAKS_AGAIN: the fault is made during a
 * first recovery that breaks too (recover_breaks_again()), then the
 * second recovery goes through.
 */
static void check_blk_recover(RecoverCase how)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *uri2 = g_strdup_printf("unix:%s/vpri-pc-%d-2.sock",
                                            g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], near[PAGE], got[PAGE];
    QTestState *src, *dst;
    BlkWrite w0, w1;
    uint64_t near_buf, requests;
    gint64 deadline;

    fill(far, PAGE, 0x5c);
    dst = blk_pc_start(c, far, "defer");
    src = c->qts;
    if (how == RECOVER_PREEMPT) {
        qtest_qmp_assert_success(src, SET_PREEMPT_CAP);
        qtest_qmp_assert_success(dst, SET_PREEMPT_CAP);
    }
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    postcopy_switch_slow(c, src, dst, uri);
    /*
     * Queue 1's write is made ready now, while pages come: the test's
     * own stores to guest memory (its header, status and data) would
     * block QEMU's main loop on a missing page while paused, as a vCPU's
     * would.  Its chain is published during the break.
     */
    fill(near, PAGE, 0x6d);
    near_buf = guest_alloc(&c->alloc, PAGE);
    qtest_memwrite(dst, near_buf, near, PAGE);
    blk_write_prepare(c, &w1, queue(c, 1), 64, near_buf);
    hold_queue0_fault(c, dst, &w0);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-pause' }");
    iolab_migrate_wait_for(dst, "postcopy-paused", WAIT_US);
    iolab_migrate_wait_for(src, "postcopy-paused", WAIT_US);
    /* QEMU tells the host just after it says postcopy-paused */
    wait_postcopy_state(dst, "paused");
    requests = postcopy_u64(dst, "device-requests");

    if (how == RECOVER_BREAKS_AGAIN) {
        recover_breaks_again(src, dst, requests);
    } else {
        /* The device faults now, while paused: the fault waits, asks nothing */
        set_hold_faults(dst, false);
        deadline = g_get_monotonic_time() + WAIT_US;
        while (postcopy_u64(dst, "waiting") == 0) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(1000);
        }
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, requests);
        g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);
    }

    /* Queue 1 goes on meanwhile */
    vv_queue_publish(queue(c, 1), w1.head);
    vv_queue_kick(queue(c, 1));
    blk_write_done(c, &w1);
    check_image(c, 64, near);
    g_assert_cmpuint(vv_queue_used_idx(queue(c, 0)), ==,
                     queue(c, 0)->last_used);

    /* Recover on a new connection; the page queue 0 waits on comes */
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-recover', "
                             "'arguments': { 'uri': %s } }", uri2);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s, 'resume': true } }", uri2);
    iolab_migrate_wait_for(dst, "postcopy-active", WAIT_US);
    /* Asked for again, not brought by the background stream (FAR_FENCE) */
    blk_write_done_within(c, &w0, RESUMED_US);
    check_image(c, 0, far);
    assert_postcopy_state(dst, "running");
    g_assert_cmpuint(postcopy_u64(dst, "device-requests"), >, requests);
    g_assert_cmpuint(postcopy_u64(dst, "waiting"), ==, 0);
    g_assert_cmpuint(postcopy_u64(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 0);

    /* The rest comes; the source's page is intact here, as is queue 1's */
    postcopy_run_out(src);
    iolab_migrate_wait_for(dst, "completed", WAIT_US);
    assert_postcopy_state(dst, "done");
    qtest_memread(dst, FAR_GPA, got, PAGE);
    g_assert_cmpmem(got, PAGE, far, PAGE);
    qtest_memread(dst, near_buf, got, PAGE);
    g_assert_cmpmem(got, PAGE, near, PAGE);
    assert_reclaim_resumes(dst);
    ctx_stop(c);
}

static void test_blk_recover(void)
{
    check_blk_recover(RECOVER_PLAIN);
}

static void test_blk_recover_preempt(void)
{
    check_blk_recover(RECOVER_PREEMPT);
}

static void test_blk_recover_breaks_again(void)
{
    check_blk_recover(RECOVER_BREAKS_AGAIN);
}

static void test_blk_device_fault(void)
{
    check_blk_device_fault(false);
}

static void test_blk_device_fault_preempt(void)
{
    check_blk_device_fault(true);
}

/* The rings at about 41 MiB, below FAR_GPA */
#define PREFETCH_RING_SKIP (40 * MiB)

static void set_prefetch(QTestState *qts, bool on)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': '/objects/vh0', "
                             "'property': 'postcopy-prefetch', "
                             "'value': %i } }", on);
}

/*
 * Start postcopy into @dst (prefetch set on it as @prefetch), drive @dst
 * from now on, and wait until the destination's first look has settled:
 * with prefetch until every prefetched page has come, without until
 * both queues' faults have been served; no fault left waiting.
 */
static void pc_switch_and_settle(Ctx *c, QTestState *src, QTestState *dst,
                                 const char *uri, bool prefetch)
{
    gint64 deadline;

    set_prefetch(dst, prefetch);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    postcopy_start_slow(src, dst, uri);
    c->qts = dst;
    c->bus->qts = dst;
    c->d->qts = dst;
    qtest_readl(dst, c->msi_base);

    deadline = g_get_monotonic_time() + WAIT_US;
    while (postcopy_u64(dst, "waiting") || device_faults(dst, "pending") ||
           postcopy_u64(dst, "prefetch-hits") +
           postcopy_u64(dst, "prefetch-late") <
           postcopy_u64(dst, "prefetched") ||
           (!prefetch && device_faults(dst, "raised") < 2)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * Prefetch (vpri-host's postcopy-prefetch, on by default): as the guest
 * starts on the destination, the host asks for what its devices will
 * touch first, their rings among it.  The rings lie high in guest RAM,
 * out of the background stream's reach while the test runs, and the
 * driver completes a write on queue 0 on the source.  When the guest
 * starts, the device looks at each queue at once, reading its driver
 * area (and writing queue 0's device area), before the test touches
 * anything there:
 *
 * - with prefetch, those pages were asked for just before, so the
 *   look's faults wait on the prefetch's requests (late) and no device
 *   fault asks for a page (device-requests stays 0); once every
 *   prefetched page has arrived, a write on queue 1, whose header, data
 *   and status pages the driver writes on the destination, completes
 *   without a single device fault (its used ring came by the prefetch);
 * - without it, the look's faults ask for those pages themselves.
 */
static void check_blk_prefetch(bool prefetch)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-pf-%d.sock",
                                           g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], data[PAGE];
    QTestState *src, *dst;
    BlkWrite w;
    uint64_t buf, raised;

    fill(far, PAGE, 0x17);
    fill(data, PAGE, 0x6b);
    dst = blk_pc_start_skip(c, far, "defer", PREFETCH_RING_SKIP);
    src = c->qts;
    buf = guest_alloc(&c->alloc, PAGE);
    qtest_memwrite(src, buf, far, PAGE);
    blk_write(c, &w, queue(c, 0), 16, buf);
    vv_queue_kick(queue(c, 0));
    blk_write_done(c, &w);

    pc_switch_and_settle(c, src, dst, uri, prefetch);
    if (prefetch) {
        /* Three areas of each queue, on two pages at least */
        g_assert_cmpuint(postcopy_u64(dst, "prefetched"), >=, 4);
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, 0);
    } else {
        g_assert_cmpuint(postcopy_u64(dst, "prefetched"), ==, 0);
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), >=, 2);
    }

    /* A write on the destination, its pages written here */
    raised = device_faults(dst, "raised");
    buf = guest_alloc(&c->alloc, PAGE);
    qtest_memwrite(dst, buf, data, PAGE);
    blk_write(c, &w, queue(c, 1), 8, buf);
    vv_queue_kick(queue(c, 1));
    blk_write_done(c, &w);
    check_image(c, 8, data);
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 0);
    if (prefetch) {
        g_assert_cmpuint(device_faults(dst, "raised"), ==, raised);
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, 0);
    }

    postcopy_run_out(src);
    assert_postcopy_state(dst, "done");
    ctx_stop(c);
}

static void test_blk_prefetch(void)
{
    check_blk_prefetch(true);
}

static void test_blk_prefetch_off(void)
{
    check_blk_prefetch(false);
}

/* Data pages the source's device writes out, which its policy then pins */
#define PINNED_PAGES 16
/* Of 64 MiB, 0.5%: 81 pages, the data pages and the rest of each write */
#define PIN_OPTS ",pin-policy=lru,pin-budget=0.5"
#define PIN_EPOCH_NS (50 * 1000 * 1000)
/* Between the rings and the data pages: longer than a test takes to send */
#define PINNED_GAP (8 * MiB)

/*
 * The source's pin set, carried (issue 17): the source's device writes
 * out PINNED_PAGES data pages, high in guest RAM (out of the background
 * stream's reach, see FAR_GPA), and its lru policy pins them.  On the
 * destination, once the first look at the rings has settled, a write
 * from those same pages (the driver never touches them there):
 *
 * - with postcopy-prefetch (both sides), the pages came in the
 *   "vpri-host/pins" section and were asked for as it was loaded, so the
 *   write completes without a single device fault;
 * - without it, the device faults on them and asks for them itself.
 *
 * Either way the write carries the source's data.
 */
static void check_blk_pins_prefetch(bool prefetch)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-pin-%d.sock",
                                           g_get_tmp_dir(), getpid());
    uint8_t far[PAGE], data[PINNED_PAGES][PAGE];
    QTestState *src, *dst;
    BlkWrite w;
    uint64_t buf, raised, requests;
    QDict *h;

    fill(far, PAGE, 0x29);
    dst = blk_pc_start_opts(c, far, "defer", PREFETCH_RING_SKIP, PIN_OPTS);
    src = c->qts;
    /*
     * A gap after the rings: the background stream goes on from the last
     * page asked for, and the first look's requests for the rings must
     * not bring the data pages along
     */
    g_assert(guest_alloc(&c->alloc, PINNED_GAP));
    buf = guest_alloc(&c->alloc, PINNED_PAGES * PAGE);
    for (int i = 0; i < PINNED_PAGES; i++) {
        fill(data[i], PAGE, 0x40 + i);
        qtest_memwrite(src, buf + i * PAGE, data[i], PAGE);
        blk_write(c, &w, queue(c, 0), 32 + i * 8, buf + i * PAGE);
        vv_queue_kick(queue(c, 0));
        blk_write_done(c, &w);
    }
    /* An epoch ends: the policy pins what the device touched */
    qtest_clock_step(src, 2 * PIN_EPOCH_NS);
    h = vpri_info(src, "hosts");
    g_assert_cmpuint(get_u64(qdict_get_qdict(h, "pinning"), "pinned-pages"),
                     >=, PINNED_PAGES);
    qobject_unref(h);

    set_prefetch(src, prefetch);
    pc_switch_and_settle(c, src, dst, uri, prefetch);
    if (prefetch) {
        /* The pinned data pages at least (the rings may be pinned too) */
        g_assert_cmpuint(postcopy_u64(dst, "prefetched"), >=, PINNED_PAGES);
    } else {
        g_assert_cmpuint(postcopy_u64(dst, "prefetched"), ==, 0);
    }

    /*
     * The device reads the pinned pages on the destination, highest
     * first: the stream a request sets going does not reach the next one
     */
    raised = device_faults(dst, "raised");
    requests = postcopy_u64(dst, "device-requests");
    for (int i = PINNED_PAGES - 1; i >= 0; i--) {
        blk_write(c, &w, queue(c, 1), 512 + i * 8, buf + i * PAGE);
        vv_queue_kick(queue(c, 1));
        blk_write_done(c, &w);
        check_image(c, 512 + i * 8, data[i]);
    }
    g_assert_cmpuint(device_faults(dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(dst, "pending"), ==, 0);
    if (prefetch) {
        g_assert_cmpuint(device_faults(dst, "raised"), ==, raised);
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), ==, requests);
    } else {
        g_assert_cmpuint(device_faults(dst, "raised"), >=,
                         raised + PINNED_PAGES);
        g_assert_cmpuint(postcopy_u64(dst, "device-requests"), >=,
                         requests + PINNED_PAGES);
    }

    postcopy_run_out(src);
    assert_postcopy_state(dst, "done");
    ctx_stop(c);
}

static void test_blk_pins_prefetch(void)
{
    check_blk_pins_prefetch(true);
}

static void test_blk_pins_prefetch_off(void)
{
    check_blk_pins_prefetch(false);
}

/*
 * A migration with postcopy-ram on both sides that completes in precopy:
 * QEMU never says postcopy ended, yet the destination's host takes guest
 * RAM back when the guest starts.  Pages its host had evicted before the
 * advice came back first, intact.
 */
static void test_blk_precopy_advised(void)
{
    Ctx *c = ctx_new("vpri-postcopy");
    g_autofree char *uri = g_strdup_printf("unix:%s/vpri-pc-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *args = g_strdup_printf(
        "-M q35 -m %d -nodefaults -object vpri-host,id=vh0 "
        "-blockdev driver=file,node-name=d0,filename=%s,locking=off "
        "-device vpri-blk,drive=d0,host=vh0,id=vblk0,num-queues=2",
        GUEST_MIB, c->img);
    g_autofree char *dargs = NULL;
    uint8_t far[PAGE], got[PAGE];
    QTestState *src, *dst;
    BlkWrite w;

    ctx_connect(c, args);
    ctx_msix(c, 3);
    ctx_init_features(c, 2, FEATURES);
    fill(far, PAGE, 0x77);
    qtest_memwrite(c->qts, FAR_GPA, far, PAGE);
    src = c->qts;
    dargs = g_strdup_printf(
        "-M q35 -m %d -nodefaults -object vpri-host,id=vh0 "
        "-blockdev driver=file,node-name=d0,filename=/proc/%d/fd/%d,"
        "locking=off "
        "-device vpri-blk,drive=d0,host=vh0,id=vblk0,num-queues=2 "
        "-incoming defer", GUEST_MIB, getpid(), c->img_fd);
    dst = qtest_init(dargs);
    g_assert_cmpuint(reclaim(dst, 4096), ==, 4096);
    qtest_qmp_assert_success(src, SET_POSTCOPY_CAP);
    qtest_qmp_assert_success(dst, SET_POSTCOPY_CAP);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    iolab_migrate_wait_for(src, "completed", WAIT_US);
    qtest_qmp_eventwait(dst, "RESUME");
    qtest_quit(src);
    c->qts = dst;
    c->bus->qts = dst;
    c->d->qts = dst;
    {
        /* It never listened: no postcopy section */
        QDict *h = vpri_info(dst, "hosts");

        g_assert_false(qdict_haskey(h, "postcopy"));
        qobject_unref(h);
    }

    qtest_memread(dst, FAR_GPA, got, PAGE);
    g_assert_cmpmem(got, PAGE, far, PAGE);
    assert_reclaim_resumes(dst);
    /* The device still works, on pages evicted again */
    blk_write(c, &w, queue(c, 0), 8, FAR_GPA);
    vv_queue_kick(queue(c, 0));
    blk_write_done(c, &w);
    check_image(c, 8, far);
    ctx_stop(c);
}

/* ------------------------------------------------------------------ */
/* vdpa-mgmt's blk instances                                           */

#define VDPA_IMG_SIZE (1 * MiB)

typedef struct VdpaPc {
    char *img[2];               /* the backends of blk instances 0 and 1 */
    char *uri;
    QTestState *src, *dst;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VMAdmin *a;
    VMRing r[2];
    uint32_t id[2];
} VdpaPc;

static char *vdpa_pc_args(VdpaPc *v, const char *extra)
{
    return g_strdup_printf(
        "-M q35 -m %d -nodefaults -object vpri-host,id=vh0 "
        "-blockdev driver=file,node-name=d0,filename=%s,locking=off "
        "-blockdev driver=file,node-name=d1,filename=%s,locking=off "
        "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,host=vh0 %s",
        GUEST_MIB, v->img[0], v->img[1], extra);
}

/*
 * The source: a vdpa-mgmt on vh0 with two running blk instances of one
 * queue, one on each backend; and the destination, waiting for it, with
 * postcopy-ram on both sides.
 */
static void vdpa_pc_start(VdpaPc *v)
{
    g_autofree char *args = NULL;

    memset(v, 0, sizeof(*v));
    for (int i = 0; i < 2; i++) {
        GError *err = NULL;
        int fd = g_file_open_tmp("vpri-postcopy-vdpa-XXXXXX.img", &v->img[i],
                                 &err);

        g_assert_no_error(err);
        g_assert_cmpint(ftruncate(fd, VDPA_IMG_SIZE), ==, 0);
        close(fd);
    }
    v->uri = g_strdup_printf("unix:%s/vpri-pc-vdpa-%d.sock",
                             g_get_tmp_dir(), getpid());
    args = vdpa_pc_args(v, "");
    v->src = qtest_init(args);
    pc_alloc_init(&v->alloc, v->src, 0);
    v->bus = qpci_new_pc(v->src, &v->alloc);
    v->a = vm_open(v->src, &v->alloc, v->bus, 16);
    for (int i = 0; i < 2; i++) {
        v->id[i] = vm_bring_up(v->a, &v->r[i], VDPA_TYPE_BLK, 1, i, NULL);
    }
    g_free(args);
    args = vdpa_pc_args(v, "-incoming defer");
    v->dst = qtest_init(args);
    qtest_qmp_assert_success(v->src, SET_POSTCOPY_CAP);
    qtest_qmp_assert_success(v->dst, SET_POSTCOPY_CAP);
    qtest_qmp_assert_success(v->dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", v->uri);
}

/* The driver goes on on the destination; the source goes soon */
static void vdpa_pc_switch(VdpaPc *v)
{
    postcopy_start_slow(v->src, v->dst, v->uri);
    v->a->qts = v->dst;
    v->bus->qts = v->dst;
}

/* Let the rest of RAM come, and stop both sides */
static void vdpa_pc_finish(VdpaPc *v)
{
    postcopy_run_out(v->src);
    /* The destination completes after the host has heard postcopy end */
    iolab_migrate_wait_for(v->dst, "completed", WAIT_US);
    assert_postcopy_state(v->dst, "done");
    g_assert_cmpuint(postcopy_u64(v->dst, "failed"), ==, 0);
    vm_close(v->a);
    qpci_free_pc(v->bus);
    alloc_destroy(&v->alloc);
    qtest_quit(v->dst);
    for (int i = 0; i < 2; i++) {
        unlink(v->img[i]);
        g_free(v->img[i]);
    }
    g_free(v->uri);
}

static void check_image_file(const char *img, uint64_t sector,
                             const uint8_t *want)
{
    uint8_t got[PAGE];
    int fd = open(img, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, got, PAGE, sector * SECTOR), ==, PAGE);
    close(fd);
    g_assert_cmpmem(got, PAGE, want, PAGE);
}

static void wait_pending_fault(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    while (device_faults(qts, "pending") == 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * A blk instance of vdpa-mgmt on the destination of a postcopy
 * migration: instance 0 writes a page the source wrote and the
 * destination has not received; its DMA faults (held on the ring by
 * x-hold-faults), and while the fault waits instance 1 writes a page that
 * is here and completes.  Released, the fault asks for the page, it
 * arrives, and instance 0's write carries the source's data.  Before,
 * postcopy was refused with any vdpa-mgmt on the host.
 */
static void test_vdpa_blk_device_fault(void)
{
    VdpaPc v;
    VMAdmin *a;
    uint8_t far[PAGE], near[PAGE];
    uint64_t near_buf, requests;

    vdpa_pc_start(&v);
    a = v.a;
    fill(far, PAGE, 0x46);
    qtest_memwrite(v.src, FAR_GPA, far, PAGE);
    vdpa_pc_switch(&v);
    /* The admin queue and the rings come now; only FAR_GPA stays away */
    pull_pages(v.dst, a->sq, a->size * VDPA_SQE_SIZE);
    pull_pages(v.dst, a->cq, a->size * VDPA_CQE_SIZE);
    pull_pages(v.dst, a->buf, VM_BUF_SIZE);
    for (int i = 0; i < 2; i++) {
        pull_pages(v.dst, v.r[i].mem, VM_RING_BYTES);
    }

    /* Instance 0's fault stays on the ring until we let the handlers go */
    set_hold_faults(v.dst, true);
    vm_blk_post(a, &v.r[0], v.id[0], 0, BLK_T_OUT, 0, FAR_GPA, PAGE);
    wait_pending_fault(v.dst);

    /* Instance 1 runs meanwhile: the driver writes its page here and now */
    fill(near, PAGE, 0x57);
    near_buf = guest_alloc(&v.alloc, PAGE);
    qtest_memwrite(v.dst, near_buf, near, PAGE);
    g_assert_cmpint(vm_blk_io(a, &v.r[1], v.id[1], 0, BLK_T_OUT, 64,
                              near_buf, PAGE), ==, BLK_S_OK);
    check_image_file(v.img[1], 64, near);
    g_assert_cmpuint(qtest_readw(v.dst, v.r[0].used + 2), ==,
                     v.r[0].last_used);
    g_assert_cmpuint(device_faults(v.dst, "pending"), ==, 1);

    /* Asked for by the device's fault, the page comes; the write goes out */
    requests = postcopy_u64(v.dst, "device-requests");
    set_hold_faults(v.dst, false);
    g_assert_cmpint(vm_blk_wait(a, &v.r[0]), ==, BLK_S_OK);
    check_image_file(v.img[0], 0, far);
    g_assert_cmpuint(postcopy_u64(v.dst, "device-requests"), >, requests);
    g_assert_cmpuint(postcopy_u64(v.dst, "waiting"), ==, 0);
    g_assert_cmpuint(device_faults(v.dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(v.dst, "pending"), ==, 0);
    assert_postcopy_state(v.dst, "running");
    vdpa_pc_finish(&v);
}

/*
 * A blk request held at the switch-over: on the source, instance 0 took
 * it off its ring (the ring is pinned) and faulted on its data page,
 * which the host evicted, and the fault stays unanswered.  The request
 * travels as its head; the destination rebuilds it from its descriptors
 * while devices load, before those pages have come: the rebuild reads
 * them through QEMU's userfaultfd (before, it met the PA-BITMAP of
 * pages not received, failed the load and lost the VM).  Then the
 * request restarts, faults on its data page, which is asked for, and
 * completes with the source's data.
 */
static void test_vdpa_blk_held_at_switch(void)
{
    VdpaPc v;
    VMAdmin *a;
    uint8_t far[PAGE];
    QDict *rsp;

    vdpa_pc_start(&v);
    a = v.a;
    fill(far, PAGE, 0x68);
    qtest_memwrite(v.src, FAR_GPA, far, PAGE);
    qtest_qmp_assert_success(v.src, "{ 'execute': 'vpri-pin', 'arguments': "
                             "{ 'host': 'vh0', 'addr': %" PRIu64 ", "
                             "'size': %d } }", v.r[0].mem, PAGE);
    rsp = qtest_qmp(v.src, "{ 'execute': 'vpri-reclaim', 'arguments': "
                    "{ 'host': 'vh0', 'percent': 100 } }");
    g_assert_cmpuint(get_u64(qdict_get_qdict(rsp, "return"), "evicted"), >,
                     0);
    qobject_unref(rsp);
    set_hold_faults(v.src, true);
    vm_blk_post(a, &v.r[0], v.id[0], 0, BLK_T_OUT, 8, FAR_GPA, PAGE);
    wait_pending_fault(v.src);

    vdpa_pc_switch(&v);
    g_assert_cmpint(vm_blk_wait(a, &v.r[0]), ==, BLK_S_OK);
    check_image_file(v.img[0], 8, far);
    g_assert_cmpuint(postcopy_u64(v.dst, "device-requests"), >=, 1);
    g_assert_cmpuint(device_faults(v.dst, "failed"), ==, 0);
    g_assert_cmpuint(device_faults(v.dst, "pending"), ==, 0);
    vdpa_pc_finish(&v);
}

/* A vdpa-mgmt with a net backend: its net instances are not served yet */
static void test_vdpa_net_refused(void)
{
    Files f;
    QTestState *qts;
    int sv[2];
    g_autofree char *extra = NULL;

    g_assert_cmpint(socketpair(PF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    extra = g_strdup_printf("-object vpri-host,id=vh0 "
                            "-netdev socket,id=n0,fd=%d "
                            "-device vdpa-mgmt,id=vm0,netdev=n0,host=vh0",
                            sv[1]);
    files_init(&f);
    qts = start(&f, extra);
    close(sv[1]);
    assert_error(qts, "vpri-host 'vh0' does not support postcopy with "
                 "device 'vm0' yet: its net instances", SET_POSTCOPY_CAP);
    g_assert_false(postcopy_cap(qts));
    assert_status(qts, "running");
    qtest_quit(qts);
    close(sv[0]);
    files_free(&f);
}

int main(int argc, char **argv)
{
    if (!vblk_tests_init(&argc, &argv, 90 * G_USEC_PER_SEC)) {
        return g_test_run();
    }
    add_test("/vpri-postcopy/blk/device-fault", test_blk_device_fault);
    add_test("/vpri-postcopy/blk/device-fault-preempt",
             test_blk_device_fault_preempt);
    add_test("/vpri-postcopy/blk/placed-before-waker",
             test_blk_placed_before_waker);
    add_test("/vpri-postcopy/blk/precopy-advised", test_blk_precopy_advised);
    add_test("/vpri-postcopy/blk/connection-breaks",
             test_blk_connection_breaks);
    add_test("/vpri-postcopy/blk/recover", test_blk_recover);
    add_test("/vpri-postcopy/blk/prefetch", test_blk_prefetch);
    add_test("/vpri-postcopy/blk/prefetch-off", test_blk_prefetch_off);
    add_test("/vpri-postcopy/blk/pins-prefetch", test_blk_pins_prefetch);
    add_test("/vpri-postcopy/blk/pins-prefetch-off",
             test_blk_pins_prefetch_off);
    add_test("/vpri-postcopy/blk/recover-preempt", test_blk_recover_preempt);
    add_test("/vpri-postcopy/blk/recover-breaks-again",
             test_blk_recover_breaks_again);
    if (qtest_has_device("vdpa-mgmt")) {
        add_test("/vpri-postcopy/vdpa-blk/device-fault",
                 test_vdpa_blk_device_fault);
        add_test("/vpri-postcopy/vdpa-blk/held-at-switch",
                 test_vdpa_blk_held_at_switch);
        qtest_add_func("/vpri-postcopy/refused/vdpa-mgmt-net",
                       test_vdpa_net_refused);
    }
    qtest_add_func("/vpri-postcopy/refused/source-capability",
                   test_source_capability);
    qtest_add_func("/vpri-postcopy/refused/destination-capability",
                   test_destination_capability);
    qtest_add_func("/vpri-postcopy/refused/destination-advice",
                   test_destination_advice);
    qtest_add_func("/vpri-postcopy/refused/object-add", test_object_add);
    return g_test_run();
}
