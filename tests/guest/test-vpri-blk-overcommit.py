#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest test: vpri-blk under memory overcommit.

The unmodified Linux virtio_blk driver writes, reads back and checksums
data on a vpri-blk disk while the vpri-host evicts 30% of guest RAM every
half second.  Passes when every round matches, the device took faults that
were all resolved, the host served CPU faults through userfaultfd, and the
guest finished in time.

With --iommu the disk sits behind intel-iommu and the guest runs with
intel_iommu=on iommu.strict=1: the driver's DMA addresses are IOVAs that
the guest maps and unmaps (and invalidates) around every request, so the
device's IOVA-indexed PA-BITMAP is filled by faults and emptied by IOMMU
unmaps all through the run (docs/vpri-host.rst, "Behind a vIOMMU").
"""

import os
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)

import iolab_guest  # noqa: E402

ROUNDS = 4
MIB = 16
PERCENT = 30


def reclaim(run, stop, rounds, last):
    while not stop.wait(0.5):
        try:
            r = run.qmp.execute("vpri-reclaim", host="vh0", percent=PERCENT)
            rounds.append(r["evicted"])
            last[0] = run.qmp.execute("query-vpri")
        except Exception:  # noqa: BLE001 - QEMU exits when the guest is done
            return


def main():
    iommu = "--iommu" in sys.argv[1:]
    qemu = os.environ.get("IOLAB_QEMU") or iolab_guest.DEFAULT_QEMU
    kernel, initrd = iolab_guest.find_guest()
    accel = iolab_guest.resolve_accel(None, qemu, kernel, initrd)
    failures = []

    with tempfile.TemporaryDirectory(prefix="iolab-overcommit-",
                                     dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        run = iolab_guest.GuestRun(
            kernel=kernel, initrd=initrd, workloads=["blk-checksum"],
            params={"blk_mib": MIB, "blk_rounds": ROUNDS}, qemu=qemu,
            accel=accel, timeout=int(os.environ.get("IOLAB_TEST_TIMEOUT",
                                                    "300")),
            qmp=True, echo=False,
            append="intel_iommu=on iommu.strict=1" if iommu else "",
            extra_args=(["-device", "intel-iommu,intremap=off"]
                        if iommu else []) + [
                "-object", "vpri-host,id=vh0,swap-file=%s/swap" % tmp,
                "-blockdev", "driver=file,node-name=d0,filename=%s,"
                "cache.direct=on" % disk,
                "-device", "vpri-blk,drive=d0,host=vh0,id=vblk0",
            ])
        rounds, last, stop = [], [None], threading.Event()
        run.start()
        t = threading.Thread(target=reclaim, args=(run, stop, rounds, last),
                             daemon=True)
        t.start()
        try:
            res = run.wait()
        finally:
            stop.set()
            t.join()
            run.close()

    print(res.summary())
    blk = res.results.get("blk-checksum", {})
    if res.hang:
        failures.append("guest hung")
    if not res.ok:
        failures.append("workload did not finish ok")
    if blk.get("mismatches") != "0" or blk.get("rounds") != str(ROUNDS):
        failures.append("mismatches=%s rounds=%s" % (blk.get("mismatches"),
                                                     blk.get("rounds")))
    evicted = sum(rounds)
    print("reclaim: %d rounds, %d pages evicted" % (len(rounds), evicted))
    if len(rounds) < 2 or evicted == 0:
        failures.append("the host did not evict memory repeatedly")
    q = last[0]
    if not q:
        failures.append("no query-vpri snapshot")
    else:
        host = q["hosts"][0]
        dev = q["devices"][0]
        f = dev["faults"]
        print("host: cpu-faults=%d device-faults=%d evicted-pages=%d" % (
            host["cpu-faults"], host["device-faults"], host["evicted-pages"]))
        print("device: raised=%d resolved=%d failed=%d pending=%d "
              "p50=%dns p99=%dns" % (f["raised"], f["resolved"], f["failed"],
                                     f["pending"],
                                     dev["fault-latency-ns"]["p50"],
                                     dev["fault-latency-ns"]["p99"]))
        if f["raised"] == 0:
            failures.append("vpri-blk took no faults")
        if f["failed"] != 0:
            failures.append("%d faults failed" % f["failed"])
        if f["resolved"] + f["pending"] != f["raised"]:
            failures.append("faults lost: raised %d, resolved %d, pending %d"
                            % (f["raised"], f["resolved"], f["pending"]))
        if host["cpu-faults"] == 0:
            failures.append("no CPU faults: eviction had no effect")
        if iommu:
            iova = dev.get("iova")
            if not iova:
                failures.append("the device is not IOVA-indexed behind "
                                "intel-iommu")
            else:
                print("iova: translations=%d unmapped=%d refused=%d" % (
                    iova["translations"], iova["unmapped"],
                    iova["refused"]))
                if iova["unmapped"] == 0:
                    failures.append("no IOMMU unmaps reached the device")
                if iova["refused"] != 0:
                    failures.append("%d DMAs to IOVAs the guest had not "
                                    "mapped" % iova["refused"])

    for m in failures:
        print("FAIL: " + m)
    print("guest: %d passed, %d failed" % (0 if failures else 1,
                                           1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
