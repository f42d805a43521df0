"""``python -m tests.encoders.train_worker RUN_DIR STEPS``: the tiny MoCo v2 run that test_resume kills with SIGKILL.

From batch 3 on, each batch is delayed by 1 s so that the parent can kill the process mid-run, after the
first checkpoint, on any machine.
"""

from __future__ import annotations

import sys
import time

from contrasting.encoders import pretrain

from .helpers import tiny_config, tiny_source


class SlowAfter:
    """``source`` whose batches from ``index`` on are delayed by ``delay`` seconds."""

    def __init__(self, source, index: int, delay: float):
        self.source, self.index, self.delay, self.num_classes = source, index, delay, source.num_classes

    def __len__(self):
        return len(self.source)

    def epoch(self, epoch, start=0):
        for i, batch in enumerate(self.source.epoch(epoch, start), start=start):
            if i >= self.index:
                time.sleep(self.delay)
            yield batch


def run(run_dir: str, steps: int, slow: bool) -> None:
    """The run: MoCo v2, checkpoints every 2 steps (the same config the test resumes with)."""
    source = tiny_source("mocov2")
    pretrain(tiny_config("mocov2", run_dir, max_steps=steps, checkpoint_every=2),
             SlowAfter(source, 3, 1.0) if slow else source)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), slow=True)
