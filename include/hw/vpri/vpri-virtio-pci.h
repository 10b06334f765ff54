/*
 * VPRI modern virtio-pci transport
 *
 * vpri-blk and vpri-nic carry their own virtio 1.x PCI transport on top of
 * the shared fault-aware virtqueue engine (hw/iolab-virtio/core/virtq.c), so that every
 * descriptor, ring and buffer access goes through one DMA path that checks
 * the PA-BITMAP.  QEMU's VirtIODevice would put a second data path beside
 * ours.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_VIRTIO_PCI_H
#define HW_VPRI_VIRTIO_PCI_H

#include "exec/memory.h"
#include "qemu/rcu.h"
#include "hw/pci/pci_device.h"
#include "hw/iolab-virtio/core/virtq.h"
#include "qom/object.h"
#include "system/runstate.h"
#include "migration/vmstate.h"

#define TYPE_VPRI_VIRTIO_PCI "vpri-virtio-pci"
OBJECT_DECLARE_TYPE(VpriVirtioPCI, VpriVirtioPCIClass, VPRI_VIRTIO_PCI)

typedef struct VpriHost VpriHost;

/* Layout of the modern BAR (BAR 4); one page per structure. */
#define VPRI_VPCI_COMMON_OFFSET  0x0000
#define VPRI_VPCI_ISR_OFFSET     0x1000
#define VPRI_VPCI_DEVICE_OFFSET  0x2000
#define VPRI_VPCI_NOTIFY_OFFSET  0x3000
#define VPRI_VPCI_REGION_SIZE    0x1000
#define VPRI_VPCI_BAR_SIZE       0x4000
#define VPRI_VPCI_MODERN_BAR     4
#define VPRI_VPCI_MSIX_BAR       1
/* Each queue notifies at its own 4-byte slot: queue_notify_off = index. */
#define VPRI_VPCI_NOTIFY_MULT    4

#define VPRI_VPCI_MAX_QUEUES     64
#define VPRI_VPCI_QUEUE_MAX_SIZE 1024

typedef struct VpriQueue VpriQueue;

/*
 * The opaque of every engine call on a queue: its DMA goes through the
 * queue's ring caches when it targets the rings.
 */
typedef struct VpriDmaCtx {
    struct VpriVirtioPCI *vp;
    VpriQueue *q;
} VpriDmaCtx;

/* A mapping of one ring area (descriptor table, driver or device area). */
typedef struct VpriRingCache {
    MemoryRegionCache mrc;
    uint64_t base;
    uint64_t len;
    bool valid;
} VpriRingCache;

enum { VPRI_RING_DESC, VPRI_RING_DRIVER, VPRI_RING_DEVICE, VPRI_NR_RINGS };

/*
 * The three mappings of a queue, replaced as a whole.  Readers find them
 * under rcu_read_lock(); a memory map change unpublishes them and frees
 * them through call_rcu(), as upstream's VRingMemoryRegionCaches.
 */
typedef struct VpriRingCaches {
    struct rcu_head rcu;
    VpriRingCache ring[VPRI_NR_RINGS];
} VpriRingCaches;

struct VpriQueue {
    Virtq vq;
    VpriDmaCtx dma;
    /* NULL until first used; rebuilt after a memory map change. */
    VpriRingCaches *caches;
    uint16_t max_size;          /* offered to the driver */
    uint16_t size;              /* chosen by the driver */
    uint16_t msix_vector;
    uint64_t desc, driver, device;
    bool enabled;
    /* A DMA of this queue hit a non-present page; nothing runs until resolved. */
    bool blocked;
    uint64_t fault_addr;
    bool fault_write;
    /* The host could not resolve it: the held request gets an error. */
    bool fault_failed;
    uint64_t stall_start_ns;
};

struct VpriVirtioPCI {
    PCIDevice parent_obj;

    MemoryRegion bar;
    MemoryRegion common;
    MemoryRegion isr;
    MemoryRegion device;
    MemoryRegion notify;

    uint64_t host_features;
    uint64_t guest_features;
    uint32_t dfselect;
    uint32_t gfselect;
    uint16_t config_vector;
    uint16_t queue_sel;
    uint8_t status;
    uint8_t config_generation;
    uint8_t isr_status;

    uint16_t num_queues;
    VpriQueue *queues;
    VirtqDmaOps dma_ops;
    MemoryListener listener;    /* drops ring caches on map changes */

    /* The host service (link property), or NULL: every page is present. */
    VpriHost *host;
    uint32_t fault_device_id;
    QEMUBH *resume_bh;
    /* Kicked queues, run from the main loop rather than the vCPU. */
    uint64_t kick_pending;
    QEMUBH *kick_bh;
    /* Queues whose fault was answered, run again by resume_bh. */
    uint64_t resume_pending;
    /*
     * The VM is stopped: no queue runs, kicks and resumes wait in their
     * pending masks.  On the source of a migration this keeps the device
     * from touching guest memory or the backend after the final drain.
     */
    bool vm_stopped;
    VMChangeStateEntry *vm_state_entry;
    /*
     * Popped chains in flight, serialized for a migration: filled by the
     * subclass's pre_save, sent in the transport's section, and on the
     * destination handed to the subclass's restart hook, then freed.
     */
    uint8_t *inflight;
    uint32_t inflight_len;
};

struct VpriVirtioPCIClass {
    PCIDeviceClass parent_class;

    uint16_t virtio_device_id;  /* 2 for blk, 1 for net */
    uint16_t pci_class;
    uint32_t config_size;

    /* Features offered (device-specific bits and the ring features). */
    uint64_t (*get_features)(VpriVirtioPCI *vp);
    /* Device config space access. */
    void (*get_config)(VpriVirtioPCI *vp, uint8_t *config);
    void (*set_config)(VpriVirtioPCI *vp, const uint8_t *config);
    /* Driver kicked queue @index, or a blocked queue was resumed. */
    void (*queue_notify)(VpriVirtioPCI *vp, uint16_t index);
    /* Driver set DRIVER_OK. */
    void (*driver_ok)(VpriVirtioPCI *vp);
    /* Device reset: drop device-specific in-flight state. */
    void (*reset)(VpriVirtioPCI *vp);
    /*
     * When a fault is answered, run only the queue that took it rather than
     * every queue: for a device whose idle queues would otherwise read
     * their (possibly evicted) rings and fault for nothing.
     */
    bool resume_faulted_only;
    /*
     * The VM starts running (after a stop, or on the destination of a
     * migration): put back what was in flight on the source (the chains
     * in vp->inflight, freed afterwards), and pick up what waited while
     * the VM was stopped.  Runs before the queues are kicked; guest
     * memory is readable and the backend is active.
     */
    void (*restart)(VpriVirtioPCI *vp);
};

/*
 * The transport's migration state (PCI config, MSI-X, features, status,
 * every queue's ring state).  A subclass puts it first in its own
 * VMStateDescription with VMSTATE_STRUCT(parent_obj, ..., 1,
 * vmstate_vpri_virtio_pci, VpriVirtioPCI), then adds what is in flight.
 */
extern const VMStateDescription vmstate_vpri_virtio_pci;

/*
 * In a subclass's restart hook, before it restarts them: on a postcopy
 * destination, ask the host now for the pages of the chains carried over
 * (vpri_host_prefetch()); nothing otherwise.
 */
void vpri_virtio_pci_prefetch_inflight(VpriVirtioPCI *vp);

/*
 * In a subclass's pre_save: add the popped chain @e of queue @queue to
 * what the migration sends as in flight.
 */
void vpri_virtio_pci_save_elem(VpriVirtioPCI *vp, uint16_t queue,
                               const VirtqElem *e);
/*
 * Read the migrated chain at *@off of vp->inflight (advancing *@off past
 * it) into @e, or only check it when @e is NULL.  The queue, head and
 * segment count are checked against @vp's queues: false for a malformed
 * entry.  Loop while *@off < vp->inflight_len.
 */
bool vpri_virtio_pci_load_elem(VpriVirtioPCI *vp, uint32_t *off,
                               uint16_t *queue, VirtqElem *e);
/*
 * The same check, with a reason: NULL for a well-formed chain (on an
 * enabled queue, head in range, segments that add up to in_len and
 * out_len, device-readable before device-writable), else what is wrong.
 */
const char *vpri_virtio_pci_check_elem(VpriVirtioPCI *vp, uint32_t *off,
                                       uint16_t *queue);

/*
 * Called by subclasses in realize before anything else.  @num_queues
 * queues, each offering @queue_size entries.
 */
bool vpri_virtio_pci_realize(VpriVirtioPCI *vp, uint16_t num_queues,
                             uint16_t queue_size, Error **errp);
void vpri_virtio_pci_unrealize(VpriVirtioPCI *vp);

/* vpri_virtio_pci_map(): the range cannot be mapped in one piece. */
#define VPRI_MAP_COPY 3

/*
 * Map @len bytes of guest memory at DMA address @addr for a transfer that
 * outlives this call (block I/O straight into guest memory).  The
 * PA-BITMAP is checked and the pages are held against eviction until
 * vpri_virtio_pci_unmap().  Returns 0 with *@host set, VIRTQ_FAULT with
 * *@fault_addr, VIRTQ_ERROR for an address the platform refuses, or
 * VPRI_MAP_COPY when the range is not plain RAM in one piece: the caller
 * then copies through the short-DMA path.
 */
int vpri_virtio_pci_map(VpriVirtioPCI *vp, uint64_t addr, uint32_t len,
                        bool write, void **host, uint64_t *fault_addr);
void vpri_virtio_pci_unmap(VpriVirtioPCI *vp, uint64_t addr, void *host,
                           uint32_t len, bool write, uint32_t access_len);

/*
 * Run queue @index again from a later main-loop iteration, as if the
 * driver had kicked it: a device that bounds its work per run.
 */
void vpri_virtio_pci_kick_later(VpriVirtioPCI *vp, uint16_t index);

/* Interrupt the driver for queue @index if the ring asks for it. */
void vpri_virtio_pci_notify_queue(VpriVirtioPCI *vp, uint16_t index);

/* The device configuration changed: tell a running driver. */
void vpri_virtio_pci_config_changed(VpriVirtioPCI *vp);

/*
 * A DMA of queue @index faulted at @addr.  The queue is blocked and the
 * fault goes to the host's sideband channel; when the host resolves it the
 * queue's queue_notify hook runs again.  Returns false when the fault cannot
 * be resolved (no host, or the host failed it): the caller completes the
 * request with an I/O error.
 */
void vpri_virtio_pci_queue_fault(VpriVirtioPCI *vp, uint16_t index,
                                 uint64_t addr, bool write);

/*
 * The guest broke the virtio rules: log it, set DEVICE_NEEDS_RESET and tell
 * the driver through a config-change interrupt.  The device stops
 * processing until it is reset.
 */
void G_GNUC_PRINTF(2, 3)
vpri_virtio_pci_guest_error(VpriVirtioPCI *vp, const char *fmt, ...);

static inline bool vpri_virtio_pci_broken(VpriVirtioPCI *vp)
{
    return vp->status & 0x40;  /* VIRTIO_CONFIG_S_NEEDS_RESET */
}

static inline bool vpri_virtio_pci_has_feature(VpriVirtioPCI *vp,
                                               unsigned bit)
{
    return vp->guest_features & (1ULL << bit);
}

#endif
