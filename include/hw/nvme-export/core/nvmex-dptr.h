/*
 * nvme-export: data pointer walkers (PRP lists and SGLs)
 *
 * The walkers turn a command's data pointer into guest-physical segments,
 * validating it as the NVMe Base Specification 2.0 requires (section
 * 4.1.1 PRPs, 4.1.2 SGLs).  Memory is reached only through callbacks, so
 * the walkers are unit-testable and never touch QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_DPTR_H
#define HW_NVME_EXPORT_NVMEX_DPTR_H

#include <stdint.h>

#include "hw/nvme-export/core/nvmex-spec.h"

/* Read @len bytes of guest memory at @addr; 0, or -1 on a bus error */
typedef int (*NvmexDmaRead)(void *opaque, uint64_t addr, void *buf,
                            uint32_t len);
/* Take one data segment; 0, or an NVMe status to stop the walk with */
typedef uint16_t (*NvmexEmit)(void *opaque, uint64_t addr, uint64_t len);

/* Upper bound on descriptors read per command; stops segment loops */
#define NVMEX_SGL_MAX_DESCS 4096

/*
 * Walk a PRP pair for a @len-byte transfer with memory page @page_size.
 * Physically contiguous pieces are merged before @emit sees them.
 * Returns NVMEX_SUCCESS or the status to complete the command with.
 */
uint16_t nvmex_prp_walk(uint64_t prp1, uint64_t prp2, uint64_t len,
                        uint32_t page_size, NvmexDmaRead rd, NvmexEmit emit,
                        void *opaque);

/* Walk an SGL whose first descriptor is the 16 bytes at @sgl1 */
uint16_t nvmex_sgl_walk(const uint8_t *sgl1, uint64_t len, NvmexDmaRead rd,
                        NvmexEmit emit, void *opaque);

/* SGL descriptor (Base 2.0, 4.1.2), little-endian */
typedef struct NVMEX_PACKED NvmexSglDesc {
    uint64_t addr;                  /*  0 */
    uint32_t len;                   /*  8 */
    uint8_t rsvd12[3];
    uint8_t type;                   /* 15: type 7:4, sub type 3:0 */
} NvmexSglDesc;
NVMEX_CHECK_SIZE(NvmexSglDesc, 16);
#define NVMEX_SGL_TYPE(t)    ((t) >> 4)
#define NVMEX_SGL_SUBTYPE(t) ((t) & 0xf)

/* SGL descriptor types (byte 15, bits 7:4) */
enum {
    NVMEX_SGL_DATA_BLOCK   = 0x0,
    NVMEX_SGL_BIT_BUCKET   = 0x1,
    NVMEX_SGL_SEGMENT      = 0x2,
    NVMEX_SGL_LAST_SEGMENT = 0x3,
};

#endif
