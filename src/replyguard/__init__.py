"""replyguard: find opt-out requests in email replies and keep pipelines honest.

>>> from replyguard import classify_reply
>>> classify_reply("Please unsubscribe me.").intent.value
'do_not_email'
"""

from __future__ import annotations

from .classify import ReplyClassifier, classify_email, classify_replies, classify_reply
from .errors import (
    CorpusError,
    ModelFileError,
    ModelNotFoundError,
    PatternError,
    ReplyGuardError,
)
from .extract import Extraction, extract
from .verdict import Evidence, Intent, Verdict

__version__ = "0.1.0"

__all__ = [
    "CorpusError",
    "Evidence",
    "Extraction",
    "Intent",
    "ModelFileError",
    "ModelNotFoundError",
    "PatternError",
    "ReplyClassifier",
    "ReplyGuardError",
    "Verdict",
    "__version__",
    "classify_email",
    "classify_replies",
    "classify_reply",
    "extract",
]
