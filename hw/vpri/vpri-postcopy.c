/*
 * vpri-host and QEMU's postcopy migration: guest RAM taken in turns, and
 * device faults on pages not received yet (vpri-postcopy.h says how).
 *
 * Threads: the notifications come in the main loop (probe, advise,
 * listen) and in QEMU's listen thread (end, pause, resume); the
 * PostCopyFD handler runs in QEMU's fault thread, the waker in QEMU's
 * listen and preempt threads; vpri_postcopy_serve() in the host's handler threads.  Locks:
 * wake_lock (one waker at a time: the scratch array), then the host lock
 * inside vpri-host.c's calls, then the postcopy-pages core's own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "system/runstate.h"
#include "hw/boards.h"
#include "hw/qdev-core.h"
#include "exec/cpu-common.h"
#include "migration/misc.h"
#include "migration/postcopy-ram.h"
#include "migration/ram.h"
#include "migration/vmstate.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "vpri-host-internal.h"
#include "trace.h"

#include <linux/userfaultfd.h>

/* Retry taking guest RAM back while QEMU's userfaultfd still holds it. */
#define VPRI_PC_TAKE_RETRY_MS 10
/*
 * The request pipe: room for 32768 requests if Linux grants it (a
 * recovery asks again for every page devices wait on at once), else its
 * default 64 KiB.
 */
#define VPRI_PC_PIPE_BYTES (1 << 20)
/* Pages asked for again after a recovery, per batch */
#define VPRI_PC_RESUME_BATCH 256

struct VpriPostcopy {
    VpriHost *host;
    const VpriPostcopyHooks *hooks;     /* the host, for what it owns */
    NotifierWithReturn notifier;

    /* From advise to end (destination) */
    bool advised;
    int pipe[2];                /* requests: us -> QEMU's fault thread */
    struct PostCopyFD pcfd;
    RAMBlock *rb;               /* guest RAM: the residency layer's */
    uint8_t *ram_host;

    /* From listen on; kept after the end for the statistics */
    PostcopyPages *pages;
    uint64_t received_before;   /* by precopy, when listening started */
    bool active;                /* listen to end: faults may wait */
    QemuMutex wake_lock;
    PcpWaiter *scratch;         /* under wake_lock */

    QEMUTimer *take_timer;      /* taking guest RAM back after the end */
    VMChangeStateEntry *vm_state;

    /*
     * The source's pinned pages, the "vpri-host/pins" section: filled
     * before it is saved (source), checked after it is loaded
     * (destination).  Under the BQL.
     */
    uint32_t pinned_count;
    uint64_t *pinned;           /* VPRI_PC_PINNED_MAX of them */
};

static const char *vpri_pc_owner(VpriPostcopy *pc)
{
    const char *id = object_get_canonical_path_component(OBJECT(pc->host));

    return id ? id : "(unnamed)";
}

/*
 * A device this does not handle yet, or NULL.  Under the BQL (devices
 * attach and detach under it).
 */
static const char *vpri_pc_unsupported(VpriPostcopy *pc, const char **dev)
{
    VpriHost *h = pc->host;

    for (unsigned id = 0; id < VPRI_HOST_MAX_DEVICES; id++) {
        VpriHostDevice *d = &h->devs[id];
        VpriHostClientClass *client;
        const char *why;

        if (!d->dev) {
            continue;
        }
        *dev = d->dev->id ? d->dev->id : object_get_typename(OBJECT(d->dev));
        if (d->xlat) {
            return "its DMA goes through a vIOMMU";
        }
        if (object_dynamic_cast(OBJECT(d->dev), TYPE_VPRI_VIRTIO_PCI)) {
            continue;       /* vpri-blk, vpri-nic */
        }
        /* Other families say what they take (vdpa-mgmt: blk instances) */
        client = (VpriHostClientClass *)
            object_class_dynamic_cast(object_get_class(OBJECT(d->dev)),
                                      TYPE_VPRI_HOST_CLIENT);
        if (!client || !client->postcopy_blocker) {
            return "it does not take postcopy faults";
        }
        why = client->postcopy_blocker(d->dev);
        if (why) {
            return why;
        }
    }
    return NULL;
}

static void vpri_pc_unmanaged(VpriPostcopy *pc, Error **errp)
{
    const char *why = vpri_residency_error(pc->host->res);

    error_setg(errp, "vpri-host '%s' does not support postcopy yet "
               "without guest RAM it manages%s%s", vpri_pc_owner(pc),
               why ? ": " : "", why ? why : "");
}

static bool vpri_pc_probe(VpriPostcopy *pc, Error **errp)
{
    const char *dev = NULL;
    const char *why = vpri_pc_unsupported(pc, &dev);

    if (why) {
        error_setg(errp, "vpri-host '%s' does not support postcopy with "
                   "device '%s' yet: %s (docs/vpri-host.rst, Migration)",
                   vpri_pc_owner(pc), dev, why);
        return false;
    }
    /* Before the machine is done (a -global capability), advice checks */
    if (phase_check(PHASE_MACHINE_READY) &&
        !vpri_residency_ready(pc->host->res)) {
        vpri_pc_unmanaged(pc, errp);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Device faults (handler threads) and requests (QEMU's fault thread) */

/*
 * Hand a request for RAM page @page to QEMU's fault thread, as the
 * synthetic userfaultfd message it reads off the pipe.  A full pipe
 * drops it: the source sends every page anyway, and a recovery asks
 * again for every page still waited on (vpri_pc_resume).
 */
static void vpri_pc_send_request(VpriPostcopy *pc, uint64_t page)
{
    struct uffd_msg msg = {
        .event = UFFD_EVENT_PAGEFAULT,
        .arg.pagefault.address =
            (uint64_t)(uintptr_t)(pc->ram_host + (page << PAB_PAGE_SHIFT)),
    };

    if (write(pc->pipe[1], &msg, sizeof(msg)) != sizeof(msg)) {
        warn_report_once("vpri-host '%s': a postcopy page request "
                         "was dropped: %s", vpri_pc_owner(pc),
                         strerror(errno));
    }
}

VpriPostcopyServe vpri_postcopy_serve(VpriPostcopy *pc, uint32_t dev_id,
                                      const FaultRecord *rec)
{
    VpriHost *h;
    uint64_t page;
    PcpWaiter w;

    if (!pc || !qatomic_load_acquire(&pc->active)) {
        return VPRI_PC_NORMAL;
    }
    h = pc->host;
    if (!vpri_residency_gpa_to_page(h->res, rec->page_addr, &page)) {
        return VPRI_PC_NORMAL;  /* not guest RAM: nothing to receive */
    }
    w = (PcpWaiter) {
        .dev = dev_id, .queue = rec->queue, .cookie = rec->seq,
        .since_ns = get_clock_realtime(),
    };
    switch (vpri_pcp_fault(pc->pages, page, &w)) {
    case VPRI_PCP_REQUEST:
        trace_vpri_postcopy_request(dev_id, rec->queue, page);
        vpri_pc_send_request(pc, page);
        return VPRI_PC_WAIT;
    case VPRI_PCP_WAIT:
        trace_vpri_postcopy_wait(dev_id, rec->queue, page);
        return VPRI_PC_WAIT;
    case VPRI_PCP_FULL:
    case VPRI_PCP_FAILED:
        trace_vpri_postcopy_fail(dev_id, rec->queue, page);
        return VPRI_PC_FAIL;
    default:
        return VPRI_PC_NORMAL;  /* received: resolve as usual */
    }
}

/*
 * Ask for RAM page @page if it is neither received nor asked for yet;
 * false once the run's prefetch limit is reached.
 */
static bool vpri_pc_prefetch_page(VpriPostcopy *pc, uint32_t dev_id,
                                  uint64_t page, uint64_t *requested)
{
    switch (vpri_pcp_prefetch(pc->pages, page, VPRI_PC_PREFETCH_MAX)) {
    case VPRI_PCP_PREFETCH_REQUEST:
        trace_vpri_postcopy_prefetch(dev_id, page);
        vpri_pc_send_request(pc, page);
        (*requested)++;
        return true;
    case VPRI_PCP_PREFETCH_LIMIT:
        trace_vpri_postcopy_prefetch_limit(vpri_pc_owner(pc),
                                           VPRI_PC_PREFETCH_MAX);
        return false;
    default:
        return true;
    }
}

static bool vpri_pc_prefetching(VpriPostcopy *pc)
{
    return pc && qatomic_load_acquire(&pc->active) &&
           qatomic_read(&pc->host->postcopy_prefetch);
}

void vpri_postcopy_prefetch(VpriPostcopy *pc, uint32_t dev_id, uint64_t gpa,
                            uint64_t len)
{
    VpriHost *h;
    uint64_t first, last, npages, requested = 0;

    if (!len || !vpri_pc_prefetching(pc)) {
        return;
    }
    h = pc->host;
    first = gpa >> PAB_PAGE_SHIFT;
    /* Pages the range touches; a range that wraps ends at 2^64 */
    last = gpa + len - 1 < gpa ? UINT64_MAX : gpa + len - 1;
    npages = (last >> PAB_PAGE_SHIFT) - first + 1;
    for (uint64_t i = 0; i < MIN(npages, VPRI_PC_PREFETCH_MAX); i++) {
        uint64_t page;

        if (!vpri_residency_gpa_to_page(h->res, (first + i) << PAB_PAGE_SHIFT,
                                        &page)) {
            continue;   /* not guest RAM: nothing to receive */
        }
        if (!vpri_pc_prefetch_page(pc, dev_id, page, &requested)) {
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* The source's pinned pages, carried for the prefetch                */

/* Guest RAM pages here (RAM page numbers are below it), 0 without RAM */
static uint64_t vpri_pc_ram_pages(void)
{
    MemoryRegion *ram = current_machine ? current_machine->ram : NULL;

    return ram ? qemu_ram_get_used_length(ram->ram_block) >> PAB_PAGE_SHIFT
               : 0;
}

/*
 * Only while the postcopy-ram capability and the host's postcopy-prefetch
 * are on, and something is pinned: a precopy-only stream, and so a
 * destination of an older iolab, does not see the section.  (A migration
 * with the capability on that completes in precopy carries it too; the
 * destination, which must have the capability on as well, checks it and
 * does not prefetch.)
 */
static bool vpri_pc_pins_needed(void *opaque)
{
    VpriPostcopy *pc = opaque;

    if (!migrate_postcopy_ram() ||
        !qatomic_read(&pc->host->postcopy_prefetch)) {
        return false;
    }
    /*
     * The guest is stopped: what the policy pins now is what the
     * section sends (pinned_count and pinned[] are filled here).  Nothing pinned, no section: a host with no device DMA
     * (one that only evicts, say) migrates to a destination without a
     * vpri-host, as it did before the section existed.
     */
    pc->pinned_count = pc->hooks->pinned_pages(pc->host, pc->pinned,
                                               VPRI_PC_PINNED_MAX);
    return pc->pinned_count > 0;
}

/* Before the pages are loaded into pc->pinned: the count fits it. */
static bool vpri_pc_pins_count_ok(void *opaque, int version_id)
{
    VpriPostcopy *pc = opaque;

    if (pc->pinned_count > VPRI_PC_PINNED_MAX) {
        error_report("vpri-host '%s': migration stream: pinned_count %u is "
                     "above %u", vpri_pc_owner(pc), pc->pinned_count,
                     VPRI_PC_PINNED_MAX);
        pc->pinned_count = 0;
        return false;
    }
    return true;
}

/*
 * Destination, in the postcopy package: LISTEN came before it, so while
 * postcopy runs here the pages are asked for now, before the guest runs
 * and its devices name their rings.
 */
static int vpri_pc_pins_post_load(void *opaque, int version_id)
{
    VpriPostcopy *pc = opaque;
    uint64_t ram_pages = vpri_pc_ram_pages(), requested = 0;

    for (uint32_t i = 0; i < pc->pinned_count; i++) {
        if (pc->pinned[i] >= ram_pages) {
            error_report("vpri-host '%s': migration stream: pinned[%u] is "
                         "page 0x%" PRIx64 ", beyond guest RAM (0x%" PRIx64
                         " pages)", vpri_pc_owner(pc), i, pc->pinned[i],
                         ram_pages);
            pc->pinned_count = 0;
            return -EINVAL;
        }
    }
    if (vpri_pc_prefetching(pc)) {
        for (uint32_t i = 0; i < pc->pinned_count; i++) {
            if (!vpri_pc_prefetch_page(pc, UINT32_MAX, pc->pinned[i],
                                       &requested)) {
                break;
            }
        }
    }
    trace_vpri_postcopy_pins_loaded(vpri_pc_owner(pc), pc->pinned_count,
                                    requested);
    return 0;
}

static const VMStateDescription vpri_pc_pins_vmstate = {
    .name = "vpri-host/pins",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vpri_pc_pins_needed,
    .post_load = vpri_pc_pins_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(pinned_count, VpriPostcopy),
        VMSTATE_VALIDATE("pinned_count within VPRI_PC_PINNED_MAX",
                         vpri_pc_pins_count_ok),
        VMSTATE_VARRAY_UINT32(pinned, VpriPostcopy, pinned_count, 0,
                              vmstate_info_uint64, uint64_t),
        VMSTATE_END_OF_LIST()
    },
};

/* QEMU's fault thread read one of our requests off the pipe. */
static int vpri_pc_request(struct PostCopyFD *pcfd, void *ufd)
{
    VpriPostcopy *pc = pcfd->data;
    const struct uffd_msg *msg = ufd;
    uint64_t addr = msg->arg.pagefault.address;
    ram_addr_t offset = addr - (uint64_t)(uintptr_t)pc->ram_host;
    uint64_t host_page;

    /*
     * Placed since we asked: postcopy_request_shared_page() would wake
     * our "userfaultfd", which is a pipe; the waker has run or will.
     */
    if (ramblock_recv_bitmap_test_byte_offset(pc->rb, offset)) {
        return 0;
    }
    /*
     * Where QEMU's own clock for a vCPU's page request starts (its fault
     * thread read the fault): paired with mark_postcopy_blocktime_end of
     * the host page, this times the device's request over the vCPU's
     * span (scripts/migrate-experiment, dst_dev_request_* columns).
     */
    host_page = (uint64_t)(uintptr_t)pc->ram_host +
                ROUND_DOWN(offset, qemu_ram_pagesize(pc->rb));
    trace_vpri_postcopy_fault_thread_request(offset >> PAB_PAGE_SHIFT,
                                             host_page);
    return postcopy_request_shared_page(pcfd, pc->rb, addr, offset);
}

/* ------------------------------------------------------------------ */
/* Arrivals (QEMU's listen and preempt threads)                       */

static void vpri_pc_arrived(VpriPostcopy *pc, uint64_t page)
{
    VpriHost *h = pc->host;
    uint64_t gpa;
    size_t n;

    /*
     * Entries first: the queues resumed next must find the page present,
     * and so must a device that sees the page counted as received (a
     * fault in between waits on the page and is handed back just below)
     */
    if (vpri_residency_page_to_gpa(h->res, page, &gpa)) {
        pc->hooks->set_gpa_entries(h, gpa, true);
    }
    n = vpri_pcp_arrived(pc->pages, page, get_clock_realtime(), pc->scratch);
    if (n) {
        trace_vpri_postcopy_arrival(page, n);
    }
    for (size_t i = 0; i < n; i++) {
        const PcpWaiter *w = &pc->scratch[i];

        pc->hooks->complete_later(h, w->dev, w->queue, w->cookie,
                                  page << PAB_PAGE_SHIFT,
                                  FAULT_STATUS_RESOLVED);
    }
}

static int vpri_pc_waker(struct PostCopyFD *pcfd, RAMBlock *rb,
                         uint64_t offset)
{
    VpriPostcopy *pc = pcfd->data;
    uint64_t len = qemu_ram_pagesize(rb);
    uint32_t delay_ms = qatomic_read(&pc->host->postcopy_waker_delay_ms);

    if (rb != pc->rb || !qatomic_load_acquire(&pc->active)) {
        return 0;
    }
    if (delay_ms) {
        /* x-postcopy-waker-delay-ms: the page is placed, entries not yet */
        g_usleep(delay_ms * 1000ULL);
    }
    qemu_mutex_lock(&pc->wake_lock);
    for (uint64_t off = offset; off < offset + len; off += 1 << PAB_PAGE_SHIFT) {
        vpri_pc_arrived(pc, off >> PAB_PAGE_SHIFT);
    }
    qemu_mutex_unlock(&pc->wake_lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* QEMU's postcopy notifications                                      */

static int vpri_pc_advise(VpriPostcopy *pc, Error **errp)
{
    VpriHost *h = pc->host;
    MemoryRegion *ram = current_machine ? current_machine->ram : NULL;

    if (!vpri_pc_probe(pc, errp)) {
        return -ENOTSUP;
    }
    if (!ram || !vpri_residency_ready(h->res)) {
        vpri_pc_unmanaged(pc, errp);
        return -ENOTSUP;
    }
    if (!vpri_residency_release_ram(h->res, errp)) {
        return -EIO;
    }
    if (!g_unix_open_pipe(pc->pipe, FD_CLOEXEC, NULL) ||
        !g_unix_set_fd_nonblocking(pc->pipe[0], true, NULL) ||
        !g_unix_set_fd_nonblocking(pc->pipe[1], true, NULL)) {
        error_setg(errp, "vpri-host '%s': cannot make a pipe for postcopy",
                   vpri_pc_owner(pc));
        vpri_residency_take_ram(h->res);
        return -EIO;
    }
#ifdef F_SETPIPE_SZ
    /* Best effort: the default size only drops more requests when full */
    fcntl(pc->pipe[1], F_SETPIPE_SZ, VPRI_PC_PIPE_BYTES);
#endif
    pc->rb = ram->ram_block;
    pc->ram_host = memory_region_get_ram_ptr(ram);
    pc->pcfd = (struct PostCopyFD) {
        .fd = pc->pipe[0],
        .data = pc,
        .handler = vpri_pc_request,
        .waker = vpri_pc_waker,
        .idstr = "vpri-host",
    };
    postcopy_register_shared_ufd(&pc->pcfd);
    pc->advised = true;
    trace_vpri_postcopy_state(vpri_pc_owner(pc), "advise");
    return 0;
}

/* The guest is stopped on the source; ours has not run yet. */
static int vpri_pc_listen(VpriPostcopy *pc, Error **errp)
{
    VpriHost *h = pc->host;
    uint64_t npages = qemu_ram_get_used_length(pc->rb) >> PAB_PAGE_SHIFT;
    uint32_t max_waiters = MIN((uint64_t)VPRI_HOST_MAX_DEVICES *
                               h->ring_size, VPRI_PCP_MAX_WAITERS);
    PcpStats st;

    if (!pc->advised) {
        return 0;
    }
    vpri_pcp_free(pc->pages);
    g_free(pc->scratch);
    pc->pages = vpri_pcp_new(npages, max_waiters);
    pc->scratch = g_new(PcpWaiter, max_waiters);
    if (!pc->pages) {
        error_setg(errp, "vpri-host '%s': no memory for postcopy",
                   vpri_pc_owner(pc));
        return -ENOMEM;
    }
    for (uint64_t page = 0; page < npages; page++) {
        uint64_t gpa;

        if (ramblock_recv_bitmap_test_byte_offset(pc->rb,
                                                  page << PAB_PAGE_SHIFT)) {
            vpri_pcp_arrived(pc->pages, page, 0, pc->scratch);
        } else if (vpri_residency_page_to_gpa(h->res, page, &gpa)) {
            pc->hooks->set_gpa_entries(h, gpa, false);
        }
    }
    pc->hooks->fence_devices(h);
    vpri_pcp_get_stats(pc->pages, &st);
    pc->received_before = st.received;
    qatomic_store_release(&pc->active, true);
    trace_vpri_postcopy_state(vpri_pc_owner(pc), "listen");
    return 0;
}

static void vpri_pc_take_ram(void *opaque)
{
    VpriPostcopy *pc = opaque;
    int ret = vpri_residency_take_ram(pc->host->res);

    if (ret == -EBUSY) {
        /* QEMU lets go of guest RAM just after telling us it ends */
        timer_mod(pc->take_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  VPRI_PC_TAKE_RETRY_MS);
    } else if (ret < 0) {
        warn_report("vpri-host '%s': eviction stays off after postcopy: "
                    "cannot register guest RAM again: %s",
                    vpri_pc_owner(pc), strerror(-ret));
    } else {
        trace_vpri_postcopy_state(vpri_pc_owner(pc), "ram taken back");
    }
}

/* Give up the PostCopyFD, and take guest RAM back. */
static void vpri_pc_hand_back(VpriPostcopy *pc)
{
    postcopy_unregister_shared_ufd(&pc->pcfd);
    close(pc->pipe[0]);
    close(pc->pipe[1]);
    pc->pipe[0] = pc->pipe[1] = -1;
    /* In the main loop, once QEMU's userfaultfd has let go */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), vpri_pc_take_ram, pc);
}

/* QEMU's listen thread: every page has arrived, or postcopy failed. */
static int vpri_pc_end(VpriPostcopy *pc)
{
    VpriHost *h = pc->host;

    if (!pc->advised) {
        return 0;
    }
    pc->advised = false;
    if (pc->pages) {
        size_t n;

        qatomic_store_release(&pc->active, false);
        /* A record still waiting waits for a page that will not come */
        qemu_mutex_lock(&pc->wake_lock);
        n = vpri_pcp_fail(pc->pages, pc->scratch);
        for (size_t i = 0; i < n; i++) {
            const PcpWaiter *w = &pc->scratch[i];

            pc->hooks->complete_later(h, w->dev, w->queue, w->cookie, 0,
                                      FAULT_STATUS_FAILED);
        }
        qemu_mutex_unlock(&pc->wake_lock);
        if (n) {
            error_report("vpri-host '%s': postcopy ended with %zu device "
                         "faults on pages never received: failed",
                         vpri_pc_owner(pc), n);
        }
    }
    vpri_pc_hand_back(pc);
    trace_vpri_postcopy_state(vpri_pc_owner(pc), "end");
    return 0;
}

/*
 * QEMU's listen thread (patches/0012): the connection to the source
 * broke.  Queues waiting for pages keep waiting, as vCPUs do; new device
 * faults wait too, and their requests are kept for the recovery instead
 * of piling up in the pipe, which QEMU's fault thread does not read
 * while paused.
 */
static int vpri_pc_pause(VpriPostcopy *pc)
{
    if (!qatomic_load_acquire(&pc->active)) {
        return 0;
    }
    vpri_pcp_pause(pc->pages);
    trace_vpri_postcopy_state(vpri_pc_owner(pc), "paused");
    return 0;
}

/*
 * QEMU's listen thread (patches/0012): migrate-recover reconnected, and
 * QEMU asked again for the pages it had requested.  Ask again for every
 * page a device waits on: those faulted on while paused were never asked
 * for, and one asked for just before the break may be lost with it.
 * QEMU's fault thread sends them once released, right after this; the
 * source skips a page it has sent since.
 */
static int vpri_pc_resume(VpriPostcopy *pc)
{
    uint64_t pages[VPRI_PC_RESUME_BATCH];
    uint64_t cursor = 0, total = 0;
    size_t n;

    if (!qatomic_load_acquire(&pc->active)) {
        return 0;
    }
    /* The first call ends the pause: faults from now on ask at once */
    while ((n = vpri_pcp_resume(pc->pages, &cursor, pages,
                                VPRI_PC_RESUME_BATCH))) {
        for (size_t i = 0; i < n; i++) {
            vpri_pc_send_request(pc, pages[i]);
        }
        total += n;
    }
    trace_vpri_postcopy_resume(vpri_pc_owner(pc), total);
    return 0;
}

/*
 * A migration advised of postcopy may complete in precopy: QEMU then
 * never says "end" (only a listening destination does), but the guest
 * starts running here.
 */
static void vpri_pc_vm_state(void *opaque, bool running, RunState state)
{
    VpriPostcopy *pc = opaque;

    if (running && pc->advised && !qatomic_read(&pc->active)) {
        pc->advised = false;
        vpri_pc_hand_back(pc);
        trace_vpri_postcopy_state(vpri_pc_owner(pc), "done in precopy");
    }
}

static int vpri_pc_notify(NotifierWithReturn *n, void *data, Error **errp)
{
    VpriPostcopy *pc = container_of(n, VpriPostcopy, notifier);
    const struct PostcopyNotifyData *pnd = data;

    switch (pnd->reason) {
    case POSTCOPY_NOTIFY_PROBE:
    case POSTCOPY_NOTIFY_OUTBOUND_PROBE:
        return vpri_pc_probe(pc, errp) ? 0 : -ENOTSUP;
    case POSTCOPY_NOTIFY_INBOUND_ADVISE:
        return vpri_pc_advise(pc, errp);
    case POSTCOPY_NOTIFY_INBOUND_LISTEN:
        return vpri_pc_listen(pc, errp);
    case POSTCOPY_NOTIFY_INBOUND_END:
        return vpri_pc_end(pc);
    case POSTCOPY_NOTIFY_INBOUND_PAUSE:
        return vpri_pc_pause(pc);
    case POSTCOPY_NOTIFY_INBOUND_RESUME:
        return vpri_pc_resume(pc);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ */

bool vpri_postcopy_placed(VpriPostcopy *pc, uint64_t gpa)
{
    uint64_t page;
    unsigned char resident = 0;

    if (!pc || !qatomic_load_acquire(&pc->active) ||
        !vpri_residency_gpa_to_page(pc->host->res, gpa, &page)) {
        return false;
    }
    if (ramblock_recv_bitmap_test_byte_offset(pc->rb,
                                              page << PAB_PAGE_SHIFT)) {
        return true;
    }
    /*
     * QEMU sets its received bit only after UFFDIO_COPY has returned, and
     * the copy has already woken the threads that waited on the page: a
     * driver's write can land, and the device look, in between.  The page
     * tables know first.  A page not placed yet is not mapped (QEMU
     * discarded guest RAM at advise, and a thread that touches a missing
     * page waits in the fault until it is placed); one placed is mapped
     * in full (the copy maps it once it is filled).
     */
    if (mincore(pc->ram_host + (page << PAB_PAGE_SHIFT), 1 << PAB_PAGE_SHIFT,
                &resident) < 0) {
        return false;
    }
    return resident & 1;
}

bool vpri_postcopy_stats(VpriPostcopy *pc, PcpStats *st, uint64_t *received,
                         const char **state, const LatencyHistogram **lat)
{
    /* Made and replaced at listen, in the main loop: the BQL holds it */
    if (!pc || !pc->pages) {
        return false;
    }
    vpri_pcp_get_stats(pc->pages, st);
    *received = st->received - pc->received_before;
    if (!qatomic_load_acquire(&pc->active)) {
        *state = "done";
    } else if (vpri_pcp_run_state(pc->pages) == VPRI_PCP_PAUSED) {
        *state = "paused";
    } else {
        *state = "running";
    }
    *lat = vpri_pcp_latency(pc->pages);
    return true;
}

VpriPostcopy *vpri_postcopy_new(VpriHost *h, const VpriPostcopyHooks *hooks,
                                Error **errp)
{
    VpriPostcopy *pc;

    /*
     * Objects of the command line come before the migration object: QEMU
     * checks a capability of -global once it exists, asking the probes.
     * At run time a new host would meet a migration half-way.
     */
    if (phase_check(PHASE_MACHINE_READY) && migrate_postcopy_ram()) {
        error_setg(errp, "vpri-host '%s' cannot be created while the "
                   "postcopy-ram capability is on",
                   object_get_canonical_path_component(OBJECT(h)));
        error_append_hint(errp, "Clear the capability first.\n");
        return NULL;
    }
    pc = g_new0(VpriPostcopy, 1);

    pc->host = h;
    pc->hooks = hooks;
    pc->pipe[0] = pc->pipe[1] = -1;
    pc->pinned = g_new0(uint64_t, VPRI_PC_PINNED_MAX);
    qemu_mutex_init(&pc->wake_lock);
    pc->take_timer = timer_new_ms(QEMU_CLOCK_REALTIME, vpri_pc_take_ram, pc);
    pc->vm_state = qemu_add_vm_change_state_handler(vpri_pc_vm_state, pc);
    pc->notifier.notify = vpri_pc_notify;
    postcopy_add_notifier(&pc->notifier);
    /*
     * A section of its own (vpri-host is an -object, not a device):
     * hosts are matched by name and creation order, as the command line
     * creates them
     */
    vmstate_register(NULL, VMSTATE_INSTANCE_ID_ANY, &vpri_pc_pins_vmstate,
                     pc);
    return pc;
}

void vpri_postcopy_free(VpriPostcopy *pc)
{
    if (!pc) {
        return;
    }
    vmstate_unregister(NULL, &vpri_pc_pins_vmstate, pc);
    postcopy_remove_notifier(&pc->notifier);
    qemu_del_vm_change_state_handler(pc->vm_state);
    timer_free(pc->take_timer);
    qemu_mutex_destroy(&pc->wake_lock);
    vpri_pcp_free(pc->pages);
    g_free(pc->scratch);
    g_free(pc->pinned);
    g_free(pc);
}
