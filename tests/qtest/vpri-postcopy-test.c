/*
 * vpri-host and postcopy migration (issue 17).  Until vpri-host's
 * userfaultfd and QEMU's postcopy cooperate, postcopy with a vpri-host is
 * refused up front on both sides, naming the host, and the guest keeps
 * running: before, the destination failed to register guest RAM (EBUSY)
 * after the source had stopped the guest, and the VM was lost.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

#define GUEST_MIB 64

/* What each test's messages and refusals must name. */
#define REFUSAL "vpri-host 'vh0' does not support postcopy"

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

/* A vpri-host and a device on it. */
#define HOST_AND_DEVICE "-object vpri-host,id=vh0 " \
                        "-device vpri-blk,drive=d0,host=vh0 "

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
 * The capability set on the command line (-global): QEMU checks the
 * capabilities once every object of the command line exists, so it
 * refuses to start, as a source or as a destination.  One that started
 * anyway is stopped after 20 s, and fails the test for want of the
 * message.
 */
static void check_startup_refused(const char *extra)
{
    Files f;
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) argv = NULL;
    GError *gerr = NULL;
    int status;

    files_init(&f);
    cmd = g_strdup_printf("timeout 20 %s -M q35 -m %d -nodefaults "
                          "-display none -accel qtest "
                          "-blockdev driver=file,node-name=d0,filename=%s,"
                          "locking=off " HOST_AND_DEVICE
                          "-global migration.x-postcopy-ram=on %s",
                          g_getenv("QTEST_QEMU_BINARY"), GUEST_MIB, f.img,
                          extra);
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &gerr));
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, &err, &status, &gerr));
    g_assert_no_error(gerr);
    g_test_message("stderr: %s", err);
    g_assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_assert_nonnull(strstr(err, REFUSAL));
    files_free(&f);
}

static void test_source_startup(void)
{
    check_startup_refused("");
}

static void test_destination_startup(void)
{
    check_startup_refused("-incoming defer");
}

/* A vpri-host cannot be created while the capability is on. */
static void test_object_add(void)
{
    Files f;
    QTestState *qts;

    files_init(&f);
    qts = start(&f, "");
    qtest_qmp_assert_success(qts, SET_POSTCOPY_CAP);
    assert_error(qts, REFUSAL, "{ 'execute': 'object-add', 'arguments': "
                 "{ 'qom-type': 'vpri-host', 'id': 'vh0' } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-capabilities', "
                             "'arguments': { 'capabilities': [ { "
                             "'capability': 'postcopy-ram', "
                             "'state': false } ] } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': "
                             "{ 'qom-type': 'vpri-host', 'id': 'vh0' } }");
    assert_error(qts, REFUSAL, SET_POSTCOPY_CAP);
    assert_status(qts, "running");
    qtest_quit(qts);
    files_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vpri-postcopy/refused/source-capability",
                   test_source_capability);
    qtest_add_func("/vpri-postcopy/refused/destination-capability",
                   test_destination_capability);
    qtest_add_func("/vpri-postcopy/refused/source-startup",
                   test_source_startup);
    qtest_add_func("/vpri-postcopy/refused/destination-startup",
                   test_destination_startup);
    qtest_add_func("/vpri-postcopy/refused/object-add", test_object_add);
    return g_test_run();
}
