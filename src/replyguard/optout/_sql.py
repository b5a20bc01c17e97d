"""The ledger's SQL, shared by the SQLite and PostgreSQL stores.

Statements are written once with ``?`` placeholders; a store converts them to
its driver's style and supplies the few dialect hooks (timestamps, JSON, lists,
locking, sequence numbers, transactions). Rows come back as plain dicts with
Python values; :mod:`replyguard.optout.ledger` turns them into records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import EventIdConflict, LedgerVersionError, NotALedgerError

T = TypeVar("T")

APPLICATION = "replyguard.optout.ledger"

EVENT_COLUMNS = ("seq", "event_id", "contact_id", "event_type", "kind", "occurred_at", "recorded_at",
                 "previous", "status", "effects", "source", "actor", "reason", "evidence")
CONTACT_COLUMNS = ("contact_id", "status", "since", "updated_at", "paused_until", "events", "last_seq")
# An outbox row names the event (seq) and the sink; the message is built from the event's
# audit row when it is delivered, so a status change is stored once however many sinks.
OUTBOX_INSERT_COLUMNS = ("seq", "contact_id", "sink", "kind", "alert", "state", "attempts", "next_attempt_at")
OUTBOX_COLUMNS = ("id", "seq", "contact_id", "sink", "kind", "alert", "state", "attempts", "next_attempt_at",
                  "lease_until", "last_error", "delivered_at", "dead_at")
# an outbox row with its event: what deliveries and listings read
_JOINED = (*(f"o.{c}" for c in OUTBOX_COLUMNS), "e.event_id", "e.event_type", "e.kind", "e.occurred_at",
           "e.recorded_at", "e.previous", "e.status", "e.source", "e.actor", "e.reason", "e.evidence")
JOINED_COLUMNS = (*OUTBOX_COLUMNS, "event_id", "event_type", "event_kind", "occurred_at", "recorded_at",
                  "previous", "status", "source", "actor", "reason", "evidence")
_TS_EVENT = {"occurred_at", "recorded_at"}
_TS_CONTACT = {"since", "updated_at", "paused_until"}
_TS_OUTBOX = {"next_attempt_at", "lease_until", "delivered_at", "dead_at", "occurred_at", "recorded_at"}

# Versioned migrations: _MIGRATIONS[i] takes a ledger from version i to version i + 1.
# {TS}, {JSON}, {BIGINT}, {ID}, {WITHOUT_ROWID} are filled per dialect. Never edit a released step: add one.
_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE replyguard_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE contacts (
            contact_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            since {TS} NOT NULL,
            updated_at {TS} NOT NULL,
            paused_until {TS},
            events {BIGINT} NOT NULL,
            last_seq {BIGINT} NOT NULL){WITHOUT_ROWID}""",
        "CREATE INDEX contacts_by_status ON contacts (status, since)",
        """CREATE TABLE events (
            seq {BIGINT} PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            contact_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            kind TEXT NOT NULL,
            occurred_at {TS} NOT NULL,
            recorded_at {TS} NOT NULL,
            previous TEXT NOT NULL,
            status TEXT NOT NULL,
            effects TEXT NOT NULL,
            source TEXT NOT NULL,
            actor TEXT,
            reason TEXT,
            evidence {JSON} NOT NULL)""",
        "CREATE INDEX events_by_contact ON events (contact_id, seq)",
        """CREATE TABLE sinks (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            alert_on TEXT NOT NULL,
            added_at {TS} NOT NULL)""",
        """CREATE TABLE outbox (
            id {ID},
            seq {BIGINT} NOT NULL,
            contact_id TEXT NOT NULL,
            sink TEXT NOT NULL,
            kind TEXT NOT NULL,
            alert TEXT,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at {TS} NOT NULL,
            lease_until {TS},
            lease_owner TEXT,
            last_error TEXT,
            delivered_at {TS},
            dead_at {TS},
            UNIQUE (contact_id, seq, sink))""",
        "CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending'",
        "CREATE INDEX outbox_dead ON outbox (sink, id) WHERE state = 'dead'",
    ],
]


#: The schema version this replyguard writes (the number of migrations).
SCHEMA_VERSION = len(_MIGRATIONS)


def current_version() -> int:
    """The schema version of the migrations in force (tests add steps to check upgrades)."""
    return len(_MIGRATIONS)


class Planner(Protocol):
    """What the ledger gives the store to decide each event inside the transaction."""

    def stored(self, row: dict[str, Any]) -> Any: ...

    def plan(self, contact_id: str, event: Any, state: tuple[Any, ...] | None,
             sinks: Sequence[dict[str, Any]], seq: int, now: datetime,
             conv: tuple[Any, Callable[[datetime | None], Any], Callable[[Any], Any], Any]
             ) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]], Any]:
        """``(new contact state, event row in EVENT_COLUMNS order, outbox rows in
        OUTBOX_INSERT_COLUMNS order, result)``; ``conv`` is ``(now for the store, ts, jin, jin({}))``."""
        ...


class SQLStore:
    """The dialect-neutral part of a ledger store. Subclasses: ``SQLiteStore``, ``PostgresStore``."""

    where: str = "ledger"
    skip_locked = ""
    #: SQLite: write first and look event ids up only if one turns out to be known (the write
    #: fails on the unique index and is rolled back). PostgreSQL looks them up first.
    optimistic = False
    duplicate_event_error: type[Exception] | tuple[type[Exception], ...] = ()
    dialect_types: ClassVar[dict[str, str]] = {}

    # -- dialect hooks -------------------------------------------------------------------------
    def q(self, sql: str) -> str:
        return sql

    def ts(self, dt: datetime | None) -> Any:
        raise NotImplementedError

    def dt(self, value: Any) -> datetime | None:
        raise NotImplementedError

    def jin(self, obj: Any) -> Any:
        raise NotImplementedError

    def jout(self, value: Any) -> Any:
        raise NotImplementedError

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values``: a SQL fragment and its parameters (any number of values)."""
        raise NotImplementedError

    def write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def lock_contacts(self, cur: Any, contact_ids: Sequence[str], now: datetime) -> dict[str, dict[str, Any]]:
        """Read the contacts' rows for update (PostgreSQL locks them; SQLite holds the write lock already)."""
        return self._contacts_by_id(cur, contact_ids)

    def write_rows(self, cur: Any, contacts: list[tuple[Any, ...]], events: list[tuple[Any, ...]],
                   outbox: list[tuple[Any, ...]]) -> None:
        """Write one batch: contact upserts, audit rows, outbox rows (store-ready tuples)."""
        cur.executemany(self._sql_upsert_contact, contacts)
        cur.executemany(self._sql_insert_event, events)
        if outbox:
            self.insert_outbox(cur, outbox)

    def allocate_seqs(self, cur: Any, n: int) -> list[int]:
        raise NotImplementedError

    def insert_outbox(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        cols = ", ".join(OUTBOX_INSERT_COLUMNS)
        cur.executemany(self.q(f"INSERT INTO outbox ({cols}) VALUES ({', '.join('?' * len(OUTBOX_INSERT_COLUMNS))})"),
                        rows)

    def close(self) -> None:
        raise NotImplementedError

    # -- schema ----------------------------------------------------------------------------------
    def ddl(self, statement: str) -> str:
        return statement.format(**self.dialect_types)

    def check_meta(self, tables: Iterable[str], meta: dict[str, str] | None) -> int:
        """The ledger's schema version (0: empty, to be created). Raises for a foreign or newer store."""
        tables = sorted(tables)
        if not tables:
            return 0
        if meta is None:
            shown = ", ".join(tables[:6]) + (", ..." if len(tables) > 6 else "")
            raise NotALedgerError(self.where, f"it holds other tables: {shown}")
        app = meta.get("application")
        if app != APPLICATION:
            raise NotALedgerError(self.where, f"its replyguard_meta names the application {app!r}")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise NotALedgerError(self.where, f"schema_version {meta.get('schema_version')!r} is not a number") from None
        if version > current_version():
            raise LedgerVersionError(self.where, version, current_version())
        return version

    def migrate(self, cur: Any, version: int, now: datetime) -> None:
        """Apply the migrations after ``version`` in this transaction and stamp the new version."""
        for target, step in enumerate(_MIGRATIONS[version:], start=version + 1):
            for statement in step:
                cur.execute(self.ddl(statement))
            for statement in self.extra_ddl(target):
                cur.execute(statement)
        target = len(_MIGRATIONS)
        upsert = self.q("INSERT INTO replyguard_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        if version == 0:
            cur.execute(upsert, ("application", APPLICATION))
            cur.execute(upsert, ("created_at", now.isoformat()))
        cur.execute(upsert, ("schema_version", str(target)))
        cur.execute(upsert, (f"migrated_to_{target}_at", now.isoformat()))

    def extra_ddl(self, version: int) -> list[str]:
        """Dialect-only statements that go with migration ``version`` (a sequence, pragmas)."""
        return []

    # -- helpers -------------------------------------------------------------------------------
    def _rows(self, cur: Any, columns: Sequence[str], ts_cols: set[str], json_cols: set[str]) -> list[dict[str, Any]]:
        out = []
        for raw in cur.fetchall():
            row = dict(zip(columns, raw, strict=True))
            for c in ts_cols & row.keys():
                row[c] = self.dt(row[c])
            for c in json_cols & row.keys():
                row[c] = self.jout(row[c])
            out.append(row)
        return out

    def _events_by_id(self, cur: Any, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        cols = ", ".join(EVENT_COLUMNS)
        frag, params = self.in_list("event_id", ids)
        cur.execute(self.q(f"SELECT {cols} FROM events WHERE {frag}"), params)
        for row in self._rows(cur, EVENT_COLUMNS, _TS_EVENT, {"evidence"}):
            out[row["event_id"]] = row
        return out

    def _contacts_by_id(self, cur: Any, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        cols = ", ".join(CONTACT_COLUMNS)
        frag, params = self.in_list("contact_id", ids)
        cur.execute(self.q(f"SELECT {cols} FROM contacts WHERE {frag}"), params)
        for row in self._rows(cur, CONTACT_COLUMNS, _TS_CONTACT, set()):
            out[row["contact_id"]] = row
        return out

    def _sinks(self, cur: Any) -> list[dict[str, Any]]:
        cur.execute("SELECT name, role, alert_on, added_at FROM sinks ORDER BY name")
        return [{"name": n, "role": r, "alert_on": tuple(a.split(",")) if a else (), "added_at": self.dt(t)}
                for n, r, a, t in cur.fetchall()]

    # -- apply ---------------------------------------------------------------------------------
    def apply_batch(self, items: Sequence[tuple[str, Any]], planner: Planner, now: datetime) -> list[Any]:
        """Apply ``(contact_id, event)`` pairs in order, in one transaction; return their results.

        The planner decides each event from the contact's state as of the previous
        one and returns rows ready for this store (see ``Planner``).
        """
        contact_ids = list({c: None for c, _ in items})  # PostgreSQL sorts them before locking
        event_ids = list({e.event_id: None for _, e in items})
        conv = (self.ts(now), self.ts, self.jin, self.jin({}))
        look_up = not self.optimistic

        def body(cur: Any) -> list[Any]:
            ts = self.ts
            states = {cid: (r["status"], r["since"], ts(r["since"]), r["paused_until"], r["events"], r["last_seq"])
                      for cid, r in self.lock_contacts(cur, contact_ids, now).items()}
            known = self._events_by_id(cur, event_ids) if look_up else {}
            sinks = self._sinks(cur)
            n_new = len(event_ids) - len(known)
            seqs = iter(self.allocate_seqs(cur, n_new) if n_new else ())
            results: list[Any] = []
            seen: dict[str, tuple[str, str, Any]] = {}
            touched: dict[str, tuple[Any, ...]] = {}
            event_rows: list[tuple[Any, ...]] = []
            outbox_rows: list[tuple[Any, ...]] = []
            plan = planner.plan
            get_state = states.get
            for contact_id, event in items:
                eid = event.event_id
                prior = seen.get(eid)
                if prior is None and eid in known:
                    row = known[eid]
                    prior = seen[eid] = (row["contact_id"], row["event_type"], planner.stored(row))
                if prior is not None:
                    if prior[0] != contact_id:
                        raise EventIdConflict(eid, f"to contact {prior[0]!r}, not {contact_id!r}")
                    if prior[1] != event.TYPE:
                        raise EventIdConflict(eid, f"as a {prior[1]} event, not a {event.TYPE}")
                    results.append(prior[2])
                    continue
                state, event_row, outbox, result = plan(contact_id, event, get_state(contact_id), sinks,
                                                        next(seqs), now, conv)
                states[contact_id] = touched[contact_id] = state
                event_rows.append(event_row)
                if outbox:
                    outbox_rows.extend(outbox)
                seen[eid] = (contact_id, event.TYPE, result)
                results.append(result)
            if event_rows:
                now_db = conv[0]
                self.write_rows(cur, [(cid, s[0], s[2], now_db, None if s[3] is None else ts(s[3]), s[4], s[5])
                                      for cid, s in touched.items()],
                                event_rows, outbox_rows)
            return results

        if look_up:
            return self.write(body)
        try:
            return self.write(body)
        except self.duplicate_event_error as exc:
            if "event_id" not in str(exc):
                raise
        except ValueError:
            pass  # an invalid transition may be the replay of an event applied before
        look_up = True  # so: the same transaction again, with the lookups
        return self.write(body)

    @property
    def _sql_upsert_contact(self) -> str:
        sets = ", ".join(f"{c} = excluded.{c}" for c in CONTACT_COLUMNS[1:])
        return self.q(f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES "
                      f"({', '.join('?' * len(CONTACT_COLUMNS))}) ON CONFLICT (contact_id) DO UPDATE SET {sets}")

    @property
    def _sql_insert_event(self) -> str:
        return self.q(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")

    # -- reads ---------------------------------------------------------------------------------
    def event(self, event_id: str) -> dict[str, Any] | None:
        return self.read(lambda cur: self._events_by_id(cur, [event_id]).get(event_id))

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        return self.read(lambda cur: self._contacts_by_id(cur, [contact_id]).get(contact_id))

    def contacts(self, statuses: Sequence[str] | None, since: datetime | None,
                 limit: int | None) -> list[dict[str, Any]]:
        where, params = [], []
        if statuses:
            frag, p = self.in_list("status", list(statuses))
            where.append(frag)
            params += p
        if since is not None:
            where.append("since >= ?")
            params.append(self.ts(since))
        sql = f"SELECT {', '.join(CONTACT_COLUMNS)} FROM contacts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY since, contact_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(self.q(sql), params)
            return self._rows(cur, CONTACT_COLUMNS, _TS_CONTACT, set())

        return self.read(body)

    def history(self, contact_id: str) -> list[dict[str, Any]]:
        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(self.q(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE contact_id = ? ORDER BY seq"),
                        [contact_id])
            return self._rows(cur, EVENT_COLUMNS, _TS_EVENT, {"evidence"})

        return self.read(body)

    def paused_due(self, now: datetime) -> list[tuple[str, datetime]]:
        def body(cur: Any) -> list[tuple[str, datetime]]:
            cur.execute(self.q("SELECT contact_id, paused_until FROM contacts WHERE status = 'paused' "
                               "AND paused_until IS NOT NULL AND paused_until <= ? ORDER BY paused_until, contact_id"),
                        [self.ts(now)])
            return [(c, d) for c, t in cur.fetchall() if (d := self.dt(t)) is not None]

        return self.read(body)

    def counts(self) -> dict[str, int]:
        def body(cur: Any) -> dict[str, int]:
            out = {}
            for name, sql in (("contacts", "SELECT COUNT(*) FROM contacts"),
                              ("events", "SELECT COUNT(*) FROM events")):
                cur.execute(sql)
                out[name] = int(cur.fetchone()[0])
            cur.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            for state, n in cur.fetchall():
                out[f"outbox_{state}"] = int(n)
            return out

        return self.read(body)

    # -- sinks ---------------------------------------------------------------------------------
    def register_sink(self, name: str, role: str, alert_on: Sequence[str], now: datetime) -> dict[str, Any] | None:
        """Register ``name``; return the earlier registration if it had another role (nothing written)."""

        def body(cur: Any) -> dict[str, Any] | None:
            for s in self._sinks(cur):
                if s["name"] == name:
                    if s["role"] != role:
                        return s
                    if tuple(s["alert_on"]) != tuple(alert_on):
                        cur.execute(self.q("UPDATE sinks SET alert_on = ? WHERE name = ?"), [",".join(alert_on), name])
                    return None
            cur.execute(self.q("INSERT INTO sinks (name, role, alert_on, added_at) VALUES (?, ?, ?, ?)"),
                        [name, role, ",".join(alert_on), self.ts(now)])
            return None

        return self.write(body)

    def remove_sink(self, name: str) -> bool:
        def body(cur: Any) -> bool:
            cur.execute(self.q("DELETE FROM sinks WHERE name = ?"), [name])
            return bool(cur.rowcount)

        return self.write(body)

    def sinks(self) -> list[dict[str, Any]]:
        return self.read(self._sinks)

    # -- outbox --------------------------------------------------------------------------------
    def claim(self, sinks: Sequence[str], now: datetime, lease_until: datetime, owner: str,
              limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due rows of ``sinks``, oldest first, one per (sink, contact) at a time.

        Returns the rows joined with their events (``JOINED_COLUMNS``).
        """
        frag, params = self.in_list("o.sink", list(sinks))
        lease = self.q(
            "UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE id IN ("
            " SELECT o.id FROM outbox o WHERE o.state = 'pending' AND " + frag +
            " AND o.next_attempt_at <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.contact_id = o.contact_id AND p.seq < o.seq"
            "   AND p.sink = o.sink AND p.state = 'pending')"
            f" ORDER BY o.id LIMIT {int(limit)}{self.skip_locked}) RETURNING id")

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(lease, [self.ts(lease_until), owner, *params, self.ts(now), self.ts(now)])
            ids = [r[0] for r in cur.fetchall()]
            if not ids:
                return []
            return self._joined(cur, "o.id", ids)

        return self.write(body)

    def _joined(self, cur: Any, column: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        frag, p = self.in_list(column, list(values))
        cur.execute(self.q(f"SELECT {', '.join(_JOINED)} FROM outbox o JOIN events e ON e.seq = o.seq "
                           f"WHERE {frag} ORDER BY o.id"), p)
        return self._rows(cur, JOINED_COLUMNS, _TS_OUTBOX, {"evidence"})

    def complete(self, outcomes: Sequence[dict[str, Any]], owner: str) -> None:
        """Record delivery outcomes ``{"id", "state", "next_attempt_at", "error", "at"}`` of rows ``owner``
        still leases (a row whose lease ran out belongs to whoever took it over)."""
        sql = self.q("UPDATE outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ?, "
                     "lease_until = NULL, lease_owner = NULL, last_error = ?, delivered_at = ?, dead_at = ? "
                     "WHERE id = ? AND state = 'pending' AND lease_owner = ?")
        rows = [(o["state"], self.ts(o["next_attempt_at"]), o["error"],
                 self.ts(o["at"] if o["state"] == "delivered" else None),
                 self.ts(o["at"] if o["state"] == "dead" else None), o["id"], owner) for o in outcomes]

        def body(cur: Any) -> None:
            cur.executemany(sql, rows)

        if rows:
            self.write(body)

    def outbox(self, states: Sequence[str] | None, sink: str | None, contact_id: str | None,
               limit: int | None) -> list[dict[str, Any]]:
        where, params = [], []
        if states:
            frag, p = self.in_list("o.state", list(states))
            where.append(frag)
            params += p
        if sink is not None:
            where.append("o.sink = ?")
            params.append(sink)
        if contact_id is not None:
            where.append("o.contact_id = ?")
            params.append(contact_id)
        sql = f"SELECT {', '.join(_JOINED)} FROM outbox o JOIN events e ON e.seq = o.seq"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY o.id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(self.q(sql), params)
            return self._rows(cur, JOINED_COLUMNS, _TS_OUTBOX, {"evidence"})

        return self.read(body)

    def requeue(self, ids: Sequence[int] | None, sink: str | None, now: datetime
                ) -> tuple[list[int], list[int], list[int]]:
        """Put dead letters back in line. Returns (requeued, superseded, not dead) ids.

        A dead ``sync`` row whose sink already received a later status of the
        same contact is marked ``superseded`` instead: sending it now would
        overwrite the newer status.
        """

        def body(cur: Any) -> tuple[list[int], list[int], list[int]]:
            where, params = ["state = 'dead'"], []
            if ids is not None:
                frag, p = self.in_list("id", list(ids) or [-1])
                where.append(frag)
                params += p
            if sink is not None:
                where.append("sink = ?")
                params.append(sink)
            cur.execute(self.q(f"SELECT id, sink, contact_id, kind FROM outbox WHERE {' AND '.join(where)} ORDER BY id"),
                        params)
            dead = cur.fetchall()
            requeued, superseded = [], []
            for oid, s, contact, kind in dead:
                if kind == "sync":
                    cur.execute(self.q("SELECT 1 FROM outbox WHERE sink = ? AND contact_id = ? AND kind = 'sync' "
                                       "AND state = 'delivered' AND id > ? LIMIT 1"), [s, contact, oid])
                    if cur.fetchone() is not None:
                        superseded.append(oid)
                        continue
                requeued.append(oid)
            if superseded:
                cur.executemany(self.q("UPDATE outbox SET state = 'superseded' WHERE id = ?"), [(i,) for i in superseded])
            if requeued:
                cur.executemany(self.q("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                                       "dead_at = NULL, lease_until = NULL, lease_owner = NULL WHERE id = ?"),
                                [(self.ts(now), i) for i in requeued])
            found = {row[0] for row in dead}
            missing = [] if ids is None else [i for i in ids if i not in found]
            return requeued, superseded, missing

        return self.write(body)

    # -- compliance ----------------------------------------------------------------------------
    def compliance_rows(self, statuses: Sequence[str], contact_id: str | None) -> list[dict[str, Any]]:
        """For each contact in ``statuses``: the event that began its current spell in them, and
        every sync outbox row since, per sink."""
        suppressed, sp = self.in_list("e3.status", list(statuses))
        in_status, ip = self.in_list("c.status", list(statuses))
        where = in_status
        params: list[Any] = [*sp, *ip]
        if contact_id is not None:
            where += " AND c.contact_id = ?"
            params.append(contact_id)
        sql = self.q(
            "WITH req AS (SELECT c.contact_id, c.status, ("
            "  SELECT MIN(e2.seq) FROM events e2 WHERE e2.contact_id = c.contact_id AND e2.seq > COALESCE(("
            "    SELECT MAX(e3.seq) FROM events e3 WHERE e3.contact_id = c.contact_id AND NOT (" + suppressed + ")" +
            "  ), 0)) AS rseq FROM contacts c WHERE " + where + ")"
            " SELECT req.contact_id, req.status, e.seq, e.event_id, e.event_type, e.kind, e.occurred_at,"
            " e.recorded_at, e.source, e.actor, e.reason, o.sink, o.state, o.delivered_at, o.attempts, o.last_error"
            " FROM req JOIN events e ON e.seq = req.rseq"
            " LEFT JOIN outbox o ON o.contact_id = req.contact_id AND o.kind = 'sync' AND o.seq >= req.rseq"
            " ORDER BY e.occurred_at, req.contact_id, o.sink, o.seq")
        cols = ("contact_id", "status", "seq", "event_id", "event_type", "kind", "occurred_at", "recorded_at",
                "source", "actor", "reason", "sink", "state", "delivered_at", "attempts", "last_error")

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(sql, params)
            return self._rows(cur, cols, {"occurred_at", "recorded_at", "delivered_at"}, set())

        return self.read(body)
