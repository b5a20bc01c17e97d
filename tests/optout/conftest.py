"""Fixtures for the opt-out ledger tests: the same tests run on SQLite and on PostgreSQL.

PostgreSQL: ``REPLYGUARD_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema
``rg_<run>_<n>``, dropped afterwards. Without a reachable server the PostgreSQL
cases skip with the reason; with ``REPLYGUARD_REQUIRE_PG=1`` (CI) they fail instead.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from replyguard import Evidence, Intent, Verdict

PG_URL = os.environ.get("REPLYGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUN_ID = uuid.uuid4().hex[:8]
_schemas = itertools.count(1)
_pg_reason: list[str | None] = []

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday


def pg_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    if not _pg_reason:
        try:
            import psycopg
        except ImportError:
            _pg_reason.append("psycopg is not installed (pip install 'psycopg[binary]>=3.1')")
        else:
            try:
                psycopg.connect(PG_URL, connect_timeout=3).close()
                _pg_reason.append(None)
            except Exception as exc:
                from replyguard.optout._postgres import split_url

                _pg_reason.append(f"no PostgreSQL server reachable at {split_url(PG_URL)[2]} "
                                  f"({str(exc).strip()[:200]}); set REPLYGUARD_TEST_PG_URL")
    return _pg_reason[0]


def require_pg() -> None:
    reason = pg_unavailable()
    if reason:
        if os.environ.get("REPLYGUARD_REQUIRE_PG"):
            pytest.fail(f"REPLYGUARD_REQUIRE_PG is set but {reason}")
        pytest.skip(f"PostgreSQL tests skipped: {reason}")


def pg_url_for(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}"


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_schemas() -> Iterator[None]:
    yield
    if _pg_reason and _pg_reason[0] is None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_URL, autocommit=True) as con:
            rows = con.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                               [f"rg_{RUN_ID}_%"]).fetchall()
            for (name,) in rows:
                con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_pg()
    return str(request.param)


@pytest.fixture
def ledger_url(backend: str, tmp_path) -> Iterator[str]:
    """A fresh, empty ledger location for this test."""
    if backend == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
        return
    schema = f"rg_{RUN_ID}_{next(_schemas)}"
    try:
        yield pg_url_for(schema)
    finally:
        drop_schema(schema)


@pytest.fixture
def open_ledger(ledger_url: str) -> Iterator[Callable[..., object]]:
    """``open_ledger(**options)`` opens the test's ledger; every one opened is closed afterwards."""
    from replyguard.optout import OptOutLedger

    opened: list[OptOutLedger] = []

    def make(**kwargs: object) -> OptOutLedger:
        ledger = OptOutLedger(ledger_url, **kwargs)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(open_ledger):
    return open_ledger()


def verdict(intent: str | Intent = "other", *, score: float | None = None, dne: bool | None = None,
            text: str = "Thanks for reaching out.", rules: tuple[str, ...] = (), needs_review: bool = False) -> Verdict:
    """A Verdict built by hand (no classifier needed)."""
    intent = Intent(intent)
    is_dne = intent is Intent.DO_NOT_EMAIL if dne is None else dne
    p = score if score is not None else (0.97 if is_dne else 0.03)
    ev = tuple(Evidence("rule", r, 0, 5, text[:5]) for r in rules)
    return Verdict(intent=intent, do_not_email=is_dne, score=p, scores={i.value: 0.0 for i in Intent},
                   needs_review=needs_review, evidence=ev, reply_text=text, language="en",
                   model_version="test-model", ruleset_version="test-rules")

#: The ``src`` folder, for subprocesses that import replyguard.
ROOT_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


class Clock:
    """A settable clock for ``OptOutLedger(clock=...)`` (starts at ``T0``)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
