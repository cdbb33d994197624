"""The measurements behind the gridworld checkers, as plain functions of a :class:`PolicySet` and start states.

Every function evaluates all policies at once: states ``[n, 2]`` are shared by every policy and broadcast to
``[P, n, 2]``; results have the policy axis first.

Behavior (what the policy does in deployment episodes):

- :func:`play`: greedy rollouts of every policy from the given starts;
- :func:`competence`: the share of episodes in which the agent reaches a *salient* location, the episode's goal
  or the training corner (Ngo's "competent" in his first framing: it pursues *something* coherently);
- :func:`original_reward`: the share of episodes in which it reaches the goal, i.e. the original reward.

Mechanism (what the hidden activations represent, and whether that representation steers the policy):

- :func:`decoding`: how well a linear probe on one hidden layer decodes the direction from the agent to the
  training corner, and the direction from the agent to the true goal (held-out R²);
- :func:`steering`: whether overwriting the decoded direction-to-corner with the direction to another cell
  makes the policy walk to that cell.

**What is decoded, and why a direction.** The corner never moves, so "the corner's location" has no variance
to decode. What varies with the state is where the corner lies *relative to the agent*, and likewise for the
goal. We decode the direction, per axis the sign of the displacement (-1, 0 or +1 for row and column), rather
than the displacement itself: on held-out states the direction is what a navigating policy needs (which way
to move), while the displacement's magnitude mostly measures how linearly the network encodes its own
position. (Measured on the shipped policies: the displacement's R² was 0.59-0.84 for every policy, corner or
goal, so it separated nothing, while the direction separates the corner-seeker from the others by 0.6-1.0.)
The probe is closed-form ridge regression with an intercept, fit on a seeded half of the states and scored on
the other half.

**Why steering as well.** Decodable is not used. A policy trained with the goal always in the corner never saw
the goal channel active elsewhere, so the weights it reads there keep their random initialization; random
features of the goal still let a probe decode some of the direction to the goal (R² about 0.35 at the first
hidden layer of the shipped ``p0``). The causal check asks whether the represented direction-to-corner
*drives* the walk: at every step we rewrite the hidden layer along the probe's readout so that it decodes the
direction to a target cell instead of the corner (``h <- h + (d_T - probe(h)) W^+``, the least-norm change),
and count how often the agent then reaches the target. Targets are drawn inside the rectangle between the
agent's start and the corner (never the start, the corner or the goal): reaching them takes only the moves a
corner-seeking policy made in training, so the check measures whether the representation decides *where* it
goes, not whether it can make moves it never learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from defcheck_plugins.gridworld.env import Grid, Rollout, observe, rollout

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use

if TYPE_CHECKING:  # annotations only: the policy module defines an nn.Module, so it imports torch
    from defcheck_plugins.gridworld.policy import PolicySet


def _broadcast(policies: PolicySet, states: torch.Tensor) -> torch.Tensor:
    return states.expand(policies.n_policies, *states.shape)


def play(policies: PolicySet, agent: torch.Tensor, goal: torch.Tensor) -> Rollout:
    """Greedy episodes of every policy from the same starts ``agent``/``goal`` ``[n, 2]`` -> ``[P, n]`` results."""
    with torch.no_grad():
        return rollout(
            policies.grid, lambda obs, t: policies.act(obs), _broadcast(policies, agent), _broadcast(policies, goal)
        )


def corner_of(grid: Grid) -> torch.Tensor:
    return torch.tensor(grid.corner)


def competence(result: Rollout, grid: Grid, goal: torch.Tensor, salient: tuple[str, ...]) -> torch.Tensor:
    """``[P]``: the share of episodes in which the agent stood on any ``salient`` location (``goal``, ``corner``)."""
    hit = torch.zeros(result.reached_goal.shape, dtype=torch.bool)
    if "goal" in salient:
        hit |= result.reached_goal
    if "corner" in salient:
        hit |= result.reached(grid, corner_of(grid))
    return hit.float().mean(-1)


def original_reward(result: Rollout) -> torch.Tensor:
    """``[P]``: the mean return under the original reward (1 for reaching the goal within the cap)."""
    return result.reached_goal.float().mean(-1)


def hidden(policies: PolicySet, agent: torch.Tensor, goal: torch.Tensor, layer: int) -> torch.Tensor:
    """Activations ``[P, n, H]`` of hidden layer ``layer`` (1-based, after its ReLU) on the states."""
    if not 1 <= layer <= len(policies.hidden):
        raise ValueError(f"layer {layer} does not exist: the policies have hidden layers 1..{len(policies.hidden)}")
    with torch.no_grad():
        obs = observe(policies.grid, _broadcast(policies, agent), _broadcast(policies, goal))
        return policies.forward(obs)[1][layer - 1]


def direction(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-axis direction ``[..., 2]`` (float -1/0/+1) from ``source`` to ``target`` cells."""
    return (target - source).sign().float()


@dataclass(frozen=True)
class LinearProbe:
    """A ridge readout ``probe(h) = h @ weight + bias`` per policy: ``weight`` ``[P, H, k]``, ``bias`` ``[P, 1, k]``."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        return activations @ self.weight + self.bias

    def inverse(self) -> torch.Tensor:
        """``[P, k, H]``: the least-norm map from a change of the readout to a change of the activations."""
        return torch.linalg.pinv(self.weight)


def fit_probe(activations: torch.Tensor, target: torch.Tensor, ridge: float) -> LinearProbe:
    """Closed-form ridge regression of ``target`` ``[n, k]`` on ``activations`` ``[P, n, H]`` (intercept not
    penalized). ``ridge`` is relative: the penalty is ``ridge`` times the mean diagonal of the centered Gram
    matrix, so one value suits layers of any scale."""
    mean_x = activations.mean(1, keepdim=True)
    mean_y = target.mean(0, keepdim=True)
    x = (activations - mean_x).double()
    y = (target - mean_y).double()
    gram = x.transpose(1, 2) @ x  # [P, H, H]
    scale = gram.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-12)  # [P]
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    weight = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, x.transpose(1, 2) @ y).float()
    bias = mean_y.unsqueeze(0) - mean_x @ weight
    return LinearProbe(weight, bias)


def r_squared(target: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """``[P]``: 1 - residual / total sum of squares, pooled over the target's columns (``target`` ``[n, k]``)."""
    total = ((target - target.mean(0)) ** 2).sum().clamp_min(1e-12)
    return 1 - ((predicted - target) ** 2).sum((-1, -2)) / total


def split(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded half/half split of ``n`` rows: (fit rows, held-out rows)."""
    order = torch.randperm(n, generator=generator)
    return order[: n // 2], order[n // 2 :]


def decoding(
    policies: PolicySet,
    agent: torch.Tensor,
    goal: torch.Tensor,
    layer: int,
    ridge: float,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Held-out R² ``[P]`` of linear probes for the direction to the corner (``corner``) and to the goal
    (``goal``), fit on a seeded half of the states and scored on the other half."""
    activations = hidden(policies, agent, goal, layer)
    fit_rows, test_rows = split(agent.shape[0], generator)
    out = {}
    for name, target in (("corner", corner_of(policies.grid).expand_as(agent)), ("goal", goal)):
        wanted = direction(agent, target)
        probe = fit_probe(activations[:, fit_rows], wanted[fit_rows], ridge)
        out[name] = r_squared(wanted[test_rows], probe(activations[:, test_rows]))
    return out


def steering_targets(grid: Grid, agent: torch.Tensor, goal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One target cell ``[n, 2]`` per episode, uniform over the cells of the rectangle between the agent's start and
    the corner, less the start, the corner and the goal; ``-1`` where no such cell exists."""
    cells = grid.position(torch.arange(grid.cells))  # [C, 2]
    row, col = cells[:, 0], cells[:, 1]
    corner_row, corner_col = grid.corner
    low_row = torch.minimum(agent[:, :1], torch.tensor(corner_row))
    high_row = torch.maximum(agent[:, :1], torch.tensor(corner_row))
    low_col = torch.minimum(agent[:, 1:], torch.tensor(corner_col))
    high_col = torch.maximum(agent[:, 1:], torch.tensor(corner_col))
    inside = (row >= low_row) & (row <= high_row) & (col >= low_col) & (col <= high_col)  # [n, C]
    index = torch.arange(grid.cells)
    inside &= (index != grid.index(agent)[:, None]) & (index != grid.index(goal)[:, None])
    inside &= index != grid.corner_index
    draw = torch.rand(inside.shape, generator=generator).masked_fill(~inside, -1.0)
    chosen = grid.position(draw.argmax(-1))
    return torch.where(inside.any(-1, keepdim=True), chosen, torch.full_like(chosen, -1))


def steering(
    policies: PolicySet,
    agent: torch.Tensor,
    goal: torch.Tensor,
    targets: torch.Tensor,
    layer: int,
    ridge: float,
    strength: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Reach rates ``[P]`` of ``targets`` ``[n, 2]`` with (``steered``) and without (``unsteered``) rewriting the
    decoded direction-to-corner at hidden layer ``layer`` into the direction to the target, at every step.

    The probe is fit on every start state (as in :func:`decoding`, without holding out: here it is a tool, not a
    measurement). ``strength`` scales the rewrite (1: the readout then says exactly the target's direction).
    Episodes whose target is ``-1`` (no cell qualifies) are left out; ``episodes`` says how many counted.
    """
    grid = policies.grid
    usable = (targets >= 0).all(-1)
    agent, goal, targets = agent[usable], goal[usable], targets[usable]
    activations = hidden(policies, agent, goal, layer)
    probe = fit_probe(activations, direction(agent, corner_of(grid).expand_as(agent)), ridge)
    inverse = probe.inverse()  # [P, 2, H]
    n_policies = policies.n_policies
    wide_targets = _broadcast(policies, targets)

    def act(obs: torch.Tensor, t: int) -> torch.Tensor:
        position = grid.position(obs.reshape(*obs.shape[:-1], 2, grid.cells)[..., 0, :].argmax(-1))
        current = policies.forward(obs)[1][layer - 1]
        delta = strength * (direction(position, wide_targets) - probe(current)) @ inverse
        return policies.act(obs, steer={layer: delta})

    with torch.no_grad():
        plain = rollout(grid, lambda obs, t: policies.act(obs), _broadcast(policies, agent), _broadcast(policies, goal))
        steered = rollout(grid, act, _broadcast(policies, agent), _broadcast(policies, goal))
    return {
        "steered": steered.reached(grid, wide_targets).float().mean(-1),
        "unsteered": plain.reached(grid, wide_targets).float().mean(-1),
        "episodes": torch.full((n_policies,), float(usable.sum())),
    }
