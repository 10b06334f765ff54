/*
 * Storage migration: a block device's data in QEMU's own migration
 * stream, allocated blocks first, then the blocks written since.
 *
 * A device that owns a BlockBackend registers it once (realize) and
 * reports every write it completes.  From then on a migration carries the
 * device's data with it, over any transport QEMU supports:
 *
 *  - setup starts the change log (migration/core/change-log.c) and an
 *    allocation walk (migration/core/alloc-walk.c);
 *  - each iteration sends allocated ranges until the walk ends, then
 *    drains the change log; the pending-bytes hook reports what is left,
 *    so QEMU's own convergence (downtime-limit, max-bandwidth) decides
 *    when to switch over;
 *  - the final ranges go in the downtime, with the VM stopped;
 *  - with the auto-converge capability on, a guest that writes faster
 *    than the migration sends gets an increasing write limit (the
 *    device's throttle hook), released when the migration ends.
 *
 * The destination writes into its own image (a blank image of the same
 * size or larger); a smaller, read-only or differently sized-block image
 * is refused before any data moves, naming the device and the field.
 * The stream layout is in docs/storage-migration.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MIGRATION_IOLAB_STORAGE_H
#define MIGRATION_IOLAB_STORAGE_H

#include "system/block-backend.h"

typedef struct IolabStorageMig IolabStorageMig;

typedef struct IolabStorageMigOps {
    /*
     * Apply (or with 0, 0 release) a write limit to the guest: bytes and
     * write commands per second.  Called in the main loop (BQL held).
     */
    void (*throttle)(void *opaque, uint64_t bps, uint64_t iops);
} IolabStorageMigOps;

typedef enum IolabStorageMigState {
    IOLAB_STORAGE_MIG_IDLE,         /* no migration has run */
    IOLAB_STORAGE_MIG_BULK,         /* sending allocated ranges */
    IOLAB_STORAGE_MIG_DRAINING,     /* sending changed ranges */
    IOLAB_STORAGE_MIG_COMPLETED,    /* source: all sent; dest: all written */
    IOLAB_STORAGE_MIG_CANCELLED,    /* source: ended before completion */
    IOLAB_STORAGE_MIG_RECEIVING,    /* destination: data arriving */
    IOLAB_STORAGE_MIG_FAILED,       /* destination: refused the stream */
} IolabStorageMigState;

typedef struct IolabStorageMigInfo {
    IolabStorageMigState state;
    uint64_t passes;            /* completed passes: bulk, then each drain */
    uint64_t allocated_bytes;   /* allocated when the migration started */
    uint64_t sent_bytes;        /* data bytes sent (or, dest, written) */
    uint64_t zero_bytes;        /* bytes sent as zero ranges, no data */
    uint64_t changed_bytes;     /* bytes marked written since setup */
    uint64_t pending_bytes;     /* left to send now */
    uint64_t log_overflows;     /* change-log fallbacks to "all changed" */
    uint64_t throttle_bps;      /* write limit in force (0 = none) */
    uint64_t throttle_iops;
    uint64_t flushes;           /* destination: image flushes while loading */
} IolabStorageMigInfo;

/*
 * Register @blk, of @nblocks blocks of @block_size bytes, for storage
 * migration under the section name @idstr (unique in the VM, the same on
 * both sides).  @ops may be NULL (no throttle).
 */
IolabStorageMig *iolab_storage_mig_register(const char *idstr,
                                            BlockBackend *blk,
                                            uint32_t block_size,
                                            uint64_t nblocks,
                                            const IolabStorageMigOps *ops,
                                            void *opaque);
void iolab_storage_mig_unregister(IolabStorageMig *m);

/*
 * The full-copy ablation (benchmarks only): send every block of the
 * image as data, ignoring what is allocated and what reads as zeros, as
 * a copy that knows nothing of the device would.  Set before a
 * migration starts.
 */
void iolab_storage_mig_set_full_copy(IolabStorageMig *m, bool full_copy);

/*
 * The device completed a write, write-zeroes or deallocate of blocks
 * [@block, @block + @count), successfully or not.  Report it after the
 * data is in the image, never before: a range read for sending between
 * the submission and the completion must be sent again.  BQL held.
 */
void iolab_storage_mig_written(IolabStorageMig *m, uint64_t block,
                               uint64_t count);

void iolab_storage_mig_get_info(IolabStorageMig *m, IolabStorageMigInfo *info);
const char *iolab_storage_mig_state_name(IolabStorageMigState state);

#endif
