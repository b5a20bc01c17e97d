"""The compliance view: when each opt-out came, and when each connected system confirmed it.

For every suppressed contact (``unsubscribed`` or ``do_not_email``) a
:class:`ComplianceRecord` names the request that began the current
suppression (when, how, who, the evidence's event id) and, per sink, when the
sink first accepted a status message sent since then. A
:class:`ComplianceReport` lists the opt-outs some sink has not confirmed that
are older than ``warn_after``, and flags the ones past the legal deadline.

The defaults reflect two rules: mailbox providers (Gmail's and Yahoo's bulk
sender requirements) expect unsubscribes honoured within **2 days**; CAN-SPAM
(US) and CASL (Canada) allow **10 business days**. Business days here are
Monday to Friday in UTC; public holidays are not known, so the count errs on
the early side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .machine import ContactStatus

__all__ = [
    "DEFAULT_DEADLINE_BUSINESS_DAYS",
    "DEFAULT_WARN_AFTER",
    "ComplianceRecord",
    "ComplianceReport",
    "OverdueOptOut",
    "SinkConfirmation",
    "business_days_between",
]

#: Mailbox providers' rule: honour an unsubscribe within 2 days.
DEFAULT_WARN_AFTER = timedelta(days=2)
#: CAN-SPAM / CASL: within 10 business days.
DEFAULT_DEADLINE_BUSINESS_DAYS = 10


def _iso(d: datetime | None) -> str | None:
    return None if d is None else d.isoformat()


def business_days_between(start: datetime | date, end: datetime | date) -> int:
    """Business days (Mon-Fri) after ``start``'s day, up to and including ``end``'s day.

    Examples
    --------
    >>> from datetime import date
    >>> business_days_between(date(2026, 1, 2), date(2026, 1, 9))  # Friday to next Friday
    5
    >>> business_days_between(date(2026, 1, 9), date(2026, 1, 9))
    0
    """
    d0 = start.date() if isinstance(start, datetime) else start
    d1 = end.date() if isinstance(end, datetime) else end
    if d1 <= d0:
        return 0
    days = (d1 - d0).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for i in range(1, rest + 1):
        if (d0 + timedelta(days=weeks * 7 + i)).weekday() < 5:
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class SinkConfirmation:
    """Where one sink stands on one opt-out.

    Attributes
    ----------
    sink
        The sink's name.
    confirmed_at
        When the sink first accepted a status message sent since the request (``None``: not yet).
    state
        ``delivered``, or the state of the latest undelivered message (``pending``, ``dead``).
    attempts
        Attempts made on the latest message.
    last_error
        The latest error, if any.
    """

    sink: str
    confirmed_at: datetime | None
    state: str
    attempts: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"sink": self.sink, "confirmed_at": _iso(self.confirmed_at), "state": self.state,
                "attempts": self.attempts, "last_error": self.last_error}


@dataclass(frozen=True, slots=True)
class ComplianceRecord:
    """One suppressed contact: the request and each sink's confirmation.

    Attributes
    ----------
    contact_id, status
        The contact and its current (suppressed) status.
    requested_at
        When the request came (the event's time).
    recorded_at
        When the ledger recorded it.
    event_id, event_type, source, actor, reason
        The request: the event that began the current suppression.
    confirmations
        One per sink that was registered when the request was recorded.
    """

    contact_id: str
    status: ContactStatus
    requested_at: datetime
    recorded_at: datetime
    event_id: str
    event_type: str
    source: str
    actor: str | None
    reason: str | None
    confirmations: tuple[SinkConfirmation, ...]

    @property
    def confirmed(self) -> bool:
        """Every sink confirmed (vacuously true with no sinks)."""
        return all(c.confirmed_at is not None for c in self.confirmations)

    @property
    def confirmed_at(self) -> datetime | None:
        """When the last sink confirmed, or ``None`` while one has not."""
        if not self.confirmed:
            return None
        return max((c.confirmed_at for c in self.confirmations if c.confirmed_at), default=self.recorded_at)

    @property
    def missing_sinks(self) -> tuple[str, ...]:
        return tuple(c.sink for c in self.confirmations if c.confirmed_at is None)

    def to_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "status": self.status.value,
                "requested_at": _iso(self.requested_at), "recorded_at": _iso(self.recorded_at),
                "event_id": self.event_id, "event_type": self.event_type, "source": self.source,
                "actor": self.actor, "reason": self.reason, "confirmed": self.confirmed,
                "confirmed_at": _iso(self.confirmed_at),
                "confirmations": [c.to_dict() for c in self.confirmations]}


@dataclass(frozen=True, slots=True)
class OverdueOptOut:
    """An opt-out some sink has not confirmed, older than the warning threshold.

    Attributes
    ----------
    record
        The compliance record.
    age
        Time since the request.
    business_days
        Business days since the request (:func:`business_days_between`).
    past_warn_after
        Older than ``warn_after`` (default: the 2-day mailbox-provider rule).
    past_deadline
        More than ``deadline_business_days`` business days (default: the
        10-business-day CAN-SPAM/CASL rule).
    """

    record: ComplianceRecord
    age: timedelta
    business_days: int
    past_warn_after: bool
    past_deadline: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "age_hours": round(self.age.total_seconds() / 3600, 2),
                "business_days": self.business_days, "missing_sinks": list(self.record.missing_sinks),
                "past_warn_after": self.past_warn_after, "past_deadline": self.past_deadline}


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """Opt-outs not yet delivered to every sink, older than ``warn_after``.

    Attributes
    ----------
    generated_at
        The time the ages are measured to.
    warn_after, deadline_business_days
        The thresholds used.
    checked
        How many suppressed contacts were checked.
    overdue
        The overdue opt-outs, oldest first.
    """

    generated_at: datetime
    warn_after: timedelta
    deadline_business_days: int
    checked: int
    overdue: tuple[OverdueOptOut, ...]

    @property
    def ok(self) -> bool:
        """Nothing is overdue."""
        return not self.overdue

    @property
    def past_deadline(self) -> tuple[OverdueOptOut, ...]:
        return tuple(o for o in self.overdue if o.past_deadline)

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at.isoformat(),
                "warn_after_hours": self.warn_after.total_seconds() / 3600,
                "deadline_business_days": self.deadline_business_days, "checked": self.checked,
                "overdue": [o.to_dict() for o in self.overdue], "past_deadline": len(self.past_deadline)}


def build_records(rows: Iterable[Mapping[str, Any]]) -> list[ComplianceRecord]:
    """Fold the store's compliance rows (one per contact and sync message) into records."""
    by_contact: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for row in rows:
        cid = row["contact_id"]
        rec = by_contact.get(cid)
        if rec is None:
            rec = by_contact[cid] = {"row": row, "sinks": {}}
            order.append(cid)
        sink = row.get("sink")
        if sink is None:
            continue
        s = rec["sinks"].setdefault(sink, {"confirmed_at": None, "state": row["state"],
                                           "attempts": row["attempts"], "last_error": row["last_error"]})
        if row["state"] == "delivered":
            if s["confirmed_at"] is None or row["delivered_at"] < s["confirmed_at"]:
                s["confirmed_at"] = row["delivered_at"]
            s["state"] = "delivered"
        elif s["confirmed_at"] is None:
            s.update(state=row["state"], attempts=row["attempts"], last_error=row["last_error"])
    out = []
    for cid in order:
        r = by_contact[cid]["row"]
        confirmations = tuple(
            SinkConfirmation(sink, v["confirmed_at"], v["state"], int(v["attempts"] or 0), v["last_error"])
            for sink, v in sorted(by_contact[cid]["sinks"].items()))
        out.append(ComplianceRecord(
            contact_id=cid, status=ContactStatus(r["status"]), requested_at=r["occurred_at"],
            recorded_at=r["recorded_at"], event_id=r["event_id"], event_type=r["event_type"],
            source=r["source"], actor=r["actor"], reason=r["reason"], confirmations=confirmations))
    return out


def build_report(records: Iterable[ComplianceRecord], *, now: datetime, warn_after: timedelta,
                 deadline_business_days: int) -> ComplianceReport:
    """The overdue opt-outs among ``records``."""
    overdue = []
    checked = 0
    for rec in records:
        checked += 1
        if rec.confirmed:
            continue
        age = now - rec.requested_at
        bdays = business_days_between(rec.requested_at, now)
        past_warn = age > warn_after
        past_deadline = bdays > deadline_business_days
        if past_warn or past_deadline:
            overdue.append(OverdueOptOut(rec, age, bdays, past_warn, past_deadline))
    overdue.sort(key=lambda o: (o.record.requested_at, o.record.contact_id))
    return ComplianceReport(now, warn_after, deadline_business_days, checked, tuple(overdue))
