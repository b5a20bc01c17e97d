"""Exceptions raised by :mod:`replyguard.optout`.

Every class derives from :class:`replyguard.errors.ReplyGuardError` and from the
builtin a caller would naturally catch, as in :mod:`replyguard.errors`. Each
message names the bad value, the allowed values and, where there is one, the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ReplyGuardError

__all__ = [
    "DeliveryError",
    "EventIdConflict",
    "InvalidContactIdError",
    "InvalidEventError",
    "InvalidFieldError",
    "InvalidTransition",
    "LedgerConnectionError",
    "LedgerError",
    "LedgerNotFoundError",
    "LedgerVersionError",
    "MissingConsentError",
    "MissingDependencyError",
    "NaiveDatetimeError",
    "NotALedgerError",
    "OptOutError",
    "PermanentDeliveryError",
    "ResubscribeForbidden",
    "TableError",
    "UnknownNameError",
    "UnknownSinkError",
    "UnknownStatusError",
]


def _names(values: Iterable[Any]) -> str:
    return ", ".join(repr(str(getattr(v, "value", v))) for v in values)


class OptOutError(ReplyGuardError):
    """Base class of the errors of :mod:`replyguard.optout`."""

    def __reduce__(self) -> Any:  # pickles (across processes) with its message and values
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[Exception], msg: str, state: dict[str, Any]) -> Any:
    err = cls.__new__(cls)
    Exception.__init__(err, msg)
    err.__dict__.update(state)
    return err


class UnknownNameError(OptOutError, ValueError):
    """A name (status, event kind, alert kind, DNE source, output format) that does not exist.

    Attributes
    ----------
    what
        What the name was for (``"status"``, ``"alert kind"``, ...).
    value
        The name given.
    allowed
        The names that exist.
    """

    def __init__(self, what: str, value: object, allowed: Iterable[Any]) -> None:
        self.what = what
        self.value = value
        self.allowed = tuple(str(getattr(a, "value", a)) for a in allowed)
        super().__init__(f"unknown {what} {value!r}; allowed: {_names(self.allowed)}")


class UnknownStatusError(UnknownNameError):
    """A contact status name that does not exist."""

    def __init__(self, value: object, allowed: Iterable[Any]) -> None:
        super().__init__("status", value, allowed)


class InvalidEventError(OptOutError, ValueError, TypeError):
    """Something that is not one of the event types was given where an event is expected."""

    def __init__(self, value: object, allowed: Iterable[str], *, what: str = "event") -> None:
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__(
            f"{what} must be one of {', '.join(self.allowed)}; got {type(value).__name__} {_short(value)}"
        )


class InvalidFieldError(OptOutError, ValueError, TypeError):
    """A field of an event, a policy or an option has a value it cannot take."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field} must be {expected}; got {type(value).__name__} {_short(value)}")


class InvalidContactIdError(OptOutError, ValueError, TypeError):
    """A contact id that is not a non-empty string."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(
            f"contact_id must be a non-empty str of at most 512 characters; got {type(value).__name__} {_short(value)}"
        )


class NaiveDatetimeError(OptOutError, ValueError, TypeError):
    """A datetime without a time zone (or something that is not a datetime)."""

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        if hasattr(value, "tzinfo"):
            msg = (f"{field} must be a timezone-aware datetime; got the naive {value!r}: "
                   "pass tzinfo=datetime.timezone.utc (or the zone the time was recorded in)")
        else:
            msg = f"{field} must be a timezone-aware datetime; got {type(value).__name__} {_short(value)}"
        super().__init__(msg)


class MissingConsentError(OptOutError, ValueError):
    """A resubscribe without the contact's own consent evidence."""

    def __init__(self, value: object, detail: str = "") -> None:
        self.value = value
        super().__init__(
            "a resubscribe needs the contact's consent evidence: consent=Consent(method=..., "
            f"reference=..., given_at=...) with a non-empty method and reference; got {_short(value)}"
            + (f" ({detail})" if detail else "")
        )


class InvalidTransition(OptOutError, ValueError):
    """The event is not allowed from the contact's status (``InvalidTransition(status, event)``).

    Attributes
    ----------
    status
        The contact's status when the event came.
    event
        The event.
    allowed
        The event kinds allowed from ``status``.
    """

    def __init__(self, status: Any, event: Any, *, allowed: Iterable[Any] = (), hint: str = "") -> None:
        self.status = status
        self.event = event
        self.allowed = tuple(str(getattr(a, "value", a)) for a in allowed)
        kind = getattr(event, "kind_name", None) or type(event).__name__
        status_name = str(getattr(status, "value", status))
        msg = f"cannot apply {kind} to a contact whose status is {status_name!r}"
        if self.allowed:
            msg += f"; allowed from {status_name!r}: {_names(self.allowed)}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class ResubscribeForbidden(InvalidTransition):
    """The policy (``Policy(allow_resubscribe=False)``) forbids resubscribing."""


class EventIdConflict(OptOutError, ValueError):
    """An event id already used by a different contact or a different kind of event."""

    def __init__(self, event_id: str, detail: str) -> None:
        self.event_id = event_id
        super().__init__(f"event id {event_id!r} was already applied {detail}; "
                         "event ids must be unique: give each event its own id")


class TableError(OptOutError, RuntimeError):
    """The transition table breaks one of its laws (raised at import)."""


class LedgerError(OptOutError):
    """Base class of the errors about the ledger store itself."""


class LedgerNotFoundError(LedgerError, FileNotFoundError):
    """No ledger at the path, and it was opened with ``create=False``."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no opt-out ledger at {path!r}; pass the right --ledger PATH_OR_URL "
                         "(or open it with create=True to start a new one)")


class NotALedgerError(LedgerError, ValueError):
    """The file or schema exists but is not a replyguard ledger. It was not modified."""

    def __init__(self, where: str, found: str) -> None:
        self.where = where
        self.found = found
        super().__init__(f"{where} is not a replyguard opt-out ledger ({found}); it was left "
                         "untouched: point to a ledger, or to a new path, empty file or empty schema")


class LedgerVersionError(LedgerError, ValueError):
    """The ledger was written by a newer replyguard (a newer schema version). It was not modified."""

    def __init__(self, where: str, version: int, supported: int) -> None:
        self.where = where
        self.version = version
        self.supported = supported
        super().__init__(f"{where} has ledger schema version {version}; this replyguard reads "
                         f"versions 1 to {supported}: upgrade replyguard (the ledger was left untouched)")


class LedgerConnectionError(LedgerError, ConnectionError):
    """The ledger's database server could not be reached."""


class MissingDependencyError(OptOutError, ImportError):
    """An optional dependency is needed (``pip install 'replyguard[postgres]'``)."""


class UnknownSinkError(OptOutError, ValueError):
    """A sink name that is not registered, or registered with another role."""

    def __init__(self, value: object, allowed: Iterable[str], detail: str = "") -> None:
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__(f"unknown sink {value!r}" + (f" ({detail})" if detail else "")
                         + f"; registered: {_names(self.allowed) or 'none'}")


class DeliveryError(OptOutError, ConnectionError):
    """A sink could not deliver a message now; the outbox retries it with backoff.

    Parameters
    ----------
    message
        What went wrong.
    retry_after
        Seconds the receiver asked us to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PermanentDeliveryError(DeliveryError):
    """A sink rejected a message for good (an HTTP 4xx): it goes to the dead letters at once."""


def _short(value: object, limit: int = 80) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."
