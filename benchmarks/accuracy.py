"""Accuracy on the test split: the hybrid beside keyword-only, rules-only, model-only
and a naive scikit-learn pipeline, all trained on the same train split.

    python benchmarks/accuracy.py [--json OUT]

Prints macro-F1 over the six intents, do-not-email precision/recall, the false
do-not-email rate on hard negatives, the lowest per-language do-not-email recall,
per-language and per-rule figures for the hybrid.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict

from _common import eprint, naive_pipeline, records
from replyguard import ReplyClassifier
from replyguard.evaluate import metrics_from_predictions
from replyguard.features import analyze
from replyguard.rules import default_ruleset
from replyguard.train import TrainConfig, fit

# What a hand-rolled filter in a sales tool typically does: substring match on the raw text.
KEYWORDS = re.compile(
    r"unsubscri|opt.?out|remove me|stop|take me off|do not (?:email|contact)|don't (?:email|contact)|"
    r"no more emails|baja|no me envi|desuscrib|desinscri|desabonn|ne plus recevoir|abmelden|austragen|"
    r"keine (?:e-?mails?|mails?) mehr|afmelden|uitschrijven|geen (?:e-?)?mails meer|cancellami|"
    r"disiscriv|rimuovetemi|descadastr|nao quero mais receber|não quero mais receber",
    re.I,
)
CUE_ORDER = (("WRONG_CONTACT", "wrong_contact"), ("OOO", "out_of_office"),
             ("NOT_INTERESTED", "not_interested"), ("INTERESTED", "interested"))


def rules_only(text: str, rs) -> str:
    a = analyze(text, rs)
    labels = {h.label for h in a.hits if h.vetoed_by is None}
    if labels & {"DNE", "DNE_KEYWORD"}:
        return "do_not_email"
    for lab, intent in CUE_ORDER:
        if lab in labels:
            return intent
    return "other"


def summary(name, gold, pred, recs, secs):
    m = metrics_from_predictions(gold, pred, recs)
    langs = {k: v["dne_recall"] for k, v in m["per_language"].items() if v["dne_recall"] is not None}
    worst = min(langs.items(), key=lambda kv: kv[1]) if langs else ("-", 0.0)
    return {
        "method": name, "macro_f1": m["macro_f1"], "dne_precision": m["do_not_email"]["precision"],
        "dne_recall": m["do_not_email"]["recall"], "hard_neg_false_dne": m["hard_negatives"]["false_dne_rate"],
        "worst_lang_dne_recall": f"{worst[0]} {worst[1]:.3f}", "seconds": round(secs, 1), "full": m,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args()
    train, dev, test = records("train"), records("dev"), records("test")
    gold = [r.intent for r in test]
    texts = [r.text for r in test]
    rs = default_ruleset()
    rows = []

    t = time.perf_counter()
    pred = ["do_not_email" if KEYWORDS.search(x) else "other" for x in texts]
    rows.append(summary("keyword-only (substring, whole text)", gold, pred, test, time.perf_counter() - t))

    t = time.perf_counter()
    pred = [rules_only(x, rs) for x in texts]
    rows.append(summary("rules-only (zoning + patterns)", gold, pred, test, time.perf_counter() - t))

    t = time.perf_counter()
    eprint("training model-only (no rule features)...")
    mo = ReplyClassifier(fit(train, dev, config=TrainConfig(use_rules=False)))
    pred = [mo.classify(x).intent.value for x in texts]
    rows.append(summary("model-only (zoning + n-grams)", gold, pred, test, time.perf_counter() - t))

    t = time.perf_counter()
    eprint("training the naive scikit-learn pipeline...")
    naive = naive_pipeline().fit([r.text for r in train], [r.intent for r in train])
    pred = list(naive.predict(texts))
    rows.append(summary("naive sklearn (tfidf word+char, LR)", gold, pred, test, time.perf_counter() - t))

    t = time.perf_counter()
    hybrid = ReplyClassifier.default()
    verdicts = [hybrid.classify(x) for x in texts]
    pred = [v.intent.value for v in verdicts]
    rows.append(summary("hybrid (packaged model)", gold, pred, test, time.perf_counter() - t))

    print(f"test split: {len(test)} replies ({Counter(r.lang for r in test)})")
    print(f"{'method':40s} {'macroF1':>8s} {'dne_P':>6s} {'dne_R':>6s} {'hardFP':>7s} {'worst-lang R':>13s}")
    for r in rows:
        print(f"{r['method']:40s} {r['macro_f1']:8.3f} {r['dne_precision']:6.3f} {r['dne_recall']:6.3f} "
              f"{r['hard_neg_false_dne']:7.3f} {r['worst_lang_dne_recall']:>13s}")
    h = rows[-1]["full"]
    print("\nhybrid per language:")
    for lang, m in h["per_language"].items():
        print(f"  {lang}: n={m['n']:4d} acc={m['accuracy']:.3f} dne_R={m['dne_recall']} dne_P={m['dne_precision']}")
    print(f"hybrid needs_review rate: {sum(v.needs_review for v in verdicts) / len(verdicts):.3f}")
    # per-rule coverage and precision on the test split
    per_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, v in zip(test, verdicts, strict=True):
        for e in v.evidence:
            if e.source == "rule" and "~" not in e.id:
                per_rule[e.id][0] += 1
                per_rule[e.id][1] += r.intent == "do_not_email"
    print("\nopt-out rules on the test split (hits, precision), most frequent first:")
    for rid, (n, ok) in sorted(per_rule.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"  {rid:40s} {n:4d} {ok / n:.2f}")
    targets = [("DNE recall >= 0.98", h["do_not_email"]["recall"] >= 0.98),
               ("DNE precision >= 0.97", h["do_not_email"]["precision"] >= 0.97),
               ("macro-F1 >= 0.90", h["macro_f1"] >= 0.90),
               ("DNE recall >= 0.95 in every language",
                all((m["dne_recall"] or 0) >= 0.95 for m in h["per_language"].values() if m["dne_recall"] is not None)),
               ("hard-negative false DNE <= 2%", h["hard_negatives"]["false_dne_rate"] <= 0.02)]
    print("\ntargets:")
    for name, ok in targets:
        print(f"  [{'met' if ok else 'NOT MET'}] {name}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows, "rules": per_rule}, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
