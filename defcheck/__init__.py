"""defcheck: declarative behavioral and mechanistic definitions of interpretability concepts, checked on models."""

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
