"""Augmentation recipes as typed data: ops → views → recipes, a registry of the published recipes, YAML I/O.

A recipe is declared once and compiled per backend (``dali_backend.build_pipeline`` and
``torchvision_backend.apply_view``); both read the same dataclasses and the same sampled parameters
(``params.sample_view``). Every op carries its probability ``p`` and the parameters of the paper that
introduced the recipe, in torchvision's conventions:

* ``ColorJitter(brightness=0.4)`` means a factor drawn from U[0.6, 1.4]; ``hue=0.1`` a hue shift drawn from
  U[-0.1, 0.1] turns of the colour circle (DALI's degrees: × 360). The four adjustments run in a random order
  per sample, as torchvision (and SimCLR's TensorFlow code) do.
* ``GaussianBlur.kernel_size=None`` is SimCLR's rule: 10 % of the view size, odd (23 at 224 px, 11 at 96 px).
* ``Solarize.threshold`` is on the [0, 1] intensity scale (BYOL: 0.5, i.e. pixels ≥ 127.5 of 255 are inverted).

Geometry belongs to the view: ``crop="random_resized"`` (area fraction ``scale``, aspect ``ratio``),
``"center"`` (shorter side to ``resize``, then a centre crop of ``size``) or ``"resize"`` (plain resize of the
whole image to ``size``×``size``, ViRB's evaluation). For dense recipes (``target`` set) the crop and the
flips apply to the image and its target alike; the photometric ops to the image only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROPS = ("random_resized", "center", "resize")
TARGETS = (None, "mask", "depth", "flow")


def _pair(name: str, value, *, low: float | None = None, high: float | None = None) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{name}: expected a pair (low, high), got {value!r}")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name}: expected finite low <= high, got {value!r}")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{name}: expected values in [{low}, {high}], got {value!r}")
    return lo, hi


def _probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _jitter_range(name: str, value, center: float, bound: tuple[float, float]) -> tuple[float, float] | None:
    """torchvision's ``ColorJitter._check_input``: x → [center − x, center + x] (clipped), None if degenerate."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"ColorJitter.{name}: expected a non-negative value, got {value!r}")
        lo, hi = center - float(value), center + float(value)
        if name != "hue":
            lo = max(lo, 0.0)
    else:
        lo, hi = _pair(f"ColorJitter.{name}", value)
    if lo < bound[0] or hi > bound[1]:
        raise ValueError(f"ColorJitter.{name}: range [{lo}, {hi}] leaves [{bound[0]}, {bound[1]}]")
    return None if lo == hi == center else (lo, hi)


@dataclass(frozen=True)
class ColorJitter:
    """Brightness, contrast, saturation (multiplicative) and hue (additive, in turns) in a random order.

    Applied as a whole with probability ``p`` (``RandomApply([ColorJitter(...)], p)``).
    """

    brightness: float | tuple[float, float] = 0.0
    contrast: float | tuple[float, float] = 0.0
    saturation: float | tuple[float, float] = 0.0
    hue: float | tuple[float, float] = 0.0
    p: float = 1.0

    def __post_init__(self):
        _probability("ColorJitter.p", self.p)
        self.ranges()

    def ranges(self) -> tuple[tuple[float, float] | None, ...]:
        """(brightness, contrast, saturation, hue) sampling ranges; None for an adjustment that is off."""
        inf = float("inf")
        return (
            _jitter_range("brightness", self.brightness, 1.0, (0.0, inf)),
            _jitter_range("contrast", self.contrast, 1.0, (0.0, inf)),
            _jitter_range("saturation", self.saturation, 1.0, (0.0, inf)),
            _jitter_range("hue", self.hue, 0.0, (-0.5, 0.5)),
        )


@dataclass(frozen=True)
class Grayscale:
    """ITU-R 601-2 luma (0.2989 R + 0.587 G + 0.114 B) replicated to three channels, with probability ``p``."""

    p: float = 0.2

    def __post_init__(self):
        _probability("Grayscale.p", self.p)


@dataclass(frozen=True)
class GaussianBlur:
    """Gaussian blur with σ ~ U[sigma], a square ``kernel_size`` window (None: 10 % of the view size, odd)."""

    p: float = 0.5
    sigma: tuple[float, float] = (0.1, 2.0)
    kernel_size: int | None = None

    def __post_init__(self):
        _probability("GaussianBlur.p", self.p)
        lo, _ = _pair("GaussianBlur.sigma", self.sigma)
        if lo <= 0:
            raise ValueError(f"GaussianBlur.sigma: expected values > 0, got {self.sigma!r}")
        k = self.kernel_size
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0):
            raise ValueError(f"GaussianBlur.kernel_size: expected an odd positive int or None, got {k!r}")

    def window(self, view_size: int) -> int:
        """The kernel size used for a view of ``view_size`` pixels."""
        return self.kernel_size if self.kernel_size is not None else 2 * round(0.05 * view_size) + 1


@dataclass(frozen=True)
class Solarize:
    """Invert the intensities at or above ``threshold`` (on the [0, 1] scale), with probability ``p``."""

    p: float = 0.2
    threshold: float = 0.5

    def __post_init__(self):
        _probability("Solarize.p", self.p)
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"Solarize.threshold: expected a value in [0, 1], got {self.threshold!r}")


@dataclass(frozen=True)
class HorizontalFlip:
    """Mirror left-right with probability ``p`` (the image and, in dense recipes, its target)."""

    p: float = 0.5

    def __post_init__(self):
        _probability("HorizontalFlip.p", self.p)


Op = ColorJitter | Grayscale | GaussianBlur | Solarize | HorizontalFlip
OPS: dict[str, type] = {cls.__name__: cls for cls in (ColorJitter, Grayscale, GaussianBlur, Solarize, HorizontalFlip)}


@dataclass(frozen=True)
class View:
    """``count`` views of ``size``×``size`` pixels made by the same geometry and op list (sampled independently)."""

    size: int
    count: int = 1
    crop: str = "random_resized"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    resize: int | None = None
    ops: tuple = ()

    def __post_init__(self):
        for name in ("size", "count"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"View.{name}: expected a positive int, got {v!r}")
        if self.crop not in CROPS:
            raise ValueError(f"View.crop: expected one of {', '.join(map(repr, CROPS))}, got {self.crop!r}")
        lo, hi = _pair("View.scale", self.scale, low=0.0, high=1.0)
        if lo <= 0:
            raise ValueError(f"View.scale: expected 0 < low <= high <= 1, got {self.scale!r}")
        lo, _ = _pair("View.ratio", self.ratio)
        if lo <= 0:
            raise ValueError(f"View.ratio: expected 0 < low <= high, got {self.ratio!r}")
        if self.resize is not None:
            if self.crop != "center":
                raise ValueError(f"View.resize: only used by crop='center', got crop={self.crop!r}")
            if isinstance(self.resize, bool) or not isinstance(self.resize, int) or self.resize < self.size:
                raise ValueError(f"View.resize: expected an int >= size ({self.size}), got {self.resize!r}")
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        object.__setattr__(self, "ratio", tuple(float(v) for v in self.ratio))
        object.__setattr__(self, "ops", tuple(self.ops))
        for op in self.ops:
            if not isinstance(op, tuple(OPS.values())):
                raise TypeError(f"View.ops: expected ops from {', '.join(OPS)}, got {type(op).__name__}")

    @property
    def resize_to(self) -> int:
        """Shorter side before the centre crop (crop='center'): ``resize`` or size/0.875 (256 for 224)."""
        return self.resize if self.resize is not None else int(round(self.size / 0.875))


@dataclass(frozen=True)
class Recipe:
    """Views of one training or evaluation step, normalisation, optional dense target kind, provenance."""

    name: str
    views: tuple[View, ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    target: str | None = None
    provenance: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Recipe.name: expected a non-empty string, got {self.name!r}")
        object.__setattr__(self, "views", tuple(self.views))
        if not self.views or not all(isinstance(v, View) for v in self.views):
            raise ValueError("Recipe.views: expected at least one View")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if len(v) != 3 or not all(isinstance(x, (int, float)) for x in v):
                raise ValueError(f"Recipe.{name}: expected three numbers (R, G, B), got {v!r}")
            object.__setattr__(self, name, tuple(float(x) for x in v))
        if min(self.std) <= 0:
            raise ValueError(f"Recipe.std: expected positive values, got {self.std!r}")
        if self.target not in TARGETS:
            raise ValueError(f"Recipe.target: expected one of {TARGETS}, got {self.target!r}")

    def expanded_views(self) -> list[View]:
        """One entry per output view (``count`` expanded), in output order."""
        return [v for v in self.views for _ in range(v.count)]


# --------------------------------------------------------------------------------------------- registry
RECIPES: dict[str, Callable[..., Recipe]] = {}


def register_recipe(name: str):
    """Decorator: register a factory ``(**overrides) -> Recipe`` under ``name`` (unique)."""

    def deco(factory):
        if name in RECIPES:
            raise ValueError(f"register_recipe: {name!r} is already registered")
        RECIPES[name] = factory
        return factory

    return deco


def get_recipe(name: str, **overrides) -> Recipe:
    """The registered recipe ``name`` built with ``overrides`` (e.g. ``size=96``); KeyError lists the names."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; registered: {', '.join(sorted(RECIPES))}")
    return RECIPES[name](**overrides)


def list_recipes() -> list[str]:
    """Names of the registered recipes, sorted."""
    return sorted(RECIPES)


def _color_distortion(s: float, p_jitter: float = 0.8, p_gray: float = 0.2) -> tuple:
    """SimCLR's colour distortion of strength s: jitter (0.8s, 0.8s, 0.8s, 0.2s) w.p. 0.8, grayscale w.p. 0.2."""
    return (ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=p_jitter), Grayscale(p=p_gray))


@register_recipe("simclr")
def simclr(size: int = 224, strength: float = 1.0, blur: bool = True, scale=(0.08, 1.0)) -> Recipe:
    """Two views: crop (``scale``, 0.08–1), flip, colour distortion, blur w.p. 0.5 (σ 0.1–2, 10 % window)."""
    ops = (HorizontalFlip(0.5), *_color_distortion(strength)) + ((GaussianBlur(p=0.5),) if blur else ())
    return Recipe("simclr", (View(size, count=2, scale=tuple(scale), ops=ops),),
                  provenance="Chen et al. 2020, SimCLR, appendix A (google-research/simclr data_util.py)")


@register_recipe("moco_v1")
def moco_v1(size: int = 224, scale=(0.2, 1.0)) -> Recipe:
    """Two views: crop (``scale``, 0.2–1), grayscale w.p. 0.2, jitter 0.4 (always), flip."""
    ops = (Grayscale(p=0.2), ColorJitter(0.4, 0.4, 0.4, 0.4, p=1.0), HorizontalFlip(0.5))
    return Recipe("moco_v1", (View(size, count=2, scale=tuple(scale), ops=ops),),
                  provenance="He et al. 2020, MoCo; facebookresearch/moco main_moco.py (aug_plus=False)")


@register_recipe("moco_v2")
def moco_v2(size: int = 224, scale=(0.2, 1.0), blur: bool = True) -> Recipe:
    """Two views: crop (``scale``, 0.2–1), jitter (0.4, 0.4, 0.4, 0.1) w.p. 0.8, grayscale 0.2, blur 0.5 (unless
    ``blur`` is False: small images, as SimCLR's CIFAR setting), flip."""
    ops = (ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), Grayscale(p=0.2)) + ((GaussianBlur(p=0.5),) if blur else ()) + (
        HorizontalFlip(0.5),)
    return Recipe("moco_v2", (View(size, count=2, scale=tuple(scale), ops=ops),),
                  provenance="Chen et al. 2020, MoCo v2; facebookresearch/moco main_moco.py (aug_plus=True)")


@register_recipe("byol")
def byol(size: int = 224) -> Recipe:
    """BYOL's asymmetric pair: blur w.p. 1.0 / 0.1 and solarisation w.p. 0.0 / 0.2 in views 1 / 2."""

    def view(p_blur, p_solarize):
        ops = (HorizontalFlip(0.5), ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8), Grayscale(p=0.2),
               GaussianBlur(p=p_blur), Solarize(p=p_solarize, threshold=0.5))
        return View(size, scale=(0.08, 1.0), ops=ops)

    return Recipe("byol", (view(1.0, 0.0), view(0.1, 0.2)),
                  provenance="Grill et al. 2020, BYOL, appendix B, table 6")


@register_recipe("swav")
def swav(global_size: int = 224, local_size: int = 96, n_global: int = 2, n_local: int = 6,
         global_scale=(0.14, 1.0), local_scale=(0.05, 0.14), strength: float = 1.0, blur: bool = True) -> Recipe:
    """Multi-crop: ``n_global``×``global_size`` at scale 0.14–1 and ``n_local``×``local_size`` at 0.05–0.14;
    colour distortion of ``strength``, blur w.p. 0.5 unless ``blur`` is False."""
    ops = (HorizontalFlip(0.5), *_color_distortion(strength)) + ((GaussianBlur(p=0.5),) if blur else ())
    views = [View(global_size, count=n_global, scale=tuple(global_scale), ops=ops)]
    if n_local:
        views.append(View(local_size, count=n_local, scale=tuple(local_scale), ops=ops))
    return Recipe("swav", tuple(views),
                  provenance="Caron et al. 2020, SwAV; facebookresearch/swav src/multicropdataset.py")


@register_recipe("eval_center")
def eval_center(size: int = 224, resize: int | None = None) -> Recipe:
    """Evaluation: shorter side to ``resize`` (default 256 for 224), centre crop ``size``."""
    return Recipe("eval_center", (View(size, crop="center", resize=resize),),
                  provenance="standard ImageNet evaluation (Resize(256) + CenterCrop(224))")


@register_recipe("eval_resize")
def eval_resize(size: int = 224) -> Recipe:
    """ViRB's evaluation: the whole image resized to ``size``×``size`` (aspect ratio not kept)."""
    return Recipe("eval_resize", (View(size, crop="resize"),),
                  provenance="Kotar et al. 2021, ViRB (allenai/virb): Resize((224, 224))")


@register_recipe("dense")
def dense(size: int = 224, target: str = "mask", scale=(0.5, 1.0), jitter: bool = True) -> Recipe:
    """Dense tasks: crop + flip on image and target; colour jitter and grayscale on the image only."""
    ops = (HorizontalFlip(0.5),) + (_color_distortion(0.5) if jitter else ())
    return Recipe(f"dense_{target}", (View(size, scale=tuple(scale), ops=ops),), target=target,
                  provenance="dense-task fine-tuning (ViRB pixel-wise tasks): joint geometric transforms")


# --------------------------------------------------------------------------------------------- YAML
def recipe_to_dict(recipe: Recipe) -> dict:
    """Plain-data form of ``recipe`` (ops tagged by ``type``), the inverse of ``recipe_from_dict``."""

    def plain(x):
        return list(x) if isinstance(x, tuple) else x

    views = []
    for v in recipe.views:
        d = {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v) if f.name != "ops"}
        d["ops"] = [{"type": type(op).__name__, **{k: plain(val) for k, val in dataclasses.asdict(op).items()}}
                    for op in v.ops]
        views.append(d)
    return {"name": recipe.name, "views": views, "mean": list(recipe.mean), "std": list(recipe.std),
            "target": recipe.target, "provenance": recipe.provenance}


def recipe_from_dict(data: dict) -> Recipe:
    """Build a Recipe from plain data; unknown keys or op types raise with their location."""
    if not isinstance(data, dict):
        raise TypeError(f"recipe: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(Recipe)}
    if set(data) - known:
        raise ValueError(f"recipe: unknown keys {sorted(set(data) - known)}; expected {sorted(known)}")
    views = []
    view_keys = {f.name for f in dataclasses.fields(View)}
    for i, vd in enumerate(data.get("views") or []):
        if set(vd) - view_keys:
            raise ValueError(f"recipe.views[{i}]: unknown keys {sorted(set(vd) - view_keys)}")
        ops = []
        for j, od in enumerate(vd.get("ops") or []):
            od = dict(od)
            kind = od.pop("type", None)
            if kind not in OPS:
                raise ValueError(f"recipe.views[{i}].ops[{j}]: unknown op type {kind!r}; expected one of {list(OPS)}")
            ops.append(OPS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in od.items()}))
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in vd.items() if k != "ops"}
        views.append(View(**kw, ops=tuple(ops)))
    rest = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "views"}
    return Recipe(views=tuple(views), **rest)


def dump_recipe(recipe: Recipe, path: str | Path | None = None) -> str:
    """YAML text of ``recipe``; also written to ``path`` when given."""
    text = yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)
    if path is not None:
        Path(path).write_text(text)
    return text


def load_recipe(path_or_text: str | Path) -> Recipe:
    """Recipe from a YAML file path or YAML text (a string containing a newline or ``name:``)."""
    text = str(path_or_text)
    if isinstance(path_or_text, Path) or ("\n" not in text and not text.lstrip().startswith("name:")):
        text = Path(path_or_text).read_text()
    return recipe_from_dict(yaml.safe_load(text))


__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "ColorJitter", "Grayscale", "GaussianBlur", "Solarize", "HorizontalFlip",
    "View", "Recipe", "RECIPES", "register_recipe", "get_recipe", "list_recipes", "recipe_to_dict",
    "recipe_from_dict", "dump_recipe", "load_recipe",
]
