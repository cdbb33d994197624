"""``defcheck schema``: the JSON Schema of a concept file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from defcheck.cli.output import (
    write_file,
)
from defcheck.language.schema import concept_json_schema


@click.command()
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema (draft 07) of a concept file, for editors and CI."""
    text = json.dumps(concept_json_schema(), indent=2) + "\n"
    if output:
        write_file(output, text)
    else:
        click.echo(text, nl=False)
