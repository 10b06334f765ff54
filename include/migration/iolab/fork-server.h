/*
 * The fork server of the migration-stream mutator: the x-iolab-fork
 * test hook (qapi/iolab-test.json, docs/fuzzing.rst).
 *
 * A forked child has only the thread that called fork().  What QEMU
 * itself needs in the child (vCPU threads of the qtest accelerator, the
 * block layer's thread pool, the RCU thread) the fork server restores;
 * a device that runs threads of its own registers a child notifier and
 * starts them again there, with new descriptors for anything a thread
 * of the template would otherwise share with it (event notifiers,
 * userfaultfds, which belong to the template's memory).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MIGRATION_IOLAB_FORK_SERVER_H
#define MIGRATION_IOLAB_FORK_SERVER_H

#include "qemu/notify.h"

/*
 * Call @n in the child of every x-iolab-fork, in the main thread with
 * the BQL held, before the child answers.
 */
void iolab_fork_add_child_notifier(Notifier *n);
void iolab_fork_remove_child_notifier(Notifier *n);

/* Is this process a child of x-iolab-fork? */
bool iolab_fork_is_child(void);

#endif
