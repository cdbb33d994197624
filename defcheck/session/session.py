"""``Session``: what a run loads once (the plugins, the definitions, the project file) and the one code path from a
model to a :class:`~defcheck.report.Report`: evaluate, build the report, check the expectations and the baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from defcheck.diagnostics import DefcheckError, DefinitionsError, did_you_mean, display_path
from defcheck.session.config import RunConfig

if TYPE_CHECKING:
    from defcheck.ci.project import ProjectFile
    from defcheck.engine.runner import Progress, RunResult
    from defcheck.hooks.manager import Extensions
    from defcheck.language.registry import Registry
    from defcheck.report import Report


DEFAULT_MODEL = "builtin:toy-induction"

#: How a command line user gives a model's token metadata (the end of the one error a run without it stops with).
TOKEN_HINT = (
    "give them with --bos-token-id ID and --token-ids START:STOP, with a `defcheck:` block in the model's config "
    "(e.g. `defcheck: {bos_token_id: 0, token_ids: [1, 64]}`), or with a tokenizer in the model's folder (Hugging "
    "Face model folders)"
)


@dataclass(frozen=True)
class ModelTarget:
    """A model a run checks: its ``name`` (in outputs, ``{model}`` paths, expectations' ``model:``), the
    ``reference`` to load, how the report names it (``shown``), and the loader options its project entry sets."""

    name: str
    reference: str
    shown: str
    options: Mapping[str, Any] = field(default_factory=dict)


class Session:
    """The plugins, definitions and project of one :class:`RunConfig`, each loaded once on first use.

    ``extensions`` (plugins already loaded, e.g. by the command line's group) and ``extra_plugins`` (plugin
    objects in memory, e.g. a notebook's) are optional; by default the config's plugins are loaded here.
    ``token_hint`` ends the error a model without token metadata gets: how this caller's user gives it.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        extensions: Extensions | None = None,
        extra_plugins: Sequence[Any] = (),
        token_hint: str = TOKEN_HINT,
    ) -> None:
        self.config = config
        self.token_hint = token_hint
        self._extensions = extensions
        self._extra = tuple(extra_plugins)
        self._registry: Registry | None = None
        self._project: ProjectFile | None = None
        self._selection: list[str] | None = None

    @property
    def extensions(self) -> Extensions:
        """The loaded plugins (problems in ``extensions.problems``; strict mode raises instead)."""
        if self._extensions is None:
            from defcheck.hooks.manager import load_plugins

            config = self.config
            self._extensions = load_plugins(
                strict=config.strict_plugins,
                modules=config.plugin_modules,
                extra=self._extra,
                disabled=config.disabled_plugins,  # `-p no:NAME`
            )
        return self._extensions

    @property
    def project(self) -> ProjectFile | None:
        """The project file the config was read from, if any."""
        if self._project is None and self.config.project_path is not None:
            from defcheck.ci.project import load_project

            path = Path(self.config.project_path)
            project, diagnostics = load_project(path)
            errors = [d for d in diagnostics if d.severity == "error"]
            if errors or project is None:
                raise DefinitionsError(errors or diagnostics, f"the project file {display_path(path)}")
            self._project = project
        return self._project

    @property
    def registry(self) -> Registry:
        """The definitions; any error in them (or a project file naming what is not loaded) raises one
        :class:`~defcheck.diagnostics.DefinitionsError` carrying every diagnostic."""
        if self._registry is None:
            from defcheck.ci.project import check_project
            from defcheck.language.registry import load_registry

            paths = [Path(p) for p in self.config.definition_paths]
            config = self.config
            root = Path(config.project_path).parent if config.project_path else None  # what probes may read
            registry = load_registry(
                paths,
                self.extensions,
                include_builtin=config.include_builtin,
                project_root=root,
                allow_outside_files=config.allow_outside_files,
            )
            if registry.errors:
                raise DefinitionsError(registry.errors)
            project = self.project
            if project is not None:
                problems = check_project(project, registry)
                if problems:
                    raise DefinitionsError(problems, f"the project file {project.label}")
            self._registry = registry
        return self._registry

    def selection(self) -> list[str] | None:
        """The config's selection, checked: an unknown name, or nothing to check at all, is an error with a
        "did you mean"; ``None`` means every definition loaded."""
        if self._selection is None:
            registry = self.registry
            known = list(registry.order)
            if not known:
                where = ", ".join(self.config.definition_paths) or "no folder given"
                builtin = "" if self.config.include_builtin else " with --no-builtin"
                raise DefcheckError(f"nothing to check: no definitions were loaded ({where}{builtin})")
            names = sorted({*known, *(d.partition(".")[0] for d in known)})
            for wanted in self.config.selection:
                if wanted not in known and not any(d.startswith(f"{wanted}.") for d in known):
                    raise DefcheckError(f"unknown concept or definition: {wanted}{did_you_mean(wanted, names)}")
            self._selection = list(self.config.selection)
        return self._selection or None

    def selected_ids(self) -> list[str]:
        """The ids of the definitions a run evaluates: the selection and what its ``with:`` refers to (the
        runner's own rule, :func:`defcheck.engine.scheduling.selected`)."""
        from defcheck.engine.scheduling import selected

        return selected(self.registry, self.selection())

    def selected_concepts(self) -> list[str]:
        """The concepts whose definitions a run evaluates, sorted."""
        return sorted({d.partition(".")[0] for d in self.selected_ids()})

    def needs_tokens(self) -> bool:
        """Whether a selected definition runs a probe (and so needs the model's token metadata)."""
        return bool(self._probing())

    def _probing(self) -> list[str]:
        """The selected definitions with a criterion that runs a probe."""
        registry = self.registry
        return [d for d in self.selected_ids() if any(c.probe is not None for c in registry.definition(d)[1].criteria)]

    def require_tokens(self, model: Any, how: str | None = None) -> None:
        """Stop before any forward pass, in one sentence, when a selected definition runs a probe and ``model``
        has no token metadata; ``how`` (default: the session's ``token_hint``) says how the caller gives it."""
        from defcheck.models.view import ModelView

        if not isinstance(model, ModelView) or model.tokens is not None:
            return
        probing = self._probing()
        if probing:
            count = f"{len(probing)} selected definition{'s' if len(probing) > 1 else ''}"
            raise DefcheckError(
                f"the model '{model.name}' has no token metadata (no BOS token id, no range of usable token ids), "
                f"which the probes of {count} need to choose tokens; {how or self.token_hint}"
            )

    def load_model(self, reference: str, *, checkpoint_index: int | None = None, **defaults: Any) -> Any:
        """Load ``reference`` with the config's device and token overrides; ``defaults`` (loader options:
        ``model_config``, ``bos_token_id``, ``token_ids``, e.g. a project file's model entry) apply where the
        config sets none."""
        from defcheck.models.loading import load_model

        config = self.config
        given = {
            "device": config.device,
            "model_config": config.model_config,
            "bos_token_id": config.bos_token_id,
            "token_ids": config.token_ids,
            "checkpoint_index": checkpoint_index,
        }
        options = {**defaults, **{key: value for key, value in given.items() if value is not None}}
        return load_model(reference, self.extensions, **options)

    def models(self, reference: str | None = None) -> list[ModelTarget]:
        """What a run checks: ``reference`` (a model's name in the project file, else a reference to load), else
        the project file's models, else the default model."""
        from defcheck.ci.project import model_name

        if reference is not None and not reference.strip():
            raise DefcheckError(
                "the model reference is empty; give builtin:NAME, tl:NAME, a checkpoint path, or the name of a "
                "model in the project file"
            )
        project = self.project
        named = dict(project.models()) if project is not None else {}
        if project is None or not named or (reference is not None and reference not in named):
            chosen = reference or DEFAULT_MODEL
            return [ModelTarget(model_name(chosen), chosen, chosen)]
        if reference is not None:
            named = {reference: named[reference]}
        out = []
        for name, spec in named.items():
            options = {
                "model_config": project.model_config_path(spec),
                "bos_token_id": spec.bos_token_id,
                "token_ids": spec.token_ids,
            }
            out.append(ModelTarget(name, project.model_reference(spec), spec.ref, options))
        return out

    def evaluate(self, model: Any, *, progress: Progress | None = None) -> RunResult:
        """Evaluate the selection on ``model`` with the config's seed(s) and batch size (no report); a model without
        the token metadata its probes need is refused first, in one error (:meth:`require_tokens`)."""
        from defcheck.engine.stability import evaluate_seeds

        self.require_tokens(model)  # one error before any forward pass, not one per criterion
        config = self.config
        return evaluate_seeds(
            model,
            self.registry,
            self.extensions,
            seed=config.seed,
            seeds=config.seeds,
            bootstrap=config.bootstrap,
            batch_size=config.batch_size,
            definitions=self.selection(),
            progress=progress,
            checker_timeout=config.checker_timeout,
        )

    def run(
        self,
        model: Any,
        *,
        model_info: Mapping[str, Any] | None = None,
        name: str | None = None,
        baseline: tuple[str, Mapping[str, Any]] | None = None,
        checks: bool = True,
        progress: Progress | None = None,
    ) -> tuple[RunResult, Report]:
        """Evaluate the selection on ``model`` and build its report; with ``checks`` and a project file (its
        expectations for the model ``name``) or a ``baseline`` (its file label and document), add the checks."""
        from defcheck.report import Report

        result = self.evaluate(model, progress=progress)
        report = Report.build(result, self.registry, model_info)
        project = self.project
        if checks and (project is not None or baseline is not None):
            report.set_checks(self._checks(report, name, baseline))
        return result, report

    def check(self, model: Any, **options: Any) -> Report:
        """The report of ``model`` (see :meth:`run`)."""
        return self.run(model, **options)[1]

    def _checks(self, report: Report, name: str | None, baseline: tuple[str, Mapping[str, Any]] | None) -> Any:
        from defcheck.ci.baseline import diff_reports
        from defcheck.ci.expectations import applicable, check_expectations
        from defcheck.report.checks import build_checks

        project = self.project
        label = name or str(report.data.get("model", {}).get("name", "model"))
        expectations: list[Any] = []
        if project is not None:
            expectations = check_expectations(applicable(project, label), report.data, file=project.label)
        compared = None
        if baseline is not None:
            file, old = baseline
            tolerance = self.config.tolerance
            ignored: list[str] = []
            differences = diff_reports(
                old,
                report.data,
                tolerance=tolerance,
                selection=self.selection(),
                strict_stability=self.config.strict_stability,
                ignored=ignored,
            )
            compared = {"file": file, "tolerance": tolerance, "differences": differences, "ignored": ignored}
        return build_checks(
            report.data,
            model=label,
            project=project.label if project is not None else None,
            expectations=expectations,
            baseline=compared,
        )
