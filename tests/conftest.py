"""Shared fixtures: the fixture plugin on sys.path, and helpers to run the CLI in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def fixture_extensions():
    """The extensions with the installed plugins plus the tests' fixture plugin."""
    from defcheck.plugins import load_plugins

    return load_plugins(modules=["fixture_plugin"])


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from defcheck.cli import run_cli

    def run(*args: str) -> tuple[int, str, str]:
        code = run_cli(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
