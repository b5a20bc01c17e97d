"""Regression floors for the packaged model on the test split (written separately from the
training data). The published figures are in README.md; these floors sit below them and
catch a model or ruleset change that makes things clearly worse."""

from __future__ import annotations

from replyguard import ReplyClassifier
from replyguard.corpus import load_records
from replyguard.evaluate import evaluate
from tests.conftest import ROOT


def test_packaged_model_keeps_its_test_split_quality():
    recs = load_records([ROOT / "data" / "splits" / "test.jsonl"])
    rep = evaluate(recs, ReplyClassifier.default().classify)
    assert rep["do_not_email"]["recall"] >= 0.96, rep["do_not_email"]
    assert rep["do_not_email"]["precision"] >= 0.82, rep["do_not_email"]
    assert rep["macro_f1"] >= 0.88, rep["macro_f1"]
    assert rep["needs_review_rate"] <= 0.15, rep["needs_review_rate"]
    assert rep["dne_recall_with_review"] >= 0.98, rep["dne_recall_with_review"]
    for lang, m in rep["per_language"].items():
        assert m["dne_recall"] is None or m["dne_recall"] >= 0.90, (lang, m)
