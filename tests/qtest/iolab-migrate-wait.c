/*
 * Waiting for a migration's status: see iolab-migrate-wait.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "iolab-migrate-wait.h"

/*
 * Poll every 2 ms for the first 100 ms, then every 10 ms.  mig-mutator
 * loads thousands of streams that each end within milliseconds, so a
 * coarse poll would be most of its run time; the qtests' migrations run
 * for seconds, where polling at 500 Hz would only take the BQL from the
 * vCPU and migration threads more often.
 */
#define IOLAB_MIGRATE_POLL_FAST_US      2000
#define IOLAB_MIGRATE_POLL_SLOW_US      10000
#define IOLAB_MIGRATE_FAST_FOR_US       (100 * 1000)

static bool iolab_migrate_is_one_of(const char *status,
                                    const char *const *list)
{
    for (; list && *list; list++) {
        if (!strcmp(status, *list)) {
            return true;
        }
    }
    return false;
}

static bool iolab_migrate_is_end(const char *status)
{
    static const char *const ends[] = {
        "completed", "failed", "cancelled", NULL
    };

    return iolab_migrate_is_one_of(status, ends);
}

char *iolab_migrate_wait(QTestState *qts, const char *const *until,
                         gint64 timeout_us, QDict **reply)
{
    gint64 start = g_get_monotonic_time();

    if (reply) {
        *reply = NULL;
    }
    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        const char *st = ret ? qdict_get_try_str(ret, "status") : NULL;
        char *status = g_strdup(st ?: "none");
        gint64 waited = g_get_monotonic_time() - start;

        if (reply) {
            qobject_unref(*reply);
            *reply = ret ? qobject_ref(ret) : NULL;
        }
        qobject_unref(rsp);
        if (iolab_migrate_is_one_of(status, until) ||
            iolab_migrate_is_end(status) || waited > timeout_us) {
            return status;
        }
        g_free(status);
        g_usleep(waited < IOLAB_MIGRATE_FAST_FOR_US
                 ? IOLAB_MIGRATE_POLL_FAST_US : IOLAB_MIGRATE_POLL_SLOW_US);
    }
}

void iolab_migrate_wait_for(QTestState *qts, const char *want,
                            gint64 timeout_us)
{
    const char *const until[] = { want, NULL };
    g_autofree char *status = iolab_migrate_wait(qts, until, timeout_us,
                                                  NULL);

    g_assert_cmpstr(status, ==, want);
}

/* Fail the test unless @status, a wait's result, is an end */
static void iolab_migrate_assert_ended(const char *status, gint64 timeout_us)
{
    if (!iolab_migrate_is_end(status)) {
        g_error("the migration did not end within %" PRId64 " ms: it is '%s'",
                timeout_us / 1000, status);
    }
}

char *iolab_migrate_wait_end(QTestState *qts, gint64 timeout_us)
{
    char *status = iolab_migrate_wait(qts, NULL, timeout_us, NULL);

    iolab_migrate_assert_ended(status, timeout_us);
    return status;
}

void iolab_migrate_incoming(QTestState *qts, const char *uri)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s, "
                             "'exit-on-error': false } }", uri);
}

char *iolab_migrate_load_file(QTestState *qts, const char *path,
                              gint64 timeout_us, QDict **reply)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    iolab_migrate_incoming(qts, uri);
    return iolab_migrate_wait(qts, NULL, timeout_us, reply);
}

char *iolab_migrate_load_file_end(QTestState *qts, const char *path,
                                  gint64 timeout_us)
{
    char *status = iolab_migrate_load_file(qts, path, timeout_us, NULL);

    iolab_migrate_assert_ended(status, timeout_us);
    return status;
}

size_t iolab_stream_find_pci_config(QPCIDevice *dev, const uint8_t *stream,
                                    size_t len)
{
    uint8_t cfg[64];
    size_t at = 0;
    int n = 0;

    for (int i = 0; i < sizeof(cfg); i++) {
        cfg[i] = qpci_config_readb(dev, i);
    }
    for (size_t i = 0; i + sizeof(cfg) <= len; i++) {
        if (!memcmp(stream + i, cfg, sizeof(cfg))) {
            at = i;
            n++;
        }
    }
    g_assert_cmpint(n, ==, 1);
    return at;
}
