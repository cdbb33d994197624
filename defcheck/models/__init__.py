"""Models: the small interface checkers see (:class:`ModelView`), and ways to build or load models."""

from defcheck.models.view import ModelView, TokenSpace, build_bridge

__all__ = ["ModelView", "TokenSpace", "build_bridge"]
