"""What every command gets from the group: the global options, and the plugins loaded once on first use."""

from __future__ import annotations

from defcheck.hooks.manager import Extensions, load_plugins

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class Settings:
    """The group's options (``--strict-plugins``, ``--quiet``, ``--plugin``) and the extensions they load."""

    def __init__(self, strict_plugins: bool, quiet: bool, plugin_modules: tuple[str, ...] = ()):
        self.strict_plugins = strict_plugins
        self.plugin_modules = plugin_modules
        self.quiet = quiet
        self._extensions: Extensions | None = None

    @property
    def extensions(self) -> Extensions:
        if self._extensions is None:
            self._extensions = load_plugins(strict=self.strict_plugins, modules=self.plugin_modules)
        return self._extensions
