"""One feature function for training and inference.

:func:`analyze` runs the flow up to the model (zoning, folding, one spaCy
``Doc``, rules, language); :func:`feature_counts` turns an :class:`Analysis`
into named features. Training builds a vocabulary over those names; inference
maps them to weight rows with :class:`FeatureSpace` (a dict lookup, a per-token
cache for character n-grams, no scikit-learn call).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _quote_patterns as qp
from ._text import fold, guess_language, tokenize
from .extract import Extraction, extract
from .rules import LABELS, OPT_OUT_LABELS, RuleHit, Ruleset

__all__ = ["FEATURE_VERSION", "Analysis", "FeatureSpace", "analyze", "analyze_many", "feature_counts",
           "fixed_feature_names", "has_live_rule"]

FEATURE_VERSION = "f4"
_CHAR_N = (3, 4, 5)
_MAX_TOKENS = 400  # n-grams are read from the first tokens of the reply only
# per-word caches (features and model) are cleared past this many words, so that a
# long batch over an archive full of names and numbers does not grow memory with it
_CACHE_WORDS = 50_000


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the model and the policy read about one reply."""

    extraction: Extraction
    reply_text: str
    folded: str
    words: tuple[str, ...]
    hits: tuple[RuleHit, ...]
    language: str
    caps_ratio: float
    context: tuple[str, ...] = ()
    starts: tuple[int, ...] = ()  # character offset of each word in ``folded`` / ``reply_text``


_DIGITS = str.maketrans("123456789", "000000000")


def analyze(text: str, ruleset: Ruleset) -> Analysis:
    """Zone, fold, tokenize once and apply the rules to ``text``."""
    return analyze_many([text], ruleset)[0]


def analyze_many(texts: Sequence[str], ruleset: Ruleset) -> list[Analysis]:
    """:func:`analyze` of each text, running each stage over all of them in turn.

    The same analyses as one by one, about a quarter faster per reply in a batch of a
    hundred or more: one reply's stages in turn (zoning regexes, tokenizer, matchers,
    model tables) touch more code and data than the CPU caches hold, so going through
    them reply by reply reloads each stage every time.
    """
    exts = [extract(t) for t in texts]
    folded = [fold(e.text) for e in exts]
    docs = [tokenize(f) for f in folded]
    hits = [tuple(ruleset.match(doc)) if len(doc) else () for doc in docs]
    return [_analysis(*args) for args in zip(texts, exts, folded, docs, hits, strict=True)]


def _analysis(text: str, ext: Extraction, folded: str, doc: Any, hits: tuple[RuleHit, ...]) -> Analysis:
    """The rest of :func:`analyze` once the reply is zoned, tokenized and matched."""
    reply = ext.text
    out: list[str] = []
    starts: list[int] = []
    for t in doc:
        x = t.text
        if x.isalpha():
            out.append(x)
        elif not (t.is_punct or t.is_space):
            out.append(x.translate(_DIGITS))
        else:
            continue
        starts.append(t.idx)
        if len(out) >= _MAX_TOKENS:
            break
    words = tuple(out)
    head = reply[:2000]
    n_alpha = sum(map(str.isalpha, head))
    caps = sum(map(str.isupper, head)) / n_alpha if n_alpha else 0.0
    context = _hit_context(doc, reply, hits, folded) if hits else ()
    if ext.quote_found and 0 < len(out) <= _SHORT_ANSWER:
        context = context + _stop_offer_answer(text, ext, out)
    return Analysis(ext, reply, folded, words, hits, guess_language(words), caps, context, tuple(starts))


# Negations in the seven languages (folded). A negation just outside an opt-out hit
# ("no need to remove me", "Austragen muessen Sie mich nicht") often reverses it.
_NEGATIONS = frozenset(
    "not no never dont don't nothing nor no-one noone neither "
    "no nunca tampoco ni nada hace falta necesario "
    "ne pas jamais non plus aucun besoin inutile "
    "nicht nie kein keine keinen niemals brauchen mussen muessen "
    "niet nooit geen hoeft hoeven "
    "nao nunca precisa precisam nem "
    "non mai nessun bisogno serve".split()
)
# Other channels: an opt-out from texts, calls or WhatsApp is not an email opt-out.
_CHANNELS = frozenset(
    "sms text texts texting textos texto mensajes whatsapp wa phone phones call calls calling cell "
    "mobile llamadas llamen llamar telefono movil appels appeler telephone portable anrufe anrufen "
    "telefon handy bellen telefoon mobiel ligacoes ligar telefone celular chiamate chiamare "
    "telefono cellulare push notifiche notificaciones notifications".split()
)


# capitalised words that are not third persons: pronouns of address, days, months
_NOT_NAMES = frozenset(
    "i me my sie ihnen ihr ihre ihrem ihren ihrer u uw usted ustedes vous voce voces lei loro "
    "gdpr rgpd dsgvo avg lgpd stop spam unsubscribe email e-mail newsletter "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)


def _hit_context(doc: Any, reply: str, hits: tuple[RuleHit, ...], folded: str) -> tuple[str, ...]:
    """Cues around live opt-out hits: a negation just outside, another channel nearby, a
    capitalised name inside or right after (a third person: "remove Jenna Holt from..."),
    and the other rule labels found in the same reply. ``folded`` is the text ``doc`` was
    made of."""
    out: set[str] = set()
    n = len(doc)
    if any(h.live_opt_out for h in hits):
        # which other cues share the reply with a live opt-out: "unsubscribed by mistake,
        # please put me back" (INTERESTED), "remove Tom, he retired" (WRONG_CONTACT)
        out.update("n=dne+" + h.label for h in hits if h.label not in OPT_OUT_LABELS)
        # a new address in the reply ("stop using this one, write to me at ..."); spaCy's
        # like_email needs an "@", so a reply without one is not walked token by token
        if "@" in folded and any(t.like_email for t in doc):
            out.add("n=dne+email_address")
    for h in hits:
        if not h.live_opt_out:
            continue
        s, e = h.token_start, h.token_end
        for i in range(max(0, s - 4), min(n, e + 4)):
            t = doc[i].text
            if (i < s or i >= e) and t in _NEGATIONS:
                out.add("n=neg_before" if i < s else "n=neg_after")
            if t in _CHANNELS:
                out.add("n=channel")
        for i in range(s, min(n, e + 3)):
            tok = doc[i]
            ch = reply[tok.idx : tok.idx + 1]
            if i > 0 and ch.isupper() and len(tok.text) > 1 and tok.text not in _NOT_NAMES:
                prev = doc[i - 1]
                if not prev.is_space and prev.text not in (".", "!", "?", ":", '"', "-", "("):
                    out.add("n=name_near")
    return tuple(sorted(out))


_SHORT_ANSWER = 8  # words: a reply this short may answer a question in our quoted email


def _stop_offer_answer(text: str, ext: Extraction, words: list[str]) -> tuple[str, ...]:
    """Whether the quoted history offers to stop writing ("Should I close your file?"),
    and whether the short reply opens with a yes or a no."""
    end = ext.pieces[-1][1] if ext.pieces and not ext.is_html else 0
    quoted = fold(text[end : end + 4000])
    if qp.STOP_OFFER.search(quoted) is None:
        return ()
    first = words[0]
    if first in qp.ANSWER_YES:
        return ("n=stop_offer", "n=stop_offer_yes")
    if first in qp.ANSWER_NO:
        return ("n=stop_offer", "n=stop_offer_no")
    return ("n=stop_offer",)


def has_live_rule(a: Analysis) -> bool:
    """Whether an opt-out rule matched the reply and no veto cancelled it."""
    return any(h.live_opt_out for h in a.hits)


_CHAR_MIN_WORD = 4  # short words (me, the, no) carry their own word feature only


def _char_grams(word: str) -> list[str]:
    if len(word) < _CHAR_MIN_WORD:
        return []
    w = f"<{word}>"
    out = []
    for n in _CHAR_N:
        for i in range(len(w) - n + 1):
            out.append("c=" + w[i : i + n])
    return out


def shape_features(a: Analysis) -> list[str]:
    """Shape cues: length, caps, question, how the reply was found."""
    out = []
    n = len(a.words)
    if n == 0:
        out.append("s=empty")
    elif n <= 3:
        out.append("s=short")
    elif n <= 12:
        out.append("s=medium")
    elif n > 80:
        out.append("s=long")
    if a.caps_ratio > 0.6 and n:
        out.append("s=caps")
    if "?" in a.reply_text:
        out.append("s=question")
    if "!" in a.reply_text:
        out.append("s=exclaim")
    if not a.extraction.found_reply:
        out.append("s=no_reply")
    if a.extraction.quote_found:
        out.append("s=quote_found")
    out.append("s=lang_" + a.language)
    return out


_LANGS = ("en", "es", "fr", "de", "pt", "it", "nl")


def fixed_feature_names(ruleset: Ruleset) -> list[str]:
    """Every rule, label, shape and context feature the functions above can emit: a
    model's vocabulary holds them all, seen in training or not."""
    rules = [f"r={p.id}" for p in ruleset.patterns]
    rules += [f"v={p.id}" for p in ruleset.patterns if p.label in OPT_OUT_LABELS]
    labels = [f"L={lab}" for lab in LABELS] + [f"L={lab}_VETOED" for lab in OPT_OUT_LABELS]
    shapes = [f"s={s}" for s in ("empty", "short", "medium", "long", "caps", "question", "exclaim",
                                 "no_reply", "quote_found")]
    shapes += [f"s=lang_{lang}" for lang in _LANGS]
    context = ["n=neg_before", "n=neg_after", "n=channel", "n=name_near",
               "n=stop_offer", "n=stop_offer_yes", "n=stop_offer_no", "n=dne+email_address"]
    context += [f"n=dne+{lab}" for lab in LABELS if lab not in OPT_OUT_LABELS]
    return rules + labels + shapes + context


def rule_features(hits: Iterable[RuleHit]) -> list[str]:
    out = []
    for h in hits:
        if h.vetoed_by is not None:
            out.append("v=" + h.id)
            out.append("L=" + h.label + "_VETOED")
        else:
            out.append("r=" + h.id)
            out.append("L=" + h.label)
    return out


def feature_counts(a: Analysis) -> tuple[list[str], list[str]]:
    """(n-gram feature names, rule and shape feature names) of an analysis.

    N-gram names repeat once per occurrence. The same function feeds training
    (through :class:`FeatureSpace`) and inference.
    """
    words = a.words
    grams: list[str] = []
    for i, w in enumerate(words):
        grams.append("w=" + w)
        if i:
            grams.append("b=" + words[i - 1] + " " + w)
        grams.extend(_char_grams(w))
    return grams, rule_features(a.hits) + shape_features(a) + list(a.context)


class FeatureSpace:
    """Feature names -> column indices, with the weighting both paths share.

    N-gram features (words, word bigrams, character 3-5-grams of words) get
    ``1 / sqrt(number of n-gram occurrences)`` each (an L2-style length
    normalisation); rule and shape features get 1.0.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.index = dict(zip(names, range(len(names)), strict=True))
        self._word_cache: dict[str, tuple[tuple[int, ...], int]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def knows(self, w: str) -> bool:
        """Whether any feature of word ``w`` (the word, its character n-grams) is known."""
        return bool(self._word_indices(w)[0])

    def _word_indices(self, w: str) -> tuple[tuple[int, ...], int]:
        """Columns of a word's own features (word, character n-grams) and how many
        n-gram occurrences the word contributes (for the length normalisation)."""
        got = self._word_cache.get(w)
        if got is None:
            idx = self.index
            grams = ("w=" + w, *_char_grams(w))
            got = (tuple(idx[g] for g in grams if g in idx), len(grams))
            if len(self._word_cache) > _CACHE_WORDS:
                self._word_cache.clear()
            self._word_cache[w] = got
        return got

    def vectorize(self, a: Analysis) -> tuple[list[int], list[float]]:
        """Column indices and values of one analysis (duplicates are summed by the caller)."""
        idx = self.index
        cols: list[int] = []
        n_grams = 0
        prev: str | None = None
        cache = self._word_cache
        for w in a.words:
            got = cache.get(w)
            if got is None:
                got = self._word_indices(w)
            cols.extend(got[0])
            # occurrences as feature_counts() lists them: word, bigram, character n-grams
            n_grams += got[1]
            if prev is not None:
                n_grams += 1
                j = idx.get("b=" + prev + " " + w)
                if j is not None:
                    cols.append(j)
            prev = w
        val = 1.0 / math.sqrt(n_grams) if n_grams else 0.0
        vals = [val] * len(cols)
        for name in rule_features(a.hits) + shape_features(a) + list(a.context):
            j = idx.get(name)
            if j is not None:
                cols.append(j)
                vals.append(1.0)
        return cols, vals


def build_vocabulary(
    analyses: Iterable[Analysis], *, min_df_words: int = 2, min_df_chars: int = 3, extra: Iterable[str] = ()
) -> list[str]:
    """Sorted feature names seen often enough in training analyses."""
    from collections import Counter

    df: Counter[str] = Counter()
    always: set[str] = set(extra)
    for a in analyses:
        grams, other = feature_counts(a)
        df.update(set(grams))
        always.update(other)
    keep = {
        g for g, c in df.items() if c >= (min_df_chars if g.startswith("c=") else min_df_words)
    }
    return sorted(keep | always)
