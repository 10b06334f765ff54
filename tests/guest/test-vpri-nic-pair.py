#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest test: two guests, each with a vpri-nic, talk over a stream
netdev pair while the host evicts the receiver's RAM; both RX policies.

Two QEMU processes (TCG), each booting the embedded guest with a vpri-nic
on its own vpri-host, are joined by ``-netdev stream`` over a Unix socket
(the server QEMU listens, the client QEMU connects).  The guests take
static addresses on one /24 and run the ``net-pair`` workload: the server
guest generates a 32 MiB blob (splitmix64 from a seed), reports its
sha256 and serves it with busybox httpd; the client guest fetches it with
busybox wget and reports the sha256 of what it got.  Once the client logs
that the fetch started, the host evicts all of the client's guest RAM with
``vpri-reclaim`` (every receive buffer the client posted is gone, so its
receive queue must fault), then 5% more, and stops
(vpri_pressure.StepReclaim).  The client's NIC has
the policy under test, the server's is left at ``hold`` and its RAM alone.

Passes when, for each policy, both workloads finish, the two sha256 sums
(one per guest, compared here) and the sizes match, the client's host
evicted repeatedly, the client's NIC took faults on its receive queue and
every fault was resolved, and:
  hold: the client's NIC dropped nothing on a fault and held packets;
  drop: the client's NIC dropped packets on faults and the SENDING guest's
        TCP RetransSegs (/proc/net/snmp, before and after the transfer)
        grew: the server resent what the client's NIC lost.

A run that does not finish within IOLAB_PAIR_TIMEOUT seconds (default
200) is killed and fails, naming the guest and the step it was at.
"""

import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import iolab_guest  # noqa: E402
from vpri_pressure import StepReclaim, nic_failures, nic_line  # noqa: E402

BLOB_MIB = 32
SEED = 20261204
SERVER_IP, CLIENT_IP = "10.0.3.1", "10.0.3.2"
SERVER_MAC, CLIENT_MAC = "52:54:00:10:03:01", "52:54:00:10:03:02"
WORKLOAD = "net-pair"


def fetching(run):
    return any(text.startswith("fetching") for name, text in run.result.logs
               if name == WORKLOAD)


def last_log(res):
    logs = [text for name, text in res.logs if name == WORKLOAD]
    return logs[-1] if logs else "none"


def make_run(role, policy, sock, tmp, qemu, kernel, initrd, accel, timeout):
    server = role == "server"
    netdev = "stream,id=n0,addr.type=unix,addr.path=%s,server=%s" % (
        sock, "on" if server else "off,reconnect-ms=500")
    params = {"pair_role": role, "pair_ip": SERVER_IP if server else CLIENT_IP,
              "pair_peer": SERVER_IP, "pair_mib": BLOB_MIB, "pair_seed": SEED,
              "pair_wait": max(timeout - 40, 30), "http_tries": 3,
              # the guest ends a stuck workload itself, with a marker,
              # before the host kills QEMU
              "workload_timeout": max(timeout - 20, 40)}
    return iolab_guest.GuestRun(
        kernel=kernel, initrd=initrd, workloads=[WORKLOAD], params=params,
        qemu=qemu, accel=accel, qmp=True, timeout=timeout,
        echo=bool(os.environ.get("IOLAB_PAIR_ECHO")),
        echo_prefix="[%s] " % role,
        extra_args=[
            "-object", "vpri-host,id=vh0,swap-file=%s/swap-%s-%s"
            % (tmp, policy, role),
            "-netdev", netdev,
            "-device", "vpri-nic,netdev=n0,host=vh0,id=nic0,mac=%s,"
            "rx-fault-policy=%s" % (SERVER_MAC if server else CLIENT_MAC,
                                    policy if not server else "hold"),
        ])


def describe(role, res):
    lines = ["[%s] %s" % (role, l) for l in res.summary().splitlines()]
    if not res.ok:
        lines.append("[%s] last guest log: %s" % (role, last_log(res)))
        for l in res.serial[-8:]:
            lines.append("[%s] serial: %s" % (role, l))
    return lines


def run_policy(policy, qemu, kernel, initrd, accel, tmp, timeout):
    failures = []
    sock = os.path.join(tmp, "link-%s.sock" % policy)
    srv = make_run("server", policy, sock, tmp, qemu, kernel, initrd, accel,
                   timeout)
    cli = make_run("client", policy, sock, tmp, qemu, kernel, initrd, accel,
                   timeout)
    pressure = StepReclaim(cli, started=lambda: fetching(cli), first=100,
                           max_rounds=2)
    watch = StepReclaim(srv, evict=False)
    t0 = time.monotonic()
    try:
        srv.start()      # listening once its QMP answers
        if not os.path.exists(sock):
            raise RuntimeError("server QEMU did not create %s" % sock)
        watch.start()
        cli.start()
        pressure.start()
        cres = cli.wait()
        # The server ends once the client says it is done; if the client
        # failed or hung, do not wait for the server's own timeout.
        grace = 60 if cres.ok else 5
        sres = srv.wait(timeout=min(time.monotonic() - t0 + grace, timeout))
    finally:
        for t in (pressure, watch):
            if t.is_alive():
                t.stop()
        for run in (cli, srv):
            run.kill()
            run.close()
    secs = time.monotonic() - t0

    s = sres.results.get(WORKLOAD, {})
    c = cres.results.get(WORKLOAD, {})
    for l in describe("server", sres) + describe("client", cres):
        print("%s: %s" % (policy, l))
    if cres.hang or sres.hang:
        failures.append("hang: %s killed after %d s (client's last step: %s; "
                        "server's: %s)" % (
                            " and ".join(n for n, r in (("client", cres),
                                                        ("server", sres))
                                         if r.hang),
                            timeout, last_log(cres), last_log(sres)))
    for role, res in (("server", sres), ("client", cres)):
        if not res.ok and not res.hang:
            failures.append("%s workload did not finish ok (%s)" % (
                role, " ".join("%s=%s" % kv for kv in
                               res.results.get(WORKLOAD, {}).items())
                or "no result"))
    size = str(BLOB_MIB << 20)
    if not s.get("sha256") or s.get("sha256") != c.get("sha256") or \
            s.get("bytes") != size or c.get("bytes") != size:
        failures.append("blob differs: server sha256=%s bytes=%s, client "
                        "sha256=%s bytes=%s" % (s.get("sha256"), s.get("bytes"),
                                                c.get("sha256"), c.get("bytes")))
    print("%s: reclaim on the client: %s; run %.0f s" % (
        policy, pressure.summary(), secs))
    failures += pressure.failures()
    if not pressure.last:
        return ["%s: %s" % (policy, m)
                for m in failures + ["no query-vpri snapshot of the client"]]
    dev = pressure.last["devices"][0]
    retrans = int(s.get("retrans", "-1"))
    print("%s: client nic: %s" % (policy, nic_line(dev)))
    if watch.last:
        print("%s: server nic: %s" % (policy,
                                      nic_line(watch.last["devices"][0])))
    print("%s: client TCP: retrans=%s ofo=%s insegs=%s, %s MiB/s | server "
          "TCP: retrans=%d outsegs=%s" % (
              policy, c.get("retrans"), c.get("ofo"), c.get("insegs"),
              c.get("mibps"), retrans, s.get("outsegs")))
    failures += ["client nic: " + m for m in nic_failures(policy, dev)]
    if policy == "drop" and retrans <= 0:
        failures.append("the sending guest's TCP RetransSegs did not grow "
                        "(delta %d)" % retrans)
    return ["%s: %s" % (policy, m) for m in failures]


def main():
    qemu = os.environ.get("IOLAB_QEMU") or iolab_guest.DEFAULT_QEMU
    kernel, initrd = iolab_guest.find_guest()
    accel = iolab_guest.resolve_accel(None, qemu, kernel, initrd)
    timeout = int(os.environ.get("IOLAB_PAIR_TIMEOUT", "200"))
    failures = []
    with tempfile.TemporaryDirectory(prefix="iolab-pair-",
                                     dir=os.environ.get("TMPDIR",
                                                        "/var/tmp")) as tmp:
        for policy in os.environ.get("IOLAB_NIC_POLICIES",
                                     "hold drop").split():
            try:
                failures += run_policy(policy, qemu, kernel, initrd, accel,
                                       tmp, timeout)
            except (OSError, RuntimeError, iolab_guest.QMPError) as e:
                failures.append("%s: cannot run the guests: %s" % (policy, e))
    for m in failures:
        print("FAIL: " + m)
    print("guest: %d passed, %d failed" % (0 if failures else 1,
                                           1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
