/*
 * nvme-export: NVMe 2.x constants the controller and its cores share
 *
 * Written from the NVM Express Base Specification 2.0 and the NVM Command
 * Set Specification 1.0 (plus TP4165 and TP4176 as summarised in
 * docs/nvme-export.rst).  No QEMU headers: the cores include this too.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_SPEC_H
#define HW_NVME_EXPORT_NVMEX_SPEC_H

#include <stdint.h>

/* Controller registers (BAR0 offsets) */
enum {
    NVMEX_REG_CAP     = 0x00,
    NVMEX_REG_VS      = 0x08,
    NVMEX_REG_INTMS   = 0x0c,
    NVMEX_REG_INTMC   = 0x10,
    NVMEX_REG_CC      = 0x14,
    NVMEX_REG_CSTS    = 0x1c,
    NVMEX_REG_NSSR    = 0x20,
    NVMEX_REG_AQA     = 0x24,
    NVMEX_REG_ASQ     = 0x28,
    NVMEX_REG_ACQ     = 0x30,
    NVMEX_REG_DBS     = 0x1000,
};

#define NVMEX_CC_EN(cc)      ((cc) & 1)
#define NVMEX_CC_CSS(cc)     (((cc) >> 4) & 7)
#define NVMEX_CC_MPS(cc)     (((cc) >> 7) & 0xf)
#define NVMEX_CC_AMS(cc)     (((cc) >> 11) & 7)
#define NVMEX_CC_SHN(cc)     (((cc) >> 14) & 3)
#define NVMEX_CC_IOSQES(cc)  (((cc) >> 16) & 0xf)
#define NVMEX_CC_IOCQES(cc)  (((cc) >> 20) & 0xf)

#define NVMEX_CSTS_RDY       (1u << 0)
#define NVMEX_CSTS_CFS       (1u << 1)
#define NVMEX_CSTS_SHST_DONE (2u << 2)
#define NVMEX_CSTS_NSSRO     (1u << 4)

/* Status: SCT in bits 10:8, SC in 7:0, DNR as bit 14 (the CQE's 15:1). */
#define NVMEX_SCT_GENERIC   0
#define NVMEX_SCT_CMD       1
#define NVMEX_SCT_MEDIA     2
#define NVMEX_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVMEX_DNR            0x4000u
#define NVMEX_STATUS_SCT(s)  (((s) >> 8) & 7)
#define NVMEX_STATUS_SC(s)   ((s) & 0xff)

enum {
    NVMEX_SUCCESS                 = NVMEX_STATUS(0, 0x00),
    NVMEX_INVALID_OPCODE          = NVMEX_STATUS(0, 0x01),
    NVMEX_INVALID_FIELD           = NVMEX_STATUS(0, 0x02),
    NVMEX_DATA_TRANSFER_ERROR     = NVMEX_STATUS(0, 0x04),
    NVMEX_INTERNAL_ERROR          = NVMEX_STATUS(0, 0x06),
    NVMEX_ABORT_REQUESTED         = NVMEX_STATUS(0, 0x07),
    NVMEX_ABORT_SQ_DELETED        = NVMEX_STATUS(0, 0x08),
    NVMEX_INVALID_NAMESPACE       = NVMEX_STATUS(0, 0x0b),
    NVMEX_CMD_SEQ_ERROR           = NVMEX_STATUS(0, 0x0c),
    NVMEX_INVALID_SGL_SEG_DESC    = NVMEX_STATUS(0, 0x0d),
    NVMEX_INVALID_NUM_SGL_DESCS   = NVMEX_STATUS(0, 0x0e),
    NVMEX_DATA_SGL_LEN_INVALID    = NVMEX_STATUS(0, 0x0f),
    NVMEX_SGL_DESC_TYPE_INVALID   = NVMEX_STATUS(0, 0x11),
    NVMEX_PRP_OFFSET_INVALID      = NVMEX_STATUS(0, 0x13),
    NVMEX_LBA_OUT_OF_RANGE        = NVMEX_STATUS(0, 0x80),
    NVMEX_CQ_INVALID              = NVMEX_STATUS(1, 0x00),
    NVMEX_INVALID_QID             = NVMEX_STATUS(1, 0x01),
    NVMEX_INVALID_QSIZE           = NVMEX_STATUS(1, 0x02),
    NVMEX_AER_LIMIT_EXCEEDED      = NVMEX_STATUS(1, 0x05),
    NVMEX_INVALID_IRQ_VECTOR      = NVMEX_STATUS(1, 0x08),
    NVMEX_INVALID_LOG_PAGE        = NVMEX_STATUS(1, 0x09),
    NVMEX_INVALID_QUEUE_DELETION  = NVMEX_STATUS(1, 0x0c),
    NVMEX_FEATURE_NOT_SAVEABLE    = NVMEX_STATUS(1, 0x0d),
    NVMEX_WRITE_FAULT             = NVMEX_STATUS(2, 0x80),
    NVMEX_UNRECOVERED_READ        = NVMEX_STATUS(2, 0x81),
};

/* Admin opcodes */
enum {
    NVMEX_ADM_DELETE_SQ    = 0x00,
    NVMEX_ADM_CREATE_SQ    = 0x01,
    NVMEX_ADM_GET_LOG_PAGE = 0x02,
    NVMEX_ADM_DELETE_CQ    = 0x04,
    NVMEX_ADM_CREATE_CQ    = 0x05,
    NVMEX_ADM_IDENTIFY     = 0x06,
    NVMEX_ADM_ABORT        = 0x08,
    NVMEX_ADM_SET_FEATURES = 0x09,
    NVMEX_ADM_GET_FEATURES = 0x0a,
    NVMEX_ADM_AER          = 0x0c,
    NVMEX_ADM_GET_LBA_STATUS = 0x86,
};

/* NVM command set I/O opcodes */
enum {
    NVMEX_IO_FLUSH        = 0x00,
    NVMEX_IO_WRITE        = 0x01,
    NVMEX_IO_READ         = 0x02,
    NVMEX_IO_WRITE_ZEROES = 0x08,
    NVMEX_IO_DSM          = 0x09,
};

/* Identify CNS values */
enum {
    NVMEX_CNS_NS            = 0x00,
    NVMEX_CNS_CTRL          = 0x01,
    NVMEX_CNS_ACTIVE_NS     = 0x02,
    NVMEX_CNS_NS_DESCS      = 0x03,
    NVMEX_CNS_CS_NS         = 0x05,
    NVMEX_CNS_CS_CTRL       = 0x06,
    NVMEX_CNS_CS_ACTIVE_NS  = 0x07,
    NVMEX_CNS_CSI_INDEP_NS  = 0x08,
};

/* Log page identifiers */
enum {
    NVMEX_LOG_ERROR         = 0x01,
    NVMEX_LOG_SMART         = 0x02,
    NVMEX_LOG_FW_SLOT       = 0x03,
    NVMEX_LOG_CHANGED_NS    = 0x04,
    NVMEX_LOG_CMD_EFFECTS   = 0x05,
};

/* Feature identifiers */
enum {
    NVMEX_FEAT_ARBITRATION    = 0x01,
    NVMEX_FEAT_POWER_MGMT     = 0x02,
    NVMEX_FEAT_TEMP_THRESHOLD = 0x04,
    NVMEX_FEAT_ERROR_RECOVERY = 0x05,
    NVMEX_FEAT_VWC            = 0x06,
    NVMEX_FEAT_NUM_QUEUES     = 0x07,
    NVMEX_FEAT_IRQ_COALESCING = 0x08,
    NVMEX_FEAT_IRQ_VECTOR     = 0x09,
    NVMEX_FEAT_WRITE_ATOMIC   = 0x0a,
    NVMEX_FEAT_ASYNC_EVENT    = 0x0b,
    NVMEX_FEAT_RATE_LIMIT     = 0x28,
};

/* ONCS bits this controller can implement */
#define NVMEX_ONCS_DSM          (1u << 2)
#define NVMEX_ONCS_WRITE_ZEROES (1u << 3)
#define NVMEX_ONCS_SAVE_SELECT  (1u << 4)
#define NVMEX_ONCS_SUPPORTED \
    (NVMEX_ONCS_DSM | NVMEX_ONCS_WRITE_ZEROES | NVMEX_ONCS_SAVE_SELECT)

/* Asynchronous event types and information */
enum {
    NVMEX_AET_ERROR  = 0,
    NVMEX_AET_SMART  = 1,
    NVMEX_AET_NOTICE = 2,
};
enum {
    NVMEX_AEI_ERR_INVALID_DB       = 0x00,
    NVMEX_AEI_ERR_INVALID_DB_VALUE = 0x01,
    NVMEX_AEI_SMART_TEMPERATURE    = 0x01,
    NVMEX_AEI_NOTICE_NS_CHANGED    = 0x00,
};

#define NVMEX_SQE_SIZE 64
#define NVMEX_CQE_SIZE 16
#define NVMEX_ID_SIZE  4096

/* Little-endian field access on byte buffers */
static inline void nvmex_st16(uint8_t *p, uint16_t v)
{
    p[0] = v;
    p[1] = v >> 8;
}

static inline void nvmex_st32(uint8_t *p, uint32_t v)
{
    nvmex_st16(p, v);
    nvmex_st16(p + 2, v >> 16);
}

static inline void nvmex_st64(uint8_t *p, uint64_t v)
{
    nvmex_st32(p, v);
    nvmex_st32(p + 4, v >> 32);
}

static inline uint16_t nvmex_ld16(const uint8_t *p)
{
    return p[0] | (uint16_t)p[1] << 8;
}

static inline uint32_t nvmex_ld32(const uint8_t *p)
{
    return nvmex_ld16(p) | (uint32_t)nvmex_ld16(p + 2) << 16;
}

static inline uint64_t nvmex_ld64(const uint8_t *p)
{
    return nvmex_ld32(p) | (uint64_t)nvmex_ld32(p + 4) << 32;
}

#endif
