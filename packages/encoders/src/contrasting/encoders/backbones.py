"""ResNet backbones in torchvision's parameter layout that return multi-scale features.

    backbone = build_backbone("resnet50")                       # torchvision ResNet-50 without ``fc``
    feats = backbone(images)       # {"stem": (N,64,H/2,W/2), "layer1": (N,256,H/4,W/4), ...,
                                   #  "layer4": (N,2048,H/32,W/32), "pool": (N,2048)}
    backbone.embed(images)         # feats["pool"] only

The modules are torchvision's (``BasicBlock``, ``Bottleneck``) under torchvision's names (``conv1``,
``bn1``, ``layer1.0.conv1`` ...), so ``backbone.state_dict()`` is a torchvision state dict minus
``fc.*``, and torchvision checkpoints load strictly after dropping ``fc``. ``stem`` is the output of
conv1→bn1→relu, before the max-pool (the U-Net skip the pixel-wise heads use).

Options (``ResNetConfig``):

* ``small_stem``: for 32–64 px inputs (CIFAR-style, as in SimCLR's CIFAR experiments and solo-learn):
  conv1 is 3×3 stride 1 and there is no max-pool, so ``stem`` and ``layer1`` keep the input resolution.
  Same parameter names; conv1's weight is (width, 3, 3, 3) instead of (width, 3, 7, 7).
* ``width``: channels of the stem and of the first stage's 3×3 convolutions (torchvision: 64; SwAV's
  ResNet-50-w2 has 128). Tests use a narrow ResNet-18 (width 16) to stay fast on a CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from .registry import Registry

FEATURES = ("stem", "layer1", "layer2", "layer3", "layer4", "pool")
"""Keys of the dict a backbone returns, from the highest resolution to the pooled embedding."""

BACKBONES = Registry("backbone")


@dataclass
class ResNetConfig:
    """Options of a registered ResNet (see the module docstring)."""

    small_stem: bool = False
    width: int = 64
    zero_init_residual: bool = False

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width: expected an int >= 1, got {self.width!r}")


class ResNet(nn.Module):
    """A torchvision-layout ResNet trunk (no ``fc``) whose forward returns every stage's features.

    ``forward(x) -> OrderedDict`` with the keys of ``FEATURES``; ``embed(x)`` returns only ``pool``.
    ``channels`` maps each feature key to its channel count; ``embed_dim`` is ``channels["pool"]``.
    ``name`` and ``config`` record how it was built (the export stores them).
    """

    def __init__(self, name: str, block: type[nn.Module], layers: tuple[int, int, int, int], config: ResNetConfig):
        super().__init__()
        self.name, self.config = name, config
        width = config.width
        self.inplanes = width
        if config.small_stem:
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        expansion = block.expansion
        self.channels = {"stem": width, "layer1": width * expansion, "layer2": width * 2 * expansion,
                         "layer3": width * 4 * expansion, "layer4": width * 8 * expansion,
                         "pool": width * 8 * expansion}
        self.embed_dim = self.channels["pool"]
        self._init_weights(config.zero_init_residual)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        # torchvision.models.resnet.ResNet._make_layer with groups=1, dilation=1, BatchNorm2d
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's initialisation: He (fan-out) for convolutions, BN at identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Features of a (N, 3, H, W) batch: stem (before the max-pool), each stage, and the (N, C) pooled embedding."""
        out = OrderedDict()
        x = self.relu(self.bn1(self.conv1(x)))
        out["stem"] = x
        x = self.layer1(self.maxpool(x))
        out["layer1"] = x
        x = self.layer2(x)
        out["layer2"] = x
        x = self.layer3(x)
        out["layer3"] = x
        x = self.layer4(x)
        out["layer4"] = x
        out["pool"] = torch.flatten(self.avgpool(x), 1)
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, embed_dim) global-average-pooled embedding of a (N, 3, H, W) batch."""
        return self.forward(x)["pool"]

    def describe(self) -> dict:
        """``{"backbone": name, **config}``: what ``build_backbone`` needs to rebuild this architecture."""
        return {"backbone": self.name, "small_stem": self.config.small_stem, "width": self.config.width}


@BACKBONES.register("resnet18", ResNetConfig, paper="He et al., CVPR 2016", origin="torchvision.models.resnet18")
def resnet18(config: ResNetConfig) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2): 512-d embedding at width 64."""
    return ResNet("resnet18", BasicBlock, (2, 2, 2, 2), config)


@BACKBONES.register("resnet50", ResNetConfig, paper="He et al., CVPR 2016", origin="torchvision.models.resnet50")
def resnet50(config: ResNetConfig) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3): 2048-d embedding at width 64 (the study's encoders)."""
    return ResNet("resnet50", Bottleneck, (3, 4, 6, 3), config)


def build_backbone(name: str, config: ResNetConfig | dict | None = None, **overrides) -> ResNet:
    """A freshly initialised backbone ``name`` (``BACKBONES.names()``); ``config``/``overrides`` set its options.

    Unknown names and unknown option names raise ``UnknownNameError`` listing the valid ones.
    """
    if overrides:
        if config is not None and not isinstance(config, dict):
            raise TypeError("build_backbone: pass either a config object or keyword overrides, not both")
        config = {**(config or {}), **overrides}
    return BACKBONES.build(name, config)
