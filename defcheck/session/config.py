"""``RunConfig``: everything that decides a run's results, resolved once from the defaults, the project file
(``defcheck.yaml``) and the flags, in that order of precedence (a flag wins). Picklable: sweep workers get it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from defcheck.diagnostics import DefinitionsError, display_path

DEFAULT_SEED = 0
MAX_SEED = 2**32 - 1  # the same as defcheck.ci.project_schema.MAX_SEED (a test checks it)
DEFAULT_TOLERANCE = 1e-3  # the same as defcheck.ci.project.DEFAULT_TOLERANCE (a test checks it)
MAX_SEEDS = 1000  # the same as defcheck.engine.stability.MAX_SEEDS
MAX_BOOTSTRAP = 10_000  # the same as defcheck.engine.bootstrap.MAX_REPLICATES
DEFAULT_CHECKER_TIMEOUT = 600.0  # the same as defcheck.ci.project.DEFAULT_CHECKER_TIMEOUT (a test checks it)


@dataclass(frozen=True)
class RunConfig:
    """How a run is made. ``definition_paths`` are absolute (a worker in another directory loads the same files);
    ``selection`` holds concept names or ``concept.definition`` ids (empty: everything loaded); ``token_ids`` is
    ``"START:STOP"``; ``project_path`` is the project file the other fields were read from, if any."""

    definition_paths: tuple[str, ...] = ()
    include_builtin: bool = True
    selection: tuple[str, ...] = ()
    seed: int = DEFAULT_SEED
    batch_size: int | None = None
    device: str = "cpu"
    plugin_modules: tuple[str, ...] = ()
    disabled_plugins: tuple[str, ...] = ()
    strict_plugins: bool = False
    bos_token_id: int | None = None
    token_ids: str | None = None
    model_config: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    project_path: str | None = None
    checker_timeout: float = DEFAULT_CHECKER_TIMEOUT
    """Seconds one checker's computation may take before it is stopped as that checker's error (0: no limit)."""
    seeds: int = 1
    """How many probe seeds (``seed`` to ``seed + seeds - 1``) every probe is drawn under (stability, margins)."""
    strict_stability: bool = False
    """A baseline diff counts changes of unstable memberships too."""
    bootstrap: int = 0
    """Resamples of each probe's sequences (0: none): standard errors, margins and Jaccard intervals from one run."""
    allow_outside_files: bool = False
    """Probes may read files outside the project's folder (``token_file`` paths, text corpora)."""

    @classmethod
    def resolve(
        cls,
        *,
        config_path: Path | None = None,
        no_config: bool = False,
        definition_paths: Sequence[str | Path] = (),
        no_builtin: bool = False,
        selection: Sequence[str] = (),
        seed: int | None = None,
        tolerance: float | None = None,
        token_ids: str | tuple[int, int] | None = None,
        model_config: str | Path | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        bos_token_id: int | None = None,
        plugin_modules: Sequence[str] = (),
        disabled_plugins: Sequence[str] = (),
        strict_plugins: bool = False,
        checker_timeout: float | None = None,
        seeds: int | None = None,
        strict_stability: bool = False,
        allow_outside_files: bool = False,
        bootstrap: int | None = None,
    ) -> RunConfig:
        """The config of a run: the flags (``None`` meaning "not given") over the project file's values
        (``--config``, else the nearest ``defcheck.yaml`` unless ``no_config``) over the defaults.

        A project file with errors raises :class:`~defcheck.diagnostics.DefinitionsError` carrying them."""
        from defcheck.ci.project import load_project, resolve_project

        project_file = resolve_project(config_path, no_config)
        spec = None
        project_paths: list[Path] = []
        if project_file is not None:
            project, diagnostics = load_project(project_file)
            errors = [d for d in diagnostics if d.severity == "error"]
            if errors or project is None:
                raise DefinitionsError(errors or diagnostics, f"the project file {display_path(project_file)}")
            spec = project.project
            project_paths = project.definition_paths()
        return cls(
            definition_paths=tuple(str(Path(p).resolve()) for p in [*project_paths, *definition_paths]),
            include_builtin=not no_builtin and (spec.builtin if spec is not None else True),
            selection=tuple(selection) or (tuple(spec.concepts) if spec is not None else ()),
            seed=seed if seed is not None else (spec.seed if spec is not None else DEFAULT_SEED),
            tolerance=tolerance if tolerance is not None else (spec.tolerance if spec else DEFAULT_TOLERANCE),
            token_ids=token_range(token_ids),
            model_config=str(model_config) if model_config is not None else None,
            project_path=str(project_file.resolve()) if project_file is not None else None,
            batch_size=batch_size,
            device=device or "cpu",
            bos_token_id=bos_token_id,
            plugin_modules=tuple(plugin_modules),
            disabled_plugins=tuple(disabled_plugins),
            strict_plugins=strict_plugins,
            checker_timeout=checker_timeout
            if checker_timeout is not None
            else (spec.checker_timeout if spec is not None else DEFAULT_CHECKER_TIMEOUT),
            seeds=seeds if seeds is not None else (spec.seeds if spec is not None else 1),
            strict_stability=strict_stability,
            bootstrap=bootstrap if bootstrap is not None else (spec.bootstrap if spec is not None else 0),
            allow_outside_files=allow_outside_files or (spec.allow_outside_files if spec is not None else False),
        )


def token_range(value: str | tuple[int, int] | Sequence[int] | None) -> str | None:
    """``(start, stop)`` or ``"start:stop"`` as ``"start:stop"`` (the loaders parse and check it)."""
    if value is None or isinstance(value, str):
        return value
    start, stop = value
    return f"{int(start)}:{int(stop)}"
