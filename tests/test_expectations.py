"""Expectations (defcheck/ci/expectations.py) checked against report documents whose results are known by hand.

The report: induction_head with a behavioral definition `prefix` (members 0.1 0.3 1.0 1.2) and a mechanistic
one `kcomp` (members 1.0 1.3): both 1.0; behavioral only 0.1 0.3 1.2; mechanistic only 1.3; neither 0.0 0.2
1.1; Jaccard 0.2 (see tests/test_overlap.py).
"""

from __future__ import annotations

import pytest
from test_overlap import criterion, definition, induction_results, run_of

from defcheck.ci.expectations import category_units, check_expectations, kind_sets, summary_counts
from defcheck.ci.project import EXPECTATION_MODELS, KIND_KEYS, Expectation
from defcheck.report import Report


def expect(raw: dict, index: int = 0) -> Expectation:
    kind = next(kind for key, kind in KIND_KEYS.items() if key in raw)
    return Expectation(index, kind, EXPECTATION_MODELS[kind].model_validate(raw), line=10 + index)


def check(data, raw: dict):
    (result,) = check_expectations([expect(raw)], data, file="defcheck.yaml")
    return result


@pytest.fixture(scope="module")
def data():
    return Report.build(run_of(*induction_results())).data


@pytest.fixture(scope="module")
def broken_data():
    prefix, kcomp = induction_results()
    broken = definition(
        "induction_head.path", "mechanistic", criterion("path_ablation", error="checker 'path_ablation' failed: boom")
    )
    return Report.build(run_of(prefix, kcomp, broken)).data


def test_sets(data):
    concept = data["concepts"]["induction_head"]
    units = [f"{layer}.{head}" for layer in range(2) for head in range(4)]
    assert kind_sets(concept) == {"behavioral": {"0.1", "0.3", "1.0", "1.2"}, "mechanistic": {"1.0", "1.3"}}
    assert category_units(concept, units, "both") == ["1.0"]
    assert category_units(concept, units, "behavioral_only") == ["0.1", "0.3", "1.2"]
    assert category_units(concept, units, "mechanistic") == ["1.0", "1.3"]
    assert category_units(concept, units, "neither") == ["0.0", "0.2", "1.1"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ({"unit": "1.0", "concept": "induction_head", "in": "both"}, "passed"),
        ({"unit": ["0.1", "1.2"], "concept": "induction_head", "in": "behavioral_only"}, "passed"),
        ({"unit": ["1.0", "1.2"], "concept": "induction_head", "in": "behavioral"}, "passed"),
        ({"unit": "1.3", "concept": "induction_head", "in": "mechanistic_only"}, "passed"),
        ({"unit": "1.1", "concept": "induction_head", "in": "neither"}, "passed"),
        ({"unit": "1.3", "concept": "induction_head", "in": "both"}, "failed"),
        ({"unit": ["1.0", "1.1"], "concept": "induction_head", "in": "both"}, "failed"),
        ({"unit": "1.3", "definition": "induction_head.kcomp"}, "passed"),
        ({"unit": "1.1", "definition": "induction_head.kcomp", "member": False}, "passed"),
        ({"unit": "1.1", "definition": "induction_head.kcomp"}, "failed"),
        ({"unit": "1.0", "definition": "induction_head.prefix", "member": False}, "failed"),
        ({"concept": "induction_head", "metric": "jaccard", "threshold": ">= 0.2"}, "passed"),
        ({"concept": "induction_head", "metric": "jaccard", "threshold": ">= 0.5"}, "failed"),
        ({"concept": "induction_head", "metric": "recall", "threshold": "> 0.4"}, "passed"),
        ({"concept": "induction_head", "metric": "precision", "threshold": "< 0.2"}, "failed"),
        ({"concept": "induction_head", "in": "mechanistic_only", "count": 1}, "passed"),
        ({"concept": "induction_head", "in": "mechanistic_only", "count": 0}, "failed"),
        ({"concept": "induction_head", "in": "neither", "count": {"min": 3}}, "passed"),
        ({"definition": "induction_head.prefix", "count": {"min": 1, "max": 3}}, "failed"),
        ({"definition": "induction_head.prefix", "count": {"min": 1, "max": 4}}, "passed"),
        ({"definition": "induction_head.kcomp", "count": "> 1"}, "passed"),
        ({"definition": "induction_head.kcomp", "count": {"max": 1}}, "failed"),
    ],
)
def test_each_kind_holds_or_fails(data, raw, status):
    result = check(data, raw)
    assert result.status == status, result.message


def test_failures_say_what_was_found_and_why(data):
    membership = check(data, {"unit": ["1.0", "1.2"], "concept": "induction_head", "in": "both"})
    assert membership.message == (
        "1.2 is behavioral only (behaves like one but fails kcomp (ov_eigenvalue_copying -0.5, needs >= 0.5))"
    )
    assert membership.details == {"categories": {"1.0": "both", "1.2": "behavioral_only"}}
    assert membership.description == "induction_head: 1.0, 1.2 are in both kinds"
    assert (membership.file, membership.line, membership.rule_id) == ("defcheck.yaml", 10, "expectation/membership")
    member = check(data, {"unit": "1.1", "definition": "induction_head.kcomp"})
    assert member.message == "1.1 is not a member (composition 0.01, needs >= 0.05)"
    undefined = check(data, {"unit": "0.1", "definition": "induction_head.kcomp"})
    assert undefined.message == (
        "0.1 is not a member (composition undefined: no earlier member of previous_token_head.attends_previous)"
    )
    metric = check(data, {"concept": "induction_head", "metric": "jaccard", "threshold": ">= 0.5"})
    assert metric.message == "jaccard is 0.2, expected >= 0.5" and metric.details == {"value": 0.2}
    count = check(data, {"definition": "induction_head.prefix", "count": {"min": 1, "max": 3}})
    assert count.message == "4 member(s): 0.1, 0.3, 1.0, 1.2; expected between 1 and 3"
    assert count.details == {"count": 4, "units": ["0.1", "0.3", "1.0", "1.2"]}
    none = check(data, {"concept": "induction_head", "in": "mechanistic_only", "count": 0})
    assert none.message == "1 unit(s) mechanistic only: 1.3; expected exactly 0"


def test_an_undefined_metric_fails_with_its_reason():
    prefix = definition("c.b", "behavioral", criterion("x", [[0.0] * 4, [0.0] * 4], ">= 0.5"))
    mech = definition("c.m", "mechanistic", criterion("y", [[0.0] * 4, [0.0] * 4], ">= 0.5"))
    data = Report.build(run_of(prefix, mech)).data
    result = check(data, {"concept": "c", "metric": "jaccard", "threshold": ">= 0"})
    assert result.status == "failed"
    assert result.message == "jaccard is undefined (both sets are empty), expected >= 0"
    one_sided = Report.build(run_of(prefix)).data
    result = check(one_sided, {"concept": "c", "metric": "jaccard", "threshold": ">= 0"})
    assert result.status == "failed" and "it has no mechanistic definition" in result.message


def test_an_errored_definition_makes_its_expectations_errors(broken_data):
    result = check(broken_data, {"unit": "1.0", "concept": "induction_head", "in": "both"})
    assert result.status == "error"
    assert result.message == "induction_head.path errored: checker 'path_ablation' failed: boom"
    # an expectation about one definition only rests on that definition
    assert check(broken_data, {"unit": "1.0", "definition": "induction_head.prefix"}).status == "passed"
    assert check(broken_data, {"definition": "induction_head.path", "count": 0}).status == "error"


def test_unknown_units_are_errors_and_missing_concepts_are_skipped(data):
    result = check(data, {"unit": ["1.0", "5.0"], "concept": "induction_head", "in": "both"})
    assert result.status == "error" and result.message == "the model has no unit 5.0 (its units: 0.0 to 1.3)"
    skipped = check(data, {"concept": "previous_token_head", "metric": "jaccard", "threshold": ">= 0.5"})
    assert skipped.status == "skipped" and skipped.message == "previous_token_head was not evaluated in this run"
    results = check_expectations(
        [expect({"unit": "1.0", "concept": "induction_head", "in": "both"}), expect({"definition": "x.y", "count": 1})],
        data,
    )
    assert summary_counts(results) == {"passed": 1, "failed": 0, "error": 0, "skipped": 1}
    assert results[0].to_dict()["rule"] == "expectation/membership" and results[0].to_dict()["file"] is None
