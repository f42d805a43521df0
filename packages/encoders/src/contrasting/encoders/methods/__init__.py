"""Pre-training methods: registry and builder. Each method is an nn.Module whose forward returns the loss.

    method = build_method("mocov2", build_backbone("resnet50"), {"queue_size": 16384})
    loss = method([query_view, key_view])

Registered: simclr, mocov1, mocov2, swav, supervised, random (``METHODS.names()``); the contract a
training loop follows is in ``_base``.
"""

from __future__ import annotations

from ..backbones import ResNet
from ..registry import Registry
from ._base import Method, check_views, encode_views
from .moco import MoCo, MoCoV1Config, MoCoV2Config
from .random_init import RandomConfig, RandomInit
from .simclr import SimCLR, SimCLRConfig
from .supervised import Supervised, SupervisedConfig
from .swav import SwAV, SwAVConfig

METHODS = Registry("method")


@METHODS.register("simclr", SimCLRConfig, paper="Chen et al., ICML 2020", origin="google-research/simclr")
def _simclr(config: SimCLRConfig, backbone: ResNet, process_group=None) -> SimCLR:
    return SimCLR(backbone, config, process_group)


@METHODS.register("mocov1", MoCoV1Config, paper="He et al., CVPR 2020", origin="facebookresearch/moco")
def _mocov1(config: MoCoV1Config, backbone: ResNet, process_group=None) -> MoCo:
    return MoCo(backbone, config, process_group)


@METHODS.register("mocov2", MoCoV2Config, paper="Chen et al., arXiv 2003.04297", origin="facebookresearch/moco")
def _mocov2(config: MoCoV2Config, backbone: ResNet, process_group=None) -> MoCo:
    return MoCo(backbone, config, process_group)


@METHODS.register("swav", SwAVConfig, paper="Caron et al., NeurIPS 2020", origin="facebookresearch/swav")
def _swav(config: SwAVConfig, backbone: ResNet, process_group=None) -> SwAV:
    return SwAV(backbone, config, process_group)


@METHODS.register("supervised", SupervisedConfig, paper="He et al., CVPR 2016", origin="this package")
def _supervised(config: SupervisedConfig, backbone: ResNet, process_group=None) -> Supervised:
    return Supervised(backbone, config, process_group)


@METHODS.register("random", RandomConfig, paper="Kotar et al., ICCV 2021 (baseline)", origin="this package")
def _random(config: RandomConfig, backbone: ResNet, process_group=None) -> RandomInit:
    return RandomInit(backbone, process_group)


def build_method(name: str, backbone: ResNet, config=None, *, process_group=None) -> Method:
    """Method ``name`` (``METHODS.names()``) around ``backbone``; ``config`` a config object, a dict or None.

    ``process_group``: the group whose ranks share negatives / Sinkhorn sums (None: this process alone).
    Unknown names and unknown config fields raise ``UnknownNameError`` listing the valid ones.
    """
    method = METHODS.build(name, config, backbone, process_group)
    method.registry_name = name
    return method


__all__ = [
    "METHODS", "Method", "build_method", "check_views", "encode_views",
    "SimCLR", "SimCLRConfig", "MoCo", "MoCoV1Config", "MoCoV2Config", "SwAV", "SwAVConfig",
    "Supervised", "SupervisedConfig", "RandomInit", "RandomConfig",
]
