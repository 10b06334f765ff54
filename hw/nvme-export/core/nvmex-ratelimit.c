/*
 * nvme-export: rate limiter
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "hw/nvme-export/core/nvmex-ratelimit.h"
#include "hw/nvme-export/core/nvmex-spec.h"

#define NS_PER_S 1000000000LL

uint64_t nvmex_rl_bw_unit(uint8_t bwsf)
{
    static const uint64_t mib = 1ull << 20;
    static const uint64_t unit[] = {
        mib, 10 * mib, 100 * mib, 1024 * mib, 10240 * mib, 102400 * mib,
    };

    return bwsf <= NVMEX_RL_MAX_BWSF ? unit[bwsf] : 0;
}

void nvmex_bucket_init(NvmexBucket *b, uint64_t rate, uint64_t burst,
                       int64_t now_ns)
{
    b->rate = rate;
    b->burst = burst ? burst : 1;
    b->level_nu = 0;
    b->last_ns = now_ns;
}

static void nvmex_bucket_refill(NvmexBucket *b, int64_t now_ns)
{
    __int128 level, cap;

    if (now_ns <= b->last_ns) {
        return;
    }
    level = (__int128)b->level_nu + (__int128)(now_ns - b->last_ns) * b->rate;
    cap = (__int128)b->burst * NS_PER_S;
    b->level_nu = level > cap ? (int64_t)cap : (int64_t)level;
    b->last_ns = now_ns;
}

int64_t nvmex_bucket_wait(NvmexBucket *b, int64_t now_ns)
{
    if (!b->rate) {
        return 0;
    }
    nvmex_bucket_refill(b, now_ns);
    if (b->level_nu >= 0) {
        return 0;
    }
    return (-b->level_nu + b->rate - 1) / b->rate;
}

void nvmex_bucket_charge(NvmexBucket *b, uint64_t units)
{
    __int128 level;

    if (!b->rate) {
        return;
    }
    level = (__int128)b->level_nu - (__int128)units * NS_PER_S;
    /* Clamp the debt so an absurd command cannot wrap the level */
    b->level_nu = level < INT64_MIN / 2 ? INT64_MIN / 2 : (int64_t)level;
}

int nvmex_rl_decode(const uint8_t *buf, NvmexRateLimit *rl)
{
    const NvmexRateLimitData *d = (const NvmexRateLimitData *)buf;
    uint16_t rlc = nvmex_le16_to_cpu(d->rlc);

    memset(rl, 0, sizeof(*rl));
    rl->enabled = !!(rlc & NVMEX_RL_RLE);
    rl->mode = rlc & NVMEX_RL_RLM;
    rl->bwsf = d->bwsf;
    rl->tbwv = nvmex_le64_to_cpu(d->tbwv);
    rl->wbwv = nvmex_le64_to_cpu(d->wbwv);
    rl->tiops = nvmex_le32_to_cpu(d->tiops);
    rl->wiops = nvmex_le32_to_cpu(d->wiops);
    if (rl->mode != 0 || rl->bwsf > NVMEX_RL_MAX_BWSF) {
        return -1;
    }
    return 0;
}

void nvmex_rl_encode(const NvmexRateLimit *rl, uint8_t *buf)
{
    NvmexRateLimitData *d = (NvmexRateLimitData *)buf;

    memset(d, 0, sizeof(*d));
    d->rlc = nvmex_cpu_to_le16((rl->enabled ? NVMEX_RL_RLE : 0) |
                               (rl->mode & NVMEX_RL_RLM));
    d->bwsf = rl->bwsf;
    d->tbwv = nvmex_cpu_to_le64(rl->tbwv);
    d->wbwv = nvmex_cpu_to_le64(rl->wbwv);
    d->tiops = nvmex_cpu_to_le32(rl->tiops);
    d->wiops = nvmex_cpu_to_le32(rl->wiops);
}

void nvmex_limiter_configure(NvmexLimiter *l, const NvmexRateLimit *rl,
                             int64_t now_ns)
{
    uint64_t unit = nvmex_rl_bw_unit(rl->bwsf);
    uint64_t rate[NVMEX_RL_NBUCKETS] = { 0 };

    l->cfg = *rl;
    if (rl->enabled) {
        rate[NVMEX_RL_TOTAL_IOPS] = rl->tiops;
        rate[NVMEX_RL_TOTAL_BW] = rl->tbwv * unit;
        rate[NVMEX_RL_WRITE_IOPS] = rl->wiops;
        rate[NVMEX_RL_WRITE_BW] = rl->wbwv * unit;
    }
    for (int i = 0; i < NVMEX_RL_NBUCKETS; i++) {
        /* Bursts of 1/100 s: tight enough to measure, loose enough to
         * keep a queue busy. */
        nvmex_bucket_init(&l->b[i], rate[i], rate[i] / 100, now_ns);
    }
}

int64_t nvmex_limiter_admit(NvmexLimiter *l, int64_t now_ns, bool write,
                            uint64_t bytes)
{
    int64_t wait = 0;
    int n = write ? NVMEX_RL_NBUCKETS : NVMEX_RL_WRITE_IOPS;

    if (!l->cfg.enabled) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        int64_t w = nvmex_bucket_wait(&l->b[i], now_ns);

        if (w > wait) {
            wait = w;
        }
    }
    if (wait) {
        l->delayed++;
        return wait;
    }
    for (int i = 0; i < n; i++) {
        bool bw = i == NVMEX_RL_TOTAL_BW || i == NVMEX_RL_WRITE_BW;

        nvmex_bucket_charge(&l->b[i], bw ? bytes : 1);
    }
    return 0;
}
