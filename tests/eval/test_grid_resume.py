"""Resumability with real processes: ``kill -9`` of a runner mid-grid loses only its running cells (its workers
die with it) and the next run completes the grid without rerunning finished cells; two runners against one
store share the cells, each cell runs and is recorded exactly once, and the file stays sound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from contrasting.eval.grid.pool import run_grid
from contrasting.eval.grid.store import ResultStore, pid_alive

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["shapes-shape", "shapes-texture", "shapes-digit", "shapes-count", "shapes-camera-shift",
         "shapes-segmentation", "shapes-foreground", "shapes-depth"]
EXECUTOR = "tests.eval.test_grid_resume:slow_cell"


def slow_cell(request, progress):
    """Sleeps ``sleep_s`` (hparams), logging start/finish lines to $GRID_TEST_LOG."""
    path = os.environ["GRID_TEST_LOG"]
    with open(path, "a") as f:
        f.write(f"start {request.key} {os.getpid()}\n")
    time.sleep(float(request.hparams.get("sleep_s", 0.3)))
    with open(path, "a") as f:
        f.write(f"finish {request.key} {os.getpid()}\n")
    return {"metrics": {request.task_meta["metric"]: 0.5}}


def write_spec(tmp_path: Path, sleep_s: float, workers: int) -> Path:
    spec = {"name": "resume", "store": "grid.sqlite", "encoders": [{"name": "Random", "kind": "random"}],
            "tasks": TASKS, "seeds": [0, 1], "hparams": {"default": {"sleep_s": sleep_s}},
            "runner": {"workers": workers, "device": "cpu", "executor": EXECUTOR}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def start_runner(spec: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "GRID_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "contrasting.eval.grid.cli", "run", str(spec), "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lines(log: Path, event: str) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [(k, int(p)) for e, k, p in (x.split() for x in log.read_text().splitlines()) if e == event]


def done_count(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    with ResultStore(store_path) as s:
        return s.counts()["done"]


def test_kill_9_of_the_runner_then_resume(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, sleep_s=0.6, workers=2)
    log = tmp_path / "events.log"
    store_path = tmp_path / "grid.sqlite"
    runner = start_runner(spec, log)
    deadline = time.time() + 180
    while done_count(store_path) < 4 and time.time() < deadline and runner.poll() is None:
        time.sleep(0.1)
    assert runner.poll() is None, runner.communicate()[0]
    os.kill(runner.pid, signal.SIGKILL)  # mid-grid: cells are running in both workers
    runner.wait(10)
    workers = {p for _, p in lines(log, "start")}
    end = time.time() + 20
    while any(pid_alive(p, None) for p in workers) and time.time() < end:
        time.sleep(0.1)
    assert not any(pid_alive(p, None) for p in workers), "workers outlived their runner"
    with ResultStore(store_path) as s:
        assert s.integrity_check() == "ok"
        c = s.counts()
        finished_before = {x.key for x in s.cells(status="done")}
        assert c["done"] >= 4 and c["done"] + c["running"] + c["pending"] == 16
        assert {k for k, _ in lines(log, "finish")} >= finished_before  # nothing recorded that did not finish
    monkeypatch.setenv("GRID_TEST_LOG", str(log))
    summary = run_grid(spec, progress=False)  # reclaims the dead runner's cells at once, runs the rest
    assert summary.complete and summary.ran == 16 - len(finished_before)
    finishes = Counter(k for k, _ in lines(log, "finish"))
    assert all(finishes[k] == 1 for k in finished_before)  # no finished cell ran again
    assert len(finishes) == 16


def test_two_concurrent_runners_share_the_grid(tmp_path):
    spec = write_spec(tmp_path, sleep_s=0.3, workers=1)
    log = tmp_path / "events.log"
    a, b = start_runner(spec, log), start_runner(spec, log)
    out_a, out_b = a.communicate(timeout=300)[0], b.communicate(timeout=300)[0]
    assert a.returncode == 0, out_a
    assert b.returncode == 0, out_b
    starts = Counter(k for k, _ in lines(log, "start"))
    assert len(starts) == 16 and set(starts.values()) == {1}  # every cell ran exactly once
    with ResultStore(tmp_path / "grid.sqlite") as s:
        assert s.integrity_check() == "ok"
        assert s.counts() == {"pending": 0, "running": 0, "done": 16, "failed": 0}
        for cell in s.cells():
            assert [x["status"] for x in s.attempts(cell.key)] == ["done"]
