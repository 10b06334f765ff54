/*
 * nvme-export: admin commands
 *
 * Written from the NVM Express Base Specification 2.0 (5 admin command
 * set, 5.27 features) and TP4165 / TP4176.  Identify and log data are
 * encoded by core/nvmex-identify.c; the events the commands raise wait
 * in nvme-export-aen.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "block/block-io.h"
#include "block/graph-lock.h"
#include "system/block-backend.h"
#include "hw/nvme-export/core/nvmex-cmds.h"
#include "nvme-export-internal.h"
#include "trace.h"

/* A temperature threshold changed: the SMART warning and its event */
static void nvmex_check_temperature(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;
    uint16_t t = c->tmpl.temperature;
    bool bad = t > s->feat.temp_over || t < s->feat.temp_under;

    if (bad && !(s->smart.critical_warning & 2)) {
        s->smart.critical_warning |= 2;
        if (s->feat.async_event_cfg & 2) {
            nvmex_aen_raise(c, NVMEX_AET_SMART, NVMEX_AEI_SMART_TEMPERATURE,
                            NVMEX_LOG_SMART);
        }
    } else if (!bad) {
        s->smart.critical_warning &= ~2;
    }
}

/* ------------------------------------------------------------------ */
/* Admin commands                                                      */

static uint16_t nvmex_adm_identify(NvmexReq *r)
{
    NvmeExport *c = r->c;
    const NvmeIdentify *cmd = (const NvmeIdentify *)&r->cmd;
    uint8_t cns = cmd->cns, csi = cmd->csi;
    uint32_t nsid = le32_to_cpu(cmd->nsid);
    g_autofree uint8_t *buf = g_malloc0(NVMEX_ID_SIZE);
    NvmexNs *ns = nsid <= NVMEX_MAX_NSID ? c->ns[nsid] : NULL;
    const NvmexNsTemplate *nt = ns ? nvmex_template_ns(&c->tmpl, nsid, false)
                                   : NULL;
    bool ns_cmd = cns == NVMEX_CNS_NS || cns == NVMEX_CNS_NS_DESCS ||
                  cns == NVMEX_CNS_CS_NS || cns == NVMEX_CNS_CSI_INDEP_NS;

    trace_nvmex_identify(cns, nsid, csi);
    if (ns_cmd && (nsid == 0 || (nsid > c->tmpl.nn && nsid != 0xffffffff))) {
        return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
    }
    if ((cns == NVMEX_CNS_CS_NS || cns == NVMEX_CNS_CS_CTRL ||
         cns == NVMEX_CNS_CS_ACTIVE_NS) && csi != 0) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    switch (cns) {
    case NVMEX_CNS_CTRL:
        nvmex_id_ctrl(&c->tmpl, buf);
        break;
    case NVMEX_CNS_CS_CTRL:
        nvmex_id_ctrl_nvm(&c->tmpl, buf);
        break;
    case NVMEX_CNS_CS_FORMATS:
        if (!c->tmpl.hmlms) {
            nvmex_guest_error(c, "identify: CNS 20h on a controller that "
                              "is not a migration-management controller");
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        nvmex_id_cs_formats(buf);
        break;
    case NVMEX_CNS_UNDERLYING_CTRLS:
    case NVMEX_CNS_ESUB_TEMPLATES:
        if (!c->tmpl.hmlms) {
            nvmex_guest_error(c, "identify: CNS 0x%x on a controller that "
                              "is not a management controller", cns);
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        if (cns == NVMEX_CNS_ESUB_TEMPLATES) {
            memcpy(buf, nvmex_esub_template_uuid, 16);
        } else {
            nvmex_mgmt_id_underlying(c, le32_to_cpu(r->cmd.cdw10) >> 16,
                                     buf);
        }
        break;
    case NVMEX_CNS_NS:
        if (nsid == 0xffffffff) {
            /* Capabilities common to all namespaces: the formats */
            NvmexNsTemplate def;

            nvmex_ns_template_default(&def, 0);
            nvmex_id_ns(&c->tmpl, c->tmpl.nns ? &c->tmpl.ns[0] : &def, 0,
                        buf);
        } else if (ns) {
            nvmex_id_ns(&c->tmpl, nt, ns->geo.nsze, buf);
        }
        break;
    case NVMEX_CNS_CS_NS:
        if (ns) {
            nvmex_id_ns_nvm(&c->tmpl, nt, buf);
        }
        break;
    case NVMEX_CNS_CSI_INDEP_NS:
        if (ns) {
            nvmex_id_ns_indep(buf);
        }
        break;
    case NVMEX_CNS_NS_DESCS:
        if (!ns) {
            return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
        }
        nvmex_id_ns_descs(nt, buf);
        break;
    case NVMEX_CNS_ACTIVE_NS:
    case NVMEX_CNS_CS_ACTIVE_NS: {
        uint32_t ids[NVMEX_MAX_NS];
        int n = 0;

        if (nsid >= 0xfffffffe) {
            return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
        }
        for (int i = 0; i < c->tmpl.nns; i++) {
            uint32_t id = c->tmpl.ns[i].nsid;

            if (id <= NVMEX_MAX_NSID && c->ns[id]) {
                ids[n++] = id;
            }
        }
        nvmex_id_active_ns(ids, n, nsid, buf);
        break;
    }
    default:
        nvmex_guest_error(c, "identify: CNS 0x%x not supported", cns);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    return nvmex_xfer(r, buf, NVMEX_ID_SIZE, true);
}

static uint16_t nvmex_adm_get_log(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    const NvmexGetLogCmd *cmd = (const NvmexGetLogCmd *)&r->cmd;
    uint64_t off = le64_to_cpu(cmd->lpo);
    uint8_t lid = cmd->lid;
    bool rae = cmd->lsp_rae & NVMEX_GET_LOG_RAE;
    uint64_t len = (((uint64_t)le16_to_cpu(cmd->numdu) << 16 |
                     le16_to_cpu(cmd->numdl)) + 1) * 4;
    uint32_t nsid = le32_to_cpu(cmd->nsid);
    g_autofree uint8_t *log = NULL;
    g_autofree uint8_t *out = NULL;
    size_t size;
    uint16_t st;

    trace_nvmex_get_log(lid, off, len);
    switch (lid) {
    case NVMEX_LOG_ERROR:
        size = NVMEX_ERROR_LOG_ENTRIES * NVMEX_ERROR_ENTRY_SIZE;
        log = g_malloc0(size);
        for (int i = 0; i < NVMEX_ERROR_LOG_ENTRIES; i++) {
            nvmex_log_error_entry(&s->errlog[i],
                                  log + i * NVMEX_ERROR_ENTRY_SIZE);
        }
        break;
    case NVMEX_LOG_SMART:
        if (nsid != 0 && nsid != 0xffffffff) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        size = NVMEX_SMART_LOG_SIZE;
        log = g_malloc0(size);
        nvmex_log_smart(&c->tmpl, &s->smart, log);
        break;
    case NVMEX_LOG_FW_SLOT:
        size = NVMEX_FW_LOG_SIZE;
        log = g_malloc0(size);
        nvmex_log_fw_slot(&c->tmpl, log);
        break;
    case NVMEX_LOG_CHANGED_NS: {
        NvmexChangedNsLog *list;

        size = sizeof(*list);
        log = g_malloc0(size);
        list = (NvmexChangedNsLog *)log;
        for (int i = 0; i < s->changed_ns_count; i++) {
            list->nsid[i] = cpu_to_le32(s->changed_ns[i]);
        }
        break;
    }
    case NVMEX_LOG_CMD_EFFECTS:
        size = NVMEX_EFFECTS_LOG_SIZE;
        log = g_malloc0(size);
        nvmex_log_cmd_effects(&c->tmpl, log);
        break;
    default:
        nvmex_guest_error(c, "get log page: LID 0x%x not supported", lid);
        return NVMEX_INVALID_LOG_PAGE | NVMEX_DNR;
    }
    if ((off & 3) || off > size || len > 64 * KiB) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    out = g_malloc0(len);
    memcpy(out, log + off, MIN(len, size - off));
    st = nvmex_xfer(r, out, len, true);
    if (st == NVMEX_SUCCESS && !rae) {
        /* Reading the log re-arms its event type */
        if (lid == NVMEX_LOG_ERROR) {
            s->aen_masked &= ~(1u << NVMEX_AET_ERROR);
        } else if (lid == NVMEX_LOG_SMART) {
            s->aen_masked &= ~(1u << NVMEX_AET_SMART);
        } else if (lid == NVMEX_LOG_CHANGED_NS) {
            s->aen_masked &= ~(1u << NVMEX_AET_NOTICE);
            s->changed_ns_count = 0;
        }
        nvmex_aen_deliver(c);
    }
    return st;
}

static uint16_t nvmex_adm_create_cq(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    const NvmeCreateCq *cmd = (const NvmeCreateCq *)&r->cmd;
    uint16_t qid = le16_to_cpu(cmd->cqid);
    uint16_t iv = le16_to_cpu(cmd->irq_vector);
    uint16_t flags = le16_to_cpu(cmd->cq_flags);
    uint32_t size = le16_to_cpu(cmd->qsize) + 1;
    uint64_t base = le64_to_cpu(cmd->prp1);
    NvmexCQ *cq;

    trace_nvmex_create_cq(qid, size, iv);
    if (qid == 0 || qid > s->feat.ncqa || s->cq[qid].valid) {
        nvmex_guest_error(c, "create cq: bad qid %u", qid);
        return NVMEX_INVALID_QID | NVMEX_DNR;
    }
    if (size < 2 || size > c->tmpl.mqes) {
        nvmex_guest_error(c, "create cq %u: bad size %u", qid, size);
        return NVMEX_INVALID_QSIZE | NVMEX_DNR;
    }
    if (!(flags & NVME_CQ_PC) || (base & (NVMEX_PAGE_SIZE - 1)) || !base) {
        nvmex_guest_error(c, "create cq %u: base 0x%" PRIx64 " not a "
                          "contiguous page-aligned queue", qid, base);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if ((flags & NVME_CQ_IEN) && iv >= c->nvec) {
        nvmex_guest_error(c, "create cq %u: bad vector %u", qid, iv);
        return NVMEX_INVALID_IRQ_VECTOR | NVMEX_DNR;
    }
    cq = &s->cq[qid];
    *cq = (NvmexCQ) {
        .dma_addr = base, .size = size, .vector = iv, .phase = 1,
        .ien = !!(flags & NVME_CQ_IEN), .valid = 1,
    };
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_adm_create_sq(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    const NvmeCreateSq *cmd = (const NvmeCreateSq *)&r->cmd;
    uint16_t qid = le16_to_cpu(cmd->sqid), cqid = le16_to_cpu(cmd->cqid);
    uint16_t flags = le16_to_cpu(cmd->sq_flags);
    uint32_t size = le16_to_cpu(cmd->qsize) + 1;
    uint64_t base = le64_to_cpu(cmd->prp1);
    NvmexSQ *sq;

    trace_nvmex_create_sq(qid, size, cqid);
    if (qid == 0 || qid > s->feat.nsqa || s->sq[qid].valid) {
        nvmex_guest_error(c, "create sq: bad qid %u", qid);
        return NVMEX_INVALID_QID | NVMEX_DNR;
    }
    if (cqid == 0 || cqid > s->feat.ncqa || !s->cq[cqid].valid) {
        nvmex_guest_error(c, "create sq %u: cq %u does not exist", qid, cqid);
        return NVMEX_CQ_INVALID | NVMEX_DNR;
    }
    if (size < 2 || size > c->tmpl.mqes) {
        nvmex_guest_error(c, "create sq %u: bad size %u", qid, size);
        return NVMEX_INVALID_QSIZE | NVMEX_DNR;
    }
    if (!(flags & NVME_SQ_PC) || (base & (NVMEX_PAGE_SIZE - 1)) || !base) {
        nvmex_guest_error(c, "create sq %u: base 0x%" PRIx64 " not a "
                          "contiguous page-aligned queue", qid, base);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    sq = &s->sq[qid];
    *sq = (NvmexSQ) {
        .dma_addr = base, .size = size, .cqid = cqid, .valid = 1,
        .prio = NVME_SQ_FLAGS_QPRIO(flags), .gen = sq->gen + 1,
    };
    s->cq[cqid].nsq++;
    return NVMEX_SUCCESS;
}

static void nvmex_drop_waiters_of_sq(NvmeExport *c, uint16_t sqid,
                                     uint16_t cqid)
{
    NvmexReq *r, *next;

    QTAILQ_FOREACH_SAFE(r, &c->cq_wait[cqid], entry, next) {
        if (r->sqid == sqid) {
            QTAILQ_REMOVE(&c->cq_wait[cqid], r, entry);
            nvmex_req_put(r);
        }
    }
}

static uint16_t nvmex_adm_delete_sq(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    uint16_t qid = le16_to_cpu(((const NvmeDeleteQ *)&r->cmd)->qid);

    if (qid == 0 || qid >= NVMEX_NQUEUES || !s->sq[qid].valid) {
        nvmex_guest_error(c, "delete sq: bad qid %u", qid);
        return NVMEX_INVALID_QID | NVMEX_DNR;
    }
    /*
     * Commands still at the block layer finish there; their results
     * are dropped because the generation moved on.
     */
    nvmex_drop_waiters_of_sq(c, qid, s->sq[qid].cqid);
    s->cq[s->sq[qid].cqid].nsq--;
    s->sq[qid].valid = 0;
    s->sq[qid].gen++;
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_adm_delete_cq(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    uint16_t qid = le16_to_cpu(((const NvmeDeleteQ *)&r->cmd)->qid);

    if (qid == 0 || qid >= NVMEX_NQUEUES || !s->cq[qid].valid) {
        nvmex_guest_error(c, "delete cq: bad qid %u", qid);
        return NVMEX_INVALID_QID | NVMEX_DNR;
    }
    if (s->cq[qid].nsq) {
        nvmex_guest_error(c, "delete cq %u: SQs still use it", qid);
        return NVMEX_INVALID_QUEUE_DELETION | NVMEX_DNR;
    }
    s->cq[qid].valid = 0;
    c->irq_pending[qid] = false;
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_adm_set_features(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexFeatures *f = &c->st.feat;
    const NvmexFeaturesCmd *cmd = (const NvmexFeaturesCmd *)&r->cmd;
    uint32_t dw11 = le32_to_cpu(cmd->cdw11);
    uint8_t fid = cmd->fid;

    trace_nvmex_set_feature(fid, dw11);
    if (le16_to_cpu(cmd->rsvd42) & NVMEX_FEAT_SAVE) {
        return NVMEX_FEATURE_NOT_SAVEABLE | NVMEX_DNR;
    }
    switch (fid) {
    case NVMEX_FEAT_ARBITRATION:
        f->arbitration = dw11;
        break;
    case NVMEX_FEAT_POWER_MGMT:
        if (dw11 & 0x1f) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;     /* NPSS is 0 */
        }
        f->power_mgmt = dw11 & 0xff;
        break;
    case NVMEX_FEAT_TEMP_THRESHOLD: {
        uint8_t tmpsel = (dw11 >> 16) & 0xf, thsel = (dw11 >> 20) & 3;

        if (tmpsel != 0 || thsel > 1) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        if (thsel == 0) {
            f->temp_over = dw11 & 0xffff;
        } else {
            f->temp_under = dw11 & 0xffff;
        }
        nvmex_check_temperature(c);
        break;
    }
    case NVMEX_FEAT_ERROR_RECOVERY:
        if (dw11 & (1u << 16)) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;     /* no DULBE */
        }
        f->error_recovery = dw11 & 0xffff;
        break;
    case NVMEX_FEAT_VWC:
        if (!c->tmpl.vwc) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        f->vwc = dw11 & 1;
        for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
            if (c->ns[i]) {
                blk_set_enable_write_cache(c->ns[i]->conf.blk, f->vwc);
            }
        }
        break;
    case NVMEX_FEAT_NUM_QUEUES: {
        uint32_t nsqr = dw11 & 0xffff, ncqr = dw11 >> 16;

        if (nsqr == 0xffff || ncqr == 0xffff) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        for (int i = 1; i < NVMEX_NQUEUES; i++) {
            if (c->st.sq[i].valid || c->st.cq[i].valid) {
                return NVMEX_CMD_SEQ_ERROR | NVMEX_DNR;
            }
        }
        f->nsqa = MIN(nsqr + 1, c->tmpl.max_ioqs);
        f->ncqa = MIN(ncqr + 1, c->tmpl.max_ioqs);
        f->nq_set = 1;
        r->dw0 = (f->nsqa - 1) | (uint32_t)(f->ncqa - 1) << 16;
        break;
    }
    case NVMEX_FEAT_IRQ_COALESCING:
        f->irq_coalescing = dw11 & 0xffff;
        break;
    case NVMEX_FEAT_IRQ_VECTOR:
        if ((dw11 & 0xffff) >= c->nvec) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        f->irq_cd[dw11 & 0xffff] = (dw11 >> 16) & 1;
        break;
    case NVMEX_FEAT_WRITE_ATOMIC:
        f->write_atomic = dw11 & 1;
        break;
    case NVMEX_FEAT_ASYNC_EVENT:
        f->async_event_cfg = dw11 & (0xff | 1u << 8);
        break;
    case NVMEX_FEAT_RATE_LIMIT: {
        uint8_t data[NVMEX_RL_DATA_SIZE];
        NvmexRateLimit rl;
        uint16_t st;

        if (!c->tmpl.rate_limit || (dw11 >> 16 & 0xff) != 0 ||
            (dw11 & 0xffff) != c->tmpl.cntlid) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        st = nvmex_xfer(r, data, sizeof(data), false);
        if (st) {
            return st;
        }
        if (nvmex_rl_decode(data, &rl)) {
            nvmex_guest_error(c, "rate limit: unsupported mode or scale");
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        c->st.rate_limit = rl;
        nvmex_limiter_configure(&c->limiter, &rl,
                                qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
        trace_nvmex_rate_limit(rl.enabled, rl.tiops, rl.tbwv, rl.bwsf);
        nvmex_kick(c);
        break;
    }
    case NVMEX_FEAT_CDQ:
        if (c->tmpl.hmlms) {
            return nvmex_mgmt_set_cdq_feature(r);
        }
        /* fall through */
    default:
        nvmex_guest_error(c, "set features: FID 0x%x not supported", fid);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    return NVMEX_SUCCESS;
}

void nvmex_features_default(NvmeExport *c, NvmexFeatures *f)
{
    memset(f, 0, sizeof(*f));
    f->temp_over = c->tmpl.wctemp;
    f->temp_under = 0;
    f->vwc = c->tmpl.vwc;
    f->nsqa = f->ncqa = c->tmpl.max_ioqs;
}

static uint16_t nvmex_adm_get_features(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexFeatures def, *f = &c->st.feat;
    const NvmexFeaturesCmd *cmd = (const NvmexFeaturesCmd *)&r->cmd;
    uint32_t dw11 = le32_to_cpu(cmd->cdw11);
    uint8_t fid = cmd->fid, sel = cmd->sel & 7;

    nvmex_features_default(c, &def);
    if (sel == 1 || sel == 2) {
        f = &def;
    } else if (sel == 3) {
        /*
         * Supported capabilities: bit 0 saveable, bit 1 namespace
         * specific, bit 2 changeable.  Nothing is saveable, every
         * feature here is controller-wide and changeable.
         */
        switch (fid) {
        case NVMEX_FEAT_ARBITRATION: case NVMEX_FEAT_POWER_MGMT:
        case NVMEX_FEAT_TEMP_THRESHOLD: case NVMEX_FEAT_ERROR_RECOVERY:
        case NVMEX_FEAT_NUM_QUEUES: case NVMEX_FEAT_IRQ_COALESCING:
        case NVMEX_FEAT_IRQ_VECTOR: case NVMEX_FEAT_WRITE_ATOMIC:
        case NVMEX_FEAT_ASYNC_EVENT:
            r->dw0 = NVME_FEAT_CAP_CHANGE;
            return NVMEX_SUCCESS;
        case NVMEX_FEAT_VWC:
            r->dw0 = c->tmpl.vwc ? NVME_FEAT_CAP_CHANGE : 0;
            return NVMEX_SUCCESS;
        case NVMEX_FEAT_RATE_LIMIT:
            if (c->tmpl.rate_limit) {
                r->dw0 = NVME_FEAT_CAP_CHANGE;
                return NVMEX_SUCCESS;
            }
            break;
        case NVMEX_FEAT_CDQ:
            if (c->tmpl.hmlms) {
                r->dw0 = NVME_FEAT_CAP_CHANGE;
                return NVMEX_SUCCESS;
            }
            break;
        }
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    } else if (sel > 3) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }

    switch (fid) {
    case NVMEX_FEAT_ARBITRATION:
        r->dw0 = f->arbitration;
        break;
    case NVMEX_FEAT_POWER_MGMT:
        r->dw0 = f->power_mgmt;
        break;
    case NVMEX_FEAT_TEMP_THRESHOLD: {
        uint8_t tmpsel = (dw11 >> 16) & 0xf, thsel = (dw11 >> 20) & 3;

        if (thsel > 1) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        if (tmpsel != 0) {
            r->dw0 = 0;
        } else {
            r->dw0 = thsel ? f->temp_under : f->temp_over;
        }
        break;
    }
    case NVMEX_FEAT_ERROR_RECOVERY:
        r->dw0 = f->error_recovery;
        break;
    case NVMEX_FEAT_VWC:
        if (!c->tmpl.vwc) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        r->dw0 = f->vwc;
        break;
    case NVMEX_FEAT_NUM_QUEUES:
        r->dw0 = (f->nsqa - 1) | (uint32_t)(f->ncqa - 1) << 16;
        break;
    case NVMEX_FEAT_IRQ_COALESCING:
        r->dw0 = f->irq_coalescing;
        break;
    case NVMEX_FEAT_IRQ_VECTOR:
        if ((dw11 & 0xffff) >= c->nvec) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        r->dw0 = (dw11 & 0xffff) | f->irq_cd[dw11 & 0xffff] << 16;
        break;
    case NVMEX_FEAT_WRITE_ATOMIC:
        r->dw0 = f->write_atomic;
        break;
    case NVMEX_FEAT_ASYNC_EVENT:
        r->dw0 = f->async_event_cfg;
        break;
    case NVMEX_FEAT_RATE_LIMIT: {
        uint8_t data[NVMEX_RL_DATA_SIZE];
        NvmexRateLimit none = { 0 };

        if (!c->tmpl.rate_limit || (dw11 & 0xffff) != c->tmpl.cntlid ||
            (dw11 >> 16 & 0xff) != 0) {
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        nvmex_rl_encode(sel ? &none : &c->st.rate_limit, data);
        return nvmex_xfer(r, data, sizeof(data), true);
    }
    case NVMEX_FEAT_CDQ:
        if (c->tmpl.hmlms && sel == 0) {
            return nvmex_mgmt_get_cdq_feature(r);
        }
        /* fall through */
    default:
        nvmex_guest_error(r->c, "get features: FID 0x%x not supported", fid);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    return NVMEX_SUCCESS;
}

/* TP4165: report the tracked allocated LBAs from the block layer */
static uint16_t nvmex_adm_get_lba_status(NvmexReq *r)
{
    NvmeExport *c = r->c;
    const NvmexGetLbaStatusCmd *cmd = (const NvmexGetLbaStatusCmd *)&r->cmd;
    uint32_t nsid = le32_to_cpu(cmd->nsid);
    uint64_t slba = le64_to_cpu(cmd->slba);
    uint32_t rl = le16_to_cpu(cmd->rl);
    uint8_t atype = cmd->atype;
    uint64_t len = ((uint64_t)le32_to_cpu(cmd->mndw) + 1) * 4, end, lba, gran;
    NvmexNs *ns = nsid && nsid <= NVMEX_MAX_NSID ? c->ns[nsid] : NULL;
    const NvmexNsTemplate *nt;
    BlockDriverState *bs;
    g_autofree uint8_t *buf = NULL;
    NvmexLbaStatusHdr *hdr;
    NvmexLbaStatusDesc *desc;
    uint32_t ndesc = 0, maxdesc;
    uint64_t dstart = 0, dend = 0;
    uint8_t cmpc = 2;

    if (!ns) {
        return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
    }
    if (atype != 0x02 || len < 8 || len > 64 * KiB) {
        nvmex_guest_error(c, "get lba status: action 0x%x / %" PRIu64
                          " bytes not supported", atype, len);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (slba >= ns->geo.nsze) {
        return NVMEX_LBA_OUT_OF_RANGE | NVMEX_DNR;
    }
    nt = nvmex_template_ns(&c->tmpl, nsid, false);
    gran = nt->tlbaag;
    end = rl ? MIN(ns->geo.nsze, slba + rl) : ns->geo.nsze;
    buf = g_malloc0(len);
    hdr = (NvmexLbaStatusHdr *)buf;
    desc = (NvmexLbaStatusDesc *)(hdr + 1);
    maxdesc = (len - sizeof(*hdr)) / sizeof(*desc);
    bs = blk_bs(ns->conf.blk);

    lba = slba - slba % gran;
    while (lba < end) {
        int64_t pnum = 0;
        int ret;
        uint64_t a, b;

        {
            GRAPH_RDLOCK_GUARD_MAINLOOP();
            ret = bs ? bdrv_block_status_above(bs, NULL,
                                               lba << ns->geo.lbads,
                                               (end - lba) << ns->geo.lbads,
                                               &pnum, NULL, NULL) : -EIO;
        }
        if (ret < 0 || pnum <= 0) {
            return NVMEX_INTERNAL_ERROR;
        }
        a = lba;
        b = lba + DIV_ROUND_UP(pnum, ns->geo.lba_size);
        if ((ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
            /* Whole granules, clipped to the namespace */
            a -= a % gran;
            b = MIN(QEMU_ALIGN_UP(b, gran), ns->geo.nsze);
            if (ndesc && a <= dend && b - dstart <= UINT32_MAX) {
                dend = MAX(dend, b);
            } else {
                if (ndesc) {
                    desc[ndesc - 1].dslba = cpu_to_le64(dstart);
                    desc[ndesc - 1].nlb = cpu_to_le32(dend - dstart);
                }
                if (ndesc == maxdesc) {
                    cmpc = 1;
                    break;
                }
                ndesc++;
                dstart = a;
                dend = b;
            }
        }
        lba = b > lba ? b : lba + 1;
    }
    if (ndesc) {
        desc[ndesc - 1].dslba = cpu_to_le64(dstart);
        desc[ndesc - 1].nlb = cpu_to_le32(dend - dstart);
    }
    hdr->nlsd = cpu_to_le32(ndesc);
    hdr->cmpc = cmpc;
    trace_nvmex_lba_status(nsid, slba, ndesc);
    return nvmex_xfer(r, buf, len, true);
}

/* Commands are never queued inside: nothing can be aborted */
static uint16_t nvmex_adm_abort(NvmexReq *r)
{
    r->dw0 = 1;
    return NVMEX_SUCCESS;
}

/* The request is kept only as its CID, until an event completes it */
static uint16_t nvmex_adm_aer(NvmexReq *r)
{
    NvmeExport *c = r->c;

    if (c->st.aer_count == NVMEX_MAX_AER) {
        return NVMEX_AER_LIMIT_EXCEEDED | NVMEX_DNR;
    }
    c->st.aer_cid[c->st.aer_count++] = r->cid;
    nvmex_req_put(r);
    nvmex_aen_deliver(c);
    return NVMEX_ASYNC;
}

/* The admin command set of nvmex-cmds.h, one handler per opcode */
#define NVMEX_ADM_HANDLER(op, name, handler, needs, effects) \
    [op] = nvmex_adm_##handler,

static const NvmexCmdHandler nvmex_admin_handlers[256] = {
    NVMEX_ADMIN_COMMANDS(NVMEX_ADM_HANDLER)
};

/* A status, or NVMEX_ASYNC when the request is no longer ours */
uint16_t nvmex_admin_cmd(NvmexReq *r)
{
    NvmeExport *c = r->c;

    /* Supported means a row of NVMEX_ADMIN_COMMANDS: it has a handler */
    if (!nvmex_admin_supported(&c->tmpl, r->opc)) {
        nvmex_guest_error(c, "admin: opcode 0x%x not supported", r->opc);
        return NVMEX_INVALID_OPCODE | NVMEX_DNR;
    }
    if (NVME_CMD_FLAGS_PSDT(r->cmd.flags) != NVME_PSDT_PRP) {
        nvmex_guest_error(c, "admin: %s uses SGLs", nvmex_admin_name(r->opc));
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    return nvmex_admin_handlers[r->opc](r);
}
