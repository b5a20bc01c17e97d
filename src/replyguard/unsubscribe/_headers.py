"""``List-Unsubscribe`` (RFC 2369) and ``List-Unsubscribe-Post`` (RFC 8058) headers."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote, urlsplit

from ._tokens import KeyRing, _ring, unsubscribe_token

__all__ = ["ONE_CLICK", "list_unsubscribe_headers", "unsubscribe_url"]

#: The exact ``List-Unsubscribe-Post`` value and POST body of RFC 8058.
ONE_CLICK = "List-Unsubscribe=One-Click"
_ADDR = re.compile(r"[^@\s<>,\"]+@[^@\s<>,\"]+")


def unsubscribe_url(base_url: str, token: str) -> str:
    """``base_url`` with the token: ``{token}`` in it is replaced, else ``/<token>`` is appended.

    Examples
    --------
    >>> unsubscribe_url("https://example.com/u", "TOKEN")
    'https://example.com/u/TOKEN'
    >>> unsubscribe_url("https://example.com/u/{token}?via=mail", "TOKEN")
    'https://example.com/u/TOKEN?via=mail'
    """
    if not isinstance(base_url, str) or urlsplit(base_url).scheme.lower() != "https" \
            or not urlsplit(base_url).hostname:
        raise ValueError(f"base_url must be an https:// URL (RFC 8058 one-click needs HTTPS); got {base_url!r}")
    if re.search(r"[\s<>,\"]", base_url):
        raise ValueError(f"base_url {base_url!r} has a space, '<', '>', ',' or '\"', which cannot go in "
                         "List-Unsubscribe; percent-encode them")
    if "{token}" in base_url:
        return base_url.replace("{token}", token)
    if "?" in base_url or "#" in base_url:
        raise ValueError(f"base_url {base_url!r} has a query or fragment; put {{token}} where the token goes")
    return base_url.rstrip("/") + "/" + token


def list_unsubscribe_headers(contact_id: str, *, base_url: str, mailto: str | None = None,
                             list_id: str | None = None, keys: KeyRing | str | None = None,
                             now: datetime | None = None) -> dict[str, str]:
    """The two headers a bulk message needs for one-click unsubscribe.

    Parameters
    ----------
    contact_id
        The recipient's ledger contact id (encrypted in the token).
    base_url
        Where :func:`replyguard.unsubscribe.app` is served, ``https://`` only;
        the token is appended as the last path segment, or replaces ``{token}``.
    mailto
        An unsubscribe mailbox (``unsubscribe@example.com``): adds a ``mailto:``
        URI whose subject carries the token (:func:`mailto_unsubscribe` reads it).
    list_id
        The mailing or list (becomes the ledger event's ``campaign``).
    keys, now
        As for :func:`unsubscribe_token`.

    Returns
    -------
    dict
        ``{"List-Unsubscribe": "<https://...>, <mailto:...>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}``.
        The message must also carry a valid DKIM signature covering both headers (RFC 8058 section 4).

    Examples
    --------
    >>> h = list_unsubscribe_headers("c-42", base_url="https://mail.example.com/u",
    ...                              mailto="unsubscribe@example.com", keys="k1:a-secret-of-24-characters")
    >>> h["List-Unsubscribe-Post"]
    'List-Unsubscribe=One-Click'
    >>> h["List-Unsubscribe"].startswith("<https://mail.example.com/u/"), "<mailto:unsubscribe@example.com?subject=unsubscribe%20" in h["List-Unsubscribe"]
    (True, True)
    """
    token = unsubscribe_token(contact_id, list_id=list_id, keys=_ring(keys), now=now)
    uris = [f"<{unsubscribe_url(base_url, token)}>"]
    if mailto is not None:
        addr = mailto[len("mailto:"):] if mailto.lower().startswith("mailto:") else mailto
        if not isinstance(addr, str) or not _ADDR.fullmatch(addr):
            raise ValueError(f"mailto must be an email address like unsubscribe@example.com; got {mailto!r}")
        uris.append(f"<mailto:{quote(addr, safe='@.+-_')}?subject={quote('unsubscribe ' + token)}>")
    return {"List-Unsubscribe": ", ".join(uris), "List-Unsubscribe-Post": ONE_CLICK}
