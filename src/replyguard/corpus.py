"""Labelled data: reading, checking and splitting.

Layout of ``data/``::

    train_pass/*.jsonl   the training authoring passes (train comes from here)
    dev_pass/*.jsonl     the development pass, written separately (dev: model
                         selection, calibration and thresholds)
    test_pass/*.jsonl    the test authoring pass, written separately
    splits/train.jsonl, dev.jsonl, test.jsonl, manifest.json   (made by ``build``)

Each record: ``{"text": str, "intent": one of the six, "lang": "en"|..., "tags": [str, ...]}``.

Splits are fixed and reproducible: training items that nearly duplicate a dev
or test item (same words after normalisation, or word-trigram Jaccard >= 0.7)
are dropped, and so are dev items that nearly duplicate a test item, so nothing
straddles two splits.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CorpusError
from .verdict import Intent

__all__ = ["LANGS", "Record", "build", "data_hash", "load_records", "read_jsonl"]

LANGS = ("en", "es", "fr", "de", "pt", "it", "nl")
_INTENTS = {i.value for i in Intent}
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    intent: str
    lang: str
    tags: tuple[str, ...]
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "intent": self.intent, "lang": self.lang, "tags": list(self.tags)}


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; CorpusError names file and line."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"data file {str(p)!r} does not exist")
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{p}:{n}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise CorpusError(f"{p}:{n}: expected a JSON object, got {type(obj).__name__}")
            yield n, obj


def load_records(paths: Iterable[str | Path], *, require_labels: bool = True) -> list[Record]:
    """Read and check labelled records from JSONL files (or folders of them)."""
    out: list[Record] = []
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        files.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    if not files:
        raise CorpusError("no data files given")
    for f in files:
        for n, obj in read_jsonl(f):
            where = f"{f}:{n}"
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                raise CorpusError(f"{where}: 'text' must be a non-empty string")
            intent = obj.get("intent")
            if require_labels and intent not in _INTENTS:
                raise CorpusError(f"{where}: intent {intent!r} is not one of {sorted(_INTENTS)}")
            lang = obj.get("lang", "en")
            if lang not in LANGS:
                raise CorpusError(f"{where}: lang {lang!r} is not one of {LANGS}")
            tags = obj.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise CorpusError(f"{where}: 'tags' must be a list of strings")
            out.append(Record(text, str(intent), lang, tuple(tags), where))
    return out


def data_hash(records: Iterable[Record]) -> str:
    """SHA-256 over the records' JSON, in order: identifies a training set."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps(r.to_json(), ensure_ascii=False, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def _norm_words(text: str) -> list[str]:
    from ._text import fold
    from .extract import extract

    reply = extract(text).text or text
    return _WORD.findall(fold(reply))


def _shingles(words: list[str]) -> frozenset[str]:
    if len(words) < 3:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _near_duplicate_pairs(shingles: list[frozenset[str]], threshold: float) -> Iterator[tuple[int, int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, sh in enumerate(shingles):
        for s in sh:
            index[s].append(i)
    for i, sh in enumerate(shingles):
        seen: Counter[int] = Counter()
        for s in sh:
            for j in index[s]:
                if j > i:
                    seen[j] += 1
        for j, inter in seen.items():
            union = len(sh) + len(shingles[j]) - inter
            if union and inter / union >= threshold:
                yield i, j


def build(data_dir: str | Path, *, dev_fraction: float = 0.15, jaccard: float = 0.7) -> dict[str, Any]:
    """Make ``splits/{train,dev,test}.jsonl`` and ``splits/manifest.json`` from the passes.

    ``dev`` is the development pass (``dev_pass/``) when there is one; without it,
    a ``dev_fraction`` cut of the training pass (near-duplicate groups kept whole).
    """
    d = Path(data_dir)
    train_pool = load_records([d / "train_pass"])
    test = load_records([d / "test_pass"])
    dev_pass = load_records([d / "dev_pass"]) if (d / "dev_pass").is_dir() else []

    # exact duplicates inside a pass are dropped (first wins)
    def dedupe(recs: list[Record]) -> list[Record]:
        seen: set[str] = set()
        out = []
        for r in recs:
            key = " ".join(_norm_words(r.text))
            if key in seen:
                continue
            seen.add(key)
            out.append(r)
        return out

    train_pool, test, dev_pass = dedupe(train_pool), dedupe(test), dedupe(dev_pass)
    # held-out items (test, then the dev pass) win over training items that nearly
    # duplicate them; a dev item that nearly duplicates a test item is dropped too
    held = test + dev_pass
    n_pool, n_test = len(train_pool), len(test)
    allsh = [_shingles(_norm_words(r.text)) for r in train_pool + held]
    leak: set[int] = set()
    dev_leak: set[int] = set()
    uf = _UnionFind(n_pool)
    for i, j in _near_duplicate_pairs(allsh, jaccard):
        if i < n_pool <= j:
            leak.add(i)
        elif j < n_pool:
            uf.union(i, j)
        elif i < n_pool + n_test <= j:
            dev_leak.add(j - n_pool - n_test)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n_pool):
        if i not in leak:
            groups[uf.find(i)].append(i)
    train: list[Record] = []
    dev: list[Record] = [r for k, r in enumerate(dev_pass) if k not in dev_leak]
    for members in groups.values():
        key = "|".join(sorted(hashlib.sha1(train_pool[i].text.encode()).hexdigest() for i in members))
        bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        to_dev = not dev_pass and bucket < dev_fraction
        (dev if to_dev else train).extend(train_pool[i] for i in members)
    # keep the authoring order inside each split (stable, readable diffs)
    order = {id(r): k for k, r in enumerate(train_pool + dev_pass)}
    train.sort(key=lambda r: order[id(r)])
    dev.sort(key=lambda r: order[id(r)])
    out_dir = d / "splits"
    out_dir.mkdir(exist_ok=True)
    manifest: dict[str, Any] = {"jaccard_threshold": jaccard, "dev_fraction": None if dev_pass else dev_fraction,
                                "dev_source": "dev_pass" if dev_pass else "train_pass",
                                "dropped_for_test_overlap": len(leak), "dev_dropped_for_test_overlap": len(dev_leak),
                                "splits": {}}
    for name, recs in (("train", train), ("dev", dev), ("test", test)):
        with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for r in recs:
                fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        manifest["splits"][name] = summarize(recs) | {"sha256": data_hash(recs)}
    with open(out_dir / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
    (d / "DATA_CARD.md").write_text(data_card(manifest, train_pool_n=len(train_pool)), encoding="utf-8")
    return manifest


_CARD_INTRO = """# Data card: replyguard reply corpus

*Generated by `python -m replyguard.corpus build data` (`make data`); edit the text in
`replyguard/corpus.py`.*

## What it is

Replies to sales and marketing outreach emails, each labelled with one intent
(`do_not_email`, `not_interested`, `out_of_office`, `wrong_contact`, `interested`,
`other`), the language of the contact's own words and tags describing the case and the
format. Labels follow [docs/LABELING_GUIDE.md](../docs/LABELING_GUIDE.md).

## How it was made

Every text was written for this project; nothing was copied from other datasets,
websites or projects. Names, companies and addresses are invented (example domains).

- **Training pass** (`train_pass/`): several authoring sessions, each with its own brief:
  English opt-outs and their look-alikes; English for the other five intents; then Spanish
  and Portuguese, French and Italian, German and Dutch, written natively (regional
  variants, registers from formal to SMS-style), not translated; then a second pass per
  language group in new voices (small businesses, public sector, non-native writers,
  phone typos); a third; and a fourth pass aimed at what the earlier ones lacked:
  indirect opt-outs without the usual words (sarcasm, a P.S., an opt-out buried in a long
  email, answers to our own "should I stop?"), declines that do not ask to stop, and
  other senses of stop / remove / cancel / unsubscribe, in every language; a fifth in new
  voices aimed at the intents most often confused (other, interested, wrong_contact);
  and a small targeted pass (`p6_short_*`) of short acknowledgements and declines,
  complaints about having been removed, data-access requests, address changes and format
  requests, which the first development pass showed the model taking for opt-outs; and a
  seventh pass (`p7_*`, 1,330 replies in new trades: dentists, parish offices, freight
  forwarders, beekeepers, marinas...) of long non-opt-outs (detailed declines, orders,
  redirections: the model leaned to opt-out on long text), short thanks and firm declines,
  channel- and option-only stops, third-party removals, and idiomatic or buried opt-outs.
  (Its Portuguese and Italian long replies reuse many of its Spanish situations, reworded.)
  An eighth pass (`p8_*`, 960 replies) was written blind (its writers saw only the
  labelling guide): three quarters look-alikes (the vocabulary of opting out in other
  senses: cancelled orders, removed quote lines, "no more stock", "stop by our stand")
  and a quarter opt-outs in everyday wording. Before it joined training, the rules were
  scored on it once: a live opt-out hit on 5% of the look-alikes (34 of 646), none on 8%
  of the opt-outs (18 of 214).
  (Its Spanish, Italian and Portuguese files share many situations with the
  French one, and about half of its Dutch look-alikes with the German.)
  A ninth pass (`p9_*`, 1,240 replies, 160-260 a language, each language group by its
  own writer; blind like the eighth) is two thirds look-alikes in nine families
  (resubscribe stories, negations, other senses in a business setting, questions about
  our list or data, third-party removals, other-channel stops, address changes,
  frequency complaints, firm declines) and a third opt-outs that avoid the usual words.
  Before it joined training, the model of the time (passes 1-8, rules round 5) was
  scored on it once: do-not-email precision 0.73 at recall 0.95 (154 false opt-outs
  among 798 non-opt-outs, 21 of 442 opt-outs missed); the rules alone had a live hit on
  15% of its non-opt-outs and none on 27% of its opt-outs. Some of its full emails were made by
  wrapping a short reply in a greeting, a signature or a quoted original drawn from
  small pools of names and pitches.
  Formats: one-liners and bare keywords, full emails with sign-offs,
  signatures, mobile footers and legal disclaimers, replies above (and below) a quoted copy
  of our outreach email in each mail client's localized style with an unsubscribe footer,
  HTML remnants, auto-replies, typos, all caps, emoji.
- **Development passes.** A first development pass (1,060 replies, authors who saw
  neither other pass: hospitals, universities, trades, public offices, retirees, regional
  variants) served as the dev split for one round; its errors, with the training pass's,
  drove a round of rule writing, after which its scores were no longer a fair basis for
  thresholds (the rules had been fitted to it), so it joined the training pass
  (`train_pass/devpass1_*`). The current `dev_pass/` was then written blind by new
  authors (veterinary clinics, sports clubs, tax advisers, theatres, nursing homes,
  fishermen's cooperatives...) and is used only to choose the regularisation strength,
  the calibration temperature and the thresholds. (Its German and Dutch replies share
  many scenarios with its French ones, written in each language rather than translated.)
  A second blind development pass (`dev_pass/p2_*`, 890 replies: a ship's chandler, a
  crematorium, a monastery guest house, referees' associations, a Carrara quarry, a
  samba school...) was written by authors who saw only the labelling guide, after the
  rules round 4 and training pass 7; the model of that time was scored on it once, as
  a first-contact estimate (in the README), before it joined the dev split. Thresholds
  chosen on text written in the training voice, or on text the rules were grown from,
  sit too high or too low for replies nobody here wrote.
  A third blind development pass (`dev_pass/p3_*`, 1,320 replies, 170-280 a language, by
  four new writers, every name, company and quoted pitch invented for its line) asked for
  whole situations rather than look-alike wording: ordinary replies that mention stopping
  something else (a contract, a delivery, a user account), remarks about our emails that
  do not ask to stop them (too long, wrong name, landing in spam), courtesy replies above
  disclaimers and quoted footers, long auto-replies, hand-offs, people who once opted out
  and come back; and, for 40% of it, opt-outs as people bury them (a P.S., the third
  paragraph, an auto-reply, an assistant for their own mailbox, dialect). Scored once on
  arrival by the packaged model of passes 1-8: precision 0.88 at recall 0.97 (68 false
  opt-outs among 792 non-opt-outs, 16 of 528 opt-outs missed), close to the test split's
  figures; by a model with training pass 9 added and thresholds from the first two dev
  passes: precision 0.92 at recall 0.95. That drop in recall came from the threshold pair
  fitted to two dev passes, which is why the pass joined dev (thresholds now rest on three
  sets of authors) rather than training. Its errors also showed Portuguese and Italian
  confidentiality notices that zoning did not cut (fixed).
- **Test pass** (`test_pass/`): written separately, by authors who never saw the training
  pass, in other voices and industries and with deliberately unusual phrasings, so that its
  figures predict replies nobody here wrote. Nothing is tuned on it.
- **Splits** (`splits/`): `train` is the training pass, `dev` the development pass, `test`
  the test pass. Training items that nearly duplicate a dev or test item (same words
  after normalisation, or word-trigram Jaccard >= {jaccard}) are dropped ({dropped}
  dropped), and dev items that nearly duplicate a test item ({dev_dropped} dropped).
- `hard_negative` marks every non-opt-out reply that a keyword filter or a careless reader
  would take for an opt-out: opt-out words in other senses, negations, our quoted footer,
  disclaimers, declines that do not ask to stop, address changes, resubscribe requests,
  third-party removals.

## Counts
"""


def data_card(manifest: dict[str, Any], *, train_pool_n: int) -> str:
    """The data card text for a build manifest."""
    out = [_CARD_INTRO.format(jaccard=manifest["jaccard_threshold"],
                              dropped=manifest["dropped_for_test_overlap"],
                              dev_dropped=manifest.get("dev_dropped_for_test_overlap", 0))]
    splits = manifest["splits"]
    total = sum(s["n"] for s in splits.values())
    hard = sum(s["hard_negatives"] for s in splits.values())
    out.append(f"{total} labelled replies after de-duplication ({train_pool_n} in the training pass before "
               f"dropping dev and test overlaps); {hard} hard negatives ({hard / total:.0%} of all).\n")
    intents = [i.value for i in Intent]
    out.append("| split | n | " + " | ".join(intents) + " | hard negatives |")
    out.append("|---|---|" + "---|" * len(intents) + "---|")
    for name, s in splits.items():
        out.append(f"| {name} | {s['n']} | " + " | ".join(str(s["intent"].get(i, 0)) for i in intents)
                   + f" | {s['hard_negatives']} |")
    out.append("")
    out.append("| split | " + " | ".join(LANGS) + " |")
    out.append("|---|" + "---|" * len(LANGS))
    for name, s in splits.items():
        out.append(f"| {name} | " + " | ".join(str(s["lang"].get(lang, 0)) for lang in LANGS) + " |")
    out.append("")
    tags: Counter[str] = Counter()
    for s in splits.values():
        tags.update(s["tags"])
    out.append("Tags (all splits): " + ", ".join(f"{t} {n}" for t, n in tags.most_common()) + ".")
    out.append("")
    out.append("Each split's SHA-256 is in `splits/manifest.json`; the model card records the hashes "
               "of the data it was trained on.")
    return "\n".join(out) + "\n"


_HARD_TAGS = {"hard_negative"}


def summarize(recs: list[Record]) -> dict[str, Any]:
    """Counts by intent, language and tag, and the hard-negative share."""
    hard = sum(1 for r in recs if r.intent != "do_not_email" and _HARD_TAGS & set(r.tags))
    return {
        "n": len(recs),
        "intent": dict(sorted(Counter(r.intent for r in recs).items())),
        "lang": dict(sorted(Counter(r.lang for r in recs).items())),
        "tags": dict(sorted(Counter(t for r in recs for t in r.tags).items())),
        "hard_negatives": hard,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m replyguard.corpus")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="make the fixed splits from data/train_pass and data/test_pass")
    b.add_argument("data_dir", nargs="?", default="data")
    args = ap.parse_args(argv)
    try:
        manifest = build(args.data_dir)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, s in manifest["splits"].items():
        print(f"{name:5s} n={s['n']:5d} hard_negatives={s['hard_negatives']:4d} {s['intent']}")
    print(f"dropped {manifest['dropped_for_test_overlap']} training items that nearly duplicate dev or test items, "
          f"{manifest['dev_dropped_for_test_overlap']} dev items that nearly duplicate test items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
