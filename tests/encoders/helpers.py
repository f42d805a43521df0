"""Tiny configurations shared by the encoder tests: a narrow ResNet-18 with the small-image stem at 32 px.

Everything here is sized so that one training step takes well under a second on 2 CPU cores.
"""

from __future__ import annotations

import torch

from contrasting.encoders import build_backbone, build_method, resolve_config
from contrasting.encoders.training.data import LoaderSource, synthetic_source

IMAGE_SIZE = 32
BATCH = 8
WIDTH = 8
TRAINED_METHODS = ("simclr", "mocov1", "mocov2", "swav", "byol", "pirl", "supervised")
"""Every registered method except ``random`` (not trainable): the one place exclusions are listed."""

METHOD_OPTIONS = {
    "simclr": {},
    "mocov1": {"queue_size": 32},
    "mocov2": {"queue_size": 32},
    "swav": {"prototypes": 16, "freeze_prototypes_steps": 2, "queue_length": 16},
    "byol": {"projection_hidden": 32, "prediction_hidden": 32, "projection_dim": 16},
    "pirl": {"corpus_size": 64, "num_negatives": 32, "projection_dim": 16},  # tiny_source's 64 images
    "supervised": {"num_classes": 4},
    "random": {},
}


def tiny_backbone(seed: int = 0):
    """ResNet-18, small stem, width 8."""
    torch.manual_seed(seed)
    return build_backbone("resnet18", small_stem=True, width=WIDTH)


def tiny_method(name: str, seed: int = 0, **options):
    """Method ``name`` on ``tiny_backbone`` with the small queues / prototypes of ``METHOD_OPTIONS``."""
    return build_method(name, tiny_backbone(seed), {**METHOD_OPTIONS[name], **options})


def tiny_source(method: str, *, num_images: int = 64, seed: int = 0, rank: int = 0, world_size: int = 1,
                batch_size: int = BATCH) -> LoaderSource:
    """The synthetic corpus at 32 px with 4 classes, viewed through ``method``'s recipe (SwAV: 2 × 32 px + 6 × 14
    px; PIRL: with each sample's index, batches (views, labels, indices))."""
    return synthetic_source(method, image_size=IMAGE_SIZE, batch_size=batch_size, num_images=num_images,
                            num_classes=4, seed=seed, rank=rank, world_size=world_size)


def tiny_batch(method: str):
    """The first batch of ``tiny_source(method)``: (views, labels), or (views, labels, indices) for PIRL."""
    return next(tiny_source(method).epoch(0))


def tiny_config(method: str, output_dir, method_options: dict | None = None, optim: dict | None = None, **train):
    """A resolved config for ``method`` on the tiny backbone; ``train`` overrides the train section."""
    train = {"epochs": 1, "batch_size": BATCH, "checkpoint_every": 0, "log_every": 1, "progress": False,
             "output_dir": str(output_dir), **train}
    return resolve_config({"method": {"name": method, **METHOD_OPTIONS[method], **(method_options or {})},
                           "backbone": {"name": "resnet18", "small_stem": True, "width": WIDTH},
                           "data": {"corpus": "synthetic", "image_size": IMAGE_SIZE},
                           "optim": optim or {}, "train": train})


def read_log(run_dir) -> list[dict]:
    """The events of a run's log.jsonl."""
    import json

    path = run_dir / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
