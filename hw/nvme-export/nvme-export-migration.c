/*
 * nvme-export: migration of the controller state (VMState)
 *
 * What moves: registers, queues, features, logs, events, rate limits and
 * the completions still waiting for CQ room.  Namespace data does not
 * (docs/nvme-export.rst).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "hw/pci/msix.h"
#include "hw/iolab/pci-stream.h"
#include "migration/vmstate.h"
#include "system/block-backend.h"
#include "nvme-export-internal.h"
#include "trace.h"

/*
 * FNV-1a over everything the guest can read about its identity: the
 * destination must present the same bytes, or the lie is exposed.
 */
static uint64_t nvmex_fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    while (n--) {
        h = (h ^ *p++) * 0x100000001b3ull;
    }
    return h;
}

static uint64_t nvmex_identity_hash(NvmeExport *c)
{
    g_autofree uint8_t *buf = g_malloc(NVMEX_ID_SIZE);
    uint64_t h = 0xcbf29ce484222325ull;

    nvmex_id_ctrl(&c->tmpl, buf);
    h = nvmex_fnv1a(h, buf, NVMEX_ID_SIZE);
    nvmex_id_ctrl_nvm(&c->tmpl, buf);
    h = nvmex_fnv1a(h, buf, NVMEX_ID_SIZE);
    h = nvmex_fnv1a(h, (uint8_t *)&c->st.cap, sizeof(c->st.cap));
    for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
        const NvmexNsTemplate *nt;

        if (!c->ns[i]) {
            continue;
        }
        nt = nvmex_template_ns(&c->tmpl, i, false);
        nvmex_id_ns(&c->tmpl, nt, c->ns[i]->geo.nsze, buf);
        h = nvmex_fnv1a(h, buf, NVMEX_ID_SIZE);
        nvmex_id_ns_nvm(&c->tmpl, nt, buf);
        h = nvmex_fnv1a(h, buf, NVMEX_ID_SIZE);
        nvmex_id_ns_descs(nt, buf);
        h = nvmex_fnv1a(h, buf, NVMEX_ID_SIZE);
    }
    return h;
}

static int nvmex_pre_save(void *opaque)
{
    NvmeExport *c = opaque;
    NvmexReq *r;
    int n = 0;

    nvmex_park_done(c);
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        QTAILQ_FOREACH(r, &c->cq_wait[i], entry) {
            n++;
        }
    }
    /* The VM is stopped and the block layer drained: all that is left
     * of a command is its completion, posted or parked. */
    if (c->inflight != n) {
        error_report("nvme-export: %u commands still in flight",
                     c->inflight - n);
        return -EBUSY;
    }
    g_free(c->parked);
    c->parked = g_new0(NvmexParked, n);
    c->nparked = 0;
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        QTAILQ_FOREACH(r, &c->cq_wait[i], entry) {
            c->parked[c->nparked++] = (NvmexParked) {
                .cqid = i, .sqid = r->sqid, .cid = r->cid,
                .status = r->status, .dw0 = r->dw0,
            };
        }
    }
    c->identity_hash = nvmex_identity_hash(c);
    return 0;
}

static int nvmex_post_save(void *opaque)
{
    NvmeExport *c = opaque;

    g_clear_pointer(&c->parked, g_free);
    c->nparked = 0;
    return 0;
}

/*
 * The stream is not trusted: every index, count and size it carries is
 * checked here against the limits the guest path enforces, before the
 * guest can run commands on top of it.  Returns the name of the first
 * bad field, or NULL.
 */
static const char *nvmex_check_queues(NvmeExport *c, char *buf, size_t len)
{
    NvmexCtrlState *s = &c->st;

    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        NvmexSQ *sq = &s->sq[i];
        NvmexCQ *cq = &s->cq[i];
        /* The admin queues' sizes come from AQA (12 bits), I/O from MQES */
        uint32_t max = i ? c->tmpl.mqes : 4096;
        const char *bad = NULL;
        uint16_t nsq = 0;

        if (sq->valid > 1) {
            bad = "valid";
        } else if (sq->valid && (sq->size < 2 || sq->size > max)) {
            bad = "size";
        } else if (sq->valid && (sq->head >= sq->size ||
                                 sq->tail >= sq->size)) {
            bad = sq->head >= sq->size ? "head" : "tail";
        } else if (sq->valid &&
                   (sq->cqid >= NVMEX_NQUEUES || !s->cq[sq->cqid].valid ||
                    (i ? sq->cqid == 0 : sq->cqid != 0))) {
            /*
             * The CQ a live SQ completes into must be live too, the admin
             * one included: a CQ that is not valid had its size skipped
             * below, and the first completion would divide by it.
             */
            bad = "cqid";
        }
        if (bad) {
            snprintf(buf, len, "sq[%d].%s", i, bad);
            return buf;
        }
        for (int j = 1; j < NVMEX_NQUEUES; j++) {
            nsq += s->sq[j].valid && s->sq[j].cqid == i;
        }
        if (cq->valid > 1) {
            bad = "valid";
        } else if (cq->valid && (cq->size < 2 || cq->size > max)) {
            bad = "size";
        } else if (cq->valid && (cq->head >= cq->size ||
                                 cq->tail >= cq->size)) {
            bad = cq->head >= cq->size ? "head" : "tail";
        } else if (cq->valid && (cq->phase > 1 || cq->ien > 1)) {
            bad = cq->phase > 1 ? "phase" : "ien";
        } else if (cq->valid && cq->ien && cq->vector >= c->nvec) {
            bad = "vector";
        } else if (cq->valid && i && cq->nsq != nsq) {
            bad = "nsq";
        }
        if (bad) {
            snprintf(buf, len, "cq[%d].%s", i, bad);
            return buf;
        }
    }
    return NULL;
}

static const char *nvmex_check_state(NvmeExport *c, char *buf, size_t len)
{
    NvmexCtrlState *s = &c->st;
    const char *bad = nvmex_check_queues(c, buf, len);

    if (bad) {
        return bad;
    }
    if (s->feat.nsqa < 1 || s->feat.nsqa > c->tmpl.max_ioqs) {
        return "feat.nsqa";
    }
    if (s->feat.ncqa < 1 || s->feat.ncqa > c->tmpl.max_ioqs) {
        return "feat.ncqa";
    }
    if (s->aer_count > NVMEX_MAX_AER) {
        return "aer_count";
    }
    if (s->aen_count > NVMEX_MAX_AEN) {
        return "aen_count";
    }
    if (s->changed_ns_count > ARRAY_SIZE(s->changed_ns)) {
        return "changed_ns_count";
    }
    if (s->rate_limit.mode != 0 ||
        s->rate_limit.bwsf > NVMEX_RL_MAX_BWSF) {
        return "rate_limit";
    }
    for (int i = 0; i < c->nparked; i++) {
        NvmexParked *p = &c->parked[i];

        /* A parked completion belongs to a live SQ and to that SQ's CQ */
        if (p->sqid >= NVMEX_NQUEUES || !s->sq[p->sqid].valid ||
            p->cqid != s->sq[p->sqid].cqid) {
            snprintf(buf, len, "parked[%d]", i);
            return buf;
        }
    }
    return NULL;
}

/* Runs before the parked array is allocated from the stream's count */
static bool nvmex_nparked_valid(void *opaque, int version_id)
{
    NvmeExport *c = opaque;

    if (c->nparked < 0 || c->nparked > NVMEX_MAX_PARKED) {
        error_report("nvme-export: migration stream: nparked %d out of "
                     "range 0..%d", c->nparked, NVMEX_MAX_PARKED);
        return false;
    }
    return true;
}

static int nvmex_post_load(void *opaque, int version_id)
{
    NvmeExport *c = opaque;
    char name[32];
    const char *bad;
    int ret = 0;

    if (!iolab_pci_stream_intx_pin_ok(PCI_DEVICE(c), "nvme-export")) {
        ret = -EINVAL;
        goto out;
    }
    if (c->identity_hash != nvmex_identity_hash(c)) {
        error_report("nvme-export: the destination's template or namespaces "
                     "differ from the source's: the guest would see another "
                     "device");
        ret = -EINVAL;
        goto out;
    }
    bad = nvmex_check_state(c, name, sizeof(name));
    if (bad) {
        error_report("nvme-export: migration stream: %s out of range or "
                     "inconsistent", bad);
        ret = -EINVAL;
        goto out;
    }
    for (int i = 0; i < c->nparked; i++) {
        NvmexParked *p = &c->parked[i];
        NvmexReq *r;

        r = nvmex_req_get(c);
        r->sqid = p->sqid;
        r->sq_gen = c->st.sq[p->sqid].gen;
        r->cid = p->cid;
        r->status = p->status;
        r->dw0 = p->dw0;
        QTAILQ_INSERT_TAIL(&c->cq_wait[p->cqid], r, entry);
    }
    nvmex_limiter_configure(&c->limiter, &c->st.rate_limit,
                            qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
    for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
        if (c->ns[i]) {
            blk_set_enable_write_cache(c->ns[i]->conf.blk,
                                       c->tmpl.vwc && c->st.feat.vwc);
        }
    }
out:
    g_clear_pointer(&c->parked, g_free);
    c->nparked = 0;
    return ret;
}

static const VMStateDescription vmstate_nvmex_sq = {
    .name = "nvme-export/sq",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(dma_addr, NvmexSQ),
        VMSTATE_UINT32(size, NvmexSQ),
        VMSTATE_UINT32(head, NvmexSQ),
        VMSTATE_UINT32(tail, NvmexSQ),
        VMSTATE_UINT16(cqid, NvmexSQ),
        VMSTATE_UINT8(valid, NvmexSQ),
        VMSTATE_UINT8(prio, NvmexSQ),
        VMSTATE_UINT32(gen, NvmexSQ),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_cq = {
    .name = "nvme-export/cq",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(dma_addr, NvmexCQ),
        VMSTATE_UINT32(size, NvmexCQ),
        VMSTATE_UINT32(head, NvmexCQ),
        VMSTATE_UINT32(tail, NvmexCQ),
        VMSTATE_UINT16(vector, NvmexCQ),
        VMSTATE_UINT8(phase, NvmexCQ),
        VMSTATE_UINT8(ien, NvmexCQ),
        VMSTATE_UINT8(valid, NvmexCQ),
        VMSTATE_UINT16(nsq, NvmexCQ),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_features = {
    .name = "nvme-export/features",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(arbitration, NvmexFeatures),
        VMSTATE_UINT32(power_mgmt, NvmexFeatures),
        VMSTATE_UINT32(error_recovery, NvmexFeatures),
        VMSTATE_UINT32(irq_coalescing, NvmexFeatures),
        VMSTATE_UINT32(write_atomic, NvmexFeatures),
        VMSTATE_UINT32(async_event_cfg, NvmexFeatures),
        VMSTATE_UINT16(temp_over, NvmexFeatures),
        VMSTATE_UINT16(temp_under, NvmexFeatures),
        VMSTATE_UINT8(vwc, NvmexFeatures),
        VMSTATE_UINT8(nq_set, NvmexFeatures),
        VMSTATE_UINT16(nsqa, NvmexFeatures),
        VMSTATE_UINT16(ncqa, NvmexFeatures),
        VMSTATE_UINT32_ARRAY(irq_cd, NvmexFeatures, NVMEX_NQUEUES),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_smart = {
    .name = "nvme-export/smart",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(units_read, NvmexSmart),
        VMSTATE_UINT64(units_written, NvmexSmart),
        VMSTATE_UINT64(read_cmds, NvmexSmart),
        VMSTATE_UINT64(write_cmds, NvmexSmart),
        VMSTATE_UINT64(power_cycles, NvmexSmart),
        VMSTATE_UINT64(power_on_hours, NvmexSmart),
        VMSTATE_UINT64(unsafe_shutdowns, NvmexSmart),
        VMSTATE_UINT64(media_errors, NvmexSmart),
        VMSTATE_UINT64(error_entries, NvmexSmart),
        VMSTATE_UINT8(critical_warning, NvmexSmart),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_error = {
    .name = "nvme-export/error",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(count, NvmexErrorEntry),
        VMSTATE_UINT16(sqid, NvmexErrorEntry),
        VMSTATE_UINT16(cid, NvmexErrorEntry),
        VMSTATE_UINT16(status, NvmexErrorEntry),
        VMSTATE_UINT16(param, NvmexErrorEntry),
        VMSTATE_UINT64(lba, NvmexErrorEntry),
        VMSTATE_UINT32(nsid, NvmexErrorEntry),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_rate_limit = {
    .name = "nvme-export/rate-limit",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(enabled, NvmexRateLimit),
        VMSTATE_UINT8(mode, NvmexRateLimit),
        VMSTATE_UINT8(bwsf, NvmexRateLimit),
        VMSTATE_UINT64(tbwv, NvmexRateLimit),
        VMSTATE_UINT64(wbwv, NvmexRateLimit),
        VMSTATE_UINT32(tiops, NvmexRateLimit),
        VMSTATE_UINT32(wiops, NvmexRateLimit),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_state = {
    .name = "nvme-export/state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(cap, NvmexCtrlState),
        VMSTATE_UINT32(cc, NvmexCtrlState),
        VMSTATE_UINT32(csts, NvmexCtrlState),
        VMSTATE_UINT32(aqa, NvmexCtrlState),
        VMSTATE_UINT32(intms, NvmexCtrlState),
        VMSTATE_UINT64(asq, NvmexCtrlState),
        VMSTATE_UINT64(acq, NvmexCtrlState),
        VMSTATE_STRUCT_ARRAY(sq, NvmexCtrlState, NVMEX_NQUEUES, 1,
                             vmstate_nvmex_sq, NvmexSQ),
        VMSTATE_STRUCT_ARRAY(cq, NvmexCtrlState, NVMEX_NQUEUES, 1,
                             vmstate_nvmex_cq, NvmexCQ),
        VMSTATE_STRUCT(feat, NvmexCtrlState, 1, vmstate_nvmex_features,
                       NvmexFeatures),
        VMSTATE_STRUCT(smart, NvmexCtrlState, 1, vmstate_nvmex_smart,
                       NvmexSmart),
        VMSTATE_STRUCT_ARRAY(errlog, NvmexCtrlState, NVMEX_ERROR_LOG_ENTRIES,
                             1, vmstate_nvmex_error, NvmexErrorEntry),
        VMSTATE_UINT64(error_count, NvmexCtrlState),
        VMSTATE_UINT16_ARRAY(aer_cid, NvmexCtrlState, NVMEX_MAX_AER),
        VMSTATE_UINT8(aer_count, NvmexCtrlState),
        VMSTATE_UINT32_ARRAY(aen, NvmexCtrlState, NVMEX_MAX_AEN),
        VMSTATE_UINT8(aen_count, NvmexCtrlState),
        VMSTATE_UINT8(aen_masked, NvmexCtrlState),
        VMSTATE_UINT16(changed_ns_count, NvmexCtrlState),
        VMSTATE_UINT32_ARRAY(changed_ns, NvmexCtrlState, 64),
        VMSTATE_STRUCT(rate_limit, NvmexCtrlState, 1,
                       vmstate_nvmex_rate_limit, NvmexRateLimit),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_parked = {
    .name = "nvme-export/parked",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(cqid, NvmexParked),
        VMSTATE_UINT16(sqid, NvmexParked),
        VMSTATE_UINT16(cid, NvmexParked),
        VMSTATE_UINT16(status, NvmexParked),
        VMSTATE_UINT32(dw0, NvmexParked),
        VMSTATE_END_OF_LIST()
    },
};

/* ------------------------------------------------------------------ */
/* TP4159/TP4193: a management controller and a managed controller     */

static const VMStateDescription vmstate_nvmex_cdq_ring = {
    .name = "nvme-export/cdq-ring",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(nentries, NvmexCdq),
        VMSTATE_UINT32(head, NvmexCdq),
        VMSTATE_UINT32(tail, NvmexCdq),
        VMSTATE_UINT8(phase, NvmexCdq),
        VMSTATE_BOOL(first_pending, NvmexCdq),
        VMSTATE_BOOL(tpt_enabled, NvmexCdq),
        VMSTATE_UINT32(tpt, NvmexCdq),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_cdq = {
    .name = "nvme-export/cdq",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(valid, NvmexMgmtCdq),
        VMSTATE_UINT16(cdqid, NvmexMgmtCdq),
        VMSTATE_UINT16(child_cntlid, NvmexMgmtCdq),
        VMSTATE_UINT64(base, NvmexMgmtCdq),
        VMSTATE_STRUCT(ring, NvmexMgmtCdq, 1, vmstate_nvmex_cdq_ring,
                       NvmexCdq),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_esub_ctrl = {
    .name = "nvme-export/esub-ctrl",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT16(cntlid, NvmexEsubCtrl),
        VMSTATE_UINT16(ecntlid, NvmexEsubCtrl),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_esub_ns = {
    .name = "nvme-export/esub-ns",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(ensid, NvmexEsubNs),
        VMSTATE_UINT32(unsid, NvmexEsubNs),
        VMSTATE_UINT16(uctrlid, NvmexEsubNs),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_esub = {
    .name = "nvme-export/esub",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(valid, NvmexEsub),
        VMSTATE_UINT16(esubid, NvmexEsub),
        VMSTATE_UINT8(ensti, NvmexEsub),
        VMSTATE_BUFFER_UNSAFE(nqn, NvmexEsub, 0, NVMEX_ESUB_NQN_SIZE),
        VMSTATE_UINT16(nctrl, NvmexEsub),
        VMSTATE_UINT16(nns, NvmexEsub),
        VMSTATE_UINT16(nport, NvmexEsub),
        VMSTATE_STRUCT_ARRAY(ctrl, NvmexEsub, NVMEX_ESUB_MAX_CTRL, 1,
                             vmstate_nvmex_esub_ctrl, NvmexEsubCtrl),
        VMSTATE_STRUCT_ARRAY(ns, NvmexEsub, NVMEX_ESUB_MAX_NS, 1,
                             vmstate_nvmex_esub_ns, NvmexEsubNs),
        VMSTATE_UINT16_ARRAY(port, NvmexEsub, NVMEX_ESUB_MAX_PORT),
        VMSTATE_END_OF_LIST()
    },
};

static bool nvmex_mgmt_needed(void *opaque)
{
    return NVME_EXPORT(opaque)->tmpl.hmlms;
}

static int nvmex_mgmt_vm_pre_save(void *opaque)
{
    nvmex_mgmt_pre_save(NVME_EXPORT_MGMT(opaque));
    return 0;
}

/*
 * The destination decides which subsections a controller may take, not
 * the stream: every controller shares this VMState, so a stream can send
 * nvme-export/mgmt to a plain controller, whose object is smaller than
 * the fields it would load (a heap overflow), and nvme-export/lm to a
 * controller with no management controller (logging through a NULL one,
 * or suspended with nobody to resume it).
 */
static int nvmex_mgmt_vm_pre_load(void *opaque)
{
    if (!object_dynamic_cast(OBJECT(opaque), TYPE_NVME_EXPORT_MGMT)) {
        error_report("nvme-export: migration stream: nvme-export/mgmt sent "
                     "to a controller that is not a management controller");
        return -EINVAL;
    }
    return 0;
}

static int nvmex_mgmt_vm_post_load(void *opaque, int version_id)
{
    char name[64];
    const char *bad = nvmex_mgmt_post_load(NVME_EXPORT_MGMT(opaque), name,
                                           sizeof(name));

    if (bad) {
        error_report("nvme-export-mgmt: migration stream: %s out of range "
                     "or inconsistent", bad);
        return -EINVAL;
    }
    return 0;
}

/* The management controller's queues and exported subsystems */
static const VMStateDescription vmstate_nvmex_mgmt = {
    .name = "nvme-export/mgmt",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = nvmex_mgmt_needed,
    .pre_save = nvmex_mgmt_vm_pre_save,
    .pre_load = nvmex_mgmt_vm_pre_load,
    .post_load = nvmex_mgmt_vm_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(cdq, NvmeExportMgmt, NVMEX_LM_MAX_CDQS, 1,
                             vmstate_nvmex_cdq, NvmexMgmtCdq),
        VMSTATE_STRUCT_ARRAY(esubs.esub, NvmeExportMgmt, NVMEX_ESUB_MAX, 1,
                             vmstate_nvmex_esub, NvmexEsub),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_nvmex_lm_sm = {
    .name = "nvme-export/lm-state",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(suspended, NvmexLm),
        VMSTATE_BOOL(logging, NvmexLm),
        VMSTATE_BOOL(captured, NvmexLm),
        VMSTATE_BOOL(applied, NvmexLm),
        VMSTATE_UINT32(suspends, NvmexLm),
        VMSTATE_UINT32(resumes, NvmexLm),
        VMSTATE_UINT32(refused, NvmexLm),
        VMSTATE_END_OF_LIST()
    },
};

static bool nvmex_lm_needed(void *opaque)
{
    return NVME_EXPORT(opaque)->mgmt != NULL;
}

static int nvmex_lm_pre_save(void *opaque)
{
    NvmeExport *c = opaque;

    c->udmq_id = c->udmq ? c->udmq->cdqid : 0;
    return 0;
}

static int nvmex_lm_pre_load(void *opaque)
{
    if (!NVME_EXPORT(opaque)->mgmt) {
        error_report("nvme-export: migration stream: nvme-export/lm sent "
                     "to a controller with no mgmt=");
        return -EINVAL;
    }
    return 0;
}

static int nvmex_lm_post_load(void *opaque, int version_id)
{
    const char *bad = nvmex_mgmt_post_load_child(opaque);

    if (bad) {
        error_report("nvme-export: migration stream: %s out of range or "
                     "inconsistent", bad);
        return -EINVAL;
    }
    return 0;
}

/* A managed controller's TP4159 state: suspended, logging, and where */
static const VMStateDescription vmstate_nvmex_lm = {
    .name = "nvme-export/lm",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = nvmex_lm_needed,
    .pre_save = nvmex_lm_pre_save,
    .pre_load = nvmex_lm_pre_load,
    .post_load = nvmex_lm_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(lm, NvmeExport, 1, vmstate_nvmex_lm_sm, NvmexLm),
        VMSTATE_UINT16(udmq_id, NvmeExport),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * Registers, queues, features, logs, events and limits, plus the
 * completions still waiting for CQ room.  In-flight I/O needs no state:
 * the VM is stopped and the block layer drained before saving.  A
 * management controller (nvme-export-mgmt) and a managed controller
 * (mgmt=) add their TP4159/TP4193 state as subsections: the stream of a
 * plain nvme-export is unchanged (version 1).
 */
const VMStateDescription nvmex_vmstate = {
    .name = "nvme-export",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = nvmex_pre_save,
    .post_save = nvmex_post_save,
    .post_load = nvmex_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, NvmeExport),
        VMSTATE_MSIX(parent_obj, NvmeExport),
        VMSTATE_STRUCT(st, NvmeExport, 1, vmstate_nvmex_state,
                       NvmexCtrlState),
        VMSTATE_UINT64(identity_hash, NvmeExport),
        VMSTATE_INT32(nparked, NvmeExport),
        VMSTATE_VALIDATE("nparked", nvmex_nparked_valid),
        VMSTATE_STRUCT_VARRAY_ALLOC(parked, NvmeExport, nparked, 1,
                                    vmstate_nvmex_parked, NvmexParked),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_nvmex_mgmt,
        &vmstate_nvmex_lm,
        NULL
    },
};
