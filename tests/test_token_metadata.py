"""A model without token metadata (issue 14, point 5): ``run`` and ``sweep`` stop before any forward pass with one
error naming the model, what is missing and the three ways to give it, unless only weight-based definitions are
selected; the API names its keyword arguments instead of the flags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import defcheck
from defcheck.diagnostics import DefcheckError
from defcheck.models.view import ModelView

WEIGHTS = Path(__file__).resolve().parents[1] / "plugins" / "weights"
WEIGHT_BASED = ("--concept", "duplicate_token_head.token_matching_qk", "--concept", "positional_head.positional_qk")


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """The toy induction checkpoint saved without its ``defcheck:`` block; any forward pass fails the test."""
    config = json.loads((WEIGHTS / "toy-induction.json").read_text(encoding="utf-8"))
    assert config.pop("defcheck")["bos_token_id"] == 0
    folder = tmp_path / "runs"
    folder.mkdir()
    for step in (10, 20):
        shutil.copy(WEIGHTS / "toy-induction.pt", folder / f"step-{step}.pt")
        (folder / f"step-{step}.json").write_text(json.dumps(config), encoding="utf-8")

    def no_forward_pass(*args, **kwargs):
        raise AssertionError("a forward pass ran")

    monkeypatch.setattr(ModelView, "run_batches", no_forward_pass)
    monkeypatch.chdir(tmp_path)
    return folder


def _the_one_error(err: str, model: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"error: the model '{model}' has no token metadata (no BOS token id"), line
    assert "usable token ids" in line
    for way in ("--bos-token-id", "--token-ids", "`defcheck:` block in the model's config", "tokenizer"):
        assert way in line, way
    return line


def test_run_stops_before_any_forward_pass_with_one_error(cli, bare):
    model = str(bare / "step-10.pt")
    code, out, err = cli("run", "--no-config", "-m", model)
    assert code == 2
    line = _the_one_error(err, model)
    assert "probes of 15 selected definitions" in line  # every built-in definition with a probe, counted once
    assert out == ""


def test_run_of_weight_based_definitions_needs_no_token_metadata(cli, bare):
    code, out, err = cli("run", "--no-config", "-m", str(bare / "step-10.pt"), *WEIGHT_BASED, "-f", "json")
    assert code == 0, err
    report = json.loads(out)
    scored = report["concepts"]["duplicate_token_head"]["definitions"]["token_matching_qk"]
    assert scored["status"] == "ok" and scored["error"] is None


def test_token_flags_are_enough(cli, bare, monkeypatch):
    monkeypatch.undo()  # the forward pass is allowed again
    monkeypatch.chdir(bare)
    args = ("run", "--no-config", "-m", "step-10.pt", "--concept", "previous_token_head", "-q")
    code, _, err = cli(*args, "--bos-token-id", "0", "--token-ids", "1:64")
    assert code == 0, err


def test_sweep_stops_before_any_checkpoint_runs(cli, bare, tmp_path):
    code, _, err = cli("sweep", "--no-config", "-k", str(bare), "--output-dir", "swept", "--no-plots", "-q")
    assert code == 2
    _the_one_error(err, str(bare / "step-10.pt"))
    assert not (tmp_path / "swept" / "reports").exists() or not any((tmp_path / "swept" / "reports").iterdir())


def test_api_names_its_keyword_arguments(bare):
    view = defcheck.load_model(str(bare / "step-10.pt"))
    assert isinstance(view, ModelView) and view.tokens is None
    with pytest.raises(DefcheckError) as caught:
        defcheck.check(view, concepts=["induction_head"])
    message = str(caught.value)
    assert "\n" not in message and message.count("has no token metadata") == 1
    assert "bos_token_id=" in message and "token_ids=" in message and "--bos-token-id" not in message
    report = defcheck.check(view, definitions=["positional_head.positional_qk"])
    assert list(report.concepts["positional_head"].definitions) == ["positional_qk"]
