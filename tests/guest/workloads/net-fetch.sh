#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# net-fetch: bring up eth0 and fetch a blob over HTTP from the host (QEMU
# user networking: guest 10.0.2.15, host 10.0.2.2), then check its sha256.
#
# Parameters (kernel command line):
#   iolab.http_port=N        port on the host (required)
#   iolab.http_host=ADDR     host address (default 10.0.2.2)
#   iolab.http_path=PATH     URL path (default /blob)
#   iolab.http_sha256=HEX    expected sha256 (optional; without it match=unknown)
#   iolab.net_if=IF          interface (default eth0)
#   iolab.net_mode=dhcp|static  (default dhcp, falling back to static)
#   iolab.net_wait=SEC       how long to wait for the interface (default 10)
#   iolab.http_tries=N       attempts at the fetch (default 1): a NIC that
#                            drops packets can lose the connection set-up
#
# Results: if= mode= ip= bytes= seconds= mibps= sha256= match=yes|no|unknown
#          tries= retrans= (TCP segments the guest retransmitted during the fetch,
#          from /proc/net/snmp RetransSegs) insegs= (TCP segments received)
#          ofo= (segments that arrived out of order, TcpExt TCPOFOQueue:
#          the receiver's view of a segment lost and sent again)
. /lib/iolab.sh

ifc=$(iolab_param net_if eth0)
mode=$(iolab_param net_mode dhcp)
host=$(iolab_param http_host 10.0.2.2)
port=$(iolab_param http_port "")
path=$(iolab_param http_path /blob)
want=$(iolab_param http_sha256 "")
wait_s=$(iolab_param net_wait 10)
tries=$(iolab_param http_tries 1)

if [ -z "$port" ]; then
    iolab_result error=no-http-port
    exit 2
fi
if ! iolab_wait_for "/sys/class/net/$ifc" "$wait_s"; then
    iolab_result error=no-interface if="$ifc" net="$(ls /sys/class/net | tr '\n' ',')"
    exit 1
fi

ip link set "$ifc" up
used=static
if [ "$mode" = dhcp ]; then
    if udhcpc -i "$ifc" -n -q -f -t 5 -T 1 -s /usr/share/udhcpc/default.script \
        >/tmp/udhcpc.log 2>&1; then
        used=dhcp
    else
        iolab_log "udhcpc failed, using static config: $(tail -n 1 /tmp/udhcpc.log)"
    fi
fi
if [ "$used" = static ]; then
    ip addr add 10.0.2.15/24 dev "$ifc" 2>/dev/null
    ip route add default via 10.0.2.2 dev "$ifc" 2>/dev/null
fi
addr=$(ip -4 -o addr show dev "$ifc" | awk '{ print $4; exit }')
iolab_log "if=$ifc mode=$used addr=$addr"

out=/tmp/net-fetch.blob
url="http://$host:$port$path"
iolab_fetch_counted "$url" "$out" "$tries"
rc=$fetch_rc try=$fetch_try t0=$fetch_t0 t1=$fetch_t1
retrans=$fetch_retrans insegs=$fetch_insegs ofo=$fetch_ofo
if [ "$rc" != 0 ]; then
    iolab_result if="$ifc" mode="$used" ip="$addr" error=fetch-failed url="$url" \
        reason="$(head -n 1 /tmp/wget.err | tr ' =' '_:')"
    exit 1
fi

bytes=$(wc -c < "$out")
secs=$(iolab_elapsed "$t0" "$t1")
got=$(iolab_sum "$out")
rm -f "$out"
if [ -z "$want" ]; then
    match=unknown
elif [ "$got" = "$want" ]; then
    match=yes
else
    match=no
fi
iolab_result if="$ifc" mode="$used" ip="$addr" url="$url" bytes="$bytes" \
    seconds="$secs" mibps="$(iolab_mibps "$bytes" "$secs")" sha256="$got" match="$match" \
    retrans="$retrans" insegs="$insegs" ofo="$ofo" tries="$try"
[ "$match" != no ]
