"""List-Unsubscribe / List-Unsubscribe-Post against RFC 2369 and RFC 8058."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from urllib.parse import unquote, urlsplit

import pytest

from replyguard.unsubscribe import (
    list_unsubscribe_headers,
    mailto_unsubscribe,
    verify_unsubscribe_token,
)

from .conftest import T0


def uris(value: str) -> list[str]:
    """RFC 2369: a comma-separated list of URIs, each in angle brackets."""
    assert re.fullmatch(r"<[^<>\s]+>(\s*,\s*<[^<>\s]+>)*", value), value
    return re.findall(r"<([^<>]+)>", value)


def test_headers_follow_rfc_8058(ring):
    h = list_unsubscribe_headers("jane@example.com", base_url="https://mail.example.com/u",
                                 mailto="unsubscribe@example.com", list_id="news", keys=ring, now=T0)
    assert set(h) == {"List-Unsubscribe", "List-Unsubscribe-Post"}
    # RFC 8058 3.1: exactly this value
    assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = uris(h["List-Unsubscribe"])
    https = [u for u in links if u.startswith("https://")]
    # RFC 8058 3.1: at least one HTTPS URI
    assert len(https) == 1
    # RFC 8058 3.2: the URI alone identifies the recipient: no cookies, no login, nothing else needed
    parts = urlsplit(https[0])
    assert parts.username is None and parts.password is None and not parts.fragment
    tok = parts.path.rsplit("/", 1)[-1]
    check = verify_unsubscribe_token(tok, keys=ring, now=T0)
    assert (check.contact_id, check.list_id) == ("jane@example.com", "news")
    # no PII readable in the URL
    assert "jane" not in https[0] and "example.com" not in parts.path
    # the mailto URI (RFC 2369, RFC 6068) carries the token in the subject
    [mailto] = [u for u in links if u.startswith("mailto:")]
    assert mailto.startswith("mailto:unsubscribe@example.com?subject=")
    assert unquote(mailto.split("subject=", 1)[1]) == "unsubscribe " + tok


def test_headers_without_mailto_have_one_uri(ring):
    h = list_unsubscribe_headers("c-1", base_url="https://x.example/unsub/{token}?src=mail", keys=ring)
    [u] = uris(h["List-Unsubscribe"])
    assert u.startswith("https://x.example/unsub/") and u.endswith("?src=mail")


@pytest.mark.parametrize("base", ["http://mail.example.com/u", "ftp://x/u", "mail.example.com/u",
                                  "https:///u", "https://x.example/u?a=1", "https://x.example/a b"])
def test_non_https_or_unusable_base_urls_are_refused(ring, base):
    with pytest.raises(ValueError, match="base_url"):
        list_unsubscribe_headers("c-1", base_url=base, keys=ring)


def test_bad_mailto_is_refused(ring):
    with pytest.raises(ValueError, match="mailto"):
        list_unsubscribe_headers("c-1", base_url="https://x.example/u", mailto="not an address", keys=ring)


def test_headers_survive_a_real_message_and_its_mailto_round_trips(ring):
    """Put the headers on a message, serialize it (folded at 78), parse it back, and use the mailto."""
    h = list_unsubscribe_headers("jane@example.com", base_url="https://mail.example.com/u",
                                 mailto="unsubscribe@example.com", keys=ring, now=T0)
    msg = EmailMessage()
    msg["From"] = "news@example.com"
    msg["To"] = "jane@example.com"
    msg["Subject"] = "Weekly news"
    for k, v in h.items():
        msg[k] = v
    msg.set_content("Hello")
    raw = msg.as_bytes(policy=SMTP)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    back = BytesParser(policy=SMTP).parsebytes(raw)
    assert uris(str(back["List-Unsubscribe"])) == uris(h["List-Unsubscribe"])
    assert str(back["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    # what a mail client sends for the mailto URI
    mailto = uris(h["List-Unsubscribe"])[1]
    subject = unquote(mailto.split("subject=", 1)[1])
    reply = f"From: Jane <jane.private@home.example>\r\nTo: unsubscribe@example.com\r\nSubject: {subject}\r\n\r\n"
    req = mailto_unsubscribe(reply, keys=ring, address="unsubscribe@example.com", now=T0)
    assert req.contact_id == "jane@example.com" and req.identified_by == "token"
