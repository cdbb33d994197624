"""The ``gridworld`` model loader: sets of gridworld policies as one model object, one unit per policy.

References:

- ``gridworld:policies``: the policies trained by ``scripts/train_gridworld.py`` (shipped in
  ``plugins/weights/gridworld/``: ``policies.pt`` and ``policies.json``);
- ``gridworld:constructed``: the hand-built policies of :mod:`defcheck_plugins.gridworld.constructed`;
- ``gridworld:PATH.pt`` or plain ``PATH.pt``: a user's :class:`~defcheck_plugins.gridworld.policy.GridPolicy`
  weights, read with ``torch.load(weights_only=True)``. The file holds one policy's ``state_dict()`` (keys
  ``net.0.weight``, ...) or several, prefixed by their names (``NAME/net.0.weight``). Its config is
  ``PATH.json`` beside it (or ``config.json`` in its folder)::

      {"loader": "gridworld", "architecture": "gridworld-mlp", "size": 7, "hidden": [48, 48]}

  ``"loader": "gridworld"`` is what lets a plain path (without the ``gridworld:`` prefix) reach this loader
  rather than the transformer ``checkpoint`` loader.

Every problem with a file (missing, unreadable, not a state dict, a key or shape that does not fit the config)
is reported as one sentence (a :class:`~defcheck.diagnostics.DefcheckError`), never a traceback.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from defcheck_plugins.gridworld.constructed import HIDDEN as CONSTRUCTED_HIDDEN
from defcheck_plugins.gridworld.constructed import SIZE as CONSTRUCTED_SIZE
from defcheck_plugins.gridworld.constructed import constructed_states
from defcheck_plugins.gridworld.env import Grid
from defcheck_plugins.gridworld.policy import ARCHITECTURE, GridPolicy, PolicySet

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use

# Not the contract: the built-in loaders' shared readers of config and weight files (one set of messages).
from defcheck.models.loading import read_config, read_state_dict
from defcheck.plugin import DefcheckError, did_you_mean, display_path

WEIGHTS = "defcheck_plugins.weights"
SHIPPED = ("policies", "constructed")
LOADER = "gridworld"


def _config_beside(weights: Path) -> Path | None:
    for candidate in (weights.with_suffix(".json"), weights.parent / "config.json"):
        if candidate.is_file():
            return candidate
    return None


def matches_gridworld(reference: str) -> bool:
    """A plain path to a ``.pt`` file whose config says ``"loader": "gridworld"``."""
    path = Path(reference).expanduser()
    if path.suffix.lower() not in (".pt", ".pth") or not path.is_file():
        return False
    config = _config_beside(path)
    if config is None:
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("loader") == LOADER
    except (OSError, ValueError, AttributeError):
        return False


def _architecture(config: dict[str, Any], shown: str) -> tuple[int, tuple[int, ...]]:
    """``(size, hidden)`` from a config, refused with one sentence where it does not describe a GridPolicy."""
    architecture = config.get("architecture", ARCHITECTURE)
    if architecture != ARCHITECTURE:
        raise DefcheckError(
            f"{shown} names the architecture '{architecture}'; the gridworld loader builds '{ARCHITECTURE}' only"
        )
    size, hidden = config.get("size", 7), config.get("hidden")
    if not isinstance(size, int) or isinstance(size, bool) or size < 3:
        raise DefcheckError(f"{shown}: 'size' must be an integer >= 3 (the grid side), got {size!r}")
    if (
        not isinstance(hidden, list)
        or not hidden
        or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in hidden)
    ):
        raise DefcheckError(
            f"{shown}: 'hidden' must be a non-empty list of positive widths, e.g. [48, 48], got {hidden!r}"
        )
    return size, tuple(hidden)


def split_policies(state: dict[str, torch.Tensor], shown: str) -> dict[str, dict[str, torch.Tensor]]:
    """``{policy name: state dict}`` from one flat state dict: ``NAME/KEY`` keys, or one unnamed policy."""
    if not any("/" in key for key in state):
        return {Path(shown).stem or "policy": state}
    policies: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        name, slash, inner = key.rpartition("/")
        if not slash or not name:
            raise DefcheckError(f"{shown} mixes named keys (NAME/net.0.weight) with the unnamed key '{key}'")
        policies.setdefault(name, {})[inner] = tensor
    return policies


def _checked(states: dict[str, dict[str, torch.Tensor]], size: int, hidden: tuple[int, ...], shown: str) -> None:
    """Every policy has exactly the keys and shapes of ``GridPolicy(size, hidden)``."""
    expected = {key: tuple(value.shape) for key, value in GridPolicy(size, hidden).state_dict().items()}
    described = f"a GridPolicy with size {size} and hidden {list(hidden)}"
    for name, state in states.items():
        missing = [key for key in expected if key not in state]
        if missing:
            raise DefcheckError(f"{shown}: policy '{name}' has no '{missing[0]}', so it is not {described}")
        extra = [key for key in state if key not in expected]
        if extra:
            raise DefcheckError(f"{shown}: policy '{name}' has the key '{extra[0]}', which {described} lacks")
        for key, shape in expected.items():
            if tuple(state[key].shape) != shape:
                raise DefcheckError(
                    f"{shown}: policy '{name}' has '{key}' of shape {tuple(state[key].shape)}, but "
                    f"{described} needs {shape}"
                )


def policy_set(
    states: dict[str, dict[str, torch.Tensor]], config: dict[str, Any], shown: str, name: str, info: dict[str, Any]
) -> PolicySet:
    """A :class:`PolicySet` from policies' state dicts and their config, after checking that they fit it."""
    size, hidden = _architecture(config, shown)
    _checked(states, size, hidden, shown)
    return PolicySet.from_state_dicts(
        Grid(size),
        hidden,
        states,
        name=name,
        info={"loader": LOADER, "architecture": ARCHITECTURE, "size": size, "hidden": list(hidden), **info},
    )


def load_shipped(which: str, reference: str) -> PolicySet:
    """``gridworld:policies`` (trained, from the package's weights) or ``gridworld:constructed`` (built here)."""
    if which == "constructed":
        config: dict[str, Any] = {"size": CONSTRUCTED_SIZE, "hidden": list(CONSTRUCTED_HIDDEN)}
        return policy_set(
            constructed_states(),
            config,
            reference,
            reference,
            {"source": "hand-built (defcheck_plugins.gridworld.constructed)"},
        )
    folder = resources.files(WEIGHTS).joinpath("gridworld")
    with resources.as_file(folder.joinpath("policies.json")) as config_path:
        config = read_config(Path(config_path))
    with resources.as_file(folder.joinpath("policies.pt")) as weights:
        states = split_policies(read_state_dict(Path(weights)), reference)
    training = {name: dict(row) for name, row in config.get("policies", {}).items()}
    return policy_set(
        states,
        config,
        reference,
        reference,
        {"source": "scripts/train_gridworld.py", "policies": training, "training": config.get("training", {})},
    )


def load_gridworld(reference: str, options: dict[str, Any]) -> PolicySet:
    """The policies a ``gridworld:...`` reference (or a plain path to GridPolicy weights) names."""
    if options.get("device") not in (None, "cpu"):
        raise DefcheckError("gridworld policies run on the CPU only (they are tiny); leave out --device")
    target = reference.removeprefix(f"{LOADER}:").strip()
    if target in SHIPPED:
        if options.get("model_config") is not None:
            raise DefcheckError(f"{LOADER}:{target} brings its own config; --model-config is for weight files")
        return load_shipped(target, f"{LOADER}:{target}")
    weights = Path(target).expanduser()
    shown = display_path(weights)
    if weights.suffix.lower() not in (".pt", ".pth") and not weights.exists():
        hint = did_you_mean(target, SHIPPED)
        raise DefcheckError(
            f"unknown gridworld model '{target}'{hint} (give gridworld:policies, gridworld:constructed "
            "or a path to GridPolicy weights, .pt)"
        )
    state = read_state_dict(weights)
    given = options.get("model_config")
    if isinstance(given, dict):
        config, config_shown = given, "the model config"
    else:
        path = Path(given).expanduser() if given is not None else _config_beside(weights)
        if path is None:
            raise DefcheckError(
                f"no config for the policy weights {shown}: put {weights.with_suffix('.json').name} "
                'beside it, e.g. {"loader": "gridworld", "size": 7, "hidden": [48, 48]}'
            )
        config, config_shown = read_config(path), display_path(path)
    return policy_set(
        split_policies(state, shown), config, config_shown, reference, {"weights": shown, "config": config_shown}
    )
