"""Where independent tasks run: in this process, in a local process pool, or on a Ray cluster.

``defcheck sweep`` turns every checkpoint into one task (a picklable function and its argument) and hands the
list to an :class:`Executor`, which yields each task's :class:`Outcome` as it finishes. Scheduling, queueing and
transport are the libraries' own: :mod:`concurrent.futures` for the local pool, Ray's ``ray.remote`` /
``ray.wait`` / ``ray.get`` for a cluster. Nothing here retries, orders or routes work itself.

A task function should catch its own errors and return them as data (the sweep's does), so that what comes
back is the same whatever the executor; the executors still turn an exception that escapes a task, or a worker
that died, into an :class:`Outcome` with an ``error``, so one bad task never loses the others.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from defcheck.diagnostics import DefcheckError

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What became of the task at ``index`` (its position in the list given to :meth:`Executor.run`):
    its return ``value``, or, when it raised or its worker died, ``error`` (one line)."""

    index: int
    value: R | None = None
    error: str | None = None


def error_line(error: BaseException) -> str:
    """An exception as one line: the message of a :class:`DefcheckError`, else ``Type: message``."""
    text = str(error).strip().splitlines()
    if isinstance(error, DefcheckError):
        return text[0] if text else type(error).__name__
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class Executor(ABC):
    """Runs a function over a list of independent tasks and yields their outcomes as they finish."""

    name: str = "executor"

    @abstractmethod
    def run(self, function: Callable[[T], R], tasks: Sequence[T]) -> Iterator[Outcome[R]]:
        """Yield one :class:`Outcome` per task, in the order they finish (not necessarily the given order)."""

    def describe(self) -> str:
        """A few words for people: ``local, 2 processes``."""
        return self.name

    def close(self) -> None:
        """Release what the executor holds (worker processes, a Ray connection it opened)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequentialExecutor(Executor):
    """One task after the other in this process: no start-up cost, and plugins and probes stay loaded."""

    name = "local"

    def run(self, function: Callable[[T], R], tasks: Sequence[T]) -> Iterator[Outcome[R]]:
        for index, task in enumerate(tasks):
            try:
                value = function(task)
            except Exception as error:  # a task's own failure; KeyboardInterrupt still stops the sweep
                yield Outcome(index, error=error_line(error))
            else:
                yield Outcome(index, value)


class ProcessPoolExecutor(Executor):
    """A local pool of ``workers`` processes (:class:`concurrent.futures.ProcessPoolExecutor`).

    Workers are started with ``spawn``, not ``fork``: a forked copy of a process that has already run torch
    can deadlock in its thread pools.
    """

    name = "local"

    def __init__(self, workers: int):
        if workers < 1:
            raise DefcheckError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool: futures.ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"local, {self.workers} processes"

    def run(self, function: Callable[[T], R], tasks: Sequence[T]) -> Iterator[Outcome[R]]:
        if not tasks:
            return
        context = multiprocessing.get_context("spawn")
        self._pool = futures.ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context)
        pending = {self._pool.submit(function, task): index for index, task in enumerate(tasks)}
        try:
            for future in futures.as_completed(pending):
                index = pending[future]
                error = future.exception()
                if error is not None:
                    if isinstance(error, futures.process.BrokenProcessPool):
                        yield Outcome(index, error="a worker process died (out of memory, or killed?)")
                    else:
                        yield Outcome(index, error=error_line(error))
                else:
                    yield Outcome(index, future.result())
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor(Executor):
    """Tasks as Ray remote functions (``pip install defcheck[ray]``).

    ``address`` is passed to ``ray.init``: ``None`` starts a Ray instance on this machine (or uses the one
    this process is already connected to), ``"auto"`` joins the cluster this machine belongs to, and
    ``ray://HOST:10001`` connects through Ray Client. Each task asks Ray for ``cpus_per_task`` CPUs and
    ``gpus_per_task`` GPUs (fractions share a GPU); Ray places it and sets ``CUDA_VISIBLE_DEVICES``. The
    workers need defcheck installed (and the checkpoints at the same paths) wherever they run.
    """

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_task: float = 0.0, cpus_per_task: float = 1.0):
        try:
            import ray
        except ImportError:
            raise DefcheckError(
                "--executor ray needs Ray, which is not installed: pip install 'defcheck[ray]'"
            ) from None
        if gpus_per_task < 0 or cpus_per_task < 0:
            raise DefcheckError("--gpus-per-task and the CPUs per task must not be negative")
        self._ray = ray
        self.address = address
        self.gpus_per_task = gpus_per_task
        self.cpus_per_task = cpus_per_task
        self._started = False

    def describe(self) -> str:
        where = self.address or "this machine"
        gpus = f", {self.gpus_per_task:g} GPU per task" if self.gpus_per_task else ""
        return f"ray at {where}{gpus}"

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return  # the caller's connection (a notebook, a test): used, and left open
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.address or "this machine"
            raise DefcheckError(f"could not connect to Ray at {where}: {error_line(error)}") from None
        self._started = True

    def run(self, function: Callable[[T], R], tasks: Sequence[T]) -> Iterator[Outcome[R]]:
        if not tasks:
            return
        self._connect()
        ray = self._ray
        remote = ray.remote(function).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task)
        pending: dict[Any, int] = {remote.remote(task): index for index, task in enumerate(tasks)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:  # the task raised: its own exception's line
                        yield Outcome(index, error=error_line(getattr(error, "cause", None) or error))
                    except ray.exceptions.RayError as error:  # the worker or the node died
                        yield Outcome(index, error=f"Ray lost the task: {error_line(error)}")
                    else:
                        yield Outcome(index, value)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(
    kind: str = "local",
    *,
    workers: int = 1,
    address: str | None = None,
    gpus_per_task: float = 0.0,
    cpus_per_task: float = 1.0,
) -> Executor:
    """The executor ``defcheck sweep --executor KIND`` asks for: ``local`` (in this process with one worker,
    else a process pool) or ``ray``. Options that do not apply to the kind are refused, not ignored."""
    if kind == "local":
        if address is not None:
            raise DefcheckError("--address is for --executor ray")
        if gpus_per_task:
            raise DefcheckError("--gpus-per-task is for --executor ray (a local sweep uses --device)")
        return SequentialExecutor() if workers == 1 else ProcessPoolExecutor(workers)
    if kind == "ray":
        if workers != 1:
            raise DefcheckError("--workers is for --executor local (Ray runs as many tasks as the cluster has room)")
        return RayExecutor(address, gpus_per_task, cpus_per_task)  # no address: ray.init reads RAY_ADDRESS
    raise DefcheckError(f"unknown executor '{kind}' (use {' or '.join(EXECUTORS)})")


__all__ = [
    "EXECUTORS",
    "Executor",
    "Outcome",
    "ProcessPoolExecutor",
    "RayExecutor",
    "SequentialExecutor",
    "error_line",
    "make_executor",
]
