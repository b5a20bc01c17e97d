"""The ``contacts``, ``outbox`` and ``compliance`` commands, through a parser built here."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import timedelta

import pytest

from replyguard.optout import (
    DEFAULT_LEDGER,
    OptOutLedger,
    PermanentDeliveryError,
    UnsubscribeClicked,
)
from replyguard.optout.cli import COMMANDS, add_parsers, run

from .conftest import T0, verdict


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    ap = argparse.ArgumentParser(prog="replyguard")
    add_parsers(ap.add_subparsers(dest="command", required=True))
    try:
        args = ap.parse_args(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    else:
        code = run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_three_groups_with_every_action_take_ledger(capsys):
    assert COMMANDS == ("contacts", "outbox", "compliance")
    ap = argparse.ArgumentParser(prog="replyguard")
    add_parsers(ap.add_subparsers(dest="command"))
    for argv in (["contacts", "list"], ["contacts", "show", "x"], ["contacts", "stop", "x", "--by", "a", "--reason", "r"],
                 ["contacts", "mark-dne", "x", "--source", "phone", "--by", "a"], ["outbox", "list"],
                 ["outbox", "retry"], ["compliance", "report"]):
        assert ap.parse_args(argv).ledger == DEFAULT_LEDGER
        assert ap.parse_args([*argv, "--ledger", "postgresql://h/db"]).ledger == "postgresql://h/db"


def test_stop_and_mark_dne_then_list_and_show(capsys, ledger_url):
    code, out, _ = cli(capsys, "contacts", "stop", "c-1", "--by", "ana", "--reason", "asked on a call",
                       "--ledger", ledger_url)
    assert code == 0 and "c-1: active -> stopped" in out
    code, out, _ = cli(capsys, "contacts", "mark-dne", "c-2", "--source", "phone", "--by", "bob",
                       "--note", "called the office", "--event-id", "call-77", "--ledger", ledger_url)
    assert code == 0 and "c-2: active -> do_not_email (event call-77" in out
    code, out, _ = cli(capsys, "contacts", "mark-dne", "c-2", "--source", "phone", "--by", "bob",
                       "--event-id", "call-77", "--ledger", ledger_url)
    assert code == 0 and "do_not_email (unchanged)" not in out and "call-77" in out  # same event: same answer
    code, out, _ = cli(capsys, "contacts", "list", "--status", "do_not_email", "--ledger", ledger_url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["contact_id"], r["status"], r["may_email"]) for r in rows] == [
        ("c-2", "do_not_email", "false")]
    code, out, _ = cli(capsys, "contacts", "list", "--status", "stopped,do_not_email", "--format", "jsonl",
                       "--ledger", ledger_url)
    assert sorted(json.loads(line)["contact_id"] for line in out.splitlines()) == ["c-1", "c-2"]
    code, out, _ = cli(capsys, "contacts", "show", "c-2", "--ledger", ledger_url)
    assert code == 0 and "DO NOT EMAIL" in out and "via phone by bob" in out and "called the office" in out
    code, out, _ = cli(capsys, "contacts", "show", "c-2", "--format", "json", "--ledger", ledger_url)
    shown = json.loads(out)
    assert shown["contact"]["status"] == "do_not_email" and shown["history"][0]["event_id"] == "call-77"
    code, out, _ = cli(capsys, "contacts", "show", "nobody", "--ledger", ledger_url)
    assert code == 0 and "active" in out and "never seen" in out


def test_list_since_a_date_and_show_a_reply_with_its_evidence(capsys, tmp_path):
    path = str(tmp_path / "l.sqlite")
    with OptOutLedger(path) as ledger:
        from replyguard.optout import ReplyReceived

        ledger.apply("old", UnsubscribeClicked(at=T0 - timedelta(days=30)))
        v = verdict("do_not_email", text="Take me off your list please", rules=("en.take_me_off",))
        ledger.apply("new", ReplyReceived(v, message_id="<m@x>", at=T0))
    code, out, _ = cli(capsys, "contacts", "list", "--since", "2026-01-01", "--ledger", path)
    assert code == 0 and [r["contact_id"] for r in csv.DictReader(io.StringIO(out))] == ["new"]
    code, out, _ = cli(capsys, "contacts", "list", "--since", "2026-01-01T00:00:00+02:00", "--ledger", path)
    assert code == 0 and "new" in out
    code, out, _ = cli(capsys, "contacts", "show", "new", "--ledger", path)
    assert "intent=do_not_email" in out and "en.take_me_off" in out and "Take me off" in out


def test_default_ledger_is_a_file_in_the_working_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "contacts", "list")
    assert code == 2 and DEFAULT_LEDGER in err and not (tmp_path / DEFAULT_LEDGER).exists()
    assert cli(capsys, "contacts", "stop", "c", "--by", "a", "--reason", "r")[0] == 0
    assert (tmp_path / DEFAULT_LEDGER).exists()
    assert cli(capsys, "contacts", "list")[0] == 0


@pytest.mark.parametrize("argv", [
    ["contacts", "list", "--status", "dne"],
    ["contacts", "list", "--since", "2026-01-01T10:00:00"],
    ["contacts", "list", "--since", "yesterday"],
    ["contacts", "mark-dne", "c", "--source", "fax", "--by", "a"],
    ["contacts", "stop", "c", "--by", "a"],
    ["contacts"],
    ["outbox", "list", "--state", "lost"],
])
def test_bad_input_exits_2_with_a_message(capsys, tmp_path, argv):
    path = str(tmp_path / "l.sqlite")
    OptOutLedger(path).close()
    code, _, err = cli(capsys, *argv, "--ledger", path) if len(argv) > 1 else cli(capsys, *argv)
    assert code == 2 and err


def test_bad_status_names_the_allowed_ones(capsys, tmp_path):
    path = str(tmp_path / "l.sqlite")
    OptOutLedger(path).close()
    code, _, err = cli(capsys, "contacts", "list", "--status", "dne", "--ledger", path)
    assert code == 2 and "'dne'" in err and "do_not_email" in err


def test_a_file_that_is_not_a_ledger_exits_2(capsys, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n" * 50)
    code, _, err = cli(capsys, "contacts", "stop", "c", "--by", "a", "--reason", "r", "--ledger", str(bad))
    assert code == 2 and "not a replyguard opt-out ledger" in err
    assert bad.read_text() == "hello\n" * 50


def test_outbox_list_and_retry(capsys, tmp_path):
    path = str(tmp_path / "l.sqlite")
    with OptOutLedger(path) as ledger:
        def reject(message):
            raise PermanentDeliveryError("HTTP 400 from the CRM")

        ledger.add_sink("crm", reject)
        ledger.apply("c-1", UnsubscribeClicked(at=T0))
        ledger.apply("c-2", UnsubscribeClicked(at=T0))
        ledger.deliver()
    code, out, _ = cli(capsys, "outbox", "list", "--ledger", path)
    assert code == 0 and out.count(" dead ") == 2 and "HTTP 400 from the CRM" in out
    code, out, _ = cli(capsys, "outbox", "list", "--state", "dead", "--format", "jsonl", "--ledger", path)
    items = [json.loads(line) for line in out.splitlines()]
    assert [i["state"] for i in items] == ["dead", "dead"] and items[0]["status"] == "unsubscribed"
    code, out, _ = cli(capsys, "outbox", "retry", str(items[0]["id"]), "--ledger", path)
    assert code == 0 and "requeued 1" in out
    code, out, err = cli(capsys, "outbox", "retry", str(items[0]["id"]), "--ledger", path)
    assert code == 1 and "not dead letters" in err  # already back in line
    code, out, _ = cli(capsys, "outbox", "retry", "--sink", "crm", "--ledger", path)
    assert code == 0 and "requeued 1" in out
    code, out, _ = cli(capsys, "outbox", "list", "--state", "all", "--ledger", path)
    assert out.count(" pending ") == 2


def test_compliance_report(capsys, tmp_path):
    path = str(tmp_path / "l.sqlite")
    with OptOutLedger(path, clock=lambda: T0) as ledger:
        ledger.add_sink("crm", lambda m: None)
        ledger.add_sink("esp", lambda m: None)
        ledger.apply("late", UnsubscribeClicked(at=T0))
        ledger.apply("fine", UnsubscribeClicked(at=T0))
        ledger.deliver(sinks=["crm"])
    now = (T0 + timedelta(days=20)).isoformat()
    code, out, _ = cli(capsys, "compliance", "report", "--now", now, "--ledger", path)
    assert code == 0 and "PAST DEADLINE" in out and "missing: esp" in out and "2 not confirmed" in out
    code, out, _ = cli(capsys, "compliance", "report", "--now", now, "--fail-on", "deadline", "--ledger", path)
    assert code == 1
    code, out, _ = cli(capsys, "compliance", "report", "--now", (T0 + timedelta(days=1)).isoformat(),
                       "--fail-on", "overdue", "--ledger", path)
    assert code == 0 and "0 not confirmed" in out
    code, out, _ = cli(capsys, "compliance", "report", "--now", now, "--format", "json", "--all", "--ledger", path)
    rep = json.loads(out)
    assert rep["past_deadline"] == 2 and len(rep["records"]) == 2 and rep["deadline_business_days"] == 10
    code, out, _ = cli(capsys, "compliance", "report", "--now", now, "--format", "csv", "--ledger", path)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["contact_id"] for r in rows} == {"late", "fine"} and rows[0]["missing_sinks"] == "esp"


def test_commands_on_postgresql(capsys, backend, ledger_url):
    assert cli(capsys, "contacts", "mark-dne", "p-1", "--source", "import", "--by", "job", "--ledger", ledger_url)[0] == 0
    code, out, _ = cli(capsys, "contacts", "list", "--format", "jsonl", "--ledger", ledger_url)
    assert code == 0 and json.loads(out)["status"] == "do_not_email"
    assert cli(capsys, "compliance", "report", "--ledger", ledger_url)[0] == 0
