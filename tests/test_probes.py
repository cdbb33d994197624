"""Tests of the built-in probes (plugins/probes.py)."""

from __future__ import annotations

import pytest
import torch
from defcheck_plugins.probes import (
    FileParams,
    RandomParams,
    RepeatedParams,
    build_file,
    build_random,
    build_repeated,
)

from defcheck.diagnostics import DefcheckError
from defcheck.engine.probe_data import ProbeRequest
from defcheck.engine.scores import NotApplicable
from defcheck.models.view import TokenSpace

SPACE = TokenSpace(64, bos_token_id=63, special_ids=(62,))


def _request(params, space=SPACE, seed=0, n_ctx=128):
    return ProbeRequest(params, space, seed, n_ctx)


def test_repeated_tokens_repeat_their_block_after_bos():
    batch = build_repeated(_request(RepeatedParams(n=5, length=7, repeats=3)))
    tokens = batch.tokens
    assert tokens.shape == (5, 1 + 21)
    assert (tokens[:, 0] == 63).all() and batch.bos
    block = tokens[:, 1:8]
    assert torch.equal(tokens[:, 8:15], block) and torch.equal(tokens[:, 15:22], block)
    assert all(len(set(row.tolist())) == 7 for row in block)  # distinct within a block
    assert not torch.isin(tokens[:, 1:], torch.tensor([62, 63])).any()  # no special ids drawn


def test_several_lengths_share_one_batch_padded_with_noise():
    batch = build_repeated(_request(RepeatedParams(n=3, length=[4, 10])))
    assert batch.tokens.shape == (6, 1 + 20)
    assert batch.info["length"].tolist() == [4, 4, 4, 10, 10, 10]
    short = batch.tokens[0]
    assert torch.equal(short[-4:], short[-8:-4])


def test_probes_are_deterministic_and_seeded():
    first = build_repeated(_request(RepeatedParams(n=4, length=5))).tokens
    again = build_repeated(_request(RepeatedParams(n=4, length=5))).tokens
    other = build_repeated(_request(RepeatedParams(n=4, length=5), seed=1)).tokens
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_random_tokens_without_bos_when_the_model_has_none():
    batch = build_random(_request(RandomParams(n=2, length=9), TokenSpace(10)))
    assert batch.tokens.shape == (2, 9) and not batch.bos
    assert batch.tokens.max() < 10


def test_bos_requested_but_unknown_is_a_clear_error():
    with pytest.raises(DefcheckError, match="no BOS token id"):
        build_random(_request(RandomParams(n=2, length=9, bos=True), TokenSpace(10)))


def test_probe_longer_than_context_is_not_applicable():
    with pytest.raises(NotApplicable, match="context is 16"):
        build_repeated(_request(RepeatedParams(n=2, length=10), n_ctx=16))


def test_token_file_with_ids(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text(" ".join(str(i % 50) for i in range(100)))
    batch = build_file(_request(FileParams(path=str(path), length=30)))
    assert batch.tokens.shape == (3, 31)
    assert batch.tokens[0, 1:].tolist() == list(range(30))


def test_token_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DefcheckError, match=r"nope\.txt"):
        build_file(_request(FileParams(path=str(missing), length=4)))
    text = tmp_path / "words.txt"
    text.write_text("some words here")
    with pytest.raises(DefcheckError, match="no tokenizer"):
        build_file(_request(FileParams(path=str(text), length=2)))
    out_of_range = tmp_path / "big.txt"
    out_of_range.write_text("1 2 99 3")
    with pytest.raises(DefcheckError, match="id 99 outside"):
        build_file(_request(FileParams(path=str(out_of_range), length=2)))
