/*
 * A small NVMe driver for qtest (iolab's own helper), for nvme-export.
 *
 * Written from the NVMe Base Specification 2.0 (3.1 registers, 3.5
 * controller initialization, 4.1 PRPs/SGLs, 4.2-4.6 queue entries).  It
 * drives the controller through libqos' PCI accessors, keeps its queues
 * in guest memory from the libqos allocator and polls completion phase
 * tags.  It is low-level on purpose: tests build raw SQEs, ring any
 * doorbell with any value and read any register.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef IOLAB_NVME_EXPORT_DRIVER_H
#define IOLAB_NVME_EXPORT_DRIVER_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"

#define NX_MAX_Q        17
#define NX_TIMEOUT_US   (5 * G_USEC_PER_SEC)

/* Registers */
#define NX_CAP    0x00
#define NX_VS     0x08
#define NX_CC     0x14
#define NX_CSTS   0x1c
#define NX_AQA    0x24
#define NX_ASQ    0x28
#define NX_ACQ    0x30
#define NX_DB     0x1000

/* Status as SCT << 8 | SC (no DNR/More) */
#define NX_SC(s)  ((s) & 0x7ff)

typedef struct NxCmd {
    uint8_t b[64];
} NxCmd;

typedef struct NxCqe {
    uint32_t dw0;
    uint16_t sqhd, sqid, cid;
    uint16_t status;            /* CQE DW3 bits 31:17 */
} NxCqe;

typedef struct NxQueue {
    uint64_t base;
    uint16_t size;
    uint16_t tail;              /* SQ: next slot; CQ: unused */
    uint16_t head;              /* CQ: next entry to consume */
    uint8_t phase;              /* CQ: expected phase tag */
    bool live;
} NxQueue;

typedef struct NxDev {
    QTestState *qts;
    QGuestAllocator *alloc;
    QPCIBus *bus;
    QPCIDevice *pdev;
    QPCIBar bar0;
    NxQueue sq[NX_MAX_Q], cq[NX_MAX_Q];
    uint16_t next_cid;
} NxDev;

/* Find the controller with PCI vendor:device @vid:@did; NULL if none */
NxDev *nx_find(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
               uint16_t vid, uint16_t did);
/* The controller at @devfn (QPCI_DEVFN(slot, fn)); NULL if none */
NxDev *nx_find_at(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
                  int devfn);
void nx_free(NxDev *d);

uint32_t nx_rd32(NxDev *d, uint64_t off);
uint64_t nx_rd64(NxDev *d, uint64_t off);
void nx_wr32(NxDev *d, uint64_t off, uint32_t val);
void nx_doorbell(NxDev *d, uint16_t qid, bool cq, uint32_t val);

/* Set up admin queues and enable; false if CSTS.RDY never came */
bool nx_enable(NxDev *d, uint16_t aq_size);
void nx_disable(NxDev *d);

/* SQE builders */
void nx_cmd(NxCmd *c, uint8_t opc, uint32_t nsid);
void nx_cmd_dw(NxCmd *c, int dw, uint32_t val);
void nx_cmd_prp(NxCmd *c, uint64_t prp1, uint64_t prp2);
/* First SGL descriptor in DPTR and PSDT = 01b */
void nx_cmd_sgl(NxCmd *c, uint64_t addr, uint32_t len, uint8_t type);

/* Put @c on SQ @qid (without ringing); returns the CID given */
uint16_t nx_queue(NxDev *d, uint16_t qid, NxCmd *c);
void nx_ring(NxDev *d, uint16_t qid);
/* Wait for the next CQE on CQ @cqid; false on timeout */
bool nx_reap(NxDev *d, uint16_t cqid, NxCqe *e, gint64 timeout_us);
/* Submit, ring, wait: the status (SCT<<8|SC), or -1 on timeout */
int nx_exec(NxDev *d, uint16_t qid, NxCmd *c, NxCqe *e);

/* Admin helpers; they return the status like nx_exec */
int nx_identify(NxDev *d, uint8_t cns, uint32_t nsid, uint8_t csi,
                uint8_t *buf4k);
int nx_set_features(NxDev *d, uint8_t fid, uint32_t dw11, uint32_t *dw0);
int nx_get_features(NxDev *d, uint8_t fid, uint32_t dw11, uint32_t *dw0);
int nx_get_log(NxDev *d, uint8_t lid, uint32_t nsid, void *buf,
               uint32_t len);
/* I/O queue pair @qid (SQ @qid on CQ @qid) of @size entries */
int nx_create_ioq(NxDev *d, uint16_t qid, uint16_t size);
/* The same with a CQ of another size */
int nx_create_ioq_sizes(NxDev *d, uint16_t qid, uint16_t size,
                        uint16_t cq_size);
int nx_delete_ioq(NxDev *d, uint16_t qid);

/*
 * Point the driver at the same function in @dst, the QEMU a migration
 * moved the device to: the source QEMU is quit, and d->bus and d->qts
 * become @dst's (the caller's copies must follow).  Waits for @dst to run
 * first: until then its config space is not yet the migrated one.
 */
void nx_switch_to(NxDev *d, QTestState *dst, QGuestAllocator *alloc);

/* Guest memory helpers: chunked writes (qtest rescans its buffer) */
uint64_t nx_alloc(NxDev *d, uint64_t size, uint64_t align);
void nx_memwrite(NxDev *d, uint64_t addr, const void *buf, size_t len);
void nx_memread(NxDev *d, uint64_t addr, void *buf, size_t len);

#endif
