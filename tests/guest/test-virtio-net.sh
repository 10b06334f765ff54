#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Real-guest test: virtio-net data path.  Boots the iolab guest with
# virtio-net-pci on QEMU user networking and fetches a 4 MiB random blob
# from an HTTP server on the host's 127.0.0.1 (the guest sees 10.0.2.2),
# checking its sha256.
#
# Usage: tests/guest/test-virtio-net.sh [run-guest options, e.g. --accel tcg]
# Environment: IOLAB_QEMU (QEMU binary), IOLAB_ACCEL, IOLAB_TEST_TIMEOUT.

. "$(cd "$(dirname "$0")" && pwd)/testlib.sh"
t_mktemp

blob=$t_tmp/blob
head -c 4194304 /dev/urandom > "$blob" || {
    echo "# cannot create $blob" >&2
    exit 1
}

t_check "virtio-net-pci: net-fetch 4 MiB over user networking" \
    "$run_guest" -w net-fetch --serve-file "$blob" \
    --timeout "${IOLAB_TEST_TIMEOUT:-300}" \
    --expect net-fetch.match=yes --expect net-fetch.bytes=4194304 "$@" -- \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=

t_done
