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
#   iolab.mig_dirty_mib=N     also keep N MiB of guest RAM dirty and check it
#                             after the run (migio -d; default 0: off)
#   iolab.mig_dirty_rate=N    ... rewriting it at N MiB/s (default 0: as
#                             fast as it goes)
#   iolab.mig_pool_mib=N      reads land in a pool of N MiB (scattered order)
#                             written before the I/O starts (default 0:
#                             one buffer); see migio -p
#
# Logs "IOLAB-LOG mig-blk started" when the I/O begins (the host times the
# migration from it).  Results: ops errors retries mismatches verified
# seconds max_stall_us p50_us p99_us blocks_written dev; with mig_dirty_mib also
# dirty_mib dirty_passes dirty_mibps ram_mismatches.
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
dirty_mib=$(iolab_param mig_dirty_mib 0)
dirty_rate=$(iolab_param mig_dirty_rate 0)
dirty=
[ "$dirty_mib" != 0 ] && dirty="-d $dirty_mib -r $dirty_rate"

iolab_wait_disk "$dev" "$wait_s" || exit 1
iolab_need migio || exit 1

iolab_log started
pool_opt=
[ "$pool" != 0 ] && pool_opt="-p $pool"
out=$(migio $dirty blk $pool_opt "$dev" "$span" "$bs" "$rate" "$max_s" $ctl)
rc=$?
iolab_result $out dev="$dev"
[ "$rc" = 0 ]
