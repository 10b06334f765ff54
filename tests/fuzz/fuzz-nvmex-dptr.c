/*
 * libFuzzer harness: the NVMe PRP and SGL walkers
 * (hw/nvme-export/core/nvmex-dptr.c)
 *
 * The input is a command's data pointer (PRP1/PRP2 or the first SGL
 * descriptor), a transfer length bounded as the glue bounds it (MDTS at
 * most 4 MiB), a memory page size, and a 64 KiB guest memory image holding
 * PRP lists and SGL segments.  Checked on every walk:
 *
 * - success means the emitted segments cover exactly the transfer length,
 *   none empty, none wrapping 2^64, adjacent pieces merged;
 * - PRP: the first segment starts at PRP1, the others on a page boundary,
 *   and every segment but the last ends on one; a list read never crosses
 *   a page; the walk reads a bounded number of list entries;
 * - SGL: at most NVMEX_SGL_MAX_DESCS descriptors are read;
 * - a status returned by the emit callback stops the walk and is returned
 *   as is; any other failure is an NVMe status with a non-zero code.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/nvme-export/core/nvmex-dptr.h"
#include "hw/nvme-export/core/nvmex-spec.h"

#define FUZZ_MEM_BASE 0x200000ull
#define FUZZ_MEM_SIZE 0x10000u
#define FUZZ_MAX_LEN (4096ull << 10)      /* MDTS 10, the template's limit */
#define FUZZ_EMIT_STOP 0x1234             /* a status only emit returns */

typedef struct FuzzDptr {
    uint8_t *mem;
    bool prp;
    uint64_t prp1;
    uint32_t page_size;
    /* emitted */
    uint64_t nseg, total;
    uint64_t last_addr, last_len;
    bool have_last;
    uint64_t stop_at;                   /* emit fails at this call, 0: never */
    /* read */
    uint64_t bytes_read, reads;
} FuzzDptr;

static FuzzDptr fd;

static int fuzz_rd(void *opaque, uint64_t addr, void *buf, uint32_t len)
{
    (void)opaque;
    FUZZ_ASSERT(len > 0);
    fd.reads++;
    fd.bytes_read += len;
    if (fd.prp) {
        /* A PRP list read stays within one memory page */
        FUZZ_ASSERT(addr / fd.page_size == (addr + len - 1) / fd.page_size);
    }
    if (addr < FUZZ_MEM_BASE || len > FUZZ_MEM_SIZE ||
        addr - FUZZ_MEM_BASE > FUZZ_MEM_SIZE - len) {
        return -1;
    }
    memcpy(buf, fd.mem + (addr - FUZZ_MEM_BASE), len);
    return 0;
}

static uint16_t fuzz_emit(void *opaque, uint64_t addr, uint64_t len)
{
    (void)opaque;
    FUZZ_ASSERT(len > 0);
    FUZZ_ASSERT(addr + (len - 1) >= addr);          /* no wrap past 2^64 */
    if (fd.have_last) {
        /* Adjacent pieces were merged (but never across 2^64) */
        FUZZ_ASSERT(fd.last_addr + fd.last_len != addr || addr == 0);
        if (fd.prp) {
            /* Only the last piece may end inside a page */
            FUZZ_ASSERT((fd.last_addr + fd.last_len) % fd.page_size == 0);
        }
    }
    if (fd.prp) {
        /* PRP1 first, then whole pages */
        FUZZ_ASSERT(fd.have_last ? addr % fd.page_size == 0 : addr == fd.prp1);
    }
    fd.nseg++;
    fd.total += len;
    fd.last_addr = addr;
    fd.last_len = len;
    fd.have_last = true;
    if (fd.stop_at && fd.nseg == fd.stop_at) {
        return FUZZ_EMIT_STOP;
    }
    return NVMEX_SUCCESS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Header (bytes):
 *   0      bit 0: SGL (else PRP)
 *   1      memory page size: 4 KiB << (byte % 5)
 *   2..5   le32 transfer length, reduced modulo 4 MiB + 1
 *   6..13  le64 PRP1          14..21 le64 PRP2
 *   22..37 the first SGL descriptor
 *   38..39 le16: emit fails at this call (0: never)
 *   40..   guest memory image at FUZZ_MEM_BASE
 */
#define FUZZ_HDR 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[FUZZ_HDR] = { 0 };
    uint64_t len, prp1, prp2;
    uint16_t st;

    if (!fd.mem) {
        fd.mem = malloc(FUZZ_MEM_SIZE);
    }
    memcpy(hdr, data, size < FUZZ_HDR ? size : FUZZ_HDR);
    memset(fd.mem, 0, FUZZ_MEM_SIZE);
    if (size > FUZZ_HDR) {
        size_t n = size - FUZZ_HDR;

        memcpy(fd.mem, data + FUZZ_HDR, n < FUZZ_MEM_SIZE ? n : FUZZ_MEM_SIZE);
    }
    fd.prp = !(hdr[0] & 1);
    fd.page_size = 4096u << (hdr[1] % 5);
    fd.nseg = fd.total = fd.bytes_read = fd.reads = 0;
    fd.have_last = false;
    fd.stop_at = fuzz_ld16(hdr + 38);
    len = fuzz_ld32(hdr + 2) % (FUZZ_MAX_LEN + 1);
    prp1 = fuzz_ld64(hdr + 6);
    prp2 = fuzz_ld64(hdr + 14);
    fd.prp1 = prp1;

    if (fd.prp) {
        uint64_t pages = len / fd.page_size + 2;

        st = nvmex_prp_walk(prp1, prp2, len, fd.page_size, fuzz_rd, fuzz_emit,
                            NULL);
        /* Entries read: the data pages plus one link per list page */
        FUZZ_ASSERT(fd.bytes_read <= 8 * (2 * pages + 2));
        if (st == NVMEX_SUCCESS && len) {
            FUZZ_ASSERT(fd.nseg > 0);
        }
    } else {
        st = nvmex_sgl_walk(hdr + 22, len, fuzz_rd, fuzz_emit, NULL);
        FUZZ_ASSERT(fd.bytes_read <= 16ull * NVMEX_SGL_MAX_DESCS);
    }
    if (st == NVMEX_SUCCESS) {
        FUZZ_ASSERT(fd.total == len);
        FUZZ_ASSERT(!fd.stop_at || fd.nseg < fd.stop_at);
    } else if (fd.stop_at && fd.nseg == fd.stop_at) {
        /* The emit callback's status ends the walk unchanged */
        FUZZ_ASSERT(st == FUZZ_EMIT_STOP);
    } else {
        FUZZ_ASSERT(st != FUZZ_EMIT_STOP);
        FUZZ_ASSERT(NVMEX_STATUS_SC(st) != 0);
    }
    /* Never more data than the command transfers */
    FUZZ_ASSERT(fd.total <= len);
    return 0;
}
