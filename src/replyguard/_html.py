"""HTML to text with an offset map back into the HTML source.

A small linear scanner (``str.find``, no backtracking regex) that renders block
elements as line breaks, decodes entities, drops ``<script>``/``<style>``/
``<head>``, prefixes ``<blockquote>`` content with ``> `` and marks the start of
the quote containers that mail clients wrap history in (Gmail, Outlook web,
Yahoo, Thunderbird, Apple Mail) with a line holding :data:`CUT_MARK`.
"""

from __future__ import annotations

import bisect
import html
import re

__all__ = ["CUT_MARK", "OffsetMap", "html_to_text", "looks_like_html"]

#: A private-use character on a line of its own: "quoted history starts here".
CUT_MARK = "\ue000"

_HTML_SNIFF = re.compile(
    r"<(?:html|body|div|p|br|span|blockquote|table|font|a|b|strong|meta|head|ul|ol|li|hr)"
    r"(?:\s[^<>@]{0,500})?/?>",
    re.I,
)
_BLOCK = frozenset(
    ["p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "pre", "section", "article", "header", "footer", "address", "dl", "dt", "dd", "tbody", "thead", "center"]
)
_SKIP = frozenset({"script", "style", "head", "title", "xml"})
# class / id values that mail clients put on the element holding quoted history
_QUOTE_CONTAINER = re.compile(
    r"""(?:class|id)\s*=\s*["']?[^"'>]*?\b(?:gmail_quote|gmail_extra|divRplyFwdMsg|"""
    r"""yahoo_quoted|moz-cite-prefix|OutlookMessageHeader|appendonsend|x_divRplyFwdMsg|"""
    r"""ms-outlook-mobile-reference-message|zmail_extra|protonmail_quote|"""
    r"""AppleOriginalContents|stopSpelling|mail-editor-reference-message-container)\b""",
    re.I,
)
_WS = re.compile(r"\s+")


def looks_like_html(text: str) -> bool:
    """True when ``text`` holds HTML markup of the kind mail bodies carry."""
    return _HTML_SNIFF.search(text, 0, 20000) is not None


class OffsetMap:
    """Maps offsets in rendered text back to offsets in the source."""

    __slots__ = ("_exact", "_lens", "_out", "_src")

    def __init__(self) -> None:
        self._out: list[int] = []
        self._src: list[int] = []
        self._lens: list[int] = []
        self._exact: list[bool] = []

    def add(self, out_pos: int, src_pos: int, length: int, exact: bool) -> None:
        self._out.append(out_pos)
        self._src.append(src_pos)
        self._lens.append(length)
        self._exact.append(exact)

    def __call__(self, pos: int) -> int:
        i = bisect.bisect_right(self._out, pos) - 1
        if i < 0:
            return 0
        if self._exact[i]:
            return self._src[i] + min(pos - self._out[i], self._lens[i])
        return self._src[i]


def _tag_name(tag: str) -> tuple[str, bool, str]:
    """(name, is_end, attrs) of the inside of a tag such as ``/div`` or ``a href=...``."""
    is_end = tag.startswith("/")
    body = tag[1:] if is_end else tag
    j = 0
    while j < len(body) and (body[j].isalnum() or body[j] in ":-"):
        j += 1
    return body[:j].lower(), is_end, body[j:]


def html_to_text(src: str) -> tuple[str, OffsetMap]:
    """Render an HTML mail body as text; return the text and its offset map.

    >>> text, _ = html_to_text("<div>Stop&nbsp;please<br>thanks</div>")
    >>> text
    'Stop please\\nthanks'
    """
    out: list[str] = []
    omap = OffsetMap()
    pos_out = 0
    quote_depth = 0
    skip_depth = 0
    skip_tag = ""
    at_line_start = True
    pre = 0
    n = len(src)
    i = 0

    def emit(s: str, src_pos: int, exact: bool) -> None:
        nonlocal pos_out, at_line_start
        if not s:
            return
        if quote_depth and at_line_start and s != "\n":
            omap.add(pos_out, src_pos, 0, False)
            out.append("> ")
            pos_out += 2
        omap.add(pos_out, src_pos, len(s), exact)
        out.append(s)
        pos_out += len(s)
        at_line_start = s.endswith("\n")

    def newline(src_pos: int) -> None:
        if not at_line_start or (out and out[-1] == "\n" and (len(out) < 2 or out[-2] != "\n")):
            emit("\n", src_pos, False)

    while i < n:
        lt = src.find("<", i)
        if lt == -1:
            lt = n
        if lt > i and not skip_depth:
            chunk = src[i:lt]
            # text with entities: split so that plain runs map exactly
            j = i
            while j < lt:
                amp = src.find("&", j, lt)
                end = lt if amp == -1 else amp
                if end > j:
                    run = src[j:end]
                    if pre:
                        emit(run, j, True)
                    else:
                        k = 0
                        for m in _WS.finditer(run):
                            if m.start() > k:
                                emit(run[k : m.start()], j + k, True)
                            if not at_line_start:
                                emit(" ", j + m.start(), False)
                            k = m.end()
                        if k < len(run):
                            emit(run[k:], j + k, True)
                if amp == -1:
                    break
                semi = src.find(";", amp, min(amp + 12, lt))
                if semi == -1:
                    emit("&", amp, True)
                    j = amp + 1
                    continue
                ent = html.unescape(src[amp : semi + 1])
                ent = ent.replace("\xa0", " ")
                if ent.isspace() and at_line_start:
                    ent = ""
                emit(ent, amp, False)
                j = semi + 1
            del chunk
        if lt >= n:
            break
        # a tag, a comment or a stray '<'
        if src.startswith("<!--", lt):
            end = src.find("-->", lt + 4)
            i = n if end == -1 else end + 3
            continue
        gt = src.find(">", lt + 1)
        if gt == -1:
            if not skip_depth:
                emit(src[lt:], lt, True)
            break
        inner = src[lt + 1 : gt].strip()
        if not inner or not (inner[0].isalpha() or inner[0] in "/!?"):
            if not skip_depth:
                emit("<", lt, True)
            i = lt + 1
            continue
        name, is_end, attrs = _tag_name(inner)
        i = gt + 1
        if skip_depth:
            if is_end and name == skip_tag:
                skip_depth -= 1
            elif not is_end and name == skip_tag:
                skip_depth += 1
            continue
        if name in _SKIP and not is_end and not inner.endswith("/"):
            skip_depth, skip_tag = 1, name
            continue
        if name == "pre":
            pre += -1 if is_end else 1
            pre = max(pre, 0)
        if not is_end and _QUOTE_CONTAINER.search(attrs):
            newline(lt)
            emit(CUT_MARK + "\n", lt, False)
        if name == "blockquote":
            newline(lt)
            if is_end:
                quote_depth = max(0, quote_depth - 1)
            else:
                quote_depth += 1
            continue
        if name in _BLOCK:
            if name in ("br",) and not is_end:
                emit("\n", lt, False)
            else:
                newline(lt)
    text = "".join(out)
    return text, omap
