/*
 * vpri-host, middle layer: devices whose DMA goes through a vIOMMU
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
 * Layering (vpri-iommu.h): this file calls only the residency layer below
 * it; evictions reach it through the hooks it registers there.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/rcu.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "vpri-iommu.h"
#include "trace.h"

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
    VpriXlatDevice *x;
    QLIST_ENTRY(VpriIommuNotifier) next;
} VpriIommuNotifier;

struct VpriXlat {
    VpriResidency *res;
    QemuMutex lock;
    /* Under lock: */
    GHashTable *rmap;           /* RAM page -> GSList of (device, IOVA) */
    VpriXlatDevice *devs[VPRI_EVICT_MAX_SLOTS];
};

struct VpriXlatDevice {
    VpriXlat *xt;
    uint32_t dev_id;
    PaBitmap *pab;
    AddressSpace *as;
    MemoryListener listener;
    QLIST_HEAD(, VpriIommuNotifier) notifiers;
    /* Under xt->lock: */
    GHashTable *atc;            /* IOVA page -> RAM page + 1 */
    GHashTable *pending;        /* IOVA page -> VpriPendingXlat */
    uint64_t unmap_gen;
    uint64_t unmaps;            /* IOVA pages dropped on IOMMU unmaps */
    uint64_t refused;           /* faults the IOMMU did not translate */
};

/* Reverse map keys and values: (device, IOVA page) packed in a pointer. */
#define VPRI_RMAP_DEV_BITS 6
QEMU_BUILD_BUG_ON(VPRI_EVICT_MAX_SLOTS > (1 << VPRI_RMAP_DEV_BITS));

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

/* ------------------------------------------------------------------ */
/* The ATC and the reverse map; all under xt->lock                    */

static void vpri_rmap_remove(VpriXlat *xt, uint64_t ram_page, gpointer v)
{
    gpointer key = GSIZE_TO_POINTER(ram_page);
    GSList *l = g_hash_table_lookup(xt->rmap, key);

    g_hash_table_steal(xt->rmap, key);
    l = g_slist_remove(l, v);
    if (l) {
        g_hash_table_insert(xt->rmap, key, l);
    } else {
        g_hash_table_remove(xt->rmap, key);
    }
}

/* Forget one IOVA page and lower its entry; no fence: nothing is reused. */
static void vpri_atc_drop(VpriXlatDevice *x, uint64_t iova_page,
                          uint64_t atc_value)
{
    if (atc_value != VPRI_ATC_NOT_RAM) {
        vpri_rmap_remove(x->xt, atc_value - 1,
                         vpri_rmap_pack(x->dev_id, iova_page));
    }
    g_hash_table_remove(x->atc, GSIZE_TO_POINTER(iova_page));
    vpri_pab_lower_range(x->pab, iova_page, 1, PAB_NOT_PRESENT);
}

static void vpri_atc_insert(VpriXlatDevice *x, uint64_t iova_page,
                            uint64_t ram_page, PabState state)
{
    VpriXlat *xt = x->xt;
    gpointer old = g_hash_table_lookup(x->atc, GSIZE_TO_POINTER(iova_page));
    uint64_t value = ram_page == VPRI_ATC_NOT_RAM ? ram_page : ram_page + 1;

    if (old) {
        vpri_atc_drop(x, iova_page, GPOINTER_TO_SIZE(old));
    }
    g_hash_table_insert(x->atc, GSIZE_TO_POINTER(iova_page),
                        GSIZE_TO_POINTER(value));
    if (ram_page != VPRI_ATC_NOT_RAM) {
        gpointer key = GSIZE_TO_POINTER(ram_page);
        GSList *l = g_hash_table_lookup(xt->rmap, key);

        /* Steal first: replacing the value would free the list. */
        g_hash_table_steal(xt->rmap, key);
        l = g_slist_prepend(l, vpri_rmap_pack(x->dev_id, iova_page));
        g_hash_table_insert(xt->rmap, key, l);
    }
    vpri_pab_raise_range(x->pab, iova_page, 1, state);
}

/* Drop every translation in [@first, @last] (IOVA pages). */
static void vpri_atc_drop_range(VpriXlatDevice *x, uint64_t first,
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
    VpriXlat *xt = vn->x->xt;
    uint64_t first = e->iova >> PAB_PAGE_SHIFT;
    uint64_t last = (e->iova + e->addr_mask) >> PAB_PAGE_SHIFT;

    qemu_mutex_lock(&xt->lock);
    vpri_atc_drop_range(vn->x, first, last);
    qemu_mutex_unlock(&xt->lock);
    trace_vpri_iommu_unmap(vn->x->dev_id, e->iova, e->addr_mask);
}

/* The device's address space changed shape (DMA remapping switched on or
 * off, an IOMMU region came or went): no translation can be trusted. */
static void vpri_iommu_flush(VpriXlatDevice *x)
{
    qemu_mutex_lock(&x->xt->lock);
    vpri_atc_drop_range(x, 0, UINT64_MAX >> PAB_PAGE_SHIFT);
    qemu_mutex_unlock(&x->xt->lock);
    trace_vpri_iommu_flush(x->dev_id);
}

static void vpri_iommu_region_add(MemoryListener *l,
                                  MemoryRegionSection *section)
{
    VpriXlatDevice *x = container_of(l, VpriXlatDevice, listener);
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
                         "will not see IOMMU unmaps: ", x->dev_id);
        g_free(vn);
        return;
    }
    QLIST_INSERT_HEAD(&x->notifiers, vn, next);
}

static void vpri_iommu_region_del(MemoryListener *l,
                                  MemoryRegionSection *section)
{
    VpriXlatDevice *x = container_of(l, VpriXlatDevice, listener);
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
/* Eviction hooks (vpri-residency.h)                                  */

/*
 * Lower every IOVA entry that stands for one of the RAM pages, through
 * the device's eviction batch, and forget those translations.
 */
static void *vpri_xlat_evict_lower(void *opaque, const uint64_t *pages,
                                   const uint64_t *gpas, unsigned n)
{
    VpriXlat *xt = opaque;
    VpriEvictBatches *eb = NULL;

    qemu_mutex_lock(&xt->lock);
    for (unsigned i = 0; i < n; i++) {
        gpointer key = GSIZE_TO_POINTER(pages[i]);
        GSList *l = g_hash_table_lookup(xt->rmap, key);

        if (!l) {
            continue;
        }
        g_hash_table_steal(xt->rmap, key);
        for (GSList *it = l; it; it = it->next) {
            VpriXlatDevice *x = xt->devs[vpri_rmap_dev(it->data)];
            uint64_t iova_page = vpri_rmap_iova_page(it->data);

            if (!x) {
                continue;
            }
            g_hash_table_remove(x->atc, GSIZE_TO_POINTER(iova_page));
            if (!eb) {
                eb = vpri_evict_batches_new();
            }
            vpri_evict_batches_lower(eb, x->dev_id, x->pab, iova_page);
        }
        g_slist_free(l);
    }
    qemu_mutex_unlock(&xt->lock);
    if (eb) {
        vpri_evict_batches_sync(eb);
    }
    return eb;
}

static void vpri_xlat_evict_flush(void *opaque, void *ctx, uint64_t *fences,
                                  uint64_t *deferred)
{
    vpri_evict_batches_finish(ctx, fences, deferred);
}

static const VpriResidencyHooks vpri_xlat_residency_hooks = {
    .evict_lower = vpri_xlat_evict_lower,
    .evict_flush = vpri_xlat_evict_flush,
};

/* ------------------------------------------------------------------ */
/* Set-up                                                             */

VpriXlat *vpri_xlat_new(VpriResidency *res)
{
    VpriXlat *xt = g_new0(VpriXlat, 1);

    xt->res = res;
    qemu_mutex_init(&xt->lock);
    xt->rmap = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                     (GDestroyNotify)g_slist_free);
    vpri_residency_add_hooks(res, &vpri_xlat_residency_hooks, xt);
    return xt;
}

void vpri_xlat_free(VpriXlat *xt)
{
    if (!xt) {
        return;
    }
    g_hash_table_destroy(xt->rmap);
    qemu_mutex_destroy(&xt->lock);
    g_free(xt);
}

VpriXlatDevice *vpri_xlat_attach(VpriXlat *xt, uint32_t dev_id,
                                 PaBitmap *pab, AddressSpace *as)
{
    VpriXlatDevice *x = g_new0(VpriXlatDevice, 1);

    assert(dev_id < VPRI_EVICT_MAX_SLOTS);
    x->xt = xt;
    x->dev_id = dev_id;
    x->pab = pab;
    x->as = as;
    x->atc = g_hash_table_new(g_direct_hash, g_direct_equal);
    x->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                       g_free);
    QLIST_INIT(&x->notifiers);
    qemu_mutex_lock(&xt->lock);
    assert(!xt->devs[dev_id]);
    xt->devs[dev_id] = x;
    qemu_mutex_unlock(&xt->lock);

    x->listener.name = "vpri-host-iommu";
    x->listener.region_add = vpri_iommu_region_add;
    x->listener.region_del = vpri_iommu_region_del;
    memory_listener_register(&x->listener, as);
    return x;
}

void vpri_xlat_detach(VpriXlatDevice *x)
{
    VpriXlat *xt = x->xt;
    VpriIommuNotifier *vn, *tmp;

    memory_listener_unregister(&x->listener);
    QLIST_FOREACH_SAFE(vn, &x->notifiers, next, tmp) {
        memory_region_unregister_iommu_notifier(vn->mr, &vn->n);
        g_free(vn);
    }
    qemu_mutex_lock(&xt->lock);
    vpri_atc_drop_range(x, 0, UINT64_MAX >> PAB_PAGE_SHIFT);
    xt->devs[x->dev_id] = NULL;
    qemu_mutex_unlock(&xt->lock);
    g_hash_table_destroy(x->atc);
    g_hash_table_destroy(x->pending);
    g_free(x);
}

/* ------------------------------------------------------------------ */
/* Faults                                                             */

/* The guest RAM page behind @mr + @xlat, or VPRI_ATC_NOT_RAM. */
static uint64_t vpri_iommu_ram_page(VpriXlat *xt, MemoryRegion *mr,
                                    hwaddr xlat)
{
    uint64_t page;

    if (!memory_region_is_ram(mr) ||
        !vpri_residency_hva_to_page(xt->res,
                                    qemu_map_ram_ptr(mr->ram_block, xlat),
                                    &page)) {
        return VPRI_ATC_NOT_RAM;
    }
    return page;
}

/*
 * Translate @iova as the device's DMA would (main loop): remember where
 * it leads, and whether a write would be allowed too.
 */
void vpri_xlat_translate_fault(VpriXlatDevice *x, uint64_t iova, bool write)
{
    VpriXlat *xt = x->xt;
    VpriPendingXlat *p = g_new0(VpriPendingXlat, 1);
    MemoryRegion *mr;
    hwaddr xlat, plen = PAB_PAGE_SIZE;

    iova &= PAB_PAGE_MASK;
    qemu_mutex_lock(&xt->lock);
    p->unmap_gen = x->unmap_gen;
    qemu_mutex_unlock(&xt->lock);

    WITH_RCU_READ_LOCK_GUARD() {
        p->mapped = address_space_access_valid(x->as, iova, 1, write,
                                               MEMTXATTRS_UNSPECIFIED);
        mr = address_space_translate(x->as, iova, &xlat, &plen, write,
                                     MEMTXATTRS_UNSPECIFIED);
        p->ram_page = vpri_iommu_ram_page(xt, mr, xlat);
        p->state = write || address_space_access_valid(
                                x->as, iova, 1, true, MEMTXATTRS_UNSPECIFIED)
                   ? PAB_READ_WRITE : PAB_READ_ONLY;
    }

    qemu_mutex_lock(&xt->lock);
    if (!p->mapped) {
        x->refused++;
    }
    g_hash_table_replace(x->pending, GSIZE_TO_POINTER(iova >> PAB_PAGE_SHIFT),
                         p);
    qemu_mutex_unlock(&xt->lock);
    trace_vpri_iommu_translate(x->dev_id, iova, write, p->mapped,
                               p->ram_page);
    if (!p->mapped) {
        qemu_log_mask(LOG_GUEST_ERROR, "vpri-host: device %u: DMA %s IOVA "
                      "0x%" PRIx64 " is not mapped by the IOMMU\n",
                      x->dev_id, write ? "write to" : "read of", iova);
    }
}

/* A handler serves a translated device's fault record. */
FaultStatus vpri_xlat_serve(VpriXlatDevice *x, uint64_t iova)
{
    VpriXlat *xt = x->xt;
    uint64_t iova_page = iova >> PAB_PAGE_SHIFT;
    VpriPendingXlat p;
    bool resident;

    qemu_mutex_lock(&xt->lock);
    {
        VpriPendingXlat *pp = g_hash_table_lookup(x->pending,
                                                  GSIZE_TO_POINTER(iova_page));

        if (!pp) {
            /* Answered already (a coalesced record): let the DMA retry. */
            qemu_mutex_unlock(&xt->lock);
            return FAULT_STATUS_RESOLVED;
        }
        p = *pp;
        g_hash_table_remove(x->pending, GSIZE_TO_POINTER(iova_page));
    }
    qemu_mutex_unlock(&xt->lock);

    if (!p.mapped) {
        return FAULT_STATUS_FAILED;
    }
    if (p.ram_page != VPRI_ATC_NOT_RAM &&
        !vpri_residency_page_in(xt->res, p.ram_page)) {
        return FAULT_STATUS_FAILED;
    }

    qemu_mutex_lock(&xt->lock);
    if (p.unmap_gen != x->unmap_gen) {
        /* The guest unmapped something meanwhile: translate afresh. */
        qemu_mutex_unlock(&xt->lock);
        return FAULT_STATUS_RESOLVED;
    }
    vpri_atc_insert(x, iova_page, p.ram_page, p.state);
    /*
     * An eviction that lowered the page's aliases before we inserted ours
     * left the page EVICTING or EVICTED: take ours back down too.
     */
    resident = p.ram_page == VPRI_ATC_NOT_RAM ||
               vpri_residency_page_resident(xt->res, p.ram_page);
    if (!resident) {
        vpri_atc_drop(x, iova_page, p.ram_page + 1);
    }
    qemu_mutex_unlock(&xt->lock);
    return FAULT_STATUS_RESOLVED;
}

void vpri_xlat_stats(VpriXlatDevice *x, uint64_t *translations,
                     uint64_t *unmapped, uint64_t *refused)
{
    qemu_mutex_lock(&x->xt->lock);
    *translations = g_hash_table_size(x->atc);
    *unmapped = x->unmaps;
    *refused = x->refused;
    qemu_mutex_unlock(&x->xt->lock);
}
