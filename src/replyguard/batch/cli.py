"""The ``score`` command: ``add_parser(subparsers)`` adds it to a ``replyguard`` parser,
``run(args) -> int`` runs it (0: all scored, 1: some rejected or a failure, 2: bad usage)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ModelFileError, ModelNotFoundError, ReplyGuardError
from ._types import BatchUsageError
from .readers import INPUT_FORMATS
from .writers import OUTPUT_FORMATS

__all__ = ["add_parser", "main", "run"]

_DESCRIPTION = """\
Score archives of replies: JSONL, CSV/TSV, mbox, folders of .eml messages and
Parquet, gzip-compressed or not, named as files, folders or glob patterns.
Writes one row per reply, in input order (JSONL or CSV), and every record that
cannot be read to a rejects file. Exit status: 0 all scored, 1 some rejected
(or a failure), 2 bad usage."""

_EPILOG = """\
examples:
  replyguard score archive/*.jsonl.gz -o verdicts.jsonl
  replyguard score crm_export.csv --text-column body --id-column reply_id -o verdicts.csv
  replyguard score Inbox.mbox mail/ -o verdicts.jsonl --jobs 8
  replyguard score 'archive/**/*.jsonl.gz' -o out/ --engine dask --scheduler tcp://10.0.0.5:8786
  replyguard score archive.jsonl -o verdicts.jsonl --resume"""


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _non_negative(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _jobs(text: str) -> int:
    n = int(text)
    if n == 0:
        raise argparse.ArgumentTypeError("must not be 0: give a number of processes, or -1 for all cores")
    return n


def _seconds(text: str) -> float:
    x = float(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {x}")
    return x


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``score`` options to a parser."""
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files, folders of .eml files or glob patterns (quote them); .gz is read transparently")
    p.add_argument("-o", "--output", required=True,
                   help="output file (.jsonl or .csv); with --engine dask a folder of parts plus manifest.json")
    g = p.add_argument_group("formats")
    g.add_argument("--format", choices=list(OUTPUT_FORMATS), help="output format (default: from the output's suffix)")
    g.add_argument("--input-format", choices=list(INPUT_FORMATS),
                   help="read every input as this format (default: from each file's suffix)")
    g.add_argument("--text-field", default="text", metavar="F", help="JSONL key of the reply text (default: text)")
    g.add_argument("--id-field", default="id", metavar="F", help="JSONL key of the record id (default: id)")
    g.add_argument("--text-column", metavar="C", help="CSV/Parquet column of the reply text (default: --text-field)")
    g.add_argument("--id-column", metavar="C", help="CSV/Parquet column of the record id (default: --id-field)")
    g.add_argument("--full", action="store_true",
                   help="JSONL output: add the whole verdict (all scores, evidence with offsets, flags)")
    g = p.add_argument_group("scoring")
    g.add_argument("--model", metavar="DIR", help="model directory (default: the packaged model)")
    g.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes (default: all cores; 1 scores in this process); "
                        "with --engine dask and no --scheduler, the local cluster's workers")
    g.add_argument("--batch-size", type=_positive, metavar="N",
                   help="records per batch sent to a worker (default 1000) or per dask partition (default 2000)")
    g.add_argument("--engine", choices=["joblib", "dask"], default="joblib",
                   help="joblib: processes on this machine (default); dask: dask.distributed "
                        "(needs replyguard[dask]), one output part per partition")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: start a local cluster)")
    g = p.add_argument_group("runs and rejects")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: skip records already in the output or the rejects file")
    g.add_argument("--overwrite", action="store_true", help="replace an existing output and its rejects file")
    g.add_argument("--rejects", metavar="PATH",
                   help="rejects file, JSONL (default: OUTPUT_NAME.rejects.jsonl next to the output)")
    g.add_argument("--max-rejects", type=_non_negative, metavar="N",
                   help="stop (exit 1) as soon as more than N records are rejected")
    g = p.add_argument_group("opt-out ledger")
    g.add_argument("--ledger", metavar="PATH_OR_URL",
                   help="feed each verdict into the opt-out ledger (replyguard.optout) at this path or URL")
    g.add_argument("--contact-field", metavar="F",
                   help="field, column or email header holding the contact id (emails: From by default)")
    g = p.add_argument_group("output on the terminal")
    g.add_argument("--progress", choices=["auto", "bar", "log", "none"], default="auto",
                   help="a bar on a terminal, log lines otherwise (default: auto)")
    g.add_argument("--log-interval", type=_seconds, default=10.0, metavar="SECONDS",
                   help="seconds between progress log lines (default: 10)")
    g.add_argument("--json", action="store_true", help="print the closing summary as JSON")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary; errors only")
    return p


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``score`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Examples
    --------
    >>> ap = argparse.ArgumentParser(prog="replyguard")
    >>> sub = ap.add_subparsers(dest="command")
    >>> _ = add_parser(sub)
    >>> args = ap.parse_args(["score", "a.jsonl", "b.csv", "-o", "out.csv", "--jobs", "4", "--resume"])
    >>> args.inputs, args.output, args.jobs, args.resume, args.engine
    (['a.jsonl', 'b.csv'], 'out.csv', 4, True, 'joblib')
    """
    p = subparsers.add_parser(
        "score", help="score archives of replies (JSONL, CSV, mbox, .eml, Parquet) into JSONL or CSV",
        description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return configure(p)


def _err(message: str) -> None:
    print(f"replyguard score: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``score`` with arguments parsed by a parser :func:`add_parser` built; return the
    exit status: 0 all scored, 1 some rejected or a failure, 2 bad usage, 130 interrupted.

    Errors are printed to stderr as ``replyguard score: error: ...``, naming the
    input or option and the fix.

    Examples
    --------
    >>> run(build_parser().parse_args(["score", "no-such-file.jsonl", "-o", "out.jsonl"]))
    2
    """
    from .api import score_files

    if args.scheduler and args.engine != "dask":
        _err("--scheduler needs --engine dask")
        return 2
    try:
        summary = score_files(
            args.inputs, args.output, format=args.format, input_format=args.input_format,
            text_field=args.text_field, id_field=args.id_field, text_column=args.text_column,
            id_column=args.id_column, model=args.model, jobs=args.jobs, engine=args.engine,
            scheduler=args.scheduler, batch_size=args.batch_size, resume=args.resume, overwrite=args.overwrite,
            rejects=args.rejects, max_rejects=args.max_rejects, ledger=args.ledger,
            contact_field=args.contact_field, full=args.full,
            progress="none" if args.quiet else args.progress, progress_interval=args.log_interval,
        )
    except (BatchUsageError, ModelNotFoundError, ModelFileError) as exc:
        _err(str(exc))
        return 2
    except ReplyGuardError as exc:  # e.g. the opt-out ledger refusing its path or URL
        _err(str(exc))
        return 2 if isinstance(exc, (ValueError, FileNotFoundError)) else 1
    except ConnectionError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        print("replyguard score: interrupted; run the same command with --resume to continue", file=sys.stderr)
        return 130
    except OSError as exc:
        _err(str(exc))
        return 1
    if not args.quiet:
        if args.json:
            print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        else:
            print(summary.format())
    return summary.exit_status


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with the ``score`` command (``python -m replyguard.batch score ...``)."""
    ap = argparse.ArgumentParser(prog="replyguard")
    sub = ap.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m replyguard.batch score INPUT... -o OUTPUT``; returns the exit status.

    >>> main(["score", "replies.jsonl"])  # no -o: argparse's usage error
    2
    """
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    return run(args)
