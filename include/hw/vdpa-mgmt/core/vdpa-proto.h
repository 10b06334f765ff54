/*
 * vdpa-mgmt: guest-visible interface of the management function
 *
 * Register offsets, admin queue entry layouts, opcodes, status codes and
 * result layouts, as documented in docs/vdpa-mgmt.rst.  Plain C (stdint
 * only): the device, the QEMU-free cores, the unit tests and the qtests
 * all include it, so there is one definition of the wire format.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_PROTO_H
#define HW_VDPA_MGMT_VDPA_PROTO_H

#include <stdint.h>

/* PCI identity: Red Hat's QEMU range; class "other system peripheral" */
#define VDPA_MGMT_PCI_VENDOR_ID 0x1b36
#define VDPA_MGMT_PCI_DEVICE_ID 0x0120
#define VDPA_MGMT_PCI_REVISION  1

/* BAR 0: registers (page 0) and the shared doorbell area (page 1) */
#define VDPA_MGMT_REG_BAR       0
#define VDPA_MGMT_MSIX_BAR      2
#define VDPA_MGMT_BAR_SIZE      0x2000
#define VDPA_MGMT_DOORBELL_OFF  0x1000
#define VDPA_MGMT_DOORBELL_SIZE 0x1000

#define VDPA_MGMT_MAGIC         0x4d504456u   /* "VDPM" little-endian */
#define VDPA_MGMT_VERSION       1

/* Registers, all 32-bit unless noted, little-endian */
enum {
    VDPA_REG_MAGIC       = 0x00,   /* R  */
    VDPA_REG_VERSION     = 0x04,   /* R  */
    VDPA_REG_MAX_INST    = 0x08,   /* R  */
    VDPA_REG_NUM_INST    = 0x0c,   /* R  live instances */
    VDPA_REG_CTRL        = 0x10,   /* RW bit 0 ENABLE */
    VDPA_REG_STATUS      = 0x14,   /* R  bit 0 READY, bit 1 FATAL */
    VDPA_REG_AQ_SIZE     = 0x18,   /* RW entries per ring, power of 2 */
    VDPA_REG_AQ_VECTOR   = 0x1c,   /* RW MSI-X vector, 0xffff = none */
    VDPA_REG_AQ_SQ_LO    = 0x20,   /* RW submission ring base */
    VDPA_REG_AQ_SQ_HI    = 0x24,
    VDPA_REG_AQ_CQ_LO    = 0x28,   /* RW completion ring base */
    VDPA_REG_AQ_CQ_HI    = 0x2c,
    VDPA_REG_AQ_SQ_TAIL  = 0x30,   /* W  doorbell: driver's tail */
    VDPA_REG_AQ_SQ_HEAD  = 0x34,   /* R  device's head */
    VDPA_REG_AQ_CQ_HEAD  = 0x38,   /* W  driver consumed up to here */
    VDPA_REG_AQ_CQ_TAIL  = 0x3c,   /* R  device's tail */
    VDPA_REG_FATAL_CODE  = 0x40,   /* R  why FATAL was set */
};

#define VDPA_CTRL_ENABLE        1u
#define VDPA_STATUS_READY       1u
#define VDPA_STATUS_FATAL       2u
#define VDPA_AQ_MIN_SIZE        2
#define VDPA_AQ_MAX_SIZE        4096
#define VDPA_AQ_NO_VECTOR       0xffff

/* FATAL codes: the admin queue itself is unusable */
enum {
    VDPA_FATAL_NONE = 0,
    VDPA_FATAL_BAD_RING = 1,       /* size/alignment of the rings */
    VDPA_FATAL_DMA = 2,            /* a ring access failed */
};

/*
 * Shared doorbell: a 32-bit write anywhere in the doorbell page kicks
 * queue (value >> 20) of instance (value & 0xfffff).
 */
#define VDPA_DB_INST_MASK       0xfffffu
#define VDPA_DB_QUEUE_SHIFT     20
#define VDPA_DB_VALUE(inst, q)  (((uint32_t)(q) << VDPA_DB_QUEUE_SHIFT) | \
                                 ((uint32_t)(inst) & VDPA_DB_INST_MASK))

/* Submission entry, 64 bytes; framing follows struct virtio_admin_cmd */
#define VDPA_SQE_SIZE           64
enum {
    VDPA_SQE_OPCODE      = 0,      /* le16 */
    VDPA_SQE_GROUP_TYPE  = 2,      /* le16, VDPA_GROUP_TYPE_MANAGED */
    VDPA_SQE_CID         = 4,      /* le16, echoed in the completion */
    VDPA_SQE_RSVD0       = 6,      /* le16, 0 */
    VDPA_SQE_MEMBER      = 8,      /* le64, instance id */
    VDPA_SQE_BUF_ADDR    = 16,     /* le64, data in / result out */
    VDPA_SQE_BUF_LEN     = 24,     /* le32 */
    VDPA_SQE_RSVD1       = 28,     /* le32, 0 */
    VDPA_SQE_ARGS        = 32,     /* 32 bytes, command specific */
};
#define VDPA_SQE_ARGS_SIZE      32

/* Completion entry, 16 bytes */
#define VDPA_CQE_SIZE           16
enum {
    VDPA_CQE_CID         = 0,      /* le16 */
    VDPA_CQE_STATUS      = 2,      /* le16 */
    VDPA_CQE_QUALIFIER   = 4,      /* le16 */
    VDPA_CQE_FLAGS       = 6,      /* le16, bit 0 phase */
    VDPA_CQE_RESULT      = 8,      /* le64, command specific */
};
#define VDPA_CQE_PHASE          1u

/* Our group type, in the range the virtio spec leaves unassigned */
#define VDPA_GROUP_TYPE_MANAGED 0x8001

enum {
    VDPA_OP_DISCOVER      = 0x1000,
    VDPA_OP_CREATE        = 0x1001,
    VDPA_OP_DESTROY       = 0x1002,
    VDPA_OP_QUERY         = 0x1003,
    VDPA_OP_LIST          = 0x1004,
    VDPA_OP_CONFIG_READ   = 0x1005,
    VDPA_OP_CONFIG_WRITE  = 0x1006,
    VDPA_OP_QUEUE_SETUP   = 0x1007,
    VDPA_OP_SET_STATUS    = 0x1008,
    VDPA_OP_BIND_PASID    = 0x1009,
    VDPA_OP_SET_QUEUE_MSI = 0x100a,
    VDPA_OP_SUSPEND       = 0x100b,
    VDPA_OP_RESUME        = 0x100c,
    VDPA_OP_STATS         = 0x100d,
    VDPA_OP_FIRST = VDPA_OP_DISCOVER,
    VDPA_OP_LAST = VDPA_OP_STATS,
};

/* Status: the virtio admin command status values (errno numbers) */
enum {
    VDPA_S_OK     = 0,
    VDPA_S_ENXIO  = 6,
    VDPA_S_EAGAIN = 11,
    VDPA_S_ENOMEM = 12,
    VDPA_S_EBUSY  = 16,
    VDPA_S_EINVAL = 22,
    VDPA_S_ENOSPC = 28,
};

/* Qualifiers: 0-7 as in virtio; ours from 0x8000 */
enum {
    VDPA_Q_OK              = 0,
    VDPA_Q_INVALID_COMMAND = 1,
    VDPA_Q_INVALID_OPCODE  = 2,
    VDPA_Q_INVALID_FIELD   = 3,
    VDPA_Q_INVALID_GROUP   = 4,
    VDPA_Q_INVALID_MEMBER  = 5,
    VDPA_Q_NORESOURCE      = 6,
    VDPA_Q_TRYAGAIN        = 7,
    VDPA_Q_RING_RANGE      = 0x8000,  /* ring outside the DMA space */
    VDPA_Q_PASID_UNSUPP    = 0x8001,  /* no PASID-capable vIOMMU */
    VDPA_Q_PASID_UNBOUND   = 0x8002,  /* unbind with nothing bound */
    VDPA_Q_BAD_STATE       = 0x8003,  /* not allowed in this state */
    VDPA_Q_BAD_BACKEND     = 0x8004,  /* backend selector */
    VDPA_Q_BUF_RANGE       = 0x8005,  /* buf_addr/buf_len unusable */
    VDPA_Q_BAD_QUEUE       = 0x8006,  /* queue index */
    VDPA_Q_PASID_DISABLED  = 0x8007,  /* PCIe PASID capability not enabled */
};

/* Instance types: virtio device ids */
#define VDPA_TYPE_NET 1
#define VDPA_TYPE_BLK 2

/* Instance status byte: virtio device status bits */
#define VDPA_ST_ACKNOWLEDGE 1
#define VDPA_ST_DRIVER      2
#define VDPA_ST_DRIVER_OK   4
#define VDPA_ST_FEATURES_OK 8
#define VDPA_ST_NEEDS_RESET 0x40
#define VDPA_ST_FAILED      0x80

#define VDPA_NO_PASID       0xffffffffu
#define VDPA_MAX_PASID      0xfffffu       /* 20 bits */

/* DISCOVER result (buffer), 64 bytes */
#define VDPA_DISCOVER_SIZE  64
enum {
    VDPA_DISC_MAX_INST    = 0,     /* le32 */
    VDPA_DISC_NUM_INST    = 4,     /* le32 */
    VDPA_DISC_MAX_QUEUES  = 8,     /* le16 per instance */
    VDPA_DISC_MAX_QSIZE   = 10,    /* le16 */
    VDPA_DISC_TYPES       = 12,    /* le32 bitmap: 1 << type */
    VDPA_DISC_NET_FEAT    = 16,    /* le64 */
    VDPA_DISC_BLK_FEAT    = 24,    /* le64 */
    VDPA_DISC_NUM_BLK     = 32,    /* le32 block backends */
    VDPA_DISC_NUM_NET     = 36,    /* le32 net backends */
    VDPA_DISC_PASID_BITS  = 40,    /* u8, 0 = no PASID */
    VDPA_DISC_DMA_BITS    = 41,    /* u8 */
    VDPA_DISC_CFG_SIZE    = 42,    /* le16 largest config space */
    VDPA_DISC_OPS_LO      = 44,    /* le16 first opcode */
    VDPA_DISC_OPS_HI      = 46,    /* le16 last opcode */
};

/* CREATE args */
enum {
    VDPA_CREATE_TYPE     = 0,      /* u8 */
    VDPA_CREATE_RSVD     = 1,      /* u8 */
    VDPA_CREATE_NQUEUES  = 2,      /* le16 */
    VDPA_CREATE_BACKEND  = 4,      /* le32 backend selector */
    VDPA_CREATE_FEATURES = 8,      /* le64 device features offered */
    VDPA_CREATE_MAC      = 16,     /* 6 bytes (net) */
};

/* QUEUE_SETUP args */
enum {
    VDPA_QS_INDEX  = 0,            /* le16 */
    VDPA_QS_SIZE   = 2,            /* le16 */
    VDPA_QS_ENABLE = 4,            /* le16: 0 or 1 */
    VDPA_QS_RSVD   = 6,            /* le16 */
    VDPA_QS_DESC   = 8,            /* le64 */
    VDPA_QS_DRIVER = 16,           /* le64 */
    VDPA_QS_DEVICE = 24,           /* le64 */
};

/* SET_STATUS args */
enum {
    VDPA_SS_STATUS   = 0,          /* u8; 0 resets the instance */
    VDPA_SS_FEATURES = 8,          /* le64 driver features */
};

/* BIND_PASID args */
#define VDPA_BP_PASID 0            /* le32, VDPA_NO_PASID unbinds */

/* SET_QUEUE_MSI args */
enum {
    VDPA_MSI_QUEUE = 0,            /* le16 */
    VDPA_MSI_FLAGS = 2,            /* le16: bit 0 masked */
    VDPA_MSI_DATA  = 4,            /* le32 */
    VDPA_MSI_ADDR  = 8,            /* le64 */
};
#define VDPA_MSI_F_MASKED 1u

/* CONFIG_READ / CONFIG_WRITE args */
enum {
    VDPA_CFG_OFFSET = 0,           /* le32 */
    VDPA_CFG_LENGTH = 4,           /* le32 */
};

/* LIST args: ids greater or equal to start, written as le32 to the buffer */
#define VDPA_LIST_START 0          /* le32 */

/* QUERY result (buffer), 64 bytes */
#define VDPA_QUERY_SIZE 64
enum {
    VDPA_QR_ID        = 0,         /* le32 */
    VDPA_QR_TYPE      = 4,         /* u8 */
    VDPA_QR_STATUS    = 5,         /* u8 */
    VDPA_QR_NQUEUES   = 6,         /* le16 */
    VDPA_QR_PASID     = 8,         /* le32 */
    VDPA_QR_BACKEND   = 12,        /* le32 */
    VDPA_QR_DEV_FEAT  = 16,        /* le64 */
    VDPA_QR_DRV_FEAT  = 24,        /* le64 */
    VDPA_QR_FLAGS     = 32,        /* le32 bit 0 suspended */
    VDPA_QR_QENABLED  = 36,        /* le32 bitmap, first 32 queues */
};
#define VDPA_QR_F_SUSPENDED 1u

/* STATS result (buffer), 64 bytes, all le64 */
#define VDPA_STATS_SIZE 64
enum {
    VDPA_SR_KICKS      = 0,
    VDPA_SR_REQUESTS   = 8,
    VDPA_SR_BYTES_RD   = 16,
    VDPA_SR_BYTES_WR   = 24,
    VDPA_SR_INTERRUPTS = 32,
    VDPA_SR_ERRORS     = 40,
    VDPA_SR_DMA_FAULTS = 48,
    VDPA_SR_SUPPRESSED = 56,       /* interrupts held by a mask */
};

#endif
