/*
 * Checks on the PCI config that a migration stream carries, shared by
 * every iolab PCI function (nvme-export, the vpri transport).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_IOLAB_PCI_STREAM_H
#define HW_IOLAB_PCI_STREAM_H

#include "qemu/error-report.h"
#include "hw/pci/pci_device.h"

/* Every iolab function raises its legacy interrupt on INTA. */
#define IOLAB_PCI_INTX_PIN 1

/*
 * QEMU's PCI config load compares only the bytes the device marks
 * read-only-to-the-guest and leaves Interrupt Pin to the device.
 * pci_set_irq() asserts on any pin but INTA..INTD, so a stream that moved
 * the pin would abort QEMU at the first INTx.  Call this from post_load:
 * it names the field and returns false when the stream's pin is not ours.
 */
static inline bool iolab_pci_stream_intx_pin_ok(PCIDevice *pci,
                                                const char *device)
{
    uint8_t pin = pci->config[PCI_INTERRUPT_PIN];

    if (pin != IOLAB_PCI_INTX_PIN) {
        error_report("%s: migration stream: config PCI_INTERRUPT_PIN is %u, "
                     "not %u (INTA)", device, pin, IOLAB_PCI_INTX_PIN);
        return false;
    }
    return true;
}

#endif
