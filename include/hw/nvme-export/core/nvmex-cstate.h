/*
 * The Controller State a management controller reads with Migration
 * Receive (42h) Get Controller State and writes with Migration Send (41h)
 * Set Controller State (TP4159): its encoder and its checking decoder.
 *
 * Layout (little-endian; docs/nvme-export.rst has the same table):
 *
 *   Controller State header, 48 bytes (libnvme's
 *   nvme_lm_controller_state_data_header):
 *     0   VER      2   header version, 0
 *     2   CSATTR   1   bit 0: the controller was suspended
 *     16  NVMECSS 16   NVMe-defined state size, in dwords
 *     32  VSS     16   vendor-specific state size, in dwords
 *   NVMe-defined state, version 0:
 *     0   VER 2, NIOSQ 2, NIOCQ 2, reserved 2
 *     8   NIOSQ I/O SQ entries of 24 bytes:
 *           PRP1 8, QSIZE 2 (0's based), QID 2, CQID 2,
 *           ATTR 2 (bit 0 PC, bits 2:1 QPRIO), HEAD 2, TAIL 2, reserved 4
 *         NIOCQ I/O CQ entries of 24 bytes:
 *           PRP1 8, QSIZE 2 (0's based), QID 2, HEAD 2, TAIL 2,
 *           ATTR 4 (bit 0 PC, bit 1 IEN, bit 2 S0PT, bits 31:16 IV),
 *           reserved 4
 *   Vendor-specific state (only when asked for, by CSUUIDI naming our
 *   UUID), this project's own format:
 *     0   UUID 16      NVMEX_CS_VENDOR_UUID
 *     16  VER 2        NVMEX_CS_VENDOR_VERSION
 *     18  reserved 2
 *     20  LEN 4        bytes of the vendor part
 *     24  features: ARB 4, PM 4, ERREC 4, IRQCOAL 4, WATOMIC 4, AECFG 4,
 *         TMPOVER 2, TMPUNDER 2, NSQA 2, NCQA 2 (1's based), VWC 1,
 *         NQSET 1, reserved 2  (ends at 64)
 *     64  NPARKED 4, reserved 4
 *     72  NPARKED completions not yet posted for want of CQ room, 16 bytes
 *         each: CQID 2, SQID 2, CID 2, STATUS 2, DW0 4, reserved 4
 *
 * S0PT is our reading of "slot 0 phase tag": the phase tag the controller
 * posts in slot 0 during its current pass over the CQ, which is the phase
 * it posts at the tail now.
 *
 * The decoder checks everything that does not depend on the controller
 * the state is applied to (sizes agree, versions known, queue ids unique
 * and in range, heads and tails inside their queues, every SQ's CQ and
 * every parked completion's CQ present); the device checks the rest
 * against its own limits.
 *
 * QEMU-free (libc only).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_CSTATE_H
#define HW_NVME_EXPORT_NVMEX_CSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMEX_CS_HDR_SIZE       48
#define NVMEX_CS_NVME_HDR_SIZE  8
#define NVMEX_CS_QUEUE_SIZE     24
#define NVMEX_CS_VENDOR_HDR_SIZE 72
#define NVMEX_CS_PARKED_SIZE    16
#define NVMEX_CS_VENDOR_VERSION 1

/* Queues a state may carry of each kind: the I/O queue ids 1..64 */
#define NVMEX_CS_MAX_QUEUES     64
/* Parked completions a state may carry */
#define NVMEX_CS_MAX_PARKED     4160
#define NVMEX_CS_MAX_SIZE \
    (NVMEX_CS_HDR_SIZE + NVMEX_CS_NVME_HDR_SIZE + \
     2 * NVMEX_CS_MAX_QUEUES * NVMEX_CS_QUEUE_SIZE + \
     NVMEX_CS_VENDOR_HDR_SIZE + NVMEX_CS_MAX_PARKED * NVMEX_CS_PARKED_SIZE)

/* This project's UUID, naming its vendor-specific state (CNS 20h) */
extern const uint8_t nvmex_cs_vendor_uuid[16];

typedef struct NvmexCsSq {
    uint64_t prp1;
    uint16_t qsize;             /* 0's based */
    uint16_t qid, cqid;
    uint16_t attr;              /* bit 0 PC, bits 2:1 QPRIO */
    uint16_t head, tail;
} NvmexCsSq;

typedef struct NvmexCsCq {
    uint64_t prp1;
    uint16_t qsize;             /* 0's based */
    uint16_t qid;
    uint16_t head, tail;
    uint32_t attr;              /* PC, IEN, S0PT, IV */
} NvmexCsCq;

#define NVMEX_CS_SQA_PC         (1u << 0)
#define NVMEX_CS_SQA_QPRIO(a)   (((a) >> 1) & 3)
#define NVMEX_CS_CQA_PC         (1u << 0)
#define NVMEX_CS_CQA_IEN        (1u << 1)
#define NVMEX_CS_CQA_S0PT       (1u << 2)
#define NVMEX_CS_CQA_IV(a)      ((a) >> 16)

typedef struct NvmexCsParked {
    uint16_t cqid, sqid, cid, status;
    uint32_t dw0;
} NvmexCsParked;

typedef struct NvmexCsVendor {
    uint32_t arbitration, power_mgmt, error_recovery, irq_coalescing;
    uint32_t write_atomic, async_event_cfg;
    uint16_t temp_over, temp_under;
    uint16_t nsqa, ncqa;        /* 1's based */
    uint8_t vwc, nq_set;
    uint32_t nparked;
    NvmexCsParked parked[NVMEX_CS_MAX_PARKED];
} NvmexCsVendor;

typedef struct NvmexCsImage {
    bool suspended;             /* CSATTR bit 0 */
    /*
     * Encode no NVMe-defined part (NVMECSS 0): a Get Controller State
     * with CSVI 0 (Base 2.1, Figure 345).  Decoding always wants it.
     */
    bool no_nvme_state;
    uint16_t nsq, ncq;
    NvmexCsSq sq[NVMEX_CS_MAX_QUEUES];
    NvmexCsCq cq[NVMEX_CS_MAX_QUEUES];
    bool has_vendor;
    NvmexCsVendor vendor;
} NvmexCsImage;

/* Bytes @img encodes to */
size_t nvmex_cs_size(const NvmexCsImage *img);

/* Encode @img into @buf (nvmex_cs_size() bytes); returns the size */
size_t nvmex_cs_encode(const NvmexCsImage *img, uint8_t *buf);

/* Why a state was refused */
typedef struct NvmexCsError {
    uint32_t offset;            /* byte offset of the offending field */
    const char *why;
} NvmexCsError;

/*
 * Decode and check @len bytes.  Returns true and fills @img, or returns
 * false and says where and why in @err.
 */
bool nvmex_cs_decode(const uint8_t *buf, size_t len, NvmexCsImage *img,
                     NvmexCsError *err);

#endif
