/*
 * VPRI core: log-linear latency histogram
 *
 * Fixed memory (about 15 KiB) whatever the number of samples.  Every
 * power-of-two range of values is split into 32 equal sub-buckets, so
 * a reported percentile is within 1.6% of the true sample value.
 * Recording is lock-free and may run in any number of threads at once;
 * readers see a consistent-enough view for statistics, not a snapshot.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_LATENCY_HISTOGRAM_H
#define HW_VPRI_LATENCY_HISTOGRAM_H

#include <stdint.h>

typedef struct LatencyHistogram LatencyHistogram;

typedef struct LatencySummary {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t mean;
    uint64_t p50;
    uint64_t p99;
    uint64_t p999;
} LatencySummary;

/* Returns NULL only when out of memory. */
LatencyHistogram *vpri_latency_histogram_new(void);
void vpri_latency_histogram_free(LatencyHistogram *h);

void vpri_latency_histogram_record(LatencyHistogram *h, uint64_t ns);

/*
 * @pct is in (0, 100], e.g. 99.9 for p999.  Returns 0 for an empty
 * histogram; the result is clamped to the recorded [min, max].
 */
uint64_t vpri_latency_histogram_percentile(const LatencyHistogram *h, double pct);

void vpri_latency_histogram_summary(const LatencyHistogram *h, LatencySummary *s);

/* Not atomic with respect to concurrent vpri_latency_histogram_record(). */
void vpri_latency_histogram_reset(LatencyHistogram *h);

/* Adds every sample of @src to @dst. */
void vpri_latency_histogram_merge(LatencyHistogram *dst,
                             const LatencyHistogram *src);

#endif
