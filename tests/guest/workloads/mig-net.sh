#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mig-net: checksummed HTTP requests to the host across a live migration
# (the migio tool), for scripts/migrate-experiment.  Brings the interface
# up like net-fetch, then GETs /pattern?BYTES from the host's server and
# checks every byte, retrying a request the switch-over broke, until the
# host sends 'q' on the control tty or the time runs out.
#
# Parameters (kernel command line):
#   iolab.http_port=N         the host's pattern server (required)
#   iolab.http_host=ADDR      default 10.0.2.2
#   iolab.net_if=IF / iolab.net_wait=SEC    default eth0, 10
#   iolab.mig_bytes=N         body size per request (default 65536)
#   iolab.mig_rate=N          requests per second, 0 = unpaced (default 20)
#   iolab.mig_max_s=SEC       stop after this long at the latest (default 120)
#   iolab.mig_ctl=PATH        control tty (default /dev/ttyS1; '-' for none)
#   iolab.mig_dirty_mib=N     also keep N MiB of guest RAM dirty and check it
#                             after the run (migio -d; default 0: off)
#   iolab.mig_dirty_rate=N    ... rewriting it at N MiB/s (default 0: as
#                             fast as it goes)
#
# Logs "IOLAB-LOG mig-net started" when the requests begin.  Results: ops
# errors retries mismatches verified seconds max_stall_us p50_us p99_us
# bytes if; with mig_dirty_mib also dirty_mib dirty_passes dirty_mibps
# ram_mismatches.
. /lib/iolab.sh

host=$(iolab_param http_host 10.0.2.2)
port=$(iolab_param http_port "")
ifc=$(iolab_param net_if eth0)
wait_s=$(iolab_param net_wait 10)
bytes=$(iolab_param mig_bytes 65536)
rate=$(iolab_param mig_rate 20)
max_s=$(iolab_param mig_max_s 120)
ctl=$(iolab_param mig_ctl /dev/ttyS1)
[ "$ctl" = - ] && ctl=
dirty_mib=$(iolab_param mig_dirty_mib 0)
dirty_rate=$(iolab_param mig_dirty_rate 0)
dirty=
[ "$dirty_mib" != 0 ] && dirty="-d $dirty_mib -r $dirty_rate"
if [ -z "$port" ]; then
    iolab_result error=no-http-port
    exit 2
fi
iolab_need migio || exit 1
iolab_wait_for "/sys/class/net/$ifc" "$wait_s" || {
    iolab_result error=no-interface if="$ifc"
    exit 1
}
ip link set "$ifc" up
ip addr add 10.0.2.15/24 dev "$ifc" 2>/dev/null
ip route add default via 10.0.2.2 2>/dev/null

iolab_log started
out=$(migio $dirty net "$host" "$port" "$bytes" "$rate" "$max_s" $ctl)
rc=$?
iolab_result $out if="$ifc"
[ "$rc" = 0 ]
