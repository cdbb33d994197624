"""Tests of the model loaders (plugins/loaders.py) and of choosing one (defcheck/models/loading.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from conftest import TINY, make_view
from defcheck_plugins import loaders

from defcheck import ModelLoader, hookimpl
from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import load_plugins
from defcheck.models.loading import (
    DEFAULT_MODEL,
    bridge_config,
    load_model,
    parse_token_ids,
    pick_loader,
    token_space,
)
from defcheck.models.view import ModelView

BUILTIN = ("toy-induction", "toy-shortcut", "toy-mlp")
TOKENS = torch.randint(1, 64, (3, 20), generator=torch.Generator().manual_seed(0))
MLP = {"n_layers": 2, "attn_only": False, "normalization_type": "LN", "d_mlp": 128}


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


def logits(view) -> torch.Tensor:
    with torch.no_grad():
        return view.model(TOKENS)


def save_bridge(tmp_path, view, config=None, name="model", suffix=".json", defcheck=None):
    """Save ``view``'s state dict and a config beside it; returns the checkpoint path."""
    path = tmp_path / f"{name}.pt"
    torch.save(view.model.state_dict(), path)
    document = dict(config if config is not None else TINY)
    if defcheck is not None:
        document["defcheck"] = defcheck
    text = json.dumps(document) if suffix == ".json" else yaml.safe_dump(document)
    (tmp_path / f"{name}{suffix}").write_text(text)
    return path


# -- choosing a loader ----------------------------------------------------------------------------------


def test_the_three_loaders_are_plugins(extensions):
    assert {"builtin", "checkpoint", "tl"} <= set(extensions.model_loaders)
    assert extensions.owner("model_loaders", "builtin") == "loaders"
    assert pick_loader("builtin:toy-induction", extensions).name == "builtin"
    assert pick_loader("tl:gpt2", extensions).name == "tl"
    assert pick_loader("some/dir/model.pt", extensions).name == "checkpoint"
    assert pick_loader("checkpoint:weights.bin", extensions).name == "checkpoint"


def test_an_unknown_reference_lists_the_loaders(extensions):
    with pytest.raises(
        DefcheckError,
        match=r"unknown model loader 'bultin'.*did you mean 'builtin'.*builtin, checkpoint, gridworld, hf, tl",
    ):
        load_model("bultin:toy-induction", extensions)
    with pytest.raises(
        DefcheckError, match=r"no model loader understands 'gpt2'.*loaders: builtin, checkpoint, gridworld, hf, tl"
    ):
        load_model("gpt2", extensions)


def test_a_third_party_loader_that_crashes_is_one_sentence():
    class Broken:
        @hookimpl
        def defcheck_model_loaders(self):
            def load(reference, options):
                raise RuntimeError("boom")

            return [ModelLoader("broken", load, matches=lambda ref: ref.startswith("broken:"))]

    extensions = load_plugins(extra=[Broken()])
    with pytest.raises(DefcheckError, match=r"model loader 'broken' failed on 'broken:x': RuntimeError: boom"):
        load_model("broken:x", extensions)


# -- builtin: -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_models_load_with_token_metadata(extensions, name):
    view = load_model(f"builtin:{name}", extensions)
    assert isinstance(view, ModelView)
    assert view.name == f"builtin:{name}"
    assert (view.n_layers, view.n_heads, view.d_model, view.d_vocab, view.n_ctx) == (2, 8, 64, 64, 64)
    assert view.tokens.bos_token_id == 0 and view.tokens.token_ids == (1, 64)
    assert view.tokens.usable_ids().tolist() == list(range(1, 64))
    assert view.positional == "standard"
    assert view.info["loader"] == "builtin" and view.info["training"]["seed"] is not None
    json.dumps(view.info)  # reports embed it
    assert torch.isfinite(logits(view)).all()
    assert view.attn_only == (name != "toy-mlp")
    assert view.normalization == ("LN" if name == "toy-mlp" else None)


def test_the_default_model_is_shipped():
    assert DEFAULT_MODEL == "builtin:toy-induction"
    assert set(BUILTIN) <= set(loaders.builtin_models())


def test_an_unknown_builtin_lists_the_available_ones(extensions):
    with pytest.raises(DefcheckError, match=r"unknown built-in model 'toy-inductoin'; did you mean 'toy-induction'\?"):
        load_model("builtin:toy-inductoin", extensions)
    with pytest.raises(DefcheckError, match=r"available: builtin:toy-induction, builtin:toy-mlp, builtin:toy-shortcut"):
        load_model("builtin:", extensions)


def test_toy_induction_ships_training_snapshots(extensions):
    steps = loaders.builtin_checkpoints("toy-induction")
    assert len(steps) >= 10 and steps[0] == 0
    final = load_model("builtin:toy-induction", extensions)
    last = load_model(f"builtin:toy-induction@{steps[-1]}", extensions)
    assert last.info["training_step"] == steps[-1] and last.name == f"builtin:toy-induction@{steps[-1]}"
    assert torch.equal(logits(last), logits(final))
    assert not torch.equal(logits(load_model("builtin:toy-induction@0", extensions)), logits(final))
    with pytest.raises(DefcheckError, match=r"builtin:toy-induction has no checkpoint at step '7' \(steps: 0, "):
        load_model("builtin:toy-induction@7", extensions)
    with pytest.raises(DefcheckError, match=r"builtin:toy-shortcut ships no training checkpoints"):
        load_model("builtin:toy-shortcut@0", extensions)


def test_builtin_token_metadata_can_be_overridden(extensions):
    view = load_model("builtin:toy-shortcut", extensions, bos_token_id=5, token_ids="10:20")
    assert view.tokens.bos_token_id == 5 and view.tokens.token_ids == (10, 20)


# -- checkpoint files ---------------------------------------------------------------------------------


def test_a_bridge_checkpoint_round_trips_with_its_token_metadata(tmp_path, extensions):
    view = make_view(3)
    path = save_bridge(tmp_path, view, defcheck={"bos_token_id": 63, "token_ids": [0, 63]})
    loaded = load_model(str(path), extensions)
    assert torch.equal(logits(loaded), logits(view))
    assert loaded.tokens.bos_token_id == 63 and loaded.tokens.token_ids == (0, 63)
    assert loaded.info["format"] == "transformer_bridge"
    overridden = load_model(str(path), extensions, bos_token_id=0, token_ids=(1, 64))
    assert overridden.tokens.bos_token_id == 0 and overridden.tokens.token_ids == (1, 64)


def test_a_yaml_config_and_an_explicit_config_option(tmp_path, extensions):
    view = make_view(4, **MLP)
    path = save_bridge(tmp_path, view, {**TINY, **MLP}, suffix=".yaml", defcheck={"bos_token_id": 0})
    assert torch.equal(logits(load_model(str(path), extensions)), logits(view))
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    (elsewhere / "cfg.json").write_text(json.dumps({**TINY, **MLP}))
    (tmp_path / "model.yaml").unlink()
    loaded = load_model(str(path), extensions, model_config=str(elsewhere / "cfg.json"))
    assert torch.equal(logits(loaded), logits(view))
    assert loaded.tokens is None  # nothing says which id is BOS: probes stop with a clear error, no guessing
    as_dict = load_model(f"checkpoint:{path}", extensions, model_config={**TINY, **MLP}, bos_token_id=0)
    assert torch.equal(logits(as_dict), logits(view)) and as_dict.tokens.bos_token_id == 0


@pytest.mark.parametrize("shape", [TINY, {**TINY, **MLP}], ids=["attn-only", "ln-mlp"])
def test_a_transformer_lens_3_checkpoint_is_converted(tmp_path, extensions, shape):
    """A HookedTransformer-style state dict (legacy keys, mask/IGNORE buffers) and HookedTransformerConfig dict."""
    view = make_view(7, **{k: v for k, v in shape.items() if k not in TINY or TINY[k] != v})
    with torch.no_grad():  # non-zero unembed bias, as a trained TL 3 model has
        view.model.unembed.bias.copy_(torch.linspace(-1, 1, 64))
    legacy = {key: value.detach().clone() for key, value in view.model.tl_parameters().items()}
    assert "blocks.0.attn.W_Q" in legacy and "embed.W_E" in legacy
    for layer in range(shape["n_layers"]):
        legacy[f"blocks.{layer}.attn.mask"] = torch.tril(torch.ones(64, 64, dtype=torch.bool))
        legacy[f"blocks.{layer}.attn.IGNORE"] = torch.tensor(-1e5)
    torch.save(legacy, tmp_path / "legacy.pth")
    hooked_config = {
        **shape,
        "d_vocab_out": 64,
        "model_name": "custom",
        "original_architecture": None,
        "act_fn": None if shape.get("attn_only") else "relu",
        "eps": 1e-5,
        "use_attn_result": False,
        "use_split_qkv_input": False,
        "use_hook_mlp_in": False,
        "positional_embedding_type": "standard",
        "shortformer_pos": False,
        "n_params": 12345,
        "dtype": "torch.float32",
        "device": "cuda",
        "tokenizer_prepends_bos": None,
        "default_prepend_bos": True,
        "init_mode": "gpt2",
        "seed": None,
        "ungroup_grouped_query_attention": False,
        "defcheck": {"bos_token_id": 0, "token_ids": [1, 64]},
    }
    (tmp_path / "legacy.json").write_text(json.dumps(hooked_config))
    loaded = load_model(str(tmp_path / "legacy.pth"), extensions)
    assert loaded.info["format"] == "transformer_lens_3"
    assert torch.allclose(logits(loaded), logits(view), atol=1e-6, rtol=0)
    assert torch.equal(loaded.weight("W_Q"), view.weight("W_Q"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"positional_embedding_type": "shortformer"},
            r"positional_embedding_type 'shortformer' is not available in TransformerLens 4",
        ),
        ({"shortformer_pos": True}, r"'shortformer' is not available"),
        ({"positional_embedding_type": "alibi"}, r"'alibi' is not available"),
        ({"normalization_type": "LayerNorm"}, r"normalization_type 'LayerNorm' is not one of"),
        ({"parallel_attn_mlp": True}, r"parallel_attn_mlp .* is not implemented"),
        ({"d_vocab": -1}, r"lacks d_vocab"),
        ({"n_layers": "two"}, r"n_layers must be a positive integer"),
    ],
)
def test_configs_transformer_lens_4_cannot_run_are_refused(change, message):
    with pytest.raises(DefcheckError, match=message):
        bridge_config({**TINY, **change}, "model.json")


def test_weights_only_refuses_a_pickled_object(tmp_path, extensions):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = save_bridge(tmp_path, make_view(0))
    torch.save({"embed.weight": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(DefcheckError) as caught:
        load_model(str(path), extensions)
    message = str(caught.value)
    assert "refused to load" in message and "weights_only=True" in message and "model.pt" in message
    assert "io.open" in message and "\n" not in message
    assert not marker.exists()


def test_missing_files_and_bad_configs_are_one_sentence_naming_the_file(tmp_path, extensions):
    with pytest.raises(DefcheckError, match=r"the model checkpoint .*nowhere\.pt does not exist"):
        load_model(str(tmp_path / "nowhere.pt"), extensions)
    path = save_bridge(tmp_path, make_view(0))
    (tmp_path / "model.json").write_text('{"n_layers": 2,\n "d_model": 64,,}')
    with pytest.raises(
        DefcheckError,
        match=r"model config .*model\.json is not valid JSON at line 2, column 16: Expecting property name",
    ):
        load_model(str(path), extensions)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(DefcheckError, match=r"model\.json must hold a mapping"):
        load_model(str(path), extensions)
    (tmp_path / "model.json").unlink()
    with pytest.raises(
        DefcheckError, match=r"no config for the checkpoint .*model\.pt: put model\.json or model\.yaml"
    ):
        load_model(str(path), extensions)
    (tmp_path / "model.yaml").write_text("n_layers: [2\n")
    with pytest.raises(DefcheckError, match=r"model\.yaml is not valid YAML at line 2"):
        load_model(str(path), extensions)
    (tmp_path / "model.yaml").unlink()
    with pytest.raises(DefcheckError, match=r"the model config .*missing\.json does not exist"):
        load_model(str(path), extensions, model_config=str(tmp_path / "missing.json"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(DefcheckError, match=r"junk\.pt is not a PyTorch checkpoint"):
        load_model(str(tmp_path / "junk.pt"), extensions, model_config=TINY)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DefcheckError, match=r"list\.pt does not hold a state dict"):
        load_model(str(tmp_path / "list.pt"), extensions, model_config=TINY)


def test_weights_that_do_not_match_the_config(tmp_path, extensions):
    path = save_bridge(tmp_path, make_view(0), {**TINY, "d_model": 32, "d_head": 4})
    with pytest.raises(
        DefcheckError, match=r"model\.pt does not match its config .*model\.json: 'embed\.weight' has shape \(64, 64\)"
    ):
        load_model(str(path), extensions)
    path = save_bridge(tmp_path, make_view(0), {**TINY, "n_layers": 3})
    with pytest.raises(DefcheckError, match=r"does not match its config .*it lacks 'blocks\.2\."):
        load_model(str(path), extensions)
    path = save_bridge(tmp_path, make_view(0), {**TINY, "n_layers": 1})
    with pytest.raises(DefcheckError, match=r"the model has no weight 'blocks\.1\..*more\)"):
        load_model(str(path), extensions)
    legacy = make_view(0).model.tl_parameters()
    torch.save(legacy, tmp_path / "legacy.pt")
    (tmp_path / "legacy.json").write_text(json.dumps({**TINY, "n_heads": 4, "d_head": 16}))
    with pytest.raises(
        DefcheckError, match=r"legacy\.pt does not match its config: 'blocks\.0\.attn\.W_Q' has shape \(8, 64, 8\)"
    ):
        load_model(str(tmp_path / "legacy.pt"), extensions)


def test_a_nested_training_checkpoint_is_unwrapped(tmp_path, extensions):
    view = make_view(2)
    torch.save({"step": 10, "state_dict": view.model.state_dict()}, tmp_path / "ckpt.pt")
    (tmp_path / "ckpt.json").write_text(json.dumps(TINY))
    assert torch.equal(logits(load_model(str(tmp_path / "ckpt.pt"), extensions)), logits(view))


def test_token_metadata_is_validated():
    with pytest.raises(DefcheckError, match=r"bos_token_id must be an id in 0\.\.63"):
        token_space(64, {"bos_token_id": 64}, {}, "m.json")
    with pytest.raises(DefcheckError, match=r"token_ids 0:65 is not a non-empty range within 0\.\.64"):
        token_space(64, {}, {"token_ids": "0:65"}, "m.json")
    assert parse_token_ids("1-64") == (1, 64) == parse_token_ids([1, 64])
    space = token_space(64, {"bos_token_id": 0, "special_ids": [63]}, {"token_ids": (0, 64)}, "m.json")
    assert space.usable_ids().tolist() == list(range(1, 63))
    assert token_space(64, None, {}, "m.json") is None


def test_an_unavailable_device_is_refused(tmp_path, extensions):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(DefcheckError, match=r"device 'cuda' was asked for, but CUDA is not available here"):
        load_model("builtin:toy-induction", extensions, device="cuda")
    with pytest.raises(DefcheckError, match=r"unknown device 'gpu'"):
        load_model("builtin:toy-induction", extensions, device="gpu")


# -- tl: ----------------------------------------------------------------------------------------------


def test_tl_offline_fails_with_one_sentence():
    """No network here: with HF_HUB_OFFLINE=1 the hub client fails at once; the message is one sentence."""
    code = textwrap.dedent(
        """
        from defcheck.diagnostics import DefcheckError
        from defcheck.models.loading import load_model
        try:
            load_model("tl:gpt2")
        except DefcheckError as error:
            print("ERROR:", error)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ERROR:")]
    assert lines, done.stdout + done.stderr
    assert lines[0].startswith("ERROR: could not download 'gpt2' from the Hugging Face hub: no network?")
    assert "Traceback" not in done.stderr


def test_tl_without_dns_fails_fast(no_dns):
    """Without offline mode, an unresolvable hub fails before the hub client's ~25 s of retries."""
    with pytest.raises(
        DefcheckError,
        match=r"could not download 'attn-only-2l' from the Hugging Face hub: no network\? \(cannot resolve",
    ):
        loaders.load_pretrained("tl:attn-only-2l", {})
    with pytest.raises(DefcheckError, match=r"tl: needs a model name"):
        loaders.load_pretrained("tl:", {})


def test_tokenizer_metadata():
    class Tokenizer:
        bos_token_id = 50256
        all_special_ids = (50256,)

        def __len__(self):
            return 50257

    known = loaders.tokenizer_metadata(Tokenizer(), 50304)  # d_vocab padded past the tokenizer (Pythia-like)
    assert known == {"bos_token_id": 50256, "token_ids": (0, 50257), "special_ids": [50256]}
    space = token_space(50304, known, {}, "tl:x")
    assert space.usable_ids().numel() == 50256
    assert loaders.tokenizer_metadata(None, 10) == {}
