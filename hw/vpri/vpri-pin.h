/*
 * vpri-host, middle layer: the DMA pinning policy and DMA trace recording
 *
 * Watches the DMA of the devices attached to it (accesses, armed buffers,
 * faults) and pins the RAM pages the policy picks through the residency
 * layer below it, the only layer it calls; it learns that guest RAM is
 * ready through the hook it registers there.  Devices are attached with
 * the kind their DMA is of (PinDevKind): the policy never looks at what
 * a device is.  The host (top) calls it.  See vpri-pin.c.
 *
 * Locks, taken in this order: the trace lock (the trace file), the
 * policy lock (the policy, its devices' trackers and pins), then the
 * residency lock inside residency calls.  Pins are applied after the
 * policy lock is dropped, since a pin may page in.  The complete order of
 * vpri-host is in vpri-host-internal.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_PIN_H
#define HW_VPRI_PIN_H

#include "qapi/qapi-types-vpri.h"
#include "hw/vpri/core/pin-policy.h"
#include "vpri-residency.h"

typedef struct VpriPin VpriPin;
typedef struct VpriPinDevice VpriPinDevice;

VpriPin *vpri_pin_new(void);
void vpri_pin_free(VpriPin *p);

/* Settings: pin-policy (until guest RAM is ready) and pin-budget. */
bool vpri_pin_set_policy(VpriPin *p, const char *name, Error **errp);
const char *vpri_pin_get_policy(VpriPin *p);
bool vpri_pin_set_budget(VpriPin *p, const char *value, Error **errp);
char *vpri_pin_get_budget(VpriPin *p);

/*
 * Work on @res's guest RAM; the policy starts once it is ready.  @owner
 * names the host in messages and traces.
 */
void vpri_pin_bind(VpriPin *p, VpriResidency *res, const char *owner);

/*
 * Device @dev_id (below VPRI_EVICT_MAX_SLOTS), named @name in traces,
 * whose DMA is of @kind over @npages pages of its DMA space.
 */
VpriPinDevice *vpri_pin_attach(VpriPin *p, uint32_t dev_id, PinDevKind kind,
                               const char *name, uint64_t npages);
void vpri_pin_detach(VpriPinDevice *pd);
/* The device's DMA space changed to @npages pages (IOVA-indexed). */
void vpri_pin_retrack(VpriPinDevice *pd, uint64_t npages);

/* The device accessed [@addr, @addr + @len) (a DMA the PA-BITMAP let by). */
void vpri_pin_note_dma(VpriPinDevice *pd, uint64_t addr, uint64_t len,
                       bool write);
/* The device was given [@addr, @addr + @len) for a DMA still to come. */
void vpri_pin_note_armed(VpriPinDevice *pd, uint64_t addr, uint64_t len);
/* A handler serves a fault of the device at guest-physical @gpa. */
void vpri_pin_note_fault(VpriPinDevice *pd, uint64_t gpa);

/*
 * Up to @max of the RAM pages the policy pins now, lowest first, into
 * @pages; returns how many (0 until the policy runs).  For postcopy: the
 * pages a destination should ask for first (vpri-postcopy.c).
 */
size_t vpri_pin_pinned_pages(VpriPin *p, uint64_t *pages, size_t max);

bool vpri_pin_trace_start(VpriPin *p, const char *file, Error **errp);
bool vpri_pin_trace_stop(VpriPin *p, uint64_t *records, Error **errp);

/* For query-vpri: NULL until the policy runs. */
VpriPinInfo *vpri_pin_query(VpriPin *p);
VpriDevicePins *vpri_pin_query_device(VpriPinDevice *pd);

#endif
