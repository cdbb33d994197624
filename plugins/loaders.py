"""Built-in model loaders: ``builtin:NAME`` (shipped weights), checkpoint files, and ``tl:NAME`` (pretrained).

- ``builtin``: the toy models in ``plugins/weights`` (``NAME.pt`` + ``NAME.json``), trained by
  ``scripts/train_toy_models.py``; see ``docs/toy-models.md``.
- ``checkpoint``: a local state dict, read with ``torch.load(weights_only=True)`` only, its config in
  ``STEM.json`` / ``STEM.yaml`` beside it (or ``config.json`` in its folder, or the ``model_config`` option).
  TransformerLens 3 (``HookedTransformer``) checkpoints are detected from their keys and converted.
- ``tl``: a TransformerLens or Hugging Face pretrained name, e.g. ``tl:gpt2`` or ``tl:attn-only-2l``; it needs
  the network (or ``HF_HUB_OFFLINE=1`` and a copy in the local Hugging Face cache).
"""

from __future__ import annotations

import json
import os
import re
import socket
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from defcheck_plugins.constructed import CONSTRUCTED, constructed_names

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.models.checks import check_state_size  # not the contract: as above, the core's config checks

# Not the contract: the built-in loaders share these checkpoint helpers with the core's load_model (its messages
# and TransformerLens 3 conversion); a third-party loader builds its model with build_bridge and ModelView.
from defcheck.models.loading import (
    bridge_config,
    build_native,
    jsonable,
    load_weights,
    read_config,
    read_state_dict,
    resolve_device,
    token_space,
    unwrap_state_dict,
)
from defcheck.plugin import DefcheckError, ModelLoader, ModelView, did_you_mean, display_path, hookimpl

WEIGHTS_PACKAGE = "defcheck_plugins.weights"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


# -- shared -------------------------------------------------------------------------------------------


def _from_files(
    reference: str,
    weights: Path,
    config: dict[str, Any],
    config_shown: str,
    options: dict[str, Any],
    loader: str,
    state: dict[str, Any] | None = None,
) -> ModelView:
    """Build the model a config describes and load a state dict into it."""
    shown = display_path(weights)
    device = resolve_device(options)
    fields, block = bridge_config(config, config_shown)
    if state is None:
        state = read_state_dict(weights)
    check_state_size(fields, state, config_shown, shown)  # before a config's sizes are allocated
    model = build_native(fields, config_shown)
    fmt = load_weights(model, state, shown, config_shown)
    if device != "cpu":
        model.to(device)
    tokens = token_space(int(model.cfg.d_vocab), block, options, config_shown)
    info = {
        "loader": loader,
        "checkpoint": shown,
        "config": config_shown,
        "format": fmt,
        "device": device,
        "architecture": jsonable(fields),
    }
    if isinstance(block.get("training"), dict):
        info["training"] = jsonable(block["training"])
    if block.get("summary"):
        info["summary"] = str(block["summary"])
    if block.get("tokenizer") == "bytes":  # ids 0-255 are bytes: the text probes tokenize text byte by byte
        info["tokenizer"] = "bytes"
    return ModelView(model, tokens, name=reference, info=info)


# -- builtin: -----------------------------------------------------------------------------------------


def builtin_models() -> list[str]:
    """Names of the models shipped in ``plugins/weights`` (those with both ``.pt`` and ``.json``)."""
    folder = resources.files(WEIGHTS_PACKAGE)
    names = {entry.name[: -len(".pt")] for entry in folder.iterdir() if entry.name.endswith(".pt")}
    return sorted(name for name in names if folder.joinpath(f"{name}.json").is_file())


def load_builtin(reference: str, options: dict[str, Any]) -> ModelView:
    """``builtin:NAME``, or ``builtin:NAME@STEP`` for a training snapshot where the model ships a series."""
    name, at, step_text = reference.removeprefix("builtin:").strip().partition("@")
    available = builtin_models()
    if name not in available and not at and name in CONSTRUCTED:
        return _constructed(reference, name, options)
    if name not in available:
        known = [*available, *(n for n in constructed_names() if n not in available)]
        hint = did_you_mean(name, known) if name else ""
        raise DefcheckError(
            f"unknown built-in model '{name}'{hint} (available: {', '.join(f'builtin:{n}' for n in known)})"
        )
    if options.get("model_config") is not None:
        raise DefcheckError("a built-in model brings its own config; --model-config is for checkpoint files")
    folder = resources.files(WEIGHTS_PACKAGE)
    with resources.as_file(folder.joinpath(f"{name}.json")) as config_path:
        config = read_config(Path(config_path))
    state = _snapshot(name, step_text) if at else None
    with resources.as_file(folder.joinpath(f"{name}.pt")) as weights:
        view = _from_files(reference, Path(weights), config, f"builtin:{name} config", options, "builtin", state)
    if at:
        view.info["training_step"] = int(step_text)
    return view


def _constructed(reference: str, name: str, options: dict[str, Any]) -> ModelView:
    """A hand-built model (``defcheck_plugins.constructed``), with the user's token overrides applied."""
    view = CONSTRUCTED[name]()
    view.name = reference
    device = resolve_device(options)
    if device != "cpu":
        view.model.to(device)
    if any(key in options for key in ("bos_token_id", "token_ids", "special_ids")):
        known = view.tokens.to_dict() if view.tokens is not None else {}
        view.tokens = token_space(view.d_vocab, known, options, reference)
    return view


def _snapshot(name: str, step_text: str) -> dict[str, Any]:
    """The state dict of ``NAME-checkpoints.pt`` (``{step: state_dict}``) at ``step_text``."""
    series = resources.files(WEIGHTS_PACKAGE).joinpath(f"{name}-checkpoints.pt")
    if not series.is_file():
        raise DefcheckError(f"builtin:{name} ships no training checkpoints (scripts/train_toy_models.py --checkpoints)")
    with resources.as_file(series) as path:
        snapshots = torch.load(path, map_location="cpu", weights_only=True)
    steps = sorted(snapshots)
    try:
        step = int(step_text)
    except ValueError:
        step = None
    if step not in snapshots:
        raise DefcheckError(
            f"builtin:{name} has no checkpoint at step '{step_text}' (steps: {', '.join(map(str, steps))})"
        )
    return unwrap_state_dict(snapshots[step], f"builtin:{name}@{step}")


def builtin_checkpoints(name: str) -> list[int]:
    """The training steps of ``builtin:NAME@STEP`` snapshots (empty where the model ships none)."""
    series = resources.files(WEIGHTS_PACKAGE).joinpath(f"{name}-checkpoints.pt")
    if not series.is_file():
        return []
    with resources.as_file(series) as path:
        return sorted(torch.load(path, map_location="cpu", weights_only=True))


def builtin_series(reference: str) -> tuple[list[dict[str, Any]], str]:
    """``ModelLoader.checkpoints`` of ``builtin:NAME``: each shipped snapshot as ``builtin:NAME@STEP``, with the
    losses recorded in training (``NAME-checkpoints.metrics.json``) and the series file's size and time, so that a
    sweep's stored report of a changed series is not taken for valid."""
    name = reference.removeprefix("builtin:").strip()
    folder = resources.files(WEIGHTS_PACKAGE)
    series = folder.joinpath(f"{name}-checkpoints.pt")
    if not series.is_file():
        shipped = sorted(
            e.name.removesuffix("-checkpoints.pt") for e in folder.iterdir() if e.name.endswith("-checkpoints.pt")
        )
        raise DefcheckError(
            f"builtin:{name} ships no training checkpoints (series: {', '.join(f'builtin:{n}@*' for n in shipped)})"
        )
    with resources.as_file(series) as path:
        steps = sorted(int(step) for step in torch.load(path, map_location="cpu", weights_only=True))
        stat = Path(path).stat()
    metrics: dict[int, dict[str, float]] = {}
    sidecar = folder.joinpath(f"{name}-checkpoints.metrics.json")
    if sidecar.is_file():
        # not the contract: the sweep's reader of checkpoint metrics, so that both read one format (docs/sweep.md)
        from defcheck.sweep.series import read_metadata

        metrics = read_metadata(sidecar.read_text(encoding="utf-8"), f"builtin:{name} checkpoint metrics")[0]
    identity = {"series": f"{name}-checkpoints.pt", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    items = [
        {"step": step, "reference": f"builtin:{name}@{step}", "metrics": metrics.get(step, {}), "identity": identity}
        for step in steps
    ]
    return items, "step"


# -- checkpoint files ---------------------------------------------------------------------------------


def matches_checkpoint(reference: str) -> bool:
    if reference.startswith(("builtin:", "tl:")):
        return False
    path = Path(reference.removeprefix("checkpoint:"))
    if not (path.suffix.lower() in CHECKPOINT_SUFFIXES or path.is_file()):
        return False
    return _claimed_by(path) in (None, "checkpoint")


def _claimed_by(weights: Path) -> str | None:
    """The ``"loader"`` a JSON config beside the file names (another plugin's model, e.g. ``gridworld``), if any."""
    config = find_config(weights)
    if config is None or config.suffix.lower() != ".json":
        return None
    try:
        loader = json.loads(config.read_text(encoding="utf-8")).get("loader")
    except (OSError, ValueError, AttributeError):
        return None
    return loader if isinstance(loader, str) else None


def find_config(weights: Path) -> Path | None:
    """``STEM.json`` / ``STEM.yaml`` / ``STEM.yml`` beside the checkpoint, else ``config.json`` in its folder."""
    for suffix in CONFIG_SUFFIXES:
        candidate = weights.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    for name in ("config.json", "config.yaml", "config.yml"):
        candidate = weights.parent / name
        if candidate.is_file():
            return candidate
    return None


def load_checkpoint(reference: str, options: dict[str, Any]) -> ModelView:
    weights = Path(reference.removeprefix("checkpoint:")).expanduser()
    shown = display_path(weights)
    given = options.get("model_config")
    state = read_state_dict(weights)  # first: a missing or unsafe checkpoint is the first thing to report
    if isinstance(given, dict):
        config, config_shown = given, "the model config"
    else:
        path = Path(given).expanduser() if given is not None else find_config(weights)
        if path is None:
            names = " or ".join(weights.with_suffix(suffix).name for suffix in CONFIG_SUFFIXES[:2])
            raise DefcheckError(f"no config for the checkpoint {shown}: put {names} beside it, or give --model-config")
        config, config_shown = read_config(path), display_path(path)
    return _from_files(reference, weights, config, config_shown, options, "checkpoint", state=state)


# -- tl: (pretrained, needs the network) ----------------------------------------------------------------


def _hub_reachable() -> str | None:
    """None when the Hugging Face hub may be reachable; else why not (no DNS for its host, and no proxy).

    Without this, an offline machine spends ~25 s in the hub client's retries before failing.
    """
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return None  # offline mode: the hub client answers from the cache at once
        endpoint = constants.ENDPOINT
    except (ImportError, AttributeError):
        endpoint = "https://huggingface.co"
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None
    host = urlparse(endpoint).hostname or "huggingface.co"
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(5)
        socket.getaddrinfo(host, 443)
    except OSError:
        return f"cannot resolve {host}"
    finally:
        socket.setdefaulttimeout(previous)
    return None


def tokenizer_metadata(tokenizer: Any, d_vocab: int) -> dict[str, Any]:
    """BOS id, special ids and the usable id range from a Hugging Face tokenizer.

    BOS is the tokenizer's BOS token, else (an encoder such as BERT) its CLS token, else none: never the UNK id
    that TransformerLens's tokenizer set-up gives a tokenizer without BOS (BERT's ``[UNK]``, id 100). Special ids
    include the vocabulary's never-trained placeholders (``[unused12]``, ``<unused3>``); the usable range stops at
    ``min(len(tokenizer), d_vocab)`` (a model's vocabulary may be padded past its tokenizer's)."""
    if tokenizer is None:
        return {}
    unk = getattr(tokenizer, "unk_token_id", None)

    def real(token_id: Any) -> int | None:
        ok = isinstance(token_id, int) and not isinstance(token_id, bool) and 0 <= token_id < d_vocab
        return int(token_id) if ok and token_id != unk else None

    bos = real(getattr(tokenizer, "bos_token_id", None))
    if bos is None:
        bos = real(getattr(tokenizer, "cls_token_id", None))
    size = min(len(tokenizer), d_vocab) if hasattr(tokenizer, "__len__") else d_vocab
    special = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []) if real(i) is not None}
    if unk is not None and 0 <= unk < d_vocab:
        special.add(int(unk))
    unused = re.compile(r"^[\[<]unused\d+[\]>]$")
    try:  # placeholders a vocabulary reserves but never trains ([unused0] in BERT's)
        vocab = tokenizer.get_vocab()
    except (AttributeError, NotImplementedError, TypeError):
        vocab = {}
    special.update(int(i) for token, i in vocab.items() if 0 <= i < d_vocab and unused.match(token))
    return {"bos_token_id": bos, "token_ids": (0, size), "special_ids": sorted(special)}


def _official_name(name: str) -> str:
    """TransformerLens's official name for ``name`` (an alias such as ``pythia-70m`` resolved)."""
    from transformer_lens.tools.model_registry.registry_io import resolve_model_alias

    return resolve_model_alias(name) or name


def pretrained_checkpoints(reference: str) -> tuple[list[int], str]:
    """The training step (or token count: the second item says ``"step"`` or ``"token"``) of each checkpoint
    index of the pretrained model ``tl:NAME``, from TransformerLens's published schedules
    (``get_checkpoint_labels``: EleutherAI/pythia-*, stanford-crfm/*, the NeelNanda/ArthurConmy/Baidicoot repos,
    whose lists come from the hub). An unreachable hub is refused here, once, before anything runs."""
    from transformer_lens.tools.model_registry.checkpoints import get_checkpoint_labels

    name = reference.removeprefix("tl:").strip()
    if not name:
        raise DefcheckError("tl: needs a model name, e.g. tl:EleutherAI/pythia-70m")
    unreachable = _hub_reachable()
    if unreachable:
        raise DefcheckError(
            f"could not reach the Hugging Face hub for the checkpoints of '{name}': no network? ({unreachable}); "
            "with them in the local Hugging Face cache, set HF_HUB_OFFLINE=1"
        )
    try:
        labels, kind = get_checkpoint_labels(_official_name(name))
    except ValueError:
        raise DefcheckError(
            f"TransformerLens knows no training checkpoints of '{name}' (checkpointed families: "
            "EleutherAI/pythia-*, stanford-crfm/*, and the NeelNanda/ArthurConmy/Baidicoot repos)"
        ) from None
    except (OSError, ConnectionError, TimeoutError) as error:
        raise DefcheckError(f"could not list the checkpoints of '{name}' on the Hugging Face hub: {error}") from None
    return [int(label) for label in labels], str(kind)


def load_pretrained(reference: str, options: dict[str, Any]) -> ModelView:
    """``tl:NAME``: the pretrained model, or with ``options["checkpoint_index"]`` one of its training
    checkpoints (``TransformerBridge.boot_transformers`` / ``boot_tl_legacy`` with ``checkpoint_index``), named
    ``tl:NAME@INDEX``."""
    name = reference.removeprefix("tl:").strip()
    if not name:
        raise DefcheckError("tl: needs a model name, e.g. tl:gpt2 or tl:attn-only-2l")
    index = options.get("checkpoint_index")
    what = f"checkpoint {index} of '{name}'" if index is not None else f"'{name}'"
    device = resolve_device(options)
    unreachable = _hub_reachable()
    if unreachable:
        raise DefcheckError(
            f"could not download {what} from the Hugging Face hub: no network? ({unreachable}); with a copy in "
            "the local Hugging Face cache, set HF_HUB_OFFLINE=1"
        )
    from transformer_lens import TransformerBridge
    from transformer_lens.model_bridge.sources.tl_legacy import TL_LEGACY_PREFIXES

    official = _official_name(name)
    extra = {} if index is None else {"checkpoint_index": int(index)}
    try:
        if official.startswith(TL_LEGACY_PREFIXES):
            model = TransformerBridge.boot_tl_legacy(official, device=device, **extra)
        else:
            model = TransformerBridge.boot_transformers(official, device=device, **extra)
    except (OSError, ConnectionError, TimeoutError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "offline" in reason.lower() or "couldn't connect" in reason.lower() or "cached" in reason.lower():
            if index is not None:
                reason = "no network? (and it is not in the local Hugging Face cache)"
                raise DefcheckError(f"could not download {what}: {reason}") from None
            raise DefcheckError(
                f"could not download {what} from the Hugging Face hub: no network? (and it is not in the local "
                "Hugging Face cache)"
            ) from None
        raise DefcheckError(f"could not download {what} from the Hugging Face hub: {reason}") from None
    except (NotImplementedError, ValueError, KeyError) as error:
        raise DefcheckError(f"TransformerLens cannot load {what}: {str(error).splitlines()[0]}") from None
    model.eval()
    known = tokenizer_metadata(getattr(model, "tokenizer", None), int(model.cfg.d_vocab))
    tokens = token_space(int(model.cfg.d_vocab), known, options, f"tl:{name}")
    info: dict[str, Any] = {"loader": "tl", "pretrained": official, "device": device}
    if index is not None:
        info["checkpoint_index"] = int(index)
    return ModelView(model, tokens, name=reference if index is None else f"{reference}@{index}", info=info)


@hookimpl
def defcheck_model_loaders() -> list[ModelLoader]:
    return [
        ModelLoader(
            "builtin",
            load_builtin,
            "Models shipped with defcheck: builtin:toy-induction, builtin:toy-shortcut, builtin:toy-mlp, "
            "builtin:toy-text",
            matches=lambda reference: reference.startswith("builtin:"),
            checkpoints=builtin_series,
        ),
        ModelLoader(
            "checkpoint",
            load_checkpoint,
            "A local state dict (.pt, weights_only) with its config beside it; TransformerLens 3 keys converted",
            matches=matches_checkpoint,
        ),
        ModelLoader(
            "tl",
            load_pretrained,
            "A TransformerLens / Hugging Face pretrained name, e.g. tl:gpt2 (needs the network)",
            matches=lambda reference: reference.startswith("tl:"),
            checkpoints=pretrained_checkpoints,
        ),
    ]


__all__ = [
    "builtin_checkpoints",
    "builtin_models",
    "builtin_series",
    "load_builtin",
    "load_checkpoint",
    "load_pretrained",
    "pretrained_checkpoints",
    "unwrap_state_dict",
]
