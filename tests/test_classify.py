from __future__ import annotations

import json
import re
import shutil

import pytest

from replyguard import (
    Evidence,
    Intent,
    ModelFileError,
    ModelNotFoundError,
    ReplyClassifier,
    Verdict,
    classify_email,
    classify_replies,
    classify_reply,
)
from replyguard.classify import default_model_path

THREAD = ("Please take me off your list.\n\nOn Tue, Jan 6, 2026 at 9:14 AM Sam Lee <sam@example.com> wrote:\n"
          "> Hi Ana, a quick question about your fleet.\n> Not interested? Unsubscribe here.\n")


def test_verdict_has_the_public_fields():
    v = classify_reply(THREAD)
    assert isinstance(v, Verdict)
    assert v.intent is Intent.DO_NOT_EMAIL and v.intent == "do_not_email"
    assert v.do_not_email is True
    assert 0.0 <= v.score <= 1.0
    assert set(v.scores) == {i.value for i in Intent}
    assert abs(sum(v.scores.values()) - 1.0) < 1e-6
    assert isinstance(v.needs_review, bool)
    assert v.reply_text == "Please take me off your list."
    assert v.language == "en"
    assert v.model_version and v.ruleset_version.startswith("replyguard.rules.v1")
    assert all(isinstance(e, Evidence) for e in v.evidence)


def test_evidence_offsets_point_into_the_original_text():
    v = classify_reply(THREAD)
    rules = [e for e in v.evidence if e.source == "rule"]
    assert rules, v.evidence
    for e in rules:
        assert THREAD[e.start : e.end] == e.text


def test_to_dict_is_json_ready():
    d = classify_reply(THREAD).to_dict()
    again = json.loads(json.dumps(d))
    assert again["intent"] == "do_not_email" and again["do_not_email"] is True
    assert {"score", "scores", "needs_review", "evidence", "reply_text", "language", "model_version",
            "ruleset_version"} <= set(again)


def test_quoted_footer_alone_never_makes_a_reply_do_not_email():
    raw = ("Sounds good, Tuesday at 10 works for me.\n\nOn Mon, Jan 5, 2026 at 10:02 AM Sam <s@example.com> wrote:\n"
           "> Hi!\n> To stop receiving these emails, unsubscribe here. Reply STOP to opt out.\n")
    v = classify_reply(raw)
    assert not v.do_not_email
    assert v.intent is Intent.INTERESTED


def test_no_reply_above_quote_is_flagged_not_classified_as_thread():
    raw = "On Mon, Jan 5, 2026 at 10:02 AM Sam <s@example.com> wrote:\n> Hi\n> Unsubscribe: reply STOP\n"
    v = classify_reply(raw)
    assert "no_reply_found" in v.flags
    assert v.needs_review and not v.do_not_email
    assert v.reply_text == ""


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x02", "🙂🙂🙂", "‏مرحبا بكم‎", "日本語のテキスト",
                                  "a" * 1_000_000, "<div>" * 50_000, "> " * 200_000, "\ud800 lone surrogate"])
def test_any_string_returns_a_verdict(text):
    v = classify_reply(text)
    assert isinstance(v, Verdict)
    json.dumps(v.to_dict())


def test_one_megabyte_input_is_flagged_truncated():
    assert "truncated" in classify_reply("please remove me " * 70_000).flags


@pytest.mark.parametrize("bad", [None, b"STOP", 42, ["STOP"], {"text": "STOP"}])
def test_non_str_raises_type_error_naming_the_type(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        classify_reply(bad)


def test_classify_replies_matches_classify_reply_in_order():
    texts = ["STOP", "Sounds good, Tuesday at 10?", THREAD, "I am out of the office until May 4.", ""]
    one = [classify_reply(t).to_dict() for t in texts]
    assert [v.to_dict() for v in classify_replies(texts)] == one
    assert [v.to_dict() for v in classify_replies(texts, n_jobs=2, batch_size=2)] == one


def test_classify_replies_repeated_texts_get_equal_verdicts_of_their_own():
    texts = ["STOP", "Sounds good, Tuesday at 10?", "STOP", THREAD, "STOP", THREAD]
    got = classify_replies(texts)
    assert [v.to_dict() for v in got] == [classify_reply(t).to_dict() for t in texts]
    got[0].scores["do_not_email"] = 0.0  # one caller's edit does not show in another's verdict
    assert got[2].scores == got[4].scores == classify_reply("STOP").scores


def test_classify_replies_in_blocks_matches_classify_reply(monkeypatch):
    import replyguard.classify as classify

    monkeypatch.setattr(classify, "_BLOCK_REPLIES", 2)
    monkeypatch.setattr(classify, "_BLOCK_CHARS", 40)
    texts = ["STOP", "x" * 100, "Sounds good, Tuesday at 10?", THREAD, "", "Please remove me.", "ok"]
    assert [v.to_dict() for v in classify_replies(texts)] == [classify_reply(t).to_dict() for t in texts]


def test_classify_replies_rejects_non_str_items_with_their_index():
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        classify_replies(["ok", 3])


def test_missing_model_directory_names_the_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match=re.escape(str(tmp_path / "nope"))):
        ReplyClassifier.load(tmp_path / "nope")


def test_corrupt_model_file_names_the_path(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(default_model_path(), d)
    with open(d / "weights.npz", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00garbage\x00")
    with pytest.raises(ModelFileError, match=r"weights\.npz"):
        ReplyClassifier.load(d)


def test_missing_model_file_names_the_path(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(default_model_path(), d)
    (d / "features.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"features\.json"):
        ReplyClassifier.load(d)


def test_model_card_records_thresholds_versions_and_data_hash():
    card = json.loads((default_model_path() / "model_card.json").read_text())
    assert 0 < card["thresholds"]["do_not_email"] < 1
    lo, hi = card["thresholds"]["needs_review"]
    assert lo <= hi == max(card["thresholds"]["do_not_email"], card["thresholds"]["do_not_email_without_rule"])
    assert len(card["data"]["train_sha256"]) == 64
    assert {"numpy", "scikit-learn", "spacy"} <= set(card["versions"])
    assert "test" in card["metrics"]


def _mail(headers: str, body: str) -> bytes:
    return (headers + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()


def test_auto_submitted_header_makes_an_auto_reply():
    msg = _mail("From: a@example.com\nSubject: Re: hi\nAuto-Submitted: auto-replied\n",
                "Thank you for your message. I will read it when I am back on Monday.")
    v = classify_email(msg)
    assert v.intent is Intent.OUT_OF_OFFICE and "auto_submitted" in v.flags
    assert any(e.source == "header" and e.id == "Auto-Submitted" for e in v.evidence)


def test_auto_reply_that_asks_for_removal_is_still_do_not_email():
    msg = _mail("From: a@example.com\nSubject: Automatic reply: hi\nAuto-Submitted: auto-replied\n",
                "I am out of the office until Monday. Vendors: please remove this address from your mailing lists.")
    assert classify_email(msg).do_not_email


def test_client_one_click_unsubscribe_email_is_do_not_email():
    msg = _mail("From: a@example.com\nTo: unsubscribe@example.com\nSubject: Unsubscribe\nX-Apple-Unsubscribe: true\n", "")
    v = classify_email(msg)
    assert v.do_not_email and "client_unsubscribe" in v.flags


def test_classify_email_reads_html_only_messages_and_str_input():
    msg = ("From: a@example.com\nSubject: Re: offer\nContent-Type: text/html; charset=utf-8\n\n"
           "<div>Please unsubscribe me.</div><blockquote>Our offer. Unsubscribe</blockquote>")
    assert classify_email(msg).do_not_email


def test_classify_email_rejects_other_types():
    with pytest.raises(TypeError, match="int"):
        classify_email(5)


@pytest.mark.parametrize("subject", ["Unsubscribe", "unsubscribe 8f3a21c4", "Abmelden", "Baja", "Désinscription"])
def test_email_to_the_unsubscribe_address_is_do_not_email(subject):
    body = "This message was automatically generated by the mail client."
    msg = _mail(f"From: a@example.com\nTo: unsubscribe@example.com\nSubject: {subject}\n", body)
    v = classify_email(msg)
    assert v.do_not_email and any(e.source == "header" and e.id == "Subject" for e in v.evidence)


def test_reply_whose_subject_mentions_unsubscribe_in_a_sentence_is_read_normally():
    msg = _mail("From: a@example.com\nSubject: Re: how does your unsubscribe feature work?\n",
                "Sounds good, Tuesday at 10 works.")
    assert not classify_email(msg).do_not_email


_STOP_OFFERS = [
    ("Yes please.", "On Tue, 3 Mar 2026 at 10:14, Ana Ruiz <ana@example.com> wrote:\n"
     "> Should I stop reaching out? Totally fine if so.\n> Ana"),
    ("Sí, por favor", "El mar, 3 mar 2026 a las 10:14, Ana Ruiz <ana@example.com> escribió:\n"
     "> ¿Prefiere que dejemos de escribirle? Sin problema.\n"),
    ("Ja, bitte.", "Am Di., 3. März 2026 um 10:14 Uhr schrieb Jan Vos <jan@example.com>:\n"
     "> Soll ich Sie aus dem Verteiler austragen?\n"),
    ("SIM", "Em ter., 3 de mar. de 2026 às 10:14, Ana <a@example.com> escreveu:\n"
     "> Prefere que deixemos de lhe enviar estes e-mails? Responda SIM\n"),
]


@pytest.mark.parametrize(("answer", "quote"), _STOP_OFFERS)
def test_short_answers_to_our_offer_to_stop_are_read_with_the_offer(answer, quote):
    clf = ReplyClassifier.default()
    yes = clf.analyze(f"{answer}\n\n{quote}")
    assert "n=stop_offer_yes" in yes.context
    no = clf.analyze(f"No, please keep writing.\n\n{quote}")
    assert "n=stop_offer_no" in no.context and "n=stop_offer_yes" not in no.context
    # the same answer above an email that offers nothing carries no such cue
    plain = clf.analyze(f"{answer}\n\nOn Tue, 3 Mar 2026 at 10:14, Ana <a@example.com> wrote:\n> Want a demo?\n")
    assert not any(c.startswith("n=stop_offer") for c in plain.context)
    # a long reply is read on its own words
    long = clf.analyze("Yes please, and " + "tell me more about the pricing tiers " * 3 + f"\n\n{quote}")
    assert not any(c.startswith("n=stop_offer") for c in long.context)


def test_yes_to_our_offer_to_stop_is_do_not_email():
    answer, quote = _STOP_OFFERS[0]
    assert classify_reply(f"{answer}\n\n{quote}").do_not_email
    assert not classify_reply(f"No, don't stop, we're interested! Call me Monday.\n\n{quote}").do_not_email


def test_other_cues_beside_a_live_opt_out_hit_are_features():
    clf = ReplyClassifier.default()
    a = clf.analyze("Not interested, please remove me from your list.")
    assert "n=dne+NOT_INTERESTED" in a.context
    # no live opt-out hit, no co-occurrence feature
    b = clf.analyze("Not interested for now, maybe next year.")
    assert not any(c.startswith("n=dne+") for c in b.context)


def test_an_email_address_beside_a_live_opt_out_hit_is_a_feature():
    clf = ReplyClassifier.default()
    a = clf.analyze("Please stop emailing this address, write to me at new.me@example.com instead.")
    b = clf.analyze("Please stop emailing this address.")
    assert "n=dne+email_address" in a.context and "n=dne+email_address" not in b.context


def test_rule_evidence_weights_point_the_way_the_rule_does():
    live = classify_reply("Please take me off your list.")
    assert all(e.weight > 0 for e in live.evidence if e.source == "rule")
    vetoed = classify_reply("Please don't unsubscribe me, I read every issue.")
    assert any(e.source == "veto" and e.weight < 0 for e in vetoed.evidence)


@pytest.mark.parametrize("text", ["مرحبا بكم " * 500, "Γειά σου, τι κάνεις; " * 30, "Привет, как дела? " * 20])
def test_a_reply_with_no_known_word_goes_to_a_person_not_to_do_not_email(text):
    v = classify_reply(text)
    assert not v.do_not_email and v.intent is Intent.OTHER
    assert v.needs_review and "no_known_words" in v.flags


def test_long_runs_without_spaces_are_tokenized_in_chunks_keeping_offsets():
    from replyguard._text import tokenize

    text = "!" * 1000 + " ok " + "🙂" * 500
    doc = tokenize(text)
    assert len(doc.text) == len(text)
    assert max(len(run) for run in doc.text.split()) <= 64
    v = classify_reply("🙂" * 20_000)
    assert v.intent.value in {i.value for i in Intent}


def test_classifier_built_from_a_path_says_to_use_load(tmp_path):
    with pytest.raises(TypeError, match=r"str.*ReplyClassifier\.load"):
        ReplyClassifier(str(tmp_path))
    with pytest.raises(TypeError, match="ruleset must be"):
        ReplyClassifier(ReplyClassifier.default().model, ruleset="en")


def test_classify_many_names_a_bad_item_and_refuses_a_bare_string():
    clf = ReplyClassifier.default()
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got bytes"):
        clf.classify_many(["STOP", b"STOP"])
    with pytest.raises(TypeError, match="single str"):
        clf.classify_many("STOP")
    assert [v.do_not_email for v in clf.classify_many(["STOP", "Tuesday works", "STOP"])] == [True, False, True]
