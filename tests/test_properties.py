"""Laws the classifier must keep, checked on generated inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replyguard import Verdict, classify_reply

CLEAR_OPT_OUTS = [
    "Please take me off your mailing list.",
    "Unsubscribe me please.",
    "Stop emailing me.",
    "Do not contact me again.",
    "Remove me from your list, thanks.",
    "STOP",
    "Por favor, denme de baja de su lista.",
    "Merci de me désinscrire de votre liste.",
    "Bitte nehmen Sie mich aus Ihrem Verteiler.",
    "Haal mij van jullie mailinglijst.",
    "Por favor, me descadastrem da lista.",
    "Per favore cancellatemi dalla vostra lista.",
]
REPLIES = [*CLEAR_OPT_OUTS, "Sounds good, Tuesday at 10 works.", "No thanks, we already use another vendor.", "I'm out of the office until Monday with limited access to email.", "I've left the company, please contact Jane Smith instead.", "How much does it cost for 20 seats?", "Please stop by our booth at the fair next week."]
FOOTERS = [
    "To unsubscribe, click here.",
    "Not interested? Reply STOP to opt out.",
    "If you'd rather not hear from us, unsubscribe here: https://example.com/u/1",
    "Para darse de baja, haga clic aquí.",
    "Pour vous désinscrire, cliquez ici.",
    "Abmelden: https://example.com/abmelden",
]
HEADERS = [
    "On Tue, Jan 6, 2026 at 9:14 AM Sam Lee <sam@example.com> wrote:",
    "El mar, 6 ene 2026 a las 9:14, Sam Lee (<sam@example.com>) escribió:",
    "Am Di., 6. Jan. 2026 um 09:14 Uhr schrieb Sam Lee <sam@example.com>:",
    "-----Original Message-----\nFrom: Sam Lee <sam@example.com>\nSent: Tuesday, January 6, 2026 9:14 AM\nTo: Ana\nSubject: Quick question",
]


@given(st.text(max_size=3000))
def test_any_unicode_string_gives_a_verdict(text):
    v = classify_reply(text)
    assert isinstance(v, Verdict)
    assert 0.0 <= v.score <= 1.0


@given(st.sampled_from(REPLIES), st.sampled_from(HEADERS), st.sampled_from(FOOTERS),
       st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), max_size=4),
       st.booleans())
def test_appending_a_quoted_thread_with_our_footer_never_changes_do_not_email(reply, header, footer, body, quote):
    base = classify_reply(reply).do_not_email
    lines = [*body, footer]
    if header.startswith("-----") or not quote:
        history = "\n".join(lines) if header.startswith("-----") else "\n".join("> " + ln for ln in lines)
    else:
        history = "\n".join("> " + ln for ln in lines)
    thread = f"{reply}\n\n{header}\n{history}\n"
    assert classify_reply(thread).do_not_email == base


@given(st.sampled_from(CLEAR_OPT_OUTS), st.sampled_from(["lower", "upper", "title", "same"]),
       st.sampled_from(["", " ", "\n", "  \n\n", "\t"]), st.sampled_from(["", " ", "\n", "\n\n"]))
def test_case_and_whitespace_changes_do_not_flip_a_clear_opt_out(text, case, pre, post):
    changed = {"lower": text.lower(), "upper": text.upper(), "title": text.title(), "same": text}[case]
    changed = pre + changed.replace(" ", "  ") + post
    assert classify_reply(text).do_not_email
    assert classify_reply(changed).do_not_email, changed
