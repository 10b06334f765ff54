/*
 * vpri-nic: a virtio-net compatible PCI NIC that takes I/O page faults
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_NIC_H
#define HW_VPRI_NIC_H

#include "qapi/qapi-types-vpri.h"

#define TYPE_VPRI_NIC "vpri-nic"

/*
 * If @dev is a vpri-nic, fill the NIC fields of its query-vpri entry
 * (rx-dropped-on-fault, rx-held, tx-stalls, per-queue fault counts).
 */
void vpri_nic_query_stats(DeviceState *dev, VpriDeviceInfo *info);

#endif
