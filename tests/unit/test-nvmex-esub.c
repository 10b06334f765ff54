/*
 * Unit tests of the TP4193 exported-subsystem table and configuration
 * state (hw/nvme-export/core/nvmex-esub.c).
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

#include "hw/nvme-export/core/nvmex-esub.h"
#include "hw/nvme-export/core/nvmex-spec.h"

static void test_table(void **state)
{
    NvmexEsubTable *t = calloc(1, sizeof(*t));
    NvmexEsub *e, *f;
    NvmexEsubCtrl two[2] = { { 2, 1 }, { 3, 2 } };
    NvmexEsubCtrl again = { 2, 9 };
    NvmexEsubNs ns = { .ensid = 1, .unsid = 1, .uctrlid = 2 };

    (void)state;
    assert_int_equal(nvmex_esub_create(t, 2, &e), NVMEX_ESUB_BAD_FIELD);
    assert_int_equal(nvmex_esub_create(t, 1, &e), NVMEX_ESUB_OK);
    assert_int_equal(e->esubid, 1);
    assert_string_equal(e->nqn, "nqn.2026-12.org.iolab:nvme-export:esub1");
    assert_ptr_equal(nvmex_esub_find(t, 1), e);
    assert_null(nvmex_esub_find(t, 2));

    /* A namespace needs its controller associated first */
    assert_int_equal(nvmex_esub_ns_add(e, &ns), NVMEX_ESUB_BAD_ASSOCIATION);
    assert_int_equal(nvmex_esub_associate(t, e, two, 2), NVMEX_ESUB_OK);
    assert_ptr_equal(nvmex_esub_of_ctrl(t, 3), e);
    assert_int_equal(nvmex_esub_ns_add(e, &ns), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_ns_add(e, &ns), NVMEX_ESUB_BAD_FIELD);
    ns.ensid = 2;
    assert_int_equal(nvmex_esub_ns_add(e, &ns), NVMEX_ESUB_BAD_ASSOCIATION);

    /* A controller is in one subsystem only; all or none */
    assert_int_equal(nvmex_esub_create(t, 0, &f), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_associate(t, f, &again, 1),
                     NVMEX_ESUB_BAD_ASSOCIATION);
    assert_int_equal(f->nctrl, 0);
    again.cntlid = 5;
    again.ecntlid = 0;
    assert_int_equal(nvmex_esub_associate(t, f, &again, 1),
                     NVMEX_ESUB_BAD_FIELD);

    assert_int_equal(nvmex_esub_port_add(e, 0), NVMEX_ESUB_BAD_FIELD);
    assert_int_equal(nvmex_esub_port_add(e, 7), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_port_add(e, 7), NVMEX_ESUB_BAD_FIELD);
    assert_int_equal(nvmex_esub_port_remove(e, 7), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_port_remove(e, 7), NVMEX_ESUB_BAD_FIELD);
    assert_int_equal(nvmex_esub_ns_remove(e, 1), NVMEX_ESUB_OK);
    assert_int_equal(e->nns, 0);

    for (int i = 0; i < NVMEX_ESUB_MAX - 2; i++) {
        assert_int_equal(nvmex_esub_create(t, 1, &f), NVMEX_ESUB_OK);
    }
    assert_int_equal(nvmex_esub_create(t, 1, &f), NVMEX_ESUB_NO_RESOURCES);
    nvmex_esub_delete(e);
    assert_null(nvmex_esub_find(t, 1));
    free(t);
}

/* A controller that leaves takes its associations and namespaces along */
static void test_forget_ctrl(void **state)
{
    NvmexEsubTable *t = calloc(1, sizeof(*t));
    NvmexEsub *e, *f;
    NvmexEsubCtrl ctrls[3] = { { 2, 1 }, { 3, 2 }, { 4, 3 } };
    NvmexEsubCtrl other = { 5, 1 };
    NvmexEsubNs ns[4] = {
        { .ensid = 1, .unsid = 1, .uctrlid = 3 },
        { .ensid = 2, .unsid = 1, .uctrlid = 2 },
        { .ensid = 3, .unsid = 2, .uctrlid = 3 },
        { .ensid = 4, .unsid = 1, .uctrlid = 4 },
    };
    NvmexEsubNs ns_other = { .ensid = 1, .unsid = 1, .uctrlid = 5 };

    (void)state;
    assert_int_equal(nvmex_esub_create(t, 1, &e), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_create(t, 1, &f), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_associate(t, e, ctrls, 3), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_associate(t, f, &other, 1), NVMEX_ESUB_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nvmex_esub_ns_add(e, &ns[i]), NVMEX_ESUB_OK);
    }
    assert_int_equal(nvmex_esub_ns_add(f, &ns_other), NVMEX_ESUB_OK);

    /* The middle controller, with two namespaces, the first and third */
    nvmex_esub_forget_ctrl(t, 3);
    assert_true(e->valid);
    assert_int_equal(e->nctrl, 2);
    assert_int_equal(e->ctrl[0].cntlid, 2);
    assert_int_equal(e->ctrl[1].cntlid, 4);
    assert_int_equal(e->nns, 2);
    assert_int_equal(e->ns[0].ensid, 2);
    assert_int_equal(e->ns[1].ensid, 4);
    assert_null(nvmex_esub_of_ctrl(t, 3));
    assert_int_equal(f->nctrl, 1);
    assert_int_equal(f->nns, 1);

    /* It may associate again; a controller never associated: no change */
    assert_int_equal(nvmex_esub_associate(t, f, &ctrls[1], 1), NVMEX_ESUB_OK);
    nvmex_esub_forget_ctrl(t, 9);
    assert_int_equal(e->nctrl, 2);
    assert_int_equal(f->nctrl, 2);

    /* The last controller of a subsystem: the subsystem stays, empty */
    nvmex_esub_forget_ctrl(t, 2);
    nvmex_esub_forget_ctrl(t, 4);
    assert_true(e->valid);
    assert_int_equal(e->nctrl, 0);
    assert_int_equal(e->nns, 0);
    assert_ptr_equal(nvmex_esub_find(t, 1), e);
    free(t);
}

static void test_state(void **state)
{
    NvmexEsubTable *t = calloc(1, sizeof(*t));
    NvmexEsub *e;
    NvmexEsubCtrl c = { 2, 1 };
    NvmexEsubNs ns = { .ensid = 1, .unsid = 1, .uctrlid = 2 };
    uint8_t *id = calloc(4, 4096);
    NvmexEcsCtrlIdentity ci = { .cap = 0x1234, .id_ctrl = id,
                                .id_ctrl_nvm = id + 4096 };
    NvmexEcsNsIdentity ni = { .id_ns = id + 8192, .id_ns_nvm = id + 12288 };
    uint8_t *a, *b;
    size_t len;
    uint32_t dw;
    uint8_t bit;
    char nqn[NVMEX_ESUB_NQN_SIZE];

    (void)state;
    memset(id, 0x11, 4 * 4096);
    assert_int_equal(nvmex_esub_create(t, 1, &e), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_associate(t, e, &c, 1), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_ns_add(e, &ns), NVMEX_ESUB_OK);
    assert_int_equal(nvmex_esub_port_add(e, 3), NVMEX_ESUB_OK);
    len = nvmex_ecs_size(e);
    assert_int_equal(len, 288 + 8208 + 8200 + 4);
    a = malloc(len);
    b = malloc(len);
    nvmex_ecs_encode(e, &ci, &ni, a);
    assert_memory_equal(a, nvmex_esub_template_uuid, 16);
    assert_int_equal(nvmex_ld32(a + 20), len);
    assert_int_equal(nvmex_ld16(a + 288 + 16 + 78), 0);    /* CNTLID */
    assert_int_equal(a[288 + 16 + 77], 0x11);
    assert_true(nvmex_ecs_nqn(a, len, nqn));
    assert_string_equal(nqn, e->nqn);

    memcpy(b, a, len);
    assert_true(nvmex_ecs_match(a, len, b, len, &dw, &bit));
    /* One bit of the namespace's identity differs: named exactly */
    b[288 + 8208 + 8 + 100] ^= 0x04;
    assert_false(nvmex_ecs_match(a, len, b, len, &dw, &bit));
    assert_int_equal(dw, (288 + 8208 + 8 + 100) / 4);
    assert_int_equal(bit, ((288 + 8208 + 8 + 100) % 4) * 8 + 2);
    /* A shorter buffer differs where it ends */
    assert_false(nvmex_ecs_match(a, len, a, len - 4, &dw, &bit));
    assert_int_equal(dw, (len - 4) / 4);
    free(a);
    free(b);
    free(id);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_forget_ctrl),
        cmocka_unit_test(test_state),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
