/*
 * vpri-host, middle layer: devices whose DMA goes through a vIOMMU
 *
 * Keeps, for each translated device, what a device with ATS keeps in its
 * address translation cache (IOVA page -> RAM page), and for the host the
 * reverse map (RAM page -> the (device, IOVA page) aliases of it), so that
 * an eviction lowers the right entries.  It calls only the bottom layer
 * (vpri-residency.h) and learns of evictions through the hooks it
 * registers there; the host (top) calls it.  See vpri-iommu.c.
 *
 * Lock: the translation lock guards the reverse map, every device's ATC,
 * pending translations and counters, and the table of translated devices.
 * It is taken under no lock of this or the host's layers except the
 * residency reclaim lock (the eviction hook), and nothing is locked while
 * it is held except inside the pure cores (PA-BITMAP updates).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_IOMMU_H
#define HW_VPRI_IOMMU_H

#include "exec/memory.h"
#include "hw/vpri/core/pa-bitmap.h"
#include "hw/vpri/core/fault-ring.h"
#include "vpri-residency.h"

/* IOVA space covered by a translated device's PA-BITMAP (4 MiB of bits). */
#define VPRI_IOVA_BITMAP_BYTES (64ULL << 30)

typedef struct VpriXlat VpriXlat;
typedef struct VpriXlatDevice VpriXlatDevice;

/* One per host; registers its eviction hooks with @res. */
VpriXlat *vpri_xlat_new(VpriResidency *res);
void vpri_xlat_free(VpriXlat *xt);

/*
 * Device @dev_id's DMA goes through @as: its PA-BITMAP @pab (owned by the
 * caller, alive until vpri_xlat_detach()) is indexed by IOVA page and
 * filled as faults are translated.
 */
VpriXlatDevice *vpri_xlat_attach(VpriXlat *xt, uint32_t dev_id,
                                 PaBitmap *pab, AddressSpace *as);
void vpri_xlat_detach(VpriXlatDevice *x);

/* Main loop, when the device raises a fault on @iova: translate it now. */
void vpri_xlat_translate_fault(VpriXlatDevice *x, uint64_t iova, bool write);
/* A handler serves the fault record of @iova; returns its status. */
FaultStatus vpri_xlat_serve(VpriXlatDevice *x, uint64_t iova);

void vpri_xlat_stats(VpriXlatDevice *x, uint64_t *translations,
                     uint64_t *unmapped, uint64_t *refused);

#endif
