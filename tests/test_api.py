"""Tests of the Python API (defcheck/api.py), including the notebook session in docs/python-api.md."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from defcheck.api import as_view, check
from defcheck.diagnostics import DefcheckError
from defcheck.models.view import ModelView, TokenSpace

DOC = Path(__file__).parent.parent / "docs" / "python-api.md"


def test_the_documented_session_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    report = namespace["report"]
    assert report.concepts["previous_token_head"].overlap is not None
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "previous_token_head" in capsys.readouterr().out


def test_as_view_token_metadata():
    cfg = SimpleNamespace(d_vocab=10, n_layers=1, n_heads=1, model_name="tiny")
    tokenizer = SimpleNamespace(bos_token_id=9, all_special_ids=[9, 8, 50])
    model = SimpleNamespace(cfg=cfg, tokenizer=tokenizer, run_with_cache=None)
    view = as_view(model)
    assert view.name == "tiny"
    assert view.tokens == TokenSpace(10, 9, (8,), None)
    assert as_view(model, bos_token_id=0, token_ids=(1, 9)).tokens == TokenSpace(10, 0, (8, 9), (1, 9))
    bare = SimpleNamespace(cfg=cfg, run_with_cache=None)
    assert as_view(bare).tokens is None
    wrapped = ModelView(model, None, "m")
    assert as_view(wrapped) is wrapped
    with pytest.raises(DefcheckError, match="cannot check a str"):
        as_view("gpt2")


def test_check_refuses_broken_definitions(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "concept: bad\nsummary: x\ndefinitions:\n  d:\n    kind: behavioral\n"
        "    all:\n      - checker: no_such_checker\n        threshold: '> 0'\n"
    )
    from conftest import make_view

    with pytest.raises(DefcheckError, match="no_such_checker"):
        check(make_view(0), paths=[tmp_path / "bad.yaml"], include_builtin=False)
