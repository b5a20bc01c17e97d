"""Shared helpers for the benchmark scripts (data, the naive baseline pipeline)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ROOT / "data" / "splits"


def records(name: str):
    from replyguard.corpus import load_records

    return load_records([SPLITS / f"{name}.jsonl"])


def naive_pipeline(seed: int = 0):
    """The baseline the issue names: TF-IDF word 1-2 + char_wb 2-5 grams + LogisticRegression,
    on the raw reply text (no zoning, no rules)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        ),
        LogisticRegression(C=10.0, max_iter=3000, random_state=seed),
    )


def eprint(*a: object) -> None:
    print(*a, file=sys.stderr)
