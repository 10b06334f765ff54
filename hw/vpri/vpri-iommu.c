/*
 * vpri-host: devices whose DMA goes through a vIOMMU
 *
 * Behind an IOMMU a device's DMA addresses are IOVAs, so its PA-BITMAP is
 * indexed by IOVA page, and the host must know which guest RAM page each
 * present entry stands for, to lower the right entries when it evicts a
 * page.  The device keeps that knowledge the way a device with ATS keeps
 * an address translation cache (ATC):
 *
 *  - every entry starts not present, so the first DMA to an IOVA page
 *    faults;
 *  - the device translates the faulting IOVA through its DMA address
 *    space when it raises the fault (in the main loop: the IOMMU's walk
 *    reads guest page tables, which may themselves be evicted, and only a
 *    thread that is not a fault handler may wait for a page-in);
 *  - the handler pages the RAM page in, then raises the entry and records
 *    IOVA page -> RAM page (the ATC) and RAM page -> (device, IOVA page)
 *    (the reverse map);
 *  - eviction lowers the entries the reverse map names and drops them;
 *  - the guest's IOTLB invalidations reach us as IOMMU UNMAP
 *    notifications, which lower the entries in the range and drop them.
 *    A translation made before an unmap that completes after it is
 *    discarded (unmap generation), so a stale IOVA is never raised.
 *
 * A DMA whose IOVA the IOMMU does not map is answered FAILED: the device
 * reports a DMA error, as a device whose ATS translation request failed.
 * IOVAs beyond the bitmap (VPRI_IOVA_BITMAP_BYTES) are not tracked: they
 * are allowed, and an access to evicted RAM through them is still served
 * by userfaultfd, so no data is ever lost.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "hw/vpri/vpri-host-internal.h"
#include "trace.h"

/* IOVA space covered by a translated device's PA-BITMAP (4 MiB of bits). */
#define VPRI_IOVA_BITMAP_BYTES (64 * GiB)

/* ATC values: RAM page + 1, or this for a page that is not guest RAM. */
#define VPRI_ATC_NOT_RAM UINT64_MAX

/* What a raise found for an IOVA page, until a handler serves it. */
typedef struct VpriPendingXlat {
    uint64_t ram_page;          /* VPRI_ATC_NOT_RAM: nothing to page in */
    uint64_t unmap_gen;
    PabState state;
    bool mapped;                /* false: the IOMMU refused the access */
} VpriPendingXlat;

typedef struct VpriIommuNotifier {
    IOMMUNotifier n;
    MemoryRegion *mr;
    VpriDeviceXlat *x;
    QLIST_ENTRY(VpriIommuNotifier) next;
} VpriIommuNotifier;

struct VpriDeviceXlat {
    VpriHostDevice *d;
    AddressSpace *as;
    MemoryListener listener;
    QLIST_HEAD(, VpriIommuNotifier) notifiers;
    /* Under host->xlat_lock: */
    GHashTable *atc;            /* IOVA page -> RAM page + 1 */
    GHashTable *pending;        /* IOVA page -> VpriPendingXlat */
    uint64_t unmap_gen;
    uint64_t unmaps;            /* IOVA pages dropped on IOMMU unmaps */
    uint64_t refused;           /* faults the IOMMU did not translate */
};

/* Reverse map keys and values: (device, IOVA page) packed in a pointer. */
#define VPRI_RMAP_DEV_BITS 6
QEMU_BUILD_BUG_ON(VPRI_HOST_MAX_DEVICES > (1 << VPRI_RMAP_DEV_BITS));

static gpointer vpri_rmap_pack(uint32_t dev_id, uint64_t iova_page)
{
    return GSIZE_TO_POINTER((iova_page << VPRI_RMAP_DEV_BITS) | dev_id);
}

static uint32_t vpri_rmap_dev(gpointer v)
{
    return GPOINTER_TO_SIZE(v) & ((1 << VPRI_RMAP_DEV_BITS) - 1);
}

static uint64_t vpri_rmap_iova_page(gpointer v)
{
    return GPOINTER_TO_SIZE(v) >> VPRI_RMAP_DEV_BITS;
}

static uint32_t vpri_xlat_dev_id(VpriDeviceXlat *x)
{
    return x->d - x->d->host->devs;
}

/* ------------------------------------------------------------------ */
/* The ATC and the reverse map; all under host->xlat_lock             */

static void vpri_rmap_remove(VpriHost *h, uint64_t ram_page, gpointer v)
{
    gpointer key = GSIZE_TO_POINTER(ram_page);
    GSList *l = g_hash_table_lookup(h->xlat_rmap, key);

    g_hash_table_steal(h->xlat_rmap, key);
    l = g_slist_remove(l, v);
    if (l) {
        g_hash_table_insert(h->xlat_rmap, key, l);
    } else {
        g_hash_table_remove(h->xlat_rmap, key);
    }
}

/* Forget one IOVA page and lower its entry; no fence: nothing is reused. */
static void vpri_atc_drop(VpriDeviceXlat *x, uint64_t iova_page,
                          uint64_t atc_value)
{
    VpriHost *h = x->d->host;

    if (atc_value != VPRI_ATC_NOT_RAM) {
        vpri_rmap_remove(h, atc_value - 1,
                         vpri_rmap_pack(vpri_xlat_dev_id(x), iova_page));
    }
    g_hash_table_remove(x->atc, GSIZE_TO_POINTER(iova_page));
    vpri_pab_lower_range(x->d->pab, iova_page, 1, PAB_NOT_PRESENT);
}

static void vpri_atc_insert(VpriDeviceXlat *x, uint64_t iova_page,
                            uint64_t ram_page, PabState state)
{
    VpriHost *h = x->d->host;
    gpointer old = g_hash_table_lookup(x->atc, GSIZE_TO_POINTER(iova_page));
    uint64_t value = ram_page == VPRI_ATC_NOT_RAM ? ram_page : ram_page + 1;

    if (old) {
        vpri_atc_drop(x, iova_page, GPOINTER_TO_SIZE(old));
    }
    g_hash_table_insert(x->atc, GSIZE_TO_POINTER(iova_page),
                        GSIZE_TO_POINTER(value));
    if (ram_page != VPRI_ATC_NOT_RAM) {
        gpointer key = GSIZE_TO_POINTER(ram_page);
        GSList *l = g_hash_table_lookup(h->xlat_rmap, key);

        /* Steal first: replacing the value would free the list. */
        g_hash_table_steal(h->xlat_rmap, key);
        l = g_slist_prepend(l, vpri_rmap_pack(vpri_xlat_dev_id(x),
                                              iova_page));
        g_hash_table_insert(h->xlat_rmap, key, l);
    }
    vpri_pab_raise_range(x->d->pab, iova_page, 1, state);
}

/* Drop every translation in [@first, @last] (IOVA pages). */
static void vpri_atc_drop_range(VpriDeviceXlat *x, uint64_t first,
                                uint64_t last)
{
    GHashTableIter it;
    gpointer k, v;
    GArray *victims;

    x->unmap_gen++;
    if (last - first < g_hash_table_size(x->atc)) {
        for (uint64_t p = first; p <= last; p++) {
            v = g_hash_table_lookup(x->atc, GSIZE_TO_POINTER(p));
            if (v) {
                vpri_atc_drop(x, p, GPOINTER_TO_SIZE(v));
                x->unmaps++;
            }
        }
        return;
    }
    /* A large range (a whole-space invalidation): walk the ATC instead. */
    victims = g_array_new(false, false, sizeof(uint64_t) * 2);
    g_hash_table_iter_init(&it, x->atc);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        uint64_t pair[2] = { GPOINTER_TO_SIZE(k), GPOINTER_TO_SIZE(v) };

        if (pair[0] >= first && pair[0] <= last) {
            g_array_append_val(victims, pair);
        }
    }
    for (guint i = 0; i < victims->len; i++) {
        uint64_t *pair = &g_array_index(victims, uint64_t, 2 * i);

        vpri_atc_drop(x, pair[0], pair[1]);
        x->unmaps++;
    }
    g_array_free(victims, true);
}

/* ------------------------------------------------------------------ */
/* IOMMU notifications, in the thread that invalidates (BQL held)     */

static void vpri_iommu_unmap_notify(IOMMUNotifier *n, IOMMUTLBEntry *e)
{
    VpriIommuNotifier *vn = container_of(n, VpriIommuNotifier, n);
    VpriHost *h = vn->x->d->host;
    uint64_t first = e->iova >> PAB_PAGE_SHIFT;
    uint64_t last = (e->iova + e->addr_mask) >> PAB_PAGE_SHIFT;

    qemu_mutex_lock(&h->xlat_lock);
    vpri_atc_drop_range(vn->x, first, last);
    qemu_mutex_unlock(&h->xlat_lock);
    trace_vpri_iommu_unmap(vpri_xlat_dev_id(vn->x), e->iova, e->addr_mask);
}

/* The device's address space changed shape (DMA remapping switched on or
 * off, an IOMMU region came or went): no translation can be trusted. */
static void vpri_iommu_flush(VpriDeviceXlat *x)
{
    VpriHost *h = x->d->host;

    qemu_mutex_lock(&h->xlat_lock);
    vpri_atc_drop_range(x, 0, UINT64_MAX >> PAB_PAGE_SHIFT);
    qemu_mutex_unlock(&h->xlat_lock);
}

static void vpri_iommu_region_add(MemoryListener *l,
                                  MemoryRegionSection *section)
{
    VpriDeviceXlat *x = container_of(l, VpriDeviceXlat, listener);
    IOMMUMemoryRegion *iommu_mr;
    VpriIommuNotifier *vn;
    Error *err = NULL;
    uint64_t start, end;

    vpri_iommu_flush(x);
    if (!memory_region_is_iommu(section->mr)) {
        return;
    }
    iommu_mr = IOMMU_MEMORY_REGION(section->mr);
    start = section->offset_within_region;
    end = int128_get64(int128_sub(int128_add(int128_make64(start),
                                             section->size),
                                  int128_one()));
    vn = g_new0(VpriIommuNotifier, 1);
    vn->mr = section->mr;
    vn->x = x;
    iommu_notifier_init(&vn->n, vpri_iommu_unmap_notify,
                        IOMMU_NOTIFIER_UNMAP, start, end,
                        memory_region_iommu_attrs_to_index(
                            iommu_mr, MEMTXATTRS_UNSPECIFIED));
    if (memory_region_register_iommu_notifier(section->mr, &vn->n, &err)) {
        /* Without unmaps we cannot follow the guest's mappings. */
        warn_reportf_err(err, "vpri-host: IOVA translations of device %u "
                         "will not see IOMMU unmaps: ",
                         vpri_xlat_dev_id(x));
        g_free(vn);
        return;
    }
    QLIST_INSERT_HEAD(&x->notifiers, vn, next);
}

static void vpri_iommu_region_del(MemoryListener *l,
                                  MemoryRegionSection *section)
{
    VpriDeviceXlat *x = container_of(l, VpriDeviceXlat, listener);
    VpriIommuNotifier *vn, *tmp;

    QLIST_FOREACH_SAFE(vn, &x->notifiers, next, tmp) {
        if (vn->mr == section->mr &&
            vn->n.start == section->offset_within_region) {
            memory_region_unregister_iommu_notifier(vn->mr, &vn->n);
            QLIST_REMOVE(vn, next);
            g_free(vn);
        }
    }
    vpri_iommu_flush(x);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

void vpri_host_set_dma_space(VpriHost *h, uint32_t dev_id, AddressSpace *as)
{
    VpriHostDevice *d = &h->devs[dev_id];
    uint64_t npages = MAX(vpri_pab_npages(d->pab),
                          VPRI_IOVA_BITMAP_BYTES >> PAB_PAGE_SHIFT);
    VpriDeviceXlat *x;

    if (as == &address_space_memory || d->xlat) {
        return;         /* guest-physical DMA: the bitmap is set already */
    }
    x = g_new0(VpriDeviceXlat, 1);
    x->d = d;
    x->as = as;
    x->atc = g_hash_table_new(g_direct_hash, g_direct_equal);
    x->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                       g_free);
    QLIST_INIT(&x->notifiers);

    /* A fresh, empty IOVA-indexed bitmap: the device has no translation. */
    qemu_mutex_lock(&h->lock);
    vpri_pab_free(d->pab);
    vpri_access_tracker_free(d->tracker);
    d->pab = vpri_pab_new(npages);
    d->tracker = vpri_access_tracker_new(npages);
    vpri_pab_set_range(d->pab, 0, npages, PAB_NOT_PRESENT);
    d->xlat = x;
    qemu_mutex_unlock(&h->lock);

    x->listener.name = "vpri-host-iommu";
    x->listener.region_add = vpri_iommu_region_add;
    x->listener.region_del = vpri_iommu_region_del;
    memory_listener_register(&x->listener, as);
}

void vpri_iommu_detach(VpriHost *h, VpriHostDevice *d)
{
    VpriDeviceXlat *x = d->xlat;
    VpriIommuNotifier *vn, *tmp;

    if (!x) {
        return;
    }
    memory_listener_unregister(&x->listener);
    QLIST_FOREACH_SAFE(vn, &x->notifiers, next, tmp) {
        memory_region_unregister_iommu_notifier(vn->mr, &vn->n);
        g_free(vn);
    }
    qemu_mutex_lock(&h->xlat_lock);
    vpri_atc_drop_range(x, 0, UINT64_MAX >> PAB_PAGE_SHIFT);
    d->xlat = NULL;
    qemu_mutex_unlock(&h->xlat_lock);
    g_hash_table_destroy(x->atc);
    g_hash_table_destroy(x->pending);
    g_free(x);
}

/* ------------------------------------------------------------------ */
/* Faults                                                             */

/* The guest RAM page behind @mr + @xlat, or VPRI_ATC_NOT_RAM. */
static uint64_t vpri_iommu_ram_page(VpriHost *h, MemoryRegion *mr,
                                    hwaddr xlat)
{
    uint64_t page;

    if (!memory_region_is_ram(mr) ||
        !vpri_host_hva_to_page(h, qemu_map_ram_ptr(mr->ram_block, xlat),
                               &page)) {
        return VPRI_ATC_NOT_RAM;
    }
    return page;
}

/*
 * Translate @iova as the device's DMA would (main loop): remember where
 * it leads, and whether a write would be allowed too.
 */
void vpri_iommu_translate_fault(VpriHost *h, VpriHostDevice *d,
                                uint64_t iova, bool write)
{
    VpriDeviceXlat *x = d->xlat;
    VpriPendingXlat *p = g_new0(VpriPendingXlat, 1);
    MemoryRegion *mr;
    hwaddr xlat, plen = PAB_PAGE_SIZE;

    iova &= PAB_PAGE_MASK;
    qemu_mutex_lock(&h->xlat_lock);
    p->unmap_gen = x->unmap_gen;
    qemu_mutex_unlock(&h->xlat_lock);

    WITH_RCU_READ_LOCK_GUARD() {
        p->mapped = address_space_access_valid(x->as, iova, 1, write,
                                               MEMTXATTRS_UNSPECIFIED);
        mr = address_space_translate(x->as, iova, &xlat, &plen, write,
                                     MEMTXATTRS_UNSPECIFIED);
        p->ram_page = vpri_iommu_ram_page(h, mr, xlat);
        p->state = write || address_space_access_valid(
                                x->as, iova, 1, true, MEMTXATTRS_UNSPECIFIED)
                   ? PAB_READ_WRITE : PAB_READ_ONLY;
    }

    qemu_mutex_lock(&h->xlat_lock);
    if (!p->mapped) {
        x->refused++;
    }
    g_hash_table_replace(x->pending, GSIZE_TO_POINTER(iova >> PAB_PAGE_SHIFT),
                         p);
    qemu_mutex_unlock(&h->xlat_lock);
    if (!p->mapped) {
        qemu_log_mask(LOG_GUEST_ERROR, "vpri-host: device %u: DMA %s IOVA "
                      "0x%" PRIx64 " is not mapped by the IOMMU\n",
                      (unsigned)(d - h->devs), write ? "write to" : "read of",
                      iova);
    }
}

/* A handler serves a translated device's fault record. */
FaultStatus vpri_iommu_serve(VpriHost *h, VpriHostDevice *d,
                             const FaultRecord *rec)
{
    VpriDeviceXlat *x = d->xlat;
    uint64_t iova_page = rec->page_addr >> PAB_PAGE_SHIFT;
    VpriPendingXlat p;
    bool resident;

    qemu_mutex_lock(&h->xlat_lock);
    {
        VpriPendingXlat *pp = g_hash_table_lookup(x->pending,
                                                  GSIZE_TO_POINTER(iova_page));

        if (!pp) {
            /* Answered already (a coalesced record): let the DMA retry. */
            qemu_mutex_unlock(&h->xlat_lock);
            return FAULT_STATUS_RESOLVED;
        }
        p = *pp;
        g_hash_table_remove(x->pending, GSIZE_TO_POINTER(iova_page));
    }
    qemu_mutex_unlock(&h->xlat_lock);

    if (!p.mapped) {
        return FAULT_STATUS_FAILED;
    }
    if (p.ram_page != VPRI_ATC_NOT_RAM &&
        !vpri_host_page_in_ram(h, p.ram_page)) {
        return FAULT_STATUS_FAILED;
    }

    qemu_mutex_lock(&h->xlat_lock);
    if (p.unmap_gen != x->unmap_gen) {
        /* The guest unmapped something meanwhile: translate afresh. */
        qemu_mutex_unlock(&h->xlat_lock);
        return FAULT_STATUS_RESOLVED;
    }
    vpri_atc_insert(x, iova_page, p.ram_page, p.state);
    /*
     * An eviction that lowered the page's aliases before we inserted ours
     * left the page EVICTING or EVICTED: take ours back down too.
     */
    resident = p.ram_page == VPRI_ATC_NOT_RAM ||
               vpri_host_page_resident(h, p.ram_page);
    if (!resident) {
        vpri_atc_drop(x, iova_page, p.ram_page + 1);
    }
    qemu_mutex_unlock(&h->xlat_lock);
    return FAULT_STATUS_RESOLVED;
}

/*
 * Eviction: lower every IOVA entry that stands for RAM page @page, through
 * the device's eviction batch in @pb (at once for a device attached after
 * the batch began).
 */
void vpri_iommu_lower_page(VpriHost *h, uint64_t page, PabBatch **pb)
{
    GSList *l, *it;

    qemu_mutex_lock(&h->xlat_lock);
    l = g_hash_table_lookup(h->xlat_rmap, GSIZE_TO_POINTER(page));
    if (l) {
        g_hash_table_steal(h->xlat_rmap, GSIZE_TO_POINTER(page));
        for (it = l; it; it = it->next) {
            uint32_t id = vpri_rmap_dev(it->data);
            VpriHostDevice *d = &h->devs[id];
            uint64_t iova_page = vpri_rmap_iova_page(it->data);

            if (!d->xlat) {
                continue;
            }
            g_hash_table_remove(d->xlat->atc, GSIZE_TO_POINTER(iova_page));
            if (pb[id]) {
                vpri_pab_batch_lower(pb[id], iova_page);
            } else {
                vpri_pab_lower_range(d->pab, iova_page, 1, PAB_NOT_PRESENT);
            }
        }
        g_slist_free(l);
    }
    qemu_mutex_unlock(&h->xlat_lock);
}

void vpri_iommu_stats(VpriHost *h, VpriHostDevice *d, uint64_t *translations,
                      uint64_t *unmapped, uint64_t *refused)
{
    qemu_mutex_lock(&h->xlat_lock);
    *translations = d->xlat ? g_hash_table_size(d->xlat->atc) : 0;
    *unmapped = d->xlat ? d->xlat->unmaps : 0;
    *refused = d->xlat ? d->xlat->refused : 0;
    qemu_mutex_unlock(&h->xlat_lock);
}
