/*
 * The x-iolab-fork test hook (migration/fork-server.c), on its own: what
 * it refuses, that a child loads a stream, stops and runs its VM and
 * changes nothing of the template, and that a child that dies takes the
 * template with it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "iolab-migrate-wait.h"

#define FORK_MACHINE    "-machine pc -m 64 -nodefaults"
#define FORK_ADDR       0x100000

typedef struct ForkDir {
    char *dir, *status, *log;
} ForkDir;

static void fork_dir_init(ForkDir *d)
{
    g_autoptr(GError) err = NULL;

    d->dir = g_dir_make_tmp("iolab-fork-XXXXXX", &err);
    g_assert_no_error(err);
    d->status = g_strdup_printf("%s/status", d->dir);
    d->log = g_strdup_printf("%s/log", d->dir);
}

static void fork_dir_free(ForkDir *d)
{
    unlink(d->status);
    unlink(d->log);
    rmdir(d->dir);
    g_free(d->status);
    g_free(d->log);
    g_free(d->dir);
}

/* A template: a destination waiting, with QMP in the main loop */
static QTestState *fork_template(const char *extra)
{
    g_autofree char *args = g_strdup_printf(FORK_MACHINE " -incoming defer"
                                            " %s", extra);
    QTestState *qts;

    g_setenv("IOLAB_QMP_IN_MAIN_LOOP", "1", true);
    qts = qtest_init(args);
    g_unsetenv("IOLAB_QMP_IN_MAIN_LOOP");
    return qts;
}

/* x-iolab-fork; the child's pid */
static pid_t fork_child(QTestState *qts, ForkDir *d)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'x-iolab-fork', "
                           "'arguments': { 'log': %s, 'status-file': %s } }",
                           d->log, d->status);
    QDict *ret = qdict_get_qdict(rsp, "return");
    pid_t pid;

    g_assert(ret);
    g_assert_cmpstr(qdict_get_str(ret, "role"), ==, "child");
    pid = qdict_get_int(ret, "pid");
    g_assert_cmpint(pid, >, 0);
    g_assert_cmpint(pid, !=, qtest_pid(qts));
    qobject_unref(rsp);
    return pid;
}

/* x-iolab-fork-end: the child answers and quits, then the template */
static void fork_end(QTestState *qts, ForkDir *d)
{
    g_autofree char *status = NULL;
    QDict *rsp, *ret;

    qtest_qmp_assert_success(qts, "{ 'execute': 'x-iolab-fork-end' }");
    rsp = qtest_qmp_receive(qts);
    ret = qdict_get_qdict(rsp, "return");
    g_assert(ret);
    g_assert_cmpstr(qdict_get_str(ret, "role"), ==, "parent");
    g_assert_true(qdict_get_bool(ret, "clean"));
    qobject_unref(rsp);
    g_assert_true(g_file_get_contents(d->status, &status, NULL, NULL));
    g_assert_nonnull(strstr(status, "\nexited 0 clean\n"));
}

static char *fork_status(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    char *st = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                      "status"));

    qobject_unref(rsp);
    return st;
}

static void test_refusals(void)
{
    ForkDir d;
    QTestState *qts;

    fork_dir_init(&d);
    /* QMP in the monitor I/O thread: it would be dead in the child */
    qts = qtest_init(FORK_MACHINE " -incoming defer");
    qobject_unref(qtest_qmp_assert_failure_ref(qts,
                  "{ 'execute': 'x-iolab-fork', 'arguments': "
                  "{ 'log': %s, 'status-file': %s } }", d.log, d.status));
    qtest_quit(qts);
    /* Not a destination waiting for its stream */
    g_setenv("IOLAB_QMP_IN_MAIN_LOOP", "1", true);
    qts = qtest_init(FORK_MACHINE);
    g_unsetenv("IOLAB_QMP_IN_MAIN_LOOP");
    qobject_unref(qtest_qmp_assert_failure_ref(qts,
                  "{ 'execute': 'x-iolab-fork', 'arguments': "
                  "{ 'log': %s, 'status-file': %s } }", d.log, d.status));
    /* Not a child */
    qobject_unref(qtest_qmp_assert_failure_ref(qts,
                  "{ 'execute': 'x-iolab-fork-end' }"));
    qtest_quit(qts);
    /* Guest RAM shared with the template */
    qts = fork_template("-object memory-backend-ram,id=m0,size=64M,"
                        "share=on -machine memory-backend=m0");
    qobject_unref(qtest_qmp_assert_failure_ref(qts,
                  "{ 'execute': 'x-iolab-fork', 'arguments': "
                  "{ 'log': %s, 'status-file': %s } }", d.log, d.status));
    qtest_quit(qts);
    g_assert_false(g_file_test(d.status, G_FILE_TEST_EXISTS));
    fork_dir_free(&d);
}

/*
 * A child loads a stream, runs, stops (vm_stop() waits for the vCPU
 * threads, which the child had to start again) and runs again; its
 * guest RAM write stays its own.  Twice, from the same template.
 */
static void test_child_loads_and_ends(void)
{
    g_autofree char *stream = NULL;
    g_autofree char *uri = NULL;
    ForkDir d;
    QTestState *src, *tpl;

    fork_dir_init(&d);
    stream = g_strdup_printf("%s/stream", d.dir);
    uri = g_strdup_printf("file:%s", stream);
    src = qtest_init(FORK_MACHINE);
    qtest_writel(src, FORK_ADDR, 0x5eed);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    /* (meson gives the whole test 60 s) */
    iolab_migrate_wait_for(src, "completed", 60 * G_USEC_PER_SEC);
    qtest_quit(src);

    tpl = fork_template("");
    for (int round = 0; round < 2; round++) {
        g_autofree char *st = NULL;

        fork_child(tpl, &d);
        iolab_migrate_incoming(tpl, uri);
        do {
            g_free(st);
            g_usleep(10 * 1000);
            st = fork_status(tpl);
        } while (strcmp(st, "running"));
        g_assert_cmphex(qtest_readl(tpl, FORK_ADDR), ==, 0x5eed);
        qtest_writel(tpl, FORK_ADDR, 0xc41d);
        qtest_qmp_assert_success(tpl, "{ 'execute': 'stop' }");
        g_free(st);
        st = fork_status(tpl);
        g_assert_cmpstr(st, ==, "paused");
        qtest_qmp_assert_success(tpl, "{ 'execute': 'cont' }");
        fork_end(tpl, &d);
        /* The template again: nothing loaded, the child's write gone */
        g_free(st);
        st = fork_status(tpl);
        g_assert_cmpstr(st, ==, "inmigrate");
        g_assert_cmphex(qtest_readl(tpl, FORK_ADDR), ==, 0);
    }
    qtest_quit(tpl);
    unlink(stream);
    fork_dir_free(&d);
}

/*
 * A child killed by a signal: the template writes how it ended and
 * exits (status 3) without serving another word.
 */
static void test_child_dies(void)
{
    g_autofree char *status = NULL;
    ForkDir d;
    QTestState *tpl;
    pid_t child;

    fork_dir_init(&d);
    tpl = fork_template("");
    child = fork_child(tpl, &d);
    g_assert_cmpint(kill(child, SIGKILL), ==, 0);
    for (int i = 0; qtest_probe_child(tpl); i++) {
        g_assert_cmpint(i, <, 1000);
        g_usleep(10 * 1000);
    }
    g_assert_true(g_file_get_contents(d.status, &status, NULL, NULL));
    g_assert_nonnull(strstr(status, "\nsignal 9\n"));
    qtest_set_expected_status(tpl, 3);
    qtest_quit(tpl);
    fork_dir_free(&d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/iolab/fork-server/refusals", test_refusals);
    qtest_add_func("/iolab/fork-server/child-loads-and-ends",
                   test_child_loads_and_ends);
    qtest_add_func("/iolab/fork-server/child-dies", test_child_dies);
    return g_test_run();
}
