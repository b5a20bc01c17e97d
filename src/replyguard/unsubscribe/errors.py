"""Exceptions raised by :mod:`replyguard.unsubscribe`.

Each derives from :class:`replyguard.errors.ReplyGuardError` and ``ValueError``;
a message names the bad value (never a secret), the allowed values and the fix.
"""

from __future__ import annotations

from ..errors import ReplyGuardError

__all__ = ["KeyRingError", "UnsubscribeError", "ValidityError"]


class UnsubscribeError(ReplyGuardError, ValueError):
    """Base class of the unsubscribe errors."""


class KeyRingError(UnsubscribeError):
    """Signing keys that are missing or malformed (the message never shows a secret)."""


class ValidityError(UnsubscribeError):
    """A token validity shorter than the legal minimum, or not a duration."""
