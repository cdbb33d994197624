"""Weights of the toy models defcheck ships (``builtin:NAME``): ``NAME.pt`` (float32 state dict) and ``NAME.json``
(config, ``defcheck:`` token metadata, training provenance). Made by ``scripts/train_toy_models.py``."""
