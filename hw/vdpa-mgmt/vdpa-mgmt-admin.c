/*
 * vdpa-mgmt: the admin command set, executed for the admin queue
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "block/block.h"
#include "block/block-global-state.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "trace.h"

/* Ids one LIST returns at most; the driver goes on from the next id */
#define VDPA_LIST_MAX_IDS 4096

static VdpaStatus vdpa_cmd_create(VdpaMgmt *s, VdpaInst *unused,
                                  const VdpaCmd *cmd, uint64_t *result)
{
    uint16_t nq = cmd->u.create.nqueues;
    VdpaInst *inst;
    uint32_t id;

    if (s->table.count >= s->table.max) {
        return vdpa_status(VDPA_S_ENOSPC, VDPA_Q_NORESOURCE);
    }
    inst = g_try_malloc0(sizeof(*inst) + nq * sizeof(VdpaQueue));
    if (!inst) {
        return vdpa_status(VDPA_S_ENOMEM, VDPA_Q_NORESOURCE);
    }
    inst->s = s;
    inst->type = cmd->u.create.type;
    inst->nqueues = nq;
    inst->backend = cmd->u.create.backend;
    inst->pasid = VDPA_NO_PASID;
    inst->as = pci_get_address_space(PCI_DEVICE(s));
    memcpy(inst->mac, cmd->u.create.mac, sizeof(inst->mac));
    if (inst->type == VDPA_TYPE_NET) {
        uint64_t key = vdpa_mac_key(inst->mac);

        /* A MAC is how frames find their instance: unique, unicast */
        if (!key || (inst->mac[0] & 1) ||
            g_hash_table_contains(s->macs, &key)) {
            g_free(inst);
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
        }
        inst->dev_features = s->limits.features[VDPA_TYPE_NET];
    } else {
        inst->dev_features = vdpa_blk_features(s, inst->backend, nq);
    }
    if (cmd->u.create.features) {
        inst->dev_features &= cmd->u.create.features;
    }
    vdpa_inst_reset(inst);
    id = vdpa_table_alloc(&s->table, inst);
    inst->id = id;
    if (inst->type == VDPA_TYPE_NET) {
        g_hash_table_insert(s->macs, g_memdup2(&(uint64_t) {
                                vdpa_mac_key(inst->mac) }, 8), inst);
    }
    s->created++;
    *result = id;
    trace_vdpa_mgmt_create(id, inst->type, nq, inst->backend);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_set_status(VdpaMgmt *s, VdpaInst *inst,
                                      const VdpaCmd *cmd, uint64_t *result)
{
    uint8_t new = cmd->u.status.status;
    uint8_t added = new & ~inst->status;

    if (new == 0) {
        vdpa_inst_reset(inst);
        return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
    }
    /* Bits only go away through a reset */
    if ((inst->status & ~VDPA_ST_NEEDS_RESET) & ~new) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    }
    if (added & VDPA_ST_FEATURES_OK) {
        uint64_t f = cmd->u.status.features;

        if ((f & ~inst->dev_features) ||
            !(f & (1ULL << VIRTIO_F_VERSION_1))) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
        }
        inst->drv_features = f;
    }
    if ((added & VDPA_ST_DRIVER_OK) && !(new & VDPA_ST_FEATURES_OK)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_STATE);
    }
    inst->status = new | (inst->status & VDPA_ST_NEEDS_RESET);
    if (added & VDPA_ST_DRIVER_OK) {
        for (uint16_t i = 0; i < inst->nqueues; i++) {
            if (inst->q[i].vq.enabled) {
                vdpa_queue_kick(inst->s, inst, i);
            }
        }
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static bool vdpa_ring_reachable(VdpaInst *inst, uint64_t addr, uint64_t len,
                                bool write)
{
    if (inst->pasid != VDPA_NO_PASID) {
        return vdpa_pasid_rw(inst, addr, NULL, len, write, NULL) == 0;
    }
    return address_space_access_valid(inst->as, addr, len, write,
                                      vdpa_attrs(inst->s));
}

static VdpaStatus vdpa_cmd_queue_setup(VdpaMgmt *s, VdpaInst *inst,
                                       const VdpaCmd *cmd, uint64_t *result)
{
    uint16_t qi = cmd->u.queue.index;
    uint16_t size = cmd->u.queue.size;
    VdpaQueue *q;

    if (qi >= inst->nqueues) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    }
    if (!(inst->status & VDPA_ST_FEATURES_OK) ||
        ((inst->status & VDPA_ST_DRIVER_OK) && !inst->suspended)) {
        return vdpa_status(VDPA_S_EBUSY, VDPA_Q_BAD_STATE);
    }
    q = &inst->q[qi];
    if (!cmd->u.queue.enable) {
        iolab_virtq_init(&q->vq);
        return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
    }
    if (!vdpa_ring_reachable(inst, cmd->u.queue.desc, VIRTQ_DESC_BYTES(size),
                             false) ||
        !vdpa_ring_reachable(inst, cmd->u.queue.driver,
                             VIRTQ_AVAIL_BYTES(size), false) ||
        !vdpa_ring_reachable(inst, cmd->u.queue.device,
                             VIRTQ_USED_BYTES(size), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    }
    iolab_virtq_configure(&q->vq, size, cmd->u.queue.desc, cmd->u.queue.driver,
                    cmd->u.queue.device,
                    inst->drv_features & (1ULL << VIRTIO_RING_F_EVENT_IDX),
                    inst->drv_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
    iolab_virtq_set_enabled(&q->vq, true);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_config(VdpaMgmt *s, VdpaInst *inst,
                                  const VdpaCmd *cmd, uint64_t *result)
{
    uint8_t cfg[VDPA_CFG_MAX] = { 0 };
    uint8_t in[VDPA_CFG_MAX];
    uint32_t off = cmd->u.cfg.offset, len = cmd->u.cfg.length;
    VdpaStatus st = vdpa_cmd_check_config(cmd, s->limits.config_size[inst->type]);

    if (!vdpa_ok(st)) {
        return st;
    }
    vdpa_inst_ops(inst)->get_config(inst, cfg);
    if (cmd->opcode == VDPA_OP_CONFIG_READ) {
        if (!vdpa_fn_dma(s, cmd->buf_addr, cfg + off, len, true)) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
        }
        return st;
    }
    if (!vdpa_fn_dma(s, cmd->buf_addr, in, len, false)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    /* Only blk's write-cache byte is writable; other writes are ignored */
    if (inst->type == VDPA_TYPE_BLK &&
        off <= offsetof(struct virtio_blk_config, wce) &&
        off + len > offsetof(struct virtio_blk_config, wce)) {
        inst->wce = !!in[offsetof(struct virtio_blk_config, wce) - off];
    }
    return st;
}

static VdpaStatus vdpa_cmd_msi(VdpaMgmt *s, VdpaInst *inst,
                               const VdpaCmd *cmd, uint64_t *result)
{
    VdpaQueue *q;
    bool now;

    if (cmd->u.msi.queue >= inst->nqueues) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    }
    q = &inst->q[cmd->u.msi.queue];
    if (!vdpa_msi_set(&q->msi, cmd->u.msi.addr, cmd->u.msi.data,
                      cmd->u.msi.flags & VDPA_MSI_F_MASKED,
                      inst->s->limits.dma_bits, &now)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    }
    if (now) {
        vdpa_send_msi(inst, &q->msi);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_query(VdpaMgmt *s, VdpaInst *inst,
                                 const VdpaCmd *cmd, uint64_t *result)
{
    uint8_t out[VDPA_QUERY_SIZE] = { 0 };
    uint32_t qen = 0;

    for (uint16_t i = 0; i < inst->nqueues && i < 32; i++) {
        qen |= inst->q[i].vq.enabled ? 1u << i : 0;
    }
    vdpa_st32(out + VDPA_QR_ID, inst->id);
    out[VDPA_QR_TYPE] = inst->type;
    out[VDPA_QR_STATUS] = inst->status;
    vdpa_st16(out + VDPA_QR_NQUEUES, inst->nqueues);
    vdpa_st32(out + VDPA_QR_PASID, inst->pasid);
    vdpa_st32(out + VDPA_QR_BACKEND, inst->backend);
    vdpa_st64(out + VDPA_QR_DEV_FEAT, inst->dev_features);
    vdpa_st64(out + VDPA_QR_DRV_FEAT, inst->drv_features);
    vdpa_st32(out + VDPA_QR_FLAGS, inst->suspended ? VDPA_QR_F_SUSPENDED : 0);
    vdpa_st32(out + VDPA_QR_QENABLED, qen);
    if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_stats(VdpaMgmt *s, VdpaInst *inst,
                                 const VdpaCmd *cmd, uint64_t *result)
{
    uint8_t out[VDPA_STATS_SIZE];

    vdpa_stats_save(&inst->stats, out);
    if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

/*
 * LIST: ids >= start as le32; result = count | next id to ask << 32.  At
 * most VDPA_LIST_MAX_IDS per command, each found by the table's index in
 * bounded time: one command's work is bounded, whatever the table holds.
 */
static VdpaStatus vdpa_cmd_list(VdpaMgmt *s, VdpaInst *unused,
                                const VdpaCmd *cmd, uint64_t *result)
{
    uint32_t room = MIN(cmd->buf_len / 4, VDPA_LIST_MAX_IDS), n = 0;
    g_autofree uint8_t *out = g_malloc(MIN(room, s->table.count + 1) * 4);
    uint32_t id = vdpa_table_next(&s->table, cmd->u.list.start);

    while (id && n < room && n <= s->table.count) {
        vdpa_st32(out + 4 * n++, id);
        id = vdpa_table_next(&s->table, (uint64_t)id + 1);
    }
    if (n && !vdpa_fn_dma(s, cmd->buf_addr, out, n * 4, true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    *result = n | (uint64_t)id << 32;
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_bind_pasid(VdpaMgmt *s, VdpaInst *inst,
                                      const VdpaCmd *cmd, uint64_t *result)
{
    uint32_t pasid = cmd->u.pasid.pasid;

    /* The DMA context does not change under running queues */
    if ((inst->status & VDPA_ST_DRIVER_OK) && !inst->suspended) {
        return vdpa_status(VDPA_S_EBUSY, VDPA_Q_BAD_STATE);
    }
    if (pasid == VDPA_NO_PASID && inst->pasid == VDPA_NO_PASID) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_PASID_UNBOUND);
    }
    /* PCIe: no PASID-tagged requests before the guest enabled PASID */
    if (pasid != VDPA_NO_PASID && !vdpa_pasid_enabled(inst->s)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_PASID_DISABLED);
    }
    /*
     * vdpa_cmd_check() refused PASIDs beyond limits.pasid_bits, which is
     * 0 without a vIOMMU that translates PASID-tagged DMA: nothing else
     * to check, and nothing to allocate per PASID.
     */
    vdpa_inst_quiesce(inst);
    inst->pasid = pasid;
    trace_vdpa_mgmt_bind_pasid(inst->id, pasid);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_discover(VdpaMgmt *s, VdpaInst *unused,
                                    const VdpaCmd *cmd, uint64_t *result)
{
    uint8_t out[VDPA_DISCOVER_SIZE];

    vdpa_discover_encode(&s->limits, s->table.count, out);
    if (!vdpa_fn_dma(s, cmd->buf_addr, out, sizeof(out), true)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_destroy(VdpaMgmt *s, VdpaInst *inst,
                                   const VdpaCmd *cmd, uint64_t *result)
{
    vdpa_inst_free(s, inst);
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_suspend(VdpaMgmt *s, VdpaInst *inst,
                                   const VdpaCmd *cmd, uint64_t *result)
{
    vdpa_inst_quiesce(inst);
    inst->suspended = true;
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_cmd_resume(VdpaMgmt *s, VdpaInst *inst,
                                  const VdpaCmd *cmd, uint64_t *result)
{
    if (inst->suspended) {
        inst->suspended = false;
        for (uint16_t i = 0; i < inst->nqueues; i++) {
            if (inst->q[i].vq.enabled) {
                vdpa_queue_kick(s, inst, i);
            }
        }
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

/*
 * A command's handler: @inst is the member instance for the commands
 * that name one (vdpa_cmd_has_member()), NULL for the others.  The codec
 * (core/vdpa-cmd.c) checked framing, member range, buffer length and
 * field ranges before.
 */
typedef VdpaStatus VdpaCmdHandler(VdpaMgmt *s, VdpaInst *inst,
                                  const VdpaCmd *cmd, uint64_t *result);

typedef struct VdpaAdminCmd {
    VdpaCmdHandler *handler;
} VdpaAdminCmd;

#define VDPA_CMD(op) [VDPA_OP_##op - VDPA_OP_FIRST]
#define VDPA_NUM_OPS (VDPA_OP_LAST - VDPA_OP_FIRST + 1)

/* The command set, one row per opcode (docs/vdpa-mgmt.rst) */
static const VdpaAdminCmd vdpa_admin_cmds[VDPA_NUM_OPS] = {
    VDPA_CMD(DISCOVER)      = { vdpa_cmd_discover },
    VDPA_CMD(CREATE)        = { vdpa_cmd_create },
    VDPA_CMD(DESTROY)       = { vdpa_cmd_destroy },
    VDPA_CMD(QUERY)         = { vdpa_cmd_query },
    VDPA_CMD(LIST)          = { vdpa_cmd_list },
    VDPA_CMD(CONFIG_READ)   = { vdpa_cmd_config },
    VDPA_CMD(CONFIG_WRITE)  = { vdpa_cmd_config },
    VDPA_CMD(QUEUE_SETUP)   = { vdpa_cmd_queue_setup },
    VDPA_CMD(SET_STATUS)    = { vdpa_cmd_set_status },
    VDPA_CMD(BIND_PASID)    = { vdpa_cmd_bind_pasid },
    VDPA_CMD(SET_QUEUE_MSI) = { vdpa_cmd_msi },
    VDPA_CMD(SUSPEND)       = { vdpa_cmd_suspend },
    VDPA_CMD(RESUME)        = { vdpa_cmd_resume },
    VDPA_CMD(STATS)         = { vdpa_cmd_stats },
};

VdpaStatus vdpa_execute(VdpaMgmt *s, const VdpaCmd *cmd, uint64_t *result)
{
    VdpaStatus st = vdpa_cmd_check(cmd, &s->limits);
    VdpaInst *inst = NULL;

    *result = 0;
    if (!vdpa_ok(st)) {
        return st;
    }
    if (vdpa_cmd_has_member(cmd->opcode)) {
        inst = vdpa_table_get(&s->table, cmd->member);
        if (!inst) {
            return vdpa_status(VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
        }
        vdpa_mig_mark(s, inst->id);
    }
    /* vdpa_cmd_check() refused opcodes outside the table */
    st = vdpa_admin_cmds[cmd->opcode - VDPA_OP_FIRST].handler(s, inst, cmd,
                                                              result);
    if (cmd->opcode == VDPA_OP_CREATE && vdpa_ok(st)) {
        vdpa_mig_mark(s, *result);
    }
    return st;
}
