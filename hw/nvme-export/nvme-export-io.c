/*
 * nvme-export: NVM command set I/O commands
 *
 * Written from the NVM Command Set Specification 1.0 (3.2 Read, Write,
 * Write Zeroes, Dataset Management; Flush from the Base Specification).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "hw/nvme-export/core/nvmex-cmds.h"
#include "nvme-export-internal.h"
#include "trace.h"

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
    nvmex_storage_mark(r);
    nvmex_mgmt_written(r);
    if (ret >= 0 && r->fua && r->opc == NVMEX_IO_WRITE) {
        /* Force Unit Access: durable before completion */
        r->fua = false;
        r->pending = 1;
        blk_aio_flush(ns->conf.blk, nvmex_io_done, r);
        return;
    }
    nvmex_post_async(r);
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
    const NvmeRwCmd *cmd = (const NvmeRwCmd *)&r->cmd;
    uint64_t slba = le64_to_cpu(cmd->slba);
    uint64_t nlb = (uint64_t)le16_to_cpu(cmd->nlb) + 1;
    uint64_t len = nlb << ns->geo.lbads;
    BlockBackend *blk = ns->conf.blk;
    uint16_t st;

    r->write = r->opc == NVMEX_IO_WRITE;
    r->fua = r->write && (le16_to_cpu(cmd->control) & NVME_RW_FUA);
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
        r->mark_slba = slba;
        r->mark_nlb = nlb;
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
    const NvmeRwCmd *cmd = (const NvmeRwCmd *)&r->cmd;
    uint64_t slba = le64_to_cpu(cmd->slba);
    uint64_t nlb = (uint64_t)le16_to_cpu(cmd->nlb) + 1;
    /* DEAC: the zeroes may be a deallocation */
    BdrvRequestFlags flags = (le16_to_cpu(cmd->control) & NVMEX_WZ_DEAC)
                             ? BDRV_REQ_MAY_UNMAP : 0;
    uint16_t st = nvmex_check_range(r, slba, nlb);

    if (st) {
        return st;
    }
    r->pending = 1;
    r->mark_slba = slba;
    r->mark_nlb = nlb;
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
    const NvmeDsmCmd *cmd = (const NvmeDsmCmd *)&r->cmd;
    uint32_t nr = (le32_to_cpu(cmd->nr) & 0xff) + 1;
    uint32_t attr = le32_to_cpu(cmd->attributes);
    g_autofree NvmeDsmRange *ranges = g_new(NvmeDsmRange, nr);
    uint16_t st;

    st = nvmex_xfer(r, ranges, nr * sizeof(*ranges), false);
    if (st) {
        return st;
    }
    for (uint32_t i = 0; i < nr; i++) {
        st = nvmex_check_range(r, le64_to_cpu(ranges[i].slba),
                               le32_to_cpu(ranges[i].nlb));
        if (st) {
            return st;
        }
    }
    if (!(attr & NVME_DSMGMT_AD)) {
        return NVMEX_SUCCESS;           /* hints only */
    }
    r->pending = 1;                     /* held until all are issued */
    block_acct_start(blk_get_stats(ns->conf.blk), &r->acct, 0,
                     BLOCK_ACCT_UNMAP);
    /*
     * Storage migration hears of each range when all are done: ranges
     * far apart are not one span of changed blocks.  The request keeps
     * them until then (at most 256 ranges, 4 KiB).
     */
    if (ns->storage) {
        r->mark_ranges = g_memdup2(ranges, nr * sizeof(*ranges));
        r->mark_nr = nr;
    }
    r->acct_live = true;
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t slba = le64_to_cpu(ranges[i].slba);
        uint32_t nlb = le32_to_cpu(ranges[i].nlb);

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

/* Flush one namespace, or all of them for NSID FFFFFFFFh */
static uint16_t nvmex_io_flush(NvmexReq *r)
{
    NvmeExport *c = r->c;
    uint32_t nsid = le32_to_cpu(r->cmd.nsid);

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

/* The NVM command set of nvmex-cmds.h, one handler per opcode */
#define NVMEX_IO_HANDLER(op, name, handler, needs, effects) \
    [op] = nvmex_io_##handler,

static const NvmexCmdHandler nvmex_io_handlers[256] = {
    NVMEX_IO_COMMANDS(NVMEX_IO_HANDLER)
};

uint16_t nvmex_io_cmd(NvmexReq *r)
{
    NvmeExport *c = r->c;
    uint32_t nsid = le32_to_cpu(r->cmd.nsid);

    /* Supported means a row of NVMEX_IO_COMMANDS: it has a handler */
    if (!nvmex_io_supported(&c->tmpl, r->opc)) {
        nvmex_guest_error(c, "sq %u: I/O opcode 0x%x not supported",
                          r->sqid, r->opc);
        return NVMEX_INVALID_OPCODE | NVMEX_DNR;
    }
    if (r->opc != NVMEX_IO_FLUSH || nsid != 0xffffffff) {
        r->ns = nsid && nsid <= NVMEX_MAX_NSID ? c->ns[nsid] : NULL;
        if (!r->ns) {
            nvmex_guest_error(c, "sq %u cid %u: %s: nsid %u is not active",
                              r->sqid, r->cid, nvmex_io_name(r->opc), nsid);
            return NVMEX_INVALID_NAMESPACE | NVMEX_DNR;
        }
    }
    return nvmex_io_handlers[r->opc](r);
}
