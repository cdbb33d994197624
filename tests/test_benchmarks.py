"""The benchmark script runs end to end and prints its tables (no timing assertions: tests don't time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_run.py"


@pytest.mark.slow
def test_quick_toy_run_prints_the_ratio_table(tmp_path):
    done = subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--quick", "--models", "toy", "--json", str(tmp_path / "rows.json")),
            *("--concept-models", "toy", "--concept-names", "previous_token_head,induction_head"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "## RATIOS" in out
    ratios = out.split("## RATIOS", 1)[1]
    for ours, other in (("defcheck-full", "peer"), ("defcheck-full", "naive"), ("defcheck-peer", "peer")):
        row = re.search(rf"^\| toy \| {ours} \| {other} \| ([0-9.]+) \| ([0-9.]+) \|", ratios, re.MULTILINE)
        assert row, f"no {ours}/{other} ratio row in:\n{ratios}"
        assert float(row.group(1)) > 0 and float(row.group(2)) >= 0
    # every method ran (none failed or was skipped on the toy model), and the scores agree
    table = out.split("## RATIOS", 1)[0]
    for method in ("defcheck-full", "defcheck-peer", "peer-detect", "peer-composition-K", "naive"):
        assert re.search(rf"^\| toy \| {method} \| [^|]+ \| [0-9.]+ \|", table, re.MULTILINE), method
    assert "naive vs detect_head attention scores" in out
    assert "## 2. Scaling" in out and "## 3. Composition" in out
    diffs = re.findall(r"^\| toy \| [KQ] \| .* \| ([0-9.e+-]+) \|$", out, re.MULTILINE)
    assert diffs and all(float(d) <= 1e-4 for d in diffs), diffs
    assert (tmp_path / "rows.json").is_file()
    # concept by concept, each in its own process, with the attention-head concepts together
    section = out.split("## 4. The whole registry, concept by concept", 1)[1]
    for label in ("previous_token_head", "induction_head", "all attention-head concepts"):
        assert re.search(rf"^\| toy \| {label} \| [0-9.]+ \|", section, re.MULTILINE), label
    assert "## Issue 16 targets" in out


def test_a_gpu_run_without_a_gpu_says_so_and_skips():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the benchmark runs there instead of skipping")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here" in done.stdout and "## 1." not in done.stdout


def test_the_performance_page_quotes_a_committed_run_unchanged():
    """docs/performance.md shows a real run's output: the one kept in benchmarks/results/, verbatim."""
    root = SCRIPT.parent.parent
    results = (root / "benchmarks" / "results" / "cpu-2cores.md").read_text()
    page = (root / "docs" / "performance.md").read_text()
    assert "## 1. defcheck vs the peer" in results and "## RATIOS" in results
    assert results.strip() in page
