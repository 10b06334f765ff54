# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for the real-guest test scripts (tests/guest/test-*.sh).
# Output is TAP-like: "ok N - name" / "not ok N - name" per check and a
# final summary line "guest: P passed, F failed".

guestdir=$(cd "$(dirname "$0")" && pwd)
run_guest=$guestdir/run-guest
t_num=0
t_passed=0
t_failed=0

# t_mktemp: a temp dir (removed at exit) on a filesystem that supports
# O_DIRECT, so that cache=none works (tmpfs may not).
t_mktemp() {
    for base in "${IOLAB_TMPDIR:-}" "${TMPDIR:-}" /var/tmp /tmp; do
        [ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] || continue
        t_tmp=$(mktemp -d "$base/iolab-test.XXXXXX") || continue
        if dd if=/dev/zero of="$t_tmp/.probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
            rm -f "$t_tmp/.probe"
            break
        fi
        rm -rf "$t_tmp"
        t_tmp=
    done
    if [ -z "${t_tmp:-}" ]; then
        t_tmp=$(mktemp -d)
        echo "# warning: no O_DIRECT-capable temp dir; tests needing cache=none may fail" >&2
    fi
    trap 't_cleanup' EXIT
    trap 't_cleanup; exit 130' INT TERM
}

t_cleanup() {
    [ -n "${t_tmp:-}" ] && rm -rf "$t_tmp"
    t_tmp=
}

# t_check NAME COMMAND...: run COMMAND, record ok / not ok.
t_check() {
    t_name=$1
    shift
    t_num=$((t_num + 1))
    "$@"
    t_rc=$?
    if [ "$t_rc" = 0 ]; then
        echo "ok $t_num - $t_name"
        t_passed=$((t_passed + 1))
    else
        case $t_rc in
        3) t_why="guest hang/timeout" ;;
        4) t_why="QEMU or guest setup problem" ;;
        *) t_why="exit status $t_rc" ;;
        esac
        echo "not ok $t_num - $t_name ($t_why)"
        t_failed=$((t_failed + 1))
    fi
}

# t_done: print the summary and exit with the right status.
t_done() {
    echo "1..$t_num"
    echo "guest: $t_passed passed, $t_failed failed"
    [ "$t_failed" = 0 ] && [ "$t_num" -gt 0 ]
    exit $?
}
