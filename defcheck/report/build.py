"""Building the report document from a run: every definition's and criterion's results by unit address, each
concept's overlap (never ``null``: an empty one with its ``reason`` when the kinds were not compared), its unit
nouns (from its unit kind) and the concept file's text. The document's shape is :mod:`defcheck.report.document`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from defcheck.engine.bootstrap import overlap_entry
from defcheck.engine.overlap import analyze, unit_names
from defcheck.engine.probe_data import ProbeBatch
from defcheck.engine.results import CriterionResult, DefinitionResult, RunResult, definition_status
from defcheck.engine.scores import Scores
from defcheck.engine.stability import annotate, definition_entry, margins_entry, spread_entry
from defcheck.report.document import (
    ConceptEntry,
    CriterionEntry,
    DefinitionEntry,
    GridEntry,
    ModelEntry,
    OverlapBootstrap,
    OverlapEntry,
    OverlapStability,
    ProbeEntry,
    ReportDocument,
    StabilityEntry,
    Threshold,
)
from defcheck.report.json import REPORT_VERSION, canonical, round_float

if TYPE_CHECKING:
    from defcheck.language.concept_file import ConceptFile
    from defcheck.language.registry import Registry
    from defcheck.language.schema import Criterion, Definition

NO_REASON = "the checker gave no reason"


def build_data(
    run: RunResult, registry: Registry | None = None, model_info: Mapping[str, Any] | None = None
) -> ReportDocument:
    """The JSON document of ``run`` (canonical: rounded floats, sorted keys). ``registry`` supplies each
    concept's text (summary, references, sources, params) and says which definitions were not selected."""
    analysis = analyze(run, registry)
    stable = annotate(analysis, run, registry) if run.stability is not None else {}  # --seeds K: narratives too
    grouped: dict[str, dict[str, DefinitionResult]] = {}
    for definition_id, result in run.definitions.items():
        concept, _, name = definition_id.partition(".")
        grouped.setdefault(concept, {})[name] = result
    files = registry.files if registry is not None else {}
    notes = {key: str(batch.note) for key, batch in run.probes.items() if getattr(batch, "note", None)}
    concepts: dict[str, ConceptEntry] = {}
    for concept, results in grouped.items():
        file = files.get(concept)
        spec = file.concept if file is not None else None
        overlap = analysis[concept]
        names = unit_names(run, concept)
        units = run.units.get(concept)
        definitions: dict[str, DefinitionEntry] = {}
        for name, result in results.items():
            where = _where(file.source(name) if file is not None else None, "definitions", name)
            spec_of = spec.definitions.get(name) if spec else None
            definitions[name] = _definition(result, spec_of, names, where, notes)
            if run.stability is not None or run.bootstrap is not None:
                _add_stability(definitions[name], run, f"{concept}.{name}", names)
        singular, plural = overlap.nouns
        resampled = overlap_entry(run, overlap, names) if run.bootstrap is not None else None  # extends the narrative
        concepts[concept] = {
            "unit": spec.unit if spec else overlap.unit,
            "unit_noun": singular,
            "unit_plural": plural,
            "units": list(names),
            "grid": _grid(units.grid_json()) if units is not None else _head_grid(names),
            "summary": spec.summary if spec else None,
            "references": list(spec.references) if spec else [],
            "definitions": definitions,
            "overlap": cast(OverlapEntry, overlap.to_dict()),  # the engine writes this shape; it knows no report types
            "note": overlap.note,
            "file": _where(file, "concept")[0],
            "line": _where(file, "concept")[1],
        }
        if run.stability is not None:
            concepts[concept]["overlap"]["stability"] = cast(OverlapStability | None, stable.get(concept))
        if resampled is not None:
            concepts[concept]["overlap"]["bootstrap"] = cast(OverlapBootstrap, resampled)
    data: ReportDocument = {
        "report_version": REPORT_VERSION,
        "model": _model(run, model_info),
        "seed": run.seed,
        "probes": {key: _probe(batch) for key, batch in run.probes.items()},
        "concepts": concepts,
        "skipped": dict(run.skipped),
    }
    if run.stability is not None:
        data["seeds"] = list(run.stability.seeds)
    if run.bootstrap is not None:
        data["bootstrap"] = run.bootstrap.replicates
    return canonical(data)


def _add_stability(entry: DefinitionEntry, run: RunResult, definition_id: str, names: list[str]) -> None:
    """``--seeds K``: the definition's ``stability``; with it or ``--bootstrap B``, each criterion's ``sd`` and
    ``margins``."""
    if run.stability is not None:
        entry["stability"] = cast(StabilityEntry | None, definition_entry(run, definition_id, names))
    for index, criterion in enumerate(entry["criteria"]):
        criterion["sd"] = spread_entry(run, definition_id, index, names)
        criterion["margins"] = margins_entry(run, definition_id, index, names)


def _grid(labels: dict[str, list[str]] | None) -> GridEntry | None:
    """The unit kind's grid labels as the document's ``grid`` object."""
    return None if labels is None else {"rows": labels["rows"], "columns": labels["columns"]}


def _head_grid(names: list[str]) -> GridEntry | None:
    """The layer x head grid of a run built without unit kinds (its units are head addresses ``L.H``)."""
    pairs = [name.split(".") for name in names]
    if not pairs or any(len(pair) != 2 or not all(part.isdigit() for part in pair) for pair in pairs):
        return None
    rows = list(dict.fromkeys(layer for layer, _ in pairs))
    columns = list(dict.fromkeys(head for _, head in pairs))
    if [f"{r}.{c}" for r in rows for c in columns] != list(names):
        return None
    return {"rows": rows, "columns": columns}


def _where(file: ConceptFile | None, *field: str) -> tuple[str | None, int | None]:
    """``file`` (the concept file as shown in diagnostics) and ``line`` (of the field's key), or nulls."""
    if file is None:
        return None, None
    return file.label, file.position(*field, key=True)[0]


def _model(run: RunResult, extra: Mapping[str, Any] | None) -> ModelEntry:
    view = run.model
    out: dict[str, Any] = {"name": getattr(view, "name", "model")}
    for attr in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx"):
        try:
            out[attr] = int(getattr(view, attr))
        except (AttributeError, TypeError, ValueError):
            continue
    names = getattr(view, "model_names", None)
    if names is not None and not callable(names):
        out["model_names"] = [str(name) for name in names]
    for attr in ("positional", "normalization", "attn_only"):
        try:
            out[attr] = getattr(view, attr)
        except AttributeError:
            continue
    tokens = getattr(view, "tokens", None)
    out["tokens"] = tokens.to_dict() if tokens is not None else None
    out["info"] = dict(getattr(view, "info", {}) or {})
    out.update(extra or {})
    return cast(ModelEntry, out)  # keys chosen at run time, each one of ModelEntry's


def _probe(batch: ProbeBatch) -> ProbeEntry:
    shape = list(getattr(batch.tokens, "shape", []))
    entry: ProbeEntry = {
        "name": batch.name,
        "params": batch.params,
        "sequences": shape[0] if shape else None,
        "positions": shape[1] if len(shape) > 1 else None,
        "bos": batch.bos,
    }
    if getattr(batch, "note", None):  # only where the probe adapted to the model: other reports stay as they were
        entry["note"] = str(batch.note)
    return entry


def _score_map(scores: Scores, names: list[str]) -> tuple[dict[str, float | None], dict[str, str]]:
    """Every unit's score (``None`` where undefined) and, for each ``None``, why."""
    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for name, value in zip(names, scores.values.flatten().tolist(), strict=True):
        number = round_float(float(value))
        values[name] = number
        if number is None:
            if math.isnan(value):
                undefined[name] = scores.undefined.get(name, NO_REASON)
            else:
                undefined[name] = f"the score is infinite ({value})"
    return values, undefined


def _criterion(
    result: CriterionResult, spec: Criterion | None, names: list[str], notes: Mapping[str, str] | None = None
) -> CriterionEntry:
    out: CriterionEntry = {
        "checker": result.checker,
        "params": dict(spec.params) if spec is not None else {},
        "probe": result.probe,
        "with": list(spec.with_ or []) if spec is not None else [],
        "threshold": cast(Threshold, result.threshold.to_json()),  # a rank rule's dict is a RankRule
        "scores": None,
        "passed": None,
        "undefined": {},
        "not_applicable": None,
        "evidence": {},
        "error": result.error,
        "chance": round_float(result.chance) if result.chance is not None else None,
    }
    scores = result.scores
    if scores is not None:
        out["evidence"] = dict(scores.evidence)
        if scores.not_applicable:
            out["not_applicable"] = scores.not_applicable
        else:
            out["scores"], out["undefined"] = _score_map(scores, names)
    if result.passed is not None and not out["not_applicable"]:
        out["passed"] = [n for n, p in zip(names, result.passed.flatten().tolist(), strict=True) if p]
    note = (notes or {}).get(result.probe or "")
    if note:  # the probe was adapted to the model (shortened): these scores are on what it became
        out["probe_note"] = note
    return out


def _definition(
    result: DefinitionResult,
    spec: Definition | None,
    names: list[str],
    where: tuple[str | None, int | None],
    notes: Mapping[str, str] | None = None,
) -> DefinitionEntry:
    status, reason = definition_status(result)
    specs = spec.criteria if spec is not None else []
    criteria = [
        _criterion(c, specs[i] if i < len(specs) else None, names, notes) for i, c in enumerate(result.criteria)
    ]
    scores, undefined = (criteria[0]["scores"], criteria[0]["undefined"]) if criteria else (None, {})
    members = None
    if result.members is not None:
        members = [n for n, m in zip(names, result.members.flatten().tolist(), strict=True) if m]
    return {
        "kind": result.kind,
        "combinator": result.combinator,
        "source": spec.source if spec is not None else None,
        "summary": spec.summary if spec is not None else None,
        "status": status,
        "members": members,
        "scores": scores,
        "undefined": undefined,
        "criteria": criteria,
        "not_applicable": reason if status == "not_applicable" else None,
        "error": result.error,
        "file": where[0],
        "line": where[1],
    }
