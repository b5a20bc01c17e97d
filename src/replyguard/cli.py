"""The ``replyguard`` command line. ``main(argv) -> int``: 0 ok, 1 failure, 2 bad usage or input."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ReplyGuardError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="replyguard", description="Find opt-out requests and intents in email replies.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("classify", help="classify one reply and show the verdict with its evidence")
    c.add_argument("text", nargs="?", help="the reply text ('-' reads stdin)")
    c.add_argument("--file", help="read the reply from a file instead")
    c.add_argument("--email", action="store_true", help="the input is a whole email message (headers count)")
    c.add_argument("--json", action="store_true", help="print the verdict as JSON")
    c.add_argument("--model", help="model directory (default: the packaged model)")

    t = sub.add_parser("train", help="train a model on labelled JSONL data")
    t.add_argument("data", nargs="+", help="training JSONL files or folders")
    t.add_argument("-o", "--output", required=True, help="model directory to write")
    t.add_argument("--dev", nargs="+", help="dev JSONL (calibration and thresholds); default: a fixed 15%% of DATA")
    t.add_argument("--test", nargs="+", help="test JSONL: its metrics go into the model card")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--C", type=float, nargs="+", help="inverse regularisation strengths to try")
    t.add_argument("--target-recall", type=float, default=0.98, help="dev do-not-email recall the threshold keeps")

    e = sub.add_parser("evaluate", help="evaluate a model on labelled JSONL data")
    e.add_argument("data", nargs="+", help="labelled JSONL files or folders")
    e.add_argument("--model", help="model directory (default: the packaged model)")
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    e.add_argument("--report-dir", help="write report.json (and report.png with matplotlib) here")
    e.add_argument("--errors", type=int, default=20, help="how many errors to list (text view)")

    # batch scoring of archives (replyguard.batch) and the opt-out ledger (replyguard.optout)
    from .batch.cli import add_parser as add_score
    from .optout.cli import add_parsers as add_optout
    from .unsubscribe_cli import add_parser as add_serve

    add_score(sub)
    add_optout(sub)
    add_serve(sub)
    return ap


def _classifier(path: str | None) -> Any:
    from .classify import ReplyClassifier

    return ReplyClassifier.default() if path is None else ReplyClassifier.load(path)


def _print_verdict(v: Any) -> None:
    mark = "DO NOT EMAIL" if v.do_not_email else "may email"
    print(f"intent:        {v.intent.value}  ({mark})")
    print(f"score:         {v.score:.3f}  (threshold {v.threshold:.3f})"
          + ("  NEEDS REVIEW" if v.needs_review else ""))
    print("scores:        " + ", ".join(f"{k}={p:.2f}" for k, p in sorted(v.scores.items(), key=lambda kv: -kv[1])))
    print(f"language:      {v.language}")
    if v.flags:
        print(f"flags:         {', '.join(v.flags)}")
    reply = v.reply_text.replace("\n", " / ")
    print(f"reply text:    {reply[:200]}{'...' if len(reply) > 200 else ''}")
    if v.evidence:
        print("evidence:")
        for ev in v.evidence:
            where = f"[{ev.start}:{ev.end}]" if ev.start >= 0 else ""
            print(f"  {ev.source:6s} {ev.id:40s} {where:12s} {ev.text!r} weight={ev.weight:+.2f}")
    print(f"versions:      {v.model_version} / {v.ruleset_version}")


def _cmd_classify(args: argparse.Namespace) -> int:
    if args.file:
        raw = Path(args.file).read_bytes()
    elif args.text == "-" or (args.text is None and not sys.stdin.isatty()):
        raw = sys.stdin.buffer.read()
    elif args.text is not None:
        raw = args.text.encode("utf-8", errors="surrogatepass")
    else:
        print("replyguard classify: error: give TEXT, --file PATH or text on stdin", file=sys.stderr)
        return 2
    clf = _classifier(args.model)
    if args.email:
        v = clf.classify_email(raw)
    else:
        v = clf.classify(raw.decode("utf-8", errors="replace"))
    if args.json:
        print(json.dumps(v.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_verdict(v)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import hashlib

    from .corpus import load_records
    from .evaluate import evaluate
    from .model import save
    from .train import TrainConfig, fit

    records = load_records(args.data)
    if args.dev:
        train, dev = records, load_records(args.dev)
    else:
        train, dev = [], []
        for r in records:
            h = int(hashlib.sha256(r.text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            (dev if h < 0.15 else train).append(r)
    cfg = TrainConfig(seed=args.seed, target_recall=args.target_recall)
    if args.C:
        cfg.C_grid = tuple(args.C)
    t0 = time.perf_counter()
    model = fit(train, dev, config=cfg, log=lambda m: print(m, file=sys.stderr))
    if args.test:
        from .classify import ReplyClassifier

        test = load_records(args.test)
        rep = evaluate(test, ReplyClassifier(model).classify)
        model.card["metrics"]["test"] = {
            "n": rep["n"], "macro_f1": rep["macro_f1"], "dne_precision": rep["do_not_email"]["precision"],
            "dne_recall": rep["do_not_email"]["recall"], "hard_negative_false_dne_rate":
            rep["hard_negatives"]["false_dne_rate"], "needs_review_rate": rep["needs_review_rate"],
            "per_language_dne_recall": {k: v["dne_recall"] for k, v in rep["per_language"].items()},
            "calibration": rep["calibration"],
        }
    out = save(model, args.output)
    print(f"wrote {out} ({model.card['n_features']} features, C={model.card['estimator']['C']}, "
          f"threshold {model.card['thresholds']['do_not_email']}) in {time.perf_counter() - t0:.1f}s")
    print(json.dumps(model.card["metrics"], indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .corpus import load_records
    from .evaluate import evaluate, format_report, plot_report

    records = load_records(args.data)
    clf = _classifier(args.model)
    rep = evaluate(records, clf.classify)
    if args.report_dir:
        d = Path(args.report_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "report.json").write_text(json.dumps(rep, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        png = plot_report(rep, d / "report.png")
        print(f"wrote {d / 'report.json'}" + (f" and {png}" if png else " (install replyguard[plot] for a PNG)"),
              file=sys.stderr)
    if args.json:
        print(json.dumps(rep, ensure_ascii=False, indent=2))
    else:
        print(format_report(rep, errors=args.errors))
    return 0


_HANDLERS = {"classify": _cmd_classify, "train": _cmd_train, "evaluate": _cmd_evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    handler: Callable[[argparse.Namespace], int]
    if args.command in _HANDLERS:
        handler = _HANDLERS[args.command]
    elif args.command == "score":
        from .batch.cli import run as handler
    elif args.command == "serve":
        from .unsubscribe_cli import run as handler
    else:  # contacts, outbox, compliance
        from .optout.cli import run as handler
    try:
        return handler(args)
    except (ReplyGuardError, FileNotFoundError, ValueError, TypeError) as exc:
        print(f"replyguard {args.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (FileNotFoundError, ValueError, TypeError)) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
