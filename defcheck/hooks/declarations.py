"""What plugins register: checkers, probes, unit kinds, model loaders and report formats, as plain declarations.

A plugin returns these objects from its hooks (see :mod:`defcheck.hooks.specs`); the core keeps them in an
:class:`~defcheck.hooks.manager.Extensions` table and never imports a plugin by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Observes = Literal["behavior", "mechanism"]
Need = Literal["required", "optional", "none"]
UNIT_KINDS = ("attention_head", "mlp_neuron", "layer", "model")
"""The unit kinds the built-in plugin ``units`` registers (others come from plugins' ``defcheck_unit_kinds``)."""


class NoParams(BaseModel):
    """The parameter model of a checker or probe that takes no parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Streamed:
    """How a checker scores a probe one batch of sequences at a time, so that the runner holds one batch's
    activations in memory, not the whole probe's.

    ``step(context)`` is called once per batch of the forward pass: ``context.probe`` holds only that batch's
    sequences (``context.rows`` says which rows of the probe they are) and ``context.activations`` only their
    activations. It returns a partial result that holds no activations (per-sequence values, sums).
    ``finish(context, partials)`` is then called once, with the whole probe, no activations, and the partials
    in batch order, and returns the scores; it must give the same scores as one step over the whole probe.
    ``prepare``, where given, is a first pass over the probe for statistics every batch needs (e.g. a mean over
    all sequences for mean ablation): the runner calls it per batch before the steps and hands the list of its
    results to every step and to ``finish`` as ``context.prepared``; ``wants_prepare(context)`` (default: always)
    says whether a criterion needs that pass, which costs one more forward pass over the probe. ``logits``:
    whether ``step`` reads ``context.logits`` (without it the forward pass may stop before the unembedding).
    """

    step: Callable[..., Any]
    finish: Callable[..., Any]
    prepare: Callable[..., Any] | None = None
    wants_prepare: Callable[..., bool] | None = None
    logits: bool = False


@dataclass(frozen=True)
class Checker:
    """A scoring function over every unit of a model at once.

    ``observes`` is what the score is computed from: ``behavior`` (a unit's activations and outputs on a
    probe: attention patterns, logits) or ``mechanism`` (weights, circuits, composition, interventions).
    The kind lint compares it with each definition's ``kind``. ``params`` is a pydantic model (with
    defaults, ``extra="forbid"``) that validates the criterion's ``params:``; ``probe`` and ``relation``
    say whether a criterion must, may or must not give a ``probe:`` and a ``with:``. ``score`` is called by
    the runner with a context and returns the scores; its signature is documented in
    ``docs/writing-plugins.md``. ``streamed`` (optional) lets the runner score the probe batch by batch
    (:class:`Streamed`); a checker without it gets the whole probe's activations at once. ``unit`` is the unit
    kind it scores (a :class:`UnitKind` name), or a tuple of the kinds it can score: a concept of another kind
    cannot use it, and its scores have that kind's shape.
    """

    name: str
    observes: Observes
    score: Callable[..., Any]
    unit: str | tuple[str, ...] = "attention_head"
    summary: str = ""
    source: str | None = None
    params: type[BaseModel] = NoParams
    probe: Need = "none"
    relation: Need = "none"
    activations: Callable[..., list[str]] | None = None
    streamed: Streamed | None = None

    @property
    def units(self) -> tuple[str, ...]:
        """The unit kinds this checker scores, as a tuple (``unit`` may name one kind or several)."""
        return (self.unit,) if isinstance(self.unit, str) else tuple(self.unit)


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit that concepts categorize: attention heads, MLP neurons, layers, whole models, ...

    It says, for a given model object (what a model loader returned), how many units there are and how they
    are laid out: ``shape(model)`` is the shape of a checker's score tensor (heads ``(n_layers, n_heads)``,
    neurons ``(n_layers, d_mlp)``, layers ``(n_layers,)``, models ``(n_models,)``) and raises
    :class:`~defcheck.engine.scores.NotApplicable` with a reason when the model has no such units (an attention-only
    model has no MLP neurons); ``names(model)`` gives each unit's address, in the flattened row-major order of
    that tensor (``"1.4"`` for a head, ``"0.17"`` for a neuron, ``"1"`` for a layer, a model's name).
    ``grid(model)`` gives the row and column labels of a heatmap (``rows x columns`` must equal the number of
    units, row-major, as ``names``) or ``None`` for a table; without ``grid``, reports use a table.
    ``axes`` names the dimensions of ``shape`` for messages (``("layers", "heads")``); ``singular`` and
    ``plural`` are the nouns reports use (``"head"``, ``"heads"``).
    """

    name: str
    shape: Callable[[Any], tuple[int, ...]]
    names: Callable[[Any], list[str]]
    grid: Callable[[Any], tuple[list[str], list[str]] | None] | None = None
    axes: tuple[str, ...] = ()
    singular: str = "unit"
    plural: str = "units"
    summary: str = ""


@dataclass(frozen=True)
class Probe:
    """A deterministic, seeded input set (e.g. repeated random tokens), built once per run and shared."""

    name: str
    build: Callable[..., Any]
    params: type[BaseModel] = NoParams
    summary: str = ""


@dataclass(frozen=True)
class ModelLoader:
    """Turns a model reference (``builtin:NAME``, ``tl:NAME``, a checkpoint path) into a model.

    ``checkpoints`` (optional) lists the training checkpoints a reference has, for ``defcheck sweep``: their
    steps by index and the unit (``"step"`` or ``"token"``); ``load`` then gets ``options["checkpoint_index"]``.
    """

    name: str
    load: Callable[..., Any]
    summary: str = ""
    matches: Callable[[str], bool] | None = None
    checkpoints: Callable[[str], tuple[list[int], str]] | None = None


@dataclass(frozen=True)
class ReportFormat:
    """Renders a report to text or bytes (``json``, ``markdown``, ``html``, ...)."""

    name: str
    render: Callable[..., str | bytes]
    suffix: str = ".txt"
    summary: str = ""


@dataclass(frozen=True)
class ConceptFolder:
    """A folder (or file) of concept files that a plugin ships."""

    path: Any
    summary: str = ""


EXTENSION_KINDS: dict[str, type] = {
    "checkers": Checker,
    "probes": Probe,
    "unit_kinds": UnitKind,
    "model_loaders": ModelLoader,
    "report_formats": ReportFormat,
    "concept_folders": ConceptFolder,
}


@dataclass
class PluginInfo:
    """One plugin as found: its name, where it came from, what it registered, or why it failed."""

    name: str
    module: str
    distribution: str | None
    builtin: bool
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "registers": self.registers,
            "error": self.error,
        }
