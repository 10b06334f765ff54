/*
 * vdpa-mgmt core: admin command codec and stateless validation
 *
 * Decodes a 64-byte submission entry, checks everything that can be
 * checked without the instance table (framing, opcode, field ranges,
 * limits), and encodes completions and result buffers.  No QEMU headers:
 * built standalone and tested by tests/unit/test-vdpa-cmd.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VDPA_MGMT_VDPA_CMD_H
#define HW_VDPA_MGMT_VDPA_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include "hw/vdpa-mgmt/core/vdpa-proto.h"

/* Largest config space of any instance type, and of one access */
#define VDPA_CFG_MAX 256

/* What the function offers; the device fills it at realize time */
typedef struct VdpaLimits {
    uint32_t max_instances;     /* ids are 1..max_instances */
    uint16_t max_queues;        /* per instance */
    uint16_t max_queue_size;    /* power of 2 */
    uint64_t features[3];       /* offered per type (index VDPA_TYPE_*) */
    uint32_t num_backends[3];   /* 0: type not supported */
    uint16_t config_size[3];
    uint8_t dma_bits;           /* DMA addresses lie below 1 << dma_bits */
    uint8_t pasid_bits;         /* 0: PASID binding unsupported */
} VdpaLimits;

typedef struct VdpaCmd {
    uint16_t opcode;
    uint16_t group_type;
    uint16_t cid;
    uint16_t rsvd0;
    uint64_t member;
    uint64_t buf_addr;
    uint32_t buf_len;
    uint32_t rsvd1;
    union {
        struct {
            uint8_t type;
            uint8_t rsvd;
            uint16_t nqueues;
            uint32_t backend;
            uint64_t features;
            uint8_t mac[6];
        } create;
        struct {
            uint16_t index;
            uint16_t size;
            uint16_t enable;
            uint16_t rsvd;
            uint64_t desc, driver, device;
        } queue;
        struct {
            uint8_t status;
            uint64_t features;
        } status;
        struct {
            uint32_t pasid;
        } pasid;
        struct {
            uint16_t queue;
            uint16_t flags;
            uint32_t data;
            uint64_t addr;
        } msi;
        struct {
            uint32_t offset;
            uint32_t length;
        } cfg;
        struct {
            uint32_t start;
        } list;
    } u;
} VdpaCmd;

typedef struct VdpaStatus {
    uint16_t status;
    uint16_t qual;
} VdpaStatus;

static inline VdpaStatus vdpa_status(uint16_t status, uint16_t qual)
{
    return (VdpaStatus) { .status = status, .qual = qual };
}

static inline bool vdpa_ok(VdpaStatus s)
{
    return s.status == VDPA_S_OK;
}

/* Little-endian field access, independent of host byte order */
static inline uint16_t vdpa_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t vdpa_ld32(const uint8_t *p)
{
    return (uint32_t)vdpa_ld16(p) | (uint32_t)vdpa_ld16(p + 2) << 16;
}

static inline uint64_t vdpa_ld64(const uint8_t *p)
{
    return (uint64_t)vdpa_ld32(p) | (uint64_t)vdpa_ld32(p + 4) << 32;
}

static inline void vdpa_st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void vdpa_st32(uint8_t *p, uint32_t v)
{
    vdpa_st16(p, (uint16_t)v);
    vdpa_st16(p + 2, (uint16_t)(v >> 16));
}

static inline void vdpa_st64(uint8_t *p, uint64_t v)
{
    vdpa_st32(p, (uint32_t)v);
    vdpa_st32(p + 4, (uint32_t)(v >> 32));
}

/* Parse all fields; no checks (vdpa_cmd_check does them) */
void vdpa_cmd_decode(const uint8_t sqe[VDPA_SQE_SIZE], VdpaCmd *cmd);

/* Build a submission entry (drivers and tests) */
void vdpa_cmd_encode(const VdpaCmd *cmd, uint8_t sqe[VDPA_SQE_SIZE]);

/* Does the command address an instance (group_member_id)? */
bool vdpa_cmd_has_member(uint16_t opcode);

/* Bytes of result buffer the command needs at least (0: none) */
uint32_t vdpa_cmd_min_buf(const VdpaCmd *cmd);

/*
 * Everything that does not depend on instance state: group type,
 * reserved fields, opcode, member id range, buffer size and range, and
 * per-opcode field ranges against @lim.  Config offsets are checked
 * against the instance's type by vdpa_cmd_check_config().
 */
VdpaStatus vdpa_cmd_check(const VdpaCmd *cmd, const VdpaLimits *lim);

/* CONFIG_READ/WRITE range against the instance's config size */
VdpaStatus vdpa_cmd_check_config(const VdpaCmd *cmd, uint16_t config_size);

/* Queue rings inside [0, 1 << dma_bits) with the virtq alignments */
VdpaStatus vdpa_check_rings(uint16_t size, uint64_t desc, uint64_t driver,
                            uint64_t device, uint8_t dma_bits);

void vdpa_cqe_encode(uint8_t cqe[VDPA_CQE_SIZE], uint16_t cid, VdpaStatus st,
                     bool phase, uint64_t result);

void vdpa_discover_encode(const VdpaLimits *lim, uint32_t num_instances,
                          uint8_t out[VDPA_DISCOVER_SIZE]);

/* Short name of an opcode or status, for traces and docs; never NULL */
const char *vdpa_op_name(uint16_t opcode);

#endif
