#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# net-rr: request/response latency guest -> host through the NIC: small
# HTTP GETs, one at a time, each timed (a new TCP connection per request,
# so this is connect + request + response + close, plus starting wget).
# Run it after net-fetch, which brings the interface up.
#
# Parameters (kernel command line):
#   iolab.rr_port=N      port of the host's server (required)
#   iolab.rr_count=N     requests (default 100)
#   iolab.http_host=ADDR host address (default 10.0.2.2)
#
# Results: count= ok= p50_us= p99_us= max_us=
. /lib/iolab.sh

host=$(iolab_param http_host 10.0.2.2)
port=$(iolab_param rr_port "")
count=$(iolab_param rr_count 100)
if [ -z "$port" ]; then
    iolab_result error=no-rr-port
    exit 2
fi

: > /tmp/rr.us
i=0
ok=0
while [ "$i" -lt "$count" ]; do
    t0=$(iolab_now_us)
    if wget -q -O /dev/null "http://$host:$port/blob" 2>/dev/null; then
        t1=$(iolab_now_us)
        echo $((t1 - t0)) >> /tmp/rr.us
        ok=$((ok + 1))
    fi
    i=$((i + 1))
done
sort -n /tmp/rr.us > /tmp/rr.sorted
pick() {
    awk -v q="$1" -v n="$ok" 'NR == int((n - 1) * q) + 1 { print $1 }' /tmp/rr.sorted
}
iolab_result count="$count" ok="$ok" p50_us="$(pick 0.5)" \
    p99_us="$(pick 0.99)" max_us="$(pick 1)"
[ "$ok" = "$count" ]
