"""The session layer: one :class:`RunConfig` (what decides a run's results, resolved once) and one :class:`Session`
(the plugins, definitions and project it loads, and ``check(model) -> Report``), used by ``defcheck run``,
``defcheck sweep`` and its workers, :func:`defcheck.check` and the benchmark."""

from __future__ import annotations

from defcheck.session.config import RunConfig
from defcheck.session.session import Session

__all__ = ["RunConfig", "Session"]
