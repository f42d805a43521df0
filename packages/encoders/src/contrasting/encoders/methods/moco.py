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
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from contrasting.losses import info_nce

from ..backbones import ResNet
from ._base import Method, check_views, world_size
from .heads import projection_mlp


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


@torch.no_grad()
def _all_gather(x: torch.Tensor, group) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts)


class MoCo(Method):
    """``loss = MoCo(backbone, config)([query_view, key_view])`` (see the module docstring)."""


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
        online = nn.ModuleDict({"backbone": self.backbone, "head": self.head})
        self.momentum_encoder = copy.deepcopy(online)
        self._momentum_names = buffers_from_parameters(self.momentum_encoder)
        g = torch.Generator().manual_seed(config.queue_seed)
        queue = F.normalize(torch.randn(config.queue_size, config.projection_dim, generator=g), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        online = dict(self.backbone.named_parameters(prefix="backbone"))
        online.update(self.head.named_parameters(prefix="head"))
        momentum = dict(self.momentum_encoder.named_buffers())
        return [momentum[n] for n in self._momentum_names], [online[n].detach() for n in self._momentum_names]

    @torch.no_grad()
    def on_train_start(self) -> None:
        """θ_k ← θ_q (MoCo's initialisation), after the query encoder is final on every rank."""
        keys, queries = self._pairs()
        torch._foreach_copy_(keys, queries)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """θ_k ← m·θ_k + (1 − m)·θ_q for the former parameters (not the BatchNorm running statistics)."""
        keys, queries = self._pairs()
        m = self.config.momentum
        torch._foreach_mul_(keys, m)
        torch._foreach_add_(keys, [q.to(k.dtype) for q, k in zip(queries, keys, strict=True)], alpha=1.0 - m)

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
