"""Tests of the text probes (plugins/text.py) and the checkers of behavior on text (plugins/text_checkers.py)."""

from __future__ import annotations

import gzip

import pytest
import torch
from conftest import make_view
from defcheck_plugins.text import (
    RepeatedTextParams,
    TextParams,
    build_repeated_text,
    build_text,
    corpus_files,
    corpus_text,
)
from defcheck_plugins.text_checkers import (
    AblationParams,
    ICLParams,
    score_ablation_loss,
    score_in_context_learning,
    token_losses,
    z_hooks,
)

from defcheck.diagnostics import DefcheckError
from defcheck.engine.context import CheckContext
from defcheck.engine.probe_data import ProbeRequest
from defcheck.engine.scores import NotApplicable
from defcheck.engine.units import Units
from defcheck.models import TokenSpace


def _byte_view(seed: int = 0, **overrides):
    """A random byte-level model: ids 0..255 are bytes, 256 is BOS."""
    view = make_view(seed, d_vocab=257, d_vocab_out=257, n_ctx=64, **overrides)
    view.tokens = TokenSpace(257, bos_token_id=256, token_ids=(0, 256))
    view.info["tokenizer"] = "bytes"
    return view


def _request(view, params, seed=0):
    """What the runner hands the probe: the text probes declare fit: shorten."""
    return ProbeRequest(params, view.tokens, seed=seed, n_ctx=view.n_ctx, model=view, fit="shorten")


@pytest.fixture(scope="module")
def byte_view():
    return _byte_view()


def test_builtin_corpus_is_the_shipped_text():
    (path,) = corpus_files("builtin")
    text = corpus_text("builtin")
    assert text.startswith("In the beginning God created the heaven and the earth.\n")
    assert len(text.encode()) == len(gzip.decompress(path.read_bytes()))


def test_text_probe_is_seeded_and_cut_from_the_corpus(byte_view):
    params = TextParams(n=6, length=20)
    first = build_text(_request(byte_view, params))
    again = build_text(_request(byte_view, params))
    other = build_text(_request(byte_view, params, seed=1))
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.equal(first.tokens, other.tokens)
    assert first.tokens.shape == (6, 21) and bool((first.tokens[:, 0] == 256).all())
    raw = corpus_text("builtin").encode()
    for row, offset in zip(first.tokens, first.info["offset"], strict=True):
        assert bytes(row[1:].tolist()) == raw[int(offset) : int(offset) + 20]


def test_repeated_text_repeats_a_real_segment_after_the_text_before_it(byte_view):
    probe = build_repeated_text(_request(byte_view, RepeatedTextParams(n=4, length=[5, 9])))
    assert probe.tokens.shape == (8, 1 + 18)
    raw = corpus_text("builtin").encode()
    for row, length in zip(probe.tokens, probe.info["length"].tolist(), strict=True):
        body = bytes(row[1:].tolist())
        lead = 18 - 2 * length
        assert body[lead : lead + length] == body[lead + length :]
        assert body[: lead + length] in raw  # the segment follows the text that precedes it in the corpus


def test_text_probes_refuse_what_they_cannot_do(tmp_path, byte_view):
    with pytest.raises(DefcheckError, match="does not exist"):
        build_text(_request(byte_view, TextParams(corpus=str(tmp_path / "nope.txt"), length=16)))
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DefcheckError, match="is empty"):
        build_text(_request(byte_view, TextParams(corpus=str(tmp_path / "empty.txt"), length=16)))
    (tmp_path / "short.txt").write_text("too short", encoding="utf-8")
    with pytest.raises(DefcheckError, match="too few"):
        build_text(_request(byte_view, TextParams(corpus=str(tmp_path / "short.txt"), length=32)))
    (tmp_path / "folder").mkdir()
    with pytest.raises(DefcheckError, match=r"no \.txt files"):
        build_text(_request(byte_view, TextParams(corpus=str(tmp_path / "folder"), length=16)))
    view = make_view(0)  # ids 0..63, no tokenizer, not byte-level: its text criteria are not applicable
    with pytest.raises(NotApplicable, match="no tokenizer"):
        build_text(_request(view, TextParams(length=8)))


def test_text_probe_reads_a_folder_and_a_glob(tmp_path, byte_view):
    (tmp_path / "a.txt").write_text("alpha " * 20, encoding="utf-8")
    (tmp_path / "b.txt").write_text("beta " * 20, encoding="utf-8")
    assert corpus_text(str(tmp_path)) == corpus_text(str(tmp_path / "*.txt")) == "alpha " * 20 + "\n" + "beta " * 20
    folder = build_text(_request(byte_view, TextParams(n=3, length=10, corpus=str(tmp_path))))
    assert set(bytes(folder.tokens[:, 1:].flatten().tolist()).decode()) <= set("alphbet \n")


def _context(view, probe, params, activations=(), units=None):
    logits, acts = view.run(probe.tokens, activations)
    return CheckContext(view, params, probe=probe, logits=logits, activations=acts, units=units)


def test_in_context_learning_score_equals_a_per_position_computation(byte_view):
    probe = build_text(_request(byte_view, TextParams(n=5, length=40)))
    params = ICLParams(early=6, late=-2, window=3)
    context = _context(byte_view, probe, params, units=Units("model", (1,), ("random-0",)))
    value = float(score_in_context_learning(context).values.flatten()[0])
    logits = byte_view.run(probe.tokens)[0]
    size = probe.tokens.shape[1]
    per_position = {}
    for position in range(1, size):  # brute force: the loss of each predicted token, one at a time
        logprobs = logits[:, position - 1].log_softmax(-1)
        per_position[position] = float(-logprobs[torch.arange(5), probe.tokens[:, position]].mean())
    late = size - 2
    late_loss = sum(per_position[p] for p in (late - 2, late - 1, late)) / 3
    expected = late_loss - sum(per_position[p] for p in (4, 5, 6)) / 3
    assert value == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("measure", ["loss", "second_copy", "specific", "icl"])
def test_ablation_loss_equals_single_head_ablations(byte_view, measure):
    probe = build_repeated_text(_request(byte_view, RepeatedTextParams(n=4, length=[6, 10])))
    params = AblationParams(measure=measure, early=4, late=-1, window=3)
    context = _context(byte_view, probe, params, z_hooks(params, byte_view))
    scores = score_ablation_loss(context).values
    tokens = probe.tokens
    clean = token_losses(byte_view.run(tokens)[0], tokens)
    size = tokens.shape[1]
    lengths = probe.info["length"][:, None]
    index = torch.arange(size)[None, :]
    starts = size - 2 * lengths
    first = (index > starts) & (index < starts + lengths)
    later = index > starts + lengths

    def quantity(losses):
        if measure == "loss":
            return losses[:, 1:].mean()
        if measure == "icl":
            return losses[:, size - 3 :].mean() - losses[:, 2:5].mean()
        second = losses[later].mean()
        return second if measure == "second_copy" else second - losses[first].mean()

    for layer in range(byte_view.n_layers):
        mean = context.activation(f"blocks.{layer}.attn.hook_z").mean((0, 1))
        for head in range(byte_view.n_heads):  # brute force: one forward pass per ablated head

            def ablate(z, hook, head=head, mean=mean):
                z = z.clone()
                z[:, :, head] = mean[head]
                return z

            logits = byte_view.run_with_hooks(tokens, [(f"blocks.{layer}.attn.hook_z", ablate)])
            expected = quantity(token_losses(logits, tokens)) - quantity(clean)
            assert float(scores[layer, head]) == pytest.approx(float(expected), abs=1e-5)


def test_ablation_loss_is_not_applicable_without_a_trained_output_head(byte_view):
    view = _byte_view()
    view.info["untrained"] = ["unembed", "ln_final"]
    probe = build_text(_request(view, TextParams(n=2, length=20)))
    context = _context(view, probe, AblationParams(measure="loss"), z_hooks(None, view))
    from defcheck.plugin import NotApplicable

    with pytest.raises(NotApplicable, match="does not contain"):
        score_ablation_loss(context)


def test_text_probes_longer_than_the_context_shorten_or_are_not_applicable(byte_view):
    from defcheck.engine.scores import NotApplicable

    shortened = build_repeated_text(_request(byte_view, RepeatedTextParams(n=2, length=[8, 40])))
    assert shortened.tokens.shape == (4, 63) and shortened.info["length"].tolist() == [8, 8, 31, 31]
    assert "length 40 needs 81 tokens" in shortened.note and "context is 64" in shortened.note
    text = build_text(_request(byte_view, TextParams(n=2, length=100)))
    assert text.tokens.shape == (2, 64) and "length 63 was used" in text.note
    assert build_text(_request(byte_view, TextParams(n=2, length=10))).note is None
    with pytest.raises(NotApplicable, match="context is 64"):
        build_text(_request(byte_view, TextParams(n=2, length=100, fit="not_applicable")))


def test_the_kind_lint_counts_an_ablation_as_mechanism(tmp_path):
    """docs/writing-definitions.md: an intervention observes mechanism, even where it then reads the loss."""
    from defcheck.hooks.manager import load_plugins
    from defcheck.language.registry import load_registry

    text = """\
concept: text_heads
unit: attention_head
summary: Heads whose ablation hurts copying on text.
definitions:
  hurts:
    kind: {kind}
    source: tests
    all:
      - checker: ablation_loss
        probe: {{name: repeated_text, n: 4, length: 8}}
        threshold: ">= 0.1"
"""
    path = tmp_path / "text_heads.yaml"
    extensions = load_plugins()
    path.write_text(text.format(kind="behavioral"), encoding="utf-8")
    registry = load_registry([path], extensions, include_builtin=False)
    assert [(d.severity, d.code) for d in registry.diagnostics if d.code.startswith("kind")] == [
        ("warning", "kind-mixed")
    ]
    path.write_text(text.format(kind="mechanistic"), encoding="utf-8")
    registry = load_registry([path], extensions, include_builtin=False)
    assert not [d for d in registry.diagnostics if d.code.startswith("kind")]
