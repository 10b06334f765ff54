# SPDX-License-Identifier: GPL-2.0-or-later
"""Minimal QMP (QEMU Machine Protocol) client, standard library only.

Used by tests/guest/run-guest and by test scripts that need to talk to the
emulator while a guest workload runs, e.g.::

    from qmp import QMPClient
    with QMPClient("/tmp/x/qmp.sock") as qmp:
        print(qmp.execute("query-status"))
        qmp.hmp("info pci")
        ev = qmp.wait_event("SHUTDOWN", timeout=30)
"""

import json
import socket
import time


class QMPError(Exception):
    """An error reply from QEMU, or a protocol/connection problem."""

    def __init__(self, message, reply=None):
        super().__init__(message)
        self.reply = reply


class QMPClient:
    """A synchronous QMP client over a UNIX socket.

    The socket must have been created by QEMU with e.g.
    ``-qmp unix:PATH,server=on,wait=off``.  Connecting retries until the
    socket appears (QEMU may still be starting) or ``connect_timeout`` runs
    out.  Asynchronous events received while waiting for a reply are kept in
    ``self.events`` (list of dicts) until consumed by :meth:`get_events` or
    :meth:`wait_event`.
    """

    def __init__(self, path, connect_timeout=10.0, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self.events = []
        self.greeting = None
        self._sock = None
        self._buf = b""
        self._next_id = 0
        self._connect(connect_timeout)

    # -- connection -------------------------------------------------------

    def _connect(self, connect_timeout):
        deadline = time.monotonic() + connect_timeout
        last_err = None
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except OSError as e:
                s.close()
                last_err = e
                if time.monotonic() >= deadline:
                    raise QMPError("cannot connect to QMP socket %s: %s"
                                   % (self.path, last_err)) from e
                time.sleep(0.05)
        self._sock = s
        self.greeting = self._recv(self.timeout)
        if "QMP" not in self.greeting:
            raise QMPError("unexpected QMP greeting: %r" % self.greeting)
        self.execute("qmp_capabilities")

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- low level --------------------------------------------------------

    def _recv(self, timeout):
        """Return the next JSON message (events included)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError("timeout waiting for QMP message")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout as e:
                raise QMPError("timeout waiting for QMP message") from e
            if not chunk:
                raise QMPError("QMP connection closed by QEMU")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        line = line.strip()
        if not line:
            return self._recv(max(0.0, deadline - time.monotonic()))
        try:
            return json.loads(line.decode("utf-8", "replace"))
        except ValueError as e:
            raise QMPError("bad QMP message: %r" % line) from e

    def _send(self, msg):
        self._sock.sendall(json.dumps(msg).encode() + b"\n")

    # -- API --------------------------------------------------------------

    def command(self, cmd, args=None, timeout=None):
        """Send a command; return the full reply dict (``return`` or ``error``)."""
        if self._sock is None:
            raise QMPError("QMP connection is closed")
        self._next_id += 1
        msg_id = "iolab-%d" % self._next_id
        msg = {"execute": cmd, "id": msg_id}
        if args:
            msg["arguments"] = args
        self._send(msg)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._recv(max(0.0, deadline - time.monotonic()))
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") == msg_id or "id" not in reply:
                return reply

    def execute(self, cmd, args=None, timeout=None, **kwargs):
        """Run a command and return its ``return`` value; raise QMPError on error.

        Arguments may be given as a dict or as keyword arguments (use the
        dict form for names containing ``-``).
        """
        if kwargs:
            args = dict(args or {}, **kwargs)
        reply = self.command(cmd, args, timeout)
        if "error" in reply:
            err = reply["error"]
            raise QMPError("%s: %s: %s" % (cmd, err.get("class"), err.get("desc")),
                           reply)
        return reply.get("return")

    def hmp(self, command_line, timeout=None):
        """Run a human monitor command and return its text output."""
        return self.execute("human-monitor-command",
                            {"command-line": command_line}, timeout)

    def get_events(self, wait=0.0):
        """Return (and forget) the events received so far.

        With ``wait`` > 0, read from the socket for up to that long first.
        """
        if wait > 0:
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    msg = self._recv(left)
                except QMPError:
                    break
                if "event" in msg:
                    self.events.append(msg)
        evs, self.events = self.events, []
        return evs

    def wait_event(self, name, timeout=30.0):
        """Wait for an event called ``name``; return it (other events are kept)."""
        for i, ev in enumerate(self.events):
            if ev.get("event") == name:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QMPError("timeout waiting for event %s" % name)
            msg = self._recv(left)
            if "event" not in msg:
                continue
            if msg["event"] == name:
                return msg
            self.events.append(msg)
