#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vdpa-driver: the vdpa-mgmt Linux driver (drivers/linux/vdpa-mgmt) under
# the standard tools only: iproute2's vdpa, virtio_vdpa, virtio_net and
# virtio_blk.  Needs the guest of scripts/build-vdpa-guest (trixie kernel,
# /lib/modules/extra/vdpa_mgmt.ko, /usr/sbin/vdpa) and a vdpa-mgmt function
# with a netdev (QEMU user networking: host 10.0.2.2), one blk node and
# max-instances=4.
#
#  1. insmod; `vdpa mgmtdev show` lists pci/<bdf> (net) and
#     vdpa-mgmt-blk.<bdf> (blk)
#  2. `vdpa dev add`: vnet0, vnet1 (net, own MACs), vblk0 (blk); `vdpa dev
#     config show vnet0` shows its MAC and the link up (config space)
#  3. each is bound to virtio_vdpa
#  4. through each net interface in turn (found by its MAC), wget a blob
#     from the host's HTTP server and compare its sha256
#  5. write checksummed data to the blk instance's disk, drop the caches,
#     read it back and compare
#  6. bad input: a duplicate name, a multicast MAC, an MTU the function does
#     not have, a fifth instance (max-instances=4): each refused, with the
#     tool's message
#  7. `vdpa dev del` of an instance while a transfer runs on it, then of
#     all the others; no vdpa device left; then rmmod with two live
#     instances (bound) removes them too
#  7b. a device error (bus mastering cleared under a running instance, so
#     the admin queue goes FATAL): EIO at once, then ENODEV; del and rmmod
#     finish within 5 s
#  8. no kernel warning, oops or BUG in dmesg
#
# Parameters: iolab.http_port=N (required), iolab.http_sha256=HEX,
#   iolab.http_path=PATH (default /blob), iolab.blk_mib=N (default 8)
# Results: mgmtdev= devices= config= (vdpa dev config show: MAC, link up) bound= net0= net1= blk= dup= badmac= badmtu=
#   full= del_busy= deleted= rmmod= aqerr= kwarn= pasid= (the PASID the
#   instances were bound to, or none) (yes/no, or the tool's message
#   for the refusals), add_ms= (per instance), del_ms=
. /lib/iolab.sh

port=$(iolab_param http_port "")
want=$(iolab_param http_sha256 "")
path=$(iolab_param http_path /blob)
blk_mib=$(iolab_param blk_mib 8)
[ -n "$port" ] || { iolab_result error=no-http-port; exit 2; }
iolab_need vdpa || exit 1

# The tool's one-line error message, spaces as _ for the result line.
tool_msg() { head -n 1 "$1" | tr ' =' '_:'; }

bdf=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1b36 ] && [ "$(cat "$d/device")" = 0x0120 ]; then
        bdf=${d##*/}
        break
    fi
done
[ -n "$bdf" ] || { iolab_result error=no-vdpa-mgmt-function; exit 1; }

if ! insmod /lib/modules/extra/vdpa_mgmt.ko 2>/tmp/insmod.err; then
    iolab_result error=insmod reason="$(tool_msg /tmp/insmod.err)"
    exit 1
fi

# 1. management devices
# log_cmd CMD...: run CMD, its output to /tmp/out.txt and, line by line,
# to the log (a session docs/vdpa-mgmt.rst can show).
log_cmd() {
    "$@" > /tmp/out.txt 2>&1
    _rc=$?
    iolab_log "# $*"
    while IFS= read -r l; do iolab_log "$l"; done < /tmp/out.txt
    return $_rc
}
log_cmd vdpa mgmtdev show
cp /tmp/out.txt /tmp/mgmtdev.txt
if grep -q "^pci/$bdf:" /tmp/mgmtdev.txt &&
   grep -q "^vdpa-mgmt-blk.$bdf:" /tmp/mgmtdev.txt; then
    mgmtdev=yes
else
    mgmtdev=no
fi

# 2. instances, timed as the kernel saw them (vdpa dev add returns when
# the driver has created and registered the instance)
t0=$(iolab_now_us)
ok=yes
vdpa dev add name vnet0 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:01 mtu 1500 \
    2>/tmp/add.err || { ok=no; iolab_log "add vnet0: $(cat /tmp/add.err)"; }
vdpa dev add name vnet1 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:02 \
    2>/tmp/add.err || { ok=no; iolab_log "add vnet1: $(cat /tmp/add.err)"; }
disks_before=$(ls /sys/block | tr '\n' ' ')
vdpa dev add name vblk0 mgmtdev "vdpa-mgmt-blk.$bdf" \
    2>/tmp/add.err || { ok=no; iolab_log "add vblk0: $(cat /tmp/add.err)"; }
add_ms=$(awk -v s="$t0" -v e="$(iolab_now_us)" 'BEGIN { printf "%.1f", (e - s) / 3000 }')
disks_after=$(ls /sys/block | tr '\n' ' ')
log_cmd vdpa dev show
cp /tmp/out.txt /tmp/devs.txt
# The config space as the vdpa core reads it through get_config.
log_cmd vdpa dev config show vnet0
if grep -q 'mac 52:54:00:dd:00:01 link up' /tmp/out.txt; then
    config=yes
else
    config=no
fi
log_cmd vdpa dev config show vblk0
devices=$ok
for n in vnet0 vnet1 vblk0; do
    grep -q "^$n:" /tmp/devs.txt || devices=no
done

# 3. bound to virtio_vdpa
bound=yes
for n in vnet0 vnet1 vblk0; do
    drv=$(readlink "/sys/bus/vdpa/devices/$n/driver" 2>/dev/null)
    [ "${drv##*/}" = virtio_vdpa ] || { bound=no; iolab_log "$n driver: ${drv:-none}"; }
done

# The interface with MAC $1.  (virtio_vdpa hangs its virtio devices
# under the DMA device, the PCI function, not under the vdpa device.)
netdev_of() {
    for c in /sys/class/net/*; do
        [ "$(cat "$c/address")" = "$1" ] && { echo "${c##*/}"; return 0; }
    done
    return 1
}

# 4. net: each interface alone carries a fetch from the host
net_fetch() {
    ifc=$(netdev_of "$1") || {
        iolab_log "no interface with $1: $(ls /sys/class/net | tr '\n' ' ')"
        echo no-interface
        return
    }
    ip link set "$ifc" up
    ip addr add 10.0.2.15/24 dev "$ifc"
    ip route add default via 10.0.2.2 dev "$ifc"
    rm -f /tmp/blob
    if iolab_fetch "http://10.0.2.2:$port$path" /tmp/blob 3 &&
       [ "$(iolab_sum /tmp/blob)" = "$want" ]; then
        echo yes
    else
        iolab_log "$ifc: fetch rc=$fetch_rc $(head -n 1 /tmp/wget.err)"
        echo no
    fi
    ip addr flush dev "$ifc"
    ip link set "$ifc" down
}
net0=$(net_fetch 52:54:00:dd:00:01)
net1=$(net_fetch 52:54:00:dd:00:02)

# 5. blk: write, drop the caches, read back
blk=no
disk=$(for b in $disks_after; do
          case " $disks_before " in *" $b "*) ;; *) echo "$b" ;; esac
      done | head -n 1)
if [ -n "$disk" ] && iolab_wait_for "/dev/$disk" 5; then
    head -c $((blk_mib * 1048576)) /dev/urandom > /tmp/blk.in
    if dd if=/tmp/blk.in of="/dev/$disk" bs=1M conv=fsync 2>/tmp/dd.err; then
        sync
        echo 3 > /proc/sys/vm/drop_caches
        dd if="/dev/$disk" of=/tmp/blk.out bs=1M count="$blk_mib" 2>>/tmp/dd.err
        [ "$(iolab_sum /tmp/blk.in)" = "$(iolab_sum /tmp/blk.out)" ] && blk=yes
    fi
    [ "$blk" = yes ] || iolab_log "blk /dev/$disk: $(tr '\n' ' ' < /tmp/dd.err)"
    rm -f /tmp/blk.in /tmp/blk.out
else
    iolab_log "no new disk after adding vblk0: $disks_after"
fi

# 6. bad input: each must fail, and say why
refused() {
    if vdpa dev add "$@" 2>/tmp/bad.err; then
        echo accepted
    else
        tool_msg /tmp/bad.err
    fi
}
dup=$(refused name vnet0 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:09)
badmac=$(refused name vbad mgmtdev "pci/$bdf" mac 01:00:5e:00:00:01)
badmtu=$(refused name vbad mgmtdev "pci/$bdf" mac 52:54:00:dd:00:09 mtu 9000)
# max-instances=4 with 3 alive: one more fits, the fifth does not
vdpa dev add name vblk1 mgmtdev "vdpa-mgmt-blk.$bdf" 2>/tmp/add.err ||
    iolab_log "add vblk1: $(cat /tmp/add.err)"
full=$(refused name vblk2 mgmtdev "vdpa-mgmt-blk.$bdf")
[ -e /sys/bus/vdpa/devices/vbad ] && badmac=left-behind

# 7. delete under traffic, then the rest
del_busy=no
if ifc=$(netdev_of 52:54:00:dd:00:01); then
    ip link set "$ifc" up
    ip addr add 10.0.2.15/24 dev "$ifc"
    ip route add default via 10.0.2.2 dev "$ifc"
    # Fetch in a loop, and delete only once 1 MiB more has arrived, so
    # the delete certainly meets a transfer in flight.
    rx0=$(cat "/sys/class/net/$ifc/statistics/rx_bytes")
    ( while :; do wget -q -O /dev/null "http://10.0.2.2:$port$path"; done ) 2>/dev/null &
    wpid=$!
    n=0
    while [ $(( $(cat "/sys/class/net/$ifc/statistics/rx_bytes" 2>/dev/null || echo 0) - rx0 )) -lt 1048576 ] &&
          [ "$n" -lt 100 ]; do
        usleep 100000
        n=$((n + 1))
    done
    if [ "$n" -lt 100 ]; then
        vdpa dev del vnet0 2>/tmp/del.err && del_busy=yes
        [ "$del_busy" = yes ] || iolab_log "del vnet0: $(cat /tmp/del.err)"
    else
        iolab_log "no traffic on $ifc to delete under"
        vdpa dev del vnet0
    fi
    kill "$wpid" 2>/dev/null
    wait "$wpid" 2>/dev/null
fi
t0=$(iolab_now_us)
for n in vnet1 vblk0 vblk1; do
    vdpa dev del "$n" 2>/tmp/del.err || iolab_log "del $n: $(cat /tmp/del.err)"
done
del_ms=$(awk -v s="$t0" -v e="$(iolab_now_us)" 'BEGIN { printf "%.1f", (e - s) / 3000 }')
left=$(ls /sys/bus/vdpa/devices | wc -l)
[ "$left" = 0 ] && deleted=yes || deleted="no-$left-left"
# Unloading with live instances (one bound to virtio_blk, one to
# virtio_net) deletes them: the driver's remove unregisters its management
# devices, which deletes their instances.
if ! { vdpa dev add name vnet0 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:01 &&
        vdpa dev add name vblk0 mgmtdev "vdpa-mgmt-blk.$bdf"; }; then
    rmmod_ok=re-add-failed
    rmmod vdpa_mgmt
elif rmmod vdpa_mgmt 2>/tmp/rmmod.err; then
    left=$(ls /sys/bus/vdpa/devices | wc -l)
    [ "$left" = 0 ] && rmmod_ok=yes || rmmod_ok="no-$left-left"
else
    rmmod_ok="$(tool_msg /tmp/rmmod.err)"
fi

# A device error: Bus Master Enable cleared behind the driver's back (in
# the function's config space, through sysfs) while a net instance runs,
# so the device's next admin ring access fails and it reports FATAL.  The
# next command must fail at once with EIO, then every later one with
# ENODEV (the driver gave the function up), and deleting the instance and
# unloading must still finish.  (BAR 0 cannot be written from user space:
# the kernel keeps a driver's claimed BARs from /dev/mem and sysfs.)
aqerr=no
if insmod /lib/modules/extra/vdpa_mgmt.ko &&
   vdpa dev add name vnet0 mgmtdev "pci/$bdf" mac 52:54:00:dd:00:01; then
    # Command register, low byte: memory space on, bus master off.
    printf '\002' | dd of="/sys/bus/pci/devices/$bdf/config" bs=1 seek=4 count=1 \
        conv=notrunc 2>/dev/null
    t0=$(iolab_now_us)
    first=$(refused name vblk9 mgmtdev "vdpa-mgmt-blk.$bdf")
    second=$(refused name vblk8 mgmtdev "vdpa-mgmt-blk.$bdf")
    vdpa dev del vnet0 && del=yes || del=no
    rmmod vdpa_mgmt && unload=yes || unload=no
    secs=$(iolab_elapsed "$t0")
    iolab_log "bus master cleared: add=$first then $second, del=$del rmmod=$unload in ${secs}s"
    if [ "$first" = kernel_answers:_Input/output_error ] &&
       [ "$second" = kernel_answers:_No_such_device ] &&
       [ "$del$unload" = yesyes ] &&
       awk -v s="$secs" 'BEGIN { exit !(s < 5) }'; then
        aqerr=yes
    fi
else
    iolab_log "admin queue error step: set-up failed"
fi

# The PASID the driver bound the instances to (a scalable-mode vIOMMU),
# else none.
pasid=$(dmesg | sed -n 's/.*instances DMA with PASID \([0-9]*\).*/\1/p' | head -n 1)

# 8. the kernel's view
if dmesg | grep -E -q 'WARNING:|BUG:|Oops|Call Trace|general protection'; then
    kwarn=yes
    dmesg | grep -E -A3 'WARNING:|BUG:|Oops|Call Trace' | head -n 20 |
        while read -r l; do iolab_log "dmesg: $l"; done
else
    kwarn=no
fi
dmesg | grep -i -E 'vdpa|virtio' | tail -n 30 | while read -r l; do iolab_log "dmesg: $l"; done

iolab_result mgmtdev=$mgmtdev devices=$devices config=$config bound=$bound net0=$net0 net1=$net1 \
    blk=$blk dup=$dup badmac=$badmac badmtu=$badmtu full=$full del_busy=$del_busy \
    deleted=$deleted rmmod=$rmmod_ok aqerr=$aqerr kwarn=$kwarn pasid=${pasid:-none} add_ms=$add_ms del_ms=$del_ms
[ "$mgmtdev$devices$config$bound$net0$net1$blk$del_busy$deleted$rmmod_ok$aqerr$kwarn" = \
  yesyesyesyesyesyesyesyesyesyesyesno ]
