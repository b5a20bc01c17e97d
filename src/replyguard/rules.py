"""Rule-based phrase matching over one shared spaCy ``Doc``.

Patterns are data: ``patterns/<lang>.jsonl``, one JSON object a line::

    {"id": "en.dne.take_me_off", "label": "DNE", "pattern": "take me off your list",
     "comment": "the classic removal request"}

A string ``pattern`` goes to the ``PhraseMatcher``; a list of token dicts goes
to the ``Matcher``. Patterns match *folded* text (lower case, no accents, see
:func:`replyguard._text.fold`); string values in token patterns are folded at
load time, so they may be written with accents.

Labels
------
``DNE``           an opt-out request.
``DNE_KEYWORD``   an SMS-style keyword (STOP, BAJA, ...): counts only when it
                  is the whole message (filler such as "please" and
                  punctuation aside).
``VETO``          a negation or another sense ("don't unsubscribe me", "stop
                  by our booth"); cancels every DNE hit it overlaps.
``OOO``, ``WRONG_CONTACT``, ``NOT_INTERESTED``, ``INTERESTED``, ``OTHER``
                  cues for the other intents; the model weighs them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._text import fold, gc_paused, get_nlp, tokenize
from .errors import PatternError

__all__ = ["LABELS", "OPT_OUT_LABELS", "RULESET_NAME", "RuleHit", "Ruleset", "default_ruleset"]

RULESET_NAME = "replyguard.rules.v1"
LABELS = (
    "DNE",
    "DNE_KEYWORD",
    "VETO",
    "OOO",
    "WRONG_CONTACT",
    "NOT_INTERESTED",
    "INTERESTED",
    "OTHER",
)
OPT_OUT_LABELS = ("DNE", "DNE_KEYWORD")
_ALLOWED_TOKEN_KEYS = {
    "LOWER", "ORTH", "TEXT", "NORM", "OP", "IS_PUNCT", "IS_DIGIT", "IS_ALPHA", "LIKE_NUM",
    "LIKE_EMAIL", "LIKE_URL", "LENGTH", "IS_SPACE",
}
# words that may stand around a keyword without making it "more than a keyword"
_KEYWORD_FILLER = frozenset(
    ["please", "pls", "plz", "plse", "now", "thanks", "thank", "you", "thx", "ok", "okay", "por", "favor", "gracias", "porfa", "s'il", "vous", "plait", "svp", "merci", "bitte", "danke", "per", "favore", "grazie", "aub", "a.u.b", "alstublieft", "dank", "obrigado", "obrigada", "me", "all", "of", "it"]
)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One pattern match. ``start``/``end`` are character offsets into the reply text."""

    id: str
    label: str
    start: int
    end: int
    token_start: int
    token_end: int
    vetoed_by: str | None = None

    @property
    def live_opt_out(self) -> bool:
        """An opt-out hit that no veto cancelled."""
        return self.label in OPT_OUT_LABELS and self.vetoed_by is None


@dataclass(frozen=True, slots=True)
class _Pattern:
    id: str
    label: str
    pattern: Any
    comment: str
    lang: str


def _fold_words(words: list[Any]) -> list[Any]:
    """:func:`fold` of each word: in one call when they can be joined by line breaks
    (``fold`` maps each character on its own and keeps line breaks)."""
    if words and all(isinstance(w, str) and "\n" not in w for w in words):
        return fold("\n".join(words)).split("\n")
    return [fold(w) for w in words]


def _fold_token_pattern(tok: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in tok.items():
        if key not in _ALLOWED_TOKEN_KEYS:
            raise PatternError(f"token key {key!r} is not supported; use one of {sorted(_ALLOWED_TOKEN_KEYS)}")
        if key in ("LOWER", "ORTH", "TEXT", "NORM"):
            key = "LOWER"
            if isinstance(val, str):
                val = fold(val)
            elif isinstance(val, dict):
                val = {k: (_fold_words(vs) if isinstance(vs, list) else vs) for k, vs in val.items()}
            # a blank word compiles to an empty phrase, which would make its slot match
            # any token; line breaks and spaces are matched with {"IS_SPACE": true}
            if any(isinstance(w, str) and not w.strip() for w in _slot_words(val)):
                raise PatternError(f"blank word in {tok!r}: a word slot cannot match whitespace; "
                                   'use {"IS_SPACE": true}')
        out[key] = val
    return out


def load_patterns(paths: Iterable[Path]) -> list[_Pattern]:
    """Read and check pattern files; raise :class:`PatternError` naming file and line."""
    pats: list[_Pattern] = []
    seen: dict[str, str] = {}
    for path in paths:
        lang = path.stem
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith("//"):
                    continue
                where = f"{path}:{n}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PatternError(f"{where}: not valid JSON ({exc.msg})") from None
                missing = {"id", "label", "pattern", "comment"} - set(obj)
                if missing:
                    raise PatternError(f"{where}: missing keys {sorted(missing)}")
                if obj["label"] not in LABELS:
                    raise PatternError(f"{where}: label {obj['label']!r} is not one of {LABELS}")
                if obj["id"] in seen:
                    raise PatternError(f"{where}: duplicate id {obj['id']!r} (first in {seen[obj['id']]})")
                seen[obj["id"]] = where
                pat = obj["pattern"]
                if isinstance(pat, str):
                    if not pat.strip():
                        raise PatternError(f"{where}: empty phrase pattern")
                    pat = fold(pat)
                elif isinstance(pat, list) and pat and all(isinstance(t, dict) for t in pat):
                    try:
                        pat = [_fold_token_pattern(t) for t in pat]
                    except PatternError as exc:
                        raise PatternError(f"{where}: {exc}") from None
                else:
                    raise PatternError(f"{where}: pattern must be a string or a list of token dicts")
                pats.append(_Pattern(obj["id"], obj["label"], pat, obj["comment"], lang))
    return pats


_CONTENT_WORDS = frozenset(
    "email emails list remove stop off any lista correo correos quiero enviar envien liste mails "
    "mail bonjour cordialement hallo gruse grusse ola atenciosamente ciao saluti graag groet lijst "
    "obrigado obrigada gracias merci danke grazie bedankt dank thanks thank please bitte saludos "
    "hola favor keine mehr plus pas niet geen meer nao mais".split()
)


def _slot_words(val: Any) -> list[Any]:
    """The words a ``LOWER`` value names: the word itself or its ``IN`` list."""
    if isinstance(val, str):
        return [val]
    return list(val.get("IN", [])) if isinstance(val, dict) else []


def _required_words(pattern: list[dict[str, Any]], vocab: Any) -> tuple[frozenset[int], ...]:
    """For each slot a Matcher pattern cannot skip that names its words (``LOWER`` or
    ``LOWER: {"IN": [...]}``), the ids of those words: a Doc lacking all of one slot's
    words cannot match."""
    out = []
    for tok in pattern:
        if tok.get("OP") not in (None, "+"):
            continue
        words = _slot_words(tok.get("LOWER"))
        if words:
            out.append(frozenset(vocab.strings.add(w) for w in words))
    return tuple(out)


@functools.cache
def _special_cases() -> frozenset[str]:
    """The tokenizer's special-case strings."""
    tokenizer: Any = get_nlp().tokenizer
    return frozenset(tokenizer.rules)


def _default_pattern_dir() -> Path:
    return Path(str(resources.files("replyguard") / "patterns"))


# -- compiling token patterns into PhraseMatcher segments -------------------------
#
# spaCy's Matcher costs a few microseconds per pattern per call, and its ``IN``
# predicate is a Python call per token; with hundreds of patterns in seven
# languages that is a millisecond a reply. The PhraseMatcher's cost does not grow
# with the number of phrases. So a token pattern made only of word slots
# (``LOWER`` / ``{"IN": [...]}``, optionally ``"OP": "?"``) and wildcard gaps
# (``{"OP": "{0,3}"}``) is compiled into segments of word slots joined again by
# gap bounds; it matches exactly the spans the Matcher would. Its rarest required
# segment, the anchor, goes to the PhraseMatcher as phrases; the other segments
# are matched slot by slot on token ids, only near the anchor's hits (building
# them into the PhraseMatcher too was a quarter of the compile). Patterns using
# other attributes (``IS_PUNCT``, ``LIKE_EMAIL``, ``+`` / ``*`` on words, ...) run
# on the Matcher itself.

_SEGMENT_LIMIT = 300  # phrases per segment before a pattern is split into more segments
_STAR_MAX = 8  # "*" and "+" wildcards span at most this many tokens


@dataclass(frozen=True, slots=True)
class _Seg:
    key: str
    # word slots, (words, optional) each: the segment's phrases take one word of each
    # slot in turn, or none of an optional one
    slots: tuple[tuple[tuple[str, ...], bool], ...]

    @property
    def can_be_empty(self) -> bool:
        return all(optional for _, optional in self.slots)

    def phrases(self) -> tuple[tuple[str, ...], ...]:
        """The segment's phrases, sorted."""
        if not any(optional for _, optional in self.slots):
            # the product of the sorted slots is already sorted, each phrase once
            return tuple(itertools.product(*(sorted(words) for words, _ in self.slots)))
        phrases: set[tuple[str, ...]] = {()}
        for words, optional in self.slots:
            nxt = {(*ph, w) for ph in phrases for w in words}
            if optional:
                nxt |= phrases
            phrases = nxt
        phrases.discard(())
        return tuple(sorted(phrases))

    def first_words(self) -> set[str]:
        """The words a phrase of the segment can begin with."""
        out: set[str] = set()
        for words, optional in self.slots:
            out.update(words)
            if not optional:
                break
        return out


@dataclass(frozen=True, slots=True)
class _Gap:
    lo: int
    hi: int


def _quant(op: str | None) -> tuple[int, int] | None:
    if op is None:
        return 1, 1
    if op == "?":
        return 0, 1
    if op == "*":
        return 0, _STAR_MAX
    if op == "+":
        return 1, _STAR_MAX
    if op.startswith("{") and op.endswith("}"):
        body = op[1:-1]
        if "," in body:
            lo_s, hi_s = body.split(",", 1)
            lo = int(lo_s) if lo_s.strip() else 0
            hi = int(hi_s) if hi_s.strip() else lo + _STAR_MAX
        else:
            lo = hi = int(body)
        return lo, hi
    return None


def _compile_token_pattern(pid: str, pattern: list[dict[str, Any]]) -> list[_Seg | _Gap] | None:
    """Segments and gaps for a word-slot pattern, or None when it needs the Matcher."""
    slots: list[tuple[list[str], bool] | _Gap] = []
    for tok in pattern:
        q = _quant(tok.get("OP"))
        keys = set(tok) - {"OP"}
        if q is None:
            return None
        if not keys:
            slots.append(_Gap(*q))
            continue
        if keys != {"LOWER"} or q[1] != 1:
            return None
        val = tok["LOWER"]
        if isinstance(val, str):
            words = [val]
        elif isinstance(val, dict) and set(val) == {"IN"}:
            words = list(dict.fromkeys(val["IN"]))
        else:
            return None
        if any(not w or " " in w for w in words):
            return None
        slots.append((words, q[0] == 0))
    # group consecutive word slots into segments of bounded size
    out: list[_Seg | _Gap] = []
    group: list[tuple[list[str], bool]] = []

    def flush() -> None:
        if not group:
            return
        out.append(_Seg(f"{pid}#{len(out)}", tuple((tuple(words), optional) for words, optional in group)))
        group.clear()

    size = 1
    for slot in slots:
        if isinstance(slot, _Gap):
            flush()
            size = 1
            out.append(slot)
            continue
        mult = len(slot[0]) + (1 if slot[1] else 0)
        # the first segment must hold a required word (its hits are where matches start);
        # later segments may match nothing (the DP in _run_compiled skips them)
        first_ok = bool(out) or any(not opt for _, opt in group)
        if group and size * mult > _SEGMENT_LIMIT and first_ok:
            flush()
            size = 1
            out.append(_Gap(0, 0))
        group.append(slot)
        size *= mult
    flush()
    # merge adjacent gaps; patterns must start and end with a segment that cannot be empty
    merged: list[_Seg | _Gap] = []
    for el in out:
        if isinstance(el, _Gap) and merged and isinstance(merged[-1], _Gap):
            prev = merged.pop()
            assert isinstance(prev, _Gap)
            el = _Gap(prev.lo + el.lo, prev.hi + el.hi)
        merged.append(el)
    if not merged or not isinstance(merged[0], _Seg) or not isinstance(merged[-1], _Seg):
        raise PatternError(f"pattern {pid!r}: must begin and end with a word, not a wildcard")
    if merged[0].can_be_empty:
        raise PatternError(
            f"pattern {pid!r}: the words before the first wildcard are all optional; "
            "make one of them required"
        )
    return merged


def _extend(
    elements: Sequence[_Seg | _Gap],
    frontier: set[int],
    hits: dict[str, dict[int, list[int]]],
    n: int,
    step: int,
) -> set[int]:
    """Positions reachable from ``frontier`` through ``elements`` (``step`` +1: rightwards,
    using hits keyed by start; -1: leftwards, using hits keyed by end)."""
    for el in elements:
        if isinstance(el, _Gap):
            if el.hi == 0:
                continue
            frontier = {p + step * k for p in frontier for k in range(el.lo, el.hi + 1) if 0 <= p + step * k <= n}
        else:
            h = hits.get(el.key)
            nxt: set[int] = set()
            if h:
                for p in frontier:
                    nxt.update(h.get(p, ()))
            if el.can_be_empty:
                nxt |= frontier
            frontier = nxt
        if not frontier:
            break
    return frontier


def _run_compiled(
    plan: tuple[str, tuple[_Seg | _Gap, ...], tuple[_Seg | _Gap, ...]],
    by_start: dict[str, dict[int, list[int]]],
    by_end: dict[str, dict[int, list[int]]],
    n: int,
) -> set[tuple[int, int]]:
    """Spans matched by a compiled pattern, grown right and left from its anchor segment.

    ``plan`` is (anchor segment key, elements right of it, elements left of it reversed).
    """
    found: set[tuple[int, int]] = set()
    key, right, left = plan
    for s, ends in by_start.get(key, {}).items():
        stops = _extend(right, set(ends), by_start, n, 1)
        if not stops:
            continue
        starts = _extend(left, {s}, by_end, n, -1) if left else {s}
        for a in starts:
            for e in stops:
                found.add((a, e))
    return found


# a slot's words as token ids: the one-token words, the longer ones, whether it is optional
_SlotIds = tuple[frozenset[int], tuple[tuple[int, ...], ...], bool]
# a segment beside an anchor: its key, the first tokens of its phrases, its slots and, when
# all its slots are required one-token slots, the token ids each slot after the first takes
_OtherSeg = tuple[str, frozenset[int], tuple[_SlotIds, ...], tuple[frozenset[int], ...] | None]


def _slot_ids(words: Sequence[str], optional: bool, ids_of: dict[str, tuple[int, ...]]) -> _SlotIds:
    one = frozenset(ids_of[w][0] for w in words if len(ids_of[w]) == 1)
    longer = tuple(dict.fromkeys(ids_of[w] for w in words if len(ids_of[w]) > 1))
    return one, longer, optional


def _seg_ends(slots: Sequence[_SlotIds], orths: list[int], s: int, hi: int) -> list[int]:
    """Where the phrases of a segment that start at token ``s`` end (ascending, each once),
    within ``hi``: what a PhraseMatcher holding them all finds at ``s`` in ``doc[:hi]``."""
    frontier = {s}
    for one, longer, optional in slots:
        nxt: set[int] = set()
        for p in frontier:
            if p < hi:
                if orths[p] in one:
                    nxt.add(p + 1)
                for ids in longer:
                    q = p + len(ids)
                    if q <= hi and tuple(orths[p:q]) == ids:
                        nxt.add(q)
        if optional:
            nxt |= frontier
        frontier = nxt
        if not frontier:
            return []
    frontier.discard(s)
    return sorted(frontier)


def _span_bounds(elements: Sequence[_Seg | _Gap], seg_len: dict[str, int]) -> int:
    total = 0
    for el in elements:
        total += el.hi if isinstance(el, _Gap) else seg_len[el.key]
    return total


class Ruleset:
    """The compiled rules: a ``PhraseMatcher`` (phrases and the anchors of compiled
    token patterns) and ``Matcher`` s (token patterns that need other attributes), over
    folded tokens."""

    def __init__(self, pattern_dir: str | Path | None = None) -> None:
        # (the compile makes a few hundred thousand containers and keeps most of them)
        with gc_paused():
            self._compile(pattern_dir)

    def _compile(self, pattern_dir: str | Path | None) -> None:
        self.pattern_dir = Path(pattern_dir) if pattern_dir else _default_pattern_dir()
        files = sorted(self.pattern_dir.glob("*.jsonl"))
        if not files:
            raise PatternError(f"no pattern files (*.jsonl) in {self.pattern_dir}")
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode())
            digest.update(f.read_bytes())
        self.version = f"{RULESET_NAME}+{digest.hexdigest()[:10]}"
        self.patterns = load_patterns(files)
        self.by_id = {p.id: p for p in self.patterns}
        self.languages = tuple(f.stem for f in files)
        from spacy.attrs import ORTH
        from spacy.matcher import Matcher, PhraseMatcher

        self._orth = ORTH

        nlp: Any = get_nlp()
        vocab = nlp.vocab
        # patterns the PhraseMatcher cannot take run on spaCy's Matcher, one Matcher each,
        # gated like the compiled ones: a Matcher walks every token of every reply and
        # evaluates its first slot's predicate there, so a pattern whose required words
        # are not all in the reply is not run at all
        self._matchers: list[tuple[tuple[frozenset[int], ...], Any]] = []
        # anchors: string patterns and each compiled pattern's rarest required segment;
        # the other segments are matched only near an anchor hit
        self._anchors = PhraseMatcher(vocab, attr="ORTH")
        self._fanout: dict[int, list[tuple[str, str | None]]] = {}
        # the other segments of each compiled pattern, matched slot by slot, only near the
        # pattern's anchor hits
        self._other_segs: dict[str, tuple[_OtherSeg, ...]] = {}
        self._reach: dict[str, tuple[int, int]] = {}  # tokens a match may span left / right of its anchor
        compiled: list[tuple[str, list[_Seg | _Gap]]] = []
        for p in self.patterns:
            if isinstance(p.pattern, str):
                continue
            elements = _compile_token_pattern(p.id, p.pattern)
            if elements is None:
                single = Matcher(vocab, validate=True)
                try:
                    single.add(p.id, [p.pattern])
                except Exception as exc:  # spaCy raises ValueError / MatchPatternError
                    raise PatternError(f"pattern {p.id!r} is not a valid Matcher pattern: {exc}") from None
                self._matchers.append((_required_words(p.pattern, vocab), single))
                self._fanout[vocab.strings.add(p.id)] = [(p.id, None)]
                continue
            compiled.append((p.id, elements))
        # how many segments and phrases each word appears in: a proxy for how often it occurs
        df: dict[str, int] = {}
        for _, elements in compiled:
            for el in elements:
                if isinstance(el, _Seg):
                    # (every word of every slot is in some phrase)
                    for w in {w for words, _ in el.slots for w in words}:
                        df[w] = df.get(w, 0) + 1

        from ._text import _LANG_WORDS

        # the function words of the language guesser, without its content words
        everyday = set().union(*_LANG_WORDS.values()) - _CONTENT_WORDS

        # function words and punctuation are everywhere in replies, whatever df says
        weight = {w: n + (1000 if w in everyday or not any(c.isalnum() for c in w) else 0) for w, n in df.items()}

        def commonness(seg: _Seg) -> int:
            # a segment hits as often as its most common phrase; a phrase as its rarest word.
            # Its slots are chosen independently, so the most common phrase takes each
            # required slot's most common word and leaves the optional slots out (or, with
            # no required slot, is the most common word of any slot alone)
            most = [(max(map(weight.__getitem__, words)), optional) for words, optional in seg.slots]
            required = [m for m, optional in most if not optional]
            return min(required) if required else max(m for m, _ in most)

        # phrases keyed by their words: a token pattern's words hold no space, so its phrase
        # and a string pattern split at single spaces are the same key exactly when their
        # texts are the same (the order of first appearance is the order of the key numbers)
        anchor_phrases: dict[tuple[str, ...], list[tuple[str, str | None]]] = {}
        # the PhraseMatcher takes a phrase as the ORTH ids of its tokens; each distinct
        # whitespace-separated word is tokenized once (as a reply's text would be) instead
        # of building one Doc per phrase (tens of thousands of Docs: seconds at start-up)
        word_ids: dict[str, tuple[int, ...]] = {}
        phrase_ids: dict[tuple[str, ...], tuple[int, ...]] = {}
        for p in self.patterns:
            if isinstance(p.pattern, str):
                words = tuple(p.pattern.split(" "))
                anchor_phrases.setdefault(words, []).append((p.id, None))
                phrase_ids[words] = self._phrase_ids(p.pattern, word_ids)
        ids_of = {w: self._phrase_ids(w, word_ids) for w in df}
        # most pattern words are one token: a phrase's ids without concatenating tuples
        one_token = {w: ids[0] for w, ids in ids_of.items() if len(ids) == 1}
        anchor_of: dict[str, int] = {}
        for pid, elements in compiled:
            required = [(commonness(el), k) for k, el in enumerate(elements)
                        if isinstance(el, _Seg) and not el.can_be_empty]
            anchor = min(required)[1]
            anchor_of[pid] = anchor
            seg = elements[anchor]
            assert isinstance(seg, _Seg)
            for ph in seg.phrases():
                anchor_phrases.setdefault(ph, []).append((pid, seg.key))
        self.n_phrases = len(anchor_phrases)
        # phrases with the same fanout share one match key (fewer keys: a faster compile)
        groups: dict[tuple[tuple[str, str | None], ...], list[tuple[int, ...]]] = {}
        for words, fan_list in anchor_phrases.items():
            fan = tuple(fan_list)
            ids = phrase_ids.get(words)
            if ids is None:
                try:
                    ids = tuple(map(one_token.__getitem__, words))
                except KeyError:
                    ids = tuple(i for w in words for i in ids_of[w])
            groups.setdefault(fan, []).append(ids)
        for n_key, (fan, docs) in enumerate(groups.items()):
            key = f"a\x1f{n_key}"
            self._anchors.add(key, docs)  # type: ignore[arg-type]  # token-id tuples: see _phrase_ids
            self._fanout[vocab.strings.add(key)] = list(fan)
        # the most tokens a segment's phrase spans: the most each of its slots can take
        seg_len = {
            el.key: sum(max(len(ids_of[w]) for w in words) for words, _ in el.slots)
            for _, elements in compiled for el in elements if isinstance(el, _Seg)
        }
        self._plan: dict[str, tuple[str, tuple[_Seg | _Gap, ...], tuple[_Seg | _Gap, ...]]] = {}
        # a pattern can match only if each of its other required segments has a phrase
        # whose first word is in the Doc: checked on word hashes before any search
        self._needs: dict[str, tuple[frozenset[int], ...]] = {}
        # and it matches only where each of them has a hit (checked before the search)
        self._required: dict[str, tuple[str, ...]] = {}
        for pid, elements in compiled:
            anchor = anchor_of[pid]
            segs = [el for k, el in enumerate(elements) if k != anchor and isinstance(el, _Seg)]
            # (the first token of the first word: "e-mail" is three tokens, the first "e")
            firsts = [frozenset(ids_of[w][0] for w in el.first_words()) for el in segs]
            other: list[_OtherSeg] = []
            for el, first in zip(segs, firsts, strict=True):
                slots = tuple(_slot_ids(words, optional, ids_of) for words, optional in el.slots)
                # a segment of required one-token slots matches one token a slot: its phrase
                # at a start is known once its first token is (the rest is checked in turn)
                fixed = (tuple(one for one, _, _ in slots[1:])
                         if all(not longer and not optional for _, longer, optional in slots) else None)
                other.append((el.key, first, slots, fixed))
            self._other_segs[pid] = tuple(other)
            self._needs[pid] = tuple(first for el, first in zip(segs, firsts, strict=True) if not el.can_be_empty)
            self._required[pid] = tuple(el.key for el in segs if not el.can_be_empty)
            self._reach[pid] = (_span_bounds(elements[:anchor], seg_len), _span_bounds(elements[anchor + 1 :], seg_len))
            self._plan[pid] = (
                elements[anchor].key,  # type: ignore[union-attr]
                tuple(el for el in elements[anchor + 1 :] if not (isinstance(el, _Gap) and el.hi == 0)),
                tuple(el for el in elements[:anchor][::-1] if not (isinstance(el, _Gap) and el.hi == 0)),
            )

    @staticmethod
    def _phrase_ids(text: str, cache: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
        out: list[int] = []
        for w in text.split():
            got = cache.get(w)
            if got is None and w.isalpha() and w not in _special_cases():
                # a word of letters alone is one token (no affix or infix rule splits letters;
                # only the tokenizer's special cases, emoticons such as "xD", are exceptions):
                # skipping the tokenizer for these halves the ruleset's compile time
                got = cache[w] = (get_nlp().vocab.strings.add(w),)
            if got is None:
                nlp = get_nlp()
                # a clitic written as its own pattern word ("'s") is tokenized as it stands
                # in text, after a word ("who's" -> who, 's), not alone (' s)
                toks = list(nlp.tokenizer("a" + w))[1:] if w.startswith("'") and len(w) > 1 else nlp.tokenizer(w)
                got = cache[w] = tuple(nlp.vocab.strings.add(t.text) for t in toks)
            out.extend(got)
        return tuple(out)

    def __repr__(self) -> str:
        return f"Ruleset({str(self.pattern_dir)!r}, patterns={len(self.patterns)}, version={self.version!r})"

    def _raw_matches(self, doc: Any) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        fanout = self._fanout
        n = len(doc)
        # the words of the reply, for the required-word checks below
        orths = doc.to_array(self._orth).tolist()
        present = set(orths)
        if self._matchers:
            matched = []
            for gate, single in self._matchers:
                for words in gate:
                    if present.isdisjoint(words):
                        break
                else:
                    matched.extend(single(doc))
            # in the order one Matcher holding them all returns them
            matched.sort(key=lambda m: (m[1], m[2]))
            out.extend((fanout[k][0][0], s, e) for k, s, e in matched)
        # anchor hits of compiled patterns, by pattern (a pattern has one anchor segment),
        # kept only for patterns whose other required segments each have a first word in
        # the reply (most anchor hits end here, before any segment bookkeeping)
        needs = self._needs
        possible: dict[str, bool] = {}
        active: dict[str, list[tuple[int, int]]] = {}
        for k, s, e in self._anchors(doc):
            for pid, seg in fanout[k]:
                if seg is None:
                    out.append((pid, s, e))
                    continue
                ok = possible.get(pid)
                if ok is None:
                    ok = True
                    for words in needs[pid]:
                        if present.isdisjoint(words):
                            ok = False
                            break
                    possible[pid] = ok
                if ok:
                    active.setdefault(pid, []).append((s, e))
        if not active:
            return out
        by_start: dict[str, dict[int, list[int]]] = {}
        by_end: dict[str, dict[int, list[int]]] = {}

        def add(seg: str, s: int, e: int) -> None:
            by_start.setdefault(seg, {}).setdefault(s, []).append(e)
            by_end.setdefault(seg, {}).setdefault(e, []).append(s)

        plans = self._plan
        for pid, spans in active.items():
            anchor = plans[pid][0]
            for s, e in spans:
                add(anchor, s, e)
        # the other segments, looked for only in windows around anchor hits
        windows: list[tuple[int, int]] = []
        for pid, spans in active.items():
            left, right = self._reach[pid]
            for s, e in spans:
                windows.append((max(0, s - left), min(n, e + right)))
        windows.sort()
        merged: list[list[int]] = []
        for ws, we in windows:
            if merged and ws <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], we)
            else:
                merged.append([ws, we])
        # where each word of the reply stands, to start a segment only where its first token is
        where: dict[int, list[int]] = {}
        for i, o in enumerate(orths):
            where.setdefault(o, []).append(i)
        other_segs = self._other_segs
        for pid in active:
            for seg, firsts, slots, fixed in other_segs[pid]:
                starts = [i for o in firsts & present for i in where[o]]
                if not starts:
                    continue
                starts.sort()
                # (a segment's hits by window, then start, then end: as a PhraseMatcher run
                # over each window reports them)
                for ws, we in merged:
                    for s in starts:
                        if not ws <= s < we:
                            continue
                        if fixed is None:
                            for e in _seg_ends(slots, orths, s, we):
                                add(seg, s, e)
                            continue
                        e = s + 1 + len(fixed)
                        if e <= we:
                            p = s + 1
                            for one in fixed:
                                if orths[p] not in one:
                                    break
                                p += 1
                            else:
                                add(seg, s, e)
        required = self._required
        for pid in active:
            if not all(seg in by_start for seg in required[pid]):
                continue  # a segment that must match found nothing
            found = _run_compiled(plans[pid], by_start, by_end, n)
            # keep maximal spans only: one hit per place, as the evidence shows it
            for s, e in found:
                if not any((s2 <= s and e <= e2) and (s2, e2) != (s, e) for s2, e2 in found):
                    out.append((pid, s, e))
        return out

    def match(self, doc: Any) -> list[RuleHit]:
        """All hits on ``doc`` (a Doc of folded text), with vetoes and keyword rules applied."""
        hits = self._raw_matches(doc)
        if not hits:
            return []
        by_id = self.by_id
        labelled = [(pid, by_id[pid].label, s, e) for pid, s, e in hits]
        vetoes = [(pid, s, e) for pid, label, s, e in labelled if label == "VETO"]
        out: list[RuleHit] = []
        n_tokens = len(doc)
        for pid, label, s, e in sorted(labelled, key=lambda h: (h[2], h[3], h[0])):
            vetoed: str | None = None
            if label in OPT_OUT_LABELS:
                for vid, vs, ve in vetoes:
                    if vs < e and s < ve:
                        vetoed = vid
                        break
                if label == "DNE_KEYWORD" and vetoed is None and not _is_whole_message(doc, s, e, n_tokens):
                    continue
            span = doc[s:e]
            out.append(RuleHit(pid, label, span.start_char, span.end_char, s, e, vetoed))
        return out


def _is_whole_message(doc: Any, s: int, e: int, n: int) -> bool:
    for i in range(n):
        if s <= i < e:
            continue
        tok = doc[i]
        if tok.is_punct or tok.is_space or tok.text in _KEYWORD_FILLER or not tok.text.strip("!.?¡¿:;,-*'\"()"):
            continue
        if tok.text.isascii() and not tok.text.isalnum() and not any(c.isalpha() for c in tok.text):
            continue  # emoticons and symbols
        if not any(c.isalnum() for c in tok.text):
            continue  # emoji
        return False
    return True


_default: Ruleset | None = None
_lock = threading.Lock()


def default_ruleset() -> Ruleset:
    """The packaged ruleset, compiled once, lazily."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = Ruleset()
    return _default


def explain(text: str, ruleset: Ruleset | None = None) -> list[RuleHit]:
    """Rule hits on ``text`` (folded and tokenized as the classifier does)."""
    rs = ruleset or default_ruleset()
    return rs.match(tokenize(fold(text)))


def _check_cases(path: Path, rs: Ruleset) -> list[str]:
    """Failures of a rule case file: lines ``{"text": ..., "dne": true|false}``."""
    fails = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            case = json.loads(line)
            hits = explain(case["text"], rs)
            live = [h.id for h in hits if h.live_opt_out]
            if bool(live) != bool(case["dne"]):
                shown = [(h.id, h.vetoed_by) for h in hits if h.label in (*OPT_OUT_LABELS, "VETO")]
                fails.append(f"{path.name}:{n}: expected dne={case['dne']}: {case['text']!r} hits={shown}")
    return fails


def main(argv: list[str] | None = None) -> int:
    """``python -m replyguard.rules check CASES.jsonl...`` or ``explain TEXT``."""
    import argparse
    import sys
    import time

    ap = argparse.ArgumentParser(prog="python -m replyguard.rules")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="compile the patterns and run rule case files")
    c.add_argument("cases", nargs="*", type=Path)
    e = sub.add_parser("explain", help="show the rule hits on a text")
    e.add_argument("text")
    args = ap.parse_args(argv)
    get_nlp()  # (spaCy's import and the tokenizer, apart from the compile's own time)
    t0 = time.perf_counter()
    try:
        rs = default_ruleset()
    except PatternError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{rs!r} compiled in {time.perf_counter() - t0:.2f}s; "
          f"{len(rs._matchers)} on the Matcher, "
          f"{rs.n_phrases} distinct phrases on the PhraseMatcher")
    if args.cmd == "explain":
        for h in explain(args.text, rs):
            print(f"{h.label:15s} {h.id:40s} {args.text[h.start:h.end]!r}" + (f" vetoed by {h.vetoed_by}" if h.vetoed_by else ""))
        return 0
    fails = []
    total = 0
    for path in args.cases:
        with open(path, encoding="utf-8") as fh:
            total += sum(1 for line in fh if line.strip())
        fails.extend(_check_cases(path, rs))
    for f in fails:
        print(f)
    print(f"{total - len(fails)} passed, {len(fails)} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
