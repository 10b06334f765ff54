/*
 * vdpa-mgmt core: per-queue MSI message store
 *
 * Each queue of each instance keeps its own MSI message (address, data),
 * as Intel SIOV's Interrupt Message Store does, so the number of
 * interrupt sources is not bounded by the function's 2048-entry MSI-X
 * table.  A masked message that fires becomes pending and is delivered
 * when unmasked, like an MSI-X vector.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_MSI_H
#define HW_VDPA_MGMT_VDPA_MSI_H

#include <stdbool.h>
#include <stdint.h>

#define VDPA_MSIM_VALID   1u
#define VDPA_MSIM_MASKED  2u
#define VDPA_MSIM_PENDING 4u

typedef struct VdpaMsiMsg {
    uint64_t addr;
    uint32_t data;
    uint32_t flags;
} VdpaMsiMsg;

/* Cleared: no message, nothing is sent */
void vdpa_msi_clear(VdpaMsiMsg *m);

/*
 * Store a message.  Returns false (store unchanged) for an address that
 * is 0, not 4-byte aligned, or at or above 1 << @addr_bits.  Storing an
 * unmasked message over a pending one delivers the pending interrupt
 * (returns true in *@fire_now) to the new address.
 */
bool vdpa_msi_set(VdpaMsiMsg *m, uint64_t addr, uint32_t data, bool masked,
                  uint8_t addr_bits, bool *fire_now);

/*
 * The queue wants to interrupt.  True: send (addr, data) now.  False:
 * no message (dropped) or masked (now pending).
 */
bool vdpa_msi_fire(VdpaMsiMsg *m);

/* Unmask; true if a pending interrupt must be sent now */
bool vdpa_msi_unmask(VdpaMsiMsg *m);

static inline bool vdpa_msi_pending(const VdpaMsiMsg *m)
{
    return m->flags & VDPA_MSIM_PENDING;
}

#endif
