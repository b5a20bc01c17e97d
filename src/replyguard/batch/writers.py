"""Output rows, the output and rejects files, resume bookkeeping, and the dask parts folder.

The output has one row per scored record, in input order, with the columns
:data:`OUTPUT_COLUMNS`; the rejects file (JSONL) has one row per rejected
record. Rows are written a batch at a time and flushed, so an interrupted run
leaves at most one partial last line, which ``resume`` cuts off before it
appends.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._types import BatchUsageError

if TYPE_CHECKING:
    from ..verdict import Verdict

__all__ = [
    "OUTPUT_COLUMNS",
    "OUTPUT_FORMATS",
    "REJECT_COLUMNS",
    "DoneSet",
    "LineWriter",
    "PartsFolder",
    "csv_line",
    "default_rejects_path",
    "evidence_ids",
    "jsonl_line",
    "output_format",
    "reject_line",
    "row_dict",
    "scan_done",
]

#: The columns of the output, in order.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "id", "file", "line", "index", "intent", "do_not_email", "score", "needs_review", "evidence", "language",
)
#: The columns of the rejects file.
REJECT_COLUMNS: tuple[str, ...] = ("file", "line", "index", "id", "reason", "excerpt")
#: Output formats and their suffixes.
OUTPUT_FORMATS: dict[str, tuple[str, ...]] = {"jsonl": (".jsonl", ".ndjson", ".json"), "csv": (".csv",)}
_EVIDENCE_SOURCES = frozenset(("rule", "veto", "header"))
MANIFEST = "manifest.json"
MANIFEST_VERSION = "replyguard.batch.manifest.v1"
_PART = re.compile(r"^part-\d{5,}\.(jsonl|csv|rejects\.jsonl)$")


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``"jsonl"`` or ``"csv"``: ``fmt`` if given, else told from the suffix of ``path``.

    >>> output_format("verdicts.csv"), output_format("out/", "jsonl")
    ('csv', 'jsonl')
    """
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise BatchUsageError(f"output format {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    for name, suffixes in OUTPUT_FORMATS.items():
        if suffix in suffixes:
            return name
    raise BatchUsageError(
        f"cannot tell the output format from {os.fspath(path)!r}; name the output *.jsonl or *.csv, "
        "or pass --format jsonl|csv"
    )


def default_rejects_path(output: str | os.PathLike[str]) -> Path:
    """``out.jsonl`` -> ``out.rejects.jsonl``; ``out.csv`` -> ``out.rejects.jsonl``."""
    p = Path(output)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.rejects.jsonl")


# -- rows -----------------------------------------------------------------------------------------

def evidence_ids(v: Verdict) -> list[str]:
    """Ids of the rules, vetoes and headers behind a verdict (model n-grams are left out)."""
    return [e.id for e in v.evidence if e.source in _EVIDENCE_SOURCES]


def row_dict(rid: Any, file: str, line: int | None, index: int, v: Verdict) -> dict[str, Any]:
    """One output row as a dict with the keys :data:`OUTPUT_COLUMNS`."""
    return {
        "id": rid,
        "file": file,
        "line": line,
        "index": index,
        "intent": v.intent.value,
        "do_not_email": v.do_not_email,
        "score": round(float(v.score), 6),
        "needs_review": v.needs_review,
        "evidence": evidence_ids(v),
        "language": v.language,
    }


def _json_default(o: Any) -> Any:
    return str(o)


def jsonl_line(rid: Any, file: str, line: int | None, index: int, v: Verdict, *, full: bool = False) -> str:
    """One JSONL output line (with its newline). ``full`` adds the whole verdict as ``verdict``."""
    d = row_dict(rid, file, line, index, v)
    if full:
        d["verdict"] = v.to_dict()
    return json.dumps(d, ensure_ascii=False, default=_json_default) + "\n"


class _CsvLine:
    def __init__(self) -> None:
        self.buf = io.StringIO()
        self.w = csv.writer(self.buf, lineterminator="\n")

    def __call__(self, values: Sequence[Any]) -> str:
        self.buf.seek(0)
        self.buf.truncate()
        self.w.writerow(values)
        return self.buf.getvalue()


_csv = _CsvLine()


def _csv_value(x: Any) -> Any:
    if x is None:
        return ""
    if x is True:
        return "true"
    if x is False:
        return "false"
    return x


def csv_line(rid: Any, file: str, line: int | None, index: int, v: Verdict, *, full: bool = False) -> str:
    """One CSV output line (with its newline); evidence ids are joined by spaces."""
    return _csv([
        _csv_value(rid), file, _csv_value(line), index, v.intent.value, _csv_value(v.do_not_email),
        round(float(v.score), 6), _csv_value(v.needs_review), " ".join(evidence_ids(v)), v.language,
    ])


def csv_header() -> str:
    return _csv(list(OUTPUT_COLUMNS))


def reject_line(file: str, line: int | None, index: int, rid: Any, reason: str, excerpt: str) -> str:
    """One rejects-file line (JSONL, with its newline)."""
    return json.dumps({"file": file, "line": line, "index": index, "id": rid, "reason": reason,
                       "excerpt": excerpt}, ensure_ascii=False, default=_json_default) + "\n"


# -- resume ---------------------------------------------------------------------------------------

class DoneSet:
    """The records already in an output: a bitmap per file, one bit per record index."""

    def __init__(self) -> None:
        self._bits: dict[str, bytearray] = {}
        self.count = 0

    def add(self, file: str, index: int) -> None:
        bits = self._bits.get(file)
        if bits is None:
            bits = self._bits[file] = bytearray()
        byte, bit = divmod(index, 8)
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits) + len(bits) // 2))
        if not bits[byte] & (1 << bit):
            bits[byte] |= 1 << bit
            self.count += 1

    def has(self, file: str, index: int) -> bool:
        bits = self._bits.get(file)
        if bits is None:
            return False
        byte, bit = divmod(index, 8)
        return byte < len(bits) and bool(bits[byte] & (1 << bit))

    def __len__(self) -> int:
        return self.count


def _cut_partial_tail(path: Path) -> None:
    """Cut a partial last line (an interrupted write) off the file; whole lines stay."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "r+b") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        pos = size
        keep = 0
        while pos > 0:  # read backwards in blocks until the last newline
            start = max(pos - (1 << 16), 0)
            fh.seek(start)
            block = fh.read(pos - start)
            k = block.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        fh.truncate(keep)


def _not_ours(path: Path, lineno: int, what: str) -> BatchUsageError:
    return BatchUsageError(
        f"cannot resume: line {lineno} of the {what} {str(path)!r} is not a row written by "
        "replyguard score; give a new output, or --overwrite to start again"
    )


def _scan_jsonl(path: Path, done: DoneSet, what: str) -> int:
    _cut_partial_tail(path)
    n = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                done.add(obj["file"], int(obj["index"]))
            except (ValueError, KeyError, TypeError):
                raise _not_ours(path, lineno, what) from None
            n += 1
    return n


class _Lines:
    """Decoded lines of a binary file for ``csv.reader``, with the byte offset consumed."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._it = iter(fh)
        self.offset = 0
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._it)
        self.offset += len(raw)
        line = raw.decode("utf-8", errors="replace")
        self.taken.append(line)
        return line


def _scan_csv(path: Path, done: DoneSet) -> int:
    _cut_partial_tail(path)
    size = path.stat().st_size
    fi, ii = OUTPUT_COLUMNS.index("file"), OUTPUT_COLUMNS.index("index")
    n = 0
    with open(path, "rb") as fh:
        feed = _Lines(fh)
        rdr = csv.reader(feed)
        try:
            header = next(rdr)
        except StopIteration:
            return 0
        if tuple(header) != OUTPUT_COLUMNS:
            raise BatchUsageError(
                f"cannot resume: {str(path)!r} does not start with the header replyguard score writes "
                f"({','.join(OUTPUT_COLUMNS)}); give a new output, or --overwrite to start again"
            )
        good_end = feed.offset
        while True:
            feed.taken.clear()
            try:
                row: list[str] | None = next(rdr)
            except StopIteration:
                break
            except csv.Error:
                row = None
            last = feed.offset >= size
            ok = row is not None and len(row) == len(OUTPUT_COLUMNS)
            if ok and last and row is not None:
                # a cut inside a quoted field can still parse: the row must be what we would write
                ok = _csv(row) == "".join(feed.taken)
            if not ok:
                if last:
                    break
                raise _not_ours(path, rdr.line_num, "output")
            assert row is not None
            try:
                done.add(row[fi], int(row[ii]))
            except ValueError:
                raise _not_ours(path, rdr.line_num, "output") from None
            good_end = feed.offset
            n += 1
    if good_end < size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return n


def scan_done(output: Path, fmt: str, rejects: Path) -> tuple[DoneSet, int, int]:
    """What an interrupted run already wrote: ``(done, n_scored, n_rejected)``.

    Partial last lines of both files are cut off, so appending cannot duplicate
    or corrupt a row.
    """
    done = DoneSet()
    scored = rejected = 0
    if output.is_file():
        scored = _scan_csv(output, done) if fmt == "csv" else _scan_jsonl(output, done, "output")
    if rejects.is_file():
        rejected = _scan_jsonl(rejects, done, "rejects file")
    return done, scored, rejected


# -- files ----------------------------------------------------------------------------------------

class LineWriter:
    """Appends whole lines to a file, a batch per ``write`` call, flushed each time.

    Opened lazily on the first write (a rejects file exists only when there are rejects).
    """

    def __init__(self, path: Path, *, header: str | None = None, append: bool = False) -> None:
        self.path = path
        self.header = header
        self.append = append
        self._fh: IO[str] | None = None
        self.lines = 0

    def _open(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not (self.append and self.path.is_file() and self.path.stat().st_size > 0)
        fh = open(self.path, "w" if not self.append else "a", encoding="utf-8", newline="")  # noqa: SIM115
        if fresh and self.header:
            fh.write(self.header)
        self._fh = fh
        return fh

    def open(self) -> None:
        if self._fh is None:
            self._open().flush()

    def write(self, lines: Iterable[str]) -> None:
        text = "".join(lines)
        if not text:
            return
        fh = self._fh or self._open()
        fh.write(text)
        fh.flush()
        self.lines += text.count("\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


class PartsFolder:
    """The dask engine's output: ``part-00000.jsonl`` ... one per partition, rejects in
    ``part-00000.rejects.jsonl`` (when a partition has any) and ``manifest.json``.

    The manifest is rewritten (atomically) at most every ``manifest_interval``
    seconds as parts are written, and at the end, so an interrupted run can be
    resumed: parts listed in it are kept, the others (at most the last few
    seconds' worth) are scored again.
    """

    manifest_interval = 2.0

    def __init__(self, directory: Path, *, fmt: str, plan: dict[str, Any], resume: bool, overwrite: bool) -> None:
        self.dir = directory
        self.fmt = fmt
        self.plan = plan
        self.parts: dict[int, dict[str, Any]] = {}
        self.previous: dict[int, dict[str, Any]] = {}
        self._last_manifest = 0.0
        self.manifest_path = directory / MANIFEST
        if directory.exists() and not directory.is_dir():
            raise BatchUsageError(f"output {str(directory)!r} is a file; the dask engine writes a folder of "
                                  "parts and a manifest: give a folder name")
        existing = [p for p in directory.iterdir()] if directory.is_dir() else []
        if resume and self.manifest_path.is_file():
            try:
                m = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except ValueError:
                raise BatchUsageError(f"cannot resume: {str(self.manifest_path)!r} is not valid JSON; "
                                      "use --overwrite to start again") from None
            if m.get("manifest") != MANIFEST_VERSION or m.get("plan") != plan or m.get("format") != fmt:
                raise BatchUsageError(
                    f"cannot resume into {str(directory)!r}: it was made from other inputs or options "
                    "(files, sizes, fields, partition size or format differ); give a new output folder, "
                    "or --overwrite to start again"
                )
            for entry in m.get("parts", []):
                if (directory / entry["name"]).is_file() and (
                    entry.get("rejects") is None or (directory / entry["rejects"]).is_file()
                ):
                    self.previous[int(entry["part"])] = entry
        elif existing and not resume:
            if not overwrite:
                raise BatchUsageError(
                    f"output folder {str(directory)!r} exists and is not empty; pass --resume to continue "
                    "an interrupted run, or --overwrite to replace it"
                )
            for p in existing:
                if p.name == MANIFEST or _PART.match(p.name):
                    p.unlink()
        directory.mkdir(parents=True, exist_ok=True)

    def part_name(self, k: int) -> str:
        return f"part-{k:05d}.{self.fmt}"

    def done(self, k: int, first: list[Any], read: int) -> dict[str, Any] | None:
        """The manifest entry of partition ``k`` when a previous run completed it."""
        e = self.previous.get(k)
        if e is not None and e.get("first") == first and e.get("read") == read:
            self.parts[k] = e
            return e
        return None

    def write_part(self, k: int, lines: list[str], reject_lines: list[str], entry: dict[str, Any]) -> dict[str, Any]:
        name = self.part_name(k)
        header = csv_header() if self.fmt == "csv" else ""
        _atomic_write(self.dir / name, header + "".join(lines))
        rejects = None
        if reject_lines:
            rejects = f"part-{k:05d}.rejects.jsonl"
            _atomic_write(self.dir / rejects, "".join(reject_lines))
        else:
            stale = self.dir / f"part-{k:05d}.rejects.jsonl"
            if stale.exists():
                stale.unlink()
        entry = {"part": k, "name": name, "rejects": rejects, **entry}
        self.parts[k] = entry
        if time.monotonic() - self._last_manifest >= self.manifest_interval:
            self.write_manifest(complete=False)
        return entry

    def write_manifest(self, *, complete: bool, totals: dict[str, Any] | None = None,
                       extra: dict[str, Any] | None = None) -> None:
        m: dict[str, Any] = {
            "manifest": MANIFEST_VERSION,
            "complete": complete,
            "format": self.fmt,
            "columns": list(OUTPUT_COLUMNS),
            "plan": self.plan,
            **(extra or {}),
            "parts": [self.parts[k] for k in sorted(self.parts)],
        }
        if totals is not None:
            m["totals"] = totals
        self._last_manifest = time.monotonic()
        _atomic_write(self.manifest_path, json.dumps(m, ensure_ascii=False, indent=1, default=_json_default) + "\n")


def read_parts(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The output rows of a parts folder, in input order (parts in manifest order).

    >>> import tempfile, pathlib, json
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "part-00000.jsonl").write_text(json.dumps({"id": 1}) + "\\n")
    >>> _ = (d / "manifest.json").write_text(json.dumps({"format": "jsonl", "parts": [{"name": "part-00000.jsonl"}]}))
    >>> read_parts(d)
    [{'id': 1}]
    """
    d = Path(directory)
    m = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    rows: list[dict[str, Any]] = []
    for entry in m["parts"]:
        with open(d / entry["name"], encoding="utf-8", newline="") as fh:
            if m.get("format") == "csv":
                rows.extend(dict(r) for r in csv.DictReader(fh))
            else:
                rows.extend(json.loads(line) for line in fh if line.strip())
    return rows
