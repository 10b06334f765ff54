/*
 * The fork server of the migration-stream mutator: x-iolab-fork and
 * x-iolab-fork-end (qapi/iolab-test.json, docs/fuzzing.rst).
 *
 * A pristine destination (-incoming defer, qtest accelerator, QMP in the
 * main loop) forks once per mutant.  The child serves the inherited QMP
 * and qtest connections; the parent holds the BQL in waitpid() until the
 * child ends, so its main loop reads nothing that was meant for the
 * child.
 *
 * What the child lacks, being made of one thread: the qtest
 * accelerator's dummy vCPU threads (pause_all_vcpus() waits for them, on
 * any vm_stop() or quit), so they are started again here, and the child
 * can end through QEMU's ordinary quit; the idle
 * workers of the main AioContext's thread pool (a request submitted to
 * the pool would wait for a worker that is not there), so the child
 * gets a new pool; the call_rcu thread, which util/rcu.c's atfork
 * handler starts again by itself; the monitor I/O thread, which
 * IOLAB_QMP_IN_MAIN_LOOP=1 (patches/0014) keeps out of the template.
 * Devices with threads of their own restart them through the child
 * notifiers (include/migration/iolab/fork-server.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-control.h"
#include "qapi/qapi-commands-iolab-test.h"
#include "hw/core/cpu.h"
#include "block/aio.h"
#include "exec/cpu-common.h"
#include "system/accel-ops.h"
#include "system/cpus.h"
#include "system/qtest.h"
#include "system/runstate.h"
#include "migration/iolab/fork-server.h"

/* The parent's exit status after a child that did not end cleanly */
#define IOLAB_FORK_PARENT_EXIT  3

static NotifierList iolab_fork_child_notifiers =
    NOTIFIER_LIST_INITIALIZER(iolab_fork_child_notifiers);
static bool iolab_fork_child;
/* Write end, in the child: x-iolab-fork-end says "clean" through it */
static int iolab_fork_end_fd = -1;

void iolab_fork_add_child_notifier(Notifier *n)
{
    notifier_list_add(&iolab_fork_child_notifiers, n);
}

void iolab_fork_remove_child_notifier(Notifier *n)
{
    notifier_remove(n);
}

bool iolab_fork_is_child(void)
{
    return iolab_fork_child;
}

/* The dummy vCPU threads of the qtest accelerator, started again */
static void iolab_fork_restart_vcpus(void)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        cpu->created = false;
        cpu->thread_kicked = false;
        qemu_cond_init(cpu->halt_cond);
        cpus_get_accel()->create_vcpu_thread(cpu);
    }
    /* Each takes the BQL to say it is there */
    CPU_FOREACH(cpu) {
        while (!qatomic_read(&cpu->created)) {
            bql_unlock();
            g_usleep(100);
            bql_lock();
        }
    }
}

static void iolab_fork_setup_child(const char *log, pid_t template)
{
    int fd;

#ifdef CONFIG_LINUX
    /* Gone with its template, which goes with the test that started it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != template) {
        _exit(1);
    }
#endif
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

    if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    iolab_fork_child = true;
    /*
     * The template's pool may count idle workers that only the template
     * has; it holds no requests (nothing was loaded, the VM never ran),
     * so the child leaves it be and gets a pool of its own on first use.
     */
    qemu_get_aio_context()->thread_pool = NULL;
    iolab_fork_restart_vcpus();
    notifier_list_notify(&iolab_fork_child_notifiers, NULL);
}

/* A shared RAM block (share=on): the child would write the template's */
static int iolab_fork_shared_ram(RAMBlock *rb, void *opaque)
{
    const char **idstr = opaque;

    if (qemu_ram_is_shared(rb)) {
        *idstr = qemu_ram_get_idstr(rb);
        return 1;
    }
    return 0;
}

/*
 * A plain write, not g_file_set_contents(): that may fsync() a file it
 * replaces, once per mutant, and the reader is the test that waits for
 * this process anyway.
 */
static void iolab_fork_write_status(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0 || write(fd, text, strlen(text)) != strlen(text)) {
        fprintf(stderr, "x-iolab-fork: cannot write %s: %s\n", path,
                strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

IolabForkResult *qmp_x_iolab_fork(const char *log, const char *status_file,
                                  Error **errp)
{
    IolabForkResult *res;
    g_autofree char *status = NULL;
    int wstatus = 0;
    int end_pipe[2];
    char end_byte = 0;
    bool clean;
    pid_t template = getpid();
    const char *shared = NULL;
    pid_t pid;

    if (!qtest_enabled()) {
        /* Without qtest, guest RAM is MADV_DONTFORK: absent in a child */
        error_setg(errp, "x-iolab-fork needs the qtest accelerator");
        return NULL;
    }
    if (g_strcmp0(g_getenv("IOLAB_QMP_IN_MAIN_LOOP"), "1")) {
        error_setg(errp, "x-iolab-fork needs IOLAB_QMP_IN_MAIN_LOOP=1: "
                   "the monitor I/O thread would be dead in the child");
        return NULL;
    }
    if (iolab_fork_child) {
        error_setg(errp, "x-iolab-fork: this is a child already");
        return NULL;
    }
    if (!runstate_check(RUN_STATE_INMIGRATE)) {
        error_setg(errp, "x-iolab-fork needs a destination waiting for "
                   "its migration (-incoming defer)");
        return NULL;
    }
    if (qemu_ram_foreach_block(iolab_fork_shared_ram, &shared)) {
        error_setg(errp, "x-iolab-fork: RAM block '%s' is shared: the "
                   "child would load into the template's memory", shared);
        return NULL;
    }
    if (!g_unix_open_pipe(end_pipe, FD_CLOEXEC, NULL)) {
        error_setg_errno(errp, errno, "x-iolab-fork: pipe");
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    /*
     * vl.c turns util/rcu.c's atfork handlers off after daemonizing;
     * with them on, the child starts its own call_rcu thread (as the
     * generic-fuzz harness does, which forks too).
     */
    rcu_enable_atfork();
    pid = fork();
    rcu_disable_atfork();
    if (pid < 0) {
        error_setg_errno(errp, errno, "x-iolab-fork: fork");
        close(end_pipe[0]);
        close(end_pipe[1]);
        return NULL;
    }
    res = g_new0(IolabForkResult, 1);
    if (pid == 0) {
        close(end_pipe[0]);
        iolab_fork_end_fd = end_pipe[1];
        iolab_fork_setup_child(log, template);
        res->role = IOLAB_FORK_ROLE_CHILD;
        res->pid = getpid();
        return res;
    }

    /* The parent: nothing of ours runs until the child has ended */
    close(end_pipe[1]);
    status = g_strdup_printf("pid %d\n", (int)pid);
    iolab_fork_write_status(status_file, status);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
        /* again */
    }
    clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
            read(end_pipe[0], &end_byte, 1) == 1;
    close(end_pipe[0]);
    g_free(status);
    if (WIFEXITED(wstatus)) {
        status = g_strdup_printf("pid %d\nexited %d%s\n", (int)pid,
                                 WEXITSTATUS(wstatus),
                                 clean ? " clean" : "");
    } else {
        status = g_strdup_printf("pid %d\nsignal %d\n", (int)pid,
                                 WTERMSIG(wstatus));
    }
    iolab_fork_write_status(status_file, status);
    if (!clean) {
        /*
         * Whatever the client sends next was meant for the child: not a
         * word of it may reach the template.  No answer either: the
         * client's next read was for the child, and ends on EOF now.
         */
        _exit(IOLAB_FORK_PARENT_EXIT);
    }
    res->role = IOLAB_FORK_ROLE_PARENT;
    res->pid = pid;
    res->has_exited = true;
    res->exited = true;
    res->has_code = true;
    res->code = 0;
    res->has_clean = true;
    res->clean = true;
    return res;
}

void qmp_x_iolab_fork_end(Error **errp)
{
    static const char end_byte = 'e';

    if (!iolab_fork_child) {
        error_setg(errp, "x-iolab-fork-end: not a child of x-iolab-fork");
        return;
    }
    /*
     * The parent counts the end as clean only with this byte and exit
     * status 0: a crash or hang on the way out is still a crash or hang.
     */
    if (write(iolab_fork_end_fd, &end_byte, 1) != 1) {
        error_setg_errno(errp, errno, "x-iolab-fork-end");
        return;
    }
    /*
     * QEMU's own quit, not _exit(): what devices do at shutdown
     * (vm_shutdown(), net_cleanup() telling a NIC its link is down,
     * bdrv_close_all(), -object teardown) must run in the child as in a
     * QEMU of its own; the mutator found a NIC's config interrupt through
     * a vector a refused load left behind, which asserted only there.
     */
    qmp_quit(errp);
}
