"""Optimizers (SGD, LARS, AdamW), parameter groups and the warmup + cosine schedule of the papers.

Learning rates are given per 256 images and scaled linearly with the global batch
(lr_peak = lr × batch_global / 256; SimCLR, MoCo and SwAV all state their rates this way). The schedule
is a pure function of the optimizer step, so a resumed run continues it from its restored step:

    lr(s) = lr_peak · (s + 1) / W                                             s < W (linear warmup)
    lr(s) = lr_end + ½ (lr_peak − lr_end) (1 + cos(π (s − W) / (S − W)))      W ≤ s < S,   lr_end = r · lr_peak

with W warmup steps, S total steps, r = ``final_lr_ratio``. ``apply_schedule`` writes it into every
parameter group each step; a group with ``frozen_steps`` = n gets lr 0 and weight decay 0 while s < n.

Parameter groups: biases and normalisation weights (every parameter with ndim ≤ 1) go to a group without
weight decay and without LARS adaptation when ``exclude_bias_and_norm`` (SimCLR's LARS), else they are
treated like the weights (SwAV's LARC). ``Method.group_options()`` splits off groups by name prefix.

LARS (You et al. 2017, as in SimCLR): per parameter tensor w with gradient g,
    d = g + λ·w,   d ← η·‖w‖/‖d‖ · d (when both norms are > 0),   v ← μ·v + d,   w ← w − lr·v.
It needs whole-tensor norms, so it cannot run on ZeRO's flattened partitions (``check_zero_stage``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry

OPTIMIZERS = Registry("optimizer")


@dataclass
class OptimizerConfig:
    """Fields shared by every optimizer: lr per 256 images, weight decay, schedule and grouping options."""

    lr: float = 0.1
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    final_lr_ratio: float = 0.0
    exclude_bias_and_norm: bool = False
    scale_lr_with_batch: bool = True


@dataclass
class SGDConfig(OptimizerConfig):
    """SGD with momentum (MoCo: lr 0.03, weight decay 1e-4, momentum 0.9)."""

    lr: float = 0.03
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class LARSConfig(OptimizerConfig):
    """LARS (SimCLR: lr 0.3 per 256, weight decay 1e-6, η = 0.001, 10 warmup epochs, biases/BN excluded)."""

    lr: float = 0.3
    weight_decay: float = 1e-6
    momentum: float = 0.9
    eta: float = 0.001
    warmup_epochs: float = 10.0
    exclude_bias_and_norm: bool = True


@dataclass
class AdamWConfig(OptimizerConfig):
    """AdamW (not used by the papers here; for experiments)."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    exclude_bias_and_norm: bool = True

    def __post_init__(self):
        self.betas = tuple(self.betas)


class LARS(torch.optim.Optimizer):
    """LARS with momentum (module docstring); groups with ``lars_adapt=False`` take plain SGD-momentum steps."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS: expected lr, momentum, weight_decay >= 0 and eta > 0, got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}, eta={eta}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars_adapt=True))

    @torch.no_grad()
    def step(self, closure=None):
        """One LARS update of every parameter with a gradient; returns the closure's loss, if any."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad.clone()
                if group["lars_adapt"]:
                    w_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    trust = torch.where((w_norm > 0) & (d_norm > 0), group["eta"] * w_norm / d_norm,
                                        torch.ones_like(w_norm))
                    d.mul_(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


@OPTIMIZERS.register("sgd", SGDConfig, paper="MoCo (He et al. 2020)", origin="torch.optim.SGD")
def _sgd(config: SGDConfig, groups: list[dict]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay)


@OPTIMIZERS.register("lars", LARSConfig, paper="You et al. 2017; SimCLR; SwAV", origin="this package")
def _lars(config: LARSConfig, groups: list[dict]) -> torch.optim.Optimizer:
    return LARS(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, eta=config.eta)


@OPTIMIZERS.register("adamw", AdamWConfig, paper="Loshchilov & Hutter 2019", origin="torch.optim.AdamW")
def _adamw(config: AdamWConfig, groups: list[dict]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


def param_groups(model: nn.Module, config: OptimizerConfig, prefix_options: dict[str, dict] | None = None
                 ) -> list[dict]:
    """Trainable parameters of ``model`` split into groups (module docstring); every group carries
    ``name``, ``base_weight_decay``, ``lars_adapt`` and ``frozen_steps``. Empty groups are dropped."""
    prefix_options = prefix_options or {}
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((pre for pre in prefix_options if name.startswith(pre)), "")
        plain = config.exclude_bias_and_norm and p.ndim <= 1
        key = (prefix, plain)
        if key not in groups:
            wd = 0.0 if plain else config.weight_decay
            groups[key] = {"name": (prefix.rstrip(".") or "default") + ("/no_decay" if plain else ""),
                           "params": [], "weight_decay": wd, "base_weight_decay": wd, "lars_adapt": not plain,
                           "frozen_steps": 0, **prefix_options.get(prefix, {})}
        groups[key]["params"].append(p)
    return list(groups.values())


def build_optimizer(name: str, model: nn.Module, config=None, prefix_options: dict[str, dict] | None = None
                    ) -> tuple[torch.optim.Optimizer, OptimizerConfig]:
    """Optimizer ``name`` (``OPTIMIZERS.names()``) over ``param_groups(model, ...)``; returns it and its config.

    The lr given to the optimizer is a placeholder: ``apply_schedule`` sets every group's lr before each step.
    """
    entry = OPTIMIZERS.get(name)
    if config is None:
        config = entry.config()
    elif isinstance(config, dict):
        config = entry.config(**config)
    groups = param_groups(model, config, prefix_options)
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    return entry.builder(config, groups), config


@dataclass(frozen=True)
class Schedule:
    """Warmup + cosine learning rate as a function of the optimizer step (module docstring)."""

    peak_lr: float
    total_steps: int
    warmup_steps: int = 0
    final_lr_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based); steps past the end keep the final value."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        end = self.final_lr_ratio * self.peak_lr
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        return end + 0.5 * (self.peak_lr - end) * (1.0 + math.cos(math.pi * t))


def make_schedule(config: OptimizerConfig, *, global_batch: int, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The schedule of ``config`` for a run of ``total_steps`` steps of ``global_batch`` images."""
    peak = config.lr * global_batch / 256 if config.scale_lr_with_batch else config.lr
    warmup = min(total_steps, round(config.warmup_epochs * steps_per_epoch))
    return Schedule(peak_lr=peak, total_steps=total_steps, warmup_steps=warmup, final_lr_ratio=config.final_lr_ratio)


def apply_schedule(groups: list[dict], schedule: Schedule, step: int) -> float:
    """Write lr(step) and the weight decay into every group (0 and 0 for groups still frozen); returns lr(step)."""
    lr = schedule(step)
    for g in groups:
        frozen = step < g.get("frozen_steps", 0)
        g["lr"] = 0.0 if frozen else lr
        g["weight_decay"] = 0.0 if frozen else g.get("base_weight_decay", g.get("weight_decay", 0.0))
    return lr


def check_zero_stage(optimizer_name: str, zero_stage: int) -> None:
    """ZeRO stages 0–2 only, and LARS only without ZeRO partitioning (its per-tensor norms need whole tensors)."""
    if zero_stage not in (0, 1, 2):
        raise ValueError(f"zero_stage: expected 0, 1 or 2, got {zero_stage!r} (stage 3 breaks with the "
                         "momentum encoder and multi-crop forwards: DeepSpeed issues #5321, #2056)")
    if optimizer_name == "lars" and zero_stage > 0:
        raise ValueError("zero_stage: LARS computes a trust ratio per parameter tensor, which ZeRO stages >= 1 "
                         "flatten into partitions; use zero_stage=0 with LARS (ResNet optimizer states are small)")
