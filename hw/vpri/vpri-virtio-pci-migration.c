/*
 * VPRI virtio-pci transport: migration.  The transport's state and its
 * queues as VMState (vmstate_vpri_virtio_pci, which every device embeds),
 * every loaded field checked in post_load before anything uses it, and
 * the in-flight chains a device saves and loads as checked records
 * (vpri_virtio_pci_save_elem() and friends).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/iolab/pci-stream.h"
#include "migration/vmstate.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "hw/vpri/vpri-host.h"
#include "vpri-virtio-pci-internal.h"

static bool vpri_vpci_vector_ok(PCIDevice *pci, uint16_t vector)
{
    return vector == VIRTIO_NO_VECTOR || vector < pci->msix_entries_nr;
}

/*
 * One popped chain, as it travels in a device's migration section
 * (docs/vpri-blk.rst): a VpriMigElemHdr, then nseg VpriMigElemSeg, all
 * little-endian.  The structs are the stream's layout byte for byte
 * (sizes checked below); records are copied in and out of them.
 */
typedef struct QEMU_PACKED VpriMigElemHdr {
    uint16_t queue;
    uint16_t head;
    uint16_t nseg;
    uint16_t reserved;
    uint32_t in_len;
    uint32_t out_len;
} VpriMigElemHdr;
QEMU_BUILD_BUG_ON(sizeof(VpriMigElemHdr) != 16);

typedef struct QEMU_PACKED VpriMigElemSeg {
    uint64_t addr;
    uint32_t len;
    uint8_t write;              /* device-writable: 0 or 1 */
    uint8_t reserved[3];
} VpriMigElemSeg;
QEMU_BUILD_BUG_ON(sizeof(VpriMigElemSeg) != 16);

#define VPRI_MIG_ELEM_HDR   sizeof(VpriMigElemHdr)
#define VPRI_MIG_ELEM_SEG   sizeof(VpriMigElemSeg)

void vpri_virtio_pci_save_elem(VpriVirtioPCI *vp, uint16_t queue,
                               const VirtqElem *e)
{
    uint32_t len = VPRI_MIG_ELEM_HDR + e->nseg * VPRI_MIG_ELEM_SEG;
    VpriMigElemHdr hdr = {
        .queue = cpu_to_le16(queue),
        .head = cpu_to_le16(e->head),
        .nseg = cpu_to_le16(e->nseg),
        .in_len = cpu_to_le32(e->in_len),
        .out_len = cpu_to_le32(e->out_len),
    };
    uint8_t *p;

    vp->inflight = g_realloc(vp->inflight, vp->inflight_len + len);
    p = vp->inflight + vp->inflight_len;
    vp->inflight_len += len;
    memcpy(p, &hdr, sizeof(hdr));
    p += sizeof(hdr);
    for (uint16_t k = 0; k < e->nseg; k++, p += sizeof(VpriMigElemSeg)) {
        VpriMigElemSeg seg = {
            .addr = cpu_to_le64(e->seg[k].addr),
            .len = cpu_to_le32(e->seg[k].len),
            .write = e->seg[k].write,
        };

        memcpy(p, &seg, sizeof(seg));
    }
}

/*
 * Parse the chain at *@off of vp->inflight into @e (which may be NULL):
 * NULL if it is well formed, else what is wrong with it.
 */
static const char *vpri_vpci_parse_elem(VpriVirtioPCI *vp, uint32_t *off,
                                        uint16_t *queue, VirtqElem *e)
{
    const uint8_t *p = vp->inflight + *off;
    uint32_t left = vp->inflight_len - *off;
    uint64_t in_len = 0, out_len = 0;
    uint16_t q, head, nseg;
    bool seen_write = false;
    VpriMigElemHdr hdr;

    if (*off > vp->inflight_len || left < VPRI_MIG_ELEM_HDR) {
        return "truncated header";
    }
    memcpy(&hdr, p, sizeof(hdr));
    q = le16_to_cpu(hdr.queue);
    head = le16_to_cpu(hdr.head);
    nseg = le16_to_cpu(hdr.nseg);
    if (q >= vp->num_queues || !vp->queues[q].enabled) {
        return "queue out of range or not enabled";
    }
    if (head >= vp->queues[q].vq.size) {
        return "head out of range";
    }
    if (nseg > VIRTQ_ELEM_MAX_SEG ||
        (left - VPRI_MIG_ELEM_HDR) / VPRI_MIG_ELEM_SEG < nseg) {
        return "segment count out of range";
    }
    p += VPRI_MIG_ELEM_HDR;
    for (uint16_t k = 0; k < nseg; k++) {
        VpriMigElemSeg seg;
        uint64_t addr;
        uint32_t len;

        memcpy(&seg, p + k * VPRI_MIG_ELEM_SEG, sizeof(seg));
        addr = le64_to_cpu(seg.addr);
        len = le32_to_cpu(seg.len);
        if (seg.write > 1 || (seen_write && !seg.write)) {
            return "segment direction invalid";
        }
        if (len == 0 || addr + (len - 1) < addr) {
            return "segment length invalid";
        }
        seen_write |= seg.write;
        *(seg.write ? &in_len : &out_len) += len;
        if (e) {
            e->seg[k] = (VirtqSeg) {
                .addr = addr, .len = len, .write = seg.write,
            };
        }
    }
    if (in_len != le32_to_cpu(hdr.in_len) ||
        out_len != le32_to_cpu(hdr.out_len)) {
        return "in_len/out_len do not match the segments";
    }
    if (e) {
        e->head = head;
        e->nseg = nseg;
        e->in_len = in_len;
        e->out_len = out_len;
    }
    *queue = q;
    *off += VPRI_MIG_ELEM_HDR + nseg * VPRI_MIG_ELEM_SEG;
    return NULL;
}

const char *vpri_virtio_pci_check_elem(VpriVirtioPCI *vp, uint32_t *off,
                                       uint16_t *queue)
{
    return vpri_vpci_parse_elem(vp, off, queue, NULL);
}

bool vpri_virtio_pci_load_elem(VpriVirtioPCI *vp, uint32_t *off,
                               uint16_t *queue, VirtqElem *e)
{
    return vpri_vpci_parse_elem(vp, off, queue, e) == NULL;
}

void vpri_virtio_pci_prefetch_inflight(VpriVirtioPCI *vp)
{
    g_autofree VirtqElem *e = NULL;
    uint16_t queue;

    if (!vp->host || !vp->inflight_len) {
        return;
    }
    e = g_new(VirtqElem, 1);
    for (uint32_t off = 0; off < vp->inflight_len;) {
        if (!vpri_virtio_pci_load_elem(vp, &off, &queue, e)) {
            return;     /* checked on load: cannot happen */
        }
        for (uint16_t seg = 0; seg < e->nseg; seg++) {
            vpri_host_prefetch(vp->host, vp->fault_device_id,
                               e->seg[seg].addr, e->seg[seg].len);
        }
    }
}

/*
 * Everything the stream loaded into @q, checked before anything uses it:
 * NULL, or the name of the first field that is out of range.
 */
static const char *vpri_vpci_queue_bad_field(VpriVirtioPCI *vp, VpriQueue *q)
{
    uint8_t saved[VIRTQ_SAVED_SIZE];
    Virtq checked;

    if (!vpri_vpci_vector_ok(vpri_vpci_pci(vp), q->msix_vector)) {
        return "msix_vector";
    }
    if (q->size > q->max_size || (q->size & (q->size - 1)) ||
        (q->enabled && q->size == 0)) {
        return "size";
    }
    if (q->vq.enabled != q->enabled) {
        return "vq.enabled";
    }
    if (!q->enabled) {
        return NULL;
    }
    if (q->vq.size != q->size) {
        return "vq.size";
    }
    if (q->vq.desc != q->desc || q->vq.avail != q->driver ||
        q->vq.used != q->device) {
        return "vq.desc/avail/used";
    }
    /*
     * The engine's own restore checks the rest (the error code, the ring
     * geometry, last_avail_idx no more than size ahead of used_idx) and
     * normalizes the flags.
     */
    iolab_virtq_save(&q->vq, saved);
    if (iolab_virtq_load(&checked, saved) != 0) {
        return "vq (error code or last_avail_idx/used_idx)";
    }
    /* shadow_avail_idx is a cache: the next pop reads avail->idx again */
    q->vq = checked;
    return NULL;
}

/* Bytes of the in-flight chains a device can have: see post_load */
static uint64_t vpri_vpci_inflight_max(VpriVirtioPCI *vp)
{
    uint64_t chains = 0;

    for (uint16_t i = 0; i < vp->num_queues; i++) {
        chains += vp->queues[i].max_size;
    }
    return chains * (VPRI_MIG_ELEM_HDR +
                     VIRTQ_ELEM_MAX_SEG * VPRI_MIG_ELEM_SEG);
}

/* Checked before the in-flight buffer is allocated */
static bool vpri_vpci_inflight_len_ok(void *opaque, int version_id)
{
    VpriVirtioPCI *vp = opaque;

    if (vp->inflight_len > vpri_vpci_inflight_max(vp)) {
        error_report("vpri-virtio-pci: migrated inflight_len %u is more "
                     "than %" PRIu64 ", refused", vp->inflight_len,
                     vpri_vpci_inflight_max(vp));
        return false;
    }
    return true;
}

static int vpri_vpci_post_load(void *opaque, int version_id)
{
    VpriVirtioPCI *vp = opaque;
    PCIDevice *pci = vpri_vpci_pci(vp);
    g_autofree uint32_t *per_queue = g_new0(uint32_t, vp->num_queues);
    uint16_t queue;
    uint32_t n = 0;

    if (!iolab_pci_stream_intx_pin_ok(pci, "vpri-virtio-pci")) {
        return -EINVAL;
    }
    if (!vpri_vpci_vector_ok(pci, vp->config_vector)) {
        error_report("vpri-virtio-pci: migrated config_vector %u out of "
                     "range", vp->config_vector);
        return -EINVAL;
    }
    if (vp->guest_features & ~vp->host_features) {
        error_report("vpri-virtio-pci: migrated guest_features 0x%" PRIx64
                     " not offered (0x%" PRIx64 ")", vp->guest_features,
                     vp->host_features);
        return -EINVAL;
    }
    if (vp->num_queues < 64 && vp->kick_pending >> vp->num_queues) {
        error_report("vpri-virtio-pci: migrated kick_pending 0x%" PRIx64
                     " names queues beyond num_queues %u", vp->kick_pending,
                     vp->num_queues);
        return -EINVAL;
    }
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriQueue *q = &vp->queues[i];
        const char *bad = vpri_vpci_queue_bad_field(vp, q);

        if (bad) {
            error_report("vpri-virtio-pci: migrated queues[%u].%s out of "
                         "range (size %u of at most %u, vector %u)", i, bad,
                         q->size, q->max_size, q->msix_vector);
            return -EINVAL;
        }
    }
    /*
     * Every in-flight chain: well formed, on an enabled queue, and no
     * more of them per queue than it has popped and not pushed
     * (last_avail_idx - used_idx, at most its size, checked above): each
     * is pushed once it completes, and a push beyond that would let
     * used->idx overtake avail->idx.
     */
    for (uint32_t off = 0; off < vp->inflight_len; n++) {
        const char *bad = vpri_virtio_pci_check_elem(vp, &off, &queue);
        VpriQueue *q;

        if (bad) {
            error_report("vpri-virtio-pci: migrated inflight chain %u: %s",
                         n, bad);
            return -EINVAL;
        }
        q = &vp->queues[queue];
        if (++per_queue[queue] >
            (uint16_t)(q->vq.last_avail_idx - q->vq.used_idx)) {
            error_report("vpri-virtio-pci: migrated inflight: more chains "
                         "on queue %u than it has popped and not pushed "
                         "(queues[%u].vq.last_avail_idx %u, used_idx %u)",
                         queue, queue, q->vq.last_avail_idx,
                         q->vq.used_idx);
            return -EINVAL;
        }
    }

    /* All checked: now take the vectors and set up the queues. */
    if (vp->config_vector != VIRTIO_NO_VECTOR) {
        msix_vector_use(pci, vp->config_vector);
    }
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        VpriQueue *q = &vp->queues[i];

        if (q->msix_vector != VIRTIO_NO_VECTOR) {
            msix_vector_use(pci, q->msix_vector);
        }
        vpri_vpci_drop_ring_caches(q);
        /*
         * Every page is present here: whatever the queue waited for on
         * the source is simply tried again once the VM runs.
         */
        q->blocked = false;
        q->fault_failed = false;
        if (q->enabled) {
            vp->kick_pending |= 1ULL << i;
        }
    }
    return 0;
}

static int vpri_vpci_post_save(void *opaque)
{
    vpri_vpci_drop_inflight(opaque);
    return 0;
}

static const VMStateDescription vmstate_vpri_queue = {
    .name = "vpri-virtio-pci/queue",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(vq.desc, VpriQueue),
        VMSTATE_UINT64(vq.avail, VpriQueue),
        VMSTATE_UINT64(vq.used, VpriQueue),
        VMSTATE_UINT16(vq.size, VpriQueue),
        VMSTATE_UINT16(vq.last_avail_idx, VpriQueue),
        VMSTATE_UINT16(vq.shadow_avail_idx, VpriQueue),
        VMSTATE_UINT16(vq.used_idx, VpriQueue),
        VMSTATE_UINT16(vq.signalled_used, VpriQueue),
        VMSTATE_UINT8(vq.signalled_used_valid, VpriQueue),
        VMSTATE_UINT8(vq.enabled, VpriQueue),
        VMSTATE_UINT8(vq.event_idx, VpriQueue),
        VMSTATE_UINT8(vq.indirect, VpriQueue),
        VMSTATE_UINT8(vq.error, VpriQueue),
        VMSTATE_UINT16(size, VpriQueue),
        VMSTATE_UINT16(msix_vector, VpriQueue),
        VMSTATE_UINT64(desc, VpriQueue),
        VMSTATE_UINT64(driver, VpriQueue),
        VMSTATE_UINT64(device, VpriQueue),
        VMSTATE_BOOL(enabled, VpriQueue),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_vpri_virtio_pci = {
    .name = "vpri-virtio-pci",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = vpri_vpci_post_load,
    .post_save = vpri_vpci_post_save,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VpriVirtioPCI),
        VMSTATE_MSIX(parent_obj, VpriVirtioPCI),
        VMSTATE_UINT64_EQUAL(host_features, VpriVirtioPCI, NULL),
        VMSTATE_UINT64(guest_features, VpriVirtioPCI),
        VMSTATE_UINT32(dfselect, VpriVirtioPCI),
        VMSTATE_UINT32(gfselect, VpriVirtioPCI),
        VMSTATE_UINT16(config_vector, VpriVirtioPCI),
        VMSTATE_UINT16(queue_sel, VpriVirtioPCI),
        VMSTATE_UINT8(status, VpriVirtioPCI),
        VMSTATE_UINT8(config_generation, VpriVirtioPCI),
        VMSTATE_UINT8(isr_status, VpriVirtioPCI),
        VMSTATE_UINT64(kick_pending, VpriVirtioPCI),
        VMSTATE_UINT16_EQUAL(num_queues, VpriVirtioPCI, NULL),
        VMSTATE_STRUCT_VARRAY_POINTER_UINT16(queues, VpriVirtioPCI,
                                             num_queues, vmstate_vpri_queue,
                                             VpriQueue),
        VMSTATE_UINT32(inflight_len, VpriVirtioPCI),
        /* Not in the stream: bounds the allocation that follows */
        VMSTATE_VALIDATE("inflight_len", vpri_vpci_inflight_len_ok),
        VMSTATE_VBUFFER_ALLOC_UINT32(inflight, VpriVirtioPCI, 0, NULL,
                                     inflight_len),
        VMSTATE_END_OF_LIST()
    },
};
