"""Reports: a run's results and overlap analysis as one versioned document, rendered in several formats.

A :class:`Report` is built from a :class:`~defcheck.engine.runner.RunResult` and the
:class:`~defcheck.language.registry.Registry` it ran (``Report.build``), or read back from its JSON
(``Report.from_json``). Its content is exactly the JSON document (see docs/report-format.md), typed as
:class:`~defcheck.report.document.ReportDocument`; every format renders from that document, so a saved report
re-renders identically. Timings are kept apart (``Report.timings``) so that the JSON is byte-identical for the
same model, definitions and seed. Importing this module does not import torch: building a report does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from defcheck.hooks.declarations import ReportFormat
from defcheck.report.document import ConceptEntry, ModelEntry, ReportDocument
from defcheck.report.json import REPORT_VERSION, canonical, dumps, loads

if TYPE_CHECKING:
    from rich.console import Console

    from defcheck.engine.results import RunResult
    from defcheck.language.registry import Registry

__all__ = [
    "REPORT_VERSION",
    "ConceptReport",
    "DefinitionReport",
    "OverlapReport",
    "Report",
    "ReportDocument",
    "build_report",
    "builtin_formats",
]


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
    """A concept's overlap: ``both``, ``behavioral_only``, ``mechanistic_only``, ``jaccard``, ``pairs``, ...,
    ``narrative`` (the plain-language paragraph) and ``reason`` (why it is empty; ``None`` when the kinds were
    compared)."""

    @property
    def compared(self) -> bool:
        """Whether the behavioral and mechanistic definitions were compared (else the overlap is empty)."""
        return self._data.get("reason") is None

    def __repr__(self) -> str:
        return (
            f"<OverlapReport both={self['both']} behavioral_only={self['behavioral_only']} "
            f"mechanistic_only={self['mechanistic_only']} jaccard={self['jaccard']}>"
        )


class ConceptReport(_Record):
    """One concept: ``unit``, ``summary`` (the concept file's), ``definitions``, ``overlap`` (always an object;
    its ``narrative`` says in words what it found, its ``reason`` why it is empty)."""

    def __init__(self, name: str, data: ConceptEntry, report: Report):
        super().__init__(data)
        self.name = name
        self._report = report

    @property
    def definitions(self) -> dict[str, DefinitionReport]:
        return {name: DefinitionReport(self.name, name, d) for name, d in self._data["definitions"].items()}

    @property
    def overlap(self) -> OverlapReport:
        return OverlapReport(self._data["overlap"])

    def _repr_html_(self) -> str:
        from defcheck.report.html import render_fragment

        return render_fragment(self._report.data, [self.name])

    def __repr__(self) -> str:
        return f"<ConceptReport {self.name}: {self._data['overlap']['narrative']}>"


class Report:
    """A run's report. ``data`` is the JSON document; ``timings`` (seconds by step) are not part of it."""

    def __init__(self, data: ReportDocument, timings: Mapping[str, float] | None = None):
        self.data: ReportDocument = data
        self.timings: dict[str, float] = dict(timings or {})

    @classmethod
    def build(
        cls, run: RunResult, registry: Registry | None = None, model_info: Mapping[str, Any] | None = None
    ) -> Report:
        """The report of ``run``; ``registry`` supplies each concept's text (summary, sources, params);
        ``model_info`` is merged into the ``model`` object (e.g. the reference it was loaded from)."""
        from defcheck.report.build import build_data

        return cls(build_data(run, registry, model_info), run.timings)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """A report read back from its JSON, to render in other formats; refuses another ``report_version``.
        A document written before the unit nouns, the overlap ``narrative`` and the concept ``summary`` reads
        back in the current shape (see :func:`~defcheck.report.document.upgrade`)."""
        return cls(canonical(loads(text)))

    @property
    def model(self) -> ModelEntry:
        return self.data["model"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def concepts(self) -> dict[str, ConceptReport]:
        """Each concept by name, as a read-only record with attribute access."""
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

    def to_terminal(self, console: Console | None = None) -> None:
        """Print rich tables per concept to ``console`` (a new ``rich.console.Console`` if omitted). Names
        (concepts, definitions, unit addresses) wrap whole or end in an ellipsis; none is split mid-word."""
        from defcheck.report.terminal import print_report

        print_report(self.data, console)

    def _repr_html_(self) -> str:
        from defcheck.report.html import render_fragment

        return render_fragment(self.data)

    def __repr__(self) -> str:
        return f"<Report model={self.model.get('name')!r} seed={self.seed} concepts={list(self.data['concepts'])}>"


def build_report(
    run: RunResult, registry: Registry | None = None, model_info: Mapping[str, Any] | None = None
) -> Report:
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
