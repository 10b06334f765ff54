/*
 * VPRI core: page states of a postcopy destination, and the device queues
 * waiting for pages (postcopy-pages.h)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/vpri/core/postcopy-pages.h"

/* Waiter links: index + 1, 0 ends a chain. */
#define PCP_NONE 0

struct PostcopyPages {
    pthread_mutex_t lock;
    bool lock_ready;
    uint64_t npages;
    uint8_t *state;             /* PcpPageState per page */
    uint32_t *head;             /* per page: newest waiter */
    uint32_t max_waiters;
    PcpWaiter *waiters;
    uint32_t *next;             /* per waiter: the next older one, or free */
    uint32_t free_head;
    PcpRunState run;
    PcpStats stats;
    LatencyHistogram *latency;
};

PostcopyPages *vpri_pcp_new(uint64_t npages, uint32_t max_waiters)
{
    PostcopyPages *p;

    if (!npages || npages > SIZE_MAX / sizeof(uint32_t) || !max_waiters ||
        max_waiters > VPRI_PCP_MAX_WAITERS) {
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->npages = npages;
    p->max_waiters = max_waiters;
    p->state = calloc(npages, 1);
    p->head = calloc(npages, sizeof(*p->head));
    p->waiters = calloc(max_waiters, sizeof(*p->waiters));
    p->next = calloc(max_waiters, sizeof(*p->next));
    p->latency = vpri_latency_histogram_new();
    if (!p->state || !p->head || !p->waiters || !p->next || !p->latency) {
        vpri_pcp_free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < max_waiters; i++) {
        p->next[i] = i + 1 < max_waiters ? i + 2 : PCP_NONE;
    }
    p->free_head = 1;
    p->stats.pages = npages;
    pthread_mutex_init(&p->lock, NULL);
    p->lock_ready = true;
    return p;
}

void vpri_pcp_free(PostcopyPages *p)
{
    if (!p) {
        return;
    }
    if (p->lock_ready) {
        pthread_mutex_destroy(&p->lock);
    }
    vpri_latency_histogram_free(p->latency);
    free(p->next);
    free(p->waiters);
    free(p->head);
    free(p->state);
    free(p);
}

uint32_t vpri_pcp_max_waiters(const PostcopyPages *p)
{
    return p->max_waiters;
}

PcpPageState vpri_pcp_page_state(PostcopyPages *p, uint64_t page)
{
    PcpPageState st;

    if (page >= p->npages) {
        return VPRI_PCP_MISSING;
    }
    pthread_mutex_lock(&p->lock);
    st = p->state[page];
    pthread_mutex_unlock(&p->lock);
    return st;
}

PcpRunState vpri_pcp_run_state(PostcopyPages *p)
{
    PcpRunState run;

    pthread_mutex_lock(&p->lock);
    run = p->run;
    pthread_mutex_unlock(&p->lock);
    return run;
}

PcpFaultResult vpri_pcp_fault(PostcopyPages *p, uint64_t page,
                              const PcpWaiter *w)
{
    PcpFaultResult ret;
    uint32_t slot;

    if (page >= p->npages) {
        return VPRI_PCP_OUT_OF_RANGE;
    }
    pthread_mutex_lock(&p->lock);
    if (p->state[page] == VPRI_PCP_RECEIVED) {
        ret = VPRI_PCP_PRESENT;
    } else if (p->run == VPRI_PCP_DEAD) {
        p->stats.failed++;
        ret = VPRI_PCP_FAILED;
    } else if (p->free_head == PCP_NONE) {
        p->stats.full++;
        ret = VPRI_PCP_FULL;
    } else {
        slot = p->free_head;
        p->free_head = p->next[slot - 1];
        p->waiters[slot - 1] = *w;
        p->next[slot - 1] = p->head[page];
        p->head[page] = slot;
        p->stats.device_faults++;
        p->stats.waiting++;
        if (p->state[page] == VPRI_PCP_MISSING) {
            p->state[page] = VPRI_PCP_REQUESTED;
            if (p->run == VPRI_PCP_RUNNING) {
                p->stats.requested++;
                ret = VPRI_PCP_REQUEST;
            } else {
                /* Asked for when postcopy resumes */
                ret = VPRI_PCP_WAIT;
            }
        } else {
            /* Requested already, maybe by a prefetch: then it was late */
            if (p->state[page] == VPRI_PCP_PREFETCHED) {
                p->stats.prefetch_late++;
            }
            p->state[page] = VPRI_PCP_REQUESTED;
            ret = VPRI_PCP_WAIT;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return ret;
}

PcpPrefetchResult vpri_pcp_prefetch(PostcopyPages *p, uint64_t page,
                                    uint64_t limit)
{
    PcpPrefetchResult ret = VPRI_PCP_PREFETCH_SKIP;

    if (page >= p->npages) {
        return VPRI_PCP_PREFETCH_SKIP;
    }
    pthread_mutex_lock(&p->lock);
    if (p->stats.prefetched >= limit) {
        ret = VPRI_PCP_PREFETCH_LIMIT;
    } else if (p->run == VPRI_PCP_RUNNING &&
               p->state[page] == VPRI_PCP_MISSING) {
        p->state[page] = VPRI_PCP_PREFETCHED;
        p->stats.prefetched++;
        ret = VPRI_PCP_PREFETCH_REQUEST;
    }
    pthread_mutex_unlock(&p->lock);
    return ret;
}

/*
 * Detach @page's waiters into @out, oldest first, and free them; returns
 * how many.  Lock held.
 */
static size_t vpri_pcp_take_waiters(PostcopyPages *p, uint64_t page,
                                    PcpWaiter *out)
{
    size_t n = 0;
    uint32_t slot = p->head[page];

    while (slot != PCP_NONE) {
        uint32_t older = p->next[slot - 1];

        out[n++] = p->waiters[slot - 1];
        p->next[slot - 1] = p->free_head;
        p->free_head = slot;
        slot = older;
    }
    p->head[page] = PCP_NONE;
    /* The chain is newest first */
    for (size_t i = 0; i < n / 2; i++) {
        PcpWaiter t = out[i];

        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    p->stats.waiting -= n;
    return n;
}

size_t vpri_pcp_arrived(PostcopyPages *p, uint64_t page, uint64_t now_ns,
                        PcpWaiter *out)
{
    size_t n;

    if (page >= p->npages) {
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    if (p->state[page] == VPRI_PCP_RECEIVED) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    if (p->state[page] == VPRI_PCP_PREFETCHED) {
        p->stats.prefetch_hits++;
    }
    p->state[page] = VPRI_PCP_RECEIVED;
    p->stats.received++;
    n = vpri_pcp_take_waiters(p, page, out);
    p->stats.resolved += n;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        vpri_latency_histogram_record(p->latency,
                                      now_ns > out[i].since_ns ?
                                      now_ns - out[i].since_ns : 0);
    }
    return n;
}

void vpri_pcp_pause(PostcopyPages *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->run == VPRI_PCP_RUNNING) {
        p->run = VPRI_PCP_PAUSED;
    }
    pthread_mutex_unlock(&p->lock);
}

size_t vpri_pcp_resume(PostcopyPages *p, uint64_t *cursor, uint64_t *out,
                       size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    if (p->run == VPRI_PCP_DEAD) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    p->run = VPRI_PCP_RUNNING;
    while (*cursor < p->npages && n < max) {
        uint64_t page = (*cursor)++;

        if (p->state[page] == VPRI_PCP_REQUESTED ||
            p->state[page] == VPRI_PCP_PREFETCHED) {
            out[n++] = page;
        }
    }
    p->stats.rerequested += n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

size_t vpri_pcp_fail(PostcopyPages *p, PcpWaiter *out)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    p->run = VPRI_PCP_DEAD;
    for (uint64_t page = 0; page < p->npages && p->stats.waiting; page++) {
        if (p->head[page] != PCP_NONE) {
            n += vpri_pcp_take_waiters(p, page, out + n);
        }
    }
    p->stats.failed += n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void vpri_pcp_get_stats(PostcopyPages *p, PcpStats *st)
{
    pthread_mutex_lock(&p->lock);
    *st = p->stats;
    pthread_mutex_unlock(&p->lock);
}

const LatencyHistogram *vpri_pcp_latency(const PostcopyPages *p)
{
    return p->latency;
}
