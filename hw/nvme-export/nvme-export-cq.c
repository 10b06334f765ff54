/*
 * nvme-export: requests, completions and interrupts - the bottom of the
 * controller
 *
 * Written from the NVM Express Base Specification 2.0 (completion queue
 * entries, interrupts, the error information log).  The command files
 * (admin, I/O, TP4159, TP4193) take their requests from here and post
 * their completions here; so do the registers and the fetching in
 * nvme-export-ctrl.c, which sits above all of them.  This file calls no
 * other file of nvme-export: what it needs of the layers above
 * (fetching, kicked by nvmex_kick()) it reaches through the bottom half
 * the controller created.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "hw/pci/msix.h"
#include "system/runstate.h"
#include "nvme-export-internal.h"
#include "trace.h"

/* A guest mistake: the caller completes with a status or sets CFS */
void nvmex_guest_error(NvmeExport *c, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* Once, both ways: a trace event and -d guest_errors */
    trace_nvmex_guest_error(msg);
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %s\n", TYPE_NVME_EXPORT, msg);
}

/* ------------------------------------------------------------------ */
/* Requests and completions                                            */

NvmexReq *nvmex_req_get(NvmeExport *c)
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

void nvmex_req_put(NvmexReq *r)
{
    NvmeExport *c = r->c;

    if (r->sg_live) {
        qemu_sglist_destroy(&r->sg);
        r->sg_live = false;
    }
    g_free(r->mark_ranges);
    r->mark_ranges = NULL;
    r->mark_nr = 0;
    c->inflight--;
    QTAILQ_INSERT_HEAD(&c->free_reqs, r, entry);
}

void nvmex_fatal(NvmeExport *c, const char *why)
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
        .nsid = le32_to_cpu(r->cmd.nsid),
    };
    s->smart.error_entries++;
    c->errors++;
}

void nvmex_update_intx(NvmeExport *c)
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
    NvmeCqe cqe;

    if (nvmex_cq_full(cq)) {
        return false;
    }
    cqe = (NvmeCqe) {
        .result = cpu_to_le32(dw0),
        .sq_head = cpu_to_le16(c->st.sq[sqid].head),
        .sq_id = cpu_to_le16(sqid),
        .cid = cpu_to_le16(cid),
        .status = cpu_to_le16((uint16_t)(status << 1) | cq->phase),
    };
    if (pci_dma_write(PCI_DEVICE(c), cq->dma_addr + cq->tail * sizeof(cqe),
                      &cqe, sizeof(cqe)) != MEMTX_OK) {
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

/*
 * Complete @r on its CQ, or park it until the CQ has room; with
 * @may_write false, park it in any case (the VM is stopped for saving and
 * guest memory must not change behind the migrated RAM).
 */
static void nvmex_finish(NvmexReq *r, bool may_write)
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
    if (!may_write || !QTAILQ_EMPTY(&c->cq_wait[sq->cqid]) ||
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

void nvmex_post(NvmexReq *r)
{
    nvmex_finish(r, true);
}

/*
 * Completions from the block layer are posted from nvmex_cq_bh, a bottom
 * half guarded by the device's MemReentrancyGuard, never from inside the
 * block layer's callback.  A CQ the guest placed on our own BAR0 then
 * cannot reach the registers: a CQE landing on CC would reset the
 * controller, whose blk_drain() would wait for the very callback it runs
 * in.  The guard refuses the DMA instead and the controller goes fatal
 * (CSTS.CFS), as for any CQ it cannot write.
 */
void nvmex_post_async(NvmexReq *r)
{
    NvmeExport *c = r->c;

    QTAILQ_INSERT_TAIL(&c->done, r, entry);
    qemu_bh_schedule(c->cq_bh);
}

/* Before saving: what the block layer finished waits with the parked */
void nvmex_park_done(NvmeExport *c)
{
    NvmexReq *r;

    while ((r = QTAILQ_FIRST(&c->done))) {
        QTAILQ_REMOVE(&c->done, r, entry);
        nvmex_finish(r, false);
    }
}

void nvmex_cq_drain_waiters(NvmeExport *c, uint16_t cqid)
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

static void nvmex_cq_bh(void *opaque)
{
    NvmeExport *c = opaque;
    NvmexReq *r;

    /* Guest memory does not change while the VM is stopped */
    if (!runstate_is_running()) {
        return;
    }
    while ((r = QTAILQ_FIRST(&c->done))) {
        QTAILQ_REMOVE(&c->done, r, entry);
        nvmex_post(r);
    }
    /* Completions parked while stopped, or migrated, whose CQ has room */
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        if (c->st.cq[i].valid && !QTAILQ_EMPTY(&c->cq_wait[i])) {
            nvmex_cq_drain_waiters(c, i);
        }
    }
}

/* Fetching is the controller's; this only schedules its bottom half */
void nvmex_kick(NvmeExport *c)
{
    qemu_bh_schedule(c->sq_bh);
}

void nvmex_drain_namespaces(NvmeExport *c)
{
    for (int i = 1; i <= NVMEX_MAX_NSID; i++) {
        if (c->ns[i]) {
            blk_drain(c->ns[i]->conf.blk);
        }
    }
}

void nvmex_quiesce(NvmeExport *c)
{
    NvmexReq *r;

    nvmex_drain_namespaces(c);
    /* Post now what finished; a full CQ parks its completion */
    while ((r = QTAILQ_FIRST(&c->done))) {
        QTAILQ_REMOVE(&c->done, r, entry);
        nvmex_post(r);
    }
}

void nvmex_cq_init(NvmeExport *c)
{
    for (int i = 0; i < NVMEX_NQUEUES; i++) {
        QTAILQ_INIT(&c->cq_wait[i]);
    }
    QTAILQ_INIT(&c->free_reqs);
    QTAILQ_INIT(&c->done);
    c->cq_bh = qemu_bh_new_guarded(nvmex_cq_bh, c,
                                   &DEVICE(c)->mem_reentrancy_guard);
    c->irq_bh = qemu_bh_new_guarded(nvmex_irq_bh, c,
                                    &DEVICE(c)->mem_reentrancy_guard);
}

void nvmex_cq_exit(NvmeExport *c)
{
    NvmexReq *r;

    while ((r = QTAILQ_FIRST(&c->free_reqs))) {
        QTAILQ_REMOVE(&c->free_reqs, r, entry);
        g_free(r);
    }
    qemu_bh_delete(c->cq_bh);
    qemu_bh_delete(c->irq_bh);
}
