"""torch, imported on first use: the modules that compute with it (the engine's data types, the built-in plugins)
name it at module level, yet ``import defcheck``, the plugins and the commands that need no model stay torch-free.

Write ``from defcheck._lazy import torch`` instead of ``import torch``: mypy sees the real module (the
``TYPE_CHECKING`` branch), the interpreter a :class:`LazyModule` that imports torch when an attribute is first read
and keeps each attribute it read, so later reads cost what a module attribute costs. Touching it at import time
(a decorator such as ``@torch.no_grad()``, a default ``dtype=torch.float32``, a module-level tensor) imports torch:
use :func:`no_grad` and functions instead.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class LazyModule(ModuleType):
    """A stand-in for the module ``name`` that imports it when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"{name}, imported on first use (defcheck._lazy)")
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)  # copy, pickle and doctest probe dunders; they must not import torch
        value = getattr(importlib.import_module(self.__dict__["_lazy_target"]), attribute)
        self.__dict__[attribute] = value  # found directly next time
        return value

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__dict__["_lazy_target"]))


def no_grad(function: Callable[P, R]) -> Callable[P, R]:
    """``@torch.no_grad()`` applied on the first call rather than at import (generators included, as torch does)."""
    wrapped: list[Callable[P, R]] = []

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if not wrapped:
            wrapped.append(torch.no_grad()(function))
        return wrapped[0](*args, **kwargs)

    return call


if TYPE_CHECKING:
    import torch as torch
else:
    torch = LazyModule("torch")

__all__ = ["LazyModule", "no_grad", "torch"]
