from __future__ import annotations

import json

import numpy as np
import pytest

from replyguard.cli import main
from replyguard.corpus import load_records


def test_classify_prints_verdict_with_evidence(capsys):
    assert main(["classify", "Please take me off your list."]) == 0
    out = capsys.readouterr().out
    assert "do_not_email" in out and "evidence:" in out and "rule" in out


def test_classify_json(capsys):
    assert main(["classify", "--json", "Sounds good, Tuesday at 10 works."]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["intent"] == "interested" and d["do_not_email"] is False


def test_classify_email_file(tmp_path, capsys):
    p = tmp_path / "m.eml"
    p.write_bytes(b"From: a@example.com\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nI am away until May.")
    assert main(["classify", "--email", "--file", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intent"] == "out_of_office"


def test_bad_usage_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["classify", "--model"]) == 2
    assert main(["classify", "x", "--model", "/nonexistent/model"]) == 2
    assert "/nonexistent/model" in capsys.readouterr().err


def test_evaluate_json_report_has_the_published_figures(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    rows = [{"text": "Please remove me from your list", "intent": "do_not_email", "lang": "en", "tags": ["short"]},
            {"text": "No thanks, we're all set", "intent": "not_interested", "lang": "en", "tags": ["hard_negative"]},
            {"text": "Tuesday at 3 works", "intent": "interested", "lang": "en", "tags": ["short"]}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["evaluate", str(data), "--json", "--report-dir", str(tmp_path / "rep")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 3
    assert {"per_intent", "do_not_email", "confusion", "per_language", "per_tag", "needs_review_rate",
            "hard_negatives", "errors"} <= set(rep)
    assert (tmp_path / "rep" / "report.json").is_file()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "rep" / "report.png").stat().st_size > 1000


def test_evaluate_bad_data_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hi", "intent": "maybe", "lang": "en", "tags": []}\n')
    assert main(["evaluate", str(data)]) == 2
    assert "d.jsonl:1" in capsys.readouterr().err


def test_train_is_reproducible_and_loads(tmp_path, capsys):
    from replyguard import ReplyClassifier
    from tests.conftest import ROOT

    recs = load_records([ROOT / "data" / "splits" / "train.jsonl"])
    small = tmp_path / "small.jsonl"
    # a fixed, small, all-intent sample keeps this test fast
    by_intent: dict[str, list] = {}
    for r in recs:
        by_intent.setdefault(r.intent, []).append(r)
    with open(small, "w", encoding="utf-8") as fh:
        for rs in by_intent.values():
            for r in rs[:60]:
                fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    args = ["train", str(small), "--C", "4", "--seed", "0"]
    assert main([*args, "-o", str(tmp_path / "m1")]) == 0
    assert main([*args, "-o", str(tmp_path / "m2")]) == 0
    w1 = np.load(tmp_path / "m1" / "weights.npz")
    w2 = np.load(tmp_path / "m2" / "weights.npz")
    assert np.array_equal(w1["W"], w2["W"]) and np.array_equal(w1["b"], w2["b"])
    assert (tmp_path / "m1" / "features.json").read_bytes() == (tmp_path / "m2" / "features.json").read_bytes()
    clf = ReplyClassifier.load(tmp_path / "m1")
    assert clf.classify("Please unsubscribe me").intent.value in {i for i in clf.model.card["intents"]}
    # by default one threshold for every reply, rule hit or not
    t = clf.model.card["thresholds"]
    assert t["do_not_email"] == t["do_not_email_without_rule"]
    assert clf.model.card["threshold_policy"].startswith("one do_not_email threshold")


def test_score_and_ledger_commands_are_wired(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "STOP"}\n{"id": 2, "text": "Sounds good"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["score", str(inp), "-o", str(out), "--quiet", "--jobs", "1"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["do_not_email"] for r in rows] == [True, False]
    ledger = tmp_path / "l.sqlite"
    assert main(["contacts", "stop", "c1", "--by", "sam", "--reason", "asked on the phone", "--ledger", str(ledger)]) == 0
    assert main(["contacts", "list", "--status", "stopped", "--format", "jsonl", "--ledger", str(ledger)]) == 0
    assert "c1" in capsys.readouterr().out
