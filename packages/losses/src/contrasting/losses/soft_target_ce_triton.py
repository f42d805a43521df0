"""Triton kernels of SwAV's soft-target cross-entropy (the loss on the Sinkhorn codes), fused forward and backward.

Math, for a predicted view u (scores s = s_u, target t = Σ of c distributions q_v, temperature T,
scale2 = log2(e)/T):

    lse_b  = ln 2 · log2 Σ_k 2^(s_bk·scale2)                  (online, one sweep)
    loss_b = c·lse_b − (1/T) Σ_k t_bk s_bk                      (the dot is accumulated in the same sweep)
    ∂loss_b/∂s_bk = (c·2^(s_bk·scale2 − lse_b·log2 e) − t_bk) / T   (``_swav_ce_bwd_kernel``, times g_b)

Both kernels read s and t once; accumulation is fp32 throughout.

Rows stream along K like the Sinkhorn's row pass and share its launch helpers (``sinkhorn_triton``: tile configs,
16-byte row vectorisation ROW_VEC, row-major inputs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._log2 import LN2_C, LOG2E, LOG2E_C
from .sinkhorn_triton import KernelConfig, config_for, ensure_rowmajor, row_vec


@triton.jit
def _row_block(S_ptr, T_ptr, B, stride_sb, stride_tb, BLOCK_B: tl.constexpr, ROW_VEC: tl.constexpr):
    """This program's BLOCK_B rows: (indices, in-range mask, row pointers into S and T). Strides are rounded
    down to ROW_VEC, a no-op the launcher checked that tells the compiler rows are 16-byte aligned."""
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rows = offs_b.to(tl.int64)[:, None]
    s_rows = S_ptr + rows * ((stride_sb // ROW_VEC) * ROW_VEC)
    t_rows = T_ptr + rows * ((stride_tb // ROW_VEC) * ROW_VEC)
    return offs_b, offs_b < B, s_rows, t_rows


@triton.jit
def _swav_ce_fwd_kernel(
    S_ptr, T_ptr, LSE_ptr, LOSS_ptr,
    B, K, stride_sb, stride_tb, scale2, inv_temp, count,
    BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr,
    ROW_VEC: tl.constexpr,  # as in _sinkhorn_col_kernel
):
    K = (K // ROW_VEC) * ROW_VEC  # a no-op (the launcher checked): tells the compiler rows are 16-byte aligned
    offs_b, row_ok, s_rows, t_rows = _row_block(S_ptr, T_ptr, B, stride_sb, stride_tb, BLOCK_B, ROW_VEC)
    m = tl.full((BLOCK_B,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((BLOCK_B,), dtype=tl.float32)
    dot = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        ok = row_ok[:, None] & (offs_k < K)[None, :]
        s = tl.load(s_rows + offs_k[None, :], mask=ok, other=0.0).to(tl.float32)
        t = tl.load(t_rows + offs_k[None, :], mask=ok, other=0.0).to(tl.float32)
        dot += tl.sum(t * s, 1)
        x = tl.where(ok, s * scale2, float("-inf"))
        m_new = tl.maximum(m, tl.max(x, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        l = l * tl.exp2(m - m_safe) + tl.sum(tl.exp2(x - m_safe[:, None]), 1)
        m = m_new
    lse = (m + tl.log2(tl.where(row_ok, l, 1.0))) * LN2_C  # masked rows: no log2(0)
    tl.store(LSE_ptr + offs_b, lse, mask=row_ok)
    tl.store(LOSS_ptr + offs_b, count * lse - inv_temp * dot, mask=row_ok)


@triton.jit
def _swav_ce_bwd_kernel(
    S_ptr, T_ptr, LSE_ptr, G_ptr, DS_ptr,
    B, K, stride_sb, stride_tb, stride_db, scale2, inv_temp, count,
    BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr,
    ROW_VEC: tl.constexpr,  # as in _sinkhorn_col_kernel
):
    K = (K // ROW_VEC) * ROW_VEC  # a no-op (the launcher checked): tells the compiler rows are 16-byte aligned
    offs_b, row_ok, s_rows, t_rows = _row_block(S_ptr, T_ptr, B, stride_sb, stride_tb, BLOCK_B, ROW_VEC)
    d_rows = DS_ptr + offs_b.to(tl.int64)[:, None] * ((stride_db // ROW_VEC) * ROW_VEC)
    lse2 = tl.load(LSE_ptr + offs_b, mask=row_ok, other=0.0) * LOG2E_C
    g = tl.load(G_ptr + offs_b, mask=row_ok, other=0.0) * inv_temp
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        ok = row_ok[:, None] & (offs_k < K)[None, :]
        s = tl.load(s_rows + offs_k[None, :], mask=ok, other=0.0).to(tl.float32)
        t = tl.load(t_rows + offs_k[None, :], mask=ok, other=0.0).to(tl.float32)
        p = tl.exp2(tl.where(ok, s * scale2 - lse2[:, None], float("-inf")))
        ds = g[:, None] * (count * p - t)
        tl.store(d_rows + offs_k[None, :], ds.to(DS_ptr.dtype.element_ty), mask=ok)


KERNELS = ("fwd", "bwd")
VARIANTS = (("fwd", {}), ("bwd", {}))
KERNEL_FNS = {"fwd": _swav_ce_fwd_kernel, "bwd": _swav_ce_bwd_kernel}
# Untuned (no GPU was available when they were chosen), as the Sinkhorn's row pass.
_CONFIGS = {
    "fwd": KernelConfig(block_b=8, block_k=512, num_warps=4, num_stages=2),
    "bwd": KernelConfig(block_b=8, block_k=512, num_warps=4, num_stages=2),
}


def select_config(dtype: torch.dtype, kernel: str) -> KernelConfig:
    """Tile sizes of ``kernel`` in KERNELS for scores of ``dtype``."""
    return config_for(_CONFIGS, dtype, kernel)


class TritonSoftTargetCE(torch.autograd.Function):
    """autograd Function: (scores (B,K), target (B,K) fp32, count c, temperature T) → row losses (B,) fp32."""

    @staticmethod
    def forward(ctx, scores, target, count, temperature):
        s, t = ensure_rowmajor(scores), ensure_rowmajor(target)
        b, k = s.shape
        cfg = select_config(s.dtype, "fwd")
        lse = torch.empty(b, dtype=torch.float32, device=s.device)
        loss = torch.empty_like(lse)
        _swav_ce_fwd_kernel[(triton.cdiv(b, cfg.block_b),)](
            s, t, lse, loss, b, k, s.stride(0), t.stride(0),
            LOG2E / temperature, 1.0 / temperature, float(count),
            BLOCK_B=cfg.block_b, BLOCK_K=cfg.block_k, ROW_VEC=row_vec(s, t),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        ctx.save_for_backward(s, t, lse)
        ctx.count, ctx.temperature = count, temperature
        return loss

    @staticmethod
    def backward(ctx, g_rows):
        s, t, lse = ctx.saved_tensors
        b, k = s.shape
        cfg = select_config(s.dtype, "bwd")
        g_rows = g_rows.to(torch.float32).contiguous()
        ds = torch.empty(s.shape, dtype=s.dtype, device=s.device)
        _swav_ce_bwd_kernel[(triton.cdiv(b, cfg.block_b),)](
            s, t, lse, g_rows, ds, b, k, s.stride(0), t.stride(0), ds.stride(0),
            LOG2E / ctx.temperature, 1.0 / ctx.temperature, float(ctx.count),
            BLOCK_B=cfg.block_b, BLOCK_K=cfg.block_k, ROW_VEC=row_vec(s, t, ds),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
        return ds, None, None, None


def soft_target_ce_triton(
    scores: torch.Tensor, target: torch.Tensor, count: int, temperature: float
) -> torch.Tensor:
    """Per-row c·lse_b − (1/T) Σ_k t_bk s_bk (fp32), fused forward and backward kernels."""
    return TritonSoftTargetCE.apply(scores, target.to(torch.float32), count, temperature)
