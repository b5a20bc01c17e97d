"""The pure core of the opt-out state machine.

A contact has one :class:`ContactStatus`. An event (a reply with its
:class:`~replyguard.Verdict`, an unsubscribe click, a rep's stop, a
do-not-email mark, an out-of-office, a resume, a resubscribe with consent)
moves it through :data:`TABLE`, an explicit ``status x event kind`` table that
is checked against its laws when this module is imported. :func:`advance` is a
pure function over that table: no clock, no I/O, no state.

>>> from replyguard.optout import ContactStatus, StopMessaging, advance
>>> t = advance(ContactStatus.ACTIVE, StopMessaging(actor="ana", reason="asked on a call"))
>>> t.new_status.value, [e.value for e in t.effects]
('stopped', ['sync', 'alert_stopped'])
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from ..verdict import Intent, Verdict
from .errors import (
    InvalidEventError,
    InvalidFieldError,
    InvalidTransition,
    MissingConsentError,
    NaiveDatetimeError,
    ResubscribeForbidden,
    TableError,
    UnknownNameError,
    UnknownStatusError,
)

__all__ = [
    "DEFAULT_POLICY",
    "EVENT_TYPES",
    "SUPPRESSED",
    "TABLE",
    "Consent",
    "ContactStatus",
    "DneSource",
    "Effect",
    "Event",
    "EventKind",
    "MarkDoNotEmail",
    "OutOfOffice",
    "Policy",
    "ReplyReceived",
    "Resubscribe",
    "Resume",
    "StopMessaging",
    "Transition",
    "UnsubscribeClicked",
    "advance",
    "allowed_kinds",
    "event_kind",
    "may_email",
    "table_markdown",
]


class ContactStatus(StrEnum):
    """Where a contact stands. A ``str`` enum: ``ContactStatus.PAUSED == "paused"``.

    ``active``
        May be emailed.
    ``paused``
        Out of office (until a date, when known); not emailed until a resume.
    ``stopped``
        The conversation ended: a rep's Stop Messaging, or a ``not_interested``
        or ``wrong_contact`` reply under the default :class:`Policy`.
    ``unsubscribed``
        Clicked an unsubscribe link. Sticky.
    ``do_not_email``
        Asked not to be emailed (a reply, a phone call, a rep, an import). Sticky.
    """

    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    UNSUBSCRIBED = "unsubscribed"
    DO_NOT_EMAIL = "do_not_email"

    @classmethod
    def parse(cls, value: object) -> ContactStatus:
        """A status from a member or its name.

        Raises
        ------
        UnknownStatusError
            For any other value; the message lists the allowed names.

        Examples
        --------
        >>> ContactStatus.parse("do_not_email")
        <ContactStatus.DO_NOT_EMAIL: 'do_not_email'>
        >>> ContactStatus.parse("gone")
        Traceback (most recent call last):
        ...
        replyguard.optout.errors.UnknownStatusError: unknown status 'gone'; allowed: 'active', 'paused', 'stopped', 'unsubscribed', 'do_not_email'
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise UnknownStatusError(value, list(cls))


#: The sticky statuses: only a :class:`Resubscribe` with consent leaves them.
SUPPRESSED: frozenset[ContactStatus] = frozenset({ContactStatus.UNSUBSCRIBED, ContactStatus.DO_NOT_EMAIL})


def may_email(status: ContactStatus | str) -> bool:
    """Whether a contact in ``status`` may be emailed: only ``active`` may.

    Examples
    --------
    >>> may_email("active"), may_email(ContactStatus.PAUSED), may_email("do_not_email")
    (True, False, False)
    """
    return ContactStatus.parse(status) is ContactStatus.ACTIVE


class EventKind(StrEnum):
    """The rows of :data:`TABLE`: an event type, and for replies the verdict's intent."""

    REPLY_DO_NOT_EMAIL = "reply_do_not_email"
    REPLY_NOT_INTERESTED = "reply_not_interested"
    REPLY_OUT_OF_OFFICE = "reply_out_of_office"
    REPLY_WRONG_CONTACT = "reply_wrong_contact"
    REPLY_INTERESTED = "reply_interested"
    REPLY_OTHER = "reply_other"
    UNSUBSCRIBE_CLICKED = "unsubscribe_clicked"
    STOP_MESSAGING = "stop_messaging"
    MARK_DO_NOT_EMAIL = "mark_do_not_email"
    OUT_OF_OFFICE = "out_of_office"
    RESUME = "resume"
    RESUBSCRIBE = "resubscribe"


class Effect(StrEnum):
    """What a transition asks of the world beyond the status itself.

    ``sync``
        The status changed: tell every connected system (one outbox row per sink).
    ``alert_do_not_email``, ``alert_unsubscribed``, ``alert_stopped``, ``alert_resubscribed``
        Tell the people who subscribed to that alert.
    """

    SYNC = "sync"
    ALERT_DO_NOT_EMAIL = "alert_do_not_email"
    ALERT_UNSUBSCRIBED = "alert_unsubscribed"
    ALERT_STOPPED = "alert_stopped"
    ALERT_RESUBSCRIBED = "alert_resubscribed"


class DneSource(StrEnum):
    """Where a do-not-email request came from."""

    REPLY = "reply"
    PHONE = "phone"
    REP = "rep"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class Policy:
    """The choices a sender makes about the table.

    Parameters
    ----------
    allow_resubscribe
        ``False`` forbids every resubscribe, even with consent
        (:class:`~replyguard.optout.errors.ResubscribeForbidden`).
    stop_on_not_interested
        A ``not_interested`` reply stops the conversation; ``False`` treats it
        as ``reply_other`` (no change).
    stop_on_wrong_contact
        A ``wrong_contact`` reply stops the conversation; ``False`` treats it as
        ``reply_other``.

    Examples
    --------
    >>> Policy(allow_resubscribe=False).to_dict()["allow_resubscribe"]
    False
    """

    allow_resubscribe: bool = True
    stop_on_not_interested: bool = True
    stop_on_wrong_contact: bool = True

    def __post_init__(self) -> None:
        for name in ("allow_resubscribe", "stop_on_not_interested", "stop_on_wrong_contact"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise InvalidFieldError(f"Policy.{name}", value, "True or False")

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow_resubscribe": self.allow_resubscribe,
            "stop_on_not_interested": self.stop_on_not_interested,
            "stop_on_wrong_contact": self.stop_on_wrong_contact,
        }


DEFAULT_POLICY = Policy()


# -- events ---------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(name, value)
    return value


def _text(name: str, value: object, *, required: bool = True, limit: int = 2000) -> str:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        need = "a non-empty str" if required else "a str"
        raise InvalidFieldError(name, value, f"{need} of at most {limit} characters")
    return value


def new_event_id() -> str:
    """A fresh event id: ``evt_`` + the time in ns (hex) + 64 random bits.

    Ids made later sort later, which keeps the ledger's event index compact.
    (``random`` is reseeded in a forked child, so processes do not repeat each other.)
    """
    return f"evt_{time.time_ns():016x}{random.getrandbits(64):016x}"


def _init_event(ev: Any, default_id: str | None = None) -> None:
    _aware(f"{type(ev).__name__}.at", ev.at)
    if ev.event_id == "":
        object.__setattr__(ev, "event_id", default_id or new_event_id())
    _text(f"{type(ev).__name__}.event_id", ev.event_id, limit=200)


class Event:
    """Base class of the event types (:data:`EVENT_TYPES`); not used directly.

    Every event has ``event_id`` (applying one id twice changes nothing), ``at``
    (when it happened; timezone-aware), ``source`` and ``actor`` (who), and
    :meth:`kind`, :meth:`evidence` and :meth:`to_dict`.
    """

    __slots__ = ()
    TYPE: ClassVar[str] = ""

    if TYPE_CHECKING:  # every event type has these (fields or class attributes)
        event_id: str
        at: datetime

        @property
        def source(self) -> str: ...

        @property
        def actor(self) -> str | None: ...

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:  # pragma: no cover - overridden
        """The row of :data:`TABLE` this event takes under ``policy``."""
        raise NotImplementedError

    @property
    def kind_name(self) -> str:
        """The event kind's name under the default policy (for messages)."""
        return self.kind().value

    def reason_text(self) -> str | None:
        """A person's words about why, when the event has them."""
        return None

    def evidence(self) -> dict[str, Any]:
        """What the audit trail keeps as proof (JSON-ready)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: ``type``, ``event_id``, ``at`` and the fields."""
        d: dict[str, Any] = {"type": self.TYPE, "event_id": self.event_id, "at": self.at.isoformat(),
                             "source": str(self.source), "actor": self.actor}
        d.update(self.evidence())
        reason = self.reason_text()
        if reason is not None:
            d["reason"] = reason
        return d


_REPLY_KIND = {
    Intent.DO_NOT_EMAIL: EventKind.REPLY_DO_NOT_EMAIL,
    Intent.NOT_INTERESTED: EventKind.REPLY_NOT_INTERESTED,
    Intent.OUT_OF_OFFICE: EventKind.REPLY_OUT_OF_OFFICE,
    Intent.WRONG_CONTACT: EventKind.REPLY_WRONG_CONTACT,
    Intent.INTERESTED: EventKind.REPLY_INTERESTED,
    Intent.OTHER: EventKind.REPLY_OTHER,
}

#: How much of the reply the audit trail keeps.
EXCERPT_CHARS = 280


@dataclass(frozen=True, slots=True)
class ReplyReceived(Event):
    """The contact replied; ``verdict`` is the classifier's reading of it.

    A verdict that says do-not-email (``verdict.do_not_email`` or its intent)
    always moves the contact to ``do_not_email``. The default ``event_id`` is
    ``"reply:" + message_id``, so recording one message twice changes nothing.

    Parameters
    ----------
    verdict
        A :class:`~replyguard.Verdict` from any source.
    message_id
        The reply's Message-ID (or any id unique to the message).
    at
        When the reply arrived (timezone-aware; default: now).
    event_id
        Default ``"reply:" + message_id``.
    """

    verdict: Verdict
    message_id: str = field(kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "reply_received"
    source: ClassVar[str] = "reply"
    actor: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            raise InvalidEventError(self.verdict, ["replyguard.Verdict"], what="ReplyReceived.verdict")
        _text("ReplyReceived.message_id", self.message_id, limit=998)
        _init_event(self, "reply:" + self.message_id)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        v = self.verdict
        if v.do_not_email or v.intent == Intent.DO_NOT_EMAIL:
            return EventKind.REPLY_DO_NOT_EMAIL
        k = _REPLY_KIND.get(Intent(v.intent), EventKind.REPLY_OTHER)
        if (k is EventKind.REPLY_NOT_INTERESTED and not policy.stop_on_not_interested) or (
            k is EventKind.REPLY_WRONG_CONTACT and not policy.stop_on_wrong_contact
        ):
            return EventKind.REPLY_OTHER
        return k

    def evidence(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "message_id": self.message_id,
            "intent": Intent(v.intent).value,
            "do_not_email": bool(v.do_not_email),
            "score": round(float(v.score), 6),
            "threshold": v.threshold,
            "needs_review": bool(v.needs_review),
            "rule_ids": sorted({e.id for e in v.evidence if e.source in ("rule", "header")}),
            "excerpt": v.reply_text[:EXCERPT_CHARS],
            "language": v.language,
            "model_version": v.model_version,
            "ruleset_version": v.ruleset_version,
        }


@dataclass(frozen=True, slots=True)
class UnsubscribeClicked(Event):
    """The contact clicked an unsubscribe link (or used one-click List-Unsubscribe).

    Parameters
    ----------
    campaign
        Which mailing or list the link was in, if known.
    """

    campaign: str = field(default="", kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "unsubscribe_clicked"
    source: ClassVar[str] = "link"
    actor: ClassVar[str | None] = "contact"

    def __post_init__(self) -> None:
        _text("UnsubscribeClicked.campaign", self.campaign, required=False)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.UNSUBSCRIBE_CLICKED

    def evidence(self) -> dict[str, Any]:
        return {"campaign": self.campaign} if self.campaign else {}


@dataclass(frozen=True, slots=True)
class StopMessaging(Event):
    """A rep ends the conversation (Stop Messaging). Not an opt-out: ``resume`` undoes it.

    Parameters
    ----------
    actor
        Who stopped it.
    reason
        Why, in their words.
    """

    actor: str = field(kw_only=True)
    reason: str = field(kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "stop_messaging"
    source: ClassVar[str] = "rep"

    def __post_init__(self) -> None:
        _text("StopMessaging.actor", self.actor, limit=200)
        _text("StopMessaging.reason", self.reason)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.STOP_MESSAGING

    def reason_text(self) -> str | None:
        return self.reason


@dataclass(frozen=True, slots=True)
class MarkDoNotEmail(Event):
    """Record a do-not-email request that came some other way than a classified reply.

    Parameters
    ----------
    source
        ``"reply"`` (a person read the reply), ``"phone"``, ``"rep"`` or ``"import"``.
    actor
        Who recorded it (a rep, or the importing job).
    note
        Free text: what the contact said, the import file, the call reference.
    message_id
        The reply it came from, when ``source="reply"``.
    """

    source: DneSource = field(kw_only=True)
    actor: str = field(kw_only=True)
    note: str = field(default="", kw_only=True)
    message_id: str = field(default="", kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "mark_do_not_email"

    def __post_init__(self) -> None:
        src = self.source
        if not isinstance(src, DneSource):
            try:
                src = DneSource(src)
            except ValueError:
                raise UnknownNameError("do-not-email source", src, list(DneSource)) from None
            object.__setattr__(self, "source", src)
        _text("MarkDoNotEmail.actor", self.actor, limit=200)
        _text("MarkDoNotEmail.note", self.note, required=False)
        _text("MarkDoNotEmail.message_id", self.message_id, required=False, limit=998)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.MARK_DO_NOT_EMAIL

    def reason_text(self) -> str | None:
        return self.note or None

    def evidence(self) -> dict[str, Any]:
        return {"message_id": self.message_id} if self.message_id else {}

    def to_dict(self) -> dict[str, Any]:
        d = Event.to_dict(self)
        d["source"] = self.source.value
        return d


@dataclass(frozen=True, slots=True)
class OutOfOffice(Event):
    """The contact is away until ``until``: pause until then (see ``OptOutLedger.resume_due``).

    An out-of-office *reply* without a date is a :class:`ReplyReceived`; callers
    who read the return date send this event instead.
    """

    until: datetime = field(kw_only=True)
    source: str = field(default="reply", kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "out_of_office"
    actor: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        _aware("OutOfOffice.until", self.until)
        _text("OutOfOffice.source", self.source, limit=100)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.OUT_OF_OFFICE

    def evidence(self) -> dict[str, Any]:
        return {"until": self.until.isoformat()}


@dataclass(frozen=True, slots=True)
class Resume(Event):
    """Resume a paused or stopped contact. Never leaves ``unsubscribed`` or ``do_not_email``."""

    actor: str = field(kw_only=True)
    reason: str = field(default="", kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "resume"
    source: ClassVar[str] = "rep"

    def __post_init__(self) -> None:
        _text("Resume.actor", self.actor, limit=200)
        _text("Resume.reason", self.reason, required=False)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.RESUME

    def reason_text(self) -> str | None:
        return self.reason or None


@dataclass(frozen=True, slots=True)
class Consent:
    """The contact's own consent to be emailed again: the evidence a resubscribe needs.

    Parameters
    ----------
    method
        How it was given: ``"double_opt_in"``, ``"preference_center"``,
        ``"written_request"``, ...
    reference
        Where the proof is: a confirmation message id, a form submission id.
    given_at
        When (timezone-aware).
    text
        What the contact wrote or agreed to, if any.
    """

    method: str
    reference: str
    given_at: datetime
    text: str = ""

    def __post_init__(self) -> None:
        for name in ("method", "reference"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise MissingConsentError(self, f"{name} is {value!r}")
        _aware("Consent.given_at", self.given_at)
        _text("Consent.text", self.text, required=False)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "reference": self.reference,
                "given_at": self.given_at.isoformat(), "text": self.text}


@dataclass(frozen=True, slots=True)
class Resubscribe(Event):
    """The contact asked to hear from us again, with their consent as evidence.

    The only way out of ``unsubscribed`` and ``do_not_email``; a
    ``Policy(allow_resubscribe=False)`` forbids it too.
    """

    consent: Consent
    actor: str = field(default="contact", kw_only=True)
    at: datetime = field(default_factory=_now, kw_only=True)
    event_id: str = field(default="", kw_only=True)
    TYPE: ClassVar[str] = "resubscribe"
    source: ClassVar[str] = "contact"

    def __post_init__(self) -> None:
        if not isinstance(self.consent, Consent):
            raise MissingConsentError(self.consent, "expected a replyguard.optout.Consent")
        _text("Resubscribe.actor", self.actor, limit=200)
        _init_event(self)

    def kind(self, policy: Policy = DEFAULT_POLICY) -> EventKind:
        return EventKind.RESUBSCRIBE

    def evidence(self) -> dict[str, Any]:
        return {"consent": self.consent.to_dict()}


#: The event types, by their ``TYPE`` name.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType({
    cls.TYPE: cls
    for cls in (ReplyReceived, UnsubscribeClicked, StopMessaging, MarkDoNotEmail, OutOfOffice,
                Resume, Resubscribe)
})


_EVENT_CLASSES = frozenset(EVENT_TYPES.values())


def event_kind(event: object, policy: Policy = DEFAULT_POLICY) -> EventKind:
    """The row of :data:`TABLE` that ``event`` takes under ``policy``.

    Raises
    ------
    InvalidEventError
        If ``event`` is not one of :data:`EVENT_TYPES`.
    """
    if type(event) not in _EVENT_CLASSES:
        raise InvalidEventError(event, [c.__name__ for c in EVENT_TYPES.values()])
    return event.kind(policy)  # type: ignore[attr-defined]


# -- the table -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Transition:
    """One cell of the table: the new status and the effects.

    Attributes
    ----------
    new_status
        The status after the event.
    effects
        What to do about it (:class:`Effect`), in a fixed order.
    previous
        The status before the event.
    """

    new_status: ContactStatus
    effects: tuple[Effect, ...]
    previous: ContactStatus

    @property
    def changed(self) -> bool:
        return self.new_status is not self.previous

    def to_dict(self) -> dict[str, Any]:
        return {"previous": self.previous.value, "new_status": self.new_status.value,
                "effects": [e.value for e in self.effects]}


_A, _P, _S, _U, _D = (ContactStatus.ACTIVE, ContactStatus.PAUSED, ContactStatus.STOPPED,
                      ContactStatus.UNSUBSCRIBED, ContactStatus.DO_NOT_EMAIL)
_X = None  # invalid: InvalidTransition
_COLUMNS = (_A, _P, _S, _U, _D)
K = EventKind

# The new status for each (event kind, current status). Read a row left to right:
#                                      active  paused  stopped  unsubscribed  do_not_email
_GRID: dict[EventKind, tuple[ContactStatus | None, ...]] = {
    K.REPLY_DO_NOT_EMAIL:               (_D,     _D,     _D,      _D,           _D),
    K.REPLY_NOT_INTERESTED:             (_S,     _S,     _S,      _U,           _D),
    K.REPLY_OUT_OF_OFFICE:              (_P,     _P,     _S,      _U,           _D),
    K.REPLY_WRONG_CONTACT:              (_S,     _S,     _S,      _U,           _D),
    K.REPLY_INTERESTED:                 (_A,     _A,     _S,      _U,           _D),
    K.REPLY_OTHER:                      (_A,     _P,     _S,      _U,           _D),
    K.UNSUBSCRIBE_CLICKED:              (_U,     _U,     _U,      _U,           _D),
    K.STOP_MESSAGING:                   (_S,     _S,     _S,      _U,           _D),
    K.MARK_DO_NOT_EMAIL:                (_D,     _D,     _D,      _D,           _D),
    K.OUT_OF_OFFICE:                    (_P,     _P,     _S,      _U,           _D),
    K.RESUME:                           (_X,     _A,     _A,      _X,           _X),
    K.RESUBSCRIBE:                      (_X,     _X,     _X,      _A,           _A),
}
del K

_ALERT_ON_ENTRY = {_D: Effect.ALERT_DO_NOT_EMAIL, _U: Effect.ALERT_UNSUBSCRIBED, _S: Effect.ALERT_STOPPED}


def _effects(previous: ContactStatus, new: ContactStatus, kind: EventKind) -> tuple[Effect, ...]:
    """Effects follow from the cell: a change syncs; entering a watched status alerts."""
    out: list[Effect] = []
    if new is not previous:
        out.append(Effect.SYNC)
        if new in _ALERT_ON_ENTRY:
            out.append(_ALERT_ON_ENTRY[new])
    if kind is EventKind.RESUBSCRIBE:
        out.append(Effect.ALERT_RESUBSCRIBED)
    return tuple(out)


def _build(grid: Mapping[EventKind, tuple[ContactStatus | None, ...]]
           ) -> dict[tuple[ContactStatus, EventKind], Transition | None]:
    table: dict[tuple[ContactStatus, EventKind], Transition | None] = {}
    for kind, row in grid.items():
        for status, new in zip(_COLUMNS, row, strict=True):
            table[status, kind] = None if new is None else Transition(new, _effects(status, new, kind), status)
    return table


def _validate(table: Mapping[tuple[ContactStatus, EventKind], Transition | None]) -> None:
    """Check the laws of the table; raise :class:`TableError` naming the first broken cell."""
    def fail(status: ContactStatus, kind: EventKind, law: str) -> None:
        raise TableError(f"transition table cell ({status.value}, {kind.value}) = "
                         f"{table.get((status, kind))!r} breaks the law: {law}")

    expected = {(s, k) for s in ContactStatus for k in EventKind}
    if set(table) != expected:
        missing = sorted(f"{s.value}/{k.value}" for s, k in expected - set(table))
        raise TableError(f"transition table is not total; missing cells: {', '.join(missing)}")
    for (status, kind), cell in table.items():
        if cell is None:
            if kind not in (EventKind.RESUME, EventKind.RESUBSCRIBE):
                fail(status, kind, "only resume and resubscribe may be invalid")
            if kind is EventKind.RESUBSCRIBE and status in SUPPRESSED:
                fail(status, kind, "a suppressed contact can resubscribe with consent")
            continue
        new = cell.new_status
        if cell.previous is not status:
            fail(status, kind, "a cell's previous status is its column")
        if cell.effects != _effects(status, new, kind):
            fail(status, kind, "effects follow from the cell (sync on change, alert on entry)")
        if kind in (EventKind.REPLY_DO_NOT_EMAIL, EventKind.MARK_DO_NOT_EMAIL) and new is not _D:
            fail(status, kind, "a do-not-email request always wins")
        if status in SUPPRESSED and kind is not EventKind.RESUBSCRIBE and new not in (status, _D):
            fail(status, kind, "unsubscribed and do_not_email are sticky")
        if kind is EventKind.RESUBSCRIBE and (status not in SUPPRESSED or new is not _A):
            fail(status, kind, "resubscribe takes a suppressed contact, and only it, to active")
        if kind is EventKind.RESUME and status is _A:
            fail(status, kind, "there is nothing to resume on an active contact")
        if status is _S and kind.value.startswith("reply_") and new not in (_S, _D):
            fail(status, kind, "only a rep's resume (or a do-not-email) ends a stop")


#: The transition table: ``TABLE[status, kind]`` is a :class:`Transition`, or
#: ``None`` where the event is invalid from that status.
TABLE: Mapping[tuple[ContactStatus, EventKind], Transition | None] = MappingProxyType(_build(_GRID))
_validate(TABLE)


def allowed_kinds(status: ContactStatus | str) -> tuple[EventKind, ...]:
    """The event kinds valid from ``status``.

    Examples
    --------
    >>> [k.value for k in allowed_kinds("do_not_email")][-2:]
    ['out_of_office', 'resubscribe']
    """
    s = ContactStatus.parse(status)
    return tuple(k for k in EventKind if TABLE[s, k] is not None)


def advance(status: ContactStatus | str, event: Event, *, policy: Policy = DEFAULT_POLICY) -> Transition:
    """The transition ``event`` causes from ``status``: pure, total over :data:`TABLE`.

    Parameters
    ----------
    status
        The contact's status (a member or its name).
    event
        One of :data:`EVENT_TYPES`.
    policy
        The sender's choices (:class:`Policy`).

    Returns
    -------
    Transition
        ``new_status`` and ``effects``.

    Raises
    ------
    UnknownStatusError
        ``status`` is not a status name.
    InvalidEventError
        ``event`` is not an event.
    InvalidTransition
        The table has no move for this event from ``status`` (a resume of a
        suppressed contact, a resubscribe of one who is not).
    ResubscribeForbidden
        A resubscribe under ``Policy(allow_resubscribe=False)``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from replyguard.optout import Consent, MarkDoNotEmail, Resubscribe, Resume
    >>> advance("active", MarkDoNotEmail(source="phone", actor="ana")).new_status.value
    'do_not_email'
    >>> advance("do_not_email", Resume(actor="bob"))
    Traceback (most recent call last):
    ...
    replyguard.optout.errors.InvalidTransition: cannot apply resume to a contact whose status is 'do_not_email'; ...
    >>> consent = Consent("double_opt_in", "msg-42", datetime(2026, 1, 5, tzinfo=UTC))
    >>> advance("do_not_email", Resubscribe(consent)).new_status.value
    'active'
    """
    s = ContactStatus.parse(status)
    kind = event_kind(event, policy)
    if kind is EventKind.RESUBSCRIBE and not policy.allow_resubscribe:
        raise ResubscribeForbidden(s, event, allowed=[k for k in allowed_kinds(s) if k is not kind],
                                   hint="the policy forbids resubscribing (Policy(allow_resubscribe=False))")
    cell = TABLE[s, kind]
    if cell is None:
        if s in SUPPRESSED:
            hint = ("unsubscribed and do_not_email are sticky: only Resubscribe with the contact's "
                    "consent reactivates")
        elif kind is EventKind.RESUBSCRIBE:
            hint = "the contact is not unsubscribed or do_not_email: there is nothing to resubscribe"
        else:
            hint = "the contact is active: there is nothing to resume"
        raise InvalidTransition(s, event, allowed=allowed_kinds(s), hint=hint)
    return cell


_KIND_LABEL = {
    EventKind.REPLY_DO_NOT_EMAIL: "reply: do_not_email",
    EventKind.REPLY_NOT_INTERESTED: "reply: not_interested ¹",
    EventKind.REPLY_OUT_OF_OFFICE: "reply: out_of_office",
    EventKind.REPLY_WRONG_CONTACT: "reply: wrong_contact ¹",
    EventKind.REPLY_INTERESTED: "reply: interested",
    EventKind.REPLY_OTHER: "reply: other",
    EventKind.UNSUBSCRIBE_CLICKED: "unsubscribe link clicked",
    EventKind.STOP_MESSAGING: "stop messaging (rep)",
    EventKind.MARK_DO_NOT_EMAIL: "mark do-not-email (reply, phone, rep, import)",
    EventKind.OUT_OF_OFFICE: "out of office until a date",
    EventKind.RESUME: "resume",
    EventKind.RESUBSCRIBE: "resubscribe with consent ²",
}


def table_markdown() -> str:
    """:data:`TABLE` as a Markdown table (rows: events; columns: the current status).

    A cell shows the new status in bold with its effects, ``=`` when the status
    stays (the event is still recorded in the audit trail), or
    ``InvalidTransition``.

    Examples
    --------
    >>> print(table_markdown().splitlines()[0])
    | event \\ status | active | paused | stopped | unsubscribed | do_not_email |
    """
    head = "| event \\ status | " + " | ".join(s.value for s in _COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(_COLUMNS) + 1)]
    for kind in EventKind:
        cells = []
        for status in _COLUMNS:
            cell = TABLE[status, kind]
            if cell is None:
                cells.append("InvalidTransition")
            elif not cell.effects:
                cells.append("=")
            else:
                name = f"**{cell.new_status.value}**" if cell.changed else "="
                cells.append(f"{name} ({', '.join(e.value for e in cell.effects)})")
        lines.append(f"| {_KIND_LABEL[kind]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`=`: the status stays (the event is still written to the audit trail). "
        "`sync`: one outbox row per sink; `alert_*`: one outbox row per alert subscribed to it.",
        "",
        "¹ With `Policy(stop_on_not_interested=False)` / `Policy(stop_on_wrong_contact=False)` "
        "the reply takes the `reply: other` row.  ",
        "² With `Policy(allow_resubscribe=False)` every resubscribe raises `ResubscribeForbidden`.",
    ]
    return "\n".join(lines) + "\n"
