"""Options that several commands share, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

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

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The project file (defcheck.yaml). [default: the nearest defcheck.yaml at or above the working directory, "
    "up to the repository's root]",
)

no_config_option = click.option("--no-config", is_flag=True, help="Do not look for a project file.")


def file_option(name: str, dest: str, text: str, per_model: bool = True) -> Any:
    """An option whose value is a file to write (a run with several models puts {model} in its name)."""
    suffix = " With several models, put {model} in FILE." if per_model else " It holds every model of the run."
    return click.option(name, dest, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help=text + suffix)
