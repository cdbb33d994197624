"""The ``defcheck`` command line: a thin layer over the library.

Exit codes: 0 success; 1 findings (validation errors); 2 a usage, input or plugin error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from defcheck import __version__
from defcheck.diagnostics import DefcheckError, Diagnostic, display_path
from defcheck.extensions import UNIT_KINDS
from defcheck.plugins import Extensions, load_plugins
from defcheck.registry import Registry, load_registry
from defcheck.schema import concept_json_schema
from defcheck.starter import starter_file

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Settings:
    def __init__(self, strict_plugins: bool, quiet: bool, plugin_modules: tuple[str, ...] = ()):
        self.strict_plugins = strict_plugins
        self.plugin_modules = plugin_modules
        self.quiet = quiet
        self._extensions: Extensions | None = None

    @property
    def extensions(self) -> Extensions:
        if self._extensions is None:
            self._extensions = load_plugins(strict=self.strict_plugins, modules=self.plugin_modules)
        return self._extensions


def _console() -> Console:
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _threshold_text(threshold: str | dict[str, Any]) -> str:
    if isinstance(threshold, str):
        return threshold
    return f"top {threshold['top_k']}" + (f" and >= {threshold['min']}" if "min" in threshold else "")


def _errors() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _print_diagnostics(console: Console, diagnostics: list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        style = "red" if diagnostic.severity == "error" else "yellow"
        console.print(str(diagnostic), style=style, markup=False)


def _report_plugin_problems(settings: _Settings) -> None:
    if not settings.quiet:
        _print_diagnostics(_errors(), settings.extensions.problems)


definitions_option = click.option(
    "--definitions",
    "-d",
    "definition_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A concept file or folder to load besides the built-in ones (repeatable).",
)
no_builtin_option = click.option(
    "--no-builtin", is_flag=True, help="Do not load the concept files that installed plugins ship."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (see docs).")
concept_option = click.option(
    "--concept",
    "-c",
    "selected",
    multiple=True,
    metavar="NAME",
    help="Only this concept or concept.definition (repeatable); what it refers to comes along.",
)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefcheckError as error:
            _errors().print(f"error: {error}", style="red", markup=False)
            ctx.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="defcheck")
@click.option("--strict-plugins", is_flag=True, help="Stop if any plugin fails to load or register.")
@click.option("--quiet", "-q", is_flag=True, help="Print only results and errors.")
@click.option(
    "--plugin",
    "-p",
    "plugin_modules",
    multiple=True,
    metavar="MODULE",
    help="Also load this plugin module by import name (repeatable; or set DEFCHECK_PLUGINS=a,b).",
)
@click.pass_context
def main(ctx: click.Context, strict_plugins: bool, quiet: bool, plugin_modules: tuple[str, ...]) -> None:
    """Check behavioral and mechanistic definitions of interpretability concepts against models.

    Exit codes: 0 success, 1 findings (e.g. validation errors), 2 usage, input or plugin error.
    """
    ctx.obj = _Settings(strict_plugins, quiet, plugin_modules)


def _registry(settings: _Settings, paths: tuple[Path, ...], no_builtin: bool) -> Registry:
    return load_registry(list(paths), settings.extensions, include_builtin=not no_builtin)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The project file (defcheck.yaml). [default: the nearest defcheck.yaml at or above the working directory, "
    "up to the repository's root]",
)
no_config_option = click.option("--no-config", is_flag=True, help="Do not look for a project file.")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@no_builtin_option
@json_option
@config_option
@no_config_option
@click.pass_obj
def validate(
    settings: _Settings,
    paths: tuple[Path, ...],
    no_builtin: bool,
    as_json: bool,
    config_path: Path | None,
    no_config: bool,
) -> None:
    """Validate concept files and the project file: schema, references, and the kind lint.

    PATHS are concept files, folders of them, or a project file (defcheck.yaml). Without PATHS, the project
    file and its definitions are validated (or only the built-in concepts when there is no project file). A
    YAML file given by name without a top-level 'concept:' or 'definitions:' key (a CI workflow, say) is
    skipped with a warning, so the command works as a pre-commit hook on every changed *.yaml. The project's
    definitions are loaded so that references between files resolve, but only the files given are reported.
    The built-in concepts are loaded too unless --no-builtin is given. Exit 0 when there are no errors, 1
    when there are.
    """
    from defcheck.loader import find_concept_files
    from defcheck.project import check_project, is_project_file, load_project, looks_like_concept_file, resolve_project

    project_path = resolve_project(config_path, no_config)
    given_projects = [p for p in paths if p.is_file() and is_project_file(p)]
    if given_projects:
        project_path = given_projects[0]
    skipped: list[Diagnostic] = []
    concept_inputs: list[Path] = []
    for path in paths:
        if path in given_projects:
            continue
        if path.is_dir() or looks_like_concept_file(path):
            concept_inputs.append(path)
        else:
            message = "skipped: not a concept file (it has no top-level 'concept:' or 'definitions:' key)"
            skipped.append(Diagnostic(display_path(path), None, None, "", message, "warning", "not-a-concept-file"))
    project, project_diagnostics = (None, []) if project_path is None else load_project(project_path)
    check_project_file = project_path is not None and (not paths or bool(given_projects))
    context: list[Path] = []
    if project is not None:
        context = [p for p in project.definition_paths() if p.exists()]
    inputs = concept_inputs if paths else context
    include_builtin = not no_builtin and (project.project.builtin if project is not None else True)
    registry = load_registry([*context, *inputs], settings.extensions, include_builtin=include_builtin)
    reported = {display_path(f) for path in inputs for f in find_concept_files(path)}
    context_only = {display_path(f) for path in context for f in find_concept_files(path)} - reported
    diagnostics = settings.extensions.problems + [d for d in registry.diagnostics if d.file not in context_only]
    if check_project_file:
        diagnostics += project_diagnostics
        if project is not None:
            diagnostics += check_project(project, registry)
    diagnostics += skipped
    errors = [d for d in diagnostics if d.severity == "error"]
    if as_json:
        click.echo(json.dumps({"diagnostics": [d.to_dict() for d in diagnostics], "errors": len(errors)}, indent=2))
    else:
        console = _console()
        shown = errors if settings.quiet else diagnostics
        _print_diagnostics(console, shown)
        if not settings.quiet:
            warnings = len(diagnostics) - len(errors)
            project_note = f"project file {display_path(project_path)}, " if check_project_file and project_path else ""
            console.print(
                f"{project_note}{len(registry.files)} concept(s), {len(registry.order)} definition(s): "
                f"{len(errors)} error(s), {warnings} warning(s)",
                style="red" if errors else "green",
            )
    sys.exit(EXIT_FINDINGS if errors else EXIT_OK)


def list_payload(registry: Registry, extensions: Extensions) -> dict[str, Any]:
    """The documented JSON shape of ``defcheck list --json``."""
    concepts = []
    for name, file in registry.files.items():
        concept = file.concept
        definitions = []
        for def_name, definition in concept.definitions.items():
            criteria = []
            for criterion in definition.criteria:
                checker = extensions.checkers.get(criterion.checker)
                criteria.append(
                    {
                        "checker": criterion.checker,
                        "observes": checker.observes if checker else None,
                        "params": criterion.params,
                        "probe": criterion.probe.model_dump() if criterion.probe else None,
                        "threshold": criterion.threshold.to_json(),
                        "with": criterion.with_,
                    }
                )
            definitions.append(
                {
                    "id": f"{name}.{def_name}",
                    "kind": definition.kind,
                    "summary": definition.summary,
                    "source": definition.source,
                    "combine": definition.combinator,
                    "criteria": criteria,
                }
            )
        concepts.append(
            {
                "name": name,
                "unit": concept.unit,
                "summary": concept.summary,
                "references": concept.references,
                "file": file.label,
                "definitions": definitions,
            }
        )
    diagnostics = extensions.problems + registry.diagnostics
    return {"concepts": concepts, "diagnostics": [d.to_dict() for d in diagnostics]}


@main.command("list")
@definitions_option
@no_builtin_option
@json_option
@click.pass_obj
def list_(settings: _Settings, definition_paths: tuple[Path, ...], no_builtin: bool, as_json: bool) -> None:
    """List concepts and their definitions: kind, checkers, source."""
    registry = _registry(settings, definition_paths, no_builtin)
    payload = list_payload(registry, settings.extensions)
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    _report_plugin_problems(settings)
    console = _console()
    if not payload["concepts"]:
        console.print("No concepts loaded. Add some with --definitions PATH, or start one with `defcheck new NAME`.")
    for concept in payload["concepts"]:
        table = Table(title=f"{concept['name']} ({concept['unit']}): {concept['summary']}", title_justify="left")
        for column in ("definition", "kind", "checkers", "source"):
            table.add_column(column)
        for definition in concept["definitions"]:
            checkers = f" {definition['combine']} ".join(
                f"{c['checker']} {_threshold_text(c['threshold'])}" for c in definition["criteria"]
            )
            kind_style = "cyan" if definition["kind"] == "behavioral" else "magenta"
            table.add_row(
                definition["id"],
                f"[{kind_style}]{definition['kind']}[/]",
                checkers,
                definition["source"] or "[yellow](no source)[/]",
            )
        console.print(table)
    if registry.errors:
        _print_diagnostics(_errors(), registry.errors)
        _errors().print(f"{len(registry.errors)} error(s): run `defcheck validate` for details", style="red")


@main.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema (draft 07) of a concept file, for editors and CI."""
    text = json.dumps(concept_json_schema(), indent=2) + "\n"
    if output:
        _write(output, text)
    else:
        click.echo(text, nl=False)


@main.command()
@json_option
@click.pass_obj
def plugins(settings: _Settings, as_json: bool) -> None:
    """List installed plugins, where they come from and what they register."""
    extensions = settings.extensions
    if as_json:
        click.echo(json.dumps({"plugins": [info.to_dict() for info in extensions.plugins]}, indent=2))
        return
    table = Table(title="defcheck plugins", title_justify="left")
    for column in ("plugin", "from", "registers"):
        table.add_column(column)
    for info in extensions.plugins:
        origin = f"{info.distribution or 'in-process'}{' (built-in)' if info.builtin else ''}\n{info.module}"
        if info.error:
            registers = f"[red]error: {info.error}[/]"
        else:
            registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items()) or "-"
        table.add_row(info.name, origin, registers)
    _console().print(table)


@main.command()
@click.option("--markdown", is_flag=True, help="Print the reference page (docs/checkers.md) instead of a table.")
@json_option
@click.pass_obj
def checkers(settings: _Settings, markdown: bool, as_json: bool) -> None:
    """List the registered checkers: what each observes, its parameters, probe and `with:` needs."""
    from defcheck.checkerdoc import checkers_markdown

    extensions = settings.extensions
    if markdown:
        click.echo(checkers_markdown(extensions), nl=False)
        return
    rows = [
        {
            "name": checker.name,
            "observes": checker.observes,
            "unit": checker.unit,
            "probe": checker.probe,
            "with": checker.relation,
            "params": sorted(checker.params.model_fields),
            "plugin": extensions.owner("checkers", checker.name),
            "summary": checker.summary,
            "source": checker.source,
        }
        for checker in sorted(extensions.checkers.values(), key=lambda c: c.name)
    ]
    if as_json:
        click.echo(json.dumps({"checkers": rows}, indent=2))
        return
    table = Table(title="defcheck checkers", title_justify="left")
    for column in ("checker", "observes", "unit", "probe", "with", "params", "plugin"):
        table.add_column(column)
    for row in rows:
        style = "cyan" if row["observes"] == "behavior" else "magenta"
        table.add_row(
            row["name"],
            f"[{style}]{row['observes']}[/]",
            row["unit"] if isinstance(row["unit"], str) else " or ".join(row["unit"]),
            row["probe"],
            row["with"],
            ", ".join(row["params"]) or "-",
            row["plugin"],
        )
    _console().print(table)


@main.command()
@click.argument("name")
@click.option(
    "--unit",
    type=click.Choice(UNIT_KINDS),
    default="attention_head",
    show_default=True,
    help="The unit kind the concept categorizes.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Where to write (default: NAME.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def new(settings: _Settings, name: str, unit: str, output: Path | None, force: bool) -> None:
    """Write a commented starter concept file with one behavioral and one mechanistic definition."""
    path = output or Path(f"{name}.yaml")
    text = starter_file(name, unit, file=str(path))  # refuses a bad name before touching the disk
    if path.exists() and not force:
        raise DefcheckError(f"{path} exists; use --force to overwrite it")
    _write(path, text)
    if not settings.quiet:
        _console().print(f"wrote {path}; check it with `defcheck validate {path}`")


DEFAULT_MODEL = "builtin:toy-induction"
MODEL_TEMPLATE = "{model}"


def _file_option(name: str, dest: str, text: str, per_model: bool = True) -> Any:
    suffix = " With several models, put {model} in FILE." if per_model else " It holds every model of the run."
    return click.option(name, dest, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help=text + suffix)


@main.command()
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
@_file_option("--baseline", "baseline", "Compare with this stored JSON report; any difference exits 1.")
@_file_option("--write-baseline", "write_baseline", "Store this run's JSON report here, for later --baseline runs.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    help="How far a score or metric may move from the baseline: |new - old| <= TOLERANCE * max(1, |old|). "
    "[default: the project file's, else 0.001]",
)
@_file_option("--json", "json_file", "Write the JSON report (with its checks) to FILE.")
@_file_option("--markdown", "markdown_file", "Write the Markdown report (checks first) to FILE.")
@_file_option(
    "--junit",
    "junit_file",
    "Write JUnit XML: a test case per definition, per expectation, and for the baseline.",
    per_model=False,
)
@_file_option(
    "--sarif",
    "sarif_file",
    "Write SARIF 2.1.0 (for code scanning) pointing at the definitions' files and lines.",
    per_model=False,
)
@click.pass_obj
def run(
    settings: _Settings,
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
    from defcheck.baseline import diff_reports, load_baseline
    from defcheck.expectations import applicable, check_expectations
    from defcheck.models.loading import load_model
    from defcheck.progress import progress_bar, wants_progress
    from defcheck.project import DEFAULT_TOLERANCE, ModelSpec, check_project, load_project, model_name, resolve_project
    from defcheck.report import Report
    from defcheck.report.checks import build_checks, checks_lines
    from defcheck.report.checks import status as report_status
    from defcheck.runner import evaluate

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
            _print_diagnostics(_errors(), errors or diagnostics)
            raise DefcheckError(
                f"the project file {display_path(project_path)} has {len(errors or diagnostics)} error(s); "
                "nothing was run"
            )
    spec = project.project if project is not None else None
    paths = [*(project.definition_paths() if project else []), *definition_paths]
    include_builtin = not no_builtin and (spec.builtin if spec else True)
    registry = load_registry(paths, extensions, include_builtin=include_builtin)
    if registry.errors:
        _print_diagnostics(_errors(), registry.errors)
        raise DefcheckError(f"the definitions have {len(registry.errors)} error(s); nothing was run")
    if project is not None:
        problems = check_project(project, registry)
        if problems:
            _print_diagnostics(_errors(), problems)
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
            _errors().print(
                f"note: {len(others)} expectation(s) are for models this run does not check", style="yellow"
            )

    console = _console()
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
            where = console if "terminal" in chosen else _errors()
            for text, style in lines:
                where.print(text, style=style, markup=False)
        if profile:
            _print_profile(result.timings)
        for definition in (d for d in result.definitions.values() if d.error):
            _errors().print(f"error: {definition.id}: {definition.error}", style="red", markup=False)
        outputs = (
            (write_baseline, report.to_baseline_json),
            (json_file, report.to_json),
            (markdown_file, report.to_markdown),
        )
        for target, render in outputs:
            if target is not None:
                _write_output(settings, path_for(target, name), render())

    if junit_file is not None:
        from defcheck.report.junit import render_junit

        _write_output(settings, junit_file, render_junit(reports))
    if sarif_file is not None:
        from defcheck.report.sarif import render_sarif

        _write_output(settings, sarif_file, render_sarif(reports))
    if "github" in chosen:
        from defcheck.report.github import render_github

        click.echo(render_github(reports), nl=False)
    statuses = {report_status(report.data) for report in reports}
    if "error" in statuses:
        sys.exit(EXIT_ERROR)
    if "failed" in statuses:
        sys.exit(EXIT_FINDINGS)


def _show(
    settings: _Settings,
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
            _write_output(settings, target, rendered if isinstance(rendered, str) else rendered.decode())
        else:
            click.echo(rendered, nl=not str(rendered).endswith("\n"))


def _write_output(settings: _Settings, target: Path, text: str) -> None:
    if target.parent != Path() and not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DefcheckError(f"cannot write {target}: {error.strerror or error}") from error
    _write(target, text)
    if not settings.quiet:
        _errors().print(f"wrote {target}")


def _print_profile(timings: dict[str, float]) -> None:
    table = Table(title="where the time went", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in sorted(timings.items(), key=lambda item: -item[1]):
        table.add_row(step, f"{seconds:.3f}")
    table.add_row("total", f"{sum(timings.values()):.3f}")
    _errors().print(table)


@main.command()
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "-f",
    "format_name",
    default="terminal",
    show_default=True,
    help="terminal, json, markdown, html, or a plugin's format.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.pass_obj
def report(settings: _Settings, report_file: Path, format_name: str, output: Path | None) -> None:
    """Re-render a saved JSON report in another format."""
    from defcheck.report import Report

    loaded = Report.from_json(report_file.read_bytes())
    if format_name == "terminal":
        loaded.to_terminal(_console())
        return
    report_format = settings.extensions.report_formats.get(format_name)
    if report_format is None:
        known = ", ".join(["terminal", *sorted(settings.extensions.report_formats)])
        raise DefcheckError(f"unknown report format '{format_name}' (known: {known})")
    rendered = report_format.render(loaded)
    text = rendered if isinstance(rendered, str) else rendered.decode()
    if output:
        _write(output, text)
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DefcheckError(f"cannot write {path}: {error.strerror or error}") from error


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (for tests)."""
    try:
        # without standalone mode click *returns* the code of a ctx.exit() (e.g. our exit 2 on a DefcheckError)
        result = main.main(args=argv, prog_name="defcheck", standalone_mode=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    return result if isinstance(result, int) else 0


import defcheck.sweep_cli  # noqa: E402, F401  (`defcheck sweep`: its own module; it registers itself on main)
