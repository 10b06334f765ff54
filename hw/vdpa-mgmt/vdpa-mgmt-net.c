/*
 * vdpa-mgmt: net instances, all on one shared netdev, told apart by MAC
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "system/runstate.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "qemu/error-report.h"
#include "block/block.h"
#include "block/block-global-state.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vdpa-mgmt/vdpa-mgmt.h"
#include "vdpa-mgmt-internal.h"
#include "trace.h"

/*
 * Transmit one popped (or held) chain: read its frame, send it on the
 * shared netdev, push it.  False if the queue must stop: a VPRI fault
 * held the request (the frame was not sent, or was sent and only the
 * push is left: tx_sent), or the instance went to needs-reset.
 */
static bool vdpa_net_tx_one(VdpaInst *inst, VdpaNetReq *req)
{
    VdpaMgmt *s = inst->s;
    uint16_t qi = req->queue;
    VdpaQueue *q = &inst->q[qi];
    uint64_t fault;
    int ret;

    if (!req->tx_sent) {
        g_autofree uint8_t *frame = NULL;
        uint32_t len;

        if (req->elem.out_len < VDPA_NET_HDR ||
            req->elem.out_len > VDPA_NET_HDR + VDPA_NET_MAX_FRAME) {
            vdpa_inst_error(inst, "queue %u: tx chain of %u bytes", qi,
                            req->elem.out_len);
            vdpa_net_req_put(s, req);
            return false;
        }
        len = req->elem.out_len - VDPA_NET_HDR;
        frame = g_malloc(MAX(len, 1));
        ret = iolab_virtq_elem_read(&req->elem, &vdpa_dma_ops, inst, VDPA_NET_HDR,
                              frame, len, &fault);
        if (ret == VIRTQ_FAULT) {
            /* Nothing sent yet: the whole frame is read again */
            vdpa_net_req_hold(req, fault, false);
            return false;
        }
        if (ret) {
            vdpa_inst_error(inst, "queue %u: tx frame not readable", qi);
            vdpa_net_req_put(s, req);
            return false;
        }
        qemu_send_packet(qemu_get_queue(s->nic), frame, len);
        inst->stats.bytes_written += len;
        req->tx_sent = true;
    }
    ret = iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst, req->elem.head, 0, &fault);
    if (ret == VIRTQ_FAULT) {
        /* Sent already: only the push is repeated, never the frame */
        vdpa_net_req_hold(req, fault, true);
        return false;
    }
    if (ret) {
        vdpa_inst_error(inst, "queue %u: used ring refused", qi);
        vdpa_net_req_put(s, req);
        return false;
    }
    inst->stats.requests++;
    vdpa_queue_interrupt(inst, qi);
    vdpa_net_req_put(s, req);
    return true;
}

/* Odd queues transmit: send each chain's frame to the shared netdev */
static void vdpa_net_tx(VdpaInst *inst, uint16_t qi)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[qi];

    while (vdpa_inst_runnable(inst) && q->vq.enabled &&
           !vdpa_queue_blocked(inst, qi)) {
        VdpaNetReq *req = q->held;
        VdpaPop pop;

        /* Requests a fault stopped go first, in order */
        if (req) {
            q->held = req->next_held;
            if (!vdpa_net_tx_one(inst, req)) {
                return;
            }
            continue;
        }
        req = vdpa_net_req_get(s, inst, qi);
        pop = vdpa_net_queue_pop(inst, qi, req);
        if (pop == VDPA_POP_STOP ||
            (pop == VDPA_POP_OK && !vdpa_net_tx_one(inst, req))) {
            return;
        }
    }
}

/*
 * VPRI: check that every page the next receive buffer needs is present,
 * and raise a fault for the first one that is not, so that the page is
 * back before a frame needs it rather than costing that frame.  The
 * buffer is the one a fault left held, or the next posted one, looked at
 * through a copy of the queue state, so nothing is consumed.  Runs when
 * the driver kicks the receive queue, after each delivered frame and
 * when a fault of the queue is resolved; a chain of faults (ring entry,
 * descriptor, buffer pages) is thus served one after the other.
 */
static void vdpa_net_rx_prepare(VdpaInst *inst)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[0];
    VdpaNetReq *req;
    const char *err = NULL;
    uint64_t fault, left = VDPA_NET_HDR + VDPA_NET_MAX_FRAME;
    bool fw;

    if (!s->host || inst->pasid != VDPA_NO_PASID ||
        !vdpa_inst_runnable(inst) || !q->vq.enabled ||
        vdpa_queue_blocked(inst, 0)) {
        return;
    }
    req = q->held;
    if (!req) {
        Virtq peek = q->vq;

        req = vdpa_net_req_get(s, inst, 0);
        switch (iolab_virtq_pop(&peek, &vdpa_dma_ops, inst, &req->elem, &fault,
                          &fw, &err)) {
        case VIRTQ_OK:
            break;
        case VIRTQ_FAULT:
            vdpa_queue_fault(inst, 0, fault, false);
            /* fall through */
        default:
            /* Empty, or an error the frame's own pop will report */
            vdpa_net_req_put(s, req);
            return;
        }
    }
    for (uint16_t i = 0; i < req->elem.nseg && left; i++) {
        const VirtqSeg *sg = &req->elem.seg[i];
        uint64_t len = MIN(sg->len, left);

        if (!sg->write) {
            continue;
        }
        if (vdpa_host_dma(s, s->fault_dev, inst->as, sg->addr, NULL, len,
                          true, &fault) == VIRTQ_FAULT) {
            vdpa_queue_fault(inst, 0, fault, true);
            break;
        }
        left -= len;
    }
    if (req != q->held) {
        vdpa_net_req_put(s, req);
    }
}

/*
 * Put one received frame in the instance's receive queue 0, or drop it.
 * A frame that meets a VPRI fault (or a queue still waiting for one) is
 * dropped and counted; the fault is raised so that the page comes back,
 * and a buffer already popped stays held for the next frame.
 */
static void vdpa_net_rx_one(VdpaInst *inst, const uint8_t *buf, size_t size)
{
    VdpaMgmt *s = inst->s;
    VdpaQueue *q = &inst->q[0];
    struct virtio_net_hdr_v1 hdr = { 0 };
    VdpaNetReq *req;
    const char *err = NULL;
    uint64_t fault;
    bool fw;
    int ret;

    if (!vdpa_inst_runnable(inst) || !q->vq.enabled) {
        s->rx_dropped++;
        return;
    }
    if (vdpa_queue_blocked(inst, 0)) {
        s->rx_fault_dropped++;
        return;
    }
    req = q->held;
    if (req) {
        q->held = req->next_held;
    } else {
        VirtqStatus st;

        req = vdpa_net_req_get(s, inst, 0);
        st = iolab_virtq_pop(&q->vq, &vdpa_dma_ops, inst, &req->elem, &fault, &fw,
                       &err);
        if (st != VIRTQ_OK) {
            if (st == VIRTQ_FAULT) {
                vdpa_queue_fault(inst, 0, fault, false);
                s->rx_fault_dropped++;
            } else {
                if (st != VIRTQ_EMPTY) {
                    vdpa_inst_error(inst, "queue 0: %s", err ?: "bad chain");
                }
                s->rx_dropped++;
            }
            vdpa_net_req_put(s, req);
            return;
        }
    }
    /* Always one buffer per frame (no MRG_RXBUF) */
    stw_le_p(&hdr.num_buffers, 1);
    ret = 0;
    if (req->elem.in_len < VDPA_NET_HDR + size) {
        s->rx_dropped++;
        size = 0;
    } else {
        ret = iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops, inst, 0, &hdr,
                               sizeof(hdr), &fault);
        if (ret == 0) {
            ret = iolab_virtq_elem_write(&req->elem, &vdpa_dma_ops, inst,
                                   VDPA_NET_HDR, buf, size, &fault);
        }
    }
    if (ret == 0) {
        ret = iolab_virtq_push(&q->vq, &vdpa_dma_ops, inst, req->elem.head,
                         size ? VDPA_NET_HDR + size : 0, &fault);
    }
    if (ret == VIRTQ_FAULT) {
        vdpa_net_req_hold(req, fault, true);
        s->rx_fault_dropped++;
        return;
    }
    if (ret) {
        vdpa_inst_error(inst, "queue 0: rx buffer or used ring refused");
        vdpa_net_req_put(s, req);
        return;
    }
    inst->stats.requests++;
    inst->stats.bytes_read += size;
    vdpa_queue_interrupt(inst, 0);
    vdpa_net_req_put(s, req);
    vdpa_net_rx_prepare(inst);
}

/*
 * Nothing is delivered while the VM is stopped: the netdev queues the
 * frames, and vdpa_vm_state_change() flushes them when it runs again.
 */
static bool vdpa_net_can_receive(NetClientState *nc)
{
    return runstate_is_running();
}

/*
 * The shared netdev's receive path: a unicast frame goes to the instance
 * with that MAC, a multicast or broadcast one to every net instance; a
 * frame nobody takes is dropped (counted), never queued, so one idle
 * instance cannot stall the others.
 */
static ssize_t vdpa_net_receive(NetClientState *nc, const uint8_t *buf,
                                size_t size)
{
    VdpaMgmt *s = qemu_get_nic_opaque(nc);

    if (size < 6) {
        return size;
    }
    if (buf[0] & 1) {
        GHashTableIter it;
        gpointer inst;

        g_hash_table_iter_init(&it, s->macs);
        while (g_hash_table_iter_next(&it, NULL, &inst)) {
            vdpa_net_rx_one(inst, buf, size);
        }
    } else {
        VdpaInst *inst = g_hash_table_lookup(s->macs, &(uint64_t) {
                                                 vdpa_mac_key(buf) });

        if (inst) {
            vdpa_net_rx_one(inst, buf, size);
        } else {
            s->rx_dropped++;
        }
    }
    return size;
}

NetClientInfo vdpa_net_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = vdpa_net_can_receive,
    .receive = vdpa_net_receive,
};

static void vdpa_net_config(VdpaInst *inst, uint8_t *cfg)
{
    struct virtio_net_config *c = (struct virtio_net_config *)cfg;

    memcpy(c->mac, inst->mac, sizeof(c->mac));
    stw_le_p(&c->status, VIRTIO_NET_S_LINK_UP);
    stw_le_p(&c->max_virtqueue_pairs, inst->nqueues / 2);
    stw_le_p(&c->mtu, 1500);
}

/* Odd queues transmit, queue 0 receives (its buffers are checked ahead) */
static void vdpa_net_run_queue(VdpaInst *inst, uint16_t qi)
{
    if (qi % 2) {
        vdpa_net_tx(inst, qi);
    } else if (qi == 0) {
        vdpa_net_rx_prepare(inst);
    }
}

const VdpaInstOps vdpa_net_ops = {
    .run_queue = vdpa_net_run_queue,
    .get_config = vdpa_net_config,
};
