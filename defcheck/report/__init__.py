"""Reports: a run's results and overlap analysis as one versioned document, rendered in several formats.

A :class:`Report` is built from a :class:`~defcheck.engine.runner.RunResult` and the
:class:`~defcheck.language.registry.Registry` it ran (``Report.build``), or read back from its JSON
(``Report.from_json``). Its content is exactly the JSON document (see docs/report-format.md); every format
renders from that document, so a saved report re-renders identically. Timings are kept apart
(``Report.timings``) so that the JSON is byte-identical for the same model, definitions and seed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

from defcheck.engine.overlap import analyze, definition_status, unit_names
from defcheck.engine.runner import CriterionResult, DefinitionResult, RunResult
from defcheck.hooks.declarations import ReportFormat
from defcheck.report.json import REPORT_VERSION, canonical, dumps, loads, round_float

__all__ = [
    "REPORT_VERSION",
    "ConceptReport",
    "DefinitionReport",
    "OverlapReport",
    "Report",
    "build_report",
    "builtin_formats",
]

NO_REASON = "the checker gave no reason"


class _Record(Mapping[str, Any]):
    """A read-only view of one object of the JSON document: ``record["members"]`` or ``record.members``."""

    def __init__(self, data: Mapping[str, Any]):
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field '{name}'") from None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of this object as it appears in the JSON."""
        return copy.deepcopy(dict(self._data))


class DefinitionReport(_Record):
    """One definition's results: ``kind``, ``status``, ``members``, ``scores`` (primary), ``criteria``, ..."""

    def __init__(self, concept: str, name: str, data: Mapping[str, Any]):
        super().__init__(data)
        self.concept = concept
        self.name = name

    @property
    def id(self) -> str:
        return f"{self.concept}.{self.name}"

    def __repr__(self) -> str:
        return f"<DefinitionReport {self.id} ({self['kind']}, {self['status']}): {len(self['members'] or [])} members>"


class OverlapReport(_Record):
    """A concept's overlap: ``both``, ``behavioral_only``, ``mechanistic_only``, ``jaccard``, ``pairs``, ..."""

    def __repr__(self) -> str:
        return (
            f"<OverlapReport both={self['both']} behavioral_only={self['behavioral_only']} "
            f"mechanistic_only={self['mechanistic_only']} jaccard={self['jaccard']}>"
        )


class ConceptReport(_Record):
    """One concept: ``unit``, ``description``, ``definitions``, ``overlap`` (or ``None`` with ``note``), ``summary``."""

    def __init__(self, name: str, data: Mapping[str, Any], report: Report):
        super().__init__(data)
        self.name = name
        self._report = report

    @property
    def definitions(self) -> dict[str, DefinitionReport]:
        return {name: DefinitionReport(self.name, name, d) for name, d in self._data["definitions"].items()}

    @property
    def overlap(self) -> OverlapReport | None:
        data = self._data["overlap"]
        return None if data is None else OverlapReport(data)

    def _repr_html_(self) -> str:
        from defcheck.report.html import render_fragment

        return render_fragment(self._report.data, [self.name])

    def __repr__(self) -> str:
        return f"<ConceptReport {self.name}: {self._data['summary']}>"


class Report:
    """A run's report. ``data`` is the JSON document; ``timings`` (seconds by step) are not part of it."""

    def __init__(self, data: dict[str, Any], timings: Mapping[str, float] | None = None):
        self.data = data
        self.timings: dict[str, float] = dict(timings or {})

    @classmethod
    def build(cls, run: RunResult, registry: Any = None, model_info: Mapping[str, Any] | None = None) -> Report:
        """The report of ``run``; ``registry`` supplies each concept's text (description, sources, params);
        ``model_info`` is merged into the ``model`` object (e.g. the reference it was loaded from)."""
        return cls(build_data(run, registry, model_info), run.timings)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """A report read back from its JSON, to render in other formats; refuses another ``report_version``."""
        return cls(canonical(loads(text)))

    @property
    def model(self) -> dict[str, Any]:
        return self.data["model"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def concepts(self) -> dict[str, ConceptReport]:
        return {name: ConceptReport(name, data, self) for name, data in self.data["concepts"].items()}

    @property
    def checks(self) -> dict[str, Any] | None:
        """The ``checks`` block (expectations and baseline differences), when the run had any."""
        return self.data.get("checks")

    def set_checks(self, checks: Mapping[str, Any] | None) -> None:
        """Attach (or, with ``None``, remove) the ``checks`` block (see docs/ci.md)."""
        if checks is None:
            self.data.pop("checks", None)
        else:
            self.data["checks"] = canonical(dict(checks))

    def to_json(self) -> str:
        return dumps(self.data)

    def to_baseline_json(self) -> str:
        """The JSON document without its ``checks`` block: what ``--write-baseline`` stores."""
        return dumps({key: value for key, value in self.data.items() if key != "checks"})

    def to_markdown(self) -> str:
        from defcheck.report.markdown import render_markdown

        text = render_markdown(self.data)
        if self.checks is not None:
            from defcheck.report.checks import checks_markdown

            head = text.split("\n\n", 2)  # the title, the model line, the rest: the checks go before the rest
            section = checks_markdown(self.data)
            text = "\n\n".join([*head[:2], section.rstrip("\n"), *head[2:]])
        return text

    def to_html(self) -> str:
        from defcheck.report.html import render_document

        return render_document(self.data)

    def to_terminal(self, console: Any = None) -> None:
        """Print rich tables per concept to ``console`` (a ``rich.console.Console``; a new one if omitted)."""
        from defcheck.report.terminal import print_report

        print_report(self.data, console)

    def _repr_html_(self) -> str:
        from defcheck.report.html import render_fragment

        return render_fragment(self.data)

    def __repr__(self) -> str:
        return f"<Report model={self.model.get('name')!r} seed={self.seed} concepts={list(self.data['concepts'])}>"


def build_report(run: RunResult, registry: Any = None, model_info: Mapping[str, Any] | None = None) -> Report:
    """Same as :meth:`Report.build`."""
    return Report.build(run, registry, model_info)


def builtin_formats() -> list[ReportFormat]:
    """The report formats defcheck ships: ``render(report) -> str`` for ``json``, ``markdown`` and ``html``."""
    from defcheck.report import html, json, markdown

    return [
        ReportFormat("json", json.render, ".json", "The versioned JSON document (docs/report-format.md)."),
        ReportFormat("markdown", markdown.render, ".md", "Markdown for a pull-request comment."),
        ReportFormat("html", html.render, ".html", "One self-contained HTML page with layer x head grids."),
    ]


# --- building the document -----------------------------------------------------------------------------------


def build_data(run: RunResult, registry: Any = None, model_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of ``run`` (canonical: rounded floats, sorted keys)."""
    analysis = analyze(run, registry)
    grouped: dict[str, dict[str, DefinitionResult]] = {}
    for definition_id, result in run.definitions.items():
        concept, _, name = definition_id.partition(".")
        grouped.setdefault(concept, {})[name] = result
    files = getattr(registry, "files", {}) or {}
    concepts = {}
    for concept, results in grouped.items():
        file = files.get(concept)
        spec = file.concept if file is not None else None
        overlap = analysis[concept]
        names = unit_names(run, concept)
        units = getattr(run, "units", {}).get(concept)
        definitions = {}
        for name, result in results.items():
            definitions[name] = _definition(result, spec.definitions.get(name) if spec else None, names)
            definitions[name].update(_where(file, "definitions", name))
        concepts[concept] = {
            "unit": spec.unit if spec else overlap.unit,
            "units": list(names),
            "grid": units.grid_json() if units is not None else _head_grid(names),
            "description": spec.summary if spec else None,
            "references": list(spec.references) if spec else [],
            "definitions": definitions,
            "overlap": overlap.to_dict(),
            "note": overlap.note,
            "summary": overlap.summary,
            **_where(file, "concept"),
        }
    data = {
        "report_version": REPORT_VERSION,
        "model": _model(run, model_info),
        "seed": run.seed,
        "probes": {key: _probe(batch) for key, batch in run.probes.items()},
        "concepts": concepts,
        "skipped": dict(getattr(run, "skipped", {}) or {}),
    }
    return canonical(data)


def _head_grid(names: list[str]) -> dict[str, list[str]] | None:
    """The layer x head grid of a run built without unit kinds (its units are head addresses ``L.H``)."""
    pairs = [name.split(".") for name in names]
    if not pairs or any(len(pair) != 2 or not all(part.isdigit() for part in pair) for pair in pairs):
        return None
    rows = list(dict.fromkeys(layer for layer, _ in pairs))
    columns = list(dict.fromkeys(head for _, head in pairs))
    if [f"{r}.{c}" for r in rows for c in columns] != list(names):
        return None
    return {"rows": rows, "columns": columns}


def _where(file: Any, *field: str) -> dict[str, Any]:
    """``file`` (the concept file as shown in diagnostics) and ``line`` (of the field's key), or nulls."""
    if file is None:
        return {"file": None, "line": None}
    position = getattr(file, "position", None)
    line = position(*field, key=True)[0] if callable(position) else None
    return {"file": getattr(file, "label", None), "line": line}


def _model(run: RunResult, extra: Mapping[str, Any] | None) -> dict[str, Any]:
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
    return out


def _probe(batch: Any) -> dict[str, Any]:
    shape = list(getattr(batch.tokens, "shape", []))
    return {
        "name": batch.name,
        "params": batch.params,
        "sequences": shape[0] if shape else None,
        "positions": shape[1] if len(shape) > 1 else None,
        "bos": batch.bos,
    }


def _score_map(scores: Any, names: list[str]) -> tuple[dict[str, float | None], dict[str, str]]:
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


def _criterion(result: CriterionResult, spec: Any, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "checker": result.checker,
        "params": dict(spec.params) if spec is not None else {},
        "probe": result.probe,
        "with": list(spec.with_ or []) if spec is not None else [],
        "threshold": result.threshold.to_json(),
        "scores": None,
        "passed": None,
        "undefined": {},
        "not_applicable": None,
        "evidence": {},
        "error": result.error,
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
    return out


def _definition(result: DefinitionResult, spec: Any, names: list[str]) -> dict[str, Any]:
    status, reason = definition_status(result)
    specs = spec.criteria if spec is not None else []
    criteria = [_criterion(c, specs[i] if i < len(specs) else None, names) for i, c in enumerate(result.criteria)]
    primary = criteria[0] if criteria else {"scores": None, "undefined": {}}
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
        "scores": primary["scores"],
        "undefined": primary["undefined"],
        "criteria": criteria,
        "not_applicable": reason if status == "not_applicable" else None,
        "error": result.error,
    }
