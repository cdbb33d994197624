"""Tests of the shipped toy models (plugins/weights, trained by scripts/train_toy_models.py).

The shipped weights are tested, not retrained: only one slow test trains (toy-shortcut, a few seconds) to
check that the script is reproducible.
"""

from __future__ import annotations

import json
import textwrap
from importlib import resources

import pytest
import torch
from conftest import load_script
from defcheck_plugins.attention import PATTERN_HOOK, pattern_scores, target_mask
from defcheck_plugins.probes import RepeatedParams, build_repeated

from defcheck.engine.probe_data import ProbeRequest
from defcheck.engine.runner import evaluate
from defcheck.hooks.manager import load_plugins
from defcheck.language.registry import load_registry
from defcheck.models.loading import load_model

NAMES = ("toy-induction", "toy-shortcut", "toy-mlp")
SHORTCUT_LENGTH = 8


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


class _Views(dict):
    """The built-in models, each loaded on first use."""

    def __init__(self, extensions):
        super().__init__()
        self.extensions = extensions

    def __missing__(self, name):
        self[name] = load_model(f"builtin:{name}", self.extensions)
        return self[name]


@pytest.fixture(scope="module")
def views(extensions):
    return _Views(extensions)


def prefix_matching(view, length: int, pattern: str = "prefix_matching", n: int = 32) -> torch.Tensor:
    """``[layers, heads]``: share of attention on the pattern's targets on ``[BOS] + R + R`` (R of ``length``)."""
    request = ProbeRequest(RepeatedParams(n=n, length=length), view.tokens, seed=0, n_ctx=view.n_ctx)
    probe = build_repeated(request)
    names = [PATTERN_HOOK.format(layer) for layer in range(view.n_layers)]
    _, activations = view.run(probe.tokens, names)
    patterns = torch.stack([activations[name] for name in names])
    targets = target_mask(pattern, probe.tokens, probe.bos)
    scores = pattern_scores(patterns, targets, bos=probe.bos, exclude_bos=False, exclude_current_token=False)
    return scores.nanmean(1)


def test_shipped_files_are_small_float32_with_metadata_and_provenance():
    folder = resources.files("defcheck_plugins.weights")
    for name in NAMES:
        weights = folder.joinpath(f"{name}.pt")
        assert weights.is_file(), name
        with resources.as_file(weights) as path:
            assert path.stat().st_size < 5_000_000
            state = torch.load(path, weights_only=True)
        assert all(value.dtype == torch.float32 for value in state.values())
        config = json.loads(folder.joinpath(f"{name}.json").read_text())
        assert config["defcheck"]["bos_token_id"] == 0 and config["defcheck"]["token_ids"] == [1, 64]
        training = config["defcheck"]["training"]
        assert {"seed", "steps", "final_loss", "wall_seconds"} <= set(training)
        assert config["positional_embedding_type"] == "standard"
        json.dumps(config)


def test_toy_induction_has_induction_heads_at_every_length(views):
    view = views["toy-induction"]
    by_length = torch.stack([prefix_matching(view, length)[1] for length in (5, 11, 17)])  # layer 1: [3, H]
    best = int(by_length.amin(0).argmax())
    assert by_length[:, best].min() > 0.6, by_length
    previous = prefix_matching(view, 11, pattern="previous_token")[0]
    assert previous.max() > 0.6, previous  # the previous-token head it composes with


def test_toy_shortcut_matches_prefixes_only_at_its_training_length(views):
    view = views["toy-shortcut"]
    at_training = prefix_matching(view, SHORTCUT_LENGTH)
    assert at_training.max() > 0.6, at_training
    for length in (5, 11, 17):
        assert prefix_matching(view, length).max() < 0.3, length


def repeat_loss(view, length: int, n: int = 32) -> float:
    """Next-token loss on the second repeat of ``[BOS] + R + R`` (after its first token)."""
    request = ProbeRequest(RepeatedParams(n=n, length=length), view.tokens, seed=0, n_ctx=view.n_ctx)
    tokens = build_repeated(request).tokens
    logits, _ = view.run(tokens)
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return float(losses[:, length + 1 :].mean())


def test_toy_mlp_completes_repeats_without_induction_attention(views):
    """toy-mlp (LayerNorm, MLPs) was trained like toy-induction and completes repeats (low loss), but no head
    attends by prefix matching: induction behavior in the logits without induction attention."""
    view = views["toy-mlp"]
    assert view.normalization == "LN" and not view.attn_only
    assert view.weight("W_in").shape == (2, 64, 256)
    for length in (8, 11):
        assert repeat_loss(view, length) < 1.0, length
        assert prefix_matching(view, length).max() < 0.3, length
    assert repeat_loss(views["toy-induction"], 11) < 0.1


def test_the_runner_tells_induction_from_the_shortcut(tmp_path, views, extensions):
    """Through defcheck's runner: a definition that wants prefix matching at every length finds induction heads
    in toy-induction and none in toy-shortcut; one that only looks at the shortcut's length finds both."""
    (tmp_path / "toy_check.yaml").write_text(
        textwrap.dedent(
            """
            concept: toy_check
            unit: attention_head
            summary: Prefix matching at several lengths, or at one.
            definitions:
              every_length:
                kind: behavioral
                source: test
                all:
                  - checker: attention_pattern
                    params: {pattern: prefix_matching, aggregate: min}
                    probe: {name: repeated_random_tokens, n: 16, length: [5, 11, 17]}
                    threshold: ">= 0.5"
              training_length:
                kind: behavioral
                source: test
                all:
                  - checker: attention_pattern
                    params: {pattern: prefix_matching}
                    probe: {name: repeated_random_tokens, n: 16, length: 8}
                    threshold: ">= 0.5"
            """
        )
    )
    registry = load_registry([tmp_path], extensions, include_builtin=False)
    assert not registry.errors, registry.errors
    induction = evaluate(views["toy-induction"], registry, extensions).definitions
    shortcut = evaluate(views["toy-shortcut"], registry, extensions).definitions
    assert induction["toy_check.every_length"].members[1].any()
    assert induction["toy_check.training_length"].members[1].any()
    assert not shortcut["toy_check.every_length"].members.any()
    assert shortcut["toy_check.training_length"].members.any()


def _script():
    return load_script("train_toy_models")


def test_the_task_layouts():
    script = _script()
    generator = torch.Generator().manual_seed(0)
    spec = script.SPECS["toy-induction"]
    tokens, predictable = script.make_batch(spec, generator)
    assert tokens.shape == (spec.batch, 64) and (tokens[:, 0] == 0).all() and (tokens[:, 1:] > 0).all()
    for row, mask in zip(tokens, predictable, strict=True):
        targets = mask.nonzero().flatten() + 1  # positions whose token the context determines
        length = int(mask.sum()) + 1
        assert 4 <= length <= 20
        assert torch.equal(row[targets], row[targets - length])
    fixed, mask = script.make_batch(script.SPECS["toy-shortcut"], generator)
    assert torch.equal(fixed[:, 1:9], fixed[:, 9:17])
    assert mask.nonzero()[:, 1].unique().tolist() == list(range(9, 16))


@pytest.mark.slow
def test_training_is_reproducible(tmp_path):
    """Two short runs of the script's toy-shortcut training give bit-identical weights, and the loss falls."""
    script = _script()
    first = script.train(script.SPECS["toy-shortcut"], steps=25, quiet=True)
    second = script.train(script.SPECS["toy-shortcut"], steps=25, quiet=True)
    for key, value in first["model"].state_dict().items():
        assert torch.equal(value, second["model"].state_dict()[key]), key
    assert first["curve"][-1]["repeat_loss"] < 4.3
    last = first["curve"][-1]
    document = script.save(first, {"loss": last["loss"], "repeat_loss": last["repeat_loss"]}, tmp_path)
    assert document["defcheck"]["training"]["steps"] == 25
    extensions = load_plugins()
    view = load_model(str(tmp_path / "toy-shortcut.pt"), extensions)
    assert view.tokens.bos_token_id == 0 and view.info["training"]["seed"] == script.SPECS["toy-shortcut"].seed
