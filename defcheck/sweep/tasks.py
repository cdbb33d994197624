"""The sweep's tasks: one per checkpoint, run by an executor (:mod:`defcheck.sweep.executors`) in whatever process it
chose. :func:`run_checkpoint` builds its state from the sweep's :class:`~defcheck.session.RunConfig` through a
:class:`~defcheck.session.Session` (the same code path as ``defcheck run`` and :func:`defcheck.check`), loads the
checkpoint, and returns the report's JSON, or the error as data, so that every executor reports alike.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from defcheck.report.json import canonical
from defcheck.session import RunConfig, Session
from defcheck.sweep.executors import error_line
from defcheck.sweep.series import Checkpoint


@dataclass(frozen=True, init=False)
class SweepOptions:
    """How every checkpoint is evaluated: the same for all tasks of a sweep.

    ``config`` is the run's (seed, selection, definitions, plugins, device, token overrides, ...); ``cwd`` is the
    driver's working directory, where a worker runs its task, so that reports name concept files and checkpoints
    as they would from the driver. ``threads`` is torch's thread count per task (fixed, so that every executor
    computes with the same kernels). defcheck 0.1's keywords (``seed=``, ``selection=``, ...: fields of the
    config now) still work for one release, with a :class:`DeprecationWarning`.
    """

    config: RunConfig
    threads: int
    cwd: str

    def __init__(
        self, config: RunConfig | None = None, threads: int = 1, cwd: str | None = None, **old_fields: Any
    ) -> None:
        config = config or RunConfig()
        if old_fields:
            names = ", ".join(f"{name}=" for name in old_fields)
            warnings.warn(
                f"SweepOptions({names}) is deprecated: give SweepOptions(RunConfig({names}))",
                DeprecationWarning,
                stacklevel=2,
            )
            fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in old_fields.items()}
            config = replace(config, **fields)
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "threads", threads)
        object.__setattr__(self, "cwd", cwd if cwd is not None else os.getcwd())


@dataclass(frozen=True)
class Task:
    """One checkpoint to evaluate, with the options and the key its report is stored under."""

    checkpoint: Checkpoint
    options: SweepOptions
    key: str


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: the report's JSON text, or the error (one sentence), and the seconds taken."""

    step: int
    report: str | None
    error: str | None
    seconds: float


_SESSIONS: dict[tuple[RunConfig, str], Session] = {}


def prime_worker(options: SweepOptions, session: Session) -> None:
    """Hand this process's session (its loaded plugins and definitions) to in-process tasks."""
    _SESSIONS[(options.config, options.cwd)] = session


def worker_session(options: SweepOptions) -> Session:
    """This process's session for ``options``: made once per process from the config, then reused."""
    key = (options.config, options.cwd)
    if key not in _SESSIONS:
        session = Session(options.config)
        session.selection()  # loads and checks the definitions: their errors raise here, once
        _SESSIONS[key] = session
    return _SESSIONS[key]


@contextlib.contextmanager
def _in_directory(path: str) -> Iterator[None]:
    previous = os.getcwd()
    moved = False
    if path != previous and os.path.isdir(path):
        os.chdir(path)
        moved = True
    try:
        yield
    finally:
        if moved:
            os.chdir(previous)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_checkpoint(checkpoint: Checkpoint, session: Session) -> Any:
    """The model of one checkpoint, loaded with the session's device and token overrides."""
    return session.load_model(checkpoint.reference, checkpoint_index=checkpoint.checkpoint_index)


def run_checkpoint(task: Task) -> TaskResult:
    """Evaluate one checkpoint (in whatever process the executor chose) and return its report as JSON.

    Errors come back as data (``TaskResult.error``), so that every executor reports them alike.
    """
    started = time.perf_counter()
    checkpoint, options = task.checkpoint, task.options
    try:
        with _in_directory(options.cwd), _torch_threads(options.threads):
            session = worker_session(options)
            view = load_checkpoint(checkpoint, session)
            _, report = session.run(view, model_info={"reference": checkpoint.reference}, checks=False)
            report.data["sweep"] = canonical(
                {
                    "key": task.key,
                    "step": checkpoint.step,
                    "checkpoint_index": checkpoint.checkpoint_index,
                    "metrics": dict(checkpoint.metrics),
                }
            )
            text = report.to_json()
    except Exception as error:
        return TaskResult(checkpoint.step, None, error_line(error), time.perf_counter() - started)
    return TaskResult(checkpoint.step, text, None, time.perf_counter() - started)
