#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# blk-cycle: O_DIRECT reads at random disk offsets into a pool of buffers
# that the requests take in turn (the randio tool), so the device's DMA
# cycles over the whole pool and the CPU never touches it after setting it
# up.  That is the reuse pattern of a page cache larger than a pin budget:
# every page comes back, after a long distance (docs/vpri-adp.rst).
#
# Parameters (kernel command line):
#   iolab.blk_dev=PATH       device (default /dev/vda)
#   iolab.blk_wait=SEC       how long to wait for it (default 10)
#   iolab.cycle_seconds=N    how long to read (default 20)
#   iolab.cycle_pool_mib=N   size of the buffer pool (default 48)
#   iolab.cycle_bs=BYTES     request size (default 65536)
#   iolab.cycle_span_mib=N   MiB of the device the offsets cover (default 32)
#   iolab.cycle_iops=N       requests per second, 0 for as fast as it goes
#                            (default 256: 16 MiB/s with 64 KiB requests, a
#                            48 MiB pool comes back every 3 s)
#
# Results: dev= pool_mib= bs= pace_iops= ops= seconds= iops= mibps= errors=
. /lib/iolab.sh

dev=$(iolab_param blk_dev /dev/vda)
wait_s=$(iolab_param blk_wait 10)
secs=$(iolab_param cycle_seconds 20)
pool=$(iolab_param cycle_pool_mib 48)
bs=$(iolab_param cycle_bs 65536)
span=$(iolab_param cycle_span_mib 32)
iops=$(iolab_param cycle_iops 256)

iolab_wait_disk "$dev" "$wait_s" || exit 1
iolab_need randio || exit 1

rc=0
out=$(randio "$dev" read "$secs" "$span" "$bs" "$pool" "$iops") || rc=1
iolab_result dev="$dev" pool_mib="$pool" bs="$bs" pace_iops="$iops" $out
[ "$rc" = 0 ]
