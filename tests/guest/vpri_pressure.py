# SPDX-License-Identifier: GPL-2.0-or-later
"""Memory pressure on a vpri-nic guest, and the checks of its counters,
shared by the vpri-nic real-guest tests.

:class:`StepReclaim` polls ``query-vpri`` of one QEMU and, once told to
start, evicts STEP percent more of guest RAM every PERIOD seconds until
the NIC's receive queue has taken RX_FAULTS faults (or MAX_ROUNDS rounds).
The reclaim clock walks RAM in address order and a Linux guest's receive
buffers sit wherever the page allocator put them, so steps find them
wherever they are (within 20 rounds, 2-3 s), and stopping once faults
come keeps the damage bounded: pages already evicted stay so until used,
and under ``rx-fault-policy=drop`` each receive fault costs the sender a
retransmission.  It needs a transfer that lasts a few seconds: a fetch
that ends before the sweep reaches the receive buffers sees no fault
(test-vpri-nic-overcommit.py's slirp fetch can take 1.5 s, so its server
holds the answer back until the host has evicted instead).

:func:`nic_failures` checks the NIC's part of ``query-vpri`` after a run.
"""

import threading

STEP = 5            # percent of guest RAM per round
RX_FAULTS = 10      # stop evicting once the receive queue took this many
PERIOD = 0.1        # seconds between rounds
MAX_ROUNDS = 100
MIN_ROUNDS = 2      # "again and again", even when the first round hits


class StepReclaim(threading.Thread):
    """Poll and evict one QEMU (a started iolab_guest.GuestRun with QMP).

    ``started()`` is called every PERIOD; eviction begins once it returns
    true.  ``first``, when given, is the percentage of the first round
    (100: every receive buffer the guest posted is evicted at once).  ``evict=False`` only keeps the latest ``query-vpri`` in
    ``self.last``.  ``self.rounds`` lists (pages evicted, receive faults
    before the round).  Call ``stop()`` (it joins) once the run is over.
    """

    def __init__(self, run, started=lambda: True, evict=True, host="vh0",
                 step=STEP, rx_faults=RX_FAULTS, period=PERIOD,
                 max_rounds=MAX_ROUNDS, first=None):
        super().__init__(daemon=True)
        self.run_ = run
        self.started = started
        self.evict = evict
        self.host = host
        self.step = step
        self.rx_faults = rx_faults
        self.period = period
        self.max_rounds = max_rounds
        self.first = first
        self.rounds = []
        self.last = None
        self._stop_evt = threading.Event()

    def run(self):
        qmp = self.run_.qmp
        while not self._stop_evt.wait(self.period):
            try:
                q = qmp.execute("query-vpri")
                self.last = q
                faults = q["devices"][0]["queue-faults"][0]
                n = len(self.rounds)
                if not self.evict or n >= self.max_rounds or \
                        (faults >= self.rx_faults and n >= MIN_ROUNDS) or \
                        not self.started():
                    continue
                r = qmp.execute("vpri-reclaim", host=self.host,
                                percent=self.first if n == 0 and self.first
                                else self.step)
                self.rounds.append((r["evicted"], faults))
            except Exception:  # noqa: BLE001 - QEMU exits when the guest is done
                return

    def stop(self):
        self._stop_evt.set()
        self.join()

    @property
    def evicted(self):
        return sum(e for e, _ in self.rounds)

    def summary(self):
        first = next((i for i, (_, f) in enumerate(self.rounds) if f), None)
        return ("%d rounds of %s%d%%, %d pages evicted, receive faults "
                "seen from round %s on" % (
                    len(self.rounds),
                    "%d%% then " % self.first if self.first else "",
                    self.step, self.evicted, first))

    def failures(self):
        if len(self.rounds) < 2 or self.evicted == 0:
            return ["the host did not evict memory repeatedly (%d rounds, "
                    "%d pages)" % (len(self.rounds), self.evicted)]
        return []


def nic_line(dev):
    f = dev["faults"]
    return ("rx=%d tx=%d dropped-on-fault=%d held=%d dropped-other=%d "
            "tx-stalls=%d queue-faults=%s | faults raised=%d resolved=%d "
            "failed=%d" % (dev["rx-packets"], dev["tx-packets"],
                           dev["rx-dropped-on-fault"], dev["rx-held"],
                           dev["rx-dropped-other"], dev["tx-stalls"],
                           dev["queue-faults"], f["raised"], f["resolved"],
                           f["failed"]))


def nic_failures(policy, dev):
    """What is wrong with a vpri-nic's counters after a run under pressure
    with rx-fault-policy=POLICY (hold: faults taken, nothing dropped on a
    fault, packets held; drop: packets dropped on faults, none held)."""
    failures = []
    f = dev["faults"]
    if dev["queue-faults"][0] == 0:
        failures.append("no fault on the receive queue")
    if f["failed"]:
        failures.append("%d faults failed" % f["failed"])
    if f["resolved"] + f["pending"] != f["raised"]:
        failures.append("faults lost: raised %d, resolved %d, pending %d"
                        % (f["raised"], f["resolved"], f["pending"]))
    if policy == "hold":
        if dev["rx-dropped-on-fault"] != 0:
            failures.append("hold dropped %d packets"
                            % dev["rx-dropped-on-fault"])
        if dev["rx-held"] == 0:
            failures.append("hold never held a packet")
    else:
        if dev["rx-dropped-on-fault"] == 0:
            failures.append("drop dropped nothing")
        if dev["rx-held"] != 0:
            failures.append("drop held %d packets" % dev["rx-held"])
    return failures
