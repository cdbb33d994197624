"""How the runner calls a checker: without gradients, within its time limit, with the model read-only.

:class:`CheckerGuard` wraps every call into a checker's code during a run (``score``, a streamed checker's
``prepare``, ``step`` and ``finish``):

- under ``torch.no_grad()``;
- within the run's per-checker time limit (``--checker-timeout``), counted over all of one computation's calls
  (a streamed checker's batches add up), stopped with SIGALRM (:func:`~defcheck.hooks.containment.time_limit`;
  where that is not possible, outside the main thread or on Windows, without a limit);
- anything it raises, ``sys.exit()`` included, as an ``Exception`` (:func:`~defcheck.hooks.containment.contain`);
- with the model's weights watched: the version counters of its parameters (and of the weights
  :class:`~defcheck.models.ModelView` caches for checkers) are compared before and after each call, so an
  in-place write is found at once. The cache is then dropped (the model's own weights are intact); the
  parameters are put back from a copy taken at the start of the run if the model is at most
  :data:`BACKUP_LIMIT_BYTES`, else every later checker call of the run is refused, since its result could not
  be trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from defcheck.diagnostics import DefcheckError
from defcheck.hooks.containment import TimeLimitExceeded, TookTooLong, contain, time_limit
from defcheck.models.view import ModelView

#: Models whose parameters take at most this many bytes are copied (to the CPU) at the start of a run, so that
#: weights a checker wrote to can be put back; larger ones are only watched.
BACKUP_LIMIT_BYTES = 256 * 2**20


class WeightsChanged(DefcheckError):
    """A checker wrote to the model's weights in place."""


class CheckerGuard:
    """Calls checkers' code for one run: see the module's docstring. ``timeout`` is the time limit of one
    computation in seconds (None or 0: none)."""

    def __init__(self, model: Any, timeout: float | None) -> None:
        self.timeout = timeout if timeout else None
        self.view = model if isinstance(model, ModelView) else None
        module = model.model if isinstance(model, ModelView) else model
        self.parameters: list[tuple[str, torch.Tensor]] = []
        if isinstance(module, torch.nn.Module):
            seen: set[int] = set()
            for name, parameter in module.named_parameters(remove_duplicate=False):
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    self.parameters.append((name, parameter))
        size = sum(parameter.numel() * parameter.element_size() for _, parameter in self.parameters)
        self.backup: list[torch.Tensor] | None = None
        if size <= BACKUP_LIMIT_BYTES:
            self.backup = [parameter.detach().to("cpu", copy=True) for _, parameter in self.parameters]
        self.refusal: str | None = None  # set once weights changed that could not be put back

    def call(self, checker: str, spent: float, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``, code of the checker named ``checker`` that already ran ``spent`` seconds of its
        time limit. Anything it raises comes back as an ``Exception`` (a user's Ctrl-C still stops the run); past
        its time limit it raises :class:`~defcheck.hooks.containment.TookTooLong`; a write to the weights raises
        :class:`WeightsChanged` (after putting them back)."""
        if self.refusal is not None:
            raise DefcheckError(self.refusal)
        before = self._versions()
        cached = self._cached()
        limit = None if self.timeout is None else max(self.timeout - spent, 1e-3)
        failure: Exception | None = None
        result = None
        timer = None
        try:
            with time_limit(limit) as timer:
                try:
                    with torch.no_grad():
                        result = function(*args)
                except BaseException as raised:
                    failure = contain(raised)
        except TimeLimitExceeded:
            pass  # the alarm came between the checker's end and the disarming: timer.expired says so
        changed = self._changed(before, cached)
        if changed:
            raise self._restore(checker, changed)
        if timer is not None and timer.expired:  # also when the checker swallowed the alarm and returned
            raise TookTooLong(self.timeout or 0.0)
        if failure is not None:
            raise failure
        return result

    def _versions(self) -> list[int]:
        return [parameter._version for _, parameter in self.parameters]

    def _cached(self) -> dict[str, tuple[torch.Tensor, int]]:
        if self.view is None:
            return {}
        return {name: (tensor, tensor._version) for name, tensor in self.view._weights.items()}

    def _changed(self, before: list[int], cached: dict[str, tuple[torch.Tensor, int]]) -> list[str]:
        """The names of the weights written to since ``before`` and ``cached`` were taken."""
        pairs = zip(self.parameters, before, strict=True)
        changed = [name for (name, parameter), version in pairs if parameter._version != version]
        if self.view is not None:
            for name, tensor in self.view._weights.items():
                then = cached.get(name)
                # a weight cached during the call is a fresh copy (version 0) unless the checker wrote to it
                fresh = then is None and tensor._version == 0
                if not fresh and (then is None or then[0] is not tensor or then[1] != tensor._version):
                    changed.append(name)
        return changed

    def _restore(self, checker: str, changed: list[str]) -> WeightsChanged:
        """Put the weights back where possible; the error that says what happened."""
        names = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        if self.view is not None:
            self.view.forget_weights()  # cached copies: the next read copies the model's weights again
        parameters = {name for name, _ in self.parameters}
        if not any(name in parameters for name in changed):
            return WeightsChanged(f"wrote to the model's weights ({names}); they were put back")
        if self.backup is None:
            self.refusal = (
                f"not evaluated: checker '{checker}' wrote to the model's weights ({names}), which are too large to "
                "keep a copy of, so later results could not be trusted"
            )
            return WeightsChanged(f"wrote to the model's weights ({names}); the rest of the run is not evaluated")
        with torch.no_grad():
            for (_, parameter), saved in zip(self.parameters, self.backup, strict=True):
                parameter.copy_(saved)
        return WeightsChanged(f"wrote to the model's weights ({names}); they were put back")
