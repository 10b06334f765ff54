/*
 * VPRI's monitor commands in an emulator built without VPRI (Kconfig
 * VPRI=n): the QAPI schema and 'info vpri' are registered regardless
 * (patches/0005), so the commands answer here.  query-vpri has nothing
 * to list; the commands naming a vpri-host fail as for a host that does
 * not exist, saying why.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vpri.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

#define VPRI_STUB_ERROR "no vpri-host '%s': this emulator is built " \
                        "without VPRI"

VpriInfo *qmp_query_vpri(Error **errp)
{
    return g_new0(VpriInfo, 1);
}

VpriReclaimResult *qmp_vpri_reclaim(const char *host, bool has_percent,
                                    int64_t percent, bool has_pages,
                                    int64_t pages, Error **errp)
{
    error_setg(errp, VPRI_STUB_ERROR, host);
    return NULL;
}

void qmp_vpri_pin(const char *host, uint64_t addr, uint64_t size,
                  Error **errp)
{
    error_setg(errp, VPRI_STUB_ERROR, host);
}

void qmp_vpri_unpin(const char *host, uint64_t addr, uint64_t size,
                    Error **errp)
{
    error_setg(errp, VPRI_STUB_ERROR, host);
}

void qmp_vpri_trace_start(const char *host, const char *file, Error **errp)
{
    error_setg(errp, VPRI_STUB_ERROR, host);
}

VpriTraceResult *qmp_vpri_trace_stop(const char *host, Error **errp)
{
    error_setg(errp, VPRI_STUB_ERROR, host);
    return NULL;
}

void hmp_info_vpri(Monitor *mon, const QDict *qdict)
{
    monitor_printf(mon, "VPRI is not built into this emulator\n");
}
