"""Thresholds: parsing what a YAML file says, and selecting members from scores."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from defcheck.language.thresholds import THRESHOLD_HELP, THRESHOLD_JSON_SCHEMA, Comparison, TopK, parse_threshold


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (">= 0.4", Comparison(">=", 0.4)),
        ("> 0", Comparison(">", 0.0)),
        ("< -0.2", Comparison("<", -0.2)),
        ("<=1e-3", Comparison("<=", 0.001)),
        ("  >=  .5  ", Comparison(">=", 0.5)),
        (">= +2.", Comparison(">=", 2.0)),
        ({"top_k": 3}, TopK(3)),
        ({"top_k": 1, "min": 0.1}, TopK(1, 0.1)),
        ({"top_k": 2, "min": 0}, TopK(2, 0.0)),
        (TopK(4), TopK(4)),
    ],
)
def test_valid_thresholds(raw, expected):
    assert parse_threshold(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (">= abc", f"'>= abc' is not a threshold; {THRESHOLD_HELP}"),
        ("=> 0.4", "'=> 0.4' is not a threshold; did you mean '>= 0.4'?"),
        ("=< 1", "'=< 1' is not a threshold; did you mean '<= 1'?"),
        ("0.4", "'0.4' has no comparison; write it as '>= 0.4' (or another of >, <=, <)"),
        ("== 0.4", f"'== 0.4' is not a threshold; {THRESHOLD_HELP}"),
        (">= 0.4 and < 1", f"'>= 0.4 and < 1' is not a threshold; {THRESHOLD_HELP}"),
        ("", f"'' is not a threshold; {THRESHOLD_HELP}"),
        (0.4, "0.4 has no comparison; write it as '>= 0.4' (or another of >, <=, <)"),
        (3, "3 has no comparison; write it as '>= 3' (or another of >, <=, <)"),
        (True, f"true is not a threshold; {THRESHOLD_HELP}"),
        (None, f"null is not a threshold; {THRESHOLD_HELP}"),
        ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
        ({"top_k": -2}, "top_k must be an integer >= 1, got -2"),
        ({"top_k": 2.5}, "top_k must be an integer >= 1, got 2.5"),
        ({"top_k": True}, "top_k must be an integer >= 1, got True"),
        ({"top_k": 3, "min": "high"}, "min must be a number, got 'high'"),
        (
            {"topk": 3},
            "a rank rule takes 'top_k' (an integer >= 1) and optionally 'min', not 'topk'; did you mean 'top_k'?",
        ),
        ({"min": 0.1}, "a rank rule needs 'top_k' (an integer >= 1), e.g. {top_k: 3, min: 0.1}"),
        ({"": None, 0: None}, "a rank rule takes 'top_k' (an integer >= 1) and optionally 'min', not ''"),
        (["top_k", 3], f"a threshold is a string or a mapping, not list; {THRESHOLD_HELP}"),
    ],
)
def test_invalid_thresholds_say_what_to_write(raw, message):
    with pytest.raises(ValueError) as error:
        parse_threshold(raw)
    assert str(error.value) == message


def test_comparison_selects_and_never_admits_nan():
    scores = torch.tensor([[0.1, 0.4, float("nan")], [0.5, -1.0, 0.39]])
    assert Comparison(">=", 0.4).select(scores).tolist() == [[False, True, False], [True, False, False]]
    assert Comparison(">", 0.4).select(scores).tolist() == [[False, False, False], [True, False, False]]
    assert Comparison("<", 0.0).select(scores).tolist() == [[False, False, False], [False, True, False]]
    assert Comparison("<=", 0.1).select(scores).tolist() == [[True, False, False], [False, True, False]]


def test_top_k_selects_the_highest_breaking_ties_by_unit_order():
    scores = torch.tensor([[0.2, 0.9, 0.5], [0.9, float("nan"), 0.1]])
    assert TopK(2).select(scores).tolist() == [[False, True, False], [True, False, False]]
    assert TopK(3, 0.6).select(scores).tolist() == [[False, True, False], [True, False, False]]
    assert TopK(10).select(scores).sum().item() == 5  # every unit but the NaN one
    assert TopK(1).select(torch.full((2, 2), float("nan"))).sum().item() == 0


def test_scaling_and_serialising():
    assert Comparison(">=", 0.4).scaled(0.5) == Comparison(">=", 0.2)
    assert TopK(3, 0.2).scaled(2) == TopK(6, 0.4)
    assert TopK(1).scaled(0.1) == TopK(1)  # never fewer than one member
    assert str(Comparison(">=", 0.4)) == ">= 0.4" and Comparison("<", -2.0).to_json() == "< -2"
    assert str(TopK(3, 0.1)) == "top 3 and >= 0.1" and str(TopK(3)) == "top 3"
    assert TopK(3).to_json() == {"top_k": 3} and TopK(3, 0.1).to_json() == {"top_k": 3, "min": 0.1}
    for rule in (Comparison("<=", 1.5), TopK(2), TopK(2, -0.5)):
        assert parse_threshold(rule.to_json()) == rule


_threshold_like = st.one_of(
    st.text(max_size=12),
    st.builds(
        lambda op, space, number: f"{op}{space}{number}",
        st.sampled_from([">=", ">", "<=", "<", "=>", "=", "==", ""]),
        st.sampled_from(["", " ", "  "]),
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False).map(repr), st.integers().map(str), st.text(max_size=4)
        ),
    ),
)


@settings(max_examples=200, deadline=None)
@given(_threshold_like)
def test_the_json_schema_pattern_agrees_with_the_parser(text):
    """Editors validating with the JSON Schema accept exactly the strings that defcheck accepts."""
    pattern = THRESHOLD_JSON_SCHEMA["anyOf"][0]["pattern"]
    try:
        rule = parse_threshold(text)
    except ValueError as error:
        assert re.search(pattern, text) is None
        assert str(error)
    else:
        assert re.search(pattern, text) is not None
        assert isinstance(rule, Comparison) and not math.isnan(rule.value)
