"""What ``defcheck sweep`` prints: each failed checkpoint as it is settled, and the answer at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from defcheck.cli.output import stderr_console


def on_result(checkpoint: Any, status: str, detail: str | None) -> None:
    """A checkpoint is settled: a failed one is one line on stderr, at once."""
    if status == "failed":
        message = f"error: step {checkpoint.step} ({checkpoint.reference}): {detail}"
        stderr_console().print(message, style="red", markup=False)


def print_outcome(console: Console, outcome: Any, no_plots: bool) -> None:
    """The first step at which each definition admits a unit, the summary's text, and what was done."""
    from defcheck.sweep.plots import matplotlib_missing

    summary = outcome.summary
    table = Table(title="first step at which each definition admits a unit", title_justify="left")
    for column in ("concept", "definition", "kind", f"first {summary['step_unit']}", "members then"):
        table.add_column(column, overflow="fold")
    for record in summary["definitions"].values():
        first = record["first_step"]
        table.add_row(
            record["concept"],
            record["definition"],
            record["kind"],
            "never" if first is None else str(first),
            ", ".join(record["first_members"]) or "—",
        )
    console.print(table)
    console.print(summary["summary"], markup=False)
    missing = None if no_plots else matplotlib_missing()
    if missing:
        console.print(f"no plots: {missing}", style="yellow", markup=False)
    ran, skipped = len(outcome.ran), len(outcome.skipped)
    console.print(
        f"{ran} checkpoint(s) checked, {skipped} skipped (valid reports found), {len(outcome.failed)} failed, "
        f"in {outcome.seconds:.1f} s; wrote {outcome.out / 'summary.json'} and {outcome.out / 'summary.html'}",
        markup=False,
    )
