/*
 * iolab core: fault-aware virtio split-virtqueue data path
 *
 * Written from the virtio 1.2 specification, section 2.7 (split
 * virtqueues).  See include/hw/iolab-virtio/core/virtq.h for the API and
 * docs/virtq-engine.rst for the design.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "hw/iolab-virtio/core/virtq.h"

/*
 * Reasons a queue is broken.  Stored in Virtq.error as one byte, so the
 * state stays pointer-free and the reason survives save/restore.  The
 * numbers are part of the migration format: only ever append.
 */
typedef enum VirtqErr {
    VIRTQ_ERR_NONE = 0,
    VIRTQ_ERR_SIZE,
    VIRTQ_ERR_DESC_ALIGN,
    VIRTQ_ERR_AVAIL_ALIGN,
    VIRTQ_ERR_USED_ALIGN,
    VIRTQ_ERR_RING_WRAP,
    VIRTQ_ERR_AVAIL_IDX,
    VIRTQ_ERR_HEAD_RANGE,
    VIRTQ_ERR_NEXT_RANGE,
    VIRTQ_ERR_LOOP,
    VIRTQ_ERR_INDIRECT_FEATURE,
    VIRTQ_ERR_INDIRECT_NEXT,
    VIRTQ_ERR_INDIRECT_LEN,
    VIRTQ_ERR_INDIRECT_NESTED,
    VIRTQ_ERR_INDIRECT_NEXT_RANGE,
    VIRTQ_ERR_INDIRECT_LOOP,
    VIRTQ_ERR_READ_AFTER_WRITE,
    VIRTQ_ERR_TOO_MANY_SEGS,
    VIRTQ_ERR_TOTAL_LEN,
    VIRTQ_ERR_BUF_WRAP,
    VIRTQ_ERR_DMA_REFUSED,
    VIRTQ_ERR_PUSH_HEAD,
    VIRTQ_ERR_PUSH_NONE_INFLIGHT,
    VIRTQ_ERR_SIZE_EXCEEDED,
    VIRTQ_ERR_COUNT,
} VirtqErr;

static const char *const iolab_virtq_err_str[VIRTQ_ERR_COUNT] = {
    [VIRTQ_ERR_SIZE] = "queue size is not a power of 2 up to 32768",
    [VIRTQ_ERR_DESC_ALIGN] = "descriptor table not 16-byte aligned",
    [VIRTQ_ERR_AVAIL_ALIGN] = "driver area not 2-byte aligned",
    [VIRTQ_ERR_USED_ALIGN] = "device area not 4-byte aligned",
    [VIRTQ_ERR_RING_WRAP] = "ring area wraps the address space",
    [VIRTQ_ERR_AVAIL_IDX] = "avail idx more than queue size ahead",
    [VIRTQ_ERR_HEAD_RANGE] = "avail ring head index out of range",
    [VIRTQ_ERR_NEXT_RANGE] = "descriptor next index out of range",
    [VIRTQ_ERR_LOOP] = "descriptor chain longer than queue size (loop)",
    [VIRTQ_ERR_INDIRECT_FEATURE] =
        "indirect descriptor without VIRTIO_F_INDIRECT_DESC",
    [VIRTQ_ERR_INDIRECT_NEXT] = "indirect descriptor has NEXT set",
    [VIRTQ_ERR_INDIRECT_LEN] = "indirect table length invalid",
    [VIRTQ_ERR_INDIRECT_NESTED] = "indirect descriptor inside indirect table",
    [VIRTQ_ERR_INDIRECT_NEXT_RANGE] = "indirect next index out of table",
    [VIRTQ_ERR_INDIRECT_LOOP] = "indirect chain longer than table (loop)",
    [VIRTQ_ERR_READ_AFTER_WRITE] =
        "device-readable descriptor after device-writable one",
    [VIRTQ_ERR_TOO_MANY_SEGS] = "descriptor chain has too many segments",
    [VIRTQ_ERR_TOTAL_LEN] = "descriptor chain longer than 4 GiB",
    [VIRTQ_ERR_BUF_WRAP] = "buffer wraps the address space",
    [VIRTQ_ERR_DMA_REFUSED] = "DMA access refused by the platform",
    [VIRTQ_ERR_PUSH_HEAD] = "pushed head index out of range",
    [VIRTQ_ERR_PUSH_NONE_INFLIGHT] = "push with no element in flight",
    [VIRTQ_ERR_SIZE_EXCEEDED] =
        "virtqueue size exceeded (a pop with size chains in flight)",
};

/*
 * Indirect tables are not bounded by the queue size (a driver may use
 * one table for a long chain on a short queue), so bound them by the
 * largest queue instead: the walk stays finite even when every entry
 * is a zero-length descriptor that uses no segment.
 */
#define VIRTQ_INDIRECT_MAX VIRTQ_MAX_SIZE

/* Offsets inside the rings */
#define VIRTQ_AVAIL_IDX_OFF 2
#define VIRTQ_AVAIL_RING_OFF 4
#define VIRTQ_USED_IDX_OFF 2
#define VIRTQ_USED_RING_OFF 4
#define VIRTQ_USED_ELEM_SIZE 8

typedef struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VirtqDesc;

/* Ring fields are little-endian whatever the host is */
static uint16_t iolab_virtq_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t iolab_virtq_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
           ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t iolab_virtq_ld64(const uint8_t *p)
{
    return (uint64_t)iolab_virtq_ld32(p) |
           ((uint64_t)iolab_virtq_ld32(p + 4) << 32);
}

static void iolab_virtq_st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void iolab_virtq_st32(uint8_t *p, uint32_t v)
{
    iolab_virtq_st16(p, (uint16_t)v);
    iolab_virtq_st16(p + 2, (uint16_t)(v >> 16));
}

static void iolab_virtq_st64(uint8_t *p, uint64_t v)
{
    iolab_virtq_st32(p, (uint32_t)v);
    iolab_virtq_st32(p + 4, (uint32_t)(v >> 32));
}

/* Make an error sticky and hand back its reason */
static VirtqStatus iolab_virtq_fail(Virtq *vq, VirtqErr why, const char **err)
{
    vq->error = (uint8_t)why;
    if (err) {
        *err = iolab_virtq_err_str[why];
    }
    return VIRTQ_ERROR;
}

/* Map whatever a DMA callback returned onto our three outcomes */
static int iolab_virtq_dma_result(int r)
{
    if (r == 0 || r == VIRTQ_FAULT) {
        return r;
    }
    return VIRTQ_ERROR;
}

static int iolab_virtq_dma_read(const VirtqDmaOps *ops, void *opaque,
                                uint64_t addr, void *buf, uint32_t len,
                                uint64_t *fault_addr)
{
    uint64_t fa = 0;
    int r = iolab_virtq_dma_result(ops->read(opaque, addr, buf, len, &fa));

    if (r == VIRTQ_FAULT && fault_addr) {
        *fault_addr = fa;
    }
    return r;
}

static int iolab_virtq_dma_write(const VirtqDmaOps *ops, void *opaque,
                                 uint64_t addr, const void *buf, uint32_t len,
                                 uint64_t *fault_addr)
{
    uint64_t fa = 0;
    int r = iolab_virtq_dma_result(ops->write(opaque, addr, buf, len, &fa));

    if (r == VIRTQ_FAULT && fault_addr) {
        *fault_addr = fa;
    }
    return r;
}

/* Does [addr, addr + len) fit below 2^64?  (len 0 always fits) */
static bool iolab_virtq_range_wraps(uint64_t addr, uint64_t len)
{
    return len && addr + (len - 1) < addr;
}

static VirtqErr iolab_virtq_check_config(const Virtq *vq)
{
    if (vq->size == 0 || (vq->size & (vq->size - 1)) != 0) {
        return VIRTQ_ERR_SIZE;
    }
    if (vq->desc & (VIRTQ_DESC_ALIGN - 1)) {
        return VIRTQ_ERR_DESC_ALIGN;
    }
    if (vq->avail & (VIRTQ_AVAIL_ALIGN - 1)) {
        return VIRTQ_ERR_AVAIL_ALIGN;
    }
    if (vq->used & (VIRTQ_USED_ALIGN - 1)) {
        return VIRTQ_ERR_USED_ALIGN;
    }
    if (iolab_virtq_range_wraps(vq->desc, VIRTQ_DESC_BYTES(vq->size)) ||
        iolab_virtq_range_wraps(vq->avail, VIRTQ_AVAIL_BYTES(vq->size)) ||
        iolab_virtq_range_wraps(vq->used, VIRTQ_USED_BYTES(vq->size))) {
        return VIRTQ_ERR_RING_WRAP;
    }
    return VIRTQ_ERR_NONE;
}

void iolab_virtq_init(Virtq *vq)
{
    memset(vq, 0, sizeof(*vq));
}

void iolab_virtq_configure(Virtq *vq, uint16_t size, uint64_t desc, uint64_t avail,
                     uint64_t used, bool event_idx, bool indirect)
{
    bool enabled = vq->enabled;

    iolab_virtq_init(vq);
    vq->enabled = enabled;
    vq->size = size;
    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    /* Reported lazily: configure has no way to return an error */
    vq->error = (uint8_t)iolab_virtq_check_config(vq);
}

void iolab_virtq_set_enabled(Virtq *vq, bool on)
{
    vq->enabled = on;
    /* Enabling a queue that was never configured is a driver bug */
    if (on && vq->size == 0 && vq->error == VIRTQ_ERR_NONE) {
        vq->error = VIRTQ_ERR_SIZE;
    }
}

const char *iolab_virtq_error_reason(const Virtq *vq)
{
    if (vq->error == VIRTQ_ERR_NONE || vq->error >= VIRTQ_ERR_COUNT) {
        return vq->error ? "unknown error" : NULL;
    }
    return iolab_virtq_err_str[vq->error];
}

/* Common entry check: the sticky error, if any, is the answer */
static bool iolab_virtq_broken(const Virtq *vq, const char **err)
{
    if (vq->error == VIRTQ_ERR_NONE) {
        return false;
    }
    if (err) {
        *err = iolab_virtq_error_reason(vq);
    }
    return true;
}

/* Descriptors fetched per DMA when a chain is laid out in order. */
#define VIRTQ_DESC_WINDOW 4

/*
 * Descriptors read ahead of need.  Drivers usually lay a chain out in
 * consecutive entries, so one DMA serves several descriptors.  A window
 * never crosses a page: the next page may be absent, and the chain may
 * not need it.
 */
typedef struct DescWindow {
    uint64_t table;             /* table the window was read from */
    uint32_t first;             /* index of raw[0] */
    uint32_t n;                 /* descriptors held; 0: empty */
    uint8_t raw[VIRTQ_DESC_WINDOW * VIRTQ_DESC_SIZE];
} DescWindow;

#define VIRTQ_PAGE_SIZE 4096u

/* Descriptor @i of the @table_n-entry table at @table. */
static int iolab_virtq_read_desc(const VirtqDmaOps *ops, void *opaque,
                                 DescWindow *w, uint64_t table,
                                 uint32_t table_n, uint32_t i, VirtqDesc *d,
                                 uint64_t *fault_addr)
{
    const uint8_t *raw;

    if (w->n == 0 || w->table != table || i < w->first ||
        i >= w->first + w->n) {
        uint64_t addr = table + (uint64_t)i * VIRTQ_DESC_SIZE;
        uint32_t room = (VIRTQ_PAGE_SIZE - (addr % VIRTQ_PAGE_SIZE)) /
                        VIRTQ_DESC_SIZE;
        uint32_t n = table_n - i;
        int r;

        n = n < VIRTQ_DESC_WINDOW ? n : VIRTQ_DESC_WINDOW;
        n = n < room ? n : room;
        if (n == 0) {
            n = 1;              /* one descriptor straddles the page end */
        }
        w->n = 0;
        r = iolab_virtq_dma_read(ops, opaque, addr, w->raw, n * VIRTQ_DESC_SIZE,
                                 fault_addr);
        if (r) {
            return r;
        }
        w->table = table;
        w->first = i;
        w->n = n;
    }
    raw = w->raw + (i - w->first) * VIRTQ_DESC_SIZE;
    d->addr = iolab_virtq_ld64(raw);
    d->len = iolab_virtq_ld32(raw + 8);
    d->flags = iolab_virtq_ld16(raw + 12);
    d->next = iolab_virtq_ld16(raw + 14);
    return 0;
}

/*
 * Append one data descriptor to @elem.  Returns VIRTQ_ERR_NONE or why
 * the chain is malformed.
 */
static VirtqErr iolab_virtq_elem_add(VirtqElem *elem, const VirtqDesc *d,
                                     bool *seen_write)
{
    bool write = d->flags & VIRTQ_DESC_F_WRITE;

    if (iolab_virtq_range_wraps(d->addr, d->len)) {
        return VIRTQ_ERR_BUF_WRAP;
    }
    if (write) {
        *seen_write = true;
        if (d->len > UINT32_MAX - elem->in_len - elem->out_len) {
            return VIRTQ_ERR_TOTAL_LEN;
        }
        elem->in_len += d->len;
    } else {
        /* The spec puts all device-readable buffers first */
        if (*seen_write) {
            return VIRTQ_ERR_READ_AFTER_WRITE;
        }
        if (d->len > UINT32_MAX - elem->in_len - elem->out_len) {
            return VIRTQ_ERR_TOTAL_LEN;
        }
        elem->out_len += d->len;
    }
    /* An empty buffer moves no data; no point spending a segment on it */
    if (d->len == 0) {
        return VIRTQ_ERR_NONE;
    }
    if (elem->nseg == VIRTQ_ELEM_MAX_SEG) {
        return VIRTQ_ERR_TOO_MANY_SEGS;
    }
    elem->seg[elem->nseg].addr = d->addr;
    elem->seg[elem->nseg].len = d->len;
    elem->seg[elem->nseg].write = write;
    elem->nseg++;
    return VIRTQ_ERR_NONE;
}

/*
 * Walk the indirect table @ind points to.  The chain ends with it: the
 * descriptor that refers to a table may not have NEXT.
 */
static int iolab_virtq_walk_indirect(const Virtq *vq, const VirtqDmaOps *ops,
                                     void *opaque, const VirtqDesc *ind,
                                     VirtqElem *elem, bool *seen_write,
                                     uint64_t *fault_addr, VirtqErr *why)
{
    uint32_t n, i = 0, steps = 0;
    DescWindow w = { .n = 0 };
    VirtqDesc d;
    int r;

    if (!vq->indirect) {
        *why = VIRTQ_ERR_INDIRECT_FEATURE;
        return VIRTQ_ERROR;
    }
    if (ind->flags & VIRTQ_DESC_F_NEXT) {
        *why = VIRTQ_ERR_INDIRECT_NEXT;
        return VIRTQ_ERROR;
    }
    n = ind->len / VIRTQ_DESC_SIZE;
    if (ind->len == 0 || ind->len % VIRTQ_DESC_SIZE || n > VIRTQ_INDIRECT_MAX) {
        *why = VIRTQ_ERR_INDIRECT_LEN;
        return VIRTQ_ERROR;
    }
    if (iolab_virtq_range_wraps(ind->addr, ind->len)) {
        *why = VIRTQ_ERR_BUF_WRAP;
        return VIRTQ_ERROR;
    }
    for (;;) {
        if (++steps > n) {
            *why = VIRTQ_ERR_INDIRECT_LOOP;
            return VIRTQ_ERROR;
        }
        r = iolab_virtq_read_desc(ops, opaque, &w, ind->addr, n, i, &d,
                                  fault_addr);
        if (r) {
            *why = VIRTQ_ERR_DMA_REFUSED;
            return r;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            *why = VIRTQ_ERR_INDIRECT_NESTED;
            return VIRTQ_ERROR;
        }
        *why = iolab_virtq_elem_add(elem, &d, seen_write);
        if (*why != VIRTQ_ERR_NONE) {
            return VIRTQ_ERROR;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            return 0;
        }
        if (d.next >= n) {
            *why = VIRTQ_ERR_INDIRECT_NEXT_RANGE;
            return VIRTQ_ERROR;
        }
        i = d.next;
    }
}

VirtqStatus iolab_virtq_read_chain(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                             uint16_t head, VirtqElem *elem,
                             uint64_t *fault_addr, const char **err)
{
    VirtqErr why = VIRTQ_ERR_NONE;
    bool seen_write = false;
    uint32_t steps = 0;
    uint16_t i = head;
    DescWindow w = { .n = 0 };
    VirtqDesc d;
    int r;

    if (iolab_virtq_broken(vq, err)) {
        return VIRTQ_ERROR;
    }
    if (head >= vq->size) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_HEAD_RANGE, err);
    }
    elem->head = head;
    elem->nseg = 0;
    elem->in_len = 0;
    elem->out_len = 0;

    /*
     * Direct descriptors, possibly ending with one that refers to an
     * indirect table: the spec asks devices to accept direct
     * descriptors before the indirect one, not only an indirect head.
     */
    for (;;) {
        /* Each index can appear once; a longer chain must loop */
        if (++steps > vq->size) {
            return iolab_virtq_fail(vq, VIRTQ_ERR_LOOP, err);
        }
        r = iolab_virtq_read_desc(ops, opaque, &w, vq->desc, vq->size, i, &d,
                                  fault_addr);
        if (r == VIRTQ_FAULT) {
            return VIRTQ_FAULT;
        } else if (r) {
            return iolab_virtq_fail(vq, VIRTQ_ERR_DMA_REFUSED, err);
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            r = iolab_virtq_walk_indirect(vq, ops, opaque, &d, elem,
                                          &seen_write, fault_addr, &why);
            if (r == VIRTQ_FAULT) {
                return VIRTQ_FAULT;
            } else if (r) {
                return iolab_virtq_fail(vq, why, err);
            }
            return VIRTQ_OK;
        }
        why = iolab_virtq_elem_add(elem, &d, &seen_write);
        if (why != VIRTQ_ERR_NONE) {
            return iolab_virtq_fail(vq, why, err);
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            return VIRTQ_OK;
        }
        if (d.next >= vq->size) {
            return iolab_virtq_fail(vq, VIRTQ_ERR_NEXT_RANGE, err);
        }
        i = d.next;
    }
}

/*
 * Read avail->idx into the shadow.  The shadow is only a cache of the
 * driver's index, not consumption, so updating it on the way to a
 * fault later in pop is fine.
 */
static int iolab_virtq_read_avail_idx(Virtq *vq, const VirtqDmaOps *ops,
                                      void *opaque, uint64_t *fault_addr,
                                      const char **err)
{
    uint8_t raw[2];
    uint16_t idx;
    int r;

    r = iolab_virtq_dma_read(ops, opaque, vq->avail + VIRTQ_AVAIL_IDX_OFF, raw,
                             sizeof(raw), fault_addr);
    if (r == VIRTQ_FAULT) {
        return VIRTQ_FAULT;
    } else if (r) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_DMA_REFUSED, err);
    }
    idx = iolab_virtq_ld16(raw);
    /* The driver cannot have more than size buffers outstanding */
    if ((uint16_t)(idx - vq->last_avail_idx) > vq->size) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_AVAIL_IDX, err);
    }
    vq->shadow_avail_idx = idx;
    /*
     * The ring entries and descriptors read after this were written
     * by the driver before it published idx: order our reads after
     * the idx read (the driver pairs this with a write barrier).
     */
    atomic_thread_fence(memory_order_acquire);
    return 0;
}

VirtqStatus iolab_virtq_pop(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                      VirtqElem *elem, uint64_t *fault_addr,
                      bool *fault_write, const char **err)
{
    uint8_t raw[2];
    uint64_t slot;
    VirtqStatus s;
    int r;

    if (fault_write) {
        *fault_write = false;
    }
    if (!vq->enabled) {
        return VIRTQ_EMPTY;
    }
    if (iolab_virtq_broken(vq, err)) {
        return VIRTQ_ERROR;
    }
    /* Only go to guest memory for idx when the cached value is used up */
    if (vq->shadow_avail_idx == vq->last_avail_idx) {
        r = iolab_virtq_read_avail_idx(vq, ops, opaque, fault_addr, err);
        if (r) {
            return r;
        }
        if (vq->shadow_avail_idx == vq->last_avail_idx) {
            return VIRTQ_EMPTY;
        }
    }
    /*
     * A driver has at most size chains outstanding.  One more means it
     * republished a head the device still holds; popping it would leave
     * more in flight than size, a state no saved record may hold
     * (iolab_virtq_load refuses it), so the queue breaks here instead.
     */
    if ((uint16_t)(vq->last_avail_idx - vq->used_idx) >= vq->size) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_SIZE_EXCEEDED, err);
    }
    slot = vq->avail + VIRTQ_AVAIL_RING_OFF +
           (uint64_t)(vq->last_avail_idx & (vq->size - 1)) * 2;
    r = iolab_virtq_dma_read(ops, opaque, slot, raw, sizeof(raw), fault_addr);
    if (r == VIRTQ_FAULT) {
        return VIRTQ_FAULT;
    } else if (r) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_DMA_REFUSED, err);
    }
    s = iolab_virtq_read_chain(vq, ops, opaque, iolab_virtq_ld16(raw), elem,
                               fault_addr, err);
    if (s == VIRTQ_OK) {
        vq->last_avail_idx++;
    }
    return s;
}

VirtqStatus iolab_virtq_peek(const Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                       uint16_t pos, bool fetch_idx, VirtqElem *elem,
                       uint64_t *fault_addr)
{
    /* Plain data: work on a copy, which may break or move as it likes. */
    Virtq copy = *vq;
    uint16_t ahead = pos - vq->last_avail_idx;
    int r;

    if (!vq->enabled) {
        return VIRTQ_EMPTY;
    }
    if (vq->error) {
        return VIRTQ_ERROR;
    }
    if (ahead > vq->size) {
        return VIRTQ_EMPTY;     /* behind the pop position */
    }
    if (ahead >= (uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx)) {
        if (!fetch_idx) {
            return VIRTQ_EMPTY;
        }
        r = iolab_virtq_read_avail_idx(&copy, ops, opaque, fault_addr, NULL);
        if (r) {
            return r;
        }
        if (ahead >= (uint16_t)(copy.shadow_avail_idx - copy.last_avail_idx)) {
            return VIRTQ_EMPTY;
        }
    }
    copy.last_avail_idx = pos;
    return iolab_virtq_pop(&copy, ops, opaque, elem, fault_addr, NULL, NULL);
}

/*
 * Shared by iolab_virtq_elem_read and _write: walk the segments of one
 * direction, skipping @offset bytes, and move @len bytes.
 */
static int iolab_virtq_elem_xfer(const VirtqElem *e, const VirtqDmaOps *ops,
                                 void *opaque, bool write, uint32_t offset,
                                 uint8_t *rbuf, const uint8_t *wbuf,
                                 uint32_t len, uint64_t *fault_addr)
{
    uint32_t total = write ? e->in_len : e->out_len;
    uint32_t i, chunk;
    int r;

    if (offset > total || len > total - offset) {
        return VIRTQ_ERROR;
    }
    for (i = 0; i < e->nseg && len; i++) {
        const VirtqSeg *s = &e->seg[i];

        if (s->write != write) {
            continue;
        }
        if (offset >= s->len) {
            offset -= s->len;
            continue;
        }
        chunk = s->len - offset;
        if (chunk > len) {
            chunk = len;
        }
        if (write) {
            r = iolab_virtq_dma_write(ops, opaque, s->addr + offset, wbuf,
                                      chunk, fault_addr);
            wbuf += chunk;
        } else {
            r = iolab_virtq_dma_read(ops, opaque, s->addr + offset, rbuf, chunk,
                                     fault_addr);
            rbuf += chunk;
        }
        if (r) {
            return r;
        }
        len -= chunk;
        offset = 0;
    }
    /* Only reachable with an element whose totals disagree with seg[] */
    return len ? VIRTQ_ERROR : 0;
}

int iolab_virtq_elem_read(const VirtqElem *e, const VirtqDmaOps *ops, void *opaque,
                    uint32_t offset, void *buf, uint32_t len,
                    uint64_t *fault_addr)
{
    return iolab_virtq_elem_xfer(e, ops, opaque, false, offset, buf, NULL, len,
                                 fault_addr);
}

int iolab_virtq_elem_write(const VirtqElem *e, const VirtqDmaOps *ops, void *opaque,
                     uint32_t offset, const void *buf, uint32_t len,
                     uint64_t *fault_addr)
{
    return iolab_virtq_elem_xfer(e, ops, opaque, true, offset, NULL, buf, len,
                                 fault_addr);
}

int iolab_virtq_push(Virtq *vq, const VirtqDmaOps *ops, void *opaque, uint16_t head,
               uint32_t written, uint64_t *fault_addr)
{
    uint8_t ent[VIRTQ_USED_ELEM_SIZE], idx[2];
    uint16_t next = (uint16_t)(vq->used_idx + 1);
    uint64_t slot;
    int r;

    if (iolab_virtq_broken(vq, NULL)) {
        return VIRTQ_ERROR;
    }
    if (head >= vq->size) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_PUSH_HEAD, NULL);
    }
    /*
     * Every pushed element was popped first; pushing more would let
     * used->idx overtake avail->idx, which the driver cannot handle.
     */
    if (vq->last_avail_idx == vq->used_idx) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_PUSH_NONE_INFLIGHT, NULL);
    }
    iolab_virtq_st32(ent, head);
    iolab_virtq_st32(ent + 4, written);
    iolab_virtq_st16(idx, next);
    slot = vq->used + VIRTQ_USED_RING_OFF +
           (uint64_t)(vq->used_idx & (vq->size - 1)) * VIRTQ_USED_ELEM_SIZE;

    r = iolab_virtq_dma_write(ops, opaque, slot, ent, sizeof(ent), fault_addr);
    if (r == 0) {
        /*
         * The driver reads the entry once it sees the new idx: the
         * entry must be visible first (pairs with the driver's read
         * barrier after reading used->idx).
         */
        atomic_thread_fence(memory_order_release);
        r = iolab_virtq_dma_write(ops, opaque, vq->used + VIRTQ_USED_IDX_OFF,
                                  idx, sizeof(idx), fault_addr);
    }
    if (r == VIRTQ_FAULT) {
        /*
         * Nothing to undo: an entry written beyond used->idx is
         * invisible to the driver, and a retry rewrites it.
         */
        return VIRTQ_FAULT;
    } else if (r) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_DMA_REFUSED, NULL);
    }
    vq->used_idx = next;
    return 0;
}

bool iolab_virtq_should_notify(Virtq *vq, const VirtqDmaOps *ops, void *opaque)
{
    uint16_t old, event;
    uint8_t raw[2];
    bool valid;

    if (!vq->enabled || vq->error) {
        return false;
    }
    /*
     * Our used->idx store must be visible before we read the driver's
     * suppression field, or we could read a stale "no interrupt"
     * while the driver, having re-enabled interrupts, reads a stale
     * used->idx: both would then wait forever.
     */
    atomic_thread_fence(memory_order_seq_cst);

    if (!vq->event_idx) {
        if (iolab_virtq_dma_read(ops, opaque, vq->avail, raw, sizeof(raw),
                                 NULL)) {
            return true;
        }
        return !(iolab_virtq_ld16(raw) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }

    old = vq->signalled_used;
    valid = vq->signalled_used_valid;
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = true;
    if (iolab_virtq_dma_read(ops, opaque, vq->avail + VIRTQ_AVAIL_RING_OFF +
                             (uint64_t)vq->size * 2, raw, sizeof(raw),
                             NULL)) {
        return true;
    }
    if (!valid) {
        /* We do not know what the driver already saw: be safe */
        return true;
    }
    event = iolab_virtq_ld16(raw);
    /*
     * The driver wants an interrupt once the used entry numbered
     * used_event has been written.  The entries written since the last
     * interrupt are those numbered old .. used_idx - 1; so interrupt
     * iff used_event lies in that window, all in modulo-2^16 distances
     * from old so that wrap-around needs no special case.
     */
    return (uint16_t)(event - old) < (uint16_t)(vq->used_idx - old);
}

int iolab_virtq_set_notification(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                           bool enable, uint64_t *fault_addr)
{
    uint8_t raw[2];
    uint64_t addr;
    int r;

    if (!vq->enabled) {
        return 0;
    }
    if (iolab_virtq_broken(vq, NULL)) {
        return VIRTQ_ERROR;
    }
    if (vq->event_idx) {
        if (!enable) {
            return 0;
        }
        /*
         * "Kick me when you publish entry number N", N being the
         * first entry the device has not seen yet.  Entries it has
         * seen but not popped are its own business to drain.
         */
        iolab_virtq_st16(raw, vq->shadow_avail_idx);
        addr = vq->used + VIRTQ_USED_RING_OFF +
               (uint64_t)vq->size * VIRTQ_USED_ELEM_SIZE;
    } else {
        iolab_virtq_st16(raw, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
        addr = vq->used;
    }
    r = iolab_virtq_dma_write(ops, opaque, addr, raw, sizeof(raw), fault_addr);
    if (r == VIRTQ_FAULT) {
        return VIRTQ_FAULT;
    } else if (r) {
        return iolab_virtq_fail(vq, VIRTQ_ERR_DMA_REFUSED, NULL);
    }
    /*
     * The setting must be visible before the caller's re-check of
     * avail->idx, the mirror of the race in iolab_virtq_should_notify().
     */
    atomic_thread_fence(memory_order_seq_cst);
    return 0;
}

int iolab_virtq_avail_count(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                      uint16_t *count, uint64_t *fault_addr)
{
    int r;

    *count = 0;
    if (!vq->enabled) {
        return 0;
    }
    if (iolab_virtq_broken(vq, NULL)) {
        return VIRTQ_ERROR;
    }
    r = iolab_virtq_read_avail_idx(vq, ops, opaque, fault_addr, NULL);
    if (r) {
        return r;
    }
    *count = (uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx);
    return 0;
}

/*
 * Saved record, all little-endian:
 *
 *   0  le32 magic          VIRTQ_SAVED_MAGIC
 *   4  u8   version        VIRTQ_SAVED_VERSION
 *   5  u8   flags          VIRTQ_SF_*
 *   6  le16 size
 *   8  le64 desc
 *  16  le64 avail
 *  24  le64 used
 *  32  le16 last_avail_idx
 *  34  le16 used_idx
 *  36  le16 signalled_used
 *  38  u8   error          VirtqErr, 0 if not broken
 *  39  u8   reserved       0
 */
#define VIRTQ_SF_ENABLED 0x01
#define VIRTQ_SF_EVENT_IDX 0x02
#define VIRTQ_SF_INDIRECT 0x04
#define VIRTQ_SF_SIGNALLED_VALID 0x08
#define VIRTQ_SF_ALL 0x0f

void iolab_virtq_save(const Virtq *vq, uint8_t buf[VIRTQ_SAVED_SIZE])
{
    uint8_t flags = 0;

    flags |= vq->enabled ? VIRTQ_SF_ENABLED : 0;
    flags |= vq->event_idx ? VIRTQ_SF_EVENT_IDX : 0;
    flags |= vq->indirect ? VIRTQ_SF_INDIRECT : 0;
    flags |= vq->signalled_used_valid ? VIRTQ_SF_SIGNALLED_VALID : 0;

    memset(buf, 0, VIRTQ_SAVED_SIZE);
    iolab_virtq_st32(buf, VIRTQ_SAVED_MAGIC);
    buf[4] = VIRTQ_SAVED_VERSION;
    buf[5] = flags;
    iolab_virtq_st16(buf + 6, vq->size);
    iolab_virtq_st64(buf + 8, vq->desc);
    iolab_virtq_st64(buf + 16, vq->avail);
    iolab_virtq_st64(buf + 24, vq->used);
    iolab_virtq_st16(buf + 32, vq->last_avail_idx);
    iolab_virtq_st16(buf + 34, vq->used_idx);
    iolab_virtq_st16(buf + 36, vq->signalled_used);
    buf[38] = vq->error;
}

int iolab_virtq_load(Virtq *vq, const uint8_t buf[VIRTQ_SAVED_SIZE])
{
    uint8_t flags = buf[5];
    Virtq n;

    if (iolab_virtq_ld32(buf) != VIRTQ_SAVED_MAGIC ||
        buf[4] != VIRTQ_SAVED_VERSION || (flags & ~VIRTQ_SF_ALL) ||
        buf[38] >= VIRTQ_ERR_COUNT || buf[39]) {
        return VIRTQ_ERROR;
    }
    iolab_virtq_init(&n);
    n.enabled = !!(flags & VIRTQ_SF_ENABLED);
    n.event_idx = !!(flags & VIRTQ_SF_EVENT_IDX);
    n.indirect = !!(flags & VIRTQ_SF_INDIRECT);
    n.signalled_used_valid = !!(flags & VIRTQ_SF_SIGNALLED_VALID);
    n.size = iolab_virtq_ld16(buf + 6);
    n.desc = iolab_virtq_ld64(buf + 8);
    n.avail = iolab_virtq_ld64(buf + 16);
    n.used = iolab_virtq_ld64(buf + 24);
    n.last_avail_idx = iolab_virtq_ld16(buf + 32);
    /* Not saved: re-read from guest memory on the next pop */
    n.shadow_avail_idx = n.last_avail_idx;
    n.used_idx = iolab_virtq_ld16(buf + 34);
    n.signalled_used = iolab_virtq_ld16(buf + 36);
    n.error = buf[38];
    /*
     * A queue that was never configured (size 0) is legitimately
     * saved as is.  Otherwise re-check the geometry: a stream from a
     * buggy or hostile source must not give us a queue that passed
     * no validation.
     */
    if (n.size && n.error == VIRTQ_ERR_NONE) {
        n.error = (uint8_t)iolab_virtq_check_config(&n);
    }
    /* Enabled but never configured: the driver bug set_enabled() marks */
    if (n.size == 0 && n.enabled && n.error == VIRTQ_ERR_NONE) {
        n.error = VIRTQ_ERR_SIZE;
    }
    if (n.size && (uint16_t)(n.last_avail_idx - n.used_idx) > n.size) {
        return VIRTQ_ERROR;
    }
    *vq = n;
    return 0;
}
