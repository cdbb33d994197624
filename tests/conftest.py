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
    from defcheck.hooks.manager import load_plugins

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


TINY = {
    "n_layers": 2,
    "d_model": 64,
    "n_heads": 8,
    "d_head": 8,
    "d_vocab": 64,
    "n_ctx": 64,
    "attn_only": True,
    "normalization_type": None,
}


def make_view(seed: int = 0, **overrides):
    """A ModelView over a small seeded random-weight TransformerBridge (BOS id 0, ids 1..63 usable)."""
    from defcheck.models import ModelView, TokenSpace, build_bridge

    config = {**TINY, **overrides}
    model = build_bridge(config, seed=seed)
    return ModelView(model, TokenSpace(config["d_vocab"], bos_token_id=0), name=f"random-{seed}")


@pytest.fixture(scope="session")
def random_view():
    """A 2-layer attention-only random model."""
    return make_view(0)


@pytest.fixture(scope="session")
def random_view_mlp():
    """A 3-layer random model with LayerNorm and MLPs."""
    return make_view(1, n_layers=3, attn_only=False, normalization_type="LN", d_mlp=128)


@pytest.fixture
def no_dns(monkeypatch):
    """No network, as here, but forced: the hub is not in offline mode, no proxy is set, and no host name
    resolves, so the loaders' reachability check is what refuses."""
    import socket

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    """The module of ``scripts/NAME.py`` (loaded once; registered in ``sys.modules``, where dataclasses look
    their module up while a class is built)."""
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def assert_page_current(script: str, page: Path, tmp_path: Path) -> None:
    """``scripts/SCRIPT.py --output FRESH`` writes exactly ``page`` today; else the diff and how to refresh it."""
    import difflib

    fresh = tmp_path / page.name
    assert load_script(script).main(["--output", str(fresh), "--quiet"]) == 0
    expected, current = fresh.read_text(encoding="utf-8"), page.read_text(encoding="utf-8")
    if expected != current:
        lines = difflib.unified_diff(current.splitlines(True), expected.splitlines(True), f"docs/{page.name}", "fresh")
        shown = "".join(list(lines)[:60])
        raise AssertionError(f"docs/{page.name} is stale; run `python scripts/{script}.py`:\n{shown}")


def json_paths(value, prefix=()):
    """Every path into a JSON-like value (keys and list indices), the value's own ``()`` first."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from json_paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from json_paths(inner, (*prefix, index))
