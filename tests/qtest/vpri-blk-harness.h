/*
 * Shared qtest harness for the vpri-blk tests and benchmark.
 *
 * vpri-blk-test and vpri-fault-test drive the same device the same way:
 * one vpri-blk on an 8 MiB raw image in a fresh QEMU whose guest-error
 * log they read back, MSI-X vectors that write to a page of guest memory,
 * and every case in a child process of its own.  What they share lives
 * here, so that a fix to the set-up or to a wait applies to both; what
 * they check, and the bounds they check it with, stays in each test.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_VPRI_BLK_HARNESS_H
#define IOLAB_VPRI_BLK_HARNESS_H

#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "libqos/malloc-pc.h"
#include "vpri-virtio.h"

/* A modern (virtio 1.x only) virtio-blk PCI function */
#define VIRTIO_VENDOR       0x1af4
#define VIRTIO_BLK_MODERN   0x1042

/* virtio-blk (virtio 1.2, 5.2) */
#define BLK_F_SEG_MAX       2
#define BLK_F_RO            5
#define BLK_F_BLK_SIZE      6
#define BLK_F_FLUSH         9
#define BLK_F_MQ            12

#define BLK_T_IN            0
#define BLK_T_OUT           1
#define BLK_T_FLUSH         4
#define BLK_T_GET_ID        8

#define BLK_S_OK            0
#define BLK_S_IOERR         1
#define BLK_S_UNSUPP        2

#define BLK_ID_BYTES        20

/* struct virtio_blk_config offsets */
#define CFG_CAPACITY        0
#define CFG_SEG_MAX         12
#define CFG_BLK_SIZE        20
#define CFG_NUM_QUEUES      34

/* The raw image behind the device, and its sector size */
#define IMG_SIZE            (8 * MiB)
#define SECTOR              512

/* MSI-X messages: vector v writes MSI_DATA(v) to msi_base + 4 * v */
#define MSI_DATA(v)         (0x4000u + (v))

typedef struct Ctx {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    VVDev *d;
    char *img;
    int img_fd;
    char *log;              /* QEMU's -d guest_errors log */
    int log_fd;
    uint16_t nq;
    uint64_t msi_base;      /* 0 without MSI-X */
} Ctx;

/*
 * Bring up the libqos PC allocator and PCI bus on @qts and find the
 * modern virtio-blk function on it (asserts there is one).
 */
VVDev *vblk_attach(QTestState *qts, QGuestAllocator *alloc, QPCIBus **bus);
/* The same for any modern virtio function @pci_device (vpri-nic: 0x1041). */
VVDev *vpri_attach(QTestState *qts, QGuestAllocator *alloc, QPCIBus **bus,
                   uint16_t pci_device);

/* Undo vblk_attach() and quit QEMU. */
void vblk_quit(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
               VVDev *d);

/*
 * The first half of starting a test: a zeroed IMG_SIZE image file and an
 * empty log file, named after @tag.  The caller builds QEMU's command line
 * around c->img and c->log, which only it knows the shape of, and passes
 * it to ctx_connect().
 */
Ctx *ctx_new(const char *tag);

/* Start QEMU with @args and find the virtio-blk device in it. */
void ctx_connect(Ctx *c, const char *args);
/* The same for another device than virtio-blk. */
void ctx_connect_device(Ctx *c, const char *args, uint16_t pci_device);

void ctx_stop(Ctx *c);

/*
 * Enable MSI-X, allocate a zeroed page for the messages and point vectors
 * 0 .. @nvectors - 1 each at their own word of it.
 */
void ctx_msix(Ctx *c, uint16_t nvectors);

/*
 * Point vectors 0 .. @nvectors - 1 at their words of the page again:
 * needed after a device reset, which forgets the MSI-X table.
 */
void ctx_msix_program(Ctx *c, uint16_t nvectors);

/* Zero the message page, so that the next wait sees only new messages. */
void msi_clear(Ctx *c);

/* Wait for vector @vector's message, up to @timeout_us. */
bool ctx_wait_msi(Ctx *c, uint16_t vector, gint64 timeout_us);

/* The virtio initialisation with @features and @nq queues. */
void ctx_init_features(Ctx *c, uint16_t nq, uint64_t features);

static inline VVQueue *queue(Ctx *c, uint16_t i)
{
    return &c->d->queues[i];
}

/*
 * Migrate @src to @dst (started with -incoming @uri), wait until it has
 * completed and the destination runs, then point @c's driver at @dst and
 * quit @src.
 */
void ctx_migrate(Ctx *c, QTestState *dst, const char *uri);

/* QEMU is up and the guest is running (nothing stopped or crashed it). */
void assert_running(Ctx *c);

/* QEMU's log (-D) contains @needle. */
void assert_logged(Ctx *c, const char *needle);

/* Wait until device_status has NEEDS_RESET; false after @timeout_us. */
bool wait_needs_reset(Ctx *c, gint64 timeout_us);

/*
 * g_test_init(), and whether this emulator has vpri-blk at all.  If not,
 * returns false with the program's one result set to a skip: main() then
 * returns g_test_run() at once.  @case_timeout_us bounds every case that
 * add_test() registers.
 */
bool vblk_tests_init(int *argc, char ***argv, gint64 case_timeout_us);
/* The same for the device type @type. */
bool vpri_tests_init(int *argc, char ***argv, gint64 case_timeout_us,
                     const char *type);

/*
 * Register @fn as test case @path, run in a child process of its own, so
 * that a QEMU crash, a deadlock or a failed assertion in one case does not
 * stop the others.
 */
void add_test(const char *path, void (*fn)(void));

#endif
