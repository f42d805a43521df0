"""Grid runner with fake cells: failures recorded and the grid goes on (exception, exit, kill -9, hang), a
rerun retries only what is unfinished, a full disk loses nothing finished, a broken executor stops cleanly.

The executors below are module-level so that worker processes import them by name. They append one line per
event to the file named by $GRID_TEST_LOG: ``start <key> <task> <pid>`` / ``finish <key> <task> <pid>``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from contrasting.eval.grid.cells import (
    DEFAULT_EXECUTOR,
    RunnerError,
    error_summary,
    executor_ref,
    prepare_grid,
    resolve_executor,
    run_cell_executor,
)
from contrasting.eval.grid.cli import grid_main
from contrasting.eval.grid.pool import run_grid
from contrasting.eval.grid.spec import TaskInfo, load_spec
from contrasting.eval.grid.store import ResultStore, StoreFullError

FAULT_TASKS = ("ok", "raise", "exit", "sigkill", "hang", "ok2")


def fake_lookup(name: str) -> TaskInfo:
    if name in FAULT_TASKS or name.startswith("t"):
        return TaskInfo(name, "pixel" if name.endswith("2") else "image", "semantic", "top1", True, 1)
    raise KeyError(f"unknown task {name!r}")


def log(event: str, request) -> None:
    with open(os.environ["GRID_TEST_LOG"], "a") as f:
        f.write(f"{event} {request.key} {request.task} {os.getpid()}\n")
        f.flush()


def fault_cell(request, progress):
    """Behaviour by task name: ok, raise, exit (os._exit(3)), sigkill (waits to be killed), hang."""
    log("start", request)
    progress(0.5, "half way")
    if request.task == "raise":
        raise ValueError("deliberate failure")
    if request.task == "exit":
        os._exit(3)
    if request.task in ("sigkill", "hang"):
        time.sleep(60)
    time.sleep(float(request.hparams.get("sleep_s", 0)) if isinstance(request.hparams, dict) else 0)
    log("finish", request)
    return {"metrics": {"top1": 0.5 + request.seed / 100, "val_top1": 0.4}, "timings": {"fake_s": 0.0}}


def ok_cell(request, progress):
    log("start", request)
    log("finish", request)
    return {"metrics": {"top1": 0.9}}


def big_cell(request, progress):
    """Returns a large metrics blob for task t2 (fills a size-capped store)."""
    log("finish", request)
    metrics = {"top1": 0.5}
    if request.task == "t2":
        metrics["curve"] = list(range(60_000))
    return {"metrics": metrics}


def events(path: Path, event: str) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        e, key, task, pid = line.split()
        if e == event:
            out.append((key, task, int(pid)))
    return out


@pytest.fixture
def logfile(tmp_path, monkeypatch):
    path = tmp_path / "events.log"
    monkeypatch.setenv("GRID_TEST_LOG", str(path))
    return path


def spec_for(tmp_path, tasks, **runner):
    raw = {"name": "faults", "store": str(tmp_path / "grid.sqlite"),
           "encoders": [{"name": "Random", "kind": "random"}], "tasks": list(tasks), "seeds": [0],
           "runner": {"workers": 2, "device": "cpu", **runner}}
    return load_spec(raw, base_dir=tmp_path, task_lookup=fake_lookup)


def test_failures_are_recorded_and_the_grid_goes_on(tmp_path, logfile):
    spec = spec_for(tmp_path, FAULT_TASKS, timeout_s=5.0)
    killed = []

    def kill_the_sigkill_worker():  # kill -9 of a worker mid-cell, from outside
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for _, task, pid in events(logfile, "start"):
                if task == "sigkill":
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_sigkill_worker, daemon=True)
    killer.start()
    summary = run_grid(spec, executor="tests.eval.test_grid_runner:fault_cell", progress=True,
                       task_lookup=fake_lookup)
    killer.join(1)
    assert killed, "the sigkill cell never started"
    assert (summary.total, summary.done, summary.failed, summary.pending, summary.running) == (6, 2, 4, 0, 0)
    assert summary.ran == 2 and summary.failed_now == 4
    with ResultStore(spec.store_path) as store:
        by_task = {c.task: c for c in store.cells(summary.spec_hash)}
        assert by_task["ok"].status == "done" and by_task["ok"].score == 0.5
        assert by_task["ok"].val_score == 0.4 and by_task["ok"].timings["fake_s"] == 0.0
        assert {"python", "cpu", "cpu_count", "contrasting-eval"} <= set(by_task["ok"].versions)
        assert error_summary(by_task["raise"].error) == "ValueError: deliberate failure"
        assert "Traceback" in by_task["raise"].error
        assert "worker process died" in by_task["exit"].error and "exited with code 3" in by_task["exit"].error
        assert "killed by signal SIGKILL" in by_task["sigkill"].error
        assert "timed out after 5 s" in by_task["hang"].error
        assert store.integrity_check() == "ok"
    # the rerun retries the failed cells only
    summary = run_grid(spec, executor="tests.eval.test_grid_runner:ok_cell", progress=False, task_lookup=fake_lookup)
    assert summary.complete and summary.ran == 4
    finished = [task for _, task, _ in events(logfile, "finish")]
    assert sorted(finished) == sorted(["ok", "ok2", "raise", "exit", "sigkill", "hang"])
    assert run_grid(spec, executor="tests.eval.test_grid_runner:ok_cell", progress=False,
                    task_lookup=fake_lookup).ran == 0  # nothing left: no worker even starts


def test_full_disk_loses_nothing_finished(tmp_path, logfile):
    spec = spec_for(tmp_path, ["t0", "t1", "t2", "t3", "t4"], workers=1)
    with ResultStore(spec.store_path) as store:
        prepare_grid(spec, store, task_lookup=fake_lookup)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    capped = ResultStore(spec.store_path, pragmas={"max_page_count": pages + 40})
    with pytest.raises(StoreFullError):
        run_grid(spec, store=capped, executor="tests.eval.test_grid_runner:big_cell", progress=False,
                 task_lookup=fake_lookup)
    capped.close()
    with ResultStore(spec.store_path) as store:
        assert store.integrity_check() == "ok"
        cells = {c.task: c for c in store.cells()}
        assert cells["t0"].status == "done" and cells["t1"].status == "done"
        assert cells["t0"].metrics == {"top1": 0.5}
        assert cells["t2"].status in ("pending", "running") and cells["t2"].metrics == {}
    summary = run_grid(spec, executor="tests.eval.test_grid_runner:big_cell", progress=False,
                       task_lookup=fake_lookup)
    assert summary.complete and summary.ran == 3  # t2, t3, t4: the finished t0 and t1 did not rerun
    with ResultStore(spec.store_path) as store:
        assert len(store.get(next(c.key for c in store.cells() if c.task == "t2")).metrics["curve"]) == 60_000


def test_broken_executor_stops_with_a_clear_error(tmp_path, logfile):
    spec = spec_for(tmp_path, ["t0"], workers=1)
    with pytest.raises(RunnerError, match="cannot be loaded"):
        run_grid(spec, executor="tests.eval.test_grid_runner:no_such_function", progress=False,
                 task_lookup=fake_lookup)
    with ResultStore(spec.store_path) as store:
        assert store.counts()["pending"] == 1  # the claim went back


def test_executor_refs_of_specs_written_before_the_subpackages_resolve():
    assert resolve_executor("contrasting.eval.cells:run_cell_executor") is run_cell_executor
    assert resolve_executor("contrasting.eval.grid.cells:run_cell_executor") is run_cell_executor
    assert executor_ref("contrasting.eval.cells:run_cell_executor") == DEFAULT_EXECUTOR  # the catalog's checks apply


def test_status_command(tmp_path, logfile, capsys):
    spec = spec_for(tmp_path, ["t0", "raise"], workers=1)
    run_grid(spec, executor="tests.eval.test_grid_runner:fault_cell", progress=False, task_lookup=fake_lookup)
    assert grid_main(["status", str(spec.store_path)]) == 0
    out = capsys.readouterr().out
    assert "2 total, 1 done (50%), 1 failed" in out and "ValueError: deliberate failure" in out
    assert grid_main(["status", str(tmp_path / "none.sqlite")]) == 2


def test_a_spec_refused_at_validation_leaves_no_store(tmp_path):
    from contrasting.eval.grid.spec import SpecError

    spec = load_spec({"name": "bad", "store": str(tmp_path / "g.sqlite"),
                      "encoders": [{"name": "R", "kind": "random", "arch": "resnet18"}], "tasks": ["no-such-task"]},
                     validate=False)
    with pytest.raises(SpecError, match="no-such-task"):
        run_grid(spec, progress=False)
    assert list(tmp_path.iterdir()) == []  # not even an empty store file
