/*
 * Unit tests for the nvme-export PRP and SGL walkers
 *
 * Guest memory is a 1 MiB array; reads outside it fail like a bus error.
 * Emitted segments are recorded and compared with what the data pointer
 * describes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/nvme-export/core/nvmex-dptr.h"
#include "hw/nvme-export/core/nvmex-spec.h"

#define MEM (1u << 20)
#define PG 4096u

static uint8_t mem[MEM];
static struct { uint64_t addr, len; } seg[64];
static int nseg;
static unsigned reads;

static int rd(void *opaque, uint64_t addr, void *buf, uint32_t len)
{
    (void)opaque;
    reads++;
    if (addr >= MEM || len > MEM - addr) {
        return -1;
    }
    memcpy(buf, mem + addr, len);
    return 0;
}

static uint16_t emit(void *opaque, uint64_t addr, uint64_t len)
{
    (void)opaque;
    if (nseg == 64) {
        return NVMEX_INTERNAL_ERROR;
    }
    seg[nseg].addr = addr;
    seg[nseg].len = len;
    nseg++;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(mem, 0, sizeof(mem));
    nseg = 0;
    reads = 0;
    return 0;
}

static void test_prp_single_and_pair(void **state)
{
    (void)state;
    /* Within one page, with an offset */
    assert_int_equal(nvmex_prp_walk(0x10100, 0, 512, PG, rd, emit, NULL), 0);
    assert_int_equal(nseg, 1);
    assert_int_equal(seg[0].addr, 0x10100);
    assert_int_equal(seg[0].len, 512);

    /* Crossing into PRP2 */
    nseg = 0;
    assert_int_equal(nvmex_prp_walk(0x10e00, 0x30000, 1024, PG, rd, emit,
                                    NULL), 0);
    assert_int_equal(nseg, 2);
    assert_int_equal(seg[0].len, 512);
    assert_int_equal(seg[1].addr, 0x30000);
    assert_int_equal(seg[1].len, 512);

    /* Adjacent pages merge */
    nseg = 0;
    assert_int_equal(nvmex_prp_walk(0x10000, 0x11000, 8192, PG, rd, emit,
                                    NULL), 0);
    assert_int_equal(nseg, 1);
    assert_int_equal(seg[0].len, 8192);
}

static void test_prp_errors(void **state)
{
    (void)state;
    assert_int_equal(nvmex_prp_walk(0x10002, 0, 512, PG, rd, emit, NULL),
                     NVMEX_PRP_OFFSET_INVALID);
    /* PRP2 as data pointer must be page aligned */
    assert_int_equal(nvmex_prp_walk(0x10000, 0x30010, 8192, PG, rd, emit,
                                    NULL), NVMEX_PRP_OFFSET_INVALID);
    /* List entries must be page aligned */
    nvmex_st64(mem + 0x20000, 0x40000);
    nvmex_st64(mem + 0x20008, 0x50200);
    assert_int_equal(nvmex_prp_walk(0x10000, 0x20000, 3 * PG, PG, rd, emit,
                                    NULL), NVMEX_PRP_OFFSET_INVALID);
    /* A list outside memory is a data transfer error */
    assert_int_equal(nvmex_prp_walk(0x10000, 0x7fff0000, 3 * PG, PG, rd,
                                    emit, NULL), NVMEX_DATA_TRANSFER_ERROR);
}

static void test_prp_chained_list(void **state)
{
    uint64_t list1 = 0x20000, list2 = 0x21000;
    uint64_t len = 600ull * PG;     /* 1 + 599 pages: needs two lists */
    uint64_t total = 0;
    int i;

    (void)state;
    /* Data pages 0x40000.. but every other page, so nothing merges */
    for (i = 0; i < 511; i++) {
        nvmex_st64(mem + list1 + 8 * i, 0x100000000ull + 2ull * i * PG);
    }
    nvmex_st64(mem + list1 + 8 * 511, list2);
    for (i = 0; i < 599 - 511; i++) {
        nvmex_st64(mem + list2 + 8 * i,
                   0x100000000ull + 2ull * (511 + i) * PG);
    }
    assert_int_equal(nvmex_prp_walk(0x10000, list1, len, PG, rd, emit, NULL),
                     NVMEX_INTERNAL_ERROR);      /* > 64 segments */
    nseg = 0;
    /* Same with contiguous data: merges into 2 segments */
    for (i = 0; i < 511; i++) {
        nvmex_st64(mem + list1 + 8 * i, 0x100000000ull + (uint64_t)i * PG);
    }
    for (i = 0; i < 599 - 511; i++) {
        nvmex_st64(mem + list2 + 8 * i, 0x100000000ull + (511ull + i) * PG);
    }
    assert_int_equal(nvmex_prp_walk(0x10000, list1, len, PG, rd, emit, NULL),
                     0);
    assert_int_equal(nseg, 2);
    for (i = 0; i < nseg; i++) {
        total += seg[i].len;
    }
    assert_int_equal(total, len);
    assert_int_equal(seg[1].addr, 0x100000000ull);
    assert_int_equal(seg[1].len, 599ull * PG);
}

static void test_prp_self_loop(void **state)
{
    (void)state;
    /* A list that is only its own link, at the end of a page */
    nvmex_st64(mem + 0x20ff8, 0x20ff8);
    assert_int_equal(nvmex_prp_walk(0x10000, 0x20ff8, 64 * PG, PG, rd, emit,
                                    NULL), NVMEX_PRP_OFFSET_INVALID);
}

static void put_desc(uint8_t *d, uint64_t addr, uint32_t len, uint8_t type)
{
    memset(d, 0, 16);
    nvmex_st64(d, addr);
    nvmex_st32(d + 8, len);
    d[15] = type << 4;
}

static void test_sgl_data_block(void **state)
{
    uint8_t d[16];

    (void)state;
    put_desc(d, 0x12345, 4096, NVMEX_SGL_DATA_BLOCK);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL), 0);
    assert_int_equal(nseg, 1);
    assert_int_equal(seg[0].addr, 0x12345);
    assert_int_equal(nvmex_sgl_walk(d, 8192, rd, emit, NULL),
                     NVMEX_DATA_SGL_LEN_INVALID);
    d[15] = NVMEX_SGL_BIT_BUCKET << 4;
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_SGL_DESC_TYPE_INVALID);
    d[15] = 0x01;       /* data block, offset subtype: fabrics only */
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_SGL_DESC_TYPE_INVALID);
}

/*
 * Found by fuzz-nvmex-dptr: a page ending at 2^64 and the next one at 0
 * were merged into one segment that wrapped the address space.  They are
 * two segments; and an SGL data block that runs past 2^64 is refused.
 */
static void test_no_segment_wraps(void **state)
{
    uint8_t d[16];

    (void)state;
    assert_int_equal(nvmex_prp_walk(0xffffffffffffff00ull, 0, 0x1100, PG,
                                    rd, emit, NULL), 0);
    assert_int_equal(nseg, 2);
    assert_true(seg[0].addr == 0xffffffffffffff00ull && seg[0].len == 0x100);
    assert_true(seg[1].addr == 0 && seg[1].len == 0x1000);

    nseg = 0;
    put_desc(d, 0xfffffffffffff800ull, 4096, NVMEX_SGL_DATA_BLOCK);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_DATA_TRANSFER_ERROR);
    assert_int_equal(nseg, 0);
    /* Ending exactly at 2^64 is fine. */
    put_desc(d, 0xfffffffffffff000ull, 4096, NVMEX_SGL_DATA_BLOCK);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL), 0);
    assert_int_equal(nseg, 1);
}

static void test_sgl_segments(void **state)
{
    uint8_t d[16];

    (void)state;
    /* Segment: 2 data blocks + link to last segment with 1 data block */
    put_desc(mem + 0x20000, 0x40000, 1000, NVMEX_SGL_DATA_BLOCK);
    put_desc(mem + 0x20010, 0x50000, 2000, NVMEX_SGL_DATA_BLOCK);
    put_desc(mem + 0x20020, 0x30000, 16, NVMEX_SGL_LAST_SEGMENT);
    put_desc(mem + 0x30000, 0x60000, 1096, NVMEX_SGL_DATA_BLOCK);
    put_desc(d, 0x20000, 48, NVMEX_SGL_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL), 0);
    assert_int_equal(nseg, 3);
    assert_int_equal(seg[1].addr, 0x50000);
    assert_int_equal(seg[2].len, 1096);

    /* Too little data described */
    nseg = 0;
    assert_int_equal(nvmex_sgl_walk(d, 8192, rd, emit, NULL),
                     NVMEX_DATA_SGL_LEN_INVALID);
    /* Too much */
    assert_int_equal(nvmex_sgl_walk(d, 2048, rd, emit, NULL),
                     NVMEX_DATA_SGL_LEN_INVALID);
    /* Segment length not a multiple of 16 */
    put_desc(d, 0x20000, 40, NVMEX_SGL_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_INVALID_NUM_SGL_DESCS);
    /* A segment descriptor not in the last slot */
    put_desc(mem + 0x20000, 0x30000, 16, NVMEX_SGL_LAST_SEGMENT);
    put_desc(d, 0x20000, 48, NVMEX_SGL_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_INVALID_SGL_SEG_DESC);
    /* A last segment may not chain */
    put_desc(mem + 0x20000, 0x40000, 1000, NVMEX_SGL_DATA_BLOCK);
    put_desc(d, 0x20000, 48, NVMEX_SGL_LAST_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_INVALID_SGL_SEG_DESC);
    /* Segment outside memory */
    put_desc(d, 0x7000000000ull, 48, NVMEX_SGL_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_DATA_TRANSFER_ERROR);
}

static void test_sgl_loop_bounded(void **state)
{
    uint8_t d[16];

    (void)state;
    /* A segment whose only descriptor links back to itself */
    put_desc(mem + 0x20000, 0x20000, 16, NVMEX_SGL_SEGMENT);
    put_desc(d, 0x20000, 16, NVMEX_SGL_SEGMENT);
    assert_int_equal(nvmex_sgl_walk(d, 4096, rd, emit, NULL),
                     NVMEX_INVALID_NUM_SGL_DESCS);
    assert_true(reads <= NVMEX_SGL_MAX_DESCS + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_prp_single_and_pair, setup),
        cmocka_unit_test_setup(test_prp_errors, setup),
        cmocka_unit_test_setup(test_prp_chained_list, setup),
        cmocka_unit_test_setup(test_prp_self_loop, setup),
        cmocka_unit_test_setup(test_sgl_data_block, setup),
        cmocka_unit_test_setup(test_sgl_segments, setup),
        cmocka_unit_test_setup(test_sgl_loop_bounded, setup),
        cmocka_unit_test_setup(test_no_segment_wraps, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
