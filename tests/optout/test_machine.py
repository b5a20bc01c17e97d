"""The pure core: the table, its laws, the events and their validation."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replyguard import Intent
from replyguard.errors import ReplyGuardError
from replyguard.optout import (
    DEFAULT_POLICY,
    EVENT_TYPES,
    SUPPRESSED,
    TABLE,
    Consent,
    ContactStatus,
    DneSource,
    Effect,
    EventKind,
    InvalidEventError,
    InvalidTransition,
    MarkDoNotEmail,
    MissingConsentError,
    NaiveDatetimeError,
    OutOfOffice,
    Policy,
    ReplyReceived,
    Resubscribe,
    ResubscribeForbidden,
    Resume,
    StopMessaging,
    TableError,
    Transition,
    UnknownNameError,
    UnknownStatusError,
    UnsubscribeClicked,
    advance,
    allowed_kinds,
    event_kind,
    may_email,
    table_markdown,
)
from replyguard.optout import machine as _machine

from .conftest import T0, verdict

A, P, S, U, D = (ContactStatus.ACTIVE, ContactStatus.PAUSED, ContactStatus.STOPPED,
                 ContactStatus.UNSUBSCRIBED, ContactStatus.DO_NOT_EMAIL)
CONSENT = Consent("double_opt_in", "confirm-msg-1", T0)

#: One event of each kind (replies: one per intent).
SAMPLES = {
    EventKind.REPLY_DO_NOT_EMAIL: ReplyReceived(verdict("do_not_email"), message_id="<1@x>", at=T0),
    EventKind.REPLY_NOT_INTERESTED: ReplyReceived(verdict("not_interested"), message_id="<2@x>", at=T0),
    EventKind.REPLY_OUT_OF_OFFICE: ReplyReceived(verdict("out_of_office"), message_id="<3@x>", at=T0),
    EventKind.REPLY_WRONG_CONTACT: ReplyReceived(verdict("wrong_contact"), message_id="<4@x>", at=T0),
    EventKind.REPLY_INTERESTED: ReplyReceived(verdict("interested"), message_id="<5@x>", at=T0),
    EventKind.REPLY_OTHER: ReplyReceived(verdict("other"), message_id="<6@x>", at=T0),
    EventKind.UNSUBSCRIBE_CLICKED: UnsubscribeClicked(campaign="spring", at=T0),
    EventKind.STOP_MESSAGING: StopMessaging(actor="ana", reason="asked on a call", at=T0),
    EventKind.MARK_DO_NOT_EMAIL: MarkDoNotEmail(source="phone", actor="ana", at=T0),
    EventKind.OUT_OF_OFFICE: OutOfOffice(until=T0 + timedelta(days=7), at=T0),
    EventKind.RESUME: Resume(actor="ana", at=T0),
    EventKind.RESUBSCRIBE: Resubscribe(CONSENT, at=T0),
}


def expected(status: ContactStatus, kind: EventKind) -> ContactStatus | None:
    """The intended behaviour, written independently of the table (None: invalid)."""
    if kind in (EventKind.REPLY_DO_NOT_EMAIL, EventKind.MARK_DO_NOT_EMAIL):
        return D  # a do-not-email request always wins
    if kind is EventKind.RESUBSCRIBE:
        return A if status in (U, D) else None
    if kind is EventKind.RESUME:
        return A if status in (P, S) else None
    if status in (U, D):
        return status  # sticky: nothing else moves a suppressed contact
    if kind is EventKind.UNSUBSCRIBE_CLICKED:
        return U
    if status is S:
        return S  # only a rep's resume ends a stop
    if kind in (EventKind.REPLY_NOT_INTERESTED, EventKind.REPLY_WRONG_CONTACT, EventKind.STOP_MESSAGING):
        return S
    if kind in (EventKind.REPLY_OUT_OF_OFFICE, EventKind.OUT_OF_OFFICE):
        return P
    if kind is EventKind.REPLY_INTERESTED:
        return A
    return status  # reply_other


def test_every_sample_takes_its_kind():
    assert set(SAMPLES) == set(EventKind)
    for kind, ev in SAMPLES.items():
        assert event_kind(ev) is kind


@pytest.mark.parametrize("status", list(ContactStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
def test_exhaustive_status_by_event_table(status, kind):
    want = expected(status, kind)
    ev = SAMPLES[kind]
    if want is None:
        assert TABLE[status, kind] is None
        with pytest.raises(InvalidTransition) as err:
            advance(status, ev)
        assert err.value.status is status and err.value.event is ev
        assert status.value in str(err.value) and kind.value in str(err.value)
        return
    t = advance(status, ev)
    assert t == TABLE[status, kind]
    assert (t.previous, t.new_status) == (status, want)
    # effects: a change syncs; entering an alerting status alerts; a resubscribe alerts
    assert (Effect.SYNC in t.effects) == (want is not status)
    assert (Effect.ALERT_DO_NOT_EMAIL in t.effects) == (want is D and status is not D)
    assert (Effect.ALERT_UNSUBSCRIBED in t.effects) == (want is U and status is not U)
    assert (Effect.ALERT_STOPPED in t.effects) == (want is S and status is not S)
    assert (Effect.ALERT_RESUBSCRIBED in t.effects) == (kind is EventKind.RESUBSCRIBE)


def test_table_is_total_and_names_the_same_cells_as_the_grid():
    assert len(TABLE) == len(ContactStatus) * len(EventKind)
    assert all((s, k) in TABLE for s in ContactStatus for k in EventKind)


@given(intent=st.sampled_from(list(Intent)), score=st.floats(0, 1), review=st.booleans(),
       status=st.sampled_from(list(ContactStatus)))
def test_a_do_not_email_reply_always_wins(intent, score, review, status):
    v = verdict(intent, score=score, dne=True, needs_review=review)
    assert advance(status, ReplyReceived(v, message_id="<m@x>")).new_status is D


@given(intent=st.sampled_from([i for i in Intent if i is not Intent.DO_NOT_EMAIL]),
       score=st.floats(0, 1), status=st.sampled_from(sorted(SUPPRESSED)))
def test_no_reply_however_positive_reactivates_a_suppressed_contact(intent, score, status):
    t = advance(status, ReplyReceived(verdict(intent, score=score, dne=False), message_id="<m@x>"))
    assert t.new_status in SUPPRESSED
    assert not may_email(t.new_status)


def test_only_resubscribe_with_consent_leaves_suppression_and_policy_can_forbid_it():
    for status in SUPPRESSED:
        assert advance(status, Resubscribe(CONSENT)).new_status is A
        with pytest.raises(ResubscribeForbidden) as err:
            advance(status, Resubscribe(CONSENT), policy=Policy(allow_resubscribe=False))
        assert isinstance(err.value, InvalidTransition) and "allow_resubscribe=False" in str(err.value)
        with pytest.raises(InvalidTransition, match="sticky"):
            advance(status, Resume(actor="rep"))


def test_policy_can_keep_not_interested_and_wrong_contact_replies_from_stopping():
    policy = Policy(stop_on_not_interested=False, stop_on_wrong_contact=False)
    for kind in (EventKind.REPLY_NOT_INTERESTED, EventKind.REPLY_WRONG_CONTACT):
        ev = SAMPLES[kind]
        assert advance(A, ev).new_status is S
        assert event_kind(ev, policy) is EventKind.REPLY_OTHER
        assert advance(A, ev, policy=policy).new_status is A


def test_resubscribe_without_consent_raises_a_value_error_naming_the_value():
    for bad in (None, "yes", {"method": "x"}):
        with pytest.raises(MissingConsentError) as err:
            Resubscribe(bad)  # type: ignore[arg-type]
        assert isinstance(err.value, ValueError) and isinstance(err.value, ReplyGuardError)
        assert repr(bad)[:10] in str(err.value) and "Consent(" in str(err.value)
    with pytest.raises(MissingConsentError, match="reference"):
        Consent("double_opt_in", "  ", T0)


@pytest.mark.parametrize("make", [
    lambda at: StopMessaging(actor="a", reason="r", at=at),
    lambda at: UnsubscribeClicked(at=at),
    lambda at: OutOfOffice(until=at, at=T0),
    lambda at: Consent("form", "f-1", at),
    lambda at: ReplyReceived(verdict(), message_id="<m@x>", at=at),
])
def test_naive_datetimes_are_rejected(make):
    naive = datetime(2026, 1, 5, 9, 0)
    with pytest.raises(NaiveDatetimeError) as err:
        make(naive)
    assert isinstance(err.value, ValueError)
    assert "2026, 1, 5, 9, 0" in str(err.value) and "timezone" in str(err.value)


def test_unknown_status_names_the_value_and_the_allowed_ones():
    with pytest.raises(UnknownStatusError) as err:
        advance("gone", SAMPLES[EventKind.RESUME])
    assert isinstance(err.value, ValueError)
    assert "'gone'" in str(err.value) and all(s.value in str(err.value) for s in ContactStatus)
    with pytest.raises(UnknownStatusError):
        may_email("ACTIVE")


def test_an_event_of_the_wrong_type_names_the_allowed_types():
    for bad in ("unsubscribe", {"type": "resume"}, Intent.DO_NOT_EMAIL, verdict()):
        with pytest.raises(InvalidEventError) as err:
            advance(A, bad)  # type: ignore[arg-type]
        assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)
        assert all(cls.__name__ in str(err.value) for cls in EVENT_TYPES.values())
    with pytest.raises(InvalidEventError, match="Verdict"):
        ReplyReceived("Please remove me", message_id="<m@x>")  # type: ignore[arg-type]


def test_bad_fields_name_the_value_and_what_is_allowed():
    with pytest.raises(UnknownNameError) as err:
        MarkDoNotEmail(source="fax", actor="ana")  # type: ignore[arg-type]
    assert "'fax'" in str(err.value) and all(s.value in str(err.value) for s in DneSource)
    with pytest.raises(ValueError, match=r"StopMessaging.actor"):
        StopMessaging(actor="", reason="r")
    with pytest.raises(ValueError, match=r"Policy.allow_resubscribe"):
        Policy(allow_resubscribe="no")  # type: ignore[arg-type]


def test_may_email_only_when_active():
    assert [may_email(s) for s in ContactStatus] == [True, False, False, False, False]


def test_event_ids_default_to_the_message_id_for_replies_and_are_unique_otherwise():
    assert ReplyReceived(verdict(), message_id="<abc@x>").event_id == "reply:<abc@x>"
    assert StopMessaging(actor="a", reason="r").event_id != StopMessaging(actor="a", reason="r").event_id
    assert Resume(actor="a", event_id="mine").event_id == "mine"


def test_events_are_frozen_and_json_ready():
    ev = SAMPLES[EventKind.REPLY_DO_NOT_EMAIL]
    with pytest.raises(AttributeError):
        ev.message_id = "x"  # type: ignore[misc]
    d = ev.to_dict()
    assert d["type"] == "reply_received" and d["intent"] == "do_not_email" and d["at"] == T0.isoformat()
    assert SAMPLES[EventKind.RESUBSCRIBE].to_dict()["consent"]["reference"] == "confirm-msg-1"
    assert SAMPLES[EventKind.MARK_DO_NOT_EMAIL].to_dict()["source"] == "phone"


def test_reply_evidence_keeps_intent_score_rule_ids_and_an_excerpt():
    v = verdict("do_not_email", score=0.91, text="Please remove me. " * 40, rules=("en.remove_me", "en.unsub"))
    ev = ReplyReceived(v, message_id="<m@x>").evidence()
    assert ev["intent"] == "do_not_email" and ev["score"] == 0.91
    assert ev["rule_ids"] == ["en.remove_me", "en.unsub"]
    assert ev["excerpt"] == v.reply_text[:_machine.EXCERPT_CHARS]
    assert ev["model_version"] == "test-model" and ev["message_id"] == "<m@x>"


def test_allowed_kinds_lists_the_valid_rows():
    assert EventKind.RESUME not in allowed_kinds(A)
    assert EventKind.RESUBSCRIBE in allowed_kinds("do_not_email")


def test_table_validation_rejects_a_table_that_breaks_a_law():
    good = dict(TABLE)
    _machine._validate(good)
    broken = dict(good)
    broken[U, EventKind.REPLY_INTERESTED] = Transition(A, (Effect.SYNC,), U)
    with pytest.raises(TableError, match="sticky"):
        _machine._validate(broken)
    broken = dict(good)
    broken[S, EventKind.MARK_DO_NOT_EMAIL] = Transition(S, (), S)
    with pytest.raises(TableError, match="always wins"):
        _machine._validate(broken)
    broken = dict(good)
    del broken[A, EventKind.RESUME]
    with pytest.raises(TableError, match="not total"):
        _machine._validate(broken)
    broken = dict(good)
    broken[A, EventKind.STOP_MESSAGING] = None
    with pytest.raises(TableError, match="only resume and resubscribe"):
        _machine._validate(broken)


def test_markdown_table_has_a_row_per_event_kind_and_a_column_per_status():
    md = table_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(EventKind)
    assert all(s.value in rows[0] for s in ContactStatus)
    assert all(line.count("|") == len(ContactStatus) + 2 for line in rows)
    assert "InvalidTransition" in md and "**do_not_email**" in md


def test_errors_survive_pickling_for_multiprocessing():
    err = InvalidTransition(D, SAMPLES[EventKind.RESUME], allowed=allowed_kinds(D), hint="sticky")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InvalidTransition and str(back) == str(err) and back.status is D
    nf = pickle.loads(pickle.dumps(UnknownStatusError("x", list(ContactStatus))))
    assert nf.value == "x" and "allowed" in str(nf)


def test_default_policy_is_the_documented_one():
    assert Policy(allow_resubscribe=True, stop_on_not_interested=True, stop_on_wrong_contact=True) == DEFAULT_POLICY
