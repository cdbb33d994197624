"""defcheck: declarative behavioral and mechanistic definitions of interpretability concepts, checked on models."""

import os as _os
import sys as _sys

# The `defcheck` command (not a program that imports defcheck): torch's OpenMP threads sleep instead of spinning
# while they wait, unless the user chose otherwise. On shared cores spinning threads wait for descheduled ones:
# measured on 2 cores under a load of ~7, 4.4 s with spinning against 0.08-0.2 s; on idle cores no slower.
# It must be set before torch is imported, hence here.
if "torch" not in _sys.modules and _os.path.basename(_sys.argv[0] if _sys.argv else "").startswith("defcheck"):
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from defcheck.api import check
from defcheck.diagnostics import DefcheckError, Diagnostic
from defcheck.extensions import Checker, ConceptFolder, ModelLoader, Probe, ReportFormat, Streamed, UnitKind
from defcheck.hookspecs import hookimpl
from defcheck.schema import Concept, Criterion, Definition

__version__ = "0.1.0"

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
]
