"""Progress for long work: a bar on a terminal; nothing in CI, in a pipe, or with ``--quiet``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from defcheck.engine.runner import Progress as ProgressCallback
from defcheck.report.escaping import printable


def wants_progress(quiet: bool) -> bool:
    """A bar only where a person watches: stderr is a terminal, not CI, not quiet."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress_bar(enabled: bool, label: str = "checking") -> Iterator[ProgressCallback | None]:
    """Yield a callback ``(step, done, total)`` that drives a bar, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    columns = (TextColumn(f"{label} {{task.description}}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=escape(printable(step)), completed=done, total=total)

        yield update
