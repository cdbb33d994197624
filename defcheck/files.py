"""Users' files, read safely, and files written whole.

Every file defcheck reads that a user names (concept and project files, saved reports and baselines,
checkpoints, probe corpora) is opened by :func:`open_regular_file`: only a regular file is opened (a FIFO would
block the read forever, ``/dev/zero`` never ends), and :func:`read_regular_file` reads at most ``limit`` bytes
without trusting ``st_size``. Every file defcheck writes goes through :func:`atomic_write`: a temporary file in the
same folder, flushed to disk, then renamed over the target, so a full disk or a kill leaves the previous file as
it was. :class:`FileScope` says where a concept file's relative paths start and which folder they may reach.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from defcheck.diagnostics import DefcheckError, display_path

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
MAX_REPORT_BYTES = 256 * 2**20
"""The largest saved report or baseline read (a GPT-2-sized model's neuron-level report is a few MB)."""

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class FileProblem(DefcheckError):
    """A file that cannot be read as asked: ``reason`` completes "the file ..." (``"is a FIFO, not a regular
    file"``, ``"is larger than 1,000 bytes"``); ``code`` is ``"io"`` or ``"too-large"`` (then ``size`` is the
    file's size as far as it is known)."""

    def __init__(
        self, path: Path, what: str, reason: str, code: str = "io", size: int | None = None, strerror: str = ""
    ):
        self.path, self.what, self.reason, self.code, self.size = path, what, reason, code, size
        self.strerror = strerror  # the system's words when the file could not be opened or read
        super().__init__(f"{what} {display_path(path)} {reason}")


def _not_regular(mode: int) -> str | None:
    """``"is a FIFO, not a regular file"`` (and so on), or ``None`` for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), None)
    return f"is {kind}, not a regular file" if kind else "is not a regular file"


def check_regular_file(path: Path, what: str = "the file") -> None:
    """Raise :class:`FileProblem` unless ``path`` is a regular file (symbolic links followed), for files that a
    library opens itself (a multi-gigabyte checkpoint read by ``safetensors``)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise _unreadable(path, what, error) from None
    reason = _not_regular(mode)
    if reason:
        raise FileProblem(path, what, reason)


def open_regular_file(path: Path, what: str = "the file") -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file; else :class:`FileProblem` naming it and the
    reason. It is checked before it is opened (a device is never opened) and again on the open descriptor (a file
    swapped in between is caught); the open does not block on a FIFO."""
    check_regular_file(path, what)
    try:
        descriptor = os.open(path, _READ_FLAGS)
    except OSError as error:
        raise _unreadable(path, what, error) from None
    try:
        reason = _not_regular(os.fstat(descriptor).st_mode)
        if reason:
            raise FileProblem(path, what, reason)
        if _READ_FLAGS & getattr(os, "O_NONBLOCK", 0):  # reads of a regular file block as usual
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular_file(path: Path, limit: int, what: str = "the file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (read up to ``limit + 1`` bytes, whatever
    ``st_size`` says); else :class:`FileProblem` naming the file and the reason."""
    with open_regular_file(path, what) as handle:
        try:
            data = handle.read(limit + 1)
            size = os.fstat(handle.fileno()).st_size
        except OSError as error:
            raise _unreadable(path, what, error) from None
    if len(data) > limit:
        size = max(size, len(data))
        raise FileProblem(path, what, f"is larger than {limit:,} bytes ({size:,} bytes)", "too-large", size)
    return data


def read_regular_text(path: Path, limit: int, what: str = "the file") -> str:
    """:func:`read_regular_file` decoded as UTF-8 (a byte-order mark dropped); bytes that are not UTF-8 are a
    :class:`FileProblem` saying where."""
    data = read_regular_file(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileProblem(path, what, f"is not UTF-8 text (byte {error.start} cannot be decoded)") from None


def _unreadable(path: Path, what: str, error: OSError) -> FileProblem:
    strerror = error.strerror or str(error)
    if isinstance(error, FileNotFoundError):
        return FileProblem(path, what, "does not exist", strerror=strerror)
    return FileProblem(path, what, f"cannot be read: {strerror}", strerror=strerror)


# -- writing ---------------------------------------------------------------------------------------------------


def atomic_write(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to ``path`` whole or not at all: a temporary file in the same folder,
    flushed and fsynced, renamed over ``path`` (``os.replace``, atomic on one file system), then the folder fsynced
    on POSIX. A symbolic link is kept and its target replaced; a FIFO or device (``-o /dev/stdout``) is written to as
    the stream it is. Makes the folder if need be. Raises ``OSError``, with ``path`` as it was before."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode: int | None = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with open(target, "wb") as stream:  # a stream has no previous content to keep
            stream.write(data)
        return
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:  # the previous file's permissions, not the umask's
            with contextlib.suppress(OSError):
                os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename itself survives a power cut (POSIX; a no-op where not supported)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_error(path: Path, error: OSError, previous: bool | None) -> DefcheckError:
    """The one line a failed :func:`atomic_write` becomes: the file, the reason, and that nothing was lost
    (``previous``: whether a regular file was there; ``None`` for a stream such as ``/dev/full``)."""
    kept = {True: "; the previous file is left as it was", False: "; nothing was written", None: ""}[previous]
    return DefcheckError(f"cannot write {display_path(path)}: {error.strerror or error}{kept}")


# -- where a concept file's paths may go ---------------------------------------------------------------------


ALLOW_HINT = "pass --allow-outside-files (or set allow_outside_files: true in defcheck.yaml) to read it"


@dataclass(frozen=True)
class FileScope:
    """Where the relative paths a concept file names start (``base``: the file's folder) and which folder they
    may reach (``root``: the project's folder, the one holding defcheck.yaml, else ``base``), unless
    ``allow_outside``."""

    base: Path
    root: Path
    allow_outside: bool = False

    @classmethod
    def here(cls) -> FileScope:
        """Relative to the working directory, anywhere: for a probe built by hand, outside a run."""
        return cls(Path.cwd(), Path.cwd(), allow_outside=True)

    def resolve(self, name: str | Path, what: str) -> Path:
        """``name`` (``~`` expanded) relative to :attr:`base`, refused (:class:`DefcheckError`, ``what`` first)
        when it leads outside :attr:`root`, symbolic links followed."""
        path = Path(name).expanduser()
        path = path if path.is_absolute() else self.base / path
        self.check(path, what, name)
        return path

    def check(self, path: Path, what: str, name: str | Path | None = None) -> None:
        """Refuse ``path`` unless it is inside :attr:`root` (or :attr:`allow_outside`)."""
        if self.allow_outside:
            return
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(self.root))
        if real != root and root not in real.parents:
            raise DefcheckError(
                f"{what}: {name if name is not None else path} is outside the project ({display_path(root)}), "
                f"and a concept file reads only files inside it; {ALLOW_HINT}"
            )
