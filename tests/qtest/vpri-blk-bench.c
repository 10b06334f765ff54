/*
 * Throughput benchmark: vpri-blk against stock virtio-blk-pci, under qtest
 *
 * Both devices are driven by the same modern virtio-pci driver
 * (vpri-virtio.c; vendor 0x1af4, device 0x1042, so virtio-blk-pci runs
 * with disable-legacy=on), on one queue, with a fixed number of requests
 * outstanding, over the same backend: a null-co node with read-zeroes=on,
 * so the backend costs next to nothing and what is measured is the
 * device model (plus the qtest driver, which is the same for both).
 *
 * vpri-blk has a vpri-host (host=vh0) but nothing is evicted: every DMA is
 * checked against the PA-BITMAP and passes.
 *
 * Driver side, per request slot s (0 <= s < depth): a 3-descriptor chain
 * at descriptors 3s..3s+2 (16-byte header, one data buffer of the request
 * size, status byte), built once per configuration, always for the same
 * sectors.  The loop reads used->idx; when it moved, it reads the new used
 * elements and the status bytes in one access each, checks the completed
 * requests succeeded, and resubmits the same slots (status bytes reset,
 * avail ring entries, avail->idx, one doorbell).  Requests completed per
 * second of wall time, from the first submission to the drain after the
 * configured duration.
 *
 *   vpri-blk-bench [--reps N] [--seconds S] [--depth D] [--json FILE]
 *                  [--devices vpri-blk,virtio-blk-pci]
 *
 * Devices are run alternately, the order reversed every repetition
 * (ABBA...), each in a fresh QEMU.  Needs QTEST_QEMU_BINARY.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "vpri-blk-harness.h"

#define MAX_DEPTH           64
#define MAX_LEN             (64 * KiB)
#define NULL_SIZE           "1073741824"   /* 1 GiB */

#define DRIVER_FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << VV_F_VERSION_1) | \
     (1ULL << VV_F_ACCESS_PLATFORM))

typedef struct Device {
    const char *name;
    const char *args;       /* QEMU arguments after the common ones */
} Device;

static const Device devices[] = {
    { "vpri-blk",
      "-object vpri-host,id=vh0 "
      "-device vpri-blk,drive=d0,host=vh0,id=dev0" },
    { "virtio-blk-pci",
      "-device virtio-blk-pci,drive=d0,disable-legacy=on,id=dev0" },
};
#define NDEVICES ARRAY_SIZE(devices)

typedef struct Config {
    const char *name;
    uint32_t type;
    uint32_t len;
} Config;

static const Config configs[] = {
    { "read-4k", BLK_T_IN, 4 * KiB },
    { "write-4k", BLK_T_OUT, 4 * KiB },
    { "read-64k", BLK_T_IN, 64 * KiB },
    { "write-64k", BLK_T_OUT, 64 * KiB },
};
#define NCONFIGS ARRAY_SIZE(configs)

typedef struct Bench {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VVDev *d;
    VVQueue *q;
    int depth;
    uint64_t hdr, data, status;
    uint16_t avail_idx, last_used;
    uint64_t errors;
} Bench;

static Bench *bench_start(const Device *dev, int depth)
{
    Bench *b = g_new0(Bench, 1);

    b->qts = qtest_initf("-M q35 -nodefaults "
                         "-blockdev driver=null-co,node-name=d0,size="
                         NULL_SIZE ",read-zeroes=on %s", dev->args);
    b->d = vblk_attach(b->qts, &b->alloc, &b->bus);
    vv_init(b->d, DRIVER_FEATURES, 1, 0);
    b->q = &b->d->queues[0];
    g_assert_cmpint(b->q->size, >=, 3 * depth);
    b->depth = depth;
    b->hdr = guest_alloc(&b->alloc, 16 * depth);
    b->data = guest_alloc(&b->alloc, (uint64_t)MAX_LEN * depth);
    b->status = guest_alloc(&b->alloc, depth);
    g_assert(b->hdr && b->data && b->status);
    /* vv_init left both indices at 0 */
    b->avail_idx = 0;
    b->last_used = 0;
    return b;
}

static void bench_stop(Bench *b)
{
    vblk_quit(b->qts, &b->alloc, b->bus, b->d);
    g_free(b);
}

/* Publish slots @slots[0..n-1] (in that order) and ring the doorbell. */
static void submit(Bench *b, const uint16_t *slots, int n)
{
    VVQueue *q = b->q;
    uint8_t ring[2 * MAX_DEPTH];
    int done = 0;

    while (done < n) {
        uint16_t pos = (uint16_t)(b->avail_idx + done) % q->size;
        int run = MIN(n - done, q->size - pos);

        for (int i = 0; i < run; i++) {
            stw_le_p(ring + 2 * i, 3 * slots[done + i]);
        }
        qtest_memwrite(b->qts, q->avail + 4 + 2ULL * pos, ring, 2 * run);
        done += run;
    }
    b->avail_idx += n;
    qtest_writew(b->qts, q->avail + 2, b->avail_idx);
    vv_queue_kick(q);
}

/* Reset the status bytes of @slots (sorted) in contiguous runs. */
static void reset_status(Bench *b, const uint16_t *slots, int n)
{
    static const uint8_t ff[MAX_DEPTH] = {
        [0 ... MAX_DEPTH - 1] = 0xff
    };

    for (int i = 0; i < n;) {
        int j = i + 1;

        while (j < n && slots[j] == slots[j - 1] + 1) {
            j++;
        }
        qtest_memwrite(b->qts, b->status + slots[i], ff, j - i);
        i = j;
    }
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/*
 * Collect what completed since the last call into @slots; returns how
 * many.  Checks that each completed request succeeded.
 */
static int reap(Bench *b, uint16_t *slots)
{
    VVQueue *q = b->q;
    uint8_t elems[8 * MAX_DEPTH], st[MAX_DEPTH];
    uint16_t used = qtest_readw(b->qts, q->used + 2);
    int n = (uint16_t)(used - b->last_used), got = 0;

    if (n == 0) {
        return 0;
    }
    g_assert_cmpint(n, <=, b->depth);
    while (got < n) {
        uint16_t pos = (uint16_t)(b->last_used + got) % q->size;
        int run = MIN(n - got, q->size - pos);

        qtest_memread(b->qts, q->used + 4 + 8ULL * pos, elems + 8 * got,
                      8 * run);
        got += run;
    }
    qtest_memread(b->qts, b->status, st, b->depth);
    for (int i = 0; i < n; i++) {
        uint32_t id = ldl_le_p(elems + 8 * i);

        g_assert_cmpuint(id % 3, ==, 0);
        g_assert_cmpuint(id / 3, <, b->depth);
        slots[i] = id / 3;
        if (st[id / 3] != BLK_S_OK) {
            b->errors++;
        }
    }
    b->last_used = used;
    qsort(slots, n, sizeof(*slots), cmp_u16);
    return n;
}

/* Lay out the chains of every slot for @c: one write per area. */
static void prepare(Bench *b, const Config *c)
{
    g_autofree uint8_t *desc = g_malloc0(16 * 3 * b->depth);
    g_autofree uint8_t *hdr = g_malloc0(16 * b->depth);
    bool in = c->type == BLK_T_IN;

    for (int s = 0; s < b->depth; s++) {
        uint8_t *d = desc + 16 * 3 * s;

        stl_le_p(hdr + 16 * s, c->type);
        stq_le_p(hdr + 16 * s + 8, (uint64_t)s * (MAX_LEN / 512));
        /* header */
        stq_le_p(d, b->hdr + 16 * s);
        stl_le_p(d + 8, 16);
        stw_le_p(d + 12, VV_DESC_F_NEXT);
        stw_le_p(d + 14, 3 * s + 1);
        /* data */
        stq_le_p(d + 16, b->data + (uint64_t)MAX_LEN * s);
        stl_le_p(d + 24, c->len);
        stw_le_p(d + 28, VV_DESC_F_NEXT | (in ? VV_DESC_F_WRITE : 0));
        stw_le_p(d + 30, 3 * s + 2);
        /* status */
        stq_le_p(d + 32, b->status + s);
        stl_le_p(d + 40, 1);
        stw_le_p(d + 44, VV_DESC_F_WRITE);
        stw_le_p(d + 46, 0);
    }
    qtest_memwrite(b->qts, b->q->desc, desc, 16 * 3 * b->depth);
    qtest_memwrite(b->qts, b->hdr, hdr, 16 * b->depth);
}

/* Run @c for @seconds; returns requests per second. */
static double run_config(Bench *b, const Config *c, double seconds,
                         uint64_t *nreq)
{
    uint16_t slots[MAX_DEPTH];
    int inflight = b->depth;
    uint64_t done = 0;
    gint64 t0, end, t1;

    prepare(b, c);
    for (int s = 0; s < b->depth; s++) {
        slots[s] = s;
    }
    reset_status(b, slots, b->depth);
    t0 = g_get_monotonic_time();
    end = t0 + (gint64)(seconds * G_USEC_PER_SEC);
    submit(b, slots, b->depth);
    while (inflight > 0) {
        int n = reap(b, slots);

        if (n == 0) {
            continue;
        }
        done += n;
        inflight -= n;
        if (g_get_monotonic_time() < end) {
            reset_status(b, slots, n);
            submit(b, slots, n);
            inflight += n;
        }
    }
    t1 = g_get_monotonic_time();
    *nreq = done;
    return (double)done * G_USEC_PER_SEC / (double)(t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    g_autofree double *s = g_memdup2(v, n * sizeof(*v));

    qsort(s, n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int reps = 5, depth = 32;
    double seconds = 1.0, warmup = 0.3;
    const char *json = NULL, *want = "vpri-blk,virtio-blk-pci";
    g_auto(GStrv) names = NULL;
    const Device *devs[NDEVICES];
    int ndevs = 0;
    double *rate[NDEVICES][NCONFIGS];
    uint64_t errors = 0;
    FILE *f;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = g_ascii_strtod(argv[++i], NULL);
        } else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
            depth = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json = argv[++i];
        } else if (!strcmp(argv[i], "--devices") && i + 1 < argc) {
            want = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--reps N] [--seconds S] [--depth D] "
                    "[--json FILE] [--devices LIST]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || depth < 1 || depth > MAX_DEPTH || seconds <= 0) {
        fprintf(stderr, "vpri-blk-bench: bad --reps, --depth (1-%d) or "
                "--seconds\n", MAX_DEPTH);
        return 2;
    }
    names = g_strsplit(want, ",", -1);
    for (int i = 0; names[i]; i++) {
        for (size_t k = 0; k < NDEVICES; k++) {
            if (!strcmp(names[i], devices[k].name) && ndevs < (int)NDEVICES) {
                devs[ndevs++] = &devices[k];
            }
        }
    }
    if (!ndevs) {
        fprintf(stderr, "vpri-blk-bench: no known device in '%s'\n", want);
        return 2;
    }
    if (!getenv("QTEST_QEMU_BINARY")) {
        fprintf(stderr, "vpri-blk-bench: set QTEST_QEMU_BINARY\n");
        return 2;
    }
    /* libqtest reports through g_test_message() */
    {
        int gargc = 1;
        char **gargv = argv;

        g_test_init(&gargc, &gargv, NULL);
    }

    for (int d = 0; d < ndevs; d++) {
        for (size_t c = 0; c < NCONFIGS; c++) {
            rate[d][c] = g_new0(double, reps);
        }
    }

    printf("vpri-blk-bench: qtest, null-co backend (read-zeroes=on), "
           "1 queue, %d requests outstanding, %.1f s per configuration, "
           "%d repetitions\n", depth, seconds, reps);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < ndevs; k++) {
            /* ABBA: reverse the order every other repetition */
            int d = r % 2 ? ndevs - 1 - k : k;
            Bench *b = bench_start(devs[d], depth);
            uint64_t n;

            /* Warm-up, not counted */
            run_config(b, &configs[0], warmup, &n);
            printf("rep %d %-15s", r + 1, devs[d]->name);
            for (size_t c = 0; c < NCONFIGS; c++) {
                rate[d][c][r] = run_config(b, &configs[c], seconds, &n);
                printf(" %s=%.0f/s", configs[c].name, rate[d][c][r]);
            }
            printf("\n");
            fflush(stdout);
            errors += b->errors;
            bench_stop(b);
        }
    }

    printf("\nmedian requests/s over %d repetitions\n", reps);
    printf("%-10s", "config");
    for (int d = 0; d < ndevs; d++) {
        printf(" %16s", devs[d]->name);
    }
    if (ndevs == 2) {
        printf(" %8s", "ratio");
    }
    printf("\n");
    for (size_t c = 0; c < NCONFIGS; c++) {
        printf("%-10s", configs[c].name);
        for (int d = 0; d < ndevs; d++) {
            printf(" %16.0f", median(rate[d][c], reps));
        }
        if (ndevs == 2) {
            printf(" %7.3fx", median(rate[0][c], reps) /
                   median(rate[1][c], reps));
        }
        printf("\n");
    }
    if (ndevs == 2) {
        printf("ratio = %s / %s\n", devs[0]->name, devs[1]->name);
    }
    printf("failed requests: %" PRIu64 "\n", errors);

    if (json) {
        f = fopen(json, "w");
        if (!f) {
            perror(json);
            return 1;
        }
        fprintf(f, "{\n  \"backend\": \"null-co,read-zeroes=on\",\n"
                "  \"depth\": %d,\n  \"seconds\": %g,\n  \"reps\": %d,\n"
                "  \"failed_requests\": %" PRIu64 ",\n  \"devices\": {\n",
                depth, seconds, reps, errors);
        for (int d = 0; d < ndevs; d++) {
            fprintf(f, "    \"%s\": {\n", devs[d]->name);
            for (size_t c = 0; c < NCONFIGS; c++) {
                fprintf(f, "      \"%s\": {\"median\": %.1f, \"runs\": [",
                        configs[c].name, median(rate[d][c], reps));
                for (int r = 0; r < reps; r++) {
                    fprintf(f, "%s%.1f", r ? ", " : "", rate[d][c][r]);
                }
                fprintf(f, "]}%s\n", c + 1 < NCONFIGS ? "," : "");
            }
            fprintf(f, "    }%s\n", d + 1 < ndevs ? "," : "");
        }
        fprintf(f, "  }\n}\n");
        fclose(f);
    }
    for (int d = 0; d < ndevs; d++) {
        for (size_t c = 0; c < NCONFIGS; c++) {
            g_free(rate[d][c]);
        }
    }
    return errors ? 1 : 0;
}
