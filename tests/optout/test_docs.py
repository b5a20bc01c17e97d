"""The documentation runs: module doctests, and docs/optout.md (which goes into the README)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from replyguard.optout import table_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "optout.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MODULES = ["replyguard.optout", "replyguard.optout.machine", "replyguard.optout.ledger",
           "replyguard.optout.sinks", "replyguard.optout.alerts", "replyguard.optout.compliance",
           "replyguard.optout.cli"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.failed == 0


def test_docs_examples_run():
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 20
    assert result.failed == 0


def test_docs_show_the_current_table():
    assert table_markdown() in DOC.read_text(encoding="utf-8")


def test_public_functions_have_doctest_examples():
    import replyguard.optout as optout

    missing = [n for n in ("advance", "may_email", "table_markdown", "OptOutLedger", "WebhookSink",
                           "verify_signature", "parse_alert_kinds", "alert_text", "business_days_between")
               if ">>>" not in (getattr(optout, n).__doc__ or "")]
    assert not missing
