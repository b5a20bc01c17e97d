"""Where batches are scored: in this process, in joblib worker processes, or on a dask cluster.

Every engine maps :func:`score_batch` over an iterator of batches and yields
the results **in input order**, with a bounded number of batches in flight, so
memory stays flat however large the input. Workers load the model once per
process and keep it.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import os
import threading
from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from ._types import BatchError, BatchUsageError, Rejected, ScoredReply
from .readers import EMAIL, REJECT, TEXT
from .writers import csv_line, jsonl_line, reject_line

__all__ = ["DaskEngine", "JoblibEngine", "SerialEngine", "WorkerSpec", "cpu_count", "score_batch"]

# what score_batch returns per record
SCORED, REJECTED = "s", "r"


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs to score a batch (small: it travels with every batch).

    Attributes
    ----------
    model
        A model directory, or ``None`` for the packaged model.
    mode
        ``"lines"``: return ready output lines (the fast path for files);
        ``"objects"``: return :class:`ScoredReply` / :class:`Rejected` objects.
    out_format
        ``"jsonl"`` or ``"csv"`` (``"lines"`` mode).
    full
        JSONL lines carry the whole verdict.
    contact_header
        The header holding the contact address of an email (``None``: no contact).
    """

    model: str | None = None
    mode: str = "lines"
    out_format: str = "jsonl"
    full: bool = False
    contact_header: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "mode": self.mode, "out_format": self.out_format, "full": self.full,
                "contact_header": self.contact_header}


_classifiers: dict[str | None, Any] = {}


def _classifier(model: str | None) -> Any:
    clf = _classifiers.get(model)
    if clf is None:
        from ..classify import ReplyClassifier

        clf = ReplyClassifier.default() if model is None else ReplyClassifier.load(model)
        _classifiers[model] = clf
    return clf


def _header_text(value: Any) -> str:
    s = str(value)
    # 8-bit header bytes arrive as surrogate escapes (compat32): make them printable and JSON-safe
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip()


_BOUNDARY_DEFECTS = ("NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect")


def _broken(msg: Message, data: bytes) -> str | None:
    """Why a message cannot be scored, or None."""
    if not data.strip():
        return "broken message: empty"
    if not msg.keys():
        return "broken message: no header lines (not an email message)"
    for part in msg.walk():
        for d in part.defects:
            if type(d).__name__ in _BOUNDARY_DEFECTS:
                return (f"broken message: multipart body cannot be split ({type(d).__name__}); "
                        "its text cannot be read")
    return None


def _excerpt(data: bytes) -> str:
    s = data[:200].decode("utf-8", errors="backslashreplace")
    return s + ("..." if len(data) > 200 else "")


_batch_lock = threading.Lock()
_warm: set[int] = set()
# The first replies a process scores build the vocabulary every later batch shares (common
# words); they are scored outside a memory zone, so that vocabulary is kept, not rebuilt per batch.
_OUTSIDE_ZONE = 5000
_scored_outside = 0


def _memory_zone() -> Any:
    """spaCy's memory zone over the shared tokenizer: the strings and lexemes that a batch's
    replies add to the vocabulary (names, numbers, addresses: every archive has millions)
    are freed when the batch ends, so a long run does not grow. spaCy < 3.8: no zone."""
    from .._text import get_nlp

    zone = getattr(get_nlp(), "memory_zone", None)
    return zone() if zone is not None else contextlib.nullcontext()


def score_batch(batch: list[tuple], spec: WorkerSpec, clf: Any = None) -> tuple[str, str, list[tuple]]:
    """Score one batch of reader items (see :mod:`replyguard.batch.readers`), in order.

    Returns ``(model_version, ruleset_version, records)`` with, per record,
    ``("s", line_or_ScoredReply, intent, do_not_email, needs_review)`` or
    ``("r", line_or_Rejected)``. A record whose classification raises becomes a
    reject naming the exception; nothing is dropped. ``clf``: a classifier
    object to use instead of loading ``spec.model`` (in-process scoring).

    Batches run one at a time per process (scoring holds the GIL, so threads
    would not run them faster) inside a spaCy memory zone: tokens new to the
    vocabulary are dropped at the end of the batch. While a batch runs in a
    process, other threads of that process should not classify replies.
    """
    global _scored_outside
    if clf is None:
        clf = _classifier(spec.model)
    with _batch_lock:
        _warm_up(clf)
        if _scored_outside < _OUTSIDE_ZONE:
            _scored_outside += len(batch)
            return _score_batch(batch, spec, clf)
        with _memory_zone():
            return _score_batch(batch, spec, clf)


def _warm_up(clf: Any) -> None:
    """Lazy set-up inside the classifier (patterns, tables) happens here, outside any zone."""
    if id(clf) not in _warm:
        clf.classify("Please take me off your list. Danke, bis Montag!")
        _warm.add(id(clf))


def prepare_worker(model: str | None) -> bool:
    """Load the model on a worker before its first task (``Client.run``). Skipped (False)
    when the worker is busy scoring: its next task loads the model itself."""
    if not _batch_lock.acquire(blocking=False):
        return False
    try:
        _warm_up(_classifier(model))
    finally:
        _batch_lock.release()
    return True


def _score_batch(batch: list[tuple], spec: WorkerSpec, clf: Any) -> tuple[str, str, list[tuple]]:
    lines = spec.mode == "lines"
    fmt_line = csv_line if spec.out_format == "csv" else jsonl_line
    full = spec.full
    out: list[tuple] = []
    append = out.append
    text_verdicts = iter(_classify_texts(clf, [item[6] for item in batch if item[0] == TEXT]))
    for kind, file, line, index, rid, contact, payload, _pos in batch:
        if kind == TEXT:
            v = next(text_verdicts)
            if isinstance(v, Exception):  # recorded as a reject, never swallowed
                reason = f"classification failed: {type(v).__name__}: {v}"
                append(_reject(lines, file, line, index, rid, reason, payload[:200]))
                continue
        elif kind == EMAIL:
            try:
                msg = email.message_from_bytes(payload, policy=email.policy.compat32)
                why = _broken(msg, payload)
                if rid is None and msg.get("Message-ID") is not None:
                    rid = _header_text(msg["Message-ID"])
                if why is not None:
                    append(_reject(lines, file, line, index, rid, why, _excerpt(payload)))
                    continue
                if spec.contact_header:
                    raw = msg.get(spec.contact_header)
                    if raw is not None:
                        addr = email.utils.parseaddr(_header_text(raw))[1]
                        contact = addr or _header_text(raw) or None
                v = clf.classify_email(msg)
            except Exception as exc:
                reason = f"broken message: {type(exc).__name__}: {exc}"
                append(_reject(lines, file, line, index, rid, reason, _excerpt(payload)))
                continue
        elif kind == REJECT:
            reason, excerpt = payload
            append(_reject(lines, file, line, index, rid, reason, excerpt))
            continue
        else:  # pragma: no cover - a bug in a reader
            raise ValueError(f"unknown item kind {kind!r}")
        if lines:
            append((SCORED, fmt_line(rid, file, line, index, v, full=full), v.intent.value,
                    v.do_not_email, v.needs_review))
        else:
            append((SCORED, ScoredReply(rid, file, line, index, v, None if contact is None else str(contact)),
                    v.intent.value, v.do_not_email, v.needs_review))
    return clf.model.version, clf.ruleset.version, out


def _classify_texts(clf: Any, texts: list[str]) -> list[Any]:
    """The verdicts of a batch's texts, a stage at a time over all of them
    (``classify_many``); if that raises, one by one, so that only the text at fault
    gets the exception in place of its verdict."""
    try:
        return list(clf.classify_many(texts))
    except Exception:
        out: list[Any] = []
        for t in texts:
            try:
                out.append(clf.classify(t))
            except Exception as exc:
                out.append(exc)
        return out


def _reject(lines: bool, file: str, line: int | None, index: int, rid: Any, reason: str, excerpt: str) -> tuple:
    if lines:
        return (REJECTED, reject_line(file, line, index, rid, reason, excerpt))
    return (REJECTED, Rejected(file, line, index, reason, rid, excerpt))


# -- engines --------------------------------------------------------------------------------------

class SerialEngine:
    """Scores in this process."""

    name = "serial"

    def __init__(self, classifier: Any = None) -> None:
        self.jobs = 1
        self.classifier = classifier

    def map(self, batches: Iterable[list[tuple]], spec: WorkerSpec) -> Generator[tuple[str, str, list[tuple]], None, None]:
        clf = self.classifier if self.classifier is not None else _classifier(spec.model)
        for b in batches:
            yield score_batch(b, spec, clf)

    def close(self) -> None:
        pass


class JoblibEngine:
    """Scores batches in ``jobs`` worker processes (joblib's loky backend, reused across runs).

    At most ``2 * jobs`` batches are in flight; results come back in order.
    """

    name = "joblib"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, batches: Iterable[list[tuple]], spec: WorkerSpec) -> Generator[tuple[str, str, list[tuple]], None, None]:
        from joblib import Parallel, delayed

        par = Parallel(n_jobs=self.jobs, return_as="generator", pre_dispatch="2*n_jobs", batch_size=1)
        gen = par(delayed(score_batch)(b, spec) for b in batches)
        try:
            yield from gen
        finally:
            gen.close()

    def close(self) -> None:
        pass


def _dask_client(scheduler: Any, workers: int, processes: bool) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BatchUsageError(
            "the dask engine needs dask.distributed, which is not installed: pip install 'replyguard[dask]'"
        ) from None
    if scheduler is not None and not isinstance(scheduler, str):
        return scheduler, None  # a Client the caller holds
    if scheduler:
        try:
            return Client(scheduler), None  # connect timeout: dask config distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"cannot reach the dask scheduler at {scheduler!r} ({exc}); check the address "
                "(tcp://HOST:8786) and that the scheduler is running, or omit --scheduler for a local cluster"
            ) from None
    import dask

    # no dashboard; the scheduler's HTTP endpoints on a free port, not 8787 (may be taken); no
    # statistical profiler sampling the scoring threads every 10 ms (it costs a third of a core)
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"})
    return Client(cluster), cluster


class DaskEngine:
    """Scores partitions as dask.distributed tasks, on a scheduler or a local cluster.

    Parameters
    ----------
    scheduler
        A scheduler address (``tcp://host:8786``), a :class:`distributed.Client`,
        or ``None`` to start a :class:`distributed.LocalCluster` of ``workers``
        single-threaded worker processes for this run.
    workers
        Workers of the local cluster.
    processes
        Local cluster workers as processes (the default; scoring holds the GIL,
        so threads do not scale).

    The driver reads the inputs and sends each partition's records with its
    task, so workers need replyguard installed but no access to the files; the
    results come back to the driver, which writes the parts. At most
    ``2 * workers + 1`` partitions are in flight, taken back in order.
    """

    name = "dask"

    def __init__(self, *, scheduler: Any = None, workers: int = 2, processes: bool = True) -> None:
        self.client, self.cluster = _dask_client(scheduler, workers, processes)
        self._own_client = scheduler is None or isinstance(scheduler, str)
        try:
            n = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        except Exception:  # pragma: no cover - scheduler_info shape differs by version
            n = workers
        self.jobs = max(n, 1)

    def map(self, batches: Iterable[list[tuple]], spec: WorkerSpec) -> Generator[tuple[str, str, list[tuple]], None, None]:
        # every worker loads the model now, at once, rather than on its first partition
        try:
            self.client.run(prepare_worker, spec.model)
        except ImportError as exc:
            raise BatchError(
                f"the dask workers cannot run replyguard ({exc}); install the same replyguard on every "
                "worker (and the model at the same path, when --model is given)"
            ) from None
        window: deque[Any] = deque()
        limit = 2 * self.jobs + 1
        it = iter(batches)
        try:
            for b in it:
                window.append(self.client.submit(score_batch, b, spec, pure=False))
                if len(window) >= limit:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()

    def close(self) -> None:
        if self._own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
