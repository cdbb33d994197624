"""Training checkpoints of TransformerLens pretrained models (``tl:NAME`` with ``checkpoint_index``).

TransformerLens 4 publishes the checkpoint schedules of the model families that have them
(``transformer_lens.tools.model_registry.checkpoints.get_checkpoint_labels``: EleutherAI/pythia*,
stanford-crfm/*, and the legacy NeelNanda/ArthurConmy/Baidicoot repos, whose list comes from the hub) and
loads one by index: ``TransformerBridge.boot_transformers(name, checkpoint_index=i)`` resolves it to the
Hugging Face revision, ``TransformerBridge.boot_tl_legacy(name, checkpoint_index=i)`` to the legacy repo's
``checkpoints/*_<label>.pth`` file. ``defcheck sweep --checkpoints tl:NAME --checkpoint-index 1,2,3`` uses
these two calls, through the functions below; it needs the network (or ``HF_HUB_OFFLINE=1`` and the
checkpoints in the local Hugging Face cache).

The ``tl`` model loader of the built-in plugins loads final weights only; this module is the sweep's way to
the intermediate ones.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

from defcheck.diagnostics import DefcheckError
from defcheck.models.loading import resolve_device, token_space
from defcheck.models.view import ModelView

__all__ = ["checkpoint_labels", "hub_unreachable", "load_pretrained_checkpoint", "official_name"]

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


def hub_unreachable() -> str | None:
    """None when the Hugging Face hub may be reachable (or offline mode answers from the cache); else why
    not. Checked before any download, so an offline machine fails at once instead of after the hub
    client's retries."""
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return None
        endpoint = constants.ENDPOINT
    except (ImportError, AttributeError):
        endpoint = "https://huggingface.co"
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
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


def official_name(name: str) -> str:
    """TransformerLens's official name for ``name`` (an alias such as ``pythia-70m`` resolved)."""
    from transformer_lens.tools.model_registry.registry_io import resolve_model_alias

    return resolve_model_alias(name) or name


def _is_legacy(name: str) -> bool:
    from transformer_lens.model_bridge.sources.tl_legacy import TL_LEGACY_PREFIXES

    return name.startswith(TL_LEGACY_PREFIXES)


def checkpoint_labels(name: str) -> tuple[list[int], str]:
    """The training step (or token count: the second item says ``"step"`` or ``"token"``) of each checkpoint
    index of the pretrained model ``name``, from TransformerLens's published schedules. Legacy repos list
    theirs on the hub; the others are downloaded from it later; so an unreachable hub is refused here, once,
    before anything runs."""
    from transformer_lens.tools.model_registry.checkpoints import get_checkpoint_labels

    official = official_name(name)
    unreachable = hub_unreachable()
    if unreachable:
        raise DefcheckError(
            f"could not reach the Hugging Face hub for the checkpoints of '{name}': no network? ({unreachable}); "
            "with them in the local Hugging Face cache, set HF_HUB_OFFLINE=1"
        )
    try:
        labels, kind = get_checkpoint_labels(official)
    except ValueError:
        raise DefcheckError(
            f"TransformerLens knows no training checkpoints of '{name}' (checkpointed families: "
            "EleutherAI/pythia-*, stanford-crfm/*, and the NeelNanda/ArthurConmy/Baidicoot repos)"
        ) from None
    except (OSError, ConnectionError, TimeoutError) as error:
        raise DefcheckError(f"could not list the checkpoints of '{name}' on the Hugging Face hub: {error}") from None
    return [int(label) for label in labels], str(kind)


def _tokenizer_metadata(tokenizer: Any, d_vocab: int) -> dict[str, Any]:
    if tokenizer is None:
        return {}
    bos = getattr(tokenizer, "bos_token_id", None)
    size = min(len(tokenizer), d_vocab) if hasattr(tokenizer, "__len__") else d_vocab
    special = [i for i in (getattr(tokenizer, "all_special_ids", None) or []) if i is not None and 0 <= i < d_vocab]
    return {
        "bos_token_id": int(bos) if bos is not None and 0 <= bos < d_vocab else None,
        "token_ids": (0, size),
        "special_ids": special,
    }


def load_pretrained_checkpoint(name: str, index: int, options: dict[str, Any]) -> ModelView:
    """The checkpoint ``index`` of the pretrained model ``name`` as a :class:`ModelView` named
    ``tl:NAME@INDEX``. ``options`` as for the model loaders: ``device``, ``bos_token_id``, ``token_ids``."""
    device = resolve_device(options)
    unreachable = hub_unreachable()
    if unreachable:
        raise DefcheckError(
            f"could not download checkpoint {index} of '{name}' from the Hugging Face hub: no network? "
            f"({unreachable}); with the checkpoints in the local Hugging Face cache, set HF_HUB_OFFLINE=1"
        )
    from transformer_lens import TransformerBridge

    official = official_name(name)
    try:
        if _is_legacy(official):
            model = TransformerBridge.boot_tl_legacy(official, checkpoint_index=index, device=device)
        else:
            model = TransformerBridge.boot_transformers(official, checkpoint_index=index, device=device)
    except (OSError, ConnectionError, TimeoutError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if any(word in reason.lower() for word in ("offline", "couldn't connect", "cached")):
            reason = "no network? (and it is not in the local Hugging Face cache)"
        raise DefcheckError(f"could not download checkpoint {index} of '{name}': {reason}") from None
    except (NotImplementedError, ValueError, KeyError) as error:
        raise DefcheckError(f"TransformerLens cannot load checkpoint {index} of '{name}': {error}") from None
    model.eval()
    d_vocab = int(model.cfg.d_vocab)
    known = _tokenizer_metadata(getattr(model, "tokenizer", None), d_vocab)
    tokens = token_space(d_vocab, known, options, f"tl:{name}")
    info = {"loader": "tl", "pretrained": official, "device": device, "checkpoint_index": index}
    return ModelView(model, tokens, name=f"tl:{name}@{index}", info=info)
