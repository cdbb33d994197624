"""The engine: probes' data, what checkers receive and return, units, the runner and the overlap analysis."""
