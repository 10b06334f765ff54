/*
 * nvme-export: Identify and log page encoders
 *
 * Layouts are the structs of nvmex-spec.h, from the NVMe Base
 * Specification 2.0 (Identify Controller, Figure 275; Identify Namespace
 * in the NVM Command Set Specification 1.0; logs in section 5.16) and
 * TP4165 for TLBAAG/RALBAS.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "hw/nvme-export/core/nvmex-cmds.h"
#include "hw/nvme-export/core/nvmex-cstate.h"
#include "hw/nvme-export/core/nvmex-lm.h"
#include "hw/nvme-export/core/nvmex-identify.h"
#include "hw/nvme-export/core/nvmex-spec.h"

static void nvmex_put_padded(uint8_t *dst, const char *src, size_t width)
{
    size_t len = strnlen(src, width);

    memset(dst, ' ', width);
    memcpy(dst, src, len);
}

/* The command sets of nvmex-cmds.h as tables indexed by opcode */
typedef struct NvmexCmdInfo {
    const char *name;
    NvmexNeeds needs;
    uint32_t effects;               /* beyond CSUPP */
} NvmexCmdInfo;

#define NVMEX_CMD_INFO(op, nm, handler, nd, fx) \
    [op] = { .name = nm, .needs = NVMEX_NEEDS_##nd, .effects = fx },

static const NvmexCmdInfo nvmex_admin_cmds[256] = {
    NVMEX_ADMIN_COMMANDS(NVMEX_CMD_INFO)
};

static const NvmexCmdInfo nvmex_io_cmds[256] = {
    NVMEX_IO_COMMANDS(NVMEX_CMD_INFO)
};

static int nvmex_cmd_available(const NvmexTemplate *t, const NvmexCmdInfo *c)
{
    if (!c->name) {
        return 0;
    }
    switch (c->needs) {
    case NVMEX_NEEDS_RALBAS:
        return !!t->ralbas;
    case NVMEX_NEEDS_ONCS_DSM:
        return !!(t->oncs & NVMEX_ONCS_DSM);
    case NVMEX_NEEDS_ONCS_WRITE_ZEROES:
        return !!(t->oncs & NVMEX_ONCS_WRITE_ZEROES);
    case NVMEX_NEEDS_HMLMS:
        return !!t->hmlms;
    default:
        return 1;
    }
}

int nvmex_admin_supported(const NvmexTemplate *t, uint8_t opcode)
{
    return nvmex_cmd_available(t, &nvmex_admin_cmds[opcode]);
}

int nvmex_io_supported(const NvmexTemplate *t, uint8_t opcode)
{
    return nvmex_cmd_available(t, &nvmex_io_cmds[opcode]);
}

uint32_t nvmex_admin_effects(const NvmexTemplate *t, uint8_t opcode)
{
    const NvmexCmdInfo *c = &nvmex_admin_cmds[opcode];

    return nvmex_cmd_available(t, c) ? NVMEX_EFFECTS_CSUPP | c->effects : 0;
}

uint32_t nvmex_io_effects(const NvmexTemplate *t, uint8_t opcode)
{
    const NvmexCmdInfo *c = &nvmex_io_cmds[opcode];

    return nvmex_cmd_available(t, c) ? NVMEX_EFFECTS_CSUPP | c->effects : 0;
}

const char *nvmex_admin_name(uint8_t opcode)
{
    return nvmex_admin_cmds[opcode].name;
}

const char *nvmex_io_name(uint8_t opcode)
{
    return nvmex_io_cmds[opcode].name;
}

void nvmex_id_ctrl(const NvmexTemplate *t, uint8_t *b)
{
    NvmexIdCtrl *id = (NvmexIdCtrl *)b;

    memset(id, 0, sizeof(*id));
    id->vid = nvmex_cpu_to_le16(t->vid);
    id->ssvid = nvmex_cpu_to_le16(t->ssvid);
    nvmex_put_padded((uint8_t *)id->sn, t->sn, sizeof(id->sn));
    nvmex_put_padded((uint8_t *)id->mn, t->mn, sizeof(id->mn));
    nvmex_put_padded((uint8_t *)id->fr, t->fr, sizeof(id->fr));
    id->rab = 6;                                /* 64 commands */
    id->ieee[0] = t->oui;
    id->ieee[1] = t->oui >> 8;
    id->ieee[2] = t->oui >> 16;
    id->mdts = t->mdts;
    id->cntlid = nvmex_cpu_to_le16(t->cntlid);
    id->ver = nvmex_cpu_to_le32(NVMEX_VERSION);
    id->oaes = nvmex_cpu_to_le32(1u << 8);      /* ns attribute notices */
    id->cntrltype = 1;                          /* I/O controller */
    id->acl = 3;                                /* 4 aborts */
    id->aerl = 3;                               /* 4 requests */
    id->frmw = 0x03;                            /* 1 slot, read-only */
    id->lpa = 0x06;                             /* effects, extended */
    id->elpe = NVMEX_ERROR_LOG_ENTRIES - 1;
    id->wctemp = nvmex_cpu_to_le16(t->wctemp);
    id->cctemp = nvmex_cpu_to_le16(t->cctemp);
    id->sqes = 0x66;                            /* 64 bytes */
    id->cqes = 0x44;                            /* 16 bytes */
    id->nn = nvmex_cpu_to_le32(t->nn);
    id->oncs = nvmex_cpu_to_le16(t->oncs);
    id->vwc = t->vwc ? 0x07 : 0x06;             /* VWC, flush all ok */
    id->sgls = nvmex_cpu_to_le32(t->sgl ? 1 : 0);   /* no alignment */
    memcpy(id->subnqn, t->subnqn, strnlen(t->subnqn, sizeof(t->subnqn)));
    /* Power state 0: 25 W, the only one, no transitions */
    id->psd[0].mp = nvmex_cpu_to_le16(2500);
    if (t->hmlms) {
        /*
         * TP4159: user data change tracking only (no host memory
         * tracking: CMMRTD, NMMRTD, MINMRTG, MAXMRTG stay 0); each
         * queue is one physically contiguous range (one PRP).
         */
        id->oacs |= nvmex_cpu_to_le16(NVMEX_OACS_HMLMS);
        /* TP4193: exported subsystems from a template, and migratable */
        id->ensa = NVMEX_ENSA_ENSTS | NVMEX_ENSA_ENSMS;
        id->trattr = NVMEX_TRATTR_TUDCS;
        id->mcudmq = nvmex_cpu_to_le16(NVMEX_LM_MAX_CDQS);
        id->mnsudmq = nvmex_cpu_to_le16(NVMEX_LM_MAX_CDQS);
        id->mcmr = nvmex_cpu_to_le16(1);
        id->nmcmr = nvmex_cpu_to_le16(1);
        id->mcdqpc = nvmex_cpu_to_le16(1);
    }
}

size_t nvmex_id_cs_formats(uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    b[0] = 1;                                   /* NV: one version... */
    b[1] = 1;                                   /* NUUID: one vendor UUID */
    nvmex_st16(b + 2, 0);                       /* ...version 0 */
    memcpy(b + 4, nvmex_cs_vendor_uuid, 16);
    return 20;
}

void nvmex_id_ctrl_nvm(const NvmexTemplate *t, uint8_t *b)
{
    NvmexIdCtrlNvm *id = (NvmexIdCtrlNvm *)b;

    memset(id, 0, sizeof(*id));
    /* VSL, WZSL, WUSL, DMRL, DMRSL, DMSL: 0 = MDTS / no limit */
    id->aocs = nvmex_cpu_to_le16(t->ralbas ? 1 : 0);
    id->ver = nvmex_cpu_to_le32(0x00010000);    /* NVM command set 1.0 */
}

void nvmex_id_ns(const NvmexTemplate *t, const NvmexNsTemplate *n,
                 uint64_t nsze, uint8_t *b)
{
    NvmexIdNs *id = (NvmexIdNs *)b;

    memset(id, 0, sizeof(*id));
    id->nsze = nvmex_cpu_to_le64(nsze);
    id->ncap = nvmex_cpu_to_le64(nsze);
    id->nuse = nvmex_cpu_to_le64(nsze);         /* not thin */
    id->nsfeat = 0;
    id->nlbaf = n->nlbaf - 1;
    id->flbas = (n->flbas & 0xf) | ((n->flbas >> 4) & 3) << 5;
    /*
     * DLFEAT: deallocated blocks read as zeroes and Write Zeroes may
     * deallocate.  True on any backing, because deallocation is done
     * as a zero write that may unmap.
     */
    id->dlfeat = (t->oncs & NVMEX_ONCS_DSM) ? 0x09 : 0x00;
    memcpy(id->nguid, n->nguid, sizeof(id->nguid));
    memcpy(id->eui64, n->eui64, sizeof(id->eui64));
    for (int i = 0; i < n->nlbaf; i++) {
        id->lbaf[i].ms = nvmex_cpu_to_le16(n->lbaf[i].ms);
        id->lbaf[i].lbads = n->lbaf[i].lbads;
    }
}

void nvmex_id_ns_nvm(const NvmexTemplate *t, const NvmexNsTemplate *n,
                     uint8_t *b)
{
    NvmexIdNsNvm *id = (NvmexIdNsNvm *)b;

    memset(id, 0, sizeof(*id));
    /* LBSTM, PIC, ELBAF: no protection information, no storage tags */
    if (t->ralbas) {
        id->tlbaag = nvmex_cpu_to_le32(n->tlbaag);
    }
}

void nvmex_id_ns_indep(uint8_t *b)
{
    NvmexIdNsIndep *id = (NvmexIdNsIndep *)b;

    memset(id, 0, sizeof(*id));
    id->nstat = 1;                              /* namespace ready */
}

static size_t nvmex_put_desc(uint8_t *b, size_t off, uint8_t type,
                             const uint8_t *id, uint8_t len)
{
    NvmexNsIdDesc *d = (NvmexNsIdDesc *)(b + off);

    d->nidt = type;
    d->nidl = len;
    memcpy(d + 1, id, len);
    return off + sizeof(*d) + len;
}

static int nvmex_nonzero(const uint8_t *p, size_t n)
{
    while (n--) {
        if (*p++) {
            return 1;
        }
    }
    return 0;
}

size_t nvmex_id_ns_descs(const NvmexNsTemplate *n, uint8_t *b)
{
    static const uint8_t csi_nvm = 0;
    size_t off = 0;

    memset(b, 0, NVMEX_ID_SIZE);
    if (nvmex_nonzero(n->eui64, 8)) {
        off = nvmex_put_desc(b, off, 1, n->eui64, 8);
    }
    if (nvmex_nonzero(n->nguid, 16)) {
        off = nvmex_put_desc(b, off, 2, n->nguid, 16);
    }
    if (nvmex_nonzero(n->uuid, 16)) {
        off = nvmex_put_desc(b, off, 3, n->uuid, 16);
    }
    return nvmex_put_desc(b, off, 4, &csi_nvm, 1);
}

void nvmex_id_active_ns(const uint32_t *nsids, int count, uint32_t after,
                        uint8_t *b)
{
    uint32_t *list = (uint32_t *)b;
    uint32_t last = after;
    int out = 0;

    memset(b, 0, NVMEX_ID_SIZE);
    /* Selection by repeated minimum: count is at most NVMEX_MAX_NS */
    while (out < NVMEX_ID_SIZE / 4) {
        uint32_t best = 0;

        for (int i = 0; i < count; i++) {
            if (nsids[i] > last && (!best || nsids[i] < best)) {
                best = nsids[i];
            }
        }
        if (!best) {
            break;
        }
        list[out++] = nvmex_cpu_to_le32(best);
        last = best;
    }
}

static NvmexU128 nvmex_u128(uint64_t v)
{
    return (NvmexU128) { .lo = nvmex_cpu_to_le64(v) };
}

void nvmex_log_smart(const NvmexTemplate *t, const NvmexSmart *s, uint8_t *b)
{
    NvmexSmartLog *log = (NvmexSmartLog *)b;

    memset(log, 0, sizeof(*log));
    log->critical_warning = s->critical_warning;
    log->temperature = nvmex_cpu_to_le16(t->temperature);
    log->avail_spare = 100;                     /* percent */
    log->spare_thresh = 10;                     /* percent */
    log->data_units_read = nvmex_u128(s->units_read);
    log->data_units_written = nvmex_u128(s->units_written);
    log->host_reads = nvmex_u128(s->read_cmds);
    log->host_writes = nvmex_u128(s->write_cmds);
    log->power_cycles = nvmex_u128(s->power_cycles);
    log->power_on_hours = nvmex_u128(s->power_on_hours);
    log->unsafe_shutdowns = nvmex_u128(s->unsafe_shutdowns);
    log->media_errors = nvmex_u128(s->media_errors);
    log->num_err_log_entries = nvmex_u128(s->error_entries);
    log->temp_sensor[0] = nvmex_cpu_to_le16(t->temperature);
}

void nvmex_log_fw_slot(const NvmexTemplate *t, uint8_t *b)
{
    NvmexFwSlotLog *log = (NvmexFwSlotLog *)b;

    memset(log, 0, sizeof(*log));
    log->afi = 0x01;                            /* slot 1 active */
    nvmex_put_padded((uint8_t *)log->frs[0], t->fr, sizeof(log->frs[0]));
}

void nvmex_log_cmd_effects(const NvmexTemplate *t, uint8_t *b)
{
    NvmexEffectsLog *log = (NvmexEffectsLog *)b;

    memset(log, 0, sizeof(*log));
    for (int op = 0; op < 256; op++) {
        log->acs[op] = nvmex_cpu_to_le32(nvmex_admin_effects(t, op));
        log->iocs[op] = nvmex_cpu_to_le32(nvmex_io_effects(t, op));
    }
}

void nvmex_log_error_entry(const NvmexErrorEntry *e, uint8_t *b)
{
    NvmexErrorLogEntry *log = (NvmexErrorLogEntry *)b;

    memset(log, 0, sizeof(*log));
    log->error_count = nvmex_cpu_to_le64(e->count);
    log->sqid = nvmex_cpu_to_le16(e->sqid);
    log->cid = nvmex_cpu_to_le16(e->cid);
    log->status = nvmex_cpu_to_le16((uint16_t)(e->status << 1));
    log->param = nvmex_cpu_to_le16(e->param);
    log->lba = nvmex_cpu_to_le64(e->lba);
    log->nsid = nvmex_cpu_to_le32(e->nsid);
}
