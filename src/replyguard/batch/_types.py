"""Result types and errors of batch scoring: :class:`ScoredReply`, :class:`Rejected`,
:class:`ScoreSummary`, :class:`BatchUsageError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ReplyGuardError

if TYPE_CHECKING:
    from ..verdict import Verdict

__all__ = [
    "BatchError",
    "BatchUsageError",
    "LedgerUnavailableError",
    "Rejected",
    "ScoreSummary",
    "ScoredReply",
]


class BatchError(ReplyGuardError):
    """Base class of the errors raised by :mod:`replyguard.batch`."""


class BatchUsageError(BatchError, ValueError):
    """The inputs or options cannot be used as given (a missing file, an unknown
    format, an output that exists without ``resume``/``overwrite``...).

    The ``score`` command turns it into exit status 2.
    """


class LedgerUnavailableError(BatchUsageError, ImportError):
    """``ledger=`` was given but :mod:`replyguard.optout` cannot be imported."""


@dataclass(frozen=True, slots=True)
class ScoredReply:
    """One input record and its verdict.

    Attributes
    ----------
    id
        The record's id: the ``id`` field or column, or the ``Message-ID`` of an
        email; ``None`` when the record has none.
    file
        The input file the record came from, as given (for a folder: the ``.eml`` file).
    line
        1-based line where the record starts (JSONL, CSV, mbox ``From`` line);
        ``None`` for ``.eml`` files and Parquet.
    index
        0-based position of the record in its file (row, message), blank lines
        not counted. ``(file, index)`` identifies a record.
    verdict
        The :class:`~replyguard.Verdict`.
    contact
        The contact id used for the opt-out ledger, when one was asked for.
    """

    id: Any
    file: str
    line: int | None
    index: int
    verdict: Verdict
    contact: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The output row: id, source location and the verdict fields."""
        from .writers import row_dict

        return row_dict(self.id, self.file, self.line, self.index, self.verdict)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input record that could not be scored, and why.

    Attributes
    ----------
    file, line, index
        Where the record is (see :class:`ScoredReply`).
    reason
        What is wrong with it: ``"malformed JSON: ..."``, ``"missing text field 'text'"``,
        ``"undecodable bytes: ..."``, ``"broken message: ..."``.
    id
        The record's id when it could be read.
    excerpt
        The start of the raw record (at most 200 characters), to find and fix it.
    """

    file: str
    line: int | None
    index: int
    reason: str
    id: Any = None
    excerpt: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The rejects-file row."""
        return {
            "file": self.file,
            "line": self.line,
            "index": self.index,
            "id": self.id,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """What a batch run did. ``read == skipped + scored + rejected`` always holds.

    Attributes
    ----------
    read
        Records read in this run (including those skipped because ``resume``
        found them already done).
    scored, rejected
        Records scored and rejected in this run.
    skipped
        Records already in the output or the rejects file (``resume``).
    previously_rejected
        Rejects already in the rejects file when the run resumed.
    intents
        Scored records per intent value.
    do_not_email, needs_review
        Scored records flagged do-not-email, and those needing review.
    seconds
        Wall time of the run.
    output, rejects
        The output written (a file, or a folder of parts for the dask engine)
        and the rejects file (``None`` when nothing was rejected).
    stopped_early
        True when ``max_rejects`` stopped the run before the end of the input.
    engine, jobs
        How the records were scored.
    model_version, ruleset_version
        The classifier that scored them; several joined by ``" + "`` when the
        workers did not all load the same model or rules (files changed during the
        run, or a cluster whose workers run other versions): :attr:`mixed_versions`.
    ledger_recorded, ledger_no_contact, ledger_failed
        Verdicts fed into the opt-out ledger; scored records with no contact id
        (not fed); records the ledger refused (an invalid contact id, a message id
        already used for another contact: the first five are named on stderr).
    """

    read: int
    scored: int
    rejected: int
    skipped: int = 0
    previously_rejected: int = 0
    intents: dict[str, int] = field(default_factory=dict)
    do_not_email: int = 0
    needs_review: int = 0
    seconds: float = 0.0
    output: str | None = None
    rejects: str | None = None
    stopped_early: bool = False
    engine: str = "joblib"
    jobs: int = 1
    model_version: str | None = None
    ruleset_version: str | None = None
    ledger_recorded: int = 0
    ledger_no_contact: int = 0
    ledger_failed: int = 0

    @property
    def replies_per_second(self) -> float:
        """Records scored or rejected per second of wall time."""
        done = self.scored + self.rejected
        return done / self.seconds if self.seconds > 0 else 0.0

    @property
    def mixed_versions(self) -> bool:
        """True when not every record was scored by the same model and ruleset."""
        return " + " in (self.model_version or "") or " + " in (self.ruleset_version or "")

    @property
    def exit_status(self) -> int:
        """0 when every record is scored, 1 when any was rejected (now or before a resume)
        or the run stopped early."""
        return 1 if (self.rejected or self.previously_rejected or self.stopped_early) else 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every field, and ``replies_per_second``."""
        return {
            "read": self.read,
            "scored": self.scored,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "previously_rejected": self.previously_rejected,
            "intents": dict(self.intents),
            "do_not_email": self.do_not_email,
            "needs_review": self.needs_review,
            "seconds": round(self.seconds, 3),
            "replies_per_second": round(self.replies_per_second, 1),
            "output": self.output,
            "rejects": self.rejects,
            "stopped_early": self.stopped_early,
            "engine": self.engine,
            "jobs": self.jobs,
            "model_version": self.model_version,
            "ruleset_version": self.ruleset_version,
            "ledger_recorded": self.ledger_recorded,
            "ledger_no_contact": self.ledger_no_contact,
            "ledger_failed": self.ledger_failed,
        }

    def format(self) -> str:
        """The closing summary the ``score`` command prints."""
        lines = [
            f"read {self.read:,} records: {self.scored:,} scored, {self.rejected:,} rejected"
            + (f", {self.skipped:,} already done (resume)" if self.skipped else "")
            + f" in {self.seconds:.{2 if self.seconds < 10 else 1}f}s ({self.replies_per_second:,.0f} replies/s, "
            f"{self.engine}, {self.jobs} job{'s' if self.jobs != 1 else ''})",
        ]
        if self.mixed_versions:
            lines.append(f"warning: the records were scored by more than one model or ruleset "
                         f"(model {self.model_version}; rules {self.ruleset_version}): did the files change "
                         "during the run, or do the workers run other versions?")
        if self.stopped_early:
            lines.append("stopped early: more rejects than --max-rejects; the rest of the input was not read")
        width = max([len(k) for k in self.intents] + [12])
        for intent, n in sorted(self.intents.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {intent:{width}s} {n:>10,}")
        lines.append(f"  do-not-email: {self.do_not_email:,}   needs review: {self.needs_review:,}")
        if self.ledger_recorded or self.ledger_no_contact or self.ledger_failed:
            lines.append(f"  ledger: {self.ledger_recorded:,} verdicts recorded"
                         + (f", {self.ledger_no_contact:,} without a contact id (not recorded)"
                            if self.ledger_no_contact else "")
                         + (f", {self.ledger_failed:,} refused by the ledger" if self.ledger_failed else ""))
        if self.output:
            lines.append(f"  output:  {self.output}")
        if self.rejects and (self.rejected or self.previously_rejected):
            lines.append(f"  rejects: {self.rejects} ({self.rejected + self.previously_rejected:,} in all)")
        return "\n".join(lines)
