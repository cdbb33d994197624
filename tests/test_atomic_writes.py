"""Every write is atomic (a temporary file in the same folder, fsync, rename): a full disk leaves the previous file
intact, says so in one line, and exits 2; every command and the sweep write through the one helper."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from defcheck import files
from defcheck.files import atomic_write


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every fsync fail as a full disk does (ENOSPC); returns the descriptors it was called with."""
    calls: list[int] = []

    def fsync(descriptor: int) -> None:
        calls.append(descriptor)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_atomic_write_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(descriptor), real(descriptor))[1])
    atomic_write(tmp_path / "sub" / "out.json", '{"a": 1}\n')
    assert (tmp_path / "sub" / "out.json").read_text() == '{"a": 1}\n'
    assert len(synced) == (2 if os.name == "posix" else 1)  # the file, then its folder
    assert _leftovers(tmp_path / "sub") == []


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "baseline.json"
    target.write_text("previous", encoding="utf-8")
    calls = _full_disk(monkeypatch)
    with pytest.raises(OSError) as caught:
        atomic_write(target, "x" * 100_000)
    assert caught.value.errno == errno.ENOSPC and calls
    assert target.read_text(encoding="utf-8") == "previous"
    assert _leftovers(tmp_path) == []


def test_the_previous_files_permissions_are_kept_and_a_link_is_followed(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_device_is_written_as_a_stream_and_its_error_is_one_line(cli):
    code, out, err = cli("schema", "-o", "/dev/full")
    assert code == 2 and out == ""
    assert err.strip() == "error: cannot write /dev/full: No space left on device"


def test_the_sweep_writes_through_the_same_helper():
    from defcheck.cli import output
    from defcheck.sweep import plots, store

    assert store.atomic_write is files.atomic_write
    assert plots.atomic_write is files.atomic_write
    assert output.atomic_write is files.atomic_write


def test_a_full_disk_during_schema_o_keeps_the_previous_file(cli, tmp_path, monkeypatch):
    target = tmp_path / "concept.schema.json"
    target.write_text("{}\n", encoding="utf-8")
    _full_disk(monkeypatch)
    code, _, err = cli("schema", "-o", str(target))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [f"error: cannot write {target}: No space left on device; the previous file is left as it was"]
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert _leftovers(tmp_path) == []


def test_a_full_disk_during_new_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _full_disk(monkeypatch)
    code, _, err = cli("new", "my_head", "-o", "my_head.yaml")
    assert code == 2, err
    assert err.strip().endswith("cannot write my_head.yaml: No space left on device; nothing was written")
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_a_full_disk_during_write_baseline_keeps_the_previous_baseline(cli, tmp_path, monkeypatch):
    """The case the issue found: --write-baseline on a full disk replaced a valid baseline with a truncated one."""
    monkeypatch.chdir(tmp_path)
    run = ("run", "--no-config", "--concept", "previous_token_head", "-q")
    code, _, err = cli(*run, "--write-baseline", "baseline.json")
    assert code == 0, err
    previous = (tmp_path / "baseline.json").read_bytes()
    assert json.loads(previous)["report_version"]
    _full_disk(monkeypatch)
    code, _, err = cli(*run, "--write-baseline", "baseline.json")
    assert code == 2
    assert "error: cannot write baseline.json: No space left on device; the previous file is left as it was" in err
    assert (tmp_path / "baseline.json").read_bytes() == previous
    assert _leftovers(tmp_path) == []
