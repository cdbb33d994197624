"""The steps of ``defcheck sweep`` after parsing: the executor, the progress bar, each failed checkpoint as it is
settled, and the answer at the end."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from defcheck.cli.output import stderr_console
from defcheck.cli.progress import progress_bar, wants_progress
from defcheck.cli.settings import Settings
from defcheck.session import Session
from defcheck.sweep.driver import SweepResult
from defcheck.sweep.series import Series


def on_result(checkpoint: Any, status: str, detail: str | None) -> None:
    """A checkpoint is settled: a failed one is one line on stderr, at once; so is a damaged report on disk
    (``status`` ``"damaged"``), which is run again."""
    if status == "failed":
        message = f"error: step {checkpoint.step} ({checkpoint.reference}): {detail}"
        stderr_console().print(message, style="red", markup=False)
    elif status == "damaged":
        message = f"note: step {checkpoint.step}: the report on disk is damaged ({detail}); running it again"
        stderr_console().print(message, style="yellow", markup=False)


def sweep_with_progress(
    settings: Settings, session: Session, series: Series, out_dir: Path, params: dict[str, Any]
) -> SweepResult:
    """Run the sweep on the executor the options ask for, with a progress bar; Ctrl-C says how to resume."""
    from defcheck.sweep import SweepOptions, run_sweep
    from defcheck.sweep.executors import make_executor

    threads = params["threads"]
    options = SweepOptions(session.config, threads=threads, cwd=os.getcwd())
    runner = make_executor(
        params["executor"],
        workers=params["workers"],
        address=params["address"],
        gpus_per_task=params["gpus_per_task"],
        cpus_per_task=threads,
    )
    if params["executor"] == "local":
        require_tokens(session, series)
    errors = stderr_console()
    if not settings.quiet:
        what = f"{len(series.checkpoints)} checkpoints of {series.source} on {runner.describe()} into {out_dir}"
        errors.print(f"sweeping {what}", markup=False)
    try:
        with runner, progress_bar(wants_progress(settings.quiet), label="sweeping") as progress:
            return run_sweep(
                series,
                options,
                out_dir,
                executor=runner,
                resume=not params["restart"],
                plots=not params["no_plots"],
                progress=progress,
                on_result=on_result,
                session=session,
            )
    except KeyboardInterrupt:
        errors.print(
            f"interrupted: the reports written so far are in {out_dir / 'reports'}; run the same command again to "
            "resume",
            style="yellow",
        )
        sys.exit(130)


def require_tokens(session: Session, series: Series) -> None:
    """Stop before any checkpoint runs, in one error, when the first checkpoint has no token metadata and a
    selected definition runs a probe (a run's checkpoints are saved alike). The local executor loads it here
    anyway; one that fails to load is left to the sweep, which reports it as that checkpoint's failure."""
    config = session.config
    if not series.checkpoints or config.bos_token_id is not None or config.token_ids is not None:
        return
    if not session.needs_tokens():
        return
    first = series.checkpoints[0]
    try:
        model = session.load_model(first.reference, checkpoint_index=first.checkpoint_index)
    except Exception:  # the sweep reports a checkpoint that does not load, with its step
        return
    session.require_tokens(model)


def print_outcome(console: Console, outcome: Any, no_plots: bool) -> None:
    """The first step at which each definition admits a unit, the summary's text, and what was done."""
    from defcheck.sweep.plots import matplotlib_missing
    from defcheck.sweep.summary import first_step_text

    summary = outcome.summary
    table = Table(title="first step at which each definition admits a unit", title_justify="left")
    for column in ("concept", "definition", "kind", f"first {summary['step_unit']}", "members then"):
        table.add_column(column, overflow="fold")
    for record in summary["definitions"].values():
        table.add_row(
            record["concept"],
            record["definition"],
            record["kind"],
            first_step_text(record),
            ", ".join(record["first_members"]) or "—",
        )
    console.print(table)
    console.print(summary["summary"], markup=False)
    missing = None if no_plots else matplotlib_missing()
    if missing:
        console.print(f"no plots: {missing}", style="yellow", markup=False)
    ran, skipped = len(outcome.ran), len(outcome.skipped)
    console.print(
        f"{ran} checkpoint(s) checked, {skipped} skipped (valid reports found), {len(outcome.failed)} failed, "
        f"in {outcome.seconds:.1f} s; wrote {outcome.out / 'summary.json'} and {outcome.out / 'summary.html'}",
        markup=False,
    )
