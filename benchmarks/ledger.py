"""Opt-out ledger throughput: durable single applies/s and ``apply_many`` events/s.

Targets (issue 3), SQLite:
  * >= 2,000 durable single-event applies/s (WAL, synchronous=FULL: each apply is
    its own fsynced transaction with its audit row and outbox row);
  * >= 50,000 events/s with ``apply_many`` (one transaction per batch).
PostgreSQL figures are printed beside them (no target; the server's own fsync
settings apply).

Every event changes the contact's status, so each writes a contact row, an audit
row and one outbox row (one sync sink is registered). Events are built before
the clock starts: the figures are the ledger's, not the event constructors'.
Each figure is the best of ``--repeat`` runs (the median is printed too):
shared machines are noisy, and the load average is printed with the results.

Usage::

    python benchmarks/ledger.py [--quick] [--repeat N] [--pg-url URL | --no-pg] [--json OUT] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from replyguard.optout import MarkDoNotEmail, OptOutLedger, Resume, StopMessaging

TARGETS = {"sqlite_single": 2_000.0, "sqlite_many": 50_000.0}
PG_URL = os.environ.get("REPLYGUARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def single_events(n: int, contacts: int = 100) -> list[tuple[str, object]]:
    """Stop / resume in turn on each contact: every event changes a status."""
    out = []
    for i in range(n):
        c = i % contacts
        ev = (StopMessaging(actor="bench", reason="benchmark") if (i // contacts) % 2 == 0
              else Resume(actor="bench"))
        out.append((f"single-{c}", ev))
    return out


def bulk_events(n: int) -> list[tuple[str, object]]:
    tag = uuid.uuid4().hex[:6]
    return [(f"bulk-{tag}-{i}", MarkDoNotEmail(source="import", actor="crm-export")) for i in range(n)]


CPU_RATES: dict[str, list[float]] = {}


def time_single(ledger: OptOutLedger, n: int, key: str) -> float:
    events = single_events(n)
    t, c = time.perf_counter(), time.process_time()
    for contact_id, ev in events:
        ledger.apply(contact_id, ev)  # type: ignore[arg-type]
    CPU_RATES.setdefault(key, []).append(n / max(time.process_time() - c, 1e-9))
    return n / (time.perf_counter() - t)


def time_many(ledger: OptOutLedger, n: int, key: str) -> float:
    events = bulk_events(n)
    t, c = time.perf_counter(), time.process_time()
    ledger.apply_many(events)  # type: ignore[arg-type]
    CPU_RATES.setdefault(key, []).append(n / max(time.process_time() - c, 1e-9))
    return n / (time.perf_counter() - t)


def best_of(repeat: int, make: Callable[[], OptOutLedger], run: Callable[[OptOutLedger], float]) -> tuple[float, float]:
    rates = []
    for _ in range(repeat):
        ledger = make()
        try:
            rates.append(run(ledger))
        finally:
            ledger.close()
    return max(rates), statistics.median(rates)


def _sink(message: object) -> None:
    return None


def bare_commits(tmp: Path, n: int = 500) -> float:
    """Durable commits/s of a one-row SQLite transaction on the same disk, now: the ceiling
    for single applies (each is one fsynced commit), and a gauge of how busy the disk is."""
    import sqlite3

    path = tmp / f"bare-{uuid.uuid4().hex}.sqlite"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
    t = time.perf_counter()
    for _ in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t (b) VALUES ('x')")
        con.execute("COMMIT")
    rate = n / (time.perf_counter() - t)
    con.close()
    return rate


def sqlite_figures(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[float, float]]:
    def make() -> OptOutLedger:
        ledger = OptOutLedger(tmp / f"{uuid.uuid4().hex}.sqlite")
        con = ledger._store_obj._con  # type: ignore[union-attr]  # check what is being measured
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2
        ledger.add_sink("crm", _sink)
        return ledger

    return {"sqlite_single": best_of(args.repeat, make, lambda led: time_single(led, args.single, "sqlite_single")),
            "sqlite_many": best_of(args.repeat, make, lambda led: time_many(led, args.many, "sqlite_many"))}


def pg_figures(args: argparse.Namespace) -> dict[str, tuple[float, float]] | str:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'replyguard[postgres]')"
    try:
        psycopg.connect(args.pg_url, connect_timeout=3).close()
    except Exception as exc:
        from replyguard.optout._postgres import split_url

        return f"no PostgreSQL server at {split_url(args.pg_url)[2]}: {str(exc).strip()[:160]}"
    schemas: list[str] = []

    def make() -> OptOutLedger:
        schema = f"rg_bench_{uuid.uuid4().hex[:10]}"
        schemas.append(schema)
        sep = "&" if "?" in args.pg_url else "?"
        ledger = OptOutLedger(f"{args.pg_url}{sep}schema={schema}")
        ledger.add_sink("crm", _sink)
        return ledger

    try:
        return {"postgresql_single": best_of(args.repeat, make,
                                             lambda led: time_single(led, args.pg_single, "postgresql_single")),
                "postgresql_many": best_of(args.repeat, make,
                                           lambda led: time_many(led, args.pg_many, "postgresql_many"))}
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as con:
            for schema in schemas:
                con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test, not the figures)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--check", action="store_true", help="exit 1 if a SQLite target is missed")
    args = ap.parse_args(argv)
    args.single, args.many = (500, 10_000) if args.quick else (3_000, 100_000)
    args.pg_single, args.pg_many = (200, 5_000) if args.quick else (1_000, 50_000)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"replyguard opt-out ledger benchmark: Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.2f}; best of {args.repeat} (median)")
    with tempfile.TemporaryDirectory(prefix="replyguard-bench-") as tmp:
        bare_before = bare_commits(Path(tmp))
        figures: dict[str, tuple[float, float]] = sqlite_figures(args, Path(tmp))
        bare_after = bare_commits(Path(tmp))
    pg = "skipped (--no-pg)" if args.no_pg else pg_figures(args)
    if isinstance(pg, dict):
        figures.update(pg)

    rows = [("durable single-event applies/s", "sqlite_single", "postgresql_single"),
            ("apply_many events/s", "sqlite_many", "postgresql_many")]
    print(f"\n{'':34}{'SQLite':>22}{'target':>10}{'':8}{'PostgreSQL':>22}")
    met_all = True
    for label, s_key, p_key in rows:
        best, med = figures[s_key]
        target = TARGETS[s_key]
        met = best >= target
        met_all &= met
        pg_cell = (f"{figures[p_key][0]:>10,.0f} ({figures[p_key][1]:,.0f})" if p_key in figures else "n/a")
        print(f"{label:34}{best:>10,.0f} ({med:>9,.0f}){target:>10,.0f}  {'MET' if met else 'MISSED':6}{pg_cell:>22}")
    if not isinstance(pg, dict):
        print(f"\nPostgreSQL: {pg}")
    print(f"bare durable SQLite commits/s on this disk (one-row transactions, before / after): "
          f"{bare_before:,.0f} / {bare_after:,.0f}")
    cpu = ", ".join(f"{k} {max(v):,.0f}/s" for k, v in CPU_RATES.items())
    print(f"per second of this process's CPU time (what an idle machine approaches): {cpu}")
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average after the runs: {load_after:.2f} on {os.cpu_count()} CPUs")
    print(f"\nSQLite targets {'met' if met_all else 'NOT met'}.")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "load_average": load[0], "cpus": os.cpu_count(), "targets": TARGETS,
            "bare_sqlite_commits_per_s": [round(bare_before), round(bare_after)],
            "per_cpu_second": {k: round(max(v), 1) for k, v in CPU_RATES.items()},
            "figures": {k: {"best": round(v[0], 1), "median": round(v[1], 1)} for k, v in figures.items()},
            "postgresql": pg if isinstance(pg, str) else "measured"}, indent=2) + "\n")
    return 1 if (args.check and not met_all) else 0


if __name__ == "__main__":
    raise SystemExit(main())
