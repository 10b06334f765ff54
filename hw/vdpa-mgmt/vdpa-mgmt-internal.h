/*
 * vdpa-mgmt: what the files of the device share (not a public interface;
 * the monitor commands use include/hw/vdpa-mgmt/vdpa-mgmt.h)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_INTERNAL_H
#define HW_VDPA_MGMT_INTERNAL_H

#include "qemu/iov.h"
#include "qemu/units.h"
#include "qemu/bitops.h"
#include "qemu/atomic.h"
#include "migration/vmstate.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "hw/iolab-virtio/iolab-blk.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_net.h"

#define VDPA_BLK_SECTOR     IOLAB_BLK_SECTOR_SIZE
#define VDPA_BLK_SEG_MAX    126
#define VDPA_BLK_MAX_DATA   (4 * MiB)
/*
 * Per blk instance (hw/iolab-virtio/iolab-blk.h): bounce memory at once,
 * two of the largest requests, and spare requests kept; a function has
 * up to 65,536 instances.
 */
#define VDPA_BLK_BOUNCE_CAP (2 * VDPA_BLK_MAX_DATA)
/* The smallest bounce-cap of a function: one page */
#define VDPA_BOUNCE_CAP_MIN 4096
#define VDPA_BLK_SPARE_REQS 4
#define VDPA_NET_SPARE_REQS     64
/* PCIe PASID capability: where, and the PASID width it announces */
#define VDPA_MGMT_PASID_CAP_OFF 0x100
#define VDPA_MGMT_PASID_BITS    20
/* Ways of the translation cache's sets */
#define VDPA_IOTLB_WAYS     4
/* DMA addresses the function generates: x86-64's 48-bit IOVA space */
#define VDPA_DMA_BITS       48
/*
 * Faults a function has out at once: the fault queues it attaches to
 * its vpri-host with, as many as the host takes per device (64).  More
 * stalled queues wait for a slot (slot_waiters).
 */
#define VDPA_FAULT_SLOTS    64
/* fault_slot of a queue stalled and waiting for a free slot */
#define VDPA_WAIT_SLOT      0xfffe

typedef struct VdpaSlotWaiter {
    uint32_t owner;             /* VDPA_DB_VALUE(id, queue) + 1 */
    uint64_t addr;
    bool write;
} VdpaSlotWaiter;

/*
 * A popped chain of a net instance (blk instances run their requests in
 * the shared IolabBlk, see vdpa-mgmt-blk.c).
 */
struct VdpaNetReq {
    VdpaInst *inst;
    VdpaNetReq *next_held;
    uint16_t queue;
    bool tx_sent;               /* net TX: frame sent, only the push left */
    VdpaNetReq *next_spare;
    VirtqElem elem;             /* last: 16 KiB */
};

typedef enum VdpaPop {
    VDPA_POP_OK,        /* @req holds the next chain */
    VDPA_POP_AGAIN,     /* nothing popped, but the ring has more: pop again */
    VDPA_POP_STOP,      /* empty, faulted or broken: the queue stops here */
} VdpaPop;

/* What precedes every frame with VERSION_1 */
#define VDPA_NET_HDR        sizeof(struct virtio_net_hdr_v1)
QEMU_BUILD_BUG_ON(VDPA_NET_HDR != 12);
/* The config space up to mtu: what the features offered make valid */
#define VDPA_NET_CFG_SIZE   offsetof(struct virtio_net_config, speed)
QEMU_BUILD_BUG_ON(VDPA_NET_CFG_SIZE != 12);
/* get_config fills a VDPA_CFG_MAX buffer with these */
QEMU_BUILD_BUG_ON(sizeof(struct virtio_net_config) > VDPA_CFG_MAX);
QEMU_BUILD_BUG_ON(sizeof(struct virtio_blk_config) > VDPA_CFG_MAX);
#define VDPA_NET_MAX_FRAME  65536

/*
 * An instance type, as vdpa_sim's vdpasim_dev_attr: what differs between
 * block and net instances.  vdpa-mgmt.c puts them in s->inst_types[],
 * indexed by VDPA_TYPE_*, at realize: the instance layer (-inst.c)
 * reaches the types only through them, never by name, so that the types
 * (-blk.c, -net.c) sit above it and call down into it.
 */
typedef struct VdpaInstOps {
    /* Run queue @qi: kicked, resumed, or its fault was resolved */
    void (*run_queue)(VdpaInst *inst, uint16_t qi);
    /* Fill the device config space (VDPA_CFG_MAX bytes, zeroed) */
    void (*get_config)(VdpaInst *inst, uint8_t *cfg);
    /* Optional.  Wait for the backend and post every completion now */
    void (*quiesce)(VdpaInst *inst);
    /* Optional.  Reset: wait for the backend, drop every request */
    void (*drop)(VdpaInst *inst);
    /* Optional.  Destroy: the same, and free what the type allocated */
    void (*free)(VdpaInst *inst);
    /* Optional.  Requests of queue @qi the type holds (fault, memory) */
    uint32_t (*held)(VdpaInst *inst, uint16_t qi);
} VdpaInstOps;

extern const VdpaInstOps vdpa_blk_ops;
extern const VdpaInstOps vdpa_net_ops;

static inline const VdpaInstOps *vdpa_inst_ops(VdpaInst *inst)
{
    return inst->s->inst_types[inst->type];
}

/* Function-level DMA attributes: the function's requester id */
static inline MemTxAttrs vdpa_attrs(VdpaMgmt *s)
{
    return (MemTxAttrs) { .requester_id = pci_requester_id(PCI_DEVICE(s)) };
}

/*
 * Instance @id changed: send it again if a migration is under way
 * (vdpa-mgmt-migration.c reads s->mig_changed).  Inline: every layer
 * marks, and none of them calls up into the migration file for it.
 */
static inline void vdpa_mig_mark(VdpaMgmt *s, uint32_t id)
{
    if (s->mig_changed && id && id <= s->table.max &&
        !test_and_set_bit(id, s->mig_changed)) {
        qatomic_inc(&s->mig_nchanged);
    }
}

/* vdpa-mgmt-admin.c */
VdpaStatus vdpa_execute(VdpaMgmt *s, const VdpaCmd *cmd, uint64_t *result);

/* vdpa-mgmt-inst.c */
void vdpa_send_msi(VdpaInst *inst, const VdpaMsiMsg *m);
void vdpa_queue_interrupt(VdpaInst *inst, uint16_t qi);
void G_GNUC_PRINTF(2, 3)
                   vdpa_inst_error(VdpaInst *inst, const char *fmt, ...);
bool vdpa_inst_runnable(VdpaInst *inst);
VdpaNetReq *vdpa_net_req_get(VdpaMgmt *s, VdpaInst *inst, uint16_t qi);
void vdpa_net_req_put(VdpaMgmt *s, VdpaNetReq *req);
VdpaPop vdpa_net_queue_pop(VdpaInst *inst, uint16_t qi, VdpaNetReq *req);
void vdpa_inst_run(VdpaInst *inst, uint16_t qi);
void vdpa_kick_bh(void *opaque);
void vdpa_queue_kick(VdpaMgmt *s, VdpaInst *inst, uint16_t qi);
extern const MemoryRegionOps vdpa_doorbell_ops;
void vdpa_inst_quiesce(VdpaInst *inst);
void vdpa_inst_reset(VdpaInst *inst);
void vdpa_inst_free(VdpaMgmt *s, VdpaInst *inst);
void vdpa_stats_save(const VdpaInstStats *st, uint8_t *out);
void vdpa_stats_load(VdpaInstStats *st, const uint8_t *in);
void vdpa_destroy_all(VdpaMgmt *s);
uint64_t vdpa_mac_key(const uint8_t *mac);
/* Fault slots of stalled queues, and requests held on them */
void vdpa_queue_fault(VdpaInst *inst, uint16_t qi, uint64_t addr,
                      bool write);
bool vdpa_queue_blocked(VdpaInst *inst, uint16_t qi);
void vdpa_net_req_hold(VdpaNetReq *req, uint64_t addr, bool write);
void vdpa_fault_done(void *opaque, uint16_t slot, bool resolved);
void vdpa_queue_cancel_wait(VdpaInst *inst, uint16_t qi);

/*
 * vdpa-mgmt-host.c (with VPRI) or vdpa-mgmt-host-none.c (without): all
 * that calls vpri-host.  Without VPRI the function has no "host"
 * property, s->host is NULL, and the functions but the first are never
 * called: every caller checks s->host.
 */
/* The function's properties but its vpri-host link ("host") */
#define VDPA_MGMT_PROPERTIES \
    DEFINE_PROP_UINT32("max-instances", VdpaMgmt, max_instances, 65536), \
    DEFINE_PROP_STRING("blk-nodes", VdpaMgmt, blk_nodes), \
    DEFINE_NIC_PROPERTIES(VdpaMgmt, nic_conf), \
    DEFINE_PROP_UINT32("iotlb-entries", VdpaMgmt, iotlb_entries, 4096), \
    DEFINE_PROP_SIZE("bounce-cap", VdpaMgmt, bounce_cap, 64 * MiB)
/*
 * Sets the device's properties: VDPA_MGMT_PROPERTIES, and "host"; with
 * VPRI also what vpri-host asks its clients (VpriHostClientClass)
 */
void vdpa_host_class_init(DeviceClass *dc);
/* The QOM interface of vpri-host's clients, or NULL without VPRI */
const char *vdpa_host_interface(void);
/* Realize, before anything is set up: can s->host take the function? */
bool vdpa_host_check(VdpaMgmt *s, Error **errp);
/*
 * Attach to s->host: fault_dev, and gpa_fault_dev for PASID DMA; the host
 * answers faults with @fault_done (vdpa_fault_done)
 */
void vdpa_host_attach(VdpaMgmt *s,
                      void (*fault_done)(void *opaque, uint16_t slot,
                                         bool resolved));
void vdpa_host_detach(VdpaMgmt *s);
/*
 * DMA of slot @dev (fault_dev or gpa_fault_dev) in @as, checked against
 * the host's PA-BITMAP and copied in its fence; @buf NULL only checks.
 * Returns 0, VIRTQ_FAULT (*@fault_addr: the page not present) or
 * VIRTQ_ERROR.
 */
int vdpa_host_dma(VdpaMgmt *s, uint32_t dev, AddressSpace *as,
                  uint64_t addr, void *buf, uint64_t len, bool write,
                  uint64_t *fault_addr);
/* Ask the host for the page at @addr; it answers vdpa_fault_done(@slot) */
void vdpa_host_raise_fault(VdpaMgmt *s, uint32_t dev, uint16_t slot,
                           uint64_t addr, bool write);

/* vdpa-mgmt-dma.c */
bool vdpa_fn_dma(VdpaMgmt *s, uint64_t addr, void *buf, uint32_t len,
                 bool write);
bool vdpa_pasid_enabled(VdpaMgmt *s);
int vdpa_pasid_rw(VdpaInst *inst, uint64_t addr, void *buf,
                  uint64_t len, bool write, uint64_t *fault_addr);
void vdpa_pasid_invalidate(void *opaque, uint32_t pasid, hwaddr first,
                           hwaddr last);
extern const VirtqDmaOps vdpa_dma_ops;
/* The same without the PA-BITMAP check, for post_load (see there) */
extern const VirtqDmaOps vdpa_load_dma_ops;

/* vdpa-mgmt-blk.c */
VdpaBlkBackend *vdpa_inst_blk(VdpaInst *inst);
/* The instance's request state machine, created on first use */
IolabBlk *vdpa_blk_state(VdpaInst *inst);
uint64_t vdpa_blk_features(VdpaMgmt *s, uint32_t backend,
                           uint16_t nqueues);
void vdpa_free_backends(VdpaMgmt *s);
bool vdpa_open_backends(VdpaMgmt *s, Error **errp);

/* vdpa-mgmt-net.c */
extern NetClientInfo vdpa_net_info;

/* vdpa-mgmt-migration.c */
extern const VMStateDescription vmstate_vdpa_mgmt;
#define VDPA_MIG_SECTION "vdpa-mgmt-instances"
void vdpa_mig_register(VdpaMgmt *s);
void vdpa_mig_unregister(VdpaMgmt *s);
void vdpa_mig_drop_unfinished(VdpaMgmt *s);

#endif
