"""The cluster path on a real single-node Slurm cluster (``scripts/slurm_local.sh``): a 2 encoders × 3 tasks grid
through ``run_grid_cluster(cluster="slurm")`` (submitit's SlurmExecutor), one job killed with ``scancel`` while
it runs, a rerun that completes the grid with every result present exactly once.

Skips unless ``sbatch`` reaches a cluster with an idle node; with ``CONTRASTING_SLURM_TEST=1`` (and root) the
module starts the cluster itself and stops it afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from contrasting.eval.grid.cluster import run_grid_cluster
from contrasting.eval.grid.spec import TaskInfo, load_spec
from contrasting.eval.grid.store import ResultStore

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
LOCAL_DIR = os.environ.get("SLURM_LOCAL_DIR", "/tmp/contrasting-slurm")
SLEEP_S = 8  # each cell's run time: long enough to cancel a running job before it writes its result


def lookup(name: str) -> TaskInfo:
    """Task metadata without the catalog."""
    return TaskInfo(name, "image", "semantic", "top1", True, 1)


def _sh(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def cluster_problem() -> str | None:
    """Why no Slurm cluster can take jobs here (None when ``sbatch`` works and a node is idle)."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no Slurm client (sbatch, sinfo)"
    try:
        info = _sh("sinfo", "-h", "-o", "%T")
        if info.returncode != 0:
            return f"sinfo failed: {(info.stderr.strip().splitlines() or ['?'])[-1]}"
        if not set(info.stdout.split()) & {"idle", "mixed", "allocated"}:  # "idle*": not responding
            return f"no usable node (sinfo: {info.stdout.split()})"
        test = _sh("sbatch", "--test-only", "--wrap", "true")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Slurm client failed: {exc}"
    return None if test.returncode == 0 else f"sbatch --test-only failed: {test.stderr.strip()}"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A cluster that takes jobs: the running one, or (``CONTRASTING_SLURM_TEST=1``) one started from
    ``scripts/slurm_local.sh`` for this module and stopped after it."""
    with pytest.MonkeyPatch.context() as mp:
        started = False
        if os.environ.get("CONTRASTING_SLURM_TEST") == "1":
            mp.setenv("SLURM_CONF", os.environ.get("SLURM_CONF") or f"{LOCAL_DIR}/slurm.conf")
            if cluster_problem() is not None:
                out = _sh("bash", str(SCRIPT), "start", timeout=900)
                if out.returncode != 0:
                    pytest.skip(f"scripts/slurm_local.sh start failed: {out.stderr.strip()[-500:]}")
                started = True
        problem = cluster_problem()
        if problem is not None:
            pytest.skip(
                f"no Slurm cluster ({problem}); start one with scripts/slurm_local.sh or set CONTRASTING_SLURM_TEST=1"
            )
        try:
            yield
        finally:
            if started:
                _sh("bash", str(SCRIPT), "stop")


def make_spec(tmp_path: Path):
    """2 encoders × 3 tasks of the synthetic cell (a small probe, then ``SLEEP_S`` seconds)."""
    raw = {
        "name": "slurm",
        "store": str(tmp_path / "grid.sqlite"),
        "encoders": ["random", "supervised"],
        "tasks": ["t0", "t1", "t2"],
        "seeds": [0],
        "hparams": {"default": {"samples": 200, "dim": 16, "sleep_s": SLEEP_S}},
        "runner": {"executor": "bench.grid_executors:synthetic_cell", "retry_failed": True},
    }
    return load_spec(raw, base_dir=tmp_path, task_lookup=lookup)


def run_in_thread(fn):
    """Start ``fn`` in a daemon thread (a hung run cannot keep pytest alive); returns (thread, outcome dict)."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised by the test
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, out


def cancel_a_running_job(name: str, timeout_s: float = 180) -> str:
    """Wait until a job named ``name`` runs, ``scancel`` it and return its id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = _sh("squeue", "-h", "-r", "-n", name, "-t", "RUNNING", "-o", "%i").stdout.split()
        if running:
            job_id = running[0]
            assert _sh("scancel", job_id).returncode == 0
            return job_id
        time.sleep(0.2)
    raise AssertionError(f"no job of {name} ran within {timeout_s} s: {_sh('squeue').stdout}")


def test_grid_on_slurm_survives_scancel_and_rerun(slurm_cluster, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.chdir(tmp_path)
    spec, name = make_spec(tmp_path), f"contrasting-test-{uuid.uuid4().hex[:8]}"

    def run():
        return run_grid_cluster(
            spec,
            cluster="slurm",
            folder=tmp_path / "jobs",
            timeout_s=300,
            poll_s=0.5,
            parameters={"name": name},
            progress=False,
            task_lookup=lookup,
        )

    try:
        thread, out = run_in_thread(run)
        cancelled = cancel_a_running_job(name)
        thread.join(timeout=300)
        assert not thread.is_alive(), "the first run did not notice that the cancelled job ended"
        if "error" in out:
            raise out["error"]
        first = out["value"]
        # the cancelled job left no result file: its cell is recorded as failed with the job's id
        assert (first.total, first.done, first.failed, first.pending, first.running) == (6, 5, 1, 0, 0)
        with ResultStore(spec.store_path) as store:
            (failed,) = store.cells(status="failed")
            assert f"job {cancelled} ended without a result file" in failed.error
        # the rerun returns the failed cell to pending and submits only that one
        second = run()
        assert (second.done, second.failed, second.ran) == (6, 0, 1)
    finally:
        _sh("scancel", "-n", name)
    with ResultStore(spec.store_path) as store:
        cells = store.cells()
        assert len(cells) == 6 and len({c.key for c in cells}) == 6
        assert all(c.status == "done" and c.score is not None for c in cells)
        for c in cells:
            statuses = [a["status"] for a in store.attempts(c.key)]
            assert statuses.count("done") == 1 and "duplicate" not in statuses, statuses
        assert [a["status"] for a in store.attempts(failed.key)] == ["failed", "done"]
    files = list((tmp_path / "grid.sqlite.results" / "ingested").glob("*.json"))
    assert sorted(f.name.split(".")[0] for f in files) == sorted(c.key for c in cells)
