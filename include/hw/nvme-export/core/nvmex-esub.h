/*
 * Exported NVM subsystems on a management controller (TP4193, "PCIe
 * Exported NVM Subsystem Migration", NVMe Base 2.4): the table of
 * subsystems with their controllers, namespaces and ports, and the
 * Exported Configuration State that carries one of them to another
 * management controller.
 *
 * The public material gives the commands, their selects and the object
 * model; the list formats and the configuration state are template
 * specific and not public, so this project defines them (this header and
 * docs/nvme-export.rst): every layout here is our choice.
 *
 * Exported Configuration State of template
 * d92844aa-0793-49bc-b5c8-84f6d3d2fcae, version 1, little-endian:
 *     0   UUID 16          the template
 *     16  VER 2, reserved 2
 *     20  LEN 4            bytes of the whole state
 *     24  NCTRL 2, NNS 2, NPORT 2, reserved 2
 *     32  ESUBNQN 256
 *     288 NCTRL controllers: ECNTLID 2, reserved 6, CAP 8,
 *         Identify Controller 4096 (CNTLID zeroed), NVM Identify
 *         Controller 4096                       (8208 bytes each)
 *         NNS namespaces: ENSID 4, reserved 4, Identify Namespace 4096,
 *         NVM Identify Namespace 4096           (8200 bytes each)
 *         NPORT ports: EPID 2, reserved 2
 * The identity bytes are what the guest reads from the exported
 * controller: a destination is identical when they are.
 *
 * QEMU-free (libc only).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NVME_EXPORT_NVMEX_ESUB_H
#define HW_NVME_EXPORT_NVMEX_ESUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVMEX_ESUB_MAX          4       /* subsystems per management ctrl */
#define NVMEX_ESUB_MAX_CTRL     4
#define NVMEX_ESUB_MAX_NS       8
#define NVMEX_ESUB_MAX_PORT     4
#define NVMEX_ESUB_NQN_SIZE     256

#define NVMEX_ECS_HDR_SIZE      288
#define NVMEX_ECS_CTRL_SIZE     (16 + 2 * 4096)
#define NVMEX_ECS_NS_SIZE       (8 + 2 * 4096)
#define NVMEX_ECS_PORT_SIZE     4
#define NVMEX_ECS_VERSION       1

/* The one template this project offers (Identify CNS 22h, index 1) */
extern const uint8_t nvmex_esub_template_uuid[16];

typedef struct NvmexEsubCtrl {
    uint16_t cntlid;            /* the underlying (managed) controller */
    uint16_t ecntlid;           /* its exported controller id */
} NvmexEsubCtrl;

typedef struct NvmexEsubNs {
    uint32_t ensid;             /* exported namespace id */
    uint32_t unsid;             /* namespace of the underlying controller */
    uint16_t uctrlid;
} NvmexEsubNs;

typedef struct NvmexEsub {
    bool valid;
    uint16_t esubid;
    uint8_t ensti;              /* template index, 1 (0: none) */
    char nqn[NVMEX_ESUB_NQN_SIZE];
    uint16_t nctrl, nns, nport;
    NvmexEsubCtrl ctrl[NVMEX_ESUB_MAX_CTRL];
    NvmexEsubNs ns[NVMEX_ESUB_MAX_NS];
    uint16_t port[NVMEX_ESUB_MAX_PORT];
} NvmexEsub;

typedef struct NvmexEsubTable {
    NvmexEsub esub[NVMEX_ESUB_MAX];
} NvmexEsubTable;

/* Outcomes the device turns into NVMe statuses */
typedef enum NvmexEsubResult {
    NVMEX_ESUB_OK,
    NVMEX_ESUB_NO_RESOURCES,    /* table or list full */
    NVMEX_ESUB_BAD_FIELD,       /* an id 0, repeated, or reserved value */
    NVMEX_ESUB_BAD_ASSOCIATION, /* in use by another subsystem, or absent */
} NvmexEsubResult;

/* A new subsystem with template index @ensti; its NQN names its id */
NvmexEsubResult nvmex_esub_create(NvmexEsubTable *t, uint8_t ensti,
                                  NvmexEsub **out);
NvmexEsub *nvmex_esub_find(NvmexEsubTable *t, uint16_t esubid);
void nvmex_esub_delete(NvmexEsub *e);
/* The subsystem a managed controller is associated with, or NULL */
NvmexEsub *nvmex_esub_of_ctrl(NvmexEsubTable *t, uint16_t cntlid);
/*
 * Managed controller @cntlid left: it and the namespaces of it leave
 * every subsystem (the subsystems themselves stay)
 */
void nvmex_esub_forget_ctrl(NvmexEsubTable *t, uint16_t cntlid);

/* Associate Controllers: all of @list or none */
NvmexEsubResult nvmex_esub_associate(NvmexEsubTable *t, NvmexEsub *e,
                                     const NvmexEsubCtrl *list, int n);
NvmexEsubResult nvmex_esub_ns_add(NvmexEsub *e, const NvmexEsubNs *ns);
NvmexEsubResult nvmex_esub_ns_remove(NvmexEsub *e, uint32_t ensid);
NvmexEsubResult nvmex_esub_port_add(NvmexEsub *e, uint16_t epid);
NvmexEsubResult nvmex_esub_port_remove(NvmexEsub *e, uint16_t epid);

/* What the device supplies for the configuration state */
typedef struct NvmexEcsCtrlIdentity {
    uint64_t cap;
    const uint8_t *id_ctrl;     /* 4096 bytes; CNTLID is zeroed here */
    const uint8_t *id_ctrl_nvm; /* 4096 */
} NvmexEcsCtrlIdentity;

typedef struct NvmexEcsNsIdentity {
    const uint8_t *id_ns;       /* 4096 */
    const uint8_t *id_ns_nvm;   /* 4096 */
} NvmexEcsNsIdentity;

size_t nvmex_ecs_size(const NvmexEsub *e);
/* Encode @e with the identities of its controllers and namespaces */
void nvmex_ecs_encode(const NvmexEsub *e, const NvmexEcsCtrlIdentity *c,
                      const NvmexEcsNsIdentity *n, uint8_t *buf);

/*
 * Set Exported Configuration State: is @len bytes of @buf the state of
 * @e (whose NQN it would take)?  @mine is @e's own encoding with the
 * incoming NQN.  True if identical; else the first differing bit as
 * DWLOC (dword offset) and BITLOC (bit in that dword), and the caller
 * refuses with Invalid Exported Configuration State.
 */
bool nvmex_ecs_match(const uint8_t *mine, size_t mine_len,
                     const uint8_t *buf, size_t len, uint32_t *dwloc,
                     uint8_t *bitloc);

/* The NQN a state carries (for @mine), NUL-terminated into @nqn */
bool nvmex_ecs_nqn(const uint8_t *buf, size_t len,
                   char nqn[NVMEX_ESUB_NQN_SIZE]);

#endif
