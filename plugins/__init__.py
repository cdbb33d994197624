"""defcheck's built-in plugins, each a module of hook implementations registered through the ``defcheck``
entry-point group exactly as a third-party plugin would be."""
