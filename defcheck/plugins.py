"""The plugin manager: finds plugins through the ``defcheck`` entry-point group and collects what they register.

A plugin that fails to import or to register is recorded with its name and error, and the others still
load; ``strict=True`` turns such a failure into an error. Two plugins registering the same name is always
an error naming both, since the core could not tell which one a definition means.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from defcheck import hookspecs
from defcheck.diagnostics import DefcheckError, Diagnostic
from defcheck.extensions import EXTENSION_KINDS, Checker, ConceptFolder, ModelLoader, PluginInfo, Probe, ReportFormat

ENTRY_POINT_GROUP = "defcheck"
PLUGINS_ENV = "DEFCHECK_PLUGINS"
BUILTIN_DISTRIBUTION = "defcheck"


class PluginConflictError(DefcheckError):
    """Two plugins registered the same name."""


class PluginLoadError(DefcheckError):
    """A plugin failed to load and ``--strict-plugins`` was given."""


@dataclass
class Extensions:
    """Everything the loaded plugins registered, by name, and the plugins themselves."""

    checkers: dict[str, Checker] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    model_loaders: dict[str, ModelLoader] = field(default_factory=dict)
    report_formats: dict[str, ReportFormat] = field(default_factory=dict)
    concept_folders: list[ConceptFolder] = field(default_factory=list)
    plugins: list[PluginInfo] = field(default_factory=list)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def problems(self) -> list[Diagnostic]:
        """One diagnostic per plugin that failed to load or register."""
        return [
            Diagnostic(f"plugin '{info.name}'", None, None, "", info.error, "error", "plugin-error")
            for info in self.plugins
            if info.error
        ]

    def owner(self, kind: str, name: str) -> str:
        """The plugin that registered ``name`` as a ``kind`` (``checkers``, ``probes``, ...)."""
        return self.owners.get((kind, name), "?")


def load_plugins(
    *,
    strict: bool = False,
    extra: Iterable[Any] = (),
    modules: Iterable[str] = (),
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> Extensions:
    """Load every plugin of the ``defcheck`` entry-point group, plus extra ones.

    ``modules`` are import names of plugin modules (also read, comma-separated, from ``$DEFCHECK_PLUGINS``),
    handy while writing a plugin; ``extra`` are plugin objects already in memory (e.g. a notebook's).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    points = entry_points if entry_points is not None else importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for point in sorted(points, key=lambda p: p.name):
        dist = getattr(point, "dist", None)
        dist_label = f"{dist.metadata['Name']} {dist.version}" if dist is not None else None
        builtin = dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION
        info = PluginInfo(point.name, point.value, dist_label, builtin)
        infos[point.name] = info
        try:
            manager.register(point.load(), name=point.name)
        except Exception as error:  # a broken third-party plugin must not stop the others
            info.error = f"failed to load {point.value}: {type(error).__name__}: {error}"
    names = [*modules, *filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",")))]
    for module_name in names:
        info = PluginInfo(module_name, module_name, None, False)
        infos[module_name] = info
        try:
            manager.register(importlib.import_module(module_name), name=module_name)
        except Exception as error:
            info.error = f"failed to load {module_name}: {type(error).__name__}: {error}"
    for index, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
        info = PluginInfo(name, getattr(plugin, "__module__", None) or name, None, False)
        infos[name] = info
        try:
            manager.register(plugin, name=name)
        except Exception as error:
            info.error = f"failed to register: {type(error).__name__}: {error}"
    extensions = Extensions(plugins=list(infos.values()))
    for kind, declared in EXTENSION_KINDS.items():
        hook = getattr(manager.hook, f"defcheck_{kind}")
        for impl in reversed(hook.get_hookimpls()):  # pluggy lists last-registered first
            _collect(extensions, infos[impl.plugin_name], kind, declared, impl.function)
    if strict and extensions.problems:
        raise PluginLoadError("\n".join(str(problem) for problem in extensions.problems))
    return extensions


def _collect(extensions: Extensions, info: PluginInfo, kind: str, declared: type, function: Any) -> None:
    if info.error:
        return
    try:
        items = list(function() or [])
        wrong = [item for item in items if not isinstance(item, declared)]
        if wrong:
            raise TypeError(f"defcheck_{kind} returned {type(wrong[0]).__name__}, expected {declared.__name__}")
    except Exception as error:
        info.error = f"defcheck_{kind} raised {type(error).__name__}: {error}"
        return
    for item in items:
        if kind == "concept_folders":
            extensions.concept_folders.append(item)
            info.registers.setdefault(kind, []).append(str(item.path))
            continue
        table: dict[str, Any] = getattr(extensions, kind)
        if item.name in table:
            first = extensions.owner(kind, item.name)
            raise PluginConflictError(
                f"the {kind[:-1].replace('_', ' ')} '{item.name}' is registered by two plugins, "
                f"'{first}' and '{info.name}'; uninstall or rename one of them"
            )
        table[item.name] = item
        extensions.owners[(kind, item.name)] = info.name
        info.registers.setdefault(kind, []).append(item.name)
