"""``defcheck list``: the loaded concepts and their definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from defcheck.cli.options import (
    definitions_option,
    json_option,
    no_builtin_option,
)
from defcheck.cli.output import (
    print_diagnostics,
    report_plugin_problems,
    stderr_console,
    stdout_console,
    threshold_text,
)
from defcheck.cli.settings import Settings
from defcheck.hooks.manager import Extensions
from defcheck.language.registry import Registry, load_registry


def load_registry_for(settings: Settings, paths: tuple[Path, ...], no_builtin: bool) -> Registry:
    return load_registry(list(paths), settings.extensions, include_builtin=not no_builtin)


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


@click.command("list")
@definitions_option
@no_builtin_option
@json_option
@click.pass_obj
def list_(settings: Settings, definition_paths: tuple[Path, ...], no_builtin: bool, as_json: bool) -> None:
    """List concepts and their definitions: kind, checkers, source."""
    registry = load_registry_for(settings, definition_paths, no_builtin)
    payload = list_payload(registry, settings.extensions)
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    report_plugin_problems(settings)
    console = stdout_console()
    if not payload["concepts"]:
        console.print("No concepts loaded. Add some with --definitions PATH, or start one with `defcheck new NAME`.")
    for concept in payload["concepts"]:
        table = Table(title=f"{concept['name']} ({concept['unit']}): {concept['summary']}", title_justify="left")
        for column in ("definition", "kind", "checkers", "source"):
            table.add_column(column)
        for definition in concept["definitions"]:
            checkers = f" {definition['combine']} ".join(
                f"{c['checker']} {threshold_text(c['threshold'])}" for c in definition["criteria"]
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
        print_diagnostics(stderr_console(), registry.errors)
        stderr_console().print(f"{len(registry.errors)} error(s): run `defcheck validate` for details", style="red")
