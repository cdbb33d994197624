"""What plugins register: checkers, probes, unit kinds, model loaders and report formats, as plain declarations.

A plugin returns these objects from its hooks (see :mod:`defcheck.hooks.specs`); the core keeps them in an
:class:`~defcheck.hooks.manager.Extensions` table and never imports a plugin by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # the contract names these types; importing them would import torch (docs/performance.md)
    from torch import Tensor

    from defcheck.engine.context import CheckContext
    from defcheck.engine.probe_data import ProbeBatch, ProbeRequest
    from defcheck.engine.scores import Scores
    from defcheck.models.view import ModelView
    from defcheck.report import Report

Observes = Literal["behavior", "mechanism"]
FitPolicy = Literal["shorten", "not_applicable"]
"""What a probe does when its sequences would be longer than the model's context (``n_ctx``): see :class:`Probe`."""
FIT_POLICIES: tuple[FitPolicy, ...] = ("shorten", "not_applicable")
Need = Literal["required", "optional", "none"]
UNIT_KINDS = ("attention_head", "mlp_neuron", "layer", "model")
"""The unit kinds the built-in plugin ``units`` registers (others come from plugins' ``defcheck_unit_kinds``)."""


# -- the callables a declaration holds, as typed protocols (positional parameters: any names will do) ------------


class ScoreFunction(Protocol):
    """``Checker.score``: every unit's score on one model, as :class:`Scores` or a bare tensor of
    ``context.shape``."""

    def __call__(self, context: CheckContext, /) -> Scores | Tensor: ...


class ActivationsFunction(Protocol):
    """``Checker.activations``: the hook points (``blocks.0.attn.hook_pattern``) the checker reads, given its
    validated parameters and the model, so that one forward pass per probe captures them for every checker."""

    def __call__(self, params: Any, model: Any, /) -> list[str]: ...


class ChanceFunction(Protocol):
    """``Checker.chance``: what a null unit (one that does not do what the checker looks for: uniform attention,
    random weights of the same shapes, a zero or shuffled output) scores on the same model, parameters and probe,
    as one number (a 0-dim tensor will do), or ``None`` where the checker cannot say. The context is the
    criterion's, with the whole probe and no activations."""

    def __call__(self, context: CheckContext, /) -> float | Tensor | None: ...


class StepFunction(Protocol):
    """``Streamed.step`` and ``Streamed.prepare``: a partial result from one batch of the probe (no activations)."""

    def __call__(self, context: CheckContext, /) -> Any: ...


class FinishFunction(Protocol):
    """``Streamed.finish``: the scores from the steps' partial results, in batch order."""

    def __call__(self, context: CheckContext, partials: list[Any], /) -> Scores | Tensor: ...


class WantsPrepareFunction(Protocol):
    """``Streamed.wants_prepare``: whether this criterion needs the ``prepare`` pass."""

    def __call__(self, context: CheckContext, /) -> bool: ...


class BuildFunction(Protocol):
    """``Probe.build``: the probe's data for one model, seeded by ``request.seed``."""

    def __call__(self, request: ProbeRequest, /) -> ProbeBatch: ...


class LoadFunction(Protocol):
    """``ModelLoader.load``: the model a reference names; ``options`` holds the user's options (``device``,
    ``bos_token_id``, ``token_ids``, ``checkpoint_index``, ...). A transformer comes back as a :class:`ModelView`."""

    def __call__(self, reference: str, options: dict[str, Any], /) -> ModelView | Any: ...


class MatchesFunction(Protocol):
    """``ModelLoader.matches``: whether this loader handles a reference that names no loader (a plain path)."""

    def __call__(self, reference: str, /) -> bool: ...


class CheckpointsFunction(Protocol):
    """``ModelLoader.checkpoints``: the training checkpoints of a reference, by index (steps, or mappings with
    ``step`` and optionally ``reference``, ``metrics``, ``identity``), and their unit (``"step"`` or ``"token"``)."""

    def __call__(self, reference: str, /) -> tuple[Sequence[int | Mapping[str, Any]], str]: ...


class RenderFunction(Protocol):
    """``ReportFormat.render``: a :class:`~defcheck.report.Report` as the format's text (``str``) or bytes."""

    def __call__(self, report: Report, /) -> str | bytes: ...


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
    ``sequence_axis``, where given, says that ``step``'s partials hold one value per sequence along that axis
    (every tensor in the partial, or in its tuple, list or dict, with more dimensions than the axis; other tensors
    are the same in every batch): then ``--bootstrap B`` resamples the probe's sequences by resampling the
    partials and calling ``finish`` again on the resampled probe (:mod:`defcheck.engine.bootstrap`).
    """

    step: StepFunction
    finish: FinishFunction
    prepare: StepFunction | None = None
    wants_prepare: WantsPrepareFunction | None = None
    logits: bool = False
    sequence_axis: int | None = None


@dataclass(frozen=True)
class Checker:
    """A scoring function over every unit of a model at once.

    ``observes`` is what the score is computed from: ``behavior`` (a unit's activations and outputs on a
    probe: attention patterns, logits) or ``mechanism`` (weights, circuits, composition, interventions).
    The kind lint compares it with each definition's ``kind``. ``params`` is a pydantic model (with
    defaults, ``extra="forbid"``) that validates the criterion's ``params:``; ``probe`` and ``relation``
    say whether a criterion must, may or must not give a ``probe:`` and a ``with:``. ``score(context)``
    (:class:`ScoreFunction`) is called by the runner with a :class:`~defcheck.engine.context.CheckContext` and
    returns the scores; ``activations(params, model)`` names the hook points it reads. ``streamed`` (optional)
    lets the runner score the probe batch by batch (:class:`Streamed`); a checker without it gets the whole
    probe's activations at once. ``unit`` is the unit kind it scores (a :class:`UnitKind` name), or a tuple of
    the kinds it can score: a concept of another kind
    cannot use it, and its scores have that kind's shape. ``chance(context)`` (optional, :class:`ChanceFunction`)
    is the chance level: what a null unit scores on the same probe, which reports show beside the threshold and
    the run's lint compares with it; without it the chance level is unknown (``None``, shown as ``-``).
    """

    name: str
    observes: Observes
    score: ScoreFunction
    unit: str | tuple[str, ...] = "attention_head"
    summary: str = ""
    source: str | None = None
    params: type[BaseModel] = NoParams
    probe: Need = "none"
    relation: Need = "none"
    activations: ActivationsFunction | None = None
    streamed: Streamed | None = None
    chance: ChanceFunction | None = None

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
    """A deterministic, seeded input set (e.g. repeated random tokens), built once per run and shared.

    ``build(request) -> ProbeBatch`` (:class:`BuildFunction`) gets the validated ``params``, the vocabulary and the
    run's seed in a :class:`~defcheck.engine.probe_data.ProbeRequest`.

    ``fit`` declares what the probe does when its sequences would not fit the model's context (``request.n_ctx``):
    ``"shorten"``: ``build`` makes them fit (the longest lengths that do) and says how in ``ProbeBatch.note``, which
    the report shows with every criterion that used the probe; ``"not_applicable"`` (the default): ``build``
    raises :class:`~defcheck.engine.scores.NotApplicable` with the reason ("length 21 needs 43 tokens; the model's
    context is 17"), so its criteria are not applicable. ``build`` reads the policy from
    ``request.fit_policy()``, which honours a criterion's ``fit:`` param where the probe's params have one (the
    built-in token probes do). Either way a batch longer than ``n_ctx`` never reaches the model: the runner marks
    its criteria not applicable, naming the lengths.

    ``reads_files``: ``build`` reads files its params name, through ``request.path(name, what)``, relative to the
    concept file that asks for the probe (so the runner builds it once per folder of concept files, not once per
    run) and inside the project unless the user allows more.
    """

    name: str
    build: BuildFunction
    params: type[BaseModel] = NoParams
    summary: str = ""
    fit: FitPolicy = "not_applicable"
    reads_files: bool = False


@dataclass(frozen=True)
class ModelLoader:
    """Turns a model reference (``builtin:NAME``, ``tl:NAME``, a checkpoint path) into a model.

    ``checkpoints`` (optional) lists the training checkpoints a reference has, for ``defcheck sweep``: by index,
    and the unit (``"step"`` or ``"token"``). An item is a step (``load`` then gets the reference with
    ``options["checkpoint_index"]``) or a mapping with ``step`` and optionally its own ``reference`` (e.g.
    ``builtin:NAME@STEP``), ``metrics`` (numbers recorded in training) and ``identity`` (what changes with its bytes).
    ``load(reference, options)`` (:class:`LoadFunction`) returns the model; ``matches(reference)`` claims a
    reference without a ``NAME:`` prefix.
    """

    name: str
    load: LoadFunction
    summary: str = ""
    matches: MatchesFunction | None = None
    checkpoints: CheckpointsFunction | None = None


@dataclass(frozen=True)
class ReportFormat:
    """Renders a report to text or bytes (``json``, ``markdown``, ``html``, ...).

    ``render(report) -> str | bytes`` (:class:`RenderFunction`) gets a :class:`~defcheck.report.Report` (the JSON
    document: ``report.data``, ``report.concepts``, ``report.to_json()``) and returns the whole file; ``suffix``
    is its extension.
    """

    name: str
    render: RenderFunction
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
