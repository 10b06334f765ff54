/*
 * nvme-export: PRP and SGL walkers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <string.h>

#include "hw/nvme-export/core/nvmex-dptr.h"
#include "hw/nvme-export/core/nvmex-spec.h"

/* Merges adjacent segments so the block layer sees few, large pieces */
typedef struct NvmexMerger {
    NvmexEmit emit;
    void *opaque;
    uint64_t addr, len;
} NvmexMerger;

static uint16_t nvmex_merge(NvmexMerger *m, uint64_t addr, uint64_t len)
{
    uint16_t st;

    if (!len) {
        return NVMEX_SUCCESS;
    }
    if (m->len && m->addr + m->len == addr) {
        m->len += len;
        return NVMEX_SUCCESS;
    }
    if (m->len) {
        st = m->emit(m->opaque, m->addr, m->len);
        if (st) {
            return st;
        }
    }
    m->addr = addr;
    m->len = len;
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_merge_flush(NvmexMerger *m)
{
    return m->len ? m->emit(m->opaque, m->addr, m->len) : NVMEX_SUCCESS;
}

#define NVMEX_PRP_BATCH 64

uint16_t nvmex_prp_walk(uint64_t prp1, uint64_t prp2, uint64_t len,
                        uint32_t page_size, NvmexDmaRead rd, NvmexEmit emit,
                        void *opaque)
{
    NvmexMerger m = { .emit = emit, .opaque = opaque };
    uint64_t mask = page_size - 1;
    uint64_t first, left, list, hops = 0;
    uint64_t ents[NVMEX_PRP_BATCH];     /* little-endian PRP entries */
    uint16_t st;

    if (!len) {
        return NVMEX_SUCCESS;
    }
    if (prp1 & 3) {
        return NVMEX_PRP_OFFSET_INVALID;
    }
    first = page_size - (prp1 & mask);
    if (first > len) {
        first = len;
    }
    st = nvmex_merge(&m, prp1, first);
    if (st) {
        return st;
    }
    left = len - first;
    if (!left) {
        return nvmex_merge_flush(&m);
    }
    if (left <= page_size) {
        if (prp2 & mask) {
            return NVMEX_PRP_OFFSET_INVALID;
        }
        st = nvmex_merge(&m, prp2, left);
        return st ? st : nvmex_merge_flush(&m);
    }

    /* PRP2 is a list pointer; its first list may start mid-page */
    list = prp2;
    if (list & 3) {
        return NVMEX_PRP_OFFSET_INVALID;
    }
    while (left) {
        uint64_t in_page = (page_size - (list & mask)) / 8;
        uint64_t pages = (left + page_size - 1) / page_size;
        /* The last slot of a list page chains on when more follow */
        bool chains = pages > in_page;
        uint64_t want = chains ? in_page : pages;
        uint64_t done = 0;

        /* A list page holding only its link would loop forever */
        if (++hops > len / page_size + 2) {
            return NVMEX_PRP_OFFSET_INVALID;
        }
        while (done < want) {
            uint64_t n = want - done;

            if (n > NVMEX_PRP_BATCH) {
                n = NVMEX_PRP_BATCH;
            }
            if (rd(opaque, list + done * 8, ents, n * sizeof(ents[0]))) {
                return NVMEX_DATA_TRANSFER_ERROR;
            }
            for (uint64_t i = 0; i < n; i++) {
                uint64_t e = nvmex_le64_to_cpu(ents[i]);
                bool is_link = chains && done + i == in_page - 1;

                if (is_link) {
                    if (e & 3) {
                        return NVMEX_PRP_OFFSET_INVALID;
                    }
                    list = e;
                    break;
                }
                if (e & mask) {
                    return NVMEX_PRP_OFFSET_INVALID;
                }
                uint64_t chunk = left < page_size ? left : page_size;
                st = nvmex_merge(&m, e, chunk);
                if (st) {
                    return st;
                }
                left -= chunk;
            }
            done += n;
        }
        if (!chains) {
            break;
        }
    }
    return nvmex_merge_flush(&m);
}

#define NVMEX_SGL_BATCH 16

uint16_t nvmex_sgl_walk(const uint8_t *sgl1, uint64_t len, NvmexDmaRead rd,
                        NvmexEmit emit, void *opaque)
{
    NvmexMerger m = { .emit = emit, .opaque = opaque };
    NvmexSglDesc descs[NVMEX_SGL_BATCH];
    NvmexSglDesc cur;
    uint64_t left = len;
    unsigned seen = 0;
    uint16_t st;

    memcpy(&cur, sgl1, sizeof(cur));
    for (;;) {
        uint8_t type = NVMEX_SGL_TYPE(cur.type);
        uint8_t sub = NVMEX_SGL_SUBTYPE(cur.type);
        uint64_t addr = nvmex_le64_to_cpu(cur.addr);
        uint32_t dlen = nvmex_le32_to_cpu(cur.len);
        uint64_t count, i;
        bool last_seg;

        if (type == NVMEX_SGL_DATA_BLOCK) {
            /* The whole SGL was this one descriptor */
            if (sub != 0) {
                return NVMEX_SGL_DESC_TYPE_INVALID;
            }
            if (dlen != left) {
                return NVMEX_DATA_SGL_LEN_INVALID;
            }
            st = nvmex_merge(&m, addr, dlen);
            return st ? st : nvmex_merge_flush(&m);
        }
        if (type != NVMEX_SGL_SEGMENT && type != NVMEX_SGL_LAST_SEGMENT) {
            return NVMEX_SGL_DESC_TYPE_INVALID;
        }
        if (sub != 0) {
            return NVMEX_SGL_DESC_TYPE_INVALID;
        }
        if (dlen == 0 || dlen % sizeof(NvmexSglDesc)) {
            return NVMEX_INVALID_NUM_SGL_DESCS;
        }
        last_seg = type == NVMEX_SGL_LAST_SEGMENT;
        count = dlen / sizeof(NvmexSglDesc);
        if (seen + count > NVMEX_SGL_MAX_DESCS) {
            return NVMEX_INVALID_NUM_SGL_DESCS;
        }
        seen += count;

        for (i = 0; i < count; i += NVMEX_SGL_BATCH) {
            uint64_t n = count - i < NVMEX_SGL_BATCH ? count - i : NVMEX_SGL_BATCH;

            if (rd(opaque, addr + i * sizeof(NvmexSglDesc), descs,
                   n * sizeof(NvmexSglDesc))) {
                return NVMEX_DATA_TRANSFER_ERROR;
            }
            for (uint64_t j = 0; j < n; j++) {
                const NvmexSglDesc *d = &descs[j];
                uint8_t dt = NVMEX_SGL_TYPE(d->type);
                uint8_t ds = NVMEX_SGL_SUBTYPE(d->type);
                bool final = i + j == count - 1;
                uint32_t l = nvmex_le32_to_cpu(d->len);

                if (dt == NVMEX_SGL_SEGMENT || dt == NVMEX_SGL_LAST_SEGMENT) {
                    /* Only a segment's final descriptor may chain */
                    if (!final || last_seg) {
                        return NVMEX_INVALID_SGL_SEG_DESC;
                    }
                    cur = *d;
                    break;
                }
                if (dt != NVMEX_SGL_DATA_BLOCK || ds != 0) {
                    return NVMEX_SGL_DESC_TYPE_INVALID;
                }
                if (l > left) {
                    return NVMEX_DATA_SGL_LEN_INVALID;
                }
                st = nvmex_merge(&m, nvmex_le64_to_cpu(d->addr), l);
                if (st) {
                    return st;
                }
                left -= l;
                if (final) {
                    /* Data block ends this segment: the SGL ends here */
                    if (left) {
                        return NVMEX_DATA_SGL_LEN_INVALID;
                    }
                    return nvmex_merge_flush(&m);
                }
            }
        }
        if (last_seg) {
            /* unreachable: a last segment ends in a data block above */
            return NVMEX_INVALID_SGL_SEG_DESC;
        }
    }
}
