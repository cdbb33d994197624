"""``defcheck sweep``: the command line of :mod:`defcheck.sweep.core`. It parses options, builds the executor, shows
progress, and prints the answer; the work is in :func:`defcheck.sweep.core.run_sweep`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from defcheck.cli.options import concept_option, definitions_option, no_builtin_option
from defcheck.cli.settings import EXIT_ERROR, Settings
from defcheck.diagnostics import DefcheckError
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
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sweep"),
    show_default=True,
    help="Where the reports (OUT/reports/step-NNNNNN.json), summary.json, summary.html and plots go.",
)
@concept_option
@definitions_option
@no_builtin_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the probes.")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps"]),
    help="Where each task runs its model. [default: cuda with --gpus-per-task, else cpu]",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Sequences per forward pass (default: a whole probe).")
@click.option("--bos-token-id", type=int, help="Override the model's BOS token id.")
@click.option("--token-ids", metavar="START:STOP", help="Override the ids probes draw from (half-open range).")
@click.option("--model-config", type=click.Path(path_type=Path), help="The checkpoints' config (JSON or YAML).")
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
def sweep(
    settings: Settings,
    more_checkpoints: tuple[str, ...],
    sources: tuple[str, ...],
    checkpoint_index: str | None,
    steps: str | None,
    out_dir: Path,
    selected: tuple[str, ...],
    definition_paths: tuple[Path, ...],
    no_builtin: bool,
    seed: int,
    device: str | None,
    batch_size: int | None,
    bos_token_id: int | None,
    token_ids: str | None,
    model_config: Path | None,
    executor: str,
    workers: int,
    address: str | None,
    gpus_per_task: float,
    threads: int,
    restart: bool,
    no_plots: bool,
) -> None:
    """Check the definitions on every checkpoint of a training run, and show how membership evolves.

    Writes one JSON report per checkpoint and a summary: per definition and unit, score and membership
    against step; per concept, the overlap against step, and the first step at which the behavioral and the
    mechanistic definitions admit a unit. Run again, it skips the checkpoints whose reports are valid. Exit
    codes: 0 every checkpoint was checked; 2 a usage or input error, or a checkpoint that failed (the others
    are still checked and summarized).
    """
    from defcheck.cli.output import print_diagnostics, stderr_console, stdout_console
    from defcheck.cli.progress import progress_bar, wants_progress
    from defcheck.language.registry import load_registry
    from defcheck.sweep.core import SweepOptions, find_checkpoints, run_sweep, selected_concepts
    from defcheck.sweep.executors import make_executor

    series = find_checkpoints([*sources, *more_checkpoints], checkpoint_index=checkpoint_index, steps=steps)
    extensions = settings.extensions
    registry = load_registry(list(definition_paths), extensions, include_builtin=not no_builtin)
    if registry.errors:
        print_diagnostics(stderr_console(), registry.errors)
        raise DefcheckError(f"the definitions have {len(registry.errors)} error(s); nothing was run")
    selected_concepts(registry, selected)  # an unknown name is refused before anything runs
    options = SweepOptions(
        seed=seed,
        selection=tuple(selected),
        definition_paths=tuple(str(path.resolve()) for path in definition_paths),
        include_builtin=not no_builtin,
        plugin_modules=tuple(settings.plugin_modules),
        device=device or ("cuda" if gpus_per_task > 0 else "cpu"),
        batch_size=batch_size,
        bos_token_id=bos_token_id,
        token_ids=token_ids,
        model_config=str(model_config) if model_config else None,
        threads=threads,
        cwd=os.getcwd(),
    )
    runner = make_executor(
        executor, workers=workers, address=address, gpus_per_task=gpus_per_task, cpus_per_task=threads
    )
    errors = stderr_console()
    quiet = settings.quiet
    if not quiet:
        errors.print(
            f"sweeping {len(series.checkpoints)} checkpoints of {series.source} on {runner.describe()} into {out_dir}",
            markup=False,
        )

    def on_result(checkpoint: Any, status: str, detail: str | None) -> None:
        if status == "failed":
            errors.print(f"error: step {checkpoint.step} ({checkpoint.reference}): {detail}", style="red", markup=False)

    try:
        with runner, progress_bar(wants_progress(quiet), label="sweeping") as progress:
            outcome = run_sweep(
                series,
                options,
                out_dir,
                executor=runner,
                resume=not restart,
                plots=not no_plots,
                progress=progress,
                on_result=on_result,
                extensions=extensions,
                registry=registry,
            )
    except KeyboardInterrupt:
        errors.print(
            f"interrupted: the reports written so far are in {out_dir / 'reports'}; run the same command again to "
            "resume",
            style="yellow",
        )
        sys.exit(130)
    if not quiet:
        _print_outcome(stdout_console(), outcome, no_plots)
    if outcome.failed:
        errors.print(
            f"error: {len(outcome.failed)} of {len(series.checkpoints)} checkpoints failed "
            f"({', '.join(map(str, sorted(outcome.failed)))}); the summary marks them",
            style="red",
            markup=False,
        )
        sys.exit(EXIT_ERROR)


def _print_outcome(console: Any, outcome: Any, no_plots: bool) -> None:
    from defcheck.sweep.plots import matplotlib_missing

    summary = outcome.summary
    table = Table(title="first step at which each definition admits a unit", title_justify="left")
    for column in ("concept", "definition", "kind", f"first {summary['step_unit']}", "members then"):
        table.add_column(column, overflow="fold")
    for record in summary["definitions"].values():
        first = record["first_step"]
        table.add_row(
            record["concept"],
            record["definition"],
            record["kind"],
            "never" if first is None else str(first),
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
