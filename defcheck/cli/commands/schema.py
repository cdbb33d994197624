"""``defcheck schema``: the JSON Schema of a concept file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from defcheck.cli.options import output_option
from defcheck.cli.output import write_output
from defcheck.cli.settings import Settings
from defcheck.language.schema import concept_json_schema


@click.command()
@output_option
@click.pass_obj
def schema(settings: Settings, output: Path | None) -> None:
    """Print the JSON Schema (draft 07) of a concept file, for editors and CI."""
    write_output(settings, output, json.dumps(concept_json_schema(), indent=2) + "\n")
