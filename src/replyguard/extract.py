"""Reply zoning: find the contact's own words in a reply.

``extract`` drops quoted history (``>`` lines, "On ... wrote:" headers in seven
languages, Outlook header blocks, forwarded parts), signatures (``-- ``, mobile
footers, sign-off blocks) and legal disclaimers, renders HTML to text, and
keeps offsets from the reply text back into the original string.

Bottom-posted and inline replies are found too: when nothing stands above the
first quote header, the unquoted lines below it are the reply, provided the
history there is ``>``-quoted (otherwise the text below could be our own
unquoted email, and the extraction says ``found_reply=False`` rather than
guessing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _quote_patterns as qp
from ._html import CUT_MARK, html_to_text, looks_like_html
from ._text import fold

__all__ = ["MAX_CHARS", "Extraction", "extract"]

#: Only the first ``MAX_CHARS`` characters of a reply are read (1 MB of HTML or
#: text is cut here; the verdict carries the flag ``"truncated"``).
MAX_CHARS = 100_000

_SEP_START = frozenset("-_=*\ue000>")
_LEAD_WORDS = ("on ", "el ", "le ", "am ", "em ", "il ", "op ", "den ", "w dniu ", "no dia ", "a ", "*")
_LINE_NO_TEXT = re.compile(r"^[\s\-_=*~.#|\ue000]*$")


@dataclass(frozen=True, slots=True)
class Extraction:
    """The contact's own words and where they came from.

    Attributes
    ----------
    text
        The reply text: the kept pieces of the original joined by blank lines.
    pieces
        ``(start, end)`` offsets into the original string of each kept piece.
    found_reply
        False when quoted history or a forward was found but nothing of the
        contact's own beside it.
    quote_found
        True when quoted history, a forward or an HTML quote container was found.
    removed
        The kinds of parts dropped: ``quote``, ``forward``, ``signature``,
        ``mobile_footer``, ``disclaimer``, ``signoff``.
    is_html, truncated
        How the input was read.
    """

    text: str
    pieces: tuple[tuple[int, int], ...]
    found_reply: bool
    quote_found: bool
    removed: tuple[str, ...]
    is_html: bool
    truncated: bool
    _rendered: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)
    _omap: Callable[[int], int] | None = field(default=None, repr=False, compare=False)

    def to_original(self, pos: int) -> int:
        """Map an offset in :attr:`text` to an offset in the original string.

        For HTML input the result is an offset into the HTML source.
        """
        pieces = self._rendered or self.pieces
        acc = 0
        out = pieces[-1][1] if pieces else 0
        for start, end in pieces:
            length = end - start
            if pos <= acc + length:
                out = start + (pos - acc)
                break
            acc += length + 2  # pieces are joined by "\n\n"
        return self._omap(out) if self._omap is not None else out


@dataclass(slots=True)
class _Line:
    start: int
    end: int  # without the line break
    raw: str
    folded: str
    quoted: bool
    blank: bool


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    ftext = fold(text)
    pos = 0
    n = len(text)
    while pos <= n:
        nl = text.find("\n", pos)
        end = n if nl == -1 else nl
        stop = end - 1 if end > pos and text[end - 1] == "\r" else end
        raw = text[pos:stop]
        folded = ftext[pos:stop]
        stripped = folded.lstrip()
        lines.append(
            _Line(pos, stop, raw, folded, stripped.startswith(">"), _LINE_NO_TEXT.match(raw) is not None)
        )
        if nl == -1:
            break
        pos = nl + 1
    return lines


def _header_at(lines: list[_Line], i: int) -> tuple[int, str] | None:
    """If a quote/forward header starts at line ``i``: (number of lines it spans, kind)."""
    f = lines[i].folded
    s = f.strip()
    if not s:
        return None
    # cheap rejection: a header line starts with a separator or a lead word, or holds a colon
    if ":" not in s and s[0] not in _SEP_START and not s.startswith(_LEAD_WORDS) and not qp.FORWARD_WORDS.search(s):
        return None
    if CUT_MARK in f:
        return 1, "quote"
    if qp.SEPARATOR.match(f):
        return 1, "forward" if qp.FORWARD_WORDS.search(f) else "quote"
    if qp.BEGIN_FORWARD.match(f):
        return 1, "forward"
    if qp.UNDERSCORES.match(f):
        for j in range(i + 1, min(i + 3, len(lines))):
            if qp.FROM_FIELD.match(lines[j].folded):
                return 1, "quote"
    if qp.FROM_FIELD.match(f):
        fields = 0
        for j in range(i + 1, min(i + 7, len(lines))):
            if qp.OTHER_FIELD.match(lines[j].folded):
                fields += 1
        if fields >= 2:
            return 1, "quote"
    # "On ... wrote:" possibly wrapped over up to three lines
    if len(s) < 400 and not lines[i].quoted:
        joined = s
        for span in range(1, 4):
            if span > 1:
                if i + span - 1 >= len(lines) or lines[i + span - 1].blank:
                    break
                joined = joined + " " + lines[i + span - 1].folded.strip()
            if joined.endswith((":", ": *", ":*")) and (qp.ON_WROTE.match(joined) or qp.NAME_WROTE.match(joined)):
                return span, "quote"
    return None


def _cut_signature(lines: list[_Line], removed: list[str]) -> list[_Line]:
    """Drop signature separators, mobile footers, disclaimers and sign-off blocks."""
    content_seen = False
    for k, line in enumerate(lines):
        f = line.folded
        if content_seen and qp.SIG_DASHES.match(line.raw.rstrip("\r")):
            removed.append("signature")
            lines = lines[:k]
            break
        if line.blank:
            continue
        if qp.MOBILE_FOOTER.match(f):
            removed.append("mobile_footer")
            lines = lines[:k]
            break
        if content_seen and (qp.DISCLAIMER.match(f) or (
            qp.DISCLAIMER_WEAK.match(f)
            and qp.DISCLAIMER_CUE.search(" ".join(ln.folded for ln in lines[k : k + 4]))
        )):
            removed.append("disclaimer")
            lines = lines[:k]
            break
        content_seen = True
    # a bare first name on the last line, under a finished sentence: "...the launch though.\n\nNeil"
    body = [ln for ln in lines if not ln.blank]
    if len(body) >= 2 and _bare_name(body[-1]) and body[-2].raw.rstrip()[-1:] in _SENTENCE_END:
        k = lines.index(body[-1])
        if k > 0 and lines[k - 1].blank:
            removed.append("signoff")
            lines = lines[:k]
    # sign-off: the last valediction line followed only by signature-like lines
    for k in range(len(lines) - 1, 0, -1):
        line = lines[k]
        m = qp.VALEDICTION.match(line.folded)
        if not m or not qp.NAME_TAIL.match(line.raw[m.end() :]):
            continue
        if not any(not ln.blank for ln in lines[:k]):
            break
        tail = [ln for ln in lines[k + 1 :] if not ln.blank]
        if not tail or (
            len(tail) <= 10
            and (_name_like(tail[0]) or qp.CONTACT_LINE.search(tail[0].raw))
            and all(_signature_like(ln) for ln in tail)
        ):
            removed.append("signoff")
            return lines[:k]
        break
    return lines


_SENTENCE_END = frozenset(".!?)\u2026:;") | {"\U0001f605", "\U0001f642", "\U0001f44d", "\U0001f60a"}
# words that are requests or answers, never a signature, even when alone and capitalised
_NOT_NAMES = frozenset(
    "stop unsubscribe remove cancel baja basta alto arret stopp abmelden afmelden cancellami sair "
    "descadastrar yes no ok okay thanks thank merci danke gracias grazie obrigado obrigada bedankt "
    "dank please bitte svp monday tuesday wednesday thursday friday saturday sunday".split()
)


def _bare_name(line: _Line) -> bool:
    """A line that is only a first name (or first and last): 'Neil', 'Ana M.', 'Jo'."""
    words = line.raw.strip().split()
    if not 1 <= len(words) <= 2 or len(line.raw.strip()) > 25:
        return False
    for w in words:
        core = w.rstrip(".")
        if not core or not core[0].isupper() or not core.replace("-", "").isalpha():
            return False
        if len(core) > 1 and core[1:] != core[1:].lower():
            return False  # STOP, ABMELDEN: shouting, not a name
        if core.lower() in _NOT_NAMES or fold(core) in _NOT_NAMES:
            return False
    return True


_NAME_PARTICLES = frozenset(["de", "da", "di", "do", "dos", "das", "del", "della", "van", "von", "der", "den", "ten", "ter", "te", "la", "le", "du", "y", "e", "zu"])


def _name_like(line: _Line) -> bool:
    words = line.raw.strip().rstrip(",.").split()
    return 0 < len(words) <= 5 and all(
        w[0].isupper() or not w[0].isalpha() or w in _NAME_PARTICLES for w in words
    )


def _signature_like(line: _Line) -> bool:
    """A title, company, address or contact line under a name; not a question."""
    s = line.raw.strip()
    f = line.folded.strip()
    if f.startswith(("p.s", "ps ", "ps:", "pd:", "p.d", "nb:", "n.b")):
        return False
    if qp.CONTACT_LINE.search(s):
        return True
    return len(s) <= 80 and len(s.split()) <= 10 and not s.endswith("?")


def _pieces(lines: list[_Line]) -> list[tuple[int, int]]:
    """Contiguous runs of kept, unquoted lines as (start, end) offsets."""
    out: list[tuple[int, int]] = []
    run_start: int | None = None
    run_end = 0
    gap = False
    for line in lines:
        if line.quoted:
            if run_start is not None:
                gap = True
            continue
        if line.blank:
            continue
        if run_start is None:
            run_start, run_end = line.start, line.end
        elif gap:
            out.append((run_start, run_end))
            run_start, run_end = line.start, line.end
        else:
            run_end = line.end
        gap = False
    if run_start is not None:
        out.append((run_start, run_end))
    return out


def _until_next_header(below: list[_Line]) -> list[_Line]:
    """The lines below a header, up to the next (unquoted) header."""
    for j in range(len(below)):
        if not below[j].quoted and _header_at(below, j):
            return below[:j]
    return below


def _inline_answers(below: list[_Line], removed: list[str]) -> list[tuple[int, int]]:
    """Unquoted blocks that sit *between* '>' lines below a quote header."""
    region = _until_next_header(below)
    quoted = [j for j, ln in enumerate(region) if ln.quoted and ln.folded.strip(" >")]
    if len(quoted) < 2:
        return []
    first_q, last_q = quoted[0], quoted[-1]
    inner = region[first_q : last_q + 1]
    if not any(not ln.quoted and not ln.blank for ln in inner):
        return []
    return _pieces(_cut_signature(inner + region[last_q + 1 :], removed))


def _zone_text(text: str) -> tuple[list[tuple[int, int]], bool, bool, list[str]]:
    lines = _split_lines(text)
    removed: list[str] = []
    # first header
    first: tuple[int, int, str] | None = None
    for i in range(len(lines)):
        if lines[i].quoted:
            continue
        h = _header_at(lines, i)
        if h:
            first = (i, h[0], h[1])
            break
    quote_found = first is not None or any(ln.quoted for ln in lines)
    if first is None:
        top = lines
    else:
        top = lines[: first[0]]
        removed.append(first[2])
    if any(ln.quoted for ln in top):
        removed.append("quote")
    kept = _cut_signature([ln for ln in top if not ln.quoted or ln.blank], removed)
    pieces = _pieces(kept)
    if pieces and first is not None and first[2] == "quote":
        # an intro above the header ("answers inline") and answers between '>' lines
        pieces.extend(_inline_answers(lines[first[0] + first[1] :], removed))
    if not pieces and first is not None:
        # bottom-posted or inline: unquoted text below a header whose history is '>'-quoted
        i, span, _kind = first
        region = _until_next_header(lines[i + span :])
        if any(ln.quoted for ln in region):
            pieces = _pieces(_cut_signature(region, removed))
            # a region of unquoted text not separated from the quote is our own history
    found = bool(pieces)
    return pieces, found, quote_found, removed


def extract(text: str) -> Extraction:
    """Find the contact's own words in ``text`` (plain text or an HTML body).

    Parameters
    ----------
    text
        The reply body. HTML is detected and rendered to text first.

    Returns
    -------
    Extraction
        The reply text, its offsets into ``text`` and what was removed.

    Examples
    --------
    >>> e = extract("Please remove me.\\n\\nOn Tue, Jan 6, 2026 at 9:14 AM Sam <s@example.com> wrote:\\n> Hi\\n> To unsubscribe click here")
    >>> e.text
    'Please remove me.'
    >>> e.quote_found, e.found_reply
    (True, True)
    """
    if not isinstance(text, str):
        raise TypeError(f"extract() expects str, got {type(text).__name__}")
    truncated = len(text) > MAX_CHARS
    src = text[:MAX_CHARS] if truncated else text
    is_html = looks_like_html(src)
    mapper: Callable[[int], int] | None = None
    if is_html:
        rendered, omap = html_to_text(src)
        mapper = omap
    else:
        rendered = src
    pieces, found, quote_found, removed = _zone_text(rendered)
    reply = "\n\n".join(rendered[s:e] for s, e in pieces)
    if mapper is not None:
        # keep the text as rendered; map piece offsets back to the HTML source
        mapped = tuple((mapper(s), max(mapper(s), mapper(max(e - 1, s)) + 1)) for s, e in pieces)
        return Extraction(
            reply, mapped, found, quote_found, tuple(dict.fromkeys(removed)), True, truncated,
            tuple(pieces), mapper,
        )
    return Extraction(
        reply, tuple(pieces), found, quote_found, tuple(dict.fromkeys(removed)), False, truncated
    )
