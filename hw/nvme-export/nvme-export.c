/*
 * nvme-export: NVMe controller on PCIe presenting a templated subsystem
 *
 * Written from the NVM Express Base Specification 2.0 and the NVM Command
 * Set Specification 1.0.  Identity and capabilities come from the
 * template (nvmex-template.c); Identify and log data from nvmex-identify.c;
 * data pointers are walked by nvmex-dptr.c.  This file is the QEMU glue:
 * registers, queues, commands, block I/O and interrupts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qobject/qbool.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "block/block-io.h"
#include "block/graph-lock.h"
#include "system/block-backend.h"
#include "system/runstate.h"
#include "hw/nvme-export/nvme-export.h"
#include "hw/nvme-export/core/nvmex-dptr.h"
#include "hw/nvme-export/core/nvmex-spec.h"
#include "trace.h"

#define NVMEX_BAR0_SIZE (16 * KiB)
#define NVMEX_SQ_BATCH 16
/* Not a status: the command went to the block layer and posts itself */
#define NVMEX_ASYNC 0xffff

static void nvmex_kick(NvmeExport *c);
static void nvmex_post(NvmexReq *r);

static void nvmex_guest_error(NvmeExport *c, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void nvmex_guest_error(NvmeExport *c, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %s\n", TYPE_NVME_EXPORT, msg);
}

static NvmeExport *nvmex_ctrl_of_bus(BusState *bus)
{
    return NVME_EXPORT(bus->parent);
}

/* ------------------------------------------------------------------ */
/* Requests and completions                                            */

static NvmexReq *nvmex_req_get(NvmeExport *c)
{
    NvmexReq *r = QTAILQ_FIRST(&c->free_reqs);

    if (r) {
        QTAILQ_REMOVE(&c->free_reqs, r, entry);
    } else {
        r = g_new(NvmexReq, 1);
        c->nreqs++;
    }
    memset(r, 0, offsetof(NvmexReq, entry));
    r->c = c;
    c->inflight++;
    return r;
}

static void nvmex_req_put(NvmexReq *r)
{
    NvmeExport *c = r->c;

    if (r->sg_live) {
        qemu_sglist_destroy(&r->sg);
        r->sg_live = false;
    }
    c->inflight--;
    QTAILQ_INSERT_HEAD(&c->free_reqs, r, entry);
}

static void nvmex_fatal(NvmeExport *c, const char *why)
{
    nvmex_guest_error(c, "controller fatal status: %s", why);
    trace_nvmex_fatal(why);
    c->st.csts |= NVMEX_CSTS_CFS;
}

static void nvmex_record_error(NvmeExport *c, NvmexReq *r)
{
    NvmexCtrlState *s = &c->st;

    memmove(&s->errlog[1], &s->errlog[0],
            sizeof(s->errlog[0]) * (NVMEX_ERROR_LOG_ENTRIES - 1));
    s->errlog[0] = (NvmexErrorEntry) {
        .count = ++s->error_count,
        .sqid = r->sqid,
        .cid = r->cid,
        .status = r->status,
        .param = 0xffff,
        .nsid = ldl_le_p(r->sqe + 4),
    };
    s->smart.error_entries++;
    c->errors++;
}

static void nvmex_update_intx(NvmeExport *c)
{
    PCIDevice *pci = PCI_DEVICE(c);
    bool level = false;

    if (msix_enabled(pci)) {
        return;
    }
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        NvmexCQ *cq = &c->st.cq[i];

        if (cq->valid && cq->ien && cq->head != cq->tail) {
            level = true;
        }
    }
    pci_set_irq(pci, level && !(c->st.intms & 1));
}

static void nvmex_irq_bh(void *opaque)
{
    NvmeExport *c = opaque;
    PCIDevice *pci = PCI_DEVICE(c);

    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        if (!c->irq_pending[i]) {
            continue;
        }
        c->irq_pending[i] = false;
        if (c->st.cq[i].valid && c->st.cq[i].ien && msix_enabled(pci)) {
            msix_notify(pci, c->st.cq[i].vector);
        }
    }
    nvmex_update_intx(c);
}

static bool nvmex_cq_full(NvmexCQ *cq)
{
    return (cq->tail + 1) % cq->size == cq->head;
}

/* Write one CQE; false if the CQ is full (the caller parks the request) */
static bool nvmex_cq_write(NvmeExport *c, uint16_t cqid, uint16_t sqid,
                     uint16_t cid, uint16_t status, uint32_t dw0)
{
    NvmexCQ *cq = &c->st.cq[cqid];
    uint8_t cqe[16];

    if (nvmex_cq_full(cq)) {
        return false;
    }
    stl_le_p(cqe, dw0);
    stl_le_p(cqe + 4, 0);
    stw_le_p(cqe + 8, c->st.sq[sqid].head);
    stw_le_p(cqe + 10, sqid);
    stw_le_p(cqe + 12, cid);
    stw_le_p(cqe + 14, (uint16_t)(status << 1) | cq->phase);
    if (pci_dma_write(PCI_DEVICE(c), cq->dma_addr + cq->tail * 16ull, cqe,
                      16) != MEMTX_OK) {
        nvmex_fatal(c, "completion queue write failed");
        return true;
    }
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase ^= 1;
    }
    c->irq_pending[cqid] = true;
    qemu_bh_schedule(c->irq_bh);
    return true;
}

static void nvmex_post(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexSQ *sq = &c->st.sq[r->sqid];

    if (!sq->valid || sq->gen != r->sq_gen || !NVMEX_CC_EN(c->st.cc)) {
        /* Its queue was deleted or the controller reset meanwhile */
        nvmex_req_put(r);
        return;
    }
    if (r->status) {
        nvmex_record_error(c, r);
    }
    trace_nvmex_complete(r->sqid, r->cid, r->status, r->dw0);
    if (!QTAILQ_EMPTY(&c->cq_wait[sq->cqid]) ||
        !nvmex_cq_write(c, sq->cqid, r->sqid, r->cid, r->status, r->dw0)) {
        QTAILQ_INSERT_TAIL(&c->cq_wait[sq->cqid], r, entry);
        return;
    }
    nvmex_req_put(r);
    if (c->starved) {
        /* Fetching stopped for want of requests: resume it */
        c->starved = false;
        nvmex_kick(c);
    }
}

static void nvmex_cq_drain_waiters(NvmeExport *c, uint16_t cqid)
{
    NvmexReq *r;

    while ((r = QTAILQ_FIRST(&c->cq_wait[cqid]))) {
        if (!nvmex_cq_write(c, cqid, r->sqid, r->cid, r->status, r->dw0)) {
            return;
        }
        QTAILQ_REMOVE(&c->cq_wait[cqid], r, entry);
        nvmex_req_put(r);
        if (c->starved) {
            c->starved = false;
            nvmex_kick(c);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Data pointers                                                       */

static int nvmex_dma_read(void *opaque, uint64_t addr, void *buf, uint32_t len)
{
    NvmexReq *r = opaque;

    return pci_dma_read(PCI_DEVICE(r->c), addr, buf, len) == MEMTX_OK ? 0
                                                                      : -1;
}

static uint16_t nvmex_sg_emit(void *opaque, uint64_t addr, uint64_t len)
{
    NvmexReq *r = opaque;
    PCIDevice *pci = PCI_DEVICE(r->c);

    /* Device writes guest memory on reads, and the reverse */
    if (!address_space_access_valid(pci_get_address_space(pci), addr, len,
                                    !r->write, MEMTXATTRS_UNSPECIFIED)) {
        nvmex_guest_error(r->c, "sq %u cid %u: data at 0x%" PRIx64 "+0x%" PRIx64
                    " is not guest memory", r->sqid, r->cid, addr, len);
        return NVMEX_DATA_TRANSFER_ERROR;
    }
    qemu_sglist_add(&r->sg, addr, len);
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_map_dptr(NvmexReq *r, uint64_t len)
{
    NvmeExport *c = r->c;
    uint8_t psdt = (r->sqe[1] >> 6) & 3;
    uint16_t st;

    qemu_sglist_init(&r->sg, DEVICE(c), 4,
                     pci_get_address_space(PCI_DEVICE(c)));
    r->sg_live = true;
    if (psdt == 0) {
        st = nvmex_prp_walk(ldq_le_p(r->sqe + 24), ldq_le_p(r->sqe + 32), len,
                            NVMEX_PAGE_SIZE, nvmex_dma_read, nvmex_sg_emit, r);
    } else if (psdt == 1 && c->tmpl.sgl && r->sqid) {
        st = nvmex_sgl_walk(r->sqe + 24, len, nvmex_dma_read, nvmex_sg_emit, r);
    } else {
        nvmex_guest_error(c, "sq %u cid %u: PSDT %u not supported here",
                          r->sqid, r->cid, psdt);
        st = NVMEX_INVALID_FIELD;
    }
    if (st) {
        if (st != NVMEX_DATA_TRANSFER_ERROR) {
            nvmex_guest_error(c, "sq %u cid %u: bad data pointer, status 0x%x",
                        r->sqid, r->cid, st);
        }
        qemu_sglist_destroy(&r->sg);
        r->sg_live = false;
    }
    return st;
}

/* Copy a controller buffer to (@to_host) or from the command's data */
static uint16_t nvmex_xfer(NvmexReq *r, void *buf, uint32_t len, bool to_host)
{
    dma_addr_t residual;
    MemTxResult res;
    uint16_t st;

    r->write = !to_host;
    st = nvmex_map_dptr(r, len);
    if (st) {
        return st;
    }
    if (to_host) {
        res = dma_buf_read(buf, len, &residual, &r->sg,
                           MEMTXATTRS_UNSPECIFIED);
    } else {
        res = dma_buf_write(buf, len, &residual, &r->sg,
                            MEMTXATTRS_UNSPECIFIED);
    }
    qemu_sglist_destroy(&r->sg);
    r->sg_live = false;
    return res == MEMTX_OK ? NVMEX_SUCCESS : NVMEX_DATA_TRANSFER_ERROR;
}

/* ------------------------------------------------------------------ */
/* Asynchronous events                                                 */

static void nvmex_aen_deliver(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;

    while (s->aer_count && s->aen_count) {
        NvmexReq *r = nvmex_req_get(c);
        uint32_t dw0 = s->aen[0];

        memmove(&s->aen[0], &s->aen[1], sizeof(s->aen[0]) * --s->aen_count);
        r->sqid = 0;
        r->sq_gen = s->sq[0].gen;
        r->cid = s->aer_cid[--s->aer_count];
        r->dw0 = dw0;
        s->aen_masked |= 1u << (dw0 & 7);
        trace_nvmex_aen(dw0);
        nvmex_post(r);
    }
}

static void nvmex_aen_raise(NvmeExport *c, uint8_t type, uint8_t info,
                            uint8_t lid)
{
    NvmexCtrlState *s = &c->st;
    uint32_t dw0 = type | info << 8 | (uint32_t)lid << 16;

    if ((s->aen_masked & (1u << type)) || s->aen_count == NVMEX_MAX_AEN) {
        return;
    }
    for (int i = 0; i < s->aen_count; i++) {
        if (s->aen[i] == dw0) {
            return;
        }
    }
    s->aen[s->aen_count++] = dw0;
    nvmex_aen_deliver(c);
}

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
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint8_t cns = dw10 & 0xff, csi = dw11 >> 24;
    uint32_t nsid = ldl_le_p(r->sqe + 4);
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
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint64_t off = ldq_le_p(r->sqe + 48);
    uint8_t lid = dw10 & 0xff;
    bool rae = dw10 & (1u << 15);
    uint64_t len = (((uint64_t)(dw11 & 0xffff) << 16 | dw10 >> 16) + 1) * 4;
    uint32_t nsid = ldl_le_p(r->sqe + 4);
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
    case NVMEX_LOG_CHANGED_NS:
        size = NVMEX_CHANGED_NS_SIZE;
        log = g_malloc0(size);
        for (int i = 0; i < s->changed_ns_count; i++) {
            stl_le_p(log + 4 * i, s->changed_ns[i]);
        }
        break;
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
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint16_t qid = dw10 & 0xffff, iv = dw11 >> 16;
    uint32_t size = (dw10 >> 16) + 1;
    uint64_t base = ldq_le_p(r->sqe + 24);
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
    if (!(dw11 & 1) || (base & (NVMEX_PAGE_SIZE - 1)) || !base) {
        nvmex_guest_error(c, "create cq %u: base 0x%" PRIx64 " not a "
                          "contiguous page-aligned queue", qid, base);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if ((dw11 & 2) && iv >= c->nvec) {
        nvmex_guest_error(c, "create cq %u: bad vector %u", qid, iv);
        return NVMEX_INVALID_IRQ_VECTOR | NVMEX_DNR;
    }
    cq = &s->cq[qid];
    *cq = (NvmexCQ) {
        .dma_addr = base, .size = size, .vector = iv, .phase = 1,
        .ien = !!(dw11 & 2), .valid = 1,
    };
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_adm_create_sq(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexCtrlState *s = &c->st;
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint16_t qid = dw10 & 0xffff, cqid = dw11 >> 16;
    uint32_t size = (dw10 >> 16) + 1;
    uint64_t base = ldq_le_p(r->sqe + 24);
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
    if (!(dw11 & 1) || (base & (NVMEX_PAGE_SIZE - 1)) || !base) {
        nvmex_guest_error(c, "create sq %u: base 0x%" PRIx64 " not a "
                          "contiguous page-aligned queue", qid, base);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    sq = &s->sq[qid];
    *sq = (NvmexSQ) {
        .dma_addr = base, .size = size, .cqid = cqid, .valid = 1,
        .prio = (dw11 >> 1) & 3, .gen = sq->gen + 1,
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
    uint16_t qid = ldl_le_p(r->sqe + 40) & 0xffff;

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
    uint16_t qid = ldl_le_p(r->sqe + 40) & 0xffff;

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
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint8_t fid = dw10 & 0xff;

    trace_nvmex_set_feature(fid, dw11);
    if (dw10 & (1u << 31)) {
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
    default:
        nvmex_guest_error(c, "set features: FID 0x%x not supported", fid);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    return NVMEX_SUCCESS;
}

static void nvmex_features_default(NvmeExport *c, NvmexFeatures *f)
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
    uint32_t dw10 = ldl_le_p(r->sqe + 40), dw11 = ldl_le_p(r->sqe + 44);
    uint8_t fid = dw10 & 0xff, sel = (dw10 >> 8) & 7;

    nvmex_features_default(c, &def);
    if (sel == 1 || sel == 2) {
        f = &def;
    } else if (sel == 3) {
        switch (fid) {
        case NVMEX_FEAT_ARBITRATION: case NVMEX_FEAT_POWER_MGMT:
        case NVMEX_FEAT_TEMP_THRESHOLD: case NVMEX_FEAT_ERROR_RECOVERY:
        case NVMEX_FEAT_NUM_QUEUES: case NVMEX_FEAT_IRQ_COALESCING:
        case NVMEX_FEAT_IRQ_VECTOR: case NVMEX_FEAT_WRITE_ATOMIC:
        case NVMEX_FEAT_ASYNC_EVENT:
            r->dw0 = 2;                         /* changeable */
            return NVMEX_SUCCESS;
        case NVMEX_FEAT_VWC:
            r->dw0 = c->tmpl.vwc ? 2 : 0;
            return NVMEX_SUCCESS;
        case NVMEX_FEAT_RATE_LIMIT:
            if (c->tmpl.rate_limit) {
                r->dw0 = 2;
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
    uint32_t nsid = ldl_le_p(r->sqe + 4);
    uint64_t slba = ldq_le_p(r->sqe + 40);
    uint32_t mndw = ldl_le_p(r->sqe + 48), dw13 = ldl_le_p(r->sqe + 52);
    uint32_t rl = dw13 & 0xffff;
    uint8_t atype = dw13 >> 24;
    uint64_t len = ((uint64_t)mndw + 1) * 4, end, lba, gran;
    NvmexNs *ns = nsid && nsid <= NVMEX_MAX_NSID ? c->ns[nsid] : NULL;
    const NvmexNsTemplate *nt;
    BlockDriverState *bs;
    g_autofree uint8_t *buf = NULL;
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
    maxdesc = (len - 8) / 16;
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
                    stq_le_p(buf + 8 + 16 * (ndesc - 1), dstart);
                    stl_le_p(buf + 8 + 16 * (ndesc - 1) + 8, dend - dstart);
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
        stq_le_p(buf + 8 + 16 * (ndesc - 1), dstart);
        stl_le_p(buf + 8 + 16 * (ndesc - 1) + 8, dend - dstart);
    }
    stl_le_p(buf, ndesc);
    buf[4] = cmpc;
    trace_nvmex_lba_status(nsid, slba, ndesc);
    return nvmex_xfer(r, buf, len, true);
}

/* A status, or NVMEX_ASYNC when the request is no longer ours */
static uint16_t nvmex_admin_cmd(NvmexReq *r)
{
    NvmeExport *c = r->c;

    if (!nvmex_admin_supported(&c->tmpl, r->opc)) {
        nvmex_guest_error(c, "admin: opcode 0x%x not supported", r->opc);
        return NVMEX_INVALID_OPCODE | NVMEX_DNR;
    }
    if ((r->sqe[1] >> 6) & 3) {
        nvmex_guest_error(c, "admin: opcode 0x%x uses SGLs", r->opc);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    switch (r->opc) {
    case NVMEX_ADM_IDENTIFY:
        return nvmex_adm_identify(r);
    case NVMEX_ADM_GET_LOG_PAGE:
        return nvmex_adm_get_log(r);
    case NVMEX_ADM_CREATE_CQ:
        return nvmex_adm_create_cq(r);
    case NVMEX_ADM_CREATE_SQ:
        return nvmex_adm_create_sq(r);
    case NVMEX_ADM_DELETE_SQ:
        return nvmex_adm_delete_sq(r);
    case NVMEX_ADM_DELETE_CQ:
        return nvmex_adm_delete_cq(r);
    case NVMEX_ADM_SET_FEATURES:
        return nvmex_adm_set_features(r);
    case NVMEX_ADM_GET_FEATURES:
        return nvmex_adm_get_features(r);
    case NVMEX_ADM_GET_LBA_STATUS:
        return nvmex_adm_get_lba_status(r);
    case NVMEX_ADM_ABORT:
        /* Commands are never queued inside: nothing can be aborted */
        r->dw0 = 1;
        return NVMEX_SUCCESS;
    case NVMEX_ADM_AER:
        if (c->st.aer_count == NVMEX_MAX_AER) {
            return NVMEX_AER_LIMIT_EXCEEDED | NVMEX_DNR;
        }
        c->st.aer_cid[c->st.aer_count++] = r->cid;
        nvmex_req_put(r);
        nvmex_aen_deliver(c);
        return NVMEX_ASYNC;
    }
    return NVMEX_INVALID_OPCODE | NVMEX_DNR;
}

/* ------------------------------------------------------------------ */
/* I/O commands                                                        */

static void nvmex_io_done(void *opaque, int ret)
{
    NvmexReq *r = opaque;
    NvmexNs *ns = r->ns;
    BlockAcctStats *stats = blk_get_stats(ns->conf.blk);

    if (ret < 0) {
        if (r->acct_live) {
            block_acct_failed(stats, &r->acct);
            r->acct_live = false;
        }
        if (!r->status) {
            r->status = r->opc == NVMEX_IO_READ ? NVMEX_UNRECOVERED_READ
                                                : NVMEX_WRITE_FAULT;
            r->c->st.smart.media_errors++;
        }
    } else if (r->pending == 1 && r->acct_live) {
        block_acct_done(stats, &r->acct);
        r->acct_live = false;
    }
    if (--r->pending) {
        return;
    }
    if (ret >= 0 && r->fua && r->opc == NVMEX_IO_WRITE) {
        /* Force Unit Access: durable before completion */
        r->fua = false;
        r->pending = 1;
        blk_aio_flush(ns->conf.blk, nvmex_io_done, r);
        return;
    }
    nvmex_post(r);
}

static uint16_t nvmex_check_range(NvmexReq *r, uint64_t slba, uint64_t nlb)
{
    if (slba + nlb < slba || slba + nlb > r->ns->geo.nsze) {
        nvmex_guest_error(r->c, "nsid %u: LBA range %" PRIu64 "+%" PRIu64
                    " beyond %" PRIu64, r->ns->nsid, slba, nlb,
                    r->ns->geo.nsze);
        return NVMEX_LBA_OUT_OF_RANGE | NVMEX_DNR;
    }
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_io_rw(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexNs *ns = r->ns;
    uint64_t slba = ldq_le_p(r->sqe + 40);
    uint32_t dw12 = ldl_le_p(r->sqe + 48);
    uint64_t nlb = (dw12 & 0xffff) + 1;
    uint64_t len = nlb << ns->geo.lbads;
    BlockBackend *blk = ns->conf.blk;
    uint16_t st;

    r->write = r->opc == NVMEX_IO_WRITE;
    r->fua = r->write && (dw12 & (1u << 30));
    st = nvmex_check_range(r, slba, nlb);
    if (st) {
        return st;
    }
    if (len > (uint64_t)NVMEX_PAGE_SIZE << c->tmpl.mdts) {
        nvmex_guest_error(c, "transfer of %" PRIu64 " bytes exceeds MDTS", len);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    st = nvmex_map_dptr(r, len);
    if (st) {
        return st;
    }
    r->bytes = len;
    r->pending = 1;
    block_acct_start(blk_get_stats(blk), &r->acct, len,
                     r->write ? BLOCK_ACCT_WRITE : BLOCK_ACCT_READ);
    r->acct_live = true;
    if (r->write) {
        ns->writes++;
        ns->bytes_written += len;
        c->st.smart.write_cmds++;
        c->st.smart.units_written += DIV_ROUND_UP(len, 512000);
        dma_blk_write(blk, &r->sg, slba << ns->geo.lbads, BDRV_SECTOR_SIZE,
                      nvmex_io_done, r);
    } else {
        ns->reads++;
        ns->bytes_read += len;
        c->st.smart.read_cmds++;
        c->st.smart.units_read += DIV_ROUND_UP(len, 512000);
        dma_blk_read(blk, &r->sg, slba << ns->geo.lbads, BDRV_SECTOR_SIZE,
                     nvmex_io_done, r);
    }
    return NVMEX_ASYNC;
}

static uint16_t nvmex_io_write_zeroes(NvmexReq *r)
{
    NvmexNs *ns = r->ns;
    uint64_t slba = ldq_le_p(r->sqe + 40);
    uint32_t dw12 = ldl_le_p(r->sqe + 48);
    uint64_t nlb = (dw12 & 0xffff) + 1;
    BdrvRequestFlags flags = (dw12 & (1u << 25)) ? BDRV_REQ_MAY_UNMAP : 0;
    uint16_t st = nvmex_check_range(r, slba, nlb);

    if (st) {
        return st;
    }
    r->pending = 1;
    block_acct_start(blk_get_stats(ns->conf.blk), &r->acct, 0,
                     BLOCK_ACCT_WRITE);
    r->acct_live = true;
    blk_aio_pwrite_zeroes(ns->conf.blk, slba << ns->geo.lbads,
                          nlb << ns->geo.lbads, flags, nvmex_io_done, r);
    return NVMEX_ASYNC;
}

static uint16_t nvmex_io_dsm(NvmexReq *r)
{
    NvmexNs *ns = r->ns;
    uint32_t nr = (ldl_le_p(r->sqe + 40) & 0xff) + 1;
    uint32_t attr = ldl_le_p(r->sqe + 44);
    g_autofree uint8_t *ranges = g_malloc(nr * 16);
    uint16_t st;

    st = nvmex_xfer(r, ranges, nr * 16, false);
    if (st) {
        return st;
    }
    for (uint32_t i = 0; i < nr; i++) {
        st = nvmex_check_range(r, ldq_le_p(ranges + 16 * i + 8),
                         ldl_le_p(ranges + 16 * i + 4));
        if (st) {
            return st;
        }
    }
    if (!(attr & 4)) {
        return NVMEX_SUCCESS;           /* hints only */
    }
    r->pending = 1;                     /* held until all are issued */
    block_acct_start(blk_get_stats(ns->conf.blk), &r->acct, 0,
                     BLOCK_ACCT_UNMAP);
    r->acct_live = true;
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t slba = ldq_le_p(ranges + 16 * i + 8);
        uint32_t nlb = ldl_le_p(ranges + 16 * i + 4);

        if (!nlb) {
            continue;
        }
        /* A zero write that may unmap: reads return zeroes (DLFEAT) */
        r->pending++;
        ns->deallocated += nlb;
        blk_aio_pwrite_zeroes(ns->conf.blk, slba << ns->geo.lbads,
                              (uint64_t)nlb << ns->geo.lbads,
                              BDRV_REQ_MAY_UNMAP, nvmex_io_done, r);
    }
    nvmex_io_done(r, 0);
    return NVMEX_ASYNC;
}

static uint16_t nvmex_io_flush(NvmexReq *r, uint32_t nsid)
{
    NvmeExport *c = r->c;

    r->pending = 1;
    for (uint32_t i = 1; i <= NVMEX_MAX_NSID; i++) {
        NvmexNs *ns = c->ns[i];

        if (ns && (nsid == 0xffffffff || nsid == i)) {
            r->pending++;
            r->ns = ns;
            blk_aio_flush(ns->conf.blk, nvmex_io_done, r);
        }
    }
    if (!r->ns) {
        r->pending = 0;
        return NVMEX_SUCCESS;
    }
    nvmex_io_done(r, 0);
    return NVMEX_ASYNC;
}

static uint16_t nvmex_io_cmd(NvmexReq *r)
{
    NvmeExport *c = r->c;
    uint32_t nsid = ldl_le_p(r->sqe + 4);

    if (!nvmex_io_supported(&c->tmpl, r->opc)) {
        nvmex_guest_error(c, "sq %u: I/O opcode 0x%x not supported", r->sqid,
                    r->opc);
        return NVMEX_INVALID_OPCODE | NVMEX_DNR;
    }
    if (r->opc == NVMEX_IO_FLUSH && nsid == 0xffffffff) {
        return nvmex_io_flush(r, nsid);
    }
    r->ns = nsid && nsid <= NVMEX_MAX_NSID ? c->ns[nsid] : NULL;
    if (!r->ns) {
        nvmex_guest_error(c, "sq %u cid %u: nsid %u is not active", r->sqid,
                    r->cid, nsid);
        return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
    }
    switch (r->opc) {
    case NVMEX_IO_READ:
    case NVMEX_IO_WRITE:
        return nvmex_io_rw(r);
    case NVMEX_IO_WRITE_ZEROES:
        return nvmex_io_write_zeroes(r);
    case NVMEX_IO_DSM:
        return nvmex_io_dsm(r);
    case NVMEX_IO_FLUSH:
        return nvmex_io_flush(r, nsid);
    }
    return NVMEX_INVALID_OPCODE | NVMEX_DNR;
}

/* ------------------------------------------------------------------ */
/* Submission queue processing                                         */

/* TP4176: may this command start now?  Arms the timer if not. */
static bool nvmex_rate_admit(NvmeExport *c, const uint8_t *sqe)
{
    uint8_t opc = sqe[0];
    uint64_t bytes = 0;
    int64_t now, wait;
    uint32_t nsid = ldl_le_p(sqe + 4);

    if (!c->limiter.cfg.enabled) {
        return true;
    }
    if ((opc == NVMEX_IO_READ || opc == NVMEX_IO_WRITE) && nsid &&
        nsid <= NVMEX_MAX_NSID && c->ns[nsid]) {
        bytes = (uint64_t)((ldl_le_p(sqe + 48) & 0xffff) + 1)
                << c->ns[nsid]->geo.lbads;
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    wait = nvmex_limiter_admit(&c->limiter, now, opc == NVMEX_IO_WRITE,
                               bytes);
    if (wait) {
        c->throttled++;
        c->throttled_ns += wait;
        timer_mod(c->rl_timer, now + wait);
        return false;
    }
    return true;
}

static void nvmex_process_sq(NvmeExport *c, uint16_t sqid)
{
    NvmexSQ *sq = &c->st.sq[sqid];
    uint8_t sqes[NVMEX_SQ_BATCH * 64];

    if (c->inflight >= NVMEX_MAX_REQS) {
        c->starved = true;
        return;
    }
    while (sq->valid && sq->head != sq->tail &&
           !(c->st.csts & NVMEX_CSTS_CFS)) {
        uint32_t n = sq->tail > sq->head ? sq->tail - sq->head
                                         : sq->size - sq->head;

        n = MIN(n, NVMEX_SQ_BATCH);
        if (pci_dma_read(PCI_DEVICE(c), sq->dma_addr + sq->head * 64ull,
                         sqes, n * 64) != MEMTX_OK) {
            nvmex_fatal(c, "submission queue read failed");
            return;
        }
        for (uint32_t i = 0; i < n; i++) {
            NvmexReq *r;
            uint16_t st;

            if (sqid && !nvmex_rate_admit(c, sqes + i * 64)) {
                return;
            }
            r = nvmex_req_get(c);
            memcpy(r->sqe, sqes + i * 64, 64);
            r->opc = r->sqe[0];
            r->cid = lduw_le_p(r->sqe + 2);
            r->sqid = sqid;
            r->sq_gen = sq->gen;
            sq->head = (sq->head + 1) % sq->size;
            c->commands++;
            trace_nvmex_submit(sqid, r->cid, r->opc);
            if ((r->sqe[1] & 3) != 0) {
                nvmex_guest_error(c, "sq %u cid %u: fused commands not "
                                  "supported", sqid, r->cid);
                st = NVMEX_INVALID_FIELD | NVMEX_DNR;
            } else if (sqid == 0) {
                st = nvmex_admin_cmd(r);
            } else {
                st = nvmex_io_cmd(r);
            }
            if (st != NVMEX_ASYNC) {
                r->status = st;
                nvmex_post(r);
            }
            if (c->inflight >= NVMEX_MAX_REQS) {
                c->starved = true;
                return;
            }
            if (!sq->valid) {
                return;         /* deleted by this very batch */
            }
        }
    }
}

static void nvmex_sq_bh(void *opaque)
{
    NvmeExport *c = opaque;

    /*
     * Nothing is fetched while the VM is stopped (the images may not even
     * be ours yet on a migration destination); nvmex_vm_state_change() kicks
     * again on resume.
     */
    if (!NVMEX_CC_EN(c->st.cc) || (c->st.csts & NVMEX_CSTS_CFS) ||
        !runstate_is_running()) {
        return;
    }
    nvmex_process_sq(c, 0);
    for (int i = 1; i < NVMEX_NQUEUES; i++) {
        if (c->st.sq[i].valid) {
            nvmex_process_sq(c, i);
        }
    }
}

static void nvmex_kick(NvmeExport *c)
{
    qemu_bh_schedule(c->sq_bh);
}

static void nvmex_rl_timer_cb(void *opaque)
{
    nvmex_kick(opaque);
}

static void nvmex_vm_state_change(void *opaque, bool running, RunState state)
{
    if (running) {
        nvmex_kick(opaque);
    }
}

/* ------------------------------------------------------------------ */
/* Registers                                                           */

static void nvmex_ctrl_reset(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;
    NvmexReq *r;

    for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
        if (c->ns[i]) {
            blk_drain(c->ns[i]->conf.blk);
        }
    }
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        while ((r = QTAILQ_FIRST(&c->cq_wait[i]))) {
            QTAILQ_REMOVE(&c->cq_wait[i], r, entry);
            nvmex_req_put(r);
        }
        s->sq[i].valid = 0;
        s->sq[i].gen++;
        s->cq[i].valid = 0;
        c->irq_pending[i] = false;
    }
    s->aer_count = 0;
    s->aen_count = 0;
    s->aen_masked = 0;
    nvmex_features_default(c, &s->feat);
    s->csts &= ~(NVMEX_CSTS_RDY | NVMEX_CSTS_CFS);
    s->intms = 0;
    timer_del(c->rl_timer);
    nvmex_update_intx(c);
}

static void nvmex_ctrl_enable(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;
    uint32_t asqs = (s->aqa & 0xfff) + 1, acqs = ((s->aqa >> 16) & 0xfff) + 1;

    if (NVMEX_CC_MPS(s->cc) != 0 || NVMEX_CC_CSS(s->cc) != 0 ||
        NVMEX_CC_AMS(s->cc) != 0) {
        nvmex_fatal(c, "CC selects an unsupported page size, command set or "
              "arbitration");
        return;
    }
    if (!s->asq || !s->acq || (s->asq | s->acq) & (NVMEX_PAGE_SIZE - 1) ||
        asqs < 2 || acqs < 2) {
        nvmex_fatal(c, "admin queue base or size invalid");
        return;
    }
    s->sq[0] = (NvmexSQ) { .dma_addr = s->asq, .size = asqs, .valid = 1,
                           .gen = s->sq[0].gen + 1 };
    s->cq[0] = (NvmexCQ) { .dma_addr = s->acq, .size = acqs, .valid = 1,
                           .phase = 1, .ien = 1, .nsq = 1 };
    s->csts |= NVMEX_CSTS_RDY;
}

static void nvmex_write_cc(NvmeExport *c, uint32_t val)
{
    NvmexCtrlState *s = &c->st;
    uint32_t old = s->cc;

    s->cc = val;
    if (NVMEX_CC_EN(val) && !NVMEX_CC_EN(old)) {
        nvmex_ctrl_enable(c);
    } else if (!NVMEX_CC_EN(val) && NVMEX_CC_EN(old)) {
        nvmex_ctrl_reset(c);
    }
    if (NVMEX_CC_SHN(val)) {
        for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
            if (c->ns[i]) {
                blk_flush(c->ns[i]->conf.blk);
            }
        }
        s->csts = (s->csts & ~(3u << 2)) | NVMEX_CSTS_SHST_DONE;
    } else {
        s->csts &= ~(3u << 2);
    }
}

static void nvmex_doorbell(NvmeExport *c, hwaddr off, uint32_t val)
{
    NvmexCtrlState *s = &c->st;
    uint32_t idx = (off - NVMEX_REG_DBS) / 4;
    uint16_t qid = idx / 2;
    bool is_cq = idx & 1;

    if (!NVMEX_CC_EN(s->cc) || !(s->csts & NVMEX_CSTS_RDY)) {
        nvmex_guest_error(c, "doorbell 0x%" HWADDR_PRIx " written while "
                          "disabled", off);
        return;
    }
    if ((off & 3) || qid >= NVMEX_NQUEUES ||
        !(is_cq ? s->cq[qid].valid : s->sq[qid].valid)) {
        nvmex_guest_error(c, "doorbell 0x%" HWADDR_PRIx " of no queue", off);
        nvmex_aen_raise(c, NVMEX_AET_ERROR, NVMEX_AEI_ERR_INVALID_DB,
                  NVMEX_LOG_ERROR);
        return;
    }
    if (is_cq) {
        NvmexCQ *cq = &s->cq[qid];
        /* The new head may not pass entries not yet posted */
        uint32_t posted = (cq->tail + cq->size - cq->head) % cq->size;
        uint32_t moved = (val + cq->size - cq->head) % cq->size;

        if (val >= cq->size || moved > posted) {
            nvmex_guest_error(c, "cq %u head %u invalid (size %u, tail %u)",
                              qid, val, cq->size, cq->tail);
            nvmex_aen_raise(c, NVMEX_AET_ERROR, NVMEX_AEI_ERR_INVALID_DB_VALUE,
                      NVMEX_LOG_ERROR);
            return;
        }
        cq->head = val;
        nvmex_cq_drain_waiters(c, qid);
        nvmex_update_intx(c);
    } else {
        NvmexSQ *sq = &s->sq[qid];

        if (val >= sq->size) {
            nvmex_guest_error(c, "sq %u tail %u beyond size %u", qid, val,
                        sq->size);
            nvmex_aen_raise(c, NVMEX_AET_ERROR, NVMEX_AEI_ERR_INVALID_DB_VALUE,
                      NVMEX_LOG_ERROR);
            return;
        }
        sq->tail = val;
        nvmex_kick(c);
    }
}

static uint32_t nvmex_reg_read32(NvmeExport *c, hwaddr off)
{
    NvmexCtrlState *s = &c->st;

    switch (off) {
    case NVMEX_REG_CAP:
        return s->cap;
    case NVMEX_REG_CAP + 4:
        return s->cap >> 32;
    case NVMEX_REG_VS:
        return NVMEX_VERSION;
    case NVMEX_REG_INTMS:
    case NVMEX_REG_INTMC:
        return s->intms;
    case NVMEX_REG_CC:
        return s->cc;
    case NVMEX_REG_CSTS:
        return s->csts;
    case NVMEX_REG_AQA:
        return s->aqa;
    case NVMEX_REG_ASQ:
        return s->asq;
    case NVMEX_REG_ASQ + 4:
        return s->asq >> 32;
    case NVMEX_REG_ACQ:
        return s->acq;
    case NVMEX_REG_ACQ + 4:
        return s->acq >> 32;
    }
    return 0;
}

static uint64_t nvmex_mmio_read(void *opaque, hwaddr off, unsigned size)
{
    NvmeExport *c = opaque;
    uint64_t v;

    if (off & (size - 1)) {
        nvmex_guest_error(c, "misaligned %u-byte read at 0x%" HWADDR_PRIx, size,
                    off);
        return 0;
    }
    v = nvmex_reg_read32(c, off & ~3);
    if (size == 8) {
        v |= (uint64_t)nvmex_reg_read32(c, off + 4) << 32;
    } else {
        v = (v >> ((off & 3) * 8)) & MAKE_64BIT_MASK(0, size * 8);
    }
    return v;
}

static void nvmex_reg_write32(NvmeExport *c, hwaddr off, uint32_t val)
{
    NvmexCtrlState *s = &c->st;
    bool en = NVMEX_CC_EN(s->cc);

    if (off >= NVMEX_REG_DBS) {
        nvmex_doorbell(c, off, val);
        return;
    }
    trace_nvmex_reg_write(off, val);
    switch (off) {
    case NVMEX_REG_INTMS:
        s->intms |= val;
        nvmex_update_intx(c);
        return;
    case NVMEX_REG_INTMC:
        s->intms &= ~val;
        nvmex_update_intx(c);
        return;
    case NVMEX_REG_CC:
        nvmex_write_cc(c, val);
        return;
    case NVMEX_REG_CSTS:
        if (val & NVMEX_CSTS_NSSRO) {
            s->csts &= ~NVMEX_CSTS_NSSRO;
        }
        return;
    case NVMEX_REG_NSSR:
        return;                 /* NSSRS is 0: no subsystem reset */
    }
    if (off >= NVMEX_REG_AQA && off < NVMEX_REG_ACQ + 8 && en) {
        nvmex_guest_error(c, "admin queue register 0x%" HWADDR_PRIx " written "
                    "while enabled", off);
        return;
    }
    switch (off) {
    case NVMEX_REG_AQA:
        s->aqa = val & 0x0fff0fff;
        return;
    case NVMEX_REG_ASQ:
        s->asq = deposit64(s->asq, 0, 32, val);
        return;
    case NVMEX_REG_ASQ + 4:
        s->asq = deposit64(s->asq, 32, 32, val);
        return;
    case NVMEX_REG_ACQ:
        s->acq = deposit64(s->acq, 0, 32, val);
        return;
    case NVMEX_REG_ACQ + 4:
        s->acq = deposit64(s->acq, 32, 32, val);
        return;
    }
    nvmex_guest_error(c, "write to read-only or reserved register 0x%"
                HWADDR_PRIx, off);
}

static void nvmex_mmio_write(void *opaque, hwaddr off, uint64_t val,
                             unsigned size)
{
    NvmeExport *c = opaque;

    if (size < 4 || (off & (size - 1))) {
        nvmex_guest_error(c, "%u-byte write at 0x%" HWADDR_PRIx " ignored",
                          size, off);
        return;
    }
    nvmex_reg_write32(c, off, val);
    if (size == 8) {
        nvmex_reg_write32(c, off + 4, val >> 32);
    }
}

static const MemoryRegionOps nvmex_mmio_ops = {
    .read = nvmex_mmio_read,
    .write = nvmex_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ------------------------------------------------------------------ */
/* Template loading                                                    */

static bool nvmex_qobj_to_text(QObject *o, char **out)
{
    switch (qobject_type(o)) {
    case QTYPE_QSTRING:
        *out = g_strdup(qstring_get_str(qobject_to(QString, o)));
        return true;
    case QTYPE_QBOOL:
        *out = g_strdup(qbool_get_bool(qobject_to(QBool, o)) ? "on" : "off");
        return true;
    case QTYPE_QNUM:
        *out = qnum_to_string(qobject_to(QNum, o));
        return true;
    case QTYPE_QLIST: {
        /* Lists of numbers: the lba-formats block sizes */
        GString *s = g_string_new("");
        QListEntry *e;

        QLIST_FOREACH_ENTRY(qobject_to(QList, o), e) {
            QNum *n = qobject_to(QNum, qlist_entry_obj(e));

            if (!n) {
                g_string_free(s, true);
                return false;
            }
            g_autofree char *t = qnum_to_string(n);
            g_string_append_printf(s, "%s%s", s->len ? "," : "", t);
        }
        *out = g_string_free(s, false);
        return true;
    }
    default:
        return false;
    }
}

static bool nvmex_load_ns_entry(NvmeExport *c, int idx, QDict *d, Error **errp)
{
    QObject *id = qdict_get(d, "nsid");
    NvmexNsTemplate *n;
    const QDictEntry *e;
    char err[256];

    if (!id || qobject_type(id) != QTYPE_QNUM) {
        error_setg(errp, "template: namespaces[%d].nsid: missing or not a "
                   "number", idx);
        return false;
    }
    n = nvmex_template_ns(&c->tmpl, qnum_get_uint(qobject_to(QNum, id)),
                          true);
    if (!n) {
        error_setg(errp, "template: namespaces[%d]: more than %d namespaces",
                   idx, NVMEX_MAX_NS);
        return false;
    }
    for (e = qdict_first(d); e; e = qdict_next(d, e)) {
        g_autofree char *v = NULL;

        if (!nvmex_qobj_to_text(qdict_entry_value(e), &v)) {
            error_setg(errp, "template: namespaces[%d].%s: unsupported "
                       "value type", idx, qdict_entry_key(e));
            return false;
        }
        if (nvmex_ns_template_set(n, qdict_entry_key(e), v, err,
                                  sizeof(err))) {
            error_setg(errp, "template: namespaces[%d].%s", idx, err);
            return false;
        }
    }
    return true;
}

static bool nvmex_load_template(NvmeExport *c, const char *path, Error **errp)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    Error *local = NULL;
    QObject *obj;
    QDict *d;
    const QDictEntry *e;
    char err[256];
    bool ok = false;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        error_setg(errp, "template: %s", gerr->message);
        return false;
    }
    obj = qobject_from_json(text, &local);
    if (!obj) {
        error_propagate_prepend(errp, local, "template %s: ", path);
        return false;
    }
    d = qobject_to(QDict, obj);
    if (!d) {
        error_setg(errp, "template %s: not a JSON object", path);
        goto out;
    }
    for (e = qdict_first(d); e; e = qdict_next(d, e)) {
        const char *key = qdict_entry_key(e);
        QObject *val = qdict_entry_value(e);
        g_autofree char *v = NULL;

        if (!strcmp(key, "namespaces")) {
            QList *l = qobject_to(QList, val);
            QListEntry *le;
            int i = 0;

            if (!l) {
                error_setg(errp, "template: namespaces: not a list");
                goto out;
            }
            QLIST_FOREACH_ENTRY(l, le) {
                QDict *nd = qobject_to(QDict, qlist_entry_obj(le));

                if (!nd) {
                    error_setg(errp, "template: namespaces[%d]: not an "
                               "object", i);
                    goto out;
                }
                if (!nvmex_load_ns_entry(c, i++, nd, errp)) {
                    goto out;
                }
            }
            continue;
        }
        if (!nvmex_qobj_to_text(val, &v)) {
            error_setg(errp, "template: %s: unsupported value type", key);
            goto out;
        }
        if (nvmex_template_set(&c->tmpl, key, v, err, sizeof(err))) {
            error_setg(errp, "template: %s", err);
            goto out;
        }
    }
    ok = true;
out:
    qobject_unref(obj);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Namespaces                                                          */

static bool nvmex_ns_attach(NvmeExport *c, NvmexNs *ns, char *const *props,
                      Error **errp)
{
    NvmexNsTemplate *nt;
    NvmexBacking b;
    char err[256];
    int64_t len;

    if (!ns->conf.blk) {
        error_setg(errp, "nvme-export: namespace %u needs drive=", ns->nsid);
        return false;
    }
    if (ns->nsid == 0 || ns->nsid > c->tmpl.nn ||
        ns->nsid > NVMEX_MAX_NSID) {
        error_setg(errp, "nsid: %u not in 1..%u (the template's nn)",
                   ns->nsid, c->tmpl.nn);
        return false;
    }
    if (c->ns[ns->nsid]) {
        error_setg(errp, "nsid: %u is already attached", ns->nsid);
        return false;
    }
    nt = nvmex_template_ns(&c->tmpl, ns->nsid, true);
    if (!nt) {
        error_setg(errp, "nsid: the template holds %d namespaces at most",
                   NVMEX_MAX_NS);
        return false;
    }
    for (int i = 0; props && nvmex_ns_template_fields[i]; i++) {
        if (props[i] && nvmex_ns_template_set(nt, nvmex_ns_template_fields[i],
                                              props[i], err, sizeof(err))) {
            error_setg(errp, "%s", err);
            return false;
        }
    }
    if (nvmex_template_check(&c->tmpl, err, sizeof(err))) {
        error_setg(errp, "template: %s", err);
        return false;
    }
    if (!blkconf_apply_backend_options(&ns->conf, false, false, errp)) {
        return false;
    }
    len = blk_getlength(ns->conf.blk);
    if (len < 0) {
        error_setg_errno(errp, -len, "nvme-export: cannot size the backing");
        return false;
    }
    b.bytes = len;
    b.min_block = MAX(blk_get_request_alignment(ns->conf.blk),
                      BDRV_SECTOR_SIZE);
    if (nvmex_ns_bind(nt, &b, &ns->geo, err, sizeof(err))) {
        error_setg(errp, "namespace %u: %s", ns->nsid, err);
        return false;
    }
    blk_set_enable_write_cache(ns->conf.blk, c->tmpl.vwc);
    ns->ctrl = c;
    c->ns[ns->nsid] = ns;
    return true;
}

static void nvmex_ns_detach(NvmexNs *ns)
{
    if (ns->ctrl && ns->ctrl->ns[ns->nsid] == ns) {
        blk_drain(ns->conf.blk);
        ns->ctrl->ns[ns->nsid] = NULL;
    }
    ns->ctrl = NULL;
}

uint64_t nvmex_ns_allocated_blocks(NvmexNs *ns)
{
    BlockDriverState *bs = blk_bs(ns->conf.blk);
    int64_t off = 0, end = ns->geo.nsze << ns->geo.lbads;
    uint64_t bytes = 0;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    while (bs && off < end) {
        int64_t pnum;
        int ret = bdrv_block_status_above(bs, NULL, off, end - off, &pnum,
                                          NULL, NULL);

        if (ret < 0 || pnum <= 0) {
            break;
        }
        if ((ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
            bytes += pnum;
        }
        off += pnum;
    }
    return DIV_ROUND_UP(bytes, ns->geo.lba_size);
}

/* ------------------------------------------------------------------ */
/* Device                                                              */

static bool nvmex_ctrl_template(NvmeExport *c, Error **errp)
{
    char err[256];

    nvmex_template_default(&c->tmpl);
    if (c->template_path && !nvmex_load_template(c, c->template_path, errp)) {
        return false;
    }
    for (int i = 0; nvmex_template_fields[i]; i++) {
        if (c->tmpl_props[i] &&
            nvmex_template_set(&c->tmpl, nvmex_template_fields[i],
                               c->tmpl_props[i], err, sizeof(err))) {
            error_setg(errp, "%s", err);
            return false;
        }
    }
    if (nvmex_template_check(&c->tmpl, err, sizeof(err))) {
        error_setg(errp, "template: %s", err);
        return false;
    }
    return true;
}

static void nvmex_realize(PCIDevice *pci, Error **errp)
{
    NvmeExport *c = NVME_EXPORT(pci);
    uint8_t *cfg = pci->config;

    if (!nvmex_ctrl_template(c, errp)) {
        return;
    }
    c->nvec = c->tmpl.max_ioqs + 1;

    pci_config_set_vendor_id(cfg, c->tmpl.vid);
    pci_config_set_device_id(cfg, c->tmpl.did);
    pci_set_word(cfg + PCI_SUBSYSTEM_VENDOR_ID, c->tmpl.ssvid);
    pci_set_word(cfg + PCI_SUBSYSTEM_ID, c->tmpl.ssid);
    pci_config_set_class(cfg, PCI_CLASS_STORAGE_EXPRESS);
    pci_config_set_prog_interface(cfg, 0x02);
    pci_config_set_revision(cfg, 2);
    cfg[PCI_INTERRUPT_PIN] = 1;

    memory_region_init_io(&c->iomem, OBJECT(c), &nvmex_mmio_ops, c,
                          "nvme-export", NVMEX_BAR0_SIZE);
    pci_register_bar(pci, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &c->iomem);
    if (msix_init_exclusive_bar(pci, c->nvec, 4, errp)) {
        return;
    }
    for (int i = 0; i < c->nvec; i++) {
        msix_vector_use(pci, i);
    }
    if (pci_is_express(pci) && pcie_endpoint_cap_init(pci, 0x80) < 0) {
        error_setg(errp, "nvme-export: PCIe capability failed");
        msix_uninit_exclusive_bar(pci);
        return;
    }

    /* CAP: MQES, CQR, TO 7.5 s, DSTRD 0, CSS NVM, MPSMIN/MAX 4 KiB */
    c->st.cap = (c->tmpl.mqes - 1) | 1ull << 16 | 15ull << 24 | 1ull << 37;

    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        QTAILQ_INIT(&c->cq_wait[i]);
    }
    QTAILQ_INIT(&c->free_reqs);
    c->sq_bh = qemu_bh_new_guarded(nvmex_sq_bh, c,
                                   &DEVICE(c)->mem_reentrancy_guard);
    c->irq_bh = qemu_bh_new_guarded(nvmex_irq_bh, c,
                                    &DEVICE(c)->mem_reentrancy_guard);
    c->rl_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, nvmex_rl_timer_cb, c);
    c->vmstate_change = qemu_add_vm_change_state_handler(nvmex_vm_state_change,
                                                         c);
    nvmex_limiter_configure(&c->limiter, &c->st.rate_limit, 0);
    nvmex_features_default(c, &c->st.feat);

    qbus_init(&c->bus, sizeof(c->bus), TYPE_NVME_EXPORT_BUS, DEVICE(c),
              DEVICE(c)->id);

    if (c->ns0.conf.blk) {
        c->ns0.nsid = 1;
        if (!nvmex_ns_attach(c, &c->ns0, NULL, errp)) {
            msix_uninit_exclusive_bar(pci);
            return;
        }
    }
}

static void nvmex_exit(PCIDevice *pci)
{
    NvmeExport *c = NVME_EXPORT(pci);
    NvmexReq *r;

    c->st.cc = 0;
    nvmex_ctrl_reset(c);
    nvmex_ns_detach(&c->ns0);
    while ((r = QTAILQ_FIRST(&c->free_reqs))) {
        QTAILQ_REMOVE(&c->free_reqs, r, entry);
        g_free(r);
    }
    qemu_del_vm_change_state_handler(c->vmstate_change);
    qemu_bh_delete(c->sq_bh);
    qemu_bh_delete(c->irq_bh);
    timer_free(c->rl_timer);
    msix_uninit_exclusive_bar(pci);
}

static void nvmex_reset(DeviceState *dev)
{
    NvmeExport *c = NVME_EXPORT(dev);

    c->st.cc = 0;           /* drained requests then post nothing */
    nvmex_ctrl_reset(c);
    c->st.csts = 0;
    c->st.aqa = 0;
    c->st.asq = c->st.acq = 0;
}

/* ------------------------------------------------------------------ */
/* Migration                                                           */

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

static int nvmex_post_load(void *opaque, int version_id)
{
    NvmeExport *c = opaque;
    int ret = 0;

    if (c->identity_hash != nvmex_identity_hash(c)) {
        error_report("nvme-export: the destination's template or namespaces "
                     "differ from the source's: the guest would see another "
                     "device");
        ret = -EINVAL;
        goto out;
    }
    for (int i = 0; i < c->nparked; i++) {
        NvmexParked *p = &c->parked[i];
        NvmexReq *r;

        if (p->cqid >= NVMEX_NQUEUES || p->sqid >= NVMEX_NQUEUES) {
            ret = -EINVAL;
            goto out;
        }
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

/*
 * Registers, queues, features, logs, events and limits, plus the
 * completions still waiting for CQ room.  In-flight I/O needs no state:
 * the VM is stopped and the block layer drained before saving.
 */
static const VMStateDescription nvmex_vmstate = {
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
        VMSTATE_STRUCT_VARRAY_ALLOC(parked, NvmeExport, nparked, 1,
                                    vmstate_nvmex_parked, NvmexParked),
        VMSTATE_END_OF_LIST()
    },
};

#define TMPL_PROP(i, name) DEFINE_PROP_STRING(name, NvmeExport, tmpl_props[i])

static const Property nvmex_props[] = {
    DEFINE_PROP_DRIVE("drive", NvmeExport, ns0.conf.blk),
    DEFINE_PROP_STRING("template", NvmeExport, template_path),
    /* Same names and order as nvmex_template_fields */
    TMPL_PROP(0, "template-id"), TMPL_PROP(1, "vid"), TMPL_PROP(2, "did"),
    TMPL_PROP(3, "ssvid"), TMPL_PROP(4, "ssid"), TMPL_PROP(5, "sn"),
    TMPL_PROP(6, "mn"), TMPL_PROP(7, "fr"), TMPL_PROP(8, "subnqn"),
    TMPL_PROP(9, "oui"), TMPL_PROP(10, "cntlid"), TMPL_PROP(11, "mdts"),
    TMPL_PROP(12, "max-ioqs"), TMPL_PROP(13, "mqes"), TMPL_PROP(14, "oncs"),
    TMPL_PROP(15, "vwc"), TMPL_PROP(16, "sgl"), TMPL_PROP(17, "ralbas"),
    TMPL_PROP(18, "rate-limit"), TMPL_PROP(19, "nn"),
    TMPL_PROP(20, "temperature"), TMPL_PROP(21, "wctemp"),
    TMPL_PROP(22, "cctemp"),
};

static void nvmex_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);

    pc->realize = nvmex_realize;
    pc->exit = nvmex_exit;
    pc->class_id = PCI_CLASS_STORAGE_EXPRESS;
    pc->vendor_id = 0x1b36;
    pc->device_id = 0x0115;
    pc->revision = 2;
    dc->desc = "NVMe controller of an exported NVM subsystem (template)";
    dc->vmsd = &nvmex_vmstate;
    device_class_set_legacy_reset(dc, nvmex_reset);
    device_class_set_props(dc, nvmex_props);
    set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
}

static const TypeInfo nvmex_info = {
    .name = TYPE_NVME_EXPORT,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(NvmeExport),
    .class_init = nvmex_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

/* nvme-export-ns: one more namespace on a controller's bus */

static void nvmex_ns_realize(DeviceState *dev, Error **errp)
{
    NvmeExportNs *d = NVME_EXPORT_NS(dev);
    BusState *bus = qdev_get_parent_bus(dev);

    if (!bus) {
        error_setg(errp, "nvme-export-ns: needs an nvme-export controller");
        return;
    }
    nvmex_ns_attach(nvmex_ctrl_of_bus(bus), &d->ns, d->tmpl_props, errp);
}

static void nvmex_ns_unrealize(DeviceState *dev)
{
    nvmex_ns_detach(&NVME_EXPORT_NS(dev)->ns);
}

#define NS_PROP(i, name) DEFINE_PROP_STRING(name, NvmeExportNs, tmpl_props[i])

static const Property nvmex_ns_props[] = {
    DEFINE_PROP_DRIVE("drive", NvmeExportNs, ns.conf.blk),
    DEFINE_PROP_UINT32("nsid", NvmeExportNs, ns.nsid, 0),
    /* Same order as nvmex_ns_template_fields; 0 is nsid, set above */
    NS_PROP(1, "size"), NS_PROP(2, "lba-formats"), NS_PROP(3, "flbas"),
    NS_PROP(4, "nguid"), NS_PROP(5, "eui64"), NS_PROP(6, "uuid"),
    NS_PROP(7, "tlbaag"),
};

static void nvmex_ns_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->bus_type = TYPE_NVME_EXPORT_BUS;
    dc->realize = nvmex_ns_realize;
    dc->unrealize = nvmex_ns_unrealize;
    dc->desc = "Namespace of an nvme-export controller";
    device_class_set_props(dc, nvmex_ns_props);
    set_bit(DEVICE_CATEGORY_STORAGE, dc->categories);
}

static const TypeInfo nvmex_ns_info = {
    .name = TYPE_NVME_EXPORT_NS,
    .parent = TYPE_DEVICE,
    .instance_size = sizeof(NvmeExportNs),
    .class_init = nvmex_ns_class_init,
};

static const TypeInfo nvmex_bus_info = {
    .name = TYPE_NVME_EXPORT_BUS,
    .parent = TYPE_BUS,
    .instance_size = sizeof(NvmexBus),
};

static void nvmex_register_types(void)
{
    type_register_static(&nvmex_bus_info);
    type_register_static(&nvmex_info);
    type_register_static(&nvmex_ns_info);
}

type_init(nvmex_register_types)

typedef struct NvmexForeachCtx {
    NvmexForeach fn;
    void *opaque;
} NvmexForeachCtx;

static int nvmex_foreach_one(Object *obj, void *opaque)
{
    NvmexForeachCtx *fc = opaque;

    if (object_dynamic_cast(obj, TYPE_NVME_EXPORT)) {
        fc->fn(NVME_EXPORT(obj), fc->opaque);
    }
    return 0;
}

void nvmex_foreach(NvmexForeach fn, void *opaque)
{
    NvmexForeachCtx fc = { fn, opaque };

    object_child_foreach_recursive(object_get_root(), nvmex_foreach_one, &fc);
}
