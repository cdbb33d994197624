"""The session layer (defcheck/session): RunConfig resolved once, one Session behind run, sweep, check and the
benchmark; the Python API's traps; the sweep's modules and its series from the model loaders."""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import FIXTURES, make_view

import defcheck
from defcheck.diagnostics import DefcheckError, DefinitionsError
from defcheck.hooks.declarations import ModelLoader
from defcheck.models.view import ModelView
from defcheck.session import RunConfig, Session
from defcheck.sweep import Checkpoint, SweepOptions, Task, find_checkpoints, run_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WIDE_HEAD = FIXTURES / "concepts" / "wide_head.yaml"
PREVIOUS = """\
concept: previous_token_head
summary: Heads that attend from each token to the one before it.
definitions:
  attends_previous:
    kind: behavioral
    source: tests
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 4, length: 12}
        threshold: {top_k: 3}
  positional_qk:
    kind: mechanistic
    source: tests
    all:
      - checker: qk_positional
        params: {offset: 1, max_position: 12}
        threshold: {top_k: 3}
"""


# -- RunConfig -------------------------------------------------------------------------------------------------


def _project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "concepts").mkdir(exist_ok=True)
    (tmp_path / "concepts" / "previous.yaml").write_text(PREVIOUS, encoding="utf-8")
    (tmp_path / "defcheck.yaml").write_text(text, encoding="utf-8")
    return tmp_path / "defcheck.yaml"


def test_flags_win_over_the_project_file_which_wins_over_the_defaults(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    project = _project(tmp_path / "project", "definitions: [concepts]\nbuiltin: false\nseed: 5\ntolerance: 0.5\n")
    monkeypatch.chdir(tmp_path / "project")
    found = RunConfig.resolve()
    assert (found.seed, found.tolerance, found.include_builtin) == (5, 0.5, False)
    assert found.definition_paths == (str((tmp_path / "project" / "concepts").resolve()),)
    assert found.project_path == str(project.resolve())
    flagged = RunConfig.resolve(seed=7, tolerance=0.25, selection=["previous_token_head"], token_ids=(1, 9))
    assert (flagged.seed, flagged.tolerance, flagged.selection, flagged.token_ids) == (
        7,
        0.25,
        ("previous_token_head",),
        "1:9",
    )
    bare = RunConfig.resolve(no_config=True)
    assert bare == RunConfig() and bare.seed == 0 and bare.project_path is None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert RunConfig.resolve(config_path=project).seed == 5  # --config from anywhere
    assert RunConfig.resolve().seed == 0


def test_a_config_is_picklable_and_hashable_for_the_workers():
    config = RunConfig(definition_paths=("/a",), selection=("x",), plugin_modules=("m",), disabled_plugins=("n",))
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(config) == hash(pickle.loads(pickle.dumps(config)))
    options = SweepOptions(config, threads=2, cwd="/tmp")
    assert pickle.loads(pickle.dumps(options)) == options


def test_a_project_file_with_errors_is_one_error_carrying_them(tmp_path, monkeypatch):
    _project(tmp_path, "definitions: [concepts]\nseed: -1\nunknown_key: 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DefinitionsError) as caught:
        RunConfig.resolve()
    assert len(caught.value.diagnostics) == 2 and isinstance(caught.value, DefcheckError)
    assert str(caught.value).startswith("the project file defcheck.yaml has 2 error(s); nothing was run\n  defcheck.")


# -- Session ---------------------------------------------------------------------------------------------------


def test_broken_definitions_raise_one_error_with_every_diagnostic(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "concept: bad\nsummary: x\ndefinitions:\n  d:\n    kind: behavioral\n"
        "    all:\n      - checker: no_such_checker\n        threshold: '> 0'\n"
    )
    session = Session(RunConfig(definition_paths=(str(tmp_path / "bad.yaml"),), include_builtin=False))
    with pytest.raises(DefinitionsError) as caught:
        session.selection()
    assert caught.value.diagnostics and "no_such_checker" in str(caught.value)
    assert str(caught.value).startswith("the definitions have 1 error(s); nothing was run")


def test_selection_is_checked_once_with_a_did_you_mean(tmp_path):
    session = Session(RunConfig(selection=("inducton_head",)))
    with pytest.raises(
        DefcheckError, match=r"^unknown concept or definition: inducton_head; did you mean 'induction_head'"
    ):
        session.selection()
    assert Session(RunConfig()).selection() is None
    chosen = Session(RunConfig(selection=("induction_head",)))
    ids = chosen.selected_ids()
    assert "induction_head.prefix_matching_and_copying" in ids
    assert set(chosen.selected_concepts()) >= {"induction_head"}  # and what with: refers to
    (tmp_path / "empty").mkdir()
    nothing = Session(RunConfig(definition_paths=(str(tmp_path / "empty"),), include_builtin=False))
    with pytest.raises(DefcheckError, match=r"^nothing to check: no definitions were loaded"):
        nothing.selection()


def test_plugin_modules_reach_a_fresh_worker(monkeypatch):
    """A sweep worker builds its session from the config alone: --plugin modules (and the rest) come along."""
    import defcheck.sweep.tasks as tasks

    monkeypatch.setattr(tasks, "_SESSIONS", {})  # a new process: nothing primed by a driver
    checkpoint = Checkpoint(1000, "builtin:toy-induction@1000")
    config = RunConfig(definition_paths=(str(WIDE_HEAD),), include_builtin=False, plugin_modules=("fixture_plugin",))
    result = run_checkpoint(Task(checkpoint, SweepOptions(config), "key"))
    assert result.error is None, result.error
    report = json.loads(result.report)
    assert list(report["concepts"]) == ["wide_head"] and report["sweep"]["key"] == "key"
    without = RunConfig(definition_paths=(str(WIDE_HEAD),), include_builtin=False)
    failed = run_checkpoint(Task(checkpoint, SweepOptions(without), "key"))
    assert failed.report is None and failed.error.startswith("the definitions have")


# -- the sweep's modules and series ------------------------------------------------------------------------------


def test_a_loaders_checkpoints_make_the_series():
    """The core reads no plugin's files: a loader's ``checkpoints`` lists steps (loaded by index) or mappings."""
    listed = [{"step": 10, "reference": "acme:m@10", "metrics": {"loss": 2}}, {"step": 20, "reference": "acme:m@20"}]
    loaders = {
        "acme": ModelLoader("acme", lambda r, o: None, checkpoints=lambda reference: (listed, "step")),
        "pre": ModelLoader("pre", lambda r, o: None, checkpoints=lambda reference: ([0, 512, 1024], "token")),
    }
    extensions = SimpleNamespace(model_loaders=loaders)
    series = find_checkpoints("acme:m@*", extensions=extensions)
    assert [(c.step, c.reference, c.checkpoint_index, dict(c.metrics)) for c in series.checkpoints] == [
        (10, "acme:m@10", None, {"loss": 2.0}),
        (20, "acme:m@20", None, {}),
    ]
    tokens = find_checkpoints("pre:x", checkpoint_index="0,-1", extensions=extensions)
    assert tokens.step_unit == "token" and [(c.step, c.checkpoint_index) for c in tokens.checkpoints] == [
        (0, 0),
        (1024, 2),
    ]
    with pytest.raises(DefcheckError, match="'acme:m' is one model"):
        find_checkpoints("acme:m", extensions=extensions)


def test_the_sweep_core_reads_no_plugin_package_and_its_modules_are_small():
    for path in sorted((ROOT / "defcheck" / "sweep").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "defcheck_plugins" not in text, path.name
        assert len(text.splitlines()) < 450, path.name
    assert not (ROOT / "defcheck" / "sweep" / "core.py").exists()
    from defcheck.sweep import atomic_write, build_summary, run_sweep, summary_json

    # the sweep's writer is the one every command uses (defcheck.files), re-exported by the store
    assert atomic_write.__module__ == "defcheck.files" and run_sweep.__module__ == "defcheck.sweep.driver"
    assert build_summary.__module__ == summary_json.__module__ == "defcheck.sweep.summary"
    assert "from defcheck.sweep.store import atomic_write" in (ROOT / "defcheck/sweep/plots.py").read_text()


def test_every_entry_point_goes_through_the_session():
    sources = {
        "api": ROOT / "defcheck" / "api.py",
        "run": ROOT / "defcheck" / "cli" / "run_steps.py",
        "sweep worker": ROOT / "defcheck" / "sweep" / "tasks.py",
        "benchmark": ROOT / "benchmarks" / "bench_run.py",
    }
    for name, path in sources.items():
        text = path.read_text(encoding="utf-8")
        assert "Session(" in text or "session.run(" in text, name
        assert "load_registry(" not in text and "error(s)" not in text, name
    from defcheck.cli.commands import run, sweep

    for command in (run.run, sweep.sweep):  # thin: parse, build the config, call the session, render
        lines = inspect.getsourcelines(command.callback)[0]
        start = next(i for i, line in enumerate(lines) if line.startswith("def "))
        assert len(lines) - start < 80, command.name


# -- the Python API's traps ------------------------------------------------------------------------------------


def test_check_without_token_metadata_is_one_error_before_any_probe(tmp_path, monkeypatch):
    import defcheck.engine.runner as runner

    (tmp_path / "previous.yaml").write_text(PREVIOUS, encoding="utf-8")
    bare = ModelView(make_view(0).model, None, "bare")

    def never(*args, **kwargs):
        raise AssertionError("evaluated")

    monkeypatch.setattr(runner, "evaluate", never)
    with pytest.raises(DefcheckError) as caught:
        defcheck.check(bare, paths=[tmp_path / "previous.yaml"], include_builtin=False)
    message = str(caught.value)
    assert "bos_token_id=" in message and "token_ids=" in message and "--bos-token-id" not in message
    assert message.startswith("the model 'bare' has no token metadata")
    monkeypatch.undo()
    # a weights-only selection needs no token metadata
    paths = [tmp_path / "previous.yaml"]
    report = defcheck.check(bare, definitions=["previous_token_head.positional_qk"], paths=paths, include_builtin=False)
    assert list(report.concepts["previous_token_head"].definitions) == ["positional_qk"]


def test_load_model_and_check_are_the_public_api():
    from defcheck import api

    assert defcheck.check is api.check and defcheck.load_model is api.load_model
    assert {"check", "load_model"} <= set(defcheck.__all__)
    view = defcheck.load_model("builtin:toy-induction")
    assert isinstance(view, ModelView) and view.tokens is not None and view.name == "builtin:toy-induction"
    with pytest.raises(DefcheckError, match="unknown built-in model 'toy-inductoin'; did you mean"):
        defcheck.load_model("builtin:toy-inductoin")


def test_the_api_docs_import_from_where_they_say():
    doc = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    assert "from defcheck import check" in doc and "from defcheck import load_model" in doc
    assert "cannot be used with `transformer_lens >= 4`" in doc
    assert "defcheck.api.check" not in doc


def test_disabled_and_strict_plugins_come_from_the_config(tmp_path, monkeypatch):
    left_out = Session(RunConfig(disabled_plugins=("gridworld",)))
    assert "gridworld" in left_out.extensions.disabled and "gridworld" not in left_out.extensions.model_loaders
    assert "gridworld" in Session(RunConfig()).extensions.model_loaders
    (tmp_path / "acme_broken_hook.py").write_text(
        "from defcheck import hookimpl\n\n\n@hookimpl\ndef defcheck_checkers():\n    raise OSError('no registry')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lenient = Session(RunConfig(plugin_modules=("acme_broken_hook",)))
    assert any("acme_broken_hook" in str(problem) for problem in lenient.extensions.problems)
    strict = Session(RunConfig(plugin_modules=("acme_broken_hook",), strict_plugins=True))
    with pytest.raises(DefcheckError, match="acme_broken_hook"):
        strict.selection()


def test_sweep_options_take_the_old_keywords_for_one_release():
    with pytest.warns(DeprecationWarning, match=r"SweepOptions\(seed=, selection=\) is deprecated"):
        old = SweepOptions(seed=1, selection=["induction_head"])
    assert old.config == RunConfig(seed=1, selection=("induction_head",)) and old.threads == 1


def test_a_project_file_without_models_checks_the_default_model(tmp_path, monkeypatch):
    """docs/ci.md: `models:` defaults to builtin:toy-induction; a project file without it must not check nothing."""
    from defcheck.session.session import DEFAULT_MODEL

    _project(tmp_path, "seed: 3\n")
    monkeypatch.chdir(tmp_path)
    session = Session(RunConfig.resolve())
    assert session.project is not None
    assert [target.reference for target in session.models()] == [DEFAULT_MODEL]
    assert [target.reference for target in session.models("builtin:toy-mlp")] == ["builtin:toy-mlp"]
