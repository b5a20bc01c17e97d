"""One-click unsubscribe (RFC 8058) and mailto unsubscribe, feeding the opt-out ledger.

* :func:`unsubscribe_token` / :func:`verify_unsubscribe_token`: signed, opaque,
  URL-safe tokens (HMAC-SHA256, a :class:`KeyRing` for rotation, 60 days by default);
* :func:`list_unsubscribe_headers`: ``List-Unsubscribe`` and ``List-Unsubscribe-Post``;
* :func:`app`: the endpoint as a WSGI application; :func:`serve` runs it (``replyguard serve``);
* :func:`mailto_unsubscribe` / :func:`apply_mailto_unsubscribe`: emails to the unsubscribe address.

Every unsubscribe lands in the ledger as :class:`~replyguard.optout.UnsubscribeClicked`,
so the outbox and the alerts follow.

>>> from replyguard.unsubscribe import KeyRing, unsubscribe_token, verify_unsubscribe_token
>>> ring = KeyRing([("k1", "a-secret-of-24-characters")])
>>> verify_unsubscribe_token(unsubscribe_token("c-7", keys=ring), keys=ring).contact_id
'c-7'
"""

from __future__ import annotations

from ._headers import ONE_CLICK, list_unsubscribe_headers, unsubscribe_url
from ._mailto import MailtoUnsubscribe, apply_mailto_unsubscribe, mailto_unsubscribe
from ._tokens import (
    DEFAULT_VALIDITY,
    ENV_VAR,
    MIN_VALIDITY,
    KeyRing,
    Rejection,
    TokenCheck,
    check_validity,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from ._web import DEFAULT_MAX_BODY, UnsubscribeApp, app, event_id_for, make_server, serve
from .errors import KeyRingError, UnsubscribeError, ValidityError

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_VALIDITY",
    "ENV_VAR",
    "MIN_VALIDITY",
    "ONE_CLICK",
    "KeyRing",
    "KeyRingError",
    "MailtoUnsubscribe",
    "Rejection",
    "TokenCheck",
    "UnsubscribeApp",
    "UnsubscribeError",
    "ValidityError",
    "app",
    "apply_mailto_unsubscribe",
    "check_validity",
    "event_id_for",
    "list_unsubscribe_headers",
    "mailto_unsubscribe",
    "make_server",
    "serve",
    "unsubscribe_token",
    "unsubscribe_url",
    "verify_unsubscribe_token",
]
