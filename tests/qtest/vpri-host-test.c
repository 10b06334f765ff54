/*
 * vpri-host qtests: real eviction (the process's RSS drops, content comes
 * back intact), pinning, and monitor errors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "iolab-migrate-wait.h"

#define GUEST_MIB 128
#define PAGE 4096

/* Resident set of the QEMU process, in KiB. */
static long qemu_rss_kib(QTestState *qts)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            qtest_pid(qts));
    g_autofree char *text = NULL;
    char *line;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    line = strstr(text, "VmRSS:");
    g_assert_nonnull(line);
    return strtol(line + strlen("VmRSS:"), NULL, 10);
}

static QDict *host_info(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-vpri' }");
    QList *hosts = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "hosts");
    QDict *h = qobject_to(QDict, qlist_peek(hosts));

    qobject_ref(h);
    qobject_unref(rsp);
    return h;
}

/* Evict @n percent of guest RAM, or @n pages. */
static int64_t reclaim(QTestState *qts, bool percent, int64_t n)
{
    QDict *rsp = percent ?
        qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', 'arguments':"
                  " { 'host': 'vh0', 'percent': %" PRId64 " } }", n) :
        qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', 'arguments':"
                  " { 'host': 'vh0', 'pages': %" PRId64 " } }", n);

    g_assert_true(qdict_haskey(rsp, "return"));
    n = qdict_get_int(qdict_get_qdict(rsp, "return"), "evicted");
    qobject_unref(rsp);
    return n;
}

/*
 * qtest parses each command line by rescanning its input buffer, so large
 * transfers go in pieces.
 */
#define CHUNK (128 * KiB)

static uint8_t pattern(uint64_t a)
{
    return a * 7 + a / PAGE;
}

/* The pattern, each byte XORed with @flip (a second pattern). */
static void fill_pattern_flip(QTestState *qts, uint64_t addr, size_t len,
                              uint8_t flip)
{
    g_autofree uint8_t *buf = g_malloc(CHUNK);

    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = MIN(CHUNK, len - off);

        for (size_t i = 0; i < n; i++) {
            buf[i] = pattern(addr + off + i) ^ flip;
        }
        qtest_bufwrite(qts, addr + off, buf, n);
    }
}

static void fill_pattern(QTestState *qts, uint64_t addr, size_t len)
{
    fill_pattern_flip(qts, addr, len, 0);
}

static void check_pattern_flip(QTestState *qts, uint64_t addr, size_t len,
                               uint8_t flip)
{
    g_autofree uint8_t *buf = g_malloc(CHUNK);

    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = MIN(CHUNK, len - off);

        qtest_bufread(qts, addr + off, buf, n);
        for (size_t i = 0; i < n; i++) {
            g_assert_cmpuint(buf[i], ==, pattern(addr + off + i) ^ flip);
        }
    }
}

static void check_pattern(QTestState *qts, uint64_t addr, size_t len)
{
    check_pattern_flip(qts, addr, len, 0);
}

/* Evicting all of RAM frees it from the process; touching it restores it. */
static void test_evict_rss(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0", GUEST_MIB);
    const uint64_t base = 16 * MiB, len = 16 * MiB;
    long before, after;
    QDict *h;
    int64_t n;

    fill_pattern(qts, base, len);
    before = qemu_rss_kib(qts);
    n = reclaim(qts, true, 100);
    after = qemu_rss_kib(qts);
    g_test_message("evicted %" PRId64 " pages, RSS %ld -> %ld KiB", n,
                   before, after);
    g_assert_cmpint(n, ==, GUEST_MIB * MiB / PAGE);
    /* Nearly all of guest RAM must have left the process. */
    g_assert_cmpint(before - after, >, GUEST_MIB * 1024 * 3 / 4);

    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "evicted-pages"), ==, n);
    g_assert_cmpint(qdict_get_int(h, "resident-pages"), ==, 0);
    qobject_unref(h);

    /* Reading it back goes through userfaultfd and the swap store. */
    check_pattern(qts, base, len);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "cpu-faults"), >=, len / PAGE);
    g_assert_cmpint(qdict_get_int(h, "resident-pages"), >=, len / PAGE);
    qobject_unref(h);

    /* And again, with writes while pages are evicted. */
    reclaim(qts, false, 4096);
    fill_pattern(qts, base, len);
    reclaim(qts, true, 100);
    check_pattern(qts, base, len);
    qtest_quit(qts);
}

static void test_pin(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0", GUEST_MIB);
    const uint64_t addr = 8 * MiB, size = 64 * PAGE;
    QDict *h;

    qtest_qmp_assert_success(qts, "{ 'execute': 'vpri-pin', 'arguments':"
                             " { 'host': 'vh0', 'addr': %" PRIu64 ","
                             "   'size': %" PRIu64 " } }", addr, size);
    /* Pins nest: pinned twice, unpinned once, still pinned. */
    qtest_qmp_assert_success(qts, "{ 'execute': 'vpri-pin', 'arguments':"
                             " { 'host': 'vh0', 'addr': %" PRIu64 ","
                             "   'size': %" PRIu64 " } }", addr, size);
    qtest_qmp_assert_success(qts, "{ 'execute': 'vpri-unpin', 'arguments':"
                             " { 'host': 'vh0', 'addr': %" PRIu64 ","
                             "   'size': %" PRIu64 " } }", addr, size);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, size / PAGE);
    qobject_unref(h);

    g_assert_cmpint(reclaim(qts, true, 100), ==,
                    GUEST_MIB * MiB / PAGE - size / PAGE);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "resident-pages"), ==, size / PAGE);
    qobject_unref(h);

    /* Touching pinned pages needs no fault. */
    fill_pattern(qts, addr, size);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "cpu-faults"), ==, 0);
    qobject_unref(h);

    qtest_qmp_assert_success(qts, "{ 'execute': 'vpri-unpin', 'arguments':"
                             " { 'host': 'vh0', 'addr': %" PRIu64 ","
                             "   'size': %" PRIu64 " } }", addr, size);
    g_assert_cmpint(reclaim(qts, true, 100), ==, size / PAGE);
    check_pattern(qts, addr, size);
    qtest_quit(qts);
}

static void G_GNUC_PRINTF(3, 4)
assert_error(QTestState *qts, const char *needle, const char *fmt, ...)
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

static void test_errors(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0 "
                                  "-object memory-backend-ram,id=m0,size=1M",
                                  GUEST_MIB);

    assert_error(qts, "'nope' not found", "{ 'execute': 'vpri-pin',"
                 " 'arguments': { 'host': 'nope', 'addr': 0, 'size': 1 } }");
    assert_error(qts, "not a vpri-host", "{ 'execute': 'vpri-reclaim',"
                 " 'arguments': { 'host': 'm0', 'pages': 1 } }");
    assert_error(qts, "not guest RAM", "{ 'execute': 'vpri-pin',"
                 " 'arguments': { 'host': 'vh0', 'addr': %" PRIu64 ","
                 " 'size': 4096 } }", (uint64_t)1 << 40);
    assert_error(qts, "'size' must not be 0", "{ 'execute': 'vpri-pin',"
                 " 'arguments': { 'host': 'vh0', 'addr': 0, 'size': 0 } }");
    qtest_quit(qts);

    /* A machine without RAM: the host has nothing to evict. */
    qts = qtest_init("-M none -object vpri-host,id=vh0");
    assert_error(qts, "has no guest RAM", "{ 'execute': 'vpri-reclaim',"
                 " 'arguments': { 'host': 'vh0', 'percent': 10 } }");
    qtest_quit(qts);
}

/*
 * Issue 13: the end of a range was computed as addr + size - 1 in 64
 * bits, so a size that wraps around the address space landed back in
 * RAM: addr 0x1800 with size 0xffffffffffffff00 ended at 0x16ff and
 * pinned page 1 alone.  Refused now, naming the argument, and nothing is
 * pinned; so is a range whose end is past guest RAM.
 */
static void test_pin_bad_range(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0", GUEST_MIB);
    QDict *h;

    assert_error(qts, "'size' 0xffffffffffffff00 from 'addr' 0x1800 runs "
                 "past the end of the address space",
                 "{ 'execute': 'vpri-pin', 'arguments': { 'host': 'vh0',"
                 " 'addr': 6144, 'size': %" PRIu64 " } }",
                 UINT64_C(0xffffffffffffff00));
    assert_error(qts, "'size' 0xffffffffffffffff from 'addr' 0x1000 runs",
                 "{ 'execute': 'vpri-unpin', 'arguments': { 'host': 'vh0',"
                 " 'addr': 4096, 'size': %" PRIu64 " } }", UINT64_MAX);
    assert_error(qts, "is not guest RAM",
                 "{ 'execute': 'vpri-pin', 'arguments': { 'host': 'vh0',"
                 " 'addr': %" PRIu64 ", 'size': %d } }",
                 (uint64_t)GUEST_MIB * MiB - PAGE, 2 * PAGE);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, 0);
    qobject_unref(h);
    qtest_quit(qts);
}

/*
 * Issue 13: a vpri-pin that failed part way kept the pins it had taken.
 * A failed command has no effect now.  Made to fail for certain: all of
 * RAM is evicted, the first PIN_OK pages of the range are read back (the
 * swap store gives them back), then the swap file is emptied, so the next
 * page of the range cannot be paged in.
 */
#define PIN_OK 4

static void test_pin_rollback(void)
{
    g_autofree char *dir = g_dir_make_tmp("vpri-pin-XXXXXX", NULL);
    g_autofree char *swap = g_build_filename(dir, "swap", NULL);
    QTestState *qts;
    const uint64_t addr = 8 * MiB;
    QDict *h;

    g_assert_nonnull(dir);
    qts = qtest_initf("-M q35 -m %d -nodefaults "
                      "-object vpri-host,id=vh0,swap-file=%s", GUEST_MIB,
                      swap);
    fill_pattern(qts, addr, 2 * PIN_OK * PAGE);
    g_assert_cmpint(reclaim(qts, true, 100), ==, GUEST_MIB * MiB / PAGE);
    check_pattern(qts, addr, PIN_OK * PAGE);
    g_assert_cmpint(truncate(swap, 0), ==, 0);

    assert_error(qts, "cannot page in", "{ 'execute': 'vpri-pin',"
                 " 'arguments': { 'host': 'vh0', 'addr': %" PRIu64 ","
                 " 'size': %d } }", addr, 2 * PIN_OK * PAGE);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, 0);
    qobject_unref(h);

    /* The pages it had pinned can go again. */
    g_assert_cmpint(reclaim(qts, true, 100), ==, PIN_OK);
    qtest_quit(qts);
    unlink(swap);
    rmdir(dir);
}

/* Run an HMP command, log it with its output, return the output */
static char *G_GNUC_PRINTF(2, 0)
hmp_vrun(QTestState *qts, const char *fmt, va_list ap)
{
    g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
    char *out = qtest_hmp(qts, "%s", cmd);

    g_test_message("(hmp) %s: %s", cmd, out);
    return out;
}

/* An HMP command's whole output (HMP ends its lines with "\r\n"). */
static void G_GNUC_PRINTF(3, 4)
assert_hmp(QTestState *qts, const char *want, const char *fmt, ...)
{
    g_autofree char *out = NULL;
    va_list ap;

    va_start(ap, fmt);
    out = hmp_vrun(qts, fmt, ap);
    va_end(ap);
    g_assert_cmpstr(out, ==, want);
}

/* An error: one line, "Error: " and the message, which mentions @needle. */
static void G_GNUC_PRINTF(3, 4)
assert_hmp_error(QTestState *qts, const char *needle, const char *fmt, ...)
{
    g_autofree char *out = NULL;
    va_list ap;

    va_start(ap, fmt);
    out = hmp_vrun(qts, fmt, ap);
    va_end(ap);
    g_assert_true(g_str_has_prefix(out, "Error: "));
    g_assert_true(g_str_has_suffix(out, "\r\n"));
    g_assert_nonnull(strstr(out, needle));
    g_assert_true(strchr(out, '\n') == out + strlen(out) - 1);
}

/*
 * The HMP twins of vpri-reclaim, vpri-pin and vpri-unpin: what they print,
 * what they do, and the QMP command's errors behind "Error: ".
 */
static void test_hmp(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0 "
                                  "-object memory-backend-ram,id=m0,size=1M",
                                  GUEST_MIB);
    const uint64_t addr = 8 * MiB, size = 64 * PAGE;
    const int64_t guest_pages = GUEST_MIB * MiB / PAGE;
    g_autofree char *evicted = NULL;
    QDict *h;

    fill_pattern(qts, addr, size);
    /* Pinned twice, unpinned once: still pinned (HMP prints nothing) */
    assert_hmp(qts, "", "vpri-pin vh0 0x%" PRIx64 " 0x%" PRIx64, addr, size);
    assert_hmp(qts, "", "vpri-pin vh0 %" PRIu64 " %" PRIu64, addr, size);
    assert_hmp(qts, "", "vpri-unpin vh0 0x%" PRIx64 " %" PRIu64, addr, size);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, size / PAGE);
    qobject_unref(h);

    /* A percentage by default: all of RAM but the pinned pages */
    evicted = g_strdup_printf("evicted %" PRId64 " pages\r\n",
                              guest_pages - (int64_t)(size / PAGE));
    assert_hmp(qts, evicted, "vpri-reclaim vh0 100");
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "resident-pages"), ==, size / PAGE);
    qobject_unref(h);

    /* Unpinned, they go too; -p counts pages (10 percent: 3276) */
    assert_hmp(qts, "", "vpri-unpin vh0 %" PRIu64 " %" PRIu64, addr, size);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, 0);
    qobject_unref(h);
    assert_hmp(qts, "evicted 10 pages\r\n", "vpri-reclaim -p vh0 10");
    assert_hmp(qts, "evicted 54 pages\r\n", "vpri-reclaim vh0 100");
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "evicted-pages"), ==, guest_pages);
    qobject_unref(h);
    check_pattern(qts, addr, size);

    /* Errors: the QMP command's, after "Error: "; nothing evicted */
    assert_hmp_error(qts, "'percent' must be 0..100, not 101",
                     "vpri-reclaim vh0 101");
    assert_hmp_error(qts, "'pages' must not be negative (-1)",
                     "vpri-reclaim -p vh0 -1");
    assert_hmp_error(qts, "vpri-host 'nope' not found",
                     "vpri-reclaim nope 10");
    assert_hmp_error(qts, "object 'm0' is not a vpri-host",
                     "vpri-reclaim m0 10");
    assert_hmp_error(qts, "vpri-host 'nope' not found",
                     "vpri-pin nope 0 4096");
    assert_hmp_error(qts, "not guest RAM", "vpri-pin vh0 0x10000000000 4096");
    assert_hmp_error(qts, "vpri-host 'nope' not found",
                     "vpri-unpin nope 0 4096");
    assert_hmp_error(qts, "not guest RAM",
                     "vpri-unpin vh0 0x10000000000 4096");
    /* HMP's own: a missing argument */
    assert_hmp(qts, "unexpected end of expression\r\n"
               "Try \"help vpri-pin\" for more information\r\n",
               "vpri-pin vh0 0");
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "pinned-pages"), ==, 0);
    qobject_unref(h);
    qtest_quit(qts);
}

/*
 * The HMP twins of vpri-trace-start and vpri-trace-stop on a host without
 * devices: the trace holds its header and no records (vpri-pin-test
 * records a device's DMA through them).
 */
static void test_hmp_trace(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0", GUEST_MIB);
    g_autofree char *path = g_strdup_printf("%s/vpri-host-hmp-%d.trace",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *text = NULL;
    g_autofree char *busy = g_strdup_printf(
        "vpri-host 'vh0' is already tracing to %s", path);

    assert_hmp_error(qts, "vpri-host 'vh0' is not tracing",
                     "vpri-trace-stop vh0");
    assert_hmp(qts, "", "vpri-trace-start vh0 %s", path);
    assert_hmp_error(qts, busy, "vpri-trace-start vh0 %s", path);
    assert_hmp(qts, "0 access records written\r\n", "vpri-trace-stop vh0");
    assert_hmp_error(qts, "vpri-host 'vh0' is not tracing",
                     "vpri-trace-stop vh0");
    assert_hmp_error(qts, "vpri-host 'nope' not found",
                     "vpri-trace-start nope %s", path);
    assert_hmp_error(qts, "vpri-host 'nope' not found",
                     "vpri-trace-stop nope");

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_true(g_str_has_prefix(text, "# recorded by vpri-host"));
    g_assert_true(g_str_has_suffix(text, "\nrecords\n"));
    unlink(path);
    qtest_quit(qts);
}

static void test_bad_properties(void)
{
    const char *cases[][2] = {
        { "-object vpri-host,id=vh0,handlers=0", "handlers must be" },
        { "-object vpri-host,id=vh0,ring-size=0", "ring-size must be" },
        { "-object vpri-host,id=vh0,handlers=x", "handlers" },
        { "-object vpri-host,id=vh0 -device vpri-blk,host=vh0",
          "drive property not set" },
        { "-object vpri-host,id=vh0,ring-size=100000", "ring-size must be" },
        { "-object vpri-host,id=vh0,handlers=17", "handlers must be" },
        { "-blockdev driver=null-co,node-name=n0 "
          "-device vpri-blk,drive=n0,host=vh9", "'vh9' not found" },
        /* host= is a link: it names a vpri-host, nothing else */
        { "-object memory-backend-ram,id=m0,size=1M "
          "-blockdev driver=null-co,node-name=n0 "
          "-device vpri-blk,drive=n0,host=m0",
          "Invalid parameter type for 'host', expected: vpri-host" },
        { "-blockdev driver=null-co,node-name=n0 "
          "-device vpri-blk,drive=n0,queue-size=100",
          "queue-size must be a power of 2" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *cmd = g_strdup_printf(
            "sh -c '%s -M q35 -nodefaults -display none -accel qtest %s 2>&1'",
            getenv("QTEST_QEMU_BINARY"), cases[i][0]);
        g_autofree char *out = NULL;
        int status;

        g_assert_true(g_spawn_command_line_sync(cmd, &out, NULL, &status,
                                                NULL));
        g_test_message("%s: %s", cases[i][0], out);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        g_assert_nonnull(strstr(out, cases[i][1]));
    }
}

/*
 * Issue 13: handlers, ring-size and swap-file size what the host builds
 * when it is created; qom-set could change them afterwards (handlers 0
 * then divided by zero on the next device fault).  Now refused, naming the
 * property, and the host keeps its values and works.
 */
static void test_fixed_after_creation(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults "
                                  "-object vpri-host,id=vh0,handlers=3",
                                  GUEST_MIB);
    QDict *rsp;

    assert_error(qts, "'handlers' cannot change once the host is created",
                 "{ 'execute': 'qom-set', 'arguments': { 'path': 'vh0',"
                 " 'property': 'handlers', 'value': 0 } }");
    assert_error(qts, "'ring-size' cannot change once the host is created",
                 "{ 'execute': 'qom-set', 'arguments': { 'path': 'vh0',"
                 " 'property': 'ring-size', 'value': 0 } }");
    assert_error(qts, "'swap-file' cannot change once the host is created",
                 "{ 'execute': 'qom-set', 'arguments': { 'path': 'vh0',"
                 " 'property': 'swap-file', 'value': '/nonexistent/x' } }");
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': {"
                    " 'path': 'vh0', 'property': 'handlers' } }");
    g_assert_cmpint(qdict_get_int(rsp, "return"), ==, 3);
    qobject_unref(rsp);

    /* Still works: evicted RAM comes back through the handlers. */
    fill_pattern(qts, 4 * MiB, 64 * PAGE);
    g_assert_cmpint(reclaim(qts, true, 100), ==, GUEST_MIB * MiB / PAGE);
    check_pattern(qts, 4 * MiB, 64 * PAGE);
    qtest_quit(qts);
}

/*
 * Issue 13: a vpri-host whose guest RAM cannot be evicted (here shared
 * memory) could be deleted while a device still used it, and the device
 * then used freed memory.  Now object-del is refused while any device is
 * attached, with upstream's "in use" error, and QEMU carries on; a host
 * nobody uses can still be deleted.
 */
static void test_del_in_use(void)
{
    QTestState *qts = qtest_initf(
        "-M q35,memory-backend=mem0 -m %d -nodefaults "
        "-object memory-backend-memfd,id=mem0,size=%dM,share=on "
        "-object vpri-host,id=vh0 -object vpri-host,id=vh1 "
        "-blockdev driver=null-co,node-name=n0 "
        "-device vpri-blk,drive=n0,host=vh0,id=vblk0", GUEST_MIB, GUEST_MIB);
    QDict *rsp, *ret;
    QList *devs;

    assert_error(qts, "object 'vh0' is in use, can not be deleted",
                 "{ 'execute': 'object-del', 'arguments': { 'id': 'vh0' } }");

    /* The host and its device are still there and answer. */
    rsp = qtest_qmp(qts, "{ 'execute': 'query-vpri' }");
    ret = qdict_get_qdict(rsp, "return");
    g_assert_nonnull(ret);
    g_assert_cmpint(qlist_size(qdict_get_qlist(ret, "hosts")), ==, 2);
    devs = qdict_get_qlist(ret, "devices");
    g_assert_cmpint(qlist_size(devs), ==, 1);
    g_assert_cmpstr(qdict_get_str(qobject_to(QDict, qlist_peek(devs)),
                                  "host"), ==, "vh0");
    qobject_unref(rsp);
    assert_error(qts, "has no guest RAM to reclaim", "{ 'execute': "
                 "'vpri-reclaim', 'arguments': { 'host': 'vh0', "
                 "'pages': 1 } }");

    /* Unused, without managed RAM: nothing keeps it. */
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-del', 'arguments':"
                             " { 'id': 'vh1' } }");
    assert_error(qts, "'vh1' not found", "{ 'execute': 'vpri-reclaim',"
                 " 'arguments': { 'host': 'vh1', 'pages': 1 } }");
    qtest_quit(qts);
}

/*
 * object-add of a vpri-host once the machine is up sets guest RAM up at
 * once, from inside the creation: the host used to kick handler threads
 * it had not made yet, and crashed.  Now it evicts and pages in like a
 * host from the command line, and, managing RAM, refuses object-del.
 */
static void test_object_add(void)
{
    QTestState *qts = qtest_initf("-M q35 -m %d -nodefaults", GUEST_MIB);
    QDict *h;
    int64_t n;

    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments':"
                             " { 'qom-type': 'vpri-host', 'id': 'vh0',"
                             "   'handlers': 1 } }");
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "guest-pages"), ==,
                    GUEST_MIB * MiB / PAGE);
    qobject_unref(h);
    fill_pattern(qts, 8 * MiB, 64 * PAGE);
    /*
     * Guest RAM is set up from the guest-physical map of the moment: once
     * the machine has been reset, PAM maps up to 256 KiB below 1 MiB to
     * ROM, and RAM the map does not show is not evicted.
     */
    n = reclaim(qts, true, 100);
    g_assert_cmpint(n, >=, GUEST_MIB * MiB / PAGE - 64);
    h = host_info(qts);
    g_assert_cmpint(qdict_get_int(h, "evicted-pages"), ==, n);
    qobject_unref(h);
    check_pattern(qts, 8 * MiB, 64 * PAGE);
    assert_error(qts, "object 'vh0' is in use, can not be deleted",
                 "{ 'execute': 'object-del', 'arguments': { 'id': 'vh0' } }");
    qtest_quit(qts);
}

/*
 * Issue 17, source side: a migration sends evicted pages from the swap
 * store (patches/0013) instead of faulting them back in, so the source's
 * RSS stays near where eviction put it; before, it climbed back to the
 * whole guest.  Pages written after they were sent (paged in by the
 * write) are sent again, and the destination has every page's content.
 */
static void test_migrate_evicted(void)
{
    g_autofree char *sock = g_strdup_printf("%s/vpri-host-mig-%d.sock",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    const uint64_t base = 16 * MiB, len = 32 * MiB, rewrite = 4 * MiB;
    QTestState *src, *dst;
    long rss_evicted, rss_sent, rss_end;
    /*
     * Under ASan (make check-asan sets IOLAB_SANITIZED) freed buffers stay
     * resident in its quarantine: allow three times the growth, still far
     * below the whole guest that faulting the pages in would add.
     */
    long rss_slack = getenv("IOLAB_SANITIZED") ? 3 : 1;
    int64_t evicted, supplied_sent;
    static uint8_t zero_check[64 * PAGE];
    QDict *h;

    src = qtest_initf("-M q35 -m %d -nodefaults -object vpri-host,id=vh0",
                      GUEST_MIB);
    dst = qtest_initf("-M q35 -m %d -nodefaults -object vpri-host,id=vh0 "
                      "-incoming defer", GUEST_MIB);
    fill_pattern(src, base, len);
    evicted = reclaim(src, true, 100);
    g_assert_cmpint(evicted, ==, GUEST_MIB * MiB / PAGE);
    rss_evicted = qemu_rss_kib(src);

    /*
     * Stop before the switch-over, with every page sent once: a 1 ms
     * downtime limit leaves at most a few pages (the last of RAM, far
     * above the pattern) for the final pass.
     */
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-capabilities',"
                             " 'arguments': { 'capabilities': [ {"
                             " 'capability': 'pause-before-switchover',"
                             " 'state': true } ] } }");
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'downtime-limit': 1 } }");
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             " 'arguments': { 'uri': %s } }", uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate',"
                             " 'arguments': { 'uri': %s } }", uri);
    iolab_migrate_wait_for(src, "pre-switchover", 120 * G_USEC_PER_SEC);

    rss_sent = qemu_rss_kib(src);
    h = host_info(src);
    supplied_sent = qdict_get_int(h, "migration-supplied-pages");
    g_test_message("evicted %" PRId64 " pages; RSS %ld KiB after eviction, "
                   "%ld KiB once sent; %" PRId64 " pages from the swap "
                   "store", evicted, rss_evicted, rss_sent, supplied_sent);
    /* Nearly every page went from the store, and none came back in. */
    g_assert_cmpint(supplied_sent, >=, evicted - 1024);
    g_assert_cmpint(qdict_get_int(h, "evicted-pages"), ==, evicted);
    g_assert_cmpint(qdict_get_int(h, "cpu-faults"), ==, 0);
    qobject_unref(h);
    /* Faulting them in would add the whole guest (128 MiB) */
    g_assert_cmpint(rss_sent - rss_evicted, <,
                    rss_slack * GUEST_MIB * 1024 / 8);

    /*
     * Write pages that were sent already: the writes page them in, the
     * dirty log has them, and the final pass sends the new content.
     */
    fill_pattern_flip(src, base, rewrite, 0xff);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-continue',"
                             " 'arguments': { 'state': 'pre-switchover' } }");
    iolab_migrate_wait_for(src, "completed", 120 * G_USEC_PER_SEC);
    qtest_qmp_eventwait(dst, "RESUME");

    rss_end = qemu_rss_kib(src);
    h = host_info(src);
    g_test_message("RSS at the end %ld KiB, %" PRId64 " pages from the "
                   "swap store", rss_end,
                   qdict_get_int(h, "migration-supplied-pages"));
    g_assert_cmpint(qdict_get_int(h, "evicted-pages"), ==,
                    evicted - rewrite / PAGE);
    g_assert_cmpint(rss_end - rss_evicted, <,
                    rss_slack * GUEST_MIB * 1024 / 8 + rewrite / KiB);
    qobject_unref(h);

    check_pattern_flip(dst, base, rewrite, 0xff);
    check_pattern(dst, base + rewrite, len - rewrite);
    /* Zero pages stay zero (sent as such from their stored copies). */
    qtest_bufread(dst, base + len, zero_check, sizeof(zero_check));
    for (size_t i = 0; i < sizeof(zero_check); i++) {
        g_assert_cmpuint(zero_check[i], ==, 0);
    }
    qtest_quit(src);
    qtest_quit(dst);
    unlink(sock);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/iolab/vpri-host/evict-rss", test_evict_rss);
    qtest_add_func("/iolab/vpri-host/migrate-evicted", test_migrate_evicted);
    qtest_add_func("/iolab/vpri-host/pin", test_pin);
    qtest_add_func("/iolab/vpri-host/errors", test_errors);
    qtest_add_func("/iolab/vpri-host/pin-bad-range", test_pin_bad_range);
    qtest_add_func("/iolab/vpri-host/pin-rollback", test_pin_rollback);
    qtest_add_func("/iolab/vpri-host/hmp", test_hmp);
    qtest_add_func("/iolab/vpri-host/hmp-trace", test_hmp_trace);
    qtest_add_func("/iolab/vpri-host/bad-properties", test_bad_properties);
    qtest_add_func("/iolab/vpri-host/fixed-after-creation",
                   test_fixed_after_creation);
    qtest_add_func("/iolab/vpri-host/del-in-use", test_del_in_use);
    qtest_add_func("/iolab/vpri-host/object-add", test_object_add);
    return g_test_run();
}
