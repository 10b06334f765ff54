/*
 * A small modern virtio-pci driver for qtest (iolab's own helper).
 *
 * Written from the virtio 1.2 specification (4.1 "Virtio Over PCI Bus",
 * 2.7 "Split Virtqueues", 3.1 "Device Initialization").  It drives a
 * modern-only virtio PCI function through libqos' PCI accessors and
 * allocates its split rings in guest memory with the libqos allocator.
 *
 * It is deliberately low-level: besides the normal driver operations it
 * exposes raw descriptor, avail-ring and register accesses, so that tests
 * can hand the device malformed rings.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_VPRI_VIRTIO_H
#define IOLAB_VPRI_VIRTIO_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"

/* Device status bits (virtio 1.2, 2.1) */
#define VV_S_ACKNOWLEDGE        0x01
#define VV_S_DRIVER             0x02
#define VV_S_DRIVER_OK          0x04
#define VV_S_FEATURES_OK        0x08
#define VV_S_NEEDS_RESET        0x40
#define VV_S_FAILED             0x80

/* Reserved feature bits (virtio 1.2, 6) */
#define VV_F_INDIRECT_DESC      28
#define VV_F_EVENT_IDX          29
#define VV_F_VERSION_1          32
#define VV_F_ACCESS_PLATFORM    33

/* Split ring descriptor flags (2.7.5) */
#define VV_DESC_F_NEXT          1
#define VV_DESC_F_WRITE         2
#define VV_DESC_F_INDIRECT      4

/* ISR bits (4.1.4.5) */
#define VV_ISR_QUEUE            0x1
#define VV_ISR_CONFIG           0x2

#define VV_NO_VECTOR            0xffff

/* Default wait for a used entry or an interrupt, in microseconds */
#define VV_TIMEOUT_US           (5 * G_USEC_PER_SEC)

/* One buffer of a descriptor chain */
typedef struct VVBuf {
    uint64_t addr;
    uint32_t len;
    bool write;             /* device-writable */
} VVBuf;

typedef struct VVDev VVDev;

typedef struct VVQueue {
    VVDev *dev;
    uint16_t index;
    uint16_t size;
    uint64_t desc;          /* descriptor table, 16-byte aligned */
    uint64_t avail;         /* driver area, 2-byte aligned */
    uint64_t used;          /* device area, 4-byte aligned */
    uint64_t ring_mem;      /* the allocation holding all three */
    uint16_t avail_idx;     /* next avail index the driver publishes */
    uint16_t last_used;     /* next used index the driver consumes */
    uint16_t free_head;     /* head of the free descriptor list */
    uint16_t num_free;
    uint16_t *next;         /* shadow of desc[i].next for the free list */
    uint16_t *chain_len;    /* descriptors taken by the chain at each head */
    uint64_t *indirect;     /* indirect table owned by the chain, or 0 */
    uint16_t msix_vector;
    uint32_t notify_off;    /* offset of the doorbell in the notify BAR */
    bool enabled;
} VVQueue;

/* Where one virtio-pci structure lives */
typedef struct VVRegion {
    bool present;
    uint8_t bar;
    uint32_t offset;
    uint32_t length;
    QPCIBar token;
} VVRegion;

struct VVDev {
    QTestState *qts;
    QGuestAllocator *alloc;
    QPCIBus *bus;
    QPCIDevice *pdev;
    int devfn;

    VVRegion common, isr, device, notify;
    uint32_t notify_mult;
    uint8_t cap_pos[5];      /* config-space offset of each cap, by cfg_type */

    /*
     * Added to every address the driver hands the device (rings,
     * descriptors): behind a vIOMMU whose tables map IOVA = GPA + offset.
     * Raw accessors (vv_queue_write_desc...) take device addresses as is.
     */
    uint64_t dma_offset;

    uint64_t features;       /* negotiated */
    uint16_t num_queues;     /* as read from the common cfg */
    VVQueue *queues;         /* num_queues entries; set up on demand */
    bool msix;
};

/*
 * Find the function @vendor:@device on @bus, enable it (memory, bus
 * master), map the BARs the virtio capabilities name and locate the
 * common, ISR, device and notify structures.  Returns NULL if no such
 * function is present.
 */
VVDev *vv_dev_find(QTestState *qts, QPCIBus *bus, QGuestAllocator *alloc,
                   uint16_t vendor, uint16_t device);
void vv_dev_free(VVDev *d);

/* Common configuration accessors (offsets as in virtio 1.2, 4.1.4.3) */
#define VV_COMMON_DFSELECT      0x00
#define VV_COMMON_DF            0x04
#define VV_COMMON_GFSELECT      0x08
#define VV_COMMON_GF            0x0c
#define VV_COMMON_MSIX          0x10
#define VV_COMMON_NUMQ          0x12
#define VV_COMMON_STATUS        0x14
#define VV_COMMON_CFGGEN        0x15
#define VV_COMMON_Q_SELECT      0x16
#define VV_COMMON_Q_SIZE        0x18
#define VV_COMMON_Q_MSIX        0x1a
#define VV_COMMON_Q_ENABLE      0x1c
#define VV_COMMON_Q_NOFF        0x1e
#define VV_COMMON_Q_DESCLO      0x20
#define VV_COMMON_Q_DESCHI      0x24
#define VV_COMMON_Q_AVAILLO     0x28
#define VV_COMMON_Q_AVAILHI     0x2c
#define VV_COMMON_Q_USEDLO      0x30
#define VV_COMMON_Q_USEDHI      0x34

uint8_t vv_common_readb(VVDev *d, uint32_t off);
uint16_t vv_common_readw(VVDev *d, uint32_t off);
uint32_t vv_common_readl(VVDev *d, uint32_t off);
void vv_common_writeb(VVDev *d, uint32_t off, uint8_t val);
void vv_common_writew(VVDev *d, uint32_t off, uint16_t val);
void vv_common_writel(VVDev *d, uint32_t off, uint32_t val);

/* Device-specific configuration */
uint8_t vv_config_readb(VVDev *d, uint32_t off);
uint16_t vv_config_readw(VVDev *d, uint32_t off);
uint32_t vv_config_readl(VVDev *d, uint32_t off);
uint64_t vv_config_readq(VVDev *d, uint32_t off);

uint8_t vv_get_status(VVDev *d);
void vv_set_status(VVDev *d, uint8_t status);
/* Read the ISR status (which clears it). */
uint8_t vv_read_isr(VVDev *d);

/* Write 0 to device_status and wait until it reads back 0. */
void vv_reset(VVDev *d);

uint64_t vv_get_device_features(VVDev *d);
/* Write the driver features (both 32-bit halves). */
void vv_write_driver_features(VVDev *d, uint64_t features);
/*
 * Write @features, set FEATURES_OK and read it back.  Returns whether the
 * device kept FEATURES_OK.
 */
bool vv_negotiate(VVDev *d, uint64_t features);

/*
 * Enable MSI-X on the function.  Then vv_msix_set_entry() programs
 * table entry @vector to write @data to guest address @addr (unmasked).
 */
void vv_msix_enable(VVDev *d);
void vv_msix_set_entry(VVDev *d, uint16_t vector, uint64_t addr,
                       uint32_t data);
/* Set the configuration-change vector; returns what the device reads back. */
uint16_t vv_set_config_vector(VVDev *d, uint16_t vector);
/*
 * Poll guest address @addr until it holds @data (or the timeout passes);
 * then clear it.  Returns whether it arrived.
 */
bool vv_wait_msi(VVDev *d, uint64_t addr, uint32_t data, gint64 timeout_us);

/*
 * Allocate rings for queue @index with @size entries (0: the device's
 * maximum), program them and set queue_enable.  @vector is the MSI-X
 * vector of the queue (VV_NO_VECTOR for none).  Returns the queue; the
 * caller checks q->enabled.
 */
VVQueue *vv_queue_setup(VVDev *d, uint16_t index, uint16_t size,
                        uint16_t vector);

/*
 * The whole of 3.1.1: reset, ACKNOWLEDGE, DRIVER, negotiate @features
 * (intersected with what the device offers), set up queues 0..@nqueues-1
 * with @qsize entries and DRIVER_OK.  With MSI-X enabled beforehand,
 * queue i uses vector i + 1 and configuration changes vector 0.
 * Asserts on failure.
 */
void vv_init(VVDev *d, uint64_t features, uint16_t nqueues, uint16_t qsize);

/*
 * Build a chain of @n buffers.  Direct: @n descriptors of the ring.
 * Indirect: one ring descriptor pointing to a table of @n entries in
 * guest memory.  Returns the head index.  The chain is not yet visible.
 */
uint16_t vv_queue_add_chain(VVQueue *q, const VVBuf *bufs, int n,
                            bool indirect);
/* Put @head in the avail ring and advance avail->idx. */
void vv_queue_publish(VVQueue *q, uint16_t head);
/* Write the queue's doorbell. */
void vv_queue_kick(VVQueue *q);
/* Doorbell of an arbitrary queue index (no checks, for bad input). */
void vv_notify_raw(VVDev *d, uint16_t index);

/*
 * Wait until the device has put an entry in the used ring beyond
 * last_used; consume it, return its id and len, free the chain.  Returns
 * false on timeout.
 */
bool vv_queue_wait_used(VVQueue *q, uint32_t *id, uint32_t *len,
                        gint64 timeout_us);
/* The device's used->idx, as it is now. */
uint16_t vv_queue_used_idx(VVQueue *q);

/* Raw ring accesses for bad input */
void vv_queue_write_desc(VVQueue *q, uint16_t i, uint64_t addr, uint32_t len,
                         uint16_t flags, uint16_t next);
void vv_queue_write_avail_ring(VVQueue *q, uint16_t slot, uint16_t head);
void vv_queue_write_avail_idx(VVQueue *q, uint16_t idx);

/*
 * Step the virtual clock a little and give the main loop a chance to run.
 * Used by every wait loop.
 */
void vv_poll_step(VVDev *d);

#endif
