"""The plugin manager: discovery through entry points, failures that are reported, and name conflicts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch

from defcheck import __version__
from defcheck.hooks.manager import (
    HOOK_NAMES,
    PluginConflictError,
    PluginLoadError,
    PluginNotFoundError,
    load_plugins,
)

ACME = '''
"""Acme's defcheck plugin: one behavior checker and one probe (a fake third party for the tests)."""
import torch
from pydantic import BaseModel, ConfigDict, Field

from defcheck import Checker, Probe, hookimpl


class OffsetParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    offset: int = Field(1, ge=1)


def offset_attention(context):
    return torch.zeros(context.model.n_layers, context.model.n_heads)


def blank_tokens(request):
    raise NotImplementedError


@hookimpl
def defcheck_checkers():
    return [Checker("acme_offset_attention", "behavior", offset_attention, params=OffsetParams, probe="required")]


@hookimpl
def defcheck_probes():
    return [Probe("acme_blank_tokens", blank_tokens)]
'''

ACME_CONCEPT = """\
concept: acme_offset_head
unit: attention_head
summary: Heads that attend a fixed number of tokens back.
definitions:
  attends_back:
    kind: behavioral
    source: Acme internal note 7
    all:
      - checker: acme_offset_attention
        params: {offset: 2}
        probe: acme_blank_tokens
        threshold: ">= 0.5"
"""

GOOD = """
from defcheck import Checker, hookimpl


@hookimpl
def defcheck_checkers():
    return [Checker("{name}", "mechanism", lambda context: None)]
"""


def write_module(root: Path, name: str, source: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def write_distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> Path:
    """A fake installed distribution: ``NAME-VERSION.dist-info`` with METADATA and a ``defcheck`` entry-point group."""
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = "".join(f"{point} = {target}\n" for point, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[defcheck]\n{lines}", encoding="utf-8")
    return dist_info


def run_defcheck(*args: str, pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``defcheck`` console script in a fresh process, with ``pythonpath`` first on sys.path."""
    script = Path(sys.executable).with_name("defcheck")
    assert script.exists(), f"no console script at {script}: install the package (pip install -e .)"
    env = {key: value for key, value in os.environ.items() if key != "DEFCHECK_PLUGINS"}
    env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules and fake distributions; its modules are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DEFCHECK_PLUGINS", raising=False)
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def by_name(extensions, name):
    matches = [info for info in extensions.plugins if info.name == name]
    assert len(matches) == 1, [info.name for info in extensions.plugins]
    return matches[0]


# (a) a third party, installed as a distribution with an entry point


def test_third_party_distribution_is_found_through_its_entry_point(tmp_path):
    write_module(tmp_path, "acme_defcheck", ACME)
    write_distribution(tmp_path, "acme-defcheck", "1.0", {"acme": "acme_defcheck"})
    (tmp_path / "acme.yaml").write_text(ACME_CONCEPT, encoding="utf-8")

    shown = run_defcheck("plugins", "--json", pythonpath=tmp_path, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(shown.stdout)["plugins"]}
    assert plugins["acme"] == {
        "name": "acme",
        "module": "acme_defcheck",
        "distribution": "acme-defcheck 1.0",
        "builtin": False,
        "registers": {"checkers": ["acme_offset_attention"], "probes": ["acme_blank_tokens"]},
        "error": None,
    }
    assert plugins["concepts"]["builtin"] is True
    assert plugins["concepts"]["distribution"] == f"defcheck {__version__}"

    listed = run_defcheck("list", "--json", "--no-builtin", "-d", "acme.yaml", pythonpath=tmp_path, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    assert payload["diagnostics"] == []
    (concept,) = [c for c in payload["concepts"] if c["name"] == "acme_offset_head"]
    (criterion,) = concept["definitions"][0]["criteria"]
    assert criterion["checker"] == "acme_offset_attention"
    assert criterion["observes"] == "behavior"  # known only through the plugin
    assert criterion["probe"] == {"name": "acme_blank_tokens"}


def test_without_the_distribution_its_checker_is_unknown(tmp_path, cli, monkeypatch):
    (tmp_path / "acme.yaml").write_text(ACME_CONCEPT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("list", "--json", "--no-builtin", "-d", "acme.yaml")
    assert code == 0
    payload = json.loads(out)
    (concept,) = [c for c in payload["concepts"] if c["name"] == "acme_offset_head"]
    assert concept["definitions"][0]["criteria"][0]["observes"] is None
    assert "unknown-checker" in {d["code"] for d in payload["diagnostics"]}


def test_entry_points_given_in_process(plugin_dir):
    write_module(plugin_dir, "acme_inproc", ACME)
    extensions = load_plugins(entry_points=[EntryPoint("acme", "acme_inproc", "defcheck")])
    assert [info.name for info in extensions.plugins] == ["acme"]
    info = extensions.plugins[0]
    assert (info.distribution, info.builtin, info.error) == (None, False, None)
    assert extensions.checkers["acme_offset_attention"].observes == "behavior"
    assert extensions.owner("checkers", "acme_offset_attention") == "acme"
    assert extensions.owner("probes", "acme_blank_tokens") == "acme"


# (b) a plugin whose import raises


BROKEN = """
raise RuntimeError("the acme licence server is down")
"""


def test_import_error_is_reported_and_the_others_still_load(plugin_dir):
    write_module(plugin_dir, "acme_broken", BROKEN)
    write_module(plugin_dir, "acme_fine", GOOD.replace("{name}", "fine_checker"))
    points = [EntryPoint("broken", "acme_broken", "defcheck"), EntryPoint("fine", "acme_fine", "defcheck")]
    extensions = load_plugins(entry_points=points)
    broken = by_name(extensions, "broken")
    assert broken.error == "failed to load acme_broken: RuntimeError: the acme licence server is down"
    assert broken.registers == {}
    assert by_name(extensions, "fine").error is None
    assert "fine_checker" in extensions.checkers
    assert [str(problem) for problem in extensions.problems] == [f"plugin 'broken': {broken.error}"]

    with pytest.raises(PluginLoadError, match=r"^plugin 'broken': failed to load acme_broken: RuntimeError: the acme"):
        load_plugins(entry_points=points, strict=True)


def test_import_error_cli_reports_it_and_strict_makes_it_fatal(tmp_path):
    write_module(tmp_path, "acme_broken", BROKEN)
    write_module(tmp_path, "acme_fine", GOOD.replace("{name}", "fine_checker"))
    write_distribution(tmp_path, "acme-defcheck", "2.0", {"broken": "acme_broken", "fine": "acme_fine"})

    shown = run_defcheck("plugins", "--json", pythonpath=tmp_path, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(shown.stdout)["plugins"]}
    assert plugins["broken"]["error"] == "failed to load acme_broken: RuntimeError: the acme licence server is down"
    assert plugins["broken"]["distribution"] == "acme-defcheck 2.0"
    assert plugins["fine"]["error"] is None
    assert plugins["fine"]["registers"] == {"checkers": ["fine_checker"]}

    strict = run_defcheck("--strict-plugins", "plugins", pythonpath=tmp_path, cwd=tmp_path)
    assert strict.returncode == 2
    assert strict.stdout == ""
    assert "Traceback" not in strict.stderr
    assert strict.stderr.strip().splitlines() == [
        "error: plugin 'broken': failed to load acme_broken: RuntimeError: the acme licence server is down"
    ]


def test_strict_plugins_error_message_stays_on_one_line(plugin_dir):
    write_module(plugin_dir, "acme_multiline", 'raise ValueError("first line\\n  second line")')
    with pytest.raises(PluginLoadError) as raised:
        load_plugins(entry_points=[EntryPoint("multi", "acme_multiline", "defcheck")], strict=True)
    assert str(raised.value) == "plugin 'multi': failed to load acme_multiline: ValueError: first line; second line"


def test_missing_plugin_module_is_a_usage_error(plugin_dir, cli, monkeypatch):
    """A `-p` module that does not exist is a typo, not a broken plugin: exit 2 at once, as in pytest."""
    expected = "error: cannot load the plugin module 'acme_not_installed': No module named 'acme_not_installed'"
    for strict in ((), ("--strict-plugins",)):
        code, out, err = cli(*strict, "--plugin", "acme_not_installed", "plugins", "--json")
        assert (code, out) == (2, "")
        assert err.strip().splitlines() == [expected]
    monkeypatch.setenv("DEFCHECK_PLUGINS", "acme_not_installed")
    code, out, err = cli("schema")  # even a command that loads no plugin refuses it
    assert (code, out, err.strip()) == (2, "", expected)
    monkeypatch.delenv("DEFCHECK_PLUGINS")
    with pytest.raises(PluginNotFoundError, match="No module named 'acme_not_installed'"):
        load_plugins(modules=["acme_not_installed"])


def test_plugin_module_whose_dependency_is_missing_is_reported_not_refused(plugin_dir, cli):
    write_module(plugin_dir, "acme_needs_torchvision", "import acme_torchvision_missing\n")
    code, out, _ = cli("--plugin", "acme_needs_torchvision", "plugins", "--json")
    assert code == 0
    plugins = {plugin["name"]: plugin for plugin in json.loads(out)["plugins"]}
    assert plugins["acme_needs_torchvision"]["error"] == (
        "failed to load acme_needs_torchvision: ModuleNotFoundError: No module named 'acme_torchvision_missing'"
    )


# (c) a plugin whose hook raises


RAISES = """
from defcheck import Checker, Probe, hookimpl


@hookimpl
def defcheck_checkers():
    raise OSError("cannot reach the acme checker registry")


@hookimpl
def defcheck_probes():
    return [Probe("acme_probe_of_a_broken_plugin", lambda request: None)]
"""


def test_hook_that_raises_is_reported_and_the_plugin_adds_nothing(plugin_dir, cli):
    write_module(plugin_dir, "acme_raises", RAISES)
    extensions = load_plugins(modules=["acme_raises", "fixture_plugin"])
    info = by_name(extensions, "acme_raises")
    assert info.error == "defcheck_checkers raised OSError: cannot reach the acme checker registry"
    assert "acme_probe_of_a_broken_plugin" not in extensions.probes  # its other hooks count for nothing
    assert info.registers == {}
    assert "head_norm" in extensions.checkers  # the others still load

    code, out, err = cli("--plugin", "acme_raises", "plugins")
    assert code == 0
    assert "error: defcheck_checkers raised OSError: cannot reach the acme checker registry" in out
    code, _, err = cli("--strict-plugins", "--plugin", "acme_raises", "plugins")
    assert code == 2
    assert (
        err.strip()
        == "error: plugin 'acme_raises': defcheck_checkers raised OSError: cannot reach the acme checker registry"
    )


def test_validate_counts_a_plugin_failure_as_an_error(plugin_dir, cli):
    write_module(plugin_dir, "acme_raises_too", RAISES)
    fixture = Path(__file__).parent / "fixtures" / "concepts" / "wide_head.yaml"
    code, out, _ = cli(
        "--plugin", "acme_raises_too", "--plugin", "fixture_plugin", "validate", "--json", "--no-builtin", str(fixture)
    )
    assert code == 1
    (problem,) = json.loads(out)["diagnostics"]
    assert problem["code"] == "plugin-error"
    assert problem["file"] == "plugin 'acme_raises_too'"


# (d) two plugins registering the same name


def test_two_plugins_with_one_checker_name_is_an_error_naming_both(plugin_dir, cli):
    write_module(plugin_dir, "acme_first", GOOD.replace("{name}", "shared_name"))
    write_module(plugin_dir, "acme_second", GOOD.replace("{name}", "shared_name"))
    with pytest.raises(PluginConflictError) as raised:
        load_plugins(modules=["acme_first", "acme_second"])
    assert str(raised.value) == (
        "the checker 'shared_name' is registered by two plugins, 'acme_first' and 'acme_second'; "
        "leave one out with -p no:acme_second, or uninstall or rename one of them"
    )

    code, out, err = cli("--plugin", "acme_first", "--plugin", "acme_second", "plugins", "--json")
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.strip().splitlines() == [f"error: {raised.value}"]


def test_a_checker_name_taken_by_a_builtin_plugin_is_a_conflict(plugin_dir):
    write_module(plugin_dir, "acme_clash", GOOD.replace("{name}", "head_norm"))
    with pytest.raises(
        PluginConflictError, match="'head_norm' is registered by two plugins, 'fixture_plugin' and 'acme_clash'"
    ):
        load_plugins(modules=["fixture_plugin", "acme_clash"])


def test_the_same_probe_name_twice_is_a_conflict_too(plugin_dir):
    probe = """
from defcheck import Probe, hookimpl

@hookimpl
def defcheck_probes():
    return [Probe("fixture_tokens", lambda request: None)]
"""
    write_module(plugin_dir, "acme_probe_clash", probe)
    with pytest.raises(PluginConflictError, match="the probe 'fixture_tokens' is registered by two plugins"):
        load_plugins(modules=["fixture_plugin", "acme_probe_clash"])


def test_disabled_leaves_out_a_plugin_by_entry_point_name_or_module(plugin_dir):
    write_module(plugin_dir, "acme_first", GOOD.replace("{name}", "shared_name"))
    write_module(plugin_dir, "acme_second", GOOD.replace("{name}", "shared_name"))
    points = [EntryPoint("first", "acme_first", "defcheck"), EntryPoint("second", "acme_second", "defcheck")]
    with pytest.raises(PluginConflictError):
        load_plugins(entry_points=points)
    for name in ("second", "acme_second"):
        extensions = load_plugins(entry_points=points, disabled=[name])
        assert extensions.owner("checkers", "shared_name") == "first"
        assert [info.name for info in extensions.plugins] == ["first"]
        assert extensions.disabled == ["second"]
    extensions = load_plugins(entry_points=points, modules=["fixture_plugin"], disabled=["first", "fixture_plugin"])
    assert [info.name for info in extensions.plugins] == ["second"]
    assert extensions.disabled == ["first", "fixture_plugin"]
    assert "head_norm" not in extensions.checkers


def test_disabled_from_the_environment_and_unknown_names(plugin_dir, monkeypatch):
    write_module(plugin_dir, "acme_first", GOOD.replace("{name}", "first_checker"))
    points = [EntryPoint("first", "acme_first", "defcheck")]
    monkeypatch.setenv("DEFCHECK_PLUGINS", "fixture_plugin, no:first")
    extensions = load_plugins(entry_points=points)
    assert [info.name for info in extensions.plugins] == ["fixture_plugin"]
    assert extensions.disabled == ["first"]
    monkeypatch.delenv("DEFCHECK_PLUGINS")
    with pytest.raises(PluginNotFoundError, match=r"^-p no:frist names no installed plugin; did you mean 'first'\?$"):
        load_plugins(entry_points=points, disabled=["frist"])


# (e) hooks returning the wrong type, and hooks that would silently never run


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            'return Checker("lonely", "behavior", print)',
            "defcheck_checkers returned Checker, expected a list of Checker",
        ),
        (
            'return [Probe("mislabeled", print)]',
            "defcheck_checkers returned a list holding Probe, expected a list of Checker",
        ),
        (
            'return {"name": "as_a_dict"}',
            "defcheck_checkers returned dict, expected a list of Checker",
        ),
        (
            'return [Checker("fine", "behavior", print), "not a checker"]',
            "defcheck_checkers returned a list holding str, expected a list of Checker",
        ),
    ],
)
def test_hook_returning_the_wrong_type_is_reported(plugin_dir, body, error):
    name = f"acme_wrong_{abs(hash(body))}"
    source = f"""
from defcheck import Checker, Probe, hookimpl

@hookimpl
def defcheck_checkers():
    {body}
"""
    write_module(plugin_dir, name, source)
    extensions = load_plugins(modules=[name])
    assert by_name(extensions, name).error == error
    assert not {"lonely", "mislabeled", "fine"} & set(extensions.checkers)
    with pytest.raises(PluginLoadError, match="expected a list of Checker"):
        load_plugins(modules=[name], strict=True)


def test_hook_returning_none_registers_nothing_without_error(plugin_dir):
    write_module(
        plugin_dir, "acme_none", "from defcheck import hookimpl\n\n@hookimpl\ndef defcheck_probes():\n    pass\n"
    )
    info = by_name(load_plugins(modules=["acme_none"]), "acme_none")
    assert (info.error, info.registers) == (None, {})


def test_misspelled_hook_is_reported_with_a_suggestion(plugin_dir):
    source = "from defcheck import hookimpl\n\n@hookimpl\ndef defcheck_checker():\n    return []\n"
    write_module(plugin_dir, "acme_typo", source)
    info = by_name(load_plugins(modules=["acme_typo"]), "acme_typo")
    assert info.error is not None
    assert info.error.startswith(
        "failed to load acme_typo: PluginValidationError: unknown hook 'defcheck_checker'; "
        "did you mean 'defcheck_checkers'?"
    )
    assert all(hook in info.error for hook in HOOK_NAMES)


def test_hook_without_the_hookimpl_marker_is_reported(plugin_dir):
    source = "from defcheck import Checker\n\ndef defcheck_checkers():\n    return []\n"
    write_module(plugin_dir, "acme_unmarked", source)
    info = by_name(load_plugins(modules=["acme_unmarked"]), "acme_unmarked")
    assert info.error == (
        "failed to load acme_unmarked: PluginValidationError: defcheck_checkers is not marked with "
        "@defcheck.hookimpl, so it would never be called"
    )


def test_hookimpl_with_arguments_the_spec_lacks_is_reported(plugin_dir):
    source = "from defcheck import hookimpl\n\n@hookimpl\ndef defcheck_checkers(model):\n    return []\n"
    write_module(plugin_dir, "acme_args", source)
    info = by_name(load_plugins(modules=["acme_args"]), "acme_args")
    assert info.error is not None
    assert info.error.startswith("failed to load acme_args: PluginValidationError:")
    assert "model" in info.error


# Development: --plugin and $DEFCHECK_PLUGINS


def test_plugins_env_variable_and_option_load_a_module_once(plugin_dir, monkeypatch):
    write_module(plugin_dir, "acme_dev", GOOD.replace("{name}", "dev_checker"))
    monkeypatch.setenv("DEFCHECK_PLUGINS", " acme_dev , fixture_plugin,")
    extensions = load_plugins(modules=["acme_dev"])
    names = [info.name for info in extensions.plugins]
    assert names.count("acme_dev") == 1
    assert "fixture_plugin" in names
    assert extensions.problems == []
    assert extensions.owner("checkers", "dev_checker") == "acme_dev"


def test_module_already_installed_through_an_entry_point_is_not_loaded_twice(plugin_dir):
    write_module(plugin_dir, "acme_both", GOOD.replace("{name}", "both_checker"))
    extensions = load_plugins(entry_points=[EntryPoint("acme", "acme_both", "defcheck")], modules=["acme_both"])
    assert [info.name for info in extensions.plugins] == ["acme"]
    assert extensions.problems == []
    assert extensions.owner("checkers", "both_checker") == "acme"


def test_extra_plugin_objects_register_like_modules():
    from defcheck import Checker, hookimpl

    class NotebookPlugin:
        @hookimpl
        def defcheck_checkers(self):
            return [Checker("notebook_checker", "mechanism", print)]

    extensions = load_plugins(entry_points=[], extra=[NotebookPlugin()])
    assert extensions.owner("checkers", "notebook_checker") == "NotebookPlugin-0"
    assert extensions.problems == []


def test_installed_builtin_plugins_are_builtin_and_load_cleanly():
    extensions = load_plugins()
    assert extensions.problems == []
    concepts = by_name(extensions, "concepts")
    assert concepts.builtin is True
    assert concepts.module == "defcheck_plugins.concepts"
    assert concepts.distribution == f"defcheck {__version__}"
    assert concepts.registers == {"concept_folders": ["defcheck_definitions"]}
    assert all(info.builtin for info in extensions.plugins if info.module.startswith("defcheck_plugins."))


def test_concept_folder_naming_a_missing_package_is_a_plugin_error(plugin_dir, cli):
    source = """
from defcheck import ConceptFolder, hookimpl

@hookimpl
def defcheck_concept_folders():
    return [ConceptFolder("acme_definitions_not_installed")]
"""
    write_module(plugin_dir, "acme_folder", source)
    info = by_name(load_plugins(modules=["acme_folder"]), "acme_folder")
    assert info.error == (
        "defcheck_concept_folders names the package 'acme_definitions_not_installed', which is not installed"
    )
    code, out, err = cli("--plugin", "acme_folder", "list", "--json")
    assert code == 0
    assert "plugin-error" in {d["code"] for d in json.loads(out)["diagnostics"]}
    assert "Traceback" not in err


def test_concept_folder_of_a_plugin_is_loaded(plugin_dir, cli):
    package = plugin_dir / "acme_definitions"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "acme.yaml").write_text(ACME_CONCEPT, encoding="utf-8")
    write_module(
        plugin_dir,
        "acme_with_folder",
        ACME + "\n\n@hookimpl\ndef defcheck_concept_folders():\n"
        '    from defcheck import ConceptFolder\n\n    return [ConceptFolder("acme_definitions")]\n',
    )
    code, out, _ = cli("--plugin", "acme_with_folder", "list", "--json")
    assert code == 0
    (concept,) = [c for c in json.loads(out)["concepts"] if c["name"] == "acme_offset_head"]
    assert concept["file"].endswith("acme.yaml")
    assert concept["definitions"][0]["criteria"][0]["observes"] == "behavior"


# The worked example of docs/writing-plugins.md, run as written

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
EXAMPLE_FILES = {
    "pyproject.toml",
    "src/defcheck_acme/__init__.py",
    "src/defcheck_acme/plugin.py",
    "src/defcheck_acme/definitions/diffuse_head.yaml",
}


def write_doc_example(root: Path) -> None:
    """Write the files of the guide's third-party plugin (each a bold `path` line and a code block) under root."""
    files = dict(re.findall(r"^\*\*`([^`]+)`\*\*\n\n```\w*\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S))
    assert set(files) == EXAMPLE_FILES
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_the_guides_worked_example_loads_validates_and_runs(plugin_dir, monkeypatch, random_view):
    from defcheck.engine.runner import evaluate
    from defcheck.language.registry import load_registry

    write_doc_example(plugin_dir)
    monkeypatch.syspath_prepend(str(plugin_dir / "src"))
    extensions = load_plugins(modules=["defcheck_acme.plugin"])
    assert extensions.problems == []
    info = by_name(extensions, "defcheck_acme.plugin")
    folder = plugin_dir / "src" / "defcheck_acme" / "definitions"
    assert info.registers == {
        "checkers": ["acme_attention_entropy", "acme_ov_norm"],
        "probes": ["acme_alternating_tokens"],
        "concept_folders": [str(folder)],
    }

    registry = load_registry([folder], extensions, include_builtin=False)
    assert registry.diagnostics == []
    assert registry.order == ["diffuse_head.spreads_attention", "diffuse_head.small_ov"]

    result = evaluate(random_view, registry, extensions)
    shape = (random_view.n_layers, random_view.n_heads)
    for definition in result.definitions.values():
        assert definition.error is None
        assert definition.scores is not None
        assert tuple(definition.scores.values.shape) == shape
        assert bool(definition.scores.values.isfinite().all())
    entropy = result.definitions["diffuse_head.spreads_attention"].scores.values
    assert bool(((entropy > 0) & (entropy <= 1 + 1e-5)).all())
    relative = result.definitions["diffuse_head.small_ov"].scores.values
    assert float(relative.mean()) == pytest.approx(1.0, abs=1e-5)


def test_the_guides_ov_norm_agrees_with_the_full_ov_matrix(plugin_dir, monkeypatch, random_view):
    write_doc_example(plugin_dir)
    monkeypatch.syspath_prepend(str(plugin_dir / "src"))
    from defcheck_acme.plugin import OVParams, ov_norm  # type: ignore[import-not-found]

    from defcheck.engine.context import CheckContext

    norms = ov_norm(CheckContext(random_view, OVParams(relative=False)))
    full = random_view.weight("W_V") @ random_view.weight("W_O")  # [layers, heads, d_model, d_model]
    assert torch.allclose(norms, torch.linalg.matrix_norm(full), rtol=1e-4)
