"""Procedural scenes: a textured background plane and 1..N flat shapes at distinct depths.

Camera model (pinhole, focal length = resolution R, depth in units of the background plane)::

    z_i ∈ [z_near, z_far] ⊂ (0, 1)        depth of object i; the background plane is at BACKGROUND_DEPTH = 1
    r_i = s_i · R / z_i                    apparent equal-area radius of object i (s_i: physical size)
    A_i ≈ π r_i²                           every shape class has the same area at the same r_i

Depth convention: distance from the camera, *larger is farther*. Objects are painted far to near (painter's
algorithm), so pixel p shows the nearest object whose shape S_i covers it::

    owner[p] = argmin_{i : p ∈ S_i} z_i            (−1 where no object covers p)
    mask[p]  = 1 + class(owner[p])                 (0 = background)
    depth[p] = z_owner[p]                          (BACKGROUND_DEPTH where owner[p] = −1)

Shapes are drawn without anti-aliasing, so every image pixel is exactly the background or one object's colour
and the targets are exact. Equal areas (each class's circumradius is scaled by ``sqrt(π / area_factor)``) keep
area from revealing the class; apparent size still reveals depth up to the ±size spread, as in real scenes.

Everything is vectorised over pixels (numpy broadcasting over an object's bounding box); the only Python loops
run over objects and placement retries.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BACKGROUND_DEPTH = 1.0  # the background plane; every object is nearer (z_far < 1)
BACKGROUND_MID_VALUE = 0.525  # midpoint of the dark (0.2–0.5) and light (0.55–0.85) background values
RING_INNER = 0.55  # inner / outer radius of a ring
CROSS_HALF_WIDTH = 0.3  # half-width of a cross's arms / its circumradius
MAX_PLACEMENT_TRIES = 40  # positions tried per object before the scene is resampled
MAX_SCENE_TRIES = 200  # scenes tried before a constraint is declared unsatisfiable

# Area of each shape with circumradius 1 (exact): used to give every class the area π r².
AREA_FACTOR = {
    "circle": math.pi,
    "square": 2.0,  # side √2
    "triangle": 3.0 * math.sqrt(3.0) / 4.0,  # equilateral
    "star": math.sqrt(3.0),  # hexagram = triangle + 3 triangles of 1/9 its area
    "cross": 8.0 * CROSS_HALF_WIDTH - 4.0 * CROSS_HALF_WIDTH**2,  # two 2×2w bars minus their overlap
    "ring": math.pi * (1.0 - RING_INNER**2),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
TEXTURES = ("stripes", "checker", "blobs", "gradient", "dots", "waves")


@dataclass(frozen=True)
class SceneSpec:
    """Parameters of the scene distribution (sizes and periods are fractions of ``resolution``).

    ``objects`` is an inclusive range of the object count; ``size`` the physical size s (apparent radius
    s·R/z); ``depth`` the object depth range, strictly inside (0, BACKGROUND_DEPTH); ``min_visible`` the
    smallest visible share of every object's pixels (so that counts are unambiguous); ``noise`` the standard
    deviation of the per-pixel Gaussian sensor noise in grey levels (0, the default, disables it: noise makes
    PNGs 3× larger and 2–3× slower to encode, and SSL augmentations add their own photometric noise).
    ``dominant_size``: the physical size of a scene's dominant object (None: ``size[1]``), so that object-centric
    scenes can centre on one large object among smaller distractors; ``background_contrast`` scales the
    difference in value between a texture's two colours around their midpoint (1: as sampled; below 1 the
    background recedes behind the objects). ``shift``: the range of the camera-shift task's main displacement,
    as a fraction of ``resolution``.
    """

    resolution: int = 64
    objects: tuple[int, int] = (1, 5)
    shapes: tuple[str, ...] = SHAPES
    textures: tuple[str, ...] = TEXTURES
    size: tuple[float, float] = (0.06, 0.08)
    depth: tuple[float, float] = (0.5, 0.9)
    min_visible: float = 0.5
    texture_period: tuple[float, float] = (0.08, 0.25)
    object_saturation: tuple[float, float] = (0.45, 1.0)
    object_value: tuple[float, float] = (0.5, 1.0)
    background_saturation: tuple[float, float] = (0.1, 0.6)
    noise: float = 0.0
    dominant_size: float | None = None
    background_contrast: float = 1.0
    shift: tuple[float, float] = (0.0625, 0.1875)

    def __post_init__(self):
        unknown = [s for s in self.shapes if s not in SHAPE_MASKS]
        if unknown or not self.shapes:
            raise ValueError(f"shapes: expected a non-empty subset of {sorted(SHAPE_MASKS)}, got {self.shapes}")
        unknown = [t for t in self.textures if t not in TEXTURE_FIELDS]
        if unknown or not self.textures:
            raise ValueError(f"textures: expected a non-empty subset of {sorted(TEXTURE_FIELDS)}, got {self.textures}")
        if len(set(self.shapes)) != len(self.shapes) or len(set(self.textures)) != len(self.textures):
            raise ValueError("shapes and textures must not repeat")
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f"objects: expected 1 <= min <= max, got {self.objects}")
        if not 0.0 < self.depth[0] <= self.depth[1] < BACKGROUND_DEPTH:
            raise ValueError(f"depth: expected 0 < near <= far < {BACKGROUND_DEPTH}, got {self.depth}")
        if self.resolution < 16:
            raise ValueError(f"resolution: expected >= 16, got {self.resolution}")
        if not 0.0 <= self.min_visible <= 1.0:
            raise ValueError(f"min_visible: expected a share in [0, 1], got {self.min_visible}")
        if self.dominant_size is not None and not self.dominant_size > 0:
            raise ValueError(f"dominant_size: expected None or a size > 0, got {self.dominant_size}")
        if not 0.0 < self.shift[0] <= self.shift[1] < 0.5:
            raise ValueError(f"shift: expected 0 < low <= high < 0.5 (fractions of the resolution), got {self.shift}")
        if not 0.0 < self.background_contrast <= 1.0:
            raise ValueError(f"background_contrast: expected a factor in (0, 1], got {self.background_contrast}")


@dataclass(frozen=True)
class SceneObject:
    """One flat object: class ``label`` (index into ``SceneSpec.shapes``), centre (cy, cx) and equal-area
    radius in pixels, rotation in radians, RGB colour, depth. ``area``/``visible`` are its pixel counts inside
    the canvas (all / not occluded); they are filled in by :func:`compose_scene` and ``-1`` before."""

    shape: str
    label: int
    cy: float
    cx: float
    radius: float
    angle: float
    colour: tuple[int, int, int]
    depth: float
    area: int = -1
    visible: int = -1

    @property
    def circumradius(self) -> float:
        """Radius of the smallest centred circle holding the shape."""
        return self.radius * math.sqrt(math.pi / AREA_FACTOR[self.shape])


@dataclass(frozen=True)
class Scene:
    """A rendered scene and its exact targets.

    image (H, W, 3) uint8; mask (H, W) uint8, 0 = background, 1 + class index elsewhere; depth (H, W) float32
    (larger = farther, BACKGROUND_DEPTH on the background); instances (H, W) int16, −1 = background, else the
    index into ``objects``; objects sorted far to near (painting order); texture the background family.
    """

    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray
    instances: np.ndarray
    objects: tuple[SceneObject, ...]
    texture: str
    texture_label: int

    @property
    def count(self) -> int:
        """Number of drawn objects."""
        return len(self.objects)

    @property
    def dominant(self) -> int:
        """Class index of the object with the most visible pixels (ties: the nearer one)."""
        visible = [(o.visible, -o.depth) for o in self.objects]
        return self.objects[max(range(len(visible)), key=visible.__getitem__)].label


# --- shapes: boolean masks from rotated local coordinates (u, v) and circumradius ρ -------------------------


def _circle(u, v, rho):
    return u * u + v * v <= rho * rho


def _ring(u, v, rho):
    d2 = u * u + v * v
    return (d2 <= rho * rho) & (d2 >= (RING_INNER * rho) ** 2)


def _square(u, v, rho):
    half = rho / math.sqrt(2.0)
    return (np.abs(u) <= half) & (np.abs(v) <= half)


_TRIANGLE_NORMALS = [(math.cos(a), math.sin(a)) for a in np.deg2rad([-90.0, 30.0, 150.0])]


def _triangle(u, v, rho, flip=1.0):
    # Equilateral, vertex at +v; inradius ρ/2: inside iff n_k·(u, v) <= ρ/2 for the three edge normals n_k.
    (n0u, n0v), *rest = _TRIANGLE_NORMALS
    inside = flip * (n0u * u + n0v * v) <= 0.5 * rho
    for nu, nv in rest:
        inside &= flip * (nu * u + nv * v) <= 0.5 * rho
    return inside


def _star(u, v, rho):
    return _triangle(u, v, rho) | _triangle(u, v, rho, flip=-1.0)


def _cross(u, v, rho):
    w = CROSS_HALF_WIDTH * rho
    au, av = np.abs(u), np.abs(v)
    return ((au <= rho) & (av <= w)) | ((av <= rho) & (au <= w))


SHAPE_MASKS: dict[str, Callable] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "ring": _ring,
}


_CENTRES = np.arange(4096, dtype=np.float32) + 0.5  # pixel-centre coordinates, sliced per bounding box


def _footprint(shape: str, cy: float, cx: float, rho: float, angle: float, height: int, width: int):
    y0, y1 = max(0, math.floor(cy - rho)), min(height, math.ceil(cy + rho) + 1)
    x0, x1 = max(0, math.floor(cx - rho)), min(width, math.ceil(cx + rho) + 1)
    centres = _CENTRES if max(y1, x1) <= len(_CENTRES) else np.arange(max(y1, x1), dtype=np.float32) + 0.5
    dy = (centres[y0:y1] - np.float32(cy))[:, None]
    dx = (centres[x0:x1] - np.float32(cx))[None, :]
    box = (slice(y0, y1), slice(x0, x1))
    if shape in ("circle", "ring"):  # rotation-invariant
        return box, SHAPE_MASKS[shape](dx, dy, rho)
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return box, SHAPE_MASKS[shape](dx * c + dy * s, dy * c - dx * s, rho)


def object_footprint(obj: SceneObject, height: int, width: int) -> tuple[tuple[slice, slice], np.ndarray]:
    """The pixels an object covers if nothing occludes it: (bounding-box slices, boolean mask of the box).

    Pixel (y, x) is covered iff its centre (y + ½, x + ½) is inside the shape. The box is clipped to the
    canvas, so the mask may be empty for an object outside it.
    """
    return _footprint(obj.shape, obj.cy, obj.cx, obj.circumradius, obj.angle, height, width)


def object_mask(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """Full-canvas (height, width) boolean mask of an unoccluded object (see :func:`object_footprint`)."""
    out = np.zeros((height, width), dtype=bool)
    box, m = object_footprint(obj, height, width)
    out[box] = m
    return out


# --- textures: a field t ∈ [0, 1] per pixel, mixed between two background colours -----------------------------


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(height, dtype=np.float32)[:, None] + 0.5
    x = np.arange(width, dtype=np.float32)[None, :] + 0.5
    return y, x


def _rotated(rng, y, x, period):
    a = rng.uniform(0.0, math.pi)
    c, s = math.cos(a), math.sin(a)
    return (x * c + y * s) / period, (y * c - x * s) / period


def _frac(a):
    return a - np.floor(a)  # a mod 1; np.mod on floats is ~40× slower


def _stripes(rng, y, x, period, resolution):
    u, _ = _rotated(rng, y, x, period)
    return (_frac(u + rng.uniform()) < 0.5).astype(np.float32)


def _checker(rng, y, x, period, resolution):
    u, v = _rotated(rng, y, x, period)
    return ((np.floor(u + rng.uniform()) + np.floor(v + rng.uniform())).astype(np.int64) & 1).astype(np.float32)


def bilinear_resize(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear interpolation of a 2-D array to (height, width), aligning the corner pixel centres."""
    gh, gw = grid.shape
    ty = np.linspace(0.0, gh - 1.0, height, dtype=np.float32)
    tx = np.linspace(0.0, gw - 1.0, width, dtype=np.float32)
    y0 = np.minimum(ty.astype(np.int64), gh - 2) if gh > 1 else np.zeros(height, np.int64)
    x0 = np.minimum(tx.astype(np.int64), gw - 2) if gw > 1 else np.zeros(width, np.int64)
    fy = (ty - y0)[:, None] if gh > 1 else np.zeros((height, 1), np.float32)
    fx = (tx - x0)[None, :] if gw > 1 else np.zeros((1, width), np.float32)
    y1, x1 = np.minimum(y0 + 1, gh - 1), np.minimum(x0 + 1, gw - 1)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _blobs(rng, y, x, period, resolution):
    # Smooth noise: a coarse Gaussian grid (cell ≈ 1.5 periods) upsampled, then a soft threshold at 0.
    height, width = y.shape[0], x.shape[1]
    cells = max(2, round(max(height, width) / (1.5 * period))) + 1
    noise = bilinear_resize(rng.standard_normal((cells, cells)).astype(np.float32), height, width)
    return np.clip(noise * 2.5 + 0.5, 0.0, 1.0)


def _gradient(rng, y, x, period, resolution):
    u, _ = _rotated(rng, y, x, 1.0)
    u = u + np.zeros_like(y * x)
    lo, hi = u.min(), u.max()
    return (u - lo) / max(hi - lo, 1e-6)


def _dots(rng, y, x, period, resolution):
    u, v = _rotated(rng, y, x, period)
    du, dv = _frac(u + rng.uniform()) - 0.5, _frac(v + rng.uniform()) - 0.5
    return (du * du + dv * dv <= rng.uniform(0.2, 0.35) ** 2).astype(np.float32)


def _waves(rng, y, x, period, resolution):
    cy, cx = rng.uniform(-0.5, 1.5, size=2) * resolution
    r = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    return 0.5 + 0.5 * np.sin(2.0 * math.pi * (r / period + rng.uniform()))


TEXTURE_FIELDS: dict[str, Callable] = {
    "stripes": _stripes,
    "checker": _checker,
    "blobs": _blobs,
    "gradient": _gradient,
    "dots": _dots,
    "waves": _waves,
}


def sample_object_colour(rng: np.random.Generator, spec: SceneSpec) -> tuple[int, int, int]:
    """A saturated, bright RGB colour (uniform hue; saturation/value from the spec)."""
    h, s, v = rng.uniform(), rng.uniform(*spec.object_saturation), rng.uniform(*spec.object_value)
    return tuple(round(c * 255.0) for c in colorsys.hsv_to_rgb(h, s, v))


def render_texture(rng: np.random.Generator, spec: SceneSpec, texture: int | None = None,
                   canvas: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """A background: (float32 (H, W, 3) image in [0, 255], texture class index), without noise.

    ``texture`` (an index into ``spec.textures``) fixes the family, else it is uniform; ``canvas`` (H, W)
    defaults to the spec's square resolution; periods stay in units of ``spec.resolution``. The two colours
    differ in hue by 0.2–0.8 and have one dark (value 0.2–0.5) and one light (0.55–0.85) member.
    """
    height, width = canvas or (spec.resolution, spec.resolution)
    label = int(rng.integers(len(spec.textures))) if texture is None else int(texture)
    if not 0 <= label < len(spec.textures):
        raise ValueError(f"texture: expected an index below {len(spec.textures)}, got {texture}")
    h0 = rng.uniform()
    hues = np.array([h0, h0 + rng.uniform(0.2, 0.8)])
    values = np.array([rng.uniform(0.2, 0.5), rng.uniform(0.55, 0.85)])
    if spec.background_contrast != 1.0:
        values = BACKGROUND_MID_VALUE + (values - BACKGROUND_MID_VALUE) * spec.background_contrast
    if rng.uniform() < 0.5:
        values = values[::-1]
    saturations = rng.uniform(*spec.background_saturation, size=2)
    colours = np.array([colorsys.hsv_to_rgb(h % 1.0, s, v) for h, s, v in zip(hues, saturations, values, strict=True)],
                       dtype=np.float32) * 255.0
    period = rng.uniform(*spec.texture_period) * spec.resolution
    y, x = _grid(height, width)
    t = TEXTURE_FIELDS[spec.textures[label]](rng, y, x, period, spec.resolution).astype(np.float32)
    return mix(colours[0], colours[1], t), label


def mix(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 ``c0·(1 − t) + c1·t`` for RGB colours c0, c1 and a field t (H, W); computed per channel
    because numpy broadcasting over a trailing axis of 3 is ~5× slower."""
    out = np.empty((*t.shape, 3), dtype=np.float32)
    for c in range(3):
        out[..., c] = c0[c] + (c1[c] - c0[c]) * t
    return out


def add_noise(rng: np.random.Generator, image: np.ndarray, std: float) -> np.ndarray:
    """Add Gaussian sensor noise (std in grey levels) to a float image and quantise to uint8."""
    if std > 0:
        image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(std)
    image = np.rint(image)
    np.maximum(image, 0.0, out=image)  # in place: np.clip's wrapper costs more than the work at 64×64
    np.minimum(image, 255.0, out=image)
    return image.astype(np.uint8)


def _paint(spec, background, owner, objects, texture, noise_rng):
    """Targets and image from the owner map (−1 = background, else index into ``objects``: far-to-near dicts of
    the SceneObject fields but ``visible``)."""
    n = len(objects)
    index = owner + 1
    labels = np.array([0] + [o["label"] + 1 for o in objects], dtype=np.uint8)
    depths = np.array([BACKGROUND_DEPTH] + [o["depth"] for o in objects], dtype=np.float32)
    colours = np.array([(0, 0, 0)] + [o["colour"] for o in objects], dtype=np.float32).reshape(n + 1, 3)
    foreground = index > 0
    image = np.empty_like(background)
    for c in range(3):  # per channel with take(): ~5× faster than boolean-mask assignment of RGB rows
        image[..., c] = np.where(foreground, colours[:, c].take(index), background[..., c])
    image = add_noise(noise_rng, image, spec.noise if noise_rng is not None else 0.0)
    visible = np.bincount(index.ravel(), minlength=n + 1)[1:]
    objects = tuple(SceneObject(**o, visible=int(v)) for o, v in zip(objects, visible.tolist(), strict=True))
    return Scene(image=image, mask=labels.take(index), depth=depths.take(index), instances=owner.astype(np.int16),
                 objects=objects, texture=spec.textures[texture], texture_label=texture)


_PLACED_FIELDS = ("shape", "label", "cy", "cx", "radius", "angle", "colour", "depth")


def compose_scene(spec: SceneSpec, background: np.ndarray, texture: int, objects: Sequence[SceneObject],
                  rng: np.random.Generator | None = None) -> Scene:
    """Paint given objects on a background (float (H, W, 3)) by the painter's algorithm; no sampling.

    Objects are sorted far to near (stable, so of two at equal depth the later one is on top); their
    ``area``/``visible`` are recomputed. Noise (``spec.noise``) is added only when ``rng`` is given.
    """
    height, width = background.shape[:2]
    order = sorted(range(len(objects)), key=lambda i: -objects[i].depth)
    owner = np.full((height, width), -1, dtype=np.int32)
    placed = []
    for i, k in enumerate(order):
        box, m = object_footprint(objects[k], height, width)
        owner[box][m] = i
        fields = {f: getattr(objects[k], f) for f in _PLACED_FIELDS}
        placed.append({**fields, "area": int(m.sum())})
    return _paint(spec, background, owner, placed, texture, rng)


def _sample_objects(rng, spec, n, dominant):
    """Object parameters (no position yet), sorted far to near. A ``dominant`` object is nearest and largest."""
    near, far = spec.depth
    objects = []
    for i in range(n):
        principal = dominant is not None and i == 0
        label = int(dominant) if principal else int(rng.integers(len(spec.shapes)))
        if principal:
            size = spec.size[1] if spec.dominant_size is None else spec.dominant_size
            depth = rng.uniform(near, near + 0.25 * (far - near))
        else:
            lo = near + 0.3 * (far - near) if dominant is not None else near
            depth, size = rng.uniform(lo, far), rng.uniform(*spec.size)
        shape = spec.shapes[label]
        objects.append({"shape": shape, "label": label, "cy": 0.0, "cx": 0.0,
                        "radius": size * spec.resolution / depth, "angle": rng.uniform(0.0, 2.0 * math.pi),
                        "colour": sample_object_colour(rng, spec), "depth": float(depth)})
    return sorted(objects, key=lambda o: -o["depth"])


def _place(rng, spec, objects, height, width):
    """Positions such that every object keeps >= min_visible of its pixels; (None, None) when retries run out."""
    owner = np.full((height, width), -1, dtype=np.int32)
    visible = np.zeros(len(objects), dtype=np.int64)
    needed = np.zeros(len(objects), dtype=np.float64)  # min_visible · area of the placed objects
    placed = []
    for i, obj in enumerate(objects):
        rho = obj["radius"] * math.sqrt(math.pi / AREA_FACTOR[obj["shape"]])
        for _ in range(MAX_PLACEMENT_TRIES):
            cy, cx = float(rng.uniform(rho, height - rho)), float(rng.uniform(rho, width - rho))
            box, m = _footprint(obj["shape"], cy, cx, rho, obj["angle"], height, width)
            region = owner[box]
            under = region[m]
            if i > 0 and under.size and under.max() >= 0:
                covered = np.bincount(under + 1, minlength=i + 1)[1:]
                if np.any(visible[:i] - covered < needed[:i]):
                    continue
                visible[:i] -= covered
            area = under.size
            if area == 0:
                continue
            region[m] = i
            visible[i], needed[i] = area, spec.min_visible * area
            placed.append({**obj, "cy": cy, "cx": cx, "area": area})
            break
        else:
            return None, None
    return owner, placed


def render_scene(rng: np.random.Generator, spec: SceneSpec, *, n_objects: int | None = None,
                 dominant: int | None = None, texture: int | None = None,
                 canvas: tuple[int, int] | None = None) -> Scene:
    """Sample and render one scene; a pure function of the generator state and the arguments.

    Constraints (all optional): ``n_objects`` drawn objects (default uniform in ``spec.objects``),
    ``dominant`` the class index of the object with the most visible pixels (it is sampled nearest and
    largest, and scenes are resampled until it dominates), ``texture`` the background family index. Every
    object lies fully inside the canvas and keeps at least ``spec.min_visible`` of its pixels visible.
    ``canvas`` (H, W) renders a larger field of view at the same scale (object sizes and texture periods stay
    in units of ``spec.resolution``). Raises RuntimeError when the constraints cannot be met.
    """
    height, width = canvas or (spec.resolution, spec.resolution)
    lo, hi = spec.objects
    if n_objects is not None and n_objects < 1:
        raise ValueError(f"n_objects: expected >= 1, got {n_objects}")
    if dominant is not None and not 0 <= dominant < len(spec.shapes):
        raise ValueError(f"dominant: expected a class index below {len(spec.shapes)}, got {dominant}")
    biggest = max(spec.size[1], spec.dominant_size or 0.0) if dominant is not None else spec.size[1]
    largest = max(biggest * spec.resolution / spec.depth[0] * math.sqrt(math.pi / AREA_FACTOR[s])
                  for s in spec.shapes)
    if 2.0 * largest > min(height, width):
        raise ValueError(f"render_scene: objects up to {2 * largest:.1f} px wide are larger than the canvas "
                         f"{height}×{width}; lower size or raise depth[0]")
    background, label = render_texture(rng, spec, texture, (height, width))
    for _ in range(MAX_SCENE_TRIES):
        n = int(rng.integers(lo, hi + 1)) if n_objects is None else int(n_objects)
        owner, placed = _place(rng, spec, _sample_objects(rng, spec, n, dominant), height, width)
        if owner is None:
            continue
        scene = _paint(spec, background, owner, placed, label, rng)
        if dominant is None or scene.dominant == dominant:
            return scene
    raise RuntimeError(f"render_scene: no scene met n_objects={n_objects}, dominant={dominant} in "
                       f"{MAX_SCENE_TRIES} tries; objects may be too large for the canvas ({spec})")


DIGIT_ALPHA_GAIN = 1.5  # ink 11/16 and above is opaque: scikit-learn's digits are faint anti-aliased scans


def composite_digit(rng: np.random.Generator, spec: SceneSpec, digit: np.ndarray,
                    texture: int | None = None) -> np.ndarray:
    """A real digit (8×8, values 0..16 as in scikit-learn's ``load_digits``) upscaled bilinearly to 45–75 % of
    the resolution, used as the alpha (× DIGIT_ALPHA_GAIN, clipped) of a flat colour over a procedural texture;
    the colour's value is dark (0.05–0.3) on a light patch and light (0.75–1) on a dark one, so the digit stays
    legible. Returns uint8 (R, R, 3).
    """
    background, _ = render_texture(rng, spec, texture)
    r = spec.resolution
    side = int(round(rng.uniform(0.45, 0.75) * r))
    alpha = bilinear_resize(np.asarray(digit, np.float32) * (DIGIT_ALPHA_GAIN / 16.0), side, side)
    np.clip(alpha, 0.0, 1.0, out=alpha)
    y0, x0 = (int(v) for v in rng.integers(0, r - side + 1, size=2))
    patch = background[y0:y0 + side, x0:x0 + side]
    luminance = float(patch.reshape(-1, 3).mean(axis=0) @ np.array([0.299, 0.587, 0.114], np.float32))
    value = rng.uniform(0.05, 0.3) if luminance > 127.5 else rng.uniform(0.75, 1.0)
    colour = [round(c * 255.0) for c in colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*spec.object_saturation),
                                                              value)]
    for c in range(3):
        patch[..., c] += (colour[c] - patch[..., c]) * alpha
    return add_noise(rng, background, spec.noise)
