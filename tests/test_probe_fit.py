"""The probe fit policy (issue 14, item 4): a probe longer than the model's context (``n_ctx``) is shortened to fit
or its criteria are not applicable, per the probe's declared ``fit`` (or a criterion's ``fit:`` param), with the
reason in the report; never a crash, never silent truncation."""

from __future__ import annotations

import pytest
import torch
from conftest import make_view
from defcheck_plugins.probes import (
    FileParams,
    RandomParams,
    RepeatedParams,
    build_file,
    build_random,
    build_repeated,
    defcheck_probes,
)
from rich.console import Console

import defcheck
from defcheck.diagnostics import DefcheckError
from defcheck.engine.probe_data import ProbeBatch, ProbeRequest, probe_key
from defcheck.engine.scores import NotApplicable
from defcheck.hooks.declarations import Probe
from defcheck.models.view import TokenSpace
from defcheck.plugin import hookimpl
from defcheck.report.common import definition_criteria_text
from defcheck.report.markdown import render_markdown

SPACE = TokenSpace(10, bos_token_id=3)  # Tracr-like: BOS at a nonzero id


def _request(params, n_ctx=17, fit="shorten", space=SPACE):
    return ProbeRequest(params, space, 0, n_ctx, fit=fit)


# -- the built-in probes ----------------------------------------------------------------------------------------


def test_builtin_token_probes_declare_shorten():
    assert {probe.name: probe.fit for probe in defcheck_probes()} == {
        "repeated_random_tokens": "shorten",
        "random_tokens": "shorten",
        "token_file": "shorten",
    }
    assert Probe("x", build_random).fit == "not_applicable"  # a plugin's probe that says nothing is not cut


def test_repeated_lengths_that_do_not_fit_become_the_longest_that_does():
    batch = build_repeated(_request(RepeatedParams(n=4, length=[8, 13, 21])))
    # 2 x 8 + BOS = 17 = n_ctx: every length became 8, so the three lengths are one (4 sequences, not 12)
    assert batch.tokens.shape == (4, 17)
    assert batch.info["length"].tolist() == [8] * 4
    assert (batch.tokens[:, 0] == 3).all()
    assert torch.equal(batch.tokens[:, 1:9], batch.tokens[:, 9:17])  # still a repeated block
    assert batch.note == (
        "shortened: repeated_random_tokens length 21 needs 43 tokens (2 repeats and BOS); the model's context is "
        "17, so length 8 was used instead of 13 and 21 (4 sequences instead of 12)"
    )


def test_repeated_lengths_that_fit_are_kept():
    batch = build_repeated(_request(RepeatedParams(n=3, length=[4, 13], repeats=3, bos=False), n_ctx=20))
    # 3 x 6 = 18 <= 20 < 3 x 7: 13 becomes 6, 4 stays; the padding keeps one sequence length
    assert sorted(set(batch.info["length"].tolist())) == [4, 6]
    assert batch.tokens.shape == (6, 18)
    assert "length 13 needs 39 tokens (3 repeats); the model's context is 20, so length 6 was used" in batch.note
    assert "sequences instead" not in batch.note  # two lengths asked, two built


def test_a_probe_that_fits_has_no_note_and_draws_the_same_tokens_whatever_its_policy():
    params = RepeatedParams(n=4, length=[4, 8])
    shortening = build_repeated(_request(params, fit="shorten"))
    refusing = build_repeated(_request(params, fit="not_applicable"))
    overridden = build_repeated(_request(RepeatedParams(n=4, length=[4, 8], fit="not_applicable")))
    assert shortening.note is None and refusing.note is None
    assert torch.equal(shortening.tokens, refusing.tokens) and torch.equal(shortening.tokens, overridden.tokens)


def test_not_applicable_policy_gives_the_reason():
    with pytest.raises(NotApplicable, match=r"length 21 needs 43 tokens .*; the model's context is 17") as caught:
        build_repeated(_request(RepeatedParams(n=2, length=[8, 21]), fit="not_applicable"))
    assert "fit: shorten would use length 8" in str(caught.value)


def test_a_criterion_param_overrides_the_declared_policy():
    with pytest.raises(NotApplicable, match="context is 17"):
        build_repeated(_request(RepeatedParams(n=2, length=21, fit="not_applicable"), fit="shorten"))
    batch = build_random(_request(RandomParams(n=2, length=40, fit="shorten"), fit="not_applicable"))
    assert batch.tokens.shape == (2, 17)


def test_a_context_too_short_for_any_length_is_not_applicable_even_when_shortening():
    with pytest.raises(NotApplicable, match="context is 2, too short for even length 1"):
        build_repeated(_request(RepeatedParams(n=2, length=5), n_ctx=2))
    with pytest.raises(NotApplicable, match="too short for even length 2"):
        build_random(_request(RandomParams(n=2, length=5), n_ctx=2))


def test_random_tokens_are_cut_to_the_context():
    batch = build_random(_request(RandomParams(n=5, length=32)))
    assert batch.tokens.shape == (5, 17) and batch.bos
    assert batch.note == (
        "shortened: random_tokens length 32 needs 33 tokens (with BOS); the model's context is 17, so length 16 "
        "was used"
    )
    ids = batch.tokens[:, 1:]
    assert not (ids == 3).any() and int(ids.max()) < 10


def test_token_file_chunks_are_cut_to_the_context(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text(" ".join(str(i % 9) for i in range(100)))
    batch = build_file(_request(FileParams(path=str(path), length=64, bos=False)))
    assert batch.tokens.shape == (100 // 17, 17)
    assert batch.tokens[0].tolist() == [i % 9 for i in range(17)]
    assert "token_file length 64 needs 64 tokens; the model's context is 17, so length 17 was used" in batch.note
    with pytest.raises(NotApplicable, match="length 64 needs 64 tokens"):
        build_file(_request(FileParams(path=str(path), length=64, bos=False, fit="not_applicable")))


def test_ordinal_sequences_declare_not_applicable():
    from defcheck_plugins.successor import OrdinalParams, build_ordinal

    with pytest.raises(NotApplicable, match="ordinal_sequences: length 6 needs 6 tokens; the model's context is 4"):
        build_ordinal(ProbeRequest(OrdinalParams(length=6), SPACE, 0, 4))


def test_an_unset_fit_leaves_the_probe_key_as_it_was():
    params = RepeatedParams(n=32, length=[8, 13, 21]).model_dump(mode="json")
    assert "fit" not in params
    assert probe_key("repeated_random_tokens", params) == (
        "repeated_random_tokens(bos=None, length=[8, 13, 21], n=32, repeats=2)"
    )
    assert RandomParams(fit="not_applicable").model_dump(mode="json")["fit"] == "not_applicable"


def test_an_unknown_policy_is_one_sentence():
    with pytest.raises(DefcheckError, match="fit must be one of shorten, not_applicable"):
        _request(RandomParams(), fit="truncate").fit_policy()  # type: ignore[arg-type]


def test_select_keeps_the_note():
    batch = ProbeBatch("p", {}, torch.zeros(4, 3, dtype=torch.long), note="shortened: x")
    assert batch.select(slice(0, 2)).note == "shortened: x"


# -- through a run: the report says what happened --------------------------------------------------------------


def too_long(request: ProbeRequest) -> ProbeBatch:
    """A plugin's probe that ignores the model's context (its declared policy is the default)."""
    return ProbeBatch("too_long", {}, torch.ones(2, request.n_ctx + 5, dtype=torch.long), bos=False)


class LongProbePlugin:
    __name__ = "long_probe_plugin"

    @hookimpl
    def defcheck_probes(self):
        return [Probe("too_long", too_long)]


CONCEPT = """\
concept: fit_head
unit: attention_head
summary: Heads for the fit-policy tests.
definitions:
  shortened:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 8, length: 32}
        threshold: ">= 0.4"
  refused:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 8, length: 32, fit: not_applicable}
        threshold: ">= 0.4"
  fits:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 8, length: 8}
        threshold: ">= 0.4"
  ignores_the_context:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: too_long}
        threshold: ">= 0.4"
"""


@pytest.fixture(scope="module")
def fit_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    (folder / "fit_head.yaml").write_text(CONCEPT, encoding="utf-8")
    view = make_view(0, n_ctx=17, d_vocab=10)
    view.tokens = SPACE
    return defcheck.check(view, paths=[folder], include_builtin=False, plugins=[LongProbePlugin()])


def test_the_report_carries_the_note_to_each_criterion_on_the_shortened_probe(fit_report):
    definitions = fit_report.data["concepts"]["fit_head"]["definitions"]
    shortened = definitions["shortened"]
    assert shortened["status"] == "ok" and shortened["error"] is None
    criterion = shortened["criteria"][0]
    assert criterion["probe_note"].startswith("shortened: random_tokens length 32 needs 33 tokens")
    assert all(value is not None for value in criterion["scores"].values())
    probe = fit_report.data["probes"][criterion["probe"]]
    assert probe["positions"] == 17 and probe["note"] == criterion["probe_note"]
    fits = definitions["fits"]
    assert fits["status"] == "ok" and "probe_note" not in fits["criteria"][0]
    assert "note" not in fit_report.data["probes"][fits["criteria"][0]["probe"]]


def test_not_applicable_criteria_and_a_probe_that_ignores_the_context(fit_report):
    definitions = fit_report.data["concepts"]["fit_head"]["definitions"]
    refused = definitions["refused"]
    assert refused["status"] == "not_applicable" and refused["error"] is None
    assert "length 32 needs 33 tokens (with BOS); the model's context is 17" in refused["not_applicable"]
    ignoring = definitions["ignores_the_context"]
    assert ignoring["status"] == "not_applicable" and ignoring["error"] is None
    assert "built sequences of 22 tokens; the model's context is 17" in ignoring["not_applicable"]


def test_terminal_markdown_and_html_show_the_note(fit_report):
    definition = fit_report.data["concepts"]["fit_head"]["definitions"]["shortened"]
    text = definition_criteria_text(definition)
    assert text.endswith("[probe shortened: random_tokens length 32 needs 33 tokens (with BOS); the model's "
                         "context is 17, so length 16 was used]")  # fmt: skip
    shown = "[probe shortened: random_tokens length 32"
    assert shown in render_markdown(fit_report.data) and shown in fit_report.to_html()
    console = Console(record=True, width=400)
    fit_report.to_terminal(console)
    assert shown in console.export_text()
