/*
 * nvme-export: Identify and log page encoders
 *
 * Byte offsets are those of the NVMe Base Specification 2.0 (Identify
 * Controller, Figure 275; Identify Namespace in the NVM Command Set
 * Specification 1.0; logs in section 5.16) and TP4165 for TLBAAG/RALBAS.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "hw/nvme-export/core/nvmex-identify.h"
#include "hw/nvme-export/core/nvmex-spec.h"

static void put_padded(uint8_t *dst, const char *src, size_t width)
{
    size_t len = strnlen(src, width);

    memset(dst, ' ', width);
    memcpy(dst, src, len);
}

int nvmex_admin_supported(const NvmexTemplate *t, uint8_t opcode)
{
    switch (opcode) {
    case NVMEX_ADM_DELETE_SQ:
    case NVMEX_ADM_CREATE_SQ:
    case NVMEX_ADM_GET_LOG_PAGE:
    case NVMEX_ADM_DELETE_CQ:
    case NVMEX_ADM_CREATE_CQ:
    case NVMEX_ADM_IDENTIFY:
    case NVMEX_ADM_ABORT:
    case NVMEX_ADM_SET_FEATURES:
    case NVMEX_ADM_GET_FEATURES:
    case NVMEX_ADM_AER:
        return 1;
    case NVMEX_ADM_GET_LBA_STATUS:
        return t->ralbas;
    default:
        return 0;
    }
}

int nvmex_io_supported(const NvmexTemplate *t, uint8_t opcode)
{
    switch (opcode) {
    case NVMEX_IO_FLUSH:
    case NVMEX_IO_WRITE:
    case NVMEX_IO_READ:
        return 1;
    case NVMEX_IO_WRITE_ZEROES:
        return !!(t->oncs & NVMEX_ONCS_WRITE_ZEROES);
    case NVMEX_IO_DSM:
        return !!(t->oncs & NVMEX_ONCS_DSM);
    default:
        return 0;
    }
}

void nvmex_id_ctrl(const NvmexTemplate *t, uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    nvmex_st16(b + 0, t->vid);
    nvmex_st16(b + 2, t->ssvid);
    put_padded(b + 4, t->sn, 20);
    put_padded(b + 24, t->mn, 40);
    put_padded(b + 64, t->fr, 8);
    b[72] = 6;                                  /* RAB: 64 commands */
    b[73] = t->oui;                             /* IEEE, LSB first */
    b[74] = t->oui >> 8;
    b[75] = t->oui >> 16;
    b[77] = t->mdts;
    nvmex_st16(b + 78, t->cntlid);
    nvmex_st32(b + 80, NVMEX_VERSION);
    nvmex_st32(b + 92, 1u << 8);                /* OAES: ns attribute */
    b[111] = 1;                                 /* CNTRLTYPE: I/O */
    b[258] = 3;                                 /* ACL: 4 aborts */
    b[259] = 3;                                 /* AERL: 4 requests */
    b[260] = 0x03;                              /* FRMW: 1 slot, RO */
    b[261] = 0x06;                              /* LPA: effects, ext. */
    b[262] = NVMEX_ERROR_LOG_ENTRIES - 1;       /* ELPE */
    nvmex_st16(b + 266, t->wctemp);
    nvmex_st16(b + 268, t->cctemp);
    b[512] = 0x66;                              /* SQES: 64 bytes */
    b[513] = 0x44;                              /* CQES: 16 bytes */
    nvmex_st32(b + 516, t->nn);
    nvmex_st16(b + 520, t->oncs);
    b[525] = t->vwc ? 0x07 : 0x06;              /* VWC, flush all ok */
    nvmex_st32(b + 536, t->sgl ? 1 : 0);        /* SGLS: no alignment */
    memcpy(b + 768, t->subnqn, strnlen(t->subnqn, sizeof(t->subnqn)));
    /* Power state 0: 25 W, the only one, no transitions */
    nvmex_st16(b + 2048, 2500);
}

void nvmex_id_ctrl_nvm(const NvmexTemplate *t, uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    /* VSL, WZSL, WUSL, DMRL, DMRSL, DMSL: 0 = MDTS / no limit */
    nvmex_st16(b + 18, t->ralbas ? 1 : 0);      /* AOCS.RALBAS */
    nvmex_st32(b + 20, 0x00010000);             /* NVM cmd set 1.0 */
}

void nvmex_id_ns(const NvmexTemplate *t, const NvmexNsTemplate *n,
                 uint64_t nsze, uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    nvmex_st64(b + 0, nsze);                    /* NSZE */
    nvmex_st64(b + 8, nsze);                    /* NCAP */
    nvmex_st64(b + 16, nsze);                   /* NUSE: not thin */
    b[24] = 0x00;                               /* NSFEAT */
    b[25] = n->nlbaf - 1;                       /* NLBAF, 0-based */
    b[26] = (n->flbas & 0xf) | ((n->flbas >> 4) & 3) << 5;
    /*
     * DLFEAT: deallocated blocks read as zeroes and Write Zeroes may
     * deallocate.  True on any backing, because deallocation is done
     * as a zero write that may unmap.
     */
    b[33] = (t->oncs & NVMEX_ONCS_DSM) ? 0x09 : 0x00;
    memcpy(b + 104, n->nguid, 16);
    memcpy(b + 120, n->eui64, 8);
    for (int i = 0; i < n->nlbaf; i++) {
        nvmex_st32(b + 128 + 4 * i,
                   n->lbaf[i].ms | (uint32_t)n->lbaf[i].lbads << 16);
    }
}

void nvmex_id_ns_nvm(const NvmexTemplate *t, const NvmexNsTemplate *n,
                     uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    /* LBSTM, PIC, ELBAF: no protection information, no storage tags */
    if (t->ralbas) {
        nvmex_st32(b + 292, n->tlbaag);         /* TLBAAG (TP4165) */
    }
}

void nvmex_id_ns_indep(uint8_t *b)
{
    memset(b, 0, NVMEX_ID_SIZE);
    b[13] = 1;                                  /* NSTAT: ready */
}

static size_t put_desc(uint8_t *b, size_t off, uint8_t type,
                       const uint8_t *id, uint8_t len)
{
    b[off] = type;
    b[off + 1] = len;
    memcpy(b + off + 4, id, len);
    return off + 4 + len;
}

static int nonzero(const uint8_t *p, size_t n)
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
    if (nonzero(n->eui64, 8)) {
        off = put_desc(b, off, 1, n->eui64, 8);
    }
    if (nonzero(n->nguid, 16)) {
        off = put_desc(b, off, 2, n->nguid, 16);
    }
    if (nonzero(n->uuid, 16)) {
        off = put_desc(b, off, 3, n->uuid, 16);
    }
    return put_desc(b, off, 4, &csi_nvm, 1);
}

void nvmex_id_active_ns(const uint32_t *nsids, int count, uint32_t after,
                        uint8_t *b)
{
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
        nvmex_st32(b + 4 * out++, best);
        last = best;
    }
}

static void put128(uint8_t *b, uint64_t v)
{
    nvmex_st64(b, v);
    nvmex_st64(b + 8, 0);
}

void nvmex_log_smart(const NvmexTemplate *t, const NvmexSmart *s, uint8_t *b)
{
    memset(b, 0, NVMEX_SMART_LOG_SIZE);
    b[0] = s->critical_warning;
    nvmex_st16(b + 1, t->temperature);
    b[3] = 100;                                 /* available spare % */
    b[4] = 10;                                  /* spare threshold % */
    put128(b + 32, s->units_read);
    put128(b + 48, s->units_written);
    put128(b + 64, s->read_cmds);
    put128(b + 80, s->write_cmds);
    put128(b + 112, s->power_cycles);
    put128(b + 128, s->power_on_hours);
    put128(b + 144, s->unsafe_shutdowns);
    put128(b + 160, s->media_errors);
    put128(b + 176, s->error_entries);
    nvmex_st16(b + 200, t->temperature);        /* sensor 1 */
}

void nvmex_log_fw_slot(const NvmexTemplate *t, uint8_t *b)
{
    memset(b, 0, NVMEX_FW_LOG_SIZE);
    b[0] = 0x01;                                /* AFI: slot 1 active */
    put_padded(b + 8, t->fr, 8);
}

void nvmex_log_cmd_effects(const NvmexTemplate *t, uint8_t *b)
{
    memset(b, 0, NVMEX_EFFECTS_LOG_SIZE);
    for (int op = 0; op < 256; op++) {
        if (nvmex_admin_supported(t, op)) {
            nvmex_st32(b + 4 * op, 1);          /* CSUPP */
        }
        if (nvmex_io_supported(t, op)) {
            uint32_t e = 1;

            if (op == NVMEX_IO_WRITE || op == NVMEX_IO_WRITE_ZEROES ||
                op == NVMEX_IO_DSM) {
                e |= 1u << 1;                   /* LBCC */
            }
            nvmex_st32(b + 1024 + 4 * op, e);
        }
    }
}

void nvmex_log_error_entry(const NvmexErrorEntry *e, uint8_t *b)
{
    memset(b, 0, NVMEX_ERROR_ENTRY_SIZE);
    nvmex_st64(b + 0, e->count);
    nvmex_st16(b + 8, e->sqid);
    nvmex_st16(b + 10, e->cid);
    nvmex_st16(b + 12, (uint16_t)(e->status << 1));
    nvmex_st16(b + 14, e->param);
    nvmex_st64(b + 16, e->lba);
    nvmex_st32(b + 24, e->nsid);
}
