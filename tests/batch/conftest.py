"""Shared helpers for the batch-scoring tests: fixture paths and a ``score`` runner that
goes through the command's own parser (``add_parser``) and ``run``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from replyguard.batch.cli import add_parser, run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Development only: a model directory to use instead of the packaged one (e.g. while it is
# being retrained). Unset in CI: the tests run on the packaged model.
MODEL_ARGS = ["--model", os.environ["REPLYGUARD_TEST_MODEL"]] if os.environ.get("REPLYGUARD_TEST_MODEL") else []


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="replyguard")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return ap


def score(*argv: Any) -> int:
    """Run ``replyguard score ARGV`` in this process; return the exit status."""
    args = parser().parse_args(["score", *map(str, argv), *MODEL_ARGS])
    return run(args)


def rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def model_path() -> str | None:
    return MODEL_ARGS[1] if MODEL_ARGS else None


def many_replies(path: Path, n: int) -> Path:
    """A JSONL file of ``n`` replies cycled from the fixture replies, with unique ids."""
    texts = [r["text"] for r in rows(FIXTURES / "replies.jsonl")]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"g{i}", "text": texts[i % len(texts)]}) + "\n")
    return path


@pytest.fixture(scope="session", autouse=True)
def _dev_model_override():
    """With REPLYGUARD_TEST_MODEL set, in-process default-model calls use that model too."""
    if not MODEL_ARGS:
        yield
        return
    from replyguard import ReplyClassifier, classify

    saved = classify._default
    classify._default = ReplyClassifier.load(MODEL_ARGS[1])
    yield
    classify._default = saved
