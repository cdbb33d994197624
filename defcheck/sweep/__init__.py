"""Sweeps over training checkpoints: series, tasks, the store of reports, the summary, executors and plots.

``defcheck sweep`` answers the question of Olsson et al.'s central figure for any concept: do the units a
behavioral definition admits and those a mechanistic one admits appear at the same point of training?
:mod:`~defcheck.sweep.series` finds the checkpoints, :mod:`~defcheck.sweep.driver` runs one
:mod:`~defcheck.sweep.tasks` task per checkpoint on an :mod:`~defcheck.sweep.executors` executor and keeps the
reports in the :mod:`~defcheck.sweep.store`, :mod:`~defcheck.sweep.summary` reads them back into the summary, and
:mod:`~defcheck.sweep.plots` and :mod:`~defcheck.sweep.page` draw it.
"""

from __future__ import annotations

import importlib
from typing import Any

# 0.1's `defcheck.sweep` was one module (then `defcheck.sweep.core`); its public names stay importable from here
_HOMES = {
    "series": (
        "CHECKPOINT_SUFFIXES",
        "CONFIG_NAMES",
        "METADATA_NAME",
        "GLOB_CHARACTERS",
        "Checkpoint",
        "Series",
        "find_checkpoints",
        "read_metadata",
        "step_from_name",
    ),
    "tasks": ("SweepOptions", "Task", "TaskResult", "load_checkpoint", "prime_worker", "run_checkpoint"),
    "store": (
        "atomic_write",
        "definitions_fingerprint",
        "read_valid_report",
        "report_name",
        "selected_concepts",
        "task_key",
    ),
    "summary": ("SUMMARY_VERSION", "build_summary", "concept_answer", "steepest_fall", "summary_json", "summary_text"),
    "driver": ("Progress", "SweepResult", "run_sweep", "write_outputs"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'defcheck.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"defcheck.sweep.{module}"), name)
