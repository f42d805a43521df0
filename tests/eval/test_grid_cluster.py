"""Cluster path: atomic per-cell result files (a full disk leaves none half-written), idempotent ingestion,
and a grid submitted through submitit's local executor, one job per cell, a crashed job recorded as failed."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from contrasting.eval.grid.cells import prepare_grid
from contrasting.eval.grid.cluster import ingest_results, read_result_file, run_grid_cluster, write_result_file
from contrasting.eval.grid.spec import TaskInfo, load_spec
from contrasting.eval.grid.store import ResultStore

ROOT = Path(__file__).resolve().parents[2]


def lookup(name: str) -> TaskInfo:
    return TaskInfo(name, "image", "semantic", "top1", True, 1)


def cluster_cell(request, progress):
    """ok for every task but ``crash``, which ends the job's process without a result."""
    if request.task == "crash":
        os._exit(1)
    return {"metrics": {"top1": 0.25 + request.seed}}


def make_spec(tmp_path, tasks, seeds=(0,)):
    raw = {"name": "cl", "store": str(tmp_path / "grid.sqlite"), "encoders": ["random"], "tasks": list(tasks),
           "seeds": list(seeds), "runner": {"executor": "tests.eval.test_grid_cluster:cluster_cell"}}
    return load_spec(raw, base_dir=tmp_path, task_lookup=lookup)


def test_result_file_is_atomic_under_a_full_disk(tmp_path, monkeypatch):
    from contrasting.data import atomic

    class FullDisk:
        """A file whose first write lands half its bytes and then finds the disk full."""

        def __init__(self, path, mode):
            self.f = open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "open", FullDisk, raising=False)
    with pytest.raises(OSError, match="No space left"):
        write_result_file(tmp_path, {"key": "abc", "status": "done", "score": 1.0})
    assert list(tmp_path.iterdir()) == []  # neither the temporary nor a partial result file
    monkeypatch.delattr(atomic, "open")
    path = write_result_file(tmp_path, {"key": "abc", "status": "done", "score": 1.0})
    assert read_result_file(path)["score"] == 1.0 and path.name.startswith("abc.")


def test_ingestion_is_idempotent_and_skips_bad_files(tmp_path):
    spec = make_spec(tmp_path, ["t0", "t1", "t2"])
    results = tmp_path / "grid.sqlite.results"
    with ResultStore(spec.store_path) as store:
        _, _, cells = prepare_grid(spec, store, task_lookup=lookup)
        k0, k1, k2 = (c.key for c in cells)
        f0 = write_result_file(results, {"key": k0, "status": "done", "score": 0.5, "metrics": {"top1": 0.5}})
        write_result_file(results, {"key": k1, "status": "failed", "error": "Traceback\nRuntimeError: x"})
        (results / f"{k2}.zzz.json").write_text('{"format": 1, "key": "' + k2 + '", "status": "do')  # truncated
        (results / f".{k2}.yyy.json.1.tmp").write_text("{}")  # another writer's temporary file
        rep = ingest_results(store, results)
        assert (rep.applied, len(rep.invalid)) == (2, 1) and "unreadable" in rep.invalid[0][1]
        assert store.get(k0).status == "done" and store.get(k1).status == "failed"
        assert store.get(k2).status == "pending"  # the broken file was not used
        assert sorted(p.name for p in (results / "ingested").iterdir()) == sorted(
            [f0.name, next(p.name for p in (results / "ingested").iterdir() if p.name.startswith(k1))])
        # a crash between the commit and the move: the file is seen again and changes nothing
        shutil.copy(results / "ingested" / f0.name, results / f0.name)
        rep = ingest_results(store, results)
        assert rep.seen == 1 and rep.applied == 0 and len(store.attempts(k0)) == 1


def test_grid_through_submitit_local_executor(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    spec = make_spec(tmp_path, ["t0", "crash"])
    summary = run_grid_cluster(spec, cluster="local", folder=tmp_path / "jobs", timeout_s=300, poll_s=0.5,
                               progress=False, task_lookup=lookup)
    assert (summary.total, summary.done, summary.failed) == (2, 1, 1)
    with ResultStore(spec.store_path) as store:
        by_task = {c.task: c for c in store.cells()}
        assert by_task["t0"].score == 0.25 and by_task["t0"].status == "done"
        assert by_task["crash"].status == "failed" and "ended without a result file" in by_task["crash"].error
        files = list((tmp_path / "grid.sqlite.results" / "ingested").glob("*.json"))
        assert len(files) == 1 and json.loads(files[0].read_text())["runner"].startswith("submitit:")
    # rerunning submits only the failed cell again
    summary = run_grid_cluster(spec, cluster="local", folder=tmp_path / "jobs", timeout_s=300, poll_s=0.5,
                               progress=False, task_lookup=lookup, retry_failed=False)
    assert summary.done == 1 and summary.failed == 1 and summary.ran == 0


@pytest.mark.parametrize("runner", ["pool", "cluster"])
def test_both_runners_begin_a_grid_the_same_way(tmp_path, runner):
    """``open_grid`` is the one beginning of a run: the default executor's hyper-parameters are checked against
    the catalog on the cluster path too (it skipped the check before), and a refused spec leaves no store."""
    from contrasting.eval.grid.pool import run_grid
    from contrasting.eval.grid.spec import SpecError

    raw = {"name": "cl", "store": str(tmp_path / "grid.sqlite"), "encoders": ["random"], "tasks": ["t0"],
           "hparams": {"fast": {"learning_rate": 1}}}
    spec = load_spec(raw, base_dir=tmp_path, task_lookup=lookup)
    run = run_grid if runner == "pool" else run_grid_cluster
    with pytest.raises(SpecError, match="unknown key 'learning_rate'"):
        run(spec, progress=False, task_lookup=lookup)
    assert list(tmp_path.iterdir()) == []
    with ResultStore(spec.store_path):
        pass  # a store that existed before is never removed, whatever the spec
    with pytest.raises(SpecError, match="unknown key 'learning_rate'"):
        run(spec, progress=False, task_lookup=lookup)
    assert (tmp_path / "grid.sqlite").exists()
