"""Triton kernels of the pairwise log-sum-exp behind info_nce, nt_xent and clip_loss.

Math (same notation as ``infonce_torch``). Rows x_i (R×D), columns y_j (M×D), σ = 1/τ, optional
excluded column e(i) per row. Kernels work in base 2 with log2(e) folded into the scale:

    s2_ij = σ·log2(e)·x_i·y_j                         (−∞ where j = e(i) or j ≥ M)
    online over column tiles:  m_i ← max(m_i, max_j s2_ij)
                               l_i ← l_i·2^(m_i,old − m_i) + Σ_j 2^(s2_ij − m_i)
    lse_i = ln(2)·(m_i + log2 l_i)                    (only the R-vector lse is stored)

Column statistics (CLIP's second direction) are reduced per row block into (⌈R/BLOCK_R⌉ × M)
partial (max, sum) pairs and merged on the host, so the similarity tile is computed once for both
directions. When the columns need no gradient (MoCo queue, detached keys) the forward also returns
dx_i = σ Σ_j P_ij y_j with P_ij = 2^(s2_ij − log2-lse_i), the flash-attention forward with V = Y,
so loss and dQ come from one pass.

Backward (recompute, deterministic: each program owns the rows it writes, no atomics):

    dS_ij = g_i·2^(s2_ij − lse2_i)  [A term]  +  gᶜ_j·2^(s2_ij − lseᶜ2_j)  [B term]
    dx_i  = σ Σ_j dS_ij y_j          (kernel with A = x, B = y)
    dy_j  = σ Σ_i dS_ij x_i          (same kernel with A = y, B = x, the terms swapped)

Upstream gradients are divided by their max |g| before the kernel and multiplied back in fp32 at the
end, so that dS fits fp16's range (g = 1/N is ~3e-5 at N = 32768). Accumulation is fp32 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._log2 import LN2, LN2_C, LOG2E_C

# EXCL_MODE values: which side's index vector holds the excluded partner.
EXCL_NONE, EXCL_ON_A, EXCL_ON_B = 0, 1, 2


@triton.jit
def _sim_tile(
    a_rows, b_rows, a_tile, b_tile, offs_d, a_ok, b_ok, D, stride_ad, stride_bd,
    BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    ONE_D_CHUNK: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """a·bᵀ for one (BLOCK_A × BLOCK_B) tile; ONE_D_CHUNK reuses the tiles already in registers."""
    if ONE_D_CHUNK:
        acc = tl.dot(a_tile, tl.trans(b_tile), input_precision=DOT_PRECISION)
    else:
        acc = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + offs_d
            a = tl.load(a_rows + dd[None, :] * stride_ad, mask=a_ok[:, None] & (dd[None, :] < D), other=0.0)
            b = tl.load(b_rows + dd[None, :] * stride_bd, mask=b_ok[:, None] & (dd[None, :] < D), other=0.0)
            acc = tl.dot(a, tl.trans(b), acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _resident_tile(rows, offs_d, ok, D, stride_d, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr,
                   ONE_D_CHUNK: tl.constexpr):
    """The (BLOCK, BLOCK_D) tile of ``rows`` when D fits one chunk (it then stays in registers), else zeros that
    ``_sim_tile`` ignores (it loads D chunk by chunk)."""
    tile = tl.zeros((BLOCK, BLOCK_D), dtype=rows.dtype.element_ty)
    if ONE_D_CHUNK:
        tile = tl.load(rows + offs_d[None, :] * stride_d, mask=ok[:, None] & (offs_d[None, :] < D), other=0.0)
    return tile


@triton.jit
def _scored_block(
    x_rows, x_tile, row_ok, Y_ptr, stride_yr, stride_yd, c0, M, offs_d, D, stride_xd, scale2,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    ONE_D_CHUNK: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """Rows [c0, c0 + BLOCK_C) of the other operand y — offsets, validity, row pointers, resident tile — and the
    base-2 scores s2 = σ·log2(e)·x·yᵀ of the (BLOCK_R × BLOCK_C) tile (unmasked)."""
    offs_c = c0 + tl.arange(0, BLOCK_C)
    col_ok = offs_c < M
    y_rows = Y_ptr + offs_c.to(tl.int64)[:, None] * stride_yr
    y_tile = _resident_tile(y_rows, offs_d, col_ok, D, stride_yd, BLOCK_C, BLOCK_D, ONE_D_CHUNK)
    s2 = _sim_tile(x_rows, y_rows, x_tile, y_tile, offs_d, row_ok, col_ok, D, stride_xd, stride_yd,
                   BLOCK_R, BLOCK_C, BLOCK_D, ONE_D_CHUNK, DOT_PRECISION) * scale2
    return offs_c, col_ok, y_rows, y_tile, s2


@triton.jit
def _value_tile(y_rows, y_tile, cols, ok, D, stride_yd, ONE_D_CHUNK: tl.constexpr):
    """The (BLOCK, BLOCK_D) chunk ``cols`` of the rows ``y_rows`` that a gradient accumulates: the resident tile
    when D is one chunk, else loaded."""
    if ONE_D_CHUNK:
        v = y_tile
    else:
        v = tl.load(y_rows + cols[None, :] * stride_yd, mask=ok[:, None] & (cols[None, :] < D), other=0.0)
    return v


@triton.jit
def _infonce_fwd_kernel(
    X_ptr, stride_xr, stride_xd, R,  # operand x: pointer, row and column strides, rows (``_operand``)
    Y_ptr, stride_yr, stride_yd, M,
    D, SCALE_ptr, EXCL_ptr,
    LSE_ptr, COLM_ptr, COLL_ptr, DX_ptr, stride_dxr,
    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr,
    ONE_D_CHUNK: tl.constexpr,  # D ≤ BLOCK_D: the x tile stays in registers for the whole column loop
    HAS_EXCL: tl.constexpr,  # NT-Xent: each row excludes one column (itself)
    COL_STATS: tl.constexpr,  # CLIP: also write per-row-block column (max, sum) partials
    COMPUTE_DX: tl.constexpr,  # columns need no gradient: produce dx in the same pass
    DOT_PRECISION: tl.constexpr,
):
    pid_r = tl.program_id(0)
    pid_d = tl.program_id(1)  # D chunk of dx (COMPUTE_DX with D > BLOCK_D), else always 0
    offs_r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_r < R
    scale2 = tl.load(SCALE_ptr).to(tl.float32) * LOG2E_C  # σ·log2(e)
    x_rows = X_ptr + offs_r.to(tl.int64)[:, None] * stride_xr
    x_tile = _resident_tile(x_rows, offs_d, row_ok, D, stride_xd, BLOCK_R, BLOCK_D, ONE_D_CHUNK)
    if HAS_EXCL:
        excl = tl.load(EXCL_ptr + offs_r, mask=row_ok, other=-1)
    dx_cols = pid_d * BLOCK_D + offs_d
    m_i = tl.full((BLOCK_R,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_R,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_R, BLOCK_D), dtype=tl.float32)
    for c0 in range(0, M, BLOCK_C):
        offs_c, col_ok, y_rows, y_tile, s2 = _scored_block(
            x_rows, x_tile, row_ok, Y_ptr, stride_yr, stride_yd, c0, M, offs_d, D, stride_xd, scale2,
            BLOCK_R, BLOCK_C, BLOCK_D, ONE_D_CHUNK, DOT_PRECISION)
        keep = col_ok[None, :] & row_ok[:, None]
        if HAS_EXCL:
            keep = keep & (offs_c[None, :] != excl[:, None])
        s2 = tl.where(keep, s2, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s2, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # all-masked rows: avoid −∞ − (−∞)
        p = tl.exp2(s2 - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        m_i = m_new
        if COMPUTE_DX:
            v = _value_tile(y_rows, y_tile, dx_cols, col_ok, D, stride_yd, ONE_D_CHUNK)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        if COL_STATS:
            cm = tl.max(s2, 0)
            cm_safe = tl.where(cm == float("-inf"), 0.0, cm)
            cl = tl.sum(tl.exp2(s2 - cm_safe[None, :]), 0)
            part = pid_r.to(tl.int64) * M + offs_c
            tl.store(COLM_ptr + part, cm, mask=col_ok)
            tl.store(COLL_ptr + part, cl, mask=col_ok)
    lse = (m_i + tl.log2(l_i)) * LN2_C
    if pid_d == 0:
        tl.store(LSE_ptr + offs_r, lse, mask=row_ok)
    if COMPUTE_DX:
        dx = acc * ((scale2 * LN2_C) / l_i)[:, None]
        tl.store(DX_ptr + offs_r.to(tl.int64)[:, None] * stride_dxr + dx_cols[None, :],
                 dx, mask=row_ok[:, None] & (dx_cols[None, :] < D))


@triton.jit
def _infonce_bwd_kernel(
    A_ptr, stride_ar, stride_ad, RA,  # operand a: pointer, row and column strides, rows (``_operand``)
    B_ptr, stride_br, stride_bd, RB,
    D, SCALE_ptr, EXCL_ptr, GNORM_ptr,
    LSE_A_ptr, G_A_ptr, LSE_B_ptr, G_B_ptr, DA_ptr, stride_dar,
    BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
    ONE_D_CHUNK: tl.constexpr,
    A_TERM: tl.constexpr,  # rows of A carry an LSE over B: dS += g_a·P(row of A)
    B_TERM: tl.constexpr,  # rows of B carry an LSE over A: dS += g_b·P(row of B)
    EXCL_MODE: tl.constexpr,  # 0: none; 1: EXCL indexed by A rows; 2: EXCL indexed by B rows
    DOT_PRECISION: tl.constexpr,
):
    pid_a = tl.program_id(0)
    pid_d = tl.program_id(1)
    offs_a = pid_a * BLOCK_A + tl.arange(0, BLOCK_A)
    offs_d = tl.arange(0, BLOCK_D)
    a_ok = offs_a < RA
    scale = tl.load(SCALE_ptr).to(tl.float32)
    scale2 = scale * LOG2E_C  # σ·log2(e)
    a_rows = A_ptr + offs_a.to(tl.int64)[:, None] * stride_ar
    a_tile = _resident_tile(a_rows, offs_d, a_ok, D, stride_ad, BLOCK_A, BLOCK_D, ONE_D_CHUNK)
    if A_TERM:
        lse_a2 = tl.load(LSE_A_ptr + offs_a, mask=a_ok, other=0.0) * LOG2E_C
        g_a = tl.load(G_A_ptr + offs_a, mask=a_ok, other=0.0)
    if EXCL_MODE == 1:
        excl_a = tl.load(EXCL_ptr + offs_a, mask=a_ok, other=-1)
    dcols = pid_d * BLOCK_D + offs_d
    acc = tl.zeros((BLOCK_A, BLOCK_D), dtype=tl.float32)
    for b0 in range(0, RB, BLOCK_B):
        offs_b, b_ok, b_rows, b_tile, s2 = _scored_block(
            a_rows, a_tile, a_ok, B_ptr, stride_br, stride_bd, b0, RB, offs_d, D, stride_ad, scale2,
            BLOCK_A, BLOCK_B, BLOCK_D, ONE_D_CHUNK, DOT_PRECISION)
        keep = a_ok[:, None] & b_ok[None, :]
        if EXCL_MODE == 1:
            keep = keep & (offs_b[None, :] != excl_a[:, None])
        if EXCL_MODE == 2:
            excl_b = tl.load(EXCL_ptr + offs_b, mask=b_ok, other=-1)
            keep = keep & (offs_a[:, None] != excl_b[None, :])
        ds = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
        if A_TERM:
            ds += g_a[:, None] * tl.exp2(s2 - lse_a2[:, None])
        if B_TERM:
            lse_b2 = tl.load(LSE_B_ptr + offs_b, mask=b_ok, other=0.0) * LOG2E_C
            g_b = tl.load(G_B_ptr + offs_b, mask=b_ok, other=0.0)
            ds += g_b[None, :] * tl.exp2(s2 - lse_b2[None, :])
        ds = tl.where(keep, ds, 0.0)
        v = _value_tile(b_rows, b_tile, dcols, b_ok, D, stride_bd, ONE_D_CHUNK)
        acc = tl.dot(ds.to(v.dtype), v, acc, input_precision=DOT_PRECISION)
    gnorm = tl.load(GNORM_ptr)
    da = acc * (scale * gnorm)
    tl.store(DA_ptr + offs_a.to(tl.int64)[:, None] * stride_dar + dcols[None, :],
             da.to(DA_ptr.dtype.element_ty), mask=a_ok[:, None] & (dcols[None, :] < D))


# ---------------------------------------------------------------------------------------------------------------
# Dispatch table: the only place where tile sizes are chosen (bench/kernel_report.py compiles every entry).


@dataclass(frozen=True)
class KernelConfig:
    """Launch parameters of one kernel call; ``block_d`` is also the D chunk of dx/dy programs."""

    block_r: int
    block_c: int
    block_d: int
    num_warps: int
    num_stages: int


# Largest D chunk kept in registers per dtype; larger D loops over chunks (and splits dx programs by chunk).
MAX_BLOCK_D = {torch.float32: 64, torch.float16: 256, torch.bfloat16: 256}
DOT_PRECISION = {torch.float32: "tf32x3", torch.float16: "ieee", torch.bfloat16: "ieee"}
BLOCK_D_CHOICES = (16, 32, 64, 128, 256)
KERNELS = ("fwd", "fwd_dx", "bwd")


def select_config(dtype: torch.dtype, d: int, kernel: str) -> KernelConfig:
    """Tile sizes for ``kernel`` in KERNELS at feature size ``d`` (a pure function of dtype, d, kernel)."""
    block_d = min(max(16, triton.next_power_of_2(d)), MAX_BLOCK_D[dtype])
    if dtype == torch.float32:
        # tf32x3 splits both dot operands into hi/lo parts in registers: keep the column tile × D chunk
        # ≤ 2048 elements in fwd and ≤ 1024 where the dx/dy accumulator is live too, and do not
        # pipeline the chunked-D loop (d > MAX_BLOCK_D); larger tiles spill on sm_80 and sm_90a.
        stages = 2 if d <= block_d else 1
        if kernel == "fwd":
            return KernelConfig(128, min(64, 2048 // block_d), block_d, 4 if block_d == 16 else 8, stages)
        return KernelConfig(64, 1024 // block_d, block_d, 4, stages)
    # Half precision: measured on an H200 (bench/sweep_infonce.py, bf16, 2026-11-25) at R = M = 32768, D = 256
    # (fwd, bwd) and R = 4096, M = 65536, D = 128 (fwd_dx); see bench/results/2026-11-25-h200.md.
    if d > block_d:  # D in chunks (d > 256): the spill-free tiles of sm_80/sm_90a, not tuned on a GPU
        return KernelConfig(64, 64, block_d, 8, 2) if kernel == "fwd" else KernelConfig(64, 32, block_d, 8, 2)
    if kernel == "fwd":
        return KernelConfig(128, 32, block_d, 4, 3)
    if kernel == "fwd_dx":
        return KernelConfig(64, 32, block_d, 4, 3)
    return KernelConfig(128, 64, block_d, 8, 3)


def _ensure_rowmajor(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _operand(t: torch.Tensor) -> tuple:
    """A matrix operand's launch arguments, in the kernels' order: (pointer, row stride, column stride, rows)."""
    return t, t.stride(0), t.stride(1), t.shape[0]


def _fwd(x, y, scale, exclude, want_cols, compute_dx):
    r, d = x.shape
    m = y.shape[0]
    cfg = select_config(x.dtype, d, "fwd_dx" if compute_dx else "fwd")
    n_rb = triton.cdiv(r, cfg.block_r)
    n_dchunks = triton.cdiv(d, cfg.block_d) if compute_dx else 1
    f32 = dict(dtype=torch.float32, device=x.device)
    lse = torch.empty(r, **f32)
    colm = torch.empty((n_rb, m), **f32) if want_cols else lse
    coll = torch.empty((n_rb, m), **f32) if want_cols else lse
    dx = torch.empty((r, d), **f32) if compute_dx else lse
    _infonce_fwd_kernel[(n_rb, n_dchunks)](
        *_operand(x), *_operand(y), d, scale, exclude if exclude is not None else lse,
        lse, colm, coll, dx, dx.stride(0) if compute_dx else 0,
        BLOCK_R=cfg.block_r, BLOCK_C=cfg.block_c, BLOCK_D=cfg.block_d, ONE_D_CHUNK=d <= cfg.block_d,
        HAS_EXCL=exclude is not None, COL_STATS=want_cols, COMPUTE_DX=compute_dx,
        DOT_PRECISION=DOT_PRECISION[x.dtype],
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    col_lse = None
    if want_cols:
        col_lse = torch.logsumexp(colm * LN2 + torch.log(coll), dim=0)
    return lse, col_lse, (dx if compute_dx else None)


def _bwd_side(a, b, scale, exclude, excl_mode, gnorm, lse_a, g_a, lse_b, g_b):
    """dA (fp32) for one side; A_TERM/B_TERM are on when the matching LSE is given."""
    ra, d = a.shape
    cfg = select_config(a.dtype, d, "bwd")
    da = torch.empty((ra, d), dtype=torch.float32, device=a.device)
    dummy = gnorm
    _infonce_bwd_kernel[(triton.cdiv(ra, cfg.block_r), triton.cdiv(d, cfg.block_d))](
        *_operand(a), *_operand(b), d, scale, exclude if exclude is not None else dummy, gnorm,
        lse_a if lse_a is not None else dummy, g_a if g_a is not None else dummy,
        lse_b if lse_b is not None else dummy, g_b if g_b is not None else dummy, da, da.stride(0),
        BLOCK_A=cfg.block_r, BLOCK_B=cfg.block_c, BLOCK_D=cfg.block_d, ONE_D_CHUNK=d <= cfg.block_d,
        A_TERM=lse_a is not None, B_TERM=lse_b is not None, EXCL_MODE=excl_mode,
        DOT_PRECISION=DOT_PRECISION[a.dtype],
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return da


class TritonPairwiseLSE(torch.autograd.Function):
    """autograd Function: (x, y, σ, exclude, want_cols) → (lse rows (R,), lse columns (M,) or empty).

    Same contract as ``infonce_torch.TorchPairwiseLSE``; σ is a 1-element tensor read by the kernel
    (no host synchronisation).
    """

    @staticmethod
    def forward(ctx, x, y, scale, exclude, want_cols):
        x, y = _ensure_rowmajor(x), _ensure_rowmajor(y)
        scale_f32 = scale.detach().to(torch.float32).reshape(1)
        single_pass = not want_cols and not ctx.needs_input_grad[1] and (
            ctx.needs_input_grad[0] or ctx.needs_input_grad[2])
        lse, col_lse, dx_unit = _fwd(x, y, scale_f32, exclude, want_cols, single_pass)
        ctx.single_pass = single_pass
        ctx.want_cols = want_cols
        ctx.scale_shape, ctx.scale_dtype = scale.shape, scale.dtype
        ctx.save_for_backward(x, y, scale_f32, exclude, lse, col_lse, dx_unit)
        return lse, (col_lse if want_cols else lse.new_empty(0))

    @staticmethod
    def backward(ctx, g_rows, g_cols):
        x, y, scale_f32, exclude, lse, col_lse, dx_unit = ctx.saved_tensors
        need_x, need_y, need_scale = ctx.needs_input_grad[:3]
        g_rows = g_rows.to(torch.float32).contiguous()
        if ctx.single_pass:
            dx = g_rows[:, None] * dx_unit
            d_scale = (x.to(torch.float32) * dx).sum() / scale_f32 if need_scale else None
            dx = dx.to(x.dtype) if need_x else None
            dy = None
        else:
            use_cols = ctx.want_cols and g_cols is not None and g_cols.numel() > 0
            g_cols = g_cols.to(torch.float32).contiguous() if use_cols else None
            gmax = g_rows.abs().amax() if g_rows.numel() else g_rows.new_zeros(())
            if use_cols:
                gmax = torch.maximum(gmax, g_cols.abs().amax())
            gnorm = torch.where(gmax > 0, gmax, torch.ones_like(gmax)).reshape(1)
            g_rows_n = g_rows / gnorm
            g_cols_n = g_cols / gnorm if use_cols else None
            lse_c = col_lse if use_cols else None
            dx = _bwd_side(x, y, scale_f32, exclude, EXCL_ON_A if exclude is not None else EXCL_NONE, gnorm,
                           lse, g_rows_n, lse_c, g_cols_n)
            dy = None
            if need_y:
                dy = _bwd_side(y, x, scale_f32, exclude, EXCL_ON_B if exclude is not None else EXCL_NONE, gnorm,
                               lse_c, g_cols_n, lse, g_rows_n)
            d_scale = (x.to(torch.float32) * dx).sum() / scale_f32 if need_scale else None
            dx = dx.to(x.dtype) if need_x else None
            dy = dy.to(y.dtype) if need_y else None
        if d_scale is not None:
            d_scale = d_scale.reshape(ctx.scale_shape).to(ctx.scale_dtype)
        return dx, dy, d_scale, None, None


