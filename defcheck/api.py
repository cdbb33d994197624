"""The Python API: check a model already in memory and get a :class:`~defcheck.report.Report`.

``defcheck run``, ``defcheck sweep`` and :func:`check` share one code path, :class:`defcheck.session.Session`:
load plugins and definitions, wrap the model, evaluate, build the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from defcheck.diagnostics import DefcheckError
from defcheck.models.view import ModelView, TokenSpace
from defcheck.report import Report

__all__ = ["as_view", "check", "load_model"]

#: How an API user gives a model's token metadata (the end of the error :func:`check` raises without it).
API_TOKEN_HINT = (
    "pass them to check(), e.g. check(model, bos_token_id=0, token_ids=(1, 1000)) (bos_token_id=: the BOS id; "
    "token_ids=: the half-open range of ids probes may draw), put a `defcheck:` block in the config of a "
    "checkpoint loaded with defcheck.load_model, or give the model a tokenizer (model.tokenizer)"
)


def as_view(
    model: Any,
    *,
    name: str | None = None,
    bos_token_id: int | None = None,
    token_ids: tuple[int, int] | None = None,
) -> ModelView | Any:
    """Wrap a TransformerLens 4 ``TransformerBridge`` (or anything with its interface: weights by name,
    ``run_with_cache``, ``run_with_hooks``, ``cfg``; TransformerLens 3's ``HookedTransformer`` cannot be used
    with ``transformer_lens >= 4``: load its saved state dict with :func:`load_model` instead) for the checkers.
    A :class:`ModelView` is returned as it is (its token metadata overridden where given), and so is a model of
    another kind that a plugin's loader returned (an object with a ``name`` and no ``cfg``).

    Token metadata (which id is BOS, which ids probes may draw) comes from the arguments, else from the
    model's tokenizer, if it has one; without either, :func:`check` stops before any probe runs.
    """
    if isinstance(model, ModelView):
        if bos_token_id is None and token_ids is None:
            return model
        d_vocab = model.d_vocab
        known = model.tokens or TokenSpace(d_vocab)
        return ModelView(
            model.model,
            TokenSpace(
                d_vocab,
                bos_token_id if bos_token_id is not None else known.bos_token_id,
                known.special_ids,
                token_ids if token_ids is not None else known.token_ids,
            ),
            name or model.name,
            dict(model.info),
        )
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(model, "run_with_cache"):
        if isinstance(getattr(model, "name", None), str) and not hasattr(model, "cfg"):
            return model  # another kind of model (a plugin loader's policy set): its plugin's checkers read it
        raise DefcheckError(
            f"cannot check a {type(model).__name__}: give a TransformerLens 4 model (TransformerBridge), a defcheck "
            "ModelView (defcheck.load_model), or a model object a plugin's loader returned"
        )
    d_vocab = int(cfg.d_vocab)
    tokenizer = getattr(model, "tokenizer", None)
    tokens: TokenSpace | None = None
    if bos_token_id is not None or token_ids is not None or tokenizer is not None:
        bos = bos_token_id if bos_token_id is not None else getattr(tokenizer, "bos_token_id", None)
        special = sorted(
            {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or []) if 0 <= int(i) < d_vocab} - {bos}
        )
        tokens = TokenSpace(d_vocab, bos, tuple(special), token_ids)
    label = name or getattr(cfg, "model_name", None) or type(model).__name__
    return ModelView(model, tokens, str(label))


def check(
    model: Any,
    concepts: Sequence[str] | None = None,
    definitions: Sequence[str] | None = None,
    *,
    seed: int = 0,
    seeds: int = 1,
    bootstrap: int = 0,
    paths: Sequence[str | Path] = (),
    include_builtin: bool = True,
    plugins: Sequence[Any] = (),
    batch_size: int | None = None,
    bos_token_id: int | None = None,
    token_ids: tuple[int, int] | None = None,
    name: str | None = None,
    model_info: dict[str, Any] | None = None,
) -> Report:
    """Check ``model`` against the concepts' definitions and return the report.

    ``concepts`` and ``definitions`` select what to evaluate (concept names, ``concept.definition`` ids; the
    definitions they refer to with ``with:`` come along); by default everything loaded. ``paths`` are extra
    concept files or folders, loaded with the built-in ones unless ``include_builtin=False``. ``plugins``
    adds plugins: module names (as ``--plugin`` does) or plugin objects already in memory. ``seeds`` (as
    ``--seeds``) draws every probe under the seeds ``seed`` to ``seed + seeds - 1`` and reports stability;
    ``bootstrap`` (as ``--bootstrap``) resamples each probe's sequences that many times (standard errors, margins).

    Raises :class:`~defcheck.diagnostics.DefcheckError` before anything runs when the definitions have errors, a
    selected name is unknown, or the model has no token metadata and a selected definition runs a probe.
    """
    from defcheck.session import RunConfig, Session

    _check_arguments(
        concepts=concepts,
        definitions=definitions,
        seed=seed,
        seeds=seeds,
        bootstrap=bootstrap,
        paths=paths,
        include_builtin=include_builtin,
        plugins=plugins,
        batch_size=batch_size,
        bos_token_id=bos_token_id,
        token_ids=token_ids,
        name=name,
        model_info=model_info,
    )
    view = as_view(model, name=name, bos_token_id=bos_token_id, token_ids=token_ids)
    config = RunConfig(
        definition_paths=tuple(str(Path(p).resolve()) for p in paths),
        include_builtin=include_builtin,
        selection=(*(concepts or ()), *(definitions or ())),
        seed=seed,
        seeds=seeds,
        bootstrap=bootstrap,
        batch_size=batch_size,
        plugin_modules=tuple(p for p in plugins if isinstance(p, str)),
    )
    session = Session(config, extra_plugins=[p for p in plugins if not isinstance(p, str)], token_hint=API_TOKEN_HINT)
    session.require_tokens(view)
    return session.check(view, model_info=model_info)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: Any, what: str) -> None:
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise DefcheckError(f"{what}= takes a list of names, e.g. {what}=['induction_head'], not {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise DefcheckError(f"{what}= takes names (non-empty strings), not {item!r}")


def _check_arguments(**arguments: Any) -> None:
    """Refuse what ``defcheck run`` would refuse on its command line: a wrong type or a number out of range, as
    a :class:`DefcheckError` naming the argument (``TypeError`` and friends from deep inside are not for users)."""
    from defcheck.session.config import MAX_BOOTSTRAP, MAX_SEED, MAX_SEEDS

    _names(arguments["concepts"], "concepts")
    _names(arguments["definitions"], "definitions")
    seed = arguments["seed"]
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise DefcheckError(f"seed= must be an integer from 0 to 2**32 - 1, not {seed!r}")
    seeds = arguments["seeds"]
    if not _is_int(seeds) or not 1 <= seeds <= MAX_SEEDS:
        raise DefcheckError(f"seeds= must be an integer from 1 to {MAX_SEEDS}, not {seeds!r}")
    bootstrap = arguments["bootstrap"]
    if not _is_int(bootstrap) or not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise DefcheckError(f"bootstrap= must be an integer from 0 to {MAX_BOOTSTRAP}, not {bootstrap!r}")
    batch = arguments["batch_size"]
    if batch is not None and (not _is_int(batch) or batch < 1):
        raise DefcheckError(f"batch_size= must be an integer >= 1 (or None: a whole probe), not {batch!r}")
    bos = arguments["bos_token_id"]
    if bos is not None and (not _is_int(bos) or bos < 0):
        raise DefcheckError(f"bos_token_id= must be an integer >= 0, not {bos!r}")
    ids = arguments["token_ids"]
    if ids is not None and not (
        isinstance(ids, Sequence) and len(ids) == 2 and all(_is_int(i) for i in ids) and 0 <= ids[0] < ids[1]
    ):
        raise DefcheckError(
            f"token_ids= must be a half-open range (start, stop) of ids, 0 <= start < stop, not {ids!r}"
        )
    paths = arguments["paths"]
    if isinstance(paths, (str, Path)) or not isinstance(paths, Sequence):
        raise DefcheckError(f"paths= takes a list of concept files or folders, not {paths!r}")
    for path in paths:
        if not isinstance(path, (str, Path)) or not str(path).strip():
            raise DefcheckError(f"paths= takes concept files or folders (str or Path), not {path!r}")
    if not isinstance(arguments["include_builtin"], bool):
        raise DefcheckError(f"include_builtin= must be True or False, not {arguments['include_builtin']!r}")
    plugins = arguments["plugins"]
    if isinstance(plugins, str) or not isinstance(plugins, Sequence):
        raise DefcheckError(f"plugins= takes a list of module names or plugin objects, not {plugins!r}")
    for plugin in plugins:
        if isinstance(plugin, str) and plugin.strip():
            continue
        if plugin is None or isinstance(plugin, (str, bytes, bool, int, float, complex, list, tuple, dict, set)):
            raise DefcheckError(
                f"plugins= takes module names (as --plugin does) or plugin objects (a module or a class with "
                f"@hookimpl methods), not {plugin!r}"
            )
    if arguments["name"] is not None and (not isinstance(arguments["name"], str) or not arguments["name"].strip()):
        raise DefcheckError(f"name= must be a non-empty string, not {arguments['name']!r}")
    if arguments["model_info"] is not None and not isinstance(arguments["model_info"], dict):
        raise DefcheckError(f"model_info= must be a dict, not {arguments['model_info']!r}")


def load_model(reference: str, **options: Any) -> ModelView | Any:
    """Load a model as ``defcheck run --model`` does: ``builtin:NAME``, ``tl:NAME`` (needs the network), or a
    checkpoint path; ``options`` are ``device``, ``model_config``, ``bos_token_id``, ``token_ids``, and
    ``plugins`` (module names of plugins whose loaders to use besides the installed ones)."""
    from defcheck.session import RunConfig, Session

    plugins = tuple(options.pop("plugins", ()))
    config = RunConfig(plugin_modules=plugins, device=options.pop("device", None) or "cpu")
    return Session(config).load_model(reference, **options)  # the other options go to the loader as given
