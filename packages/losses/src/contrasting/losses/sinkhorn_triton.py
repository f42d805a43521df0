"""Triton kernels of the SwAV Sinkhorn.

Math (notation of ``sinkhorn`` and ``sinkhorn_torch``), in base 2 with log2(e) folded into the scale:

    x_bk = s_bk · log2(e)/ε                 (scale2 = log2(e)/ε; fp32 whatever the scores' dtype)
    prototype pass:  g_k = log2(B/K) − log2 Σ_b 2^(x_bk + f_b)    (f = 0 at first: HAS_F=False)
    sample pass:     f_b = −log2 Σ_k 2^(x_bk + g_k)
    output:          Q_bk = 2^(x_bk + f_b + g_k)         (≤ 1: each row of Q sums to 1)

Each log-sum is an online max-shifted sum, as in flash attention: m ← max(m, max x), l ← l·2^(m_old − m)
+ Σ 2^(x − m), log2-sum = m + log2 l. Passes (``iterations`` = T):

* ``_sinkhorn_col_kernel``, grid (K blocks × row splits): each program reduces its split of the samples
  for BLOCK_K prototypes and writes the partial (m, l) pair of each prototype, (n_split × K) in all;
  ``_sinkhorn_merge_kernel`` merges the splits into g (FINALIZE) — or into (m, l) which the host
  all-reduces across ranks (max of m, then sum of l rescaled to it) before g = log2(B/K) − (m + log2 l).
  (log2(B/K), B global, cancels in Q; it keeps the potentials from drifting, see ``sinkhorn_torch``.)
* ``_sinkhorn_row_kernel``, grid (row blocks): one sweep over K per block of samples gives f; in the
  last pass (WRITE_Q) a second sweep over the same rows — still in L2 — writes Q for the rows kept.

Reads of the scores: 2T from memory (T = 3: 6 passes of B×K), one write of Q; between passes only
f (B), g (K) and the (n_split × K) partials exist. No atomics: results are deterministic. Compiled for
sm_90 without a GPU (``triton.compile`` to a cubin, read with cuobjdump): every variant in VARIANTS at
fp32 and bf16 has no spills, 32–106 registers, and 128-bit global loads when ROW_VEC > 1. Tile sizes and
the L2 reuse of the WRITE_Q sweep are untested on a GPU.

SwAV's soft-target cross-entropy kernels, which stream the same (B, K) rows, are in ``soft_target_ce_triton``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import triton
import triton.language as tl

from ._log2 import LOG2E
from .sinkhorn_torch import global_rows


@triton.jit
def _sinkhorn_col_kernel(
    S_ptr, F_ptr, PM_ptr, PL_ptr,
    B, K, rows_per_split, stride_sb, scale2,
    BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr,
    HAS_F: tl.constexpr,  # False on the first pass (f = 0): no F load
    ROW_VEC: tl.constexpr,  # elements per 16 bytes if K and every row stride are multiples of it, else 1
):
    K = (K // ROW_VEC) * ROW_VEC  # a no-op (the launcher checked): tells the compiler rows are 16-byte aligned
    stride_sb = (stride_sb // ROW_VEC) * ROW_VEC
    pid_k = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    col_ok = offs_k < K
    row_begin = pid_s * rows_per_split
    row_end = tl.minimum(row_begin + rows_per_split, B)
    m = tl.full((BLOCK_K,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((BLOCK_K,), dtype=tl.float32)
    for b0 in range(row_begin, row_end, BLOCK_B):
        offs_b = b0 + tl.arange(0, BLOCK_B)
        row_ok = offs_b < row_end
        ok = row_ok[:, None] & col_ok[None, :]
        s = tl.load(S_ptr + offs_b.to(tl.int64)[:, None] * stride_sb + offs_k[None, :], mask=ok, other=0.0)
        x = s.to(tl.float32) * scale2
        if HAS_F:
            x += tl.load(F_ptr + offs_b, mask=row_ok, other=0.0)[:, None]
        x = tl.where(ok, x, float("-inf"))
        m_new = tl.maximum(m, tl.max(x, 0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # all-masked columns: avoid −∞ − (−∞)
        l = l * tl.exp2(m - m_safe) + tl.sum(tl.exp2(x - m_safe[None, :]), 0)
        m = m_new
    part = pid_s.to(tl.int64) * K + offs_k
    tl.store(PM_ptr + part, m, mask=col_ok)
    tl.store(PL_ptr + part, l, mask=col_ok)


@triton.jit
def _sinkhorn_merge_kernel(
    PM_ptr, PL_ptr, G_ptr, M_ptr, L_ptr,
    K, n_split, log2_mass,
    BLOCK_K: tl.constexpr,
    FINALIZE: tl.constexpr,  # True: write g = −(m + log2 l); False: write (m, l) for the all-reduce
):
    offs_k = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    col_ok = offs_k < K
    m = tl.full((BLOCK_K,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((BLOCK_K,), dtype=tl.float32)
    for p in range(0, n_split):
        part = p * K + offs_k.to(tl.int64)
        pm = tl.load(PM_ptr + part, mask=col_ok, other=float("-inf"))
        pl = tl.load(PL_ptr + part, mask=col_ok, other=0.0)
        m_new = tl.maximum(m, pm)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        l = l * tl.exp2(m - m_safe) + pl * tl.exp2(pm - m_safe)
        m = m_new
    if FINALIZE:
        tl.store(G_ptr + offs_k, log2_mass - (m + tl.log2(tl.where(col_ok, l, 1.0))), mask=col_ok)
    else:
        tl.store(M_ptr + offs_k, m, mask=col_ok)
        tl.store(L_ptr + offs_k, l, mask=col_ok)


@triton.jit
def _shifted_scores(s_rows, G_ptr, k0, row_ok, K, scale2, BLOCK_K: tl.constexpr):
    """x_bk = s_bk·scale2 + g_k (fp32) of the prototypes [k0, k0 + BLOCK_K) of the rows ``s_rows``, and its mask."""
    offs_k = k0 + tl.arange(0, BLOCK_K)
    col_ok = offs_k < K
    ok = row_ok[:, None] & col_ok[None, :]
    s = tl.load(s_rows + offs_k[None, :], mask=ok, other=0.0)
    return s.to(tl.float32) * scale2 + tl.load(G_ptr + offs_k, mask=col_ok, other=0.0)[None, :], ok


@triton.jit
def _sinkhorn_row_kernel(
    S_ptr, G_ptr, F_ptr, Q_ptr,
    B, K, row_start, stride_sb, stride_qb, scale2,
    BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr,
    WRITE_Q: tl.constexpr,  # last pass: a second sweep writes Q for rows [row_start, B)
    ROW_VEC: tl.constexpr,  # as in _sinkhorn_col_kernel (128-bit loads and stores)
):
    K = (K // ROW_VEC) * ROW_VEC  # a no-op (the launcher checked): tells the compiler rows are 16-byte aligned
    stride_sb = (stride_sb // ROW_VEC) * ROW_VEC
    stride_qb = (stride_qb // ROW_VEC) * ROW_VEC
    pid = tl.program_id(0)
    offs_b = row_start + pid * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = offs_b < B
    s_rows = S_ptr + offs_b.to(tl.int64)[:, None] * stride_sb
    m = tl.full((BLOCK_B,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        x, ok = _shifted_scores(s_rows, G_ptr, k0, row_ok, K, scale2, BLOCK_K)
        x = tl.where(ok, x, float("-inf"))
        m_new = tl.maximum(m, tl.max(x, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # masked rows stay at −∞ without NaN
        l = l * tl.exp2(m - m_safe) + tl.sum(tl.exp2(x - m_safe[:, None]), 1)
        m = m_new
    f = -(m + tl.log2(tl.where(row_ok, l, 1.0)))  # masked rows: no log2(0)
    tl.store(F_ptr + offs_b, f, mask=row_ok)
    if WRITE_Q:
        q_rows = Q_ptr + (offs_b - row_start).to(tl.int64)[:, None] * stride_qb
        for k0 in range(0, K, BLOCK_K):
            x, ok = _shifted_scores(s_rows, G_ptr, k0, row_ok, K, scale2, BLOCK_K)
            x = tl.where(ok, x + f[:, None], float("-inf"))  # ≤ 0 up to rounding where ok: no overflow
            q = tl.exp2(x)
            tl.store(q_rows + (k0 + tl.arange(0, BLOCK_K))[None, :], q.to(Q_ptr.dtype.element_ty), mask=ok)


# ----------------------------------------------------------------------------------------------------
# Dispatch table: the only place where tile sizes are chosen (a static compile report enumerates VARIANTS).


@dataclass(frozen=True)
class KernelConfig:
    """Launch parameters of one kernel; ``block_b`` is unused by the merge kernel."""

    block_b: int
    block_k: int
    num_warps: int
    num_stages: int


KERNELS = ("col", "merge", "row")
# Every constexpr specialisation a launch can request, besides the tile sizes (one per kernel, from
# select_config) and ROW_VEC ∈ {1, 16 // itemsize} on every kernel but "merge" (``row_vec``).
VARIANTS = (
    ("col", {"HAS_F": False}),
    ("col", {"HAS_F": True}),
    ("merge", {"FINALIZE": True}),
    ("merge", {"FINALIZE": False}),
    ("row", {"WRITE_Q": False}),
    ("row", {"WRITE_Q": True}),
)
KERNEL_FNS = {
    "col": _sinkhorn_col_kernel,
    "merge": _sinkhorn_merge_kernel,
    "row": _sinkhorn_row_kernel,
}
SCORE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Programs the column pass aims for: ≈ 4 per SM of an H100 (132 SMs), enough to saturate memory bandwidth.
TARGET_PROGRAMS = 512

# Untuned (no GPU was available when they were chosen): 4096-element tiles, rows 16-byte vectorised along K.
_CONFIGS = {
    "col": KernelConfig(block_b=32, block_k=128, num_warps=4, num_stages=2),
    "merge": KernelConfig(block_b=1, block_k=256, num_warps=4, num_stages=1),
    "row": KernelConfig(block_b=8, block_k=512, num_warps=4, num_stages=2),
}


def config_for(table: dict[str, KernelConfig], dtype: torch.dtype, kernel: str) -> KernelConfig:
    """``table[kernel]`` for scores of ``dtype``, which must be one of SCORE_DTYPES."""
    if dtype not in SCORE_DTYPES:
        raise TypeError(f"scores: the Triton kernels take float16, bfloat16 or float32, got {dtype}")
    return table[kernel]


def select_config(dtype: torch.dtype, kernel: str) -> KernelConfig:
    """Tile sizes of ``kernel`` in KERNELS for scores of ``dtype`` (one per kernel: few compiled variants)."""
    return config_for(_CONFIGS, dtype, kernel)


def col_rows_per_split(b: int, k: int, cfg: KernelConfig) -> int:
    """Samples per program of the column pass: about TARGET_PROGRAMS programs, a multiple of BLOCK_B rows."""
    n_kblocks = triton.cdiv(k, cfg.block_k)
    n_split = max(1, min(triton.cdiv(b, cfg.block_b), triton.cdiv(TARGET_PROGRAMS, n_kblocks)))
    return triton.cdiv(triton.cdiv(b, n_split), cfg.block_b) * cfg.block_b


def row_vec(*tensors: torch.Tensor) -> int:
    """ROW_VEC: elements of the first tensor per 16 bytes when K and every tensor's row stride are multiples
    of it and every base pointer is 16-byte aligned (SwAV's K = 3000 is), else 1. Measured on the PTX for
    sm_90: 128-bit loads (ld.global.v4) with it, 32-bit ones without, because a mask offs_k < K with K of
    unknown divisibility forbids vectorising."""
    vec = 16 // tensors[0].element_size()
    aligned = tensors[0].shape[1] % vec == 0 and all(
        t.stride(0) % vec == 0 and t.data_ptr() % 16 == 0 for t in tensors)
    return vec if aligned else 1


def ensure_rowmajor(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its rows are contiguous (unit stride along K), else a row-major copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _col_pass(s, f, scale2, log2_mass, process_group):
    """g (K,) in base 2: log2(B/K) − log2 Σ_b 2^(x_bk + f_b) over every rank's samples."""
    b, k = s.shape
    cfg = select_config(s.dtype, "col")
    rows = col_rows_per_split(b, k, cfg)
    n_split = triton.cdiv(b, rows)
    f32 = dict(dtype=torch.float32, device=s.device)
    pm = torch.empty((n_split, k), **f32)
    pl = torch.empty((n_split, k), **f32)
    _sinkhorn_col_kernel[(triton.cdiv(k, cfg.block_k), n_split)](
        s, f if f is not None else pm, pm, pl,
        b, k, rows, s.stride(0), scale2,
        BLOCK_B=cfg.block_b, BLOCK_K=cfg.block_k, HAS_F=f is not None, ROW_VEC=row_vec(s),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    mcfg = select_config(s.dtype, "merge")
    g = torch.empty(k, **f32)
    finalize = process_group is None
    m = g if finalize else torch.empty(k, **f32)
    l = g if finalize else torch.empty(k, **f32)
    _sinkhorn_merge_kernel[(triton.cdiv(k, mcfg.block_k),)](
        pm, pl, g, m, l, k, n_split, log2_mass,
        BLOCK_K=mcfg.block_k, FINALIZE=finalize, num_warps=mcfg.num_warps, num_stages=mcfg.num_stages,
    )
    if finalize:
        return g
    top = m.clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX, group=process_group)
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    l = l * torch.exp2(m - safe)
    dist.all_reduce(l, op=dist.ReduceOp.SUM, group=process_group)
    return log2_mass - (safe + torch.log2(l))


def _row_pass(s, g, scale2, q=None, row_start=0):
    """f (B,) in base 2 for rows [row_start, B) (entries before row_start unset); with ``q`` also writes Q."""
    b, k = s.shape
    cfg = select_config(s.dtype, "row")
    f = torch.empty(b, dtype=torch.float32, device=s.device)
    _sinkhorn_row_kernel[(triton.cdiv(b - row_start, cfg.block_b),)](
        s, g, f, q if q is not None else f,
        b, k, row_start, s.stride(0), q.stride(0) if q is not None else 0, scale2,
        BLOCK_B=cfg.block_b, BLOCK_K=cfg.block_k, WRITE_Q=q is not None,
        ROW_VEC=row_vec(s, q) if q is not None else row_vec(s),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return f


def sinkhorn_triton(
    scores: torch.Tensor, epsilon: float, iterations: int, process_group=None, keep: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q (keep, K) float32 for the last ``keep`` rows, finite flag of the potentials); see the docstring."""
    s = ensure_rowmajor(scores)
    b, k = s.shape
    keep = b if keep is None else keep
    scale2 = LOG2E / epsilon
    log2_mass = math.log2(global_rows(b, process_group, s.device) / k)
    f = None
    q = torch.empty((keep, k), dtype=torch.float32, device=s.device)
    for it in range(iterations):
        g = _col_pass(s, f, scale2, log2_mass, process_group)
        last = it == iterations - 1
        f = _row_pass(s, g, scale2, q=q if last else None, row_start=b - keep if last else 0)
    finite = torch.isfinite(f[b - keep :]).all() & torch.isfinite(g).all()
    return q, finite
