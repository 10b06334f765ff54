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
#include "hw/vpri/core/access-tracker.h"
#include "hw/vpri/core/fault-ring.h"
#include "hw/vpri/core/latency-histogram.h"
#include "hw/vpri/core/swap-store.h"
#include "hw/vpri/core/pin-policy.h"
#include "qemu/timer.h"

#define VPRI_HOST_MAX_HANDLERS 16
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

/* Translation state of a device behind a vIOMMU (vpri-iommu.c). */
typedef struct VpriDeviceXlat VpriDeviceXlat;

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
    AccessTracker *armed;       /* pages given for a DMA still to come */
    FaultRing *ring;
    VpriDeviceXlat *xlat;       /* NULL: DMA addresses are guest-physical */
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
    int pin_dev;                /* its index in the pin policy, or -1 */
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

    /* IOVA translations of devices behind a vIOMMU (vpri-iommu.c). */
    QemuMutex xlat_lock;
    GHashTable *xlat_rmap;      /* RAM page -> GSList of (device, IOVA) */

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
    uint64_t evict_fences;      /* PA-BITMAP fences the evictions made */
    uint64_t evict_deferred;    /* read-only entries lowered lazily */
    uint64_t pageins;
    uint64_t cpu_faults;        /* userfaultfd faults served */
    LatencyHistogram *cpu_fault_latency;
    LatencyHistogram *pagein_latency;

    /* DMA pinning policy and trace recording (vpri-pin.c) */
    char *vpri_pin_policy_name;      /* property pin-policy */
    double pin_budget_pct;      /* property pin-budget */
    PinPolicyKind pin_kind;
    QemuMutex pin_lock;         /* the policy; pin_by_policy */
    PinPolicy *pin_policy;
    QEMUTimer *pin_timer;
    uint8_t *pin_by_policy;     /* RAM pages the policy holds a pin on */
    uint64_t pin_epochs;
    QemuMutex trace_lock;
    FILE *trace_file;
    char *trace_path;
    uint64_t trace_records;
    uint64_t trace_last_ns;
    uint64_t trace_devs;        /* device slots in the trace's header */
};

void vpri_host_kick_handlers(VpriHost *h);

/* vpri-memory.c */
void vpri_host_serve_uffd(VpriHost *h);
uint64_t vpri_host_reclaim(VpriHost *h, uint64_t npages, Error **errp);
bool vpri_host_hold_hva(VpriHost *h, void *hva, uint64_t len,
                        uint64_t *fault_offset);
void vpri_host_release_hva(VpriHost *h, void *hva, uint64_t len);
void vpri_host_memory_init(VpriHost *h);
void vpri_host_memory_cleanup(VpriHost *h);
/* Make the page at guest-physical @gpa resident.  false: it cannot be. */
bool vpri_host_page_in(VpriHost *h, uint64_t gpa);
/* Set a newly attached device's PA-BITMAP from the residency of RAM. */
void vpri_host_sync_device_bitmap(VpriHost *h, VpriHostDevice *d);
/* The managed RAM page at host address @hva, if it is one. */
bool vpri_host_hva_to_page(VpriHost *h, const void *hva, uint64_t *page);
/* Make RAM page @page resident.  false: it cannot be. */
bool vpri_host_page_in_ram(VpriHost *h, uint64_t page);
bool vpri_host_page_resident(VpriHost *h, uint64_t page);

/* vpri-iommu.c: devices whose DMA addresses are IOVAs */
void vpri_iommu_translate_fault(VpriHost *h, VpriHostDevice *d,
                                uint64_t iova, bool write);
FaultStatus vpri_iommu_serve(VpriHost *h, VpriHostDevice *d,
                             const FaultRecord *rec);
void vpri_iommu_lower_page(VpriHost *h, uint64_t page, PabBatch **pb);
void vpri_iommu_detach(VpriHost *h, VpriHostDevice *d);
void vpri_iommu_stats(VpriHost *h, VpriHostDevice *d, uint64_t *translations,
                      uint64_t *unmapped, uint64_t *refused);
/* The RAM page of guest-physical @gpa; false if it is not RAM. */
bool vpri_host_gpa_to_ram_page(VpriHost *h, uint64_t gpa, uint64_t *page);
/* Pin (paging it in) or unpin one RAM page; false if it cannot be paged in */
bool vpri_host_pin_ram_page(VpriHost *h, uint64_t page, bool pin);

/* vpri-pin.c: the pinning policy and DMA trace recording */
void vpri_pin_init(VpriHost *h);
bool vpri_pin_check(VpriHost *h, Error **errp);
void vpri_pin_start(VpriHost *h);
void vpri_pin_attach(VpriHost *h, VpriHostDevice *d);
void vpri_pin_detach(VpriHost *h, VpriHostDevice *d);
void vpri_pin_fault(VpriHost *h, VpriHostDevice *d, uint64_t gpa);
void vpri_pin_record(VpriHost *h, VpriHostDevice *d, uint64_t addr,
                     uint64_t len, bool write, bool armed);
void vpri_pin_cleanup(VpriHost *h);
bool vpri_pin_trace_start(VpriHost *h, const char *file, Error **errp);
bool vpri_pin_trace_stop(VpriHost *h, uint64_t *records, Error **errp);

#endif
