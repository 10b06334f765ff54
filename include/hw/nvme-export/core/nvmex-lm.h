/*
 * The live-migration state machine of one NVMe controller (TP4159).
 *
 * A controller being migrated is driven by commands about it: on a drive,
 * its migration-management controller's Track Send (3Dh), Migration Send
 * (41h) and Migration Receive (42h); in QEMU, the migration core's
 * handlers.  Both drive this one machine, so the rules live here once:
 *
 *   running --suspend--> suspended --resume--> running
 *      |  ^                  |
 *      |  |                  +-- get state (captured), set state (applied)
 *      start/stop logging
 *
 * - Logging (user-data change logging) runs beside either run state
 *   (NVM Command Set, LBA Migration Queue, Figure 177).  Suspending does
 *   not end it: the queue gets a "last - suspended" entry (ESA 011b),
 *   the suspended controller changes nothing (it fetches nothing), and
 *   after Resume the next entry is marked "first" (ESA 001b).  Only
 *   Track Send stop (ESA 010b, in either run state), a full queue
 *   (111b) or the queue's deletion end it.
 * - Get Controller State is allowed in both run states (its CQE says
 *   whether the controller was suspended: CSUP); Set Controller State
 *   only on a suspended controller.
 * - Every refusal is an NVMe status, so the management controller returns
 *   it as is: suspend twice is Controller Suspended (39h), resume or set
 *   state of a running controller is Controller Not Suspended (3Ah).
 *   Starting logging twice, or stopping it when it is off, is Invalid
 *   Field (a documented choice: the TPs' public text does not say).
 *
 * QEMU-free (libc only).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_LM_H
#define HW_NVME_EXPORT_NVMEX_LM_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/nvme-export/core/nvmex-spec.h"

/* User Data Migration Queues a management controller offers (MCUDMQ) */
#define NVMEX_LM_MAX_CDQS 4

/* Command-specific statuses (SCT 1) of TP4159. */
#define NVMEX_LM_CTRL_SUSPENDED     NVMEX_STATUS(NVMEX_SCT_CMD, 0x39)
#define NVMEX_LM_CTRL_NOT_SUSPENDED NVMEX_STATUS(NVMEX_SCT_CMD, 0x3a)

/* Entry Sequence Attribute of an LBA migration queue entry (LBAMQA 3:1). */
typedef enum NvmexLmEsa {
    NVMEX_LM_ESA_NONE = 0,
    NVMEX_LM_ESA_FIRST = 1,
    NVMEX_LM_ESA_LAST_LOGGING_STOPPED = 2,
    NVMEX_LM_ESA_LAST_SUSPENDED = 3,
    NVMEX_LM_ESA_LAST_QUEUE_FULL = 7,
} NvmexLmEsa;

typedef enum NvmexLmEvent {
    NVMEX_LM_START_LOGGING,     /* Track Send SEL 0h, LACT 1h */
    NVMEX_LM_STOP_LOGGING,      /* Track Send SEL 0h, LACT 0h */
    NVMEX_LM_SUSPEND_NOTIFY,    /* Migration Send SEL 0h, STYPE 0h */
    NVMEX_LM_SUSPEND,           /* Migration Send SEL 0h, STYPE 1h */
    NVMEX_LM_RESUME,            /* Migration Send SEL 1h */
    NVMEX_LM_SET_STATE,         /* Migration Send SEL 2h */
    NVMEX_LM_GET_STATE,         /* Migration Receive SEL 0h */
    NVMEX_LM_NR_EVENTS
} NvmexLmEvent;

typedef struct NvmexLm {
    bool suspended;
    bool logging;
    bool captured;      /* state read since the last suspend */
    bool applied;       /* state set since the last suspend */
    uint32_t suspends;
    uint32_t resumes;
    uint32_t refused;   /* events answered with an error status */
} NvmexLm;

/* What the caller must do after an accepted event. */
typedef struct NvmexLmEffects {
    bool stop_fetching;     /* stop fetching commands; finish in-flight */
    bool start_fetching;    /* fetch again from where it stopped */
    bool logging_started;   /* the queue's next entry is the first */
    bool logging_ended;     /* append the queue's last entry, with esa */
    bool logging_suspended; /* append the entry with esa; logging goes on */
    bool logging_resumed;   /* the queue's next entry is the first */
    NvmexLmEsa esa;
    bool csup;              /* Migration Receive: CQE DW0 bit 0 */
} NvmexLmEffects;

/* A controller that runs and does not log. */
void nvmex_lm_init(NvmexLm *lm);

/*
 * A Controller Level Reset of the managed controller: it is no longer
 * suspended (NVMe Base 2.1, Host Managed Live Migration; a state set on
 * it stays).  Logging, which its management controller's queue owns,
 * goes on.  Returns true when that ended the suspension of a logging
 * controller: like a Resume, the queue's next entry is the first.
 */
bool nvmex_lm_controller_reset(NvmexLm *lm);

/*
 * Apply @ev.  Returns NVMEX_SUCCESS and fills @fx, or returns the NVMe
 * status that refuses it and leaves @lm as it was (@fx cleared).
 */
uint16_t nvmex_lm_step(NvmexLm *lm, NvmexLmEvent ev, NvmexLmEffects *fx);

/*
 * The migration queue filled up: logging ends with a "last - queue full"
 * entry and every LBA must be treated as changed.  A no-op when logging
 * is off.  Returns whether logging was on.
 */
bool nvmex_lm_queue_full(NvmexLm *lm);

/*
 * "running", "logging", "suspended", "captured" or "applied"; the last
 * three with "+logging" when the suspended controller logs.
 */
const char *nvmex_lm_state_name(const NvmexLm *lm);
const char *nvmex_lm_event_name(NvmexLmEvent ev);

/*
 * Checks a state loaded from a migration stream: false when the flags
 * could not have been reached (e.g. captured while running).
 */
bool nvmex_lm_valid(const NvmexLm *lm);

#endif
