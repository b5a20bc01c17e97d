"""Streaming readers for reply archives: JSONL, CSV, mbox, folders of ``.eml``, Parquet.

Every reader yields one *item* per record, in file order, holding only that
record: memory does not grow with the size of a file. Gzip is read
transparently (by the ``.gz`` suffix or the gzip magic bytes). A record that
cannot be read (malformed JSON, a missing text field, bytes that are not
UTF-8, a broken message) becomes a *reject* item naming its file, line or
index and the reason, in its place in the stream; nothing is dropped.

Items are plain tuples (they cross process boundaries by the million)::

    (kind, file, line, index, id, contact, payload, pos)

``kind`` is :data:`TEXT` (payload: the reply text), :data:`EMAIL` (payload: the
raw message bytes; the worker parses it) or :data:`REJECT` (payload:
``(reason, excerpt)``). ``pos`` is how far into the whole input the record ends,
in bytes of the files as stored, for progress.
"""

from __future__ import annotations

import csv
import glob
import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ._types import BatchUsageError

__all__ = [
    "EMAIL",
    "INPUT_FORMATS",
    "REJECT",
    "TEXT",
    "ReadOptions",
    "Source",
    "expand_inputs",
    "iter_items",
    "read_source",
]

TEXT, EMAIL, REJECT = "t", "e", "r"

#: Input formats and the file suffixes that select them (``.gz`` may follow any).
INPUT_FORMATS: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".ndjson", ".json"),
    "csv": (".csv", ".tsv"),
    "mbox": (".mbox", ".mbx"),
    "eml": (".eml",),
    "parquet": (".parquet", ".pq"),
}
_BY_SUFFIX = {s: fmt for fmt, suffixes in INPUT_FORMATS.items() for s in suffixes}
_GLOB_CHARS = re.compile(r"[*?\[]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FROM_ESCAPED = re.compile(rb"^>(>*From )")
_EXCERPT = 200
_CSV_FIELD_LIMIT = 1 << 24


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Which fields hold what.

    Attributes
    ----------
    text_field, id_field
        JSONL keys of the reply text and the record id.
    text_column, id_column
        CSV and Parquet columns of the reply text and the record id.
    contact_field
        Where the contact id is, for the opt-out ledger: a JSONL key, a CSV or
        Parquet column, or an email header (``From`` when ``None`` and emails
        are read; its address is used).
    """

    text_field: str = "text"
    id_field: str = "id"
    text_column: str = "text"
    id_column: str = "id"
    contact_field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_field": self.text_field,
            "id_field": self.id_field,
            "text_column": self.text_column,
            "id_column": self.id_column,
            "contact_field": self.contact_field,
        }


@dataclass(frozen=True, slots=True)
class Source:
    """One input file.

    Attributes
    ----------
    path
        Where it is.
    name
        How it is named in the output ``file`` column (the path as given, or
        under the folder or glob as given).
    format
        One of :data:`INPUT_FORMATS`.
    gzip
        Whether it is gzip-compressed.
    size
        Its size in bytes as stored.
    group
        The position of the command-line input it came from: a folder of
        ``.eml`` files is one group, so the dask engine partitions it as one input.
    """

    path: Path
    name: str
    format: str
    gzip: bool
    size: int
    group: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "gzip": self.gzip, "size": self.size}


# -- finding the inputs ---------------------------------------------------------------------------

def _is_gzip(path: Path) -> bool:
    if path.suffix.lower() == ".gz":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _format_of(path: Path, forced: str | None, gz: bool) -> str:
    if forced:
        return forced
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _BY_SUFFIX:
        return _BY_SUFFIX[suffixes[-1]]
    # mbox files often have no suffix (Thunderbird's "Inbox"): sniff the separator line
    try:
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            head = fh.read(5)
    except (OSError, EOFError, zlib.error):
        head = b""
    if head == b"From ":
        return "mbox"
    known = ", ".join(f"{fmt} ({' '.join(s)})" for fmt, s in INPUT_FORMATS.items())
    raise BatchUsageError(
        f"cannot tell the format of input {str(path)!r} from its name; name it with one of "
        f"the suffixes {known}, optionally followed by .gz, or pass --input-format"
    )


def expand_inputs(inputs: Iterable[str | os.PathLike[str]], *, input_format: str | None = None) -> list[Source]:
    """Resolve files, folders of ``.eml`` files and glob patterns into :class:`Source` s.

    Inputs keep their order; the files a folder or a pattern names are sorted.
    A file named twice is read once.

    Parameters
    ----------
    inputs
        Paths, folders (every ``.eml`` and ``.eml.gz`` below them) and glob
        patterns (``archive/2023-*.jsonl.gz``, ``mail/**/*.eml``).
    input_format
        Read every file as this format instead of telling it from the suffix.

    Raises
    ------
    BatchUsageError
        An input does not exist, a pattern matches nothing, a folder holds no
        ``.eml`` file or a file's format cannot be told.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.jsonl").write_text('{"text": "STOP"}\\n')
    >>> [(s.format, s.gzip) for s in expand_inputs([str(d / "*.jsonl")])]
    [('jsonl', False)]
    """
    if input_format is not None and input_format not in INPUT_FORMATS:
        raise BatchUsageError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
    out: list[Source] = []
    seen: set[Path] = set()

    def add(path: Path, name: str, group: int, forced: str | None) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        gz = _is_gzip(path)
        out.append(Source(path, name, _format_of(path, forced, gz), gz, path.stat().st_size, group))

    for group, given in enumerate(inputs):
        text = os.fspath(given)
        p = Path(text)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.is_file() and (f.name.lower().endswith((".eml", ".eml.gz")))
            )
            if not files:
                raise BatchUsageError(
                    f"folder {text!r} holds no .eml files; give a folder of .eml messages, "
                    "or name JSONL, CSV, mbox or Parquet files (or a glob such as 'folder/*.jsonl')"
                )
            for f in files:
                add(f, str(f), group, input_format or "eml")
        elif p.is_file():
            add(p, text, group, input_format)
        elif _GLOB_CHARS.search(text):
            matches = sorted(m for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                raise BatchUsageError(f"input pattern {text!r} matches no file; check the path and the quoting")
            for m in matches:
                add(Path(m), m, group, input_format)
        else:
            raise BatchUsageError(f"input {text!r} does not exist")
    if not out:
        raise BatchUsageError("no input given: name at least one file, folder or glob pattern")
    return out


def check_sources(sources: Sequence[Source], options: ReadOptions, *,
                  required: Sequence[tuple[str, str]] = ()) -> None:
    """Check what can be checked before scoring starts: CSV headers and Parquet schemas
    name the text column (and the ``required`` ``(column, option)`` pairs: an id or
    contact column the caller named), and the Parquet reader is installed.

    Raises
    ------
    BatchUsageError
        Naming the file, the missing column, the columns it has and the option to pass.
    """
    wanted = [(options.text_column, "--text-column"), *required]
    for s in sources:
        if s.format == "csv":
            header = _csv_header(s)
            for col, opt in wanted:
                if header is not None and col not in header:
                    raise BatchUsageError(
                        f"CSV input {s.name!r} has no column {col!r} (its columns: "
                        f"{', '.join(repr(h) for h in header[:20])}); pass {opt} NAME"
                    )
        elif s.format == "parquet":
            if s.gzip:
                raise BatchUsageError(f"Parquet input {s.name!r} is gzip-compressed; Parquet compresses "
                                      "its own columns, decompress the file first")
            pq = _pyarrow_parquet()
            try:
                schema = pq.read_schema(s.path)
            except Exception as exc:
                raise BatchUsageError(f"Parquet input {s.name!r} cannot be read: {exc}") from None
            for col, opt in wanted:
                if col not in schema.names:
                    raise BatchUsageError(
                        f"Parquet input {s.name!r} has no column {col!r} (its columns: "
                        f"{', '.join(repr(n) for n in schema.names[:20])}); pass {opt} NAME"
                    )
            import pyarrow as pa

            typ = schema.field(options.text_column).type
            if not (pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ)):
                raise BatchUsageError(f"Parquet input {s.name!r}: column {options.text_column!r} holds {typ}, "
                                      "not strings; pass --text-column with the column of reply text")


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BatchUsageError(
            "reading Parquet needs pyarrow, which is not installed: pip install 'replyguard[parquet]'"
        ) from None
    return pq


# -- opening files --------------------------------------------------------------------------------

class _Opened:
    """A binary stream of a file's content (decompressed) and the raw file for positions."""

    def __init__(self, source: Source) -> None:
        self.raw: IO[bytes] = open(source.path, "rb")  # noqa: SIM115 - closed in close()
        self.stream: IO[bytes] = (
            gzip.GzipFile(fileobj=self.raw, mode="rb") if source.gzip else self.raw  # type: ignore[assignment]
        )

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _excerpt(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    raw = raw.rstrip("\r\n")
    return raw if len(raw) <= _EXCERPT else raw[:_EXCERPT] + "..."


def _broken_stream(source: Source, line: int | None, index: int, exc: BaseException, pos: int) -> tuple:
    after = f"after line {line - 1}" if line else f"after record {index}"
    reason = (f"the gzip stream is truncated or corrupt {after} ({exc}); "
              "the rest of the file could not be read")
    return (REJECT, source.name, line, index, None, None, (reason, ""), pos)


def _clean_id(value: Any) -> Any:
    """JSON-safe ids: lone surrogates (from ``\\udXXX`` escapes or 8-bit headers) are replaced."""
    if isinstance(value, str) and _SURROGATE.search(value):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


# -- JSONL ----------------------------------------------------------------------------------------

def _read_jsonl(source: Source, options: ReadOptions, base: int) -> Iterator[tuple]:
    name = source.name
    tf, idf, cf = options.text_field, options.id_field, options.contact_field
    index = 0
    lineno = 0
    with _Opened(source) as f:
        tell = f.tell
        try:
            for raw in f.stream:
                lineno += 1
                if not raw.strip():
                    continue
                i = index
                index += 1
                try:
                    s = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield (REJECT, name, lineno, i, None, None,
                           (f"undecodable bytes: not UTF-8 at byte {exc.start} of the line", _excerpt(raw)),
                           base + tell())
                    continue
                try:
                    obj = json.loads(s)
                except json.JSONDecodeError as exc:
                    yield (REJECT, name, lineno, i, None, None,
                           (f"malformed JSON: {exc.msg} at character {exc.pos + 1}", _excerpt(s)), base + tell())
                    continue
                if type(obj) is not dict:
                    yield (REJECT, name, lineno, i, None, None,
                           (f"expected a JSON object, got {type(obj).__name__}", _excerpt(s)), base + tell())
                    continue
                rid = obj.get(idf)
                text = obj.get(tf)
                if type(text) is not str:
                    why = (f"missing text field {tf!r}" if text is None
                           else f"text field {tf!r} is not a string (got {type(text).__name__})")
                    yield (REJECT, name, lineno, i, _clean_id(rid), None, (why, _excerpt(s)), base + tell())
                    continue
                if "\\u" in s and _SURROGATE.search(text):
                    yield (REJECT, name, lineno, i, _clean_id(rid), None,
                           (f"undecodable text: field {tf!r} holds a lone surrogate escape (\\ud800-\\udfff)",
                            _excerpt(s)), base + tell())
                    continue
                contact = obj.get(cf) if cf else None
                if "\\u" in s:
                    rid = _clean_id(rid)
                    contact = _clean_id(contact)
                yield (TEXT, name, lineno, i, rid, contact, text, base + tell())
        except _STREAM_ERRORS as exc:
            yield _broken_stream(source, lineno + 1, index, exc, base + source.size)


# -- CSV ------------------------------------------------------------------------------------------

def _csv_dialect(source: Source) -> str:
    suffixes = [s.lower() for s in source.path.suffixes if s.lower() != ".gz"]
    return "excel-tab" if suffixes and suffixes[-1] == ".tsv" else "excel"


def _csv_header(source: Source) -> list[str] | None:
    try:
        with _Opened(source) as f:
            for raw in f.stream:
                text = raw.decode("utf-8-sig", errors="replace")
                row = next(csv.reader([text], dialect=_csv_dialect(source)), [])
                if row:
                    return row
    except _STREAM_ERRORS:
        return None
    return None


class _LineFeed:
    """Decoded lines for ``csv.reader``, remembering the lines that were not UTF-8."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._it = iter(stream)
        self.bad: list[int] = []
        self.n = 0
        self.first = True

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        raw = next(self._it)
        self.n += 1
        if self.first:
            self.first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad.append(self.n)
            return raw.decode("utf-8", errors="replace")


def _read_csv(source: Source, options: ReadOptions, base: int) -> Iterator[tuple]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    name = source.name
    with _Opened(source) as f:
        feed = _LineFeed(f.stream)
        rdr = csv.reader(feed, dialect=_csv_dialect(source))
        tell = f.tell
        header: list[str] | None = None
        index = 0
        prev = 0  # lines consumed before the current row
        ti = ii = ci = -1
        while True:
            start = prev + 1
            try:
                row = next(rdr)
            except StopIteration:
                break
            except csv.Error as exc:
                end = feed.n
                prev = end
                if header is None:
                    raise BatchUsageError(f"CSV input {name!r}: the header line cannot be read ({exc})") from None
                yield (REJECT, name, start, index, None, None,
                       (f"malformed CSV (lines {start}-{end}): {exc}", ""), base + tell())
                index += 1
                continue
            except _STREAM_ERRORS as exc:
                yield _broken_stream(source, start, index, exc, base + source.size)
                return
            end = feed.n
            prev = end
            if not row:
                continue
            if header is None:
                header = row
                if options.text_column not in header:
                    raise BatchUsageError(
                        f"CSV input {name!r} has no column {options.text_column!r}; pass --text-column NAME")
                ti = header.index(options.text_column)
                ii = header.index(options.id_column) if options.id_column in header else -1
                ci = (header.index(options.contact_field)
                      if options.contact_field and options.contact_field in header else -1)
                continue
            i = index
            index += 1
            rid = row[ii] if 0 <= ii < len(row) else None
            if feed.bad and feed.bad[-1] >= start:
                bad = [n for n in feed.bad if n >= start]
                feed.bad.clear()
                yield (REJECT, name, start, i, rid, None,
                       (f"undecodable bytes: line {bad[0]} is not UTF-8", _excerpt(",".join(row))), base + tell())
                continue
            if len(row) != len(header):
                span = f"lines {start}-{end}" if end > start else f"line {start}"
                yield (REJECT, name, start, i, rid, None,
                       (f"malformed CSV row ({span}): {len(row)} fields, the header has {len(header)} "
                        "(an unescaped quote or delimiter?)", _excerpt(",".join(row))), base + tell())
                continue
            contact = row[ci] if ci >= 0 else None
            yield (TEXT, name, start, i, rid, contact, row[ti], base + tell())


# -- mbox -----------------------------------------------------------------------------------------

def _read_mbox(source: Source, options: ReadOptions, base: int) -> Iterator[tuple]:
    """Messages split on lines starting with ``From `` (as :mod:`mailbox` does); ``>From ``
    lines are unescaped. Text before the first separator is a rejected record."""
    name = source.name
    index = 0
    lineno = 0
    buf: list[bytes] = []
    start: int | None = None  # line of the current message's separator
    pre_line = 1  # first line of text before the first separator, if any

    def emit(end_pos: int) -> tuple:
        data = b"".join(buf)
        if start is None:
            return (REJECT, name, pre_line, index, None, None,
                    ("broken message: text before the first 'From ' separator line (not an mbox message)",
                     _excerpt(data)), end_pos)
        # the blank line that separates messages belongs to the file, not the message
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        return (EMAIL, name, start, index, None, None, data, end_pos)

    def pending() -> bool:
        return start is not None or any(b.strip() for b in buf)

    with _Opened(source) as f:
        tell = f.tell
        try:
            for raw in f.stream:
                lineno += 1
                if raw.startswith(b"From "):
                    if pending():
                        yield emit(base + tell())
                        index += 1
                    buf = []
                    start = lineno
                    continue
                if start is None and not buf:
                    if not raw.strip():
                        continue  # blank lines before the first message
                    pre_line = lineno
                if raw[:1] == b">" and _FROM_ESCAPED.match(raw):
                    raw = raw[1:]
                buf.append(raw)
        except _STREAM_ERRORS as exc:
            if pending():
                yield emit(base + tell())
                index += 1
            yield _broken_stream(source, lineno + 1, index, exc, base + source.size)
            return
        if pending():
            yield emit(base + source.size)


# -- .eml -----------------------------------------------------------------------------------------

def _read_eml(source: Source, options: ReadOptions, base: int) -> Iterator[tuple]:
    try:
        with _Opened(source) as f:
            data = f.stream.read()
    except _STREAM_ERRORS as exc:
        yield (REJECT, source.name, None, 0, None, None,
               (f"the gzip stream is truncated or corrupt ({exc})", ""), base + source.size)
        return
    if not data.strip():
        yield (REJECT, source.name, None, 0, None, None, ("broken message: the file is empty", ""),
               base + source.size)
        return
    yield (EMAIL, source.name, None, 0, None, None, data, base + source.size)


# -- Parquet --------------------------------------------------------------------------------------

def _read_parquet(source: Source, options: ReadOptions, base: int) -> Iterator[tuple]:
    pq = _pyarrow_parquet()
    name = source.name
    pf = pq.ParquetFile(source.path)
    names = set(pf.schema_arrow.names)
    tc = options.text_column
    cols = [tc]
    idc = options.id_column if options.id_column in names else None
    cc = options.contact_field if options.contact_field and options.contact_field in names else None
    for c in (idc, cc):
        if c and c not in cols:
            cols.append(c)
    total = max(pf.metadata.num_rows, 1)
    index = 0
    for batch in pf.iter_batches(batch_size=8192, columns=cols):
        texts = batch.column(tc).to_pylist()
        ids = batch.column(idc).to_pylist() if idc else [None] * len(texts)
        contacts = batch.column(cc).to_pylist() if cc else [None] * len(texts)
        for text, rid, contact in zip(texts, ids, contacts, strict=True):
            pos = base + (source.size * (index + 1)) // total
            if text is None:
                yield (REJECT, name, None, index, rid, None, (f"missing text: column {tc!r} is null", ""), pos)
            else:
                yield (TEXT, name, None, index, rid, None if contact is None else str(contact), text, pos)
            index += 1


_READERS = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "mbox": _read_mbox,
    "eml": _read_eml,
    "parquet": _read_parquet,
}


def read_source(source: Source, options: ReadOptions, *, base: int = 0) -> Iterator[tuple]:
    """The items of one file, in order (see the module docstring)."""
    return _READERS[source.format](source, options, base)


def iter_items(sources: Sequence[Source], options: ReadOptions) -> Iterator[tuple[int, tuple]]:
    """``(source ordinal, item)`` for every record of every source, in order."""
    base = 0
    for k, s in enumerate(sources):
        for item in read_source(s, options, base=base):
            yield k, item
        base += s.size
