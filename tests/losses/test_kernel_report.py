"""Static guard on the Triton InfoNCE kernels: compiled for sm_90a and sm_80 without a GPU, none spills
registers to local memory and every half-precision one uses tensor cores.

Runs ``bench/kernel_report.py --subset`` (the maximal-flag configurations at every dtype and width, about
130 compilations, a few minutes on 2 cores; ``python bench/kernel_report.py`` checks all of them) in a
subprocess, because this test session sets TRITON_INTERPRET=1 (tests/conftest.py) and the compiling
process must not have it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "bench" / "kernel_report.py"
TOOLS = ("ptxas", "cuobjdump", "nvdisasm")


def _missing_toolchain() -> str | None:
    """Why the report cannot run here (no triton, or its bundled CUDA tools are absent), else None."""
    spec = importlib.util.find_spec("triton")
    if spec is None or spec.origin is None:
        return "triton is not installed"
    bin_dir = Path(spec.origin).parent / "backends" / "nvidia" / "bin"
    missing = [t for t in TOOLS if not os.access(bin_dir / t, os.X_OK)]
    if missing:
        return f"triton's bundled {', '.join(missing)} not found in {bin_dir}"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> list[dict]:
    """Rows of ``kernel_report.py --subset``, compiled in a subprocess without TRITON_INTERPRET."""
    reason = _missing_toolchain()
    if reason:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = tmp_path_factory.mktemp("kernel_report") / "report.json"
    proc = subprocess.run([sys.executable, str(REPORT), "--subset", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    if not out.exists():
        pytest.fail(f"kernel_report.py exited with {proc.returncode} without a report:\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rows = json.loads(out.read_text())["rows"]
    assert rows, "kernel_report.py enumerated no configuration"
    return rows


def test_every_configuration_compiles(report):
    errors = [f"{r['name']}: {r['error']}" for r in report if "error" in r]
    assert not errors, "Triton failed to compile:\n" + "\n".join(errors)


def test_covers_every_dispatch_class(report):
    from contrasting.losses import infonce_triton as mod

    for dtype_name in ("float32", "float16", "bfloat16"):
        rows = [r for r in report if r["dtype"] == dtype_name]
        max_d = mod.MAX_BLOCK_D[getattr(torch, dtype_name)]
        want = {b for b in mod.BLOCK_D_CHOICES if b <= max_d}
        assert {r["block_d"] for r in rows} == want, f"{dtype_name}: block_d classes missing"
        assert any(not r["flags"]["ONE_D_CHUNK"] for r in rows), f"{dtype_name}: no d > MAX_BLOCK_D case"
        assert {r["arch"] for r in rows} == {90, 80}, f"{dtype_name}: an arch is missing"
        assert {r["kernel"] for r in rows} == set(mod.KERNELS), f"{dtype_name}: a kernel is missing"


def test_no_register_spills(report):
    spills = [f"{r['name']} ({r['block_r']}×{r['block_c']}×{r['block_d']}, {r['num_warps']} warps, "
              f"{r['num_stages']} stages): {r['spill_bytes']} B local memory per thread, "
              f"{r['registers']} registers" for r in report if r.get("spill_bytes")]
    assert not spills, "configurations spill registers:\n" + "\n".join(spills)


def test_half_precision_uses_tensor_cores(report):
    missing = [f"{r['name']}: no {'HGMMA' if r['arch'] >= 90 else 'HMMA'} instruction in the SASS"
               for r in report
               if r["dtype"] in ("float16", "bfloat16") and "error" not in r and r["mma_count"] == 0]
    assert not missing, "half-precision configurations without tensor cores:\n" + "\n".join(missing)
