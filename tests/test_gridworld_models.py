"""The gridworld loader, the shipped policies and their training script, and goal_misgeneralization end to end."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from defcheck_plugins.gridworld.policy import GridPolicy, PolicySet

import defcheck
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import load_plugins
from defcheck.models.loading import load_model, pick_loader

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "plugins" / "weights" / "gridworld"
SCRIPT = ROOT / "scripts" / "train_gridworld.py"
CONFIG = {"loader": "gridworld", "architecture": "gridworld-mlp", "size": 5, "hidden": [8, 6]}


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


def _save(folder: Path, state: dict, config: dict | None = CONFIG, name: str = "mine") -> Path:
    weights = folder / f"{name}.pt"
    torch.save(state, weights)
    if config is not None:
        (folder / f"{name}.json").write_text(json.dumps(config), encoding="utf-8")
    return weights


def _policy(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return GridPolicy(5, (8, 6)).state_dict()


# -- loading ------------------------------------------------------------------------------------------


def test_the_shipped_policies_load_with_their_training_record(extensions):
    policies = load_model("gridworld:policies", extensions)
    assert isinstance(policies, PolicySet) and policies.model_names == ["p0", "p0.1", "p1", "p10", "p50"]
    assert policies.hidden == (48, 48) and policies.size == 7
    record = policies.info["policies"]
    assert record["p0"]["p"] == 0.0 and record["p50"]["p"] == 0.5
    assert record["p0"]["train_success"] == 1.0 and record["p0"]["deploy_success"] < 0.3
    assert record["p50"]["deploy_success"] == 1.0
    json.dumps(policies.info)  # reports embed it
    constructed = load_model("gridworld:constructed", extensions)
    assert constructed.model_names == ["oracle", "corner_seeker", "corner_route"]


def test_the_shipped_files_are_small_and_hold_what_the_record_says():
    weights = WEIGHTS / "policies.pt"
    record = json.loads((WEIGHTS / "policies.json").read_text(encoding="utf-8"))
    assert weights.stat().st_size < 200_000
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(value.dtype == torch.float32 for value in state.values())
    assert {key.partition("/")[0] for key in state} == set(record["policies"])
    assert record["training"]["seconds"] < 120


def test_a_users_policy_file_loads_by_path_or_prefix(tmp_path, extensions):
    weights = _save(tmp_path, _policy())
    assert pick_loader(str(weights), extensions).name == "gridworld"  # the config claims it, not `checkpoint`
    single = load_model(str(weights), extensions)
    assert single.model_names == ["mine"] and single.size == 5 and single.info["weights"].endswith("mine.pt")
    several = _save(tmp_path, {f"{n}/{k}": v for n in ("a", "b") for k, v in _policy(ord(n)).items()}, name="two")
    both = load_model(f"gridworld:{several}", extensions)
    assert both.model_names == ["a", "b"]
    module = GridPolicy(5, (8, 6))
    module.load_state_dict(_policy(ord("b")))
    obs = torch.zeros(1, 3, 50)
    obs[0, :, [0, 7, 13]] = 1.0
    assert torch.allclose(both.forward(obs.expand(2, -1, -1))[0][1], module(obs[0]), atol=1e-6)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", r"the model checkpoint .*nothere.pt does not exist"),
        ("no_config", r"no config for the policy weights .*mine.pt: put mine.json beside it"),
        ("not_torch", r"is not a PyTorch checkpoint"),
        ("wrong_shape", r"policy 'mine' has 'net.0.weight' of shape \(8, 98\), but a GridPolicy with size 5"),
        ("missing_key", r"policy 'mine' has no 'net.4.bias'"),
        ("extra_key", r"policy 'mine' has the key 'net.9.weight'"),
        ("architecture", r"names the architecture 'transformer'"),
        ("hidden", r"'hidden' must be a non-empty list of positive widths"),
        ("mixed", r"mixes named keys"),
        ("unknown", r"unknown gridworld model 'policys'; did you mean 'policies'"),
    ],
)
def test_bad_policy_files_are_one_sentence(tmp_path, extensions, setup, message):
    reference = f"gridworld:{tmp_path / 'mine.pt'}"
    state = _policy()
    config = dict(CONFIG)
    if setup == "missing":
        reference = f"gridworld:{tmp_path / 'nothere.pt'}"
    elif setup == "no_config":
        _save(tmp_path, state, config=None)
    elif setup == "not_torch":
        (tmp_path / "mine.pt").write_text("not a checkpoint", encoding="utf-8")
        (tmp_path / "mine.json").write_text(json.dumps(config), encoding="utf-8")
    elif setup == "wrong_shape":
        torch.manual_seed(0)
        _save(tmp_path, GridPolicy(7, (8, 6)).state_dict(), config)
    elif setup == "missing_key":
        _save(tmp_path, {k: v for k, v in state.items() if k != "net.4.bias"})
    elif setup == "extra_key":
        _save(tmp_path, {**state, "net.9.weight": torch.zeros(1)})
    elif setup in ("architecture", "hidden"):
        config.update({"architecture": "transformer"} if setup == "architecture" else {"hidden": []})
        _save(tmp_path, state, config)
    elif setup == "mixed":
        _save(tmp_path, {**{f"a/{k}": v for k, v in state.items()}, "net.0.weight": state["net.0.weight"]})
    else:
        reference = "gridworld:policys"
    with pytest.raises(DefcheckError, match=message) as raised:
        load_model(reference, extensions)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)


def test_the_cli_says_one_sentence_for_a_bad_file(tmp_path, cli):
    weights = _save(tmp_path, {k: v for k, v in _policy().items() if k != "net.4.bias"})
    code, _, err = cli("--quiet", "run", "--model", str(weights))
    assert code == 2
    assert "has no 'net.4.bias'" in err and "Traceback" not in err


# -- the training script ------------------------------------------------------------------------------


def _train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--steps",
            "40",
            "--log-every",
            "20",
            "--eval-episodes",
            "64",
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )


def test_training_is_reproducible_bit_for_bit(tmp_path):
    _train(tmp_path / "a", "--policy", "x=0", "--policy", "y=0.5")
    _train(tmp_path / "b", "--policy", "x=0", "--policy", "y=0.5")
    first, second = ((tmp_path / run / "policies.pt").read_bytes() for run in ("a", "b"))
    assert first == second
    record = json.loads((tmp_path / "a" / "policies.json").read_text(encoding="utf-8"))
    assert record["sha256"] == hashlib.sha256(first).hexdigest()
    assert [entry["step"] for entry in record["log"]] == [20, 40] and len(record["log"][0]["loss"]) == 2
    other = _train(tmp_path / "c", "--policy", "x=0", "--policy", "y=0.5", "--seed", "1")
    assert "trained 2 policies" in other.stdout
    assert (tmp_path / "c" / "policies.pt").read_bytes() != first


@pytest.mark.slow
def test_the_script_retrains_the_shipped_policies(tmp_path):
    """The whole training (about 15 s on one thread) retrains the shipped policies: the same loss curve and success
    rates, up to the last bits that another CPU's kernels move."""
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    shipped = json.loads((WEIGHTS / "policies.json").read_text(encoding="utf-8"))
    fresh = json.loads((tmp_path / "policies.json").read_text(encoding="utf-8"))
    # Bit-identity across machines is not promised: the same torch on another x86_64 CPU (other SIMD kernels) moves
    # the last bits (seen: step-500 losses 0.52536 against 0.52534). Two runs on one machine are bit-identical (above).
    for fresh_entry, shipped_entry in zip(fresh["log"], shipped["log"], strict=True):
        assert fresh_entry["step"] == shipped_entry["step"]
        for a, b in zip(fresh_entry["loss"], shipped_entry["loss"], strict=True):
            assert abs(a - b) <= 0.02 * max(1.0, abs(b))
    for name, row in shipped["policies"].items():
        assert abs(fresh["policies"][name]["deploy_success"] - row["deploy_success"]) < 0.1
    assert fresh["training"]["seconds"] < 120


# -- the concept, end to end --------------------------------------------------------------------------


def test_the_concept_file_validates(extensions):
    from defcheck.language.registry import load_registry

    registry = load_registry([ROOT / "definitions" / "goal_misgeneralization.yaml"], extensions, include_builtin=False)
    assert not registry.errors
    concept = registry.files["goal_misgeneralization"].concept
    assert concept.unit == "policy"
    kinds = {name: definition.kind for name, definition in concept.definitions.items()}
    assert kinds == {
        "competent_low_reward": "behavioral",
        "seeks_training_corner": "behavioral",
        "represents_corner_as_goal": "mechanistic",
    }


@pytest.mark.slow
def test_the_trained_policies_agree_across_framings():
    report = defcheck.check(load_model("gridworld:policies"), concepts=["goal_misgeneralization"])
    concept = report.concepts["goal_misgeneralization"]
    members = {name: d["members"] for name, d in concept.definitions.items()}
    assert members == {
        "competent_low_reward": ["p0"],
        "seeks_training_corner": ["p0"],
        "represents_corner_as_goal": ["p0"],
    }
    assert concept.overlap["both"] == ["p0"] and concept.overlap["jaccard"] == 1
    decoding = concept.definitions["represents_corner_as_goal"]["criteria"][0]["scores"]
    assert decoding["p0"] > 0.6 and max(decoding[n] for n in ("p0.1", "p1", "p10", "p50")) < 0.2


@pytest.mark.slow
def test_the_route_follower_is_behavioral_only(tmp_path, cli):
    out = tmp_path / "out"
    code, _, err = cli("--quiet", "run", "--model", "gridworld:constructed", "--format", "json", "--out", str(out))
    assert code == 0, err
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    concept = data["concepts"]["goal_misgeneralization"]
    assert concept["overlap"]["both"] == ["corner_seeker"]
    assert concept["overlap"]["behavioral_only"] == ["corner_route"]
    assert concept["overlap"]["mechanistic_only"] == []
    assert "induction_head" in data["skipped"]  # a policy set has no attention heads


@pytest.mark.slow
def test_a_transformer_run_skips_the_policy_concept():
    report = defcheck.check(load_model("builtin:toy-induction"), concepts=["goal_misgeneralization", "induction_head"])
    assert "goal_misgeneralization" not in report.concepts
    assert "not a set of gridworld policies" in report.data["skipped"]["goal_misgeneralization"]
