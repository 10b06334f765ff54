/*
 * Mutator scenarios for the VPRI devices: vpri-blk and vpri-nic.
 *
 * Both sources end with requests held on VPRI faults the host does not
 * answer (vpri-host's x-hold-faults), so that the stream carries popped
 * chains, pending kicks and the devices' own held state besides the
 * transport's rings, indices and vectors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "vpri-blk-harness.h"
#include "mig-mutator.h"

#define VPRI_RAM_MB         32
#define VPRI_PAGE           4096
#define VPRI_WAIT_US        (5 * G_USEC_PER_SEC)
/* How long a touch waits for the device to show anything */

#define VIRTIO_NET_MODERN   0x1041
#define NET_F_MAC           5
#define NET_F_STATUS        16
#define NET_HDR_LEN         12
#define NET_RXBUF_LEN       (NET_HDR_LEN + 1514)
#define NET_NRX             8

typedef struct VpriDrv {
    QGuestAllocator alloc;
    QPCIBus *bus;
    VVDev *d;
    uint16_t nq;
    uint64_t msi;
    int sock;               /* vpri-nic: our end of the netdev (r->slot) */
    uint64_t scratch;       /* a page the touch builds its requests in */
} VpriDrv;

/* ------------------------------------------------------------------ */
/* Shared                                                             */

static void vpri_qmp_ok(QTestState *qts, QDict *rsp, const char *what)
{
    if (!qdict_haskey(rsp, "return")) {
        g_error("%s failed on the source", what);
    }
    qobject_unref(rsp);
    (void)qts;
}

void mut_vpri_hold_faults(QTestState *qts)
{
    vpri_qmp_ok(qts, qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments': "
                               "{ 'path': '/objects/vh0', 'property': "
                               "'x-hold-faults', 'value': true } }"),
                "x-hold-faults");
}

static void vpri_pin(QTestState *qts, const char *cmd, uint64_t addr,
                     uint64_t size)
{
    if (size) {
        vpri_qmp_ok(qts, qtest_qmp(qts, "{ 'execute': %s, 'arguments': "
                                   "{ 'host': 'vh0', 'addr': %" PRIu64
                                   ", 'size': %" PRIu64 " } }", cmd, addr,
                                   size), cmd);
    }
}

static int vpri_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Evict exactly @pages (sorted here): pin the rest, reclaim, unpin. */
void mut_vpri_evict_only(QTestState *qts, uint64_t *pages, int n,
                         uint64_t ram_mb)
{
    uint64_t ram = ram_mb * MiB, start = 0;
    const char *cmds[2] = { "vpri-pin", "vpri-unpin" };

    qsort(pages, n, sizeof(*pages), vpri_cmp_u64);
    for (int pass = 0; pass < 2; pass++) {
        start = 0;
        for (int i = 0; i < n; i++) {
            uint64_t page = pages[i] & ~(uint64_t)(VPRI_PAGE - 1);

            if (page >= start) {
                vpri_pin(qts, cmds[pass], start, page - start);
                start = page + VPRI_PAGE;
            }
        }
        vpri_pin(qts, cmds[pass], start, ram - start);
        if (pass == 0) {
            vpri_qmp_ok(qts, qtest_qmp(qts, "{ 'execute': 'vpri-reclaim', "
                                       "'arguments': { 'host': 'vh0', "
                                       "'percent': 100 } }"), "reclaim");
        }
    }
}

/* Faults pending on all VPRI devices */
static uint64_t vpri_pending(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-vpri' }");
    QList *devs = qdict_get_qlist(qdict_get_qdict(rsp, "return"),
                                  "devices");
    QListEntry *e;
    uint64_t n = 0;

    QLIST_FOREACH_ENTRY(devs, e) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(e));

        n += qdict_get_int(qdict_get_qdict(dev, "faults"), "pending");
    }
    qobject_unref(rsp);
    return n;
}

void mut_vpri_wait_pending(QTestState *qts, uint64_t want)
{
    gint64 deadline = g_get_monotonic_time() + VPRI_WAIT_US;

    uint64_t n;

    while ((n = vpri_pending(qts)) < want) {
        if (g_get_monotonic_time() > deadline) {
            /* The stream is still valid, only less live: say so, go on */
            printf("mutator: warning: the source holds %" PRIu64 " of %"
                   PRIu64 " requests on faults\n", n, want);
            return;
        }
        g_usleep(1000);
    }
}

/* MSI-X: vector v writes 0x4000 + v to msi + 4 * v */
static void vpri_msix(VpriDrv *v, uint16_t nvec)
{
    vv_msix_enable(v->d);
    v->msi = guest_alloc(&v->alloc, VPRI_PAGE);
    qtest_memset(v->d->qts, v->msi, 0, VPRI_PAGE);
    for (uint16_t i = 0; i < nvec; i++) {
        vv_msix_set_entry(v->d, i, v->msi + 4 * i, 0x4000 + i);
    }
}

static VpriDrv *vpri_source_start(MutRun *r, uint16_t pci_device)
{
    VpriDrv *v = g_new0(VpriDrv, 1);
    g_autofree char *args = NULL;

    r->priv = v;
    args = r->sc->args(r);
    r->qts = qtest_init(args);
    v->d = vpri_attach(r->qts, &v->alloc, &v->bus, pci_device);
    v->scratch = guest_alloc(&v->alloc, 4 * VPRI_PAGE);
    return v;
}

static void vpri_attach_dst(MutRun *r, QTestState *dst)
{
    VpriDrv *v = r->priv;

    v->bus->qts = dst;
    v->d->qts = dst;
    v->sock = mut_net_sock(r);
}

/* Did any queue put something in its used ring since the source saved? */
typedef struct VpriWatch {
    VpriDrv *v;
    uint16_t used[16];
} VpriWatch;

static bool vpri_changed(void *opaque)
{
    VpriWatch *w = opaque;
    VpriDrv *v = w->v;

    if (vv_get_status(v->d) & (VV_S_NEEDS_RESET | VV_S_FAILED)) {
        return true;
    }
    for (uint16_t i = 0; i < v->nq && i < 16; i++) {
        if (v->d->queues[i].enabled &&
            vv_queue_used_idx(&v->d->queues[i]) != w->used[i]) {
            return true;
        }
    }
    return false;
}

static MutTouch vpri_verdict(MutRun *r, VpriWatch *w)
{
    VpriDrv *v = w->v;
    bool changed = mut_poll(v->d->qts, r->touch_us, vpri_changed, w);

    if (vv_get_status(v->d) & (VV_S_NEEDS_RESET | VV_S_FAILED)) {
        return TOUCH_ERROR_STATE;
    }
    return changed ? TOUCH_ANSWERED : TOUCH_SILENT;
}

/* ------------------------------------------------------------------ */
/* vpri-blk                                                           */

#define BLK_FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << BLK_F_FLUSH) | (1ULL << BLK_F_MQ) | \
     (1ULL << VV_F_INDIRECT_DESC) | (1ULL << VV_F_VERSION_1) | \
     (1ULL << VV_F_ACCESS_PLATFORM))

static char *vpri_blk_args(MutRun *r)
{
    return g_strdup_printf("-M q35 -m %d -nodefaults "
                           "-object vpri-host,id=vh0 "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-device vpri-blk,drive=d0,host=vh0,id=vblk0,"
                           "num-queues=2", VPRI_RAM_MB, r->img[0]);
}

/*
 * A request at @mem (header, @len bytes of data on the next page(s),
 * status byte at +16 of the header page); published, not kicked.
 */
static void vpri_blk_publish(VpriDrv *v, VVQueue *q, uint64_t mem,
                             uint64_t data, uint32_t type, uint64_t sector,
                             uint32_t len)
{
    uint8_t hdr[16] = { 0 };
    VVBuf bufs[3] = {
        { mem, 16, false },
        { data, len, type != BLK_T_OUT },
        { mem + 16, 1, true },
    };

    stl_le_p(hdr, type);
    stq_le_p(hdr + 8, sector);
    qtest_memwrite(v->d->qts, mem, hdr, sizeof(hdr));
    qtest_writeb(v->d->qts, mem + 16, 0xff);
    vv_queue_publish(q, vv_queue_add_chain(q, bufs, 3, false));
}

static void vpri_blk_io(VpriDrv *v, VVQueue *q, uint32_t type,
                        uint64_t sector)
{
    uint64_t mem = guest_alloc(&v->alloc, 2 * VPRI_PAGE);
    uint32_t id, len;

    vpri_blk_publish(v, q, mem, mem + VPRI_PAGE, type, sector, 4096);
    vv_queue_kick(q);
    g_assert(vv_queue_wait_used(q, &id, &len, VPRI_WAIT_US));
    g_assert_cmpint(qtest_readb(v->d->qts, mem + 16), ==, BLK_S_OK);
}

/*
 * Two queues that have done I/O; on queue 0 a read held on a fault of
 * its data page and a write published behind it.
 */
static void vpri_blk_source(MutRun *r)
{
    VpriDrv *v = vpri_source_start(r, VIRTIO_BLK_MODERN);
    uint64_t held, page;

    v->nq = 2;
    vpri_msix(v, v->nq + 1);
    vv_init(v->d, BLK_FEATURES, v->nq, 0);
    vpri_blk_io(v, &v->d->queues[0], BLK_T_OUT, 8);
    vpri_blk_io(v, &v->d->queues[1], BLK_T_OUT, 16);
    vpri_blk_io(v, &v->d->queues[1], BLK_T_IN, 8);

    held = guest_alloc(&v->alloc, 3 * VPRI_PAGE);
    qtest_memset(r->qts, held + VPRI_PAGE, 0xaa, VPRI_PAGE);
    vpri_blk_publish(v, &v->d->queues[0], held, held + VPRI_PAGE,
                     BLK_T_IN, 8, 4096);
    vpri_blk_publish(v, &v->d->queues[0], held + 2 * VPRI_PAGE,
                     held + 2 * VPRI_PAGE + 512, BLK_T_OUT, 24, 512);
    page = held + VPRI_PAGE;
    mut_vpri_evict_only(r->qts, &page, 1, VPRI_RAM_MB);
    mut_vpri_hold_faults(r->qts);
    vv_queue_kick(&v->d->queues[0]);
    mut_vpri_wait_pending(r->qts, 1);
}

/*
 * A read on every enabled queue that has room, and the config space;
 * the held requests may complete by themselves too.
 */
static MutTouch vpri_blk_touch(MutRun *r)
{
    VpriDrv *v = r->priv;
    VpriWatch w = { .v = v };

    for (uint16_t i = 0; i < v->nq; i++) {
        w.used[i] = v->d->queues[i].last_used;
    }
    vv_config_readq(v->d, CFG_CAPACITY);
    for (uint16_t i = 0; i < v->nq; i++) {
        VVQueue *q = &v->d->queues[i];
        uint64_t mem = v->scratch + 2 * VPRI_PAGE * (i & 1);

        if (q->enabled && q->num_free >= 3) {
            vpri_blk_publish(v, q, mem, mem + VPRI_PAGE, BLK_T_IN, i, 512);
            vv_queue_kick(q);
        }
    }
    return vpri_verdict(r, &w);
}

static const char *const vpri_blk_sections[] = { "/vpri-blk", NULL };

const MutScenario mut_vpri_blk = {
    .name = "vpri-blk",
    .qom_type = "vpri-blk",
    .sections = vpri_blk_sections,
    .args = vpri_blk_args,
    .source = vpri_blk_source,
    .attach = vpri_attach_dst,
    .touch = vpri_blk_touch,
};

/* ------------------------------------------------------------------ */
/* vpri-nic                                                           */

/*
 * The netdev is one end of a socketpair made here; the other end is the
 * driver's.  The source and every destination QEMU started get their own
 * pair (in fork mode, a template's children share the template's).
 */
static char *vpri_nic_args(MutRun *r)
{
    VpriDrv *v = r->priv;
    int peer = mut_net_pair(r);

    v->sock = mut_net_sock(r);
    /* QEMU inherits @peer */
    return g_strdup_printf("-M q35 -m %d -nodefaults "
                           "-object vpri-host,id=vh0 "
                           "-netdev socket,fd=%d,id=n0 "
                           "-device vpri-nic,netdev=n0,host=vh0,id=nic0,"
                           "mac=52:54:00:12:34:56", VPRI_RAM_MB, peer);
}

static void vpri_nic_send(VpriDrv *v, uint32_t len, uint8_t seq)
{
    uint8_t f[4 + 1514];

    len = MIN(len, 1514);
    stl_be_p(f, len);
    memset(f + 4, 0xff, 6);
    memcpy(f + 10, "\x02\x00\x00\x00\x00\x01", 6);
    f[16] = 0x88;
    f[17] = 0xb5;
    memset(f + 18, seq, len - 14);
    if (write(v->sock, f, 4 + len) != 4 + len) {
        /* A destination that went away: the verdict will say so */
    }
}

static uint64_t vpri_nic_rx_buf(VpriDrv *v, int i)
{
    return v->scratch + 4 * VPRI_PAGE + i * VPRI_PAGE;
}

static void vpri_nic_tx(VpriDrv *v, uint64_t addr, uint32_t len)
{
    VVQueue *q = &v->d->queues[1];
    VVBuf b[2] = {
        { addr, NET_HDR_LEN, false },
        { addr + 64, len, false },
    };

    qtest_memset(v->d->qts, addr, 0, NET_HDR_LEN);
    qtest_memset(v->d->qts, addr + 64, 0x5a, len);
    vv_queue_publish(q, vv_queue_add_chain(q, b, 2, false));
}

/*
 * RX and TX of pair 0 have moved frames; then the RX buffers' pages and
 * a TX frame's page are evicted with faults held: a received frame and
 * a transmitted one wait in the device's slots.
 */
static void vpri_nic_source(MutRun *r)
{
    VpriDrv *v;
    uint64_t pages[NET_NRX + 1], tx;
    uint32_t id, len;

    v = vpri_source_start(r, VIRTIO_NET_MODERN);
    v->nq = 2;
    vpri_msix(v, v->nq + 1);
    vv_init(v->d, (1ULL << NET_F_MAC) | (1ULL << NET_F_STATUS) |
            (1ULL << VV_F_VERSION_1) | (1ULL << VV_F_ACCESS_PLATFORM),
            v->nq, 0);
    v->scratch = guest_alloc(&v->alloc, (4 + NET_NRX) * VPRI_PAGE);
    for (int i = 0; i < NET_NRX; i++) {
        VVBuf b = { vpri_nic_rx_buf(v, i), NET_RXBUF_LEN, true };
        VVQueue *q = &v->d->queues[0];

        qtest_memset(r->qts, b.addr, 0xee, NET_RXBUF_LEN);
        vv_queue_publish(q, vv_queue_add_chain(q, &b, 1, false));
    }
    vv_queue_kick(&v->d->queues[0]);
    vpri_nic_send(v, 200, 1);
    g_assert(vv_queue_wait_used(&v->d->queues[0], &id, &len, VPRI_WAIT_US));
    tx = guest_alloc(&v->alloc, 2 * VPRI_PAGE);
    vpri_nic_tx(v, tx, 100);
    vv_queue_kick(&v->d->queues[1]);
    g_assert(vv_queue_wait_used(&v->d->queues[1], &id, &len, VPRI_WAIT_US));

    for (int i = 0; i < NET_NRX; i++) {
        pages[i] = vpri_nic_rx_buf(v, i);
    }
    pages[NET_NRX] = tx + VPRI_PAGE;
    vpri_nic_tx(v, tx + VPRI_PAGE, 300);
    mut_vpri_evict_only(r->qts, pages, NET_NRX + 1, VPRI_RAM_MB);
    mut_vpri_hold_faults(r->qts);
    vv_queue_kick(&v->d->queues[1]);
    vpri_nic_send(v, 200, 2);
    mut_vpri_wait_pending(r->qts, 2);
}

/* A frame in, a frame out, and the MAC from the config space */
static MutTouch vpri_nic_touch(MutRun *r)
{
    VpriDrv *v = r->priv;
    VpriWatch w = { .v = v };
    VVQueue *tx = &v->d->queues[1];

    for (uint16_t i = 0; i < v->nq; i++) {
        w.used[i] = v->d->queues[i].last_used;
    }
    vv_config_readb(v->d, 0);
    vpri_nic_send(v, 300, 3);
    if (tx->enabled && tx->num_free >= 2) {
        vpri_nic_tx(v, v->scratch, 60);
        vv_queue_kick(tx);
    }
    return vpri_verdict(r, &w);
}

static const char *const vpri_nic_sections[] = { "/vpri-nic", NULL };

const MutScenario mut_vpri_nic = {
    .name = "vpri-nic",
    .qom_type = "vpri-nic",
    .sections = vpri_nic_sections,
    .args = vpri_nic_args,
    .source = vpri_nic_source,
    .attach = vpri_attach_dst,
    .touch = vpri_nic_touch,
};
