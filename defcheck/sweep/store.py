"""The store of a sweep's reports: their names, the key that says whether a report on disk is still valid, and
atomic writes (:func:`defcheck.files.atomic_write`: a temporary file, fsync, ``os.replace``), so an interrupted
sweep never leaves half a report.

A report already on disk is kept when it is *valid*: it parses as a report of the current ``report_version`` and
its ``sweep.key`` equals the task's key, a hash of everything that decides its content (see :func:`task_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from defcheck._version import __version__
from defcheck.diagnostics import DefcheckError
from defcheck.files import MAX_REPORT_BYTES, FileProblem, read_regular_file
from defcheck.files import atomic_write as atomic_write  # the sweep's writer is the one every command uses
from defcheck.report.json import REPORT_VERSION, canonical

if TYPE_CHECKING:
    from defcheck.language.registry import Registry
    from defcheck.session import Session
    from defcheck.sweep.series import Checkpoint
    from defcheck.sweep.tasks import SweepOptions


def selected_concepts(registry: Registry, selection: Sequence[str]) -> list[str]:
    """The concepts whose definitions a run with ``selection`` evaluates (``with:`` targets included): the
    runner's rule, as :meth:`defcheck.session.Session.selected_concepts` applies it (kept from 0.1)."""
    from defcheck.engine.scheduling import selected

    return sorted({definition_id.partition(".")[0] for definition_id in selected(registry, list(selection) or None)})


def definitions_fingerprint(session: Session) -> dict[str, Any]:
    """What decides the definitions' side of a report: the text of every concept file evaluated (by its
    label), the selection, and the versions of defcheck and of the installed plugins."""
    registry, extensions = session.registry, session.extensions
    selection = session.selection() or []
    files = {}
    for concept in session.selected_concepts():
        file = registry.files[concept]
        for part in (file, *file.parts):  # a built-in concept and the user's files that extend it
            try:
                digest = hashlib.sha256(Path(part.path).read_bytes()).hexdigest()
            except OSError:
                dumped = json.dumps(part.concept.model_dump(mode="json"), sort_keys=True)
                digest = hashlib.sha256(dumped.encode()).hexdigest()
            files[part.label] = digest
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
    the identity of its files), the definitions' fingerprint, the seed (and seeds), and the options that reach the model
    (device, batch size, token overrides, model config, threads)."""
    config = options.config
    model_config = None
    if config.model_config:
        with contextlib.suppress(OSError):
            stat = Path(options.cwd, config.model_config).stat()
            model_config = [config.model_config, stat.st_size, stat.st_mtime_ns]
    document = {
        "checkpoint": {
            "reference": checkpoint.reference,
            "index": checkpoint.checkpoint_index,
            "step": checkpoint.step,
            "identity": dict(checkpoint.identity),
            "metrics": dict(checkpoint.metrics),
        },
        "definitions": dict(fingerprint),
        "seed": config.seed,
        "options": {
            "device": config.device,
            "batch_size": config.batch_size,
            "bos_token_id": config.bos_token_id,
            "token_ids": config.token_ids,
            "model_config": model_config,
            "threads": options.threads,
        },
    }
    if config.seeds > 1:  # --seeds K: only then, so that the keys of one-seed sweeps stay as they were
        document["seeds"] = config.seeds
    if config.bootstrap:  # likewise
        document["bootstrap"] = config.bootstrap
    text = json.dumps(canonical(document), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def report_name(step: int) -> str:
    """The file name of a checkpoint's report: ``step-000800.json``."""
    return f"step-{step:06d}.json"


def read_valid_report(path: Path, key: str) -> dict[str, Any] | None:
    """The report at ``path`` if it is valid for ``key``, else ``None`` (missing, unreadable, truncated, damaged,
    of another ``report_version``, of another key, or with a definition that errored)."""
    return read_report(path, key)[0]


def read_report(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(report, None)`` if the report at ``path`` is valid for ``key``; else ``(None, why)`` when a file is
    there but damaged (not JSON, or not a report: ``why`` says where), or ``(None, None)`` when it is missing or
    simply out of date (another key or ``report_version``, or a definition that errored). Either way the
    checkpoint is run again; nothing here raises."""
    from defcheck.report import Report
    from defcheck.report.json import REPORT_VERSION

    if not path.exists():
        return None, None
    try:  # a regular file only, read with a limit: a FIFO or a huge file there is damage, and run again
        raw = read_regular_file(path, MAX_REPORT_BYTES, "the report")
    except FileProblem as error:
        return None, str(error)
    try:
        data: dict[str, Any] = dict(Report.from_json(raw).data)
    except DefcheckError as error:
        if f"reads report_version {REPORT_VERSION}" in str(error):
            return None, None  # written by another defcheck: out of date, not damaged
        return None, str(error)
    except Exception as error:  # the reader's own bug must not stop a sweep: the checkpoint is re-run
        return None, f"{type(error).__name__}: {error}"
    sweep = data.get("sweep")
    if not isinstance(sweep, dict) or sweep.get("key") != key:
        return None, None
    for concept in data["concepts"].values():
        if any(definition.get("status") == "errored" for definition in concept.get("definitions", {}).values()):
            return None, None
    return data, None


def remove_stale_temporaries(folder: Path) -> None:
    """Temporary files an interrupted writer left behind (never a report: those are renamed whole)."""
    for stale in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


# -- the sweep --------------------------------------------------------------------------------------------
