/*
 * Unit tests for the nvme-export template model, Identify encoders and
 * command table
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

#include "hw/nvme-export/core/nvmex-identify.h"
#include "hw/nvme-export/core/nvmex-spec.h"
#include "hw/nvme-export/core/nvmex-template.h"

static char err[256];

static void test_default_is_valid(void **state)
{
    NvmexTemplate t;

    (void)state;
    nvmex_template_default(&t);
    nvmex_template_ns(&t, 1, true);
    assert_int_equal(nvmex_template_check(&t, err, sizeof(err)), 0);
}

static void test_set_fields(void **state)
{
    NvmexTemplate t;

    (void)state;
    nvmex_template_default(&t);
    assert_int_equal(nvmex_template_set(&t, "vid", "0x144d", err,
                                        sizeof(err)), 0);
    assert_int_equal(t.vid, 0x144d);
    assert_int_equal(nvmex_template_set(&t, "mn", "Model X", err,
                                        sizeof(err)), 0);
    assert_string_equal(t.mn, "Model X");
    assert_int_equal(nvmex_template_set(&t, "sgl", "off", err,
                                        sizeof(err)), 0);
    assert_false(t.sgl);

    /* Errors name the field */
    assert_int_equal(nvmex_template_set(&t, "vid", "0x10000", err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, "vid"));
    assert_int_equal(nvmex_template_set(&t, "sn", "123456789012345678901",
                                        err, sizeof(err)), -1);
    assert_non_null(strstr(err, "sn"));
    assert_int_equal(nvmex_template_set(&t, "mn", "bad\x01", err,
                                        sizeof(err)), -1);
    assert_int_equal(nvmex_template_set(&t, "bogus", "1", err,
                                        sizeof(err)), -1);
    assert_non_null(strstr(err, "bogus"));
    assert_int_equal(nvmex_template_set(&t, "mdts", "-1", err,
                                        sizeof(err)), -1);
}

static void test_check_rejects(void **state)
{
    NvmexTemplate t;
    NvmexNsTemplate *n;

    (void)state;
    nvmex_template_default(&t);
    t.oncs |= 1;            /* Compare: not implemented */
    assert_int_equal(nvmex_template_check(&t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "oncs"));

    nvmex_template_default(&t);
    t.mdts = 0;
    assert_int_equal(nvmex_template_check(&t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "mdts"));

    nvmex_template_default(&t);
    n = nvmex_template_ns(&t, 1, true);
    assert_non_null(n);
    assert_ptr_equal(nvmex_template_ns(&t, 1, true), n);
    n->nsid = 99;           /* above nn */
    assert_int_equal(nvmex_template_check(&t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nsid"));

    nvmex_template_default(&t);
    nvmex_template_ns(&t, 1, true)->flbas = 5;
    assert_int_equal(nvmex_template_check(&t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "flbas"));
}

static void test_ns_fields_and_bind(void **state)
{
    NvmexNsTemplate n;
    NvmexNsGeometry g;
    NvmexBacking b = { .bytes = 64 << 20, .min_block = 512 };

    (void)state;
    nvmex_ns_template_default(&n, 1);
    assert_int_equal(nvmex_ns_template_set(&n, "lba-formats", "512,4096",
                                           err, sizeof(err)), 0);
    assert_int_equal(n.nlbaf, 2);
    assert_int_equal(n.lbaf[1].lbads, 12);
    assert_int_equal(nvmex_ns_template_set(&n, "lba-formats", "1000", err,
                                           sizeof(err)), -1);
    assert_non_null(strstr(err, "lba-formats"));
    assert_int_equal(nvmex_ns_template_set(&n, "nguid",
                     "00112233-4455-6677-8899-aabbccddeeff", err,
                     sizeof(err)), 0);
    assert_int_equal(n.nguid[0], 0x00);
    assert_int_equal(n.nguid[15], 0xff);
    assert_int_equal(nvmex_ns_template_set(&n, "eui64", "0011", err,
                                           sizeof(err)), -1);
    assert_non_null(strstr(err, "eui64"));

    /* Whole backing, 4 KiB format */
    n.flbas = 1;
    assert_int_equal(nvmex_ns_bind(&n, &b, &g, err, sizeof(err)), 0);
    assert_int_equal(g.lba_size, 4096);
    assert_int_equal(g.nsze, (64 << 20) / 4096);

    /* Too small a backing names 'size' */
    n.size = 128 << 20;
    assert_int_equal(nvmex_ns_bind(&n, &b, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "size"));

    /* Backing that cannot do 512-byte I/O rejects that format */
    n.size = 0;
    b.min_block = 4096;
    assert_int_equal(nvmex_ns_bind(&n, &b, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "lba-formats[0]"));
}

static void test_id_ctrl_bytes(void **state)
{
    NvmexTemplate t;
    uint8_t b[NVMEX_ID_SIZE];

    (void)state;
    nvmex_template_default(&t);
    nvmex_template_set(&t, "sn", "SN42", err, sizeof(err));
    t.vid = 0x1234;
    t.oui = 0xabcdef;
    t.mdts = 5;
    nvmex_id_ctrl(&t, b);
    assert_int_equal(nvmex_ld16(b), 0x1234);
    assert_memory_equal(b + 4, "SN42                ", 20);
    assert_int_equal(b[73], 0xef);
    assert_int_equal(b[75], 0xab);
    assert_int_equal(b[77], 5);
    assert_int_equal(nvmex_ld32(b + 80), NVMEX_VERSION);
    assert_int_equal(b[111], 1);
    assert_int_equal(b[512], 0x66);
    assert_int_equal(b[513], 0x44);
    assert_int_equal(nvmex_ld16(b + 520), t.oncs);
    assert_int_equal(nvmex_ld32(b + 536), 1);
    assert_memory_equal(b + 768, t.subnqn, strlen(t.subnqn));
    assert_int_equal(b[768 + strlen(t.subnqn)], 0);

    t.sgl = false;
    t.vwc = false;
    nvmex_id_ctrl(&t, b);
    assert_int_equal(nvmex_ld32(b + 536), 0);
    assert_int_equal(b[525] & 1, 0);
}

static void test_id_ns_and_descs(void **state)
{
    NvmexTemplate t;
    NvmexNsTemplate *n;
    uint8_t b[NVMEX_ID_SIZE];
    size_t len;

    (void)state;
    nvmex_template_default(&t);
    n = nvmex_template_ns(&t, 1, true);
    assert_int_equal(n->nlbaf, 1);
    assert_int_equal(n->lbaf[0].lbads, 12);
    assert_int_equal(nvmex_ns_template_set(n, "lba-formats", "512,4096",
                                           err, sizeof(err)), 0);
    n->flbas = 1;
    n->uuid[3] = 7;
    nvmex_id_ns(&t, n, 1000, b);
    assert_int_equal(nvmex_ld64(b), 1000);
    assert_int_equal(b[25], 1);
    assert_int_equal(b[26], 1);
    assert_int_equal(nvmex_ld32(b + 128) >> 16, 9);
    assert_int_equal(nvmex_ld32(b + 132) >> 16, 12);

    nvmex_id_ns_nvm(&t, n, b);
    assert_int_equal(nvmex_ld32(b + 292), n->tlbaag);

    len = nvmex_id_ns_descs(n, b);
    /* UUID (4 + 16) then CSI (4 + 1); zero NGUID/EUI64 are left out */
    assert_int_equal(len, 25);
    assert_int_equal(b[0], 3);
    assert_int_equal(b[1], 16);
    assert_int_equal(b[7], 7);
    assert_int_equal(b[20], 4);
    assert_int_equal(b[21], 1);
}

static void test_active_ns_list(void **state)
{
    uint32_t ids[] = { 7, 2, 5 };
    uint8_t b[NVMEX_ID_SIZE];

    (void)state;
    nvmex_id_active_ns(ids, 3, 0, b);
    assert_int_equal(nvmex_ld32(b), 2);
    assert_int_equal(nvmex_ld32(b + 4), 5);
    assert_int_equal(nvmex_ld32(b + 8), 7);
    assert_int_equal(nvmex_ld32(b + 12), 0);
    nvmex_id_active_ns(ids, 3, 5, b);
    assert_int_equal(nvmex_ld32(b), 7);
    assert_int_equal(nvmex_ld32(b + 4), 0);
}

static void test_logs(void **state)
{
    NvmexTemplate t;
    NvmexSmart s = { .read_cmds = 3, .units_written = 9 };
    NvmexErrorEntry e = { .count = 2, .sqid = 1, .cid = 5,
                          .status = NVMEX_LBA_OUT_OF_RANGE, .nsid = 1 };
    uint8_t b[NVMEX_EFFECTS_LOG_SIZE];

    (void)state;
    nvmex_template_default(&t);
    nvmex_log_smart(&t, &s, b);
    assert_int_equal(nvmex_ld16(b + 1), t.temperature);
    assert_int_equal(nvmex_ld64(b + 64), 3);
    assert_int_equal(nvmex_ld64(b + 48), 9);

    nvmex_log_cmd_effects(&t, b);
    assert_int_equal(nvmex_ld32(b + 4 * NVMEX_ADM_IDENTIFY), 1);
    assert_int_equal(nvmex_ld32(b + 4 * 0x80), 0);
    assert_int_equal(nvmex_ld32(b + 1024 + 4 * NVMEX_IO_WRITE), 3);
    t.oncs &= ~NVMEX_ONCS_DSM;
    nvmex_log_cmd_effects(&t, b);
    assert_int_equal(nvmex_ld32(b + 1024 + 4 * NVMEX_IO_DSM), 0);

    nvmex_log_error_entry(&e, b);
    assert_int_equal(nvmex_ld64(b), 2);
    assert_int_equal(nvmex_ld16(b + 12) >> 1, NVMEX_LBA_OUT_OF_RANGE);

    nvmex_log_fw_slot(&t, b);
    assert_int_equal(b[0], 1);
    assert_memory_equal(b + 8, "1.0     ", 8);
}

/* CNS 08h: NSTAT (namespace ready) is byte 14; ENDGID (12-13) stays 0 */
static void test_id_ns_indep(void **state)
{
    uint8_t b[NVMEX_ID_SIZE];

    (void)state;
    memset(b, 0xa5, sizeof(b));
    nvmex_id_ns_indep(b);
    assert_int_equal(b[14], 1);
    assert_int_equal(nvmex_ld16(b + 12), 0);
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i != 14) {
            assert_int_equal(b[i], 0);
        }
    }
}

/*
 * The command table: every supported opcode has a name, the template
 * switches take commands out of the set, and the effects log says the
 * same as nvmex_*_supported() for every opcode.
 */
static void test_command_table(void **state)
{
    NvmexTemplate t;
    uint8_t b[NVMEX_EFFECTS_LOG_SIZE];

    (void)state;
    nvmex_template_default(&t);
    t.ralbas = true;
    t.oncs = NVMEX_ONCS_SUPPORTED;
    assert_string_equal(nvmex_admin_name(NVMEX_ADM_IDENTIFY), "IDENTIFY");
    assert_string_equal(nvmex_io_name(NVMEX_IO_WRITE), "WRITE");
    assert_null(nvmex_admin_name(0x7f));
    assert_null(nvmex_io_name(0x7f));
    assert_true(nvmex_admin_supported(&t, NVMEX_ADM_GET_LBA_STATUS));
    assert_int_equal(nvmex_io_effects(&t, NVMEX_IO_DSM),
                     NVMEX_EFFECTS_CSUPP | NVMEX_EFFECTS_LBCC);
    assert_int_equal(nvmex_io_effects(&t, NVMEX_IO_READ),
                     NVMEX_EFFECTS_CSUPP);
    for (int pass = 0; pass < 2; pass++) {
        nvmex_log_cmd_effects(&t, b);
        for (int op = 0; op < 256; op++) {
            assert_int_equal(!!nvmex_admin_supported(&t, op),
                             nvmex_ld32(b + 4 * op) & 1);
            assert_int_equal(!!nvmex_io_supported(&t, op),
                             nvmex_ld32(b + 1024 + 4 * op) & 1);
            if (nvmex_admin_supported(&t, op)) {
                assert_non_null(nvmex_admin_name(op));
            }
            if (nvmex_io_supported(&t, op)) {
                assert_non_null(nvmex_io_name(op));
            }
        }
        t.ralbas = false;
        t.oncs = 0;
    }
    assert_false(nvmex_admin_supported(&t, NVMEX_ADM_GET_LBA_STATUS));
    assert_false(nvmex_io_supported(&t, NVMEX_IO_WRITE_ZEROES));
    assert_false(nvmex_io_supported(&t, NVMEX_IO_DSM));
}

/* Every template field has a device property, and the lists agree */
static void test_field_rows(void **state)
{
    NvmexTemplate t;
    int n = 0;

    (void)state;
    nvmex_template_default(&t);
    for (; nvmex_template_fields[n]; n++) {
        /* Each listed field is known by name (the value aside) */
        err[0] = 0;
        nvmex_template_set(&t, nvmex_template_fields[n], "", err,
                           sizeof(err));
        assert_null(strstr(err, "unknown"));
    }
    assert_int_equal(n, NVMEX_TMPL_NFIELDS);
    assert_string_equal(nvmex_template_fields[NVMEX_TMPL_FIELD_max_ioqs],
                        "max-ioqs");
    for (n = 0; nvmex_ns_template_fields[n]; n++) {
        NvmexNsTemplate ns;

        nvmex_ns_template_default(&ns, 1);
        err[0] = 0;
        nvmex_ns_template_set(&ns, nvmex_ns_template_fields[n], "", err,
                              sizeof(err));
        assert_null(strstr(err, "unknown"));
    }
    assert_int_equal(n, NVMEX_NS_NFIELDS);
    assert_string_equal(nvmex_ns_template_fields[NVMEX_NS_FIELD_lbaf],
                        "lba-formats");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_valid),
        cmocka_unit_test(test_set_fields),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_ns_fields_and_bind),
        cmocka_unit_test(test_id_ctrl_bytes),
        cmocka_unit_test(test_id_ns_and_descs),
        cmocka_unit_test(test_active_ns_list),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_id_ns_indep),
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_field_rows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
