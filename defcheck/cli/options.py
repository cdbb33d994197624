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

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (see docs); = -f json.")

output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the output to FILE instead of stdout ('-': stdout), whole or not at all.",
)


def format_option(default: str, *others: str) -> Any:
    """``-f/--format`` (alias ``--output-format``, as ruff's) for a listing: ``default``, ``json`` or ``others``."""
    return click.option(
        "--format",
        "-f",
        "--output-format",
        "format_name",
        type=click.Choice([default, "json", *others]),
        help=f"The output's format. [default: {default}]",
    )


def chosen_format(as_json: bool, format_name: str | None, default: str) -> str:
    """The format a listing prints: ``--json`` is ``-f json``; ``--json`` with another ``-f`` is a usage error."""
    if as_json and format_name not in (None, "json"):
        raise click.UsageError(f"--json and --format {format_name} ask for two formats; give one")
    return "json" if as_json else format_name or default


_concept = click.option(
    "--concept",
    "selected",
    multiple=True,
    metavar="NAME",
    help="Only this concept or concept.definition (repeatable); what it refers to comes along.",
)


def _refuse_short_c(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    if value:
        raise click.UsageError(
            "-c is ambiguous (other tools read it as --config): choose concepts with --concept NAME, "
            "the project file with --config FILE",
            ctx,
        )


_short_c = click.option("-c", "short_c", multiple=True, hidden=True, expose_value=False, callback=_refuse_short_c)


def concept_option(command: Any) -> Any:
    """``--concept NAME`` (repeatable); ``-c``, which other tools take for ``--config``, is refused with a hint."""
    return _concept(_short_c(command))


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


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Set ``Settings.quiet`` or ``Settings.verbose`` from wherever the flag was given (before or after the
    command's name); both at once is a usage error."""
    from defcheck.cli.settings import Settings

    if not value or param.name is None:
        return
    settings = ctx.ensure_object(Settings)
    setattr(settings, param.name, True)
    if settings.quiet and settings.verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose cannot be used together", ctx=ctx)


def verbosity_options() -> list[click.Option]:
    """``-q/--quiet`` and ``-v/--verbose``, for the group and for every command (fresh objects each call)."""
    return [
        click.Option(
            ["--quiet", "-q"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Print only results and errors (before or after the command's name).",
        ),
        click.Option(
            ["--verbose", "-v"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Print more: the plugins loaded and those left out, on stderr (before or after the command's name).",
        ),
    ]
