"""The steps of ``defcheck run`` between parsing and exiting: plan the outputs, load what the session needs, then
check each model through the :class:`~defcheck.session.Session` and show its report."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from defcheck.cli.output import print_diagnostics, stderr_console, stdout_console, write_output
from defcheck.cli.progress import progress_bar, wants_progress
from defcheck.cli.run_output import OutputPlan, check_templates, model_path, plan_outputs, show_model, show_run
from defcheck.cli.settings import Settings
from defcheck.diagnostics import display_path
from defcheck.session import RunConfig, Session
from defcheck.session.session import ModelTarget


def plan_run(
    settings: Settings, config: RunConfig, params: dict[str, Any]
) -> tuple[Session, OutputPlan, list[ModelTarget]]:
    """The session, the output plan and the models, everything checked before any model is loaded."""
    directory = params["directory"]
    if params["old_directory"] is not None:
        stderr_console().print("note: --out DIR is deprecated; use --output-dir DIR", style="yellow", markup=False)
        directory = directory or params["old_directory"]
    deprecated = {option: params[f"{option[2:]}_file"] for option in ("--json", "--markdown", "--junit", "--sarif")}
    session = Session(config, extensions=settings.extensions)
    plan = plan_outputs(params["formats"], params["outputs"], directory, deprecated, settings.extensions)
    session.selection()  # the definitions, the project file's names and the selection, checked
    targets = session.models(params["model_ref"])
    names = [target.name for target in targets]
    check_templates(plan, names, {"--baseline": params["baseline"], "--write-baseline": params["write_baseline"]})
    project = session.project
    if project is not None and not settings.quiet:
        others = [e for e in project.expectations if e.spec.model is not None and e.spec.model not in names]
        if others:
            stderr_console().print(
                f"note: {len(others)} expectation(s) are for models this run does not check", style="yellow"
            )
    return session, plan, targets


def check_models(
    settings: Settings, session: Session, plan: OutputPlan, targets: list[ModelTarget], params: dict[str, Any]
) -> set[str]:
    """Check every model, show and write its report as it is built; the reports' statuses."""
    from defcheck.ci.baseline import load_baseline
    from defcheck.engine.chance import chance_warnings
    from defcheck.report.checks import status

    baseline, write_baseline = params["baseline"], params["write_baseline"]
    baselines = {t.name: load_baseline(model_path(baseline, t.name)) for t in targets} if baseline else {}
    console = stdout_console()
    reports = []
    for target in targets:
        started = time.perf_counter()
        view = session.load_model(target.reference, **target.options)
        loading = time.perf_counter() - started
        session.require_tokens(view)  # before any forward pass: one error, not one per criterion
        compared = None
        if baseline is not None:
            compared = (display_path(model_path(baseline, target.name)), baselines[target.name])
        with progress_bar(wants_progress(settings.quiet)) as progress:
            result, report = session.run(
                view, model_info={"reference": target.shown}, name=target.name, baseline=compared, progress=progress
            )
        reports.append(report)
        show_model(settings, console, plan, report, target.name, len(targets) > 1)
        if not settings.quiet:  # thresholds that admit a null unit on this model (the lint that needs a model)
            print_diagnostics(stderr_console(), chance_warnings(result, session.registry))
        if params["profile"]:
            print_profile(result.timings, loading, floor_of(view, result, session.config.batch_size))
        if plan.terminal or "github" not in plan.stdout:  # github annotations carry the errors already
            for definition in (d for d in result.definitions.values() if d.error):
                stderr_console().print(f"error: {definition.id}: {definition.error}", style="red", markup=False)
        if write_baseline is not None:
            write_output(settings, model_path(write_baseline, target.name), report.to_baseline_json())
    show_run(settings, plan, reports)
    return {status(report.data) for report in reports}


def floor_of(view: Any, result: Any, batch_size: int | None) -> dict[str, float]:
    """The run's forward-pass floor per probe (:mod:`defcheck.engine.floor`); empty for a model without tokens."""
    from defcheck.engine.floor import forward_floor
    from defcheck.models.view import ModelView

    return forward_floor(view, result.probes, batch_size) if isinstance(view, ModelView) else {}


def print_profile(timings: dict[str, float], loading: float = 0.0, floor: dict[str, float] | None = None) -> None:
    """Where the time went (``--profile``), slowest first, on stderr; then the floor (model load plus one plain
    forward pass per distinct probe, measured after the run in this process) and the ratio of the two."""
    table = Table(title="where the time went", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in sorted(timings.items(), key=lambda item: -item[1]):
        table.add_row(step, f"{seconds:.3f}")
    total = sum(timings.values())
    table.add_row("total", f"{total:.3f}")
    if floor is not None:
        table.add_row("model load", f"{loading:.3f}")
        for key, seconds in sorted(floor.items(), key=lambda item: -item[1]):
            table.add_row(f"floor: forward pass of {key} (no hooks, no unembedding)", f"{seconds:.3f}")
        least = loading + sum(floor.values())
        table.add_row("floor: model load + one forward pass per probe", f"{least:.3f}")
        ratio = (loading + total) / least if least > 0 else float("nan")
        table.add_row("(model load + total) / floor", f"{ratio:.2f}")
    stderr_console().print(table, markup=False)
