"""Tests of the overlap analysis (defcheck/engine/overlap.py) on hand-built results with known scores."""

from __future__ import annotations

import dataclasses
import math
import random
from types import SimpleNamespace

import pytest
import torch

from defcheck.engine.overlap import (
    FACTORS,
    analyze,
    average_ranks,
    concept_overlap,
    definition_status,
    jaccard,
    precision_recall,
    spearman,
)
from defcheck.engine.runner import CriterionResult, DefinitionResult, RunResult
from defcheck.engine.scores import Scores
from defcheck.engine.units import Units
from defcheck.language.thresholds import parse_threshold
from defcheck.models.view import ModelView

NAN = float("nan")
NAMES = ["0.0", "0.1", "0.2", "0.3", "1.0", "1.1", "1.2", "1.3"]
NO_PARTNER = "no earlier member of previous_token_head.attends_previous"


def hand_view(layers: int = 2, heads: int = 4) -> ModelView:
    """A ModelView over a stand-in model that has only a config (enough for reports)."""
    cfg = SimpleNamespace(n_layers=layers, n_heads=heads)
    return ModelView(SimpleNamespace(cfg=cfg), name="hand")


def criterion(
    checker, values=None, threshold=">= 0.5", *, undefined=None, not_applicable=None, error=None, evidence=None
):
    rule = parse_threshold(threshold)
    if error is not None:
        return CriterionResult(checker, rule, None, error=error)
    if not_applicable is not None:
        scores = Scores.inapplicable((2, 4), not_applicable)
    else:
        scores = Scores(torch.tensor(values, dtype=torch.float32), dict(undefined or {}), dict(evidence or {}))
    return CriterionResult(checker, rule, None, scores=scores, passed=rule.select(scores.values))


def definition(definition_id, kind, *criteria, combinator="all"):
    result = DefinitionResult(definition_id, kind, combinator, list(criteria))
    errors = [c.error for c in criteria if c.error]
    if errors:
        result.error = "; ".join(errors)
    else:
        stacked = torch.stack([c.passed for c in criteria])
        result.members = stacked.all(0) if combinator == "all" else stacked.any(0)
    return result


HEADS = ("head", "heads")  # the attention_head kind's nouns


def head_units(layers: int = 2, heads: int = 4) -> Units:
    """The attention_head units of a hand-built run, with the nouns its unit kind gives them."""
    names = tuple(f"{layer}.{head}" for layer in range(layers) for head in range(heads))
    rows, columns = tuple(map(str, range(layers))), tuple(map(str, range(heads)))
    return Units("attention_head", (layers, heads), names, rows, columns, ("layers", "heads"), *HEADS)


def run_of(*results, seed=0):
    concepts = {r.id.partition(".")[0] for r in results}
    return RunResult(hand_view(), seed, {r.id: r for r in results}, {}, units=dict.fromkeys(concepts, head_units()))


PREFIX = [[0.1, 0.5, 0.2, 0.9], [0.45, 0.0, 0.6, 0.3]]
COMPOSITION = [[NAN, NAN, NAN, NAN], [0.2, 0.01, 0.3, 0.5]]
OV = [[0.9, 0.9, 0.9, 0.9], [0.8, 0.9, -0.5, 0.7]]


def induction_results():
    """Behavioral: 0.1 0.3 1.0 1.2. Mechanistic: 1.0 1.3 (1.1 fails composition, 1.2 fails OV, layer 0 has
    no composition score)."""
    prefix = definition("induction_head.prefix", "behavioral", criterion("attention_pattern", PREFIX, ">= 0.4"))
    kcomp = definition(
        "induction_head.kcomp",
        "mechanistic",
        criterion("composition", COMPOSITION, ">= 0.05", undefined={u: NO_PARTNER for u in NAMES[:4]}),
        criterion("ov_eigenvalue_copying", OV, ">= 0.5"),
    )
    return prefix, kcomp


@pytest.fixture
def induction():
    return analyze(run_of(*induction_results()))["induction_head"]


def test_sets_and_metrics(induction):
    union = induction.union
    assert union.behavioral == ["prefix"] and union.mechanistic == ["kcomp"]
    assert union.both == ["1.0"]
    assert union.behavioral_only == ["0.1", "0.3", "1.2"]
    assert union.mechanistic_only == ["1.3"]
    assert union.neither_count == 3
    assert union.jaccard == pytest.approx(1 / 5)
    assert union.precision == pytest.approx(1 / 4)
    assert union.recall == pytest.approx(1 / 2)
    # over layer 1 only (layer 0 has no composition score): ranks [3,1,4,2] vs [2,1,3,4] -> 1 - 6*6/(4*15)
    assert union.spearman == pytest.approx(0.4)
    assert union.spearman_units == 4
    assert union.undefined == {}
    assert len(induction.pairs) == 1
    assert induction.pairs[0].to_dict() == union.to_dict()
    assert induction.note is None and induction.excluded == {}


def test_divergences_name_the_failed_criterion(induction):
    assert induction.divergences == {
        "0.1": f"behaves like one but fails kcomp (composition undefined: {NO_PARTNER})",
        "0.3": f"behaves like one but fails kcomp (composition undefined: {NO_PARTNER})",
        "1.2": "behaves like one but fails kcomp (ov_eigenvalue_copying -0.5, needs >= 0.5)",
        "1.3": "is built like one but fails prefix (attention_pattern 0.3, needs >= 0.4)",
    }
    # the mechanistic side of layer 0 rests on an undefined composition score
    assert list(induction.undetermined) == ["0.0", "0.1", "0.2", "0.3"]
    assert induction.undetermined["0.2"] == f"mechanistic kcomp: composition undefined: {NO_PARTNER}"


def test_summary_sentences(induction):
    summary = induction.narrative
    assert summary.startswith("1 head is an induction head in both senses (1.0).")
    assert "1.2 behaves like one but fails kcomp (ov_eigenvalue_copying -0.5, needs >= 0.5)" in summary
    assert f"0.1 behaves like one but fails kcomp (composition undefined: {NO_PARTNER})" in summary
    assert "1.3 is built like one but fails prefix (attention_pattern 0.3, needs >= 0.4)." in summary
    assert "The other 3 heads are neither." in summary
    assert "Jaccard 0.2. With thresholds scaled by 0.75-1.25, it ranges from 0 to 0.4." in summary
    assert "rank correlation is 0.4 over 4 heads" in summary


def test_sensitivity_rows(induction):
    rows = {row.factor: row for row in induction.sensitivity}
    assert list(rows) == list(FACTORS)
    assert rows[1.0].jaccard == pytest.approx(0.2)
    assert (rows[1.0].behavioral, rows[1.0].mechanistic, rows[1.0].both) == (4, 2, 1)
    # 0.75: prefix >= 0.3 adds 1.3; kcomp (>= 0.0375, >= 0.375) stays {1.0, 1.3}
    assert rows[0.75].jaccard == pytest.approx(2 / 5)
    assert rows[0.75].jaccard_behavioral_scaled == pytest.approx(2 / 5)
    assert rows[0.75].jaccard_mechanistic_scaled == pytest.approx(1 / 5)
    assert (rows[0.75].behavioral, rows[0.75].mechanistic, rows[0.75].both) == (5, 2, 2)
    # 1.25: prefix >= 0.5 loses 1.0, so nothing is in both
    assert rows[1.25].jaccard == 0.0
    assert rows[1.25].jaccard_mechanistic_scaled == pytest.approx(1 / 5)
    assert rows[0.9].jaccard == rows[1.1].jaccard == pytest.approx(0.2)
    assert rows[0.75].thresholds == {"prefix": [">= 0.3"], "kcomp": [">= 0.0375", ">= 0.375"]}


def test_to_dict_shape(induction):
    data = induction.to_dict()
    for key in (
        "both",
        "behavioral_only",
        "mechanistic_only",
        "neither_count",
        "jaccard",
        "precision",
        "recall",
        "spearman",
        "pairs",
        "sensitivity",
        "divergences",
        "undetermined",
        "excluded",
        "undefined",
    ):
        assert key in data
    assert data["sensitivity"][0]["factor"] == 0.75


def test_empty_sets_give_null_metrics_with_reasons():
    zero = [[0.0] * 4, [0.0] * 4]
    results = {
        "b": definition("c.b", "behavioral", criterion("x", zero, "> 1")),
        "m": definition("c.m", "mechanistic", criterion("y", zero, "> 1")),
    }
    analysis = concept_overlap("copying", results, NAMES, nouns=HEADS)
    union = analysis.union
    assert union.both == union.behavioral_only == union.mechanistic_only == []
    assert union.neither_count == 8
    assert union.jaccard is None and union.precision is None and union.recall is None
    assert union.spearman is None  # constant scores
    assert union.undefined == {
        "jaccard": "both sets are empty",
        "precision": "no unit is a behavioral member",
        "recall": "no unit is a mechanistic member",
        "spearman": "one of the scores is constant over the units where both are defined",
    }
    text = analysis.narrative
    assert text.startswith("No head meets both the behavioral and the mechanistic definitions of copying.")
    assert "Jaccard is undefined (both sets are empty)" in text
    assert "None of the 8 heads is admitted by either kind." in text
    assert all(row.jaccard is None for row in analysis.sensitivity)


def test_several_definitions_errored_and_not_applicable():
    prefix, kcomp = induction_results()
    other = definition(
        "induction_head.copying",
        "behavioral",
        criterion("successor_logits", not_applicable="no ordinal tokens"),
        criterion("copying", [[1.0, 0, 0, 0], [0, 0, 0, 1.0]], "> 0.5"),
        combinator="any",
    )
    broken = definition(
        "induction_head.path", "mechanistic", criterion("path_ablation", error="checker 'path_ablation' failed: boom")
    )
    inapplicable = definition(
        "induction_head.ordinal",
        "mechanistic",
        criterion("ov_successor", not_applicable="the model has no tokenizer."),
        criterion("ov_eigenvalue_copying", OV, ">= 0.5"),
    )
    analysis = analyze(run_of(prefix, kcomp, other, broken, inapplicable))["induction_head"]
    assert definition_status(other) == ("ok", None)
    assert definition_status(broken) == ("errored", "checker 'path_ablation' failed: boom")
    assert definition_status(inapplicable) == ("not_applicable", "the model has no tokenizer.")
    assert analysis.excluded == {
        "ordinal": "not applicable: the model has no tokenizer.",
        "path": "errored: checker 'path_ablation' failed: boom",
    }
    union = analysis.union
    assert union.behavioral == ["copying", "prefix"] and union.mechanistic == ["kcomp"]
    assert union.behavioral_only == ["0.0", "0.1", "0.3", "1.2"]
    assert union.both == ["1.0", "1.3"]
    assert union.spearman is None and "several definitions" in union.undefined["spearman"]
    assert [(p.behavioral, p.mechanistic) for p in analysis.pairs] == [
        (["copying"], ["kcomp"]),
        (["prefix"], ["kcomp"]),
    ]
    assert analysis.pairs[0].both == ["1.3"]
    # a unit admitted by one of several behavioral definitions says which
    assert analysis.divergences["0.0"].startswith("behaves like one (copying) but fails kcomp")
    # a criterion that does not apply at all does not leave every unit of an `any` definition undetermined
    assert "1.1" not in analysis.undetermined
    assert analysis.undetermined["0.2"].startswith("mechanistic kcomp: composition undefined")
    assert "ordinal is left out: not applicable: the model has no tokenizer." in analysis.narrative
    assert "path is left out: errored: checker 'path_ablation' failed: boom." in analysis.narrative
    assert "Jaccard by pair: copying x kcomp 0.333; prefix x kcomp 0.2." in analysis.narrative


def test_any_definition_reports_every_failed_criterion():
    any_def = definition(
        "c.m",
        "mechanistic",
        criterion("a", [[0.1] * 4, [0.1] * 4], ">= 0.5"),
        criterion("a", [[0.2] * 4, [NAN] * 4], ">= 0.5", undefined={u: "undefined: 0/0" for u in NAMES[4:]}),
        combinator="any",
    )
    behavioral = definition("c.b", "behavioral", criterion("b", [[1.0] * 4, [1.0] * 4], ">= 0.5"))
    analysis = concept_overlap("c", {"b": behavioral, "m": any_def}, NAMES, nouns=HEADS)
    assert analysis.divergences["0.0"] == (
        "behaves like one but fails m (a (criterion 1) 0.1, needs >= 0.5; a (criterion 2) 0.2, needs >= 0.5)"
    )
    assert analysis.divergences["1.0"] == (
        "behaves like one but fails m (a (criterion 1) 0.1, needs >= 0.5; a (criterion 2) undefined: 0/0)"
    )
    assert list(analysis.undetermined) == NAMES[4:]


def test_one_kind_only_has_no_overlap():
    prefix, _ = induction_results()
    analysis = analyze(run_of(prefix))["induction_head"]
    assert analysis.union is None
    assert analysis.note == "No overlap: it has no mechanistic definition."
    assert analysis.narrative == (
        "No overlap: it has no mechanistic definition. prefix (behavioral) admits 4 heads (0.1, 0.3, 1.0, 1.2)."
    )
    overlap = analysis.to_dict()  # an empty overlap with its reason, never None
    assert overlap["reason"] == analysis.note and overlap["narrative"] == analysis.narrative
    assert (overlap["behavioral"], overlap["mechanistic"]) == (["prefix"], [])
    assert overlap["both"] == overlap["behavioral_only"] == overlap["mechanistic_only"] == []
    assert overlap["neither_count"] == 0 and overlap["pairs"] == overlap["sensitivity"] == []
    assert overlap["jaccard"] is None and overlap["precision"] is None and overlap["spearman"] is None
    assert overlap["undefined"] == dict.fromkeys(
        ("jaccard", "precision", "recall", "spearman"), "No overlap: it has no mechanistic definition"
    )


def test_nouns_come_from_the_units():
    """A plugin's unit kind names its units; a run without unit kinds says "unit"."""
    prefix, kcomp = induction_results()
    run = run_of(prefix, kcomp)
    run.units["induction_head"] = dataclasses.replace(run.units["induction_head"], singular="cell", plural="cells")
    text = analyze(run)["induction_head"].narrative
    assert text.startswith("1 cell meets both the behavioral and the mechanistic definitions of induction head")
    assert "over 4 cells" in text and "The other 3 cells are neither." in text and " heads" not in text
    bare = RunResult(hand_view(), 0, {r.id: r for r in (prefix, kcomp)}, {})
    assert "The other 3 units are neither." in analyze(bare)["induction_head"].narrative


def test_all_of_one_kind_errored_has_no_overlap():
    prefix, _ = induction_results()
    broken = definition("induction_head.k", "mechanistic", criterion("composition", error="checker failed: boom."))
    analysis = analyze(run_of(prefix, broken))["induction_head"]
    assert analysis.union is None
    assert (
        analysis.note == "No overlap: no mechanistic definition could be evaluated (k errored: checker failed: boom)."
    )
    assert "k (mechanistic) errored: checker failed: boom." in analysis.narrative


def test_top_k_sensitivity_scales_k():
    b = definition("c.b", "behavioral", criterion("x", [[8, 7, 6, 5], [4, 3, 2, 1]], {"top_k": 4}))
    m = definition("c.m", "mechanistic", criterion("y", [[8, 7, 6, 5], [4, 3, 2, 1]], {"top_k": 4}))
    rows = {row.factor: row for row in concept_overlap("c", {"b": b, "m": m}, NAMES, nouns=HEADS).sensitivity}
    assert rows[0.75].behavioral == 3 and rows[1.25].mechanistic == 5
    assert all(row.jaccard == 1.0 for row in rows.values())
    assert rows[1.25].thresholds["b"] == ["top 5"]


def test_many_divergent_units_are_listed_briefly():
    view = hand_view(4, 4)
    names = view.unit_names()
    ones = torch.ones(4, 4)
    rule = parse_threshold(">= 0.5")
    b = DefinitionResult(
        "c.b", "behavioral", "all", [CriterionResult("x", rule, None, Scores(ones), rule.select(ones))]
    )
    b.members = rule.select(ones)
    zeros = torch.zeros(4, 4)
    m = DefinitionResult(
        "c.m", "mechanistic", "all", [CriterionResult("y", rule, None, Scores(zeros), rule.select(zeros))]
    )
    m.members = rule.select(zeros)
    analysis = concept_overlap("c", {"b": b, "m": m}, names, nouns=HEADS)
    text = analysis.narrative
    assert text.count("behaves like one") == 5
    assert "11 more heads are behavioral only (1.1, 1.2, 1.3, 2.0, 2.1, 2.2, 2.3, 3.0, 3.1, 3.2, 3.3)." in text


# --- metrics ---------------------------------------------------------------------------------------------------


def test_jaccard_and_precision_recall():
    assert jaccard({"a", "b"}, {"b", "c"}) == (1 / 3, None)
    assert jaccard(set(), set()) == (None, "both sets are empty")
    assert jaccard({"a"}, set()) == (0.0, None)
    assert precision_recall({"a", "b"}, {"b"}) == (0.5, 1.0, {})


def test_average_ranks_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 2.0, 2.0])).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert average_ranks(torch.tensor([5.0, 5.0, 5.0])).tolist() == [2.0, 2.0, 2.0]


def test_spearman_hand_computed_with_ties():
    rho, used, reason = spearman(torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
    # ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5)
    assert rho == pytest.approx(4.5 / math.sqrt(22.5)) and used == 4 and reason is None
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1]))[0] == pytest.approx(-1.0)


def test_spearman_undefined():
    assert spearman(torch.tensor([1.0, NAN, 3.0]), torch.tensor([1.0, 2.0, NAN])) == (
        None,
        1,
        "only 1 unit(s) have both scores defined (needs 3)",
    )
    assert spearman(torch.tensor([1.0, 1, 1]), torch.tensor([1.0, 2, 3]))[0] is None


def _reference_spearman(x: list[float], y: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        ordered = sorted(values)
        return [ordered.index(v) + (ordered.count(v) + 1) / 2 for v in values]

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def test_spearman_matches_a_reference():
    generator = random.Random(0)
    for _ in range(20):
        n = generator.randint(3, 30)
        x = [float(generator.randint(0, 5)) for _ in range(n)]  # many ties
        y = [generator.random() for _ in range(n)]
        if len(set(x)) == 1:
            continue
        assert spearman(torch.tensor(x), torch.tensor(y))[0] == pytest.approx(_reference_spearman(x, y))
