"""MoCo v1 (He et al., CVPR 2020) and v2 (Chen et al., arXiv 2003.04297): momentum encoder and a queue of keys.

Query encoder f_q = head ∘ backbone (optimised), key encoder f_k (a momentum copy, never optimised):

    θ_k ← m·θ_k + (1 − m)·θ_q                       (``before_step``: once per optimizer step)
    q = normalize(f_q(x_q)),  k = normalize(f_k(x_k))
    L = mean_i [ −log exp(q_i·k_i/τ) / (exp(q_i·k_i/τ) + Σ_j exp(q_i·queue_j/τ)) ]
      = info_nce(q, k, queue, in_batch_negatives=False)      (``contrasting.losses``)
    queue ← enqueue(all_gather(k))                    (FIFO of the last K keys of every rank)

v1: linear head to 128-d, τ = 0.07; v2: MLP head (2048-2048-128, no BN), τ = 0.2 (and stronger
augmentation, a data recipe). m = 0.999, K = 65536 in both papers.

Where the state lives: the key encoder's weights are *buffers* (a copy of the query encoder whose
parameters were turned into buffers), so DeepSpeed never optimises or partitions them, but they are in
the state dict and with it in every checkpoint; ``queue`` (K × D, rows L2-normalised) and ``queue_ptr``
likewise. The key encoder's BatchNorm runs in training mode with its own running statistics, as in MoCo.

Distributed: keys are gathered from every rank before they enter the queue, so every rank holds the same
queue (it starts from the same seeded random unit vectors). With ``shuffle_bn`` (MoCo's shuffling BN) and
more than one rank, the key batch is shuffled across ranks before the key encoder and unshuffled after, so
BatchNorm statistics of a key never include its own query's image; on one process it has no effect.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from contrasting.losses import info_nce

from ..backbones import ResNet
from ._base import Method, check_views, world_size
from .heads import projection_mlp
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class MoCoV2Config:
    """MoCo v2 hyper-parameters (the paper's ImageNet values)."""

    projection_dim: int = 128
    mlp: bool = True
    queue_size: int = 65536
    momentum: float = 0.999
    temperature: float = 0.2
    shuffle_bn: bool = True
    queue_seed: int = 0


@dataclass
class MoCoV1Config(MoCoV2Config):
    """MoCo v1: linear head and τ = 0.07."""

    mlp: bool = False
    temperature: float = 0.07


def buffers_from_parameters(module: nn.Module) -> list[str]:
    """Turn every parameter of ``module`` into a buffer of the same name (in place); returns their names.

    The module computes exactly as before, but its weights are no longer ``parameters()``: optimizers,
    DeepSpeed's ZeRO partitioning and gradient reduction never see them.
    """
    names = []
    for prefix, sub in module.named_modules():
        for name, p in list(sub._parameters.items()):
            if p is None:
                continue
            del sub._parameters[name]
            sub.register_buffer(name, p.detach().clone())
            names.append(f"{prefix}.{name}" if prefix else name)
    return names


def momentum_copy(online: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of ``online`` whose parameters are buffers (``buffers_from_parameters``), and their names."""
    target = copy.deepcopy(online)
    return target, buffers_from_parameters(target)


@torch.no_grad()
def momentum_update_(online: nn.Module, target: nn.Module, names: list[str], m: float) -> None:
    """θ_t ← m·θ_t + (1 − m)·θ_o over the former parameters ``names`` of ``target`` (``momentum_copy``), in place
    (m = 0 copies). BatchNorm running statistics keep their own."""
    source = dict(online.named_parameters())
    buffers = dict(target.named_buffers())
    targets = [buffers[n] for n in names]
    torch._foreach_mul_(targets, m)
    torch._foreach_add_(targets, [source[n].detach().to(t.dtype) for n, t in zip(names, targets, strict=True)],
                        alpha=1.0 - m)


@torch.no_grad()
def _all_gather(x: torch.Tensor, group) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts)


class MoCo(Method):
    """``loss = MoCo(backbone, config)([query_view, key_view])`` (see the module docstring)."""

    @property
    def online(self) -> nn.ModuleDict:
        """The query encoder as the momentum encoder's twin: {"backbone", "head"}."""
        return nn.ModuleDict({"backbone": self.backbone, "head": self.head})


    def __init__(self, backbone: ResNet, config: MoCoV2Config, process_group=None):
        super().__init__(backbone, process_group)
        if config.queue_size < 1:
            raise ValueError(f"queue_size: expected an int >= 1, got {config.queue_size}")
        if not 0.0 <= config.momentum <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1], got {config.momentum}")
        self.config = config
        dim = backbone.embed_dim
        self.head = (projection_mlp(dim, dim, config.projection_dim, batch_norm=False) if config.mlp
                     else nn.Linear(dim, config.projection_dim))
        self.momentum_encoder, self._momentum_names = momentum_copy(self.online)
        g = torch.Generator().manual_seed(config.queue_seed)
        queue = F.normalize(torch.randn(config.queue_size, config.projection_dim, generator=g), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def on_train_start(self) -> None:
        """θ_k ← θ_q (MoCo's initialisation), after the query encoder is final on every rank."""
        momentum_update_(self.online, self.momentum_encoder, self._momentum_names, 0.0)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """θ_k ← m·θ_k + (1 − m)·θ_q for the former parameters (not the BatchNorm running statistics)."""
        momentum_update_(self.online, self.momentum_encoder, self._momentum_names, self.config.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write (B, D) keys at ``queue_ptr`` (wrapping around) and advance it: a FIFO of the last K keys."""
        k = keys.detach().to(self.queue.dtype)
        size = self.queue.shape[0]
        if k.shape[0] > size:
            k = k[-size:]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(k.shape[0], device=self.queue.device) + ptr) % size
        self.queue[idx] = k
        self.queue_ptr.fill_((ptr + k.shape[0]) % size)

    def _encode_keys(self, x: torch.Tensor) -> torch.Tensor:
        encoder = self.momentum_encoder
        group = self.process_group
        if not (self.config.shuffle_bn and world_size(group) > 1):
            return F.normalize(encoder["head"](encoder["backbone"].embed(x)).float(), dim=1)
        # MoCo's shuffling BN: shuffle the global key batch across ranks, encode, unshuffle.
        b, rank = x.shape[0], dist.get_rank(group)
        x_all = _all_gather(x, group)
        perm = torch.randperm(x_all.shape[0], device=x.device)
        dist.broadcast(perm, src=dist.get_global_rank(group, 0), group=group)
        k = encoder["head"](encoder["backbone"].embed(x_all[perm[rank * b:(rank + 1) * b]]))
        k_all = _all_gather(k, group)
        return F.normalize(k_all[torch.argsort(perm)[rank * b:(rank + 1) * b]].float(), dim=1)

    def before_step(self, set_param) -> None:
        """The momentum update, once per optimizer step before its first forward (MoCo: as the forward starts)."""
        self.momentum_update()

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """InfoNCE of the query view's projection against the key view's momentum projection and the queue.

        In training mode the keys are enqueued after the loss is computed.
        """
        x_q, x_k = check_views(views, min_views=2, max_views=2)
        q = F.normalize(self.head(self.backbone.embed(x_q)).float(), dim=1)
        with torch.no_grad():
            k = self._encode_keys(x_k)
        # The queue is cloned: the loss's backward recomputes from it, and enqueue() overwrites it in place.
        loss = info_nce(q, k, self.queue.clone(), temperature=self.config.temperature, in_batch_negatives=False,
                        check_finite=False)
        if self.training:
            self.enqueue(_all_gather(k, self.process_group) if world_size(self.process_group) > 1 else k)
        return loss


# The papers' settings (lr per 256 images). MoCo v1 used a step schedule (/10 at epochs 120, 160); cosine here, as v2.
MOCO_OPTIM = {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "momentum": 0.9}


def _short_run(run: ShortRun) -> dict:
    # a queue of at most 4 batches, shorter than an epoch of a small corpus (a query must not meet its own key of the
    # previous epoch among its negatives); m 0.99 so the key encoder follows within a few hundred steps; SGD at 0.1;
    # tau 0.2, v2's own (250 steps on the demo's shapes-lt: final loss 89 % of ln 513 at tau 0.2, 92 % at 0.1 and
    # 94 % at 0.07, whose losses rise over the last fifth of the cosine schedule)
    return {"method": {"queue_size": min(512, 4 * run.batch_size), "momentum": 0.99, "temperature": 0.2},
            "optim": {"lr": 0.1, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs},
            "data": {"options": {"scale": [0.3, 1.0], "blur": False}}}


def _chance_loss(options, batch_size: int) -> float:
    return math.log(int(options.get("queue_size", MoCoV2Config.queue_size)) + 1)  # the positive and the queue


MOCOV1_SPEC = MethodSpec("MoCoV1", optim=MOCO_OPTIM, recipe="moco_v1", short_run=_short_run, chance_loss=_chance_loss)
MOCOV2_SPEC = MethodSpec("MoCoV2", optim=MOCO_OPTIM, recipe="moco_v2", short_run=_short_run, chance_loss=_chance_loss)


@register_method("mocov1", MoCoV1Config, MOCOV1_SPEC, paper="He et al., CVPR 2020", origin="facebookresearch/moco")
def _mocov1(config: MoCoV1Config, backbone: ResNet, process_group=None) -> MoCo:
    return MoCo(backbone, config, process_group)


@register_method("mocov2", MoCoV2Config, MOCOV2_SPEC, paper="Chen et al., arXiv 2003.04297",
                 origin="facebookresearch/moco")
def _mocov2(config: MoCoV2Config, backbone: ResNet, process_group=None) -> MoCo:
    return MoCo(backbone, config, process_group)
