"""Contact sheets of a built-in world: one PNG per corpus and per task, read back from the written files.

Each sheet shows items of the first split as stored on disk (so it also shows what the loaders will see), scaled
×2 with nearest-neighbour sampling, with the target next to the image: class names as captions, segmentation
masks in palette colours over the dimmed grey image, foreground masks likewise, depth through a viridis-like colour map
(yellow = near, purple = far), view pairs side by side with the shift class and offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from contrasting.data.builtin.layout import decode_depth, read_list, read_png, write_png
from contrasting.data.builtin.scene import BACKGROUND_DEPTH

ZOOM = 2
CAPTION = 14  # caption height under a cell, pixels
HEADER = 36  # title height, pixels
PAD = 4
PALETTE = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)], np.float32)
VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float32)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def colourise_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image in dimmed grey with PALETTE[(k − 1) mod 10] painted where mask = k > 0; uint8 (H, W, 3)."""
    grey = image.astype(np.float32).mean(axis=-1, keepdims=True) * 0.4 + 40.0
    colours = PALETTE[(np.maximum(mask.astype(np.int64), 1) - 1) % len(PALETTE)]
    return np.where((mask > 0)[..., None], colours, grey).astype(np.uint8)


def colourise_depth(depth: np.ndarray, near: float) -> np.ndarray:
    """Map depth in [near, BACKGROUND_DEPTH] to a viridis-like ramp, yellow = near, purple = far; uint8."""
    t = np.clip((BACKGROUND_DEPTH - depth) / max(BACKGROUND_DEPTH - near, 1e-6), 0.0, 1.0) * (len(VIRIDIS) - 1)
    i = np.minimum(t.astype(np.int64), len(VIRIDIS) - 2)
    f = (t - i)[..., None]
    return np.rint(VIRIDIS[i] * (1 - f) + VIRIDIS[i + 1] * f).astype(np.uint8)


def _zoom(array: np.ndarray) -> Image.Image:
    image = Image.fromarray(array)
    return image.resize((image.width * ZOOM, image.height * ZOOM), Image.NEAREST)


def _sheet(title: str, subtitle: str, cells: Sequence[tuple[list[np.ndarray], str]], columns: int,
           legend: Sequence[tuple[str, np.ndarray]] = ()) -> Image.Image:
    """Lay out cells (a row of tiles + caption) in a grid under a title and an optional colour legend."""
    tile = cells[0][0][0].shape[0] * ZOOM
    width_cell = len(cells[0][0]) * (tile + PAD)
    rows = -(-len(cells) // columns)
    legend_h = CAPTION + PAD if legend else 0
    width = max(columns * (width_cell + PAD) + PAD, 480)
    height = HEADER + legend_h + rows * (tile + CAPTION + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 2), title, fill=(0, 0, 0), font=_font(14))
    draw.text((PAD, 19), subtitle, fill=(80, 80, 80), font=_font(11))
    x = PAD
    for name, colour in legend:
        draw.rectangle((x, HEADER, x + 10, HEADER + 10), fill=tuple(int(c) for c in colour))
        draw.text((x + 13, HEADER - 1), name, fill=(0, 0, 0), font=_font(11))
        x += 20 + int(draw.textlength(name, font=_font(11)))
    for n, (tiles, caption) in enumerate(cells):
        r, c = divmod(n, columns)
        x0, y0 = PAD + c * (width_cell + PAD), HEADER + legend_h + r * (tile + CAPTION + PAD)
        for k, array in enumerate(tiles):
            sheet.paste(_zoom(array), (x0 + k * (tile + PAD), y0))
        draw.text((x0, y0 + tile + 1), caption, fill=(0, 0, 0), font=_font(11))
    return sheet


def _pick(rows: list[list[str]], label_column: int | None, items: int) -> list[list[str]]:
    """Up to ``items`` rows, round-robin over labels (so every class shows) when rows have labels."""
    if label_column is None:
        return rows[:items]
    by_label: dict[str, list[list[str]]] = {}
    for row in rows:
        by_label.setdefault(row[label_column], []).append(row)
    queues, picked = [by_label[k] for k in sorted(by_label, key=int)], []
    depth = 0
    while len(picked) < items and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q) and len(picked) < items)
        depth += 1
    return picked


def entry_sheet(entry_dir: Path, info: dict, split: str, near: float, items: int = 32) -> Image.Image:
    """The contact sheet of one entry (``info`` is its manifest record), from split ``split``'s list file."""
    rows = read_list(entry_dir / f"{split}.txt")
    classes = info.get("classes")
    layout, kind = info["layout"], info["kind"]
    size = info["splits"][split]["size"]
    cells, columns, legend = [], 8, []
    if layout == "image-folder":
        for path, label in _pick(rows, 1, items):
            cells.append(([read_png(entry_dir / path)], classes[int(label)]))
    elif layout == "view-pair-list":
        extra = entry_dir / f"{split}_extra.csv"
        offsets = read_list(extra)[1:] if extra.exists() else [["?", "?"]] * len(rows)
        indexed = [[*row, str(i)] for i, row in enumerate(rows)]
        columns = 4
        for a, b, label, i in _pick(indexed, 2, items // 2):
            dx, dy = offsets[int(i)]
            cells.append(([read_png(entry_dir / a), read_png(entry_dir / b)], f"{classes[int(label)]} dx={dx} dy={dy}"))
    else:
        columns = 4
        for image_path, target_path in rows[: items // 2]:
            image, target = read_png(entry_dir / image_path), read_png(entry_dir / target_path)
            if kind == "depth":
                depth = decode_depth(target)
                tiles = [image, colourise_depth(depth, near)]
                caption = f"depth {depth.min():.2f}..{depth.max():.2f}"
            else:
                tiles = [image, colourise_mask(image, target)]
                present = [classes[k] for k in np.unique(target) if k > 0]
                if kind == "binary-mask":
                    caption = f"{classes[1]} {np.mean(target > 0):.0%}"
                else:
                    caption = ", ".join(present) if present else "(empty)"
            cells.append((tiles, caption))
        if kind == "depth":
            legend = [(f"depth {BACKGROUND_DEPTH - (BACKGROUND_DEPTH - near) * k / 4:.2f}", c)
                      for k, c in enumerate(VIRIDIS)]
        else:
            legend = [(name, PALETTE[(k - 1) % len(PALETTE)]) for k, name in enumerate(classes) if k > 0]
    described = [info.get("group"), kind, info.get("metric")]
    title = f"{info['name']}: {info.get('description', '')}"
    subtitle = f"{' · '.join(d for d in described if d)} · {split} split, {len(cells)} of {size} shown"
    return _sheet(title, subtitle, cells, columns, legend)


def write_gallery(world_dir: Path, manifest: dict, near: float, items: int = 32) -> dict[str, str]:
    """Write ``gallery/corpus-<name>.png`` and ``gallery/task-<name>.png`` under ``world_dir`` for every entry
    in the manifest; returns {"corpus-<name>" | "task-<name>": path relative to world_dir}."""
    out_dir = world_dir / "gallery"
    out_dir.mkdir(exist_ok=True)
    written = {}
    for section, prefix in (("corpora", "corpus"), ("tasks", "task")):
        for name, info in manifest[section].items():
            split = next(iter(info["splits"]))
            entry_dir = world_dir / info["path"]
            sheet = entry_sheet(entry_dir, info, split, near, items)
            rel = f"gallery/{prefix}-{name}.png"
            write_png(world_dir / rel, np.asarray(sheet))
            written[f"{prefix}-{name}"] = rel
    return written
