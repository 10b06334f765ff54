/*
 * vpri-host and QEMU's postcopy migration (docs/vpri-host.rst, "Migration")
 *
 * vpri-host's residency layer registers guest RAM with its own
 * userfaultfd (eviction, page-in); QEMU's postcopy registers the same RAM
 * with another one on the destination (ram_block_enable_notify), and
 * Linux allows one per range.  They take turns, through QEMU's postcopy
 * notifiers on the destination:
 *
 *   advise   the residency layer pages everything in, stops eviction and
 *            unregisters guest RAM; a PostCopyFD (a pipe QEMU's fault
 *            thread reads) carries device page requests to QEMU;
 *   listen   pages not received yet become MISSING (postcopy-pages.h),
 *            their PA-BITMAP entries not present: a device DMA to one
 *            faults on the sideband ring, its record waits in service
 *            while the page is asked for on the return path;
 *   package  (postcopy-prefetch on) the pages the source's pin policy
 *            held, carried in the "vpri-host/pins" section, are asked
 *            for as soon as they are loaded (prefetch, before the rings);
 *   run      the devices ask for what they will need first (prefetch:
 *            their rings, carried requests, posted receive buffers);
 *   placed   QEMU's waker: the page is RECEIVED, its entries read-write,
 *            the records waiting on it complete and their queues resume;
 *   end      the residency layer registers guest RAM again (once QEMU's
 *            userfaultfd has let go) and eviction resumes;
 *   pause    (patches/0012) the connection broke: waiting queues keep
 *            waiting, new device faults wait without a request;
 *   resume   (patches/0012) recovered: every page devices wait on is
 *            asked for again.
 *
 * Postcopy stays refused, on both sides, while a device of the host is
 * one this does not handle yet (behind a vIOMMU; off the vpri virtio
 * transport and not saying it takes postcopy faults through
 * VpriHostClientClass.postcopy_blocker: vdpa-mgmt does, unless it has a
 * net backend), or it manages no guest RAM; and a vpri-host cannot be
 * created while the postcopy-ram capability is on.  Part of the top
 * layer (vpri-host-internal.h): vpri-host.c calls it, and it calls the
 * host back only through the VpriPostcopyHooks the host gave it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_POSTCOPY_H
#define HW_VPRI_POSTCOPY_H

#include "hw/vpri/core/fault-ring.h"
#include "hw/vpri/core/postcopy-pages.h"
#include "hw/vpri/vpri-host.h"

typedef struct VpriPostcopy VpriPostcopy;

/*
 * What postcopy needs done by the host, registered by vpri-host.c when
 * it creates its VpriPostcopy: vpri-postcopy.c reaches vpri-host.c only
 * through these, so the two files of the top layer do not call each
 * other in a circle.  None may be called with the host lock held.
 */
typedef struct VpriPostcopyHooks {
    /* Complete a fault record kept in service, and wake its queues */
    void (*complete_later)(VpriHost *h, uint32_t dev_id, uint16_t queue,
                           uint64_t seq, uint64_t page, FaultStatus status);
    /*
     * Raise (@present) or lower the entries of guest-physical page @gpa
     * in every device indexed by guest-physical address
     */
    void (*set_gpa_entries)(VpriHost *h, uint64_t gpa, bool present);
    /* After lowering: fence those devices (under the BQL) */
    void (*fence_devices)(VpriHost *h);
    /*
     * Source: up to @max RAM pages the pin policy holds now, into @pages;
     * returns how many
     */
    size_t (*pinned_pages)(VpriHost *h, uint64_t *pages, size_t max);
} VpriPostcopyHooks;

/* NULL, with @errp set, if the postcopy-ram capability is on already. */
VpriPostcopy *vpri_postcopy_new(VpriHost *h, const VpriPostcopyHooks *hooks,
                                Error **errp);
void vpri_postcopy_free(VpriPostcopy *pc);

typedef enum VpriPostcopyServe {
    VPRI_PC_NORMAL,             /* not postcopy's: serve it as usual */
    VPRI_PC_WAIT,               /* kept in service until the page comes */
    VPRI_PC_FAIL,               /* the page never comes: complete FAILED */
} VpriPostcopyServe;

/*
 * For query-vpri: false if postcopy never started listening here.
 * *@received counts pages placed since then; *@state is "running",
 * "paused" (the connection broke) or "done"; *@lat is the fault-to-page
 * latency.  Under the BQL.
 */
bool vpri_postcopy_stats(VpriPostcopy *pc, PcpStats *st, uint64_t *received,
                         const char **state, const LatencyHistogram **lat);

/*
 * Prefetch: device @dev_id will DMA to guest-physical [@gpa, @gpa + @len)
 * soon.  While postcopy runs here and the host's postcopy-prefetch is
 * on, each page of it not received and not asked for yet is asked for
 * now, through the same request path as a device fault, without waiting
 * (@pc may be NULL).  At most VPRI_PC_PREFETCH_MAX pages per postcopy
 * run, and as many per call: beyond it devices fault as without it.
 * Under the BQL.
 */
#define VPRI_PC_PREFETCH_MAX 1024
/*
 * Of those, at most this many are the source's pinned pages (the lowest
 * page numbers beyond it stay behind), so the rings and buffers the
 * devices name at run still get theirs.
 */
#define VPRI_PC_PINNED_MAX (VPRI_PC_PREFETCH_MAX / 2)
void vpri_postcopy_prefetch(VpriPostcopy *pc, uint32_t dev_id, uint64_t gpa,
                            uint64_t len);

/*
 * Whether QEMU has placed guest-physical page @gpa (its received bitmap,
 * or the page mapped already) while postcopy listens here (@pc may be
 * NULL).  A vCPU sees a page as soon as it is placed; our waker raises
 * its entries just after.  A device that looks in between (a driver that
 * wrote a fresh page and kicked at once) asks this before it raises a
 * record for a page that is already here.  Any thread, no lock.
 */
bool vpri_postcopy_placed(VpriPostcopy *pc, uint64_t gpa);

/* A handler took @rec of device @dev_id off its ring (@pc may be NULL). */
VpriPostcopyServe vpri_postcopy_serve(VpriPostcopy *pc, uint32_t dev_id,
                                      const FaultRecord *rec);

#endif
