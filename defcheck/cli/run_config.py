"""The options that decide a run's results, shared by ``run`` and ``sweep``, and the :class:`RunConfig` they make
with the group's plugin options and the project file (``--config``, else the nearest ``defcheck.yaml``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from defcheck.cli.options import concept_option, config_option, definitions_option, no_builtin_option, no_config_option
from defcheck.cli.settings import Settings
from defcheck.session import RunConfig
from defcheck.session.config import MAX_BOOTSTRAP, MAX_SEED, MAX_SEEDS

F = TypeVar("F", bound=Callable[..., Any])

RUN_OPTIONS = (
    definitions_option,
    no_builtin_option,
    concept_option,
    click.option(
        "--seed",
        type=click.IntRange(0, MAX_SEED),
        help="Seed of the probes, 0 to 2**32 - 1. [default: the project file's, else 0]",
    ),
    click.option(
        "--seeds",
        type=click.IntRange(1, MAX_SEEDS),
        help="Draw every probe under K seeds (--seed, --seed + 1, ..., --seed + K - 1) and report each unit's "
        "stability and margins. [default: the project file's seeds, else 1]",
        metavar="K",
    ),
    click.option(
        "--bootstrap",
        type=click.IntRange(0, MAX_BOOTSTRAP),
        help="Resample every probe's sequences B times (200 is a good start): standard errors, margins and a "
        "Jaccard interval from one run, without another forward pass. [default: the project file's bootstrap, "
        "else 0: none]",
        metavar="B",
    ),
    click.option(
        "--batch-size", type=click.IntRange(min=1), help="Sequences per forward pass (default: a whole probe)."
    ),
    click.option(
        "--checker-timeout",
        type=click.FloatRange(min=0, max=1e8),
        callback=lambda ctx, param, value: _finite(value),
        metavar="SECONDS",
        help="Stop a checker that runs longer than this; its definition is an error, the others are kept (0: no "
        "limit). [default: the project file's checker_timeout, else 600]",
    ),
    click.option(
        "--allow-outside-files",
        is_flag=True,
        default=False,
        help="Let probes read files outside the project (token_file paths, text corpora): relative paths start at "
        "the concept file, and without this flag must stay in the folder of defcheck.yaml (else the concept file's).",
    ),
    click.option("--bos-token-id", type=int, help="Override the model's BOS token id."),
    click.option("--token-ids", metavar="START:STOP", help="Override the ids probes draw from (half-open range)."),
    click.option("--model-config", type=click.Path(path_type=Path), help="The checkpoint's config (JSON or YAML)."),
    config_option,
    no_config_option,
)


def _finite(value: float | None) -> float | None:
    """``--checker-timeout nan`` is refused (a range check lets NaN through)."""
    if value is not None and value != value:
        raise click.BadParameter("give a number of seconds, 0 for no limit")
    return value


def run_options(function: F) -> F:
    """Add the options of :data:`RUN_OPTIONS` to a command."""
    for option in reversed(RUN_OPTIONS):
        function = option(function)
    return function


def run_config(settings: Settings, params: dict[str, Any], **more: Any) -> RunConfig:
    """The run's config from the command's ``params`` (those of :func:`run_options`, popped) and the group's
    plugin options; ``more`` sets other fields (``device``, ``tolerance``)."""
    return RunConfig.resolve(
        config_path=params.pop("config_path"),
        no_config=params.pop("no_config"),
        definition_paths=params.pop("definition_paths"),
        no_builtin=params.pop("no_builtin"),
        selection=params.pop("selected"),
        seed=params.pop("seed"),
        seeds=params.pop("seeds"),
        bootstrap=params.pop("bootstrap"),
        batch_size=params.pop("batch_size"),
        checker_timeout=params.pop("checker_timeout"),
        allow_outside_files=params.pop("allow_outside_files"),
        bos_token_id=params.pop("bos_token_id"),
        token_ids=params.pop("token_ids"),
        model_config=params.pop("model_config"),
        plugin_modules=tuple(settings.plugin_modules),
        disabled_plugins=settings.disabled_plugins,
        strict_plugins=settings.strict_plugins,
        **more,
    )
