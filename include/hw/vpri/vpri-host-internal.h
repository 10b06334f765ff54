/*
 * vpri-host internals shared by its files (vpri-host.c: devices, faults and
 * handlers; vpri-memory.c: guest RAM, eviction and page-in).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_HOST_INTERNAL_H
#define HW_VPRI_HOST_INTERNAL_H

#include "qemu/event_notifier.h"
#include "qemu/notify.h"
#include "qemu/thread.h"
#include "hw/vpri/vpri-host.h"
#include "hw/vpri/access-tracker.h"
#include "hw/vpri/fault-ring.h"
#include "hw/vpri/latency-histogram.h"
#include "hw/vpri/swap-store.h"

#define VPRI_HOST_MAX_DEVICES 64
#define VPRI_HOST_MAX_HANDLERS 16
#define VPRI_HOST_MAX_QUEUES 64
#define VPRI_HOST_QUEUE_WORDS (VPRI_HOST_MAX_QUEUES / 64)

/* Residency of one guest RAM page. */
enum {
    VPRI_PAGE_RESIDENT = 0,
    VPRI_PAGE_EVICTING,         /* being written out; page-ins wait */
    VPRI_PAGE_EVICTED,          /* only in the swap store */
    VPRI_PAGE_PAGING_IN,        /* being read back; others wait */
};

/* Where a piece of guest RAM appears in the guest-physical space. */
typedef struct VpriRamSegment {
    uint64_t gpa;
    uint64_t ram_offset;
    uint64_t len;
} VpriRamSegment;

typedef struct VpriHandlerArg {
    VpriHost *host;
    uint32_t index;
} VpriHandlerArg;

typedef struct VpriHostDevice {
    VpriHost *host;
    DeviceState *dev;           /* NULL: slot free */
    uint16_t nqueues;
    PaBitmap *pab;
    AccessTracker *tracker;
    FaultRing *ring;
    unsigned serving;           /* records popped and not yet completed */
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

    /* properties */
    char *swap_file;
    uint32_t nhandlers;
    uint32_t ring_size;
    bool fail_faults;           /* x-fail-faults: answer every fault FAILED */
    bool hold_faults;           /* x-hold-faults: leave device faults pending */

    /* Devices and their rings; handlers. */
    QemuMutex lock;
    QemuThread *threads;
    EventNotifier *handler_wake;
    VpriHandlerArg *handler_args;
    bool stopping;
    VpriHostDevice devs[VPRI_HOST_MAX_DEVICES];
    uint64_t device_faults;     /* records served */

    /* Guest RAM (vpri-memory.c), set up once the machine exists. */
    Notifier machine_done;
    bool mem_ready;
    char *mem_error;            /* why eviction is off, if it is */
    uint8_t *ram_host;
    uint64_t ram_pages;
    VpriRamSegment *segs;       /* largest first: lookups hit early */
    unsigned nsegs;
    int uffd;
    SwapStore *swap;
    QemuMutex mem_lock;         /* page_state transitions, pin counts */
    QemuCond mem_cond;          /* a page left EVICTING or PAGING_IN */
    QemuMutex reclaim_lock;     /* one reclaim at a time */
    uint8_t *page_state;
    uint16_t *pin_count;        /* explicit pins (vpri_host_pin) */
    uint16_t *hold_count;       /* in-flight long DMAs (vpri_host_dma_hold) */
    uint64_t clock_hand;
    uint64_t evicted_pages;
    uint64_t pinned_pages;
    uint64_t evictions;
    uint64_t pageins;
    uint64_t cpu_faults;        /* userfaultfd faults served */
    LatencyHistogram *cpu_fault_latency;
    LatencyHistogram *pagein_latency;
};

bool vpri_host_can_attach(VpriHost *h, Error **errp);

void vpri_host_kick_handlers(VpriHost *h);

/* vpri-memory.c */
void vpri_host_serve_uffd(VpriHost *h);
uint64_t vpri_host_reclaim(VpriHost *h, uint64_t npages, Error **errp);
bool vpri_host_hold_range(VpriHost *h, uint64_t gpa, uint64_t len,
                          uint64_t *fault_page);
void vpri_host_release_range(VpriHost *h, uint64_t gpa, uint64_t len);
void vpri_host_memory_init(VpriHost *h);
void vpri_host_memory_cleanup(VpriHost *h);
/* Make the page at guest-physical @gpa resident.  false: it cannot be. */
bool vpri_host_page_in(VpriHost *h, uint64_t gpa);
/* Set a newly attached device's PA-BITMAP from the residency of RAM. */
void vpri_host_sync_device_bitmap(VpriHost *h, VpriHostDevice *d);

#endif
