"""The classifier: :class:`ReplyClassifier` and the module-level shortcuts."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from email.message import Message
from importlib import resources
from pathlib import Path

import numpy as np

from . import model as _model
from .errors import ModelNotFoundError
from .features import Analysis, analyze, analyze_many
from .headers import HeaderCues, read_headers
from .rules import OPT_OUT_LABELS, RuleHit, Ruleset, default_ruleset
from .verdict import INTENTS, Evidence, Intent, Verdict

__all__ = [
    "ReplyClassifier",
    "classify_email",
    "classify_replies",
    "classify_reply",
    "default_model_path",
]

_I_DNE = 0
_INTENT_NAMES = tuple(i.value for i in INTENTS)
_I_OOO = INTENTS.index(Intent.OUT_OF_OFFICE)
_I_WRONG = INTENTS.index(Intent.WRONG_CONTACT)
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|wg|fw|fwd|tr|rv|enc|r|antw|odp)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def default_model_path() -> Path:
    """Where the packaged default model lives (inside the installed package, or the repo)."""
    pkg = Path(str(resources.files("replyguard") / "_model"))
    if (pkg / "model_card.json").is_file():
        return pkg
    repo = Path(__file__).resolve().parents[2] / "models" / "default"
    if (repo / "model_card.json").is_file():
        return repo
    raise ModelNotFoundError(
        f"the packaged model is missing (looked in {str(pkg)!r} and {str(repo)!r}); "
        "reinstall replyguard or pass a model directory"
    )


# Replies analysed together by classify_many: past a hundred or so, each stage stays in the
# CPU caches as well as it will; more would only hold more Docs in memory at once (the
# character bound keeps a block of long replies small: a 100,000-character reply alone
# makes a Doc of megabytes, and needs no company to keep its stages warm)
_BLOCK_REPLIES = 256
_BLOCK_CHARS = 200_000


def _blocks(texts: Sequence[str]) -> Iterator[Sequence[str]]:
    """Consecutive runs of ``texts`` of at most ``_BLOCK_REPLIES`` replies and, unless one
    reply alone is longer, ``_BLOCK_CHARS`` characters."""
    start, chars = 0, 0
    for i, t in enumerate(texts):
        if i > start and (i - start >= _BLOCK_REPLIES or chars + len(t) > _BLOCK_CHARS):
            yield texts[start:i]
            start, chars = i, 0
        chars += len(t)
    if start < len(texts):
        yield texts[start:]


def _check_texts(texts: Sequence[object]) -> Sequence[str]:
    """``texts``, once each item is known to be ``str`` (else a TypeError naming it)."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be str, got {type(t).__name__}")
    return texts  # type: ignore[return-value]


def _check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str, got {type(text).__name__}; decode bytes first "
                        "or use classify_email() for raw messages")
    return text


class ReplyClassifier:
    """A trained model plus a ruleset: classifies replies into intents.

    Use :meth:`default` for the packaged model or :meth:`load` for a model
    directory written by ``replyguard train``.

    >>> clf = ReplyClassifier.default()
    >>> clf.classify("Please remove me from your mailing list.").do_not_email
    True
    """

    def __init__(self, model: _model.LinearModel, ruleset: Ruleset | None = None) -> None:
        if not isinstance(model, _model.LinearModel):
            hint = ("; for a model directory use ReplyClassifier.load(path)"
                    if isinstance(model, (str, Path)) else "")
            raise TypeError(f"model must be a replyguard LinearModel, got {type(model).__name__}{hint}")
        if ruleset is not None and not isinstance(ruleset, Ruleset):
            raise TypeError(f"ruleset must be a replyguard Ruleset or None, got {type(ruleset).__name__}")
        self.model = model
        self.ruleset = ruleset if ruleset is not None else default_ruleset()
        # each rule feature's push toward do_not_email, for evidence weights: worked out
        # when a hit first needs it (all ~5,000 at once were a tenth of the cold start)
        self._push: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"ReplyClassifier(model={self.model.version!r}, ruleset={self.ruleset.version!r})"

    @classmethod
    def load(cls, path: str | Path, *, ruleset: Ruleset | None = None) -> ReplyClassifier:
        """Load a model directory (see :mod:`replyguard.model`)."""
        return cls(_model.load(path), ruleset)

    @classmethod
    def default(cls) -> ReplyClassifier:
        """The packaged default model, loaded once per process."""
        global _default
        if _default is None:
            with _lock:
                if _default is None:
                    _default = cls.load(default_model_path())
        return _default

    # -- core -------------------------------------------------------------------
    def analyze(self, text: str) -> Analysis:
        return analyze(_check_text(text), self.ruleset)

    def classify(self, text: str, *, headers: HeaderCues | None = None) -> Verdict:
        """Classify one reply (plain text or an HTML body)."""
        a = self.analyze(text)
        p, ev, val = self.model.score(a)
        return self._verdict(a, p, ev, val, headers)

    def classify_many(self, texts: Sequence[str]) -> list[Verdict]:
        """:meth:`classify` of each text, a stage at a time over blocks of them (see
        :func:`~replyguard.features.analyze_many`).

        Identical texts (auto-replies, "STOP") are classified once; each repeat gets a
        copy of the verdict with a ``scores`` dict of its own.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, not a single str; use classify() for one reply")
        return self._classify_checked(_check_texts(texts))

    def _classify_checked(self, texts: Sequence[str]) -> list[Verdict]:
        """:meth:`classify_many` of texts already checked to be ``str``."""
        index: dict[str, int] = {}
        for t in texts:
            index.setdefault(t, len(index))
        unique = list(index)
        verdicts = []
        for block in _blocks(unique):
            for a in analyze_many(block, self.ruleset):
                p, ev, val = self.model.score(a)
                verdicts.append(self._verdict(a, p, ev, val, None))
        if len(unique) == len(texts):
            return verdicts
        out = []
        given = [False] * len(unique)
        for t in texts:
            k = index[t]
            out.append(dataclasses.replace(verdicts[k], scores=dict(verdicts[k].scores)) if given[k] else verdicts[k])
            given[k] = True
        return out

    def _verdict(
        self, a: Analysis, p: list[float], ev: list[tuple[int, int, int]], val: float, headers: HeaderCues | None
    ) -> Verdict:
        model = self.model
        lo, _hi = model.review_band
        p_dne = float(p[_I_DNE])
        flags: list[str] = []
        ext = a.extraction
        if ext.is_html:
            flags.append("html")
        if ext.truncated:
            flags.append("truncated")
        if ext.quote_found:
            flags.append("quote_removed")
        if not ext.found_reply and ext.quote_found:
            flags.append("no_reply_found")
        elif not a.words:
            flags.append("empty")
        evidence: list[Evidence] = []
        to_orig = ext.to_original
        live_dne = False
        for h in a.hits:
            if h.live_opt_out:
                live_dne = True
            if h.label in OPT_OUT_LABELS or h.label == "VETO" or h.vetoed_by:
                src = "veto" if h.label == "VETO" else "rule"
                evidence.append(
                    Evidence(src, h.id if not h.vetoed_by else f"{h.id}~{h.vetoed_by}",
                             to_orig(h.start), to_orig(h.end), a.reply_text[h.start : h.end],
                             self._hit_push(h))
                )
        thr = model.threshold if live_dne else model.threshold_without_rule
        dne = p_dne >= thr
        unread = bool(a.words) and not live_dne and not any(map(model.space.knows, a.words))
        if unread:
            # not one word the model has seen (a script or language it was not trained on,
            # noise): its score is only the bias and the shape, so a person must read it
            flags.append("no_known_words")
        if not a.words or unread:
            # only the contact's own words can make a reply do_not_email
            dne, intent = False, Intent.OTHER
        elif dne:
            intent = Intent.DO_NOT_EMAIL
        else:
            intent = INTENTS[1 + max(range(len(p) - 1), key=lambda k: p[k + 1])]
        score = p_dne
        if headers is not None:
            if headers.client_unsubscribe:
                for name in headers.client_unsubscribe:
                    evidence.append(Evidence("header", name, -1, -1, "", 1.0))
                flags.append("client_unsubscribe")
                dne, intent, score = True, Intent.DO_NOT_EMAIL, max(p_dne, 0.99)
            elif headers.auto_reply:
                for name in headers.auto_reply:
                    evidence.append(Evidence("header", name, -1, -1, "", 1.0))
                flags.append("auto_submitted")
                if not dne:
                    intent = INTENTS[_I_WRONG] if p[_I_WRONG] > p[_I_OOO] else Intent.OUT_OF_OFFICE
        needs_review = (
            (lo <= score < thr)
            or (live_dne and not dne)
            or "no_reply_found" in flags
            or unread
        )
        evidence.extend(self._model_evidence(a, ev, val, INTENTS.index(intent)))
        return Verdict(
            intent=intent,
            do_not_email=dne,
            score=score,
            scores=dict(zip(_INTENT_NAMES, p, strict=True)),
            needs_review=bool(needs_review),
            evidence=tuple(evidence),
            reply_text=a.reply_text,
            language=a.language,
            model_version=model.version,
            ruleset_version=self.ruleset.version,
            threshold=thr,
            flags=tuple(flags),
        )

    def _hit_push(self, h: RuleHit) -> float:
        """What one hit adds to the do-not-email logit: its own feature and its label's
        (the label feature carries what the rules of a label share, so the rule's own
        weight alone can even be negative)."""
        push = self._feature_push
        if h.vetoed_by is not None:
            return push("v=" + h.id) + push("L=" + h.label + "_VETOED")
        return push("r=" + h.id) + push("L=" + h.label)

    def _feature_push(self, name: str) -> float:
        """A rule feature's weight toward do_not_email minus its mean weight elsewhere
        (0.0 for a feature the model does not know)."""
        got = self._push.get(name)
        if got is None:
            j = self.model.space.index.get(name)
            W = self.model.W
            got = self._push[name] = 0.0 if j is None else float(W[j, _I_DNE] - np.delete(W[j], _I_DNE).mean())
        return got

    def _model_evidence(
        self, a: Analysis, ev: list[tuple[int, int, int]], val: float, k: int, top: int = 3
    ) -> list[Evidence]:
        """The word and bigram features that pushed the chosen intent most, located in the reply."""
        if not ev:
            return []
        contrib = (self.model.intent_weights(k)[[c for c, _, _ in ev]] * val).tolist()
        order = sorted(range(len(ev)), key=contrib.__getitem__, reverse=True)
        names = self.model.space.names
        seen: set[int] = set()
        out: list[Evidence] = []
        to_orig = a.extraction.to_original
        starts, words = a.starts, a.words
        for j in order:
            w = contrib[j]
            if w <= 0 or len(out) >= top:
                break
            col, first, last = ev[j]
            if col in seen:
                continue
            seen.add(col)
            pos, end = starts[first], starts[last] + len(words[last])
            out.append(Evidence("model", names[col], to_orig(pos), to_orig(end), a.reply_text[pos:end], w))
        return out

    def classify_email(self, message: bytes | str | Message) -> Verdict:
        """Classify a whole email: body plus header cues (see :mod:`replyguard.headers`)."""
        msg = _parse_message(message)
        cues = read_headers(msg)
        body = _body_text(msg)
        a = self.analyze(body)
        if not a.words and not a.extraction.quote_found:
            subject = _SUBJECT_PREFIX.sub("", cues.subject).strip()
            if subject:
                a = self.analyze(subject)
        p, ev, val = self.model.score(a)
        return self._verdict(a, p, ev, val, cues)


def _parse_message(message: bytes | str | Message) -> Message:
    if isinstance(message, Message):
        return message
    if isinstance(message, bytes):
        return email.message_from_bytes(message, policy=email.policy.compat32)
    if isinstance(message, str):
        return email.message_from_string(message, policy=email.policy.compat32)
    raise TypeError(
        f"message must be bytes, str or email.message.Message, got {type(message).__name__}"
    )


def _decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    if not isinstance(payload, bytes):
        return str(payload)
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _body_text(msg: Message) -> str:
    """The text/plain body, else the text/html body, else ''. Attachments are skipped."""
    plain: str | None = None
    html: str | None = None
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        disp = str(part.get("Content-Disposition", "")).lower()
        if disp.startswith("attachment"):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _decode_part(part)
        elif ctype == "text/html" and html is None:
            html = _decode_part(part)
    if plain is not None and plain.strip():
        return plain
    return html or plain or ""


_default: ReplyClassifier | None = None
_lock = threading.Lock()


def _resolve(model: ReplyClassifier | str | Path | None) -> ReplyClassifier:
    if model is None:
        return ReplyClassifier.default()
    if isinstance(model, ReplyClassifier):
        return model
    return ReplyClassifier.load(model)


def classify_reply(text: str, *, model: ReplyClassifier | str | Path | None = None) -> Verdict:
    """Classify one reply with the packaged model (or ``model``).

    Parameters
    ----------
    text
        The reply as received: plain text or an HTML body, quoted thread included.
    model
        A :class:`ReplyClassifier` or a model directory; default: the packaged model.

    Examples
    --------
    >>> v = classify_reply("Please take me off your list.\\n\\nOn Tue, Jan 6, 2026 at 9:14 AM Sam <sam@example.com> wrote:\\n> Hi Ana...")
    >>> v.intent.value, v.do_not_email
    ('do_not_email', True)
    """
    return _resolve(model).classify(_check_text(text))


def _score_chunk(texts: Sequence[str], model_path: str | None) -> list[Verdict]:
    clf = ReplyClassifier.default() if model_path is None else ReplyClassifier.load(model_path)
    return clf._classify_checked(texts)


def classify_replies(
    texts: Iterable[str],
    *,
    n_jobs: int = 1,
    batch_size: int = 2000,
    model: ReplyClassifier | str | Path | None = None,
) -> list[Verdict]:
    """Classify many replies; the same verdicts as :func:`classify_reply`, in input order.

    ``n_jobs > 1`` (or ``-1`` for all cores) scores batches of ``batch_size``
    replies in worker processes with joblib; each worker loads the model once.

    >>> [v.intent.value for v in classify_replies(["STOP", "Sounds good, Tuesday at 10?"])]
    ['do_not_email', 'interested']
    """
    items = _check_texts(list(texts))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_jobs == 1 or len(items) <= batch_size:
        return _resolve(model)._classify_checked(items)
    from joblib import Parallel, delayed

    if isinstance(model, ReplyClassifier):
        path = str(model.model.path) if model.model.path else None
    else:
        path = None if model is None else str(model)
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    parts = Parallel(n_jobs=n_jobs)(delayed(_score_chunk)(c, path) for c in chunks)
    return [v for part in parts for v in part]


def classify_email(message: bytes | str | Message, *, model: ReplyClassifier | str | Path | None = None) -> Verdict:
    """Classify a whole email message, using its headers too.

    RFC 3834 ``Auto-Submitted`` and vendor auto-reply headers make the reply
    ``out_of_office`` (or ``wrong_contact``) unless the contact's own text asks
    to opt out; a mail client's own one-click unsubscribe email
    (``X-Apple-Unsubscribe``) is ``do_not_email``.
    """
    return _resolve(model).classify_email(message)


