"""``ViewSpec``: one view of the in-memory ``TensorViews`` source (a crop, a flip, a jitter); methods declare their
view layouts with it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewSpec:
    """One view of ``TensorViews``: output size, random-resized-crop area range, flip and jitter."""

    size: int
    scale: tuple[float, float] = (0.2, 1.0)
    flip: bool = True
    jitter: float = 0.4
