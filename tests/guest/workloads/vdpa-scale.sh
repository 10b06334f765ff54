#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vdpa-scale: how many vdpa-mgmt instances the guest's vdpa framework holds,
# created and destroyed with the real tool (iproute2's vdpa), one
# `vdpa dev add` / `vdpa dev del` per instance, timed in the guest.
# virtio_vdpa is unloaded first, so an instance is a vdpa device only (no
# virtio disk per instance).  Needs the guest of scripts/build-vdpa-guest
# and a vdpa-mgmt function with a blk node (tests/vdpa-driver/scale).
#
# Parameters: iolab.scale_count=N (default 1000): the most to create; the
#   loop stops early at the first refusal (e.g. max-instances reached).
# Results: created= first_error= add_s= add_ms_per= listed= deleted=
#   del_s= del_ms_per= (wall clock in the guest, the tool's process
#   included) kernel_add_ms_per= kernel_del_ms_per= (inside the driver's
#   dev_add / dev_del, from debugfs vdpa_mgmt/<bdf>/timing) left= kwarn=
. /lib/iolab.sh

count=$(iolab_param scale_count 1000)
iolab_need vdpa || exit 1
bdf=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1b36 ] && [ "$(cat "$d/device")" = 0x0120 ]; then
        bdf=${d##*/}
        break
    fi
done
[ -n "$bdf" ] || { iolab_result error=no-vdpa-mgmt-function; exit 1; }
rmmod virtio_vdpa 2>/dev/null
insmod /lib/modules/extra/vdpa_mgmt.ko || { iolab_result error=insmod; exit 1; }

t0=$(iolab_now_us)
i=0
first_error=none
while [ "$i" -lt "$count" ]; do
    if ! vdpa dev add name "s$i" mgmtdev "vdpa-mgmt-blk.$bdf" 2>/tmp/add.err; then
        first_error=$(head -n 1 /tmp/add.err | tr ' =' '_:')
        break
    fi
    i=$((i + 1))
done
created=$i
t1=$(iolab_now_us)
listed=$(vdpa dev show | grep -c '^s[0-9]*:')
j=0
while [ "$j" -lt "$created" ]; do
    vdpa dev del "s$j" 2>/dev/null || break
    j=$((j + 1))
done
t2=$(iolab_now_us)
left=$(ls /sys/bus/vdpa/devices | wc -l)
# The kernel's own share: time inside the driver's dev_add / dev_del.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
timing=/sys/kernel/debug/vdpa_mgmt/$bdf/timing
kper() {
    awk -v w="$1" '$1 == w { printf "%.2f", $7 / 1000000; found = 1 }
        END { if (!found) printf "unknown" }' "$timing" 2>/dev/null
}
kadd=$(kper dev_add)
kdel=$(kper dev_del)
per() { awk -v s="$1" -v e="$2" -v n="$3" 'BEGIN { if (n < 1) n = 1; printf "%.2f", (e - s) / 1000 / n }'; }
if dmesg | grep -E -q 'WARNING:|BUG:|Oops|Call Trace'; then kwarn=yes; else kwarn=no; fi
iolab_result created=$created first_error=$first_error \
    add_s=$(iolab_elapsed "$t0" "$t1") add_ms_per=$(per "$t0" "$t1" "$created") \
    listed=$listed deleted=$j del_s=$(iolab_elapsed "$t1" "$t2") \
    del_ms_per=$(per "$t1" "$t2" "$j") kernel_add_ms_per=$kadd \
    kernel_del_ms_per=$kdel left=$left kwarn=$kwarn
[ "$created" -gt 0 ] && [ "$listed" = "$created" ] && [ "$j" = "$created" ] &&
    [ "$left" = 0 ] && [ "$kwarn" = no ]
