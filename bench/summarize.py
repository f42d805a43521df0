"""Print a pytest-benchmark JSON file as a table: each fused row beside its reference from the same run.

    python -m bench.summarize runs/bench-*.json
"""

from __future__ import annotations

import json
import sys

KEYS = ("entry", "n", "m", "d", "k", "b", "views", "dtype")


def rows(path: str) -> list[dict]:
    with open(path) as f:
        data = json.load(f)
    out = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info") or {}
        if "impl" in info:
            out.append({**info, "name": bench["name"].split("[")[0]})
    return out


def table(records: list[dict]) -> str:
    """Markdown table: case, impl, median, throughput, peak memory, speed-up and memory ratio vs reference."""
    case = lambda r: (r["name"],) + tuple(str(r.get(k, "")) for k in KEYS)
    refs = {case(r): r for r in records if r["impl"] == "reference"}
    lines = ["| case | impl | device | median (s) | throughput | peak MiB | speed-up vs ref | memory vs ref |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (case(r), r["impl"])):
        ref = refs.get(case(r))
        label = " ".join(f"{k}={r[k]}" for k in KEYS if k in r)
        speed = f"{ref['median_s'] / r['median_s']:.2f}x" if ref else ""
        mem = ""
        if ref and r.get("peak_memory_mb") is not None and ref.get("peak_memory_mb"):
            mem = f"{r['peak_memory_mb'] / ref['peak_memory_mb']:.3f}"
        peak = "" if r.get("peak_memory_mb") is None else f"{r['peak_memory_mb']:.1f}"
        lines.append(f"| {label} | {r['impl']} | {r['device']} | {r['median_s']:.4f} | "
                     f"{r['throughput']:.4g} {r['throughput_unit']} | {peak} | {speed} | {mem} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"\n{path}\n")
        print(table(rows(path)))
