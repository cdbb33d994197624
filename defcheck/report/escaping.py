"""Escaping user text for each reader of an output.

User text is anything read from a concept, project or report file, a model or a plugin, or an exception's
message: summaries, sources, expectation names, errors. Each output shows it as the text it is:

- terminals and CI logs (:func:`printable`, :func:`plain_line`): control characters (ESC, BEL, CR, C1, bidi
  overrides, lone surrogates) are shown as ``\\x1b``-style escapes instead of being sent, and no line can start a
  GitHub workflow command (``::error ...``, or ``##[error]`` anywhere): such a line gets a backslash first
  (:func:`neutralise_commands`);
- Markdown (:func:`md_text`, :func:`md_code`, :func:`md_name`): CommonMark and GitHub-flavoured punctuation is
  backslash-escaped and ``<``/``&`` become HTML entities where they could start a tag or an entity, so nothing
  forms an element, a link, emphasis or a table cell; names that are not plain identifiers go in code spans;
- HTML (:func:`html_text`) and XML (:func:`xml_text`): escaped, with the characters XML 1.0 forbids replaced.

GitHub's own escaping of workflow commands is in :mod:`defcheck.report.github`.
"""

from __future__ import annotations

import html
import re
from typing import Any

_SHOWN = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[{_SHOWN}]")
_CONTROL_AND_NEWLINE = re.compile(f"[\n{_SHOWN}]")
_NAMED = {"\n": "\\n", "\r": "\\r"}
_COMMAND_START = re.compile(r"(^|[\r\n])([^\S\r\n]*)(?=::)")
_V1_COMMAND = "##["  # the runner's older syntax, recognised anywhere in a line


def _show(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: Any, *, newlines: bool = True) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``, ``\\r``, ``\\u202e``) rather than sent;
    tabs stay, and newlines too unless ``newlines`` is false (then they read ``\\n``)."""
    return (_CONTROL if newlines else _CONTROL_AND_NEWLINE).sub(_show, str(text))


def neutralise_commands(text: str) -> str:
    """``text`` with every line that would start a GitHub workflow command (``::name``, after blanks) given a
    backslash first, and every ``##[`` broken; text that does neither comes back unchanged."""
    if "::" in text:
        text = _COMMAND_START.sub(r"\1\2\\", text)
    return text.replace(_V1_COMMAND, "##\\[") if _V1_COMMAND in text else text


def plain_line(text: Any) -> str:
    """One line of a CI log: control characters and newlines shown (:func:`printable`), no workflow command."""
    return neutralise_commands(printable(text, newlines=False))


# --- Markdown (CommonMark, and GitHub's extensions: tables, strikethrough, math) --------------------------------

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MD_PUNCTUATION = re.compile(r"[\\`*\[\]|~$]|(?<![^\W_])_|_(?![^\W_])")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # a tag, a comment or an autolink could start here
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_MD_BLOCK = re.compile(r"^(#{1,6}(?=\s|$)|[-+](?=\s|$)|[=-]+\s*$|>|::)")
_NEWLINES = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")


def _one_line(text: Any) -> str:
    return printable(_NEWLINES.sub(" ", str(text)).strip())


def md_text(text: Any) -> str:
    """User text as inline Markdown that renders as the text itself, on one line (newlines become spaces),
    usable in a paragraph, a heading or a table cell: no element, link, emphasis, cell break or block start."""
    text = _MD_PUNCTUATION.sub(lambda m: "\\" + m.group(), _one_line(text))
    text = _MD_TAG.sub("&lt;", _MD_ENTITY.sub("&amp;", text))
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return _MD_BLOCK.sub(r"\\\1", text)


def md_code(text: Any, *, table: bool = False) -> str:
    """User text as a Markdown code span, on one line: its fence is longer than any run of backticks in it;
    ``table``: it stands in a table cell, where GitHub's tables want a ``|`` escaped even in a code span."""
    text = _one_line(text)
    if table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == text[-1:] == " " and text.strip()) else ""
    return f"{fence}{pad}{text or ' '}{pad}{fence}"


def md_name(name: Any, *, table: bool = False) -> str:
    """A name (concept, definition, unit, model) in Markdown: as it is when it is a plain identifier or address
    (``induction_head``, ``1.4``), else in a code span (:func:`md_code`)."""
    text = str(name)
    if _SAFE_NAME.match(text) and not text.lower().startswith("www."):
        return text
    return md_code(text, table=table)


def md_slug(name: Any) -> str:
    """The anchor GitHub gives a heading of ``name``: lower case, letters, digits, ``-`` and ``_``; spaces as
    ``-``."""
    return re.sub(r"[^\w\- ]", "", printable(name).lower()).replace(" ", "-")


# --- JSON ----------------------------------------------------------------------------------------------------------

_JSON_SHOWN = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]|##\\[")


def json_document(text: str) -> str:
    """Serialized JSON (``json.dumps``, which escapes C0 controls itself) with the rest of :func:`printable`'s
    characters, and the ``[`` of ``##[``, as ``\\uXXXX`` escapes: they occur only in strings, so the value is the
    same, but printed it sends no control character and starts no workflow command, and it encodes as UTF-8."""
    return _JSON_SHOWN.sub(lambda m: "##\\u005b" if m.group() == "##[" else f"\\u{ord(m.group()):04x}", text)


# --- HTML and XML -------------------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\ufffe\uffff]")
_XML_COMMAND_START = re.compile(r"(^|[\r\n])([^\S\r\n]*):(?=:)")


def html_text(text: Any, quote: bool = True) -> str:
    """User text for HTML text or an attribute value: escaped, control characters shown (:func:`printable`), and
    no line that starts a workflow command when the page is printed (:func:`xml_document`)."""
    return xml_document(html.escape(printable(text), quote=quote))


def xml_text(text: Any) -> str:
    """User text for XML 1.0 (before the serializer escapes it): control characters and lone surrogates shown
    (:func:`printable`; XML 1.0 forbids most of them), U+FFFE and U+FFFF as ``?``."""
    return _XML_INVALID.sub("?", printable(text))


def xml_document(xml: str) -> str:
    """Serialized XML or HTML whose lines cannot start a GitHub workflow command when it is printed: the first
    ``:`` of a line's ``::``, and the ``[`` of ``##[``, become character references."""
    if "::" in xml:
        xml = _XML_COMMAND_START.sub(r"\1\2&#58;", xml)
    return xml.replace(_V1_COMMAND, "##&#91;")
