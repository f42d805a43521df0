"""Metrics accumulated over a whole split, batch by batch, so that no result depends on the batch size.

Every metric is an accumulator: ``update(output, target)`` per batch, ``compute() -> dict`` once at the end.
``compute()`` returns the metric's own value under its name plus any companions; ``score`` in results is
the value signed so that higher is better (``METRICS[name].higher_is_better``).

* top-1:  acc = #{argmax_c z_ic = y_i} / N.
* mIoU from the confusion matrix C (rows = target, columns = prediction, pixels with the ignore index
  left out), accumulated over the whole split:
      IoU_c = C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc),  mIoU = mean of IoU_c over classes with a non-empty union
  (classes absent from both target and prediction do not count — scikit-learn's ``jaccard_score(average=
  "macro")`` on the flattened pixels). ``miou_no_bg`` leaves class 0 out of the mean.
* binary IoU: predicted positive ⇔ logit > 0; IoU = TP / (TP + FP + FN) over all valid pixels of the split.
* L1: Σ |ŷ − y| / #valid over all valid pixels (NaN targets are invalid); lower is better.
* KITTI-style flow accuracy: share of valid pixels whose end-point error EPE = ‖f̂ − f‖₂ is below 3 px or
  below 5 % of ‖f‖₂ (1 − KITTI's Fl outlier rate); EPE is reported beside it.
* within: share of valid (finite) target pixels with |ŷ − y| ≤ 0.05 (the study's KITTI score on targets in
  [0, 1]); L1 is reported beside it.

Every accumulator also keeps one row of statistics per sample (``per_sample()``; their sums give the metric
through ``metric_stats.value_from_totals``, the formula ``compute()`` itself uses), so that results carry a
test-set bootstrap (``standard_error()``). ``constant_predictor`` is each metric's trivial baseline: the best
input-independent prediction fitted on the train split, scored by the same accumulator on the test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from contrasting.eval.catalog.metric_stats import standard_error, value_from_totals


class _PerSample:
    """Per-sample statistics (``metric_stats``): each ``update`` appends one row per sample; ``per_sample()``
    stacks them, and the metric is ``value_from_totals`` of their sum, so a bootstrap over test samples
    reproduces it exactly."""

    name = "?"

    def __init__(self):
        self._rows: list[torch.Tensor] = []

    def _add(self, rows: torch.Tensor) -> None:
        self._rows.append(rows.detach().to("cpu", torch.float64))

    def per_sample(self) -> np.ndarray:
        """(samples, k) statistics of every sample seen, in order."""
        if not self._rows:
            return np.zeros((0, self.width()))
        return torch.cat(self._rows).numpy()

    def width(self) -> int:
        return 2

    def value(self) -> float:
        """The metric over every sample seen (NaN before any)."""
        return float(value_from_totals(self.name, self.per_sample().sum(axis=0)))

    def standard_error(self, replicates: int = 1000, seed: int = 0) -> float:
        """Bootstrap standard error of the metric over the samples seen."""
        return standard_error(self.name, self.per_sample(), replicates, seed)


class Top1(_PerSample):
    """Top-1 accuracy of logits (N, C) against labels (N,); per sample (correct, 1)."""

    name = "top1"

    def __init__(self, **_):
        super().__init__()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        correct = (logits.argmax(dim=1) == target.to(logits.device)).double()
        self._add(torch.stack([correct, torch.ones_like(correct)], 1))

    def compute(self) -> dict[str, float]:
        v = self.value()
        return {"top1": 0.0 if math.isnan(v) else v}


class ConfusionMatrix(_PerSample):
    """Confusion matrix over a split for logits (B, C, H, W) and targets (B, H, W); see the module docstring.
    Per sample: (tp_c, fp_c, fn_c) for every class c."""

    name = "miou"

    def __init__(self, num_classes: int, ignore_index: int = 255, background: int | None = None, **_):
        super().__init__()
        self.num_classes, self.ignore_index, self.background = num_classes, ignore_index, background
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        if background is not None:
            self.name = "miou_no_bg"

    def width(self) -> int:
        return 3 * self.num_classes

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.update_labels(logits.argmax(dim=1), target)

    def update_labels(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predicted and target label maps: C[t, p] += 1 for every pixel with a valid target, and each
        sample's per-class tp / fp / fn."""
        c = self.num_classes
        pred, target = pred.reshape(len(pred), -1).long().cpu(), target.reshape(len(target), -1).long().cpu()
        keep = (target != self.ignore_index) & (target >= 0) & (target < c)
        p = pred.clamp(0, c - 1)
        idx = target[keep] * c + p[keep]
        self.matrix += torch.bincount(idx, minlength=c * c).view(c, c)
        sample = torch.arange(len(pred)).view(-1, 1).expand_as(pred)
        counts = lambda values, mask: torch.bincount(
            (sample[mask] * c + values[mask]), minlength=len(pred) * c).view(len(pred), c)
        tp = counts(target, keep & (p == target))
        fp = counts(p, keep) - tp
        fn = counts(target, keep) - tp
        self._add(torch.cat([tp, fp, fn], 1))

    def iou(self) -> torch.Tensor:
        """Per-class IoU (NaN where the union is empty)."""
        m = self.matrix.double()
        inter = m.diag()
        union = m.sum(0) + m.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))

    def compute(self) -> dict[str, float]:
        total = self.matrix.sum()
        totals = self.per_sample().sum(axis=0)
        out = {"miou": float(value_from_totals("miou", totals)),
               "pixel_acc": float(self.matrix.diag().sum() / total) if total > 0 else 0.0}
        if self.background is not None:
            out["miou_no_bg"] = float(value_from_totals("miou_no_bg", totals))
        return out


class BinaryIoU(_PerSample):
    """IoU of the positive class for logits (B, 1, H, W) or (B, H, W) against {0, 1} targets (B, H, W); per sample
    (tp, fp, fn)."""

    name = "iou"

    def __init__(self, ignore_index: int = 255, **_):
        super().__init__()
        self.ignore_index = ignore_index

    def width(self) -> int:
        return 3

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pred = (logits.reshape(target.shape) > 0).reshape(len(target), -1).cpu()
        target = target.reshape(len(target), -1).cpu()
        valid = target != self.ignore_index
        t = target > 0.5
        self._add(torch.stack([(pred & t & valid).sum(1), (pred & ~t & valid).sum(1), (~pred & t & valid).sum(1)], 1))

    def compute(self) -> dict[str, float]:
        return {"iou": self.value() if self._rows else 0.0}


class L1(_PerSample):
    """Mean absolute error over valid (finite) target pixels of the split; lower is better. Per sample
    (Σ|ŷ − y|, valid pixels)."""

    name = "l1"

    def __init__(self, **_):
        super().__init__()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred = pred.reshape(target.shape).double().cpu().reshape(len(target), -1)
        target = target.double().cpu().reshape(len(target), -1)
        valid = torch.isfinite(target)
        err = torch.where(valid, (pred - torch.nan_to_num(target)).abs(), torch.zeros_like(pred))
        self._add(torch.stack([err.sum(1), valid.sum(1).double()], 1))

    def compute(self) -> dict[str, float]:
        return {"l1": self.value()}


WITHIN_TOLERANCE = 0.05  # the study's KITTI score: a pixel counts within 0.05 of its target


class _GoodShare(_PerSample):
    """The share of valid pixels whose error is good enough; per sample (good pixels, valid pixels), the mean
    error over valid pixels beside it (under ``companion``)."""

    companion = "error"

    def __init__(self):
        super().__init__()
        self.error_sum = 0.0

    def _add_pixels(self, good: torch.Tensor, valid: torch.Tensor, error: torch.Tensor) -> None:
        """Rows of (B, ...) pixel masks ``good``, ``valid`` and their ``error``s."""
        n = len(valid)
        self._add(torch.stack([(good & valid).reshape(n, -1).sum(1), valid.reshape(n, -1).sum(1)], 1))
        self.error_sum += float(error[valid].sum())

    def compute(self) -> dict[str, float]:
        stats = self.per_sample()
        count = stats[:, 1].sum() if len(stats) else 0
        if not count:
            return {self.name: float("nan"), self.companion: float("nan")}
        return {self.name: self.value(), self.companion: self.error_sum / count}


class FlowAccuracy(_GoodShare):
    """KITTI-style flow accuracy of predictions (B, 2, H, W) against targets (B, 3, H, W) = (u, v, valid): good
    where EPE < 3 px or < 5 % of ‖f‖; EPE beside it."""

    name, companion = "flow_acc", "epe"

    def __init__(self, abs_threshold: float = 3.0, rel_threshold: float = 0.05, **_):
        super().__init__()
        self.abs_threshold, self.rel_threshold = abs_threshold, rel_threshold

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        flow, valid = target[:, :2].double().cpu(), (target[:, 2] > 0.5).cpu()
        epe = (pred.double().cpu() - flow).norm(dim=1)
        good = (epe < self.abs_threshold) | (epe < self.rel_threshold * flow.norm(dim=1))
        self._add_pixels(good, valid, epe)


class Within(_GoodShare):
    """Share of valid (finite) target pixels predicted within ``tolerance`` (|ŷ − y| ≤ 0.05): the study's score
    of its 1-channel KITTI target; L1 beside it."""

    name, companion = "within", "l1"

    def __init__(self, tolerance: float = WITHIN_TOLERANCE, **_):
        super().__init__()
        self.tolerance = tolerance

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        target = target.double().cpu()
        error = (pred.reshape(target.shape).double().cpu() - torch.nan_to_num(target)).abs()
        self._add_pixels(error <= self.tolerance, torch.isfinite(target), error)


@dataclass(frozen=True)
class MetricInfo:
    """A metric's accumulator factory (``make(num_classes=..., ignore_index=...)``) and direction."""

    make: Callable
    higher_is_better: bool


METRICS: dict[str, MetricInfo] = {
    "top1": MetricInfo(Top1, True),
    "miou": MetricInfo(ConfusionMatrix, True),
    "miou_no_bg": MetricInfo(lambda **kw: ConfusionMatrix(background=0, **kw), True),
    "iou": MetricInfo(BinaryIoU, True),
    "l1": MetricInfo(L1, False),
    "flow_acc": MetricInfo(FlowAccuracy, True),
    "within": MetricInfo(Within, True),
}


def make_metric(name: str, *, num_classes: int | None = None, ignore_index: int = 255):
    """A fresh accumulator for metric ``name``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    kw = {"ignore_index": ignore_index}
    if num_classes is not None:
        kw["num_classes"] = num_classes
    return METRICS[name].make(**kw)


def signed_score(name: str, value: float) -> float:
    """``value`` if higher is better for ``name``, else ``−value``: the one number to maximise."""
    return value if METRICS[name].higher_is_better else -value


# ------------------------------------------------------------------------------------------- trivial baselines


def _majority(counts: torch.Tensor, exclude: int | None = None) -> int:
    counts = counts.clone().double()
    if exclude is not None and len(counts) > 1 and counts.sum() > counts[exclude]:
        counts[exclude] = -1
    return int(counts.argmax())


def constant_predictor(metric: str, train_targets, *, num_classes: int | None = None, ignore_index: int = 255):
    """The trivial baseline of ``metric``: the best input-independent prediction, fitted on ``train_targets``
    (a (N,) label tensor, or a list of target maps), as a function mapping a batch of test targets to the
    prediction the metric expects for them:

    * top1: the majority training class (logits one-hot on it);
    * miou: the majority training pixel class everywhere; miou_no_bg: the majority class other than the
      background (predicting background scores 0 there);
    * iou: all-foreground (IoU = the positive share), or all-background when training has no positive pixel;
    * l1: the median valid training target everywhere;
    * flow_acc: the median valid training flow vector everywhere;
    * within: the constant with the most valid training pixels within the tolerance (the best window over the
      sorted values).
    """
    if metric == "top1":
        labels = torch.as_tensor(train_targets).long().reshape(-1)
        c = int(num_classes or int(labels.max()) + 1)
        k = _majority(torch.bincount(labels, minlength=c))
        return lambda target: torch.nn.functional.one_hot(torch.full((len(target),), k), c).float()
    maps = list(train_targets)
    if metric in ("miou", "miou_no_bg"):
        c = int(num_classes)
        counts = torch.zeros(c, dtype=torch.int64)
        for t in maps:
            t = t.reshape(-1).long()
            t = t[(t != ignore_index) & (t >= 0) & (t < c)]
            counts += torch.bincount(t, minlength=c)
        k = _majority(counts, exclude=0 if metric == "miou_no_bg" else None)
        return lambda target: torch.nn.functional.one_hot(torch.full(target.shape, k), c).movedim(-1, 1).float()
    if metric == "iou":
        positive = any(bool(((t > 0.5) & (t != ignore_index)).any()) for t in maps)
        return lambda target: torch.full((len(target), 1, *target.shape[-2:]), 1.0 if positive else -1.0)
    if metric == "l1":
        values = torch.cat([t.reshape(-1).double() for t in maps])
        values = values[torch.isfinite(values)]
        m = float(values.median()) if len(values) else 0.0
        return lambda target: torch.full(target.shape, m, dtype=torch.float64)
    if metric == "flow_acc":
        flows = torch.cat([t[:2].reshape(2, -1)[:, t[2].reshape(-1) > 0.5].double() for t in maps], 1)
        med = flows.median(dim=1).values if flows.shape[1] else torch.zeros(2, dtype=torch.float64)
        return lambda target: med.view(1, 2, 1, 1).expand(len(target), 2, *target.shape[-2:]).clone()
    if metric == "within":
        c = _densest_window(torch.cat([t.reshape(-1).double() for t in maps]), WITHIN_TOLERANCE)
        return lambda target: torch.full(target.shape, c, dtype=torch.float64)
    raise ValueError(f"metric: no trivial baseline for {metric!r} (known: {', '.join(METRICS)})")


def _densest_window(values: torch.Tensor, tolerance: float) -> float:
    """The centre c maximising #{|v − c| ≤ tolerance} over the finite ``values`` (0 without any): a window
    [v_i, v_i + 2·tolerance] starting at each sorted value, the fullest one's centre."""
    v = np.sort(values[torch.isfinite(values)].numpy())
    if not len(v):
        return 0.0
    counts = np.searchsorted(v, v + 2 * tolerance, side="right") - np.arange(len(v))
    return float(v[int(counts.argmax())] + tolerance)
