/*
 * The migration-stream mutator: what a device scenario provides.
 *
 * A scenario starts a source QEMU with one of our devices and drives it
 * into live state (queues enabled, requests in flight or held), from
 * which the mutator saves one stream.  The driver state it builds stays
 * in the mutator's memory; every mutant runs in a forked child that
 * inherits it, starts a fresh destination with the scenario's command
 * line, loads the mutant and, if the load succeeds, lets the scenario
 * point its driver at the destination and touch the device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_MIG_MUTATOR_H
#define IOLAB_MIG_MUTATOR_H

#include "libqtest.h"

/* What touching a loaded device showed */
typedef enum MutTouch {
    TOUCH_ANSWERED,         /* it completed work or answered registers */
    TOUCH_ERROR_STATE,      /* it reports its error state (NEEDS_RESET, CFS) */
    TOUCH_SILENT,           /* QEMU answers, the device does not (yet) */
} MutTouch;

typedef struct MutScenario MutScenario;

/* Job slots: children at once, each with its template in fork mode */
#define MUT_SLOTS 8

/* One run of a scenario: its files, its source, its driver */
typedef struct MutRun {
    const MutScenario *sc;
    char *dir;              /* the run's scratch directory */
    char *img[2];           /* backing images (shared by all QEMUs) */
    QTestState *qts;        /* the QEMU the driver talks to */
    void *priv;             /* the scenario's driver state */
    /*
     * The job slot whose QEMU args() is for and the driver talks to.  In
     * fork mode each slot's template keeps its netdev socketpair for all
     * its children: per slot, our end and QEMU's (-1: none).
     */
    int slot;
    int net_sock[MUT_SLOTS], net_peer[MUT_SLOTS];
    /*
     * How long a touch waits for the device to answer: the control's
     * full MUT_TOUCH_CONTROL_US (the unmutated stream must answer, even
     * on a loaded machine), a mutant's MUTATOR_TOUCH_MS.  A device that
     * does not answer is waited for with the qtest clock stepped in a
     * busy loop, so this wait is the price of every silent mutant.
     */
    gint64 touch_us;
} MutRun;

#define MUT_TOUCH_CONTROL_US    (2 * G_USEC_PER_SEC)

struct MutScenario {
    const char *name;           /* "vpri-blk", "vdpa-net", ... */
    const char *qom_type;       /* skipped when the emulator lacks it */
    const char *const *sections;/* idstr suffixes of the device sections */
    /* Command line of source and destinations (images in r->img) */
    char *(*args)(MutRun *r);
    /* Start the source (r->qts) and drive it into live state */
    void (*source)(MutRun *r);
    /* The load succeeded: point the driver at @dst (r->qts is @dst) */
    void (*attach)(MutRun *r, QTestState *dst);
    /* Use the device a little; no assertion on what it does */
    MutTouch (*touch)(MutRun *r);
};

extern const MutScenario mut_vpri_blk, mut_vpri_nic, mut_vdpa_blk,
                         mut_vdpa_net, mut_nvme_export,
                         mut_nvme_export_mgmt;

/*
 * A new socketpair for a netdev of the QEMU that args() is building, in
 * place of the slot's old one: returns QEMU's end (for fd=); the driver
 * finds its end with mut_net_sock().
 */
int mut_net_pair(MutRun *r);
int mut_net_sock(MutRun *r);

/* Wait for @cond (polled every 1 ms of virtual + real time) */
bool mut_poll(QTestState *qts, gint64 timeout_us,
              bool (*cond)(void *opaque), void *opaque);

/*
 * vpri-host vh0 of a source (mig-mutator-vpri.c): hold every fault
 * unanswered; evict exactly @pages of a guest of @ram_mb MiB; wait until
 * @want faults are pending.
 */
void mut_vpri_hold_faults(QTestState *qts);
void mut_vpri_evict_only(QTestState *qts, uint64_t *pages, int n,
                         uint64_t ram_mb);
void mut_vpri_wait_pending(QTestState *qts, uint64_t want);

#endif
