#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vdpa-bench: a virtio_vdpa instance of the vdpa-mgmt Linux driver against
# the stock virtio-pci device of the same kind, in the same guest, side by
# side (tests/vdpa-driver/bench; docs/benchmarks.md).  Needs the guest of
# scripts/build-vdpa-guest, a vdpa-mgmt function with a netdev and a blk
# node, a virtio-blk-pci disk (/dev/vda, probed at boot) and a
# virtio-net-pci interface with MAC 52:54:00:ee:00:01, both on the same
# kind of backend as the function's.
#
# Each repetition runs, alternately on the pci and the vdpa device:
#   blk  blk-bench (O_DIRECT dd, 64 KiB and 4 KiB passes)
#   net  one wget of the host's blob through that interface alone
#        (sha256 checked)
# Parameters: iolab.http_port, iolab.http_sha256 (run-guest --serve-file),
#   iolab.bench_reps=N (default 3); blk-bench's bench_mib, bench_small_mib.
# Results: per repetition and device; then, for every pass, the medians
#   pci_<pass>= vdpa_<pass>= (MiB/s) and ratio_<pass>= (vdpa / pci).
. /lib/iolab.sh

port=$(iolab_param http_port "")
want=$(iolab_param http_sha256 "")
reps=$(iolab_param bench_reps 3)
[ -n "$port" ] || { iolab_result error=no-http-port; exit 2; }
bdf=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1b36 ] && [ "$(cat "$d/device")" = 0x0120 ]; then
        bdf=${d##*/}
        break
    fi
done
[ -n "$bdf" ] || { iolab_result error=no-vdpa-mgmt-function; exit 1; }
insmod /lib/modules/extra/vdpa_mgmt.ko || { iolab_result error=insmod; exit 1; }

before=$(ls /sys/block | tr '\n' ' ')
vdpa dev add name vnet0 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:01 &&
vdpa dev add name vblk0 mgmtdev "vdpa-mgmt-blk.$bdf" || {
    iolab_result error=vdpa-dev-add
    exit 1
}
vdisk=$(for b in $(ls /sys/block); do
            case " $before " in *" $b "*) ;; *) echo "$b" ;; esac
        done | head -n 1)
netdev_of() {
    for c in /sys/class/net/*; do
        [ "$(cat "$c/address")" = "$1" ] && { echo "${c##*/}"; return 0; }
    done
    return 1
}
pci_if=$(netdev_of 52:54:00:ee:00:01)
vdpa_if=$(netdev_of 52:54:00:dd:00:01)
if [ -z "$vdisk" ] || [ -z "$pci_if" ] || [ -z "$vdpa_if" ]; then
    iolab_result error=missing-device vdisk="$vdisk" pci_if="$pci_if" vdpa_if="$vdpa_if"
    exit 1
fi
iolab_log "pci: /dev/vda $pci_if; vdpa: /dev/$vdisk $vdpa_if"

: > /tmp/samples    # lines: KIND PASS MIBPS
errors=0

blk_run() {     # blk_run KIND DEV
    # blk-bench reads its device from the parameters; the last one wins.
    echo "blk_dev=$2" >> "$IOLAB_PARAMS"
    IOLAB_NAME=blk-bench-$1 sh /workloads/blk-bench.sh > /tmp/bb.out 2>&1 ||
        errors=$((errors + 1))
    cat /tmp/bb.out
    tr ' ' '\n' < /tmp/bb.out | sed -n 's/^\([a-z0-9]*\)_mibps=\(.*\)/\1 \2/p' |
        while read -r p v; do echo "$1 $p $v"; done >> /tmp/samples
}

net_run() {     # net_run KIND IF
    ip link set "$2" up
    ip addr add 10.0.2.15/24 dev "$2"
    ip route add default via 10.0.2.2 dev "$2"
    iolab_fetch_counted "http://10.0.2.2:$port/blob" /tmp/blob 3
    if [ "$fetch_rc" = 0 ] && [ "$(iolab_sum /tmp/blob)" = "$want" ]; then
        bytes=$(wc -c < /tmp/blob)
        m=$(iolab_mibps "$bytes" "$(iolab_elapsed "$fetch_t0" "$fetch_t1")")
        iolab_result kind="$1" pass=net mibps="$m"
        echo "$1 net $m" >> /tmp/samples
    else
        iolab_log "$1 net fetch failed: rc=$fetch_rc"
        errors=$((errors + 1))
    fi
    rm -f /tmp/blob
    ip addr flush dev "$2"
    ip link set "$2" down
}

r=1
while [ "$r" -le "$reps" ]; do
    # Alternate which device goes first, so drift hits both alike.
    if [ $((r % 2)) = 1 ]; then order="pci vdpa"; else order="vdpa pci"; fi
    for k in $order; do
        if [ "$k" = pci ]; then blk_run pci /dev/vda; else blk_run vdpa "/dev/$vdisk"; fi
    done
    for k in $order; do
        if [ "$k" = pci ]; then net_run pci "$pci_if"; else net_run vdpa "$vdpa_if"; fi
    done
    r=$((r + 1))
done

median() {  # median KIND PASS
    awk -v k="$1" -v p="$2" '$1 == k && $2 == p { print $3 }' /tmp/samples | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "none";
             else if (NR % 2) print v[(NR + 1) / 2];
             else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
summary=
for p in write64k read64k write4k read4k net; do
    a=$(median pci "$p")
    b=$(median vdpa "$p")
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b != "none") printf "%.3f", b / a; else print "none" }')
    summary="$summary pci_$p=$a vdpa_$p=$b ratio_$p=$ratio"
done
vdpa dev del vnet0
vdpa dev del vblk0
# shellcheck disable=SC2086
iolab_result reps="$reps" errors="$errors" $summary
[ "$errors" = 0 ]
