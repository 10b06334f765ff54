/*
 * migio: checksummed I/O that runs across a live migration and reports
 * the longest stall the guest saw, for scripts/migrate-experiment.
 *
 *   migio blk [-p POOL_MIB] DEV SPAN_MIB BS IOPS MAX_SECONDS [CTL]
 *   migio net HOST PORT BYTES RPS MAX_SECONDS [CTL]
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
 * The stall is the longest time between two successive completed
 * operations (a failed and retried request counts until it succeeds),
 * so a switch-over that freezes the guest's I/O shows as one long gap.
 *
 * Prints one line of key=value words:
 *   ops= errors= retries= mismatches= verified=yes|no seconds=
 *   max_stall_us= p50_us= p99_us= [bytes=]
 * Exit status 0 when verified=yes.  Built static by scripts/build-guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    qsort(migio_lat_us, migio_nlat, sizeof(*migio_lat_us), migio_cmp_u32);
    printf("ops=%llu errors=%llu retries=0 mismatches=%llu verified=%s "
           "seconds=%.3f max_stall_us=%llu p50_us=%u p99_us=%u "
           "blocks_written=%llu\n",
           (unsigned long long)ops, (unsigned long long)errors,
           (unsigned long long)mismatches,
           !errors && !mismatches && written ? "yes" : "no", secs,
           (unsigned long long)migio_max_stall_us, migio_percentile(0.5),
           migio_percentile(0.99), (unsigned long long)written);
    return !errors && !mismatches && written ? 0 : 1;
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

    qsort(migio_lat_us, migio_nlat, sizeof(*migio_lat_us), migio_cmp_u32);
    printf("ops=%llu errors=%llu retries=%llu mismatches=%llu verified=%s "
           "seconds=%.3f max_stall_us=%llu p50_us=%u p99_us=%u bytes=%llu\n",
           (unsigned long long)ops, (unsigned long long)errors,
           (unsigned long long)retries, (unsigned long long)mismatches,
           !errors && !mismatches && ops ? "yes" : "no", secs,
           (unsigned long long)migio_max_stall_us, migio_percentile(0.5),
           migio_percentile(0.99), (unsigned long long)got);
    return !errors && !mismatches && ops ? 0 : 1;
}

int main(int argc, char **argv)
{
    migio_lat_us = malloc(MIGIO_MAX_SAMPLES * sizeof(*migio_lat_us));
    if (!migio_lat_us) {
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
