#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# blk-checksum: write pseudo-random data to the first virtio disk, read it
# back and compare checksums.
#
# Parameters (kernel command line):
#   iolab.blk_dev=PATH     device (default /dev/vda)
#   iolab.blk_mib=N        MiB per round (default 16)
#   iolab.blk_rounds=N     rounds, each with fresh random data (default 1)
#   iolab.blk_wait=SEC     how long to wait for the device (default 10)
#
# Results: one line per round (round=N ...), then a summary line:
#   dev= direct=yes|no rounds= bytes= mismatches= match=yes|no
#   write_s= read_s= write_mibps= read_mibps=   (totals / averages)
. /lib/iolab.sh

dev=$(iolab_param blk_dev /dev/vda)
mib=$(iolab_param blk_mib 16)
rounds=$(iolab_param blk_rounds 1)
wait_s=$(iolab_param blk_wait 10)

case "$mib$rounds" in
*[!0-9]*) iolab_result error=bad-parameter blk_mib="$mib" blk_rounds="$rounds"; exit 2 ;;
esac

iolab_wait_disk "$dev" "$wait_s" || exit 1

bytes=$((mib * 1048576))
size=$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)
if [ "$size" -lt "$bytes" ]; then
    iolab_result error=disk-too-small dev="$dev" size="$size" need="$bytes"
    exit 1
fi
iolab_log "dev=$dev size=$size mib=$mib rounds=$rounds"

# O_DIRECT if dd (and the device) support it; otherwise flush and drop the
# page cache before reading back.
direct=no
if dd if=/dev/zero of="$dev" bs=4096 count=1 oflag=direct conv=notrunc 2>/dev/null; then
    direct=yes
fi

src=/tmp/blk-checksum.src
dst=/tmp/blk-checksum.dst
mismatches=0
errors=0
t_write=0
t_read=0
r=1
while [ "$r" -le "$rounds" ]; do
    if ! dd if=/dev/urandom of="$src" bs=1M count="$mib" iflag=fullblock 2>/dev/null; then
        iolab_log "could not create random data"
        errors=$((errors + 1))
        break
    fi
    sum_src=$(iolab_sum "$src")

    t0=$(iolab_now_us)
    if [ "$direct" = yes ]; then
        dd if="$src" of="$dev" bs=1M count="$mib" oflag=direct conv=fsync,notrunc 2>/tmp/dd.err
    else
        dd if="$src" of="$dev" bs=1M count="$mib" conv=fsync,notrunc 2>/tmp/dd.err
    fi
    wrc=$?
    sync
    t1=$(iolab_now_us)
    [ "$wrc" = 0 ] || { iolab_log "write failed: $(cat /tmp/dd.err)"; errors=$((errors + 1)); }

    if [ "$direct" = yes ]; then
        dd if="$dev" of="$dst" bs=1M count="$mib" iflag=direct 2>/tmp/dd.err
    else
        echo 3 > /proc/sys/vm/drop_caches
        dd if="$dev" of="$dst" bs=1M count="$mib" 2>/tmp/dd.err
    fi
    rrc=$?
    t2=$(iolab_now_us)
    [ "$rrc" = 0 ] || { iolab_log "read failed: $(cat /tmp/dd.err)"; errors=$((errors + 1)); }

    sum_dst=$(iolab_sum "$dst")
    ws=$(iolab_elapsed "$t0" "$t1")
    rs=$(iolab_elapsed "$t1" "$t2")
    t_write=$((t_write + t1 - t0))
    t_read=$((t_read + t2 - t1))
    if [ "$sum_src" = "$sum_dst" ]; then
        match=yes
    else
        match=no
        mismatches=$((mismatches + 1))
        iolab_log "round $r mismatch: $(cmp "$src" "$dst" 2>&1 | head -n 1)"
    fi
    iolab_result round="$r" bytes="$bytes" match="$match" sha256="$sum_src" \
        write_s="$ws" read_s="$rs" \
        write_mibps="$(iolab_mibps "$bytes" "$ws")" read_mibps="$(iolab_mibps "$bytes" "$rs")"
    rm -f "$dst"
    r=$((r + 1))
done
rm -f "$src" "$dst"

done_rounds=$((r - 1))
total=$((bytes * done_rounds))
tws=$(awk -v t="$t_write" 'BEGIN { printf "%.3f\n", t / 1000000 }')
trs=$(awk -v t="$t_read" 'BEGIN { printf "%.3f\n", t / 1000000 }')
if [ "$mismatches" = 0 ] && [ "$errors" = 0 ] && [ "$done_rounds" = "$rounds" ]; then
    match=yes
else
    match=no
fi
iolab_result dev="$dev" direct="$direct" rounds="$done_rounds" bytes="$total" \
    mismatches="$mismatches" errors="$errors" match="$match" \
    write_s="$tws" read_s="$trs" \
    write_mibps="$(iolab_mibps "$total" "$tws")" read_mibps="$(iolab_mibps "$total" "$trs")"
[ "$match" = yes ]
