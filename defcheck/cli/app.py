"""The ``defcheck`` group: global options, and the one place a user's error becomes a message and exit 2.

Exit codes: 0 success; 1 findings (validation errors); 2 a usage, input or plugin error.
"""

from __future__ import annotations

from typing import Any

import click

from defcheck._version import __version__
from defcheck.cli.output import stderr_console
from defcheck.cli.settings import EXIT_ERROR, Settings
from defcheck.diagnostics import DefcheckError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefcheckError as error:
            stderr_console().print(f"error: {error}", style="red", markup=False)
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
    ctx.obj = Settings(strict_plugins, quiet, plugin_modules)


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
