/*
 * vpri-host and QEMU's postcopy migration: refused until they cooperate
 * (vpri-postcopy.h says why and where).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/notify.h"
#include "qapi/error.h"
#include "hw/qdev-core.h"
#include "migration/misc.h"
#include "migration/postcopy-ram.h"
#include "vpri-postcopy.h"
#include "trace.h"

struct VpriPostcopy {
    char *owner;
    NotifierWithReturn probe;
};

static void vpri_postcopy_refusal(VpriPostcopy *pc, Error **errp)
{
    error_setg(errp, "vpri-host '%s' does not support postcopy yet: its "
               "userfaultfd owns guest RAM, which postcopy needs "
               "(docs/vpri-host.rst, Migration)", pc->owner);
}

/* QEMU asks whether postcopy may be enabled, on either side. */
static int vpri_postcopy_notify(NotifierWithReturn *n, void *data,
                                Error **errp)
{
    VpriPostcopy *pc = container_of(n, VpriPostcopy, probe);
    const struct PostcopyNotifyData *pnd = data;

    if (pnd->reason != POSTCOPY_NOTIFY_PROBE &&
        pnd->reason != POSTCOPY_NOTIFY_OUTBOUND_PROBE) {
        return 0;
    }
    trace_vpri_postcopy_refused(pc->owner, pnd->reason);
    vpri_postcopy_refusal(pc, errp);
    return -ENOTSUP;
}

VpriPostcopy *vpri_postcopy_new(const char *owner, Error **errp)
{
    VpriPostcopy *pc = g_new0(VpriPostcopy, 1);

    pc->owner = g_strdup(owner);
    /*
     * Objects of the command line come before the migration object: QEMU
     * checks a capability of -global once it exists, asking the probes.
     */
    if (phase_check(PHASE_MACHINE_READY) && migrate_postcopy_ram()) {
        vpri_postcopy_refusal(pc, errp);
        error_append_hint(errp, "Clear the postcopy-ram capability "
                          "before creating a vpri-host.\n");
        g_free(pc->owner);
        g_free(pc);
        return NULL;
    }
    pc->probe.notify = vpri_postcopy_notify;
    postcopy_add_notifier(&pc->probe);
    return pc;
}

void vpri_postcopy_free(VpriPostcopy *pc)
{
    if (!pc) {
        return;
    }
    postcopy_remove_notifier(&pc->probe);
    g_free(pc->owner);
    g_free(pc);
}
