/*
 * VPRI core: DMA pinning policies (none, lru, adp)
 *
 * See include/hw/vpri/core/pin-policy.h and docs/vpri-adp.rst.
 *
 * Every policy is built of "parts".  A part has a history per page (last
 * epoch touched, touches, mean reuse gap), a list of candidate pages, a
 * share of the budget, and pins the best-ranked candidates up to that
 * share.  lru has one recency part that every device feeds; adp has one
 * part per device, of the kind that suits the device, and moves budget
 * between them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/vpri/core/pin-policy.h"

/* Page history flags */
#define PH_CAND     0x01    /* on the part's candidate list */
#define PH_TOUCHED  0x02    /* touched in the current epoch */
#define PH_PINNED   0x04    /* in the part's selection */
#define PH_NEWPIN   0x08    /* in the selection being computed */
#define PH_GHOST    0x10    /* ranked beyond the share, within reach */
#define PH_MARGIN   0x20    /* ranked among the last pins of the share */

/* A quiet part's share starts to decay after this many quiet epochs, or
 * after twice its longest recent quiet stretch if that is longer. */
#define QUIET_MIN_EPOCHS 32
/* Then it halves every this many epochs. */
#define QUIET_HALF_LIFE 16
/* Budget moves in steps of 1/MOVE_DIV of the budget. */
#define MOVE_DIV 32
/* Weight of the newest epoch in the benefit averages, as 1/RATE_DIV. */
#define RATE_DIV 8
/* A recency candidate older than this is dropped whatever its rank. */
#define RECENCY_HORIZON 4096
/* Rank keys of block pages with no predicted next use start here. */
#define UNPREDICTED ((uint64_t)1 << 48)

typedef struct PageHist {
    uint32_t last;              /* epoch of the last touch + 1; 0: never */
    uint32_t gap;               /* mean reuse gap, in epochs; 0: unknown */
    uint16_t count;             /* epochs touched, saturating */
    uint8_t flags;
    uint8_t pad;
} PageHist;

typedef struct Ranked {
    uint64_t key;               /* smaller is better */
    uint64_t page;
} Ranked;

typedef struct PageList {
    uint64_t *v;
    size_t n, cap;
} PageList;

typedef struct Part {
    bool used;
    bool recency;               /* recency ranking; else predicted next use */
    PinDevKind kind;
    PageHist *h;
    PageList cand;              /* pages that may be ranked */
    PageList touched;           /* pages touched in this epoch */
    PageList sel;               /* the pins */
    PageList ghost, margin;     /* flagged pages, to clear next epoch */
    uint64_t share;
    /* Benefit per epoch, scaled by 256 and averaged over ~RATE_DIV epochs */
    uint64_t ghost_rate, margin_rate;
    uint64_t ghost_now, margin_now;     /* this epoch */
    uint64_t ghost_size, margin_size;   /* pages flagged at the last rank */
    uint64_t observed, faults, ghost_hits, margin_hits;
    uint64_t quiet_epochs;
    /*
     * The part's own clock: epochs in which its device touched anything.
     * Ages and reuse gaps count in it, so a pause of the device does not
     * make its pages look late or dead; pauses are the share's business.
     */
    uint32_t clock;
    uint64_t longest_quiet;     /* loses 1/8 at the end of each stretch */
    /*
     * Mean first reuse gap of the part's pages (each page counts once, when
     * it comes back the first time): the prediction for a page seen once.
     */
    uint32_t first_gap;
} Part;

struct PinPolicy {
    PinPolicyKind kind;
    uint64_t npages;
    uint64_t budget;
    uint64_t pool;              /* budget no part holds (adp) */
    uint32_t epoch;
    Part parts[PIN_POLICY_MAX_DEVICES];
    Part shared;                /* lru's single part */
    bool dev_used[PIN_POLICY_MAX_DEVICES];
    PinDevKind dev_kind[PIN_POLICY_MAX_DEVICES];
    uint8_t *pin_ref;           /* parts pinning each page */
    uint8_t *last_dev;          /* lru: the device that touched it last */
    uint64_t pinned;
    Ranked *rank;
    size_t rank_cap;
};

static const char *const kind_names[PIN_POLICY_NR_KINDS] = {
    [PIN_POLICY_NONE] = "none",
    [PIN_POLICY_LRU] = "lru",
    [PIN_POLICY_ADP] = "adp",
};

static const char *const dev_kind_names[PIN_DEV_NR_KINDS] = {
    [PIN_DEV_NIC] = "nic",
    [PIN_DEV_BLOCK] = "block",
};

const char *vpri_pin_policy_kind_name(PinPolicyKind kind)
{
    return (unsigned)kind < PIN_POLICY_NR_KINDS ? kind_names[kind] : NULL;
}

const char *vpri_pin_dev_kind_name(PinDevKind kind)
{
    return (unsigned)kind < PIN_DEV_NR_KINDS ? dev_kind_names[kind] : NULL;
}

static int vpri_pin_parse_name(const char *name, const char *const *names,
                               int n)
{
    for (int i = 0; name && i < n; i++) {
        if (!strcmp(name, names[i])) {
            return i;
        }
    }
    return -EINVAL;
}

int vpri_pin_policy_kind_parse(const char *name, PinPolicyKind *kind)
{
    int i = vpri_pin_parse_name(name, kind_names, PIN_POLICY_NR_KINDS);

    if (i < 0) {
        return i;
    }
    *kind = (PinPolicyKind)i;
    return 0;
}

int vpri_pin_dev_kind_parse(const char *name, PinDevKind *kind)
{
    int i = vpri_pin_parse_name(name, dev_kind_names, PIN_DEV_NR_KINDS);

    if (i < 0) {
        return i;
    }
    *kind = (PinDevKind)i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

static bool vpri_pin_list_push(PageList *l, uint64_t page)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint64_t *v = realloc(l->v, cap * sizeof(*v));

        if (!v) {
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = page;
    return true;
}

static void vpri_pin_list_free(PageList *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/*
 * Reorder @r[0..@n) so that the @k smallest keys come first (in no
 * order).  Three-way partitioning: keys repeat a lot (one age per epoch).
 * Pivots are the median of three pseudo-random picks: the arrays arrive
 * partly ordered by the previous epoch, which defeats fixed picks.
 */
static void vpri_pin_select_smallest(Ranked *r, size_t n, size_t k)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ n ^ ((uint64_t)k << 32);
    size_t lo = 0, hi = n;

    while (k > lo && k < hi && hi - lo > 1) {
        uint64_t a, b, c;

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        a = r[lo + seed % (hi - lo)].key;
        b = r[lo + (seed >> 21) % (hi - lo)].key;
        c = r[lo + (seed >> 42) % (hi - lo)].key;
        uint64_t pivot = a < b ? (b < c ? b : (a < c ? c : a))
                               : (a < c ? a : (b < c ? c : b));
        size_t lt = lo, i = lo, gt = hi;

        while (i < gt) {
            if (r[i].key < pivot) {
                Ranked t = r[lt];
                r[lt++] = r[i];
                r[i++] = t;
            } else if (r[i].key > pivot) {
                Ranked t = r[--gt];
                r[gt] = r[i];
                r[i] = t;
            } else {
                i++;
            }
        }
        /* [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi) > pivot */
        if (k <= lt) {
            hi = lt;
        } else if (k >= gt) {
            lo = gt;
        } else {
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

static bool vpri_pin_part_init(Part *pt, uint64_t npages, bool recency,
                               PinDevKind kind)
{
    memset(pt, 0, sizeof(*pt));
    pt->h = calloc(npages, sizeof(*pt->h));
    if (!pt->h) {
        return false;
    }
    pt->used = true;
    pt->recency = recency;
    pt->kind = kind;
    return true;
}

static void vpri_pin_part_destroy(Part *pt)
{
    free(pt->h);
    vpri_pin_list_free(&pt->cand);
    vpri_pin_list_free(&pt->touched);
    vpri_pin_list_free(&pt->sel);
    vpri_pin_list_free(&pt->ghost);
    vpri_pin_list_free(&pt->margin);
    memset(pt, 0, sizeof(*pt));
}

PinPolicy *vpri_pin_policy_new(PinPolicyKind kind, uint64_t npages,
                          uint64_t budget)
{
    PinPolicy *p;

    if (!npages || npages > ((uint64_t)1 << 40) ||
        (unsigned)kind >= PIN_POLICY_NR_KINDS) {
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->kind = kind;
    p->npages = npages;
    p->budget = budget;
    p->pool = budget;
    p->pin_ref = calloc(npages, 1);
    p->last_dev = calloc(npages, 1);
    if (!p->pin_ref || !p->last_dev ||
        (kind == PIN_POLICY_LRU &&
         !vpri_pin_part_init(&p->shared, npages, true, PIN_DEV_NIC))) {
        vpri_pin_policy_free(p);
        return NULL;
    }
    if (kind == PIN_POLICY_LRU) {
        p->shared.share = budget;
        p->pool = 0;
    }
    return p;
}

void vpri_pin_policy_free(PinPolicy *p)
{
    if (!p) {
        return;
    }
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        vpri_pin_part_destroy(&p->parts[i]);
    }
    vpri_pin_part_destroy(&p->shared);
    free(p->pin_ref);
    free(p->last_dev);
    free(p->rank);
    free(p);
}

PinPolicyKind vpri_pin_policy_kind(const PinPolicy *p)
{
    return p->kind;
}

uint64_t vpri_pin_policy_budget(const PinPolicy *p)
{
    return p->budget;
}

/* Give every adp part an equal share; the remainder stays in the pool. */
static void vpri_pin_adp_share_equally(PinPolicy *p)
{
    unsigned n = 0;

    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        n += p->parts[i].used;
    }
    p->pool = p->budget;
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        if (p->parts[i].used) {
            p->parts[i].share = p->budget / n;
            p->pool -= p->parts[i].share;
        }
    }
}

void vpri_pin_policy_set_budget(PinPolicy *p, uint64_t budget)
{
    p->budget = budget;
    if (p->kind == PIN_POLICY_LRU) {
        p->shared.share = budget;
    } else if (p->kind == PIN_POLICY_ADP) {
        vpri_pin_adp_share_equally(p);
    }
}

int vpri_pin_policy_add_device(PinPolicy *p, PinDevKind kind)
{
    if ((unsigned)kind >= PIN_DEV_NR_KINDS) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        /* A removed adp part keeps its slot until its pins are gone. */
        if (p->dev_used[i] || p->parts[i].h) {
            continue;
        }
        if (p->kind == PIN_POLICY_ADP) {
            if (!vpri_pin_part_init(&p->parts[i], p->npages,
                                    kind == PIN_DEV_NIC, kind)) {
                return -ENOMEM;
            }
            vpri_pin_adp_share_equally(p);
        }
        p->dev_used[i] = true;
        p->dev_kind[i] = kind;
        return (int)i;
    }
    return -ENOSPC;
}

void vpri_pin_policy_remove_device(PinPolicy *p, unsigned dev)
{
    if (dev >= PIN_POLICY_MAX_DEVICES || !p->dev_used[dev]) {
        return;
    }
    p->dev_used[dev] = false;
    if (p->kind == PIN_POLICY_ADP) {
        /* Its pins go at the next epoch: a part with no share keeps none. */
        p->pool += p->parts[dev].share;
        p->parts[dev].share = 0;
        p->parts[dev].used = false;
    }
}

/* ------------------------------------------------------------------ */
/* Feeding                                                            */

static Part *vpri_pin_part_of(PinPolicy *p, unsigned dev)
{
    if (dev >= PIN_POLICY_MAX_DEVICES || !p->dev_used[dev]) {
        return NULL;
    }
    switch (p->kind) {
    case PIN_POLICY_LRU:
        return &p->shared;
    case PIN_POLICY_ADP:
        return &p->parts[dev];
    default:
        return NULL;
    }
}

void vpri_pin_policy_observe(PinPolicy *p, unsigned dev, uint64_t page)
{
    Part *pt = vpri_pin_part_of(p, dev);
    PageHist *h;

    if (!pt || page >= p->npages) {
        return;
    }
    p->last_dev[page] = dev;
    h = &pt->h[page];
    if (h->flags & PH_TOUCHED) {
        return;
    }
    if (!vpri_pin_list_push(&pt->touched, page)) {
        return;     /* out of memory: this touch is simply not seen */
    }
    h->flags |= PH_TOUCHED;
    pt->observed++;
    if (h->flags & PH_MARGIN) {
        pt->margin_hits++;
        pt->margin_now++;
    }
}

void vpri_pin_policy_armed(PinPolicy *p, unsigned dev, uint64_t page)
{
    Part *pt = vpri_pin_part_of(p, dev);

    if (p->kind == PIN_POLICY_ADP && pt && pt->used && pt->recency) {
        vpri_pin_policy_observe(p, dev, page);
    }
}

void vpri_pin_policy_fault(PinPolicy *p, unsigned dev, uint64_t page)
{
    Part *pt = vpri_pin_part_of(p, dev);

    if (!pt || page >= p->npages) {
        return;
    }
    pt->faults++;
    if (pt->h[page].flags & PH_GHOST) {
        pt->ghost_hits++;
        pt->ghost_now++;
    }
}

/* ------------------------------------------------------------------ */
/* Epoch end                                                          */

/* Fold this epoch's touches into the histories and the candidates. */
static void vpri_pin_part_absorb(Part *pt)
{
    uint32_t epoch = pt->clock;

    if (pt->touched.n) {
        pt->clock++;
    }
    for (size_t i = 0; i < pt->touched.n; i++) {
        uint64_t page = pt->touched.v[i];
        PageHist *h = &pt->h[page];

        h->flags &= ~PH_TOUCHED;
        if (h->last) {
            uint32_t g = epoch + 1 - h->last;

            if (!h->gap) {
                pt->first_gap = pt->first_gap ?
                                (7 * pt->first_gap + g + 4) / 8 : g;
            }
            /* A mean over about the last four gaps. */
            h->gap = h->gap ? (3 * h->gap + g + 2) / 4 : g;
        }
        h->last = epoch + 1;
        if (h->count < UINT16_MAX) {
            h->count++;
        }
        if (!(h->flags & PH_CAND) && vpri_pin_list_push(&pt->cand, page)) {
            h->flags |= PH_CAND;
        }
    }
    if (pt->touched.n) {
        /* A quiet stretch ended: remember the long ones, slowly forget. */
        if (pt->quiet_epochs) {
            pt->longest_quiet -= pt->longest_quiet / 8;
            if (pt->quiet_epochs > pt->longest_quiet) {
                pt->longest_quiet = pt->quiet_epochs;
            }
        }
        pt->quiet_epochs = 0;
    } else {
        pt->quiet_epochs++;
    }
    pt->touched.n = 0;
}

/*
 * The rank key of a candidate, smaller is better; false if the page is no
 * longer worth keeping as a candidate.
 *
 * Recency: the age since the last touch, then more touches first.
 * Predicted next use: epochs from last + gap, then more touches first; a
 * page overdue by more than two gaps is taken as dead.
 */
static bool vpri_pin_part_key(const Part *pt, uint64_t page, uint64_t *key)
{
    const PageHist *h = &pt->h[page];
    uint64_t age = (uint64_t)pt->clock + 1 - h->last;
    uint64_t tie = UINT16_MAX - h->count;
    uint64_t gap;

    if (pt->recency) {
        if (age > RECENCY_HORIZON) {
            return false;
        }
        *key = (age << 16) | tie;
        return true;
    }
    gap = h->gap;
    if (!gap && h->count == 1) {
        /* Seen once: expect it back after the part's usual first gap. */
        gap = pt->first_gap;
    }
    if (!gap || age > 3 * (uint64_t)gap + 2) {
        /*
         * No prediction: seen once before any page came back, or overdue
         * by more than two gaps.  It ranks behind every predicted page, by
         * recency, so it only takes share the predictions leave unused.
         */
        if (age > RECENCY_HORIZON) {
            return false;
        }
        *key = UNPREDICTED | (age << 16) | tie;
        return true;
    }
    /* Distance to the predicted use; being late counts double, as a page
     * that missed its time is less and less likely to come. */
    *key = ((age < gap ? gap - age : 2 * (age - gap)) << 16) | tie;
    return true;
}

static void vpri_pin_clear_flag_list(Part *pt, PageList *l, uint8_t flag)
{
    for (size_t i = 0; i < l->n; i++) {
        pt->h[l->v[i]].flags &= ~flag;
    }
    l->n = 0;
}

/* Rank the candidates; flag the new selection, the margin and the ghosts. */
static void vpri_pin_part_rank(PinPolicy *p, Part *pt, uint64_t step)
{
    uint64_t ghost = p->budget / 4 > step ? p->budget / 4 : step;
    size_t n = 0, k, nsel;

    vpri_pin_clear_flag_list(pt, &pt->ghost, PH_GHOST);
    vpri_pin_clear_flag_list(pt, &pt->margin, PH_MARGIN);
    if (p->rank_cap < pt->cand.n) {
        Ranked *r = realloc(p->rank, pt->cand.n * sizeof(*r));

        if (!r) {
            return;
        }
        p->rank = r;
        p->rank_cap = pt->cand.n;
    }
    for (size_t i = 0; i < pt->cand.n; i++) {
        uint64_t page = pt->cand.v[i], key;

        pt->h[page].flags &= ~PH_CAND;
        if (vpri_pin_part_key(pt, page, &key)) {
            p->rank[n].key = key;
            p->rank[n].page = page;
            n++;
        }
    }

    /*
     * Ghosts reach a quarter of the budget beyond the share, not just the
     * next step: a device cycling over more pages than its share faults on
     * its oldest pages, far down the ranking (the loop that defeats LRU),
     * and must still see what more budget would buy.
     */
    nsel = pt->share < n ? pt->share : n;
    k = nsel + ghost < n ? nsel + ghost : n;
    vpri_pin_select_smallest(p->rank, n, k);
    vpri_pin_select_smallest(p->rank, k, nsel);
    vpri_pin_select_smallest(p->rank, nsel, nsel > step ? nsel - step : 0);
    pt->ghost_size = k - nsel;
    pt->margin_size = nsel > step ? step : nsel;

    /*
     * Candidates outside the top k: a recency page only falls further
     * behind until touched again (which makes it a candidate again), so it
     * is dropped; a predicted page stays until it is dead.
     */
    pt->cand.n = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t page = p->rank[i].page;
        PageHist *h = &pt->h[page];

        if (i < nsel) {
            h->flags |= PH_NEWPIN;
            if (i + step >= nsel) {
                h->flags |= PH_MARGIN;
                vpri_pin_list_push(&pt->margin, page);
            }
        } else if (i < k) {
            h->flags |= PH_GHOST;
            vpri_pin_list_push(&pt->ghost, page);
        } else if (pt->recency) {
            continue;
        }
        h->flags |= PH_CAND;
        pt->cand.v[pt->cand.n++] = page;
    }
}

static uint64_t vpri_pin_part_quiet_limit(const Part *pt)
{
    return 2 * pt->longest_quiet > QUIET_MIN_EPOCHS ?
           2 * pt->longest_quiet : QUIET_MIN_EPOCHS;
}

/* Move budget between adp parts by measured benefit; decay quiet parts. */
static void vpri_pin_adp_rebalance(PinPolicy *p, uint64_t step)
{
    Part *want = NULL, *give = NULL;

    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        Part *pt = &p->parts[i];
        uint64_t quiet_limit;

        if (!pt->used) {
            continue;
        }
        /* Hits per step of pages, so ghosts and margins compare. */
        pt->ghost_rate += (pt->ghost_size ? pt->ghost_now * 256 * step /
                           pt->ghost_size : 0) / RATE_DIV -
                          pt->ghost_rate / RATE_DIV;
        pt->margin_rate += (pt->margin_size ? pt->margin_now * 256 * step /
                            pt->margin_size : 0) / RATE_DIV -
                           pt->margin_rate / RATE_DIV;
        pt->ghost_now = pt->margin_now = 0;

        quiet_limit = vpri_pin_part_quiet_limit(pt);
        if (pt->quiet_epochs > quiet_limit &&
            (pt->quiet_epochs - quiet_limit) % QUIET_HALF_LIFE == 0) {
            uint64_t drop = (pt->share + 1) / 2;

            pt->share -= drop;
            p->pool += drop;
        }
        if (pt->ghost_rate && (!want || pt->ghost_rate > want->ghost_rate)) {
            want = pt;
        }
    }
    if (!want && p->pool) {
        /*
         * Budget nobody holds costs nothing to hand out: give it to the
         * active part with the most candidates beyond its share.  This is
         * how a device that was quiet (or not yet started) gets its pins
         * back before it faults enough to show ghost hits.
         */
        uint64_t best = 0;

        for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
            Part *pt = &p->parts[i];

            if (pt->used && pt->quiet_epochs == 0 &&
                pt->cand.n > pt->share && pt->cand.n - pt->share > best) {
                best = pt->cand.n - pt->share;
                want = pt;
            }
        }
        if (want) {
            uint64_t m = p->pool < step ? p->pool : step;

            m = m < best ? m : best;
            want->share += m;
            p->pool -= m;
        }
        return;
    }
    if (!want) {
        return;
    }
    if (p->pool) {
        uint64_t give_now = p->pool < step ? p->pool : step;

        want->share += give_now;
        p->pool -= give_now;
        return;
    }
    /* Share a part has no candidates for costs nothing to give. */
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        Part *pt = &p->parts[i];

        if (pt->used && pt != want && pt->share > pt->sel.n) {
            uint64_t m = pt->share - pt->sel.n;

            m = m < step ? m : step;
            pt->share -= m;
            want->share += m;
            return;
        }
    }
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        Part *pt = &p->parts[i];

        /* A device in one of its usual pauses keeps its pins for when it
         * resumes; past that, its share decays (above). */
        if (pt->used && pt != want && pt->share &&
            (pt->quiet_epochs == 0 ||
             pt->quiet_epochs > vpri_pin_part_quiet_limit(pt)) &&
            (!give || pt->margin_rate < give->margin_rate)) {
            give = pt;
        }
    }
    if (give && want->ghost_rate > give->margin_rate) {
        uint64_t m = give->share < step ? give->share : step;

        give->share -= m;
        want->share += m;
    }
}

/* Drop the pins that are not in the new selection. */
static void vpri_pin_part_unpin(PinPolicy *p, Part *pt, PinChangeFn *fn,
                                void *opaque)
{
    size_t keep = 0;

    for (size_t i = 0; i < pt->sel.n; i++) {
        uint64_t page = pt->sel.v[i];
        PageHist *h = &pt->h[page];

        if (h->flags & PH_NEWPIN) {
            pt->sel.v[keep++] = page;
            continue;
        }
        h->flags &= ~PH_PINNED;
        if (--p->pin_ref[page] == 0) {
            p->pinned--;
            if (fn) {
                fn(page, false, opaque);
            }
        }
    }
    pt->sel.n = keep;
}

/* Every page flagged NEWPIN is a candidate: pin those not pinned yet. */
static void vpri_pin_part_pin(PinPolicy *p, Part *pt, PinChangeFn *fn,
                              void *opaque)
{
    for (size_t i = 0; i < pt->cand.n; i++) {
        uint64_t page = pt->cand.v[i];
        PageHist *h = &pt->h[page];

        if (!(h->flags & PH_NEWPIN)) {
            continue;
        }
        h->flags &= ~PH_NEWPIN;
        if ((h->flags & PH_PINNED) || !vpri_pin_list_push(&pt->sel, page)) {
            continue;
        }
        h->flags |= PH_PINNED;
        if (p->pin_ref[page]++ == 0) {
            p->pinned++;
            if (fn) {
                fn(page, true, opaque);
            }
        }
    }
}

static unsigned vpri_pin_policy_parts(PinPolicy *p, Part **parts)
{
    unsigned n = 0;

    if (p->kind == PIN_POLICY_LRU) {
        parts[n++] = &p->shared;
    } else if (p->kind == PIN_POLICY_ADP) {
        for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
            /* Removed devices still hold pins until this epoch drops them */
            if (p->parts[i].used || p->parts[i].sel.n) {
                parts[n++] = &p->parts[i];
            }
        }
    }
    return n;
}

void vpri_pin_policy_epoch(PinPolicy *p, PinChangeFn *fn, void *opaque)
{
    Part *parts[PIN_POLICY_MAX_DEVICES + 1];
    unsigned n = vpri_pin_policy_parts(p, parts);
    uint64_t step = p->budget / MOVE_DIV ? p->budget / MOVE_DIV : 1;

    for (unsigned i = 0; i < n; i++) {
        vpri_pin_part_absorb(parts[i]);
    }
    if (p->kind == PIN_POLICY_ADP) {
        vpri_pin_adp_rebalance(p, step);
    }
    for (unsigned i = 0; i < n; i++) {
        vpri_pin_part_rank(p, parts[i], step);
    }
    for (unsigned i = 0; i < n; i++) {
        vpri_pin_part_unpin(p, parts[i], fn, opaque);
    }
    for (unsigned i = 0; i < n; i++) {
        vpri_pin_part_pin(p, parts[i], fn, opaque);
    }
    for (unsigned i = 0; i < PIN_POLICY_MAX_DEVICES; i++) {
        Part *pt = &p->parts[i];

        if (!pt->used && pt->h && !pt->sel.n) {
            vpri_pin_part_destroy(pt);
        }
    }
    p->epoch++;
}

/* ------------------------------------------------------------------ */
/* Queries                                                            */

bool vpri_pin_policy_is_pinned(const PinPolicy *p, uint64_t page)
{
    return page < p->npages && p->pin_ref[page];
}

uint64_t vpri_pin_policy_pinned(const PinPolicy *p)
{
    return p->pinned;
}

int vpri_pin_policy_dev_stats(const PinPolicy *p, unsigned dev,
                         PinPolicyDevStats *st)
{
    const Part *pt;

    if (dev >= PIN_POLICY_MAX_DEVICES || !p->dev_used[dev]) {
        return -EINVAL;
    }
    memset(st, 0, sizeof(*st));
    st->kind = p->dev_kind[dev];
    if (p->kind == PIN_POLICY_NONE) {
        return 0;
    }
    if (p->kind == PIN_POLICY_ADP) {
        pt = &p->parts[dev];
        st->pinned = pt->sel.n;
    } else {
        /* lru: the pins whose last toucher is this device */
        pt = &p->shared;
        for (size_t i = 0; i < pt->sel.n; i++) {
            st->pinned += p->last_dev[pt->sel.v[i]] == dev;
        }
    }
    st->share = pt->share;
    st->observed = pt->observed;
    st->faults = pt->faults;
    st->ghost_hits = pt->ghost_hits;
    st->margin_hits = pt->margin_hits;
    st->quiet_epochs = pt->quiet_epochs;
    return 0;
}
