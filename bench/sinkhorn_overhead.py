"""Where the fused Sinkhorn's time goes on a GPU: host launch cost against device time.

    python bench/sinkhorn_overhead.py [--module NAME=path/to/sinkhorn_triton.py ...] [--out result.json]

For each Sinkhorn kernel module (the package's own, plus any older copy given with ``--module``, loaded as a
submodule of ``contrasting.losses`` so its relative imports resolve) and each score dtype, B=4096, K=3000,
ε=0.05, 3 iterations (the suite's case), three medians of 200 calls:

* ``wall``: ``sinkhorn_triton`` called and synchronised each time (what ``bench_sinkhorn`` measures);
* ``graph``: the same call captured once in a CUDA graph and replayed: device time without Python or
  launch cost;
* ``queued``: 200 calls queued back to back, then one synchronisation (host cost overlapped with the GPU).

``wall − graph`` is the host's share. Also: one empty Triton kernel's launch-to-completion time, and the
eager and compiled references' wall time. Prints one JSON object and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time

import torch
import triton

import contrasting.losses  # noqa: F401  (the package whose submodules --module files join)
from contrasting.losses import sinkhorn_triton as current
from contrasting.losses.sinkhorn_reference import sinkhorn_reference

B, K, EPSILON, ITERATIONS, CALLS = 4096, 3000, 0.05, 3, 200


@triton.jit
def _empty_kernel(X):
    pass


def _median_wall(fn, calls: int = CALLS) -> float:
    """Median seconds of ``fn(); synchronize()``."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _queued(fn, calls: int = CALLS) -> float:
    """Seconds per call of ``calls`` queued calls and one synchronisation."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / calls


def _graph(fn) -> float:
    """Median seconds of one replay of ``fn`` captured in a CUDA graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return _median_wall(graph.replay)


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(f"contrasting.losses.{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    modules = {"current": current} | {n: _load(n, p) for n, p in (m.split("=", 1) for m in args.module)}
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(B, 128, generator=g), dim=1)
    protos = torch.nn.functional.normalize(torch.randn(K, 128, generator=g), dim=1)
    base = (emb @ protos.T).cuda()
    x = torch.empty(1, device="cuda")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
              "empty_triton_launch_s": _median_wall(lambda: _empty_kernel[(1,)](x)),
              "empty_triton_queued_s": _queued(lambda: _empty_kernel[(1,)](x), 2000), "rows": []}
    compiled = torch.compile(sinkhorn_reference)
    for dtype in (torch.float32, torch.bfloat16):
        scores = base.to(dtype)
        for impl, fn in (("reference", sinkhorn_reference), ("reference_compiled", compiled)):
            call = lambda fn=fn, scores=scores: fn(scores, epsilon=EPSILON, iterations=ITERATIONS)
            call()
            result["rows"].append({"impl": impl, "dtype": str(dtype), "wall_s": _median_wall(call)})
        for name, module in modules.items():
            call = lambda m=module, scores=scores: m.sinkhorn_triton(scores, EPSILON, ITERATIONS)
            call()
            result["rows"].append({"impl": f"fused-{name}", "dtype": str(dtype), "wall_s": _median_wall(call),
                                   "queued_s": _queued(call), "graph_s": _graph(call)})
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
