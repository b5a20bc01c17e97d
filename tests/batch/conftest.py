"""Shared helpers for the batch-scoring tests: fixture paths and a ``score`` runner that
goes through the command's own parser (``add_parser``) and ``run``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from replyguard.batch.cli import add_parser, run

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="replyguard")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return ap


def score(*argv: Any) -> int:
    """Run ``replyguard score ARGV`` in this process; return the exit status."""
    args = parser().parse_args(["score", *map(str, argv)])
    return run(args)


def rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def many_replies(path: Path, n: int) -> Path:
    """A JSONL file of ``n`` replies cycled from the fixture replies, with unique ids."""
    texts = [r["text"] for r in rows(FIXTURES / "replies.jsonl")]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"g{i}", "text": texts[i % len(texts)]}) + "\n")
    return path

