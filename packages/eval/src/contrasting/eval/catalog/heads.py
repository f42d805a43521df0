"""Trainable heads on frozen features (``cell.encoder.FrozenEncoder``'s dict: stem, stage1..4, embedding).

Widths come from the encoder (``encoder.widths``): ResNet-18 64/64/128/256/512, ResNet-50 64/256/512/1024/2048
(stem/stage1/stage2/stage3/stage4). A feature of another width than the head was built for raises a
``ValueError`` naming the head and the encoder.

* ``LinearHead``: z = W·e + b on the pooled embedding e ∈ R^D.
* ``MLPHead``: k embeddings (frames of a clip, the two views of an egomotion pair) concatenated,
  z = W₂·ReLU(W₁·[e_1; …; e_k] + b₁) + b₂, hidden 512 (the study's 6·2048 → 512 → C).
* ``UNetDecoder`` (the study's "U-Net-like" decoder): five stages of 3×3 conv → PixelShuffle(×f) →
  LeakyReLU (the last without activation), channels w4 → w3 → w2 → w1 → w0 → out (2048 → 1024 → 512 →
  256 → 64 → out for ResNet-50); after stages 1–4 the skip from stage 3, 2, 1 and the stem is added, resized
  bilinearly when its size differs (odd inputs). f is 2 for a standard ResNet; the factors follow the
  encoder's feature strides (``upsampling_factors``: 1 where a small stem keeps the resolution), so the output
  is at the input resolution (for inputs divisible by the deepest stride).
* ``TwoFrameUNetDecoder``: per scale, the two frames' features concatenated and fused by a 1×1 conv
  (2w → w), then the U-Net decoder.
* ``DeepLabHead`` (DeepLabv3+-style): a trainable copy of the encoder's stage 4 with its stride replaced by
  dilation 2 (applied to stage 3, output stride 16), ASPP (1×1, 3×3 at rates 6/12/18, image pooling; 256
  channels each, projected to 256), and a decoder that concatenates 48 channels from stage 1, two 3×3
  convs and a 1×1 classifier (output stride 4; the protocol upsamples to the target size).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from contrasting.eval.catalog.tasks import TaskSpec

MAP_KEYS = ("stem", "stage1", "stage2", "stage3", "stage4")


def _check_width(head: str, encoder: str, key: str, expected: int, got: int) -> None:
    if expected != got:
        raise ValueError(f"head {head!r}: expects {key} features with {expected} channels, but encoder {encoder!r} "
                         f"gives {got}")


class LinearHead(nn.Module):
    """Linear classifier on the pooled embedding: input (N, D) or (N, 1, D), output (N, C)."""

    def __init__(self, in_dim: int, num_classes: int, encoder: str = "?"):
        super().__init__()
        self.in_dim, self.encoder = in_dim, encoder
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if e.dim() == 3 and e.shape[1] == 1:
            e = e[:, 0]
        if e.dim() != 2:
            raise ValueError(f"head 'linear': expects (N, D) embeddings, encoder {self.encoder!r} gives "
                             f"{tuple(e.shape)}")
        _check_width("linear", self.encoder, "embedding", self.in_dim, e.shape[1])
        return self.fc(e)


class MLPHead(nn.Module):
    """MLP over k embeddings: input (N, k, D), output (N, C)."""

    def __init__(self, in_dim: int, frames: int, num_classes: int, hidden: int = 512, encoder: str = "?"):
        super().__init__()
        self.in_dim, self.frames, self.encoder = in_dim, frames, encoder
        self.net = nn.Sequential(nn.Linear(frames * in_dim, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, num_classes))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if e.dim() != 3 or e.shape[1] != self.frames:
            raise ValueError(f"head 'mlp': expects (N, {self.frames}, D) embeddings, encoder {self.encoder!r} gives "
                             f"{tuple(e.shape)}")
        _check_width("mlp", self.encoder, "embedding", self.in_dim, e.shape[2])
        return self.net(e.flatten(1))


def _up_stage(cin: int, cout: int, act: bool, factor: int = 2) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout * factor * factor, 3, padding=1)] + ([nn.PixelShuffle(factor)] if factor > 1 else [])
    return nn.Sequential(*layers, nn.LeakyReLU(inplace=True)) if act else nn.Sequential(*layers)


STANDARD_STRIDES = {"stem": 2, "stage1": 4, "stage2": 8, "stage3": 16, "stage4": 32}


def upsampling_factors(strides: dict[str, int] | None) -> list[int]:
    """The U-Net's five upsampling factors from the encoder's feature strides: stage 4 → 3 → 2 → 1 → stem →
    input, each the ratio of consecutive strides (all 2 for a standard ResNet; 2, 2, 2, 1, 1 for the small stem,
    whose stem and stage 1 keep the input resolution)."""
    s = strides or STANDARD_STRIDES
    chain = [s["stage4"], s["stage3"], s["stage2"], s["stage1"], s["stem"], 1]
    return [max(1, round(a / b)) for a, b in zip(chain[:-1], chain[1:], strict=True)]


class UNetDecoder(nn.Module):
    """The study's U-Net-like decoder: features dict → (N, out, H, W) (see the module docstring)."""

    SKIPS = ("stage3", "stage2", "stage1", "stem")

    def __init__(self, widths: dict[str, int], out_channels: int, encoder: str = "?", name: str = "unet",
                 strides: dict[str, int] | None = None):
        super().__init__()
        self.widths, self.encoder, self.name = {k: widths[k] for k in MAP_KEYS}, encoder, name
        chans = [widths["stage4"], widths["stage3"], widths["stage2"], widths["stage1"], widths["stem"], out_channels]
        factors = upsampling_factors(strides)
        self.stages = nn.ModuleList(_up_stage(chans[i], chans[i + 1], act=i < 4, factor=factors[i])
                                    for i in range(5))

    def check(self, feats: dict[str, torch.Tensor]) -> None:
        for key, w in self.widths.items():
            if key not in feats:
                raise ValueError(f"head {self.name!r}: needs {key} features, encoder {self.encoder!r} gives none")
            _check_width(self.name, self.encoder, key, w, feats[key].shape[1])

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check(feats)
        x = feats["stage4"]
        for stage, skip in zip(self.stages[:4], self.SKIPS, strict=True):
            x = stage(x)
            s = feats[skip].to(x.dtype)
            if s.shape[-2:] != x.shape[-2:]:
                s = F.interpolate(s, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = x + s
        return self.stages[4](x)


class TwoFrameUNetDecoder(nn.Module):
    """U-Net decoder over two frames: input a pair of feature dicts, output (N, out, H, W)."""

    def __init__(self, widths: dict[str, int], out_channels: int, encoder: str = "?",
                 strides: dict[str, int] | None = None):
        super().__init__()
        self.encoder = encoder
        self.fuse = nn.ModuleDict({k: nn.Conv2d(2 * widths[k], widths[k], 1) for k in MAP_KEYS})
        self.decoder = UNetDecoder(widths, out_channels, encoder, name="unet2", strides=strides)

    def forward(self, pair) -> torch.Tensor:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"head 'unet2': expects the features of two frames, encoder {self.encoder!r} gave "
                             f"{type(pair).__name__}")
        a, b = pair
        self.decoder.check(a)
        self.decoder.check(b)
        return self.decoder({k: self.fuse[k](torch.cat([a[k], b[k]], dim=1)) for k in MAP_KEYS})


def _conv_bn_relu(cin: int, cout: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def dilate_stage(stage: nn.Module, dilation: int = 2) -> nn.Module:
    """A trainable copy of a ResNet stage with stride 2 replaced by ``dilation`` in every 3×3 conv (padding
    kept 'same'), so that it keeps its input's resolution."""
    stage = copy.deepcopy(stage)
    for m in stage.modules():
        if isinstance(m, nn.Conv2d):
            if m.stride != (1, 1):
                m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation, m.padding = (dilation, dilation), (dilation, dilation)
    return stage.requires_grad_(True).train()


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three dilated 3×3 (rates), image pooling; concatenated → 1×1."""

    def __init__(self, cin: int, cout: int = 256, rates=(6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(cin, cout)] + [_conv_bn_relu(cin, cout, 3, r) for r in rates])
        # the pooled branch has no BatchNorm: a 1×1 map of batch 1 would break its training statistics
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = _conv_bn_relu(cout * (len(rates) + 2), cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabHead(nn.Module):
    """DeepLabv3+-style head: features dict → (N, C, H/4, W/4) logits (see the module docstring)."""

    def __init__(self, widths: dict[str, int], stage4: nn.Module | None, num_classes: int, encoder: str = "?"):
        super().__init__()
        if stage4 is None:
            raise ValueError(f"head 'deeplab': needs the encoder's stage-4 module to copy, encoder {encoder!r} does "
                             "not expose one (layer4/stage4)")
        self.encoder, self.widths = encoder, {k: widths[k] for k in ("stage1", "stage3", "stage4")}
        self.stage4 = dilate_stage(stage4)
        first = next(m for m in self.stage4.modules() if isinstance(m, nn.Conv2d))
        _check_width("deeplab", encoder, "stage3", first.in_channels, widths["stage3"])
        self.aspp = ASPP(widths["stage4"])
        self.low = _conv_bn_relu(widths["stage1"], 48)
        self.decoder = nn.Sequential(_conv_bn_relu(256 + 48, 256, 3), _conv_bn_relu(256, 256, 3),
                                     nn.Conv2d(256, num_classes, 1))

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        for key in ("stage1", "stage3"):
            _check_width("deeplab", self.encoder, key, self.widths[key], feats[key].shape[1])
        x = self.aspp(self.stage4(feats["stage3"]))
        low = self.low(feats["stage1"])
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(torch.cat([x, low], dim=1))


def out_channels(spec: TaskSpec, num_classes: int | None) -> int:
    """Output channels of a task's head: C for class/mask targets, 1 for binary, depth and scalar, 2 for flow."""
    if spec.target in ("class", "mask"):
        if not num_classes:
            raise ValueError(f"task {spec.name!r}: number of classes unknown")
        return num_classes
    return {"binary": 1, "depth": 1, "scalar": 1, "flow": 2}[spec.target]


HEADS: dict[str, Callable] = {
    "linear": lambda spec, enc, c: LinearHead(enc.widths["embedding"] * spec.pooling ** 2, c, enc.name),
    "mlp": lambda spec, enc, c: MLPHead(enc.widths["embedding"] * spec.pooling ** 2, spec.frames, c,
                                        encoder=enc.name),
    "unet": lambda spec, enc, c: UNetDecoder(enc.widths, c, enc.name, strides=getattr(enc, "strides", None)),
    "unet2": lambda spec, enc, c: TwoFrameUNetDecoder(enc.widths, c, enc.name, strides=getattr(enc, "strides", None)),
    "deeplab": lambda spec, enc, c: DeepLabHead(enc.widths, enc.stage4, c, enc.name),
}


def build_head(spec: TaskSpec, encoder, num_classes: int | None = None) -> nn.Module:
    """The head named by ``spec.head`` for ``encoder`` (anything with ``widths``, ``name`` and, for DeepLab,
    ``stage4``), with ``out_channels(spec, num_classes)`` outputs."""
    if spec.head not in HEADS:
        raise ValueError(f"task {spec.name!r}: unknown head {spec.head!r}; known: {sorted(HEADS)}")
    return HEADS[spec.head](spec, encoder, out_channels(spec, num_classes or spec.num_classes))
