"""The DALI executor: one pipeline per recipe, GPU (mixed decoding) or CPU-only (``device_id=None``).

Data and randomness enter through one ``fn.external_source``: encoded bytes (or raw arrays), labels, targets,
and per view a float32 parameter vector per sample (``ParamLayout``) sampled by ``params.py`` — the same
numbers the torchvision executor uses. DALI's own random operators are not used, so outputs do not depend
on ``num_threads`` and match the reference sample by sample. The image is decoded once and every view is
built from it; per-sample probabilities use DALI conditionals (``if <bool DataNode>:``).

Photometric ops have three implementations (``photometric=``): on the CPU by default one Numba-compiled
function per view (``dali_numba``: torchvision's uint8 arithmetic, a single DALI node instead of ~100); on
the GPU by default batched torch kernels applied to DALI's uint8 output (``torch_photometric``: the same
arithmetic, one kernel per op and batch instead of ~100 conditional DALI nodes per view); and the native
DALI operators below (either device; the only choice with ``hue="yiq"``). Each native op
reproduces torchvision's uint8 kernel (``torchvision_backend``), including the truncation torchvision applies
when it converts back to uint8 (DALI rounds: shifted by −0.499 where needed):

================ ===========================================================================================
decoding         CPU: libjpeg-turbo (as PIL); GPU (``mixed``): nvJPEG / the hardware JPEG decoder with
                 ``jpeg_fancy_upsampling`` (libjpeg-turbo's smooth chroma upsampling) unless
                 ``fancy_upsampling=False`` (nvJPEG's default upsampling)
geometry         ``fn.slice`` of the window, then ``fn.resize`` (bilinear, antialias) — crop then resize,
                 as ``F.resized_crop``; centre crop: resize to the sampled size, then slice
brightness       ``fn.brightness_contrast(brightness=b, brightness_shift=−0.499/255)``: exact
contrast         ``fn.brightness_contrast`` centred on the mean luma (DALI's rounded BT.601 mean − 0.5, within
                 0.05 of torchvision's mean of floored luma); GPU: the same blend in arithmetic
saturation       ``fn.hsv(saturation=s)``: YIQ, i.e. a blend with the (unfloored) luma, < 1 level off
hue              ``hue="hsv"`` (default): torchvision's HSV hexcone rotation in DALI arithmetic, exact;
                 ``hue="yiq"``: DALI's ``fn.hsv(hue=360·h)`` (degrees; a YIQ rotation — a different transform)
colour order     per sample, the sampled permutation: four positions, each a conditional over the ops
grayscale        ``coord_transform`` with the luma weights in every row: floored luma in three channels
blur             separable ``fn.filter`` with torchvision's kernel (the sampled σ, the recipe's window),
                 border ``reflect_101`` (= torch's "reflect"), rounded as torchvision
solarize         ``fn.lookup_table``: v → 255 − v for v ≥ 255·threshold
flip             ``crop_mirror_normalize(mirror=...)`` at the end (flips commute with every op above)
================ ===========================================================================================
"""

from __future__ import annotations

import collections
import contextlib
import functools
import weakref
from dataclasses import dataclass

import numpy as np
import nvidia.dali.fn as fn
import nvidia.dali.types as types
import torch
from nvidia.dali import pipeline_def
from nvidia.dali.pipeline import do_not_convert
from nvidia.dali.tensors import TensorListGPU

from ..kernels import torch_photometric
from ..kernels.dali_kernels import blur, grayscale, on_device, solarize
from ..params import ViewParams
from ..recipes import Recipe, View
from ..sources import read_encoded, read_target
from .view_loader import Batch, ViewLoader

HUES = ("hsv", "yiq")
DEVICES = ("auto", "gpu", "cpu")
PHOTOMETRIC = ("auto", "numba", "torch", "native")


# --------------------------------------------------------------------------------------------- parameter layout
@dataclass(frozen=True)
class ParamLayout:
    """Offsets of one view's parameters in its per-sample float32 vector.

    [0:2] window start (top, left); [2:4] window shape (h, w); [4:6] pre-resize (h, w) ("center" only);
    [6] net flip; [7:9] flow scale (±sx, sy); then per op its ``apply`` flag followed by ColorJitter's
    order (4) and factors (4), or GaussianBlur's 1-D kernel (k).
    """

    offsets: tuple[int, ...]
    length: int

    @staticmethod
    def of(view: View) -> ParamLayout:
        """The layout of ``view``."""
        offsets, o = [], 9
        for op in view.ops:
            offsets.append(o)
            o += 1 + op.slots(view.size)
        return ParamLayout(tuple(offsets), o)


def pack_view(vp: ViewParams, sizes: np.ndarray) -> np.ndarray:
    """(n, layout.length) float32 parameter vectors of view ``vp`` for images of ``sizes`` (n, 2)."""
    view, layout = vp.view, ParamLayout.of(vp.view)
    n = len(vp)
    out = np.zeros((n, layout.length), dtype=np.float32)
    out[:, 0:4] = vp.crop
    if vp.resize is not None:
        out[:, 4:6] = vp.resize
        sy, sx = vp.resize[:, 0] / sizes[:, 0], vp.resize[:, 1] / sizes[:, 1]
    else:
        sy, sx = view.size / vp.crop[:, 2], view.size / vp.crop[:, 3]
    out[:, 6] = vp.flip
    out[:, 7] = np.where(vp.flip, -sx, sx)
    out[:, 8] = sy
    for op, o, p in zip(view.ops, layout.offsets, vp.ops, strict=True):
        out[:, o] = p["apply"]
        op.pack(p, out[:, o + 1:o + 1 + op.slots(view.size)])
    return out


def _jitter_step(x, sel, factors, ops):
    """One position of the colour-jitter order: the op whose index the sample drew there (None: disabled)."""
    if sel == 0:
        if ops[0] is not None:
            x = ops[0](x, factors[0])
    elif sel == 1:
        if ops[1] is not None:
            x = ops[1](x, factors[1])
    elif sel == 2:
        if ops[2] is not None:
            x = ops[2](x, factors[2])
    else:
        if ops[3] is not None:
            x = ops[3](x, factors[3])
    return x


def _color_jitter(x, p, o: int, ops):
    factors = [p[o + 5 + k] for k in range(4)]
    if p[o] > 0.5:
        for pos in range(4):
            x = _jitter_step(x, p[o + 1 + pos], factors, ops)
    return x


def _photometric(x, p, plan):
    """``plan``: (kind, offset, static argument) per op, prepared outside AutoGraph's conversion."""
    for kind, o, arg in plan:
        if kind == "numba":
            x = arg(x, p)
        elif kind == "jitter":
            x = _color_jitter(x, p, o, arg)
        elif kind == "gray":
            if p[o] > 0.5:
                x = grayscale(x)
        elif kind == "blur":
            if p[o] > 0.5:
                x = blur(x, p[o + 1:o + 1 + arg[0]], arg[0], arg[1])
        elif kind == "solarize":
            if p[o] > 0.5:
                x = solarize(x, arg)
    return x


def _op_plan(view: View, layout: ParamLayout, gpu: bool, hue: str) -> list:
    """Static description of the view's photometric ops, each op's ``dali_step`` (AutoGraph converts none of
    this; the net flip is applied by crop_mirror_normalize)."""
    return [(step[0], o, step[1]) for op, o in zip(view.ops, layout.offsets, strict=True)
            if (step := op.dali_step(view.size, gpu, hue)) is not None]


@functools.cache
def _numba_operator():
    """The DALI operator that runs ``dali_numba.run`` per sample: built (and compiled by Numba) once per
    process and shared by every view of every pipeline; the view's program is its third input."""
    from nvidia.dali.plugin.numba import NumbaFunction  # CPU path only

    from ..kernels import dali_numba  # compiles Numba code on first use

    return NumbaFunction(run_fn=dali_numba.run, setup_fn=dali_numba.same_shape, device="cpu",
                         in_types=[types.UINT8, types.FLOAT, types.FLOAT], out_types=[types.UINT8],
                         ins_ndim=[3, 1, 2], outs_ndim=[3])


def _numba_op(view: View, layout: ParamLayout) -> list:
    """The view's photometric ops as a one-entry plan: the shared Numba operator applied with the view's
    program (none without ops)."""
    from ..kernels import dali_numba

    prog = dali_numba.program(view, layout.offsets)
    if not len(prog):
        return []
    operator = _numba_operator()
    values, shape = [float(v) for v in prog.ravel()], list(prog.shape)

    @do_not_convert
    def apply(x, p):
        return operator(x, p, fn.constant(fdata=values, shape=shape, dtype=types.FLOAT))

    return [("numba", 0, apply)]


@do_not_convert
def _geometry(x, p, view: View, interp, antialias: bool):
    start = fn.cast(p[0:2], dtype=types.INT32)
    shape = fn.cast(p[2:4], dtype=types.INT32)
    crop = dict(axis_names="HW", normalized_anchor=False, normalized_shape=False)
    if view.crop == "center":
        x = fn.resize(x, size=p[4:6], interp_type=interp, antialias=antialias)
        return fn.slice(x, start, shape, **crop)
    x = fn.slice(x, start, shape, **crop)
    return fn.resize(x, size=[view.size, view.size], interp_type=interp, antialias=antialias)


def decoder_kwargs(device: str, fancy_upsampling: bool = True) -> dict:
    """``fn.decoders.image`` arguments for ``device``: libjpeg-turbo on the CPU; on the GPU the ``mixed``
    decoder, with libjpeg-turbo's chroma upsampling unless ``fancy_upsampling`` is False."""
    if device == "cpu":
        return dict(device="cpu")
    return dict(device="mixed", jpeg_fancy_upsampling=fancy_upsampling)


def resolve_photometric(photometric: str, device: str, hue: str) -> str:
    """"numba", "torch" or "native" for ``photometric`` ("auto": with the exact hue, numba on the CPU and torch
    on the GPU; native with ``hue="yiq"``)."""
    if photometric not in PHOTOMETRIC:
        raise ValueError(f"photometric: expected one of {PHOTOMETRIC}, got {photometric!r}")
    if photometric == "auto":
        return "native" if hue != "hsv" else "numba" if device == "cpu" else "torch"
    if photometric == "numba" and (device != "cpu" or hue != "hsv"):
        raise ValueError(f"photometric='numba' runs on the CPU with hue='hsv' (got device={device!r}, hue={hue!r})")
    if photometric == "torch" and hue != "hsv":
        raise ValueError(f"photometric='torch' implements hue='hsv' only (got hue={hue!r})")
    return photometric


def build_pipeline(recipe: Recipe, *, is_array: bool, has_labels: bool, device: str, batch_size: int,
                   num_threads: int, device_id: int | None, prefetch: int, source, hue: str = "hsv",
                   photometric: str = "auto", fancy_upsampling: bool = True) -> object:
    """The DALI pipeline of ``recipe`` fed by ``source`` (a batch callback returning the tuple described in
    ``DALILoader._feed``); outputs: views, then labels (if any), then targets per view (dense), then rows.
    ``photometric``: "native" (DALI operators, CPU or GPU), "numba" (one compiled function per view,
    ``dali_numba``; CPU only), "torch" (none here: the views come out as uint8 CHW, flipped, for
    ``torch_photometric`` to finish), "auto" (``resolve_photometric``). ``fancy_upsampling``: the GPU
    decoder upsamples JPEG chroma as libjpeg-turbo does (the CPU decoder and PIL always do)."""
    views = recipe.expanded_views()
    layouts = [ParamLayout.of(v) for v in views]
    target = recipe.target
    n_out = 2 + len(views) + int(has_labels) + int(target is not None)
    mean = [255.0 * m for m in recipe.mean]
    std = [255.0 * s for s in recipe.std]

    if hue not in HUES:
        raise ValueError(f"hue: expected one of {HUES}, got {hue!r}")
    gpu = device == "gpu"
    photometric = resolve_photometric(photometric, device, hue)
    if photometric == "numba":
        plans = [_numba_op(v, lay) for v, lay in zip(views, layouts, strict=True)]
    elif photometric == "torch":
        plans = [[] for _ in views]
    else:
        plans = [_op_plan(v, lay, gpu, hue) for v, lay in zip(views, layouts, strict=True)]
    layouts_in = ["HWC" if is_array else "", ""] + [""] * len(views) + [""] * int(has_labels)
    layouts_in += ["HWC"] if target is not None else []

    @pipeline_def(enable_conditionals=True)
    def pipe():
        inputs = list(fn.external_source(source=source, num_outputs=n_out, batch=True, batch_info=True,
                                         layout=layouts_in))
        encoded, rows, params = inputs[0], inputs[1], inputs[2:2 + len(views)]
        extra = inputs[2 + len(views):]
        if is_array:
            img = encoded.gpu() if device == "gpu" else encoded
        else:
            img = fn.decoders.image(encoded, output_type=types.RGB, **decoder_kwargs(device, fancy_upsampling))
        labels = extra.pop(0) if has_labels else None
        tgt = extra.pop(0) if target is not None else None
        if tgt is not None and device == "gpu":
            tgt = tgt.gpu()
        outs, touts = [], []
        # AutoGraph's zip (this function is converted) has no strict=; the lengths match by construction
        for view, plan, p in zip(views, plans, params):  # noqa: B905
            x = _geometry(img, p, view, types.INTERP_LINEAR, True)
            x = _photometric(x, p, plan)
            mirror = fn.cast(p[6], dtype=types.INT32)
            if photometric == "torch":
                outs.append(fn.crop_mirror_normalize(x, mirror=mirror, output_layout="CHW", dtype=types.UINT8))
            else:
                outs.append(fn.crop_mirror_normalize(x, mirror=mirror, mean=mean, std=std, output_layout="CHW",
                                                     dtype=types.FLOAT))
            if tgt is not None:
                interp = types.INTERP_LINEAR if target == "flow" else types.INTERP_NN
                t = _geometry(tgt, p, view, interp, False)
                if target == "flow":
                    t = t * on_device(p[7:9], gpu)
                t = fn.flip(t, horizontal=mirror)
                touts.append(fn.transpose(t, perm=[2, 0, 1]))
        return tuple(outs + ([labels] if labels is not None else []) + touts + [rows])

    with _no_origin_tracing():
        p = pipe(batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=prefetch)
        p.build()
    return p


@contextlib.contextmanager
def _no_origin_tracing():
    """Workaround: DALI 2.4 records a Python stack trace for every operator it creates (for its error
    messages); with the ~3,700 operators of an 8-view SwAV pipeline that is ~40 % of the build time
    (measured 2026-11-25, nvidia-dali-cuda130 2.4.0). Turned off while our graph is generated, through the
    private ``_utils.dali_trace.set_tracing``; remove when DALI makes tracing cheap or public to toggle."""
    try:
        from nvidia.dali._utils import dali_trace  # private, may disappear
    except ImportError:
        yield
        return
    before = dali_trace.is_tracing_enabled()
    dali_trace.set_tracing(enabled=False)
    try:
        yield
    finally:
        dali_trace.set_tracing(enabled=before)


def _dali_reason(message: str) -> str:
    """The operator's own error line out of DALI's multi-line "Critical error in pipeline" message."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if "encountered:" in lines and lines.index("encountered:") + 1 < len(lines):
        return lines[lines.index("encountered:") + 1]
    return lines[0] if lines else "unknown error"


def _to_torch(tl, device: torch.device) -> torch.Tensor:
    """A copy of DALI output ``tl``: CPU outputs (labels, rows, CPU pipelines) as CPU tensors, GPU outputs on
    ``device``."""
    if not isinstance(tl, TensorListGPU):
        return torch.from_numpy(np.array(tl.as_tensor()))
    from nvidia.dali.plugin.pytorch import feed_ndarray, to_torch_type  # GPU path only

    t = tl.as_tensor()
    out = torch.empty(t.shape(), dtype=to_torch_type[t.dtype], device=device)
    feed_ndarray(t, out, cuda_stream=torch.cuda.current_stream(device))
    return out


def _weak_feed(loader: DALILoader):
    """The pipeline's batch callback, holding its loader weakly: a bound ``loader._feed`` would make the loader
    and its pipeline a reference cycle, freed only by the garbage collector at an arbitrary moment — possibly
    inside a forked child, where the pipeline's executor threads no longer exist (see ``workers``). Without the
    cycle, dropping the loader frees its pipeline at once, in this process."""
    ref = weakref.ref(loader)

    def feed(batch_info):
        owner = ref()
        if owner is None:
            raise StopIteration
        return owner._feed(batch_info)

    return feed


class DALILoader(ViewLoader):
    """The DALI executor (see the module docstring): ``device`` "auto" | "gpu" | "cpu", ``num_threads``
    CPU threads, ``device_id`` (GPU; default the current device), ``prefetch`` queue depth, ``hue`` and
    ``photometric`` (``build_pipeline``), ``fancy_upsampling`` (GPU decoding: libjpeg-turbo's chroma
    upsampling, as the CPU decoder and the torchvision reference; False: nvJPEG's default).

    Outputs are fresh torch tensors (copied out of DALI's buffers), on ``cuda:device_id`` for "gpu".
    A decoding failure that the scan did not catch stops the epoch with a RuntimeError naming the files of
    the batches in flight; the pipeline is then rebuilt for the next epoch.
    """

    backend = "dali"

    def __init__(self, recipe, source, batch_size: int, *, device: str = "auto", num_threads: int = 2,
                 device_id: int | None = None, prefetch: int = 2, hue: str = "hsv", photometric: str = "auto",
                 fancy_upsampling: bool = True, **kwargs):
        super().__init__(recipe, source, batch_size, **kwargs)
        if hue not in HUES:
            raise ValueError(f"hue: expected one of {HUES}, got {hue!r}")
        self.hue = hue
        if device not in DEVICES:
            raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
        if device == "auto":
            device = "gpu" if torch.cuda.is_available() else "cpu"
        if device == "gpu" and not torch.cuda.is_available():
            raise RuntimeError("DALILoader(device='gpu'): no CUDA device is available; use device='cpu'")
        self.device = device
        self.photometric = resolve_photometric(photometric, device, hue)
        self.device_id = None if device == "cpu" else (torch.cuda.current_device() if device_id is None else device_id)
        self.torch_device = torch.device("cpu") if device == "cpu" else torch.device("cuda", self.device_id)
        self.num_threads, self.prefetch = num_threads, prefetch
        if not isinstance(fancy_upsampling, bool):
            raise TypeError(f"fancy_upsampling: expected a bool, got {fancy_upsampling!r}")
        self.fancy_upsampling = fancy_upsampling
        self._pipe = None
        self._pending: collections.deque = collections.deque()
        self._tasks = iter(())
        self._dirty = False

    # the batch callback DALI calls (possibly ahead of the consumer, up to ``prefetch`` batches)
    def _feed(self, batch_info):
        rows, views = next(self._tasks)  # StopIteration ends DALI's epoch
        cat = self.catalog
        if cat.is_array:
            images = [cat.source.images[cat.index[r]] for r in rows]
        else:
            images = [read_encoded(cat.paths[r], bool(cat.transcode[r])) for r in rows]
        sizes = cat.sizes[rows]
        out = [images, np.asarray(rows, dtype=np.int64)] + [pack_view(vp, sizes) for vp in views]
        if cat.labels is not None:
            out.append(cat.labels[rows].astype(np.int32))
        if self.recipe.target is not None:
            if cat.is_array:
                out.append([np.ascontiguousarray(cat.source.targets[cat.index[r]]).reshape(
                    cat.sizes[r][0], cat.sizes[r][1], -1) for r in rows])
            else:
                out.append([read_target(cat.target_paths[r], cat.target_dtype)[:, :, None] for r in rows])
        self._pending.append((rows, views))
        return tuple(out)

    def _build(self):
        self._pipe = build_pipeline(
            self.recipe, is_array=self.catalog.is_array, has_labels=self.catalog.labels is not None,
            device=self.device, batch_size=self.batch_size, num_threads=self.num_threads, device_id=self.device_id,
            prefetch=self.prefetch, source=_weak_feed(self), hue=self.hue, photometric=self.photometric,
            fancy_upsampling=self.fancy_upsampling)

    def _drain(self):
        """Finish an epoch the consumer left early: discard the batches DALI already prefetched."""
        self._tasks = iter(())
        try:
            while True:
                self._pipe.run()
        except StopIteration:
            self._pipe.reset()
        self._pending.clear()
        self._dirty = False

    def _execute(self, tasks):
        if self._pipe is None:
            self._build()
        elif self._dirty:
            self._drain()
        self._tasks = iter(tasks)
        self._pending.clear()
        self._dirty = True
        n_views = len(self.recipe.expanded_views())
        has_labels = self.catalog.labels is not None
        while True:
            try:
                outs = self._pipe.run()
            except StopIteration:
                self._pipe.reset()
                self._dirty = False
                return
            except Exception as e:  # any failure leaves the pipeline unusable: name the files, rebuild next time
                paths = self.catalog.paths
                suspects = [paths[r] for rows, _ in self._pending for r in rows] if paths else []
                self._pipe, self._dirty = None, False
                first = _dali_reason(str(e))
                raise RuntimeError(f"DALI pipeline failed ({first}); files of the batches in flight: "
                                   f"{suspects[:20]}{' ...' if len(suspects) > 20 else ''}. "
                                   "Scan with check='full' to find undecodable files up front.") from e
            _, view_params = self._pending.popleft()
            tensors = [_to_torch(o, self.torch_device) for o in outs]
            views = tensors[:n_views]
            if self.photometric == "torch":
                mean, std = self.recipe.mean, self.recipe.std
                views = [torch_photometric.normalise(torch_photometric.apply_view(v, vp), mean, std)
                         for v, vp in zip(views, view_params, strict=True)]
            k = n_views
            labels = tensors[k].long().to(self.torch_device) if has_labels else None
            k += int(has_labels)
            targets = None
            if self.recipe.target is not None:
                targets = tensors[k:k + n_views]
                targets = [t[:, 0].long() for t in targets] if self.recipe.target == "mask" else [
                    t.float() for t in targets]
            rows = tensors[-1].cpu().numpy()
            yield Batch(views=views, labels=labels, targets=targets, indices=torch.from_numpy(self.catalog.index[rows]))
