"""Plugins cannot lie about success (issue 17, item 1): a checker or plugin that calls ``sys.exit``, raises a
``BaseException``, hangs, prints or writes to the model's weights is reported as that plugin's or checker's error,
and every other result is kept and unchanged."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import time
from itertools import count
from pathlib import Path

import pytest

MODEL = "builtin:toy-induction@1000"
NUMBERS = count()

PLUGIN = """
import sys
import time

import torch

from defcheck import Checker, Streamed, hookimpl


def norm(context):
    return context.model.weight("W_O").flatten(-2).norm(dim=-1)


def exits(context):
    sys.exit(0)


def raises_base(context):
    raise BaseException("out of here")


def interrupts(context):
    raise KeyboardInterrupt


def presses_ctrl_c(context):
    import signal

    signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C arrives
    return norm(context)


def hangs(context):
    while True:
        pass


def sleeps_through(context):
    for _ in range(20):
        try:
            time.sleep(10)
        except BaseException:
            pass  # swallows the time limit: it is raised again, and the result is refused anyway
    return norm(context)


def prints(context):
    print('{"not": "the report"}')
    return norm(context)


def writes_cache(context):
    context.model.weight("W_O").mul_(0)
    return norm(context)


def writes_parameters(context):
    for parameter in context.model.model.parameters():
        parameter.mul_(0)
    return norm(context)


def slow_step(context):
    time.sleep(0.2)
    return context.probe.tokens.shape[0]


def slow_finish(context, partials):
    return torch.zeros(context.shape)


def slow_steps(context):
    return slow_finish(context, [slow_step(context)])


NAMES = ["norm", "exits", "raises_base", "interrupts", "presses_ctrl_c", "hangs", "sleeps_through", "prints",
         "writes_cache", "writes_parameters"]


@hookimpl
def defcheck_checkers():
    streamed = Streamed(slow_step, slow_finish)
    slow = Checker("acme_slow_steps", "behavior", slow_steps, probe="required", streamed=streamed)
    return [slow, *(Checker(f"acme_{name}", "mechanism", globals()[name]) for name in NAMES)]
"""

CONCEPT = """\
concept: {name}
unit: attention_head
summary: A test concept.
definitions:
  by_weights:
    kind: mechanistic
    source: test
    all:
      - checker: {checker}
        threshold: ">= 0"
"""

LATER = """\
concept: zz_later
unit: attention_head
summary: A concept scored after the misbehaving one, from the weights and from a forward pass.
definitions:
  by_weights:
    kind: mechanistic
    source: test
    all:
      - checker: acme_norm
        threshold: ">= 1"
  by_attention:
    kind: behavioral
    source: test
    all:
      - checker: attention_pattern
        params: {pattern: previous_token}
        probe: {name: random_tokens, n: 4, length: 12}
        threshold: ">= 0.4"
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A plugin module of this test's own (the CLI runs in this process) and a folder of concepts: one whose
    checker misbehaves (``aa_bad``, evaluated first), and ``zz_later``."""
    name = f"acme_unsafe_{next(NUMBERS)}"
    (tmp_path / f"{name}.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def concepts(folder: Path, checker: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "aa_bad.yaml").write_text(CONCEPT.format(name="aa_bad", checker=checker), encoding="utf-8")
    (folder / "zz_later.yaml").write_text(LATER, encoding="utf-8")
    return folder


def run(cli, plugin: str, folder: Path, *more: str) -> tuple[int, dict, str, str]:
    """``defcheck run`` on the toy model with the folder's concepts only; its code, JSON report, stdout, stderr."""
    out = folder.parent / f"report-{time.monotonic_ns()}.json"
    args = ("-p", plugin, "run", "--no-config", "--no-builtin", "-m", MODEL, "-d", str(folder), "-o", f"json={out}")
    code, stdout, stderr = cli(*args, *more)
    assert out.exists(), stderr
    return code, json.loads(out.read_text(encoding="utf-8")), stdout, stderr


def definition(report: dict, concept: str, name: str) -> dict:
    return report["concepts"][concept]["definitions"][name]


@pytest.mark.parametrize(
    ("checker", "message"),
    [
        ("acme_exits", "checker 'acme_exits' failed: called sys.exit(0) (at "),
        ("acme_raises_base", "checker 'acme_raises_base' failed: raised BaseException: out of here (at "),
        ("acme_interrupts", "checker 'acme_interrupts' failed: raised KeyboardInterrupt itself (not a Ctrl-C)"),
    ],
)
def test_a_checker_that_exits_is_its_definitions_error_and_the_run_exits_2(cli, plugin, tmp_path, checker, message):
    code, report, _, err = run(cli, plugin, concepts(tmp_path / "concepts", checker))
    assert code == 2, err
    bad = definition(report, "aa_bad", "by_weights")
    assert bad["status"] == "errored" and message in bad["error"]
    assert message in err
    assert definition(report, "zz_later", "by_weights")["status"] != "errored"
    assert definition(report, "zz_later", "by_attention")["status"] != "errored"


def test_a_users_ctrl_c_still_stops_the_run(cli, plugin, tmp_path):
    import click

    # Python's own handler, as in a terminal: a process started in the background (a CI step's `&`) inherits
    # SIGINT ignored, and an ignored Ctrl-C rightly stops nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        handler = signal.getsignal(signal.SIGINT)
        with pytest.raises(click.exceptions.Abort):  # the CLI's "Aborted!"
            run(cli, plugin, concepts(tmp_path / "concepts", "acme_presses_ctrl_c"))
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_plugin_module_that_exits_at_import_fails_alone(cli, plugin, tmp_path):
    (tmp_path / "acme_exits_at_import.py").write_text("import sys\n\nsys.exit(0)\n", encoding="utf-8")
    folder = concepts(tmp_path / "concepts", "acme_norm")
    out = tmp_path / "report.json"
    try:
        code, _, err = cli("-p", "acme_exits_at_import", "-p", plugin, "run", "--no-config", "--no-builtin",
                           "-m", MODEL, "-d", str(folder), "-o", f"json={out}")  # fmt: skip
    finally:
        sys.modules.pop("acme_exits_at_import", None)
    assert code == 2, err
    assert "plugin 'acme_exits_at_import': failed to load acme_exits_at_import: called sys.exit(0) (at " in err
    report = json.loads(out.read_text(encoding="utf-8"))  # the other plugin's checkers still ran
    assert definition(report, "zz_later", "by_weights")["status"] != "errored"


def test_load_plugins_records_a_hook_that_exits(tmp_path, monkeypatch):
    from defcheck.hooks.manager import load_plugins

    source = "import sys\nfrom defcheck import hookimpl\n\n\n@hookimpl\ndef defcheck_probes():\n    sys.exit(3)\n"
    (tmp_path / "acme_exiting_hook.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        extensions = load_plugins(modules=["acme_exiting_hook"])
    finally:
        sys.modules.pop("acme_exiting_hook", None)
    [info] = [info for info in extensions.plugins if info.name == "acme_exiting_hook"]
    assert info.error is not None and info.error.startswith("defcheck_probes called sys.exit(3) (at ")


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the time limit needs SIGALRM")
@pytest.mark.parametrize("checker", ["acme_hangs", "acme_sleeps_through"])
def test_a_hung_checker_is_stopped_and_reported(cli, plugin, tmp_path, checker):
    started = time.perf_counter()
    code, report, _, err = run(cli, plugin, concepts(tmp_path / "concepts", checker), "--checker-timeout", "0.5")
    assert time.perf_counter() - started < 30
    assert code == 2, err
    bad = definition(report, "aa_bad", "by_weights")
    assert bad["status"] == "errored" and bad["error"] == f"checker '{checker}' took longer than 0.5 s"
    assert definition(report, "zz_later", "by_weights")["status"] != "errored"
    assert definition(report, "zz_later", "by_attention")["status"] != "errored"
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL)[0] == 0


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="the time limit needs SIGALRM")
def test_a_streamed_checkers_time_limit_counts_all_its_batches(cli, plugin, tmp_path):
    folder = concepts(tmp_path / "concepts", "acme_norm")
    slow = (
        CONCEPT.format(name="aa_slow", checker="acme_slow_steps")
        .replace("kind: mechanistic", "kind: behavioral")
        .replace(
            '        threshold: ">= 0"',
            '        probe: {name: random_tokens, n: 4, length: 8}\n        threshold: ">= 0"',
        )
    )
    (folder / "aa_slow.yaml").write_text(slow, encoding="utf-8")
    # four batches of 0.2 s: each is under the limit, together they are over it
    code, report, _, err = run(cli, plugin, folder, "--batch-size", "1", "--checker-timeout", "0.5")
    assert code == 2, err
    assert definition(report, "aa_slow", "by_weights")["error"] == "checker 'acme_slow_steps' took longer than 0.5 s"
    code, report, _, err = run(cli, plugin, folder, "--batch-size", "1", "--checker-timeout", "5")
    assert code == 0, err


def test_weights_too_large_to_copy_stop_the_rest_of_the_run(cli, plugin, tmp_path, monkeypatch):
    from defcheck.engine import guard

    monkeypatch.setattr(guard, "BACKUP_LIMIT_BYTES", 0)
    code, report, _, err = run(cli, plugin, concepts(tmp_path / "concepts", "acme_writes_parameters"))
    assert code == 2, err
    assert definition(report, "aa_bad", "by_weights")["error"].endswith("; the rest of the run is not evaluated")
    later = definition(report, "zz_later", "by_attention")["error"]
    assert later.startswith("checker 'attention_pattern' failed: not evaluated: checker 'acme_writes_parameters' wrote")


def test_a_printing_checker_leaves_json_on_stdout_valid(cli, plugin, tmp_path):
    folder = concepts(tmp_path / "concepts", "acme_prints")
    code, stdout, err = cli("-p", plugin, "run", "--no-config", "--no-builtin", "-m", MODEL, "-d", str(folder),
                            "-f", "json")  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    assert definition(report, "aa_bad", "by_weights")["status"] != "errored"
    assert '{"not": "the report"}' in err


@pytest.mark.parametrize("checker", ["acme_writes_cache", "acme_writes_parameters"])
def test_a_checker_that_writes_to_the_weights_is_reported_and_later_results_are_unchanged(
    cli, plugin, tmp_path, checker
):
    folder = concepts(tmp_path / "concepts", checker)
    code, report, _, err = run(cli, plugin, folder)
    assert code == 2, err
    bad = definition(report, "aa_bad", "by_weights")
    assert bad["status"] == "errored"
    assert bad["error"].startswith(f"checker '{checker}' failed: wrote to the model's weights (")
    assert bad["error"].endswith("); they were put back")
    code, alone, _, err = run(cli, plugin, folder, "--concept", "zz_later")
    assert code == 0, err
    assert report["concepts"]["zz_later"] == alone["concepts"]["zz_later"]


def test_the_checker_timeout_comes_from_the_flag_the_project_file_or_the_default(tmp_path):
    from defcheck.ci.project_schema import DEFAULT_CHECKER_TIMEOUT
    from defcheck.session import RunConfig
    from defcheck.session.config import DEFAULT_CHECKER_TIMEOUT as RUN_DEFAULT

    assert RUN_DEFAULT == DEFAULT_CHECKER_TIMEOUT == 600
    assert RunConfig.resolve(no_config=True).checker_timeout == 600
    (tmp_path / "defcheck.yaml").write_text("checker_timeout: 5\n", encoding="utf-8")
    assert RunConfig.resolve(config_path=tmp_path / "defcheck.yaml").checker_timeout == 5
    assert RunConfig.resolve(config_path=tmp_path / "defcheck.yaml", checker_timeout=0).checker_timeout == 0


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_checker_timeout_that_is_not_a_number_of_seconds_is_a_usage_error(cli, value):
    code, _, err = cli("run", "--no-config", "--checker-timeout", value)
    assert code == 2 and "Invalid value for '--checker-timeout'" in err


def test_a_project_files_checker_timeout_is_checked(tmp_path):
    from defcheck.ci.project import load_project

    for text in ("checker_timeout: -1\n", "checker_timeout: .inf\n", "checker_timeout: fast\n"):
        (tmp_path / "defcheck.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        _, diagnostics = load_project(tmp_path / "defcheck.yaml")
        errors = [d for d in diagnostics if d.severity == "error"]
        assert [d.field for d in errors] == ["checker_timeout"] and "unknown key" not in errors[0].message, text
