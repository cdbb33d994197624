"""The ``defcheck`` command line: a thin layer over the library, one module per command.

Each command is a module of :mod:`defcheck.cli.commands`, added here to the group of :mod:`defcheck.cli.app`; no
command imports the group.
"""

from __future__ import annotations

from defcheck.cli.app import main, run_cli
from defcheck.cli.commands import checkers, new, plugins, report, run, schema, sweep, validate
from defcheck.cli.commands import list as list_command

for _command in (
    validate.validate,
    list_command.list_,
    schema.schema,
    plugins.plugins,
    checkers.checkers,
    new.new,
    run.run,
    report.report,
    sweep.sweep,
):
    main.add_command(_command)

__all__ = ["main", "run_cli"]
