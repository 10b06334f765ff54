/*
 * Unit tests of the TP4159 controller state machine
 * (hw/nvme-export/core/nvmex-lm.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "hw/nvme-export/core/nvmex-lm.h"

static uint16_t step(NvmexLm *lm, NvmexLmEvent ev, NvmexLmEffects *fx)
{
    return nvmex_lm_step(lm, ev, fx);
}

/* A migration as libvfn's migrate.c drives it, source then destination. */
static void test_whole_migration(void **state)
{
    NvmexLm src, dst;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&src);
    assert_string_equal(nvmex_lm_state_name(&src), "running");

    assert_int_equal(step(&src, NVMEX_LM_START_LOGGING, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_started);
    assert_string_equal(nvmex_lm_state_name(&src), "logging");

    assert_int_equal(step(&src, NVMEX_LM_SUSPEND_NOTIFY, &fx), NVMEX_SUCCESS);
    assert_false(fx.stop_fetching);
    assert_string_equal(nvmex_lm_state_name(&src), "logging");

    assert_int_equal(step(&src, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_true(fx.stop_fetching);
    assert_true(fx.logging_suspended);
    assert_false(fx.logging_ended);     /* logging survives a suspend */
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_SUSPENDED);
    assert_true(src.logging);
    assert_string_equal(nvmex_lm_state_name(&src), "suspended+logging");

    assert_int_equal(step(&src, NVMEX_LM_GET_STATE, &fx), NVMEX_SUCCESS);
    assert_true(fx.csup);
    assert_string_equal(nvmex_lm_state_name(&src), "captured+logging");

    /* The host stops logging on the suspended source */
    assert_int_equal(step(&src, NVMEX_LM_STOP_LOGGING, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_ended);
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_LOGGING_STOPPED);
    assert_string_equal(nvmex_lm_state_name(&src), "captured");

    nvmex_lm_init(&dst);
    assert_int_equal(step(&dst, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_false(fx.logging_ended);     /* it was not logging */
    assert_false(fx.logging_suspended);
    assert_int_equal(step(&dst, NVMEX_LM_SET_STATE, &fx), NVMEX_SUCCESS);
    assert_string_equal(nvmex_lm_state_name(&dst), "applied");
    assert_int_equal(step(&dst, NVMEX_LM_RESUME, &fx), NVMEX_SUCCESS);
    assert_true(fx.start_fetching);
    assert_false(fx.logging_resumed);
    assert_string_equal(nvmex_lm_state_name(&dst), "running");
    assert_int_equal(dst.suspends, 1);
    assert_int_equal(dst.resumes, 1);
    assert_int_equal(dst.refused, 0);
    assert_true(nvmex_lm_valid(&src));
    assert_true(nvmex_lm_valid(&dst));
}

/* Every event in both run states: the status the table promises. */
static void test_every_event_in_both_states(void **state)
{
    static const struct {
        NvmexLmEvent ev;
        uint16_t running, suspended;
    } expect[] = {
        { NVMEX_LM_START_LOGGING, NVMEX_SUCCESS, NVMEX_SUCCESS },
        { NVMEX_LM_STOP_LOGGING, NVMEX_INVALID_FIELD, NVMEX_INVALID_FIELD },
        { NVMEX_LM_SUSPEND_NOTIFY, NVMEX_SUCCESS, NVMEX_LM_CTRL_SUSPENDED },
        { NVMEX_LM_SUSPEND, NVMEX_SUCCESS, NVMEX_LM_CTRL_SUSPENDED },
        { NVMEX_LM_RESUME, NVMEX_LM_CTRL_NOT_SUSPENDED, NVMEX_SUCCESS },
        { NVMEX_LM_SET_STATE, NVMEX_LM_CTRL_NOT_SUSPENDED, NVMEX_SUCCESS },
        { NVMEX_LM_GET_STATE, NVMEX_SUCCESS, NVMEX_SUCCESS },
    };
    NvmexLmEffects fx;

    (void)state;
    assert_int_equal(sizeof(expect) / sizeof(expect[0]), NVMEX_LM_NR_EVENTS);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        NvmexLm lm, before;

        nvmex_lm_init(&lm);
        before = lm;
        assert_int_equal(step(&lm, expect[i].ev, &fx), expect[i].running);
        if (expect[i].running != NVMEX_SUCCESS) {
            /* A refusal changes nothing but the refusal count. */
            before.refused++;
            assert_memory_equal(&lm, &before, sizeof(lm));
        }

        nvmex_lm_init(&lm);
        assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
        before = lm;
        assert_int_equal(step(&lm, expect[i].ev, &fx), expect[i].suspended);
        if (expect[i].suspended != NVMEX_SUCCESS) {
            before.refused++;
            assert_memory_equal(&lm, &before, sizeof(lm));
        }
        assert_true(nvmex_lm_valid(&lm));
    }
}

static void test_status_codes_are_tp4159s(void **state)
{
    (void)state;
    /* SCT 1 (command specific), SC 39h and 3Ah. */
    assert_int_equal(NVMEX_LM_CTRL_SUSPENDED, 0x139);
    assert_int_equal(NVMEX_LM_CTRL_NOT_SUSPENDED, 0x13a);
}

static void test_logging_twice_and_stop(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx), NVMEX_SUCCESS);
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx),
                     NVMEX_INVALID_FIELD);
    assert_false(fx.logging_started);
    assert_true(lm.logging);
    assert_int_equal(step(&lm, NVMEX_LM_STOP_LOGGING, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_ended);
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_LOGGING_STOPPED);
    assert_int_equal(lm.refused, 1);
}

/* A controller resumed after a suspend can log and be suspended again. */
static void test_second_pass(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    step(&lm, NVMEX_LM_START_LOGGING, &fx);
    step(&lm, NVMEX_LM_SUSPEND, &fx);
    step(&lm, NVMEX_LM_GET_STATE, &fx);
    assert_int_equal(step(&lm, NVMEX_LM_RESUME, &fx), NVMEX_SUCCESS);
    assert_false(lm.captured);
    assert_int_equal(step(&lm, NVMEX_LM_GET_STATE, &fx), NVMEX_SUCCESS);
    assert_false(fx.csup);
    assert_false(lm.captured);          /* a running state is no capture */
    /* Logging went on across the first pass; stopped, it starts again */
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx),
                     NVMEX_INVALID_FIELD);
    assert_int_equal(step(&lm, NVMEX_LM_STOP_LOGGING, &fx), NVMEX_SUCCESS);
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx), NVMEX_SUCCESS);
    assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_SUSPENDED);
    assert_int_equal(lm.suspends, 2);
}

/*
 * NVM Command Set, LBA Migration Queue (Figure 177): a suspend writes
 * the "last - suspended" entry and logging goes on; after Resume the next
 * entry is the first (ESA 001b); stop while suspended ends it (010b).
 */
static void test_logging_survives_suspend(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx), NVMEX_SUCCESS);
    assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_suspended);
    assert_false(fx.logging_ended);
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_SUSPENDED);
    assert_true(lm.logging);
    assert_true(nvmex_lm_valid(&lm));
    /* Starting it again while it still logs is refused, as when running */
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx),
                     NVMEX_INVALID_FIELD);

    assert_int_equal(step(&lm, NVMEX_LM_RESUME, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_resumed);
    assert_false(fx.logging_ended);
    assert_string_equal(nvmex_lm_state_name(&lm), "logging");

    /* Suspended again, then stopped: the stop entry ends logging */
    assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_suspended);
    assert_string_equal(nvmex_lm_state_name(&lm), "suspended+logging");
    assert_int_equal(step(&lm, NVMEX_LM_STOP_LOGGING, &fx), NVMEX_SUCCESS);
    assert_true(fx.logging_ended);
    assert_int_equal(fx.esa, NVMEX_LM_ESA_LAST_LOGGING_STOPPED);
    assert_false(lm.logging);
    assert_string_equal(nvmex_lm_state_name(&lm), "suspended");
    assert_int_equal(step(&lm, NVMEX_LM_RESUME, &fx), NVMEX_SUCCESS);
    assert_false(fx.logging_resumed);   /* nothing logs any more */

    /* A full queue while suspended ends it too */
    step(&lm, NVMEX_LM_START_LOGGING, &fx);
    step(&lm, NVMEX_LM_SUSPEND, &fx);
    assert_true(nvmex_lm_queue_full(&lm));
    assert_string_equal(nvmex_lm_state_name(&lm), "suspended");
    assert_int_equal(step(&lm, NVMEX_LM_RESUME, &fx), NVMEX_SUCCESS);
    assert_false(fx.logging_resumed);
    assert_int_equal(lm.refused, 1);
}

static void test_queue_full_ends_logging(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    assert_false(nvmex_lm_queue_full(&lm));
    step(&lm, NVMEX_LM_START_LOGGING, &fx);
    assert_true(nvmex_lm_queue_full(&lm));
    assert_false(lm.logging);
    assert_string_equal(nvmex_lm_state_name(&lm), "running");
}

/* A Controller Level Reset removes the suspended state (Base 2.1) */
static void test_controller_reset(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_int_equal(step(&lm, NVMEX_LM_GET_STATE, &fx), NVMEX_SUCCESS);
    assert_false(nvmex_lm_controller_reset(&lm));   /* it did not log */
    assert_string_equal(nvmex_lm_state_name(&lm), "running");
    assert_true(nvmex_lm_valid(&lm));
    assert_int_equal(step(&lm, NVMEX_LM_RESUME, &fx),
                     NVMEX_LM_CTRL_NOT_SUSPENDED);
    /* Logging (the management controller's queue) is not touched */
    assert_int_equal(step(&lm, NVMEX_LM_START_LOGGING, &fx), NVMEX_SUCCESS);
    assert_false(nvmex_lm_controller_reset(&lm));   /* not suspended */
    assert_string_equal(nvmex_lm_state_name(&lm), "logging");
    /* A suspended controller that logs: its reset acts as a Resume */
    assert_int_equal(step(&lm, NVMEX_LM_SUSPEND, &fx), NVMEX_SUCCESS);
    assert_true(nvmex_lm_controller_reset(&lm));
    assert_string_equal(nvmex_lm_state_name(&lm), "logging");
}

static void test_bad_event_and_invalid_loaded_state(void **state)
{
    NvmexLm lm;
    NvmexLmEffects fx;

    (void)state;
    nvmex_lm_init(&lm);
    assert_int_equal(step(&lm, NVMEX_LM_NR_EVENTS, &fx), NVMEX_INVALID_FIELD);
    assert_int_equal(step(&lm, (NvmexLmEvent)-1, &fx), NVMEX_INVALID_FIELD);
    assert_string_equal(nvmex_lm_event_name(NVMEX_LM_NR_EVENTS), "unknown");
    assert_string_equal(nvmex_lm_event_name(NVMEX_LM_RESUME), "resume");

    lm.captured = true;                 /* captured while running */
    assert_false(nvmex_lm_valid(&lm));
    lm.suspended = true;
    assert_true(nvmex_lm_valid(&lm));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_migration),
        cmocka_unit_test(test_every_event_in_both_states),
        cmocka_unit_test(test_status_codes_are_tp4159s),
        cmocka_unit_test(test_logging_twice_and_stop),
        cmocka_unit_test(test_second_pass),
        cmocka_unit_test(test_logging_survives_suspend),
        cmocka_unit_test(test_queue_full_ends_logging),
        cmocka_unit_test(test_bad_event_and_invalid_loaded_state),
        cmocka_unit_test(test_controller_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
