"""Alerts: tell people when a contact opts out, is stopped or resubscribes.

Alerts are opt-in per kind: ``ledger.add_alert("compliance", handler,
on=["do_not_email", "unsubscribed"])``. A handler is any sink (a callable, an
object with ``deliver``, or a :class:`~replyguard.optout.WebhookSink`). Alerts
travel through the outbox like every sink: the outbox row is written in the
same transaction as the status change, so a failing alert is retried and ends
as a dead letter at worst; it never loses, delays or undoes the opt-out.

>>> from replyguard.optout import AlertKind, parse_alert_kinds
>>> [k.value for k in parse_alert_kinds("do_not_email")]
['do_not_email']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from .errors import UnknownNameError
from .machine import Effect
from .sinks import OutboxMessage

__all__ = ["ALERT_EFFECTS", "AlertKind", "alert_text", "parse_alert_kinds"]


class AlertKind(StrEnum):
    """The events people can be alerted to."""

    DO_NOT_EMAIL = "do_not_email"
    UNSUBSCRIBED = "unsubscribed"
    STOPPED = "stopped"
    RESUBSCRIBED = "resubscribed"


#: The transition effect that raises each alert.
ALERT_EFFECTS: Mapping[AlertKind, Effect] = MappingProxyType({
    AlertKind.DO_NOT_EMAIL: Effect.ALERT_DO_NOT_EMAIL,
    AlertKind.UNSUBSCRIBED: Effect.ALERT_UNSUBSCRIBED,
    AlertKind.STOPPED: Effect.ALERT_STOPPED,
    AlertKind.RESUBSCRIBED: Effect.ALERT_RESUBSCRIBED,
})


def parse_alert_kinds(on: str | AlertKind | Iterable[str | AlertKind]) -> tuple[AlertKind, ...]:
    """Alert kinds from names, in a fixed order, without repeats.

    Raises
    ------
    UnknownNameError
        For a name that is not an alert kind (the message lists them), or an empty list.

    Examples
    --------
    >>> [k.value for k in parse_alert_kinds(["unsubscribed", "do_not_email", "unsubscribed"])]
    ['do_not_email', 'unsubscribed']
    """
    items = [on] if isinstance(on, str | AlertKind) else list(on)
    chosen = set()
    for item in items:
        try:
            chosen.add(AlertKind(item))
        except ValueError:
            raise UnknownNameError("alert kind", item, list(AlertKind)) from None
    if not chosen:
        raise UnknownNameError("alert kind", items, list(AlertKind))
    return tuple(k for k in AlertKind if k in chosen)


def alert_text(message: OutboxMessage) -> str:
    """One line for a chat or e-mail alert handler.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from replyguard.optout import ContactStatus
    >>> at = datetime(2026, 1, 6, 9, 14, tzinfo=timezone.utc)
    >>> m = OutboxMessage(delivery_id=1, sink="team", attempt=1, type="alert", alert="do_not_email",
    ...     contact_id="c-42", event_id="reply:<m1@x>", sequence=7, previous=ContactStatus.ACTIVE,
    ...     status=ContactStatus.DO_NOT_EMAIL, may_email=False, opted_out=True, event_type="reply_received",
    ...     kind="reply_do_not_email", source="reply", actor=None, reason=None, occurred_at=at, recorded_at=at,
    ...     evidence={"intent": "do_not_email", "score": 0.97, "excerpt": "Please take me off your list."})
    >>> alert_text(m)
    "[do_not_email] contact c-42: active -> do_not_email via reply at 2026-01-06T09:14:00+00:00 (intent do_not_email, score 0.97): 'Please take me off your list.'"
    """
    parts = [f"[{message.alert or message.type}] contact {message.contact_id}: {message.previous.value} -> "
             f"{message.status.value} via {message.source}"]
    if message.actor:
        parts.append(f"by {message.actor}")
    parts.append(f"at {message.occurred_at.isoformat()}")
    line = " ".join(parts)
    ev = message.evidence
    if "intent" in ev:
        line += f" (intent {ev['intent']}, score {float(ev.get('score', 0)):.2f})"
    if message.reason:
        line += f": {message.reason!r}"
    elif ev.get("excerpt"):
        line += f": {str(ev['excerpt'])[:120]!r}"
    return line
