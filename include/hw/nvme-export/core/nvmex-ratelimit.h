/*
 * nvme-export: TP4176 rate limiting (Feature 28h) and its token buckets
 *
 * Limits are hard limits per controller: a command is admitted when every
 * bucket it draws from is out of debt, then charged in full, so large
 * commands go through and the long-run rate is exact.  Time is passed in
 * by the caller (QEMU's virtual clock in the device).  QEMU-free.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_RATELIMIT_H
#define HW_NVME_EXPORT_NVMEX_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/nvme-export/core/nvmex-spec.h"

typedef struct NvmexBucket {
    uint64_t rate;              /* units per second; 0: unlimited */
    uint64_t burst;             /* units that may accumulate */
    int64_t level_nu;           /* tokens in units x 1e9 (may go < 0) */
    int64_t last_ns;
} NvmexBucket;

/* Feature 28h data, decoded (docs/nvme-export.rst has the layout) */
typedef struct NvmexRateLimit {
    bool enabled;               /* RLC.RLE */
    uint8_t mode;               /* RLC.RLM: 0 hard (the only one) */
    uint8_t bwsf;               /* bandwidth scale factor 0..5 */
    uint64_t tbwv, wbwv;        /* total / write bandwidth, in bwsf units */
    uint32_t tiops, wiops;      /* total / write IOPS; 0: unlimited */
} NvmexRateLimit;

enum { NVMEX_RL_TOTAL_IOPS, NVMEX_RL_TOTAL_BW, NVMEX_RL_WRITE_IOPS,
       NVMEX_RL_WRITE_BW, NVMEX_RL_NBUCKETS };

typedef struct NvmexLimiter {
    NvmexRateLimit cfg;
    NvmexBucket b[NVMEX_RL_NBUCKETS];
    uint64_t delayed;           /* commands that had to wait */
} NvmexLimiter;

/* Feature 28h data as transferred (layout in docs/nvme-export.rst) */
typedef struct NVMEX_PACKED NvmexRateLimitData {
    uint16_t rlc;                   /*   0: RLE bit 15, RLM 3:0 */
    uint8_t bwsf;                   /*   2 */
    uint8_t rsvd3[5];
    uint64_t tbwv;                  /*   8 */
    uint64_t wbwv;                  /*  16 */
    uint32_t tiops;                 /*  24 */
    uint32_t wiops;                 /*  28 */
    uint8_t rsvd32[480];
    uint8_t vs[512];                /* 512: vendor specific, ignored */
} NvmexRateLimitData;
#define NVMEX_RL_DATA_SIZE 1024
NVMEX_CHECK_SIZE(NvmexRateLimitData, NVMEX_RL_DATA_SIZE);
#define NVMEX_RL_RLE 0x8000
#define NVMEX_RL_RLM 0x000f
#define NVMEX_RL_MAX_BWSF  5

/* Bytes per second of one unit at scale factor @bwsf */
uint64_t nvmex_rl_bw_unit(uint8_t bwsf);

void nvmex_bucket_init(NvmexBucket *b, uint64_t rate, uint64_t burst,
                       int64_t now_ns);
/* 0 when out of debt (after refilling to @now_ns), else ns to wait */
int64_t nvmex_bucket_wait(NvmexBucket *b, int64_t now_ns);
void nvmex_bucket_charge(NvmexBucket *b, uint64_t units);

/* Decode / encode the 1024-byte feature data; decode returns 0 or -1 */
int nvmex_rl_decode(const uint8_t *buf, NvmexRateLimit *rl);
void nvmex_rl_encode(const NvmexRateLimit *rl, uint8_t *buf);

void nvmex_limiter_configure(NvmexLimiter *l, const NvmexRateLimit *rl,
                             int64_t now_ns);
/*
 * Admit a command now or say how long to wait: 0 means admitted and
 * charged; otherwise the ns until it may be tried again.
 */
int64_t nvmex_limiter_admit(NvmexLimiter *l, int64_t now_ns, bool write,
                            uint64_t bytes);

#endif
