/*
 * libFuzzer harness: the split-virtqueue engine (hw/iolab-virtio/core/virtq.c)
 *
 * The input is a small header (queue geometry, features, which guest pages
 * are present, a script of operations, a 40-byte saved record) followed by
 * a 64 KiB guest memory image.  The harness plays a device glue: it runs the
 * script of pop, peek, read_chain, push, element transfers, notification
 * calls and save/load against that memory through in-memory DMA callbacks,
 * and checks the engine's contract after each step (see the fuzz_check_*
 * functions):
 *
 * - every ring or table access lies inside the ring areas, or inside an
 *   indirect table that a descriptor of the table refers to; every element
 *   transfer lies inside one of the element's segments;
 * - a popped chain has at most VIRTQ_ELEM_MAX_SEG non-empty segments, none
 *   wrapping 2^64, device-readable ones first, summing to out_len/in_len;
 * - pop consumes exactly one entry on VIRTQ_OK and nothing otherwise; a
 *   fault names a page that is really absent; errors are sticky;
 * - peek changes nothing and sees the chain the next pop returns;
 * - push writes the used entry it was asked to, then used->idx;
 * - save/load round-trips, and whatever load accepts passes the geometry
 *   checks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/iolab-virtio/core/virtq.h"

#define FUZZ_MEM_BASE 0x100000ull     /* guest memory is [base, base+64K) */
#define FUZZ_MEM_SIZE 0x10000u
#define FUZZ_PAGE 4096u
#define FUZZ_NPAGES (FUZZ_MEM_SIZE / FUZZ_PAGE)
#define FUZZ_NOPS 24

/* What the current engine call may touch */
typedef enum FuzzScope {
    FUZZ_SCOPE_RINGS,        /* desc/avail/used areas and indirect tables */
    FUZZ_SCOPE_ELEM,         /* the segments of fuzz_cur_elem */
} FuzzScope;

typedef struct FuzzVirtqState {
    uint8_t *mem;               /* FUZZ_MEM_SIZE bytes, own allocation */
    uint16_t present;           /* bit n: page n present */
    FuzzScope scope;
    const Virtq *vq;            /* the queue whose rings may be read */
    const VirtqElem *elem;      /* FUZZ_SCOPE_ELEM: allowed segments */
    bool elem_write;            /* ... and in which direction */
} FuzzVirtqState;

static FuzzVirtqState fz;

static bool fuzz_within(uint64_t a, uint64_t len, uint64_t base, uint64_t size)
{
    return a >= base && len <= size && a - base <= size - len;
}

/* Is [addr, addr+len) inside an indirect table the queue's table names? */
static bool fuzz_in_indirect_table(const Virtq *vq, uint64_t addr,
                                   uint32_t len)
{
    for (uint32_t i = 0; i < vq->size; i++) {
        uint64_t d = vq->desc + (uint64_t)i * VIRTQ_DESC_SIZE;
        const uint8_t *p;

        if (!fuzz_within(d, VIRTQ_DESC_SIZE, FUZZ_MEM_BASE, FUZZ_MEM_SIZE)) {
            continue;
        }
        p = fz.mem + (d - FUZZ_MEM_BASE);
        if ((fuzz_ld16(p + 12) & VIRTQ_DESC_F_INDIRECT) &&
            fuzz_within(addr, len, fuzz_ld64(p), fuzz_ld32(p + 8))) {
            return true;
        }
    }
    return false;
}

/* The access contract, checked on every DMA the engine asks for */
static void fuzz_check_access(uint64_t addr, uint32_t len, bool write)
{
    const Virtq *vq = fz.vq;

    FUZZ_ASSERT(len > 0);
    FUZZ_ASSERT(addr + (len - 1) >= addr);       /* never wraps 2^64 */
    if (fz.scope == FUZZ_SCOPE_ELEM) {
        const VirtqElem *e = fz.elem;

        FUZZ_ASSERT(write == fz.elem_write);
        for (uint32_t i = 0; i < e->nseg; i++) {
            if (e->seg[i].write == write &&
                fuzz_within(addr, len, e->seg[i].addr, e->seg[i].len)) {
                return;
            }
        }
        FUZZ_FAIL("element transfer outside the element's segments");
    }
    if (write) {
        /* The device writes the used area only */
        FUZZ_ASSERT(fuzz_within(addr, len, vq->used,
                                VIRTQ_USED_BYTES(vq->size)));
        return;
    }
    if (fuzz_within(addr, len, vq->desc, VIRTQ_DESC_BYTES(vq->size)) ||
        fuzz_within(addr, len, vq->avail, VIRTQ_AVAIL_BYTES(vq->size)) ||
        fuzz_in_indirect_table(vq, addr, len)) {
        return;
    }
    FUZZ_FAIL("ring read outside the rings and indirect tables");
}

static int fuzz_dma(uint64_t addr, uint8_t *rbuf, const uint8_t *wbuf,
                    uint32_t len, uint64_t *fault_addr)
{
    uint64_t off;

    fuzz_check_access(addr, len, wbuf != NULL);
    if (!fuzz_within(addr, len, FUZZ_MEM_BASE, FUZZ_MEM_SIZE)) {
        return VIRTQ_ERROR;     /* outside guest RAM: the platform refuses */
    }
    off = addr - FUZZ_MEM_BASE;
    for (uint64_t p = off / FUZZ_PAGE; p <= (off + len - 1) / FUZZ_PAGE; p++) {
        if (!(fz.present & (1u << p))) {
            *fault_addr = FUZZ_MEM_BASE + p * FUZZ_PAGE;
            return VIRTQ_FAULT;
        }
    }
    if (rbuf) {
        memcpy(rbuf, fz.mem + off, len);
    } else {
        memcpy(fz.mem + off, wbuf, len);
    }
    return 0;
}

static int fuzz_read(void *opaque, uint64_t addr, void *buf, uint32_t len,
                     uint64_t *fault_addr)
{
    (void)opaque;
    return fuzz_dma(addr, buf, NULL, len, fault_addr);
}

static int fuzz_write(void *opaque, uint64_t addr, const void *buf,
                      uint32_t len, uint64_t *fault_addr)
{
    (void)opaque;
    return fuzz_dma(addr, NULL, buf, len, fault_addr);
}

static const VirtqDmaOps fuzz_ops = { .read = fuzz_read, .write = fuzz_write };

/* A fault must name an absent page of guest memory */
static void fuzz_check_fault(uint64_t fault_addr)
{
    uint64_t page;

    FUZZ_ASSERT(fuzz_within(fault_addr, 1, FUZZ_MEM_BASE, FUZZ_MEM_SIZE));
    FUZZ_ASSERT(fault_addr % FUZZ_PAGE == 0);
    page = (fault_addr - FUZZ_MEM_BASE) / FUZZ_PAGE;
    FUZZ_ASSERT(!(fz.present & (1u << page)));
}

/* A chain the engine accepted */
static void fuzz_check_elem(const Virtq *vq, const VirtqElem *e)
{
    uint64_t in = 0, out = 0;
    bool seen_write = false;

    FUZZ_ASSERT(e->head < vq->size);
    FUZZ_ASSERT(e->nseg <= VIRTQ_ELEM_MAX_SEG);
    for (uint32_t i = 0; i < e->nseg; i++) {
        const VirtqSeg *s = &e->seg[i];

        FUZZ_ASSERT(s->len > 0);
        FUZZ_ASSERT(s->addr + (s->len - 1) >= s->addr);
        if (s->write) {
            seen_write = true;
            in += s->len;
        } else {
            FUZZ_ASSERT(!seen_write);
            out += s->len;
        }
    }
    FUZZ_ASSERT(in == e->in_len);
    FUZZ_ASSERT(out == e->out_len);
    FUZZ_ASSERT(in + out <= UINT32_MAX);
}

static bool fuzz_same_elem(const VirtqElem *a, const VirtqElem *b)
{
    if (a->head != b->head || a->nseg != b->nseg || a->in_len != b->in_len ||
        a->out_len != b->out_len) {
        return false;
    }
    for (uint32_t i = 0; i < a->nseg; i++) {
        if (a->seg[i].addr != b->seg[i].addr ||
            a->seg[i].len != b->seg[i].len ||
            a->seg[i].write != b->seg[i].write) {
            return false;
        }
    }
    return true;
}

/* Queue state other than the avail cache and the sticky error */
static bool fuzz_same_queue(const Virtq *a, const Virtq *b)
{
    Virtq x = *a, y = *b;

    x.shadow_avail_idx = y.shadow_avail_idx = 0;
    x.error = y.error = 0;
    return !memcmp(&x, &y, sizeof(x));
}

/* Element transfers: whole element, or a fuzzed window of it */
static void fuzz_xfer(const Virtq *vq, const VirtqElem *e, bool write,
                      uint32_t offset, uint32_t len)
{
    static uint8_t buf[FUZZ_MEM_SIZE];
    uint64_t fa = 0;
    uint32_t total = write ? e->in_len : e->out_len;
    int r;

    fz.scope = FUZZ_SCOPE_ELEM;
    fz.elem = e;
    fz.elem_write = write;
    if (len > sizeof(buf)) {
        len = sizeof(buf);
    }
    if (write) {
        memset(buf, 0xa5, len);
        r = iolab_virtq_elem_write(e, &fuzz_ops, NULL, offset, buf, len, &fa);
    } else {
        r = iolab_virtq_elem_read(e, &fuzz_ops, NULL, offset, buf, len, &fa);
    }
    fz.scope = FUZZ_SCOPE_RINGS;
    if (offset > total || len > total - offset) {
        FUZZ_ASSERT(r == VIRTQ_ERROR);      /* range beyond the element */
    } else if (r == VIRTQ_FAULT) {
        fuzz_check_fault(fa);
    } else {
        FUZZ_ASSERT(r == 0 || r == VIRTQ_ERROR);
    }
    (void)vq;
}

typedef struct FuzzInflight {
    uint16_t head[64];
    unsigned n;
} FuzzInflight;

static void fuzz_pop(Virtq *vq, VirtqElem *e, FuzzInflight *fl,
                     const uint8_t *arg)
{
    static VirtqElem peeked;
    Virtq before = *vq;
    uint64_t fa = 0;
    const char *err = NULL;
    bool fw = true;
    VirtqStatus ps, s;

    /* Peek at the same position first: it must see what pop will pop */
    ps = iolab_virtq_peek(vq, &fuzz_ops, NULL, vq->last_avail_idx, true,
                          &peeked, &fa);
    FUZZ_ASSERT(!memcmp(&before, vq, sizeof(before)));
    if (ps == VIRTQ_FAULT) {
        fuzz_check_fault(fa);
    }
    s = iolab_virtq_pop(vq, &fuzz_ops, NULL, e, &fa, &fw, &err);
    FUZZ_ASSERT(!fw);
    switch (s) {
    case VIRTQ_OK:
        FUZZ_ASSERT(vq->last_avail_idx == (uint16_t)(before.last_avail_idx + 1));
        FUZZ_ASSERT(!vq->error);
        fuzz_check_elem(vq, e);
        if (ps == VIRTQ_OK) {
            FUZZ_ASSERT(fuzz_same_elem(&peeked, e));
        }
        if (fl->n < 64) {
            fl->head[fl->n++] = e->head;
        }
        fuzz_xfer(vq, e, false, 0, e->out_len);
        fuzz_xfer(vq, e, true, 0, e->in_len);
        fuzz_xfer(vq, e, arg[0] & 1, fuzz_ld16(arg + 1), fuzz_ld16(arg + 3));
        break;
    case VIRTQ_EMPTY:
        FUZZ_ASSERT(fuzz_same_queue(&before, vq));
        FUZZ_ASSERT(vq->error == before.error);
        break;
    case VIRTQ_FAULT:
        FUZZ_ASSERT(fuzz_same_queue(&before, vq));
        FUZZ_ASSERT(vq->error == before.error);
        fuzz_check_fault(fa);
        break;
    case VIRTQ_ERROR:
        FUZZ_ASSERT(fuzz_same_queue(&before, vq));
        FUZZ_ASSERT(vq->error != 0);
        FUZZ_ASSERT(err != NULL);
        FUZZ_ASSERT(iolab_virtq_error_reason(vq) != NULL);
        /* Sticky: the next pop fails the same way without touching memory */
        s = iolab_virtq_pop(vq, &fuzz_ops, NULL, e, &fa, NULL, NULL);
        FUZZ_ASSERT(s == VIRTQ_ERROR || (s == VIRTQ_EMPTY && !vq->enabled));
        break;
    default:
        FUZZ_FAIL("pop returned an unknown status");
    }
    if (s != VIRTQ_OK && ps == VIRTQ_OK && s != VIRTQ_FAULT) {
        /* Peek saw a valid chain where pop did not */
        FUZZ_FAIL("peek and pop disagree");
    }
}

static void fuzz_push(Virtq *vq, FuzzInflight *fl, const uint8_t *arg)
{
    Virtq before = *vq;
    uint16_t head;
    uint32_t written = fuzz_ld32(arg + 1);
    uint64_t fa = 0;
    int r;

    if (fl->n && !(arg[0] & 0x80)) {
        unsigned k = arg[0] % fl->n;

        head = fl->head[k];
        fl->head[k] = fl->head[--fl->n];
    } else {
        head = fuzz_ld16(arg + 5);          /* possibly bogus */
    }
    r = iolab_virtq_push(vq, &fuzz_ops, NULL, head, written, &fa);
    if (r == 0) {
        uint64_t slot = vq->used + 4 +
            (uint64_t)(before.used_idx & (vq->size - 1)) * 8;
        uint64_t off;

        FUZZ_ASSERT(head < vq->size);
        FUZZ_ASSERT(vq->used_idx == (uint16_t)(before.used_idx + 1));
        /* What was written is what the driver will read */
        FUZZ_ASSERT(fuzz_within(slot, 8, FUZZ_MEM_BASE, FUZZ_MEM_SIZE));
        off = vq->used + 2 - FUZZ_MEM_BASE;
        FUZZ_ASSERT(fuzz_ld16(fz.mem + off) == vq->used_idx);
        /* (the entry may have been overwritten by the idx if they overlap) */
        if (slot + 8 <= vq->used + 2 || slot >= vq->used + 4) {
            off = slot - FUZZ_MEM_BASE;
            FUZZ_ASSERT(fuzz_ld32(fz.mem + off) == head);
            FUZZ_ASSERT(fuzz_ld32(fz.mem + off + 4) == written);
        }
    } else {
        FUZZ_ASSERT(vq->used_idx == before.used_idx);
        if (r == VIRTQ_FAULT) {
            fuzz_check_fault(fa);
        } else {
            FUZZ_ASSERT(r == VIRTQ_ERROR);
            FUZZ_ASSERT(vq->error != 0);
        }
    }
}

static void fuzz_load(Virtq *vq, const uint8_t rec[VIRTQ_SAVED_SIZE],
                      FuzzInflight *fl)
{
    Virtq before = *vq, n;
    uint8_t again[VIRTQ_SAVED_SIZE];

    n = *vq;
    if (iolab_virtq_load(&n, rec) != 0) {
        FUZZ_ASSERT(!memcmp(&n, &before, sizeof(n)));   /* untouched */
        return;
    }
    if (n.size && !n.error) {
        /* Accepted and usable: the geometry passed the configure checks */
        FUZZ_ASSERT((n.size & (n.size - 1)) == 0);
        FUZZ_ASSERT(n.desc % VIRTQ_DESC_ALIGN == 0);
        FUZZ_ASSERT(n.avail % VIRTQ_AVAIL_ALIGN == 0);
        FUZZ_ASSERT(n.used % VIRTQ_USED_ALIGN == 0);
        FUZZ_ASSERT((uint16_t)(n.last_avail_idx - n.used_idx) <= n.size);
    }
    FUZZ_ASSERT(iolab_virtq_error_reason(&n) == NULL || n.error);
    /* Save of what was loaded loads to the same queue */
    iolab_virtq_save(&n, again);
    {
        Virtq m;

        memset(&m, 0x5a, sizeof(m));
        FUZZ_ASSERT(iolab_virtq_load(&m, again) == 0);
        FUZZ_ASSERT(!memcmp(&m, &n, sizeof(m)));
    }
    *vq = n;
    fl->n = 0;      /* a restored queue has no elements we know of */
}

static void fuzz_roundtrip(const Virtq *vq)
{
    uint8_t rec[VIRTQ_SAVED_SIZE];
    Virtq m, expect = *vq;

    iolab_virtq_save(vq, rec);
    memset(&m, 0xff, sizeof(m));
    if (vq->size == 0 || vq->error ||
        (uint16_t)(vq->last_avail_idx - vq->used_idx) <= vq->size) {
        FUZZ_ASSERT(iolab_virtq_load(&m, rec) == 0);
        expect.shadow_avail_idx = expect.last_avail_idx;
        FUZZ_ASSERT(!memcmp(&m, &expect, sizeof(m)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Header layout (bytes):
 *   0      log2 queue size (0..15); with bit 7, size is bytes 1..2 raw
 *   1..2   raw size
 *   3      bit 0 event_idx, bit 1 indirect, bit 2 start disabled,
 *          bit 3 ring addresses raw (bytes 40..63), else offsets below
 *   4..9   le16 desc, avail, used offsets into guest memory (aligned down
 *          to 16, 2, 4 unless raw)
 *   10..11 present-page mask (16 pages)
 *   12..35 operation script, one byte each (op in bits 0..3, page in 4..7)
 *   36..39 argument seed bytes
 *   40..63 three le64 raw ring addresses
 *   64..103 a saved record for the load operation
 *   104..  guest memory image
 */
#define FUZZ_HDR 104

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static VirtqElem elem;
    FuzzInflight fl = { .n = 0 };
    uint8_t hdr[FUZZ_HDR] = { 0 };
    uint16_t qsize;
    uint64_t desc, avail, used;
    Virtq vq;

    if (!fz.mem) {
        fz.mem = malloc(FUZZ_MEM_SIZE);
    }
    memcpy(hdr, data, size < FUZZ_HDR ? size : FUZZ_HDR);
    memset(fz.mem, 0, FUZZ_MEM_SIZE);
    if (size > FUZZ_HDR) {
        size_t n = size - FUZZ_HDR;

        memcpy(fz.mem, data + FUZZ_HDR, n < FUZZ_MEM_SIZE ? n : FUZZ_MEM_SIZE);
    }

    qsize = (hdr[0] & 0x80) ? fuzz_ld16(hdr + 1) : (uint16_t)(1u << (hdr[0] & 15));
    if (hdr[3] & 8) {
        desc = fuzz_ld64(hdr + 40);
        avail = fuzz_ld64(hdr + 48);
        used = fuzz_ld64(hdr + 56);
    } else {
        desc = FUZZ_MEM_BASE + (fuzz_ld16(hdr + 4) & ~15u);
        avail = FUZZ_MEM_BASE + (fuzz_ld16(hdr + 6) & ~1u);
        used = FUZZ_MEM_BASE + (fuzz_ld16(hdr + 8) & ~3u);
    }
    fz.present = fuzz_ld16(hdr + 10);
    fz.scope = FUZZ_SCOPE_RINGS;
    fz.vq = &vq;

    iolab_virtq_init(&vq);
    iolab_virtq_configure(&vq, qsize, desc, avail, used, hdr[3] & 1,
                          hdr[3] & 2);
    iolab_virtq_set_enabled(&vq, !(hdr[3] & 4));

    for (int i = 0; i < FUZZ_NOPS; i++) {
        uint8_t op = hdr[12 + i];
        const uint8_t *arg = hdr + 36 + (i % 4);   /* 4 arg bytes + more */
        uint8_t argbuf[8];
        uint64_t fa = 0;
        uint16_t count;
        int r;

        memcpy(argbuf, arg, 4);
        memcpy(argbuf + 4, hdr + 12 + ((i + 1) % FUZZ_NOPS), 1);
        argbuf[5] = hdr[12 + ((i + 2) % FUZZ_NOPS)];
        argbuf[6] = hdr[12 + ((i + 3) % FUZZ_NOPS)];
        argbuf[7] = 0;

        switch (op & 15) {
        case 0: case 1: case 2: case 3:
            fuzz_pop(&vq, &elem, &fl, argbuf);
            break;
        case 4: case 5:
            fuzz_push(&vq, &fl, argbuf);
            break;
        case 6: {
            /* Look ahead at a position inside or around the window */
            Virtq before = vq;
            VirtqStatus s = iolab_virtq_peek(&vq, &fuzz_ops, NULL,
                                             vq.last_avail_idx + (op >> 4),
                                             argbuf[0] & 1, &elem, &fa);
            FUZZ_ASSERT(!memcmp(&before, &vq, sizeof(vq)));
            if (s == VIRTQ_OK) {
                fuzz_check_elem(&vq, &elem);
            } else if (s == VIRTQ_FAULT) {
                fuzz_check_fault(fa);
            }
            break;
        }
        case 7: {
            /* Rebuild an element from a head, as the glue does after load */
            const char *err = NULL;
            VirtqStatus s = iolab_virtq_read_chain(&vq, &fuzz_ops, NULL,
                                                   fuzz_ld16(argbuf), &elem,
                                                   &fa, &err);
            if (s == VIRTQ_OK) {
                fuzz_check_elem(&vq, &elem);
            } else if (s == VIRTQ_FAULT) {
                fuzz_check_fault(fa);
            } else {
                FUZZ_ASSERT(s == VIRTQ_ERROR && err && vq.error);
            }
            break;
        }
        case 8:
            r = iolab_virtq_avail_count(&vq, &fuzz_ops, NULL, &count, &fa);
            if (r == 0) {
                FUZZ_ASSERT(count <= vq.size);
            } else if (r == VIRTQ_FAULT) {
                fuzz_check_fault(fa);
                FUZZ_ASSERT(count == 0);
            }
            break;
        case 9:
            (void)iolab_virtq_should_notify(&vq, &fuzz_ops, NULL);
            break;
        case 10:
            r = iolab_virtq_set_notification(&vq, &fuzz_ops, NULL,
                                             argbuf[0] & 1, &fa);
            if (r == VIRTQ_FAULT) {
                fuzz_check_fault(fa);
            }
            break;
        case 11:
            fuzz_roundtrip(&vq);
            break;
        case 12:
            fuzz_load(&vq, hdr + 64, &fl);
            break;
        case 13:
            /* The host pages something in, or evicts it */
            fz.present ^= 1u << (op >> 4);
            break;
        case 14:
            iolab_virtq_set_enabled(&vq, op & 0x10);
            break;
        case 15:
            /* Re-configure (queue reset): everything in flight is gone */
            iolab_virtq_configure(&vq, qsize, desc, avail, used,
                                  op & 0x10, op & 0x20);
            FUZZ_ASSERT(vq.last_avail_idx == 0 && vq.used_idx == 0);
            fl.n = 0;
            break;
        }
    }
    return 0;
}
