"""Hostile and nonsensical input (issue 17, items 5): one located error and the documented exit code, never a
traceback; numbers finite and in range; strings valid Unicode; nesting bounded before parsing costs seconds;
saved reports and baselines checked on read; a damaged sweep report re-run."""

from __future__ import annotations

import codecs
import errno
import json
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

from defcheck.ci.discovery import looks_like_concept_file
from defcheck.ci.project import load_project
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import load_plugins
from defcheck.language.concept_file import read_concept_file
from defcheck.language.registry import load_registry
from defcheck.language.thresholds import parse_threshold
from defcheck.language.yaml_source import MAX_DEPTH, MAX_NODES, parse_yaml, read_yaml

CONCEPT = """\
concept: hostile
unit: attention_head
summary: {summary}
definitions:
  d:
    kind: mechanistic
    source: tests
    all:
      - checker: ov_eigenvalue_copying
        threshold: {threshold}
"""


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Files are named relative to the working directory, as users see them."""
    monkeypatch.chdir(tmp_path)


def concept(tmp_path: Path, summary: str = "s", threshold: str = "'>= 1'", name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(CONCEPT.format(summary=summary, threshold=threshold), encoding="utf-8")
    return path


def errors(path: Path, extensions) -> list[str]:
    return [str(d) for d in load_registry([path], extensions, include_builtin=False).errors]


# --- nesting and size ----------------------------------------------------------------------------------------


def test_deep_nesting_in_the_pre_commit_sniffing_is_no_recursion_error(tmp_path, cli):
    deep = tmp_path / "deep.yaml"
    deep.write_text("concept: x\nsummary: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert looks_like_concept_file(deep)  # was a RecursionError in the sniffing
    code, out, err = cli("validate", "--no-config", str(deep))
    assert code == 1 and "Traceback" not in err
    assert "deep.yaml:2:" in out and f"nesting deeper than {MAX_DEPTH} levels" in out


@pytest.mark.parametrize("where", ["file", "folder"])
def test_deep_nesting_through_run_d_has_a_line(tmp_path, cli, where):
    (tmp_path / "defs").mkdir()
    deep = tmp_path / "defs" / "deep.yaml"
    deep.write_text("concept: x\nsummary:\n" + "".join(" " * i + "-\n" for i in range(200)), encoding="utf-8")
    code, _, err = cli("run", "--no-config", "-d", str(deep if where == "file" else deep.parent))
    assert code == 2
    assert f"deep.yaml:{MAX_DEPTH + 3}:" in err and "nesting deeper than" in err


@pytest.mark.parametrize(
    "text",
    [
        "concept: x\nsummary: " + "[" * 460_000 + "]" * 460_000,  # the 920 kB file of the issue
        "concept: x\nsummary: [" + "1, " * 300_000 + "]",  # wide, not deep: 300,000 values
        "concept: x\n" + "".join(f"k{i}: {i}\n" for i in range(80_000)),
        "concept: x\nsummary:\n" + "".join(" " * i + "a:\n" for i in range(1, 1300)),
    ],
    ids=["deep-flow", "wide-flow", "many-keys", "deep-block"],
)
def test_a_large_nested_document_is_refused_quickly(text):
    tracemalloc.start()
    started = time.perf_counter()
    document, problems = parse_yaml(text, "f.yaml")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert document is None and problems[0].line is not None
    assert any(words in problems[0].message for words in ("nesting deeper than", f"more than {MAX_NODES} values"))
    assert seconds < 3 and peak < 50_000_000  # was ~30 s and ~500 MB


# --- numbers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("{top_k: 3, min: " + "9" * 400 + "}", "min must be a finite number, got an integer too large for one"),
        ("'>= 1e999'", "1e999 is too large to be a number"),
        ("{top_k: 3, min: .nan}", "min must be a finite number, got nan"),
        ("{top_k: 3, min: .inf}", "min must be a finite number, got inf"),
        ("{top_k: 3, min: -.inf}", "min must be a finite number, got -inf"),
        ("{top_k: " + "9" * 30 + "}", "top_k must be at most 2147483647"),
    ],
)
def test_thresholds_are_finite_and_in_range(tmp_path, extensions, threshold, message):
    path = concept(tmp_path, threshold=threshold)
    found = errors(path, extensions)
    assert len(found) == 1 and found[0].startswith("c.yaml:10:20: definitions.d.all[0].threshold: "), found
    assert message in found[0]


def test_parse_threshold_refuses_overflow_directly():
    with pytest.raises(ValueError, match="finite"):
        parse_threshold({"top_k": 3, "min": 10**400})
    assert str(parse_threshold(">= 1e300")) == ">= 1e+300"


def test_a_project_metric_threshold_of_1e999_is_refused_where_it_is_written(tmp_path):
    path = tmp_path / "defcheck.yaml"
    path.write_text(
        "expectations:\n  - {concept: induction_head, metric: jaccard, threshold: '>= 1e999'}\n", encoding="utf-8"
    )
    _, problems = load_project(path)
    assert [(d.line, d.field) for d in problems] == [(2, "expectations[0].threshold")]
    assert "too large to be a number" in problems[0].message


@pytest.mark.parametrize("seed", ["1.0e+32", "4294967296", "-1", "1e32"])
def test_project_seeds_are_32_bit(tmp_path, seed):
    path = tmp_path / "defcheck.yaml"
    path.write_text(f"seed: {seed}\n", encoding="utf-8")
    _, problems = load_project(path)
    assert [(d.line, d.field) for d in problems] == [(1, "seed")]


def test_the_seed_flag_is_32_bit(cli):
    code, _, err = cli("run", "--no-config", "--seed", str(2**32))
    assert code == 2 and "--seed" in err


@pytest.mark.parametrize("tolerance", [".inf", ".nan"])
def test_the_project_tolerance_is_finite(tmp_path, tolerance):
    path = tmp_path / "defcheck.yaml"
    path.write_text(f"tolerance: {tolerance}\n", encoding="utf-8")
    assert [d.field for d in load_project(path)[1]] == ["tolerance"]


def test_huge_steps_and_losses_in_checkpoints_json_are_refused_with_their_place():
    from defcheck.sweep.series import read_metadata

    loss = json.dumps({"metrics": {"800": {"loss": int("9" * 400)}}})
    with pytest.raises(DefcheckError, match=r'c.json: metrics\["800"\]\["loss"\] must be a finite number'):
        read_metadata(loss, "c.json")
    step = json.dumps({"files": {"a.pt": 10**22}})
    with pytest.raises(DefcheckError, match=r'c.json: files\["a.pt"\] must be a training step'):
        read_metadata(step, "c.json")
    with pytest.raises(DefcheckError, match=r"metrics\[\"1e22\"\]: the key must be a training step"):
        read_metadata(json.dumps({"metrics": {"1e22": {"loss": 1}}}), "c.json")
    with pytest.raises(DefcheckError, match="must be a finite number"):
        read_metadata('{"metrics": {"8": {"loss": Infinity}}}', "c.json")
    assert read_metadata(json.dumps({"metrics": {"8": {"loss": 2.5}}, "files": {"a.pt": 8}}), "c.json") == (
        {8: {"loss": 2.5}},
        {"a.pt": 8},
    )


def test_complex_scores_are_refused_with_the_checker_named():
    from defcheck.engine.criterion_tasks import checked
    from defcheck.engine.scores import Scores
    from defcheck.engine.units import Units

    units = Units("attention_head", (1, 2), ("0.0", "0.1"))
    with pytest.raises(DefcheckError, match="complex scores"):
        checked(Scores(torch.tensor([[1 + 2j, 3 + 0j]])), units)
    assert checked(Scores(torch.tensor([[1, 2]])), units).values.dtype == torch.float32


# --- strings and encodings -----------------------------------------------------------------------------------


def test_a_lone_surrogate_is_refused_at_validation_with_its_place(tmp_path, extensions):
    path = concept(tmp_path, summary='"\\ud800"')
    found = errors(path, extensions)
    assert len(found) == 1 and found[0].startswith("c.yaml:3:10: summary: the string '\\ud800' holds a lone surrogate")
    found[0].encode("utf-8")


def test_a_latin1_file_gets_the_line_and_column_of_the_bad_byte(tmp_path):
    path = tmp_path / "l.yaml"
    path.write_bytes(b"concept: x\nsummary: cafe au lait, caf\xe9\n")
    _, problems = read_yaml(path, "l.yaml")
    assert (problems[0].line, problems[0].column) == (2, 27)
    assert "byte 0xe9" in problems[0].message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_named_not_called_binary(tmp_path, encoding):
    path = tmp_path / "w.yaml"
    path.write_bytes("concept: x\nsummary: s\n".encode(encoding))
    _, problems = read_yaml(path, "w.yaml")
    wide = "UTF-32" if "32" in encoding else "UTF-16"
    assert problems[0].message == f"the file is {wide} text; concept files are UTF-8: save it as UTF-8"


def test_a_utf8_bom_is_still_read(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_bytes(codecs.BOM_UTF8 + b"concept: x\n")
    document, problems = read_yaml(path, "b.yaml")
    assert problems == [] and document.data == {"concept": "x"}


def test_a_null_key_and_a_null_definition_name_are_located(tmp_path):
    (tmp_path / "k.yaml").write_text(CONCEPT.format(summary="s", threshold="'>= 1'") + "null: 3\n")
    _, problems = read_concept_file(tmp_path / "k.yaml", "k.yaml")
    assert [str(d) for d in problems] == ["k.yaml:11:1: None: a key must be a string; got null (write it in quotes)"]
    text = CONCEPT.format(summary="s", threshold="'>= 1'") + "  null:\n    kind: behavioral\n"
    (tmp_path / "n.yaml").write_text(text)
    _, problems = read_concept_file(tmp_path / "n.yaml", "n.yaml")
    assert {(d.line, d.column, d.field) for d in problems} == {(11, 3, "definitions.None")}
    assert "n.yaml:11:3: definitions.None: must be a string; got null" in [str(d) for d in problems]


# --- references ----------------------------------------------------------------------------------------------


def test_with_must_name_a_definition_of_the_same_unit_kind(tmp_path, extensions):
    path = tmp_path / "w.yaml"
    path.write_text(
        "concept: cross\nunit: attention_head\nsummary: s\ndefinitions:\n  d:\n    kind: mechanistic\n"
        "    source: s\n    all:\n      - checker: composition\n        params: {type: K}\n"
        "        with: token_detector_neuron.fires_on_one_token\n        threshold: '>= 1'\n",
        encoding="utf-8",
    )
    registry = load_registry([path], extensions)
    found = [d for d in registry.errors if d.file == "w.yaml"]
    assert [(d.line, d.field, d.code) for d in found] == [(11, "definitions.d.all[0].with[0]", "unit-mismatch")]
    assert "categorizes mlp_neuron units" in found[0].message


# --- the command line and the API ----------------------------------------------------------------------------


def test_an_empty_model_reference_is_an_input_error(cli):
    code, _, err = cli("run", "--no-config", "-m", "")
    assert code == 2 and "the model reference is empty" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": -1}, "batch_size= must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size="),
        ({"seed": "x"}, "seed= must be an integer from 0 to 2\\*\\*32 - 1"),
        ({"seed": 2**40}, "seed="),
        ({"seed": True}, "seed="),
        ({"plugins": [42]}, "plugins= takes module names"),
        ({"plugins": "defcheck_plugins"}, "plugins= takes a list"),
        ({"concepts": "induction_head"}, "concepts= takes a list of names"),
        ({"definitions": [3]}, "definitions= takes names"),
        ({"paths": "a.yaml"}, "paths= takes a list"),
        ({"bos_token_id": -1}, "bos_token_id="),
        ({"token_ids": (5, 1)}, "token_ids="),
        ({"include_builtin": "no"}, "include_builtin="),
    ],
)
def test_the_api_validates_its_arguments_like_the_cli(random_view, arguments, message):
    from defcheck import check

    with pytest.raises(DefcheckError, match=message):
        check(random_view, **arguments)


# --- saved reports and baselines -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_report():
    from test_baseline import build

    return build()


def test_a_report_without_model_name_is_refused_naming_file_and_path(tmp_path, cli):
    path = tmp_path / "r.json"
    path.write_text('{"report_version":1,"model":{},"concepts":{}}', encoding="utf-8")
    code, _, err = cli("report", str(path))
    assert code == 2 and "Traceback" not in err
    assert "r.json: not a valid defcheck report: model.name: is missing" in err


def test_a_baseline_with_string_scores_is_refused_naming_file_and_path(tmp_path, saved_report):
    from defcheck.ci.baseline import load_baseline

    data = json.loads(json.dumps(saved_report))
    data["concepts"]["induction_head"]["definitions"]["prefix"]["scores"]["1.2"] = "high"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DefcheckError) as caught:
        load_baseline(path)
    assert "the baseline" in str(caught.value) and "b.json" in str(caught.value)
    assert 'concepts.induction_head.definitions.prefix.scores["1.2"]: must be a number, not the string' in str(
        caught.value
    )


def test_a_baseline_whose_scores_were_emptied_is_refused(tmp_path, saved_report):
    from defcheck.ci.baseline import load_baseline

    data = json.loads(json.dumps(saved_report))
    for definition in data["concepts"]["induction_head"]["definitions"].values():
        definition["scores"] = {}
        for criterion in definition["criteria"]:
            criterion["scores"] = {}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DefcheckError, match=r"definitions\.\w+\.scores: has no score for 0\.0"):
        load_baseline(path)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.__setitem__("seed", 10**400), "seed"),
        (lambda d: d["concepts"]["induction_head"].__setitem__("summary", "\ud800"), "concepts.induction_head.summary"),
        (lambda d: d["concepts"]["induction_head"]["grid"].__setitem__("rows", ["0"]), "concepts.induction_head.grid"),
        (lambda d: d["concepts"]["induction_head"]["overlap"].__setitem__("jaccard", float("nan")), "jaccard"),
        (lambda d: d["concepts"]["induction_head"]["definitions"]["prefix"].__setitem__("members", ["9.9"]), "members"),
        (lambda d: d["concepts"]["induction_head"]["definitions"]["prefix"].__setitem__("status", "fine"), "status"),
        (lambda d: d["model"].__setitem__("info", json.loads("[" * 100 + "]" * 100)), "nests deeper than"),
    ],
)
def test_report_values_are_checked_on_read(saved_report, change, where):
    from defcheck.report import Report

    data = json.loads(json.dumps(saved_report))
    change(data)
    with pytest.raises(DefcheckError, match="not a valid defcheck report") as caught:
        Report.from_json(json.dumps(data))
    assert where in str(caught.value)


def test_a_report_of_100000_brackets_is_refused(cli, tmp_path):
    path = tmp_path / "r.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    code, _, err = cli("report", str(path))
    assert code == 2 and "r.json: not a defcheck report" in err


def test_the_valid_report_still_reads(saved_report):
    from defcheck.report import Report

    assert Report.from_json(Report(saved_report).to_json()).data == saved_report


# --- sweeps --------------------------------------------------------------------------------------------------


@pytest.fixture
def small_sweep(tmp_path):
    from defcheck.session import RunConfig
    from defcheck.sweep import SweepOptions, find_checkpoints, run_sweep

    series = find_checkpoints("builtin:toy-induction@*", steps="800")
    options = SweepOptions(RunConfig(selection=("previous_token_head",)))

    def sweep(**kwargs):
        seen: list[tuple[int, str, str | None]] = []
        result = run_sweep(
            series, options, tmp_path, plots=False, on_result=lambda c, s, e: seen.append((c.step, s, e)), **kwargs
        )
        return result, seen

    return sweep


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("[" * 100_000, "nests too deeply"),
        ("{}", "no 'report_version'"),
        ("truncated {", "not JSON"),
        (None, "concepts.x: must be an object"),
    ],
)
def test_a_damaged_sweep_report_is_run_again_with_a_note(small_sweep, tmp_path, damage, why):
    small_sweep()
    report = tmp_path / "reports" / "step-000800.json"
    if damage is None:  # the right key, the wrong content
        data = json.loads(report.read_text(encoding="utf-8"))
        data["concepts"] = {"x": 1}
        damage = json.dumps(data)
    report.write_text(damage, encoding="utf-8")
    again, seen = small_sweep()
    assert again.ran == [800] and again.skipped == []
    assert seen[0][:2] == (800, "damaged") and why in seen[0][2] and seen[-1][:2] == (800, "ok")
    assert json.loads(report.read_text(encoding="utf-8"))["concepts"]["previous_token_head"]
    _, seen = small_sweep()
    assert [status for _, status, _ in seen] == ["skipped"]


def test_a_full_disk_during_a_sweep_is_an_input_error(small_sweep, monkeypatch):
    import defcheck.sweep.driver as driver

    def full(path, content):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(driver, "atomic_write", full)
    with pytest.raises(DefcheckError, match="No space left on device; the reports written so far are kept"):
        small_sweep()


def test_a_full_disk_during_a_sweep_exits_2(tmp_path, monkeypatch, cli):
    import defcheck.sweep.driver as driver

    def full(path, content):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(driver, "atomic_write", full)
    code, _, err = cli(
        "sweep", "--no-config", "builtin:toy-induction@*", "--steps", "800", "--concept", "previous_token_head",
        "--output-dir", str(tmp_path), "--no-plots",
    )  # fmt: skip
    assert code == 2 and "No space left on device" in err and "Traceback" not in err


def test_a_null_key_in_the_project_file_is_located_at_the_key(tmp_path):
    path = tmp_path / "defcheck.yaml"
    path.write_text(
        "seed: 1\nnull: 3\nexpectations:\n"
        "  - {null: 1, concept: induction_head, metric: jaccard, threshold: '>= 0.1'}\n",
        encoding="utf-8",
    )
    _, problems = load_project(path)
    assert [(d.line, d.column, d.field) for d in problems] == [(2, 1, "None"), (4, 6, "expectations[0].None")]


def test_the_seed_limits_agree():
    from defcheck.ci.project_schema import MAX_SEED as PROJECT_MAX_SEED
    from defcheck.session.config import MAX_SEED

    assert PROJECT_MAX_SEED == MAX_SEED == 2**32 - 1
