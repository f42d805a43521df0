"""The InfoNCE family without the N×M logits: info_nce (MoCo, CLIP direction), nt_xent (SimCLR), clip_loss.

Every entry point reduces to one primitive, the pairwise log-sum-exp of ``infonce_torch`` /
``infonce_triton``, plus O(N·D) PyTorch around it:

    s_ij   = q_i·c_j / τ          (rows q, candidate columns c; L2-normalised when ``normalize``)
    loss_i = lse_i − s_i,pos(i),   lse_i = log Σ_{j ∈ candidates(i)} exp(s_ij)

* info_nce:  candidates(i) = keys (all, or only k_i) ∪ queue.  The queue part is a separate LSE over
  columns without gradient (single pass: loss and dq together), merged with logaddexp.
* nt_xent:   rows z = [z1; z2], candidates = every other view (the row itself excluded in-kernel).
* clip_loss: ½(lse_i − s_ii) + ½(lseᶜ_i − s_ii), both LSEs from one sweep over the similarity tiles.

Backends: "triton" (CUDA tensors, or CPU tensors under TRITON_INTERPRET=1), "torch" (block-wise,
recompute in backward, any device and float64), "auto" (triton on CUDA, torch otherwise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks
from .distributed import check_equal_rows, gather_with_grad, group_rank_and_size
from .infonce_torch import TorchPairwiseLSE


def _triton_module():
    from . import infonce_triton  # imported lazily: CPU-only installs may lack triton

    return infonce_triton


def triton_interpreted() -> bool:
    """True when Triton kernels run in the interpreter (TRITON_INTERPRET=1 when they were decorated)."""
    try:
        mod = _triton_module()
    except ImportError:
        return False
    return type(mod._infonce_fwd_kernel).__name__ == "InterpretedFunction"


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """The backend that runs for tensors like ``x``: "triton" or "torch" (see the module docstring)."""
    _checks.check_choice("backend", backend, _checks.BACKENDS)
    if backend == "torch":
        return "torch"
    half_or_single = x.dtype in (torch.float16, torch.bfloat16, torch.float32)
    if backend == "auto":
        return "triton" if x.device.type == "cuda" and half_or_single else "torch"
    if not half_or_single:
        raise TypeError(f"backend: 'triton' supports float16, bfloat16 and float32, got {x.dtype}; "
                        "use backend='torch' for float64")
    if x.device.type != "cuda" and not triton_interpreted():
        raise ValueError(f"backend: 'triton' needs CUDA tensors (got {x.device}) or TRITON_INTERPRET=1 "
                         "set before contrasting.losses is imported")
    return "triton"


def pairwise_lse(
    x: torch.Tensor,
    y: torch.Tensor,
    scale: torch.Tensor,
    *,
    exclude: torch.Tensor | None = None,
    want_cols: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """lse_i = log Σ_j exp(σ x_i·y_j) over j ≠ exclude[i]; with ``want_cols`` also lseᶜ_j = log Σ_i exp(σ x_i·y_j).

    ``scale`` is σ as a 1-element tensor (gradients flow to it); results are float32 (float64 for float64).
    """
    if backend == "triton":
        fn = _triton_module().TritonPairwiseLSE
        excl = exclude.to(torch.int32) if exclude is not None else None
    else:
        fn = TorchPairwiseLSE
        excl = exclude.to(torch.int64) if exclude is not None else None
    rows, cols = fn.apply(x, y, scale, excl, want_cols)
    return rows, (cols if want_cols else None)


def _normalized(t: torch.Tensor, normalize: bool) -> torch.Tensor:
    if not normalize:
        return t
    return F.normalize(t.to(torch.float32) if t.dtype in (torch.float16, torch.bfloat16) else t, dim=1).to(t.dtype)


def _positive(x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """s_i,pos = σ·x_i·y_i in the compute dtype."""
    return scale * (x.to(scale.dtype) * y.to(scale.dtype)).sum(dim=1)


def _checked_pair(names: tuple[str, str], a: torch.Tensor, b: torch.Tensor, reduction: str, backend: str,
                  temperature) -> tuple[str, torch.Tensor]:
    """Checks of every entry point's aligned pair (a, b) and options; returns (backend to run, σ = 1/τ)."""
    _checks.check_matrix(names[0], a)
    _checks.check_matrix(names[1], b, like=a, like_name=names[0])
    _checks.check_same_rows(names[1], b, names[0], a)
    _checks.check_choice("reduction", reduction, _checks.REDUCTIONS)
    return resolve_backend(backend, a), _checks.scale_from_temperature(temperature, a)


def _finished(loss: torch.Tensor, inputs: dict, reduction: str, check_finite: bool) -> torch.Tensor:
    """Per-row ``loss`` checked for NaN/Inf (naming the bad input) when asked, then reduced."""
    if check_finite:
        _checks.raise_if_nonfinite(loss, inputs)
    return _checks.reduce_loss(loss, reduction)


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    queue: torch.Tensor | None = None,
    *,
    temperature: float | torch.Tensor = 0.07,
    in_batch_negatives: bool = True,
    normalize: bool = True,
    reduction: str = "mean",
    process_group=None,
    backend: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """InfoNCE: loss_i = logsumexp_j(s_ij) − s_ii, s = q·cᵀ/τ, candidates c = keys (all j, or j = i) ++ queue.

    query, key: (N, D) aligned positives. queue: (K, D) extra negatives, never receiving gradient.
    MoCo v1/v2: ``info_nce(q, k, queue, in_batch_negatives=False)``; MoCo v3 / one CLIP direction:
    ``info_nce(q, k)``. ``temperature`` is a float or a 1-element tensor (learnable: it gets its
    gradient). With ``process_group`` each rank passes its local batch; keys are gathered from all
    ranks (positives at this rank's offset) and their gradients return to the owning rank, so after
    data-parallel averaging gradients equal one process on the concatenated batch. The queue is
    taken as already global. Returns the mean/sum, or the (N,) per-row losses for ``reduction="none"``;
    float32 for half inputs. ``check_finite`` raises on NaN/Inf results naming the bad input
    (reads one flag from the device).
    """
    impl, scale = _checked_pair(("query", "key"), query, key, reduction, backend, temperature)
    if queue is not None:
        _checks.check_matrix("queue", queue, like=query, like_name="query")

    q, k = _normalized(query, normalize), _normalized(key, normalize)
    pos = _positive(q, k, scale)
    lse = pos
    if in_batch_negatives:
        keys = k
        if process_group is not None:
            check_equal_rows("key", k, process_group)
            keys = gather_with_grad(k, process_group)
        lse, _ = pairwise_lse(q, keys, scale, backend=impl)
    if queue is not None:
        lse_queue, _ = pairwise_lse(q, _normalized(queue.detach(), normalize), scale, backend=impl)
        lse = torch.logaddexp(lse, lse_queue)
    loss = lse - pos
    return _finished(loss, {"query": query, "key": key, "queue": queue}, reduction, check_finite)


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.5,
    normalize: bool = True,
    reduction: str = "mean",
    process_group=None,
    backend: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """SimCLR's NT-Xent over the 2N views z = [z1; z2]: loss_i = log Σ_{j≠i} exp(s_ij) − s_i,i±N, s = z·zᵀ/τ.

    With ``process_group`` the candidates are every view of every rank (global index: [z1 of all ranks;
    z2 of all ranks]); gradients return to the owning rank. ``reduction="none"`` gives the (2N,) losses
    ordered [z1 rows; z2 rows].
    """
    impl, scale = _checked_pair(("z1", "z2"), z1, z2, reduction, backend, temperature)

    n = z1.shape[0]
    a, b = _normalized(z1, normalize), _normalized(z2, normalize)
    rows = torch.cat([a, b], dim=0)
    if process_group is None:
        cols, rank, world = rows, 0, 1
    else:
        check_equal_rows("z1", z1, process_group)
        rank, world = group_rank_and_size(process_group)
        cols = torch.cat([gather_with_grad(a, process_group), gather_with_grad(b, process_group)], dim=0)
    local = torch.arange(n, device=z1.device) + rank * n
    exclude = torch.cat([local, local + world * n])
    lse, _ = pairwise_lse(rows, cols, scale, exclude=exclude, backend=impl)
    pos = _positive(rows, torch.cat([b, a], dim=0), scale)
    loss = lse - pos
    return _finished(loss, {"z1": z1, "z2": z2}, reduction, check_finite)


def clip_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
    process_group=None,
    backend: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """Symmetric CLIP loss ½·CE(a·bᵀ/τ, i) + ½·CE(b·aᵀ/τ, i), both directions from one fused sweep.

    ``reduction="none"`` gives (N,) per-pair losses ½(row_i + column_i). With ``process_group`` each
    rank's rows are scored against the gathered other modality in each direction (two sweeps, as
    the column LSE then needs every rank's rows); gradients return to the owning rank.
    A learnable logit scale s = 1/τ is passed as ``temperature = 1 / s``.
    """
    impl, scale = _checked_pair(("a", "b"), a, b, reduction, backend, temperature)

    x, y = _normalized(a, normalize), _normalized(b, normalize)
    pos = _positive(x, y, scale)
    if process_group is None:
        lse_rows, lse_cols = pairwise_lse(x, y, scale, want_cols=True, backend=impl)
    else:
        check_equal_rows("a", a, process_group)
        lse_rows, _ = pairwise_lse(x, gather_with_grad(y, process_group), scale, backend=impl)
        lse_cols, _ = pairwise_lse(y, gather_with_grad(x, process_group), scale, backend=impl)
    loss = 0.5 * ((lse_rows - pos) + (lse_cols - pos))
    return _finished(loss, {"a": a, "b": b}, reduction, check_finite)
