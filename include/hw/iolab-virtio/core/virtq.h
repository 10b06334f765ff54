/*
 * iolab core: fault-aware virtio split-virtqueue data path
 *
 * One engine shared by vpri-blk, vpri-nic and the vdpa-mgmt instances.
 * It parses and completes descriptor chains of a split virtqueue
 * (virtio 1.2, section 2.7) through DMA callbacks supplied by the
 * device glue, and knows nothing about transports, address spaces or
 * interrupts.
 *
 * Its one unusual property is that every DMA may fail with a page
 * fault (VPRI: the page-attribute bitmap says "not present"), and
 * every operation is written so that a fault leaves the queue exactly
 * as it was: the glue reports the fault, the host pages the address
 * in, and the glue simply calls the same operation again.
 *
 * All state lives in a small plain struct (Virtq) holding no pointers,
 * so tens of thousands of queues fit in one process and a queue can be
 * saved and restored by value.  See docs/virtq-engine.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_VIRTQ_H
#define HW_VPRI_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

/* Largest split-virtqueue size the specification allows */
#define VIRTQ_MAX_SIZE 32768

/*
 * Segments one VirtqElem can hold.  A chain with more non-empty
 * descriptors than this is treated as a guest error; Linux never
 * builds more than 1024 (its scatterlist limit), and this bounds a
 * VirtqElem to 16 KiB.
 */
#define VIRTQ_ELEM_MAX_SEG 1024

/* Descriptor flags (struct iolab_virtq_desc.flags) */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/* Driver-owned avail->flags, and device-owned used->flags */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Ring alignments required by the specification */
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4

/* Bytes of one descriptor, in the table or in an indirect table */
#define VIRTQ_DESC_SIZE 16

/* Byte sizes of the three areas for a queue of @size entries */
#define VIRTQ_DESC_BYTES(size) ((uint64_t)(size) * VIRTQ_DESC_SIZE)
/* flags, idx, ring[size], used_event (always counted) */
#define VIRTQ_AVAIL_BYTES(size) (6 + (uint64_t)(size) * 2)
/* flags, idx, ring[size] of {le32 id, le32 len}, avail_event */
#define VIRTQ_USED_BYTES(size) (6 + (uint64_t)(size) * 8)

typedef enum VirtqStatus {
    VIRTQ_OK = 0,
    /* Nothing available (or the queue is disabled) */
    VIRTQ_EMPTY = 1,
    /*
     * A DMA hit a non-present page; *fault_addr (and, for pop,
     * *fault_write) tell which.  Nothing was consumed or published:
     * make the page present and call the same operation again.
     */
    VIRTQ_FAULT = 2,
    /*
     * Guest error (malformed chain, loop, index out of range, bad
     * ring address...) or an access the platform refused.  The
     * caller sets DEVICE_NEEDS_RESET.  The queue stays broken (every
     * later operation fails the same way) until iolab_virtq_init() or
     * iolab_virtq_configure().
     */
    VIRTQ_ERROR = -1,
} VirtqStatus;

/*
 * DMA callbacks supplied by the device glue.  @addr is a device (bus)
 * address; an access may span pages.  Return 0 on success,
 * VIRTQ_FAULT with *@fault_addr set to the address of the (lowest)
 * page that is not present, or VIRTQ_ERROR for an access the platform
 * refuses (out of range, IOMMU denial).  Any other value is taken as
 * VIRTQ_ERROR.  A faulting access may have transferred part of the
 * data; the engine never relies on it.
 */
typedef struct VirtqDmaOps {
    int (*read)(void *opaque, uint64_t addr, void *buf, uint32_t len,
                uint64_t *fault_addr);
    int (*write)(void *opaque, uint64_t addr, const void *buf, uint32_t len,
                 uint64_t *fault_addr);
} VirtqDmaOps;

/*
 * Per-queue state.  Plain data: copy it, memset it, keep arrays of it.
 * Fields are public for the glue's debugging and statistics, but only
 * the functions below should change them.
 */
typedef struct Virtq {
    uint64_t desc;              /* descriptor table */
    uint64_t avail;             /* driver area */
    uint64_t used;              /* device area */
    uint16_t size;              /* entries; power of 2, <= VIRTQ_MAX_SIZE */
    uint16_t last_avail_idx;    /* next avail entry to pop (free-running) */
    uint16_t shadow_avail_idx;  /* avail->idx as last read; a cache */
    uint16_t used_idx;          /* our used->idx (free-running) */
    uint16_t signalled_used;    /* used_idx when we last notified */
    uint8_t signalled_used_valid;
    uint8_t enabled;
    uint8_t event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
    uint8_t indirect;           /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint8_t error;              /* 0, or why the queue is broken (VirtqErr) */
} Virtq;

typedef struct VirtqSeg {
    uint64_t addr;
    uint32_t len;
    bool write;                 /* device-writable */
} VirtqSeg;

/*
 * One popped descriptor chain.  Caller-allocated (about 16 KiB): one
 * per request in flight, not one per queue.  Device-readable segments
 * come first, then device-writable ones.  Zero-length descriptors are
 * accepted but produce no segment.
 */
typedef struct VirtqElem {
    uint16_t head;              /* descriptor head to return in used ring */
    uint16_t nseg;              /* segments filled */
    uint32_t in_len;            /* total device-writable bytes */
    uint32_t out_len;           /* total device-readable bytes */
    VirtqSeg seg[VIRTQ_ELEM_MAX_SEG];
} VirtqElem;

/* Reset to the state of a freshly reset device: disabled, unconfigured */
void iolab_virtq_init(Virtq *vq);

/*
 * Set the ring geometry and the negotiated features, and rewind the
 * indices to 0 (queue enable time).  Nothing is checked against guest
 * memory here; a size that is not a power of 2 in 1..VIRTQ_MAX_SIZE or
 * a misaligned or wrapping ring address makes the queue broken, which
 * the next operation reports as VIRTQ_ERROR with the reason.
 */
void iolab_virtq_configure(Virtq *vq, uint16_t size, uint64_t desc, uint64_t avail,
                     uint64_t used, bool event_idx, bool indirect);

/* A disabled queue pops nothing and notifies nobody */
void iolab_virtq_set_enabled(Virtq *vq, bool on);

/*
 * Pop the next available chain.  It is consumed (last_avail_idx moves)
 * only on VIRTQ_OK, once the whole chain has been read and validated:
 * on VIRTQ_EMPTY, VIRTQ_FAULT or VIRTQ_ERROR the queue state is the
 * same as before, so a fault can be retried with the same call.
 *
 * VIRTQ_FAULT: *@fault_addr is the faulting page, *@fault_write is
 * false (pop only reads).  VIRTQ_ERROR: *@err points to a short static
 * reason.  Any out pointer may be NULL.
 */
VirtqStatus iolab_virtq_pop(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                      VirtqElem *elem, uint64_t *fault_addr,
                      bool *fault_write, const char **err);

/*
 * Read the chain at avail ring position @pos (free-running, from
 * last_avail_idx up to the avail->idx last read) without consuming it or
 * changing the queue in any way: a device that looks ahead at the buffers
 * posted to it (to report them, see vpri_host_dma_arm()).  With
 * @fetch_idx, a @pos equal to the cached avail->idx reads avail->idx
 * from guest memory to see whether more was posted.  Returns VIRTQ_OK,
 * VIRTQ_EMPTY (nothing at @pos, or @pos out of that window), VIRTQ_FAULT
 * (*@fault_addr, nothing raised) or VIRTQ_ERROR (malformed; the queue is
 * not marked broken: popping the chain will report it).
 */
VirtqStatus iolab_virtq_peek(const Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                       uint16_t pos, bool fetch_idx, VirtqElem *elem,
                       uint64_t *fault_addr);

/*
 * Parse the chain whose head is @head without touching the avail ring
 * or any index.  iolab_virtq_pop() uses it; the glue uses it after a restore
 * to rebuild the elements that were in flight from their saved heads.
 * Same results as iolab_virtq_pop() (never VIRTQ_EMPTY).
 */
VirtqStatus iolab_virtq_read_chain(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                             uint16_t head, VirtqElem *elem,
                             uint64_t *fault_addr, const char **err);

/*
 * Gather @len bytes from the device-readable part of @e, starting
 * @offset bytes into it; scatter @len bytes into the device-writable
 * part.  Return 0, VIRTQ_FAULT (+ *@fault_addr; part of the data may
 * have moved, repeating the call is harmless) or VIRTQ_ERROR (the
 * range does not fit in the element, or the platform refused).
 */
int iolab_virtq_elem_read(const VirtqElem *e, const VirtqDmaOps *ops, void *opaque,
                    uint32_t offset, void *buf, uint32_t len,
                    uint64_t *fault_addr);
int iolab_virtq_elem_write(const VirtqElem *e, const VirtqDmaOps *ops, void *opaque,
                     uint32_t offset, const void *buf, uint32_t len,
                     uint64_t *fault_addr);

/*
 * Return element @head to the driver, @written bytes written.  Writes
 * the used ring entry, then (release-ordered) used->idx.  If either
 * write faults, the internal used_idx does not move and the call can
 * be repeated as is.  VIRTQ_ERROR: @head out of range, no element in
 * flight, or the platform refused.
 */
int iolab_virtq_push(Virtq *vq, const VirtqDmaOps *ops, void *opaque, uint16_t head,
               uint32_t written, uint64_t *fault_addr);

/*
 * After one or more pushes: must the driver be interrupted?  Honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT, or with event_idx the used_event field.
 * A fault reading the driver area answers true: a spurious interrupt
 * is harmless, a lost one is not.  A disabled or broken queue answers
 * false.  Call it once per interrupt decision: with event_idx it
 * records the point up to which the driver counts as notified.
 */
bool iolab_virtq_should_notify(Virtq *vq, const VirtqDmaOps *ops, void *opaque);

/*
 * Ask the driver to kick (@enable) or not.  With event_idx this writes
 * avail_event = the avail idx the device last saw (disabling writes
 * nothing: the driver then only kicks after a full wrap, which the
 * device never waits for); without it, it writes used->flags.  After
 * enabling, the caller must check iolab_virtq_avail_count() once more: the
 * driver may have added a buffer before it saw the new setting.
 * Returns 0, VIRTQ_FAULT (+ *@fault_addr; retry) or VIRTQ_ERROR.
 */
int iolab_virtq_set_notification(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                           bool enable, uint64_t *fault_addr);

/*
 * Number of available entries not yet popped (reads avail->idx).
 * Returns 0, VIRTQ_FAULT (+ *@fault_addr) or VIRTQ_ERROR, for instance
 * when avail->idx is more than size ahead of last_avail_idx.  A
 * disabled queue counts 0.
 */
int iolab_virtq_avail_count(Virtq *vq, const VirtqDmaOps *ops, void *opaque,
                      uint16_t *count, uint64_t *fault_addr);

/* Why the queue is broken, or NULL if it is not */
const char *iolab_virtq_error_reason(const Virtq *vq);

/*
 * Save/restore: a fixed 40-byte little-endian record, independent of
 * the host's endianness and of struct layout.  The format is described
 * in docs/virtq-engine.rst.  iolab_virtq_load() returns 0, or VIRTQ_ERROR
 * (leaving @vq untouched) for a bad magic, an unknown version or flag,
 * a non-zero reserved byte, or more elements in flight than the size.
 */
#define VIRTQ_SAVED_SIZE 40
#define VIRTQ_SAVED_MAGIC 0x51545256u     /* "VRTQ" as little-endian */
#define VIRTQ_SAVED_VERSION 1

void iolab_virtq_save(const Virtq *vq, uint8_t buf[VIRTQ_SAVED_SIZE]);
int iolab_virtq_load(Virtq *vq, const uint8_t buf[VIRTQ_SAVED_SIZE]);

#endif
