from __future__ import annotations

import json
from pathlib import Path

import pytest

from replyguard.errors import PatternError
from replyguard.rules import LABELS, Ruleset, _check_cases, default_ruleset, explain

CASES = sorted((Path(__file__).resolve().parent / "rules").glob("*.jsonl"))
LANGS = ("en", "es", "fr", "de", "pt", "it", "nl")


def test_every_language_has_a_pattern_file_with_ids_labels_and_comments():
    rs = default_ruleset()
    assert set(LANGS) <= set(rs.languages)
    for p in rs.patterns:
        assert p.id.startswith(p.lang + "."), p.id
        assert p.label in LABELS
        assert p.comment.strip()
    for lang in LANGS:
        labels = {p.label for p in rs.patterns if p.lang == lang}
        assert {"DNE", "DNE_KEYWORD", "VETO"} <= labels, lang


def test_ruleset_version_is_named_and_hashed():
    assert default_ruleset().version.startswith("replyguard.rules.v1+")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_rule_cases(path):
    fails = _check_cases(path, default_ruleset())
    assert not fails, "\n".join(fails)


def _live(text):
    return [h.id for h in explain(text) if h.label in ("DNE", "DNE_KEYWORD") and h.vetoed_by is None]


@pytest.mark.parametrize("text", ["STOP", "stop", "Unsubscribe", "UNSUBSCRIBE!!", "remove me", "BAJA", "Arrêt",
                                  "ABMELDEN", "afmelden", "cancellami", "descadastrar", "Stop please"])
def test_keywords_count_as_the_whole_message(text):
    assert _live(text), text


@pytest.mark.parametrize("text", ["Please stop by our booth 12 at the fair", "Can you remove the attachment?",
                                  "please don't unsubscribe me", "I unsubscribed by mistake, add me back",
                                  "We will end the pilot next month"])
def test_vetoes_cancel_other_senses_and_negations(text):
    assert not _live(text), text


def test_hits_carry_character_offsets_into_the_text():
    text = "Thanks. Please take me off your list!"
    hits = [h for h in explain(text) if h.label == "DNE"]
    assert hits
    for h in hits:
        assert 0 <= h.start < h.end <= len(text)
        assert text[h.start : h.end].strip()


def _write(tmp_path, lines):
    d = tmp_path / "patterns"
    d.mkdir()
    (d / "xx.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return d


def test_bad_pattern_file_names_file_and_line(tmp_path):
    d = tmp_path / "patterns"
    d.mkdir()
    (d / "xx.jsonl").write_text('{"id": "xx.a", "label": "DNE", "pattern": "stop", "comment": "c"}\n{not json\n')
    with pytest.raises(PatternError, match=r"xx.jsonl:2"):
        Ruleset(d)


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"id": "xx.a", "label": "NOPE", "pattern": "x", "comment": "c"}, "label"),
        ({"id": "xx.a", "label": "DNE", "pattern": 3, "comment": "c"}, "pattern must be"),
        ({"id": "xx.a", "label": "DNE", "pattern": "x"}, "missing keys"),
        ({"id": "xx.a", "label": "DNE", "pattern": [{"POS": "VERB"}], "comment": "c"}, "not supported"),
        ({"id": "xx.a", "label": "DNE", "pattern": [{"LOWER": "a", "OP": "?"}, {"OP": "{0,2}"}, {"LOWER": "b"}],
          "comment": "c"}, "optional"),
        ({"id": "xx.a", "label": "DNE", "pattern": [{"LOWER": {"IN": ["stop", "\n"]}}, {"LOWER": "x"}],
          "comment": "c"}, "blank word"),
    ],
)
def test_invalid_patterns_are_rejected_with_a_reason(tmp_path, entry, match):
    with pytest.raises(PatternError, match=match):
        Ruleset(_write(tmp_path, [entry]))


def test_compiled_token_patterns_match_like_the_matcher(tmp_path):
    """A word-slot pattern compiled onto the PhraseMatcher finds the spans spaCy's Matcher finds."""
    from spacy.matcher import Matcher

    from replyguard._text import fold, get_nlp

    pattern = [{"LOWER": {"IN": ["take", "get"]}}, {"LOWER": {"IN": ["me", "us"]}}, {"LOWER": "right", "OP": "?"},
               {"OP": "{0,2}"}, {"LOWER": {"IN": ["off", "out"]}}]
    rs = Ruleset(_write(tmp_path, [{"id": "xx.t", "label": "DNE", "pattern": pattern, "comment": "c"}]))
    nlp = get_nlp()
    m = Matcher(nlp.vocab)
    m.add("t", [pattern])
    for text in ["take me off", "please get us right out of here", "take me a b c off", "get me right off the list",
                 "take us the off", "nothing here"]:
        doc = nlp.make_doc(fold(text))
        want = {(s, e) for _, s, e in m(doc)}
        # keep maximal spans, as the ruleset reports them
        want = {(s, e) for s, e in want if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2 in want)}
        got = {(h.token_start, h.token_end) for h in rs.match(doc)}
        assert got == want, text


def test_pattern_words_that_are_clitics_match_as_they_stand_in_text(tmp_path):
    rs = Ruleset(_write(tmp_path, [
        {"id": "en.veto.whos", "label": "VETO", "pattern": "who 's opting", "comment": "phrase"},
        {"id": "en.dne.its", "label": "DNE", "pattern": [{"LOWER": "it"}, {"LOWER": "'s"}, {"LOWER": "enough"}],
         "comment": "token pattern"},
    ]))
    ids = {h.id for h in explain("Who's opting me out? Anyway, it's enough now.", rs)}
    assert ids == {"en.veto.whos", "en.dne.its"}
