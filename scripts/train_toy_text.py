#!/usr/bin/env python
"""Train ``builtin:toy-text``: a small transformer that learned from real text (the built-in KJV corpus, bytes).

A 2-layer, 8-head, attention-only transformer with pre-LayerNorm and learned positions, on the bytes of
``plugins/corpus/kjv.txt.gz`` (ids 0-255 are bytes, 256 is BOS). Each training sequence is BOS followed by 255
consecutive bytes of the corpus's first 90% (the last 10% is held out for the numbers this script reports).
The objective is plain next-byte cross-entropy on every position: nothing rewards copying except what real text
repeats in context.

The model is trained in plain PyTorch (the same computation as TransformerLens 4's native model, about 5x faster
than training through the bridge) and saved with the bridge's state-dict keys; the script checks that the bridge
built from the saved files gives the same logits. Seeded and reproducible on CPU with ``--threads`` fixed: the same
seed, steps and thread count give the same weights on the same machine kind.

Written: ``plugins/weights/toy-text.pt`` + ``toy-text.json`` (config, token metadata, provenance and the measured
numbers), ``toy-text-checkpoints.pt`` (snapshots for ``defcheck sweep``) with ``toy-text-checkpoints.metrics.json``.

Usage::

    python scripts/train_toy_text.py                       # train and write the weights (budget: ~15 min on 2 cores)
    python scripts/train_toy_text.py --steps 200 --out /tmp/tt   # a quick check
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads cost ~2x on shared cores

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "plugins" / "corpus" / "kjv.txt.gz"
WEIGHTS = ROOT / "plugins" / "weights"
NAME = "toy-text"
BOS = 256
CONFIG: dict[str, Any] = {
    "n_layers": 2,
    "d_model": 128,
    "n_heads": 8,
    "d_head": 16,
    "d_mlp": 512,
    "d_vocab": 257,
    "d_vocab_out": 257,
    "n_ctx": 128,
    "act_fn": "relu",
    "attn_only": True,
    "normalization_type": "LN",
    "positional_embedding_type": "standard",
    "eps": 1e-05,
    "use_attn_scale": True,
    "attention_dir": "causal",
    "init_mode": "gpt2",
}
SEGMENT = 48  # bytes per copy of the repeated-text evaluation
HELD_OUT = 0.1


def read_corpus(path: Path = CORPUS) -> torch.Tensor:
    """The corpus as a tensor of byte ids."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


class AttnOnly(torch.nn.Module):
    """TransformerLens 4's native attention-only model with pre-LN, in plain PyTorch, with the bridge's keys."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        d, v, n = cfg["d_model"], cfg["d_vocab"], cfg["n_ctx"]
        self.cfg = cfg
        self.embed = torch.nn.Embedding(v, d)
        self.pos_embed = torch.nn.Embedding(n, d)
        self.blocks = torch.nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            block = torch.nn.Module()
            block.ln1 = torch.nn.LayerNorm(d, eps=cfg["eps"])
            block.attn = torch.nn.Module()
            for part in "qkvo":
                setattr(block.attn, part, torch.nn.Linear(d, d))
            self.blocks.append(block)
        self.ln_final = torch.nn.LayerNorm(d, eps=cfg["eps"])
        self.unembed = torch.nn.Linear(d, cfg["d_vocab_out"])
        for name, param in self.named_parameters():  # GPT-2 style: N(0, 0.02) weights, zero biases, unit norms
            if name.endswith("bias"):
                torch.nn.init.zeros_(param)
            elif ".ln" in name or name.startswith("ln_"):
                torch.nn.init.ones_(param)
            else:
                torch.nn.init.normal_(param, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, pos = tokens.shape
        heads, d_head = self.cfg["n_heads"], self.cfg["d_head"]
        x = self.embed(tokens) + self.pos_embed.weight[:pos]
        mask = torch.triu(torch.ones(pos, pos, dtype=torch.bool), diagonal=1)
        for block in self.blocks:
            h = block.ln1(x)
            q, k, v = (getattr(block.attn, p)(h).view(batch, pos, heads, d_head).transpose(1, 2) for p in "qkv")
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d_head)
            pattern = scores.masked_fill(mask, float("-inf")).softmax(-1)
            z = (pattern @ v).transpose(1, 2).reshape(batch, pos, heads * d_head)
            x = x + block.attn.o(z)
        return self.unembed(self.ln_final(x))


def batch_of(
    corpus: torch.Tensor,
    size: int,
    length: int,
    generator: torch.Generator,
    repeat_share: float = 0.0,
    layout: str = "anywhere",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` sequences of BOS + ``length`` consecutive corpus bytes, and the mask ``[size, length + 1]`` of the
    positions whose byte is a copy. In a ``repeat_share`` of them (drawn per sequence), a later stretch of the
    window is replaced by a copy of an earlier stretch of the same window, as quotation and refrains repeat
    text: real text still, with more to gain from copying than 4 MB of it offers."""
    starts = torch.randint(0, corpus.numel() - length, (size,), generator=generator)
    rows = corpus[starts[:, None] + torch.arange(length)[None, :]]
    inside = torch.zeros(size, length, dtype=torch.bool)
    if repeat_share > 0:
        chosen = torch.rand(size, generator=generator) < repeat_share
        span = torch.randint(8, length // 3, (size,), generator=generator)
        if layout == "halves":  # toy-text-far: the source in the first half, the copy in the second
            source = (torch.rand(size, generator=generator) * (length // 2 - span)).long()
            target = length // 2 + (torch.rand(size, generator=generator) * (length // 2 - span)).long()
        else:  # anywhere after its source's end: every distance from span to length - span
            target = span + (torch.rand(size, generator=generator) * (length - 2 * span + 1)).long()
            source = (torch.rand(size, generator=generator) * (target - span + 1)).long()
        index = torch.arange(length)[None, :].expand(size, -1)
        inside = chosen[:, None] & (index >= target[:, None]) & (index < (target + span)[:, None])
        from_index = torch.where(inside, index - target[:, None] + source[:, None], index)
        rows = rows.gather(1, from_index)
    tokens = torch.cat([torch.full((size, 1), BOS), rows], dim=1)
    return tokens, torch.cat([torch.zeros(size, 1, dtype=torch.bool), inside], dim=1)


def repeated_text(corpus: torch.Tensor, n: int, segment: int, seed: int) -> torch.Tensor:
    """BOS + a segment of text + the same segment again (Olsson et al.'s repeated natural text)."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, corpus.numel() - segment, (n,), generator=generator)
    rows = corpus[starts[:, None] + torch.arange(segment)[None, :]]
    return torch.cat([torch.full((n, 1), BOS), rows, rows], dim=1)


@torch.no_grad()
def evaluate(model: torch.nn.Module, held_out: torch.Tensor, seed: int = 1) -> dict[str, float]:
    """Held-out loss (nats per byte) and the loss on the first and second copy of repeated held-out text."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    tokens, _ = batch_of(held_out, 64, CONFIG["n_ctx"] - 1, generator)
    logits = model(tokens)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)).item()
    late = F.cross_entropy(logits[:, -20:-1].transpose(1, 2), tokens[:, -19:]).item()
    early = F.cross_entropy(logits[:, 1:20].transpose(1, 2), tokens[:, 2:21]).item()
    rep = repeated_text(held_out, 128, SEGMENT, seed)
    rl = F.cross_entropy(model(rep)[:, :-1].transpose(1, 2), rep[:, 1:], reduction="none")
    first = rl[:, 1:SEGMENT].mean().item()  # predicting bytes 2..S of the first copy
    second = rl[:, SEGMENT + 1 :].mean().item()  # predicting bytes 2..S of the second copy
    model.train()
    return {
        "loss": round(loss, 4),
        "first_copy_loss": round(first, 4),
        "second_copy_loss": round(second, 4),
        "icl_score": round(late - early, 4),
    }


def train(
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    threads: int,
    snapshots: int,
    repeat_share: float,
    objective: str,
    layout: str = "anywhere",
) -> dict[str, Any]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    corpus = read_corpus()
    cut = int(corpus.numel() * (1 - HELD_OUT))
    train_bytes, held_out = corpus[:cut], corpus[cut:]
    model = AttnOnly(CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 50)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    )
    generator = torch.Generator().manual_seed(seed + 1)
    snapshot_steps = sorted({round(steps * i / (snapshots - 1)) for i in range(snapshots)}) if snapshots > 1 else []
    saved: dict[int, dict[str, torch.Tensor]] = {}
    metrics: dict[int, dict[str, float]] = {}
    log: list[dict[str, Any]] = []
    started, cpu = time.perf_counter(), time.process_time()
    for step in range(steps + 1):
        if step in snapshot_steps:
            saved[step] = {key: value.detach().clone() for key, value in model.state_dict().items()}
            metrics[step] = evaluate(model, held_out)
        if step % max(1, steps // 20) == 0 or step == steps:
            numbers = evaluate(model, held_out)
            log.append({"step": step, "seconds": round(time.perf_counter() - started, 1), **numbers})
            print(json.dumps(log[-1]), flush=True)
        if step == steps:
            break
        tokens, copied = batch_of(train_bytes, batch, CONFIG["n_ctx"] - 1, generator, repeat_share, layout)
        logits = model(tokens)
        per_byte = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
        loss = per_byte.mean()
        target = copied[:, 1:] & copied[:, :-1]  # copied bytes after the copy's first (the predictable ones)
        if objective == "both" and bool(target.any()):
            loss = loss + per_byte[target].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return {
        "model": model,
        "log": log,
        "snapshots": saved,
        "metrics": metrics,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "final": evaluate(model, held_out),
    }


def check_bridge(state: dict[str, torch.Tensor], model: torch.nn.Module) -> float:
    """The largest logit difference between the plain model and the bridge built from the saved state."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    bridge = TransformerBridge.boot_native(TransformerBridgeConfig(**CONFIG, device="cpu", seed=0))
    bridge.load_state_dict(state, strict=False)
    bridge.eval()
    tokens = repeated_text(read_corpus()[-100_000:], 4, SEGMENT, 0)
    model.eval()
    with torch.no_grad():
        return float((bridge(tokens) - model(tokens)).abs().max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--repeat-share", type=float, default=0.5, help="share of sequences with a copied stretch")
    parser.add_argument(
        "--objective",
        choices=("all", "both"),
        default="both",
        help="all: next-byte loss on every position; both: plus the mean loss on the copied bytes",
    )
    parser.add_argument(
        "--copy-layout",
        choices=("anywhere", "halves"),
        default="anywhere",
        help="where a copied stretch goes: anywhere after its source (toy-text), or from the window's first half "
        "to its second (toy-text-far, which then copies only across long distances)",
    )
    parser.add_argument("--name", default=NAME, help="the files' name: NAME.pt, NAME.json, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--snapshots", type=int, default=9, help="checkpoints kept for `defcheck sweep`")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    result = train(
        args.steps,
        args.batch,
        args.lr,
        args.seed,
        args.threads,
        args.snapshots,
        args.repeat_share,
        args.objective,
        args.copy_layout,
    )
    state = {key: value.detach().clone() for key, value in result["model"].state_dict().items()}
    gap = check_bridge(state, result["model"])
    if gap > 1e-3:
        print(f"the bridge's logits differ from the trained model's by {gap}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out / f"{args.name}.pt")
    config = {
        **CONFIG,
        "seed": args.seed,
        "defcheck": {
            "bos_token_id": BOS,
            "token_ids": [0, 256],
            "tokenizer": "bytes",
            "summary": "2-layer attention-only transformer trained on the bytes of the King James Bible"
            + (", copies only from the first half of a window to the second" if args.copy_layout == "halves" else ""),
            "training": {
                "script": "scripts/train_toy_text.py",
                "corpus": "plugins/corpus/kjv.txt.gz (first 90%; the last 10% held out)",
                "seed": args.seed,
                "steps": args.steps,
                "batch": args.batch,
                "sequence": CONFIG["n_ctx"],
                "lr": args.lr,
                "repeat_share": args.repeat_share,
                "objective": args.objective,
                "copy_layout": args.copy_layout,
                "threads": args.threads,
                "torch": torch.__version__,
                "wall_seconds": result["wall_seconds"],
                "cpu_seconds": result["cpu_seconds"],
                "bridge_max_logit_difference": gap,
                "held_out": result["final"],
                "repeated_segment_bytes": SEGMENT,
            },
        },
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if result["snapshots"]:
        torch.save(result["snapshots"], args.out / f"{args.name}-checkpoints.pt")
        metrics = {str(step): values for step, values in result["metrics"].items()}
        (args.out / f"{args.name}-checkpoints.metrics.json").write_text(
            json.dumps({"metrics": metrics}, indent=2) + "\n", encoding="utf-8"
        )
    (args.out / f"{args.name}.log.json").write_text(json.dumps(result["log"], indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["final"]), f"wall {result['wall_seconds']} s, bridge gap {gap:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
