/*
 * dma-eval: replay a DMA page-access trace against the reclaim model for
 * each overcommit, policy and pin budget, and print one CSV line per run.
 *
 *   dma-eval [--trace FILE | --gen] [options]
 *
 * docs/vpri-adp.rst, "Running the evaluator", lists the options.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dma-gen.h"
#include "dma-sim.h"

#define MAX_LIST 32

static void usage(FILE *f)
{
    fprintf(f,
"usage: dma-eval [--trace FILE | --gen] [options]\n"
"  --trace FILE        replay FILE (iolab-dma-trace format)\n"
"  --gen               replay a generated mixed trace (the default)\n"
"  --seed N            generator seed (1)\n"
"  --duration-s S      generated trace length (60)\n"
"  --no-nic, --no-block  leave a device out of the generated trace\n"
"  --set NAME=VALUE    set a generator parameter (see --stats)\n"
"  --write-trace FILE  write the trace (generated or read) and go on\n"
"  --overcommit LIST   percent of guest RAM not resident (10,20,30)\n"
"  --budgets LIST      pin budgets, percent of guest RAM (1,2,5.2)\n"
"  --policies LIST     none,lru,adp\n"
"  --epoch-ms MS       access-tracker collection period (10)\n"
"  --warmup F          fraction of the trace not counted (0.2)\n"
"  --reclaim-every-ms MS --reclaim-percent P\n"
"                      also evict P%% of guest RAM every MS ms, as\n"
"                      vpri-reclaim does (default: never)\n"
"  --stats             print the trace characterization first (as #)\n");
}

static int parse_list(const char *s, double *v, int max)
{
    int n = 0;
    char *end;

    while (*s && n < max) {
        v[n++] = strtod(s, &end);
        if (end == s || (*end && *end != ',')) {
            return -1;
        }
        s = *end ? end + 1 : end;
    }
    return *s ? -1 : n;
}

static void print_stats(const DmaTrace *t)
{
    for (unsigned k = 0; k < DMA_TRACE_NR_KINDS; k++) {
        DmaTraceStats st;

        if (vpri_dma_trace_stats(t, (DmaTraceKind)k, &st) == 0 && st.accesses) {
            printf("# %s: accesses %" PRIu64 ", footprint %" PRIu64
                   " pages, visited >2 times %.1f%%, median reuse distance %"
                   PRIu64 " accesses / %.1f ms\n",
                   vpri_dma_trace_kind_name((DmaTraceKind)k), st.accesses,
                   st.footprint, 100 * st.visited_gt2, st.reuse_median,
                   (double)st.reuse_time_median_ns / 1e6);
        }
    }
}

int main(int argc, char **argv)
{
    DmaGenParams gp;
    DmaTrace t;
    const char *trace = NULL, *write_to = NULL;
    double oc[MAX_LIST] = { 10, 20, 30 }, bud[MAX_LIST] = { 1, 2, 5.2 };
    int noc = 3, nbud = 3;
    bool pols[PIN_POLICY_NR_KINDS] = { true, true, true };
    bool stats = false;
    double epoch_ms = 10, warmup = 0.2, reclaim_ms = 0;
    unsigned reclaim_pct = 0;
    uint64_t t0, t1;
    int r;

    dma_gen_default(&gp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;

        if (!strcmp(a, "--gen") || !strcmp(a, "--no-nic") ||
            !strcmp(a, "--no-block") || !strcmp(a, "--stats") ||
            !strcmp(a, "--help")) {
            takes = false;
        } else if (!v) {
            fprintf(stderr, "dma-eval: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--gen")) {
            trace = NULL;
        } else if (!strcmp(a, "--no-nic")) {
            gp.nic = false;
        } else if (!strcmp(a, "--no-block")) {
            gp.block = false;
        } else if (!strcmp(a, "--stats")) {
            stats = true;
        } else if (!strcmp(a, "--trace")) {
            trace = v;
        } else if (!strcmp(a, "--write-trace")) {
            write_to = v;
        } else if (!strcmp(a, "--set")) {
            char name[64];
            const char *eq = strchr(v, '=');

            if (!eq || eq - v >= (long)sizeof(name)) {
                fprintf(stderr, "dma-eval: --set wants NAME=VALUE\n");
                return 2;
            }
            memcpy(name, v, (size_t)(eq - v));
            name[eq - v] = '\0';
            if (dma_gen_set(&gp, name, eq + 1)) {
                fprintf(stderr, "dma-eval: bad generator parameter '%s'\n",
                        v);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            gp.seed = strtoull(v, NULL, 0);
        } else if (!strcmp(a, "--duration-s")) {
            gp.duration_ns = (uint64_t)(atof(v) * 1e9);
        } else if (!strcmp(a, "--overcommit")) {
            noc = parse_list(v, oc, MAX_LIST);
        } else if (!strcmp(a, "--budgets")) {
            nbud = parse_list(v, bud, MAX_LIST);
        } else if (!strcmp(a, "--epoch-ms")) {
            epoch_ms = atof(v);
        } else if (!strcmp(a, "--warmup")) {
            warmup = atof(v);
        } else if (!strcmp(a, "--reclaim-every-ms")) {
            reclaim_ms = atof(v);
        } else if (!strcmp(a, "--reclaim-percent")) {
            reclaim_pct = (unsigned)atoi(v);
        } else if (!strcmp(a, "--policies")) {
            char buf[64], *tok, *save = NULL;

            memset(pols, 0, sizeof(pols));
            snprintf(buf, sizeof(buf), "%s", v);
            for (tok = strtok_r(buf, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                PinPolicyKind k;

                if (vpri_pin_policy_kind_parse(tok, &k)) {
                    fprintf(stderr, "dma-eval: unknown policy '%s' "
                            "(none, lru, adp)\n", tok);
                    return 2;
                }
                pols[k] = true;
            }
        } else {
            fprintf(stderr, "dma-eval: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i += takes;
    }
    if (noc <= 0 || nbud <= 0 || epoch_ms <= 0 || warmup < 0 ||
        warmup >= 1 || reclaim_ms < 0 || reclaim_pct > 100) {
        fprintf(stderr, "dma-eval: bad --overcommit, --budgets, --epoch-ms "
                "or --warmup\n");
        return 2;
    }

    if (trace) {
        FILE *f = fopen(trace, "r");
        unsigned line = 0;

        if (!f) {
            perror(trace);
            return 1;
        }
        r = vpri_dma_trace_read(f, &t, &line);
        fclose(f);
        if (r) {
            fprintf(stderr, "dma-eval: %s:%u: %s\n", trace, line,
                    r == -EINVAL ? "malformed trace" : strerror(-r));
            return 1;
        }
    } else {
        r = dma_gen_mixed(&gp, &t);
        if (r) {
            fprintf(stderr, "dma-eval: cannot generate: %s\n", strerror(-r));
            return 1;
        }
    }
    if (!t.n) {
        fprintf(stderr, "dma-eval: the trace has no records\n");
        return 1;
    }
    if (write_to) {
        FILE *f = fopen(write_to, "w");

        if (!f || vpri_dma_trace_write(f, &t) || fclose(f)) {
            perror(write_to);
            return 1;
        }
    }
    if (stats) {
        printf("# trace: %s, %zu records, %" PRIu64 " guest pages\n",
               trace ? trace : "generated", t.n, t.hdr.guest_pages);
        if (!trace) {
            dma_gen_print(&gp, stdout);
        }
        print_stats(&t);
    }

    t0 = t.recs[0].time_ns;
    t1 = t.recs[t.n - 1].time_ns;
    printf("overcommit,policy,budget_pct,budget_pages,capacity,"
           "nic_faults,block_faults,cpu_faults,nic_accesses,block_accesses,"
           "cpu_accesses,evictions,pin_pageins,pinned_avg,pinned_max,"
           "pinned_nic,pinned_block,nic_first_faults,block_first_faults,"
           "cold_nic_faults,cold_block_faults,cold_nic_first_faults,"
           "cold_block_first_faults\n");
    for (int o = 0; o < noc; o++) {
        DmaSimResult none_res = { 0 };

        for (int b = 0; b < nbud; b++) {
            for (unsigned k = 0; k < PIN_POLICY_NR_KINDS; k++) {
                DmaSimConfig cfg = {
                    .overcommit_pct = (unsigned)oc[o],
                    .policy = (PinPolicyKind)k,
                    .budget_pages = (uint64_t)(bud[b] / 100 *
                                               (double)t.hdr.guest_pages),
                    .epoch_ns = (uint64_t)(epoch_ms * 1e6),
                    .count_from_ns = t0 + (uint64_t)(warmup *
                                                     (double)(t1 - t0)),
                    .reclaim_every_ns = (uint64_t)(reclaim_ms * 1e6),
                    .reclaim_pct = reclaim_pct,
                };
                DmaSimResult res = { 0 };

                if (!pols[k]) {
                    continue;
                }
                /* none pins nothing: its replay is the same at any budget */
                if (k == PIN_POLICY_NONE && b > 0) {
                    res = none_res;
                    res.budget = cfg.budget_pages < res.capacity / 2 ?
                                 cfg.budget_pages : res.capacity / 2;
                    r = 0;
                } else {
                    r = dma_sim_run(&cfg, &t, &res);
                }
                if (k == PIN_POLICY_NONE) {
                    none_res = res;
                }
                if (r) {
                    fprintf(stderr, "dma-eval: replay failed: %s\n",
                            strerror(-r));
                    return 1;
                }
                printf("%u,%s,%g,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%"
                       PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                       ",%" PRIu64 ",%" PRIu64 ",%.1f,%" PRIu64
                       ",%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%"
                       PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
                       cfg.overcommit_pct, vpri_pin_policy_kind_name(cfg.policy),
                       bud[b], res.budget, res.capacity,
                       res.faults[DMA_TRACE_NIC], res.faults[DMA_TRACE_BLOCK],
                       res.faults[DMA_TRACE_CPU],
                       res.accesses[DMA_TRACE_NIC],
                       res.accesses[DMA_TRACE_BLOCK],
                       res.accesses[DMA_TRACE_CPU], res.evictions,
                       res.pin_pageins, res.pinned_avg, res.pinned_max,
                       res.pinned_avg_kind[DMA_TRACE_NIC],
                       res.pinned_avg_kind[DMA_TRACE_BLOCK],
                       res.first_faults[DMA_TRACE_NIC],
                       res.first_faults[DMA_TRACE_BLOCK],
                       res.cold_faults[DMA_TRACE_NIC],
                       res.cold_faults[DMA_TRACE_BLOCK],
                       res.cold_first_faults[DMA_TRACE_NIC],
                       res.cold_first_faults[DMA_TRACE_BLOCK]);
                fflush(stdout);
            }
        }
    }
    vpri_dma_trace_clear(&t);
    return 0;
}
