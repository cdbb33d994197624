"""Write docs/sweep.md and its figures from a real sweep over the shipped toy-induction checkpoints.

Every number on the page comes from the summary this script builds with ``defcheck.sweep`` (the same code as
``defcheck sweep --checkpoints 'builtin:toy-induction@*' --concept induction_head --concept previous_token_head``),
and the
figures are its PNGs. tests/test_sweep.py re-runs it into a temporary folder and fails when docs/sweep.md
differs. Run it after changing the series, a definition or the summary's wording:

    python scripts/make_sweep_docs.py                 # writes docs/sweep.md and docs/img/sweep-*.png
    python scripts/make_sweep_docs.py --output /tmp/sweep.md --images /tmp/img
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "sweep.md"
IMAGES = ROOT / "docs" / "img"
SOURCE = "builtin:toy-induction@*"
CONCEPTS = ("induction_head", "previous_token_head")
FIGURES = {"induction_head": "sweep-toy-induction.png", "previous_token_head": "sweep-toy-induction-previous.png"}


def run(out: Path) -> dict[str, Any]:
    """The sweep of the page, into ``out``; its summary."""
    from defcheck.session import RunConfig
    from defcheck.sweep import SweepOptions, find_checkpoints, run_sweep
    from defcheck.sweep.executors import SequentialExecutor

    series = find_checkpoints(SOURCE)
    result = run_sweep(series, SweepOptions(RunConfig(selection=CONCEPTS)), out, executor=SequentialExecutor())
    if result.failed:
        raise SystemExit(f"checkpoints failed: {result.failed}")
    return result.summary


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _crossing(summary: dict[str, Any], definition_id: str) -> str:
    """The best unit's primary score at the definition's first step with a member, and at the step before."""
    record = summary["definitions"][definition_id]
    first = record["first_step"]
    if first is None:
        return "it never admits a head"
    i = summary["steps"].index(first)

    def score(item: tuple[str, dict[str, Any]]) -> float:
        value = item[1]["score"][i]
        return -1.0 if value is None else value

    unit, series = max(record["units"].items(), key=score)
    text = f"its best head then, {unit}, scores {_fmt(series['score'][i])} on `{record['score']}` (threshold "
    text += f"`{record['threshold']}`"
    if i == 0:
        return text + ", at the first checkpoint)"
    return text + f"; {_fmt(series['score'][i - 1])} at step {summary['steps'][i - 1]})"


def page(summary: dict[str, Any]) -> str:
    """The text of docs/sweep.md for ``summary``."""
    from defcheck.sweep.summary import steepest_fall

    steps = summary["steps"]
    induction = summary["concepts"]["induction_head"]
    previous = summary["concepts"]["previous_token_head"]
    defs = summary["definitions"]
    b, m = induction["first_step"]["behavioral"], induction["first_step"]["mechanistic"]
    pm = previous["first_step"]["mechanistic"]
    same = "do" if b == m else "do not"
    loss = summary["metrics"]["repeat_loss"]
    steepest = steepest_fall(steps, loss)
    first_rows = [
        "| concept | definition | kind | first step with a member | its members | a member at every later step from |",
        "|---|---|---|---|---|---|",
    ]
    for record in defs.values():
        first_rows.append(
            f"| {record['concept']} | `{record['definition']}` | {record['kind']} | {_fmt(record['first_step'])} "
            f"| {', '.join(record['first_members']) or '—'} | {_fmt(record['stable_from'])} |"
        )
    step_rows = [
        "| step | repeat_loss | loss | both | behavioral only | mechanistic only | Jaccard | previous-token heads |",
        "|---|---|---|---|---|---|---|---|",
    ]
    attends = defs["previous_token_head.attends_previous"]
    for i, step in enumerate(steps):
        step_rows.append(
            f"| {step} | {_fmt(loss[i])} | {_fmt(summary['metrics']['loss'][i])} | {_fmt(induction['both'][i])} "
            f"| {_fmt(induction['behavioral_only'][i])} | {_fmt(induction['mechanistic_only'][i])} "
            f"| {_fmt(induction['jaccard'][i])} | {', '.join(attends['members'][i] or []) or '—'} |"
        )
    kcomp = defs["induction_head.k_composition"]
    path = defs["induction_head.previous_token_path"]
    carries = defs["previous_token_head.carries_previous"]
    lines = [
        "# Sweeps over training checkpoints",
        "",
        "<!-- Written by scripts/make_sweep_docs.py from a real sweep; tests/test_sweep.py checks it. -->",
        "",
        "Olsson et al. (2022) show induction heads forming during training, at the same time as a drop in the loss.",
        "`defcheck sweep` asks the same of any concept and any checkpoint series: at which step does each",
        "definition first admit a unit, and do the behavioral and the mechanistic definitions agree on when?",
        "",
        "```bash",
        "defcheck sweep --checkpoints 'builtin:toy-induction@*' \\",
        "    --concept induction_head --concept previous_token_head --output-dir sweep",
        "```",
        "",
        "It checks the definitions on every checkpoint, writes one report per checkpoint",
        "(`sweep/reports/step-000800.json`, the same document `defcheck run` writes, plus a `sweep` block), and a",
        "summary: `sweep/summary.json` (below), `sweep/summary.html` (one self-contained page with the plots) and",
        "`sweep/plots/CONCEPT.png`. Run again, it skips the checkpoints whose reports are valid.",
        "",
        "## What the shipped series shows",
        "",
        f"`builtin:toy-induction@*` is the training run of the shipped toy model ([toy-models.md](toy-models.md)): "
        f"{len(steps)} snapshots,",
        f"steps {', '.join(map(str, steps))}, dense across the phase change. Each carries its loss (on 512 fresh",
        "sequences of the training task: `repeat_loss` is the objective, the second repeat; `loss` is over all",
        "positions, which rises because the model learns to predict noise confidently). The figure is the sweep's",
        "own PNG:",
        "",
        f"![induction_head over training](img/{FIGURES['induction_head']})",
        "",
        "One panel per definition (every head's primary score; colored: the heads it ever admits, dots where it",
        "admits them; dotted: the threshold), the overlap of the two kinds (stacked counts, Jaccard), and the loss.",
        "The dashed lines mark the first step with a behavioral member (orange) and with a mechanistic one (purple).",
        "",
        f"**Do the behavioral and the mechanistic induction heads appear at the same step? On this model they "
        f"{same}.** The summary says:",
        "",
        f"> {induction['answer']}",
        "",
        f"The objective falls fastest (per step) between steps {steps[steepest]} and {steps[steepest + 1]} "
        f"({_fmt(loss[steepest])} to {_fmt(loss[steepest + 1])}); the behavioral definition first admits a head at "
        f"step {_fmt(b)}: {_crossing(summary, 'induction_head.prefix_matching_and_copying')}.",
        "",
        "Which kind comes first, as far as the reports show it: `previous_token_path` and `k_composition` are",
        "conditioned on `previous_token_head.carries_previous` (a `with:` reference: the heads that attend to the",
        f"previous token at least {carries['threshold'].removeprefix('>= ')} times as much as uniform attention "
        "would), which admits "
        f"its first heads at step {_fmt(carries['first_step'])} ({', '.join(carries['first_members']) or 'none'});",
        f"the fixed cut-off of `attends_previous` (`{attends['threshold']}`) admits its first at step "
        f"{_fmt(attends['first_step'])}. "
        f"`previous_token_path` first admits heads at step {_fmt(path['first_step'])} "
        f"({', '.join(path['first_members']) or 'none'}): ablating those partners together already removes",
        "a quarter of the head's prefix matching, while its prefix matching is still below the behavioral",
        f"cut-off (the behavioral definition first admits a head at step {_fmt(b)}). `k_composition` (K-composition",
        "with the partners' OV circuits summed, each weighted by its score) first admits heads at step "
        f"{_fmt(kcomp['first_step'])}: early on every layer-0 head is a weak partner, and the summed circuit crosses",
        "1.5 times chance only once the previous-token heads dominate it. `q_composition` never does (no head passes",
        "`duplicate_token_head.attends_duplicates`, so its composition stays undefined). The sweep does not say",
        "that the circuit forms before or after the behavior, only when these definitions, as written, admit heads.",
        "The previous-token heads' own two kinds: behavioral (`attends_previous`)",
        f"first at step {_fmt(attends['first_step'])}, mechanistic (`positional_qk`) first at step {_fmt(pm)}:",
        "",
        f"![previous_token_head over training](img/{FIGURES['previous_token_head']})",
        "",
        "Every definition's first step:",
        "",
        *first_rows,
        "",
        "By checkpoint (induction_head's overlap; the last column: the heads `attends_previous` admits):",
        "",
        *step_rows,
        "",
        "## Naming the checkpoints",
        "",
        "`--checkpoints SOURCE` (repeatable; extra arguments are taken as more sources, so a glob the shell",
        "expanded still works):",
        "",
        "| source | the checkpoints | their steps | their metrics (loss) |",
        "|---|---|---|---|",
        "| `builtin:NAME@*` | every snapshot the package ships of NAME (`builtin:toy-induction@*`) | the snapshots' "
        "steps | `NAME-checkpoints.metrics.json` beside the series |",
        "| a folder | its `*.pt`, `*.pth`, `*.bin`, `*.ckpt` files (not its subfolders) | `files` in the folder's "
        "`checkpoints.json`, else the last number in the file name (`step-000800.pt`: 800) | `metrics` in "
        "`checkpoints.json` |",
        "| a glob, quoted (`'runs/*/model_*.pt'`) | the checkpoint files it matches | as for a folder (each file's "
        "folder) | as for a folder |",
        "| a file | that file | as for a folder | as for a folder |",
        "| `tl:NAME` with `--checkpoint-index 0,10,20` | TransformerLens's checkpoints of a pretrained model "
        "(EleutherAI/pythia-\\*, stanford-crfm/\\*, NeelNanda/ArthurConmy/Baidicoot repos); needs the network "
        "| TransformerLens's `get_checkpoint_labels` (a step, or tokens seen: `step_unit`) | none |",
        "",
        "Each checkpoint file is loaded as `defcheck run --model FILE` loads it: its config is `STEM.json`/`.yaml`",
        "beside it or `config.json` in its folder (or `--model-config`). `--steps 800,1000` keeps only those steps.",
        "`tl:` checkpoints load through TransformerLens 4 itself: `TransformerBridge.boot_transformers(name,",
        "checkpoint_index=i)` (a Hugging Face revision) or `boot_tl_legacy(name, checkpoint_index=i)` (a legacy",
        "repo's `checkpoints/*.pth`); without a network, the sweep stops at once with one sentence (with",
        "`HF_HUB_OFFLINE=1`, checkpoints in the local Hugging Face cache are used).",
        "",
        "A folder the training script writes is the general case; `python scripts/train_toy_models.py",
        "--snapshots-only --series-dir DIR` writes the shipped series that way (no training):",
        "",
        "```",
        "DIR/config.json          the model's config (TransformerBridgeConfig fields and a defcheck: block)",
        "DIR/step-000800.pt       one state dict per snapshot",
        'DIR/checkpoints.json     {"metrics": {"800": {"loss": 5.0, "repeat_loss": 2.7}, ...},',
        '                          "files": {"step-000800.pt": 800, ...}}    (both optional)',
        "```",
        "",
        "A step (in `checkpoints.json`, a file name or a loader's list) is an integer from 0 to 2**53, and a metric a",
        "finite number; anything else (a loss of 400 digits, a step of 10^22, `Infinity`) is refused naming the file",
        'and the entry, e.g. `checkpoints.json: metrics["800"]["loss"] must be a finite number`.',
        "",
        "## The summary",
        "",
        "`summary.json` is canonical like a report (floats to 6 significant digits, keys in natural order, nothing",
        "time-dependent), so the same checkpoints, definitions and seed give the same bytes, whatever executor ran",
        "them and whether the sweep was resumed: it is rebuilt from the reports on disk. Every series is a list",
        "aligned with `steps`, `null` where a checkpoint failed or gave no value.",
        "",
        "| field | meaning |",
        "|---|---|",
        "| `summary_version` | `1`. |",
        "| `source`, `seed`, `step_unit` | What was swept (as given), the probes' seed, `step` or `token`. |",
        "| `steps` | The checkpoints' steps, ascending. |",
        "| `checkpoints` | Per step: `reference` (what was loaded), `checkpoint_index` (for `tl:`), `report` (its "
        "path in the output folder), `status` (`ok` or `failed`), `error`. |",
        "| `metrics` | Per metric the checkpoints carry (`loss`, ...), its value at each step. |",
        "| `definitions` | Per definition (`concept.definition`): `concept`, `definition`, `kind`, `score` and "
        "`threshold` (its first criterion's checker and threshold), and per step `status`, `members`, "
        "`member_count`, `no_score` (why no unit has a score, e.g. `undefined: ...`); `units`: per unit, `score` "
        "(the primary score) and `member` (true/false) per step; `first_step` (the first step with a member), "
        "`first_members`, `stable_from` (the first step from which every later checkpoint has a member). Only "
        "when the reports carry it (`defcheck sweep --seeds K` or `--bootstrap B`): per unit `sd` (the primary "
        "score's standard deviation across the seeds, or its bootstrap standard error, per step; the plots draw "
        "score +- sd as a band) and `band` (`source`: `seeds` or `bootstrap`, `count`: K or B). |",
        "| `concepts` | Per concept: `unit` (kind), `behavioral` and `mechanistic` (its definitions), per step "
        "`jaccard`, `both`, `behavioral_only`, `mechanistic_only`, `neither` (counts, from the report's overlap); "
        "`first_step`, `step_before` (the checkpoint before it: the answer's resolution) and `stable_from` per "
        "kind (the union of its usable definitions); `answer` (a sentence: the same step or not); `note`. |",
        "| `skipped` | Concepts not evaluated (the model has no units of their kind), with the reason. |",
        "| `summary` | The text: the checkpoints, each concept's answer, where each metric falls fastest per step. |",
        "",
        "Units are named as the reports name them (`1.4`, a neuron `0.17`, a layer `1`), so any unit kind works.",
        "",
        "## Resuming, and what counts as a valid report",
        "",
        "Each report carries a `sweep` block: `step`, `checkpoint_index`, `metrics` and `key`, a SHA-256 of",
        "everything that decides the report's content: the checkpoint (reference, index, step, and size and",
        "modification time of its file and of the config files the loader may read), the text of every concept",
        "file evaluated (with `with:` targets), the selection, the versions of defcheck and of the plugins, the",
        "seed, and `--device`, `--batch-size`, `--bos-token-id`, `--token-ids`, `--model-config`, `--threads`.",
        "A sweep started again skips a checkpoint only when its report parses as a report of the current",
        "`report_version` and passes the check every saved report gets",
        "([report-format.md](report-format.md#reading-a-report-back)), its key is the task's key, and no definition",
        "in it errored (a checker that raised, e.g. out of memory, is tried again); anything else (missing,",
        "truncated, damaged, another key) is re-run. A damaged report (not JSON, or not a report: `concepts: {x: 1}`)",
        "gets a note on stderr saying what is wrong with it, and is run again. `--restart` re-runs all. Reports and",
        "the summary are written to a temporary file in the same folder and renamed over the target (`os.replace`),",
        "so an interrupted sweep leaves whole reports or none; Ctrl-C prints where they are and exits 130. A write",
        "that fails (a full disk) stops the sweep with exit 2 and an error that says so; the reports already written",
        "are kept, and the same command resumes.",
        "",
        "## Executors: one machine or a cluster",
        "",
        "Each checkpoint is an independent task. `--executor local` (the default) runs them in this process, or in",
        "a pool of `--workers N` processes (`concurrent.futures`, started with `spawn`). `--executor ray` submits",
        "each as a Ray task (`ray.remote`, `ray.wait`, `ray.get`; install with `pip install 'defcheck[ray]'`):",
        "",
        "```bash",
        "defcheck sweep --checkpoints /shared/run/ --concept induction_head \\",
        "    --executor ray --address auto --gpus-per-task 1",
        "```",
        "",
        "`--address` is `ray.init`'s (`auto`: the cluster this machine is in; `ray://HOST:10001`: Ray Client;",
        "none: a Ray instance on this machine, or `$RAY_ADDRESS`). `--gpus-per-task G` reserves G GPUs per task",
        "(a fraction shares one) and makes `--device` default to `cuda`; `--threads N` is torch's thread count in",
        "each task and the CPUs Ray reserves for it. Workers need defcheck (and any `--plugin` module) installed",
        "and the checkpoints and `--definitions` files at the same paths; the reports come back to the driver,",
        "which writes them, so the output folder needs to exist only there. Tasks run in the driver's working",
        "directory where it exists, so reports name files as the driver would. The thread count is fixed per task",
        "so every executor computes with the same kernels: the same sweep on the local executor and on a local Ray",
        "instance gives the same bytes (tests/test_executors.py checks it).",
        "",
        "## Failures and exit codes",
        "",
        "A source that names nothing (a missing or empty folder, a glob that matches no checkpoint, a series the",
        "package does not ship, an unknown step) stops the sweep before anything runs: one `error:` sentence, exit",
        "2. A checkpoint that fails (unreadable, no config, a download that fails) is reported on its own line",
        "and in the summary (`status: failed`, `error`), the others are still checked and summarized, and the",
        "sweep exits 2. Progress is a bar on a terminal; nothing in CI, in a pipe or with `defcheck -q sweep`.",
        "",
        "## From Python",
        "",
        "```python",
        "from pathlib import Path",
        "",
        "from defcheck.session import RunConfig",
        "from defcheck.sweep import SweepOptions, find_checkpoints, run_sweep",
        "from defcheck.sweep.executors import SequentialExecutor",
        "",
        'series = find_checkpoints("builtin:toy-induction@*", steps="800,1000,1600")',
        'options = SweepOptions(RunConfig(selection=("induction_head",), seed=0))',
        'result = run_sweep(series, options, Path("sweep"), executor=SequentialExecutor())',
        'concept = result.summary["concepts"]["induction_head"]',
        'print(concept["first_step"], concept["jaccard"])',
        'print(result.summary["summary"])',
        "```",
        "",
        "`run_sweep` takes any `defcheck.sweep.executors.Executor` (`SequentialExecutor()`, `ProcessPoolExecutor(4)`,",
        "`RayExecutor(address, gpus_per_task, cpus_per_task)`); `defcheck.sweep.plots.plot_sweep(summary, folder)`",
        "redraws the plots from a saved `summary.json`.",
        "",
        "## Reproducing this page",
        "",
        "```",
        "python scripts/make_sweep_docs.py    # reruns the sweep; rewrites this page and docs/img/sweep-*.png",
        "```",
        "",
    ]
    return "\n".join(lines)


def build(output: Path, images: Path) -> dict[str, Any]:
    """Run the sweep in a temporary folder, write the page to ``output`` and the figures into ``images``."""
    with tempfile.TemporaryDirectory() as folder:
        summary = run(Path(folder))
        images.mkdir(parents=True, exist_ok=True)
        for concept, name in FIGURES.items():
            shutil.copyfile(Path(folder) / "plots" / f"{concept}.png", images / name)
    output.write_text(page(summary), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the page to write (default: docs/sweep.md)")
    parser.add_argument("--images", type=Path, default=IMAGES, help="where the figures go (default: docs/img)")
    args = parser.parse_args(argv)
    build(args.output, args.images)
    print(f"wrote {args.output} and {', '.join(str(args.images / name) for name in FIGURES.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
