/*
 * A Controller Data Queue ring (TP4159 User Data Migration Queue).
 * See include/hw/nvme-export/core/nvmex-cdq.h for the rules.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "hw/nvme-export/core/nvmex-cdq.h"
#include "hw/nvme-export/core/nvmex-spec.h"

bool nvmex_cdq_init(NvmexCdq *q, uint32_t size_dwords)
{
    const uint32_t entry_dwords = NVMEX_CDQ_ENTRY_SIZE / 4;

    memset(q, 0, sizeof(*q));
    if (size_dwords % entry_dwords ||
        size_dwords / entry_dwords < NVMEX_CDQ_MIN_ENTRIES) {
        return false;
    }
    q->nentries = size_dwords / entry_dwords;
    q->phase = 1;
    return true;
}

uint32_t nvmex_cdq_used(const NvmexCdq *q)
{
    return (q->tail + q->nentries - q->head) % q->nentries;
}

bool nvmex_cdq_has_free_slot(const NvmexCdq *q)
{
    /* One slot always stays empty: head == tail means empty */
    return nvmex_cdq_used(q) + 1 < q->nentries;
}

uint32_t nvmex_cdq_room(const NvmexCdq *q)
{
    uint32_t free_slots = q->nentries - 1 - nvmex_cdq_used(q);

    return free_slots ? free_slots - 1 : 0;
}

bool nvmex_cdq_set_head(NvmexCdq *q, uint32_t head)
{
    uint32_t moved, used;

    if (head >= q->nentries) {
        return false;
    }
    moved = (head + q->nentries - q->head) % q->nentries;
    used = nvmex_cdq_used(q);
    if (moved > used) {
        return false;
    }
    q->head = head;
    return true;
}

uint32_t nvmex_cdq_push(NvmexCdq *q, NvmexCdqEntry *e, bool *tpt_fired)
{
    uint32_t slot = q->tail;

    e->phase = q->phase;
    if (q->first_pending) {
        q->first_pending = false;
        if (e->esa == NVMEX_LM_ESA_NONE) {
            e->esa = NVMEX_LM_ESA_FIRST;
        }
    }
    if (++q->tail == q->nentries) {
        q->tail = 0;
        q->phase ^= 1;
    }
    *tpt_fired = q->tpt_enabled && q->tail == q->tpt;
    if (*tpt_fired) {
        q->tpt_enabled = false;     /* one shot: the host re-arms it */
    }
    return slot;
}

void nvmex_cdq_entry_encode(const NvmexCdqEntry *e,
                            uint8_t out[NVMEX_CDQ_ENTRY_SIZE])
{
    memset(out, 0, NVMEX_CDQ_ENTRY_SIZE);
    nvmex_st32(out + 0, e->nsid);
    nvmex_st32(out + 4, e->nlb);
    nvmex_st64(out + 8, e->slba);
    out[31] = (e->phase & 1) | (e->esa & 7) << 1 | (e->lbacir & 3) << 6;
}

void nvmex_cdq_entry_decode(const uint8_t in[NVMEX_CDQ_ENTRY_SIZE],
                            NvmexCdqEntry *e)
{
    e->nsid = nvmex_ld32(in + 0);
    e->nlb = nvmex_ld32(in + 4);
    e->slba = nvmex_ld64(in + 8);
    e->phase = in[31] & 1;
    e->esa = (NvmexLmEsa)((in[31] >> 1) & 7);
    e->lbacir = (NvmexLbacir)((in[31] >> 6) & 3);
}

int nvmex_cdq_create_cntlids(uint32_t dw11, uint16_t cntlid[2], bool *pc)
{
    uint16_t low = dw11 & 0xffff;

    *pc = dw11 & 1;
    if ((dw11 >> 16) || !*pc || !(low >> 1)) {
        cntlid[0] = dw11 >> 16;             /* the spec's CQS */
        return 1;
    }
    /* libnvme < 1.15: CNTLID in bits 15:0, its bit 0 lost under PC */
    cntlid[0] = low;
    cntlid[1] = low & ~1u;
    return 2;
}

bool nvmex_cdq_valid(const NvmexCdq *q)
{
    return q->nentries >= NVMEX_CDQ_MIN_ENTRIES && q->head < q->nentries &&
           q->tail < q->nentries && q->phase <= 1 &&
           (!q->tpt_enabled || q->tpt < q->nentries);
}
