/*
 * vdpa-mgmt core: admin command codec and stateless validation
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "hw/vdpa-mgmt/core/vdpa-cmd.h"

#define INVALID_FIELD vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD)

void vdpa_cmd_decode(const uint8_t sqe[VDPA_SQE_SIZE], VdpaCmd *cmd)
{
    const uint8_t *a = sqe + VDPA_SQE_ARGS;

    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = vdpa_ld16(sqe + VDPA_SQE_OPCODE);
    cmd->group_type = vdpa_ld16(sqe + VDPA_SQE_GROUP_TYPE);
    cmd->cid = vdpa_ld16(sqe + VDPA_SQE_CID);
    cmd->rsvd0 = vdpa_ld16(sqe + VDPA_SQE_RSVD0);
    cmd->member = vdpa_ld64(sqe + VDPA_SQE_MEMBER);
    cmd->buf_addr = vdpa_ld64(sqe + VDPA_SQE_BUF_ADDR);
    cmd->buf_len = vdpa_ld32(sqe + VDPA_SQE_BUF_LEN);
    cmd->rsvd1 = vdpa_ld32(sqe + VDPA_SQE_RSVD1);

    switch (cmd->opcode) {
    case VDPA_OP_CREATE:
        cmd->u.create.type = a[VDPA_CREATE_TYPE];
        cmd->u.create.rsvd = a[VDPA_CREATE_RSVD];
        cmd->u.create.nqueues = vdpa_ld16(a + VDPA_CREATE_NQUEUES);
        cmd->u.create.backend = vdpa_ld32(a + VDPA_CREATE_BACKEND);
        cmd->u.create.features = vdpa_ld64(a + VDPA_CREATE_FEATURES);
        memcpy(cmd->u.create.mac, a + VDPA_CREATE_MAC, 6);
        break;
    case VDPA_OP_QUEUE_SETUP:
        cmd->u.queue.index = vdpa_ld16(a + VDPA_QS_INDEX);
        cmd->u.queue.size = vdpa_ld16(a + VDPA_QS_SIZE);
        cmd->u.queue.enable = vdpa_ld16(a + VDPA_QS_ENABLE);
        cmd->u.queue.rsvd = vdpa_ld16(a + VDPA_QS_RSVD);
        cmd->u.queue.desc = vdpa_ld64(a + VDPA_QS_DESC);
        cmd->u.queue.driver = vdpa_ld64(a + VDPA_QS_DRIVER);
        cmd->u.queue.device = vdpa_ld64(a + VDPA_QS_DEVICE);
        break;
    case VDPA_OP_SET_STATUS:
        cmd->u.status.status = a[VDPA_SS_STATUS];
        cmd->u.status.features = vdpa_ld64(a + VDPA_SS_FEATURES);
        break;
    case VDPA_OP_BIND_PASID:
        cmd->u.pasid.pasid = vdpa_ld32(a + VDPA_BP_PASID);
        break;
    case VDPA_OP_SET_QUEUE_MSI:
        cmd->u.msi.queue = vdpa_ld16(a + VDPA_MSI_QUEUE);
        cmd->u.msi.flags = vdpa_ld16(a + VDPA_MSI_FLAGS);
        cmd->u.msi.data = vdpa_ld32(a + VDPA_MSI_DATA);
        cmd->u.msi.addr = vdpa_ld64(a + VDPA_MSI_ADDR);
        break;
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE:
        cmd->u.cfg.offset = vdpa_ld32(a + VDPA_CFG_OFFSET);
        cmd->u.cfg.length = vdpa_ld32(a + VDPA_CFG_LENGTH);
        break;
    case VDPA_OP_LIST:
        cmd->u.list.start = vdpa_ld32(a + VDPA_LIST_START);
        break;
    default:
        break;
    }
}

void vdpa_cmd_encode(const VdpaCmd *cmd, uint8_t sqe[VDPA_SQE_SIZE])
{
    uint8_t *a = sqe + VDPA_SQE_ARGS;

    memset(sqe, 0, VDPA_SQE_SIZE);
    vdpa_st16(sqe + VDPA_SQE_OPCODE, cmd->opcode);
    vdpa_st16(sqe + VDPA_SQE_GROUP_TYPE, cmd->group_type);
    vdpa_st16(sqe + VDPA_SQE_CID, cmd->cid);
    vdpa_st16(sqe + VDPA_SQE_RSVD0, cmd->rsvd0);
    vdpa_st64(sqe + VDPA_SQE_MEMBER, cmd->member);
    vdpa_st64(sqe + VDPA_SQE_BUF_ADDR, cmd->buf_addr);
    vdpa_st32(sqe + VDPA_SQE_BUF_LEN, cmd->buf_len);
    vdpa_st32(sqe + VDPA_SQE_RSVD1, cmd->rsvd1);

    switch (cmd->opcode) {
    case VDPA_OP_CREATE:
        a[VDPA_CREATE_TYPE] = cmd->u.create.type;
        a[VDPA_CREATE_RSVD] = cmd->u.create.rsvd;
        vdpa_st16(a + VDPA_CREATE_NQUEUES, cmd->u.create.nqueues);
        vdpa_st32(a + VDPA_CREATE_BACKEND, cmd->u.create.backend);
        vdpa_st64(a + VDPA_CREATE_FEATURES, cmd->u.create.features);
        memcpy(a + VDPA_CREATE_MAC, cmd->u.create.mac, 6);
        break;
    case VDPA_OP_QUEUE_SETUP:
        vdpa_st16(a + VDPA_QS_INDEX, cmd->u.queue.index);
        vdpa_st16(a + VDPA_QS_SIZE, cmd->u.queue.size);
        vdpa_st16(a + VDPA_QS_ENABLE, cmd->u.queue.enable);
        vdpa_st16(a + VDPA_QS_RSVD, cmd->u.queue.rsvd);
        vdpa_st64(a + VDPA_QS_DESC, cmd->u.queue.desc);
        vdpa_st64(a + VDPA_QS_DRIVER, cmd->u.queue.driver);
        vdpa_st64(a + VDPA_QS_DEVICE, cmd->u.queue.device);
        break;
    case VDPA_OP_SET_STATUS:
        a[VDPA_SS_STATUS] = cmd->u.status.status;
        vdpa_st64(a + VDPA_SS_FEATURES, cmd->u.status.features);
        break;
    case VDPA_OP_BIND_PASID:
        vdpa_st32(a + VDPA_BP_PASID, cmd->u.pasid.pasid);
        break;
    case VDPA_OP_SET_QUEUE_MSI:
        vdpa_st16(a + VDPA_MSI_QUEUE, cmd->u.msi.queue);
        vdpa_st16(a + VDPA_MSI_FLAGS, cmd->u.msi.flags);
        vdpa_st32(a + VDPA_MSI_DATA, cmd->u.msi.data);
        vdpa_st64(a + VDPA_MSI_ADDR, cmd->u.msi.addr);
        break;
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE:
        vdpa_st32(a + VDPA_CFG_OFFSET, cmd->u.cfg.offset);
        vdpa_st32(a + VDPA_CFG_LENGTH, cmd->u.cfg.length);
        break;
    case VDPA_OP_LIST:
        vdpa_st32(a + VDPA_LIST_START, cmd->u.list.start);
        break;
    default:
        break;
    }
}

bool vdpa_cmd_has_member(uint16_t opcode)
{
    return opcode != VDPA_OP_DISCOVER && opcode != VDPA_OP_CREATE &&
           opcode != VDPA_OP_LIST;
}

uint32_t vdpa_cmd_min_buf(const VdpaCmd *cmd)
{
    switch (cmd->opcode) {
    case VDPA_OP_DISCOVER:
        return VDPA_DISCOVER_SIZE;
    case VDPA_OP_QUERY:
        return VDPA_QUERY_SIZE;
    case VDPA_OP_STATS:
        return VDPA_STATS_SIZE;
    case VDPA_OP_LIST:
        return 4;
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE:
        return cmd->u.cfg.length;
    default:
        return 0;
    }
}

static bool vdpa_is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* [addr, addr + len) lies below 1 << bits */
static bool vdpa_in_dma_range(uint64_t addr, uint64_t len, uint8_t bits)
{
    uint64_t limit = bits >= 64 ? UINT64_MAX : (1ULL << bits);

    return addr <= limit && len <= limit - addr;
}

VdpaStatus vdpa_check_rings(uint16_t size, uint64_t desc, uint64_t driver,
                            uint64_t device, uint8_t dma_bits)
{
    if (desc % 16 || driver % 2 || device % 4) {
        return INVALID_FIELD;
    }
    if (!vdpa_in_dma_range(desc, 16ULL * size, dma_bits) ||
        !vdpa_in_dma_range(driver, 6 + 2ULL * size, dma_bits) ||
        !vdpa_in_dma_range(device, 6 + 8ULL * size, dma_bits)) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_check_create(const VdpaCmd *cmd, const VdpaLimits *lim)
{
    uint8_t type = cmd->u.create.type;

    if ((type != VDPA_TYPE_NET && type != VDPA_TYPE_BLK) ||
        !lim->num_backends[type]) {
        return INVALID_FIELD;
    }
    if (cmd->u.create.rsvd || !cmd->u.create.nqueues ||
        cmd->u.create.nqueues > lim->max_queues ||
        (cmd->u.create.features & ~lim->features[type])) {
        return INVALID_FIELD;
    }
    /* virtio-net data queues come in rx/tx pairs */
    if (type == VDPA_TYPE_NET && cmd->u.create.nqueues % 2) {
        return INVALID_FIELD;
    }
    if (cmd->u.create.backend >= lim->num_backends[type]) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_BACKEND);
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

static VdpaStatus vdpa_check_queue(const VdpaCmd *cmd, const VdpaLimits *lim)
{
    if (cmd->u.queue.index >= lim->max_queues) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    }
    if (cmd->u.queue.rsvd || cmd->u.queue.enable > 1) {
        return INVALID_FIELD;
    }
    if (!cmd->u.queue.enable) {
        return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
    }
    if (!vdpa_is_pow2(cmd->u.queue.size) ||
        cmd->u.queue.size > lim->max_queue_size) {
        return INVALID_FIELD;
    }
    return vdpa_check_rings(cmd->u.queue.size, cmd->u.queue.desc,
                            cmd->u.queue.driver, cmd->u.queue.device,
                            lim->dma_bits);
}

VdpaStatus vdpa_cmd_check(const VdpaCmd *cmd, const VdpaLimits *lim)
{
    uint32_t need;

    if (cmd->group_type != VDPA_GROUP_TYPE_MANAGED) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_GROUP);
    }
    if (cmd->opcode < VDPA_OP_FIRST || cmd->opcode > VDPA_OP_LAST) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
    }
    if (cmd->rsvd0 || cmd->rsvd1) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_COMMAND);
    }
    if (vdpa_cmd_has_member(cmd->opcode)) {
        if (cmd->member == 0 || cmd->member > lim->max_instances) {
            return vdpa_status(VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
        }
    } else if (cmd->member) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_INVALID_MEMBER);
    }

    need = vdpa_cmd_min_buf(cmd);
    if (need && (cmd->buf_len < need || !cmd->buf_addr ||
                 !vdpa_in_dma_range(cmd->buf_addr, cmd->buf_len,
                                    lim->dma_bits))) {
        return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    }

    switch (cmd->opcode) {
    case VDPA_OP_CREATE:
        return vdpa_check_create(cmd, lim);
    case VDPA_OP_QUEUE_SETUP:
        return vdpa_check_queue(cmd, lim);
    case VDPA_OP_SET_STATUS:
        /* NEEDS_RESET is the device's to set */
        if (cmd->u.status.status & VDPA_ST_NEEDS_RESET) {
            return INVALID_FIELD;
        }
        break;
    case VDPA_OP_BIND_PASID:
        if (!lim->pasid_bits) {
            return vdpa_status(VDPA_S_ENXIO, VDPA_Q_PASID_UNSUPP);
        }
        if (cmd->u.pasid.pasid != VDPA_NO_PASID &&
            cmd->u.pasid.pasid >= (1u << lim->pasid_bits)) {
            return INVALID_FIELD;
        }
        break;
    case VDPA_OP_SET_QUEUE_MSI:
        if (cmd->u.msi.queue >= lim->max_queues) {
            return vdpa_status(VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
        }
        if (cmd->u.msi.flags & ~VDPA_MSI_F_MASKED || cmd->u.msi.addr % 4 ||
            !cmd->u.msi.addr ||
            !vdpa_in_dma_range(cmd->u.msi.addr, 4, lim->dma_bits)) {
            return INVALID_FIELD;
        }
        break;
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE:
        if (!cmd->u.cfg.length || cmd->u.cfg.length > VDPA_CFG_MAX ||
            cmd->u.cfg.offset >= VDPA_CFG_MAX) {
            return INVALID_FIELD;
        }
        break;
    default:
        break;
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

VdpaStatus vdpa_cmd_check_config(const VdpaCmd *cmd, uint16_t config_size)
{
    if (cmd->u.cfg.offset > config_size ||
        cmd->u.cfg.length > config_size - cmd->u.cfg.offset) {
        return INVALID_FIELD;
    }
    return vdpa_status(VDPA_S_OK, VDPA_Q_OK);
}

void vdpa_cqe_encode(uint8_t cqe[VDPA_CQE_SIZE], uint16_t cid, VdpaStatus st,
                     bool phase, uint64_t result)
{
    vdpa_st16(cqe + VDPA_CQE_CID, cid);
    vdpa_st16(cqe + VDPA_CQE_STATUS, st.status);
    vdpa_st16(cqe + VDPA_CQE_QUALIFIER, st.qual);
    vdpa_st16(cqe + VDPA_CQE_FLAGS, phase ? VDPA_CQE_PHASE : 0);
    vdpa_st64(cqe + VDPA_CQE_RESULT, result);
}

void vdpa_discover_encode(const VdpaLimits *lim, uint32_t num_instances,
                          uint8_t out[VDPA_DISCOVER_SIZE])
{
    uint16_t cfg = lim->config_size[VDPA_TYPE_NET];

    if (lim->config_size[VDPA_TYPE_BLK] > cfg) {
        cfg = lim->config_size[VDPA_TYPE_BLK];
    }
    memset(out, 0, VDPA_DISCOVER_SIZE);
    vdpa_st32(out + VDPA_DISC_MAX_INST, lim->max_instances);
    vdpa_st32(out + VDPA_DISC_NUM_INST, num_instances);
    vdpa_st16(out + VDPA_DISC_MAX_QUEUES, lim->max_queues);
    vdpa_st16(out + VDPA_DISC_MAX_QSIZE, lim->max_queue_size);
    vdpa_st32(out + VDPA_DISC_TYPES,
              (lim->num_backends[VDPA_TYPE_NET] ? 1u << VDPA_TYPE_NET : 0) |
              (lim->num_backends[VDPA_TYPE_BLK] ? 1u << VDPA_TYPE_BLK : 0));
    vdpa_st64(out + VDPA_DISC_NET_FEAT, lim->features[VDPA_TYPE_NET]);
    vdpa_st64(out + VDPA_DISC_BLK_FEAT, lim->features[VDPA_TYPE_BLK]);
    vdpa_st32(out + VDPA_DISC_NUM_BLK, lim->num_backends[VDPA_TYPE_BLK]);
    vdpa_st32(out + VDPA_DISC_NUM_NET, lim->num_backends[VDPA_TYPE_NET]);
    out[VDPA_DISC_PASID_BITS] = lim->pasid_bits;
    out[VDPA_DISC_DMA_BITS] = lim->dma_bits;
    vdpa_st16(out + VDPA_DISC_CFG_SIZE, cfg);
    vdpa_st16(out + VDPA_DISC_OPS_LO, VDPA_OP_FIRST);
    vdpa_st16(out + VDPA_DISC_OPS_HI, VDPA_OP_LAST);
}

const char *vdpa_op_name(uint16_t opcode)
{
    static const char *const names[] = {
        "discover", "create", "destroy", "query", "list", "config-read",
        "config-write", "queue-setup", "set-status", "bind-pasid",
        "set-queue-msi", "suspend", "resume", "stats",
    };

    if (opcode < VDPA_OP_FIRST || opcode > VDPA_OP_LAST) {
        return "unknown";
    }
    return names[opcode - VDPA_OP_FIRST];
}
