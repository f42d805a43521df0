"""How closely the DALI executors reproduce the torchvision reference on this machine: a table, not a test.

Run: ``python bench/agreement_dali.py [--out FILE.json]`` (from the repository root; GPU rows need CUDA).

Decoders: DALI's CPU decoder and, on a GPU, the mixed decoder with and without ``jpeg_fancy_upsampling``
against PIL on the test suite's JPEGs — mean |Δ| and the fraction off by more than 4 levels (uint8).
Recipes: every registered recipe, DALI (CPU; GPU with and without fancy upsampling) vs torchvision, the
largest per-view mean |Δ| and outlier fraction (> 0.1, normalised), as ``tests/data/test_equivalence.py``
bounds them (0.02 / 0.01).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from contrasting.data import ImageFolderSource, get_recipe, list_recipes, make_loader, scan_source
from tests.data.helpers import decode_dali, decode_reference, make_folder, max_normalised_diff

SIZES = {"swav": dict(global_size=48, local_size=24), "eval_center": dict(size=32), "eval_resize": dict(size=32)}


def decoder_rows(paths: list[str], settings) -> list[dict]:
    """One row per (device, fancy_upsampling) in ``settings``: DALI's decode of ``paths`` vs PIL's."""
    rows = []
    for device, fancy in settings:
        d = np.concatenate([np.abs(a.astype(np.int16) - decode_reference(p).astype(np.int16)).ravel()
                            for a, p in zip(decode_dali(paths, device, fancy), paths, strict=True)])
        rows.append(dict(kind="decoder", device=device, fancy_upsampling=fancy, mean_levels=float(d.mean()),
                         off_by_more_than_4=float((d > 4).mean()), max_levels=int(d.max())))
    return rows


def recipe_rows(catalog, settings) -> list[dict]:
    """One row per recipe × (device, fancy_upsampling): DALI vs torchvision, worst view of all batches."""
    rows = []
    for name in list_recipes():
        if name == "dense":
            continue
        recipe = get_recipe(name, **SIZES.get(name, dict(size=48)))
        ref = list(make_loader(recipe, catalog, 6, backend="torchvision", num_workers=0, seed=1))
        for device, fancy in settings:
            dali = make_loader(recipe, catalog, 6, backend="dali", device=device, seed=1, fancy_upsampling=fancy)
            diffs = [max_normalised_diff(a.cpu(), b) for d, t in zip(dali, ref, strict=True)
                     for a, b in zip(d.views, t.views, strict=True)]
            rows.append(dict(kind="recipe", recipe=name, device=device, fancy_upsampling=fancy,
                             photometric=dali.photometric, max_mean=max(m for m, _ in diffs),
                             max_outliers=max(o for _, o in diffs)))
    return rows


def main() -> None:
    """Print the decoder and recipe agreement tables; write them as JSON with ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--devices", default="cpu,gpu", help="comma-separated: cpu, gpu (GPU rows need CUDA)")
    args = ap.parse_args()
    devices = args.devices.split(",")
    settings = [("cpu", True)] if "cpu" in devices else []
    settings += [("gpu", True), ("gpu", False)] if "gpu" in devices and torch.cuda.is_available() else []
    catalog = scan_source(ImageFolderSource(make_folder(Path(tempfile.mkdtemp()), per_class=4)))
    rows = decoder_rows([str(p) for p in catalog.paths], settings) + recipe_rows(catalog, settings)
    for r in rows:
        print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(dict(device=torch.cuda.get_device_name() if torch.cuda.is_available()
                                            else "cpu", rows=rows), indent=1))


if __name__ == "__main__":
    main()
