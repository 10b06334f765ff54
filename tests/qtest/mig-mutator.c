/*
 * iolab's migration-stream mutator.
 *
 * For each device scenario (mig-mutator.h): start a source QEMU, drive
 * the device into live state, save one stream with 'migrate' to a file,
 * map the device sections' fields from the stream's vmdesc
 * (mig-stream.c), then for each mutant: change one field, get a fresh
 * destination waiting with -incoming defer, 'migrate-incoming' the mutant
 * with exit-on-error off, and, if it loaded, touch the device.  Every
 * mutant runs in a forked child (at most MUTATOR_JOBS at once) that
 * inherits the driver state, with its output in a log of its own.
 *
 * The fresh destination (docs/fuzzing.rst): in fork mode (the default),
 * each job slot keeps a template destination, started once with the
 * scenario's command line, -incoming defer and IOLAB_QMP_IN_MAIN_LOOP=1;
 * the child asks it for x-iolab-fork (qapi/iolab-test.json) and talks to
 * the forked QEMU on the template's own connections, ends it with
 * x-iolab-fork-end and reads the template's answer.  A QEMU that did not
 * end that way takes its template with it (the template exits), and the
 * slot starts a new one.  MUTATOR_FORK=0 starts a QEMU per mutant.
 *
 * Outcomes: "refused" (the load failed and QEMU still answers), "works"
 * (the device answered or reports its error state), "silent" (QEMU
 * answers, the device did not within the touch's wait).  Anything else is
 * a FAILURE: the child or QEMU died (signal, assertion, abort, unexpected
 * exit), a sanitizer reported, or the mutant hung past MUTATOR_TIMEOUT.
 * A failure's mutant and log are kept in MUTATOR_OUT.
 *
 * Environment (all optional):
 *   MUTATOR_DEVICES  comma-separated scenarios (default: all)
 *   MUTATOR_SEED     seed of the mutations (default 1)
 *   MUTATOR_COUNT    mutants per scenario; 0 (the default): one round,
 *                    every field group once (buffers by their size);
 *                    mutants past the first round stack up to
 *                    MIG_MUTATION_MAX_EDITS edits (mig-stream.h)
 *   MUTATOR_STACKED  with MUTATOR_COUNT 0: this many mutants more, past
 *                    the round, so stacked (default 0)
 *   MUTATOR_FIRST    index of the first mutant (default 0)
 *   MUTATOR_JOBS     children at once, 1 to MUT_SLOTS (default 2); a
 *                    job mostly waits for its QEMU, so more jobs than
 *                    cores pay (docs/fuzzing.rst)
 *   MUTATOR_TIMEOUT  seconds per mutant before it counts as a hang (30)
 *   MUTATOR_TOUCH_MS how long a mutant's touch waits for the device to
 *                    answer before it counts as silent (500; the
 *                    control always gets MUT_TOUCH_CONTROL_US)
 *   MUTATOR_FORK     1 (default): fork a template per mutant; 0: start
 *                    a QEMU per mutant
 *   MUTATOR_SELFTEST 1 (default): per scenario, check that a QEMU killed
 *                    by SIGABRT after loading the control stream counts
 *                    as a failure and a truncated stream as refused
 *   MUTATOR_OUT      where failures are kept (default ./mutator-failures)
 *   MUTATOR_ALLOW    allow-list file: "scenario field-group" per line
 *   MUTATOR_REGRESSIONS  file of mutants that once failed, run after the
 *                    drawn ones: "scenario field-path-suffix value" per
 *                    line, more "field value" pairs for a stacked mutant
 *                    (the field by name, so that a change of the
 *                    stream's layout cannot make it test something else)
 *   MUTATOR_LOAD     load this stream file instead of drawing mutants
 *   MUTATOR_SAVE     keep each scenario's source stream as
 *                    <MUTATOR_SAVE><scenario>.mig and draw no mutants
 *                    (the control still runs): a stream of one QEMU
 *                    binary for another to load with MUTATOR_LOAD
 *   MUTATOR_VERBOSE  1: print every mutant's outcome
 *   MUTATOR_LIST     1: print the field map of each source stream
 * The last line is "mutator: N passed, M failed".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#include "qobject/qdict.h"
#include "mig-mutator.h"
#include "mig-stream.h"
#include "iolab-migrate-wait.h"

static const MutScenario *const mut_scenarios[] = {
    &mut_vpri_blk, &mut_vpri_nic, &mut_vdpa_blk, &mut_vdpa_net,
    &mut_nvme_export, &mut_nvme_export_mgmt,
};

typedef struct MutOpts {
    uint64_t seed, count, first;
    uint64_t stacked;       /* with count 0: this many past the round */
    int jobs;
    int timeout_s;
    gint64 touch_us;        /* a mutant's touch wait (MutRun.touch_us) */
    bool fork;              /* fork templates, not start a QEMU per mutant */
    bool self_test;         /* check that the verdicts can fail */
    char *out;
    char *load;
    char *save;             /* path prefix of the kept source streams */
    char *regressions;      /* MUTATOR_REGRESSIONS */
    bool verbose;
    bool list;              /* print the field map of each stream */
    GPtrArray *allow;       /* "scenario field-group" */
} MutOpts;

/* Counts per scenario */
typedef struct MutStats {
    unsigned refused, works, error_state, silent, failed, allowed;
    unsigned refused_named;     /* refusals whose message names a field */
    double seconds;
} MutStats;

/* One running child */
/* How a self-test job must end (MUTATOR_SELFTEST) */
typedef enum MutSelfTest {
    SELFTEST_NONE,
    SELFTEST_ABORT,         /* its QEMU gets SIGABRT once loaded: FAILURE */
    SELFTEST_TRUNCATED,     /* the stream cut in half: refused */
} MutSelfTest;

typedef struct MutJob {
    pid_t pid;
    int slot;
    uint64_t index;
    MigMutation m;
    char *mutant, *log, *res;
    gint64 deadline;
    bool control;           /* the unmutated stream: must load and work */
    MutSelfTest self_test;
} MutJob;

/*
 * A slot's template destination (fork mode).  The parent QEMU writes the
 * child's pid to @status at once and how the child ended when it has.
 */
typedef struct MutTemplate {
    QTestState *qts;
    char *status;
} MutTemplate;

static MutTemplate mut_templates[MUT_SLOTS];

bool mut_poll(QTestState *qts, gint64 timeout_us,
              bool (*cond)(void *opaque), void *opaque)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;

    while (!cond(opaque)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        qtest_clock_step(qts, 1000);
        g_usleep(200);
    }
    return true;
}

static uint64_t mut_env_u64(const char *name, uint64_t def)
{
    const char *v = g_getenv(name);

    return v && *v ? g_ascii_strtoull(v, NULL, 0) : def;
}

static void mut_opts_init(MutOpts *o)
{
    const char *allow = g_getenv("MUTATOR_ALLOW");

    o->seed = mut_env_u64("MUTATOR_SEED", 1);
    o->count = mut_env_u64("MUTATOR_COUNT", 0);
    o->first = mut_env_u64("MUTATOR_FIRST", 0);
    o->stacked = mut_env_u64("MUTATOR_STACKED", 0);
    o->jobs = CLAMP(mut_env_u64("MUTATOR_JOBS", 2), 1, MUT_SLOTS);
    o->timeout_s = mut_env_u64("MUTATOR_TIMEOUT", 30);
    o->touch_us = MIN(mut_env_u64("MUTATOR_TOUCH_MS", 500) * 1000,
                      MUT_TOUCH_CONTROL_US);
    o->fork = mut_env_u64("MUTATOR_FORK", 1);
    o->self_test = mut_env_u64("MUTATOR_SELFTEST", 1);
    o->out = g_strdup(g_getenv("MUTATOR_OUT") ?: "mutator-failures");
    o->load = g_strdup(g_getenv("MUTATOR_LOAD"));
    o->save = g_strdup(g_getenv("MUTATOR_SAVE"));
    o->regressions = g_strdup(g_getenv("MUTATOR_REGRESSIONS"));
    o->verbose = mut_env_u64("MUTATOR_VERBOSE", 0);
    o->list = mut_env_u64("MUTATOR_LIST", 0);
    o->allow = g_ptr_array_new_with_free_func(g_free);
    if (allow && *allow) {
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents(allow, &text, NULL, NULL)) {
            g_error("cannot read the allow-list %s", allow);
        }
        lines = g_strsplit(text, "\n", -1);
        for (int i = 0; lines[i]; i++) {
            char *l = g_strstrip(lines[i]);

            if (*l && *l != '#') {
                g_ptr_array_add(o->allow, g_strdup(l));
            }
        }
    }
}

/*
 * "scenario group" on the allow-list for one of @m's fields?  (The group
 * without the idstr.)
 */
static bool mut_allowed(const MutOpts *o, const char *scenario,
                        const MigMutation *m)
{
    for (unsigned e = 0; e < m->nedits; e++) {
        const MigField *f = m->edit[e].field;
        /* The idstr ("0000:00:02.0/nvme-export") has colons of its own */
        const char *g = strrchr(f->group, ':');
        g_autofree char *key = g_strdup_printf("%s %s", scenario,
                                               g ? g + 1 : f->group);

        for (guint i = 0; i < o->allow->len; i++) {
            if (!strcmp(g_ptr_array_index(o->allow, i), key)) {
                return true;
            }
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Source                                                             */

/* Run the scenario's source and save its stream to @path */
static void mut_save_source(MutRun *r, const char *path)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *st = NULL;

    r->sc->source(r);
    qtest_qmp_assert_success(r->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    st = iolab_migrate_wait(r->qts, NULL, 60 * G_USEC_PER_SEC, NULL);
    if (strcmp(st, "completed")) {
        g_error("%s: saving the source stream ended '%s'", r->sc->name, st);
    }
    qtest_quit(r->qts);
    r->qts = NULL;
}

/* ------------------------------------------------------------------ */
/* One mutant, in a child                                             */

static void mut_result(const char *res, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* The child's progress and verdict, one line each, for the parent */
static void mut_result(const char *res, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(res, "a");

    if (!f) {
        return;
    }
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static bool mut_running(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    bool running = ret && qdict_get_bool(ret, "running");

    qobject_unref(rsp);
    return running;
}

/* The netdev socketpairs of fork mode's templates (mig-mutator.h) */
int mut_net_pair(MutRun *r)
{
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
    if (r->net_sock[r->slot] >= 0) {
        close(r->net_sock[r->slot]);
        close(r->net_peer[r->slot]);
    }
    r->net_sock[r->slot] = sv[0];
    r->net_peer[r->slot] = sv[1];
    return sv[1];
}

int mut_net_sock(MutRun *r)
{
    return r->net_sock[r->slot];
}

/*
 * Before a fork: what the template's earlier children left in its netdev
 * socketpair (frames their device sent that no driver read, frames a
 * driver sent that their device never took) goes, so that a stale frame
 * neither reaches this child nor fills the pair until a write blocks.
 */
static void mut_net_drain(MutRun *r)
{
    int fds[2] = { r->net_sock[r->slot], r->net_peer[r->slot] };
    char buf[4096];

    for (int i = 0; i < 2; i++) {
        while (fds[i] >= 0 && recv(fds[i], buf, sizeof(buf),
                                   MSG_DONTWAIT) > 0) {
            /* drop it */
        }
    }
}

/*
 * Load @mutant into @dst and, if it loaded, touch the device: the
 * verdict.  A load that does not end is a hang: the child says so and
 * exits 3.
 */
static char *mut_load_and_touch(MutRun *r, QTestState *dst,
                                const char *mutant, const char *res,
                                int timeout_s, MutSelfTest self_test,
                                pid_t qemu_pid)
{
    g_autofree char *st = NULL;
    QDict *reply;
    char *desc;

    mut_result(res, "stage load");
    st = iolab_migrate_load_file(dst, mutant, timeout_s * G_USEC_PER_SEC,
                                 &reply);
    /* QEMU sets a load's error after "failed": only the last reply has it */
    desc = g_strdup(reply ? qdict_get_try_str(reply, "error-desc") : NULL);
    qobject_unref(reply);
    if (self_test == SELFTEST_ABORT) {
        /* What a crash after the load looks like: it must not pass */
        mut_result(res, "stage self-test abort");
        kill(qemu_pid, SIGABRT);
    }
    if (!strcmp(st, "failed")) {
        char *verdict = g_strdup_printf("refused %s",
                                        desc ?: "(no error-desc)");

        /* Refused: QEMU must still answer, and end cleanly after */
        g_free(desc);
        mut_running(dst);
        return verdict;
    }
    if (strcmp(st, "completed")) {
        mut_result(res, "hang: the load did not end (status '%s')", st);
        exit(3);
    }
    g_free(desc);
    /* The VM starts by itself after the load (no -S) */
    for (int i = 0; i < 1000 && !mut_running(dst); i++) {
        g_usleep(1000);
    }
    mut_result(res, "stage touch");
    r->qts = dst;
    r->sc->attach(r, dst);
    switch (r->sc->touch(r)) {
    case TOUCH_ANSWERED:
        desc = g_strdup("works");
        break;
    case TOUCH_ERROR_STATE:
        desc = g_strdup("error-state");
        break;
    case TOUCH_SILENT:
    default:
        desc = g_strdup("silent");
        break;
    }
    mut_running(dst);
    return desc;
}

/* One mutant in a QEMU of its own (MUTATOR_FORK=0) */
static G_NORETURN void mut_child_spawn(MutRun *r, const char *mutant,
                                       const char *res, int timeout_s,
                                       MutSelfTest self_test)
{
    g_autofree char *args = r->sc->args(r);
    g_autofree char *dargs = g_strdup_printf("%s -incoming defer", args);
    g_autofree char *verdict = NULL;
    QTestState *dst;

    mut_result(res, "stage start");
    dst = qtest_init(dargs);
    verdict = mut_load_and_touch(r, dst, mutant, res, timeout_s, self_test,
                                 qtest_pid(dst));
    mut_result(res, "stage quit");
    qtest_quit(dst);
    mut_result(res, "%s", verdict);
    exit(0);
}

/*
 * One mutant in a fork of the slot's template.  The child talks to the
 * forked QEMU on the template's connections and never quits it: that
 * would kill the template.
 */
static G_NORETURN void mut_child_fork(MutRun *r, const char *mutant,
                                      const char *res, const char *log,
                                      int timeout_s, MutSelfTest self_test)
{
    QTestState *dst = mut_templates[r->slot].qts;
    g_autofree char *verdict = NULL;
    QDict *rsp, *ret;
    pid_t qemu_pid;

    /*
     * An assertion here must not have libqtest SIGTERM the templates
     * (this process cannot even wait for them): the parent cleans up.
     */
    for (int k = 0; k < MUT_SLOTS; k++) {
        if (mut_templates[k].qts) {
            qtest_remove_abrt_handler(mut_templates[k].qts);
        }
    }
    mut_net_drain(r);
    mut_result(res, "stage fork");
    rsp = qtest_qmp(dst, "{ 'execute': 'x-iolab-fork', 'arguments': "
                    "{ 'log': %s, 'status-file': %s } }", log,
                    mut_templates[r->slot].status);
    ret = qdict_get_qdict(rsp, "return");
    if (!ret || strcmp(qdict_get_try_str(ret, "role") ?: "", "child")) {
        mut_result(res, "x-iolab-fork failed");
        exit(4);
    }
    qemu_pid = qdict_get_int(ret, "pid");
    qobject_unref(rsp);
    mut_result(res, "stage forked %d", (int)qemu_pid);
    verdict = mut_load_and_touch(r, dst, mutant, res, timeout_s, self_test,
                                 qemu_pid);
    mut_result(res, "stage end");
    /*
     * The child answers and quits as QEMU does (a crash on the way out
     * counts); then the template answers x-iolab-fork.
     */
    qtest_qmp_assert_success(dst, "{ 'execute': 'x-iolab-fork-end' }");
    rsp = qtest_qmp_receive(dst);
    ret = qdict_get_qdict(rsp, "return");
    if (!ret || strcmp(qdict_get_try_str(ret, "role") ?: "", "parent") ||
        !qdict_get_try_bool(ret, "clean", false)) {
        mut_result(res, "the template's answer is not a clean end");
        exit(4);
    }
    qobject_unref(rsp);
    mut_result(res, "%s", verdict);
    _exit(0);
}

/* ------------------------------------------------------------------ */
/* The parent: jobs, verdicts, failures                               */

static char *mut_last_line(const char *path)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    char *last = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return g_strdup("");
    }
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        if (*lines[i]) {
            last = lines[i];
        }
    }
    return g_strdup(last ?: "");
}

/*
 * What went wrong, from @log, for the report: a sanitizer's or an
 * assertion's line first, else QEMU's own last words (any line that is
 * neither libqtest's nor a test message), then how libqtest saw QEMU end.
 */
static char *mut_symptom(const char *log)
{
    static const char *const marks[] = {
        "AddressSanitizer", "LeakSanitizer", "runtime error:",
        "Assertion", "assertion failed", NULL,
    };
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    const char *what = NULL, *end = NULL;

    if (!g_file_get_contents(log, &text, NULL, NULL)) {
        return g_strdup("(no log)");
    }
    lines = g_strsplit(text, "\n", -1);
    for (int m = 0; marks[m] && !what; m++) {
        for (int i = 0; lines[i] && !what; i++) {
            if (strstr(lines[i], marks[m])) {
                what = lines[i];
            }
        }
    }
    for (int i = 0; lines[i]; i++) {
        const char *l = lines[i];

        if (strstr(l, "libqtest.c") || strstr(l, "kill_qemu()")) {
            end = end ?: l;
        } else if (!what && *l && *l != '#' && strcmp(l, "Broken pipe") &&
                   !g_str_has_prefix(l, "**")) {
            what = l;
        }
    }
    if (what && end) {
        return g_strdup_printf("%s | %s", g_strstrip((char *)what),
                               g_strstrip((char *)end));
    }
    return g_strdup(what ? g_strstrip((char *)what) :
                    end ? g_strstrip((char *)end) : "(nothing in the log)");
}

/*
 * What the destination said on stderr ("qemu-system-x86_64: ..." lines),
 * joined: a refusal's reasons, which the error-desc may not carry.
 */
static char *mut_qemu_errors(const char *log)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GString *out = g_string_new(NULL);

    if (g_file_get_contents(log, &text, NULL, NULL)) {
        lines = g_strsplit(text, "\n", -1);
        for (int i = 0; lines[i]; i++) {
            const char *p = strstr(lines[i], "qemu-system-");

            /* Not libqtest's "# starting QEMU: exec ..." */
            if (lines[i][0] != '#' && p && (p = strstr(p, ": "))) {
                g_string_append_printf(out, "%s%s", out->len ? "; " : "",
                                       g_strstrip((char *)p + 2));
            }
        }
    }
    return g_string_free(out, false);
}

static bool mut_log_has_sanitizer(const char *log)
{
    g_autofree char *text = NULL;

    return g_file_get_contents(log, &text, NULL, NULL) &&
           (strstr(text, "Sanitizer") || strstr(text, "runtime error:"));
}

static void mut_keep_failure(const MutOpts *o, MutRun *r, MutJob *j,
                             const char *symptom)
{
    g_autofree char *base = j->control ?
        g_strdup_printf("%s/%s-control", o->out, r->sc->name) :
        g_strdup_printf("%s/%s-seed%" PRIu64 "-%" PRIu64, o->out,
                        r->sc->name, o->seed, j->index);
    g_autofree char *mig = g_strdup_printf("%s.mig", base);
    g_autofree char *log = g_strdup_printf("%s.log", base);
    g_autofree char *txt = g_strdup_printf("%s.txt", base);
    g_autofree char *what = mig_mutation_describe(&j->m);
    g_autofree char *text = NULL;
    g_autofree char *logtext = NULL;

    g_mkdir_with_parents(o->out, 0755);
    if (rename(j->mutant, mig)) {
        g_autofree char *data = NULL;
        gsize len;

        if (g_file_get_contents(j->mutant, &data, &len, NULL)) {
            g_file_set_contents(mig, data, len, NULL);
        }
    }
    if (g_file_get_contents(j->log, &logtext, NULL, NULL)) {
        g_file_set_contents(log, logtext, -1, NULL);
    }
    text = g_strdup_printf("scenario: %s\nmutation: %s\nsymptom: %s\n"
                           "reproduce: MUTATOR_DEVICES=%s MUTATOR_SEED=%"
                           PRIu64 " MUTATOR_FIRST=%" PRIu64
                           " MUTATOR_COUNT=1 MUTATOR_JOBS=1 "
                           "QTEST_QEMU_BINARY=... mig-mutator\n"
                           "or load this very stream: MUTATOR_LOAD=%s\n",
                           r->sc->name, what, symptom, r->sc->name, o->seed,
                           j->index, mig);
    g_file_set_contents(txt, text, -1, NULL);
}

/* "idstr:st.sq.cqid" -> "cqid": what a refusal should name */
static const char *mut_leaf_name(const char *group)
{
    const char *dot = strrchr(group, '.');
    const char *colon = strrchr(group, ':');
    const char *slash = strrchr(group, '/');
    const char *cut = MAX(dot, MAX(colon, slash));

    return cut ? cut + 1 : group;
}

/* Does a refusal (@verdict, or QEMU's @errors) name one of @m's fields? */
static bool mut_names_an_edit(const MigMutation *m, const char *verdict,
                              const char *errors)
{
    for (unsigned e = 0; e < m->nedits; e++) {
        const char *leaf = mut_leaf_name(m->edit[e].field->group);

        if (strstr(verdict, leaf) || strstr(errors, leaf)) {
            return true;
        }
    }
    return false;
}

/*
 * Judge a finished (or killed) child and count it.  @qemu_end: in fork
 * mode, how the forked QEMU ended if it did not end cleanly.
 */
static void mut_judge(const MutOpts *o, MutRun *r, MutJob *j, int wstatus,
                      bool timed_out, const char *qemu_end, MutStats *st)
{
    g_autofree char *verdict = mut_last_line(j->res);
    g_autofree char *what = mig_mutation_describe(&j->m);
    g_autofree char *symptom = NULL;
    bool ok = !timed_out && WIFEXITED(wstatus) &&
              WEXITSTATUS(wstatus) == 0 && !mut_log_has_sanitizer(j->log);

    if (ok && j->control && strcmp(verdict, "works")) {
        /* The harness itself is broken: nothing else would mean much */
        symptom = g_strdup_printf("the unmutated stream gives '%s', not "
                                  "'works'", verdict);
        printf("mutator: FAILURE %s control: %s\n", r->sc->name, symptom);
        st->failed++;
        mut_keep_failure(o, r, j, symptom);
    } else if (ok && j->control) {
        if (o->verbose) {
            printf("mutator: %s control: works\n", r->sc->name);
        }
    } else if (ok) {
        if (g_str_has_prefix(verdict, "refused")) {
            g_autofree char *why = mut_qemu_errors(j->log);

            st->refused++;
            if (mut_names_an_edit(&j->m, verdict, why)) {
                st->refused_named++;
            }
            if (*why) {
                g_autofree char *v = g_strdup_printf("%s [%s]", verdict,
                                                     why);

                g_free(verdict);
                verdict = g_steal_pointer(&v);
            }
        } else if (!strcmp(verdict, "works")) {
            st->works++;
        } else if (!strcmp(verdict, "error-state")) {
            st->error_state++;
        } else if (!strcmp(verdict, "silent")) {
            st->silent++;
        } else {
            ok = false;
        }
        if (ok && o->verbose) {
            printf("mutator: %s #%" PRIu64 " %s: %s\n", r->sc->name,
                   j->index, j->self_test ? "self-test" : what, verdict);
        }
    }
    if (!ok) {
        if (timed_out) {
            symptom = g_strdup_printf("hang: no verdict in %d s (%s)",
                                      o->timeout_s, verdict);
        } else if (WIFSIGNALED(wstatus)) {
            g_autofree char *s = mut_symptom(j->log);

            symptom = g_strdup_printf("signal %d at '%s': %s",
                                      WTERMSIG(wstatus), verdict, s);
        } else {
            g_autofree char *s = mut_symptom(j->log);

            symptom = g_strdup_printf("exit %d at '%s': %s",
                                      WIFEXITED(wstatus) ?
                                      WEXITSTATUS(wstatus) : -1, verdict, s);
        }
        if (qemu_end) {
            g_autofree char *s = g_steal_pointer(&symptom);

            symptom = g_strdup_printf("%s (%s)", s, qemu_end);
        }
        if (j->self_test) {
            /* Counted as a failure, as it must be: mut_self_test() checks */
            st->failed++;
            if (o->verbose) {
                printf("mutator: %s self-test: counted as a failure: %s\n",
                       r->sc->name, symptom);
            }
        } else if (mut_allowed(o, r->sc->name, &j->m)) {
            st->allowed++;
            printf("mutator: %s #%" PRIu64 " known failure (allow-list): "
                   "%s: %s\n", r->sc->name, j->index, what, symptom);
        } else {
            st->failed++;
            printf("mutator: FAILURE %s #%" PRIu64 ": %s: %s\n",
                   r->sc->name, j->index, what, symptom);
        }
        if (!j->self_test) {
            mut_keep_failure(o, r, j, symptom);
        }
    }
    fflush(stdout);
    unlink(j->mutant);
    unlink(j->res);
    unlink(j->log);
    g_free(j->mutant);
    g_free(j->log);
    g_free(j->res);
    j->pid = 0;
}

/* Fork mode: the slot's template, started unless it runs */
static void mut_template_start(MutRun *r, int slot)
{
    MutTemplate *t = &mut_templates[slot];
    g_autofree char *args = NULL;
    g_autofree char *dargs = NULL;

    if (t->qts) {
        return;
    }
    r->slot = slot;
    args = r->sc->args(r);
    dargs = g_strdup_printf("%s -incoming defer", args);
    /* Its QMP must live in the main loop, the only thread a fork keeps */
    g_setenv("IOLAB_QMP_IN_MAIN_LOOP", "1", true);
    t->qts = qtest_init(dargs);
    g_unsetenv("IOLAB_QMP_IN_MAIN_LOOP");
    g_free(t->status);
    t->status = g_strdup_printf("%s/template%d.status", r->dir, slot);
}

/*
 * The template's status file: the forked QEMU's pid (0 if it did not
 * fork) and, once it ended, how ("exited 0 clean", "signal 6", ...).
 */
static pid_t mut_template_read(MutTemplate *t, char **end)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    int pid = 0;

    *end = NULL;
    if (!g_file_get_contents(t->status, &text, NULL, NULL)) {
        return 0;
    }
    lines = g_strsplit(text, "\n", -1);
    if (!lines[0] || sscanf(lines[0], "pid %d", &pid) != 1) {
        return 0;
    }
    if (lines[1] && *lines[1]) {
        *end = g_strdup(lines[1]);
    }
    return pid;
}

static void mut_template_quit(MutTemplate *t, int expected_status)
{
    qtest_set_expected_status(t->qts, expected_status);
    qtest_quit(t->qts);
    t->qts = NULL;
    unlink(t->status);
}

/*
 * After a fork-mode job: keep the template if its child ended through
 * x-iolab-fork-end; else end the child if it still runs (a hang, or a
 * driver that died first), let the template exit (it does, status 3,
 * once its child has ended otherwise) and start afresh next time.
 * Returns how the forked QEMU ended, for the verdict, if not cleanly.
 */
static char *mut_template_after(MutJob *j)
{
    MutTemplate *t = &mut_templates[j->slot];
    g_autofree char *end = NULL;
    pid_t pid = mut_template_read(t, &end);

    if (end && g_str_has_suffix(end, " clean")) {
        return NULL;
    }
    if (!pid) {
        /* The status may trail the child's answer: a moment more */
        g_usleep(200 * 1000);
        g_free(end);
        pid = mut_template_read(t, &end);
    }
    if (!pid) {
        /* No fork: the template is as it was, but the talk broke off */
        mut_template_quit(t, 0);
        return g_strdup("no QEMU forked");
    }
    if (!end) {
        kill(pid, SIGKILL);
        for (int i = 0; i < 1000 && !end; i++) {
            g_usleep(10 * 1000);
            pid = mut_template_read(t, &end);
        }
    }
    mut_template_quit(t, 3);
    return g_strdup_printf("forked QEMU %d: %s", (int)pid,
                           end ?: "did not end");
}

static void mut_spawn(const MutOpts *o, MutRun *r, const MigStream *s,
                      MutJob *j, int slot, uint64_t index,
                      const char *whole_file, MutSelfTest self_test,
                      const MigMutation *fixed)
{
    g_autoptr(GError) err = NULL;
    int fd;

    j->slot = slot;
    j->index = index;
    j->self_test = self_test;
    j->control = whole_file && !o->load && !self_test;
    /* The child inherits it */
    r->touch_us = j->control ? MUT_TOUCH_CONTROL_US : o->touch_us;
    if (whole_file) {
        j->mutant = g_strdup_printf("%s/whole.mig", r->dir);
        j->log = g_strdup_printf("%s/whole.log", r->dir);
        j->res = g_strdup_printf("%s/whole.res", r->dir);
    } else {
        j->mutant = g_strdup_printf("%s/m%" PRIu64 ".mig", r->dir, index);
        j->log = g_strdup_printf("%s/m%" PRIu64 ".log", r->dir, index);
        j->res = g_strdup_printf("%s/m%" PRIu64 ".res", r->dir, index);
    }
    if (whole_file) {
        /* A stream as it is: the "mutation" is the whole file */
        static MigField whole = { .path = (char *)"(whole file)",
                                  .group = (char *)"(whole file)",
                                  .type = (char *)"file" };
        g_autofree char *data = NULL;
        gsize len;

        memset(&j->m, 0, sizeof(j->m));
        j->m.nedits = 1;
        j->m.edit[0].field = &whole;
        if (!g_file_get_contents(whole_file, &data, &len, &err) ||
            !g_file_set_contents(j->mutant, data, self_test ==
                                 SELFTEST_TRUNCATED ? len / 2 : len,
                                 &err)) {
            g_error("%s", err->message);
        }
    } else {
        if (fixed) {
            j->m = *fixed;
        } else {
            mig_mutation_draw(s, o->seed, index, &j->m);
        }
        if (!mig_mutation_write(s, &j->m, j->mutant, &err)) {
            g_error("%s", err->message);
        }
    }
    if (o->fork) {
        mut_template_start(r, slot);
        unlink(mut_templates[slot].status);
    }
    fflush(stdout);
    fflush(stderr);
    j->pid = fork();
    g_assert(j->pid >= 0);
    if (j->pid == 0) {
        setpgid(0, 0);
        /* Appending: in fork mode the forked QEMU writes here too */
        fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        r->slot = slot;
        if (o->fork) {
            mut_child_fork(r, j->mutant, j->res, j->log, o->timeout_s,
                           self_test);
        }
        mut_child_spawn(r, j->mutant, j->res, o->timeout_s, self_test);
    }
    setpgid(j->pid, j->pid);
    j->deadline = g_get_monotonic_time() +
                  (gint64)o->timeout_s * G_USEC_PER_SEC;
}

/* Wait for @j, kill it at its deadline, judge it */
static bool mut_reap(const MutOpts *o, MutRun *r, MutJob *j, bool block,
                     MutStats *st)
{
    g_autofree char *qemu_end = NULL;
    bool timed_out = false;
    int wstatus = 0;
    pid_t p;

    for (;;) {
        p = waitpid(j->pid, &wstatus, WNOHANG);
        if (p == j->pid) {
            break;
        }
        if (g_get_monotonic_time() > j->deadline) {
            /* A hang: the child, its QEMU and all they started */
            kill(-j->pid, SIGKILL);
            waitpid(j->pid, &wstatus, 0);
            timed_out = true;
            break;
        }
        if (!block) {
            return false;
        }
        g_usleep(2000);
    }
    if (o->fork) {
        qemu_end = mut_template_after(j);
    }
    mut_judge(o, r, j, wstatus, timed_out, qemu_end, st);
    return true;
}

/*
 * The verdicts can fail: a QEMU that aborts after loading the control
 * stream counts as a failure, not as refused or works, and a stream cut
 * in half counts as refused.  Then the next mutant gets a fresh QEMU.
 */
static void mut_self_test(const MutOpts *o, MutRun *r, const MigStream *s,
                          const char *stream, MutStats *st)
{
    static const struct {
        MutSelfTest kind;
        const char *name;
    } cases[] = {
        { SELFTEST_ABORT, "a QEMU killed by SIGABRT after the load" },
        { SELFTEST_TRUNCATED, "a stream cut in half" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        MutStats got = { 0 };
        MutJob j = { 0 };
        bool right;

        mut_spawn(o, r, s, &j, 0, o->first, stream, cases[i].kind, NULL);
        mut_reap(o, r, &j, true, &got);
        if (cases[i].kind == SELFTEST_ABORT) {
            right = got.failed == 1 && got.refused + got.works == 0;
        } else {
            right = got.refused == 1 && got.failed == 0;
        }
        if (!right) {
            printf("mutator: FAILURE %s self-test: %s counted as %u refused, "
                   "%u works, %u error-state, %u silent, %u failed\n",
                   r->sc->name, cases[i].name, got.refused, got.works,
                   got.error_state, got.silent, got.failed);
            st->failed++;
        } else if (o->verbose) {
            printf("mutator: %s self-test: %s: right\n", r->sc->name,
                   cases[i].name);
        }
    }
}

/* "field value [field value ...]" of a MUTATOR_REGRESSIONS line into @m */
static bool mut_regression_parse(const MigStream *s, char **words,
                                 MigMutation *m)
{
    guint n = g_strv_length(words);

    memset(m, 0, sizeof(*m));
    if (!n || n % 2 || n / 2 > MIG_MUTATION_MAX_EDITS) {
        return false;
    }
    for (guint i = 0; i < n; i += 2) {
        MigMutation one;

        if (!mig_mutation_set(s, words[i],
                              g_ascii_strtoull(words[i + 1], NULL, 0),
                              &one)) {
            return false;
        }
        m->edit[m->nedits++] = one.edit[0];
    }
    return true;
}

/*
 * The mutants of MUTATOR_REGRESSIONS for this scenario, one at a time: each
 * once crashed or hung a QEMU, and is judged like any mutant.  A line whose
 * field the stream no longer has is a failure too: the file needs fixing.
 */
static void mut_regressions(const MutOpts *o, MutRun *r, const MigStream *s,
                            MutStats *st)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GError) err = NULL;
    uint64_t index = 1000000000;    /* names the kept files apart */

    if (!o->regressions || !*o->regressions) {
        return;
    }
    if (!g_file_get_contents(o->regressions, &text, NULL, &err)) {
        g_error("cannot read the regressions %s: %s", o->regressions,
                err->message);
    }
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        g_auto(GStrv) w = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
        MigMutation m;
        MutJob j = { 0 };

        if (!w[0] || !*w[0] || *w[0] == '#' || strcmp(w[0], r->sc->name)) {
            continue;
        }
        if (!mut_regression_parse(s, w + 1, &m)) {
            printf("mutator: FAILURE %s regression '%s': not pairs of an "
                   "integer field in the stream and a value, at most %d "
                   "(%s, line %d)\n", r->sc->name, lines[i],
                   MIG_MUTATION_MAX_EDITS, o->regressions, i + 1);
            st->failed++;
            continue;
        }
        mut_spawn(o, r, s, &j, 0, index++, NULL, SELFTEST_NONE, &m);
        mut_reap(o, r, &j, true, st);
    }
}

static MutStats mut_run_scenario(const MutOpts *o, const MutScenario *sc)
{
    MutRun r = { .sc = sc };
    g_autoptr(GError) err = NULL;
    g_autofree char *stream = NULL;
    MutJob jobs[MUT_SLOTS] = { 0 };
    MutStats st = { 0 };
    uint64_t next, end, done = 0;
    gint64 t0 = g_get_monotonic_time();
    MigStream *s;

    for (int k = 0; k < MUT_SLOTS; k++) {
        r.net_sock[k] = r.net_peer[k] = -1;
    }
    r.dir = g_dir_make_tmp("iolab-mutator-XXXXXX", &err);
    g_assert_no_error(err);
    for (int i = 0; i < 2; i++) {
        int fd;

        r.img[i] = g_strdup_printf("%s/disk%d.img", r.dir, i);
        fd = open(r.img[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
        g_assert(fd >= 0);
        g_assert_cmpint(ftruncate(fd, 8 * 1024 * 1024), ==, 0);
        close(fd);
    }
    stream = g_strdup_printf("%s/source.mig", r.dir);
    mut_save_source(&r, stream);
    s = mig_stream_map(stream, sc->sections, &err);
    if (!s) {
        g_error("%s: %s", sc->name, err->message);
    }
    printf("mutator: %s: source stream %zu bytes, %u fields in %u groups, "
           "%u mutants a round\n", sc->name, s->len, s->fields->len,
           s->groups->len, s->slots->len);
    if (o->save && *o->save) {
        g_autofree char *kept = g_strdup_printf("%s%s.mig", o->save,
                                                sc->name);

        if (!g_file_set_contents(kept, (const char *)s->data, s->len,
                                 &err)) {
            g_error("%s: %s", sc->name, err->message);
        }
        printf("mutator: %s: source stream kept in %s\n", sc->name, kept);
    }
    if (o->list) {
        for (guint i = 0; i < s->fields->len; i++) {
            MigField *f = g_ptr_array_index(s->fields, i);

            printf("mutator: %s field %s %s %zu bytes at %zu\n", sc->name,
                   f->path, f->type, f->size, f->offset);
        }
    }
    fflush(stdout);

    /*
     * First the control, the unmutated stream (or the stream to replay),
     * then the mutants.
     */
    mut_spawn(o, &r, s, &jobs[0], 0, o->first, o->load ?: stream,
              SELFTEST_NONE, NULL);
    next = o->first;
    end = o->load || (o->save && *o->save) ? o->first :
          o->first + (o->count ? o->count : s->slots->len + o->stacked);
    while (done < end - o->first + 1) {
        bool idle = true;

        for (int k = 0; k < o->jobs; k++) {
            MutJob *j = &jobs[k];

            if (!j->pid) {
                if (next < end) {
                    mut_spawn(o, &r, s, j, k, next++, NULL, SELFTEST_NONE,
                              NULL);
                    idle = false;
                }
                continue;
            }
            if (mut_reap(o, &r, j, false, &st)) {
                done++;
                idle = false;
            }
        }
        if (idle) {
            g_usleep(2000);
        }
    }
    if (!o->load && !(o->save && *o->save)) {
        mut_regressions(o, &r, s, &st);
    }
    st.seconds = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    if (o->self_test && !o->load && !(o->save && *o->save)) {
        mut_self_test(o, &r, s, stream, &st);
    }
    for (int k = 0; k < MUT_SLOTS; k++) {
        if (mut_templates[k].qts) {
            mut_template_quit(&mut_templates[k], 0);
        }
        if (r.net_sock[k] >= 0) {
            close(r.net_sock[k]);
            close(r.net_peer[k]);
        }
    }

    mig_stream_free(s);
    unlink(stream);
    for (int i = 0; i < 2; i++) {
        unlink(r.img[i]);
        g_free(r.img[i]);
    }
    rmdir(r.dir);
    g_free(r.dir);
    return st;
}

int main(int argc, char **argv)
{
    MutOpts o = { 0 };
    const char *only;
    g_auto(GStrv) wanted = NULL;
    unsigned passed = 0, failed = 0;

    g_test_init(&argc, &argv, NULL);
    mut_opts_init(&o);
    only = g_getenv("MUTATOR_DEVICES");
    if (only && *only) {
        wanted = g_strsplit(only, ",", -1);
        for (int i = 0; wanted[i]; i++) {
            bool known = false;

            for (size_t k = 0; k < G_N_ELEMENTS(mut_scenarios); k++) {
                known |= !strcmp(wanted[i], mut_scenarios[k]->name);
            }
            if (!known) {
                fprintf(stderr, "mutator: no scenario '%s'\n", wanted[i]);
                return 2;
            }
        }
    }
    printf("mutator: seed %" PRIu64 ", %" PRIu64 " mutants per scenario "
           "(0: one round and %" PRIu64 " stacked) from #%" PRIu64
           ", %d jobs, %d s timeout, %s\n",
           o.seed, o.count, o.stacked, o.first, o.jobs, o.timeout_s,
           o.fork ? "fork mode (a template per job slot)" :
                    "a QEMU per mutant (MUTATOR_FORK=0)");
    for (size_t k = 0; k < G_N_ELEMENTS(mut_scenarios); k++) {
        const MutScenario *sc = mut_scenarios[k];
        MutStats st;
        unsigned n;

        if (wanted && !g_strv_contains((const char * const *)wanted,
                                       sc->name)) {
            continue;
        }
        if (!qtest_has_device(sc->qom_type)) {
            printf("mutator: %s: skipped, %s not in this emulator\n",
                   sc->name, sc->qom_type);
            continue;
        }
        st = mut_run_scenario(&o, sc);
        /* The control run counts only when it fails */
        n = st.refused + st.works + st.error_state + st.silent + st.failed +
            st.allowed;
        printf("mutator: %s: %u mutants in %.1f s (%.2f/s): %u refused "
               "(%u naming the field), %u works, %u error-state, "
               "%u silent, %u known failures, %u FAILED\n",
               sc->name, n, st.seconds, n / MAX(st.seconds, 0.001),
               st.refused, st.refused_named, st.works, st.error_state,
               st.silent, st.allowed, st.failed);
        passed += n - st.failed;
        failed += st.failed;
    }
    if (failed) {
        printf("mutator: failures kept in %s\n", o.out);
    }
    printf("mutator: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
