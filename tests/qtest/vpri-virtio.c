/*
 * A small modern virtio-pci driver for qtest (iolab's own helper).
 *
 * Written from the virtio 1.2 specification; see vpri-virtio.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "vpri-virtio.h"

/* Vendor capability layout (4.1.4): struct virtio_pci_cap */
#define CAP_LEN         2
#define CAP_CFG_TYPE    3
#define CAP_BAR         4
#define CAP_OFFSET      8
#define CAP_LENGTH      12
#define CAP_NOTIFY_MULT 16

#define CFG_COMMON      1
#define CFG_NOTIFY      2
#define CFG_ISR         3
#define CFG_DEVICE      4

/* Split ring layout (2.7) */
#define DESC_SIZE       16
#define AVAIL_FLAGS     0
#define AVAIL_IDX       2
#define AVAIL_RING      4
#define USED_FLAGS      0
#define USED_IDX        2
#define USED_RING       4
#define USED_ELEM_SIZE  8

/* ------------------------------------------------------------------ */
/* Discovery                                                          */

typedef struct FindCtx {
    int devfn;
} FindCtx;

static void find_cb(QPCIDevice *dev, int devfn, void *opaque)
{
    FindCtx *ctx = opaque;

    if (ctx->devfn < 0) {
        ctx->devfn = devfn;
    }
    g_free(dev);
}

static void map_region(VVDev *d, VVRegion *r, QPCIBar *bars, bool *mapped)
{
    if (!r->present) {
        return;
    }
    g_assert_cmpint(r->bar, <=, 5);
    if (!mapped[r->bar]) {
        bars[r->bar] = qpci_iomap(d->pdev, r->bar, NULL);
        mapped[r->bar] = true;
    }
    r->token = bars[r->bar];
}

VVDev *vv_dev_find(QTestState *qts, QPCIBus *bus, QGuestAllocator *alloc,
                   uint16_t vendor, uint16_t device)
{
    FindCtx ctx = { .devfn = -1 };
    QPCIBar bars[6];
    bool mapped[6] = { false };
    VVDev *d;
    uint8_t pos;

    qpci_device_foreach(bus, vendor, device, find_cb, &ctx);
    if (ctx.devfn < 0) {
        return NULL;
    }
    d = g_new0(VVDev, 1);
    d->qts = qts;
    d->alloc = alloc;
    d->bus = bus;
    d->devfn = ctx.devfn;
    d->pdev = qpci_device_find(bus, ctx.devfn);
    g_assert(d->pdev);

    /* Walk the vendor-specific capabilities (4.1.4) */
    for (pos = qpci_find_capability(d->pdev, PCI_CAP_ID_VNDR, 0); pos;
         pos = qpci_find_capability(d->pdev, PCI_CAP_ID_VNDR, pos)) {
        uint8_t type = qpci_config_readb(d->pdev, pos + CAP_CFG_TYPE);
        VVRegion *r = NULL;

        switch (type) {
        case CFG_COMMON:
            r = &d->common;
            break;
        case CFG_NOTIFY:
            r = &d->notify;
            break;
        case CFG_ISR:
            r = &d->isr;
            break;
        case CFG_DEVICE:
            r = &d->device;
            break;
        default:
            continue;   /* PCI cfg access, shared memory, vendor: unused */
        }
        /* The first capability of a type is the preferred one */
        if (r->present) {
            continue;
        }
        r->present = true;
        r->bar = qpci_config_readb(d->pdev, pos + CAP_BAR);
        r->offset = qpci_config_readl(d->pdev, pos + CAP_OFFSET);
        r->length = qpci_config_readl(d->pdev, pos + CAP_LENGTH);
        d->cap_pos[type] = pos;
        if (type == CFG_NOTIFY) {
            d->notify_mult = qpci_config_readl(d->pdev,
                                               pos + CAP_NOTIFY_MULT);
        }
    }

    map_region(d, &d->common, bars, mapped);
    map_region(d, &d->isr, bars, mapped);
    map_region(d, &d->device, bars, mapped);
    map_region(d, &d->notify, bars, mapped);
    qpci_device_enable(d->pdev);
    return d;
}

static void vv_queue_free_mem(VVQueue *q)
{
    if (!q->next) {
        return;
    }
    for (uint32_t i = 0; i < q->size; i++) {
        if (q->indirect[i]) {
            guest_free(q->dev->alloc, q->indirect[i]);
        }
    }
    if (q->ring_mem) {
        guest_free(q->dev->alloc, q->ring_mem);
    }
    g_free(q->next);
    g_free(q->chain_len);
    g_free(q->indirect);
    q->next = NULL;
    q->chain_len = NULL;
    q->indirect = NULL;
    q->ring_mem = 0;
    q->enabled = false;
}

void vv_dev_free(VVDev *d)
{
    if (!d) {
        return;
    }
    for (uint16_t i = 0; d->queues && i < d->num_queues; i++) {
        vv_queue_free_mem(&d->queues[i]);
    }
    g_free(d->queues);
    if (d->msix) {
        qpci_msix_disable(d->pdev);
    }
    g_free(d->pdev);
    g_free(d);
}

/* ------------------------------------------------------------------ */
/* Register access                                                    */

uint8_t vv_common_readb(VVDev *d, uint32_t off)
{
    return qpci_io_readb(d->pdev, d->common.token, d->common.offset + off);
}

uint16_t vv_common_readw(VVDev *d, uint32_t off)
{
    return qpci_io_readw(d->pdev, d->common.token, d->common.offset + off);
}

uint32_t vv_common_readl(VVDev *d, uint32_t off)
{
    return qpci_io_readl(d->pdev, d->common.token, d->common.offset + off);
}

void vv_common_writeb(VVDev *d, uint32_t off, uint8_t val)
{
    qpci_io_writeb(d->pdev, d->common.token, d->common.offset + off, val);
}

void vv_common_writew(VVDev *d, uint32_t off, uint16_t val)
{
    qpci_io_writew(d->pdev, d->common.token, d->common.offset + off, val);
}

void vv_common_writel(VVDev *d, uint32_t off, uint32_t val)
{
    qpci_io_writel(d->pdev, d->common.token, d->common.offset + off, val);
}

uint8_t vv_config_readb(VVDev *d, uint32_t off)
{
    return qpci_io_readb(d->pdev, d->device.token, d->device.offset + off);
}

uint16_t vv_config_readw(VVDev *d, uint32_t off)
{
    return qpci_io_readw(d->pdev, d->device.token, d->device.offset + off);
}

uint32_t vv_config_readl(VVDev *d, uint32_t off)
{
    return qpci_io_readl(d->pdev, d->device.token, d->device.offset + off);
}

/*
 * 64-bit fields are read as two 32-bit halves, retried until
 * config_generation is stable (4.1.3.1 / 2.5.1).
 */
uint64_t vv_config_readq(VVDev *d, uint32_t off)
{
    uint8_t gen;
    uint64_t val;

    do {
        gen = vv_common_readb(d, VV_COMMON_CFGGEN);
        val = vv_config_readl(d, off) |
              (uint64_t)vv_config_readl(d, off + 4) << 32;
    } while (gen != vv_common_readb(d, VV_COMMON_CFGGEN));
    return val;
}

uint8_t vv_get_status(VVDev *d)
{
    return vv_common_readb(d, VV_COMMON_STATUS);
}

void vv_set_status(VVDev *d, uint8_t status)
{
    vv_common_writeb(d, VV_COMMON_STATUS, status);
}

uint8_t vv_read_isr(VVDev *d)
{
    return qpci_io_readb(d->pdev, d->isr.token, d->isr.offset);
}

void vv_poll_step(VVDev *d)
{
    qtest_clock_step(d->qts, 100);
}

void vv_reset(VVDev *d)
{
    gint64 deadline = g_get_monotonic_time() + VV_TIMEOUT_US;

    vv_set_status(d, 0);
    /* 4.1.4.3.2: the driver waits for device_status to read 0 */
    while (vv_get_status(d) != 0) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        vv_poll_step(d);
    }
    /* Our view of the queues goes with the device's */
    for (uint16_t i = 0; d->queues && i < d->num_queues; i++) {
        vv_queue_free_mem(&d->queues[i]);
    }
    d->features = 0;
}

uint64_t vv_get_device_features(VVDev *d)
{
    uint64_t f;

    vv_common_writel(d, VV_COMMON_DFSELECT, 0);
    f = vv_common_readl(d, VV_COMMON_DF);
    vv_common_writel(d, VV_COMMON_DFSELECT, 1);
    f |= (uint64_t)vv_common_readl(d, VV_COMMON_DF) << 32;
    return f;
}

void vv_write_driver_features(VVDev *d, uint64_t features)
{
    vv_common_writel(d, VV_COMMON_GFSELECT, 0);
    vv_common_writel(d, VV_COMMON_GF, (uint32_t)features);
    vv_common_writel(d, VV_COMMON_GFSELECT, 1);
    vv_common_writel(d, VV_COMMON_GF, features >> 32);
}

bool vv_negotiate(VVDev *d, uint64_t features)
{
    vv_write_driver_features(d, features);
    vv_set_status(d, vv_get_status(d) | VV_S_FEATURES_OK);
    if (!(vv_get_status(d) & VV_S_FEATURES_OK)) {
        return false;
    }
    d->features = features;
    return true;
}

/* ------------------------------------------------------------------ */
/* MSI-X                                                              */

void vv_msix_enable(VVDev *d)
{
    qpci_msix_enable(d->pdev);
    d->msix = true;
}

void vv_msix_set_entry(VVDev *d, uint16_t vector, uint64_t addr,
                       uint32_t data)
{
    uint64_t off = d->pdev->msix_table_off + vector * PCI_MSIX_ENTRY_SIZE;

    g_assert(d->msix);
    qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_LOWER_ADDR, (uint32_t)addr);
    qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_UPPER_ADDR, addr >> 32);
    qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_DATA, data);
    /* Unmask */
    qpci_io_writel(d->pdev, d->pdev->msix_table_bar,
                   off + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
}

uint16_t vv_set_config_vector(VVDev *d, uint16_t vector)
{
    vv_common_writew(d, VV_COMMON_MSIX, vector);
    return vv_common_readw(d, VV_COMMON_MSIX);
}

bool vv_wait_msi(VVDev *d, uint64_t addr, uint32_t data, gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;

    for (;;) {
        if (qtest_readl(d->qts, addr) == data) {
            qtest_writel(d->qts, addr, 0);
            return true;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        vv_poll_step(d);
    }
}

/* ------------------------------------------------------------------ */
/* Queues                                                             */

static void vv_queue_select(VVDev *d, uint16_t index)
{
    vv_common_writew(d, VV_COMMON_Q_SELECT, index);
}

VVQueue *vv_queue_setup(VVDev *d, uint16_t index, uint16_t size,
                        uint16_t vector)
{
    VVQueue *q;
    uint16_t max;
    uint64_t desc_bytes, avail_bytes, used_bytes, used_off, total;

    if (!d->queues) {
        d->num_queues = vv_common_readw(d, VV_COMMON_NUMQ);
        d->queues = g_new0(VVQueue, d->num_queues);
    }
    g_assert_cmpint(index, <, d->num_queues);
    q = &d->queues[index];
    vv_queue_free_mem(q);

    vv_queue_select(d, index);
    max = vv_common_readw(d, VV_COMMON_Q_SIZE);
    g_assert_cmpint(max, >, 0);
    if (size == 0) {
        size = max;
    }

    q->dev = d;
    q->index = index;
    q->size = size;
    q->avail_idx = 0;
    q->last_used = 0;

    /*
     * One allocation: descriptor table (16-byte aligned), driver area
     * right after it, device area on the next page (4-byte alignment is
     * all that is needed; a page keeps the areas apart).
     */
    desc_bytes = (uint64_t)DESC_SIZE * size;
    avail_bytes = AVAIL_RING + 2ULL * size + 2;
    used_bytes = USED_RING + (uint64_t)USED_ELEM_SIZE * size + 2;
    used_off = QEMU_ALIGN_UP(desc_bytes + avail_bytes, 4096);
    total = used_off + used_bytes;
    q->ring_mem = guest_alloc(d->alloc, total);
    g_assert(q->ring_mem);
    qtest_memset(d->qts, q->ring_mem, 0, total);
    q->desc = q->ring_mem;
    q->avail = q->desc + desc_bytes;
    q->used = q->ring_mem + used_off;
    g_assert_cmpint(q->desc % 16, ==, 0);
    g_assert_cmpint(q->avail % 2, ==, 0);
    g_assert_cmpint(q->used % 4, ==, 0);

    /* Free list: every descriptor, in order */
    q->next = g_new0(uint16_t, size);
    q->chain_len = g_new0(uint16_t, size);
    q->indirect = g_new0(uint64_t, size);
    for (uint32_t i = 0; i < size; i++) {
        q->next[i] = (i + 1) % size;
    }
    q->free_head = 0;
    q->num_free = size;

    vv_common_writew(d, VV_COMMON_Q_SIZE, size);
    vv_common_writel(d, VV_COMMON_Q_DESCLO,
                     (uint32_t)(q->desc + d->dma_offset));
    vv_common_writel(d, VV_COMMON_Q_DESCHI, (q->desc + d->dma_offset) >> 32);
    vv_common_writel(d, VV_COMMON_Q_AVAILLO,
                     (uint32_t)(q->avail + d->dma_offset));
    vv_common_writel(d, VV_COMMON_Q_AVAILHI,
                     (q->avail + d->dma_offset) >> 32);
    vv_common_writel(d, VV_COMMON_Q_USEDLO,
                     (uint32_t)(q->used + d->dma_offset));
    vv_common_writel(d, VV_COMMON_Q_USEDHI, (q->used + d->dma_offset) >> 32);
    if (vector != VV_NO_VECTOR) {
        vv_common_writew(d, VV_COMMON_Q_MSIX, vector);
    }
    q->msix_vector = vv_common_readw(d, VV_COMMON_Q_MSIX);
    q->notify_off = d->notify.offset +
                    vv_common_readw(d, VV_COMMON_Q_NOFF) * d->notify_mult;
    vv_common_writew(d, VV_COMMON_Q_ENABLE, 1);
    q->enabled = vv_common_readw(d, VV_COMMON_Q_ENABLE) == 1;
    return q;
}

void vv_init(VVDev *d, uint64_t features, uint16_t nqueues, uint16_t qsize)
{
    uint64_t offered;

    vv_reset(d);
    vv_set_status(d, VV_S_ACKNOWLEDGE);
    vv_set_status(d, VV_S_ACKNOWLEDGE | VV_S_DRIVER);
    offered = vv_get_device_features(d);
    g_assert(offered & (1ULL << VV_F_VERSION_1));
    g_assert(vv_negotiate(d, features & offered));
    if (d->msix) {
        g_assert_cmpint(vv_set_config_vector(d, 0), ==, 0);
    }
    for (uint16_t i = 0; i < nqueues; i++) {
        VVQueue *q = vv_queue_setup(d, i, qsize,
                                    d->msix ? i + 1 : VV_NO_VECTOR);
        g_assert(q->enabled);
        if (d->msix) {
            g_assert_cmpint(q->msix_vector, ==, i + 1);
        }
    }
    vv_set_status(d, vv_get_status(d) | VV_S_DRIVER_OK);
    g_assert_cmphex(vv_get_status(d), ==,
                    VV_S_ACKNOWLEDGE | VV_S_DRIVER | VV_S_FEATURES_OK |
                    VV_S_DRIVER_OK);
}

void vv_queue_write_desc(VVQueue *q, uint16_t i, uint64_t addr, uint32_t len,
                         uint16_t flags, uint16_t next)
{
    uint8_t raw[DESC_SIZE];

    stq_le_p(raw, addr);
    stl_le_p(raw + 8, len);
    stw_le_p(raw + 12, flags);
    stw_le_p(raw + 14, next);
    qtest_memwrite(q->dev->qts, q->desc + (uint64_t)i * DESC_SIZE, raw,
                   sizeof(raw));
}

static void write_desc_at(QTestState *qts, uint64_t table, uint32_t i,
                          uint64_t addr, uint32_t len, uint16_t flags,
                          uint16_t next)
{
    uint8_t raw[DESC_SIZE];

    stq_le_p(raw, addr);
    stl_le_p(raw + 8, len);
    stw_le_p(raw + 12, flags);
    stw_le_p(raw + 14, next);
    qtest_memwrite(qts, table + (uint64_t)i * DESC_SIZE, raw, sizeof(raw));
}

static uint16_t take_desc(VVQueue *q)
{
    uint16_t i;

    g_assert_cmpint(q->num_free, >, 0);
    i = q->free_head;
    q->free_head = q->next[i];
    q->num_free--;
    return i;
}

uint16_t vv_queue_add_chain(VVQueue *q, const VVBuf *bufs, int n,
                            bool indirect)
{
    QTestState *qts = q->dev->qts;
    uint16_t head;

    g_assert_cmpint(n, >, 0);
    if (indirect) {
        uint64_t table = guest_alloc(q->dev->alloc, (size_t)n * DESC_SIZE);

        g_assert(table);
        for (int i = 0; i < n; i++) {
            write_desc_at(qts, table, i, bufs[i].addr + q->dev->dma_offset,
                          bufs[i].len,
                          (bufs[i].write ? VV_DESC_F_WRITE : 0) |
                          (i + 1 < n ? VV_DESC_F_NEXT : 0),
                          i + 1 < n ? i + 1 : 0);
        }
        head = take_desc(q);
        vv_queue_write_desc(q, head, table + q->dev->dma_offset,
                            n * DESC_SIZE,
                            VV_DESC_F_INDIRECT, 0);
        q->chain_len[head] = 1;
        q->indirect[head] = table;
        return head;
    }

    g_assert_cmpint(q->num_free, >=, n);
    head = q->free_head;
    {
        uint16_t i = head;

        for (int k = 0; k < n; k++) {
            uint16_t cur = take_desc(q);

            g_assert_cmpint(cur, ==, i);
            /* take_desc advanced free_head to the next free one */
            vv_queue_write_desc(q, cur, bufs[k].addr + q->dev->dma_offset,
                                bufs[k].len,
                                (bufs[k].write ? VV_DESC_F_WRITE : 0) |
                                (k + 1 < n ? VV_DESC_F_NEXT : 0),
                                k + 1 < n ? q->free_head : 0);
            i = q->free_head;
        }
    }
    q->chain_len[head] = n;
    q->indirect[head] = 0;
    return head;
}

void vv_queue_write_avail_ring(VVQueue *q, uint16_t slot, uint16_t head)
{
    qtest_writew(q->dev->qts, q->avail + AVAIL_RING + 2ULL * slot, head);
}

void vv_queue_write_avail_idx(VVQueue *q, uint16_t idx)
{
    qtest_writew(q->dev->qts, q->avail + AVAIL_IDX, idx);
}

void vv_queue_publish(VVQueue *q, uint16_t head)
{
    vv_queue_write_avail_ring(q, q->avail_idx % q->size, head);
    /* qtest accesses are ordered: the entry is there before the index */
    q->avail_idx++;
    vv_queue_write_avail_idx(q, q->avail_idx);
}

void vv_queue_kick(VVQueue *q)
{
    VVDev *d = q->dev;

    qpci_io_writew(d->pdev, d->notify.token, q->notify_off, q->index);
}

void vv_notify_raw(VVDev *d, uint16_t index)
{
    qpci_io_writew(d->pdev, d->notify.token,
                   d->notify.offset + (uint32_t)index * d->notify_mult,
                   index);
}

uint16_t vv_queue_used_idx(VVQueue *q)
{
    return qtest_readw(q->dev->qts, q->used + USED_IDX);
}

static void free_chain(VVQueue *q, uint16_t head)
{
    uint16_t n = q->chain_len[head];
    uint16_t last = head;

    g_assert_cmpint(n, >, 0);
    for (uint16_t k = 1; k < n; k++) {
        last = q->next[last];
    }
    if (q->indirect[head]) {
        guest_free(q->dev->alloc, q->indirect[head]);
        q->indirect[head] = 0;
    }
    q->chain_len[head] = 0;
    q->next[last] = q->free_head;
    q->free_head = head;
    q->num_free += n;
}

bool vv_queue_wait_used(VVQueue *q, uint32_t *id, uint32_t *len,
                        gint64 timeout_us)
{
    VVDev *d = q->dev;
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    uint64_t elem;
    uint32_t e_id, e_len;

    while (vv_queue_used_idx(q) == q->last_used) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        vv_poll_step(d);
    }
    elem = q->used + USED_RING +
           (uint64_t)(q->last_used % q->size) * USED_ELEM_SIZE;
    e_id = qtest_readl(d->qts, elem);
    e_len = qtest_readl(d->qts, elem + 4);
    q->last_used++;
    if (d->features & (1ULL << VV_F_EVENT_IDX)) {
        /* used_event: interrupt me at the next used entry (2.7.10) */
        qtest_writew(d->qts, q->avail + AVAIL_RING + 2ULL * q->size,
                     q->last_used);
    }
    if (e_id < q->size && q->chain_len[e_id]) {
        free_chain(q, e_id);
    }
    if (id) {
        *id = e_id;
    }
    if (len) {
        *len = e_len;
    }
    return true;
}
