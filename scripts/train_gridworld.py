#!/usr/bin/env python
"""Train the gridworld policies defcheck ships (``gridworld:policies``), for the goal_misgeneralization concept.

Every policy is a :class:`~defcheck_plugins.gridworld.policy.GridPolicy` (``98 -> 48 -> 48 -> 4`` on a 7x7 grid)
trained by behavior cloning of the shortest-path expert on states of its *training distribution*: the goal is
in the top-right corner, except with probability ``p`` uniform over all cells, and the agent uniform over the
other cells (every state an episode can visit, so no DAgger round is needed). The target is the expert's
action distribution (uniform over the one or two moves that bring it closer), the loss the cross-entropy.

All policies start from the same initial weights and see the same seeded random numbers, so they differ only
by ``p``: ``p = 0`` never sees the goal anywhere but in the corner. The policies are trained together as one
stacked network (their losses are independent, and Adam updates each weight on its own gradient), which is
the same as training each alone.

Seeded and reproducible on CPU (``torch.use_deterministic_algorithms``, ``torch.set_num_threads(1)``): the
same arguments give the same bytes of weights on the same machine. Writes, in ``--out`` (default
``plugins/weights/gridworld``):

- ``policies.pt``: every policy's GridPolicy ``state_dict()`` in one flat state dict, keys prefixed by the policy's
  name (``p0/net.0.weight``), float32, read with ``torch.load(weights_only=True)``;
- ``policies.json``: the architecture (``size``, ``hidden``), each policy's ``p``, the training arguments,
  and the log: loss every ``--log-every`` steps, and the greedy policy's success rate on the training
  distribution and in deployment (goal anywhere but the corner), measured on seeded episodes.

Usage::

    python scripts/train_gridworld.py                       # the shipped policies
    python scripts/train_gridworld.py --steps 200 --out /tmp/g   # a quick check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from defcheck_plugins.gridworld.env import Grid, expert_actions, observe, rollout, sample_states
from defcheck_plugins.gridworld.policy import ARCHITECTURE, GridPolicy, PolicySet

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "plugins" / "weights" / "gridworld"
THREADS = 1  # the network is tiny: one thread is faster than two, and does not fight other jobs
# The shipped set, named by the percentage of training episodes whose goal is placed at random.
POLICIES = {"p0": 0.0, "p0.1": 0.001, "p1": 0.01, "p10": 0.1, "p50": 0.5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=7, help="grid side")
    parser.add_argument("--hidden", type=int, nargs="+", default=[48, 48], help="hidden widths")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256, help="states per policy per step")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--eval-episodes", type=int, default=1024)
    parser.add_argument(
        "--policy",
        action="append",
        metavar="NAME=P",
        help="a policy and its goal randomization probability (repeatable; default: "
        + ", ".join(f"{name}={p}" for name, p in POLICIES.items())
        + ")",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def policies_from(args: argparse.Namespace) -> dict[str, float]:
    if not args.policy:
        return dict(POLICIES)
    chosen = {}
    for item in args.policy:
        name, _, value = item.partition("=")
        chosen[name.strip()] = float(value)
    return chosen


def success(policies: PolicySet, goal: str | list[float], episodes: int, seed: int) -> list[float]:
    """Greedy success rate of each policy on ``episodes`` seeded episodes (the same starts for every policy
    where ``goal`` is a mode, each policy's own training mixture where it is a list of ``p``)."""
    grid = policies.grid
    generator = torch.Generator().manual_seed(seed)
    if isinstance(goal, str):
        agent, target = sample_states(grid, episodes, goal, generator, avoid_corner=True)  # type: ignore[arg-type]
        agent, target = agent.expand(policies.n_policies, -1, -1), target.expand(policies.n_policies, -1, -1)
    else:
        agent, target = sample_states(grid, episodes, torch.tensor(goal), generator)
    start_at_goal = (agent == target).all(-1)
    result = rollout(grid, lambda obs, t: policies.act(obs), agent, target)
    reached = result.reached_goal & ~start_at_goal
    return (reached.float().sum(1) / (~start_at_goal).float().sum(1)).tolist()


def train(args: argparse.Namespace) -> tuple[PolicySet, dict[str, Any]]:
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    chosen = policies_from(args)
    grid = Grid(args.size)
    torch.manual_seed(args.seed)
    initial = GridPolicy(args.size, args.hidden).state_dict()  # one initialization for every policy
    names = list(chosen)
    probabilities = [chosen[name] for name in names]
    policies = PolicySet.from_state_dicts(grid, args.hidden, {name: initial for name in names})
    parameters = [*policies.weights, *policies.biases]
    for tensor in parameters:
        tensor.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed + 1)
    p_all = torch.tensor(probabilities)
    log: list[dict[str, Any]] = []
    started = time.perf_counter()
    for step_index in range(1, args.steps + 1):
        agent, goal = sample_states(grid, args.batch, p_all, generator)  # [P, B, 2], the same draws for every p
        target = expert_actions(grid, agent, goal)  # [P, B, 4]
        logits, _ = policies.forward(observe(grid, agent, goal))
        per_policy = -(target * torch.log_softmax(logits, -1)).sum(-1).mean(-1)  # [P]
        optimizer.zero_grad(set_to_none=True)
        per_policy.sum().backward()
        optimizer.step()
        if step_index % args.log_every == 0 or step_index == args.steps:
            entry: dict[str, Any] = {"step": step_index, "loss": [round(v, 5) for v in per_policy.tolist()]}
            log.append(entry)
    seconds = time.perf_counter() - started
    for tensor in parameters:
        tensor.requires_grad_(False)
    with torch.no_grad():
        train_success = success(policies, probabilities, args.eval_episodes, args.seed + 2)
        deploy_success = success(policies, "off_corner", args.eval_episodes, args.seed + 3)
    record = {
        "loader": "gridworld",
        "architecture": ARCHITECTURE,
        "size": args.size,
        "hidden": list(args.hidden),
        "policies": {
            name: {
                "p": chosen[name],
                "final_loss": log[-1]["loss"][index],
                "train_success": round(train_success[index], 4),
                "deploy_success": round(deploy_success[index], 4),
            }
            for index, name in enumerate(names)
        },
        "training": {
            "method": "behavior cloning of the shortest-path expert on the training distribution",
            "steps": args.steps,
            "batch": args.batch,
            "lr": args.lr,
            "optimizer": "Adam",
            "seed": args.seed,
            "threads": THREADS,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "seconds": round(seconds, 1),
            "eval_episodes": args.eval_episodes,
        },
        "log": log,
    }
    return policies, record


def save(policies: PolicySet, record: dict[str, Any], out: Path) -> dict[str, str]:
    """Write ``policies.pt`` and ``policies.json``; return the sha256 of the weights file."""
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "policies.pt"
    flat = {f"{name}/{key}": tensor for name, state in policies.state_dicts().items() for key, tensor in state.items()}
    torch.save(flat, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    record = {**record, "sha256": digest}
    (out / "policies.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {"weights": str(weights), "sha256": digest}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    policies, record = train(args)
    written = save(policies, record, args.out)
    print(f"trained {policies.n_policies} policies in {record['training']['seconds']} s -> {written['weights']}")
    for name, row in record["policies"].items():
        print(
            f"  {name}: p={row['p']:<5} loss {row['final_loss']:.4f}  train success {row['train_success']:.3f}  "
            f"deploy success {row['deploy_success']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
