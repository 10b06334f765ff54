/*
 * libFuzzer harness: the TP4159 Controller State decoder
 * (hw/nvme-export/core/nvmex-cstate.c)
 *
 * The input is the buffer a guest sends with Migration Send Set
 * Controller State, as is.  Checked:
 *
 * - a refusal names a byte offset inside the buffer (or 0) and a reason;
 * - an accepted state is exactly as long as its own encoding, holds no
 *   more than 64 queues of each kind, every SQ's CQ is in the state,
 *   every head and tail lies inside its queue, every parked completion
 *   belongs to a queue pair of the state;
 * - encoding what was accepted and decoding that again gives the same
 *   state (the decoder accepts what the encoder writes).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/nvme-export/core/nvmex-cstate.h"

static bool fuzz_has_cq(const NvmexCsImage *img, uint16_t qid)
{
    for (int i = 0; i < img->ncq; i++) {
        if (img->cq[i].qid == qid) {
            return true;
        }
    }
    return false;
}

static void fuzz_check_image(const NvmexCsImage *img)
{
    FUZZ_ASSERT(img->nsq <= NVMEX_CS_MAX_QUEUES);
    FUZZ_ASSERT(img->ncq <= NVMEX_CS_MAX_QUEUES);
    for (int i = 0; i < img->nsq; i++) {
        const NvmexCsSq *q = &img->sq[i];

        FUZZ_ASSERT(q->qid >= 1 && q->qid <= NVMEX_CS_MAX_QUEUES);
        FUZZ_ASSERT(fuzz_has_cq(img, q->cqid));
        FUZZ_ASSERT(q->qsize >= 1);
        FUZZ_ASSERT(q->head <= q->qsize && q->tail <= q->qsize);
    }
    for (int i = 0; i < img->ncq; i++) {
        const NvmexCsCq *q = &img->cq[i];

        FUZZ_ASSERT(q->qid >= 1 && q->qid <= NVMEX_CS_MAX_QUEUES);
        FUZZ_ASSERT(q->qsize >= 1);
        FUZZ_ASSERT(q->head <= q->qsize && q->tail <= q->qsize);
    }
    if (img->has_vendor) {
        FUZZ_ASSERT(img->vendor.nparked <= NVMEX_CS_MAX_PARKED);
        for (uint32_t i = 0; i < img->vendor.nparked; i++) {
            FUZZ_ASSERT(fuzz_has_cq(img, img->vendor.parked[i].cqid));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static NvmexCsImage img, again;
    NvmexCsError err = { 0 };
    uint8_t *enc;
    size_t len;

    if (size > NVMEX_CS_MAX_SIZE + 64) {
        return 0;
    }
    if (!nvmex_cs_decode(data, size, &img, &err)) {
        FUZZ_ASSERT(err.why && *err.why);
        FUZZ_ASSERT(err.offset == 0 || err.offset < size);
        return 0;
    }
    fuzz_check_image(&img);
    len = nvmex_cs_size(&img);
    FUZZ_ASSERT(len == size);
    enc = malloc(len);
    FUZZ_ASSERT(enc);
    FUZZ_ASSERT(nvmex_cs_encode(&img, enc) == len);
    FUZZ_ASSERT(nvmex_cs_decode(enc, len, &again, &err));
    FUZZ_ASSERT(again.nsq == img.nsq && again.ncq == img.ncq);
    FUZZ_ASSERT(!memcmp(again.sq, img.sq, sizeof(img.sq[0]) * img.nsq));
    FUZZ_ASSERT(!memcmp(again.cq, img.cq, sizeof(img.cq[0]) * img.ncq));
    FUZZ_ASSERT(again.has_vendor == img.has_vendor);
    FUZZ_ASSERT(again.vendor.nparked == img.vendor.nparked);
    free(enc);
    return 0;
}
