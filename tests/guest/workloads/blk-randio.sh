#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# blk-randio: 4 KiB random read and write IOPS at queue depth 1 with
# O_DIRECT (the randio tool), for comparing disk models.
#
# Parameters (kernel command line):
#   iolab.blk_dev=PATH       device (default /dev/vda)
#   iolab.blk_wait=SEC       how long to wait for it (default 10)
#   iolab.randio_seconds=N   seconds per pass (default 5)
#   iolab.randio_span_mib=N  MiB of the device the offsets cover (default 64)
#
# Results: one line per pass (pass=randread|randwrite ops= iops= ...),
# then randread_iops= randwrite_iops= dev= errors=.
. /lib/iolab.sh

dev=$(iolab_param blk_dev /dev/vda)
wait_s=$(iolab_param blk_wait 10)
secs=$(iolab_param randio_seconds 5)
span=$(iolab_param randio_span_mib 64)

iolab_wait_disk "$dev" "$wait_s" || exit 1
iolab_need randio || exit 1

errors=0
summary=
for pass in randread randwrite; do
    mode=${pass#rand}
    if out=$(randio "$dev" "$mode" "$secs" "$span" 4096); then
        :
    else
        errors=$((errors + 1))
    fi
    iolab_result pass="$pass" $out
    iops=$(echo "$out" | sed -n 's/.*iops=\([0-9]*\).*/\1/p')
    summary="$summary ${pass}_iops=${iops:-0}"
done
iolab_result dev="$dev" errors="$errors" $summary
[ "$errors" = 0 ]
