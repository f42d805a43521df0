"""Block-wise PyTorch backend of the pairwise log-sum-exp, memory O((R + M)·D + block), not O(R·M).

Math (shared with the Triton kernels in ``infonce_triton``). For rows x_i (R×D), columns y_j (M×D),
a scale σ = 1/τ and an optional excluded column e(i) per row:

    s_ij     = σ · x_i·y_j                    (−∞ where j = e(i))
    lse_i    = log Σ_j exp(s_ij)              (row direction, always)
    lseᶜ_j   = log Σ_i exp(s_ij)              (column direction, CLIP only)

Given upstream gradients g_i (rows) and gᶜ_j (columns):

    dS_ij = g_i·exp(s_ij − lse_i) + gᶜ_j·exp(s_ij − lseᶜ_j)
    dx_i  = σ Σ_j dS_ij y_j,    dy_j = σ Σ_i dS_ij x_i,    dσ = Σ_ij dS_ij x_i·y_j = Σ_i x_i·dx_i / σ

Only an (R_blk × M) tile of S lives at a time; the backward recomputes it. Computation is in float32
for half inputs and in float64 for float64 inputs (so ``torch.autograd.gradcheck`` applies).
"""

from __future__ import annotations

import torch

# Elements of one similarity tile (rows_per_block × M): 1 Mi fp32 values = 4 MiB, a few tiles live at once;
# measured at N=M=8192, D=128 on 2 cores: as fast as 16 MiB tiles, with half the peak memory.
TILE_ELEMENTS = 1 << 20


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _rows_per_block(m: int) -> int:
    return max(1, TILE_ELEMENTS // max(m, 1))


def _tile(xs_blk, y, exclude_blk):
    """s = (σ·x_blk)·yᵀ with the excluded entries set to −∞ (σ already folded into the rows)."""
    s = xs_blk @ y.T
    if exclude_blk is not None:
        hit = exclude_blk >= 0
        rows = torch.arange(s.shape[0], device=s.device)[hit]
        s[rows, exclude_blk[hit]] = float("-inf")
    return s


class TorchPairwiseLSE(torch.autograd.Function):
    """autograd Function: (x, y, σ, exclude, want_cols) → (lse rows (R,), lse columns (M,) or empty)."""

    @staticmethod
    def forward(ctx, x, y, scale, exclude, want_cols):
        cdt = _compute_dtype(x)
        xs, yc = x.to(cdt) * scale.to(cdt), y.to(cdt)
        r, m = xs.shape[0], yc.shape[0]
        lse = torch.empty(r, dtype=cdt, device=x.device)
        col_lse = torch.full((m,), float("-inf"), dtype=cdt, device=x.device) if want_cols else None
        step = _rows_per_block(m)
        for start in range(0, r, step):
            stop = min(start + step, r)
            excl = exclude[start:stop] if exclude is not None else None
            s = _tile(xs[start:stop], yc, excl)
            lse[start:stop] = torch.logsumexp(s, dim=1)
            if want_cols:
                col_lse = torch.logaddexp(col_lse, torch.logsumexp(s, dim=0))
        ctx.save_for_backward(x, y, scale, exclude, lse, col_lse)
        ctx.want_cols = want_cols
        empty = lse.new_empty(0)
        return lse, (col_lse if want_cols else empty)

    @staticmethod
    def backward(ctx, g_rows, g_cols):
        x, y, scale, exclude, lse, col_lse = ctx.saved_tensors
        cdt = lse.dtype
        xc, yc, sc = x.to(cdt), y.to(cdt), scale.to(cdt)
        g_rows = g_rows.to(cdt) if g_rows is not None else torch.zeros_like(lse)
        use_cols = ctx.want_cols and g_cols is not None and g_cols.numel() > 0
        need_y = ctx.needs_input_grad[1]
        xs = xc * sc
        dx = torch.empty_like(xc)
        dy = torch.zeros_like(yc) if need_y else None
        step = _rows_per_block(yc.shape[0])
        for start in range(0, xc.shape[0], step):
            stop = min(start + step, xc.shape[0])
            excl = exclude[start:stop] if exclude is not None else None
            s = _tile(xs[start:stop], yc, excl)
            if use_cols:
                ds_cols = torch.sub(s, col_lse[None, :]).exp_().mul_(g_cols.to(cdt)[None, :])
            ds = s.sub_(lse[start:stop, None]).exp_().mul_(g_rows[start:stop, None])  # in place: s is dead
            if use_cols:
                ds += ds_cols
            torch.mm(ds, yc, out=dx[start:stop])
            if need_y:
                dy.addmm_(ds.T, xc[start:stop])
        d_scale = None
        if ctx.needs_input_grad[2]:
            d_scale = (xc * dx).sum().reshape(scale.shape).to(scale.dtype)
        dx = (dx * sc).to(x.dtype) if ctx.needs_input_grad[0] else None
        dy = (dy * sc).to(y.dtype) if need_y else None
        return dx, dy, d_scale, None, None
