/*
 * nvme-export: the controller - registers, queues, fetching, the device
 *
 * Written from the NVM Express Base Specification 2.0 (3.1 registers,
 * 3.5 controller initialization and reset, 4.1-4.6 queues and their
 * entries).  Commands are decoded in nvme-export-admin.c and
 * nvme-export-io.c; this file holds the registers and doorbells, fetches
 * the commands and dispatches them, and holds the PCI device itself.
 * Their completions and interrupts are nvme-export-cq.c's, below every
 * command file.
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
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/iolab/pci-stream.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "system/runstate.h"
#include "nvme-export-internal.h"
#include "trace.h"

#define NVMEX_BAR0_SIZE (16 * KiB)
#define NVMEX_SQ_BATCH 16
/*
 * Commands fetched from one SQ per run of the fetching bottom half: bounds
 * the work (admin commands run synchronously) one main-loop iteration does
 */
#define NVMEX_SQ_BUDGET 256

/* ------------------------------------------------------------------ */
/* Submission queue processing                                         */

/* TP4176: may this command start now?  Arms the timer if not. */
static bool nvmex_rate_admit(NvmeExport *c, const NvmeCmd *cmd)
{
    uint8_t opc = cmd->opcode;
    uint64_t bytes = 0;
    int64_t now, wait;
    uint32_t nsid = le32_to_cpu(cmd->nsid);

    if (!c->limiter.cfg.enabled && !c->mig_limiter.cfg.enabled) {
        return true;
    }
    if ((opc == NVMEX_IO_READ || opc == NVMEX_IO_WRITE) && nsid &&
        nsid <= NVMEX_MAX_NSID && c->ns[nsid]) {
        bytes = ((uint64_t)le16_to_cpu(((const NvmeRwCmd *)cmd)->nlb) + 1)
                << c->ns[nsid]->geo.lbads;
    }
    now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    /*
     * Storage migration's limit (writes only) first: a command it holds
     * back is not charged to the guest's own limit, which a retry would
     * charge twice.
     */
    wait = nvmex_limiter_admit(&c->mig_limiter, now, opc == NVMEX_IO_WRITE,
                               bytes);
    if (!wait) {
        wait = nvmex_limiter_admit(&c->limiter, now, opc == NVMEX_IO_WRITE,
                                   bytes);
    }
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
    NvmeCmd sqes[NVMEX_SQ_BATCH];
    uint32_t budget = NVMEX_SQ_BUDGET;

    if (c->inflight >= NVMEX_MAX_REQS) {
        c->starved = true;
        return;
    }
    while (sq->valid && sq->head != sq->tail &&
           !(c->st.csts & NVMEX_CSTS_CFS)) {
        uint32_t n = sq->tail > sq->head ? sq->tail - sq->head
                                         : sq->size - sq->head;

        if (!budget) {
            /* The rest in the next main-loop iteration */
            nvmex_kick(c);
            return;
        }
        n = MIN(n, MIN(NVMEX_SQ_BATCH, budget));
        budget -= n;
        if (pci_dma_read(PCI_DEVICE(c),
                         sq->dma_addr + sq->head * sizeof(NvmeCmd), sqes,
                         n * sizeof(NvmeCmd)) != MEMTX_OK) {
            nvmex_fatal(c, "submission queue read failed");
            return;
        }
        for (uint32_t i = 0; i < n; i++) {
            NvmexReq *r;
            uint16_t st;

            if (sqid && !nvmex_rate_admit(c, &sqes[i])) {
                return;
            }
            r = nvmex_req_get(c);
            r->cmd = sqes[i];
            r->opc = r->cmd.opcode;
            r->cid = le16_to_cpu(r->cmd.cid);
            r->sqid = sqid;
            r->sq_gen = sq->gen;
            sq->head = (sq->head + 1) % sq->size;
            c->commands++;
            trace_nvmex_submit(sqid, r->cid, r->opc);
            if (NVME_CMD_FLAGS_FUSE(r->cmd.flags)) {
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
    /*
     * Suspended by its management controller (TP4159): no new command
     * is fetched, from any queue; doorbells still move the tails, and
     * resuming fetches from the heads where it stopped.
     */
    if (c->lm.suspended) {
        return;
    }
    nvmex_process_sq(c, 0);
    for (int i = 1; i < NVMEX_NQUEUES; i++) {
        if (c->st.sq[i].valid) {
            nvmex_process_sq(c, i);
        }
    }
}

static void nvmex_rl_timer_cb(void *opaque)
{
    nvmex_kick(opaque);
}

static void nvmex_vm_state_change(void *opaque, bool running,
                                  RunState state)
{
    NvmeExport *c = opaque;

    if (running) {
        qemu_bh_schedule(c->cq_bh);
        nvmex_kick(c);
    }
}

/* ------------------------------------------------------------------ */
/* Registers                                                           */

static void nvmex_ctrl_reset(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;
    NvmexReq *r;

    nvmex_drain_namespaces(c);
    while ((r = QTAILQ_FIRST(&c->done))) {
        QTAILQ_REMOVE(&c->done, r, entry);
        nvmex_req_put(r);
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
    nvmex_mgmt_ctrl_reset(c);
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
/* Device                                                              */

static void nvmex_realize(PCIDevice *pci, Error **errp)
{
    NvmeExport *c = NVME_EXPORT(pci);
    uint8_t *cfg = pci->config;

    if (!nvmex_ctrl_template(c, errp)) {
        return;
    }
    c->tmpl.hmlms = !!object_dynamic_cast(OBJECT(c), TYPE_NVME_EXPORT_MGMT);
    nvmex_lm_init(&c->lm);
    if (c->mgmt && !nvmex_mgmt_attach(c, errp)) {
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
    cfg[PCI_INTERRUPT_PIN] = IOLAB_PCI_INTX_PIN;

    memory_region_init_io(&c->iomem, OBJECT(c), &nvmex_mmio_ops, c,
                          "nvme-export", NVMEX_BAR0_SIZE);
    pci_register_bar(pci, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &c->iomem);
    if (msix_init_exclusive_bar(pci, c->nvec, 4, errp)) {
        nvmex_mgmt_detach(c);
        return;
    }
    for (int i = 0; i < c->nvec; i++) {
        msix_vector_use(pci, i);
    }
    if (pci_is_express(pci) && pcie_endpoint_cap_init(pci, 0x80) < 0) {
        error_setg(errp, "nvme-export: PCIe capability failed");
        msix_uninit_exclusive_bar(pci);
        nvmex_mgmt_detach(c);
        return;
    }

    /* CAP: MQES, CQR, TO 7.5 s, DSTRD 0, CSS NVM, MPSMIN/MAX 4 KiB */
    c->st.cap = (c->tmpl.mqes - 1) | 1ull << 16 | 15ull << 24 | 1ull << 37;

    nvmex_cq_init(c);
    c->sq_bh = qemu_bh_new_guarded(nvmex_sq_bh, c,
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

    c->st.cc = 0;
    nvmex_ctrl_reset(c);
    nvmex_mgmt_detach(c);
    nvmex_ns_detach(&c->ns0);
    nvmex_cq_exit(c);
    qemu_del_vm_change_state_handler(c->vmstate_change);
    qemu_bh_delete(c->sq_bh);
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

/* One string property per template field (core/nvmex-template.h) */
#define NVMEX_TMPL_PROP(field, prop, kind, member, max) \
    DEFINE_PROP_STRING(prop, NvmeExport, \
                       tmpl_props[NVMEX_TMPL_FIELD_##member]),

static const Property nvmex_props[] = {
    DEFINE_PROP_DRIVE("drive", NvmeExport, ns0.conf.blk),
    DEFINE_PROP_STRING("template", NvmeExport, template_path),
    DEFINE_PROP_BOOL("storage-migration", NvmeExport, storage_migration,
                     false),
    /* Benchmarks' ablation of storage migration: copy every block */
    DEFINE_PROP_BOOL("x-storage-full-copy", NvmeExport, storage_full_copy,
                     false),
    DEFINE_PROP_LINK("mgmt", NvmeExport, mgmt, TYPE_NVME_EXPORT_MGMT,
                     NvmeExportMgmt *),
    NVMEX_TEMPLATE_FIELDS(NVMEX_TMPL_PROP)
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

static void nvmex_register_types(void)
{
    type_register_static(&nvmex_info);
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
