"""The plugin manager: finds plugins through the ``defcheck`` entry-point group and collects what they register.

A plugin that fails (its import or a hook raises, a hook returns the wrong type, a hook is misspelled or
lacks ``@hookimpl``) is recorded with its name and a one-line error, contributes nothing, and the others
still load; ``strict=True`` turns such a failure into an error. Two plugins registering the same name is
always an error naming both, since the core could not tell which one a definition means; ``disabled`` (the
command line's ``-p no:NAME``, as in pytest) leaves a plugin out, so such a clash can be resolved without
uninstalling. A plugin module asked for by name (``--plugin``, ``$DEFCHECK_PLUGINS``) that does not exist is
a :class:`PluginNotFoundError`, not a recorded failure: it is a typo, not a broken plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from defcheck.diagnostics import DefcheckError, Diagnostic, did_you_mean
from defcheck.hooks import specs as hookspecs
from defcheck.hooks.containment import PluginEscape, contain, plugin_code
from defcheck.hooks.declarations import (
    EXTENSION_KINDS,
    Checker,
    ConceptFolder,
    ModelLoader,
    PluginInfo,
    Probe,
    ReportFormat,
    UnitKind,
)

ENTRY_POINT_GROUP = "defcheck"
PLUGINS_ENV = "DEFCHECK_PLUGINS"
BUILTIN_DISTRIBUTION = "defcheck"
HOOK_NAMES = tuple(
    sorted(name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec"))
)


class PluginConflictError(DefcheckError):
    """Two plugins registered the same name."""


class PluginLoadError(DefcheckError):
    """A plugin failed to load and ``--strict-plugins`` was given."""


class PluginNotFoundError(DefcheckError):
    """A plugin module named by ``--plugin`` or ``$DEFCHECK_PLUGINS`` does not exist, or ``-p no:NAME`` names
    no plugin: a usage error."""


@dataclass
class Extensions:
    """Everything the loaded plugins registered, by name, and the plugins themselves."""

    checkers: dict[str, Checker] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    unit_kinds: dict[str, UnitKind] = field(default_factory=dict)
    model_loaders: dict[str, ModelLoader] = field(default_factory=dict)
    report_formats: dict[str, ReportFormat] = field(default_factory=dict)
    concept_folders: list[ConceptFolder] = field(default_factory=list)
    plugins: list[PluginInfo] = field(default_factory=list)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    """The plugins left out by ``disabled`` (their entry-point or module names), in load order."""

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
    disabled: Sequence[str] = (),
) -> Extensions:
    """Load every plugin of the ``defcheck`` entry-point group, plus extra ones, minus the disabled ones.

    ``modules`` are import names of plugin modules (also read, comma-separated, from ``$DEFCHECK_PLUGINS``),
    handy while writing a plugin; ``extra`` are plugin objects already in memory (e.g. a notebook's).
    ``disabled`` names plugins to leave out, by entry-point name or module (``$DEFCHECK_PLUGINS`` may hold
    ``no:NAME`` too); a name that matches no plugin, or a module that does not exist, raises
    :class:`PluginNotFoundError`.

    Plugins' code (imports, hooks) runs in :func:`~defcheck.hooks.containment.plugin_code`: what it prints goes
    to stderr, and a ``sys.exit()`` or other ``BaseException`` is that plugin's failure, not the end of the run.
    """
    with plugin_code():
        return _load(strict, extra, modules, entry_points, disabled)


def _load(
    strict: bool,
    extra: Iterable[Any],
    modules: Iterable[str],
    entry_points: Iterable[importlib.metadata.EntryPoint] | None,
    disabled: Sequence[str],
) -> Extensions:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    from_env = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    blocked = dict.fromkeys([*disabled, *(n[3:].strip() for n in from_env if n.startswith("no:"))])
    names = [*modules, *(n for n in from_env if not n.startswith("no:"))]
    points = entry_points if entry_points is not None else importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    points = sorted(points, key=lambda p: p.name)
    candidates = [*(p.name for p in points), *(p.module for p in points), *names]
    unknown = [name for name in blocked if name not in candidates]
    if unknown:
        hint = did_you_mean(unknown[0], candidates) or f" (plugins: {', '.join(p.name for p in points)})"
        raise PluginNotFoundError(f"-p no:{unknown[0]} names no installed plugin{hint}")
    left_out: list[str] = []
    for point in points:
        if point.name in blocked or point.module in blocked:
            left_out.append(point.name)
            continue
        dist = getattr(point, "dist", None)
        dist_label = f"{dist.metadata['Name']} {dist.version}" if dist is not None else None
        builtin = dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION
        info = PluginInfo(point.name, point.value, dist_label, builtin)
        infos[point.name] = info
        try:
            _register(manager, point.load(), point.name)
        except BaseException as raised:  # a broken third-party plugin must not stop the others (nor the run)
            info.error = f"failed to load {point.value}: {_describe(contain(raised))}"
    for module_name in dict.fromkeys(names):  # --plugin and $DEFCHECK_PLUGINS may name the same module
        if module_name in blocked:
            left_out.append(module_name)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and (module_name == error.name or module_name.startswith(f"{error.name}.")):
                raise PluginNotFoundError(_not_found(module_name, candidates)) from None
            infos[module_name] = PluginInfo(module_name, module_name, None, False)
            infos[module_name].error = f"failed to load {module_name}: {_describe(error)}"
            continue
        except BaseException as raised:  # sys.exit() at import included
            infos[module_name] = PluginInfo(module_name, module_name, None, False)
            infos[module_name].error = f"failed to load {module_name}: {_describe(contain(raised))}"
            continue
        if manager.is_registered(module):
            continue  # already installed through an entry point (e.g. `pip install -e` while developing it)
        info = infos[module_name] = PluginInfo(module_name, module_name, None, False)
        try:
            _register(manager, module, module_name)
        except BaseException as raised:
            info.error = f"failed to load {module_name}: {_describe(contain(raised))}"
    for index, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
        info = PluginInfo(name, getattr(plugin, "__module__", None) or name, None, False)
        infos[name] = info
        try:
            _register(manager, plugin, name)
        except BaseException as raised:
            info.error = f"failed to register: {_describe(contain(raised))}"
    extensions = Extensions(plugins=list(infos.values()), disabled=left_out)
    declared_by: dict[str, list[tuple[str, list[Any]]]] = {}
    for kind, declared in EXTENSION_KINDS.items():
        hook = getattr(manager.hook, f"defcheck_{kind}")
        for impl in hook.get_hookimpls():
            items = _call(infos[impl.plugin_name], kind, declared, impl.function)
            if items is not None:
                declared_by.setdefault(impl.plugin_name, []).append((kind, items))
    for info in extensions.plugins:  # in load order; a plugin with any failing hook adds nothing
        if not info.error:
            for kind, items in declared_by.get(info.name, []):
                _add(extensions, info, kind, items)
    if strict and extensions.problems:
        raise PluginLoadError("\n".join(str(problem) for problem in extensions.problems))
    return extensions


def require_plugin_modules(names: Iterable[str]) -> None:
    """Raise :class:`PluginNotFoundError` for the first of ``names`` (plugin modules) that does not exist.

    Found without importing the modules where possible, so a command that loads no plugin still refuses a
    typo in ``--plugin`` or ``$DEFCHECK_PLUGINS`` at once, as pytest does.
    """
    for name in names:
        if name.startswith("no:"):
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False  # a parent package is missing
        except BaseException as raised:
            contain(raised)  # a user's Ctrl-C stops; anything else is a broken plugin, reported when it loads
            found = True
        if not found:
            points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            raise PluginNotFoundError(_not_found(name, [*(p.name for p in points), *(p.module for p in points)]))


def _not_found(name: str, candidates: Iterable[str]) -> str:
    """pytest's message for a ``-p`` module that does not exist, with a did-you-mean among the plugins."""
    return f"cannot load the plugin module '{name}': No module named '{name}'{did_you_mean(name, candidates)}"


def _describe(error: BaseException) -> str:
    """``Type: message`` on one line, so a plugin's failure prints as one diagnostic line."""
    if isinstance(error, PluginEscape):
        return str(error)  # "called sys.exit(0) (at acme.py:3)"
    message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _register(manager: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin``, refusing hooks that would otherwise be silently ignored (unmarked or misspelled)."""
    for hook in HOOK_NAMES:
        if callable(getattr(plugin, hook, None)) and manager.parse_hookimpl_opts(plugin, hook) is None:
            raise pluggy.PluginValidationError(
                plugin, f"{hook} is not marked with @defcheck.hookimpl, so it would never be called"
            )
    manager.register(plugin, name=name)
    unknown = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [] if not caller.has_spec())
    if unknown:
        manager.unregister(plugin)
        hint = f"{did_you_mean(unknown[0], HOOK_NAMES)} (hooks: {', '.join(HOOK_NAMES)})"
        raise pluggy.PluginValidationError(plugin, f"unknown hook '{unknown[0]}'{hint}")


def _call(info: PluginInfo, kind: str, declared: type, function: Any) -> list[Any] | None:
    """Call one hook implementation; on failure record why on ``info`` and return None."""
    if info.error:
        return None
    try:
        result = function()
    except BaseException as raised:
        error = contain(raised)
        what = str(error) if isinstance(error, PluginEscape) else f"raised {_describe(error)}"
        info.error = f"defcheck_{kind} {what}"
        return None
    expected = f"a list of {declared.__name__}"
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        info.error = f"defcheck_{kind} returned {type(result).__name__}, expected {expected}"
        return None
    wrong = [item for item in result if not isinstance(item, declared)]
    if wrong:
        info.error = f"defcheck_{kind} returned a list holding {type(wrong[0]).__name__}, expected {expected}"
        return None
    for item in result:
        if isinstance(item, ConceptFolder) and isinstance(item.path, str) and not _is_package(item.path):
            info.error = f"defcheck_{kind} names the package '{item.path}', which is not installed"
            return None
    return list(result)


def _is_package(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _add(extensions: Extensions, info: PluginInfo, kind: str, items: list[Any]) -> None:
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
                f"'{first}' and '{info.name}'; leave one out with -p no:{info.name}, or uninstall or rename one of them"
            )
        table[item.name] = item
        extensions.owners[(kind, item.name)] = info.name
        info.registers.setdefault(kind, []).append(item.name)
