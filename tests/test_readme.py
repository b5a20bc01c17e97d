"""The README's examples run as tests (every ``>>>`` line in README.md)."""

from __future__ import annotations

import doctest

from tests.conftest import ROOT


def test_readme_examples_run():
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5
    assert result.failed == 0
