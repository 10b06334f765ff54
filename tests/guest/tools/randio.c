/*
 * randio: random-offset block I/O at queue depth 1 with O_DIRECT, for
 * the guest benchmarks (busybox dd cannot seek randomly without a new
 * process per request, which would measure fork, not the disk).
 *
 *   randio DEV read|write SECONDS SPAN_MIB [BS [POOL_MIB [IOPS]]]
 *
 * With POOL_MIB, request k uses buffer k mod (POOL_MIB / BS) of a pool of
 * that size instead of one buffer, so the device's DMA cycles over
 * POOL_MIB of guest memory that the CPU never touches again after
 * allocation: the reuse pattern of a page cache larger than a pin budget
 * (docs/vpri-adp.rst, "blk-cycle").  IOPS, when not 0, paces the requests
 * to that rate, so that the reuse distance is a time the host's reclaim
 * period can be compared with.
 *
 * Prints one line: "ops=N seconds=S iops=I mibps=M errors=E".
 * Built static by scripts/build-guest; runs in the iolab guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t x = 0x9e3779b97f4a7c15ull, ops = 0, errors = 0, blocks;
    double secs, t0, t;
    size_t bs = 4096, nbufs = 1;
    double iops = 0;
    int write, fd;
    char *pool;

    if (argc < 5) {
        fprintf(stderr, "usage: randio DEV read|write SECONDS SPAN_MIB "
                "[BS [POOL_MIB [IOPS]]]\n");
        return 2;
    }
    write = !strcmp(argv[2], "write");
    secs = atof(argv[3]);
    blocks = (uint64_t)atoi(argv[4]) * 1048576 / (argc > 5 ? (bs =
             atoi(argv[5])) : bs);
    if (argc > 6) {
        nbufs = (size_t)atoi(argv[6]) * 1048576 / bs;
    }
    if (argc > 7) {
        iops = atof(argv[7]);
    }
    if (!blocks || !bs || bs % 512 || !nbufs) {
        fprintf(stderr, "randio: bad span, block size or pool\n");
        return 2;
    }
    fd = open(argv[1], (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0 || posix_memalign((void **)&pool, 4096, nbufs * bs)) {
        perror("randio");
        return 1;
    }
    memset(pool, 0x5a, nbufs * bs);
    t0 = now();
    do {
        off_t off;
        ssize_t n;
        char *buf;

        /* xorshift64: cheap, and the same sequence on every device */
        for (int i = 0; i < (iops > 0 ? 1 : 64); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            off = (off_t)(x % blocks) * bs;
            buf = pool + (ops % nbufs) * bs;
            n = write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
            if (n != (ssize_t)bs) {
                errors++;
            }
            ops++;
            if (iops > 0) {
                double ahead = t0 + ops / iops - now();

                if (ahead > 0) {
                    usleep((useconds_t)(ahead * 1e6));
                }
            }
        }
        t = now() - t0;
    } while (t < secs);
    printf("ops=%llu seconds=%.3f iops=%.0f mibps=%.2f errors=%llu\n",
           (unsigned long long)ops, t, ops / t, ops * bs / t / 1048576,
           (unsigned long long)errors);
    close(fd);
    return errors ? 1 : 0;
}
