#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Real-guest test: the unmodified Linux nvme driver on nvme-export.  The
# guest must see the template's model, serial and firmware in sysfs, the
# template's namespace size and LBA format, a second namespace from an
# nvme-export-ns device, and must write, read back and checksum data
# (blk-checksum on /dev/nvme0n1, 2 rounds of 16 MiB).
#
# Usage: tests/guest/test-nvme-export.sh [run-guest options]
# Environment: IOLAB_QEMU (QEMU binary), IOLAB_ACCEL, IOLAB_TEST_TIMEOUT.

. "$(cd "$(dirname "$0")" && pwd)/testlib.sh"
t_mktemp

img=$t_tmp/disk.img
tmpl=$t_tmp/template.json
dd if=/dev/zero of="$t_tmp/ns2.img" bs=1M count=0 seek=16 2>/dev/null &&
dd if=/dev/zero of="$img" bs=1M count=0 seek=96 2>/dev/null || {
    echo "# cannot create $img" >&2
    exit 1
}
cat > "$tmpl" <<'JSON'
{ "id": "guest-test-1", "sn": "IOLABGUEST42", "mn": "iolab Exported SSD",
  "fr": "GT1.2", "subnqn": "nqn.2026-01.org.iolab:guest-test",
  "namespaces": [ { "nsid": 1, "size": 67108864,
                    "lba-formats": [512, 4096], "flbas": 1 } ] }
JSON

t_check "nvme-export: template identity in sysfs, 2 namespaces, blk-checksum 2x16 MiB" \
    "$run_guest" -w nvme-identity,blk-checksum \
    -p blk_dev=/dev/nvme0n1 -p blk_rounds=2 -p blk_mib=16 \
    --timeout "${IOLAB_TEST_TIMEOUT:-300}" \
    --expect nvme-identity.model=iolab_Exported_SSD \
    --expect nvme-identity.serial=IOLABGUEST42 \
    --expect nvme-identity.firmware=GT1.2 \
    --expect nvme-identity.subnqn=nqn.2026-01.org.iolab:guest-test \
    --expect nvme-identity.size_bytes=67108864 \
    --expect nvme-identity.lba_bytes=4096 \
    --expect nvme-identity.namespaces=2 \
    --expect blk-checksum.match=yes --expect blk-checksum.mismatches=0 \
    --expect blk-checksum.rounds=2 "$@" -- \
    -drive "if=none,id=d0,file=$img,format=raw,cache=none" \
    -drive "if=none,id=d1,file=$t_tmp/ns2.img,format=raw,cache=none" \
    -device "nvme-export,id=nx0,drive=d0,template=$tmpl" \
    -device nvme-export-ns,bus=nx0,drive=d1,nsid=2

t_done
