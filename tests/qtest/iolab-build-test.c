/*
 * iolab build smoke test: the emulator is the pinned upstream release, it
 * boots a q35 machine, and every QOM type that our hw/ directories declare
 * (IOLAB_DEVICE_TYPES, comma separated, filled in by meson) is registered.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

#define IOLAB_QEMU_MAJOR 10
#define IOLAB_QEMU_MINOR 0
#define IOLAB_QEMU_MICRO 2

static void test_version(void)
{
    QTestState *qts = qtest_init("-M q35");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-version' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *qemu = qdict_get_qdict(ret, "qemu");

    g_assert_cmpint(qdict_get_int(qemu, "major"), ==, IOLAB_QEMU_MAJOR);
    g_assert_cmpint(qdict_get_int(qemu, "minor"), ==, IOLAB_QEMU_MINOR);
    g_assert_cmpint(qdict_get_int(qemu, "micro"), ==, IOLAB_QEMU_MICRO);
    qobject_unref(rsp);
    qtest_quit(qts);
}

static void test_q35_boots(void)
{
    QTestState *qts = qtest_init("-M q35");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "running");
    qobject_unref(rsp);

    /* The host bridge of q35 answers on the PCI config space. */
    qtest_outl(qts, 0xcf8, 0x80000000);
    g_assert_cmphex(qtest_inl(qts, 0xcfc), ==, 0x29c08086);
    qtest_quit(qts);
}

static bool type_registered(QList *types, const char *name)
{
    const QListEntry *e;

    QLIST_FOREACH_ENTRY(types, e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));
        if (!strcmp(qdict_get_str(t, "name"), name)) {
            return true;
        }
    }
    return false;
}

static void test_our_types(void)
{
    g_auto(GStrv) names = g_strsplit(IOLAB_DEVICE_TYPES, ",", -1);
    QTestState *qts = qtest_init("-M q35");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-types',"
                           "  'arguments': { 'abstract': false } }");
    QList *types = qdict_get_qlist(rsp, "return");

    g_assert_nonnull(types);
    /* Upstream devices we build on must be there as well. */
    g_assert_true(type_registered(types, "virtio-blk-pci"));
    g_assert_true(type_registered(types, "intel-iommu"));
    for (char **n = names; *n; n++) {
        if (**n) {
            g_test_message("checking QOM type %s", *n);
            g_assert_true(type_registered(types, *n));
        }
    }
    qobject_unref(rsp);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/iolab/build/version", test_version);
    qtest_add_func("/iolab/build/q35-boots", test_q35_boots);
    qtest_add_func("/iolab/build/our-types", test_our_types);
    return g_test_run();
}
