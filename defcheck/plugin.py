"""The plugin contract: everything a defcheck plugin imports, from one module.

A plugin (built-in or third-party) writes ``from defcheck.plugin import Checker, CheckContext, Scores, hookimpl``
and nothing else of defcheck; the layout behind these names may change, this module's ``__all__`` does not
without a deprecation. Importing it imports neither torch nor TransformerLens, so that the commands that only
read plugins' declarations (``defcheck list``, ``checkers``, ``plugins``, ...) start fast: a plugin should import
torch inside the functions that compute, too (see docs/writing-plugins.md).

The callables a declaration holds are typed :class:`~typing.Protocol` s (``ScoreFunction``, ``BuildFunction``,
``LoadFunction``, ``RenderFunction``, ...), so mypy checks a plugin's functions against what the runner calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from defcheck.diagnostics import DefcheckError, did_you_mean, display_path
from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeBatch, ProbeRequest, probe_generator, probe_key
from defcheck.engine.scores import NotApplicable, Scores, safe_ratio
from defcheck.engine.units import Units
from defcheck.files import check_regular_file, read_regular_file
from defcheck.hooks.declarations import (
    FIT_POLICIES,
    ActivationsFunction,
    BuildFunction,
    ChanceFunction,
    Checker,
    CheckpointsFunction,
    ConceptFolder,
    FinishFunction,
    FitPolicy,
    LoadFunction,
    MatchesFunction,
    ModelLoader,
    Need,
    NoParams,
    Observes,
    Probe,
    RenderFunction,
    ReportFormat,
    ScoreFunction,
    StepFunction,
    Streamed,
    UnitKind,
    WantsPrepareFunction,
)
from defcheck.hooks.specs import hookimpl
from defcheck.models.view import ModelView, TokenSpace, build_bridge

if TYPE_CHECKING:
    from defcheck.report import Report

__all__ = [
    "FIT_POLICIES",
    "ActivationsFunction",
    "BuildFunction",
    "ChanceFunction",
    "CheckContext",
    "Checker",
    "CheckpointsFunction",
    "ConceptFolder",
    "DefcheckError",
    "FinishFunction",
    "FitPolicy",
    "LoadFunction",
    "MatchesFunction",
    "ModelLoader",
    "ModelView",
    "Need",
    "NoParams",
    "NotApplicable",
    "Observes",
    "Probe",
    "ProbeBatch",
    "ProbeRequest",
    "RenderFunction",
    "Report",
    "ReportFormat",
    "ScoreFunction",
    "Scores",
    "StepFunction",
    "Streamed",
    "TokenSpace",
    "UnitKind",
    "Units",
    "WantsPrepareFunction",
    "build_bridge",
    "check_regular_file",
    "did_you_mean",
    "display_path",
    "hookimpl",
    "probe_generator",
    "probe_key",
    "read_regular_file",
    "safe_ratio",
]


def __getattr__(name: str) -> Any:
    """``Report`` (what ``ReportFormat.render`` receives) on first use: the report package imports the engine and
    torch, which listing a plugin's declarations never needs."""
    if name == "Report":
        from defcheck.report import Report

        return Report
    raise AttributeError(f"module 'defcheck.plugin' has no attribute {name!r}")
