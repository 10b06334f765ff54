/*
 * vdpa-mgmt: the management PCI function and its managed instances
 *
 * Shared between the device (hw/vdpa-mgmt/vdpa-mgmt*.c) and its monitor
 * commands (hw/vdpa-mgmt/vdpa-mgmt-qmp.c).  See docs/vdpa-mgmt.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_MGMT_H
#define HW_VDPA_MGMT_VDPA_MGMT_H

#include "exec/memory.h"
#include "net/net.h"
#include "hw/pci/pci_device.h"
#include "qom/object.h"
#include "hw/iolab-virtio/core/virtq.h"
#include "hw/iolab-virtio/iolab-blk.h"
#include "hw/vdpa-mgmt/core/vdpa-cmd.h"
#include "hw/vdpa-mgmt/core/vdpa-iotlb.h"
#include "hw/vdpa-mgmt/core/vdpa-msi.h"
#include "hw/vdpa-mgmt/core/vdpa-table.h"

#define TYPE_VDPA_MGMT "vdpa-mgmt"
OBJECT_DECLARE_SIMPLE_TYPE(VdpaMgmt, VDPA_MGMT)

#define VDPA_MGMT_MAX_QUEUES  16
#define VDPA_MGMT_MAX_QSIZE   1024

typedef struct VdpaInstStats {
    uint64_t kicks;
    uint64_t requests;
    uint64_t bytes_read;        /* by the guest: device to memory */
    uint64_t bytes_written;     /* by the guest: memory to device */
    uint64_t interrupts;
    uint64_t errors;
    uint64_t dma_faults;
    uint64_t suppressed;
} VdpaInstStats;

typedef struct VdpaNetReq VdpaNetReq;

#define VDPA_NO_FAULT_SLOT 0xffff

/* One queue of an instance: engine state and its MSI message */
typedef struct VdpaQueue {
    Virtq vq;
    VdpaMsiMsg msi;
    uint8_t kick_pending;
    /* Waiting for a VPRI page fault (its slot), or VDPA_NO_FAULT_SLOT */
    uint16_t fault_slot;
    /* Migration, destination: held heads loaded, rebuilt in post_load */
    uint16_t mig_nheld;
    /* Net: requests a fault stopped, to be restarted in order */
    VdpaNetReq *held;
} VdpaQueue;

typedef struct VdpaInst {
    struct VdpaMgmt *s;
    uint32_t id;
    uint8_t type;
    uint8_t status;
    bool suspended;
    uint16_t nqueues;
    uint32_t backend;
    uint32_t pasid;             /* VDPA_NO_PASID: the function's space */
    AddressSpace *as;           /* the function's, when no PASID is bound */
    /* blk: the request state machine (hw/iolab-virtio/iolab-blk.h) */
    struct IolabBlk *blk_req;
    uint64_t dev_features;
    uint64_t drv_features;
    uint8_t mac[6];
    uint8_t wce;
    VdpaInstStats stats;
    /* Migration, destination: the held heads of all queues, in order */
    uint16_t *mig_heads;
    VdpaQueue q[];
} VdpaInst;

/* A block backend an instance can select at create time */
typedef struct VdpaBlkBackend {
    char *name;
    BlockBackend *blk;
    uint64_t sectors;
    bool read_only;
} VdpaBlkBackend;

typedef struct VpriHost VpriHost;
typedef struct VdpaInstOps VdpaInstOps;

struct VdpaMgmt {
    PCIDevice parent_obj;

    MemoryRegion bar;
    MemoryRegion regs;
    MemoryRegion doorbell;

    /* The instance types by VDPA_TYPE_* (vdpa-mgmt-internal.h) */
    const VdpaInstOps *inst_types[VDPA_TYPE_BLK + 1];

    /* Properties */
    uint32_t max_instances;
    char *blk_nodes;

    /*
     * VPRI: the vpri-host (link property "host") whose PA-BITMAP checks
     * the DMA of instances.
     * fault_dev is the function's device slot, in its DMA space (IOVA
     * indexed behind a vIOMMU); gpa_fault_dev checks PASID-bound DMA
     * after translation, by guest-physical page: a second slot behind a
     * vIOMMU, fault_dev itself otherwise.  A stalled queue takes one of
     * the fault slots (the host's queue index), shared by both device
     * slots; slot_owner maps it back.
     */
    VpriHost *host;
    uint32_t fault_dev;
    uint32_t gpa_fault_dev;
    uint32_t *slot_owner;       /* VDPA_DB_VALUE(id, queue) + 1, 0 free */
    uint16_t *free_slots;
    uint32_t nfree_slots;
    GQueue *slot_waiters;

    /* One shared netdev; net instances are told apart by MAC */
    NICConf nic_conf;
    NICState *nic;
    GHashTable *macs;           /* MAC (as uint64) -> VdpaInst */
    uint64_t rx_dropped;        /* no instance, no buffer, too small */
    uint64_t rx_fault_dropped;  /* met a VPRI fault, or a queue waiting */

    /*
     * PASID: the offset of the PCIe PASID capability (0: none), and the
     * device-side translation cache of PASID-tagged DMA, filled from
     * the vIOMMU's translate_pasid and emptied by its invalidation
     * notifications (patches/0009).  iotlb_entries is the property;
     * the cache stays empty without a vIOMMU that notifies.
     */
    uint16_t pasid_cap;
    uint32_t iotlb_entries;
    VdpaIotlb iotlb;
    uint64_t pasid_translations;    /* translate_pasid calls */
    uint64_t blk_mapped;            /* blk reads/writes without a bounce */
    /*
     * Bounce memory of all blk instances together (property bounce-cap),
     * on top of each instance's own VDPA_BLK_BOUNCE_CAP
     */
    uint64_t bounce_cap;
    IolabBlkPool bounce_pool;

    VdpaLimits limits;
    VdpaTable table;
    VdpaBlkBackend *blk;
    uint32_t nblk;

    /* Admin queue */
    uint32_t ctrl;
    uint32_t status;
    uint32_t fatal;
    uint32_t aq_size;
    uint32_t aq_vector;
    uint64_t sq_base;
    uint64_t cq_base;
    uint32_t sq_tail;
    uint32_t sq_head;
    uint32_t cq_head;
    uint32_t cq_tail;
    bool cq_phase;
    QEMUBH *admin_bh;

    /* Stopped VM: no queue or admin command runs (vdpa_vm_state_change) */
    VMChangeStateEntry *vm_state;

    /* Kicked (instance, queue) pairs, run from the main loop */
    GArray *kicks;
    QEMUBH *kick_bh;

    VdpaNetReq *spare;
    uint32_t nspare;

    /*
     * Migration (docs/vdpa-mgmt.rst): while one is under way, the ids
     * whose instance changed since it was last sent, and how many; the
     * instance records sent before and in the downtime; the VMState's
     * stream magic.
     */
    unsigned long *mig_changed;
    uint32_t mig_nchanged;
    uint64_t mig_precopy_sent;
    uint64_t mig_downtime_sent;
    uint32_t mig_magic;
    /* Destination: instances loaded, the VMState's post_load not run yet */
    bool mig_unfinished;

    /* Function-wide counters */
    uint64_t admin_cmds;
    uint64_t admin_errors;
    uint64_t bad_doorbells;
    uint64_t created;
    uint64_t destroyed;
};

const char *vdpa_inst_state(const VdpaInst *inst);
/*
 * Requests of queue @qi popped and waiting to be restarted: stopped by a
 * fault, or (blk) waiting for bounce memory
 */
uint32_t vdpa_queue_held(VdpaInst *inst, uint16_t qi);

#endif
