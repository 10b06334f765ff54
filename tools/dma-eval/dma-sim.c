/*
 * Trace-driven evaluator of the DMA pinning policies: a reclaim model
 *
 * The model (docs/vpri-adp.rst):
 *
 * - The guest has G pages; the host keeps at most C = G * (100 - o) / 100
 *   resident.  At the start every page is resident and the host reclaims
 *   down to C.
 * - Host reclaim ("none"): a clock over all guest pages in page order.
 *   The hand skips pages that are not resident or are pinned; a page whose
 *   referenced bit is set gets a second chance (the bit is cleared); the
 *   first other page is evicted.  Only CPU accesses set the referenced
 *   bit: DMA goes through the IOMMU and leaves the CPU page tables alone.
 * - Any access to a non-resident page pages it in (a CPU fault or an I/O
 *   page fault, by the accessor's kind) and the host reclaims again.
 * - Each device has an access tracker (hw/vpri/core/access-tracker.c); every
 *   epoch the host collects it into the policy, which re-pins.  A pin on a
 *   page that is not resident pages it in (counted as a pin page-in).
 *   Armed records (a device was given a page for a later DMA) are not
 *   accesses: they go to a second tracker, collected as
 *   vpri_pin_policy_armed(), as vpri-host does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/vpri/core/access-tracker.h"
#include "dma-sim.h"

struct DmaSim {
    DmaSimConfig cfg;
    DmaTraceHeader hdr;
    uint64_t npages;
    uint64_t capacity;
    uint64_t resident_count;
    uint8_t *resident;
    uint8_t *ref;
    uint8_t *pinned;
    uint8_t *seen;              /* bit k: an access of kind k came */
    uint64_t hand;
    PinPolicy *policy;
    /* By trace device index: the policy's device and the tracker */
    int pol_dev[DMA_TRACE_MAX_DEVICES];
    AccessTracker *tracker[DMA_TRACE_MAX_DEVICES];
    AccessTracker *armed[DMA_TRACE_MAX_DEVICES];    /* 'a' records */
    bool started;
    uint64_t epoch_end;
    uint64_t next_reclaim;
    uint64_t now;
    DmaSimResult res;
    double pinned_sum;
    double pinned_sum_kind[DMA_TRACE_NR_KINDS];
    uint64_t counted_epochs;
    unsigned collecting;        /* the trace device being collected */
};

static bool counting(const DmaSim *s)
{
    return s->now >= s->cfg.count_from_ns;
}

static void evict_to_capacity(DmaSim *s)
{
    /* Two sweeps clear every referenced bit; more means all is pinned. */
    uint64_t limit = 3 * s->npages;

    while (s->resident_count > s->capacity && limit--) {
        uint64_t p = s->hand;

        s->hand = s->hand + 1 == s->npages ? 0 : s->hand + 1;
        if (!s->resident[p] || s->pinned[p]) {
            continue;
        }
        if (s->ref[p]) {
            s->ref[p] = 0;
            continue;
        }
        s->resident[p] = 0;
        s->resident_count--;
        if (counting(s)) {
            s->res.evictions++;
        }
    }
}

/* vpri-reclaim: evict @n more pages with the same clock. */
static void reclaim_pages(DmaSim *s, uint64_t n)
{
    uint64_t target = s->resident_count > n ? s->resident_count - n : 0;
    uint64_t saved = s->capacity;

    s->capacity = target;
    evict_to_capacity(s);
    s->capacity = saved;
}

static void page_in(DmaSim *s, uint64_t page)
{
    s->resident[page] = 1;
    s->resident_count++;
    evict_to_capacity(s);
}

static void on_pin_change(uint64_t page, bool pin, void *opaque)
{
    DmaSim *s = opaque;

    s->pinned[page] = pin;
    if (pin && !s->resident[page]) {
        if (counting(s)) {
            s->res.pin_pageins++;
        }
        page_in(s, page);
    }
}

static void on_touched(uint64_t page, void *opaque)
{
    DmaSim *s = opaque;

    vpri_pin_policy_observe(s->policy, (unsigned)s->pol_dev[s->collecting], page);
}

static void on_armed(uint64_t page, void *opaque)
{
    DmaSim *s = opaque;

    vpri_pin_policy_armed(s->policy, (unsigned)s->pol_dev[s->collecting], page);
}

static void end_epoch(DmaSim *s)
{
    for (unsigned i = 0; i < s->hdr.ndevs; i++) {
        s->collecting = i;
        vpri_access_tracker_collect_cb(s->tracker[i], 0, s->npages, on_touched,
                                  s);
        vpri_access_tracker_collect_cb(s->armed[i], 0, s->npages, on_armed, s);
    }
    vpri_pin_policy_epoch(s->policy, on_pin_change, s);
    s->res.epochs++;
    if (counting(s)) {
        s->counted_epochs++;
        s->pinned_sum += (double)vpri_pin_policy_pinned(s->policy);
        if (vpri_pin_policy_pinned(s->policy) > s->res.pinned_max) {
            s->res.pinned_max = vpri_pin_policy_pinned(s->policy);
        }
        for (unsigned i = 0; i < s->hdr.ndevs; i++) {
            PinPolicyDevStats st;

            if (vpri_pin_policy_dev_stats(s->policy, (unsigned)s->pol_dev[i],
                                     &st) == 0) {
                s->pinned_sum_kind[s->hdr.devs[i].kind] += (double)st.pinned;
            }
        }
    }
}

DmaSim *dma_sim_new(const DmaSimConfig *cfg, const DmaTraceHeader *hdr)
{
    DmaSim *s;

    if (cfg->overcommit_pct >= 100 || !cfg->epoch_ns || !hdr->guest_pages ||
        (unsigned)cfg->policy >= PIN_POLICY_NR_KINDS) {
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->cfg = *cfg;
    s->hdr = *hdr;
    s->npages = hdr->guest_pages;
    s->capacity = s->npages * (100 - cfg->overcommit_pct) / 100;
    if (s->cfg.budget_pages > s->capacity / 2) {
        s->cfg.budget_pages = s->capacity / 2;
    }
    s->resident = malloc(s->npages);
    s->ref = calloc(s->npages, 1);
    s->pinned = calloc(s->npages, 1);
    s->seen = calloc(s->npages, 1);
    s->policy = vpri_pin_policy_new(cfg->policy, s->npages, s->cfg.budget_pages);
    if (!s->resident || !s->ref || !s->pinned || !s->seen || !s->policy) {
        dma_sim_free(s);
        return NULL;
    }
    for (unsigned i = 0; i < hdr->ndevs; i++) {
        s->pol_dev[i] = vpri_pin_policy_add_device(s->policy,
                                              hdr->devs[i].kind ==
                                              DMA_TRACE_NIC ?
                                              PIN_DEV_NIC : PIN_DEV_BLOCK);
        s->tracker[i] = vpri_access_tracker_new(s->npages);
        s->armed[i] = vpri_access_tracker_new(s->npages);
        if (s->pol_dev[i] < 0 || !s->tracker[i] || !s->armed[i]) {
            dma_sim_free(s);
            return NULL;
        }
    }
    memset(s->resident, 1, s->npages);
    s->resident_count = s->npages;
    evict_to_capacity(s);
    s->res.capacity = s->capacity;
    s->res.budget = s->cfg.budget_pages;
    return s;
}

void dma_sim_free(DmaSim *s)
{
    if (!s) {
        return;
    }
    for (unsigned i = 0; i < s->hdr.ndevs; i++) {
        vpri_access_tracker_free(s->tracker[i]);
        vpri_access_tracker_free(s->armed[i]);
    }
    vpri_pin_policy_free(s->policy);
    free(s->resident);
    free(s->ref);
    free(s->pinned);
    free(s->seen);
    free(s);
}

int dma_sim_step(DmaSim *s, const DmaTraceRecord *r)
{
    int di = -1;

    if (r->page >= s->npages || r->kind >= DMA_TRACE_NR_KINDS ||
        (s->started && r->time_ns < s->now)) {
        return -EINVAL;
    }
    if (r->kind != DMA_TRACE_CPU) {
        di = vpri_dma_trace_find_device(&s->hdr, r->dev);
        if (di < 0) {
            return -EINVAL;
        }
    } else if (r->armed) {
        return -EINVAL;
    }
    if (!s->started) {
        s->started = true;
        s->epoch_end = r->time_ns + s->cfg.epoch_ns;
        s->next_reclaim = r->time_ns + s->cfg.reclaim_every_ns;
    }
    for (;;) {
        bool reclaim = s->cfg.reclaim_every_ns &&
                       s->next_reclaim <= s->epoch_end;
        uint64_t t = reclaim ? s->next_reclaim : s->epoch_end;

        if (r->time_ns < t) {
            break;
        }
        s->now = t;
        if (reclaim) {
            reclaim_pages(s, s->npages * s->cfg.reclaim_pct / 100);
            s->next_reclaim += s->cfg.reclaim_every_ns;
        } else {
            end_epoch(s);
            s->epoch_end += s->cfg.epoch_ns;
        }
    }
    s->now = r->time_ns;

    if (r->armed) {
        /* Not an access: the policy hears of it at the epoch's end. */
        vpri_access_tracker_mark(s->armed[di], r->page << 12, 1);
        return 0;
    }
    s->res.cold_accesses[r->kind]++;
    if (counting(s)) {
        s->res.accesses[r->kind]++;
    }
    if (!s->resident[r->page]) {
        bool first = !(s->seen[r->page] & (1 << r->kind));

        s->res.cold_faults[r->kind]++;
        s->res.cold_first_faults[r->kind] += first;
        if (counting(s)) {
            s->res.faults[r->kind]++;
            s->res.first_faults[r->kind] += first;
        }
        if (di >= 0) {
            vpri_pin_policy_fault(s->policy, (unsigned)s->pol_dev[di], r->page);
        }
        page_in(s, r->page);
    }
    s->seen[r->page] |= 1 << r->kind;
    if (di < 0) {
        s->ref[r->page] = 1;
    } else {
        vpri_access_tracker_mark(s->tracker[di], r->page << 12, 1);
    }
    return 0;
}

void dma_sim_result(const DmaSim *s, DmaSimResult *res)
{
    *res = s->res;
    if (s->counted_epochs) {
        res->pinned_avg = s->pinned_sum / (double)s->counted_epochs;
        for (unsigned k = 0; k < DMA_TRACE_NR_KINDS; k++) {
            res->pinned_avg_kind[k] = s->pinned_sum_kind[k] /
                                      (double)s->counted_epochs;
        }
    }
}

bool dma_sim_resident(const DmaSim *s, uint64_t page)
{
    return page < s->npages && s->resident[page];
}

bool dma_sim_pinned(const DmaSim *s, uint64_t page)
{
    return page < s->npages && s->pinned[page];
}

int dma_sim_run(const DmaSimConfig *cfg, const DmaTrace *t,
                DmaSimResult *res)
{
    DmaSim *s = dma_sim_new(cfg, &t->hdr);

    if (!s) {
        return -EINVAL;
    }
    for (size_t i = 0; i < t->n; i++) {
        int r = dma_sim_step(s, &t->recs[i]);

        if (r) {
            dma_sim_free(s);
            return r;
        }
    }
    dma_sim_result(s, res);
    dma_sim_free(s);
    return 0;
}
