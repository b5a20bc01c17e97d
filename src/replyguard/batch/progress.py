"""Progress on stderr: a one-line bar (rate, ETA) on a terminal, periodic log lines otherwise.

The fraction done is measured in bytes of input (as stored, compressed or
not), so the ETA needs no counting pass over the input.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["ProgressInfo", "make_progress"]


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    """A snapshot handed to a progress callback.

    Attributes
    ----------
    done
        Records scored or rejected so far in this run.
    scored, rejected, skipped
        The same split (``skipped``: already done before a resume).
    fraction
        Fraction of the input bytes behind us, 0..1.
    seconds
        Since the run started.
    """

    done: int
    scored: int
    rejected: int
    skipped: int
    fraction: float
    seconds: float

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, from the byte fraction; ``None`` until it can be told."""
        if self.fraction <= 0.001 or self.seconds < 0.5:
            return None
        return max(self.seconds * (1.0 - self.fraction) / self.fraction, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "scored": self.scored, "rejected": self.rejected, "skipped": self.skipped,
                "fraction": round(self.fraction, 4), "seconds": round(self.seconds, 3),
                "rate": round(self.rate, 1), "eta": None if self.eta is None else round(self.eta, 1)}


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _Null:
    def update(self, info: ProgressInfo, *, force: bool = False) -> None:
        pass

    def close(self, info: ProgressInfo | None = None) -> None:
        pass


class _Callback(_Null):
    def __init__(self, fn: Callable[[ProgressInfo], Any], interval: float) -> None:
        self.fn = fn
        self.interval = interval
        self.last = 0.0

    def update(self, info: ProgressInfo, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            self.fn(info)

    def close(self, info: ProgressInfo | None = None) -> None:
        if info is not None:
            self.fn(info)


class _Log(_Null):
    """``replyguard score: 52,113 replies (3 rejected), 52% of input, 2,310 replies/s, ETA 00:21``."""

    def __init__(self, stream: IO[str], interval: float) -> None:
        self.stream = stream
        self.interval = interval
        self.last = time.monotonic()

    def update(self, info: ProgressInfo, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        skipped = f", {info.skipped:,} already done" if info.skipped else ""
        print(f"replyguard score: {info.done:,} replies ({info.rejected:,} rejected{skipped}), "
              f"{info.fraction:.0%} of input, {info.rate:,.0f} replies/s, ETA {_hms(info.eta)}",
              file=self.stream, flush=True)


class _Bar(_Null):
    """``scoring  52%|██████▏    | 52,113 replies  2,310/s  ETA 00:21  rejects 3``, redrawn in place."""

    def __init__(self, stream: IO[str], interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.last = 0.0
        self.drawn = False

    def update(self, info: ProgressInfo, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        width = shutil.get_terminal_size((80, 20)).columns
        tail = (f" {info.done:,} replies  {info.rate:,.0f}/s  ETA {_hms(info.eta)}"
                + (f"  rejects {info.rejected:,}" if info.rejected else ""))
        head = f"scoring {info.fraction:4.0%}|"
        bar_w = max(width - len(head) - len(tail) - 2, 10)
        filled = info.fraction * bar_w
        full = int(filled)
        part = " ▏▎▍▌▋▊▉"[int((filled - full) * 8)] if full < bar_w else ""
        bar = ("█" * full + part).ljust(bar_w)
        self.stream.write(f"\r{head}{bar}|{tail}"[: width + 1])
        self.stream.flush()
        self.drawn = True

    def close(self, info: ProgressInfo | None = None) -> None:
        if info is not None:
            self.update(info, force=True)
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def make_progress(mode: str | Callable[[ProgressInfo], Any] | None, *, stream: IO[str] | None = None,
                  interval: float = 10.0) -> _Null:
    """A progress reporter.

    Parameters
    ----------
    mode
        ``"auto"`` (a bar when ``stream`` is a terminal, else log lines),
        ``"bar"``, ``"log"``, ``"none"`` / ``None``, or a callable that receives a
        :class:`ProgressInfo` every ``interval`` seconds and once at the end.
    stream
        Where to write (default: stderr).
    interval
        Seconds between log lines or callback calls.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> p = make_progress("log", stream=out)
    >>> p.update(ProgressInfo(done=10, scored=9, rejected=1, skipped=0, fraction=0.5, seconds=2.0), force=True)
    >>> out.getvalue()
    'replyguard score: 10 replies (1 rejected), 50% of input, 5 replies/s, ETA 00:02\\n'
    """
    if mode is None or mode == "none":
        return _Null()
    if callable(mode):
        return _Callback(mode, interval)
    stream = stream if stream is not None else sys.stderr
    if mode == "auto":
        isatty = getattr(stream, "isatty", None)
        mode = "bar" if isatty is not None and isatty() else "log"
    if mode == "bar":
        return _Bar(stream)
    if mode == "log":
        return _Log(stream, interval)
    raise ValueError(f"progress {mode!r} is not one of 'auto', 'bar', 'log', 'none' or a callable")
