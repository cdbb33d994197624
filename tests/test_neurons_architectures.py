"""The MLP-neuron checkers beyond the toy models (issue 14, point 2): on Hugging Face Llama (gated SwiGLU MLP),
GPT-NeoX (parallel attention and MLP) and BERT (post-LN), token_selectivity reads each neuron's activation as the
Hugging Face modules compute it, and embedding_read reads through the norms that really feed each MLP (checked
against Hugging Face's own LayerNorm modules) or is not applicable with the reason (gated MLPs)."""

from __future__ import annotations

import copy

import pytest
import torch
from defcheck_plugins.neurons import ReadParams, SelectivityParams
from test_ablation_architectures import _tiny_neox
from test_architectures_circuits import _llama_views, _tiny_bert

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.units import resolve_units
from defcheck.hooks.manager import load_plugins
from defcheck.models import ModelView, TokenSpace
from defcheck.plugin import NotApplicable


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


@pytest.fixture(scope="module")
def models() -> dict[str, ModelView]:
    _, bridge = _tiny_bert()
    bert = ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-bert")
    return {"llama": _llama_views()[0], "neox": _tiny_neox(), "bert": bert}


def _context(extensions, view, params, probe=None, activations=None) -> CheckContext:
    units = resolve_units(extensions.unit_kinds["mlp_neuron"], view)
    return CheckContext(view, params, probe=probe, activations=activations or {}, units=units)


def _hf_mlps(view: ModelView) -> list[tuple[torch.nn.Module, object]]:
    """Per layer, the Hugging Face module whose input is the MLP's input, and the neuron activation from it."""
    hf = view.model.original_model
    if hasattr(hf, "gpt_neox"):
        return [(layer.mlp, lambda x, m=layer.mlp: m.act(m.dense_h_to_4h(x))) for layer in hf.gpt_neox.layers]
    if hasattr(hf, "bert"):
        return [
            (layer.intermediate, lambda x, m=layer.intermediate: m.intermediate_act_fn(m.dense(x)))
            for layer in hf.bert.encoder.layer
        ]
    return [(layer.mlp, lambda x, m=layer.mlp: m.act_fn(m.gate_proj(x)) * m.up_proj(x)) for layer in hf.model.layers]


def _hf_activations(view: ModelView, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's neuron activations ``[b, pos, d_mlp]`` computed from Hugging Face's own MLP modules."""
    inputs: list[torch.Tensor] = []
    mlps = _hf_mlps(view)
    handles = [module.register_forward_hook(lambda m, args, out: inputs.append(args[0])) for module, _ in mlps]
    try:
        with torch.no_grad():
            view.model.original_model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        return [activation(x) for (_, activation), x in zip(mlps, inputs, strict=True)]


@pytest.mark.parametrize("which", ["llama", "neox", "bert"])
def test_token_selectivity_reads_the_activation_hugging_face_computes(extensions, models, which):
    view = models[which]
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 64, (8, 16), generator=generator)
    probe = ProbeBatch("random_tokens", {}, tokens, bos=False)
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(view.n_layers)]
    _, activations = view.run(tokens, names)
    expected = _hf_activations(view, tokens)
    for layer, name in enumerate(names):  # gated: act(x W_gate) * (x W_in), not act(x W_in)
        assert (activations[name].float() - expected[layer].float()).abs().max() < 1e-5
    context = _context(extensions, view, SelectivityParams(min_count=1), probe, activations)
    shares = extensions.checkers["token_selectivity"].score(context)
    flat = tokens.reshape(-1)
    for layer, neuron in [(0, 5), (1, 40)]:
        acts = expected[layer][..., neuron].reshape(-1)
        means = {int(t): float(acts[flat == t].mean()) for t in flat.unique()}
        floor = min(means.values())
        top = max(means, key=means.get)
        share = (means[top] - floor) / sum(m - floor for m in means.values())
        assert float(shares.values[layer, neuron]) == pytest.approx(share, rel=1e-4)
        assert shares.evidence[f"{layer}.{neuron}"] == {"token": top}


def _read_directions(view: ModelView) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, brute force from Hugging Face's modules: each token's embedding carried through the norms on
    its direct path up to the norm that feeds the MLP (bias set to zero: it is the same for every token), then
    centred; and the MLP's input weights ``[d_mlp, d_model]`` with that norm's scale folded in, centred."""
    hf = view.model.original_model

    def unbiased(norm: torch.nn.Module) -> torch.nn.Module:
        norm = copy.deepcopy(norm)
        with torch.no_grad():
            norm.bias.zero_()
        return norm

    def centred(x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(-1, keepdim=True)

    out = []
    with torch.no_grad():
        if hasattr(hf, "bert"):
            x = unbiased(hf.bert.embeddings.LayerNorm)(hf.bert.embeddings.word_embeddings.weight)
            for layer in hf.bert.encoder.layer:
                feeding = layer.attention.output.LayerNorm  # post-LN: the norm after attention feeds the MLP
                out.append((centred(x), centred(layer.intermediate.dense.weight * feeding.weight)))
                x = unbiased(layer.output.LayerNorm)(unbiased(feeding)(x))
        else:
            embedding = centred(hf.gpt_neox.embed_in.weight)
            for (
                layer
            ) in hf.gpt_neox.layers:  # parallel: post_attention_layernorm reads the block's input and feeds the MLP
                w_in = layer.mlp.dense_h_to_4h.weight * layer.post_attention_layernorm.weight
                out.append((embedding, centred(w_in)))
    return out


@pytest.mark.parametrize("which", ["neox", "bert"])
def test_embedding_read_goes_through_the_norms_that_feed_each_mlp(extensions, models, which):
    view = models[which]
    checker = extensions.checkers["embedding_read"]
    cosine = checker.score(_context(extensions, view, ReadParams(measure="cosine")))
    for layer, (directions, w_in) in enumerate(_read_directions(view)):
        unit = torch.nn.functional.normalize
        cosines = unit(directions.double(), dim=-1) @ unit(w_in.double(), dim=-1).T  # [tokens, d_mlp]
        best, token = cosines.max(0)
        assert torch.allclose(cosine.values[layer].double(), best, atol=1e-5)
        assert cosine.evidence[f"{layer}.7"] == {"token": int(token[7])}


def test_on_post_ln_the_mlp_of_layer_1_reads_through_more_than_ln2(extensions, models):
    """The old read (ln2 folded, the raw embedding, as pre-LN) gives other numbers on BERT: the fix matters."""
    view = models["bert"]
    cosine = extensions.checkers["embedding_read"].score(_context(extensions, view, ReadParams(measure="cosine")))
    w = view.ln_weight(1, "ln2").double()[:, None] * view.weight("W_in")[1].double()
    w = w - w.mean(0, keepdim=True)
    e = view.weight("W_E").double()
    e = e - e.mean(-1, keepdim=True)
    old = (torch.nn.functional.normalize(e, dim=-1) @ torch.nn.functional.normalize(w, dim=0)).max(0).values
    assert (old - cosine.values[1].double()).abs().max() > 1e-2


def test_embedding_read_on_a_gated_mlp_is_not_applicable_with_the_reason(extensions, models):
    view = models["llama"]
    with pytest.raises(NotApplicable, match=r"gated \(e\.g\. SwiGLU\).*two directions"):
        extensions.checkers["embedding_read"].score(_context(extensions, view, ReadParams()))
