"""The durable shell: :class:`OptOutLedger`, one store of contact statuses, audit trail and outbox.

``OptOutLedger("ledger.sqlite")`` opens (or creates) an embedded SQLite ledger;
``OptOutLedger("postgresql://host/db")`` a PostgreSQL one shared by several
machines. Both keep the same promises:

* the status change, its audit entry and its outbox rows are written in one
  transaction, or not at all;
* an event id is applied once: applying it again writes nothing and returns the
  first result;
* writers in several processes (or machines) never lose an update;
* once :meth:`OptOutLedger.apply` has returned, the change survives a crash.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..verdict import Verdict
from . import compliance as _compliance
from ._sql import SQLStore
from .alerts import ALERT_EFFECTS, AlertKind, parse_alert_kinds
from .errors import (
    EventIdConflict,
    InvalidContactIdError,
    InvalidEventError,
    InvalidFieldError,
    InvalidTransition,
    LedgerError,
    NaiveDatetimeError,
    PermanentDeliveryError,
    UnknownNameError,
    UnknownSinkError,
    UnknownStatusError,
)
from .machine import (
    _EVENT_CLASSES,
    DEFAULT_POLICY,
    SUPPRESSED,
    TABLE,
    ContactStatus,
    DneSource,
    Effect,
    Event,
    EventKind,
    OutOfOffice,
    Policy,
    ReplyReceived,
    Resume,
    advance,
    event_kind,
)
from .machine import may_email as _may_email
from .sinks import DeliveryReport, OutboxItem, OutboxMessage, RetryPolicy

__all__ = [
    "DEFAULT_LEDGER",
    "ApplyResult",
    "AuditEntry",
    "Contact",
    "OptOutLedger",
    "RetryResult",
    "SinkInfo",
]

#: The ledger the commands use when no ``--ledger`` is given (in the working directory).
DEFAULT_LEDGER = "replyguard-ledger.sqlite"
_OUTBOX_STATES = ("pending", "delivered", "dead", "superseded")
_DEFAULT_RETRY = RetryPolicy()


def _iso(d: datetime | None) -> str | None:
    return None if d is None else d.isoformat()


def _effects(text: str) -> tuple[Effect, ...]:
    return tuple(Effect(e) for e in text.split(",")) if text else ()


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one event did. Applying the same event id again returns an equal result.

    Attributes
    ----------
    contact_id, event_id
        The contact and the event.
    seq
        The event's sequence number in the ledger (grows with each event of a contact).
    previous, status
        The status before and after.
    effects
        The transition's effects (:class:`~replyguard.optout.Effect`).
    recorded_at
        When the ledger recorded the event.
    """

    contact_id: str
    event_id: str
    seq: int
    previous: ContactStatus
    status: ContactStatus
    effects: tuple[Effect, ...]
    recorded_at: datetime

    @property
    def changed(self) -> bool:
        return self.status is not self.previous

    @property
    def may_email(self) -> bool:
        return _may_email(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "event_id": self.event_id, "seq": self.seq,
                "previous": self.previous.value, "status": self.status.value,
                "effects": [e.value for e in self.effects], "may_email": self.may_email,
                "recorded_at": self.recorded_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact's current state.

    Attributes
    ----------
    contact_id
        The caller's id.
    status
        The current status (``active`` for a contact the ledger has never seen).
    since
        When the current status began (the time of the event that set it).
    updated_at
        When the ledger last recorded an event of the contact.
    paused_until
        For ``paused``: until when, if known.
    events
        How many events were applied to the contact.
    """

    contact_id: str
    status: ContactStatus
    since: datetime | None = None
    updated_at: datetime | None = None
    paused_until: datetime | None = None
    events: int = 0

    @property
    def may_email(self) -> bool:
        return _may_email(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "status": self.status.value, "may_email": self.may_email,
                "since": _iso(self.since), "updated_at": _iso(self.updated_at),
                "paused_until": _iso(self.paused_until), "events": self.events}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One applied event in a contact's history: the proof of when and why.

    Attributes
    ----------
    seq, event_id, contact_id
        Which event, of whom.
    event_type, kind
        The event type (``reply_received``, ...) and the table row it took
        (``reply_do_not_email``, ...).
    occurred_at, recorded_at
        When it happened; when the ledger recorded it.
    previous, status, effects
        The transition.
    source, actor, reason
        Where it came from (``reply``, ``link``, ``rep``, ``phone``, ``import``,
        ``contact``), who, and why in their words.
    evidence
        For replies: message id, intent, score, threshold, rule ids, an excerpt,
        model and ruleset versions; for a resubscribe: the consent.
    """

    seq: int
    event_id: str
    contact_id: str
    event_type: str
    kind: EventKind
    occurred_at: datetime
    recorded_at: datetime
    previous: ContactStatus
    status: ContactStatus
    effects: tuple[Effect, ...]
    source: str
    actor: str | None
    reason: str | None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEntry:
        return cls(seq=int(row["seq"]), event_id=row["event_id"], contact_id=row["contact_id"],
                   event_type=row["event_type"], kind=EventKind(row["kind"]), occurred_at=row["occurred_at"],
                   recorded_at=row["recorded_at"], previous=ContactStatus(row["previous"]),
                   status=ContactStatus(row["status"]), effects=_effects(row["effects"]),
                   source=row["source"], actor=row["actor"], reason=row["reason"],
                   evidence=dict(row["evidence"] or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "event_id": self.event_id, "contact_id": self.contact_id,
                "event_type": self.event_type, "kind": self.kind.value,
                "occurred_at": self.occurred_at.isoformat(), "recorded_at": self.recorded_at.isoformat(),
                "previous": self.previous.value, "status": self.status.value,
                "effects": [e.value for e in self.effects], "source": self.source, "actor": self.actor,
                "reason": self.reason, "evidence": dict(self.evidence)}


@dataclass(frozen=True, slots=True)
class SinkInfo:
    """A registered sink or alert.

    Attributes
    ----------
    name
        Its name.
    role
        ``"sync"`` (every status change) or ``"alert"`` (the kinds in ``alert_on``).
    alert_on
        The alert kinds, for alerts.
    added_at
        When it was registered.
    attached
        Whether this process holds its handler (only such a process delivers to it).
    """

    name: str
    role: str
    alert_on: tuple[AlertKind, ...]
    added_at: datetime
    attached: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "alert_on": [k.value for k in self.alert_on],
                "added_at": self.added_at.isoformat(), "attached": self.attached}


@dataclass(frozen=True, slots=True)
class RetryResult:
    """What ``ledger.retry()`` did with the dead letters.

    Attributes
    ----------
    requeued
        Ids put back in line (attempts reset).
    superseded
        Ids not resent because their sink already has a later status of the contact.
    not_dead
        Ids asked for that are not dead letters (delivered, pending or unknown).
    """

    requeued: tuple[int, ...]
    superseded: tuple[int, ...]
    not_dead: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"requeued": list(self.requeued), "superseded": list(self.superseded),
                "not_dead": list(self.not_dead)}


_EFFECTS_TEXT = {id(cell): ",".join(e.value for e in cell.effects) for cell in TABLE.values() if cell is not None}


def _result_factory() -> Callable[..., ApplyResult]:
    """``ApplyResult(...)`` for the bulk path: fills the slots through their descriptors.

    The frozen dataclass ``__init__`` sets each field with ``object.__setattr__``;
    a bulk import builds one result per event, and this is half the cost. The
    result is an ordinary, equal, frozen ``ApplyResult``.
    """
    new = object.__new__
    s0, s1, s2, s3, s4, s5, s6 = (ApplyResult.__dict__[f.name].__set__ for f in dataclasses.fields(ApplyResult))

    def make(contact_id: str, event_id: str, seq: int, previous: ContactStatus, status: ContactStatus,
             effects: tuple[Effect, ...], recorded_at: datetime) -> ApplyResult:
        r = new(ApplyResult)
        s0(r, contact_id)
        s1(r, event_id)
        s2(r, seq)
        s3(r, previous)
        s4(r, status)
        s5(r, effects)
        s6(r, recorded_at)
        return r

    return make


_make_result = _result_factory()


class _Planner:
    """Decides one event inside the store's transaction: pure but for the values it is given."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def stored(self, row: Mapping[str, Any]) -> ApplyResult:
        return ApplyResult(contact_id=row["contact_id"], event_id=row["event_id"], seq=int(row["seq"]),
                           previous=ContactStatus(row["previous"]), status=ContactStatus(row["status"]),
                           effects=_effects(row["effects"]), recorded_at=row["recorded_at"])

    def plan(self, contact_id: str, event: Event, state: tuple[Any, ...] | None,
             sinks: Sequence[Mapping[str, Any]], seq: int, now: datetime,
             conv: tuple[Any, Callable[[datetime | None], Any], Callable[[Any], Any], Any]
             ) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]], ApplyResult]:
        """The contact's new state, the audit row, the outbox rows and the result of ``event``.

        ``state`` is ``(status, since, since for the store, paused_until, events, last_seq)``
        (``None`` for a contact never seen); ``conv`` is ``(now for the store, ts, jin, jin({}))``.
        This runs once per event of a bulk import: keep it lean.
        """
        now_db, ts, jin, empty = conv
        prev = _ACTIVE if state is None else _STATUS[state[0]]
        kind = event.kind(self.policy)
        t = TABLE[prev, kind]
        if t is None or kind is _RESUBSCRIBE:
            t = advance(prev, event, policy=self.policy)  # raises the right error, or checks the policy
        new = t.new_status
        until: datetime | None = None
        if new is _PAUSED:
            if isinstance(event, OutOfOffice):
                until = event.until
            elif state is not None and prev is _PAUSED:
                until = state[3]
        at = event.at
        at_db = ts(at)
        changed = new is not prev
        new_value = _VALUE[new]
        if changed or state is None or not state[4]:
            new_state = (new_value, at, at_db, until, 1 if state is None else state[4] + 1, seq)
        else:
            new_state = (new_value, state[1], state[2], until, state[4] + 1, seq)
        evidence = event.evidence()
        event_id = event.event_id
        event_row = (seq, event_id, contact_id, event.TYPE, _VALUE[kind], at_db, now_db, _VALUE[prev], new_value,
                     _EFFECTS_TEXT[id(t)], _VALUE.get(event.source) or str(event.source), event.actor,
                     event.reason_text(), jin(evidence) if evidence else empty)
        result = _make_result(contact_id, event_id, seq, prev, new, t.effects, now)
        outbox: list[tuple[Any, ...]] = []
        if changed and sinks:
            for sink in sinks:
                if sink["role"] == "sync":
                    outbox.append((seq, contact_id, sink["name"], "sync", None, "pending", 0, now_db))
                    continue
                for name in sink["alert_on"]:
                    if _ALERT_EFFECT_BY_NAME[name] in t.effects:
                        outbox.append((seq, contact_id, sink["name"], "alert", name, "pending", 0, now_db))
                        break
        return new_state, event_row, outbox, result


_ACTIVE, _PAUSED = ContactStatus.ACTIVE, ContactStatus.PAUSED
_RESUBSCRIBE = EventKind.RESUBSCRIBE
_STATUS = {s.value: s for s in ContactStatus}
#: enum member -> its value, for the hot path (a dict lookup is cheaper than ``.value``)
_VALUE: dict[Any, str] = {m: m.value for enum in (ContactStatus, EventKind, DneSource) for m in enum}
_ALERT_EFFECT_BY_NAME = {k.value: e for k, e in ALERT_EFFECTS.items()}


@dataclass(frozen=True, slots=True)
class _Handler:
    call: Callable[[OutboxMessage], Any]
    retry: RetryPolicy


def _check_contact(contact_id: object) -> str:
    if not isinstance(contact_id, str) or not contact_id or len(contact_id) > 512:
        raise InvalidContactIdError(contact_id)
    return contact_id


def _check_time(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(name, value)
    return value.astimezone(UTC)


def _statuses(status: object) -> list[str] | None:
    if status is None:
        return None
    if isinstance(status, str | ContactStatus):
        items: list[object] = [status]
    elif isinstance(status, Iterable):
        items = list(status)
    else:
        raise UnknownStatusError(status, list(ContactStatus))
    return [ContactStatus.parse(s).value for s in items]


def _sink_callable(name: str, sink: object) -> Callable[[OutboxMessage], Any]:
    deliver = getattr(sink, "deliver", None)
    if callable(deliver):
        return deliver
    if callable(sink):
        return sink
    raise InvalidFieldError(f"sink {name!r}", sink, "a callable message -> None or an object with deliver(message)")


def _open_store(path_or_url: str | os.PathLike[str], *, create: bool, now: datetime) -> SQLStore:
    if isinstance(path_or_url, os.PathLike):
        path_or_url = os.fspath(path_or_url)
    if not isinstance(path_or_url, str) or not path_or_url:
        raise InvalidFieldError("path_or_url", path_or_url,
                                "a SQLite file path, 'sqlite:///path' or 'postgresql://...'")
    if path_or_url.startswith(("postgresql://", "postgres://")):
        from ._postgres import PostgresStore

        return PostgresStore(path_or_url, create=create, now=now)
    if path_or_url.startswith("sqlite://"):
        path_or_url = path_or_url[len("sqlite://"):]
        if path_or_url.startswith("/") and not path_or_url.startswith("//"):
            path_or_url = path_or_url[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
        elif path_or_url.startswith("//"):
            path_or_url = path_or_url[1:]
    elif "://" in path_or_url:
        scheme = path_or_url.split("://", 1)[0]
        raise UnknownNameError("ledger URL scheme", scheme, ["a file path", "sqlite", "postgresql", "postgres"])
    from ._sqlite import SQLiteStore

    return SQLiteStore(path_or_url, create=create, now=now)


class OptOutLedger:
    """The durable opt-out ledger: statuses, their audit trail and the outbox to connected systems.

    Parameters
    ----------
    path_or_url
        A SQLite file (created if missing; ``":memory:"`` for a throwaway one),
        ``sqlite:///path``, or ``postgresql://user@host/db[?schema=name]``.
    policy
        The :class:`~replyguard.optout.Policy` applied to every event.
    create
        ``False``: raise :class:`~replyguard.optout.errors.LedgerNotFoundError`
        instead of creating a new ledger.
    clock
        Returns the current time (timezone-aware); default: UTC now.
    lease
        How long a deliverer holds a claimed outbox row before another may
        retry it (keep it above the slowest sink's timeout).

    Raises
    ------
    NotALedgerError
        The file or schema holds something else. It is not modified.
    LedgerVersionError
        The ledger has a newer schema than this replyguard reads. It is not modified.

    Examples
    --------
    >>> from replyguard.optout import OptOutLedger, StopMessaging
    >>> ledger = OptOutLedger(":memory:")
    >>> r = ledger.apply("c-1", StopMessaging(actor="ana", reason="asked on a call", event_id="e-1"))
    >>> r.previous.value, r.status.value, ledger.may_email("c-1")
    ('active', 'stopped', False)
    >>> ledger.apply("c-1", StopMessaging(actor="ana", reason="asked on a call", event_id="e-1")) == r
    True
    >>> len(ledger.history("c-1"))
    1
    >>> ledger.close()
    """

    def __init__(self, path_or_url: str | os.PathLike[str], *, policy: Policy = DEFAULT_POLICY,
                 create: bool = True, clock: Callable[[], datetime] | None = None,
                 lease: timedelta = timedelta(minutes=2)) -> None:
        if not isinstance(policy, Policy):
            raise InvalidFieldError("policy", policy, "a replyguard.optout.Policy")
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise InvalidFieldError("lease", lease, "a positive timedelta")
        self.policy = policy
        self.lease = lease
        self._clock = clock or (lambda: datetime.now(UTC))
        self._planner = _Planner(policy)
        self._handlers: dict[str, _Handler] = {}
        self._hlock = threading.Lock()
        self._pid = os.getpid()
        self.location = os.fspath(path_or_url) if isinstance(path_or_url, os.PathLike) else path_or_url
        self._store_obj: SQLStore | None = _open_store(path_or_url, create=create, now=self._now(None))
        self.where = self._store_obj.where

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def _store(self) -> SQLStore:
        store = self._store_obj
        if store is None:
            raise LedgerError(f"the ledger {self.where} is closed")
        if os.getpid() != self._pid:
            raise LedgerError(f"the ledger {self.where} was opened in process {self._pid}; "
                              "open an OptOutLedger in each process (connections do not survive a fork)")
        return store

    def _now(self, now: datetime | None) -> datetime:
        return _check_time("now" if now is not None else "clock()", now if now is not None else self._clock())

    def close(self) -> None:
        """Close the connection. The ledger object cannot be used afterwards."""
        store, self._store_obj = self._store_obj, None
        if store is not None and os.getpid() == self._pid:
            store.close()

    def __enter__(self) -> OptOutLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OptOutLedger({self.where})"

    # -- applying events -----------------------------------------------------------------------
    def apply(self, contact_id: str, event: Event) -> ApplyResult:
        """Apply one event to a contact, durably, in one transaction.

        Parameters
        ----------
        contact_id
            The caller's id for the contact; unknown ids are new ``active`` contacts.
        event
            One of the event types (:data:`~replyguard.optout.EVENT_TYPES`).

        Returns
        -------
        ApplyResult
            The transition. Applying the same ``event_id`` again writes nothing
            and returns the first result.

        Raises
        ------
        InvalidTransition
            The event is not allowed from the contact's status (nothing is written).
        EventIdConflict
            The event id was already applied to another contact or as another event type.

        Examples
        --------
        >>> from replyguard.optout import OptOutLedger, MarkDoNotEmail
        >>> with OptOutLedger(":memory:") as ledger:
        ...     ledger.apply("c-9", MarkDoNotEmail(source="phone", actor="ana")).status.value
        'do_not_email'
        """
        return self.apply_many([(contact_id, event)])[0]

    def apply_many(self, items: Iterable[tuple[str, Event]]) -> list[ApplyResult]:
        """Apply events in order, all in one transaction (bulk imports).

        If any event is invalid, nothing is written and the error names its index.
        For batches of 1,000 events or more the cyclic garbage collector is paused
        while the batch is applied (nothing it allocates forms cycles), then resumed.

        Examples
        --------
        >>> from replyguard.optout import OptOutLedger, MarkDoNotEmail
        >>> with OptOutLedger(":memory:") as ledger:
        ...     rs = ledger.apply_many([(f"c-{i}", MarkDoNotEmail(source="import", actor="crm-export"))
        ...                             for i in range(3)])
        ...     [r.status.value for r in rs], len(ledger.contacts(status="do_not_email"))
        (['do_not_email', 'do_not_email', 'do_not_email'], 3)
        """
        # A bulk import allocates a few objects per event and none of them form cycles: the cyclic
        # garbage collector would only re-scan them, again and again (a third of the Python time
        # of a 100,000-event batch). It is paused for the batch and resumed as it was.
        items = items if isinstance(items, list | tuple) else list(items)
        pause_gc = len(items) >= 1000 and gc.isenabled()
        if pause_gc:
            gc.disable()
        try:
            return self._apply_many(items)
        finally:
            if pause_gc:
                gc.enable()

    def _apply_many(self, items: Sequence[tuple[str, Event]]) -> list[ApplyResult]:
        checked: list[tuple[str, Event]] = []
        for i, item in enumerate(items):
            try:
                contact_id, event = item
            except (TypeError, ValueError):
                raise InvalidEventError(item, ["(contact_id, event) pairs"], what=f"apply_many item {i}") from None
            if type(event) not in _EVENT_CLASSES:
                event_kind(event)  # raises InvalidEventError naming the allowed types
            if type(contact_id) is not str or not contact_id or len(contact_id) > 512:
                _check_contact(contact_id)  # a str subclass passes; anything else raises
            checked.append((contact_id, event))
        if not checked:
            return []
        try:
            return self._store.apply_batch(checked, self._planner, self._now(None))
        except ValueError as exc:
            if len(checked) > 1 and hasattr(exc, "add_note"):
                bad = getattr(exc, "event", None)
                for i, (_, ev) in enumerate(checked):
                    if ev is bad:
                        exc.add_note(f"apply_many item {i}; nothing was written")
                        break
            raise

    def record_reply(self, contact_id: str, text_or_verdict: str | Verdict, *, message_id: str,
                     at: datetime | None = None, model: Any = None) -> ApplyResult:
        """Record a reply: classify it if it is text, then apply it.

        Parameters
        ----------
        contact_id
            Who replied.
        text_or_verdict
            The reply as received (classified with :func:`replyguard.classify_reply`,
            imported on first use) or a :class:`~replyguard.Verdict` from any source.
        message_id
            The reply's Message-ID: the event id is ``"reply:" + message_id``, so a
            message recorded twice is applied once (and not classified again).
        at
            When the reply arrived (timezone-aware; default: now).
        model
            Passed to ``classify_reply`` (a ``ReplyClassifier`` or a model directory).

        Examples
        --------
        >>> from replyguard import Intent, Verdict
        >>> from replyguard.optout import OptOutLedger
        >>> v = Verdict(intent=Intent.DO_NOT_EMAIL, do_not_email=True, score=0.98, scores={},
        ...             needs_review=False, evidence=(), reply_text="Take me off your list.",
        ...             language="en", model_version="m", ruleset_version="r")
        >>> with OptOutLedger(":memory:") as ledger:
        ...     ledger.record_reply("c-3", v, message_id="<abc@mail>").status.value
        'do_not_email'
        """
        contact_id = _check_contact(contact_id)
        if isinstance(text_or_verdict, Verdict):
            verdict = text_or_verdict
        elif isinstance(text_or_verdict, str):
            if not isinstance(message_id, str) or not message_id.strip():
                raise InvalidFieldError("message_id", message_id, "a non-empty str")
            row = self._store.event("reply:" + message_id)
            if row is not None:
                if row["contact_id"] != contact_id:
                    raise EventIdConflict(row["event_id"], f"to contact {row['contact_id']!r}, not {contact_id!r}")
                return self._planner.stored(row)
            from .. import classify_reply

            verdict = classify_reply(text_or_verdict) if model is None else classify_reply(text_or_verdict, model=model)
        else:
            raise InvalidEventError(text_or_verdict, ["str (the reply text)", "replyguard.Verdict"],
                                    what="text_or_verdict")
        event = ReplyReceived(verdict, message_id=message_id, at=at if at is not None else self._now(None))
        return self.apply(contact_id, event)

    def resume_due(self, *, now: datetime | None = None, actor: str = "replyguard") -> list[ApplyResult]:
        """Resume every paused contact whose ``paused_until`` has passed.

        Each resume has the event id ``resume:<contact>:<paused_until>``, so
        running this from several places at once resumes each contact once.
        """
        t = self._now(now)
        out = []
        for contact_id, until in self._store.paused_due(t):
            ev = Resume(actor=actor, reason="out of office ended", at=t,
                        event_id=f"resume:{contact_id}:{until.isoformat()}")
            try:
                out.append(self.apply(contact_id, ev))
            except InvalidTransition:  # changed since we looked (a reply resumed it): nothing to resume
                if self.status(contact_id) is ContactStatus.PAUSED:
                    raise
        return out

    # -- reading -------------------------------------------------------------------------------
    def contact(self, contact_id: str) -> Contact:
        """The contact's current state (``active`` with no history if never seen)."""
        row = self._store.contact(_check_contact(contact_id))
        if row is None or not row["events"]:
            return Contact(contact_id, ContactStatus.ACTIVE)
        return Contact(contact_id, ContactStatus(row["status"]), row["since"], row["updated_at"],
                       row["paused_until"], int(row["events"]))

    def status(self, contact_id: str) -> ContactStatus:
        """The contact's status; ``active`` for a contact the ledger has never seen."""
        return self.contact(contact_id).status

    def may_email(self, contact_id: str) -> bool:
        """Whether the contact may be emailed now (its status is ``active``)."""
        return _may_email(self.status(contact_id))

    def contacts(self, *, status: str | ContactStatus | Iterable[str | ContactStatus] | None = None,
                 since: datetime | None = None, limit: int | None = None) -> list[Contact]:
        """Contacts by status, whose current status began at or after ``since``.

        Parameters
        ----------
        status
            A status or several (``None``: all).
        since
            Timezone-aware; only contacts whose status began at or after it.
        limit
            At most this many, oldest first.
        """
        statuses = _statuses(status)
        since_utc = None if since is None else _check_time("since", since)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidFieldError("limit", limit, "an int >= 0 or None")
        return [Contact(r["contact_id"], ContactStatus(r["status"]), r["since"], r["updated_at"],
                        r["paused_until"], int(r["events"]))
                for r in self._store.contacts(statuses, since_utc, limit) if r["events"]]

    def history(self, contact_id: str) -> list[AuditEntry]:
        """The contact's applied events, oldest first: the audit trail."""
        return [AuditEntry.from_row(r) for r in self._store.history(_check_contact(contact_id))]

    def counts(self) -> dict[str, int]:
        """Rows per table: ``contacts``, ``events`` and ``outbox_<state>``."""
        return self._store.counts()

    # -- sinks and alerts ----------------------------------------------------------------------
    def _register(self, name: str, sink: object, role: str, on: tuple[AlertKind, ...], retry: RetryPolicy) -> None:
        if not isinstance(name, str) or not name.strip() or len(name) > 100 or "," in name:
            raise InvalidFieldError("sink name", name, "a non-empty str of at most 100 characters without ','")
        if not isinstance(retry, RetryPolicy):
            raise InvalidFieldError("retry", retry, "a replyguard.optout.RetryPolicy")
        call = _sink_callable(name, sink)
        clash = self._store.register_sink(name, role, [k.value for k in on], self._now(None))
        if clash is not None:
            raise UnknownSinkError(name, [s.name for s in self.sinks() if s.role == role],
                                   f"{name!r} is registered as a {clash['role']} sink, not a {role} one")
        with self._hlock:
            self._handlers[name] = _Handler(call, retry)

    def add_sink(self, name: str, sink: object, *, retry: RetryPolicy = _DEFAULT_RETRY) -> None:
        """Register a connected system: it gets every status change from now on.

        The name is stored in the ledger, so every process that applies events
        writes outbox rows for it; only processes that called ``add_sink`` with
        the handler deliver them (:meth:`deliver`).

        Parameters
        ----------
        name
            A stable name (it keys the outbox rows and the compliance view).
        sink
            A callable ``sink(message)`` or an object with ``deliver(message)``.
        retry
            Backoff and the attempts before a dead letter.
        """
        self._register(name, sink, "sync", (), retry)

    def add_alert(self, name: str, handler: object, *, on: str | AlertKind | Iterable[str | AlertKind],
                  retry: RetryPolicy = _DEFAULT_RETRY) -> None:
        """Subscribe ``handler`` to alerts of the kinds ``on``.

        Parameters
        ----------
        name
            A stable name.
        handler
            A callable ``handler(message)``, an object with ``deliver(message)``,
            or a :class:`~replyguard.optout.WebhookSink`.
        on
            ``do_not_email``, ``unsubscribed``, ``stopped``, ``resubscribed`` (one or several).
        retry
            Backoff and the attempts before a dead letter.
        """
        self._register(name, handler, "alert", parse_alert_kinds(on), retry)

    def remove_sink(self, name: str) -> bool:
        """Unregister a sink or alert: no rows for it from now on (existing rows stay listed)."""
        with self._hlock:
            self._handlers.pop(name, None)
        return self._store.remove_sink(name)

    def sinks(self) -> list[SinkInfo]:
        """The registered sinks and alerts."""
        return [SinkInfo(s["name"], s["role"], tuple(AlertKind(a) for a in s["alert_on"]), s["added_at"],
                         s["name"] in self._handlers) for s in self._store.sinks()]

    # -- the outbox ----------------------------------------------------------------------------
    def deliver(self, *, now: datetime | None = None, limit: int = 100,
                sinks: Iterable[str] | None = None) -> DeliveryReport:
        """Deliver due outbox rows to the sinks attached in this process.

        Each sink runs on its own (in its own thread when there are several), in
        passes of up to ``limit`` rows, oldest first and in order per contact,
        until it has nothing due or a whole pass only failed. A failure is
        recorded on its row (retried with backoff, or a dead letter) and never
        holds up the other sinks. Safe to run from several processes at once:
        rows are leased.

        Parameters
        ----------
        now
            The time to use (tests); default: the clock.
        limit
            Rows claimed per sink and pass.
        sinks
            Only these sinks (default: every attached one).
        """
        with self._hlock:
            handlers = dict(self._handlers)
        if sinks is not None:
            names = list(sinks)
            for n in names:
                if n not in handlers:
                    raise UnknownSinkError(n, sorted(handlers), "no handler attached in this process")
            handlers = {n: handlers[n] for n in names}
        if not isinstance(limit, int) or limit < 1:
            raise InvalidFieldError("limit", limit, "an int >= 1")
        if not handlers:
            return DeliveryReport()
        owner = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        if len(handlers) == 1:
            ((name, handler),) = handlers.items()
            reports = [self._deliver_sink(name, handler, now, limit, owner)]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=len(handlers), thread_name_prefix="replyguard-sink") as pool:
                futures = [pool.submit(self._deliver_sink, n, h, now, limit, owner) for n, h in handlers.items()]
                reports = [f.result() for f in futures]
        return DeliveryReport(sum(r.delivered for r in reports), sum(r.retrying for r in reports),
                              sum(r.dead for r in reports), tuple(e for r in reports for e in r.errors))

    def _deliver_sink(self, name: str, handler: _Handler, now: datetime | None, limit: int,
                      owner: str) -> DeliveryReport:
        """One sink's passes: claim, hand over in order, record; stop when a pass moved nothing."""
        store = self._store
        delivered = retrying = dead = 0
        errors: list[tuple[int, str, str]] = []
        while True:
            t = self._now(now)
            rows = store.claim([name], t, t + self.lease, owner, limit)
            if not rows:
                break
            outs = self._run_sink(name, handler, rows, now)
            store.complete(outs, owner)
            moved = 0
            for o in outs:
                if o["state"] == "delivered":
                    delivered += 1
                    moved += 1
                else:
                    errors.append((int(o["id"]), name, o["error"]))
                    if o["state"] == "dead":
                        dead += 1
                        moved += 1
                    else:
                        retrying += 1
            if not moved:  # every row of the pass will be retried later: the sink is down
                break
        return DeliveryReport(delivered, retrying, dead, tuple(errors))

    def _run_sink(self, name: str, handler: _Handler, rows: list[dict[str, Any]],
                  now: datetime | None) -> list[dict[str, Any]]:
        """Hand ``rows`` to one sink in order; return the outcome of each."""
        outs = []
        for row in rows:
            msg = OutboxMessage.from_row(row)
            try:
                handler.call(msg)
            except Exception as exc:  # recorded on the row and in the report, then retried
                at = self._now(now)
                attempts = int(row["attempts"]) + 1
                wait = handler.retry.delay(attempts)
                after = getattr(exc, "retry_after", None)
                if after:
                    wait = max(wait, timedelta(seconds=float(after)))
                final = isinstance(exc, PermanentDeliveryError) or attempts >= handler.retry.max_attempts
                outs.append({"id": row["id"], "state": "dead" if final else "pending", "sink": name,
                             "next_attempt_at": at + wait, "error": f"{type(exc).__name__}: {exc}"[:2000],
                             "at": at})
            else:
                at = self._now(now)
                outs.append({"id": row["id"], "state": "delivered", "sink": name, "next_attempt_at": at,
                             "error": row["last_error"], "at": at})
        return outs

    def outbox(self, *, state: str | Iterable[str] | None = None, sink: str | None = None,
               contact_id: str | None = None, limit: int | None = None) -> list[OutboxItem]:
        """List outbox rows, oldest first.

        Parameters
        ----------
        state
            ``pending``, ``delivered``, ``dead`` (the dead letters), ``superseded``; one or several.
        sink, contact_id
            Only these.
        limit
            At most this many.
        """
        states = None
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            for s in states:
                if s not in _OUTBOX_STATES:
                    raise UnknownNameError("outbox state", s, _OUTBOX_STATES)
        return [OutboxItem.from_row(r) for r in self._store.outbox(states, sink, contact_id, limit)]

    def retry(self, ids: Iterable[int] | None = None, *, sink: str | None = None,
              now: datetime | None = None) -> RetryResult:
        """Put dead letters back in line (all of them, those of ``sink``, or the given ids).

        A dead status message whose sink has since received a later status of the
        same contact is marked ``superseded`` instead of being resent.
        """
        id_list = None
        if ids is not None:
            id_list = list(ids)
            for i in id_list:
                if isinstance(i, bool) or not isinstance(i, int):
                    raise InvalidFieldError("outbox id", i, "an int")
        requeued, superseded, missing = self._store.requeue(id_list, sink, self._now(now))
        return RetryResult(tuple(requeued), tuple(superseded), tuple(missing))

    # -- compliance ----------------------------------------------------------------------------
    def compliance(self, *, contact_id: str | None = None,
                   statuses: Iterable[str | ContactStatus] = tuple(SUPPRESSED)) -> list[_compliance.ComplianceRecord]:
        """For each suppressed contact: when the request came and when each sink confirmed it.

        Examples
        --------
        >>> from replyguard.optout import OptOutLedger, UnsubscribeClicked
        >>> with OptOutLedger(":memory:") as ledger:
        ...     ledger.add_sink("crm", lambda message: None)
        ...     _ = ledger.apply("c-1", UnsubscribeClicked())
        ...     before = ledger.compliance()[0].confirmed
        ...     _ = ledger.deliver()
        ...     before, ledger.compliance()[0].confirmed
        (False, True)
        """
        sts = _statuses(list(statuses)) or []
        cid = None if contact_id is None else _check_contact(contact_id)
        return _compliance.build_records(self._store.compliance_rows(sorted(sts), cid))

    def compliance_report(self, *, now: datetime | None = None,
                          warn_after: timedelta = _compliance.DEFAULT_WARN_AFTER,
                          deadline_business_days: int = _compliance.DEFAULT_DEADLINE_BUSINESS_DAYS
                          ) -> _compliance.ComplianceReport:
        """Opt-outs not yet confirmed by every sink and older than ``warn_after``.

        Parameters
        ----------
        now
            The time ages are measured to (default: the clock).
        warn_after
            Default 2 days: the mailbox providers' rule.
        deadline_business_days
            Default 10: the CAN-SPAM / CASL rule; items past it have ``past_deadline``.
        """
        if not isinstance(warn_after, timedelta) or warn_after < timedelta(0):
            raise InvalidFieldError("warn_after", warn_after, "a timedelta >= 0")
        if not isinstance(deadline_business_days, int) or deadline_business_days < 0:
            raise InvalidFieldError("deadline_business_days", deadline_business_days, "an int >= 0")
        return _compliance.build_report(self.compliance(), now=self._now(now), warn_after=warn_after,
                                        deadline_business_days=deadline_business_days)

