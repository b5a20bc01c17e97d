"""The outbox: sinks, retries with backoff, dead letters, order, alerts and the webhook sink.

The webhook tests run a real HTTP server on 127.0.0.1 that fails the first attempts.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from replyguard.optout import (
    CRM_PRESETS,
    ContactStatus,
    DeliveryError,
    InvalidFieldError,
    MarkDoNotEmail,
    OptOutLedger,
    OutboxMessage,
    OutOfOffice,
    PermanentDeliveryError,
    Resume,
    RetryPolicy,
    StopMessaging,
    UnknownNameError,
    UnknownSinkError,
    UnsubscribeClicked,
    WebhookSink,
    alert_text,
    hubspot_body,
    marketo_body,
    salesforce_body,
    sign,
    verify_signature,
)

from .conftest import T0

SECRET = "whsec-test-0123456789"
FAST = RetryPolicy(max_attempts=3, first_delay=timedelta(seconds=10), factor=2.0)


class Recorder:
    """A sink that records messages and fails the first ``fail`` calls."""

    def __init__(self, fail: int = 0, exc: type[Exception] = DeliveryError) -> None:
        self.fail = fail
        self.exc = exc
        self.calls = 0
        self.messages: list[OutboxMessage] = []

    def deliver(self, message: OutboxMessage) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.exc(f"down (call {self.calls})")
        self.messages.append(message)


# -- a real webhook receiver ------------------------------------------------------------------

class Receiver:
    def __init__(self, responses: list[tuple[int, dict[str, str]]] | None = None, delay: float = 0.0) -> None:
        self.responses = list(responses or [])
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"method": self.command, "path": self.path,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers = receiver.responses.pop(0) if receiver.responses else (200, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PATCH = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up (the timeout test)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ledger(open_ledger, clock):
    """A ledger whose clock reads ``T0`` (the tests pass ``now=`` to deliver)."""
    return open_ledger(clock=clock)


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        r = Receiver(*args, **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_webhook_delivery_survives_a_receiver_that_fails_the_first_attempts(ledger, receiver):
    rx = receiver([(503, {}), (500, {})])
    ledger.add_sink("hook", WebhookSink(rx.url + "/optout", secret=SECRET), retry=FAST)
    applied = ledger.apply("jane@example.com", MarkDoNotEmail(source="phone", actor="ana", at=T0))
    t = T0 + timedelta(minutes=1)
    r1 = ledger.deliver(now=t)
    assert (r1.delivered, r1.retrying, r1.dead) == (0, 1, 0) and "HTTP 503" in r1.errors[0][2]
    assert ledger.deliver(now=t + timedelta(seconds=5)).retrying == 0  # backing off: not due yet
    assert len(rx.requests) == 1
    r2 = ledger.deliver(now=t + timedelta(seconds=11))
    assert (r2.delivered, r2.retrying) == (0, 1) and "HTTP 500" in r2.errors[0][2]
    r3 = ledger.deliver(now=t + timedelta(seconds=11 + 21))
    assert (r3.delivered, r3.retrying, r3.dead) == (1, 0, 0)
    assert len(rx.requests) == 3
    # the same message each time, signed, with a stable idempotency key
    bodies = {req["body"] for req in rx.requests}
    assert len(bodies) == 1
    keys = {req["headers"]["idempotency-key"] for req in rx.requests}
    assert keys == {f"hook:{applied.event_id}"}
    assert [req["headers"]["x-replyguard-attempt"] for req in rx.requests] == ["1", "2", "3"]
    for req in rx.requests:
        assert verify_signature(req["body"], req["headers"]["x-replyguard-signature"], SECRET)
        assert not verify_signature(req["body"] + b" ", req["headers"]["x-replyguard-signature"], SECRET)
        assert req["headers"]["content-type"].startswith("application/json")
    body = json.loads(rx.requests[-1]["body"])
    assert body["contact_id"] == "jane@example.com" and body["status"] == "do_not_email"
    assert body["opted_out"] is True and body["may_email"] is False and body["source"] == "phone"
    assert body["sequence"] == applied.seq and "attempt" not in body  # the attempt is in a header
    [item] = ledger.outbox(state="delivered")
    assert item.attempts == 3 and item.delivered_at == t + timedelta(seconds=32)


def test_webhook_honours_retry_after_and_sends_4xx_to_the_dead_letters(ledger, receiver):
    rx = receiver([(429, {"Retry-After": "120"}), (400, {})])
    ledger.add_sink("hook", WebhookSink(rx.url, secret=SECRET), retry=FAST)
    ledger.apply("c", UnsubscribeClicked(at=T0))
    ledger.deliver(now=T0)
    [item] = ledger.outbox(state="pending")
    assert item.next_attempt_at == T0 + timedelta(seconds=120)
    report = ledger.deliver(now=T0 + timedelta(seconds=121))
    assert report.dead == 1 and "HTTP 400" in report.errors[0][2]
    [dead] = ledger.outbox(state="dead")
    assert dead.attempts == 2 and "HTTP 400" in (dead.last_error or "")
    res = ledger.retry()
    assert res.requeued == (dead.id,)
    assert ledger.deliver(now=T0 + timedelta(seconds=200)).delivered == 1


def test_webhook_timeouts_and_redirects_are_delivery_errors(receiver):
    slow = receiver(delay=1.0)
    sink = WebhookSink(slow.url, secret=SECRET, timeout=0.2)
    msg = _message()
    with pytest.raises(DeliveryError) as err:
        sink.deliver(msg)
    assert not isinstance(err.value, PermanentDeliveryError)
    moved = receiver([(302, {"Location": "http://127.0.0.1:1/elsewhere"})])
    with pytest.raises(PermanentDeliveryError, match="redirects are not followed"):
        WebhookSink(moved.url, secret=SECRET).deliver(msg)
    with pytest.raises(DeliveryError, match="failed"):
        WebhookSink("http://127.0.0.1:1/nothing-listens", secret=SECRET, timeout=1).deliver(msg)


@pytest.mark.parametrize("preset", sorted(CRM_PRESETS))
def test_crm_presets_over_a_real_webhook(ledger, receiver, preset):
    rx = receiver()
    url = rx.url + "/sobjects/Contact/{contact_id}"
    ledger.add_sink(preset, WebhookSink(url, secret=SECRET, payload=preset, method="PATCH",
                                        headers={"Authorization": "Bearer t0ken"}))
    ledger.apply("ana/1@example.com", UnsubscribeClicked(at=T0))
    assert ledger.deliver(now=T0).delivered == 1
    [req] = rx.requests
    assert req["method"] == "PATCH" and req["path"] == "/sobjects/Contact/ana%2F1%40example.com"
    assert req["headers"]["authorization"] == "Bearer t0ken"
    body = json.loads(req["body"])
    if preset == "salesforce":
        assert body == {"HasOptedOutOfEmail": True}
    elif preset == "hubspot":
        assert body == {"properties": {"hs_email_optout": "true"}}
    else:
        assert body["action"] == "updateOnly" and body["lookupField"] == "email"
        assert body["input"][0]["email"] == "ana/1@example.com" and body["input"][0]["unsubscribed"] is True
        assert "unsubscribed via link" in body["input"][0]["unsubscribedReason"]


def test_presets_clear_the_flag_when_a_contact_may_be_emailed_again():
    m = _message(status=ContactStatus.ACTIVE, previous=ContactStatus.STOPPED)
    assert salesforce_body(m) == {"HasOptedOutOfEmail": False}
    assert hubspot_body(m) == {"properties": {"hs_email_optout": "false"}}
    assert marketo_body(m, lookup_field="id")["input"][0] == {"id": "c-1", "unsubscribed": False,
                                                               "unsubscribedReason": ""}


def test_webhook_sink_rejects_bad_options():
    with pytest.raises(InvalidFieldError, match="url"):
        WebhookSink("ftp://x", secret=SECRET)
    with pytest.raises(InvalidFieldError, match="secret"):
        WebhookSink("https://x.example", secret="")
    with pytest.raises(UnknownNameError, match=r"'pipedrive'.*salesforce"):
        WebhookSink("https://x.example", secret=SECRET, payload="pipedrive")
    assert "whsec" not in repr(WebhookSink("https://x.example", secret=SECRET))


def test_signature_helpers_reject_tampering_and_replays():
    h = sign(b'{"a":1}', SECRET, timestamp=1_700_000_000)
    assert verify_signature(b'{"a":1}', h, SECRET, now=1_700_000_100)
    assert not verify_signature(b'{"a":2}', h, SECRET, now=1_700_000_100)
    assert not verify_signature(b'{"a":1}', h, SECRET, now=1_700_001_000)  # too old
    assert not verify_signature(b'{"a":1}', "garbage", SECRET)


# -- the outbox itself --------------------------------------------------------------------------

def test_a_failing_sink_blocks_neither_other_sinks_nor_apply(ledger):
    bad, good = Recorder(fail=10**6), Recorder()
    ledger.add_sink("bad", bad, retry=RetryPolicy(max_attempts=2, first_delay=timedelta(0)))
    ledger.add_sink("good", good)
    for i in range(5):
        ledger.apply(f"c{i}", UnsubscribeClicked(at=T0))
    report = ledger.deliver(now=T0)
    assert len(good.messages) == 5 and report.delivered == 5
    assert ledger.status("c0") is ContactStatus.UNSUBSCRIBED
    ledger.deliver(now=T0 + timedelta(seconds=1))
    dead = ledger.outbox(state="dead")
    assert [d.sink for d in dead] == ["bad"] * 5 and all(d.attempts == 2 for d in dead)
    assert ledger.apply("c9", MarkDoNotEmail(source="rep", actor="a")).status is ContactStatus.DO_NOT_EMAIL


def test_a_down_sink_with_a_backlog_does_not_hold_up_another_sink(ledger):
    down, up = Recorder(fail=10**6), Recorder()
    ledger.add_sink("a-down", down, retry=RetryPolicy(first_delay=timedelta(minutes=5)))
    ledger.add_sink("b-up", up)
    ledger.apply_many([(f"c{i}", UnsubscribeClicked(at=T0)) for i in range(250)])
    report = ledger.deliver(now=T0, limit=100)
    assert len(up.messages) == 250 and report.delivered == 250
    assert down.calls == 100 and report.retrying == 100  # one failed pass, then it waits for its backoff


def test_dead_letters_can_be_listed_and_retried_by_id_or_sink(ledger):
    sink = Recorder(fail=2, exc=PermanentDeliveryError)
    ledger.add_sink("crm", sink)
    ledger.apply("a", UnsubscribeClicked(at=T0))
    ledger.apply("b", UnsubscribeClicked(at=T0))
    assert ledger.deliver(now=T0).dead == 2  # permanent errors: dead at once
    dead = ledger.outbox(state="dead", sink="crm")
    assert len(dead) == 2 and all("PermanentDeliveryError" in (d.last_error or "") for d in dead)
    res = ledger.retry([dead[0].id, 99999])
    assert res.requeued == (dead[0].id,) and res.not_dead == (99999,)
    assert ledger.deliver(now=T0).delivered == 1
    assert ledger.retry(sink="crm").requeued == (dead[1].id,)
    assert ledger.deliver(now=T0).delivered == 1
    assert [m.contact_id for m in sink.messages] == ["a", "b"]


def test_messages_of_one_contact_reach_a_sink_in_order(ledger):
    sink = Recorder(fail=1)
    ledger.add_sink("crm", sink, retry=RetryPolicy(first_delay=timedelta(seconds=30)))
    ledger.apply("c", StopMessaging(actor="a", reason="r", at=T0))
    ledger.apply("c", Resume(actor="a", at=T0))
    ledger.apply("other", UnsubscribeClicked(at=T0))
    r = ledger.deliver(now=T0)
    assert r.retrying == 1 and [m.contact_id for m in sink.messages] == ["other"]  # c's 2nd waits for its 1st
    ledger.deliver(now=T0 + timedelta(seconds=31))
    assert [(m.contact_id, m.status.value) for m in sink.messages] == [
        ("other", "unsubscribed"), ("c", "stopped"), ("c", "active")]


def test_a_retried_dead_letter_never_overwrites_a_newer_status(ledger):
    sink = Recorder(fail=1, exc=PermanentDeliveryError)
    ledger.add_sink("crm", sink)
    ledger.apply("c", StopMessaging(actor="a", reason="r", at=T0))
    ledger.deliver(now=T0)  # dead
    ledger.apply("c", Resume(actor="a", at=T0))
    ledger.deliver(now=T0)  # the later status goes through
    res = ledger.retry()
    assert res.superseded and not res.requeued
    assert ledger.deliver(now=T0).delivered == 0
    assert [m.status.value for m in sink.messages] == ["active"]
    assert ledger.outbox(state="superseded")[0].status is ContactStatus.STOPPED


def test_delivery_is_at_least_once_when_a_deliverer_dies_mid_delivery(open_ledger, clock):
    ledger = open_ledger(lease=timedelta(seconds=60), clock=clock)

    class Crash(BaseException):
        pass

    def dies(message: OutboxMessage) -> None:
        raise Crash

    ledger.add_sink("crm", dies)
    ledger.apply("c", UnsubscribeClicked(at=T0))
    with pytest.raises(Crash):
        ledger.deliver(now=T0)
    other = open_ledger(clock=clock)  # another process takes over
    sink = Recorder()
    other.add_sink("crm", sink)
    assert other.deliver(now=T0 + timedelta(seconds=30)).delivered == 0  # still leased
    assert other.deliver(now=T0 + timedelta(seconds=61)).delivered == 1
    assert sink.messages[0].attempt == 1


def test_sinks_are_registered_in_the_ledger_for_every_process(open_ledger, clock):
    first = open_ledger(clock=clock)
    first.add_sink("crm", Recorder())
    second = open_ledger(clock=clock)  # knows the name, not the handler
    second.apply("c", UnsubscribeClicked(at=T0))
    assert [(s.name, s.attached) for s in second.sinks()] == [("crm", False)]
    assert second.deliver().delivered == 0
    assert first.deliver(now=T0).delivered == 1
    with pytest.raises(UnknownSinkError, match="crm"):
        second.deliver(sinks=["crm"])
    with pytest.raises(UnknownSinkError, match="sync sink"):
        first.add_alert("crm", Recorder(), on="do_not_email")
    with pytest.raises(InvalidFieldError, match="deliver"):
        first.add_sink("x", object())
    assert first.remove_sink("crm") and not first.remove_sink("crm")
    first.apply("d", UnsubscribeClicked(at=T0))
    assert len(first.outbox(state=["pending", "delivered"])) == 1


def test_alerts_are_opt_in_per_kind_and_never_lose_the_opt_out(ledger):
    team = Recorder(fail=10**6)
    ledger.add_alert("team", team, on=["do_not_email", "resubscribed"],
                     retry=RetryPolicy(max_attempts=2, first_delay=timedelta(0)))
    ledger.apply("c1", StopMessaging(actor="a", reason="r", at=T0))  # not subscribed: no alert
    r = ledger.apply("c2", MarkDoNotEmail(source="phone", actor="ana", note="asked on a call", at=T0))
    items = ledger.outbox()
    assert [(i.kind, i.alert, i.contact_id) for i in items] == [("alert", "do_not_email", "c2")]
    ledger.deliver(now=T0)
    ledger.deliver(now=T0)
    assert ledger.outbox(state="dead")[0].alert == "do_not_email"
    assert ledger.status("c2") is ContactStatus.DO_NOT_EMAIL and r.status is ContactStatus.DO_NOT_EMAIL
    with pytest.raises(UnknownNameError, match=r"'bounced'.*resubscribed"):
        ledger.add_alert("x", team, on="bounced")


def test_alerts_reach_a_callable_and_a_webhook(ledger, receiver):
    rx = receiver()
    lines: list[str] = []
    ledger.add_alert("chat", lambda m: lines.append(alert_text(m)), on="unsubscribed")
    ledger.add_alert("hook", WebhookSink(rx.url, secret=SECRET), on=["unsubscribed", "stopped"])
    ledger.apply("c", UnsubscribeClicked(campaign="spring", at=T0))
    assert ledger.deliver(now=T0).delivered == 2
    assert lines == [f"[unsubscribed] contact c: active -> unsubscribed via link by contact at {T0.isoformat()}"]
    body = json.loads(rx.requests[0]["body"])
    assert body["type"] == "alert" and body["alert"] == "unsubscribed"


def test_messages_carry_the_change_and_its_evidence(ledger):
    sink = Recorder()
    ledger.add_sink("crm", sink)
    ledger.apply("c", OutOfOffice(until=T0 + timedelta(days=5), at=T0))
    ledger.deliver(now=T0)
    [m] = sink.messages
    assert (m.previous, m.status, m.may_email, m.opted_out) == (ContactStatus.ACTIVE, ContactStatus.PAUSED,
                                                                False, False)
    assert m.paused_until == T0 + timedelta(days=5) and m.occurred_at == T0 and m.type == "status_changed"
    assert json.loads(json.dumps(m.to_dict()))["paused_until"] == (T0 + timedelta(days=5)).isoformat()


def test_retry_policy_backs_off_exponentially_up_to_a_cap():
    p = RetryPolicy(max_attempts=10, first_delay=timedelta(seconds=30), factor=2, max_delay=timedelta(minutes=5))
    assert [p.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    with pytest.raises(InvalidFieldError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def _message(status: ContactStatus = ContactStatus.UNSUBSCRIBED,
             previous: ContactStatus = ContactStatus.ACTIVE) -> OutboxMessage:
    return OutboxMessage(delivery_id=1, sink="s", attempt=1, type="status_changed", alert=None, contact_id="c-1",
                         event_id="e-1", sequence=1, previous=previous, status=status,
                         may_email=status is ContactStatus.ACTIVE,
                         opted_out=status in (ContactStatus.UNSUBSCRIBED, ContactStatus.DO_NOT_EMAIL),
                         event_type="unsubscribe_clicked", kind="unsubscribe_clicked", source="link",
                         actor="contact", reason=None, occurred_at=T0, recorded_at=T0)


def test_ledger_deliver_with_no_sinks_attached_does_nothing(tmp_path):
    with OptOutLedger(tmp_path / "l.sqlite") as ledger:
        ledger.apply("c", UnsubscribeClicked())
        assert ledger.deliver().delivered == 0
