"""Built-in checkers (being written)."""
