"""A writer killed with SIGKILL at random points loses nothing ``apply`` had returned.

The writer prints each event id after ``apply`` (or ``apply_many``) returns; the
test kills it after a random number of acknowledgements, then checks that every
acknowledged event is in the ledger and that the ledger still opens and works.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from replyguard.optout import OptOutLedger, StopMessaging

from .conftest import ROOT_SRC

WRITER = textwrap.dedent("""
    import sys
    from replyguard.optout import OptOutLedger, MarkDoNotEmail, Resume, StopMessaging
    url, prefix = sys.argv[1], sys.argv[2]
    ledger = OptOutLedger(url)
    print("ready", flush=True)
    i = 0
    while True:
        if i % 7 == 6:
            batch = [(f"bulk-{prefix}-{i}-{k}", MarkDoNotEmail(source="import", actor="job",
                      event_id=f"{prefix}-{i}-{k}")) for k in range(20)]
            for r in ledger.apply_many(batch):
                print(r.event_id, flush=True)
        else:
            contact = f"c-{i % 5}"
            if ledger.status(contact).value == "stopped":
                ev = Resume(actor="w", event_id=f"{prefix}-{i}")
            else:
                ev = StopMessaging(actor="w", reason="x", event_id=f"{prefix}-{i}")
            print(ledger.apply(contact, ev).event_id, flush=True)
        i += 1
""")


def _run_and_kill(url: str, prefix: str, acks_before_kill: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT_SRC, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, prefix], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        while len(acked) < acks_before_kill:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "writer died"
            acked.append(line.strip())
        time.sleep(random.uniform(0, 0.01))  # land somewhere inside the next transaction
        os.kill(proc.pid, signal.SIGKILL)
        # anything printed before the kill was acknowledged too
        acked += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return acked


def test_sigkill_at_random_points_loses_no_acknowledged_event(ledger_url, backend):
    OptOutLedger(ledger_url).close()
    rng = random.Random(7)
    acked: list[str] = []
    for round_ in range(4):
        acked += _run_and_kill(ledger_url, f"r{round_}", rng.randint(5, 150))
    assert len(acked) > 20
    with OptOutLedger(ledger_url) as ledger:
        contacts = {f"c-{i}" for i in range(5)}
        stored = {h.event_id for c in contacts for h in ledger.history(c)}
        bulk = [a for a in acked if a.count("-") == 2]
        for eid in bulk:
            prefix, i, k = eid.split("-")
            stored |= {h.event_id for h in ledger.history(f"bulk-{prefix}-{i}-{k}")}
        missing = [a for a in acked if a not in stored]
        assert not missing, f"{len(missing)} acknowledged events lost: {missing[:5]}"
        # the ledger still works after the kills, and its chain per contact is unbroken
        for c in contacts:
            history = ledger.history(c)
            for a, b in itertools.pairwise(history):
                assert b.previous is a.status
        ledger.apply("c-after", StopMessaging(actor="t", reason="after the crash"))
    if backend == "sqlite":
        con = sqlite3.connect(ledger_url)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
