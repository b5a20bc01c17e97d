"""The durable ledger, on SQLite and on PostgreSQL: apply, idempotency, queries, audit, schema."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

import replyguard
from replyguard.optout import (
    Consent,
    ContactStatus,
    EventIdConflict,
    InvalidContactIdError,
    InvalidEventError,
    InvalidTransition,
    LedgerNotFoundError,
    LedgerVersionError,
    MarkDoNotEmail,
    NaiveDatetimeError,
    NotALedgerError,
    OptOutLedger,
    OutOfOffice,
    Policy,
    ReplyReceived,
    Resubscribe,
    ResubscribeForbidden,
    Resume,
    StopMessaging,
    UnknownNameError,
    UnknownStatusError,
    UnsubscribeClicked,
    _sql,
)

from .conftest import T0, drop_schema, pg_url_for, require_pg, verdict


def test_apply_returns_the_transition_and_it_survives_reopening(open_ledger):
    ledger = open_ledger()
    r = ledger.apply("ana@example.com", MarkDoNotEmail(source="phone", actor="rep-1", note="called", at=T0))
    assert (r.previous, r.status, r.changed, r.may_email) == (ContactStatus.ACTIVE, ContactStatus.DO_NOT_EMAIL,
                                                              True, False)
    ledger.close()
    again = open_ledger()
    assert again.status("ana@example.com") is ContactStatus.DO_NOT_EMAIL
    assert not again.may_email("ana@example.com")
    c = again.contact("ana@example.com")
    assert (c.since, c.events) == (T0, 1)


def test_unknown_contacts_are_active_and_not_listed(ledger):
    assert ledger.status("never-seen") is ContactStatus.ACTIVE
    assert ledger.may_email("never-seen")
    assert ledger.history("never-seen") == []
    assert ledger.contacts() == []
    assert ledger.contact("never-seen").events == 0


def test_the_same_event_twice_returns_the_first_result_and_writes_nothing(ledger):
    ledger.add_sink("crm", lambda m: None)
    ev = UnsubscribeClicked(campaign="spring", at=T0)
    first = ledger.apply("c-1", ev)
    counts = ledger.counts()
    assert ledger.apply("c-1", ev) == first
    assert ledger.apply_many([("c-1", ev), ("c-1", ev)]) == [first, first]
    assert ledger.counts() == counts
    assert len(ledger.history("c-1")) == 1


def test_an_event_id_reused_for_another_contact_or_type_is_a_conflict(ledger):
    ledger.apply("c-1", StopMessaging(actor="a", reason="r", event_id="e-1"))
    with pytest.raises(EventIdConflict, match=r"'e-1'.*'c-1'"):
        ledger.apply("c-2", StopMessaging(actor="a", reason="r", event_id="e-1"))
    with pytest.raises(EventIdConflict, match="stop_messaging"):
        ledger.apply("c-1", UnsubscribeClicked(event_id="e-1"))
    assert ledger.status("c-2") is ContactStatus.ACTIVE and ledger.counts()["events"] == 1


def test_an_invalid_transition_writes_nothing(ledger):
    ledger.apply("c-1", UnsubscribeClicked(at=T0))
    before = ledger.counts()
    with pytest.raises(InvalidTransition, match="sticky"):
        ledger.apply("c-1", Resume(actor="rep"))
    with pytest.raises(InvalidTransition):
        ledger.apply("new", Resume(actor="rep"))
    assert ledger.counts() == before
    assert ledger.contacts(status="active") == []


def test_audit_entry_keeps_time_source_actor_and_evidence(ledger):
    v = verdict("do_not_email", score=0.93, text="Please take me off your list.", rules=("en.take_me_off",))
    ledger.apply("c-1", ReplyReceived(v, message_id="<m1@mail>", at=T0))
    ledger.apply("c-1", MarkDoNotEmail(source="phone", actor="ana", note="asked again by phone",
                                       at=T0 + timedelta(hours=1)))
    first, second = ledger.history("c-1")
    assert first.event_type == "reply_received" and first.kind.value == "reply_do_not_email"
    assert (first.occurred_at, first.source, first.actor) == (T0, "reply", None)
    assert first.evidence["intent"] == "do_not_email" and first.evidence["score"] == 0.93
    assert first.evidence["rule_ids"] == ["en.take_me_off"]
    assert first.evidence["excerpt"] == "Please take me off your list."
    assert first.evidence["message_id"] == "<m1@mail>" and first.event_id == "reply:<m1@mail>"
    assert [e.value for e in first.effects] == ["sync", "alert_do_not_email"]
    assert (second.previous, second.status, second.effects) == (ContactStatus.DO_NOT_EMAIL,
                                                                ContactStatus.DO_NOT_EMAIL, ())
    assert (second.source, second.actor, second.reason) == ("phone", "ana", "asked again by phone")
    assert second.to_dict()["recorded_at"] >= first.to_dict()["recorded_at"]


def test_resubscribe_records_the_consent_and_policy_can_forbid_it(open_ledger):
    ledger = open_ledger()
    ledger.apply("c-1", UnsubscribeClicked(at=T0))
    consent = Consent("double_opt_in", "confirm-<z@x>", T0 + timedelta(days=30), text="Yes, subscribe me")
    r = ledger.apply("c-1", Resubscribe(consent, at=T0 + timedelta(days=30)))
    assert r.status is ContactStatus.ACTIVE
    assert ledger.history("c-1")[-1].evidence["consent"]["reference"] == "confirm-<z@x>"
    strict = open_ledger(policy=Policy(allow_resubscribe=False))
    strict.apply("c-2", UnsubscribeClicked(at=T0))
    with pytest.raises(ResubscribeForbidden):
        strict.apply("c-2", Resubscribe(consent))
    assert strict.status("c-2") is ContactStatus.UNSUBSCRIBED


def test_contacts_filter_by_status_and_since(ledger):
    ledger.apply("old", MarkDoNotEmail(source="import", actor="job", at=T0 - timedelta(days=10)))
    ledger.apply("new", MarkDoNotEmail(source="rep", actor="ana", at=T0 + timedelta(days=1)))
    ledger.apply("u", UnsubscribeClicked(at=T0 + timedelta(days=2)))
    ledger.apply("s", StopMessaging(actor="ana", reason="r", at=T0))
    assert [c.contact_id for c in ledger.contacts(status="do_not_email")] == ["old", "new"]
    assert [c.contact_id for c in ledger.contacts(status="do_not_email", since=T0)] == ["new"]
    assert [c.contact_id for c in ledger.contacts(status=["unsubscribed", ContactStatus.DO_NOT_EMAIL],
                                                  since=T0)] == ["new", "u"]
    assert len(ledger.contacts()) == 4 and len(ledger.contacts(limit=2)) == 2
    with pytest.raises(UnknownStatusError, match=r"'dne'.*do_not_email"):
        ledger.contacts(status="dne")
    with pytest.raises(NaiveDatetimeError):
        ledger.contacts(since=T0.replace(tzinfo=None))


def test_since_is_when_the_current_status_began(ledger):
    ledger.apply("c", StopMessaging(actor="a", reason="r", at=T0))
    ledger.apply("c", StopMessaging(actor="b", reason="again", at=T0 + timedelta(days=1)))
    assert ledger.contact("c").since == T0
    ledger.apply("c", MarkDoNotEmail(source="rep", actor="a", at=T0 + timedelta(days=2)))
    assert ledger.contact("c").since == T0 + timedelta(days=2)


def test_apply_many_is_one_transaction(ledger):
    items = [(f"imp-{i}", MarkDoNotEmail(source="import", actor="crm-export", at=T0)) for i in range(50)]
    bad = [*items[:10], ("x", Resume(actor="rep")), *items[10:]]
    with pytest.raises(InvalidTransition) as err:
        ledger.apply_many(bad)
    assert "apply_many item 10" in "".join(getattr(err.value, "__notes__", []))
    assert ledger.counts()["events"] == 0
    results = ledger.apply_many(items)
    assert len(results) == 50 and {r.status for r in results} == {ContactStatus.DO_NOT_EMAIL}
    assert [r.seq for r in results] == sorted(r.seq for r in results)
    assert len(ledger.contacts(status="do_not_email")) == 50


def test_apply_many_sees_its_own_earlier_events(ledger):
    rs = ledger.apply_many([("c", StopMessaging(actor="a", reason="r", at=T0)),
                            ("c", Resume(actor="a", at=T0)),
                            ("c", UnsubscribeClicked(at=T0))])
    assert [(r.previous.value, r.status.value) for r in rs] == [
        ("active", "stopped"), ("stopped", "active"), ("active", "unsubscribed")]
    assert ledger.contact("c").events == 3


def test_bad_input_names_the_value(ledger):
    with pytest.raises(InvalidContactIdError, match="42"):
        ledger.apply(42, UnsubscribeClicked())  # type: ignore[arg-type]
    with pytest.raises(InvalidContactIdError):
        ledger.apply("", UnsubscribeClicked())
    with pytest.raises(InvalidEventError, match="UnsubscribeClicked"):
        ledger.apply("c", "unsubscribe")  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="text_or_verdict"):
        ledger.record_reply("c", b"bytes", message_id="<m@x>")  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match=r"outbox state.*dead"):
        ledger.outbox(state="failed")


def test_record_reply_with_a_verdict(ledger):
    r = ledger.record_reply("c", verdict("out_of_office"), message_id="<ooo@x>", at=T0)
    assert r.status is ContactStatus.PAUSED and r.event_id == "reply:<ooo@x>"


def test_record_reply_classifies_text_lazily_and_only_once_per_message(ledger, monkeypatch):
    calls = []

    def fake_classify(text, **kwargs):
        calls.append(text)
        return verdict("do_not_email", text=text)

    monkeypatch.setattr(replyguard, "classify_reply", fake_classify)
    r1 = ledger.record_reply("c", "Please remove me from your list.", message_id="<m@x>")
    r2 = ledger.record_reply("c", "Please remove me from your list.", message_id="<m@x>")
    assert r1 == r2 and r1.status is ContactStatus.DO_NOT_EMAIL
    assert calls == ["Please remove me from your list."]
    with pytest.raises(EventIdConflict):
        ledger.record_reply("someone-else", "hi", message_id="<m@x>")


def test_record_reply_with_the_packaged_classifier(tmp_path):
    from replyguard.errors import ModelFileError, ModelNotFoundError

    with OptOutLedger(":memory:") as ledger:
        try:
            r = ledger.record_reply("c", "Please take me off your mailing list.\n\nOn Tue, Jan 6, 2026 at 9:14 AM "
                                         "Sam <sam@example.com> wrote:\n> Hi there", message_id="<real@x>")
        except (ModelFileError, ModelNotFoundError) as exc:  # the model is another stage's artefact
            pytest.skip(f"the packaged model does not load here: {exc}")
        assert r.status is ContactStatus.DO_NOT_EMAIL
        ev = ledger.history("c")[0].evidence
        assert ev["intent"] == "do_not_email" and ev["rule_ids"] and "take me off" in ev["excerpt"]


def test_paused_contacts_resume_when_due(ledger):
    ledger.apply("away", OutOfOffice(until=T0 + timedelta(days=3), at=T0))
    ledger.apply("back", OutOfOffice(until=T0 + timedelta(days=1), at=T0))
    ledger.apply("unknown-return", ReplyReceived(verdict("out_of_office"), message_id="<o@x>", at=T0))
    assert ledger.contact("away").paused_until == T0 + timedelta(days=3)
    assert ledger.resume_due(now=T0) == []
    resumed = ledger.resume_due(now=T0 + timedelta(days=2))
    assert [r.contact_id for r in resumed] == ["back"]
    assert ledger.resume_due(now=T0 + timedelta(days=2)) == []  # idempotent
    assert ledger.status("back") is ContactStatus.ACTIVE and ledger.status("away") is ContactStatus.PAUSED
    assert ledger.status("unknown-return") is ContactStatus.PAUSED
    assert ledger.contact("back").paused_until is None


# -- schema: foreign stores, newer versions, migrations ----------------------------------------

def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_is_not_a_ledger_is_refused_and_left_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 100)
    other = tmp_path / "app.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users (name) VALUES ('x')")
    con.commit()
    con.close()
    for path, why in ((text, "not an SQLite database"), (other, "users")):
        before = _digest(path)
        with pytest.raises(NotALedgerError, match=why) as err:
            OptOutLedger(path)
        assert str(path) in str(err.value) and isinstance(err.value, ValueError)
        assert _digest(path) == before
        assert not Path(str(path) + "-wal").exists()
    with pytest.raises(NotALedgerError, match="directory"):
        OptOutLedger(tmp_path)


def test_a_ledger_from_a_newer_replyguard_is_refused_and_left_untouched(open_ledger, ledger_url, backend):
    with open_ledger() as ledger:
        ledger.apply("c", UnsubscribeClicked(at=T0))
        ledger._store_obj.write(lambda cur: cur.execute(
            "UPDATE replyguard_meta SET value = '99' WHERE key = 'schema_version'"))
        snapshot = ledger.counts()
    before = _digest(Path(ledger_url)) if backend == "sqlite" else None
    with pytest.raises(LedgerVersionError, match=r"version 99.*upgrade replyguard"):
        OptOutLedger(ledger_url)
    if backend == "sqlite":
        assert _digest(Path(ledger_url)) == before
    with pytest.raises(LedgerVersionError):
        OptOutLedger(ledger_url, create=False)
    # nothing was touched: the rows are all there
    assert snapshot["events"] == 1


def test_an_older_ledger_is_migrated_in_order_and_keeps_its_data(open_ledger, ledger_url, monkeypatch):
    with open_ledger() as ledger:
        ledger.apply("c", MarkDoNotEmail(source="rep", actor="a", at=T0))
    step = ["CREATE TABLE replyguard_migration_probe (id INTEGER PRIMARY KEY)"]
    monkeypatch.setattr(_sql, "_MIGRATIONS", [*_sql._MIGRATIONS, step])
    with open_ledger() as ledger:
        assert ledger.status("c") is ContactStatus.DO_NOT_EMAIL
        store = ledger._store_obj
        meta = store.read(lambda cur: (cur.execute("SELECT value FROM replyguard_meta WHERE key = 'schema_version'"),
                                       cur.fetchone())[1][0])
        assert meta == str(len(_sql._MIGRATIONS)) == "2"
        store.read(lambda cur: cur.execute("SELECT COUNT(*) FROM replyguard_migration_probe"))
    monkeypatch.setattr(_sql, "_MIGRATIONS", _sql._MIGRATIONS[:1])
    with pytest.raises(LedgerVersionError, match="version 2"):
        OptOutLedger(ledger_url)


def test_opening_with_create_false_never_creates(tmp_path, backend, ledger_url):
    where = ledger_url if backend == "postgresql" else str(tmp_path / "missing.sqlite")
    with pytest.raises(LedgerNotFoundError) as err:
        OptOutLedger(where, create=False)
    assert isinstance(err.value, FileNotFoundError)
    if backend == "sqlite":
        assert not Path(where).exists()


def test_sqlite_ledger_runs_in_wal_mode_with_full_sync(tmp_path):
    path = tmp_path / "l.sqlite"
    with OptOutLedger(path) as ledger:
        con = ledger._store_obj._con
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x52474C44
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_postgres_schema_holding_other_tables_is_refused_and_left_untouched():
    require_pg()
    import psycopg

    from .conftest import PG_URL, RUN_ID

    schema = f"rg_{RUN_ID}_foreign"
    try:
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
            con.execute(f'CREATE TABLE "{schema}".orders (id int)')
        with pytest.raises(NotALedgerError, match="orders"):
            OptOutLedger(pg_url_for(schema))
        with psycopg.connect(PG_URL, autocommit=True) as con:
            tables = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                 [schema]).fetchall()
        assert tables == [("orders",)]
    finally:
        drop_schema(schema)


def test_unknown_url_schemes_are_refused(tmp_path):
    with pytest.raises(UnknownNameError, match=r"mysql.*postgresql"):
        OptOutLedger("mysql://localhost/db")
    with OptOutLedger(f"sqlite:///{tmp_path}/x.sqlite") as ledger:
        ledger.apply("c", UnsubscribeClicked())
    assert (tmp_path / "x.sqlite").exists()


def test_a_ledger_cannot_be_used_after_close_or_across_a_fork(tmp_path):
    import os

    ledger = OptOutLedger(tmp_path / "l.sqlite")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            ledger.status("c")
        except Exception as exc:
            os._exit(0 if "each process" in str(exc) else 1)
        os._exit(2)
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0
    ledger.close()
    with pytest.raises(Exception, match="closed"):
        ledger.status("c")


def test_postgres_urls_keep_the_schema_to_replyguard_and_hide_the_password():
    from replyguard.optout._postgres import split_url

    conninfo, schema, shown = split_url("postgresql://app:s3cret@db.internal:5432/crm?schema=optout&sslmode=require")
    assert schema == "optout" and "schema" not in conninfo and "sslmode=require" in conninfo
    assert "s3cret" not in shown and "***" in shown
    assert split_url("postgres://h/db")[1] == "replyguard"


def test_an_unreachable_server_or_a_missing_driver_is_a_clear_error(monkeypatch):
    import sys

    from replyguard.optout import LedgerConnectionError, MissingDependencyError

    pytest.importorskip("psycopg")
    with pytest.raises(LedgerConnectionError, match="cannot reach") as err:
        OptOutLedger("postgresql://nobody:pw@127.0.0.1:1/none")
    assert "pw@" not in str(err.value) and isinstance(err.value, ConnectionError)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"replyguard\[postgres\]") as err2:
        OptOutLedger("postgresql://127.0.0.1/test")
    assert isinstance(err2.value, ImportError)
