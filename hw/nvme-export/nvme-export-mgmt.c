/*
 * nvme-export-mgmt: a TP4159 migration-management controller
 *
 * An nvme-export controller (a subtype: same registers, queues and admin
 * commands) on its own PCI function that, like a drive's PF, issues
 * commands about the controllers it manages: the nvme-export devices that
 * name it (mgmt=<id>), each known by its CNTLID.  A managed controller
 * never sees these commands.
 *
 * Written from the TP4159 facts gathered in the project's research notes
 * (NVMe Base 2.1 numbering; libnvme's types.h transcription, libvfn's
 * examples/migrate.c flow):
 *   Controller Data Queue (45h)  SEL 0 create, SEL 1 delete a User Data
 *                                Migration Queue; Feature 21h head pointer
 *                                and tail pointer trigger
 *   Track Send (3Dh)             SEL 0 start / stop logging user-data
 *                                changes into a queue
 *   Migration Send (41h)         SEL 0 suspend, 1 resume, 2 set state
 *   Migration Receive (42h)      SEL 0 get state
 * The state machine of each managed controller is core/nvmex-lm.c, the
 * queue ring core/nvmex-cdq.c, the state buffer core/nvmex-cstate.c;
 * changed LBAs go through the shared change log
 * (migration/core/change-log.c) on their way to the queue.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "system/dma.h"
#include "nvme-export-internal.h"
#include "trace.h"

/* Bounds of a queue and of the change log behind it */
#define NVMEX_MGMT_CDQ_MAX_BYTES (16 * MiB)
#define NVMEX_MGMT_LOG_RANGES    4096

static NvmeExportMgmt *nvmex_mgmt_of(NvmexReq *r)
{
    return NVME_EXPORT_MGMT(r->c);
}

/* ------------------------------------------------------------------ */
/* Managed controllers                                                 */

bool nvmex_mgmt_attach(NvmeExport *c, Error **errp)
{
    NvmeExportMgmt *m = c->mgmt;
    NvmeExport *o;

    if (c->tmpl.hmlms) {
        error_setg(errp, "nvme-export-mgmt: a management controller cannot "
                   "itself be managed (mgmt=)");
        return false;
    }
    if (!DEVICE(m)->realized) {
        error_setg(errp, "nvme-export: mgmt=%s is not realized yet",
                   DEVICE(m)->id ? DEVICE(m)->id : "?");
        return false;
    }
    if (c->tmpl.cntlid == NVME_EXPORT(m)->tmpl.cntlid) {
        error_setg(errp, "nvme-export: cntlid %u is the management "
                   "controller's own", c->tmpl.cntlid);
        return false;
    }
    QLIST_FOREACH(o, &m->children, mgmt_entry) {
        if (o->tmpl.cntlid == c->tmpl.cntlid) {
            error_setg(errp, "nvme-export: cntlid %u is already used by "
                       "another controller of mgmt=%s", c->tmpl.cntlid,
                       DEVICE(m)->id ? DEVICE(m)->id : "?");
            return false;
        }
    }
    QLIST_INSERT_HEAD(&m->children, c, mgmt_entry);
    return true;
}

static void nvmex_mgmt_cdq_delete(NvmeExportMgmt *m, NvmexMgmtCdq *q);
static void nvmex_mgmt_log_resume(NvmeExport *c);

void nvmex_mgmt_detach(NvmeExport *c)
{
    NvmeExportMgmt *m = c->mgmt;

    if (!m || !QLIST_IS_INSERTED(c, mgmt_entry)) {
        return;
    }
    for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
        if (m->cdq[i].valid && m->cdq[i].child == c) {
            nvmex_mgmt_cdq_delete(m, &m->cdq[i]);
        }
    }
    nvmex_esub_forget_ctrl(&m->esubs, c->tmpl.cntlid);
    QLIST_REMOVE(c, mgmt_entry);
}

void nvmex_mgmt_ctrl_reset(NvmeExport *c)
{
    if (c->tmpl.hmlms) {
        NvmeExportMgmt *m = NVME_EXPORT_MGMT(c);

        /* Its queues go with the host memory the reset driver gave them */
        for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
            if (m->cdq[i].valid) {
                nvmex_mgmt_cdq_delete(m, &m->cdq[i]);
            }
        }
    }
    if (c->mgmt && c->lm.suspended) {
        if (nvmex_lm_controller_reset(&c->lm)) {
            nvmex_mgmt_log_resume(c);
        }
        trace_nvmex_mgmt_lm(c->tmpl.cntlid, "reset",
                            nvmex_lm_state_name(&c->lm));
    }
}

NvmeExport *nvmex_mgmt_find_child(NvmeExportMgmt *m, uint16_t cntlid)
{
    NvmeExport *o;

    QLIST_FOREACH(o, &m->children, mgmt_entry) {
        if (o->tmpl.cntlid == cntlid) {
            return o;
        }
    }
    return NULL;
}

void nvmex_mgmt_id_underlying(NvmeExport *c, uint16_t from, uint8_t *buf)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(c);
    uint16_t n = 0;

    /* A Controller List: NUMID, then the ids at or above @from, ascending */
    for (uint32_t id = from; id <= 0xffef && n < 2047; id++) {
        if (nvmex_mgmt_find_child(m, id)) {
            nvmex_st16(buf + 2 + 2 * n++, id);
        }
    }
    nvmex_st16(buf, n);
}

/* The managed controller @cntlid, or NULL (Invalid Controller Identifier) */
static NvmeExport *nvmex_mgmt_child(NvmeExportMgmt *m, uint16_t cntlid)
{
    NvmeExport *o = nvmex_mgmt_find_child(m, cntlid);

    if (o) {
        return o;
    }
    nvmex_guest_error(NVME_EXPORT(m), "cntlid %u is not a controller this "
                      "management controller manages", cntlid);
    return NULL;
}

static NvmexMgmtCdq *nvmex_mgmt_cdq_find(NvmeExportMgmt *m, uint16_t cdqid)
{
    if (cdqid >= 1 && cdqid <= NVMEX_LM_MAX_CDQS && m->cdq[cdqid - 1].valid) {
        return &m->cdq[cdqid - 1];
    }
    nvmex_guest_error(NVME_EXPORT(m), "CDQ %u does not exist", cdqid);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The User Data Migration Queue: logging                              */

static void nvmex_mgmt_logs_free(NvmexMgmtCdq *q)
{
    for (int i = 0; i < q->nlogs; i++) {
        iolab_change_log_free(q->log[i]);
        q->log[i] = NULL;
    }
    q->nlogs = 0;
}

/* Write one entry in the next slot (the caller checked there is one) */
static bool nvmex_mgmt_cdq_put(NvmeExportMgmt *m, NvmexMgmtCdq *q,
                               NvmexCdqEntry *e)
{
    NvmeExport *mc = NVME_EXPORT(m);
    uint8_t raw[NVMEX_CDQ_ENTRY_SIZE];
    bool tpt_fired;
    uint32_t slot = nvmex_cdq_push(&q->ring, e, &tpt_fired);

    nvmex_cdq_entry_encode(e, raw);
    trace_nvmex_mgmt_cdq_entry(q->cdqid, slot, e->nsid, e->slba, e->nlb,
                               e->esa, e->lbacir, e->phase);
    if (pci_dma_write(PCI_DEVICE(m), q->base + slot * NVMEX_CDQ_ENTRY_SIZE,
                      raw, sizeof(raw)) != MEMTX_OK) {
        nvmex_guest_error(mc, "CDQ %u: slot %u cannot be written", q->cdqid,
                          slot);
        return false;
    }
    if (tpt_fired) {
        nvmex_aen_raise(mc, NVMEX_AET_ONE_SHOT, NVMEX_AEI_CDQ_TAIL_POINTER,
                        0);
    }
    return true;
}

/* Logging of @q's controller ends: its last entry says why */
static void nvmex_mgmt_log_end(NvmeExportMgmt *m, NvmexMgmtCdq *q,
                               NvmexLmEsa esa)
{
    NvmexCdqEntry e = {
        .esa = esa,
        .lbacir = esa == NVMEX_LM_ESA_LAST_QUEUE_FULL
                  ? NVMEX_LBACIR_ALL_CHANGED : NVMEX_LBACIR_NO_CHANGE,
    };

    /* One slot is always kept for this entry while logging */
    if (nvmex_cdq_has_free_slot(&q->ring)) {
        nvmex_mgmt_cdq_put(m, q, &e);
    }
    nvmex_mgmt_logs_free(q);
    if (q->child && q->child->udmq == q) {
        q->child->udmq = NULL;
    }
}

/*
 * The queue has no room for one more entry: logging ends with "last -
 * queue full" (every LBA must be taken as changed) and the host is told
 * by an event.
 */
static void nvmex_mgmt_log_full(NvmeExportMgmt *m, NvmexMgmtCdq *q)
{
    nvmex_lm_queue_full(&q->child->lm);
    nvmex_mgmt_log_end(m, q, NVMEX_LM_ESA_LAST_QUEUE_FULL);
    nvmex_aen_raise(NVME_EXPORT(m), NVMEX_AET_ONE_SHOT, NVMEX_AEI_CDQ_FULL,
                    0);
}

/* The queue's memory went away: logging cannot go on */
static void nvmex_mgmt_log_lost(NvmexMgmtCdq *q)
{
    nvmex_lm_queue_full(&q->child->lm);
    nvmex_mgmt_logs_free(q);
    q->child->udmq = NULL;
}

/*
 * Move what the change logs hold into the queue.  When the queue has no
 * room for a change, logging ends (nvmex_mgmt_log_full()).
 */
static void nvmex_mgmt_log_flush(NvmeExportMgmt *m, NvmexMgmtCdq *q)
{
    for (int i = 0; i < q->nlogs; i++) {
        uint64_t start, count;

        while (iolab_change_log_pending(q->log[i])) {
            NvmexCdqEntry e = { .nsid = q->log_nsid[i] };

            if (!nvmex_cdq_room(&q->ring)) {
                nvmex_mgmt_log_full(m, q);
                return;
            }
            iolab_change_log_take(q->log[i], 1ull << 32, &start, &count);
            e.slba = start;
            e.nlb = count - 1;
            if (!nvmex_mgmt_cdq_put(m, q, &e)) {
                nvmex_mgmt_log_lost(q);
                return;
            }
        }
    }
}

/*
 * @q's controller is suspended while it logs: what finished while
 * quiescing goes in first, then the "last - suspended" entry (@esa);
 * logging goes on (NVM Command Set, LBA Migration Queue, Figure 177).
 * That entry takes a slot as a change does, so one stays for whatever
 * ends logging later; without that room logging ends as on a full queue.
 */
static void nvmex_mgmt_log_suspend(NvmeExportMgmt *m, NvmexMgmtCdq *q,
                                   NvmexLmEsa esa)
{
    NvmexCdqEntry e = { .esa = esa, .lbacir = NVMEX_LBACIR_NO_CHANGE };

    nvmex_mgmt_log_flush(m, q);
    if (q->child->udmq != q) {
        return;                     /* the flush ended logging */
    }
    if (!nvmex_cdq_room(&q->ring)) {
        nvmex_mgmt_log_full(m, q);
        return;
    }
    if (!nvmex_mgmt_cdq_put(m, q, &e)) {
        nvmex_mgmt_log_lost(q);
    }
}

/*
 * @c, which logs, runs again (Resume, or a Controller Level Reset that
 * removed its suspended state): its queue's next entry is the first
 * since it resumed (ESA 001b)
 */
static void nvmex_mgmt_log_resume(NvmeExport *c)
{
    if (c->udmq) {
        c->udmq->ring.first_pending = true;
    }
}

void nvmex_mgmt_written(NvmexReq *r)
{
    NvmeExport *c = r->c;
    NvmexMgmtCdq *q = c->udmq;

    if (!q || !c->lm.logging || !r->mark_nlb || !r->ns) {
        return;
    }
    for (int i = 0; i < q->nlogs; i++) {
        if (q->log_nsid[i] == r->ns->nsid) {
            iolab_change_log_mark(q->log[i], r->mark_slba, r->mark_nlb);
            nvmex_mgmt_log_flush(c->mgmt, q);
            return;
        }
    }
}

static bool nvmex_mgmt_log_start(NvmexMgmtCdq *q)
{
    NvmeExport *c = q->child;

    nvmex_mgmt_logs_free(q);
    for (int i = 1; i <= NVMEX_MAX_NSID && q->nlogs < NVMEX_MAX_NS; i++) {
        IolabChangeLog *log;

        if (!c->ns[i]) {
            continue;
        }
        log = iolab_change_log_new(c->ns[i]->geo.nsze,
                                   NVMEX_MGMT_LOG_RANGES);
        if (!log) {
            nvmex_mgmt_logs_free(q);
            return false;
        }
        q->log_nsid[q->nlogs] = i;
        q->log[q->nlogs++] = log;
    }
    q->ring.first_pending = true;
    c->udmq = q;
    return true;
}

/* ------------------------------------------------------------------ */
/* Controller Data Queue (45h)                                         */

static void nvmex_mgmt_cdq_delete(NvmeExportMgmt *m, NvmexMgmtCdq *q)
{
    NvmeExport *c = q->child;

    if (c && c->udmq == q) {
        NvmexLmEffects fx;

        /* The queue goes away: logging into it stops, with no entry */
        nvmex_lm_step(&c->lm, NVMEX_LM_STOP_LOGGING, &fx);
        c->udmq = NULL;
    }
    nvmex_mgmt_logs_free(q);
    trace_nvmex_mgmt_cdq(q->cdqid, "delete", c ? c->tmpl.cntlid : 0, 0);
    memset(q, 0, sizeof(*q));
}

/*
 * The managed controller a Create CDQ names: one candidate (the spec's
 * CQS) or two (libnvme before 1.15, see nvmex_cdq_create_cntlids()), of
 * which exactly one must be managed here.
 */
static NvmeExport *nvmex_mgmt_cdq_child(NvmeExportMgmt *m,
                                        const uint16_t *cntlid, int ncand)
{
    NvmeExport *a, *b;

    if (ncand == 1) {
        return nvmex_mgmt_child(m, cntlid[0]);
    }
    a = nvmex_mgmt_find_child(m, cntlid[0]);
    b = nvmex_mgmt_find_child(m, cntlid[1]);
    if (a && b) {
        nvmex_guest_error(NVME_EXPORT(m), "CDQ create: CDW11 0x%04x names "
                          "CNTLID %u or %u in libnvme's pre-1.15 encoding, "
                          "and both are managed here", cntlid[0], cntlid[0],
                          cntlid[1]);
        return NULL;
    }
    if (!a && !b) {
        nvmex_guest_error(NVME_EXPORT(m), "CDQ create: neither CNTLID %u "
                          "nor %u (libnvme's pre-1.15 encoding) is managed "
                          "here", cntlid[0], cntlid[1]);
        return NULL;
    }
    return a ? a : b;
}

static uint16_t nvmex_mgmt_cdq_create(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    NvmeExport *mc = r->c;
    uint32_t dw10 = le32_to_cpu(r->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint32_t size_dwords = le32_to_cpu(r->cmd.cdw12);
    uint8_t qt = (dw10 >> 16) & 0xff;
    uint16_t cntlid[2];
    int ncand;
    bool pc;
    uint64_t base = le64_to_cpu(r->cmd.dptr.prp1);
    uint64_t bytes = (uint64_t)size_dwords * 4;
    NvmeExport *c;
    NvmexMgmtCdq *q = NULL;

    if (qt != 0) {
        nvmex_guest_error(mc, "CDQ create: queue type %u is not a User Data "
                          "Migration Queue", qt);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    ncand = nvmex_cdq_create_cntlids(dw11, cntlid, &pc);
    c = nvmex_mgmt_cdq_child(m, cntlid, ncand);
    if (!c) {
        return NVMEX_INVALID_CTRL_ID | NVMEX_DNR;
    }
    if (!pc) {
        nvmex_guest_error(mc, "CDQ create: only physically contiguous "
                          "queues are supported (MCDQPC 1)");
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (bytes > NVMEX_MGMT_CDQ_MAX_BYTES) {
        nvmex_guest_error(mc, "CDQ create: %" PRIu64 " bytes is more than "
                          "the %u a queue may have", bytes,
                          (unsigned)NVMEX_MGMT_CDQ_MAX_BYTES);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
        if (!m->cdq[i].valid) {
            q = &m->cdq[i];
            break;
        }
    }
    if (!q) {
        return NVMEX_NOT_ENOUGH_RESOURCES | NVMEX_DNR;
    }
    if (!nvmex_cdq_init(&q->ring, size_dwords)) {
        nvmex_guest_error(mc, "CDQ create: CDQSIZE %u dwords is not a whole "
                          "number of at least %u entries", size_dwords,
                          NVMEX_CDQ_MIN_ENTRIES);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (!base || (base & (NVMEX_PAGE_SIZE - 1))) {
        nvmex_guest_error(mc, "CDQ create: PRP1 0x%" PRIx64 " is not a page "
                          "address", base);
        return NVMEX_PRP_OFFSET_INVALID | NVMEX_DNR;
    }
    if (!dma_memory_valid(pci_get_address_space(PCI_DEVICE(m)), base, bytes,
                          DMA_DIRECTION_FROM_DEVICE,
                          MEMTXATTRS_UNSPECIFIED)) {
        nvmex_guest_error(mc, "CDQ create: PRP1 0x%" PRIx64 " + %" PRIu64
                          " bytes is not memory the controller can write",
                          base, bytes);
        return NVMEX_DATA_TRANSFER_ERROR | NVMEX_DNR;
    }
    q->valid = true;
    q->cdqid = q - m->cdq + 1;
    q->child = c;
    q->base = base;
    r->dw0 = q->cdqid;
    trace_nvmex_mgmt_cdq(q->cdqid, "create", c->tmpl.cntlid,
                         q->ring.nentries);
    return NVMEX_SUCCESS;
}

uint16_t nvmex_adm_cdq(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    NvmexMgmtCdq *q;

    switch (sel) {
    case 0:
        return nvmex_mgmt_cdq_create(r);
    case 1:
        q = nvmex_mgmt_cdq_find(m, le32_to_cpu(r->cmd.cdw11) & 0xffff);
        if (!q) {
            return NVMEX_INVALID_CDQ | NVMEX_DNR;
        }
        nvmex_mgmt_cdq_delete(m, q);
        return NVMEX_SUCCESS;
    }
    nvmex_guest_error(r->c, "CDQ: select %u not supported", sel);
    return NVMEX_INVALID_FIELD | NVMEX_DNR;
}

/* Feature 21h: CDW11 CDQID and ETPT, CDW12 head pointer, CDW13 trigger */
uint16_t nvmex_mgmt_set_cdq_feature(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint32_t hp = le32_to_cpu(r->cmd.cdw12);
    uint32_t tpt = le32_to_cpu(r->cmd.cdw13);
    bool etpt = dw11 >> 31;
    NvmexMgmtCdq *q = nvmex_mgmt_cdq_find(m, dw11 & 0xffff);

    if (!q) {
        return NVMEX_INVALID_CDQ | NVMEX_DNR;
    }
    if (etpt && tpt >= q->ring.nentries) {
        nvmex_guest_error(r->c, "CDQ %u: tail pointer trigger %u beyond "
                          "the queue", q->cdqid, tpt);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (!nvmex_cdq_set_head(&q->ring, hp)) {
        nvmex_guest_error(r->c, "CDQ %u: head pointer %u is not between "
                          "head %u and tail %u", q->cdqid, hp, q->ring.head,
                          q->ring.tail);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    q->ring.tpt_enabled = etpt;
    q->ring.tpt = etpt ? tpt : 0;
    return NVMEX_SUCCESS;
}

uint16_t nvmex_mgmt_get_cdq_feature(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    NvmexMgmtCdq *q = nvmex_mgmt_cdq_find(m, le32_to_cpu(r->cmd.cdw11) &
                                             0xffff);
    uint8_t data[8];

    if (!q) {
        return NVMEX_INVALID_CDQ | NVMEX_DNR;
    }
    nvmex_st32(data, q->ring.head);
    nvmex_st32(data + 4, q->ring.tpt_enabled ? q->ring.tpt : 0);
    r->dw0 = q->ring.head;
    return nvmex_xfer(r, data, sizeof(data), true);
}

/* ------------------------------------------------------------------ */
/* Track Send (3Dh)                                                    */

uint16_t nvmex_adm_track_send(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint32_t dw10 = le32_to_cpu(r->cmd.cdw10);
    uint8_t sel = dw10 & 0xff, lact = (dw10 >> 16) & 0xf;
    NvmexMgmtCdq *q;
    NvmexLmEffects fx;
    uint16_t st;

    if (sel != 0) {
        /* TRATTR.THMCS is 0: host memory changes are not tracked */
        nvmex_guest_error(r->c, "track send: select %u not supported", sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (lact > 1) {
        nvmex_guest_error(r->c, "track send: logging action %u reserved",
                          lact);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    q = nvmex_mgmt_cdq_find(m, le32_to_cpu(r->cmd.cdw11) & 0xffff);
    if (!q) {
        return NVMEX_INVALID_CDQ | NVMEX_DNR;
    }
    if (lact == 1) {
        if (!nvmex_cdq_room(&q->ring)) {
            nvmex_guest_error(r->c, "track send: CDQ %u is full", q->cdqid);
            return NVMEX_CDQ_FULL | NVMEX_DNR;
        }
        st = nvmex_lm_step(&q->child->lm, NVMEX_LM_START_LOGGING, &fx);
        if (st) {
            nvmex_guest_error(r->c, "track send: controller %u already "
                              "logs", q->child->tmpl.cntlid);
            return st | NVMEX_DNR;
        }
        if (!nvmex_mgmt_log_start(q)) {
            nvmex_lm_step(&q->child->lm, NVMEX_LM_STOP_LOGGING, &fx);
            return NVMEX_INTERNAL_ERROR;
        }
    } else {
        if (q->child->udmq != q) {
            nvmex_guest_error(r->c, "track send: CDQ %u is not logging",
                              q->cdqid);
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        st = nvmex_lm_step(&q->child->lm, NVMEX_LM_STOP_LOGGING, &fx);
        if (st) {
            return st | NVMEX_DNR;
        }
        nvmex_mgmt_log_end(m, q, fx.esa);
    }
    trace_nvmex_mgmt_lm(q->child->tmpl.cntlid, lact ? "start-logging"
                                                    : "stop-logging",
                        nvmex_lm_state_name(&q->child->lm));
    return NVMEX_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Migration Send (41h) and Receive (42h)                              */

static uint16_t nvmex_mgmt_suspend(NvmexReq *r, NvmeExport *c)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint8_t stype = (dw11 >> 16) & 0xff;
    bool dudmq = dw11 >> 31;
    NvmexLmEffects fx;
    uint16_t st;

    if (stype > 1) {
        nvmex_guest_error(r->c, "migration send: suspend type %u reserved",
                          stype);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    st = nvmex_lm_step(&c->lm, stype ? NVMEX_LM_SUSPEND
                                     : NVMEX_LM_SUSPEND_NOTIFY, &fx);
    if (st) {
        nvmex_guest_error(r->c, "migration send: controller %u is already "
                          "suspended", c->tmpl.cntlid);
        return st | NVMEX_DNR;
    }
    if (fx.stop_fetching) {
        nvmex_lm_stop_fetching(c);
    }
    if (fx.logging_suspended && c->udmq) {
        nvmex_mgmt_log_suspend(m, c->udmq, fx.esa);
    }
    /* Deleting the queues ends logging, as Delete CDQ does */
    if (stype && dudmq) {
        for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
            if (m->cdq[i].valid && m->cdq[i].child == c) {
                nvmex_mgmt_cdq_delete(m, &m->cdq[i]);
            }
        }
    }
    return NVMEX_SUCCESS;
}

static uint16_t nvmex_mgmt_set_state(NvmexReq *r, NvmeExport *c)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint32_t dw10 = le32_to_cpu(r->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint8_t seqind = (dw10 >> 16) & 3;
    uint8_t csvi = (dw11 >> 16) & 0xff, csuuidi = dw11 >> 24;
    uint64_t off = le32_to_cpu(r->cmd.cdw12) |
                   (uint64_t)le32_to_cpu(r->cmd.cdw13) << 32;
    uint64_t len = (uint64_t)le32_to_cpu(r->cmd.cdw15) * 4;
    g_autofree NvmexCsImage *img = NULL;
    NvmexLm probe = c->lm;
    NvmexLmEffects fx;
    NvmexCsError err;
    const char *why;
    uint16_t st;

    /* A running controller refuses before any data moves */
    st = nvmex_lm_step(&probe, NVMEX_LM_SET_STATE, &fx);
    if (st) {
        nvmex_guest_error(r->c, "migration send: set state of controller %u, "
                          "which is not suspended", c->tmpl.cntlid);
        return st | NVMEX_DNR;
    }
    if (csvi > 1 || csuuidi > 1) {
        nvmex_guest_error(r->c, "migration send: state format %u / UUID "
                          "index %u not supported (CNS 20h)", csvi, csuuidi);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    /* A part that does not follow the previous one starts over */
    if (seqind == 1 || seqind == 3) {
        g_clear_pointer(&m->set_buf, g_free);
        m->set_len = 0;
        m->set_cntlid = c->tmpl.cntlid;
    }
    if (m->set_cntlid != c->tmpl.cntlid || off != m->set_len ||
        (seqind != 1 && seqind != 3 && !m->set_buf)) {
        nvmex_guest_error(r->c, "migration send: state part at offset %"
                          PRIu64 " does not follow the %u bytes sent",
                          off, m->set_len);
        g_clear_pointer(&m->set_buf, g_free);
        m->set_len = 0;
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (!len || m->set_len + len > NVMEX_CS_MAX_SIZE) {
        nvmex_guest_error(r->c, "migration send: state of %" PRIu64 " bytes "
                          "is empty or larger than %u", m->set_len + len,
                          (unsigned)NVMEX_CS_MAX_SIZE);
        g_clear_pointer(&m->set_buf, g_free);
        m->set_len = 0;
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    m->set_buf = g_realloc(m->set_buf, m->set_len + len);
    st = nvmex_xfer(r, m->set_buf + m->set_len, len, false);
    if (st) {
        g_clear_pointer(&m->set_buf, g_free);
        m->set_len = 0;
        return st;
    }
    m->set_len += len;
    if (seqind == 0 || seqind == 1) {
        return NVMEX_SUCCESS;       /* more parts follow */
    }

    img = g_new(NvmexCsImage, 1);
    if (!nvmex_cs_decode(m->set_buf, m->set_len, img, &err)) {
        nvmex_guest_error(r->c, "migration send: state refused at byte %u: "
                          "%s", err.offset, err.why);
        r->dw0 = err.offset;
        st = NVMEX_INVALID_FIELD | NVMEX_DNR;
    } else if (img->has_vendor && !csuuidi) {
        nvmex_guest_error(r->c, "migration send: vendor state without its "
                          "UUID index");
        st = NVMEX_INVALID_FIELD | NVMEX_DNR;
    } else {
        st = nvmex_lm_apply(c, img, &why);
        if (st) {
            nvmex_guest_error(r->c, "migration send: state does not fit "
                              "controller %u: %s", c->tmpl.cntlid, why);
        } else {
            nvmex_lm_step(&c->lm, NVMEX_LM_SET_STATE, &fx);
        }
    }
    g_clear_pointer(&m->set_buf, g_free);
    m->set_len = 0;
    return st;
}

uint16_t nvmex_adm_migration_send(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    NvmeExport *c;
    NvmexLmEffects fx;
    uint16_t st;

    if (sel > 2) {
        nvmex_guest_error(r->c, "migration send: select %u reserved", sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    c = nvmex_mgmt_child(m, le32_to_cpu(r->cmd.cdw11) & 0xffff);
    if (!c) {
        return NVMEX_INVALID_CTRL_ID | NVMEX_DNR;
    }
    switch (sel) {
    case 0:
        st = nvmex_mgmt_suspend(r, c);
        break;
    case 1:
        st = nvmex_lm_step(&c->lm, NVMEX_LM_RESUME, &fx);
        if (st) {
            nvmex_guest_error(r->c, "migration send: resume of controller "
                              "%u, which is not suspended", c->tmpl.cntlid);
            st |= NVMEX_DNR;
        } else {
            if (fx.logging_resumed) {
                nvmex_mgmt_log_resume(c);
            }
            nvmex_lm_start_fetching(c);
        }
        break;
    default:
        st = nvmex_mgmt_set_state(r, c);
        break;
    }
    trace_nvmex_mgmt_lm(c->tmpl.cntlid, sel == 0 ? "suspend" :
                        sel == 1 ? "resume" : "set-state",
                        nvmex_lm_state_name(&c->lm));
    return st;
}

uint16_t nvmex_adm_migration_recv(NvmexReq *r)
{
    NvmeExportMgmt *m = nvmex_mgmt_of(r);
    uint32_t dw10 = le32_to_cpu(r->cmd.cdw10);
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint8_t sel = dw10 & 0xff, csvi = (dw10 >> 16) & 0xff;
    uint8_t csuuidi = (dw11 >> 16) & 0xff;
    uint64_t off = le32_to_cpu(r->cmd.cdw12) |
                   (uint64_t)le32_to_cpu(r->cmd.cdw13) << 32;
    uint64_t len = ((uint64_t)le32_to_cpu(r->cmd.cdw15) + 1) * 4;
    g_autofree NvmexCsImage *img = NULL;
    g_autofree uint8_t *state = NULL;
    g_autofree uint8_t *out = NULL;
    NvmexLmEffects fx;
    NvmeExport *c;
    size_t size;
    uint16_t st;

    if (sel != 0) {
        nvmex_guest_error(r->c, "migration receive: select %u reserved", sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    c = nvmex_mgmt_child(m, dw11 & 0xffff);
    if (!c) {
        return NVMEX_INVALID_CTRL_ID | NVMEX_DNR;
    }
    if (csvi > 1 || csuuidi > 1) {
        nvmex_guest_error(r->c, "migration receive: state format %u / UUID "
                          "index %u not supported (CNS 20h)", csvi, csuuidi);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (len > NVMEX_CS_MAX_SIZE) {
        nvmex_guest_error(r->c, "migration receive: %" PRIu64 " bytes asked, "
                          "a state is at most %u", len,
                          (unsigned)NVMEX_CS_MAX_SIZE);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    img = g_new(NvmexCsImage, 1);
    nvmex_lm_capture(c, csuuidi == 1, img);
    /*
     * CSVI and CSUUIDI are 1's based indexes into the CNS 20h lists; 0
     * asks for no part of that kind, and its size field is 0 (Base 2.1,
     * Figure 345 and 346)
     */
    img->no_nvme_state = csvi == 0;
    size = nvmex_cs_size(img);
    if (off > size || (off & 3)) {
        nvmex_guest_error(r->c, "migration receive: offset %" PRIu64 " past "
                          "the %zu-byte state", off, size);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    st = nvmex_lm_step(&c->lm, NVMEX_LM_GET_STATE, &fx);
    if (st) {
        return st | NVMEX_DNR;
    }
    state = g_malloc(size);
    nvmex_cs_encode(img, state);
    /* A buffer smaller than the state gets its start (the header tells
     * the host the whole size); a larger one is zero-filled */
    out = g_malloc0(len);
    memcpy(out, state + off, MIN(len, size - off));
    st = nvmex_xfer(r, out, len, true);
    r->dw0 = fx.csup ? 1 : 0;
    trace_nvmex_mgmt_lm(c->tmpl.cntlid, "get-state",
                        nvmex_lm_state_name(&c->lm));
    return st;
}

/* ------------------------------------------------------------------ */
/* Migration (the VMState is in nvme-export-migration.c)               */

void nvmex_mgmt_pre_save(NvmeExportMgmt *m)
{
    for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
        NvmexMgmtCdq *q = &m->cdq[i];

        q->child_cntlid = q->valid ? q->child->tmpl.cntlid : 0;
    }
}

static const char *nvmex_mgmt_bad(char *buf, size_t len, const char *fmt,
                                  int i)
{
    snprintf(buf, len, fmt, i);
    return buf;
}

const char *nvmex_mgmt_post_load(NvmeExportMgmt *m, char *buf, size_t len)
{
    /* A Set Controller State sent in parts starts over after migration */
    g_clear_pointer(&m->set_buf, g_free);
    m->set_len = 0;
    for (int i = 0; i < NVMEX_LM_MAX_CDQS; i++) {
        NvmexMgmtCdq *q = &m->cdq[i];

        q->child = NULL;
        q->nlogs = 0;
        if (!q->valid) {
            continue;
        }
        if (q->cdqid != i + 1) {
            return nvmex_mgmt_bad(buf, len, "cdq[%d].cdqid", i);
        }
        if (!nvmex_cdq_valid(&q->ring) ||
            (uint64_t)q->ring.nentries * NVMEX_CDQ_ENTRY_SIZE >
            NVMEX_MGMT_CDQ_MAX_BYTES) {
            return nvmex_mgmt_bad(buf, len, "cdq[%d].ring", i);
        }
        if (!q->base || (q->base & (NVMEX_PAGE_SIZE - 1))) {
            return nvmex_mgmt_bad(buf, len, "cdq[%d].base", i);
        }
        q->child = nvmex_mgmt_find_child(m, q->child_cntlid);
        if (!q->child) {
            return nvmex_mgmt_bad(buf, len, "cdq[%d].child_cntlid", i);
        }
    }
    for (int i = 0; i < NVMEX_ESUB_MAX; i++) {
        NvmexEsub *e = &m->esubs.esub[i];

        if (!e->valid) {
            continue;
        }
        if (e->esubid != i + 1 || e->ensti > 1 ||
            e->nctrl > NVMEX_ESUB_MAX_CTRL || e->nns > NVMEX_ESUB_MAX_NS ||
            e->nport > NVMEX_ESUB_MAX_PORT ||
            !memchr(e->nqn, 0, sizeof(e->nqn))) {
            return nvmex_mgmt_bad(buf, len, "esub[%d]", i);
        }
        for (int j = 0; j < e->nctrl; j++) {
            if (!nvmex_mgmt_find_child(m, e->ctrl[j].cntlid)) {
                return nvmex_mgmt_bad(buf, len, "esub[%d].ctrl", i);
            }
        }
        for (int j = 0; j < e->nns; j++) {
            NvmeExport *c = nvmex_mgmt_find_child(m, e->ns[j].uctrlid);

            if (!c || !e->ns[j].unsid || e->ns[j].unsid > NVMEX_MAX_NSID) {
                return nvmex_mgmt_bad(buf, len, "esub[%d].ns", i);
            }
        }
    }
    return NULL;
}

const char *nvmex_mgmt_post_load_child(NvmeExport *c)
{
    NvmeExportMgmt *m = c->mgmt;
    NvmexMgmtCdq *q;
    bool first_pending;

    c->udmq = NULL;
    if (!nvmex_lm_valid(&c->lm)) {
        return "lm";
    }
    if (!c->udmq_id) {
        return c->lm.logging ? "udmq_id" : NULL;
    }
    /* The management controller loaded first: it was realized first */
    if (!c->lm.logging || c->udmq_id > NVMEX_LM_MAX_CDQS) {
        return "udmq_id";
    }
    q = &m->cdq[c->udmq_id - 1];
    if (!q->valid || q->child != c) {
        return "udmq_id";
    }
    /* Changes reach the queue as they complete: the logs were empty */
    first_pending = q->ring.first_pending;
    if (!nvmex_mgmt_log_start(q)) {
        return "udmq_id";
    }
    q->ring.first_pending = first_pending;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Device                                                              */

static void nvmex_mgmt_finalize(Object *obj)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(obj);

    g_free(m->set_buf);
}

static void nvmex_mgmt_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->desc = "NVMe migration-management controller (TP4159)";
    /* Managed controllers hold a link to it for their lifetime */
    dc->hotpluggable = false;
}

static const TypeInfo nvmex_mgmt_info = {
    .name = TYPE_NVME_EXPORT_MGMT,
    .parent = TYPE_NVME_EXPORT,
    .instance_size = sizeof(NvmeExportMgmt),
    .instance_finalize = nvmex_mgmt_finalize,
    .class_init = nvmex_mgmt_class_init,
};

static void nvmex_mgmt_register_types(void)
{
    type_register_static(&nvmex_mgmt_info);
}

type_init(nvmex_mgmt_register_types)
