/*
 * VPRI core: DMA page-access traces, reading and writing
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hw/vpri/core/dma-trace.h"

static const char kind_chars[DMA_TRACE_NR_KINDS] = { 'n', 'b', 'c' };
static const char *const kind_names[DMA_TRACE_NR_KINDS] = {
    "nic", "block", "cpu"
};

const char *vpri_dma_trace_kind_name(DmaTraceKind kind)
{
    return (unsigned)kind < DMA_TRACE_NR_KINDS ? kind_names[kind] : NULL;
}

int vpri_dma_trace_find_device(const DmaTraceHeader *hdr, unsigned id)
{
    for (unsigned i = 0; i < hdr->ndevs; i++) {
        if (hdr->devs[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

static bool vpri_dma_trace_header_ok(const DmaTraceHeader *hdr)
{
    if (!hdr->guest_pages || hdr->ndevs > DMA_TRACE_MAX_DEVICES) {
        return false;
    }
    for (unsigned i = 0; i < hdr->ndevs; i++) {
        const DmaTraceDevice *d = &hdr->devs[i];

        if (d->id == DMA_TRACE_CPU_DEV || d->kind > DMA_TRACE_BLOCK ||
            vpri_dma_trace_find_device(hdr, d->id) != (int)i ||
            memchr(d->name, '\0', sizeof(d->name)) == NULL ||
            strpbrk(d->name, " \t\n")) {
            return false;
        }
    }
    return true;
}

int vpri_dma_trace_write_header(FILE *f, const DmaTraceHeader *hdr)
{
    if (!vpri_dma_trace_header_ok(hdr)) {
        return -EINVAL;
    }
    fprintf(f, "iolab-dma-trace %d\nguest-pages %" PRIu64 "\n",
            DMA_TRACE_VERSION, hdr->guest_pages);
    for (unsigned i = 0; i < hdr->ndevs; i++) {
        const DmaTraceDevice *d = &hdr->devs[i];

        fprintf(f, "device %u %s%s%s\n", d->id, kind_names[d->kind],
                d->name[0] ? " " : "", d->name);
    }
    fprintf(f, "records\n");
    return ferror(f) ? -EIO : 0;
}

int vpri_dma_trace_write_record(FILE *f, const DmaTraceRecord *r)
{
    if (r->kind >= DMA_TRACE_NR_KINDS ||
        (r->armed && r->kind == DMA_TRACE_CPU)) {
        return -EINVAL;
    }
    fprintf(f, "%" PRIu64 " %u %c %" PRIu64 " %c\n", r->time_ns, r->dev,
            kind_chars[r->kind], r->page,
            r->armed ? 'a' : r->write ? 'w' : 'r');
    return ferror(f) ? -EIO : 0;
}

int vpri_dma_trace_append(DmaTrace *t, const DmaTraceRecord *r)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        DmaTraceRecord *v = realloc(t->recs, cap * sizeof(*v));

        if (!v) {
            return -ENOMEM;
        }
        t->recs = v;
        t->cap = cap;
    }
    t->recs[t->n++] = *r;
    return 0;
}

void vpri_dma_trace_clear(DmaTrace *t)
{
    free(t->recs);
    memset(t, 0, sizeof(*t));
}

int vpri_dma_trace_write(FILE *f, const DmaTrace *t)
{
    int r = vpri_dma_trace_write_header(f, &t->hdr);

    for (size_t i = 0; r == 0 && i < t->n; i++) {
        r = vpri_dma_trace_write_record(f, &t->recs[i]);
    }
    return r;
}

/* Parse one record line; false if malformed. */
static bool vpri_dma_trace_parse_record(const char *s,
                                        const DmaTraceHeader *hdr,
                                        uint64_t prev_time, DmaTraceRecord *r)
{
    char kind, rw, extra;
    uint64_t t, page;
    unsigned dev;
    const char *k;

    if (sscanf(s, "%" SCNu64 " %u %c %" SCNu64 " %c %c", &t, &dev, &kind,
               &page, &rw, &extra) != 5 ||
        (rw != 'r' && rw != 'w' && rw != 'a') || t < prev_time ||
        page >= hdr->guest_pages || dev > DMA_TRACE_CPU_DEV) {
        return false;
    }
    k = memchr(kind_chars, kind, sizeof(kind_chars));
    if (!k) {
        return false;
    }
    r->kind = (uint8_t)(k - kind_chars);
    if (r->kind == DMA_TRACE_CPU) {
        if (dev != DMA_TRACE_CPU_DEV || rw == 'a') {
            return false;
        }
    } else {
        int i = vpri_dma_trace_find_device(hdr, dev);

        if (i < 0 || hdr->devs[i].kind != r->kind) {
            return false;
        }
    }
    r->time_ns = t;
    r->page = page;
    r->dev = (uint8_t)dev;
    r->write = rw == 'w';
    r->armed = rw == 'a';
    return true;
}

static bool vpri_dma_trace_parse_device(const char *s, DmaTraceHeader *hdr)
{
    char kind[16], name[DMA_TRACE_NAME_MAX] = "";
    DmaTraceDevice *d;
    unsigned id;
    int n = sscanf(s, "device %u %15s %31s", &id, kind, name);

    if (n < 2 || id >= DMA_TRACE_CPU_DEV ||
        hdr->ndevs == DMA_TRACE_MAX_DEVICES ||
        vpri_dma_trace_find_device(hdr, id) >= 0) {
        return false;
    }
    d = &hdr->devs[hdr->ndevs];
    if (!strcmp(kind, "nic")) {
        d->kind = DMA_TRACE_NIC;
    } else if (!strcmp(kind, "block")) {
        d->kind = DMA_TRACE_BLOCK;
    } else {
        return false;
    }
    d->id = (uint8_t)id;
    memcpy(d->name, name, sizeof(d->name));
    hdr->ndevs++;
    return true;
}

int vpri_dma_trace_read(FILE *f, DmaTrace *t, unsigned *line)
{
    enum { MAGIC, HEADER, RECORDS } at = MAGIC;
    char buf[256];
    unsigned ln = 0;
    int version;

    memset(t, 0, sizeof(*t));
    while (fgets(buf, sizeof(buf), f)) {
        DmaTraceRecord r;
        uint64_t pages;
        bool ok;

        ln++;
        if (buf[0] == '#' || buf[0] == '\n') {
            continue;
        }
        switch (at) {
        case MAGIC:
            ok = sscanf(buf, "iolab-dma-trace %d", &version) == 1 &&
                 version == DMA_TRACE_VERSION;
            at = HEADER;
            break;
        case HEADER:
            if (!strcmp(buf, "records\n")) {
                ok = t->hdr.guest_pages != 0;
                at = RECORDS;
            } else if (sscanf(buf, "guest-pages %" SCNu64, &pages) == 1) {
                ok = pages && !t->hdr.guest_pages;
                t->hdr.guest_pages = pages;
            } else {
                ok = vpri_dma_trace_parse_device(buf, &t->hdr);
            }
            break;
        default:
            ok = vpri_dma_trace_parse_record(
                buf, &t->hdr, t->n ? t->recs[t->n - 1].time_ns : 0, &r);
            if (ok && vpri_dma_trace_append(t, &r)) {
                vpri_dma_trace_clear(t);
                return -ENOMEM;
            }
            break;
        }
        if (!ok) {
            vpri_dma_trace_clear(t);
            if (line) {
                *line = ln;
            }
            return -EINVAL;
        }
    }
    if (at != RECORDS) {
        vpri_dma_trace_clear(t);
        if (line) {
            *line = ln + 1;
        }
        return -EINVAL;
    }
    return 0;
}
