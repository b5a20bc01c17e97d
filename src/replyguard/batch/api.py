"""``score_files`` and ``iter_scores``: the batch runs behind ``replyguard score``."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._types import BatchUsageError, LedgerUnavailableError, Rejected, ScoredReply, ScoreSummary
from .engines import SCORED, DaskEngine, JoblibEngine, SerialEngine, WorkerSpec, cpu_count
from .progress import ProgressInfo, make_progress
from .readers import ReadOptions, Source, check_sources, expand_inputs, iter_items
from .writers import (
    DoneSet,
    LineWriter,
    PartsFolder,
    csv_header,
    csv_line,
    default_rejects_path,
    jsonl_line,
    output_format,
    reject_line,
    scan_done,
)

__all__ = ["ENGINES", "iter_scores", "score_files"]

#: Engines by name.
ENGINES = ("joblib", "dask")
DEFAULT_BATCH = {"joblib": 1000, "dask": 2000}
_MAX_BATCH_BYTES = 32 << 20

Inputs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
ProgressArg = str | Callable[[ProgressInfo], Any] | None


@dataclass(slots=True)
class _Meta:
    """What the consumer must know about one batch (or one partition skipped whole)."""

    part: int
    first: list[Any] | None = None
    last: list[Any] | None = None
    n: int = 0
    skipped_before: int = 0
    pos: int = 0
    done_entry: dict[str, Any] | None = None


@dataclass(slots=True)
class _Tally:
    read: int = 0
    scored: int = 0
    rejected: int = 0
    skipped: int = 0
    dne: int = 0
    review: int = 0
    intents: Counter[str] = field(default_factory=Counter)
    ledger_recorded: int = 0
    ledger_no_contact: int = 0
    ledger_failed: int = 0
    models: dict[str, None] = field(default_factory=dict)  # insertion-ordered sets
    rulesets: dict[str, None] = field(default_factory=dict)

    def see(self, model_version: str, ruleset_version: str) -> None:
        if model_version not in self.models:
            self.models[model_version] = None
        if ruleset_version not in self.rulesets:
            self.rulesets[ruleset_version] = None


def _as_list(inputs: Inputs) -> list[str | os.PathLike[str]]:
    if isinstance(inputs, (str, os.PathLike)):
        return [inputs]
    return list(inputs)


def _jobs(jobs: int | None) -> int:
    n = cpu_count()
    if jobs is None:
        return n
    if jobs == 0:
        raise BatchUsageError("jobs must not be 0; give a number of processes, or -1 for all cores")
    return max(jobs if jobs > 0 else n + 1 + jobs, 1)


def _model_spec(model: Any, jobs: int, engine: str) -> tuple[str | None, Any]:
    """(path or None for workers, classifier object for in-process scoring)."""
    if model is None:
        return None, None
    from ..classify import ReplyClassifier

    if isinstance(model, ReplyClassifier):
        path = model.model.path
        if path is None and (jobs > 1 or engine == "dask"):
            raise BatchUsageError(
                "a model held only in memory cannot be sent to worker processes; save it with "
                "replyguard.model.save(model, DIR) and pass DIR, or use jobs=1"
            )
        return (str(path) if path is not None else None), model
    path = Path(model)
    if jobs == 1 and engine != "dask":
        return str(path), ReplyClassifier.load(path)
    if not path.is_dir():
        ReplyClassifier.load(path)  # raises ModelNotFoundError with the model's own message
    return str(path), None


def _ledger_class(ledger: Any) -> Any:
    """The class that opens ``ledger`` (a path or URL), or None for a ready object or no ledger."""
    if ledger is None or hasattr(ledger, "record_reply"):
        return None
    try:
        from ..optout import OptOutLedger
    except ImportError as exc:
        raise LedgerUnavailableError(
            f"the opt-out ledger is not available in this installation of replyguard "
            f"(replyguard.optout cannot be imported: {exc}); drop --ledger, or install a replyguard "
            "that includes replyguard.optout"
        ) from None
    return OptOutLedger


class _Plan:
    """Inputs, options and engine of one run; makes the batches and consumes the results."""

    def __init__(self, inputs: Inputs, *, input_format: str | None, text_field: str, id_field: str,
                 text_column: str | None, id_column: str | None, contact_field: str | None, model: Any,
                 jobs: int | None, engine: str, scheduler: Any, batch_size: int | None, mode: str,
                 out_format: str, full: bool, need_contact: bool, dask_processes: bool,
                 exclude: Sequence[Path] = ()) -> None:
        if engine not in ENGINES:
            raise BatchUsageError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
        if scheduler is not None and engine != "dask":
            raise BatchUsageError("a scheduler address needs the dask engine: add --engine dask")
        sources = expand_inputs(_as_list(inputs), input_format=input_format)
        if exclude:
            # a rerun's glob or folder must not read this run's own output back in
            ex = [p.resolve() for p in exclude]
            sources = [s for s in sources
                       if not any(s.path.resolve() == e or e in s.path.resolve().parents for e in ex)]
            if not sources:
                raise BatchUsageError("the inputs name only the output itself; give the files to score")
        self.sources: list[Source] = sources
        self.read_options = ReadOptions(
            text_field=text_field, id_field=id_field, text_column=text_column or text_field,
            id_column=id_column or id_field, contact_field=contact_field,
        )
        required = []
        if id_column is not None or id_field != "id":  # named by the caller: a typo must not go unseen
            required.append((self.read_options.id_column, "--id-column"))
        if contact_field is not None:
            required.append((contact_field, "--contact-field"))
        check_sources(self.sources, self.read_options, required=required)
        has_email = any(s.format in ("eml", "mbox") for s in self.sources)
        if need_contact and contact_field is None and any(s.format not in ("eml", "mbox") for s in self.sources):
            raise BatchUsageError(
                "the ledger needs a contact id for each reply: pass --contact-field with the JSONL field "
                "or CSV/Parquet column that holds it (for emails it defaults to the From address)"
            )
        contact_header = (contact_field or "From") if (has_email and (need_contact or contact_field)) else None
        self.jobs = _jobs(jobs)
        self.engine_name = engine
        if batch_size is not None and batch_size < 1:
            raise BatchUsageError(f"batch size must be >= 1, got {batch_size}")
        self.batch_size = batch_size or DEFAULT_BATCH[engine]
        model_path, self.classifier = _model_spec(model, self.jobs, engine)
        self.spec = WorkerSpec(model=model_path, mode=mode, out_format=out_format, full=full,
                               contact_header=contact_header)
        self.scheduler = scheduler
        self.dask_processes = dask_processes
        self.total_bytes = sum(s.size for s in self.sources) or 1
        self.metas: deque[_Meta] = deque()
        self.trailing_skipped = 0
        self.used_engine, self.used_jobs = engine, self.jobs

    # -- batches --------------------------------------------------------------------------------
    def batches(self, *, done: DoneSet | None = None,
                parts: PartsFolder | None = None) -> Iterator[list[tuple]]:
        """Batches of items in order; a record in ``done`` is skipped, a partition that
        ``parts`` holds from a previous run is skipped whole. Appends one :class:`_Meta`
        per batch (or skipped partition) to ``self.metas``, in order."""
        size = self.batch_size
        by_group = parts is not None
        batch: list[tuple] = []
        nbytes = 0
        group = -1
        skipped = 0
        part = 0
        meta = _Meta(0)

        def close() -> _Meta:
            nonlocal batch, nbytes, skipped, part, meta
            m = meta
            m.n = len(batch)
            m.last = [batch[-1][1], batch[-1][3]]
            m.pos = batch[-1][7]
            m.skipped_before = skipped
            skipped = 0
            part += 1
            meta = _Meta(part)
            return m

        for k, item in iter_items(self.sources, self.read_options):
            if by_group and batch and self.sources[k].group != group:
                m = close()
                if not self._skip_part(m, parts):
                    self.metas.append(m)
                    yield batch
                batch, nbytes = [], 0
            group = self.sources[k].group
            if done is not None and done.has(item[1], item[3]):
                skipped += 1
                continue
            if not batch:
                meta.first = [item[1], item[3]]
            batch.append(item)
            payload = item[6]
            nbytes += len(payload) if isinstance(payload, (str, bytes)) else 64
            if len(batch) >= size or nbytes >= _MAX_BATCH_BYTES:
                m = close()
                if not self._skip_part(m, parts):
                    self.metas.append(m)
                    yield batch
                batch, nbytes = [], 0
        if batch:
            m = close()
            if not self._skip_part(m, parts):
                self.metas.append(m)
                yield batch
        self.trailing_skipped = skipped

    def _skip_part(self, m: _Meta, parts: PartsFolder | None) -> bool:
        if parts is None:
            return False
        entry = parts.done(m.part, m.first or [], m.n)
        if entry is None:
            return False
        m.done_entry = entry
        self.metas.append(m)
        return True

    # -- engines --------------------------------------------------------------------------------
    def engine(self) -> Any:
        if self.engine_name == "dask":
            eng: Any = DaskEngine(scheduler=self.scheduler, workers=self.jobs, processes=self.dask_processes)
        elif self.jobs == 1:
            eng = SerialEngine(self.classifier)
        else:
            eng = JoblibEngine(self.jobs)
        self.used_engine, self.used_jobs = eng.name, eng.jobs
        return eng

    def results(self, engine: Any, batches: Iterator[list[tuple]]) -> Generator[tuple[_Meta, tuple | None], None, None]:
        """``(meta, result)`` per batch in order; ``result`` is None for a partition skipped whole."""
        if isinstance(engine, JoblibEngine):
            # one batch only: not worth starting worker processes
            head = [b for _, b in zip(range(2), batches, strict=False)]
            if len(head) < 2:
                engine = SerialEngine(self.classifier)
                self.used_engine, self.used_jobs = "serial", 1
            batches = _chain(head, batches)
        mapped = engine.map(batches, self.spec)
        try:
            for result in mapped:
                while self.metas and self.metas[0].done_entry is not None:
                    yield self.metas.popleft(), None
                yield self.metas.popleft(), result
            while self.metas:
                yield self.metas.popleft(), None
        finally:
            mapped.close()  # stops the workers' queue when the caller stops early

    def progress(self, tally: _Tally, pos: int, t0: float) -> ProgressInfo:
        return ProgressInfo(done=tally.scored + tally.rejected, scored=tally.scored, rejected=tally.rejected,
                            skipped=tally.skipped, fraction=min(pos / self.total_bytes, 1.0),
                            seconds=time.perf_counter() - t0)

    def summary(self, tally: _Tally, t0: float, **kw: Any) -> ScoreSummary:
        return ScoreSummary(
            read=tally.read, scored=tally.scored, rejected=tally.rejected, skipped=tally.skipped,
            intents=dict(tally.intents), do_not_email=tally.dne, needs_review=tally.review,
            seconds=time.perf_counter() - t0, engine=self.used_engine, jobs=self.used_jobs,
            model_version=" + ".join(tally.models) or None,
            ruleset_version=" + ".join(tally.rulesets) or None,
            ledger_recorded=tally.ledger_recorded, ledger_no_contact=tally.ledger_no_contact,
            ledger_failed=tally.ledger_failed, **kw,
        )


def _chain(head: list[list[tuple]], rest: Iterator[list[tuple]]) -> Iterator[list[tuple]]:
    yield from head
    yield from rest


def iter_scores(
    inputs: Inputs,
    *,
    input_format: str | None = None,
    text_field: str = "text",
    id_field: str = "id",
    text_column: str | None = None,
    id_column: str | None = None,
    contact_field: str | None = None,
    model: Any = None,
    jobs: int | None = 1,
    engine: str = "joblib",
    scheduler: Any = None,
    batch_size: int | None = None,
    progress: ProgressArg = "none",
    progress_interval: float = 10.0,
    dask_processes: bool = True,
) -> Iterator[ScoredReply | Rejected]:
    """Score archives lazily: one :class:`ScoredReply` or :class:`Rejected` per record, in input order.

    Takes the same inputs and scoring options as :func:`score_files` and writes
    nothing; memory stays flat however large the input.

    Parameters
    ----------
    inputs
        Files, folders of ``.eml`` files and glob patterns (one, or an iterable).
    input_format, text_field, id_field, text_column, id_column, contact_field, model, jobs, engine, scheduler, batch_size, progress, progress_interval, dask_processes
        As in :func:`score_files`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "replies.jsonl").write_text('{"id": "a", "text": "STOP"}\\n{"id": "b"}\\n')
    >>> for r in iter_scores(d / "replies.jsonl"):
    ...     print(r.id, r.verdict.intent.value if isinstance(r, ScoredReply) else r.reason)
    a do_not_email
    b missing text field 'text'
    """
    plan = _Plan(inputs, input_format=input_format, text_field=text_field, id_field=id_field,
                 text_column=text_column, id_column=id_column, contact_field=contact_field, model=model,
                 jobs=jobs, engine=engine, scheduler=scheduler, batch_size=batch_size, mode="objects",
                 out_format="jsonl", full=False, need_contact=False, dask_processes=dask_processes)
    return _iterate(plan, make_progress(progress, interval=progress_interval))


def _iterate(plan: _Plan, prog: Any) -> Iterator[ScoredReply | Rejected]:
    tally = _Tally()
    t0 = time.perf_counter()
    eng = plan.engine()
    pos = 0
    results = plan.results(eng, plan.batches())
    try:
        for meta, result in results:
            assert result is not None
            tally.see(result[0], result[1])
            for rec in result[2]:
                if rec[0] == SCORED:
                    tally.scored += 1
                else:
                    tally.rejected += 1
                yield rec[1]
            pos = meta.pos
            prog.update(plan.progress(tally, pos, t0))
    finally:
        results.close()
        eng.close()
        prog.close(plan.progress(tally, pos, t0) if tally.scored + tally.rejected else None)


def score_files(
    inputs: Inputs,
    output: str | os.PathLike[str],
    *,
    format: str | None = None,
    input_format: str | None = None,
    text_field: str = "text",
    id_field: str = "id",
    text_column: str | None = None,
    id_column: str | None = None,
    model: Any = None,
    jobs: int | None = 1,
    engine: str = "joblib",
    scheduler: Any = None,
    batch_size: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    max_rejects: int | None = None,
    ledger: Any = None,
    contact_field: str | None = None,
    full: bool = False,
    progress: ProgressArg = "none",
    progress_interval: float = 10.0,
    dask_processes: bool = True,
) -> ScoreSummary:
    """Score reply archives into one output file (or, with the dask engine, a folder of parts).

    Parameters
    ----------
    inputs
        Files, folders of ``.eml`` files and glob patterns: JSONL, CSV (or TSV),
        mbox, ``.eml``, Parquet (needs ``replyguard[parquet]``); any of them
        gzip-compressed except Parquet.
    output
        The output file, ``*.jsonl`` or ``*.csv``; with ``engine="dask"`` a
        folder that receives ``part-NNNNN.jsonl`` files and ``manifest.json``.
    format
        ``"jsonl"`` or ``"csv"``; default: from the suffix of ``output``.
    input_format
        Read every input as this format instead of telling it from its suffix.
    text_field, id_field
        JSONL keys of the reply text and the record id; also the CSV and
        Parquet columns unless ``text_column``/``id_column`` are given.
    text_column, id_column
        CSV and Parquet columns of the text and the id.
    model
        A model directory or a :class:`~replyguard.ReplyClassifier`; default: the packaged model.
    jobs
        Processes: 1 scores in this process; ``None`` or ``-1`` all cores. With
        ``engine="dask"`` and no scheduler, the workers of the local cluster.
    engine
        ``"joblib"`` (this machine) or ``"dask"`` (dask.distributed, needs ``replyguard[dask]``).
    scheduler
        Dask scheduler address (``"tcp://10.0.0.5:8786"``) or a ``distributed.Client``;
        ``None``: a local cluster of ``jobs`` workers, started for this run.
    batch_size
        Records per batch sent to a worker (default 1000), or per dask partition
        (default 2000). Partitions never span two inputs.
    resume
        Continue an interrupted run: records already in the output or the
        rejects file (dask: parts listed in the manifest) are skipped, so none
        is scored or written twice.
    overwrite
        Replace an existing output (and its rejects file). Without ``resume`` or
        ``overwrite``, an existing output is an error.
    rejects
        The rejects file (JSONL); default: next to the output, ``NAME.rejects.jsonl``.
    max_rejects
        Stop once more than this many records are rejected (the summary says so).
    ledger
        Feed each verdict into the opt-out ledger: a path or URL for
        ``replyguard.optout.OptOutLedger``, or an object with
        ``record_reply(contact_id, verdict, *, message_id)``. Each verdict is
        recorded before its row is written, so a resumed run never misses one
        (the ledger ignores a message id it has seen).
    contact_field
        The JSONL field, CSV/Parquet column or email header holding the contact id
        (emails: ``From`` by default, its address).
    full
        JSONL output only: add the whole verdict (scores, evidence with offsets, flags) as ``verdict``.
    progress
        ``"auto"``, ``"bar"``, ``"log"``, ``"none"`` or a callable taking a
        :class:`~replyguard.batch.progress.ProgressInfo`.
    progress_interval
        Seconds between log lines or progress callbacks.
    dask_processes
        Local dask cluster workers as processes (default) or threads.

    Returns
    -------
    ScoreSummary
        Counts (``read == skipped + scored + rejected``), intents, rate, paths.

    Raises
    ------
    BatchUsageError
        Bad inputs or options, named with the fix (the command exits 2).

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "replies.jsonl").write_text('{"id": 1, "text": "STOP"}\\n{"id": 2, "text": "Tuesday at 10 works"}\\n')
    >>> s = score_files(d / "replies.jsonl", d / "verdicts.jsonl")
    >>> s.read, s.scored, s.rejected, s.do_not_email
    (2, 2, 0, 1)
    >>> row = json.loads((d / "verdicts.jsonl").read_text().splitlines()[0])
    >>> row["id"], row["line"], row["intent"], row["do_not_email"]
    (1, 1, 'do_not_email', True)
    """
    if resume and overwrite:
        raise BatchUsageError("--resume and --overwrite contradict each other; pass one")
    if max_rejects is not None and max_rejects < 0:
        raise BatchUsageError(f"max rejects must be >= 0, got {max_rejects}")
    out = Path(output)
    if engine == "dask" and format is None:
        # a folder of parts: its name may say the format (out.csv/), else JSONL
        fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl"
    else:
        fmt = output_format(out, format)
    if full and fmt != "jsonl":
        raise BatchUsageError("the full verdict can only be written to JSONL output; drop --full or use .jsonl")
    rejects_path = Path(rejects) if rejects is not None else default_rejects_path(out)
    ledger_cls = _ledger_class(ledger)  # fails before anything is read or written
    mode = "objects" if ledger is not None else "lines"
    plan = _Plan(inputs, input_format=input_format, text_field=text_field, id_field=id_field,
                 text_column=text_column, id_column=id_column, contact_field=contact_field, model=model,
                 jobs=jobs, engine=engine, scheduler=scheduler, batch_size=batch_size, mode=mode,
                 out_format=fmt, full=full, need_contact=ledger is not None, dask_processes=dask_processes,
                 exclude=[out] if engine == "dask" else [out, rejects_path])
    prog = make_progress(progress, interval=progress_interval)
    the_ledger = ledger_cls(os.fspath(ledger)) if ledger_cls is not None else ledger
    try:
        if engine == "dask":
            return _score_parts(plan, out, fmt, resume=resume, overwrite=overwrite, max_rejects=max_rejects,
                                ledger=the_ledger, prog=prog)
        return _score_file(plan, out, fmt, resume=resume, overwrite=overwrite, rejects=rejects_path,
                           max_rejects=max_rejects, ledger=the_ledger, prog=prog)
    finally:
        if ledger_cls is not None:
            the_ledger.close()


def _feed_ledger(ledger: Any, rec: ScoredReply, tally: _Tally) -> None:
    if rec.contact is None or rec.contact == "":
        tally.ledger_no_contact += 1
        return
    message_id = str(rec.id) if rec.id is not None and rec.id != "" else f"{rec.file}#{rec.index}"
    try:
        ledger.record_reply(rec.contact, rec.verdict, message_id=message_id)
    except ValueError as exc:  # this record's contact or message id; a broken store raises on
        tally.ledger_failed += 1
        if tally.ledger_failed <= 5:
            where = f"{rec.file}:{rec.line}" if rec.line is not None else f"{rec.file}#{rec.index}"
            print(f"replyguard score: {where}: not recorded in the ledger: {exc}", file=sys.stderr)
        return
    tally.ledger_recorded += 1


def _as_lines(records: list[tuple], fmt: str, full: bool, ledger: Any, tally: _Tally) -> list[tuple]:
    """Objects-mode records -> lines-mode records, feeding the ledger on the way."""
    line_of = csv_line if fmt == "csv" else jsonl_line
    out = []
    for rec in records:
        obj = rec[1]
        if rec[0] == SCORED:
            if ledger is not None:
                _feed_ledger(ledger, obj, tally)
            out.append((SCORED, line_of(obj.id, obj.file, obj.line, obj.index, obj.verdict, full=full),
                        *rec[2:]))
        else:
            out.append((rec[0], reject_line(obj.file, obj.line, obj.index, obj.id, obj.reason, obj.excerpt)))
    return out


def _score_file(plan: _Plan, out: Path, fmt: str, *, resume: bool, overwrite: bool, rejects: Path,
                max_rejects: int | None, ledger: Any, prog: Any) -> ScoreSummary:
    if out.is_dir():
        raise BatchUsageError(f"output {str(out)!r} is a folder; give a file name ending in .jsonl or .csv "
                              "(a folder of parts is written by --engine dask)")
    if rejects.resolve() == out.resolve():
        raise BatchUsageError("the rejects file must differ from the output; pass another --rejects")
    done: DoneSet | None = None
    previously_rejected = 0
    if resume:
        done, _, previously_rejected = scan_done(out, fmt, rejects)
    elif out.exists() or rejects.exists():
        if not overwrite:
            which = out if out.exists() else rejects
            raise BatchUsageError(
                f"{str(which)!r} exists; pass --resume to continue an interrupted run, or --overwrite to replace it"
            )
        for p in (out, rejects):
            if p.exists():
                p.unlink()
    writer = LineWriter(out, header=csv_header() if fmt == "csv" else None, append=resume)
    writer.open()
    rwriter = LineWriter(rejects, append=resume)
    tally = _Tally()
    t0 = time.perf_counter()
    stopped = False
    pos = 0
    eng = plan.engine()
    full = plan.spec.full
    results = plan.results(eng, plan.batches(done=done))
    try:
        for meta, result in results:
            assert result is not None
            tally.see(result[0], result[1])
            tally.skipped += meta.skipped_before
            records = result[2]
            if plan.spec.mode == "objects":
                records = _as_lines(records, fmt, full, ledger, tally)
            lines: list[str] = []
            rlines: list[str] = []
            for rec in records:
                if rec[0] == SCORED:
                    lines.append(rec[1])
                    tally.scored += 1
                    tally.intents[rec[2]] += 1
                    tally.dne += rec[3]
                    tally.review += rec[4]
                else:
                    rlines.append(rec[1])
                    tally.rejected += 1
                    if max_rejects is not None and tally.rejected > max_rejects:
                        stopped = True
                        break
            rwriter.write(rlines)
            writer.write(lines)
            pos = meta.pos
            prog.update(plan.progress(tally, pos, t0))
            if stopped:
                break
        else:
            tally.skipped += plan.trailing_skipped
            pos = plan.total_bytes
    finally:
        results.close()
        eng.close()
        writer.close()
        rwriter.close()
        prog.close(plan.progress(tally, pos, t0))
    tally.read = tally.skipped + tally.scored + tally.rejected
    return plan.summary(tally, t0, output=str(out),
                        rejects=str(rejects) if (tally.rejected or previously_rejected) else None,
                        previously_rejected=previously_rejected, stopped_early=stopped)


def _score_parts(plan: _Plan, out: Path, fmt: str, *, resume: bool, overwrite: bool, max_rejects: int | None,
                 ledger: Any, prog: Any) -> ScoreSummary:
    plan_sig = {
        "inputs": [s.to_dict() for s in plan.sources],
        "partition_size": plan.batch_size,
        "read_options": plan.read_options.to_dict(),
        "full": plan.spec.full,
    }
    parts = PartsFolder(out, fmt=fmt, plan=plan_sig, resume=resume, overwrite=overwrite)
    tally = _Tally()
    previously_rejected = 0
    t0 = time.perf_counter()
    stopped = False
    pos = 0
    full = plan.spec.full
    finished = False
    eng = plan.engine()
    results = plan.results(eng, plan.batches(parts=parts))
    try:
        for meta, result in results:
            pos = meta.pos
            if result is None:  # done by an earlier run
                e = meta.done_entry or {}
                tally.skipped += int(e.get("read", 0))
                previously_rejected += int(e.get("rejected", 0))
                prog.update(plan.progress(tally, pos, t0))
                continue
            tally.see(result[0], result[1])
            records = result[2]
            if plan.spec.mode == "objects":
                records = _as_lines(records, fmt, full, ledger, tally)
            lines: list[str] = []
            rlines: list[str] = []
            intents: Counter[str] = Counter()
            dne = review = 0
            for rec in records:
                if rec[0] == SCORED:
                    lines.append(rec[1])
                    intents[rec[2]] += 1
                    dne += rec[3]
                    review += rec[4]
                else:
                    rlines.append(rec[1])
            parts.write_part(meta.part, lines, rlines, {
                "first": meta.first, "last": meta.last, "read": meta.n, "scored": len(lines),
                "rejected": len(rlines), "intents": dict(intents), "do_not_email": dne, "needs_review": review,
                "model_version": result[0], "ruleset_version": result[1],
            })
            tally.scored += len(lines)
            tally.rejected += len(rlines)
            tally.intents.update(intents)
            tally.dne += dne
            tally.review += review
            prog.update(plan.progress(tally, pos, t0))
            if max_rejects is not None and tally.rejected > max_rejects:
                stopped = True
                break
        else:
            pos = plan.total_bytes
        finished = True
    finally:
        results.close()
        eng.close()
        prog.close(plan.progress(tally, pos, t0))
        if not finished:  # interrupted or failed: list the parts written so far, for --resume
            parts.write_manifest(complete=False)
    tally.read = tally.skipped + tally.scored + tally.rejected
    summary = plan.summary(tally, t0, output=str(out), rejects=str(out) if (tally.rejected or previously_rejected)
                           else None, previously_rejected=previously_rejected, stopped_early=stopped)
    all_parts = list(parts.parts.values())
    totals = {
        "read": sum(p["read"] for p in all_parts),
        "scored": sum(p["scored"] for p in all_parts),
        "rejected": sum(p["rejected"] for p in all_parts),
        "do_not_email": sum(p["do_not_email"] for p in all_parts),
        "needs_review": sum(p["needs_review"] for p in all_parts),
        "intents": dict(sum((Counter(p["intents"]) for p in all_parts), Counter())),
    }
    parts.write_manifest(complete=not stopped, totals=totals, extra={
        "model_version": summary.model_version, "ruleset_version": summary.ruleset_version,
    })
    return summary
