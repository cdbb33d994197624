"""defcheck's built-in concept files (YAML), shipped as package data; this file only makes the folder a package."""
