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
    adds plugins: module names (as ``--plugin`` does) or plugin objects already in memory.

    Raises :class:`~defcheck.diagnostics.DefcheckError` before anything runs when the definitions have errors, a
    selected name is unknown, or the model has no token metadata and a selected definition runs a probe.
    """
    from defcheck.session import RunConfig, Session

    view = as_view(model, name=name, bos_token_id=bos_token_id, token_ids=token_ids)
    config = RunConfig(
        definition_paths=tuple(str(Path(p).resolve()) for p in paths),
        include_builtin=include_builtin,
        selection=(*(concepts or ()), *(definitions or ())),
        seed=seed,
        batch_size=batch_size,
        plugin_modules=tuple(p for p in plugins if isinstance(p, str)),
    )
    session = Session(config, extra_plugins=[p for p in plugins if not isinstance(p, str)], token_hint=API_TOKEN_HINT)
    session.require_tokens(view)
    return session.check(view, model_info=model_info)


def load_model(reference: str, **options: Any) -> ModelView | Any:
    """Load a model as ``defcheck run --model`` does: ``builtin:NAME``, ``tl:NAME`` (needs the network), or a
    checkpoint path; ``options`` are ``device``, ``model_config``, ``bos_token_id``, ``token_ids``, and
    ``plugins`` (module names of plugins whose loaders to use besides the installed ones)."""
    from defcheck.session import RunConfig, Session

    plugins = tuple(options.pop("plugins", ()))
    config = RunConfig(plugin_modules=plugins, device=options.pop("device", None) or "cpu")
    return Session(config).load_model(reference, **options)  # the other options go to the loader as given
