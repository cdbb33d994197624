"""Only regular files are read: a FIFO named like a concept file, project file, report, baseline, checkpoint or
probe file is refused at once (the CLI runs in a subprocess with a timeout, so a regression fails rather than
hangs), and so is /dev/zero; a probe's files are relative to its concept file and stay in the project unless
--allow-outside-files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from defcheck.ci.baseline import load_baseline
from defcheck.diagnostics import DefcheckError
from defcheck.sweep.store import read_report

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
TIMEOUT = 60  # seconds; each command finishes in a few (a FIFO that blocks would never)


def defcheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``defcheck ARGS`` in a fresh process, killed (and the test failed) after :data:`TIMEOUT` seconds."""
    command = [sys.executable, "-c", 'from defcheck.cli import main; main(prog_name="defcheck")', *args]
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "x.yaml"
    os.mkfifo(path)
    return path


def test_validate_refuses_a_fifo_concept_file_at_once(tmp_path, fifo):
    result = defcheck("validate", "--no-config", "x.yaml", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "x.yaml: the file is a FIFO, not a regular file" in result.stdout


def test_run_refuses_a_fifo_concept_file_at_once(tmp_path, fifo):
    result = defcheck("run", "--no-config", "--no-builtin", "-d", "x.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "x.yaml: the file is a FIFO, not a regular file" in result.stderr


def test_validate_refuses_dev_zero(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    result = defcheck("validate", "--no-config", "/dev/zero", cwd=tmp_path)
    assert result.returncode == 1
    assert "/dev/zero: the file is a character device, not a regular file" in result.stdout


def test_a_fifo_project_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "defcheck.yaml")
    result = defcheck("run", "--config", "defcheck.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "defcheck.yaml: the file is a FIFO, not a regular file" in result.stderr


def test_report_refuses_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "report.json")
    result = defcheck("report", "report.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: the report report.json is a FIFO, not a regular file"


def test_a_fifo_checkpoint_is_refused(tmp_path):
    os.mkfifo(tmp_path / "model.pt")
    concept = str(_concept(tmp_path / "concepts"))
    result = defcheck("run", "--no-config", "--no-builtin", "-d", concept, "-m", "model.pt", cwd=tmp_path)
    assert result.returncode == 2
    assert "the model checkpoint model.pt is a FIFO, not a regular file" in result.stderr


def test_a_fifo_baseline_and_sweep_report_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "baseline.json")
    with pytest.raises(DefcheckError, match=r"baseline\.json: it is a FIFO, not a regular file"):
        load_baseline(Path("baseline.json"))
    report, damage = read_report(Path("baseline.json"), "sha256:x")  # a sweep runs that checkpoint again
    assert report is None and damage is not None and "is a FIFO" in damage


def test_a_fifo_checkpoint_metadata_is_refused(tmp_path):
    from defcheck.sweep.series import find_checkpoints

    (tmp_path / "step-1.pt").write_bytes(b"")
    os.mkfifo(tmp_path / "checkpoints.json")
    with pytest.raises(DefcheckError, match=r"checkpoints\.json is a FIFO, not a regular file"):
        find_checkpoints(str(tmp_path))


# -- files a probe reads ---------------------------------------------------------------------------------------

CONCEPT = """\
concept: file_heads
unit: attention_head
summary: Heads scored on a file's tokens.
definitions:
  from_file:
    kind: behavioral
    source: a test
    summary: Attends to the previous token on the file's tokens.
    all:
      - checker: attention_pattern
        params: {{pattern: previous_token}}
        probe: {{name: token_file, path: {path}, length: 8}}
        threshold: ">= 0.4"
"""


def _concept(folder: Path, path: str = "ids.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    concept = folder / "heads.yaml"
    concept.write_text(CONCEPT.format(path=path), encoding="utf-8")
    return concept


def _ids(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(str(1 + i % 60) for i in range(400)), encoding="utf-8")


def _status(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    report = json.loads(result.stdout)
    return report["concepts"]["file_heads"]["definitions"]["from_file"]


def test_token_file_is_relative_to_the_concept_file(tmp_path):
    _concept(tmp_path / "project" / "concepts")
    _ids(tmp_path / "project" / "concepts" / "ids.txt")
    (tmp_path / "project" / "defcheck.yaml").write_text(
        "models: [builtin:toy-induction]\ndefinitions: [concepts]\nbuiltin: false\n"
    )
    result = defcheck("run", "-f", "json", "-q", cwd=tmp_path / "project")  # the working directory is elsewhere
    assert result.returncode == 0, result.stderr
    assert _status(result)["status"] == "ok"


def test_token_file_outside_the_project_is_refused_with_the_reason_and_allowed_with_the_flag(tmp_path):
    project = tmp_path / "project"
    _concept(project / "concepts", "../../outside/ids.txt")
    _ids(tmp_path / "outside" / "ids.txt")
    (project / "defcheck.yaml").write_text("models: [builtin:toy-induction]\ndefinitions: [concepts]\nbuiltin: false\n")
    refused = defcheck("run", "-f", "json", "-q", cwd=project)
    assert refused.returncode == 2
    error = str(_status(refused)["error"])
    assert "token_file: ../../outside/ids.txt is outside the project (.)" in error
    assert "--allow-outside-files" in error
    allowed = defcheck("run", "-f", "json", "-q", "--allow-outside-files", cwd=project)
    assert allowed.returncode == 0, allowed.stderr
    assert _status(allowed)["status"] == "ok"
    (project / "defcheck.yaml").write_text(
        "models: [builtin:toy-induction]\ndefinitions: [concepts]\nbuiltin: false\nallow_outside_files: true\n"
    )
    assert defcheck("run", "-f", "json", "-q", cwd=project).returncode == 0


def test_a_fifo_token_file_is_refused(tmp_path):
    concept = _concept(tmp_path)
    os.mkfifo(tmp_path / "ids.txt")
    result = defcheck("run", "--no-config", "--no-builtin", "-d", str(concept), "-f", "json", "-q", cwd=tmp_path)
    assert result.returncode == 2
    assert "token_file: the file ids.txt is a FIFO, not a regular file" in str(_status(result)["error"])


def test_text_corpora_are_relative_to_the_concept_file_and_stay_in_the_project(tmp_path):
    from defcheck_plugins.text import corpus_files, corpus_text

    from defcheck.engine.probe_data import ProbeRequest
    from defcheck.files import FileScope

    project = tmp_path / "project"
    (project / "concepts" / "corpus").mkdir(parents=True)
    (project / "concepts" / "corpus" / "a.txt").write_text("alpha " * 10, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    (project / "concepts" / "corpus" / "link.txt").symlink_to(tmp_path / "secret.txt")
    request = ProbeRequest(None, None, 0, 0, files=FileScope(project / "concepts", project))
    assert corpus_files("corpus/a.txt", request) == [project / "concepts" / "corpus" / "a.txt"]
    assert corpus_text("corpus/a.txt", request) == "alpha " * 10
    assert corpus_files("builtin", request)[0].name == "kjv.txt.gz"  # the shipped corpus is always allowed
    for outside in ("../../secret.txt", "corpus", "corpus/*.txt"):  # directly, or through a link in a folder/glob
        with pytest.raises(DefcheckError, match=r"text corpus: .* is outside the project"):
            corpus_files(outside, request)
    allowed = ProbeRequest(None, None, 0, 0, files=FileScope(project / "concepts", project, allow_outside=True))
    assert corpus_text("../../secret.txt", allowed) == "secret"
    os.mkfifo(project / "concepts" / "pipe.txt")
    with pytest.raises(DefcheckError, match=r"pipe\.txt is a FIFO, not a regular file"):
        corpus_text("pipe.txt", request)
