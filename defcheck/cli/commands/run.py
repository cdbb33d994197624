"""``defcheck run``: check the definitions against models and report members and overlap."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from defcheck.cli.options import file_option
from defcheck.cli.run_config import run_config, run_options
from defcheck.cli.settings import EXIT_ERROR, EXIT_FINDINGS, Settings
from defcheck.session.session import DEFAULT_MODEL

FILE = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option(
    "--model",
    "-m",
    "model_ref",
    help=f"builtin:NAME, tl:NAME (needs a network), a checkpoint path (model.pt), or a model's name in the project "
    f"file. [default: the project file's models, else {DEFAULT_MODEL}]",
)
@run_options
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps"]),
    default="cpu",
    show_default=True,
    help="Where the model runs.",
)
@click.option(
    "--format",
    "-f",
    "--output-format",
    "formats",
    multiple=True,
    metavar="FORMAT",
    help="A report format: terminal (default), json, markdown, html, sarif, junit, github (annotations), or a "
    "plugin's (repeatable). Those not written to a file go to stdout: the terminal and at most one other.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    metavar="[FORMAT=]FILE",
    help="Write FORMAT to FILE (repeatable). FORMAT defaults to the one the suffix names (.json, .md, .html, "
    ".sarif, .xml for JUnit), else to the only -f given. With several models, put {model} in FILE (sarif, "
    "junit and github hold every model).",
)
@click.option(
    "--output-dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write each chosen format to DIR/report.SUFFIX (the JSON report if -f chose none to write).",
)
@click.option(
    "--profile",
    is_flag=True,
    help="Print where the time went (probes, forward passes, each checker), then the run's floor and the ratio.",
)
@file_option("--baseline", "baseline", "Compare with this stored JSON report; any difference exits 1.")
@file_option("--write-baseline", "write_baseline", "Store this run's JSON report here, for later --baseline runs.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="How far a score or metric may move from the baseline: |new - old| <= TOLERANCE * max(1, |old|). "
    "[default: the project file's, else 0.001]",
)
@click.option(
    "--strict-stability",
    is_flag=True,
    help="Count a baseline difference in a unit's membership even where the unit is unstable across the probe "
    "seeds (--seeds); by default such changes are listed as ignored.",
)
@click.option("--out", "old_directory", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@click.option("--json", "json_file", type=FILE, hidden=True)
@click.option("--markdown", "markdown_file", type=FILE, hidden=True)
@click.option("--junit", "junit_file", type=FILE, hidden=True)
@click.option("--sarif", "sarif_file", type=FILE, hidden=True)
@click.pass_obj
def run(settings: Settings, **params: Any) -> None:
    """Check the definitions against a model and report members and the behavioral/mechanistic overlap.

    With a project file (defcheck.yaml, found by walking up from the working directory, or --config), its
    models, definitions and expectations are used. Exit codes: 0 every expectation holds and nothing differs
    from the baseline; 1 an expectation fails or a result differs from the baseline; 2 a usage, input or
    plugin error, including a checker that raised, ran past --checker-timeout or wrote to the weights, and a
    plugin that failed to load (the other definitions are still evaluated and reported, and every output is
    still written).
    """
    from defcheck.cli.output import report_plugin_problems
    from defcheck.cli.run_steps import check_models, plan_run

    report_plugin_problems(settings)
    config = run_config(
        settings,
        params,
        device=params.pop("device"),
        tolerance=params.pop("tolerance"),
        strict_stability=params.pop("strict_stability"),
    )
    session, plan, targets = plan_run(settings, config, params)
    statuses = check_models(settings, session, plan, targets, params)
    if "error" in statuses or settings.extensions.problems:  # a plugin that failed to load checked nothing
        sys.exit(EXIT_ERROR)
    if "failed" in statuses:
        sys.exit(EXIT_FINDINGS)
