# SPDX-License-Identifier: GPL-2.0-or-later
#
# iolab guest helper library (busybox ash).  Installed as /lib/iolab.sh in the
# guest initramfs; sourced by /init and by every workload script.
#
# Marker protocol on the serial console (one marker per line):
#   IOLAB-BEGIN <name>
#   IOLAB-RESULT <name> key=value [key=value ...]
#   IOLAB-LOG <name> free text           (diagnostics, ignored by parsers)
#   IOLAB-END <name> status=ok|fail [rc=N]
#   IOLAB-DONE
# See docs/guest.rst.

IOLAB_PARAMS=/run/iolab/params

# iolab_param NAME [DEFAULT]: value of iolab.NAME= from the kernel command
# line (last one wins), or DEFAULT.
iolab_param() {
    _v=
    if [ -f "$IOLAB_PARAMS" ]; then
        _v=$(sed -n "s/^$1=//p" "$IOLAB_PARAMS" | tail -n 1)
    fi
    if [ -n "$_v" ]; then
        echo "$_v"
    else
        echo "${2:-}"
    fi
}

# iolab_result key=value ...: emit a result line for the current workload.
iolab_result() {
    echo "IOLAB-RESULT ${IOLAB_NAME:-unknown} $*"
}

# iolab_log text...: human-readable diagnostics for the current workload.
iolab_log() {
    echo "IOLAB-LOG ${IOLAB_NAME:-unknown} $*"
}

# iolab_fail text...: log and return 1 (use as `iolab_fail "msg"; exit 1`).
iolab_fail() {
    echo "IOLAB-LOG ${IOLAB_NAME:-unknown} FAIL: $*"
    return 1
}

# iolab_now_us: monotonic-ish microsecond timestamp.
iolab_now_us() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        _t=$EPOCHREALTIME
        echo "${_t%.*}${_t#*.}"
    else
        awk '{ printf "%d\n", $1 * 1000000 }' /proc/uptime
    fi
}

# iolab_elapsed START_US [END_US]: seconds (3 decimals) between two stamps.
iolab_elapsed() {
    _end=${2:-$(iolab_now_us)}
    awk -v s="$1" -v e="$_end" 'BEGIN { printf "%.3f\n", (e - s) / 1000000 }'
}

# iolab_mibps BYTES SECONDS: throughput in MiB/s (2 decimals).
iolab_mibps() {
    awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.2f\n", b / 1048576 / s }'
}

# iolab_wait_for PATH SECONDS: wait until PATH exists (block device etc.).
iolab_wait_for() {
    _n=0
    _lim=$(( ${2:-5} * 10 ))
    while [ ! -e "$1" ]; do
        [ "$_n" -ge "$_lim" ] && return 1
        usleep 100000
        _n=$((_n + 1))
    done
    return 0
}

# iolab_wait_disk DEV SECONDS: iolab_wait_for a disk; if it never comes,
# report error=no-disk with the disks there are, and fail.
iolab_wait_disk() {
    iolab_wait_for "$1" "$2" && return 0
    iolab_result error=no-disk dev="$1" block="$(ls /sys/block | tr '\n' ',')"
    return 1
}

# iolab_need TOOL: fail, reporting error=no-TOOL, unless TOOL is on PATH.
iolab_need() {
    command -v "$1" >/dev/null && return 0
    iolab_result error=no-"$1"
    return 1
}

# iolab_sum FILE: sha256 of FILE (just the hex digest).
iolab_sum() {
    sha256sum "$1" | awk '{ print $1 }'
}

# iolab_tcp_counter NAME: one counter of the Tcp: lines of /proc/net/snmp
# (a header line of names, then a line of values), e.g. RetransSegs.
iolab_tcp_counter() {
    awk -v name="$1" '/^Tcp:/ {
        if (!col) { for (i = 2; i <= NF; i++) if ($i == name) col = i; next }
        print $col; exit }' /proc/net/snmp
}

# iolab_tcpext_counter NAME: the same for the TcpExt: lines of
# /proc/net/netstat (0 if absent), e.g. TCPOFOQueue.
iolab_tcpext_counter() {
    awk -v name="$1" '/^TcpExt:/ {
        if (!col) { for (i = 2; i <= NF; i++) if ($i == name) col = i; next }
        print col ? $col : 0; exit }' /proc/net/netstat
}

# iolab_fetch URL OUT TRIES: wget URL into OUT, up to TRIES attempts a
# second apart (a NIC that drops packets can lose a connection set-up).
# Sets fetch_rc (wget's last status) and fetch_try (attempts made); wget's
# messages of the last attempt are in /tmp/wget.err.  Returns fetch_rc.
iolab_fetch() {
    fetch_try=1
    while :; do
        wget -q -O "$2" "$1" 2>/tmp/wget.err
        fetch_rc=$?
        [ "$fetch_rc" = 0 ] || [ "$fetch_try" -ge "$3" ] && break
        iolab_log "fetch attempt $fetch_try failed: $(head -n 1 /tmp/wget.err)"
        fetch_try=$((fetch_try + 1))
        sleep 1
    done
    return "$fetch_rc"
}

# iolab_fetch_counted URL OUT TRIES: iolab_fetch, timed, with the TCP
# counters it moved.  Sets fetch_rc, fetch_try, fetch_t0 and fetch_t1
# (iolab_now_us), and fetch_retrans, fetch_insegs, fetch_ofo (RetransSegs,
# InSegs and TcpExt TCPOFOQueue during the fetch).
iolab_fetch_counted() {
    _retrans0=$(iolab_tcp_counter RetransSegs)
    _insegs0=$(iolab_tcp_counter InSegs)
    _ofo0=$(iolab_tcpext_counter TCPOFOQueue)
    fetch_t0=$(iolab_now_us)
    iolab_fetch "$1" "$2" "$3"
    fetch_t1=$(iolab_now_us)
    fetch_retrans=$(( $(iolab_tcp_counter RetransSegs) - _retrans0 ))
    fetch_insegs=$(( $(iolab_tcp_counter InSegs) - _insegs0 ))
    fetch_ofo=$(( $(iolab_tcpext_counter TCPOFOQueue) - _ofo0 ))
    return "$fetch_rc"
}
