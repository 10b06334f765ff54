/*
 * A small NVMe driver for qtest (see nvme-export-driver.h)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "libqos/pci-pc.h"
#include "nvme-export-driver.h"

typedef struct FindCtx {
    uint16_t vid, did;
    int devfn;
} FindCtx;

static void find_one(QPCIDevice *dev, int devfn, void *opaque)
{
    FindCtx *f = opaque;

    if (f->devfn < 0) {
        f->devfn = devfn;
    }
    g_free(dev);
}

NxDev *nx_find(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
               uint16_t vid, uint16_t did)
{
    FindCtx f = { vid, did, -1 };

    qpci_device_foreach(bus, vid, did, find_one, &f);
    if (f.devfn < 0) {
        return NULL;
    }
    return nx_find_at(qts, alloc, bus, f.devfn);
}

NxDev *nx_find_at(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
                  int devfn)
{
    NxDev *d;
    QPCIDevice *pdev = qpci_device_find(bus, devfn);

    if (!pdev) {
        return NULL;
    }
    d = g_new0(NxDev, 1);
    d->qts = qts;
    d->alloc = alloc;
    d->bus = bus;
    d->pdev = pdev;
    qpci_device_enable(d->pdev);
    d->bar0 = qpci_iomap(d->pdev, 0, NULL);
    return d;
}

void nx_free(NxDev *d)
{
    qpci_iounmap(d->pdev, d->bar0);
    g_free(d->pdev);
    g_free(d);
}

uint32_t nx_rd32(NxDev *d, uint64_t off)
{
    return qpci_io_readl(d->pdev, d->bar0, off);
}

uint64_t nx_rd64(NxDev *d, uint64_t off)
{
    return qpci_io_readq(d->pdev, d->bar0, off);
}

void nx_wr32(NxDev *d, uint64_t off, uint32_t val)
{
    qpci_io_writel(d->pdev, d->bar0, off, val);
}

void nx_doorbell(NxDev *d, uint16_t qid, bool cq, uint32_t val)
{
    nx_wr32(d, NX_DB + (2 * qid + cq) * 4, val);
}

uint64_t nx_alloc(NxDev *d, uint64_t size, uint64_t align)
{
    /* The libqos allocator is page granular; pad for alignment */
    uint64_t a = guest_alloc(d->alloc, size + align);

    return QEMU_ALIGN_UP(a, align);
}

void nx_memwrite(NxDev *d, uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    for (size_t off = 0; off < len; off += 4096) {
        qtest_memwrite(d->qts, addr + off, p + off, MIN(4096, len - off));
    }
}

void nx_memread(NxDev *d, uint64_t addr, void *buf, size_t len)
{
    uint8_t *p = buf;

    for (size_t off = 0; off < len; off += 4096) {
        qtest_memread(d->qts, addr + off, p + off, MIN(4096, len - off));
    }
}

static void queue_init(NxDev *d, NxQueue *q, uint16_t size, size_t esz)
{
    q->size = size;
    q->base = nx_alloc(d, (uint64_t)size * esz, 4096);
    qtest_memset(d->qts, q->base, 0, (uint64_t)size * esz);
    q->head = q->tail = 0;
    q->phase = 1;
    q->live = true;
}

bool nx_enable(NxDev *d, uint16_t aq_size)
{
    gint64 end = g_get_monotonic_time() + NX_TIMEOUT_US;

    queue_init(d, &d->sq[0], aq_size, 64);
    queue_init(d, &d->cq[0], aq_size, 16);
    nx_wr32(d, NX_AQA, (aq_size - 1) | (uint32_t)(aq_size - 1) << 16);
    nx_wr32(d, NX_ASQ, d->sq[0].base);
    nx_wr32(d, NX_ASQ + 4, d->sq[0].base >> 32);
    nx_wr32(d, NX_ACQ, d->cq[0].base);
    nx_wr32(d, NX_ACQ + 4, d->cq[0].base >> 32);
    nx_wr32(d, NX_CC, 1 | 6 << 16 | 4 << 20);
    while (!(nx_rd32(d, NX_CSTS) & 1)) {
        if (nx_rd32(d, NX_CSTS) & 2 || g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(100);
    }
    return true;
}

void nx_disable(NxDev *d)
{
    nx_wr32(d, NX_CC, 0);
    for (int i = 0; i < NX_MAX_Q; i++) {
        d->sq[i].live = d->cq[i].live = false;
    }
}

void nx_cmd(NxCmd *c, uint8_t opc, uint32_t nsid)
{
    memset(c, 0, sizeof(*c));
    c->b[0] = opc;
    stl_le_p(c->b + 4, nsid);
}

void nx_cmd_dw(NxCmd *c, int dw, uint32_t val)
{
    stl_le_p(c->b + 4 * dw, val);
}

void nx_cmd_prp(NxCmd *c, uint64_t prp1, uint64_t prp2)
{
    c->b[1] &= ~0xc0;
    stq_le_p(c->b + 24, prp1);
    stq_le_p(c->b + 32, prp2);
}

void nx_cmd_sgl(NxCmd *c, uint64_t addr, uint32_t len, uint8_t type)
{
    c->b[1] = (c->b[1] & ~0xc0) | 0x40;
    stq_le_p(c->b + 24, addr);
    stl_le_p(c->b + 32, len);
    memset(c->b + 36, 0, 3);
    c->b[39] = type << 4;
}

uint16_t nx_queue(NxDev *d, uint16_t qid, NxCmd *c)
{
    NxQueue *sq = &d->sq[qid];
    uint16_t cid = d->next_cid++;

    g_assert(sq->live);
    stw_le_p(c->b + 2, cid);
    qtest_memwrite(d->qts, sq->base + sq->tail * 64ull, c->b, 64);
    sq->tail = (sq->tail + 1) % sq->size;
    return cid;
}

void nx_ring(NxDev *d, uint16_t qid)
{
    nx_doorbell(d, qid, false, d->sq[qid].tail);
}

bool nx_reap(NxDev *d, uint16_t cqid, NxCqe *e, gint64 timeout_us)
{
    NxQueue *cq = &d->cq[cqid];
    gint64 end = g_get_monotonic_time() + timeout_us;
    uint8_t raw[16];

    for (;;) {
        qtest_memread(d->qts, cq->base + cq->head * 16ull, raw, 16);
        if ((lduw_le_p(raw + 14) & 1) == cq->phase) {
            break;
        }
        if (g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(20);
    }
    e->dw0 = ldl_le_p(raw);
    e->sqhd = lduw_le_p(raw + 8);
    e->sqid = lduw_le_p(raw + 10);
    e->cid = lduw_le_p(raw + 12);
    e->status = lduw_le_p(raw + 14) >> 1;
    if (++cq->head == cq->size) {
        cq->head = 0;
        cq->phase ^= 1;
    }
    nx_doorbell(d, cqid, true, cq->head);
    return true;
}

int nx_exec(NxDev *d, uint16_t qid, NxCmd *c, NxCqe *e)
{
    NxCqe local;
    uint16_t cid;

    e = e ? e : &local;
    cid = nx_queue(d, qid, c);
    nx_ring(d, qid);
    if (!nx_reap(d, qid, e, NX_TIMEOUT_US)) {
        return -1;
    }
    g_assert_cmpint(e->cid, ==, cid);
    g_assert_cmpint(e->sqid, ==, qid);
    return NX_SC(e->status);
}

int nx_identify(NxDev *d, uint8_t cns, uint32_t nsid, uint8_t csi,
                uint8_t *buf4k)
{
    uint64_t buf = nx_alloc(d, 4096, 4096);
    NxCmd c;
    int st;

    qtest_memset(d->qts, buf, 0xa5, 4096);
    nx_cmd(&c, 0x06, nsid);
    nx_cmd_prp(&c, buf, 0);
    nx_cmd_dw(&c, 10, cns);
    nx_cmd_dw(&c, 11, (uint32_t)csi << 24);
    st = nx_exec(d, 0, &c, NULL);
    if (buf4k) {
        nx_memread(d, buf, buf4k, 4096);
    }
    return st;
}

int nx_set_features(NxDev *d, uint8_t fid, uint32_t dw11, uint32_t *dw0)
{
    NxCmd c;
    NxCqe e;
    int st;

    nx_cmd(&c, 0x09, 0);
    nx_cmd_dw(&c, 10, fid);
    nx_cmd_dw(&c, 11, dw11);
    st = nx_exec(d, 0, &c, &e);
    if (dw0) {
        *dw0 = e.dw0;
    }
    return st;
}

int nx_get_features(NxDev *d, uint8_t fid, uint32_t dw11, uint32_t *dw0)
{
    NxCmd c;
    NxCqe e;
    int st;

    nx_cmd(&c, 0x0a, 0);
    nx_cmd_dw(&c, 10, fid);
    nx_cmd_dw(&c, 11, dw11);
    st = nx_exec(d, 0, &c, &e);
    if (dw0) {
        *dw0 = e.dw0;
    }
    return st;
}

int nx_get_log(NxDev *d, uint8_t lid, uint32_t nsid, void *buf,
               uint32_t len)
{
    uint64_t mem = nx_alloc(d, 2 * 4096, 4096);
    uint32_t numd = len / 4 - 1;
    NxCmd c;
    int st;

    g_assert(len <= 8192 && len % 4 == 0);
    nx_cmd(&c, 0x02, nsid);
    nx_cmd_prp(&c, mem, mem + 4096);
    nx_cmd_dw(&c, 10, lid | (numd & 0xffff) << 16);
    nx_cmd_dw(&c, 11, numd >> 16);
    st = nx_exec(d, 0, &c, NULL);
    nx_memread(d, mem, buf, len);
    return st;
}

int nx_create_ioq(NxDev *d, uint16_t qid, uint16_t size)
{
    return nx_create_ioq_sizes(d, qid, size, size);
}

int nx_create_ioq_sizes(NxDev *d, uint16_t qid, uint16_t size,
                        uint16_t cq_size)
{
    NxCmd c;
    int st;

    queue_init(d, &d->cq[qid], cq_size, 16);
    nx_cmd(&c, 0x05, 0);
    nx_cmd_prp(&c, d->cq[qid].base, 0);
    nx_cmd_dw(&c, 10, qid | (uint32_t)(cq_size - 1) << 16);
    nx_cmd_dw(&c, 11, 1 | 2 | (uint32_t)qid << 16);
    st = nx_exec(d, 0, &c, NULL);
    if (st) {
        d->cq[qid].live = false;
        return st;
    }
    queue_init(d, &d->sq[qid], size, 64);
    nx_cmd(&c, 0x01, 0);
    nx_cmd_prp(&c, d->sq[qid].base, 0);
    nx_cmd_dw(&c, 10, qid | (uint32_t)(size - 1) << 16);
    nx_cmd_dw(&c, 11, 1 | (uint32_t)qid << 16);
    st = nx_exec(d, 0, &c, NULL);
    if (st) {
        d->sq[qid].live = false;
    }
    return st;
}

int nx_delete_ioq(NxDev *d, uint16_t qid)
{
    NxCmd c;
    int st;

    nx_cmd(&c, 0x00, 0);
    nx_cmd_dw(&c, 10, qid);
    st = nx_exec(d, 0, &c, NULL);
    if (st) {
        return st;
    }
    d->sq[qid].live = false;
    nx_cmd(&c, 0x04, 0);
    nx_cmd_dw(&c, 10, qid);
    st = nx_exec(d, 0, &c, NULL);
    if (!st) {
        d->cq[qid].live = false;
    }
    return st;
}

/*
 * The source reports "completed" once it has sent the last byte; the
 * destination may still be loading it, and until it runs its config
 * space (the BAR) is not yet the migrated one and its queues are not
 * fetched.  A driver on the destination waits for it to run, as a guest
 * does.
 */
static void nx_wait_running(QTestState *qts)
{
    gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        bool running = qdict_get_bool(qdict_get_qdict(rsp, "return"),
                                      "running");

        qobject_unref(rsp);
        if (running) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
}

void nx_switch_to(NxDev *d, QTestState *dst, QGuestAllocator *alloc)
{
    int devfn = d->pdev->devfn;
    QPCIBus *bus;
    QPCIDevice *pdev;

    nx_wait_running(dst);
    bus = qpci_new_pc(dst, alloc);
    pdev = qpci_device_find(bus, devfn);
    g_assert(pdev);
    /* The BAR was assigned on the source and migrated with config space */
    d->bar0.addr = qpci_config_readl(pdev, PCI_BASE_ADDRESS_0) & ~0xfull;
    d->bar0.addr |= (uint64_t)qpci_config_readl(pdev,
                                               PCI_BASE_ADDRESS_1) << 32;
    g_free(d->pdev);
    qpci_free_pc(d->bus);
    qtest_quit(d->qts);
    d->pdev = pdev;
    d->bus = bus;
    d->qts = dst;
}
