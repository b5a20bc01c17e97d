"""The endpoint over real HTTP on 127.0.0.1 (urllib, no cookies): what each request does to the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from replyguard.optout import ContactStatus
from replyguard.unsubscribe import KeyRing, unsubscribe_token

from .conftest import NEW, OLD, request

ONE_CLICK = b"List-Unsubscribe=One-Click"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class PageCheck(HTMLParser):
    """Checks that tags nest and close, and collects forms, inputs, buttons and scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.doctype = ""
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] not in ("style", "script", "title"):
            self.text.append(data)

    def named(self, name):
        return [a for t, a in self.tags if t == name]


def parse_page(text: str) -> PageCheck:
    p = PageCheck()
    p.feed(text)
    p.close()
    assert p.doctype.lower() == "doctype html"
    assert not p.errors and not p.stack, (p.errors, p.stack)
    assert [t for t, _ in p.tags][:2] == ["html", "head"]
    assert p.named("html")[0].get("lang") == "en"
    assert any(m.get("charset") == "utf-8" for m in p.named("meta"))
    assert len(p.named("title")) == 1 and len(p.named("h1")) == 1
    assert not p.named("script"), "the page must work without JavaScript"
    assert not any(k.startswith("on") for _, a in p.tags for k in a), "no inline event handlers"
    return p


def check_common_headers(r):
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Set-Cookie" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def token(contact="jane@example.com", **kw):
    kw.setdefault("keys", KeyRing([OLD, NEW]))
    return unsubscribe_token(contact, **kw)


def test_one_click_post_unsubscribes_at_once(server):
    r = request(f"{server.base}/{token(list_id='news')}", method="POST", data=ONE_CLICK)
    assert r.status == 200
    check_common_headers(r)
    page = parse_page(r.text)
    assert "unsubscribed" in " ".join(page.text).lower() and not page.named("form")
    assert server.ledger.status("jane@example.com") is ContactStatus.UNSUBSCRIBED
    [h] = server.ledger.history("jane@example.com")
    assert (h.event_type, h.kind, h.source, h.previous.value, h.status.value) == (
        "unsubscribe_clicked", "unsubscribe_clicked", "link", "active", "unsubscribed")
    assert h.evidence == {"campaign": "news"}


def test_one_click_post_is_idempotent_one_audit_row(server):
    url = f"{server.base}/{token()}"
    assert request(url, method="POST", data=ONE_CLICK).status == 200
    assert request(url, method="POST", data=ONE_CLICK).status == 200
    assert request(url + "/", method="POST", data=ONE_CLICK).status == 200
    assert len(server.ledger.history("jane@example.com")) == 1
    assert server.ledger.counts()  # the ledger is still readable


def test_one_click_post_as_multipart_form_data(server):
    boundary = "XyZ123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
            f"One-Click\r\n--{boundary}--\r\n").encode()
    r = request(f"{server.base}/{token()}", method="POST", data=body,
                content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status == 200
    assert server.ledger.status("jane@example.com") is ContactStatus.UNSUBSCRIBED


def test_get_shows_a_confirmation_page_and_changes_nothing(server):
    url = f"{server.base}/{token()}"
    for method in ("GET", "HEAD", "GET"):  # link scanners prefetch
        r = request(url, method=method)
        assert r.status == 200
        check_common_headers(r)
    assert server.ledger.status("jane@example.com") is ContactStatus.ACTIVE
    assert server.ledger.history("jane@example.com") == []
    page = parse_page(request(url).text)
    [form] = page.named("form")
    assert form["method"] == "post" and "action" not in form  # posts back to this very URL
    assert len(page.named("button")) == 1
    hidden = {a["name"]: a["value"] for a in page.named("input")}
    assert hidden == {"List-Unsubscribe": "One-Click"}


def test_get_then_the_form_post_unsubscribes_and_confirms(server):
    url = f"{server.base}/{token()}"
    page = parse_page(request(url).text)
    fields = "&".join(f"{a['name']}={a['value']}" for a in page.named("input"))
    r = request(url, method=page.named("form")[0]["method"].upper(), data=fields.encode())
    assert r.status == 200
    done = parse_page(r.text)
    assert "you are unsubscribed" in " ".join(done.text).lower()
    assert server.ledger.status("jane@example.com") is ContactStatus.UNSUBSCRIBED
    # afterwards GET says so, without a button
    again = parse_page(request(url).text)
    assert not again.named("button") and "unsubscribed" in " ".join(again.text).lower()


@pytest.mark.parametrize("make", [
    lambda: token(keys=KeyRing([("2026q1", "attacker-secret-000000000")])),          # forged
    lambda: token()[:-3],                                                             # truncated
    lambda: token()[:20] + ("A" if token()[20] != "A" else "B") + token()[21:],       # tampered
    lambda: token(keys=KeyRing([("gone", "retired-secret-0000000000")])),             # unknown key
    lambda: token(now=datetime.now(UTC) - timedelta(days=61)),                        # expired
    lambda: "not-a-token",
    lambda: "",
])
def test_bad_forged_or_expired_tokens_get_400_and_change_nothing(server, make):
    url = f"{server.base}/{make()}"
    for method, data in (("GET", None), ("POST", ONE_CLICK)):
        r = request(url, method=method, data=data)
        assert r.status == 400
        check_common_headers(r)
        page = parse_page(r.text)
        assert not page.named("form")
    assert server.ledger.history("jane@example.com") == []
    assert server.ledger.contacts() == []


def test_expired_page_says_how_else_to_unsubscribe(server):
    r = request(f"{server.base}/{token(now=datetime.now(UTC) - timedelta(days=90))}")
    assert r.status == 400 and "expired" in r.text


def test_token_from_the_old_key_still_works_after_rotation(server):
    r = request(f"{server.base}/{token(keys=KeyRing([OLD]))}", method="POST", data=ONE_CLICK)
    assert r.status == 200
    assert server.ledger.status("jane@example.com") is ContactStatus.UNSUBSCRIBED


def test_post_without_the_one_click_body_is_refused(server):
    url = f"{server.base}/{token()}"
    for body in (b"", b"List-Unsubscribe=Yes", b"confirm=1", b"\xff\xfe"):
        assert request(url, method="POST", data=body).status == 400
    assert server.ledger.status("jane@example.com") is ContactStatus.ACTIVE


def test_oversize_body_gets_413_and_changes_nothing(server):
    r = request(f"{server.base}/{token()}", method="POST", data=ONE_CLICK + b"&x=" + b"a" * 10_000)
    assert r.status == 413
    assert server.ledger.status("jane@example.com") is ContactStatus.ACTIVE


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_wrong_methods_get_405_with_allow(server, method):
    r = request(f"{server.base}/{token()}", method=method, data=ONE_CLICK if method in ("PUT", "PATCH") else None)
    assert r.status == 405
    assert r.headers["Allow"] == "GET, HEAD, POST"
    assert server.ledger.status("jane@example.com") is ContactStatus.ACTIVE


def test_do_not_email_contact_stays_do_not_email(server):
    from replyguard.optout import MarkDoNotEmail

    server.ledger.apply("jane@example.com", MarkDoNotEmail(source="phone", actor="ana"))
    assert request(f"{server.base}/{token()}", method="POST", data=ONE_CLICK).status == 200
    assert server.ledger.status("jane@example.com") is ContactStatus.DO_NOT_EMAIL


def test_unsubscribe_reaches_the_outbox_and_alerts(server):
    seen, alerts = [], []
    server.ledger.add_sink("crm", seen.append)
    server.ledger.add_alert("team", alerts.append, on=["unsubscribed"])
    assert request(f"{server.base}/{token()}", method="POST", data=ONE_CLICK).status == 200
    server.ledger.deliver()
    assert [(m.contact_id, m.status.value, m.opted_out) for m in seen] == [("jane@example.com", "unsubscribed", True)]
    assert [m.alert for m in alerts] == ["unsubscribed"]
