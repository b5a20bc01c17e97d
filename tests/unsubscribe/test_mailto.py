"""mailto unsubscribe: emails to the unsubscribe address become ledger events."""

from __future__ import annotations

from datetime import timedelta

from replyguard.optout import ContactStatus
from replyguard.unsubscribe import apply_mailto_unsubscribe, mailto_unsubscribe, unsubscribe_token

from .conftest import T0

ADDR = "unsubscribe@news.example"


def mail(subject="unsubscribe", body="", *, sender="Jane <Jane@Example.com>", to=ADDR, extra="", mid="<m1@example.com>"):
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n{extra}"
    return (head + "\r\n" + body).encode()


def test_subject_unsubscribe_identifies_the_sender(ring):
    r = mailto_unsubscribe(mail(), keys=ring, address=ADDR)
    assert (r.contact_id, r.identified_by, r.cues, r.list_id) == ("jane@example.com", "from", ("subject",), None)


def test_body_unsubscribe_counts_but_quoted_text_does_not(ring):
    assert mailto_unsubscribe(mail("hi", "Please unsubscribe me."), keys=ring).cues == ("body",)
    quoted = "Thanks!\r\n\r\nOn Mon, Jan 5, 2026 News wrote:\r\n> Click here to unsubscribe\r\n"
    assert mailto_unsubscribe(mail("Re: news", quoted), keys=ring) is None


def test_token_in_subject_identifies_the_contact_not_the_sender(ring):
    tok = unsubscribe_token("crm-0042", list_id="news", keys=ring, now=T0)
    r = mailto_unsubscribe(mail(f"unsubscribe {tok}", sender="alias@forwarder.example"), keys=ring, now=T0)
    assert (r.contact_id, r.list_id, r.identified_by) == ("crm-0042", "news", "token")
    assert "token" in r.cues


def test_expired_or_forged_token_falls_back_to_from_with_the_reason(ring):
    tok = unsubscribe_token("crm-0042", keys=ring, now=T0)
    r = mailto_unsubscribe(mail(f"unsubscribe {tok}"), keys=ring, now=T0 + timedelta(days=70))
    assert (r.contact_id, r.identified_by, r.token_rejection) == ("jane@example.com", "from", "expired")
    assert mailto_unsubscribe(mail(f"unsubscribe {tok}"), keys=ring, now=T0 + timedelta(days=70),
                              identify_by_from=False) is None


def test_apple_mail_one_click_email_counts(ring):
    r = mailto_unsubscribe(mail("", extra="X-Apple-Unsubscribe: true\r\n"), keys=ring)
    assert r.cues == ("x-apple-unsubscribe",)


def test_mail_to_another_address_or_auto_replies_are_not_requests(ring):
    assert mailto_unsubscribe(mail(to="sales@news.example"), keys=ring, address=ADDR) is None
    assert mailto_unsubscribe(mail("Automatic reply: unsubscribe", extra="Auto-Submitted: auto-replied\r\n"),
                              keys=ring, address=ADDR) is None
    assert mailto_unsubscribe(mail("Lunch on Tuesday?"), keys=ring, address=ADDR) is None


def test_ledger_hook_applies_unsubscribe_once_per_message(ring, ledger):
    r1 = apply_mailto_unsubscribe(ledger, mail(), keys=ring, address=ADDR)
    assert r1.status is ContactStatus.UNSUBSCRIBED
    r2 = apply_mailto_unsubscribe(ledger, mail(), keys=ring, address=ADDR)
    assert (r2.event_id, r2.seq) == (r1.event_id, r1.seq)  # the first result again: nothing written
    [h] = ledger.history("jane@example.com")
    assert h.event_type == "unsubscribe_clicked"
    assert apply_mailto_unsubscribe(ledger, mail("hello"), keys=ring, address=ADDR) is None


def test_same_token_by_link_and_by_mail_are_separate_events_with_one_status(ring, ledger):
    tok = unsubscribe_token("crm-7", keys=ring, now=T0)
    apply_mailto_unsubscribe(ledger, mail(f"unsubscribe {tok}"), keys=ring, now=T0)
    apply_mailto_unsubscribe(ledger, mail(f"unsubscribe {tok}", mid="<m2@example.com>"), keys=ring, now=T0)
    assert ledger.status("crm-7") is ContactStatus.UNSUBSCRIBED
    assert [h.status.value for h in ledger.history("crm-7")] == ["unsubscribed", "unsubscribed"]
