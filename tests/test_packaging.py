"""The wheel: the core, the built-in plugins and definitions, py.typed, the console script and entry points."""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCES = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "out")


def _build_offline_without_isolation() -> bool:
    """Build with this environment's setuptools when it is new enough for pyproject.toml (no index needed);
    otherwise let pip make an isolated build environment from its configured (possibly local) index."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return major >= 69


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    """``pip wheel`` a project folder (offline where this environment's setuptools allows)."""
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out), "-q"]
    if _build_offline_without_isolation():
        command.append("--no-build-isolation")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy, so the build leaves nothing (build/, *.egg-info) in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    return build_wheel(source, work / "dist")


def dist_info_file(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}") and n.count("/") == 1]
    return wheel.read(path).decode("utf-8")


@pytest.mark.slow
def test_wheel_contains_the_packages_and_typing_marker(wheel):
    names = set(wheel.namelist())
    assert "defcheck/py.typed" in names
    assert "defcheck/cli/__init__.py" in names
    assert "defcheck/cli/commands/run.py" in names
    # every package of the source tree is in the wheel (a non-editable install imports them all)
    packages = {str(init.parent.relative_to(ROOT)) for init in (ROOT / "defcheck").rglob("__init__.py")}
    assert {f"{package}/__init__.py" for package in packages} <= names
    assert "defcheck_plugins/weights/toy-induction.pt" in names
    assert "defcheck_definitions/__init__.py" in names
    plugins = sorted(p.name for p in (ROOT / "plugins").glob("*.py"))
    assert "concepts.py" in plugins
    assert {f"defcheck_plugins/{name}" for name in plugins} <= names
    definitions = sorted(p.name for p in (ROOT / "definitions").glob("*.yaml"))
    assert {f"defcheck_definitions/{name}" for name in definitions} <= names
    assert not [n for n in names if n.startswith(("tests/", "plugins/", "definitions/")) or "__pycache__" in n]


@pytest.mark.slow
def test_wheel_declares_the_console_script_and_the_plugin_entry_points(wheel):
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(dist_info_file(wheel, "entry_points.txt"))
    assert parser["console_scripts"]["defcheck"].strip() == "defcheck.cli:main"
    group = {name: target.strip() for name, target in parser["defcheck"].items()}
    assert group["concepts"] == "defcheck_plugins.concepts"
    for target in group.values():
        module = target.split(":")[0]
        assert module.startswith("defcheck_plugins."), f"a built-in entry point leaves the package: {target}"
        path = module.replace(".", "/")
        assert {f"{path}.py", f"{path}/__init__.py"} & set(wheel.namelist()), f"{target} is not in the wheel"


@pytest.mark.slow
def test_wheel_metadata(wheel):
    metadata = dist_info_file(wheel, "METADATA")
    assert "Name: defcheck\n" in metadata
    from defcheck import __version__

    assert f"Version: {__version__}\n" in metadata
    assert "Requires-Dist: transformer_lens>=4.3" in metadata.replace("transformer-lens", "transformer_lens")


@pytest.mark.slow
def test_the_guides_example_plugin_builds_and_is_found_once_installed(tmp_path):
    """The third-party plugin of docs/writing-plugins.md as a real wheel, unpacked onto PYTHONPATH."""
    from test_plugins import run_defcheck, write_doc_example

    write_doc_example(tmp_path / "project")
    built = build_wheel(tmp_path / "project", tmp_path / "dist")
    assert "defcheck_acme/definitions/diffuse_head.yaml" in built.namelist()
    built.extractall(tmp_path / "site")

    shown = run_defcheck("plugins", "--json", pythonpath=tmp_path / "site", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    (acme,) = [p for p in json.loads(shown.stdout)["plugins"] if p["name"] == "acme"]
    assert (acme["distribution"], acme["module"], acme["error"]) == (
        "defcheck-acme 0.1.0",
        "defcheck_acme.plugin",
        None,
    )
    assert acme["registers"]["checkers"] == ["acme_attention_entropy", "acme_ov_norm"]

    listed = run_defcheck("list", "--json", pythonpath=tmp_path / "site", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    (concept,) = [c for c in payload["concepts"] if c["name"] == "diffuse_head"]
    assert [d["id"] for d in concept["definitions"]] == ["diffuse_head.spreads_attention", "diffuse_head.small_ov"]
    assert not [d for d in payload["diagnostics"] if "diffuse_head" in d["file"]]
