"""Running a sweep: one task per checkpoint not already reported, handed to an executor; each report written
atomically as it arrives; then the summary, the plots and the HTML page, built from the reports on disk."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from defcheck.diagnostics import DefcheckError
from defcheck.session import Session
from defcheck.sweep.executors import Executor, SequentialExecutor
from defcheck.sweep.series import Checkpoint, Series
from defcheck.sweep.store import (
    atomic_write,
    definitions_fingerprint,
    read_report,
    remove_stale_temporaries,
    report_name,
    task_key,
)
from defcheck.sweep.summary import build_summary, summary_json
from defcheck.sweep.tasks import SweepOptions, Task, prime_worker, run_checkpoint, worker_session

Progress = Callable[[str, int, int], None]


@dataclass
class SweepResult:
    """What a sweep did: the summary, which steps ran, were skipped (valid report found) or failed (with the
    error), where it wrote, and how long it took (seconds; not in the summary)."""

    summary: dict[str, Any]
    ran: list[int]
    skipped: list[int]
    failed: dict[int, str]
    out: Path
    files: list[Path]
    seconds: float


def run_sweep(
    series: Series,
    options: SweepOptions,
    out: Path,
    *,
    executor: Executor | None = None,
    resume: bool = True,
    plots: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[Checkpoint, str, str | None], None] | None = None,
    session: Session | None = None,
) -> SweepResult:
    """Evaluate every checkpoint of ``series`` not already reported in ``out/reports``, then write
    ``out/summary.json``, the plots (``out/plots/CONCEPT.png``, with matplotlib) and ``out/summary.html``.

    ``resume=False`` re-runs every checkpoint. ``on_result(checkpoint, status, error)`` is called for every
    checkpoint as it is settled, with ``status`` ``"ok"``, ``"skipped"`` (a valid report exists) or
    ``"failed"`` (then ``error`` says why); before that, with ``"damaged"`` for a report on disk that is not a
    valid report (``error`` says what is wrong with it), which is then run again. One failing checkpoint does
    not stop the others; its error is in ``SweepResult.failed`` and in the summary. ``session`` is the driver's
    (made from ``options.config`` if not given); in-process tasks reuse it.
    """
    started = time.perf_counter()
    if session is None:
        session = worker_session(options)
    session.selection()  # the definitions and the selection are checked before anything runs
    prime_worker(options, session)
    fingerprint = definitions_fingerprint(session)
    reports_dir = out / "reports"
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DefcheckError(f"cannot write to {out}: {error.strerror or error}") from None
    remove_stale_temporaries(reports_dir)
    keys = {c.step: task_key(c, options, fingerprint) for c in series.checkpoints}
    reports: dict[int, dict[str, Any]] = {}
    tasks: list[Task] = []
    skipped: list[int] = []
    for checkpoint in series.checkpoints:
        existing, damage = read_report(reports_dir / report_name(checkpoint.step), keys[checkpoint.step])
        if resume and damage is not None and on_result:
            on_result(checkpoint, "damaged", damage)
        if resume and existing is not None:
            reports[checkpoint.step] = existing
            skipped.append(checkpoint.step)
            if on_result:
                on_result(checkpoint, "skipped", None)
        else:
            tasks.append(Task(checkpoint, options, keys[checkpoint.step]))
    failed: dict[int, str] = {}
    ran: list[int] = []
    total = len(series.checkpoints)
    if progress:
        progress("", len(skipped), total)
    executor = executor or SequentialExecutor()
    for outcome in executor.run(run_checkpoint, tasks):
        task = tasks[outcome.index]
        step = task.checkpoint.step
        result = outcome.value
        problem = outcome.error if result is None else result.error
        if result is not None and result.report is not None:
            _write(reports_dir / report_name(step), result.report)
            reports[step] = json.loads(result.report)
            ran.append(step)
        else:
            failed[step] = problem or "the task returned nothing"
        if on_result:
            on_result(task.checkpoint, "failed" if step in failed else "ok", failed.get(step))
        if progress:
            progress(f"step {step}", len(skipped) + len(ran) + len(failed), total)
    summary = build_summary(series, reports, failed)
    try:
        files = write_outputs(summary, out, plots=plots)
    except OSError as error:
        raise DefcheckError(
            f"cannot write the summary to {out}: {error.strerror or error}; the reports are in {reports_dir}: "
            "free some space and run the same command again (it keeps them)"
        ) from None
    return SweepResult(summary, sorted(ran), skipped, failed, out, files, time.perf_counter() - started)


def _write(path: Path, text: str) -> None:
    """Write one checkpoint's report atomically; a full disk (or any write error) is the user's to fix: exit 2
    with what was kept, not a traceback."""
    try:
        atomic_write(path, text)
    except OSError as error:
        raise DefcheckError(
            f"cannot write {path}: {error.strerror or error}; the reports written so far are kept (the previous "
            f"{path.name}, if any, is untouched): free some space and run the same command again to resume"
        ) from None


def write_outputs(summary: Mapping[str, Any], out: Path, *, plots: bool = True) -> list[Path]:
    """``summary.json``, the plots (when matplotlib is installed and ``plots``) and ``summary.html``."""
    written = [out / "summary.json"]
    atomic_write(written[0], summary_json(summary))
    images: dict[str, Path] = {}
    if plots:
        from defcheck.sweep.plots import matplotlib_missing, plot_sweep

        if matplotlib_missing() is None:
            images = plot_sweep(summary, out / "plots")
            written += list(images.values())
    from defcheck.sweep.page import render_sweep_html

    page = out / "summary.html"
    atomic_write(page, render_sweep_html(summary, {name: path.read_bytes() for name, path in images.items()}))
    written.append(page)
    return written
