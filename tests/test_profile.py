"""``defcheck run --profile``: where the time went, and the run's floor (defcheck/engine/floor.py)."""

from __future__ import annotations

import re

import torch

from defcheck.engine.floor import forward_floor
from defcheck.engine.probe_data import ProbeBatch


def test_profile_prints_the_floor_and_the_ratio(cli):
    code, _, err = cli(
        "run", "--no-config", "-m", "builtin:toy-induction", "--concept", "induction_head", "-q", "--profile"
    )
    assert code == 0, err
    assert "where the time went" in err and "model load" in err
    floors = re.findall(r"floor: forward pass of (\S+)\(", err)
    # induction_head's probes and those of its with: targets (previous-token and duplicate-token heads)
    assert sorted(set(floors)) == ["random_tokens", "repeated_random_tokens"]
    ratio = re.search(r"\(model load \+ total\) / floor\s*│\s*([0-9.]+)", err)
    assert ratio is not None and float(ratio.group(1)) >= 1.0  # the run cannot beat its own floor


def test_the_floor_is_one_pass_per_token_probe(random_view):
    tokens = torch.randint(1, 60, (6, 9), generator=torch.Generator().manual_seed(0))
    probes = {
        "a": ProbeBatch("a", {}, tokens),
        "none": ProbeBatch("none", {}, None),
    }
    seconds = forward_floor(random_view, probes, batch_size=2)
    assert list(seconds) == ["a"] and seconds["a"] > 0
