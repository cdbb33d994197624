"""The ``hf`` model loader: a local Hugging Face model folder (``--model path/to/folder``) or ``hf:NAME_OR_PATH``.

A folder holds ``config.json`` (with a ``model_type``), the weights (``model.safetensors``, ``pytorch_model.bin``,
or their sharded forms with an ``.index.json``) and, optionally, the tokenizer files. It is loaded offline: the
weights are read here (safetensors, or ``torch.load(weights_only=True)`` for ``.bin``, so a pickled object is
refused) and handed to ``transformers`` as a state dict, so nothing is looked up on the hub. The model is then
wrapped by TransformerLens 4 (the adapter ``TransformerBridge.boot_transformers`` would choose), so any
architecture it supports loads. ``hf:NAME`` (not a folder) is downloaded through the hub (``snapshot_download``)
and then loaded the same way.

The tokenizer in the folder gives the token metadata (BOS, special ids, usable range); parts of the model the
checkpoint lacks (a ``BertModel`` saved without its masked-LM head) are listed in ``info["untrained"]``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from defcheck_plugins.loaders import _hub_reachable, tokenizer_metadata

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use

# Not the contract: shared with the built-in loaders (the same weights_only reader and its refusal message).
from defcheck.models.loading import jsonable, read_state_dict, resolve_device, token_space
from defcheck.plugin import (
    DefcheckError,
    ModelLoader,
    ModelView,
    check_regular_file,
    display_path,
    hookimpl,
    read_regular_file,
)

MAX_JSON_BYTES = 64 * 2**20  # config.json, a shard index

# The weight files of a folder, in the order transformers prefers them.
WEIGHT_FILES = (
    ("model.safetensors", "safetensors"),
    ("model.safetensors.index.json", "safetensors (sharded)"),
    ("pytorch_model.bin", "pytorch_bin"),
    ("pytorch_model.bin.index.json", "pytorch_bin (sharded)"),
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "tokenizer.model")
# Parts of a TransformerLens model between the last block and the logits: when one is missing, so are the logits.
HEAD_PARTS = ("ln_final", "unembed")
INPUT_PARTS = ("embed", "pos_embed", "blocks", "embed_ln", "token_type_embed")


def hf_config_path(reference: str) -> Path | None:
    """The ``config.json`` of a folder reference when it names a Hugging Face model (a ``model_type``), else None."""
    folder = Path(reference.removeprefix("hf:")).expanduser()
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(data, dict) and isinstance(data.get("model_type"), str) else None


def matches_folder(reference: str) -> bool:
    """``ModelLoader.matches``: a directory holding a Hugging Face ``config.json`` (one with a ``model_type``)."""
    if reference.startswith(("builtin:", "tl:", "checkpoint:")):
        return False
    return Path(reference).expanduser().is_dir() and hf_config_path(reference) is not None


def load_hf(reference: str, options: dict[str, Any]) -> ModelView:
    """``ModelLoader.load``: a local folder (offline), or ``hf:NAME`` fetched from the hub."""
    target = reference.removeprefix("hf:").strip()
    if not target:
        raise DefcheckError("hf: needs a model folder or a Hugging Face name, e.g. hf:path/to/folder or hf:gpt2")
    folder = Path(target).expanduser()
    if not folder.exists() and _looks_like_name(target):
        folder = _download(target)
    elif not folder.is_dir():
        what = "is a file, not a model folder" if folder.exists() else "does not exist"
        raise DefcheckError(f"the model folder {display_path(folder)} {what}")
    return load_folder(folder, reference, options)


def _looks_like_name(target: str) -> bool:
    """Whether ``target`` reads as a hub name (``gpt2``, ``org/name``) rather than a path."""
    parts = target.split("/")
    return len(parts) <= 2 and not target.startswith((".", "~", "/")) and all(parts)


def _download(name: str) -> Path:
    """The hub snapshot of ``name`` (config, weights, tokenizer), refused in one sentence when unreachable."""
    unreachable = _hub_reachable()
    if unreachable:
        raise DefcheckError(
            f"'{name}' is not a folder here, and the Hugging Face hub cannot be reached to download it (no network? "
            f"{unreachable}); give a local model folder, or set HF_HUB_OFFLINE=1 with a copy in the local cache"
        )
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as error:  # the hub client's errors have no common base class worth naming
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DefcheckError(
            f"'{name}' is not a folder here, and the Hugging Face hub did not give it: {reason}"
        ) from None


def load_folder(folder: Path, reference: str, options: dict[str, Any]) -> ModelView:
    """The model in a Hugging Face folder as a ModelView, with its tokenizer's metadata and untrained parts."""
    shown = display_path(folder)
    device = resolve_device(options)
    _regular_files_only(folder)
    raw = _read_raw_config(folder, shown)
    weights, fmt = _weights_file(folder, shown)
    state = _read_weights(folder, weights, fmt)
    hf_config, architecture = _hf_config(folder, shown, raw)
    adapter_cfg, hf_model, missing = _hf_model(hf_config, architecture, state, shown, str(folder))
    del state
    tokenizer = _tokenizer(folder, shown)
    known = _metadata(tokenizer, raw, hf_model)
    bridge = _bridge(hf_model, architecture, hf_config, tokenizer, device, str(folder), adapter_cfg)
    tokens = token_space(int(bridge.cfg.d_vocab), {**known, **_defcheck_block(raw, shown)}, options, shown)
    untrained = _untrained(bridge, missing)
    info: dict[str, Any] = {
        "loader": "hf",
        "folder": shown,
        "format": fmt,
        "architecture": architecture,
        "device": device,
        "tokenizer": type(tokenizer).__name__ if tokenizer is not None else None,
    }
    if untrained:
        info["untrained"] = untrained
        info["missing_weights"] = _short(missing)
    return ModelView(bridge, tokens, name=reference, info=jsonable(info))


# -- the folder's files -------------------------------------------------------------------------------


def _regular_files_only(folder: Path) -> None:
    """Refuse a folder holding a FIFO, a device or a socket where transformers would read a file (it would block
    on a FIFO, and never finish ``/dev/zero``): every entry is a regular file or a folder."""
    for entry in sorted(folder.iterdir()):
        try:
            mode = entry.stat().st_mode
        except OSError:  # a broken link: transformers does not read it either
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            check_regular_file(entry, "in the model folder, the file")


def _read_raw_config(folder: Path, shown: str) -> dict[str, Any]:
    """``config.json`` as a dict, or one sentence saying what is wrong with it."""
    path = folder / "config.json"
    if not path.exists():
        raise DefcheckError(f"{shown} is not a Hugging Face model folder: it has no config.json")
    try:
        data = json.loads(read_regular_file(path, MAX_JSON_BYTES, "the model config").decode("utf-8"))
    except json.JSONDecodeError as error:
        raise DefcheckError(
            f"{shown}/config.json is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DefcheckError(f"cannot read {shown}/config.json: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise DefcheckError(f"{shown}/config.json has no model_type, so it does not describe a Hugging Face model")
    return data


def _weights_file(folder: Path, shown: str) -> tuple[Path, str]:
    """The folder's weight file (or shard index) and its format."""
    for name, fmt in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name, fmt
    names = ", ".join(name for name, _ in WEIGHT_FILES[::2])
    raise DefcheckError(f"{shown} holds no weights: expected {names} (or a sharded .index.json) beside config.json")


def _read_weights(folder: Path, weights: Path, fmt: str) -> dict[str, Any]:
    """The state dict: safetensors as is, ``.bin`` only through ``torch.load(weights_only=True)``."""
    files = [weights]
    if weights.name.endswith(".index.json"):
        files = _shards(folder, weights)
    state: dict[str, Any] = {}
    for path in files:
        if path.suffix == ".safetensors":
            state.update(_read_safetensors(path))
        else:
            state.update(read_state_dict(path))  # refuses a pickled object in one sentence
    return state


def _shards(folder: Path, index: Path) -> list[Path]:
    """The shard files a ``*.index.json`` lists, each checked to be in the folder."""
    shown = display_path(index)
    try:
        weight_map = json.loads(read_regular_file(index, MAX_JSON_BYTES, "the shard index"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DefcheckError(f"{shown} is not a shard index (a JSON object with a 'weight_map')") from None
    paths = [folder / str(name) for name in names]
    absent = [path for path in paths if path.parent != folder or not path.is_file()]
    if absent:
        raise DefcheckError(f"{shown} lists the shard {absent[0].name}, which is not in {display_path(folder)}")
    return paths


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A safetensors file's tensors, or one sentence when it is not one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_regular_file(path, "the weights file")  # safetensors opens it itself: a FIFO would block
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise DefcheckError(f"{display_path(path)} is not a safetensors file ({str(error).strip()})") from None


def _hf_config(folder: Path, shown: str, raw: dict[str, Any]) -> tuple[Any, str]:
    """The transformers config and the TransformerLens architecture it maps to."""
    from transformer_lens.model_bridge.sources._hf_format import determine_architecture_from_hf_config
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True, output_attentions=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DefcheckError(f"transformers cannot read {shown}/config.json: {reason}") from None
    try:
        architecture = determine_architecture_from_hf_config(config)
    except ValueError:
        declared = ", ".join(raw.get("architectures") or []) or "none"
        raise DefcheckError(
            f"TransformerLens 4 does not support the architecture of {shown} (model_type '{raw['model_type']}', "
            f"architectures: {declared})"
        ) from None
    return config, architecture


def _hf_model(
    config: Any, architecture: str, state: dict[str, Any], shown: str, name: str
) -> tuple[Any, Any, list[str]]:
    """The transformers model with the folder's weights (float32, eager attention), its bridge config, and the
    model's keys the checkpoint lacks (so initialised at random)."""
    from transformer_lens.factories.architecture_adapter_factory import ArchitectureAdapterFactory
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_config_from_hf
    from transformer_lens.model_bridge.sources.transformers.helpers import get_hf_model_class_for_architecture

    if "pad_token_id" not in config.__dict__:  # transformers 5 needs one (as boot_transformers sets it)
        eos = getattr(config, "eos_token_id", None)
        config.pad_token_id = eos[0] if isinstance(eos, list) and eos else eos if isinstance(eos, int) else None
    bridge_config = build_bridge_config_from_hf(config, architecture, name, torch.float32)
    adapter = ArchitectureAdapterFactory.select_architecture_adapter(bridge_config)
    kwargs: dict[str, Any] = {"config": config, "dtype": torch.float32}
    kwargs["attn_implementation"] = getattr(adapter.cfg, "attn_implementation", None) or "eager"
    adapter.prepare_loading(name, kwargs)
    model_class = _concrete_class(get_hf_model_class_for_architecture(architecture), config)
    try:
        with torch.random.fork_rng(devices=[]):  # weights the checkpoint lacks: the same on every load
            torch.manual_seed(0)
            model, loading = model_class.from_pretrained(None, state_dict=state, output_loading_info=True, **kwargs)
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DefcheckError(f"the weights in {shown} do not fit its config.json: {reason}") from None
    mismatched = loading.get("mismatched_keys") or []
    if mismatched:
        first = mismatched[0]
        key = first[0] if isinstance(first, (list, tuple)) else first
        raise DefcheckError(f"the weights in {shown} do not fit its config.json: '{key}' has another shape")
    model.eval()
    return bridge_config, model, sorted(str(key) for key in loading.get("missing_keys") or [])


def _concrete_class(model_class: Any, config: Any) -> Any:
    """The model class an ``AutoModel*`` class picks for ``config`` (only a concrete class loads a state dict
    without a path); a concrete class as it is."""
    mapping = getattr(model_class, "_model_mapping", None)
    if mapping is None:
        return model_class
    try:
        return mapping[type(config)]
    except KeyError:
        raise DefcheckError(
            f"transformers has no {model_class.__name__} class for model_type '{config.model_type}'"
        ) from None


def _tokenizer(folder: Path, shown: str) -> Any | None:
    """The folder's tokenizer, or None where it has no tokenizer files."""
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as error:  # tokenizer classes raise many kinds; the user needs the file and the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DefcheckError(
            f"the tokenizer in {shown} cannot be loaded ({reason}); remove its files to load the model without one"
        ) from None


def _metadata(tokenizer: Any | None, raw: dict[str, Any], model: Any) -> dict[str, Any]:
    """Token metadata from the tokenizer (read before TransformerLens adjusts it), else the config's BOS id."""
    d_vocab = int(model.get_input_embeddings().weight.shape[0])
    if tokenizer is not None:
        return tokenizer_metadata(tokenizer, d_vocab)
    bos = raw.get("bos_token_id")
    if isinstance(bos, int) and not isinstance(bos, bool) and 0 <= bos < d_vocab:
        return {"bos_token_id": bos}
    return {}


def _defcheck_block(raw: dict[str, Any], shown: str) -> dict[str, Any]:
    """A ``defcheck:`` block in config.json (bos_token_id, token_ids, special_ids), which wins over the tokenizer."""
    block = raw.get("defcheck")
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise DefcheckError(f"{shown}/config.json: the `defcheck:` block must be a mapping (bos_token_id, token_ids)")
    return {key: block[key] for key in ("bos_token_id", "token_ids", "special_ids") if key in block}


def _bridge(
    model: Any, architecture: str, config: Any, tokenizer: Any, device: str, name: str, bridge_config: Any
) -> Any:
    """The TransformerBridge around ``model`` (its tokenizer on ``bridge.tokenizer``), on ``device``."""
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    if device != "cpu":
        model.to(device)
    if tokenizer is not None:
        tokenizer = _copy(tokenizer)  # TransformerLens adjusts the tokenizer it is given (a made-up BOS for BERT)
    try:
        bridge = build_bridge_from_module(
            model, architecture, tl_config=bridge_config, tokenizer=tokenizer, dtype=torch.float32, device=device
        )
    except (ValueError, KeyError, AttributeError, NotImplementedError, AssertionError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DefcheckError(f"TransformerLens 4 cannot wrap the {architecture} model in {name}: {reason}") from None
    bridge.eval()
    return bridge


def _copy(tokenizer: Any) -> Any:
    """A copy of ``tokenizer`` to hand to TransformerLens."""
    import copy

    return copy.deepcopy(tokenizer)


# -- untrained parts ------------------------------------------------------------------------------------


def _untrained(bridge: Any, missing: list[str]) -> list[str]:
    """The TransformerLens parts (``unembed``, ``ln_final``, ...) with weights the checkpoint lacks; a missing
    part of the output head (e.g. BERT's ``mlm_head`` or the decoder's bias) makes ``unembed`` untrained too."""
    if not missing:
        return []
    paths: dict[str, str] = {}
    for part, component in getattr(bridge.adapter, "component_mapping", {}).items():
        path = getattr(component, "name", None)
        if isinstance(path, str) and path:
            paths[part] = path
    parts: set[str] = set()
    unembed_root = paths.get("unembed", "").split(".")[0]
    for key in missing:
        owner = max(
            (part for part, path in paths.items() if key == path or key.startswith(path + ".")),
            key=lambda part: len(paths[part]),
            default=None,
        )
        if owner is None and unembed_root and key.split(".")[0] == unembed_root:
            owner = "unembed"  # beside the decoder in the head (BERT's cls.predictions.bias)
        parts.add(owner or "other")
    if parts - set(INPUT_PARTS) - {"other"}:
        parts.add("unembed")  # any missing piece after the last block: the logits are random
    return sorted(parts)


def _short(keys: list[str], limit: int = 8) -> list[str]:
    """At most ``limit`` keys, the rest counted."""
    return keys[:limit] + ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])


@hookimpl
def defcheck_model_loaders() -> list[ModelLoader]:
    return [
        ModelLoader(
            "hf",
            load_hf,
            "A local Hugging Face model folder (config.json + weights, tokenizer optional), offline; "
            "hf:NAME downloads from the hub",
            matches=matches_folder,
        )
    ]


__all__ = ["load_folder", "load_hf", "matches_folder"]
