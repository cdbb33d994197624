"""Tests of defcheck.sweep and ``defcheck sweep``: real sweeps over the shipped toy-induction series.

To stay fast they sweep a few steps of it (800, 1000, 1600: before, at and after the first induction heads)
with ``--concept induction_head``; each checkpoint takes a fraction of a second. The process-pool and Ray
comparisons are in tests/test_executors.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest
import torch
from conftest import load_script

import defcheck.sweep.driver as sweep_module
from defcheck.diagnostics import DefcheckError
from defcheck.session import RunConfig
from defcheck.sweep import (
    SweepOptions,
    atomic_write,
    build_summary,
    find_checkpoints,
    read_valid_report,
    report_name,
    run_sweep,
    step_from_name,
    summary_json,
)

STEPS = "800,1000,1600"
SERIES = "builtin:toy-induction@*"


def _script():
    from test_toy_models import _script as load_script  # the training script, imported once for all tests

    return load_script()


def _snapshots(steps: list[int]) -> dict[int, dict[str, torch.Tensor]]:
    series = resources.files("defcheck_plugins.weights").joinpath("toy-induction-checkpoints.pt")
    with resources.as_file(series) as path:
        every = torch.load(path, map_location="cpu", weights_only=True)
    return {step: every[step] for step in steps}


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory) -> Path:
    """Three shipped snapshots written as a folder of checkpoint files by the training script."""
    script = _script()
    folder = tmp_path_factory.mktemp("series")
    config = json.loads(resources.files("defcheck_plugins.weights").joinpath("toy-induction.json").read_text())
    script.write_series_dir(script.SPECS["toy-induction"], _snapshots([800, 1000, 1600]), config, folder)
    return folder


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory):
    """The reference sweep: three shipped steps, induction_head, this process."""
    out = tmp_path_factory.mktemp("sweep")
    series = find_checkpoints(SERIES, steps=STEPS)
    return run_sweep(series, SweepOptions(RunConfig(selection=("induction_head",))), out)


def _files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(out)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


# -- finding checkpoints ----------------------------------------------------------------------------------


def test_the_shipped_series_with_its_losses():
    series = find_checkpoints(SERIES)
    steps = series.steps
    assert steps[0] == 0 and steps[-1] == 4000 and len(steps) >= 20 and steps == sorted(steps)
    assert len([s for s in steps if 800 <= s <= 2000]) >= 10  # dense across the phase change
    assert series.checkpoints[5].reference == f"builtin:toy-induction@{steps[5]}"
    final = json.loads(resources.files("defcheck_plugins.weights").joinpath("toy-induction.json").read_text())
    last = series.checkpoints[-1].metrics
    training = final["defcheck"]["training"]
    assert last == {"loss": training["final_loss"], "repeat_loss": training["final_repeat_loss"]}
    repeat = [c.metrics["repeat_loss"] for c in series.checkpoints]
    assert repeat[0] > 4 and repeat[-1] < 0.3  # the objective falls over training
    assert find_checkpoints(SERIES, steps="1000,800").steps == [800, 1000]


def test_a_folder_a_glob_and_shell_expanded_files_give_the_same_series(series_dir):
    by_folder = find_checkpoints(str(series_dir))
    assert by_folder.steps == [800, 1000, 1600]
    assert [Path(c.reference).name for c in by_folder.checkpoints] == [
        "step-000800.pt",
        "step-001000.pt",
        "step-001600.pt",
    ]
    assert by_folder.checkpoints[1].metrics == find_checkpoints(SERIES, steps="1000").checkpoints[0].metrics
    by_glob = find_checkpoints(str(series_dir / "step-*.pt"))
    expanded = find_checkpoints(sorted(str(p) for p in series_dir.glob("*.pt")))
    assert by_glob.checkpoints == by_folder.checkpoints == expanded.checkpoints


def test_steps_come_from_checkpoints_json_before_the_file_name(tmp_path, series_dir):
    shutil.copy(series_dir / "step-000800.pt", tmp_path / "early.pt")
    shutil.copy(series_dir / "step-001000.pt", tmp_path / "ckpt_3.pt")
    (tmp_path / "checkpoints.json").write_text(json.dumps({"files": {"early.pt": 800}, "metrics": {"3": {"loss": 1}}}))
    series = find_checkpoints(str(tmp_path))
    assert series.steps == [3, 800] and series.checkpoints[0].metrics == {"loss": 1.0}
    assert step_from_name(Path("model-v2_step900.pth")) == 900 and step_from_name(Path("final.pt")) is None
    (tmp_path / "final.pt").write_bytes(b"")
    with pytest.raises(DefcheckError, match=r"cannot tell the training step of .*final\.pt: put it in the file name"):
        find_checkpoints(str(tmp_path))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--checkpoints", "no/such/folder"], r"^error: no/such/folder does not exist \(give a folder"),
        (["--checkpoints", "EMPTY"], r"^error: the folder .* holds no checkpoint files \(\*\.pt, \*\.pth"),
        (["--checkpoints", "EMPTY/*.pt"], r"^error: the pattern '.*' matches no checkpoint file"),
        (
            ["--checkpoints", "builtin:toy-induction"],
            r"'builtin:toy-induction' is one model: sweep every checkpoint its",
        ),
        (["--checkpoints", "builtin:toy-shortcut@*"], r"builtin:toy-shortcut ships no training checkpoints \(series"),
        (["--checkpoints", "tl:gpt2"], r"'tl:gpt2' is one model: .* or say which with --checkpoint-index"),
        (["--checkpoints", SERIES, "--checkpoint-index", "1"], r"--checkpoint-index goes with one model's series"),
        (["--checkpoints", SERIES, "--steps", "801"], r"the series has no checkpoint at step 801 \(steps: 0, 200"),
        (["--checkpoints", SERIES, "--steps", "8O0"], r"--steps takes integers separated by commas"),
        (["--checkpoints", SERIES, "--concept", "no_such_concept"], r"unknown concept or definition: no_such_concept"),
        (["--checkpoints", SERIES, "--gpus-per-task", "1"], r"--gpus-per-task is for --executor ray"),
        ([], r"name the checkpoints: --checkpoints FOLDER"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(cli, tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "EMPTY" / "notes.txt").write_text("not a checkpoint")
    code, out, err = cli("sweep", *arguments, "--output-dir", "out")
    assert code == 2, (out, err)
    assert re.search(message, err.strip(), re.MULTILINE), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "summary.json").exists()


def test_pretrained_checkpoints_without_network_fail_with_one_sentence(cli, no_dns):
    """tl:NAME with --checkpoint-index goes through TransformerLens's checkpoint labels and boot functions;
    here there is no network (forced: no DNS), which is refused once, before anything runs."""
    code, _, err = cli("sweep", "--checkpoints", "tl:EleutherAI/pythia-14m", "--checkpoint-index", "0,3")
    assert code == 2
    assert err.strip() == (
        "error: could not reach the Hugging Face hub for the checkpoints of 'EleutherAI/pythia-14m': no network? "
        "(cannot resolve huggingface.co); with them in the local Hugging Face cache, set HF_HUB_OFFLINE=1"
    )


@pytest.mark.slow
def test_pretrained_checkpoints_in_offline_mode_fail_per_checkpoint(tmp_path):
    """With HF_HUB_OFFLINE=1 the labels come from TransformerLens's schedule (Pythia's steps 0, 1, 2, 4, ...)
    and each download fails with one sentence; the summary still marks both."""
    code = textwrap.dedent(
        f"""
        from defcheck.cli import run_cli
        raise SystemExit(run_cli(["-q", "sweep", "--checkpoints", "tl:EleutherAI/pythia-14m",
                                  "--checkpoint-index", "0,3", "--concept", "induction_head",
                                  "--output-dir", {str(tmp_path)!r}]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors[0] == (
        "error: step 0 (tl:EleutherAI/pythia-14m): could not download checkpoint 0 of 'EleutherAI/pythia-14m': "
        "no network? (and it is not in the local Hugging Face cache)"
    )
    assert errors[1].startswith("error: step 4 (tl:EleutherAI/pythia-14m): could not download checkpoint 3")
    assert "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == [0, 4] and [c["status"] for c in summary["checkpoints"]] == ["failed", "failed"]
    assert [c["checkpoint_index"] for c in summary["checkpoints"]] == [0, 3]


# -- a sweep ------------------------------------------------------------------------------------------------


def test_each_report_is_what_defcheck_run_writes_for_that_checkpoint(first_sweep, cli, tmp_path):
    report = json.loads((first_sweep.out / "reports" / report_name(1000)).read_text())
    block = report.pop("sweep")
    assert block["step"] == 1000 and block["key"].startswith("sha256:") and block["metrics"]["repeat_loss"] > 0
    run = ("-q", "run", "--model", "builtin:toy-induction@1000", "--concept", "induction_head", "--no-config")
    code, _, _ = cli(*run, "-o", f"json={tmp_path / 'run.json'}")
    assert code == 0
    assert json.loads((tmp_path / "run.json").read_text()) == report


def test_the_summary_answers_when_each_kind_appears(first_sweep):
    summary = first_sweep.summary
    assert first_sweep.ran == [800, 1000, 1600] and not first_sweep.skipped and not first_sweep.failed
    assert summary["steps"] == [800, 1000, 1600] and summary["seed"] == 0 and summary["step_unit"] == "step"
    concept = summary["concepts"]["induction_head"]
    # the previous-token path into 1.2 is there at 800, before its prefix matching reaches the 0.4 cut-off
    assert concept["first_step"] == {"behavioral": 1000, "mechanistic": 800}
    assert concept["step_before"] == {"behavioral": 800, "mechanistic": None}
    assert concept["behavioral"] == ["prefix_matching_and_copying", "prefix_matching_on_text"]
    assert concept["mechanistic"] == [
        "k_composition",
        "previous_token_path",
        "previous_token_path_on_text",
        "q_composition",
    ]
    assert concept["answer"].startswith(
        "induction_head: not at the same step: the mechanistic definitions first admit a unit at step 800 "
        "(the first checkpoint), the behavioral ones at step 1000 (none at 800, the checkpoint before), 200 steps "
        "later."
    )
    assert concept["answer"] in summary["summary"]
    # the overlap against step partitions the 16 heads at every step
    for i in range(3):
        parts = [concept[key][i] for key in ("both", "behavioral_only", "mechanistic_only", "neither")]
        assert sum(parts) == 16
    assert concept["both"][0] == 0 and concept["jaccard"][0] == 0  # only the mechanistic set has a member at 800
    behavioral = summary["definitions"]["induction_head.prefix_matching_and_copying"]
    assert behavioral["first_step"] == 1000 and behavioral["first_members"] == behavioral["members"][1]
    head = behavioral["first_members"][0]
    assert behavioral["units"][head]["member"] == [False, True, True]
    assert behavioral["units"][head]["score"][1] >= 0.4 > behavioral["units"][head]["score"][0]
    assert len(behavioral["units"]) == 16 and behavioral["threshold"] == ">= 0.4"
    q = summary["definitions"]["induction_head.q_composition"]
    assert q["first_step"] is None and all(reason.startswith("undefined: ") for reason in q["no_score"])
    loss = summary["metrics"]["repeat_loss"]
    assert len(loss) == 3 and loss[0] > loss[1] > loss[2]
    assert "repeat_loss falls fastest (per step) between steps 800 and 1000" in summary["summary"]


def test_the_summary_is_deterministic_and_rebuilt_from_the_reports(first_sweep, tmp_path):
    text = (first_sweep.out / "summary.json").read_text()
    assert text == summary_json(first_sweep.summary) and json.loads(text) == first_sweep.summary
    again = run_sweep(
        find_checkpoints(SERIES, steps=STEPS), SweepOptions(RunConfig(selection=("induction_head",))), tmp_path
    )
    assert again.ran == [800, 1000, 1600]
    assert (tmp_path / "summary.json").read_text() == text
    for step in (800, 1000, 1600):
        name = f"reports/{report_name(step)}"
        assert (tmp_path / name).read_bytes() == (first_sweep.out / name).read_bytes()


@pytest.mark.slow
def test_a_process_pool_gives_the_same_bytes(first_sweep, tmp_path):
    from defcheck.sweep.executors import ProcessPoolExecutor

    series = find_checkpoints(SERIES, steps=STEPS)
    with ProcessPoolExecutor(2) as pool:
        result = run_sweep(
            series, SweepOptions(RunConfig(selection=("induction_head",))), tmp_path, executor=pool, plots=False
        )
    assert result.ran == [800, 1000, 1600]
    assert (tmp_path / "summary.json").read_bytes() == (first_sweep.out / "summary.json").read_bytes()
    for step in (800, 1000, 1600):
        name = f"reports/{report_name(step)}"
        assert (tmp_path / name).read_bytes() == (first_sweep.out / name).read_bytes()


def test_a_folder_written_by_the_training_script_sweeps_like_the_shipped_series(series_dir, first_sweep, tmp_path):
    result = run_sweep(
        find_checkpoints(str(series_dir)), SweepOptions(RunConfig(selection=("induction_head",))), tmp_path
    )
    mine, shipped = result.summary, first_sweep.summary
    assert mine["concepts"] == shipped["concepts"] and mine["metrics"] == shipped["metrics"]
    assert mine["definitions"] == shipped["definitions"]


# -- resuming -----------------------------------------------------------------------------------------------


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = sweep_module.run_checkpoint

    def counted(task):
        calls.append(task.checkpoint.step)
        return real(task)

    monkeypatch.setattr(sweep_module, "run_checkpoint", counted)
    return calls


def test_a_resumed_sweep_reruns_only_missing_or_invalid_reports(first_sweep, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(first_sweep.out, out)
    reports = out / "reports"
    kept = (reports / report_name(800)).read_bytes(), (reports / report_name(800)).stat().st_mtime_ns
    truncated = (reports / report_name(1000)).read_bytes()
    (reports / report_name(1000)).write_bytes(truncated[: len(truncated) // 2])  # a crash in a naive writer
    (reports / report_name(1600)).unlink()  # never written
    calls = _counting(monkeypatch)
    result = run_sweep(
        find_checkpoints(SERIES, steps=STEPS), SweepOptions(RunConfig(selection=("induction_head",))), out
    )
    assert calls == [1000, 1600] and result.ran == [1000, 1600] and result.skipped == [800]
    assert ((reports / report_name(800)).read_bytes(), (reports / report_name(800)).stat().st_mtime_ns) == kept
    assert (reports / report_name(1000)).read_bytes() == truncated
    assert (out / "summary.json").read_bytes() == (first_sweep.out / "summary.json").read_bytes()
    calls.clear()
    result = run_sweep(
        find_checkpoints(SERIES, steps=STEPS), SweepOptions(RunConfig(selection=("induction_head",))), out
    )
    assert calls == [] and result.skipped == [800, 1000, 1600]


def test_reports_are_checked_not_assumed(first_sweep, tmp_path, monkeypatch):
    """Another seed, another selection, another report_version, an errored definition: each is re-run."""
    out = tmp_path / "out"
    shutil.copytree(first_sweep.out, out)
    series = find_checkpoints(SERIES, steps=STEPS)
    calls = _counting(monkeypatch)
    run_sweep(series, SweepOptions(RunConfig(seed=1, selection=("induction_head",))), out, plots=False)
    assert calls == [800, 1000, 1600]
    calls.clear()
    run_sweep(
        series, SweepOptions(RunConfig(seed=1, selection=("induction_head", "positional_head"))), out, plots=False
    )
    assert calls == [800, 1000, 1600]
    calls.clear()
    path = out / "reports" / report_name(1000)
    data = json.loads(path.read_text())
    key = data["sweep"]["key"]
    assert read_valid_report(path, key) is not None and read_valid_report(path, "sha256:other") is None
    data["report_version"] = 99
    path.write_text(json.dumps(data))
    assert read_valid_report(path, key) is None
    data["report_version"] = 1
    data["concepts"]["induction_head"]["definitions"]["k_composition"]["status"] = "errored"
    path.write_text(json.dumps(data))
    assert read_valid_report(path, key) is None
    run_sweep(
        series, SweepOptions(RunConfig(seed=1, selection=("induction_head", "positional_head"))), out, plots=False
    )
    assert calls == [1000]


def test_an_interrupted_sweep_leaves_whole_reports_and_resumes(tmp_path, monkeypatch):
    real = sweep_module.run_checkpoint
    calls: list[int] = []

    def interrupted(task):
        calls.append(task.checkpoint.step)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_module, "run_checkpoint", interrupted)
    series = find_checkpoints(SERIES, steps=STEPS)
    options = SweepOptions(RunConfig(selection=("induction_head",)))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(series, options, tmp_path)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [report_name(800)]
    assert not (tmp_path / "summary.json").exists()
    monkeypatch.setattr(sweep_module, "run_checkpoint", real)
    result = run_sweep(series, options, tmp_path, plots=False)
    assert result.skipped == [800] and result.ran == [1000, 1600]


def test_ctrl_c_says_how_to_resume(cli, tmp_path, monkeypatch):
    def interrupted(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "run_checkpoint", interrupted)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("sweep", "--checkpoints", SERIES, "--steps", "800", "--concept", "induction_head")
    assert code == 130
    assert "interrupted: the reports written so far are in sweep/reports; run the same command again to resume" in err


def test_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch):
    target = tmp_path / "reports" / "step-000001.json"
    atomic_write(target, "old")
    assert target.read_text() == "old"

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, "new and longer")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # the temporary file is gone


def test_a_stale_temporary_file_is_removed(first_sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_sweep.out, out)
    (out / "reports" / f".{report_name(800)}.123.tmp").write_text('{"report_ver')
    run_sweep(
        find_checkpoints(SERIES, steps=STEPS), SweepOptions(RunConfig(selection=("induction_head",))), out, plots=False
    )
    assert not list((out / "reports").glob(".*.tmp"))


# -- failures -----------------------------------------------------------------------------------------------


def test_a_failing_checkpoint_does_not_lose_the_others(cli, series_dir, tmp_path, monkeypatch):
    folder = tmp_path / "series"
    shutil.copytree(series_dir, folder)
    (folder / "step-001200.pt").write_bytes(b"not a torch file")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("-q", "sweep", "--checkpoints", "series", "--concept", "induction_head", "--output-dir", "out")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: step 1200 (series/step-001200.pt): ") and "Traceback" not in err
    assert lines[-1] == "error: 1 of 4 checkpoints failed (1200); the summary marks them"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    statuses = {c["step"]: c["status"] for c in summary["checkpoints"]}
    assert statuses == {800: "ok", 1000: "ok", 1200: "failed", 1600: "ok"}
    failed = summary["checkpoints"][2]
    assert failed["report"] is None and failed["error"] == lines[0].split(": ", 2)[2]
    definition = summary["definitions"]["induction_head.prefix_matching_and_copying"]
    assert definition["members"][2] is None and definition["status"][2] is None
    assert summary["concepts"]["induction_head"]["first_step"]["behavioral"] == 1000
    assert "1 failed (1200)" in summary["summary"]
    assert sorted(p.name for p in (tmp_path / "out" / "reports").iterdir()) == [
        report_name(800),
        report_name(1000),
        report_name(1600),
    ]
    html = (tmp_path / "out" / "summary.html").read_text()
    assert "Failed checkpoints" in html and "failed: " in html


# -- the command line ---------------------------------------------------------------------------------------


def test_the_command_prints_the_answer_and_writes_every_output(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("sweep", "--checkpoints", SERIES, "--steps", STEPS, "--concept", "induction_head")
    assert code == 0, err
    assert "sweeping 3 checkpoints of builtin:toy-induction@* on local into sweep" in err
    assert "first step at which each definition admits a unit" in out
    assert "induction_head: not at the same step: the mechanistic definitions first admit a unit at step 800" in out
    assert "3 checkpoint(s) checked, 0 skipped" in out
    written = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "sweep").rglob("*") if p.is_file())
    assert "sweep/summary.json" in written and "sweep/summary.html" in written
    assert {"sweep/plots/induction_head.png", "sweep/reports/step-001000.json"} <= set(written)
    before = _files(tmp_path / "sweep")
    code, out, _ = cli("sweep", "--checkpoints", SERIES, "--steps", STEPS, "--concept", "induction_head")
    assert code == 0 and "0 checkpoint(s) checked, 3 skipped (valid reports found)" in out
    after = _files(tmp_path / "sweep")
    assert {k: v for k, v in after.items() if "reports/" in k} == {k: v for k, v in before.items() if "reports/" in k}
    code, out, _ = cli(
        "-q", "sweep", "--checkpoints", SERIES, "--steps", STEPS, "--concept", "induction_head", "--restart"
    )
    assert code == 0 and out == ""
    assert (tmp_path / "sweep" / "summary.json").read_bytes() == before["summary.json"][0]


def test_the_summary_of_a_synthetic_series_with_other_units():
    """The summary treats units as the report names them (a layer '0', a neuron '1.17'), not as heads."""

    def report(members: list[str], scores: dict[str, float]) -> dict:
        definition = {"kind": "behavioral", "status": "ok", "members": members, "scores": scores, "criteria": []}
        mechanistic = {**definition, "kind": "mechanistic", "members": ["1.17"] if "1.17" in members else []}
        return {
            "seed": 3,
            "concepts": {
                "neuron_concept": {
                    "unit": "mlp_neuron",
                    "definitions": {"acts": definition, "weights": mechanistic},
                    "overlap": None,
                    "note": "no overlap",
                }
            },
        }

    series = sweep_module.Series(
        "synthetic",
        tuple(sweep_module.Checkpoint(step, f"x{step}.pt") for step in (10, 20, 30)),
    )
    reports = {
        10: report([], {"0.3": 0.1, "1.17": 0.2}),
        20: report(["1.17"], {"0.3": 0.1, "1.17": 0.9}),
        30: report(["0.3", "1.17"], {"0.3": 0.8, "1.17": 0.95}),
    }
    summary = build_summary(series, reports, {})
    acts = summary["definitions"]["neuron_concept.acts"]
    assert list(acts["units"]) == ["0.3", "1.17"]
    assert acts["units"]["1.17"] == {"member": [False, True, True], "score": [0.2, 0.9, 0.95]}
    concept = summary["concepts"]["neuron_concept"]
    assert concept["first_step"] == {"behavioral": 20, "mechanistic": 20} and concept["unit"] == "mlp_neuron"
    assert "at the same checkpoint, step 20 (none at 10, the checkpoint before)" in concept["answer"]
    assert summary["seed"] == 3 and summary["metrics"] == {}


# -- the training script's series, and the docs -------------------------------------------------------------


def test_the_training_script_snapshots_densely_across_the_phase_change():
    script = _script()
    steps = script.checkpoint_steps(4000, 21)
    assert steps == [0, 200, 400, 600, *range(800, 2001, 100), 2500, 3000, 3500, 4000]
    assert script.checkpoint_steps(100, 1) == [100] and script.checkpoint_steps(10, 3)[-1] == 10
    assert find_checkpoints(SERIES).steps == steps  # the shipped series is the script's default


@pytest.mark.slow
def test_the_shipped_losses_are_what_the_script_computes(tmp_path):
    """The series' metrics file is reproducible without training: --snapshots-only recomputes it."""
    script = _script()
    folder = tmp_path / "weights"
    folder.mkdir()
    weights = resources.files("defcheck_plugins.weights")
    for name in ("toy-induction-checkpoints.pt", "toy-induction.json", "toy-induction-checkpoints.metrics.json"):
        with resources.as_file(weights.joinpath(name)) as path:
            shutil.copy(path, folder / name)
    shipped = (folder / "toy-induction-checkpoints.metrics.json").read_text()
    (folder / "toy-induction-checkpoints.metrics.json").unlink()
    assert script.main(["--snapshots-only", "--out", str(folder), "--no-docs"]) == 0
    assert (folder / "toy-induction-checkpoints.metrics.json").read_text() == shipped


@pytest.mark.slow
def test_docs_sweep_is_what_the_script_writes_today(tmp_path):
    """docs/sweep.md quotes a real sweep over the shipped series; its figures are that sweep's PNGs."""
    script = load_script("make_sweep_docs")
    summary = script.build(tmp_path / "sweep.md", tmp_path / "img")
    docs = Path(__file__).resolve().parent.parent / "docs"
    assert (tmp_path / "sweep.md").read_text() == (docs / "sweep.md").read_text(), (
        "docs/sweep.md is stale: run python scripts/make_sweep_docs.py"
    )
    for name in script.FIGURES.values():
        shipped = docs / "img" / name
        assert shipped.is_file() and shipped.stat().st_size < 200_000, name
        assert f"(img/{name})" in (docs / "sweep.md").read_text()
    assert summary["concepts"]["induction_head"]["answer"] in (docs / "sweep.md").read_text()


def test_the_python_example_in_docs_sweep_runs(tmp_path, monkeypatch):
    docs = (Path(__file__).resolve().parent.parent / "docs" / "sweep.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/sweep.md", "exec"), {})
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["concepts"]["induction_head"]["first_step"]["behavioral"] == 1000


def test_a_definition_never_applicable_is_said_so_not_never(first_sweep):
    from defcheck.sweep.summary import first_step_text

    records = first_sweep.summary["definitions"]
    assert first_step_text(records["induction_head.prefix_matching_on_text"]) == "not applicable"  # no tokenizer
    assert first_step_text(records["induction_head.q_composition"]) == "never"  # scored (undefined), never a member
    assert first_step_text(records["induction_head.prefix_matching_and_copying"]) == "1000"


# -- the score's band across seeds --------------------------------------------------------------------------


def _banded_report(scores: dict[str, float], members: list[str], sd: dict | None, **top) -> dict:
    """A minimal report of one concept whose definition's primary criterion carries ``sd`` (or none)."""
    criterion = {"checker": "prefix_score", "threshold": ">= 0.5", "sd": sd}
    definition = {"kind": "behavioral", "status": "ok", "members": members, "scores": scores, "criteria": [criterion]}
    concept = {"unit": "head", "units": ["0.0", "1.1"], "definitions": {"acts": definition}, "overlap": None}
    return {"seed": 0, "concepts": {"c": concept}, **top}


def _three_steps() -> sweep_module.Series:
    return sweep_module.Series("synthetic", tuple(sweep_module.Checkpoint(s, f"x{s}.pt") for s in (10, 20, 30)))


def test_the_summary_carries_the_primary_scores_sd_across_seeds():
    """The first checkpoint's report is an older one (no sd key); a unit's null sd stays null; a unit seen only
    where there is no sd still gets an all-null series."""
    old = _banded_report({"0.0": 0.1, "1.1": 0.2, "2.2": 0.3}, [], None)
    del old["concepts"]["c"]["definitions"]["acts"]["criteria"][0]["sd"]
    reports = {
        10: old,
        20: _banded_report({"0.0": 0.1, "1.1": 0.6}, ["1.1"], {"0.0": None, "1.1": 0.05}, seeds=[0, 1, 2]),
        30: _banded_report({"0.0": 0.2, "1.1": 0.9}, ["1.1"], {"0.0": 0.03, "1.1": 0.02}, seeds=[0, 1, 2]),
    }
    record = build_summary(_three_steps(), reports, {})["definitions"]["c.acts"]
    assert record["band"] == {"source": "seeds", "count": 3}
    assert record["units"]["1.1"] == {"member": [False, True, True], "score": [0.2, 0.6, 0.9], "sd": [None, 0.05, 0.02]}
    assert record["units"]["0.0"]["sd"] == [None, None, 0.03]
    assert record["units"]["2.2"]["sd"] == [None, None, None]


def test_a_bootstrap_band_is_named_and_a_plain_run_has_none():
    bootstrap = {
        step: _banded_report({"0.0": 0.1, "1.1": 0.7}, ["1.1"], {"0.0": 0.01, "1.1": 0.04}, bootstrap=200)
        for step in (10, 20, 30)
    }
    record = build_summary(_three_steps(), bootstrap, {})["definitions"]["c.acts"]
    assert record["band"] == {"source": "bootstrap", "count": 200}
    assert record["units"]["1.1"]["sd"] == [0.04, 0.04, 0.04]
    plain = {step: _banded_report({"0.0": 0.1, "1.1": 0.7}, ["1.1"], None) for step in (10, 20, 30)}
    summary = build_summary(_three_steps(), plain, {})
    record = summary["definitions"]["c.acts"]
    assert "band" not in record and all(set(series) == {"member", "score"} for series in record["units"].values())
    text = summary_json(summary)
    assert '"sd"' not in text and '"band"' not in text
    for report in plain.values():  # a report from before the field: the same summary, byte for byte
        del report["concepts"]["c"]["definitions"]["acts"]["criteria"][0]["sd"]
    assert summary_json(build_summary(_three_steps(), plain, {})) == text
