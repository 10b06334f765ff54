/*
 * nvme-export: command data pointers, mapped and copied
 *
 * Written from the NVM Express Base Specification 2.0 (4.1.1 PRPs,
 * 4.1.2 SGLs).  The walkers are in core/nvmex-dptr.c; this file feeds
 * them guest memory and builds the scatter-gather list of a command.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/rcu.h"
#include "system/dma.h"
#include "exec/memory.h"
#include "hw/nvme-export/core/nvmex-dptr.h"
#include "nvme-export-internal.h"
#include "trace.h"

static int nvmex_dma_read(void *opaque, uint64_t addr, void *buf, uint32_t len)
{
    NvmexReq *r = opaque;

    return pci_dma_read(PCI_DEVICE(r->c), addr, buf, len) == MEMTX_OK ? 0
                                                                      : -1;
}

/*
 * Is [@addr, @addr + @len) guest RAM the device may access (write, for
 * @is_write)?  Data anywhere else - another device's registers or our
 * own BAR - would be bounced by the DMA helpers and written from inside
 * the block layer's completion callback, where a controller reset that
 * drains the block layer can never finish.
 */
static bool nvmex_is_guest_ram(AddressSpace *as, uint64_t addr,
                               uint64_t len, bool is_write)
{
    RCU_READ_LOCK_GUARD();

    if (addr + len < addr) {
        return false;
    }
    while (len) {
        hwaddr xlat, plen = len;
        MemoryRegion *mr = address_space_translate(as, addr, &xlat, &plen,
                                                   is_write,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (!plen || !memory_region_is_ram(mr) ||
            (is_write && mr->readonly)) {
            return false;
        }
        addr += plen;
        len -= MIN(plen, len);
    }
    return true;
}

static uint16_t nvmex_sg_emit(void *opaque, uint64_t addr, uint64_t len)
{
    NvmexReq *r = opaque;
    PCIDevice *pci = PCI_DEVICE(r->c);

    /* Device writes guest memory on reads, and the reverse */
    if (!nvmex_is_guest_ram(pci_get_address_space(pci), addr, len,
                            !r->write)) {
        nvmex_guest_error(r->c, "sq %u cid %u: data at 0x%" PRIx64
                          "+0x%" PRIx64 " is not guest memory (RAM)", r->sqid,
                          r->cid, addr, len);
        return NVMEX_DATA_TRANSFER_ERROR;
    }
    qemu_sglist_add(&r->sg, addr, len);
    return NVMEX_SUCCESS;
}

uint16_t nvmex_map_dptr(NvmexReq *r, uint64_t len)
{
    NvmeExport *c = r->c;
    uint8_t psdt = NVME_CMD_FLAGS_PSDT(r->cmd.flags);
    uint16_t st;

    qemu_sglist_init(&r->sg, DEVICE(c), 4,
                     pci_get_address_space(PCI_DEVICE(c)));
    r->sg_live = true;
    if (psdt == NVME_PSDT_PRP) {
        st = nvmex_prp_walk(le64_to_cpu(r->cmd.dptr.prp1),
                            le64_to_cpu(r->cmd.dptr.prp2), len,
                            NVMEX_PAGE_SIZE, nvmex_dma_read, nvmex_sg_emit, r);
    } else if (psdt == NVME_PSDT_SGL_MPTR_CONTIGUOUS && c->tmpl.sgl &&
               r->sqid) {
        st = nvmex_sgl_walk((const uint8_t *)&r->cmd.dptr.sgl, len,
                            nvmex_dma_read, nvmex_sg_emit, r);
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
uint16_t nvmex_xfer(NvmexReq *r, void *buf, uint32_t len, bool to_host)
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
