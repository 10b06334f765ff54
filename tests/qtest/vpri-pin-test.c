/*
 * qtest: the DMA pinning policy of vpri-host follows the pages a vpri-blk
 * touches (its access tracker, collected every 50 ms of virtual time), the
 * pins keep those pages resident through vpri-reclaim, and DMA traces are
 * recorded with vpri-trace-start / vpri-trace-stop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "vpri-blk-harness.h"

#define RAM_MB              256
#define PAGE                4096
#define EPOCH_NS            (50 * 1000 * 1000)
#define WAIT_US             (15 * G_USEC_PER_SEC)
#define CASE_TIMEOUT_US     (60 * G_USEC_PER_SEC)
/* Data pages per request */
#define DATA_PAGES          16

#define FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << VV_F_INDIRECT_DESC) | \
     (1ULL << VV_F_VERSION_1) | (1ULL << VV_F_ACCESS_PLATFORM))

static Ctx *pin_start(const char *hostopts)
{
    Ctx *c = ctx_new("vpri-pin");
    g_autofree char *args =
        g_strdup_printf("-M q35 -m %d -nodefaults -d guest_errors -D %s "
                        "-object vpri-host,id=vh0%s "
                        "-blockdev driver=file,node-name=d0,filename=%s "
                        "-device vpri-blk,drive=d0,host=vh0,id=vblk0",
                        RAM_MB, c->log, hostopts, c->img);

    ctx_connect(c, args);
    ctx_msix(c, 2);
    ctx_init_features(c, 1, FEATURES);
    return c;
}

static QDict *query(Ctx *c, QDict **host, QDict **dev)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'query-vpri' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert(ret);
    *host = qobject_to(QDict, qlist_peek(qdict_get_qlist(ret, "hosts")));
    *dev = qobject_to(QDict, qlist_peek(qdict_get_qlist(ret, "devices")));
    g_assert(*host && *dev);
    return rsp;
}

static uint64_t u64(QDict *d, const char *key)
{
    QNum *n = qobject_to(QNum, qdict_get(d, key));

    g_assert(n);
    return qnum_get_uint(n);
}

static uint64_t cpu_faults(Ctx *c)
{
    QDict *h, *d;
    QDict *rsp = query(c, &h, &d);
    uint64_t n = u64(h, "cpu-faults");

    qobject_unref(rsp);
    return n;
}

/*
 * One write of DATA_PAGES pages from @buf to sector 0, start to end.  The
 * header and status byte are fresh allocations.
 */
static void write_from(Ctx *c, uint64_t buf)
{
    VVQueue *q = queue(c, 0);
    uint64_t hdr = guest_alloc(&c->alloc, 16);
    uint64_t status = guest_alloc(&c->alloc, 1);
    uint8_t h[16] = { 0 };
    VVBuf bufs[3] = {
        { hdr, 16, false },
        { buf, DATA_PAGES * PAGE, false },
        { status, 1, true },
    };
    uint32_t id, len;

    stl_le_p(h, BLK_T_OUT);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));
    qtest_writeb(c->qts, status, 0xff);
    vv_queue_publish(q, vv_queue_add_chain(q, bufs, 3, false));
    vv_queue_kick(q);
    g_assert(vv_queue_wait_used(q, &id, &len, WAIT_US));
    g_assert_cmpint(qtest_readb(c->qts, status), ==, BLK_S_OK);
    guest_free(&c->alloc, hdr);
    guest_free(&c->alloc, status);
}

static uint64_t data_buffer(Ctx *c, uint8_t fill)
{
    uint64_t buf = guest_alloc(&c->alloc, DATA_PAGES * PAGE);

    for (int i = 0; i < DATA_PAGES; i++) {
        qtest_memset(c->qts, buf + i * PAGE, fill, PAGE);
    }
    return buf;
}

static void reclaim_all(Ctx *c)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'vpri-reclaim', "
                           "'arguments': { 'host': 'vh0', 'percent': 100 } }");

    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
}

/* CPU faults taken reading one byte of each page of @buf. */
static uint64_t touch_faults(Ctx *c, uint64_t buf)
{
    uint64_t before = cpu_faults(c);

    for (int i = 0; i < DATA_PAGES; i++) {
        qtest_readb(c->qts, buf + i * PAGE + 7);
    }
    return cpu_faults(c) - before;
}

/* Pins follow the pages the device DMAs, and survive reclaim. */
static void test_pins_follow_dma(void)
{
    /*
     * 256 MiB: 65536 pages; 0.035% is 22 pages: one request's pages (16
     * of data, header, status, the rings) and hardly more.
     */
    Ctx *c = pin_start(",pin-policy=lru,pin-budget=0.035");
    uint64_t a = data_buffer(c, 0x11), b = data_buffer(c, 0x22);
    QDict *h, *d, *p, *rsp;

    write_from(c, a);
    qtest_clock_step(c->qts, 2 * EPOCH_NS);
    rsp = query(c, &h, &d);
    p = qdict_get_qdict(h, "pinning");
    g_assert(p);
    g_assert_cmpstr(qdict_get_str(p, "policy"), ==, "lru");
    g_assert_cmpuint(u64(p, "budget-pages"), ==, 22);
    g_assert_cmpuint(u64(p, "epochs"), >=, 1);
    g_assert_cmpuint(u64(p, "pinned-pages"), >=, DATA_PAGES);
    g_assert_cmpuint(u64(p, "pinned-pages"), <=, 22);
    g_assert_cmpuint(u64(h, "pinned-pages"), ==, u64(p, "pinned-pages"));
    p = qdict_get_qdict(d, "pins");
    g_assert(p);
    g_assert_cmpstr(qdict_get_str(p, "kind"), ==, "block");
    g_assert_cmpuint(u64(p, "observed"), >=, DATA_PAGES);
    g_assert_cmpuint(u64(p, "pinned-pages"), >=, DATA_PAGES);
    qobject_unref(rsp);

    /* Everything unpinned goes; the buffer the device used stays. */
    reclaim_all(c);
    g_assert_cmpuint(touch_faults(c, a), <=, 1);
    g_assert_cmpuint(touch_faults(c, b), ==, DATA_PAGES);

    /* The device moves to the other buffer: so do the pins. */
    write_from(c, b);
    qtest_clock_step(c->qts, 2 * EPOCH_NS);
    reclaim_all(c);
    g_assert_cmpuint(touch_faults(c, b), <=, 1);
    /* At most the budget's remainder of A is still pinned. */
    g_assert_cmpuint(touch_faults(c, a), >=, DATA_PAGES - 4);
    assert_running(c);
    ctx_stop(c);
}

/* Without a policy nothing is pinned and the same pages are evicted. */
static void test_none_pins_nothing(void)
{
    Ctx *c = pin_start("");
    uint64_t a = data_buffer(c, 0x33);
    QDict *h, *d, *p, *rsp;

    write_from(c, a);
    qtest_clock_step(c->qts, 2 * EPOCH_NS);
    rsp = query(c, &h, &d);
    p = qdict_get_qdict(h, "pinning");
    g_assert(p);
    g_assert_cmpstr(qdict_get_str(p, "policy"), ==, "none");
    g_assert_cmpuint(u64(p, "pinned-pages"), ==, 0);
    g_assert_cmpuint(u64(h, "pinned-pages"), ==, 0);
    qobject_unref(rsp);
    reclaim_all(c);
    g_assert_cmpuint(touch_faults(c, a), ==, DATA_PAGES);
    ctx_stop(c);
}

static void expect_error(QDict *rsp, const char *needle)
{
    QDict *err = qdict_get_qdict(rsp, "error");

    g_assert(err);
    g_assert(strstr(qdict_get_str(err, "desc"), needle));
    qobject_unref(rsp);
}

/* A trace of the device's DMA, in the documented text format. */
static void test_trace(void)
{
    Ctx *c = pin_start(",pin-policy=adp");
    g_autofree char *path = g_strdup_printf("%s.trace", c->log);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    uint64_t a = data_buffer(c, 0x44), records;
    unsigned blk = 0, writes = 0;
    QDict *rsp;
    bool body = false;

    rsp = qtest_qmp(c->qts, "{ 'execute': 'vpri-trace-start', 'arguments': "
                    "{ 'host': 'vh0', 'file': %s } }", path);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    expect_error(qtest_qmp(c->qts, "{ 'execute': 'vpri-trace-start', "
                           "'arguments': { 'host': 'vh0', 'file': %s } }",
                           path), "already tracing");
    write_from(c, a);
    rsp = qtest_qmp(c->qts, "{ 'execute': 'vpri-trace-stop', 'arguments': "
                    "{ 'host': 'vh0' } }");
    records = u64(qdict_get_qdict(rsp, "return"), "records");
    qobject_unref(rsp);
    expect_error(qtest_qmp(c->qts, "{ 'execute': 'vpri-trace-stop', "
                           "'arguments': { 'host': 'vh0' } }"),
                 "not tracing");
    expect_error(qtest_qmp(c->qts, "{ 'execute': 'vpri-trace-start', "
                           "'arguments': { 'host': 'nope', 'file': %s } }",
                           path), "nope");

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    g_assert(g_str_has_prefix(text, "# recorded by vpri-host"));
    g_assert(strstr(text, "\niolab-dma-trace 1\n"));
    g_assert(strstr(text, "\nguest-pages 65536\n"));
    g_assert(strstr(text, "\ndevice 0 block vblk0\nrecords\n"));
    for (int i = 0; lines[i]; i++) {
        uint64_t t, page;
        unsigned dev;
        char kind, rw;

        if (!strcmp(lines[i], "records")) {
            body = true;
            continue;
        }
        if (!body || !lines[i][0]) {
            continue;
        }
        g_assert_cmpint(sscanf(lines[i], "%" SCNu64 " %u %c %" SCNu64
                               " %c", &t, &dev, &kind, &page, &rw), ==, 5);
        g_assert_cmpuint(dev, ==, 0);
        g_assert_cmpint(kind, ==, 'b');
        g_assert_cmpuint(page, <, 65536);
        blk++;
        /* The device read the data (a write request) and wrote status */
        writes += rw == 'w';
    }
    g_assert_cmpuint(blk, ==, records);
    /* header, 16 data pages, status, descriptor/avail/used ring reads */
    g_assert_cmpuint(blk, >=, DATA_PAGES + 2);
    g_assert_cmpuint(writes, >=, 2);
    unlink(path);
    ctx_stop(c);
}

/* HMP output of @cmd: one line, which starts with "Error: " when @error. */
static char *hmp_line(Ctx *c, const char *cmd, bool error)
{
    char *out = qtest_hmp(c->qts, "%s", cmd);

    g_test_message("(hmp) %s: %s", cmd, out);
    g_assert(g_str_has_suffix(out, "\r\n"));
    g_assert(strchr(out, '\n') == out + strlen(out) - 1);
    g_assert_cmpint(g_str_has_prefix(out, "Error: "), ==, error);
    return out;
}

/*
 * The HMP twins vpri-trace-start and vpri-trace-stop record the device's
 * DMA like the QMP commands, and vpri-trace-stop prints the record count.
 */
static void test_hmp_trace(void)
{
    Ctx *c = pin_start(",pin-policy=adp");
    g_autofree char *path = g_strdup_printf("%s.hmp-trace", c->log);
    g_autofree char *start = g_strdup_printf("vpri-trace-start vh0 %s", path);
    g_autofree char *text = NULL;
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    uint64_t a = data_buffer(c, 0x55), records;
    unsigned body = 0;
    char *recs;
    int used = 0;

    out = qtest_hmp(c->qts, "%s", start);
    g_assert_cmpstr(out, ==, "");
    g_free(out);
    write_from(c, a);
    out = hmp_line(c, "vpri-trace-stop vh0", false);
    g_assert_cmpint(sscanf(out, "%" SCNu64 " access records written\r\n%n",
                           &records, &used), ==, 1);
    g_assert_cmpint(used, ==, strlen(out));
    g_free(out);
    /* header, 16 data pages, status, descriptor/avail/used ring reads */
    g_assert_cmpuint(records, >=, DATA_PAGES + 2);

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    recs = strstr(text, "\nrecords\n");
    g_assert(recs);
    lines = g_strsplit(recs + strlen("\nrecords\n"), "\n", -1);
    for (int i = 0; lines[i]; i++) {
        body += lines[i][0] != '\0';
    }
    g_assert_cmpuint(body, ==, records);
    unlink(path);

    /* Errors: the QMP command's, after "Error: " */
    out = hmp_line(c, "vpri-trace-stop vh0", true);
    g_assert(strstr(out, "vpri-host 'vh0' is not tracing"));
    g_free(out);
    out = hmp_line(c, "vpri-trace-start vh0 /nonexistent/dir/trace", true);
    g_assert(strstr(out, "cannot create trace file '/nonexistent/dir/trace'"));
    ctx_stop(c);
}

static void test_bad_properties(void)
{
    QTestState *qts = qtest_init("-M q35 -nodefaults");

    expect_error(qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': "
                           "{ 'qom-type': 'vpri-host', 'id': 'v1', "
                           "'pin-policy': 'mru' } }"), "none, lru or adp");
    expect_error(qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': "
                           "{ 'qom-type': 'vpri-host', 'id': 'v2', "
                           "'pin-budget': '75' } }"), "0..50");
    expect_error(qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': "
                           "{ 'qom-type': 'vpri-host', 'id': 'v3', "
                           "'pin-budget': 'lots' } }"), "0..50");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    if (!vblk_tests_init(&argc, &argv, CASE_TIMEOUT_US)) {
        return g_test_run();
    }
    add_test("/iolab/vpri-pin/pins-follow-dma", test_pins_follow_dma);
    add_test("/iolab/vpri-pin/none-pins-nothing", test_none_pins_nothing);
    add_test("/iolab/vpri-pin/trace", test_trace);
    add_test("/iolab/vpri-pin/hmp-trace", test_hmp_trace);
    add_test("/iolab/vpri-pin/bad-properties", test_bad_properties);
    return g_test_run();
}
