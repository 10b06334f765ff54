/*
 * vpri-host and QEMU's postcopy migration: the guard
 *
 * vpri-host's residency layer registers guest RAM with its own
 * userfaultfd (eviction, page-in); QEMU's postcopy registers the same RAM
 * with another one on the destination (ram_block_enable_notify), and
 * Linux allows one per range: the destination's registration fails with
 * EBUSY after the source has stopped the guest, and the VM is lost.
 * Until the two cooperate (docs/vpri-host.rst, "Migration"), a vpri-host
 * refuses postcopy up front, on both sides:
 *
 *   - the postcopy-ram capability, when it is set, on the source and on
 *     the destination (QEMU's postcopy probe notifiers; the source's
 *     probe is patches/0011).  QEMU asks the probes at start-up too, for
 *     a capability set with -global, and at the destination's postcopy
 *     advice;
 *   - creating a vpri-host while the capability is on.
 *
 * migrate-start-postcopy needs the capability, so it is refused with it.
 * Part of the top layer (vpri-host-internal.h); calls no other layer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_POSTCOPY_H
#define HW_VPRI_POSTCOPY_H

typedef struct VpriPostcopy VpriPostcopy;

/*
 * Guard the vpri-host named @owner.  NULL, with @errp set, if the
 * postcopy-ram capability is on already.
 */
VpriPostcopy *vpri_postcopy_new(const char *owner, Error **errp);
void vpri_postcopy_free(VpriPostcopy *pc);

#endif
