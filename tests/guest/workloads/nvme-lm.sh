#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# nvme-lm: a whole TP4159 migration inside one guest, from managed
# controller A to managed controller B of an nvme-export-mgmt, driven only
# by nvme-cli's `lm` commands (trixie's nvme-cli 2.13, libnvme 1.13) plus
# dd, od and sha256sum.  Needs the guest of scripts/build-vdpa-guest (it
# has /usr/sbin/nvme), the kernel command line `hugepages=1
# nvme_core.io_timeout=N` and, from tests/nvme-lm/run, B's image a copy of
# A's (the bulk copy a migration starts with).
#
#  1. `lm create-cdq` for A, `lm track-send --start`, then three dd writes
#     on A's namespace;
#  2. the queue's entries are read (see below), the LBAs they name copied
#     from A's namespace to B's with dd, the head pointer given back with
#     `lm set-cdq` and read with `lm get-cdq`; both namespaces' sha256 agree;
#  3. `lm migration-send` suspends A (the queue gets its "last - suspended"
#     entry; logging into it goes on until the queue is deleted), a
#     read is then submitted on A and stays in A's SQ (checked in A's
#     state, not waited for by luck), `lm migration-recv` gets A's state
#     into a file, B is suspended, `lm migration-send -s 2` sets the file
#     on B, B's state read back is the same bytes, B is resumed;
#  4. B fetches the read from the queue A's driver filled and posts its
#     completion into A's CQ; A's driver finds it when the request times
#     out ("completion polled") and dd gets the block from B's namespace,
#     which is what was written on A.  Then `lm delete-cdq`, and two
#     refusals through the tool.
#
# Reading the queue.  nvme-cli frees the buffer it gives Create CDQ when
# the command returns (its own --consent text says so), so the device's
# entries land in memory the guest no longer owns.  Two things make this
# sound here: the CDQ is a page of a hugetlb pool of exactly one page that
# nothing else in the guest uses (nvme-cli takes a buffer of 512 KiB or
# more from the pool; the --size used is 0x200f8 dwords, of which libnvme
# 1.13 sends only the low byte, 248 dwords = 31 entries), so the freed page
# goes back to the pool and stays there untouched; and the entries are
# read from that physical page through /proc/kcore with dd, at the page
# /proc/kpageflags names as the pool's (KPF_HUGE and KPF_COMPOUND_HEAD).
# If the queue were anywhere else the entries would not be found there.
#
# Parameters: iolab.lm_m, iolab.lm_a, iolab.lm_b (CNTLIDs of m0, A, B;
#   default 1, 2, 4), iolab.nvme_wait (seconds for the controllers)
# Results: ctrls= pool= create= track= entries= (SLBA+NLB,... as read from
#   the queue) first= copied= head= suspended= pending= state_bytes=
#   csup= state_moved= resumed= read_on_b= polled= b_fetched= deleted=
#   resume_running= bad_cdq=
. /lib/iolab.sh

iolab_need nvme || exit 1
cm=$(iolab_param lm_m 1)
ca=$(iolab_param lm_a 2)
cb=$(iolab_param lm_b 4)
wait_s=$(iolab_param nvme_wait 20)
cdq_size=131320             # 0x200f8: see "Reading the queue" above
cdq_entries=31

# The tool's first line, spaces as _ for a result value.
first_line() { head -n 1 "$1" | tr ' =' '_:'; }

# ctrl_of CNTLID: the nvmeN whose CNTLID that is.
ctrl_of() {
    for d in /sys/class/nvme/nvme*; do
        if [ "$(cat "$d/cntlid" 2>/dev/null)" = "$1" ]; then
            echo "${d##*/}"
            return 0
        fi
    done
    return 1
}

# ns_of nvmeN: its namespace 1's block device (the multipath head's name
# when the path is nvmeScNn1).
ns_of() {
    _n=$(ls "/sys/class/nvme/$1" | grep -E '^nvme[0-9]+(c[0-9]+)?n1$' | head -n 1)
    [ -n "$_n" ] && echo "/dev/$(echo "$_n" | sed 's/c[0-9]*n/n/')"
}

i=0
while :; do
    m=$(ctrl_of "$cm") && a=$(ctrl_of "$ca") && b=$(ctrl_of "$cb") &&
        ans=$(ns_of "$a") && bns=$(ns_of "$b") && [ -b "$ans" ] && [ -b "$bns" ] &&
        break
    i=$((i + 1))
    if [ "$i" -gt $((wait_s * 2)) ]; then
        iolab_result error=controllers-missing nvme="$(ls /sys/class/nvme | tr '\n' ,)"
        exit 1
    fi
    sleep 0.5
done
md=/dev/$m
lba=$(cat "/sys/block/${ans##*/}/queue/logical_block_size")
iolab_log "m0=$m A=$a ($ans) B=$b ($bns) lba=$lba"
iolab_result ctrls=yes

sum() { sha256sum "$1" | awk '{ print $1 }'; }
same_ns() {
    echo 3 > /proc/sys/vm/drop_caches
    [ "$(sum "$ans")" = "$(sum "$bns")" ]
}
same_ns || { iolab_result error=b-is-not-a-copy-of-a; exit 1; }

# ------------------------------------------------- the hugetlb pool page ---

# The head PFN of every hugetlb page (/proc/kpageflags: bit 15
# COMPOUND_HEAD, bit 17 HUGE), read as 16-bit words.
huge_pfns() {
    od -An -v -tu2 -w8 /proc/kpageflags |
        awk '{ if (int($1 / 32768) % 2 && int($2 / 2) % 2) print NR - 1 }'
}

# kcore_offset PHYS: where /proc/kcore holds that physical address (the
# PT_LOAD whose p_paddr range covers it; RAM segments carry p_paddr).
kcore_offset() {
    _phoff=$(od -An -tu8 -j 32 -N 8 /proc/kcore | tr -d ' ')
    _phnum=$(od -An -tu2 -j 56 -N 2 /proc/kcore | tr -d ' ')
    od -An -v -tu8 -w56 -j "$_phoff" -N $((_phnum * 56)) /proc/kcore |
        awk -v p="$1" '$1 % 4294967296 == 1 && $4 < 18446744073709551615 &&
                       $4 <= p && p < $4 + $6 { printf "%.0f\n", $2 + p - $4; exit }'
}

pool_total=$(awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo)
pool_free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
pfns=$(huge_pfns)
if [ "$pool_total" != 1 ] || [ "$pool_free" != 1 ] || [ "$(echo "$pfns" | wc -w)" != 1 ]; then
    iolab_result pool=no total="$pool_total" free="$pool_free" pfns="$(echo $pfns | tr ' ' ,)"
    exit 1
fi
phys=$((pfns * 4096))
koff=$(kcore_offset "$phys")
[ -n "$koff" ] || { iolab_result pool=no error=no-kcore-segment phys="$phys"; exit 1; }
iolab_log "hugetlb pool page at $(printf 0x%x "$phys"), /proc/kcore offset $koff"
iolab_result pool=yes

# cdq_entries_read: one line per slot, "phase esa lbacir nsid slba nlb"
cdq_read() {
    dd if=/proc/kcore bs=32 skip=$((koff / 32)) count=$cdq_entries 2>/dev/null |
        od -An -v -tu4 -w32 |
        awk '{ a = int($8 / 16777216)
               printf "%d %d %d %d %.0f %d\n", a % 2, int(a / 2) % 8, int(a / 64),
                      $1, $3 + $4 * 4294967296, $2 }'
}

# ------------------------------------------ 1. create, track, write on A ---

nvme lm create-cdq "$md" -c "$ca" -s "$cdq_size" --consent >/tmp/out 2>&1
cdqid=$(sed -n 's/.*CDQID=\(0x[0-9a-fA-F]*\).*/\1/p' /tmp/out)
if [ -z "$cdqid" ]; then
    iolab_result create="$(first_line /tmp/out)"
    exit 1
fi
cdqid=$((cdqid))
pool_free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
iolab_log "create-cdq: $(cat /tmp/out); pool pages free after: $pool_free"
iolab_result create=yes cdqid="$cdqid" pool_free_after="$pool_free"

nvme lm track-send "$md" -s 0 -C "$cdqid" --start >/tmp/out 2>&1
grep -q 'Successful' /tmp/out || { iolab_result track="$(first_line /tmp/out)"; exit 1; }
iolab_result track=yes

# Three writes of random data: LBA 10 (1 block), 100 (8), 1000 (3); each
# one write() (bs = the whole range), so one command and one entry
written=
for w in 10:1 100:8 1000:3; do
    s=${w%:*} n=${w#*:}
    dd if=/dev/urandom of="/tmp/w$s" bs="$lba" count="$n" 2>/dev/null
    dd if="/tmp/w$s" of="$ans" bs=$((lba * n)) count=1 seek=$((s * lba)) \
        oflag=direct,seek_bytes conv=notrunc 2>/dev/null ||
        { iolab_result error=write-a-failed; exit 1; }
    written="$written${written:+,}$s+$n"
done

# --------------------------------------- 2. read the queue, copy to B ---

cdq_read > /tmp/cdq
iolab_log "queue after the writes: $(head -n 4 /tmp/cdq | tr '\n' ';')"
# The entries of this pass (phase 1) that report a change
entries=$(awk '$1 == 1 && $3 == 0 { printf "%s%s+%d", sep, $5, $6 + 1; sep = "," }' /tmp/cdq)
first=$(awk 'NR == 1 { print ($1 == 1 && $2 == 1) ? "yes" : "no" }' /tmp/cdq)
nent=$(awk '$1 == 1' /tmp/cdq | wc -l)
iolab_result entries="$entries" first="$first"
[ "$entries" = "$written" ] || { iolab_result error=entries-differ written="$written"; exit 1; }

awk '$1 == 1 && $3 == 0 { print $5, $6 + 1 }' /tmp/cdq | while read -r s n; do
    dd if="$ans" of="$bns" bs=$((lba * n)) count=1 skip=$((s * lba)) seek=$((s * lba)) \
        iflag=direct,skip_bytes oflag=direct,seek_bytes conv=notrunc 2>/dev/null || exit 1
done || { iolab_result error=copy-failed; exit 1; }
if same_ns; then copied=yes; else copied=no; fi

nvme lm set-cdq "$md" -C "$cdqid" -H "$nent" >/tmp/out 2>&1
nvme lm get-cdq "$md" -C "$cdqid" >>/tmp/out 2>&1
head=$(sed -n 's/^Head Pointer: //p' /tmp/out)
iolab_result copied="$copied" head="$head"

# ------------------------- 3. suspend A, queue a read, move the state ---

nvme lm migration-send "$md" -s 0 -c "$ca" -t 1 >/tmp/out 2>&1
grep -q 'Successful' /tmp/out || { iolab_result suspended="$(first_line /tmp/out)"; exit 1; }
cdq_read > /tmp/cdq
last=$(sed -n "$((nent + 1))p" /tmp/cdq)
# phase 1, ESA 3 (last - suspended), LBACIR 2 (no change)
case $last in
"1 3 2 "*) iolab_result suspended=yes ;;
*) iolab_result suspended=no last_entry="$(echo "$last" | tr ' ' ,)"; exit 1 ;;
esac

# get_state CNTLID ARGS...: Migration Receive, Get Controller State of
# the first (only) NVMe-defined format: CSVI is a 1's based index into
# Identify CNS 20h's version list, and CSVI 0 asks for no NVMe-defined
# state at all (NVMe Base 2.1, Figure 345), hence -V 1
get_state() {
    _c=$1
    shift
    nvme lm migration-recv "$md" -s 0 -c "$_c" -V 1 "$@"
}

# The state's size from its header: 48 + 4 * (NVMECSS + VSS)
get_state "$ca" -n 11 >/tmp/hdr 2>&1
css=$(sed -n 's/^NVMe Controller State Size (NVMECSS) *: //p' /tmp/hdr)
vss=$(sed -n 's/^Vendor Specific Size (VSS) *: //p' /tmp/hdr)
[ -n "$css" ] && [ -n "$vss" ] || { iolab_result error=no-state-header out="$(first_line /tmp/hdr)"; exit 1; }
len=$((48 + 4 * (css + vss)))

# A read submitted after the suspend: A does not fetch it
dd if="$ans" of=/tmp/r100 bs="$lba" skip=100 count=1 iflag=direct 2>/dev/null &
rpid=$!
# It is in A's SQ once an SQ's tail is past its head (A's state says so;
# nvme-cli labels the CQs' pointers IOSQHP/IOSQTP too, hence the long match)
sq_moved() {
    awk -F': ' '/Submission Queue Head Pointer/ { h = $2; n++ }
                /Submission Queue Tail Pointer/ { if ($2 != h) d = 1 }
                END { exit !(n && d) }' "$1"
}
pending=no
i=0
while [ $i -lt 40 ]; do
    get_state "$ca" -n $((len / 4)) >/tmp/st 2>&1
    if sq_moved /tmp/st; then
        pending=yes
        break
    fi
    i=$((i + 1))
    sleep 0.25
done
iolab_result pending="$pending"
[ "$pending" = yes ] || exit 1

# nvme-cli writes NUMD * 4 bytes of the NUMD + 1 dwords it asks for
get_state "$ca" -n $((len / 4)) -f /tmp/a.state >/tmp/out 2>&1
csup=$(sed -n 's/^CDW0: 0x[0-9a-f]*: Controller \(.*\)$/\1/p' /tmp/out | tr ' ' _)
iolab_result state_bytes="$(wc -c < /tmp/a.state)" csup="$csup"

nvme lm migration-send "$md" -s 0 -c "$cb" -t 1 >/tmp/out 2>&1
grep -q 'Successful' /tmp/out || { iolab_result state_moved="suspend-b:$(first_line /tmp/out)"; exit 1; }
# nvme-cli 2.13's migration-send -f fcloses its input file twice (an
# explicit fclose, then the _cleanup_file_ one; still so upstream): glibc
# aborts once the command has completed, and the "Successful" line, in
# stdout's buffer, is lost.  A refusal is on stderr (unbuffered) before
# that; the effect is checked by reading B's state back.
nvme lm migration-send "$md" -s 2 -c "$cb" -S 3 -n $((len / 4)) -f /tmp/a.state \
    >/tmp/out 2>/tmp/err
set_rc=$?
if grep -q -e 'NVMe status' -e 'ERROR' /tmp/err; then
    iolab_result state_moved="$(first_line /tmp/err)"
    exit 1
fi
get_state "$cb" -n $((len / 4)) -f /tmp/b.state >/dev/null 2>&1
if [ "$(sum /tmp/a.state)" = "$(sum /tmp/b.state)" ]; then moved=yes; else moved=no; fi
iolab_result state_moved="$moved" set_rc="$set_rc"

# -------------------------------------------- 4. B continues A's queue ---

dmesg -c >/dev/null
nvme lm migration-send "$md" -s 1 -c "$cb" >/tmp/out 2>&1
grep -q 'Successful' /tmp/out && resumed=yes || resumed="$(first_line /tmp/out)"
iolab_result resumed="$resumed"
wait "$rpid"
rrc=$?
if [ $rrc = 0 ] && [ "$(dd if=/tmp/w100 bs="$lba" count=1 2>/dev/null | sha256sum | awk '{ print $1 }')" = "$(sum /tmp/r100)" ]; then
    read_on_b=yes
else
    read_on_b=no
fi
if dmesg | grep -q 'completion polled'; then polled=yes; else polled=no; fi
# B fetched what A's SQ held: every SQ's head is at its tail now
get_state "$cb" -n $((len / 4)) >/tmp/st 2>&1
if grep -q 'Submission Queue Head Pointer' /tmp/st && ! sq_moved /tmp/st; then
    b_fetched=yes
else
    b_fetched=no
fi
iolab_result read_on_b="$read_on_b" dd_rc="$rrc" polled="$polled" b_fetched="$b_fetched"

nvme lm delete-cdq "$md" -C "$cdqid" >/tmp/out 2>&1
grep -q 'Successful' /tmp/out && deleted=yes || deleted="$(first_line /tmp/out)"
iolab_result deleted="$deleted"

# Refusals, as the tool reports them: B runs; the queue is gone
nvme lm migration-send "$md" -s 1 -c "$cb" >/tmp/out 2>&1
iolab_result resume_running="$(first_line /tmp/out)"
nvme lm track-send "$md" -s 0 -C "$cdqid" --start >/tmp/out 2>&1
iolab_result bad_cdq="$(first_line /tmp/out)"
exit 0
