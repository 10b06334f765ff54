/*
 * nvme-export: Identify data structures and log pages, encoded from a
 * template and the controller state it defines.  QEMU-free.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_IDENTIFY_H
#define HW_NVME_EXPORT_NVMEX_IDENTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "hw/nvme-export/core/nvmex-template.h"

/* Counters behind the SMART / Health Information log */
typedef struct NvmexSmart {
    uint64_t units_read, units_written;     /* in 512,000-byte units */
    uint64_t read_cmds, write_cmds;
    uint64_t power_cycles, power_on_hours, unsafe_shutdowns;
    uint64_t media_errors, error_entries;
    uint8_t critical_warning;
} NvmexSmart;

/* One Error Information log entry */
typedef struct NvmexErrorEntry {
    uint64_t count;                 /* 0: unused slot */
    uint16_t sqid, cid, status, param;
    uint64_t lba;
    uint32_t nsid;
} NvmexErrorEntry;

#define NVMEX_ERROR_LOG_ENTRIES 4
#define NVMEX_ERROR_ENTRY_SIZE  64
#define NVMEX_SMART_LOG_SIZE    512
#define NVMEX_FW_LOG_SIZE       512
#define NVMEX_EFFECTS_LOG_SIZE  4096
#define NVMEX_CHANGED_NS_SIZE   4096

/* The NVMe version the controller reports (VS and Identify VER) */
#define NVMEX_VERSION 0x00020000u

void nvmex_id_ctrl(const NvmexTemplate *t, uint8_t *buf);
void nvmex_id_ctrl_nvm(const NvmexTemplate *t, uint8_t *buf);
/*
 * Supported Controller State Formats (CNS 20h, TP4159): NV 1 (version
 * 0), NUUID 1 (this project's vendor state UUID).  Returns the bytes
 * used of the 4 KiB.
 */
size_t nvmex_id_cs_formats(uint8_t *buf);
void nvmex_id_ns(const NvmexTemplate *t, const NvmexNsTemplate *n,
                 uint64_t nsze, uint8_t *buf);
void nvmex_id_ns_nvm(const NvmexTemplate *t, const NvmexNsTemplate *n,
                     uint8_t *buf);
void nvmex_id_ns_indep(uint8_t *buf);
/* Returns the bytes used in the 4096-byte buffer */
size_t nvmex_id_ns_descs(const NvmexNsTemplate *n, uint8_t *buf);
/* Active nsids above @after, ascending, from @nsids (any order) */
void nvmex_id_active_ns(const uint32_t *nsids, int count, uint32_t after,
                        uint8_t *buf);

void nvmex_log_smart(const NvmexTemplate *t, const NvmexSmart *s,
                     uint8_t *buf);
void nvmex_log_fw_slot(const NvmexTemplate *t, uint8_t *buf);
void nvmex_log_cmd_effects(const NvmexTemplate *t, uint8_t *buf);
void nvmex_log_error_entry(const NvmexErrorEntry *e, uint8_t *buf);

/* Is @opcode an implemented admin / I/O command under template @t? */
int nvmex_admin_supported(const NvmexTemplate *t, uint8_t opcode);
int nvmex_io_supported(const NvmexTemplate *t, uint8_t opcode);
/* Its Commands Supported and Effects entry (0: not supported) */
uint32_t nvmex_admin_effects(const NvmexTemplate *t, uint8_t opcode);
uint32_t nvmex_io_effects(const NvmexTemplate *t, uint8_t opcode);
/* The command's name, for traces and logs; NULL if not implemented */
const char *nvmex_admin_name(uint8_t opcode);
const char *nvmex_io_name(uint8_t opcode);

#endif
