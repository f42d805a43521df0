"""Tile-size sweep of the InfoNCE kernels on a CUDA device, to choose ``infonce_triton.select_config`` entries.

Run: ``python bench/sweep_infonce.py [--budget-s 120] [--json PATH]``. For each kernel (``fwd``: CLIP's forward
with column statistics; ``fwd_dx``: MoCo's single-pass forward; ``bwd``: one side of CLIP's backward, both
terms) it times the current table entry first, then candidate ``KernelConfig`` s, with
``triton.testing.do_bench`` (which synchronises the device), until its share of the time budget is spent.
Candidates that fail to compile (shared memory, registers) are recorded as such.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from contrasting.losses import infonce_triton as K

PROBLEMS = {  # kernel: (rows, columns, features) at the benchmark suite's GPU sizes
    "fwd": (32768, 32768, 256),
    "bwd": (32768, 32768, 256),
    "fwd_dx": (4096, 65536, 128),
}
SHARE = {"fwd": 0.4, "bwd": 0.4, "fwd_dx": 0.2}


def candidates(d: int) -> list[K.KernelConfig]:
    """Tile grid: rows × columns ∈ {32, 64, 128}², D chunk ∈ {d/2, d} (≥ 64), 4 or 8 warps, 1–3 stages."""
    chunks = sorted({min(d, 256), max(64, min(d, 256) // 2)}, reverse=True)
    out = []
    for br, bc, bd, w, s in itertools.product((64, 128, 32), (64, 32, 128), chunks, (8, 4), (2, 3, 1)):
        out.append(K.KernelConfig(br, bc, bd, w, s))
    random.Random(0).shuffle(out)  # a sweep cut short by its budget still samples the whole grid
    return out


def make_call(kernel: str, dtype: torch.dtype):
    r, m, d = PROBLEMS[kernel]
    x = F.normalize(torch.randn(r, d, device="cuda"), dim=1).to(dtype)
    y = F.normalize(torch.randn(m, d, device="cuda"), dim=1).to(dtype)
    scale = torch.tensor([1 / 0.07], device="cuda")
    if kernel == "fwd":
        return lambda: K._fwd(x, y, scale, None, True, False)
    if kernel == "fwd_dx":
        return lambda: K._fwd(x, y, scale, None, False, True)
    lse, col_lse, _ = K._fwd(x, y, scale, None, True, False)
    g = torch.full((r,), 1.0, device="cuda")
    gc = torch.full((m,), 1.0, device="cuda")
    gnorm = torch.ones(1, device="cuda")
    return lambda: K._bwd_side(x, y, scale, None, K.EXCL_NONE, gnorm, lse, g, col_lse, gc)


def sweep(kernel: str, dtype: torch.dtype, budget_s: float) -> list[dict]:
    """Times of the table's entry and then of each candidate of ``kernel`` until ``budget_s`` is spent."""
    original = K.select_config
    d = PROBLEMS[kernel][2]
    default = original(dtype, d, kernel)
    rows, start = [], time.perf_counter()
    call = make_call(kernel, dtype)
    for i, cfg in enumerate([default] + [c for c in candidates(d) if c != default]):
        if time.perf_counter() - start > budget_s:
            break
        K.select_config = lambda dt, dd, kern, cfg=cfg: cfg if kern == kernel else original(dt, dd, kern)
        try:
            ms = do_bench(call, warmup=5, rep=25)
            rows.append(dict(kernel=kernel, config=cfg.__dict__, ms=ms, default=i == 0))
        except Exception as e:  # compile failures are results here
            rows.append(dict(kernel=kernel, config=cfg.__dict__, error=f"{type(e).__name__}: {str(e)[:120]}",
                             default=i == 0))
        finally:
            K.select_config = original
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = []
    for kernel in ("fwd", "bwd", "fwd_dx"):
        rows = sweep(kernel, torch.bfloat16, args.budget_s * SHARE[kernel])
        results += rows
        ok = sorted((r for r in rows if "ms" in r), key=lambda r: r["ms"])
        base = next((r for r in rows if r["default"] and "ms" in r), None)
        print(f"\n{kernel} {PROBLEMS[kernel]} bf16: {len(rows)} configs, {sum('error' in r for r in rows)} failed; "
              f"table entry {base['config'] if base else None}: {base['ms'] if base else float('nan'):.3f} ms")
        for r in ok[:6]:
            print(f"  {r['ms']:.3f} ms  {r['config']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, results=results), f, indent=1)


if __name__ == "__main__":
    main()
