#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# hello: trivial workload, used by run-guest to probe an accelerator and as
# a smoke test.  Reports the kernel version, uptime and visible devices.
. /lib/iolab.sh

up=$(cut -d' ' -f1 /proc/uptime)
blk=$(ls /sys/block 2>/dev/null | tr '\n' ',' | sed 's/,$//')
net=$(ls /sys/class/net 2>/dev/null | tr '\n' ',' | sed 's/,$//')
mods=$(wc -l < /proc/modules)
iolab_result kernel="$(uname -r)" uptime="$up" modules="$mods" block="${blk:-none}" net="${net:-none}"
exit 0
