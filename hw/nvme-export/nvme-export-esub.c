/*
 * nvme-export-mgmt: TP4193 exported NVM subsystems, managed from the
 * management controller (PCIe: memory-based, no hosts or access modes).
 *
 *   Manage Exported NVM Subsystem Receive (2Ah): SEL 0 create, 1 list
 *     subsystems, 2 list namespaces, 4 list ports, 5 get the Exported
 *     Configuration State (3, list exported controllers, is
 *     message-based only)
 *   Manage Exported NVM Subsystem Send (2Dh): SEL 1 delete, 5 associate
 *     controllers, 6 set the Exported Configuration State (2-4, access
 *     modes and hosts, are message-based only)
 *   Manage Exported Namespace (31h): SEL 1 associate, 2 disassociate
 *   Manage Exported Port (35h): SEL 1 add, 2 remove
 *
 * Field positions follow the research notes (nvme-cli's Base 2.4 sync);
 * the list formats, the data lengths (CDW15 NUMD, 0's based, for 2Ah and
 * 2Dh) and the configuration state are this project's
 * (core/nvmex-esub.h, docs/nvme-export.rst).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "nvme-export-internal.h"
#include "trace.h"

/* Largest data a list or configuration state command moves */
#define NVMEX_ESUB_MAX_XFER (NVMEX_ECS_HDR_SIZE + \
                             NVMEX_ESUB_MAX_CTRL * NVMEX_ECS_CTRL_SIZE + \
                             NVMEX_ESUB_MAX_NS * NVMEX_ECS_NS_SIZE + \
                             NVMEX_ESUB_MAX_PORT * NVMEX_ECS_PORT_SIZE)

static uint16_t nvmex_esub_status(NvmeExport *c, NvmexEsubResult res,
                                  const char *what)
{
    switch (res) {
    case NVMEX_ESUB_OK:
        return NVMEX_SUCCESS;
    case NVMEX_ESUB_NO_RESOURCES:
        nvmex_guest_error(c, "%s: no room left", what);
        return NVMEX_NOT_ENOUGH_RESOURCES | NVMEX_DNR;
    case NVMEX_ESUB_BAD_ASSOCIATION:
        nvmex_guest_error(c, "%s: association refused (in use elsewhere, "
                          "or its controller is not associated)", what);
        return NVMEX_INVALID_EXPORTED_ASSOC | NVMEX_DNR;
    default:
        nvmex_guest_error(c, "%s: an id is 0, reserved or repeated", what);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
}

/* The subsystem CDW14 [31:16] names, or NULL with a guest error */
static NvmexEsub *nvmex_esub_of_cmd(NvmexReq *r)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    uint16_t esubid = le32_to_cpu(r->cmd.cdw14) >> 16;
    NvmexEsub *e = nvmex_esub_find(&m->esubs, esubid);

    if (!e) {
        nvmex_guest_error(r->c, "exported NVM subsystem %u does not exist",
                          esubid);
    }
    return e;
}

/* CDW15 NUMD (0's based dwords), bounded */
static bool nvmex_esub_len(NvmexReq *r, uint32_t *len)
{
    uint64_t l = ((uint64_t)le32_to_cpu(r->cmd.cdw15) + 1) * 4;

    if (l > NVMEX_ESUB_MAX_XFER) {
        nvmex_guest_error(r->c, "exported subsystem: %" PRIu64 " bytes is "
                          "more than %u", l, (unsigned)NVMEX_ESUB_MAX_XFER);
        return false;
    }
    *len = l;
    return true;
}

/* ------------------------------------------------------------------ */
/* The Exported Configuration State                                    */

/* Encode @e from its controllers' and namespaces' identities */
static uint8_t *nvmex_esub_ecs(NvmeExportMgmt *m, const NvmexEsub *e,
                               size_t *size)
{
    NvmexEcsCtrlIdentity ci[NVMEX_ESUB_MAX_CTRL];
    NvmexEcsNsIdentity ni[NVMEX_ESUB_MAX_NS];
    g_autofree uint8_t *ids = g_malloc0((size_t)(NVMEX_ESUB_MAX_CTRL +
                                                 NVMEX_ESUB_MAX_NS) * 8192);
    uint8_t *buf;

    for (int i = 0; i < e->nctrl; i++) {
        NvmeExport *c = nvmex_mgmt_find_child(m, e->ctrl[i].cntlid);
        uint8_t *p = ids + (size_t)i * 8192;

        /* Associated controllers stay managed (detach forgets them) */
        ci[i] = (NvmexEcsCtrlIdentity) {
            .cap = c ? c->st.cap : 0, .id_ctrl = p, .id_ctrl_nvm = p + 4096,
        };
        if (c) {
            nvmex_id_ctrl(&c->tmpl, p);
            nvmex_id_ctrl_nvm(&c->tmpl, p + 4096);
        }
    }
    for (int i = 0; i < e->nns; i++) {
        NvmeExport *c = nvmex_mgmt_find_child(m, e->ns[i].uctrlid);
        NvmexNs *ns = c ? c->ns[e->ns[i].unsid] : NULL;
        uint8_t *p = ids + (size_t)(NVMEX_ESUB_MAX_CTRL + i) * 8192;

        /* A namespace unplugged since reads as zeroes: it cannot match */
        ni[i] = (NvmexEcsNsIdentity) { .id_ns = p, .id_ns_nvm = p + 4096 };
        if (ns) {
            const NvmexNsTemplate *nt =
                nvmex_template_ns(&c->tmpl, e->ns[i].unsid, false);

            nvmex_id_ns(&c->tmpl, nt, ns->geo.nsze, p);
            nvmex_id_ns_nvm(&c->tmpl, nt, p + 4096);
        }
    }
    *size = nvmex_ecs_size(e);
    buf = g_malloc(*size);
    nvmex_ecs_encode(e, ci, ni, buf);
    return buf;
}

static uint16_t nvmex_esub_get_ecs(NvmexReq *r)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    NvmexEsub *e = nvmex_esub_of_cmd(r);
    g_autofree uint8_t *state = NULL;
    g_autofree uint8_t *out = NULL;
    size_t size;
    uint32_t len;

    if (!e) {
        return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
    }
    if (!nvmex_esub_len(r, &len)) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    state = nvmex_esub_ecs(m, e, &size);
    out = g_malloc0(len);
    memcpy(out, state, MIN(len, size));
    r->dw0 = size;              /* the whole size, for a short buffer */
    return nvmex_xfer(r, out, len, true);
}

static uint16_t nvmex_esub_set_ecs(NvmexReq *r)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    NvmexEsub *e = nvmex_esub_of_cmd(r);
    g_autofree uint8_t *in = NULL;
    g_autofree uint8_t *mine = NULL;
    char nqn[NVMEX_ESUB_NQN_SIZE], saved[NVMEX_ESUB_NQN_SIZE];
    uint32_t len, dwloc;
    uint8_t bitloc;
    size_t size;
    uint16_t st;

    if (!e) {
        return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
    }
    if (!nvmex_esub_len(r, &len)) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    in = g_malloc(len);
    st = nvmex_xfer(r, in, len, false);
    if (st) {
        return st;
    }
    /* The NQN is taken from the source; everything else must match */
    memcpy(saved, e->nqn, sizeof(saved));
    if (nvmex_ecs_nqn(in, len, nqn)) {
        memcpy(e->nqn, nqn, sizeof(e->nqn));
    }
    mine = nvmex_esub_ecs(m, e, &size);
    if (!nvmex_ecs_match(mine, size, in, len, &dwloc, &bitloc)) {
        memcpy(e->nqn, saved, sizeof(e->nqn));
        nvmex_guest_error(r->c, "exported subsystem %u: configuration state "
                          "differs at dword %u bit %u", e->esubid, dwloc,
                          bitloc);
        r->dw0 = (dwloc & 0x7ffffff) | (uint32_t)bitloc << 27;
        return NVMEX_INVALID_EXPORTED_CONFIG | NVMEX_DNR;
    }
    return NVMEX_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Lists (our formats: a 4-byte count, then fixed-size entries)        */

static uint16_t nvmex_esub_list(NvmexReq *r, uint8_t sel)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    g_autofree uint8_t *out = NULL;
    NvmexEsub *e = NULL;
    uint32_t len, n = 0;
    uint8_t *p;

    if (!nvmex_esub_len(r, &len)) {
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (sel != 1) {
        e = nvmex_esub_of_cmd(r);
        if (!e) {
            return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
        }
    }
    out = g_malloc0(MAX(len, NVMEX_ESUB_MAX_XFER));
    p = out + 8;
    switch (sel) {
    case 1:     /* {ESUBID 2, ENSTI 1, rsvd 1, NCTRL 2, NNS 2, NQN 256} */
        for (int i = 0; i < NVMEX_ESUB_MAX; i++, p += 264) {
            NvmexEsub *s = &m->esubs.esub[i];

            if (!s->valid) {
                p -= 264;
                continue;
            }
            nvmex_st16(p, s->esubid);
            p[2] = s->ensti;
            nvmex_st16(p + 4, s->nctrl);
            nvmex_st16(p + 6, s->nns);
            memcpy(p + 8, s->nqn, strnlen(s->nqn, sizeof(s->nqn)));
            n++;
        }
        break;
    case 2:     /* {ENSID 4, UNSID 4, UCTRLID 2, rsvd 6} */
        for (int i = 0; i < e->nns; i++, p += 16) {
            nvmex_st32(p, e->ns[i].ensid);
            nvmex_st32(p + 4, e->ns[i].unsid);
            nvmex_st16(p + 8, e->ns[i].uctrlid);
        }
        n = e->nns;
        break;
    case 4:     /* {EPID 2, rsvd 2} */
        for (int i = 0; i < e->nport; i++, p += 4) {
            nvmex_st16(p, e->port[i]);
        }
        n = e->nport;
        break;
    }
    nvmex_st32(out, n);
    return nvmex_xfer(r, out, len, true);
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

uint16_t nvmex_adm_esub_recv(NvmexReq *r)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    uint32_t dw11 = le32_to_cpu(r->cmd.cdw11);
    uint8_t ensti = dw11 & 0xff;
    bool tr = dw11 >> 31;

    switch (sel) {
    case 0: {
        uint8_t nqn[NVMEX_ESUB_NQN_SIZE] = { 0 };
        NvmexEsubResult res;
        NvmexEsub *e;
        uint16_t st;

        if (tr && !ensti) {
            nvmex_guest_error(r->c, "create exported subsystem: a template "
                              "is required and none is named");
            return NVMEX_INVALID_FIELD | NVMEX_DNR;
        }
        res = nvmex_esub_create(&m->esubs, ensti, &e);
        st = nvmex_esub_status(r->c, res, "create exported subsystem");
        if (st) {
            return st;
        }
        memcpy(nqn, e->nqn, strnlen(e->nqn, sizeof(e->nqn)));
        st = nvmex_xfer(r, nqn, sizeof(nqn), true);
        if (st) {
            nvmex_esub_delete(e);
            return st;
        }
        r->dw0 = e->esubid;
        trace_nvmex_esub(e->esubid, "create");
        return NVMEX_SUCCESS;
    }
    case 1: case 2: case 4:
        return nvmex_esub_list(r, sel);
    case 5:
        return nvmex_esub_get_ecs(r);
    }
    nvmex_guest_error(r->c, "manage exported NVM subsystem receive: select "
                      "%u not supported (message-based or reserved)", sel);
    return NVMEX_INVALID_FIELD | NVMEX_DNR;
}

static uint16_t nvmex_esub_associate_ctrls(NvmexReq *r, NvmexEsub *e)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    NvmexEsubCtrl list[NVMEX_ESUB_MAX_CTRL];
    uint8_t data[4 + 4 * NVMEX_ESUB_MAX_CTRL];
    uint32_t len;
    uint16_t n, st;

    if (!nvmex_esub_len(r, &len) || len > sizeof(data)) {
        nvmex_guest_error(r->c, "associate controllers: at most %u entries",
                          NVMEX_ESUB_MAX_CTRL);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    memset(data, 0, sizeof(data));
    st = nvmex_xfer(r, data, len, false);
    if (st) {
        return st;
    }
    n = nvmex_ld16(data);
    if (n < 1 || 4 + 4u * n > len) {
        nvmex_guest_error(r->c, "associate controllers: %u entries in %u "
                          "bytes", n, len);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    for (int i = 0; i < n; i++) {
        list[i].cntlid = nvmex_ld16(data + 4 + 4 * i);
        list[i].ecntlid = nvmex_ld16(data + 6 + 4 * i);
        if (!nvmex_mgmt_find_child(m, list[i].cntlid)) {
            nvmex_guest_error(r->c, "associate controllers: cntlid %u is not "
                              "managed here", list[i].cntlid);
            return NVMEX_INVALID_CTRL_ID | NVMEX_DNR;
        }
    }
    return nvmex_esub_status(r->c, nvmex_esub_associate(&m->esubs, e, list,
                                                         n),
                             "associate controllers");
}

uint16_t nvmex_adm_esub_send(NvmexReq *r)
{
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    NvmexEsub *e;

    if (sel != 1 && sel != 5 && sel != 6) {
        nvmex_guest_error(r->c, "manage exported NVM subsystem send: select "
                          "%u not supported (message-based or reserved)",
                          sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    if (sel == 6) {
        return nvmex_esub_set_ecs(r);
    }
    e = nvmex_esub_of_cmd(r);
    if (!e) {
        return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
    }
    if (sel == 1) {
        trace_nvmex_esub(e->esubid, "delete");
        nvmex_esub_delete(e);
        return NVMEX_SUCCESS;
    }
    return nvmex_esub_associate_ctrls(r, e);
}

/* Data: PAD 32, ENSID 4, ENSNQN 256, UNSID 4, UCTRLID 2, UNSNQN 256 */
#define NVMEX_EXPORTED_NS_DATA 1024

uint16_t nvmex_adm_exported_ns(NvmexReq *r)
{
    NvmeExportMgmt *m = NVME_EXPORT_MGMT(r->c);
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    uint8_t data[NVMEX_EXPORTED_NS_DATA];
    NvmexEsub *e;
    NvmexEsubNs ns;
    NvmeExport *c;
    uint16_t st;

    if (sel != 1 && sel != 2) {
        nvmex_guest_error(r->c, "manage exported namespace: select %u "
                          "reserved", sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    e = nvmex_esub_of_cmd(r);
    if (!e) {
        return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
    }
    st = nvmex_xfer(r, data, sizeof(data), false);
    if (st) {
        return st;
    }
    ns = (NvmexEsubNs) {
        .ensid = nvmex_ld32(data + 32),
        .unsid = nvmex_ld32(data + 292),
        .uctrlid = nvmex_ld16(data + 296),
    };
    if (sel == 2) {
        return nvmex_esub_status(r->c, nvmex_esub_ns_remove(e, ns.ensid),
                                 "disassociate exported namespace");
    }
    c = nvmex_mgmt_find_child(m, ns.uctrlid);
    if (!c || !ns.unsid || ns.unsid > NVMEX_MAX_NSID || !c->ns[ns.unsid]) {
        nvmex_guest_error(r->c, "associate exported namespace: controller %u "
                          "has no namespace %u", ns.uctrlid, ns.unsid);
        return NVMEX_INVALID_EXPORTED_ASSOC | NVMEX_DNR;
    }
    return nvmex_esub_status(r->c, nvmex_esub_ns_add(e, &ns),
                             "associate exported namespace");
}

uint16_t nvmex_adm_exported_port(NvmexReq *r)
{
    uint8_t sel = le32_to_cpu(r->cmd.cdw10) & 0xff;
    uint16_t epid = le32_to_cpu(r->cmd.cdw11) & 0xffff;
    NvmexEsub *e;

    if (sel != 1 && sel != 2) {
        nvmex_guest_error(r->c, "manage exported port: select %u reserved",
                          sel);
        return NVMEX_INVALID_FIELD | NVMEX_DNR;
    }
    e = nvmex_esub_of_cmd(r);
    if (!e) {
        return NVMEX_INVALID_NVM_SUBSYSTEM | NVMEX_DNR;
    }
    return nvmex_esub_status(r->c, sel == 1 ? nvmex_esub_port_add(e, epid)
                                            : nvmex_esub_port_remove(e, epid),
                             "manage exported port");
}
