"""Augmentation recipes as typed data: ops → views → recipes, a registry of the published recipes, YAML I/O.

A recipe is declared once and compiled per backend (``dali_backend.build_pipeline`` and
``torchvision_backend.apply_view``); both read the same dataclasses and the same sampled parameters
(``params.sample_view``). Every op (``ops``: one class each, which both executors dispatch on) carries its
probability ``p`` and the parameters of the paper that introduced the recipe, in torchvision's conventions.

Geometry belongs to the view: ``crop="random_resized"`` (area fraction ``scale``, aspect ``ratio``),
``"center"`` (shorter side to ``resize``, then a centre crop of ``size``) or ``"resize"`` (plain resize of the
whole image to ``size``×``size``, ViRB's evaluation). For dense recipes (``target`` set) the crop and the
flips apply to the image and its target alike; the photometric ops to the image only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from .atomic import atomic_write_text
from .ops import OPS, ColorJitter, GaussianBlur, Grayscale, HorizontalFlip, Op, Solarize, checked_pair

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROPS = ("random_resized", "center", "resize")
TARGETS = (None, "mask", "depth", "flow")


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
        lo, hi = checked_pair("View.scale", self.scale, low=0.0, high=1.0)
        if lo <= 0:
            raise ValueError(f"View.scale: expected 0 < low <= high <= 1, got {self.scale!r}")
        lo, _ = checked_pair("View.ratio", self.ratio)
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
            if not isinstance(op, Op):
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
SIZE_RULES: dict[str, Callable[[int], dict]] = {}  # name → image size → the factory's size arguments


def _one_size(size: int) -> dict:
    return {"size": size}


def register_recipe(name: str, size_rule: Callable[[int], dict] = _one_size):
    """Decorator: register a factory ``(**overrides) -> Recipe`` under ``name`` (unique), with ``size_rule``, which
    turns one image size into the factory's size arguments (``sized_recipe``; default ``{"size": size}``)."""

    def deco(factory):
        if name in RECIPES:
            raise ValueError(f"register_recipe: {name!r} is already registered")
        RECIPES[name], SIZE_RULES[name] = factory, size_rule
        return factory

    return deco


def get_recipe(name: str, **overrides) -> Recipe:
    """The registered recipe ``name`` built with ``overrides`` (e.g. ``size=96``); KeyError lists the names."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; registered: {', '.join(sorted(RECIPES))}")
    return RECIPES[name](**overrides)


def sized_recipe(name: str, size: int | None = None, **overrides) -> Recipe:
    """``get_recipe(name)`` with its crops set from one image size by the recipe's own rule (SwAV's small crops keep
    its 96:224 ratio), then ``overrides`` (which win); ``size`` None: the recipe's own sizes."""
    sizes = SIZE_RULES[name](size) if size is not None and name in SIZE_RULES else {}
    return get_recipe(name, **{**sizes, **overrides})  # get_recipe refuses an unknown name


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


def _swav_sizes(size: int) -> dict:
    return {"global_size": size, "local_size": max(8, round(size * 96 / 224))}


@register_recipe("swav", size_rule=_swav_sizes)
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


@register_recipe("supervised")
def supervised(size: int = 224, scale=(0.08, 1.0)) -> Recipe:
    """One view: random resized crop (``scale``, 0.08–1) and horizontal flip, the standard supervised training."""
    return Recipe("supervised", (View(size, scale=tuple(scale), ops=(HorizontalFlip(0.5),)),),
                  provenance="torchvision ImageNet training: RandomResizedCrop(0.08-1) + horizontal flip")


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
        atomic_write_text(path, text)
    return text


def load_recipe(path_or_text: str | Path) -> Recipe:
    """Recipe from a YAML file path or YAML text (a string containing a newline or ``name:``)."""
    text = str(path_or_text)
    if isinstance(path_or_text, Path) or ("\n" not in text and not text.lstrip().startswith("name:")):
        text = Path(path_or_text).read_text()
    return recipe_from_dict(yaml.safe_load(text))


__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "ColorJitter", "Grayscale", "GaussianBlur", "Solarize", "HorizontalFlip",
    "View", "Recipe", "RECIPES", "register_recipe", "get_recipe", "sized_recipe", "list_recipes", "recipe_to_dict",
    "recipe_from_dict", "dump_recipe", "load_recipe",
]
