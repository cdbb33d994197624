"""How the core runs a plugin's code so that the plugin cannot end, hang or garble a run.

- :func:`contain` turns what a plugin's code raised into an ``Exception`` the caller reports as that plugin's
  error: ``sys.exit()``, ``GeneratorExit``, a bare ``BaseException`` and a ``KeyboardInterrupt`` the code raised
  itself become a :class:`PluginEscape`; only a real Ctrl-C (a SIGINT seen by :func:`plugin_code`'s handler)
  still stops the run.
- :func:`plugin_code` is the region plugin code runs in: ``sys.stdout`` (and file descriptor 1, for C code and
  child processes) go to stderr, so a plugin's prints never mix with machine-readable output on stdout, and
  SIGINT is tracked so that :func:`contain` can tell a user's Ctrl-C from a ``raise KeyboardInterrupt``.
- :func:`time_limit` stops the code it wraps after some seconds (SIGALRM, in the main thread only) with
  :class:`TimeLimitExceeded`, which :func:`contain` turns into :class:`TookTooLong`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

from defcheck.diagnostics import DefcheckError

#: A limit at least this long (about three years) is no limit: ``setitimer`` refuses such values on some systems.
NO_LIMIT_ABOVE = 1e8
#: After a limit expires, how often the alarm is raised again (for code that swallowed the first one).
REPEAT_SECONDS = 0.05


class PluginEscape(DefcheckError):
    """A plugin's code ended with a ``BaseException`` that is not an ``Exception`` (``sys.exit()``,
    ``GeneratorExit``, a bare ``BaseException``, a ``KeyboardInterrupt`` it raised itself)."""

    def __init__(self, error: BaseException) -> None:
        self.original = error
        super().__init__(f"{_what(error)}{_where(error)}")


class TimeLimitExceeded(BaseException):
    """Raised into code that :func:`time_limit` stopped; a ``BaseException``, so ``except Exception`` in the
    stopped code does not swallow it."""


class TookTooLong(DefcheckError):
    """Plugin code that ran past its time limit, as an error of that plugin (``took longer than 5 s``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"took longer than {seconds:g} s")


_redirection: dict[str, Any] = {"depth": 0, "lock": threading.Lock()}  # the process's stdout redirection
_sigint = {"seen": False, "depth": 0}  # the main thread's SIGINT tracking (signals reach the main thread only)


def contain(error: BaseException) -> Exception:
    """``error``, raised by a plugin's code, as an ``Exception`` to report as that plugin's error: an
    ``Exception`` as it is, :class:`TimeLimitExceeded` as :class:`TookTooLong`, any other ``BaseException`` as a
    :class:`PluginEscape`. A user's Ctrl-C is raised again: it stops the run."""
    if isinstance(error, Exception):
        return error
    if isinstance(error, TimeLimitExceeded):
        return TookTooLong(error.args[0] if error.args else 0.0)
    if isinstance(error, KeyboardInterrupt) and _is_users(error):
        raise error
    return PluginEscape(error)


def _is_users(error: KeyboardInterrupt) -> bool:
    """Whether a KeyboardInterrupt came from a SIGINT (a user's Ctrl-C), not from a plugin's ``raise``."""
    if threading.current_thread() is not threading.main_thread():
        return False  # signals reach the main thread only: in another thread it was raised by code
    if _sigint["depth"] == 0:
        return True  # outside plugin_code SIGINT is not tracked: take it for the user's
    return bool(_sigint["seen"])


def _what(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        code = "" if error.code is None else repr(error.code)
        return f"called sys.exit({code})"
    if isinstance(error, KeyboardInterrupt):
        return "raised KeyboardInterrupt itself (not a Ctrl-C)"
    message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"raised {type(error).__name__}: {message}" if message else f"raised {type(error).__name__}"


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"


@contextlib.contextmanager
def plugin_code() -> Iterator[None]:
    """A region in which plugins' code runs: stdout goes to stderr (``sys.stdout`` and, where it can be
    duplicated, file descriptor 1), and in the main thread a SIGINT is noted before it raises
    ``KeyboardInterrupt`` as usual. Regions nest; the outermost one restores everything."""
    with _stdout_to_stderr(), _tracking_sigint():
        yield


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send stdout to stderr for the region; process-wide (``sys.stdout`` and descriptor 1 are), so regions of
    several threads share one redirection, made by the first to enter and undone by the last to leave."""
    with _redirection["lock"]:
        if _redirection["depth"] == 0:
            _redirection["stdout"] = sys.stdout
            _redirection["fd"] = _redirect_fd()
            sys.stdout = sys.stderr
        _redirection["depth"] += 1
    try:
        yield
    finally:
        with _redirection["lock"]:
            _redirection["depth"] -= 1
            if _redirection["depth"] == 0:
                _undo_redirection()


def _undo_redirection() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()  # what the plugins printed, before descriptor 1 points back at stdout
    sys.stdout = _redirection.pop("stdout")
    saved = _redirection.pop("fd")
    if saved is not None:
        with contextlib.suppress(OSError):
            os.dup2(saved, 1)
        with contextlib.suppress(OSError):
            os.close(saved)


def _redirect_fd() -> int | None:
    """Point file descriptor 1 at descriptor 2; the saved descriptor 1, or None where that cannot be done."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()  # what was printed before the region goes where it was meant to
    try:
        saved = os.dup(1)
    except OSError:
        return None
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        return None
    return saved


@contextlib.contextmanager
def _tracking_sigint() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outermost = _sigint["depth"] == 0
    previous: Any = None
    if outermost:
        try:
            previous = signal.getsignal(signal.SIGINT)
            if previous == signal.SIG_IGN or previous is None:  # ignored (or not set from Python): leave it so
                previous = None
            else:
                signal.signal(signal.SIGINT, _noting(previous))
        except (ValueError, OSError):  # e.g. an embedded interpreter that does not allow it
            previous = None
        _sigint["seen"] = False
    _sigint["depth"] += 1
    try:
        yield
    finally:
        _sigint["depth"] -= 1
        if outermost and previous is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGINT, previous)


def _noting(previous: Any) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        _sigint["seen"] = True
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: as Python's own handler does
            raise KeyboardInterrupt

    return handler


def can_limit_time() -> bool:
    """Whether :func:`time_limit` can stop code here: SIGALRM exists (not on Windows), this is the main thread,
    and no other timer (``ITIMER_REAL``) is running, which the limit would disturb."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    return signal.getitimer(signal.ITIMER_REAL)[0] == 0


class TimeLimit:
    """The state of one :func:`time_limit`: ``expired`` once the limit was reached (even if the stopped code
    swallowed the exception)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self.armed = False

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.expired = True
            raise TimeLimitExceeded(self.seconds)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[TimeLimit]:
    """Run the body for at most ``seconds`` (None, 0 or more than :data:`NO_LIMIT_ABOVE`: no limit; also none
    where :func:`can_limit_time` is false). Past it, :class:`TimeLimitExceeded` is raised in the body, and again
    every :data:`REPEAT_SECONDS` until the body ends; the previous SIGALRM handler is restored after."""
    limit = TimeLimit(seconds)
    if not seconds or seconds <= 0 or seconds > NO_LIMIT_ABOVE or not can_limit_time():
        yield limit
        return
    previous = signal.signal(signal.SIGALRM, limit._alarm)
    limit.armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    try:
        yield limit
    finally:
        while True:  # an alarm that arrives while disarming raises here: disarm again
            try:
                limit.armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except TimeLimitExceeded:
                continue
