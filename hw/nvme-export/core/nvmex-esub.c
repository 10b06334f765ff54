/*
 * Exported NVM subsystems (TP4193): the table and the Exported
 * Configuration State.  See include/hw/nvme-export/core/nvmex-esub.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "hw/nvme-export/core/nvmex-esub.h"
#include "hw/nvme-export/core/nvmex-spec.h"

/* d92844aa-0793-49bc-b5c8-84f6d3d2fcae: iolab nvme-export template v1 */
const uint8_t nvmex_esub_template_uuid[16] = {
    0xd9, 0x28, 0x44, 0xaa, 0x07, 0x93, 0x49, 0xbc,
    0xb5, 0xc8, 0x84, 0xf6, 0xd3, 0xd2, 0xfc, 0xae,
};

NvmexEsubResult nvmex_esub_create(NvmexEsubTable *t, uint8_t ensti,
                                  NvmexEsub **out)
{
    if (ensti > 1) {
        return NVMEX_ESUB_BAD_FIELD;
    }
    for (int i = 0; i < NVMEX_ESUB_MAX; i++) {
        NvmexEsub *e = &t->esub[i];

        if (!e->valid) {
            memset(e, 0, sizeof(*e));
            e->valid = true;
            e->esubid = i + 1;
            e->ensti = ensti;
            snprintf(e->nqn, sizeof(e->nqn),
                     "nqn.2026-12.org.iolab:nvme-export:esub%u", e->esubid);
            *out = e;
            return NVMEX_ESUB_OK;
        }
    }
    return NVMEX_ESUB_NO_RESOURCES;
}

NvmexEsub *nvmex_esub_find(NvmexEsubTable *t, uint16_t esubid)
{
    if (esubid >= 1 && esubid <= NVMEX_ESUB_MAX &&
        t->esub[esubid - 1].valid) {
        return &t->esub[esubid - 1];
    }
    return NULL;
}

void nvmex_esub_delete(NvmexEsub *e)
{
    memset(e, 0, sizeof(*e));
}

NvmexEsub *nvmex_esub_of_ctrl(NvmexEsubTable *t, uint16_t cntlid)
{
    for (int i = 0; i < NVMEX_ESUB_MAX; i++) {
        NvmexEsub *e = &t->esub[i];

        for (int j = 0; e->valid && j < e->nctrl; j++) {
            if (e->ctrl[j].cntlid == cntlid) {
                return e;
            }
        }
    }
    return NULL;
}

void nvmex_esub_forget_ctrl(NvmexEsubTable *t, uint16_t cntlid)
{
    for (int i = 0; i < NVMEX_ESUB_MAX; i++) {
        NvmexEsub *e = &t->esub[i];

        for (int j = 0; e->valid && j < e->nctrl; j++) {
            if (e->ctrl[j].cntlid == cntlid) {
                memmove(&e->ctrl[j], &e->ctrl[j + 1],
                        sizeof(e->ctrl[0]) * (e->nctrl - j - 1));
                e->nctrl--;
                j--;
            }
        }
        for (int j = 0; e->valid && j < e->nns; j++) {
            if (e->ns[j].uctrlid == cntlid) {
                nvmex_esub_ns_remove(e, e->ns[j].ensid);
                j--;
            }
        }
    }
}

NvmexEsubResult nvmex_esub_associate(NvmexEsubTable *t, NvmexEsub *e,
                                     const NvmexEsubCtrl *list, int n)
{
    if (n < 1 || e->nctrl + n > NVMEX_ESUB_MAX_CTRL) {
        return n < 1 ? NVMEX_ESUB_BAD_FIELD : NVMEX_ESUB_NO_RESOURCES;
    }
    for (int i = 0; i < n; i++) {
        if (!list[i].cntlid || !list[i].ecntlid) {
            return NVMEX_ESUB_BAD_FIELD;
        }
        if (nvmex_esub_of_ctrl(t, list[i].cntlid)) {
            return NVMEX_ESUB_BAD_ASSOCIATION;
        }
        for (int j = 0; j < e->nctrl; j++) {
            if (e->ctrl[j].ecntlid == list[i].ecntlid) {
                return NVMEX_ESUB_BAD_FIELD;
            }
        }
        for (int j = 0; j < i; j++) {
            if (list[j].cntlid == list[i].cntlid ||
                list[j].ecntlid == list[i].ecntlid) {
                return NVMEX_ESUB_BAD_FIELD;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        e->ctrl[e->nctrl++] = list[i];
    }
    return NVMEX_ESUB_OK;
}

NvmexEsubResult nvmex_esub_ns_add(NvmexEsub *e, const NvmexEsubNs *ns)
{
    bool ctrl_found = false;

    if (!ns->ensid || ns->ensid == 0xffffffff || !ns->unsid) {
        return NVMEX_ESUB_BAD_FIELD;
    }
    for (int j = 0; j < e->nctrl; j++) {
        ctrl_found |= e->ctrl[j].cntlid == ns->uctrlid;
    }
    if (!ctrl_found) {
        return NVMEX_ESUB_BAD_ASSOCIATION;
    }
    for (int j = 0; j < e->nns; j++) {
        if (e->ns[j].ensid == ns->ensid) {
            return NVMEX_ESUB_BAD_FIELD;
        }
        if (e->ns[j].unsid == ns->unsid && e->ns[j].uctrlid == ns->uctrlid) {
            return NVMEX_ESUB_BAD_ASSOCIATION;
        }
    }
    if (e->nns == NVMEX_ESUB_MAX_NS) {
        return NVMEX_ESUB_NO_RESOURCES;
    }
    e->ns[e->nns++] = *ns;
    return NVMEX_ESUB_OK;
}

NvmexEsubResult nvmex_esub_ns_remove(NvmexEsub *e, uint32_t ensid)
{
    for (int j = 0; j < e->nns; j++) {
        if (e->ns[j].ensid == ensid) {
            memmove(&e->ns[j], &e->ns[j + 1],
                    sizeof(e->ns[0]) * (e->nns - j - 1));
            e->nns--;
            return NVMEX_ESUB_OK;
        }
    }
    return NVMEX_ESUB_BAD_FIELD;
}

NvmexEsubResult nvmex_esub_port_add(NvmexEsub *e, uint16_t epid)
{
    if (!epid) {
        return NVMEX_ESUB_BAD_FIELD;
    }
    for (int j = 0; j < e->nport; j++) {
        if (e->port[j] == epid) {
            return NVMEX_ESUB_BAD_FIELD;
        }
    }
    if (e->nport == NVMEX_ESUB_MAX_PORT) {
        return NVMEX_ESUB_NO_RESOURCES;
    }
    e->port[e->nport++] = epid;
    return NVMEX_ESUB_OK;
}

NvmexEsubResult nvmex_esub_port_remove(NvmexEsub *e, uint16_t epid)
{
    for (int j = 0; j < e->nport; j++) {
        if (e->port[j] == epid) {
            memmove(&e->port[j], &e->port[j + 1],
                    sizeof(e->port[0]) * (e->nport - j - 1));
            e->nport--;
            return NVMEX_ESUB_OK;
        }
    }
    return NVMEX_ESUB_BAD_FIELD;
}

size_t nvmex_ecs_size(const NvmexEsub *e)
{
    return NVMEX_ECS_HDR_SIZE + (size_t)e->nctrl * NVMEX_ECS_CTRL_SIZE +
           (size_t)e->nns * NVMEX_ECS_NS_SIZE +
           (size_t)e->nport * NVMEX_ECS_PORT_SIZE;
}

void nvmex_ecs_encode(const NvmexEsub *e, const NvmexEcsCtrlIdentity *c,
                      const NvmexEcsNsIdentity *n, uint8_t *buf)
{
    size_t size = nvmex_ecs_size(e);
    uint8_t *p;

    memset(buf, 0, size);
    memcpy(buf, nvmex_esub_template_uuid, 16);
    nvmex_st16(buf + 16, NVMEX_ECS_VERSION);
    nvmex_st32(buf + 20, size);
    nvmex_st16(buf + 24, e->nctrl);
    nvmex_st16(buf + 26, e->nns);
    nvmex_st16(buf + 28, e->nport);
    memcpy(buf + 32, e->nqn, strnlen(e->nqn, NVMEX_ESUB_NQN_SIZE));
    p = buf + NVMEX_ECS_HDR_SIZE;
    for (int i = 0; i < e->nctrl; i++, p += NVMEX_ECS_CTRL_SIZE) {
        nvmex_st16(p, e->ctrl[i].ecntlid);
        nvmex_st64(p + 8, c[i].cap);
        memcpy(p + 16, c[i].id_ctrl, 4096);
        nvmex_st16(p + 16 + 78, 0);     /* CNTLID: the underlying one's */
        memcpy(p + 16 + 4096, c[i].id_ctrl_nvm, 4096);
    }
    for (int i = 0; i < e->nns; i++, p += NVMEX_ECS_NS_SIZE) {
        nvmex_st32(p, e->ns[i].ensid);
        memcpy(p + 8, n[i].id_ns, 4096);
        memcpy(p + 8 + 4096, n[i].id_ns_nvm, 4096);
    }
    for (int i = 0; i < e->nport; i++, p += NVMEX_ECS_PORT_SIZE) {
        nvmex_st16(p, e->port[i]);
    }
}

bool nvmex_ecs_nqn(const uint8_t *buf, size_t len,
                   char nqn[NVMEX_ESUB_NQN_SIZE])
{
    if (len < NVMEX_ECS_HDR_SIZE) {
        return false;
    }
    memcpy(nqn, buf + 32, NVMEX_ESUB_NQN_SIZE - 1);
    nqn[NVMEX_ESUB_NQN_SIZE - 1] = 0;
    return true;
}

bool nvmex_ecs_match(const uint8_t *mine, size_t mine_len,
                     const uint8_t *buf, size_t len, uint32_t *dwloc,
                     uint8_t *bitloc)
{
    size_t n = mine_len < len ? mine_len : len;

    for (size_t i = 0; i < n; i++) {
        uint8_t diff = mine[i] ^ buf[i];

        if (diff) {
            *dwloc = i / 4;
            *bitloc = (i % 4) * 8 + __builtin_ctz(diff);
            return false;
        }
    }
    if (mine_len != len) {
        /* The header said otherwise already, unless it was cut short */
        *dwloc = n / 4;
        *bitloc = 0;
        return false;
    }
    return true;
}
