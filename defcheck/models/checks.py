"""What a model's files must be before TransformerLens is given them: a config's sizes in range (no division by
zero, no allocation of 10^30 layers), a config no larger than its checkpoint, and torch's refusals of a pickle in
one sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from defcheck._lazy import torch
from defcheck.diagnostics import DefcheckError

# The sizes of a config, each with its largest value and the value TransformerLens reads as "derived" (or None).
SIZE_FIELDS = {
    "n_layers": (4096, None),
    "d_model": (2**20, None),
    "d_head": (2**16, None),
    "n_ctx": (2**22, None),
    "d_vocab": (2**24, None),
    "n_heads": (2**16, -1),
    "d_mlp": (2**22, -1),
    "d_vocab_out": (2**24, -1),
    "n_key_value_heads": (2**16, None),
    "rotary_dim": (2**16, None),
}
OPTIONAL_SIZES = ("d_mlp", "n_key_value_heads", "rotary_dim")  # None: not used (attention-only), or the default
MAX_PARAMETERS = 10**12


def check_sizes(fields: Mapping[str, Any], source: str) -> None:
    """Refuse sizes TransformerLens would divide by, index with or allocate from: each an integer in its range
    (``-1`` where TransformerLens reads it as "derived"), ``n_heads`` a multiple of ``n_key_value_heads``, ``eps``
    a positive number, the model not absurdly large; one sentence naming ``source`` and the field."""
    for key, (largest, derived) in SIZE_FIELDS.items():
        if key not in fields or (fields[key] is None and key in OPTIONAL_SIZES):
            continue
        value = fields[key]
        valid = isinstance(value, int) and not isinstance(value, bool) and (1 <= value <= largest or value == derived)
        if not valid:
            also = ", or -1: derived" if derived == -1 else ""
            raise DefcheckError(f"{source}: {key} must be a positive integer (1 to {largest:,}{also}), got {value!r}")
    heads, groups = fields.get("n_heads"), fields.get("n_key_value_heads")
    if isinstance(heads, int) and heads > 0 and isinstance(groups, int) and heads % groups:
        raise DefcheckError(f"{source}: n_heads ({heads}) must be a multiple of n_key_value_heads ({groups})")
    eps = fields.get("eps")
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1):
        raise DefcheckError(f"{source}: eps must be a small positive number (1e-5, say), got {eps!r}")
    size = parameter_floor(fields)
    if size > MAX_PARAMETERS:
        raise DefcheckError(
            f"{source}: the config describes a model of over {size:,} weights; the limit is {MAX_PARAMETERS:,}"
        )


def parameter_floor(fields: Mapping[str, Any]) -> int:
    """A lower bound on a config's number of weights (the embeddings, the attention's Q and O, the MLPs): what a
    checkpoint for it must hold at least."""

    def size(key: str) -> int:
        value = fields.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    d_model, d_head, layers = size("d_model"), size("d_head"), size("n_layers")
    heads = size("n_heads") or (d_model // d_head if d_head else 0)
    mlp = 0 if fields.get("attn_only") else size("d_mlp")
    embeddings = size("d_vocab") * d_model + (
        size("n_ctx") * d_model if fields.get("positional_embedding_type") == "standard" else 0
    )
    return embeddings + layers * (2 * heads * d_head * d_model + 2 * d_model * mlp)


def check_state_size(fields: Mapping[str, Any], state: Mapping[str, Any], config: str, weights: str) -> None:
    """Refuse a config that describes a model larger than the checkpoint's weights before that model is built (a
    ``d_vocab`` of 10^9 would allocate it): they do not belong together."""
    held = sum(int(value.numel()) for value in state.values() if isinstance(value, torch.Tensor))
    needed = parameter_floor(fields)
    if needed > held:
        raise DefcheckError(
            f"{weights} does not match its config {config}: the config describes a model of at least {needed:,} "
            f"weights, and the checkpoint holds {held:,}"
        )


_WEIGHTS_ONLY = re.compile(r"weights.?only|WeightsUnpickler", re.IGNORECASE)
_GLOBAL = re.compile(r"\bGLOBAL ([\w.]+)")
_DETAIL = ("WeightsUnpickler error:", "Unsupported", "Trying", "Can only")
_OBJECTS = ("Trying to call reduce", "Can only")  # a pickle that builds or calls an object: refused


def unpickling_refusal(shown: str, error: Exception) -> str:
    """The sentence for torch's ``UnpicklingError``. A pickle that needs a Python global (in any of the wordings
    torch 2.x uses: "Unsupported global: GLOBAL x.y", "Trying to load unsupported GLOBAL x.y whose module x is
    blocked") or builds an object is *refused*, naming what it needs; bytes the weights-only unpickler cannot read
    at all ("Unsupported operand 110") are not a PyTorch checkpoint."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(_DETAIL)]
    detail = lines[0].removeprefix("WeightsUnpickler error:").strip() if lines else first_line(error)
    fix = "re-save it as a plain state dict (model.state_dict())"
    found = _GLOBAL.search(text)
    if _WEIGHTS_ONLY.search(text) and found:
        return (
            f"refused to load {shown}: the checkpoint needs {found.group(1)}, which is not allowed with "
            f"weights_only=True (defcheck reads tensors only, never Python objects); {fix}"
        )
    if _WEIGHTS_ONLY.search(text) and detail.startswith(_OBJECTS):
        return f"refused to load {shown}: weights_only=True does not allow what its pickle does ({detail}); {fix}"
    return f"{shown} is not a PyTorch checkpoint (torch.load: {detail})"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(error).__name__
