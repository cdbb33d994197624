"""Start-up time of the commands that need no model: wall time of ``defcheck --help`` and ``defcheck validate`` (the
built-in definitions), with a few neighbours for scale, as the median of several fresh processes.

Not a test (tests don't time); the figures go into docs/performance.md (section "Start-up"). Targets of issue 13 on
the project's 2-core machine: ``--help`` <= 0.3 s, ``validate`` <= 0.8 s (0.1 took ~1.5-2 s, most of it importing
torch and TransformerLens). The rows "... as 0.1 did" import those two first and then run the same command, so
the difference is what the lazy imports save on this machine, under its load at the time.

    python benchmarks/bench_startup.py [--repeat 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
CONSOLE = str(Path(sys.executable).with_name("defcheck"))
HEAVY = "import torch, transformer_lens; "
RUN_CLI = "import sys; from defcheck.cli import main; sys.argv = ['defcheck', *{args!r}]; main()"

# (label, argv, target in seconds or None)
CASES: list[tuple[str, list[str], float | None]] = [
    ("python -c pass (the interpreter alone)", [PYTHON, "-c", "pass"], None),
    ("python -c 'import defcheck'", [PYTHON, "-c", "import defcheck"], None),
    ("defcheck --help", [CONSOLE, "--help"], 0.3),
    ("defcheck --version", [CONSOLE, "--version"], 0.3),
    ("defcheck validate (built-ins)", [CONSOLE, "validate"], 0.8),
    ("defcheck list", [CONSOLE, "list"], None),
    ("defcheck checkers", [CONSOLE, "checkers"], None),
    ("python -c 'import torch, transformer_lens'", [PYTHON, "-c", HEAVY.strip("; ")], None),
    (
        "defcheck --help, torch + TL imported first, as 0.1 did",
        [PYTHON, "-c", HEAVY + RUN_CLI.format(args=["--help"])],
        None,
    ),
    (
        "defcheck validate, torch + TL imported first, as 0.1 did",
        [PYTHON, "-c", HEAVY + RUN_CLI.format(args=["validate"])],
        None,
    ),
]


def wall_time(argv: list[str]) -> float:
    """Seconds from spawn to exit of one fresh process (output discarded); it must succeed."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed


def measure(repeat: int) -> list[dict[str, object]]:
    rows = []
    for label, argv, target in CASES:
        wall_time(argv)  # warm the file cache and the bytecode once, unmeasured
        times = [wall_time(argv) for _ in range(repeat)]
        rows.append(
            {
                "command": label,
                "median_s": statistics.median(times),
                "min_s": min(times),
                "max_s": max(times),
                "target_s": target,
            }
        )
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| command | median (s) | min (s) | max (s) | target (s) |", "|---|---:|---:|---:|---|"]
    for row in rows:
        target = row["target_s"]
        verdict = "" if target is None else f"<= {target}: {'met' if row['median_s'] <= target else 'MISSED'}"  # type: ignore[operator]
        lines.append(
            f"| {row['command']} | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['max_s']:.3f} | {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per command (median of these)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    options = parser.parse_args()
    load_before = os.getloadavg()
    rows = measure(max(options.repeat, 1))
    load_after = os.getloadavg()
    print(f"# Start-up: median of {options.repeat} fresh processes per command")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average (1 min) {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after\n"
    )
    print(table(rows))
    if options.json:
        payload = {"repeat": options.repeat, "load": [load_before[0], load_after[0]], "rows": rows}
        options.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
