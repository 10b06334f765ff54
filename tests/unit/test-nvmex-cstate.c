/*
 * Unit tests of the TP4159 Controller State codec
 * (hw/nvme-export/core/nvmex-cstate.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "hw/nvme-export/core/nvmex-cstate.h"
#include "hw/nvme-export/core/nvmex-spec.h"

static NvmexCsImage *image_two_pairs(bool vendor)
{
    NvmexCsImage *img = calloc(1, sizeof(*img));

    img->suspended = true;
    img->nsq = img->ncq = 2;
    for (int i = 0; i < 2; i++) {
        img->sq[i] = (NvmexCsSq) {
            .prp1 = 0x100000 + i * 0x1000, .qsize = 63, .qid = i + 1,
            .cqid = i + 1, .attr = NVMEX_CS_SQA_PC, .head = 3, .tail = 5,
        };
        img->cq[i] = (NvmexCsCq) {
            .prp1 = 0x200000 + i * 0x1000, .qsize = 63, .qid = i + 1,
            .head = 2, .tail = 3,
            .attr = NVMEX_CS_CQA_PC | NVMEX_CS_CQA_IEN | NVMEX_CS_CQA_S0PT |
                    (uint32_t)(i + 1) << 16,
        };
    }
    if (vendor) {
        img->has_vendor = true;
        img->vendor.nsqa = img->vendor.ncqa = 4;
        img->vendor.vwc = 1;
        img->vendor.nq_set = 1;
        img->vendor.async_event_cfg = 0x1ff;
        img->vendor.nparked = 1;
        img->vendor.parked[0] = (NvmexCsParked) {
            .cqid = 2, .sqid = 2, .cid = 9, .status = 0, .dw0 = 0xabcd,
        };
    }
    return img;
}

static uint8_t *encode(const NvmexCsImage *img, size_t *len)
{
    uint8_t *buf;

    *len = nvmex_cs_size(img);
    buf = malloc(*len);
    assert_int_equal(nvmex_cs_encode(img, buf), *len);
    return buf;
}

/* The layout: the offsets libvfn's migrate.c and libnvme read */
static void test_layout(void **state)
{
    NvmexCsImage *img = image_two_pairs(false);
    size_t len;
    uint8_t *b = encode(img, &len);

    (void)state;
    assert_int_equal(len, 48 + 8 + 4 * 24);
    assert_int_equal(b[2], 1);                     /* CSATTR suspended */
    assert_int_equal(nvmex_ld64(b + 16), (8 + 4 * 24) / 4);
    assert_int_equal(nvmex_ld64(b + 32), 0);
    assert_int_equal(nvmex_ld16(b + 48 + 2), 2);   /* NIOSQ */
    assert_int_equal(nvmex_ld16(b + 48 + 4), 2);   /* NIOCQ */
    /* SQ 1 */
    assert_int_equal(nvmex_ld64(b + 56), 0x100000);
    assert_int_equal(nvmex_ld16(b + 56 + 8), 63);
    assert_int_equal(nvmex_ld16(b + 56 + 10), 1);
    assert_int_equal(nvmex_ld16(b + 56 + 16), 3);
    assert_int_equal(nvmex_ld16(b + 56 + 18), 5);
    /* CQ 2, after both SQs */
    assert_int_equal(nvmex_ld16(b + 56 + 3 * 24 + 10), 2);
    assert_int_equal(nvmex_ld32(b + 56 + 3 * 24 + 16), 7u | 2u << 16);
    free(b);
    free(img);
}

static void test_round_trip(void **state)
{
    NvmexCsImage *img = image_two_pairs(true);
    NvmexCsImage *out = malloc(sizeof(*out));
    NvmexCsError err;
    size_t len;
    uint8_t *b = encode(img, &len);

    (void)state;
    assert_int_equal(len, 48 + 8 + 4 * 24 + 72 + 16);
    assert_memory_equal(b + 48 + 8 + 4 * 24, nvmex_cs_vendor_uuid, 16);
    assert_true(nvmex_cs_decode(b, len, out, &err));
    assert_true(out->suspended);
    assert_int_equal(out->nsq, 2);
    assert_memory_equal(out->sq, img->sq, sizeof(img->sq[0]) * 2);
    assert_memory_equal(out->cq, img->cq, sizeof(img->cq[0]) * 2);
    assert_true(out->has_vendor);
    assert_int_equal(out->vendor.nparked, 1);
    assert_int_equal(out->vendor.parked[0].dw0, 0xabcd);
    assert_int_equal(out->vendor.async_event_cfg, 0x1ff);
    free(b);
    free(img);
    free(out);
}

/*
 * Get Controller State with CSVI 0 (Base 2.1, Figure 345): NVMECSS 0 and
 * no NVMe-defined part; the vendor part follows the header at once
 */
static void test_no_nvme_state(void **state)
{
    NvmexCsImage *img = image_two_pairs(true);
    size_t len;
    uint8_t *b;

    (void)state;
    img->no_nvme_state = true;
    b = encode(img, &len);
    assert_int_equal(len, 48 + 72 + 16);
    assert_int_equal(b[2], 1);                     /* CSATTR suspended */
    assert_int_equal(nvmex_ld64(b + 16), 0);       /* NVMECSS */
    assert_int_equal(nvmex_ld64(b + 32), (72 + 16) / 4);
    assert_memory_equal(b + 48, nvmex_cs_vendor_uuid, 16);
    assert_int_equal(nvmex_ld32(b + 48 + 20), 72 + 16);
    free(b);
    img->has_vendor = false;
    b = encode(img, &len);
    assert_int_equal(len, 48);
    assert_int_equal(nvmex_ld64(b + 16), 0);
    assert_int_equal(nvmex_ld64(b + 32), 0);
    free(b);
    free(img);
}

/* Corrupt one field; the decoder must refuse it and name its offset */
static void expect_refused(uint8_t *b, size_t len, uint32_t offset)
{
    NvmexCsImage *out = malloc(sizeof(*out));
    NvmexCsError err = { 0 };

    assert_false(nvmex_cs_decode(b, len, out, &err));
    assert_non_null(err.why);
    assert_int_equal(err.offset, offset);
    free(out);
}

static void test_refusals(void **state)
{
    NvmexCsImage *img = image_two_pairs(true);
    size_t len, vend = 48 + 8 + 4 * 24;
    uint8_t *b = encode(img, &len);
    uint8_t *c = malloc(len);

    (void)state;
    /* too small: shorter than the headers, shorter than declared */
    expect_refused(b, 40, 0);
    expect_refused(b, len - 4, 16);
    /* unknown versions */
    memcpy(c, b, len); c[0] = 1;
    expect_refused(c, len, 0);
    memcpy(c, b, len); c[48] = 1;
    expect_refused(c, len, 48);
    memcpy(c, b, len); c[vend + 16] = 2;
    expect_refused(c, len, vend + 16);
    /* sizes: high half of the 128-bit NVMECSS, NIOSQ against NVMECSS */
    memcpy(c, b, len); c[24] = 1;
    expect_refused(c, len, 16);
    memcpy(c, b, len); c[48 + 2] = 1;
    expect_refused(c, len, 16);
    memcpy(c, b, len); c[48 + 2] = 65;
    expect_refused(c, len, 50);
    /* queues: a repeated id, an SQ on a missing CQ, a tail off the end */
    memcpy(c, b, len); nvmex_st16(c + 56 + 24 + 10, 1);
    expect_refused(c, len, 56 + 24 + 10);
    memcpy(c, b, len); nvmex_st16(c + 56 + 12, 9);
    expect_refused(c, len, 56 + 12);
    memcpy(c, b, len); nvmex_st16(c + 56 + 18, 64);
    expect_refused(c, len, 56 + 18);
    memcpy(c, b, len); nvmex_st16(c + 56 + 2 * 24 + 12, 64);
    expect_refused(c, len, 56 + 2 * 24 + 12);
    memcpy(c, b, len); c[56 + 2 * 24 + 16 + 1] = 0x80;
    expect_refused(c, len, 56 + 2 * 24 + 16);
    /* vendor part: another UUID, a length that disagrees, parked counts */
    memcpy(c, b, len); c[vend] ^= 1;
    expect_refused(c, len, vend);
    memcpy(c, b, len); nvmex_st32(c + vend + 20, 4);
    expect_refused(c, len, vend + 20);
    memcpy(c, b, len); nvmex_st32(c + vend + 64, 0xffffffff);
    expect_refused(c, len, vend + 64);
    memcpy(c, b, len); nvmex_st16(c + vend + 72, 1);   /* CQ 1 of SQ 2 */
    expect_refused(c, len, vend + 72);
    memcpy(c, b, len); nvmex_st16(c + vend + 52, 1);   /* NSQA below SQ 2 */
    expect_refused(c, len, vend + 52);
    free(c);
    free(b);
    free(img);
}

/* Every truncation of a valid state is refused, none overruns */
static void test_every_truncation(void **state)
{
    NvmexCsImage *img = image_two_pairs(true);
    NvmexCsImage *out = malloc(sizeof(*out));
    NvmexCsError err;
    size_t len;
    uint8_t *b = encode(img, &len);

    (void)state;
    for (size_t l = 0; l < len; l++) {
        uint8_t *t = malloc(l ? l : 1);

        memcpy(t, b, l);
        assert_false(nvmex_cs_decode(t, l, out, &err));
        free(t);
    }
    free(out);
    free(b);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_no_nvme_state),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_every_truncation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
