"""Reading a training run's output: its checkpoints and the backbone inside them.

    backbone, meta = load_run_backbone("runs/simclr")               # latest committed checkpoint
    backbone, meta = load_run_backbone("runs/simclr/checkpoints/step_00001000")

The backbone is taken from the module state DeepSpeed saved (``mp_rank_00_model_states.pt``, key
``module``, names ``backbone.*``), rebuilt from the run config stored in the checkpoint's client state
and loaded strictly (``layouts.check_against``).
"""

from __future__ import annotations

from pathlib import Path

from ..backbones import ResNet, build_backbone
from .checkpoints import COMPLETE, LATEST, load_safely
from .layouts import check_against

MODEL_STATES = "mp_rank_00_model_states.pt"


def find_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint folder ``path`` designates: itself (a tag folder), or a run's / checkpoints folder's
    latest committed checkpoint; None when ``path`` is none of these."""
    path = Path(path)
    if (path / MODEL_STATES).is_file():
        return path
    for root in (path / "checkpoints", path):
        latest = root / LATEST
        if latest.is_file():
            tag = latest.read_text().strip()
            if (root / tag / COMPLETE).is_file():
                return root / tag
        tags = sorted((p for p in root.glob("step_*") if (p / COMPLETE).is_file()), reverse=True)
        if tags:
            return tags[0]
    return None


def load_run_backbone(path: str | Path) -> tuple[ResNet, dict]:
    """The backbone of a run directory or checkpoint folder, and ``meta`` (method, step, corpus, run, config).

    Raises ``FileNotFoundError`` when ``path`` holds no committed checkpoint. The model-states file is read with
    ``torch.load(weights_only=True)`` (tensors and plain containers, never code from the file): one that holds
    anything else raises ``CheckpointError``.
    """
    folder = find_checkpoint(path)
    if folder is None:
        raise FileNotFoundError(f"{path}: no committed checkpoint (expected a run directory, its checkpoints/ "
                                f"folder or a step_* folder containing {MODEL_STATES})")
    state = load_safely(folder / MODEL_STATES, "model-states file")
    config = state.get("config") or {}
    arch = dict(config.get("backbone") or {})
    name = arch.pop("name", None)
    if name is None:
        raise FileNotFoundError(f"{folder}: the checkpoint records no run config (not written by pretrain)")
    backbone = build_backbone(name, arch)
    module = state["module"]
    trunk = {k[len("backbone."):]: v for k, v in module.items() if k.startswith("backbone.")}
    backbone.load_state_dict(check_against(backbone, trunk, source=str(folder)), strict=True)
    meta = {"method": config.get("method", {}).get("name"), "step": state.get("step"),
            "corpus": config.get("data", {}).get("corpus"), "checkpoint": str(folder), "config": config}
    return backbone, meta
