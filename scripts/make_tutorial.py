"""Write docs/tutorial.md from real runs of defcheck on the hand-built models (and the shipped toy model).

Every number and every quoted sentence of the tutorial comes from a report this script builds with
``defcheck.check``; tests/test_tutorial.py re-runs it into a temporary file and fails when docs/tutorial.md
differs. Run it after changing a checker, a definition or the report's wording:

    python scripts/make_tutorial.py            # writes docs/tutorial.md
    python scripts/make_tutorial.py --output /tmp/tutorial.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "tutorial.md"
THREADS = 2
OLD_CUT = 0.05  # the fixed difference above the random baseline that the built-in k_composition used to ask for
WIDTH = 110
SEEDS = 10  # probe seeds of section 8
REPLICATES = 200  # bootstrap resamples of section 8

# Concept files the tutorial writes next to the built-in ones (shown in the page as they are used).
FIXED_LENGTH = """\
concept: fixed_length_induction_head
unit: attention_head
summary: induction_head, with its behavioral definition probed at one repeat length only.
definitions:
  prefix_matching_and_copying:
    kind: behavioral
    source: Olsson et al. 2022, at one repeat length
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 32, length: 13}
        threshold: ">= 0.4"
      - checker: copying
        probe: {name: repeated_random_tokens, n: 32, length: 13}
        threshold: "> 0"
  k_composition:              # the same two mechanistic definitions as induction_head
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: composition
        params: {type: K, baseline: divide, aggregate: weighted}
        with: previous_token_head.carries_previous
        threshold: ">= 1.5"
      - {checker: ov_eigenvalue_copying, threshold: ">= 0.5"}
  previous_token_path:
    kind: mechanistic
    source: Olsson et al. 2022, ablations
    all:
      - checker: path_ablation
        params: {path: k, ablation: mean, pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 32, length: [8, 13, 21]}
        with: previous_token_head.carries_previous
        threshold: ">= 0.25"
      - {checker: ov_eigenvalue_copying, threshold: ">= 0.5"}
"""

BY_LENGTH = """\
concept: prefix_matching_by_length
unit: attention_head
summary: Prefix matching measured at one repeat length at a time.
definitions:
  length_8:
    kind: behavioral
    source: Olsson et al. 2022
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 32, length: 8}
        threshold: ">= 0.4"
  length_13:
    kind: behavioral
    source: Olsson et al. 2022
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 32, length: 13}
        threshold: ">= 0.4"
  length_21:
    kind: behavioral
    source: Olsson et al. 2022
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching}
        probe: {name: repeated_random_tokens, n: 32, length: 21}
        threshold: ">= 0.4"
"""

Q_COMPOSITION = """\
concept: q_composition_induction_head
unit: attention_head
summary: Induction heads whose queries read a duplicate-token head (Q-composition).
definitions:
  prefix_matching_and_copying:
    kind: behavioral
    source: Olsson et al. 2022
    all:
      - checker: attention_pattern
        params: {pattern: prefix_matching, aggregate: min}
        probe: {name: repeated_random_tokens, n: 32, length: [8, 13, 21]}
        threshold: ">= 0.4"
      - checker: copying
        probe: {name: repeated_random_tokens, n: 32, length: [8, 13, 21]}
        threshold: "> 0"
  q_composition:
    kind: mechanistic
    source: Elhage et al. 2021 ("Q- or K-composition")
    all:
      - checker: composition
        params: {type: Q, baseline: divide}
        with: duplicate_token_head.attends_duplicates
        threshold: ">= 1.5"
      - {checker: ov_eigenvalue_copying, threshold: ">= 0.5"}
"""

ALL_EARLIER = """\
concept: chance_composition
unit: attention_head
summary: K-composition of each head with every head of an earlier layer (for random models).
definitions:
  any_head:
    kind: behavioral
    source: tutorial
    all:
      - {checker: attention_pattern, params: {pattern: bos}, probe: {name: random_tokens, n: 4}, threshold: ">= 0"}
  composes:
    kind: mechanistic
    source: tutorial
    all:
      - {checker: composition, params: {type: K, baseline: divide}, with: any_head, threshold: ">= 1.5"}
"""

RAW = """\
concept: raw_composition
unit: attention_head
summary: K-composition with the previous-token heads, the raw ratio without the random baseline.
definitions:
  ratio:
    kind: mechanistic
    source: Elhage et al. 2021
    all:
      - checker: composition
        params: {type: K, baseline: none}
        with: previous_token_head.attends_previous
        threshold: ">= 0.1"
"""

CONCEPT_FILES = {
    "raw_composition.yaml": RAW,
    "fixed_length_induction_head.yaml": FIXED_LENGTH,
    "prefix_matching_by_length.yaml": BY_LENGTH,
    "q_composition_induction_head.yaml": Q_COMPOSITION,
    "chance_composition.yaml": ALL_EARLIER,
}


# --------------------------------------------------------------------------------------------------------------
# reading reports


def fmt(value: float | None, digits: int = 3) -> str:
    """A score as printed in the tutorial: fixed decimals, ``undefined`` for None, no ``-0.000``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def criterion(report: Any, concept: str, definition: str, index: int = 0) -> dict[str, Any]:
    return report.concepts[concept].definitions[definition].criteria[index]


def score(report: Any, concept: str, definition: str, unit: str, index: int = 0) -> float | None:
    return criterion(report, concept, definition, index)["scores"][unit]


def category(report: Any, concept: str, unit: str) -> str:
    overlap = report.concepts[concept].overlap
    for name in ("both", "behavioral_only", "mechanistic_only"):
        if unit in overlap[name]:
            return name.replace("_", " ")
    return "neither"


def quote(text: str) -> str:
    return "\n".join("> " + line for line in textwrap.wrap(text, WIDTH, break_on_hyphens=False))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def yaml_block(text: str) -> str:
    return "```yaml\n" + text.rstrip("\n") + "\n```"


def roles(view: Any, units: Sequence[str]) -> str:
    rows = [[f"`{unit}`", view.info["heads"][unit]] for unit in units]
    return table(["head", "what it was built to do"], rows)


def induction_row(report: Any, unit: str) -> list[str]:
    concept = "induction_head"
    k = criterion(report, concept, "k_composition")
    partner = k["evidence"].get(unit, {}).get("partner")
    path = criterion(report, concept, "previous_token_path")["evidence"].get(unit, {})
    return [
        f"`{unit}`",
        fmt(score(report, concept, "prefix_matching_and_copying", unit)),
        fmt(score(report, concept, "prefix_matching_and_copying", unit, 1)),
        fmt(k["scores"][unit]) + (f" (with `{partner}`)" if partner else ""),
        f"{fmt(path.get('before'))} → {fmt(path.get('after'))}" if "before" in path else "—",
        fmt(score(report, concept, "k_composition", unit, 1)),
        category(report, concept, unit),
    ]


INDUCTION_HEADER = [
    "head",
    "prefix matching (worst length)",
    "copying",
    "K-composition (× chance)",
    "prefix matching, before → after ablating the partner",
    "OV eigenvalue ratio",
    "induction_head",
]


# --------------------------------------------------------------------------------------------------------------
# the page


def build_page(progress: Callable[[str], None] = lambda _: None) -> str:
    from defcheck_plugins.constructed import CONSTRUCTED, IMPOSTOR_LENGTH, Layout, induction

    import defcheck
    from defcheck.models import ModelView, TokenSpace, build_bridge

    try:
        from defcheck_plugins.loaders import builtin_models
    except ImportError:  # the loader plugin is not installed
        builtin_models = list  # type: ignore[assignment]

    folder = Path(tempfile.mkdtemp(prefix="defcheck-tutorial-"))
    for name, text in CONCEPT_FILES.items():
        (folder / name).write_text(text)

    def check(view: Any, concepts: Sequence[str], definitions: Sequence[str] = ()) -> Any:
        progress(f"{view.name}: {', '.join([*concepts, *definitions])}")
        return defcheck.check(view, concepts=list(concepts), definitions=list(definitions), paths=[folder])

    blocks: list[str] = []

    def add(*parts: str) -> None:
        blocks.extend(part.strip("\n") for part in parts if part.strip())

    views = {name: builder() for name, builder in CONSTRUCTED.items()}
    definitions_file = (ROOT / "definitions" / "induction_head.yaml").read_text()
    body = definitions_file[definitions_file.index("definitions:") :]

    add(
        '# Tutorial: two meanings of "induction head"',
        "<!-- Generated by scripts/make_tutorial.py from real runs of defcheck; do not edit by hand.\n"
        "     tests/test_tutorial.py fails when this page and the tool disagree. -->",
    )
    add(
        *prose(
            """
            Interpretability names the parts it finds inside networks: previous-token heads, induction heads,
            copy-suppression heads. Each name can be pinned down in two ways.

            - A **behavioral** definition says what the part *does* on inputs we choose. Olsson et al. (2022)
              call a head an induction head if, on a random sequence that repeats, it attends to the token that
              came after the earlier copy of the current token (*prefix matching*) and raises that token's
              logit (*copying*): it completes `[A][B] … [A] → [B]`.
            - A **mechanistic** definition says *how* the part does it. Elhage et al. (2021) describe the
              induction head by its circuit: its keys read what a previous-token head wrote (*K-composition*),
              and its OV circuit copies tokens (mostly positive eigenvalues).

            On the small models where these definitions were introduced they picked out the same heads, so one
            word came to be used for both. They are still two different claims. The behavioral one is cheap to
            check and is about exactly the behavior you probed, no more: it says nothing about how the head
            does it, and a head can pass it with a trick that only works on the probe. The mechanistic one
            predicts much more (what an ablation will do, how the head behaves off the probe), but it describes
            *one* mechanism, and a head that reaches the same behavior another way falls outside it. Reading a
            behavioral result as a mechanistic one ("we found the induction heads, so we know how this model
            copies in context") claims more understanding than was shown.

            defcheck writes both kinds of definition down as data, checks a model against each, and reports
            where they agree and where they part, naming the criterion that keeps a head on one side. This
            tutorial runs it on small models whose weights were written by hand, so the right answer is known
            before the tool runs. **Every number and every quoted sentence below is the tool's own output**,
            produced by `scripts/make_tutorial.py`.
            """
        )
    )

    add("## The definitions")
    add(
        *prose(
            """
            The built-in concept file `definitions/induction_head.yaml` holds one behavioral and two
            mechanistic definitions (`defcheck list` shows every concept; [checkers.md](checkers.md) gives
            each checker's formula):
            """
        ),
        yaml_block(body),
    )
    add(
        *prose(
            """
            A head is a *behavioral* member of a concept when it passes one of its behavioral definitions, a
            *mechanistic* member when it passes a mechanistic one. The report sorts every head into **both**,
            **behavioral only**, **mechanistic only** or **neither**, and explains each one-sided head.
            """
        )
    )

    add("## The hand-built models")
    add(
        *prose(
            """
            `defcheck_plugins.constructed` builds TransformerLens 4 models (`TransformerBridge`) and writes
            their weights by hand. The residual stream is cut into one-hot subspaces: the current token
            (`TOK`), the previous token (`PREV`, written by a previous-token head), the prediction (`OUT`, the
            only thing the unembedding reads), the position (`POS`) and a few more. Heads read and write them
            through identity blocks, so what a head does can be read off its weights; the module's docstrings
            derive each one. Every model also carries three distractors: a head that attends uniformly, one
            that attends to BOS and one that attends to the current token, each with a small random OV circuit.
            The vocabulary is BOS and the numbers 1 to 31.
            """
        )
    )
    add(
        table(
            ["model (`defcheck run --model ...`)", "what it was built to show"],
            [[f"`builtin:{name}`", view.info["summary"]] for name, view in views.items()],
        )
    )

    # --- 1. the true circuit -----------------------------------------------------------------------------
    view = views["induction"]
    report = first = check(view, ["induction_head", "previous_token_head"], ["raw_composition.ratio"])
    path = criterion(report, "induction_head", "previous_token_path")["evidence"]["1.0"]
    k = criterion(report, "induction_head", "k_composition")
    add("## 1. A true induction circuit: the definitions agree", roles(view, ["0.0", "1.0"]))
    add("`defcheck run --model builtin:induction --concept induction_head` says:")
    add(quote(report.concepts["induction_head"].overlap.narrative))
    add(table(INDUCTION_HEADER, [induction_row(report, unit) for unit in ("1.0", "1.1", "1.2", "1.3")]))
    add(
        *prose(
            f"""
            Both kinds find `1.0` and only `1.0`. The mechanistic evidence is specific: the composition checker
            names `{k["evidence"]["1.0"]["partner"]}`, the previous-token head, as the partner whose output
            `1.0`'s keys read, and removing that output from `1.0`'s keys alone (mean ablation; its queries and
            values untouched) takes its prefix matching from {fmt(path["before"])} to {fmt(path["after"])},
            what uniform attention over the keys scores by chance. The layer-1 distractors fail every criterion.
            `previous_token_head` agrees as well: the report puts `0.0` in both kinds of it.
            """
        )
    )

    # --- 2. the impostor ---------------------------------------------------------------------------------
    view = views["impostor"]
    length = IMPOSTOR_LENGTH
    report = check(view, ["induction_head", "fixed_length_induction_head", "prefix_matching_by_length"])
    by_length = [score(report, "prefix_matching_by_length", f"length_{n}", "1.0") for n in (8, 13, 21)]
    add("## 2. An impostor: the behavior without the mechanism", roles(view, ["0.0", "1.0"]))
    add(
        *prose(
            f"""
            On a block of {length} random tokens repeated, the token after the earlier copy of the current
            token is always exactly {length - 1} positions back, so a head that attends {length - 1} back *by
            position* is indistinguishable from an induction head, as long as the probe uses that length.
            Suppose a behavioral definition probes only that length:
            """
        ),
        yaml_block(FIXED_LENGTH),
        "The report on `builtin:impostor`:",
        quote(report.concepts["fixed_length_induction_head"].overlap.narrative),
    )
    add(
        *prose(
            f"""
            The head is an induction head by that behavioral definition and by neither mechanistic one, and
            the report names the criteria that keep it off the mechanistic side. The behavioral definition was
            not wrong about the behavior it probed: at repeat length {length} the head's prefix matching is
            {fmt(by_length[1])}. The probe was too narrow. The same head at three lengths:
            """
        ),
        table(["repeat length", "8", "13", "21"], [["prefix matching of `1.0`", *map(fmt, by_length)]]),
    )
    prefix, copying = report.concepts["induction_head"].definitions["prefix_matching_and_copying"].criteria
    add(
        *prose(
            f"""
            The built-in behavioral definition probes lengths 8, 13 and 21 and keeps the worst (`aggregate:
            min`), so there the impostor's prefix matching is {fmt(prefix["scores"]["1.0"])} (`{prefix["threshold"]}`
            fails) while its copying is {fmt(copying["scores"]["1.0"])} (`{copying["threshold"]}` passes):
            `1.0` is in {category(report, "induction_head", "1.0")} kind of `induction_head`. A behavioral
            definition is a claim about its probe distribution; widening the distribution is how it rules out
            shortcuts that a mechanistic definition rules out by construction.
            """
        )
    )

    # --- 3. anti-induction -------------------------------------------------------------------------------
    view = views["anti-induction"]
    report = check(view, ["induction_head", "copy_suppression_head"])
    add("## 3. Anti-induction: the attention without the copying", roles(view, ["0.0", "1.0"]))
    add(table(INDUCTION_HEADER, [induction_row(report, "1.0")]))
    add(
        *prose(
            f"""
            `1.0` has the induction head's attention, circuit and all: its K-composition with `0.0` and the
            effect of ablating `0.0` are those of model 1. But its OV circuit is negated, so it lowers the logit
            of the token it attends to. Prefix matching alone would call it an induction head; its copying
            ({fmt(score(report, "induction_head", "prefix_matching_and_copying", "1.0", 1))}) and OV eigenvalue
            ratio ({fmt(score(report, "induction_head", "k_composition", "1.0", 1))}) keep it out of both
            kinds. It is what `copy_suppression_head` describes, and the report says so:
            """
        ),
        quote(report.concepts["copy_suppression_head"].overlap.narrative),
    )

    # --- 4. Q-composition --------------------------------------------------------------------------------
    view = views["q-composition"]
    report = check(view, ["induction_head", "q_composition_induction_head"])
    q = criterion(report, "q_composition_induction_head", "q_composition")
    pairs = {pair["mechanistic"][0]: pair for pair in report.concepts["induction_head"].overlap["pairs"]}

    def side(name: str) -> str:
        pair = pairs[name]
        return next(key.replace("_", " ") for key in ("both", "behavioral_only") if "1.0" in pair[key])

    add("## 4. The same behavior by another mechanism: Q-composition", roles(view, ["0.0", "0.1", "1.0"]))
    add(
        *prose(
            f"""
            Here `1.0` finds the token after the earlier copy through its *queries*: `0.1` attends to earlier
            copies of the current token and writes the position after each, and `1.0`'s query reads that
            position while its key reads plain positional embeddings. Its behavior is an induction head's
            (prefix matching {fmt(score(report, "induction_head", "prefix_matching_and_copying", "1.0"))},
            copying {fmt(score(report, "induction_head", "prefix_matching_and_copying", "1.0", 1))}). The
            built-in `induction_head` has three mechanistic definitions: `k_composition` and
            `previous_token_path` look for a previous-token head feeding the keys, `q_composition` for a
            duplicate-token head feeding the queries. The report says:
            """
        ),
        quote(report.concepts["induction_head"].overlap.narrative),
    )
    add(
        *prose(
            f"""
            Membership of a kind is the union of its definitions, so `1.0` is in both kinds because
            `q_composition` admits it. The pairs tell the rest: against `k_composition` alone `1.0` is
            {side("k_composition")} (Jaccard 0 above), against `previous_token_path` {side("previous_token_path")},
            and against `q_composition` {side("q_composition")}. Had the concept file carried only the
            K-composition definition, this head
            would be a behavioral-only member and the report would name `k_composition` as the reason. Nothing
            is wrong with the head or with the tool: each mechanistic definition describes one mechanism, and
            this head uses the other one. The same check as a concept of its own, with just the Q-composition
            definition:
            """
        ),
        yaml_block(Q_COMPOSITION),
        quote(report.concepts["q_composition_induction_head"].overlap.narrative),
        *prose(
            f"""
            The composition checker names `{q["evidence"]["1.0"]["partner"]}`, the duplicate-token head, as the
            partner: Q-composition {fmt(q["scores"]["1.0"])} times chance.
            """
        ),
    )

    # --- 5. degenerate -----------------------------------------------------------------------------------
    view = views["degenerate"]
    report = check(view, ["induction_head"])
    k = criterion(report, "induction_head", "k_composition")
    eigen = criterion(report, "induction_head", "k_composition", 1)
    undetermined = ", ".join(f"`{u}`" for u in report.concepts["induction_head"].overlap.undetermined)
    add('## 5. Degenerate heads: "undefined" is an answer', roles(view, ["0.0", "1.0", "1.1"]))
    add(
        *prose(
            f"""
            A composition score divides by the norm of the earlier head's OV circuit, an eigenvalue ratio by
            the summed size of the eigenvalues; here both are 0/0. The report does not make up a number:

            - `1.0`, composition: *{k["undefined"]["1.0"]}*
            - `1.1`, OV eigenvalues: *{eigen["undefined"]["1.1"]}*
            - `0.0`, OV eigenvalues: *{eigen["undefined"]["0.0"]}*

            None of them is a member of `k_composition` (its members: {k_members(report)}), and the overlap
            lists the heads whose non-membership rests on an undefined score, so that "not a member" is not
            read as "shown not to be one": {undetermined}.
            """
        )
    )

    # --- 6. composition is weak evidence -----------------------------------------------------------------
    rows = []
    cut = None
    for label, model, result in (
        ("`induction` (32 tokens)", views["induction"], first),
        ("`induction-ln` (32 tokens, LayerNorm + MLPs)", views["induction-ln"], None),
        ("`induction` with 128 tokens", induction(128), None),
    ):
        if result is None:
            result = check(model, [], ["induction_head.k_composition", "raw_composition.ratio"])
        found = criterion(result, "induction_head", "k_composition")
        ratio = score(result, "raw_composition", "ratio", "1.0")
        cut = found["threshold"]
        rows.append(
            [
                label,
                fmt(model.d_vocab**-0.5),
                fmt(ratio),
                fmt(ratio / found["scores"]["1.0"]),
                fmt(ratio - ratio / found["scores"]["1.0"]),
                "yes" if ratio - ratio / found["scores"]["1.0"] >= OLD_CUT else "**no**",
                fmt(found["scores"]["1.0"], 2),
                "yes" if "1.0" in found["passed"] else "**no**",
            ]
        )
    layout = Layout()
    config = {"n_layers": 2, "d_model": layout.d_model, "n_heads": 8, "d_head": layout.d_head}
    config |= {"d_vocab": layout.d_vocab, "n_ctx": layout.n_ctx, "attn_only": True, "normalization_type": None}
    model = ModelView(build_bridge(config, seed=0), TokenSpace(layout.d_vocab, 0), name="random")
    result = check(model, ["chance_composition"])
    chance = [v for u, v in criterion(result, "chance_composition", "composes")["scores"].items() if u[0] == "1"]
    add("## 6. Composition scores are weak evidence")
    add(
        *prose(
            f"""
            Composition (Elhage et al. 2021) is a ratio of Frobenius norms. For circuits like these, which pass
            a one-hot code of rank r through the identity, it cannot exceed 1/√r however clean the circuit,
            while random matrices of the same shapes already score about 1/√d_model (the *random baseline*,
            averaged over seeded samples). Both shrink as the model grows, so a perfect circuit can end up only
            a little above chance in absolute terms. An earlier version of the built-in definition subtracted
            the baseline and asked for `>= {OLD_CUT}` above it; the current one divides by the baseline and asks
            for `{cut}`, i.e. at least {cut.split()[-1]} times chance:
            """
        ),
        table(
            [
                "model",
                "1/√r",
                "composition of `1.0` with `0.0`",
                "random baseline",
                "difference",
                f"passes `>= {OLD_CUT}` (old)",
                "times chance",
                f"passes `{cut}`",
            ],
            rows,
        ),
    )
    add(
        *prose(
            f"""
            The fixed difference worked while the circuit was small, but with a vocabulary of 128 tokens the
            perfect partner is only {rows[-1][4]} above chance and fails it, although nothing about the circuit
            got worse: the ceiling 1/√r and the baseline both shrank. As a ratio the same circuit is
            {rows[-1][6]} times chance and passes. The margin is modest (from {min(row[6] for row in rows)} to
            {max(row[6] for row in rows)} times chance across the rows). What makes `{cut}` usable is that chance
            itself stays near 1: in a randomly
            initialised model with the shapes of `induction` and 8 heads a layer, each of the {len(chance)}
            layer-1 heads with its best layer-0 partner scores between {fmt(min(chance))} and {fmt(max(chance))}
            times chance, even after taking the best of 8 partners. A composition score is still weak
            evidence: it says that two heads' subspaces line up, not that the later head uses what the earlier
            one wrote, which is why `induction_head` also has the ablation definition `previous_token_path`.
            """
        )
    )

    # --- 7. the trained toy model ------------------------------------------------------------------------
    if "toy-induction" in builtin_models():
        from defcheck.models.loading import load_model

        toy = load_model("builtin:toy-induction")
        report = check(toy, ["induction_head", "previous_token_head"])
        concept = report.concepts["induction_head"]
        units = [*concept.overlap.both, *concept.overlap.behavioral_only, *concept.overlap.mechanistic_only]
        add("## 7. A trained model")
        add(
            *prose(
                f"""
                `builtin:toy-induction` ({toy.n_layers} layers of {toy.n_heads} heads, attention only) was
                trained on repeated random tokens until induction heads formed; nobody wrote its weights. It is
                the default model of `defcheck run`, which says:
                """
            ),
            quote(concept.overlap.narrative),
            quote(report.concepts["previous_token_head"].overlap.narrative),
        )
        if units:
            add(table(INDUCTION_HEADER, [induction_row(report, unit) for unit in units]))
        prev = report.concepts["previous_token_head"].overlap
        ablation = criterion(report, "induction_head", "previous_token_path")["evidence"]
        drops = [ablation[u]["after"] for u in units if "after" in ablation.get(u, {})]
        partners = sorted(
            {criterion(report, "induction_head", "k_composition")["evidence"][u]["partner"] for u in units}
        )
        add(
            *prose(
                f"""
                Here the two kinds agree on all {len(units)} heads of layer 1, and the mechanistic evidence
                names a real partner for each: K-composition with {" or ".join(f"`{p}`" for p in partners)},
                both of them previous-token heads in both kinds of `previous_token_head`
                ({", ".join(f"`{u}`" for u in prev.both)}), and ablating that partner from the keys drops the
                prefix matching to between {fmt(min(drops))} and {fmt(max(drops))}. The one one-sided head in
                these two reports is `0.0` of `previous_token_head`: it attends to the previous token, but its QK
                circuit is not positional enough for the mechanistic definition, as quoted above. No Q-composition
                was found (the `q_composition` pair has
                Jaccard 0): the network learned the K-composition circuit.
                """
            )
        )
    if "toy-shortcut" in builtin_models():
        from defcheck.models.loading import load_model

        shortcut = load_model("builtin:toy-shortcut")
        report = check(shortcut, ["induction_head"])
        prefix = criterion(report, "induction_head", "prefix_matching_and_copying")["scores"]
        add(
            *prose(
                """
                `builtin:toy-shortcut` has the same shape but was trained with the repeated block always 8
                tokens long and always at the same place, so attending 7 positions back by position solves its
                task without looking at tokens (model 2's trick, learned). `defcheck run --model
                builtin:toy-shortcut --concept induction_head` says:
                """
            ),
            quote(report.concepts["induction_head"].overlap.narrative),
            *prose(
                f"""
                On the probe's repeats of 8, 13 and 21 random tokens no head does prefix
                matching (the best worst-length score is {fmt(max(prefix.values()))}), and since no head
                qualifies as a previous-token or duplicate-token head, the composition scores are undefined
                rather than low. A model trained on a narrow task found the narrow solution, and a behavioral
                definition with a wide enough probe tells it apart from induction.
                """
            ),
        )

    # --- 8. noise ----------------------------------------------------------------------------------------
    if "toy-text" in builtin_models():
        add(*noise_section(progress))

    # --- closing -----------------------------------------------------------------------------------------
    add("## What to take away")
    add(
        *prose(
            """
            - **Say which definition you mean.** "Head 1.0 is an induction head" is one claim under
              `prefix_matching_and_copying` and another under `k_composition`; defcheck reports them side by
              side and never merges them into one verdict.
            - **Behavioral definitions are claims about a probe.** They are easy to check and hard to argue
              with, but a head can satisfy them with a shortcut the probe happens to reward (model 2). Vary the
              probe (several repeat lengths, `aggregate: min`) before reading a behavioral member as more than
              that.
            - **Mechanistic definitions are claims about one mechanism.** They predict much more, and they miss
              heads that reach the same behavior another way (model 4, which `k_composition` alone misses). A
              behavioral-only head is a prompt to
              look for a second mechanism, not necessarily a false positive.
            - **Read the divergences.** The informative heads are the one-sided ones, and the report names the
              criterion, score and threshold that put each one there. Undefined scores are reported as such
              (model 5), and weak mechanistic signals such as composition scores deserve the scepticism of
              section 6.

            The distinction between the two kinds of definition, with induction heads as its main example,
            comes from the essay this project grew out of, "Behavioral and mechanistic definitions (often
            confuse AI alignment discussions)"; the definitions themselves cite Olsson et al. 2022 and Elhage et
            al. 2021.
            """
        )
    )
    return "\n\n".join(blocks) + "\n"


def prose(text: str, width: int = WIDTH) -> list[str]:
    """Dedented text as Markdown blocks, each paragraph and list item re-wrapped to ``width``."""
    out = []
    for block in textwrap.dedent(text).strip("\n").split("\n\n"):
        lines = block.splitlines()
        if lines[0].startswith("- "):
            items: list[list[str]] = []
            for line in lines:
                if line.startswith("- "):
                    items.append([line[2:]])
                else:
                    items[-1].append(line.strip())
            wrapped = [
                textwrap.fill(" ".join(item), width, initial_indent="- ", subsequent_indent="  ") for item in items
            ]
            out.append("\n".join(wrapped))
        else:
            out.append(textwrap.fill(" ".join(line.strip() for line in lines), width, break_on_hyphens=False))
    return out


def k_members(report: Any) -> str:
    members = report.concepts["induction_head"].definitions["k_composition"].members
    return ", ".join(f"`{m}`" for m in members) if members else "none"


def noise_section(progress: Callable[[str], None]) -> list[str]:
    """Section 8: the same verdicts under 10 probe seeds and under a bootstrap of one seed, on toy-text."""
    import defcheck
    from defcheck.models.loading import load_model

    concepts = ["induction_head", "previous_token_head"]
    model = load_model("builtin:toy-text")
    runs = {}
    for option, value in (("seeds", SEEDS), ("bootstrap", REPLICATES)):
        progress(f"{model.name}: {', '.join(concepts)} ({option} {value})")
        runs[option] = defcheck.check(model, concepts=concepts, **{option: value})
    seeds, boot = (json.loads(runs[name].to_json()) for name in ("seeds", "bootstrap"))
    assert seeds["seeds"] == list(range(SEEDS)) and boot["bootstrap"] == REPLICATES

    def crit(data: dict[str, Any], concept: str, definition: str, index: int = 0) -> dict[str, Any]:
        return data["concepts"][concept]["definitions"][definition]["criteria"][index]

    def overlap(data: dict[str, Any], concept: str) -> dict[str, Any]:
        return data["concepts"][concept]["overlap"]

    def sds(margin: float) -> str:  # as the Markdown report prints a margin ("passes by 26 sd")
        return f"{abs(margin):.2g}" if abs(margin) < 100 else f"{abs(margin):.0f}"

    def units(names: Sequence[str]) -> str:
        quoted = [f"`{name}`" for name in names]
        return " and ".join(quoted) if len(quoted) < 3 else ", ".join(quoted[:-1]) + " and " + quoted[-1]

    def size(probe: str) -> int:
        found = re.search(r"\bn=(\d+)", probe)
        assert found, probe
        return int(found.group(1))

    # A verdict that holds: the induction heads, a long way from the threshold in every seed.
    heads = overlap(seeds, "induction_head")["both"]
    stability = overlap(seeds, "induction_head")["stability"]
    assert heads and stability["unstable"] == [] and stability["jaccard"]["min"] == stability["jaccard"]["max"] == 1
    behavioral = [
        name
        for name, d in seeds["concepts"]["induction_head"]["definitions"].items()
        if d["kind"] == "behavioral" and set(heads) <= set(d["members"] or [])
    ]
    assert behavioral == ["prefix_matching_on_text"], behavioral
    text = crit(seeds, "induction_head", behavioral[0])
    text_boot = crit(boot, "induction_head", behavioral[0])
    assert text["params"]["pattern"] == "prefix_matching" and text["scores"] == text_boot["scores"]
    for d in seeds["concepts"]["induction_head"]["definitions"].values():
        assert all(d["stability"]["share"].get(head, 1.0) == 1.0 for head in heads)
    assert all(min(text["margins"][h], text_boot["margins"][h]) > 5 for h in heads)
    held = narrative_sentence(overlap(seeds, "induction_head")["narrative"], "category is the same")

    # A verdict that is noise: a one-sided head whose membership changes between seeds, flagged by the bootstrap.
    prev, prev_boot = overlap(seeds, "previous_token_head"), overlap(boot, "previous_token_head")
    noisy = prev["stability"]["unstable_disagreements"]
    assert len(noisy) == 1 and noisy == prev["stability"]["unstable"] == prev_boot["bootstrap"]["within_noise"], (
        noisy,
        prev_boot["bootstrap"],
    )
    unit = noisy[0]
    assert unit in prev["behavioral_only"] and prev["both"] == []
    (definition,) = [
        name
        for name, d in seeds["concepts"]["previous_token_head"]["definitions"].items()
        if unit in d["stability"]["unstable"]
    ]
    share = seeds["concepts"]["previous_token_head"]["definitions"][definition]["stability"]["share"][unit]
    edge, edge_boot = crit(seeds, "previous_token_head", definition), crit(boot, "previous_token_head", definition)
    assert 0 < share < 1 and edge["scores"][unit] == edge_boot["scores"][unit]
    assert 0 < edge["margins"][unit] < 2 and 0 < edge_boot["margins"][unit] < 2  # passes, by less than 2 sd
    cut = edge["threshold"]
    stable_others = prev["stability"]["stable_disagreements"]
    seeds_noise = narrative_sentence(prev["narrative"], "within noise")
    boot_noise = narrative_sentence(prev_boot["narrative"], "within noise")
    assert f": {unit};" in seeds_noise and f": {unit};" in boot_noise

    # The two estimates of the noise: the bootstrap's standard error over the seed-to-seed sd, per criterion.
    ratios = []
    for concept in concepts:
        for name, d in boot["concepts"][concept]["definitions"].items():
            for index, c in enumerate(d["criteria"]):
                by_seed = crit(seeds, concept, name, index)["sd"]
                pairs = [c["sd"][u] / by_seed[u] for u in c["sd"] or {} if c["sd"][u] and (by_seed or {}).get(u)]
                if pairs:
                    ratios.append(statistics.median(pairs))
    assert ratios and all(0.5 < r < 2 for r in ratios), ratios
    fixed = prev_boot["bootstrap"]["fixed"]

    # The Markdown reports, cut down to the lines about the noisy head's definition.
    seeds_md = markdown_excerpt(runs["seeds"].to_markdown(), "previous_token_head", "Stability across", definition)
    boot_md = markdown_excerpt(runs["bootstrap"].to_markdown(), "previous_token_head", "Margins in", definition)
    interval = next(
        line
        for line in markdown_part(runs["bootstrap"].to_markdown(), "previous_token_head").splitlines()
        if line.startswith("Jaccard 95% interval")
    )
    assert f"{unit} passes by {sds(edge['margins'][unit])} sd" in seeds_md
    assert f"{unit} passes by {sds(edge_boot['margins'][unit])} sd" in boot_md

    command = "defcheck run -m builtin:toy-text " + " ".join(f"--concept {c}" for c in concepts)
    out = ["## 8. How sure is a verdict?"]
    out += prose(
        f"""
        A probe is a sample. `carries_previous` scores each head on {size(edge["probe"])} random sequences,
        `{behavioral[0]}` on {size(text["probe"])} repeated passages of text per length; draw them again and
        every score moves a little, so a head that passes by a hair may fail on the next draw. defcheck measures
        that noise in two ways. `--seeds K` draws every probe under K seeds and reports, for each head, the
        share of seeds in which it is a member. `--bootstrap B` resamples the sequences of one run's probes B
        times, without running the model again, and gives each score a standard error. Either way a head's
        *margin* is (score - threshold) / sd: how many standard deviations it passes by (positive) or fails by
        (negative). Here are both, on `builtin:toy-text` (2 layers of 8 heads trained on the bytes of the King
        James Bible, [natural-text.md](natural-text.md)):
        """
    )
    out.append(f"```console\n$ {command} --seeds {SEEDS}\n$ {command} --bootstrap {REPLICATES}\n```")
    verdicts = "; ".join(
        f"`{h}` scores {fmt(text['scores'][h])} and passes by {sds(text['margins'][h])} sd across seeds and by "
        f"{sds(text_boot['margins'][h])} bootstrap standard errors"
        for h in heads
    )
    out += prose(
        f"""
        **A verdict that holds.** The induction heads {units(heads)} are in both kinds of `induction_head`.
        Their prefix matching on repeated text (`{behavioral[0]}`, relative to chance: chance is
        {fmt(text["chance"], 0)}, the threshold `{text["threshold"]}`) is far from the threshold: {verdicts}. In
        all {SEEDS} seeds they are members of every definition that admits them (a share of 100%), and the
        overlap's Jaccard is {fmt(stability["jaccard"]["min"], 0)} in every seed. The narrative ends:
        """
    )
    out.append(quote(held))
    out += prose(
        f"""
        **A verdict that is noise.** No head of this model is a previous-token head in both senses, and
        {len(prev["behavioral_only"])} are behavioral only, all through `{definition}`: attention to the previous
        token relative to chance, threshold `{cut}`. In seed 0 one of them, `{unit}`, scores
        {fmt(edge["scores"][unit])}, against a threshold of {cut.split()[-1]} and a chance level of
        {fmt(edge["chance"], 0)}. Its seed-to-seed sd is {fmt(edge["sd"][unit])}, so it passes by
        {sds(edge["margins"][unit])} sd, and it is a
        member in {share:.0%} of the {SEEDS} seeds (`stability.share`). The report says which one-sided heads
        to believe:
        """
    )
    out.append(quote(seeds_noise))
    out += prose(
        f"""
        The bootstrap of seed 0 alone ({REPLICATES} resamples of its sequences, no extra forward pass) gives
        `{unit}` a standard error of {fmt(edge_boot["sd"][unit])}, a margin of
        {sds(edge_boot["margins"][unit])} standard errors, and flags the same head:
        """
    )
    out.append(quote(boot_noise))
    out += prose(
        f"""
        So a single run already warns that `{unit}` being behavioral only may be an accident of the draw, while
        the other {len(stable_others)} one-sided heads are one-sided in every seed. The Markdown report
        (`-o report.md`) puts the margins in a table, the heads nearest their threshold first.
        From `--seeds {SEEDS}`, cut down to `{definition}`:
        """
    )
    out.append(f"```markdown\n{seeds_md}\n```")
    out.append(f"From `--bootstrap {REPLICATES}`:")
    out.append(f"```markdown\n{interval}\n\n{boot_md}\n```")
    out += prose(
        f"""
        The two estimates of the noise agree: per resampled criterion of these two reports, the median ratio of
        the bootstrap's standard error to the seed-to-seed sd is between {min(ratios):.2f} and
        {max(ratios):.2f} (for `{unit}`, {fmt(edge_boot["sd"][unit])} against {fmt(edge["sd"][unit])}). The
        bootstrap resamples only criteria whose checker keeps per-sequence partials (the streamed checkers:
        `attention_pattern`, `copying`, `path_ablation`, ...); criteria scored from the weights have no sampling
        noise, and `token_selectivity` and the other checkers that sum over the probe are kept as run. The
        report lists what it kept under `fixed` (here {", ".join(f"`{f}`" for f in fixed)}). Run
        `--bootstrap {REPLICATES}` routinely and
        `--seeds {SEEDS}` before relying on a head near its threshold; in CI, write a membership that must
        hold as a `stable: true` expectation with `seeds: {SEEDS}` in the project file
        ([ci.md](ci.md)), so that a head like `{unit}` fails the check instead of passing by the luck of the
        seed.
        """
    )
    return out


def narrative_sentence(narrative: str, words: str) -> str:
    """The narrative from the sentence that contains ``words`` to its end (the stability sentences come last)."""
    at = narrative.index(words)
    start = narrative.rfind(". ", 0, at)
    return narrative[start + 2 if start >= 0 else 0 :]


def markdown_part(markdown: str, concept: str) -> str:
    """A concept's section of a Markdown report."""
    start = markdown.index(f"\n## {concept}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end >= 0 else len(markdown)]


def markdown_excerpt(markdown: str, concept: str, caption: str, definition: str) -> str:
    """The table after the line starting with ``caption`` in a concept's section, cut to ``definition``'s row."""
    lines = markdown_part(markdown, concept).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(caption))
    assert lines[at + 1] == "" and lines[at + 3].startswith("|---"), lines[at : at + 4]
    row = next(line for line in lines[at + 4 :] if line.startswith(f"| {definition} |"))
    return "\n".join([lines[at], "", lines[at + 2], lines[at + 3], row])


def write_page(build: Callable[..., str], output: Path, description: str, argv: Sequence[str] | None = None) -> int:
    """The command line of a docs script: ``--output`` (default ``output``) and ``--quiet``; the page is built
    by ``build(progress=...)`` on ``THREADS`` threads (the budget: under a minute on 2 cores)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", type=Path, default=output, help=f"where to write the page ({output.name})")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    page = build(progress=(lambda _: None) if args.quiet else (lambda text: print(text, file=sys.stderr)))
    args.output.write_text(page, encoding="utf-8")
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return write_page(build_page, OUTPUT, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
