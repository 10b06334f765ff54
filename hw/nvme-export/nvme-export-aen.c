/*
 * nvme-export: asynchronous events
 *
 * Written from the NVM Express Base Specification 2.0 (5.2 Asynchronous
 * Event Request command, asynchronous event information).  An event
 * waits here until an Asynchronous Event Request the guest left with the
 * controller (its CID in st.aer_cid) completes with it.  The registers
 * (invalid doorbells), the admin commands (temperature, log pages, the
 * request itself) and the management controller (CDQ tail pointer
 * events) raise events; this file calls only nvme-export-cq.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "nvme-export-internal.h"
#include "trace.h"

void nvmex_aen_deliver(NvmeExport *c)
{
    NvmexCtrlState *s = &c->st;

    while (s->aer_count && s->aen_count) {
        NvmexReq *r = nvmex_req_get(c);
        uint32_t dw0 = s->aen[0];

        memmove(&s->aen[0], &s->aen[1], sizeof(s->aen[0]) * --s->aen_count);
        r->sqid = 0;
        r->sq_gen = s->sq[0].gen;
        r->cid = s->aer_cid[--s->aer_count];
        r->dw0 = dw0;
        /* One-shot events are not masked until a log page is read */
        if ((dw0 & 7) != NVMEX_AET_ONE_SHOT) {
            s->aen_masked |= 1u << (dw0 & 7);
        }
        trace_nvmex_aen(dw0);
        nvmex_post(r);
    }
}

void nvmex_aen_raise(NvmeExport *c, uint8_t type, uint8_t info,
                     uint8_t lid)
{
    NvmexCtrlState *s = &c->st;
    uint32_t dw0 = type | info << 8 | (uint32_t)lid << 16;

    if ((s->aen_masked & (1u << type)) || s->aen_count == NVMEX_MAX_AEN) {
        return;
    }
    for (int i = 0; i < s->aen_count; i++) {
        if (s->aen[i] == dw0) {
            return;
        }
    }
    s->aen[s->aen_count++] = dw0;
    nvmex_aen_deliver(c);
}
