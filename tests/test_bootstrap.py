"""``--bootstrap B`` (defcheck/engine/bootstrap.py): resamples of a probe's sequences from the per-sequence
partials streamed checkers keep, checked against what it stands in for: drawing the probe again (``--seeds K``).

The trained toy model (``builtin:toy-text``) has a previous-token head (1.1) whose membership changes between
probe seeds; the bootstrap of one seed must find the same noise there, and its standard errors must be the size
of the seed-to-seed standard deviations.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from test_stability import model, run, write_concept

import defcheck
from defcheck.diagnostics import DefcheckError
from defcheck.engine.bootstrap import WEIGHTS_ONLY, _draws, _joined, _taken, resample_run
from defcheck.engine.guard import CheckerGuard
from defcheck.report import Report
from defcheck.report.junit import render_junit
from defcheck.report.seeds import WEIGHTS_ONLY as SHOWN_WEIGHTS_ONLY
from defcheck.report.validate import check_report

CONCEPTS = ["previous_token_head", "induction_head"]


@cache
def toy_text() -> Any:
    return defcheck.load_model("builtin:toy-text")


@cache
def toy_reports() -> tuple[dict[str, Any], dict[str, Any]]:
    """toy-text with 200 resamples of seed 0, and with 10 probe seeds (shared by the tests below)."""
    boot = defcheck.check(toy_text(), concepts=CONCEPTS, bootstrap=200)
    seeds = defcheck.check(toy_text(), concepts=CONCEPTS, seeds=10)
    return json.loads(boot.to_json()), json.loads(seeds.to_json())


def _criteria(data: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {
        (concept, name, index): criterion
        for concept, entry in data["concepts"].items()
        for name, definition in entry["definitions"].items()
        for index, criterion in enumerate(definition["criteria"])
    }


@pytest.mark.slow
def test_bootstrap_standard_errors_match_the_seed_to_seed_spread_on_the_trained_toy_model():
    boot, seeds = toy_reports()
    compared = 0
    for key, criterion in _criteria(boot).items():
        if not criterion.get("sd"):
            continue
        spread = _criteria(seeds)[key]["sd"]
        ratios = [se / spread[unit] for unit, se in criterion["sd"].items() if se and spread.get(unit)]
        assert ratios, key
        # 10 seeds estimate an sd to about +-25%: the median over a criterion's units should be near 1
        assert 0.6 <= statistics.median(ratios) <= 1.6, (key, statistics.median(ratios))
        compared += 1
    assert compared >= 4  # attention patterns, copying, path ablation: every probe checker of the two concepts


@pytest.mark.slow
def test_the_bootstrap_finds_the_disagreements_the_seeds_find_unstable():
    boot, seeds = toy_reports()
    previous = boot["concepts"]["previous_token_head"]["overlap"]
    stability = seeds["concepts"]["previous_token_head"]["overlap"]["stability"]
    assert stability["unstable_disagreements"] == ["1.1"]  # the head at its cut-off (carries_previous, 1.5x chance)
    assert previous["bootstrap"]["within_noise"] == stability["unstable_disagreements"]
    assert "1 head on one side only is within noise" in previous["narrative"]
    for concept in CONCEPTS:
        low, high = boot["concepts"][concept]["overlap"]["bootstrap"]["jaccard"]
        spread = seeds["concepts"][concept]["overlap"]["stability"]["jaccard"]
        assert low <= spread["min"] <= spread["max"] <= high  # the interval covers what the seeds found


@pytest.mark.slow
def test_margins_come_from_the_bootstrap_with_one_seed_and_from_the_seeds_with_several():
    boot, _ = toy_reports()
    assert boot["bootstrap"] == 200 and "seeds" not in boot
    criterion = boot["concepts"]["induction_head"]["definitions"]["prefix_matching_and_copying"]["criteria"][0]
    threshold = float(criterion["threshold"].split()[-1])
    for unit, margin in criterion["margins"].items():
        score, sd = criterion["scores"][unit], criterion["sd"][unit]
        if margin is not None:
            assert margin == pytest.approx((score - threshold) / sd, rel=1e-3, abs=1e-3)
            assert (margin > 0) == (unit in criterion["passed"])
    weights = boot["concepts"]["induction_head"]["definitions"]["k_composition"]["criteria"][0]
    assert weights["sd"] is None and weights["margins"] is None  # no probe: no sampling noise
    fixed = boot["concepts"]["induction_head"]["overlap"]["bootstrap"]["fixed"]
    assert "k_composition.composition (weights only)" in fixed


def test_the_same_seed_gives_the_same_bytes_and_the_document_validates(tmp_path):
    path = write_concept(tmp_path)
    first = defcheck.check(model(), paths=[path], include_builtin=False, bootstrap=30, name="induction")
    second = defcheck.check(model(), paths=[path], include_builtin=False, bootstrap=30, name="induction")
    assert first.to_json() == second.to_json()
    check_report(json.loads(first.to_json()))
    data = first.data
    noisy = data["concepts"]["stab"]["definitions"]["noisy"]["criteria"][0]
    exact = data["concepts"]["stab"]["definitions"]["exact"]["criteria"][0]
    assert noisy["sd"]["0.0"] > 0  # chance matches on random tokens: the score varies between resamples
    assert exact["margins"]["1.0"] is None  # exact on every sequence: no spread, no margin (not an infinite one)
    assert data["concepts"]["stab"]["overlap"]["bootstrap"]["jaccard"] is not None
    other = defcheck.check(model(), paths=[path], include_builtin=False, bootstrap=30, seed=1, name="induction")
    assert other.data["concepts"]["stab"]["definitions"]["noisy"]["criteria"][0]["sd"] != noisy["sd"]


def test_a_plain_run_has_no_bootstrap_fields(tmp_path):
    data = defcheck.check(model(), paths=[write_concept(tmp_path)], include_builtin=False, name="induction").data
    assert "bootstrap" not in data
    criterion = data["concepts"]["stab"]["definitions"]["noisy"]["criteria"][0]
    assert "sd" not in criterion and "margins" not in criterion


def test_every_format_says_how_the_margins_were_measured(tmp_path):
    report = defcheck.check(model(), paths=[write_concept(tmp_path)], include_builtin=False, bootstrap=20)
    scale = "bootstrap standard errors over 20 resamples of the probes' sequences"
    markdown = report.to_markdown()
    assert f"Margins in {scale}" in markdown
    assert "Jaccard 95% interval over 20 resamples of the probes' sequences" in markdown
    console = Console(record=True, width=200)
    report.to_terminal(console)
    assert scale in console.export_text()
    html = report.to_html()
    assert "Jaccard 95% interval over 20 resamples" in html and "passes by" in html
    again = Report.from_json(report.to_json())  # read back and rendered again
    assert again.to_markdown() == markdown
    junit = render_junit([report])
    assert re.search(r"attention_pattern: \S+ (passes|fails) by \S+ sd", junit)  # a passing definition's margins


def test_partials_are_cut_per_sequence_along_their_axis():
    per_sequence = torch.arange(2 * 3 * 2).reshape(2, 3, 2)  # [layers, sequences, heads]
    flag = torch.tensor([True, False])  # per layer: the same in every batch
    partials = [{"score": per_sequence[:, :2], "flag": flag}, {"score": per_sequence[:, 2:], "flag": flag}]
    joined = _joined(partials, 1)
    assert torch.equal(joined["score"], per_sequence) and joined["flag"] is flag
    taken = _taken(joined, 1, torch.tensor([2, 2, 0]))
    assert torch.equal(taken["score"], per_sequence[:, [2, 2, 0]]) and taken["flag"] is flag
    pair = _taken(_joined([(per_sequence,), (per_sequence,)], 1), 1, torch.tensor([5]))
    assert isinstance(pair, tuple) and torch.equal(pair[0], per_sequence[:, [2]])


def test_resamples_keep_the_number_of_sequences_per_repeat_length():
    strata = torch.tensor([8, 8, 8, 13, 13, 21])
    draws = _draws(0, "repeated_random_tokens(...)", strata, 50)
    assert draws.shape == (50, 6)
    for row in draws:
        assert torch.equal(strata[row], strata)  # position i keeps a sequence of its own length
    assert len({tuple(row.tolist()) for row in draws}) > 40  # and the draws differ
    assert torch.equal(draws, _draws(0, "repeated_random_tokens(...)", strata, 50))  # deterministic


def test_a_checker_that_cannot_score_a_resample_keeps_its_scores_and_says_why(tmp_path):

    result, _ = run(write_concept(tmp_path), 1)
    criterion = result.definitions["stab.noisy"].criteria[0]
    assert criterion.resample is not None  # attention_pattern declares its sequence axis

    def fragile(context: Any, partials: list[Any]) -> Any:
        raise ValueError("no target left")

    criterion.resample = dataclasses.replace(criterion.resample, finish=fragile)
    boot = resample_run(result, 5, CheckerGuard(model(), None))
    assert boot.fixed["stab.noisy"] == ["a resample could not be scored (ValueError: no target left)"]
    assert boot.scores["stab.noisy"] == [None]
    assert torch.equal(boot.members["stab.noisy"][3], criterion.passed.flatten())  # kept as in the run
    assert boot.scores["stab.exact"][0] is not None and boot.scores["stab.exact"][0].shape[0] == 5


def test_bootstrap_is_validated_where_it_is_given(tmp_path, cli):
    with pytest.raises(DefcheckError, match="bootstrap= must be an integer from 0 to 10000"):
        defcheck.check(model(), bootstrap=-1)
    with pytest.raises(DefcheckError, match="bootstrap="):
        defcheck.check(model(), bootstrap=True)
    code, _, err = cli("run", "--no-config", "--bootstrap", "10001")
    assert code == 2 and "--bootstrap" in err
    project = tmp_path / "defcheck.yaml"
    project.write_text("bootstrap: -3\n", encoding="utf-8")
    code, out, err = cli("run", "--config", str(project))
    assert code == 2 and "bootstrap" in out + err


def test_the_weights_only_reason_is_the_one_the_reports_leave_out():
    assert WEIGHTS_ONLY == SHOWN_WEIGHTS_ONLY


def test_architecture_names_the_module():
    text = (Path(__file__).parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "bootstrap.py" in text
