/*
 * Storage migration: a block device's data in QEMU's own migration
 * stream.  See include/migration/iolab/storage.h for the contract and
 * docs/storage-migration.rst for the stream layout.
 *
 * Locking: the change log and the counters are guarded by m->lock, since
 * the pending-bytes hooks run in the migration thread without the BQL.
 * Block I/O (status, reads on the source; writes on the destination) runs
 * with the BQL held: the iterate hook takes it around each chunk.  Device
 * write completions, which mark the log, also run under the BQL, so a
 * chunk's walk step and its read are not interleaved with a mark except
 * while the read itself waits; a write that completes then, to blocks
 * behind the walk's cursor, is marked and sent again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "qemu/memalign.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/coroutine.h"
#include "qapi/error.h"
#include "block/block.h"
#include "block/block-global-state.h"
#include "block/graph-lock.h"
#include "migration/register.h"
#include "migration/qemu-file-types.h"
#include "qapi/qapi-types-migration.h"
#include "migration/options.h"
#include "migration/iolab/storage.h"
#include "migration/iolab/core/alloc-walk.h"
#include "migration/iolab/core/change-log.h"
#include "trace.h"

#define STORAGE_MIG_VERSION 1

/* Record tags, each a be64 on the wire (docs/storage-migration.rst). */
enum {
    STO_HEADER = 0x494f4c4142535448ull,    /* "IOLABSTH" */
    STO_DATA = 1,           /* be64 block, be32 count, count blocks */
    STO_ZERO = 2,           /* be64 block, be32 count */
    STO_PASS = 3,           /* be64 passes: a pass over the device ended */
    STO_DONE = 4,           /* the source sent everything */
    STO_EOS = 0x454f53,     /* "EOS": end of this section's records */
};

/*
 * At most this much data per record and per iteration call: QEMU checks
 * its rate limit between calls, so a chunk is what one call may overshoot.
 */
#define STORAGE_MIG_CHUNK (256 * KiB)

/* The change log's bound: 64 Ki ranges, 1 MiB of memory. */
#define STORAGE_MIG_LOG_RANGES (64 * 1024)

/* Auto-converge: the window over which rates are compared. */
#define STORAGE_MIG_WINDOW_NS (1 * NANOSECONDS_PER_SECOND)
/* ... and the floor of the write limit it applies. */
#define STORAGE_MIG_MIN_BPS (64 * KiB)
/* Pending reported while the bulk pass runs: no threshold is that large */
#define STORAGE_MIG_HOLD_BYTES (1 * TiB)

/*
 * The destination makes what it wrote durable every so many bytes, and
 * once more when the stream ends.  At the end because the guest flushed
 * its writes on the source and may rely on them: the source's copy goes
 * away once the destination runs, so the destination's copy must be on
 * stable storage before it says it has loaded.  Every so many bytes so
 * that the flush at the end, which is in the downtime, finds little to
 * do (as blockdev-mirror flushes its target before it is ready).
 */
#define STORAGE_MIG_FLUSH_BYTES (64 * MiB)
/*
 * And at the end of a pass (the allocated blocks all sent, or the change
 * log drained), when at least this much is not flushed yet: a pass that
 * ends is the moment the copy has caught up, and the switch-over follows
 * one, so the flush in the downtime is left with what came after it.
 * Not at every pass: a log that drains many times a second would flush
 * as often.
 */
#define STORAGE_MIG_FLUSH_PASS_BYTES (4 * MiB)

struct IolabStorageMig {
    char *idstr;
    BlockBackend *blk;
    uint32_t block_size;
    uint64_t nblocks;
    const IolabStorageMigOps *ops;
    void *opaque;
    bool full_copy;             /* ablation: every block is data */

    QemuMutex lock;             /* the fields below */
    IolabStorageMigState state;
    IolabChangeLog *log;        /* NULL unless a migration runs */
    IolabAllocWalk walk;
    uint64_t passes;
    /* Draining: the log was empty once since the walk ended */
    bool caught_up;
    uint64_t allocated_bytes;
    uint64_t bulk_bytes;        /* what the bulk walk will send */
    uint64_t bulk_sent_bytes;
    uint64_t sent_bytes;
    uint64_t zero_bytes;
    uint64_t changed_bytes;
    uint64_t log_overflows;
    /* How fast ranges go out (read, then put), timed range by range */
    uint64_t timed_bytes;
    uint64_t timed_ns;

    /* Auto-converge (migration thread, BQL held) */
    int64_t window_start_ns;
    uint64_t window_sent;
    uint64_t window_changed;
    unsigned slow_windows;      /* windows in a row the log did not shrink */
    uint64_t throttle_bps;
    uint64_t throttle_iops;

    /* Destination */
    bool header_seen;
    uint8_t *buf;
    uint64_t unflushed_bytes;   /* written since the last flush */
    uint64_t flushes;
};

static const char *const iolab_storage_mig_state_names[] = {
    [IOLAB_STORAGE_MIG_IDLE] = "idle",
    [IOLAB_STORAGE_MIG_BULK] = "bulk",
    [IOLAB_STORAGE_MIG_DRAINING] = "draining",
    [IOLAB_STORAGE_MIG_COMPLETED] = "completed",
    [IOLAB_STORAGE_MIG_CANCELLED] = "cancelled",
    [IOLAB_STORAGE_MIG_RECEIVING] = "receiving",
    [IOLAB_STORAGE_MIG_FAILED] = "failed",
};

const char *iolab_storage_mig_state_name(IolabStorageMigState state)
{
    if ((unsigned)state >= ARRAY_SIZE(iolab_storage_mig_state_names)) {
        return "unknown";
    }
    return iolab_storage_mig_state_names[state];
}

static uint64_t iolab_storage_mig_chunk_blocks(IolabStorageMig *m)
{
    return STORAGE_MIG_CHUNK / m->block_size;
}

/* ------------------------------------------------------------------ */
/* Source                                                              */

static int iolab_storage_mig_block_status(void *opaque, uint64_t block,
                                          uint64_t max, bool *allocated,
                                          uint64_t *count)
{
    IolabStorageMig *m = opaque;
    BlockDriverState *bs = blk_bs(m->blk);
    int64_t pnum = 0;
    int ret;

    if (!bs) {
        return -ENOMEDIUM;
    }
    if (max > INT64_MAX / m->block_size) {
        max = INT64_MAX / m->block_size;
    }
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    ret = bdrv_block_status_above(bs, NULL, block * m->block_size,
                                  max * m->block_size, &pnum, NULL, NULL);
    if (ret < 0) {
        return ret;
    }
    *allocated = (ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO);
    *count = DIV_ROUND_UP(pnum, m->block_size);
    return 0;
}

/* The full-copy ablation's walk: every block, never asking the image */
static int iolab_storage_mig_block_all(void *opaque, uint64_t block,
                                       uint64_t max, bool *allocated,
                                       uint64_t *count)
{
    *allocated = true;
    *count = max;
    return 0;
}

static uint64_t iolab_storage_mig_count_allocated(IolabStorageMig *m)
{
    IolabAllocWalk w;
    uint64_t start, count, blocks = 0;

    iolab_alloc_walk_init(&w, m->nblocks, iolab_storage_mig_block_status, m);
    while (iolab_alloc_walk_next(&w, UINT64_MAX, &start, &count) == 1) {
        blocks += count;
    }
    return blocks * m->block_size;
}

static void iolab_storage_mig_set_throttle(IolabStorageMig *m, uint64_t bps,
                                           uint64_t iops)
{
    if (m->throttle_bps == bps && m->throttle_iops == iops) {
        return;
    }
    m->throttle_bps = bps;
    m->throttle_iops = iops;
    trace_iolab_storage_mig_throttle(m->idstr, bps, iops);
    if (m->ops && m->ops->throttle) {
        m->ops->throttle(m->opaque, bps, iops);
    }
}

/*
 * Sends blocks [block, block + count) as one record: zeros as a ZERO
 * record, anything else as DATA.  BQL held.
 */
static int iolab_storage_mig_send_range(IolabStorageMig *m, QEMUFile *f,
                                        uint64_t block, uint64_t count)
{
    size_t len = count * m->block_size;
    int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int ret;

    ret = blk_pread(m->blk, block * m->block_size, len, m->buf, 0);
    if (ret < 0) {
        error_report("storage migration of '%s': reading %zu bytes at "
                     "block %" PRIu64 " failed: %s", m->idstr, len, block,
                     strerror(-ret));
        return ret;
    }
    if (!m->full_copy && buffer_is_zero(m->buf, len)) {
        qemu_put_be64(f, STO_ZERO);
        qemu_put_be64(f, block);
        qemu_put_be32(f, count);
        qemu_mutex_lock(&m->lock);
        m->zero_bytes += len;
    } else {
        qemu_put_be64(f, STO_DATA);
        qemu_put_be64(f, block);
        qemu_put_be32(f, count);
        qemu_put_buffer(f, m->buf, len);
        qemu_mutex_lock(&m->lock);
        m->sent_bytes += len;
    }
    m->window_sent += len;
    m->timed_bytes += len;
    m->timed_ns += qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0;
    qemu_mutex_unlock(&m->lock);
    trace_iolab_storage_mig_send(m->idstr, block, count);
    return qemu_file_get_error(f);
}

/*
 * Sends the next range: the walk's while it lasts, then the log's.
 * Returns 1 when a range was sent, 0 when nothing is left, or an error.
 * BQL held.
 */
static int iolab_storage_mig_send_next(IolabStorageMig *m, QEMUFile *f)
{
    uint64_t start, count;
    int ret;

    if (m->state == IOLAB_STORAGE_MIG_BULK) {
        ret = iolab_alloc_walk_next(&m->walk, iolab_storage_mig_chunk_blocks(m),
                                    &start, &count);
        if (ret < 0) {
            error_report("storage migration of '%s': block status at block "
                         "%" PRIu64 " failed: %s", m->idstr, m->walk.cursor,
                         strerror(-ret));
            return ret;
        }
        if (ret == 1) {
            ret = iolab_storage_mig_send_range(m, f, start, count);
            if (ret == 0) {
                qemu_mutex_lock(&m->lock);
                m->bulk_sent_bytes += count * m->block_size;
                qemu_mutex_unlock(&m->lock);
            }
            return ret < 0 ? ret : 1;
        }
        qemu_mutex_lock(&m->lock);
        m->state = IOLAB_STORAGE_MIG_DRAINING;
        m->passes++;
        qemu_mutex_unlock(&m->lock);
        qemu_put_be64(f, STO_PASS);
        qemu_put_be64(f, m->passes);
    }

    qemu_mutex_lock(&m->lock);
    ret = iolab_change_log_take(m->log, iolab_storage_mig_chunk_blocks(m),
                                &start, &count);
    if (!ret) {
        m->caught_up = true;
    }
    qemu_mutex_unlock(&m->lock);
    if (!ret) {
        return 0;
    }
    ret = iolab_storage_mig_send_range(m, f, start, count);
    if (ret == 0 && iolab_change_log_pending(m->log) == 0) {
        qemu_mutex_lock(&m->lock);
        m->passes++;
        m->caught_up = true;
        qemu_mutex_unlock(&m->lock);
        qemu_put_be64(f, STO_PASS);
        qemu_put_be64(f, m->passes);
    }
    return ret < 0 ? ret : 1;
}

/*
 * Auto-converge: once a second, compare what the guest wrote with what
 * was sent.  When the log is draining and the guest wrote at least half
 * as much as was sent for two windows in a row, the copy is not gaining:
 * limit the guest's writes to half of the send rate, and halve the limit
 * again for every further such window.  BQL held.
 */
static void iolab_storage_mig_converge(IolabStorageMig *m)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    uint64_t sent, changed, elapsed, rate, bps;

    if (now - m->window_start_ns < STORAGE_MIG_WINDOW_NS) {
        return;
    }
    qemu_mutex_lock(&m->lock);
    sent = m->window_sent;
    changed = m->window_changed;
    m->window_sent = 0;
    m->window_changed = 0;
    qemu_mutex_unlock(&m->lock);
    elapsed = now - m->window_start_ns;
    m->window_start_ns = now;

    if (!migrate_auto_converge() || m->state != IOLAB_STORAGE_MIG_DRAINING) {
        return;
    }
    if (changed * 2 < sent) {
        m->slow_windows = 0;
        return;
    }
    if (++m->slow_windows < 2) {
        return;
    }
    rate = sent * NANOSECONDS_PER_SECOND / MAX(elapsed, 1);
    bps = m->throttle_bps ? m->throttle_bps / 2 : rate / 2;
    bps = MAX(bps, STORAGE_MIG_MIN_BPS);
    iolab_storage_mig_set_throttle(m, bps, MAX(bps / m->block_size, 1));
}

static int iolab_storage_mig_save_setup(QEMUFile *f, void *opaque, Error **errp)
{
    IolabStorageMig *m = opaque;
    IolabChangeLog *log;
    uint64_t allocated;

    log = iolab_change_log_new(m->nblocks, STORAGE_MIG_LOG_RANGES);
    if (!log) {
        error_setg(errp, "storage migration of '%s': cannot allocate its "
                   "change log", m->idstr);
        return -ENOMEM;
    }
    allocated = iolab_storage_mig_count_allocated(m);

    qemu_mutex_lock(&m->lock);
    iolab_change_log_free(m->log);
    m->log = log;
    iolab_alloc_walk_init(&m->walk, m->nblocks,
                          m->full_copy ? iolab_storage_mig_block_all
                                       : iolab_storage_mig_block_status, m);
    m->state = IOLAB_STORAGE_MIG_BULK;
    m->passes = 0;
    m->caught_up = false;
    m->allocated_bytes = allocated;
    m->bulk_bytes = m->full_copy ? m->nblocks * m->block_size : allocated;
    m->bulk_sent_bytes = 0;
    m->sent_bytes = 0;
    m->zero_bytes = 0;
    m->changed_bytes = 0;
    m->log_overflows = 0;
    m->timed_bytes = 0;
    m->timed_ns = 0;
    m->window_sent = 0;
    m->window_changed = 0;
    qemu_mutex_unlock(&m->lock);
    m->window_start_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    m->slow_windows = 0;
    if (!m->buf) {
        m->buf = qemu_blockalign(blk_bs(m->blk), STORAGE_MIG_CHUNK);
    }
    trace_iolab_storage_mig_setup(m->idstr, m->nblocks, allocated);

    qemu_put_be64(f, STO_HEADER);
    qemu_put_be32(f, STORAGE_MIG_VERSION);
    qemu_put_be32(f, m->block_size);
    qemu_put_be64(f, m->nblocks);
    qemu_put_be64(f, STO_EOS);
    return qemu_file_get_error(f);
}

static bool iolab_storage_mig_is_active_iterate(void *opaque)
{
    IolabStorageMig *m = opaque;

    return m->state == IOLAB_STORAGE_MIG_BULK ||
           m->state == IOLAB_STORAGE_MIG_DRAINING;
}

static uint64_t iolab_storage_mig_pending_locked(IolabStorageMig *m)
{
    uint64_t bulk = 0;

    if (m->state == IOLAB_STORAGE_MIG_BULK &&
        m->bulk_bytes > m->bulk_sent_bytes) {
        /* No more than the blocks past the walk's cursor */
        bulk = MIN(m->bulk_bytes - m->bulk_sent_bytes,
                   (m->nblocks - MIN(m->walk.cursor, m->nblocks)) *
                   m->block_size);
    }
    if (!m->log) {
        return bulk;
    }
    return bulk + iolab_change_log_pending(m->log) * m->block_size;
}

/*
 * QEMU switches over when what is pending fits in downtime-limit at the
 * stream's bandwidth, counting bytes as if all went out at that speed.
 * Ours go no faster than they are read (and written on the other side):
 * on a slow disk, a pending byte costs more time than a RAM byte.  So
 * what is pending is reported in stream bytes of the same time: scaled
 * by the stream's bandwidth over the rate ranges were measured to go
 * out at, when that is slower.  The bandwidth is the one QEMU assumes
 * for the switch-over: avail-switchover-bandwidth if set, else
 * max-bandwidth (an upper bound of its estimate: we err towards a later
 * switch-over, not a longer downtime).
 */
static uint64_t iolab_storage_mig_pending_cost_locked(IolabStorageMig *m)
{
    uint64_t pending = iolab_storage_mig_pending_locked(m);
    uint64_t bw = migrate_avail_switchover_bandwidth();
    double rate;

    /*
     * The allocated blocks are all sent before the switch-over, and the
     * change log drained to empty once after them, as blockdev-mirror is
     * ready only once it is in sync: the downtime is left for what the
     * guest changed since the copy last caught up.  (Released at the end
     * of the walk alone, the switch-over came with up to downtime-limit
     * times the bandwidth of changed blocks still to send, 38 MiB at
     * 300 ms and 128 MiB/s, which a guest writing while the walk ran had
     * logged.)  Pending that QEMU's threshold can never reach holds the
     * switch-over until then.  The walk ends (it covers the image once),
     * and a log that never drains does not converge anyway (auto-converge
     * throttles the guest until it does), so convergence is only delayed.
     */
    if (m->state == IOLAB_STORAGE_MIG_BULK ||
        (m->state == IOLAB_STORAGE_MIG_DRAINING && !m->caught_up)) {
        return pending + STORAGE_MIG_HOLD_BYTES;
    }

    if (!bw) {
        bw = migrate_max_bandwidth();
    }
    /* Too few ranges timed yet to know the rate */
    if (!bw || m->timed_bytes < STORAGE_MIG_CHUNK * 4 || !m->timed_ns) {
        return pending;
    }
    rate = (double)m->timed_bytes * NANOSECONDS_PER_SECOND / m->timed_ns;
    if (rate >= bw) {
        return pending;
    }
    return MIN((double)pending * bw / rate, (double)UINT64_MAX / 2);
}

static void iolab_storage_mig_state_pending(void *opaque,
                                            uint64_t *must_precopy,
                                            uint64_t *can_postcopy)
{
    IolabStorageMig *m = opaque;

    qemu_mutex_lock(&m->lock);
    if (iolab_storage_mig_is_active_iterate(m)) {
        *must_precopy += iolab_storage_mig_pending_cost_locked(m);
    }
    qemu_mutex_unlock(&m->lock);
}

static int iolab_storage_mig_save_iterate(QEMUFile *f, void *opaque)
{
    IolabStorageMig *m = opaque;
    int ret;

    bql_lock();
    ret = iolab_storage_mig_send_next(m, f);
    if (ret >= 0) {
        iolab_storage_mig_converge(m);
    }
    bql_unlock();
    qemu_put_be64(f, STO_EOS);
    if (ret < 0) {
        return ret;
    }
    /* 1: nothing left for now; the log may fill again until switch-over. */
    return ret == 0;
}

static int iolab_storage_mig_save_complete(QEMUFile *f, void *opaque)
{
    IolabStorageMig *m = opaque;
    int ret;

    uint64_t sent_before = m->sent_bytes + m->zero_bytes;
    int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    /* The VM is stopped and its I/O drained: the log is final. */
    while ((ret = iolab_storage_mig_send_next(m, f)) == 1) {
    }
    if (ret < 0) {
        return ret;
    }
    trace_iolab_storage_mig_switchover(m->idstr,
                                       m->sent_bytes + m->zero_bytes -
                                       sent_before,
                                       (qemu_clock_get_ns(QEMU_CLOCK_REALTIME)
                                        - t0) / SCALE_US);
    qemu_put_be64(f, STO_DONE);
    qemu_put_be64(f, STO_EOS);
    qemu_mutex_lock(&m->lock);
    m->state = IOLAB_STORAGE_MIG_COMPLETED;
    qemu_mutex_unlock(&m->lock);
    iolab_storage_mig_set_throttle(m, 0, 0);
    trace_iolab_storage_mig_complete(m->idstr, m->passes, m->sent_bytes);
    return qemu_file_get_error(f);
}

static void iolab_storage_mig_save_cleanup(void *opaque)
{
    IolabStorageMig *m = opaque;
    IolabChangeLogStats st;

    qemu_mutex_lock(&m->lock);
    if (m->state == IOLAB_STORAGE_MIG_BULK ||
        m->state == IOLAB_STORAGE_MIG_DRAINING) {
        m->state = IOLAB_STORAGE_MIG_CANCELLED;
    }
    if (m->log) {
        iolab_change_log_get_stats(m->log, &st);
        m->log_overflows = st.overflows;
        iolab_change_log_free(m->log);
        m->log = NULL;
    }
    qemu_mutex_unlock(&m->lock);
    iolab_storage_mig_set_throttle(m, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Destination                                                         */

static int iolab_storage_mig_fail(IolabStorageMig *m, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static int iolab_storage_mig_fail(IolabStorageMig *m, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("storage migration of '%s' refused: %s", m->idstr, msg);
    m->state = IOLAB_STORAGE_MIG_FAILED;
    return -EINVAL;
}

/* The image must take what the source has, and be writable now. */
static int iolab_storage_mig_load_header(IolabStorageMig *m, QEMUFile *f)
{
    uint32_t version = qemu_get_be32(f);
    uint32_t block_size = qemu_get_be32(f);
    uint64_t nblocks = qemu_get_be64(f);
    BlockDriverState *bs = blk_bs(m->blk);
    Error *err = NULL;
    int ret;

    if (qemu_file_get_error(f)) {
        return qemu_file_get_error(f);
    }
    if (version != STORAGE_MIG_VERSION) {
        return iolab_storage_mig_fail(m,
                                      "stream version %u, this QEMU reads %u",
                                      version, STORAGE_MIG_VERSION);
    }
    if (block_size != m->block_size) {
        return iolab_storage_mig_fail(m, "block-size is %u in the stream and "
                                      "%u here (another LBA format)",
                                      block_size, m->block_size);
    }
    if (nblocks > m->nblocks) {
        return iolab_storage_mig_fail(m, "the image is too small: the stream "
                                      "has %" PRIu64 " blocks, the image here "
                                      "%" PRIu64, nblocks, m->nblocks);
    }
    if (!bs || bdrv_is_read_only(bs) || !blk_is_writable(m->blk)) {
        return iolab_storage_mig_fail(m, "the image here is read-only");
    }
    if (qemu_in_coroutine()) {
        ret = bdrv_co_activate(bs, &err);
    } else {
        GRAPH_RDLOCK_GUARD_MAINLOOP();
        ret = bdrv_activate(bs, &err);
    }
    if (ret < 0) {
        error_report_err(err);
        return iolab_storage_mig_fail(m, "the image here cannot be written to "
                                      "before switch-over");
    }
    m->header_seen = true;
    m->state = IOLAB_STORAGE_MIG_RECEIVING;
    if (!m->buf) {
        m->buf = qemu_blockalign(bs, STORAGE_MIG_CHUNK);
    }
    return 0;
}

/* Destination: what was written so far goes to stable storage. */
static int iolab_storage_mig_flush(IolabStorageMig *m)
{
    int ret = blk_flush(m->blk);

    if (ret < 0) {
        error_report("storage migration of '%s': flushing the image "
                     "failed: %s", m->idstr, strerror(-ret));
        m->state = IOLAB_STORAGE_MIG_FAILED;
        return ret;
    }
    trace_iolab_storage_mig_flush(m->idstr, m->unflushed_bytes);
    m->unflushed_bytes = 0;
    m->flushes++;
    return 0;
}

static int iolab_storage_mig_load_range(IolabStorageMig *m, QEMUFile *f,
                                        bool data)
{
    uint64_t block = qemu_get_be64(f);
    uint32_t count = qemu_get_be32(f);
    size_t len;
    int ret;

    if (qemu_file_get_error(f)) {
        return qemu_file_get_error(f);
    }
    if (!m->header_seen) {
        return iolab_storage_mig_fail(m, "a range arrived before the header");
    }
    if (count == 0 || count > iolab_storage_mig_chunk_blocks(m)) {
        return iolab_storage_mig_fail(m,
                                      "range count %u is outside 1..%" PRIu64,
                                      count, iolab_storage_mig_chunk_blocks(m));
    }
    if (block >= m->nblocks || count > m->nblocks - block) {
        return iolab_storage_mig_fail(m, "range block %" PRIu64 " + count %u "
                                      "is past the end of the image (%" PRIu64
                                      " blocks)", block, count, m->nblocks);
    }
    len = (size_t)count * m->block_size;
    if (data) {
        if (qemu_get_buffer(f, m->buf, len) != len) {
            return qemu_file_get_error(f) ?: -EIO;
        }
        ret = blk_pwrite(m->blk, block * m->block_size, len, m->buf, 0);
        m->sent_bytes += len;
    } else {
        ret = blk_pwrite_zeroes(m->blk, block * m->block_size, len,
                                BDRV_REQ_MAY_UNMAP);
        m->zero_bytes += len;
    }
    if (ret < 0) {
        error_report("storage migration of '%s': writing %zu bytes at block "
                     "%" PRIu64 " failed: %s", m->idstr, len, block,
                     strerror(-ret));
        m->state = IOLAB_STORAGE_MIG_FAILED;
        return ret;
    }
    m->unflushed_bytes += len;
    if (m->unflushed_bytes >= STORAGE_MIG_FLUSH_BYTES) {
        return iolab_storage_mig_flush(m);
    }
    return 0;
}

static int iolab_storage_mig_load_state(QEMUFile *f, void *opaque,
                                        int version_id)
{
    IolabStorageMig *m = opaque;
    int ret = 0;

    if (version_id != STORAGE_MIG_VERSION) {
        return iolab_storage_mig_fail(m,
                                      "section version %d, this QEMU reads %d",
                                      version_id, STORAGE_MIG_VERSION);
    }
    for (;;) {
        uint64_t tag = qemu_get_be64(f);

        if (qemu_file_get_error(f)) {
            return qemu_file_get_error(f);
        }
        switch (tag) {
        case STO_HEADER:
            if (m->header_seen) {
                return iolab_storage_mig_fail(m, "a second header");
            }
            ret = iolab_storage_mig_load_header(m, f);
            break;
        case STO_DATA:
        case STO_ZERO:
            ret = iolab_storage_mig_load_range(m, f, tag == STO_DATA);
            break;
        case STO_PASS:
            m->passes = qemu_get_be64(f);
            if (m->header_seen &&
                m->unflushed_bytes >= STORAGE_MIG_FLUSH_PASS_BYTES) {
                ret = iolab_storage_mig_flush(m);
            }
            break;
        case STO_DONE:
            if (!m->header_seen) {
                return iolab_storage_mig_fail(m, "the end arrived before the "
                                              "header");
            }
            ret = iolab_storage_mig_flush(m);
            if (ret == 0) {
                m->state = IOLAB_STORAGE_MIG_COMPLETED;
            }
            break;
        case STO_EOS:
            return 0;
        default:
            return iolab_storage_mig_fail(m, "unknown record tag 0x%" PRIx64,
                                          tag);
        }
        if (ret < 0) {
            return ret;
        }
    }
}

static int iolab_storage_mig_load_setup(QEMUFile *f, void *opaque, Error **errp)
{
    IolabStorageMig *m = opaque;

    m->header_seen = false;
    m->passes = 0;
    m->sent_bytes = 0;
    m->zero_bytes = 0;
    m->unflushed_bytes = 0;
    m->flushes = 0;
    return 0;
}

static int iolab_storage_mig_load_cleanup(void *opaque)
{
    IolabStorageMig *m = opaque;

    /* A stream that ended without its last record did not complete. */
    if (m->state == IOLAB_STORAGE_MIG_RECEIVING) {
        m->state = IOLAB_STORAGE_MIG_FAILED;
    }
    return 0;
}

static const SaveVMHandlers iolab_storage_mig_handlers = {
    .save_setup = iolab_storage_mig_save_setup,
    .save_cleanup = iolab_storage_mig_save_cleanup,
    .save_live_complete_precopy = iolab_storage_mig_save_complete,
    .is_active_iterate = iolab_storage_mig_is_active_iterate,
    .save_live_iterate = iolab_storage_mig_save_iterate,
    .state_pending_estimate = iolab_storage_mig_state_pending,
    .state_pending_exact = iolab_storage_mig_state_pending,
    .load_setup = iolab_storage_mig_load_setup,
    .load_state = iolab_storage_mig_load_state,
    .load_cleanup = iolab_storage_mig_load_cleanup,
};

/* ------------------------------------------------------------------ */
/* Device side                                                         */

IolabStorageMig *iolab_storage_mig_register(const char *idstr,
                                            BlockBackend *blk,
                                            uint32_t block_size,
                                            uint64_t nblocks,
                                            const IolabStorageMigOps *ops,
                                            void *opaque)
{
    IolabStorageMig *m = g_new0(IolabStorageMig, 1);

    assert(is_power_of_2(block_size) && block_size <= STORAGE_MIG_CHUNK);
    m->idstr = g_strdup(idstr);
    m->blk = blk;
    m->block_size = block_size;
    m->nblocks = nblocks;
    m->ops = ops;
    m->opaque = opaque;
    qemu_mutex_init(&m->lock);
    register_savevm_live(m->idstr, 0, STORAGE_MIG_VERSION,
                         &iolab_storage_mig_handlers, m);
    return m;
}

void iolab_storage_mig_set_full_copy(IolabStorageMig *m, bool full_copy)
{
    m->full_copy = full_copy;
}

void iolab_storage_mig_unregister(IolabStorageMig *m)
{
    if (!m) {
        return;
    }
    unregister_savevm(NULL, m->idstr, m);
    iolab_change_log_free(m->log);
    qemu_vfree(m->buf);
    qemu_mutex_destroy(&m->lock);
    g_free(m->idstr);
    g_free(m);
}

void iolab_storage_mig_written(IolabStorageMig *m, uint64_t block,
                               uint64_t count)
{
    if (!m || count == 0) {
        return;
    }
    qemu_mutex_lock(&m->lock);
    if (m->log && (m->state == IOLAB_STORAGE_MIG_BULK ||
                   m->state == IOLAB_STORAGE_MIG_DRAINING)) {
        uint64_t end = block + count;

        m->changed_bytes += count * m->block_size;
        m->window_changed += count * m->block_size;
        /*
         * Blocks the walk has not reached yet, it will send as they are:
         * holes written now are more for it to send than counted at
         * setup.  Counted as if all were holes (pending is capped by
         * what lies past the cursor), so the switch-over is never early.
         */
        if (m->state == IOLAB_STORAGE_MIG_BULK && end > m->walk.cursor) {
            uint64_t ahead = MAX(block, m->walk.cursor);

            m->bulk_bytes += (end - ahead) * m->block_size;
            end = ahead;
        }
        if (end > block) {
            iolab_change_log_mark(m->log, block, end - block);
        }
    }
    qemu_mutex_unlock(&m->lock);
}

void iolab_storage_mig_get_info(IolabStorageMig *m, IolabStorageMigInfo *info)
{
    IolabChangeLogStats st;

    qemu_mutex_lock(&m->lock);
    *info = (IolabStorageMigInfo) {
        .state = m->state,
        .passes = m->passes,
        .allocated_bytes = m->allocated_bytes,
        .sent_bytes = m->sent_bytes,
        .zero_bytes = m->zero_bytes,
        .changed_bytes = m->changed_bytes,
        .pending_bytes = iolab_storage_mig_is_active_iterate(m) ?
                         iolab_storage_mig_pending_locked(m) : 0,
        .log_overflows = m->log_overflows,
        .throttle_bps = m->throttle_bps,
        .throttle_iops = m->throttle_iops,
        .flushes = m->flushes,
    };
    if (m->log) {
        iolab_change_log_get_stats(m->log, &st);
        info->log_overflows = st.overflows;
    }
    qemu_mutex_unlock(&m->lock);
}
