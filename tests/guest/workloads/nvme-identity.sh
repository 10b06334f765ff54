#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# nvme-identity: what the guest's NVMe driver learned about controller 0
# and its first namespace, from sysfs.  Spaces in strings become '_' so
# that each value stays one result word.
#
# Parameters: iolab.nvme_wait=SEC (default 10)
# Results: model= serial= firmware= subnqn= cntlid= nsid= size_bytes=
#          lba_bytes= queues= namespaces= (block devices of controller 0)
. /lib/iolab.sh

wait_s=$(iolab_param nvme_wait 10)
c=/sys/class/nvme/nvme0
if ! iolab_wait_for /sys/block/nvme0n1 "$wait_s"; then
    iolab_result error=no-namespace nvme="$(ls /sys/class/nvme 2>/dev/null)"
    exit 1
fi

word() {
    # trim the space padding of Identify strings, join inner spaces
    sed 's/^ *//; s/ *$//; s/ /_/g' "$1" 2>/dev/null
}

sectors=$(cat /sys/block/nvme0n1/size)
lba=$(cat /sys/block/nvme0n1/queue/logical_block_size)
queues=$(ls -d /sys/block/nvme0n1/mq/* 2>/dev/null | wc -l)
nss=$(ls -d /sys/block/nvme0n* 2>/dev/null | wc -l)
iolab_result model="$(word $c/model)" serial="$(word $c/serial)" \
    firmware="$(word $c/firmware_rev)" subnqn="$(word $c/subsysnqn)" \
    cntlid="$(cat $c/cntlid 2>/dev/null)" \
    nsid="$(cat /sys/block/nvme0n1/nsid 2>/dev/null)" \
    size_bytes=$((sectors * 512)) lba_bytes="$lba" queues="$queues" \
    namespaces="$nss"
exit 0
