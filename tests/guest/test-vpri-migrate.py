#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest test: live migration of a guest on vpri-blk under overcommit.

The unmodified Linux virtio_blk driver writes, reads back and checksums
data on a vpri-blk disk (blk-checksum, several rounds) while the source's
vpri-host evicts 30% of guest RAM every half second, so device faults are
raised and answered all through the run.  Once the guest has finished its
first round, the guest migrates to a second QEMU on the same image (the
guest also has an idle vpri-nic, so that its state travels too).  The
destination evicts in its turn: all of its RAM once, then 30% every half
second.  Passes when every round, before and
after the switch-over, matches, the rounds after the switch-over ran on
the destination, both hosts' devices took faults that were all resolved,
and the guest finished in time.
"""

import os
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import iolab_guest  # noqa: E402

ROUNDS = 5
MIB = 16
PERCENT = 30


# One QMP connection per QEMU, shared by the test and its reclaim thread
QMP_LOCK = threading.Lock()


def qmp(run, cmd, **args):
    with QMP_LOCK:
        return run.qmp.execute(cmd, **args)


def reclaim(run, stop, evicted, last, first_percent):
    percent = first_percent
    while not stop.wait(0.5):
        try:
            r = qmp(run, "vpri-reclaim", host="vh0", percent=percent)
            percent = PERCENT
            evicted.append(r["evicted"])
            last[0] = qmp(run, "query-vpri")
        except Exception:  # noqa: BLE001 - QEMU stops or exits under us
            return


def rounds_of(res):
    return [kv for name, kv in res.records
            if name == "blk-checksum" and "round" in kv]


def device_args(tmp, side, disk):
    return [
        "-object", "vpri-host,id=vh0,swap-file=%s/swap-%s" % (tmp, side),
        "-blockdev", "driver=file,node-name=d0,filename=%s,locking=off,"
        "cache.direct=on" % disk,
        "-device", "vpri-blk,drive=d0,host=vh0,id=vblk0",
        "-netdev", "user,id=n0",
        "-device", "vpri-nic,netdev=n0,host=vh0,id=nic0",
    ]


def start_reclaim(run, first_percent=PERCENT):
    state = {"stop": threading.Event(), "evicted": [], "last": [None]}
    t = threading.Thread(target=reclaim, args=(run, state["stop"],
                                               state["evicted"],
                                               state["last"], first_percent),
                         daemon=True)
    t.start()
    state["thread"] = t
    return state


def stop_reclaim(state):
    state["stop"].set()
    state["thread"].join()


def check_faults(side, q, failures):
    if not q:
        failures.append("%s: no query-vpri snapshot" % side)
        return
    blk = [d for d in q["devices"] if d["id"] == "vblk0"][0]
    f = blk["faults"]
    print("%s: raised=%d resolved=%d failed=%d pending=%d cpu-faults=%d"
          % (side, f["raised"], f["resolved"], f["failed"], f["pending"],
             q["hosts"][0]["cpu-faults"]))
    if os.environ.get("IOLAB_DEBUG"):
        print(q)
    if f["raised"] == 0:
        failures.append("%s: vpri-blk took no faults" % side)
    if f["failed"]:
        failures.append("%s: %d faults failed" % (side, f["failed"]))
    if f["resolved"] + f["pending"] != f["raised"]:
        failures.append("%s: faults lost" % side)


def main():
    qemu = os.environ.get("IOLAB_QEMU") or iolab_guest.DEFAULT_QEMU
    kernel, initrd = iolab_guest.find_guest()
    timeout = int(os.environ.get("IOLAB_TEST_TIMEOUT", "300"))
    failures = []

    with tempfile.TemporaryDirectory(prefix="iolab-migrate-",
                                     dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        disk = os.path.join(tmp, "disk.img")
        uri = "unix:%s/migrate.sock" % tmp
        with open(disk, "wb") as f:
            f.truncate(64 << 20)

        def guest(side, extra):
            return iolab_guest.GuestRun(
                kernel=kernel, initrd=initrd, workloads=["blk-checksum"],
                params={"blk_mib": MIB, "blk_rounds": ROUNDS}, qemu=qemu,
                accel="tcg", timeout=timeout, qmp=True, echo=False,
                extra_args=device_args(tmp, side, disk) + extra)

        src = guest("src", [])
        dst = guest("dst", ["-incoming", uri])
        src.start()
        src_reclaim = start_reclaim(src)
        dst_reclaim = None
        dres = None
        deadline = time.monotonic() + timeout
        try:
            # Migrate once the first round has been checked on the source
            while not rounds_of(src.result):
                if src.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the source guest never finished a "
                                       "round:\n" + src.result.summary())
                time.sleep(0.2)
            dst.start()
            t0 = time.monotonic()
            qmp(src, "migrate", uri=uri)
            while True:
                st = qmp(src, "query-migrate").get("status")
                if st == "completed":
                    break
                if st in ("failed", "cancelled"):
                    raise RuntimeError("migration %s" % st)
                if time.monotonic() > deadline:
                    raise RuntimeError("migration did not complete")
                time.sleep(0.2)
            print("migrated after round %d in %.1f s" % (len(rounds_of(src.result)), time.monotonic() - t0))
            stop_reclaim(src_reclaim)
            src_q = src_reclaim["last"][0]
            qmp(src, "quit")
            # All of the destination's RAM is resident after the switch-over:
            # evict all of it once, so that the remaining rounds fault there
            dst_reclaim = start_reclaim(dst, 100)
            dres = dst.wait()
        except (RuntimeError, iolab_guest.QMPError) as e:
            failures.append(str(e))
        finally:
            stop_reclaim(src_reclaim)
            if dst_reclaim:
                stop_reclaim(dst_reclaim)
            src.kill()
            dst.kill()
            sres = src.wait(5)
            if dres is None:
                dres = dst.wait(5)

    print("destination:\n" + dres.summary())
    before, after = rounds_of(sres), rounds_of(dres)
    summary = dres.results.get("blk-checksum", {})
    print("rounds: %d on the source, %d on the destination"
          % (len(before), len(after)))
    if not failures:
        if dres.hang or not dres.ok:
            failures.append("the guest did not finish on the destination")
        if not after:
            failures.append("no round ran on the destination")
        bad = [kv["round"] for kv in before + after if kv.get("match") != "yes"]
        if bad:
            failures.append("rounds %s did not match" % ",".join(bad))
        if summary.get("mismatches") != "0" or \
                summary.get("rounds") != str(ROUNDS):
            failures.append("summary: mismatches=%s rounds=%s"
                            % (summary.get("mismatches"),
                               summary.get("rounds")))
        check_faults("source", src_q, failures)
        check_faults("destination", dst_reclaim["last"][0], failures)

    for m in failures:
        print("FAIL: " + m)
    print("guest: %d passed, %d failed" % (0 if failures else 1,
                                           1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
