"""Loading models: pick a model loader for a reference, and the pieces loaders share.

A reference is ``builtin:NAME`` (a model the package ships), ``tl:NAME`` (a TransformerLens / Hugging Face
pretrained name, which needs the network), or a path to a checkpoint (``model.pt`` with its config in
``model.json`` / ``model.yaml`` beside it). The loaders themselves are plugins (``defcheck_plugins.loaders``
registers the built-in ones); :func:`load_model` only chooses one, by the ``NAME:`` prefix or by asking each
loader's ``matches``.

The helpers here turn a config dict (a ``TransformerBridgeConfig``-shaped one, or a TransformerLens 3
``HookedTransformerConfig`` dict with its extra keys) into a config TransformerLens 4 accepts, load a state
dict (converting TransformerLens 3 keys), and build the token metadata (:class:`TokenSpace`) from a
config's ``defcheck:`` block, a tokenizer, and the user's overrides.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from defcheck._lazy import torch
from defcheck.diagnostics import DefcheckError, did_you_mean, display_path
from defcheck.files import open_regular_file, read_regular_text
from defcheck.hooks.containment import PluginEscape, contain, plugin_code
from defcheck.models.checks import check_sizes, first_line, unpickling_refusal
from defcheck.models.view import ModelView, TokenSpace

DEFAULT_MODEL = "builtin:toy-induction"
MAX_CONFIG_BYTES = 16 * 2**20  # a model config is a few kB
POSITIONAL_TYPES = ("standard", "rotary")
NORMALIZATION_TYPES = {"LN": "LN", "LNPRE": "LNPre", "RMS": "RMS", "RMSPRE": "RMSPre"}
ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu", "swish", "solu", "solu_ln")
REQUIRED_FIELDS = ("n_layers", "d_model", "d_head", "n_ctx", "d_vocab")
# Config switches of TransformerLens 3 models that TransformerLens 4's native model does not implement:
# a checkpoint that sets one would load but compute something else, so it is refused.
UNSUPPORTED_FEATURES = {
    "parallel_attn_mlp": "parallel attention and MLP",
    "use_local_attn": "local attention",
    "post_embedding_ln": "a LayerNorm after the embedding",
    "scale_attn_by_inverse_layer_idx": "attention scaled by the inverse layer index",
    "use_qk_norm": "query/key normalization",
    "num_experts": "mixture of experts",
    "use_normalization_before_and_after": "normalization before and after each sublayer",
}
# Keys that only describe where or how a config was made; never passed on.
DROPPED_FIELDS = ("dtype", "device", "n_devices", "architecture", "model_name", "from_checkpoint", "load_in_4bit")
# Suffixes of TransformerLens 3 (HookedTransformer) state-dict keys.
LEGACY_SUFFIXES = (".W_Q", ".W_K", ".W_V", ".W_O", "._W_K", "._W_V", ".W_E", ".W_pos", ".W_U", ".W_in", ".W_out")
LEGACY_BUFFERS = (".mask", ".IGNORE", ".rotary_sin", ".rotary_cos")
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


# -- choosing a loader ----------------------------------------------------------------------------------


def load_model(reference: str, extensions: Any = None, **options: Any) -> ModelView | Any:
    """Load the model ``reference`` with the loader that handles it.

    A transformer comes back as a :class:`ModelView`; a plugin's loader may return another kind of model (a set
    of policies, say): any object with a ``name``, which that plugin's checkers and unit kinds understand.

    ``options`` are passed to the loader as a dict (``None`` values left out): ``device``, ``model_config``
    (a path or a dict), ``bos_token_id``, ``token_ids`` (``(start, stop)`` or ``"start:stop"``),
    ``special_ids``. ``extensions`` defaults to every installed plugin.
    """
    if extensions is None:
        from defcheck.hooks.manager import load_plugins

        extensions = load_plugins()
    loader = pick_loader(reference, extensions)
    given = {key: value for key, value in options.items() if value is not None}
    try:
        with plugin_code():  # what a loader prints goes to stderr
            view = loader.load(reference, given)
    except DefcheckError:
        raise
    except BaseException as raised:  # a third-party loader's bug (or sys.exit): one line naming it, no traceback
        error = contain(raised)
        what = str(error) if isinstance(error, PluginEscape) else f"{type(error).__name__}: {error}"
        raise DefcheckError(f"model loader '{loader.name}' failed on '{reference}': {what}") from error
    if not isinstance(view, ModelView) and not isinstance(getattr(view, "name", None), str):
        raise DefcheckError(
            f"model loader '{loader.name}' returned {type(view).__name__} for '{reference}', expected a ModelView "
            "(a transformer) or a model object with a 'name' (another kind of model, for its plugin's checkers)"
        )
    return view


def pick_loader(reference: str, extensions: Any) -> Any:
    """The loader for ``reference``: the one named by its ``NAME:`` prefix, else the one whose ``matches`` says so."""
    loaders = extensions.model_loaders
    if not loaders:
        raise DefcheckError("no model loaders are installed (the built-in plugin 'loaders' did not load?)")
    prefix, sep, _ = reference.partition(":")
    if sep and prefix in loaders:
        return loaders[prefix]
    matching = [loader for _, loader in sorted(loaders.items()) if loader.matches and _matches(loader, reference)]
    if len(matching) == 1:
        return matching[0]
    names = ", ".join(sorted(loaders))
    if len(matching) > 1:
        which = ", ".join(loader.name for loader in matching)
        raise DefcheckError(
            f"several model loaders understand '{reference}' ({which}); prefix it with one, e.g. "
            f"'{matching[0].name}:{reference}'"
        )
    if sep and len(prefix) > 1:
        raise DefcheckError(
            f"unknown model loader '{prefix}' in '{reference}'{did_you_mean(prefix, loaders)} (loaders: {names})"
        )
    raise DefcheckError(
        f"no model loader understands '{reference}': give builtin:NAME, tl:NAME or a path to a .pt checkpoint "
        f"that exists (loaders: {names})"
    )


def _matches(loader: Any, reference: str) -> bool:
    try:
        return bool(loader.matches(reference))
    except Exception:
        return False


# -- options --------------------------------------------------------------------------------------------


def resolve_device(options: Mapping[str, Any]) -> str:
    """The device named in ``options`` (default ``cpu``), refused with one sentence where it is unavailable."""
    device = str(options.get("device") or "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise DefcheckError(f"unknown device '{device}' (use cpu, cuda, cuda:N or mps)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise DefcheckError(f"device '{device}' was asked for, but CUDA is not available here")
    if parsed.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DefcheckError(f"device '{device}' was asked for, but MPS is not available here")
    return device


def parse_token_ids(value: Any, d_vocab: int | None = None, where: str = "token_ids") -> tuple[int, int]:
    """``(start, stop)`` (half-open) from a pair, a ``"start:stop"`` string, or ``"start-stop"``."""
    pair: Any = value
    if isinstance(value, str):
        pair = re.split(r"[:,]|\.\.|-", value.strip())
    try:
        start, stop = (int(item) for item in pair)
    except (TypeError, ValueError):
        raise DefcheckError(f"{where} must be a range START:STOP (half-open), got {value!r}") from None
    if not 0 <= start < stop or (d_vocab is not None and stop > d_vocab):
        limit = f" within 0..{d_vocab}" if d_vocab is not None else ""
        raise DefcheckError(f"{where} {start}:{stop} is not a non-empty range{limit}")
    return start, stop


def token_space(
    d_vocab: int, known: Mapping[str, Any] | None, options: Mapping[str, Any], source: str
) -> TokenSpace | None:
    """Token metadata from what the model carries (``known``: a ``defcheck:`` block or a tokenizer's) and the
    user's overrides in ``options``. None when neither says anything (probes then stop with a clear error)."""
    merged = {**(known or {}), **{k: options[k] for k in ("bos_token_id", "token_ids", "special_ids") if k in options}}
    if not any(merged.get(key) is not None for key in ("bos_token_id", "token_ids", "special_ids")):
        return None
    bos = merged.get("bos_token_id")
    if bos is not None and (isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < d_vocab):
        raise DefcheckError(f"{source}: bos_token_id must be an id in 0..{d_vocab - 1}, got {bos!r}")
    token_ids = merged.get("token_ids")
    ids = parse_token_ids(token_ids, d_vocab, f"{source}: token_ids") if token_ids is not None else None
    special = merged.get("special_ids") or ()
    if isinstance(special, (int, str)):
        special = [special]
    try:
        special_ids = tuple(sorted({int(item) for item in special}))
    except (TypeError, ValueError):
        raise DefcheckError(f"{source}: special_ids must be a list of token ids, got {special!r}") from None
    if any(not 0 <= item < d_vocab for item in special_ids):
        raise DefcheckError(f"{source}: special_ids must be ids in 0..{d_vocab - 1}")
    return TokenSpace(d_vocab, bos_token_id=bos, special_ids=special_ids, token_ids=ids)


# -- configs ------------------------------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """A config file (JSON, or YAML for ``.yaml``/``.yml``) as a dict, or a DefcheckError naming the file."""
    shown = display_path(path)
    text = read_regular_text(path, MAX_CONFIG_BYTES, "the model config")  # a regular file, with a limit
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or "invalid YAML"
            raise DefcheckError(f"the model config {shown} is not valid YAML{where}: {problem}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise DefcheckError(
                f"the model config {shown} is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
    if not isinstance(data, dict):
        raise DefcheckError(f"the model config {shown} must hold a mapping of config fields, not {type(data).__name__}")
    return data


def bridge_fields() -> set[str]:
    """The names ``TransformerBridgeConfig`` accepts: its dataclass fields and the keyword parameters of its own
    ``__init__`` (``d_vocab_out``, ``attention_dir``, ``rotary_base``, ... are only the latter; filtering by the
    fields alone lost them, so a Tracr model's ``d_vocab_out`` fell back to ``d_vocab``)."""
    from transformer_lens import TransformerBridgeConfig

    fields = {item.name for item in dataclasses.fields(TransformerBridgeConfig) if item.init}
    parameters = inspect.signature(TransformerBridgeConfig.__init__).parameters.values()
    named = {item.name for item in parameters if item.kind in (item.POSITIONAL_OR_KEYWORD, item.KEYWORD_ONLY)}
    return (fields | named) - {"self"}


def bridge_config(raw: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a config dict into TransformerBridgeConfig fields and its ``defcheck:`` block.

    Accepts a ``HookedTransformerConfig``-shaped dict (TransformerLens 3): keys TransformerBridgeConfig does
    not know (``n_params``, ``shortformer_pos``, ...) are dropped, and features TransformerLens 4 lacks
    (shortformer or ALiBi positions, parallel attention, ...) are refused with one sentence naming ``source``.
    """
    data = dict(raw)
    block = data.pop("defcheck", None) or {}
    if not isinstance(block, dict):
        raise DefcheckError(f"{source}: the `defcheck:` block must be a mapping (bos_token_id, token_ids)")
    if "normalization_type" not in data and "normalization" in data:  # legacy TransformerLens repos' config.json
        data["normalization_type"] = data["normalization"]
    positional = data.get("positional_embedding_type") or "standard"
    if data.get("shortformer_pos"):
        positional = "shortformer"
    if str(positional).lower() not in POSITIONAL_TYPES:
        raise DefcheckError(
            f"{source}: positional_embedding_type '{positional}' is not available in TransformerLens 4 "
            f"(only {' and '.join(POSITIONAL_TYPES)}), so this model cannot be rebuilt"
        )
    data["positional_embedding_type"] = str(positional).lower()
    norm = data.get("normalization_type")
    if norm in (None, "None", "none", "null", ""):
        data["normalization_type"] = None
    elif str(norm).upper() in NORMALIZATION_TYPES:
        data["normalization_type"] = NORMALIZATION_TYPES[str(norm).upper()]
    else:
        raise DefcheckError(f"{source}: normalization_type '{norm}' is not one of LN, LNPre, RMS, RMSPre or null")
    for key, feature in UNSUPPORTED_FEATURES.items():
        if data.get(key):
            raise DefcheckError(f"{source}: {key} ({feature}) is not implemented by TransformerLens 4's native model")
    act_fn = data.get("act_fn")
    if act_fn is not None and not data.get("attn_only") and act_fn not in ACTIVATIONS:
        raise DefcheckError(f"{source}: act_fn '{act_fn}' is not available (use one of {', '.join(ACTIVATIONS)})")
    missing = [key for key in REQUIRED_FIELDS if data.get(key) in (None, -1)]
    if missing:
        raise DefcheckError(f"{source}: the model config lacks {', '.join(missing)}")
    known = bridge_fields()
    fields = {key: value for key, value in data.items() if key in known and key not in DROPPED_FIELDS}
    check_sizes(fields, source)
    return fields, block


def build_native(fields: Mapping[str, Any], source: str, device: str = "cpu") -> Any:
    """A TransformerBridge (random weights) from config fields, with config errors as one sentence."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    try:
        cfg = TransformerBridgeConfig(**{**fields, "device": device})
        model = TransformerBridge.boot_native(cfg, device=device)
    except (TypeError, ValueError, RuntimeError, AssertionError) as error:
        raise DefcheckError(f"{source}: invalid model config: {first_line(error)}") from None
    model.eval()
    return model


# -- state dicts --------------------------------------------------------------------------------------


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict read with ``torch.load(weights_only=True)`` only; any other content is refused."""
    shown = display_path(path)
    if path.is_dir() or not path.exists():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise DefcheckError(f"the model checkpoint {shown} {what}")
    with open_regular_file(path, "the model checkpoint") as handle:  # a FIFO would block torch.load forever
        try:
            state = torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise DefcheckError(unpickling_refusal(shown, error)) from None
        except Exception as error:  # EOFError, KeyError, RuntimeError ...: bytes that are not a checkpoint
            raise DefcheckError(f"{shown} is not a PyTorch checkpoint (torch.load: {first_line(error)})") from None
    return unwrap_state_dict(state, shown)


def unwrap_state_dict(state: Any, shown: str) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, also when a training checkpoint nests it (``{"state_dict": ...}``)."""
    if isinstance(state, dict):
        for key in WRAPPER_KEYS:
            inner = state.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state = inner
                break
    if not isinstance(state, dict) or not state:
        raise DefcheckError(f"{shown} does not hold a state dict (a mapping of names to tensors)")
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise DefcheckError(f"{shown} does not hold a state dict: '{bad[0]}' is not a tensor")
    return state


def is_legacy(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether the keys are TransformerLens 3 ``HookedTransformer`` ones (``blocks.0.attn.W_Q``, ``embed.W_E``)."""
    return any(key.endswith(LEGACY_SUFFIXES) for key in state)


def convert_legacy(state: Mapping[str, torch.Tensor], cfg: Any, shown: str) -> dict[str, torch.Tensor]:
    """Convert a TransformerLens 3 state dict to TransformerBridge keys (``convert_tl_checkpoint``)."""
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    kept = {key: value for key, value in state.items() if not key.endswith(LEGACY_BUFFERS)}
    if cfg.attn_only:  # TL 4's tl_parameters() lists all-zero MLP weights even for attention-only models
        kept = {key: value for key, value in kept.items() if ".mlp." not in key or bool(value.any())}
    try:
        converted = convert_tl_checkpoint(kept, cfg)
    except (ValueError, IndexError, KeyError, RuntimeError) as error:  # shapes the conversion cannot index
        message = first_line(error).removeprefix("convert_tl_checkpoint: ")
        raise DefcheckError(f"{shown} does not match its config: {message}") from None
    if "unembed.bias" not in converted:  # TransformerLens 3 zero-filled a missing b_U; so does TL 4's own loader
        converted["unembed.bias"] = torch.zeros(cfg.d_vocab_out if cfg.d_vocab_out > 0 else cfg.d_vocab)
    return converted


def load_weights(model: Any, state: Mapping[str, torch.Tensor], shown: str, config_shown: str) -> str:
    """Load ``state`` into ``model`` strictly; returns the checkpoint format (``transformer_lens_3`` or
    ``transformer_bridge``). Mismatches become one sentence naming both files."""
    state = dict(state)
    fmt = "transformer_bridge"
    if is_legacy(state):
        state = convert_legacy(state, model.cfg, shown)
        fmt = "transformer_lens_3"
    own = model.state_dict()
    if "unembed.bias" in own and "unembed.bias" not in state:
        state["unembed.bias"] = torch.zeros_like(own["unembed.bias"])
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise DefcheckError(
                f"{shown} does not match its config {config_shown}: '{key}' has shape {tuple(value.shape)}, "
                f"the config gives {tuple(own[key].shape)}"
            )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        raise DefcheckError(f"{shown} does not match its config {config_shown}: {first_line(error)}") from None
    unexpected = sorted(result.unexpected_keys)
    missing: list[str] = []
    if result.missing_keys:  # reported under the bridge's raw module paths; name the public keys where we can
        missing = sorted(key for key in own if key not in state) or sorted(result.missing_keys)
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise DefcheckError(
            f"{shown} does not match its config {config_shown}: the model has no weight '{unexpected[0]}'{more}"
        )
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DefcheckError(f"{shown} does not match its config {config_shown}: it lacks '{missing[0]}'{more}")
    return fmt


def jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold turned into a string (for ``ModelView.info``)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
