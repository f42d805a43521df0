"""Pre-training methods: registry and builder. Each method is an nn.Module whose forward returns the loss.

    method = build_method("mocov2", build_backbone("resnet50"), {"queue_size": 16384})
    loss = method([query_view, key_view])

Registered: simclr, mocov1, mocov2, swav, byol, pirl, supervised, random (``METHODS.names()``), each in its own
file with its ``MethodSpec`` (``spec``); the contract a training loop follows is in ``_base``. Adding a method: one
file that defines the module and registers it with ``register_method``, and its import below.
"""

from __future__ import annotations

from ..backbones import ResNet
from ._base import Method, check_views, encode_views
from .byol import BYOL, BYOLConfig
from .moco import MoCo, MoCoV1Config, MoCoV2Config
from .pirl import PIRL, PIRLConfig
from .random_init import RandomConfig, RandomInit
from .simclr import SimCLR, SimCLRConfig
from .spec import METHODS, MethodSpec, ShortRun, method_spec, methods_with_role, register_method
from .supervised import Supervised, SupervisedConfig
from .swav import SwAV, SwAVConfig


def build_method(name: str, backbone: ResNet, config=None, *, process_group=None) -> Method:
    """Method ``name`` (``METHODS.names()``) around ``backbone``; ``config`` a config object, a dict or None.

    ``process_group``: the group whose ranks share negatives / Sinkhorn sums (None: this process alone).
    Unknown names and unknown config fields raise ``UnknownNameError`` listing the valid ones.
    """
    method = METHODS.build(name, config, backbone, process_group)
    method.registry_name = name
    return method


__all__ = [
    "METHODS", "Method", "MethodSpec", "ShortRun", "build_method", "check_views", "encode_views", "method_spec",
    "methods_with_role", "register_method",
    "SimCLR", "SimCLRConfig", "MoCo", "MoCoV1Config", "MoCoV2Config", "SwAV", "SwAVConfig",
    "Supervised", "SupervisedConfig", "RandomInit", "RandomConfig", "BYOL", "BYOLConfig", "PIRL", "PIRLConfig",
]
