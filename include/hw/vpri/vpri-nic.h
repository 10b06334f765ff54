/*
 * vpri-nic: a virtio-net compatible PCI NIC that takes I/O page faults
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_NIC_H
#define HW_VPRI_NIC_H

#define TYPE_VPRI_NIC "vpri-nic"

/*
 * A vpri-nic fills the NIC members of its query-vpri entry
 * (rx-dropped-on-fault, rx-held, tx-stalls, per-queue fault counts)
 * through the vpri-host-client interface (hw/vpri/vpri-host.h).
 */

#endif
