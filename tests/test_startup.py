"""Start-up: importing defcheck, its plugin contract and the built-in plugins, and running the commands that need
no model, import neither torch nor TransformerLens (benchmarks/bench_startup.py measures the time this saves).

Each case runs in a fresh interpreter and asserts which modules were imported, not how long it took.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

HEAVY = ("torch", "transformer_lens")

# argv of each command that reads definitions or plugins' declarations only (``new`` writes into the cwd)
COMMANDS = {
    "help": ["--help"],
    "version": ["--version"],
    "list": ["list"],
    "list-json": ["list", "--json"],
    "validate": ["validate"],
    "schema": ["schema"],
    "new": ["new", "startup_probe", "-o", "startup_probe.yaml"],
    "checkers": ["checkers"],
    "plugins": ["plugins"],
}


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def heavy_check(label: str) -> str:
    """Lines that fail, naming them, if torch or TransformerLens were imported."""
    return f"""
heavy = [name for name in {HEAVY!r} if name in sys.modules]
assert not heavy, f"{label} imported {{heavy}}"
"""


@pytest.mark.parametrize(
    "module", ["defcheck", "defcheck.plugin", "defcheck.cli", "defcheck.hooks.manager", "defcheck.language.registry"]
)
def test_importing_the_package_imports_no_torch(module, tmp_path):
    result = run_python(f"import sys, {module}" + heavy_check(module), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_importing_every_builtin_plugin_imports_no_torch(tmp_path):
    modules = sorted(point.value.split(":")[0] for point in entry_points(group="defcheck"))
    assert "defcheck_plugins.circuits" in modules and "defcheck_plugins.gridworld" in modules
    code = "import importlib, sys\n"
    for module in modules:
        code += f"importlib.import_module({module!r})\n"
    code += "from defcheck.hooks.manager import load_plugins\nextensions = load_plugins(strict=True)\n"
    code += "assert extensions.checkers and extensions.model_loaders and extensions.report_formats\n"
    result = run_python(code + heavy_check("the built-in plugins"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_that_needs_no_model_imports_no_torch(command, tmp_path):
    argv = COMMANDS[command]
    code = f"""
        import sys
        from defcheck.cli import run_cli

        code = run_cli({argv!r})
        assert code == 0, f"exit {{code}}"
    """
    result = run_python(textwrap.dedent(code) + heavy_check(f"defcheck {' '.join(argv)}"), tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_the_check_is_not_vacuous(tmp_path):
    """The same probe sees torch where a command does load a model."""
    result = run_python(
        "import sys\nfrom defcheck.models.loading import load_model\nload_model('builtin:toy-induction')\n"
        + heavy_check("loading a model"),
        tmp_path,
    )
    assert result.returncode != 0 and "loading a model imported ['torch', 'transformer_lens']" in result.stderr


# defcheck._lazy: how the engine's types and the built-in plugins name torch without importing it


def test_a_lazy_module_imports_on_first_attribute_and_keeps_it(tmp_path, monkeypatch):
    from defcheck._lazy import LazyModule

    (tmp_path / "lazy_start_target.py").write_text("VALUE = 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_start_target", raising=False)
    lazy = LazyModule("lazy_start_target")
    assert not hasattr(lazy, "__wrapped__")  # dunders (copy, pickle, inspect probe them) never import
    assert "lazy_start_target" not in sys.modules
    assert lazy.VALUE == 42
    assert "lazy_start_target" in sys.modules and lazy.__dict__["VALUE"] == 42  # read directly from now on
    with pytest.raises(AttributeError):
        _ = lazy.MISSING


def test_no_grad_applies_on_call_to_functions_and_generators():
    import torch

    from defcheck._lazy import no_grad

    @no_grad
    def grad_inside() -> bool:
        return torch.is_grad_enabled()

    @no_grad
    def steps():
        yield torch.is_grad_enabled()
        yield torch.is_grad_enabled()

    assert torch.is_grad_enabled()
    assert grad_inside() is False and grad_inside.__name__ == "grad_inside"
    seen = []
    for inside in steps():
        seen.append((inside, torch.is_grad_enabled()))  # the consumer runs with grad on between the steps
    assert seen == [(False, True), (False, True)]


BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_startup.py"


@pytest.mark.slow
def test_the_startup_benchmark_prints_its_table(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "1", "--json", str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ("defcheck --help", "defcheck validate (built-ins)", "defcheck validate, torch + TL imported first"):
        assert f"| {command}" in done.stdout, done.stdout
    assert "<= 0.3:" in done.stdout and "<= 0.8:" in done.stdout
    assert (tmp_path / "rows.json").is_file()
