"""The overlap metrics: Jaccard, precision and recall of two sets of units, and Spearman's rank correlation of
two score tensors. A metric that is undefined is ``None`` with the reason (docs/report-format.md)."""

from __future__ import annotations

import math
from typing import Any

import torch

MIN_SPEARMAN_UNITS = 3


def jaccard(a: set[Any], b: set[Any]) -> tuple[float | None, str | None]:
    """``|a & b| / |a | b|``; ``None`` with a reason when both sets are empty (nothing to agree on)."""
    union = a | b
    if not union:
        return None, "both sets are empty"
    return len(a & b) / len(union), None


def precision_recall(behavioral: set[str], mechanistic: set[str]) -> tuple[float | None, float | None, dict[str, str]]:
    """Precision and recall of the behavioral set against the mechanistic one, with reasons for ``None``."""
    both = len(behavioral & mechanistic)
    undefined: dict[str, str] = {}
    precision = recall = None
    if behavioral:
        precision = both / len(behavioral)
    else:
        undefined["precision"] = "no unit is a behavioral member"
    if mechanistic:
        recall = both / len(mechanistic)
    else:
        undefined["recall"] = "no unit is a mechanistic member"
    return precision, recall, undefined


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-d tensor, ties given the average of the ranks they span (as scipy's ``rankdata``)."""
    x = values.double().flatten()
    n = x.numel()
    if n == 0:
        return x
    order = torch.argsort(x, stable=True)
    ordered = x[order]
    starts = torch.ones(n, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    group = torch.cumsum(starts.long(), 0) - 1
    positions = torch.arange(1, n + 1, dtype=torch.float64)
    groups = int(group[-1]) + 1
    sums = torch.zeros(groups, dtype=torch.float64).index_add_(0, group, positions)
    counts = torch.bincount(group, minlength=groups).double()
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = (sums / counts)[group]
    return ranks


def spearman(x: torch.Tensor, y: torch.Tensor) -> tuple[float | None, int, str | None]:
    """Spearman's rank correlation over the units where both scores are defined (not NaN).

    Returns ``(rho, units used, reason)``; ``rho`` is ``None`` with a reason when fewer than 3 units have both
    scores or either score is constant over them.
    """
    a, b = x.double().flatten(), y.double().flatten()
    defined = ~torch.isnan(a) & ~torch.isnan(b)
    count = int(defined.sum())
    if count < MIN_SPEARMAN_UNITS:
        return None, count, f"only {count} unit(s) have both scores defined (needs {MIN_SPEARMAN_UNITS})"
    ra, rb = average_ranks(a[defined]), average_ranks(b[defined])
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if norm == 0.0:
        return None, count, "one of the scores is constant over the units where both are defined"
    return max(-1.0, min(1.0, float((ra * rb).sum()) / norm)), count, None
