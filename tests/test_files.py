"""defcheck/files.py: users' files are read only if they are regular files, with a limit that does not trust
``st_size``; files a concept file names stay in the project; writes are atomic (see also test_atomic_writes.py)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from defcheck.diagnostics import DefcheckError
from defcheck.files import (
    FileProblem,
    FileScope,
    check_regular_file,
    open_regular_file,
    read_regular_file,
    read_regular_text,
)

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")


def test_a_regular_file_is_read(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"12345")
    assert read_regular_file(path, 5) == b"12345"
    assert read_regular_text(path, 5) == "12345"
    with open_regular_file(path) as handle:
        assert handle.read() == b"12345"


def test_a_file_over_the_limit_is_refused_naming_it(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 11)
    with pytest.raises(FileProblem) as caught:
        read_regular_file(path, 10, "the report")
    assert caught.value.code == "too-large" and caught.value.size == 11
    assert str(caught.value) == f"the report {path} is larger than 10 bytes (11 bytes)"


def test_the_limit_holds_whatever_st_size_says(tmp_path, monkeypatch):
    """A file that grows after its size was read (or a size that lies) is still read only to the limit."""
    path = tmp_path / "growing.txt"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    def lying_fstat(descriptor: int) -> os.stat_result:
        result = real_fstat(descriptor)
        values = list(result)
        values[stat.ST_SIZE] = 0
        return os.stat_result(values)

    monkeypatch.setattr(os, "fstat", lying_fstat)
    with pytest.raises(FileProblem, match="is larger than 10 bytes"):
        read_regular_file(path, 10)


@needs_fifo
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_regular_file(fifo, 1000, "the concept file")
        except BaseException as error:  # the test inspects it
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)  # daemon: a regression fails, it does not hang
    started = time.perf_counter()
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert time.perf_counter() - started < 5
    assert isinstance(outcome[0], FileProblem)
    assert str(outcome[0]) == f"the concept file {fifo} is a FIFO, not a regular file"
    with pytest.raises(FileProblem, match="is a FIFO, not a regular file"):
        check_regular_file(fifo, "the checkpoint")


@needs_dev_zero
def test_a_device_is_refused_without_reading_it():
    with pytest.raises(FileProblem, match=r"/dev/zero is a character device, not a regular file"):
        read_regular_file(Path("/dev/zero"), 1_000_000)


def test_a_folder_and_a_missing_file_are_refused(tmp_path):
    with pytest.raises(FileProblem, match="is a folder, not a regular file"):
        read_regular_file(tmp_path, 10)
    with pytest.raises(FileProblem, match="does not exist") as caught:
        read_regular_file(tmp_path / "nope", 10)
    assert caught.value.strerror


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf\xe9")
    with pytest.raises(FileProblem, match=r"is not UTF-8 text \(byte 3"):
        read_regular_text(path, 100)


# -- FileScope ------------------------------------------------------------------------------------------------


def test_paths_start_at_the_concept_files_folder_and_stay_in_the_project(tmp_path):
    project = tmp_path / "project"
    (project / "concepts").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("s")
    scope = FileScope(project / "concepts", project)
    assert scope.resolve("ids.txt", "token_file") == project / "concepts" / "ids.txt"
    assert scope.resolve("../data/ids.txt", "token_file") == project / "concepts" / "../data/ids.txt"
    with pytest.raises(DefcheckError) as caught:
        scope.resolve("../../secret.txt", "token_file")
    message = str(caught.value)
    assert message.startswith("token_file: ../../secret.txt is outside the project")
    assert "--allow-outside-files" in message and "allow_outside_files: true" in message
    with pytest.raises(DefcheckError, match="outside the project"):
        scope.resolve(tmp_path / "secret.txt", "token_file")  # absolute paths too
    allowed = FileScope(project / "concepts", project, allow_outside=True)
    assert allowed.resolve("../../secret.txt", "token_file") == project / "concepts" / "../../secret.txt"


def test_a_link_out_of_the_project_is_refused(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "secret.txt").write_text("s")
    (project / "innocent.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(DefcheckError, match="outside the project"):
        FileScope(project, project).resolve("innocent.txt", "token_file")
