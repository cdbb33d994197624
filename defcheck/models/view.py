"""The interface between checkers and a model: weights by name, hook points, runs with a cache or hooks.

Checkers never touch the backend directly, so another backend (a TransformerLens 3 ``HookedTransformer``,
nnsight) is one more adapter. The default adapter wraps a TransformerLens 4 ``TransformerBridge``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from defcheck._lazy import no_grad, torch
from defcheck.diagnostics import DefcheckError

STACKED = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out", "b_in", "b_out")
SINGLE = ("W_E", "W_pos", "W_U", "b_U")
# The input of the unembedding: a pass that needs no logits stops there (after the final norm's hooks).
STOP_HOOK = "unembed.hook_in"


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once every wanted activation is captured."""


def _capture(store: dict[str, torch.Tensor], name: str) -> Callable[..., Any]:
    def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        store[name] = activation.detach()
        return activation

    return hook


def _stop(activation: torch.Tensor, hook: Any) -> None:
    raise _StopForward


@dataclass(frozen=True)
class TokenSpace:
    """Which token ids probes may use: the BOS id (if the model has one) and the ordinary ids."""

    d_vocab: int
    bos_token_id: int | None = None
    special_ids: tuple[int, ...] = ()
    token_ids: tuple[int, int] | None = None  # half-open range [start, stop) of usable ids, if known

    def usable_ids(self) -> torch.Tensor:
        """The ids a random probe draws from: the configured range less BOS and special ids."""
        start, stop = self.token_ids if self.token_ids else (0, self.d_vocab)
        ids = torch.arange(start, stop)
        excluded = set(self.special_ids) | ({self.bos_token_id} if self.bos_token_id is not None else set())
        if excluded:
            ids = ids[~torch.isin(ids, torch.tensor(sorted(excluded)))]
        return ids

    def to_dict(self) -> dict[str, Any]:
        return {
            "d_vocab": self.d_vocab,
            "bos_token_id": self.bos_token_id,
            "special_ids": list(self.special_ids),
            "token_ids": list(self.token_ids) if self.token_ids else None,
        }


@dataclass
class ModelView:
    """A model as checkers see it. Wraps a TransformerLens 4 ``TransformerBridge``.

    ``tokens`` describes the vocabulary (BOS, usable ids); ``name`` is how reports refer to the model;
    ``info`` carries whatever the loader knows (source file, config) for the report.
    """

    model: Any
    tokens: TokenSpace | None = None
    name: str = "model"
    info: dict[str, Any] = field(default_factory=dict)
    _weights: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    @property
    def n_layers(self) -> int:
        return int(self.cfg.n_layers)

    @property
    def n_heads(self) -> int:
        return int(self.cfg.n_heads)

    @property
    def d_model(self) -> int:
        return int(self.cfg.d_model)

    @property
    def d_head(self) -> int:
        return int(self.cfg.d_head)

    @property
    def d_mlp(self) -> int | None:
        """Neurons per MLP layer; ``None`` for an attention-only model (which has no MLPs)."""
        value = getattr(self.cfg, "d_mlp", None)
        return None if self.attn_only or value is None else int(value)

    @property
    def d_vocab(self) -> int:
        return int(self.cfg.d_vocab)

    @property
    def d_vocab_out(self) -> int:
        """Size of the output vocabulary (the unembedding's columns); differs from ``d_vocab`` in Tracr models."""
        value = getattr(self.cfg, "d_vocab_out", None)
        return self.d_vocab if value in (None, -1) else int(value)

    @property
    def n_ctx(self) -> int:
        return int(self.cfg.n_ctx)

    @property
    def causal(self) -> bool:
        """Whether attention is masked to earlier positions (False for a bidirectional encoder such as BERT)."""
        return getattr(self.cfg, "attention_dir", "causal") != "bidirectional"

    @property
    def untrained(self) -> tuple[str, ...]:
        """Parts whose weights the checkpoint lacked, so the loader left them randomly initialised (e.g.
        ``unembed`` and ``ln_final`` of a BERT saved without its masked-LM head); set by the loader in
        ``info["untrained"]``. Checkers that read such a part are not applicable."""
        return tuple(str(part) for part in self.info.get("untrained", ()))

    @property
    def positional(self) -> str:
        """``standard`` (learned absolute, added to the residual stream) or ``rotary``."""
        return str(getattr(self.cfg, "positional_embedding_type", "standard"))

    @property
    def normalization(self) -> str | None:
        value = getattr(self.cfg, "normalization_type", None)
        return None if value in (None, "None") else str(value)

    @property
    def attn_only(self) -> bool:
        return bool(getattr(self.cfg, "attn_only", False))

    @property
    def device(self) -> torch.device:
        return self.model.W_E.device

    def has_weight(self, name: str) -> bool:
        try:
            self.weight(name)
        except (AttributeError, KeyError):
            return False
        return True

    def weight(self, name: str) -> torch.Tensor:
        """A weight by TransformerLens name (``W_Q`` [L, H, d_model, d_head], ``W_E``, ``W_U``, ...), cached.

        Returned tensors are detached copies: writing to them does not change the model.
        """
        if name not in self._weights:
            if name not in STACKED + SINGLE:
                raise KeyError(f"unknown weight '{name}' (known: {', '.join(STACKED + SINGLE)})")
            self._weights[name] = getattr(self.model, name).detach().clone()
        return self._weights[name]

    def ln_weight(self, layer: int | None, which: str = "ln1") -> torch.Tensor | None:
        """The elementwise weight of a LayerNorm (``ln1``/``ln2`` of a block, or ``ln_final``), if it has one."""
        module = self.model.ln_final if layer is None else getattr(self.model.blocks[layer], which)
        weight = getattr(module, "weight", None)
        return None if weight is None else weight.detach()

    def ln_bias(self, layer: int | None, which: str = "ln1") -> torch.Tensor | None:
        """The bias of a LayerNorm (``ln1``/``ln2`` of a block, or ``ln_final``), if it has one."""
        module = self.model.ln_final if layer is None else getattr(self.model.blocks[layer], which)
        bias = getattr(module, "bias", None)
        return None if bias is None else bias.detach()

    def forget_weights(self) -> None:
        """Drop cached weights (after the model's weights were changed)."""
        self._weights.clear()

    @no_grad
    def run(
        self, tokens: torch.Tensor, names: Iterable[str] = (), batch_size: int | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run the model on ``tokens`` [batch, pos]; return logits and the activations named in ``names``.

        Activations are concatenated over batches of ``batch_size`` sequences. To keep one batch in memory at
        a time, iterate over :meth:`run_batches` instead.
        """
        wanted = sorted(set(names))
        logits_parts: list[torch.Tensor] = []
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in wanted}
        for _, logits, activations in self.run_batches(tokens, wanted, batch_size):
            assert logits is not None
            logits_parts.append(logits)
            for name in wanted:
                parts[name].append(activations[name])
        return torch.cat(logits_parts), {name: torch.cat(chunks) for name, chunks in parts.items()}

    @no_grad
    def run_batches(
        self, tokens: torch.Tensor, names: Iterable[str] = (), batch_size: int | None = None, *, logits: bool = True
    ) -> Iterator[tuple[slice, torch.Tensor | None, dict[str, torch.Tensor]]]:
        """One forward pass over ``tokens`` [batch, pos], ``batch_size`` sequences at a time (default: all).

        Yields ``(rows, logits, activations)`` per batch: the rows of ``tokens`` it covers, its logits, and the
        activations named in ``names`` (detached). Nothing is kept between batches, so a caller that reduces
        each batch holds one batch's activations at a time. With ``logits=False`` the pass stops before the
        unembedding where the model allows it (its ``[batch, pos, d_vocab]`` output is often the largest tensor
        of the pass) and yields ``None`` for the logits.
        """
        wanted = sorted(set(names))
        hook_dict = getattr(self.model, "hook_dict", {})
        missing = [name for name in wanted if name not in hook_dict]
        if missing:
            raise DefcheckError(f"the model has no activation '{missing[0]}'")
        stop_early = not logits and STOP_HOOK in hook_dict
        size = batch_size or max(tokens.shape[0], 1)
        for start in range(0, tokens.shape[0], size):
            rows = slice(start, min(start + size, tokens.shape[0]))
            batch = tokens[rows].to(self.device)
            captured: dict[str, torch.Tensor] = {}
            hooks: list[tuple[str, Callable[..., Any]]] = [(name, _capture(captured, name)) for name in wanted]
            if stop_early:
                hooks.append((STOP_HOOK, _stop))
            output: torch.Tensor | None = None
            try:
                with self.model.hooks(fwd_hooks=hooks):
                    output = self.model(batch)
            except _StopForward:
                pass
            for name in wanted:
                if name not in captured:
                    raise DefcheckError(f"the model has no activation '{name}' (its hook point never fired)")
            yield rows, (output.detach() if logits and output is not None else None), captured
            del captured, output

    @no_grad
    def run_with_hooks(
        self, tokens: torch.Tensor, hooks: Sequence[tuple[str | Callable[[str], bool], Callable[..., Any]]]
    ) -> torch.Tensor:
        """Run with forward hooks ``(name, fn(activation, hook) -> activation)``; return the logits."""
        return self.model.run_with_hooks(tokens.to(self.device), fwd_hooks=list(hooks))

    def unit_names(self) -> list[str]:
        """Head addresses ``L.H`` in layer-major order."""
        return [f"{layer}.{head}" for layer in range(self.n_layers) for head in range(self.n_heads)]


def build_bridge(config: dict[str, Any], seed: int | None = 0) -> Any:
    """A TransformerBridge built from a config dict (no network), with seeded random weights."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    fields = dict(config)
    if "d_vocab" not in fields:
        raise DefcheckError("a model config needs d_vocab")
    fields.setdefault("seed", seed)
    fields.setdefault("device", "cpu")
    try:
        cfg = TransformerBridgeConfig(**fields)
    except TypeError as error:
        raise DefcheckError(f"invalid model config: {error}") from error
    model = TransformerBridge.boot_native(cfg)
    model.eval()
    return model
