"""The plugin contract, ``defcheck.plugin``: everything a plugin needs, in one ``__all__``; the built-in plugins import
the core through it alone (any other import says why); every function they declare fits its Protocol, at run time
and for mypy; a third party written against it alone loads, scores and renders."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from defcheck import plugin
from defcheck.hooks.manager import load_plugins

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"

# what issue 13 asks the contract to hold, at least
REQUIRED = {
    "hookimpl",
    "Checker",
    "Probe",
    "ModelLoader",
    "ReportFormat",
    "UnitKind",
    "ConceptFolder",
    "Streamed",
    "CheckContext",
    "Scores",
    "NotApplicable",
    "ProbeBatch",
    "ProbeRequest",
    "probe_generator",
    "ModelView",
    "TokenSpace",
    "DefcheckError",
    "Report",
    "ScoreFunction",
    "BuildFunction",
    "LoadFunction",
    "RenderFunction",
}


def test_the_contract_holds_what_a_plugin_needs():
    assert set(plugin.__all__) >= REQUIRED
    assert len(plugin.__all__) == len(set(plugin.__all__))
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None, name


def test_the_contract_is_the_core_objects_not_copies():
    from defcheck.engine.context import CheckContext
    from defcheck.engine.scores import Scores
    from defcheck.hooks.declarations import Checker
    from defcheck.report import Report

    assert plugin.CheckContext is CheckContext and plugin.Scores is Scores
    assert plugin.Checker is Checker and plugin.Report is Report


def core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a defcheck module in ``path``, wherever it is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, module) for module in modules if module == "defcheck" or module.startswith("defcheck.")]
    return found


def justified(lines: list[str], line: int) -> bool:
    """A comment on the import's line or one of the three above says why it is not the contract."""
    return any("not the contract" in text.lower() for text in lines[max(line - 4, 0) : line])


def test_builtin_plugins_import_the_core_only_through_the_contract():
    files = sorted(PLUGINS.rglob("*.py"))
    assert len(files) > 10
    unjustified = []
    through_contract = 0
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for line, module in core_imports(path):
            if module == "defcheck.plugin":
                through_contract += 1
            elif not justified(lines, line):
                unjustified.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert through_contract >= 12
    assert not unjustified, "import from defcheck.plugin, or say why not in a comment:\n" + "\n".join(unjustified)


def test_the_scan_finds_an_unjustified_import():
    lines = ["import os", "from defcheck.runner import evaluate"]
    assert not justified(lines, 2)
    assert justified(["# not the contract: because", *lines], 3)


def positional(function: object, count: int) -> None:
    """``function`` can be called with ``count`` positional arguments, as the runner calls it."""
    inspect.signature(function).bind(*range(count))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def extensions():
    return load_plugins(modules=["fixture_plugin"], strict=True)


def test_every_declared_function_fits_its_protocol_at_run_time(extensions):
    counted = 0
    for checker in extensions.checkers.values():
        positional(checker.score, 1)
        if checker.activations is not None:
            positional(checker.activations, 2)
        if checker.streamed is not None:
            positional(checker.streamed.step, 1)
            positional(checker.streamed.finish, 2)
            for function in (checker.streamed.prepare, checker.streamed.wants_prepare):
                if function is not None:
                    positional(function, 1)
        counted += 1
    for probe in extensions.probes.values():
        positional(probe.build, 1)
    for loader in extensions.model_loaders.values():
        positional(loader.load, 2)
        for function in (loader.matches, loader.checkpoints):
            if function is not None:
                positional(function, 1)
    for report_format in extensions.report_formats.values():
        positional(report_format.render, 1)
    assert counted >= 20 and "head_norm" in extensions.checkers  # the built-ins and the tests' fixture plugin


NEW_PLUGIN = '''
"""A third party's plugin that imports defcheck only through the contract."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from defcheck.plugin import (
    CheckContext,
    Checker,
    ModelView,
    Report,
    ReportFormat,
    Scores,
    Streamed,
    hookimpl,
)

if TYPE_CHECKING:
    import torch

PATTERN = "blocks.{}.attn.hook_pattern"


def first_token_attention(context: CheckContext) -> torch.Tensor:
    """Per batch: the attention each head pays to position 0, summed over sequences and queries."""
    return context.stacked(PATTERN)[..., 0].sum(dim=(1, 3))


def mean_first_token(context: CheckContext, partials: list[Any]) -> Scores:
    import torch

    tokens = context.probe.tokens
    total = torch.stack(partials).sum(0)
    return Scores(total / (tokens.shape[0] * tokens.shape[1]))


def hooks(params: Any, model: ModelView) -> list[str]:
    return [PATTERN.format(layer) for layer in range(model.n_layers)]


def render_count(report: Report) -> str:
    return f"{len(report.concepts)} concept(s)\\n"


@hookimpl
def defcheck_checkers() -> list[Checker]:
    step = Streamed(first_token_attention, mean_first_token)
    return [
        Checker(
            "contract_first_token",
            "behavior",
            lambda context: mean_first_token(context, [first_token_attention(context)]),
            probe="required",
            activations=hooks,
            streamed=step,
        )
    ]


@hookimpl
def defcheck_report_formats() -> list[ReportFormat]:
    return [ReportFormat("contract_count", render_count, ".txt", "how many concepts")]
'''

NEW_CONCEPT = """\
concept: sink_head
unit: attention_head
summary: Heads that attend mostly to the first token (a test of a plugin written against the contract).
definitions:
  attends_first:
    kind: behavioral
    source: the tests
    all:
      - checker: contract_first_token
        probe: {name: random_tokens, n: 4, length: 12}
        threshold: ">= 0.0"
"""


def test_a_plugin_written_against_the_contract_loads_scores_and_renders(tmp_path, monkeypatch):
    (tmp_path / "contract_plugin.py").write_text(NEW_PLUGIN, encoding="utf-8")
    (tmp_path / "sink.yaml").write_text(NEW_CONCEPT, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import defcheck
    from defcheck.models.loading import load_model

    view = load_model("builtin:toy-induction")
    try:
        report = defcheck.check(
            view, paths=[tmp_path / "sink.yaml"], include_builtin=False, plugins=["contract_plugin"]
        )
        extensions = load_plugins(modules=["contract_plugin"], strict=True)
    finally:
        sys.modules.pop("contract_plugin", None)
    definition = report.data["concepts"]["sink_head"]["definitions"]["attends_first"]
    assert definition["status"] != "error" and len(definition["members"]) == view.n_layers * view.n_heads
    assert extensions.report_formats["contract_count"].render(report) == "1 concept(s)\n"


MYPY_PLUGIN = """
from __future__ import annotations

from defcheck.plugin import CheckContext, Checker, Probe, ProbeBatch, ProbeRequest, Report, ReportFormat, Scores


def score(context: CheckContext) -> Scores:
    return Scores.inapplicable(context.shape, "never")


def build(request: ProbeRequest) -> ProbeBatch:
    return ProbeBatch("p", {}, None)


def render(report: Report) -> bytes:
    return b""


def score_two(context: CheckContext, extra: int) -> Scores:
    return score(context)


def build_text(request: ProbeRequest) -> str:
    return "tokens"


def render_number(report: int) -> str:
    return ""


GOOD = [Checker("a", "behavior", score), Probe("p", build), ReportFormat("f", render)]
BAD_SCORE = Checker("b", "behavior", score_two)  # wrong
BAD_BUILD = Probe("q", build_text)  # wrong
BAD_RENDER = ReportFormat("g", render_number)  # wrong
"""


@pytest.mark.slow
def test_mypy_checks_a_plugins_functions_against_the_protocols(tmp_path):
    source = tmp_path / "typed_plugin.py"
    text = textwrap.dedent(MYPY_PLUGIN).lstrip()
    source.write_text(text, encoding="utf-8")
    wrong = [number for number, line in enumerate(text.splitlines(), 1) if line.endswith("# wrong")]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(tmp_path / "cache"), str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert len(wrong) == 3 and lines == wrong, result.stdout[-4000:]
    assert "ScoreFunction" in result.stdout and "BuildFunction" in result.stdout and "RenderFunction" in result.stdout
