"""Baselines (defcheck/ci/baseline.py): what counts as a difference, the tolerance, and refusing other versions."""

from __future__ import annotations

import copy
import json

import pytest
from test_overlap import COMPOSITION, NAMES, NO_PARTNER, OV, PREFIX, criterion, definition, run_of

from defcheck.ci.baseline import diff_reports, diff_text, load_baseline, moved
from defcheck.diagnostics import DefcheckError
from defcheck.report import Report


def build(prefix_values=PREFIX, ov=OV, prefix_threshold=">= 0.4", seed=0, extra=()):
    prefix = definition(
        "induction_head.prefix", "behavioral", criterion("attention_pattern", prefix_values, prefix_threshold)
    )
    kcomp = definition(
        "induction_head.kcomp",
        "mechanistic",
        criterion("composition", COMPOSITION, ">= 0.05", undefined={u: NO_PARTNER for u in NAMES[:4]}),
        criterion("ov_eigenvalue_copying", ov, ">= 0.5"),
    )
    return Report.build(run_of(prefix, kcomp, *extra, seed=seed)).data


@pytest.fixture(scope="module")
def base():
    return build()


def kinds(differences):
    return [(d.kind, d.subject) for d in differences]


def test_the_same_report_has_no_differences(base):
    assert diff_reports(base, copy.deepcopy(base)) == []
    assert diff_text([], "b.json") == ["no differences from the baseline b.json"]


def test_members_scores_and_overlap(base):
    ov = [row[:] for row in OV]
    ov[1][3] = 0.2  # 1.3 leaves kcomp
    ov[1][2] = 0.9  # 1.2 joins kcomp
    differences = diff_reports(base, build(ov=ov))
    assert kinds(differences) == [
        ("scores", "induction_head.kcomp"),
        ("members", "induction_head.kcomp"),
        ("overlap", "induction_head"),
    ]
    scores, members, overlap = differences
    assert scores.message == "ov_eigenvalue_copying (criterion 2) moved on 2 unit(s), most at 1.2: -0.5 -> 0.9"
    assert scores.details["units"] == {"1.2": [-0.5, 0.9], "1.3": [0.7, 0.2]}
    assert members.message == "members +1 (1.2) -1 (1.3)"
    assert members.details == {"added": ["1.2"], "removed": ["1.3"]}
    assert overlap.message == (
        "both +1.2; behavioral only -1.2; mechanistic only -1.3; jaccard 0.2 -> 0.5; precision 0.25 -> 0.5; "
        "recall 0.5 -> 1"
    )
    assert members.rule_id == "baseline/members" and members.to_dict()["definition"] == "kcomp"
    lines = diff_text(differences, "b.json")
    assert lines[0] == "3 difference(s) from the baseline b.json:"
    assert lines[2] == "  induction_head.kcomp: members +1 (1.2) -1 (1.3)"


def test_the_tolerance_is_absolute_up_to_one_and_relative_above():
    assert not moved(0.5, 0.5009, 1e-3) and moved(0.5, 0.5011, 1e-3)
    assert not moved(100.0, 100.09, 1e-3) and moved(100.0, 100.11, 1e-3)
    assert moved(None, 0.0, 1.0) and moved(0.0, None, 1.0) and not moved(None, None, 0.0)


def test_small_moves_within_the_tolerance_are_not_differences(base):
    nudged = [[v + 0.0004 for v in row] for row in PREFIX]
    assert diff_reports(base, build(prefix_values=nudged)) == []
    assert kinds(diff_reports(base, build(prefix_values=nudged), tolerance=1e-4)) == [
        ("scores", "induction_head.prefix")
    ]
    assert diff_reports(base, build(prefix_values=nudged), tolerance=1e-4)[0].details["units"]["0.0"] == [0.1, 0.1004]


def test_a_changed_definition_is_named_with_its_old_and_new_text(base):
    changed = build(prefix_threshold=">= 0.5")
    differences = diff_reports(base, changed)
    first = differences[0]
    assert (first.kind, first.subject) == ("definition", "induction_head.prefix")
    assert first.message == "criterion 1 (attention_pattern) changed: threshold >= 0.4 -> >= 0.5"
    assert ("members", "induction_head.prefix") in kinds(differences)  # 0.1 (0.5) stays, 1.0 (0.45) leaves


def test_added_removed_and_errored_definitions(base):
    broken = definition("induction_head.path", "mechanistic", criterion("path_ablation", error="boom"))
    with_broken = build(extra=[broken])
    assert kinds(diff_reports(base, with_broken)) == [("definition", "induction_head.path")]  # the unions stay
    assert diff_reports(base, with_broken)[0].message == "added (not in the baseline)"
    assert diff_reports(with_broken, base)[0].message == "removed (in the baseline, not in this run)"
    fine = definition("induction_head.path", "mechanistic", criterion("path_ablation", [[0.0] * 4, [0.0] * 4], "> 1"))
    now_broken = diff_reports(build(extra=[fine]), with_broken)
    status = [d for d in now_broken if d.details.get("field") == "status"]
    assert status and status[0].message == "status ok -> errored: boom"


def test_run_settings_and_concepts(base):
    other = copy.deepcopy(base)
    other["seed"] = 1
    other["model"]["n_heads"] = 8
    other["concepts"]["previous_token_head"] = copy.deepcopy(other["concepts"]["induction_head"])
    differences = diff_reports(base, other)
    assert kinds(differences)[:3] == [("run", "run"), ("run", "run"), ("concept", "previous_token_head")]
    assert differences[0].message == "seed 0 -> 1"
    assert differences[1].message == "the model's n_heads is 8, the baseline's 4"
    assert differences[2].message == "added (not in the baseline)"


def test_a_selection_compares_only_what_ran(base):
    ov = [row[:] for row in OV]
    ov[1][3] = 0.2
    partial = build(ov=ov)
    del partial["concepts"]["induction_head"]["definitions"]["prefix"]
    assert ("definition", "induction_head.prefix") in kinds(diff_reports(base, partial))
    selected = diff_reports(base, partial, selection=["induction_head.kcomp"])
    assert kinds(selected) == [("scores", "induction_head.kcomp"), ("members", "induction_head.kcomp")]
    assert diff_reports(base, partial, selection=["other_concept"]) == []


def test_load_baseline_refuses_other_versions_and_missing_files(tmp_path, base, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "b.json"
    good.write_text(json.dumps(base), encoding="utf-8")
    assert load_baseline(good)["concepts"].keys() == base["concepts"].keys()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**base, "report_version": 0}), encoding="utf-8")
    with pytest.raises(DefcheckError) as refused:
        load_baseline(old)
    assert str(refused.value) == (
        "the baseline old.json cannot be used: this report has report_version 0, but this defcheck reads "
        "report_version 1; re-run `defcheck run` to write it again, or use the defcheck version that wrote it; "
        "write a new one with `defcheck run --write-baseline old.json`"
    )
    with pytest.raises(DefcheckError, match=r"the baseline missing\.json does not exist; write one with"):
        load_baseline(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(DefcheckError, match=r"the baseline bad\.json cannot be used: not a defcheck report"):
        load_baseline(tmp_path / "bad.json")
