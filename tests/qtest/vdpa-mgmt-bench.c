/*
 * vdpa-mgmt benchmark, under qtest
 *
 *   scale   create 65,536 blk instances and destroy them, through the
 *           admin queue in batches of 4095 commands per doorbell: wall
 *           time per instance, including the qtest driver's work
 *           (encoding, memwrite of the entries, reading completions), so
 *           an upper bound of the device's cost.  QEMU's RSS before,
 *           with all instances, and after destroying them: host memory
 *           per instance.
 *   tput    one instance against stock virtio-blk-pci (disable-legacy=on),
 *           same null-co backend (read-zeroes=on), one request in flight,
 *           4 KiB and 64 KiB reads.  Both driven the same way: the chain
 *           is built once; per request the driver resets the status byte,
 *           writes the avail entry and index, writes the doorbell, polls
 *           used->idx and reads the status.  Alternate runs (ABBA),
 *           medians, ratio.
 *   pasid   intel-iommu in scalable mode with x-pasid-mode=on: bind N
 *           instances to N distinct PASIDs (up to 65,536) and time the
 *           binds and a memory-map commit (toggling the function's memory
 *           decoding in PCI COMMAND), for growing N, with QEMU's RSS.
 *           A commit that grew with N would mean per-PASID state in the
 *           memory API (the first design: one AddressSpace per PASID).
 *
 *   migrate precopy between two QEMUs (unix socket) with 1 and 65,536
 *           blk instances, each running with one queue set up:
 *           query-migrate's downtime and total time on the source, and
 *           the stop as the guest sees it: from the source's STOP event
 *           to the destination's RESUME event (QMP timestamps, one
 *           host clock), which includes the destination's loading.
 *           Only with --only migrate.
 *
 *   vdpa-mgmt-bench [--reps N] [--seconds S] [--json FILE]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vdpa-mgmt-aq.h"
#include "vdpa-vtd.h"
#include "vpri-blk-harness.h"
#include "iolab-migrate-wait.h"

#define NULL_BLK "-blockdev driver=null-co,node-name=d0,size=1073741824," \
                 "read-zeroes=on "
#define SCALE_N 65536
#define AQ 4096

static int reps = 3;
static double seconds = 2.0;

typedef struct Q {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
} Q;

static void q_start(Q *q, const char *args)
{
    q->qts = qtest_init(args);
    pc_alloc_init(&q->alloc, q->qts, 0);
    q->bus = qpci_new_pc(q->qts, &q->alloc);
}

static void q_stop(Q *q)
{
    qpci_free_pc(q->bus);
    alloc_destroy(&q->alloc);
    qtest_quit(q->qts);
}

static long rss_kib(QTestState *qts)
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    double tmp[64];

    memcpy(tmp, v, n * sizeof(double));
    qsort(tmp, n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* Run @n commands of kind @op over @ids in batches; returns seconds */
static double batched(VMAdmin *a, uint16_t op, uint32_t *ids, int n)
{
    g_autofree VdpaCmd *cmds = g_new(VdpaCmd, AQ - 1);
    g_autofree VMCqe *res = g_new(VMCqe, AQ - 1);
    gint64 t0 = g_get_monotonic_time();

    for (int base = 0; base < n; base += AQ - 1) {
        int k = MIN(AQ - 1, n - base);

        for (int i = 0; i < k; i++) {
            cmds[i] = vm_cmd_new(a, op, op == VDPA_OP_CREATE ? 0 :
                                 ids[base + i]);
            cmds[i].u.create.type = VDPA_TYPE_BLK;
            cmds[i].u.create.nqueues = 1;
        }
        vm_submit(a, cmds, k, res);
        for (int i = 0; i < k; i++) {
            g_assert_cmpuint(res[i].status, ==, VDPA_S_OK);
            if (op == VDPA_OP_CREATE) {
                ids[base + i] = res[i].result;
            }
        }
    }
    return (g_get_monotonic_time() - t0) / 1e6;
}

static void bench_scale(FILE *json)
{
    Q q;
    VMAdmin *a;
    g_autofree uint32_t *ids = g_new(uint32_t, SCALE_N);
    double tc[64], td[64], mem[64];
    long rss0, rss1, rss2 = 0;

    for (int r = 0; r < reps; r++) {
        q_start(&q, "-M q35 -m 256M -nodefaults " NULL_BLK
                "-device vdpa-mgmt,blk-nodes=d0");
        a = vm_open(q.qts, &q.alloc, q.bus, AQ);
        rss0 = rss_kib(q.qts);
        tc[r] = batched(a, VDPA_OP_CREATE, ids, SCALE_N) * 1e6 / SCALE_N;
        g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, SCALE_N);
        rss1 = rss_kib(q.qts);
        td[r] = batched(a, VDPA_OP_DESTROY, ids, SCALE_N) * 1e6 / SCALE_N;
        g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, 0);
        rss2 = rss_kib(q.qts);
        mem[r] = (rss1 - rss0) * 1024.0 / SCALE_N;
        printf("rep %d: create %.2f us/instance, destroy %.2f us/instance, "
               "RSS %ld -> %ld -> %ld KiB (%.0f bytes/instance)\n", r + 1,
               tc[r], td[r], rss0, rss1, rss2, mem[r]);
        vm_close(a);
        q_stop(&q);
    }
    printf("scale: %d instances, median create %.2f us, destroy %.2f us, "
           "host memory %.0f bytes per instance\n", SCALE_N,
           median(tc, reps), median(td, reps), median(mem, reps));
    if (json) {
        fprintf(json, "  \"scale\": {\"instances\": %d, \"create_us\": %.3f, "
                "\"destroy_us\": %.3f, \"bytes_per_instance\": %.0f},\n",
                SCALE_N, median(tc, reps), median(td, reps),
                median(mem, reps));
    }
}

/* The per-request part both devices share */
typedef struct Loop {
    QTestState *qts;
    uint64_t avail, used, status;
    uint16_t size;
    uint16_t idx;
    void (*kick)(void *opaque);
    void *opaque;
} Loop;

static double run_loop(Loop *l)
{
    gint64 t0 = g_get_monotonic_time(), end = t0 + seconds * 1e6;
    uint64_t n = 0;

    do {
        qtest_writeb(l->qts, l->status, 0xff);
        qtest_writew(l->qts, l->avail + 4 + 2 * (l->idx % l->size), 0);
        l->idx++;
        qtest_writew(l->qts, l->avail + 2, l->idx);
        l->kick(l->opaque);
        while (qtest_readw(l->qts, l->used + 2) != l->idx) {
            /* spin: each read lets QEMU's main loop run */
        }
        g_assert_cmpuint(qtest_readb(l->qts, l->status), ==, 0);
        n++;
    } while (g_get_monotonic_time() < end);
    return n / ((g_get_monotonic_time() - t0) / 1e6);
}

static void put_chain(QTestState *qts, uint64_t desc, uint64_t hdr,
                      uint64_t data, uint32_t len, uint64_t status)
{
    uint8_t d[48], h[16] = { 0 };

    stq_le_p(d, hdr);
    stl_le_p(d + 8, 16);
    stw_le_p(d + 12, 1);
    stw_le_p(d + 14, 1);
    stq_le_p(d + 16, data);
    stl_le_p(d + 24, len);
    stw_le_p(d + 28, 3);
    stw_le_p(d + 30, 2);
    stq_le_p(d + 32, status);
    stl_le_p(d + 40, 1);
    stw_le_p(d + 44, 2);
    stw_le_p(d + 46, 0);
    qtest_memwrite(qts, desc, d, sizeof(d));
    qtest_memwrite(qts, hdr, h, sizeof(h));     /* VIRTIO_BLK_T_IN, sector 0 */
}

typedef struct VdpaKick {
    VMAdmin *a;
    uint32_t id;
} VdpaKick;

static void vdpa_kick(void *opaque)
{
    VdpaKick *k = opaque;

    vm_doorbell(k->a, k->id, 0);
}

static void vv_kick(void *opaque)
{
    vv_queue_kick(opaque);
}

static double tput_vdpa(uint32_t len)
{
    Q q;
    VMAdmin *a;
    VMRing r;
    VdpaKick k;
    Loop l;
    uint64_t data;
    VdpaCmd c;
    double rate;

    q_start(&q, "-M q35 -m 256M -nodefaults " NULL_BLK
            "-device vdpa-mgmt,blk-nodes=d0");
    a = vm_open(q.qts, &q.alloc, q.bus, 16);
    data = guest_alloc(&q.alloc, len);
    k.a = a;
    k.id = vm_create_blk(a, 1, 0);
    vm_set_status(a, k.id, VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER |
                  VDPA_ST_FEATURES_OK, VM_F_VERSION_1);
    vm_ring_init(&r, ROUND_UP(guest_alloc(&q.alloc, VM_RING_BYTES + 16), 16));
    qtest_memset(q.qts, r.mem, 0, VM_RING_BYTES);
    c = vm_ring_setup_cmd(a, &r, k.id, 0);
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    vm_set_status(a, k.id, VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER |
                  VDPA_ST_FEATURES_OK | VDPA_ST_DRIVER_OK, VM_F_VERSION_1);
    put_chain(q.qts, r.desc, r.hdr, data, len, r.status);
    l = (Loop) { .qts = q.qts, .avail = r.avail, .used = r.used,
                 .status = r.status, .size = r.size, .kick = vdpa_kick,
                 .opaque = &k };
    rate = run_loop(&l);
    vm_close(a);
    q_stop(&q);
    return rate;
}

static double tput_virtio(uint32_t len)
{
    Q q;
    VVDev *d;
    VVQueue *vq;
    Loop l;
    uint64_t data, hdr, status;
    double rate;

    q.qts = qtest_init("-M q35 -m 256M -nodefaults " NULL_BLK
                       "-device virtio-blk-pci,drive=d0,disable-legacy=on");
    d = vblk_attach(q.qts, &q.alloc, &q.bus);
    vv_init(d, 1ULL << VV_F_VERSION_1, 1, 4);
    vq = &d->queues[0];
    data = guest_alloc(&q.alloc, len);
    hdr = guest_alloc(&q.alloc, 16);
    status = guest_alloc(&q.alloc, 1);
    put_chain(q.qts, vq->desc, hdr, data, len, status);
    l = (Loop) { .qts = q.qts, .avail = vq->avail, .used = vq->used,
                 .status = status, .size = vq->size, .kick = vv_kick,
                 .opaque = vq };
    rate = run_loop(&l);
    vblk_quit(q.qts, &q.alloc, q.bus, d);
    return rate;
}

static void bench_tput(FILE *json)
{
    static const uint32_t lens[] = { 4096, 65536 };

    for (int i = 0; i < 2; i++) {
        double v[64], b[64], ratio[64];

        for (int r = 0; r < reps; r++) {
            if (r % 2) {
                b[r] = tput_virtio(lens[i]);
                v[r] = tput_vdpa(lens[i]);
            } else {
                v[r] = tput_vdpa(lens[i]);
                b[r] = tput_virtio(lens[i]);
            }
            ratio[r] = v[r] / b[r];
            printf("rep %d: %u-byte reads: vdpa instance %.0f/s, "
                   "virtio-blk-pci %.0f/s\n", r + 1, lens[i], v[r], b[r]);
        }
        printf("tput %u: median vdpa %.0f/s, virtio-blk-pci %.0f/s, "
               "ratio %.3f\n", lens[i], median(v, reps), median(b, reps),
               median(ratio, reps));
        if (json) {
            fprintf(json, "  \"tput_%u\": {\"vdpa\": %.0f, \"virtio_blk_pci\":"
                    " %.0f, \"ratio\": %.3f},\n", lens[i], median(v, reps),
                    median(b, reps), median(ratio, reps));
        }
    }
}

static int64_t fn_counter(QTestState *qts, const char *name)
{
    QDict *reply = qtest_qmp(qts, "{'execute': 'query-vdpa-mgmt', "
                             "'arguments': {'brief': true}}");
    int64_t v = qdict_get_int(qobject_to(QDict, qlist_peek(
                                  qdict_get_qlist(reply, "return"))), name);

    qobject_unref(reply);
    return v;
}

#define PASID_IOVA 0x100000000ULL

/*
 * One instance bound to a PASID, reads through intel-iommu in scalable
 * mode, with the function's translation cache of @entries entries (0:
 * none).  Returns requests per second; *@per_io: translations asked of
 * the vIOMMU per request.
 */
static double tput_pasid(uint32_t len, uint32_t entries, double *per_io)
{
    g_autofree char *args = g_strdup_printf(
        "-M q35 -m 256M -nodefaults -device intel-iommu,intremap=off,"
        "x-scalable-mode=on,x-pasid-mode=on,aw-bits=48 " NULL_BLK
        "-device vdpa-mgmt,blk-nodes=d0,iotlb-entries=%u", entries);
    Q q;
    VMAdmin *a;
    Vtd *v;
    VMRing r;
    VdpaKick k;
    Loop l;
    VdpaCmd c;
    uint64_t sl, ring;
    int64_t tr;
    double rate;

    q_start(&q, args);
    a = vm_open(q.qts, &q.alloc, q.bus, 16);
    vm_enable_pasid(a);
    v = vtd_new(q.qts, &q.alloc);
    vtd_add_device(v, a->pdev->devfn);
    sl = vtd_add_pasid(v, 1, 1);
    ring = vtd_page(v);
    vtd_map(v, sl, ring, ring);
    for (uint32_t off = 0; off < len; off += 4096) {
        vtd_map(v, sl, PASID_IOVA + off, vtd_page(v));
    }
    vtd_enable(v);
    vtd_inv_context_global(v);

    k.a = a;
    k.id = vm_create_blk(a, 1, 0);
    c = vm_cmd_new(a, VDPA_OP_BIND_PASID, k.id);
    c.u.pasid.pasid = 1;
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    vm_set_status(a, k.id, VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER |
                  VDPA_ST_FEATURES_OK, VM_F_VERSION_1);
    vm_ring_init(&r, ring);
    c = vm_ring_setup_cmd(a, &r, k.id, 0);
    g_assert_cmpuint(vm_exec(a, &c).status, ==, VDPA_S_OK);
    vm_set_status(a, k.id, VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER |
                  VDPA_ST_FEATURES_OK | VDPA_ST_DRIVER_OK, VM_F_VERSION_1);
    put_chain(q.qts, r.desc, r.hdr, PASID_IOVA, len, r.status);
    l = (Loop) { .qts = q.qts, .avail = r.avail, .used = r.used,
                 .status = r.status, .size = r.size, .kick = vdpa_kick,
                 .opaque = &k };
    tr = fn_counter(q.qts, "pasid-translations");
    rate = run_loop(&l);
    *per_io = (double)(fn_counter(q.qts, "pasid-translations") - tr) /
              MAX(l.idx, 1);
    vtd_free(v);
    vm_close(a);
    q_stop(&q);
    return rate;
}

/* PASID-bound I/O with the device-side translation cache and without */
static void bench_iotlb(FILE *json)
{
    static const uint32_t lens[] = { 4096, 65536 };

    for (int i = 0; i < 2; i++) {
        double c[64], n[64], ratio[64], tc = 0, tn = 0;

        for (int r = 0; r < reps; r++) {
            if (r % 2) {
                n[r] = tput_pasid(lens[i], 0, &tn);
                c[r] = tput_pasid(lens[i], 4096, &tc);
            } else {
                c[r] = tput_pasid(lens[i], 4096, &tc);
                n[r] = tput_pasid(lens[i], 0, &tn);
            }
            ratio[r] = c[r] / n[r];
            printf("rep %d: %u-byte reads through a PASID: cache %.0f/s "
                   "(%.2f translations/request), no cache %.0f/s "
                   "(%.2f)\n", r + 1, lens[i], c[r], tc, n[r], tn);
        }
        printf("iotlb %u: median with cache %.0f/s, without %.0f/s, ratio "
               "%.3f; translations per request %.2f vs %.2f\n", lens[i],
               median(c, reps), median(n, reps), median(ratio, reps), tc,
               tn);
        if (json) {
            fprintf(json, "  \"iotlb_%u\": {\"cache\": %.0f, \"no_cache\": "
                    "%.0f, \"ratio\": %.3f, \"translations_cache\": %.2f, "
                    "\"translations_no_cache\": %.2f},\n", lens[i],
                    median(c, reps), median(n, reps), median(ratio, reps),
                    tc, tn);
        }
    }
}

/* Time toggling memory decoding: one memory transaction commit each */
static double commit_us(Q *q, QPCIDevice *dev)
{
    double t[32];
    uint16_t cmd = qpci_config_readw(dev, PCI_COMMAND);

    for (int i = 0; i < 11; i++) {
        gint64 t0 = g_get_monotonic_time();

        qpci_config_writew(dev, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
        qpci_config_writew(dev, PCI_COMMAND, cmd);
        t[i] = (g_get_monotonic_time() - t0) / 2.0;
    }
    return median(t, 11);
}

static void bench_pasid(FILE *json)
{
    static const int steps[] = { 0, 1024, 16384, 65536 };
    Q q;
    VMAdmin *a;
    int bound = 0;
    g_autofree uint32_t *ids = g_new(uint32_t, 65536);
    g_autofree VdpaCmd *cmds = g_new(VdpaCmd, AQ - 1);
    g_autofree VMCqe *res = g_new(VMCqe, AQ - 1);

    q_start(&q, "-M q35 -m 256M -nodefaults "
            "-device intel-iommu,intremap=off,x-scalable-mode=on,"
            "x-pasid-mode=on,aw-bits=48 " NULL_BLK
            "-device vdpa-mgmt,blk-nodes=d0");
    a = vm_open(q.qts, &q.alloc, q.bus, AQ);
    vm_enable_pasid(a);
    batched(a, VDPA_OP_CREATE, ids, 65536);
    if (json) {
        fprintf(json, "  \"pasid_commit_us\": {");
    }
    for (int s = 0; s < (int)ARRAY_SIZE(steps); s++) {
        gint64 t0 = g_get_monotonic_time();
        int from = bound;
        double us;

        while (bound < steps[s]) {
            int k = MIN(AQ - 1, steps[s] - bound);

            for (int i = 0; i < k; i++) {
                cmds[i] = vm_cmd_new(a, VDPA_OP_BIND_PASID, ids[bound + i]);
                cmds[i].u.pasid.pasid = bound + i + 1;
            }
            vm_submit(a, cmds, k, res);
            for (int i = 0; i < k; i++) {
                g_assert_cmpuint(res[i].status, ==, VDPA_S_OK);
            }
            bound += k;
        }
        us = commit_us(&q, a->pdev);
        printf("pasid: %5d bound PASIDs (bind %.1f us each): "
               "memory commit %.0f us, RSS %ld KiB\n", bound,
               bound > from ? (g_get_monotonic_time() - t0) /
               (double)(bound - from) : 0.0, us, rss_kib(q.qts));
        if (json) {
            fprintf(json, "%s\"%d\": %.0f", s ? ", " : "", bound, us);
        }
    }
    if (json) {
        fprintf(json, "},\n");
    }
    vm_close(a);
    q_stop(&q);
}

/*
 * Bring @n instances up, in batches: create, FEATURES_OK, one queue of
 * VM_RING_SIZE entries each (rings at @rings), DRIVER_OK.
 */
static void bring_up_many(VMAdmin *a, uint32_t *ids, int n, uint64_t rings)
{
    g_autofree VdpaCmd *cmds = g_new(VdpaCmd, AQ - 1);
    g_autofree VMCqe *res = g_new(VMCqe, AQ - 1);

    for (int step = 0; step < 4; step++) {
        for (int base = 0; base < n; base += AQ - 1) {
            int k = MIN(AQ - 1, n - base);

            for (int i = 0; i < k; i++) {
                uint32_t id = ids[base + i];
                VMRing r;

                switch (step) {
                case 0:
                    cmds[i] = vm_cmd_new(a, VDPA_OP_CREATE, 0);
                    cmds[i].u.create.type = VDPA_TYPE_BLK;
                    cmds[i].u.create.nqueues = 1;
                    break;
                case 1:
                case 3:
                    cmds[i] = vm_cmd_new(a, VDPA_OP_SET_STATUS, id);
                    cmds[i].u.status.status = VDPA_ST_ACKNOWLEDGE |
                        VDPA_ST_DRIVER | VDPA_ST_FEATURES_OK |
                        (step == 3 ? VDPA_ST_DRIVER_OK : 0);
                    cmds[i].u.status.features = VM_F_VERSION_1;
                    break;
                case 2:
                    vm_ring_init(&r, rings +
                                 (uint64_t)(base + i) * VM_RING_BYTES);
                    cmds[i] = vm_ring_setup_cmd(a, &r, id, 0);
                    break;
                }
            }
            vm_submit(a, cmds, k, res);
            for (int i = 0; i < k; i++) {
                g_assert_cmpuint(res[i].status, ==, VDPA_S_OK);
                if (step == 0) {
                    ids[base + i] = res[i].result;
                }
            }
        }
    }
}

static double event_ms(QDict *ev)
{
    QDict *ts = qdict_get_qdict(ev, "timestamp");

    return qdict_get_int(ts, "seconds") * 1e3 +
           qdict_get_int(ts, "microseconds") / 1e3;
}

/*
 * One precopy migration of @n running instances; query-migrate's
 * downtime in ms, the guest-visible stop in *@stop_ms
 */
static double migrate_once(int n, double *total_ms, double *stop_ms)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/vdpa-bench-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *dst_args = NULL;
    g_autofree uint32_t *ids = g_new0(uint32_t, n);
    const char *args = "-M q35 -m 256M -nodefaults " NULL_BLK
                       "-device vdpa-mgmt,id=vm0,blk-nodes=d0";
    g_autofree char *st = NULL;
    QTestState *dst;
    VMAdmin *a;
    double downtime;
    QDict *rsp, *ret;
    Q q;

    q_start(&q, args);
    a = vm_open(q.qts, &q.alloc, q.bus, AQ);
    bring_up_many(a, ids, n, guest_alloc(&q.alloc,
                                         (uint64_t)n * VM_RING_BYTES));
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_NUM_INST), ==, n);
    dst_args = g_strdup_printf("%s -incoming %s", args, uri);
    dst = qtest_init(dst_args);
    rsp = qtest_qmp(q.qts, "{'execute': 'migrate', 'arguments': "
                    "{'uri': %s}}", uri);
    g_assert(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    /* 600 s, meson's timeout for a benchmark: scripts/bench sets none */
    st = iolab_migrate_wait(q.qts, NULL, 600 * G_USEC_PER_SEC, &ret);
    g_assert_cmpstr(st, ==, "completed");
    downtime = qdict_get_int(ret, "downtime");
    *total_ms = qdict_get_int(ret, "total-time");
    qobject_unref(ret);
    {
        QDict *resume = qtest_qmp_eventwait_ref(dst, "RESUME");
        QDict *stop = qtest_qmp_eventwait_ref(q.qts, "STOP");

        *stop_ms = event_ms(resume) - event_ms(stop);
        qobject_unref(resume);
        qobject_unref(stop);
    }
    rsp = qtest_qmp(dst, "{'execute': 'query-vdpa-mgmt', "
                    "'arguments': {'brief': true}}");
    g_assert_cmpint(qdict_get_int(qobject_to(QDict, qlist_peek(
                        qdict_get_qlist(rsp, "return"))), "num-instances"),
                    ==, n);
    qobject_unref(rsp);
    qtest_quit(dst);
    vm_close(a);
    q_stop(&q);
    return downtime;
}

static void bench_migrate(FILE *json)
{
    static const int sizes[] = { 1, SCALE_N };
    double down[2][64], total[2][64], stop[2][64];

    for (int s = 0; s < 2; s++) {
        for (int r = 0; r < reps; r++) {
            down[s][r] = migrate_once(sizes[s], &total[s][r], &stop[s][r]);
            printf("migrate %d instances, rep %d: downtime %.0f ms, "
                   "STOP to RESUME %.1f ms, total %.0f ms\n", sizes[s],
                   r + 1, down[s][r], stop[s][r], total[s][r]);
        }
    }
    printf("migrate: medians with 1 / %d instances: downtime %.0f / %.0f "
           "ms, STOP to RESUME %.1f / %.1f ms (%.2fx)\n", SCALE_N,
           median(down[0], reps), median(down[1], reps),
           median(stop[0], reps), median(stop[1], reps),
           median(stop[1], reps) / median(stop[0], reps));
    if (json) {
        fprintf(json, "  \"migrate\": {\"downtime_ms_1\": %.0f, "
                "\"downtime_ms_%d\": %.0f, \"stop_ms_1\": %.1f, "
                "\"stop_ms_%d\": %.1f, \"total_ms_1\": %.0f, "
                "\"total_ms_%d\": %.0f},\n", median(down[0], reps), SCALE_N,
                median(down[1], reps), median(stop[0], reps), SCALE_N,
                median(stop[1], reps), median(total[0], reps), SCALE_N,
                median(total[1], reps));
    }
}

int main(int argc, char **argv)
{
    const char *json_path = NULL, *only = NULL;
    FILE *json = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json_path = argv[++i];
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--reps N] [--seconds S] "
                    "[--json FILE] [--only scale|tput|pasid|iotlb|migrate]\n",
                    argv[0]);
            return 1;
        }
    }
    if (reps < 1 || reps > 64 || seconds <= 0) {
        fprintf(stderr, "vdpa-mgmt-bench: bad --reps (1-64) or --seconds\n");
        return 1;
    }
    if (json_path) {
        json = fopen(json_path, "w");
        g_assert(json);
        fprintf(json, "{\n");
    }
    if (!only || !strcmp(only, "scale")) {
        bench_scale(json);
    }
    if (!only || !strcmp(only, "tput")) {
        bench_tput(json);
    }
    if (!only || !strcmp(only, "pasid")) {
        bench_pasid(json);
    }
    if (!only || !strcmp(only, "iotlb")) {
        bench_iotlb(json);
    }
    /* Opt-in: two QEMUs and 65,536 instances per run */
    if (only && !strcmp(only, "migrate")) {
        bench_migrate(json);
    }
    if (json) {
        fprintf(json, "  \"reps\": %d\n}\n", reps);
        fclose(json);
    }
    return 0;
}
