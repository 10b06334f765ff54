/*
 * Synthetic DMA page-access traces modelled on the VPRI talk's
 * characterization of NIC and storage DMA (docs/vpri-adp.rst, "Trace
 * generators", which explains every parameter).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DMA_GEN_H
#define DMA_GEN_H

#include "hw/vpri/core/dma-trace.h"

typedef struct DmaGenParams {
    uint64_t seed;
    uint64_t guest_pages;
    uint64_t duration_ns;
    bool nic, block;                    /* which devices take part */

    /* Guest CPU, anonymous memory */
    double anon_frac;                   /* of guest pages */
    double cpu_hot_frac;                /* of anon pages */
    double cpu_hot_prob;                /* accesses that go to the hot set */
    uint64_t cpu_interval_ns;           /* mean gap between accesses */

    /* NIC: bounded ring buffers, bursty traffic */
    unsigned nic_rx_ring;               /* rx buffers posted (pages) */
    unsigned nic_tx_ring;               /* tx buffers in rotation */
    unsigned nic_pool;                  /* pages the driver's pool owns */
    double nic_refill_new;              /* refills with a fresh pool page */
    uint64_t nic_pkt_interval_ns;       /* between packets in a burst */
    uint64_t nic_on_ns, nic_off_ns;     /* mean burst and gap lengths */
    double nic_tx_prob;                 /* packets that also transmit */
    /* Mean gap between packets between bursts (background traffic:
     * ARP, keepalives, monitoring); 0: the gaps are silent. */
    uint64_t nic_idle_pkt_interval_ns;
    /* 1: the NIC reports each receive buffer posted to it (armed records) */
    unsigned nic_arm;

    /* Block: the guest page cache over a larger file set */
    double cache_frac;                  /* guest pages in the page cache */
    double file_mult;                   /* file blocks / cache pages */
    double zipf_s;                      /* popularity skew of file blocks */
    uint64_t blk_interval_ns;           /* mean gap between file reads */
    double blk_write_prob;              /* reads that dirty the page */
    uint64_t blk_flush_ns;              /* dirty page writeback period */
} DmaGenParams;

/* Per-kind characterization of a trace. */
typedef struct DmaTraceStats {
    uint64_t accesses;
    uint64_t footprint;                 /* distinct pages */
    double visited_gt2;                 /* pages with more than 2 accesses */
    /* Median reuse distance: other accesses of the kind in between */
    uint64_t reuse_median;
    uint64_t reuse_time_median_ns;
} DmaTraceStats;

void dma_gen_default(DmaGenParams *p);
/* Set the parameter named like its field ("nic_refill_new") from @value.
 * 0, or -EINVAL for an unknown name or a bad value. */
int dma_gen_set(DmaGenParams *p, const char *name, const char *value);
/* Print every parameter as "# name value" lines. */
void dma_gen_print(const DmaGenParams *p, FILE *f);
/* Generate into @t (initialized here).  0, -EINVAL or -ENOMEM. */
int dma_gen_mixed(const DmaGenParams *p, DmaTrace *t);
/* 0 or -ENOMEM. */
int vpri_dma_trace_stats(const DmaTrace *t, DmaTraceKind kind, DmaTraceStats *st);

#endif
