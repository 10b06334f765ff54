/*
 * randio: random-offset block I/O at queue depth 1 with O_DIRECT, for
 * the guest benchmarks (busybox dd cannot seek randomly without a new
 * process per request, which would measure fork, not the disk).
 *
 *   randio DEV read|write SECONDS SPAN_MIB [BS]
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
    size_t bs = 4096;
    int write, fd;
    void *buf;

    if (argc < 5) {
        fprintf(stderr, "usage: randio DEV read|write SECONDS SPAN_MIB "
                "[BS]\n");
        return 2;
    }
    write = !strcmp(argv[2], "write");
    secs = atof(argv[3]);
    blocks = (uint64_t)atoi(argv[4]) * 1048576 / (argc > 5 ? (bs =
             atoi(argv[5])) : bs);
    if (!blocks || bs % 512) {
        fprintf(stderr, "randio: bad span or block size\n");
        return 2;
    }
    fd = open(argv[1], (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0 || posix_memalign(&buf, 4096, bs)) {
        perror("randio");
        return 1;
    }
    memset(buf, 0x5a, bs);
    t0 = now();
    do {
        off_t off;
        ssize_t n;

        /* xorshift64: cheap, and the same sequence on every device */
        for (int i = 0; i < 64; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            off = (off_t)(x % blocks) * bs;
            n = write ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
            if (n != (ssize_t)bs) {
                errors++;
            }
            ops++;
        }
        t = now() - t0;
    } while (t < secs);
    printf("ops=%llu seconds=%.3f iops=%.0f mibps=%.2f errors=%llu\n",
           (unsigned long long)ops, t, ops / t, ops * bs / t / 1048576,
           (unsigned long long)errors);
    close(fd);
    return errors ? 1 : 0;
}
