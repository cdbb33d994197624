"""The definition language: YAML concept files, their schema and thresholds, the registry and the kind lint."""
