"""One module per ``defcheck`` command; :mod:`defcheck.cli` adds each to the group."""
