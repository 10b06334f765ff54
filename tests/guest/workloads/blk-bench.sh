#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# blk-bench: raw sequential throughput of the first virtio disk with
# O_DIRECT dd (no page cache, one request per dd block), for comparing
# disk models.  Nothing is checked but that dd succeeded: data
# integrity is blk-checksum's job.
#
# Passes, in this order (each timed on its own):
#   write64k  bench_mib MiB from /dev/zero, bs=64k, oflag=direct
#   read64k   the same range back to /dev/null, bs=64k, iflag=direct
#   write4k   bench_small_mib MiB, bs=4k, oflag=direct
#   read4k    the same range back, bs=4k, iflag=direct
#
# Parameters (kernel command line):
#   iolab.blk_dev=PATH           device (default /dev/vda)
#   iolab.blk_wait=SEC           how long to wait for it (default 10)
#   iolab.bench_mib=N            MiB of the 64 KiB passes (default 64)
#   iolab.bench_small_mib=N      MiB of the 4 KiB passes (default 8)
#   iolab.bench_passes=LIST      comma-separated subset of the passes above
#
# Results: one line per pass (pass=NAME bs= bytes= seconds= mibps= iops=),
# then a summary line with <pass>_mibps and <pass>_iops for every pass,
# dev= and errors=.  Fails if O_DIRECT is unavailable or a dd fails.
. /lib/iolab.sh

dev=$(iolab_param blk_dev /dev/vda)
wait_s=$(iolab_param blk_wait 10)
mib=$(iolab_param bench_mib 64)
small=$(iolab_param bench_small_mib 8)
passes=$(iolab_param bench_passes write64k,read64k,write4k,read4k)

case "$mib$small" in
*[!0-9]*) iolab_result error=bad-parameter bench_mib="$mib" bench_small_mib="$small"; exit 2 ;;
esac

iolab_wait_disk "$dev" "$wait_s" || exit 1

need=$(( (mib > small ? mib : small) * 1048576 ))
size=$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)
if [ "$size" -lt "$need" ]; then
    iolab_result error=disk-too-small dev="$dev" size="$size" need="$need"
    exit 1
fi
if ! dd if=/dev/zero of="$dev" bs=4096 count=1 oflag=direct conv=notrunc 2>/dev/null; then
    iolab_result error=no-odirect dev="$dev"
    exit 1
fi
iolab_log "dev=$dev size=$size mib=$mib small_mib=$small passes=$passes"

errors=0
summary=
# run_pass NAME BS_BYTES MIB: one timed dd
run_pass() {
    _name=$1
    _bs=$2
    _bytes=$(($3 * 1048576))
    _count=$((_bytes / _bs))
    case "$_name" in
    write*) set -- if=/dev/zero of="$dev" oflag=direct conv=notrunc ;;
    read*)  set -- if="$dev" of=/dev/null iflag=direct ;;
    esac
    _t0=$(iolab_now_us)
    dd "$@" bs="$_bs" count="$_count" 2>/tmp/dd.err
    _rc=$?
    _t1=$(iolab_now_us)
    if [ "$_rc" != 0 ]; then
        iolab_log "$_name failed: $(cat /tmp/dd.err)"
        errors=$((errors + 1))
        return
    fi
    _s=$(iolab_elapsed "$_t0" "$_t1")
    _mibps=$(iolab_mibps "$_bytes" "$_s")
    _iops=$(awk -v n="$_count" -v s="$_s" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f\n", n / s }')
    iolab_result pass="$_name" bs="$_bs" bytes="$_bytes" seconds="$_s" \
        mibps="$_mibps" iops="$_iops"
    summary="$summary ${_name}_mibps=$_mibps ${_name}_iops=$_iops"
}

for p in $(echo "$passes" | tr ',' ' '); do
    case "$p" in
    write64k|read64k) run_pass "$p" 65536 "$mib" ;;
    write4k|read4k)   run_pass "$p" 4096 "$small" ;;
    *) iolab_log "unknown pass $p"; errors=$((errors + 1)) ;;
    esac
done

# shellcheck disable=SC2086  # summary is a list of key=value words
iolab_result dev="$dev" errors="$errors" $summary
[ "$errors" = 0 ]
