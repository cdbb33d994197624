"""What to sweep: :func:`find_checkpoints` turns what the user names into a :class:`Series` of checkpoints.

A source is a model loader's series (``builtin:NAME@*``: every snapshot the loader lists, or ``tl:NAME`` with
``--checkpoint-index``: the loader's ``checkpoints`` declaration says which there are), a folder or a glob of
checkpoint files (the step from a ``checkpoints.json`` beside them, or from the file name), or one file.
"""

from __future__ import annotations

import contextlib
import glob
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from defcheck.diagnostics import DefcheckError, display_path, short_repr
from defcheck.files import read_regular_text
from defcheck.language.thresholds import finite

if TYPE_CHECKING:
    from defcheck.hooks.manager import Extensions

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")  # what the checkpoint loader reads
CONFIG_NAMES = ("config.json", "config.yaml", "config.yml")  # where it looks for a folder's config
METADATA_NAME = "checkpoints.json"  # a folder's steps and metrics, written by scripts/train_toy_models.py
MAX_METADATA_BYTES = 16 * 2**20
GLOB_CHARACTERS = re.compile(r"[*?\[]")
EVERY = "@*"  # REFERENCE@*: every checkpoint its loader lists
MAX_STEP = 2**53  # steps are plotted as floats: larger ones would lose their identity (and overflow NumPy)


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
    extensions: Extensions | None = None,
) -> Series:
    """The series that ``sources`` name, restricted to ``steps`` if given.

    Each source is ``PREFIX:NAME@*`` (every checkpoint the model loader ``PREFIX`` lists for ``PREFIX:NAME``,
    e.g. ``builtin:toy-induction@*``), ``PREFIX:NAME`` with ``checkpoint_index`` (those indices into the list,
    e.g. TransformerLens's for ``tl:NAME``), a folder of checkpoint files, a glob of them (quoted, so the shell
    does not expand it; if it did, each file arrives as its own source), or one file. ``extensions`` holds the
    model loaders (default: every installed plugin). Raises :class:`DefcheckError` with one sentence for a
    source that names nothing.
    """
    items = [sources] if isinstance(sources, str) else list(sources)
    if not items:
        raise DefcheckError("name the checkpoints: --checkpoints FOLDER, a quoted glob, builtin:NAME@* or tl:NAME")
    indices = _ints(checkpoint_index, "--checkpoint-index")
    loaders = _loader_names(items, extensions)
    listed = [item for item in items if item.partition(":")[0] in loaders]
    if indices is not None and (len(items) != 1 or not listed or items[0].endswith(EVERY)):
        raise DefcheckError("--checkpoint-index goes with one model's series: --checkpoints tl:NAME")
    for item in listed:
        if indices is None and not item.endswith(EVERY):
            raise DefcheckError(
                f"'{item}' is one model: sweep every checkpoint its loader lists with {item}{EVERY}, or say which "
                "with --checkpoint-index, e.g. 0,10,20"
            )
    unit = "step"
    found: list[Checkpoint] = []
    for item in items:
        if item in listed:
            more, unit = _loader_series(item.removesuffix(EVERY), indices, extensions)
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


def _loader_names(items: Sequence[str], extensions: Extensions | None) -> set[str]:
    """The names of the installed model loaders, when a source has a ``PREFIX:`` (else none are loaded)."""
    if not any(":" in item and not Path(item).exists() for item in items):
        return set()
    return set(_extensions(extensions).model_loaders)


def _extensions(extensions: Extensions | None) -> Extensions:
    if extensions is None:
        from defcheck.hooks.manager import load_plugins

        return load_plugins()
    return extensions


def _loader_series(
    reference: str, indices: list[int] | None, extensions: Extensions | None
) -> tuple[list[Checkpoint], str]:
    """The checkpoints of ``reference`` that its loader's ``checkpoints`` lists (all, or those ``indices``).

    A listed item is a step (the checkpoint is then loaded as ``reference`` with ``checkpoint_index``) or a
    mapping with ``step`` and, optionally, its own ``reference``, ``metrics`` and ``identity``."""
    from defcheck.models.loading import pick_loader

    loader = pick_loader(reference, _extensions(extensions))
    if loader.checkpoints is None:
        raise DefcheckError(f"the model loader '{loader.name}' lists no training checkpoints of {reference}")
    labels, unit = loader.checkpoints(reference)
    chosen = range(len(labels)) if indices is None else indices
    out = []
    for index in chosen:
        if not -len(labels) <= index < len(labels):
            raise DefcheckError(
                f"{reference} has {len(labels)} checkpoints: --checkpoint-index must be in 0..{len(labels) - 1}"
            )
        index = index % len(labels)
        label = labels[index]
        where = f"the model loader '{loader.name}': checkpoint {index} of {reference}"
        if isinstance(label, Mapping):
            metrics = {
                str(k): checked_metric(v, f"{where}: metric {k!r}") for k, v in (label.get("metrics") or {}).items()
            }
            identity = dict(label.get("identity") or {"reference": reference, "index": index})
            step = checked_step(label.get("step"), f"{where}: its step")
            if "reference" in label:
                out.append(Checkpoint(step, str(label["reference"]), None, metrics, identity))
            else:
                out.append(Checkpoint(step, reference, index, metrics, identity))
        else:
            step = checked_step(label, f"{where}: its step")
            out.append(Checkpoint(step, reference, index, {}, {"pretrained": reference, "index": index}))
    return out, unit


def read_metadata(text: str, shown: str) -> tuple[dict[int, dict[str, float]], dict[str, int]]:
    """``{"metrics": {STEP: {NAME: number}}, "files": {FILE: STEP}}`` (both optional; docs/sweep.md). A step is an
    integer from 0 to 2**53, a metric a finite number; anything else is refused with its place in the file."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise DefcheckError(f"{shown} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise DefcheckError(f"{shown} must hold an object with 'metrics' and/or 'files'")
    metrics: dict[int, dict[str, float]] = {}
    listed, files = data.get("metrics") or {}, data.get("files") or {}
    if not isinstance(listed, dict) or not isinstance(files, dict):
        raise DefcheckError(f"{shown}: 'metrics' must map steps to {{name: number}} and 'files' file names to steps")
    for key, values in listed.items():
        step = checked_step(key, f"{shown}: metrics[{json.dumps(key)}]: the key")
        if not isinstance(values, dict):
            raise DefcheckError(f'{shown}: metrics[{json.dumps(key)}] must map names to numbers, e.g. {{"loss": 2.5}}')
        metrics[step] = {
            str(name): checked_metric(value, f"{shown}: metrics[{json.dumps(key)}][{json.dumps(name)}]")
            for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
    steps = {str(name): checked_step(step, f"{shown}: files[{json.dumps(name)}]") for name, step in files.items()}
    return metrics, steps


def checked_step(value: Any, where: str) -> int:
    """``value`` as a training step (an integer from 0 to :data:`MAX_STEP`; a JSON key may be its digits), or a
    :class:`DefcheckError` that says ``where``."""
    step = value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 20:
        step = int(value)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise DefcheckError(f"{where} must be a training step, an integer from 0 to 2**53; got {short_repr(value)}")
    return step


def checked_metric(value: Any, where: str) -> float:
    """``value`` (a number) as a finite float, or a :class:`DefcheckError` that says ``where``."""
    try:
        return finite(value, where)
    except ValueError as error:
        raise DefcheckError(str(error)) from None


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
            if sidecar.exists():  # a regular file only (a FIFO would block), at most MAX_METADATA_BYTES
                text = read_regular_text(sidecar, MAX_METADATA_BYTES, "the checkpoint metadata")
                metadata[folder] = read_metadata(text, display_path(sidecar))
        metrics, steps = metadata[folder]
        step = steps.get(file.name, step_from_name(file))
        if step is not None and file.name not in steps:
            step = checked_step(step, f"{display_path(file)}: the step in its file name")
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
