/*
 * Waiting for a migration's status (QMP query-migrate) in the iolab
 * qtests, benchmarks and tools.
 *
 * Every test that migrates polls query-migrate until the migration
 * reaches some status; the waits differ only in the status they wait
 * for, how long they give it, and what they do with the result.  They
 * share this one loop so that how a status is read, when the wait stops
 * and how often it polls are decided once.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_MIGRATE_WAIT_H
#define IOLAB_MIGRATE_WAIT_H

#include "libqtest.h"
#include "qobject/qdict.h"

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

#endif
