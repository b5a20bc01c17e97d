"""Batch scoring of reply archives: streaming readers, joblib and dask engines, resume.

>>> from replyguard.batch import score_files, iter_scores
>>> sorted(INPUT_FORMATS)
['csv', 'eml', 'jsonl', 'mbox', 'parquet']

``score_files(inputs, output, ...)`` writes verdict rows (JSONL or CSV) and a
rejects file and returns a :class:`ScoreSummary`; ``iter_scores(inputs, ...)``
yields a :class:`ScoredReply` or :class:`Rejected` per record, in input order.
The ``score`` command (:mod:`replyguard.batch.cli`) is a thin shell over them.
"""

from __future__ import annotations

from ._types import (
    BatchError,
    BatchUsageError,
    LedgerUnavailableError,
    Rejected,
    ScoredReply,
    ScoreSummary,
)
from .api import ENGINES, iter_scores, score_files
from .progress import ProgressInfo
from .readers import INPUT_FORMATS, expand_inputs
from .writers import OUTPUT_COLUMNS, OUTPUT_FORMATS, REJECT_COLUMNS, read_parts

__all__ = [
    "ENGINES",
    "INPUT_FORMATS",
    "OUTPUT_COLUMNS",
    "OUTPUT_FORMATS",
    "REJECT_COLUMNS",
    "BatchError",
    "BatchUsageError",
    "LedgerUnavailableError",
    "ProgressInfo",
    "Rejected",
    "ScoreSummary",
    "ScoredReply",
    "expand_inputs",
    "iter_scores",
    "read_parts",
    "score_files",
]
