/*
 * Helpers shared by the libFuzzer harnesses of the pure-C cores
 *
 * A broken contract aborts with the condition and its line, which
 * libFuzzer reports as a crash and saves the input for.  Assertions stay
 * on in every build: the harnesses exist to check them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_FUZZ_FUZZ_UTIL_H
#define TESTS_FUZZ_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_FAIL(msg)                                                  \
    do {                                                                \
        fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__,       \
                __LINE__, msg);                                         \
        abort();                                                        \
    } while (0)

#define FUZZ_ASSERT(cond)                                               \
    do {                                                                \
        if (!(cond)) {                                                  \
            FUZZ_FAIL(#cond);                                           \
        }                                                               \
    } while (0)

/* Little-endian loads from fuzzer input */
static inline uint16_t fuzz_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t fuzz_ld32(const uint8_t *p)
{
    return (uint32_t)fuzz_ld16(p) | (uint32_t)fuzz_ld16(p + 2) << 16;
}

static inline uint64_t fuzz_ld64(const uint8_t *p)
{
    return (uint64_t)fuzz_ld32(p) | (uint64_t)fuzz_ld32(p + 4) << 32;
}

static inline void fuzz_st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void fuzz_st32(uint8_t *p, uint32_t v)
{
    fuzz_st16(p, (uint16_t)v);
    fuzz_st16(p + 2, (uint16_t)(v >> 16));
}

static inline void fuzz_st64(uint8_t *p, uint64_t v)
{
    fuzz_st32(p, (uint32_t)v);
    fuzz_st32(p + 4, (uint32_t)(v >> 32));
}

#endif
