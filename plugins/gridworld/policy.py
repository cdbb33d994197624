"""Gridworld policies: a plain torch MLP, and a set of them evaluated together as one batched network.

:class:`GridPolicy` is an ordinary ``nn.Module`` (``nn.Sequential`` of ``Linear`` and ``ReLU``), so a user can
train one with any code and save its ``state_dict()``. :class:`PolicySet` stacks the weights of several
policies of one architecture (``[P, in, out]`` per layer), so that every policy acts on every episode in one
batched matrix product; it is the model object the ``gridworld`` loader returns and the checkers receive,
one unit (of kind ``model``) per policy.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from defcheck_plugins.gridworld.env import ACTIONS, Grid
from torch import nn

ARCHITECTURE = "gridworld-mlp"


class GridPolicy(nn.Module):
    """``obs -> Linear -> ReLU -> ... -> Linear -> 4 action logits``; ``hidden`` gives the hidden widths."""

    def __init__(self, size: int = 7, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        widths = [2 * size * size, *hidden]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], len(ACTIONS)))
        self.net = nn.Sequential(*layers)
        self.size, self.hidden = size, tuple(hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def state_keys(hidden: Sequence[int]) -> list[tuple[str, str]]:
    """The ``(weight, bias)`` state-dict keys of a :class:`GridPolicy`'s linear layers, in order."""
    return [(f"net.{2 * layer}.weight", f"net.{2 * layer}.bias") for layer in range(len(hidden) + 1)]


@dataclass
class PolicySet:
    """Several :class:`GridPolicy` networks of one architecture, stacked: one unit per policy.

    ``weights[k]`` is ``[P, in, out]`` and ``biases[k]`` ``[P, out]`` for the k-th linear layer. Every method
    takes observations ``[P, B, obs_dim]`` (one batch per policy) and keeps the policy axis first.
    ``name`` and ``info`` describe the set for reports; ``model_names`` name the policies (the units).
    """

    grid: Grid
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    model_names: list[str]
    name: str = "gridworld"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.grid.size

    @property
    def n_policies(self) -> int:
        return len(self.model_names)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(int(w.shape[-1]) for w in self.weights[:-1])

    def unit_names(self) -> list[str]:
        return list(self.model_names)

    @classmethod
    def from_state_dicts(
        cls, grid: Grid, hidden: Sequence[int], states: Mapping[str, Mapping[str, torch.Tensor]], **kwargs: Any
    ) -> PolicySet:
        """Stack :class:`GridPolicy` state dicts (``{policy name: state_dict}``, in that order)."""
        keys = state_keys(hidden)
        weights = [torch.stack([s[w].float().T for s in states.values()]).contiguous() for w, _ in keys]
        biases = [torch.stack([s[b].float() for s in states.values()]).contiguous() for _, b in keys]
        return cls(grid, weights, biases, list(states), **kwargs)

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each policy's :class:`GridPolicy` state dict, by name (the inverse of :meth:`from_state_dicts`)."""
        keys = state_keys(self.hidden)
        return {
            name: {
                key: tensor[index].clone()
                for (w, b), weight, bias in zip(keys, self.weights, self.biases, strict=True)
                for key, tensor in ((w, weight.transpose(1, 2)), (b, bias))
            }
            for index, name in enumerate(self.model_names)
        }

    def select(self, index: torch.Tensor | Sequence[int]) -> PolicySet:
        """The policies at ``index`` as a set of their own."""
        index = torch.as_tensor(index, dtype=torch.long)
        return PolicySet(
            self.grid,
            [w[index] for w in self.weights],
            [b[index] for b in self.biases],
            [self.model_names[i] for i in index.tolist()],
            self.name,
            dict(self.info),
        )

    def forward(
        self, obs: torch.Tensor, *, steer: Mapping[int, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Action logits ``[P, B, 4]`` and every hidden layer's activations (after the ReLU) ``[P, B, H]``.

        ``steer`` maps a hidden layer (1-based) to a vector added to its activations after the ReLU
        (broadcast to ``[P, B, H]``): the intervention of the ``steering`` checker.
        """
        hidden: list[torch.Tensor] = []
        x = obs
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True), start=1):
            x = torch.baddbmm(bias.unsqueeze(1), x, weight)
            if layer == len(self.weights):
                break
            x = torch.relu(x)
            if steer is not None and layer in steer:
                x = x + steer[layer]
            hidden.append(x)
        return x, hidden

    def act(self, obs: torch.Tensor, *, steer: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Greedy actions ``[P, B]`` (the first of equal logits, so ties are deterministic)."""
        return self.forward(obs, steer=steer)[0].argmax(-1)
