#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest test: vpri-nic under memory overcommit, both RX fault policies.

The unmodified Linux virtio_net driver fetches a 32 MiB random blob over
HTTP from a server on the host (QEMU user networking) through vpri-nic,
while the vpri-host evicts part of guest RAM again and again, and checks its
sha256.  It runs once with rx-fault-policy=hold and once with drop.

Passes when, for each policy, the blob matches, the NIC took faults on its
receive queues that were all resolved, and:
  hold: no packet was dropped on a fault (packets were held instead);
  drop: packets were dropped on faults, TCP saw the loss (the guest's
        RetransSegs in /proc/net/snmp, or out-of-order segments, TcpExt
        TCPOFOQueue in /proc/net/netstat: in a download the segments lost
        are the server's to resend) and the blob still matches.
"""

import os
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import iolab_guest  # noqa: E402
from vpri_pressure import nic_failures, nic_line  # noqa: E402

BLOB_MIB = 32
# Once the fetch has started, the host evicts ROUNDS times, every PERIOD
# seconds: first up to TARGET_PERCENT of guest RAM, then at least CHURN
# pages a round.  The pressure is bounded on purpose.  The host's clock has
# no reference bits, so it evicts a page the NIC has just faulted in as
# readily as any other; under drop, the sender's retransmissions then keep
# meeting pages evicted again since the previous try, with growing backoff,
# until the connection dies.  That collapse is real (scripts/bench measures
# goodput against fault rate), but this test is about recovering from
# loss, so the evictions stop and TCP must catch up with the blob intact.
TARGET_PERCENT = 25
CHURN = 1024
PERIOD = 0.25
ROUNDS = 8


def reclaim(run, srv, stop, rounds, last):
    while not stop.wait(PERIOD):
        try:
            q = run.qmp.execute("query-vpri")
            last[0] = q
            if not srv.requests or len(rounds) >= ROUNDS:
                continue
            h = q["hosts"][0]
            want = h["guest-pages"] * TARGET_PERCENT // 100
            r = run.qmp.execute("vpri-reclaim", host="vh0",
                                pages=max(want - h["evicted-pages"], CHURN))
            rounds.append(r["evicted"])
        except Exception:  # noqa: BLE001 - QEMU exits when the guest is done
            return


def run_policy(policy, blob, qemu, kernel, initrd, accel, tmp):
    failures = []
    with iolab_guest.FileServer(blob) as srv:
        run = iolab_guest.GuestRun(
            kernel=kernel, initrd=initrd, workloads=["net-fetch"],
            params={"http_port": srv.port, "http_sha256": srv.sha256,
                    "net_wait": 30, "http_tries": 5},
            qemu=qemu, accel=accel, qmp=True, echo=False,
            timeout=int(os.environ.get("IOLAB_TEST_TIMEOUT", "400")),
            extra_args=[
                "-object", "vpri-host,id=vh0,swap-file=%s/swap-%s"
                % (tmp, policy),
                "-netdev", "user,id=n0",
                "-device", "vpri-nic,netdev=n0,host=vh0,id=nic0,"
                "rx-fault-policy=%s" % policy,
            ] + os.environ.get("IOLAB_NIC_EXTRA", "").split())
        rounds, last, stop = [], [None], threading.Event()
        run.start()
        t = threading.Thread(target=reclaim, args=(run, srv, stop, rounds, last),
                             daemon=True)
        t.start()
        try:
            res = run.wait()
        finally:
            stop.set()
            t.join()
            run.close()

    fetch = res.results.get("net-fetch", {})
    print("[%s] %s" % (policy, res.summary()))
    if res.hang:
        failures.append("guest hung")
    if not res.ok:
        failures.append("workload did not finish ok")
    if fetch.get("match") != "yes" or \
            fetch.get("bytes") != str(BLOB_MIB << 20):
        failures.append("fetch: match=%s bytes=%s" % (fetch.get("match"),
                                                      fetch.get("bytes")))
    evicted = sum(rounds)
    print("[%s] reclaim: %d rounds, %d pages evicted" % (policy, len(rounds),
                                                        evicted))
    if len(rounds) < 2 or evicted == 0:
        failures.append("the host did not evict memory repeatedly")
    q = last[0]
    if not q:
        return failures + ["no query-vpri snapshot"]
    dev = q["devices"][0]
    retrans = int(fetch.get("retrans", "-1"))
    ofo = int(fetch.get("ofo", "-1"))
    print("[%s] nic: %s | guest TCP: retrans=%d ofo=%d insegs=%s, %s MiB/s"
          % (policy, nic_line(dev), retrans, ofo, fetch.get("insegs"),
             fetch.get("mibps")))
    failures += nic_failures(policy, dev)
    if policy == "drop" and retrans + ofo <= 0:
        failures.append("guest TCP saw no loss (retrans=%d ofo=%d)"
                        % (retrans, ofo))
    return ["%s: %s" % (policy, m) for m in failures]


def main():
    qemu = os.environ.get("IOLAB_QEMU") or iolab_guest.DEFAULT_QEMU
    kernel, initrd = iolab_guest.find_guest()
    accel = iolab_guest.resolve_accel(None, qemu, kernel, initrd)
    failures = []

    with tempfile.TemporaryDirectory(prefix="iolab-nic-",
                                     dir=os.environ.get("TMPDIR",
                                                        "/var/tmp")) as tmp:
        blob = os.path.join(tmp, "blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(BLOB_MIB << 20))
        for policy in os.environ.get("IOLAB_NIC_POLICIES",
                                     "hold drop").split():
            failures += run_policy(policy, blob, qemu, kernel, initrd, accel,
                                   tmp)

    for m in failures:
        print("FAIL: " + m)
    print("guest: %d passed, %d failed" % (0 if failures else 1,
                                           1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
