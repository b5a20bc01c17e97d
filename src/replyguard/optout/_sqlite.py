"""The embedded ledger store: one SQLite file in WAL mode with ``synchronous=FULL``.

Every write is one ``BEGIN IMMEDIATE`` transaction, so writers in several
processes queue on the file's write lock (retrying after short random sleeps,
for up to ``busy_timeout`` seconds) instead of losing updates, and a committed
transaction survives a crash of the process or of the machine. Times are
integer microseconds since 1970-01-01 UTC. A file that is not a replyguard
ledger is inspected read-only and never written to.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from ._sql import SQLStore, current_version
from .errors import LedgerError, LedgerNotFoundError, NotALedgerError

T = TypeVar("T")

#: ``PRAGMA application_id`` of a replyguard ledger ("RGLD").
APPLICATION_ID = 0x52474C44
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class SQLiteStore(SQLStore):
    optimistic = True
    duplicate_event_error = sqlite3.IntegrityError
    # times are integer microseconds since 1970-01-01 UTC: exact, ordered, and cheap to write in bulk
    dialect_types: ClassVar[dict[str, str]] = {"TS": "INTEGER", "JSON": "TEXT", "BIGINT": "INTEGER",
                                               "ID": "INTEGER PRIMARY KEY", "WITHOUT_ROWID": " WITHOUT ROWID"}

    def __init__(self, path: str, *, create: bool, now: datetime, busy_timeout: float = 60.0) -> None:
        self.path = path
        self.where = f"SQLite file {path!r}"
        memory = path == ":memory:"
        if not memory:
            p = Path(path)
            if p.is_dir():
                raise NotALedgerError(self.where, "it is a directory")
            has_wal = Path(path + "-wal").is_file() and Path(path + "-wal").stat().st_size > 0
            if p.is_file() and (p.stat().st_size > 0 or has_wal):
                self._inspect_readonly(p)
            elif not create:
                raise LedgerNotFoundError(path)
        self._lock = threading.RLock()
        self._busy_timeout = busy_timeout
        self._con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.002)
        try:
            if not memory:
                self._set_wal(busy_timeout)
            self._con.execute("PRAGMA synchronous = FULL")
            self._con.execute("PRAGMA cache_size = -65536")  # 64 MiB: bulk imports without cache spills
            self._con.execute("PRAGMA temp_store = MEMORY")

            def init(cur: Any) -> None:
                version = self.check_meta(*self._read_meta(cur))
                if version < current_version():
                    self.migrate(cur, version, now)

            self.write(init)
        except BaseException:
            self._con.close()
            raise

    # -- opening -------------------------------------------------------------------------------
    def _inspect_readonly(self, p: Path) -> None:
        """Check an existing file without writing to it (``mode=ro``)."""
        uri = "file:" + quote(str(p.resolve())) + "?mode=ro"
        try:
            con = sqlite3.connect(uri, uri=True, isolation_level=None)
            try:
                tables, meta = self._read_meta(con.cursor())
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise NotALedgerError(self.where, f"not an SQLite database: {exc}") from None
        self.check_meta(tables, meta)

    @staticmethod
    def _read_meta(cur: Any) -> tuple[list[str], dict[str, str] | None]:
        cur.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite%'")
        tables = [r[0] for r in cur.fetchall()]
        meta = None
        if "replyguard_meta" in tables:
            cur.execute("SELECT key, value FROM replyguard_meta")
            meta = {k: v for k, v in cur.fetchall()}
        return tables, meta

    def _set_wal(self, busy_timeout: float) -> None:
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                mode = self._con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if str(mode).lower() != "wal":
            raise LedgerError(f"{self.where}: could not switch to WAL journaling (got {mode!r}); "
                              "put the ledger on a local file system")

    def extra_ddl(self, version: int) -> list[str]:
        return [f"PRAGMA application_id = {APPLICATION_ID}", f"PRAGMA user_version = {version}"]

    # -- dialect -------------------------------------------------------------------------------
    def ts(self, dt: datetime | None) -> Any:
        return None if dt is None else (dt - _EPOCH) // _US

    def dt(self, value: Any) -> datetime | None:
        return None if value is None else _EPOCH + timedelta(microseconds=value)

    def jin(self, obj: Any) -> Any:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    def jout(self, value: Any) -> Any:
        return json.loads(value)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if len(values) == 1:
            return f"{column} = ?", [values[0]]
        return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(values))]

    def allocate_seqs(self, cur: Any, n: int) -> list[int]:
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM events")
        base = int(cur.fetchone()[0])
        return list(range(base + 1, base + n + 1))

    # -- transactions ----------------------------------------------------------------------------
    def _run(self, begin: str, fn: Callable[[Any], T]) -> T:
        # SQLite's own busy handler sleeps in coarse steps (1, 2, 5, 10 ... 100 ms); a write
        # holds the lock for well under a millisecond, so waiting writers retry here instead,
        # after short random sleeps, until busy_timeout. A failed attempt was rolled back whole.
        deadline = time.monotonic() + self._busy_timeout
        with self._lock:
            while True:
                cur = self._con.cursor()
                try:
                    cur.execute(begin)
                    result = fn(cur)
                    cur.execute("COMMIT")
                    return result
                except sqlite3.OperationalError as exc:
                    if self._con.in_transaction:
                        self._con.execute("ROLLBACK")
                    msg = str(exc)
                    if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                        raise
                except BaseException:
                    if self._con.in_transaction:
                        self._con.execute("ROLLBACK")
                    raise
                time.sleep(random.uniform(0.0001, 0.0015))

    def write(self, fn: Callable[[Any], T]) -> T:
        return self._run("BEGIN IMMEDIATE", fn)

    def read(self, fn: Callable[[Any], T]) -> T:
        return self._run("BEGIN", fn)

    def close(self) -> None:
        with self._lock:
            self._con.close()
