#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""make check-migrate: scripts/migrate-experiment end to end.

* The --quick scale of one experiment per device family (vpri-blk,
  nvme-export, vdpa-mgmt): every run migrates (nvme-export also with its
  namespace moved by storage-migration=on between separate images, the
  unmodified Linux nvme driver writing across it) (upstream nvme: refused
  with its blocker message, as expected), the guest's data verified, the
  CSV has every column the runner defines and the ones docs/migration.rst
  explains, and every figure a run must have is filled in.
* Bad input: an unknown experiment, a device absent from the build (a
  QEMU whose '-device help' leaves nvme-export out), a destination that
  fails to start: each gives a clear error and a non-zero exit, and no
  process the runner started is left running (its --pid-file lists them).
* Postcopy of vpri-blk, switched early with a slow background stream,
  without and with postcopy-preempt (--postcopy-preempt-both), and of
  vpri-nic with postcopy-preempt: the guest's data verified on the
  destination, the device faulted on pages not yet received (query-vpri's
  postcopy section, dst_pc_* columns) and every fault resolved, none
  failed; the vCPUs' page requests, and the device's over the same
  span, were timed from the trace events.

Prints 'migrate: N passed, N failed'.
"""

import csv
import importlib.machinery
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))
RUNNER = os.path.join(SRC, "scripts", "migrate-experiment")
DOC = os.path.join(SRC, "docs", "migration.rst")
QEMU = os.environ.get("IOLAB_QEMU") or os.path.join(SRC, "build",
                                                    "qemu-system-x86_64")

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("FAIL - " + what)
    sys.stdout.flush()
    return ok


def runner_columns():
    loader = importlib.machinery.SourceFileLoader("migrate_experiment",
                                                  RUNNER)
    spec = importlib.util.spec_from_loader("migrate_experiment", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod.COLUMNS


def doc_columns():
    """The column names docs/migration.rst explains (``name`` entries of
    its column list)."""
    with open(DOC) as f:
        text = f.read()
    part = text.split("Columns\n=======", 1)[-1]
    part = re.split(r"\n[A-Z][^\n]*\n=+\n", part, 1)[0]
    return re.findall(r"^``([a-z0-9_]+)``", part, re.M)


def run(args, timeout=900):
    t0 = time.monotonic()
    p = subprocess.run([RUNNER] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=timeout)
    print("\n".join("  | " + l for l in p.stdout.splitlines()[-25:]))
    print("  (exit %d, %.0f s)" % (p.returncode, time.monotonic() - t0))
    return p


def left_running(pid_file):
    """Processes still alive that the runner started: those @pid_file
    lists, and anything in their process groups (the runner starts each
    in its own session, so a QEMU that the qtest driver forked is in the
    driver's group).  Returns (alive, number of pids listed)."""
    try:
        with open(pid_file) as f:
            pids = {int(l) for l in f if l.strip()}
    except OSError:
        return [], 0
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8",
                                                           "replace")
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if state != "Z" and (int(entry) in pids or pgrp in pids):
            alive.append((int(entry), cmd[:80]))
    return alive, len(pids)


def read_csv(path):
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return r.fieldnames or [], list(r)


def test_quick(tmp, columns, documented):
    for exp in ("vpri-blk", "nvme-export", "vdpa-mgmt"):
        out = os.path.join(tmp, "quick")
        pid_file = os.path.join(tmp, "pids-" + exp)
        p = run(["--quick", "--out", out, "--pid-file", pid_file, exp])
        check(p.returncode == 0, "%s --quick exits 0" % exp)
        header, rows = read_csv(os.path.join(out, exp, "results.csv"))
        check(header == columns, "%s: the CSV has every column, in order"
              % exp)
        missing = [c for c in documented if c not in header]
        check(not missing, "%s: the CSV has every column docs/migration.rst "
              "explains%s" % (exp, " (missing %s)" % missing if missing
                              else ""))
        check(len(rows) >= 2, "%s: one row per run (%d)" % (exp, len(rows)))
        for r in rows:
            name = "%s %s" % (exp, r["variant"])
            if r["variant"] == "nvme (upstream)":
                check(r["status"] == "blocked" and
                      "nvme" in r["error"].lower(),
                      "%s: refused with the blocker message (%r)"
                      % (name, r["error"]))
                check(r["guest_verified"] == "yes",
                      "%s: the guest's data verified on the source" % name)
                continue
            check(r["status"] == "ok", "%s: status ok (%s %s)"
                  % (name, r["status"], r["error"]))
            check(r["guest_verified"] == "yes" and
                  r["guest_finished_on"] == "dst",
                  "%s: the guest's data verified on the destination" % name)
            need = ["total_time_ms", "downtime_ms", "setup_time_ms",
                    "ram_transferred_bytes", "src_rss_peak_mib",
                    "dst_rss_end_mib", "src_devices", "dst_devices"]
            if exp != "vdpa-mgmt":
                need += ["guest_max_stall_ms", "guest_ops"]
            empty = [c for c in need if r[c] == ""]
            check(not empty, "%s: figures filled in%s" % (
                name, " (empty: %s)" % empty if empty else ""))
            if r["storage"] == "device":
                sent = int(r["storage_bytes"] or -1)
                moved = int(r["storage_allocated_bytes"] or 0) + \
                    int(r["storage_changed_bytes"] or 0)
                check(0 < sent <= moved,
                      "%s: the device sent %d bytes of its disk, no more "
                      "than allocated plus changed (%d): holes never sent"
                      % (name, sent, moved))
                check(sent < int(r["disk_mib"]) * 1024 * 1024,
                      "%s: less than the whole disk" % name)
            if exp == "vpri-blk" and r["variant"].startswith("vpri-blk"):
                check(r["src_faults_failed"] == "0" and
                      r["dst_faults_failed"] == "0",
                      "%s: no device fault failed" % name)
                if r["evict_percent"] != "0":
                    check(int(r["src_evicted_pages"] or 0) > 0 and
                          int(r["dst_evicted_pages"] or 0) > 0,
                          "%s: the host evicted on both sides (%s, %s pages)"
                          % (name, r["src_evicted_pages"],
                             r["dst_evicted_pages"]))
        check(os.path.exists(os.path.join(out, exp, exp + ".png")),
              "%s: plot written" % exp)
        alive, n = left_running(pid_file)
        check(n > 0 and not alive, "%s: none of the %d processes started is "
              "left running %s" % (exp, n, alive or ""))


def test_bad_input(tmp):
    out = os.path.join(tmp, "bad")
    pid_file = os.path.join(tmp, "pids-unknown")
    p = run(["--out", out, "--pid-file", pid_file, "no-such-experiment"])
    check(p.returncode == 2 and
          "unknown experiment no-such-experiment" in p.stdout and
          "vpri-blk" in p.stdout,
          "an unknown experiment: exit 2, named, with the list")
    check(left_running(pid_file) == ([], 0),
          "an unknown experiment starts nothing")

    # A QEMU build without nvme-export: the same binary, but its
    # '-device help' leaves the device out
    fake = os.path.join(tmp, "qemu-without-nvme-export")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\n"
                "case \" $* \" in *' -device help '*)\n"
                "    \"%s\" \"$@\" | grep -v '\"nvme-export\"'; exit 0;;\n"
                "esac\n"
                "exec \"%s\" \"$@\"\n" % (QEMU, QEMU))
    os.chmod(fake, 0o755)
    pid_file = os.path.join(tmp, "pids-absent")
    p = run(["--quick", "--qemu", fake, "--out", out, "--pid-file",
             pid_file, "nvme-export"])
    check(p.returncode == 2 and "device nvme-export is not in this QEMU "
          "build" in p.stdout,
          "a device absent from the build: exit 2 and named")
    check(left_running(pid_file) == ([], 0),
          "a device absent from the build starts nothing")

    pid_file = os.path.join(tmp, "pids-dst")
    p = run(["--quick", "--out", out, "--pid-file", pid_file,
             "--dst-extra", "-device no-such-device-model", "storage"])
    header, rows = read_csv(os.path.join(out, "storage", "results.csv"))
    check(p.returncode == 1 and rows and rows[0]["status"] == "failed" and
          "destination QEMU failed to start" in rows[0]["error"] and
          "no-such-device-model" in rows[0]["error"],
          "a destination that fails to start: exit 1, the run flagged "
          "failed with QEMU's message (%r)" % (rows[0]["error"] if rows
                                               else None))
    check(rows and rows[0]["guest_verified"] == "yes" and
          rows[0]["guest_finished_on"] == "src",
          "a destination that fails to start: the guest finished and "
          "verified on the source")
    alive, n = left_running(pid_file)
    check(n >= 2 and not alive, "a destination that fails to start: none "
          "of the %d processes started is left running %s"
          % (n, alive or ""))


# Postcopy of vpri-blk: switch early (0.1 s in, while most of guest RAM is
# still on the source) and send the rest slowly (4 MiB/s), so that pages
# the device writes first after the switch-over (the used ring, the read
# buffer) are still missing on the destination for seconds: the device
# faults on them and requests them, it does not wait for the stream.
# The guest's reads land in a pool of pages it wrote before the migration
# (--read-pool-mib), so the device meets many pages not received yet.
POSTCOPY_ARGS = ["--postcopy", "--postcopy-after", "0.1",
                 "--max-postcopy-bandwidth", "4"]
POSTCOPY_RUNS = [
    ("vpri-blk", "vpri-blk/evict0",
     ["--postcopy-preempt-both", "--read-pool-mib", "16"],
     {"vpri-blk/evict0": "postcopy",
      "vpri-blk/evict0 +preempt": "postcopy-preempt"}),
    ("vpri-nic", "vpri-nic/evict0", ["--postcopy-preempt"],
     {"vpri-nic/evict0": "postcopy-preempt"}),
]


def test_postcopy(tmp, columns):
    t0 = time.monotonic()
    for exp, variant, extra, modes in POSTCOPY_RUNS:
        check_postcopy_run(tmp, columns, exp, variant, extra, modes)
    took = time.monotonic() - t0
    check(took < 240, "the postcopy runs took %.0f s, under 4 minutes" % took)


def check_postcopy_run(tmp, columns, exp, variant, extra, modes):
    out = os.path.join(tmp, "postcopy")
    pid_file = os.path.join(tmp, "pids-postcopy-" + exp)
    p = run(["--quick", "--out", out, "--pid-file", pid_file,
             "--variant", variant] + POSTCOPY_ARGS + extra + [exp])
    check(p.returncode == 0, "%s --postcopy %s exits 0" % (exp,
                                                          " ".join(extra)))
    path = os.path.join(out, exp, "results.csv")
    if not check(os.path.exists(path), "postcopy %s: results.csv written"
                 % exp):
        return
    header, rows = read_csv(path)
    check(header == columns, "postcopy %s: the CSV has every column, in "
          "order" % exp)
    check(sorted(r["variant"] for r in rows) == sorted(modes),
          "postcopy %s: one run of each of %s (%s)"
          % (exp, sorted(modes), [r["variant"] for r in rows]))
    for r in rows:
        name = "postcopy %s" % r["variant"]
        want = modes.get(r["variant"])
        check(r["status"] == "ok" and r["mode"] == want,
              "%s: status ok, mode %s (%s %s %s)"
              % (name, want, r["status"], r["mode"], r["error"]))
        check(r["guest_verified"] == "yes" and r["guest_finished_on"] == "dst",
              "%s: the guest's data verified on the destination" % name)
        check(r["postcopy_blocktime_ms"] != "",
              "%s: the destination reports the vCPUs' blocktime" % name)
        check(int(r["dst_vcpu_requests"] or 0) > 0 and
              r["dst_vcpu_request_p99_us"] != "",
              "%s: the vCPUs' page requests timed (%s, p99 %s us)"
              % (name, r["dst_vcpu_requests"],
                 r["dst_vcpu_request_p99_us"]))
        check(int(r["dst_dev_requests"] or 0) > 0 and
              r["dst_dev_request_p99_us"] != "",
              "%s: the device's page requests timed over the vCPUs' span "
              "(%s, p99 %s us)" % (name, r["dst_dev_requests"],
                                   r["dst_dev_request_p99_us"]))
        faults = int(r["dst_pc_device_faults"] or 0)
        check(faults > 0 and int(r["dst_pc_device_requests"] or 0) > 0,
              "%s: the device faulted on missing pages and requested them "
              "(%d faults, %s requests)" % (name, faults,
                                            r["dst_pc_device_requests"]))
        check(r["dst_pc_failed"] == "0" and r["dst_pc_waiting"] == "0" and
              r["dst_faults_failed"] == "0",
              "%s: every device fault resolved, none failed (failed %s, "
              "waiting %s)" % (name, r["dst_pc_failed"], r["dst_pc_waiting"]))
        check(float(r["dst_pc_fault_p99_us"] or 0) > 0,
              "%s: device-fault latency recorded (p50 %s us, p99 %s us)"
              % (name, r["dst_pc_fault_p50_us"], r["dst_pc_fault_p99_us"]))
    alive, n = left_running(pid_file)
    check(n > 0 and not alive, "postcopy %s: none of the %d processes "
          "started is left running %s" % (exp, n, alive or ""))


def main():
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="iolab-mig-test-")
    try:
        columns = runner_columns()
        documented = doc_columns()
        check(len(documented) >= 40 and
              not [c for c in columns if c not in documented],
              "docs/migration.rst explains every CSV column")
        test_bad_input(tmp)
        t_quick = time.monotonic()
        test_quick(tmp, columns, documented)
        took = time.monotonic() - t_quick
        check(took < 300, "the quick runs of the three families took "
              "%.0f s, under 5 minutes" % took)
        test_postcopy(tmp, columns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("(%.0f s in all)" % (time.monotonic() - t0))
    print("migrate: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
