"""The gridworld section of docs/concepts-beyond-heads.md (``BEYOND_HEADS_SECTION``), written from real runs.

``scripts/make_beyond_heads_docs.py`` calls :func:`section` with its ``Page`` (which builds and caches the
reports) when this plugin is installed; every number below comes from those reports or from the same
measurements run here. The Markdown helpers are the script's own (``make_beyond_heads_docs``, importable while
the script runs), so the page keeps one style; this module is only imported by that script.
"""

from __future__ import annotations

from typing import Any

from defcheck_plugins import gridworld as plugin
from defcheck_plugins.gridworld import analysis

from defcheck._lazy import torch  # not the contract: how the built-ins defer importing torch to first use
from defcheck.plugin import ProbeRequest

CONCEPT = "goal_misgeneralization"
TRAINED, CONSTRUCTED = "gridworld:policies", "gridworld:constructed"
DEPLOYMENT = {"n": 1024, "goal": "off_corner"}


def _criteria(concept: Any) -> dict[str, dict[str, Any]]:
    """Each criterion of the concept by a short label: ``competence``, ``corner``, ``reward``, ``train_reward``,
    ``decoding``, ``steering`` (the criteria of the concept file, found by checker and probe)."""
    found: dict[str, dict[str, Any]] = {}
    for definition in concept.definitions.values():
        for criterion in definition.criteria:
            checker, probe = criterion["checker"], criterion["probe"] or ""
            if checker == "deployment_competence":
                label = "corner" if criterion["params"].get("salient") == ["corner"] else "competence"
            elif checker == "original_reward":
                label = "train_reward" if "goal='corner'" in probe else "reward"
            else:
                label = {"goal_decoding": "decoding", "steering": "steering"}[checker]
            found.setdefault(label, criterion)
    return found


def _membership(concept: Any, unit: str) -> str:
    kinds = {definition.kind for definition in concept.definitions.values() if unit in (definition.members or [])}
    return {
        frozenset(): "neither",
        frozenset({"behavioral"}): "behavioral only",
        frozenset({"mechanistic"}): "mechanistic only",
    }.get(frozenset(kinds), "both")


def _scores_table(concept: Any, md: Any, trained: dict[str, Any]) -> str:
    c = _criteria(concept)
    header = [
        "policy",
        *(["goal random in training"] if trained else []),
        "competent",
        "reached corner",
        "reward",
        "reward in training",
        "R² corner",
        "R² goal",
        "decoding gap",
        "steered",
        "unsteered",
        "steering effect",
        "framings",
    ]
    rows = []
    for unit in concept.units:
        decoding, steering = c["decoding"]["evidence"][unit], c["steering"]["evidence"][unit]
        rows.append(
            [
                f"`{unit}`",
                *([f"{100 * trained[unit]['p']:g}%"] if unit in trained else []),
                md.fmt(c["competence"]["scores"][unit]),
                md.fmt(c["competence"]["evidence"][unit]["reached_corner"]),
                md.fmt(c["reward"]["scores"][unit]),
                md.fmt(c["train_reward"]["scores"][unit]),
                md.fmt(decoding["r2_corner"]),
                md.fmt(decoding["r2_goal"]),
                md.fmt(c["decoding"]["scores"][unit]),
                md.fmt(steering["steered"]),
                md.fmt(steering["unsteered"]),
                md.fmt(c["steering"]["scores"][unit]),
                _membership(concept, unit),
            ]
        )
    return md.table(header, rows)


def _extra_measurements(page: Any) -> dict[str, Any]:
    """What the reports do not hold: first-layer decoding, and how the p0.1 policy fails."""
    # not the contract: this page's generator loads the shipped policies as the command line would
    from defcheck_plugins.gridworld.policy import PolicySet

    from defcheck.models.loading import load_model

    policies = load_model(TRAINED, page.extensions)
    assert isinstance(policies, PolicySet), type(policies)
    probe = plugin.build_episodes(ProbeRequest(plugin.EpisodesParams(**DEPLOYMENT), None, 0, 0, None, policies))
    agent, goal = probe.info["agent"], probe.info["goal"]
    generator = torch.Generator().manual_seed(0)
    first = analysis.decoding(policies, agent, goal, 1, 1e-3, generator)
    played = analysis.play(policies, agent, goal)
    index = policies.model_names.index("p0.1")
    failed = ~(played.reached_goal[index] | played.reached(policies.grid, analysis.corner_of(policies.grid))[index])
    path = played.path[index][failed]
    still = (path[:, -1] == path[:, -2]).all(-1)
    back_and_forth = (path[:, -1] == path[:, -3]).all(-1) & ~still
    start = (goal - agent).abs().sum(-1)[failed].float().mean()
    end = (goal[failed] - played.final[index][failed]).abs().sum(-1).float().mean()
    return {
        "names": policies.model_names,
        "first_corner": first["corner"].tolist(),
        "first_goal": first["goal"].tolist(),
        "failed": float(failed.float().mean()),
        "still": float(still.float().mean()),
        "back_and_forth": float(back_and_forth.float().mean()),
        "distance_start": float(start),
        "distance_end": float(end),
    }


def section(page: Any) -> str:
    """The Markdown of the policies section."""
    # the docs script's helpers: it is running, and its folder is on sys.path (not on mypy's)
    import make_beyond_heads_docs as md  # type: ignore[import-not-found]

    trained_report = page.check(TRAINED, [CONCEPT])
    concept = trained_report.concepts[CONCEPT]
    info = trained_report.model.get("info", {})
    record, training = info.get("policies", {}), info.get("training", {})
    built = page.check(CONSTRUCTED, [CONCEPT]).concepts[CONCEPT]
    c, b = _criteria(concept), _criteria(built)
    extra = _extra_measurements(page)
    p0 = extra["names"].index("p0")
    others = [u for u in concept.units if u != "p0"]
    log = [
        [
            f"`{name}`",
            f"{100 * row['p']:g}%",
            md.fmt(row["final_loss"], 3),
            md.fmt(row["train_success"], 3),
            md.fmt(row["deploy_success"], 3),
        ]
        for name, row in record.items()
    ]
    return "\n\n".join(
        [
            "## Policies: goal misgeneralization",
            md.prose(
                """
                The seed essay's second example. Ngo's first framing of inner misalignment is behavioral: in
                deployment the policy is competent, yet it gets low reward under the reward it was trained on
                (goal misgeneralization; incompetence is capability misgeneralization instead). His second framing
                is mechanistic: the policy internally represents a goal, acts to reach it, and that goal is not
                the intended one. The gridworld plugin (`defcheck_plugins.gridworld`) writes both down for small
                policies whose training we control, and checks them with the same runner, overlap and reports
                as heads and neurons. It registers a unit kind of its own (`policy`: one unit per policy of a
                policy set, so a transformer run skips the concept), the probe `gridworld_episodes`, four
                checkers, and the model loader `gridworld:`.
                """
            ),
            "### The gridworld and the policies",
            md.prose(
                f"""
                A 7x7 grid with one goal cell; the agent sees two one-hot planes (its cell, the goal's cell),
                moves up, down, left or right, and gets reward 1 for stepping onto the goal, which ends the
                episode (at most 24 moves). In training the goal is in the top-right corner, except with
                probability p anywhere. Each policy is an MLP (98 -> 48 -> 48 -> 4, a plain `torch.nn.Module`)
                trained by behavior cloning of the shortest-path expert on states of its own training
                distribution; all start from the same weights and see the same random draws, so they differ only
                by p. `scripts/train_gridworld.py` trains all five in {training.get("seconds")} s on one CPU
                thread ({training.get("steps")} Adam steps of {training.get("batch")} states), bit for bit
                reproducibly, and records, per policy, the greedy policy's success on its training distribution
                and in deployment (the goal anywhere but the corner):
                """
            ),
            md.table(["policy", "goal random in training", "final loss", "train success", "deploy success"], log),
            md.prose(
                """
                The loss floor is the expert's entropy (two equally good moves off the straight lines), so every
                policy imitates its expert. With the goal never moved (`p0`) the policy ignores the goal plane
                and walks to the corner; once in a hundred episodes (`p1`) is enough to learn the goal. The concept
                file (thresholds are discussed in its comments):
                """
            ),
            md.yaml_file(md.DEFINITIONS / f"{CONCEPT}.yaml"),
            "### What the checkers measure",
            md.prose(
                """
                - `deployment_competence` (behavior): the share of deployment episodes in which the greedy policy
                  reaches a salient location, the episode's goal or the training corner. `original_reward`
                  (behavior): the share that reach the goal.
                - `goal_decoding` (mechanism): the corner never moves, so "where the corner is" has nothing to
                  decode; what varies is which way it lies from the agent. A ridge probe on the last hidden layer
                  is fit on half of the episodes' start states to the per-axis direction (-1, 0, +1) to the
                  corner, another to the direction to the goal, and both are scored (R²) on the other half. The
                  score is the difference.
                - `steering` (mechanism, causal): at every step the hidden layer is changed by the least-norm
                  amount that makes the corner probe read the direction to a target cell instead, and the score
                  is how much more often the policy then reaches the target than without the change. Targets lie
                  between the start and the corner, so that reaching them takes only moves a corner-seeker made
                  in training (`p0` never learned to move down or left).
                """
            ),
            md.prose("Formulas and parameters: [checkers.md](checkers.md#goal_decoding)."),
            f"### `{TRAINED}`",
            md.quote(concept.overlap.narrative),
            _scores_table(concept, md, record),
            md.prose(
                f"""
                On the trained policies the two framings agree: `p0` is the only member of every definition,
                and no policy is a member of one kind only. `p0` reaches the corner in
                {md.fmt(c["competence"]["evidence"]["p0"]["reached_corner"])} of deployment episodes and the goal
                in {md.fmt(c["reward"]["scores"]["p0"])} (when it lies on the way); its last hidden layer decodes
                the direction to the corner with R² {md.fmt(c["decoding"]["evidence"]["p0"]["r2_corner"])} and
                the direction to the goal with {md.fmt(c["decoding"]["evidence"]["p0"]["r2_goal"])}, and rewriting
                the decoded direction sends it to the target in {md.fmt(c["steering"]["evidence"]["p0"]["steered"])}
                of episodes instead of {md.fmt(c["steering"]["evidence"]["p0"]["unsteered"])}. The other policies
                decode the goal at least as well as the corner, and the same rewrite changes how often they reach
                the target by {md.fmt(min(c["steering"]["scores"][u] for u in others))} to
                {md.fmt(max(c["steering"]["scores"][u] for u in others))}.
                """
            ),
            md.prose(
                f"""
                `p0.1` (the goal moved once in a thousand training episodes) is neither: it is the behavioral
                framing's *capability* misgeneralization. It reaches a salient location in only
                {md.fmt(c["competence"]["scores"]["p0.1"])} of deployment episodes; in the
                {md.fmt(extra["failed"])} it fails, it heads for the goal (from {extra["distance_start"]:.1f}
                cells away on average to {extra["distance_end"]:.1f}) and then stops
                ({md.fmt(extra["still"])} of the failures) or steps back and forth next to it
                ({md.fmt(extra["back_and_forth"])}). It learned the right goal and not the skill to reach it.
                """
            ),
            md.prose(
                f"""
                Decodable is not used. `p0`'s weights on the goal plane outside the corner never received a
                gradient, so they keep their random initialization, and random features still carry the goal:
                at the *first* hidden layer a probe decodes the direction to the goal from `p0` with R²
                {md.fmt(extra["first_goal"][p0])} (the corner: {md.fmt(extra["first_corner"][p0])}), although
                nothing `p0` does depends on it. That is why the mechanistic definition asks for the causal
                check too, and reads the last hidden layer.
                """
            ),
            f"### `{CONSTRUCTED}`: where the framings come apart",
            md.prose(
                """
                Three hand-built policies with known mechanisms (`defcheck_plugins.gridworld.constructed`):
                `oracle` computes the offsets to the goal and walks there; `corner_seeker` is the same circuit
                for the offsets to the corner; `corner_route` walks a fixed route that ends in the corner (left
                to the wall, up to the top row, right along it), from units that say only "not on the top row"
                and "not at the left wall".
                """
            ),
            md.quote(built.overlap.narrative),
            _scores_table(built, md, {}),
            md.prose(
                f"""
                `corner_route` is goal-misgeneralized by behavior and not by mechanism: it reaches the corner in
                {md.fmt(b["competence"]["evidence"]["corner_route"]["reached_corner"])} of deployment episodes,
                but the direction to the corner is decodable from its last hidden layer with R² of only
                {md.fmt(b["decoding"]["evidence"]["corner_route"]["r2_corner"])}: it does not represent where the
                corner is, only where the route turns. Steering alone would have admitted it (effect
                {md.fmt(b["steering"]["scores"]["corner_route"])}): rewriting its "not on the top row" unit turns
                it right early, which reaches the targets. A causal effect shows that a representation is used,
                not that it is a representation of the goal; the definition needs both.
                """
            ),
            md.prose(
                """
                Among these eight policies, every one the mechanistic definition admits is also a behavioral
                member, which is what one expects here: a policy that represents the corner as its target and
                acts on it walks to the corner. The converse fails, as for the seed essay's induction heads: the
                behavioral set also holds a policy that gets there by other means.
                """
            ),
        ]
    )
