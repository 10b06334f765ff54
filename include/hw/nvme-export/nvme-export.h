/*
 * nvme-export: an NVMe controller presenting an exported NVM subsystem
 * made from a template (docs/nvme-export.rst)
 *
 * The public face of the device: its QOM type names and what the
 * monitor needs.  The device's state is in
 * hw/nvme-export/nvme-export-internal.h, beside the code.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVME_EXPORT_H
#define HW_NVME_EXPORT_NVME_EXPORT_H

#include "hw/pci/pci_device.h"

#define TYPE_NVME_EXPORT     "nvme-export"
#define TYPE_NVME_EXPORT_NS  "nvme-export-ns"
#define TYPE_NVME_EXPORT_BUS "nvme-export-bus"
/* A TP4159 migration-management controller (an nvme-export subtype) */
#define TYPE_NVME_EXPORT_MGMT "nvme-export-mgmt"

OBJECT_DECLARE_SIMPLE_TYPE(NvmeExport, NVME_EXPORT)
OBJECT_DECLARE_SIMPLE_TYPE(NvmeExportMgmt, NVME_EXPORT_MGMT)
OBJECT_DECLARE_SIMPLE_TYPE(NvmeExportNs, NVME_EXPORT_NS)

typedef struct NvmexNs NvmexNs;

/* For the QMP command: every nvme-export controller */
typedef void (*NvmexForeach)(NvmeExport *c, void *opaque);
void nvmex_foreach(NvmexForeach fn, void *opaque);
/* Blocks of @ns whose backing is allocated (TP4165's view) */
uint64_t nvmex_ns_allocated_blocks(NvmexNs *ns);

#endif
