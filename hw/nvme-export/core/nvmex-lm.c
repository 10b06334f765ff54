/*
 * The live-migration state machine of one NVMe controller (TP4159).
 * See include/hw/nvme-export/core/nvmex-lm.h for the rules.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <string.h>

#include "hw/nvme-export/core/nvmex-lm.h"

/*
 * Which run state allows which event: one row per event, the status a
 * running and a suspended controller answer.  Logging's own on/off rule
 * is checked after this table.
 */
static const struct NvmexLmRule {
    const char *name;
    uint16_t if_running;
    uint16_t if_suspended;
} nvmex_lm_rules[NVMEX_LM_NR_EVENTS] = {
    [NVMEX_LM_START_LOGGING] = {
        "start-logging", NVMEX_SUCCESS, NVMEX_SUCCESS },
    [NVMEX_LM_STOP_LOGGING] = {
        "stop-logging", NVMEX_SUCCESS, NVMEX_SUCCESS },
    [NVMEX_LM_SUSPEND_NOTIFY] = {
        "suspend-notify", NVMEX_SUCCESS, NVMEX_LM_CTRL_SUSPENDED },
    [NVMEX_LM_SUSPEND] = {
        "suspend", NVMEX_SUCCESS, NVMEX_LM_CTRL_SUSPENDED },
    [NVMEX_LM_RESUME] = {
        "resume", NVMEX_LM_CTRL_NOT_SUSPENDED, NVMEX_SUCCESS },
    [NVMEX_LM_SET_STATE] = {
        "set-state", NVMEX_LM_CTRL_NOT_SUSPENDED, NVMEX_SUCCESS },
    [NVMEX_LM_GET_STATE] = {
        "get-state", NVMEX_SUCCESS, NVMEX_SUCCESS },
};

void nvmex_lm_init(NvmexLm *lm)
{
    memset(lm, 0, sizeof(*lm));
}

bool nvmex_lm_controller_reset(NvmexLm *lm)
{
    bool resumed_logging = lm->suspended && lm->logging;

    lm->suspended = false;
    lm->captured = false;
    lm->applied = false;
    return resumed_logging;
}

static uint16_t nvmex_lm_refuse(NvmexLm *lm, uint16_t status)
{
    lm->refused++;
    return status;
}

uint16_t nvmex_lm_step(NvmexLm *lm, NvmexLmEvent ev, NvmexLmEffects *fx)
{
    uint16_t status;

    memset(fx, 0, sizeof(*fx));
    if ((unsigned)ev >= NVMEX_LM_NR_EVENTS) {
        return nvmex_lm_refuse(lm, NVMEX_INVALID_FIELD);
    }
    status = lm->suspended ? nvmex_lm_rules[ev].if_suspended
                           : nvmex_lm_rules[ev].if_running;
    if (status != NVMEX_SUCCESS) {
        return nvmex_lm_refuse(lm, status);
    }

    switch (ev) {
    case NVMEX_LM_START_LOGGING:
        if (lm->logging) {
            return nvmex_lm_refuse(lm, NVMEX_INVALID_FIELD);
        }
        lm->logging = true;
        fx->logging_started = true;
        break;
    case NVMEX_LM_STOP_LOGGING:
        if (!lm->logging) {
            return nvmex_lm_refuse(lm, NVMEX_INVALID_FIELD);
        }
        lm->logging = false;
        fx->logging_ended = true;
        fx->esa = NVMEX_LM_ESA_LAST_LOGGING_STOPPED;
        break;
    case NVMEX_LM_SUSPEND_NOTIFY:
        break;
    case NVMEX_LM_SUSPEND:
        lm->suspended = true;
        lm->captured = false;
        lm->applied = false;
        lm->suspends++;
        fx->stop_fetching = true;
        if (lm->logging) {
            /* Logging goes on: the entry ends the running period only */
            fx->logging_suspended = true;
            fx->esa = NVMEX_LM_ESA_LAST_SUSPENDED;
        }
        break;
    case NVMEX_LM_RESUME:
        lm->suspended = false;
        lm->captured = false;
        lm->applied = false;
        lm->resumes++;
        fx->start_fetching = true;
        fx->logging_resumed = lm->logging;
        break;
    case NVMEX_LM_SET_STATE:
        lm->applied = true;
        break;
    case NVMEX_LM_GET_STATE:
        fx->csup = lm->suspended;
        if (lm->suspended) {
            lm->captured = true;
        }
        break;
    default:
        return nvmex_lm_refuse(lm, NVMEX_INVALID_FIELD);
    }
    return NVMEX_SUCCESS;
}

bool nvmex_lm_queue_full(NvmexLm *lm)
{
    bool was = lm->logging;

    lm->logging = false;
    return was;
}

const char *nvmex_lm_state_name(const NvmexLm *lm)
{
    if (!lm->suspended) {
        return lm->logging ? "logging" : "running";
    }
    if (lm->applied) {
        return lm->logging ? "applied+logging" : "applied";
    }
    if (lm->captured) {
        return lm->logging ? "captured+logging" : "captured";
    }
    return lm->logging ? "suspended+logging" : "suspended";
}

const char *nvmex_lm_event_name(NvmexLmEvent ev)
{
    if ((unsigned)ev >= NVMEX_LM_NR_EVENTS) {
        return "unknown";
    }
    return nvmex_lm_rules[ev].name;
}

bool nvmex_lm_valid(const NvmexLm *lm)
{
    /* A running controller has no captured or applied state pending. */
    return lm->suspended || (!lm->captured && !lm->applied);
}
