/*
 * VPRI core: DMA pinning policies (none, lru, adp)
 *
 * The host reclaims guest memory without seeing DMA: a device access sets
 * no accessed bit in the CPU page tables, so plain reclaim evicts pages a
 * device is about to use, and each such use is an I/O page fault.  A pin
 * policy watches what the devices touch (the access tracker, collected
 * once per epoch) and pins, within a budget of pages, the pages it expects
 * the devices to touch next.  Pinned pages are never evicted; pinning an
 * evicted page pages it in first.
 *
 *   none  pins nothing: plain host reclaim, the baseline.
 *   lru   pins the most recently DMA'd pages of all devices, up to the
 *         budget.
 *   adp   Adaptive DMA Protector: one part per device, sized by measured
 *         benefit; NIC parts pin by recency, block parts by predicted
 *         next use (frequency and reuse distance); the parts of quiet
 *         devices decay.  docs/vpri-adp.rst explains why.
 *
 * Page numbers are whatever the caller indexes memory by (the evaluator:
 * guest page numbers; vpri-host: RAM page numbers).  Not thread-safe: the
 * caller serializes calls.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_PIN_POLICY_H
#define HW_VPRI_PIN_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef enum PinPolicyKind {
    PIN_POLICY_NONE = 0,
    PIN_POLICY_LRU = 1,
    PIN_POLICY_ADP = 2,
} PinPolicyKind;

#define PIN_POLICY_NR_KINDS 3

typedef enum PinDevKind {
    PIN_DEV_NIC = 0,
    PIN_DEV_BLOCK = 1,
} PinDevKind;

#define PIN_DEV_NR_KINDS 2

#define PIN_POLICY_MAX_DEVICES 16

typedef struct PinPolicy PinPolicy;

/* Called for every page whose pinned state changes at an epoch end. */
typedef void PinChangeFn(uint64_t page, bool pinned, void *opaque);

typedef struct PinPolicyDevStats {
    PinDevKind kind;
    /* Pages this device's part pins now (a page two parts pin counts in
     * both; the policy's total counts it once). */
    uint64_t pinned;
    /* The part's share of the budget, in pages (adp; lru: the budget). */
    uint64_t share;
    uint64_t observed;          /* page touches fed in */
    uint64_t faults;            /* I/O page faults fed in */
    uint64_t ghost_hits;        /* faults a larger share would have saved */
    uint64_t margin_hits;       /* touches of the last pins of the share */
    uint64_t quiet_epochs;      /* epochs since the device last touched */
} PinPolicyDevStats;

/* Names as the command line spells them; NULL for a bad value. */
const char *vpri_pin_policy_kind_name(PinPolicyKind kind);
const char *vpri_pin_dev_kind_name(PinDevKind kind);
/* 0 and the value in *@kind, or -EINVAL. */
int vpri_pin_policy_kind_parse(const char *name, PinPolicyKind *kind);
int vpri_pin_dev_kind_parse(const char *name, PinDevKind *kind);

/*
 * A policy over pages [0, @npages), pinning at most @budget pages.
 * NULL if @npages is 0 or too large, or out of memory.
 */
PinPolicy *vpri_pin_policy_new(PinPolicyKind kind, uint64_t npages,
                          uint64_t budget);
void vpri_pin_policy_free(PinPolicy *p);
PinPolicyKind vpri_pin_policy_kind(const PinPolicy *p);
uint64_t vpri_pin_policy_budget(const PinPolicy *p);
/* Takes effect at the next epoch end. */
void vpri_pin_policy_set_budget(PinPolicy *p, uint64_t budget);

/* Returns the device's index, or -ENOSPC beyond PIN_POLICY_MAX_DEVICES,
 * -EINVAL for a bad kind. */
int vpri_pin_policy_add_device(PinPolicy *p, PinDevKind kind);
/* Forget a device: its pins go at the next epoch end. */
void vpri_pin_policy_remove_device(PinPolicy *p, unsigned dev);

/*
 * Device @dev touched @page during the current epoch (fed from the access
 * tracker, in any order; more than one touch per epoch counts once).
 * Out-of-range pages and devices are ignored.
 */
void vpri_pin_policy_observe(PinPolicy *p, unsigned dev, uint64_t page);

/*
 * Device @dev was given @page for a DMA still to come (a NIC reads the
 * descriptors of the receive buffers posted to it before it fills them):
 * not an access, but a promise of one.  Only adp's recency (NIC) parts use
 * it, as a touch; lru pins what was DMA'd, so it ignores it, and so do
 * block parts, whose buffers are used as soon as they are posted.
 */
void vpri_pin_policy_armed(PinPolicy *p, unsigned dev, uint64_t page);

/* Device @dev took an I/O page fault on @page. */
void vpri_pin_policy_fault(PinPolicy *p, unsigned dev, uint64_t page);

/*
 * End the current epoch: recompute the pins and report each change through
 * @fn (may be NULL).  Unpins are reported before pins, so a caller that
 * applies them in order never holds more than the budget.
 */
void vpri_pin_policy_epoch(PinPolicy *p, PinChangeFn *fn, void *opaque);

bool vpri_pin_policy_is_pinned(const PinPolicy *p, uint64_t page);
/* Pages pinned now, each counted once. */
uint64_t vpri_pin_policy_pinned(const PinPolicy *p);
/* -EINVAL for a bad device. */
int vpri_pin_policy_dev_stats(const PinPolicy *p, unsigned dev,
                         PinPolicyDevStats *st);

#endif
