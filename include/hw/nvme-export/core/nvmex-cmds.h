/*
 * nvme-export: the command sets the controller implements, one row per
 * command.  QEMU-free.
 *
 * Each row: X(opcode, name, handler, needs, effects)
 *   opcode   NVMEX_ADM_* / NVMEX_IO_* (nvmex-spec.h)
 *   name     for traces and guest-error logs
 *   handler  the controller's nvmex_adm_<handler> / nvmex_io_<handler>
 *            (nvme-export-admin.c, nvme-export-io.c)
 *   needs    the template switch without which the command is not
 *            supported: NONE, RALBAS, ONCS_DSM, ONCS_WRITE_ZEROES, HMLMS
 *   effects  its Commands Supported and Effects bits beyond CSUPP
 *
 * The core (nvmex-identify.c) expands the rows into what is supported and
 * the effects log; the controller expands the same rows into its dispatch
 * tables.  A new command is one new row, plus its handler.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_CMDS_H
#define HW_NVME_EXPORT_NVMEX_CMDS_H

#include "hw/nvme-export/core/nvmex-spec.h"

#define NVMEX_ADMIN_COMMANDS(X) \
    X(NVMEX_ADM_DELETE_SQ, "DELETE_SQ", delete_sq, NONE, 0) \
    X(NVMEX_ADM_CREATE_SQ, "CREATE_SQ", create_sq, NONE, 0) \
    X(NVMEX_ADM_GET_LOG_PAGE, "GET_LOG_PAGE", get_log, NONE, 0) \
    X(NVMEX_ADM_DELETE_CQ, "DELETE_CQ", delete_cq, NONE, 0) \
    X(NVMEX_ADM_CREATE_CQ, "CREATE_CQ", create_cq, NONE, 0) \
    X(NVMEX_ADM_IDENTIFY, "IDENTIFY", identify, NONE, 0) \
    X(NVMEX_ADM_ABORT, "ABORT", abort, NONE, 0) \
    X(NVMEX_ADM_SET_FEATURES, "SET_FEATURES", set_features, NONE, 0) \
    X(NVMEX_ADM_GET_FEATURES, "GET_FEATURES", get_features, NONE, 0) \
    X(NVMEX_ADM_AER, "ASYNC_EVENT_REQUEST", aer, NONE, 0) \
    X(NVMEX_ADM_ESUB_RECV, "MANAGE_EXPORTED_NVM_SUBSYSTEM_RECEIVE", \
      esub_recv, HMLMS, 0) \
    X(NVMEX_ADM_ESUB_SEND, "MANAGE_EXPORTED_NVM_SUBSYSTEM_SEND", \
      esub_send, HMLMS, 0) \
    X(NVMEX_ADM_EXPORTED_NS, "MANAGE_EXPORTED_NAMESPACE", exported_ns, \
      HMLMS, 0) \
    X(NVMEX_ADM_EXPORTED_PORT, "MANAGE_EXPORTED_PORT", exported_port, \
      HMLMS, 0) \
    X(NVMEX_ADM_TRACK_SEND, "TRACK_SEND", track_send, HMLMS, 0) \
    X(NVMEX_ADM_MIGRATION_SEND, "MIGRATION_SEND", migration_send, HMLMS, 0) \
    X(NVMEX_ADM_MIGRATION_RECV, "MIGRATION_RECEIVE", migration_recv, HMLMS, \
      0) \
    X(NVMEX_ADM_CDQ, "CONTROLLER_DATA_QUEUE", cdq, HMLMS, 0) \
    X(NVMEX_ADM_GET_LBA_STATUS, "GET_LBA_STATUS", get_lba_status, RALBAS, 0)

#define NVMEX_IO_COMMANDS(X) \
    X(NVMEX_IO_FLUSH, "FLUSH", flush, NONE, 0) \
    X(NVMEX_IO_WRITE, "WRITE", rw, NONE, NVMEX_EFFECTS_LBCC) \
    X(NVMEX_IO_READ, "READ", rw, NONE, 0) \
    X(NVMEX_IO_WRITE_ZEROES, "WRITE_ZEROES", write_zeroes, \
      ONCS_WRITE_ZEROES, NVMEX_EFFECTS_LBCC) \
    X(NVMEX_IO_DSM, "DATASET_MANAGEMENT", dsm, ONCS_DSM, \
      NVMEX_EFFECTS_LBCC)

/* What a row's "needs" names */
typedef enum NvmexNeeds {
    NVMEX_NEEDS_NONE,
    NVMEX_NEEDS_RALBAS,                 /* template ralbas (TP4165) */
    NVMEX_NEEDS_ONCS_DSM,               /* template oncs bit 2 */
    NVMEX_NEEDS_ONCS_WRITE_ZEROES,      /* template oncs bit 3 */
    NVMEX_NEEDS_HMLMS,                  /* a management controller */
} NvmexNeeds;

#endif
