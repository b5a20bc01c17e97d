"""Evaluation of a classifier on labelled replies: the figures we publish."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import Record
from .verdict import INTENTS, Verdict

__all__ = ["evaluate", "format_report", "metrics_from_predictions", "plot_report"]

_NAMES = [i.value for i in INTENTS]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def metrics_from_predictions(
    gold: Sequence[str], pred: Sequence[str], records: Sequence[Record] | None = None
) -> dict[str, Any]:
    """Per-intent P/R/F1, macro-F1, do-not-email P/R, confusion, per-language/tag views."""
    labels = _NAMES
    conf = np.zeros((len(labels), len(labels)), dtype=int)
    idx = {n: k for k, n in enumerate(labels)}
    for g, p in zip(gold, pred, strict=True):
        conf[idx[g], idx[p]] += 1
    per = {}
    for k, n in enumerate(labels):
        tp = int(conf[k, k])
        per[n] = _prf(tp, int(conf[:, k].sum()) - tp, int(conf[k, :].sum()) - tp)
    present = [n for n in labels if per[n]["support"] > 0]
    macro = float(np.mean([per[n]["f1"] for n in present])) if present else 0.0
    out: dict[str, Any] = {
        "n": len(gold),
        "macro_f1": round(macro, 4),
        "accuracy": round(float(np.trace(conf)) / max(1, len(gold)), 4),
        "do_not_email": per["do_not_email"],
        "per_intent": per,
        "confusion": {"labels": labels, "matrix": conf.tolist()},
    }
    if records is not None:
        by_lang: dict[str, list[int]] = defaultdict(list)
        by_tag: dict[str, list[int]] = defaultdict(list)
        for k, r in enumerate(records):
            by_lang[r.lang].append(k)
            for t in r.tags:
                by_tag[t].append(k)
        out["per_language"] = {lang: _slice(gold, pred, ks) for lang, ks in sorted(by_lang.items())}
        out["per_tag"] = {t: _slice(gold, pred, ks) for t, ks in sorted(by_tag.items())}
        hard = [k for k, r in enumerate(records) if "hard_negative" in r.tags and r.intent != "do_not_email"]
        false_dne = sum(1 for k in hard if pred[k] == "do_not_email")
        out["hard_negatives"] = {"n": len(hard), "false_dne": false_dne,
                                 "false_dne_rate": round(false_dne / len(hard), 4) if hard else 0.0}
    return out


def _slice(gold: Sequence[str], pred: Sequence[str], ks: list[int]) -> dict[str, Any]:
    g = [gold[k] for k in ks]
    p = [pred[k] for k in ks]
    tp = sum(1 for a, b in zip(g, p, strict=True) if a == b == "do_not_email")
    pos = sum(1 for a in g if a == "do_not_email")
    flagged = sum(1 for b in p if b == "do_not_email")
    return {
        "n": len(ks),
        "accuracy": round(sum(1 for a, b in zip(g, p, strict=True) if a == b) / len(ks), 4),
        "dne_recall": round(tp / pos, 4) if pos else None,
        "dne_precision": round(tp / flagged, 4) if flagged else None,
        "false_dne": flagged - tp,
    }


def evaluate(records: Sequence[Record], classify: Callable[[str], Verdict]) -> dict[str, Any]:
    """Classify every record and report the figures, the errors and calibration."""
    verdicts = [classify(r.text) for r in records]
    gold = [r.intent for r in records]
    pred = [v.intent.value for v in verdicts]
    report = metrics_from_predictions(gold, pred, records)
    scores = np.asarray([v.score for v in verdicts])
    is_dne = np.asarray([g == "do_not_email" for g in gold])
    report["needs_review_rate"] = round(float(np.mean([v.needs_review for v in verdicts])), 4) if verdicts else 0.0
    # a pipeline that pauses on needs_review as well: how many opt-outs it holds back
    held = [v.do_not_email or v.needs_review for v, r in zip(verdicts, records, strict=True) if r.intent == "do_not_email"]
    report["dne_recall_with_review"] = round(float(np.mean(held)), 4) if held else None
    report["calibration"] = _calibration(scores, is_dne)
    report["pr_curve"] = _pr_curve(scores, is_dne)
    report["errors"] = [
        {"source": r.source, "gold": r.intent, "pred": v.intent.value, "score": round(v.score, 4),
         "needs_review": v.needs_review, "lang": r.lang, "tags": list(r.tags),
         "reply_text": v.reply_text[:300], "rules": [e.id for e in v.evidence if e.source in ("rule", "veto")]}
        for r, v in zip(records, verdicts, strict=True)
        if r.intent != v.intent.value
    ]
    if verdicts:
        report["model_version"] = verdicts[0].model_version
        report["ruleset_version"] = verdicts[0].ruleset_version
        # the thresholds applied (with and without a live opt-out rule hit)
        report["thresholds"] = sorted({v.threshold for v in verdicts})
    return report


def _calibration(scores: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    if len(scores) == 0:
        return {}
    brier = float(np.mean((scores - y) ** 2))
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (scores >= lo) & ((scores < hi) if hi < 1 else (scores <= hi))
        if m.any():
            ece += m.mean() * abs(scores[m].mean() - y[m].mean())
    return {"brier": round(brier, 4), "ece": round(float(ece), 4)}


def _pr_curve(scores: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """(threshold, precision, recall) points of the do-not-email score."""
    pts = []
    for t in sorted({round(float(s), 3) for s in scores}):
        flagged = scores >= t
        tp = int((flagged & y).sum())
        p = tp / max(1, int(flagged.sum()))
        r = tp / max(1, int(y.sum()))
        pts.append([t, round(p, 4), round(r, 4)])
    return pts


def format_report(rep: dict[str, Any], *, errors: int = 0) -> str:
    """A plain-text view of a report, for terminals and CI logs."""
    lines = [f"n={rep['n']}  macro-F1={rep['macro_f1']:.3f}  accuracy={rep['accuracy']:.3f}"
             f"  needs_review={rep.get('needs_review_rate', 0):.3f}"
             f"  dne recall counting needs_review={rep.get('dne_recall_with_review') or 0:.3f}"]
    d = rep["do_not_email"]
    lines.append(f"do_not_email: precision={d['precision']:.3f} recall={d['recall']:.3f} f1={d['f1']:.3f} (n={d['support']})")
    if "hard_negatives" in rep:
        h = rep["hard_negatives"]
        lines.append(f"hard negatives: false do-not-email {h['false_dne']}/{h['n']} = {h['false_dne_rate']:.3%}")
    lines.append("")
    lines.append(f"{'intent':16s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'n':>5s}")
    for n, m in rep["per_intent"].items():
        lines.append(f"{n:16s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:5d}")
    lines.append("")
    labels = rep["confusion"]["labels"]
    short = [lab[:6] for lab in labels]
    lines.append("confusion (rows gold, columns predicted)")
    lines.append(" " * 16 + " ".join(f"{s:>6s}" for s in short))
    for lab, row in zip(labels, rep["confusion"]["matrix"], strict=True):
        lines.append(f"{lab:16s}" + " ".join(f"{v:6d}" for v in row))
    if "per_language" in rep:
        lines.append("")
        lines.append(f"{'language':10s} {'n':>5s} {'acc':>6s} {'dne_R':>6s} {'dne_P':>6s}")
        for lang, m in rep["per_language"].items():
            r = "-" if m["dne_recall"] is None else f"{m['dne_recall']:.3f}"
            p = "-" if m["dne_precision"] is None else f"{m['dne_precision']:.3f}"
            lines.append(f"{lang:10s} {m['n']:5d} {m['accuracy']:6.3f} {r:>6s} {p:>6s}")
    if errors and rep.get("errors"):
        lines.append("")
        lines.append(f"first {min(errors, len(rep['errors']))} of {len(rep['errors'])} errors:")
        for e in rep["errors"][:errors]:
            txt = e["reply_text"].replace("\n", " ")[:120]
            lines.append(f"  [{e['gold']} -> {e['pred']} {e['score']:.2f}] {txt}")
    return "\n".join(lines)


def plot_report(rep: dict[str, Any], path: str | Path) -> Path | None:
    """Confusion matrix and precision-recall curve as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels = rep["confusion"]["labels"]
    m = np.asarray(rep["confusion"]["matrix"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    ax1.imshow(m, cmap="Blues")
    ax1.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax1.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax1.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax1.set_xlabel("predicted")
    ax1.set_ylabel("gold")
    ax1.set_title("confusion matrix")
    pr = rep.get("pr_curve") or []
    if pr:
        ax2.plot([p[2] for p in pr], [p[1] for p in pr], marker=".")
    thr = ", ".join(str(t) for t in rep.get("thresholds", []))
    ax2.set_xlabel("recall (do_not_email)")
    ax2.set_ylabel("precision")
    ax2.set_title(f"do_not_email precision-recall (thresholds {thr})")
    ax2.set_xlim(0, 1.02)
    ax2.set_ylim(0, 1.02)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

