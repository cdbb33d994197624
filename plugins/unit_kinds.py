"""The built-in unit kinds: attention heads, MLP neurons, layers and whole models.

Each one says how many units of its kind a model has (the shape of a checker's scores), how each is addressed,
and how reports lay them out. Heads and neurons are drawn as layer x index heatmaps, layers and models as tables.
Transformers are recognized by what they offer (``n_layers``, ``n_heads``, ``d_mlp``), not by type, so another
backend's model view works too. A model object that stands for several models (a set of policies from a
plugin's loader) lists them in ``model_names``; any other model is one ``model`` unit, named by its ``name``.
"""

from __future__ import annotations

from typing import Any

from defcheck.plugin import NotApplicable, UnitKind, hookimpl


def _name(model: Any) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _size(model: Any, attribute: str, missing: str) -> int:
    """``model.<attribute>`` as a positive int, or NotApplicable(``missing``) when the model lacks it."""
    try:
        value = getattr(model, attribute)
    except (AttributeError, TypeError, ValueError):  # a view whose config lacks the field
        value = None
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NotApplicable(f"{_name(model)} {missing}")
    return value


def _layers(model: Any) -> int:
    return _size(model, "n_layers", "has no layers")


def _heads_shape(model: Any) -> tuple[int, int]:
    heads = _size(model, "n_heads", "has no attention heads")
    return _layers(model), heads


def _neurons_shape(model: Any) -> tuple[int, int]:
    if getattr(model, "attn_only", False):
        raise NotApplicable(f"{_name(model)} has no MLP neurons (it is attention only)")
    neurons = _size(model, "d_mlp", "has no MLP neurons")
    return _layers(model), neurons


def _addresses(shape: tuple[int, int]) -> list[str]:
    rows, columns = shape
    return [f"{row}.{column}" for row in range(rows) for column in range(columns)]


def _labels(shape: tuple[int, int]) -> tuple[list[str], list[str]]:
    rows, columns = shape
    return [str(row) for row in range(rows)], [str(column) for column in range(columns)]


def _model_names(model: Any) -> list[str]:
    names = getattr(model, "model_names", None)
    if names is None:
        return [_name(model)]
    names = [str(name) for name in (names() if callable(names) else names)]
    if not names:
        raise NotApplicable(f"{_name(model)} holds no models")
    return names


def _layered(name: str, shape: Any, index: str, summary: str) -> UnitKind:
    """A kind of unit found ``shape(model)[1]`` times in each layer, addressed ``LAYER.INDEX``, drawn as a grid."""
    return UnitKind(
        name,
        shape=shape,
        names=lambda model: _addresses(shape(model)),
        grid=lambda model: _labels(shape(model)),
        axes=("layers", f"{index}s"),
        singular=index,
        plural=f"{index}s",
        summary=summary,
    )


ATTENTION_HEAD = _layered(
    "attention_head", _heads_shape, "head", "An attention head, addressed LAYER.HEAD (1.4 is head 4 of layer 1)."
)
MLP_NEURON = _layered(
    "mlp_neuron",
    _neurons_shape,
    "neuron",
    "A neuron of an MLP layer (a column of W_in), addressed LAYER.NEURON (0.17 is neuron 17 of layer 0).",
)
LAYER = UnitKind(
    "layer",
    shape=lambda model: (_layers(model),),
    names=lambda model: [str(layer) for layer in range(_layers(model))],
    axes=("layers",),
    singular="layer",
    plural="layers",
    summary="A whole layer (block) of a network, addressed by its index.",
)
MODEL = UnitKind(
    "model",
    shape=lambda model: (len(_model_names(model)),),
    names=_model_names,
    axes=("models",),
    singular="model",
    plural="models",
    summary="A whole network or policy, named by the model (one per model in a set such as a loader's policies).",
)


@hookimpl
def defcheck_unit_kinds() -> list[UnitKind]:
    return [ATTENTION_HEAD, MLP_NEURON, LAYER, MODEL]
