/*
 * vpri-host robustness qtests (issue 13): what a guest can make a device
 * ask of its vpri-host must never crash, wrap or corrupt the host.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "vpri-blk-harness.h"

#define RAM_MB              128
#define PAGE                4096

#define FEATURES \
    ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
     (1ULL << VV_F_INDIRECT_DESC) | (1ULL << VV_F_VERSION_1) | \
     (1ULL << VV_F_ACCESS_PLATFORM))

/* Each case runs in a child process with this bound (deadlock = fail) */
#define CASE_TIMEOUT_US     (50 * G_USEC_PER_SEC)

/* Member @key of host vh0's query-vpri entry. */
static uint64_t host_u64(Ctx *c, const char *key)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'query-vpri' }");
    QList *hosts = qdict_get_qlist(qdict_get_qdict(rsp, "return"), "hosts");
    QNum *n = qobject_to(QNum, qdict_get(qobject_to(QDict, qlist_peek(hosts)),
                                         key));
    uint64_t v;

    g_assert_nonnull(n);
    v = qnum_get_uint(n);
    qobject_unref(rsp);
    return v;
}

static uint64_t reclaim_all(Ctx *c)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'vpri-reclaim', "
                           "'arguments': { 'host': 'vh0', 'percent': 100 } }");
    uint64_t n;

    g_assert(qdict_haskey(rsp, "return"));
    n = qdict_get_int(qdict_get_qdict(rsp, "return"), "evicted");
    qobject_unref(rsp);
    return n;
}

/* ------------------------------------------------------------------ */
/* One page held by more DMAs than a 16-bit counter counts            */

#define HOLD_SEGS       64      /* data segments per request (< SEG_MAX) */
#define HOLD_REQS       1024    /* a full queue: 65,536 holds on one page */
#define HOLD_SEG_LEN    512
/* The null backend's latency: no write completes before it. */
#define HOLD_LATENCY_S  6

/*
 * The host counted the holds of a page in 16 bits.  1024 writes whose 64
 * data segments all map the same 512 bytes of one page hold that page
 * exactly 65,536 times while the null backend sleeps on them: the counter
 * wrapped to 0, so the page could be evicted under the backend's feet,
 * and the releases then hit an assert that aborted QEMU.
 *
 * Certain, not lucky: the test waits until the host reports all 65,536
 * holds (none is released before the backend's latency has passed: if
 * the wait took that long, the test fails rather than passes), then
 * evicts all of RAM, which must leave exactly that page resident; then
 * every write completes OK and every hold is released.
 */
static void test_hold_many(void)
{
    Ctx *c = ctx_new("vpri-host-robust");
    g_autofree char *args = g_strdup_printf(
        "-M q35 -m %d -nodefaults -d guest_errors -D %s "
        "-object vpri-host,id=vh0 "
        "-blockdev driver=null-co,node-name=d0,size=%d,"
        "latency-ns=%" PRIu64 " "
        "-device vpri-blk,drive=d0,host=vh0,id=vblk0,queue-size=1024",
        RAM_MB, c->log, (int)IMG_SIZE,
        (uint64_t)HOLD_LATENCY_S * 1000000000);
    g_autofree VVBuf *bufs = g_new(VVBuf, HOLD_SEGS + 2);
    g_autofree uint64_t *status = g_new(uint64_t, HOLD_REQS);
    gint64 kicked;
    uint64_t page, hdr, guest_pages;
    VVQueue *q;
    uint8_t h[16];

    ctx_connect(c, args);
    ctx_msix(c, 2);
    ctx_init_features(c, 1, FEATURES);
    q = queue(c, 0);
    g_assert_cmpuint(q->size, ==, HOLD_REQS);
    page = guest_alloc(&c->alloc, PAGE);
    qtest_memset(c->qts, page, 0x5a, PAGE);
    hdr = guest_alloc(&c->alloc, sizeof(h));
    stl_le_p(h, BLK_T_OUT);
    stl_le_p(h + 4, 0);
    stq_le_p(h + 8, 0);
    qtest_memwrite(c->qts, hdr, h, sizeof(h));

    for (int r = 0; r < HOLD_REQS; r++) {
        status[r] = guest_alloc(&c->alloc, 1);
        qtest_writeb(c->qts, status[r], 0xff);
        bufs[0] = (VVBuf){ hdr, sizeof(h), false };
        for (int i = 0; i < HOLD_SEGS; i++) {
            bufs[1 + i] = (VVBuf){ page, HOLD_SEG_LEN, false };
        }
        bufs[HOLD_SEGS + 1] = (VVBuf){ status[r], 1, true };
        vv_queue_publish(q, vv_queue_add_chain(q, bufs, HOLD_SEGS + 2,
                                               true));
    }
    kicked = g_get_monotonic_time();
    vv_queue_kick(q);

    while (host_u64(c, "dma-holds") < (uint64_t)HOLD_REQS * HOLD_SEGS) {
        g_assert_cmpint(g_get_monotonic_time() - kicked, <,
                        (HOLD_LATENCY_S - 2) * G_USEC_PER_SEC);
        g_usleep(1000);
    }
    g_assert_cmpuint(host_u64(c, "dma-holds"), ==,
                     (uint64_t)HOLD_REQS * HOLD_SEGS);
    /* Everything goes but the held page. */
    guest_pages = host_u64(c, "guest-pages");
    g_assert_cmpuint(reclaim_all(c), ==, guest_pages - 1);
    g_assert_cmpuint(host_u64(c, "resident-pages"), ==, 1);
    g_assert_cmpint(g_get_monotonic_time() - kicked, <,
                    HOLD_LATENCY_S * G_USEC_PER_SEC);

    for (int r = 0; r < HOLD_REQS; r++) {
        uint32_t id, len;

        g_assert_true(vv_queue_wait_used(q, &id, &len,
                                         20 * G_USEC_PER_SEC));
    }
    for (int r = 0; r < HOLD_REQS; r++) {
        g_assert_cmpuint(qtest_readb(c->qts, status[r]), ==, BLK_S_OK);
    }
    g_assert_cmpuint(host_u64(c, "dma-holds"), ==, 0);
    /* Every hold was released: the page can be evicted again. */
    g_assert_cmpuint(reclaim_all(c), >=, 1);
    g_assert_cmpuint(host_u64(c, "resident-pages"), ==, 0);
    assert_running(c);
    ctx_stop(c);
}

int main(int argc, char **argv)
{
    if (!vblk_tests_init(&argc, &argv, CASE_TIMEOUT_US)) {
        return g_test_run();
    }
    add_test("/iolab/vpri-host-robust/hold-many", test_hold_many);
    return g_test_run();
}
