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
