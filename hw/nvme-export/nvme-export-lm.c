/*
 * nvme-export: a managed controller's side of TP4159 host-managed live
 * migration - what its management controller's Migration Send (41h) and
 * Migration Receive (42h) do to it.
 *
 *   - Suspend: no new command is fetched from any of its queues (the
 *     fetching bottom half checks lm.suspended); commands in flight finish
 *     and post their completions, or park them when a CQ is full.
 *   - Resume: fetching continues from each SQ head, where it stopped.
 *   - Get Controller State: nvmex_lm_capture() reads its I/O queues (the
 *     NVMe-defined part) and, on request, the rest (the vendor part:
 *     features and parked completions; core/nvmex-cstate.h has the
 *     layout).
 *   - Set Controller State: nvmex_lm_apply() checks the decoded state
 *     against this controller's own limits and replaces its I/O queues.
 *
 * The admin queue, registers, namespaces, pending asynchronous event
 * requests and logs are not part of the state: the host that manages the
 * migration owns the admin queue (as TP4159 assumes) and sets up the
 * destination's itself.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "system/block-backend.h"
#include "nvme-export-internal.h"
#include "trace.h"

QEMU_BUILD_BUG_ON(NVMEX_CS_MAX_QUEUES < NVMEX_MAX_IOQS);
QEMU_BUILD_BUG_ON(NVMEX_CS_MAX_PARKED < NVMEX_MAX_PARKED);

void nvmex_lm_stop_fetching(NvmeExport *c)
{
    /* lm.suspended is already set: nothing new is fetched from here on */
    nvmex_quiesce(c);
}

void nvmex_lm_start_fetching(NvmeExport *c)
{
    nvmex_kick(c);
    /* Completions parked meanwhile go out when their CQ has room */
    qemu_bh_schedule(c->cq_bh);
}

void nvmex_lm_capture(NvmeExport *c, bool vendor, NvmexCsImage *img)
{
    NvmexCtrlState *s = &c->st;

    memset(img, 0, sizeof(*img));
    img->suspended = c->lm.suspended;
    for (int i = 1; i < NVMEX_NQUEUES; i++) {
        NvmexSQ *sq = &s->sq[i];
        NvmexCQ *cq = &s->cq[i];

        if (sq->valid) {
            img->sq[img->nsq++] = (NvmexCsSq) {
                .prp1 = sq->dma_addr, .qsize = sq->size - 1, .qid = i,
                .cqid = sq->cqid,
                .attr = NVMEX_CS_SQA_PC | (sq->prio & 3) << 1,
                .head = sq->head, .tail = sq->tail,
            };
        }
        if (cq->valid) {
            img->cq[img->ncq++] = (NvmexCsCq) {
                .prp1 = cq->dma_addr, .qsize = cq->size - 1, .qid = i,
                .head = cq->head, .tail = cq->tail,
                .attr = NVMEX_CS_CQA_PC |
                        (cq->ien ? NVMEX_CS_CQA_IEN : 0) |
                        (cq->phase ? NVMEX_CS_CQA_S0PT : 0) |
                        (uint32_t)cq->vector << 16,
            };
        }
    }
    if (!vendor) {
        return;
    }
    img->has_vendor = true;
    img->vendor = (NvmexCsVendor) {
        .arbitration = s->feat.arbitration,
        .power_mgmt = s->feat.power_mgmt,
        .error_recovery = s->feat.error_recovery,
        .irq_coalescing = s->feat.irq_coalescing,
        .write_atomic = s->feat.write_atomic,
        .async_event_cfg = s->feat.async_event_cfg,
        .temp_over = s->feat.temp_over,
        .temp_under = s->feat.temp_under,
        .nsqa = s->feat.nsqa,
        .ncqa = s->feat.ncqa,
        .vwc = s->feat.vwc,
        .nq_set = s->feat.nq_set,
    };
    for (int i = 1; i < NVMEX_NQUEUES; i++) {
        NvmexReq *r;

        if (!s->cq[i].valid) {
            continue;
        }
        QTAILQ_FOREACH(r, &c->cq_wait[i], entry) {
            if (img->vendor.nparked == NVMEX_CS_MAX_PARKED) {
                break;          /* cannot happen: NVMEX_MAX_PARKED is less */
            }
            img->vendor.parked[img->vendor.nparked++] = (NvmexCsParked) {
                .cqid = i, .sqid = r->sqid, .cid = r->cid,
                .status = r->status, .dw0 = r->dw0,
            };
        }
    }
}

/* What the state asks of this controller that it cannot give */
static const char *nvmex_lm_misfit(NvmeExport *c, const NvmexCsImage *img)
{
    uint16_t nsqa = img->has_vendor ? img->vendor.nsqa : c->st.feat.nsqa;
    uint16_t ncqa = img->has_vendor ? img->vendor.ncqa : c->st.feat.ncqa;

    if (nsqa > c->tmpl.max_ioqs || ncqa > c->tmpl.max_ioqs) {
        return "more I/O queues than this controller offers";
    }
    if (img->has_vendor && img->vendor.vwc && !c->tmpl.vwc) {
        return "a volatile write cache this controller does not have";
    }
    for (int i = 0; i < img->ncq; i++) {
        const NvmexCsCq *q = &img->cq[i];

        if (q->qid > ncqa) {
            return "an I/O CQ id beyond the allocated queues";
        }
        if ((uint32_t)q->qsize + 1 > c->tmpl.mqes) {
            return "an I/O CQ larger than MQES";
        }
        if (!(q->attr & NVMEX_CS_CQA_PC) || !q->prp1 ||
            (q->prp1 & (NVMEX_PAGE_SIZE - 1))) {
            return "an I/O CQ not contiguous and page aligned";
        }
        if ((q->attr & NVMEX_CS_CQA_IEN) && NVMEX_CS_CQA_IV(q->attr) >= c->nvec) {
            return "an I/O CQ interrupt vector this controller lacks";
        }
    }
    for (int i = 0; i < img->nsq; i++) {
        const NvmexCsSq *q = &img->sq[i];

        if (q->qid > nsqa) {
            return "an I/O SQ id beyond the allocated queues";
        }
        if ((uint32_t)q->qsize + 1 > c->tmpl.mqes) {
            return "an I/O SQ larger than MQES";
        }
        if (!(q->attr & NVMEX_CS_SQA_PC) || !q->prp1 ||
            (q->prp1 & (NVMEX_PAGE_SIZE - 1))) {
            return "an I/O SQ not contiguous and page aligned";
        }
    }
    if (img->has_vendor &&
        c->inflight + img->vendor.nparked > NVMEX_MAX_PARKED) {
        return "more parked completions than this controller holds";
    }
    return NULL;
}

static void nvmex_lm_drop_io_queues(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;
    NvmexReq *r;

    for (int i = 1; i < NVMEX_NQUEUES; i++) {
        while ((r = QTAILQ_FIRST(&c->cq_wait[i]))) {
            QTAILQ_REMOVE(&c->cq_wait[i], r, entry);
            nvmex_req_put(r);
        }
        if (s->sq[i].valid) {
            s->sq[i].valid = 0;
            s->sq[i].gen++;
        }
        s->cq[i].valid = 0;
        s->cq[i].nsq = 0;
        c->irq_pending[i] = false;
    }
}

uint16_t nvmex_lm_apply(NvmeExport *c, const NvmexCsImage *img,
                        const char **why)
{
    NvmexCtrlState *s = &c->st;

    if (!NVMEX_CC_EN(s->cc) || !(s->csts & NVMEX_CSTS_RDY)) {
        *why = "the controller is not enabled";
        return NVMEX_CMD_SEQ_ERROR | NVMEX_DNR;
    }
    *why = nvmex_lm_misfit(c, img);
    if (*why) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }

    nvmex_lm_drop_io_queues(c);
    if (img->has_vendor) {
        const NvmexCsVendor *v = &img->vendor;

        s->feat.arbitration = v->arbitration;
        s->feat.power_mgmt = v->power_mgmt;
        s->feat.error_recovery = v->error_recovery;
        s->feat.irq_coalescing = v->irq_coalescing;
        s->feat.write_atomic = v->write_atomic;
        s->feat.async_event_cfg = v->async_event_cfg;
        s->feat.temp_over = v->temp_over;
        s->feat.temp_under = v->temp_under;
        s->feat.nsqa = v->nsqa;
        s->feat.ncqa = v->ncqa;
        s->feat.vwc = v->vwc;
        s->feat.nq_set = v->nq_set;
        for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
            if (c->ns[i]) {
                blk_set_enable_write_cache(c->ns[i]->conf.blk,
                                           c->tmpl.vwc && s->feat.vwc);
            }
        }
    }
    for (int i = 0; i < img->ncq; i++) {
        const NvmexCsCq *q = &img->cq[i];

        s->cq[q->qid] = (NvmexCQ) {
            .dma_addr = q->prp1, .size = q->qsize + 1,
            .head = q->head, .tail = q->tail,
            .vector = NVMEX_CS_CQA_IV(q->attr),
            .phase = !!(q->attr & NVMEX_CS_CQA_S0PT),
            .ien = !!(q->attr & NVMEX_CS_CQA_IEN), .valid = 1,
        };
    }
    for (int i = 0; i < img->nsq; i++) {
        const NvmexCsSq *q = &img->sq[i];

        s->sq[q->qid] = (NvmexSQ) {
            .dma_addr = q->prp1, .size = q->qsize + 1,
            .head = q->head, .tail = q->tail, .cqid = q->cqid, .valid = 1,
            .prio = NVMEX_CS_SQA_QPRIO(q->attr),
            .gen = s->sq[q->qid].gen + 1,
        };
        s->cq[q->cqid].nsq++;
    }
    for (uint32_t i = 0; img->has_vendor && i < img->vendor.nparked; i++) {
        const NvmexCsParked *p = &img->vendor.parked[i];
        NvmexReq *r = nvmex_req_get(c);

        r->sqid = p->sqid;
        r->sq_gen = s->sq[p->sqid].gen;
        r->cid = p->cid;
        r->status = p->status;
        r->dw0 = p->dw0;
        QTAILQ_INSERT_TAIL(&c->cq_wait[p->cqid], r, entry);
    }
    return NVMEX_SUCCESS;
}
