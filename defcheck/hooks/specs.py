"""The hooks a defcheck plugin implements.

A plugin is a module (or object) named in the ``defcheck`` entry-point group of its package::

    [project.entry-points.defcheck]
    my_checkers = "my_package.defcheck_plugin"

and implements any of the hooks below with ``@hookimpl``, imported like everything else a plugin needs from the
plugin contract, :mod:`defcheck.plugin`. Every hook returns a list of declarations (see
:mod:`defcheck.hooks.declarations`); the built-in plugins use exactly these hooks.
Names must be unique across plugins: two plugins registering the same name is an error naming both.
"""

from __future__ import annotations

import pluggy

from defcheck.hooks.declarations import Checker, ConceptFolder, ModelLoader, Probe, ReportFormat, UnitKind

PROJECT = "defcheck"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def defcheck_checkers() -> list[Checker]:
    """Return the checkers this plugin provides.

    A checker scores every unit of a model at once and declares what it observes (``behavior`` or
    ``mechanism``), the unit kind it scores, its parameter model, and whether it needs a probe and a
    ``with:`` relation.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def defcheck_probes() -> list[Probe]:
    """Return the probes (seeded input sets) this plugin provides."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def defcheck_unit_kinds() -> list[UnitKind]:
    """Return the unit kinds this plugin provides (``attention_head``, ``mlp_neuron``, ``layer``, ``model``, ...).

    A unit kind says how many units of its kind a model has (the shape of a checker's scores), how each is
    addressed, and how reports lay them out (a grid or a table). A concept's ``unit:`` names one, and a
    checker's ``unit`` says which kinds it scores.
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def defcheck_model_loaders() -> list[ModelLoader]:
    """Return the model loaders this plugin provides (``builtin:``, ``tl:``, checkpoint files, ...)."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def defcheck_report_formats() -> list[ReportFormat]:
    """Return the report formats this plugin provides (``json``, ``markdown``, ``html``, ...)."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations


@hookspec
def defcheck_concept_folders() -> list[ConceptFolder]:
    """Return folders of concept files this plugin ships; they load with the built-in definitions."""
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations
