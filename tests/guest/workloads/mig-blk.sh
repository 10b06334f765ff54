#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mig-blk: checksummed block I/O across a live migration (the migio tool),
# for scripts/migrate-experiment.  Writes stamped blocks at random offsets
# and reads written ones back, checking each, until the host sends 'q' on
# the control tty (after the migration) or the time runs out; then checks
# every block written once more.
#
# Parameters (kernel command line):
#   iolab.blk_dev=PATH        device (default /dev/vda)
#   iolab.blk_wait=SEC        how long to wait for it (default 10)
#   iolab.mig_span_mib=N      MiB of the device the offsets cover (default 16)
#   iolab.mig_bs=BYTES        block size (default 4096)
#   iolab.mig_rate=N          operations per second, 0 = unpaced (default 200)
#   iolab.mig_max_s=SEC       stop after this long at the latest (default 120)
#   iolab.mig_ctl=PATH        control tty (default /dev/ttyS1; '-' for none)
#   iolab.mig_pool_mib=N      reads land in a pool of N MiB (scattered order)
#                             written before the I/O starts (default 0:
#                             one buffer); see migio -p
#
# Logs "IOLAB-LOG mig-blk started" when the I/O begins (the host times the
# migration from it).  Results: ops errors retries mismatches verified
# seconds max_stall_us p50_us p99_us blocks_written dev.
. /lib/iolab.sh

dev=$(iolab_param blk_dev /dev/vda)
wait_s=$(iolab_param blk_wait 10)
span=$(iolab_param mig_span_mib 16)
bs=$(iolab_param mig_bs 4096)
rate=$(iolab_param mig_rate 200)
max_s=$(iolab_param mig_max_s 120)
ctl=$(iolab_param mig_ctl /dev/ttyS1)
pool=$(iolab_param mig_pool_mib 0)
[ "$ctl" = - ] && ctl=

iolab_wait_disk "$dev" "$wait_s" || exit 1
iolab_need migio || exit 1

iolab_log started
pool_opt=
[ "$pool" != 0 ] && pool_opt="-p $pool"
out=$(migio blk $pool_opt "$dev" "$span" "$bs" "$rate" "$max_s" $ctl)
rc=$?
iolab_result $out dev="$dev"
[ "$rc" = 0 ]
