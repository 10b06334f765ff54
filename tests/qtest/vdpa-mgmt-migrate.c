/*
 * vdpa-mgmt live migration at scale, under qtest: the driver side of
 * scripts/migrate-experiment's vdpa-mgmt experiment.
 *
 * No guest kernel drives vdpa-mgmt (instances are created through the
 * admin queue, and only the qtest driver in vdpa-mgmt-aq.c speaks it), so
 * this program plays the guest: it starts a source QEMU under qtest,
 * creates N blk instances (N - 1 idle ones in batches of 4095 commands
 * per doorbell, and one brought to DRIVER_OK with a ring), writes a
 * stamped 4 KiB block through the running instance, then starts a
 * destination on the same image, migrates (precopy) and checks, on the
 * destination, that NUM_INST is N and that the block reads back intact
 * through the migrated instance.
 *
 * With --postcopy both sides get the postcopy-ram capability, postcopy
 * starts as soon as the migration does, and the read on the destination
 * is made while postcopy runs (its ring and data pages may not have
 * come); with --vpri-host the function is attached to a vpri-host on
 * both sides, so that those pages are device faults (docs/vpri-host.rst,
 * "Postcopy"), and the destination's query-vpri is printed.
 *
 *   vdpa-mgmt-migrate --instances N --uri URI --image FILE
 *                     [--memory MIB] [--downtime-limit MS]
 *                     [--max-bandwidth BYTES_PER_S] [--timeout S]
 *                     [--postcopy [--max-postcopy-bandwidth BYTES_PER_S]]
 *                     [--vpri-host]
 *
 * Prints one JSON object on stdout: "verified", "instances",
 * "query-migrate" (the source's final reply), "src-rss-kib" and
 * "dst-rss-kib" (before and after), "src-vdpa-mgmt" and "dst-vdpa-mgmt"
 * (query-vdpa-mgmt, brief), "dst-vpri" (query-vpri, with --vpri-host),
 * "error" when something went wrong.  Exit
 * status 0 when the migration completed and the data verified.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vdpa-mgmt-aq.h"
#include "iolab-migrate-wait.h"

#define AQ 4096
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_S_OK 0
#define VDPA_MIG_POSTCOPY_CAP "{'execute': 'migrate-set-capabilities', " \
    "'arguments': {'capabilities': [{'capability': 'postcopy-ram', " \
    "'state': true}]}}"
#define FEATURES_OK_STATUS (VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER | \
                            VDPA_ST_FEATURES_OK)
#define RUNNING_STATUS (FEATURES_OK_STATUS | VDPA_ST_DRIVER_OK)

typedef struct VdpaMig {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VMAdmin *a;
} VdpaMig;

static long vdpa_mig_rss_kib(QTestState *qts)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            (int)qtest_pid(qts));
    g_autofree char *text = NULL;
    char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    p = strstr(text, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static char *vdpa_mig_args(int memory, const char *image, uint32_t max,
                           bool vpri, const char *incoming)
{
    return g_strdup_printf("-M q35 -m %dM -nodefaults %s"
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0,"
                           "max-instances=%u%s%s%s", memory,
                           vpri ? "-object vpri-host,id=vh0 " : "", image,
                           max, vpri ? ",host=vh0" : "",
                           incoming ? " -incoming " : "",
                           incoming ? incoming : "");
}

/* The "return" of QMP reply @rsp (or the reply) as JSON text; frees @rsp */
static char *vdpa_mig_json(QDict *rsp)
{
    GString *s;
    char *out;

    s = qobject_to_json(qdict_get(rsp, "return") ?
                        qdict_get(rsp, "return") : QOBJECT(rsp));
    out = g_string_free(s, false);
    qobject_unref(rsp);
    return out;
}

/* The query-vdpa-mgmt reply of @qts as JSON text */
static char *vdpa_mig_query_json(QTestState *qts)
{
    return vdpa_mig_json(qtest_qmp(qts, "{'execute': 'query-vdpa-mgmt', "
                                   "'arguments': {'brief': true}}"));
}

/* Create @n idle blk instances in batches; false if one was refused */
static bool vdpa_mig_create_idle(VMAdmin *a, uint32_t n)
{
    g_autofree VdpaCmd *cmds = g_new(VdpaCmd, AQ - 1);
    g_autofree VMCqe *res = g_new(VMCqe, AQ - 1);

    for (uint32_t base = 0; base < n; base += AQ - 1) {
        uint32_t k = MIN(AQ - 1, n - base);

        for (uint32_t i = 0; i < k; i++) {
            cmds[i] = vm_cmd_new(a, VDPA_OP_CREATE, 0);
            cmds[i].u.create.type = VDPA_TYPE_BLK;
            cmds[i].u.create.nqueues = 1;
        }
        vm_submit(a, cmds, k, res);
        for (uint32_t i = 0; i < k; i++) {
            if (res[i].status != VDPA_S_OK) {
                return false;
            }
        }
    }
    return true;
}

/* A blk instance at DRIVER_OK with one ring */
static uint32_t vdpa_mig_bring_up(VMAdmin *a, VMRing *ring)
{
    uint32_t id = vm_create_blk(a, 1, 0);
    VdpaCmd c;

    vm_set_status(a, id, FEATURES_OK_STATUS, VM_F_VERSION_1);
    vm_ring_init(ring, guest_alloc(a->alloc, VM_RING_BYTES));
    c = vm_ring_setup_cmd(a, ring, id, 0);
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    vm_set_status(a, id, RUNNING_STATUS, VM_F_VERSION_1);
    return id;
}

static void vdpa_mig_stamp(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 37 + 11 + (i >> 8));
    }
}

static void vdpa_mig_out(bool verified, uint32_t n, const char *migrate,
                         long rss[4], const char *qs, const char *qd,
                         const char *vpri, const char *error)
{
    g_autoptr(GString) e = g_string_new("");

    for (const char *p = error ? error : ""; *p; p++) {
        if (*p == '"' || *p == '\\') {
            g_string_append_c(e, '\\');
        }
        g_string_append_c(e, *p == '\n' ? ' ' : *p);
    }
    printf("{\"verified\": %s, \"instances\": %u, \"query-migrate\": %s, "
           "\"src-rss-kib\": [%ld, %ld], \"dst-rss-kib\": [%ld, %ld], "
           "\"src-vdpa-mgmt\": %s, \"dst-vdpa-mgmt\": %s, \"dst-vpri\": %s, "
           "\"error\": %s%s%s}\n",
           verified ? "true" : "false", n, migrate ? migrate : "null",
           rss[0], rss[1], rss[2], rss[3], qs ? qs : "null",
           qd ? qd : "null", vpri ? vpri : "null", error ? "\"" : "",
           error ? e->str : "null", error ? "\"" : "");
    fflush(stdout);
}

/*
 * Wait until the source's migration is one of the ends, or (@until, if
 * not NULL) that status; false with *@error set otherwise.  *@json gets
 * the last query-migrate reply.
 */
static bool vdpa_mig_wait(QTestState *src, const char *until, int timeout,
                          char **json, const char **error)
{
    const char *const want[] = { until, NULL };
    QDict *reply;
    g_autofree char *st = iolab_migrate_wait(src, want,
                                             (gint64)timeout *
                                             G_USEC_PER_SEC,
                                             &reply);

    g_free(*json);
    *json = reply ? g_string_free(qobject_to_json(QOBJECT(reply)), false)
                  : NULL;
    qobject_unref(reply);
    if (until && !strcmp(st, until)) {
        return true;
    }
    if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
        *error = "migration failed";
        return false;
    }
    if (!strcmp(st, "completed")) {
        if (until) {
            *error = "migration completed before postcopy started";
            return false;
        }
        return true;
    }
    *error = "migration did not complete in time";
    return false;
}

int main(int argc, char **argv)
{
    const char *uri = NULL, *image = NULL;
    uint32_t n = 0;
    int memory = 256, timeout = 300;
    long downtime_ms = -1, bandwidth = -1, pc_bandwidth = -1;
    bool postcopy = false, vpri = false;
    long rss[4] = { -1, -1, -1, -1 };
    g_autofree char *src_args = NULL, *dst_args = NULL;
    g_autofree char *qs = NULL, *qd = NULL, *mig_json = NULL;
    g_autofree char *dst_vpri = NULL;
    const char *error = NULL;
    bool verified = false;
    uint8_t out[4096], in[4096];
    VdpaMig s = { 0 };
    QTestState *src, *dst;
    VMRing ring;
    uint32_t id;
    uint64_t data;
    QDict *rsp;
    int devfn;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--instances") && i + 1 < argc) {
            n = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--uri") && i + 1 < argc) {
            uri = argv[++i];
        } else if (!strcmp(argv[i], "--image") && i + 1 < argc) {
            image = argv[++i];
        } else if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
            memory = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--downtime-limit") && i + 1 < argc) {
            downtime_ms = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--max-bandwidth") && i + 1 < argc) {
            bandwidth = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--max-postcopy-bandwidth") &&
                   i + 1 < argc) {
            pc_bandwidth = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--postcopy")) {
            postcopy = true;
        } else if (!strcmp(argv[i], "--vpri-host")) {
            vpri = true;
        } else {
            fprintf(stderr, "usage: %s --instances N --uri URI --image FILE "
                    "[--memory MIB] [--downtime-limit MS] "
                    "[--max-bandwidth BYTES] [--timeout S] [--postcopy "
                    "[--max-postcopy-bandwidth BYTES]] [--vpri-host]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || n > 1048574 || !uri || !image || memory < 64) {
        fprintf(stderr, "vdpa-mgmt-migrate: --instances (1..1048574), "
                "--uri and --image are required, --memory >= 64\n");
        return 2;
    }

    src_args = vdpa_mig_args(memory, image, n + 1, vpri, NULL);
    /* Postcopy: the capability is set before the destination listens */
    dst_args = vdpa_mig_args(memory, image, n + 1, vpri,
                             postcopy ? "defer" : uri);
    src = s.qts = qtest_init(src_args);
    pc_alloc_init(&s.alloc, s.qts, 0);
    s.bus = qpci_new_pc(s.qts, &s.alloc);
    s.a = vm_open(s.qts, &s.alloc, s.bus, AQ);

    /* N instances: one running, N - 1 idle */
    id = vdpa_mig_bring_up(s.a, &ring);
    if (!vdpa_mig_create_idle(s.a, n - 1)) {
        error = "CREATE refused before N instances";
        goto done;
    }
    data = guest_alloc(&s.alloc, sizeof(out));
    vdpa_mig_stamp(out, sizeof(out));
    qtest_memwrite(s.qts, data, out, sizeof(out));
    if (vm_blk_io(s.a, &ring, id, 0, BLK_T_OUT, 8, data, sizeof(out)) !=
        BLK_S_OK) {
        error = "the write before migration failed";
        goto done;
    }
    /* The destination's read must fetch the data, not find it there */
    qtest_memset(s.qts, data, 0, sizeof(in));
    qs = vdpa_mig_query_json(s.qts);
    rss[0] = vdpa_mig_rss_kib(s.qts);

    dst = qtest_init(dst_args);
    if (downtime_ms >= 0 || bandwidth >= 0) {
        rsp = qtest_qmp(s.qts, "{'execute': 'migrate-set-parameters', "
                        "'arguments': {'downtime-limit': %" PRId64 ", "
                        "'max-bandwidth': %" PRId64 "}}",
                        (int64_t)(downtime_ms >= 0 ? downtime_ms : 300),
                        (int64_t)(bandwidth >= 0 ? bandwidth :
                                  128 * 1024 * 1024));
        qobject_unref(rsp);
    }
    if (postcopy) {
        if (pc_bandwidth >= 0) {
            rsp = qtest_qmp(s.qts, "{'execute': 'migrate-set-parameters', "
                            "'arguments': {'max-postcopy-bandwidth': %"
                            PRId64 "}}", (int64_t)pc_bandwidth);
            qobject_unref(rsp);
        }
        rsp = qtest_qmp(s.qts, VDPA_MIG_POSTCOPY_CAP);
        if (!qdict_haskey(rsp, "return")) {
            error = "postcopy-ram was refused on the source";
        }
        qobject_unref(rsp);
        rsp = qtest_qmp(dst, VDPA_MIG_POSTCOPY_CAP);
        if (!error && !qdict_haskey(rsp, "return")) {
            error = "postcopy-ram was refused on the destination";
        }
        qobject_unref(rsp);
        rsp = qtest_qmp(dst, "{'execute': 'migrate-incoming', "
                        "'arguments': {'uri': %s}}", uri);
        qobject_unref(rsp);
        if (error) {
            qtest_quit(dst);
            goto done;
        }
    }
    rsp = qtest_qmp(s.qts, "{'execute': 'migrate', 'arguments': "
                    "{'uri': %s}}", uri);
    if (!qdict_haskey(rsp, "return")) {
        error = "migrate was refused";
        qobject_unref(rsp);
        qtest_quit(dst);
        goto done;
    }
    qobject_unref(rsp);
    if (postcopy) {
        rsp = qtest_qmp(s.qts, "{'execute': 'migrate-start-postcopy'}");
        qobject_unref(rsp);
    }
    if (!vdpa_mig_wait(src, postcopy ? "postcopy-active" : NULL, timeout,
                       &mig_json, &error)) {
        qtest_quit(dst);
        goto done;
    }
    qtest_qmp_eventwait(dst, "RESUME");
    rss[1] = vdpa_mig_rss_kib(s.qts);
    rss[2] = vdpa_mig_rss_kib(dst);

    /*
     * Continue as the same driver on the destination (under postcopy
     * while the source still sends the rest of RAM)
     */
    if (!postcopy) {
        qtest_quit(src);
        src = NULL;
    }
    qpci_free_pc(s.bus);
    s.qts = dst;
    s.bus = qpci_new_pc(dst, &s.alloc);
    s.a->qts = dst;
    s.a->bus = s.bus;
    devfn = s.a->pdev->devfn;
    g_free(s.a->pdev);
    s.a->pdev = qpci_device_find(s.bus, devfn);
    g_assert(s.a->pdev);

    if (vm_reg_read(s.a, VDPA_REG_NUM_INST) != n) {
        error = "NUM_INST on the destination differs from N";
    } else if (vm_blk_io(s.a, &ring, id, 0, BLK_T_IN, 8, data,
                         sizeof(in)) != BLK_S_OK) {
        error = "the read on the destination failed";
    } else {
        qtest_memread(dst, data, in, sizeof(in));
        verified = !memcmp(in, out, sizeof(in));
        if (!verified) {
            error = "the block read on the destination differs";
        }
    }
    if (src) {
        /* Postcopy: the rest of RAM */
        if (!vdpa_mig_wait(src, NULL, timeout, &mig_json, &error)) {
            verified = false;
        }
        qtest_quit(src);
        src = NULL;
    }
    qd = vdpa_mig_query_json(dst);
    if (vpri) {
        dst_vpri = vdpa_mig_json(qtest_qmp(dst,
                                           "{'execute': 'query-vpri'}"));
    }
    rss[3] = vdpa_mig_rss_kib(dst);

done:
    vdpa_mig_out(verified && !error, n, mig_json, rss, qs, qd, dst_vpri,
                 error);
    qpci_free_pc(s.bus);
    alloc_destroy(&s.alloc);
    if (src && src != s.qts) {
        qtest_quit(src);
    }
    qtest_quit(s.qts);
    return verified && !error ? 0 : 1;
}
