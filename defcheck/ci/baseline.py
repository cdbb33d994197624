"""Baselines: compare a run's report with a stored one and say what changed.

A baseline is a JSON report written by ``defcheck run --write-baseline FILE`` (the same document as
``--json``, without the ``checks`` block). :func:`diff_reports` compares two documents and returns one
:class:`Difference` per finding:

- ``run``: the seed or the model's shape differs (every other difference may follow from it);
- ``concept``: a concept was added or removed;
- ``definition``: a definition was added, removed, or written differently (kind, all/any, a criterion's
  checker, parameters, probe, threshold or ``with:``), or its status changed (ok, errored, not applicable);
- ``members``: units joined or left a definition;
- ``scores``: a criterion's scores moved by more than the tolerance on some units, or became (un)defined;
- ``overlap``: units moved between the overlap categories, or a metric (Jaccard, precision, recall, Spearman)
  moved by more than the tolerance or became (un)defined.

A score ``old -> new`` has moved when ``|new - old| > tolerance * max(1, |old|)``: an absolute tolerance for
scores up to 1 and a relative one above. Members and categories are compared exactly.

Stability (``--seeds K``): a unit that joined or left a definition, or moved between the overlap's categories,
while it is unstable across the probe seeds in either report (its definition's or overlap's ``stability``
lists it) is not a difference: the change is within noise. It is named in ``ignored`` instead, unless
``strict_stability`` (``--strict-stability``) counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defcheck.ci.project import DEFAULT_TOLERANCE
from defcheck.diagnostics import DefcheckError, display_path
from defcheck.files import MAX_REPORT_BYTES, FileProblem, read_regular_file

KINDS = ("run", "concept", "definition", "members", "scores", "overlap")
SHAPE = ("n_layers", "n_heads", "d_model", "d_head", "d_vocab", "n_ctx")
METRICS = ("jaccard", "precision", "recall", "spearman")
CATEGORIES = ("both", "behavioral_only", "mechanistic_only")
LISTED = 6


@dataclass
class Difference:
    """One way the run differs from the baseline."""

    kind: str
    message: str
    concept: str | None = None
    definition: str | None = None  # its name within the concept
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_id(self) -> str:
        return f"baseline/{self.kind}"

    @property
    def subject(self) -> str:
        if self.definition:
            return f"{self.concept}.{self.definition}"
        return self.concept or "run"

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule_id,
            "concept": self.concept,
            "definition": self.definition,
            "message": self.message,
            "details": dict(self.details),
        }


def load_baseline(path: Path) -> dict[str, Any]:
    """Read a baseline report; refuse another ``report_version`` with a message naming the file."""
    from defcheck.report.json import loads

    shown = display_path(path)
    if path.is_dir() or not path.exists():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DefcheckError(f"the baseline {shown} {what}; write one with `defcheck run --write-baseline {shown}`")
    try:  # a regular file only, read with a limit (a FIFO would block, /dev/zero never ends)
        text = read_regular_file(path, MAX_REPORT_BYTES, "the baseline")
    except FileProblem as error:
        raise DefcheckError(f"cannot read the baseline {shown}: {error.strerror or 'it ' + error.reason}") from None
    try:
        return loads(text)
    except DefcheckError as error:
        raise DefcheckError(
            f"the baseline {shown} cannot be used: {error}; write a new one with "
            f"`defcheck run --write-baseline {shown}`"
        ) from None


def moved(old: float | None, new: float | None, tolerance: float) -> bool:
    """Whether a value moved: beyond ``tolerance * max(1, |old|)``, or between defined and undefined."""
    if old is None or new is None:
        return (old is None) != (new is None)
    return abs(new - old) > tolerance * max(1.0, abs(old))


def _num(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def _units(units: Iterable[str]) -> str:
    units = list(units)
    shown = ", ".join(units[:LISTED])
    return shown + (f" and {len(units) - LISTED} more" if len(units) > LISTED else "")


def _value(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "none"
    if isinstance(value, dict) and set(value) <= {"top_k", "min"}:
        from defcheck.report.common import threshold_text

        return threshold_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _criterion_text(criterion: Mapping[str, Any]) -> str:
    from defcheck.report.common import criterion_text

    probe = f" on {criterion['probe']}" if criterion.get("probe") else ""
    return criterion_text(dict(criterion)) + probe


def diff_reports(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    selection: Iterable[str] | None = None,
    strict_stability: bool = False,
    ignored: list[str] | None = None,
) -> list[Difference]:
    """What differs between the ``old`` (baseline) and ``new`` report documents.

    ``selection`` (``--concept``: concept names or ``concept.definition`` ids) limits the comparison to them, so
    that a partial run does not report everything else as removed. A selected definition is compared alone;
    its concept's overlap only when the whole concept is selected. Changes of unstable memberships are left out
    (and described in ``ignored``, when given) unless ``strict_stability``.
    """
    out: list[Difference] = []
    if old.get("seed") != new.get("seed"):
        out.append(Difference("run", f"seed {old.get('seed')} -> {new.get('seed')}", details={"field": "seed"}))
    old_model, new_model = old.get("model", {}), new.get("model", {})
    for key in SHAPE:
        if old_model.get(key) != new_model.get(key):
            out.append(
                Difference(
                    "run",
                    f"the model's {key} is {new_model.get(key)}, the baseline's {old_model.get(key)}",
                    details={"field": key, "old": old_model.get(key), "new": new_model.get(key)},
                )
            )
    chosen = set(selection) if selection is not None else None
    whole = None if chosen is None else {item for item in chosen if "." not in item}
    parts = None if chosen is None else {item.partition(".")[0] for item in chosen}
    old_concepts, new_concepts = old.get("concepts", {}), new.get("concepts", {})
    names = [n for n in new_concepts if parts is None or n in parts]
    names += [n for n in old_concepts if n not in new_concepts and (parts is None or n in parts)]
    for name in names:
        before, after = old_concepts.get(name), new_concepts.get(name)
        if before is None:
            out.append(Difference("concept", "added (not in the baseline)", name))
            continue
        if after is None:
            out.append(Difference("concept", "removed (in the baseline, not in this run)", name))
            continue
        only = None
        if whole is not None and name not in whole:
            only = {item.partition(".")[2] for item in chosen or () if item.partition(".")[0] == name}
        out += _diff_concept(name, before, after, tolerance, only)
    if not strict_stability:
        kept = [_stable_part(d, old_concepts, new_concepts, ignored) for d in out]
        out = [d for d in kept if d is not None]
    return out


def _unstable(concepts: Mapping[str, Any], difference: Difference) -> set[str]:
    """The units a report marks unstable where ``difference`` is (a definition's, or a concept's overlap)."""
    concept = concepts.get(difference.concept or "") or {}
    if difference.definition is not None:
        place = (concept.get("definitions") or {}).get(difference.definition) or {}
    else:
        place = concept.get("overlap") or {}
    return set((place.get("stability") or {}).get("unstable") or [])


def _stable_part(
    difference: Difference,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    ignored: list[str] | None,
) -> Difference | None:
    """``difference`` without its changes of units unstable in either report (``None``: nothing was left); what
    was left out is described in ``ignored``."""
    if difference.kind not in ("members", "overlap"):
        return difference
    unstable = _unstable(old, difference) | _unstable(new, difference)
    details: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in difference.details.items()}
    changes = [details] if difference.kind == "members" else [details.get(c) for c in CATEGORIES]
    dropped: list[str] = []
    for change in changes:
        if isinstance(change, dict):
            for side in ("added", "removed"):
                dropped += [unit for unit in change[side] if unit in unstable]
                change[side] = [unit for unit in change[side] if unit not in unstable]
    if not dropped:
        return difference
    if ignored is not None:
        units = list(dict.fromkeys(dropped))
        verb = "is" if len(units) == 1 else "are"
        ignored.append(
            f"{difference.subject}: {_units(units)} changed membership but {verb} unstable across the probe seeds "
            "(--strict-stability counts such changes)"
        )
    if difference.kind == "members":
        added, removed = details["added"], details["removed"]
        if not added and not removed:
            return None
        return Difference("members", _members_text(added, removed), difference.concept, difference.definition, details)
    for category in CATEGORIES:
        change = details.get(category)
        if isinstance(change, dict) and not change["added"] and not change["removed"]:
            del details[category]
    message = _overlap_text(details)
    return Difference("overlap", message, difference.concept, details=details) if message else None


def _members_text(added: list[str], removed: list[str]) -> str:
    parts = []
    if added:
        parts.append(f"+{len(added)} ({_units(added)})")
    if removed:
        parts.append(f"-{len(removed)} ({_units(removed)})")
    return f"members {' '.join(parts)}"


def _overlap_text(details: Mapping[str, Any]) -> str:
    """The message of an overlap difference from its details (categories' changes, metrics' old and new)."""
    parts: list[str] = []
    for category in CATEGORIES:
        change = details.get(category)
        if change:
            added, removed = change["added"], change["removed"]
            moves = " ".join(
                part
                for part in (f"+{_units(added)}" if added else "", f"-{_units(removed)}" if removed else "")
                if part
            )
            parts.append(f"{category.replace('_', ' ')} {moves}")
    for metric in METRICS:
        if metric in details:
            before, after = details[metric]
            parts.append(f"{metric} {_num(before)} -> {_num(after)}")
    return "; ".join(parts)


def _diff_concept(
    name: str, old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float, only: set[str] | None = None
) -> list[Difference]:
    out: list[Difference] = []
    old_defs, new_defs = old.get("definitions", {}), new.get("definitions", {})
    for definition in [*new_defs, *(d for d in old_defs if d not in new_defs)]:
        if only is not None and definition not in only:
            continue
        before, after = old_defs.get(definition), new_defs.get(definition)
        if before is None:
            out.append(Difference("definition", "added (not in the baseline)", name, definition))
        elif after is None:
            out.append(Difference("definition", "removed (in the baseline, not in this run)", name, definition))
        else:
            out += _diff_definition(name, definition, before, after, tolerance)
    if only is None:
        out += _diff_overlap(name, old.get("overlap"), new.get("overlap"), tolerance)
    return out


def _diff_definition(
    concept: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float
) -> list[Difference]:
    out: list[Difference] = []

    def add(kind: str, message: str, **details: Any) -> None:
        out.append(Difference(kind, message, concept, name, details))

    for key in ("kind", "combinator"):
        if old.get(key) != new.get(key):
            add("definition", f"{key} {old.get(key)} -> {new.get(key)}", field=key, old=old.get(key), new=new.get(key))
    old_criteria, new_criteria = old.get("criteria", []), new.get("criteria", [])
    for index in range(max(len(old_criteria), len(new_criteria))):
        label = f"criterion {index + 1}"
        if index >= len(old_criteria):
            add("definition", f"{label} added: {_criterion_text(new_criteria[index])}", criterion=index)
            continue
        if index >= len(new_criteria):
            add("definition", f"{label} removed: {_criterion_text(old_criteria[index])}", criterion=index)
            continue
        before, after = old_criteria[index], new_criteria[index]
        changed = [
            key for key in ("checker", "params", "probe", "threshold", "with") if before.get(key) != after.get(key)
        ]
        if changed:
            shown = "; ".join(f"{key} {_value(before.get(key))} -> {_value(after.get(key))}" for key in changed)
            add("definition", f"{label} ({after['checker']}) changed: {shown}", criterion=index, fields=changed)
            if "checker" in changed:
                continue
        moved_units = _moved_scores(before.get("scores"), after.get("scores"), tolerance)
        if moved_units:
            largest = max(moved_units, key=lambda unit: _distance(*moved_units[unit]))
            a, b = moved_units[largest]
            add(
                "scores",
                f"{after['checker']} ({label}) moved on {len(moved_units)} unit(s), most at {largest}: "
                f"{_num(a)} -> {_num(b)}",
                criterion=index,
                units={unit: [a, b] for unit, (a, b) in moved_units.items()},
            )
    if old.get("status") != new.get("status"):
        reason = new.get("error") or new.get("not_applicable") or ""
        add(
            "definition",
            f"status {old.get('status')} -> {new.get('status')}" + (f": {reason}" if reason else ""),
            field="status",
            old=old.get("status"),
            new=new.get("status"),
        )
    before_members, after_members = old.get("members"), new.get("members")
    if before_members is not None and after_members is not None and before_members != after_members:
        added = [u for u in after_members if u not in before_members]
        removed = [u for u in before_members if u not in after_members]
        add("members", _members_text(added, removed), added=added, removed=removed)
    return out


def _distance(before: float | None, after: float | None) -> float:
    """How far a score moved; a score that appeared or vanished moved the most."""
    return float("inf") if before is None or after is None else abs(after - before)


def _moved_scores(
    old: Mapping[str, float | None] | None, new: Mapping[str, float | None] | None, tolerance: float
) -> dict[str, tuple[float | None, float | None]]:
    if old is None or new is None:
        return {}
    return {
        unit: (old.get(unit), new.get(unit))
        for unit in new
        if unit in old and moved(old.get(unit), new.get(unit), tolerance)
    }


def _diff_overlap(
    concept: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, tolerance: float
) -> list[Difference]:
    if old is None and new is None:
        return []
    if old is None or new is None:
        state = "now has an overlap" if old is None else "no longer has an overlap"
        return [Difference("overlap", state, concept, details={"old": old is not None, "new": new is not None})]
    details: dict[str, Any] = {}
    for category in CATEGORIES:
        before, after = old.get(category, []), new.get(category, [])
        if before != after:
            added = [u for u in after if u not in before]
            removed = [u for u in before if u not in after]
            details[category] = {"added": added, "removed": removed}
    for metric in METRICS:
        before, after = old.get(metric), new.get(metric)
        if moved(before, after, tolerance):
            details[metric] = [before, after]
    if not details:
        return []
    return [Difference("overlap", _overlap_text(details), concept, details=details)]


def diff_text(differences: list[Difference], baseline: str) -> list[str]:
    """The lines printed for a diff (the first says how many)."""
    if not differences:
        return [f"no differences from the baseline {baseline}"]
    lines = [f"{len(differences)} difference(s) from the baseline {baseline}:"]
    lines += [f"  {difference}" for difference in differences]
    return lines
