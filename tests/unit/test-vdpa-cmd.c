/*
 * Unit tests for the vdpa-mgmt admin command codec and validation
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/vdpa-mgmt/core/vdpa-cmd.h"

static const VdpaLimits lim = {
    .max_instances = 65536,
    .max_queues = 8,
    .max_queue_size = 1024,
    .features = { 0, 0x3ff, 0xfff },
    .num_backends = { 0, 1, 4 },
    .config_size = { 0, 12, 60 },
    .dma_bits = 39,
    .pasid_bits = 20,
};

static VdpaCmd base(uint16_t op, uint64_t member)
{
    VdpaCmd c;

    memset(&c, 0, sizeof(c));
    c.opcode = op;
    c.group_type = VDPA_GROUP_TYPE_MANAGED;
    c.cid = 7;
    c.member = member;
    return c;
}

/* Encode, decode, check: what the device sees of what the driver wrote */
static VdpaStatus roundtrip_check(const VdpaCmd *c, VdpaCmd *out)
{
    uint8_t sqe[VDPA_SQE_SIZE];
    VdpaCmd tmp;

    vdpa_cmd_encode(c, sqe);
    vdpa_cmd_decode(sqe, out ? out : &tmp);
    return vdpa_cmd_check(out ? out : &tmp, &lim);
}

static void expect(VdpaStatus s, uint16_t status, uint16_t qual)
{
    assert_int_equal(s.status, status);
    assert_int_equal(s.qual, qual);
}

static void test_layout(void **state)
{
    uint8_t sqe[VDPA_SQE_SIZE];
    VdpaCmd c = base(VDPA_OP_QUEUE_SETUP, 0x1234), d;

    c.buf_addr = 0x1122334455667788ULL;
    c.buf_len = 0xaabbccdd;
    c.u.queue.index = 3;
    c.u.queue.size = 256;
    c.u.queue.enable = 1;
    c.u.queue.desc = 0x10000;
    c.u.queue.driver = 0x20000;
    c.u.queue.device = 0x30000;
    vdpa_cmd_encode(&c, sqe);
    /* Byte positions are the documented ones, little-endian */
    assert_int_equal(sqe[0], 0x07);
    assert_int_equal(sqe[1], 0x10);
    assert_int_equal(sqe[2], 0x01);
    assert_int_equal(sqe[3], 0x80);
    assert_int_equal(sqe[4], 7);
    assert_int_equal(sqe[8], 0x34);
    assert_int_equal(sqe[9], 0x12);
    assert_int_equal(sqe[16], 0x88);
    assert_int_equal(sqe[23], 0x11);
    assert_int_equal(sqe[24], 0xdd);
    assert_int_equal(sqe[32], 3);
    assert_int_equal(sqe[34], 0x00);
    assert_int_equal(sqe[35], 0x01);
    assert_int_equal(sqe[36], 1);
    assert_int_equal(sqe[40 + 2], 0x01);
    assert_int_equal(sqe[48 + 2], 0x02);
    assert_int_equal(sqe[56 + 2], 0x03);
    vdpa_cmd_decode(sqe, &d);
    assert_memory_equal(&c, &d, sizeof(c));
    (void)state;
}

static void test_roundtrip_all_ops(void **state)
{
    VdpaCmd c, d;

    c = base(VDPA_OP_CREATE, 0);
    c.u.create.type = VDPA_TYPE_NET;
    c.u.create.nqueues = 2;
    c.u.create.features = 0x21;
    memcpy(c.u.create.mac, "\x52\x54\x00\x12\x34\x56", 6);
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    c = base(VDPA_OP_SET_QUEUE_MSI, 9);
    c.u.msi.queue = 1;
    c.u.msi.flags = VDPA_MSI_F_MASKED;
    c.u.msi.data = 0xdeadbeef;
    c.u.msi.addr = 0xfee01000;
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    c = base(VDPA_OP_SET_STATUS, 9);
    c.u.status.status = VDPA_ST_DRIVER_OK | VDPA_ST_FEATURES_OK;
    c.u.status.features = 0x123456789ULL;
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    c = base(VDPA_OP_BIND_PASID, 9);
    c.u.pasid.pasid = 0xabcde;
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    c = base(VDPA_OP_CONFIG_WRITE, 9);
    c.u.cfg.offset = 4;
    c.u.cfg.length = 8;
    c.buf_addr = 0x1000;
    c.buf_len = 8;
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    c = base(VDPA_OP_LIST, 0);
    c.u.list.start = 77;
    c.buf_addr = 0x1000;
    c.buf_len = 4096;
    expect(roundtrip_check(&c, &d), VDPA_S_OK, VDPA_Q_OK);
    assert_memory_equal(&c, &d, sizeof(c));

    for (uint16_t op = VDPA_OP_FIRST; op <= VDPA_OP_LAST; op++) {
        assert_string_not_equal(vdpa_op_name(op), "unknown");
    }
    assert_string_equal(vdpa_op_name(0x2000), "unknown");
    (void)state;
}

static void test_framing_errors(void **state)
{
    VdpaCmd c = base(VDPA_OP_DESTROY, 1);

    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.group_type = 1;           /* SR-IOV group: not ours */
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_GROUP);
    c = base(0x0fff, 1);
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
    c = base(VDPA_OP_LAST + 1, 1);
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_OPCODE);
    c = base(VDPA_OP_DESTROY, 1);
    c.rsvd0 = 1;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_COMMAND);
    c = base(VDPA_OP_DESTROY, 1);
    c.rsvd1 = 1;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_COMMAND);
    (void)state;
}

static void test_member_range(void **state)
{
    VdpaCmd c = base(VDPA_OP_SUSPEND, 0);

    expect(vdpa_cmd_check(&c, &lim), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
    c.member = 65536;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.member = 65537;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
    c.member = 1ULL << 40;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_ENXIO, VDPA_Q_INVALID_MEMBER);
    /* Function-wide commands take no member */
    c = base(VDPA_OP_DISCOVER, 3);
    c.buf_addr = 0x1000;
    c.buf_len = 64;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_MEMBER);
    (void)state;
}

static void test_buffers(void **state)
{
    VdpaCmd c = base(VDPA_OP_DISCOVER, 0);

    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    c.buf_addr = 0x1000;
    c.buf_len = 63;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    c.buf_len = 64;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.buf_addr = (1ULL << 39) - 32;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    c.buf_addr = UINT64_MAX - 8;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);

    c = base(VDPA_OP_STATS, 1);
    c.buf_addr = 0x2000;
    c.buf_len = 32;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BUF_RANGE);
    c = base(VDPA_OP_QUERY, 1);
    c.buf_addr = 0x2000;
    c.buf_len = 64;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    (void)state;
}

static void test_create(void **state)
{
    VdpaCmd c = base(VDPA_OP_CREATE, 0);

    c.u.create.type = VDPA_TYPE_BLK;
    c.u.create.nqueues = 1;
    c.u.create.backend = 3;
    c.u.create.features = 0xfff;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.create.backend = 4;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BAD_BACKEND);
    c.u.create.backend = 0;
    c.u.create.features = 0x1000;   /* not offered */
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.features = 0;
    c.u.create.nqueues = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.nqueues = 9;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.nqueues = 8;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.create.type = 3;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.type = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.type = VDPA_TYPE_NET;
    c.u.create.nqueues = 3;         /* rx/tx pairs only */
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.create.nqueues = 2;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.create.rsvd = 1;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);

    /* A type with no backend is not offered */
    VdpaLimits nonet = lim;

    nonet.num_backends[VDPA_TYPE_NET] = 0;
    c.u.create.rsvd = 0;
    expect(vdpa_cmd_check(&c, &nonet), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    (void)state;
}

static void test_queue_setup(void **state)
{
    VdpaCmd c = base(VDPA_OP_QUEUE_SETUP, 5);

    c.u.queue.index = 7;
    c.u.queue.size = 1024;
    c.u.queue.enable = 1;
    c.u.queue.desc = 0x10000;
    c.u.queue.driver = 0x20002;
    c.u.queue.device = 0x30004;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.queue.index = 8;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);
    c.u.queue.index = 0;
    c.u.queue.size = 2048;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.queue.size = 100;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.queue.size = 256;
    c.u.queue.desc = 0x10008;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.queue.desc = 0x10000;
    c.u.queue.device = 0x30002;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.queue.device = 0x30000;
    c.u.queue.driver = 0x20001;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.queue.driver = 0x20000;
    /* The used ring ends past the DMA space: out of range */
    c.u.queue.device = (1ULL << 39) - 64;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    c.u.queue.device = 0xfffffffffffffff0ULL;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_RING_RANGE);
    /* Disabling ignores the geometry */
    c.u.queue.enable = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.queue.enable = 2;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    (void)state;
}

static void test_pasid_msi_status_config(void **state)
{
    VdpaCmd c = base(VDPA_OP_BIND_PASID, 5);
    VdpaLimits nopasid = lim;

    c.u.pasid.pasid = VDPA_MAX_PASID;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.pasid.pasid = VDPA_MAX_PASID + 1;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.pasid.pasid = VDPA_NO_PASID;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    nopasid.pasid_bits = 0;
    c.u.pasid.pasid = 1;
    expect(vdpa_cmd_check(&c, &nopasid), VDPA_S_ENXIO, VDPA_Q_PASID_UNSUPP);

    c = base(VDPA_OP_SET_QUEUE_MSI, 5);
    c.u.msi.addr = 0xfee00000;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    c.u.msi.addr = 0xfee00002;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.msi.addr = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.msi.addr = 0xfee00000;
    c.u.msi.flags = 2;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.msi.flags = 0;
    c.u.msi.queue = 8;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_BAD_QUEUE);

    c = base(VDPA_OP_SET_STATUS, 5);
    c.u.status.status = VDPA_ST_NEEDS_RESET;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.status.status = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);

    c = base(VDPA_OP_CONFIG_READ, 5);
    c.buf_addr = 0x1000;
    c.buf_len = 256;
    c.u.cfg.offset = 8;
    c.u.cfg.length = 8;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_OK, VDPA_Q_OK);
    expect(vdpa_cmd_check_config(&c, 60), VDPA_S_OK, VDPA_Q_OK);
    expect(vdpa_cmd_check_config(&c, 12), VDPA_S_EINVAL,
           VDPA_Q_INVALID_FIELD);
    c.u.cfg.offset = 0xfffffff8;
    expect(vdpa_cmd_check_config(&c, 60), VDPA_S_EINVAL,
           VDPA_Q_INVALID_FIELD);
    c.u.cfg.offset = 0;
    c.u.cfg.length = 0;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    c.u.cfg.length = 300;
    c.buf_len = 300;
    expect(vdpa_cmd_check(&c, &lim), VDPA_S_EINVAL, VDPA_Q_INVALID_FIELD);
    (void)state;
}

static void test_encoders(void **state)
{
    uint8_t cqe[VDPA_CQE_SIZE], disc[VDPA_DISCOVER_SIZE];

    vdpa_cqe_encode(cqe, 0xbeef, vdpa_status(VDPA_S_ENOSPC,
                                             VDPA_Q_NORESOURCE),
                    true, 0x0102030405060708ULL);
    assert_int_equal(vdpa_ld16(cqe + VDPA_CQE_CID), 0xbeef);
    assert_int_equal(vdpa_ld16(cqe + VDPA_CQE_STATUS), 28);
    assert_int_equal(vdpa_ld16(cqe + VDPA_CQE_QUALIFIER), 6);
    assert_int_equal(vdpa_ld16(cqe + VDPA_CQE_FLAGS), 1);
    assert_int_equal(cqe[8], 8);
    assert_int_equal(cqe[15], 1);
    vdpa_cqe_encode(cqe, 1, vdpa_status(0, 0), false, 0);
    assert_int_equal(vdpa_ld16(cqe + VDPA_CQE_FLAGS), 0);

    vdpa_discover_encode(&lim, 42, disc);
    assert_int_equal(vdpa_ld32(disc + VDPA_DISC_MAX_INST), 65536);
    assert_int_equal(vdpa_ld32(disc + VDPA_DISC_NUM_INST), 42);
    assert_int_equal(vdpa_ld16(disc + VDPA_DISC_MAX_QUEUES), 8);
    assert_int_equal(vdpa_ld16(disc + VDPA_DISC_MAX_QSIZE), 1024);
    assert_int_equal(vdpa_ld32(disc + VDPA_DISC_TYPES), 6);
    assert_int_equal(vdpa_ld64(disc + VDPA_DISC_BLK_FEAT), 0xfff);
    assert_int_equal(vdpa_ld32(disc + VDPA_DISC_NUM_BLK), 4);
    assert_int_equal(disc[VDPA_DISC_PASID_BITS], 20);
    assert_int_equal(disc[VDPA_DISC_DMA_BITS], 39);
    assert_int_equal(vdpa_ld16(disc + VDPA_DISC_CFG_SIZE), 60);
    assert_int_equal(vdpa_ld16(disc + VDPA_DISC_OPS_HI), VDPA_OP_STATS);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_roundtrip_all_ops),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_member_range),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_queue_setup),
        cmocka_unit_test(test_pasid_msi_status_config),
        cmocka_unit_test(test_encoders),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
