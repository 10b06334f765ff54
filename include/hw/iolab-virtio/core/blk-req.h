/*
 * iolab core: the pure checks of a virtio-blk request
 *
 * The shared block-request state machine (hw/iolab-virtio/iolab-blk.c)
 * asks these functions whether a popped descriptor chain is a request at
 * all, where its data lies, whether a read or write fits the disk and the
 * limits the device advertises, and whether a bounce buffer may be taken
 * from the device's budget.  They know nothing of QEMU: the glue parses
 * the header through upstream's struct virtio_blk_outhdr and passes the
 * values in.  See docs/virtq-engine.rst, "Block requests".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_IOLAB_VIRTIO_BLK_REQ_H
#define HW_IOLAB_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/iolab-virtio/core/virtq.h"

/* Sector unit of virtio-blk's header, whatever the logical block size */
#define IOLAB_BLK_SECTOR_SIZE 512u
/* struct virtio_blk_outhdr: le32 type, le32 ioprio, le64 sector */
#define IOLAB_BLK_HDR_SIZE 16u

/* What the device advertises and enforces (virtio 1.2, 5.2.4) */
typedef struct IolabBlkLimits {
    uint64_t capacity;          /* sectors of IOLAB_BLK_SECTOR_SIZE */
    uint32_t max_data;          /* bytes of one read or write */
    uint32_t seg_max;           /* data segments of one request; 0: none */
    bool read_only;
} IolabBlkLimits;

/*
 * Has @e room for a header (the first IOLAB_BLK_HDR_SIZE device-readable
 * bytes) and a status byte (the last device-writable byte)?  A chain
 * without them cannot even be answered: a device error.
 */
bool iolab_blk_chain_ok(const VirtqElem *e);

/*
 * The data of a read (@to_guest: device-writable bytes before the status
 * byte) or a write (device-readable bytes after the header): its length,
 * and in *@nseg how many segments it touches.
 */
uint32_t iolab_blk_data_len(const VirtqElem *e, bool to_guest,
                            uint32_t *nseg);

/*
 * Check a read (@to_guest) or write of @data_len bytes in @nseg segments
 * at @sector against @lim.  NULL if it may go to the backend, else a
 * short static reason (the request then completes with IOERR).
 */
const char *iolab_blk_check_rw(const IolabBlkLimits *lim, bool to_guest,
                               uint64_t sector, uint32_t data_len,
                               uint32_t nseg);

/*
 * Bounce memory of one device: requests whose data is not plain RAM copy
 * it through a buffer taken from this budget.  At the cap the request
 * (and its queue) waits until buffers come back: the guest is stalled,
 * never failed.  A request larger than the cap still runs, alone, so a
 * cap below the largest request cannot wedge a queue.
 */
typedef struct IolabBlkBudget {
    uint64_t cap;
    uint64_t used;
    uint64_t peak;              /* statistics: highest use seen */
    uint64_t stalls;            /* statistics: takes refused at the cap */
} IolabBlkBudget;

void iolab_blk_budget_init(IolabBlkBudget *b, uint64_t cap);
/* Take @len bytes, or false (nothing taken) when the cap forbids it */
bool iolab_blk_budget_take(IolabBlkBudget *b, uint64_t len);
void iolab_blk_budget_give(IolabBlkBudget *b, uint64_t len);

#endif
