/*
 * vpri-nic: what its two files share (not an interface; the device's
 * public header is include/hw/vpri/vpri-nic.h).  vpri-nic.c is the device
 * (config, receive, transmit, control queue), vpri-nic-migration.c its
 * migration state; the device file only names the migration's VMState and
 * restart hook, and the migration file calls nothing of the device file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VPRI_NIC_INTERNAL_H
#define HW_VPRI_NIC_INTERNAL_H

#include "qemu/units.h"
#include "net/net.h"
#include "standard-headers/linux/virtio_net.h"
#include "hw/vpri/vpri-virtio-pci.h"
#include "hw/vpri/vpri-nic.h"

OBJECT_DECLARE_SIMPLE_TYPE(VpriNic, VPRI_NIC)

/* struct virtio_net_hdr_v1: the header of every packet with VERSION_1 */
#define VPRI_NIC_HDR_LEN     sizeof(struct virtio_net_hdr_v1)
QEMU_BUILD_BUG_ON(VPRI_NIC_HDR_LEN != 12);
/* Largest frame either way: a 64 KiB IP datagram plus its Ethernet header */
#define VPRI_NIC_MAX_FRAME   (64 * KiB + 14)
/* TX packets handled per run before yielding to the main loop */
#define VPRI_NIC_TX_BURST    256
/* Control commands handled per run before yielding to the main loop */
#define VPRI_NIC_CTRL_BURST  64
/* Config space up to and including max_virtqueue_pairs */
#define VPRI_NIC_CONFIG_SIZE \
    endof(struct virtio_net_config, max_virtqueue_pairs)

typedef enum VpriNicRxPolicy {
    VPRI_NIC_RX_HOLD,
    VPRI_NIC_RX_DROP,
} VpriNicRxPolicy;

/* Packets between two looks at the receive buffers posted (rx_arm). */
#define VPRI_NIC_LOOK_EVERY 16

/*
 * One queue's current element: popped from the ring and not yet pushed
 * back.  A fault on its buffers leaves it here; the retry picks it up.
 */
typedef struct VpriNicSlot {
    bool busy;
    VirtqElem *elem;
    /* rx: the next avail position whose buffer was not reported yet */
    uint16_t armed;
    uint16_t packets_since_look;
} VpriNicSlot;

typedef struct VpriNicTx {
    VpriNicSlot slot;
    uint8_t *buf;
    /* The peer's queue is full: wait for the sent callback. */
    bool waiting;
} VpriNicTx;

struct VpriNic {
    VpriVirtioPCI parent_obj;

    NICConf conf;
    NICState *nic;
    uint16_t queues_prop;
    uint16_t queue_size;
    char *rx_policy_str;
    VpriNicRxPolicy rx_policy;

    uint16_t max_pairs;
    uint16_t nic_queues;        /* net clients: the netdev's queues */
    uint16_t curr_pairs;
    uint16_t status;            /* config status: LINK_UP */
    VpriNicSlot *rx;            /* per pair */
    VpriNicTx *tx;              /* per pair */
    VpriNicSlot ctrl;
    VirtqElem *peek;            /* scratch for the receive look-ahead */

    /* statistics (query-vpri) */
    uint64_t rx_packets;
    uint64_t tx_packets;
    uint64_t rx_dropped_on_fault;
    uint64_t rx_held;
    uint64_t rx_dropped_other;  /* no room, oversize, device not ready */
    uint64_t tx_stalls;
    uint64_t tx_errors;
    uint64_t *queue_faults;     /* per virtqueue */
};

/* Queue layout: rx0, tx0, rx1, tx1, ..., then the control queue. */
static inline uint16_t vpri_nic_rxq(uint16_t pair)
{
    return 2 * pair;
}

static inline uint16_t vpri_nic_txq(uint16_t pair)
{
    return 2 * pair + 1;
}

static inline uint16_t vpri_nic_ctrl_index(VpriNic *s)
{
    VpriVirtioPCI *vp = VPRI_VIRTIO_PCI(s);

    /* Without MQ the driver knows one pair, so the control queue is 2. */
    return vpri_virtio_pci_has_feature(vp, VIRTIO_NET_F_MQ) ?
           2 * s->max_pairs : 2;
}

/* vpri-nic-migration.c */
extern const VMStateDescription vmstate_vpri_nic;
void vpri_nic_restart(VpriVirtioPCI *vp);

#endif
