"""The ``defcheck`` group: global options, and the one place a user's error becomes a message and exit 2.

Exit codes: 0 success; 1 findings (validation errors); 2 a usage, input or plugin error.
"""

from __future__ import annotations

import os
from typing import Any

import click

from defcheck._version import __version__
from defcheck.cli.options import verbosity_options
from defcheck.cli.output import stderr_console
from defcheck.cli.settings import EXIT_ERROR, Settings
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import PLUGINS_ENV, require_plugin_modules


class _Group(click.Group):
    """Turns a :class:`DefcheckError` into ``error: ...`` and exit 2, and gives every command ``-q``/``-v``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefcheckError as error:
            stderr_console().print(f"error: {error}", style="red", markup=False)
            ctx.exit(EXIT_ERROR)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Add ``cmd`` with ``-q``/``-v`` among its options, so they work after the command's name too."""
        taken = {opt for param in cmd.params for opt in param.opts}
        if not taken & {"-q", "--quiet", "-v", "--verbose"}:
            cmd.params.extend(verbosity_options())
        super().add_command(cmd, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="defcheck")
@click.option("--strict-plugins", is_flag=True, help="Stop if any plugin fails to load or register.")
@click.option(
    "--plugin",
    "-p",
    "plugin_names",
    multiple=True,
    metavar="MODULE",
    help="Also load this plugin module by import name, or leave out an installed plugin with no:NAME (its "
    "entry-point name or module), as pytest does (repeatable; or set DEFCHECK_PLUGINS=a,no:b).",
)
@click.pass_context
def main(ctx: click.Context, strict_plugins: bool, plugin_names: tuple[str, ...]) -> None:
    """Check behavioral and mechanistic definitions of interpretability concepts against models.

    Exit codes: 0 success, 1 findings (e.g. validation errors), 2 usage, input or plugin error.
    """
    settings = ctx.ensure_object(Settings)
    settings.strict_plugins = strict_plugins
    settings.plugin_modules = tuple(name for name in plugin_names if not name.startswith("no:"))
    settings.disabled_plugins = tuple(name[3:].strip() for name in plugin_names if name.startswith("no:"))
    from_env = [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]
    require_plugin_modules([*settings.plugin_modules, *from_env])


for _param in verbosity_options():
    main.params.append(_param)


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
