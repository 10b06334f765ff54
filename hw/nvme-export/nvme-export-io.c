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

uint16_t nvmex_io_cmd(NvmexReq *r)
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
