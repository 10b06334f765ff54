/*
 * HMP twins of VPRI's QMP commands that act on a vpri-host: vpri-reclaim,
 * vpri-pin, vpri-unpin, vpri-trace-start and vpri-trace-stop
 * (patches/0005 registers them; 'info vpri' lives in vpri-qmp.c).
 *
 * Each only parses its arguments, calls the QMP handler and prints the
 * answer or the error: the checks and their messages are the QMP
 * command's.  Built with and without VPRI, since the QMP handlers exist in
 * both (vpri-qmp.c or vpri-stubs.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vpri.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

void hmp_vpri_reclaim(Monitor *mon, const QDict *qdict)
{
    const char *host = qdict_get_str(qdict, "host");
    bool pages = qdict_get_try_bool(qdict, "pages", false);
    int64_t amount = qdict_get_int(qdict, "amount");
    g_autoptr(VpriReclaimResult) r = NULL;
    Error *err = NULL;

    r = qmp_vpri_reclaim(host, !pages, amount, pages, amount, &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "evicted %" PRIu64 " pages\n", r->evicted);
}

void hmp_vpri_pin(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_vpri_pin(qdict_get_str(qdict, "host"), qdict_get_int(qdict, "addr"),
                 qdict_get_int(qdict, "size"), &err);
    hmp_handle_error(mon, err);
}

void hmp_vpri_unpin(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_vpri_unpin(qdict_get_str(qdict, "host"),
                   qdict_get_int(qdict, "addr"),
                   qdict_get_int(qdict, "size"), &err);
    hmp_handle_error(mon, err);
}

void hmp_vpri_trace_start(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;

    qmp_vpri_trace_start(qdict_get_str(qdict, "host"),
                         qdict_get_str(qdict, "file"), &err);
    hmp_handle_error(mon, err);
}

void hmp_vpri_trace_stop(Monitor *mon, const QDict *qdict)
{
    g_autoptr(VpriTraceResult) r = NULL;
    Error *err = NULL;

    r = qmp_vpri_trace_stop(qdict_get_str(qdict, "host"), &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "%" PRIu64 " access records written\n", r->records);
}
