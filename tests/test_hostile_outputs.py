"""Every output escapes for its reader (issue 17, item 2): a hostile concept file, project file and plugin, run
through the real console script, and each output checked in the program that reads it.

The hostile text tries everything at once: HTML that sets ``document.title`` when it runs, Rich markup that does
not parse (``[/bold]``), Markdown links to ``javascript:``, emphasis and table pipes, terminal escapes (an OSC
title, SGR colours, C1 CSI, BEL, a bidi override) and a newline followed by a forged GitHub workflow command
(``::error file=evil::forged``, and the runner's older ``##[error]``). It stands in the concept's summary, a
definition's source, the references, the project's expectation names and a checker's exception message (where a
NUL and a CR join it).

- Markdown: rendered by markdown-it (CommonMark, and with GitHub's tables) and the HTML loaded in headless
  Chromium: no element, attribute or link comes from the text, and no script runs;
- HTML: loaded in headless Chromium: the page's own script runs, the payload's does not;
- GitHub annotations: every line of stdout and stderr parsed with the runner's workflow-command grammar: each
  command is well formed and defcheck's, and the forged one is nowhere a command;
- terminal (``run``, ``run -q``, ``list``, ``validate``, ``checkers``, ``plugins``, ``report``): exit normally,
  no control character of the text is sent, no line starts a workflow command;
- JUnit: parses as XML 1.0 (also with lone surrogates and C0 controls in a saved report);
- SARIF and JSON: parse, and carry the text as it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

SCRIPT = Path(sys.executable).with_name("defcheck")
FORGED = "::error file=evil::forged"
PAYLOAD = (
    "<img src=x onerror=\"document.title='pwned'\"> <script>document.title='pwned'</script> "
    "[/bold] [link](javascript:alert(1)) <javascript:alert(1)> *em* | pipe ` tick "
    "\x1b]0;title\x07\x1b[31mred \x9b31m \u202eevil"
    f"\n{FORGED}\n##[error]v1"
)
ERROR = f"x\n{FORGED}\r\n::warning::also\x1b[2J\x00 <img src=x onerror=\"document.title='pwned'\">"
SENT = ("\x1b", "\x07", "\x9b", "\u202e", "\x00")  # control characters that must not reach a terminal


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar for ``text`` (JSON's escapes are YAML's)."""
    return json.dumps(text)


CONCEPT = f"""\
concept: hostile_head
unit: attention_head
summary: {yaml_string(PAYLOAD)}
references: [{yaml_string(PAYLOAD)}]
definitions:
  attends_previous:
    kind: behavioral
    source: {yaml_string(PAYLOAD)}
    all:
      - checker: attention_pattern
        params: {{pattern: previous_token}}
        probe: {{name: random_tokens, n: 4, length: 12}}
        threshold: ">= 0.4"
  crashes:
    kind: mechanistic
    source: test
    all:
      - checker: hostile_fails
        threshold: "> 0"
"""
PROJECT = f"""\
models: [builtin:toy-induction]
definitions: [concepts]
builtin: false
expectations:
  - {{name: {yaml_string("first " + PAYLOAD)}, unit: "0.0", concept: hostile_head, in: both}}
  - {{name: {yaml_string("second " + PAYLOAD)}, definition: hostile_head.crashes, count: 1}}
  - {{name: {yaml_string("third " + PAYLOAD)}, definition: hostile_head.attends_previous, count: 100}}
"""
PLUGIN = f'''\
"""A plugin whose checker raises with a hostile message."""
from defcheck import Checker, hookimpl


def fail(context):
    raise ValueError({ERROR!r})


@hookimpl
def defcheck_checkers():
    return [Checker("hostile_fails", "mechanism", fail)]
'''
BROKEN_PLUGIN = f"raise RuntimeError({ERROR!r})\n"
OUTPUTS = ("-o", "out/report.json", "-o", "out/report.md", "-o", "out/report.html")
OUTPUTS += ("-o", "out/junit.xml", "-o", "out/defcheck.sarif")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / ".git").mkdir()
    (folder / "concepts").mkdir()
    (folder / "concepts" / "hostile.yaml").write_text(CONCEPT, encoding="utf-8")
    (folder / "defcheck.yaml").write_text(PROJECT, encoding="utf-8")
    (folder / "hostile_outputs_plugin.py").write_text(PLUGIN, encoding="utf-8")
    (folder / "hostile_broken_plugin.py").write_text(BROKEN_PLUGIN, encoding="utf-8")
    return folder


def defcheck(folder: Path, *args: str, color: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the console script in ``folder`` with the hostile plugin, as CI would (no terminal, no CI variables)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "CI", "FORCE_COLOR"))}
    path = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    env |= {"PYTHONPATH": path, "COLUMNS": "120", "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    if color:
        env.pop("NO_COLOR")
        env["FORCE_COLOR"] = "1"
    return subprocess.run(
        [str(SCRIPT), "-p", "hostile_outputs_plugin", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=300,
    )


@pytest.fixture(scope="module")
def written(project: Path) -> subprocess.CompletedProcess[str]:
    """One ``defcheck run`` that prints the terminal report and writes every other format."""
    done = defcheck(project, "run", *OUTPUTS)
    assert done.returncode == 2, done.stdout + done.stderr  # the checker raised
    return done


def read(project: Path, name: str) -> str:
    return (project / "out" / name).read_text(encoding="utf-8")


# --- what every output shares ------------------------------------------------------------------------------------

COMMAND = re.compile(r"^::(?P<name>[A-Za-z-]+)(?: (?P<properties>[^\r\n]*?))?::(?P<data>.*)$")
PROPERTY_ESCAPES = {"%0D": "\r", "%0A": "\n", "%3A": ":", "%2C": ",", "%25": "%"}


def unescape(value: str, escapes: dict[str, str]) -> str:
    return re.sub("|".join(escapes), lambda m: escapes[m.group()], value)


def workflow_commands(text: str) -> list[dict[str, Any]]:
    """The workflow commands GitHub's runner finds in ``text`` (its lines as the runner splits them), parsed."""
    commands = []
    for line in re.split(r"\r\n|\r|\n", text):
        stripped = line.lstrip()
        if not stripped.startswith("::"):  # the runner tries its older syntax only on the other lines
            assert "##[" not in line, f"the runner's older command syntax in {line!r}"
            continue
        match = COMMAND.match(stripped)
        assert match, f"a line that starts like a workflow command is not one: {line!r}"
        properties = {}
        for pair in filter(None, (match["properties"] or "").split(",")):
            key, _, value = pair.partition("=")
            properties[key] = unescape(value, PROPERTY_ESCAPES)
        data = unescape(match["data"], {"%0D": "\r", "%0A": "\n", "%25": "%"})
        commands.append({"name": match["name"], "properties": properties, "data": data, "line": line})
    return commands


def assert_no_commands(text: str) -> None:
    """No line of ``text`` is a workflow command (what every output but ``-f github`` must hold)."""
    assert workflow_commands(text) == []


def assert_not_sent(text: str) -> None:
    for char in SENT:
        assert char not in text, f"{char!r} reaches the reader"


# --- Markdown ----------------------------------------------------------------------------------------------------


class _Elements(HTMLParser):
    """Every element, its attributes, and the document's title."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def assert_nothing_injected(html: str, allowed_scripts: int = 0) -> None:
    """No element of the payload in ``html``: no img, no script of its own, no event handler, no javascript:."""
    parsed = elements(html)
    names = [tag for tag, _ in parsed.tags]
    assert "img" not in names
    assert names.count("script") == allowed_scripts
    for tag, attributes in parsed.tags:
        assert not any(key.startswith("on") for key in attributes), (tag, attributes)
        for key in ("href", "src", "action"):
            assert not (attributes.get(key) or "").strip().lower().startswith("javascript:"), (tag, attributes)


@pytest.mark.parametrize("renderer", ["commonmark", "commonmark+table"])
def test_markdown_renders_the_text_as_text(written, project, renderer):
    markdown = read(project, "report.md")
    assert_no_commands(markdown)
    assert_not_sent(markdown)
    engine = MarkdownIt("commonmark").enable("table") if renderer.endswith("table") else MarkdownIt("commonmark")
    html = engine.render(markdown)
    assert_nothing_injected(html)
    assert "<img" not in html and "<script" not in html and "onerror=" not in html.replace("onerror=&quot;", "")
    text = re.sub(r"<[^>]+>", "", html)
    assert "[link](javascript:alert(1))" in text  # the link is shown, not made
    assert "*em*" in text and "[/bold]" in text and "| pipe" in text
    assert "first " in text and "second " in text  # the expectation names, in the checks' table
    if renderer.endswith("table"):
        assert "<table>" in html and "<td>" in html


def test_markdown_runs_no_script_in_chromium(written, project, tmp_path):
    from test_report import chromium_dom

    body = MarkdownIt("commonmark").enable("table").render(read(project, "report.md"))
    page = f"<!DOCTYPE html><html><head><title>defcheck</title></head><body>{body}</body></html>"
    dom = chromium_dom(page, tmp_path)
    assert elements(dom).title == "defcheck", "a script of the payload ran"
    assert_nothing_injected(dom)
    # the control: the same payload unescaped does run in this Chromium, so the check above means something
    raw = f"<!DOCTYPE html><html><head><title>defcheck</title></head><body>{PAYLOAD}</body></html>"
    assert elements(chromium_dom(raw, tmp_path)).title == "pwned"


# --- HTML --------------------------------------------------------------------------------------------------------


def test_html_runs_its_own_script_only(written, project, tmp_path):
    from test_report import chromium_dom

    html = read(project, "report.html")
    assert_no_commands(html)
    assert_not_sent(html)
    assert_nothing_injected(html, allowed_scripts=1)
    dom = chromium_dom(html, tmp_path)
    assert 'data-dc-ready="1"' in dom  # the page's script ran to its end
    assert elements(dom).title.startswith("defcheck report"), "a script of the payload ran"
    assert_nothing_injected(dom, allowed_scripts=1)


# --- GitHub annotations ------------------------------------------------------------------------------------------


def check_github_output(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every line on stdout and stderr: the commands are defcheck's, well formed, and none is forged."""
    assert "Traceback" not in done.stderr, done.stderr
    commands = workflow_commands(done.stdout)
    assert workflow_commands(done.stderr) == [], "stderr starts a workflow command"
    for command in commands:
        assert command["name"] in ("error", "warning", "notice"), command
        assert set(command["properties"]) <= {"file", "line", "title", "endLine", "col", "endColumn"}, command
        assert command["properties"].get("title", "").startswith("defcheck"), command
        assert command["properties"].get("file") != "evil", command
        assert_not_sent(command["data"] + command["properties"].get("title", ""))
    return commands


def test_github_annotations_forge_no_command(project):
    done = defcheck(project, "-p", "hostile_broken_plugin", "run", "-f", "github")
    assert done.returncode == 2, done.stdout + done.stderr
    commands = check_github_output(done)
    assert commands, done.stdout
    # the forged command is there, as data of defcheck's own annotations, on their line
    assert any(FORGED in command["data"] for command in commands)
    assert any(FORGED in command["properties"]["title"] for command in commands)
    assert FORGED in done.stderr  # the broken plugin's message, shown but neutralised
    assert_not_sent(done.stdout + done.stderr)


def test_github_annotations_of_an_invalid_concept_file(project, tmp_path):
    """The definitions' errors (on stderr, before any model is loaded) quote the hostile values."""
    bad = CONCEPT.replace('threshold: "> 0"', f"threshold: {yaml_string('> 0' + chr(10) + FORGED)}")
    bad_folder = tmp_path / "bad"
    bad_folder.mkdir()
    (bad_folder / "hostile.yaml").write_text(bad, encoding="utf-8")
    done = defcheck(project, "run", "--no-config", "--no-builtin", "-d", str(bad_folder), "-f", "github")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error:" in done.stderr and FORGED in done.stderr
    check_github_output(done)


# --- terminal ----------------------------------------------------------------------------------------------------

TERMINAL_COMMANDS = {
    "run": (),
    "run -q": ("run", "-q"),
    "list": ("list", "-d", "concepts", "--no-builtin"),
    "validate": ("validate", "concepts", "--no-builtin"),
    "checkers": ("checkers",),
    "plugins": ("-p", "hostile_broken_plugin", "plugins"),
    "report": ("report", "out/report.json", "-f", "terminal"),
}


@pytest.mark.parametrize("name", list(TERMINAL_COMMANDS))
def test_terminal_shows_control_characters_and_no_markup(written, project, name):
    done = written if name == "run" else defcheck(project, *TERMINAL_COMMANDS[name])
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "MarkupError" not in output, output
    assert done.returncode in (0, 1, 2), output
    assert_not_sent(output)
    assert_no_commands(output)
    if name in ("run", "list", "report"):
        assert "[/bold]" in done.stdout and "\\x1b]0;title" in done.stdout  # shown, not sent or parsed
    if name == "validate":
        assert done.returncode == 0, output


def test_terminal_in_colour_sends_only_its_own_styles(project):
    done = defcheck(project, "run", color=True)
    assert "Traceback" not in done.stderr, done.stderr
    sequences = set(re.findall(r"\x1b[^a-zA-Z]*[a-zA-Z]?", done.stdout + done.stderr))
    assert sequences, "FORCE_COLOR printed no colour"
    assert all(re.fullmatch(r"\x1b\[[0-9;]*m", sequence) for sequence in sequences), sequences
    assert "\x1b]" not in done.stdout and "\x07" not in done.stdout and "\x1b[2J" not in done.stdout


# --- JUnit, SARIF, JSON ------------------------------------------------------------------------------------------


def test_junit_parses_and_keeps_the_text(written, project):
    text = read(project, "junit.xml")
    assert_no_commands(text)
    assert_not_sent(text)
    root = ET.fromstring(text.encode("utf-8"))
    messages = [element.get("message") or "" for element in root.iter() if element.tag in ("error", "failure")]
    assert any(FORGED in message and "\\x1b[2J" in message and "\\x00" in message for message in messages)
    names = [case.get("name") or "" for case in root.iter("testcase")]
    assert any(name.startswith("first <img") for name in names)


def test_junit_of_a_saved_report_with_characters_xml_forbids(written, project):
    from defcheck.report import Report
    from defcheck.report.junit import render_junit

    data = json.loads(read(project, "report.json"))
    data["concepts"]["hostile_head"]["definitions"]["crashes"]["error"] = "a\ud800b\x00c\x0bd\x1fe\ufffe\uffff"
    data["checks"]["expectations"][0]["description"] = "\udfff\x08"
    text = render_junit([Report(data)])
    root = ET.fromstring(text.encode("utf-8"))
    messages = [element.get("message") or "" for element in root.iter("error")]
    assert any("a\\ud800b\\x00c\\x0bd\\x1fe??" in message for message in messages), messages


def test_sarif_and_json_parse_and_carry_the_text(written, project):
    for name in ("defcheck.sarif", "report.json"):
        text = read(project, name)
        assert_no_commands(text)
        assert_not_sent(text)
    log = json.loads(read(project, "defcheck.sarif"))
    messages = [result["message"]["text"] for result in log["runs"][0]["results"]]
    assert any(message.endswith(f"ValueError: {ERROR} (at hostile_outputs_plugin.py:6)") for message in messages), (
        messages
    )
    assert any(f"first {PAYLOAD}" in message for message in messages), messages
    report = json.loads(read(project, "report.json"))
    assert report["concepts"]["hostile_head"]["summary"] == PAYLOAD
