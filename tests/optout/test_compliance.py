"""The compliance view: when each opt-out came, when each sink confirmed it, and what is overdue."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from replyguard.optout import (
    DEFAULT_DEADLINE_BUSINESS_DAYS,
    DEFAULT_WARN_AFTER,
    Consent,
    ContactStatus,
    DeliveryError,
    MarkDoNotEmail,
    Resubscribe,
    RetryPolicy,
    StopMessaging,
    UnsubscribeClicked,
    business_days_between,
)

from .conftest import T0

NEVER = RetryPolicy(max_attempts=1000, first_delay=timedelta(hours=1))


def _down(message):
    raise DeliveryError("CRM is down")


@pytest.fixture
def ledger(open_ledger, clock):
    return open_ledger(clock=clock)


def test_defaults_reflect_the_two_day_and_ten_business_day_rules():
    assert timedelta(days=2) == DEFAULT_WARN_AFTER
    assert DEFAULT_DEADLINE_BUSINESS_DAYS == 10


@pytest.mark.parametrize(("start", "end", "days"), [
    (date(2026, 1, 5), date(2026, 1, 5), 0),    # Monday, same day
    (date(2026, 1, 5), date(2026, 1, 6), 1),
    (date(2026, 1, 9), date(2026, 1, 12), 1),   # Friday -> Monday
    (date(2026, 1, 10), date(2026, 1, 11), 0),  # Saturday -> Sunday
    (date(2026, 1, 5), date(2026, 1, 19), 10),  # two weeks
    (date(2026, 1, 5), date(2026, 1, 20), 11),
    (date(2026, 1, 6), date(2026, 1, 5), 0),
])
def test_business_days(start, end, days):
    assert business_days_between(start, end) == days


def test_each_suppressed_contact_shows_its_request_and_each_sinks_confirmation(ledger, clock):
    good = []
    ledger.add_sink("crm", good.append)
    ledger.add_sink("esp", _down, retry=NEVER)
    ledger.apply("c1", MarkDoNotEmail(source="phone", actor="ana", note="called in", at=T0))
    ledger.apply("c2", StopMessaging(actor="ana", reason="r", at=T0))  # stopped is not an opt-out
    clock.now = T0 + timedelta(hours=3)
    ledger.deliver()
    [rec] = ledger.compliance()
    assert (rec.contact_id, rec.status, rec.requested_at) == ("c1", ContactStatus.DO_NOT_EMAIL, T0)
    assert (rec.source, rec.actor, rec.reason, rec.event_type) == ("phone", "ana", "called in", "mark_do_not_email")
    confirmations = {c.sink: c for c in rec.confirmations}
    assert confirmations["crm"].confirmed_at == T0 + timedelta(hours=3)
    assert confirmations["esp"].confirmed_at is None and confirmations["esp"].state == "pending"
    assert "CRM is down" in (confirmations["esp"].last_error or "")
    assert not rec.confirmed and rec.missing_sinks == ("esp",) and rec.confirmed_at is None
    assert rec.to_dict()["confirmations"][0]["sink"] == "crm"
    assert [r.contact_id for r in ledger.compliance(statuses=["stopped"])] == ["c2"]


def test_report_flags_opt_outs_past_two_days_and_past_ten_business_days(ledger):
    ledger.add_sink("esp", _down, retry=NEVER)
    ledger.apply("c1", UnsubscribeClicked(at=T0))  # Monday 9:00
    assert ledger.compliance_report(now=T0 + timedelta(days=1)).ok
    r = ledger.compliance_report(now=T0 + timedelta(days=2, hours=1))
    [item] = r.overdue
    assert item.record.contact_id == "c1" and item.past_warn_after and not item.past_deadline
    assert item.business_days == 2 and not r.ok and r.checked == 1
    late = ledger.compliance_report(now=T0 + timedelta(days=15))
    assert late.past_deadline and late.overdue[0].business_days == 11
    assert ledger.compliance_report(now=T0 + timedelta(days=15), deadline_business_days=20).past_deadline == ()
    assert late.to_dict()["overdue"][0]["missing_sinks"] == ["esp"]


def test_an_opt_out_every_sink_confirmed_is_not_overdue(ledger, clock):
    ledger.add_sink("crm", lambda m: None)
    ledger.apply("c1", UnsubscribeClicked(at=T0))
    clock.now = T0 + timedelta(days=5)  # confirmed late, but confirmed
    ledger.deliver()
    assert ledger.compliance_report(now=T0 + timedelta(days=30)).ok
    assert ledger.compliance()[0].confirmed_at == T0 + timedelta(days=5)


def test_the_request_is_the_start_of_the_current_suppression(ledger, clock):
    ledger.add_sink("crm", lambda m: None)
    ledger.apply("c", UnsubscribeClicked(at=T0))
    ledger.apply("c", MarkDoNotEmail(source="rep", actor="a", at=T0 + timedelta(days=1)))  # still the same spell
    [rec] = ledger.compliance()
    assert rec.requested_at == T0 and rec.event_type == "unsubscribe_clicked"
    clock.now = T0 + timedelta(days=2)
    ledger.apply("c", Resubscribe(Consent("double_opt_in", "ref", T0), at=T0 + timedelta(days=2)))
    assert ledger.compliance() == []
    ledger.apply("c", MarkDoNotEmail(source="phone", actor="b", at=T0 + timedelta(days=3)))
    [rec] = ledger.compliance()
    assert rec.requested_at == T0 + timedelta(days=3) and rec.source == "phone"
    assert not rec.confirmed  # the new opt-out has not reached the CRM yet


def test_with_no_sinks_every_opt_out_counts_as_confirmed(ledger):
    ledger.apply("c", UnsubscribeClicked(at=T0))
    [rec] = ledger.compliance()
    assert rec.confirmations == () and rec.confirmed
    assert ledger.compliance_report(now=T0 + timedelta(days=60)).ok
