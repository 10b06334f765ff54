# SPDX-License-Identifier: GPL-2.0-or-later
"""Run the iolab test guest under QEMU and collect its results.

Library behind tests/guest/run-guest (the command-line front end); test
scripts written in Python can use it directly::

    import sys; sys.path.insert(0, "tests/guest")
    from iolab_guest import GuestRun, find_guest

    kernel, initrd = find_guest()
    run = GuestRun(kernel=kernel, initrd=initrd, workloads=["blk-checksum"],
                   params={"blk_rounds": 2},
                   extra_args=["-drive", "if=none,id=d0,file=x.img,format=raw",
                               "-device", "virtio-blk-pci,drive=d0"],
                   qmp=True)
    run.start()
    print(run.qmp.hmp("info pci"))      # talk to QEMU while the guest runs
    result = run.wait()
    assert result.ok, result.summary()
    print(result.results["blk-checksum"]["match"])

The guest prints markers on its serial console (see docs/guest.rst):
``IOLAB-BEGIN name``, ``IOLAB-RESULT name key=value ...``,
``IOLAB-END name status=ok|fail``, ``IOLAB-DONE``.
"""

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from qmp import QMPClient, QMPError  # noqa: E402

DEFAULT_QEMU = os.path.join(REPO, "build", "qemu-system-x86_64")
BUILD_GUEST = os.path.join(REPO, "scripts", "build-guest")
CACHE_ROOT = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "qemu-iolab")

MARKER_RE = re.compile(r"IOLAB-(BOOTED|BEGIN|RESULT|LOG|END|DONE)\b ?(.*)$")


def log(msg):
    sys.stderr.write("run-guest: %s\n" % msg)
    sys.stderr.flush()


def parse_kv(text):
    """Parse ``key=value key2=value2`` into a dict (tokens without '=' are skipped)."""
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def find_guest(rebuild=False):
    """Return (kernel, initramfs) paths, building the guest if needed."""
    cmd = [BUILD_GUEST, "--print-paths"]
    if rebuild:
        cmd.append("--force")
    try:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise RuntimeError("scripts/build-guest failed: %s" % e) from e
    if len(out) != 2:
        raise RuntimeError("scripts/build-guest --print-paths printed %r" % out)
    return out[0], out[1]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FileServer:
    """Serve one file over HTTP on 127.0.0.1:<random port> (at /blob and
    /<basename>), in a background thread.  Only loopback: QEMU's user
    networking maps the guest's 10.0.2.2 to the host's 127.0.0.1.

    ``gate``, when given, is called once, on the first GET, before the
    response starts: the guest has sent its request and waits for the
    body, so a test can put the guest in the state it wants (evict its
    receive buffers, say) knowing exactly when the data will arrive.
    Later requests (retries) are not gated."""

    def __init__(self, path, url_path="/blob", gate=None):
        self.path = os.path.abspath(path)
        self.size = os.path.getsize(self.path)
        self.sha256 = sha256_file(self.path)
        self.requests = 0
        self.gate_error = None
        gate_lock = threading.Lock()
        paths = {url_path, "/" + os.path.basename(self.path)}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt, *args):  # keep the console clean
                pass

            def _head(self):
                if self.path.split("?")[0] not in paths:
                    self.send_error(404)
                    return False
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(server.size))
                self.end_headers()
                return True

            def do_HEAD(self):
                self._head()

            def do_GET(self):
                nonlocal gate
                with gate_lock:
                    g, gate = gate, None
                if g:
                    try:
                        g()
                    except Exception as e:  # noqa: BLE001 - reported by the test
                        server.gate_error = e
                if not self._head():
                    return
                server.requests += 1
                with open(server.path, "rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 16)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name="iolab-http", daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RunResult:
    """What a guest run produced."""

    def __init__(self):
        self.workloads = []        # requested names, in order
        self.results = {}          # name -> merged {key: value} of RESULT lines
        self.records = []          # [(name, {key: value})] every RESULT line
        self.status = {}           # name -> "ok" | "fail" (from IOLAB-END)
        self.end_info = {}         # name -> {key: value} of the END line
        self.logs = []             # (name, text) of IOLAB-LOG lines
        self.begun = []            # names seen in IOLAB-BEGIN
        self.booted = False
        self.done = False          # IOLAB-DONE seen
        self.hang = False          # timeout: QEMU was killed
        self.exit_code = None      # QEMU exit status
        self.accel = None
        self.boot_seconds = None   # QEMU start -> IOLAB-BOOTED
        self.seconds = None        # QEMU start -> QEMU exit
        self.serial = []           # every serial line
        self.qemu_stderr = []      # QEMU's own messages
        self.error = None          # runner-level problem (text)

    @property
    def ok(self):
        return (self.done and not self.hang and self.error is None
                and bool(self.workloads)
                and all(self.status.get(w) == "ok" for w in self.workloads))

    def current(self):
        """Workload that had begun but not ended (for hang reports)."""
        for w in reversed(self.begun):
            if w not in self.status:
                return w
        return None

    def summary(self):
        lines = []
        for w in self.workloads:
            st = self.status.get(w, "missing")
            kv = " ".join("%s=%s" % kv for kv in self.results.get(w, {}).items())
            lines.append("workload %s: %s%s" % (w, st, (" (" + kv + ")") if kv else ""))
        if self.hang:
            cur = self.current()
            lines.append("HANG: timeout%s; QEMU killed" %
                         (" during workload %s" % cur if cur else
                          (" before boot finished" if not self.booted else "")))
        elif not self.done and self.error is None:
            lines.append("guest did not finish (no IOLAB-DONE); QEMU exit code %s"
                         % self.exit_code)
        if self.error:
            lines.append("error: %s" % self.error)
        lines.append("accel=%s boot=%ss total=%ss" % (
            self.accel,
            "%.2f" % self.boot_seconds if self.boot_seconds is not None else "?",
            "%.2f" % self.seconds if self.seconds is not None else "?"))
        return "\n".join(lines)

    def to_json(self):
        return {
            "ok": self.ok, "workloads": self.workloads, "status": self.status,
            "results": self.results,
            "records": [{"workload": n, **kv} for n, kv in self.records],
            "done": self.done, "hang": self.hang, "exit_code": self.exit_code,
            "accel": self.accel, "boot_seconds": self.boot_seconds,
            "seconds": self.seconds, "error": self.error,
        }


class GuestRun:
    """One QEMU run of the test guest.

    ``start()`` launches QEMU (and connects QMP if ``qmp=True``, available
    as ``self.qmp``; ``qmp_path`` alone only creates the socket, for another
    process to connect to); ``wait()`` waits for the guest to finish, enforcing
    ``timeout`` (seconds since start), and returns a :class:`RunResult`.
    ``run()`` does both.
    """

    def __init__(self, kernel, initrd, workloads, params=None, extra_args=(),
                 qemu=None, accel="tcg", memory=512, smp=1, timeout=300,
                 qmp=False, qmp_path=None, serial_log=None, echo=True,
                 echo_prefix="", append="", machine="q35"):
        self.qemu = qemu or os.environ.get("IOLAB_QEMU") or DEFAULT_QEMU
        self.kernel = kernel
        self.initrd = initrd
        self.workloads = list(workloads)
        self.params = dict(params or {})
        self.extra_args = list(extra_args)
        self.accel = accel
        self.memory = memory
        self.smp = smp
        self.timeout = timeout
        self.want_qmp = qmp
        self.serial_log = serial_log
        self.echo = echo
        self.echo_prefix = echo_prefix
        self.append = append
        self.machine = machine
        self.qmp = None
        self.qmp_path = qmp_path
        self.proc = None
        self.result = RunResult()
        self.result.workloads = list(self.workloads)
        self.result.accel = accel
        self._tmpdir = None
        self._t0 = None
        self._threads = []
        self._done_evt = threading.Event()
        self._log_f = None

    # -- command line -----------------------------------------------------

    def kernel_cmdline(self):
        parts = ["console=ttyS0", "quiet", "panic=-1"]
        if self.workloads:
            parts.append("iolab.workload=" + ",".join(self.workloads))
        for k, v in self.params.items():
            v = str(v)
            if not re.match(r"^[A-Za-z0-9_]+$", k) or re.search(r"\s", v):
                raise ValueError("bad guest parameter %s=%r" % (k, v))
            parts.append("iolab.%s=%s" % (k, v))
        if self.append:
            parts.append(self.append)
        return " ".join(parts)

    def command(self):
        cmd = [self.qemu, "-M", self.machine, "-m", str(self.memory),
               "-smp", str(self.smp), "-nodefaults", "-display", "none",
               "-serial", "stdio", "-no-reboot",
               "-accel", self.accel]
        if self.accel == "kvm":
            cmd += ["-cpu", "host"]
        cmd += ["-kernel", self.kernel, "-initrd", self.initrd,
                "-append", self.kernel_cmdline()]
        if self.qmp_path:
            cmd += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        return cmd + self.extra_args

    # -- running ----------------------------------------------------------

    def start(self):
        if not os.path.exists(self.qemu):
            raise FileNotFoundError("QEMU binary not found: %s (build it first, "
                                    "or pass --qemu / set IOLAB_QEMU)" % self.qemu)
        self._tmpdir = tempfile.mkdtemp(prefix="iolab-guest-")
        if self.want_qmp and not self.qmp_path:
            self.qmp_path = os.path.join(self._tmpdir, "qmp.sock")
        if self.serial_log:
            self._log_f = open(self.serial_log, "w")
        cmd = self.command()
        self.result.command = cmd
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     start_new_session=True)
        for target, stream in ((self._read_serial, self.proc.stdout),
                               (self._read_stderr, self.proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True)
            t.start()
            self._threads.append(t)
        if self.want_qmp:
            try:
                self.qmp = QMPClient(self.qmp_path, connect_timeout=10)
            except QMPError as e:
                self.result.error = "QMP: %s" % e
                self.kill()
                raise
        return self

    def _read_serial(self, stream):
        r = self.result
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
            r.serial.append(line)
            if self._log_f:
                self._log_f.write(line + "\n")
                self._log_f.flush()
            m = MARKER_RE.search(line)
            if self.echo:
                sys.stdout.write(self.echo_prefix + line + "\n")
                sys.stdout.flush()
            if not m:
                continue
            kind, rest = m.group(1), m.group(2).strip()
            if kind == "BOOTED":
                r.booted = True
                r.boot_seconds = time.monotonic() - self._t0
                continue
            if kind == "DONE":
                r.done = True
                self._done_evt.set()
                continue
            name, _, tail = rest.partition(" ")
            if kind == "BEGIN":
                r.begun.append(name)
            elif kind == "RESULT":
                kv = parse_kv(tail)
                r.records.append((name, kv))
                r.results.setdefault(name, {}).update(kv)
            elif kind == "LOG":
                r.logs.append((name, tail))
            elif kind == "END":
                kv = parse_kv(tail)
                r.end_info[name] = kv
                r.status[name] = "ok" if kv.get("status") == "ok" else "fail"

    def _read_stderr(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.result.qemu_stderr.append(line)
            if self.echo:
                sys.stderr.write("qemu: %s\n" % line)
                sys.stderr.flush()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait(self, timeout=None):
        """Wait for QEMU to exit (or the timeout); return the RunResult."""
        r = self.result
        deadline = self._t0 + (timeout if timeout is not None else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                r.hang = True
                self.kill()
                break
            try:
                self.proc.wait(min(left, 0.5))
                break
            except subprocess.TimeoutExpired:
                pass
            # After IOLAB-DONE the guest powers off; don't wait forever.
            if self._done_evt.is_set():
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    log("guest printed IOLAB-DONE but QEMU did not exit; killing it")
                    self.kill()
                break
        r.exit_code = self.proc.returncode
        r.seconds = time.monotonic() - self._t0
        for t in self._threads:
            t.join(5)
        self.close()
        if r.exit_code not in (0, None) and not r.hang and not r.done and r.error is None:
            msg = "; ".join(r.qemu_stderr[-3:]) or "no message"
            r.error = "QEMU exited with status %s: %s" % (r.exit_code, msg)
        return r

    def close(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self._log_f:
            self._log_f.close()
            self._log_f = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def run(self):
        self.start()
        return self.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        self.close()


# -- accelerator probe ------------------------------------------------------

def _probe_key(qemu):
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = "?"
    st = os.stat(qemu)
    return "%s:%s:%d:%d" % (boot, os.path.realpath(qemu), st.st_mtime_ns, st.st_size)


def probe_accel(qemu, kernel, initrd, timeout=10, verbose=True):
    """Return "kvm" if a KVM guest really boots here, else "tcg".

    /dev/kvm may exist while KVM guests hang, so boot the hello workload
    under KVM with a short timeout.  The answer is cached per host boot and
    QEMU binary in ~/.cache/qemu-iolab/accel-probe.json.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    cache_file = os.path.join(CACHE_ROOT, "accel-probe.json")
    key = _probe_key(qemu)
    try:
        with open(cache_file) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    if cache.get(key) in ("kvm", "tcg"):
        return cache[key]
    if verbose:
        log("probing KVM (timeout %ss)..." % timeout)
    run = GuestRun(kernel=kernel, initrd=initrd, workloads=["hello"], qemu=qemu,
                   accel="kvm", timeout=timeout, echo=False)
    try:
        res = run.run()
        accel = "kvm" if res.ok else "tcg"
    except Exception:  # noqa: BLE001 - any failure means "no KVM"
        accel = "tcg"
    finally:
        run.kill()
        run.close()
    if verbose:
        log("KVM %s; using %s" % ("works" if accel == "kvm" else "does not work", accel))
    try:
        os.makedirs(CACHE_ROOT, exist_ok=True)
        cache = {key: accel}   # keep only the current entry
        tmp = cache_file + ".%d" % os.getpid()
        with open(tmp, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass
    return accel


def resolve_accel(requested, qemu, kernel, initrd, verbose=True):
    requested = requested or os.environ.get("IOLAB_ACCEL") or "auto"
    if requested == "auto":
        return probe_accel(qemu, kernel, initrd, verbose=verbose)
    return requested


def check_expectations(result, expects):
    """expects: list of "workload.key=value"; return list of failure texts."""
    failures = []
    for e in expects:
        lhs, _, want = e.partition("=")
        name, _, key = lhs.partition(".")
        got = result.results.get(name, {}).get(key)
        if got != want:
            failures.append("expected %s.%s=%s, got %s" % (name, key, want, got))
    return failures


def main(argv=None):
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]

    ap = argparse.ArgumentParser(
        prog="run-guest",
        description="Boot the iolab test guest under QEMU, run workloads, "
                    "collect IOLAB-RESULT lines. Extra QEMU arguments "
                    "(devices) go after '--'.",
        epilog="Exit status: 0 all workloads ok; 1 a workload failed or an "
               "--expect did not hold; 2 usage; 3 timeout (hang); 4 QEMU or "
               "guest setup problem.")
    ap.add_argument("-w", "--workload", action="append", default=[],
                    help="workload to run (repeatable, or comma separated)")
    ap.add_argument("-p", "--param", action="append", default=[],
                    metavar="KEY=VALUE", help="guest parameter iolab.KEY=VALUE")
    ap.add_argument("--qemu", default=None,
                    help="QEMU binary (default $IOLAB_QEMU or build/qemu-system-x86_64)")
    ap.add_argument("--kernel", help="guest kernel (default: from scripts/build-guest)")
    ap.add_argument("--initrd", help="guest initramfs (default: from scripts/build-guest)")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"], default=None,
                    help="accelerator (default $IOLAB_ACCEL or auto: probe KVM, "
                         "fall back to TCG)")
    ap.add_argument("-m", "--memory", type=int, default=512, help="guest RAM in MiB")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds before QEMU is killed and the run reported "
                         "as a hang (default 300)")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--qmp", metavar="PATH",
                    help="add a QMP socket at PATH (server, wait=off) for "
                         "another process to use during the run")
    ap.add_argument("--serve-file", metavar="FILE",
                    help="serve FILE over HTTP on 127.0.0.1 (guest: "
                         "http://10.0.2.2:PORT/blob); sets iolab.http_port and "
                         "iolab.http_sha256")
    ap.add_argument("--log", metavar="FILE", help="write the serial console here")
    ap.add_argument("--json", metavar="FILE",
                    help="write the results as JSON ('-' for stdout)")
    ap.add_argument("--expect", action="append", default=[],
                    metavar="WORKLOAD.KEY=VALUE",
                    help="require a result value (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="do not echo the serial console")
    ap.add_argument("--shell", action="store_true",
                    help="interactive: boot without workloads and attach the "
                         "console to this terminal (Ctrl-A X quits)")
    ap.add_argument("--print-cmd", action="store_true",
                    help="print the QEMU command line and exit")
    args = ap.parse_args(argv)

    workloads = [w for ws in args.workload for w in ws.split(",") if w]
    params = {}
    for p in args.param:
        if "=" not in p:
            ap.error("--param wants KEY=VALUE, got %r" % p)
        k, v = p.split("=", 1)
        params[k[len("iolab."):] if k.startswith("iolab.") else k] = v
    if not workloads and not args.shell and not args.print_cmd:
        ap.error("no --workload given (use --shell for an interactive guest)")

    qemu = args.qemu or os.environ.get("IOLAB_QEMU") or DEFAULT_QEMU
    if not os.path.exists(qemu):
        log("QEMU binary not found: %s (build it, or use --qemu/IOLAB_QEMU)" % qemu)
        return 4
    kernel, initrd = args.kernel, args.initrd
    if not kernel or not initrd:
        try:
            k, i = find_guest()
        except RuntimeError as e:
            log(str(e))
            return 4
        kernel, initrd = kernel or k, initrd or i

    accel = resolve_accel(args.accel, qemu, kernel, initrd, verbose=not args.quiet)

    server = None
    if args.serve_file:
        server = FileServer(args.serve_file)
        params.setdefault("http_port", server.port)
        params.setdefault("http_sha256", server.sha256)

    run = GuestRun(kernel=kernel, initrd=initrd, workloads=workloads,
                   params=params, extra_args=extra, qemu=qemu, accel=accel,
                   memory=args.memory, smp=args.smp, timeout=args.timeout,
                   qmp_path=os.path.abspath(args.qmp) if args.qmp else None,
                   serial_log=args.log, echo=not args.quiet, append=args.append)

    if args.print_cmd or args.shell:
        if args.shell:
            run.workloads = []
        cmd = run.command()
        if args.shell:
            i = cmd.index("-serial")
            cmd[i + 1] = "mon:stdio"
        if args.print_cmd:
            print(" ".join(_shquote(c) for c in cmd))
            return 0
        os.execv(cmd[0], cmd)

    try:
        run.start()
        if run.qmp_path:
            log("QMP socket: %s" % run.qmp_path)
        res = run.wait()
    except (OSError, QMPError) as e:
        log("cannot run QEMU: %s" % e)
        run.kill()
        run.close()
        return 4
    except KeyboardInterrupt:
        run.kill()
        run.close()
        log("interrupted")
        return 130
    finally:
        if server:
            server.close()

    if args.quiet and not res.ok:
        for line in res.serial[-40:]:
            sys.stderr.write("serial: %s\n" % line)
    for line in res.summary().splitlines():
        log(line)
    failures = check_expectations(res, args.expect)
    for f in failures:
        log("FAIL: " + f)
    if args.json:
        data = json.dumps(res.to_json(), indent=2, sort_keys=True)
        if args.json == "-":
            print(data)
        else:
            with open(args.json, "w") as f:
                f.write(data + "\n")
    if res.hang:
        return 3
    if res.error and not res.done:
        return 4
    return 0 if res.ok and not failures else 1


def _shquote(s):
    if re.match(r"^[A-Za-z0-9_./=,:+-]+$", s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
