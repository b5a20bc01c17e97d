"""The documentation runs: module doctests and docs/unsubscribe.md (which goes into the README)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "unsubscribe.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MODULES = ["replyguard.unsubscribe", "replyguard.unsubscribe._tokens", "replyguard.unsubscribe._headers",
           "replyguard.unsubscribe._web", "replyguard.unsubscribe._mailto", "replyguard.unsubscribe_cli"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.attempted > 0 and result.failed == 0


def test_docs_examples_run():
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 5
    assert result.failed == 0
