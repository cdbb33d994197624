"""Tracr-shaped models (issue 14, item 3): an input vocabulary of 10 ids and an output one of 8, BOS at a nonzero
id, no LayerNorm, MLPs, a context of 17. Saved as a TransformerLens 4 native state dict with its JSON config, the
model loads with its own output vocabulary, and the whole built-in registry runs on it without an error: every
criterion is scored (finite, or NaN with a reason) or not applicable with a reason, the probes too long for its
context are shortened and say so, and the checkers that compare input ids with output ids are not applicable.

Also here: checkers that read the unembedding or the final norm are not applicable on a model whose loader
found those parts missing from the checkpoint (``info["untrained"]``), never scored on random weights."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import make_view

import defcheck
from defcheck.models.loading import load_model

CONFIG = {
    "n_layers": 2,
    "d_model": 35,
    "n_heads": 2,
    "d_head": 5,
    "d_mlp": 16,
    "n_ctx": 17,
    "d_vocab": 10,
    "d_vocab_out": 8,
    "act_fn": "relu",
    "normalization_type": None,
    "attn_only": False,
    "positional_embedding_type": "standard",
}
BOS = 3
LOGIT_CONCEPT = """\
concept: logit_head
unit: attention_head
summary: Criteria that read the logits or the unembedding.
definitions:
  copies:
    kind: behavioral
    source: tests
    all:
      - checker: copying
        probe: {name: repeated_random_tokens, n: 4, length: 4}
        threshold: "> 0"
  predicts_next:
    kind: behavioral
    source: tests
    all:
      - checker: direct_logit_attribution
        probe: {name: repeated_random_tokens, n: 4, length: 4}
        threshold: "> 0"
  full_ov:
    kind: mechanistic
    source: tests
    all:
      - checker: ov_eigenvalue_copying
        threshold: ">= 0.5"
  bare_ov:
    kind: mechanistic
    source: tests
    all:
      - checker: ov_eigenvalue_copying
        params: {circuit: bare}
        threshold: ">= 0.5"
  ov_successor:
    kind: mechanistic
    source: tests
    all:
      - checker: ov_successor
        threshold: ">= 0.5"
"""


def tracr_bridge():
    """The model, built by hand: a seeded native TransformerBridge with Tracr's shapes."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    model = TransformerBridge.boot_native(TransformerBridgeConfig(**CONFIG, seed=0))
    model.eval()
    return model


@pytest.fixture(scope="module")
def tracr(tmp_path_factory):
    """``(bridge, path of tracr.pt)``: the state dict and ``tracr.json`` (with a ``defcheck:`` block) beside it."""
    folder = tmp_path_factory.mktemp("tracr")
    bridge = tracr_bridge()
    torch.save(bridge.state_dict(), folder / "tracr.pt")
    config = {**CONFIG, "defcheck": {"bos_token_id": BOS, "token_ids": [0, 10], "special_ids": [BOS]}}
    (folder / "tracr.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "logit_head.yaml").write_text(LOGIT_CONCEPT, encoding="utf-8")
    return bridge, folder / "tracr.pt"


@pytest.fixture(scope="module")
def tracr_report(tracr):
    """The whole built-in registry, plus the logit criteria, on the loaded Tracr-shaped model."""
    _, path = tracr
    view = load_model(str(path))
    return defcheck.check(view, paths=[path.parent / "logit_head.yaml"]).data


def _criteria(report):
    for concept_name, concept in report["concepts"].items():
        for name, definition in concept["definitions"].items():
            for criterion in definition["criteria"]:
                yield f"{concept_name}.{name}", definition, criterion


def test_it_loads_with_its_own_output_vocabulary(tracr):
    bridge, path = tracr
    view = load_model(str(path))
    assert (view.d_vocab, view.d_vocab_out, view.n_ctx) == (10, 8, 17)
    assert tuple(view.weight("W_E").shape) == (10, 35) and tuple(view.weight("W_U").shape) == (35, 8)
    assert view.tokens is not None and view.tokens.bos_token_id == BOS and BOS not in view.tokens.usable_ids()
    tokens = torch.tensor([[BOS, 0, 1, 2, 9, 4, 5, 6]])
    logits, _ = view.run(tokens)
    assert logits.shape == (1, 8, 8)
    torch.testing.assert_close(logits, bridge(tokens).detach())  # the weights it was saved with


def test_the_whole_registry_runs_without_an_error(tracr_report):
    assert tracr_report["model"]["d_vocab"] == 10 and tracr_report["model"]["n_ctx"] == 17
    seen = 0
    for where, definition, criterion in _criteria(tracr_report):
        seen += 1
        assert definition["error"] is None and criterion["error"] is None, where
        if criterion["not_applicable"]:
            assert criterion["scores"] is None and criterion["not_applicable"].strip(), where
            continue
        for unit, value in criterion["scores"].items():
            if value is None:
                assert criterion["undefined"].get(unit, "").strip(), f"{where} {unit}: undefined without a reason"
            else:
                assert math.isfinite(value), f"{where} {unit}"
    assert seen >= 25


def test_criteria_comparing_input_and_output_ids_are_not_applicable_and_the_others_scored(tracr_report):
    by_checker: dict[str, set[str]] = {}
    for _, _, criterion in _criteria(tracr_report):
        if (criterion["probe"] or "").startswith(("text(", "repeated_text(")):  # no tokenizer: no text
            assert "text probes need a way to turn text into the model's tokens" in criterion["not_applicable"]
            continue
        state = "not_applicable" if criterion["not_applicable"] else "scored"
        by_checker.setdefault(criterion["checker"], set()).add(state)
        if criterion["checker"] in ("copying", "direct_logit_attribution", "ov_successor"):
            assert "output vocabulary (d_vocab_out=8) is not its input vocabulary (d_vocab=10)" in (
                criterion["not_applicable"] or ""
            ), criterion
    definitions = tracr_report["concepts"]["logit_head"]["definitions"]
    assert "d_vocab_out=8" in definitions["full_ov"]["not_applicable"]
    assert definitions["bare_ov"]["status"] == "ok"  # W_V W_O: no vocabulary involved
    for checker in ("attention_pattern", "qk_eigenvalue", "qk_positional", "composition", "path_ablation"):
        assert by_checker[checker] == {"scored"}, checker


def test_the_induction_probe_is_shortened_and_says_so(tracr_report):
    induction = tracr_report["concepts"]["induction_head"]["definitions"]["prefix_matching_and_copying"]
    pattern = induction["criteria"][0]
    assert pattern["checker"] == "attention_pattern" and pattern["scores"] is not None
    assert pattern["probe_note"] == (
        "shortened: repeated_random_tokens length 21 needs 43 tokens (2 repeats and BOS); the model's context is "
        "17, so length 8 was used instead of 13 and 21 (32 sequences instead of 96)"
    )
    for key, probe in tracr_report["probes"].items():
        assert probe["positions"] <= 17, key


@pytest.mark.slow
def test_the_cli_runs_it_without_an_error_line(tracr, cli):
    _, path = tracr
    code, out, err = cli("run", "--no-config", "--model", str(path))
    assert code in (0, 1), err
    assert "error:" not in out + err


def test_logit_checkers_refuse_an_untrained_unembedding(tmp_path):
    (tmp_path / "logit_head.yaml").write_text(LOGIT_CONCEPT, encoding="utf-8")
    view = make_view(2, n_layers=1, n_heads=2, d_head=8, d_model=16, d_vocab=12, n_ctx=16, normalization_type="LN")
    view.info["untrained"] = ["unembed", "ln_final"]
    definitions = defcheck.check(view, paths=[tmp_path], include_builtin=False).data["concepts"]["logit_head"]
    definitions = definitions["definitions"]
    for name in ("copies", "predicts_next", "full_ov", "ov_successor"):
        reason = definitions[name]["not_applicable"] or ""
        assert "the unembedding (W_U) and the final norm (ln_final), which the checkpoint does not contain" in reason
    assert definitions["bare_ov"]["status"] == "ok"
