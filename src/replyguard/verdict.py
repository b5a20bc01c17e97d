"""Result types: :class:`Intent`, :class:`Evidence` and :class:`Verdict`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["INTENTS", "Evidence", "Intent", "Verdict"]


class Intent(StrEnum):
    """The intent of a reply. A ``str`` enum: ``Intent.DO_NOT_EMAIL == "do_not_email"``."""

    DO_NOT_EMAIL = "do_not_email"
    NOT_INTERESTED = "not_interested"
    OUT_OF_OFFICE = "out_of_office"
    WRONG_CONTACT = "wrong_contact"
    INTERESTED = "interested"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


#: The six intents in the fixed order used by the model's weight columns.
INTENTS: tuple[Intent, ...] = tuple(Intent)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason behind a verdict.

    Attributes
    ----------
    source
        ``"rule"`` (a pattern matched), ``"veto"`` (a negation or other-sense
        pattern cancelled an opt-out rule), ``"model"`` (an n-gram that pushed
        the linear model), ``"header"`` (an email header) or ``"zoning"``.
    id
        The rule id, the feature name or the header name.
    start, end
        Character offsets into the text given to the classifier (for HTML and
        for ``classify_email``: into the decoded body), or ``-1`` when the
        evidence has no place in the text (headers).
    text
        The matched text.
    weight
        The contribution to the do-not-email decision (rules and model) or 1.0.
    """

    source: str
    id: str
    start: int
    end: int
    text: str
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "weight": round(float(self.weight), 4),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classifier's decision on one reply.

    ``flags`` names what the caller should know about how the text was read:
    ``"no_reply_found"`` (nothing of the contact's own above or below the
    quoted history: the thread was not classified as if it were the reply),
    ``"truncated"`` (input longer than the length cap), ``"html"``,
    ``"quote_removed"``, ``"auto_submitted"`` (from headers), ``"empty"``,
    ``"no_known_words"`` (no word of the reply is known to the model, e.g. a language
    it was not trained on: intent ``other``, ``needs_review`` set).
    """

    intent: Intent
    do_not_email: bool
    score: float
    scores: dict[str, float]
    needs_review: bool
    evidence: tuple[Evidence, ...]
    reply_text: str
    language: str
    model_version: str
    ruleset_version: str
    threshold: float = 0.5
    flags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every field."""
        return {
            "intent": self.intent.value,
            "do_not_email": self.do_not_email,
            "score": round(float(self.score), 6),
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "needs_review": self.needs_review,
            "threshold": self.threshold,
            "evidence": [e.to_dict() for e in self.evidence],
            "reply_text": self.reply_text,
            "language": self.language,
            "model_version": self.model_version,
            "ruleset_version": self.ruleset_version,
            "flags": list(self.flags),
        }
