"""defcheck: declarative behavioral and mechanistic definitions of interpretability concepts, checked on models.

The root imports neither torch nor TransformerLens: ``check`` and ``load_model`` load them when first
used. Plugins import from :mod:`defcheck.plugin`, the plugin contract; the declarations and ``hookimpl`` exported
here are the same objects, kept importable from the root as in 0.1.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import TYPE_CHECKING, Any

# The `defcheck` command (not a program that imports defcheck): torch's OpenMP threads sleep instead of spinning
# while they wait, unless the user chose otherwise. On shared cores spinning threads wait for descheduled ones:
# measured on 2 cores under a load of ~7, 4.4 s with spinning against 0.08-0.2 s; on idle cores no slower.
# It must be set before torch is imported, hence here.
if "torch" not in _sys.modules and _os.path.basename(_sys.argv[0] if _sys.argv else "").startswith("defcheck"):
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from defcheck import _compat
from defcheck._version import __version__
from defcheck.diagnostics import DefcheckError, Diagnostic
from defcheck.hooks.declarations import Checker, ConceptFolder, ModelLoader, Probe, ReportFormat, Streamed, UnitKind
from defcheck.hooks.specs import hookimpl
from defcheck.language.schema import Concept, Criterion, Definition

_compat.install()

if TYPE_CHECKING:
    from defcheck.api import check, load_model

__all__ = [
    "Checker",
    "Concept",
    "ConceptFolder",
    "Criterion",
    "DefcheckError",
    "Definition",
    "Diagnostic",
    "ModelLoader",
    "Probe",
    "ReportFormat",
    "Streamed",
    "UnitKind",
    "__version__",
    "check",
    "hookimpl",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name in ("check", "load_model", "as_view"):
        from defcheck import api

        return getattr(api, name)
    raise AttributeError(f"module 'defcheck' has no attribute {name!r}")
