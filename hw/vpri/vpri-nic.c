/*
 * vpri-nic: a virtio-net compatible PCI NIC that takes I/O page faults
 *
 * The unmodified Linux virtio_net driver sees a modern virtio network
 * device with a MAC address, link status and, with queues > 1, several
 * queue pairs and a control queue.  Every ring and buffer access goes
 * through the PA-BITMAP check of the VPRI transport, so any of them can
 * fault.  What happens then is what the device models:
 *
 * - RX, rx-fault-policy=hold: the packet stays in QEMU's net queue (the
 *   receive hook answers 0) and is delivered again once the host has paged
 *   the memory in, like a NIC with on-board buffering;
 * - RX, rx-fault-policy=drop: the packet is dropped and counted, like a
 *   NIC that found no buffer posted, and the packets that arrive while the
 *   fault is pending are dropped too;
 * - TX and control: the queue stalls until the fault is resolved; the
 *   element popped so far is kept and the access repeated.
 *
 * Either way the fault is raised, so the page comes back for later
 * packets.  Queues are independent: a fault blocks only its own queue.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "net/net.h"
#include "system/system.h"
#include "standard-headers/linux/virtio_net.h"
#include "standard-headers/linux/virtio_ring.h"
#include "hw/vpri/vpri-host.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "hw/vpri/vpri-nic.h"
#include "vpri-nic-internal.h"
#include "trace.h"

static bool vpri_nic_running(VpriNic *s)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    return (vp->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
           !vpri_virtio_pci_broken(vp) && !vp->vm_stopped;
}

/* Raise a fault for queue @index, counting it once per stall. */
static void vpri_nic_fault(VpriNic *s, uint16_t index, uint64_t addr,
                           bool write)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    if (!vp->queues[index].blocked) {
        s->queue_faults[index]++;
        trace_vpri_nic_fault(index, addr, write);
    }
    vpri_virtio_pci_queue_fault(vp, index, addr, write);
}

/*
 * Act on what a DMA access of queue @index returned: VIRTQ_FAULT raises
 * the fault at @fault (@write: the device was writing) and blocks the
 * queue; VIRTQ_ERROR logs "queue N: <fmt>" as a guest error and breaks
 * the device.  Returns @ret, so callers only add what is theirs.
 */
static int G_GNUC_PRINTF(6, 7)
vpri_nic_dma_check(VpriNic *s, uint16_t index, int ret, uint64_t fault,
                   bool write, const char *fmt, ...)
{
    if (ret == VIRTQ_FAULT) {
        vpri_nic_fault(s, index, fault, write);
    } else if (ret == VIRTQ_ERROR) {
        g_autofree char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        vpri_virtio_pci_guest_error(VPRI_VIRTIO_PCI(s), "queue %u: %s",
                                    index, what);
    }
    return ret;
}

/*
 * Make sure @slot holds an element of queue @index.  Returns 0, or
 * VIRTQ_EMPTY (notifications re-enabled and the ring really is empty),
 * VIRTQ_FAULT (fault raised, queue blocked) or VIRTQ_ERROR (device
 * broken).
 */
static int vpri_nic_fill_slot(VpriNic *s, uint16_t index, VpriNicSlot *slot)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    VpriQueue *q = &vp->queues[index];

    while (!slot->busy) {
        const char *err = NULL;
        uint64_t fault;
        bool fault_write;
        uint16_t avail;
        VirtqStatus st;
        int ret;

        st = iolab_virtq_pop(&q->vq, &vp->dma_ops, &q->dma, slot->elem, &fault,
                       &fault_write, &err);
        if (st == VIRTQ_OK) {
            slot->busy = true;
            break;
        }
        if (st != VIRTQ_EMPTY) {
            return vpri_nic_dma_check(s, index, st, fault, fault_write, "%s",
                                      err ? err : "bad descriptor chain");
        }
        /*
         * Empty: ask for the next kick, then look once more, since the
         * driver may have added a buffer before it saw the new setting.
         */
        ret = iolab_virtq_set_notification(&q->vq, &vp->dma_ops, &q->dma, true,
                                     &fault);
        if (ret == 0) {
            ret = iolab_virtq_avail_count(&q->vq, &vp->dma_ops, &q->dma, &avail,
                                    &fault);
        }
        if (ret) {
            return vpri_nic_dma_check(s, index, ret, fault, false, "%s",
                                      iolab_virtq_error_reason(&q->vq));
        }
        if (!avail) {
            return VIRTQ_EMPTY;
        }
    }
    return 0;
}

/* Give the slot's element back to the driver with @written bytes. */
static int vpri_nic_push(VpriNic *s, uint16_t index, VpriNicSlot *slot,
                         uint32_t written)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    VpriQueue *q = &vp->queues[index];
    uint64_t fault;
    int ret;

    ret = iolab_virtq_push(&q->vq, &vp->dma_ops, &q->dma, slot->elem->head,
                     written, &fault);
    if (ret) {
        return vpri_nic_dma_check(s, index, ret, fault, true,
                                  "used ring: %s", iolab_virtq_error_reason(&q->vq));
    }
    slot->busy = false;
    return 0;
}

/*
 * The host could not page in what queue @index faulted on.  Nothing on
 * that queue can complete, so the device asks for a reset.
 */
static bool vpri_nic_fault_failed(VpriNic *s, uint16_t index)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    VpriQueue *q = &vp->queues[index];

    if (!q->fault_failed) {
        return false;
    }
    q->fault_failed = false;
    vpri_virtio_pci_guest_error(vp, "queue %u: page at 0x%" PRIx64
                                " cannot be paged in", index, q->fault_addr);
    return true;
}

/* ------------------------------------------------------------------ */
/* Receive                                                            */

static bool vpri_nic_rx_ready(VpriNic *s, uint16_t pair)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    return vpri_nic_running(s) && pair < s->curr_pairs &&
           vp->queues[vpri_nic_rxq(pair)].enabled;
}

static bool vpri_nic_can_receive(NetClientState *nc)
{
    VpriNic *s = qemu_get_nic_opaque(nc);
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    uint16_t pair = nc->queue_index;

    if (!vpri_nic_rx_ready(s, pair)) {
        return false;
    }
    /* Under hold, packets wait in the net queue while the fault is served. */
    return !(vp->queues[vpri_nic_rxq(pair)].blocked &&
             s->rx_policy == VPRI_NIC_RX_HOLD);
}

/* The packet met a non-present page (or a queue blocked on one). */
static ssize_t vpri_nic_rx_fault(VpriNic *s, uint16_t pair, size_t size)
{
    if (s->rx_policy == VPRI_NIC_RX_HOLD) {
        s->rx_held++;
        trace_vpri_nic_rx_hold(pair, size);
        return 0;
    }
    s->rx_dropped_on_fault++;
    trace_vpri_nic_rx_drop(pair, size);
    return size;
}

/*
 * Get the next receive buffer ready before a packet needs it: pop it and
 * write its header, so that the pages of its ring entry, descriptor and
 * first buffer page are faulted in now, one after the other as each fault
 * is answered, rather than one per arriving packet.  Under drop this is
 * what lets sparse traffic (ARP, a TCP handshake, retransmissions) through
 * a queue whose pages keep being evicted.  Returns false if a fault is
 * pending.
 */
static bool vpri_nic_rx_prepare(VpriNic *s, uint16_t pair)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    uint16_t index = vpri_nic_rxq(pair);
    VpriQueue *q = &vp->queues[index];
    VpriNicSlot *slot = &s->rx[pair];
    struct virtio_net_hdr_v1 hdr = { 0 };
    uint64_t fault;
    int ret;

    if (!vpri_nic_rx_ready(s, pair) || q->blocked) {
        return !q->blocked;
    }
    ret = vpri_nic_fill_slot(s, index, slot);
    if (ret) {
        return ret != VIRTQ_FAULT;
    }
    if (slot->elem->out_len || slot->elem->in_len < VPRI_NIC_HDR_LEN) {
        return true;            /* receive reports it */
    }
    ret = iolab_virtq_elem_write(slot->elem, &vp->dma_ops, &q->dma, 0, &hdr,
                           sizeof(hdr), &fault);
    if (ret == VIRTQ_FAULT) {
        vpri_nic_fault(s, index, fault, true);
        return false;
    }
    return true;
}

/*
 * Report the receive buffers posted since the last look to the host
 * (vpri_host_dma_arm()): a NIC reads the descriptor of each buffer it is
 * given before it fills it, so it can tell the host which pages it will
 * write, before it writes them.  The pinning policy can then keep pages
 * the device has never touched yet (adp does, for NIC parts).  It looks
 * on a kick and every VPRI_NIC_LOOK_EVERY packets (with EVENT_IDX the
 * driver rarely kicks a queue that is not empty).  A page missing under
 * the rings stops the look; it raises no fault.
 */
static void vpri_nic_rx_arm(VpriNic *s, uint16_t pair)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    VpriQueue *q = &vp->queues[vpri_nic_rxq(pair)];
    VpriNicSlot *slot = &s->rx[pair];
    uint64_t fault;

    if (!vp->host || !vpri_nic_rx_ready(s, pair) || q->blocked) {
        return;
    }
    slot->packets_since_look = 0;
    if ((uint16_t)(slot->armed - q->vq.last_avail_idx) > q->vq.size) {
        slot->armed = q->vq.last_avail_idx;
    }
    for (uint32_t n = 0; n < q->vq.size; n++) {
        if (iolab_virtq_peek(&q->vq, &vp->dma_ops, &q->dma, slot->armed, true,
                       s->peek, &fault) != VIRTQ_OK) {
            break;
        }
        for (uint16_t i = 0; i < s->peek->nseg; i++) {
            if (s->peek->seg[i].write) {
                vpri_host_dma_arm(vp->host, vp->fault_device_id,
                                  s->peek->seg[i].addr, s->peek->seg[i].len);
            }
        }
        slot->armed++;
    }
}

static ssize_t vpri_nic_receive(NetClientState *nc, const uint8_t *buf,
                                size_t size)
{
    VpriNic *s = qemu_get_nic_opaque(nc);
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    uint16_t pair = nc->queue_index;
    uint16_t index = vpri_nic_rxq(pair);
    VpriQueue *q = &vp->queues[index];
    VpriNicSlot *slot = &s->rx[pair];
    /* No checksum or GSO information, one buffer */
    struct virtio_net_hdr_v1 hdr = {
        .gso_type = VIRTIO_NET_HDR_GSO_NONE,
        .num_buffers = cpu_to_le16(1),
    };
    uint64_t fault;
    int ret;

    if (!vpri_nic_rx_ready(s, pair)) {
        s->rx_dropped_other++;
        return size;
    }
    if (q->blocked) {
        return vpri_nic_rx_fault(s, pair, size);
    }
    ret = vpri_nic_fill_slot(s, index, slot);
    if (ret == VIRTQ_EMPTY) {
        /* No buffer: the packet waits for the driver's next kick. */
        return 0;
    }
    if (ret == VIRTQ_FAULT) {
        return vpri_nic_rx_fault(s, pair, size);
    }
    if (ret == VIRTQ_ERROR) {
        s->rx_dropped_other++;
        return size;
    }
    if (slot->elem->out_len || slot->elem->in_len < VPRI_NIC_HDR_LEN) {
        slot->busy = false;
        vpri_virtio_pci_guest_error(vp, "queue %u: receive buffer with %u "
                                    "readable and %u writable bytes", index,
                                    slot->elem->out_len, slot->elem->in_len);
        s->rx_dropped_other++;
        return size;
    }
    if (size > slot->elem->in_len - VPRI_NIC_HDR_LEN) {
        /*
         * The buffer stays posted for a packet that fits: without mergeable
         * buffers the driver promised room for whatever it enabled.
         */
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vpri-nic: queue %u: %zu-byte packet does not fit a "
                      "%u-byte receive buffer; dropped\n", index, size,
                      slot->elem->in_len);
        s->rx_dropped_other++;
        return size;
    }

    ret = iolab_virtq_elem_write(slot->elem, &vp->dma_ops, &q->dma, 0, &hdr,
                           sizeof(hdr), &fault);
    if (ret == 0) {
        ret = iolab_virtq_elem_write(slot->elem, &vp->dma_ops, &q->dma,
                               VPRI_NIC_HDR_LEN, buf, size, &fault);
    }
    ret = vpri_nic_dma_check(s, index, ret, fault, true,
                             "DMA error on a receive buffer");
    if (ret == VIRTQ_FAULT) {
        return vpri_nic_rx_fault(s, pair, size);
    }
    if (ret == VIRTQ_ERROR) {
        slot->busy = false;
        s->rx_dropped_other++;
        return size;
    }
    ret = vpri_nic_push(s, index, slot, VPRI_NIC_HDR_LEN + size);
    if (ret == VIRTQ_FAULT) {
        return vpri_nic_rx_fault(s, pair, size);
    }
    if (ret == VIRTQ_ERROR) {
        s->rx_dropped_other++;
        return size;
    }
    s->rx_packets++;
    vpri_virtio_pci_notify_queue(vp, index);
    /*
     * Ready the next buffer now: if its page is gone, the fault is served
     * before the next packet comes, rather than costing that packet (under
     * drop, a retransmission and its backoff).
     */
    vpri_nic_rx_prepare(s, pair);
    if (++slot->packets_since_look >= VPRI_NIC_LOOK_EVERY) {
        vpri_nic_rx_arm(s, pair);
    }
    return size;
}

/* New buffers, or the fault that blocked the queue was resolved. */
static void vpri_nic_rx_run(VpriNic *s, uint16_t pair)
{
    vpri_nic_rx_arm(s, pair);
    if (vpri_nic_fault_failed(s, vpri_nic_rxq(pair)) ||
        !vpri_nic_rx_prepare(s, pair)) {
        return;
    }
    if (pair < s->nic_queues) {
        qemu_flush_queued_packets(qemu_get_subqueue(s->nic, pair));
    }
}

/* ------------------------------------------------------------------ */
/* Transmit                                                           */

static void vpri_nic_tx_kick(VpriNic *s, uint16_t pair)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    vp->kick_pending |= 1ULL << vpri_nic_txq(pair);
    qemu_bh_schedule(vp->kick_bh);
}

static void vpri_nic_tx_sent(NetClientState *nc, ssize_t len)
{
    VpriNic *s = qemu_get_nic_opaque(nc);

    /* Sub-queues may share one peer: let every waiting one go on. */
    for (uint16_t i = 0; i < s->max_pairs; i++) {
        if (s->tx[i].waiting) {
            s->tx[i].waiting = false;
            vpri_nic_tx_kick(s, i);
        }
    }
}

/*
 * Queue pairs beyond the netdev's own queues send through its queue 0, so
 * that multiqueue works over any netdev; they receive nothing.
 */
static NetClientState *vpri_nic_tx_client(VpriNic *s, uint16_t pair)
{
    return qemu_get_subqueue(s->nic, pair < s->nic_queues ? pair : 0);
}

static void vpri_nic_tx_run(VpriNic *s, uint16_t pair)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    uint16_t index = vpri_nic_txq(pair);
    VpriQueue *q = &vp->queues[index];
    VpriNicTx *tx = &s->tx[pair];
    unsigned done = 0;

    if (vpri_nic_fault_failed(s, index) || tx->waiting) {
        return;
    }
    while (!q->blocked && vpri_nic_running(s)) {
        VirtqElem *elem = tx->slot.elem;
        uint32_t len;
        uint64_t fault;
        ssize_t sent;
        int ret;

        if (done == VPRI_NIC_TX_BURST) {
            vpri_nic_tx_kick(s, pair);
            break;
        }
        ret = vpri_nic_fill_slot(s, index, &tx->slot);
        if (ret == VIRTQ_FAULT) {
            s->tx_stalls++;
            break;
        }
        if (ret) {
            break;
        }
        done++;
        if (elem->in_len || elem->out_len < VPRI_NIC_HDR_LEN ||
            elem->out_len - VPRI_NIC_HDR_LEN > VPRI_NIC_MAX_FRAME) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vpri-nic: queue %u: transmit chain with %u "
                          "readable and %u writable bytes; dropped\n",
                          index, elem->out_len, elem->in_len);
            s->tx_errors++;
            if (vpri_nic_push(s, index, &tx->slot, 0)) {
                break;
            }
            continue;
        }
        len = elem->out_len - VPRI_NIC_HDR_LEN;
        ret = iolab_virtq_elem_read(elem, &vp->dma_ops, &q->dma, VPRI_NIC_HDR_LEN,
                              tx->buf, len, &fault);
        if (vpri_nic_dma_check(s, index, ret, fault, false,
                               "DMA error on a transmit buffer")) {
            s->tx_stalls += ret == VIRTQ_FAULT;
            break;
        }
        /* The copy is ours: complete first, so a fault here resends nothing. */
        ret = vpri_nic_push(s, index, &tx->slot, 0);
        if (ret == VIRTQ_FAULT) {
            s->tx_stalls++;
        }
        if (ret) {
            break;
        }
        s->tx_packets++;
        sent = qemu_send_packet_async(vpri_nic_tx_client(s, pair), tx->buf,
                                      len, vpri_nic_tx_sent);
        if (sent == 0) {
            tx->waiting = true;
            break;
        }
    }
    if (done) {
        vpri_virtio_pci_notify_queue(vp, index);
    }
}

/* ------------------------------------------------------------------ */
/* Control queue                                                      */

static uint8_t vpri_nic_ctrl_command(VpriNic *s, uint8_t class, uint8_t cmd,
                                     const uint8_t *data, uint32_t len)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    switch (class) {
    case VIRTIO_NET_CTRL_RX:
        /*
         * Every packet is delivered anyway (no filtering), which is what
         * promiscuous and all-multicast ask for and more than the others.
         */
        return cmd <= VIRTIO_NET_CTRL_RX_NOBCAST && len >= 1 ?
               VIRTIO_NET_OK : VIRTIO_NET_ERR;
    case VIRTIO_NET_CTRL_MQ:
        if (cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && len >= 2 &&
            vpri_virtio_pci_has_feature(vp, VIRTIO_NET_F_MQ)) {
            uint16_t pairs = lduw_le_p(data);

            if (pairs < 1 || pairs > s->max_pairs) {
                qemu_log_mask(LOG_GUEST_ERROR,
                              "vpri-nic: %u queue pairs asked, 1..%u "
                              "possible\n", pairs, s->max_pairs);
                return VIRTIO_NET_ERR;
            }
            s->curr_pairs = pairs;
            for (uint16_t i = 0; i < MIN(pairs, s->nic_queues); i++) {
                qemu_flush_queued_packets(qemu_get_subqueue(s->nic, i));
            }
            return VIRTIO_NET_OK;
        }
        break;
    }
    qemu_log_mask(LOG_UNIMP, "vpri-nic: control command %u.%u not "
                  "supported\n", class, cmd);
    return VIRTIO_NET_ERR;
}

static void vpri_nic_ctrl_run(VpriNic *s)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);
    uint16_t index = vpri_nic_ctrl_index(s);
    VpriQueue *q = &vp->queues[index];
    VpriNicSlot *slot = &s->ctrl;
    unsigned done = 0;

    if (vpri_nic_fault_failed(s, index)) {
        return;
    }
    while (!q->blocked && vpri_nic_running(s)) {
        VirtqElem *elem = slot->elem;
        uint8_t cmd[64];
        uint8_t ack;
        uint64_t fault;
        uint32_t len;
        int ret;

        /*
         * A guest that keeps refilling the ring must not keep the main
         * loop here: the rest runs from the transport's kick bottom half.
         */
        if (done == VPRI_NIC_CTRL_BURST) {
            trace_vpri_nic_ctrl_yield(index, done);
            vpri_virtio_pci_kick_later(vp, index);
            return;
        }
        if (vpri_nic_fill_slot(s, index, slot)) {
            return;
        }
        if (elem->out_len < 2 || elem->in_len < 1) {
            slot->busy = false;
            vpri_virtio_pci_guest_error(vp, "control command with %u "
                                        "readable and %u writable bytes",
                                        elem->out_len, elem->in_len);
            return;
        }
        len = MIN(elem->out_len, sizeof(cmd));
        ret = iolab_virtq_elem_read(elem, &vp->dma_ops, &q->dma, 0, cmd, len,
                              &fault);
        if (vpri_nic_dma_check(s, index, ret, fault, false,
                               "DMA error on a control command")) {
            return;
        }
        /* Commands are idempotent: a fault below simply runs it again. */
        ack = vpri_nic_ctrl_command(s, cmd[0], cmd[1], cmd + 2, len - 2);
        ret = iolab_virtq_elem_write(elem, &vp->dma_ops, &q->dma, 0, &ack, 1,
                               &fault);
        if (vpri_nic_dma_check(s, index, ret, fault, true,
                               "DMA error on a control ack")) {
            return;
        }
        if (vpri_nic_push(s, index, slot, 1)) {
            return;
        }
        done++;
        vpri_virtio_pci_notify_queue(vp, index);
    }
}

/* ------------------------------------------------------------------ */
/* Transport hooks                                                    */

static void vpri_nic_queue_notify(VpriVirtioPCI *vp, uint16_t index)
{
    VpriNic *s = VPRI_NIC(vp);
    uint16_t ctrl = vpri_nic_ctrl_index(s);

    if (index == ctrl && vpri_virtio_pci_has_feature(vp,
                                                     VIRTIO_NET_F_CTRL_VQ)) {
        vpri_nic_ctrl_run(s);
    } else if (index < 2 * s->max_pairs && !(index & 1)) {
        vpri_nic_rx_run(s, index / 2);
    } else if (index < 2 * s->max_pairs) {
        vpri_nic_tx_run(s, index / 2);
    }
}

static uint64_t vpri_nic_get_features(VpriVirtioPCI *vp)
{
    VpriNic *s = VPRI_NIC(vp);
    uint64_t f = (1ULL << VIRTIO_NET_F_MAC) |
                 (1ULL << VIRTIO_NET_F_STATUS) |
                 (1ULL << VIRTIO_NET_F_CTRL_VQ) |
                 (1ULL << VIRTIO_RING_F_EVENT_IDX) |
                 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
                 (1ULL << VIRTIO_F_ACCESS_PLATFORM);

    if (s->max_pairs > 1) {
        f |= 1ULL << VIRTIO_NET_F_MQ;
    }
    return f;
}

static void vpri_nic_get_config(VpriVirtioPCI *vp, uint8_t *config)
{
    VpriNic *s = VPRI_NIC(vp);
    struct virtio_net_config *c = (struct virtio_net_config *)config;

    memcpy(c->mac, s->conf.macaddr.a, ETH_ALEN);
    stw_le_p(&c->status, s->status);
    stw_le_p(&c->max_virtqueue_pairs, s->max_pairs);
}

static void vpri_nic_set_link_status(NetClientState *nc)
{
    VpriNic *s = qemu_get_nic_opaque(nc);
    uint16_t old = s->status;

    s->status = nc->link_down ? 0 : VIRTIO_NET_S_LINK_UP;
    if (old != s->status &&
        vpri_virtio_pci_has_feature(VPRI_VIRTIO_PCI(s), VIRTIO_NET_F_STATUS)) {
        vpri_virtio_pci_config_changed(VPRI_VIRTIO_PCI(s));
    }
}

static void vpri_nic_driver_ok(VpriVirtioPCI *vp)
{
    VpriNic *s = VPRI_NIC(vp);

    for (uint16_t i = 0; i < s->nic_queues; i++) {
        qemu_flush_queued_packets(qemu_get_subqueue(s->nic, i));
    }
}

static void vpri_nic_reset(VpriVirtioPCI *vp)
{
    VpriNic *s = VPRI_NIC(vp);

    for (uint16_t i = 0; i < s->max_pairs; i++) {
        s->rx[i].busy = false;
        s->rx[i].armed = 0;
        s->rx[i].packets_since_look = 0;
        s->tx[i].slot.busy = false;
        s->tx[i].waiting = false;
    }
    /* Held packets belong to the old driver instance. */
    for (uint16_t i = 0; i < s->nic_queues; i++) {
        qemu_purge_queued_packets(qemu_get_subqueue(s->nic, i));
    }
    s->ctrl.busy = false;
    s->curr_pairs = 1;
}


static NetClientInfo vpri_nic_info = {
    .type = NET_CLIENT_DRIVER_NIC,
    .size = sizeof(NICState),
    .can_receive = vpri_nic_can_receive,
    .receive = vpri_nic_receive,
    .link_status_changed = vpri_nic_set_link_status,
};

static void vpri_nic_realize(PCIDevice *pci, Error **errp)
{
    VpriNic *s = VPRI_NIC(pci);
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(pci);
    DeviceState *dev = DEVICE(pci);
    unsigned pairs, nq;

    if (!s->rx_policy_str || !strcmp(s->rx_policy_str, "hold")) {
        s->rx_policy = VPRI_NIC_RX_HOLD;
    } else if (!strcmp(s->rx_policy_str, "drop")) {
        s->rx_policy = VPRI_NIC_RX_DROP;
    } else {
        error_setg(errp, "vpri-nic: rx-fault-policy must be 'hold' or "
                   "'drop', not '%s'", s->rx_policy_str);
        return;
    }
    /*
     * Counted in unsigned int: 2 * 32768 + 1 queues would wrap a uint16_t
     * back to a small number and pass the check.
     */
    pairs = s->queues_prop ? MAX(s->queues_prop, s->conf.peers.queues) : 0;
    nq = 2 * pairs + 1;
    /* A NIC without a queue pair cannot work: 0 is no shorthand for 1. */
    if (!pairs || nq > VPRI_VPCI_MAX_QUEUES) {
        error_setg(errp, "vpri-nic: queues must be 1..%u, not %u",
                   (VPRI_VPCI_MAX_QUEUES - 1) / 2, pairs);
        return;
    }
    s->max_pairs = pairs;
    if (s->queue_size < 64) {
        error_setg(errp, "vpri-nic: queue-size must be at least 64, not %u",
                   s->queue_size);
        return;
    }
    if (!vpri_virtio_pci_realize(vp, nq, s->queue_size, errp)) {
        return;
    }
    s->curr_pairs = 1;
    s->status = VIRTIO_NET_S_LINK_UP;
    s->rx = g_new0(VpriNicSlot, s->max_pairs);
    s->tx = g_new0(VpriNicTx, s->max_pairs);
    s->queue_faults = g_new0(uint64_t, nq);
    for (uint16_t i = 0; i < s->max_pairs; i++) {
        s->rx[i].elem = g_new(VirtqElem, 1);
        s->tx[i].slot.elem = g_new(VirtqElem, 1);
        s->tx[i].buf = g_malloc(VPRI_NIC_MAX_FRAME);
    }
    s->ctrl.elem = g_new(VirtqElem, 1);
    s->peek = g_new(VirtqElem, 1);

    qemu_macaddr_default_if_unset(&s->conf.macaddr);
    /* One net client per netdev queue (see tx_client for the others). */
    s->nic_queues = MAX(s->conf.peers.queues, 1);
    s->nic = qemu_new_nic(&vpri_nic_info, &s->conf,
                          object_get_typename(OBJECT(s)), dev->id,
                          &dev->mem_reentrancy_guard, s);
    qemu_format_nic_info_str(qemu_get_queue(s->nic), s->conf.macaddr.a);
    if (qemu_get_queue(s->nic)->link_down) {
        s->status = 0;
    }
}

static void vpri_nic_exit(PCIDevice *pci)
{
    VpriNic *s = VPRI_NIC(pci);

    qemu_del_nic(s->nic);
    vpri_virtio_pci_unrealize(VPRI_VIRTIO_PCI(s));
    for (uint16_t i = 0; i < s->max_pairs; i++) {
        g_free(s->rx[i].elem);
        g_free(s->tx[i].slot.elem);
        g_free(s->tx[i].buf);
    }
    g_free(s->ctrl.elem);
    g_free(s->peek);
    g_free(s->rx);
    g_free(s->tx);
    g_free(s->queue_faults);
}

/* vpri-host-client: the NIC's members of its query-vpri entry. */
static void vpri_nic_query_stats(DeviceState *dev, VpriDeviceInfo *info)
{
    VpriNic *s = VPRI_NIC(dev);
    uint16_t nq;

    nq = VPRI_VIRTIO_PCI(s)->num_queues;
    info->has_rx_dropped_on_fault = true;
    info->rx_dropped_on_fault = s->rx_dropped_on_fault;
    info->has_rx_held = true;
    info->rx_held = s->rx_held;
    info->has_tx_stalls = true;
    info->tx_stalls = s->tx_stalls;
    info->has_rx_packets = true;
    info->rx_packets = s->rx_packets;
    info->has_tx_packets = true;
    info->tx_packets = s->tx_packets;
    info->has_rx_dropped_other = true;
    info->rx_dropped_other = s->rx_dropped_other;
    info->has_queue_faults = true;
    for (int i = nq - 1; i >= 0; i--) {
        QAPI_LIST_PREPEND(info->queue_faults, s->queue_faults[i]);
    }
}

static const Property vpri_nic_properties[] = {
    DEFINE_NIC_PROPERTIES(VpriNic, conf),
    DEFINE_PROP_UINT16("queues", VpriNic, queues_prop, 1),
    DEFINE_PROP_UINT16("queue-size", VpriNic, queue_size, 256),
    DEFINE_PROP_STRING("rx-fault-policy", VpriNic, rx_policy_str),
};

static void vpri_nic_instance_init(Object *obj)
{
    VpriNic *s = VPRI_NIC(obj);

    device_add_bootindex_property(obj, &s->conf.bootindex, "bootindex",
                                  "/ethernet-phy@0", DEVICE(obj));
}

static void vpri_nic_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);
    VpriVirtioPCIClass *vc = VPRI_VIRTIO_PCI_CLASS(klass);
    VpriHostClientClass *hc = VPRI_HOST_CLIENT_CLASS(klass);

    hc->query_stats = vpri_nic_query_stats;
    pc->realize = vpri_nic_realize;
    pc->exit = vpri_nic_exit;
    vc->virtio_device_id = 1;
    vc->pci_class = PCI_CLASS_NETWORK_ETHERNET;
    vc->config_size = VPRI_NIC_CONFIG_SIZE;
    vc->get_features = vpri_nic_get_features;
    vc->get_config = vpri_nic_get_config;
    vc->queue_notify = vpri_nic_queue_notify;
    vc->driver_ok = vpri_nic_driver_ok;
    vc->reset = vpri_nic_reset;
    vc->resume_faulted_only = true;
    vc->restart = vpri_nic_restart;
    dc->vmsd = &vmstate_vpri_nic;
    dc->desc = "VPRI virtio-net compatible NIC (I/O page faults)";
    set_bit(DEVICE_CATEGORY_NETWORK, dc->categories);
    device_class_set_props(dc, vpri_nic_properties);
}

static const TypeInfo vpri_nic_type_info = {
    .name = TYPE_VPRI_NIC,
    .parent = TYPE_VPRI_VIRTIO_PCI,
    .instance_size = sizeof(VpriNic),
    .instance_init = vpri_nic_instance_init,
    .class_init = vpri_nic_class_init,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_VPRI_HOST_CLIENT },
        { }
    },
};

static void vpri_nic_register_types(void)
{
    type_register_static(&vpri_nic_type_info);
}

type_init(vpri_nic_register_types)
