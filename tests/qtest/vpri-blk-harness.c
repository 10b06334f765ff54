/*
 * Shared qtest harness for the vpri-blk tests and benchmark.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "vpri-blk-harness.h"
#include "iolab-migrate-wait.h"

/* The page of guest memory that MSI-X messages are written to */
#define MSI_PAGE            4096

VVDev *vpri_attach(QTestState *qts, QGuestAllocator *alloc, QPCIBus **bus,
                   uint16_t pci_device)
{
    VVDev *d;

    pc_alloc_init(alloc, qts, 0);
    *bus = qpci_new_pc(qts, alloc);
    d = vv_dev_find(qts, *bus, alloc, VIRTIO_VENDOR, pci_device);
    g_assert(d);
    return d;
}

VVDev *vblk_attach(QTestState *qts, QGuestAllocator *alloc, QPCIBus **bus)
{
    return vpri_attach(qts, alloc, bus, VIRTIO_BLK_MODERN);
}

void vblk_quit(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
               VVDev *d)
{
    vv_dev_free(d);
    qpci_free_pc(bus);
    alloc_destroy(alloc);
    qtest_quit(qts);
}

Ctx *ctx_new(const char *tag)
{
    Ctx *c = g_new0(Ctx, 1);
    g_autofree char *img_tmpl = g_strdup_printf("%s-XXXXXX.img", tag);
    g_autofree char *log_tmpl = g_strdup_printf("%s-XXXXXX.log", tag);
    g_autoptr(GError) err = NULL;

    c->img_fd = g_file_open_tmp(img_tmpl, &c->img, &err);
    g_assert_no_error(err);
    g_assert_cmpint(ftruncate(c->img_fd, IMG_SIZE), ==, 0);
    c->log_fd = g_file_open_tmp(log_tmpl, &c->log, &err);
    g_assert_no_error(err);
    return c;
}

void ctx_connect(Ctx *c, const char *args)
{
    ctx_connect_device(c, args, VIRTIO_BLK_MODERN);
}

void ctx_connect_device(Ctx *c, const char *args, uint16_t pci_device)
{
    c->qts = qtest_init(args);
    /*
     * QEMU has both files open now: unlink them, so that nothing is left
     * behind if the test aborts.  We keep our own descriptors.
     */
    unlink(c->img);
    unlink(c->log);
    c->d = vpri_attach(c->qts, &c->alloc, &c->bus, pci_device);
}

void ctx_stop(Ctx *c)
{
    vblk_quit(c->qts, &c->alloc, c->bus, c->d);
    close(c->img_fd);
    close(c->log_fd);
    g_free(c->img);
    g_free(c->log);
    g_free(c);
}

void ctx_msix_program(Ctx *c, uint16_t nvectors)
{
    for (uint16_t v = 0; v < nvectors; v++) {
        vv_msix_set_entry(c->d, v, c->msi_base + 4 * v, MSI_DATA(v));
    }
}

void ctx_msix(Ctx *c, uint16_t nvectors)
{
    vv_msix_enable(c->d);
    c->msi_base = guest_alloc(&c->alloc, MSI_PAGE);
    msi_clear(c);
    ctx_msix_program(c, nvectors);
}

void msi_clear(Ctx *c)
{
    qtest_memset(c->qts, c->msi_base, 0, MSI_PAGE);
}

bool ctx_wait_msi(Ctx *c, uint16_t vector, gint64 timeout_us)
{
    return vv_wait_msi(c->d, c->msi_base + 4 * vector, MSI_DATA(vector),
                       timeout_us);
}

void ctx_init_features(Ctx *c, uint16_t nq, uint64_t features)
{
    c->nq = nq;
    vv_init(c->d, features, nq, 0);
}

void assert_running(Ctx *c)
{
    QDict *rsp = qtest_qmp(c->qts, "{ 'execute': 'query-status' }");
    QDict *ret;

    g_assert(rsp);
    g_assert(qdict_haskey(rsp, "return"));
    ret = qdict_get_qdict(rsp, "return");
    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "running");
    qobject_unref(rsp);
}

void assert_logged(Ctx *c, const char *needle)
{
    g_autoptr(GString) text = g_string_new(NULL);
    char chunk[4096];
    ssize_t n;
    off_t off = 0;

    /*
     * pread() from the start: QEMU appends to the file while we hold our
     * own descriptor, and each call must see all of it.
     */
    while ((n = pread(c->log_fd, chunk, sizeof(chunk), off)) > 0) {
        g_string_append_len(text, chunk, n);
        off += n;
    }
    if (!strstr(text->str, needle)) {
        g_test_message("guest error log:\n%s", text->str);
        g_error("nothing mentioning '%s' was logged", needle);
    }
}

bool wait_needs_reset(Ctx *c, gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;

    while (!(vv_get_status(c->d) & VV_S_NEEDS_RESET)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        vv_poll_step(c->d);
    }
    return true;
}

/* Set once by vblk_tests_init(): the bound of every isolated case */
static gint64 case_timeout_us;

bool vpri_tests_init(int *argc, char ***argv, gint64 timeout_us,
                     const char *type)
{
    g_test_init(argc, argv, NULL);
    case_timeout_us = timeout_us;

    if (!qtest_has_device(type)) {
        g_test_skip("device not built into this emulator");
        return false;
    }
    return true;
}

bool vblk_tests_init(int *argc, char ***argv, gint64 timeout_us)
{
    return vpri_tests_init(argc, argv, timeout_us, "vpri-blk");
}

static void run_isolated(const void *data)
{
    void (*fn)(void) = (void (*)(void))data;
    gint64 t0;

    /* The child, started by g_test_trap_subprocess() below: the case */
    if (g_test_subprocess()) {
        fn();
        return;
    }
    t0 = g_get_monotonic_time();
    g_test_trap_subprocess(NULL, case_timeout_us,
                           G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_message("took %.2f s",
                   (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC);
    if (!g_test_trap_has_passed()) {
        g_test_message("the case failed in its child process "
                       "(messages above)");
        g_test_fail();
    }
}

void add_test(const char *path, void (*fn)(void))
{
    g_assert(case_timeout_us > 0);
    qtest_add_data_func(path, (const void *)fn, run_isolated);
}

void ctx_migrate(Ctx *c, QTestState *dst, const char *uri)
{
    qtest_qmp_assert_success(c->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    iolab_migrate_wait_for(c->qts, "completed", 60 * G_USEC_PER_SEC);
    qtest_qmp_eventwait(dst, "RESUME");
    qtest_quit(c->qts);
    c->qts = dst;
    c->bus->qts = dst;
    c->d->qts = dst;
}
