/*
 * Trace-driven evaluator of the DMA pinning policies: a reclaim model
 *
 * Replays a DMA page-access trace against a host that keeps only part of
 * the guest's memory resident (the overcommit) and counts the I/O page
 * faults each pinning policy leaves.  docs/vpri-adp.rst, "The evaluator".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DMA_SIM_H
#define DMA_SIM_H

#include "hw/vpri/core/dma-trace.h"
#include "hw/vpri/core/pin-policy.h"

typedef struct DmaSimConfig {
    /* Resident capacity: guest pages * (100 - overcommit_pct) / 100. */
    unsigned overcommit_pct;
    PinPolicyKind policy;
    /* At most half the resident capacity (clamped). */
    uint64_t budget_pages;
    /* How often the host collects the access trackers and re-pins. */
    uint64_t epoch_ns;
    /* Faults and accesses before this time are warm-up, not counted. */
    uint64_t count_from_ns;
    /*
     * Periodic reclaim, as 'vpri-reclaim percent=P' every so often: every
     * @reclaim_every_ns (0: never) the clock evicts @reclaim_pct percent of
     * the guest's pages (fewer if not enough are evictable), on top of the
     * capacity.
     */
    uint64_t reclaim_every_ns;
    unsigned reclaim_pct;
} DmaSimConfig;

typedef struct DmaSimResult {
    /* After the warm-up, by DmaTraceKind */
    uint64_t accesses[DMA_TRACE_NR_KINDS];
    uint64_t faults[DMA_TRACE_NR_KINDS];
    /* Of those, on pages no access of the kind had touched before: no
     * policy fed by access history can foresee them. */
    uint64_t first_faults[DMA_TRACE_NR_KINDS];
    /*
     * The same three from the first record on (cold start: the model starts
     * with a random part of every region evicted, and every page is new to
     * the policies), so both can be shown side by side.
     */
    uint64_t cold_accesses[DMA_TRACE_NR_KINDS];
    uint64_t cold_faults[DMA_TRACE_NR_KINDS];
    uint64_t cold_first_faults[DMA_TRACE_NR_KINDS];
    uint64_t evictions;
    /* Pages a pin had to bring in (prefetched, no device waited). */
    uint64_t pin_pageins;
    uint64_t epochs;
    uint64_t capacity;
    uint64_t budget;
    /* Pinned pages, averaged over the counted epochs, and the maximum. */
    double pinned_avg;
    uint64_t pinned_max;
    /* Pages pinned by each kind's devices, averaged (lru: by last toucher) */
    double pinned_avg_kind[DMA_TRACE_NR_KINDS];
} DmaSimResult;

typedef struct DmaSim DmaSim;

/* NULL if @cfg or @hdr is unusable, or out of memory. */
DmaSim *dma_sim_new(const DmaSimConfig *cfg, const DmaTraceHeader *hdr);
void dma_sim_free(DmaSim *s);
/* Replay one record; records must come in time order.  0 or -EINVAL. */
int dma_sim_step(DmaSim *s, const DmaTraceRecord *r);
void dma_sim_result(const DmaSim *s, DmaSimResult *res);
bool dma_sim_resident(const DmaSim *s, uint64_t page);
bool dma_sim_pinned(const DmaSim *s, uint64_t page);

/* The whole trace in one call.  0, or -EINVAL / -ENOMEM. */
int dma_sim_run(const DmaSimConfig *cfg, const DmaTrace *t,
                DmaSimResult *res);

#endif
