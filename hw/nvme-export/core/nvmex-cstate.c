/*
 * The TP4159 Controller State buffer: encoder and checking decoder.
 * See include/hw/nvme-export/core/nvmex-cstate.h for the layout.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "hw/nvme-export/core/nvmex-cstate.h"
#include "hw/nvme-export/core/nvmex-spec.h"

/* b7f4ea55-ecfc-4d45-b73f-e25eaa8bcc54: iolab nvme-export state v1 */
const uint8_t nvmex_cs_vendor_uuid[16] = {
    0xb7, 0xf4, 0xea, 0x55, 0xec, 0xfc, 0x4d, 0x45,
    0xb7, 0x3f, 0xe2, 0x5e, 0xaa, 0x8b, 0xcc, 0x54,
};

static size_t nvmex_cs_nvme_size(const NvmexCsImage *img)
{
    if (img->no_nvme_state) {
        return 0;
    }
    return NVMEX_CS_NVME_HDR_SIZE +
           ((size_t)img->nsq + img->ncq) * NVMEX_CS_QUEUE_SIZE;
}

static size_t nvmex_cs_vendor_size(const NvmexCsImage *img)
{
    if (!img->has_vendor) {
        return 0;
    }
    return NVMEX_CS_VENDOR_HDR_SIZE +
           (size_t)img->vendor.nparked * NVMEX_CS_PARKED_SIZE;
}

size_t nvmex_cs_size(const NvmexCsImage *img)
{
    return NVMEX_CS_HDR_SIZE + nvmex_cs_nvme_size(img) +
           nvmex_cs_vendor_size(img);
}

static void nvmex_cs_encode_vendor(const NvmexCsVendor *v, uint8_t *p,
                                   size_t size)
{
    memcpy(p, nvmex_cs_vendor_uuid, 16);
    nvmex_st16(p + 16, NVMEX_CS_VENDOR_VERSION);
    nvmex_st32(p + 20, size);
    nvmex_st32(p + 24, v->arbitration);
    nvmex_st32(p + 28, v->power_mgmt);
    nvmex_st32(p + 32, v->error_recovery);
    nvmex_st32(p + 36, v->irq_coalescing);
    nvmex_st32(p + 40, v->write_atomic);
    nvmex_st32(p + 44, v->async_event_cfg);
    nvmex_st16(p + 48, v->temp_over);
    nvmex_st16(p + 50, v->temp_under);
    nvmex_st16(p + 52, v->nsqa);
    nvmex_st16(p + 54, v->ncqa);
    p[56] = v->vwc;
    p[57] = v->nq_set;
    nvmex_st32(p + 64, v->nparked);
    p += NVMEX_CS_VENDOR_HDR_SIZE;
    for (uint32_t i = 0; i < v->nparked; i++, p += NVMEX_CS_PARKED_SIZE) {
        const NvmexCsParked *k = &v->parked[i];

        nvmex_st16(p + 0, k->cqid);
        nvmex_st16(p + 2, k->sqid);
        nvmex_st16(p + 4, k->cid);
        nvmex_st16(p + 6, k->status);
        nvmex_st32(p + 8, k->dw0);
    }
}

/* The NVMe-defined part (version 0) at @p */
static void nvmex_cs_encode_nvme(const NvmexCsImage *img, uint8_t *p)
{
    nvmex_st16(p + 0, 0);
    nvmex_st16(p + 2, img->nsq);
    nvmex_st16(p + 4, img->ncq);
    p += NVMEX_CS_NVME_HDR_SIZE;
    for (int i = 0; i < img->nsq; i++, p += NVMEX_CS_QUEUE_SIZE) {
        const NvmexCsSq *q = &img->sq[i];

        nvmex_st64(p + 0, q->prp1);
        nvmex_st16(p + 8, q->qsize);
        nvmex_st16(p + 10, q->qid);
        nvmex_st16(p + 12, q->cqid);
        nvmex_st16(p + 14, q->attr);
        nvmex_st16(p + 16, q->head);
        nvmex_st16(p + 18, q->tail);
    }
    for (int i = 0; i < img->ncq; i++, p += NVMEX_CS_QUEUE_SIZE) {
        const NvmexCsCq *q = &img->cq[i];

        nvmex_st64(p + 0, q->prp1);
        nvmex_st16(p + 8, q->qsize);
        nvmex_st16(p + 10, q->qid);
        nvmex_st16(p + 12, q->head);
        nvmex_st16(p + 14, q->tail);
        nvmex_st32(p + 16, q->attr);
    }
}

size_t nvmex_cs_encode(const NvmexCsImage *img, uint8_t *buf)
{
    size_t size = nvmex_cs_size(img);
    size_t nvme = nvmex_cs_nvme_size(img);

    memset(buf, 0, size);
    nvmex_st16(buf + 0, 0);
    buf[2] = img->suspended ? 1 : 0;
    nvmex_st64(buf + 16, nvme / 4);
    nvmex_st64(buf + 32, nvmex_cs_vendor_size(img) / 4);
    if (nvme) {
        nvmex_cs_encode_nvme(img, buf + NVMEX_CS_HDR_SIZE);
    }
    if (img->has_vendor) {
        nvmex_cs_encode_vendor(&img->vendor, buf + NVMEX_CS_HDR_SIZE + nvme,
                               nvmex_cs_vendor_size(img));
    }
    return size;
}

static bool nvmex_cs_fail(NvmexCsError *err, size_t offset, const char *why)
{
    err->offset = offset;
    err->why = why;
    return false;
}

static int nvmex_cs_find_cq(const NvmexCsImage *img, uint16_t qid)
{
    for (int i = 0; i < img->ncq; i++) {
        if (img->cq[i].qid == qid) {
            return i;
        }
    }
    return -1;
}

static bool nvmex_cs_decode_queues(const uint8_t *p, size_t base,
                                   NvmexCsImage *img, NvmexCsError *err)
{
    uint64_t seen_sq = 0, seen_cq = 0;
    size_t off = base + NVMEX_CS_NVME_HDR_SIZE;

    for (int i = 0; i < img->ncq; i++) {
        const uint8_t *e = p + NVMEX_CS_NVME_HDR_SIZE +
                           ((size_t)img->nsq + i) * NVMEX_CS_QUEUE_SIZE;
        size_t eo = off + ((size_t)img->nsq + i) * NVMEX_CS_QUEUE_SIZE;
        NvmexCsCq *q = &img->cq[i];

        q->prp1 = nvmex_ld64(e + 0);
        q->qsize = nvmex_ld16(e + 8);
        q->qid = nvmex_ld16(e + 10);
        q->head = nvmex_ld16(e + 12);
        q->tail = nvmex_ld16(e + 14);
        q->attr = nvmex_ld32(e + 16);
        if (q->qid == 0 || q->qid > NVMEX_CS_MAX_QUEUES ||
            (seen_cq & (1ull << (q->qid - 1)))) {
            return nvmex_cs_fail(err, eo + 10, "I/O CQ id missing, out of "
                                 "range or repeated");
        }
        seen_cq |= 1ull << (q->qid - 1);
        if (q->qsize < 1) {
            return nvmex_cs_fail(err, eo + 8, "I/O CQ smaller than 2 "
                                 "entries");
        }
        if (q->head > q->qsize || q->tail > q->qsize) {
            return nvmex_cs_fail(err, q->head > q->qsize ? eo + 12 : eo + 14,
                                 "I/O CQ head or tail outside the queue");
        }
        if (q->attr & 0xfff8u) {
            return nvmex_cs_fail(err, eo + 16, "I/O CQ attributes reserved "
                                 "bits set");
        }
    }
    for (int i = 0; i < img->nsq; i++) {
        const uint8_t *e = p + NVMEX_CS_NVME_HDR_SIZE +
                           (size_t)i * NVMEX_CS_QUEUE_SIZE;
        size_t eo = off + (size_t)i * NVMEX_CS_QUEUE_SIZE;
        NvmexCsSq *q = &img->sq[i];

        q->prp1 = nvmex_ld64(e + 0);
        q->qsize = nvmex_ld16(e + 8);
        q->qid = nvmex_ld16(e + 10);
        q->cqid = nvmex_ld16(e + 12);
        q->attr = nvmex_ld16(e + 14);
        q->head = nvmex_ld16(e + 16);
        q->tail = nvmex_ld16(e + 18);
        if (q->qid == 0 || q->qid > NVMEX_CS_MAX_QUEUES ||
            (seen_sq & (1ull << (q->qid - 1)))) {
            return nvmex_cs_fail(err, eo + 10, "I/O SQ id missing, out of "
                                 "range or repeated");
        }
        seen_sq |= 1ull << (q->qid - 1);
        if (nvmex_cs_find_cq(img, q->cqid) < 0) {
            return nvmex_cs_fail(err, eo + 12, "I/O SQ names a CQ the state "
                                 "does not carry");
        }
        if (q->qsize < 1) {
            return nvmex_cs_fail(err, eo + 8, "I/O SQ smaller than 2 "
                                 "entries");
        }
        if (q->head > q->qsize || q->tail > q->qsize) {
            return nvmex_cs_fail(err, q->head > q->qsize ? eo + 16 : eo + 18,
                                 "I/O SQ head or tail outside the queue");
        }
        if (q->attr & ~7u) {
            return nvmex_cs_fail(err, eo + 14, "I/O SQ attributes reserved "
                                 "bits set");
        }
    }
    return true;
}

static bool nvmex_cs_decode_vendor(const uint8_t *p, size_t base, size_t len,
                                   NvmexCsImage *img, NvmexCsError *err)
{
    NvmexCsVendor *v = &img->vendor;

    if (len < NVMEX_CS_VENDOR_HDR_SIZE) {
        return nvmex_cs_fail(err, base, "vendor state shorter than its "
                             "header");
    }
    if (memcmp(p, nvmex_cs_vendor_uuid, 16)) {
        return nvmex_cs_fail(err, base, "vendor state of another UUID");
    }
    if (nvmex_ld16(p + 16) != NVMEX_CS_VENDOR_VERSION) {
        return nvmex_cs_fail(err, base + 16, "vendor state version unknown");
    }
    if (nvmex_ld32(p + 20) != len) {
        return nvmex_cs_fail(err, base + 20, "vendor state length disagrees "
                             "with VSS");
    }
    v->arbitration = nvmex_ld32(p + 24);
    v->power_mgmt = nvmex_ld32(p + 28);
    v->error_recovery = nvmex_ld32(p + 32);
    v->irq_coalescing = nvmex_ld32(p + 36);
    v->write_atomic = nvmex_ld32(p + 40);
    v->async_event_cfg = nvmex_ld32(p + 44);
    v->temp_over = nvmex_ld16(p + 48);
    v->temp_under = nvmex_ld16(p + 50);
    v->nsqa = nvmex_ld16(p + 52);
    v->ncqa = nvmex_ld16(p + 54);
    v->vwc = p[56];
    v->nq_set = p[57];
    if (v->nsqa < 1 || v->nsqa > NVMEX_CS_MAX_QUEUES ||
        v->ncqa < 1 || v->ncqa > NVMEX_CS_MAX_QUEUES) {
        return nvmex_cs_fail(err, base + 52, "queue counts out of range");
    }
    if (v->vwc > 1 || v->nq_set > 1) {
        return nvmex_cs_fail(err, base + 56, "flag not 0 or 1");
    }
    v->nparked = nvmex_ld32(p + 64);
    if (v->nparked > NVMEX_CS_MAX_PARKED ||
        len != NVMEX_CS_VENDOR_HDR_SIZE +
               (size_t)v->nparked * NVMEX_CS_PARKED_SIZE) {
        return nvmex_cs_fail(err, base + 64, "parked completion count "
                             "disagrees with the length");
    }
    for (int i = 0; i < img->nsq; i++) {
        if (img->sq[i].qid > v->nsqa) {
            return nvmex_cs_fail(err, base + 52, "an I/O SQ id beyond the "
                                 "allocated queues");
        }
    }
    for (int i = 0; i < img->ncq; i++) {
        if (img->cq[i].qid > v->ncqa) {
            return nvmex_cs_fail(err, base + 54, "an I/O CQ id beyond the "
                                 "allocated queues");
        }
    }
    for (uint32_t i = 0; i < v->nparked; i++) {
        const uint8_t *e = p + NVMEX_CS_VENDOR_HDR_SIZE +
                           (size_t)i * NVMEX_CS_PARKED_SIZE;
        size_t eo = base + NVMEX_CS_VENDOR_HDR_SIZE +
                    (size_t)i * NVMEX_CS_PARKED_SIZE;
        NvmexCsParked *k = &v->parked[i];
        bool sq_found = false;

        k->cqid = nvmex_ld16(e + 0);
        k->sqid = nvmex_ld16(e + 2);
        k->cid = nvmex_ld16(e + 4);
        k->status = nvmex_ld16(e + 6);
        k->dw0 = nvmex_ld32(e + 8);
        for (int j = 0; j < img->nsq; j++) {
            if (img->sq[j].qid == k->sqid && img->sq[j].cqid == k->cqid) {
                sq_found = true;
            }
        }
        if (!sq_found) {
            return nvmex_cs_fail(err, eo, "parked completion of a queue "
                                 "pair the state does not carry");
        }
    }
    return true;
}

bool nvmex_cs_decode(const uint8_t *buf, size_t len, NvmexCsImage *img,
                     NvmexCsError *err)
{
    uint64_t nvmecss, vss;
    size_t nvme_len, vendor_len;
    const uint8_t *p;

    memset(img, 0, sizeof(*img));
    if (len < NVMEX_CS_HDR_SIZE + NVMEX_CS_NVME_HDR_SIZE) {
        return nvmex_cs_fail(err, 0, "state shorter than its headers");
    }
    if (nvmex_ld16(buf) != 0) {
        return nvmex_cs_fail(err, 0, "state header version unknown");
    }
    if (buf[2] & ~1u) {
        return nvmex_cs_fail(err, 2, "CSATTR reserved bits set");
    }
    img->suspended = buf[2] & 1;
    nvmecss = nvmex_ld64(buf + 16);
    vss = nvmex_ld64(buf + 32);
    if (nvmex_ld64(buf + 24) || nvmecss > NVMEX_CS_MAX_SIZE / 4) {
        return nvmex_cs_fail(err, 16, "NVMECSS out of range");
    }
    if (nvmex_ld64(buf + 40) || vss > NVMEX_CS_MAX_SIZE / 4) {
        return nvmex_cs_fail(err, 32, "VSS out of range");
    }
    nvme_len = nvmecss * 4;
    vendor_len = vss * 4;
    if (NVMEX_CS_HDR_SIZE + nvme_len + vendor_len != len) {
        return nvmex_cs_fail(err, 16, "NVMECSS and VSS disagree with the "
                             "length transferred");
    }
    if (nvme_len < NVMEX_CS_NVME_HDR_SIZE) {
        return nvmex_cs_fail(err, 16, "NVMe-defined state shorter than its "
                             "header");
    }

    p = buf + NVMEX_CS_HDR_SIZE;
    if (nvmex_ld16(p) != 0) {
        return nvmex_cs_fail(err, NVMEX_CS_HDR_SIZE,
                             "NVMe-defined state version unknown");
    }
    img->nsq = nvmex_ld16(p + 2);
    img->ncq = nvmex_ld16(p + 4);
    if (img->nsq > NVMEX_CS_MAX_QUEUES || img->ncq > NVMEX_CS_MAX_QUEUES) {
        return nvmex_cs_fail(err, NVMEX_CS_HDR_SIZE + 2,
                             "more queues than a controller has");
    }
    if (nvme_len != NVMEX_CS_NVME_HDR_SIZE +
                    ((size_t)img->nsq + img->ncq) * NVMEX_CS_QUEUE_SIZE) {
        return nvmex_cs_fail(err, 16, "NVMECSS disagrees with NIOSQ and "
                             "NIOCQ");
    }
    if (!nvmex_cs_decode_queues(p, NVMEX_CS_HDR_SIZE, img, err)) {
        return false;
    }
    if (vendor_len) {
        img->has_vendor = true;
        return nvmex_cs_decode_vendor(p + nvme_len,
                                      NVMEX_CS_HDR_SIZE + nvme_len,
                                      vendor_len, img, err);
    }
    return true;
}
