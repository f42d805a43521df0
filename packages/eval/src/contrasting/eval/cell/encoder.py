"""The frozen encoder: any backbone wrapped into the evaluator's feature contract, and the spec strings that load one.

``FrozenEncoder`` wraps a backbone::

    features = encoder(x)        # x: (B, 3, H, W), ImageNet-normalised
    features["stem"]             # (B, w0, H/2,  W/2)   after conv1-bn-relu, before the max-pool
    features["stage1" .. "stage4"]  (B, wi, H/2^(i+1), W/2^(i+1))
    features["embedding"]        # (B, w4)              global average pool of stage 4
    encoder.widths               # {"stem": w0, "stage1": w1, ..., "stage4": w4, "embedding": w4}

It accepts torchvision ResNets directly and any backbone returning multi-scale features (a dict under any
of the aliases in ``_ALIASES`` — ``contrasting.encoders``' ResNet gives stem, layer1..layer4, pool — or a
(stem, s1..s4, pooled) sequence). ``load_encoder`` resolves a spec string:

* ``random[:arch]``: ``contrasting.encoders.build_backbone(arch)`` initialised from the cell's seed;
* ``supervised[:arch]``: torchvision's ImageNet weights, which must already be in the torch hub cache
  (nothing is downloaded in an offline run);
* a run directory: ``contrasting.encoders.load_run_backbone`` (its latest committed checkpoint);
* a checkpoint file: ``contrasting.encoders.load_backbone`` (layout auto-detected among MoCo, SwAV, VISSL,
  ViRB, torchvision and the package's own export; strict; its ``LayoutError`` — a ``ValueError`` — on an
  unknown layout or mismatched keys).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

FEATURE_KEYS = ("stem", "stage1", "stage2", "stage3", "stage4", "embedding")
_ALIASES = {
    "stem": ("stem", "conv1", "layer0", "res1"),
    "stage1": ("stage1", "layer1", "res2", "c2"),
    "stage2": ("stage2", "layer2", "res3", "c3"),
    "stage3": ("stage3", "layer3", "res4", "c4"),
    "stage4": ("stage4", "layer4", "res5", "c5"),
    "embedding": ("embedding", "pooled", "pool", "avgpool", "feat", "features"),
}


def _is_torchvision_resnet(m: nn.Module) -> bool:
    return all(hasattr(m, a) for a in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"))


def _normalise(out, name: str) -> dict[str, torch.Tensor]:
    """A backbone's multi-scale output as the evaluator's dict (see the module docstring)."""
    if isinstance(out, (list, tuple)) and len(out) == len(FEATURE_KEYS):
        return dict(zip(FEATURE_KEYS, out, strict=True))
    if isinstance(out, dict):
        feats = {}
        for key, aliases in _ALIASES.items():
            hit = next((a for a in aliases if a in out), None)
            if hit is not None:
                feats[key] = out[hit]
        if "embedding" not in feats and "stage4" in feats:
            feats["embedding"] = feats["stage4"].mean(dim=(2, 3))
        missing = [k for k in FEATURE_KEYS if k not in feats]
        if not missing:
            return feats
        raise ValueError(f"encoder {name!r}: its output lacks the features {missing} (has {sorted(out)}); "
                         f"expected the keys {FEATURE_KEYS} or their aliases")
    raise ValueError(f"encoder {name!r}: expected a dict of multi-scale features or a (stem, stage1..4, pooled) "
                     f"sequence, got {type(out).__name__}")


class FrozenEncoder(nn.Module):
    """A backbone in eval mode with every parameter frozen, giving the feature dict of the module docstring.

    ``fingerprint()`` is a SHA-256 over its state dict (names and bytes, buffers included): the protocol
    compares it before and after a task, and the feature cache keys on it.
    """

    def __init__(self, backbone: nn.Module, name: str):
        super().__init__()
        self.backbone, self.name = backbone, name
        self.backbone.eval().requires_grad_(False)
        with torch.no_grad():
            probe = self.forward(torch.zeros(1, 3, 64, 64, device=next(backbone.parameters()).device))
        self.widths = {k: int(v.shape[1]) for k, v in probe.items()}
        self.strides = {k: max(1, round(64 / v.shape[-1])) for k, v in probe.items() if v.dim() == 4}

    def train(self, mode: bool = True):
        """Always eval: BatchNorm statistics of a frozen encoder must not move."""
        return super().train(False)

    @property
    def stage4(self) -> nn.Module | None:
        """The backbone's last stage (the DeepLab head trains a dilated copy of it), or None if not exposed."""
        for attr in ("layer4", "stage4", "res5"):
            m = getattr(self.backbone, attr, None)
            if isinstance(m, nn.Module):
                return m
        return None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = self.backbone
        if _is_torchvision_resnet(b) and not hasattr(b, "embed"):  # contrasting.encoders' ResNet has its own dict
            stem = b.relu(b.bn1(b.conv1(x)))
            s1 = b.layer1(b.maxpool(stem))
            s2 = b.layer2(s1)
            s3 = b.layer3(s2)
            s4 = b.layer4(s3)
            return {"stem": stem, "stage1": s1, "stage2": s2, "stage3": s3, "stage4": s4,
                    "embedding": torch.flatten(nn.functional.adaptive_avg_pool2d(s4, 1), 1)}
        return _normalise(b(x), self.name)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for key, t in self.backbone.state_dict().items():
            h.update(key.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()


def _torchvision_supervised(arch: str) -> nn.Module:
    """torchvision's ImageNet-supervised ``arch`` from the torch hub cache (nothing is downloaded offline)."""
    import torchvision

    try:
        return torchvision.models.get_model(arch, weights="DEFAULT")
    except Exception as exc:  # any download failure gets the same explanation
        raise RuntimeError(f"encoder 'supervised': torchvision's ImageNet weights for {arch} are not in the "
                           f"torch hub cache ({torch.hub.get_dir()}) and cannot be fetched: {exc}") from exc


def load_encoder(spec: str | os.PathLike | nn.Module, *, arch: str | None = None, seed: int = 0,
                 device: str | torch.device = "cpu") -> FrozenEncoder:
    """Resolve ``spec`` (a checkpoint path, ``random[:arch]``, ``supervised[:arch]`` or a module) to a
    ``FrozenEncoder`` on ``device``. ``random`` initialises from ``seed`` (a cell's encoder is reproducible)."""
    if isinstance(spec, FrozenEncoder):
        return spec.to(device)
    if isinstance(spec, nn.Module):
        return FrozenEncoder(spec.to(device), type(spec).__name__)
    from contrasting.encoders import build_backbone, load_backbone, load_run_backbone

    spec = str(spec)
    kind, _, spec_arch = spec.partition(":")
    if kind == "supervised":
        backbone = _torchvision_supervised(spec_arch or arch or "resnet50")
    elif kind == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = build_backbone(spec_arch or arch or "resnet50")
    elif Path(spec).expanduser().is_dir():
        backbone, _ = load_run_backbone(Path(spec).expanduser())
    elif Path(spec).expanduser().is_file():
        try:
            backbone, _ = load_backbone(Path(spec).expanduser())
        except ValueError as exc:  # the package's strict LayoutError: the same error, naming the file
            if str(spec) in str(exc):
                raise
            try:
                named = type(exc)(f"encoder {spec}: {exc}")
            except TypeError:
                named = ValueError(f"encoder {spec}: {exc}")
            raise named from exc
    else:
        raise FileNotFoundError(f"encoder {spec!r}: not 'random', 'supervised', a run directory or a checkpoint file")
    return FrozenEncoder(backbone.to(device), spec)
