"""Safe YAML reading with positions: what is read, where it came from, and what is refused."""

from __future__ import annotations

import pytest

from defcheck.language.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, format_field, parse_yaml, read_yaml

TEXT = """\
concept: sample
summary: "quoted"
definitions:
  first:
    kind: behavioral
    all:
      - checker: attention_entropy
        probe: {name: fixture_tokens, n: 4}
        threshold: ">= 0.5"
"""


def _one(text: str) -> str:
    document, problems = parse_yaml(text, "f.yaml")
    assert document is None
    assert len(problems) == 1
    return str(problems[0])


def test_values_and_keys_are_located():
    document, problems = parse_yaml(TEXT, "f.yaml")
    assert problems == []
    assert document.data["definitions"]["first"]["all"][0]["probe"] == {"name": "fixture_tokens", "n": 4}
    assert document.values[("concept",)] == (1, 10)
    assert document.values[("summary",)] == (2, 10)
    assert document.keys[("definitions", "first")] == (4, 3)
    assert document.values[("definitions", "first", "all", 0)] == (7, 9)
    assert document.values[("definitions", "first", "all", 0, "probe", "n")] == (8, 42)
    assert document.keys[("definitions", "first", "all", 0, "threshold")] == (9, 9)


def test_position_of_a_block_value_is_its_key_line():
    document, _ = parse_yaml(TEXT, "f.yaml")
    # a block mapping starts on the line after its key; the key's line names the field
    assert document.position(("definitions", "first")) == (4, 3)
    assert document.position(("definitions", "first", "all")) == (6, 5)
    # a flow mapping starts on its key's line: its own position
    assert document.position(("definitions", "first", "all", 0, "probe")) == (8, 16)
    # a scalar: its value, or its key when asked
    assert document.position(("definitions", "first", "kind")) == (5, 11)
    assert document.position(("definitions", "first", "kind"), key=True) == (5, 5)


def test_position_falls_back_to_the_nearest_enclosing_value():
    document, _ = parse_yaml(TEXT, "f.yaml")
    assert document.position(("definitions", "first", "all", 0, "params", "matrix")) == (7, 9)
    assert document.position(("nothing",)) == (1, 1)


def test_format_field():
    assert format_field(()) == ""
    assert format_field(("definitions", "k", "all", 0, "threshold")) == "definitions.k.all[0].threshold"
    assert format_field((0, "a", 1)) == "[0].a[1]"


def test_plain_yaml_values_are_read():
    document, problems = parse_yaml("a: 1\nb: 1.5\nc: true\nd: null\ne: [x, 'y']\nf: |\n  text\n", "f.yaml")
    assert problems == []
    assert document.data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": ["x", "y"], "f": "text\n"}


def test_anchors_and_aliases_within_limits_are_read():
    document, problems = parse_yaml("probe: &p {name: tokens, n: 4}\nagain: *p\n", "f.yaml")
    assert problems == []
    assert document.data["again"] == {"name": "tokens", "n": 4}


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfconcept: x\n")
    document, problems = read_yaml(path, "bom.yaml")
    assert problems == [] and document.data == {"concept": "x"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: !!python/name:os.system\n", "f.yaml:1:4: a: the tag '!!python/name:os.system' is not allowed"),
        ("a: !custom 1\n", "f.yaml:1:4: a: the tag '!custom' is not allowed (only plain YAML values are read"),
        ("a: !!set {x}\n", "f.yaml:1:4: a: the tag '!!set' is not allowed; remove it"),
        (
            "a: !!python/object/new:subprocess.Popen [[ls]]\n",
            "f.yaml:1:4: a: the tag '!!python/object/new:subprocess.Popen' is not allowed",
        ),
        ("<<: {a: 1}\n", "f.yaml:1:1: merge keys ('<<') are not supported; write the keys out"),
        ("? [a]\n: 1\n", "f.yaml:1:3: a mapping key must be a plain value, not a list or mapping"),
        ("a: [*b]\n", "f.yaml:1:5: invalid YAML: found undefined alias 'b'"),
        ("a: b: c\n", "f.yaml:1:5: invalid YAML: mapping values are not allowed here; a value that contains ': ' "),
        ("a: {b: 1\n", "f.yaml:2:1: invalid YAML: while parsing a flow mapping (from line 1, column 4): expected"),
        ("a: 1\n---\nb: 2\n", "f.yaml:3:1: a concept file holds exactly one YAML document (found 2)"),
        ("", "f.yaml:1:1: the file is empty; a concept file is a YAML mapping"),
        ("  \n\n", "f.yaml:1:1: the file is empty"),
        ("# a\n  # b\n", "f.yaml:1:1: the file is empty"),
    ],
)
def test_refused_documents(text, expected):
    assert _one(text).startswith(expected)


def test_a_duplicate_key_is_reported_and_the_first_value_kept():
    document, problems = parse_yaml("a: 1\nb: {c: 2, c: 4}\na: 3\n", "f.yaml")
    assert document is not None and document.data == {"a": 1, "b": {"c": 2}}
    assert [str(p) for p in problems] == [
        "f.yaml:2:11: b.c: the key 'c' appears twice in this mapping (first on line 2)",
        "f.yaml:3:1: a: the key 'a' appears twice in this mapping (first on line 1)",
    ]


def test_an_alias_bomb_is_stopped_by_the_node_limit():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    message = _one("\n".join(lines) + "\n")
    assert f"the document expands to more than {MAX_NODES} values (an alias bomb?)" in message


def test_a_recursive_alias_is_refused():
    assert _one("a: &x\n  - *x\n") == "f.yaml:1:4: a[0]: a recursive alias refers to itself; remove the alias"
    assert "a recursive alias refers to itself" in _one("a: &x {b: *x}\n")


def test_deep_nesting_is_refused():
    depth = MAX_DEPTH + 5
    message = _one("[" * depth + "]" * depth + "\n")
    assert message.endswith(f"nesting deeper than {MAX_DEPTH} levels")
    assert f"nesting deeper than {MAX_DEPTH} levels" in _one("[" * 5000 + "]" * 5000)


def test_nesting_within_the_limit_is_read():
    depth = MAX_DEPTH - 1
    document, problems = parse_yaml("[" * depth + "]" * depth + "\n", "f.yaml")
    assert problems == [] and isinstance(document.data, list)


def test_an_oversized_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (MAX_FILE_BYTES + 1))
    document, problems = read_yaml(path, "big.yaml")
    assert document is None
    assert [problems[0].code, problems[0].line] == ["too-large", None]
    assert "concept files are limited to 1,000,000 bytes" in problems[0].message


def test_binary_and_non_utf8_files_are_refused(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"a: 1\n\x00\x00")
    (tmp_path / "latin.yaml").write_bytes(b"a: caf\xe9\n")
    assert str(read_yaml(tmp_path / "bin.yaml", "bin.yaml")[1][0]) == "bin.yaml: this is a binary file, not YAML text"
    assert (
        str(read_yaml(tmp_path / "latin.yaml", "latin.yaml")[1][0])
        == "latin.yaml:1:7: the file is not UTF-8 text: the byte 0xe9 here cannot be decoded (Latin-1 or another "
        "encoding?); save the file as UTF-8"
    )


def test_an_unreadable_path_is_a_diagnostic(tmp_path):
    document, problems = read_yaml(tmp_path / "absent.yaml", "absent.yaml")
    assert document is None
    assert problems[0].code == "io" and problems[0].message.startswith("cannot read the file: ")
    document, problems = read_yaml(tmp_path, "folder")
    assert document is None and problems[0].code == "io"
