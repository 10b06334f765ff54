/*
 * vdpa-mgmt core: per-queue MSI message store
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "hw/vdpa-mgmt/core/vdpa-msi.h"

void vdpa_msi_clear(VdpaMsiMsg *m)
{
    m->addr = 0;
    m->data = 0;
    m->flags = 0;
}

bool vdpa_msi_set(VdpaMsiMsg *m, uint64_t addr, uint32_t data, bool masked,
                  uint8_t addr_bits, bool *fire_now)
{
    bool pending = m->flags & VDPA_MSIM_PENDING;

    *fire_now = false;
    if (!addr || addr % 4 ||
        (addr_bits < 64 && addr >= (1ULL << addr_bits))) {
        return false;
    }
    m->addr = addr;
    m->data = data;
    m->flags = VDPA_MSIM_VALID | (masked ? VDPA_MSIM_MASKED : 0);
    if (pending && masked) {
        m->flags |= VDPA_MSIM_PENDING;
    }
    *fire_now = pending && !masked;
    return true;
}

bool vdpa_msi_fire(VdpaMsiMsg *m)
{
    if (!(m->flags & VDPA_MSIM_VALID)) {
        return false;
    }
    if (m->flags & VDPA_MSIM_MASKED) {
        m->flags |= VDPA_MSIM_PENDING;
        return false;
    }
    return true;
}

bool vdpa_msi_unmask(VdpaMsiMsg *m)
{
    bool pending = m->flags & VDPA_MSIM_PENDING;

    m->flags &= ~(VDPA_MSIM_MASKED | VDPA_MSIM_PENDING);
    return pending && (m->flags & VDPA_MSIM_VALID);
}
