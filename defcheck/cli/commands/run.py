"""``defcheck run``: check the definitions against models and report members and overlap."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from defcheck.cli.options import (
    concept_option,
    config_option,
    definitions_option,
    file_option,
    no_builtin_option,
    no_config_option,
)
from defcheck.cli.output import (
    print_diagnostics,
    stderr_console,
    stdout_console,
    write_output,
)
from defcheck.cli.settings import EXIT_ERROR, EXIT_FINDINGS, Settings
from defcheck.diagnostics import DefcheckError, display_path
from defcheck.hooks.manager import Extensions
from defcheck.language.registry import load_registry

DEFAULT_MODEL = "builtin:toy-induction"


MODEL_TEMPLATE = "{model}"


@click.command()
@click.option(
    "--model",
    "-m",
    "model_ref",
    help=f"builtin:NAME, tl:NAME (needs a network), a checkpoint path (model.pt), or a model's name in the project "
    f"file. [default: the project file's models, else {DEFAULT_MODEL}]",
)
@click.option("--model-config", type=click.Path(path_type=Path), help="The checkpoint's config (JSON or YAML).")
@definitions_option
@no_builtin_option
@concept_option
@click.option("--seed", type=int, help="Seed of the probes. [default: the project file's, else 0]")
@click.option("--device", type=click.Choice(["cpu", "cuda", "mps"]), default="cpu", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), help="Sequences per forward pass (default: a whole probe).")
@click.option("--bos-token-id", type=int, help="Override the model's BOS token id.")
@click.option("--token-ids", metavar="START:STOP", help="Override the ids probes draw from (half-open range).")
@click.option(
    "--format",
    "-f",
    "formats",
    multiple=True,
    metavar="FORMAT",
    help="Output on stdout: terminal (default), json, markdown, html, github (annotations), or a plugin's "
    "format (repeatable).",
)
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each chosen format to OUT/report.<suffix> (terminal output is still printed).",
)
@click.option("--profile", is_flag=True, help="Print where the time went: probes, forward passes, each checker.")
@config_option
@no_config_option
@file_option("--baseline", "baseline", "Compare with this stored JSON report; any difference exits 1.")
@file_option("--write-baseline", "write_baseline", "Store this run's JSON report here, for later --baseline runs.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="How far a score or metric may move from the baseline: |new - old| <= TOLERANCE * max(1, |old|). "
    "[default: the project file's, else 0.001]",
)
@file_option("--json", "json_file", "Write the JSON report (with its checks) to FILE.")
@file_option("--markdown", "markdown_file", "Write the Markdown report (checks first) to FILE.")
@file_option(
    "--junit",
    "junit_file",
    "Write JUnit XML: a test case per definition, per expectation, and for the baseline.",
    per_model=False,
)
@file_option(
    "--sarif",
    "sarif_file",
    "Write SARIF 2.1.0 (for code scanning) pointing at the definitions' files and lines.",
    per_model=False,
)
@click.pass_obj
def run(
    settings: Settings,
    model_ref: str | None,
    model_config: Path | None,
    definition_paths: tuple[Path, ...],
    no_builtin: bool,
    selected: tuple[str, ...],
    seed: int | None,
    device: str,
    batch_size: int | None,
    bos_token_id: int | None,
    token_ids: str | None,
    formats: tuple[str, ...],
    out_dir: Path | None,
    profile: bool,
    config_path: Path | None,
    no_config: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    tolerance: float | None,
    json_file: Path | None,
    markdown_file: Path | None,
    junit_file: Path | None,
    sarif_file: Path | None,
) -> None:
    """Check the definitions against a model and report members and the behavioral/mechanistic overlap.

    With a project file (defcheck.yaml, found by walking up from the working directory, or --config), its
    models, definitions and expectations are used. Exit codes: 0 every expectation holds and nothing differs
    from the baseline; 1 an expectation fails or a result differs from the baseline; 2 a usage, input or
    plugin error, including a checker that raised (the other definitions are still evaluated and reported, and
    every output is still written).
    """
    from defcheck.ci.baseline import diff_reports, load_baseline
    from defcheck.ci.expectations import applicable, check_expectations
    from defcheck.ci.project import (
        DEFAULT_TOLERANCE,
        ModelSpec,
        check_project,
        load_project,
        model_name,
        resolve_project,
    )
    from defcheck.cli.progress import progress_bar, wants_progress
    from defcheck.engine.runner import evaluate
    from defcheck.models.loading import load_model
    from defcheck.report import Report
    from defcheck.report.checks import build_checks, checks_lines
    from defcheck.report.checks import status as report_status

    extensions = settings.extensions
    chosen = list(formats) or ["terminal"]
    special = ("terminal", "github")
    unknown = [f for f in chosen if f not in special and f not in extensions.report_formats]
    if unknown:
        known = ", ".join([*special, *sorted(extensions.report_formats)])
        raise DefcheckError(f"unknown report format '{unknown[0]}' (known: {known})")

    project_path = resolve_project(config_path, no_config)
    project = None
    if project_path is not None:
        project, diagnostics = load_project(project_path)
        errors = [d for d in diagnostics if d.severity == "error"]
        if errors or project is None:
            print_diagnostics(stderr_console(), errors or diagnostics)
            raise DefcheckError(
                f"the project file {display_path(project_path)} has {len(errors or diagnostics)} error(s); "
                "nothing was run"
            )
    spec = project.project if project is not None else None
    paths = [*(project.definition_paths() if project else []), *definition_paths]
    include_builtin = not no_builtin and (spec.builtin if spec else True)
    registry = load_registry(paths, extensions, include_builtin=include_builtin)
    if registry.errors:
        print_diagnostics(stderr_console(), registry.errors)
        raise DefcheckError(f"the definitions have {len(registry.errors)} error(s); nothing was run")
    if project is not None:
        problems = check_project(project, registry)
        if problems:
            print_diagnostics(stderr_console(), problems)
            raise DefcheckError(f"the project file {project.label} has {len(problems)} error(s); nothing was run")
    selection = list(selected) or (list(spec.concepts) if spec else [])
    run_seed = seed if seed is not None else (spec.seed if spec else 0)
    run_tolerance = tolerance if tolerance is not None else (spec.tolerance if spec else DEFAULT_TOLERANCE)

    # the models: --model (a reference, or a model's name in the project file), else the project's, else the default
    models: list[tuple[str, str, ModelSpec, str | None]] = []  # (name, reference to load, spec, its config)
    named = dict(project.models()) if project else {}
    if model_ref is not None and model_ref in named:
        models.append((model_ref, project.model_reference(named[model_ref]), named[model_ref], None))  # type: ignore[union-attr]
    elif model_ref is not None:
        models.append((model_name(model_ref), model_ref, ModelSpec(ref=model_ref), None))
    elif named:
        models = [(name, project.model_reference(m), m, None) for name, m in named.items()]  # type: ignore[union-attr]
    else:
        models.append((model_name(DEFAULT_MODEL), DEFAULT_MODEL, ModelSpec(ref=DEFAULT_MODEL), None))
    if project is not None:
        models = [(n, ref, m, project.model_config_path(m)) for n, ref, m, _ in models]

    several = len(models) > 1
    targets = {
        "--json": json_file,
        "--markdown": markdown_file,
        "--baseline": baseline,
        "--write-baseline": write_baseline,
    }
    for option, target in targets.items():
        if several and target is not None and MODEL_TEMPLATE not in str(target):
            names = ", ".join(n for n, *_ in models)
            raise DefcheckError(
                f"{option} {target}: this run checks {len(models)} models ({names}); put {MODEL_TEMPLATE} in the "
                f"file name (e.g. {Path(str(target)).stem}.{MODEL_TEMPLATE}{Path(str(target)).suffix}) or pick one "
                "with --model"
            )

    def path_for(target: Path, name: str) -> Path:
        return Path(str(target).replace(MODEL_TEMPLATE, name))

    baselines = {name: load_baseline(path_for(baseline, name)) for name, *_ in models} if baseline else {}
    if project is not None and not settings.quiet:
        checked = {name for name, *_ in models}
        others = [e for e in project.expectations if e.spec.model is not None and e.spec.model not in checked]
        if others:
            stderr_console().print(
                f"note: {len(others)} expectation(s) are for models this run does not check", style="yellow"
            )

    console = stdout_console()
    reports: list[Report] = []
    for name, reference, model_spec, config in models:
        view = load_model(
            reference,
            extensions,
            device=device,
            model_config=str(model_config) if model_config else config,
            bos_token_id=bos_token_id if bos_token_id is not None else model_spec.bos_token_id,
            token_ids=token_ids if token_ids is not None else model_spec.token_ids,
        )
        with progress_bar(wants_progress(settings.quiet)) as progress:
            result = evaluate(
                view,
                registry,
                extensions,
                seed=run_seed,
                batch_size=batch_size,
                definitions=selection or None,
                progress=progress,
            )
        report = Report.build(result, registry, {"reference": model_spec.ref if project else reference})
        if project is not None or baseline is not None:
            expectations = []
            if project is not None:
                expectations = check_expectations(applicable(project, name), report.data, file=project.label)
            compared = None
            if baseline is not None:
                differences = diff_reports(
                    baselines[name], report.data, tolerance=run_tolerance, selection=selection or None
                )
                compared = {
                    "file": display_path(path_for(baseline, name)),
                    "tolerance": run_tolerance,
                    "differences": differences,
                }
            report.set_checks(
                build_checks(
                    report.data,
                    model=name,
                    project=project.label if project else None,
                    expectations=expectations,
                    baseline=compared,
                )
            )
        reports.append(report)
        _show(settings, console, report, chosen, out_dir, name if several else None, extensions)
        lines = checks_lines(report.data, quiet=settings.quiet)
        if lines:
            where = console if "terminal" in chosen else stderr_console()
            for text, style in lines:
                where.print(text, style=style, markup=False)
        if profile:
            _print_profile(result.timings)
        for definition in (d for d in result.definitions.values() if d.error):
            stderr_console().print(f"error: {definition.id}: {definition.error}", style="red", markup=False)
        outputs = (
            (write_baseline, report.to_baseline_json),
            (json_file, report.to_json),
            (markdown_file, report.to_markdown),
        )
        for target, render in outputs:
            if target is not None:
                write_output(settings, path_for(target, name), render())

    if junit_file is not None:
        from defcheck.report.junit import render_junit

        write_output(settings, junit_file, render_junit(reports))
    if sarif_file is not None:
        from defcheck.report.sarif import render_sarif

        write_output(settings, sarif_file, render_sarif(reports))
    if "github" in chosen:
        from defcheck.report.github import render_github

        click.echo(render_github(reports), nl=False)
    statuses = {report_status(report.data) for report in reports}
    if "error" in statuses:
        sys.exit(EXIT_ERROR)
    if "failed" in statuses:
        sys.exit(EXIT_FINDINGS)


def _show(
    settings: Settings,
    console: Console,
    report: Any,
    chosen: list[str],
    out_dir: Path | None,
    name: str | None,
    extensions: Extensions,
) -> None:
    """Print (or write to --out) the chosen formats of one model's report."""
    if name is not None and "terminal" in chosen and not settings.quiet:
        console.rule(f"model {name}")
    for format_name in chosen:
        if format_name == "github":
            continue
        if format_name == "terminal":
            if not settings.quiet or not out_dir:
                report.to_terminal(console)
            continue
        report_format = extensions.report_formats[format_name]
        rendered = report_format.render(report)
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            stem = f"report.{name}" if name else "report"
            target = out_dir / f"{stem}{report_format.suffix}"
            write_output(settings, target, rendered if isinstance(rendered, str) else rendered.decode())
        else:
            click.echo(rendered, nl=not str(rendered).endswith("\n"))


def _print_profile(timings: dict[str, float]) -> None:
    table = Table(title="where the time went", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in sorted(timings.items(), key=lambda item: -item[1]):
        table.add_row(step, f"{seconds:.3f}")
    table.add_row("total", f"{sum(timings.values()):.3f}")
    stderr_console().print(table)
