"""A run killed with SIGKILL mid-run resumes where its last checkpoint left it and ends like an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from contrasting.encoders.weights.checkpoints import CheckpointManager

from .helpers import read_log
from .train_worker import run

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6


def _kill_after_first_checkpoint(run_dir: Path, timeout: float = 300.0) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.encoders.train_worker", str(run_dir), str(STEPS)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            events = read_log(run_dir) if (run_dir / "log.jsonl").exists() else []
            if any(e["event"] == "checkpoint" for e in events) and any(e.get("step", 0) >= 3 for e in events
                                                                      if e["event"] == "step"):
                break
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early ({proc.returncode}): {proc.stderr.read().decode()[-3000:]}")
            time.sleep(0.2)
        else:
            raise AssertionError("worker did not reach its first checkpoint in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_kill9_then_resume_continues_the_same_run(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    _kill_after_first_checkpoint(killed)
    events = read_log(killed)
    assert events[-1]["event"] != "end"
    manager = CheckpointManager(killed / "checkpoints", info=None)
    tag = manager.latest_tag()
    assert tag is not None and manager.is_complete(tag)  # never a corrupt checkpoint
    resumed_step = int(tag.split("_")[1])
    assert 2 <= resumed_step < STEPS

    # debris a kill during a save could leave: neither may be read
    (killed / "checkpoints" / ".staging" / "step_00000005").mkdir(parents=True)
    (killed / "checkpoints" / ".staging" / "step_00000005" / "mp_rank_00_model_states.pt").write_bytes(b"\0" * 10)
    (killed / "checkpoints" / "step_00000099").mkdir()
    (killed / "checkpoints" / "step_00000099" / "mp_rank_00_model_states.pt").write_bytes(b"torn")

    run(str(killed), STEPS, slow=False)  # the same command, in this process: resumes
    run(str(reference), STEPS, slow=False)  # uninterrupted

    after = read_log(killed)
    resume = [i for i, e in enumerate(after) if e["event"] == "resume"]
    assert len(resume) == 1 and after[resume[0]]["step"] == resumed_step and after[resume[0]]["tag"] == tag
    continued = [e for e in after[resume[0]:] if e["event"] == "step"]
    assert [e["step"] for e in continued] == list(range(resumed_step + 1, STEPS + 1))  # the step counter continues
    ref_steps = {e["step"]: e for e in read_log(reference) if e["event"] == "step"}
    for e in continued:  # the schedule continues, and so do the data and the model
        assert e["lr"] == ref_steps[e["step"]]["lr"]
        assert abs(e["loss"] - ref_steps[e["step"]]["loss"]) < 1e-4 * max(1.0, abs(e["loss"]))

    final = CheckpointManager(killed / "checkpoints", info=None).latest_tag()
    assert final == f"step_{STEPS:08d}"
    a = torch.load(killed / "checkpoints" / final / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    b = torch.load(reference / "checkpoints" / final / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    assert int(a["queue_ptr"]) == int(b["queue_ptr"]) == STEPS * 8 % 32  # the queue continues
    for k in b:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4, msg=k)
