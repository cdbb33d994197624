"""Evaluating a project's expectations against a report.

Expectations are checked against the report's JSON document (docs/report-format.md), not the live run, so a
saved report can be checked again. Each gives an :class:`ExpectationResult`:

- ``passed``: it holds;
- ``failed``: it does not (exit code 1); the message says what was found instead, and why where the report
  knows (e.g. the criterion that kept a unit off the mechanistic side);
- ``error``: it cannot be decided because a definition it rests on errored (a checker crashed) or it names a
  unit the model does not have (exit code 2);
- ``skipped``: its concept was not evaluated in this run (``--concept`` chose others, or the model has no units
  of its kind).

A unit is *behavioral* when any usable behavioral definition of the concept admits it, *mechanistic*
likewise; errored and not-applicable definitions are left out, as in the overlap analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from defcheck.ci.project import (
    CountExpectation,
    Expectation,
    MembershipExpectation,
    MetricExpectation,
    ProjectFile,
)

STATUSES = ("passed", "failed", "error", "skipped")
LISTED = 8


@dataclass
class ExpectationResult:
    """The outcome of one expectation on one model."""

    index: int
    kind: str
    description: str
    status: str
    message: str
    concept: str
    definition: str | None = None
    file: str | None = None
    line: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_id(self) -> str:
        return f"expectation/{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "rule": self.rule_id,
            "description": self.description,
            "status": self.status,
            "message": self.message,
            "concept": self.concept,
            "definition": self.definition,
            "file": self.file,
            "line": self.line,
            "details": dict(self.details),
        }


def applicable(project: ProjectFile, model_name: str) -> list[Expectation]:
    """The expectations that apply to the model named ``model_name`` (those without ``model:`` apply to all)."""
    return [e for e in project.expectations if e.spec.model is None or e.spec.model == model_name]


def check_expectations(
    expectations: Sequence[Expectation], data: Mapping[str, Any], *, file: str | None = None
) -> list[ExpectationResult]:
    """Check each expectation against a report document; ``file`` is the project file's label."""
    return [_check(expectation, data, file) for expectation in expectations]


def _check(expectation: Expectation, data: Mapping[str, Any], file: str | None) -> ExpectationResult:
    result = ExpectationResult(
        expectation.index,
        expectation.kind,
        expectation.describe(),
        "passed",
        "",
        expectation.concept,
        expectation.definition,
        file,
        expectation.line,
    )
    concept = data.get("concepts", {}).get(expectation.concept)
    if concept is None:
        result.status = "skipped"
        reason = (data.get("skipped") or {}).get(expectation.concept)
        result.message = f"{expectation.concept} was not evaluated in this run" + (f" ({reason})" if reason else "")
        return result
    errored = {
        name: definition["error"]
        for name, definition in concept["definitions"].items()
        if definition["status"] == "errored"
    }
    relevant = [expectation.definition] if expectation.definition else list(errored)
    broken = [name for name in relevant if name in errored]
    if broken:
        result.status = "error"
        result.message = "; ".join(f"{expectation.concept}.{name} errored: {errored[name]}" for name in broken)
        return result
    if expectation.definition and expectation.definition not in concept["definitions"]:
        result.status = "skipped"
        result.message = f"{expectation.concept}.{expectation.definition} was not evaluated in this run"
        return result
    spec = expectation.spec
    if isinstance(spec, MembershipExpectation):
        _membership(spec, concept, data, result)
    elif isinstance(spec, MetricExpectation):
        _metric(spec, concept, result)
    else:
        _count(spec, concept, data, result)
    return result


# --- sets --------------------------------------------------------------------------------------------------------


def unit_list(data: Mapping[str, Any], concept: Mapping[str, Any]) -> list[str]:
    """Every unit of the concept's kind in the model, in the unit kind's order (older reports: the scores')."""
    if concept.get("units") is not None:
        return list(concept["units"])
    for definition in concept["definitions"].values():
        for criterion in definition["criteria"]:
            if criterion.get("scores"):
                return list(criterion["scores"])
    model = data.get("model", {})
    layers, heads = model.get("n_layers"), model.get("n_heads")
    if isinstance(layers, int) and isinstance(heads, int):
        return [f"{layer}.{head}" for layer in range(layers) for head in range(heads)]
    return []


def kind_sets(concept: Mapping[str, Any]) -> dict[str, set[str]]:
    """The union of the usable definitions' members for each kind."""
    sets: dict[str, set[str]] = {"behavioral": set(), "mechanistic": set()}
    for definition in concept["definitions"].values():
        if definition["status"] == "ok":
            sets.setdefault(definition["kind"], set()).update(definition["members"] or [])
    return sets


def category_units(concept: Mapping[str, Any], units: Sequence[str], category: str) -> list[str]:
    sets = kind_sets(concept)
    behavioral, mechanistic = sets["behavioral"], sets["mechanistic"]
    test = {
        "both": lambda u: u in behavioral and u in mechanistic,
        "behavioral": lambda u: u in behavioral,
        "mechanistic": lambda u: u in mechanistic,
        "behavioral_only": lambda u: u in behavioral and u not in mechanistic,
        "mechanistic_only": lambda u: u in mechanistic and u not in behavioral,
        "neither": lambda u: u not in behavioral and u not in mechanistic,
    }[category]
    return [unit for unit in units if test(unit)]


def unit_category(concept: Mapping[str, Any], unit: str) -> str:
    sets = kind_sets(concept)
    inside = (unit in sets["behavioral"], unit in sets["mechanistic"])
    return {
        (True, True): "both",
        (True, False): "behavioral_only",
        (False, True): "mechanistic_only",
        (False, False): "neither",
    }[inside]


def _listing(units: Sequence[str]) -> str:
    if not units:
        return "none"
    shown = ", ".join(units[:LISTED])
    return shown + (f", and {len(units) - LISTED} more" if len(units) > LISTED else "")


def _why(concept: Mapping[str, Any], unit: str) -> str:
    overlap = concept.get("overlap") or {}
    for key in ("divergences", "undetermined"):
        reason = (overlap.get(key) or {}).get(unit)
        if reason:
            return f" ({reason})"
    notes = [
        f"{name} {definition['status'].replace('_', ' ')}"
        + (f": {definition['not_applicable']}" if definition.get("not_applicable") else "")
        for name, definition in concept["definitions"].items()
        if definition["status"] == "not_applicable"
    ]
    if concept.get("note"):
        return f" ({concept['note'].rstrip('.')})"
    return f" ({'; '.join(notes)})" if notes else ""


# --- the three kinds ---------------------------------------------------------------------------------------------


def _missing_units(units: Sequence[str], known: Sequence[str], result: ExpectationResult) -> bool:
    missing = [unit for unit in units if unit not in set(known)]
    if not missing:
        return False
    span = f"{known[0]} to {known[-1]}" if known else "none"
    result.status = "error"
    result.message = f"the model has no unit {', '.join(missing)} (its units: {span})"
    return True


def _membership(
    spec: MembershipExpectation, concept: Mapping[str, Any], data: Mapping[str, Any], result: ExpectationResult
) -> None:
    known = unit_list(data, concept)
    if _missing_units(spec.units, known, result):
        return
    wrong: list[str] = []
    if spec.definition is not None:
        name = spec.definition.partition(".")[2]
        definition = concept["definitions"][name]
        members = set(definition["members"] or [])
        want = spec.member is not False
        for unit in spec.units:
            if (unit in members) != want:
                state = "is a member" if unit in members else "is not a member"
                why = ""
                if unit not in members:
                    why = _criterion_reason(definition, unit)
                    if definition["status"] == "not_applicable":
                        why = f" (not applicable: {definition['not_applicable']})"
                wrong.append(f"{unit} {state}{why}")
        result.details = {"members": sorted(members, key=known.index)}
    else:
        assert spec.in_ is not None
        wanted = set(category_units(concept, known, spec.in_))
        found = {}
        for unit in spec.units:
            category = unit_category(concept, unit)
            found[unit] = category
            if unit not in wanted:
                wrong.append(f"{unit} is {category.replace('_', ' ')}{_why(concept, unit)}")
        result.details = {"categories": found}
    if (spec.stable or spec.min_share is not None) and not _stability(spec, concept, data, result, wrong):
        return
    if wrong:
        result.status = "failed"
        result.message = "; ".join(wrong)
    else:
        result.message = "holds"


def _stability(
    spec: MembershipExpectation,
    concept: Mapping[str, Any],
    data: Mapping[str, Any],
    result: ExpectationResult,
    wrong: list[str],
) -> bool:
    """Add to ``wrong`` each unit that is not where it should be in enough probe seeds (``stable``: all of them;
    ``min_share``: that share). ``False`` (the result an error) when the report cannot say: one seed only."""
    seeds = len(data.get("seeds") or [])
    if seeds < 2:
        result.status = "error"
        result.message = (
            "stability needs a run with several probe seeds (--seeds K, or seeds: in the project file); this "
            "report has one"
        )
        return False
    if spec.definition is not None:
        stability = concept["definitions"][spec.definition.partition(".")[2]].get("stability")
        if stability is None:
            result.status = "error"
            result.message = f"{spec.definition} was not evaluated in every probe seed: its stability is unknown"
            return False
        needed = 1.0 if spec.stable else float(spec.min_share or 1.0)
        want = spec.member is not False
        shares = {unit: float(stability["share"].get(unit, 0.0)) for unit in spec.units}
        for unit, share in shares.items():
            held = share if want else 1.0 - share
            if held < needed:
                where = "a member" if want else "not a member"
                wrong.append(f"{unit} is {where} in {held:.0%} of the {seeds} probe seeds, needs {needed:.0%}")
        result.details["share"] = shares
        return True
    overlap_stability = (concept.get("overlap") or {}).get("stability")
    if overlap_stability is None:
        result.status = "error"
        result.message = f"{spec.concept}'s kinds were not compared in every probe seed: its stability is unknown"
        return False
    unstable = set(overlap_stability["unstable"])
    wrong += [
        f"{unit} is unstable: its category changes between the {seeds} probe seeds"
        for unit in spec.units
        if unit in unstable
    ]
    result.details["unstable"] = [unit for unit in spec.units if unit in unstable]
    return True


def _criterion_reason(definition: Mapping[str, Any], unit: str) -> str:
    """Which criterion kept ``unit`` out of a definition: ``(attention_pattern 0.31, needs >= 0.4)``."""
    reasons = []
    for criterion in definition["criteria"]:
        if criterion.get("passed") is None or unit in criterion["passed"]:
            continue
        value = (criterion.get("scores") or {}).get(unit)
        threshold = criterion["threshold"]
        rule = threshold if isinstance(threshold, str) else f"top {threshold.get('top_k')}"
        if value is None:
            reason = (criterion.get("undefined") or {}).get(unit, "no score")
            reasons.append(f"{criterion['checker']} undefined: {reason}")
        else:
            reasons.append(f"{criterion['checker']} {value:.4g}, needs {rule}")
    return f" ({'; '.join(reasons)})" if reasons else ""


def _metric(spec: MetricExpectation, concept: Mapping[str, Any], result: ExpectationResult) -> None:
    overlap = concept.get("overlap")
    if overlap is None:
        result.status = "failed"
        result.message = f"{spec.metric} is undefined: {concept.get('note') or 'the concept has no overlap'}"
        result.details = {"value": None}
        return
    value = overlap.get(spec.metric)
    result.details = {"value": value}
    if value is None:
        reason = (overlap.get("undefined") or {}).get(spec.metric, "no value")
        result.status = "failed"
        result.message = f"{spec.metric} is undefined ({reason}), expected {spec.threshold}"
        return
    rule = spec.comparison
    ok = {">=": value >= rule.value, ">": value > rule.value, "<=": value <= rule.value, "<": value < rule.value}
    if ok[rule.op]:
        result.message = f"{spec.metric} is {value:.4g}"
    else:
        result.status = "failed"
        result.message = f"{spec.metric} is {value:.4g}, expected {spec.threshold}"


def _count(
    spec: CountExpectation, concept: Mapping[str, Any], data: Mapping[str, Any], result: ExpectationResult
) -> None:
    known = unit_list(data, concept)
    if spec.definition is not None:
        definition = concept["definitions"][spec.definition.partition(".")[2]]
        units = list(definition["members"] or [])
        what = "member(s)"
    else:
        assert spec.in_ is not None
        units = category_units(concept, known, spec.in_)
        what = f"unit(s) {spec.in_.replace('_', ' ')}"
    result.details = {"count": len(units), "units": units}
    listing = f": {_listing(units)}" if units else ""
    if spec.accepts(len(units)):
        result.message = f"{len(units)} {what}{listing}"
    else:
        result.status = "failed"
        result.message = f"{len(units)} {what}{listing}; expected {spec.wanted}"


def summary_counts(results: Sequence[ExpectationResult]) -> dict[str, int]:
    return {status: sum(1 for r in results if r.status == status) for status in STATUSES}
