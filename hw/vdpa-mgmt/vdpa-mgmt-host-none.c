/*
 * vdpa-mgmt in an emulator without VPRI: the function has no "host"
 * link property (-device vdpa-mgmt,host=... fails as an unknown
 * property), so s->host stays NULL and every caller of the functions
 * below checks it first; they are never reached.  With VPRI,
 * vdpa-mgmt-host.c is built instead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"

static const Property vdpa_mgmt_properties[] = {
    VDPA_MGMT_PROPERTIES,
};

void vdpa_host_class_init(DeviceClass *dc)
{
    device_class_set_props(dc, vdpa_mgmt_properties);
}

const char *vdpa_host_interface(void)
{
    return NULL;
}

bool vdpa_host_check(VdpaMgmt *s, Error **errp)
{
    g_assert_not_reached();
}

void vdpa_host_attach(VdpaMgmt *s,
                      void (*fault_done)(void *opaque, uint16_t slot,
                                         bool resolved))
{
    g_assert_not_reached();
}

void vdpa_host_detach(VdpaMgmt *s)
{
    g_assert_not_reached();
}

int vdpa_host_dma(VdpaMgmt *s, uint32_t dev, AddressSpace *as,
                  uint64_t addr, void *buf, uint64_t len, bool write,
                  uint64_t *fault_addr)
{
    g_assert_not_reached();
}

void vdpa_host_raise_fault(VdpaMgmt *s, uint32_t dev, uint16_t slot,
                           uint64_t addr, bool write)
{
    g_assert_not_reached();
}
