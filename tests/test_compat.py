"""The import paths of 0.1 keep working for one release: each old module path is the module at its new path, with a
DeprecationWarning naming it; the names ``defcheck`` exported stay; a plugin written against the old paths loads
and scores."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import warnings

import pytest

from defcheck import _compat

OLD_PLUGIN = '''
"""A third party's plugin as written for defcheck 0.1: every import from a path that has since moved."""
import torch

from defcheck import Checker, hookimpl
from defcheck.context import CheckContext
from defcheck.extensions import Checker as ExtensionsChecker
from defcheck.scores import Scores


def every_head_scores_its_layer(context: CheckContext) -> Scores:
    layers = torch.arange(context.model.n_layers, dtype=torch.float32)
    return Scores(layers[:, None].expand(context.shape).clone())


assert ExtensionsChecker is Checker


@hookimpl
def defcheck_checkers():
    return [Checker("old_layer_index", "mechanism", every_head_scores_its_layer, summary="the layer index")]
'''

OLD_CONCEPT = """\
concept: late_head
unit: attention_head
summary: Heads of the later layers (a test of a plugin written against the old import paths).
definitions:
  by_layer:
    kind: mechanistic
    source: the tests
    all:
      - checker: old_layer_index
        threshold: ">= 1"
"""


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_old_path_is_the_new_module_and_warns_naming_it(old):
    new = _compat.MOVED[old]
    # a fresh interpreter, so that the warning is not swallowed by an import already done
    code = textwrap.dedent(
        f"""
        import importlib, sys, warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            old = importlib.import_module({old!r})
        new = importlib.import_module({new!r})
        assert old is new, (old, new)
        assert sys.modules[{old!r}] is new
        assert new.__spec__.name == {new!r} and new.__name__ == {new!r}, new.__spec__  # its own spec, kept
        messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
        assert any({new!r} in message and {old!r} in message for message in messages), messages
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_old_paths_in_this_process_too():
    """``from defcheck.scores import Scores`` (the form plugins use) gives the new module's objects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from defcheck.context import CheckContext as OldContext
        from defcheck.scores import Scores as OldScores
    from defcheck.plugin import CheckContext, Scores

    assert OldScores is Scores and OldContext is CheckContext


def test_moved_targets_exist_and_no_old_path_is_a_real_module():
    for old, new in _compat.MOVED.items():
        assert importlib.util.find_spec(new) is not None, new
        parent, _, leaf = old.rpartition(".")
        package = importlib.import_module(parent)
        path = getattr(package, "__path__", None)
        assert path is not None, f"{parent} is not a package"
        assert importlib.machinery.PathFinder.find_spec(old, path) is None, f"{old} is a real module again ({leaf})"


def test_the_shipped_weights_are_found_at_their_old_package_path():
    from importlib import resources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = sorted(entry.name for entry in resources.files("defcheck.models.weights").iterdir())
    new = sorted(entry.name for entry in resources.files("defcheck_plugins.weights").iterdir())
    assert old == new and "toy-induction.pt" in new


def test_the_names_defcheck_exported_still_work():
    import defcheck
    from defcheck import (  # the 0.1 root exports
        Checker,
        Concept,
        ConceptFolder,
        Criterion,
        DefcheckError,
        Definition,
        Diagnostic,
        ModelLoader,
        Probe,
        ReportFormat,
        Streamed,
        UnitKind,
        __version__,
        hookimpl,
        plugin,
    )

    for name in ("Checker", "ConceptFolder", "ModelLoader", "Probe", "ReportFormat", "Streamed", "UnitKind"):
        assert getattr(defcheck, name) is getattr(plugin, name)
    assert hookimpl is plugin.hookimpl and DefcheckError is plugin.DefcheckError
    assert Concept is defcheck.Concept and Criterion is defcheck.Criterion and Definition is defcheck.Definition
    assert Diagnostic is defcheck.Diagnostic and __version__ == defcheck.__version__
    assert {Checker, ConceptFolder, ModelLoader, Probe, ReportFormat, Streamed, UnitKind} <= {
        getattr(plugin, name) for name in plugin.__all__ if name != "Report"
    }
    assert callable(defcheck.check)


def test_sweep_names_keep_their_package_path():
    """``from defcheck.sweep import X`` for the names 0.1's ``defcheck.sweep`` module had."""
    import defcheck.sweep as sweep

    exported = [name for name in getattr(sweep, "__all__", []) if not name.startswith("_")]
    assert exported, "defcheck.sweep exports nothing"
    for name in exported:
        assert getattr(sweep, name) is not None, name


def test_a_plugin_written_against_the_old_paths_loads_and_scores(tmp_path, monkeypatch):
    (tmp_path / "old_style_plugin.py").write_text(OLD_PLUGIN, encoding="utf-8")
    (tmp_path / "late_head.yaml").write_text(OLD_CONCEPT, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for old in ("defcheck.context", "defcheck.scores", "defcheck.extensions"):  # imported again: warned again
        monkeypatch.delitem(sys.modules, old, raising=False)
    import defcheck
    from defcheck.models.loading import load_model

    view = load_model("builtin:toy-induction")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = defcheck.check(
            view, paths=[tmp_path / "late_head.yaml"], include_builtin=False, plugins=["old_style_plugin"]
        )
    sys.modules.pop("old_style_plugin", None)
    moved = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("defcheck.engine.scores" in message for message in moved), moved
    definition = report.data["concepts"]["late_head"]["definitions"]["by_layer"]
    later = [f"{layer}.{head}" for layer in range(1, view.n_layers) for head in range(view.n_heads)]
    assert sorted(definition["members"]) == sorted(later)
