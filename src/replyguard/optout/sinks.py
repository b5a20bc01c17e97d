"""Sinks: how a status change reaches connected systems (CRM, ESP, webhooks, people).

Every status change writes one outbox row per registered sink in the same
transaction as the change itself. ``OptOutLedger.deliver()`` hands each row to
its sink as an :class:`OutboxMessage`:

* a **sink** is a callable ``sink(message) -> None``, or an object with a
  ``deliver(message) -> None`` method. Returning means delivered. Raising means
  "not now": the row is retried with exponential backoff (:class:`RetryPolicy`)
  and becomes a dead letter after ``max_attempts``; raising
  :class:`~replyguard.optout.errors.PermanentDeliveryError` sends it to the dead
  letters at once. Dead letters are listed with ``ledger.outbox(state="dead")``
  and put back in line with ``ledger.retry()``.
* delivery is **at least once**: a sink may see a message again (a crash after
  the sink accepted it, a retried dead letter). ``message.delivery_id`` is
  stable across attempts and ``message.sequence`` grows with each change of a
  contact, so a sink can drop what it has already applied.
* rows of one sink for one contact are delivered in order; a failing sink
  delays only its own rows, never other sinks nor ``apply``.

Built in: :class:`WebhookSink` (HTTP POST of JSON signed with HMAC-SHA256,
standard library only) and :data:`CRM_PRESETS`, payloads with the opt-out
fields of Salesforce, HubSpot and Marketo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from .errors import DeliveryError, InvalidFieldError, PermanentDeliveryError, UnknownNameError
from .machine import ContactStatus

__all__ = [
    "CRM_PRESETS",
    "CrmPreset",
    "DeliveryReport",
    "OutboxItem",
    "OutboxMessage",
    "RetryPolicy",
    "Sink",
    "WebhookSink",
    "hubspot_body",
    "marketo_body",
    "salesforce_body",
    "sign",
    "verify_signature",
]


@runtime_checkable
class Sink(Protocol):
    """A connected system: called with each message; returning means delivered."""

    def __call__(self, message: OutboxMessage) -> object: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a sink is retried.

    The n-th failed attempt waits ``first_delay * factor ** (n - 1)``, at most
    ``max_delay`` (or longer if the receiver asked, with ``Retry-After``).
    After ``max_attempts`` attempts the message is a dead letter.

    Examples
    --------
    >>> p = RetryPolicy()
    >>> [int(p.delay(n).total_seconds()) for n in (1, 2, 3)], p.max_attempts
    ([30, 60, 120], 8)
    """

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise InvalidFieldError("RetryPolicy.max_attempts", self.max_attempts, "an int >= 1")
        for name in ("first_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise InvalidFieldError(f"RetryPolicy.{name}", value, "a timedelta >= 0")
        if not isinstance(self.factor, int | float) or self.factor < 1:
            raise InvalidFieldError("RetryPolicy.factor", self.factor, "a number >= 1")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        seconds = self.first_delay.total_seconds() * self.factor ** max(0, attempts - 1)
        return min(timedelta(seconds=seconds), self.max_delay)

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "first_delay_s": self.first_delay.total_seconds(),
                "factor": self.factor, "max_delay_s": self.max_delay.total_seconds()}


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """What a sink receives: one status change (or alert) of one contact.

    Attributes
    ----------
    delivery_id
        The outbox row id: the same on every attempt (use it to deduplicate).
    sink
        The sink's registered name.
    attempt
        1 on the first attempt.
    type
        ``"status_changed"`` or ``"alert"``.
    alert
        For alerts: ``do_not_email``, ``unsubscribed``, ``stopped`` or ``resubscribed``.
    contact_id, event_id
        Whose status changed, and the event that changed it.
    sequence
        The ledger's sequence number of the event: grows with each event of a contact.
    previous, status
        The status before and after.
    may_email
        Whether the contact may be emailed now.
    opted_out
        ``status`` is ``unsubscribed`` or ``do_not_email``: the value of a CRM's
        opt-out flag.
    event_type, kind, source, actor, reason
        What happened, who did it and why.
    occurred_at, recorded_at
        When it happened, and when the ledger recorded it.
    paused_until
        For ``paused``: until when, if known.
    evidence
        The audit evidence (for replies: intent, score, rule ids, excerpt).
    """

    delivery_id: int
    sink: str
    attempt: int
    type: str
    alert: str | None
    contact_id: str
    event_id: str
    sequence: int
    previous: ContactStatus
    status: ContactStatus
    may_email: bool
    opted_out: bool
    event_type: str
    kind: str
    source: str
    actor: str | None
    reason: str | None
    occurred_at: datetime
    recorded_at: datetime
    paused_until: datetime | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxMessage:
        """Build from an outbox row joined with its event (what ``ledger.deliver`` reads)."""
        status = ContactStatus(row["status"])
        evidence = dict(row.get("evidence") or {})
        until = evidence.get("until") if status is ContactStatus.PAUSED else None
        return cls(
            delivery_id=int(row["id"]), sink=row["sink"], attempt=int(row["attempts"]) + 1,
            type="alert" if row["kind"] == "alert" else "status_changed", alert=row["alert"],
            contact_id=row["contact_id"], event_id=row["event_id"], sequence=int(row["seq"]),
            previous=ContactStatus(row["previous"]), status=status, may_email=status is ContactStatus.ACTIVE,
            opted_out=status in (ContactStatus.UNSUBSCRIBED, ContactStatus.DO_NOT_EMAIL),
            event_type=row["event_type"], kind=row["event_kind"], source=row["source"], actor=row["actor"],
            reason=row["reason"], occurred_at=row["occurred_at"], recorded_at=row["recorded_at"],
            paused_until=_dt(until), evidence=evidence,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the generic webhook payload."""
        return {
            "delivery_id": self.delivery_id, "sink": self.sink, "attempt": self.attempt,
            "type": self.type, "alert": self.alert, "contact_id": self.contact_id,
            "event_id": self.event_id, "sequence": self.sequence, "previous": self.previous.value,
            "status": self.status.value, "may_email": self.may_email, "opted_out": self.opted_out,
            "event_type": self.event_type, "kind": self.kind, "source": self.source,
            "actor": self.actor, "reason": self.reason, "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "paused_until": None if self.paused_until is None else self.paused_until.isoformat(),
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbox row, as ``ledger.outbox()`` lists it.

    ``state`` is ``pending`` (waiting or being retried), ``delivered``,
    ``dead`` (a dead letter) or ``superseded`` (a retried dead letter whose sink
    had already received a later status of the contact). ``kind`` is ``sync``
    (a status change for a connected system) or ``alert``; ``previous`` and
    ``status`` are the change it carries; ``created_at`` is when the change was
    recorded.
    """

    id: int
    sink: str
    kind: str
    alert: str | None
    contact_id: str
    event_id: str
    seq: int
    event_type: str
    previous: ContactStatus
    status: ContactStatus
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutboxItem:
        return cls(id=int(row["id"]), sink=row["sink"], kind=row["kind"], alert=row["alert"],
                   contact_id=row["contact_id"], event_id=row["event_id"], seq=int(row["seq"]),
                   event_type=row["event_type"], previous=ContactStatus(row["previous"]),
                   status=ContactStatus(row["status"]), state=row["state"], attempts=int(row["attempts"]),
                   next_attempt_at=row["next_attempt_at"], last_error=row["last_error"],
                   created_at=row["recorded_at"], delivered_at=row["delivered_at"], dead_at=row["dead_at"])

    def to_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return None if d is None else d.isoformat()

        return {"id": self.id, "sink": self.sink, "kind": self.kind, "alert": self.alert,
                "contact_id": self.contact_id, "event_id": self.event_id, "seq": self.seq,
                "event_type": self.event_type, "previous": self.previous.value, "status": self.status.value,
                "state": self.state, "attempts": self.attempts, "next_attempt_at": iso(self.next_attempt_at),
                "last_error": self.last_error, "created_at": iso(self.created_at),
                "delivered_at": iso(self.delivered_at), "dead_at": iso(self.dead_at)}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one ``ledger.deliver()`` call did.

    Attributes
    ----------
    delivered
        Messages their sink accepted.
    retrying
        Failed attempts that will be retried.
    dead
        Messages that became dead letters.
    errors
        ``(delivery_id, sink, error)`` for each failed attempt.
    """

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: tuple[tuple[int, str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "retrying": self.retrying, "dead": self.dead,
                "errors": [list(e) for e in self.errors]}


# -- CRM presets ------------------------------------------------------------------------------

def _reason(m: OutboxMessage) -> str:
    return (f"replyguard: {m.status.value} via {m.source} on {m.occurred_at.date().isoformat()} "
            f"(event {m.event_id})")[:255]


def salesforce_body(message: OutboxMessage) -> dict[str, Any]:
    """Salesforce Lead/Contact: ``{"HasOptedOutOfEmail": bool}``.

    The body of ``PATCH /services/data/vXX.X/sobjects/Contact/{id}`` (or ``Lead``).
    """
    return {"HasOptedOutOfEmail": message.opted_out}


def hubspot_body(message: OutboxMessage) -> dict[str, Any]:
    """HubSpot contact property ``hs_email_optout`` ("Unsubscribed from all email").

    The body of a CRM contact update (``PATCH /crm/v3/objects/contacts/{id}``):
    ``{"properties": {"hs_email_optout": "true"}}``; HubSpot property values are strings.
    """
    return {"properties": {"hs_email_optout": "true" if message.opted_out else "false"}}


def marketo_body(message: OutboxMessage, *, lookup_field: str = "email") -> dict[str, Any]:
    """Marketo lead fields ``unsubscribed`` and ``unsubscribedReason``.

    The body of ``POST /rest/v1/leads.json`` (``action: updateOnly``); the
    contact id is matched on ``lookup_field`` (``"email"`` or ``"id"``).
    """
    lead: dict[str, Any] = {lookup_field: message.contact_id, "unsubscribed": message.opted_out,
                            "unsubscribedReason": _reason(message) if message.opted_out else ""}
    return {"action": "updateOnly", "lookupField": lookup_field, "input": [lead]}


@dataclass(frozen=True, slots=True)
class CrmPreset:
    """A named payload for a CRM: the fields it sets and the function that builds the body."""

    name: str
    system: str
    fields: tuple[str, ...]
    endpoint: str
    build: Callable[[OutboxMessage], dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "system": self.system, "fields": list(self.fields), "endpoint": self.endpoint}


#: Payload presets for ``WebhookSink(payload=...)``. Each sets the CRM's opt-out flag to
#: ``message.opted_out`` (true for ``unsubscribed`` and ``do_not_email``).
CRM_PRESETS: Mapping[str, CrmPreset] = {
    "salesforce": CrmPreset("salesforce", "Salesforce (Lead, Contact)", ("HasOptedOutOfEmail",),
                            "PATCH /services/data/vXX.X/sobjects/Contact/{contact_id}", salesforce_body),
    "hubspot": CrmPreset("hubspot", "HubSpot (Contact)", ("hs_email_optout",),
                         "PATCH /crm/v3/objects/contacts/{contact_id}", hubspot_body),
    "marketo": CrmPreset("marketo", "Marketo (Lead)", ("unsubscribed", "unsubscribedReason"),
                         "POST /rest/v1/leads.json", marketo_body),
}


# -- webhook -----------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-ReplyGuard-Signature"


def sign(body: bytes, secret: str | bytes, *, timestamp: int) -> str:
    """The signature header value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``.

    Examples
    --------
    >>> sign(b'{"a":1}', "s3cret", timestamp=1700000000)[:16]
    't=1700000000,v1='
    """
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(body: bytes, header: str, secret: str | bytes, *, tolerance: float = 300.0,
                     now: float | None = None) -> bool:
    """Check a webhook's signature header on the receiving side (constant-time).

    Parameters
    ----------
    body
        The raw request body.
    header
        The ``X-ReplyGuard-Signature`` header.
    secret
        The shared secret.
    tolerance
        Reject signatures older (or newer) than this many seconds: stops replays.
    now
        The current Unix time (default: ``time.time()``).

    Examples
    --------
    >>> h = sign(b"{}", "k", timestamp=100)
    >>> verify_signature(b"{}", h, "k", now=150), verify_signature(b"{}", h, "other", now=150)
    (True, False)
    """
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    expected = sign(body, secret, timestamp=ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def _opener() -> Any:
    """A urllib opener that follows no redirect (imported on first use: urllib is not light)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a redirected POST would lose its body: report it instead

    return urllib.request.build_opener(NoRedirect)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class WebhookSink:
    """POST each message as JSON to a URL, signed with HMAC-SHA256 (standard library only).

    Parameters
    ----------
    url
        ``http://`` or ``https://``; ``{contact_id}`` in it is replaced by the
        URL-quoted contact id (for CRM endpoints such as ``.../Contact/{contact_id}``).
    secret
        The shared secret for the ``X-ReplyGuard-Signature`` header
        (``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``; see
        :func:`verify_signature`).
    payload
        ``"generic"`` (:meth:`OutboxMessage.to_dict` without ``attempt``, so the
        body is the same on every attempt), a :data:`CRM_PRESETS` name, or a
        function ``message -> dict``.
    method
        ``POST``, ``PUT`` or ``PATCH``.
    headers
        Extra headers (an ``Authorization`` bearer token, ...).
    timeout
        Seconds to wait for the receiver.

    Notes
    -----
    2xx is delivered. 408, 425, 429 and 5xx, timeouts and connection errors
    raise :class:`~replyguard.optout.errors.DeliveryError` (retried, honouring
    ``Retry-After``); any other status, redirects included, raises
    :class:`~replyguard.optout.errors.PermanentDeliveryError` (a dead letter at
    once). Every request carries ``Idempotency-Key: <sink>:<event_id>``,
    ``X-ReplyGuard-Delivery``, ``X-ReplyGuard-Event``, ``X-ReplyGuard-Sequence``
    and ``X-ReplyGuard-Attempt``.

    Examples
    --------
    >>> WebhookSink("https://crm.example.com/hook", secret="s3cret", payload="salesforce")
    WebhookSink('https://crm.example.com/hook', payload='salesforce', method='POST')
    """

    def __init__(self, url: str, *, secret: str | bytes, payload: str | Callable[[OutboxMessage], Any] = "generic",
                 method: str = "POST", headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise InvalidFieldError("WebhookSink.url", url, "an http:// or https:// URL")
        if not isinstance(secret, str | bytes) or not secret:
            raise InvalidFieldError("WebhookSink.secret", "<hidden>" if secret else secret,
                                    "a non-empty str or bytes shared with the receiver")
        if isinstance(payload, str):
            if payload != "generic" and payload not in CRM_PRESETS:
                raise UnknownNameError("webhook payload", payload, ["generic", *CRM_PRESETS])
        elif not callable(payload):
            raise InvalidFieldError("WebhookSink.payload", payload, "'generic', a preset name or a function")
        if method.upper() not in ("POST", "PUT", "PATCH"):
            raise UnknownNameError("HTTP method", method, ["POST", "PUT", "PATCH"])
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidFieldError("WebhookSink.timeout", timeout, "a number of seconds > 0")
        self.url = url
        self.payload = payload
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self._secret = secret
        self._opener: Any = None

    def __repr__(self) -> str:
        shown = self.payload if isinstance(self.payload, str) else getattr(self.payload, "__name__", "custom")
        return f"WebhookSink({self.url!r}, payload={shown!r}, method={self.method!r})"

    def body(self, message: OutboxMessage) -> bytes:
        """The request body for ``message``."""
        if callable(self.payload):
            obj = self.payload(message)
        elif self.payload == "generic":
            obj = message.to_dict()
            del obj["attempt"]  # in X-ReplyGuard-Attempt: the body stays the same on every attempt
        else:
            obj = CRM_PRESETS[self.payload].build(message)
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def __call__(self, message: OutboxMessage) -> None:
        self.deliver(message)

    def deliver(self, message: OutboxMessage) -> None:
        """Send ``message``; raise :class:`DeliveryError` or :class:`PermanentDeliveryError` on failure."""
        import urllib.error
        import urllib.request

        if self._opener is None:
            self._opener = _opener()
        body = self.body(message)
        url = self.url.replace("{contact_id}", quote(message.contact_id, safe=""))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "replyguard-webhook/1",
            SIGNATURE_HEADER: sign(body, self._secret, timestamp=int(time.time())),
            "Idempotency-Key": f"{message.sink}:{message.event_id}",
            "X-ReplyGuard-Delivery": str(message.delivery_id),
            "X-ReplyGuard-Event": message.event_id,
            "X-ReplyGuard-Sequence": str(message.sequence),
            "X-ReplyGuard-Attempt": str(message.attempt),
            **self.headers,
        }
        req = urllib.request.Request(url, data=body, headers=headers, method=self.method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = exc.read(500).decode("utf-8", "replace").strip() if exc.fp else ""
            exc.close()
            where = f"{self.method} {url} answered HTTP {status}" + (f": {detail}" if detail else "")
            if status in (408, 425, 429) or status >= 500:
                raise DeliveryError(where, retry_after=_retry_after(exc.headers.get("Retry-After"))) from None
            if 300 <= status < 400:
                raise PermanentDeliveryError(where + " (redirects are not followed: use the final URL)") from None
            raise PermanentDeliveryError(where) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{self.method} {url} failed: {reason}") from None
        if not 200 <= status < 300:
            raise PermanentDeliveryError(f"{self.method} {url} answered HTTP {status}")

