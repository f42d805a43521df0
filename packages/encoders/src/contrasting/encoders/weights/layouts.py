"""Strict import of published ResNet checkpoints into one backbone layout, and export of our backbones.

Every layout is a registered rule: how to recognise it, which prefix its trunk keys carry, which keys
are heads or training state to drop (by exact prefix, nothing else is dropped), and where it comes from.

| layout      | recognised by                    | trunk prefix          | dropped (exact prefixes)                |
|-------------|----------------------------------|-----------------------|-----------------------------------------|
| moco        | ``module.encoder_q.*`` keys      | ``module.encoder_q.`` | ``encoder_q.fc``, ``encoder_k``, queue  |
| swav        | ``module.conv1.*`` (no encoder_q)| ``module.``           | ``projection_head``, ``prototypes``     |
| vissl       | ``_feature_blocks.*`` keys       | ``_feature_blocks.``  | nothing (heads are a separate dict)     |
| virb        | ``model.conv1.*`` keys           | ``model.``            | ``fc``, ``projection_head``, prototypes |
| torchvision | ``conv1.weight`` and ``fc.weight`` | none                | ``fc``                                  |
| contrasting | ``conv1.weight``, no ``fc``      | none                  | nothing                                 |

Loading is strict: after the layout's renaming, every backbone key must be present with its shape and no
other key may remain; otherwise ``LayoutError`` lists the missing and the unexpected keys (a wrong prefix
shows up as every key missing and every key unexpected — ViRB's ``strict=False`` evaluated a random
network in that case). The one tolerated gap is ``*.num_batches_tracked``, absent from checkpoints saved
before PyTorch 0.4.1 (torchvision's own ImageNet weights): it is filled with 0, which only matters for a
BatchNorm with ``momentum=None``. A state dict no rule recognises raises ``UnknownLayoutError`` naming the
known layouts and showing the first keys found.

Containers: a file may hold the state dict itself or wrap it as ``{"state_dict": ...}`` (MoCo, SwAV's
training checkpoints), ``{"classy_state_dict": {"base_model": {"model": {"trunk": ...}}}}`` or
``{"model_state_dict": ...}`` (VISSL). Official SwAV releases (``swav_800ep_pretrain.pth.tar``) are the
flat ``module.*`` dict without a wrapper — the case ViRB's converter failed on.

Export (``export_backbone``) writes a plain torchvision-layout state dict (no ``fc``) —
``torchvision.models.resnet50().load_state_dict(sd, strict=False)`` reports only ``fc`` missing — and
a ``.json`` sidecar with the architecture (backbone name, small stem, width) and provenance.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from contrasting.data.atomic import atomic_write_bytes

from ..backbones import ResNet, build_backbone
from ..registry import Registry

LAYOUTS = Registry("checkpoint layout")
EXPORT_FORMAT = "contrasting.encoders.backbone/1"
_SHOW = 12  # keys listed per category in an error before "... and N more"


class LayoutError(ValueError):
    """A checkpoint whose keys do not match the backbone: lists missing, unexpected and mis-shaped keys."""


class UnknownLayoutError(LayoutError):
    """A checkpoint no registered layout recognises."""


@dataclass(frozen=True)
class LayoutRule:
    """How one published layout stores a ResNet trunk (module docstring's table)."""

    prefix: str = ""
    drop: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "drop", tuple(self.drop))


def register_layout(name: str, *, origin: str, **rule):
    """Decorator registering a recogniser ``matches(state_dict) -> bool`` with its ``LayoutRule`` fields."""
    return LAYOUTS.register(name, LayoutRule, defaults=rule, origin=origin)


def _keys(obj) -> list[str]:
    return [k for k in obj if isinstance(k, str)] if isinstance(obj, Mapping) else []


def _has_prefix(sd, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in _keys(sd))


@register_layout("moco", origin="facebookresearch/moco", prefix="module.encoder_q.",
                 drop=("module.encoder_q.fc.", "module.encoder_k.", "module.queue"),
                 description="official MoCo v1/v2: {'state_dict': {'module.encoder_q.*', 'module.encoder_k.*', "
                             "'module.queue'}}")
def _moco(sd) -> bool:
    return _has_prefix(sd, "module.encoder_q.")


@register_layout("swav", origin="facebookresearch/swav", prefix="module.",
                 drop=("module.projection_head.", "module.prototypes."),
                 description="official SwAV: flat {'module.conv1.weight', ..., 'module.prototypes.weight'}")
def _swav(sd) -> bool:
    return _has_prefix(sd, "module.conv1.")


@register_layout("vissl", origin="facebookresearch/vissl", prefix="_feature_blocks.",
                 description="VISSL trunk (PIRL): {'classy_state_dict': {'base_model': {'model': {'trunk': "
                             "{'_feature_blocks.*'}}}}}")
def _vissl(sd) -> bool:
    return _has_prefix(sd, "_feature_blocks.")


@register_layout("virb", origin="allenai/ViRB", prefix="model.",
                 drop=("model.fc.", "model.projection_head.", "model.prototypes."),
                 description="ViRB's converted .pt encoders: flat {'model.conv1.weight', ...}")
def _virb(sd) -> bool:
    return _has_prefix(sd, "model.conv1.")


@register_layout("torchvision", origin="pytorch/vision", drop=("fc.",),
                 description="torchvision ImageNet-supervised: flat {'conv1.weight', ..., 'fc.weight'}")
def _torchvision(sd) -> bool:
    return "conv1.weight" in _keys(sd) and "fc.weight" in _keys(sd)


@register_layout("contrasting", origin="this package",
                 description=f"this package's export ({EXPORT_FORMAT}): torchvision keys without 'fc'")
def _contrasting(sd) -> bool:
    return "conv1.weight" in _keys(sd) and not _has_prefix(sd, "fc.")


def get_layout(name: str) -> tuple[LayoutRule, Callable[[Mapping], bool]]:
    """``(rule, matches)`` of the registered layout ``name``; ``UnknownNameError`` lists the known ones."""
    entry = LAYOUTS.get(name)
    return entry.config(), entry.builder


def unwrap(obj):
    """The flat state dict inside the common containers (``state_dict``, VISSL's ``classy_state_dict`` /
    ``model_state_dict``); anything else is returned as is."""
    if isinstance(obj, Mapping):
        if "classy_state_dict" in obj:
            return obj["classy_state_dict"]["base_model"]["model"]["trunk"]
        if "model_state_dict" in obj:
            return obj["model_state_dict"]
        if isinstance(obj.get("state_dict"), Mapping):
            return obj["state_dict"]
    return obj


def detect_layout(state_dict: Mapping) -> str:
    """The one layout that recognises ``state_dict`` (already unwrapped), else ``UnknownLayoutError``.

    The recognisers are disjoint except ``moco`` ⊂ ``swav`` (MoCo files also start with ``module.``;
    the more specific ``moco`` wins).
    """
    found = [name for name in LAYOUTS.names() if get_layout(name)[1](state_dict)]
    if "moco" in found and "swav" in found:
        found.remove("swav")
    if len(found) == 1:
        return found[0]
    keys = _keys(state_dict)
    known = "\n".join(f"  {n}: {get_layout(n)[0].description}" for n in LAYOUTS.names())
    what = "no known layout" if not found else f"several layouts ({', '.join(found)})"
    raise UnknownLayoutError(f"checkpoint matches {what}; its first keys: [{_shown(keys)}]; known layouts:\n{known}")


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (f", ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def _listing(title: str, keys: list[str]) -> str:
    return f"\n  {title} ({len(keys)}): {_shown(keys)}" if keys else ""


def convert_state_dict(state_dict: Mapping, layout: str) -> dict[str, torch.Tensor]:
    """The trunk of ``state_dict`` under backbone (torchvision) names: layout prefix removed, its heads dropped.

    Keys outside the prefix that are not in the layout's drop list are kept under their original name,
    so ``load_into`` reports them as unexpected instead of losing them.
    """
    rule = get_layout(layout)[0]
    out = {}
    for key, value in state_dict.items():
        if any(key.startswith(d) for d in rule.drop):
            continue
        name = key[len(rule.prefix):] if rule.prefix and key.startswith(rule.prefix) else key
        if rule.prefix and not key.startswith(rule.prefix):
            name = f"<outside {rule.prefix!r}> {key}"
        out[name] = value
    return out


def check_against(backbone: ResNet, converted: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> dict:
    """``converted`` checked key by key and shape by shape against ``backbone``; returns the dict to load.

    Raises ``LayoutError`` listing every missing, unexpected and mis-shaped key. Missing
    ``num_batches_tracked`` entries (pre-0.4.1 checkpoints) are filled with 0.
    """
    expected = backbone.state_dict()
    tolerated = {k for k in expected if k.endswith("num_batches_tracked") and k not in converted}
    missing = sorted(set(expected) - set(converted) - tolerated)
    unexpected = sorted(set(converted) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(converted[k].shape)} vs backbone {tuple(expected[k].shape)}"
                    for k in set(expected) & set(converted)
                    if not isinstance(converted[k], torch.Tensor) or converted[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        raise LayoutError(f"{source} does not match backbone {backbone.name} "
                          f"(small_stem={backbone.config.small_stem}, width={backbone.config.width}):"
                          + _listing("missing keys", missing) + _listing("unexpected keys", unexpected)
                          + _listing("shape mismatches", shapes))
    result = dict(converted)
    for k in tolerated:
        result[k] = torch.zeros_like(expected[k])
    return result


def read_checkpoint(source, *, trusted: bool = False) -> Mapping:
    """The object stored in ``source`` (a path, bytes or an already-loaded mapping), tensors on the CPU.

    Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only). A file that
    needs more (a pickled argparse namespace or numpy scalar in a training checkpoint) raises, unless
    ``trusted`` allows full unpickling — which runs code from the file: only for files you trust.
    """
    if isinstance(source, Mapping):
        return source
    raw = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else None
    if isinstance(source, (str, Path)):
        from .checkpoints import check_torch_file  # empty, text, truncated, not torch.save: CheckpointError

        check_torch_file(source)
    try:
        return torch.load(raw if raw is not None else source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trusted:
            raise LayoutError(f"{source if raw is None else 'checkpoint'}: holds objects other than tensors and "
                              f"containers ({str(error).splitlines()[0]}); load it with trusted=True (CLI: "
                              "--trusted) only if you trust the file: unpickling can run code") from None
    if raw is not None:
        raw.seek(0)
    return torch.load(raw if raw is not None else source, map_location="cpu", weights_only=False)


_ARCH_BLOCKS = {("basic", (2, 2, 2, 2)): "resnet18", ("bottleneck", (3, 4, 6, 3)): "resnet50"}


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """``{"backbone", "small_stem", "width"}`` read from a converted (torchvision-named) state dict's shapes.

    Raises ``LayoutError`` when the blocks match no registered backbone.
    """
    if "conv1.weight" not in state_dict:
        raise LayoutError("cannot infer the architecture: no 'conv1.weight' after conversion")
    conv1 = state_dict["conv1.weight"]
    blocks = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in state_dict if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        blocks.append(len(ids))
    kind = "bottleneck" if any(k.startswith("layer1.0.conv3.") for k in state_dict) else "basic"
    name = _ARCH_BLOCKS.get((kind, tuple(blocks)))
    if name is None:
        raise LayoutError(f"cannot infer the architecture: {kind} blocks {blocks} match no registered backbone "
                          f"(resnet18: basic [2, 2, 2, 2], resnet50: bottleneck [3, 4, 6, 3])")
    return {"backbone": name, "small_stem": conv1.shape[-1] == 3, "width": int(conv1.shape[0])}


def load_backbone(source, backbone: ResNet | None = None, *, layout: str = "auto", trusted: bool = False
                  ) -> tuple[ResNet, str]:
    """Strictly load a checkpoint into ``backbone`` (None: built from the checkpoint's architecture).

    ``source``: a path, bytes or a loaded object (``trusted``: see ``read_checkpoint``). ``layout``: a
    name of ``LAYOUTS`` or ``auto`` (``detect_layout``). Returns ``(backbone, layout)``. Errors:
    ``UnknownLayoutError`` (no layout), ``LayoutError`` (keys or shapes do not match), ``UnknownNameError``
    (unknown layout name).
    """
    name = str(source) if isinstance(source, (str, Path)) else "checkpoint"
    state = unwrap(read_checkpoint(source, trusted=trusted))
    if not isinstance(state, Mapping):
        raise UnknownLayoutError(f"{name}: expected a state dict (a mapping of names to tensors), "
                                 f"got {type(state).__name__}")
    if layout == "auto":
        layout = detect_layout(state)
    converted = convert_state_dict(state, layout)
    if backbone is None:
        arch = infer_architecture(converted)
        backbone = build_backbone(arch["backbone"], small_stem=arch["small_stem"], width=arch["width"])
    checked = check_against(backbone, converted, source=f"{name} (layout {layout!r})")
    backbone.load_state_dict(checked, strict=True)
    return backbone, layout


def export_backbone(backbone: ResNet, path: str | Path, *, meta: dict | None = None) -> Path:
    """Write ``backbone``'s state dict (torchvision names, no ``fc``) to ``path`` and ``<path>.json``.

    Both files are written atomically (temporary file, fsync, rename). The sidecar holds the architecture
    (``ResNet.describe()``), ``format`` and ``meta`` (method, step, run directory ...). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    sidecar = {"format": EXPORT_FORMAT, **backbone.describe(), **(meta or {})}
    atomic_write_bytes(path.with_name(path.name + ".json"), json.dumps(sidecar, indent=1).encode())
    return path
