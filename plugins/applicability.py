"""Shared refusals of the built-in checkers: parts of a model that a checker cannot read honestly."""

from __future__ import annotations

from defcheck.plugin import ModelView, NotApplicable

# What reads each part, in the words of a reason.
PART_NAMES = {"unembed": "the unembedding (W_U)", "ln_final": "the final norm (ln_final)", "embed": "the embedding"}


def refuse_untrained(view: ModelView, parts: tuple[str, ...], what: str) -> None:
    """Not applicable when the loader found one of ``parts`` missing from the checkpoint (randomly initialised):
    scores read from it would be noise. ``what`` names what the checker reads, e.g. "logits"."""
    missing = [part for part in parts if part in view.untrained]
    if missing:
        named = " and ".join(PART_NAMES.get(part, part) for part in missing)
        raise NotApplicable(
            f"{what} needs {named}, which the checkpoint does not contain (the loader initialised it randomly; "
            "e.g. an encoder saved without its language-model head)"
        )
