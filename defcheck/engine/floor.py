"""The run's floor (``--profile``): what no way of checking the definitions can avoid on this model.

One forward pass per distinct token probe of the run, at the run's batch size, without the unembedding (the
pass stops at the final norm) and without any hook: the least compute that reads the probes at all. Measured
in the same process as the run, after it, so that the ratio of the run's time to its floor is a measurement
of one machine in one state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch

from defcheck.engine.probe_data import ProbeBatch
from defcheck.models.view import ModelView


def forward_floor(model: ModelView, probes: Mapping[str, ProbeBatch], batch_size: int | None) -> dict[str, float]:
    """Seconds of one plain forward pass (no hooks, no unembedding) per distinct token probe, by probe key."""
    seconds: dict[str, float] = {}
    with torch.inference_mode():
        for key, probe in probes.items():
            if probe.tokens is None or not probe.tokens.numel():
                continue
            started = time.perf_counter()
            for _ in model.run_batches(probe.tokens, (), batch_size, logits=False):
                pass
            seconds[key] = time.perf_counter() - started
    return seconds
