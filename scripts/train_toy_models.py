#!/usr/bin/env python
"""Train the toy models defcheck ships (``builtin:toy-induction``, ``builtin:toy-shortcut``, ``builtin:toy-mlp``).

Seeded and reproducible on CPU (``torch.set_num_threads(2)``): the same seed, step count and thread count give
the same weights on the same machine. Each model is saved as ``NAME.pt`` (a float32 state dict) and ``NAME.json``
(the TransformerBridgeConfig fields to rebuild it, a ``defcheck:`` block with the token metadata, and the
training provenance) in ``plugins/weights/``. A log with the measured numbers goes to
``docs/toy-models.md``, loss curves to ``docs/img/``.

Tasks (every sequence is ``n_ctx`` = 64 tokens, BOS id 0, ordinary ids 1..63):

- ``varied`` (toy-induction, toy-mlp): ``[BOS] + noise + R + R + noise`` with the block length L uniform in
  4..20 and the block's offset uniform, drawn per sequence. Only in-context induction predicts the second R.
- ``fixed`` (toy-shortcut): ``[BOS] + R + R + noise`` with L = 8 always at the same place, so "attend to
  position q-7" solves it without looking at tokens.

The objective (``--loss``): ``repeat`` (default) is the mean next-token cross-entropy over the predictable
positions (the second R after its first token); ``all`` is the mean over every position, ``both`` the sum of
the two. With 63 ordinary ids, about 40% of noise positions repeat an earlier noise token by chance, and there
an induction head predicts the wrong token: under ``all`` no induction head formed in 2,500 steps, under
``both`` it formed later and spread over two heads (measured numbers in docs/toy-models.md).

Usage::

    python scripts/train_toy_models.py                 # all three models, write weights and docs
    python scripts/train_toy_models.py toy-shortcut    # one model
    python scripts/train_toy_models.py toy-induction --checkpoints 21 --checkpoint-dir /tmp/series
    python scripts/train_toy_models.py --snapshots-only --series-dir /tmp/series   # no training: the shipped
        # snapshots' losses (NAME-checkpoints.metrics.json) and a folder of checkpoint files for `defcheck sweep`
    python scripts/train_toy_models.py toy-shortcut --steps 100 --out /tmp/x --no-docs   # quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "plugins" / "weights"
DOCS = ROOT / "docs"
BOS = 0
VOCAB = 64
N_CTX = 64
EVAL_LENGTHS = (4, 5, 8, 11, 13, 17, 20, 21)
THREADS = 2

BASE_CONFIG: dict[str, Any] = {
    "n_layers": 2,
    "d_model": 64,
    "n_heads": 8,
    "d_head": 8,
    "d_vocab": VOCAB,
    "n_ctx": N_CTX,
    "attn_only": True,
    "normalization_type": None,
    "positional_embedding_type": "standard",
}
# What the JSON keeps of the config: enough to rebuild the model with boot_native.
CONFIG_FIELDS = (
    "n_layers",
    "d_model",
    "n_heads",
    "d_head",
    "d_mlp",
    "d_vocab",
    "d_vocab_out",
    "n_ctx",
    "act_fn",
    "attn_only",
    "normalization_type",
    "positional_embedding_type",
    "eps",
    "use_attn_scale",
    "attention_dir",
    "init_mode",
    "seed",
)


@dataclass
class Spec:
    """One model to train: its config, its task and its optimisation settings."""

    name: str
    summary: str
    config: dict[str, Any]
    task: str  # "varied" or "fixed"
    steps: int
    lr: float = 1e-3
    batch: int = 64
    seed: int = 0
    warmup: int = 100
    weight_decay: float = 0.01
    lengths: tuple[int, int] = (4, 20)  # inclusive range of L for "varied"
    fixed_length: int = 8
    fixed_offset: int = 1  # position of the first R token for "fixed" (right after BOS)
    loss: str = "repeat"  # "all" positions, the "repeat" (predictable positions), or "both" terms summed


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            "toy-induction",
            "2-layer attention-only transformer with induction heads (repeat length and offset varied)",
            dict(BASE_CONFIG),
            "varied",
            steps=4000,
            lr=3e-3,
        ),
        Spec(
            "toy-shortcut",
            "the same shape trained with a fixed repeat length and offset: a positional shortcut, not induction",
            dict(BASE_CONFIG),
            "fixed",
            steps=300,
            lr=3e-3,
            warmup=20,
        ),
        Spec(
            "toy-mlp",
            "2-layer transformer with LayerNorm and MLPs, trained like toy-induction",
            {**BASE_CONFIG, "attn_only": False, "normalization_type": "LN", "d_mlp": 256, "act_fn": "gelu"},
            "varied",
            steps=4000,
            lr=1e-3,
        ),
    )
}


def make_batch(spec: Spec, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of tokens ``[batch, n_ctx]`` and a mask ``[batch, n_ctx - 1]`` of the predictable targets.

    ``mask[b, q]`` is True where the token at ``q + 1`` is determined by the context (inside the second R,
    after its first token).
    """
    size = spec.batch
    tokens = torch.randint(1, VOCAB, (size, N_CTX), generator=generator)
    tokens[:, 0] = BOS
    if spec.task == "varied":
        low, high = spec.lengths
        length = torch.randint(low, high + 1, (size,), generator=generator)
        room = N_CTX - 1 - 2 * length  # positions left for noise
        start = 1 + (torch.rand(size, generator=generator) * (room + 1)).floor().long()
    elif spec.task == "fixed":
        length = torch.full((size,), spec.fixed_length)
        start = torch.full((size,), spec.fixed_offset)
    else:
        raise ValueError(f"unknown task {spec.task!r}")
    pos = torch.arange(N_CTX)[None, :]
    second = (pos >= (start + length)[:, None]) & (pos < (start + 2 * length)[:, None])
    source = torch.where(second, pos - length[:, None], pos.expand(size, -1))
    tokens = tokens.gather(1, source)
    predictable = (pos > (start + length)[:, None]) & (pos < (start + 2 * length)[:, None])
    return tokens, predictable[:, 1:]


def build_model(spec: Spec) -> Any:
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(**spec.config, seed=spec.seed, device="cpu")
    return TransformerBridge.boot_native(cfg)


def config_json(model: Any) -> dict[str, Any]:
    """The JSON-safe config fields needed to rebuild ``model`` with ``boot_native``."""
    cfg = model.cfg
    return {name: getattr(cfg, name) for name in CONFIG_FIELDS if hasattr(cfg, name)}


def repeated_tokens(length: int, n: int, seed: int) -> torch.Tensor:
    """``[BOS] + R + R`` with R of ``length`` distinct ids in 1..63 (the layout of defcheck's probe)."""
    generator = torch.Generator().manual_seed(1000 + seed * 100 + length)
    block = torch.rand(n, VOCAB - 1, generator=generator).argsort(dim=1)[:, :length] + 1
    return torch.cat([torch.full((n, 1), BOS), block, block], dim=1)


@torch.no_grad()
def head_scores(model: Any, lengths: tuple[int, ...] = EVAL_LENGTHS, n: int = 32, seed: int = 0) -> dict[str, Any]:
    """Per head: prefix matching at each repeat length, and previous-token attention (on the same probes).

    Scored as defcheck's ``attention_pattern`` checker does: the share of attention on the target, over the
    query positions that have one.
    """
    from defcheck_plugins.attention import pattern_scores, target_mask

    was_training = model.training
    model.eval()
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    prefix, previous, repeat_loss = {}, [], {}
    for length in lengths:
        tokens = repeated_tokens(length, n, seed)
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
        patterns = torch.stack([cache[name] for name in names])
        options = {"bos": True, "exclude_bos": False, "exclude_current_token": False}
        scores = pattern_scores(patterns, target_mask("prefix_matching", tokens, True), **options)
        prefix[length] = scores.nanmean(1)  # [L, H]
        previous.append(pattern_scores(patterns, target_mask("previous_token", tokens, True), **options).nanmean(1))
        losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
        repeat_loss[length] = losses[:, length + 1 :].mean().item()
    model.train(was_training)
    return {"prefix": prefix, "previous": torch.stack(previous).mean(0), "repeat_loss": repeat_loss}


def summarize_scores(scores: dict[str, Any], layer: int = -1) -> dict[str, Any]:
    """The best head of ``layer`` by its worst prefix-matching score over the lengths, and its scores."""
    stacked = torch.stack([value[layer] for value in scores["prefix"].values()])  # [lengths, H]
    worst = stacked.amin(0)
    best = int(worst.argmax())
    return {
        "head": best,
        "min": float(worst[best]),
        "by_length": {int(length): round(float(value[layer, best]), 3) for length, value in scores["prefix"].items()},
    }


def train(spec: Spec, *, steps: int | None = None, checkpoints: int = 0, quiet: bool = False) -> dict[str, Any]:
    """Train one model; return it with its log (loss curve, evaluations, timing, checkpoints)."""
    torch.manual_seed(spec.seed)
    torch.set_num_threads(THREADS)
    steps = spec.steps if steps is None else steps
    model = build_model(spec)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / spec.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps))),
    )
    generator = torch.Generator().manual_seed(spec.seed + 12345)
    curve: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    snapshot_steps = set(checkpoint_steps(steps, checkpoints)) if checkpoints else set()
    eval_every = max(25, steps // 40)
    window_loss, window_repeat, window_count = 0.0, 0.0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    train_seconds = cpu_seconds = 0.0
    for step in range(steps + 1):
        if step in snapshot_steps:
            snapshots[step] = {key: value.detach().clone() for key, value in model.state_dict().items()}
        if step % eval_every == 0 or step == steps:
            train_seconds += time.perf_counter() - started
            cpu_seconds += time.process_time() - cpu_started
            scores = head_scores(model, lengths=(5, 8, 11, 17), n=16)
            best = summarize_scores(scores)
            evaluations.append({"step": step, "seconds": round(train_seconds, 1), **best})
            if not quiet:
                print(
                    f"{spec.name} step {step:5d} {train_seconds:6.1f}s  best layer-{model.cfg.n_layers - 1} head "
                    f"{best['head']} prefix matching {best['by_length']}",
                    flush=True,
                )
            started, cpu_started = time.perf_counter(), time.process_time()
        if step == steps:
            break
        tokens, predictable = make_batch(spec, generator)
        logits = model(tokens)
        losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
        repeat = losses[predictable].mean()
        loss = {"all": losses.mean(), "repeat": repeat, "both": losses.mean() + repeat}[spec.loss]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        window_loss += losses.mean().item()
        window_repeat += repeat.item()
        window_count += 1
        if (step + 1) % 25 == 0:
            curve.append(
                {
                    "step": step + 1,
                    "seconds": round(train_seconds + time.perf_counter() - started, 2),
                    "loss": round(window_loss / window_count, 4),
                    "repeat_loss": round(window_repeat / window_count, 4),
                }
            )
            window_loss, window_repeat, window_count = 0.0, 0.0, 0
    train_seconds += time.perf_counter() - started
    cpu_seconds += time.process_time() - cpu_started
    model.eval()
    return {
        "spec": spec,
        "model": model,
        "steps": steps,
        "curve": curve,
        "evaluations": evaluations,
        "train_seconds": train_seconds,
        "cpu_seconds": cpu_seconds,
        "snapshots": snapshots,
    }


PHASE_CHANGE = (0.2, 0.5)  # the share of training where toy-induction's phase change happens (steps 800-2000)


def checkpoint_steps(steps: int, count: int) -> list[int]:
    """About ``count`` steps, dense across the phase change: 60% of them evenly from 20% to 50% of training,
    the rest evenly before and after it, always with step 0 and the last step. For 4000 steps and 21
    snapshots: 0, 200, 400, 600, 800, 900, ..., 2000, 2500, 3000, 3500, 4000."""
    if count < 2:
        return [steps]
    start, stop = (round(steps * fraction) for fraction in PHASE_CHANGE)
    dense = max(2, round(0.6 * count))
    before = max(1, (count - dense) // 2)
    after = max(1, count - dense - before)
    chosen = {round(start + (stop - start) * i / (dense - 1)) for i in range(dense)}
    chosen |= {round(start * i / before) for i in range(before)}
    chosen |= {round(stop + (steps - stop) * i / after) for i in range(1, after + 1)}
    return sorted(chosen | {0, steps})


@torch.no_grad()
def batch_loss(model: Any, spec: Spec) -> dict[str, float]:
    """Cross-entropy on 512 fresh sequences of the training task (seeded: the same batch for every model):
    ``loss`` over all positions, ``repeat_loss`` over the predictable ones (the ``repeat`` objective)."""
    generator = torch.Generator().manual_seed(spec.seed + 999)
    tokens, predictable = make_batch(replace(spec, batch=512), generator)
    logits = model(tokens)
    losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return {"loss": round(losses.mean().item(), 4), "repeat_loss": round(losses[predictable].mean().item(), 4)}


def snapshot_metrics(spec: Spec, snapshots: dict[int, dict[str, torch.Tensor]]) -> dict[int, dict[str, float]]:
    """Each snapshot's :func:`batch_loss` (what ``defcheck sweep`` plots beside the scores)."""
    torch.set_num_threads(THREADS)
    model = build_model(spec)
    model.eval()
    out = {}
    for step, state in sorted(snapshots.items()):
        model.load_state_dict(state)
        out[int(step)] = batch_loss(model, spec)
    return out


def final_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """Loss on fresh training batches and head scores on ``[BOS] + R + R`` probes at several lengths."""
    spec: Spec = result["spec"]
    model = result["model"]
    scores = head_scores(model, n=64)
    last = model.cfg.n_layers - 1
    metrics = {
        **batch_loss(model, spec),
        "prefix_matching": {
            str(length): [[round(float(v), 3) for v in row] for row in value.tolist()]
            for length, value in scores["prefix"].items()
        },
        "previous_token": [[round(float(v), 3) for v in row] for row in scores["previous"].tolist()],
        "probe_repeat_loss": {str(length): round(value, 4) for length, value in scores["repeat_loss"].items()},
        "best_last_layer_head": summarize_scores(scores, last),
    }
    if spec.task == "fixed":
        at_length = scores["prefix"][spec.fixed_length]  # [L, H]
        flat = int(at_length.argmax())
        layer, head = divmod(flat, at_length.shape[1])
        metrics["shortcut_head"] = {
            "head": f"{layer}.{head}",
            "by_length": {int(k): round(float(v[layer, head]), 3) for k, v in scores["prefix"].items()},
            "best_other_length": round(
                max(float(v.max()) for k, v in scores["prefix"].items() if k != spec.fixed_length), 3
            ),
        }
    return metrics


def save(result: dict[str, Any], metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    spec: Spec = result["spec"]
    model = result["model"]
    out.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float32).clone().contiguous() for key, value in model.state_dict().items()}
    torch.save(state, out / f"{spec.name}.pt")
    document = {
        **config_json(model),
        "defcheck": {
            "bos_token_id": BOS,
            "token_ids": [1, VOCAB],
            "summary": spec.summary,
            "training": {
                "script": "scripts/train_toy_models.py",
                "seed": spec.seed,
                "steps": result["steps"],
                "batch": spec.batch,
                "lr": spec.lr,
                "task": spec.task,
                "objective": spec.loss,
                "repeat_length": list(spec.lengths) if spec.task == "varied" else spec.fixed_length,
                "repeat_offset": "uniform" if spec.task == "varied" else spec.fixed_offset,
                "threads": THREADS,
                "torch": torch.__version__,
                "wall_seconds": round(result["train_seconds"], 1),
                "cpu_seconds": round(result["cpu_seconds"], 1),
                "final_loss": metrics["loss"],
                "final_repeat_loss": metrics["repeat_loss"],
            },
        },
    }
    (out / f"{spec.name}.json").write_text(json.dumps(document, indent=2) + "\n")
    return document


METRICS_ABOUT = {
    "loss": "mean next-token cross-entropy over all positions of 512 sequences of the training task (seed + 999)",
    "repeat_loss": "the same over the predictable positions (the second repeat): the training objective",
}


def save_checkpoints(result: dict[str, Any], directory: Path) -> Path:
    """The training snapshots as one file ``{step: state_dict}`` (float32), and their losses beside it in
    ``NAME-checkpoints.metrics.json`` (``{"metrics": {STEP: {"loss": ..., "repeat_loss": ...}}}``), which
    ``defcheck sweep`` reads for ``builtin:NAME@*``."""
    directory.mkdir(parents=True, exist_ok=True)
    spec: Spec = result["spec"]
    path = directory / f"{spec.name}-checkpoints.pt"
    torch.save({int(step): state for step, state in sorted(result["snapshots"].items())}, path)
    write_metrics(directory / f"{spec.name}-checkpoints.metrics.json", snapshot_metrics(spec, result["snapshots"]))
    return path


def write_metrics(path: Path, metrics: dict[int, dict[str, float]], files: dict[str, int] | None = None) -> None:
    """The checkpoint-series metadata ``defcheck sweep`` reads (docs/sweep.md): metrics by step, and for a
    folder the step of each file."""
    document: dict[str, Any] = {
        "about": METRICS_ABOUT,
        "metrics": {str(step): metrics[step] for step in sorted(metrics)},
    }
    if files is not None:
        document["files"] = files
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_series_dir(
    spec: Spec, snapshots: dict[int, dict[str, torch.Tensor]], config: dict[str, Any], directory: Path
) -> None:
    """The snapshots as a folder of checkpoint files, the general input of ``defcheck sweep --checkpoints DIR``:
    ``config.json`` (the model's config, found by the checkpoint loader), ``step-NNNNNN.pt`` (one state dict
    each; the step is in the name) and ``checkpoints.json`` (the losses by step)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    files = {}
    for step, state in sorted(snapshots.items()):
        name = f"step-{int(step):06d}.pt"
        torch.save(state, directory / name)
        files[name] = int(step)
    write_metrics(directory / "checkpoints.json", snapshot_metrics(spec, snapshots), files)


def shipped_snapshots(name: str, directory: Path) -> dict[int, dict[str, torch.Tensor]]:
    """The snapshots in ``directory/NAME-checkpoints.pt`` (as shipped)."""
    path = directory / f"{name}-checkpoints.pt"
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: train {name} with --checkpoints first")
    return {int(step): state for step, state in torch.load(path, map_location="cpu", weights_only=True).items()}


def first_step(evaluations: list[dict[str, Any]], threshold: float) -> dict[str, Any] | None:
    return next((entry for entry in evaluations if entry["min"] > threshold), None)


def write_curves(results: list[dict[str, Any]], directory: Path) -> list[str]:
    """Loss curves as an SVG drawn by hand (the same page whatever is installed), plus CSV."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for result in results:
        name = result["spec"].name
        with (directory / f"{name}-loss.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", "seconds", "loss", "repeat_loss"])
            writer.writeheader()
            writer.writerows(result["curve"])
        written.append(f"{name}-loss.csv")
    for result in results:
        name = result["spec"].name
        (directory / f"{name}-loss.svg").write_text(svg_curve(result))
        written.append(f"{name}-loss.svg")
    return written


def svg_curve(result: dict[str, Any], width: int = 560, height: int = 300) -> str:
    """A small self-contained SVG line chart of the loss and the second-repeat loss against steps."""
    curve = result["curve"]
    left, right, top, bottom = 50, 20, 30, 40
    max_step = max(row["step"] for row in curve)
    max_loss = max(max(row["loss"], row["repeat_loss"]) for row in curve)
    top_loss = math.ceil(max_loss)

    def point(step: float, loss: float) -> str:
        x = left + (width - left - right) * step / max_step
        y = top + (height - top - bottom) * (1 - loss / top_loss)
        return f"{x:.1f},{y:.1f}"

    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{result["spec"].name}: training loss</text>',
    ]
    for tick in range(top_loss + 1):
        y = point(0, tick).split(",")[1]
        lines.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        lines.append(f'<text x="{left - 6}" y="{float(y) + 4}" text-anchor="end">{tick}</text>')
    for index in range(5):
        step = max_step * index / 4
        x = point(step, 0).split(",")[0]
        lines.append(f'<text x="{x}" y="{height - bottom + 16}" text-anchor="middle">{int(step)}</text>')
    lines.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">step</text>')
    for key, color in (("loss", "#1f77b4"), ("repeat_loss", "#d62728")):
        points = " ".join(point(row["step"], row[key]) for row in curve)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
    lines.append(f'<text x="{width - right - 110}" y="{top + 14}" fill="#1f77b4">all positions</text>')
    lines.append(f'<text x="{width - right - 110}" y="{top + 28}" fill="#d62728">second repeat</text>')
    lines.append("</svg>\n")
    return "\n".join(lines)


def heads_table(metrics: dict[str, Any], lengths: tuple[str, ...]) -> list[str]:
    prefix = metrics["prefix_matching"]
    rows = [
        "| head | " + " | ".join(f"L={length}" for length in lengths) + " | previous token |",
        "|---" * (len(lengths) + 2) + "|",
    ]
    for layer, layer_rows in enumerate(prefix[lengths[0]]):
        for head in range(len(layer_rows)):
            values = " | ".join(f"{prefix[length][layer][head]:.2f}" for length in lengths)
            rows.append(f"| {layer}.{head} | {values} | {metrics['previous_token'][layer][head]:.2f} |")
    return rows


def ranked_heads(matrix: list[list[float]], count: int = 3, layer: int | None = None) -> str:
    cells = [
        (value, f"{index_layer}.{index_head}")
        for index_layer, row in enumerate(matrix)
        for index_head, value in enumerate(row)
        if layer is None or index_layer == layer
    ]
    return ", ".join(f"{name}: {value:.2f}" for value, name in sorted(cells, key=lambda cell: -cell[0])[:count])


def write_docs(
    results: list[dict[str, Any]], metrics: dict[str, dict[str, Any]], images: list[str], path: Path
) -> None:
    lines = [
        "# The toy models defcheck ships",
        "",
        "Trained by `scripts/train_toy_models.py` (seeded; `torch.set_num_threads(2)`; CPU) and shipped in",
        "`plugins/weights/` as `NAME.pt` (float32 state dict) + `NAME.json` (config, token metadata,",
        "provenance). Load them with `builtin:NAME`. The numbers below were written by the script in the run",
        "that produced the shipped weights; rerun it to regenerate this page. Wall times were measured on a",
        "2-core machine shared with other jobs, so they vary by up to 2x between runs; CPU seconds are the",
        "process's CPU time.",
        "",
        "The models are trained on the loss of the positions whose token the context determines (see the last",
        "section), so their loss over *all* positions (first column of the final loss) is above uniform",
        "guessing (4.14): on noise they predict confidently and wrongly, by induction or by the shortcut.",
        "",
        "Vocabulary: 64 ids, BOS = 0, ids 1..63 ordinary. Context: 64 positions. All three models use learned",
        "absolute positions (`positional_embedding_type: standard`; TransformerLens 4 has no shortformer).",
        "",
        "```python",
        "from defcheck.models.loading import load_model",
        "",
        'view = load_model("builtin:toy-induction")  # also builtin:toy-shortcut, builtin:toy-mlp',
        'early = load_model("builtin:toy-induction@1000")  # a training snapshot (the steps are listed below)',
        "```",
        "",
        "`toy-shortcut` was trained with its repeat always at positions 1..16 (`[BOS] + R + R` with L = 8, then",
        "noise). A `repeated_random_tokens` probe with the single length 8 builds exactly that layout, so there",
        "it looks like an induction head; with several lengths, the probe pads shorter repeats with noise in",
        "front, which moves them away from the positions the shortcut attends by.",
        "",
        "Prefix matching below is scored as defcheck's `attention_pattern` checker does (the share of",
        "attention on the token after the earlier copy of the current token, over query positions that have",
        "one) on `[BOS] + R + R` with R of L distinct random ids (the layout `repeated_random_tokens` builds",
        "for a single length), 64 sequences per length. Previous-token scores: the share of attention on q-1",
        "on the same probes, averaged over lengths.",
        "",
        "| model | config | task | objective | steps | wall / CPU time | final loss (all / 2nd repeat) "
        "| best last-layer head: prefix matching by L |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        spec: Spec = result["spec"]
        metric = metrics[spec.name]
        config = spec.config
        shape = f"{config['n_layers']}L, {config['n_heads']}x{config['d_head']}, d_model {config['d_model']}"
        shape += ", attn-only" if config.get("attn_only") else f", MLP {config.get('d_mlp')}"
        shape += f", norm {config.get('normalization_type')}"
        task = (
            f"L {spec.lengths[0]}..{spec.lengths[1]}, offset varied"
            if spec.task == "varied"
            else f"L = {spec.fixed_length}, offset {spec.fixed_offset}"
        )
        best = metric["best_last_layer_head"]
        if "shortcut_head" in metric:
            shortcut = metric["shortcut_head"]
            name, by_length = shortcut["head"], shortcut["by_length"]
        else:
            name, by_length = f"{config['n_layers'] - 1}.{best['head']}", best["by_length"]
        shown = ", ".join(f"{length}: {value:.2f}" for length, value in by_length.items())
        lines.append(
            f"| `{spec.name}` | {shape} | {task} | {spec.loss}, lr {spec.lr:g} | {result['steps']} "
            f"| {result['train_seconds']:.0f} s / {result['cpu_seconds']:.0f} s "
            f"| {metric['loss']:.3f} / {metric['repeat_loss']:.3f} | {name}: {shown} |"
        )
    lines.append("")
    lengths = tuple(str(length) for length in EVAL_LENGTHS)
    for result in results:
        spec = result["spec"]
        metric = metrics[spec.name]
        evaluations = result["evaluations"]
        lines += [f"## `{spec.name}`", "", spec.summary + ".", ""]
        for image in images:
            if image.startswith(f"{spec.name}-loss.") and not image.endswith(".csv"):
                lines += [f"![{spec.name} loss](img/{image})", ""]
        lines += [f"Loss curve data: [img/{spec.name}-loss.csv](img/{spec.name}-loss.csv).", ""]
        if spec.task == "varied":
            for threshold in (0.3, 0.7):
                reached = first_step(evaluations, threshold)
                if reached:
                    lines.append(
                        f"- best last-layer head's prefix matching above {threshold} at every evaluated length "
                        f"(5, 8, 11, 17) first at step {reached['step']} ({reached['seconds']} s of training)"
                    )
                else:
                    lines.append(f"- best last-layer head's prefix matching never above {threshold} at every length")
            if not first_step(evaluations, 0.3):
                losses = metric["probe_repeat_loss"]
                lines.append(
                    f"- yet its loss on the second repeat of `[BOS] + R + R` probes is {min(losses.values()):.2f}-"
                    f"{max(losses.values()):.2f} (uniform guessing: 4.14): it completes repeats without any head "
                    "attending by prefix matching (each layer-1 head's share on the prefix-matching target is close "
                    "to uniform attention's). An instance of induction *behavior* in the logits without induction "
                    "*attention*; its mechanism is not characterized yet."
                )
        else:
            shortcut = metric["shortcut_head"]
            lines.append(
                f"- head {shortcut['head']} matches prefixes at its training length {spec.fixed_length} "
                f"({shortcut['by_length'][spec.fixed_length]:.2f}); the best score of any head at any other "
                f"length is {shortcut['best_other_length']:.2f}"
            )
        lines.append(
            "- loss on `[BOS] + R + R` probes after the first repeat, by L: "
            + ", ".join(f"{length}: {value:.3f}" for length, value in metric["probe_repeat_loss"].items())
        )
        if spec.task == "varied" and first_step(evaluations, 0.3):
            last = str(len(metric["previous_token"]) - 1)
            worst = [
                min(metric["prefix_matching"][length][int(last)][head] for length in lengths)
                for head in range(len(metric["previous_token"][0]))
            ]
            strong = [f"{last}.{head}" for head, value in enumerate(worst) if value >= 0.5]
            lines.append(
                f"- {len(strong)} of {len(worst)} last-layer heads match prefixes at every length 4..21 with at "
                f"least 0.5 ({', '.join(strong)}): with nothing else to predict, the layer does induction redundantly"
            )
        lines.append("- strongest previous-token heads: " + ranked_heads(metric["previous_token"]))
        if result["snapshots"]:
            steps = ", ".join(str(step) for step in sorted(result["snapshots"]))
            lines.append(
                f"- training snapshots shipped as `builtin:{spec.name}@STEP`, STEP in {steps}, with each one's "
                f"loss in `{spec.name}-checkpoints.metrics.json`; `defcheck sweep --checkpoints "
                f"'builtin:{spec.name}@*'` checks the definitions on all of them ([sweep.md](sweep.md))"
            )
        lines += ["", "Prefix matching of every head by repeat length L, and its previous-token score:", ""]
        lines += heads_table(metric, lengths)
        lines.append("")
    lines += [
        "## Why the objective is the loss on the second repeat",
        "",
        "Exploratory runs of the attention-only model (same data and model as `toy-induction`, constant lr after",
        "warm-up, one thread each, best layer-1 head's prefix matching at L = 5, 8, 11, 17):",
        "",
        "| objective | settings tried | result |",
        "|---|---|---|",
        "| `all`: every position | lr 3e-3 with and without LayerNorm; lr 1e-2 with LayerNorm; L up to 30; "
        "sinusoidal initial W_pos; rotary positions | no phase change in 2,250-3,250 steps: second-repeat loss "
        "stayed above 3.5, prefix matching below 0.1 |",
        "| `both`: all + second repeat | lr 3e-3, no norm | phase change at ~1,250 steps; at 3,000 steps "
        "second-repeat loss 0.61, best head 0.56-0.75, induction split between two heads |",
        "| `repeat`: second repeat only | lr 3e-3, no norm | phase change at ~1,000 steps; at 3,000 steps "
        "second-repeat loss 0.35, best head 0.81-0.84 |",
        "",
        "With 63 ordinary ids, a noise token has already appeared in the sequence by chance at about 40% of noise",
        "positions, and there an induction head predicts the wrong token; under `all` that cancels most of the",
        "gradient the repeat gives an induction head. So the shipped models are trained on the positions whose",
        "token the context determines; the noise is still there as context, to be ignored.",
        "",
        "## Reproducing",
        "",
        "```",
        "python scripts/train_toy_models.py            # all models; rewrites the weights and this page",
        "python scripts/train_toy_models.py toy-shortcut --out DIR --no-docs   # one model elsewhere, page untouched",
        "python scripts/train_toy_models.py --docs-only   # rewrite this page from docs/img/*-log.json",
        "python scripts/train_toy_models.py --snapshots-only --series-dir DIR   # no training: the snapshots' losses,",
        "                                 # and the snapshots as a folder of checkpoint files for defcheck sweep",
        "```",
        "",
        "Checked: a second run of the script reproduced `toy-induction.pt` and `toy-shortcut.pt` bit for bit",
        "(torch 2.13.0+cpu, 2 threads), although the machine's load differed between the runs.",
        "The weights are bit-identical across runs on one machine with the same torch build and thread count;",
        "other CPUs (other SIMD kernels) may differ in the last bits, and the scores by a few thousandths.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"models to train: {', '.join(SPECS)} (default: all)")
    parser.add_argument("--steps", type=int, help="override the number of training steps")
    parser.add_argument("--loss", choices=("both", "all", "repeat"), help="override the objective")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where NAME.pt and NAME.json go")
    parser.add_argument("--docs", type=Path, default=DOCS / "toy-models.md", help="the log page to write")
    parser.add_argument("--no-docs", action="store_true", help="do not write the log page and curves")
    parser.add_argument(
        "--checkpoints", type=int, default=21, help="snapshots of toy-induction to save (0: none; default 21)"
    )
    parser.add_argument("--checkpoint-dir", type=Path, help="where the snapshot file goes (default: --out)")
    parser.add_argument(
        "--series-dir", type=Path, help="also write toy-induction's snapshots as a folder of checkpoint files"
    )
    parser.add_argument(
        "--snapshots-only",
        action="store_true",
        help="no training: recompute the shipped snapshots' losses (NAME-checkpoints.metrics.json), and with "
        "--series-dir write them as a folder",
    )
    parser.add_argument("--docs-only", action="store_true", help="rewrite the page from the saved logs; no training")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    names = args.names or list(SPECS)
    unknown = [name for name in names if name not in SPECS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(SPECS)}")
    logs = args.docs.parent / "img"
    if args.snapshots_only:
        name = "toy-induction"
        source = args.checkpoint_dir or args.out
        snapshots = shipped_snapshots(name, source)
        write_metrics(source / f"{name}-checkpoints.metrics.json", snapshot_metrics(SPECS[name], snapshots))
        print(f"{name}: the losses of {len(snapshots)} snapshots in {source / f'{name}-checkpoints.metrics.json'}")
        if args.series_dir:
            config = json.loads((args.out / f"{name}.json").read_text())
            write_series_dir(SPECS[name], snapshots, config, args.series_dir)
            print(f"{name}: {len(snapshots)} checkpoint files in {args.series_dir}")
        return 0
    for name in [] if args.docs_only else names:
        spec = replace(SPECS[name], loss=args.loss) if args.loss else SPECS[name]
        result = train(
            spec,
            steps=args.steps,
            checkpoints=args.checkpoints if name == "toy-induction" else 0,
            quiet=args.quiet,
        )
        metric = final_metrics(result)
        save(result, metric, args.out)
        if result["snapshots"]:
            path = save_checkpoints(result, args.checkpoint_dir or args.out)
            print(f"{name}: {len(result['snapshots'])} checkpoints in {path} ({path.stat().st_size / 1e6:.2f} MB)")
            if args.series_dir:
                config = json.loads((args.out / f"{name}.json").read_text())
                write_series_dir(spec, result["snapshots"], config, args.series_dir)
        best = metric["best_last_layer_head"]
        print(
            f"{name}: {result['steps']} steps in {result['train_seconds']:.1f} s; loss {metric['loss']:.4f}, "
            f"second-repeat loss {metric['repeat_loss']:.4f}; best last-layer head {best['head']} prefix matching "
            f"{best['by_length']}",
            flush=True,
        )
        if not args.no_docs:
            write_log(result, metric, logs / f"{name}-log.json")
    if not args.no_docs:
        results, metrics = read_logs(logs)
        images = write_curves(results, logs)
        write_docs(results, metrics, images, args.docs)
    return 0


def write_log(result: dict[str, Any], metric: dict[str, Any], path: Path) -> None:
    """What the docs page needs of one training run, so models trained in separate runs share one page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = {
        "spec": asdict(result["spec"]),
        "steps": result["steps"],
        "train_seconds": round(result["train_seconds"], 1),
        "cpu_seconds": round(result["cpu_seconds"], 1),
        "curve": result["curve"],
        "evaluations": result["evaluations"],
        "snapshots": sorted(result["snapshots"]),
        "metrics": metric,
    }
    path.write_text(json.dumps(log, indent=1) + "\n")


def read_logs(directory: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The logs of every model in SPECS order (those trained so far), as ``train`` results and metrics."""
    results, metrics = [], {}
    for name in SPECS:
        path = directory / f"{name}-log.json"
        if not path.is_file():
            continue
        log = json.loads(path.read_text())
        raw = log.pop("spec")
        spec = Spec(**{**raw, "lengths": tuple(raw["lengths"])})
        results.append({**log, "spec": spec})
        metric = log["metrics"]
        for key in ("best_last_layer_head", "shortcut_head"):
            if key in metric:
                metric[key]["by_length"] = {int(k): v for k, v in metric[key]["by_length"].items()}
        metrics[name] = metric
    return results, metrics


if __name__ == "__main__":
    sys.exit(main())
