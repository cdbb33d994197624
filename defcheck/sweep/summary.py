"""The sweep's summary (docs/sweep.md): read back from the checkpoints' reports (never the workers' memory, so it is
the same bytes whatever ran them, and after a resume). Per definition and unit, score and membership against step,
and where the reports carry it (``--seeds K``, ``--bootstrap B``) the score's sd (``units.UNIT.sd``, with ``band``
saying how it was obtained; both absent otherwise, so a one-seed summary is unchanged); per concept, the overlap
against step and the first step at which each kind admits a unit; the training loss where the checkpoints carry
it; and the answer in words.

Units are handled as the report names them (``"1.4"``, or whatever a unit kind's address is), never as
(layer, head) pairs, so the summary works for any unit kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from defcheck.report.json import canonical, natural_key
from defcheck.sweep.series import Series
from defcheck.sweep.store import report_name

SUMMARY_VERSION = 1


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
            # an overlap with a reason is the empty one of a concept whose kinds were not compared: no figures
            if overlap is not None and overlap.get("reason") is None:
                entry["jaccard"][position] = overlap.get("jaccard")
                for key in ("both", "behavioral_only", "mechanistic_only"):
                    entry[key][position] = len(overlap[key])
                entry["neither"][position] = overlap.get("neither_count")
            elif entry["note"] is None:
                entry["note"] = concept.get("note") or (overlap or {}).get("reason")
            for name, definition in concept["definitions"].items():
                definition_id = f"{concept_name}.{name}"
                if definition_id not in definitions:
                    definitions[definition_id] = _empty_definition(concept_name, name, definition, len(steps))
                record = definitions[definition_id]
                _add_definition(record, definition, concept.get("units") or [], position, len(steps))
                _add_band(record, definition, data, position, len(steps))
    for record in definitions.values():
        _complete_band(record, len(steps))
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


def _add_band(
    record: dict[str, Any], definition: Mapping[str, Any], report: Mapping[str, Any], position: int, n: int
) -> None:
    """Each unit's sd of the primary score at this checkpoint (``--seeds K`` or ``--bootstrap B``), kept as
    ``units[UNIT]["sd"]`` so the plots can draw a band; nothing where the report has no ``sd`` (a plain run)."""
    criteria = definition.get("criteria") or [{}]
    sd = criteria[0].get("sd")
    if not isinstance(sd, Mapping):
        return
    for unit, series in record["units"].items():
        series.setdefault("sd", [None] * n)[position] = sd.get(unit)
    if record.get("band") is None:
        record["band"] = band_source(report)


def band_source(report: Mapping[str, Any]) -> dict[str, Any]:
    """How a report's ``sd`` was obtained: ``{"source": "seeds" | "bootstrap" | None, "count": K | B | None}``,
    so a plot can say what its band is."""
    seeds = report.get("seeds")
    if isinstance(seeds, list) and len(seeds) >= 2:
        return {"source": "seeds", "count": len(seeds)}
    bootstrap = report.get("bootstrap")
    if bootstrap is not None:
        return {"source": "bootstrap", "count": bootstrap if isinstance(bootstrap, int) else None}
    return {"source": None, "count": None}


def _complete_band(record: dict[str, Any], n: int) -> None:
    """Give every unit an ``sd`` series (all ``None`` where it had none) once some unit of the record has one."""
    if "band" not in record:
        return
    for series in record["units"].values():
        series.setdefault("sd", [None] * n)


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
    rates = []
    for i in range(len(values) - 1):
        before, after = values[i], values[i + 1]
        if before is not None and after is not None and steps[i + 1] > steps[i]:
            rates.append(((before - after) / (steps[i + 1] - steps[i]), i))
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


def never_applicable(record: Mapping[str, Any]) -> bool:
    """Whether a definition was not applicable at every checkpoint (a text probe on a model without a tokenizer,
    say): tables say so, and the plots give it no panel."""
    statuses = record.get("status") or []
    return bool(statuses) and all(status == "not_applicable" for status in statuses)


def first_step_text(record: Mapping[str, Any]) -> str:
    """A definition's first step with a member, as tables show it: the step, "never", or "not applicable"."""
    if record.get("first_step") is None:
        return "not applicable" if never_applicable(record) else "never"
    return str(record["first_step"])
