"""Shared case table for the InfoNCE-family tests: every entry point, its reference, and how to call both.

A case builds its inputs from a seed and sizes, calls the fused entry point and the float64
reference on the same values, and returns the loss and the gradients of (Σ_i w_i·loss_i) with an
upstream weight w ≠ 1, for every input that receives one (the queue never does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from contrasting.losses import REFERENCES


@dataclass(frozen=True)
class EntryPoint:
    name: str
    fused: object
    reference: object
    inputs: tuple[str, ...]  # names of the positional inputs that receive gradients
    kwargs: tuple[tuple[str, object], ...] = ()
    has_queue: bool = False
    rows_factor: int = 1  # per-row losses: N for info_nce/clip, 2N for nt_xent


ENTRY_POINTS = (
    EntryPoint("info_nce", *REFERENCES["info_nce"], ("query", "key")),
    EntryPoint("info_nce_moco", *REFERENCES["info_nce"], ("query", "key"), (("in_batch_negatives", False),),
               has_queue=True),
    EntryPoint("info_nce_queue_in_batch", *REFERENCES["info_nce"], ("query", "key"), has_queue=True),
    EntryPoint("nt_xent", *REFERENCES["nt_xent"], ("z1", "z2"), rows_factor=2),
    EntryPoint("clip_loss", *REFERENCES["clip_loss"], ("a", "b")),
)
BY_NAME = {e.name: e for e in ENTRY_POINTS}


def make_inputs(entry: EntryPoint, n: int, d: int, k: int, dtype: torch.dtype, seed: int, spread: float = 1.0):
    """Two aligned (n, d) matrices with correlated rows (so positives matter), and a (k, d) queue if used."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64) * spread
    b = a + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64) * spread
    queue = torch.randn(k, d, generator=g, dtype=torch.float64) * spread if entry.has_queue else None
    weights = torch.rand(n * entry.rows_factor, generator=g, dtype=torch.float64) + 0.5
    cast = lambda t: None if t is None else t.to(dtype)
    return cast(a), cast(b), cast(queue), weights


def run(fn, entry: EntryPoint, a, b, queue, weights, *, temperature, reduction, learn_temperature, **extra):
    """Loss value (the reduction asked for) and grads of Σ w_i·loss_i w.r.t. the inputs (and τ)."""
    a = a.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    tau = torch.tensor(temperature, dtype=torch.float64 if a.dtype == torch.float64 else torch.float32)
    if learn_temperature:
        tau.requires_grad_(True)
    tau_arg = tau if learn_temperature else temperature
    args = (a, b, queue) if entry.has_queue else (a, b)
    kwargs = dict(entry.kwargs, temperature=tau_arg, **extra)
    value = fn(*args, reduction=reduction, **kwargs)
    per_row = fn(*args, reduction="none", **kwargs)
    targets = [a, b] + ([tau] if learn_temperature else [])
    grads = torch.autograd.grad((per_row.double() * weights.to(per_row.device)).sum(), targets)
    return value.detach().double(), [g.double() for g in grads]
