/*
 * vdpa-mgmt: migration of the function and its instances
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
#include "migration/register.h"
#include "migration/qemu-file-types.h"
#include "qemu/bitmap.h"
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
#include "vdpa-mgmt-internal.h"
#include "trace.h"

/*
 * Two sections (docs/vdpa-mgmt.rst, "Migration"):
 *
 * - "<pci path>/vdpa-mgmt-instances", iterative (SaveVMHandlers): every
 *   instance as a self-contained record, all of them in save_setup while
 *   the VM still runs, then in each iteration those that changed since
 *   they were sent, and in the downtime only those that changed since
 *   the last iteration, or a "gone" record for an id destroyed since.
 *   Changes are found through a bitmap of ids (mig_changed) that every
 *   path changing an instance marks (vdpa_mig_mark()).
 * - the device's VMState, version 2: PCI, MSI-X, the admin queue and the
 *   counters.  Its post_load finishes the instances once all of RAM is
 *   in (under postcopy: once the pages it reads have come, see
 *   vdpa_load_dma_ops): held requests are rebuilt from their heads, free
 *   ids are rebuilt, and enabled queues are kicked.
 *
 * A record is a VdpaMigListRec, then for a live instance a
 * VdpaMigStateRec and per queue a VdpaMigQueueRec followed by its held
 * heads (le16 each).  Records travel in chunks: a VdpaMigChunkHdr
 * ("MDIG", length), the records; a chunk of length 0 ends a section's
 * data.  All fields are little-endian; the structs are the stream's
 * layout byte for byte (sizes checked below), so a record is read by
 * copying it into its struct, never by offsets.
 */
#define VDPA_MIG_MAGIC       0x4749444d      /* "MDIG" */
#define VDPA_MIG_VMSD_MAGIC  0x56445041      /* "VDPA" */

typedef struct QEMU_PACKED VdpaMigChunkHdr {
    uint32_t magic;             /* VDPA_MIG_MAGIC */
    uint32_t len;               /* bytes of records that follow; 0: end */
} VdpaMigChunkHdr;
QEMU_BUILD_BUG_ON(sizeof(VdpaMigChunkHdr) != 8);

/* Every record starts with this; a gone record is only this */
typedef struct QEMU_PACKED VdpaMigListRec {
    uint32_t id;
    uint8_t type;               /* VDPA_MIG_GONE: no instance any more */
    uint8_t reserved;
    uint16_t queues;
    uint32_t backend;
} VdpaMigListRec;
QEMU_BUILD_BUG_ON(sizeof(VdpaMigListRec) != 12);

/* A live instance's state, after its VdpaMigListRec */
typedef struct QEMU_PACKED VdpaMigStateRec {
    uint8_t status;
    uint8_t suspended;
    uint8_t wce;
    uint8_t reserved0;
    uint32_t pasid;
    uint64_t dev_features;
    uint64_t drv_features;
    uint8_t mac[6];
    uint8_t reserved1[2];
    uint8_t stats[VDPA_STATS_SIZE]; /* the STATS result (vdpa_stats_save) */
} VdpaMigStateRec;
QEMU_BUILD_BUG_ON(sizeof(VdpaMigStateRec) != 96);

/* One per queue, after the VdpaMigStateRec; then nheld le16 heads */
typedef struct QEMU_PACKED VdpaMigQueueRec {
    uint8_t vq[VIRTQ_SAVED_SIZE];   /* iolab_virtq_save()'s record */
    uint64_t msi_addr;
    uint32_t msi_data;
    uint32_t msi_flags;
    uint16_t nheld;
} VdpaMigQueueRec;
QEMU_BUILD_BUG_ON(sizeof(VdpaMigQueueRec) != VIRTQ_SAVED_SIZE + 18);

#define VDPA_MIG_LIST_REC    sizeof(VdpaMigListRec)
#define VDPA_MIG_STATE_REC   sizeof(VdpaMigStateRec)
#define VDPA_MIG_QUEUE_REC   sizeof(VdpaMigQueueRec)
/* In a held head: a net TX frame already sent, only its push is left */
#define VDPA_MIG_HELD_SENT   0x8000
#define VDPA_MIG_GONE        0
/* Chunks the source cuts at, and the longest the destination takes */
#define VDPA_MIG_CHUNK       (256 * KiB)
#define VDPA_MIG_MAX_REC     (VDPA_MIG_LIST_REC + VDPA_MIG_STATE_REC + \
                              VDPA_MGMT_MAX_QUEUES * \
                              (VDPA_MIG_QUEUE_REC + 2 * VDPA_MGMT_MAX_QSIZE))
#define VDPA_MIG_MAX_CHUNK   (VDPA_MIG_CHUNK + VDPA_MIG_MAX_REC)
/* Records one iteration sends at most (the BQL is held meanwhile) */
#define VDPA_MIG_ITER_RECS   4096
/* What state_pending counts per changed instance */
#define VDPA_MIG_AVG_REC     (VDPA_MIG_LIST_REC + VDPA_MIG_STATE_REC + \
                              VDPA_MIG_QUEUE_REC)

/* ---- Source ---- */

/*
 * A blk request popped and not yet pushed, from the shared state
 * machine: its queue and head, in @opaque (a GArray of uint32_t).  They
 * come queue by queue, each queue's in order.
 */
static void vdpa_mig_blk_head(void *opaque, uint16_t queue,
                              const VirtqElem *e)
{
    uint32_t qh = (uint32_t)queue << 16 | e->head;

    g_array_append_val((GArray *)opaque, qh);
}

static void vdpa_mig_put_inst(GByteArray *b, VdpaInst *inst)
{
    VdpaMigListRec rec = {
        .id = cpu_to_le32(inst->id),
        .type = inst->type,
        .queues = cpu_to_le16(inst->nqueues),
        .backend = cpu_to_le32(inst->backend),
    };
    VdpaMigStateRec st = {
        .status = inst->status,
        .suspended = inst->suspended,
        .wce = inst->wce,
        .pasid = cpu_to_le32(inst->pasid),
        .dev_features = cpu_to_le64(inst->dev_features),
        .drv_features = cpu_to_le64(inst->drv_features),
    };
    g_autoptr(GArray) blk_heads = NULL;
    guint k = 0;

    memcpy(st.mac, inst->mac, sizeof(st.mac));
    vdpa_stats_save(&inst->stats, st.stats);
    g_byte_array_append(b, (const uint8_t *)&rec, sizeof(rec));
    g_byte_array_append(b, (const uint8_t *)&st, sizeof(st));
    if (inst->blk_req) {
        blk_heads = g_array_new(false, false, sizeof(uint32_t));
        iolab_blk_foreach_inflight(inst->blk_req, vdpa_mig_blk_head,
                                   blk_heads);
    }
    for (uint16_t q = 0; q < inst->nqueues; q++) {
        VdpaMigQueueRec qr = {
            .msi_addr = cpu_to_le64(inst->q[q].msi.addr),
            .msi_data = cpu_to_le32(inst->q[q].msi.data),
            .msi_flags = cpu_to_le32(inst->q[q].msi.flags),
        };
        uint16_t nheld = 0;
        guint first = k;

        iolab_virtq_save(&inst->q[q].vq, qr.vq);
        for (VdpaNetReq *r = inst->q[q].held; r; r = r->next_held) {
            nheld++;
        }
        while (blk_heads && k < blk_heads->len &&
               g_array_index(blk_heads, uint32_t, k) >> 16 == q) {
            k++;
        }
        nheld += k - first;
        qr.nheld = cpu_to_le16(nheld);
        g_byte_array_append(b, (const uint8_t *)&qr, sizeof(qr));
        /* Popped, not pushed yet: the heads to rebuild */
        for (VdpaNetReq *r = inst->q[q].held; r; r = r->next_held) {
            uint16_t h = cpu_to_le16(r->elem.head |
                                     (r->tx_sent ? VDPA_MIG_HELD_SENT : 0));

            g_byte_array_append(b, (const uint8_t *)&h, sizeof(h));
        }
        for (guint i = first; i < k; i++) {
            uint16_t h = cpu_to_le16(g_array_index(blk_heads, uint32_t, i) &
                                     0xffff);

            g_byte_array_append(b, (const uint8_t *)&h, sizeof(h));
        }
    }
}

static void vdpa_mig_put_gone(GByteArray *b, uint32_t id)
{
    VdpaMigListRec rec = {
        .id = cpu_to_le32(id),
        .type = VDPA_MIG_GONE,
    };

    g_byte_array_append(b, (const uint8_t *)&rec, sizeof(rec));
}

/* Send what @b holds as one chunk (or the end mark if empty) */
static void vdpa_mig_flush(QEMUFile *f, GByteArray *b)
{
    VdpaMigChunkHdr hdr = {
        .magic = cpu_to_le32(VDPA_MIG_MAGIC),
        .len = cpu_to_le32(b->len),
    };

    qemu_put_buffer(f, (const uint8_t *)&hdr, sizeof(hdr));
    if (b->len) {
        qemu_put_buffer(f, b->data, b->len);
        g_byte_array_set_size(b, 0);
    }
}

/*
 * Send the instances marked changed, at most @max of them: a record for
 * a live one, a gone record for an id without instance.  Returns true
 * when none is left marked.
 */
static bool vdpa_mig_put_changed(VdpaMgmt *s, QEMUFile *f, GByteArray *b,
                                 uint32_t max, uint64_t *sent)
{
    unsigned long id = 0;

    while (max--) {
        VdpaInst *inst;

        id = find_next_bit(s->mig_changed, s->table.max + 1, id);
        if (id > s->table.max) {
            return true;
        }
        clear_bit(id, s->mig_changed);
        qatomic_dec(&s->mig_nchanged);
        inst = vdpa_table_get(&s->table, id);
        (*sent)++;
        if (inst) {
            vdpa_inst_quiesce(inst);
            vdpa_mig_put_inst(b, inst);
        } else {
            vdpa_mig_put_gone(b, id);
        }
        if (b->len >= VDPA_MIG_CHUNK) {
            vdpa_mig_flush(f, b);
        }
    }
    return find_next_bit(s->mig_changed, s->table.max + 1, 0) >
           s->table.max;
}

/* Every instance, while the VM still runs; marks start from here */
static int vdpa_mig_save_setup(QEMUFile *f, void *opaque, Error **errp)
{
    VdpaMgmt *s = opaque;
    g_autoptr(GByteArray) b = g_byte_array_new();

    g_free(s->mig_changed);
    s->mig_changed = bitmap_new((uint64_t)s->table.max + 1);
    s->mig_nchanged = 0;
    s->mig_precopy_sent = 0;
    s->mig_downtime_sent = 0;
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        vdpa_mig_put_inst(b, vdpa_table_get(&s->table, id));
        s->mig_precopy_sent++;
        if (b->len >= VDPA_MIG_CHUNK) {
            vdpa_mig_flush(f, b);
        }
    }
    if (b->len) {
        vdpa_mig_flush(f, b);
    }
    vdpa_mig_flush(f, b);
    return 0;
}

/* Runs without the BQL (with it when saving a snapshot) */
static int vdpa_mig_save_iterate(QEMUFile *f, void *opaque)
{
    VdpaMgmt *s = opaque;
    g_autoptr(GByteArray) b = g_byte_array_new();
    bool locked = bql_locked();
    bool done;

    if (!locked) {
        bql_lock();
    }
    done = vdpa_mig_put_changed(s, f, b, VDPA_MIG_ITER_RECS,
                                &s->mig_precopy_sent);
    if (!locked) {
        bql_unlock();
    }
    if (b->len) {
        vdpa_mig_flush(f, b);
    }
    vdpa_mig_flush(f, b);
    return done;
}

static void vdpa_mig_pending(void *opaque, uint64_t *must_precopy,
                             uint64_t *can_postcopy)
{
    VdpaMgmt *s = opaque;

    *must_precopy += (uint64_t)qatomic_read(&s->mig_nchanged) *
                     VDPA_MIG_AVG_REC;
}

/* In the downtime: what changed since the last iteration */
static int vdpa_mig_save_complete(QEMUFile *f, void *opaque)
{
    VdpaMgmt *s = opaque;
    g_autoptr(GByteArray) b = g_byte_array_new();

    vdpa_mig_put_changed(s, f, b, UINT32_MAX, &s->mig_downtime_sent);
    if (b->len) {
        vdpa_mig_flush(f, b);
    }
    vdpa_mig_flush(f, b);
    return 0;
}

static void vdpa_mig_save_cleanup(void *opaque)
{
    VdpaMgmt *s = opaque;

    g_free(s->mig_changed);
    s->mig_changed = NULL;
    s->mig_nchanged = 0;
}

/* ---- Destination ---- */

/*
 * The admin queue's registers as the guest can set them: what
 * vdpa_admin_enable() accepts and vdpa_reg_write() keeps in range.  The
 * admin queue runs from them as soon as the VM does.
 */
static bool vdpa_admin_state_valid(VdpaMgmt *s)
{
    const char *field = NULL;
    uint64_t value = 0;

    if (s->ctrl & ~VDPA_CTRL_ENABLE) {
        field = "ctrl", value = s->ctrl;
    } else if (s->status != 0 && s->status != VDPA_STATUS_READY &&
               s->status != VDPA_STATUS_FATAL) {
        field = "status", value = s->status;
    } else if (s->status == VDPA_STATUS_READY && !s->ctrl) {
        field = "status (ready while disabled)", value = s->status;
    } else if (s->aq_vector > 0xffff) {
        field = "aq_vector", value = s->aq_vector;
    } else if (s->status != VDPA_STATUS_READY) {
        return true;
    } else if (s->aq_size < VDPA_AQ_MIN_SIZE ||
               s->aq_size > VDPA_AQ_MAX_SIZE ||
               (s->aq_size & (s->aq_size - 1))) {
        field = "aq_size", value = s->aq_size;
    } else if (s->sq_base % VDPA_SQE_SIZE) {
        field = "sq_base", value = s->sq_base;
    } else if (s->cq_base % VDPA_CQE_SIZE) {
        field = "cq_base", value = s->cq_base;
    } else if (s->sq_head >= s->aq_size) {
        field = "sq_head", value = s->sq_head;
    } else if (s->sq_tail >= s->aq_size) {
        field = "sq_tail", value = s->sq_tail;
    } else if (s->cq_head >= s->aq_size) {
        field = "cq_head", value = s->cq_head;
    } else if (s->cq_tail >= s->aq_size) {
        field = "cq_tail", value = s->cq_tail;
    } else {
        return true;
    }
    error_report("vdpa-mgmt: migration: admin queue field %s = 0x%" PRIx64
                 " out of range", field, value);
    return false;
}

/*
 * An instance's state record, as CREATE, SET_STATUS and BIND_PASID let
 * it be: refuse what the guest could never have set.
 */
static bool vdpa_inst_state_valid(VdpaMgmt *s, VdpaInst *inst)
{
    const char *field = NULL;
    uint64_t value = 0;

    if (inst->dev_features & ~s->limits.features[inst->type]) {
        field = "dev_features", value = inst->dev_features;
    } else if (inst->drv_features & ~inst->dev_features) {
        field = "drv_features", value = inst->drv_features;
    } else if ((inst->status & VDPA_ST_DRIVER_OK) &&
               !(inst->status & VDPA_ST_FEATURES_OK)) {
        field = "status", value = inst->status;
    } else if (inst->pasid != VDPA_NO_PASID &&
               (!s->limits.pasid_bits ||
                inst->pasid >= (1u << s->limits.pasid_bits))) {
        /* Before any held chain is read through it */
        field = "pasid", value = inst->pasid;
    } else if (inst->type == VDPA_TYPE_NET) {
        uint64_t key = vdpa_mac_key(inst->mac);

        if (!key || (inst->mac[0] & 1) ||
            g_hash_table_contains(s->macs, &key)) {
            field = "mac (zero, multicast or repeated)", value = key;
        }
    }
    if (field) {
        error_report("vdpa-mgmt: migration: instance %u: field %s = 0x%"
                     PRIx64 " invalid here", inst->id, field, value);
        return false;
    }
    return true;
}

/*
 * A queue record: its size within what QUEUE_SETUP allows, its MSI
 * message as SET_QUEUE_MSI stores it, and no more held requests than
 * chains it has popped and not yet returned.
 */
static bool vdpa_queue_state_valid(VdpaMgmt *s, VdpaInst *inst, uint16_t qi,
                                   uint16_t nheld)
{
    VdpaQueue *q = &inst->q[qi];
    uint16_t in_flight = q->vq.last_avail_idx - q->vq.used_idx;
    const char *field = NULL;
    uint64_t value = 0;

    if (q->vq.size > VDPA_MGMT_MAX_QSIZE) {
        field = "size", value = q->vq.size;
    } else if (q->msi.flags & ~(VDPA_MSIM_VALID | VDPA_MSIM_MASKED |
                                VDPA_MSIM_PENDING)) {
        field = "msi flags", value = q->msi.flags;
    } else if ((q->msi.flags & VDPA_MSIM_VALID) &&
               (!q->msi.addr || q->msi.addr % 4 ||
                q->msi.addr >> s->limits.dma_bits)) {
        field = "msi addr", value = q->msi.addr;
    } else if (nheld && (!q->vq.enabled || nheld > in_flight)) {
        field = "nheld", value = nheld;
    } else {
        return true;
    }
    error_report("vdpa-mgmt: migration: instance %u queue %u: field %s = "
                 "0x%" PRIx64 " out of range", inst->id, qi, field, value);
    return false;
}


/*
 * One record at @p (at most @len bytes): create its instance (replacing
 * one of the same id), or remove the id's instance for a gone record.
 * Held heads are kept for vdpa_post_load(), which reads their chains
 * once all of guest memory is in.  Returns the record's length, or 0
 * (refused, reported) for a bad one.
 */
static size_t vdpa_mig_load_rec(VdpaMgmt *s, const uint8_t *p, size_t len)
{
    const uint8_t *start = p, *end = p + len;
    g_autofree uint16_t *heads = NULL;
    uint32_t id, backend, nheads = 0;
    VdpaMigListRec rec;
    VdpaMigStateRec st;
    uint8_t type;
    uint16_t nq;
    VdpaInst *inst, *old;

    if (len < sizeof(rec)) {
        error_report("vdpa-mgmt: migration: record truncated");
        return 0;
    }
    memcpy(&rec, p, sizeof(rec));
    id = le32_to_cpu(rec.id);
    type = rec.type;
    nq = le16_to_cpu(rec.queues);
    backend = le32_to_cpu(rec.backend);
    if (!id || id > s->table.max) {
        error_report("vdpa-mgmt: migration: field id = %u beyond "
                     "max-instances %u", id, s->table.max);
        return 0;
    }
    old = vdpa_table_get(&s->table, id);
    if (old) {
        vdpa_inst_free(s, old);
    }
    p += sizeof(rec);
    if (type == VDPA_MIG_GONE) {
        return p - start;
    }
    if ((type != VDPA_TYPE_BLK && type != VDPA_TYPE_NET) || !nq ||
        nq > VDPA_MGMT_MAX_QUEUES ||
        backend >= s->limits.num_backends[type]) {
        error_report("vdpa-mgmt: migration: instance %u: field type %u, "
                     "queues %u or backend %u not available here", id, type,
                     nq, backend);
        return 0;
    }
    if (VDPA_MIG_STATE_REC + (uint64_t)nq * VDPA_MIG_QUEUE_REC > end - p) {
        error_report("vdpa-mgmt: migration: instance %u: record truncated",
                     id);
        return 0;
    }
    memcpy(&st, p, sizeof(st));
    p += sizeof(st);
    inst = g_malloc0(sizeof(*inst) + nq * sizeof(VdpaQueue));
    inst->s = s;
    inst->id = id;
    inst->type = type;
    inst->nqueues = nq;
    inst->backend = backend;
    inst->as = pci_get_address_space(PCI_DEVICE(s));
    inst->status = st.status;
    inst->suspended = !!st.suspended;
    inst->wce = !!st.wce;
    inst->pasid = le32_to_cpu(st.pasid);
    inst->dev_features = le64_to_cpu(st.dev_features);
    inst->drv_features = le64_to_cpu(st.drv_features);
    memcpy(inst->mac, st.mac, sizeof(inst->mac));
    vdpa_stats_load(&inst->stats, st.stats);
    if (!vdpa_inst_state_valid(s, inst)) {
        goto fail;
    }
    for (uint16_t q = 0; q < nq; q++) {
        VdpaQueue *vq = &inst->q[q];
        VdpaMigQueueRec qr;
        uint16_t nheld;

        vq->fault_slot = VDPA_NO_FAULT_SLOT;
        if (sizeof(qr) > end - p) {
            error_report("vdpa-mgmt: migration: instance %u queue %u: bad "
                         "queue record", id, q);
            goto fail;
        }
        memcpy(&qr, p, sizeof(qr));
        p += sizeof(qr);
        if (iolab_virtq_load(&vq->vq, qr.vq) < 0) {
            error_report("vdpa-mgmt: migration: instance %u queue %u: bad "
                         "queue record", id, q);
            goto fail;
        }
        vq->msi.addr = le64_to_cpu(qr.msi_addr);
        vq->msi.data = le32_to_cpu(qr.msi_data);
        vq->msi.flags = le32_to_cpu(qr.msi_flags);
        nheld = le16_to_cpu(qr.nheld);
        if (!vdpa_queue_state_valid(s, inst, q, nheld)) {
            goto fail;
        }
        if (2ULL * nheld > end - p) {
            error_report("vdpa-mgmt: migration: instance %u: record "
                         "truncated", id);
            goto fail;
        }
        vq->mig_nheld = nheld;
        if (nheld) {
            heads = g_renew(uint16_t, heads, nheads + nheld);
            for (uint16_t k = 0; k < nheld; k++, p += sizeof(uint16_t)) {
                heads[nheads] = lduw_le_p(p);
                /* Only a net TX chain can have been sent already */
                if (type == VDPA_TYPE_BLK &&
                    (heads[nheads] & VDPA_MIG_HELD_SENT)) {
                    error_report("vdpa-mgmt: migration: instance %u queue "
                                 "%u: field held head = 0x%x is a sent "
                                 "frame on a blk queue", id, q,
                                 heads[nheads]);
                    goto fail;
                }
                nheads++;
            }
        }
    }
    inst->mig_heads = g_steal_pointer(&heads);
    if (vdpa_table_insert_at(&s->table, id, inst) < 0) {
        g_free(inst->mig_heads);
        goto fail;
    }
    if (inst->type == VDPA_TYPE_NET) {
        g_hash_table_insert(s->macs, g_memdup2(&(uint64_t) {
                                vdpa_mac_key(inst->mac) }, 8), inst);
    }
    return p - start;

fail:
    g_free(inst);
    return 0;
}

static int vdpa_mig_load_setup(QEMUFile *f, void *opaque, Error **errp)
{
    VdpaMgmt *s = opaque;

    vdpa_destroy_all(s);
    s->mig_unfinished = true;
    return 0;
}

/* Chunks of records up to the end mark (setup, iterations, downtime) */
static int vdpa_mig_load_chunks(QEMUFile *f, VdpaMgmt *s)
{
    for (;;) {
        g_autofree uint8_t *chunk = NULL;
        VdpaMigChunkHdr hdr;
        uint32_t len;
        size_t off = 0;

        if (qemu_get_buffer(f, (uint8_t *)&hdr, sizeof(hdr)) != sizeof(hdr) ||
            le32_to_cpu(hdr.magic) != VDPA_MIG_MAGIC) {
            error_report("vdpa-mgmt: migration: bad instance chunk");
            return -EINVAL;
        }
        len = le32_to_cpu(hdr.len);
        if (!len) {
            return 0;
        }
        if (len > VDPA_MIG_MAX_CHUNK) {
            error_report("vdpa-mgmt: migration: field chunk length = %u "
                         "above %u", len, (unsigned)VDPA_MIG_MAX_CHUNK);
            return -EINVAL;
        }
        chunk = g_malloc(len);
        if (qemu_get_buffer(f, chunk, len) != len) {
            error_report("vdpa-mgmt: migration: instance chunk truncated");
            return -EINVAL;
        }
        while (off < len) {
            size_t n = vdpa_mig_load_rec(s, chunk + off, len - off);

            if (!n) {
                return -EINVAL;
            }
            off += n;
        }
    }
}

/*
 * Records place instances at their ids (vdpa_table_insert_at()), which
 * leaves the table's free ids stale, and a gone or replaced record's
 * removal adds to them.  They are rebuilt here, after every part of the
 * section, loaded or refused, and not only in vdpa_post_load(): a stream
 * may end without the device's VMState, and the next CREATE would then
 * take the id of a loaded instance, whose slot it overwrote.
 */
static int vdpa_mig_load_state(QEMUFile *f, void *opaque, int version_id)
{
    VdpaMgmt *s = opaque;
    int ret = vdpa_mig_load_chunks(f, s);

    vdpa_table_rebuild_free(&s->table);
    return ret;
}

/*
 * All of RAM and the PCI state are in (under postcopy, RAM comes as it
 * is read: vdpa_load_dma_ops): rebuild each instance's held requests
 * from their heads (PASIDs were checked as records came in), and look at
 * every enabled queue again for buffers published before the
 * switch-over.
 */
/*
 * A blk instance's held heads go to its request state machine, which
 * starts each again from its header when the queue runs.
 */
static bool vdpa_mig_finish_blk(VdpaMgmt *s, VdpaInst *inst,
                                const uint16_t *heads)
{
    g_autofree VirtqElem *e = NULL;
    uint32_t k = 0;

    for (uint16_t q = 0; q < inst->nqueues; q++) {
        VdpaQueue *vq = &inst->q[q];

        for (uint16_t n = 0; n < vq->mig_nheld; n++, k++) {
            const char *err = NULL;
            uint64_t fault;

            if (!e) {
                e = g_new(VirtqElem, 1);
            }
            if (iolab_virtq_read_chain(&vq->vq, &vdpa_load_dma_ops, inst,
                                       heads[k], e, &fault,
                                       &err) != VIRTQ_OK) {
                error_report("vdpa-mgmt: migration: instance %u queue %u: "
                             "held request %u cannot be rebuilt: %s",
                             inst->id, q, heads[k], err ?: "fault");
                return false;
            }
            iolab_blk_restore(vdpa_blk_state(inst), q, e);
        }
        vq->mig_nheld = 0;
    }
    return true;
}

static bool vdpa_mig_finish_inst(VdpaMgmt *s, VdpaInst *inst)
{
    g_autofree uint16_t *heads = g_steal_pointer(&inst->mig_heads);
    uint32_t k = 0;

    if (inst->type == VDPA_TYPE_BLK) {
        if (!vdpa_mig_finish_blk(s, inst, heads)) {
            return false;
        }
        goto kick;
    }
    for (uint16_t q = 0; q < inst->nqueues; q++) {
        VdpaQueue *vq = &inst->q[q];
        VdpaNetReq **tail = &vq->held;

        for (uint16_t n = 0; n < vq->mig_nheld; n++, k++) {
            VdpaNetReq *req = vdpa_net_req_get(s, inst, q);
            uint16_t head = heads[k] & ~VDPA_MIG_HELD_SENT;
            const char *err = NULL;
            uint64_t fault;

            req->tx_sent = heads[k] & VDPA_MIG_HELD_SENT;
            if (iolab_virtq_read_chain(&vq->vq, &vdpa_load_dma_ops, inst,
                                       head, &req->elem, &fault,
                                       &err) != VIRTQ_OK) {
                vdpa_net_req_put(s, req);
                error_report("vdpa-mgmt: migration: instance %u queue %u: "
                             "held request %u cannot be rebuilt: %s",
                             inst->id, q, heads[k], err ?: "fault");
                return false;
            }
            *tail = req;
            tail = &req->next_held;
        }
        vq->mig_nheld = 0;
    }
kick:
    for (uint16_t q = 0; q < inst->nqueues; q++) {
        if (inst->q[q].vq.enabled) {
            vdpa_queue_kick(s, inst, q);
        }
    }
    return true;
}

static int vdpa_post_load(void *opaque, int version_id)
{
    VdpaMgmt *s = opaque;

    s->mig_unfinished = false;
    if (!vdpa_admin_state_valid(s)) {
        goto fail;
    }
    vdpa_table_rebuild_free(&s->table);
    for (uint32_t id = vdpa_table_next(&s->table, 1); id;
         id = vdpa_table_next(&s->table, (uint64_t)id + 1)) {
        if (!vdpa_mig_finish_inst(s, vdpa_table_get(&s->table, id))) {
            goto fail;
        }
    }
    if (s->status == VDPA_STATUS_READY) {
        qemu_bh_schedule(s->admin_bh);
    }
    return 0;

fail:
    vdpa_destroy_all(s);
    return -EINVAL;
}

/*
 * The VM starts after a load whose stream had the instances section but
 * not the device's VMState (QEMU loads such a stream): the function is
 * as reset (PCI state, admin queue), so the loaded instances, which
 * post_load never checked nor finished, are not kept.
 */
void vdpa_mig_drop_unfinished(VdpaMgmt *s)
{
    if (!s->mig_unfinished) {
        return;
    }
    s->mig_unfinished = false;
    if (!s->table.count) {
        return;     /* a stream without either section, say */
    }
    error_report("vdpa-mgmt: migration: the stream had instances but no "
                 "device state: the instances are dropped");
    vdpa_destroy_all(s);
}

static const SaveVMHandlers vdpa_mig_handlers = {
    .save_setup = vdpa_mig_save_setup,
    .save_live_iterate = vdpa_mig_save_iterate,
    .save_live_complete_precopy = vdpa_mig_save_complete,
    .state_pending_estimate = vdpa_mig_pending,
    .state_pending_exact = vdpa_mig_pending,
    .save_cleanup = vdpa_mig_save_cleanup,
    .load_setup = vdpa_mig_load_setup,
    .load_state = vdpa_mig_load_state,
};

void vdpa_mig_register(VdpaMgmt *s)
{
    g_autofree char *path = vmstate_if_get_id(VMSTATE_IF(s));
    /* As unregister_savevm() names it: "<device path>/<section>" */
    g_autofree char *idstr = path ? g_strdup_printf("%s/%s", path,
                                                    VDPA_MIG_SECTION) :
                                    g_strdup(VDPA_MIG_SECTION);

    s->mig_magic = VDPA_MIG_VMSD_MAGIC;
    register_savevm_live(idstr, VMSTATE_INSTANCE_ID_ANY, 1,
                         &vdpa_mig_handlers, s);
}

void vdpa_mig_unregister(VdpaMgmt *s)
{
    unregister_savevm(VMSTATE_IF(s), VDPA_MIG_SECTION, s);
    vdpa_mig_save_cleanup(s);
}

const VMStateDescription vmstate_vdpa_mgmt = {
    .name = TYPE_VDPA_MGMT,
    .version_id = 2,
    .minimum_version_id = 2,
    .post_load = vdpa_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VdpaMgmt),
        VMSTATE_MSIX(parent_obj, VdpaMgmt),
        VMSTATE_UINT32_EQUAL(mig_magic, VdpaMgmt, NULL),
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
        VMSTATE_END_OF_LIST()
    },
};
