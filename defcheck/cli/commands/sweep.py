"""``defcheck sweep``: the command line of :mod:`defcheck.sweep`. It parses options, builds the run's config and
the executor, shows progress, and prints the answer; the work is in :func:`defcheck.sweep.run_sweep`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from defcheck.cli.run_config import run_config, run_options
from defcheck.cli.settings import EXIT_ERROR, Settings
from defcheck.sweep.executors import EXECUTORS


@click.command("sweep")
@click.argument("more_checkpoints", nargs=-1, metavar="[CHECKPOINT]...")
@click.option(
    "--checkpoints",
    "-k",
    "sources",
    multiple=True,
    metavar="SOURCE",
    help="A folder of checkpoint files, a quoted glob ('runs/*.pt'), builtin:NAME@* (a series defcheck ships, "
    "e.g. builtin:toy-induction@*), or tl:NAME with --checkpoint-index (repeatable).",
)
@click.option(
    "--checkpoint-index",
    metavar="I,J,...",
    help="With --checkpoints tl:NAME: TransformerLens checkpoint indices to load (needs the network).",
)
@click.option("--steps", metavar="S,T,...", help="Only the checkpoints at these steps.")
@click.option(
    "--output-dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where the reports (DIR/reports/step-NNNNNN.json), summary.json, summary.html and plots go. [default: sweep]",
)
@click.option("--out", "-o", "old_out", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@run_options
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps"]),
    help="Where each task runs its model. [default: cuda with --gpus-per-task, else cpu]",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="local: this machine (one process, or a pool with --workers); ray: a Ray cluster (pip install "
    "'defcheck[ray]').",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Local processes (1: this one)."
)
@click.option("--address", help="The Ray cluster (ray.init's address: auto, ray://HOST:10001; default: a local Ray).")
@click.option(
    "--gpus-per-task",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs Ray reserves for each checkpoint (a fraction shares one).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch threads per task (and CPUs Ray reserves for it); the same number gives the same scores on "
    "every executor.",
)
@click.option("--restart", is_flag=True, help="Re-run every checkpoint, even those with a valid report.")
@click.option("--no-plots", is_flag=True, help="Write no PNG plots (the HTML page then has none either).")
@click.pass_obj
def sweep(settings: Settings, more_checkpoints: tuple[str, ...], sources: tuple[str, ...], **params: Any) -> None:
    """Check the definitions on every checkpoint of a training run, and show how membership evolves.

    Writes one JSON report per checkpoint and a summary: per definition and unit, score and membership
    against step; per concept, the overlap against step, and the first step at which the behavioral and the
    mechanistic definitions admit a unit. Run again, it skips the checkpoints whose reports are valid. Exit
    codes: 0 every checkpoint was checked; 2 a usage or input error, or a checkpoint that failed (the others
    are still checked and summarized).
    """
    from defcheck.cli.output import report_plugin_problems, stderr_console, stdout_console
    from defcheck.cli.sweep_output import print_outcome, sweep_with_progress
    from defcheck.session import Session
    from defcheck.sweep import find_checkpoints

    report_plugin_problems(settings)
    errors = stderr_console()
    out_dir = params.pop("out_dir") or params["old_out"] or Path("sweep")
    if params.pop("old_out") is not None:
        errors.print("note: --out/-o DIR is deprecated; use --output-dir DIR", style="yellow", markup=False)
    device = params.pop("device") or ("cuda" if params["gpus_per_task"] > 0 else "cpu")
    session = Session(run_config(settings, params, device=device), extensions=settings.extensions)
    series = find_checkpoints(
        [*sources, *more_checkpoints],
        checkpoint_index=params["checkpoint_index"],
        steps=params["steps"],
        extensions=session.extensions,
    )
    session.selection()  # the definitions and the selection are checked before anything runs
    outcome = sweep_with_progress(settings, session, series, out_dir, params)
    if not settings.quiet:
        print_outcome(stdout_console(), outcome, params["no_plots"])
    if outcome.failed:
        errors.print(
            f"error: {len(outcome.failed)} of {len(series.checkpoints)} checkpoints failed "
            f"({', '.join(map(str, sorted(outcome.failed)))}); the summary marks them",
            style="red",
            markup=False,
        )
        sys.exit(EXIT_ERROR)
