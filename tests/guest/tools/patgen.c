/*
 * patgen: write a deterministic, incompressible byte stream to stdout, so
 * that two guests (or a guest and a later run) produce the same blob from
 * the same seed without shipping it.
 *
 *   patgen SEED BYTES
 *
 * The stream is splitmix64 seeded with SEED, eight little-endian bytes
 * per step.  Built static by scripts/build-guest; runs in the iolab guest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno || end == s || *end || *s == '-' ? -1 : 0;
}

int main(int argc, char **argv)
{
    unsigned char buf[65536];
    uint64_t state, left;

    if (argc != 3 || parse_u64(argv[1], &state) ||
        parse_u64(argv[2], &left)) {
        fprintf(stderr, "usage: patgen SEED BYTES\n");
        return 2;
    }
    while (left) {
        size_t n = left < sizeof(buf) ? left : sizeof(buf);
        size_t i, off = 0;

        for (i = 0; i < n; i += 8) {
            uint64_t v = splitmix64(&state);
            size_t k;

            for (k = 0; k < 8 && i + k < n; k++) {
                buf[i + k] = v >> (8 * k);
            }
        }
        while (off < n) {
            ssize_t w = write(STDOUT_FILENO, buf + off, n - off);

            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                fprintf(stderr, "patgen: write: %s\n", strerror(errno));
                return 1;
            }
            off += w;
        }
        left -= n;
    }
    return 0;
}
