/*
 * Unit tests for the nvme-export rate limiter (TP4176 Feature 28h)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/nvme-export/core/nvmex-ratelimit.h"

#define S 1000000000LL

static void test_codec(void **state)
{
    NvmexRateLimit a = { .enabled = true, .bwsf = 2, .tbwv = 3, .wbwv = 1,
                         .tiops = 5000, .wiops = 100 }, b;
    uint8_t buf[NVMEX_RL_DATA_SIZE];

    (void)state;
    nvmex_rl_encode(&a, buf);
    assert_int_equal(buf[1], 0x80);
    assert_int_equal(nvmex_rl_decode(buf, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    buf[2] = 6;             /* no such scale */
    assert_int_equal(nvmex_rl_decode(buf, &b), -1);
    buf[2] = 0;
    buf[0] = 1;             /* soft limits: not offered */
    assert_int_equal(nvmex_rl_decode(buf, &b), -1);
    assert_int_equal(nvmex_rl_bw_unit(0), 1 << 20);
    assert_int_equal(nvmex_rl_bw_unit(3), 1ull << 30);
}

/* Admit as many 4 KiB reads as allowed over @secs of simulated time */
static uint64_t run(NvmexLimiter *l, bool write, int secs)
{
    int64_t now = 0;
    uint64_t done = 0;

    while (now < secs * S) {
        int64_t w = nvmex_limiter_admit(l, now, write, 4096);

        if (w) {
            now += w;
        } else {
            done++;
        }
    }
    return done;
}

static void test_iops_limit(void **state)
{
    NvmexRateLimit rl = { .enabled = true, .tiops = 1000 };
    NvmexLimiter l;
    uint64_t n;

    (void)state;
    nvmex_limiter_configure(&l, &rl, 0);
    n = run(&l, false, 10);
    assert_in_range(n, 9990, 10011);
    assert_true(l.delayed > 0);
}

static void test_bw_and_write_limits(void **state)
{
    /* 1 MiB/s total: 256 x 4 KiB per second */
    NvmexRateLimit rl = { .enabled = true, .bwsf = 0, .tbwv = 1,
                          .wiops = 50 };
    NvmexLimiter l;
    uint64_t n;

    (void)state;
    nvmex_limiter_configure(&l, &rl, 0);
    n = run(&l, false, 4);
    assert_in_range(n, 1020, 1030);
    nvmex_limiter_configure(&l, &rl, 0);
    n = run(&l, true, 4);
    assert_in_range(n, 199, 202);
}

static void test_disabled_and_big_commands(void **state)
{
    NvmexRateLimit rl = { .enabled = false, .tiops = 1 };
    NvmexLimiter l;

    (void)state;
    nvmex_limiter_configure(&l, &rl, 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(nvmex_limiter_admit(&l, 0, true, 1 << 20), 0);
    }
    /* A command larger than the burst still goes, then the debt waits */
    rl.enabled = true;
    rl.tiops = 0;
    rl.tbwv = 1;
    nvmex_limiter_configure(&l, &rl, 0);
    assert_int_equal(nvmex_limiter_admit(&l, 0, false, 4 << 20), 0);
    assert_in_range(nvmex_limiter_admit(&l, 0, false, 4096), 4 * S - 1,
                    4 * S + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_iops_limit),
        cmocka_unit_test(test_bw_and_write_limits),
        cmocka_unit_test(test_disabled_and_big_commands),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
