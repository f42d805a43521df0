"""Two gloo processes on the CPU: DeepSpeed data parallelism with gathered negatives keeps the ranks identical."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrasting.encoders import pretrain
from tests.distributed_harness import free_port, run_on_ranks

from .helpers import read_log, tiny_config, tiny_source


def _train(rank, world_size, out, method):
    options = {"queue_size": 48} if method == "mocov2" else {}
    config = tiny_config(method, f"{out}/{method}", options, max_steps=2)
    result = pretrain(config, tiny_source(method, rank=rank, world_size=world_size))
    m = result.method
    return {"loss": result.final_loss, "params": {n: p.detach().clone() for n, p in m.named_parameters()},
            "queue": m.queue.clone() if hasattr(m, "queue") else None,
            "queue_ptr": int(m.queue_ptr) if hasattr(m, "queue_ptr") else None}


def _both(rank, world_size, out):
    # MoCo v2: ZeRO-1, shuffled BN across ranks, keys of both ranks in the queue;
    # SimCLR: LARS without ZeRO, negatives gathered from both ranks.
    return {method: _train(rank, world_size, out, method) for method in ("mocov2", "simclr")}


def test_two_processes_stay_in_lockstep(tmp_path):
    results = run_on_ranks(_both, world_size=2, args=(str(tmp_path),), timeout=600)
    for method in ("mocov2", "simclr"):
        r0, r1 = results[0][method], results[1][method]
        assert math.isfinite(r0["loss"]) and r0["loss"] == r1["loss"]  # the logged loss is the mean over ranks
        for name, p in r0["params"].items():
            assert torch.equal(p, r1["params"][name]), f"{method}: {name} differs between ranks"
        start = next(e for e in read_log(tmp_path / method) if e["event"] == "start")
        assert start["world_size"] == 2 and start["global_batch"] == 16
    # both ranks enqueue the keys of both: 2 steps × 8 keys × 2 ranks, the same rows on each rank
    assert results[0]["mocov2"]["queue_ptr"] == results[1]["mocov2"]["queue_ptr"] == 32
    assert torch.equal(results[0]["mocov2"]["queue"], results[1]["mocov2"]["queue"])


@pytest.mark.slow
def test_the_deepspeed_launcher_runs_the_same_command(tmp_path):
    script = Path(sys.executable).parent / "contrasting"
    if not script.exists():
        pytest.skip("the contrasting console script is not installed")
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["DS_ACCELERATOR"] = "cpu"
    subprocess.run([sys.executable, "-m", "deepspeed.launcher.runner", "--num_accelerators", "2",
                    "--master_port", str(free_port()), str(script), "pretrain", "--method", "mocov2", "--corpus",
                    "synthetic", "--backbone", "resnet18", "--small-stem", "--image-size", "32", "--batch-size", "8",
                    "--max-steps", "2", "--output", str(run), "--no-progress", "backbone.width=8",
                    "method.queue_size=64", "data.options.num_images=64", "train.log_every=1"],
                   check=True, env=env, timeout=600, capture_output=True)
    start = next(e for e in read_log(run) if e["event"] == "start")
    assert start["world_size"] == 2 and [e["step"] for e in read_log(run) if e["event"] == "step"] == [1, 2]
