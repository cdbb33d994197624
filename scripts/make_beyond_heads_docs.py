"""Write docs/concepts-beyond-heads.md from real runs of defcheck on units that are not attention heads.

Every number, table and quoted sentence of the page comes from a report this script builds with
``defcheck.check``; tests/test_beyond_heads_docs.py re-runs it into a temporary file and fails when the page
differs. Run it after changing a unit kind, a neuron checker, token_detector_neuron.yaml, the gridworld plugin or
the report's wording:

    python scripts/make_beyond_heads_docs.py            # writes docs/concepts-beyond-heads.md
    python scripts/make_beyond_heads_docs.py --output /tmp/page.md

The page is a list of sections (``SECTIONS``), each a function of the shared :class:`Page` that returns Markdown,
or ``None`` to leave itself out (the policies section, when the gridworld plugin is not installed). A plugin can
write its own section: a module-level ``BEYOND_HEADS_SECTION(page) -> str`` in the plugin's module replaces the
generic rendering of its concept (``page.check(reference, concepts)`` gives reports, ``page.md`` the Markdown
helpers).
"""

from __future__ import annotations

import importlib
import io
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the docs scripts share their Markdown helpers
from make_tutorial import WIDTH, quote, table, write_page
from make_tutorial import prose as prose_blocks

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "concepts-beyond-heads.md"
DEFINITIONS = ROOT / "definitions"
NEURONS = "token_detector_neuron"
POLICIES = "goal_misgeneralization"
POLICY_PLUGIN = "defcheck_plugins.gridworld"
POLICY_MODELS = ("gridworld:policies", "gridworld:constructed")


@dataclass
class Page:
    """What the sections share: the loaded plugins, a progress callback, the reports built so far, and ``md``,
    the Markdown helpers (``fmt``, ``table``, ``quote``, ``prose``, ``yaml_file``), so that a plugin's section
    needs nothing from this script's module."""

    progress: Callable[[str], None]
    extensions: Any = None
    reports: dict[str, Any] = field(default_factory=dict)
    md: Any = None

    def check(self, reference: str, concepts: Sequence[str]) -> Any:
        """The report of ``concepts`` on the model ``reference`` (built once per page)."""
        import defcheck
        from defcheck.models.loading import load_model

        key = f"{reference} {' '.join(concepts)}"
        if key not in self.reports:
            self.progress(f"{reference}: {', '.join(concepts)}")
            self.reports[key] = defcheck.check(load_model(reference, self.extensions), list(concepts))
        return self.reports[key]


# --- formatting ----------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    """A score with fixed decimals; ``undefined`` for None."""
    return "undefined" if value is None else f"{value:.{digits}f}"


def prose(text: str) -> str:
    """Dedented paragraphs re-wrapped to the tutorial's width (list items keep their dash)."""
    return "\n\n".join(prose_blocks(text))


def yaml_file(path: Path) -> str:
    return "```yaml\n" + path.read_text(encoding="utf-8").rstrip("\n") + "\n```"


def terminal_map(report: Any, concept: str) -> str:
    """The category map of ``concept`` as ``defcheck run`` prints it (no colors)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), record=True, width=WIDTH, color_system=None)
    report.to_terminal(console)
    text = console.export_text()
    lines = text.split(f"╭─ {concept} ")[1].splitlines()
    start = next(i for i, line in enumerate(lines) if "layer x neuron" in line)
    end = next(i for i, line in enumerate(lines) if "threshold sensitivity" in line)
    return "```text\n" + "\n".join(line[2:-2].rstrip() for line in lines[start:end]) + "\n```"


def by_layer(scores: dict[str, float | None], layer: int) -> list[float]:
    return [value for unit, value in scores.items() if unit.startswith(f"{layer}.") and value is not None]


# --- sections ------------------------------------------------------------------------------------------------


def introduction(page: Page) -> str:
    return "\n\n".join(
        [
            "# Concepts beyond attention heads",
            prose(
                """
                Nothing in defcheck's definitions, checkers or overlap report is about attention heads. A concept
                file says which **unit kind** it categorizes (`unit:`), each checker says which kinds it scores,
                and a unit kind (a plugin, like a checker) says how many units a model has, how each is addressed
                and how reports draw them. This page runs the same machinery on MLP neurons of the shipped
                `builtin:toy-mlp` and, where the gridworld plugin is installed, on whole policies.

                The page is generated by `scripts/make_beyond_heads_docs.py` from real runs; a test fails when it
                is stale. Writing a unit kind of your own: [writing-plugins.md](writing-plugins.md#unitkind).
                """
            ),
        ]
    )


def unit_kinds(page: Page) -> str:
    from defcheck.engine.scores import NotApplicable
    from defcheck.engine.units import resolve_units
    from defcheck.models.loading import load_model

    view = load_model("builtin:toy-mlp", page.extensions)
    rows = []
    for name, kind in sorted(page.extensions.unit_kinds.items()):
        try:
            found = resolve_units(kind, view)
            shape = " x ".join(
                f"{size} {axis.removesuffix('s') if size == 1 else axis}"
                for size, axis in zip(found.shape, found.axes, strict=False)
            )
            example = f"`{found.names[min(9, found.count - 1)]}`"
            layout = f"{len(found.rows)} x {len(found.columns)} grid" if found.rows else "table"
        except NotApplicable as reason:
            shape, example, layout = f"not applicable: {reason}", "—", "—"
        rows.append([f"`{name}`", kind.summary, shape, example, layout])
    return "\n\n".join(
        [
            "## Unit kinds",
            prose(
                """
                The unit kinds installed here, resolved on `builtin:toy-mlp` (2 layers, 8 heads and 256 MLP
                neurons a layer). A checker's scores have the unit kind's shape; unit addresses are what reports,
                expectations and baselines use. Grids wider than 32 columns are drawn wrapped (HTML, terminal)
                and listed as a table of the units that matter (Markdown); kinds without a grid are tables.
                """
            ),
            table(["unit kind", "what it is", "on builtin:toy-mlp", "an address", "reports draw"], rows),
            prose(
                """
                A concept of a kind the model does not have is not evaluated: `defcheck run` on the attention-only
                `builtin:toy-induction` lists `token_detector_neuron` under "Not evaluated on this model" with the
                reason, and the JSON report under `skipped`.
                """
            ),
            quote(page.check("builtin:toy-induction", [NEURONS, "previous_token_head"]).to_markdown().split("\n")[4]),
        ]
    )


def neurons(page: Page) -> str:
    truth = page.check("builtin:induction-ln", [NEURONS])
    truth_concept = truth.concepts[NEURONS]
    report = page.check("builtin:toy-mlp", [NEURONS])
    concept = report.concepts[NEURONS]
    definitions = concept.definitions
    fires = definitions["fires_on_one_token"]
    loose = definitions["selective_for_a_token"]
    reads = definitions["reads_one_token"]
    d_mlp = report.model["d_mlp"]

    stats = []
    for name, definition in definitions.items():
        for layer in (0, 1):
            values = by_layer(definition.scores, layer)
            members = [m for m in definition.members if m.startswith(f"{layer}.")]
            stats.append(
                [
                    f"`{name}` ({definition.kind})",
                    str(layer),
                    fmt(statistics.median(values)),
                    fmt(sorted(values)[int(0.9 * (len(values) - 1))]),
                    fmt(max(values)),
                    definition.criteria[0]["threshold"],
                    str(len(members)),
                ]
            )

    behavior_token = fires.criteria[0]["evidence"]
    weights_token = reads.criteria[0]["evidence"]
    agree = {
        layer: sum(
            behavior_token[u]["token"] == weights_token[u]["token"] for u in concept.units if u.startswith(f"{layer}.")
        )
        for layer in (0, 1)
    }
    vocabulary = report.model["tokens"]["token_ids"]
    n_tokens = vocabulary[1] - vocabulary[0] if vocabulary else report.model["d_vocab"]

    rows = []
    for unit in loose.members:
        rows.append(
            [
                f"`{unit}`",
                fmt(loose.scores[unit]),
                fmt(fires.scores[unit]),
                str(behavior_token[unit]["token"]),
                fmt(reads.scores[unit]),
                str(weights_token[unit]["token"]),
            ]
        )
    sensitivity = [
        [f"{row['factor']:g}", str(row["behavioral"]), str(row["mechanistic"]), str(row["both"])]
        for row in concept.overlap["sensitivity"]
    ]
    return "\n\n".join(
        [
            "## Token detector neurons",
            prose(
                """
                Early-layer MLP neurons that fire on one particular token are a standard finding (Voita et al.
                2023; Gurnee et al. 2023). Behaviorally, such a neuron is one whose activation on varied inputs
                depends on the current token, and mostly on one. Mechanistically, it is one whose input weights
                read that token's embedding: the direct path of Elhage et al. 2021, read through the LayerNorm in
                front of the MLP. The built-in concept file writes both down, with a looser behavioral reading
                (Morcos et al. 2018's selectivity index) next to the strict one:
                """
            ),
            yaml_file(DEFINITIONS / f"{NEURONS}.yaml"),
            prose(
                """
                The checkers (formulas in [checkers.md](checkers.md#token_selectivity)): `token_selectivity`
                averages each neuron's activation (`blocks.L.mlp.hook_post`) per current token over the probe and
                scores the top token's share of the neuron's response above its floor (`share`) or Morcos et al.'s
                index (`selectivity`); `embedding_read` takes the cosine of each token's embedding with the
                neuron's input weights, the LayerNorm's scale folded in and both centered, and scores the best
                token's share of the squared cosines. Both score all neurons of all layers at once, with tensor
                operations, and name the token they pick as evidence.
                """
            ),
            "### Ground truth: the hand-built bigram MLPs",
            prose(
                f"""
                `builtin:induction-ln` is a hand-built model whose MLPs are bigram tables: neuron t of each layer
                reads the current token's one-hot coordinate t and nothing else (`W_in` = identity, ReLU). Every
                neuron is a token detector by construction, and both kinds of definition say so: Jaccard
                {fmt(truth_concept.overlap.jaccard)} over {len(truth_concept.overlap.both)} neurons in both
                senses. Neuron 0 of each layer reads the BOS token, which a probe never puts anywhere but first:
                its behavioral score is undefined, and neither definition admits it.
                """
            ),
            quote(truth_concept.overlap.narrative),
            "### The trained `builtin:toy-mlp`",
            prose(
                f"""
                `builtin:toy-mlp` (2 layers, LayerNorm, {d_mlp} GELU neurons a layer; see
                [toy-models.md](toy-models.md)) was trained to complete repeated random tokens, a task in which no
                token is special. `defcheck run --model builtin:toy-mlp --concept {NEURONS}` says:
                """
            ),
            quote(concept.overlap.narrative),
            prose(
                """
                Each definition's scores by layer (median, 90th percentile and maximum over the 256 neurons), its
                threshold, and how many neurons it admits:
                """
            ),
            table(["definition", "layer", "median", "90th pct", "max", "threshold", "members"], stats),
            prose(
                f"""
                No neuron passes either strict definition: the largest share of a neuron's response on one token
                is {fmt(max(v for v in fires.scores.values() if v is not None))} (chance: 1/{n_tokens}), the largest
                share of a neuron's read on one token's embedding
                {fmt(max(v for v in reads.scores.values() if v is not None))} (a random direction: about 0.13).
                The looser behavioral definition admits {len(loose.members)} neurons; none of them reads one token:
                """
            ),
            table(
                [
                    "neuron",
                    "selectivity index",
                    "response share",
                    "top token",
                    "read share",
                    "best-read token",
                ],
                rows,
            ),
            prose(
                f"""
                So the behavioral definitions and the mechanistic one come apart in the way the seed essay warns
                about: a selectivity index admits neurons that respond more to one token than to the average token
                without reading that token's direction; their preference comes from thresholding (GELU and the
                bias) a read spread over many tokens. Yet the weights do predict what the neuron prefers: the
                token a neuron fires on most is the token its weights read best for {agree[0]} of the {d_mlp}
                layer-0 neurons and {agree[1]} of the {d_mlp} layer-1 neurons (chance: {d_mlp / n_tokens:.0f}
                each). The drop at layer 1 is what the direct path leaves out there: a layer-1 neuron also reads
                what attention and the layer-0 MLP write, which `embedding_read` does not follow.
                """
            ),
            prose("How the union sets move when every threshold is scaled (members re-selected from the scores):"),
            table(["threshold x", "behavioral", "mechanistic", "both"], sensitivity),
            prose(
                """
                The terminal report draws the 512 neurons on the unit kind's grid, 64 to a line (`B`: behavioral
                only, `M`: mechanistic only, `+`: both); the HTML report draws each definition's scores on the same
                grid, 32 small cells to a line, and the Markdown report lists the neurons some definition admits.
                """
            ),
            terminal_map(report, NEURONS),
        ]
    )


def policies(page: Page) -> str | None:
    """The gridworld policies, when the plugin and its concept are installed."""
    try:
        plugin = importlib.import_module(POLICY_PLUGIN)
    except ImportError:
        return None
    if "gridworld" not in page.extensions.model_loaders:
        return None
    own = getattr(plugin, "BEYOND_HEADS_SECTION", None)
    if callable(own):
        return str(own(page))
    blocks = [
        "## Policies: goal misgeneralization",
        prose(
            """
            The seed essay's second example: inner misalignment framed behaviorally (in deployment the policy is
            competent, yet the original reward is low) and mechanistically (the policy internally represents a goal
            other than the intended one, and acts on it). The gridworld plugin (`defcheck_plugins.gridworld`) brings
            its own model loader (a set of policies is one model object, each policy one unit of its `policy` unit
            kind), a probe of seeded episodes, and checkers that roll the policies out or read and steer their
            hidden activations. The runner runs no forward pass for it; everything else (validation, the overlap,
            the reports, their tables) is the same as for heads and neurons.
            """
        ),
        yaml_file(DEFINITIONS / f"{POLICIES}.yaml"),
        prose(
            """
            Each policy's score on every criterion (definitions in the file's order, criteria in the order
            written; **bold**: the policy is a member):
            """
        ),
    ]
    for reference in POLICY_MODELS:
        report = page.check(reference, [POLICIES])
        concept = report.concepts[POLICIES]
        trained = report.model.get("info", {}).get("policies", {})
        header = ["policy", *(["goal placed at random in training"] if trained else [])]
        for name, definition in concept.definitions.items():
            checkers = ", ".join(criterion["checker"] for criterion in definition.criteria)
            header.append(f"{name} ({definition.kind}): {checkers}")
        rows = []
        for unit in concept.units:
            row = [f"`{unit}`", *([f"{100 * trained[unit]['p']:g}%"] if unit in trained else [])]
            for definition in concept.definitions.values():
                values = ", ".join(fmt((criterion["scores"] or {}).get(unit)) for criterion in definition.criteria)
                row.append(f"**{values}**" if unit in (definition.members or []) else values)
            rows.append(row)
        blocks += [f"### `{reference}`", quote(concept.overlap.narrative), table(header, rows)]
    return "\n\n".join(blocks)


SECTIONS: list[Callable[[Page], str | None]] = [introduction, unit_kinds, neurons, policies]


def build_page(progress: Callable[[str], None] = lambda _: None) -> str:
    from defcheck.hooks.manager import load_plugins

    helpers = SimpleNamespace(fmt=fmt, table=table, quote=quote, prose=prose, yaml_file=yaml_file)
    page = Page(progress, load_plugins(), md=helpers)
    blocks = [section(page) for section in SECTIONS]
    return "\n\n".join(block for block in blocks if block) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return write_page(build_page, OUTPUT, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
