/*
 * A Controller Data Queue (TP4159, NVMe Base 2.1+ "Controller Data Queue"
 * command 45h) of type User Data Migration Queue: the ring the management
 * controller writes LBA Migration Queue Entries (Type 0) into, in host
 * memory, for the host to consume.
 *
 * The ring follows the completion-queue convention the host already knows:
 *   - the controller writes slot @tail and advances it; wrapping from the
 *     last slot to slot 0 inverts the phase tag it writes;
 *   - the first pass is written with phase tag 1 (the host zeroes the
 *     memory, so 0 means "not yet written");
 *   - the host consumes entries whose phase tag is the one it expects and
 *     reports how far it got as the head pointer (Set Features 21h CDW12,
 *     an entry index, as libvfn's examples/migrate.c uses it);
 *   - the queue is full when advancing the tail would reach the head: one
 *     slot always stays empty, so head == tail means empty.
 *
 * Logging keeps one more slot free, for the entry that ends it: when only
 * that slot is left, the next change is not logged and the last entry is
 * "last - queue full" with "all LBAs changed" instead (nvmex_cdq_room()).
 *
 * QEMU-free (libc only).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_CDQ_H
#define HW_NVME_EXPORT_NVMEX_CDQ_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/nvme-export/core/nvmex-lm.h"

/* LBA Migration Queue Entry Type 0: 32 bytes */
#define NVMEX_CDQ_ENTRY_SIZE 32

/* LBA Change Information Reported (LBAMQA bits 7:6) */
typedef enum NvmexLbacir {
    NVMEX_LBACIR_CHANGE = 0,        /* NSID/SLBA/NLB name the change */
    NVMEX_LBACIR_ALL_CHANGED = 1,   /* treat every LBA as changed */
    NVMEX_LBACIR_NO_CHANGE = 2,     /* a marker entry, no LBA change */
} NvmexLbacir;

/* One decoded entry */
typedef struct NvmexCdqEntry {
    uint32_t nsid;
    uint32_t nlb;                   /* 0's based, as on the wire */
    uint64_t slba;
    uint8_t phase;
    NvmexLmEsa esa;
    NvmexLbacir lbacir;
} NvmexCdqEntry;

typedef struct NvmexCdq {
    uint32_t nentries;              /* slots in the ring */
    uint32_t head;                  /* host consumed up to here */
    uint32_t tail;                  /* next slot the controller writes */
    uint8_t phase;                  /* phase tag written this pass */
    bool first_pending;             /* next entry carries ESA "first" */
    bool tpt_enabled;               /* ETPT: tail pointer trigger armed */
    uint32_t tpt;                   /* slot that triggers the event */
} NvmexCdq;

/*
 * A queue of @size_dwords dwords (CDQSIZE); false when that is not a
 * whole number of entries or fewer than NVMEX_CDQ_MIN_ENTRIES.
 */
#define NVMEX_CDQ_MIN_ENTRIES 4
bool nvmex_cdq_init(NvmexCdq *q, uint32_t size_dwords);

/* Slots the host has not consumed yet */
uint32_t nvmex_cdq_used(const NvmexCdq *q);

/*
 * Entries logging may still write for changes: the free slots minus the
 * one kept for the entry that ends logging.
 */
uint32_t nvmex_cdq_room(const NvmexCdq *q);

/*
 * The host's new head pointer (Feature 21h).  False, and nothing changes,
 * when it is not a slot or would pass entries not yet written.
 */
bool nvmex_cdq_set_head(NvmexCdq *q, uint32_t head);

/*
 * Claim the next slot for an entry: returns the slot and fills @e's phase
 * and, when logging just started, ESA "first" (unless @e carries a "last"
 * ESA already).  The caller has checked there is a free slot.  Returns
 * whether the tail pointer trigger fired.
 */
uint32_t nvmex_cdq_push(NvmexCdq *q, NvmexCdqEntry *e, bool *tpt_fired);

/* Whether a slot is free at all (for the entry that ends logging) */
bool nvmex_cdq_has_free_slot(const NvmexCdq *q);

void nvmex_cdq_entry_encode(const NvmexCdqEntry *e,
                            uint8_t out[NVMEX_CDQ_ENTRY_SIZE]);
void nvmex_cdq_entry_decode(const uint8_t in[NVMEX_CDQ_ENTRY_SIZE],
                            NvmexCdqEntry *e);

/*
 * The controller a Create CDQ command names, from its CDW11.  The spec
 * puts PC in bit 0 and the CNTLID in CQS, bits 31:16.  libnvme before
 * 1.15 (Debian trixie's 1.13, under nvme-cli 2.13's `lm create-cdq`)
 * writes the CNTLID into bits 15:0 instead and ORs PC over its bit 0, so
 * its CQS is 0.  **(choice)** When CQS is 0, PC is 1 and bits 15:1 are
 * not all 0, the command is read as that older encoding: it names either
 * CDW11[15:0] or CDW11[15:0] with bit 0 cleared, and the caller takes the
 * one of the two it manages (neither or both: Invalid Controller
 * Identifier).  Returns the number of candidates (1 or 2) put in @cntlid;
 * @pc gets the PC bit.
 */
int nvmex_cdq_create_cntlids(uint32_t dw11, uint16_t cntlid[2], bool *pc);

/* Checks a ring loaded from a migration stream */
bool nvmex_cdq_valid(const NvmexCdq *q);

#endif
