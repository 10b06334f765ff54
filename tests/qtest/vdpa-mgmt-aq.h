/*
 * qtest driver for vdpa-mgmt: the admin queue and instance rings
 *
 * A small driver written from docs/vdpa-mgmt.rst: it sets up the admin
 * submission and completion rings in guest memory, submits commands
 * (one at a time or in batches), and drives a blk instance's
 * split virtqueue through the shared doorbell.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IOLAB_VDPA_MGMT_AQ_H
#define IOLAB_VDPA_MGMT_AQ_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/libqos-malloc.h"
#include "hw/vdpa-mgmt/core/vdpa-cmd.h"

/* Virtio bits the tests negotiate */
#define VM_F_VERSION_1 (1ULL << 32)

typedef struct VMCqe {
    uint16_t cid;
    uint16_t status;
    uint16_t qual;
    uint64_t result;
} VMCqe;

typedef struct VMAdmin {
    QTestState *qts;
    QGuestAllocator *alloc;
    QPCIBus *bus;
    QPCIDevice *pdev;
    QPCIBar bar;
    uint32_t size;
    uint64_t sq, cq;
    uint32_t sq_tail;
    uint32_t cq_head;
    bool phase;
    uint16_t cid;
    uint64_t buf;               /* VM_BUF_SIZE scratch for results */
} VMAdmin;

#define VM_BUF_SIZE 65536

/* Find the function, enable it and its admin queue of @size entries */
VMAdmin *vm_open(QTestState *qts, QGuestAllocator *alloc, QPCIBus *bus,
                 uint32_t size);
void vm_close(VMAdmin *a);

uint32_t vm_reg_read(VMAdmin *a, uint32_t off);
void vm_reg_write(VMAdmin *a, uint32_t off, uint32_t val);
void vm_doorbell(VMAdmin *a, uint32_t inst, uint16_t queue);

/*
 * PCIe extended configuration space of the function, through q35's
 * MMCONFIG window (enabled on first use: no firmware runs under qtest).
 */
uint32_t vm_ext_config_readl(VMAdmin *a, uint16_t off);
void vm_ext_config_writew(VMAdmin *a, uint16_t off, uint16_t val);
/* Set PASID Enable in the function's PCIe PASID capability */
void vm_enable_pasid(VMAdmin *a);

/* A command skeleton: our group type, the next cid */
VdpaCmd vm_cmd_new(VMAdmin *a, uint16_t opcode, uint64_t member);

/* Submit @n commands (n < size) with one doorbell; wait for all */
void vm_submit(VMAdmin *a, const VdpaCmd *cmds, uint32_t n, VMCqe *out);
VMCqe vm_exec(VMAdmin *a, const VdpaCmd *cmd);

/* Common sequences; each asserts success */
uint32_t vm_create_blk(VMAdmin *a, uint16_t nqueues, uint32_t backend);
void vm_set_status(VMAdmin *a, uint32_t inst, uint8_t status,
                   uint64_t features);
void vm_destroy(VMAdmin *a, uint32_t inst);
void vm_set_msi(VMAdmin *a, uint32_t inst, uint16_t queue, uint64_t addr,
                uint32_t data, bool masked);

/* Driver side of one split virtqueue, one request in flight at a time */
typedef struct VMRing {
    uint64_t mem;               /* VM_RING_BYTES: rings, header, status */
    uint64_t desc, avail, used, hdr, status;
    uint16_t size;
    uint16_t avail_idx;
    uint16_t last_used;
} VMRing;

#define VM_RING_SIZE  4
#define VM_RING_BYTES 256

/* Lay out a ring at @mem (VM_RING_BYTES, 16-byte aligned) */
void vm_ring_init(VMRing *r, uint64_t mem);
/* Queue setup command for it */
VdpaCmd vm_ring_setup_cmd(VMAdmin *a, const VMRing *r, uint32_t inst,
                          uint16_t queue);

/*
 * Post one virtio-blk request (header, @len bytes at @data, status) and
 * kick; vm_blk_wait() waits for it and returns the status byte, or -1
 * if it did not complete in time.
 */
void vm_blk_post(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
                 uint32_t type, uint64_t sector, uint64_t data, uint32_t len);
int vm_blk_wait(VMAdmin *a, VMRing *r);
int vm_blk_io(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
              uint32_t type, uint64_t sector, uint64_t data, uint32_t len);

/*
 * Post one single-descriptor buffer (device-writable if @write) and
 * kick; vm_ring_wait() waits for it, returns the used length, or -1 if
 * nothing completed in time.
 */
void vm_ring_post(VMAdmin *a, VMRing *r, uint32_t inst, uint16_t queue,
                  uint64_t addr, uint32_t len, bool write);
int vm_ring_wait(VMAdmin *a, VMRing *r, gint64 timeout_us);

/* A created instance of @type, brought to DRIVER_OK with @nq rings */
uint32_t vm_bring_up(VMAdmin *a, VMRing *rings, uint8_t type, uint16_t nq,
                     uint32_t backend, const uint8_t *mac);

#endif
