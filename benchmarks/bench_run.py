"""Side-by-side benchmark: defcheck's runner vs TransformerLens's own way vs a naive loop (issue 7).

Every measurement runs in its own subprocess (this script with ``--worker``), so peaks do not mix. A worker
imports torch, TransformerLens and defcheck, builds the model and the probes, resets the kernel's peak-RSS
counter (``/proc/self/clear_refs``; where that is refused, the ``ru_maxrss`` delta is used), runs one method,
and reports wall time and peak resident memory (and CUDA's peak allocation on ``--device cuda``).

Methods, on the same model, the same probes (built by defcheck's probe plugins with the same seed) and the
same heads:

- ``defcheck full``: the whole built-in registry as ``defcheck run`` runs it (every concept that applies to the
  model, MLP neurons included, each probe at its file's own size; ``load_plugins`` + ``load_registry`` +
  ``runner.evaluate``), probes run in batches of ``--batch-size`` sequences.
- ``defcheck peer-set``: only what the peer computes, as defcheck definitions: previous-token, duplicate-token
  and prefix-matching attention scores on the registry's probes, and K and Q composition of every head pair.
- ``peer``: TransformerLens as a user would do it today: ``head_detector.detect_head`` once per concept
  pattern and per prompt (these models have no tokenizer, so ``model.to_tokens`` is monkeypatched to return
  the prompt's tokens, as tests/test_attention.py does), then ``model.all_composition_scores('K')`` and
  ``('Q')``. Each part is its own subprocess; the peer's time is their sum, its peak the largest.
- ``naive``: one ``run_with_cache`` per probe (all hooks, the whole probe), then Python loops over heads and
  sequences for the attention scores (TransformerLens's detection patterns and similarity score), and over
  head pairs for composition (``FactoredMatrix`` products and norms).

Also: how defcheck's time and memory scale with the number of definitions (copies of the registry) and with
the probes' size (``n`` sequences per repeat length, at a fixed ``--batch-size`` and with whole-probe
batches), and defcheck's composition checker vs ``all_composition_scores`` (time, memory, max difference).

Usage::

    python benchmarks/bench_run.py                      # toy, gpt2 and big; about 10 minutes on 2 cores
    python benchmarks/bench_run.py --quick --models toy # a smoke run (seconds)
    python benchmarks/bench_run.py --device cuda        # where a GPU is available

Timings on a shared machine move with its load: the load average is printed with every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOY_WEIGHTS = ROOT / "plugins" / "weights" / "toy-induction.pt"

MODELS: dict[str, dict[str, Any]] = {
    "toy": {
        "summary": "toy: 2 layers x 8 heads, d_model 64, attention-only, vocab 64",
        "config": {
            "n_layers": 2,
            "d_model": 64,
            "n_heads": 8,
            "d_head": 8,
            "d_vocab": 64,
            "n_ctx": 64,
            "attn_only": True,
            "normalization_type": None,
        },
        "tokens": {"bos_token_id": 0, "token_ids": (1, 64)},
    },
    "gpt2": {
        "summary": "gpt2: GPT-2-small shape, 12 layers x 12 heads, d_model 768, d_mlp 3072, vocab 50257, LN",
        "config": {
            "n_layers": 12,
            "d_model": 768,
            "n_heads": 12,
            "d_head": 64,
            "d_mlp": 3072,
            "d_vocab": 50257,
            "n_ctx": 1024,
            "act_fn": "gelu_new",
            "normalization_type": "LN",
        },
        "tokens": {"bos_token_id": 50256},
    },
    "big": {
        "summary": "big: 24 layers x 16 heads, d_model 1024, d_head 64, d_mlp 4096, vocab 50257, LN",
        "config": {
            "n_layers": 24,
            "d_model": 1024,
            "n_heads": 16,
            "d_head": 64,
            "d_mlp": 4096,
            "d_vocab": 50257,
            "n_ctx": 1024,
            "act_fn": "gelu_new",
            "normalization_type": "LN",
        },
        "tokens": {"bos_token_id": 50256},
    },
}

# The peer's scores as defcheck definitions, on the registry's probes (N: sequences per repeat length).
PEER_SET = """
concept: peer_set
unit: attention_head
summary: What detect_head and all_composition_scores compute, as defcheck definitions.
definitions:
  previous_token:
    kind: behavioral
    source: benchmark (previous_token_head.attends_previous's probe)
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: N, length: 32}
        threshold: ">= 0.4"
  duplicate_token:
    kind: behavioral
    source: benchmark (duplicate_token_head.attends_duplicates's probe)
    all:
      - checker: attention_pattern
        params: {pattern: duplicate_token, exclude_current_token: true}
        probe: {name: repeated_random_tokens, n: N, length: [8, 16]}
        threshold: ">= 0.4"
  induction:
    kind: behavioral
    source: benchmark (induction_head.prefix_matching_and_copying's probe)
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: N, length: [8, 13, 21]}
        threshold: ">= 0.4"
  every_head:
    kind: mechanistic
    source: benchmark (selects every head, so that composition scores every pair)
    all:
      - checker: qk_positional
        threshold: ">= 0"
  k_composition:
    kind: mechanistic
    source: benchmark
    all:
      - checker: composition
        params: {type: K, baseline: none}
        with: every_head
        threshold: ">= 0"
  q_composition:
    kind: mechanistic
    source: benchmark
    all:
      - checker: composition
        params: {type: Q, baseline: none}
        with: every_head
        threshold: ">= 0"
"""
# (TransformerLens head name, peer_set definition, attention_pattern parameters)
PATTERNS = (
    ("previous_token_head", "previous_token", {}),
    ("duplicate_token_head", "duplicate_token", {"exclude_current_token": True}),
    ("induction_head", "induction", {}),
)


# ----------------------------------------------------------------------------------------------------------
# memory


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _maxrss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class PeakMemory:
    """Peak resident memory of this process from ``start()`` on (MB), and the resident memory at the start."""

    def start(self) -> None:
        import gc

        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM and ru_maxrss)
            self.method = "VmHWM after clear_refs"
        except OSError:
            self.method = "ru_maxrss delta"
        self.base_kb = _status_kb("VmRSS") or _maxrss_kb()
        self.start_max_kb = _maxrss_kb()

    def peak_kb(self) -> int:
        if self.method.startswith("VmHWM"):
            return _status_kb("VmHWM") or _maxrss_kb()
        return max(_maxrss_kb(), self.base_kb)


# ----------------------------------------------------------------------------------------------------------
# the worker side: build a model and probes, run one method


def _setup_torch(args: argparse.Namespace) -> Any:
    import torch

    torch.set_num_threads(args.threads)
    return torch


def _view(args: argparse.Namespace) -> tuple[Any, str]:
    """The model as a defcheck ModelView, and a note on where it came from."""
    from defcheck.models import ModelView, TokenSpace, build_bridge

    spec = MODELS[args.model]
    if args.model == "toy" and TOY_WEIGHTS.is_file():
        from defcheck.models.loading import load_model

        view = load_model("builtin:toy-induction", device=args.device)
        return view, "builtin:toy-induction (shipped weights)"
    tokens = spec["tokens"]
    view = ModelView(
        build_bridge(spec["config"], seed=0),
        TokenSpace(spec["config"]["d_vocab"], bos_token_id=tokens["bos_token_id"], token_ids=tokens.get("token_ids")),
        name=args.model,
    )
    if args.device != "cpu":
        view.model.to(args.device)
    note = "seeded random weights"
    if args.model == "toy":
        note = f"{TOY_WEIGHTS.name} not found: a seeded random model of the same config"
    return view, note


def _probe_n(args: argparse.Namespace) -> int:
    """Sequences per repeat length in every probe (the built-in registry's is 32)."""
    if args.n is not None:
        return args.n
    if args.quick:
        return 4
    return {"toy": 32, "gpt2": args.gpt2_n, "big": args.big_n}[args.model]


def _registry_folder(args: argparse.Namespace, kind: str) -> Path:
    """A folder of concept files: the peer set, or ``copies`` renamed copies of the built-in registry, with
    every probe's ``n`` set to the run's."""
    folder = Path(tempfile.mkdtemp(prefix=f"defcheck-bench-{kind}-"))
    n = _probe_n(args)
    if kind == "peer":
        (folder / "peer_set.yaml").write_text(PEER_SET.replace("n: N", f"n: {n}"))
        return folder
    # the whole registry at the files' own probe sizes, as `defcheck run` runs it; resized only to scale
    write_registry_copies(folder, args.copies, n if (args.copies > 1 or args.n is not None) else None)
    return folder


def write_registry_copies(folder: Path, copies: int, n: int | None) -> int:
    """Write ``copies`` copies of the built-in concept files of transformer units (attention heads, MLP neurons)
    into ``folder``, concepts renamed ``NAME_cK`` (with: references renamed with them; one copy keeps the names),
    every probe's ``n`` set to ``n`` (None: the files' own). Returns the number of definitions."""
    import yaml

    builtin = [
        path
        for path in sorted((ROOT / "definitions").glob("*.yaml"))
        if yaml.safe_load(path.read_text()).get("unit", "attention_head") in ("attention_head", "mlp_neuron")
    ]
    names = [yaml.safe_load(path.read_text())["concept"] for path in builtin]
    count = 0
    for copy in range(copies):
        for path in builtin:
            data = yaml.safe_load(path.read_text())

            def rename(concept: str, _copy: int = copy) -> str:
                return concept if copies == 1 else f"{concept}_c{_copy}"

            data["concept"] = rename(data["concept"])
            for definition in data["definitions"].values():
                count += 1
                for combinator in ("all", "any"):
                    for criterion in definition.get(combinator, []):
                        if n is not None and isinstance(criterion.get("probe"), dict):
                            criterion["probe"]["n"] = n
                        targets = criterion.get("with")
                        if targets is not None:
                            listed = targets if isinstance(targets, list) else [targets]
                            renamed = [
                                f"{rename(t.split('.')[0])}.{t.split('.')[1]}"
                                if "." in t and t.split(".")[0] in names
                                else t
                                for t in listed
                            ]
                            criterion["with"] = renamed if isinstance(targets, list) else renamed[0]
            (folder / f"{data['concept']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return count


def _probes(view: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The peer set's three probes, built exactly as defcheck's runner builds them (same plugin, same seed)."""
    import yaml

    from defcheck.engine.probe_data import ProbeRequest
    from defcheck.hooks.manager import load_plugins

    extensions = load_plugins()
    concept = yaml.safe_load(PEER_SET.replace("n: N", f"n: {_probe_n(args)}"))
    probes = {}
    for _, definition, _ in PATTERNS:
        spec = dict(concept["definitions"][definition]["all"][0]["probe"])
        probe = extensions.probes[spec.pop("name")]
        params = probe.params.model_validate(spec)
        probes[definition] = probe.build(ProbeRequest(params, view.tokens, args.seed, view.n_ctx, None))
    return probes


def _activation_bytes(view: Any) -> dict[str, int]:
    """Wrap ``view.run_batches`` to record the largest batch's captured activations (bytes)."""
    largest = {"bytes": 0, "batches": 0}
    original = view.run_batches

    def recording(*args: Any, **kwargs: Any) -> Any:
        for rows, logits, activations in original(*args, **kwargs):
            size = sum(t.numel() * t.element_size() for t in activations.values())
            if logits is not None:
                size += logits.numel() * logits.element_size()
            largest["bytes"] = max(largest["bytes"], size)
            largest["batches"] += 1
            yield rows, logits, activations

    view.run_batches = recording
    return largest


def _model_bytes(view: Any) -> int:
    model = view.model
    tensors = list(model.parameters()) + list(model.buffers())
    seen, total = set(), 0
    for tensor in tensors:
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    imports_started = time.perf_counter()
    torch = _setup_torch(args)
    import transformer_lens  # noqa: F401  (imported before the measurement, as any user has)

    from defcheck.session import RunConfig, Session

    rss_imports = _status_kb("VmRSS") or _maxrss_kb()
    loading = time.perf_counter()
    view, note = _view(args)
    model_seconds = time.perf_counter() - loading
    model = view.model
    setup: dict[str, Any] = {}
    method = args.worker
    if method.startswith("defcheck-composition"):
        from defcheck_plugins.circuits import composition_scores
    elif method.startswith("defcheck"):
        # the built-in attention-head concept files, probes resized to n (full, copies), or the peer set's
        folder = _registry_folder(args, "peer" if method == "defcheck-peer" else "copies")
        config = RunConfig(
            definition_paths=(str(folder.resolve()),),
            include_builtin=False,
            selection=tuple(args.concept.split(",")) if method == "defcheck-concept" else (),
            seed=args.seed,
            batch_size=args.batch_size,
            device=args.device,
        )
        session = Session(config)  # the same code path as `defcheck run`, `defcheck sweep` and defcheck.check
        registry = session.registry  # errors raise DefinitionsError, with every diagnostic
        setup["definitions"] = len(registry.order)
        setup["criteria"] = sum(len(registry.definition(d)[1].criteria) for d in registry.order)
        largest = _activation_bytes(view)
    elif method in ("peer-detect", "naive"):
        probes = _probes(view, args)
        setup["prompts"] = sum(int(p.tokens.shape[0]) for p in probes.values())

    setup_seconds = time.perf_counter() - imports_started
    rss_setup = _status_kb("VmRSS") or _maxrss_kb()
    memory = PeakMemory()
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    load_before = os.getloadavg()[0]
    memory.start()

    runs: dict[str, Any] = {}

    def once() -> dict[str, Any]:
        output: dict[str, Any] = {}
        if method.startswith("defcheck-composition"):
            scores = composition_scores(view, method[-1])
            output["file"] = _save(args, torch, scores)
        elif method.startswith("defcheck-"):
            largest["bytes"] = largest["batches"] = 0
            result = session.evaluate(view)
            output["errors"] = {key: d.error for key, d in result.definitions.items() if d.error}
            output["timings"] = result.timings
            runs["last"] = result
            output["largest_batch_bytes"] = largest["bytes"]
            output["batches"] = largest["batches"]
            if method == "defcheck-peer":
                output["scores"] = {
                    name: result.definitions[f"peer_set.{name}"].scores.values.tolist() for _, name, _ in PATTERNS
                }
        elif method == "peer-detect":
            detected = peer_detect(view, probes, torch)
            output["scores"], output["rescaled"] = detected["raw"], detected["rescaled"]
        elif method.startswith("peer-composition"):
            scores = model.all_composition_scores(method[-1]).scores
            output["file"] = _save(args, torch, scores)
        elif method == "naive":
            output.update(naive(view, probes, torch, max_pairs=args.naive_pairs or None))
        else:
            raise SystemExit(f"unknown method {method}")
        if args.device == "cuda":
            torch.cuda.synchronize()
        return output

    # the first run, in a fresh process, is what a user pays (one-time costs included): its time is the one
    # compared; it also gives the peak memory. A run under --repeat-below seconds is repeated, and the median of
    # the (warm) repeats reported beside it, since short runs on a shared machine vary most
    started = time.perf_counter()
    output = once()
    times = [time.perf_counter() - started]
    peak = memory.peak_kb()
    while times[0] < args.repeat_below and len(times) < 3:
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    seconds = times[0]
    if method in ("defcheck-full", "defcheck-concept"):  # the run's floor, measured after it (not timed with it)
        from defcheck.engine.floor import forward_floor

        output["floor"] = forward_floor(view, runs["last"].probes, args.batch_size)
    warm = sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else None
    result_data = {
        "method": method,
        "model": args.model,
        "note": note,
        "seconds": seconds,
        "warm_seconds": warm,
        "times": times,
        "setup_seconds": setup_seconds,
        "model_seconds": model_seconds,
        "rss_imports_mb": rss_imports / 1024,
        "rss_setup_mb": rss_setup / 1024,
        "peak_mb": peak / 1024,
        "delta_mb": max(peak - memory.base_kb, 0) / 1024,
        "memory_method": memory.method,
        "model_mb": _model_bytes(view) / 2**20,
        "load": [load_before, os.getloadavg()[0]],
        "probe_n": _probe_n(args),
        **setup,
        **output,
    }
    if args.device == "cuda":
        result_data["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result_data


def _save(args: argparse.Namespace, torch: Any, scores: Any) -> str:
    path = Path(args.out_dir) / f"{args.model}-{args.worker}.pt"
    torch.save(scores.detach().cpu(), path)
    return str(path)


def peer_detect(view: Any, probes: dict[str, Any], torch: Any) -> dict[str, Any]:
    """``detect_head`` once per pattern and per prompt, averaged over the prompts (TransformerLens's own loop
    over a list of prompts does the same, but needs a tokenizer)."""
    from transformer_lens import head_detector

    model = view.model
    device = view.device
    results: dict[str, Any] = {}
    rescaled: dict[str, Any] = {}
    try:
        for tl_name, definition, options in PATTERNS:
            tokens = probes[definition].tokens
            detection_fn = getattr(head_detector, f"get_{tl_name}_detection_pattern")
            total = torch.zeros(view.n_layers, view.n_heads)
            by_target_rows = torch.zeros(view.n_layers, view.n_heads)
            for row in tokens:
                sequence = row[None].to(device)
                model.to_tokens = lambda _seq, _s=sequence, **_: _s  # no tokenizer: hand detect_head the tokens
                raw = head_detector.detect_head(model, "unused", tl_name, **options).float().cpu()
                total += raw
                # detect_head divides by every query row, defcheck by the rows that have a target
                target_rows = int((detection_fn(row[None]).sum(-1) > 0).sum())
                by_target_rows += raw * row.numel() / max(target_rows, 1)
            results[definition] = (total / tokens.shape[0]).tolist()
            rescaled[definition] = (by_target_rows / tokens.shape[0]).tolist()
    finally:
        if "to_tokens" in model.__dict__:
            del model.to_tokens
    return {"raw": results, "rescaled": rescaled}


def naive(view: Any, probes: dict[str, Any], torch: Any, *, max_pairs: int | None) -> dict[str, Any]:
    """A cache per probe, then Python loops over heads and sequences; composition over head pairs.

    Composition as the ARENA tutorial writes it: each head's ``W_OV = W_V W_O`` and ``W_QK = W_Q W_K^T``
    materialized (``d_model x d_model``), then ``||W_OV^A W_QK^B^T||_F / (||W_OV^A||_F ||W_QK^B||_F)`` (K) and
    the same with ``W_QK^B`` (Q) per pair. With ``max_pairs``, only that many pairs (every ``k``-th, in order)
    are scored and the time of all pairs is extrapolated from them (reported as such).
    """
    from transformer_lens import head_detector

    model = view.model
    results = {}
    started = time.perf_counter()
    with torch.no_grad():
        for tl_name, definition, options in PATTERNS:
            tokens = probes[definition].tokens
            detection_fn = getattr(head_detector, f"get_{tl_name}_detection_pattern")
            _, cache = model.run_with_cache(tokens.to(view.device))  # every hook, the whole probe
            detections = [detection_fn(tokens[i : i + 1]).to(view.device) for i in range(tokens.shape[0])]
            scores = torch.zeros(view.n_layers, view.n_heads)
            for layer in range(view.n_layers):
                pattern = cache["pattern", layer]  # [b, H, q, k]
                for head in range(view.n_heads):
                    total = 0.0
                    for index, detection in enumerate(detections):
                        total += float(
                            head_detector.compute_head_attention_similarity_score(
                                pattern[index, head],
                                detection_pattern=detection,
                                exclude_bos=False,
                                exclude_current_token=options.get("exclude_current_token", False),
                                error_measure="mul",
                            )
                        )
                    scores[layer, head] = total / tokens.shape[0]
            results[definition] = scores.tolist()
            del cache
        attention_seconds = time.perf_counter() - started
        started = time.perf_counter()
        W_V, W_O, W_Q, W_K = model.W_V, model.W_O, model.W_Q, model.W_K
        ov = W_V @ W_O  # [L, H, d_model, d_model]
        qk = W_Q @ W_K.transpose(-2, -1)
        ov_norm, qk_norm = ov.flatten(-2).norm(dim=-1), qk.flatten(-2).norm(dim=-1)
        pairs = [
            (l1, h1, l2, h2)
            for l1 in range(view.n_layers)
            for h1 in range(view.n_heads)
            for l2 in range(l1 + 1, view.n_layers)
            for h2 in range(view.n_heads)
        ]
        step = 1 if not max_pairs or len(pairs) <= max_pairs else -(-len(pairs) // max_pairs)
        chosen = pairs[::step]
        composition = torch.zeros(2, view.n_layers, view.n_heads, view.n_layers, view.n_heads)
        for l1, h1, l2, h2 in chosen:
            norms = ov_norm[l1, h1] * qk_norm[l2, h2]
            composition[0, l1, h1, l2, h2] = (ov[l1, h1] @ qk[l2, h2].T).norm() / norms  # K
            composition[1, l1, h1, l2, h2] = (ov[l1, h1] @ qk[l2, h2]).norm() / norms  # Q
        composition_seconds = time.perf_counter() - started
    return {
        "scores": results,
        "pairs": len(pairs),
        "pairs_scored": len(chosen),
        "attention_seconds": attention_seconds,
        "composition_seconds": composition_seconds,
        "composition_estimate": composition_seconds * len(pairs) / max(len(chosen), 1),
    }


# ----------------------------------------------------------------------------------------------------------
# the parent side: run workers, print tables


def measure(args: argparse.Namespace, method: str, model: str, **extra: Any) -> dict[str, Any]:
    """Run one method in a fresh subprocess; its JSON result (or the reason it failed)."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        method,
        "--model",
        model,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--out-dir",
        args.out_dir,
    ]
    if args.quick:
        command.append("--quick")
    command += ["--gpt2-n", str(args.gpt2_n), "--big-n", str(args.big_n), "--naive-pairs", str(args.naive_pairs)]
    command += ["--repeat-below", str(args.repeat_below)]
    batch_size = extra.get("batch_size", args.batch_size)
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    for key in ("copies", "n", "concept"):
        if extra.get(key) is not None:
            command += [f"--{key}", str(extra[key])]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, check=False, env=_worker_environment()
        )
    except subprocess.TimeoutExpired:
        return {"method": method, "model": model, "failed": f"timed out after {args.timeout} s"}
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"method": method, "model": model, "failed": f"exit {done.returncode}: {' | '.join(tail)}"}
    result = json.loads(lines[-1][len("RESULT ") :])
    result["process_seconds"] = wall  # the whole process: start, imports, model, probes, the method
    result["process_user"] = after.ru_utime - before.ru_utime
    result["process_sys"] = after.ru_stime - before.ru_stime
    return result


def _worker_environment() -> dict[str, str]:
    """The workers' environment: OpenMP threads sleep instead of spinning while they wait (unless the caller set
    ``OMP_WAIT_POLICY``). On a machine whose cores are shared, spinning threads wait for descheduled ones: measured
    here under a load of ~7 on 2 cores, a toy-model run took 4.4 s with spinning and 0.08-0.2 s without."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.3f}" if a / b < 0.1 else f"{a / b:.2f}"


def composition_estimate_gb(model: str) -> float:
    """TransformerLens's all_composition_scores broadcasts ``[L,H,1,1,d_head,d_model] @ [1,1,L,H,d_model,d_head]``:
    torch.matmul expands both operands to ``(L H)^2 d_head d_model`` float32 elements before multiplying."""
    config = MODELS[model]["config"]
    heads = config["n_layers"] * config["n_heads"]
    elements = heads**2 * config["d_head"] * config["d_model"]
    return 2 * elements * 4 / 1e9


def _available_gb() -> float:
    text = Path("/proc/meminfo").read_text()
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 2**20 if match else 0.0


def compare_models(args: argparse.Namespace, models: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    print("\n## 1. defcheck vs the peer (TransformerLens) vs naive loops\n")
    print("| model | method | computes | wall s | warm s | peak RSS MB | delta MB | load 1m |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for model in models:
        results: dict[str, dict[str, Any]] = {}
        methods = ["defcheck-full", "defcheck-peer", "peer-detect", "peer-composition-K", "peer-composition-Q", "naive"]
        for method in methods:
            if method.startswith("peer-composition"):
                estimate = composition_estimate_gb(model)
                budget = min(_available_gb(), args.memory_limit_gb)
                if method.endswith("Q") and args.quick and model != "toy":
                    results[method] = {"skipped": "skipped with --quick (costs what K costs)"}
                    continue
                if estimate > 0.8 * budget:
                    results[method] = {
                        "skipped": f"skipped: needs about {estimate:.0f} GB (2 x (L*H)^2 x d_head x d_model float32, "
                        f"the broadcast matmul's expanded operands); {budget:.0f} GB available"
                    }
                    continue
            results[method] = measure(args, method, model)
        rows.append({"model": model, "results": results})
        _print_model_rows(model, results)
    return rows


def _computes(method: str, result: dict[str, Any]) -> str:
    if method == "defcheck-full":
        return (
            "whole built-in registry (heads and MLP neurons, probes at their files' sizes): "
            f"{result.get('definitions')} definitions, "
            f"{result.get('criteria')} criteria"
        )
    if method == "defcheck-peer":
        return "3 attention scores + K, Q composition (all pairs)"
    if method == "peer-detect":
        return f"detect_head x 3 patterns x {result.get('prompts')} prompts in all"
    if method.startswith("peer-composition"):
        return f"all_composition_scores('{method[-1]}')"
    if method == "naive":
        scored, pairs = result.get("pairs_scored"), result.get("pairs")
        which = f"{pairs} pairs" if scored == pairs else f"{scored} of {pairs} pairs (est. below)"
        return f"cache + loops: 3 attention scores, composition K, Q on {which}"
    return method


def _print_model_rows(model: str, results: dict[str, dict[str, Any]]) -> None:
    for method, result in results.items():
        if "skipped" in result or "failed" in result:
            print(f"| {model} | {method} | {result.get('skipped') or result.get('failed')} | - | - | - | - | - |")
            continue
        load = result.get("load", [None])[0]
        print(
            f"| {model} | {method} | {_computes(method, result)} | {_s(result['seconds'])} | "
            f"{_s(result.get('warm_seconds'))} | {_mb(result['peak_mb'])} | {_mb(result['delta_mb'])} | {load:.1f} |"
        )
        if result.get("errors"):
            print(f"|  |  | errors: {result['errors']} | | | | | |")
    estimate = _naive_estimate(results)
    if estimate is not None and estimate != results["naive"]["seconds"]:
        r = results["naive"]
        print(
            f"| {model} | naive, all pairs (est.) | attention {_s(r['attention_seconds'])} s measured + composition "
            f"{_s(r['composition_seconds'])} s for {r['pairs_scored']} pairs x {r['pairs'] / r['pairs_scored']:.1f} | "
            f"{_s(estimate)} | - | - | - | |"
        )
    peer = _peer_total(results)
    if peer:
        print(
            f"| {model} | peer total | {peer['parts']} | {_s(peer['seconds'])} | - | {_mb(peer['peak_mb'])} | "
            f"{_mb(peer['delta_mb'])} | |"
        )
    notes = {r.get("note") for r in results.values() if r.get("note")}
    for note in notes:
        print(f"|  |  | model: {note} | | | | | |")
    sys.stdout.flush()


def _naive_estimate(results: dict[str, dict[str, Any]]) -> float | None:
    """The naive method's time with every pair scored: measured where it scored them all, else extrapolated."""
    r = results.get("naive", {})
    if "seconds" not in r:
        return None
    if r["pairs_scored"] == r["pairs"]:
        return r["seconds"]
    return r["seconds"] - r["composition_seconds"] + r["composition_estimate"]


def _peer_total(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    parts = [m for m in ("peer-detect", "peer-composition-K", "peer-composition-Q") if "seconds" in results.get(m, {})]
    if not parts:
        return None
    return {
        "parts": " + ".join(parts),
        "seconds": sum(results[m]["seconds"] for m in parts),
        "peak_mb": max(results[m]["peak_mb"] for m in parts),
        "delta_mb": max(results[m]["delta_mb"] for m in parts),
        "complete": len(parts) == 3,
    }


def print_ratios(rows: list[dict[str, Any]]) -> None:
    print("\n## RATIOS (defcheck / other: below 1 means defcheck is faster or smaller)\n")
    print(
        "Time: wall seconds of each method's first run in a fresh process (after imports, model and probes); "
        "memory: its peak RSS above that process after setup (delta MB).\n"
    )
    print("| model | defcheck | vs | time ratio | memory ratio | note |")
    print("|---|---|---|---:|---:|---|")
    for row in rows:
        results = row["results"]
        peer = _peer_total(results)
        naive_result = results.get("naive", {})
        for ours in ("defcheck-full", "defcheck-peer"):
            mine = results.get(ours, {})
            if "seconds" not in mine:
                continue
            if peer:
                note = "" if peer["complete"] else f"peer = {peer['parts']} only"
                print(
                    f"| {row['model']} | {ours} | peer | {_ratio(mine['seconds'], peer['seconds'])} | "
                    f"{_ratio(mine['delta_mb'], peer['delta_mb'])} | {note} |"
                )
            if "seconds" in naive_result:
                estimate = _naive_estimate(results)
                extrapolated = estimate != naive_result["seconds"]
                note = "naive time extrapolated to all pairs (see above)" if extrapolated else ""
                print(
                    f"| {row['model']} | {ours} | naive{' (est.)' if extrapolated else ''} | "
                    f"{_ratio(mine['seconds'], estimate)} | "
                    f"{_ratio(mine['delta_mb'], naive_result['delta_mb'])} | {note} |"
                )
    print("\nAgreement (max |difference|):")
    for row in rows:
        results = row["results"]
        _agreement(row["model"], results)


def _agreement(model: str, results: dict[str, dict[str, Any]]) -> None:
    import torch

    peer = results.get("peer-detect", {}).get("scores")
    naive_scores = results.get("naive", {}).get("scores")
    ours = results.get("defcheck-peer", {}).get("scores")
    if peer and naive_scores:
        gap = max(float((torch.tensor(peer[k]) - torch.tensor(naive_scores[k])).abs().max()) for k in peer)
        print(f"- {model}: naive vs detect_head attention scores: {gap:.2e}")
    rescaled = results.get("peer-detect", {}).get("rescaled")
    if rescaled and ours:
        for key in ("previous_token", "induction"):  # no exclusions: equal once detect_head's rows are rescaled
            gap = float((torch.tensor(rescaled[key]) - torch.tensor(ours[key])).abs().max())
            print(f"- {model}: defcheck vs detect_head x rows/target rows, {key}: {gap:.2e}")


def composition_section(args: argparse.Namespace, rows: list[dict[str, Any]], models: list[str]) -> None:
    import torch

    print("\n## 3. Composition: defcheck's composition_scores vs all_composition_scores (every head pair)\n")
    print("| model | mode | defcheck s | TL s | speedup | defcheck delta MB | TL delta MB | memory ratio | max diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for model in models:
        peer_results = next((r["results"] for r in rows if r["model"] == model), {})
        for mode in ("K", "Q"):
            theirs = peer_results.get(f"peer-composition-{mode}", {})
            if args.quick and model != "toy" and mode == "Q":
                continue
            ours = measure(args, f"defcheck-composition-{mode}", model)
            if "seconds" not in ours:
                print(f"| {model} | {mode} | {ours.get('failed')} | | | | | | |")
                continue
            if "seconds" not in theirs:
                reason = theirs.get("skipped") or theirs.get("failed") or "not run"
                print(
                    f"| {model} | {mode} | {_s(ours['seconds'])} | {reason} | - | {_mb(ours['delta_mb'])} | - | - | - |"
                )
                continue
            a, b = torch.load(ours["file"]), torch.load(theirs["file"])
            diff = float((a.float() - b.float()).abs().nan_to_num(0).max())
            print(
                f"| {model} | {mode} | {_s(ours['seconds'])} | {_s(theirs['seconds'])} | "
                f"{theirs['seconds'] / max(ours['seconds'], 1e-9):.0f}x | {_mb(ours['delta_mb'])} | "
                f"{_mb(theirs['delta_mb'])} | {_ratio(ours['delta_mb'], theirs['delta_mb'])} | {diff:.1e} |"
            )
        sys.stdout.flush()


def scaling_section(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time and memory as definitions and probes grow; returns the probe-size rows."""
    model = args.scaling_model
    sized: list[dict[str, Any]] = []
    print(f"\n## 2. Scaling of defcheck on {model} (batch size {args.batch_size})\n")
    print("Definitions: copies of the built-in registry (concepts renamed); probes shared, identical criteria once.\n")
    print("| copies | definitions | criteria | wall s | warm s | peak RSS MB | delta MB | load 1m |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for copies in (1, 6, 24) if not args.quick else (1, 6):
        result = measure(args, "defcheck-copies", model, copies=copies)
        if "seconds" not in result:
            print(f"| {copies} | {result.get('failed')} | | | | | | |")
            continue
        print(
            f"| {copies} | {result['definitions']} | {result['criteria']} | {_s(result['seconds'])} | "
            f"{_s(result.get('warm_seconds'))} | {_mb(result['peak_mb'])} | {_mb(result['delta_mb'])} | "
            f"{result['load'][0]:.1f} |"
        )
        sys.stdout.flush()
    sizes = (16, 128, 512) if not args.quick else (16, 64)
    print(
        "\nProbe size: the built-in registry with every probe's n set (sequences per repeat length; the largest "
        "probe has 3n sequences).\n"
    )
    print(
        "| n | batch size | batches | largest batch activations MB | wall s | warm s | peak RSS MB | delta MB | load |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch_size in (args.batch_size, None):
        for n in sizes:
            result = measure(args, "defcheck-copies", model, copies=1, n=n, batch_size=batch_size or 0)
            sized.append({"n": n, "batch_size": batch_size, **result})
            if "seconds" not in result:
                print(f"| {n} | {batch_size or 'whole'} | {result.get('failed')} | | | | | | |")
                continue
            print(
                f"| {n} | {batch_size or 'whole probe'} | {result['batches']} | "
                f"{result['largest_batch_bytes'] / 2**20:,.1f} | {_s(result['seconds'])} | "
                f"{_s(result.get('warm_seconds'))} | {_mb(result['peak_mb'])} | {_mb(result['delta_mb'])} | "
                f"{result['load'][0]:.1f} |"
            )
            sys.stdout.flush()
    return sized


def profile_section(rows: list[dict[str, Any]]) -> None:
    print("\n## Where defcheck's time went (runner timings, as `defcheck run --profile` prints them)\n")
    for row in rows:
        result = row["results"].get("defcheck-full", {})
        timings = result.get("timings")
        if not timings:
            continue
        probes = sum(v for k, v in timings.items() if k.startswith("probe "))
        checkers: dict[str, float] = {}
        for key, value in timings.items():
            if not key.startswith("probe "):
                checker = key.rsplit(" ", 1)[-1]
                checkers[checker] = checkers.get(checker, 0.0) + value
        parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(checkers.items(), key=lambda kv: -kv[1]) if v >= 0.01)
        print(f"- {row['model']}: forward passes and probes {probes:.2f} s; checkers: {parts}")


def _memory_bound(full: dict[str, Any]) -> tuple[float, float, float]:
    """MB: the run's peak RSS above the imported interpreter, its largest batch's activations, and the memory
    target 2 x (model + that batch)."""
    batch = full.get("largest_batch_bytes", 0) / 2**20
    return full["peak_mb"] - full["rss_imports_mb"], batch, 2 * (full["model_mb"] + batch)


def targets_section(rows: list[dict[str, Any]]) -> None:
    print("\n## Issue 7 targets on the GPT-2-small shape\n")
    row = next((r for r in rows if r["model"] == "gpt2"), None)
    if row is None:
        print("- gpt2 not run")
        return
    results = row["results"]
    peer = _peer_total(results)
    naive_result = results.get("naive", {})
    full = results.get("defcheck-full", {})
    if "seconds" not in full:
        print("- defcheck full registry did not run")
        return
    if peer:
        speedup = peer["seconds"] / full["seconds"]
        print(f"- full registry >= 5x faster than the peer: {speedup:.2f}x -> {'met' if speedup >= 5 else 'NOT met'}")
    if "seconds" in naive_result:
        speedup = _naive_estimate(results) / full["seconds"]
        print(f"- full registry >= 20x faster than naive: {speedup:.2f}x -> {'met' if speedup >= 20 else 'NOT met'}")
    own, batch, bound = _memory_bound(full)
    print(
        f"- peak memory < 2 x (model {full['model_mb']:,.0f} MB + one batch's activations "
        f"{batch:,.0f} MB) = {bound:,.0f} MB: peak RSS above the imported "
        f"interpreter {own:,.0f} MB -> {'met' if own < bound else 'NOT met'}"
    )


def registry_concepts() -> dict[str, str]:
    """The built-in concepts of transformer units, by name: their unit kind."""
    import yaml

    units: dict[str, str] = {}
    for path in sorted((ROOT / "definitions").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        unit = data.get("unit", "attention_head")
        if unit in ("attention_head", "mlp_neuron"):
            units[data["concept"]] = unit
    return units


def concepts_section(args: argparse.Namespace, models: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """One row per concept of the whole registry (each its own process, its own probes), plus every
    attention-head concept together, so that a slow concept cannot hide in a total."""
    units = registry_concepts()
    if args.concept_names:
        units = {name: unit for name, unit in units.items() if name in args.concept_names.split(",")}
    heads = ",".join(name for name, unit in units.items() if unit == "attention_head")
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    print("\n## 4. The whole registry, concept by concept (each in its own process, probes at the files' sizes)\n")
    print("| model | concept | wall s | of it, forward passes s | floor s | process s | sys s | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model in models:
        rows[model] = {}
        for label, selection in [*((name, name) for name in units), ("all attention-head concepts", heads)]:
            result = measure(args, "defcheck-concept", model, concept=selection)
            rows[model][label] = result
            if "seconds" not in result:
                print(f"| {model} | {label} | {result.get('failed')} | | | | | |")
                continue
            forward = sum(v for k, v in result.get("timings", {}).items() if k.startswith("probe "))
            print(
                f"| {model} | {label} | {_s(result['seconds'])} | {_s(forward)} | "
                f"{_s(sum(result.get('floor', {}).values()))} | {_s(result['process_seconds'])} | "
                f"{_s(result['process_sys'])} | {_mb(result['peak_mb'])} |"
            )
            sys.stdout.flush()
    return rows


def _floor_ratio(result: dict[str, Any]) -> float | None:
    """(model load + run) / (model load + one plain forward pass per probe), as ``--profile`` prints it."""
    if "floor" not in result:
        return None
    least = result["model_seconds"] + sum(result["floor"].values())
    return (result["model_seconds"] + result["seconds"]) / least if least > 0 else None


def _verdict(met: bool) -> str:
    return "met" if met else "**NOT met**"


def targets_16_section(
    rows: list[dict[str, Any]],
    concepts: dict[str, dict[str, dict[str, Any]]],
    sized: list[dict[str, Any]],
) -> None:
    """Issue 16's targets, each from measurements of this run."""
    print("\n## Issue 16 targets (ratios from this run)\n")
    by_model = {row["model"]: row["results"] for row in rows}
    gpt2 = by_model.get("gpt2", {})
    full = gpt2.get("defcheck-full", {})
    parts = [gpt2.get(m, {}) for m in ("peer-detect", "peer-composition-K", "peer-composition-Q")]
    if "seconds" in full and all("process_seconds" in part for part in parts):
        peer = sum(part["process_seconds"] for part in parts)
        speedup = peer / full["process_seconds"]
        print(
            f"- gpt2, whole processes: the whole registry {full['process_seconds']:.1f} s, the peer's way "
            f"{peer:.1f} s (3 processes): {speedup:.2f}x faster; target 3x: {_verdict(speedup >= 3)}"
        )
    if "seconds" in full:
        ratio = _floor_ratio(full)
        if ratio is not None:
            least = full["model_seconds"] + sum(full["floor"].values())
            print(
                f"- gpt2: (model load + run) / floor = ({full['model_seconds']:.1f} + {full['seconds']:.1f}) / "
                f"{least:.1f} = {ratio:.2f}; target <= 1.3: {_verdict(ratio <= 1.3)}"
            )
        checkers = {k: v for k, v in full.get("timings", {}).items() if not k.startswith("probe ")}
        if checkers:
            name, most = max(checkers.items(), key=lambda kv: kv[1])
            share = most / full["seconds"]
            print(
                f"- gpt2: the largest criterion is {name}, {most:.1f} s = {share:.0%} of the run; target <= 10%: "
                f"{_verdict(share <= 0.10)}"
            )
        sys_share = full["process_sys"] / full["process_seconds"]
        print(
            f"- gpt2: time in the kernel (sys) {full['process_sys']:.1f} s of {full['process_seconds']:.1f} s wall = "
            f"{sys_share:.0%}; target < 15%: {_verdict(sys_share < 0.15)}"
        )
        own, batch, bound = _memory_bound(full)
        print(
            f"- gpt2: peak RSS above the imported interpreter {own:,.0f} MB; 2 x (model {full['model_mb']:,.0f} MB + "
            f"one batch's activations {batch:,.0f} MB) = {bound:,.0f} MB: "
            f"{_verdict(own <= bound)}"
        )
    per_concept = concepts.get("gpt2", {})
    neuron, heads = per_concept.get("token_detector_neuron", {}), per_concept.get("all attention-head concepts", {})
    if "seconds" in neuron and "seconds" in heads:
        ratio = neuron["seconds"] / heads["seconds"]
        print(
            f"- gpt2: token_detector_neuron {neuron['seconds']:.1f} s vs the attention-head concepts together "
            f"{heads['seconds']:.1f} s = {ratio:.2f}x; target <= 2x: {_verdict(ratio <= 2)}"
        )
    big = by_model.get("big", {})
    if "seconds" in big.get("defcheck-peer", {}) and "seconds" in big.get("peer-detect", {}):
        ours, theirs = big["defcheck-peer"]["seconds"], big["peer-detect"]["seconds"]
        print(
            f"- big: defcheck-peer {ours:.1f} s vs detect_head alone {theirs:.1f} s; target faster: "
            f"{_verdict(ours < theirs)}"
        )
    if "seconds" in big.get("defcheck-full", {}):
        ratio = _floor_ratio(big["defcheck-full"])
        if ratio is not None:
            print(f"- big: the whole registry / its floor = {ratio:.2f}; target <= 1.5: {_verdict(ratio <= 1.5)}")
    batched = {r["n"]: r for r in sized if r.get("batch_size") is not None and "delta_mb" in r}
    pairs = [(n, 8 * n) for n in batched if 8 * n in batched]
    for small, large in pairs:
        growth = batched[large]["delta_mb"] / max(batched[small]["delta_mb"], 1e-9) - 1
        print(
            f"- {sized[0].get('model')}: peak memory above setup at n={small} {batched[small]['delta_mb']:,.0f} MB, "
            f"at n={large} {batched[large]['delta_mb']:,.0f} MB (batch size {batched[small]['batch_size']}): "
            f"{growth:+.0%}; target flat within 10%: {_verdict(abs(growth) <= 0.10)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="small probes, fewer sizes and copies: a smoke run")
    parser.add_argument("--models", default="toy,gpt2,big", help="comma-separated: toy, gpt2, big")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (0: whole probe)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sections", default="compare,scaling,composition,concepts", help="which parts to run (comma-separated)"
    )
    parser.add_argument("--concept-models", default="gpt2", help="models of the concept-by-concept section")
    parser.add_argument("--concept-names", default="", help="only these concepts in that section (default: all)")
    parser.add_argument("--scaling-model", default="toy", choices=tuple(MODELS))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--memory-limit-gb", type=float, default=24.0, help="skip what is estimated above 80%% of it")
    parser.add_argument(
        "--gpt2-n", type=int, default=32, help="probe sequences per repeat length on gpt2 (registry 32)"
    )
    parser.add_argument("--big-n", type=int, default=4, help="probe sequences per repeat length on big (registry 32)")
    parser.add_argument(
        "--naive-pairs", type=int, default=300, help="pairs the naive loop scores (0: all); the rest is extrapolated"
    )
    parser.add_argument(
        "--repeat-below",
        type=float,
        default=5.0,
        help="repeat a method that took under this many seconds (median of 3)",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    # worker options
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="toy", help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concept", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_size == 0:
        args.batch_size = None
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)))
        return 0

    args.out_dir = args.out_dir or tempfile.mkdtemp(prefix="defcheck-bench-")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(MODELS)})")
    sections = set(args.sections.split(","))
    import torch
    import transformer_lens

    if args.device == "cuda" and not torch.cuda.is_available():
        print("# defcheck benchmark: --device cuda asked for, but torch sees no CUDA device here: GPU row skipped")
        return 0

    started = time.perf_counter()
    print("# defcheck benchmark (issue 7)\n")
    print(
        f"torch {torch.__version__}, transformer_lens {getattr(transformer_lens, '__version__', '4.x')}, "
        f"device {args.device}, {args.threads} threads, {os.cpu_count()} cores, batch size "
        f"{args.batch_size or 'whole probe'}, quick {args.quick}, OMP_WAIT_POLICY "
        f"{_worker_environment()['OMP_WAIT_POLICY']}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared: compare ratios, not seconds)"
    )
    for model in models:
        n = _probe_n(argparse.Namespace(**{**vars(args), "model": model}))
        reduced = " (the built-in registry's is 32)" if n != 32 else ""
        print(f"- {MODELS[model]['summary']}; probes of n={n} sequences per repeat length{reduced}")
    rows: list[dict[str, Any]] = []
    sized: list[dict[str, Any]] = []
    concepts: dict[str, dict[str, dict[str, Any]]] = {}
    if "compare" in sections:
        rows = compare_models(args, models)
        print_ratios(rows)
        profile_section(rows)
        targets_section(rows)
    if "scaling" in sections:
        sized = scaling_section(args)
    if "composition" in sections:
        composition_section(args, rows, [m for m in models if m != "toy"] or models)
    if "concepts" in sections:
        concepts = concepts_section(args, [m.strip() for m in args.concept_models.split(",") if m.strip() in models])
    targets_16_section(rows, concepts, sized)
    print(
        f"\ntotal benchmark wall time {time.perf_counter() - started:.0f} s; load average at end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
