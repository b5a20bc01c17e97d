"""Fixtures: a key ring, a temp SQLite ledger per test, and the endpoint served on 127.0.0.1."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from replyguard.optout import OptOutLedger
from replyguard.unsubscribe import KeyRing, make_server

OLD = ("2025q4", "old-secret-for-tests-0123456789")
NEW = ("2026q1", "new-secret-for-tests-0123456789")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([OLD, NEW])


@pytest.fixture
def ledger(tmp_path) -> Iterator[OptOutLedger]:
    led = OptOutLedger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


@dataclass
class Server:
    base: str
    ledger: OptOutLedger


@pytest.fixture
def server(ledger, ring) -> Iterator[Server]:
    srv = make_server(ledger, host="127.0.0.1", port=0, keys=ring, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{srv.server_port}/u", ledger)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str


def request(url: str, *, method: str = "GET", data: bytes | None = None,
            content_type: str | None = "application/x-www-form-urlencoded") -> Response:
    """A real HTTP request with urllib (no cookie handling at all); 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Response(resp.status, dict(resp.headers.items()), resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, dict(err.headers.items()), err.read().decode("utf-8"))
