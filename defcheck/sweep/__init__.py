"""Sweeps over training checkpoints: series, tasks, the store of reports, the summary, executors and plots."""

from typing import Any


def __getattr__(name: str) -> Any:
    # 0.1's `defcheck.sweep` was one module; its public names stay importable from the package for one release
    import importlib

    core = importlib.import_module("defcheck.sweep.core")
    if name.startswith("_") or not hasattr(core, name):
        raise AttributeError(f"module 'defcheck.sweep' has no attribute {name!r}")
    return getattr(core, name)
