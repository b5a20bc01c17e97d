"""The unsubscribe endpoint: a WSGI application and a small threaded server (``wsgiref``).

``POST <base>/<token>`` with the body ``List-Unsubscribe=One-Click`` (RFC 8058;
``application/x-www-form-urlencoded`` or ``multipart/form-data``) unsubscribes
at once. ``GET`` shows a confirmation page whose one button POSTs that same
body, so link scanners that prefetch GETs unsubscribe nobody. Each token maps
to one ledger event id, so repeats change nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import HTTP
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from ..optout.ledger import ApplyResult, OptOutLedger
from ..optout.machine import SUPPRESSED, UnsubscribeClicked
from ._headers import ONE_CLICK
from ._tokens import (
    DEFAULT_VALIDITY,
    KeyRing,
    TokenCheck,
    _ring,
    check_validity,
    verify_unsubscribe_token,
)

__all__ = ["DEFAULT_MAX_BODY", "UnsubscribeApp", "app", "event_id_for", "make_server", "serve"]

#: Request bodies larger than this get 413 (the one-click body is 26 bytes).
DEFAULT_MAX_BODY = 4096
_DRAIN_LIMIT = 1 << 20  # read (and drop) up to this much of an oversize body so the client sees the 413
_ALLOW = "GET, HEAD, POST"

StartResponse = Callable[..., Any]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 34rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }}
button {{ font-size: 1rem; padding: 0.6rem 1.4rem; cursor: pointer; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>{message}</p>
{form}</main>
</body>
</html>
"""
_FORM = ('<form method="post">\n'
         '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
         '<button type="submit">Unsubscribe</button>\n'
         '</form>\n')


def event_id_for(token: str) -> str:
    """The ledger event id of a token: the same token always records the same event (idempotency).

    Examples
    --------
    >>> event_id_for("abc")
    'unsub:ba7816bf8f01cfea414140de5dae2223'
    """
    return "unsub:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def _page(title: str, message: str, *, form: bool = False) -> bytes:
    return _PAGE.format(title=html.escape(title), message=html.escape(message),
                        form=_FORM if form else "").encode("utf-8")


class UnsubscribeApp:
    """The WSGI application :func:`app` returns. Attributes: ``ledger``, ``keys``, ``max_body``, ``validity``."""

    def __init__(self, ledger: OptOutLedger, keys: KeyRing, *, max_body: int, validity: timedelta,
                 clock: Callable[[], datetime] | None) -> None:
        self.ledger = ledger
        self.keys = keys
        self.max_body = max_body
        self.validity = validity
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- responses ------------------------------------------------------------------------
    def _send(self, start: StartResponse, status: str, body: bytes, method: str,
              extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy",
             "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
            *extra,
        ]
        start(status, headers)
        return [] if method == "HEAD" else [body]

    def _bad_token(self, start: StartResponse, method: str, check: TokenCheck) -> list[bytes]:
        if check.reason is not None and check.reason.value == "expired":
            msg = ("This unsubscribe link has expired. To stop these emails, reply to one of them "
                   "with the word unsubscribe.")
        else:
            msg = "This unsubscribe link is not valid. Please use the link from the email exactly as sent."
        return self._send(start, "400 Bad Request", _page("Link not valid", msg), method)

    # -- request --------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method not in ("GET", "HEAD", "POST"):
            return self._send(start_response, "405 Method Not Allowed",
                              _page("Method not allowed", f"Use GET or POST; this page does not accept {method[:20]}."),
                              method, [("Allow", _ALLOW)])
        body = b""
        if method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                return self._send(start_response, "400 Bad Request",
                                  _page("Bad request", "The request has an invalid Content-Length."), method)
            stream = environ["wsgi.input"]
            if length > self.max_body:
                self._drain(stream, length)
                return self._send(start_response, "413 Content Too Large",
                                  _page("Request too large", f"The request body is over {self.max_body} bytes."),
                                  method)
            body = stream.read(length) if length else b""
        token = str(environ.get("PATH_INFO", "")).rstrip("/").rsplit("/", 1)[-1]
        check = verify_unsubscribe_token(token, keys=self.keys, now=self._clock(), validity=self.validity)
        if not check.ok:
            self._log(environ, f"replyguard.unsubscribe: rejected token ({check.reason}): {check.detail}")
            return self._bad_token(start_response, method, check)
        assert check.contact_id is not None
        if method != "POST":
            if self.ledger.status(check.contact_id) in SUPPRESSED:
                return self._send(start_response, "200 OK", _page(
                    "You are unsubscribed", "You will not receive these emails any more. "
                    "There is nothing else to do."), method)
            return self._send(start_response, "200 OK", _page(
                "Unsubscribe?", "Press the button to stop receiving these emails.", form=True), method)
        if not self._is_one_click(environ, body):
            return self._send(start_response, "400 Bad Request", _page(
                "Bad request", f"An unsubscribe request must carry {ONE_CLICK}."), method)
        try:
            self.unsubscribe(token, check)
        except Exception:
            self._log(environ, "replyguard.unsubscribe: the ledger failed:\n" + traceback.format_exc())
            return self._send(start_response, "500 Internal Server Error", _page(
                "Please try again", "We could not record your request just now. Please try again in a minute."),
                method)
        return self._send(start_response, "200 OK", _page(
            "You are unsubscribed", "You will not receive these emails any more."), method)

    def unsubscribe(self, token: str, check: TokenCheck) -> ApplyResult:
        """Apply the :class:`~replyguard.optout.UnsubscribeClicked` event for a verified token."""
        assert check.ok and check.contact_id is not None
        event = UnsubscribeClicked(campaign=check.list_id or "", at=self._clock(), event_id=event_id_for(token))
        return self.ledger.apply(check.contact_id, event)

    @staticmethod
    def _is_one_click(environ: dict[str, Any], body: bytes) -> bool:
        ctype = str(environ.get("CONTENT_TYPE", "") or "")
        if ctype.lower().startswith("multipart/form-data"):
            msg = message_from_bytes(b"Content-Type: " + ctype.encode("latin-1", "replace") + b"\r\n\r\n" + body,
                                     policy=HTTP)
            for part in msg.iter_parts() if msg.is_multipart() else ():
                if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                    value = part.get_payload(decode=True)
                    if isinstance(value, bytes) and value.strip() == b"One-Click":
                        return True
            return False
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return False
        return "One-Click" in fields.get("List-Unsubscribe", [])

    def _drain(self, stream: Any, length: int) -> None:
        left = min(length, _DRAIN_LIMIT)
        try:
            while left > 0:
                chunk = stream.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    @staticmethod
    def _log(environ: dict[str, Any], text: str) -> None:
        err = environ.get("wsgi.errors") or sys.stderr
        with contextlib.suppress(Exception):  # logging must never break a response
            err.write(text.rstrip("\n") + "\n")


def app(ledger: OptOutLedger, keys: KeyRing | str | None = None, *, max_body: int = DEFAULT_MAX_BODY,
        validity: timedelta | int | float = DEFAULT_VALIDITY,
        clock: Callable[[], datetime] | None = None) -> UnsubscribeApp:
    """The unsubscribe endpoint as a WSGI application over ``ledger``.

    Mount it at the ``base_url`` given to :func:`list_unsubscribe_headers`; the
    token is the last path segment.

    * ``POST`` with the body ``List-Unsubscribe=One-Click``: 200 page, and
      ``UnsubscribeClicked`` applied (the same token again changes nothing);
    * ``GET`` / ``HEAD``: 200 page with one button (a form POST); no change;
    * a bad, forged or expired token: 400 page; no change;
    * a body over ``max_body`` bytes: 413; a ``POST`` without the one-click field: 400;
    * any other method: 405 with ``Allow: GET, HEAD, POST``;
    * the ledger fails: 500 page (the mail provider retries).

    Parameters
    ----------
    ledger
        An :class:`~replyguard.optout.OptOutLedger` (thread-safe; one per process).
    keys
        The :class:`KeyRing` that verifies tokens (``None``: ``REPLYGUARD_UNSUBSCRIBE_KEYS``).
    max_body
        The largest request body accepted (bytes).
    validity
        How long tokens work (default 60 days; at least 30).
    clock
        Returns the current time (tests).

    Examples
    --------
    >>> from io import BytesIO
    >>> from replyguard.optout import OptOutLedger
    >>> from replyguard.unsubscribe import unsubscribe_token
    >>> ledger = OptOutLedger(":memory:")
    >>> ring = "k1:a-secret-of-24-characters"
    >>> endpoint = app(ledger, ring)
    >>> token = unsubscribe_token("jane@example.com", keys=ring)
    >>> env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/u/" + token, "CONTENT_LENGTH": "26",
    ...        "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": BytesIO(b"List-Unsubscribe=One-Click")}
    >>> _ = endpoint(env, lambda status, headers: print(status))
    200 OK
    >>> ledger.status("jane@example.com").value
    'unsubscribed'
    >>> ledger.close()
    """
    if not isinstance(ledger, OptOutLedger):
        raise TypeError(f"ledger must be a replyguard.optout.OptOutLedger; got {type(ledger).__name__}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < len(ONE_CLICK):
        raise ValueError(f"max_body must be an int of at least {len(ONE_CLICK)} bytes; got {max_body!r}")
    return UnsubscribeApp(ledger, _ring(keys), max_body=max_body, validity=check_validity(validity), clock=clock)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    timeout = 15  # seconds a client may take to send its request (slow clients do not hold a thread forever)
    quiet = False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.quiet:
            return
        # never log the token: it stands for a contact
        path = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[0] + "/<token>"
        self.log_message('"%s %s" %s', self.command, path, str(code))


def make_server(ledger: OptOutLedger, *, host: str = "127.0.0.1", port: int = 8025,
                keys: KeyRing | str | None = None, max_body: int = DEFAULT_MAX_BODY,
                validity: timedelta | int | float = DEFAULT_VALIDITY, quiet: bool = False) -> WSGIServer:
    """A threaded ``wsgiref`` server for :func:`app` (``port=0`` picks a free port: ``server.server_port``).

    Call ``serve_forever()`` on it, and ``shutdown()`` / ``server_close()`` to stop.
    """
    handler = type("_UnsubscribeHandler", (_Handler,), {"quiet": quiet})
    server = _ThreadingWSGIServer((host, port), handler)
    server.set_app(app(ledger, keys, max_body=max_body, validity=validity))
    return server


def serve(ledger_url: str, *, host: str = "127.0.0.1", port: int = 8025, keys: KeyRing | str | None = None,
          max_body: int = DEFAULT_MAX_BODY, validity: timedelta | int | float = DEFAULT_VALIDITY,
          quiet: bool = False, ready: Callable[[WSGIServer], Any] | None = None) -> None:
    """Open the ledger at ``ledger_url`` and serve the unsubscribe endpoint until ``server.shutdown()``.

    Serve it behind an HTTPS reverse proxy (RFC 8058 requires HTTPS); it binds
    ``127.0.0.1`` by default. ``ready(server)`` is called once the socket listens.
    The ledger is closed when serving stops.
    """
    ring = _ring(keys)
    check_validity(validity)
    ledger = OptOutLedger(ledger_url)
    try:
        server = make_server(ledger, host=host, port=port, keys=ring, max_body=max_body,
                             validity=validity, quiet=quiet)
        try:
            if not quiet:
                print(f"replyguard unsubscribe endpoint on http://{host}:{server.server_port}/<token> "
                      f"(ledger {ledger_url}, keys {list(ring.key_ids)}, signing {ring.signing_key_id!r})",
                      file=sys.stderr, flush=True)
            if ready is not None:
                ready(server)
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
    finally:
        ledger.close()

