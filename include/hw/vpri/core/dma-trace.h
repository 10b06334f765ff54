/*
 * VPRI core: DMA page-access traces (docs/vpri-adp.rst, "Trace format")
 *
 * A text file: a header, then one line per page access:
 *
 *   iolab-dma-trace 1
 *   guest-pages <N>
 *   device <id> <nic|block> [<name>]      (any number, ids 0-254)
 *   records
 *   <time-ns> <device-id> <n|b|c> <page> <r|w|a>
 *
 * Kind c is a CPU access (device id 255), which the host's reclaim sees;
 * n and b are DMA by a NIC or a block device, which it does not.  a
 * (armed, devices only) is not an access: the device was given the page
 * for a DMA still to come (a receive buffer posted to a NIC).  Pages are
 * guest page numbers (guest-physical address >> 12).  Times never go
 * backwards.  Lines starting with '#' are comments.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_DMA_TRACE_H
#define HW_VPRI_DMA_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define DMA_TRACE_VERSION 1
#define DMA_TRACE_MAX_DEVICES 255
#define DMA_TRACE_CPU_DEV 255
#define DMA_TRACE_NAME_MAX 32

typedef enum DmaTraceKind {
    DMA_TRACE_NIC = 0,
    DMA_TRACE_BLOCK = 1,
    DMA_TRACE_CPU = 2,
} DmaTraceKind;

#define DMA_TRACE_NR_KINDS 3

typedef struct DmaTraceRecord {
    uint64_t time_ns;
    uint64_t page;
    uint8_t dev;
    uint8_t kind;               /* DmaTraceKind */
    uint8_t write;              /* the access writes memory */
    uint8_t armed;              /* not an access: a DMA still to come
                                 * (write is then 0) */
} DmaTraceRecord;

typedef struct DmaTraceDevice {
    uint8_t id;
    uint8_t kind;               /* DMA_TRACE_NIC or DMA_TRACE_BLOCK */
    char name[DMA_TRACE_NAME_MAX];
} DmaTraceDevice;

typedef struct DmaTraceHeader {
    uint64_t guest_pages;
    unsigned ndevs;
    DmaTraceDevice devs[DMA_TRACE_MAX_DEVICES];
} DmaTraceHeader;

/* A growable array of records. */
typedef struct DmaTrace {
    DmaTraceHeader hdr;
    DmaTraceRecord *recs;
    size_t n, cap;
} DmaTrace;

const char *vpri_dma_trace_kind_name(DmaTraceKind kind);

/* 0, or -EINVAL if @hdr is inconsistent, -EIO on a write error. */
int vpri_dma_trace_write_header(FILE *f, const DmaTraceHeader *hdr);
/* 0, or -EIO. */
int vpri_dma_trace_write_record(FILE *f, const DmaTraceRecord *r);

/*
 * Read a whole trace into @t (initialized here; vpri_dma_trace_clear() frees
 * it).  0, or -EINVAL with the 1-based line number in *@line (if not NULL)
 * for a malformed file, -ENOMEM.
 */
int vpri_dma_trace_read(FILE *f, DmaTrace *t, unsigned *line);
/* Write @t whole.  0, -EINVAL or -EIO. */
int vpri_dma_trace_write(FILE *f, const DmaTrace *t);

/* Append a record; 0 or -ENOMEM. */
int vpri_dma_trace_append(DmaTrace *t, const DmaTraceRecord *r);
void vpri_dma_trace_clear(DmaTrace *t);
/* Index of device @id in @hdr, or -1. */
int vpri_dma_trace_find_device(const DmaTraceHeader *hdr, unsigned id);

#endif
