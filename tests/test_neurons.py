"""The MLP-neuron checkers: ground truth on a hand-built model, parity with naive per-neuron loops, undefined
scores, streaming, and the built-in token_detector_neuron concept on the shipped toy-mlp."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_view
from defcheck_plugins.constructed import load_constructed
from defcheck_plugins.neurons import ReadParams, SelectivityParams

import defcheck
from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.units import resolve_units
from defcheck.hooks.manager import load_plugins
from defcheck.models.loading import load_model

CONCEPT = "token_detector_neuron"


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


def _context(extensions, view, params, probe=None, activations=None) -> CheckContext:
    units = resolve_units(extensions.unit_kinds["mlp_neuron"], view)
    return CheckContext(view, params, probe=probe, activations=activations or {}, units=units)


def _probe(view, n: int = 24, length: int = 20, seed: int = 3) -> ProbeBatch:
    ids = view.tokens.usable_ids()
    generator = torch.Generator().manual_seed(seed)
    body = ids[torch.randint(0, ids.numel(), (n, length), generator=generator)]
    tokens = torch.cat([torch.full((n, 1), view.tokens.bos_token_id), body], dim=1)
    return ProbeBatch("random_tokens", {}, tokens, bos=True)


def _selectivity(extensions, view, probe, measure: str):
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(view.n_layers)]
    _, activations = view.run(probe.tokens, names)
    context = _context(extensions, view, SelectivityParams(measure=measure, min_count=1), probe, activations)
    return extensions.checkers["token_selectivity"].score(context), activations


def test_every_neuron_of_the_hand_built_bigram_mlps_is_a_token_detector_in_both_senses():
    """builtin:induction-ln's MLP neuron t reads TOK(t) and nothing else (W_in = I, ReLU): each neuron of both
    layers detects its own token, by behavior and by weights; neuron 0 (BOS) never sees its token on a probe."""
    report = defcheck.check(load_constructed("induction-ln"), [CONCEPT])
    concept = report.concepts[CONCEPT]
    detectors = [f"{layer}.{t}" for layer in range(2) for t in range(1, 32)]
    assert concept.overlap.both == detectors and concept.overlap.jaccard == 1.0
    fires = concept.definitions["fires_on_one_token"]
    assert fires.scores["1.5"] == 1.0 and fires.undefined["0.0"].endswith("the same for every token")
    reads = concept.definitions["reads_one_token"]
    assert {reads.scores[u] for u in detectors} == {1.0}
    for criterion in (fires.criteria[0], reads.criteria[0]):
        assert all(criterion["evidence"][u]["token"] == int(u.split(".")[1]) for u in detectors)


def test_token_selectivity_matches_a_loop_over_neurons_and_tokens(extensions, random_view_mlp):
    view = random_view_mlp
    probe = _probe(view)
    shares, activations = _selectivity(extensions, view, probe, "share")
    index, _ = _selectivity(extensions, view, probe, "selectivity")
    tokens = probe.tokens[:, 1:].reshape(-1)
    for layer, neuron in [(0, 0), (1, 17), (2, 127)]:
        acts = activations[f"blocks.{layer}.mlp.hook_post"][:, 1:, neuron].reshape(-1)
        means = {int(t): float(acts[tokens == t].mean()) for t in tokens.unique()}
        floor = min(means.values())
        top = max(means, key=means.get)
        lifts = {t: m - floor for t, m in means.items()}
        share = lifts[top] / sum(lifts.values())
        rest = (sum(lifts.values()) - lifts[top]) / (len(lifts) - 1)
        assert float(shares.values[layer, neuron]) == pytest.approx(share, rel=1e-4)
        assert float(index.values[layer, neuron]) == pytest.approx((lifts[top] - rest) / (lifts[top] + rest), rel=1e-4)
        assert shares.evidence[f"{layer}.{neuron}"] == {"token": top}


def test_embedding_read_matches_a_loop_over_neurons_and_tokens(extensions, random_view_mlp):
    view = random_view_mlp
    share = extensions.checkers["embedding_read"].score(_context(extensions, view, ReadParams(measure="share")))
    cosine = extensions.checkers["embedding_read"].score(_context(extensions, view, ReadParams(measure="cosine")))
    ids = view.tokens.usable_ids().tolist()
    for layer, neuron in [(0, 3), (1, 64), (2, 100)]:
        w = view.ln_weight(layer, "ln2") * view.weight("W_in")[layer][:, neuron]
        w = w - w.mean()
        cosines = []
        for t in ids:
            e = view.weight("W_E")[t]
            e = e - e.mean()
            cosines.append(float(e @ w) / (float(e.norm()) * float(w.norm())))
        best = max(cosines)
        assert float(cosine.values[layer, neuron]) == pytest.approx(best, abs=1e-5)
        expected = best**2 / sum(c * c for c in cosines) if best > 0 else 0.0
        assert float(share.values[layer, neuron]) == pytest.approx(expected, rel=1e-4)
        assert share.evidence[f"{layer}.{neuron}"] == {"token": ids[cosines.index(best)]}


def test_a_dead_neuron_has_undefined_scores_with_reasons(extensions):
    view = make_view(5, attn_only=False, normalization_type="LN", d_mlp=16)
    with torch.no_grad():
        view.model.blocks[1].mlp.get_submodule("in").weight[4].zero_()
        view.model.blocks[1].mlp.get_submodule("in").bias[4] = 0.0
    view.forget_weights()
    probe = _probe(view, n=8)
    shares, _ = _selectivity(extensions, view, probe, "share")
    assert math.isnan(float(shares.values[1, 4])) and not torch.isnan(shares.values[0]).any()
    assert shares.undefined == {"1.4": "undefined: the neuron's mean activation is the same for every token"}
    read = extensions.checkers["embedding_read"].score(_context(extensions, view, ReadParams()))
    assert read.undefined == {"1.4": "undefined: the neuron's input weights are zero"}


def test_streamed_batches_give_the_scores_of_the_whole_probe(random_view_mlp):
    whole = defcheck.check(random_view_mlp, [CONCEPT])
    batched = defcheck.check(random_view_mlp, [CONCEPT], batch_size=37)
    for name in ("fires_on_one_token", "selective_for_a_token"):
        a = whole.concepts[CONCEPT].definitions[name].scores
        b = batched.concepts[CONCEPT].definitions[name].scores
        assert a.keys() == b.keys() and all(a[u] == pytest.approx(b[u], abs=1e-5) for u in a)


def test_the_concept_on_the_shipped_toy_mlp():
    """toy-mlp, trained on repeated random tokens, has no neuron that detects one token in either strict sense;
    the looser selectivity index admits some neurons whose direct read is spread over many tokens."""
    report = defcheck.check(load_model("builtin:toy-mlp"), [CONCEPT])
    concept = report.concepts[CONCEPT]
    assert concept.unit == "mlp_neuron" and len(concept.units) == 512 and len(concept.grid["columns"]) == 256
    definitions = concept.definitions
    assert definitions["fires_on_one_token"].members == [] and definitions["reads_one_token"].members == []
    loose = definitions["selective_for_a_token"].members
    assert 5 <= len(loose) <= 40 and concept.overlap.behavioral_only == loose and concept.overlap.both == []
    reads = definitions["reads_one_token"].scores
    assert max(v for v in reads.values() if v is not None) < 0.3  # far from one token's direction
    assert report.to_json() == defcheck.check(load_model("builtin:toy-mlp"), [CONCEPT]).to_json()


def test_the_starter_file_of_a_neuron_concept_validates_with_the_built_in_checkers(tmp_path):
    from defcheck.language.registry import load_registry
    from defcheck.language.starter import starter_file

    path = tmp_path / "my_neuron.yaml"
    path.write_text(starter_file("my_neuron", "mlp_neuron"), encoding="utf-8")
    registry = load_registry([path], load_plugins(), include_builtin=False)
    assert registry.diagnostics == []
    assert [c.checker for d in registry.concepts["my_neuron"].definitions.values() for c in d.criteria] == [
        "token_selectivity",
        "embedding_read",
    ]


def test_embedding_read_in_chunks_of_tokens_gives_the_same_scores(extensions, random_view_mlp, monkeypatch):
    import defcheck_plugins.neurons as neurons

    checker = extensions.checkers["embedding_read"]
    whole = checker.score(_context(extensions, random_view_mlp, ReadParams()))
    monkeypatch.setattr(neurons, "READ_CHUNK", 5)
    chunked = checker.score(_context(extensions, random_view_mlp, ReadParams()))
    assert torch.allclose(whole.values, chunked.values, atol=1e-6) and whole.evidence == chunked.evidence
