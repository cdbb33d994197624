"""Thresholds: the rule that turns a checker's scores into members (``">= 0.4"`` or ``{top_k: 3}``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from defcheck.diagnostics import did_you_mean, short_repr

if TYPE_CHECKING:
    import torch

Operator = Literal[">=", ">", "<=", "<"]
_COMPARISON = re.compile(r"^\s*(>=|>|<=|<)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
MAX_TOP_K = 2**31 - 1
THRESHOLD_HELP = "use a comparison such as '>= 0.4', '> 0' or '< -0.2', or a rank rule such as {top_k: 3}"


@dataclass(frozen=True)
class Comparison:
    """Members are the units whose score compares true with ``value``; undefined (NaN) scores never pass."""

    op: Operator
    value: float

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """A boolean mask of the units that pass, same shape as ``scores``."""
        import torch  # here, not at the top: the language layer loads without torch (validate, list)

        ops = {">=": torch.ge, ">": torch.gt, "<=": torch.le, "<": torch.lt}
        return ops[self.op](scores, self.value) & ~torch.isnan(scores)

    def scaled(self, factor: float) -> Comparison:
        """The same rule with its cut-off multiplied by ``factor`` (for sensitivity analysis)."""
        return Comparison(self.op, self.value * factor)

    def to_json(self) -> str:
        return str(self)


@dataclass(frozen=True)
class TopK:
    """Members are the ``k`` highest-scoring units (ties broken by unit order), optionally also ``>= min``."""

    k: int
    min: float | None = None

    def __str__(self) -> str:
        return f"top {self.k}" + (f" and >= {self.min:g}" if self.min is not None else "")

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        import torch

        flat = scores.flatten().double()
        valid = ~torch.isnan(flat)
        if self.min is not None:
            valid &= flat >= self.min
        keyed = torch.where(valid, flat, torch.full_like(flat, -math.inf))
        order = torch.sort(keyed, descending=True, stable=True).indices[: self.k]
        chosen = torch.zeros_like(valid)
        chosen[order] = valid[order]
        return chosen.reshape(scores.shape)

    def scaled(self, factor: float) -> TopK:
        return TopK(max(1, round(self.k * factor)), None if self.min is None else self.min * factor)

    def to_json(self) -> dict[str, Any]:
        return {"top_k": self.k} | ({"min": self.min} if self.min is not None else {})


Threshold = Comparison | TopK


def parse_threshold(raw: Any) -> Threshold:
    """Parse a threshold as written in YAML; raise ``ValueError`` with what is allowed."""
    if isinstance(raw, (Comparison, TopK)):
        return raw
    if isinstance(raw, bool) or raw is None:
        written = "null" if raw is None else str(raw).lower()  # as the YAML file spells it
        raise ValueError(f"{written} is not a threshold; {THRESHOLD_HELP}")
    if isinstance(raw, (int, float)):
        raise ValueError(f"{raw!r} has no comparison; write it as '>= {raw}' (or another of >, <=, <)")
    if isinstance(raw, str):
        match = _COMPARISON.match(raw)
        if not match:
            raise ValueError(_unreadable(raw))
        value = float(match.group(2))
        if not math.isfinite(value):
            raise ValueError(f"'{raw}': {match.group(2)} is too large to be a number (it reads as infinity)")
        return Comparison(cast(Operator, match.group(1)), value)  # the pattern admits only these operators
    if isinstance(raw, dict):
        unknown = sorted(str(key) for key in raw if key not in ("top_k", "min"))  # keys may be of mixed types
        if unknown:
            raise ValueError(
                f"a rank rule takes 'top_k' (an integer >= 1) and optionally 'min', not '{unknown[0]}'"
                f"{did_you_mean(unknown[0], ('top_k', 'min'))}"
            )
        if "top_k" not in raw:
            raise ValueError("a rank rule needs 'top_k' (an integer >= 1), e.g. {top_k: 3, min: 0.1}")
        k, minimum = raw["top_k"], raw.get("min")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {short_repr(k)}")
        if k > MAX_TOP_K:
            raise ValueError(f"top_k must be at most {MAX_TOP_K}, got {short_repr(k)}")
        if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, (int, float))):
            raise ValueError(f"min must be a number, got {short_repr(minimum)}")
        return TopK(k, None if minimum is None else finite(minimum, "min"))
    raise ValueError(f"a threshold is a string or a mapping, not {type(raw).__name__}; {THRESHOLD_HELP}")


def finite(value: float, name: str) -> float:
    """``value`` as a finite float; ``ValueError`` naming ``name`` for NaN, an infinity or an integer too large
    for a float."""
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number, got an integer too large for one") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {short_repr(value)}")
    return number


def _unreadable(raw: str) -> str:
    """Why a threshold string does not parse, and what to write instead."""
    text = raw.strip()
    if _COMPARISON.match(f">= {text}"):
        return f"'{raw}' has no comparison; write it as '>= {text}' (or another of >, <=, <)"
    for wrong, right in (("=>", ">="), ("=<", "<="), ("≥", ">="), ("≤", "<=")):
        if text.startswith(wrong) and _COMPARISON.match(right + text[len(wrong) :]):
            return f"'{raw}' is not a threshold; did you mean '{right}{text[len(wrong) :]}'?"
    return f"'{raw}' is not a threshold; {THRESHOLD_HELP}"


THRESHOLD_JSON_SCHEMA: dict[str, Any] = {
    "description": "Which units pass: a comparison ('>= 0.4') or a rank rule ({top_k: 3, min: 0.1}).",
    "anyOf": [
        {"type": "string", "pattern": _COMPARISON.pattern},
        {
            "type": "object",
            "properties": {"top_k": {"type": "integer", "minimum": 1}, "min": {"type": "number"}},
            "required": ["top_k"],
            "additionalProperties": False,
        },
    ],
}
