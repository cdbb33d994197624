"""Model loading refuses hostile or nonsensical files in one sentence naming the file (and the field): a pickle
that needs a Python global is *refused* naming it (in torch 2.13's wordings too), a config's sizes are checked
before TransformerLens divides by, indexes with or allocates them, and nothing leaks as ZeroDivisionError or
IndexError."""

from __future__ import annotations

import collections
import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import TINY, make_view

from defcheck.diagnostics import DefcheckError
from defcheck.hooks.manager import load_plugins
from defcheck.models.checks import unpickling_refusal
from defcheck.models.loading import bridge_config, load_model


@pytest.fixture(scope="module")
def extensions():
    return load_plugins()


def _checkpoint(tmp_path, config=None):
    """The tiny model's state dict as ``model.pt``, with ``config`` (default TINY) as ``model.json`` beside it."""
    path = tmp_path / "model.pt"
    torch.save(make_view(0).model.state_dict(), path)
    (tmp_path / "model.json").write_text(json.dumps(config if config is not None else TINY))
    return path


class _System:
    """A pickle that would run ``os.system`` when loaded without weights_only (it never is here)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Ordered(collections.OrderedDict):
    """A state-dict-like mapping of a class torch does not allow."""


def test_a_pickle_calling_os_system_is_refused_naming_the_global(tmp_path, extensions):
    """torch 2.13 says "Trying to load unsupported GLOBAL posix.system whose module posix is blocked", which the
    old pattern ("Unsupported global: GLOBAL") missed: the file was called "not a PyTorch checkpoint"."""
    marker = tmp_path / "ran"
    path = _checkpoint(tmp_path)
    torch.save({"embed.weight": torch.zeros(1), "payload": _System(marker)}, path)
    with pytest.raises(DefcheckError) as caught:
        load_model(str(path), extensions)
    message = str(caught.value)
    assert message.startswith(f"refused to load {path}: the checkpoint needs ")
    assert f"{os.system.__module__}.system" in message  # posix.system (nt.system on Windows)
    assert "which is not allowed with weights_only=True" in message and "\n" not in message
    assert "not a PyTorch checkpoint" not in message
    assert not marker.exists()


def test_a_pickle_of_a_class_torch_does_not_allow_is_refused_naming_it(tmp_path, extensions):
    path = _checkpoint(tmp_path)
    torch.save(_Ordered(make_view(0).model.state_dict()), path)
    with pytest.raises(DefcheckError, match=r"the checkpoint needs test_loader_errors\._Ordered, which is not allowed"):
        load_model(str(path), extensions)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Weights only load failed. ...\n\nTrying to load unsupported GLOBAL posix.system whose module posix is "
         "blocked.\n\nCheck the documentation", "the checkpoint needs posix.system"),
        ("Weights only load failed. ...\n\tWeightsUnpickler error: Unsupported global: GLOBAL builtins.eval was "
         "not an allowed global by default.", "the checkpoint needs builtins.eval"),
        ("Weights only load failed. ...\nWeightsUnpickler error: Trying to call reduce for unrecognized function "
         "<built-in function eval>", "weights_only=True does not allow what its pickle does (Trying to call reduce"),
        ("Weights only load failed. ...\nWeightsUnpickler error: Unsupported operand 110\n\nCheck the documentation",
         "model.pt is not a PyTorch checkpoint (torch.load: Unsupported operand 110)"),
    ],
)  # fmt: skip
def test_the_refusal_reads_every_wording(text, expected):
    assert expected in unpickling_refusal("model.pt", pickle.UnpicklingError(text))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bytes_that_are_no_checkpoint_are_said_to_be_so(tmp_path, extensions):
    for name, content in {
        "text.pt": b"hello world, no checkpoint",
        "empty.pt": b"",
        "list.pt": pickle.dumps([1]),
    }.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DefcheckError, match=rf"{name} is not a PyTorch checkpoint \(torch\.load"):
            load_model(str(tmp_path / name), extensions, model_config=dict(TINY))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_heads": 0}, r"model\.json: n_heads must be a positive integer \(1 to 65,536, or -1: derived\), got 0"),
        ({"n_layers": 0}, r"model\.json: n_layers must be a positive integer \(1 to 4,096\), got 0"),
        ({"n_heads": None}, r"model\.json: n_heads must be a positive integer .*got None"),
        ({"d_vocab_out": 2.5}, r"model\.json: d_vocab_out must be a positive integer .*got 2\.5"),
        ({"n_key_value_heads": 3}, r"model\.json: n_heads \(8\) must be a multiple of n_key_value_heads \(3\)"),
        ({"n_key_value_heads": "x"}, r"model\.json: n_key_value_heads must be a positive integer .*got 'x'"),
        ({"eps": "x"}, r"model\.json: eps must be a small positive number"),
        ({"d_vocab": 1_000_000}, r"model\.json: the config describes a model of at least [\d,]+ weights"),
    ],
)  # fmt: skip
def test_config_values_are_checked_before_the_model_is_built(tmp_path, extensions, change, message):
    path = _checkpoint(tmp_path, {**TINY, **change})
    with pytest.raises(DefcheckError, match=message) as caught:
        load_model(str(path), extensions)
    assert "Error" not in str(caught.value) and "failed on" not in str(caught.value)  # no exception type leaks


def test_bridge_config_names_the_source_and_field():
    with pytest.raises(DefcheckError, match=r"^my\.json: d_head must be a positive integer"):
        bridge_config({**TINY, "d_head": 0}, "my.json")
    # 10**30 layers were built one by one (the load never ended): refused before anything is built
    with pytest.raises(DefcheckError, match=r"n_layers must be a positive integer \(1 to 4,096\), got 10{30}"):
        bridge_config({**TINY, "n_layers": 10**30}, "my.json")
    with pytest.raises(DefcheckError, match=r"^my\.json: the config describes a model of over"):
        bridge_config({**TINY, "n_layers": 4096, "d_model": 2**20, "d_head": 2**16, "n_heads": 2**10}, "my.json")


def test_no_loader_error_leaks_through_the_cli(tmp_path):
    """``n_heads: 0`` was a ZeroDivisionError: now exit 2 with one line naming the file and the field."""
    _checkpoint(tmp_path, {**TINY, "n_heads": 0})
    code = textwrap.dedent("from defcheck.cli import main; main(prog_name='defcheck')")
    done = subprocess.run(
        [sys.executable, "-c", code, "run", "--no-config", "-m", "model.pt", "--concept", "previous_token_head"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: model.json: n_heads must be a positive integer")
    assert "ZeroDivisionError" not in done.stderr and "Traceback" not in done.stderr
