"""Signed, opaque unsubscribe tokens and the key ring that signs them.

A token is URL-safe base64 (no padding) of::

    version (1) | key id length (1) | key id | nonce (12) | ciphertext | tag (32)

The plaintext (issue time, contact id, list id) is encrypted with a keystream
of HMAC-SHA256 blocks (the nonce is a synthetic IV: an HMAC of the plaintext,
so the same inputs give the same token), then everything before the tag is
authenticated with HMAC-SHA256 (encrypt-then-MAC; three subkeys derived from
the secret). So nothing in the URL reads as an email address, and any change
to any character is rejected. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import KeyRingError, ValidityError

__all__ = [
    "DEFAULT_VALIDITY",
    "ENV_VAR",
    "MIN_VALIDITY",
    "KeyRing",
    "Rejection",
    "TokenCheck",
    "unsubscribe_token",
    "verify_unsubscribe_token",
]

#: The environment variable the command line and ``keys=None`` read: ``"kid1:secret1,kid2:secret2"``, newest last.
ENV_VAR = "REPLYGUARD_UNSUBSCRIBE_KEYS"
#: How long a token works by default (CASL: 60 days after sending).
DEFAULT_VALIDITY = timedelta(days=60)
#: The shortest validity allowed (CAN-SPAM: the mechanism must work for 30 days after sending).
MIN_VALIDITY = timedelta(days=30)
#: Clock skew tolerated for a token issued "in the future" (several sending machines).
MAX_SKEW = timedelta(minutes=5)
#: Secrets shorter than this (in UTF-8 bytes) are refused.
MIN_SECRET_BYTES = 16
#: Longest token string accepted by the verifier (a 512-byte contact id and list id fit).
MAX_TOKEN_CHARS = 1600

_VERSION = 1
_NONCE = 12
_TAG = 32
_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_MIN_PLAIN = 8 + 2 + 1 + 2  # issued, contact length, >= 1 byte of contact, list length
_MAX_FIELD = 512


class Rejection(StrEnum):
    """Why a token was rejected (:attr:`TokenCheck.reason`)."""

    MALFORMED = "malformed"                  # not a string of URL-safe base64, or not canonical
    TRUNCATED = "truncated"                  # too short to hold a token
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"              # signed with a key id the ring does not hold
    BAD_SIGNATURE = "bad_signature"          # tampered with, forged, or cut short
    EXPIRED = "expired"                      # older than the validity
    NOT_YET_VALID = "not_yet_valid"          # issued more than MAX_SKEW in the future


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of :func:`verify_unsubscribe_token`. True when the token is valid.

    Attributes
    ----------
    ok
        Whether the token is authentic and within its validity.
    contact_id, list_id, issued_at, key_id
        What the token says (``None`` when it was not authentic; for an expired
        token they are set, as the token is genuine, only too old).
    reason
        ``None`` when ``ok``, else a :class:`Rejection`.
    detail
        A sentence for logs and error pages (no secrets, no contact data).
    """

    ok: bool
    contact_id: str | None = None
    list_id: str | None = None
    issued_at: datetime | None = None
    key_id: str | None = None
    reason: Rejection | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "contact_id": self.contact_id, "list_id": self.list_id,
                "issued_at": self.issued_at.isoformat() if self.issued_at else None,
                "key_id": self.key_id, "reason": self.reason.value if self.reason else None,
                "detail": self.detail}


def _subkey(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, b"replyguard/unsubscribe/v1/" + label, hashlib.sha256).digest()


class KeyRing:
    """The signing keys: ``(key_id, secret)`` pairs, oldest first. The newest signs; all verify.

    To rotate, append a new key and keep the old ones for at least the token
    validity (60 days by default), then drop them.

    Parameters
    ----------
    keys
        ``(key_id, secret)`` pairs or a mapping; key ids are 1-32 characters of
        ``A-Z a-z 0-9 _ . -`` and unique; secrets (``str`` or ``bytes``) have
        at least 16 bytes (use ``secrets.token_urlsafe(32)``).

    Examples
    --------
    >>> ring = KeyRing([("2026a", "first-secret-0123456789"), ("2026b", "second-secret-0123456789")])
    >>> ring.signing_key_id, ring.key_ids
    ('2026b', ('2026a', '2026b'))
    >>> KeyRing.parse("k1:first-secret-0123456789").key_ids
    ('k1',)
    >>> KeyRing([("k1", "short")])
    Traceback (most recent call last):
    ...
    replyguard.unsubscribe.errors.KeyRingError: the secret of key 'k1' has 5 bytes; use at least 16 (e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes]) -> None:
        pairs = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
        if not pairs:
            raise KeyRingError(f"a KeyRing needs at least one (key_id, secret) pair; got none. "
                               f"Set {ENV_VAR}='kid1:secret1' or pass keys=")
        out: dict[str, tuple[bytes, bytes, bytes]] = {}
        for item in pairs:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise KeyRingError(f"each key is a (key_id, secret) pair; got {type(item).__name__}")
            kid, secret = item
            if not isinstance(kid, str) or not _KID.fullmatch(kid):
                raise KeyRingError(f"key id {kid!r} is not 1-32 characters of A-Z a-z 0-9 _ . -")
            if kid in out:
                raise KeyRingError(f"key id {kid!r} appears twice; key ids must be unique")
            raw = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not isinstance(raw, bytes):
                raise KeyRingError(f"the secret of key {kid!r} is a {type(secret).__name__}; use str or bytes")
            if len(raw) < MIN_SECRET_BYTES:
                raise KeyRingError(
                    f"the secret of key {kid!r} has {len(raw)} bytes; use at least {MIN_SECRET_BYTES} "
                    '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")')
            out[kid] = (_subkey(raw, b"enc"), _subkey(raw, b"mac"), _subkey(raw, b"siv"))
        self._keys = out

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from ``"kid1:secret1,kid2:secret2"`` (newest last); commas or newlines separate keys."""
        if not isinstance(text, str):
            raise KeyRingError(f"key text must be a str; got {type(text).__name__}")
        pairs: list[tuple[str, str]] = []
        for n, part in enumerate(re.split(r"[,\n]", text), 1):
            part = part.strip()
            if not part or part.startswith("#"):
                continue
            kid, sep, secret = part.partition(":")
            if not sep:
                raise KeyRingError(f"key #{n} has no ':'; write key_id:secret (e.g. 2026a:<secret>)")
            pairs.append((kid.strip(), secret.strip()))
        return cls(pairs)

    @classmethod
    def from_env(cls, name: str = ENV_VAR, *, environ: Mapping[str, str] | None = None) -> KeyRing:
        """A ring from the environment variable ``name`` (default ``REPLYGUARD_UNSUBSCRIBE_KEYS``)."""
        env = os.environ if environ is None else environ
        text = env.get(name, "")
        if not text.strip():
            raise KeyRingError(f"no unsubscribe keys: set {name}='kid1:secret1[,kid2:secret2]' "
                               "(newest last) or pass keys= / --keys-file")
        return cls.parse(text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """A ring from a file of ``key_id:secret`` lines (or the comma form); ``#`` starts a comment."""
        return cls.parse(Path(path).read_text(encoding="utf-8"))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def signing_key_id(self) -> str:
        return next(reversed(self._keys))

    def _get(self, kid: str) -> tuple[bytes, bytes, bytes] | None:
        return self._keys.get(kid)

    def __repr__(self) -> str:  # never the secrets
        return f"KeyRing(key_ids={list(self._keys)!r}, signing={self.signing_key_id!r})"


def _ring(keys: KeyRing | str | None) -> KeyRing:
    if keys is None:
        return KeyRing.from_env()
    if isinstance(keys, KeyRing):
        return keys
    if isinstance(keys, str):
        return KeyRing.parse(keys)
    raise KeyRingError(f"keys must be a KeyRing, a 'kid:secret,...' string or None (read {ENV_VAR}); "
                       f"got {type(keys).__name__}")


def check_validity(validity: timedelta | int | float) -> timedelta:
    """``validity`` as a :class:`~datetime.timedelta` (a number is days); at least :data:`MIN_VALIDITY`.

    Examples
    --------
    >>> check_validity(90)
    datetime.timedelta(days=90)
    >>> check_validity(timedelta(days=7))
    Traceback (most recent call last):
    ...
    replyguard.unsubscribe.errors.ValidityError: unsubscribe token validity 7 days, 0:00:00 is shorter than the minimum of 30 days (CAN-SPAM: unsubscribe must work for 30 days after sending); use at least timedelta(days=30) (default 60 days)
    """
    if isinstance(validity, bool) or not isinstance(validity, timedelta | int | float):
        raise ValidityError(f"validity must be a timedelta or a number of days; got {validity!r}")
    v = validity if isinstance(validity, timedelta) else timedelta(days=validity)
    if v < MIN_VALIDITY:
        raise ValidityError(
            f"unsubscribe token validity {v} is shorter than the minimum of {MIN_VALIDITY.days} days "
            "(CAN-SPAM: unsubscribe must work for 30 days after sending); use at least "
            f"timedelta(days={MIN_VALIDITY.days}) (default {DEFAULT_VALIDITY.days} days)")
    return v


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime; got {now!r}")
    return now.astimezone(UTC)


def _field(name: str, value: object, *, required: bool) -> bytes:
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{name} must be a {'non-empty ' if required else ''}str; got {value!r}")
    raw = value.encode("utf-8")
    if len(raw) > _MAX_FIELD:
        raise ValueError(f"{name} has {len(raw)} UTF-8 bytes; at most {_MAX_FIELD} fit in a token")
    return raw


def _keystream(enc: bytes, nonce: bytes, n: int) -> bytes:
    blocks = [hmac.new(enc, nonce + struct.pack(">I", i), hashlib.sha256).digest()
              for i in range((n + 31) // 32)]
    return b"".join(blocks)[:n]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsubscribe_token(contact_id: str, *, list_id: str | None = None,
                      keys: KeyRing | str | None = None, now: datetime | None = None) -> str:
    """A signed, opaque, URL-safe token that identifies ``contact_id`` (and ``list_id``).

    Parameters
    ----------
    contact_id
        The ledger's contact id (at most 512 UTF-8 bytes). It is encrypted: the
        token does not show it.
    list_id
        The mailing or list the message belongs to (it becomes the event's ``campaign``).
    keys
        A :class:`KeyRing` (its newest key signs), a ``"kid:secret,..."`` string,
        or ``None`` to read ``REPLYGUARD_UNSUBSCRIBE_KEYS``.
    now
        The issue time (timezone-aware; default: now). Validity counts from it.

    Examples
    --------
    >>> ring = KeyRing([("k1", "a-secret-of-24-characters")])
    >>> t = unsubscribe_token("jane@example.com", list_id="news", keys=ring)
    >>> "jane" in t, "example" in t, "@" in t
    (False, False, False)
    >>> check = verify_unsubscribe_token(t, keys=ring)
    >>> check.ok, check.contact_id, check.list_id
    (True, 'jane@example.com', 'news')
    """
    ring = _ring(keys)
    cid = _field("contact_id", contact_id, required=True)
    lid = None if list_id is None else _field("list_id", list_id, required=False)
    issued = int(_now(now).timestamp())
    plain = (struct.pack(">QH", issued, len(cid)) + cid
             + struct.pack(">H", 0 if lid is None else len(lid) + 1) + (lid or b""))
    kid = ring.signing_key_id
    enc, mac, siv = ring._get(kid)  # type: ignore[misc]
    header = bytes([_VERSION, len(kid)]) + kid.encode("ascii")
    nonce = hmac.new(siv, header + plain, hashlib.sha256).digest()[:_NONCE]
    body = header + nonce + _xor(plain, _keystream(enc, nonce, len(plain)))
    return _b64(body + hmac.new(mac, body, hashlib.sha256).digest())


def _reject(reason: Rejection, detail: str, **known: Any) -> TokenCheck:
    return TokenCheck(False, reason=reason, detail=detail, **known)


def verify_unsubscribe_token(token: object, *, keys: KeyRing | str | None = None,
                             now: datetime | None = None,
                             validity: timedelta | int | float = DEFAULT_VALIDITY) -> TokenCheck:
    """Check a token; never raises for a bad token, returns a :class:`TokenCheck` with the reason.

    Parameters
    ----------
    token
        The token from the URL or the mail.
    keys
        The ring; every key in it verifies (old keys keep working after a rotation).
    now
        The time to check against (timezone-aware; default: now).
    validity
        How long a token works after it was issued: a ``timedelta`` or days
        (default 60; less than 30 raises :class:`~replyguard.unsubscribe.errors.ValidityError`).

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> ring = KeyRing([("k1", "a-secret-of-24-characters")])
    >>> sent = datetime(2026, 1, 5, tzinfo=UTC)
    >>> t = unsubscribe_token("c-1", keys=ring, now=sent)
    >>> verify_unsubscribe_token(t, keys=ring, now=sent + timedelta(days=59)).ok
    True
    >>> verify_unsubscribe_token(t, keys=ring, now=sent + timedelta(days=61)).reason.value
    'expired'
    >>> verify_unsubscribe_token(t[:-1] + ("A" if t[-1] != "A" else "B"), keys=ring, now=sent).reason.value
    'bad_signature'
    >>> verify_unsubscribe_token(t, keys=KeyRing([("k2", "another-secret-0123456789")]), now=sent).reason.value
    'unknown_key'
    """
    ring = _ring(keys)
    max_age = check_validity(validity)
    at = _now(now)
    if not isinstance(token, str) or not token:
        return _reject(Rejection.MALFORMED, "no token")
    if len(token) > MAX_TOKEN_CHARS:
        return _reject(Rejection.MALFORMED, f"token longer than {MAX_TOKEN_CHARS} characters")
    if not _ALPHABET.fullmatch(token):
        return _reject(Rejection.MALFORMED, "token has characters outside URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return _reject(Rejection.MALFORMED, "token is not valid base64")
    if _b64(raw) != token:  # unused trailing bits or an impossible length
        return _reject(Rejection.MALFORMED, "token is not canonical base64")
    if len(raw) < 2:
        return _reject(Rejection.TRUNCATED, "token too short")
    if raw[0] != _VERSION:
        return _reject(Rejection.UNSUPPORTED_VERSION, f"token version {raw[0]}; this replyguard reads {_VERSION}")
    klen = raw[1]
    head_len = 2 + klen
    if len(raw) < head_len + _NONCE + _MIN_PLAIN + _TAG:
        return _reject(Rejection.TRUNCATED, "token too short")
    kid = raw[2:head_len].decode("ascii", errors="replace")
    subkeys = ring._get(kid)
    if subkeys is None:
        return _reject(Rejection.UNKNOWN_KEY, f"token signed with key id {kid[:32]!r}, not in the key ring "
                                              f"{list(ring.key_ids)!r}")
    enc, mac, siv = subkeys
    body, tag = raw[:-_TAG], raw[-_TAG:]
    if not hmac.compare_digest(tag, hmac.new(mac, body, hashlib.sha256).digest()):
        return _reject(Rejection.BAD_SIGNATURE, "token signature does not match (tampered with or forged)")
    nonce, ct = body[head_len:head_len + _NONCE], body[head_len + _NONCE:]
    plain = _xor(ct, _keystream(enc, nonce, len(ct)))
    try:
        issued, clen = struct.unpack_from(">QH", plain)
        cid = plain[10:10 + clen].decode("utf-8")
        (llen,) = struct.unpack_from(">H", plain, 10 + clen)
        rest = plain[12 + clen:]
        if (llen > 0 and len(rest) != llen - 1) or (llen == 0 and rest) or not cid:
            raise ValueError("lengths")
        lid = rest.decode("utf-8") if llen else None
        issued_at = datetime.fromtimestamp(issued, UTC)
    except (struct.error, ValueError, OverflowError, OSError):
        return _reject(Rejection.MALFORMED, "token payload is malformed")
    if not hmac.compare_digest(nonce, hmac.new(siv, body[:head_len] + plain, hashlib.sha256).digest()[:_NONCE]):
        return _reject(Rejection.BAD_SIGNATURE, "token nonce does not match its payload")
    known: dict[str, Any] = {"contact_id": cid, "list_id": lid, "issued_at": issued_at, "key_id": kid}
    if issued_at > at + MAX_SKEW:
        return _reject(Rejection.NOT_YET_VALID, f"token issued {issued_at.isoformat()}, in the future", **known)
    if at - issued_at > max_age:
        return _reject(Rejection.EXPIRED, f"token issued {issued_at.isoformat()} expired after "
                                          f"{max_age.days} days", **known)
    return TokenCheck(True, **known)
