"""Probe data: the token batch a probe builds, shared by every checker that names the same probe.

Probes for transformers build token sequences. Probes for other kinds of model (episodes in a seeded
environment for a policy, say) leave ``tokens`` as ``None`` and put what they built in ``info``; the runner
then runs no forward pass and hands the probe to the checkers as it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from defcheck._lazy import torch
from defcheck.diagnostics import DefcheckError
from defcheck.files import FileScope
from defcheck.hooks.declarations import FIT_POLICIES, FitPolicy
from defcheck.models.view import TokenSpace


@dataclass
class ProbeBatch:
    """Tokens ``[n, pos]`` built by a probe, and what the checkers need to know about them.

    ``tokens`` is ``None`` for a probe that is not a batch of token sequences (its content is in ``info``).
    ``bos`` is True when every sequence starts with the model's BOS token; ``info`` holds probe-specific
    metadata (e.g. the repeat length of each sequence). Per-sequence metadata is a tensor with one row per
    sequence (first dimension ``n``), so that :meth:`select` can cut it with the tokens. ``note`` says how the
    probe adapted to the model (e.g. "shortened: length 21 needs 43 tokens; the model's context is 17, so
    length 8 was used"); the report shows it with every criterion that used the probe.
    """

    name: str
    params: dict[str, Any]
    tokens: torch.Tensor | None
    bos: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def key(self) -> str:
        return probe_key(self.name, self.params)

    def select(self, rows: slice | torch.Tensor) -> ProbeBatch:
        """The sequences ``rows`` of this probe (one batch of a forward pass, or the row indices of a resample),
        with their per-sequence metadata: every tensor in ``info`` whose first dimension is the number of
        sequences is cut too."""
        if self.tokens is None:
            return self
        count = self.tokens.shape[0]

        def cut(value: Any) -> Any:
            per_sequence = isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == count
            return value[rows] if per_sequence else value

        info = {key: cut(value) for key, value in self.info.items()}
        return ProbeBatch(self.name, self.params, self.tokens[rows], bos=self.bos, info=info, note=self.note)


def probe_key(name: str, params: dict[str, Any]) -> str:
    """A stable identity for a probe with its parameters, used to share it across checkers."""
    inner = ", ".join(f"{key}={params[key]!r}" for key in sorted(params))
    return f"{name}({inner})"


def probe_generator(seed: int, name: str, params: dict[str, Any]) -> torch.Generator:
    """A generator seeded from the run seed and the probe's identity, stable across processes."""
    return hashed_generator(f"{seed}|{probe_key(name, params)}")


def hashed_generator(identity: str) -> torch.Generator:
    """A generator seeded from a hash of ``identity`` (not Python's ``hash``): the same draws in every process."""
    digest = hashlib.sha256(identity.encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


@dataclass(frozen=True)
class ProbeRequest:
    """What a probe's ``build`` function receives: validated parameters, the vocabulary, the run's seed.

    ``model`` is the model the probe is built for: a :class:`~defcheck.models.ModelView`, or another kind of
    model a plugin's loader returned (then ``tokens`` is ``None`` and ``n_ctx`` 0: such a model has no
    vocabulary, and its probes read what they need from ``model``). ``fit`` is the probe's declared fit policy
    (:attr:`~defcheck.hooks.declarations.Probe.fit`); :meth:`fit_policy` applies a criterion's ``fit:`` param.
    ``files`` says where the paths in the params start and may lead (:meth:`path`).
    """

    params: Any
    tokens: TokenSpace | None
    seed: int
    n_ctx: int
    tokenizer: Any = None
    model: Any = None
    fit: FitPolicy = "not_applicable"
    files: FileScope | None = None

    def path(self, name: str | Path, what: str) -> Path:
        """A file a parameter names, for a probe that reads one (declared with ``Probe(reads_files=True)``):
        relative to the folder of the concept file whose criterion asked for the probe, and refused
        (:class:`~defcheck.diagnostics.DefcheckError`, ``what`` first) outside the project unless the user allows
        it (``--allow-outside-files``). Built by hand, without ``files``: relative to the working directory."""
        return (self.files or FileScope.here()).resolve(name, what)

    def inside(self, path: Path, what: str) -> None:
        """Refuse ``path`` (a file a glob or folder led to) outside the project, as :meth:`path` does."""
        (self.files or FileScope.here()).check(path, what)

    def fit_policy(self) -> FitPolicy:
        """The policy for sequences longer than ``n_ctx``: the criterion's ``fit:`` param where the probe's
        parameters have one and it is set, else the probe's declared :attr:`fit`."""
        chosen = getattr(self.params, "fit", None) or self.fit
        if chosen not in FIT_POLICIES:
            raise DefcheckError(f"fit must be one of {', '.join(FIT_POLICIES)}, got {chosen!r}")
        return cast(FitPolicy, chosen)

    def vocabulary(self) -> TokenSpace:
        """``tokens``, for a probe that draws token ids: a model without token metadata is refused in one sentence."""
        if self.tokens is None:
            raise DefcheckError(
                "this probe draws token ids, and the model has no token metadata (its vocabulary and BOS id)"
            )
        return self.tokens
