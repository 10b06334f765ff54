/*
 * qtest driver for vdpa-mgmt: the admin queue and instance rings
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"
#include "qemu/bswap.h"
#include "vdpa-mgmt-aq.h"

#define TIMEOUT_US (10 * G_USEC_PER_SEC)

static void find_cb(QPCIDevice *dev, int devfn, void *opaque)
{
    QPCIDevice **out = opaque;

    if (!*out) {
        *out = dev;
    } else {
        g_free(dev);
    }
}

uint32_t vm_reg_read(VMAdmin *a, uint32_t off)
{
    return qpci_io_readl(a->pdev, a->bar, off);
}

void vm_reg_write(VMAdmin *a, uint32_t off, uint32_t val)
{
    qpci_io_writel(a->pdev, a->bar, off, val);
}

void vm_doorbell(VMAdmin *a, uint32_t inst, uint16_t queue)
{
    vm_reg_write(a, VDPA_MGMT_DOORBELL_OFF, VDPA_DB_VALUE(inst, queue));
}

/* q35: MCH register PCIEXBAR, its default base, 256 buses, enable bit */
#define Q35_PCIEXBAR        0x60
#define Q35_MMCFG_BASE      0xb0000000ULL
#define Q35_PCIEXBAR_EN     1

static uint64_t vm_ext_config_addr(VMAdmin *a, uint16_t off)
{
    QPCIDevice *mch = qpci_device_find(a->bus, 0);

    g_assert(mch);
    if (!(qpci_config_readl(mch, Q35_PCIEXBAR) & Q35_PCIEXBAR_EN)) {
        qpci_config_writel(mch, Q35_PCIEXBAR + 4, 0);
        qpci_config_writel(mch, Q35_PCIEXBAR,
                           Q35_MMCFG_BASE | Q35_PCIEXBAR_EN);
    }
    g_free(mch);
    g_assert_cmpuint(off, <, 4096);
    return Q35_MMCFG_BASE + ((uint64_t)a->pdev->devfn << 12) + off;
}

uint32_t vm_ext_config_readl(VMAdmin *a, uint16_t off)
{
    return qtest_readl(a->qts, vm_ext_config_addr(a, off));
}

void vm_ext_config_writew(VMAdmin *a, uint16_t off, uint16_t val)
{
    qtest_writew(a->qts, vm_ext_config_addr(a, off), val);
}

void vm_enable_pasid(VMAdmin *a)
{
    uint16_t off = 0x100;

    /* Walk the extended capabilities for PASID (ID 0x1b) */
    while (off) {
        uint32_t hdr = vm_ext_config_readl(a, off);

        if ((hdr & 0xffff) == 0x1b) {
            vm_ext_config_writew(a, off + 6, 1);
            return;
        }
        off = hdr >> 20;
    }
    g_assert_not_reached();
}

VMAdmin *vm_open(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
                 uint32_t size)
{
    VMAdmin *a = g_new0(VMAdmin, 1);
    g_autofree uint8_t *zero = g_malloc0(size * VDPA_CQE_SIZE);

    a->qts = qts;
    a->alloc = alloc;
    a->bus = bus;
    qpci_device_foreach(bus, VDPA_MGMT_PCI_VENDOR_ID, VDPA_MGMT_PCI_DEVICE_ID,
                        find_cb, &a->pdev);
    g_assert(a->pdev);
    qpci_device_enable(a->pdev);
    a->bar = qpci_iomap(a->pdev, VDPA_MGMT_REG_BAR, NULL);
    g_assert_cmphex(vm_reg_read(a, VDPA_REG_MAGIC), ==, VDPA_MGMT_MAGIC);
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_VERSION), ==, VDPA_MGMT_VERSION);

    a->size = size;
    a->sq = guest_alloc(alloc, size * VDPA_SQE_SIZE);
    a->cq = guest_alloc(alloc, size * VDPA_CQE_SIZE);
    a->buf = guest_alloc(alloc, VM_BUF_SIZE);
    qtest_memwrite(qts, a->cq, zero, size * VDPA_CQE_SIZE);
    vm_reg_write(a, VDPA_REG_AQ_SIZE, size);
    vm_reg_write(a, VDPA_REG_AQ_SQ_LO, (uint32_t)a->sq);
    vm_reg_write(a, VDPA_REG_AQ_SQ_HI, a->sq >> 32);
    vm_reg_write(a, VDPA_REG_AQ_CQ_LO, (uint32_t)a->cq);
    vm_reg_write(a, VDPA_REG_AQ_CQ_HI, a->cq >> 32);
    vm_reg_write(a, VDPA_REG_CTRL, VDPA_CTRL_ENABLE);
    g_assert_cmpuint(vm_reg_read(a, VDPA_REG_STATUS), ==, VDPA_STATUS_READY);
    a->phase = true;
    return a;
}

void vm_close(VMAdmin *a)
{
    qpci_iounmap(a->pdev, a->bar);
    g_free(a->pdev);
    g_free(a);
}

VdpaCmd vm_cmd_new(VMAdmin *a, uint16_t opcode, uint64_t member)
{
    VdpaCmd c;

    memset(&c, 0, sizeof(c));
    c.opcode = opcode;
    c.group_type = VDPA_GROUP_TYPE_MANAGED;
    c.cid = a->cid++;
    c.member = member;
    return c;
}

void vm_submit(VMAdmin *a, const VdpaCmd *cmds, uint32_t n, VMCqe *out)
{
    g_autofree uint8_t *sqes = g_malloc(n * VDPA_SQE_SIZE);
    g_autofree uint8_t *cqes = g_malloc(a->size * VDPA_CQE_SIZE);
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;
    uint32_t done = 0;

    g_assert_cmpuint(n, <, a->size);
    /* Write the entries, wrapping at the end of the ring, page by page */
    for (uint32_t i = 0; i < n; i++) {
        vdpa_cmd_encode(&cmds[i], sqes + i * VDPA_SQE_SIZE);
    }
    for (uint32_t i = 0; i < n;) {
        uint32_t slot = (a->sq_tail + i) % a->size;
        uint32_t run = MIN(n - i, a->size - slot);

        run = MIN(run, 4096 / VDPA_SQE_SIZE);
        qtest_memwrite(a->qts, a->sq + (uint64_t)slot * VDPA_SQE_SIZE,
                       sqes + i * VDPA_SQE_SIZE, run * VDPA_SQE_SIZE);
        i += run;
    }
    a->sq_tail = (a->sq_tail + n) % a->size;
    vm_reg_write(a, VDPA_REG_AQ_SQ_TAIL, a->sq_tail);

    while (done < n) {
        uint32_t tail = vm_reg_read(a, VDPA_REG_AQ_CQ_TAIL);
        uint32_t avail = (tail + a->size - a->cq_head) % a->size;

        if (!avail) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(50);
            continue;
        }
        qtest_memread(a->qts, a->cq, cqes, a->size * VDPA_CQE_SIZE);
        while (avail--) {
            const uint8_t *e = cqes + a->cq_head * VDPA_CQE_SIZE;
            VMCqe *c = &out[done++];

            g_assert_cmpuint(lduw_le_p(e + VDPA_CQE_FLAGS) & VDPA_CQE_PHASE,
                             ==, a->phase);
            c->cid = lduw_le_p(e + VDPA_CQE_CID);
            c->status = lduw_le_p(e + VDPA_CQE_STATUS);
            c->qual = lduw_le_p(e + VDPA_CQE_QUALIFIER);
            c->result = ldq_le_p(e + VDPA_CQE_RESULT);
            g_assert_cmpuint(c->cid, ==, cmds[done - 1].cid);
            a->cq_head = (a->cq_head + 1) % a->size;
            if (a->cq_head == 0) {
                a->phase = !a->phase;
            }
        }
        vm_reg_write(a, VDPA_REG_AQ_CQ_HEAD, a->cq_head);
    }
}

VMCqe vm_exec(VMAdmin *a, const VdpaCmd *cmd)
{
    VMCqe c;

    vm_submit(a, cmd, 1, &c);
    return c;
}

static void assert_ok(VMCqe c)
{
    g_assert_cmpuint(c.status, ==, VDPA_S_OK);
    g_assert_cmpuint(c.qual, ==, VDPA_Q_OK);
}

uint32_t vm_create_blk(VMAdmin *a, uint16_t nqueues, uint32_t backend)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_CREATE, 0);
    VMCqe r;

    c.u.create.type = VDPA_TYPE_BLK;
    c.u.create.nqueues = nqueues;
    c.u.create.backend = backend;
    r = vm_exec(a, &c);
    assert_ok(r);
    g_assert_cmpuint(r.result, >=, 1);
    return r.result;
}

void vm_set_status(VMAdmin *a, uint32_t inst, uint8_t status,
                   uint64_t features)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_SET_STATUS, inst);

    c.u.status.status = status;
    c.u.status.features = features;
    assert_ok(vm_exec(a, &c));
}

void vm_destroy(VMAdmin *a, uint32_t inst)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_DESTROY, inst);

    assert_ok(vm_exec(a, &c));
}

void vm_set_msi(VMAdmin *a, uint32_t inst, uint16_t queue, uint64_t addr,
                uint32_t data, bool masked)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_SET_QUEUE_MSI, inst);

    c.u.msi.queue = queue;
    c.u.msi.addr = addr;
    c.u.msi.data = data;
    c.u.msi.flags = masked ? VDPA_MSI_F_MASKED : 0;
    assert_ok(vm_exec(a, &c));
}

void vm_ring_init(VMRing *r, uint64_t mem)
{
    g_assert(!(mem % 16));
    memset(r, 0, sizeof(*r));
    r->mem = mem;
    r->size = VM_RING_SIZE;
    r->desc = mem;                          /* 64 bytes */
    r->avail = mem + 64;                    /* 14 bytes */
    r->used = mem + 128;                    /* 38 bytes */
    r->hdr = mem + 176;                     /* 16 bytes */
    r->status = mem + 192;                  /* 1 byte */
}

VdpaCmd vm_ring_setup_cmd(VMAdmin *a, const VMRing *r, uint32_t inst,
                          uint16_t queue)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_QUEUE_SETUP, inst);

    c.u.queue.index = queue;
    c.u.queue.size = r->size;
    c.u.queue.enable = 1;
    c.u.queue.desc = r->desc;
    c.u.queue.driver = r->avail;
    c.u.queue.device = r->used;
    return c;
}

static void put_desc(uint8_t *d, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    stq_le_p(d, addr);
    stl_le_p(d + 8, len);
    stw_le_p(d + 12, flags);
    stw_le_p(d + 14, next);
}

void vm_blk_post(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
                 uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
    uint8_t desc[48], hdr[16] = { 0 }, slot[2];
    uint16_t write_data = type == 0 ? 2 : 0;     /* VIRTIO_BLK_T_IN */
    int n = 0;

    stl_le_p(hdr, type);
    stq_le_p(hdr + 8, sector);
    qtest_memwrite(a->qts, r->hdr, hdr, sizeof(hdr));
    qtest_writeb(a->qts, r->status, 0xff);
    put_desc(desc, r->hdr, 16, 1, 1);
    n++;
    if (len) {
        put_desc(desc + 16, data, len, 1 | write_data, 2);
        n++;
    }
    put_desc(desc + 16 * n, r->status, 1, 2, 0);
    n++;
    qtest_memwrite(a->qts, r->desc, desc, 16 * n);
    stw_le_p(slot, 0);
    qtest_memwrite(a->qts, r->avail + 4 + 2 * (r->avail_idx % r->size), slot,
                   2);
    r->avail_idx++;
    qtest_writew(a->qts, r->avail + 2, r->avail_idx);
    vm_doorbell(a, inst, queue);
}

int vm_blk_wait(VMAdmin *a, VMRing *r)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;

    while (qtest_readw(a->qts, r->used + 2) == r->last_used) {
        if (g_get_monotonic_time() > deadline) {
            return -1;
        }
        g_usleep(20);
    }
    r->last_used++;
    return qtest_readb(a->qts, r->status);
}

int vm_blk_io(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
              uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
    vm_blk_post(a, r, inst, queue, type, sector, data, len);
    return vm_blk_wait(a, r);
}

void vm_ring_post(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
                  uint64_t addr, uint32_t len, bool write)
{
    uint8_t desc[16];
    uint16_t slot = r->avail_idx % r->size;

    /* Descriptor i serves avail slot i: one buffer per slot in flight */
    put_desc(desc, addr, len, write ? 2 : 0, 0);
    qtest_memwrite(a->qts, r->desc + 16 * slot, desc, sizeof(desc));
    qtest_writew(a->qts, r->avail + 4 + 2 * slot, slot);
    r->avail_idx++;
    qtest_writew(a->qts, r->avail + 2, r->avail_idx);
    vm_doorbell(a, inst, queue);
}

int vm_ring_wait(VMAdmin *a, VMRing *r, gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    uint32_t len;

    while (qtest_readw(a->qts, r->used + 2) == r->last_used) {
        if (g_get_monotonic_time() > deadline) {
            return -1;
        }
        g_usleep(20);
    }
    len = qtest_readl(a->qts, r->used + 4 + 8 * (r->last_used % r->size) + 4);
    r->last_used++;
    return len;
}

uint32_t vm_bring_up(VMAdmin *a, VMRing *rings, uint8_t type, uint16_t nq,
                     uint32_t backend, const uint8_t *mac)
{
    VdpaCmd c = vm_cmd_new(a, VDPA_OP_CREATE, 0);
    uint8_t ok = VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER | VDPA_ST_FEATURES_OK;
    VMCqe r;
    uint32_t id;

    c.u.create.type = type;
    c.u.create.nqueues = nq;
    c.u.create.backend = backend;
    if (mac) {
        memcpy(c.u.create.mac, mac, 6);
    }
    r = vm_exec(a, &c);
    assert_ok(r);
    id = r.result;
    vm_set_status(a, id, ok, VM_F_VERSION_1);
    for (uint16_t q = 0; q < nq; q++) {
        vm_ring_init(&rings[q], guest_alloc(a->alloc, VM_RING_BYTES));
        qtest_memset(a->qts, rings[q].mem, 0, VM_RING_BYTES);
        c = vm_ring_setup_cmd(a, &rings[q], id, q);
        assert_ok(vm_exec(a, &c));
    }
    vm_set_status(a, id, ok | VDPA_ST_DRIVER_OK, VM_F_VERSION_1);
    return id;
}
