"""Chance levels (issue 18, item 1): what a null unit scores, declared by each checker (``Checker.chance``), checked
against brute-force simulations of null units; carried by the report beside the threshold; and the run's lint that
warns when a threshold admits a unit scoring chance."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from defcheck_plugins.attention import PatternParams, chance_attention_pattern, pattern_scores, target_mask
from defcheck_plugins.attention import aggregate as aggregate_scores
from defcheck_plugins.circuits import (
    CompositionParams,
    chance_composition,
    eigenvalue_ratio,
    random_composition_scores,
)
from defcheck_plugins.constructed import induction
from defcheck_plugins.probes import RepeatedParams, build_repeated

import defcheck
from defcheck.engine.chance import admits_chance, chance_level
from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.hooks.declarations import Checker
from defcheck.hooks.manager import load_plugins
from defcheck.language.thresholds import parse_threshold
from defcheck.models.view import TokenSpace
from defcheck.report import Report

MODEL = "builtin:toy-induction@1000"
BELOW_CHANCE = """\
concept: loose_previous
unit: attention_head
summary: A previous-token cut-off below what uniform attention scores.
definitions:
  loose:
    kind: behavioral
    source: A test of the chance lint
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 16, length: 16}
        threshold: ">= 0.01"
"""


def _within(simulated: torch.Tensor, declared: float, declared_error: float = 0.0, sigmas: float = 4.0) -> None:
    """``declared`` lies within ``sigmas`` combined standard errors of the simulation's mean."""
    error = math.hypot(float(simulated.std()) / math.sqrt(simulated.numel()), declared_error)
    assert abs(float(simulated.mean()) - declared) <= sigmas * error + 1e-9, (float(simulated.mean()), declared, error)


# -- attention_pattern: uniform attention --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "aggregate"),
    [("previous_token", "mean"), ("duplicate_token", "mean"), ("prefix_matching", "mean"), ("prefix_matching", "min")],
)
def test_attention_chance_matches_random_null_heads(pattern, aggregate):
    """Heads whose attention rows are random (Dirichlet(1) over the causal positions, unrelated to the tokens)
    score the uniform head's chance level on average."""
    tokens = TokenSpace(32, bos_token_id=0)
    view = SimpleNamespace(n_ctx=64, cfg=SimpleNamespace(attention_dir="causal"), tokens=tokens)
    probe = build_repeated(ProbeRequest(RepeatedParams(n=8, length=[5, 9]), tokens, seed=0, n_ctx=64))
    params = PatternParams(pattern=pattern, aggregate=aggregate)
    declared = chance_attention_pattern(CheckContext(view, params, probe=probe))
    assert declared is not None and 0 < declared < 1
    size, heads = probe.tokens.shape[-1], 400
    generator = torch.Generator().manual_seed(7)
    rows = -torch.log(torch.rand(1, probe.tokens.shape[0], heads, size, size, generator=generator))  # Gamma(1)
    rows = rows * torch.ones(size, size).tril()  # causal
    patterns = rows / rows.sum(-1, keepdim=True)
    targets = target_mask(pattern, probe.tokens, probe.bos)
    per_sequence = pattern_scores(patterns, targets, bos=probe.bos, exclude_bos=False, exclude_current_token=False)
    scores = aggregate_scores(per_sequence, probe, aggregate).flatten()  # one score per simulated head
    if aggregate == "mean":
        _within(scores, declared)
    else:  # the lowest per-length mean of noisy heads sits a little below the uniform one: chance is its ceiling
        assert float(scores.mean()) <= declared + 1e-6
        assert float(scores.mean()) >= 0.8 * declared


def test_a_uniform_head_scores_exactly_the_reported_chance():
    """On the hand-built induction model, 0.1 and 1.1 attend uniformly (W_Q = W_K = 0): their attention_pattern
    score is the chance level the report carries."""
    report = defcheck.check(induction(), definitions=["previous_token_head.attends_previous"])
    criterion = report.data["concepts"]["previous_token_head"]["definitions"]["attends_previous"]["criteria"][0]
    assert criterion["chance"] is not None
    for head in ("0.1", "1.1"):
        assert criterion["scores"][head] == pytest.approx(criterion["chance"], rel=1e-4)
    assert criterion["scores"]["0.0"] > 10 * criterion["chance"]  # the previous-token head is far above it


def test_relative_to_chance_has_chance_one():
    params = PatternParams(pattern="prefix_matching", relative_to="chance")
    assert chance_attention_pattern(CheckContext(SimpleNamespace(), params)) == 1.0


# -- composition and eigenvalues: random matrices --------------------------------------------------------------------


def _composition_context(d_model: int, d_head: int, members: torch.Tensor, **params: str) -> CheckContext:
    view = SimpleNamespace(n_layers=members.shape[0], n_heads=members.shape[1], d_model=d_model, d_head=d_head)
    return CheckContext(view, CompositionParams(**params), related={"partners": members})


def _uniform(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1


@pytest.mark.parametrize("partners", [1, 3])
def test_composition_chance_matches_random_matrices(partners):
    """Random head B against ``partners`` random earlier heads, the best one kept (``aggregate: max``): the mean
    over many draws matches the declared chance level, raw and against the baseline."""
    d_model, d_head, draws = 32, 4, 3000
    members = torch.zeros(2, 4, dtype=torch.bool)
    members[0, :partners] = True
    generator = torch.Generator().manual_seed(11)
    b = _uniform(generator, draws, d_model, d_head) @ _uniform(generator, draws, d_model, d_head).transpose(-1, -2)
    best = torch.full((draws,), -math.inf, dtype=torch.float64)
    for _ in range(partners):
        a = _uniform(generator, draws, d_model, d_head) @ _uniform(generator, draws, d_model, d_head).transpose(-1, -2)
        ratio = torch.linalg.matrix_norm(a @ b) / (torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b))
        best = torch.maximum(best, ratio)
    samples = random_composition_scores(d_model, d_head)
    declared_error = float(samples.std()) / math.sqrt(samples.numel())
    raw = chance_composition(_composition_context(d_model, d_head, members, baseline="none"))
    assert raw is not None
    _within(best, raw, declared_error)
    baseline = float(samples.mean())
    subtracted = chance_composition(_composition_context(d_model, d_head, members, baseline="subtract"))
    divided = chance_composition(_composition_context(d_model, d_head, members, baseline="divide"))
    assert subtracted == pytest.approx(raw - baseline) and divided == pytest.approx(raw / baseline)
    if partners == 1:
        assert subtracted == pytest.approx(0.0, abs=1e-12) and divided == pytest.approx(1.0)


def test_composition_without_an_earlier_member_has_no_chance_level():
    members = torch.zeros(2, 4, dtype=torch.bool)
    members[1, 0] = True  # only in the last layer: nobody composes with it
    assert chance_composition(_composition_context(32, 4, members)) is None


def test_eigenvalue_chance_zero_matches_random_circuits():
    """Random W_V W_O (and W_Q W_K^T): the mean of Re(sum lambda) / sum |lambda| is 0, as declared."""
    extensions = load_plugins()
    generator = torch.Generator().manual_seed(3)
    w_v = torch.randn(2000, 16, 4, generator=generator, dtype=torch.float64)
    w_o = torch.randn(2000, 4, 16, generator=generator, dtype=torch.float64)
    bound = torch.ones(2000, dtype=torch.float64)
    ratio, undefined = eigenvalue_ratio(w_o @ w_v, bound, 0.0)
    assert not undefined.any()
    for name in ("ov_eigenvalue_copying", "qk_eigenvalue"):
        declared = chance_level(extensions.checkers[name], CheckContext(SimpleNamespace(), None))
        assert declared == 0.0
        _within(ratio, declared)


# -- the contract -----------------------------------------------------------------------------------------------


def test_chance_level_accepts_numbers_and_uniform_tensors_and_never_raises():
    def checker(chance):
        return Checker("c", "behavior", lambda context: torch.zeros(1), chance=chance)

    context = CheckContext(SimpleNamespace(), None)
    assert chance_level(checker(lambda c: 0.25), context) == 0.25
    assert chance_level(checker(lambda c: torch.tensor(0.5)), context) == 0.5
    assert chance_level(checker(lambda c: torch.full((2, 3), 0.125)), context) == 0.125
    assert chance_level(checker(lambda c: torch.tensor([0.1, 0.2])), context) is None  # not one number
    assert chance_level(checker(lambda c: float("nan")), context) is None
    assert chance_level(checker(lambda c: None), context) is None
    assert chance_level(checker(lambda c: 1 / 0), context) is None
    assert chance_level(Checker("c", "behavior", lambda context: torch.zeros(1)), context) is None


@pytest.mark.parametrize(
    ("threshold", "chance", "admits"),
    [
        (">= 0.01", 0.1, True),
        (">= 0.1", 0.1, True),
        (">= 0.4", 0.1, False),
        ("> 0", 0.0, False),  # a strict cut-off at chance does not admit a unit that scores exactly chance
        ("> -0.1", 0.0, True),
        ("<= -0.5", 0.0, False),
        ("<= 0.5", 0.0, True),
        ("< 0", 0.0, False),
        ({"top_k": 3}, 0.5, False),
        ({"top_k": 3, "min": 0.2}, 0.5, True),
    ],
)
def test_a_threshold_admits_chance_by_its_direction(threshold, chance, admits):
    assert admits_chance(parse_threshold(threshold), chance) is admits
    assert admits_chance(parse_threshold(threshold), None) is False


def test_every_builtin_checker_documents_its_chance_level():
    extensions = load_plugins()
    builtin = {info.name for info in extensions.plugins if info.builtin}
    declared = [
        name
        for name, checker in extensions.checkers.items()
        if extensions.owner("checkers", name) in builtin and checker.chance is not None
    ]
    assert len(declared) >= 14
    for name in declared:
        assert extensions.checkers[name].chance.__doc__, f"{name}'s chance function has no docstring"


# -- reports and the lint ----------------------------------------------------------------------------------------


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_reports_carry_the_chance_level_beside_the_threshold(cli, here):
    code, out, _ = cli("run", "--no-config", "-m", MODEL, "--concept", "previous_token_head", "-f", "json")
    assert code == 0
    data = json.loads(out)
    criteria = [
        criterion
        for definition in data["concepts"]["previous_token_head"]["definitions"].values()
        for criterion in definition["criteria"]
    ]
    assert criteria and all("chance" in criterion for criterion in criteria)
    chances = {criterion["checker"]: criterion["chance"] for criterion in criteria}
    assert 0 < chances["qk_positional"] < 0.2
    report = Report.from_json(out)
    assert "(chance " in report.to_markdown()
    for criterion in criteria:  # a report written before chance levels reads back and renders without them
        del criterion["chance"]
    old = Report.from_json(json.dumps(data))
    assert "(chance " not in old.to_markdown()


def test_the_lint_warns_of_a_threshold_below_chance_at_its_line(cli, here):
    (here / "loose.yaml").write_text(BELOW_CHANCE, encoding="utf-8")
    code, _, err = cli("run", "--no-config", "-m", MODEL, "-d", "loose.yaml", "--concept", "loose_previous")
    assert code == 0
    lines = [line for line in err.splitlines() if "chance level" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("loose.yaml:12:") and "definitions.loose.all[0].threshold:" in lines[0]
    assert "warning: the threshold '>= 0.01'" in lines[0]


def test_the_builtin_definitions_raise_no_chance_warning(cli, here):
    code, _, err = cli("run", "--no-config", "-m", MODEL)
    assert code in (0, 1)
    assert "chance level" not in err, err
