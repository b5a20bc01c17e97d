"""Exceptions raised by replyguard.

Every class derives from :class:`ReplyGuardError` and from the builtin that a
caller would naturally catch (``ValueError``, ``FileNotFoundError``, ...), in
the manner of scikit-learn's ``NotFittedError``.
"""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "ModelFileError",
    "ModelNotFoundError",
    "PatternError",
    "ReplyGuardError",
]


class ReplyGuardError(Exception):
    """Base class of every error replyguard raises on purpose."""


class ModelNotFoundError(ReplyGuardError, FileNotFoundError):
    """A model directory or one of its files does not exist."""


class ModelFileError(ReplyGuardError, ValueError):
    """A model file exists but is corrupt, tampered with or of an unknown format."""


class PatternError(ReplyGuardError, ValueError):
    """A rule pattern file holds an invalid pattern."""


class CorpusError(ReplyGuardError, ValueError):
    """A labelled data file holds a record that cannot be used."""
