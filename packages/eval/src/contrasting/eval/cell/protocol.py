"""One cell of the grid: one frozen encoder × one end task → ``CellResult``.

Protocol (``run_cell``):

1. The task's data is listed by its reader; a validation split (``spec.val_fraction`` of train, at least
   one sample) is carved from train by a permutation with a fixed seed (``VAL_SEED``), the same for every
   cell. The test split is the dataset's.
2. The encoder is frozen: eval mode (BatchNorm statistics fixed), no gradients, and its state-dict
   fingerprint is compared before and after the task (a change raises ``RuntimeError``).
3. Image-level tasks: each split is encoded once (``features.cached_features``: fp16, in memory or
   memory-mapped under ``cache_dir``), and every hyper-parameter setting trains its head on those cached
   features (``feature_cache="off"`` re-encodes every batch instead: the benchmark's baseline).
   Pixel-wise tasks: the frozen encoder runs on every batch under no_grad (autocast on CUDA) with the
   study's colour jitter / grayscale on training images.
4. Each setting (a dict of ``Schedule`` fields over the task's default) trains a fresh head with Adam
   (weight decay from the schedule, 0 by default), the learning rate stepped once per epoch; it is scored
   on the validation split. The setting with the best validation score (signed so that higher is better;
   the first on ties) is selected and its head — the one that was validated — is evaluated on the whole
   test set. The test set never takes part in the selection.
5. Reproducibility: every setting starts from ``torch.manual_seed(seed)`` and shuffles with a generator
   seeded by ``seed``; a ``random`` encoder is initialised from ``seed``. With ``num_workers=0`` on a CPU
   a cell repeats bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from contrasting.data.executors.workers import dataloader_kwargs
from contrasting.encoders.provenance import environment
from contrasting.eval.catalog.heads import build_head
from contrasting.eval.catalog.metric_stats import encode_samples
from contrasting.eval.catalog.metrics import constant_predictor, make_metric, signed_score
from contrasting.eval.catalog.objectives import class_weights, make_loss
from contrasting.eval.catalog.readers import TaskData, TaskDataset, read_task, target_decoder
from contrasting.eval.catalog.tasks import (
    Schedule,
    TaskDataError,
    TaskSpec,
    check_data,
    get_task,
    resolve_root,
    schedule_value_problem,
)
from contrasting.eval.catalog.world import ensure_world
from contrasting.eval.cell.encoder import load_encoder
from contrasting.eval.cell.features import (
    EncodingSource,
    FeatureSource,
    autocast,
    cached_features,
    encode_images,
    encode_split,
    refs_digest,
)

VAL_SEED = 0  # the validation carve-out is the same for every cell, encoder and seed
EVAL_BATCH = 1024  # rows per forward when scoring cached features (no effect on results)
CACHE_MODES = ("auto", "memory", "disk", "off")


@dataclass
class CellResult:
    """The outcome of one cell. ``value`` is the test metric of the selected setting, ``score`` the same
    signed so that higher is better, ``se`` its bootstrap standard error over the test samples, ``baseline`` the
    task's trivial baseline on the same test split (``metrics.constant_predictor``); ``metrics`` has its
    companions (e.g. pixel accuracy, EPE) and ``se``, ``baseline`` and ``per_sample`` (the per-sample statistics,
    ``metric_stats.encode_samples``);
    ``val_scores`` one entry per setting: {"hparams", "val", "val_metrics", "train_s"}."""

    encoder: str
    task: str
    task_version: int
    seed: int
    metric: str
    higher_is_better: bool
    value: float
    score: float
    se: float
    baseline: float
    metrics: dict
    selected: dict
    val_scores: list[dict]
    sizes: dict[str, int]
    timings: dict[str, float]
    versions: dict[str, str]
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of every field."""
        return asdict(self)


def settings(spec: TaskSpec, hparams: list[dict] | dict | None) -> list[Schedule]:
    """Each hyper-parameter dict applied over the task's default schedule (None: the default alone; a single
    dict: one setting)."""
    if isinstance(hparams, dict):
        hparams = [hparams]
    out = []
    for hp in hparams or [{}]:
        unknown = set(hp) - set(Schedule.__dataclass_fields__)
        if unknown:
            raise ValueError(f"hparams: unknown keys {sorted(unknown)}; expected fields of Schedule "
                             f"{list(Schedule.__dataclass_fields__)}")
        problems = [p for k, v in hp.items() if (p := schedule_value_problem(k, v))]
        if problems:
            raise ValueError(f"hparams: {'; '.join(problems)}")
        out.append(spec.schedule.__class__(**{**asdict(spec.schedule), **hp}))
    return out


def make_optimizer(params, sched: Schedule) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam (or SGD with momentum 0.9) with the schedule's lr and weight decay, and the per-epoch lr schedule
    of ``Schedule``'s docstring."""
    if sched.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=sched.lr, weight_decay=sched.weight_decay)
    elif sched.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=sched.lr, momentum=0.9, weight_decay=sched.weight_decay)
    else:
        raise ValueError(f"optimizer: expected 'adam' or 'sgd', got {sched.optimizer!r}")
    epochs = max(sched.epochs, 1)
    factors = {
        "cosine": lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)),
        "step": lambda e: 0.1 ** sum(e >= m * epochs for m in (0.5, 0.75)),
        "poly": lambda e: (1 - e / epochs) ** 0.9,
        "none": lambda e: 1.0,
    }
    if sched.decay not in factors:
        raise ValueError(f"decay: expected one of {sorted(factors)}, got {sched.decay!r}")
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factors[sched.decay])


def carve_val(n_train: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices): ``max(1, round(fraction·n))`` samples for validation, fixed by VAL_SEED."""
    if n_train < 2:
        raise ValueError(f"cannot carve a validation split from {n_train} training sample(s)")
    n_val = min(max(1, round(fraction * n_train)), n_train - 1)
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(VAL_SEED))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def _num_classes(spec: TaskSpec, data: TaskData) -> int | None:
    if spec.num_classes is not None:  # the reader checked the labels and class folders against it
        return spec.num_classes
    if spec.target == "class":
        return len(data.classes) if data.classes else int(max(data.train.targets)) + 1
    if spec.target == "mask" and data.classes:
        return len(data.classes)
    if spec.target == "mask":  # scan the training targets (a dataset that states neither count nor names)
        decode, top = target_decoder(spec), 0
        for ref in data.train.targets:
            t = decode(ref, tuple(spec.image_size), spec)
            t = t[t != spec.ignore_index]
            top = max(top, int(t.max()) if t.numel() else 0)
        return top + 1
    return None


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ image-level


@contextlib.contextmanager
def _cpu_threads(n: int | None):
    """Temporarily run torch's CPU ops on ``n`` threads (None: unchanged).

    Why: a head step on cached features is a few small GEMMs; with several OpenMP threads on a busy 2-core
    machine each op waits for the others' spin loops (measured 2026-11: 900 steps of a 64→3 probe took 38 s
    on 2 threads, 3.4 s on 1, same results). Only the cached path uses it: the uncached baseline's encoder
    forward profits from threads.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _train_on_embeddings(head, source, labels, idx, sched, seed, loss_fn, device):
    opt, lr_sched = make_optimizer(head.parameters(), sched)
    g = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(sched.epochs):
        perm = idx[torch.randperm(len(idx), generator=g)]
        for start in range(0, len(perm), sched.batch_size):
            b = perm[start:start + sched.batch_size]
            loss = loss_fn(head(source.get(b)), labels[b].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        lr_sched.step()
    return head


@torch.no_grad()
def _score_embeddings(head, source, labels, idx, spec, num_classes, batch=EVAL_BATCH):
    """The metric accumulator of ``head`` on the cached features of rows ``idx``."""
    head.eval()
    metric = make_metric(spec.metric, num_classes=num_classes, ignore_index=spec.ignore_index)
    for start in range(0, len(idx), batch):
        b = idx[start:start + batch]
        metric.update(head(source.get(b)).float().cpu(), labels[b])
    return metric


def _image_cell(spec, data, encoder, scheds, tr_idx, val_idx, num_classes, *, seed, device, cache, cache_dir,
                num_workers, progress, timings):
    t0 = time.perf_counter()
    train_labels = torch.tensor(data.train.targets, dtype=torch.long)
    test_labels = torch.tensor(data.test.targets, dtype=torch.long)
    fingerprint = encoder.fingerprint()
    sources = {}
    hits = {}
    for name, split in (("train", data.train), ("test", data.test)):
        ds = TaskDataset(spec, split)
        if cache == "off":
            sources[name] = EncodingSource(encoder, ds, device, spec.pooling)
            continue
        key = {"encoder": fingerprint, "task": spec.name, "version": spec.version, "split": name,
               "image_size": list(spec.image_size), "samples": refs_digest(split.inputs), "pooling": spec.pooling}
        shape = (len(split), spec.frames, encoder.widths["embedding"] * spec.pooling ** 2)
        _log(progress, f"[{spec.name}] encoding {name} ({len(split)} samples)")
        feats, hits[name] = cached_features(
            key, shape, lambda out, ds=ds: encode_split(encoder, ds, out, device=device, num_workers=num_workers,
                                                        progress=progress, grid=spec.pooling),
            cache_dir if cache == "disk" else None, progress)
        sources[name] = FeatureSource(feats, device)
    timings["encode_s"] = time.perf_counter() - t0
    loss_fn = make_loss(spec)
    results, heads = [], []
    for sched in scheds:
        t1 = time.perf_counter()
        torch.manual_seed(seed)
        head = build_head(spec, encoder, num_classes).to(device)
        with _cpu_threads(1 if cache != "off" and device.type == "cpu" else None):
            _train_on_embeddings(head, sources["train"], train_labels, tr_idx, sched, seed, loss_fn, device)
        val = _score_embeddings(head, sources["train"], train_labels, val_idx, spec, num_classes).compute()
        results.append({"val": val[spec.metric], "val_metrics": val, "train_s": time.perf_counter() - t1})
        heads.append(head)
        _log(progress, f"[{spec.name}] {sched}: val {spec.metric} = {val[spec.metric]:.4f}")
    best = _select(spec, results)
    if scheds[best].refit:  # the selected setting again, on train + validation (Schedule.refit)
        t1 = time.perf_counter()
        torch.manual_seed(seed)
        heads[best] = build_head(spec, encoder, num_classes).to(device)
        with _cpu_threads(1 if cache != "off" and device.type == "cpu" else None):
            _train_on_embeddings(heads[best], sources["train"], train_labels, torch.cat([tr_idx, val_idx]),
                                 scheds[best], seed, loss_fn, device)
        timings["refit_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    test = _score_embeddings(heads[best], sources["test"], test_labels, torch.arange(len(data.test)), spec, num_classes)
    baseline = make_metric(spec.metric, num_classes=num_classes, ignore_index=spec.ignore_index)
    baseline.update(constant_predictor(spec.metric, train_labels, num_classes=num_classes)(test_labels), test_labels)
    timings["test_s"] = time.perf_counter() - t2
    timings["train_s"] = sum(r["train_s"] for r in results)
    return best, results, (test, baseline), hits


def _select(spec: TaskSpec, results: list[dict]) -> int:
    """Index of the best validation score (signed so that higher is better; first on ties; NaN never wins)."""
    return int(np.argmax([_signed(spec, r["val"]) for r in results]))


def _signed(spec: TaskSpec, value: float) -> float:
    score = signed_score(spec.metric, value)
    return score if score == score else -math.inf  # NaN (e.g. no valid pixel) ranks last


# ------------------------------------------------------------------------------------------ pixel-wise


def _pixel_forward(head, encoder, x, target_size, device, spec):
    """The head's output at the target's size for images ``x`` (B, k, 3, H, W) or, from a ``CachedPixelBatches``,
    their frozen features already computed (a dict)."""
    if isinstance(x, dict):
        feats = {k: v.to(device).float() for k, v in x.items()}
    else:
        feats = encode_images(encoder, x, device)
    if spec.frames == 1:
        inputs = {k: v[:, 0] for k, v in feats.items()}
    else:
        inputs = [{k: v[:, i] for k, v in feats.items()} for i in range(spec.frames)]
    with autocast(device):
        out = head(inputs)
    out = out.float()
    if out.shape[-2:] != tuple(target_size):
        out = F.interpolate(out, size=target_size, mode="bilinear", align_corners=False)
    return out


@torch.no_grad()
def _score_pixels(head, encoder, loader, spec, num_classes, device, predictor=None):
    """The metric accumulator of ``head`` over ``loader`` (and, with ``predictor``, the trivial baseline's on the
    same targets: (metric, baseline))."""
    head.eval()
    metric = make_metric(spec.metric, num_classes=num_classes, ignore_index=spec.ignore_index)
    baseline = make_metric(spec.metric, num_classes=num_classes, ignore_index=spec.ignore_index)
    for x, y in loader:
        out = _pixel_forward(head, encoder, x, y.shape[-2:], device, spec)
        metric.update(out.cpu(), y)
        if predictor is not None:
            baseline.update(predictor(y), y)
    return metric if predictor is None else (metric, baseline)


def start_at_constant(head: torch.nn.Module, value: float) -> None:
    """Regression heads start at the trivial baseline: the last conv's weights are zeroed and its bias set to
    ``value``, so the untrained head predicts the constant exactly and training moves away from it only where
    that helps. Adam's steps of ~lr per update would otherwise spend the whole schedule walking the output from
    random values around 0 to the targets' level (measured: 4-epoch depth heads ended worse than the constant)."""
    last = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.fill_(value)


BASELINE_SAMPLES = 512  # training targets the pixel tasks' trivial baseline is fitted on (evenly spaced)


def pixel_baseline(spec: TaskSpec, split, num_classes: int | None):
    """The trivial baseline's predictor of a pixel task, fitted on up to BASELINE_SAMPLES targets of ``split``."""
    decode, refs = target_decoder(spec), split.targets
    picks = np.unique(np.linspace(0, len(refs) - 1, min(len(refs), BASELINE_SAMPLES)).round().astype(int))
    maps = [decode(refs[i], tuple(spec.image_size), spec) for i in picks]
    return constant_predictor(spec.metric, maps, num_classes=num_classes, ignore_index=spec.ignore_index)


class CachedPixelBatches:
    """A split's frozen multi-scale features, computed once (float16, in memory) with its decoded targets, served
    in batches like a DataLoader of (features dict, targets): ``shuffle`` reorders every pass with ``generator``.
    For small pixel tasks only (the built-in world: ~92 KB per 32 px image for a width-16 ResNet-18); there is
    no augmentation, the features being fixed."""

    def __init__(self, encoder, dataset: TaskDataset, device: torch.device, *, batch_size: int = 64):
        feats, targets = {}, []
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        for x, y in loader:
            for k, v in encode_images(encoder, x, device).items():
                if v.dim() > 3:  # the maps (the pooled embedding is not used by pixel heads)
                    feats.setdefault(k, []).append(v.half().cpu())
            targets.append(y)
        self.feats = {k: torch.cat(v) for k, v in feats.items()}
        self.targets = torch.cat(targets)
        self.batch_size, self.shuffle, self.generator = batch_size, False, None

    @staticmethod
    def joined(first: CachedPixelBatches, second: CachedPixelBatches) -> CachedPixelBatches:
        """Both splits' cached features and targets as one (the train + validation refit)."""
        out = CachedPixelBatches.__new__(CachedPixelBatches)
        out.feats = {k: torch.cat([first.feats[k], second.feats[k]]) for k in first.feats}
        out.targets = torch.cat([first.targets, second.targets])
        out.batch_size, out.shuffle, out.generator = first.batch_size, False, None
        return out

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        """This split served in ``batch_size`` batches (a new epoch's order on each pass when ``shuffle``)."""
        out = CachedPixelBatches.__new__(CachedPixelBatches)
        out.feats, out.targets = self.feats, self.targets
        out.batch_size, out.shuffle, out.generator = batch_size, shuffle, generator
        return out

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.batch_size)

    def __iter__(self):
        n = len(self.targets)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield {k: v[idx] for k, v in self.feats.items()}, self.targets[idx]


def _pixel_loaders(spec, data, encoder, tr_idx, val_idx, device, num_workers, cached: bool):
    """(make_train_loader(batch, generator), make_eval_loader(split, batch)) for a pixel cell: streamed images
    with the study's training jitter, or ``CachedPixelBatches`` of frozen features."""
    splits = {"train": data.train.subset(tr_idx.tolist()), "val": data.train.subset(val_idx.tolist()),
              "test": data.test}
    if cached:
        cache = {name: CachedPixelBatches(encoder, TaskDataset(spec, split), device) for name, split in splits.items()}
        cache["train+val"] = CachedPixelBatches.joined(cache["train"], cache["val"])
        return (lambda batch, g, name="train": cache[name].batches(batch, True, g),
                lambda name, batch: cache[name].batches(batch))
    sets = {"train": TaskDataset(spec, splits["train"], augment=True), "val": TaskDataset(spec, splits["val"]),
            "test": TaskDataset(spec, splits["test"]),
            "train+val": TaskDataset(spec, data.train.subset(torch.cat([tr_idx, val_idx]).tolist()), augment=True)}
    return (lambda batch, g, name="train": torch.utils.data.DataLoader(
                sets[name], batch_size=batch, shuffle=True, generator=g, drop_last=False,
                **dataloader_kwargs(num_workers)),
            lambda name, batch: torch.utils.data.DataLoader(sets[name], batch_size=batch,
                                                            **dataloader_kwargs(num_workers)))


def _fit_pixel_head(*, spec, encoder, num_classes, sched, loader, loss_fn, predictor, seed, device, progress):
    """A pixel head trained from ``seed`` with ``sched`` on the batches of ``loader`` (depth and scalar heads start
    at the trivial baseline's constant)."""
    torch.manual_seed(seed)
    head = build_head(spec, encoder, num_classes).to(device)
    if spec.target in ("depth", "scalar"):
        start_at_constant(head, float(predictor(torch.zeros(1, 1, 1)).reshape(-1)[0]))
    opt, lr_sched = make_optimizer(head.parameters(), sched)
    for epoch in range(sched.epochs):
        head.train()
        for x, y in loader:
            y = y.to(device)
            loss = loss_fn(_pixel_forward(head, encoder, x, y.shape[-2:], device, spec), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        lr_sched.step()
        if progress:
            _log(progress, f"[{spec.name}] epoch {epoch + 1}/{sched.epochs} loss {float(loss.detach()):.4f}")
    return head


def _pixel_cell(spec, data, encoder, scheds, tr_idx, val_idx, num_classes, *, seed, device, num_workers, progress,
                timings, cached: bool = False):
    t0 = time.perf_counter()
    train_loader, eval_loader = _pixel_loaders(spec, data, encoder, tr_idx, val_idx, device, num_workers, cached)
    weight = None
    if spec.loss == "weighted_ce" and "class_weights" in spec.loss_options:
        weight = torch.tensor(spec.loss_options["class_weights"], dtype=torch.float32, device=device)
        if len(weight) != num_classes:
            raise ValueError(f"task {spec.name!r}: loss_options.class_weights holds {len(weight)} weights for "
                             f"{num_classes} classes")
    elif spec.loss == "weighted_ce":
        decode = target_decoder(spec)
        refs = data.train.subset(tr_idx.tolist()).targets[:64]
        weight = class_weights([decode(r, tuple(spec.image_size), spec) for r in refs], num_classes,
                               spec.ignore_index).to(device)
    loss_fn = make_loss(spec, weight)
    timings["encode_s"] = time.perf_counter() - t0 if cached else 0.0
    predictor = pixel_baseline(spec, data.train, num_classes)
    results, best_state, best_score = [], None, -math.inf
    fit = dict(spec=spec, encoder=encoder, num_classes=num_classes, loss_fn=loss_fn, predictor=predictor, seed=seed,
               device=device, progress=progress)
    for sched in scheds:
        t1 = time.perf_counter()
        head = _fit_pixel_head(sched=sched, loader=train_loader(sched.batch_size,
                                                                torch.Generator().manual_seed(seed)), **fit)
        val_loader = eval_loader("val", sched.batch_size)
        val = _score_pixels(head, encoder, val_loader, spec, num_classes, device).compute()
        results.append({"val": val[spec.metric], "val_metrics": val, "train_s": time.perf_counter() - t1})
        score = _signed(spec, val[spec.metric])
        if best_state is None or score > best_score:
            best_state, best_score = copy.deepcopy(head).cpu(), score
        _log(progress, f"[{spec.name}] {sched}: val {spec.metric} = {val[spec.metric]:.4f}")
    best = _select(spec, results)
    if scheds[best].refit:  # the selected setting again, on train + validation (Schedule.refit)
        t1 = time.perf_counter()
        loader = train_loader(scheds[best].batch_size, torch.Generator().manual_seed(seed), "train+val")
        best_state = _fit_pixel_head(sched=scheds[best], loader=loader, **fit).cpu()
        timings["refit_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    test_loader = eval_loader("test", scheds[best].batch_size)
    test = _score_pixels(best_state.to(device), encoder, test_loader, spec, num_classes, device, predictor)
    timings["test_s"] = time.perf_counter() - t2
    timings["train_s"] = sum(r["train_s"] for r in results)
    return best, results, test


# ------------------------------------------------------------------------------------------ the cell


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_task_data(spec: TaskSpec, data_root=None, progress: bool = False) -> TaskData:
    """List a task's data (building the shapes world first for a built-in task whose world is absent)."""
    root = resolve_root(spec, data_root)
    if spec.builtin and not check_data(spec, data_root).present and not root.exists():
        _log(progress, f"building the shapes world at {root}")
        root = ensure_world(root, progress)
    if not root.exists():
        raise TaskDataError(spec.name, root, spec.layout.structure, "data root missing")
    return read_task(spec, root)


def run_cell(encoder, task: str | TaskSpec, *, hparams: list[dict] | dict | None = None, seed: int = 0,
             device: str | torch.device | None = None, data_root=None, cache_dir=None, progress: bool = False,
             arch: str | None = None, image_size: int | tuple[int, int] | None = None, epochs: int | None = None,
             feature_cache: str = "auto", num_workers: int = 0, pixel_cache: bool = False) -> CellResult:
    """Evaluate one frozen encoder on one task (the protocol of the module docstring).

    encoder: a checkpoint path (any layout contrasting.encoders imports), ``"random[:arch]"``,
        ``"supervised[:arch]"``, or an ``nn.Module`` / ``FrozenEncoder``.
    task: a registered task name or a ``TaskSpec``.
    hparams: settings to select among on the validation split, each a dict of ``Schedule`` fields
        (e.g. ``[{"lr": 1e-3}, {"lr": 1e-4}]``); None → the task's default schedule alone; one dict → one
        setting.
    seed: makes the cell reproducible (head initialisation, shuffling, a random encoder's weights).
    data_root / cache_dir: where the data is (see ``tasks.resolve_root``) / where image-level features are
        memory-mapped (``feature_cache="auto"`` uses it when given, memory otherwise; ``"off"`` re-encodes
        every batch, the uncached baseline).
    arch: backbone architecture for ``random``/``supervised`` and ambiguous checkpoints.
    image_size / epochs: overrides of the task's input size and of every setting's epoch count.
    pixel_cache: pixel-wise tasks train on frozen features computed once (``CachedPixelBatches``: 3–4× cheaper
        per epoch, but without the study's colour jitter on training images; for small datasets, and not for
        tasks with ``train_crops``).
    """
    t_start = time.perf_counter()
    if feature_cache not in CACHE_MODES:
        raise ValueError(f"feature_cache: expected one of {CACHE_MODES}, got {feature_cache!r}")
    sizes = image_size if isinstance(image_size, (tuple, list)) and len(image_size) == 2 else (image_size,)
    for name, value in (*(("image_size", v) for v in sizes), ("epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}: expected an integer >= 1 (or two for image_size), got "
                             f"{image_size if name == 'image_size' else value!r}")
    spec = get_task(task)
    if image_size is not None:
        spec = spec.with_overrides(image_size=image_size)
    scheds = settings(spec, hparams)
    if epochs is not None:
        scheds = [dataclasses.replace(s, epochs=epochs) for s in scheds]
    device = resolve_device(device)
    data = load_task_data(spec, data_root, progress)
    num_classes = _num_classes(spec, data)
    tr_idx, val_idx = carve_val(len(data.train), spec.val_fraction)
    enc = load_encoder(encoder, arch=arch, seed=seed, device=device)
    before = enc.fingerprint()
    timings: dict[str, float] = {}
    hits: dict[str, bool] = {}
    cache = feature_cache
    if cache == "auto":
        cache = "disk" if cache_dir is not None else "memory"
    if cache == "disk" and cache_dir is None:
        raise ValueError("feature_cache='disk' needs a cache_dir")
    common = dict(seed=seed, device=device, num_workers=num_workers, progress=progress, timings=timings)
    if spec.pixelwise and pixel_cache and spec.train_crops is not None:
        raise ValueError(f"pixel_cache: task {spec.name!r} trains on random crops (train_crops), which features "
                         "computed once cannot give")
    if spec.pixelwise:
        best, results, test = _pixel_cell(spec, data, enc, scheds, tr_idx, val_idx, num_classes, cached=pixel_cache,
                                          **common)
    else:
        best, results, test, hits = _image_cell(spec, data, enc, scheds, tr_idx, val_idx, num_classes, cache=cache,
                                                cache_dir=cache_dir, **common)
    if enc.fingerprint() != before:
        raise RuntimeError(f"encoder {enc.name!r} changed during task {spec.name!r}: the protocol requires it frozen")
    timings["total_s"] = time.perf_counter() - t_start
    for r, s in zip(results, scheds, strict=True):
        r["hparams"] = asdict(s)
    test_metric, baseline_metric = test
    test = test_metric.compute()
    value = test[spec.metric]
    test.update(se=test_metric.standard_error(seed=seed), baseline=baseline_metric.value(),
                per_sample=encode_samples(spec.metric, test_metric.per_sample()))
    return CellResult(
        encoder=enc.name, task=spec.name, task_version=spec.version, seed=seed, metric=spec.metric,
        higher_is_better=spec.higher_is_better, value=value, score=signed_score(spec.metric, value), metrics=test,
        se=test["se"], baseline=test["baseline"],
        selected=asdict(scheds[best]), val_scores=results,
        sizes={"train": len(tr_idx), "val": len(val_idx), "test": len(data.test), "classes": num_classes or 0,
               "final_train": len(tr_idx) + (len(val_idx) if scheds[best].refit else 0)},
        timings=timings, versions=environment(),
        config={"image_size": list(spec.image_size), "device": str(device), "feature_cache": cache,
                "cache_hits": hits, "encoder_fingerprint": before, "arch": arch, "frames": spec.frames,
                "pixel_cache": bool(pixel_cache and spec.pixelwise)})

