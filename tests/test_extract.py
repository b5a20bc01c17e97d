from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from replyguard import extract
from replyguard.extract import MAX_CHARS

ZONING = Path(__file__).resolve().parent / "fixtures" / "zoning"
FIXTURES = sorted(ZONING.glob("*.json"))


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def test_golden_fixtures_cover_every_client_in_seven_languages():
    clients = {p.name.split("__")[0] for p in FIXTURES}
    langs = {p.stem.split("__")[1] for p in FIXTURES}
    assert langs == {"en", "es", "fr", "de", "pt", "it", "nl"}
    for client in clients:
        for lang in langs:
            assert (ZONING / f"{client}__{lang}.json").is_file(), f"missing {client}__{lang}"
    assert {"gmail_text", "gmail_html", "outlook_desktop", "outlook_web", "outlook_mobile", "apple_mail",
            "thunderbird", "yahoo", "inline", "bottom_posted", "forward"} <= clients


@pytest.mark.parametrize("folder", ["zoning", "zoning_heldout"])
def test_golden_fixtures_match_at_least_90_percent(folder):
    fails = []
    paths = sorted((ZONING.parent / folder).glob("*.json"))
    assert len(paths) >= 70
    for path in paths:
        case = json.loads(path.read_text(encoding="utf-8"))
        got = extract(case["raw"]).text
        if _norm(got) != _norm(case["expected"]):
            fails.append(path.name)
    rate = 1 - len(fails) / len(paths)
    assert rate >= 0.90, f"zoning matched {rate:.1%}; failures: {fails}"


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_offsets_point_into_the_original(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    ext = extract(case["raw"])
    assert ext.found_reply
    for start, end in ext.pieces:
        assert 0 <= start <= end <= len(case["raw"])
    if case["format"] == "text":
        # text pieces are verbatim slices of the original
        assert "\n\n".join(case["raw"][s:e] for s, e in ext.pieces) == ext.text


def test_top_posted_reply_drops_quote_and_footer():
    raw = ("Please take me off your list.\n\nOn Tue, Jan 6, 2026 at 9:14 AM Sam Lee <sam@example.com> wrote:\n"
           "> Hi Ana, quick question about your fleet.\n> To unsubscribe, click here.\n")
    ext = extract(raw)
    assert ext.text == "Please take me off your list."
    assert ext.quote_found and ext.found_reply
    assert raw[ext.pieces[0][0] : ext.pieces[0][1]] == ext.text


@pytest.mark.parametrize(
    "header",
    [
        "El lun, 5 ene 2026 a las 10:02, Ana Ruiz (<ana@example.com>) escribió:",
        "Le lun. 5 janv. 2026 à 10:02, Ana Ruiz <ana@example.com> a écrit :",
        "Am Mo., 5. Jan. 2026 um 10:02 Uhr schrieb Ana Ruiz <ana@example.com>:",
        "Em seg., 5 de jan. de 2026 às 10:02, Ana Ruiz <ana@example.com> escreveu:",
        "Il giorno lun 5 gen 2026 alle ore 10:02 Ana Ruiz <ana@example.com> ha scritto:",
        "Op ma 5 jan 2026 om 10:02 schreef Ana Ruiz <ana@example.com>:",
        "On Mon, Jan 5, 2026 at 10:02 AM Ana Ruiz <\nana@example.com> wrote:",
        "-----Original Message-----\nFrom: Ana\nSent: Monday\nTo: Bo\nSubject: hi",
        "Von: Ana Ruiz\nGesendet: Montag, 5. Januar 2026 10:02\nAn: Bo\nBetreff: Hallo",
        "De : Ana Ruiz\nEnvoyé : lundi 5 janvier 2026 10:02\nÀ : Bo\nObjet : Bonjour",
        "________________________________\nFrom: Ana Ruiz <ana@example.com>\nSent: Monday, January 5, 2026\nTo: Bo\nSubject: Hi",
        "-------- Ursprüngliche Nachricht --------\nVon: Ana\nDatum: 05.01.26\nAn: Bo",
    ],
)
def test_localized_quote_headers_end_the_reply(header):
    raw = f"Bitte keine E-Mails mehr.\n\n{header}\n> Unsubscribe: https://example.com/u\nTo unsubscribe click here"
    assert extract(raw).text == "Bitte keine E-Mails mehr."


def test_nothing_above_the_quote_is_reported_not_guessed():
    raw = "On Mon, Jan 5, 2026 at 10:02 AM Sam <s@example.com> wrote:\n> Hi\n> To unsubscribe reply STOP\n"
    ext = extract(raw)
    assert ext.text == "" and not ext.found_reply and ext.quote_found


def test_forward_without_note_has_no_reply():
    raw = "---------- Forwarded message ---------\nFrom: Sam <s@example.com>\nDate: Mon\nSubject: x\nTo: a\n\nUnsubscribe here"
    ext = extract(raw)
    assert not ext.found_reply and "forward" in ext.removed


def test_bottom_posted_reply_below_quote_is_found():
    raw = "On Mon, Jan 5, 2026 at 10:02 AM Sam <s@example.com> wrote:\n> Our offer\n> Unsubscribe\n\nPlease remove me.\n"
    assert extract(raw).text == "Please remove me."


def test_signature_disclaimer_and_mobile_footer_are_dropped():
    raw = ("Not for us, sorry.\n\nBest regards,\nJane Doe\nHead of Ops | Acme\n+1 555 0100\n\n"
           "CONFIDENTIALITY NOTICE: If you are not the intended recipient, delete this email.")
    assert extract(raw).text == "Not for us, sorry."
    assert extract("Stop emailing me\n\nSent from my iPhone").text == "Stop emailing me"


def test_short_imperative_after_thanks_is_not_mistaken_for_a_signature():
    assert extract("Hi,\nThanks!\nPlease remove me.").text == "Hi,\nThanks!\nPlease remove me."
    assert "take me off" in extract("Best,\nJohn\n\nP.S. take me off your list").text


def test_html_body_is_rendered_and_quote_container_dropped():
    raw = ('<div dir="ltr">Please&nbsp;remove me.<br></div><div class="gmail_quote">'
           '<div class="gmail_attr">On Mon, Sam wrote:</div><blockquote>Hi<br>'
           '<a href="https://example.com/u">Unsubscribe</a></blockquote></div>')
    ext = extract(raw)
    assert ext.is_html and ext.text == "Please remove me."
    start, end = ext.pieces[0]
    assert "Please" in raw[start:end]


def test_long_input_is_truncated_at_the_cap():
    ext = extract("x " * (MAX_CHARS))
    assert ext.truncated


@pytest.mark.parametrize("bad", [None, b"bytes", 3, ["list"]])
def test_non_str_raises_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        extract(bad)


@pytest.mark.parametrize("sentence", [
    "If you are not going to stop, delete my address now.",
    "Si no es algo de energía renovable, no hace falta que me escriban más.",
    "Ai sensi del GDPR vi chiedo di cancellare i miei dati.",
    "Falls Sie diese Mails weiter schicken, melde ich das.",
    "Se você não é o responsável, me tire da lista mesmo assim.",
])
def test_reply_sentences_that_open_like_a_disclaimer_are_kept(sentence):
    e = extract(f"Hello,\n\n{sentence}\n\nThanks")
    assert sentence in e.text
    assert "disclaimer" not in e.removed


def test_a_disclaimer_that_names_its_recipient_is_cut():
    e = extract("Thanks, noted.\n\nIf you are not the intended recipient of this email, "
                "please notify the sender and delete it.")
    assert e.text == "Thanks, noted." and "disclaimer" in e.removed


@pytest.mark.parametrize("disclaimer", [
    "Der Inhalt dieser E-Mail ist vertraulich und ausschließlich für den bezeichneten Adressaten bestimmt.",
    "De inhoud van dit bericht is vertrouwelijk en uitsluitend bestemd voor de geadresseerde.",
    "The contents of this email are confidential and intended for the named recipient only.",
])
def test_disclaimers_opening_with_the_contents_of_this_message_are_cut(disclaimer):
    e = extract(f"Back on Monday.\n\n{disclaimer} Please delete it if received in error.")
    assert e.text == "Back on Monday." and "disclaimer" in e.removed


@pytest.mark.parametrize("disclaimer", [
    # plural adjective: "confidenciais" does not contain "confidencial"
    "Esta mensagem e os ficheiros que a acompanham são confidenciais e só podem ser lidos pelo destinatário.",
    "Este e-mail pode conter dados confidenciais; se o recebeu por engano, apague-o.",
    "Il presente messaggio è riservato al solo destinatario; se lo ricevete per errore cancellatelo.",
    "AVVERTENZA: le informazioni qui riportate sono destinate unicamente al destinatario indicato.",
    "AVISO: este correio é destinado apenas ao destinatário e, se recebido por engano, deve ser apagado.",
])
def test_portuguese_and_italian_disclaimers_are_cut(disclaimer):
    e = extract(f"Grazie, ricevuto.\n\n{disclaimer}")
    assert e.text == "Grazie, ricevuto." and "disclaimer" in e.removed


def test_a_reply_line_with_a_colon_opener_and_no_recipient_cue_is_kept():
    e = extract("Obrigado pelo contacto.\n\nAviso: a partir de segunda só respondo de tarde.")
    assert "Aviso: a partir de segunda" in e.text
