"""Several processes apply events to the same contacts at once: no update is lost.

4 processes x 500 events on 12 shared contacts. Afterwards the ledger must equal
a serial replay of its own audit trail through the pure core: every event is
there once, each contact's history is an unbroken chain, and the final status is
what ``advance`` gives when the events are replayed in the ledger's order.
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import timedelta

from replyguard.optout import (
    Consent,
    ContactStatus,
    InvalidTransition,
    MarkDoNotEmail,
    OptOutLedger,
    OutOfOffice,
    ReplyReceived,
    Resubscribe,
    Resume,
    StopMessaging,
    UnsubscribeClicked,
    advance,
)

from .conftest import T0, verdict

WORKERS = 4
EVENTS = 500
CONTACTS = [f"shared-{i}" for i in range(12)]
INTENTS = ["interested", "other", "out_of_office", "not_interested", "wrong_contact", "do_not_email"]


def make_events(worker: int) -> list[tuple[str, object]]:
    """The events worker ``worker`` applies: deterministic, so the test can rebuild them."""
    rng = random.Random(1000 + worker)
    out = []
    for i in range(EVENTS):
        eid = f"w{worker}-{i}"
        at = T0 + timedelta(seconds=i)
        roll = rng.random()
        if roll < 0.35:
            ev: object = Resume(actor="rep", event_id=eid, at=at)
        elif roll < 0.6:
            ev = Resubscribe(Consent("double_opt_in", f"conf-{eid}", at), event_id=eid, at=at)
        elif roll < 0.8:
            # mostly harmless replies, a few opt-outs
            intent = rng.choices(INTENTS, weights=[5, 5, 3, 3, 1, 1])[0]
            ev = ReplyReceived(verdict(intent), message_id=f"<{eid}@x>", event_id=eid, at=at)
        elif roll < 0.87:
            ev = StopMessaging(actor="rep", reason="r", event_id=eid, at=at)
        elif roll < 0.92:
            ev = OutOfOffice(until=at + timedelta(days=3), event_id=eid, at=at)
        elif roll < 0.96:
            ev = UnsubscribeClicked(event_id=eid, at=at)
        else:
            ev = MarkDoNotEmail(source="rep", actor="rep", event_id=eid, at=at)
        out.append((rng.choice(CONTACTS), ev))
    return out


def _worker(url: str, worker: int, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:
    applied, rejected = [], []
    ledger = OptOutLedger(url)
    barrier.wait()
    for contact_id, ev in make_events(worker):
        try:
            ledger.apply(contact_id, ev)  # type: ignore[arg-type]
            applied.append(ev.event_id)  # type: ignore[attr-defined]
        except InvalidTransition:
            rejected.append(ev.event_id)  # type: ignore[attr-defined]
    ledger.close()
    out.put((worker, applied, rejected))


def test_four_processes_applying_500_events_each_lose_no_update(ledger_url):
    OptOutLedger(ledger_url).close()  # create the schema once, before the race
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(WORKERS)
    queue: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(ledger_url, w, barrier, queue)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    applied = {eid for _, a, _ in results for eid in a}
    rejected = {eid for _, _, r in results for eid in r}
    assert len(applied) + len(rejected) == WORKERS * EVENTS
    assert applied.isdisjoint(rejected)
    events = {ev.event_id: ev for w in range(WORKERS) for _, ev in make_events(w)}  # type: ignore[attr-defined]

    with OptOutLedger(ledger_url) as ledger:
        seen = set()
        for contact_id in CONTACTS:
            history = ledger.history(contact_id)
            status = ContactStatus.ACTIVE
            for entry in history:
                # the serial replay of the ledger's own order, through the pure core
                assert entry.previous is status, (contact_id, entry.seq)
                status = advance(status, events[entry.event_id]).new_status  # type: ignore[arg-type]
                assert entry.status is status, (contact_id, entry.seq)
                seen.add(entry.event_id)
            assert [h.seq for h in history] == sorted(h.seq for h in history)
            contact = ledger.contact(contact_id)
            assert contact.status is status
            assert contact.events == len(history)
        assert seen == applied  # every acknowledged event is there, once; no rejected one is
        assert ledger.counts()["events"] == len(applied)
