/*
 * vpri-host, top layer: the host object (devices, fault rings, handler
 * threads), its QMP and its part in postcopy migration, shared by
 * vpri-host.c, vpri-qmp.c and vpri-postcopy.c only.  Other families and
 * devices use include/hw/vpri/vpri-host.h.
 *
 * Layers (docs/vpri-host.rst).  A file calls only the layers below it, and
 * hears from them only through the hooks it registered with them; no two
 * files of one layer call each other.
 *
 *   top     vpri-host.c  vpri-qmp.c    VpriHost: devices, rings, handlers
 *           vpri-postcopy.c            QEMU's postcopy (notifiers, waker)
 *               |  \          |
 *   middle  vpri-iommu.c  vpri-pin.c   translation (ATC, reverse map);
 *               |             |        pinning policy and DMA traces
 *   bottom  vpri-residency.c           guest-RAM residency, eviction, pins
 *
 *   hooks up: residency -> iommu   evict_lower/evict_flush (IOVA aliases)
 *             residency -> pin     ready (start the policy)
 *             residency -> host    evict_lower/evict_flush (guest-physical
 *                                  entries), page_resident (raise them),
 *                                  ready (handlers start polling uffd)
 *
 * Lock order.  A lock may be taken while holding the ones above it in
 * this list, never one above it while holding one below:
 *
 *   1. residency reclaim lock   one reclaim at a time (vpri-residency.c)
 *   2. pin trace lock           the trace file; held around 3's policy
 *                               lock while a trace starts
 *   3. iommu translation lock   reverse map, ATCs, pending translations
 *      pin policy lock          the policy, its devices' trackers
 *      (never held together, nor across a call that locks in the
 *      residency layer)
 *   3b. postcopy wake lock      one waker at a time (vpri-postcopy.c);
 *                               held around host-lock calls, never
 *                               around a residency call that locks
 *   4. residency lock           page states, pin and hold counts
 *   5. host lock (VpriHost.lock) device slots, fault rings, wake masks;
 *      taken under 4 by the page_resident hook, so nothing may call the
 *      residency, iommu or pin layers while holding it
 *
 * The PA-BITMAP and fault ring cores have locks of their own, innermost.
 * Devices attach and detach, and reclaims run, under the BQL: an
 * eviction batch's PA-BITMAPs outlive it (VpriHostDevice.busy also keeps
 * detach waiting for one in another thread).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_HOST_INTERNAL_H
#define HW_VPRI_HOST_INTERNAL_H

#include "qemu/event_notifier.h"
#include "qemu/thread.h"
#include "hw/vpri/vpri-host.h"
#include "hw/vpri/core/fault-ring.h"
#include "vpri-residency.h"
#include "vpri-iommu.h"
#include "vpri-pin.h"
#include "vpri-postcopy.h"

#define VPRI_HOST_MAX_HANDLERS 16
#define VPRI_HOST_QUEUE_WORDS (VPRI_HOST_MAX_QUEUES / 64)

typedef struct VpriHandlerArg {
    VpriHost *host;
    uint32_t index;
} VpriHandlerArg;

typedef struct VpriHostDevice {
    VpriHost *host;
    bool taken;                 /* the slot is not free */
    DeviceState *dev;           /* NULL: no device (yet) */
    uint16_t nqueues;
    VpriDmaKind kind;           /* what its DMA is like (vpri-host.h) */
    PaBitmap *pab;
    FaultRing *ring;
    VpriXlatDevice *xlat;       /* NULL: DMA addresses are guest-physical */
    VpriPinDevice *pin;
    /* Handlers serving its records, evictions lowering its entries. */
    unsigned busy;
    uint64_t stall_ns;          /* its queues' time blocked on faults */

    /* Queues to resume in the main loop, by outcome; under host->lock. */
    uint64_t wake_resolved[VPRI_HOST_QUEUE_WORDS];
    uint64_t wake_failed[VPRI_HOST_QUEUE_WORDS];
    /* Queues whose raise found the ring full; under host->lock. */
    uint64_t full_stalled[VPRI_HOST_QUEUE_WORDS];
    QEMUBH *done_bh;
    VpriFaultDoneFn *done;
    void *done_opaque;
} VpriHostDevice;

struct VpriHost {
    Object parent_obj;

    /* Properties; all but the x- ones are fixed once the host is created */
    char *swap_file;
    uint32_t nhandlers;
    uint32_t ring_size;
    bool fail_faults;           /* x-fail-faults: answer every fault FAILED */
    bool hold_faults;           /* x-hold-faults: leave device faults pending */
    /*
     * x-postcopy-waker-delay-ms: our postcopy waker sleeps this long
     * before it raises a placed page's entries (tests: the window in
     * which vCPUs see a page and devices' entries do not yet)
     */
    uint32_t postcopy_waker_delay_ms;
    /* postcopy-prefetch: ask for pages devices will need (vpri-postcopy.h) */
    bool postcopy_prefetch;
    bool created;               /* complete() succeeded */

    /* The layers below (NULL until created, but pin: it holds settings) */
    VpriResidency *res;
    VpriXlat *xlat;
    VpriPin *pin;
    VpriPostcopy *postcopy;     /* refuses postcopy (vpri-postcopy.h) */

    /* Devices and their rings; handlers. */
    QemuMutex lock;
    QemuThread *threads;
    EventNotifier *handler_wake;
    VpriHandlerArg *handler_args;
    bool stopping;
    Notifier fork_child;        /* handlers again in an x-iolab-fork child */
    VpriHostDevice devs[VPRI_HOST_MAX_DEVICES];
    uint64_t device_faults;     /* records served */
};

/* For QMP: the host named @id. */
VpriHost *vpri_host_find(const char *id, Error **errp);

#endif
