"""path_ablation beyond the toy models (issue 14, point 2): on Hugging Face GPT-NeoX (rotary, parallel attention
and MLP) and Llama (RMSNorm, rotary, no Q/K biases, grouped-query attention) its scores equal a brute-force
intervention through the model's own hooks, head by head; a post-LN BERT is not applicable, with the reason."""

from __future__ import annotations

import pytest
import torch
from conftest import make_view
from defcheck_plugins.ablation import (
    PathAblationParams,
    member_outputs,
    path_ablation_hooks,
    recompute_pattern,
    score_path_ablation,
    unsupported,
)
from defcheck_plugins.attention import pattern_scores, target_mask
from defcheck_plugins.probes import RepeatedParams, build_repeated
from test_architectures_circuits import _llama_views, _tiny_bert

from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.models import ModelView, TokenSpace
from defcheck.plugin import NotApplicable

RESID, PATTERN = "blocks.{}.hook_resid_pre", "blocks.{}.attn.hook_pattern"


def _tiny_neox() -> ModelView:
    """A 2-layer GPT-NeoX (Pythia's architecture: partial rotary, parallel attention and MLP) with random weights."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        rotary_pct=0.25,
        initializer_range=0.3,  # larger than the default 0.02, so that one head's output moves later patterns
    )
    hf = GPTNeoXForCausalLM(config).eval()
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t1"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="t1", eos_token="t2", pad_token="t3")
    bridge = TransformerBridge.boot_transformers("EleutherAI/pythia-70m", hf_model=hf, tokenizer=fast)
    return ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-neox")


@pytest.fixture(scope="module")
def neox() -> ModelView:
    return _tiny_neox()


@pytest.fixture(scope="module")
def llama() -> ModelView:
    return _llama_views()[0]


def _probe(view: ModelView):
    return build_repeated(ProbeRequest(RepeatedParams(n=4, length=6), view.tokens, seed=0, n_ctx=view.n_ctx))


def _context(view: ModelView, probe, members: torch.Tensor, **params) -> CheckContext:
    logits, activations = view.run(probe.tokens, path_ablation_hooks(PathAblationParams(), view))
    return CheckContext(
        view, PathAblationParams(**params), probe=probe, logits=logits, activations=activations, related={"m": members}
    )


def _brute_force_pattern(view: ModelView, tokens: torch.Tensor, layer: int, patched: torch.Tensor, path: str):
    """Layer ``layer``'s pattern with its keys (or queries) projected from ``patched``, by the model itself: one
    pass feeds ``patched`` to the layer's norm and keeps the projected k (q), a second puts that k (q) into an
    otherwise clean pass (rotary, grouped K/V heads and the mask are the model's own)."""
    name = f"blocks.{layer}.attn.hook_{path}"
    kept: dict[str, torch.Tensor] = {}

    def feed(activation, hook):
        return patched.to(activation)

    def keep(key):
        def hook(activation, hook):
            kept[key] = activation.detach().clone()
            return activation

        return hook

    def put(activation, hook):
        return kept["projected"].to(activation)

    with torch.no_grad():
        view.run_with_hooks(tokens, [(f"blocks.{layer}.ln1.hook_in", feed), (name, keep("projected"))])
        view.run_with_hooks(tokens, [(name, put), (PATTERN.format(layer), keep("pattern"))])
    return kept["pattern"]


@pytest.mark.parametrize("path", ["k", "q"])
@pytest.mark.parametrize("which", ["neox", "llama"])
def test_scores_equal_a_per_head_intervention_through_the_model(request, which, path):
    view = request.getfixturevalue(which)
    assert unsupported(view) is None
    probe = _probe(view)
    members = torch.zeros(view.n_layers, view.n_heads, dtype=torch.bool)
    members[0, 1] = members[0, 2] = True
    context = _context(view, probe, members, path=path, ablation="zero", pattern="previous_token")
    scores = score_path_ablation(context)
    resid = context.activation(RESID.format(1))
    cached = context.activation(PATTERN.format(1))
    rope = (context.activation("blocks.1.attn.hook_cos"), context.activation("blocks.1.attn.hook_sin"))
    assert (recompute_pattern(view, 1, resid, resid, rope) - cached).abs().max() < 1e-5
    removed = member_outputs(context, members, "zero")[0]
    assert removed is not None
    patched_pattern = _brute_force_pattern(view, probe.tokens, 1, resid - removed, path)
    targets = target_mask("previous_token", probe.tokens, probe.bos)
    options = {"bos": probe.bos, "exclude_bos": False, "exclude_current_token": False}
    before = pattern_scores(cached[None].float(), targets, **options)[0].mean(0)
    after = pattern_scores(patched_pattern[None].float(), targets, **options)[0].mean(0)
    expected = before - after  # per head of layer 1, each query head with its own K/V group
    assert expected.abs().max() > 1e-4  # the ablation changed something: a wrong head or group would show
    assert torch.allclose(scores.values[1].float(), expected, atol=1e-5)
    assert (scores.values[0] == 0).all()  # no member before layer 0


def test_post_ln_bert_is_not_applicable_with_the_reason():
    _, bridge = _tiny_bert()
    view = ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-bert")
    probe = _probe(view)
    members = torch.zeros(view.n_layers, view.n_heads, dtype=torch.bool)
    members[0, 0] = True
    with pytest.raises(NotApplicable, match=r"post-LN, e\.g\. BERT"):
        score_path_ablation(_context(view, probe, members))


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("positional_embedding_type", "alibi", "its position encoding (alibi) enters the attention scores"),
        ("use_local_attn", True, "it has sliding-window (local) attention"),
        ("use_qk_norm", True, "it normalises queries and keys per head (QK norm)"),
    ],
)
def test_an_unsupported_attention_feature_is_named_before_any_work(setting, value, reason):
    view = make_view(0)
    assert unsupported(view) is None
    setattr(view.cfg, setting, value)  # the feature as TransformerLens's config states it
    found = unsupported(view)
    assert found is not None and found.startswith(reason)
