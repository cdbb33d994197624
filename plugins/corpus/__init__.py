"""The built-in text corpus (see LICENSE): read with ``defcheck_plugins.text.builtin_corpus``."""
