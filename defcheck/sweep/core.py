"""Sweeps over training checkpoints: one report per checkpoint, and a summary of how membership evolves.

``defcheck sweep`` answers the question of Olsson et al.'s central figure for any concept: do the units a
behavioral definition admits and those a mechanistic one admits appear at the same point of training? The
work has three parts:

1. :func:`find_checkpoints` turns what the user names into a :class:`Series`: ``builtin:NAME@*`` (a series
   the package ships), a folder or a glob of checkpoint files (the step from a ``checkpoints.json`` beside
   them or from the file name), or ``tl:NAME`` with TransformerLens checkpoint indices.
2. :func:`run_sweep` makes one :class:`Task` per checkpoint and hands them to an executor
   (:mod:`defcheck.sweep.executors`: this process, a process pool, or Ray). :func:`run_checkpoint`, which runs in
   the worker, loads the checkpoint, evaluates the definitions and returns the report's JSON; the driver
   writes it atomically (a temporary file, then ``os.replace``). A report already on disk is kept when it is
   *valid*: it parses as a report of the current ``report_version`` and its ``sweep.key`` equals the task's
   key, a hash of everything that decides its content (see :func:`task_key`). Anything else is re-run.
3. :func:`build_summary` reads the reports back (never the workers' memory, so the summary is the same bytes
   whatever ran them, and after a resume) into the summary document (docs/sweep.md): per definition and unit,
   score and membership against step; per concept, the overlap against step and the first step at which
   each kind admits a unit; the training loss where the checkpoints carry it.

Units are handled as the report names them (``"1.4"``, or whatever a unit kind's address is), never as
(layer, head) pairs, so the summary works for any unit kind.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from defcheck._version import __version__
from defcheck.diagnostics import DefcheckError, display_path
from defcheck.report.json import REPORT_VERSION, canonical, natural_key
from defcheck.sweep.executors import Executor, SequentialExecutor, error_line

__all__ = [
    "SUMMARY_VERSION",
    "Checkpoint",
    "Series",
    "SweepOptions",
    "SweepResult",
    "Task",
    "TaskResult",
    "atomic_write",
    "build_summary",
    "find_checkpoints",
    "read_valid_report",
    "report_name",
    "run_checkpoint",
    "run_sweep",
    "summary_json",
    "task_key",
]

SUMMARY_VERSION = 1
WEIGHTS_PACKAGE = "defcheck_plugins.weights"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")  # what the checkpoint loader reads
CONFIG_NAMES = ("config.json", "config.yaml", "config.yml")  # where it looks for a folder's config
METADATA_NAME = "checkpoints.json"  # a folder's steps and metrics, written by scripts/train_toy_models.py
GLOB_CHARACTERS = re.compile(r"[*?\[]")
Progress = Callable[[str, int, int], None]


# -- what to sweep ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a series: its training ``step``, the model reference a loader understands, and
    what is known about it without loading it.

    ``checkpoint_index`` is set for ``tl:`` names (TransformerLens's index into the model's checkpoints).
    ``metrics`` are numbers recorded at training time (``loss``, ...). ``identity`` describes the bytes
    behind the reference (size and modification time of the files), so a report of a changed file is not
    taken for valid.
    """

    step: int
    reference: str
    checkpoint_index: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Series:
    """The checkpoints of a sweep, sorted by step; ``step_unit`` is ``"step"`` or ``"token"`` (some
    TransformerLens families label checkpoints by tokens seen); ``source`` is what the user gave."""

    source: str
    checkpoints: tuple[Checkpoint, ...]
    step_unit: str = "step"

    @property
    def steps(self) -> list[int]:
        return [checkpoint.step for checkpoint in self.checkpoints]


def _ints(value: str | Sequence[int] | None, option: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return [int(item) for item in value.replace(" ", "").split(",") if item]
        except ValueError:
            raise DefcheckError(f"{option} takes integers separated by commas, e.g. 0,5,10; got '{value}'") from None
    return [int(item) for item in value]


def find_checkpoints(
    sources: str | Sequence[str],
    *,
    checkpoint_index: str | Sequence[int] | None = None,
    steps: str | Sequence[int] | None = None,
) -> Series:
    """The series that ``sources`` name, restricted to ``steps`` if given.

    Each source is ``builtin:NAME@*`` (every snapshot the package ships of NAME), ``tl:NAME`` (with
    ``checkpoint_index``: TransformerLens checkpoint indices), a folder of checkpoint files, a glob of them
    (quoted, so the shell does not expand it; if it did, each file arrives as its own source), or one file.
    Raises :class:`DefcheckError` with one sentence for a source that names nothing.
    """
    items = [sources] if isinstance(sources, str) else list(sources)
    if not items:
        raise DefcheckError("name the checkpoints: --checkpoints FOLDER, a quoted glob, builtin:NAME@* or tl:NAME")
    indices = _ints(checkpoint_index, "--checkpoint-index")
    pretrained = [item for item in items if item.startswith("tl:")]
    if indices is not None and (len(items) != 1 or not pretrained):
        raise DefcheckError("--checkpoint-index goes with one pretrained model: --checkpoints tl:NAME")
    if pretrained and indices is None:
        raise DefcheckError(f"{pretrained[0]}: say which checkpoints with --checkpoint-index, e.g. 0,10,20")
    unit = "step"
    found: list[Checkpoint] = []
    for item in items:
        if item.startswith("builtin:"):
            found += _builtin_series(item)
        elif item.startswith("tl:"):
            more, unit = _pretrained_series(item, indices or [])
            found += more
        else:
            found += _file_series(item)
    by_step: dict[int, Checkpoint] = {}
    for checkpoint in found:
        other = by_step.get(checkpoint.step)
        if other is not None and other.reference != checkpoint.reference:
            raise DefcheckError(
                f"two checkpoints have step {checkpoint.step}: {other.reference} and {checkpoint.reference}"
            )
        by_step[checkpoint.step] = checkpoint
    chosen = sorted(by_step.values(), key=lambda checkpoint: checkpoint.step)
    wanted = _ints(steps, "--steps")
    if wanted is not None:
        missing = [step for step in wanted if step not in by_step]
        if missing:
            have = ", ".join(str(c.step) for c in chosen)
            raise DefcheckError(f"the series has no checkpoint at step {missing[0]} (steps: {have})")
        chosen = [by_step[step] for step in sorted(set(wanted))]
    return Series(", ".join(items), tuple(chosen), unit)


def _builtin_series(reference: str) -> list[Checkpoint]:
    name, at, which = reference.removeprefix("builtin:").partition("@")
    if not at or which != "*":
        raise DefcheckError(f"'{reference}' is one model; sweep a shipped series with builtin:{name or 'NAME'}@*")
    folder = resources.files(WEIGHTS_PACKAGE)
    series = folder.joinpath(f"{name}-checkpoints.pt")
    if not series.is_file():
        shipped = sorted(
            entry.name.removesuffix("-checkpoints.pt")
            for entry in folder.iterdir()
            if entry.name.endswith("-checkpoints.pt")
        )
        raise DefcheckError(
            f"builtin:{name} ships no training checkpoints (series: {', '.join(f'builtin:{n}@*' for n in shipped)})"
        )
    import torch

    with resources.as_file(series) as path:
        steps = sorted(int(step) for step in torch.load(path, map_location="cpu", weights_only=True))
        stat = Path(path).stat()
    metrics: dict[str, Any] = {}
    sidecar = folder.joinpath(f"{name}-checkpoints.metrics.json")
    if sidecar.is_file():
        metrics = _read_metadata(sidecar.read_text(encoding="utf-8"), f"builtin:{name} checkpoint metrics")[0]
    identity = {"series": f"{name}-checkpoints.pt", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return [Checkpoint(step, f"builtin:{name}@{step}", None, metrics.get(step, {}), identity) for step in steps]


def _read_metadata(text: str, shown: str) -> tuple[dict[int, dict[str, float]], dict[str, int]]:
    """``{"metrics": {STEP: {NAME: number}}, "files": {FILE: STEP}}`` (both optional; docs/sweep.md)."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise DefcheckError(f"{shown} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise DefcheckError(f"{shown} must hold an object with 'metrics' and/or 'files'")
    metrics: dict[int, dict[str, float]] = {}
    try:
        for step, values in (data.get("metrics") or {}).items():
            metrics[int(step)] = {
                str(k): float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        files = {str(name): int(step) for name, step in (data.get("files") or {}).items()}
    except (AttributeError, TypeError, ValueError):
        raise DefcheckError(
            f"{shown}: 'metrics' must map steps to {{name: number}} and 'files' file names to steps"
        ) from None
    return metrics, files


def _pretrained_series(reference: str, indices: list[int]) -> tuple[list[Checkpoint], str]:
    """The checkpoints ``indices`` of a pretrained model, listed by its loader's ``checkpoints``."""
    from defcheck.hooks.manager import load_plugins
    from defcheck.models.loading import pick_loader

    loader = pick_loader(reference, load_plugins())
    if loader.checkpoints is None:
        raise DefcheckError(f"the model loader '{loader.name}' lists no training checkpoints of {reference}")
    labels, unit = loader.checkpoints(reference)
    out = []
    for index in indices:
        if not -len(labels) <= index < len(labels):
            raise DefcheckError(
                f"{reference} has {len(labels)} checkpoints: --checkpoint-index must be in 0..{len(labels) - 1}"
            )
        index = index % len(labels)
        identity = {"pretrained": reference, "index": index}
        out.append(Checkpoint(labels[index], reference, index, {}, identity))
    return out, unit


def step_from_name(path: Path) -> int | None:
    """The last run of digits in the file's stem: ``step-000800.pt`` -> 800, ``ckpt_12.pt`` -> 12."""
    runs = re.findall(r"\d+", path.stem)
    return int(runs[-1]) if runs else None


def _file_series(source: str) -> list[Checkpoint]:
    path = Path(source).expanduser()
    if GLOB_CHARACTERS.search(source) and not path.exists():
        files = [Path(p) for p in sorted(glob.glob(str(path))) if Path(p).suffix.lower() in CHECKPOINT_SUFFIXES]
        files = [p for p in files if p.is_file()]
        if not files:
            raise DefcheckError(f"the pattern '{source}' matches no checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES and p.is_file())
        if not files:
            raise DefcheckError(
                f"the folder {source} holds no checkpoint files ({', '.join('*' + s for s in CHECKPOINT_SUFFIXES)})"
            )
    elif path.is_file():
        files = [path]
    else:
        raise DefcheckError(f"{source} does not exist (give a folder of checkpoints, a quoted glob, or a file)")
    metadata: dict[Path, tuple[dict[int, dict[str, float]], dict[str, int]]] = {}
    out = []
    for file in files:
        folder = file.parent
        if folder not in metadata:
            sidecar = folder / METADATA_NAME
            metadata[folder] = ({}, {})
            if sidecar.is_file():
                try:
                    text = sidecar.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    raise DefcheckError(f"cannot read {display_path(sidecar)}: {error}") from None
                metadata[folder] = _read_metadata(text, display_path(sidecar))
        metrics, steps = metadata[folder]
        step = steps.get(file.name, step_from_name(file))
        if step is None:
            raise DefcheckError(
                f"cannot tell the training step of {file}: put it in the file name (step-800.pt) or in "
                f"{folder / METADATA_NAME} ('files': {{'{file.name}': STEP}})"
            )
        out.append(Checkpoint(step, str(file), None, metrics.get(step, {}), _file_identity(file)))
    return out


def _file_identity(file: Path) -> dict[str, Any]:
    """Size and modification time of the checkpoint and of each config file the loader may read for it."""
    beside = [file.with_suffix(suffix) for suffix in (".json", ".yaml", ".yml")]
    candidates = [file, *beside, *(file.parent / name for name in CONFIG_NAMES)]
    identity = {}
    for candidate in candidates:
        with contextlib.suppress(OSError):
            stat = candidate.stat()
            identity[candidate.name] = [stat.st_size, stat.st_mtime_ns]
    return identity


# -- the tasks ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOptions:
    """How every checkpoint is evaluated: the same for all tasks of a sweep.

    ``definition_paths`` are absolute; ``cwd`` is the driver's working directory, where a worker runs its
    task, so that reports name concept files and checkpoints as they would from the driver. ``threads`` is
    torch's thread count per task (fixed, so that every executor computes with the same kernels).
    """

    seed: int = 0
    selection: tuple[str, ...] = ()
    definition_paths: tuple[str, ...] = ()
    include_builtin: bool = True
    plugin_modules: tuple[str, ...] = ()
    device: str = "cpu"
    batch_size: int | None = None
    bos_token_id: int | None = None
    token_ids: str | None = None
    model_config: str | None = None
    threads: int = 1
    cwd: str = field(default_factory=os.getcwd)


@dataclass(frozen=True)
class Task:
    """One checkpoint to evaluate, with the options and the key its report is stored under."""

    checkpoint: Checkpoint
    options: SweepOptions
    key: str


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: the report's JSON text, or the error (one sentence), and the seconds taken."""

    step: int
    report: str | None
    error: str | None
    seconds: float


_WORKER_STATE: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _state_key(options: SweepOptions) -> tuple[Any, ...]:
    return (options.plugin_modules, options.definition_paths, options.include_builtin, options.cwd)


def prime_worker(options: SweepOptions, extensions: Any, registry: Any) -> None:
    """Hand this process's loaded plugins and registry to in-process tasks (saves loading them again)."""
    _WORKER_STATE[_state_key(options)] = (extensions, registry)


def _worker_state(options: SweepOptions) -> tuple[Any, Any]:
    key = _state_key(options)
    if key not in _WORKER_STATE:
        from defcheck.hooks.manager import load_plugins
        from defcheck.language.registry import load_registry

        extensions = load_plugins(modules=options.plugin_modules)
        registry = load_registry(
            [Path(p) for p in options.definition_paths], extensions, include_builtin=options.include_builtin
        )
        if registry.errors:
            raise DefcheckError(f"the definitions have {len(registry.errors)} error(s): {registry.errors[0]}")
        _WORKER_STATE[key] = (extensions, registry)
    return _WORKER_STATE[key]


@contextlib.contextmanager
def _in_directory(path: str) -> Iterator[None]:
    previous = os.getcwd()
    moved = False
    if path != previous and os.path.isdir(path):
        os.chdir(path)
        moved = True
    try:
        yield
    finally:
        if moved:
            os.chdir(previous)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_checkpoint(checkpoint: Checkpoint, options: SweepOptions, extensions: Any) -> Any:
    """The :class:`~defcheck.models.view.ModelView` of one checkpoint."""
    loader_options = {
        "device": options.device,
        "model_config": options.model_config,
        "bos_token_id": options.bos_token_id,
        "token_ids": options.token_ids,
    }
    from defcheck.models.loading import load_model

    return load_model(checkpoint.reference, extensions, checkpoint_index=checkpoint.checkpoint_index, **loader_options)


def run_checkpoint(task: Task) -> TaskResult:
    """Evaluate one checkpoint (in whatever process the executor chose) and return its report as JSON.

    Errors come back as data (``TaskResult.error``), so that every executor reports them alike.
    """
    started = time.perf_counter()
    checkpoint, options = task.checkpoint, task.options
    try:
        with _in_directory(options.cwd), _torch_threads(options.threads):
            from defcheck.engine.runner import evaluate
            from defcheck.report import Report

            extensions, registry = _worker_state(options)
            view = load_checkpoint(checkpoint, options, extensions)
            result = evaluate(
                view,
                registry,
                extensions,
                seed=options.seed,
                batch_size=options.batch_size,
                definitions=list(options.selection) or None,
            )
            report = Report.build(result, registry, {"reference": checkpoint.reference})
            report.data["sweep"] = canonical(
                {
                    "key": task.key,
                    "step": checkpoint.step,
                    "checkpoint_index": checkpoint.checkpoint_index,
                    "metrics": dict(checkpoint.metrics),
                }
            )
            text = report.to_json()
    except Exception as error:
        return TaskResult(checkpoint.step, None, error_line(error), time.perf_counter() - started)
    return TaskResult(checkpoint.step, text, None, time.perf_counter() - started)


# -- keys and validity ----------------------------------------------------------------------------------


def selected_concepts(registry: Any, selection: Sequence[str]) -> list[str]:
    """The concepts whose definitions a run with ``selection`` evaluates (``with:`` targets included)."""
    known = registry.definition_ids()
    wanted = [d for d in known if not selection or d in selection or d.partition(".")[0] in selection]
    missing = [w for w in selection if w not in known and not any(d.startswith(f"{w}.") for d in known)]
    if missing:
        raise DefcheckError(f"unknown concept or definition: {', '.join(missing)}")
    seen: set[str] = set()
    while wanted:
        current = wanted.pop()
        if current in seen:
            continue
        seen.add(current)
        concept = current.partition(".")[0]
        _, definition = registry.definition(current)
        for criterion in definition.criteria:
            wanted += [target if "." in target else f"{concept}.{target}" for target in criterion.with_ or []]
    return sorted({definition_id.partition(".")[0] for definition_id in seen})


def definitions_fingerprint(registry: Any, extensions: Any, selection: Sequence[str]) -> dict[str, Any]:
    """What decides the definitions' side of a report: the text of every concept file evaluated (by its
    label), the selection, and the versions of defcheck and of the installed plugins."""
    files = {}
    for concept in selected_concepts(registry, selection):
        file = registry.files[concept]
        try:
            digest = hashlib.sha256(Path(file.path).read_bytes()).hexdigest()
        except OSError:
            dumped = json.dumps(file.concept.model_dump(mode="json"), sort_keys=True)
            digest = hashlib.sha256(dumped.encode()).hexdigest()
        files[file.label] = digest
    plugins = sorted(f"{info.name} {info.distribution or ''}".strip() for info in extensions.plugins if not info.error)
    return {
        "defcheck": __version__,
        "report_version": REPORT_VERSION,
        "plugins": plugins,
        "concept_files": files,
        "selection": sorted(selection),
    }


def task_key(checkpoint: Checkpoint, options: SweepOptions, fingerprint: Mapping[str, Any]) -> str:
    """A hash of everything that decides a checkpoint's report: the checkpoint (reference, index, step and
    the identity of its files), the definitions' fingerprint, the seed, and the options that reach the model
    (device, batch size, token overrides, model config, threads)."""
    model_config = None
    if options.model_config:
        with contextlib.suppress(OSError):
            stat = Path(options.cwd, options.model_config).stat()
            model_config = [options.model_config, stat.st_size, stat.st_mtime_ns]
    document = {
        "checkpoint": {
            "reference": checkpoint.reference,
            "index": checkpoint.checkpoint_index,
            "step": checkpoint.step,
            "identity": dict(checkpoint.identity),
            "metrics": dict(checkpoint.metrics),
        },
        "definitions": dict(fingerprint),
        "seed": options.seed,
        "options": {
            "device": options.device,
            "batch_size": options.batch_size,
            "bos_token_id": options.bos_token_id,
            "token_ids": options.token_ids,
            "model_config": model_config,
            "threads": options.threads,
        },
    }
    text = json.dumps(canonical(document), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def report_name(step: int) -> str:
    """The file name of a checkpoint's report: ``step-000800.json``."""
    return f"step-{step:06d}.json"


def read_valid_report(path: Path, key: str) -> dict[str, Any] | None:
    """The report at ``path`` if it is valid for ``key``, else ``None`` (missing, unreadable, truncated, of
    another ``report_version``, of another key, or with a definition that errored)."""
    from defcheck.report import Report

    try:
        data = Report.from_json(path.read_bytes()).data
    except (OSError, DefcheckError):
        return None
    sweep = data.get("sweep")
    if not isinstance(sweep, dict) or sweep.get("key") != key:
        return None
    for concept in data["concepts"].values():
        if any(definition.get("status") == "errored" for definition in concept.get("definitions", {}).values()):
            return None
    return data


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` so that ``path`` never holds half of it: a temporary file in the same
    folder, flushed to disk, then renamed over ``path`` (``os.replace`` is atomic on one file system)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files an interrupted writer left behind (never a report: those are renamed whole)."""
    for stale in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


# -- the sweep --------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did: the summary, which steps ran, were skipped (valid report found) or failed (with the
    error), where it wrote, and how long it took (seconds; not in the summary)."""

    summary: dict[str, Any]
    ran: list[int]
    skipped: list[int]
    failed: dict[int, str]
    out: Path
    files: list[Path]
    seconds: float


def run_sweep(
    series: Series,
    options: SweepOptions,
    out: Path,
    *,
    executor: Executor | None = None,
    resume: bool = True,
    plots: bool = True,
    progress: Progress | None = None,
    on_result: Callable[[Checkpoint, str, str | None], None] | None = None,
    extensions: Any = None,
    registry: Any = None,
) -> SweepResult:
    """Evaluate every checkpoint of ``series`` not already reported in ``out/reports``, then write
    ``out/summary.json``, the plots (``out/plots/CONCEPT.png``, with matplotlib) and ``out/summary.html``.

    ``resume=False`` re-runs every checkpoint. ``on_result(checkpoint, status, error)`` is called for every
    checkpoint as it is settled, with ``status`` ``"ok"``, ``"skipped"`` (a valid report exists) or
    ``"failed"`` (then ``error`` says why). One failing checkpoint does not stop the others; its error is in
    ``SweepResult.failed`` and in the summary.
    """
    started = time.perf_counter()
    if extensions is None or registry is None:
        extensions, registry = _worker_state(options)
    if registry.errors:
        raise DefcheckError(f"the definitions have {len(registry.errors)} error(s); nothing was run")
    prime_worker(options, extensions, registry)
    fingerprint = definitions_fingerprint(registry, extensions, options.selection)
    reports_dir = out / "reports"
    try:
        reports_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DefcheckError(f"cannot write to {out}: {error.strerror or error}") from None
    _remove_stale_temporaries(reports_dir)
    keys = {c.step: task_key(c, options, fingerprint) for c in series.checkpoints}
    reports: dict[int, dict[str, Any]] = {}
    tasks: list[Task] = []
    skipped: list[int] = []
    for checkpoint in series.checkpoints:
        existing = read_valid_report(reports_dir / report_name(checkpoint.step), keys[checkpoint.step])
        if resume and existing is not None:
            reports[checkpoint.step] = existing
            skipped.append(checkpoint.step)
            if on_result:
                on_result(checkpoint, "skipped", None)
        else:
            tasks.append(Task(checkpoint, options, keys[checkpoint.step]))
    failed: dict[int, str] = {}
    ran: list[int] = []
    total = len(series.checkpoints)
    if progress:
        progress("", len(skipped), total)
    executor = executor or SequentialExecutor()
    for outcome in executor.run(run_checkpoint, tasks):
        task = tasks[outcome.index]
        step = task.checkpoint.step
        result = outcome.value
        error = outcome.error if result is None else result.error
        if result is not None and result.report is not None:
            atomic_write(reports_dir / report_name(step), result.report)
            reports[step] = json.loads(result.report)
            ran.append(step)
        else:
            failed[step] = error or "the task returned nothing"
        if on_result:
            on_result(task.checkpoint, "failed" if step in failed else "ok", failed.get(step))
        if progress:
            progress(f"step {step}", len(skipped) + len(ran) + len(failed), total)
    summary = build_summary(series, reports, failed)
    files = write_outputs(summary, out, plots=plots)
    return SweepResult(summary, sorted(ran), skipped, failed, out, files, time.perf_counter() - started)


def write_outputs(summary: Mapping[str, Any], out: Path, *, plots: bool = True) -> list[Path]:
    """``summary.json``, the plots (when matplotlib is installed and ``plots``) and ``summary.html``."""
    written = [out / "summary.json"]
    atomic_write(written[0], summary_json(summary))
    images: dict[str, Path] = {}
    if plots:
        from defcheck.sweep.plots import matplotlib_missing, plot_sweep

        if matplotlib_missing() is None:
            images = plot_sweep(summary, out / "plots")
            written += list(images.values())
    from defcheck.sweep.html import render_sweep_html

    page = out / "summary.html"
    atomic_write(page, render_sweep_html(summary, {name: path.read_bytes() for name, path in images.items()}))
    written.append(page)
    return written


# -- the summary ------------------------------------------------------------------------------------------


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary's JSON text: canonical (as a report's: rounded floats, keys in natural order), indented,
    with each list of numbers or of unit lists, and each object of plain values, on one line, so that a
    series against step reads as one."""

    def scalar(value: Any) -> bool:
        return not isinstance(value, (dict, list))

    def flat(value: Any) -> bool:
        if isinstance(value, list):
            return all(scalar(item) for item in value)
        return scalar(value)

    def write(value: Any, depth: int) -> str:
        pad, inner = "  " * depth, "  " * (depth + 1)
        if isinstance(value, dict) and not all(scalar(item) for item in value.values()):
            if not value:
                return "{}"
            items = [
                f"{inner}{json.dumps(key, ensure_ascii=False)}: {write(item, depth + 1)}" for key, item in value.items()
            ]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and not all(flat(item) for item in value):
            return "[\n" + ",\n".join(f"{inner}{write(item, depth + 1)}" for item in value) + f"\n{pad}]"
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    return write(canonical(dict(summary)), 0) + "\n"


def _first(steps: list[int], flags: list[bool | None]) -> tuple[int | None, int | None, int | None]:
    """The first step where ``flags`` is true, the step of the checkpoint before it, and the first step
    from which it is true at every later checkpoint that has a value."""
    first = next((i for i, flag in enumerate(flags) if flag), None)
    stable = None
    for i in range(len(flags) - 1, -1, -1):
        if flags[i] is None:
            continue
        if not flags[i]:
            break
        stable = i
    return (
        steps[first] if first is not None else None,
        steps[first - 1] if first is not None and first > 0 else None,
        steps[stable] if stable is not None else None,
    )


def build_summary(
    series: Series, reports: Mapping[int, Mapping[str, Any]], failed: Mapping[int, str]
) -> dict[str, Any]:
    """The summary document (docs/sweep.md) from the checkpoints' reports (by step) and the failures.

    Every series is a list aligned with ``steps``; ``null`` where the checkpoint failed, the definition did
    not give a value, or (for metrics) the checkpoint carries none.
    """
    steps = series.steps
    checkpoints = []
    for checkpoint in series.checkpoints:
        step = checkpoint.step
        status = "ok" if step in reports else "failed"
        checkpoints.append(
            {
                "step": step,
                "reference": checkpoint.reference,
                "checkpoint_index": checkpoint.checkpoint_index,
                "report": f"reports/{report_name(step)}" if step in reports else None,
                "status": status,
                "error": failed.get(step) if status == "failed" else None,
            }
        )
    metric_names = sorted({name for c in series.checkpoints for name in c.metrics}, key=natural_key)
    metrics = {name: [c.metrics.get(name) for c in series.checkpoints] for name in metric_names}
    definitions: dict[str, dict[str, Any]] = {}
    concepts: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for position, step in enumerate(steps):
        data = reports.get(step)
        if data is None:
            continue
        for concept_name, reason in (data.get("skipped") or {}).items():
            skipped.setdefault(concept_name, reason)
        for concept_name, concept in data["concepts"].items():
            entry = concepts.setdefault(concept_name, _empty_concept(concept, len(steps)))
            overlap = concept.get("overlap")
            if overlap is not None:
                entry["jaccard"][position] = overlap.get("jaccard")
                for key in ("both", "behavioral_only", "mechanistic_only"):
                    entry[key][position] = len(overlap[key])
                entry["neither"][position] = overlap.get("neither_count")
            elif entry["note"] is None:
                entry["note"] = concept.get("note")
            for name, definition in concept["definitions"].items():
                definition_id = f"{concept_name}.{name}"
                if definition_id not in definitions:
                    definitions[definition_id] = _empty_definition(concept_name, name, definition, len(steps))
                record = definitions[definition_id]
                _add_definition(record, definition, concept.get("units") or [], position, len(steps))
    for record in definitions.values():
        flags = [None if members is None else bool(members) for members in record["members"]]
        record["first_step"], _, record["stable_from"] = _first(steps, flags)
        first = record["first_step"]
        record["first_members"] = record["members"][steps.index(first)] if first is not None else []
    for concept_name, entry in concepts.items():
        ids = [d for d, record in definitions.items() if record["concept"] == concept_name]
        for kind in ("behavioral", "mechanistic"):
            entry[kind] = sorted(definitions[d]["definition"] for d in ids if definitions[d]["kind"] == kind)
            unions = []
            for position in range(len(steps)):
                usable = [
                    definitions[d]["members"][position]
                    for d in ids
                    if definitions[d]["kind"] == kind and definitions[d]["status"][position] == "ok"
                ]
                unions.append(None if steps[position] not in reports else any(bool(m) for m in usable))
            first, before, stable = _first(steps, unions)
            entry["first_step"][kind] = first
            entry["step_before"][kind] = before
            entry["stable_from"][kind] = stable
        entry["answer"] = concept_answer(concept_name, entry, definitions, series.step_unit)
    summary = {
        "summary_version": SUMMARY_VERSION,
        "source": series.source,
        "seed": _seed(reports),
        "step_unit": series.step_unit,
        "steps": steps,
        "checkpoints": checkpoints,
        "metrics": metrics,
        "definitions": definitions,
        "concepts": concepts,
        "skipped": skipped,
    }
    summary["summary"] = summary_text(summary)
    return canonical(summary)


def _seed(reports: Mapping[int, Mapping[str, Any]]) -> int | None:
    seeds = {data.get("seed") for data in reports.values()}
    return seeds.pop() if len(seeds) == 1 else None


def _empty_concept(concept: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {
        "unit": concept.get("unit"),
        "behavioral": [],
        "mechanistic": [],
        "jaccard": [None] * n,
        "both": [None] * n,
        "behavioral_only": [None] * n,
        "mechanistic_only": [None] * n,
        "neither": [None] * n,
        "first_step": {},
        "step_before": {},
        "stable_from": {},
        "note": None,
        "answer": "",
    }


def _empty_definition(concept: str, name: str, definition: Mapping[str, Any], n: int) -> dict[str, Any]:
    criteria = definition.get("criteria") or [{}]
    return {
        "concept": concept,
        "definition": name,
        "kind": definition.get("kind"),
        "score": criteria[0].get("checker"),
        "threshold": criteria[0].get("threshold"),
        "status": [None] * n,
        "members": [None] * n,
        "member_count": [None] * n,
        "no_score": [None] * n,
        "units": {},
        "first_step": None,
        "first_members": [],
        "stable_from": None,
    }


def _add_definition(
    record: dict[str, Any], definition: Mapping[str, Any], units: Sequence[str], position: int, n: int
) -> None:
    record["status"][position] = definition.get("status")
    members = definition.get("members")
    record["members"][position] = list(members) if members is not None else None
    record["member_count"][position] = len(members) if members is not None else None
    scores = definition.get("scores") or {}
    record["no_score"][position] = _no_score(definition)
    admitted = set(members or [])
    for unit in dict.fromkeys([*units, *scores, *sorted(admitted, key=natural_key)]):
        series = record["units"].setdefault(unit, {"score": [None] * n, "member": [None] * n})
        series["score"][position] = scores.get(unit)
        series["member"][position] = None if members is None else unit in admitted


def _no_score(definition: Mapping[str, Any]) -> str | None:
    """Why no unit has a primary score at this checkpoint (errored, not applicable, all undefined), or None."""
    status = definition.get("status")
    if status == "errored":
        return f"errored: {definition.get('error')}"
    if status == "not_applicable":
        return f"not applicable: {definition.get('not_applicable')}"
    scores = definition.get("scores") or {}
    if any(value is not None for value in scores.values()):
        return None
    reasons = sorted((definition.get("undefined") or {}).values())
    return f"undefined: {reasons[0]}" if reasons else "no score"


def _units_text(members: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(members[:limit])
    return shown + (f" and {len(members) - limit} more" if len(members) > limit else "")


def concept_answer(name: str, entry: Mapping[str, Any], definitions: Mapping[str, Any], unit: str = "step") -> str:
    """One paragraph: at which step each kind of definition first admits a unit, and whether that is the
    same step; with the checkpoint before it (the resolution of the answer) and which definitions did it."""

    def firsts(kind: str) -> str:
        parts = []
        for record in definitions.values():
            if record["concept"] == name and record["kind"] == kind and record["first_step"] is not None:
                parts.append(
                    f"{record['definition']} at {record['first_step']}: {_units_text(record['first_members'])}"
                )
        return "; ".join(parts)

    kinds = [kind for kind in ("behavioral", "mechanistic") if entry[kind]]
    if not kinds:
        return f"{name}: no definition was evaluated."
    if len(kinds) == 1:
        kind = kinds[0]
        first = entry["first_step"][kind]
        if first is None:
            return f"{name}: only {kind} definitions were evaluated, and they admit no unit at any checkpoint."
        return (
            f"{name}: only {kind} definitions were evaluated; they first admit a unit at {unit} {first} "
            f"({firsts(kind)})."
        )
    b, m = entry["first_step"]["behavioral"], entry["first_step"]["mechanistic"]

    def where(kind: str) -> str:
        before = entry["step_before"][kind]
        text = f"{unit} {entry['first_step'][kind]}"
        if before is None:
            return text + " (the first checkpoint)"
        return text + f" (none at {before}, the checkpoint before)"

    if b is None and m is None:
        return f"{name}: neither the behavioral nor the mechanistic definitions admit a unit at any checkpoint."
    if m is None:
        return (
            f"{name}: the behavioral definitions first admit a unit at {where('behavioral')}; the mechanistic "
            f"ones admit none at any checkpoint. Behavioral: {firsts('behavioral')}."
        )
    if b is None:
        return (
            f"{name}: the mechanistic definitions first admit a unit at {where('mechanistic')}; the behavioral "
            f"ones admit none at any checkpoint. Mechanistic: {firsts('mechanistic')}."
        )
    if b == m:
        verdict = "the behavioral and the mechanistic definitions first admit a unit at the same checkpoint, " + where(
            "behavioral"
        )
    else:
        early, late = ("behavioral", "mechanistic") if b < m else ("mechanistic", "behavioral")
        verdict = (
            f"not at the same {unit}: the {early} definitions first admit a unit at {where(early)}, the {late} "
            f"ones at {where(late)}, {abs(m - b)} {unit}s later"
        )
    return f"{name}: {verdict}. Behavioral: {firsts('behavioral')}. Mechanistic: {firsts('mechanistic')}."


def steepest_fall(steps: Sequence[int], values: Sequence[float | None]) -> int | None:
    """The index ``i`` of the interval ``steps[i]..steps[i + 1]`` over which ``values`` fall fastest per step
    (the checkpoints need not be evenly spaced), or ``None`` where they never fall."""
    rates = [
        ((values[i] - values[i + 1]) / (steps[i + 1] - steps[i]), i)
        for i in range(len(values) - 1)
        if values[i] is not None and values[i + 1] is not None and steps[i + 1] > steps[i]
    ]
    if not rates or max(rates)[0] <= 0:
        return None
    return max(rates)[1]


def summary_text(summary: Mapping[str, Any]) -> str:
    """The summary's text: the checkpoints, each concept's answer, and where each metric falls fastest."""
    steps = summary["steps"]
    failed = [c["step"] for c in summary["checkpoints"] if c["status"] == "failed"]
    unit = summary["step_unit"]
    head = f"{len(steps)} checkpoints ({unit}s {', '.join(map(str, steps))})"
    if failed:
        head += f"; {len(failed)} failed ({', '.join(map(str, failed))})"
    lines = [head + "."]
    lines += [summary["concepts"][name]["answer"] for name in summary["concepts"]]
    lines += [f"{name}: not evaluated: {reason}." for name, reason in summary.get("skipped", {}).items()]
    for name, values in summary["metrics"].items():
        i = steepest_fall(steps, values)
        if i is not None:
            lines.append(
                f"{name} falls fastest (per {unit}) between {unit}s {steps[i]} and {steps[i + 1]} "
                f"({values[i]:.3g} to {values[i + 1]:.3g})."
            )
    return "\n".join(lines)
