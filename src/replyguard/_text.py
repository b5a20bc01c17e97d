"""Text normalisation shared by rules, features and training.

``fold`` lower-cases, strips accents and unifies typographic punctuation while
keeping the string's length, so that offsets found in the folded text are
offsets into the original text too.
"""

from __future__ import annotations

import contextlib
import gc
import re
import threading
import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language

__all__ = ["fold", "get_nlp", "guess_language", "tokenize"]

_PUNCT_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u02bc": "'", "\u00b4": "'",
    "`": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ",
    "\u200b": " ", "\u200c": " ", "\u200d": " ", "\u2060": " ", "\ufeff": " ",
    "\u00df": "s",  # sharp s folds to one char to keep length; patterns write "ss" or "s"
}

_table: str | None = None
# ASCII characters that fold to something other than their lower case
_ASCII_CLEAN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f`]")
_lock = threading.Lock()


def _build_table() -> str:
    table: dict[int, str] = {}
    for cp in range(0x41, 0x2000):
        ch = chr(cp)
        if ch in _PUNCT_MAP:
            continue
        low = ch.lower()
        if len(low) != 1:
            low = ch
        base = unicodedata.normalize("NFKD", low)
        cand = base[0] if base else low
        if len(base) > 1 and all(unicodedata.combining(c) for c in base[1:]):
            low = cand
        if low != ch:
            table[cp] = low
    for k, v in _PUNCT_MAP.items():
        table[ord(k)] = v
    for cp in range(0xD800, 0xE000):  # lone surrogates cannot be encoded: replace, keep length
        table[cp] = "\ufffd"
    for cp in range(0x00, 0x20):  # control characters other than tab and newlines read as spaces
        if chr(cp) not in "\t\n\r":
            table[cp] = " "
    # a 64K-character string indexed by code point: str.translate's fastest table form;
    # characters past it (emoji, other planes) are left as they are
    chars = list(map(chr, range(0x10000)))
    for cp, out in table.items():
        chars[cp] = out
    return "".join(chars)


def fold(text: str) -> str:
    """Lower-case, strip accents and unify quotes/dashes/spaces, keeping length.

    >>> fold("Désabonnez-MOI s’il vous plaît")
    "desabonnez-moi s'il vous plait"
    >>> len(fold("Ärger")) == len("Ärger")
    True
    """
    global _table
    if text.isascii() and _ASCII_CLEAN.search(text) is None:
        return text.lower()  # the common case, in C
    if _table is None:
        with _lock:
            if _table is None:
                _table = _build_table()
    return text.translate(_table)


_nlp: Any = None
# chunks the tokenizer keeps: the ~10,000 pattern words plus, first come, the chunks of
# replies (20,000 hold 94% of the chunks of the training replies); about 350 bytes each
_TOKENIZER_CACHE = 30_000


def get_nlp() -> Language:
    """The shared blank spaCy pipeline (multi-language tokenizer), built once, lazily.

    The tokenizer also splits at apostrophes, so that elisions and contractions
    ("m'écrire", "don't") give the same tokens in every language: ``m ' écrire``.
    """
    global _nlp
    if _nlp is None:
        with _lock:
            if _nlp is None:
                # (spaCy's import, here on first use, makes a few hundred thousand objects
                # that all live on: collections during it only walked them)
                with gc_paused():
                    _nlp = _build_nlp()
    return _nlp


def _build_nlp() -> Any:
    import spacy
    from spacy.util import compile_infix_regex

    nlp: Any = spacy.blank("xx")
    # lexical attributes are computed in Python for every new word (each phrase
    # word at ruleset compile, each unseen word of a reply); keep the ones
    # patterns and the library read, drop shape, affixes, case flags, stop words
    from spacy import attrs

    keep = {attrs.LOWER, attrs.NORM, attrs.IS_ALPHA, attrs.IS_DIGIT, attrs.IS_SPACE,
            attrs.IS_PUNCT, attrs.LIKE_NUM, attrs.LIKE_EMAIL, attrs.LIKE_URL}
    getters = nlp.vocab.lex_attr_getters
    nlp.vocab.lex_attr_getters = {k: f for k, f in getters.items() if k in keep}
    infixes = [*nlp.Defaults.infixes, r"'"]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    # the tokenizer caches how it split each whitespace-free chunk, up to a
    # number of chunks (10,000 by default); compiling the ruleset alone
    # tokenizes that many pattern words, so no chunk of a reply was cached and
    # every one ran the affix regexes again (a reply took 3-4x longer to tokenize)
    nlp.tokenizer.max_cache_size = _TOKENIZER_CACHE
    return nlp


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside, for work that makes many objects and keeps
    most (spaCy's import, compiling the ruleset): collections there kept starting and
    walking what was already kept. Reference counting still frees whatever is dropped."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# spaCy's tokenizer splits prefixes and suffixes off a whitespace-free chunk one at a time,
# re-reading the rest each time: a run of thousands of emoji or "!!!" costs quadratic time
# (seconds for 5,000 characters). No word or token of a reply is this long.
_RUN_MAX = 64
_LONG_RUN = re.compile(rf"\S{{{_RUN_MAX}}}")


def tokenize(folded: str) -> Any:
    """The spaCy ``Doc`` of folded text, built in linear time: every ``_RUN_MAX``-th
    character of a longer whitespace-free run becomes a space (the length, and so every
    offset, stays the same)."""
    if len(folded) >= _RUN_MAX and _LONG_RUN.search(folded):
        folded = _LONG_RUN.sub(lambda m: m.group(0)[:-1] + " ", folded)
    return get_nlp().make_doc(folded)


# Function words that identify a language in a few tokens. Each appears in
# everyday email; words shared by several languages are left out.
_LANG_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        ["the", "and", "you", "your", "is", "are", "to", "of", "for", "this", "that", "with", "please", "thanks", "thank", "not", "me", "my", "we", "our", "i", "it", "be", "have", "will", "would", "email", "emails", "list", "remove", "stop", "off", "any"]
    ),
    "es": frozenset(
        ["el", "los", "las", "y", "usted", "ustedes", "por", "favor", "gracias", "mi", "mis", "nosotros", "correo", "correos", "no", "mas", "lista", "quiero", "enviar", "envien", "este", "esta", "para", "con", "del", "hola", "saludos", "estoy"]
    ),
    "fr": frozenset(
        ["le", "les", "et", "vous", "votre", "vos", "je", "ne", "pas", "plus", "merci", "mon", "mes", "nous", "est", "pour", "avec", "des", "une", "ce", "cette", "bonjour", "cordialement", "suis", "liste"]
    ),
    "de": frozenset(
        ["der", "die", "das", "und", "sie", "ihr", "ihre", "ich", "nicht", "mehr", "bitte", "danke", "mein", "meine", "wir", "ist", "fur", "mit", "ein", "eine", "keine", "hallo", "gruse", "grusse", "liste", "mich", "mir"]
    ),
    "pt": frozenset(
        ["o", "os", "as", "e", "voce", "voces", "obrigado", "obrigada", "meu", "minha", "nao", "mais", "lista", "quero", "enviar", "para", "com", "do", "da", "ola", "atenciosamente", "estou", "email"]
    ),
    "it": frozenset(
        ["il", "lo", "gli", "e", "voi", "vostro", "vostra", "io", "non", "piu", "grazie", "mio", "mia", "noi", "per", "con", "della", "una", "questa", "sono", "ciao", "saluti", "lista", "mi"]
    ),
    "nl": frozenset(
        ["de", "het", "en", "u", "uw", "jullie", "ik", "niet", "meer", "alstublieft", "aub", "bedankt", "dank", "mijn", "wij", "is", "voor", "met", "een", "geen", "graag", "groet", "lijst", "mij"]
    ),
}


_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _LANG_WORDS.items():
    for _w in _words:
        _WORD_LANGS[_w] = (*_WORD_LANGS.get(_w, ()), _lang)


def guess_language(tokens: list[str] | tuple[str, ...], default: str = "en") -> str:
    """Guess the ISO 639-1 language of folded tokens by counting function words.

    >>> guess_language("por favor no me envien mas correos".split())
    'es'
    """
    counts: dict[str, int] = {}
    get = _WORD_LANGS.get
    for t in tokens:
        langs = get(t)
        if langs:
            for lang in langs:
                counts[lang] = counts.get(lang, 0) + 1
    if not counts:
        return default
    order = tuple(_LANG_WORDS)
    return max(counts, key=lambda lang: (counts[lang], -order.index(lang)))
