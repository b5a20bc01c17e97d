"""A Hypothesis state machine over the ledger (SQLite and PostgreSQL).

Laws checked after every step: the ledger agrees with a model folded through the
pure core; suppression is sticky; a do-not-email reply always wins; applying an
event again returns the first result and writes nothing; each applied event
has exactly one audit row; ``may_email`` agrees with the status.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from replyguard import Intent
from replyguard.optout import (
    SUPPRESSED,
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
    may_email,
)

from .conftest import T0, verdict

_ids = iter(range(10**9))


def _eid() -> str:
    return f"e{next(_ids)}"


replies = st.builds(
    lambda intent, dne, score: ReplyReceived(verdict(intent, dne=dne, score=score),
                                             message_id=f"<{uuid.uuid4().hex}@x>", at=T0),
    st.sampled_from(list(Intent)), st.one_of(st.none(), st.just(True)), st.floats(0, 1))
events = st.one_of(
    replies,
    st.builds(lambda: UnsubscribeClicked(at=T0, event_id=_eid())),
    st.builds(lambda: StopMessaging(actor="rep", reason="call", at=T0, event_id=_eid())),
    st.builds(lambda s: MarkDoNotEmail(source=s, actor="rep", at=T0, event_id=_eid()),
              st.sampled_from(["reply", "phone", "rep", "import"])),
    st.builds(lambda d: OutOfOffice(until=T0 + timedelta(days=d), at=T0, event_id=_eid()), st.integers(1, 30)),
    st.builds(lambda: Resume(actor="rep", at=T0, event_id=_eid())),
    st.builds(lambda: Resubscribe(Consent("double_opt_in", uuid.uuid4().hex, T0), at=T0, event_id=_eid())),
)


class LedgerMachine(RuleBasedStateMachine):
    applied = Bundle("applied")

    def __init__(self, ledger: OptOutLedger) -> None:
        super().__init__()
        self.ledger = ledger
        self.ns = uuid.uuid4().hex[:10]  # each run has its own contacts in the shared ledger
        self.model: dict[str, ContactStatus] = {}
        self.audit_rows: dict[str, int] = {}

    @initialize()
    def start(self) -> None:
        self.model.clear()

    def cid(self, name: str) -> str:
        return f"{self.ns}-{name}"

    @rule(target=applied, name=st.sampled_from("abc"), event=events)
    def apply(self, name, event):
        cid = self.cid(name)
        before = self.model.get(cid, ContactStatus.ACTIVE)
        try:
            want = advance(before, event).new_status
        except InvalidTransition:
            n = len(self.ledger.history(cid))
            try:
                self.ledger.apply(cid, event)
            except InvalidTransition:
                assert len(self.ledger.history(cid)) == n  # nothing written
                return (cid, event, None)
            raise AssertionError("the ledger accepted an event the table forbids") from None
        result = self.ledger.apply(cid, event)
        assert (result.previous, result.status) == (before, want)
        # the laws, independently of the table
        if isinstance(event, ReplyReceived) and event.verdict.do_not_email:
            assert result.status is ContactStatus.DO_NOT_EMAIL
        if before in SUPPRESSED and not isinstance(event, Resubscribe):
            assert result.status in SUPPRESSED
            if before is ContactStatus.DO_NOT_EMAIL:
                assert result.status is ContactStatus.DO_NOT_EMAIL
        self.model[cid] = result.status
        self.audit_rows[cid] = self.audit_rows.get(cid, 0) + 1
        return (cid, event, result)

    @rule(item=applied)
    def apply_again(self, item):
        cid, event, first = item
        if first is None:
            return
        n = len(self.ledger.history(cid))
        assert self.ledger.apply(cid, event) == first
        assert len(self.ledger.history(cid)) == n

    @invariant()
    def ledger_agrees_with_the_model(self):
        for cid, status in self.model.items():
            contact = self.ledger.contact(cid)
            assert contact.status is status
            assert self.ledger.may_email(cid) is may_email(status) is (status is ContactStatus.ACTIVE)
            history = self.ledger.history(cid)
            assert len(history) == contact.events == self.audit_rows[cid]
            assert len({h.event_id for h in history}) == len(history)
            if history:
                assert history[-1].status is status


def test_ledger_state_machine(open_ledger, backend):
    ledger = open_ledger()
    run_state_machine_as_test(
        lambda: LedgerMachine(ledger),
        settings=settings(max_examples=25 if backend == "sqlite" else 15, stateful_step_count=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
