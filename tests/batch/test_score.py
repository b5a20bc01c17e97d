"""The score command end to end, in this process: formats, columns, order, rejects,
exit codes, progress, summary, the ledger hook and the Python API."""

from __future__ import annotations

import csv
import io
import json
import sys
import types
from typing import ClassVar

import pytest

from replyguard import Verdict
from replyguard.batch import OUTPUT_COLUMNS, Rejected, ScoredReply, iter_scores, score_files
from replyguard.batch.cli import main

from .conftest import FIXTURES, many_replies, rows, score

ALL_INPUTS = [FIXTURES / "replies.jsonl", FIXTURES / "replies.jsonl.gz", FIXTURES / "archive.mbox",
              FIXTURES / "eml", FIXTURES / "broken.jsonl"]


def test_jsonl_rows_have_id_location_and_verdict_fields_in_input_order(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1") == 0
    got = rows(out)
    assert [r["id"] for r in got] == ["r1", "r2", "r3", "r4", "r5", 6, "r7", "r8", "r9", "r10", "r11", "r12"]
    assert all(list(r) == list(OUTPUT_COLUMNS) for r in got)
    assert got[0]["file"] == str(FIXTURES / "replies.jsonl") and got[0]["line"] == 1 and got[0]["index"] == 0
    assert got[3]["line"] == 5  # after the blank line
    stop = got[0]
    assert stop["intent"] == "do_not_email" and stop["do_not_email"] is True and stop["score"] > 0.5
    assert isinstance(stop["evidence"], list) and stop["evidence"]
    assert {type(r["needs_review"]) for r in got} == {bool} and all(r["language"] for r in got)
    assert not (tmp_path / "v.rejects.jsonl").exists()
    summary = capsys.readouterr().out
    assert "read 12 records: 12 scored, 0 rejected" in summary and "replies/s" in summary
    assert "do_not_email" in summary and "needs review" in summary


def test_csv_input_and_csv_output(tmp_path):
    out = tmp_path / "v.csv"
    assert score(FIXTURES / "replies.csv", "--text-column", "body", "-o", out, "-j", "1", "-q") == 0
    with open(out, newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert tuple(got[0]) == OUTPUT_COLUMNS
    assert [r["id"] for r in got] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert [r["line"] for r in got] == ["2", "3", "4", "7", "9", "10"]
    assert got[0]["intent"] == "do_not_email" and got[0]["do_not_email"] == "true"
    assert got[1]["do_not_email"] == "false" and got[1]["needs_review"] in ("true", "false")
    assert got[0]["evidence"] and all(e for e in got[0]["evidence"].split(" "))  # ids joined by spaces


def test_eml_folder_uses_headers_so_auto_replies_are_out_of_office(tmp_path):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "eml", "-o", out, "-j", "1", "-q") == 0
    got = {r["id"]: r for r in rows(out)}
    assert got["<e1@example.com>"]["do_not_email"] is True
    for auto in ("<e2@example.com>", "<e3@example.com>"):
        assert got[auto]["intent"] == "out_of_office" and got[auto]["do_not_email"] is False
    assert any(e in ("Auto-Submitted", "auto-submitted") for e in got["<e2@example.com>"]["evidence"])
    assert all(r["line"] is None and r["index"] == 0 for r in got.values())


def test_mbox_broken_messages_go_to_rejects_and_the_rest_is_scored(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "archive.mbox", "-o", out, "-j", "1") == 1
    got = rows(out)
    rej = rows(tmp_path / "v.rejects.jsonl")
    assert [r["index"] for r in got] == [0, 1, 3, 5] and [r["index"] for r in rej] == [2, 4]
    assert [r["id"] for r in got] == ["<m1@example.com>", "<m2@example.com>", "<m4@example.com>", "<m6@example.com>"]
    assert got[0]["do_not_email"] is True and got[3]["do_not_email"] is True  # "STOP"
    assert got[2]["intent"] == "out_of_office"
    assert rej[0]["line"] == 24 and "no header lines" in rej[0]["reason"]
    assert rej[1]["id"] == "<m5@example.com>" and "multipart" in rej[1]["reason"]
    assert set(rej[0]) == {"file", "line", "index", "id", "reason", "excerpt"}
    assert "6 records: 4 scored, 2 rejected" in capsys.readouterr().out


def test_parquet_input(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "r.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["STOP", "Tuesday at 10 works"]}), p)
    assert score(p, "-o", tmp_path / "v.jsonl", "-j", "1", "-q") == 0
    got = rows(tmp_path / "v.jsonl")
    assert [(r["id"], r["line"], r["index"]) for r in got] == [("p1", None, 0), ("p2", None, 1)]
    assert got[0]["do_not_email"] is True


def test_parquet_without_pyarrow_is_a_usage_error(tmp_path, monkeypatch, capsys):
    p = tmp_path / "r.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert score(p, "-o", tmp_path / "v.jsonl", "-j", "1") == 2
    assert "replyguard[parquet]" in capsys.readouterr().err


def test_a_file_of_broken_lines_is_all_rejects_and_the_accounting_is_exact(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "broken.jsonl", "-o", out, "-j", "1", "--json") == 1
    s = json.loads(capsys.readouterr().out)
    rej = rows(tmp_path / "v.rejects.jsonl")
    assert s["read"] == 11 and s["scored"] == 0 and s["rejected"] == 11 == len(rej)
    assert s["read"] == s["scored"] + s["rejected"] + s["skipped"]
    assert out.read_text() == ""
    assert [r["line"] for r in rej] == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12]
    assert all(r["file"] == str(FIXTURES / "broken.jsonl") and r["reason"] for r in rej)


def test_mixed_inputs_accounting_and_custom_rejects_path(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    rejects = tmp_path / "bad" / "rejects.jsonl"
    assert score(*ALL_INPUTS, "-o", out, "--rejects", rejects, "-j", "1", "--json") == 1
    s = json.loads(capsys.readouterr().out)
    assert s["read"] == 12 + 12 + 6 + 5 + 11
    assert s["scored"] == len(rows(out)) and s["rejected"] == len(rows(rejects)) == 2 + 11
    assert s["read"] == s["scored"] + s["rejected"]
    assert sum(s["intents"].values()) == s["scored"]


def test_max_rejects_fails_fast(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "broken.jsonl", FIXTURES / "replies.jsonl", "-o", out, "-j", "1",
                 "--max-rejects", "2", "--json") == 1
    s = json.loads(capsys.readouterr().out)
    assert s["stopped_early"] is True and s["rejected"] == 3 and s["scored"] == 0 and s["read"] == 3
    assert len(rows(tmp_path / "v.rejects.jsonl")) == 3


def test_max_rejects_not_reached_still_exits_1_with_rejects(tmp_path):
    assert score(FIXTURES / "archive.mbox", "-o", tmp_path / "v.jsonl", "-j", "1", "-q", "--max-rejects", "5") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["nope.jsonl"], "does not exist"),
    (["nope/*.jsonl"], "matches no file"),
    ([str(FIXTURES / "replies.csv")], "no column 'text'"),
    ([str(FIXTURES / "replies.jsonl"), "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
    ([str(FIXTURES / "replies.jsonl"), "--resume", "--overwrite"], "contradict"),
    ([str(FIXTURES / "replies.jsonl"), "--format", "csv", "--full"], "full verdict"),
    ([str(FIXTURES / "replies.jsonl"), "--model", "/nonexistent/model"], "/nonexistent/model"),
])
def test_bad_usage_exits_2_with_a_message_naming_the_fix(tmp_path, capsys, argv, message):
    args = [*argv, "-o", str(tmp_path / "v.jsonl"), "-j", "1"]
    if "--model" in argv:
        assert main(["score", *args]) == 2
    else:
        assert score(*args) == 2
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys):
    assert main(["score", str(FIXTURES / "replies.jsonl")]) == 2  # no -o
    assert main(["score", str(FIXTURES / "replies.jsonl"), "-o", "x.jsonl", "--jobs", "0"]) == 2
    assert main(["score", str(FIXTURES / "replies.jsonl"), "-o", "x.jsonl", "--engine", "spark"]) == 2
    capsys.readouterr()


def test_existing_output_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1", "-q") == 0
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1", "-q") == 2
    assert "--resume" in capsys.readouterr().err
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1", "-q", "--overwrite") == 0
    assert len(rows(out)) == 12


def test_output_suffix_decides_the_format_unless_given(tmp_path, capsys):
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.txt", "-j", "1") == 2
    assert "--format" in capsys.readouterr().err
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.txt", "--format", "jsonl", "-j", "1", "-q") == 0
    assert len(rows(tmp_path / "v.txt")) == 12


def test_full_adds_the_whole_verdict(tmp_path):
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.jsonl", "-j", "1", "-q", "--full") == 0
    r = rows(tmp_path / "v.jsonl")[0]
    assert r["verdict"]["intent"] == r["intent"] and set(r["verdict"]["scores"]) >= {"do_not_email", "other"}


def test_jobs_2_output_equals_jobs_1(tmp_path):
    inputs = [*ALL_INPUTS, FIXTURES / "replies.csv", FIXTURES / "broken.csv"]
    for j in ("1", "2"):
        assert score(*inputs, "--text-column", "body", "-o", tmp_path / f"j{j}.jsonl", "-j", j,
                     "--batch-size", "4", "-q") == 1
    assert (tmp_path / "j1.jsonl").read_text() == (tmp_path / "j2.jsonl").read_text()
    assert (tmp_path / "j1.rejects.jsonl").read_text() == (tmp_path / "j2.rejects.jsonl").read_text()
    assert len(rows(tmp_path / "j2.jsonl")) > 20


def test_progress_log_lines_when_not_a_terminal_and_quiet_prints_nothing(tmp_path, capsys):
    src = many_replies(tmp_path / "in.jsonl", 300)
    assert score(src, "-o", tmp_path / "a.jsonl", "-j", "1", "--batch-size", "20", "--log-interval", "0.001") == 0
    cap = capsys.readouterr()
    logs = [line for line in cap.err.splitlines() if line.startswith("replyguard score:")]
    assert logs and "replies/s" in logs[-1] and "ETA" in logs[-1] and "% of input" in logs[-1]
    assert score(src, "-o", tmp_path / "b.jsonl", "-j", "1", "-q") == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_progress_bar_on_a_terminal():
    from replyguard.batch.progress import ProgressInfo, make_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    s = Tty()
    p = make_progress("auto", stream=s)
    p.update(ProgressInfo(done=500, scored=499, rejected=1, skipped=0, fraction=0.25, seconds=2.0), force=True)
    p.close(ProgressInfo(done=2000, scored=1999, rejected=1, skipped=0, fraction=1.0, seconds=8.0))
    text = s.getvalue()
    assert text.startswith("\rscoring  25%|") and "250/s" in text and "ETA 00:06" in text and "rejects 1" in text
    assert "100%" in text and text.endswith("\n")


# -- the ledger hook -------------------------------------------------------------------------------

class FakeLedger:
    instances: ClassVar[list[FakeLedger]] = []

    def __init__(self, path_or_url: str) -> None:
        self.path = path_or_url
        self.calls: list[tuple] = []
        self.closed = False
        FakeLedger.instances.append(self)

    def record_reply(self, contact_id: str, verdict: Verdict, *, message_id: str) -> None:
        self.calls.append((contact_id, verdict, message_id))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_optout(monkeypatch):
    mod = types.ModuleType("replyguard.optout")
    mod.OptOutLedger = FakeLedger  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "replyguard.optout", mod)
    FakeLedger.instances.clear()
    return FakeLedger


def test_ledger_gets_each_verdict_with_contact_and_message_id(tmp_path, fake_optout, capsys):
    out = tmp_path / "v.jsonl"
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1", "--ledger", tmp_path / "ledger.db",
                 "--contact-field", "contact", "--json") == 0
    (led,) = fake_optout.instances
    assert led.path == str(tmp_path / "ledger.db") and led.closed
    contacts = [c for c, _, _ in led.calls]
    assert contacts[0] == "ana@example.com" and "" not in contacts and len(led.calls) == 10
    assert all(isinstance(v, Verdict) for _, v, _ in led.calls)
    assert led.calls[0][1].do_not_email is True and led.calls[0][2] == "r1"
    s = json.loads(capsys.readouterr().out)
    assert s["ledger_recorded"] == 10 and s["ledger_no_contact"] == 2  # r10 empty, r11 missing
    assert len(rows(out)) == 12  # the output is the same with or without a ledger


def test_ledger_with_emails_uses_the_from_address_and_jobs_2(tmp_path, fake_optout):
    assert score(FIXTURES / "eml", FIXTURES / "archive.mbox", "-o", tmp_path / "v.jsonl", "-j", "2",
                 "--batch-size", "2", "--ledger", "sqlite:///x.db", "-q") == 1
    (led,) = fake_optout.instances
    assert [c for c, _, _ in led.calls][:2] == ["gus@example.com", "hal@example.com"]
    assert led.calls[0][2] == "<e1@example.com>"
    assert len(led.calls) == 5 + 4


def test_ledger_needs_a_contact_field_for_tabular_inputs(tmp_path, fake_optout, capsys):
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.jsonl", "-j", "1", "--ledger", "x.db") == 2
    assert "--contact-field" in capsys.readouterr().err
    assert not fake_optout.instances  # nothing opened before the usage error


def test_ledger_unavailable_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "replyguard.optout", None)
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.jsonl", "-j", "1", "--ledger", "x.db",
                 "--contact-field", "contact") == 2
    assert "opt-out ledger is not available" in capsys.readouterr().err
    assert not (tmp_path / "v.jsonl").exists()


# -- the Python API -------------------------------------------------------------------------------

def test_iter_scores_yields_records_and_rejects_in_input_order(tmp_path):
    got = list(iter_scores([FIXTURES / "broken.csv"], text_column="body"))
    assert [type(g) for g in got] == [ScoredReply, Rejected, Rejected, ScoredReply]
    assert got[0].verdict.intent.value in {"other", "interested", "not_interested", "do_not_email",
                                           "out_of_office", "wrong_contact"}
    assert got[1].reason.startswith("malformed CSV row") and got[1].to_dict()["line"] == 3
    score_files([FIXTURES / "broken.csv"], tmp_path / "v.jsonl", text_column="body")
    assert [g.to_dict() for g in got if isinstance(g, ScoredReply)] == rows(tmp_path / "v.jsonl")


def test_score_files_summary_and_progress_callback(tmp_path):
    seen = []
    s = score_files(FIXTURES / "replies.jsonl", tmp_path / "v.jsonl", progress=seen.append,
                    progress_interval=0.0)
    assert (s.read, s.scored, s.rejected, s.skipped, s.exit_status) == (12, 12, 0, 0, 0)
    assert s.to_dict()["replies_per_second"] > 0 and s.model_version
    assert seen and seen[-1].done == 12 and seen[-1].fraction == 1.0


def test_ledger_refusals_are_counted_not_fatal(tmp_path, fake_optout, capsys):
    class Picky(FakeLedger):
        def record_reply(self, contact_id, verdict, *, message_id):
            if contact_id.startswith("b"):
                raise ValueError(f"contact id {contact_id!r} refused")
            super().record_reply(contact_id, verdict, message_id=message_id)

    fake_optout.instances.clear()
    sys.modules["replyguard.optout"].OptOutLedger = Picky  # type: ignore[attr-defined]
    assert score(FIXTURES / "replies.jsonl", "-o", tmp_path / "v.jsonl", "-j", "1", "--ledger", "x.db",
                 "--contact-field", "contact", "--json") == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    assert (s["ledger_recorded"], s["ledger_failed"], s["ledger_no_contact"]) == (9, 1, 2)
    assert "replies.jsonl:2: not recorded in the ledger: contact id 'ben@example.com' refused" in cap.err


def test_the_real_opt_out_ledger_records_the_batch_once(tmp_path, capsys):
    optout = pytest.importorskip("replyguard.optout")
    if not hasattr(optout, "OptOutLedger"):
        pytest.skip("replyguard.optout has no OptOutLedger yet")
    db = tmp_path / "ledger.sqlite"
    args = [FIXTURES / "replies.jsonl", "-o", tmp_path / "v.jsonl", "-j", "1", "--ledger", db,
            "--contact-field", "contact", "--json"]
    assert score(*args) == 0
    assert score(*args[:-1], "--overwrite", "--json") == 0  # the same message ids again: applied once
    out = capsys.readouterr().out
    assert '"ledger_failed": 0' in out
    with optout.OptOutLedger(db) as ledger:
        assert ledger.may_email("ana@example.com") is False  # "STOP"
        assert ledger.may_email("ben@example.com") is True
        assert len(ledger.history("ana@example.com")) == 1


def test_a_named_id_or_contact_column_that_is_missing_is_a_usage_error(tmp_path, capsys):
    assert score(FIXTURES / "replies.csv", "--text-column", "body", "--id-column", "reply_id",
                 "-o", tmp_path / "v.jsonl", "-j", "1") == 2
    assert "no column 'reply_id'" in capsys.readouterr().err
    assert score(FIXTURES / "replies.csv", "--text-column", "body", "--contact-field", "email",
                 "-o", tmp_path / "v.jsonl", "-j", "1") == 2
    assert "pass --contact-field" in capsys.readouterr().err


def test_a_rerun_over_a_glob_does_not_read_its_own_output(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_bytes((FIXTURES / "replies.jsonl").read_bytes())
    (tmp_path / "b.jsonl").write_bytes((FIXTURES / "broken.jsonl").read_bytes())
    pattern = str(tmp_path / "*.jsonl")
    assert score(pattern, "-o", tmp_path / "out.jsonl", "-j", "1", "-q") == 1
    assert score(pattern, "-o", tmp_path / "out.jsonl", "-j", "1", "--resume", "--json") == 1
    s = json.loads(capsys.readouterr().out)
    assert (s["read"], s["skipped"], s["scored"], s["rejected"]) == (23, 23, 0, 0)


def test_a_reply_whose_classification_raises_is_a_reject_and_its_batch_is_scored(tmp_path, monkeypatch):
    # a batch's texts are classified together; one that raises must not take the others with it
    import replyguard.features as features

    real = features.extract

    def extract(text):
        if text == "boom":
            raise RuntimeError("cannot read this one")
        return real(text)

    monkeypatch.setattr(features, "extract", extract)
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                           for i, t in (("a", "STOP"), ("b", "boom"), ("c", "Sounds good, Tuesday at 10?"))))
    got = list(iter_scores(src, jobs=1))
    assert [type(r).__name__ for r in got] == ["ScoredReply", "Rejected", "ScoredReply"]
    assert got[1].reason == "classification failed: RuntimeError: cannot read this one"
    assert [got[0].verdict.intent.value, got[2].verdict.intent.value] == ["do_not_email", "interested"]
