/*
 * Mutator scenarios for vdpa-mgmt: one with blk instances (behind a
 * vpri-host, a request held on a fault), one with a net instance.
 *
 * The stream carries the admin queue, the instance list and, per
 * instance, its state, PASID, MAC, virtqueue records, MSI messages and
 * held heads.  The touch drives the admin queue with a submission of its
 * own that asserts nothing (vm_exec() would assert on a bad completion),
 * and the instances' rings with the raw helpers of vdpa-mgmt-aq.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vdpa-mgmt-aq.h"
#include "mig-mutator.h"

#define VDPA_RAM_MB         32
#define VDPA_AQ_SIZE        16
#define VDPA_BLK_T_IN       0
#define VDPA_BLK_T_OUT      1

typedef struct VdpaDrv {
    QGuestAllocator alloc;
    QPCIBus *bus;
    VMAdmin *a;
    uint32_t inst[3];
    unsigned ninst;
    VMRing ring[3][2];
    uint64_t data, msi;
    int sock;               /* net: our end of the netdev (of r->slot) */
} VdpaDrv;

static void vdpa_start(MutRun *r)
{
    VdpaDrv *v = r->priv;
    g_autofree char *args = r->sc->args(r);

    r->qts = qtest_init(args);
    pc_alloc_init(&v->alloc, r->qts, 0);
    v->bus = qpci_new_pc(r->qts, &v->alloc);
    v->a = vm_open(r->qts, &v->alloc, v->bus, VDPA_AQ_SIZE);
    v->data = guest_alloc(&v->alloc, 2 * 4096);
    v->msi = guest_alloc(&v->alloc, 4096);
}

static void vdpa_attach(MutRun *r, QTestState *dst)
{
    VdpaDrv *v = r->priv;

    /* The BAR stays where the source put it: config space migrated */
    v->bus->qts = dst;
    v->a->qts = dst;
    v->sock = mut_net_sock(r);
}

/*
 * One admin command, without assertions: write the entry at the
 * driver's tail, ring, wait for a completion.  Returns whether one came.
 */
static bool vdpa_admin_try(VMAdmin *a, VdpaCmd *c, uint16_t *status,
                           gint64 wait_us)
{
    uint8_t sqe[VDPA_SQE_SIZE], cqe[VDPA_CQE_SIZE];
    gint64 deadline = g_get_monotonic_time() + wait_us;

    c->cid = a->cid++;
    vdpa_cmd_encode(c, sqe);
    qtest_memwrite(a->qts, a->sq + (uint64_t)a->sq_tail * VDPA_SQE_SIZE, sqe,
                   sizeof(sqe));
    a->sq_tail = (a->sq_tail + 1) % a->size;
    vm_reg_write(a, VDPA_REG_AQ_SQ_TAIL, a->sq_tail);
    for (;;) {
        qtest_memread(a->qts, a->cq + (uint64_t)a->cq_head * VDPA_CQE_SIZE,
                      cqe, sizeof(cqe));
        if ((lduw_le_p(cqe + VDPA_CQE_FLAGS) & VDPA_CQE_PHASE) == a->phase) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        qtest_clock_step(a->qts, 1000);
        g_usleep(100);
    }
    *status = lduw_le_p(cqe + VDPA_CQE_STATUS);
    a->cq_head = (a->cq_head + 1) % a->size;
    if (!a->cq_head) {
        a->phase = !a->phase;
    }
    vm_reg_write(a, VDPA_REG_AQ_CQ_HEAD, a->cq_head);
    return true;
}

static void vdpa_exec_ok(VMAdmin *a, uint16_t op, uint32_t inst)
{
    VdpaCmd c = vm_cmd_new(a, op, inst);
    VMCqe e = vm_exec(a, &c);

    g_assert_cmpuint(e.status, ==, 0);
}

typedef struct VdpaWatch {
    VdpaDrv *v;
    uint16_t used[3][2];
} VdpaWatch;

static bool vdpa_changed(void *opaque)
{
    VdpaWatch *w = opaque;
    VdpaDrv *v = w->v;

    if (vm_reg_read(v->a, VDPA_REG_STATUS) & VDPA_STATUS_FATAL) {
        return true;
    }
    for (unsigned i = 0; i < v->ninst; i++) {
        for (int q = 0; q < 2; q++) {
            VMRing *ring = &v->ring[i][q];

            if (ring->mem &&
                qtest_readw(v->a->qts, ring->used + 2) != w->used[i][q]) {
                return true;
            }
        }
    }
    return false;
}

/*
 * Registers, a QUERY and a RESUME of every instance, then @kick; the
 * verdict from the admin completions and the rings.
 */
static MutTouch vdpa_touch_common(MutRun *r, void (*kick)(VdpaDrv *v))
{
    VdpaDrv *v = r->priv;
    VdpaWatch w = { .v = v };
    bool answered = false, aq_alive = true;
    uint16_t status;

    for (unsigned i = 0; i < v->ninst; i++) {
        for (int q = 0; q < 2; q++) {
            w.used[i][q] = v->ring[i][q].last_used;
        }
    }
    vm_reg_read(v->a, VDPA_REG_NUM_INST);
    if (vm_reg_read(v->a, VDPA_REG_STATUS) & VDPA_STATUS_FATAL) {
        return TOUCH_ERROR_STATE;
    }
    /* Once the admin queue stays silent, waiting on it again tells nothing */
    for (unsigned i = 0; i < v->ninst && aq_alive; i++) {
        VdpaCmd c = vm_cmd_new(v->a, VDPA_OP_QUERY, v->inst[i]);

        c.buf_addr = v->a->buf;
        c.buf_len = VDPA_QUERY_SIZE;
        aq_alive = vdpa_admin_try(v->a, &c, &status, r->touch_us);
        if (aq_alive) {
            c = vm_cmd_new(v->a, VDPA_OP_RESUME, v->inst[i]);
            aq_alive = vdpa_admin_try(v->a, &c, &status, r->touch_us);
        }
        answered |= aq_alive;
    }
    kick(v);
    answered |= mut_poll(r->qts, r->touch_us, vdpa_changed, &w);
    if (vm_reg_read(v->a, VDPA_REG_STATUS) & VDPA_STATUS_FATAL) {
        return TOUCH_ERROR_STATE;
    }
    return answered ? TOUCH_ANSWERED : TOUCH_SILENT;
}

/* ------------------------------------------------------------------ */
/* blk                                                                */

static char *vdpa_blk_args(MutRun *r)
{
    return g_strdup_printf("-M q35 -m %d -nodefaults "
                           "-object vpri-host,id=vh0 "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "host=vh0,max-instances=16", VDPA_RAM_MB,
                           r->img[0], r->img[1]);
}

/*
 * Three instances: 1 running with a read held on a fault of its data
 * page, 2 running on the other backend with I/O done, 3 configuring
 * (FEATURES_OK, two queues, no rings).
 */
static void vdpa_blk_source(MutRun *r)
{
    VdpaDrv *v;
    VMAdmin *a;
    uint64_t page;

    r->priv = v = g_new0(VdpaDrv, 1);
    vdpa_start(r);
    a = v->a;
    v->inst[0] = vm_bring_up(a, v->ring[0], VDPA_TYPE_BLK, 1, 0, NULL);
    v->inst[1] = vm_bring_up(a, v->ring[1], VDPA_TYPE_BLK, 1, 1, NULL);
    v->inst[2] = vm_create_blk(a, 2, 1);
    vm_set_status(a, v->inst[2], VDPA_ST_ACKNOWLEDGE | VDPA_ST_DRIVER |
                  VDPA_ST_FEATURES_OK, VM_F_VERSION_1);
    v->ninst = 3;
    vm_set_msi(a, v->inst[0], 0, v->msi, 0x5151, false);
    vm_set_msi(a, v->inst[1], 0, v->msi + 4, 0x5252, false);
    qtest_memset(r->qts, v->data, 0x31, 4096);
    g_assert_cmpint(vm_blk_io(a, &v->ring[0][0], v->inst[0], 0,
                              VDPA_BLK_T_OUT, 16, v->data, 4096), ==, 0);
    g_assert_cmpint(vm_blk_io(a, &v->ring[1][0], v->inst[1], 0,
                              VDPA_BLK_T_OUT, 24, v->data, 4096), ==, 0);

    /* Published while suspended, resumed with its data page evicted */
    vdpa_exec_ok(a, VDPA_OP_SUSPEND, v->inst[0]);
    vm_blk_post(a, &v->ring[0][0], v->inst[0], 0, VDPA_BLK_T_IN, 16,
                v->data + 4096, 4096);
    page = v->data + 4096;
    mut_vpri_evict_only(r->qts, &page, 1, VDPA_RAM_MB);
    mut_vpri_hold_faults(r->qts);
    vdpa_exec_ok(a, VDPA_OP_RESUME, v->inst[0]);
    mut_vpri_wait_pending(r->qts, 1);
}

static void vdpa_blk_kick(VdpaDrv *v)
{
    VMRing *ring = &v->ring[1][0];

    vm_blk_post(v->a, ring, v->inst[1], 0, VDPA_BLK_T_IN, 24, v->data,
                4096);
}

static MutTouch vdpa_blk_touch(MutRun *r)
{
    return vdpa_touch_common(r, vdpa_blk_kick);
}

static const char *const vdpa_sections[] = { "/vdpa-mgmt", NULL };

const MutScenario mut_vdpa_blk = {
    .name = "vdpa-blk",
    .qom_type = "vdpa-mgmt",
    .sections = vdpa_sections,
    .args = vdpa_blk_args,
    .source = vdpa_blk_source,
    .attach = vdpa_attach,
    .touch = vdpa_blk_touch,
};

/* ------------------------------------------------------------------ */
/* net                                                                */

static const uint8_t vdpa_mac[6] = { 0x52, 0x54, 0, 0, 0, 0x2a };

static char *vdpa_net_args(MutRun *r)
{
    VdpaDrv *v = r->priv;
    int peer = mut_net_pair(r);

    v->sock = mut_net_sock(r);
    return g_strdup_printf("-M q35 -m %d -nodefaults "
                           "-netdev socket,id=n0,fd=%d "
                           "-blockdev driver=file,node-name=d0,filename=%s,"
                           "locking=off "
                           "-blockdev driver=file,node-name=d1,filename=%s,"
                           "locking=off "
                           "-device vdpa-mgmt,id=vm0,blk-nodes=d0:d1,"
                           "netdev=n0,max-instances=16", VDPA_RAM_MB, peer,
                           r->img[0], r->img[1]);
}

/* A frame for our MAC on the wire: be32 length, then the frame */
static void vdpa_net_send(VdpaDrv *v, uint32_t len, uint8_t seq)
{
    uint8_t f[4 + 256];

    len = MIN(len, 256);
    stl_be_p(f, len);
    memcpy(f + 4, vdpa_mac, 6);
    memcpy(f + 10, "\x52\x54\x00\x00\x00\x01", 6);
    f[16] = 0x88;
    f[17] = 0xb5;
    memset(f + 18, seq, len - 14);
    if (write(v->sock, f, 4 + len) != 4 + len) {
        /* The verdict says what the device did */
    }
}

/*
 * A net instance with two queues: a frame received, a receive buffer
 * posted, and, while suspended, a transmit chain published.
 */
static void vdpa_net_source(MutRun *r)
{
    VdpaDrv *v;
    VMAdmin *a;
    uint64_t tx;

    r->priv = v = g_new0(VdpaDrv, 1);
    vdpa_start(r);
    a = v->a;
    v->inst[0] = vm_bring_up(a, v->ring[0], VDPA_TYPE_NET, 2, 0, vdpa_mac);
    v->ninst = 1;
    vm_set_msi(a, v->inst[0], 0, v->msi, 0x4e47, false);
    vm_ring_post(a, &v->ring[0][0], v->inst[0], 0, v->data, 2048, true);
    vdpa_net_send(v, 90, 5);
    g_assert_cmpint(vm_ring_wait(a, &v->ring[0][0], 10 * G_USEC_PER_SEC),
                    ==, 12 + 90);
    vm_ring_post(a, &v->ring[0][0], v->inst[0], 0, v->data + 2048, 2048,
                 true);
    vdpa_exec_ok(a, VDPA_OP_SUSPEND, v->inst[0]);
    tx = v->data + 4096;
    qtest_memset(r->qts, tx, 0, 12 + 140);
    vm_ring_post(a, &v->ring[0][1], v->inst[0], 1, tx, 12 + 140, false);
}

static void vdpa_net_kick(VdpaDrv *v)
{
    vdpa_net_send(v, 100, 8);
}

static MutTouch vdpa_net_touch(MutRun *r)
{
    return vdpa_touch_common(r, vdpa_net_kick);
}

const MutScenario mut_vdpa_net = {
    .name = "vdpa-net",
    .qom_type = "vdpa-mgmt",
    .sections = vdpa_sections,
    .args = vdpa_net_args,
    .source = vdpa_net_source,
    .attach = vdpa_attach,
    .touch = vdpa_net_touch,
};
