/*
 * libFuzzer harness: the vdpa-mgmt admin command codec
 * (hw/vdpa-mgmt/core/vdpa-cmd.c)
 *
 * The input is the device's limits (within what realize can produce: ids
 * up to VDPA_TABLE_MAX, PASIDs of at most 20 bits) followed by one 64-byte
 * submission entry.  Checked:
 *
 * - decode/encode: the framing (bytes 0..31) survives encode(decode(sqe)),
 *   and decode(encode(decode(sqe))) is decode(sqe);
 * - vdpa_cmd_check() accepts a command only if every rule of
 *   docs/vdpa-mgmt.rst holds, each re-derived here from the wire format
 *   (group type, reserved fields, opcode and member ranges, the result
 *   buffer inside the DMA space, per-opcode fields);
 * - vdpa_cmd_check_config() accepts only ranges inside the config space;
 * - completions and DISCOVER results carry what they were given.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/vdpa-mgmt/core/vdpa-cmd.h"
#include "hw/vdpa-mgmt/core/vdpa-table.h"     /* VDPA_TABLE_MAX */

/* [addr, addr + len) below 2^bits, computed in 128 bits */
static bool fuzz_below(uint64_t addr, uint64_t len, uint8_t bits)
{
    unsigned __int128 end = (unsigned __int128)addr + len;

    return bits >= 64 ? end <= ((unsigned __int128)1 << 64)
                      : end <= ((unsigned __int128)1 << bits);
}

static bool fuzz_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static uint32_t fuzz_min_buf(uint16_t op, uint32_t cfg_len)
{
    switch (op) {
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
        return cfg_len;
    }
    return 0;
}

/* An accepted command obeys the rules, read straight from the entry */
static void fuzz_check_accepted(const uint8_t *sqe, const VdpaLimits *lim)
{
    const uint8_t *a = sqe + VDPA_SQE_ARGS;
    uint16_t op = fuzz_ld16(sqe + VDPA_SQE_OPCODE);
    uint64_t member = fuzz_ld64(sqe + VDPA_SQE_MEMBER);
    uint64_t buf = fuzz_ld64(sqe + VDPA_SQE_BUF_ADDR);
    uint32_t buf_len = fuzz_ld32(sqe + VDPA_SQE_BUF_LEN);
    uint32_t need;

    FUZZ_ASSERT(fuzz_ld16(sqe + VDPA_SQE_GROUP_TYPE) == VDPA_GROUP_TYPE_MANAGED);
    FUZZ_ASSERT(op >= VDPA_OP_FIRST && op <= VDPA_OP_LAST);
    FUZZ_ASSERT(fuzz_ld16(sqe + VDPA_SQE_RSVD0) == 0);
    FUZZ_ASSERT(fuzz_ld32(sqe + VDPA_SQE_RSVD1) == 0);
    if (op == VDPA_OP_DISCOVER || op == VDPA_OP_CREATE || op == VDPA_OP_LIST) {
        FUZZ_ASSERT(member == 0);
    } else {
        FUZZ_ASSERT(member >= 1 && member <= lim->max_instances);
    }
    need = fuzz_min_buf(op, fuzz_ld32(a + VDPA_CFG_LENGTH));
    if (need) {
        FUZZ_ASSERT(buf_len >= need && buf != 0);
        FUZZ_ASSERT(fuzz_below(buf, buf_len, lim->dma_bits));
    }
    switch (op) {
    case VDPA_OP_CREATE: {
        uint8_t type = a[VDPA_CREATE_TYPE];
        uint16_t nq = fuzz_ld16(a + VDPA_CREATE_NQUEUES);

        FUZZ_ASSERT(type == VDPA_TYPE_NET || type == VDPA_TYPE_BLK);
        FUZZ_ASSERT(a[VDPA_CREATE_RSVD] == 0);
        FUZZ_ASSERT(nq >= 1 && nq <= lim->max_queues);
        FUZZ_ASSERT(type != VDPA_TYPE_NET || nq % 2 == 0);
        FUZZ_ASSERT(!(fuzz_ld64(a + VDPA_CREATE_FEATURES) &
                      ~lim->features[type]));
        FUZZ_ASSERT(fuzz_ld32(a + VDPA_CREATE_BACKEND) <
                    lim->num_backends[type]);
        break;
    }
    case VDPA_OP_QUEUE_SETUP: {
        uint16_t size = fuzz_ld16(a + VDPA_QS_SIZE);
        uint64_t desc = fuzz_ld64(a + VDPA_QS_DESC);
        uint64_t drv = fuzz_ld64(a + VDPA_QS_DRIVER);
        uint64_t dev = fuzz_ld64(a + VDPA_QS_DEVICE);

        FUZZ_ASSERT(fuzz_ld16(a + VDPA_QS_INDEX) < lim->max_queues);
        FUZZ_ASSERT(fuzz_ld16(a + VDPA_QS_RSVD) == 0);
        FUZZ_ASSERT(fuzz_ld16(a + VDPA_QS_ENABLE) <= 1);
        if (fuzz_ld16(a + VDPA_QS_ENABLE)) {
            FUZZ_ASSERT(fuzz_pow2(size) && size <= lim->max_queue_size);
            FUZZ_ASSERT(desc % 16 == 0 && drv % 2 == 0 && dev % 4 == 0);
            FUZZ_ASSERT(fuzz_below(desc, 16ull * size, lim->dma_bits));
            FUZZ_ASSERT(fuzz_below(drv, 6 + 2ull * size, lim->dma_bits));
            FUZZ_ASSERT(fuzz_below(dev, 6 + 8ull * size, lim->dma_bits));
        }
        break;
    }
    case VDPA_OP_SET_STATUS:
        FUZZ_ASSERT(!(a[VDPA_SS_STATUS] & VDPA_ST_NEEDS_RESET));
        break;
    case VDPA_OP_BIND_PASID: {
        uint32_t pasid = fuzz_ld32(a + VDPA_BP_PASID);

        FUZZ_ASSERT(lim->pasid_bits);
        FUZZ_ASSERT(pasid == VDPA_NO_PASID ||
                    pasid < (1ull << lim->pasid_bits));
        break;
    }
    case VDPA_OP_SET_QUEUE_MSI: {
        uint64_t addr = fuzz_ld64(a + VDPA_MSI_ADDR);

        FUZZ_ASSERT(fuzz_ld16(a + VDPA_MSI_QUEUE) < lim->max_queues);
        FUZZ_ASSERT(!(fuzz_ld16(a + VDPA_MSI_FLAGS) & ~VDPA_MSI_F_MASKED));
        FUZZ_ASSERT(addr && addr % 4 == 0);
        FUZZ_ASSERT(fuzz_below(addr, 4, lim->dma_bits));
        break;
    }
    case VDPA_OP_CONFIG_READ:
    case VDPA_OP_CONFIG_WRITE: {
        uint32_t len = fuzz_ld32(a + VDPA_CFG_LENGTH);

        FUZZ_ASSERT(len >= 1 && len <= VDPA_CFG_MAX);
        FUZZ_ASSERT(fuzz_ld32(a + VDPA_CFG_OFFSET) < VDPA_CFG_MAX);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: 32 bytes of limits, then the 64-byte submission entry.
 *   0..3 max_instances (1..VDPA_TABLE_MAX)   4..5 max_queues
 *   6 log2 max_queue_size (0..15)   7 dma_bits (0..64)
 *   8 pasid_bits (0..20)   9 bit n: type n offered
 *   10..11 config_size (<= VDPA_CFG_MAX)   12..15 backends
 *   16..31 features of net, blk
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t in[32 + VDPA_SQE_SIZE] = { 0 };
    const uint8_t *sqe = in + 32;
    uint8_t again[VDPA_SQE_SIZE], cqe[VDPA_CQE_SIZE], disc[VDPA_DISCOVER_SIZE];
    VdpaLimits lim;
    VdpaCmd cmd, cmd2;
    VdpaStatus st;

    memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
    memset(&lim, 0, sizeof(lim));
    lim.max_instances = fuzz_ld32(in) % VDPA_TABLE_MAX + 1;
    lim.max_queues = fuzz_ld16(in + 4);
    lim.max_queue_size = 1u << (in[6] % 16);
    lim.dma_bits = in[7] % 65;
    lim.pasid_bits = in[8] % 21;
    for (int t = VDPA_TYPE_NET; t <= VDPA_TYPE_BLK; t++) {
        lim.num_backends[t] = (in[9] & (1u << t)) ? in[12 + t] % 8 : 0;
        lim.config_size[t] = fuzz_ld16(in + 10) % (VDPA_CFG_MAX + 1);
        lim.features[t] = fuzz_ld64(in + 16 + 8 * (t - 1));
    }

    /* Codec */
    vdpa_cmd_decode(sqe, &cmd);
    vdpa_cmd_encode(&cmd, again);
    FUZZ_ASSERT(!memcmp(again, sqe, VDPA_SQE_ARGS));
    vdpa_cmd_decode(again, &cmd2);
    FUZZ_ASSERT(!memcmp(&cmd, &cmd2, sizeof(cmd)));
    FUZZ_ASSERT(vdpa_op_name(cmd.opcode) != NULL);
    FUZZ_ASSERT(vdpa_cmd_has_member(cmd.opcode) ==
                !(cmd.opcode == VDPA_OP_DISCOVER ||
                  cmd.opcode == VDPA_OP_CREATE || cmd.opcode == VDPA_OP_LIST));

    /* Validation */
    st = vdpa_cmd_check(&cmd, &lim);
    if (vdpa_ok(st)) {
        FUZZ_ASSERT(st.qual == VDPA_Q_OK);
        /* The re-encoded entry is what the rules are checked against */
        fuzz_check_accepted(again, &lim);
        if (cmd.opcode == VDPA_OP_CONFIG_READ ||
            cmd.opcode == VDPA_OP_CONFIG_WRITE) {
            for (int t = VDPA_TYPE_NET; t <= VDPA_TYPE_BLK; t++) {
                if (vdpa_ok(vdpa_cmd_check_config(&cmd, lim.config_size[t]))) {
                    FUZZ_ASSERT((uint64_t)cmd.u.cfg.offset + cmd.u.cfg.length <=
                                lim.config_size[t]);
                }
            }
        }
    } else {
        FUZZ_ASSERT(st.status != VDPA_S_OK);
    }
    FUZZ_ASSERT(vdpa_ok(vdpa_check_rings(cmd.u.queue.size, cmd.u.queue.desc,
                                         cmd.u.queue.driver,
                                         cmd.u.queue.device, lim.dma_bits)) ==
                (cmd.u.queue.desc % 16 == 0 && cmd.u.queue.driver % 2 == 0 &&
                 cmd.u.queue.device % 4 == 0 &&
                 fuzz_below(cmd.u.queue.desc, 16ull * cmd.u.queue.size,
                            lim.dma_bits) &&
                 fuzz_below(cmd.u.queue.driver, 6 + 2ull * cmd.u.queue.size,
                            lim.dma_bits) &&
                 fuzz_below(cmd.u.queue.device, 6 + 8ull * cmd.u.queue.size,
                            lim.dma_bits)));

    /* Completion and DISCOVER result */
    vdpa_cqe_encode(cqe, cmd.cid, st, sqe[0] & 1, cmd.member);
    FUZZ_ASSERT(fuzz_ld16(cqe + VDPA_CQE_CID) == cmd.cid);
    FUZZ_ASSERT(fuzz_ld16(cqe + VDPA_CQE_STATUS) == st.status);
    FUZZ_ASSERT(fuzz_ld16(cqe + VDPA_CQE_QUALIFIER) == st.qual);
    FUZZ_ASSERT(fuzz_ld16(cqe + VDPA_CQE_FLAGS) == (sqe[0] & 1));
    FUZZ_ASSERT(fuzz_ld64(cqe + VDPA_CQE_RESULT) == cmd.member);
    vdpa_discover_encode(&lim, fuzz_ld32(sqe + 8), disc);
    FUZZ_ASSERT(fuzz_ld32(disc + VDPA_DISC_MAX_INST) == lim.max_instances);
    FUZZ_ASSERT(fuzz_ld32(disc + VDPA_DISC_NUM_INST) == fuzz_ld32(sqe + 8));
    FUZZ_ASSERT(disc[VDPA_DISC_PASID_BITS] == lim.pasid_bits);
    FUZZ_ASSERT(fuzz_ld16(disc + VDPA_DISC_OPS_LO) == VDPA_OP_FIRST);
    FUZZ_ASSERT(fuzz_ld16(disc + VDPA_DISC_OPS_HI) == VDPA_OP_LAST);
    return 0;
}
