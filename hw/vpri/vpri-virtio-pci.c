/*
 * VPRI modern virtio-pci transport (virtio 1.2, section 4.1)
 *
 * An abstract PCI device: the common, ISR, device and notify structures in
 * one memory BAR, MSI-X in another, and the virtqueues run by the shared
 * fault-aware engine.  Every ring and buffer access of a subclass goes
 * through vp->dma_ops, which checks the PA-BITMAP before touching memory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/iolab/pci-stream.h"
#include "hw/qdev-properties.h"
#include "hw/core/cpu.h"
#include "qemu/error-report.h"
#include "migration/vmstate.h"
#include "system/runstate.h"
#include "system/cpus.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "hw/vpri/vpri-host.h"
#include "vpri-virtio-pci-internal.h"
#include "trace.h"

/* ISR status bits (virtio 1.2, 4.1.4.5) */
#define VPRI_VPCI_ISR_QUEUE  0x1
#define VPRI_VPCI_ISR_CONFIG VIRTIO_PCI_ISR_CONFIG

/*
 * The common configuration structure we expose (virtio 1.2, 4.1.4.3):
 * upstream's struct virtio_pci_modern_common_cfg up to queue_reset, no
 * administration virtqueues.  Its fields are addressed with upstream's
 * VIRTIO_PCI_COMMON_* offsets.
 */
#define VPRI_VPCI_COMMON_SIZE \
    offsetof(struct virtio_pci_modern_common_cfg, admin_queue_index)
QEMU_BUILD_BUG_ON(VPRI_VPCI_COMMON_SIZE != VIRTIO_PCI_COMMON_ADM_Q_IDX);
QEMU_BUILD_BUG_ON(offsetof(struct virtio_pci_common_cfg, queue_used_hi) !=
                  VIRTIO_PCI_COMMON_Q_USEDHI);
QEMU_BUILD_BUG_ON(VPRI_VPCI_COMMON_SIZE > VPRI_VPCI_REGION_SIZE);

/* Migrated chains: see vpri_virtio_pci_save_elem() */
void vpri_vpci_drop_inflight(VpriVirtioPCI *vp)
{
    g_free(vp->inflight);
    vp->inflight = NULL;
    vp->inflight_len = 0;
}

/* ------------------------------------------------------------------ */
/* DMA: the one path to guest memory                                  */

/*
 * With a host, the PA-BITMAP decides first, and the access stays in the
 * fence's in-flight set until the copy is done: a host that lowers the
 * entry meanwhile waits for us before it touches the page.
 */
static void vpri_vpci_free_ring_caches(VpriRingCaches *caches)
{
    for (int i = 0; i < VPRI_NR_RINGS; i++) {
        if (caches->ring[i].valid) {
            address_space_cache_destroy(&caches->ring[i].mrc);
        }
    }
    g_free(caches);
}

/*
 * Unpublish @q's ring mappings.  A reader inside rcu_read_lock() may
 * still hold them: they are freed once every such reader is gone.
 */
void vpri_vpci_drop_ring_caches(VpriQueue *q)
{
    VpriRingCaches *old = qatomic_read(&q->caches);

    if (old) {
        qatomic_rcu_set(&q->caches, NULL);
        call_rcu(old, vpri_vpci_free_ring_caches, rcu);
    }
}

/*
 * Map the three ring areas once, as QEMU's own virtio does: ring accesses
 * are many and small, and a full address-space lookup for each dominates
 * the cost of a request.  Areas that do not map as RAM in one piece stay
 * on the slow path.
 */
static VpriRingCaches *vpri_vpci_cache_rings(VpriVirtioPCI *vp, VpriQueue *q)
{
    const uint64_t base[VPRI_NR_RINGS] = { q->desc, q->driver, q->device };
    const uint64_t len[VPRI_NR_RINGS] = {
        VIRTQ_DESC_BYTES(q->size), VIRTQ_AVAIL_BYTES(q->size),
        VIRTQ_USED_BYTES(q->size),
    };
    VpriRingCaches *caches = g_new0(VpriRingCaches, 1);

    for (int i = 0; i < VPRI_NR_RINGS; i++) {
        VpriRingCache *rc = &caches->ring[i];
        int64_t got = address_space_cache_init(&rc->mrc,
                                               pci_get_address_space(
                                                   vpri_vpci_pci(vp)),
                                               base[i], len[i],
                                               i == VPRI_RING_DEVICE);

        rc->base = base[i];
        rc->len = len[i];
        rc->valid = got >= 0 && (uint64_t)got >= len[i];
        if (!rc->valid) {
            address_space_cache_destroy(&rc->mrc);
        }
    }
    qatomic_rcu_set(&q->caches, caches);
    return caches;
}

/*
 * Does [addr, addr + len) lie inside @rc?  Written so that no sum can
 * wrap: an access that ends at 2^64 is outside every ring.
 */
static bool vpri_vpci_ring_covers(const VpriRingCache *rc, uint64_t addr,
                                  uint32_t len)
{
    return rc->valid && addr >= rc->base && addr - rc->base < rc->len &&
           len <= rc->len - (addr - rc->base);
}

static MemTxResult vpri_dma_access(VpriVirtioPCI *vp, VpriQueue *q,
                                   uint64_t addr, void *buf, uint32_t len,
                                   bool write)
{
    if (q && q->enabled) {
        RCU_READ_LOCK_GUARD();
        VpriRingCaches *caches = qatomic_rcu_read(&q->caches);

        if (!caches) {
            caches = vpri_vpci_cache_rings(vp, q);
        }
        for (int i = 0; i < VPRI_NR_RINGS; i++) {
            VpriRingCache *rc = &caches->ring[i];
            uint64_t off = addr - rc->base;

            /*
             * Only the device ring's cache was set up for writing; a
             * guest may lay the rings over each other, and a write the
             * descriptor table's or driver ring's cache covers goes the
             * general way below.
             */
            if (!vpri_vpci_ring_covers(rc, addr, len) ||
                (write && i != VPRI_RING_DEVICE)) {
                continue;
            }
            if (!write) {
                return address_space_read_cached(&rc->mrc, off, buf, len);
            }
            if (address_space_write_cached(&rc->mrc, off, buf, len)) {
                return MEMTX_ERROR;
            }
            address_space_cache_invalidate(&rc->mrc, off, len);
            return MEMTX_OK;
        }
    }
    return pci_dma_rw(vpri_vpci_pci(vp), addr, buf, len,
                      write ? DMA_DIRECTION_FROM_DEVICE :
                              DMA_DIRECTION_TO_DEVICE,
                      MEMTXATTRS_UNSPECIFIED);
}

/*
 * With a host, the PA-BITMAP decides first, and the access stays in the
 * fence's in-flight set until the copy is done: a host that lowers the
 * entry meanwhile waits for us before it touches the page.
 */
static int vpri_dma_rw(VpriDmaCtx *ctx, uint64_t addr, void *buf,
                       uint32_t len, bool write, uint64_t *fault_addr)
{
    VpriVirtioPCI *vp = ctx->vp;
    PabDmaToken token;
    MemTxResult res;

    if (!vp->host) {
        res = vpri_dma_access(vp, ctx->q, addr, buf, len, write);
        return res == MEMTX_OK ? 0 : VIRTQ_ERROR;
    }
    switch (vpri_host_dma_begin(vp->host, vp->fault_device_id, addr, len,
                                write, &token, fault_addr)) {
    case PAB_OK:
        res = vpri_dma_access(vp, ctx->q, addr, buf, len, write);
        vpri_host_dma_end(vp->host, vp->fault_device_id, token);
        return res == MEMTX_OK ? 0 : VIRTQ_ERROR;
    case PAB_FAULT:
        vpri_host_dma_end(vp->host, vp->fault_device_id, token);
        return VIRTQ_FAULT;
    default:
        vpri_host_dma_end(vp->host, vp->fault_device_id, token);
        return VIRTQ_ERROR;
    }
}

/* The memory map changed (a BAR moved, bus mastering toggled...). */
static void vpri_vpci_listener_commit(MemoryListener *listener)
{
    VpriVirtioPCI *vp = container_of(listener, VpriVirtioPCI, listener);

    for (uint16_t i = 0; i < vp->num_queues; i++) {
        vpri_vpci_drop_ring_caches(&vp->queues[i]);
    }
}

int vpri_virtio_pci_map(VpriVirtioPCI *vp, uint64_t addr, uint32_t len,
                        bool write, void **host, uint64_t *fault_addr)
{
    DMADirection dir = write ? DMA_DIRECTION_FROM_DEVICE :
                               DMA_DIRECTION_TO_DEVICE;
    dma_addr_t mlen = len;
    void *p;

    /*
     * Map first, then check and hold what was really mapped: behind a
     * vIOMMU @addr is an IOVA, and only the mapping knows its RAM.
     * Mapping touches no memory, so a fault found afterwards is still
     * raised before any data moves.
     */
    p = pci_dma_map(vpri_vpci_pci(vp), addr, &mlen, dir);
    /*
     * Only guest RAM is mapped directly: anything else comes back in
     * QEMU's bounce buffer, which hides access errors.
     */
    if (!p || mlen < len || !memory_region_from_host(p, &(ram_addr_t){0})) {
        if (p) {
            pci_dma_unmap(vpri_vpci_pci(vp), p, mlen, dir, 0);
        }
        return VPRI_MAP_COPY;
    }
    if (vp->host) {
        PabResult r = vpri_host_dma_hold(vp->host, vp->fault_device_id,
                                         addr, len, write, p, fault_addr);

        if (r != PAB_OK) {
            pci_dma_unmap(vpri_vpci_pci(vp), p, mlen, dir, 0);
            return r == PAB_FAULT ? VIRTQ_FAULT : VIRTQ_ERROR;
        }
    }
    *host = p;
    return 0;
}

void vpri_virtio_pci_unmap(VpriVirtioPCI *vp, uint64_t addr, void *host,
                           uint32_t len, bool write, uint32_t access_len)
{
    /* Release before the unmap: the pointer names the held pages. */
    if (vp->host) {
        vpri_host_dma_release(vp->host, host, len);
    }
    pci_dma_unmap(vpri_vpci_pci(vp), host, len,
                  write ? DMA_DIRECTION_FROM_DEVICE : DMA_DIRECTION_TO_DEVICE,
                  access_len);
}

static int vpri_dma_read(void *opaque, uint64_t addr, void *buf,
                         uint32_t len, uint64_t *fault_addr)
{
    return vpri_dma_rw(opaque, addr, buf, len, false, fault_addr);
}

static int vpri_dma_write(void *opaque, uint64_t addr, const void *buf,
                          uint32_t len, uint64_t *fault_addr)
{
    return vpri_dma_rw(opaque, addr, (void *)buf, len, true, fault_addr);
}

/* ------------------------------------------------------------------ */
/* Interrupts                                                         */

static void vpri_vpci_raise(VpriVirtioPCI *vp, uint16_t vector, uint8_t isr)
{
    PCIDevice *pci = vpri_vpci_pci(vp);

    trace_vpri_vpci_interrupt(object_get_typename(OBJECT(vp)), vector, isr);
    /*
     * The config bit is set whatever the interrupt mechanism (virtio 1.2,
     * 4.1.4.5.1); the queue bit only matters for INTx.
     */
    if (isr & VPRI_VPCI_ISR_CONFIG) {
        vp->isr_status |= VPRI_VPCI_ISR_CONFIG;
    }
    if (msix_enabled(pci)) {
        /*
         * A guest cannot set a vector beyond the table (set_vector answers
         * NO_VECTOR), but a migration refused in post_load leaves what it
         * loaded in place, and the device still raises from it: the link
         * going down at quit, say.  msix_notify() asserts on such a vector.
         */
        if (vector < pci->msix_entries_nr) {
            msix_notify(pci, vector);
        }
        return;
    }
    vp->isr_status |= isr;
    pci_set_irq(pci, 1);
}

void vpri_virtio_pci_notify_queue(VpriVirtioPCI *vp, uint16_t index)
{
    VpriQueue *q = &vp->queues[index];

    if (!iolab_virtq_should_notify(&q->vq, &vp->dma_ops, &q->dma)) {
        return;
    }
    vpri_vpci_raise(vp, q->msix_vector, VPRI_VPCI_ISR_QUEUE);
}

static void vpri_vpci_notify_config(VpriVirtioPCI *vp)
{
    vp->config_generation++;
    vpri_vpci_raise(vp, vp->config_vector, VPRI_VPCI_ISR_CONFIG);
}

void vpri_virtio_pci_config_changed(VpriVirtioPCI *vp)
{
    if (vp->status & VIRTIO_CONFIG_S_DRIVER_OK) {
        vpri_vpci_notify_config(vp);
    }
}

void vpri_virtio_pci_guest_error(VpriVirtioPCI *vp, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_vpri_vpci_guest_error(object_get_typename(OBJECT(vp)), msg);
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %s\n",
                  object_get_typename(OBJECT(vp)), msg);
    if (vp->status & VIRTIO_CONFIG_S_DRIVER_OK &&
        !vpri_virtio_pci_broken(vp)) {
        vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        vpri_vpci_notify_config(vp);
    }
    vp->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* ------------------------------------------------------------------ */
/* Faults                                                             */

static void vpri_vpci_fault_resolved(void *opaque, uint16_t index, bool ok)
{
    VpriVirtioPCI *vp = opaque;
    VpriQueue *q = &vp->queues[index];

    trace_vpri_vpci_fault_resolved(object_get_typename(OBJECT(vp)), index, ok);
    q->blocked = false;
    q->fault_failed = !ok;
    vp->resume_pending |= 1ULL << index;
    vpri_host_account_stall(vp->host, vp->fault_device_id,
                            get_clock_realtime() - q->stall_start_ns);
    qemu_bh_schedule(vp->resume_bh);
}

/*
 * The vCPU that takes @q's interrupt: x86 MSI messages carry the
 * destination APIC ID in address bits 19:12.  -1 if unknown.
 */
static int vpri_vpci_queue_cpu(VpriVirtioPCI *vp, VpriQueue *q)
{
    PCIDevice *pci = vpri_vpci_pci(vp);
    MSIMessage msg;
    CPUState *cs;

    if (!msix_enabled(pci) || q->msix_vector == VIRTIO_NO_VECTOR) {
        return -1;
    }
    msg = msix_get_message(pci, q->msix_vector);
    cs = cpu_by_arch_id(extract64(msg.address, 12, 8));
    return cs ? cs->cpu_index : -1;
}

void vpri_virtio_pci_queue_fault(VpriVirtioPCI *vp, uint16_t index,
                                 uint64_t addr, bool write)
{
    VpriQueue *q = &vp->queues[index];

    if (q->blocked) {
        return;
    }
    trace_vpri_vpci_queue_fault(object_get_typename(OBJECT(vp)), index, addr,
                                write);
    q->blocked = true;
    q->fault_addr = addr;
    q->fault_write = write;
    q->stall_start_ns = get_clock_realtime();
    if (!vp->host) {
        /* Only a host's PA-BITMAP makes faults; nothing can resolve one. */
        vpri_virtio_pci_guest_error(vp, "queue %u: fault without a host",
                                    index);
        return;
    }
    vpri_host_raise_fault(vp->host, vp->fault_device_id, index, addr, write,
                          vpri_vpci_queue_cpu(vp, q));
}

/* Run every queue that is enabled and not blocked: after a fault resolves. */
static void vpri_vpci_resume_bh(void *opaque)
{
    VpriVirtioPCI *vp = opaque;
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    uint64_t pending = vp->resume_pending;

    if (vp->vm_stopped) {
        return;     /* the VM state handler reschedules us */
    }
    vp->resume_pending = 0;
    if (!(vp->status & VIRTIO_CONFIG_S_DRIVER_OK) ||
        vpri_virtio_pci_broken(vp)) {
        return;
    }
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriQueue *q = &vp->queues[i];

        if (k->resume_faulted_only && !(pending & (1ULL << i))) {
            continue;
        }
        if (q->enabled && !q->blocked) {
            k->queue_notify(vp, i);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reset                                                              */

static void vpri_vpci_reset_queues(VpriVirtioPCI *vp)
{
    PCIDevice *pci = PCI_DEVICE(vp);

    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriQueue *q = &vp->queues[i];

        if (q->msix_vector != VIRTIO_NO_VECTOR) {
            msix_vector_unuse(pci, q->msix_vector);
        }
        vpri_vpci_drop_ring_caches(q);
        iolab_virtq_init(&q->vq);
        q->size = q->max_size;
        q->msix_vector = VIRTIO_NO_VECTOR;
        q->desc = q->driver = q->device = 0;
        q->enabled = false;
        q->blocked = false;
        q->fault_failed = false;
    }
}

static void vpri_vpci_device_reset(VpriVirtioPCI *vp)
{
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);

    trace_vpri_vpci_reset(object_get_typename(OBJECT(vp)));
    if (k->reset) {
        k->reset(vp);
    }
    vpri_vpci_reset_queues(vp);
    if (vp->config_vector != VIRTIO_NO_VECTOR) {
        msix_vector_unuse(PCI_DEVICE(vp), vp->config_vector);
    }
    vp->config_vector = VIRTIO_NO_VECTOR;
    vp->guest_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_sel = 0;
    vp->status = 0;
    vp->isr_status = 0;
    vp->kick_pending = 0;
    vp->resume_pending = 0;
    /* Migrated chains not restarted yet belong to the old driver. */
    vpri_vpci_drop_inflight(vp);
    pci_set_irq(PCI_DEVICE(vp), 0);
}

/* ------------------------------------------------------------------ */
/* Common configuration                                               */

static uint16_t vpri_vpci_set_vector(VpriVirtioPCI *vp, uint16_t old,
                                     uint16_t new)
{
    PCIDevice *pci = PCI_DEVICE(vp);

    if (old != VIRTIO_NO_VECTOR) {
        msix_vector_unuse(pci, old);
    }
    /* An invalid vector reads back as NO_VECTOR, as the spec requires. */
    if (new >= pci->msix_entries_nr) {
        return VIRTIO_NO_VECTOR;
    }
    msix_vector_use(pci, new);
    return new;
}

static void vpri_vpci_enable_queue(VpriVirtioPCI *vp, VpriQueue *q)
{
    const char *err = NULL;

    if (q->size == 0 || (q->size & (q->size - 1)) || q->size > q->max_size) {
        vpri_virtio_pci_guest_error(vp, "queue size %u invalid (max %u)",
                                    q->size, q->max_size);
        return;
    }
    iolab_virtq_configure(&q->vq, q->size, q->desc, q->driver, q->device,
                    vpri_virtio_pci_has_feature(vp, VIRTIO_RING_F_EVENT_IDX),
                    vpri_virtio_pci_has_feature(vp,
                                                VIRTIO_RING_F_INDIRECT_DESC));
    err = iolab_virtq_error_reason(&q->vq);
    if (err) {
        vpri_virtio_pci_guest_error(vp, "queue %td: %s",
                                    q - vp->queues, err);
        return;
    }
    trace_vpri_vpci_queue_enable(object_get_typename(OBJECT(vp)),
                                 q - vp->queues, q->size, q->desc, q->driver,
                                 q->device);
    iolab_virtq_set_enabled(&q->vq, true);
    q->enabled = true;
}

static uint64_t vpri_vpci_common_read_reg(VpriVirtioPCI *vp, hwaddr addr);

static uint64_t vpri_vpci_common_read(void *opaque, hwaddr addr,
                                      unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    uint64_t val = vpri_vpci_common_read_reg(vp, addr);

    trace_vpri_vpci_common_read(object_get_typename(OBJECT(vp)), addr, size,
                                val);
    return val;
}

static uint64_t vpri_vpci_common_read_reg(VpriVirtioPCI *vp, hwaddr addr)
{
    VpriQueue *q = vp->queue_sel < vp->num_queues ?
                   &vp->queues[vp->queue_sel] : NULL;

    switch (addr) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        return vp->dfselect;
    case VIRTIO_PCI_COMMON_DF:
        return vp->dfselect < 2 ? vp->host_features >> (32 * vp->dfselect) : 0;
    case VIRTIO_PCI_COMMON_GFSELECT:
        return vp->gfselect;
    case VIRTIO_PCI_COMMON_GF:
        return vp->gfselect < 2 ?
               vp->guest_features >> (32 * vp->gfselect) : 0;
    case VIRTIO_PCI_COMMON_MSIX:
        return vp->config_vector;
    case VIRTIO_PCI_COMMON_NUMQ:
        return vp->num_queues;
    case VIRTIO_PCI_COMMON_STATUS:
        return vp->status;
    case VIRTIO_PCI_COMMON_CFGGENERATION:
        return vp->config_generation;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        return vp->queue_sel;
    }
    if (!q) {
        /* queue_size reads 0 for a queue that does not exist */
        return 0;
    }
    switch (addr) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        return q->size;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        return q->msix_vector;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        return q->enabled;
    case VIRTIO_PCI_COMMON_Q_NOFF:
        return vp->queue_sel;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
        return (uint32_t)q->desc;
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        return q->desc >> 32;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
        return (uint32_t)q->driver;
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        return q->driver >> 32;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
        return (uint32_t)q->device;
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        return q->device >> 32;
    case VIRTIO_PCI_COMMON_Q_NDATA:
        return vp->queue_sel;
    case VIRTIO_PCI_COMMON_Q_RESET:
        return 0;
    }
    return 0;
}

static void vpri_vpci_set_status(VpriVirtioPCI *vp, uint8_t val)
{
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    uint8_t old = vp->status;

    trace_vpri_vpci_set_status(object_get_typename(OBJECT(vp)), old, val);
    if (val == 0) {
        vpri_vpci_device_reset(vp);
        return;
    }
    if ((val & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
        /* The driver may only accept what we offered, and must take 1.0. */
        if ((vp->guest_features & ~vp->host_features) ||
            !(vp->guest_features & (1ULL << VIRTIO_F_VERSION_1))) {
            val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    /* NEEDS_RESET is ours to set, never the driver's to clear. */
    vp->status = val | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((val & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(old & VIRTIO_CONFIG_S_DRIVER_OK) && k->driver_ok) {
        k->driver_ok(vp);
    }
}

static void vpri_vpci_common_write(void *opaque, hwaddr addr, uint64_t val,
                                   unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    VpriQueue *q = vp->queue_sel < vp->num_queues ?
                   &vp->queues[vp->queue_sel] : NULL;
    bool features_locked = vp->status & VIRTIO_CONFIG_S_FEATURES_OK;

    trace_vpri_vpci_common_write(object_get_typename(OBJECT(vp)), addr, size,
                                 val);
    switch (addr) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        vp->dfselect = val;
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        vp->gfselect = val;
        return;
    case VIRTIO_PCI_COMMON_GF:
        if (features_locked || vp->gfselect > 1) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "%s: driver_feature write ignored (select %u%s)\n",
                          object_get_typename(OBJECT(vp)), vp->gfselect,
                          features_locked ? ", FEATURES_OK set" : "");
            return;
        }
        vp->guest_features = deposit64(vp->guest_features,
                                       32 * vp->gfselect, 32, val);
        return;
    case VIRTIO_PCI_COMMON_MSIX:
        vp->config_vector = vpri_vpci_set_vector(vp, vp->config_vector, val);
        return;
    case VIRTIO_PCI_COMMON_STATUS:
        vpri_vpci_set_status(vp, val);
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        vp->queue_sel = val;
        return;
    }
    if (!q) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: write to common config 0x%" HWADDR_PRIx
                      " with queue_select %u out of range\n",
                      object_get_typename(OBJECT(vp)), addr, vp->queue_sel);
        return;
    }
    if (q->enabled && addr != VIRTIO_PCI_COMMON_Q_MSIX && addr != VIRTIO_PCI_COMMON_Q_RESET) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: queue %u is enabled; write to 0x%" HWADDR_PRIx
                      " ignored\n",
                      object_get_typename(OBJECT(vp)), vp->queue_sel, addr);
        return;
    }
    switch (addr) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        q->size = val;
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        q->msix_vector = vpri_vpci_set_vector(vp, q->msix_vector, val);
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (val == 1) {
            vpri_vpci_enable_queue(vp, q);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
        q->desc = deposit64(q->desc, 0, 32, val);
        break;
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        q->desc = deposit64(q->desc, 32, 32, val);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
        q->driver = deposit64(q->driver, 0, 32, val);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        q->driver = deposit64(q->driver, 32, 32, val);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
        q->device = deposit64(q->device, 0, 32, val);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        q->device = deposit64(q->device, 32, 32, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: write to read-only common config 0x%" HWADDR_PRIx
                      "\n", object_get_typename(OBJECT(vp)), addr);
        break;
    }
}

static void vpri_vpci_kick_bh(void *opaque);

static const MemoryRegionOps vpri_vpci_common_ops = {
    .read = vpri_vpci_common_read,
    .write = vpri_vpci_common_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/* ------------------------------------------------------------------ */
/* ISR, device config, notify                                         */

static uint64_t vpri_vpci_isr_read(void *opaque, hwaddr addr, unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    uint8_t val = vp->isr_status;

    /* Reading the ISR acknowledges the INTx interrupt. */
    vp->isr_status = 0;
    pci_set_irq(PCI_DEVICE(vp), 0);
    return val;
}

static void vpri_vpci_isr_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR, "vpri-virtio-pci: ISR is read-only\n");
}

static const MemoryRegionOps vpri_vpci_isr_ops = {
    .read = vpri_vpci_isr_read,
    .write = vpri_vpci_isr_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

static uint64_t vpri_vpci_device_read(void *opaque, hwaddr addr,
                                      unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    g_autofree uint8_t *config = g_malloc0(k->config_size);

    if (addr + size > k->config_size) {
        return 0;
    }
    k->get_config(vp, config);
    return ldn_le_p(config + addr, size);
}

static void vpri_vpci_device_write(void *opaque, hwaddr addr, uint64_t val,
                                   unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    g_autofree uint8_t *config = g_malloc0(k->config_size);

    if (addr + size > k->config_size || !k->set_config) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: device config write at 0x%" HWADDR_PRIx
                      " ignored\n", object_get_typename(OBJECT(vp)), addr);
        return;
    }
    k->get_config(vp, config);
    stn_le_p(config + addr, size, val);
    k->set_config(vp, config);
}

static const MemoryRegionOps vpri_vpci_device_ops = {
    .read = vpri_vpci_device_read,
    .write = vpri_vpci_device_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

static uint64_t vpri_vpci_notify_read(void *opaque, hwaddr addr,
                                      unsigned size)
{
    return 0;
}

static void vpri_vpci_notify_write(void *opaque, hwaddr addr, uint64_t val,
                                   unsigned size)
{
    VpriVirtioPCI *vp = opaque;
    uint16_t index = addr / VPRI_VPCI_NOTIFY_MULT;
    VpriQueue *q;

    if (index >= vp->num_queues) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "%s: notify for queue %u, device has %u\n",
                      object_get_typename(OBJECT(vp)), index, vp->num_queues);
        return;
    }
    q = &vp->queues[index];
    trace_vpri_vpci_notify(object_get_typename(OBJECT(vp)), index);
    if (!(vp->status & VIRTIO_CONFIG_S_DRIVER_OK) ||
        vpri_virtio_pci_broken(vp) || !q->enabled) {
        return;
    }
    /*
     * From a vCPU, like an ioeventfd: the vCPU goes on at once and the
     * queue runs in the main loop, as it would on a device with its own
     * engine.  A doorbell written from the main loop itself (a qtest
     * driver) runs the queue at once: deferring it to the same thread's
     * next iteration would only add a round of the loop to every kick.
     */
    vp->kick_pending |= 1ULL << index;
    if (qemu_in_vcpu_thread()) {
        qemu_bh_schedule(vp->kick_bh);
    } else {
        vpri_vpci_kick_bh(vp);
    }
}

static void vpri_vpci_kick_bh(void *opaque)
{
    VpriVirtioPCI *vp = opaque;
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    uint64_t pending = vp->kick_pending;

    if (vp->vm_stopped) {
        return;     /* the VM state handler reschedules us */
    }
    vp->kick_pending = 0;
    while (pending) {
        uint16_t index = ctz64(pending);
        VpriQueue *q = &vp->queues[index];

        pending &= pending - 1;
        if (!(vp->status & VIRTIO_CONFIG_S_DRIVER_OK) ||
            vpri_virtio_pci_broken(vp) || !q->enabled) {
            continue;
        }
        /* A blocked queue runs again when its fault resolves. */
        if (!q->blocked) {
            k->queue_notify(vp, index);
        }
    }
}

void vpri_virtio_pci_kick_later(VpriVirtioPCI *vp, uint16_t index)
{
    vp->kick_pending |= 1ULL << index;
    qemu_bh_schedule(vp->kick_bh);
}

static const MemoryRegionOps vpri_vpci_notify_ops = {
    .read = vpri_vpci_notify_read,
    .write = vpri_vpci_notify_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/* ------------------------------------------------------------------ */
/* VM run state (migration: vpri-virtio-pci-migration.c)              */

/*
 * The VM starts: on a postcopy destination the host asks now for the
 * rings of every enabled queue, which the device looks at first, before
 * it faults on them (the host does nothing otherwise).  The subclasses'
 * restart hooks then ask for the buffers of the chains carried over
 * (vpri_virtio_pci_prefetch_inflight()); receive buffers posted to a NIC
 * follow once it reads their descriptors (vpri_host_dma_arm()).
 */
static void vpri_vpci_prefetch_rings(VpriVirtioPCI *vp)
{
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriQueue *q = &vp->queues[i];

        if (!q->enabled) {
            continue;
        }
        vpri_host_prefetch(vp->host, vp->fault_device_id, q->desc,
                           VIRTQ_DESC_BYTES(q->size));
        vpri_host_prefetch(vp->host, vp->fault_device_id, q->driver,
                           VIRTQ_AVAIL_BYTES(q->size));
        vpri_host_prefetch(vp->host, vp->fault_device_id, q->device,
                           VIRTQ_USED_BYTES(q->size));
    }
}

static void vpri_vpci_vm_state_change(void *opaque, bool running,
                                      RunState state)
{
    VpriVirtioPCI *vp = opaque;
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);

    vp->vm_stopped = !running;
    if (!running) {
        return;
    }
    if (vp->host) {
        vpri_vpci_prefetch_rings(vp);
    }
    if (k->restart) {
        k->restart(vp);
    }
    vpri_vpci_drop_inflight(vp);
    if (vp->kick_pending) {
        qemu_bh_schedule(vp->kick_bh);
    }
    if (vp->resume_pending) {
        qemu_bh_schedule(vp->resume_bh);
    }
}

/* ------------------------------------------------------------------ */
/* Realize                                                            */

/*
 * A virtio vendor capability (virtio 1.2, 4.1.4), built as upstream's
 * struct virtio_pci_notify_cap (whose first member is the plain struct
 * virtio_pci_cap); pci_add_capability() fills in cap_vndr and cap_next.
 */
static void vpri_vpci_add_cap(PCIDevice *pci, uint8_t cfg_type,
                              uint32_t offset, uint32_t length,
                              uint32_t notify_mult)
{
    uint8_t caplen = notify_mult ? sizeof(struct virtio_pci_notify_cap) :
                                   sizeof(struct virtio_pci_cap);
    struct virtio_pci_notify_cap cap = {
        .cap = {
            .cap_len = caplen,
            .cfg_type = cfg_type,
            .bar = VPRI_VPCI_MODERN_BAR,
            .offset = cpu_to_le32(offset),
            .length = cpu_to_le32(length),
        },
        .notify_off_multiplier = cpu_to_le32(notify_mult),
    };
    int pos = pci_add_capability(pci, PCI_CAP_ID_VNDR, 0, caplen,
                                 &error_abort);

    QEMU_BUILD_BUG_ON(offsetof(struct virtio_pci_cap, cap_len) !=
                      VIRTIO_PCI_CAP_LEN);
    memcpy(pci->config + pos + VIRTIO_PCI_CAP_LEN, &cap.cap.cap_len,
           caplen - VIRTIO_PCI_CAP_LEN);
}

bool vpri_virtio_pci_realize(VpriVirtioPCI *vp, uint16_t num_queues,
                             uint16_t queue_size, Error **errp)
{
    VpriVirtioPCIClass *k = VPRI_VIRTIO_PCI_GET_CLASS(vp);
    PCIDevice *pci = PCI_DEVICE(vp);
    Object *obj = OBJECT(vp);

    if (num_queues == 0 || num_queues > VPRI_VPCI_MAX_QUEUES) {
        error_setg(errp, "number of queues must be 1..%u, not %u",
                   VPRI_VPCI_MAX_QUEUES, num_queues);
        return false;
    }
    if (queue_size < 2 || queue_size > VPRI_VPCI_QUEUE_MAX_SIZE ||
        (queue_size & (queue_size - 1))) {
        error_setg(errp, "queue-size must be a power of 2 in 2..%u, not %u",
                   VPRI_VPCI_QUEUE_MAX_SIZE, queue_size);
        return false;
    }
    if (vp->host) {
        /* The device says what its DMA is like; the host does not guess. */
        int id = vpri_host_attach(vp->host, DEVICE(vp),
                                  k->virtio_device_id == VIRTIO_ID_BLOCK ?
                                  VPRI_DMA_BLOCK : VPRI_DMA_NET, num_queues,
                                  vpri_vpci_fault_resolved, vp, errp);

        if (id < 0) {
            return false;
        }
        vp->fault_device_id = id;
        vpri_host_set_dma_space(vp->host, vp->fault_device_id,
                                pci_device_iommu_address_space(pci));
    }

    pci_config_set_vendor_id(pci->config, PCI_VENDOR_ID_REDHAT_QUMRANET);
    pci_config_set_device_id(pci->config, 0x1040 + k->virtio_device_id);
    pci_config_set_class(pci->config, k->pci_class);
    pci_config_set_revision(pci->config, 1);   /* modern-only device */
    pci_set_word(pci->config + PCI_SUBSYSTEM_VENDOR_ID,
                 PCI_VENDOR_ID_REDHAT_QUMRANET);
    pci_set_word(pci->config + PCI_SUBSYSTEM_ID, 0x40);
    pci->config[PCI_INTERRUPT_PIN] = IOLAB_PCI_INTX_PIN;

    vp->num_queues = num_queues;
    vp->queues = g_new0(VpriQueue, num_queues);
    for (uint16_t i = 0; i < num_queues; i++) {
        vp->queues[i].max_size = queue_size;
        vp->queues[i].msix_vector = VIRTIO_NO_VECTOR;
        vp->queues[i].dma = (VpriDmaCtx) { .vp = vp, .q = &vp->queues[i] };
    }
    vp->config_vector = VIRTIO_NO_VECTOR;
    vp->dma_ops.read = vpri_dma_read;
    vp->dma_ops.write = vpri_dma_write;
    vp->host_features = k->get_features(vp) | (1ULL << VIRTIO_F_VERSION_1);
    vpri_vpci_reset_queues(vp);

    memory_region_init(&vp->bar, obj, "vpri-virtio-pci-modern",
                       VPRI_VPCI_BAR_SIZE);
    memory_region_init_io(&vp->common, obj, &vpri_vpci_common_ops, vp,
                          "vpri-common", VPRI_VPCI_REGION_SIZE);
    memory_region_init_io(&vp->isr, obj, &vpri_vpci_isr_ops, vp,
                          "vpri-isr", VPRI_VPCI_REGION_SIZE);
    memory_region_init_io(&vp->device, obj, &vpri_vpci_device_ops, vp,
                          "vpri-device", VPRI_VPCI_REGION_SIZE);
    memory_region_init_io(&vp->notify, obj, &vpri_vpci_notify_ops, vp,
                          "vpri-notify", VPRI_VPCI_REGION_SIZE);
    memory_region_add_subregion(&vp->bar, VPRI_VPCI_COMMON_OFFSET,
                                &vp->common);
    memory_region_add_subregion(&vp->bar, VPRI_VPCI_ISR_OFFSET, &vp->isr);
    memory_region_add_subregion(&vp->bar, VPRI_VPCI_DEVICE_OFFSET,
                                &vp->device);
    memory_region_add_subregion(&vp->bar, VPRI_VPCI_NOTIFY_OFFSET,
                                &vp->notify);
    pci_register_bar(pci, VPRI_VPCI_MODERN_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &vp->bar);

    vpri_vpci_add_cap(pci, VIRTIO_PCI_CAP_COMMON_CFG,
                      VPRI_VPCI_COMMON_OFFSET, VPRI_VPCI_COMMON_SIZE, 0);
    vpri_vpci_add_cap(pci, VIRTIO_PCI_CAP_ISR_CFG,
                      VPRI_VPCI_ISR_OFFSET, 1, 0);
    vpri_vpci_add_cap(pci, VIRTIO_PCI_CAP_DEVICE_CFG,
                      VPRI_VPCI_DEVICE_OFFSET, k->config_size, 0);
    vpri_vpci_add_cap(pci, VIRTIO_PCI_CAP_NOTIFY_CFG,
                      VPRI_VPCI_NOTIFY_OFFSET,
                      num_queues * VPRI_VPCI_NOTIFY_MULT,
                      VPRI_VPCI_NOTIFY_MULT);

    if (msix_init_exclusive_bar(pci, num_queues + 1, VPRI_VPCI_MSIX_BAR,
                                errp)) {
        if (vp->host) {
            vpri_host_detach(vp->host, vp->fault_device_id);
        }
        return false;
    }
    vp->listener.commit = vpri_vpci_listener_commit;
    vp->listener.name = "vpri-virtio-pci";
    memory_listener_register(&vp->listener, pci_get_address_space(pci));
    vp->resume_bh = qemu_bh_new_guarded(vpri_vpci_resume_bh, vp,
                                        &DEVICE(vp)->mem_reentrancy_guard);
    vp->kick_bh = qemu_bh_new_guarded(vpri_vpci_kick_bh, vp,
                                      &DEVICE(vp)->mem_reentrancy_guard);
    vp->vm_stopped = !runstate_is_running();
    vp->vm_state_entry = qdev_add_vm_change_state_handler(
        DEVICE(vp), vpri_vpci_vm_state_change, vp);
    return true;
}

void vpri_virtio_pci_unrealize(VpriVirtioPCI *vp)
{
    memory_listener_unregister(&vp->listener);
    vpri_vpci_reset_queues(vp);
    if (vp->host) {
        vpri_host_detach(vp->host, vp->fault_device_id);
    }
    qemu_bh_delete(vp->resume_bh);
    qemu_bh_delete(vp->kick_bh);
    qemu_del_vm_change_state_handler(vp->vm_state_entry);
    vpri_vpci_drop_inflight(vp);
    msix_uninit_exclusive_bar(PCI_DEVICE(vp));
    g_free(vp->queues);
}

static void vpri_vpci_qdev_reset(DeviceState *dev)
{
    vpri_vpci_device_reset(VPRI_VIRTIO_PCI(dev));
}

static const Property vpri_vpci_properties[] = {
    DEFINE_PROP_LINK("host", VpriVirtioPCI, host, TYPE_VPRI_HOST, VpriHost *),
};

static void vpri_vpci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    device_class_set_legacy_reset(dc, vpri_vpci_qdev_reset);
    device_class_set_props(dc, vpri_vpci_properties);
}

static const TypeInfo vpri_vpci_info = {
    .name = TYPE_VPRI_VIRTIO_PCI,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VpriVirtioPCI),
    .class_size = sizeof(VpriVirtioPCIClass),
    .class_init = vpri_vpci_class_init,
    .abstract = true,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { }
    },
};

static void vpri_vpci_register_types(void)
{
    type_register_static(&vpri_vpci_info);
}

type_init(vpri_vpci_register_types)
