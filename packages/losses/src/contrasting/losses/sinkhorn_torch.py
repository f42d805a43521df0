"""PyTorch backend of the SwAV Sinkhorn (stable, float64-capable) and of SwAV's soft-target cross-entropy.

Math (shared with ``sinkhorn_triton``). Scores s (B×K, B samples over every rank, K prototypes), ε > 0,
a_bk = s_bk/ε. SwAV's iteration (``sinkhorn_reference``) only ever multiplies rows and columns of
exp(a) by positive factors, and the constants 1/K, 1/B and the initial total normalisation cancel
against the next normalisation in the other direction, so after t iterations

    Q_bk = exp(a_bk + f_b + g_k)        with potentials (log scalings)
    g_k  = −log Σ_b exp(a_bk + f_b)     (prototype pass, f = 0 before the first one)
    f_b  = −log Σ_k exp(a_bk + g_k)     (sample pass; makes every row of Q sum to 1)

which is the reference's result in exact arithmetic. With a process group the prototype sums run over
every rank's samples (an all-reduce of K-vectors); the sample pass is local.

Two evaluations of that recursion, both stable for every finite input and any ε > 0:

* ``sinkhorn_scaling`` (the default, fast on CPUs): one exponential per element,
  W_bk = exp(a_bk − max_b a_bk) ∈ [0, 1] (per-prototype max shift, all-reduced), then linear scalings
  U = exp(f + c), V = exp(g − c) updated by matrix-vector products, V = 1/(WᵀU), U = 1/(W V), and
  Q = U_b·W_bk·V_k written in place. Entries of W below the smallest normal number (``tiny``) are
  lost; every sum is checked against sqrt(tiny) times its scale (ΣU for Wᵀ U, ΣV for W V), which bounds
  the relative error those losses cause by sqrt(tiny) (1e-19 in float32). If a check fails (a sample far
  below every prototype's best match, e.g. unnormalised scores or ε ≈ 0.01 in float32) the function
  returns None and the caller falls back to:
* ``sinkhorn_log``: the potentials f, g themselves, each pass one log-sum-exp with its max shift over
  row blocks of the scores, never materialising more than a block; the final pass writes Q.

The soft-target cross-entropy of SwAV's loss for a predicted view u with target t (a sum of c target
distributions, each row of t sums to c) and temperature T:

    loss_u,b = −Σ_k t_bk · log_softmax(s_u/T)_bk = c · lse_b − (1/T) Σ_k t_bk s_u,bk,   lse_b = log Σ_k exp(s_u,bk/T)

(one pass per view; the gradient c·softmax(s_u/T) − t, divided by T, comes from autograd here).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

# Elements of one row block of the log-domain fallback: 256 Ki values = 1 MiB in float32, small enough to
# stay in a CPU's L2 cache between the few element-wise operations that run on it.
TILE_ELEMENTS = 1 << 18


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """float64 for float64 inputs, float32 for every other floating dtype."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _all_reduce(t: torch.Tensor, op, process_group) -> torch.Tensor:
    if process_group is not None:
        dist.all_reduce(t, op=op, group=process_group)
    return t


def _all_reduce_lse(lse: torch.Tensor, process_group) -> torch.Tensor:
    """log Σ_ranks exp(lse), elementwise: all-reduce the max, then the sum of exp(lse − max)."""
    if process_group is None:
        return lse
    top = _all_reduce(lse.clone(), dist.ReduceOp.MAX, process_group)
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = _all_reduce(torch.exp(lse - safe), dist.ReduceOp.SUM, process_group)
    return safe + torch.log(total)


def _rows_per_block(k: int) -> int:
    return max(1, TILE_ELEMENTS // max(k, 1))


@torch.no_grad()
def sinkhorn_scaling(
    scores: torch.Tensor, epsilon: float, iterations: int, process_group=None, keep: int | None = None
) -> torch.Tensor | None:
    """Q for the last ``keep`` rows via one exponential and matrix-vector scalings; None if not accurate."""
    cdt = compute_dtype(scores)
    b = scores.shape[0]
    keep = b if keep is None else keep
    inv_eps = 1.0 / epsilon
    col_max = _all_reduce(scores.amax(dim=0).to(cdt), dist.ReduceOp.MAX, process_group)
    # W = exp((s − m)/ε) as (−m/ε) + s·(1/ε) in one pass; W ≤ 1 up to rounding, W = 1 at each column's max.
    w = torch.add(col_max * -inv_eps, scores, alpha=inv_eps).exp_()
    sqrt_tiny = torch.finfo(cdt).tiny ** 0.5
    u = torch.ones(b, dtype=cdt, device=scores.device)
    ok = torch.ones((), dtype=torch.bool, device=scores.device)
    v = None
    for _ in range(iterations):
        col = torch.cat([u @ w, u.sum().reshape(1)])  # Wᵀ U and ΣU, all-reduced together
        _all_reduce(col, dist.ReduceOp.SUM, process_group)
        ok &= col[:-1].amin() >= sqrt_tiny * col[-1]
        v = col[:-1].reciprocal()
        row = w @ v
        ok &= row.amin() >= sqrt_tiny * v.sum()
        u = row.reciprocal_()
    flag = ok.to(torch.int32)
    if not bool(_all_reduce(flag, dist.ReduceOp.MIN, process_group)):  # every rank takes the same path
        return None
    if keep == b:
        return w.mul_(u[:, None]).mul_(v)
    return torch.mul(w[b - keep :], u[b - keep :, None]).mul_(v)


@torch.no_grad()
def sinkhorn_log(
    scores: torch.Tensor, epsilon: float, iterations: int, process_group=None, keep: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Q for the last ``keep`` rows, f, g) from log-domain passes over row blocks; stable for any input."""
    cdt = compute_dtype(scores)
    b, k = scores.shape
    keep = b if keep is None else keep
    inv_eps = 1.0 / epsilon
    step = _rows_per_block(k)
    f = torch.zeros(b, dtype=cdt, device=scores.device)
    g = torch.zeros(k, dtype=cdt, device=scores.device)
    for _ in range(iterations):
        col_lse = torch.full((k,), float("-inf"), dtype=cdt, device=scores.device)
        for start in range(0, b, step):
            a = scores[start : start + step].to(cdt) * inv_eps
            col_lse = torch.logaddexp(col_lse, torch.logsumexp(a + f[start : start + step, None], dim=0))
        g = -_all_reduce_lse(col_lse, process_group)
        for start in range(0, b, step):
            a = scores[start : start + step].to(cdt) * inv_eps
            f[start : start + step] = -torch.logsumexp(a + g, dim=1)
    q = torch.empty((keep, k), dtype=cdt, device=scores.device)
    first = b - keep
    for start in range(first, b, step):
        stop = min(start + step, b)
        a = scores[start:stop].to(cdt) * inv_eps
        torch.exp(a + f[start:stop, None] + g, out=q[start - first : stop - first])
    return q, f, g


@torch.no_grad()
def sinkhorn_torch(
    scores: torch.Tensor, epsilon: float, iterations: int, process_group=None, keep: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q for the last ``keep`` rows, finite flag): the scaling form, else the log-domain form.

    The flag (a 0-d bool tensor) is False when the scores hold NaN, +Inf or a row or column without a
    finite value: the potentials are then not finite.
    """
    q = sinkhorn_scaling(scores, epsilon, iterations, process_group, keep)
    if q is not None:
        return q, torch.ones((), dtype=torch.bool, device=scores.device)
    q, f, g = sinkhorn_log(scores, epsilon, iterations, process_group, keep)
    return q, torch.isfinite(f).all() & torch.isfinite(g).all()


def soft_target_ce_torch(scores: torch.Tensor, target: torch.Tensor, count: int, temperature: float) -> torch.Tensor:
    """Per-row c·lse_b − (1/T) Σ_k t_bk s_bk (module docstring); gradients to ``scores`` by autograd."""
    cdt = compute_dtype(scores)
    s = scores.to(cdt)
    lse = torch.logsumexp(s * (1.0 / temperature), dim=1)
    return count * lse - (target.to(cdt) * s).sum(dim=1) * (1.0 / temperature)
