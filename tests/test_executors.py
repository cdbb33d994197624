"""Tests of defcheck.sweep.executors: every executor yields one outcome per task, and errors come back as data.

The Ray test starts a Ray instance on this machine (``ray.init(num_cpus=2)``), runs the same sweep as the
local executor over four shipped checkpoints, and compares the summaries byte for byte.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from defcheck.diagnostics import DefcheckError
from defcheck.sweep.executors import (
    Outcome,
    ProcessPoolExecutor,
    RayExecutor,
    SequentialExecutor,
    error_line,
    make_executor,
)


def square(x: int) -> int:
    if x == 3:
        raise DefcheckError("three is refused\nsecond line")
    if x == 4:
        raise ValueError("four")
    return x * x


def pid_of(_: int) -> int:
    return os.getpid()


def _by_index(outcomes: list[Outcome]) -> dict[int, Outcome]:
    out = {outcome.index: outcome for outcome in outcomes}
    assert len(out) == len(outcomes)
    return out


def test_error_line():
    assert error_line(DefcheckError("one sentence\nmore")) == "one sentence"
    assert error_line(ValueError("bad value")) == "ValueError: bad value"
    assert error_line(RuntimeError()) == "RuntimeError"


def test_sequential_runs_in_order_and_keeps_errors():
    outcomes = list(SequentialExecutor().run(square, [1, 2, 3, 4, 5]))
    assert [o.index for o in outcomes] == [0, 1, 2, 3, 4]
    assert [o.value for o in outcomes] == [1, 4, None, None, 25]
    assert outcomes[2].error == "three is refused" and outcomes[3].error == "ValueError: four"


def test_sequential_lets_an_interrupt_through():
    def interrupt(x: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(SequentialExecutor().run(interrupt, [1]))


@pytest.mark.slow
def test_process_pool_runs_in_other_processes_and_keeps_errors():
    with ProcessPoolExecutor(2) as executor:
        outcomes = _by_index(list(executor.run(square, [1, 2, 3, 4, 5])))
        pids = {o.value for o in executor.run(pid_of, list(range(4)))}
    assert {i: o.value for i, o in outcomes.items()} == {0: 1, 1: 4, 2: None, 3: None, 4: 25}
    assert outcomes[2].error == "three is refused" and outcomes[3].error == "ValueError: four"
    assert os.getpid() not in pids


def test_make_executor_refuses_options_of_another_kind():
    assert isinstance(make_executor("local"), SequentialExecutor)
    assert isinstance(make_executor("local", workers=3), ProcessPoolExecutor)
    with pytest.raises(DefcheckError, match="--gpus-per-task is for --executor ray"):
        make_executor("local", gpus_per_task=1)
    with pytest.raises(DefcheckError, match="--address is for --executor ray"):
        make_executor("local", address="auto")
    with pytest.raises(DefcheckError, match="--workers is for --executor local"):
        make_executor("ray", workers=2)
    with pytest.raises(DefcheckError, match="unknown executor 'slurm'"):
        make_executor("slurm")


def test_ray_missing_is_one_sentence(monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(DefcheckError, match=r"--executor ray needs Ray, which is not installed: pip install"):
        make_executor("ray")
    code, _, err = cli("sweep", "--checkpoints", "builtin:toy-induction@*", "--executor", "ray")
    assert code == 2 and err.strip().startswith("error: --executor ray needs Ray") and "Traceback" not in err


def test_ray_tasks_ask_for_the_gpus_and_cpus_given(monkeypatch):
    """--gpus-per-task and --threads become the remote function's num_gpus and num_cpus (Ray's own options)."""
    asked = {}

    class Remote:
        def options(self, **options):
            asked.update(options)
            return self

        def remote(self, task):
            return ("ref", task)

    class FakeRay:
        exceptions = type("exceptions", (), {"RayTaskError": RuntimeError, "RayError": OSError})

        def is_initialized(self):
            return True

        def remote(self, function):
            return Remote()

        def wait(self, refs, num_returns):
            return refs[:num_returns], refs[num_returns:]

        def get(self, ref):
            return square(ref[1])

    executor = RayExecutor(gpus_per_task=0.5, cpus_per_task=2)
    executor._ray = FakeRay()
    assert [o.value for o in executor.run(square, [2])] == [4]
    assert asked == {"num_gpus": 0.5, "num_cpus": 2}
    assert executor.describe() == "ray at this machine, 0.5 GPU per task"


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine (two CPUs), shut down after the module's tests."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed (the test extra pulls it), and CI must run this test")
        pytest.skip("ray is not installed: pip install 'defcheck[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    # this module is not importable in Ray's workers (tests/ is not a package): send its functions by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_keeps_errors_and_asks_for_resources(local_ray):
    executor = RayExecutor(cpus_per_task=1)
    outcomes = _by_index(list(executor.run(square, [1, 2, 3, 4])))
    assert {i: o.value for i, o in outcomes.items()} == {0: 1, 1: 4, 2: None, 3: None}
    assert outcomes[2].error == "three is refused" and outcomes[3].error == "ValueError: four"
    executor.close()
    assert local_ray.is_initialized()  # a connection the caller opened is left open


@pytest.mark.slow
def test_the_same_sweep_on_the_local_executor_and_on_ray_gives_the_same_summary(local_ray, tmp_path):
    from defcheck.session import RunConfig
    from defcheck.sweep import SweepOptions, find_checkpoints, run_sweep

    series = find_checkpoints("builtin:toy-induction@*", steps="800,1000,1600,4000")
    options = SweepOptions(RunConfig(selection=("induction_head",)))
    started = time.perf_counter()
    local = run_sweep(series, options, tmp_path / "local", executor=SequentialExecutor(), plots=False)
    local_seconds = time.perf_counter() - started
    started = time.perf_counter()
    remote = run_sweep(series, options, tmp_path / "ray", executor=RayExecutor(), plots=False)
    ray_seconds = time.perf_counter() - started
    print(f"local {local_seconds:.1f} s, ray {ray_seconds:.1f} s")  # shown with pytest -s
    assert local.ran == remote.ran == [800, 1000, 1600, 4000] and not local.failed and not remote.failed
    assert (tmp_path / "local" / "summary.json").read_bytes() == (tmp_path / "ray" / "summary.json").read_bytes()
    for step in (800, 1000, 1600, 4000):
        name = f"reports/step-{step:06d}.json"
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
