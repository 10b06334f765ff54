/*
 * migio: checksummed I/O that runs across a live migration and reports
 * the longest stall the guest saw, for scripts/migrate-experiment.
 *
 *   migio [-d DIRTY_MIB [-r DIRTY_MIBPS]] blk [-p POOL_MIB] DEV SPAN_MIB BS IOPS MAX_SECONDS [CTL]
 *   migio [-d DIRTY_MIB [-r DIRTY_MIBPS]] net HOST PORT BYTES RPS MAX_SECONDS [CTL]
 *   migio dirty-selftest
 *
 * blk: O_DIRECT writes of BS-byte blocks at pseudo-random offsets in the
 * first SPAN_MIB of DEV, each stamped with its block number and a
 * generation, alternating with reads of a block already written that
 * are checked against what was last written there.  At the end every
 * block written is read back and checked once more.
 *
 * -p POOL_MIB: each read lands in a BS-byte slot of a pool of POOL_MIB,
 * written once (non-zero) before the I/O starts and not touched by the
 * CPU again until the read has completed into it.  On a postcopy
 * destination the device then writes pages the vCPU has not pulled over:
 * a device fault on a page not received yet, per read, until the pool
 * has come over.  The slots are taken in a scattered order (a stride of
 * about 0.618 of the pool, coprime with it, so every slot comes once per
 * round): QEMU's background stream goes on after the last page asked for
 * (without postcopy-preempt), and would run ahead of reads in address
 * order.
 *
 * net: HTTP/1.0 GETs of http://HOST:PORT/pattern?BYTES, whose body is the
 * deterministic pattern of pattern_byte() below (the host's server sends
 * the same); every byte is checked.  A request that fails is retried
 * (the connection may break at the switch-over) and counted.
 *
 * IOPS / RPS paces the operations (0: as fast as it goes).  The run
 * stops when a 'q' arrives on the control tty CTL (the host sends it
 * once the migration is over) or after MAX_SECONDS.
 *
 * -d: beside the I/O, a second thread keeps rewriting a working set of
 * DIRTY_MIB of its own memory, page after page, at DIRTY_MIBPS (0 or no
 * -r: as fast as it goes), so that guest RAM stays dirty faster than a
 * migration can send it (a write-heavy guest, where precopy does not
 * converge).  Every page carries its index, the generation last written
 * there and a check word, and a body fixed per page; before a page is
 * rewritten its header is checked against the previous generation, and
 * when the run stops every page is checked whole against the generation
 * it must hold: a page the migration lost (an older generation), mixed up
 * (another index) or damaged counts as a RAM mismatch.
 * "migio dirty-selftest" shows that the check catches each of those on
 * a small working set (exit 0 when it does).
 *
 * The stall is the longest time between two successive completed
 * operations (a failed and retried request counts until it succeeds),
 * so a switch-over that freezes the guest's I/O shows as one long gap.
 *
 * Prints one line of key=value words:
 *   ops= errors= retries= mismatches= verified=yes|no seconds=
 *   max_stall_us= p50_us= p99_us= [bytes=]
 *   [dirty_mib= dirty_passes= dirty_mibps= ram_mismatches=]
 * Exit status 0 when verified=yes (with -d, that needs no RAM mismatch
 * either).  Built static by scripts/build-guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MIGIO_MAX_SAMPLES (1u << 20)

static uint32_t *migio_lat_us;
static unsigned migio_nlat;
static uint64_t migio_max_stall_us;
static double migio_last_done;

static double migio_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One operation completed at @t after starting at @t0. */
static void migio_completed(double t0, double t)
{
    uint64_t gap = (uint64_t)((t - migio_last_done) * 1e6);

    if (gap > migio_max_stall_us) {
        migio_max_stall_us = gap;
    }
    migio_last_done = t;
    if (migio_nlat < MIGIO_MAX_SAMPLES) {
        migio_lat_us[migio_nlat++] = (uint32_t)((t - t0) * 1e6);
    }
}

static int migio_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static uint32_t migio_percentile(double q)
{
    if (!migio_nlat) {
        return 0;
    }
    return migio_lat_us[(unsigned)((migio_nlat - 1) * q)];
}

/* The control tty, raw and non-blocking; -1 when there is none. */
static int migio_open_ctl(const char *path)
{
    struct termios tio;
    int fd;

    if (!path || !*path) {
        return -1;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        perror("migio: control tty");
        return -1;
    }
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(fd, TCSANOW, &tio);
    }
    return fd;
}

static int migio_stop_requested(int ctl)
{
    char c;

    if (ctl < 0) {
        return 0;
    }
    while (read(ctl, &c, 1) == 1) {
        if (c == 'q') {
            return 1;
        }
    }
    return 0;
}

static void migio_pace(double t0, uint64_t ops, double rate)
{
    if (rate > 0) {
        double ahead = t0 + ops / rate - migio_now();

        if (ahead > 0) {
            usleep((useconds_t)(ahead * 1e6));
        }
    }
}

static uint64_t migio_xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Block @blk's contents for generation @gen: 8-byte words of a hash. */
static void migio_fill(uint64_t *buf, size_t bs, uint64_t blk, uint32_t gen)
{
    uint64_t x = (blk << 32 | gen) * 0x9e3779b97f4a7c15ull + 1;

    for (size_t i = 0; i < bs / 8; i++) {
        buf[i] = migio_xorshift(&x) ^ (blk << 40) ^ i;
    }
}

static int migio_check(const uint64_t *got, uint64_t *want, size_t bs,
                       uint64_t blk, uint32_t gen)
{
    migio_fill(want, bs, blk, gen);
    return memcmp(got, want, bs) != 0;
}

/* ---- -d: a working set of guest RAM kept dirty, and its check ---- */

#define MIGIO_PAGE 4096
#define MIGIO_PAGE_WORDS (MIGIO_PAGE / 8)
/* header words of a page: index, generation, check word; then the body */
#define MIGIO_PAGE_HDR 3

typedef struct MigioDirty {
    uint64_t *mem;
    uint64_t npages;
    double mibps;           /* pace; 0: as fast as it goes */
    uint64_t gen;           /* the generation being written */
    uint64_t cursor;        /* pages below it hold gen, the others gen - 1 */
    uint64_t touched;       /* pages rewritten so far */
    uint64_t mismatches;    /* pages found not as they must be */
    uint64_t first_bad;     /* index of the last bad page found */
    double seconds;
    int stop;               /* set by the I/O thread (atomic) */
    pthread_t thread;
} MigioDirty;

static MigioDirty *migio_dirty;

static uint64_t migio_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t migio_page_check(uint64_t idx, uint64_t gen)
{
    return migio_mix(idx * 0x9e3779b97f4a7c15ull ^ migio_mix(gen + 1));
}

/* Word @i of page @idx's body: fixed for the page, differs between pages */
static uint64_t migio_page_body(uint64_t idx, unsigned i)
{
    return migio_mix(idx << 12 | i);
}

static uint64_t *migio_page(MigioDirty *d, uint64_t idx)
{
    return d->mem + idx * MIGIO_PAGE_WORDS;
}

static void migio_page_stamp(uint64_t *page, uint64_t idx, uint64_t gen)
{
    page[0] = idx;
    page[1] = gen;
    page[2] = migio_page_check(idx, gen);
}

static int migio_page_header_ok(const uint64_t *page, uint64_t idx,
                                uint64_t gen)
{
    return page[0] == idx && page[1] == gen &&
           page[2] == migio_page_check(idx, gen);
}

static int migio_page_ok(const uint64_t *page, uint64_t idx, uint64_t gen)
{
    if (!migio_page_header_ok(page, idx, gen)) {
        return 0;
    }
    for (unsigned i = MIGIO_PAGE_HDR; i < MIGIO_PAGE_WORDS; i++) {
        if (page[i] != migio_page_body(idx, i)) {
            return 0;
        }
    }
    return 1;
}

/* The generation page @idx must hold now. */
static uint64_t migio_dirty_want(const MigioDirty *d, uint64_t idx)
{
    return idx < d->cursor ? d->gen : d->gen - 1;
}

static int migio_dirty_init(MigioDirty *d, uint64_t mib, double mibps)
{
    memset(d, 0, sizeof(*d));
    d->npages = mib * 1048576 / MIGIO_PAGE;
    d->mibps = mibps;
    if (!d->npages) {
        return -1;
    }
    d->mem = mmap(NULL, d->npages * MIGIO_PAGE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d->mem == MAP_FAILED) {
        return -1;
    }
    /* generation 0: every page written whole, which also allocates it */
    for (uint64_t idx = 0; idx < d->npages; idx++) {
        uint64_t *page = migio_page(d, idx);

        for (unsigned i = MIGIO_PAGE_HDR; i < MIGIO_PAGE_WORDS; i++) {
            page[i] = migio_page_body(idx, i);
        }
        migio_page_stamp(page, idx, 0);
    }
    d->gen = 1;
    return 0;
}

/*
 * Rewrite the next @n pages, each with the current generation, after
 * checking that its header still holds the previous one.
 */
static void migio_dirty_step(MigioDirty *d, uint64_t n)
{
    while (n--) {
        uint64_t *page = migio_page(d, d->cursor);

        if (!migio_page_header_ok(page, d->cursor, d->gen - 1)) {
            d->mismatches++;
            d->first_bad = d->cursor;
        }
        migio_page_stamp(page, d->cursor, d->gen);
        d->touched++;
        if (++d->cursor == d->npages) {
            d->cursor = 0;
            d->gen++;
        }
    }
}

/* Every page, whole, against what it must hold; returns the bad ones. */
static uint64_t migio_dirty_verify(MigioDirty *d)
{
    uint64_t bad = 0;

    for (uint64_t idx = 0; idx < d->npages; idx++) {
        if (!migio_page_ok(migio_page(d, idx), idx,
                           migio_dirty_want(d, idx))) {
            bad++;
            d->first_bad = idx;
        }
    }
    return bad;
}

static void *migio_dirty_run(void *opaque)
{
    MigioDirty *d = opaque;
    double t0 = migio_now();

    while (!__atomic_load_n(&d->stop, __ATOMIC_RELAXED)) {
        /* 1 MiB at a time, then pace */
        migio_dirty_step(d, 1048576 / MIGIO_PAGE);
        if (d->mibps > 0) {
            double ahead = t0 + d->touched * (double)MIGIO_PAGE / 1048576 /
                           d->mibps - migio_now();

            if (ahead > 0) {
                usleep((useconds_t)(ahead * 1e6));
            }
        }
    }
    d->seconds = migio_now() - t0;
    return NULL;
}

static int migio_dirty_start(uint64_t mib, double mibps)
{
    static MigioDirty d;

    if (migio_dirty_init(&d, mib, mibps)) {
        perror("migio: dirty working set");
        return -1;
    }
    if (pthread_create(&d.thread, NULL, migio_dirty_run, &d)) {
        fprintf(stderr, "migio: cannot start the dirtying thread\n");
        return -1;
    }
    migio_dirty = &d;
    return 0;
}

/* Stop rewriting and check every page (after the migration). */
static void migio_dirty_finish(void)
{
    if (!migio_dirty) {
        return;
    }
    __atomic_store_n(&migio_dirty->stop, 1, __ATOMIC_RELAXED);
    pthread_join(migio_dirty->thread, NULL);
    migio_dirty->mismatches += migio_dirty_verify(migio_dirty);
}

/* The dirtying did its part: it ran, and no page was wrong. */
static int migio_dirty_ok(void)
{
    return !migio_dirty ||
           (migio_dirty->touched && !migio_dirty->mismatches);
}

/* The result words of -d, or nothing without it. */
static void migio_dirty_report(void)
{
    MigioDirty *d = migio_dirty;

    if (!d) {
        return;
    }
    printf(" dirty_mib=%llu dirty_passes=%.1f dirty_mibps=%.0f "
           "ram_mismatches=%llu",
           (unsigned long long)(d->npages * MIGIO_PAGE / 1048576),
           (double)d->touched / d->npages,
           d->seconds > 0 ? d->touched * (double)MIGIO_PAGE / 1048576 /
           d->seconds : 0.0, (unsigned long long)d->mismatches);
    if (d->mismatches) {
        printf(" ram_bad_page=%llu", (unsigned long long)d->first_bad);
    }
}

static int migio_selftest_fails;

static void migio_expect(int ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok" : "FAIL", what);
    migio_selftest_fails += !ok;
}

/*
 * The check catches what a migration can get wrong: a damaged page, a
 * page whose last write was lost (an older generation, consistent in
 * itself), another page's content, a damaged check word; both in the
 * final pass and in the check before a rewrite.
 */
static int migio_dirty_selftest(void)
{
    MigioDirty d;
    uint64_t save[MIGIO_PAGE_WORDS];
    uint64_t *p;

    if (migio_dirty_init(&d, 1, 0)) {
        perror("migio: selftest");
        return 1;
    }
    /* two passes and 100 pages: pages 0-99 at generation 3, the rest 2 */
    migio_dirty_step(&d, d.npages * 2 + 100);
    migio_expect(d.gen == 3 && d.cursor == 100 && !d.mismatches,
                 "two and a bit passes rewrite without a mismatch");
    migio_expect(migio_dirty_verify(&d) == 0, "an intact set verifies");

    p = migio_page(&d, 5);
    p[100] ^= 1;
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 5,
                 "a flipped bit in a page's body is found");
    p[100] ^= 1;

    p = migio_page(&d, 7);
    memcpy(save, p, MIGIO_PAGE);
    migio_page_stamp(p, 7, 2);
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 7,
                 "a page that missed its last write (generation 2, not 3) "
                 "is found");
    memcpy(p, save, MIGIO_PAGE);

    p = migio_page(&d, 150);
    memcpy(save, p, MIGIO_PAGE);
    migio_page_stamp(p, 150, 1);
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 150,
                 "a stale page past the cursor (generation 1, not 2) is "
                 "found");
    memcpy(p, save, MIGIO_PAGE);

    p = migio_page(&d, 10);
    memcpy(save, p, MIGIO_PAGE);
    memcpy(p, migio_page(&d, 11), MIGIO_PAGE);
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 10,
                 "another page's content in a page is found");
    memcpy(p, save, MIGIO_PAGE);

    p = migio_page(&d, 12);
    p[2] ^= 1ull << 63;
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 12,
                 "a damaged check word is found");
    p[2] ^= 1ull << 63;

    memset(migio_page(&d, 200), 0, MIGIO_PAGE);
    migio_expect(migio_dirty_verify(&d) == 1 && d.first_bad == 200,
                 "a zeroed page (never sent) is found");
    migio_dirty_step(&d, 101);
    migio_expect(d.mismatches == 1 && d.first_bad == 200,
                 "the check before a rewrite finds it too");
    migio_expect(migio_dirty_verify(&d) == 1,
                 "its body stays wrong after the rewrite, and is found");
    for (unsigned i = MIGIO_PAGE_HDR; i < MIGIO_PAGE_WORDS; i++) {
        migio_page(&d, 200)[i] = migio_page_body(200, i);
    }
    migio_expect(migio_dirty_verify(&d) == 0, "repaired, the set verifies");
    printf("selftest: %s\n", migio_selftest_fails ? "FAILED" : "passed");
    return migio_selftest_fails ? 1 : 0;
}

static size_t migio_gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

static int migio_blk(int argc, char **argv)
{
    uint64_t x = 0x2545f4914f6cdd1dull, ops = 0, errors = 0, mismatches = 0;
    uint64_t blocks, written = 0;
    size_t bs;
    double rate, maxs, t0;
    uint32_t *gen;
    uint64_t *wbuf, *rbuf, *want;
    uint8_t *pool = NULL;
    size_t pool_slots = 0, next_slot = 0, stride = 1;
    int fd, ctl;

    if (argc > 3 && !strcmp(argv[2], "-p")) {
        pool_slots = (size_t)atoi(argv[3]) * 1048576;
        argc -= 2;
        argv += 2;
    }
    if (argc < 7) {
        fprintf(stderr, "usage: migio blk [-p POOL_MIB] DEV SPAN_MIB BS "
                "IOPS MAX_SECONDS [CTL]\n");
        return 2;
    }
    bs = (size_t)atoi(argv[4]);
    blocks = bs ? (uint64_t)atoi(argv[3]) * 1048576 / bs : 0;
    rate = atof(argv[5]);
    maxs = atof(argv[6]);
    if (!blocks || bs % 4096) {
        fprintf(stderr, "migio: bad span or block size\n");
        return 2;
    }
    fd = open(argv[2], O_RDWR | O_DIRECT);
    gen = calloc(blocks, sizeof(*gen));
    if (fd < 0 || !gen || posix_memalign((void **)&wbuf, 4096, bs) ||
        posix_memalign((void **)&rbuf, 4096, bs) ||
        posix_memalign((void **)&want, 4096, bs)) {
        perror("migio");
        return 1;
    }
    pool_slots /= bs;
    if (pool_slots) {
        if (posix_memalign((void **)&pool, 4096, pool_slots * bs)) {
            perror("migio: pool");
            return 1;
        }
        /* Present and not zero: sent as data, not as a zero page */
        memset(pool, 0x5a, pool_slots * bs);
        stride = (size_t)(pool_slots * 0.618) | 1;
        while (migio_gcd(stride, pool_slots) != 1) {
            stride++;
        }
    }
    ctl = migio_open_ctl(argc > 7 ? argv[7] : NULL);
    t0 = migio_last_done = migio_now();
    while (!migio_stop_requested(ctl) && migio_now() - t0 < maxs) {
        uint64_t blk = migio_xorshift(&x) % blocks;
        double s = migio_now();

        if (ops % 2 == 0 || !written) {
            /* write a new generation of a block */
            migio_fill(wbuf, bs, blk, gen[blk] + 1);
            if (pwrite(fd, wbuf, bs, (off_t)(blk * bs)) != (ssize_t)bs) {
                errors++;
            } else {
                written += !gen[blk];
                gen[blk]++;
            }
        } else {
            /* read back a block that has been written */
            uint64_t *dst = rbuf;

            while (!gen[blk]) {
                blk = (blk + 1) % blocks;
            }
            if (pool) {
                dst = (uint64_t *)(pool + next_slot * bs);
                next_slot = (next_slot + stride) % pool_slots;
            }
            if (pread(fd, dst, bs, (off_t)(blk * bs)) != (ssize_t)bs) {
                errors++;
            } else if (migio_check(dst, want, bs, blk, gen[blk])) {
                mismatches++;
            }
        }
        ops++;
        migio_completed(s, migio_now());
        migio_pace(t0, ops, rate);
    }
    double secs = migio_now() - t0;

    migio_dirty_finish();
    /* final pass: every block written holds its last generation */
    for (uint64_t b = 0; b < blocks; b++) {
        if (!gen[b]) {
            continue;
        }
        if (pread(fd, rbuf, bs, (off_t)(b * bs)) != (ssize_t)bs) {
            errors++;
        } else if (migio_check(rbuf, want, bs, b, gen[b])) {
            mismatches++;
        }
    }
    int ok = !errors && !mismatches && written && migio_dirty_ok();

    qsort(migio_lat_us, migio_nlat, sizeof(*migio_lat_us), migio_cmp_u32);
    printf("ops=%llu errors=%llu retries=0 mismatches=%llu verified=%s "
           "seconds=%.3f max_stall_us=%llu p50_us=%u p99_us=%u "
           "blocks_written=%llu",
           (unsigned long long)ops, (unsigned long long)errors,
           (unsigned long long)mismatches,
           ok ? "yes" : "no", secs,
           (unsigned long long)migio_max_stall_us, migio_percentile(0.5),
           migio_percentile(0.99), (unsigned long long)written);
    migio_dirty_report();
    printf("\n");
    return ok ? 0 : 1;
}

/* Byte @i of the pattern the host's server sends (same formula there). */
static uint8_t migio_pattern_byte(uint64_t i)
{
    return (uint8_t)((i * 131 + (i >> 8) * 7 + (i >> 16)) & 0xff);
}

/*
 * One GET; returns 0 when the whole body arrived and matched, -1 on a
 * connection error (retried), 1 on a mismatch.
 */
static int migio_get(const struct sockaddr_in *sa, uint64_t bytes,
                     uint64_t *got_bytes)
{
    char req[128], buf[16384];
    uint64_t pos = 0;
    int fd, hdr_done = 0, bad = 0;
    size_t hlen = 0;
    char head[4096];
    struct timeval tv = { .tv_sec = 10 };

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "GET /pattern?%llu HTTP/1.0\r\n\r\n",
             (unsigned long long)bytes);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        size_t off = 0;

        if (n <= 0) {
            break;
        }
        if (!hdr_done) {
            /* collect the header up to the blank line */
            size_t take = (size_t)n < sizeof(head) - hlen ?
                          (size_t)n : sizeof(head) - hlen;
            char *end;

            memcpy(head + hlen, buf, take);
            hlen += take;
            end = memmem(head, hlen, "\r\n\r\n", 4);
            if (!end) {
                if (hlen == sizeof(head)) {
                    break;
                }
                continue;
            }
            hdr_done = 1;
            off = (size_t)(end + 4 - head) - (hlen - take);
        }
        for (; off < (size_t)n; off++, pos++) {
            if (pos >= bytes || (uint8_t)buf[off] != migio_pattern_byte(pos)) {
                bad = 1;
            }
        }
    }
    close(fd);
    *got_bytes += pos;
    if (!hdr_done || pos < bytes) {
        return -1;
    }
    return bad;
}

static int migio_net(int argc, char **argv)
{
    uint64_t ops = 0, errors = 0, retries = 0, mismatches = 0, bytes, got = 0;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    double rate, maxs, t0;
    int ctl;

    if (argc < 7) {
        fprintf(stderr, "usage: migio net HOST PORT BYTES RPS MAX_SECONDS "
                "[CTL]\n");
        return 2;
    }
    if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
        fprintf(stderr, "migio: bad address %s\n", argv[2]);
        return 2;
    }
    sa.sin_port = htons((uint16_t)atoi(argv[3]));
    bytes = strtoull(argv[4], NULL, 0);
    rate = atof(argv[5]);
    maxs = atof(argv[6]);
    ctl = migio_open_ctl(argc > 7 ? argv[7] : NULL);
    t0 = migio_last_done = migio_now();
    while (!migio_stop_requested(ctl) && migio_now() - t0 < maxs) {
        double s = migio_now();
        int r, tries = 0;

        /* a request broken by the switch-over is retried, for 30 s */
        while ((r = migio_get(&sa, bytes, &got)) < 0 &&
               migio_now() - s < 30) {
            retries++;
            tries++;
            usleep(tries < 10 ? 10000 : 100000);
        }
        if (r < 0) {
            errors++;
        } else if (r > 0) {
            mismatches++;
        }
        ops++;
        migio_completed(s, migio_now());
        migio_pace(t0, ops, rate);
    }
    double secs = migio_now() - t0;

    migio_dirty_finish();
    int ok = !errors && !mismatches && ops && migio_dirty_ok();

    qsort(migio_lat_us, migio_nlat, sizeof(*migio_lat_us), migio_cmp_u32);
    printf("ops=%llu errors=%llu retries=%llu mismatches=%llu verified=%s "
           "seconds=%.3f max_stall_us=%llu p50_us=%u p99_us=%u bytes=%llu",
           (unsigned long long)ops, (unsigned long long)errors,
           (unsigned long long)retries, (unsigned long long)mismatches,
           ok ? "yes" : "no", secs,
           (unsigned long long)migio_max_stall_us, migio_percentile(0.5),
           migio_percentile(0.99), (unsigned long long)got);
    migio_dirty_report();
    printf("\n");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    double dirty_mib = 0, dirty_mibps = 0;
    int opt;

    while ((opt = getopt(argc, argv, "+d:r:")) != -1) {
        switch (opt) {
        case 'd':
            dirty_mib = atof(optarg);
            break;
        case 'r':
            dirty_mibps = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: migio [-d MIB [-r MIBPS]] blk|net ...\n");
            return 2;
        }
    }
    /* the mode is argv[1] from here on, as the modes expect */
    argc -= optind - 1;
    argv += optind - 1;
    if (argc > 1 && !strcmp(argv[1], "dirty-selftest")) {
        return migio_dirty_selftest();
    }
    if (dirty_mib < 0 || dirty_mibps < 0 ||
        (dirty_mib > 0 && (uint64_t)dirty_mib * 1048576 < MIGIO_PAGE)) {
        fprintf(stderr, "migio: bad -d or -r\n");
        return 2;
    }
    migio_lat_us = malloc(MIGIO_MAX_SAMPLES * sizeof(*migio_lat_us));
    if (!migio_lat_us) {
        return 1;
    }
    /* the working set is filled before the I/O starts (and is timed) */
    if (dirty_mib > 0 && migio_dirty_start((uint64_t)dirty_mib,
                                           dirty_mibps)) {
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "blk")) {
        return migio_blk(argc, argv);
    }
    if (argc > 1 && !strcmp(argv[1], "net")) {
        return migio_net(argc, argv);
    }
    fprintf(stderr, "usage: migio blk|net ...\n");
    return 2;
}
