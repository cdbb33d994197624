"""Safe YAML reading that remembers where every value came from (line and column).

Only PyYAML's safe constructors are used; tags such as ``!!python/object`` are refused. Documents are
guarded against alias bombs, recursion and oversized files before any value is built.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from defcheck.diagnostics import Diagnostic, display_path
from defcheck.files import FileProblem, read_regular_file

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 20_000
MAX_DEPTH = 64

FieldPath = tuple[str | int, ...]
Position = tuple[int, int]


@dataclass
class YamlDocument:
    """Plain data read from one YAML file, with the position of every value and every mapping key."""

    file: str
    data: Any
    values: dict[FieldPath, Position] = field(default_factory=dict)
    keys: dict[FieldPath, Position] = field(default_factory=dict)

    def position(self, path: FieldPath, *, key: bool = False) -> Position | None:
        """The position of the value at ``path`` (or of its key), else of the nearest enclosing value.

        A block mapping or list starts on the line after its key; there the key's line, which names the
        field, is the position.
        """
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                named = self.keys.get(path[:end])
                return named if named is not None and named[0] < found[0] else found
        return None


def format_field(path: FieldPath) -> str:
    """``('definitions', 'k', 'all', 0, 'threshold')`` -> ``definitions.k.all[0].threshold``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class NestingTooDeep(yaml.MarkedYAMLError):
    """The document nests deeper than :data:`MAX_DEPTH` or holds more than :data:`MAX_NODES` values; raised at
    the first value over the limit, before the document is read further (and before Python's recursion limit)."""


_TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels"
_TOO_MANY = f"the document holds more than {MAX_NODES} values; concept files are small"


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose composer refuses nesting deeper than :data:`MAX_DEPTH` and more than
    :data:`MAX_NODES` nodes as it goes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH + 1 or self._nodes > MAX_NODES:  # the root is depth 1, at path length 0
                problem = _TOO_DEEP if self._depth > MAX_DEPTH + 1 else _TOO_MANY
                raise NestingTooDeep(None, None, problem, self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _prescan(text: str) -> None:
    """Refuse a document too deep or too large with libyaml's event parser, where PyYAML has it: it is C, so a
    1 MB file of 300,000 values is refused in a fraction of a second instead of the pure-Python parser's tens
    of seconds. A syntax error is left to the Python parser, which reports it in its words."""
    if not getattr(yaml, "__with_libyaml__", False):
        return
    depth = count = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
                count += 1
                if depth > MAX_DEPTH or count > MAX_NODES:  # ``depth`` is the node's path length
                    mark: Any = event.start_mark  # libyaml's Mark, with the same line and column
                    raise NestingTooDeep(None, None, _TOO_DEEP if depth > MAX_DEPTH else _TOO_MANY, mark)
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except NestingTooDeep:
        raise
    except yaml.MarkedYAMLError as error:
        if "maximum nesting depth" in str(error.problem):  # libyaml's own limit (1,000), met while looking ahead
            raise NestingTooDeep(None, None, _TOO_DEEP, error.problem_mark) from None
    except yaml.YAMLError:
        return


def compose_documents(text: str) -> list[Node]:
    """The documents of ``text`` as nodes, read safely with nesting and size bounded (:func:`_prescan`,
    :class:`BoundedLoader`); raises ``yaml.YAMLError`` (:class:`NestingTooDeep` for the bounds)."""
    _prescan(text)
    loader = BoundedLoader(text)
    try:
        documents: list[Node] = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                documents.append(node)
        return documents
    finally:
        loader.dispose()


def _not_unicode(value: str) -> bool:
    """Whether ``value`` holds a lone surrogate (``"\\ud800"`` in YAML), which no UTF-8 output can write."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _YamlProblem(Exception):
    def __init__(self, message: str, node: Node | None, path: FieldPath, code: str = "yaml"):
        super().__init__(message)
        self.message = message
        self.node = node
        self.path = path
        self.code = code


def _tag(node: Node) -> str:
    return str(node.tag).replace("tag:yaml.org,2002:", "!!")


def _mark(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node graph into plain Python values, recording positions and enforcing limits."""

    def __init__(self, doc: YamlDocument):
        self.doc = doc
        self.constructor = SafeConstructor()
        self.count = 0
        self.stack: set[int] = set()
        self.problems: list[_YamlProblem] = []  # problems that do not stop reading (a duplicate key)

    def build(self, node: Node, path: FieldPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _YamlProblem(
                f"the document expands to more than {MAX_NODES} values (an alias bomb?); "
                "concept files are small: write values out instead of nesting aliases",
                node,
                path,
            )
        if len(path) > MAX_DEPTH:
            raise _YamlProblem(f"nesting deeper than {MAX_DEPTH} levels", node, path)
        if id(node) in self.stack:
            raise _YamlProblem("a recursive alias refers to itself; remove the alias", node, path)
        self.doc.values.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, "tag:yaml.org,2002:seq", path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                self._check_tag(node, "tag:yaml.org,2002:map", path)
                return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))
        raise _YamlProblem(f"unsupported YAML node {type(node).__name__}", node, path)

    def _check_tag(self, node: Node, expected: str, path: FieldPath) -> None:
        if node.tag != expected:
            raise _YamlProblem(f"the tag '{_tag(node)}' is not allowed; remove it", node, path, "unsafe-tag")

    def _scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except ConstructorError as error:
            raise _YamlProblem(
                f"the tag '{_tag(node)}' is not allowed (only plain YAML values are read, safely)",
                node,
                path,
                "unsafe-tag",
            ) from error
        except (ValueError, TypeError) as error:
            raise _YamlProblem(f"cannot read the value {node.value!r}: {error}", node, path) from error
        if isinstance(value, str) and _not_unicode(value):  # reported; the value kept with the surrogate escaped
            shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
            message = (
                f"the string '{shown}' holds a lone surrogate, which is not valid Unicode; write the character "
                "itself (files are UTF-8) or a valid escape"
            )
            self.problems.append(_YamlProblem(message, node, path, "not-unicode"))
            return shown
        return value

    def _mapping(self, node: MappingNode, path: FieldPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _YamlProblem("merge keys ('<<') are not supported; write the keys out", key_node, path)
            if not isinstance(key_node, ScalarNode):
                raise _YamlProblem("a mapping key must be a plain value, not a list or mapping", key_node, path)
            key = self._scalar(key_node, path)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise _YamlProblem(f"the key {key_node.value!r} must be a plain string", key_node, path)
            # a key is kept as YAML read it (a number, a boolean, null), as pydantic's error locations name it
            where: FieldPath = (*path, cast("str | int", key))
            if key in result:  # reported, and the first value kept, so the rest of the file is still checked
                first = self.doc.keys[where][0]
                message = f"the key '{key}' appears twice in this mapping (first on line {first})"
                self.problems.append(_YamlProblem(message, key_node, (*path, str(key))))
                continue
            self.doc.keys[where] = _mark(key_node)
            result[key] = self.build(value_node, where)
        return result


def read_yaml(path: Path, label: str | None = None) -> tuple[YamlDocument | None, list[Diagnostic]]:
    """Read one YAML file safely; return the document or the diagnostics that stopped it."""
    name = label or display_path(path)

    def problem(message: str, line: int | None = None, column: int | None = None, code: str = "yaml"):
        return None, [Diagnostic(name, line, column, "", message, code=code)]

    try:  # a regular file only (a FIFO would block, /dev/zero never ends), at most MAX_FILE_BYTES read
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except FileProblem as error:
        if error.code == "too-large":
            limit = f"concept files are limited to {MAX_FILE_BYTES:,} bytes"
            return problem(f"the file is {error.size:,} bytes; {limit}", code="too-large")
        if error.strerror:  # missing, unreadable: the system's words
            return problem(f"cannot read the file: {error.strerror}", code="io")
        return problem(f"the file {error.reason}", code="io")
    encoding = _wide_encoding(raw)
    if encoding:
        return problem(f"the file is {encoding} text; concept files are UTF-8: save it as UTF-8", code="not-text")
    if b"\x00" in raw:
        return problem("this is a binary file, not YAML text", code="not-text")
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _byte_position(body, error.start)
        message = (
            f"the file is not UTF-8 text: the byte 0x{body[error.start]:02x} here cannot be decoded (Latin-1 or "
            "another encoding?); save the file as UTF-8"
        )
        return problem(message, line, column, code="not-text")
    return parse_yaml(text, name)


def _wide_encoding(raw: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` for text with that byte-order mark (or UTF-16 without one: ASCII text with
    every other byte zero), else ``None``."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = raw[:64]
    if len(head) >= 4 and len(head) % 2 == 0:
        even, odd = head[0::2], head[1::2]
        if (not even.strip(b"\x00") and odd.isascii() and b"\x00" not in odd) or (
            not odd.strip(b"\x00") and even.isascii() and b"\x00" not in even
        ):
            return "UTF-16"
    return None


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    """Line and column (both from 1; the column in characters) of the byte at ``offset``."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[start:offset].decode("utf-8", "replace")) + 1


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    """PyYAML's parse error in words: what it was reading (and from where), what it found, and a hint."""
    context, problem = error.context or "", error.problem or ""
    start, mark = error.context_mark, error.problem_mark
    if context and start is not None and mark is not None and (start.line, start.column) != (mark.line, mark.column):
        context += f" (from line {start.line + 1}, column {start.column + 1})"
    what = ": ".join(part for part in (context, problem) if part)
    if "'\\t'" in problem:
        what += "; YAML is indented with spaces, not tabs"
    elif "mapping values are not allowed here" in problem:
        what += "; a value that contains ': ' needs quotes, or check the indentation"
    elif "expected <block end>" in problem:
        what += "; check the indentation of this line and the one above"
    elif "flow" in context and ("expected ','" in problem or "end of the stream" in problem):
        what += "; is a bracket or brace left unclosed?"
    return what


def parse_yaml(text: str, name: str) -> tuple[YamlDocument | None, list[Diagnostic]]:
    """Parse YAML text (one document) into a :class:`YamlDocument`. A document comes back with the problems that
    do not stop reading (a duplicate key: the first value is kept), else ``None`` with the one that did."""
    if not text.strip() or all(line.lstrip().startswith("#") for line in text.splitlines() if line.strip()):
        return None, [Diagnostic(name, 1, 1, "", "the file is empty; a concept file is a YAML mapping", code="empty")]
    try:
        nodes = compose_documents(text)
    except NestingTooDeep as error:
        mark = error.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return None, [Diagnostic(name, line, column, "", str(error.problem), code="yaml")]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return None, [Diagnostic(name, line, column, "", f"invalid YAML: {_syntax_message(error)}", code="yaml-syntax")]
    except yaml.YAMLError as error:
        return None, [Diagnostic(name, None, None, "", f"invalid YAML: {error}", code="yaml-syntax")]
    except RecursionError:
        return None, [Diagnostic(name, None, None, "", f"nesting deeper than {MAX_DEPTH} levels", code="yaml")]
    documents = [node for node in nodes if node is not None]
    if len(documents) != 1:
        line = _mark(documents[1])[0] if len(documents) > 1 else 1
        return None, [
            Diagnostic(
                name,
                line,
                1,
                "",
                f"a concept file holds exactly one YAML document (found {len(documents)})",
                code="yaml",
            )
        ]
    doc = YamlDocument(name, None)
    builder = _Builder(doc)
    try:
        doc.data = builder.build(documents[0], ())
    except _YamlProblem as problem_:
        return None, [_located(name, problem_)]
    return doc, [_located(name, problem_) for problem_ in builder.problems]


def _located(name: str, problem: _YamlProblem) -> Diagnostic:
    line, column = _mark(problem.node) if problem.node is not None else (None, None)
    return Diagnostic(name, line, column, format_field(problem.path), problem.message, code=problem.code)
