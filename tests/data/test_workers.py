"""The torchvision executor's worker processes: never forked from a process that holds threads.

The hazard (bench run of 2026-12-03, core dump of the dead worker): a DALI pipeline that had become cyclic
garbage in the parent was finalised by the garbage collector inside a forked DataLoader worker, where its
executor threads do not exist; ``Pipeline::Shutdown`` joined them and the worker died of SIGSEGV. The test
reproduces it deterministically in a fresh interpreter: it leaves a running DALI pipeline as cyclic garbage,
makes every forked child collect garbage at once (``os.register_at_fork``), then reads one epoch through the
torchvision executor. Forked workers die on the first batch; workers from the fork server never see the parent's
garbage.
"""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest

from contrasting.data import ArraySource, WorkerDiedError, make_loader, worker_context
from contrasting.data.executors.workers import describe_worker_death

pytest.importorskip("nvidia.dali")

HAZARD = textwrap.dedent("""
    import gc, os, sys
    import numpy as np
    from contrasting.data import ArraySource, make_loader

    start_method = sys.argv[1] if len(sys.argv) > 1 else None
    images = np.random.default_rng(0).integers(0, 255, (16, 40, 40, 3), dtype=np.uint8)
    source = ArraySource(images, labels=np.arange(16) % 2)
    gc.disable()  # the parent never collects the garbage below itself
    dali = make_loader("simclr", source, 8, backend="dali", device="cpu", num_threads=2)
    assert sum(len(b.indices) for b in dali) == 16  # the pipeline's executor threads have run
    holder = [dali]
    holder.append(holder)  # cyclic garbage holding the pipeline
    del dali, holder
    os.register_at_fork(after_in_child=gc.collect)  # a collection in every forked child, at once
    kwargs = {} if start_method is None else {"start_method": start_method}
    loader = make_loader("simclr", source, 8, backend="torchvision", num_workers=1, **kwargs)
    print("read", sum(len(b.indices) for b in loader))
""")


def _hazard(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", HAZARD, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_workers_survive_a_parent_holding_a_dali_pipeline_as_garbage():
    done = _hazard()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("read 16")


def test_forked_workers_meet_the_hazard():
    """The same scenario with the old start method: the forked worker finalises the pipeline and dies (SIGSEGV in
    ``pthread_join``) or hangs (in ``pthread_cond_destroy``); it never reads the epoch."""
    try:
        done = _hazard("fork", timeout=90)
    except subprocess.TimeoutExpired:
        return
    assert done.returncode != 0 and "read 16" not in done.stdout


class _Bomb(np.ndarray):
    """Images that kill the process reading them unless it is ``survivor``: a worker that dies of SIGSEGV."""

    survivor = os.getpid()

    def __getitem__(self, item):
        if os.getpid() != _Bomb.survivor:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().__getitem__(item)

    def __reduce__(self):
        return _bomb, (np.asarray(self), _Bomb.survivor)


def _bomb(array, survivor):
    _Bomb.survivor = survivor
    return array.view(_Bomb)


def test_a_dead_worker_is_reported_in_one_line_and_the_next_epoch_restarts_workers():
    images = np.zeros((12, 20, 20, 3), np.uint8).view(_Bomb)
    loader = make_loader("simclr", ArraySource(images, labels=np.zeros(12, np.int64)), 4, backend="torchvision",
                         num_workers=1, shuffle=False)
    with pytest.raises(WorkerDiedError) as info:
        list(loader)
    text = str(info.value)
    assert "\n" not in text and info.value.__cause__ is None and info.value.__suppress_context__
    assert text.startswith("torchvision executor: worker 0 (pid ")
    assert "killed by signal SIGSEGV while holding batch(es) [0" in text and "sample indices [0, 1, 2, 3" in text
    old = loader._loader
    with pytest.raises(WorkerDiedError):
        list(loader)
    assert loader._loader is not old


def test_worker_parent_is_single_threaded():
    """Whatever this process runs (torch's thread pool here), its workers come from a single-threaded server."""
    import torch

    torch.ones(256, 256) @ torch.ones(256, 256)  # start the intra-op pool
    source = ArraySource(np.zeros((8, 24, 24, 3), np.uint8), labels=np.zeros(8, np.int64))
    loader = make_loader("simclr", source, 4, backend="torchvision", num_workers=1)
    loader._sampler.tasks = loader.tasks(0)
    iterator = iter(loader._loader)
    next(iterator)
    (worker,) = iterator._workers
    with open(f"/proc/{worker.pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    assert parent != os.getpid()
    assert len(os.listdir(f"/proc/{parent}/task")) == 1


def test_dropping_a_dali_loader_frees_its_pipeline_without_the_garbage_collector():
    source = ArraySource(np.zeros((8, 24, 24, 3), np.uint8), labels=np.zeros(8, np.int64))
    loader = make_loader("simclr", source, 4, backend="dali", device="cpu", num_threads=1)
    assert sum(len(b.indices) for b in loader) == 8
    pipe = weakref.ref(loader._pipe)
    gc.disable()
    try:
        del loader
        assert pipe() is None
    finally:
        gc.enable()


def test_worker_context_rejects_unknown_start_methods():
    with pytest.raises(ValueError, match="start_method"):
        worker_context("threads")
    with pytest.raises(ValueError, match="num_workers"):
        make_loader("simclr", ArraySource(np.zeros((2, 8, 8, 3), np.uint8)), 2, backend="torchvision",
                    num_workers=-1)


class _Dead:
    def __init__(self, pid, exitcode):
        self.pid, self.exitcode = pid, exitcode

    def is_alive(self):
        return self.exitcode is None


class _Iterator:
    _workers = [_Dead(11, None), _Dead(12, -11)]
    _task_info = {0: (0, "data"), 1: (1,), 2: (0,), 3: (1,)}


def test_describe_worker_death_names_worker_batches_indices_and_signal():
    text = describe_worker_death(_Iterator(), lambda i: [10 * i, 10 * i + 1])
    assert text == "worker 1 (pid 12) killed by signal SIGSEGV while holding batch(es) [1, 3] with sample indices " \
                   "[10, 11, 30, 31]"
    assert describe_worker_death(type("I", (), {"_workers": [_Dead(1, None)], "_task_info": {}})(), list) is None
    assert issubclass(WorkerDiedError, RuntimeError)
