/*
 * vdpa-mgmt: a management PCIe function that provisions managed vDPA
 * instances on demand
 *
 * One PCI function with an admin queue in guest memory.  Through it the
 * driver creates lightweight virtio instances that own no PCI resources:
 * each has its own DMA context, its own MSI message per queue stored in
 * the device, and is kicked through one shared doorbell page.  The data
 * path of every instance is the shared split-virtqueue engine
 * (hw/iolab-virtio/core/virtq.c).  The guest-visible interface is in
 * docs/vdpa-mgmt.rst and include/hw/vdpa-mgmt/core/vdpa-proto.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "block/block.h"
#include "block/block-global-state.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "hw/vpri/vpri-host.h"
#include "trace.h"

#define VDPA_BLK_SECTOR     512
#define VDPA_BLK_HDR        16
#define VDPA_BLK_SEG_MAX    126
#define VDPA_BLK_MAX_DATA   (4 * MiB)
#define VDPA_SPARE_REQS     64
/* PCIe PASID capability: where, and the PASID width it announces */
#define VDPA_MGMT_PASID_CAP_OFF 0x100
#define VDPA_MGMT_PASID_BITS    20
/* Ways of the translation cache's sets */
#define VDPA_IOTLB_WAYS     4
/* DMA addresses the function generates: x86-64's 48-bit IOVA space */
#define VDPA_DMA_BITS       48
/*
 * Faults a function has out at once: the vpri-host's queue limit per
 * device.  More stalled queues wait for a slot (slot_waiters).
 */
#define VDPA_FAULT_SLOTS    VPRI_HOST_MAX_QUEUES
/* fault_slot of a queue stalled and waiting for a free slot */
#define VDPA_WAIT_SLOT      0xfffe

typedef struct VdpaSlotWaiter {
    uint32_t owner;             /* VDPA_DB_VALUE(id, queue) + 1 */
    uint64_t addr;
    bool write;
} VdpaSlotWaiter;

struct VdpaBlkReq {
    VdpaInst *inst;
    VdpaBlkReq *next_held;
    uint16_t queue;
    uint8_t status;
    uint32_t type;
    uint64_t sector;
    uint32_t len;
    bool tx_sent;               /* net TX: frame sent, only the push left */
    bool mapped;                /* qiov maps guest memory (no bounce) */
    void *bounce;
    QEMUIOVector qiov;
    VdpaBlkReq *next_spare;
    VirtqElem elem;             /* last: 16 KiB */
};

static const char *const vdpa_state_names[] = {
    [0] = "created", [1] = "configuring", [2] = "running",
    [3] = "suspended", [4] = "needs-reset",
};

const char *vdpa_inst_state(const VdpaInst *inst)
{
    if (inst->status & VDPA_ST_NEEDS_RESET) {
        return vdpa_state_names[4];
    }
    if (inst->suspended) {
        return vdpa_state_names[3];
    }
    if (inst->status & VDPA_ST_DRIVER_OK) {
        return vdpa_state_names[2];
    }
    return vdpa_state_names[inst->status ? 1 : 0];
}

static MemTxAttrs vdpa_attrs(VdpaMgmt *s)
{
    return (MemTxAttrs) { .requester_id = pci_requester_id(PCI_DEVICE(s)) };
}

/* Function-level DMA (admin rings and buffers, MSI writes) */
static bool vdpa_fn_dma(VdpaMgmt *s, uint64_t addr, void *buf, uint32_t len,
                        bool write)
{
    return address_space_rw(pci_get_address_space(PCI_DEVICE(s)), addr,
                            vdpa_attrs(s), buf, len, write) == MEMTX_OK;
}

/* The guest enabled the function's PCIe PASID capability (if it has one) */
static bool vdpa_pasid_enabled(VdpaMgmt *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return !s->pasid_cap ||
           (pci_get_word(pdev->config + s->pasid_cap + PCI_PASID_CTRL) &
            PCI_PASID_CTRL_ENABLE);
}

/*
 * An instance bound to a PASID: translate page by page with that PASID,
 * from the function's translation cache or else through the vIOMMU
 * (patches/0009), then access guest memory.  A translation the vIOMMU
 * grants is cached; one it refuses is not, so every refused access
 * reaches the vIOMMU and is recorded there.  The vIOMMU's invalidation
 * notifications (vdpa_pasid_invalidate) empty the cache.
 *
 * With a vpri-host, each translated guest-physical page of RAM is then
 * checked against the PA-BITMAP of gpa_fault_dev and the copy made in
 * its fence, as a device with ATS checks page attributes after
 * translation: a page that is not present returns VIRTQ_FAULT with its
 * guest-physical address in *@fault_addr.  @buf NULL: only translate.
 * Returns 0, VIRTQ_ERROR (refused) or VIRTQ_FAULT.
 */
static int vdpa_pasid_rw(VdpaInst *inst, uint64_t addr, void *buf,
                         uint64_t len, bool write, uint64_t *fault_addr)
{
    VdpaMgmt *s = inst->s;
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t *p = buf;

    if (!vdpa_pasid_enabled(s)) {
        return VIRTQ_ERROR;
    }
    while (len) {
        uint64_t chunk = MIN(len, VDPA_IOTLB_PAGE_SIZE -
                                  (addr & VDPA_IOTLB_PAGE_MASK));
        AddressSpace *as = &address_space_memory;
        uint64_t pa;

        if (!vdpa_iotlb_lookup(&s->iotlb, inst->pasid, addr, write, &pa)) {
            IOMMUTLBEntry e;

            s->pasid_translations++;
            if (!pci_device_iommu_translate_pasid(pdev, inst->pasid, addr,
                                                  write, &e) ||
                !(e.perm & (write ? IOMMU_WO : IOMMU_RO))) {
                return VIRTQ_ERROR;
            }
            pa = (e.translated_addr & ~e.addr_mask) | (addr & e.addr_mask);
            as = e.target_as;
            if (as == &address_space_memory) {
                vdpa_iotlb_insert(&s->iotlb, inst->pasid, addr, pa,
                                  (e.perm & IOMMU_RO ? VDPA_IOTLB_R : 0) |
                                  (e.perm & IOMMU_WO ? VDPA_IOTLB_W : 0));
            }
        }
        if (p && s->host && as == &address_space_memory) {
            PabDmaToken token;
            PabResult r = vpri_host_dma_begin(s->host, s->gpa_fault_dev, pa,
                                              chunk, write, &token,
                                              fault_addr);
            MemTxResult res = MEMTX_OK;

            if (r == PAB_OK) {
                res = address_space_rw(as, pa, vdpa_attrs(s), p, chunk,
                                       write);
            }
            vpri_host_dma_end(s->host, s->gpa_fault_dev, token);
            if (r == PAB_FAULT) {
                return VIRTQ_FAULT;
            }
            if (r != PAB_OK || res != MEMTX_OK) {
                return VIRTQ_ERROR;
            }
        } else if (p && address_space_rw(as, pa, vdpa_attrs(s), p, chunk,
                                         write)) {
            return VIRTQ_ERROR;
        }
        addr += chunk;
        len -= chunk;
        if (p) {
            p += chunk;
        }
    }
    return 0;
}

/* intel-iommu: the guest invalidated translations (patches/0009) */
static void vdpa_pasid_invalidate(void *opaque, uint32_t pasid, hwaddr first,
                                  hwaddr last)
{
    VdpaMgmt *s = opaque;

    vdpa_iotlb_invalidate(&s->iotlb, pasid == PCI_NO_PASID ?
                          VDPA_IOTLB_ANY_PASID : pasid, first, last);
}

/*
 * Engine callbacks: an instance's DMA goes to its own DMA context.  With
 * a vpri-host, DMA in the function's space (guest-physical addresses)
 * is checked against the PA-BITMAP first, and stays in the host's fence
 * until the copy is done; a page that is not present is a fault.
 */
static int vdpa_inst_dma(VdpaInst *inst, uint64_t addr, void *buf,
                         uint32_t len, bool write, uint64_t *fault_addr)
{
    VdpaMgmt *s = inst->s;
    bool ok;

    if (inst->pasid != VDPA_NO_PASID) {
        int ret = vdpa_pasid_rw(inst, addr, buf, len, write, fault_addr);

        if (ret == VIRTQ_ERROR) {
            inst->stats.dma_faults++;
        }
        return ret;
    } else if (s->host) {
        PabDmaToken token;
        PabResult r = vpri_host_dma_begin(s->host, s->fault_dev, addr, len,
                                          write, &token, fault_addr);

        ok = r == PAB_OK &&
             address_space_rw(inst->as, addr, vdpa_attrs(s), buf, len,
                              write) == MEMTX_OK;
        vpri_host_dma_end(s->host, s->fault_dev, token);
        if (r == PAB_FAULT) {
            return VIRTQ_FAULT;
        }
    } else {
        ok = address_space_rw(inst->as, addr, vdpa_attrs(inst->s), buf, len,
                              write) == MEMTX_OK;
    }
    if (!ok) {
        inst->stats.dma_faults++;
        return VIRTQ_ERROR;
    }
    return 0;
}

static int vdpa_inst_dma_read(void *opaque, uint64_t addr, void *buf,
                              uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, buf, len, false, fault_addr);
}

static int vdpa_inst_dma_write(void *opaque, uint64_t addr, const void *buf,
                               uint32_t len, uint64_t *fault_addr)
{
    return vdpa_inst_dma(opaque, addr, (void *)buf, len, true, fault_addr);
}

static const VirtqDmaOps vdpa_dma_ops = {
    .read = vdpa_inst_dma_read,
    .write = vdpa_inst_dma_write,
};

/* ---- Interrupts ---- */

static void vdpa_send_msi(VdpaInst *inst, const VdpaMsiMsg *m)
{
    VdpaMgmt *s = inst->s;

    /*
     * The stored message, written with the function's requester id, as
     * msi_send_message() does for a vector of the function's own table.
     */
    address_space_stl_le(pci_get_address_space(PCI_DEVICE(s)), m->addr,
                         m->data, vdpa_attrs(s), NULL);
    inst->stats.interrupts++;
    trace_vdpa_mgmt_msi(inst->id, m->addr, m->data);
}

static void vdpa_queue_interrupt(VdpaInst *inst, uint16_t qi)
{
    VdpaQueue *q = &inst->q[qi];

    if (!iolab_virtq_should_notify(&q->vq, &vdpa_dma_ops, inst)) {
        return;
    }
    if (vdpa_msi_fire(&q->msi)) {
        vdpa_send_msi(inst, &q->msi);
    } else {
        inst->stats.suppressed++;
    }
}

static void G_GNUC_PRINTF(2, 3)
vdpa_inst_error(VdpaInst *inst, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: instance %u: %s\n",
                  inst->id, msg);
    inst->stats.errors++;
    inst->status |= VDPA_ST_NEEDS_RESET;
}

static bool vdpa_inst_runnable(VdpaInst *inst)
{
    return (inst->status & VDPA_ST_DRIVER_OK) &&
           !(inst->status & VDPA_ST_NEEDS_RESET) && !inst->suspended;
}

/* ---- Block instances ---- */

static VdpaBlkBackend *vdpa_inst_blk(VdpaInst *inst)
{
    return &inst->s->blk[inst->backend];
}

static VdpaBlkReq *vdpa_req_get(VdpaMgmt *s, VdpaInst *inst, uint16_t qi)
{
    VdpaBlkReq *req = s->spare;

    if (req) {
        s->spare = req->next_spare;
        s->nspare--;
    } else {
        req = g_malloc(sizeof(*req));
    }
    memset(req, 0, offsetof(VdpaBlkReq, elem));
    req->inst = inst;
    req->queue = qi;
    return req;
}

/* Give back the guest memory a request's qiov maps; @done: it was moved */
static void vdpa_blk_unmap(VdpaBlkReq *req, bool done)
{
    bool to_guest = req->type == VIRTIO_BLK_T_IN;

    for (int i = 0; i < req->qiov.niov; i++) {
        size_t len = req->qiov.iov[i].iov_len;

        address_space_unmap(req->inst->as, req->qiov.iov[i].iov_base, len,
                            to_guest, done && to_guest ? len : 0);
    }
    qemu_iovec_destroy(&req->qiov);
    req->mapped = false;
}

/*
 * Map the data of a read or write straight into the qiov: the writable
 * bytes 0..len of an IN, the readable bytes after the header of an OUT.
 * Only for instances in the function's own DMA space without VPRI (a
 * PA-BITMAP check or a PASID translation would have to stay valid for the
 * whole I/O).  False, with nothing mapped, if some part is not directly
 * accessible RAM: the caller then uses a bounce buffer.
 */
static bool vdpa_blk_map(VdpaBlkReq *req)
{
    VdpaInst *inst = req->inst;
    bool to_guest = req->type == VIRTIO_BLK_T_IN;
    uint64_t skip = to_guest ? 0 : VDPA_BLK_HDR, left = req->len;

    if (inst->s->host || inst->pasid != VDPA_NO_PASID) {
        return false;
    }
    qemu_iovec_init(&req->qiov, 4);
    req->mapped = true;
    for (uint16_t i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *sg = &req->elem.seg[i];
        uint64_t addr, n;

        if (sg->write != to_guest) {
            continue;
        }
        if (skip >= sg->len) {
            skip -= sg->len;
            continue;
        }
        addr = sg->addr + skip;
        n = MIN(sg->len - skip, left);
        skip = 0;
        while (n) {
            hwaddr plen = n;
            void *p = address_space_map(inst->as, addr, &plen, to_guest,
                                        vdpa_attrs(inst->s));

            if (!p) {
                vdpa_blk_unmap(req, false);
                return false;
            }
            qemu_iovec_add(&req->qiov, p, plen);
            addr += plen;
            n -= plen;
            left -= plen;
        }
    }
    inst->s->blk_mapped++;
    return true;
}

static void vdpa_req_put(VdpaMgmt *s, VdpaBlkReq *req)
{
    if (req->mapped) {
        vdpa_blk_unmap(req, false);
    }
    if (req->bounce) {
        qemu_vfree(req->bounce);
        qemu_iovec_destroy(&req->qiov);
    }
    if (s->nspare < VDPA_SPARE_REQS) {
        req->next_spare = s->spare;
        s->spare = req;
        s->nspare++;
    } else {
        g_free(req);
    }
}

/* ---- VPRI page faults ---- */

/*
 * Stop queue @qi of @inst until the host has paged in @addr.  One fault
 * slot per stalled queue; the host calls back with the slot.
 */
static void vdpa_queue_fault(VdpaInst *inst, uint16_t qi, uint64_t addr,
                             bool write)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];
    uint16_t slot;

    if (q->fault_slot != VDPA_NO_FAULT_SLOT) {
        return;
    }
    if (!s->nfree_slots) {
        VdpaSlotWaiter *w = g_new(VdpaSlotWaiter, 1);

        *w = (VdpaSlotWaiter) {
            .owner = VDPA_DB_VALUE(inst->id, qi) + 1,
            .addr = addr, .write = write,
        };
        g_queue_push_tail(s->slot_waiters, w);
        q->fault_slot = VDPA_WAIT_SLOT;
        return;
    }
    slot = s->free_slots[--s->nfree_slots];
    s->slot_owner[slot] = VDPA_DB_VALUE(inst->id, qi) + 1;
    q->fault_slot = slot;
    trace_vdpa_mgmt_fault(inst->id, qi, addr, write);
    vpri_host_raise_fault(s->host, inst->pasid == VDPA_NO_PASID ?
                          s->fault_dev : s->gpa_fault_dev,
                          slot, addr, write, -1);
}

uint32_t vdpa_queue_held(const VdpaQueue *q)
{
    uint32_t n = 0;

    for (const VdpaBlkReq *r = q->held; r; r = r->next_held) {
        n++;
    }
    return n;
}

static bool vdpa_queue_blocked(VdpaInst *inst, uint16_t qi)
{
    return inst->q[qi].fault_slot != VDPA_NO_FAULT_SLOT;
}

/*
 * A fault stopped @req after it was popped: keep it, in order, and
 * restart it from its header once the page is in.  Every blk request is
 * idempotent from the start (a read reads again, a write writes the same
 * data again), so nothing of its progress needs keeping.  A net TX
 * request keeps one bit (tx_sent); a net RX buffer is simply reused.
 */
static void vdpa_req_hold(VdpaBlkReq *req, uint64_t addr, bool write)
{
    VdpaInst *inst = req->inst;
    VdpaQueue *q = &inst->q[req->queue];
    VdpaBlkReq **tail = &q->held;

    if (req->mapped) {
        vdpa_blk_unmap(req, false);
    }
    if (req->bounce) {
        qemu_vfree(req->bounce);
        qemu_iovec_destroy(&req->qiov);
        req->bounce = NULL;
    }
    while (*tail) {
        tail = &(*tail)->next_held;
    }
    req->next_held = NULL;
    *tail = req;
    vdpa_queue_fault(inst, req->queue, addr, write);
}

/* A DMA step of @req returned @ret: true to go on */
/* @fault is read only after @ret was computed: pass it by address */
static bool vdpa_blk_dma_ok(VdpaBlkReq *req, int ret, const uint64_t *fault,
                            bool write, const char *what)
{
    if (ret == 0) {
        return true;
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_req_hold(req, *fault, write);
        return false;
    }
    vdpa_inst_error(req->inst, "queue %u: %s: %s", req->queue, what,
                    iolab_virtq_error_reason(&req->inst->q[req->queue].vq) ?:
                    "DMA refused");
    vdpa_req_put(req->inst->s, req);
    return false;
}

/* Status byte, used ring, interrupt; consumes @req */
static void vdpa_blk_complete(VdpaBlkReq *req, uint32_t written)
{
    VdpaInst *inst = req->inst;
    VdpaQueue *q = &inst->q[req->queue];
    uint64_t fault;

    if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                               inst, req->elem.in_len - 1,
                                               &req->status, 1, &fault),
                         &fault, true, "status") ||
        !vdpa_blk_dma_ok(req, iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst,
                                         req->elem.head, written + 1, &fault),
                         &fault, true, "used ring")) {
        return;
    }
    inst->stats.requests++;
    vdpa_queue_interrupt(inst, req->queue);
    vdpa_req_put(inst->s, req);
}

static void vdpa_blk_io_done(void *opaque, int ret)
{
    VdpaBlkReq *req = opaque;
    VdpaInst *inst = req->inst;
    uint32_t written = 0;
    uint64_t fault;

    inst->inflight--;
    if (req->mapped) {
        /* The data is in guest memory (IN) or on the disk (OUT) already */
        vdpa_blk_unmap(req, ret >= 0);
    }
    if (inst->status & VDPA_ST_NEEDS_RESET) {
        vdpa_req_put(inst->s, req);
        return;
    }
    /* While its queue waits for a fault, nothing of it touches memory */
    if (vdpa_queue_blocked(inst, req->queue)) {
        vdpa_req_hold(req, 0, false);
        return;
    }
    if (ret < 0) {
        req->status = VIRTIO_BLK_S_IOERR;
    } else if (req->type == VIRTIO_BLK_T_IN) {
        if (req->bounce &&
            !vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                                   inst, 0, req->bounce,
                                                   req->len, &fault),
                             &fault, true, "read data")) {
            return;
        }
        written = req->len;
        inst->stats.bytes_read += req->len;
    } else if (req->type == VIRTIO_BLK_T_OUT) {
        inst->stats.bytes_written += req->len;
    }
    vdpa_blk_complete(req, written);
}

static bool vdpa_blk_rw_ok(VdpaInst *inst, VdpaBlkReq *req)
{
    uint64_t cap = vdpa_inst_blk(inst)->sectors;
    uint64_t nsec = req->len / VDPA_BLK_SECTOR;

    return !(req->len % VDPA_BLK_SECTOR) && req->len <= VDPA_BLK_MAX_DATA &&
           req->sector <= cap && nsec <= cap - req->sector;
}

/* Start (or restart) one popped request; it completes now or later */
static void vdpa_blk_start(VdpaBlkReq *req)
{
    VdpaInst *inst = req->inst;
    VdpaBlkBackend *be = vdpa_inst_blk(inst);
    uint8_t hdr[VDPA_BLK_HDR];
    uint64_t fault;

    if (req->elem.out_len < VDPA_BLK_HDR || req->elem.in_len < 1) {
        vdpa_inst_error(inst, "queue %u: request without header or status",
                        req->queue);
        vdpa_req_put(inst->s, req);
        return;
    }
    if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops,
                                              inst, 0, hdr, sizeof(hdr),
                                              &fault),
                         &fault, false, "header")) {
        return;
    }
    req->type = ldl_le_p(hdr);
    req->sector = ldq_le_p(hdr + 8);
    req->status = VIRTIO_BLK_S_OK;

    switch (req->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        req->len = req->type == VIRTIO_BLK_T_IN ? req->elem.in_len - 1 :
                   req->elem.out_len - VDPA_BLK_HDR;
        if (!vdpa_blk_rw_ok(inst, req) ||
            (req->type == VIRTIO_BLK_T_OUT && be->read_only)) {
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: instance %u: bad "
                          "request of %u bytes at sector %" PRIu64 "\n",
                          inst->id, req->len, req->sector);
            req->status = VIRTIO_BLK_S_IOERR;
            break;
        }
        if (vdpa_blk_map(req)) {
            goto submit;
        }
        req->bounce = qemu_try_blockalign(blk_bs(be->blk), MAX(req->len, 1));
        if (!req->bounce) {
            req->status = VIRTIO_BLK_S_IOERR;
            break;
        }
        qemu_iovec_init(&req->qiov, 1);
        qemu_iovec_add(&req->qiov, req->bounce, req->len);
        if (req->type == VIRTIO_BLK_T_OUT &&
            !vdpa_blk_dma_ok(req, iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops,
                                                  inst, VDPA_BLK_HDR,
                                                  req->bounce, req->len,
                                                  &fault),
                             &fault, false, "write data")) {
            return;
        }
    submit:
        inst->inflight++;
        if (req->type == VIRTIO_BLK_T_IN) {
            blk_aio_preadv(be->blk, req->sector * VDPA_BLK_SECTOR, &req->qiov,
                           0, vdpa_blk_io_done, req);
        } else {
            blk_aio_pwritev(be->blk, req->sector * VDPA_BLK_SECTOR,
                            &req->qiov, 0, vdpa_blk_io_done, req);
        }
        return;
    case VIRTIO_BLK_T_FLUSH:
        inst->inflight++;
        blk_aio_flush(be->blk, vdpa_blk_io_done, req);
        return;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = { 0 };
        uint32_t len = MIN(req->elem.in_len - 1, VIRTIO_BLK_ID_BYTES);

        snprintf(id, sizeof(id), "vdpa%u", inst->id);
        if (!vdpa_blk_dma_ok(req, iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops,
                                                   inst, 0, id, len, &fault),
                             &fault, true, "id")) {
            return;
        }
        vdpa_blk_complete(req, len);
        return;
    }
    default:
        req->status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    vdpa_blk_complete(req, 0);
}

static void vdpa_inst_run(VdpaInst *inst, uint16_t qi);

typedef enum VdpaPop {
    VDPA_POP_OK,        /* @req holds the next chain */
    VDPA_POP_AGAIN,     /* nothing popped, but the ring has more: pop again */
    VDPA_POP_STOP,      /* empty, faulted or broken: the queue stops here */
} VdpaPop;

/*
 * Pop the next chain of queue @qi into @req.  When nothing was popped the
 * request goes back to the pool.  On an empty ring notifications are
 * turned back on and the ring is looked at once more, since the driver
 * may have added a chain before it saw the change.  A fault consumed
 * nothing: it is raised and the pop is simply redone when it is answered.
 */
static VdpaPop vdpa_queue_pop(VdpaInst *inst, uint16_t qi, VdpaBlkReq *req)
{
    VdpaQueue *q = &inst->q[qi];
    const char *err = NULL;
    uint64_t fault;
    uint16_t avail;
    VirtqStatus st;
    bool fw;
    int ret;

    st = iolab_virtq_pop(&q->vq, &vdpa_dma_ops, inst, &req->elem, &fault, &fw,
                   &err);
    if (st == VIRTQ_OK) {
        return VDPA_POP_OK;
    }
    vdpa_req_put(inst->s, req);
    if (st == VIRTQ_FAULT) {
        vdpa_queue_fault(inst, qi, fault, false);
        return VDPA_POP_STOP;
    }
    if (st == VIRTQ_ERROR) {
        vdpa_inst_error(inst, "queue %u: %s", qi, err ?: "bad chain");
        return VDPA_POP_STOP;
    }
    ret = iolab_virtq_set_notification(&q->vq, &vdpa_dma_ops, inst, true, &fault);
    if (ret == 0) {
        ret = iolab_virtq_avail_count(&q->vq, &vdpa_dma_ops, inst, &avail, &fault);
        if (ret == 0 && avail) {
            return VDPA_POP_AGAIN;
        }
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_queue_fault(inst, qi, fault, false);
    } else if (iolab_virtq_error_reason(&q->vq)) {
        vdpa_inst_error(inst, "queue %u: %s", qi, iolab_virtq_error_reason(&q->vq));
    }
    return VDPA_POP_STOP;
}

static void vdpa_run_queue(VdpaInst *inst, uint16_t qi)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];

    /* Requests a fault stopped go first, in order */
    while (q->held && vdpa_inst_runnable(inst) && !vdpa_queue_blocked(inst, qi)) {
        VdpaBlkReq *req = q->held;

        q->held = req->next_held;
        vdpa_blk_start(req);
    }
    while (vdpa_inst_runnable(inst) && q->vq.enabled &&
           !vdpa_queue_blocked(inst, qi)) {
        VdpaBlkReq *req = vdpa_req_get(s, inst, qi);
        VdpaPop pop = vdpa_queue_pop(inst, qi, req);

        if (pop == VDPA_POP_OK) {
            vdpa_blk_start(req);
        } else if (pop == VDPA_POP_STOP) {
            return;
        }
    }
}

static VdpaInst *vdpa_owner_inst(VdpaMgmt *s, uint32_t owner, uint16_t *qi)
{
    VdpaInst *inst = vdpa_table_get(&s->table,
                                    (owner - 1) & VDPA_DB_INST_MASK);

    *qi = (owner - 1) >> VDPA_DB_QUEUE_SHIFT;
    return inst && *qi < inst->nqueues ? inst : NULL;
}

/* A slot is free: give it to the oldest queue still waiting for one */
static void vdpa_slot_freed(VdpaMgmt *s)
{
    VdpaSlotWaiter *w;

    while (s->nfree_slots && (w = g_queue_pop_head(s->slot_waiters))) {
        uint16_t qi;
        VdpaInst *inst = vdpa_owner_inst(s, w->owner, &qi);

        if (inst && inst->q[qi].fault_slot == VDPA_WAIT_SLOT) {
            inst->q[qi].fault_slot = VDPA_NO_FAULT_SLOT;
            vdpa_queue_fault(inst, qi, w->addr, w->write);
        }
        g_free(w);
    }
}

/* The host resolved (or failed) the fault of slot @slot */
static void vdpa_fault_done(void *opaque, uint16_t slot, bool resolved)
{
    VdpaMgmt *s = opaque;
    uint32_t owner = slot < VDPA_FAULT_SLOTS ? s->slot_owner[slot] : 0;
    VdpaInst *inst;
    uint16_t qi;

    if (!owner) {
        return;
    }
    s->slot_owner[slot] = 0;
    s->free_slots[s->nfree_slots++] = slot;
    inst = vdpa_owner_inst(s, owner, &qi);
    vdpa_slot_freed(s);
    /* Destroyed or reset meanwhile: the slot was all that was left */
    if (!inst || inst->q[qi].fault_slot != slot) {
        return;
    }
    inst->q[qi].fault_slot = VDPA_NO_FAULT_SLOT;
    if (!resolved) {
        vdpa_inst_error(inst, "queue %u: page fault could not be resolved",
                        qi);
        return;
    }
    vdpa_inst_run(inst, qi);
}

/* Drop what a queue holds (reset, destroy) */
static void vdpa_queue_drop_held(VdpaInst *inst, uint16_t qi)
{
    VdpaQueue *q = &inst->q[qi];

    while (q->held) {
        VdpaBlkReq *req = q->held;

        q->held = req->next_held;
        vdpa_req_put(inst->s, req);
    }
    /* A pending slot is released when the host answers */
    q->fault_slot = VDPA_NO_FAULT_SLOT;
}

/* ---- Net instances ---- */

/* struct virtio_net_hdr_v1: what precedes every frame with VERSION_1 */
#define VDPA_NET_HDR        12
#define VDPA_NET_CFG_SIZE   12
#define VDPA_NET_MAX_FRAME  65536

static uint64_t vdpa_mac_key(const uint8_t *mac)
{
    uint64_t k = 0;

    for (int i = 0; i < 6; i++) {
        k = k << 8 | mac[i];
    }
    return k;
}

/*
 * Transmit one popped (or held) chain: read its frame, send it on the
 * shared netdev, push it.  False if the queue must stop: a VPRI fault
 * held the request (the frame was not sent, or was sent and only the
 * push is left: tx_sent), or the instance went to needs-reset.
 */
static bool vdpa_net_tx_one(VdpaInst *inst, VdpaBlkReq *req)
{
    VdpaMgmt *s = inst->s;
    uint16_t qi = req->queue;
    VdpaQueue *q = &inst->q[qi];
    uint64_t fault;
    int ret;

    if (!req->tx_sent) {
        g_autofree uint8_t *frame = NULL;
        uint32_t len;

        if (req->elem.out_len < VDPA_NET_HDR ||
            req->elem.out_len > VDPA_NET_HDR + VDPA_NET_MAX_FRAME) {
            vdpa_inst_error(inst, "queue %u: tx chain of %u bytes", qi,
                            req->elem.out_len);
            vdpa_req_put(s, req);
            return false;
        }
        len = req->elem.out_len - VDPA_NET_HDR;
        frame = g_malloc(MAX(len, 1));
        ret = iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops, inst, VDPA_NET_HDR,
                              frame, len, &fault);
        if (ret == VIRTQ_FAULT) {
            /* Nothing sent yet: the whole frame is read again */
            vdpa_req_hold(req, fault, false);
            return false;
        }
        if (ret) {
            vdpa_inst_error(inst, "queue %u: tx frame not readable", qi);
            vdpa_req_put(s, req);
            return false;
        }
        qemu_send_packet(qemu_get_queue(s->nic), frame, len);
        inst->stats.bytes_written += len;
        req->tx_sent = true;
    }
    ret = iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst, req->elem.head, 0, &fault);
    if (ret == VIRTQ_FAULT) {
        /* Sent already: only the push is repeated, never the frame */
        vdpa_req_hold(req, fault, true);
        return false;
    }
    if (ret) {
        vdpa_inst_error(inst, "queue %u: used ring refused", qi);
        vdpa_req_put(s, req);
        return false;
    }
    inst->stats.requests++;
    vdpa_queue_interrupt(inst, qi);
    vdpa_req_put(s, req);
    return true;
}

/* Odd queues transmit: send each chain's frame to the shared netdev */
static void vdpa_net_tx(VdpaInst *inst, uint16_t qi)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];

    while (vdpa_inst_runnable(inst) && q->vq.enabled &&
           !vdpa_queue_blocked(inst, qi)) {
        VdpaBlkReq *req = q->held;
        VdpaPop pop;

        /* Requests a fault stopped go first, in order */
        if (req) {
            q->held = req->next_held;
            if (!vdpa_net_tx_one(inst, req)) {
                return;
            }
            continue;
        }
        req = vdpa_req_get(s, inst, qi);
        pop = vdpa_queue_pop(inst, qi, req);
        if (pop == VDPA_POP_STOP ||
            (pop == VDPA_POP_OK && !vdpa_net_tx_one(inst, req))) {
            return;
        }
    }
}

/*
 * VPRI: check that every page the next receive buffer needs is present,
 * and raise a fault for the first one that is not, so that the page is
 * back before a frame needs it rather than costing that frame.  The
 * buffer is the one a fault left held, or the next posted one, looked at
 * through a copy of the queue state, so nothing is consumed.  Runs when
 * the driver kicks the receive queue, after each delivered frame and
 * when a fault of the queue is resolved; a chain of faults (ring entry,
 * descriptor, buffer pages) is thus served one after the other.
 */
static void vdpa_net_rx_prepare(VdpaInst *inst)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[0];
    VdpaBlkReq *req;
    const char *err = NULL;
    uint64_t fault, left = VDPA_NET_HDR + VDPA_NET_MAX_FRAME;
    bool fw;

    if (!s->host || inst->pasid != VDPA_NO_PASID ||
        !vdpa_inst_runnable(inst) || !q->vq.enabled ||
        vdpa_queue_blocked(inst, 0)) {
        return;
    }
    req = q->held;
    if (!req) {
        Virtq peek = q->vq;

        req = vdpa_req_get(s, inst, 0);
        switch (iolab_virtq_pop(&peek, &vdpa_dma_ops, inst, &req->elem, &fault,
                          &fw, &err)) {
        case VIRTQ_OK:
            break;
        case VIRTQ_FAULT:
            vdpa_queue_fault(inst, 0, fault, false);
            /* fall through */
        default:
            /* Empty, or an error the frame's own pop will report */
            vdpa_req_put(s, req);
            return;
        }
    }
    for (uint16_t i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *sg = &req->elem.seg[i];
        uint64_t len = MIN(sg->len, left);
        PabDmaToken token;
        PabResult r;

        if (!sg->write) {
            continue;
        }
        r = vpri_host_dma_begin(s->host, s->fault_dev, sg->addr, len, true,
                                &token, &fault);
        vpri_host_dma_end(s->host, s->fault_dev, token);
        if (r == PAB_FAULT) {
            vdpa_queue_fault(inst, 0, fault, true);
            break;
        }
        left -= len;
    }
    if (req != q->held) {
        vdpa_req_put(s, req);
    }
}

/*
 * Put one received frame in the instance's receive queue 0, or drop it.
 * A frame that meets a VPRI fault (or a queue still waiting for one) is
 * dropped and counted; the fault is raised so that the page comes back,
 * and a buffer already popped stays held for the next frame.
 */
static void vdpa_net_rx_one(VdpaInst *inst, const uint8_t *buf, size_t size)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[0];
    uint8_t hdr[VDPA_NET_HDR] = { 0 };
    VdpaBlkReq *req;
    const char *err = NULL;
    uint64_t fault;
    bool fw;
    int ret;

    if (!vdpa_inst_runnable(inst) || !q->vq.enabled) {
        s->rx_dropped++;
        return;
    }
    if (vdpa_queue_blocked(inst, 0)) {
        s->rx_fault_dropped++;
        return;
    }
    req = q->held;
    if (req) {
        q->held = req->next_held;
    } else {
        VirtqStatus st;

        req = vdpa_req_get(s, inst, 0);
        st = iolab_virtq_pop(&q->vq, &vdpa_dma_ops, inst, &req->elem, &fault, &fw,
                       &err);
        if (st != VIRTQ_OK) {
            if (st == VIRTQ_FAULT) {
                vdpa_queue_fault(inst, 0, fault, false);
                s->rx_fault_dropped++;
            } else {
                if (st != VIRTQ_EMPTY) {
                    vdpa_inst_error(inst, "queue 0: %s", err ?: "bad chain");
                }
                s->rx_dropped++;
            }
            vdpa_req_put(s, req);
            return;
        }
    }
    /* num_buffers: always one buffer per frame (no MRG_RXBUF) */
    hdr[10] = 1;
    ret = 0;
    if (req->elem.in_len < VDPA_NET_HDR + size) {
        s->rx_dropped++;
        size = 0;
    } else {
        ret = iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops, inst, 0, hdr,
                               sizeof(hdr), &fault);
        if (ret == 0) {
            ret = iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops, inst,
                                   VDPA_NET_HDR, buf, size, &fault);
        }
    }
    if (ret == 0) {
        ret = iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst, req->elem.head,
                         size ? VDPA_NET_HDR + size : 0, &fault);
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_req_hold(req, fault, true);
        s->rx_fault_dropped++;
        return;
    }
    if (ret) {
        vdpa_inst_error(inst, "queue 0: rx buffer or used ring refused");
        vdpa_req_put(s, req);
        return;
    }
    inst->stats.requests++;
    inst->stats.bytes_read += size;
    vdpa_queue_interrupt(inst, 0);
    vdpa_req_put(s, req);
    vdpa_net_rx_prepare(inst);
}

/* Run queue @qi of @inst: kicked, resumed, or its fault was resolved */
static void vdpa_inst_run(VdpaInst *inst, uint16_t qi)
{
    if (inst->type == VDPA_TYPE_BLK) {
        vdpa_run_queue(inst, qi);
    } else if (qi % 2) {
        vdpa_net_tx(inst, qi);
    } else if (qi == 0) {
        vdpa_net_rx_prepare(inst);
    }
}

static bool vdpa_net_can_receive(NetClientState *nc)
{
    return true;
}

/*
 * The shared netdev's receive path: a unicast frame goes to the instance
 * with that MAC, a multicast or broadcast one to every net instance; a
 * frame nobody takes is dropped (counted), never queued, so one idle
 * instance cannot stall the others.
 */
static ssize_t vdpa_net_receive(NetClientState *nc, const uint8_t *buf,
                                size_t size)
{
    VdpaMgmt *s = qemu_get_nic_opaque(nc);

    if (size < 6) {
        return size;
    }
    if (buf[0] & 1) {
        GHashTableIter it;
        gpointer inst;

        g_hash_table_iter_init(&it, s->macs);
        while (g_hash_table_iter_next(&it, NULL, &inst)) {
            vdpa_net_rx_one(inst, buf, size);
        }
    } else {
        VdpaInst *inst = g_hash_table_lookup(s->macs, &(uint64_t) {
                                                 vdpa_mac_key(buf) });

        if (inst) {
            vdpa_net_rx_one(inst, buf, size);
        } else {
            s->rx_dropped++;
        }
    }
    return size;
}

static NetClientInfo vdpa_net_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = vdpa_net_can_receive,
    .receive = vdpa_net_receive,
};

static void vdpa_net_config(VdpaInst *inst, uint8_t *cfg)
{
    memcpy(cfg, inst->mac, 6);
    vdpa_st16(cfg + 6, 1);                      /* VIRTIO_NET_S_LINK_UP */
    vdpa_st16(cfg + 8, inst->nqueues / 2);      /* max_virtqueue_pairs */
    vdpa_st16(cfg + 10, 1500);                  /* mtu */
}

/* ---- Kicks through the shared doorbell ---- */

static void vdpa_kick_bh(void *opaque)
{
    VdpaMgmt *s = opaque;
    g_autoptr(GArray) kicks = s->kicks;

    s->kicks = g_array_new(false, false, sizeof(uint32_t));
    for (guint i = 0; i < kicks->len; i++) {
        uint32_t v = g_array_index(kicks, uint32_t, i);
        VdpaInst *inst = vdpa_table_get(&s->table, v & VDPA_DB_INST_MASK);
        uint16_t qi = v >> VDPA_DB_QUEUE_SHIFT;

        /* Destroyed since, or a new instance under a reused id: harmless */
        if (inst && qi < inst->nqueues) {
            inst->q[qi].kick_pending = 0;
            vdpa_inst_run(inst, qi);
        }
    }
}

static void vdpa_queue_kick(VdpaMgmt *s, VdpaInst *inst, uint16_t qi)
{
    uint32_t v = VDPA_DB_VALUE(inst->id, qi);

    if (inst->q[qi].kick_pending) {
        return;
    }
    inst->q[qi].kick_pending = 1;
    g_array_append_val(s->kicks, v);
    qemu_bh_schedule(s->kick_bh);
}

static uint64_t vdpa_doorbell_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void vdpa_doorbell_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    VdpaMgmt *s = opaque;
    uint32_t id = val & VDPA_DB_INST_MASK;
    uint32_t qi = (uint32_t)val >> VDPA_DB_QUEUE_SHIFT;
    VdpaInst *inst = vdpa_table_get(&s->table, id);

    trace_vdpa_mgmt_doorbell(id, qi);
    if (!inst || qi >= inst->nqueues) {
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: doorbell 0x%08" PRIx64
                      " names no instance queue\n", val);
        s->bad_doorbells++;
        return;
    }
    inst->stats.kicks++;
    vdpa_queue_kick(s, inst, qi);
}

static const MemoryRegionOps vdpa_doorbell_ops = {
    .read = vdpa_doorbell_read,
    .write = vdpa_doorbell_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- Instances ---- */

static void vdpa_inst_quiesce(VdpaInst *inst)
{
    /* Requests in the backend finish on their own: wait for them. */
    if (inst->inflight && inst->type == VDPA_TYPE_BLK) {
        blk_drain(vdpa_inst_blk(inst)->blk);
    }
}

static void vdpa_inst_reset(VdpaInst *inst)
{
    vdpa_inst_quiesce(inst);
    inst->status = 0;
    inst->suspended = false;
    inst->drv_features = 0;
    inst->wce = 1;
    for (uint16_t i = 0; i < inst->nqueues; i++) {
        vdpa_queue_drop_held(inst, i);
        iolab_virtq_init(&inst->q[i].vq);
        vdpa_msi_clear(&inst->q[i].msi);
    }
}

static uint64_t vdpa_blk_features(VdpaMgmt *s, uint32_t backend,
                                  uint16_t nqueues)
{
    uint64_t f = s->limits.features[VDPA_TYPE_BLK];

    if (nqueues < 2) {
        f &= ~(1ULL << VIRTIO_BLK_F_MQ);
    }
    if (!s->blk[backend].read_only) {
        f &= ~(1ULL << VIRTIO_BLK_F_RO);
    }
    return f;
}

static VdpaStatus vdpa_cmd_create(VdpaMgmt *s, const VdpaCmd *cmd,
                                  uint64_t *result)
{
    uint16_t nq = cmd->u.create.nqueues;
    VdpaInst *inst;
    uint32_t id;

    if (s->table.count >= s->table.max) {
        return vdpa_status(VDPA_S_ENOSPC, VDPA_Q_NORESOURCE);
    }
    inst = g_try_malloc0(sizeof(*inst) + nq * sizeof(VdpaQueue));
    if (!inst) {
        return vdpa_status(VDPA_S_ENOMEM, VDPA_Q_NORESOURCE);
    }
    inst->s = s;
    inst->type = cmd->u.create.type;
    inst->nqueues = nq;
    inst->backend = cmd->u.create.backend;
    inst->pasid = VDPA_NO_PASID;
    inst->as = pci_get_address_space(PCI_DEVICE(s));
    memcpy(inst->mac, cmd->u.create.mac, sizeof(inst->mac));
    if (inst->type == VDPA_TYPE_NET) {
        uint64_t key = vdpa_mac_key(inst->mac);

        /* A MAC is how frames find their instance: unique, unicast */
        if (!key || (inst->mac[0] & 1) ||
            g_hash_table_contains(s->macs, &key)) {
            g_free(inst);
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
        }
        inst->dev_features = s->limits.features[VDPA_TYPE_NET];
    } else {
        inst->dev_features = vdpa_blk_features(s, inst->backend, nq);
    }
    if (cmd->u.create.features) {
        inst->dev_features &= cmd->u.create.features;
    }
    vdpa_inst_reset(inst);
    id = vdpa_table_alloc(&s->table, inst);
    inst->id = id;
    if (inst->type == VDPA_TYPE_NET) {
        g_hash_table_insert(s->macs, g_memdup2(&(uint64_t) {
                                vdpa_mac_key(inst->mac) }, 8), inst);
    }
    s->created++;
    *result = id;
    trace_vdpa_mgmt_create(id, inst->type, nq, inst->backend);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static void vdpa_inst_free(VdpaMgmt *s, VdpaInst *inst)
{
    vdpa_inst_quiesce(inst);
    for (uint16_t i = 0; i < inst->nqueues; i++) {
        vdpa_queue_drop_held(inst, i);
    }
    if (inst->type == VDPA_TYPE_NET) {
        g_hash_table_remove(s->macs, &(uint64_t) { vdpa_mac_key(inst->mac) });
    }
    vdpa_table_remove(&s->table, inst->id);
    s->destroyed++;
    trace_vdpa_mgmt_destroy(inst->id);
    g_free(inst);
}

static VdpaStatus vdpa_cmd_set_status(VdpaInst *inst, const VdpaCmd *cmd)
{
    uint8_t new = cmd->u.status.status;
    uint8_t added = new & ~inst->status;

    if (new == 0) {
        vdpa_inst_reset(inst);
        return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
    }
    /* Bits only go away through a reset */
    if ((inst->status & ~VDPA_ST_NEEDS_RESET) & ~new) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    }
    if (added & VDPA_ST_FEATURES_OK) {
        uint64_t f = cmd->u.status.features;

        if ((f & ~inst->dev_features) ||
            !(f & (1ULL << VIRTIO_F_VERSION_1))) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
        }
        inst->drv_features = f;
    }
    if ((added & VDPA_ST_DRIVER_OK) && !(new & VDPA_ST_FEATURES_OK)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    }
    inst->status = new | (inst->status & VDPA_ST_NEEDS_RESET);
    if (added & VDPA_ST_DRIVER_OK) {
        for (uint16_t i = 0; i < inst->nqueues; i++) {
            if (inst->q[i].vq.enabled) {
                vdpa_queue_kick(inst->s, inst, i);
            }
        }
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static bool vdpa_ring_reachable(VdpaInst *inst, uint64_t addr, uint64_t len,
                                bool write)
{
    if (inst->pasid != VDPA_NO_PASID) {
        return vdpa_pasid_rw(inst, addr, NULL, len, write, NULL) == 0;
    }
    return address_space_access_valid(inst->as, addr, len, write,
                                      vdpa_attrs(inst->s));
}

static VdpaStatus vdpa_cmd_queue_setup(VdpaInst *inst, const VdpaCmd *cmd)
{
    uint16_t qi = cmd->u.queue.index;
    uint16_t size = cmd->u.queue.size;
    VdpaQueue *q;

    if (qi >= inst->nqueues) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    }
    if (!(inst->status & VDPA_ST_FEATURES_OK) ||
        ((inst->status & VDPA_ST_DRIVER_OK) && !inst->suspended)) {
        return vdpa_status(VDPA_S_EBUSY, VDPA_Q_BAD_STATE);
    }
    q = &inst->q[qi];
    if (!cmd->u.queue.enable) {
        iolab_virtq_init(&q->vq);
        return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
    }
    if (!vdpa_ring_reachable(inst, cmd->u.queue.desc, VIRTQ_DESC_BYTES(size),
                             false) ||
        !vdpa_ring_reachable(inst, cmd->u.queue.driver,
                             VIRTQ_AVAIL_BYTES(size), false) ||
        !vdpa_ring_reachable(inst, cmd->u.queue.device,
                             VIRTQ_USED_BYTES(size), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    }
    iolab_virtq_configure(&q->vq, size, cmd->u.queue.desc, cmd->u.queue.driver,
                    cmd->u.queue.device,
                    inst->drv_features & (1ULL << VIRTIO_RING_F_EVENT_IDX),
                    inst->drv_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
    iolab_virtq_set_enabled(&q->vq, true);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static void vdpa_blk_config(VdpaInst *inst, uint8_t *cfg)
{
    struct virtio_blk_config *c = (struct virtio_blk_config *)cfg;

    memset(cfg, 0, sizeof(*c));
    stq_le_p(&c->capacity, vdpa_inst_blk(inst)->sectors);
    stl_le_p(&c->seg_max, VDPA_BLK_SEG_MAX);
    stl_le_p(&c->blk_size, VDPA_BLK_SECTOR);
    stw_le_p(&c->num_queues, inst->nqueues);
    c->wce = inst->wce;
}

static VdpaStatus vdpa_cmd_config(VdpaMgmt *s, VdpaInst *inst,
                                  const VdpaCmd *cmd)
{
    uint8_t cfg[VDPA_CFG_MAX] = { 0 };
    uint8_t in[VDPA_CFG_MAX];
    uint32_t off = cmd->u.cfg.offset, len = cmd->u.cfg.length;
    VdpaStatus st = vdpa_cmd_check_config(cmd, s->limits.config_size[inst->type]);

    if (!vdpa_ok(st)) {
        return st;
    }
    if (inst->type == VDPA_TYPE_NET) {
        vdpa_net_config(inst, cfg);
    } else {
        vdpa_blk_config(inst, cfg);
    }
    if (cmd->opcode == VDPA_OP_CONFIG_READ) {
        if (!vdpa_fn_dma(s, cmd->buf_addr, cfg + off, len, true)) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
        }
        return st;
    }
    if (!vdpa_fn_dma(s, cmd->buf_addr, in, len, false)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    /* Only blk's write-cache byte is writable; other writes are ignored */
    if (inst->type == VDPA_TYPE_BLK &&
        off <= offsetof(struct virtio_blk_config, wce) &&
        off + len > offsetof(struct virtio_blk_config, wce)) {
        inst->wce = !!in[offsetof(struct virtio_blk_config, wce) - off];
    }
    return st;
}

static VdpaStatus vdpa_cmd_msi(VdpaInst *inst, const VdpaCmd *cmd)
{
    VdpaQueue *q;
    bool now;

    if (cmd->u.msi.queue >= inst->nqueues) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    }
    q = &inst->q[cmd->u.msi.queue];
    if (!vdpa_msi_set(&q->msi, cmd->u.msi.addr, cmd->u.msi.data,
                      cmd->u.msi.flags & VDPA_MSI_F_MASKED,
                      inst->s->limits.dma_bits, &now)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    }
    if (now) {
        vdpa_send_msi(inst, &q->msi);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_query(VdpaMgmt *s, VdpaInst *inst,
                                 const VdpaCmd *cmd)
{
    uint8_t out[VDPA_QUERY_SIZE] = { 0 };
    uint32_t qen = 0;

    for (uint16_t i = 0; i < inst->nqueues && i < 32; i++) {
        qen |= inst->q[i].vq.enabled ? 1u << i : 0;
    }
    vdpa_st32(out + VDPA_QR_ID, inst->id);
    out[VDPA_QR_TYPE] = inst->type;
    out[VDPA_QR_STATUS] = inst->status;
    vdpa_st16(out + VDPA_QR_NQUEUES, inst->nqueues);
    vdpa_st32(out + VDPA_QR_PASID, inst->pasid);
    vdpa_st32(out + VDPA_QR_BACKEND, inst->backend);
    vdpa_st64(out + VDPA_QR_DEV_FEAT, inst->dev_features);
    vdpa_st64(out + VDPA_QR_DRV_FEAT, inst->drv_features);
    vdpa_st32(out + VDPA_QR_FLAGS, inst->suspended ? VDPA_QR_F_SUSPENDED : 0);
    vdpa_st32(out + VDPA_QR_QENABLED, qen);
    if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

/* The counters in STATS order (docs/vdpa-mgmt.rst), also the migration's */
static const size_t vdpa_stat_offsets[VDPA_STATS_SIZE / 8] = {
    offsetof(VdpaInstStats, kicks),
    offsetof(VdpaInstStats, requests),
    offsetof(VdpaInstStats, bytes_read),
    offsetof(VdpaInstStats, bytes_written),
    offsetof(VdpaInstStats, interrupts),
    offsetof(VdpaInstStats, errors),
    offsetof(VdpaInstStats, dma_faults),
    offsetof(VdpaInstStats, suppressed),
};

static void vdpa_stats_save(const VdpaInstStats *st, uint8_t *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(vdpa_stat_offsets); i++) {
        vdpa_st64(out + 8 * i,
                  *(const uint64_t *)((const char *)st +
                                      vdpa_stat_offsets[i]));
    }
}

static void vdpa_stats_load(VdpaInstStats *st, const uint8_t *in)
{
    for (size_t i = 0; i < ARRAY_SIZE(vdpa_stat_offsets); i++) {
        *(uint64_t *)((char *)st + vdpa_stat_offsets[i]) =
            vdpa_ld64(in + 8 * i);
    }
}

static VdpaStatus vdpa_cmd_stats(VdpaMgmt *s, VdpaInst *inst,
                                 const VdpaCmd *cmd)
{
    uint8_t out[VDPA_STATS_SIZE];

    vdpa_stats_save(&inst->stats, out);
    if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

/* LIST: ids >= start as le32; result = count | next id to ask << 32 */
static VdpaStatus vdpa_cmd_list(VdpaMgmt *s, const VdpaCmd *cmd,
                                uint64_t *result)
{
    uint32_t room = cmd->buf_len / 4, n = 0;
    g_autofree uint8_t *out = g_malloc(MIN(room, s->table.count + 1) * 4);
    uint32_t id = vdpa_table_next(&s->table, cmd->u.list.start);

    while (id && n < room && n <= s->table.count) {
        vdpa_st32(out + 4 * n++, id);
        id = vdpa_table_next(&s->table, (uint64_t)id + 1);
    }
    if (n && !vdpa_fn_dma(s, cmd->buf_addr, out, n * 4, true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    *result = n | (uint64_t)id << 32;
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_bind_pasid(VdpaInst *inst, const VdpaCmd *cmd)
{
    uint32_t pasid = cmd->u.pasid.pasid;

    /* The DMA context does not change under running queues */
    if ((inst->status & VDPA_ST_DRIVER_OK) && !inst->suspended) {
        return vdpa_status(VDPA_S_EBUSY, VDPA_Q_BAD_STATE);
    }
    if (pasid == VDPA_NO_PASID && inst->pasid == VDPA_NO_PASID) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_PASID_UNBOUND);
    }
    /* PCIe: no PASID-tagged requests before the guest enabled PASID */
    if (pasid != VDPA_NO_PASID && !vdpa_pasid_enabled(inst->s)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_PASID_DISABLED);
    }
    /*
     * vdpa_cmd_check() refused PASIDs beyond limits.pasid_bits, which is
     * 0 without a vIOMMU that translates PASID-tagged DMA: nothing else
     * to check, and nothing to allocate per PASID.
     */
    vdpa_inst_quiesce(inst);
    inst->pasid = pasid;
    trace_vdpa_mgmt_bind_pasid(inst->id, pasid);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_execute(VdpaMgmt *s, const VdpaCmd *cmd,
                               uint64_t *result)
{
    VdpaStatus st = vdpa_cmd_check(cmd, &s->limits);
    VdpaInst *inst = NULL;

    *result = 0;
    if (!vdpa_ok(st)) {
        return st;
    }
    if (vdpa_cmd_has_member(cmd->opcode)) {
        inst = vdpa_table_get(&s->table, cmd->member);
        if (!inst) {
            return vdpa_status(VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
        }
    }

    switch (cmd->opcode) {
    case VDPA_OP_DISCOVER: {
        uint8_t out[VDPA_DISCOVER_SIZE];

        vdpa_discover_encode(&s->limits, s->table.count, out);
        if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
        }
        return st;
    }
    case VDPA_OP_CREATE:
        return vdpa_cmd_create(s, cmd, result);
    case VDPA_OP_DESTROY:
        vdpa_inst_free(s, inst);
        return st;
    case VDPA_OP_QUERY:
        return vdpa_cmd_query(s, inst, cmd);
    case VDPA_OP_LIST:
        return vdpa_cmd_list(s, cmd, result);
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE:
        return vdpa_cmd_config(s, inst, cmd);
    case VDPA_OP_QUEUE_SETUP:
        return vdpa_cmd_queue_setup(inst, cmd);
    case VDPA_OP_SET_STATUS:
        return vdpa_cmd_set_status(inst, cmd);
    case VDPA_OP_BIND_PASID:
        return vdpa_cmd_bind_pasid(inst, cmd);
    case VDPA_OP_SET_QUEUE_MSI:
        return vdpa_cmd_msi(inst, cmd);
    case VDPA_OP_SUSPEND:
        vdpa_inst_quiesce(inst);
        inst->suspended = true;
        return st;
    case VDPA_OP_RESUME:
        if (inst->suspended) {
            inst->suspended = false;
            for (uint16_t i = 0; i < inst->nqueues; i++) {
                if (inst->q[i].vq.enabled) {
                    vdpa_queue_kick(s, inst, i);
                }
            }
        }
        return st;
    case VDPA_OP_STATS:
        return vdpa_cmd_stats(s, inst, cmd);
    }
    return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
}

/* ---- Admin queue ---- */

static void vdpa_admin_fatal(VdpaMgmt *s, uint32_t code)
{
    qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue unusable (%u)\n",
                  code);
    s->status = VDPA_STATUS_FATAL;
    s->fatal = code;
}

static void vdpa_admin_bh(void *opaque)
{
    VdpaMgmt *s = opaque;
    bool completed = false;

    while (s->status == VDPA_STATUS_READY && s->sq_head != s->sq_tail &&
           (s->cq_tail + 1) % s->aq_size != s->cq_head) {
        uint8_t sqe[VDPA_SQE_SIZE], cqe[VDPA_CQE_SIZE];
        uint64_t result;
        VdpaStatus st;
        VdpaCmd cmd;

        if (!vdpa_fn_dma(s, s->sq_base + (uint64_t)s->sq_head * VDPA_SQE_SIZE,
                         sqe, sizeof(sqe), false)) {
            vdpa_admin_fatal(s, VDPA_FATAL_DMA);
            break;
        }
        s->sq_head = (s->sq_head + 1) % s->aq_size;
        vdpa_cmd_decode(sqe, &cmd);
        st = vdpa_execute(s, &cmd, &result);
        s->admin_cmds++;
        if (!vdpa_ok(st)) {
            s->admin_errors++;
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: %s (0x%x) on %" PRIu64
                          ": status %u qualifier 0x%x\n",
                          vdpa_op_name(cmd.opcode), cmd.opcode, cmd.member,
                          st.status, st.qual);
        }
        trace_vdpa_mgmt_admin(vdpa_op_name(cmd.opcode), cmd.member,
                              st.status, st.qual, result);
        vdpa_cqe_encode(cqe, cmd.cid, st, s->cq_phase, result);
        if (!vdpa_fn_dma(s, s->cq_base + (uint64_t)s->cq_tail * VDPA_CQE_SIZE,
                         cqe, sizeof(cqe), true)) {
            vdpa_admin_fatal(s, VDPA_FATAL_DMA);
            break;
        }
        s->cq_tail = (s->cq_tail + 1) % s->aq_size;
        if (s->cq_tail == 0) {
            s->cq_phase = !s->cq_phase;
        }
        completed = true;
    }
    if (completed && s->aq_vector < 1 && msix_enabled(PCI_DEVICE(s))) {
        msix_notify(PCI_DEVICE(s), s->aq_vector);
    }
}

static void vdpa_admin_enable(VdpaMgmt *s, bool on)
{
    s->sq_head = s->sq_tail = s->cq_head = s->cq_tail = 0;
    s->cq_phase = true;
    s->fatal = VDPA_FATAL_NONE;
    s->status = 0;
    if (!on) {
        return;
    }
    if (s->aq_size < VDPA_AQ_MIN_SIZE || s->aq_size > VDPA_AQ_MAX_SIZE ||
        (s->aq_size & (s->aq_size - 1)) || s->sq_base % VDPA_SQE_SIZE ||
        s->cq_base % VDPA_CQE_SIZE) {
        vdpa_admin_fatal(s, VDPA_FATAL_BAD_RING);
        return;
    }
    s->status = VDPA_STATUS_READY;
}

static uint64_t vdpa_reg_read(void *opaque, hwaddr addr, unsigned size)
{
    VdpaMgmt *s = opaque;

    switch (addr) {
    case VDPA_REG_MAGIC:
        return VDPA_MGMT_MAGIC;
    case VDPA_REG_VERSION:
        return VDPA_MGMT_VERSION;
    case VDPA_REG_MAX_INST:
        return s->max_instances;
    case VDPA_REG_NUM_INST:
        return s->table.count;
    case VDPA_REG_CTRL:
        return s->ctrl;
    case VDPA_REG_STATUS:
        return s->status;
    case VDPA_REG_AQ_SIZE:
        return s->aq_size;
    case VDPA_REG_AQ_VECTOR:
        return s->aq_vector;
    case VDPA_REG_AQ_SQ_LO:
        return (uint32_t)s->sq_base;
    case VDPA_REG_AQ_SQ_HI:
        return s->sq_base >> 32;
    case VDPA_REG_AQ_CQ_LO:
        return (uint32_t)s->cq_base;
    case VDPA_REG_AQ_CQ_HI:
        return s->cq_base >> 32;
    case VDPA_REG_AQ_SQ_TAIL:
        return s->sq_tail;
    case VDPA_REG_AQ_SQ_HEAD:
        return s->sq_head;
    case VDPA_REG_AQ_CQ_HEAD:
        return s->cq_head;
    case VDPA_REG_AQ_CQ_TAIL:
        return s->cq_tail;
    case VDPA_REG_FATAL_CODE:
        return s->fatal;
    }
    return 0;
}

static void vdpa_reg_write(void *opaque, hwaddr addr, uint64_t val,
                           unsigned size)
{
    VdpaMgmt *s = opaque;
    bool enabled = s->ctrl & VDPA_CTRL_ENABLE;

    /* Ring geometry is fixed while the admin queue is enabled */
    if (enabled && addr >= VDPA_REG_AQ_SIZE && addr <= VDPA_REG_AQ_CQ_HI) {
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue register "
                      "0x%" HWADDR_PRIx " written while enabled\n", addr);
        return;
    }
    switch (addr) {
    case VDPA_REG_CTRL:
        s->ctrl = val & VDPA_CTRL_ENABLE;
        vdpa_admin_enable(s, s->ctrl);
        break;
    case VDPA_REG_AQ_SIZE:
        s->aq_size = val;
        break;
    case VDPA_REG_AQ_VECTOR:
        s->aq_vector = val & 0xffff;
        break;
    case VDPA_REG_AQ_SQ_LO:
        s->sq_base = deposit64(s->sq_base, 0, 32, val);
        break;
    case VDPA_REG_AQ_SQ_HI:
        s->sq_base = deposit64(s->sq_base, 32, 32, val);
        break;
    case VDPA_REG_AQ_CQ_LO:
        s->cq_base = deposit64(s->cq_base, 0, 32, val);
        break;
    case VDPA_REG_AQ_CQ_HI:
        s->cq_base = deposit64(s->cq_base, 32, 32, val);
        break;
    case VDPA_REG_AQ_SQ_TAIL:
    case VDPA_REG_AQ_CQ_HEAD:
        if (s->status != VDPA_STATUS_READY || val >= s->aq_size) {
            qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: admin queue index "
                          "%" PRIu64 " out of range or queue not ready\n",
                          val);
            return;
        }
        if (addr == VDPA_REG_AQ_SQ_TAIL) {
            s->sq_tail = val;
        } else {
            s->cq_head = val;
        }
        qemu_bh_schedule(s->admin_bh);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vdpa-mgmt: write to read-only "
                      "register 0x%" HWADDR_PRIx "\n", addr);
        break;
    }
}

static const MemoryRegionOps vdpa_reg_ops = {
    .read = vdpa_reg_read,
    .write = vdpa_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- Life cycle ---- */

static void vdpa_destroy_all(VdpaMgmt *s)
{
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, id + 1)) {
        vdpa_inst_free(s, vdpa_table_get(&s->table, id));
    }
}

static void vdpa_mgmt_reset(DeviceState *dev)
{
    VdpaMgmt *s = VDPA_MGMT(dev);

    /* A function reset reclaims every instance */
    vdpa_destroy_all(s);
    vdpa_iotlb_flush(&s->iotlb);
    g_array_set_size(s->kicks, 0);
    s->ctrl = 0;
    s->aq_size = 0;
    s->aq_vector = VDPA_AQ_NO_VECTOR;
    s->sq_base = s->cq_base = 0;
    vdpa_admin_enable(s, false);
}

static void vdpa_free_backends(VdpaMgmt *s)
{
    for (uint32_t i = 0; i < s->nblk; i++) {
        if (s->blk[i].blk) {
            blk_detach_dev(s->blk[i].blk, DEVICE(s));
            blk_unref(s->blk[i].blk);
        }
        g_free(s->blk[i].name);
    }
    g_free(s->blk);
    s->blk = NULL;
    s->nblk = 0;
}

/* blk-nodes=a:b:c; each a -blockdev node name or a -drive id */
static bool vdpa_open_backends(VdpaMgmt *s, Error **errp)
{
    g_auto(GStrv) names = NULL;

    if (!s->blk_nodes || !*s->blk_nodes) {
        return true;
    }
    names = g_strsplit(s->blk_nodes, ":", 0);
    s->nblk = g_strv_length(names);
    s->blk = g_new0(VdpaBlkBackend, s->nblk);
    for (uint32_t i = 0; i < s->nblk; i++) {
        VdpaBlkBackend *be = &s->blk[i];
        BlockDriverState *bs = bdrv_lookup_bs(names[i], names[i], NULL);
        int64_t len;

        be->name = g_strdup(names[i]);
        if (!bs) {
            error_setg(errp, "vdpa-mgmt: blk-nodes: no block node or drive "
                       "named '%s'", names[i]);
            return false;
        }
        be->read_only = bdrv_is_read_only(bs);
        be->blk = blk_new(qemu_get_aio_context(),
                          BLK_PERM_CONSISTENT_READ |
                          (be->read_only ? 0 : BLK_PERM_WRITE),
                          BLK_PERM_ALL);
        /*
         * Owned by this device: lets the node go inactive for migration
         * and come up inactive on an incoming one.
         */
        blk_attach_dev(be->blk, DEVICE(s));
        if (blk_insert_bs(be->blk, bs, errp) < 0) {
            error_prepend(errp, "vdpa-mgmt: blk-nodes: '%s': ", names[i]);
            return false;
        }
        len = blk_getlength(be->blk);
        if (len < 0) {
            error_setg_errno(errp, -len, "vdpa-mgmt: blk-nodes: '%s'",
                             names[i]);
            return false;
        }
        be->sectors = len / VDPA_BLK_SECTOR;
    }
    return true;
}

/*
 * vpri-host device slots the function takes: its own, and behind a
 * vIOMMU that translates PASIDs one more for PASID DMA (guest-physical).
 */
static unsigned vdpa_host_slots_needed(PCIDevice *pdev)
{
    return pci_device_iommu_address_space(pdev) != &address_space_memory &&
           pci_device_iommu_pasid_bits(pdev) ? 2 : 1;
}

static void vdpa_mgmt_realize(PCIDevice *pdev, Error **errp)
{
    VdpaMgmt *s = VDPA_MGMT(pdev);
    VdpaLimits *lim = &s->limits;

    if (s->max_instances == 0 || s->max_instances > VDPA_TABLE_MAX) {
        error_setg(errp, "vdpa-mgmt: max-instances must be 1..%u",
                   VDPA_TABLE_MAX);
        return;
    }
    if (s->iotlb_entries > VDPA_IOTLB_MAX_ENTRIES ||
        (s->iotlb_entries && s->iotlb_entries < VDPA_IOTLB_WAYS)) {
        error_setg(errp, "vdpa-mgmt: iotlb-entries must be 0 or %u..%u",
                   VDPA_IOTLB_WAYS, VDPA_IOTLB_MAX_ENTRIES);
        return;
    }
    if (s->host) {
        if (!vpri_host_can_attach(s->host, errp)) {
            return;
        }
        if (vdpa_host_slots_needed(pdev) > vpri_host_free_slots(s->host)) {
            error_setg(errp, "vdpa-mgmt: vpri-host '%s' has no two free "
                       "device slots (one for PASID DMA)",
                       object_get_canonical_path_component(OBJECT(s->host)));
            return;
        }
    }
    if (!vdpa_open_backends(s, errp)) {
        vdpa_free_backends(s);
        return;
    }
    if (vdpa_table_init(&s->table, s->max_instances) < 0) {
        error_setg(errp, "vdpa-mgmt: cannot allocate the instance table");
        vdpa_free_backends(s);
        return;
    }

    *lim = (VdpaLimits) {
        .max_instances = s->max_instances,
        .max_queues = VDPA_MGMT_MAX_QUEUES,
        .max_queue_size = VDPA_MGMT_MAX_QSIZE,
        .dma_bits = VDPA_DMA_BITS,
        .pasid_bits = MIN(pci_device_iommu_pasid_bits(pdev), 20),
    };
    lim->num_backends[VDPA_TYPE_BLK] = s->nblk;
    lim->config_size[VDPA_TYPE_BLK] = sizeof(struct virtio_blk_config);
    lim->features[VDPA_TYPE_BLK] =
        (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
        (1ULL << VIRTIO_RING_F_EVENT_IDX) |
        (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
        (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
        (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_MQ) |
        (1ULL << VIRTIO_BLK_F_RO);

    s->macs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                    NULL);
    if (s->nic_conf.peers.ncs[0]) {
        s->nic = qemu_new_nic(&vdpa_net_info, &s->nic_conf,
                              object_get_typename(OBJECT(s)), DEVICE(s)->id,
                              &DEVICE(s)->mem_reentrancy_guard, s);
        lim->num_backends[VDPA_TYPE_NET] = 1;
        lim->config_size[VDPA_TYPE_NET] = VDPA_NET_CFG_SIZE;
        lim->features[VDPA_TYPE_NET] =
            (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM) |
            (1ULL << VIRTIO_RING_F_EVENT_IDX) |
            (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
            (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
            (1ULL << VIRTIO_NET_F_MQ);
    }

    /* The translation cache needs the vIOMMU's invalidations */
    if (!lim->pasid_bits || !s->iotlb_entries ||
        !pci_device_iommu_set_pasid_invalidate(pdev, vdpa_pasid_invalidate,
                                               s)) {
        vdpa_iotlb_init(&s->iotlb, 0, VDPA_IOTLB_WAYS);
    } else if (vdpa_iotlb_init(&s->iotlb, s->iotlb_entries,
                               VDPA_IOTLB_WAYS) < 0) {
        pci_device_iommu_set_pasid_invalidate(pdev, NULL, NULL);
        error_setg(errp, "vdpa-mgmt: cannot allocate the translation cache");
        goto fail;
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    memory_region_init(&s->bar, OBJECT(s), "vdpa-mgmt-bar",
                       VDPA_MGMT_BAR_SIZE);
    memory_region_init_io(&s->regs, OBJECT(s), &vdpa_reg_ops, s,
                          "vdpa-mgmt-regs", VDPA_MGMT_DOORBELL_OFF);
    memory_region_init_io(&s->doorbell, OBJECT(s), &vdpa_doorbell_ops, s,
                          "vdpa-mgmt-doorbell", VDPA_MGMT_DOORBELL_SIZE);
    memory_region_add_subregion(&s->bar, 0, &s->regs);
    memory_region_add_subregion(&s->bar, VDPA_MGMT_DOORBELL_OFF,
                                &s->doorbell);
    pci_register_bar(pdev, VDPA_MGMT_REG_BAR,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar);
    if (pci_is_express(pdev) && pcie_endpoint_cap_init(pdev, 0x80) < 0) {
        error_setg(errp, "vdpa-mgmt: cannot add the PCIe capability");
        goto fail;
    }
    /*
     * PCIe PASID capability: instances issue PASID-tagged DMA, 20-bit
     * PASIDs, no execute or privileged requests.  The guest sets PASID
     * Enable before binding any (BIND_PASID checks it).
     */
    if (pci_is_express(pdev) &&
        pci_config_size(pdev) == PCIE_CONFIG_SPACE_SIZE) {
        s->pasid_cap = VDPA_MGMT_PASID_CAP_OFF;
        pcie_add_capability(pdev, PCI_EXT_CAP_ID_PASID, 1, s->pasid_cap,
                            PCI_EXT_CAP_PASID_SIZEOF);
        pci_set_word(pdev->config + s->pasid_cap + PCI_PASID_CAP,
                     VDPA_MGMT_PASID_BITS << 8);
        pci_set_word(pdev->wmask + s->pasid_cap + PCI_PASID_CTRL,
                     PCI_PASID_CTRL_ENABLE);
    }
    if (msix_init_exclusive_bar(pdev, 1, VDPA_MGMT_MSIX_BAR, errp)) {
        goto fail;
    }
    msix_vector_use(pdev, 0);

    s->kicks = g_array_new(false, false, sizeof(uint32_t));
    s->kick_bh = qemu_bh_new_guarded(vdpa_kick_bh, s,
                                     &DEVICE(s)->mem_reentrancy_guard);
    s->admin_bh = qemu_bh_new_guarded(vdpa_admin_bh, s,
                                      &DEVICE(s)->mem_reentrancy_guard);
    s->aq_vector = VDPA_AQ_NO_VECTOR;
    if (s->host) {
        s->slot_owner = g_new0(uint32_t, VDPA_FAULT_SLOTS);
        s->free_slots = g_new(uint16_t, VDPA_FAULT_SLOTS);
        for (uint16_t i = 0; i < VDPA_FAULT_SLOTS; i++) {
            s->free_slots[i] = VDPA_FAULT_SLOTS - 1 - i;
        }
        s->nfree_slots = VDPA_FAULT_SLOTS;
        s->slot_waiters = g_queue_new();
        /*
         * The slots were counted above and VDPA_FAULT_SLOTS is the host's
         * queue limit: only running out of memory is left, which aborts
         * as any allocation does.  The pinning policy ranks the function
         * as it always did, with network devices.
         */
        s->fault_dev = vpri_host_attach(s->host, DEVICE(s), VPRI_DMA_NET,
                                        VDPA_FAULT_SLOTS, vdpa_fault_done, s,
                                        &error_abort);
        s->gpa_fault_dev = s->fault_dev;
        /*
         * Behind a vIOMMU the function's slot is indexed by IOVA; PASID
         * DMA is checked after translation, by guest-physical page, in a
         * second slot.  Both answer into the same fault slots.
         */
        vpri_host_set_dma_space(s->host, s->fault_dev,
                                pci_device_iommu_address_space(pdev));
        if (vdpa_host_slots_needed(pdev) == 2) {
            s->gpa_fault_dev = vpri_host_attach(s->host, DEVICE(s),
                                                VPRI_DMA_NET,
                                                VDPA_FAULT_SLOTS,
                                                vdpa_fault_done, s,
                                                &error_abort);
        }
    }
    return;

fail:
    vdpa_iotlb_destroy(&s->iotlb);
    vdpa_table_destroy(&s->table);
    vdpa_free_backends(s);
}

static void vdpa_mgmt_exit(PCIDevice *pdev)
{
    VdpaMgmt *s = VDPA_MGMT(pdev);

    vdpa_destroy_all(s);
    if (vdpa_iotlb_capacity(&s->iotlb)) {
        pci_device_iommu_set_pasid_invalidate(pdev, NULL, NULL);
    }
    vdpa_iotlb_destroy(&s->iotlb);
    if (s->host) {
        if (s->gpa_fault_dev != s->fault_dev) {
            vpri_host_detach(s->host, s->gpa_fault_dev);
        }
        vpri_host_detach(s->host, s->fault_dev);
        g_free(s->slot_owner);
        g_free(s->free_slots);
        g_queue_free_full(s->slot_waiters, g_free);
    }
    qemu_bh_delete(s->kick_bh);
    qemu_bh_delete(s->admin_bh);
    g_array_free(s->kicks, true);
    while (s->spare) {
        VdpaBlkReq *r = s->spare;

        s->spare = r->next_spare;
        g_free(r);
    }
    s->nspare = 0;
    msix_uninit_exclusive_bar(pdev);
    if (s->nic) {
        qemu_del_nic(s->nic);
    }
    g_hash_table_destroy(s->macs);
    vdpa_table_destroy(&s->table);
    vdpa_free_backends(s);
}

/* ---- Migration ---- */

/*
 * The instances travel as one buffer: first the list (what the
 * destination must create: id, type, queues, backend), then each
 * instance's state in the same order.  Little-endian, fixed layouts.
 */
#define MIG_MAGIC       0x4749444d      /* "MDIG" */
#define MIG_LIST_REC    12
#define MIG_STATE_REC   (4 + 4 + 8 + 8 + 8 + 8 * 8)
/* virtq record, MSI message, le16 count of held heads (then the heads) */
#define MIG_QUEUE_REC   (VIRTQ_SAVED_SIZE + 16 + 2)
/* In a held head: a net TX frame already sent, only its push is left */
#define MIG_HELD_SENT   0x8000

static int vdpa_pre_save(void *opaque)
{
    VdpaMgmt *s = opaque;
    uint64_t len = 8;
    uint8_t *p;

    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        vdpa_inst_quiesce(inst);
        len += MIG_LIST_REC + MIG_STATE_REC +
               (uint64_t)inst->nqueues * MIG_QUEUE_REC;
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            for (VdpaBlkReq *r = inst->q[q].held; r; r = r->next_held) {
                len += 2;
            }
        }
    }
    g_free(s->mig_buf);
    s->mig_len = len;
    s->mig_buf = p = g_malloc0(len);
    vdpa_st32(p, MIG_MAGIC);
    vdpa_st32(p + 4, s->table.count);
    p += 8;
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        vdpa_st32(p, id);
        p[4] = inst->type;
        vdpa_st16(p + 6, inst->nqueues);
        vdpa_st32(p + 8, inst->backend);
        p += MIG_LIST_REC;
    }
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        VdpaInst *inst = vdpa_table_get(&s->table, id);

        p[0] = inst->status;
        p[1] = inst->suspended;
        p[2] = inst->wce;
        vdpa_st32(p + 4, inst->pasid);
        vdpa_st64(p + 8, inst->dev_features);
        vdpa_st64(p + 16, inst->drv_features);
        memcpy(p + 24, inst->mac, 6);
        vdpa_stats_save(&inst->stats, p + 32);
        p += MIG_STATE_REC;
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            iolab_virtq_save(&inst->q[q].vq, p);
            vdpa_st64(p + VIRTQ_SAVED_SIZE, inst->q[q].msi.addr);
            vdpa_st32(p + VIRTQ_SAVED_SIZE + 8, inst->q[q].msi.data);
            vdpa_st32(p + VIRTQ_SAVED_SIZE + 12, inst->q[q].msi.flags);
            p += MIG_QUEUE_REC - 2;
            /* Popped, stopped by a fault, not done: the heads to rebuild */
            for (VdpaBlkReq *r = inst->q[q].held; r; r = r->next_held) {
                vdpa_st16(p + 2, r->elem.head |
                                 (r->tx_sent ? MIG_HELD_SENT : 0));
                vdpa_st16(p, vdpa_ld16(p) + 1);
                p += 2;
            }
            p += 2;
        }
    }
    return 0;
}

static int vdpa_post_save(void *opaque)
{
    VdpaMgmt *s = opaque;

    g_free(s->mig_buf);
    s->mig_buf = NULL;
    s->mig_len = 0;
    return 0;
}

/* Recreate the instances of the list, then give them their state */
static int vdpa_post_load(void *opaque, int version_id)
{
    VdpaMgmt *s = opaque;
    const uint8_t *p = s->mig_buf, *end = p + s->mig_len;
    g_autofree VdpaInst **insts = NULL;
    uint32_t count;
    int ret = -EINVAL;

    vdpa_destroy_all(s);
    if (s->mig_len < 8 || vdpa_ld32(p) != MIG_MAGIC) {
        error_report("vdpa-mgmt: bad instance stream");
        goto out;
    }
    count = vdpa_ld32(p + 4);
    p += 8;
    if (count > s->table.max || (uint64_t)count * MIG_LIST_REC > end - p) {
        error_report("vdpa-mgmt: %u instances do not fit (max-instances "
                     "%u)", count, s->table.max);
        goto out;
    }
    insts = g_new0(VdpaInst *, count);
    for (uint32_t i = 0; i < count; i++, p += MIG_LIST_REC) {
        uint32_t id = vdpa_ld32(p);
        uint16_t nq = vdpa_ld16(p + 6);
        uint32_t backend = vdpa_ld32(p + 8);
        VdpaInst *inst;

        if ((p[4] != VDPA_TYPE_BLK && p[4] != VDPA_TYPE_NET) || !nq ||
            nq > VDPA_MGMT_MAX_QUEUES ||
            backend >= s->limits.num_backends[p[4]]) {
            error_report("vdpa-mgmt: instance %u: type %u, %u queues or "
                         "backend %u not available here", id, p[4], nq,
                         backend);
            goto out;
        }
        inst = g_malloc0(sizeof(*inst) + nq * sizeof(VdpaQueue));
        inst->s = s;
        inst->id = id;
        inst->type = p[4];
        inst->nqueues = nq;
        inst->backend = backend;
        inst->as = pci_get_address_space(PCI_DEVICE(s));
        if (vdpa_table_insert_at(&s->table, id, inst) < 0) {
            error_report("vdpa-mgmt: instance id %u invalid or repeated", id);
            g_free(inst);
            goto out;
        }
        insts[i] = inst;
    }
    vdpa_table_rebuild_free(&s->table);
    for (uint32_t i = 0; i < count; i++) {
        VdpaInst *inst = insts[i];

        if (MIG_STATE_REC + (uint64_t)inst->nqueues * MIG_QUEUE_REC >
            end - p) {
            error_report("vdpa-mgmt: instance stream truncated");
            goto out;
        }
        inst->status = p[0];
        inst->suspended = p[1];
        inst->wce = p[2];
        inst->pasid = vdpa_ld32(p + 4);
        inst->dev_features = vdpa_ld64(p + 8);
        inst->drv_features = vdpa_ld64(p + 16);
        memcpy(inst->mac, p + 24, 6);
        if (inst->type == VDPA_TYPE_NET) {
            g_hash_table_insert(s->macs, g_memdup2(&(uint64_t) {
                                    vdpa_mac_key(inst->mac) }, 8), inst);
        }
        vdpa_stats_load(&inst->stats, p + 32);
        p += MIG_STATE_REC;
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            VdpaQueue *vq = &inst->q[q];
            VdpaBlkReq **tail = &vq->held;
            uint16_t nheld;

            vq->fault_slot = VDPA_NO_FAULT_SLOT;
            if (MIG_QUEUE_REC > end - p ||
                iolab_virtq_load(&vq->vq, p) < 0) {
                error_report("vdpa-mgmt: instance %u queue %u: bad queue "
                             "record", inst->id, q);
                goto out;
            }
            vq->msi.addr = vdpa_ld64(p + VIRTQ_SAVED_SIZE);
            vq->msi.data = vdpa_ld32(p + VIRTQ_SAVED_SIZE + 8);
            vq->msi.flags = vdpa_ld32(p + VIRTQ_SAVED_SIZE + 12);
            nheld = vdpa_ld16(p + MIG_QUEUE_REC - 2);
            p += MIG_QUEUE_REC;
            if (2ULL * nheld > end - p) {
                error_report("vdpa-mgmt: instance stream truncated");
                goto out;
            }
            /* Rebuild the held requests from their heads, in order */
            for (uint16_t k = 0; k < nheld; k++, p += 2) {
                VdpaBlkReq *req = vdpa_req_get(s, inst, q);
                uint16_t head = vdpa_ld16(p) & ~MIG_HELD_SENT;
                const char *err = NULL;
                uint64_t fault;

                req->tx_sent = vdpa_ld16(p) & MIG_HELD_SENT;
                if (iolab_virtq_read_chain(&vq->vq, &vdpa_dma_ops, inst,
                                     head, &req->elem, &fault,
                                     &err) != VIRTQ_OK) {
                    vdpa_req_put(s, req);
                    error_report("vdpa-mgmt: instance %u queue %u: held "
                                 "request %u cannot be rebuilt: %s",
                                 inst->id, q, vdpa_ld16(p), err ?: "fault");
                    goto out;
                }
                *tail = req;
                tail = &req->next_held;
            }
        }
        if (inst->pasid != VDPA_NO_PASID &&
            (!s->limits.pasid_bits ||
             inst->pasid >= (1u << s->limits.pasid_bits))) {
            error_report("vdpa-mgmt: instance %u: PASID %u cannot be "
                         "translated here", inst->id, inst->pasid);
            goto out;
        }
        /* Buffers published before the switch-over: look again */
        for (uint16_t q = 0; q < inst->nqueues; q++) {
            if (inst->q[q].vq.enabled) {
                vdpa_queue_kick(s, inst, q);
            }
        }
    }
    if (s->status == VDPA_STATUS_READY) {
        qemu_bh_schedule(s->admin_bh);
    }
    ret = 0;
out:
    if (ret) {
        vdpa_destroy_all(s);
    }
    vdpa_post_save(s);
    return ret;
}

static const VMStateDescription vmstate_vdpa_mgmt = {
    .name = TYPE_VDPA_MGMT,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = vdpa_pre_save,
    .post_save = vdpa_post_save,
    .post_load = vdpa_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VdpaMgmt),
        VMSTATE_MSIX(parent_obj, VdpaMgmt),
        VMSTATE_UINT32(ctrl, VdpaMgmt),
        VMSTATE_UINT32(status, VdpaMgmt),
        VMSTATE_UINT32(fatal, VdpaMgmt),
        VMSTATE_UINT32(aq_size, VdpaMgmt),
        VMSTATE_UINT32(aq_vector, VdpaMgmt),
        VMSTATE_UINT64(sq_base, VdpaMgmt),
        VMSTATE_UINT64(cq_base, VdpaMgmt),
        VMSTATE_UINT32(sq_tail, VdpaMgmt),
        VMSTATE_UINT32(sq_head, VdpaMgmt),
        VMSTATE_UINT32(cq_head, VdpaMgmt),
        VMSTATE_UINT32(cq_tail, VdpaMgmt),
        VMSTATE_BOOL(cq_phase, VdpaMgmt),
        VMSTATE_UINT64(admin_cmds, VdpaMgmt),
        VMSTATE_UINT64(admin_errors, VdpaMgmt),
        VMSTATE_UINT64(bad_doorbells, VdpaMgmt),
        VMSTATE_UINT64(created, VdpaMgmt),
        VMSTATE_UINT64(destroyed, VdpaMgmt),
        VMSTATE_UINT32(mig_len, VdpaMgmt),
        VMSTATE_VBUFFER_ALLOC_UINT32(mig_buf, VdpaMgmt, 0, NULL, mig_len),
        VMSTATE_END_OF_LIST()
    },
};

static const Property vdpa_mgmt_properties[] = {
    DEFINE_PROP_UINT32("max-instances", VdpaMgmt, max_instances, 65536),
    DEFINE_PROP_STRING("blk-nodes", VdpaMgmt, blk_nodes),
    DEFINE_NIC_PROPERTIES(VdpaMgmt, nic_conf),
    DEFINE_PROP_LINK("host", VdpaMgmt, host, TYPE_VPRI_HOST, VpriHost *),
    DEFINE_PROP_UINT32("iotlb-entries", VdpaMgmt, iotlb_entries, 4096),
};

static void vdpa_mgmt_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);

    pc->realize = vdpa_mgmt_realize;
    pc->exit = vdpa_mgmt_exit;
    pc->vendor_id = VDPA_MGMT_PCI_VENDOR_ID;
    pc->device_id = VDPA_MGMT_PCI_DEVICE_ID;
    pc->revision = VDPA_MGMT_PCI_REVISION;
    pc->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "vDPA management function (managed virtio instances)";
    device_class_set_legacy_reset(dc, vdpa_mgmt_reset);
    dc->vmsd = &vmstate_vdpa_mgmt;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, vdpa_mgmt_properties);
}

static const TypeInfo vdpa_mgmt_info = {
    .name = TYPE_VDPA_MGMT,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VdpaMgmt),
    .class_init = vdpa_mgmt_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void vdpa_mgmt_register_types(void)
{
    type_register_static(&vdpa_mgmt_info);
}

type_init(vdpa_mgmt_register_types)
