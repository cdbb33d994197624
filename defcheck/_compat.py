"""Import paths of 0.1 that moved in the package layout of 0.2, kept working for one release.

``import defcheck.runner`` (and every other old path in :data:`MOVED`) gives the module at its new path, the same
object, with a ``DeprecationWarning`` that names the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED: dict[str, str] = {
    "defcheck.yamlsource": "defcheck.language.yaml_source",
    "defcheck.schema": "defcheck.language.schema",
    "defcheck.thresholds": "defcheck.language.thresholds",
    "defcheck.loader": "defcheck.language.concept_file",
    "defcheck.registry": "defcheck.language.registry",
    "defcheck.lint": "defcheck.language.lint",
    "defcheck.starter": "defcheck.language.starter",
    "defcheck.hookspecs": "defcheck.hooks.specs",
    "defcheck.extensions": "defcheck.hooks.declarations",
    "defcheck.plugins": "defcheck.hooks.manager",
    "defcheck.checkerdoc": "defcheck.hooks.reference",
    "defcheck.runner": "defcheck.engine.runner",
    "defcheck.context": "defcheck.engine.context",
    "defcheck.scores": "defcheck.engine.scores",
    "defcheck.units": "defcheck.engine.units",
    "defcheck.overlap": "defcheck.engine.overlap",
    "defcheck.probes": "defcheck.engine.probe_data",
    "defcheck.progress": "defcheck.cli.progress",
    "defcheck.project": "defcheck.ci.project",
    "defcheck.expectations": "defcheck.ci.expectations",
    "defcheck.baseline": "defcheck.ci.baseline",
    "defcheck.sweep_cli": "defcheck.cli.commands.sweep",
    "defcheck.executors": "defcheck.sweep.executors",
    "defcheck.plots": "defcheck.sweep.plots",
    "defcheck.report.sweep_html": "defcheck.sweep.page",
    "defcheck.models.constructed": "defcheck_plugins.constructed",
    "defcheck.models.weights": "defcheck_plugins.weights",
}


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new path (the same object), warning once per process."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; the old import path goes away in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module at the new path is executed already and the import system binds the old name to it, but it
        # also gave it the old path's spec: give it back its own (importlib.resources, reload and pickle read it).
        module.__spec__ = self.spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old import paths of :data:`MOVED` and loads the modules at their new paths."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
