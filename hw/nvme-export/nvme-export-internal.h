/*
 * nvme-export: what the files of the device share (not a public header)
 *
 * The files, one concern each:
 *   nvme-export-ctrl.c       registers, doorbells, CC/CSTS, queues,
 *                            fetching and dispatch; the PCI device
 *   nvme-export-cq.c         requests, completions, interrupts, guest
 *                            errors (below every command file)
 *   nvme-export-dma.c        command data pointers (PRP/SGL) to guest memory
 *   nvme-export-admin.c      admin commands
 *   nvme-export-aen.c        asynchronous events
 *   nvme-export-io.c         NVM command set I/O commands
 *   nvme-export-ns.c         namespaces and the nvme-export-ns device
 *   nvme-export-migration.c  VMState
 *   nvme-export-storage.c    storage migration (storage-migration=on):
 *                            the namespace data in the migration stream
 *   nvme-export-template.c   template file and properties
 *   nvme-export-qmp.c        query-nvme-export / info nvme-export
 *   nvme-export-mgmt.c       the nvme-export-mgmt device: a TP4159
 *                            migration-management controller, its
 *                            Controller Data Queues and commands
 *   nvme-export-esub.c       TP4193 exported subsystems on the
 *                            management controller
 *   nvme-export-lm.c         a managed controller's side of TP4159:
 *                            suspend, resume, its Controller State
 *
 * Guest-visible controller state lives in NvmexCtrlState and its plain
 * members (queues, features, logs, events, rate limits), which VMState
 * describes field by field; runtime-only things (timers, request lists,
 * block backends) stay outside it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_INTERNAL_H
#define HW_NVME_EXPORT_INTERNAL_H

#include "qemu/queue.h"
#include "hw/pci/pci_device.h"
#include "hw/block/block.h"
#include "system/dma.h"
#include "system/block-backend.h"
#include "block/nvme.h"
#include "hw/nvme-export/nvme-export.h"
#include "hw/nvme-export/core/nvmex-cstate.h"
#include "hw/nvme-export/core/nvmex-esub.h"
#include "hw/nvme-export/core/nvmex-identify.h"
#include "hw/nvme-export/core/nvmex-lm.h"
#include "hw/nvme-export/core/nvmex-ratelimit.h"
#include "hw/nvme-export/core/nvmex-spec.h"
#include "hw/nvme-export/core/nvmex-template.h"
#include "migration/iolab/storage.h"
#include "migration/iolab/core/change-log.h"
#include "hw/nvme-export/core/nvmex-cdq.h"

#define NVMEX_NQUEUES   (NVMEX_MAX_IOQS + 1)
#define NVMEX_MAX_NSID  1024
#define NVMEX_MAX_AER   4
#define NVMEX_MAX_AEN   8
#define NVMEX_MAX_REQS  4096
/* Completions that can wait for CQ room: commands plus AER slots */
#define NVMEX_MAX_PARKED (NVMEX_MAX_REQS + NVMEX_MAX_AER)
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

/* One namespace: the short form's built-in one or an nvme-export-ns */
struct NvmexNs {
    NvmeExport *ctrl;
    BlockConf conf;
    uint32_t nsid;
    NvmexNsGeometry geo;
    uint64_t reads, writes, bytes_read, bytes_written, deallocated;
    IolabStorageMig *storage;   /* storage-migration=on */
};

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
    /* LBAs the command may change, reported to storage migration when it
     * completes (mark_nlb 0: none) */
    uint64_t mark_slba, mark_nlb;
    /* A deallocate's ranges, each reported on its own (storage-migration) */
    NvmeDsmRange *mark_ranges;
    uint32_t mark_nr;
    NvmeCmd cmd;                /* the SQE as fetched */
    QTAILQ_ENTRY(NvmexReq) entry;
} NvmexReq;

/* A completion waiting for room in its CQ, as migrated */
typedef struct NvmexParked {
    uint16_t cqid, sqid, cid, status;
    uint32_t dw0;
} NvmexParked;

typedef struct NvmexMgmtCdq NvmexMgmtCdq;

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
    bool storage_migration;     /* the namespaces' data migrates too */
    bool storage_full_copy;     /* x-storage-full-copy: the ablation */
    char *tmpl_props[NVMEX_TMPL_NFIELDS];   /* by NVMEX_TMPL_FIELD_* */
    NvmexNs ns0;                /* the short form's namespace 1 */
    NvmexNs *ns[NVMEX_MAX_NSID + 1];
    uint16_t nvec;

    /* runtime */
    QEMUBH *sq_bh, *irq_bh;
    QEMUBH *cq_bh;              /* posts what the block layer finished */
    QTAILQ_HEAD(, NvmexReq) done;   /* finished, for cq_bh to post */
    QEMUTimer *rl_timer;
    VMChangeStateEntry *vmstate_change;
    NvmexLimiter limiter;
    /* Storage migration's write limit, beside the guest's own (TP4176) */
    NvmexLimiter mig_limiter;
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

    /* TP4159: the management controller this one is managed by (mgmt=) */
    NvmeExportMgmt *mgmt;
    QLIST_ENTRY(NvmeExport) mgmt_entry;
    NvmexLm lm;                 /* its live-migration state */
    NvmexMgmtCdq *udmq;         /* the queue its changes are logged to */
    uint16_t udmq_id;           /* migration scratch: udmq's CDQID or 0 */
};

struct NvmeExportNs {
    DeviceState parent_obj;
    NvmexNs ns;
    char *tmpl_props[NVMEX_NS_NFIELDS];     /* by NVMEX_NS_FIELD_* */
};

/* A User Data Migration Queue of a management controller */
struct NvmexMgmtCdq {
    bool valid;
    uint16_t cdqid;
    NvmeExport *child;          /* whose user-data changes it logs */
    uint16_t child_cntlid;      /* migration scratch: child's CNTLID */
    uint64_t base;              /* guest address of slot 0 */
    NvmexCdq ring;
    /* Logging: one change log per namespace of the child */
    int nlogs;
    uint32_t log_nsid[NVMEX_MAX_NS];
    IolabChangeLog *log[NVMEX_MAX_NS];
};

struct NvmeExportMgmt {
    NvmeExport parent_obj;
    NvmexMgmtCdq cdq[NVMEX_LM_MAX_CDQS];
    QLIST_HEAD(, NvmeExport) children;
    /* Set Controller State sent in parts (SEQIND 1, 0..., 2) */
    uint8_t *set_buf;
    uint32_t set_len;
    uint16_t set_cntlid;
    NvmexEsubTable esubs;       /* TP4193 exported subsystems */
};

/* A command's handler: a status, or NVMEX_ASYNC */
typedef uint16_t (*NvmexCmdHandler)(NvmexReq *r);

/* Not a status: the command went to the block layer and posts itself */
#define NVMEX_ASYNC 0xffff

/* nvme-export-cq.c */
void nvmex_guest_error(NvmeExport *c, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
/* Sets CSTS.CFS: the controller stops until it is reset */
void nvmex_fatal(NvmeExport *c, const char *why);
NvmexReq *nvmex_req_get(NvmeExport *c);
void nvmex_req_put(NvmexReq *r);
/* Complete @r on its CQ, or park it until the CQ has room */
void nvmex_post(NvmexReq *r);
/* The same from a block layer callback: through a guarded bottom half */
void nvmex_post_async(NvmexReq *r);
/* Park every finished request without writing guest memory */
void nvmex_park_done(NvmeExport *c);
/* Schedule submission queue processing */
void nvmex_kick(NvmeExport *c);
/* Wait for the commands in flight and post what can be posted */
void nvmex_quiesce(NvmeExport *c);
/* Wait for every namespace's backend requests to finish */
void nvmex_drain_namespaces(NvmeExport *c);
/* Post the completions parked on @cqid that now fit */
void nvmex_cq_drain_waiters(NvmeExport *c, uint16_t cqid);
/* INTx follows the CQs with entries (nothing to do under MSI-X) */
void nvmex_update_intx(NvmeExport *c);
/* Realize / unrealize: the request lists and the bottom halves */
void nvmex_cq_init(NvmeExport *c);
void nvmex_cq_exit(NvmeExport *c);

/* nvme-export-dma.c */
/* Map the command's data pointer for @len bytes into r->sg */
uint16_t nvmex_map_dptr(NvmexReq *r, uint64_t len);
/* Copy a controller buffer to (@to_host) or from the command's data */
uint16_t nvmex_xfer(NvmexReq *r, void *buf, uint32_t len, bool to_host);

/* nvme-export-aen.c */
/* Queue an event (unless masked or already queued) and deliver it */
void nvmex_aen_raise(NvmeExport *c, uint8_t type, uint8_t info, uint8_t lid);
/* Complete waiting Asynchronous Event Requests with queued events */
void nvmex_aen_deliver(NvmeExport *c);

/* nvme-export-admin.c */
/* A status, or NVMEX_ASYNC when the request is no longer ours */
uint16_t nvmex_admin_cmd(NvmexReq *r);
void nvmex_features_default(NvmeExport *c, NvmexFeatures *f);

/* nvme-export-mgmt.c: the TP4159 commands (nvmex-cmds.h rows) */
uint16_t nvmex_adm_track_send(NvmexReq *r);
uint16_t nvmex_adm_migration_send(NvmexReq *r);
uint16_t nvmex_adm_migration_recv(NvmexReq *r);
uint16_t nvmex_adm_cdq(NvmexReq *r);
uint16_t nvmex_mgmt_set_cdq_feature(NvmexReq *r);
uint16_t nvmex_mgmt_get_cdq_feature(NvmexReq *r);
/* A managed controller joins / leaves its management controller */
bool nvmex_mgmt_attach(NvmeExport *c, Error **errp);
void nvmex_mgmt_detach(NvmeExport *c);
/*
 * A Controller Level Reset of @c (NVMe Base 2.1, Host Managed Live
 * Migration): a management controller deletes its User Data Migration
 * Queues, a managed controller is no longer suspended
 */
void nvmex_mgmt_ctrl_reset(NvmeExport *c);
/* @r of a logged controller completed: log what it may have changed */
void nvmex_mgmt_written(NvmexReq *r);
/* Migration: before saving / after loading the management state */
void nvmex_mgmt_pre_save(NvmeExportMgmt *m);
/* NULL, or the name of the first field out of range */
const char *nvmex_mgmt_post_load(NvmeExportMgmt *m, char *buf, size_t len);
/* After loading @c's TP4159 state: reconnect it to its queue */
const char *nvmex_mgmt_post_load_child(NvmeExport *c);
/* Identify CNS 21h of a management controller */
void nvmex_mgmt_id_underlying(NvmeExport *c, uint16_t from, uint8_t *buf);
/* The managed controller @cntlid of @m, or NULL (no guest error) */
NvmeExport *nvmex_mgmt_find_child(NvmeExportMgmt *m, uint16_t cntlid);

/* nvme-export-esub.c: the TP4193 commands (nvmex-cmds.h rows) */
uint16_t nvmex_adm_esub_recv(NvmexReq *r);
uint16_t nvmex_adm_esub_send(NvmexReq *r);
uint16_t nvmex_adm_exported_ns(NvmexReq *r);
uint16_t nvmex_adm_exported_port(NvmexReq *r);

/* nvme-export-lm.c: a managed controller's side */
/* Its Controller State; the vendor part when @vendor */
void nvmex_lm_capture(NvmeExport *c, bool vendor, NvmexCsImage *img);
/*
 * Check @img against @c's limits and make it @c's queue state; a status
 * (and a message in @why) when it does not fit.
 */
uint16_t nvmex_lm_apply(NvmeExport *c, const NvmexCsImage *img,
                        const char **why);
void nvmex_lm_stop_fetching(NvmeExport *c);
void nvmex_lm_start_fetching(NvmeExport *c);

/* nvme-export-io.c */
uint16_t nvmex_io_cmd(NvmexReq *r);

/* nvme-export-ns.c */
bool nvmex_ns_attach(NvmeExport *c, NvmexNs *ns, char *const *props,
                     Error **errp);
void nvmex_ns_detach(NvmexNs *ns);

/* nvme-export-template.c */
bool nvmex_ctrl_template(NvmeExport *c, Error **errp);

/* nvme-export-migration.c */
extern const VMStateDescription nvmex_vmstate;

/* nvme-export-storage.c */
void nvmex_storage_attach(NvmeExport *c, NvmexNs *ns);
void nvmex_storage_detach(NvmexNs *ns);
/* @r completed (done or failed): report what it may have changed */
void nvmex_storage_mark(NvmexReq *r);

#endif
