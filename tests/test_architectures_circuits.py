"""Weight-based checkers on architectures beyond the toy models: LayerNorm scale in qk_positional."""

from __future__ import annotations

import math

import torch
from conftest import make_view
from defcheck_plugins.circuits import PositionalParams, score_qk_positional

from defcheck.engine.context import CheckContext


def _previous_position_ln_view():
    """A LayerNorm model whose residual at layer 0 is W_pos alone (rows centred, of one norm), and whose head
    0.2 turns position i's query towards the key of position i - 1."""
    view = make_view(3, normalization_type="LN")
    d_model, n_ctx = view.d_model, view.n_ctx
    freqs = torch.tensor([1.0, 2.0, 4.0, 8.0]) * 2 * math.pi / n_ctx
    angles = torch.arange(n_ctx, dtype=torch.float32)[:, None] * freqs[None]
    waves = torch.zeros(n_ctx, 8)
    waves[:, 0::2], waves[:, 1::2] = torch.cos(angles), torch.sin(angles)
    positions = torch.zeros(n_ctx, d_model)
    positions[:, :8], positions[:, 8:16] = waves * 0.3, -waves * 0.3  # mean 0, small norm: only LN makes it sharp
    rotate = torch.zeros(d_model, view.d_head)
    for m, w in enumerate(freqs.tolist()):
        c, s = math.cos(w), math.sin(w)
        rotate[2 * m, 2 * m], rotate[2 * m + 1, 2 * m] = c, s
        rotate[2 * m, 2 * m + 1], rotate[2 * m + 1, 2 * m + 1] = -s, c
    identity = torch.zeros(d_model, view.d_head)
    identity[:8, :8] = torch.eye(8)
    with torch.no_grad():
        view.model.W_pos.copy_(positions)
        view.model.W_E.zero_()
        view.model.blocks[0].attn.W_Q[2].copy_(rotate * 3)
        view.model.blocks[0].attn.W_K[2].copy_(identity)
        view.model.blocks[0].attn.b_Q.zero_()
        view.model.blocks[0].attn.b_K.zero_()
    view.forget_weights()
    return view


def test_qk_positional_applies_the_layernorm_scale():
    view = _previous_position_ln_view()
    assert view.normalization == "LN"
    size = 32
    tokens = torch.randint(1, 64, (1, size), generator=torch.Generator().manual_seed(0))
    _, acts = view.run(tokens, ["blocks.0.attn.hook_pattern"])
    pattern = acts["blocks.0.attn.hook_pattern"][0].double()  # [heads, q, k], brute force: the model itself
    queries = torch.arange(1, size)
    expected = pattern[:, queries, queries - 1].mean(-1)
    context = CheckContext(view, PositionalParams(offset=1, max_position=size))
    scores = score_qk_positional(context).values[0].double()
    assert expected[2] > 0.9  # the constructed head does attend to the previous position
    assert scores[2] > 0.9
    assert (scores - expected).abs().max() < 1e-4  # every head of layer 0, not only the built one


def _tiny_bert():
    """A 2-layer post-LN BERT with random weights and distinct LayerNorm weights, booted as a bridge."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    hf = BertForMaskedLM(config).eval()
    with torch.no_grad():
        for module in hf.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 2.0)
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t1"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="t1", pad_token="t0", cls_token="t2", sep_token="t3", mask_token="t4"
    )
    bridge = TransformerBridge.boot_transformers("google-bert/bert-base-uncased", hf_model=hf, tokenizer=fast)
    return hf, bridge


def test_post_ln_folds_the_norm_that_feeds_each_attention_layer():
    from defcheck_plugins.circuits import head_weight, post_ln

    from defcheck.models import ModelView, TokenSpace

    hf, bridge = _tiny_bert()
    view = ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-bert")
    assert post_ln(view)
    assert not post_ln(make_view(0, normalization_type="LN"))
    feeding = [hf.bert.embeddings.LayerNorm.weight, hf.bert.encoder.layer[0].output.LayerNorm.weight]
    after_attention = [layer.attention.output.LayerNorm.weight for layer in hf.bert.encoder.layer]
    for layer in range(2):
        query = hf.bert.encoder.layer[layer].attention.self.query.weight.detach().double()  # [h*d_head, d_model]
        raw = query.T.reshape(32, 4, 8).permute(1, 0, 2)  # [heads, d_model, d_head], straight from HF
        expected = raw * feeding[layer].detach().double()[None, :, None]
        folded = head_weight(view, "W_Q")[layer]
        assert (folded - expected).abs().max() < 1e-6
        wrong = raw * after_attention[layer].detach().double()[None, :, None]  # what ln1 would give
        assert (folded - wrong).abs().max() > 1e-2


def _llama_views():
    """A 2-layer Llama with grouped-query attention (4 query heads, 2 K/V heads) and the same model written
    with one K/V head per query head (each group's weights copied to its heads, as HF's ``repeat_kv`` shares
    them); the second is the brute-force reference, with nothing to expand."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from defcheck.models import ModelView, TokenSpace

    shape = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    torch.manual_seed(0)
    grouped = LlamaForCausalLM(LlamaConfig(**shape, num_key_value_heads=2, max_position_embeddings=64)).eval()
    with torch.no_grad():
        for module in grouped.modules():
            if type(module).__name__ == "LlamaRMSNorm":
                module.weight.uniform_(0.5, 2.0)
    full = LlamaForCausalLM(LlamaConfig(**shape, num_key_value_heads=4, max_position_embeddings=64)).eval()
    state = {}
    for name, value in grouped.state_dict().items():
        if name.endswith(("k_proj.weight", "v_proj.weight")):
            value = value.reshape(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32)
        state[name] = value
    full.load_state_dict(state)
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(64)}, unk_token="t1"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokens = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (grouped(tokens).logits - full(tokens).logits).abs().max() < 1e-5  # the same model
    views = []
    for hf in (grouped, full):  # a tokenizer each: booting gives it a BOS token
        fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="t1", eos_token="t2", pad_token="t3")
        bridge = TransformerBridge.boot_transformers("meta-llama/Llama-3.2-1B", hf_model=hf, tokenizer=fast)
        views.append(ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-llama"))
    return views


def test_grouped_query_heads_score_as_their_own_group():
    from defcheck_plugins.circuits import EigenParams, composition_scores, score_ov_copying, score_qk_eigenvalue

    grouped, full = _llama_views()
    assert grouped.weight("W_K").shape[1] == 2 and full.weight("W_K").shape[1] == 4
    for checker in (score_ov_copying, score_qk_eigenvalue):
        for circuit in ("full", "bare"):
            ours = checker(CheckContext(grouped, EigenParams(circuit=circuit))).values
            reference = checker(CheckContext(full, EigenParams(circuit=circuit))).values
            assert torch.allclose(ours, reference, atol=1e-5, equal_nan=True)
            assert ours[0].max() - ours[0].min() > 1e-3  # heads differ: a wrong group would show
    for kind in ("Q", "K", "V"):
        ours = composition_scores(grouped, kind)
        reference = composition_scores(full, kind)
        assert torch.allclose(ours, reference, atol=1e-5, equal_nan=True)
        assert ours[0, :, 1].std() > 1e-4


def test_different_output_vocabulary_makes_the_full_ov_circuit_not_applicable():
    import pytest
    from defcheck_plugins.circuits import EigenParams, score_ov_copying, score_qk_eigenvalue
    from defcheck_plugins.successor import score_ov_successor

    from defcheck.plugin import NotApplicable

    view = make_view(0, d_vocab_out=32)  # Tracr-shaped: 64 tokens in, 32 out
    for checker in (score_ov_copying, score_ov_successor):
        params = EigenParams() if checker is score_ov_copying else None
        with pytest.raises(NotApplicable, match="d_vocab_out=32"):
            checker(CheckContext(view, params))
    bare = score_ov_copying(CheckContext(view, EigenParams(circuit="bare"))).values
    assert not torch.isnan(bare).any()  # the bare circuit lives in d_model and stays defined
    assert not torch.isnan(score_qk_eigenvalue(CheckContext(view, EigenParams())).values).any()  # W_E only


def test_qk_positional_next_token_on_a_bidirectional_encoder_matches_its_patterns():
    hf, bridge = _tiny_bert()
    from defcheck.models import ModelView, TokenSpace

    size = 16
    angles = torch.arange(32, dtype=torch.float32)[:, None] * torch.tensor([1.0, 2.0, 4.0]) * 2 * math.pi / 32
    waves = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # rows of one norm
    with torch.no_grad():
        hf.bert.embeddings.word_embeddings.weight.zero_()
        hf.bert.embeddings.token_type_embeddings.weight.zero_()
        hf.bert.embeddings.position_embeddings.weight.zero_()
        hf.bert.embeddings.position_embeddings.weight[:, :6] = waves
        hf.bert.embeddings.position_embeddings.weight[:, 6:12] = -waves  # centred
    view = ModelView(bridge, TokenSpace(64, bos_token_id=None), name="tiny-bert")
    view.forget_weights()
    _, acts = view.run(torch.full((1, size), 7), ["blocks.0.attn.hook_pattern"])
    pattern = acts["blocks.0.attn.hook_pattern"][0].double()  # [heads, q, k]: the model, both directions
    queries = torch.arange(0, size - 1)
    expected = pattern[:, queries, queries + 1].mean(-1)
    scores = score_qk_positional(CheckContext(view, PositionalParams(offset=-1, max_position=size))).values[0]
    assert (scores.double() - expected).abs().max() < 1e-3
    assert expected.max() - expected.min() > 1e-3


def test_qk_positional_refuses_ahead_on_a_causal_model():
    import pytest

    from defcheck.plugin import NotApplicable

    with pytest.raises(NotApplicable, match="causal"):
        score_qk_positional(CheckContext(make_view(0), PositionalParams(offset=-1)))


def test_grouped_query_heads_copy_as_their_own_group():
    """``copying`` reads each query head's values through its K/V group: the same scores as the model with one
    K/V head per query head."""
    import dataclasses

    from defcheck.api import check
    from defcheck.models import TokenSpace

    reports = []
    for view in _llama_views():
        view = dataclasses.replace(view, tokens=TokenSpace(64, bos_token_id=0))
        reports.append(check(view, definitions=["induction_head.prefix_matching_and_copying"]))
    scores = [
        next(
            criterion["scores"]
            for criterion in report.data["concepts"]["induction_head"]["definitions"]["prefix_matching_and_copying"][
                "criteria"
            ]
            if criterion["checker"] == "copying"
        )
        for report in reports
    ]
    assert scores[0].keys() == scores[1].keys() and len(scores[0]) == 8
    assert all(math.isclose(scores[0][unit], scores[1][unit], abs_tol=1e-5) for unit in scores[0])
    assert len({round(value, 4) for value in scores[0].values()}) > 1  # heads differ: a wrong group would show
