/*
 * nvme-export: an NVMe controller presenting an exported NVM subsystem
 * made from a template (docs/nvme-export.rst)
 *
 * Guest-visible controller state lives in NvmexCtrlState and its plain
 * members (queues, features, logs, events, rate limits), which VMState
 * describes field by field; runtime-only things (timers, request lists,
 * block backends) stay outside it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVME_EXPORT_H
#define HW_NVME_EXPORT_NVME_EXPORT_H

#include "qemu/queue.h"
#include "hw/pci/pci_device.h"
#include "hw/block/block.h"
#include "system/dma.h"
#include "system/block-backend.h"
#include "hw/nvme-export/core/nvmex-identify.h"
#include "hw/nvme-export/core/nvmex-ratelimit.h"
#include "hw/nvme-export/core/nvmex-template.h"

#define TYPE_NVME_EXPORT     "nvme-export"
#define TYPE_NVME_EXPORT_NS  "nvme-export-ns"
#define TYPE_NVME_EXPORT_BUS "nvme-export-bus"

OBJECT_DECLARE_SIMPLE_TYPE(NvmeExport, NVME_EXPORT)
OBJECT_DECLARE_SIMPLE_TYPE(NvmeExportNs, NVME_EXPORT_NS)

#define NVMEX_NQUEUES   (NVMEX_MAX_IOQS + 1)
#define NVMEX_MAX_NSID  1024
#define NVMEX_MAX_AER   4
#define NVMEX_MAX_AEN   8
#define NVMEX_MAX_REQS  4096
#define NVMEX_PAGE_SIZE 4096u

typedef struct NvmexSQ {
    uint64_t dma_addr;
    uint32_t size;
    uint32_t head, tail;
    uint16_t cqid;
    uint8_t valid;
    uint8_t prio;
    uint32_t gen;               /* bumped on delete: drops stale results */
} NvmexSQ;

typedef struct NvmexCQ {
    uint64_t dma_addr;
    uint32_t size;
    uint32_t head, tail;
    uint16_t vector;
    uint8_t phase, ien, valid;
    uint16_t nsq;               /* SQs bound to this CQ */
} NvmexCQ;

typedef struct NvmexFeatures {
    uint32_t arbitration, power_mgmt, error_recovery, irq_coalescing;
    uint32_t write_atomic, async_event_cfg;
    uint16_t temp_over, temp_under;
    uint8_t vwc;
    uint8_t nq_set;             /* Number of Queues has been set */
    uint16_t nsqa, ncqa;        /* allocated I/O queues, 1-based */
    uint32_t irq_cd[NVMEX_NQUEUES];
} NvmexFeatures;

typedef struct NvmexCtrlState {
    uint64_t cap;
    uint32_t cc, csts, aqa, intms;
    uint64_t asq, acq;
    NvmexSQ sq[NVMEX_NQUEUES];
    NvmexCQ cq[NVMEX_NQUEUES];
    NvmexFeatures feat;
    NvmexSmart smart;
    NvmexErrorEntry errlog[NVMEX_ERROR_LOG_ENTRIES];  /* newest first */
    uint64_t error_count;
    uint16_t aer_cid[NVMEX_MAX_AER];
    uint8_t aer_count;
    uint32_t aen[NVMEX_MAX_AEN];                      /* CQE DW0 values */
    uint8_t aen_count;
    uint8_t aen_masked;          /* event types awaiting their log read */
    uint16_t changed_ns_count;
    uint32_t changed_ns[64];
    NvmexRateLimit rate_limit;
} NvmexCtrlState;

typedef struct NvmeExport NvmeExport;

/* One namespace: the short form's built-in one or an nvme-export-ns */
typedef struct NvmexNs {
    NvmeExport *ctrl;
    BlockConf conf;
    uint32_t nsid;
    NvmexNsGeometry geo;
    uint64_t reads, writes, bytes_read, bytes_written, deallocated;
} NvmexNs;

typedef struct NvmexReq {
    NvmeExport *c;
    NvmexNs *ns;
    uint16_t sqid, cid;
    uint32_t sq_gen;
    uint8_t opc;
    bool write, fua;
    uint16_t status;
    uint32_t dw0;
    int pending;
    uint64_t bytes;
    QEMUSGList sg;
    bool sg_live, acct_live;
    BlockAcctCookie acct;
    uint8_t sqe[64];
    QTAILQ_ENTRY(NvmexReq) entry;
} NvmexReq;

/* A completion waiting for room in its CQ, as migrated */
typedef struct NvmexParked {
    uint16_t cqid, sqid, cid, status;
    uint32_t dw0;
} NvmexParked;

typedef struct NvmexBus {
    BusState parent_obj;
} NvmexBus;

struct NvmeExport {
    PCIDevice parent_obj;
    MemoryRegion iomem;
    NvmexBus bus;
    NvmexCtrlState st;

    /* configuration */
    NvmexTemplate tmpl;
    char *template_path;
    char *tmpl_props[32];       /* one per nvmex_template_fields entry */
    NvmexNs ns0;                /* the short form's namespace 1 */
    NvmexNs *ns[NVMEX_MAX_NSID + 1];
    uint16_t nvec;

    /* runtime */
    QEMUBH *sq_bh, *irq_bh;
    QEMUTimer *rl_timer;
    VMChangeStateEntry *vmstate_change;
    NvmexLimiter limiter;
    bool irq_pending[NVMEX_NQUEUES];
    QTAILQ_HEAD(, NvmexReq) cq_wait[NVMEX_NQUEUES];
    QTAILQ_HEAD(, NvmexReq) free_reqs;
    unsigned nreqs, inflight;
    bool starved;               /* fetching waits for a free request */
    uint64_t commands, errors, throttled;
    int64_t throttled_ns;

    /* migration scratch */
    NvmexParked *parked;
    int32_t nparked;
    uint64_t identity_hash;
};

struct NvmeExportNs {
    DeviceState parent_obj;
    NvmexNs ns;
    char *tmpl_props[16];       /* one per nvmex_ns_template_fields entry */
};

/* For the QMP command: every nvme-export controller */
typedef void (*NvmexForeach)(NvmeExport *c, void *opaque);
void nvmex_foreach(NvmexForeach fn, void *opaque);
/* Blocks of @ns whose backing is allocated (TP4165's view) */
uint64_t nvmex_ns_allocated_blocks(NvmexNs *ns);

#endif
