"""sinkhorn: SwAV's equipartition Sinkhorn-Knopp, numerically stable, fused on GPUs, distributed-correct.

Scores s (B×K) = embeddings · prototypesᵀ, ε > 0. SwAV's algorithm (``sinkhorn_reference``) computes
Q = exp(s/ε), normalises its total, then alternates ``iterations`` times a per-prototype normalisation
(every prototype gets the same mass over the global batch) and a per-sample one (every sample's row
sums to 1). Only row and column factors ever multiply exp(s/ε), and the constants cancel, so

    Q_bk = exp(s_bk/ε + f_b + g_k),   g_k = −log Σ_b exp(s_bk/ε + f_b),   f_b = −log Σ_k exp(s_bk/ε + g_k)

(g then f, ``iterations`` times, f = 0 at the start): the assignment matrix is determined by a B-vector
and a K-vector of potentials. Every implementation keeps only those between passes and evaluates each
sum with a max shift (or an equivalent checked scaling), so any finite scores and any ε > 0 work, where
SwAV's exp(s/ε) overflows for unnormalised scores and underflows to 0/0 for small ε.

Backends ("auto": triton on CUDA, torch otherwise):

* "torch" (``sinkhorn_torch``): one exponential and 2·iterations matrix-vector products, falling back to
  log-domain row-block passes where underflow would cost accuracy; any device, float64.
* "triton" (``sinkhorn_triton``): 2·iterations streaming passes over the scores in base 2, the last one
  writing Q; only the potentials and per-split column partials live between passes.

Distributed (``process_group``): each rank passes its local samples; the per-prototype sums run over
every rank (all-reduced K-vectors), the per-sample sums are local, and each rank gets the rows of its
own samples — the same rows a single process computes on the concatenated batch:

    rank 0: samples [0, B₀)   rank 1: samples [B₀, B₀+B₁)   ...   Σ_b over all ranks, K shared

Q carries no gradient (SwAV's targets are constants): it is computed under ``torch.no_grad`` from the
detached scores, in float32 for half inputs and float64 for float64.
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .infonce import resolve_backend
from .sinkhorn_torch import sinkhorn_torch


def _triton_module():
    from . import sinkhorn_triton  # imported lazily: CPU-only installs may lack triton

    return sinkhorn_triton


def _sinkhorn_triton(scores, epsilon, iterations, process_group, keep):
    return _triton_module().sinkhorn_triton(scores, epsilon, iterations, process_group, keep)


# Dispatch table: backend name → solver(scores, epsilon, iterations, process_group, keep) → (Q, finite flag).
SOLVERS = {"torch": sinkhorn_torch, "triton": _sinkhorn_triton}


def check_scores(name: str, t, *, like: torch.Tensor | None = None, like_name: str = "") -> None:
    """``t`` is a non-empty (B, K) floating tensor; with ``like``: same device, dtype and K."""
    _checks.check_matrix(name, t, like=like, like_name=like_name, axes=("sample", "prototype", "K"))


def check_positive(name: str, value) -> float:
    """A finite real number > 0 (not a bool), returned as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float > 0, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite value > 0, got {value}")
    return float(value)


def check_iterations(name: str, value) -> int:
    """An int ≥ 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value}")
    return value


def raise_nonfinite(inputs: dict[str, torch.Tensor]) -> None:
    """Name the input with NaN/Inf; if every local input is finite, blame another rank or −Inf rows."""
    for name, t in inputs.items():
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains NaN or Inf; expected finite scores")
    names = ", ".join(inputs)
    raise ValueError(f"{names}: the result is not finite although these scores are: another rank of "
                     "process_group holds NaN or Inf scores, or the values overflow their dtype")


def solve(
    scores: torch.Tensor,
    epsilon: float,
    iterations: int,
    process_group,
    impl: str,
    keep: int,
    check_finite: bool,
    inputs: dict[str, torch.Tensor],
) -> torch.Tensor:
    """Q for the last ``keep`` rows of validated ``scores`` with backend ``impl``; raises on NaN/Inf input."""
    with torch.no_grad():
        q, finite = SOLVERS[impl](scores.detach(), epsilon, iterations, process_group, keep)
    if check_finite and not bool(finite):
        raise_nonfinite(inputs)
    return q


def sinkhorn(
    scores: torch.Tensor,
    *,
    epsilon: float = 0.05,
    iterations: int = 3,
    process_group=None,
    backend: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """SwAV's equipartition assignment Q (B, K) of scores (B, K): rows sum to 1, prototypes share the mass.

    ``epsilon`` is SwAV's ε (0.05), ``iterations`` its number of Sinkhorn iterations (3). With
    ``process_group`` B is this rank's batch and the per-prototype sums run over every rank (module
    docstring). Returns float32 for half inputs, without autograd history. ``check_finite`` raises a
    ValueError naming ``scores`` when it holds NaN, +Inf or a row or column of −Inf (one flag is read from
    the device); an isolated −Inf is an exact zero of Q.
    """
    check_scores("scores", scores)
    eps = check_positive("epsilon", epsilon)
    iters = check_iterations("iterations", iterations)
    impl = resolve_backend(backend, scores)
    return solve(scores, eps, iters, process_group, impl, scores.shape[0], check_finite, {"scores": scores})
