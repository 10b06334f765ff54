#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Real-guest test: virtio-blk data integrity.  Boots the iolab guest with a
# 64 MiB raw disk (cache=none) on virtio-blk-pci and runs blk-checksum for
# 2 rounds of 16 MiB: random data written with O_DIRECT, read back, sha256
# compared.
#
# Usage: tests/guest/test-virtio-blk.sh [run-guest options, e.g. --accel tcg]
# Environment: IOLAB_QEMU (QEMU binary), IOLAB_ACCEL, IOLAB_TEST_TIMEOUT.

. "$(cd "$(dirname "$0")" && pwd)/testlib.sh"
t_mktemp

img=$t_tmp/disk.img
dd if=/dev/zero of="$img" bs=1M count=0 seek=64 2>/dev/null || {
    echo "# cannot create $img" >&2
    exit 1
}

t_check "virtio-blk-pci: blk-checksum 2x16 MiB, cache=none" \
    "$run_guest" -w blk-checksum -p blk_rounds=2 -p blk_mib=16 \
    --timeout "${IOLAB_TEST_TIMEOUT:-300}" \
    --expect blk-checksum.match=yes --expect blk-checksum.mismatches=0 \
    --expect blk-checksum.rounds=2 "$@" -- \
    -drive "if=none,id=d0,file=$img,format=raw,cache=none" \
    -device virtio-blk-pci,drive=d0

t_done
