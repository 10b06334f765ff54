#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# net-pair: two guests on one link (two QEMU processes joined by a stream or
# socket netdev), one serving a blob over HTTP, the other fetching it.  No
# DHCP, no router: both get static addresses on one /24.
#
# The server generates the blob itself (tools/patgen: splitmix64 from a
# seed, incompressible), reports its sha256, serves it with busybox httpd
# and waits until the client says it is done (a line on a second TCP
# port), then reports its own TCP counters: the sender's RetransSegs are
# the segments the client's NIC lost.  The client waits for the server,
# fetches the blob with busybox wget, reports its sha256 (the host compares
# the two) and tells the server it is done.
#
# Parameters (kernel command line):
#   iolab.pair_role=server|client  (required)
#   iolab.pair_ip=ADDR       this guest's address (server 10.0.3.1, client 10.0.3.2)
#   iolab.pair_peer=ADDR     the server's address, for the client (default 10.0.3.1)
#   iolab.pair_mib=N         blob size in MiB (default 32)
#   iolab.pair_seed=N        patgen seed (default 1)
#   iolab.pair_port=N        HTTP port (default 80)
#   iolab.pair_done_port=N   port of the "done" line (default 9000)
#   iolab.pair_wait=SEC      client: how long to wait for the server to
#                            serve; server: how long to wait for "done"
#                            (default 240)
#   iolab.http_tries=N       client: attempts at the fetch (default 1)
#   iolab.net_if=IF / iolab.net_wait=SEC  (default eth0, 10)
#
# Results (one summary line per role):
#   server: role bytes sha256 gen_seconds, then after "done":
#           retrans outsegs (TCP RetransSegs/OutSegs while serving)
#           client= (what the client said: ok or fail)
#   client: role url bytes seconds mibps sha256 retrans insegs ofo tries
# The client also logs "fetching URL" just before the fetch starts, so the
# host can time its memory pressure.
. /lib/iolab.sh

role=$(iolab_param pair_role "")
ifc=$(iolab_param net_if eth0)
wait_if=$(iolab_param net_wait 10)
mib=$(iolab_param pair_mib 32)
seed=$(iolab_param pair_seed 1)
port=$(iolab_param pair_port 80)
done_port=$(iolab_param pair_done_port 9000)
pair_wait=$(iolab_param pair_wait 240)
peer=$(iolab_param pair_peer 10.0.3.1)
case $role in
server) ip=$(iolab_param pair_ip 10.0.3.1) ;;
client) ip=$(iolab_param pair_ip 10.0.3.2) ;;
*) iolab_result error=bad-role role="$role"; exit 2 ;;
esac

if ! iolab_wait_for "/sys/class/net/$ifc" "$wait_if"; then
    iolab_result error=no-interface if="$ifc" net="$(ls /sys/class/net | tr '\n' ',')"
    exit 1
fi
ip link set "$ifc" up
ip addr add "$ip/24" dev "$ifc" || { iolab_result error=ip-addr ip="$ip"; exit 1; }
iolab_log "role=$role if=$ifc ip=$ip"

serve() {
    mkdir -p /tmp/www
    t0=$(iolab_now_us)
    if ! patgen "$seed" $((mib << 20)) > /tmp/www/blob; then
        iolab_result role=server error=patgen
        return 1
    fi
    sum=$(iolab_sum /tmp/www/blob)
    gen=$(iolab_elapsed "$t0")
    echo ready > /tmp/www/ready
    retrans0=$(iolab_tcp_counter RetransSegs)
    out0=$(iolab_tcp_counter OutSegs)
    httpd -f -p "$port" -h /tmp/www &
    httpd_pid=$!
    iolab_result role=server bytes="$(wc -c < /tmp/www/blob)" sha256="$sum" \
        gen_seconds="$gen"
    iolab_log "serving on $ip:$port, waiting up to ${pair_wait}s for done on :$done_port"
    timeout "$pair_wait" nc -l -p "$done_port" > /tmp/done 2>/dev/null
    rc=$?
    kill "$httpd_pid" 2>/dev/null
    msg=$(head -n 1 /tmp/done)
    retrans=$(( $(iolab_tcp_counter RetransSegs) - retrans0 ))
    outsegs=$(( $(iolab_tcp_counter OutSegs) - out0 ))
    if [ "$rc" != 0 ] || [ -z "$msg" ]; then
        iolab_result role=server error=no-done rc="$rc" retrans="$retrans" \
            outsegs="$outsegs"
        return 1
    fi
    iolab_result role=server retrans="$retrans" outsegs="$outsegs" \
        client="${msg#done }"
    return 0
}

# wait_server: until the server answers a ping and serves /ready, at most
# pair_wait seconds (it generates the blob before it serves).
wait_server() {
    t_end=$(( $(cut -d. -f1 /proc/uptime) + pair_wait ))
    while ! ping -c 1 -W 1 "$peer" > /tmp/ping.out 2>&1; do
        if [ "$(cut -d. -f1 /proc/uptime)" -ge "$t_end" ]; then
            iolab_log "no ping reply from $peer: $(tail -n 1 /tmp/ping.out)"
            return 1
        fi
    done
    # (busybox 1.35 wget -T crashes: bound it with timeout instead)
    while ! timeout 10 wget -q -O /tmp/ready "http://$peer:$port/ready" 2>/tmp/wget.err; do
        if [ "$(cut -d. -f1 /proc/uptime)" -ge "$t_end" ]; then
            iolab_log "no /ready from $peer:$port: $(head -n 1 /tmp/wget.err)"
            return 1
        fi
        sleep 1
    done
    return 0
}

# say_done TEXT: tell the server (a few attempts: the line crosses the
# same faulting NIC).
say_done() {
    for _i in 1 2 3 4 5; do
        echo "done $1" | timeout 20 nc "$peer" "$done_port" 2>/dev/null && return 0
        sleep 1
    done
    iolab_log "could not tell the server that the client is done"
    return 1
}

fetch() {
    tries=$(iolab_param http_tries 1)
    url="http://$peer:$port/blob"
    out=/tmp/net-pair.blob
    if ! wait_server; then
        iolab_result role=client error=no-server peer="$peer" wait="$pair_wait"
        return 1
    fi
    iolab_log "fetching $url"
    iolab_fetch_counted "$url" "$out" "$tries"
    rc=$fetch_rc try=$fetch_try t0=$fetch_t0 t1=$fetch_t1
    retrans=$fetch_retrans insegs=$fetch_insegs ofo=$fetch_ofo
    if [ "$rc" != 0 ]; then
        iolab_result role=client error=fetch-failed url="$url" tries="$try" \
            reason="$(head -n 1 /tmp/wget.err | tr ' =' '_:')"
        say_done fail
        return 1
    fi
    bytes=$(wc -c < "$out")
    secs=$(iolab_elapsed "$t0" "$t1")
    sum=$(iolab_sum "$out")
    rm -f "$out"
    iolab_result role=client url="$url" bytes="$bytes" seconds="$secs" \
        mibps="$(iolab_mibps "$bytes" "$secs")" sha256="$sum" \
        retrans="$retrans" insegs="$insegs" ofo="$ofo" tries="$try"
    say_done ok
}

if [ "$role" = server ]; then
    serve
else
    fetch
fi
