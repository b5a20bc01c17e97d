"""mailto unsubscribe: an email sent to the unsubscribe address, read into a ledger event."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import Any

from ..headers import read_headers
from ..optout.ledger import ApplyResult, OptOutLedger
from ..optout.machine import UnsubscribeClicked
from ._tokens import DEFAULT_VALIDITY, KeyRing, TokenCheck, _ring, verify_unsubscribe_token

__all__ = ["MailtoUnsubscribe", "apply_mailto_unsubscribe", "mailto_unsubscribe"]

_WORD = re.compile(r"\bunsubscribe\b", re.I)
_CANDIDATE = re.compile(r"[A-Za-z0-9_-]{60,1600}")
_BODY_CHARS = 4000


@dataclass(frozen=True, slots=True)
class MailtoUnsubscribe:
    """An unsubscribe request read from an email.

    Attributes
    ----------
    contact_id
        Who: from a valid token in the subject, body or recipient address, else the
        ``From`` address (lower-cased).
    list_id
        The token's list, if any.
    identified_by
        ``"token"`` or ``"from"``.
    cues
        What made it a request: ``"subject"``, ``"body"``, ``"X-Apple-Unsubscribe"``, ``"token"``.
    message_id
        The message's Message-ID (``""`` if none).
    event_id
        The ledger event id: one per message, so reading it twice changes nothing.
    token_rejection
        When a token was present but rejected, why (``"expired"``, ``"bad_signature"``, ...).
    """

    contact_id: str
    list_id: str | None
    identified_by: str
    cues: tuple[str, ...]
    message_id: str
    event_id: str
    token_rejection: str | None = None

    def event(self, *, at: datetime | None = None) -> UnsubscribeClicked:
        """The ledger event for this request."""
        return UnsubscribeClicked(campaign=self.list_id or "", at=at or datetime.now(UTC), event_id=self.event_id)

    def to_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "list_id": self.list_id, "identified_by": self.identified_by,
                "cues": list(self.cues), "message_id": self.message_id, "event_id": self.event_id,
                "token_rejection": self.token_rejection}


def _parse(message: bytes | str | Message) -> Message:
    if isinstance(message, Message):
        return message
    if isinstance(message, bytes):
        return message_from_bytes(message, policy=default_policy)
    if isinstance(message, str):
        return message_from_string(message, policy=default_policy)
    raise TypeError(f"message must be bytes, str or email.message.Message; got {type(message).__name__}")


def _text(msg: Message) -> str:
    plain: list[str] = []
    other: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        try:
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        except (LookupError, AttributeError):
            continue
        (plain if ctype == "text/plain" else other).append(text)
    if plain:
        return "\n".join(plain)
    return re.sub(r"<[^>]*>", " ", "\n".join(other))


def _own_words(body: str) -> str:
    """The body without quoted lines (``>``) and the quoted history after an ``On ... wrote:`` line."""
    out = []
    for line in body.splitlines():
        s = line.strip()
        if s.startswith(">") or re.match(r"^(on .{0,200} wrote:|-----\s*original message)", s, re.I):
            if not s.startswith(">"):
                break
            continue
        out.append(line)
    return "\n".join(out)[:_BODY_CHARS]


def _addresses(msg: Message, *names: str) -> list[str]:
    values = [str(v) for n in names for v in (msg.get_all(n) or [])]
    return [a.lower() for _, a in getaddresses(values) if a]


def mailto_unsubscribe(message: bytes | str | Message, *, keys: KeyRing | str | None = None,
                       address: str | None = None, now: datetime | None = None,
                       validity: Any = DEFAULT_VALIDITY, identify_by_from: bool = True) -> MailtoUnsubscribe | None:
    """Read an email sent to the unsubscribe address; ``None`` when it is not an unsubscribe request.

    It is a request when the subject or the sender's own words in the body say
    "unsubscribe", when a mail client sent it for its one-click button
    (``X-Apple-Unsubscribe``), or when it carries a valid token (the ``mailto:``
    URI of :func:`list_unsubscribe_headers` puts one in the subject). Automatic
    replies (RFC 3834 ``Auto-Submitted`` and the like) are not requests.

    Parameters
    ----------
    message
        The raw message (``bytes`` or ``str``) or an :class:`email.message.Message`.
    keys
        The ring that verifies tokens (``None``: ``REPLYGUARD_UNSUBSCRIBE_KEYS``).
    address
        The unsubscribe mailbox. When given, a message not addressed to it
        (``To``, ``Cc``, ``Delivered-To``, ``X-Original-To``) is ``None``.
    now, validity
        As for :func:`verify_unsubscribe_token`. An expired or forged token does
        not identify anyone; the ``From`` address does then.
    identify_by_from
        Fall back to the ``From`` address as the contact id (right when the
        ledger's contact ids are email addresses). ``False``: without a valid
        token the result is ``None``.

    Examples
    --------
    >>> ring = KeyRing([("k1", "a-secret-of-24-characters")])
    >>> raw = "From: Jane <Jane@Example.com>\\r\\nTo: unsubscribe@news.example\\r\\nSubject: Unsubscribe\\r\\n\\r\\n"
    >>> r = mailto_unsubscribe(raw, keys=ring, address="unsubscribe@news.example")
    >>> r.contact_id, r.identified_by, r.cues
    ('jane@example.com', 'from', ('subject',))
    >>> mailto_unsubscribe(raw.replace("Unsubscribe", "Lunch?"), keys=ring) is None
    True
    """
    msg = _parse(message)
    ring = _ring(keys)
    if address is not None:
        want = parseaddr(address)[1].lower()
        if not want or want not in _addresses(msg, "To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
            return None
    cues_h = read_headers(msg)
    subject = str(msg.get("Subject", "") or "")
    body = _own_words(_text(msg))
    cues: list[str] = []
    if _WORD.search(subject):
        cues.append("subject")
    if _WORD.search(body):
        cues.append("body")
    cues.extend(c for c in cues_h.client_unsubscribe if c != "Subject")  # the subject is read above
    check: TokenCheck | None = None
    rejected: str | None = None
    where = " ".join([subject, *(str(v) for v in (msg.get_all("To") or [])), body])
    for candidate in _CANDIDATE.findall(where)[:10]:
        c = verify_unsubscribe_token(candidate, keys=ring, now=now, validity=validity)
        if c.ok:
            check = c
            cues.append("token")
            break
        if c.reason is not None and c.reason.value != "malformed" and rejected is None:
            rejected = c.reason.value
    if not cues or (cues_h.auto_reply and not cues_h.client_unsubscribe):
        return None
    mid = str(msg.get("Message-ID", "") or "").strip()
    if mid:
        event_id = "unsub-mail:" + hashlib.sha256(mid.encode("utf-8", "replace")).hexdigest()[:32]
    else:
        raw = message if isinstance(message, bytes) else msg.as_bytes()
        event_id = "unsub-mail:" + hashlib.sha256(raw if isinstance(raw, bytes) else b"").hexdigest()[:32]
    if check is not None and check.contact_id is not None:
        return MailtoUnsubscribe(check.contact_id, check.list_id, "token", tuple(cues), mid, event_id)
    sender = parseaddr(str(msg.get("From", "") or ""))[1].lower()
    if not identify_by_from or "@" not in sender:
        return None
    return MailtoUnsubscribe(sender, None, "from", tuple(cues), mid, event_id, rejected)


def apply_mailto_unsubscribe(ledger: OptOutLedger, message: bytes | str | Message, *,
                             keys: KeyRing | str | None = None, address: str | None = None,
                             now: datetime | None = None, validity: Any = DEFAULT_VALIDITY,
                             identify_by_from: bool = True) -> ApplyResult | None:
    """The ledger hook: :func:`mailto_unsubscribe`, then apply ``UnsubscribeClicked`` for the contact.

    Returns the :class:`~replyguard.optout.ApplyResult`, or ``None`` when the
    message is not an unsubscribe request. Feeding the same message twice
    changes nothing (one event id per Message-ID).

    Examples
    --------
    >>> from replyguard.optout import OptOutLedger
    >>> ledger = OptOutLedger(":memory:")
    >>> raw = b"From: sam@example.com\\r\\nTo: unsubscribe@news.example\\r\\nSubject: unsubscribe\\r\\nMessage-ID: <u1@example.com>\\r\\n\\r\\n"
    >>> apply_mailto_unsubscribe(ledger, raw, keys="k1:a-secret-of-24-characters").status.value
    'unsubscribed'
    >>> ledger.history("sam@example.com")[0].event_type
    'unsubscribe_clicked'
    >>> ledger.close()
    """
    req = mailto_unsubscribe(message, keys=keys, address=address, now=now, validity=validity,
                             identify_by_from=identify_by_from)
    if req is None:
        return None
    return ledger.apply(req.contact_id, req.event(at=now))
