"""What every command gets from the group: the global options, and the plugins loaded once on first use."""

from __future__ import annotations

from dataclasses import dataclass, field

from defcheck.hooks.manager import Extensions, load_plugins

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


@dataclass
class Settings:
    """The group's options and the extensions they load (on first use, so commands that need none stay fast).

    ``quiet`` and ``verbose`` are set by ``-q``/``-v`` before or after the command's name; ``plugin_modules``
    and ``disabled_plugins`` come from ``-p MODULE`` and ``-p no:NAME``.
    """

    strict_plugins: bool = False
    quiet: bool = False
    plugin_modules: tuple[str, ...] = ()
    disabled_plugins: tuple[str, ...] = ()
    verbose: bool = False
    problems_reported: bool = False
    """Whether the plugins' load failures were printed already (they are printed once per invocation)."""
    _extensions: Extensions | None = field(default=None, repr=False)

    @property
    def extensions(self) -> Extensions:
        if self._extensions is None:
            self._extensions = load_plugins(
                strict=self.strict_plugins, modules=self.plugin_modules, disabled=self.disabled_plugins
            )
        return self._extensions
