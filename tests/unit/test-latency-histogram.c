/*
 * Unit tests for the VPRI latency histogram
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hw/vpri/core/latency-histogram.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, the definition we promise */
static uint64_t exact_pct(const uint64_t *v, size_t n, double pct)
{
    size_t rank = (size_t)(pct / 100.0 * (double)n);

    if ((double)rank < pct / 100.0 * (double)n) {
        rank++;
    }
    if (rank == 0) {
        rank = 1;
    }
    return v[rank - 1];
}

static void assert_close(uint64_t got, uint64_t want)
{
    double err = got > want ? (double)(got - want) : (double)(want - got);

    if (want == 0) {
        assert_int_equal(got, 0);
        return;
    }
    if (err / (double)want > 0.03) {
        fail_msg("got %llu, want %llu (error %.2f%%)",
                 (unsigned long long)got, (unsigned long long)want,
                 100.0 * err / (double)want);
    }
}

static void test_empty(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();
    LatencySummary s;

    (void)state;
    assert_non_null(h);
    assert_int_equal(vpri_latency_histogram_percentile(h, 50.0), 0);
    vpri_latency_histogram_summary(h, &s);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.min, 0);
    assert_int_equal(s.max, 0);
    assert_int_equal(s.p999, 0);
    vpri_latency_histogram_free(h);
}

static void test_small_values_exact(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();
    uint64_t i;

    (void)state;
    /* 0..31 are kept exactly: one sample each */
    for (i = 0; i < 32; i++) {
        vpri_latency_histogram_record(h, i);
    }
    assert_int_equal(vpri_latency_histogram_percentile(h, 50.0), 15);
    assert_int_equal(vpri_latency_histogram_percentile(h, 100.0), 31);
    assert_int_equal(vpri_latency_histogram_percentile(h, 1.0), 0);
    vpri_latency_histogram_free(h);
}

static void test_single_value(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();
    LatencySummary s;

    (void)state;
    vpri_latency_histogram_record(h, 1742);
    vpri_latency_histogram_summary(h, &s);
    /* Clamped to [min, max], so a lone sample is reported exactly. */
    assert_int_equal(s.p50, 1742);
    assert_int_equal(s.p99, 1742);
    assert_int_equal(s.p999, 1742);
    assert_int_equal(s.min, 1742);
    assert_int_equal(s.max, 1742);
    assert_int_equal(s.mean, 1742);
    assert_int_equal(s.count, 1);
    vpri_latency_histogram_free(h);
}

static void test_accuracy_random(void **state)
{
    enum { N = 200000 };
    static uint64_t v[N];
    static const double pcts[] = { 1, 10, 50, 90, 99, 99.9, 99.99, 100 };
    LatencyHistogram *h = vpri_latency_histogram_new();
    LatencySummary s;
    unsigned int seed = 12345;
    uint64_t sum = 0;
    size_t i;

    (void)state;
    for (i = 0; i < N; i++) {
        /* Log-uniform from 30 ns to about 30 s */
        int octave = rand_r(&seed) % 30;
        uint64_t base = (uint64_t)30 << octave;

        v[i] = base + (uint64_t)rand_r(&seed) % base;
        sum += v[i];
        vpri_latency_histogram_record(h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        assert_close(vpri_latency_histogram_percentile(h, pcts[i]),
                     exact_pct(v, N, pcts[i]));
    }
    vpri_latency_histogram_summary(h, &s);
    assert_int_equal(s.count, N);
    assert_int_equal(s.min, v[0]);
    assert_int_equal(s.max, v[N - 1]);
    assert_int_equal(s.mean, sum / N);
    assert_close(s.p50, exact_pct(v, N, 50));
    assert_close(s.p99, exact_pct(v, N, 99));
    assert_close(s.p999, exact_pct(v, N, 99.9));
    vpri_latency_histogram_free(h);
}

static void test_extremes(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();

    (void)state;
    vpri_latency_histogram_record(h, UINT64_MAX);
    vpri_latency_histogram_record(h, 0);
    assert_int_equal(vpri_latency_histogram_percentile(h, 100.0), UINT64_MAX);
    assert_int_equal(vpri_latency_histogram_percentile(h, 50.0), 0);
    /* Out-of-range percentiles are clamped, not trusted */
    assert_int_equal(vpri_latency_histogram_percentile(h, 1000.0), UINT64_MAX);
    assert_int_equal(vpri_latency_histogram_percentile(h, -5.0), 0);
    vpri_latency_histogram_free(h);
}

static void test_tail(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();
    int i;

    (void)state;
    /* 9990 fast, 10 slow: p99 is fast, p999 is still fast, max slow */
    for (i = 0; i < 9990; i++) {
        vpri_latency_histogram_record(h, 1000);
    }
    for (i = 0; i < 10; i++) {
        vpri_latency_histogram_record(h, 500000);
    }
    assert_close(vpri_latency_histogram_percentile(h, 99.0), 1000);
    assert_close(vpri_latency_histogram_percentile(h, 99.9), 1000);
    assert_close(vpri_latency_histogram_percentile(h, 99.91), 500000);
    assert_int_equal(vpri_latency_histogram_percentile(h, 100.0), 500000);
    vpri_latency_histogram_free(h);
}

static void test_reset_and_merge(void **state)
{
    LatencyHistogram *a = vpri_latency_histogram_new();
    LatencyHistogram *b = vpri_latency_histogram_new();
    LatencySummary s;
    int i;

    (void)state;
    for (i = 0; i < 100; i++) {
        vpri_latency_histogram_record(a, 100);
        vpri_latency_histogram_record(b, 10000);
    }
    vpri_latency_histogram_merge(a, b);
    vpri_latency_histogram_summary(a, &s);
    assert_int_equal(s.count, 200);
    assert_int_equal(s.min, 100);
    assert_int_equal(s.max, 10000);
    assert_close(s.p50, 100);
    assert_close(s.p99, 10000);

    vpri_latency_histogram_reset(a);
    vpri_latency_histogram_summary(a, &s);
    assert_int_equal(s.count, 0);
    assert_int_equal(vpri_latency_histogram_percentile(a, 99.0), 0);
    vpri_latency_histogram_free(a);
    vpri_latency_histogram_free(b);
}

#define MT_THREADS 4
#define MT_PER_THREAD 100000

static void *record_thread(void *opaque)
{
    LatencyHistogram *h = opaque;
    uint64_t i;

    for (i = 0; i < MT_PER_THREAD; i++) {
        vpri_latency_histogram_record(h, 1000 + i % 1000);
    }
    return NULL;
}

static void test_threads(void **state)
{
    LatencyHistogram *h = vpri_latency_histogram_new();
    pthread_t t[MT_THREADS];
    LatencySummary s;
    int i;

    (void)state;
    for (i = 0; i < MT_THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, record_thread, h), 0);
    }
    for (i = 0; i < MT_THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    vpri_latency_histogram_summary(h, &s);
    /* No lost updates */
    assert_int_equal(s.count, MT_THREADS * MT_PER_THREAD);
    assert_int_equal(s.min, 1000);
    assert_int_equal(s.max, 1999);
    assert_int_equal(s.mean, 1499);
    assert_close(s.p50, 1499);
    vpri_latency_histogram_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_accuracy_random),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_reset_and_merge),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
