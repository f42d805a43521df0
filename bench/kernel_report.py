"""Static report on every Triton kernel configuration the InfoNCE dispatcher can launch.

Why: GPU time is scarce, and a dispatch-table edit (tile sizes, warps, stages) can silently make a
kernel spill registers to local memory or lose its tensor-core path, which a later benchmark would
only show as a slowdown. This tool is the cheap guard between GPU measurements: it compiles each
configuration ahead of time for a GPU target on a machine without a GPU (Triton → PTX → cubin with the
bundled ptxas) and reads the cubin back with the bundled ``cuobjdump`` / ``nvdisasm``.

What is enumerated (``enumerate_cases``): for float32, float16 and bfloat16, one feature width d per
distinct dispatch outcome of ``select_config`` (every ``block_d`` in ``BLOCK_D_CHOICES`` the dtype allows,
plus a d above ``MAX_BLOCK_D`` so that ONE_D_CHUNK is False). For each d, the launch parameters are
not re-derived here: the real launchers of ``infonce_triton`` run on small CPU tensors with the two
kernels replaced by recorders, over every input pattern of ``TritonPairwiseLSE`` (exclusion or not,
column LSE or not, each subset of x / y / σ requiring grad, forward and backward), so the recorded
flags, block sizes, warps and stages are exactly those the dispatcher passes. Arguments are
specialised as Triton's launcher does for row-major inputs: tensors as 16-byte-aligned pointers, an
integer 1 as the constant 1, other integers as i32 with a divisible-by-16 hint when they are (the
representative widths are multiples of 16). Each case is compiled for sm_90a and sm_80.

Per case it records registers, spill bytes, shared memory (dynamic as launched, plus static) and the
number of tensor-core MMA instructions (HGMMA / HMMA, any variant) in the SASS. Spills are the local
memory per thread that ``cuobjdump --dump-resource-usage`` reports: ptxas puts them in the stack frame
(STACK, which these call-free kernels use for nothing else) plus LOCAL; ``spill_bytes`` is their sum.

Usage: ``python bench/kernel_report.py [--arch 90 80] [--json OUT] [--subset]``. The process that
compiles must not have TRITON_INTERPRET set (it turns ``@triton.jit`` into interpreter functions at
import time); the CLI drops it from its own environment before importing Triton.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

ARCHES = (90, 80)
DTYPE_NAMES = ("float32", "float16", "bfloat16")
KERNEL_FNS = {"fwd": "_infonce_fwd_kernel", "fwd_dx": "_infonce_fwd_kernel", "bwd": "_infonce_bwd_kernel"}
KERNEL_FNS_INV = {"_infonce_fwd_kernel": "fwd", "_infonce_bwd_kernel": "bwd"}
# Block sizes, precision and strides are not "flags"; everything else passed by keyword is.
_NOT_FLAGS = ("BLOCK_R", "BLOCK_C", "BLOCK_A", "BLOCK_B", "BLOCK_D", "DOT_PRECISION", "num_warps",
              "num_stages")
_MMA_RE = re.compile(r"\bHG?MMA(?:\.[\w.]+)?")
_RES_RE = re.compile(r"\b(REG|STACK|SHARED|LOCAL):(\d+)")
_ROWS = 64  # rows of the recording tensors: a multiple of 16, as a typical batch
# Public entry points that reach TritonPairwiseLSE with (exclusion given, column LSE wanted).
_USED_BY = {
    (False, False): ("info_nce", "clip_loss(process_group)", "pairwise_lse"),
    (True, False): ("nt_xent", "pairwise_lse"),
    (False, True): ("clip_loss", "pairwise_lse"),
    (True, True): ("pairwise_lse",),
}


@dataclass(frozen=True)
class KernelCase:
    """One compilation: a kernel with the exact constexprs and specialisation of one dispatcher launch."""

    kernel: str  # "fwd" | "fwd_dx" | "bwd" (the select_config key)
    dtype: str
    d: int  # representative feature width
    arch: int  # CUDA compute capability (90 compiles for sm_90a)
    flags: dict  # HAS_EXCL/COL_STATS/COMPUTE_DX or A_TERM/B_TERM/EXCL_MODE, plus ONE_D_CHUNK
    block_r: int
    block_c: int
    block_d: int
    num_warps: int
    num_stages: int
    used_by: tuple  # public entry points whose launches include this configuration
    signature: dict = field(repr=False)
    constexprs: dict = field(repr=False)
    attrs: dict = field(repr=False)

    @property
    def name(self) -> str:
        """Readable identifier, e.g. ``bwd[A_TERM,EXCL_MODE=1] bfloat16 d=64 sm_90``."""
        return f"{self.kernel}[{flags_label(self.flags)}] {self.dtype} d={self.d} sm_{self.arch}"


def flags_label(flags: dict) -> str:
    """Compact text of a flag dict: true booleans by name, non-zero integers as NAME=value."""
    parts = []
    for key, value in flags.items():
        if isinstance(value, bool):
            if value:
                parts.append(key)
        elif value:
            parts.append(f"{key}={value}")
    return ",".join(parts) or "-"


class _Recorder:
    """Stands in for a @triton.jit kernel: ``kernel[grid](*args, **kwargs)`` records the call."""

    def __init__(self, fn_name: str, calls: list):
        self.fn_name, self.calls = fn_name, calls

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.calls.append((self.fn_name, args, kwargs))

        return launch


def _specialise(arg_names, args, kwargs):
    """(signature, constexprs, attrs) for ASTSource, as Triton's launcher specialises these arguments."""
    import torch

    ptr_types = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.int32: "*i32"}
    signature, constexprs, attrs = {}, {}, {}
    for i, (name, value) in enumerate(zip(arg_names, args, strict=False)):
        if isinstance(value, torch.Tensor):
            signature[name] = ptr_types[value.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, int) and value == 1:
            signature[name], constexprs[name] = "constexpr", 1
        elif isinstance(value, int):
            signature[name] = "i32"
            if value % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            raise TypeError(f"unexpected positional kernel argument {name}={value!r}")
    for name in arg_names[len(args):]:
        signature[name], constexprs[name] = "constexpr", kwargs[name]
    return signature, constexprs, attrs


def _representative_widths(mod, dtype) -> list[int]:
    """One d per distinct dispatch outcome (configs of all kernels and ONE_D_CHUNK), smallest first.

    Candidates are multiples of 16 up to 4·MAX_BLOCK_D, powers of two tried first so that each
    outcome is represented by the plainest width (16, 32, …, and 2·MAX_BLOCK_D for the chunked case).
    """
    top = 4 * mod.MAX_BLOCK_D[dtype]
    powers = [1 << k for k in range(4, top.bit_length()) if (1 << k) <= top]
    candidates = powers + [d for d in range(16, top + 1, 16) if d not in powers]
    seen, widths = set(), []
    for d in candidates:
        configs = [mod.select_config(dtype, d, k) for k in mod.KERNELS]
        outcome = tuple((cfg, d <= cfg.block_d) for cfg in configs)
        if outcome not in seen:
            seen.add(outcome)
            widths.append(d)
    return sorted(widths)


def _record_launches(mod, dtype, d: int) -> list[tuple[tuple, str, tuple, dict]]:
    """Every kernel launch the launchers make at width d: (pattern key, kernel fn name, args, kwargs)."""
    import torch

    calls: list = []
    saved = mod._infonce_fwd_kernel, mod._infonce_bwd_kernel
    mod._infonce_fwd_kernel = _Recorder("_infonce_fwd_kernel", calls)
    mod._infonce_bwd_kernel = _Recorder("_infonce_bwd_kernel", calls)
    launches = []
    try:
        for has_excl in (False, True):
            for want_cols in (False, True):
                for grads in range(8):
                    x = torch.randn(_ROWS, d, dtype=dtype).requires_grad_(bool(grads & 1))
                    y = torch.randn(_ROWS, d, dtype=dtype).requires_grad_(bool(grads & 2))
                    scale = torch.ones(1).requires_grad_(bool(grads & 4))
                    excl = torch.arange(_ROWS, dtype=torch.int32) if has_excl else None
                    calls.clear()
                    with torch.no_grad() if grads == 0 else torch.enable_grad():
                        rows, cols = mod.TritonPairwiseLSE.apply(x, y, scale, excl, want_cols)
                    if grads:
                        (rows.sum() + cols.sum()).backward()
                    launches += [((has_excl, want_cols), *call) for call in calls]
    finally:
        mod._infonce_fwd_kernel, mod._infonce_bwd_kernel = saved
    return launches


def _max_state(entries: list[dict]) -> list[dict]:
    """Entries whose set of enabled flags is not strictly contained in another entry's (same kernel)."""
    def on(e):
        return {f"{k}={v}" for k, v in e["flags"].items() if v}

    return [e for e in entries if not any(on(e) < on(o) for o in entries if o["kernel"] == e["kernel"])]


def enumerate_cases(arches=ARCHES, dtypes=DTYPE_NAMES, subset: bool = False) -> list[KernelCase]:
    """All distinct kernel configurations the dispatcher can launch, one KernelCase per (config, arch).

    ``subset`` keeps the representative CI subset: at every dtype and width, only the launches with a
    maximal set of flags per kernel (most live state, so most spill-prone): fwd with HAS_EXCL and
    COL_STATS, fwd_dx with HAS_EXCL, bwd with both terms and either exclusion mode. The default (full)
    set is the reference; the subset is a sample of it. Works with or without TRITON_INTERPRET (the
    kernels are replaced by recorders while enumerating).
    """
    import torch

    from contrasting.losses import infonce_triton as mod

    order = ("info_nce", "nt_xent", "clip_loss", "clip_loss(process_group)", "pairwise_lse")
    entries = []
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for d in _representative_widths(mod, dtype):
            found: dict = {}
            for pattern, fn_name, args, kwargs in _record_launches(mod, dtype, d):
                signature, constexprs, attrs = _specialise(getattr(mod, fn_name).arg_names, args, kwargs)
                key = (fn_name, repr(sorted(constexprs.items())), repr(sorted(signature.items())),
                       repr(sorted(attrs.items())), kwargs["num_warps"], kwargs["num_stages"])
                if key not in found:
                    flags = {k: v for k, v in kwargs.items() if k not in _NOT_FLAGS}
                    kernel = "fwd_dx" if flags.get("COMPUTE_DX") else KERNEL_FNS_INV[fn_name]
                    found[key] = dict(
                        kernel=kernel, dtype=dtype_name, d=d, flags=flags,
                        block_r=kwargs.get("BLOCK_R", kwargs.get("BLOCK_A")),
                        block_c=kwargs.get("BLOCK_C", kwargs.get("BLOCK_B")), block_d=kwargs["BLOCK_D"],
                        num_warps=kwargs["num_warps"], num_stages=kwargs["num_stages"],
                        used_by=set(), signature=signature, constexprs=constexprs, attrs=attrs,
                    )
                found[key]["used_by"].update(_USED_BY[pattern])
            entries += _max_state(list(found.values())) if subset else list(found.values())
    kernel_rank = list(KERNEL_FNS)
    entries.sort(key=lambda e: (DTYPE_NAMES.index(e["dtype"]), e["d"], kernel_rank.index(e["kernel"]),
                                flags_label(e["flags"])))
    return [KernelCase(arch=arch, **dict(e, used_by=tuple(sorted(e["used_by"], key=order.index))))
            for arch in arches for e in entries]


def _tool(name: str) -> str:
    """Path of Triton's bundled (or TRITON_<NAME>_PATH) CUDA binary tool."""
    from triton import knobs

    return getattr(knobs.nvidia, name).path


def analyse_cubin(cubin: bytes) -> dict:
    """Registers, local/stack bytes per thread, static shared bytes and MMA counts of a one-kernel cubin."""
    with tempfile.TemporaryDirectory(prefix="kernel_report_") as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        usage = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", path],
                               capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([_tool("nvdisasm"), "-c", path],
                              capture_output=True, text=True, check=True).stdout
    res = {k: int(v) for k, v in _RES_RE.findall(usage.split("Function", 1)[-1])}
    ops = _MMA_RE.findall(sass)
    return dict(registers=res["REG"], spill_bytes=res["STACK"] + res["LOCAL"], stack_bytes=res["STACK"],
                local_bytes=res["LOCAL"], shared_static=res["SHARED"], mma_count=len(ops),
                mma_ops=sorted(set(ops)))


def compile_case(case: KernelCase) -> dict:
    """Compile one case with Triton for its arch and return the case's fields plus the cubin analysis.

    On a compile error the result has ``error`` (the exception text) instead of the measurements.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from contrasting.losses import infonce_triton as mod

    fn = getattr(mod, KERNEL_FNS[case.kernel])
    if not isinstance(fn, triton.runtime.JITFunction):
        raise RuntimeError("the Triton kernels are interpreter functions: unset TRITON_INTERPRET in the "
                           "compiling process (read when contrasting.losses.infonce_triton is imported)")
    row = {k: v for k, v in asdict(case).items() if k not in ("signature", "constexprs", "attrs")}
    row["name"] = case.name
    start = time.perf_counter()
    try:
        compiled = triton.compile(ASTSource(fn=fn, signature=case.signature, constexprs=case.constexprs,
                                            attrs=case.attrs),
                                  target=GPUTarget("cuda", case.arch, 32),
                                  options=dict(num_warps=case.num_warps, num_stages=case.num_stages))
    except Exception as exc:  # reported per case, the run goes on
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(analyse_cubin(compiled.asm["cubin"]))
    row["shared_bytes"] = compiled.metadata.shared
    row["compile_s"] = round(time.perf_counter() - start, 2)
    return row


def _no_interpret_env():
    """Drop TRITON_INTERPRET from this process's environment (inherited by the compile workers)."""
    os.environ.pop("TRITON_INTERPRET", None)


def run_report(cases: list[KernelCase], workers: int = 2) -> list[dict]:
    """Compile ``cases`` in a pool of ``workers`` spawned processes; rows in the order of ``cases``."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("run_report needs TRITON_INTERPRET unset (the workers inherit it)")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(compile_case, cases, chunksize=1))


def format_table(rows: list[dict]) -> str:
    """Aligned text table of report rows (used when ``rich`` is not installed)."""
    header, lines = _table_cells(rows)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) if c[:1].isdigit() else c.ljust(w) for c, w in zip(r, widths, strict=True))
           .rstrip() for r in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _table_cells(rows):
    header = ["arch", "dtype", "d", "kernel", "flags", "R×C×D", "warps", "stages", "regs", "spill B",
              "smem B", "MMA", "used by"]
    lines = []
    for r in rows:
        base = [f"sm_{r['arch']}", r["dtype"], str(r["d"]), r["kernel"], flags_label(r["flags"]),
                f"{r['block_r']}×{r['block_c']}×{r['block_d']}", str(r["num_warps"]), str(r["num_stages"])]
        if "error" in r:
            lines.append(base + ["ERROR", "", "", "", r["error"].splitlines()[0][:60]])
        else:
            lines.append(base + [str(r["registers"]), str(r["spill_bytes"]), str(r["shared_bytes"]),
                                 str(r["mma_count"]), ",".join(r["used_by"])])
    return header, lines


def print_table(rows: list[dict]) -> None:
    """Print the report as a ``rich`` table when available, else as aligned text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(format_table(rows))
        return
    header, lines = _table_cells(rows)
    table = Table(*header)
    for line in lines:
        table.add_row(*line)
    Console().print(table)


def problems(rows: list[dict]) -> list[str]:
    """The guard's findings: compile errors, local-memory spills, half-precision cases without MMA."""
    found = []
    for r in rows:
        if "error" in r:
            found.append(f"{r['name']}: compile error: {r['error']}")
            continue
        if r["spill_bytes"]:
            found.append(f"{r['name']}: spills {r['spill_bytes']} B of local memory per thread "
                         f"({r['registers']} registers)")
        if r["dtype"] in ("float16", "bfloat16") and r["mma_count"] == 0:
            want = "HGMMA" if r["arch"] >= 90 else "HMMA"
            found.append(f"{r['name']}: no tensor-core instruction ({want}) in the SASS")
    return found


def main(argv=None) -> int:
    """CLI entry point; returns 1 when ``problems`` finds anything, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHES), help="compute capabilities")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON to OUT")
    parser.add_argument("--subset", action="store_true",
                        help="the reduced CI set (maximal flag sets, see enumerate_cases)")
    parser.add_argument("--workers", type=int, default=2, help="compile processes (default 2)")
    args = parser.parse_args(argv)
    _no_interpret_env()
    start = time.perf_counter()
    cases = enumerate_cases(tuple(args.arch), subset=args.subset)
    rows = run_report(cases, workers=args.workers)
    wall = time.perf_counter() - start
    print_table(rows)
    found = problems(rows)
    print(f"\n{len(rows)} configurations, {wall:.1f} s wall, {len(found)} problem(s)")
    for line in found:
        print(f"  {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"wall_s": round(wall, 1), "subset": args.subset, "rows": rows}, f, indent=1)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
