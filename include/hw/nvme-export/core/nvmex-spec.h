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

#include <stddef.h>
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
    /* TP4159 (NVMe Base 2.1 and later), command specific */
    NVMEX_INVALID_CTRL_ID         = NVMEX_STATUS(1, 0x1f),
    NVMEX_INVALID_CDQ             = NVMEX_STATUS(1, 0x37),
    NVMEX_NOT_ENOUGH_RESOURCES    = NVMEX_STATUS(1, 0x38),
    NVMEX_CDQ_FULL                = NVMEX_STATUS(1, 0x3b),
    /* TP4193 (NVMe Base 2.4), command specific */
    NVMEX_INVALID_NVM_SUBSYSTEM   = NVMEX_STATUS(1, 0x36),
    NVMEX_INVALID_EXPORTED_ASSOC  = NVMEX_STATUS(1, 0x43),
    NVMEX_INVALID_EXPORTED_CONFIG = NVMEX_STATUS(1, 0x44),
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
    NVMEX_ADM_ESUB_RECV    = 0x2a,     /* TP4193 Manage Exported NVM
                                          Subsystem Receive */
    NVMEX_ADM_ESUB_SEND    = 0x2d,     /* ... Send */
    NVMEX_ADM_EXPORTED_NS  = 0x31,     /* Manage Exported Namespace */
    NVMEX_ADM_EXPORTED_PORT = 0x35,    /* Manage Exported Port */
    NVMEX_ADM_TRACK_SEND   = 0x3d,     /* TP4159 */
    NVMEX_ADM_MIGRATION_SEND = 0x41,   /* TP4159 */
    NVMEX_ADM_MIGRATION_RECV = 0x42,   /* TP4159 */
    NVMEX_ADM_CDQ          = 0x45,     /* TP4159 Controller Data Queue */
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
    NVMEX_CNS_CS_FORMATS    = 0x20,     /* TP4159: controller state formats */
    NVMEX_CNS_UNDERLYING_CTRLS = 0x21,  /* TP4193: underlying controllers */
    NVMEX_CNS_ESUB_TEMPLATES = 0x22,    /* TP4193: template UUID list */
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
    NVMEX_FEAT_CDQ            = 0x21,   /* TP4159 Controller Data Queue */
    NVMEX_FEAT_RATE_LIMIT     = 0x28,
};

/* OACS bit 11: Host Managed Live Migration Support (TP4159) */
#define NVMEX_OACS_HMLMS (1u << 11)
/* ENSA: Exported NVM Subsystem Template / Migration Support (TP4193) */
#define NVMEX_ENSA_ENSTS (1u << 0)
#define NVMEX_ENSA_ENSMS (1u << 1)
/* TRATTR bit 1: Track User Data Changes Support (TP4159) */
#define NVMEX_TRATTR_TUDCS (1u << 1)

/* Write Zeroes CDW12 bits 31:16 (the control word) */
#define NVMEX_WZ_DEAC (1u << 9)     /* deallocate */

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
/* One-shot events of a Controller Data Queue (TP4159) */
#define NVMEX_AET_ONE_SHOT 4
enum {
    NVMEX_AEI_CDQ_TAIL_POINTER = 0x00,
    NVMEX_AEI_CDQ_FULL         = 0x01,
};

#define NVMEX_SQE_SIZE 64
#define NVMEX_CQE_SIZE 16
#define NVMEX_ID_SIZE  4096

/*
 * Wire layouts, little-endian, as packed structs whose sizes (and key
 * offsets) are checked at build time.  Field names follow the
 * specification's mnemonics; the byte offset of each is in its comment.
 * Commands and the completion entry the QEMU glue takes from upstream's
 * include/block/nvme.h (NvmeCmd, NvmeRwCmd, NvmeCqe, ...); what that
 * header lacks, and what the QEMU-free encoders fill, is here.
 */
#define NVMEX_PACKED __attribute__((packed))
#define NVMEX_CHECK_SIZE(type, size) \
    _Static_assert(sizeof(type) == (size), #type " is " #size " bytes")
#define NVMEX_CHECK_OFFSET(type, field, off) \
    _Static_assert(offsetof(type, field) == (off), \
                   #type "." #field " at " #off)

/* Little-endian stores and loads of the structs' fields */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define nvmex_cpu_to_le16(v) __builtin_bswap16(v)
#define nvmex_cpu_to_le32(v) __builtin_bswap32(v)
#define nvmex_cpu_to_le64(v) __builtin_bswap64(v)
#else
#define nvmex_cpu_to_le16(v) ((uint16_t)(v))
#define nvmex_cpu_to_le32(v) ((uint32_t)(v))
#define nvmex_cpu_to_le64(v) ((uint64_t)(v))
#endif
#define nvmex_le16_to_cpu(v) nvmex_cpu_to_le16(v)
#define nvmex_le32_to_cpu(v) nvmex_cpu_to_le32(v)
#define nvmex_le64_to_cpu(v) nvmex_cpu_to_le64(v)

/* Get Log Page (Base 2.0, 5.16): CDW10-14 */
typedef struct NVMEX_PACKED NvmexGetLogCmd {
    uint8_t opcode;
    uint8_t flags;
    uint16_t cid;
    uint32_t nsid;                  /*  4 */
    uint64_t rsvd8[2];
    uint64_t prp1, prp2;            /* 24 */
    uint8_t lid;                    /* 40: CDW10 */
    uint8_t lsp_rae;                /* 41: LSP 6:0, RAE bit 7 */
    uint16_t numdl;                 /* 42 */
    uint16_t numdu;                 /* 44: CDW11 */
    uint16_t lsi;                   /* 46 */
    uint64_t lpo;                   /* 48: CDW12-13 */
    uint32_t cdw14, cdw15;
} NvmexGetLogCmd;
NVMEX_CHECK_SIZE(NvmexGetLogCmd, 64);
NVMEX_CHECK_OFFSET(NvmexGetLogCmd, lpo, 48);
#define NVMEX_GET_LOG_RAE 0x80

/* Set / Get Features (Base 2.0, 5.27 and 5.15): CDW10-11 */
typedef struct NVMEX_PACKED NvmexFeaturesCmd {
    uint8_t opcode;
    uint8_t flags;
    uint16_t cid;
    uint32_t nsid;
    uint64_t rsvd8[2];
    uint64_t prp1, prp2;            /* 24 */
    uint8_t fid;                    /* 40: CDW10 */
    uint8_t sel;                    /* 41: Get SEL 2:0 */
    uint16_t rsvd42;                /* 42: Set SV is bit 15 */
    uint32_t cdw11;                 /* 44 */
    uint32_t cdw12, cdw13, cdw14, cdw15;
} NvmexFeaturesCmd;
NVMEX_CHECK_SIZE(NvmexFeaturesCmd, 64);
#define NVMEX_FEAT_SAVE (1u << 15)  /* in rsvd42: SV */

/* Get LBA Status (Base 2.0, 5.14; TP4165 Action Type 02h) */
typedef struct NVMEX_PACKED NvmexGetLbaStatusCmd {
    uint8_t opcode;
    uint8_t flags;
    uint16_t cid;
    uint32_t nsid;
    uint64_t rsvd8[2];
    uint64_t prp1, prp2;            /* 24 */
    uint64_t slba;                  /* 40: CDW10-11 */
    uint32_t mndw;                  /* 48: CDW12, 0-based dwords */
    uint16_t rl;                    /* 52: CDW13 */
    uint8_t rsvd54;
    uint8_t atype;                  /* 55 */
    uint32_t cdw14, cdw15;
} NvmexGetLbaStatusCmd;
NVMEX_CHECK_SIZE(NvmexGetLbaStatusCmd, 64);
NVMEX_CHECK_OFFSET(NvmexGetLbaStatusCmd, atype, 55);

/* LBA Status data: a header and up to (length - 8) / 16 descriptors */
typedef struct NVMEX_PACKED NvmexLbaStatusHdr {
    uint32_t nlsd;                  /* 0 */
    uint8_t cmpc;                   /* 4 */
    uint8_t rsvd5[3];
} NvmexLbaStatusHdr;
NVMEX_CHECK_SIZE(NvmexLbaStatusHdr, 8);

typedef struct NVMEX_PACKED NvmexLbaStatusDesc {
    uint64_t dslba;                 /* 0 */
    uint32_t nlb;                   /* 8 */
    uint8_t rsvd12;
    uint8_t as;                     /* 13 */
    uint8_t rsvd14[2];
} NvmexLbaStatusDesc;
NVMEX_CHECK_SIZE(NvmexLbaStatusDesc, 16);

/* Power State Descriptor (Base 2.0, Figure 276) */
typedef struct NVMEX_PACKED NvmexPsd {
    uint16_t mp;                    /* 0: centiwatts */
    uint8_t rsvd2;
    uint8_t flags;
    uint32_t enlat, exlat;          /* 4, 8 */
    uint8_t rrt, rrl, rwt, rwl;     /* 12 */
    uint16_t idlp;
    uint8_t ips, rsvd19;
    uint16_t actp;
    uint8_t apws;
    uint8_t rsvd23[9];
} NvmexPsd;
NVMEX_CHECK_SIZE(NvmexPsd, 32);

/* Identify Controller (Base 2.0, Figure 275) */
typedef struct NVMEX_PACKED NvmexIdCtrl {
    uint16_t vid;                   /*   0 */
    uint16_t ssvid;                 /*   2 */
    char sn[20];                    /*   4 */
    char mn[40];                    /*  24 */
    char fr[8];                     /*  64 */
    uint8_t rab;                    /*  72 */
    uint8_t ieee[3];                /*  73: OUI, LSB first */
    uint8_t cmic;                   /*  76 */
    uint8_t mdts;                   /*  77 */
    uint16_t cntlid;                /*  78 */
    uint32_t ver;                   /*  80 */
    uint32_t rtd3r, rtd3e;          /*  84 */
    uint32_t oaes;                  /*  92 */
    uint32_t ctratt;                /*  96 */
    uint8_t rsvd100[11];
    uint8_t cntrltype;              /* 111 */
    uint8_t fguid[16];              /* 112 */
    uint8_t rsvd128[128];           /* 128: CRDT, NVMe-MI */
    uint16_t oacs;                  /* 256 */
    uint8_t acl;                    /* 258 */
    uint8_t aerl;                   /* 259 */
    uint8_t frmw;                   /* 260 */
    uint8_t lpa;                    /* 261 */
    uint8_t elpe;                   /* 262 */
    uint8_t npss;                   /* 263 */
    uint8_t avscc;                  /* 264 */
    uint8_t apsta;                  /* 265 */
    uint16_t wctemp;                /* 266 */
    uint16_t cctemp;                /* 268 */
    uint8_t rsvd270[134];           /* 270 */
    uint8_t ensa;                   /* 404: TP4193 */
    uint8_t endsfs;                 /* 405 */
    uint8_t rsvd406[106];           /* up to 511 */
    uint8_t sqes;                   /* 512 */
    uint8_t cqes;                   /* 513 */
    uint16_t maxcmd;                /* 514 */
    uint32_t nn;                    /* 516 */
    uint16_t oncs;                  /* 520 */
    uint16_t fuses;                 /* 522 */
    uint8_t fna;                    /* 524 */
    uint8_t vwc;                    /* 525 */
    uint16_t awun, awupf;           /* 526 */
    uint8_t icsvscc;                /* 530 */
    uint8_t nwpc;                   /* 531 */
    uint16_t acwu;                  /* 532 */
    uint16_t ocfs;                  /* 534 */
    uint32_t sgls;                  /* 536 */
    uint32_t mnan;                  /* 540 */
    uint8_t rsvd544[26];
    uint16_t cmmrtd;                /* 570: TP4159 */
    uint16_t nmmrtd;                /* 572 */
    uint8_t minmrtg;                /* 574 */
    uint8_t maxmrtg;                /* 575 */
    uint8_t trattr;                 /* 576 */
    uint8_t rsvd577;
    uint16_t mcudmq;                /* 578 */
    uint16_t mnsudmq;               /* 580 */
    uint16_t mcmr;                  /* 582 */
    uint16_t nmcmr;                 /* 584 */
    uint16_t mcdqpc;                /* 586 */
    uint8_t rsvd588[180];
    char subnqn[256];               /* 768 */
    uint8_t rsvd1024[1024];         /* 1024: reserved, fabrics */
    NvmexPsd psd[32];               /* 2048 */
    uint8_t vs[1024];               /* 3072 */
} NvmexIdCtrl;
NVMEX_CHECK_SIZE(NvmexIdCtrl, 4096);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, cntrltype, 111);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, oacs, 256);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, wctemp, 266);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, ensa, 404);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, sqes, 512);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, sgls, 536);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, cmmrtd, 570);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, trattr, 576);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, mcudmq, 578);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, mcdqpc, 586);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, subnqn, 768);
NVMEX_CHECK_OFFSET(NvmexIdCtrl, psd, 2048);

/* I/O Command Set specific Identify Controller, NVM (CNS 06h) */
typedef struct NVMEX_PACKED NvmexIdCtrlNvm {
    uint8_t vsl, wzsl, wusl, dmrl;  /* 0 */
    uint32_t dmrsl;                 /* 4 */
    uint64_t dmsl;                  /* 8 */
    uint8_t rsvd16[2];
    uint16_t aocs;                  /* 18: TP4165 RALBAS is bit 0 */
    uint32_t ver;                   /* 20: NVM command set version */
    uint8_t rsvd24[4072];
} NvmexIdCtrlNvm;
NVMEX_CHECK_SIZE(NvmexIdCtrlNvm, 4096);

/* LBA Format (NVM Command Set 1.0, Figure 98) */
typedef struct NVMEX_PACKED NvmexLbafEntry {
    uint16_t ms;                    /* metadata bytes */
    uint8_t lbads;                  /* log2 of the data size */
    uint8_t rp;
} NvmexLbafEntry;
NVMEX_CHECK_SIZE(NvmexLbafEntry, 4);

/* Identify Namespace, NVM command set (CNS 00h; NVM 1.0, Figure 97) */
typedef struct NVMEX_PACKED NvmexIdNs {
    uint64_t nsze, ncap, nuse;      /*   0 */
    uint8_t nsfeat;                 /*  24 */
    uint8_t nlbaf;                  /*  25: 0-based */
    uint8_t flbas;                  /*  26 */
    uint8_t mc, dpc, dps, nmic, rescap, fpi;
    uint8_t dlfeat;                 /*  33 */
    uint8_t rsvd34[70];             /*  34: atomicity, NVMCAP, ... */
    uint8_t nguid[16];              /* 104 */
    uint8_t eui64[8];               /* 120 */
    NvmexLbafEntry lbaf[64];        /* 128 */
    uint8_t rsvd384[3712];
} NvmexIdNs;
NVMEX_CHECK_SIZE(NvmexIdNs, 4096);
NVMEX_CHECK_OFFSET(NvmexIdNs, dlfeat, 33);
NVMEX_CHECK_OFFSET(NvmexIdNs, nguid, 104);

/* I/O Command Set specific Identify Namespace, NVM (CNS 05h) */
typedef struct NVMEX_PACKED NvmexIdNsNvm {
    uint64_t lbstm;                 /*   0 */
    uint8_t pic;                    /*   8 */
    uint8_t rsvd9[3];
    uint32_t elbaf[64];             /*  12 */
    uint8_t rsvd268[24];            /* 268: NPDGL ... NPDAL */
    uint32_t tlbaag;                /* 292: TP4165 */
    uint8_t rsvd296[3800];
} NvmexIdNsNvm;
NVMEX_CHECK_SIZE(NvmexIdNsNvm, 4096);
NVMEX_CHECK_OFFSET(NvmexIdNsNvm, tlbaag, 292);

/* I/O Command Set Independent Identify Namespace (CNS 08h) */
typedef struct NVMEX_PACKED NvmexIdNsIndep {
    uint8_t nsfeat, nmic, rescap, fpi;
    uint32_t anagrpid;              /*  4 */
    uint8_t nsattr, rsvd9;          /*  8 */
    uint16_t nvmsetid;              /* 10 */
    uint16_t endgid;                /* 12 */
    uint8_t nstat;                  /* 14 */
    uint8_t rsvd15[4081];
} NvmexIdNsIndep;
NVMEX_CHECK_SIZE(NvmexIdNsIndep, 4096);
NVMEX_CHECK_OFFSET(NvmexIdNsIndep, nstat, 14);

/* Namespace Identification Descriptor header (CNS 03h) */
typedef struct NVMEX_PACKED NvmexNsIdDesc {
    uint8_t nidt;                   /* type: 1 EUI64 2 NGUID 3 UUID 4 CSI */
    uint8_t nidl;                   /* length of the identifier */
    uint8_t rsvd2[2];
} NvmexNsIdDesc;
NVMEX_CHECK_SIZE(NvmexNsIdDesc, 4);

/* Error Information log entry (Base 2.0, Figure 205) */
typedef struct NVMEX_PACKED NvmexErrorLogEntry {
    uint64_t error_count;           /*  0 */
    uint16_t sqid;                  /*  8 */
    uint16_t cid;                   /* 10 */
    uint16_t status;                /* 12: status field, phase bit 0 */
    uint16_t param;                 /* 14 */
    uint64_t lba;                   /* 16 */
    uint32_t nsid;                  /* 24 */
    uint8_t vs;                     /* 28 */
    uint8_t rsvd29[35];
} NvmexErrorLogEntry;
NVMEX_CHECK_SIZE(NvmexErrorLogEntry, 64);

/* 128-bit little-endian counters of the SMART log */
typedef struct NVMEX_PACKED NvmexU128 {
    uint64_t lo, hi;
} NvmexU128;

/* SMART / Health Information log (Base 2.0, Figure 207) */
typedef struct NVMEX_PACKED NvmexSmartLog {
    uint8_t critical_warning;       /*   0 */
    uint16_t temperature;           /*   1: composite, kelvin */
    uint8_t avail_spare;            /*   3 */
    uint8_t spare_thresh;           /*   4 */
    uint8_t percent_used;           /*   5 */
    uint8_t egcws;                  /*   6 */
    uint8_t rsvd7[25];
    NvmexU128 data_units_read;      /*  32 */
    NvmexU128 data_units_written;   /*  48 */
    NvmexU128 host_reads;           /*  64 */
    NvmexU128 host_writes;          /*  80 */
    NvmexU128 ctrl_busy_time;       /*  96 */
    NvmexU128 power_cycles;         /* 112 */
    NvmexU128 power_on_hours;       /* 128 */
    NvmexU128 unsafe_shutdowns;     /* 144 */
    NvmexU128 media_errors;         /* 160 */
    NvmexU128 num_err_log_entries;  /* 176 */
    uint32_t wctt, cctt;            /* 192 */
    uint16_t temp_sensor[8];        /* 200 */
    uint8_t rsvd216[296];
} NvmexSmartLog;
NVMEX_CHECK_SIZE(NvmexSmartLog, 512);
NVMEX_CHECK_OFFSET(NvmexSmartLog, temp_sensor, 200);

/* Firmware Slot Information log (Base 2.0, Figure 208) */
typedef struct NVMEX_PACKED NvmexFwSlotLog {
    uint8_t afi;                    /*  0 */
    uint8_t rsvd1[7];
    char frs[7][8];                 /*  8 */
    uint8_t rsvd64[448];
} NvmexFwSlotLog;
NVMEX_CHECK_SIZE(NvmexFwSlotLog, 512);

/* Commands Supported and Effects log (Base 2.0, Figure 210) */
typedef struct NVMEX_PACKED NvmexEffectsLog {
    uint32_t acs[256];              /*    0: admin, by opcode */
    uint32_t iocs[256];             /* 1024: I/O, by opcode */
    uint8_t rsvd2048[2048];
} NvmexEffectsLog;
NVMEX_CHECK_SIZE(NvmexEffectsLog, 4096);
#define NVMEX_EFFECTS_CSUPP (1u << 0)   /* command supported */
#define NVMEX_EFFECTS_LBCC  (1u << 1)   /* logical block content change */
#define NVMEX_EFFECTS_NCC   (1u << 2)   /* namespace capability change */
#define NVMEX_EFFECTS_NIC   (1u << 3)   /* namespace inventory change */
#define NVMEX_EFFECTS_CCC   (1u << 4)   /* controller capability change */

/* Changed Namespace List log: up to 1024 NSIDs */
typedef struct NVMEX_PACKED NvmexChangedNsLog {
    uint32_t nsid[1024];
} NvmexChangedNsLog;
NVMEX_CHECK_SIZE(NvmexChangedNsLog, 4096);

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
