"""The examples of docs/batch.md (pasted into the README) run as tests."""

from __future__ import annotations

import doctest

from tests.conftest import ROOT


def test_batch_docs_examples_run():
    result = doctest.testfile(str(ROOT / "docs" / "batch.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8
    assert result.failed == 0


def test_module_doctests_run():
    import replyguard.batch as batch
    from replyguard.batch import api, cli, progress, readers, writers

    for mod in (batch, api, cli, progress, readers, writers):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
