"""Ground truth: the hand-built models of ``defcheck_plugins.constructed``, checked through the public API.

Every assertion reads the report (``defcheck.check(view, ...)``): members, overlap categories, the plain-language
divergences, criterion scores, undefined reasons and evidence, as a user would see them.
"""

from __future__ import annotations

import math
import textwrap
from functools import cache
from pathlib import Path

import pytest
from defcheck_plugins.constructed import (
    CONSTRUCTED,
    IMPOSTOR_LENGTH,
    Layout,
    constructed_names,
    impostor,
    induction,
    load_constructed,
)

import defcheck
from defcheck.models import ModelView, TokenSpace, build_bridge
from defcheck.report import Report
from defcheck.report.common import unit_details

OFFSET = IMPOSTOR_LENGTH - 1
REPEATED = "{name: repeated_random_tokens, n: 32, length: [8, 13, 21]}"
RANDOM = "{name: random_tokens, n: 32, length: 32}"

# One definition per built-in checker and score (probes shared with the built-in definitions), so that the
# report carries every score the ranking test reads.
GROUND_TRUTH = f"""
concept: ground_truth
unit: attention_head
summary: One definition per built-in checker and score, to see which head each ranks first.
definitions:
  previous_token:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: attention_pattern, params: {{pattern: previous_token}}, probe: {RANDOM}, threshold: ">= 0.4"}}
  prefix_matching:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: attention_pattern, params: {{pattern: prefix_matching}}, probe: {REPEATED}, threshold: ">= 0.4"}}
  duplicate_token:
    kind: behavioral
    source: defcheck tests
    all:
      - checker: attention_pattern
        params: {{pattern: duplicate_token, exclude_current_token: true}}
        probe: {REPEATED}
        threshold: ">= 0.4"
  bos:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: attention_pattern, params: {{pattern: bos}}, probe: {RANDOM}, threshold: ">= 0.4"}}
  current_token:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: attention_pattern, params: {{pattern: "fixed_offset:0"}}, probe: {RANDOM}, threshold: ">= 0.4"}}
  fixed_offset:
    kind: behavioral
    source: defcheck tests
    all:
      - checker: attention_pattern
        params: {{pattern: "fixed_offset:{OFFSET}"}}
        probe: {RANDOM}
        threshold: ">= 0.4"
  copying:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: copying, probe: {REPEATED}, threshold: "> 0"}}
  logit_attribution:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: direct_logit_attribution, probe: {REPEATED}, threshold: "> 0"}}
  successor_logits:
    kind: behavioral
    source: defcheck tests
    all:
      - {{checker: successor_logits, probe: {{name: ordinal_sequences, n: 32, length: 6}}, threshold: ">= 0.5"}}
  ov_copying:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: ov_eigenvalue_copying, threshold: ">= 0.5"}}
  qk_token_matching:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: qk_eigenvalue, threshold: ">= 0.5"}}
  qk_previous:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: qk_positional, params: {{offset: 1}}, threshold: ">= 0.4"}}
  qk_current:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: qk_positional, params: {{offset: 0}}, threshold: ">= 0.4"}}
  qk_fixed_offset:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: qk_positional, params: {{offset: {OFFSET}}}, threshold: ">= 0.4"}}
  k_composition:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: composition, params: {{type: K}}, with: previous_token_head.attends_previous, threshold: ">= 0.05"}}
  q_composition:
    kind: mechanistic
    source: defcheck tests
    all:
      - checker: composition
        params: {{type: Q}}
        with: duplicate_token_head.attends_duplicates
        threshold: ">= 0.05"
  k_path:
    kind: mechanistic
    source: defcheck tests
    all:
      - checker: path_ablation
        params: {{path: k}}
        probe: {REPEATED}
        with: previous_token_head.attends_previous
        threshold: ">= 0.25"
  q_path:
    kind: mechanistic
    source: defcheck tests
    all:
      - checker: path_ablation
        params: {{path: q}}
        probe: {REPEATED}
        with: duplicate_token_head.attends_duplicates
        threshold: ">= 0.25"
  ov_successor:
    kind: mechanistic
    source: defcheck tests
    all:
      - {{checker: ov_successor, threshold: ">= 0.5"}}
"""

# Olsson et al.'s behavioral definition probed at the impostor's repeat length only, with the built-in
# mechanistic definitions of induction_head.
ONE_LENGTH = f"""
concept: fixed_length_induction_head
unit: attention_head
summary: induction_head with its behavioral definition probed at one repeat length only.
definitions:
  prefix_matching_and_copying:
    kind: behavioral
    source: Olsson et al. 2022, at one repeat length
    all:
      - checker: attention_pattern
        params: {{pattern: prefix_matching}}
        probe: {{name: repeated_random_tokens, n: 32, length: {IMPOSTOR_LENGTH}}}
        threshold: ">= 0.4"
      - checker: copying
        probe: {{name: repeated_random_tokens, n: 32, length: {IMPOSTOR_LENGTH}}}
        threshold: "> 0"
  k_composition:
    kind: mechanistic
    source: as induction_head.k_composition
    all:
      - {{checker: composition, params: {{type: K}}, with: previous_token_head.attends_previous, threshold: ">= 0.05"}}
      - {{checker: ov_eigenvalue_copying, threshold: ">= 0.5"}}
  previous_token_path:
    kind: mechanistic
    source: as induction_head.previous_token_path
    all:
      - checker: path_ablation
        params: {{path: k, ablation: mean, pattern: prefix_matching}}
        probe: {REPEATED}
        with: previous_token_head.attends_previous
        threshold: ">= 0.25"
      - {{checker: ov_eigenvalue_copying, threshold: ">= 0.5"}}
"""

# Every built-in checker ranks the constructed head first on the score it is meant to find. Entries:
# (model, ground_truth definition, direction, the heads expected at the top: ties only where built in).
RANKING = [
    ("induction", "previous_token", "max", {"0.0"}),
    ("induction", "prefix_matching", "max", {"1.0"}),
    ("induction", "bos", "max", {"0.2", "1.2"}),  # two identical BOS-attending heads
    ("induction", "current_token", "max", {"0.3", "1.3"}),  # two identical current-token heads
    ("induction", "copying", "max", {"1.0"}),
    ("induction", "logit_attribution", "max", {"1.0"}),
    ("induction", "ov_copying", "max", {"1.0"}),
    ("induction", "qk_previous", "max", {"0.0"}),
    ("induction", "qk_current", "max", {"0.3", "1.3"}),
    ("induction", "k_composition", "max", {"1.0"}),
    ("induction", "k_path", "max", {"1.0"}),
    ("induction-ln", "previous_token", "max", {"0.0"}),
    ("induction-ln", "prefix_matching", "max", {"1.0"}),
    ("induction-ln", "copying", "max", {"1.0"}),
    ("induction-ln", "logit_attribution", "max", {"1.0"}),
    ("induction-ln", "ov_copying", "max", {"1.0"}),
    ("induction-ln", "qk_previous", "max", {"0.0"}),
    ("induction-ln", "k_composition", "max", {"1.0"}),
    ("induction-ln", "k_path", "max", {"1.0"}),
    ("anti-induction", "prefix_matching", "max", {"1.0"}),
    ("anti-induction", "copying", "min", {"1.0"}),
    ("anti-induction", "logit_attribution", "min", {"1.0"}),
    ("anti-induction", "ov_copying", "min", {"1.0"}),
    ("anti-induction", "k_composition", "max", {"1.0"}),
    ("impostor", "fixed_offset", "max", {"1.0"}),
    ("impostor", "qk_fixed_offset", "max", {"1.0"}),
    ("q-composition", "duplicate_token", "max", {"0.1"}),
    ("q-composition", "qk_token_matching", "max", {"0.1"}),
    ("q-composition", "prefix_matching", "max", {"1.0"}),
    ("q-composition", "q_composition", "max", {"1.0"}),
    ("q-composition", "q_path", "max", {"1.0"}),
    ("successor", "successor_logits", "max", {"0.0"}),
    ("successor", "ov_successor", "max", {"0.0"}),
]
TIE = 1e-4
# The concepts each model's report needs (``with:`` targets come along); None: every loaded concept.
CONCEPTS = {
    "induction": None,
    "induction-ln": ["induction_head", "previous_token_head", "ground_truth"],
    "anti-induction": ["induction_head", "copy_suppression_head", "ground_truth"],
    "impostor": ["induction_head", "fixed_length_induction_head", "ground_truth"],
    "q-composition": ["induction_head", "duplicate_token_head", "ground_truth"],
    "degenerate": ["induction_head", "copy_suppression_head", "previous_token_head"],
    "successor": ["ground_truth"],
}


@pytest.fixture(scope="module")
def concept_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("concepts")
    (folder / "ground_truth.yaml").write_text(textwrap.dedent(GROUND_TRUTH))
    (folder / "fixed_length_induction_head.yaml").write_text(textwrap.dedent(ONE_LENGTH))
    return folder


@pytest.fixture(scope="module")
def report(concept_dir):
    """The report of a constructed model against the built-in concepts and the two test concepts (cached)."""

    @cache
    def make(name: str) -> Report:
        return defcheck.check(CONSTRUCTED[name](), CONCEPTS.get(name), paths=[concept_dir])

    return make


def _scores(report: Report, definition: str, concept: str = "ground_truth", index: int = 0) -> dict:
    return report.concepts[concept].definitions[definition].criteria[index]["scores"]


# --- the models themselves -----------------------------------------------------------------------------------


def test_registry_names_builders_and_models_are_deterministic():
    assert constructed_names() == list(CONSTRUCTED)
    assert {"induction", "impostor", "anti-induction", "q-composition"} <= set(constructed_names())
    view = load_constructed("impostor")
    assert isinstance(view, ModelView) and view.name == "builtin:impostor"
    assert view.tokens.bos_token_id == 0 and view.tokens.usable_ids().tolist() == list(range(1, 32))
    assert view.info["heads"]["1.0"].startswith("fixed-offset impostor")
    again = impostor()
    for name in ("W_Q", "W_K", "W_V", "W_O", "W_E", "W_pos", "W_U"):
        assert view.weight(name).equal(again.weight(name)), name
    with pytest.raises(KeyError, match="known: induction"):
        load_constructed("inductoin")


def test_every_model_has_the_three_distractors():
    for name in constructed_names():
        roles = CONSTRUCTED[name]().info["heads"].values()
        for kind in ("uniform attention", "attends to BOS", "attends to the current token"):
            assert any(kind in role for role in roles), (name, kind)


# --- model 1: the true induction circuit ---------------------------------------------------------------------


def test_induction_head_is_in_both_kinds(report):
    induction_head = report("induction").concepts["induction_head"]
    assert induction_head.overlap.both == ["1.0"]
    assert induction_head.overlap.behavioral_only == [] and induction_head.overlap.mechanistic_only == []
    for definition in induction_head.definitions.values():
        if definition.id.endswith("_on_text"):  # its tokenizer reads numbers, not text
            text = [criterion for criterion in definition.criteria if "text(" in (criterion["probe"] or "")]
            assert text and all("does not read text" in criterion["not_applicable"] for criterion in text)
            continue
        expected = [] if definition.id == "induction_head.q_composition" else ["1.0"]  # a K-composition circuit
        assert definition.members == expected, definition.id
    previous = report("induction").concepts["previous_token_head"]
    assert previous.overlap.both == ["0.0"]


def test_previous_token_head_is_named_as_the_k_composition_partner(report):
    k_composition = report("induction").concepts["induction_head"].definitions["k_composition"]
    composition = k_composition.criteria[0]
    assert composition["checker"] == "composition"
    assert composition["evidence"]["1.0"]["partner"] == "0.0"
    assert composition["evidence"]["1.0"]["partners"] == ["0.0"]  # the distractors carry no previous-token signal
    # the other layer-1 heads read nothing 0.0 writes: zero times the random baseline
    others = [
        v for unit, v in composition["scores"].items() if unit.startswith("1.") and unit != "1.0" and v is not None
    ]
    assert others and max(others) == 0


def test_ablating_the_previous_token_head_on_the_key_path_removes_prefix_matching(report):
    path = report("induction").concepts["induction_head"].definitions["previous_token_path"].criteria[0]
    evidence = path["evidence"]["1.0"]
    assert evidence["before"] > 0.99
    # what is left is uniform attention over the keys (about 1/21 of it lands on the target by chance)
    assert evidence["after"] < 0.06
    assert path["scores"]["1.0"] == pytest.approx(evidence["before"] - evidence["after"], abs=1e-5)
    assert path["scores"]["1.0"] > 0.9


def test_layernorm_and_mlps_leave_the_circuit_intact(report):
    concept = report("induction-ln").concepts["induction_head"]
    assert concept.overlap.both == ["1.0"]
    assert report("induction-ln").concepts["previous_token_head"].overlap.both == ["0.0"]
    assert report("induction-ln").model["normalization"] == "LN" and not report("induction-ln").model["attn_only"]


# --- model 2: the fixed-offset impostor ----------------------------------------------------------------------


def test_impostor_is_behavioral_only_when_probed_at_its_own_length(report):
    concept = report("impostor").concepts["fixed_length_induction_head"]
    assert concept.overlap.behavioral_only == ["1.0"]
    assert concept.overlap.both == [] and concept.overlap.mechanistic_only == []
    divergence = concept.overlap.divergences["1.0"]
    assert divergence.startswith("behaves like one but fails")
    assert "k_composition (composition" in divergence and "needs >= 0.05" in divergence
    assert "previous_token_path (path_ablation 0, needs >= 0.25)" in divergence
    assert "1.0 behaves like one" in concept.overlap.narrative


def test_impostor_is_in_neither_kind_under_the_builtin_definition_and_the_report_says_why(report):
    concept = report("impostor").concepts["induction_head"]
    overlap = concept.overlap
    assert overlap.both == [] and overlap.behavioral_only == [] and overlap.mechanistic_only == []
    behavioral = concept.definitions["prefix_matching_and_copying"]
    assert "1.0" not in behavioral.members
    prefix, copying = behavioral.criteria
    assert prefix["params"]["aggregate"] == "min" and prefix["scores"]["1.0"] < 0.05
    assert "1.0" not in prefix["passed"] and "1.0" in copying["passed"]
    details = unit_details(report("impostor").data["concepts"]["induction_head"], behavioral.to_dict(), "1.0")
    assert details[0] == "not a member"
    assert any(line.startswith("attention_pattern (>= 0.4):") and line.endswith("fail") for line in details)
    assert any(line == "copying (> 0): 1 pass" for line in details)
    # at its own length it is a perfect prefix matcher: only the other lengths of the probe fail it
    one_length = report("impostor").concepts["fixed_length_induction_head"].definitions["prefix_matching_and_copying"]
    assert one_length.criteria[0]["scores"]["1.0"] > 0.99


# --- model 3: anti-induction ---------------------------------------------------------------------------------


def test_anti_induction_matches_prefixes_but_is_a_copy_suppression_head_not_an_induction_head(report):
    result = report("anti-induction")
    induction_head = result.concepts["induction_head"]
    behavioral = induction_head.definitions["prefix_matching_and_copying"]
    prefix, copying = behavioral.criteria
    assert "1.0" in prefix["passed"] and prefix["scores"]["1.0"] > 0.99
    assert "1.0" not in copying["passed"] and copying["scores"]["1.0"] < -0.99
    overlap = induction_head.overlap
    assert "1.0" not in overlap.both + overlap.behavioral_only + overlap.mechanistic_only
    # the circuit is there (composition, path ablation pass); the OV eigenvalues are what rules it out
    k_composition = induction_head.definitions["k_composition"]
    assert "1.0" in k_composition.criteria[0]["passed"] and "1.0" not in k_composition.criteria[1]["passed"]
    copy_suppression = result.concepts["copy_suppression_head"]
    assert copy_suppression.overlap.both == ["1.0"]
    for definition in copy_suppression.definitions.values():
        assert definition.members == ["1.0"], definition.id


# --- another mechanism for the same behavior: Q-composition ----------------------------------------------------


def test_q_composition_induction_is_found_by_the_q_composition_definition_only(report):
    result = report("q-composition")
    concept = result.concepts["induction_head"]
    assert concept.overlap.both == ["1.0"]  # the union of the mechanistic definitions holds it
    assert concept.definitions["q_composition"].members == ["1.0"]
    assert concept.definitions["q_composition"].criteria[0]["evidence"]["1.0"]["partner"] == "0.1"
    assert concept.definitions["k_composition"].members == []  # the K-composition definition alone misses it
    pairs = {(*pair["behavioral"], *pair["mechanistic"]): pair for pair in concept.overlap.pairs}
    assert pairs[("prefix_matching_and_copying", "k_composition")]["behavioral_only"] == ["1.0"]
    # the test concept's Q-composition definition agrees, with the duplicate-token head as partner
    q_composition = result.concepts["ground_truth"].definitions["q_composition"]
    assert q_composition.members == ["1.0"]
    assert q_composition.criteria[0]["evidence"]["1.0"]["partner"] == "0.1"
    assert result.concepts["ground_truth"].definitions["q_path"].members == ["1.0"]
    assert result.concepts["duplicate_token_head"].overlap.both == ["0.1"]


# --- every built-in checker ranks the constructed head first -------------------------------------------------


def test_ranking_covers_every_builtin_checker(report):
    definitions = report("induction").concepts["ground_truth"].definitions
    checkers = {definitions[name].criteria[0]["checker"] for _, name, _, _ in RANKING}
    builtin = {"attention_pattern", "composition", "copying", "direct_logit_attribution", "ov_eigenvalue_copying"}
    builtin |= {"ov_successor", "path_ablation", "qk_eigenvalue", "qk_positional", "successor_logits"}
    assert checkers == builtin


@pytest.mark.parametrize(("model", "definition", "direction", "expected"), RANKING)
def test_each_checker_ranks_the_constructed_head_first(report, model, definition, direction, expected):
    scores = {unit: v for unit, v in _scores(report(model), definition).items() if v is not None}
    sign = 1.0 if direction == "max" else -1.0
    best = max(sign * v for v in scores.values())
    top = {unit for unit, v in scores.items() if sign * v >= best - TIE}
    assert top == expected, sorted(scores.items(), key=lambda item: -sign * item[1])
    runner_up = max((sign * v for unit, v in scores.items() if unit not in expected), default=-math.inf)
    assert best - runner_up > 0.1, (best, runner_up)


# --- degenerate heads ----------------------------------------------------------------------------------------


def test_ov_writing_where_the_unembedding_never_reads_is_undefined_not_a_member(report):
    result = report("degenerate")
    for concept, definition in (("induction_head", "k_composition"), ("copy_suppression_head", "negative_ov")):
        found = result.concepts[concept].definitions[definition]
        eigen = next(c for c in found.criteria if c["checker"] == "ov_eigenvalue_copying")
        assert eigen["scores"]["1.1"] is None
        assert "0/0" in eigen["undefined"]["1.1"] and "unembedding never reads" in eigen["undefined"]["1.1"]
        assert eigen["scores"]["0.0"] is None and "W_V W_O is zero" in eigen["undefined"]["0.0"]
        assert "1.1" not in found.members and "1.1" not in eigen["passed"]


def test_zero_ov_partner_makes_composition_undefined_and_the_category_open(report):
    concept = report("degenerate").concepts["induction_head"]
    composition = concept.definitions["k_composition"].criteria[0]
    assert composition["scores"]["1.0"] is None
    assert composition["undefined"]["1.0"] == (
        "undefined: 0/0, every earlier member of previous_token_head.carries_previous has a zero OV circuit "
        "or a score of 0 or less (its weight)"
    )
    assert concept.definitions["k_composition"].members == []
    assert "k_composition" in concept.overlap.undetermined["1.0"]
    # 0.0 is still a previous-token head by behavior: it attends to i-1, it just writes nothing
    assert report("degenerate").concepts["previous_token_head"].overlap.both == ["0.0"]


# --- composition scores are weak signals ---------------------------------------------------------------------


def _k_composition_threshold(report: Report) -> float:
    threshold = report.concepts["induction_head"].definitions["k_composition"].criteria[0]["threshold"]
    op, value = threshold.split()
    assert op == ">="
    return float(value)


def test_builtin_k_composition_threshold_separates_the_partner_from_random_pairs(report, tmp_path):
    cut = _k_composition_threshold(report("induction"))
    partner = report("induction").concepts["induction_head"].definitions["k_composition"].criteria[0]["scores"]["1.0"]
    layout = Layout()
    assert partner == pytest.approx(layout.d_vocab**-0.5 / 0.0707, abs=0.03)  # 1/sqrt(rank) over the baseline
    assert partner >= cut
    # random pairs: a seeded random model of the same shapes, every layer-0 head a `with:` member
    (tmp_path / "every_head.yaml").write_text(
        textwrap.dedent(
            """
            concept: random_composition_head
            unit: attention_head
            summary: K-composition of each head with every earlier head of a random model.
            definitions:
              any_head:
                kind: behavioral
                source: defcheck tests
                all:
                  - checker: attention_pattern
                    params: {pattern: bos}
                    probe: {name: random_tokens, n: 4}
                    threshold: ">= 0"
              composes:
                kind: mechanistic
                source: defcheck tests
                all:
                  - {checker: composition, params: {type: K, baseline: divide}, with: any_head, threshold: ">= 1.5"}
            """
        )
    )
    chance = []
    for seed in range(3):
        config = {"n_layers": 2, "d_model": layout.d_model, "n_heads": 4, "d_head": layout.d_head}
        config |= {"d_vocab": layout.d_vocab, "n_ctx": layout.n_ctx, "attn_only": True, "normalization_type": None}
        view = ModelView(build_bridge(config, seed=seed), TokenSpace(layout.d_vocab, 0), name=f"random-{seed}")
        result = defcheck.check(view, paths=[tmp_path], concepts=["random_composition_head"], include_builtin=False)
        scores = result.concepts["random_composition_head"].definitions["composes"].criteria[0]["scores"]
        chance += [v for unit, v in scores.items() if unit.startswith("1.")]
    assert len(chance) == 12 and max(chance) < cut and max(abs(v - 1) for v in chance) < 0.15  # 1 = chance
    assert partner - 1 > 10 * max(v - 1 for v in chance)


def test_with_layernorm_the_partner_still_clears_the_cut_off(report):
    """The BAL coordinate adds one direction to every write, which lowers the Frobenius ratio by sqrt(2): from
    0.177 to 0.125, 1.77 times the baseline, above the ">= 1.5" (times chance) of the built-in definition."""
    cut = _k_composition_threshold(report("induction-ln"))
    composition = report("induction-ln").concepts["induction_head"].definitions["k_composition"].criteria[0]
    partner = composition["scores"]["1.0"]
    assert composition["evidence"]["1.0"]["partner"] == "0.0"
    assert partner == pytest.approx(1 / math.sqrt(2 * 32) / 0.0705, abs=0.03)
    assert partner >= cut  # a true partner must be admitted


def test_a_larger_vocabulary_keeps_a_perfect_partner_at_twice_chance(report):
    """One-hot circuits of rank r top out at 1/sqrt(r): at d_vocab 128 the ratio is 0.088 against a baseline of
    0.045. Subtracting the baseline left 0.043, under the ">= 0.05" the definition first had; divided by the
    baseline it is 1.95 times chance, above the ">= 1.5" it has now, while random pairs stay near 1."""
    cut = _k_composition_threshold(report("induction"))
    result = defcheck.check(induction(128), definitions=["induction_head.k_composition"])
    definition = result.concepts["induction_head"].definitions["k_composition"]
    composition = definition.criteria[0]
    partner = composition["scores"]["1.0"]
    assert composition["evidence"]["1.0"]["partner"] == "0.0"
    assert partner == pytest.approx(128**-0.5 / 0.0453, abs=0.03)
    assert partner >= cut and "1.0" in definition.members


# --- the builtin: loader -------------------------------------------------------------------------------------


def test_builtin_references_resolve_to_the_constructed_models():
    from defcheck.models.loading import load_model

    view = load_model("builtin:anti-induction")
    assert view.name == "builtin:anti-induction" and view.info["construction"] == "anti-induction"
    assert view.weight("W_O").equal(CONSTRUCTED["anti-induction"]().weight("W_O"))
    with pytest.raises(defcheck.DefcheckError, match="impostor"):
        load_model("builtin:impostr")
