#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest test: vpri-nic under memory overcommit, both RX fault policies.

The unmodified Linux virtio_net driver fetches a 32 MiB random blob over
HTTP from a server on the host (QEMU user networking) through vpri-nic,
while the vpri-host evicts part of guest RAM again and again, and checks its
sha256.  make check runs it with rx-fault-policy=hold; make check-slow
(IOLAB_SLOW=1) runs it with hold and with drop.  Under drop, QEMU's user-mode
TCP takes minutes to recover from the lost segments (see SWEEP_PERCENT);
test-vpri-nic-pair.py covers drop in make check, against a Linux sender.

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
# The first GET is held (iolab_guest.FileServer's gate) while the host
# evicts SWEEP_PERCENT[policy] of guest RAM: the guest has posted its
# receive buffers and sent the request, so the body is certain to meet the
# buffers evicted.  hold sweeps all of RAM, every buffer then faults and
# the NIC holds packets; that costs nothing but fault service.  Under drop
# each evicted buffer page costs a lost segment, and QEMU's user-mode TCP
# (no SACK, coarse retransmission timer) recovers from a burst of losses
# by timeouts with backoff, so drop sweeps a quarter.
#
# Then the host evicts again, ROUNDS times in all, every PERIOD seconds:
# up to TARGET_PERCENT of guest RAM, and at least CHURN pages a round.
# The pressure is bounded on purpose.  The host's clock has no reference
# bits, so it evicts a page the NIC has just faulted in as readily as any
# other; under drop, the sender's retransmissions then keep meeting pages
# evicted again since the previous try, with growing backoff, until the
# connection dies.  That collapse is real (scripts/bench measures goodput
# against fault rate), but this test is about recovering from loss, so the
# evictions stop and TCP must catch up with the blob intact.
SWEEP_PERCENT = {"hold": 100, "drop": 25}
TARGET_PERCENT = 25
CHURN = 1024
PERIOD = 0.25
ROUNDS = 8
GATE_TIMEOUT = 60


class Pressure(threading.Thread):
    """The host side of one run: the gated sweep, then the churn rounds,
    and the latest query-vpri.  The only QMP user while the guest runs."""

    def __init__(self, policy):
        super().__init__(daemon=True)
        self.policy = policy
        self.run_ = None
        self.rounds = []
        self.last = None
        self.requested = threading.Event()
        self.swept = threading.Event()
        self.stopped = threading.Event()

    def gate(self):
        """FileServer's gate: runs in the HTTP thread on the first GET."""
        self.requested.set()
        if not self.swept.wait(GATE_TIMEOUT):
            raise RuntimeError("the sweep did not finish in %d s"
                               % GATE_TIMEOUT)

    def run(self):
        qmp = self.run_.qmp
        try:
            while not self.requested.wait(PERIOD):
                if self.stopped.is_set():
                    return
                self.last = qmp.execute("query-vpri")
            r = qmp.execute("vpri-reclaim", host="vh0",
                            percent=SWEEP_PERCENT[self.policy])
            self.rounds.append(r["evicted"])
        except Exception:  # noqa: BLE001 - QEMU exits when the guest is done
            return
        finally:
            self.swept.set()
        while not self.stopped.wait(PERIOD):
            try:
                q = qmp.execute("query-vpri")
                self.last = q
                if len(self.rounds) >= ROUNDS:
                    continue
                h = q["hosts"][0]
                want = h["guest-pages"] * TARGET_PERCENT // 100
                r = qmp.execute("vpri-reclaim", host="vh0",
                                pages=max(want - h["evicted-pages"], CHURN))
                self.rounds.append(r["evicted"])
            except Exception:  # noqa: BLE001 - as above
                return

    def stop(self):
        self.stopped.set()
        self.join()


def run_policy(policy, blob, qemu, kernel, initrd, accel, tmp):
    failures = []
    pressure = Pressure(policy)
    with iolab_guest.FileServer(blob, gate=pressure.gate) as srv:
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
        pressure.run_ = run
        run.start()
        pressure.start()
        try:
            res = run.wait()
        finally:
            pressure.stop()
            run.close()
        if srv.gate_error:
            failures.append("gate: %s" % srv.gate_error)
    rounds = pressure.rounds

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
    q = pressure.last
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
        default = "hold drop" if os.environ.get("IOLAB_SLOW") else "hold"
        for policy in os.environ.get("IOLAB_NIC_POLICIES", default).split():
            failures += run_policy(policy, blob, qemu, kernel, initrd, accel,
                                   tmp)

    for m in failures:
        print("FAIL: " + m)
    print("guest: %d passed, %d failed" % (0 if failures else 1,
                                           1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
