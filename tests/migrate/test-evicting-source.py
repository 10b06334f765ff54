#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""make check-migrate: upstream's migration-test guest, with a source that
keeps evicting guest RAM while it migrates (issue 17, source side).

Upstream's tests/qtest/migration-test boots a TCG guest that increments a
byte on every page of 100 MiB in a loop and, on the destination, checks
that every page holds the value the loop had reached: a write lost by
the dirty log, or a page sent with stale content, fails it.  Here the
source QEMU (QTEST_QEMU_BINARY_SRC, a wrapper this script writes) also
has a vpri-host, and an evictor reclaims 30% of guest RAM every 0.2 s
from the moment the migration starts until it ends.  Evicted pages are
sent from the swap store (patches/0013), the guest's stores fault pages
back in throughout, and pages are evicted after being sent: the guest's
check on the destination covers all of it (docs/vpri-host.rst, "Sending
an evicted page").  Each case passes when migration-test passes it and
the source sent pages from the store while the evictor ran: counted from
the source's trace of vpri_migration_supply, read after it exits.  The
evictor's own reading of query-vpri's migration-supplied-pages is printed
too, but it cannot decide: the last pages are often sent after its last
look, and the source quits before the next (a CI run saw 0 there).

Cases: precopy (unix socket) and postcopy.  Prints
'evicting: N passed, N failed' (for scripts/check-all).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "guest"))
sys.dont_write_bytecode = True

from qmp import QMPClient  # noqa: E402

OBJ = os.path.join(SRC, "build", "obj")
QEMU = os.path.join(OBJ, "qemu-system-x86_64")
MIGRATION_TEST = os.path.join(OBJ, "tests", "qtest", "migration-test")
CASES = ["/x86_64/migration/precopy/unix/plain",
         "/x86_64/migration/postcopy/plain"]
PERCENT = 30
PERIOD_S = 0.2
RUNNING = ("setup", "active", "postcopy-active", "pre-switchover", "device")

# The source's command line, from migration/framework.c, carries
# '-name source'; the wrapper adds the host and a QMP socket for the
# evictor to it, and leaves every other QEMU (probes, the destination)
# alone.  KVM is dropped: guests here run under TCG only.
WRAPPER = r"""#!/bin/bash
case " $* " in
*" -name source"*)
    args=(); skip=0
    for a in "$@"; do
        if [ $skip = 1 ]; then
            skip=0
            case "$a" in kvm*) continue;; esac
            args+=(-accel "$a"); continue
        fi
        if [ "$a" = -accel ]; then skip=1; continue; fi
        args+=("$a")
    done
    sock=%(dir)s/src-$$.qmp
    %(python)s %(me)s --evict "$sock" %(dir)s/evictor-$$.json &
    exec %(qemu)s "${args[@]}" -object vpri-host,id=vh0 \
        -qmp unix:"$sock",server=on,wait=off \
        -trace vpri_migration_supply -D %(dir)s/trace-$$.log;;
esac
exec %(qemu)s "$@"
"""


def evict(sock, out):
    """The evictor: runs beside one source QEMU, ends with it."""
    res = {"rounds": 0, "evicted": 0, "supplied": 0, "status": None,
           "error": None}
    q = None
    for _ in range(300):
        try:
            q = QMPClient(sock)
            break
        except OSError:
            time.sleep(0.1)
    try:
        if q is None:
            raise RuntimeError("cannot connect to %s" % sock)
        # Evict only while the migration runs: the guest boots fast.
        while q.execute("query-migrate").get("status") not in RUNNING:
            time.sleep(0.05)
        while True:
            r = q.execute("vpri-reclaim", {"host": "vh0",
                                           "percent": PERCENT})
            res["rounds"] += 1
            res["evicted"] += r["evicted"]
            st = q.execute("query-migrate").get("status")
            res["status"] = st
            res["supplied"] = q.execute("query-vpri")["hosts"][0][
                "migration-supplied-pages"]
            if st not in RUNNING:
                break
            time.sleep(PERIOD_S)
    except Exception as e:  # noqa: BLE001 - the source may quit under us
        res["error"] = str(e)
    with open(out, "w") as f:
        json.dump(res, f)


def run_case(tmp, case):
    for name in os.listdir(tmp):
        if name.startswith("evictor-") or name.startswith("trace-"):
            os.unlink(os.path.join(tmp, name))
    env = dict(os.environ, QTEST_QEMU_BINARY=QEMU,
               QTEST_QEMU_BINARY_SRC=os.path.join(tmp, "qemu-src"))
    p = subprocess.run([MIGRATION_TEST, "-p", case], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=600)
    passed = p.returncode == 0 and ("ok 1 %s" % case) in p.stdout
    # The evictor writes its result when its QEMU goes away.
    deadline = time.time() + 10
    results = []
    while time.time() < deadline:
        results = [os.path.join(tmp, n) for n in os.listdir(tmp)
                   if n.startswith("evictor-") and n.endswith(".json")]
        if results:
            break
        time.sleep(0.2)
    if len(results) != 1:
        print("FAIL %s: %d evictor results (one source expected)"
              % (case, len(results)))
        print(p.stdout[-2000:])
        return False
    with open(results[0]) as f:
        ev = json.load(f)
    supplied = traced_supplies(tmp)
    ok = passed and supplied > 0 and ev["rounds"] > 0
    print("%s %s: migration-test %s; evictor %d rounds, %d pages evicted, "
          "%d sent from the swap store (the evictor last saw %d), last "
          "status %s%s"
          % ("PASS" if ok else "FAIL", case, "passed" if passed else "FAILED",
             ev["rounds"], ev["evicted"], supplied, ev["supplied"],
             ev["status"],
             # the source quitting under the evictor ends it normally
             ", evictor error: %s" % ev["error"]
             if ev["error"] and ev["status"] in RUNNING + (None,) else ""))
    if not passed:
        print(p.stdout[-3000:])
    return ok


def traced_supplies(tmp):
    """Pages the source sent from its swap store, from its trace file
    (vpri_migration_supply with supplied 1 and ret 0)."""
    n = 0
    for name in os.listdir(tmp):
        if name.startswith("trace-"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                n += sum(1 for line in f
                         if "vpri_migration_supply" in line and
                         "swap store 1 ret 0" in line)
    return n


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--evict":
        evict(sys.argv[2], sys.argv[3])
        return 0
    for f in (QEMU, MIGRATION_TEST):
        if not os.access(f, os.X_OK):
            print("missing %s: run 'make' first" % f)
            return 1
    npass = nfail = 0
    with tempfile.TemporaryDirectory(prefix="iolab-evicting-") as tmp:
        w = os.path.join(tmp, "qemu-src")
        with open(w, "w") as f:
            f.write(WRAPPER % {"dir": tmp, "python": sys.executable,
                               "me": os.path.realpath(__file__),
                               "qemu": QEMU})
        os.chmod(w, 0o755)
        for case in CASES:
            if run_case(tmp, case):
                npass += 1
            else:
                nfail += 1
    print("evicting: %d passed, %d failed" % (npass, nfail))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
