/*
 * vpri-host: the host side of VPRI, the I/O page fault service
 *
 * One object serves any number of vpri devices.  For each device it keeps
 * the device's PA-BITMAP, its DMA access tracker and its sideband fault
 * ring; handler threads take fault records off the rings, page the memory
 * in and complete the faults.
 *
 * This is all that devices and other families use of vpri-host.  A device
 * refers to its host through a QOM link property (DEFINE_PROP_LINK with
 * TYPE_VPRI_HOST), which holds a reference; a host with devices attached
 * refuses object-del.  The implementation's layers are described in
 * hw/vpri/vpri-host-internal.h and docs/vpri-host.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_HOST_H
#define HW_VPRI_HOST_H

#include "qom/object.h"
#include "qapi/qapi-types-vpri.h"
#include "hw/vpri/core/pa-bitmap.h"

#define TYPE_VPRI_HOST "vpri-host"
OBJECT_DECLARE_SIMPLE_TYPE(VpriHost, VPRI_HOST)

/* Devices (attachments) one host serves, and queues per attachment. */
#define VPRI_HOST_MAX_DEVICES 64
#define VPRI_HOST_MAX_QUEUES 64

/*
 * What a device's DMA is like, said by the device when it attaches; the
 * pinning policy gives each kind its own share (docs/vpri-adp.rst).
 */
typedef enum VpriDmaKind {
    VPRI_DMA_NET,               /* posted receive buffers, armed early */
    VPRI_DMA_BLOCK,             /* buffers used once per request */
} VpriDmaKind;

/* Runs in the main loop once the host has answered a device fault. */
typedef void VpriFaultDoneFn(void *opaque, uint16_t queue, bool resolved);

/*
 * Attach @dev, whose DMA is of @kind, with @nqueues queues (fault
 * records name queues 0..@nqueues - 1).  Returns the device id used in
 * fault records and every call below, or -1 with @errp set (no free slot,
 * a bad queue count, no memory for the device's PA-BITMAP or ring).
 */
int vpri_host_attach(VpriHost *h, DeviceState *dev, VpriDmaKind kind,
                     uint16_t nqueues, VpriFaultDoneFn *done, void *opaque,
                     Error **errp);
void vpri_host_detach(VpriHost *h, uint32_t dev_id);

/*
 * vpri_host_can_attach() says whether one more device fits (and sets errp
 * if not); vpri_host_free_slots() counts how many more do, for a device
 * that attaches more than once.
 */
bool vpri_host_can_attach(VpriHost *h, Error **errp);
unsigned vpri_host_free_slots(VpriHost *h);

/*
 * The address space the device's DMA goes through.  Behind a vIOMMU its
 * DMA addresses are IOVAs and its PA-BITMAP is indexed by IOVA; see
 * vpri-iommu.c.  Devices that never call this are guest-physical.
 */
void vpri_host_set_dma_space(VpriHost *h, uint32_t dev_id, AddressSpace *as);

/*
 * Start a DMA of @len bytes at @addr: look the pages up in the device's
 * PA-BITMAP and, if the access is allowed, enter the fence's in-flight
 * set until vpri_host_dma_end().  Returns PAB_OK, PAB_FAULT (first
 * faulting page in *@fault_page) or PAB_OUT_OF_RANGE.
 */
PabResult vpri_host_dma_begin(VpriHost *h, uint32_t dev_id, uint64_t addr,
                              uint64_t len, bool write, PabDmaToken *token,
                              uint64_t *fault_page);
void vpri_host_dma_end(VpriHost *h, uint32_t dev_id, PabDmaToken token);

/*
 * The device was given [@addr, @addr + @len) for a DMA still to come (a
 * NIC read the descriptor of a receive buffer posted to it).  Not an
 * access: nothing is checked or transferred; the pinning policy hears of
 * it (vpri_pin_policy_armed()) and a trace being recorded gets 'a' records.
 * Guest-physical devices only; out-of-range addresses are ignored.
 */
void vpri_host_dma_arm(VpriHost *h, uint32_t dev_id, uint64_t addr,
                       uint64_t len);

/*
 * The device will DMA to [@addr, @addr + @len) soon (its rings, a
 * request it carried over from a migration's source).  On a postcopy
 * destination, pages of it not received yet are asked for now, without
 * waiting and without a fault (vpri-host's postcopy-prefetch property,
 * docs/vpri-host.rst "Prefetch"); otherwise nothing happens.  Buffers
 * given to vpri_host_dma_arm() are prefetched the same way.  Under the
 * BQL; guest-physical devices only.
 */
void vpri_host_prefetch(VpriHost *h, uint32_t dev_id, uint64_t addr,
                        uint64_t len);

/*
 * A DMA that lasts longer than one call, such as block I/O straight into
 * guest memory, already mapped at host address @hva (what
 * address_space_map() returned for @addr): check the PA-BITMAP as
 * vpri_host_dma_begin() does, then hold the pages really mapped, whether
 * @addr is guest-physical or an IOVA, so that the host does not evict
 * them until vpri_host_dma_release().  Short copies use dma_begin/end and
 * the fence; a fence cannot wait for I/O that completes in the main loop
 * it runs in.  Besides what vpri_host_dma_begin() returns, PAB_OUT_OF_RANGE
 * also means that a page is already held by as many DMAs as its counter
 * counts (the guest mapped one page into too many segments at once):
 * nothing is held, and the device fails the request.
 */
PabResult vpri_host_dma_hold(VpriHost *h, uint32_t dev_id, uint64_t addr,
                             uint64_t len, bool write, void *hva,
                             uint64_t *fault_page);
void vpri_host_dma_release(VpriHost *h, void *hva, uint64_t len);

/*
 * Report a fault on the sideband channel; the device's done callback runs
 * in the main loop when it is answered.  @cpu is the index of the vCPU
 * that takes the queue's interrupt, or -1: its handler is woken first.
 */
void vpri_host_raise_fault(VpriHost *h, uint32_t dev_id, uint16_t queue,
                           uint64_t page, bool write, int cpu);

/* The device's queues were blocked @ns nanoseconds on one fault. */
void vpri_host_account_stall(VpriHost *h, uint32_t dev_id, uint64_t ns);

/*
 * Devices of their own kind implement this interface: those that add
 * their own members to their query-vpri entry (vpri-nic: packet and drop
 * counters), and devices off the vpri virtio transport that take device
 * faults on pages a postcopy destination has not received yet
 * (vdpa-mgmt; docs/vpri-host.rst, "Postcopy").
 */
#define TYPE_VPRI_HOST_CLIENT "vpri-host-client"
typedef struct VpriHostClientClass VpriHostClientClass;
DECLARE_CLASS_CHECKERS(VpriHostClientClass, VPRI_HOST_CLIENT,
                       TYPE_VPRI_HOST_CLIENT)

struct VpriHostClientClass {
    InterfaceClass parent_class;
    /* Fill the device's own members of its query-vpri entry. */
    void (*query_stats)(DeviceState *dev, VpriDeviceInfo *info);
    /*
     * Why the device cannot serve a postcopy destination (as it is now
     * configured), or NULL if it can: its DMA to a page not received yet
     * faults, and the queue waits for the fault's completion.  Without
     * this member a device off the vpri virtio transport is refused.
     * Under the BQL.
     */
    const char *(*postcopy_blocker)(DeviceState *dev);
};

/* Pin or unpin guest pages (never evicted while pinned). */
int vpri_host_pin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp);
int vpri_host_unpin(VpriHost *h, uint64_t gpa, uint64_t len, Error **errp);

#endif
