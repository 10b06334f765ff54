/*
 * Waiting for a migration's status (QMP query-migrate) in the iolab
 * qtests, benchmarks and tools.
 *
 * Every test that migrates polls query-migrate until the migration
 * reaches some status; the waits differ only in the status they wait
 * for, how long they give it, and what they do with the result.  They
 * share this one loop so that how a status is read, when the wait stops
 * and how often it polls are decided once.  The destinations that load
 * a stream to see whether it is refused start that load here too, so
 * that they all ask for it in the same way.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_MIGRATE_WAIT_H
#define IOLAB_MIGRATE_WAIT_H

#include "libqtest.h"
#include "qobject/qdict.h"
#include "libqos/pci.h"

/*
 * Poll query-migrate on @qts until its status is one of @until (a
 * NULL-terminated list; NULL stands for none) or an end, "completed",
 * "failed" or "cancelled" (a migration never leaves an end, so waiting
 * on would only run into the timeout), or until @timeout_us has passed.
 *
 * Returns the status last seen ("none" if the reply had none): the one
 * waited for, an end, or on timeout whatever it was then.  g_free it.
 * If @reply is not NULL, *@reply gets the "return" dictionary of the last
 * reply (NULL if it had none: qobject_unref it), for the fields that
 * come with the status (error-desc, downtime, total-time ...).
 */
char *iolab_migrate_wait(QTestState *qts, const char *const *until,
                         gint64 timeout_us, QDict **reply);

/*
 * Wait until @qts's migration is @want; assert that it gets there within
 * @timeout_us and does not end anywhere else (e.g. "failed") first.
 */
void iolab_migrate_wait_for(QTestState *qts, const char *want,
                            gint64 timeout_us);

/*
 * Wait until @qts's migration ends; assert that it does within
 * @timeout_us.  Returns the end: "completed", "failed" or "cancelled"
 * (g_free it).
 */
char *iolab_migrate_wait_end(QTestState *qts, gint64 timeout_us);

/*
 * Start an incoming migration from @uri on @qts (started with -incoming
 * defer), with exit-on-error off: a stream the destination refuses then
 * ends as a "failed" migration, with its reason in query-migrate's
 * error-desc, and leaves QEMU running for the test to question, instead
 * of making QEMU exit.  Asserts that QEMU accepts the command.
 */
void iolab_migrate_incoming(QTestState *qts, const char *uri);

/*
 * Load the stream saved in the file @path into @qts (started with
 * -incoming defer): iolab_migrate_incoming() from "file:@path", then
 * iolab_migrate_wait() for its end.  Returns "completed" or "failed",
 * or, if the load has not ended within @timeout_us, the status then
 * (g_free it); *@reply as iolab_migrate_wait() sets it, if not NULL.
 */
char *iolab_migrate_load_file(QTestState *qts, const char *path,
                              gint64 timeout_us, QDict **reply);

/*
 * The same, for a test that a load which does not end must fail: assert,
 * as iolab_migrate_wait_end() does, that it ends within @timeout_us.
 */
char *iolab_migrate_load_file_end(QTestState *qts, const char *path,
                                  gint64 timeout_us);

/*
 * Where in the saved stream @stream (@len bytes) the PCI config of @dev
 * is: found by its first 64 bytes as the guest reads them now, which
 * must occur exactly once (asserted).
 */
size_t iolab_stream_find_pci_config(QPCIDevice *dev, const uint8_t *stream,
                                    size_t len);

#endif
