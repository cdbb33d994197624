"""How a behavioral score's error falls with the probe's size: the evidence for each built-in probe's ``n``.

For each shipped model and each ``n`` (sequences per repeat length), the whole built-in registry of transformer
units is run under ``--seeds`` probe seeds with every probe's ``n`` set to it. Per definition that reads a probe
(its scores depend on the seed), the table gives the seed-to-seed standard deviation of the units' scores (the
median over units and the largest), how many units' membership differs between seeds, and the gap of the
nearest unit to the threshold in those standard deviations. Weight-only definitions do not depend on the seed
and are left out.

    python scripts/probe_sizes.py                       # toy-induction, toy-mlp, toy-text; n = 8 .. 256
    python scripts/probe_sizes.py --models toy-mlp --sizes 32,256 --seeds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import write_registry_copies  # noqa: E402  (the benchmark's copy of the registry, n set)


def run(model: str, n: int, seeds: int) -> dict[str, dict[str, Any]]:
    """Per probe-reading definition: the scores and memberships ``[seeds, units]`` and the first threshold."""
    import torch

    from defcheck.models.loading import load_model
    from defcheck.session import RunConfig, Session

    folder = Path(tempfile.mkdtemp(prefix="defcheck-probe-sizes-"))
    write_registry_copies(folder, 1, n)
    view = load_model(f"builtin:{model}")
    runs: dict[str, dict[str, Any]] = {}
    for seed in range(seeds):
        config = RunConfig(definition_paths=(str(folder),), include_builtin=False, seed=seed)
        session = Session(config)
        result = session.evaluate(view)
        for key, outcome in result.definitions.items():
            if outcome.error or outcome.members is None:
                continue
            probed = [c for c in outcome.criteria if getattr(c, "probe", None) is not None]
            if not probed or probed[0].scores is None or probed[0].scores.values is None:
                continue
            values = probed[0].scores.values.float().flatten()
            if torch.isnan(values).all():
                continue
            entry = runs.setdefault(f"{key} ({outcome.kind})", {"scores": [], "members": [], "criterion": probed[0]})
            entry["scores"].append(values)
            entry["members"].append(outcome.members.flatten())
    for entry in runs.values():
        entry["scores"] = torch.stack(entry["scores"])
        entry["members"] = torch.stack(entry["members"])
    return runs


def threshold_value(criterion: Any) -> float | None:
    threshold = getattr(criterion, "threshold", None)
    value = getattr(threshold, "value", None)
    return float(value) if isinstance(value, int | float) else None


def summarize(entry: dict[str, Any]) -> tuple[float, float, int, int, float | None]:
    """Median and largest seed-to-seed sd over units, units whose membership changes, members (majority), and the
    nearest unit's distance to the threshold in its own sd."""
    import torch

    scores, members = entry["scores"], entry["members"]
    defined = ~torch.isnan(scores).any(0)
    sd = scores[:, defined].std(0)
    flips = int((members.any(0) & ~members.all(0)).sum())
    majority = int((members.float().mean(0) > 0.5).sum())
    threshold = threshold_value(entry["criterion"])
    nearest = None
    if threshold is not None and sd.numel():
        gaps = (scores[:, defined].mean(0) - threshold).abs() / sd.clamp_min(1e-6)
        nearest = float(gaps.min())
    median = float(sd.median()) if sd.numel() else float("nan")
    largest = float(sd.max()) if sd.numel() else float("nan")
    return median, largest, flips, majority, nearest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="toy-induction,toy-mlp,toy-text")
    parser.add_argument("--sizes", default="8,16,32,64,128,256")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    started = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# Probe sizes: seed-to-seed error of the behavioral scores ({args.seeds} seeds per size)\n")
    print(
        "| model | definition | n | sd, median unit | sd, largest | units that change membership | members | "
        "nearest unit to the threshold, in sd |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for n in sizes:
            for key, entry in sorted(run(model, n, args.seeds).items()):
                median, largest, flips, majority, nearest = summarize(entry)
                gap = "-" if nearest is None else f"{nearest:.1f}"
                print(f"| {model} | {key} | {n} | {median:.4f} | {largest:.4f} | {flips} | {majority} | {gap} |")
            sys.stdout.flush()
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
